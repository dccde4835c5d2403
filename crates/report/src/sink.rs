//! Sink plumbing: fan one event stream out to several sinks, and share a sink with the kernel.
//!
//! The kernel owns its sink for the whole run (`Box<dyn EventSink>` in the scheduler state), so
//! a caller that wants its [`crate::MetricsCollector`] back afterwards wraps it in a
//! [`SharedSink`], hands a clone to the kernel (usually inside a [`Fanout`]) and takes the value
//! out with [`SharedSink::try_unwrap`] once the kernel is dropped:
//!
//! ```
//! use kernel::tracepoints::EventSink;
//! use report::{Fanout, MetricsCollector, SharedSink};
//!
//! let metrics = SharedSink::new(MetricsCollector::new());
//! let trace = SharedSink::new(Vec::new()); // any EventSink, e.g. an FtraceWriter
//! let sink: Box<dyn EventSink> =
//!     Box::new(Fanout(vec![Box::new(metrics.clone()), Box::new(trace.clone())]));
//! // ... the kernel runs with `sink` and is dropped ...
//! drop(sink);
//! let collector = metrics.try_unwrap().ok().expect("kernel dropped its clone");
//! # let _ = collector;
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use kernel::tracepoints::{Event, EventSink};

/// Delivers every event to each sink in order (index 0 first).
pub struct Fanout<'a>(pub Vec<Box<dyn EventSink + 'a>>);

impl EventSink for Fanout<'_> {
    fn event(&mut self, e: &Event) {
        for sink in &mut self.0 {
            sink.event(e);
        }
    }
}

/// A sink shared between the kernel (which owns a clone for the run) and the caller.
///
/// Single-threaded by design (`Rc<RefCell<_>>`): the simulator runs every CPU on one thread.
/// A sink must not be borrowed by the caller while the kernel is emitting into it; the
/// `RefCell` turns such a mistake into a panic instead of a silent reorder.
pub struct SharedSink<T>(Rc<RefCell<T>>);

impl<T> SharedSink<T> {
    pub fn new(value: T) -> Self {
        SharedSink(Rc::new(RefCell::new(value)))
    }

    /// The shared cell, to inspect the sink during or after the run.
    pub fn cell(&self) -> &Rc<RefCell<T>> {
        &self.0
    }

    /// The value, if this is the last clone; otherwise `Err(self)` unchanged.
    pub fn try_unwrap(self) -> Result<T, Self> {
        Rc::try_unwrap(self.0)
            .map(RefCell::into_inner)
            .map_err(SharedSink)
    }
}

impl<T> Clone for SharedSink<T> {
    fn clone(&self) -> Self {
        SharedSink(Rc::clone(&self.0))
    }
}

impl<T: EventSink> EventSink for SharedSink<T> {
    fn event(&mut self, e: &Event) {
        self.0.borrow_mut().event(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::tracepoints::{EventKind, IpiReason, TraceFlags};

    fn ev(t: u64) -> Event {
        Event {
            time_ns: t,
            cpu: 0,
            owner: 0,
            flags: TraceFlags::default(),
            kind: EventKind::IpiSendCpu {
                target_cpu: 1,
                reason: IpiReason::Reschedule,
            },
        }
    }

    #[test]
    fn fanout_delivers_in_order_to_every_sink_and_caller_gets_them_back() {
        let a = SharedSink::new(Vec::<Event>::new());
        let b = SharedSink::new(Vec::<Event>::new());
        let mut fan = Fanout(vec![Box::new(a.clone()), Box::new(b.clone())]);
        fan.event(&ev(1));
        fan.event(&ev(2));
        assert!(
            a.clone().try_unwrap().is_err(),
            "fanout still holds a clone"
        );
        drop(fan);
        let a = a.try_unwrap().ok().expect("last clone");
        let b = b.try_unwrap().ok().expect("last clone");
        assert_eq!(a, vec![ev(1), ev(2)]);
        assert_eq!(a, b);
    }
}
