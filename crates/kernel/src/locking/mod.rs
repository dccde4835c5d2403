//! Locking: the model's lockdep (raw spinlock order), the kernel `struct mutex`, the
//! rt_mutex with priority inheritance, and the user-level locks built on them.
//!
//! Linux: kernel/locking/.

pub mod lockdep;
pub mod mutex;
pub mod rtmutex;
pub mod usermutex;

use crate::sched::core::emit;
use crate::sched::SchedState;
use crate::task::TaskId;
use crate::tracepoints::{EventKind, LockName};

/// The `lock_contended` tracepoint: task `p` found `lock` taken and is about to wait for it.
///
/// Linux: include/trace/events/lock.h lock_contended (from kernel/locking/lockdep.c
/// lock_contended()).
pub(crate) fn trace_lock_contended(s: &mut SchedState, p: TaskId, lock: LockName) {
    let pid = s.tasks[p.idx()].pid;
    let cpu = s.m.this_cpu();
    emit(s, cpu, EventKind::LockContended { pid, lock });
}

/// The `lock_acquired` tracepoint: task `p` took `lock` after waiting for it.
///
/// Linux: include/trace/events/lock.h lock_acquired (from kernel/locking/lockdep.c
/// lock_acquired()).
pub(crate) fn trace_lock_acquired(s: &mut SchedState, p: TaskId, lock: LockName) {
    let pid = s.tasks[p.idx()].pid;
    let cpu = s.m.this_cpu();
    emit(s, cpu, EventKind::LockAcquired { pid, lock });
}

/// The end of an interrupted wait: task `p` leaves the waiters of `lock` without it (a
/// signal, -EINTR). Linux reports it as `contention_end` with `ret=-4`.
///
/// Linux: include/trace/events/lock.h contention_end (from kernel/locking/mutex.c and
/// rtmutex.c on their error paths).
pub(crate) fn trace_lock_interrupted(s: &mut SchedState, p: TaskId, lock: LockName) {
    let pid = s.tasks[p.idx()].pid;
    let cpu = s.m.this_cpu();
    emit(s, cpu, EventKind::LockInterrupted { pid, lock });
}

/// How a user mutex behaves (`--protocol`, per-resource `"protocol"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Kernel mutex, Proxy Execution off for it: no inheritance.
    None,
    /// rt_mutex with priority inheritance.
    Pi,
    /// Kernel mutex whose waiters donate through Proxy Execution.
    Proxy,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "none" => Some(Protocol::None),
            "pi" => Some(Protocol::Pi),
            "proxy" => Some(Protocol::Proxy),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::None => "none",
            Protocol::Pi => "pi",
            Protocol::Proxy => "proxy",
        }
    }
}
