//! The Linux scheduler model. Modules mirror the kernel tree (kernel/sched, kernel/locking).

pub mod locking;
pub mod sched;
pub mod task;
pub mod invariants;
pub mod irq;
pub mod syscalls;
pub mod system;
pub mod time;
pub mod tracepoints;
