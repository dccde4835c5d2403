//! The Linux scheduler model. Modules mirror the kernel tree (kernel/sched, kernel/locking).

pub mod tracepoints;
