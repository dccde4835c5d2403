//! `proxysched explore`, `replay` and `shrink`: the command-line side of the [`explore`]
//! crate (files, the terminal, the wall clock of `--time`, the thread pool of `--jobs`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Args;
use explore::{Case, Explore, Strategy, Summary, SummaryFailure, Verdict, SUMMARY_SCHEMA};

use crate::run::output_error;
use crate::{Failure, Format};

#[derive(Args, Clone)]
pub struct ExploreArgs {
    /// rt-app JSON workload; without it each seed runs the swarm workload it generates.
    pub workload: Option<PathBuf>,
    /// Number of seeds (schedules) to run, from `--start` (default 100).
    #[arg(long, conflicts_with = "time")]
    pub seeds: Option<u64>,
    /// Run seeds for this many wall-clock seconds instead.
    #[arg(long, value_name = "SECONDS")]
    pub time: Option<f64>,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// How choices are made: random (random tie order and perturbations) or pct.
    #[arg(long, default_value = "random", value_name = "random|pct")]
    pub strategy: String,
    /// Proxy Execution stage (6.17, 7.1, v29, next), as for run.
    #[arg(long, value_name = "6.17|7.1|v29|next")]
    pub model: Option<String>,
    /// Scheduler feature switch, repeatable: `--feature stale_prev_fix=off`.
    #[arg(long = "feature", value_name = "NAME=on|off")]
    pub features: Vec<String>,
    /// Simulated seconds per schedule at most (default: the workload's `global.duration`).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Threads running seeds (default: every core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only the seeds congruent to I mod N.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Directory for the failure files `<seed>.json`.
    #[arg(long, value_name = "DIR", default_value = "explore-out")]
    pub out: PathBuf,
    /// Perturbations off: only the tie order is explored.
    #[arg(long)]
    pub no_perturb: bool,
    /// What to print on stdout: a table, or the JSON summary that merges across shards.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Args, Clone)]
pub struct ReplayArgs {
    /// A failure file written by explore (`DIR/<seed>.json`).
    pub file: PathBuf,
    /// Write the replayed run's trace; the format follows the extension as for run
    /// (`.pftrace` Perfetto, `.dat` trace.dat, else ftrace text).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct ShrinkArgs {
    /// A failure file written by explore.
    pub file: PathBuf,
    /// Where to write the shrunk case (default: FILE with `.min.json`).
    #[arg(long, value_name = "FILE2")]
    pub out: Option<PathBuf>,
    /// At most this many runs.
    #[arg(long, default_value_t = 400)]
    pub budget: usize,
}

fn read(path: &Path) -> Result<String, Failure> {
    fs::read_to_string(path)
        .map_err(|e| Failure::BadInput(format!("{}: error: cannot read: {e}", path.display())))
}

fn load_case(path: &Path) -> Result<Case, Failure> {
    Case::from_json(&path.display().to_string(), &read(path)?)
}

/// `proxysched explore`: checks the arguments, runs the seeds on a pool of `--jobs` threads,
/// writes one failure file per failing seed and prints the summary.
pub fn explore_command(args: &ExploreArgs, tty: bool) -> Result<u8, Failure> {
    let (ex, index, shards) = explorer(args)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| Failure::BadInput(format!("error: --jobs {jobs}: {e}")))?;
    fs::create_dir_all(&args.out).map_err(|e| output_error(&args.out, "failure files into", e))?;
    let out = args.out.clone();
    let replay_of =
        move |seed: u64| format!("proxysched replay {}", out.join(format!("{seed}.json")).display());

