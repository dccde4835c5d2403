//! The idle class.
//!
//! Linux: kernel/sched/idle.c.
