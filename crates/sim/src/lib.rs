//! The deterministic machine that the kernel model runs on.
//!
//! `sim` knows nothing about scheduling. It provides simulated time (u64 nanoseconds), CPUs
//! that each execute one *context* (a task's kernel stack, written as an `async fn`), raw
//! spinlocks whose acquisition and release are interleaving points, interrupts (one
//! programmable clock-event device and an IPI queue per CPU), and the seeded oracle that makes
//! every choice not fixed by time. Scheduling lives in `kernel`; what a user program and the
//! kernel share (policies, `sched_attr`, system calls and their results) in `uapi`; rt-app's
//! thread semantics in `workload`.
//!
//! The executor always advances the CPU whose next step is earliest in simulated time; CPUs
//! whose next steps fall at the same instant are ordered by the oracle. Everything a context
//! does between two `.await`s is atomic, so the interleaving granularity is exactly the set
//! of await points the kernel model writes: lock operations, cost steps, context switches and
//! interrupt windows. Every decision time does not fix goes through one [`ChoiceSource`]
//! ([`choice`]): the order of CPUs due at the same instant, and bounded perturbations.

pub mod choice;
pub mod cpumask;
pub mod id;
pub mod machine;
pub mod oracle;
pub mod time;

pub use choice::{Bounds, ChoiceLog, ChoiceSource, Point, Replay, SeedOrder};
pub use cpumask::{CpuId, CpuMask, MAX_CPUS};
pub use machine::{CtxId, Executor, IrqSources, LockId, Machine, PollFuture, RunEnd, RunResult, StepHook};
pub use oracle::{Oracle, Stream};
pub use time::Nanos;
