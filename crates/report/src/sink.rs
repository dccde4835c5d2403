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
        // A run with metrics only has one sink: the event goes straight on, a tail call with
        // no frame of its own (the loop is out of line so that it does not need one either).
        match self.0.as_mut_slice() {
            [only] => only.event(e),
            sinks => deliver_to_each(sinks, e),
        }
    }
}

#[inline(never)]
fn deliver_to_each(sinks: &mut [Box<dyn EventSink + '_>], e: &Event) {
    for sink in sinks {
        sink.event(e);
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
    use sim::CpuId;

    fn ev(t: u64) -> Event {
        Event {
            time_ns: t,
            cpu: CpuId(0),
            owner: 0,
            flags: TraceFlags::default(),
            kind: EventKind::IpiSendCpu {
                target_cpu: CpuId(1),
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
        assert!(a.clone().try_unwrap().is_err(), "fanout still holds a clone");
        drop(fan);
        let a = a.try_unwrap().ok().expect("last clone");
        let b = b.try_unwrap().ok().expect("last clone");
        assert_eq!(a, vec![ev(1), ev(2)]);
        assert_eq!(a, b);
    }
}

#[cfg(test)]
mod run_tests {
    //! One stream into a trace writer and a metrics collector at once, as the CLI wires it.
    use super::*;
    use crate::{FtraceWriter, MetricsCollector, RunInfo};
    use kernel::tracepoints::{Comm, EventKind, PrevState, TaskRef, TraceFlags};
    use sim::CpuId;
    use uapi::Policy;

    #[test]
    fn trace_and_metrics_from_one_run_are_deterministic() {
        let run = || {
            let metrics = SharedSink::new(MetricsCollector::new());
            let trace = SharedSink::new(FtraceWriter::new(Vec::new()));
            let mut sink: Box<dyn EventSink> =
                Box::new(Fanout(vec![Box::new(metrics.clone()), Box::new(trace.clone())]));
            let flags = TraceFlags {
                irqs_off: true,
                preempt_depth: 2,
                ..TraceFlags::default()
            };
            let a = TaskRef { pid: 1001, prio: 120 };
            let idle = TaskRef { pid: 0, prio: 120 };
            let kinds = [
                EventKind::TaskNewtask {
                    pid: 1001,
                    comm: Comm::new("a-0"),
                    policy: Policy::Normal,
                    prio: 120,
                    nice: 0,
                    kthread: false,
                },
                EventKind::SchedWakeupNew {
                    task: a,
                    target_cpu: CpuId(0),
                },
                EventKind::SchedSwitch {
                    prev: idle,
                    prev_state: PrevState::Running,
                    next: a,
                },
                EventKind::SchedSwitch {
                    prev: a,
                    prev_state: PrevState::Sleeping,
                    next: idle,
                },
                EventKind::SchedWaking {
                    task: a,
                    target_cpu: CpuId(0),
                },
                EventKind::SchedSwitch {
                    prev: idle,
                    prev_state: PrevState::Running,
                    next: a,
                },
                EventKind::SchedProcessExit { task: a },
                EventKind::SchedSwitch {
                    prev: a,
                    prev_state: PrevState::Dead,
                    next: idle,
                },
            ];
            let mut owner = 0;
            for (i, kind) in kinds.into_iter().enumerate() {
                sink.event(&Event {
                    time_ns: 1_000 * i as u64,
                    cpu: CpuId(0),
                    owner,
                    flags,
                    kind,
                });
                if let EventKind::SchedSwitch { next, .. } = kind {
                    owner = next.pid;
                }
            }
            drop(sink);
            let info = RunInfo {
                workload: "w".into(),
                cpus: 1,
                protocol: "none".into(),
                seed: 0,
                costs: "zero".into(),
                features: Vec::new(),
                sim_time_ns: 10_000,
                end_reason: "exited".into(),
            };
            let m = metrics.try_unwrap().ok().expect("last").finish(info, Vec::new());
            let text = trace.try_unwrap().ok().expect("last").finish().expect("io");
            (m.to_json(), String::from_utf8(text).expect("utf8"))
        };
        let (json, trace) = run();
        assert_eq!((json.clone(), trace.clone()), run());
        assert!(json.contains("\"runtime_ns\": 3000,"), "{json}");
        assert!(json.contains("\"exit_ns\": 6000,"), "{json}");
        assert!(trace.ends_with(
            "             a-0-1001    [000] d..2.     0.000007: sched_switch: prev_comm=a-0 \
             prev_pid=1001 prev_prio=120 prev_state=X ==> next_comm=swapper/0 next_pid=0 \
             next_prio=120\n"
        ));
    }
}
