//! rt-app's ftrace markers: the `rtapp_task` and `rtapp_loop` lines each thread writes to the
//! trace marker (rt-app `src/rt-app.c` `thread_body()`, its `log_ftrace()` calls), which the
//! metrics read back (a task's loops and when its work was done).
//!
//! The kernel model sees only a [`uapi::TraceMarker`]; [`Mark::marker`] writes one and
//! [`Mark::parse`] reads one back.

use uapi::TraceMarker;

/// `rtapp_loop: event=start ...`, with the thread loop, phase and phase loop.
pub const LOOP_START: &str = "rtapp_loop: event=start thread_loop={} phase={} phase_loop={}";
/// `rtapp_loop: event=end ...`, with the thread loop, phase and phase loop.
pub const LOOP_END: &str = "rtapp_loop: event=end thread_loop={} phase={} phase_loop={}";
/// `rtapp_task: event=start`.
pub const TASK_START: &str = "rtapp_task: event=start";
/// `rtapp_task: event=end`.
pub const TASK_END: &str = "rtapp_task: event=end";

/// One of rt-app's markers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A loop of a phase begins.
    LoopStart {
        thread_loop: u32,
        phase: u32,
        phase_loop: u32,
    },
    /// A loop of a phase ends.
    LoopEnd {
        thread_loop: u32,
        phase: u32,
        phase_loop: u32,
    },
    /// The thread starts its work.
    TaskStart,
    /// The thread's work is over.
    TaskEnd,
}

impl Mark {
    /// The trace-marker write for this marker.
    pub fn marker(self) -> TraceMarker {
        let (fmt, args) = match self {
            Mark::LoopStart {
                thread_loop,
                phase,
                phase_loop,
            } => (LOOP_START, [thread_loop, phase, phase_loop]),
            Mark::LoopEnd {
                thread_loop,
                phase,
                phase_loop,
            } => (LOOP_END, [thread_loop, phase, phase_loop]),
            Mark::TaskStart => (TASK_START, [0; 3]),
            Mark::TaskEnd => (TASK_END, [0; 3]),
        };
        TraceMarker { fmt, args }
    }

    /// The rt-app marker `m` is, if it is one.
    pub fn parse(m: TraceMarker) -> Option<Mark> {
        let [thread_loop, phase, phase_loop] = m.args;
        match m.fmt {
            LOOP_START => Some(Mark::LoopStart {
                thread_loop,
                phase,
                phase_loop,
            }),
            LOOP_END => Some(Mark::LoopEnd {
                thread_loop,
                phase,
                phase_loop,
            }),
            TASK_START => Some(Mark::TaskStart),
            TASK_END => Some(Mark::TaskEnd),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_print_as_rt_app_writes_them_and_read_back() {
        let start = Mark::LoopStart {
            thread_loop: 3,
            phase: 1,
            phase_loop: 12,
        };
        assert_eq!(
            start.marker().to_string(),
            "rtapp_loop: event=start thread_loop=3 phase=1 phase_loop=12"
        );
        let end = Mark::LoopEnd {
            thread_loop: 0,
            phase: 2,
            phase_loop: 7,
        };
        assert_eq!(
            end.marker().to_string(),
            "rtapp_loop: event=end thread_loop=0 phase=2 phase_loop=7"
        );
        assert_eq!(Mark::TaskStart.marker().to_string(), "rtapp_task: event=start");
        assert_eq!(Mark::TaskEnd.marker().to_string(), "rtapp_task: event=end");
        for m in [start, end, Mark::TaskStart, Mark::TaskEnd] {
            assert_eq!(Mark::parse(m.marker()), Some(m));
        }
        let other = TraceMarker {
            fmt: "B|{}|lock_wait",
            args: [1, 0, 0],
        };
        assert_eq!(Mark::parse(other), None);
    }
}
