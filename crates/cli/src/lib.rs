//! The `proxysched` command line as a library, so integration tests can run workloads
//! in-process: [`run::simulate`] boots and runs a workload and returns its metrics.

pub mod bench;
pub mod run;

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Options shared by the commands that run a workload.
#[derive(Args, Clone)]
pub struct RunArgs {
    /// rt-app JSON workload; without it the built-in demo runs.
    pub workload: Option<PathBuf>,
    /// Number of CPUs (overrides the workload's `proxysched.cpus`).
    #[arg(long)]
    pub cpus: Option<usize>,
    /// Default lock protocol: none (plain mutex), pi (rt_mutex priority inheritance) or proxy
    /// (mutex with Proxy Execution). Default: proxy, or pi where the workload sets
    /// `pi_enabled`; a resource's own `"protocol"` wins.
    #[arg(long, value_name = "none|pi|proxy")]
    pub protocol: Option<String>,
    /// Proxy Execution stage: 6.17 (single runqueue), 7.1 (simple donor migration) or v29
    /// (default); `--feature` switches apply on top.
    #[arg(long, value_name = "6.17|7.1|v29")]
    pub model: Option<String>,
    /// Scheduler feature switch, repeatable: `--feature place_lag=off`.
    #[arg(long = "feature", value_name = "NAME=on|off")]
    pub features: Vec<String>,
    /// Cost model: `default`, `zero`, or a JSON file of per-operation costs.
    #[arg(long, value_name = "default|zero|FILE")]
    pub costs: Option<String>,
    /// Seed of the oracle that orders ties and random choices (0 to 2^64-1).
    // A leading '-' is taken as the value, so `--seed -1` is refused as a bad number rather
    // than read as an unknown flag.
    #[arg(long, allow_hyphen_values = true)]
    pub seed: Option<u64>,
    /// Simulated seconds to run at most (overrides the workload's `global.duration`).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Write an ftrace text trace (opens in Perfetto).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write the metrics JSON (`proxysched/metrics/v1`).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Write SVG plots into DIR (created if missing): per-task CDFs of wakeup latency and lock
    /// wait with one curve per protocol (compare) or mechanism (ablate), a per-CPU Gantt chart
    /// per run with Proxy Execution drawn as donor→owner spans, and for ablate its figures
    /// side by side.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// The Gantt chart's window in simulated milliseconds, `FROM..TO` (default: the whole run).
    #[arg(long, value_name = "FROM..TO")]
    pub plot_window: Option<String>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Check the model's invariants after every step (slower); a violation exits with 4.
    #[arg(long)]
    pub check: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// A failure and the exit code it maps to.
#[derive(Debug)]
pub enum Failure {
    /// Bad workload or flags (exit 2).
    BadInput(String),
    /// Could not write an output file (exit 2, like other bad input): the message names the
    /// path and starts with it.
    Io(String),
}