    let bar = tty.then(|| progress_bar(args, shards));
    let failures_so_far = AtomicU64::new(0);
    let each = |r: &explore::SeedResult| {
        if r.verdict != Verdict::Pass {
            failures_so_far.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(b) = &bar {
            b.inc(1);
            b.set_message(format!("{} failures", failures_so_far.load(Ordering::Relaxed)));
        }
    };
    // The wall clock of `--time` and of the schedules/s figure: the cli may read it.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let clock = || started.elapsed().as_secs_f64();
    let mut results = Vec::new();
    match args.time {
        None => {
            let seeds = explore::shard_seeds(args.start, args.seeds.unwrap_or(100), index, shards);
            results = pool.install(|| ex.run_seeds(&seeds, &replay_of, &each, &clock))?;
        }
        Some(t) => {
            // Batches of seeds until the time is up; the seeds run are a prefix of the
            // shard's sequence, so a rerun with --seeds covers them exactly.
            let batch = (jobs as u64 * 64).max(64);
            let mut next = args.start;
            while started.elapsed().as_secs_f64() < t {
                let mut seeds = Vec::new();
                while (seeds.len() as u64) < batch {
                    if next % shards == index {
                        seeds.push(next);
                    }
                    next += 1;
                }
                results.extend(pool.install(|| ex.run_seeds(&seeds, &replay_of, &each, &clock))?);
            }
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let mut summary = summary_of(ex.strategy, &results, started.elapsed().as_secs_f64());
    write_failures(&args.out, &results, &mut summary)?;
    match args.format {
        Format::Json => crate::write_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&summary).expect("a summary serializes")
        ))?,
        Format::Table => crate::write_stdout(&summary_table(&summary))?,
    }
    Ok(summary.exit_code())
}

/// The explorer `args` ask for, and the shard (index, count) to run; bad arguments, a bad
/// workload or bad flags are reported here, once, before any seed runs (a workload's
/// warnings go to stderr).
fn explorer(args: &ExploreArgs) -> Result<(Explore, u64, u64), Failure> {
    let strategy = Strategy::parse(&args.strategy).ok_or_else(|| {
        Failure::BadInput(format!(
            "error: --strategy expects random or pct, got `{}`",
            args.strategy
        ))
    })?;
    let (index, shards) = match &args.shard {
        None => (0, 1),
        Some(s) => explore::parse_shard(s).ok_or_else(|| {
            Failure::BadInput(format!("error: --shard expects I/N with 0 <= I < N, got `{s}`"))
        })?,
    };
    if let Some(t) = args.time {
        if !(t > 0.0 && t.is_finite()) {
            return Err(Failure::BadInput(format!(
                "error: --time expects a positive number of seconds, got {t}"
            )));
        }
    }
    let workload = match &args.workload {
        None => None,
        Some(p) => {
            let name = p.display().to_string();
            let text = read(p)?;
            let g = explore::Given::load(&name, &text)?;
            for warn in &g.loaded.warnings {
                crate::write_stderr(&warn.render(&g.loaded.name));
            }
            Some(g)
        }
    };
    let ex = Explore {
        workload,
        flags: harness::Flags {
            model: args.model.clone(),
            features: args.features.clone(),
            duration: args.duration,
            check: true,
            slow_paths: crate::slow_paths_from_env(),
            full_checks: crate::full_checks_from_env(),
            ..harness::Flags::default()
        },
        strategy,
        bounds: if args.no_perturb {
            sim::Bounds::OFF
        } else {
            sim::Bounds::EXPLORE
        },
    };
    // The flags are checked on the workload, before the pool starts.
    if let Some(g) = &ex.workload {
        let mut f = ex.flags.clone();
        f.file = g.name.clone();
        harness::build_config(&g.loaded, &f)?;
    }
    Ok((ex, index, shards))
}

/// The terminal's progress bar: a bar over this shard's seeds for `--seeds`, a spinner for
/// `--time`.
fn progress_bar(args: &ExploreArgs, shards: u64) -> indicatif::ProgressBar {
    let b = match args.seeds.filter(|_| args.time.is_none()) {
        Some(n) => indicatif::ProgressBar::new(n.div_ceil(shards)),
        None => indicatif::ProgressBar::new_spinner(),
    };
    b.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} seeds {per_sec} [{wide_bar}] {msg}")
            .expect("valid template"),
    );
    b
}

/// The summary of the seeds run in `wall_s` seconds, failures not yet listed.
fn summary_of(strategy: Strategy, results: &[explore::SeedResult], wall_s: f64) -> Summary {
    let mut summary = Summary {
        schema: SUMMARY_SCHEMA.to_string(),
        strategy: strategy.as_str().to_string(),
        seeds_run: results.len() as u64,
        steps: results.iter().map(|r| r.steps).sum(),
        wall_s,
        schedules_per_s: if wall_s > 0.0 {
            results.len() as f64 / wall_s
        } else {
            0.0
        },
        failures: Vec::new(),
        coverage: Default::default(),
        by_cpus: Default::default(),
    };
    summary.add_coverage(results);
    summary.add_by_cpus(results);
    summary
}

