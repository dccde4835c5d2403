//! proxysched as a library: [`Simulation`] loads an rt-app workload, configures a run as the
//! command line's flags do, runs it and returns the metrics, the outcome and (optionally)
//! the tracepoint event stream ([`api`] has the examples). [`run`] holds the commands
//! themselves (`run`, `compare`, `ablate`); [`run::simulate`] is the step both build on.
//!
//! ```
//! let run = cli::Simulation::demo().protocol(cli::Protocol::Proxy).seed(1).run()?;
//! assert_eq!(run.metrics.end_reason, "exited");
//! println!("{}", run.table());
//! # Ok::<(), cli::Failure>(())
//! ```

pub mod api;
pub mod bench;
pub mod explore_cmd;
pub mod run;

pub use api::{Simulation, SimulationRun};
pub use harness::{catch_model_panic, install_panic_hook, Failure};
pub use kernel::locking::Protocol;
pub use report::metrics::{Metrics, TaskMetrics};
pub use workload::Workload;

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
    /// Proxy Execution stage: 6.17 (single runqueue), 7.1 (simple donor migration), v29
    /// (default, as the series' tree) or next (the development after v29: return migration
    /// only when needed, sleeping-owner parking); `--feature` switches apply on top.
    #[arg(long, value_name = "6.17|7.1|v29|next")]
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
    /// Write a trace; the format follows the extension: `.pftrace` Perfetto protobuf, `.dat`
    /// trace-cmd's trace.dat, anything else ftrace text. `compare` writes one per protocol
    /// (`out.none.pftrace`, ...).
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

impl RunArgs {
    /// The flags that configure the run, for [`harness`].
    pub fn flags(&self) -> harness::Flags {
        harness::Flags {
            file: run::workload_file(self),
            cpus: self.cpus,
            protocol: self.protocol.clone(),
            model: self.model.clone(),
            features: self.features.clone(),
            costs: self.costs.clone(),
            seed: self.seed,
            duration: self.duration,
            check: self.check,
            slow_paths: slow_paths_from_env(),
            full_checks: full_checks_from_env(),
        }
    }
}

/// `PROXYSCHED_SLOW_PATHS=1` in the environment turns the simulator's fast paths off (folded
/// busy-wait polls): a run must then give byte-identical traces and metrics, only slower.
pub fn slow_paths_from_env() -> bool {
    std::env::var_os("PROXYSCHED_SLOW_PATHS").is_some_and(|v| v == "1")
}

/// `PROXYSCHED_FULL_CHECKS=1` in the environment makes `--check` (and `explore`) run every
/// per-step check after every step, quiet steps included: the same verdicts, only slower.
pub fn full_checks_from_env() -> bool {
    std::env::var_os("PROXYSCHED_FULL_CHECKS").is_some_and(|v| v == "1")
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Write `text` to stdout. A reader that went away (`proxysched compare | head -1`, `| true`)
/// is not an error: the rest of the output is dropped quietly, the run's exit code stands.
pub fn write_stdout(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Io(format!("writing to stdout: {e}"))),
    }
}

/// Write `text` and a newline to stderr, ignoring a closed stderr (the exit code still says
/// what happened).
pub fn write_stderr(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
