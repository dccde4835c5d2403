//! `proxysched`: run rt-app workloads on the Linux scheduler model.
//!
//! This is the only crate that touches the environment: files, the terminal, the exit code.
//! Exit codes: 0 success; 2 bad input (workload or flags, or an output path that cannot be
//! written); 3 the simulated system deadlocked or stalled; 4 an invariant was violated; 5 the
//! workload failed as rt-app would have (a refused `sched_setattr()` or affinity change makes
//! rt-app exit with EXIT_FAILURE; `end_reason` `workload_failed`).

use cli::explore_cmd::{ExploreArgs, ReplayArgs, ShrinkArgs};
use cli::{bench, explore_cmd, run, write_stderr, write_stdout, RunArgs};

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Linux's Proxy Execution and scheduler core, modelled on a deterministic multi-CPU simulator.
#[derive(Parser)]
#[command(name = "proxysched", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a workload (no file: the built-in demo) and print per-task results.
    #[command(after_help = report::table::LEGEND)]
    Run(RunArgs),
    /// Run the same workload and seed under protocols none, pi and proxy, side by side.
    #[command(after_help = report::table::LEGEND, mut_arg("protocol", |a| a.hide(true)))]
    Compare(RunArgs),
    /// Run the workload with every Proxy Execution mechanism on, then with each one off in
    /// turn, and print the changes.
    #[command(after_help = report::table::LEGEND, mut_arg("trace", |a| a.hide(true)))]
    Ablate(RunArgs),
    /// List the scheduler features and tunables with their defaults.
    Features,
    /// Measure simulated events per wall-clock second on two generated workloads (or one size
    /// with --cpus and --tasks), or completed jobs per wall second of a global-EDF set (--edf).
    Bench(BenchArgs),
    /// Run many schedules (seeds) of a workload, or of generated swarm workloads, checking
    /// every invariant after every step; write each failure as `DIR/<seed>.json`. Exit 0:
    /// nothing found, 4: a safety violation, 3: only deadlocks or stalls.
    Explore(ExploreArgs),
    /// Run a failure file of explore again, exactly (same trace, message and exit code).
    Replay(ReplayArgs),
    /// Make a failure file of explore smaller while the same invariant still fails.
    Shrink(ShrinkArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Simulated seconds per workload.
    #[arg(long, default_value_t = 1.0)]
    duration: f64,
    /// CPUs of the one workload to run (with --tasks; default: the two built-in sizes, or 16
    /// with --edf).
    #[arg(long, requires = "tasks")]
    cpus: Option<usize>,
    /// Tasks of the one workload to run (with --cpus; 200 with --edf).
    #[arg(long, requires = "cpus")]
    tasks: Option<usize>,
    /// The global-EDF set (SCHED_DEADLINE tasks, rt-app `timer` pattern) through the whole
    /// `run` path: completed jobs per wall second.
    #[arg(long)]
    edf: bool,
    /// Scheduler feature switch for the mix, repeatable: `--feature nohz_idle=on`.
    #[arg(long = "feature", value_name = "NAME=on|off")]
    features: Vec<String>,
}

fn main() -> ExitCode {
    cli::install_panic_hook();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run(args) => run::run_command(&args, std::io::stderr().is_terminal()),
        Cmd::Compare(args) => run::compare_command(&args, std::io::stderr().is_terminal()),
        Cmd::Ablate(args) => run::ablate_command(&args, std::io::stderr().is_terminal()),
        Cmd::Features => write_stdout(&run::features_listing()).map(|()| 0),
        Cmd::Bench(b) => bench::bench_command(&bench::BenchRequest {
            duration_s: b.duration,
            size: b.cpus.zip(b.tasks),
            edf: b.edf,
            features: b.features,
        })
        .map(|()| 0),
        Cmd::Explore(a) => explore_cmd::explore_command(&a, std::io::stderr().is_terminal()),
        Cmd::Replay(a) => explore_cmd::replay_command(&a),
        Cmd::Shrink(a) => explore_cmd::shrink_command(&a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(cli::Failure::BadInput(msg)) => {
            write_stderr(&msg);
            ExitCode::from(2)
        }
        Err(cli::Failure::Io(msg)) => {
            write_stderr(&msg);
            ExitCode::from(2)
        }
        Err(cli::Failure::Violation(msg)) => {
            write_stderr(&msg);
            ExitCode::from(4)
        }
        Err(cli::Failure::ModelPanic(msg)) => {
            // The commands add the replay line; one that did not still must not exit 101.
            write_stderr(&format!("model assertion failed: {msg}"));
            ExitCode::from(4)
        }
    }
}