/// Writes each failing seed's case to `out/<seed>.json`, names it on stderr, and lists it in
/// the summary, in seed-result order.
fn write_failures(out: &Path, results: &[explore::SeedResult], summary: &mut Summary) -> Result<(), Failure> {
    for r in results {
        let Some(case) = &r.case else { continue };
        let path = out.join(format!("{}.json", r.seed));
        fs::write(&path, case.to_json()).map_err(|e| output_error(&path, "a failure file", e))?;
        crate::write_stderr(&format!(
            "{} at {} ns, seed {}: {}\n{}",
            case.invariant,
            case.time_ns,
            r.seed,
            if case.verdict == Verdict::Safety {
                "safety violation"
            } else {
                "liveness failure"
            },
            case.message
        ));
        summary.failures.push(SummaryFailure {
            seed: r.seed,
            invariant: case.invariant.clone(),
            time_ns: case.time_ns,
            verdict: case.verdict,
            file: Some(path.display().to_string()),
        });
    }
    Ok(())
}

/// The `--format table` summary: the rate, the failures, the coverage of rare paths.
fn summary_table(summary: &Summary) -> String {
    let mut s = format!(
        "explored {} seeds ({} strategy) in {:.2} s: {:.0} schedules/s, {} steps\n",
        summary.seeds_run, summary.strategy, summary.wall_s, summary.schedules_per_s, summary.steps
    );
    if let Some(rate) = summary.rate_up_to(4) {
        s += &format!("machines of at most 4 CPUs: {rate:.0} schedules per thread-second\n");
    }
    if summary.failures.is_empty() {
        s += "no failures\n";
    } else {
        s += "seed        verdict    time_ns        invariant\n";
        for f in &summary.failures {
            s += &format!(
                "{:<11} {:<10} {:<14} {}\n",
                f.seed,
                match f.verdict {
                    Verdict::Safety => "safety",
                    Verdict::Liveness => "liveness",
                    Verdict::Pass => "pass",
                },
                f.time_ns,
                f.invariant
            );
        }
    }
    s += "coverage (seeds reaching each rare path):\n";
    for (mark, n) in &summary.coverage {
        s += &format!("  {mark:<40} {n}\n");
    }
    s
}

/// `proxysched replay FILE`: the recorded choices again; same trace, message and exit code.
pub fn replay_command(args: &ReplayArgs) -> Result<u8, Failure> {
    let case = load_case(&args.file)?;
    // The case's CPU count, for the trace header: the workload and flags decide it.
    let nr_cpus = {
        let w = workload::load(&case.workload_name, &case.workload)?;
        harness::build_config(&w, &case.run_flags())?.0.nr_cpus
    };
    let trace = crate::run::open_trace(args.trace.as_deref(), nr_cpus)?;
    let r = explore::replay::replay(&case, crate::run::trace_sink(&trace))?;
    crate::run::finish_trace(trace, args.trace.as_deref())?;
    crate::write_stdout(&format!(
        "replayed seed {} ({} strategy, {} choices): {}\n",
        case.seed,
        case.strategy.as_str(),
        case.choices.len(),
        if r.verdict == Verdict::Pass {
            "no failure".to_string()
        } else {
            format!("{} at {} ns", r.invariant, r.time_ns)
        }
    ))?;
    if !r.message.is_empty() {
        crate::write_stderr(&r.message);
    }
    Ok(r.exit_code)
}

/// `proxysched shrink FILE [--out FILE2]`.
pub fn shrink_command(args: &ShrinkArgs) -> Result<u8, Failure> {
    let case = load_case(&args.file)?;
    if case.verdict == Verdict::Pass {
        return Err(Failure::BadInput(format!(
            "{}:1:1: error: expected a failing case, this one passed",
            args.file.display()
        )));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.file.with_extension("min.json"));
    let before = explore::shrink::Sizes::of(&case);
    let mut small = explore::shrink::shrink(&case, args.budget)?;
    small.replay = format!("proxysched replay {}", out.display());
    // The message names the new file's replay line.
    let r = explore::replay::replay(&small, None)?;
    small.message = r.message;
    let after = explore::shrink::Sizes::of(&small);
    fs::write(&out, small.to_json()).map_err(|e| output_error(&out, "the shrunk case", e))?;
    crate::write_stdout(&format!(
        "before: {before}\nafter:  {after}\nstill fails: {} at {} ns\nwritten: {}\n",
        small.invariant,
        small.time_ns,
        out.display()
    ))?;
    Ok(0)
}
