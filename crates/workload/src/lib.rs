//! rt-app workloads for proxysched: a tolerant loader for rt-app's JSON dialect and an
//! interpreter that runs each rt-app thread as a simulated user program.
//!
//! - [`load`] parses a workload file (comments, trailing commas, repeated keys in order,
//!   events matched by prefix; see [`loader`]) into a typed [`Workload`] ([`spec`]), with
//!   [`LoadError`]s and [`Warning`]s that point at a line and column.
//! - [`Workload::programs`] creates one [`uapi::UserProgram`] per thread for one
//!   simulation run ([`program`]): the thread's rt-app events become system calls of the
//!   simulated kernel (`Run`, `Sleep`, `Lock`, `CondWait`, ...).
//! - [`generate::swarm`] draws one random workload per seed for exploration (swarm testing);
//!   [`shrink::candidates`] proposes smaller variants of a failing one.
//! - [`Mark`] is rt-app's trace markers ([`marks`]), written by the programs and read back by
//!   the metrics.
//! - [`DEMO`] is the built-in priority-inversion workload `proxysched run` uses without a file.
//!
//! The semantics are rt-app's (scheduler-tools/rt-app `src/rt-app.c`,
//! `src/rt-app_parse_config.c`); each module says where it follows rt-app and where it
//! deviates.

pub mod demo;
pub mod error;
pub mod generate;
pub mod json;
pub mod loader;
pub mod marks;
pub mod program;
pub mod shrink;
pub mod spec;

pub use demo::DEMO;
pub use error::{LoadError, Warning};
pub use loader::{load, load_tree};
pub use marks::Mark;
pub use program::{RtAppThread, Run, RUNTIME_CHUNK_NS};
pub use spec::{
    BarrierSpec, CostsSpec, Event, EventSpec, LoopCount, PhaseSched, PhaseSpec, ResourceKind, ResourceSpec,
    Settings, TaskSpec, ThreadSpec, TimerSpec, WorkItemSpec, WorkStepSpec, Workload, WorkqueuesSpec,
};
