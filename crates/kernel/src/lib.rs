//! The Linux scheduler model. Modules mirror the kernel tree (kernel/sched, kernel/locking).

pub mod coverage;
pub mod invariants;
pub mod irq;
pub mod locking;
pub mod sched;
pub mod signal;
pub mod syscalls;
pub mod system;
pub mod task;
pub mod time;
pub mod tracepoints;
pub mod workqueue;
