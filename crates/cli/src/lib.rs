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
    /// `pi_enabled`; a resource's own `"protocol"` wins. Ignored by `compare`.
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
    /// Seed of the oracle that orders ties and random choices.
    #[arg(long)]
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
    /// Could not write an output file (exit 1).
    Io(String),
    /// A model assertion failed inside a run: the message and where (exit 4 once the command
    /// has added the replay line, see [`Failure::Violation`]).
    ModelPanic(String),
    /// An invariant or model assertion failed; the message carries the replay line (exit 4).
    Violation(String),
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

thread_local! {
    /// Inside [`catch_model_panic`]: a panic is a model assertion, reported by the command
    /// with its replay line, so the panic hook stays quiet.
    static IN_MODEL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Where the last model panic happened (`file:line:column`), recorded by the hook.
    static PANIC_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Install the panic hook of the binary: a panic inside a run is recorded for the command to
/// report (exit 4 with the replay line); any other panic prints its message and location, and
/// never the hint about `RUST_BACKTRACE`.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_else(|| "an unknown location".to_string());
        if IN_MODEL.with(|m| m.get()) {
            PANIC_AT.with(|p| *p.borrow_mut() = Some(at));
        } else {
            write_stderr(&format!(
                "internal error: {} at {at}",
                panic_message(info.payload())
            ));
        }
    }));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Run `f` (a simulation); a panic in it — a failed model assertion — becomes
/// [`Failure::ModelPanic`] with its message and location instead of unwinding further.
pub fn catch_model_panic<T>(f: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    let was = IN_MODEL.with(|m| m.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_MODEL.with(|m| m.set(was));
    match r {
        Ok(r) => r,
        Err(payload) => {
            let at = PANIC_AT
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "an unknown location".to_string());
            Err(Failure::ModelPanic(format!(
                "{} (at {at})",
                panic_message(&*payload)
            )))
        }
    }
}
