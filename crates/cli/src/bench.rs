//! `proxysched bench`: simulated events (tracepoint records) per wall-clock second.
//!
//! The mix: every task alternates `run` and `sleep`, three quarters fair at mixed nice levels
//! and one quarter SCHED_FIFO, so the model exercises wakeups, preemption, migrations and
//! balancing. Without a size it runs 4 CPUs with 32 tasks and 64 CPUs with 1024 tasks;
//! `--cpus C --tasks N` runs that one size. The event sink discards records, so the figure
//! measures the model, not trace formatting.
//!
//! `--edf`: a global-EDF set through the whole `run` path (the rt-app interpreter and the
//! metrics collector included): N SCHED_DEADLINE tasks on C CPUs (16 and 200 by default), each
//! an rt-app `run` then a per-thread `timer` (a periodic job), reporting completed jobs per
//! wall second. A job is one loop of a task's phase: it counts when its `rtapp_loop:
//! event=end` marker is written, i.e. once the task has done its work and slept to its next
//! activation (`loop_ns.count` summed over the tasks of the metrics).

use std::time::Instant;

use kernel::locking::Protocol;
use kernel::system::{Config, System, TaskSpec};
use kernel::tracepoints::NullSink;
use uapi::{SchedAttr, UserCtx, UserOp, UserProgram};

/// A task alternating `run` and `sleep`.
struct Periodic {
    run_ns: u64,
    sleep_ns: u64,
    running: bool,
}

impl UserProgram for Periodic {
    fn next_op(&mut self, _ctx: &UserCtx) -> UserOp {
        self.running = !self.running;
        if self.running {
            UserOp::Run { work_ns: self.run_ns }
        } else {
            UserOp::Sleep { ns: self.sleep_ns }
        }
    }
}

/// The mix on `cpus` CPUs with `tasks` tasks, booted for `duration_s` simulated seconds but
/// not run yet.
pub fn mix_system(cpus: usize, tasks: usize, duration_s: f64) -> System {
    mix_system_with(cpus, tasks, duration_s, &kernel::sched::Features::default())
}

/// [`mix_system`] with the scheduler features `feat` (`bench --feature`).
pub fn mix_system_with(cpus: usize, tasks: usize, duration_s: f64, feat: &kernel::sched::Features) -> System {
    let mut cfg = Config::new(cpus);
    cfg.limit_ns = (duration_s * 1e9) as u64;
    cfg.seed = 1;
    cfg.feat = feat.clone();
    let mut sys = System::new(cfg, Box::new(NullSink));
    for i in 0..tasks {
        let rt = i % 4 == 3;
        let attr = if rt {
            SchedAttr::fifo(10 + (i % 50) as u32)
        } else {
            SchedAttr::normal((i % 11) as i32 - 5)
        };
        let (run_us, sleep_us) = if rt {
            (100 + (i % 7) * 50, 1_000 + (i % 5) * 300)
        } else {
            (500 + (i % 13) * 150, 700 + (i % 9) * 400)
        };
        sys.add_task(TaskSpec {
            name: format!("b{}-{i}", if rt { "rt" } else { "cfs" }),
            attr,
            cpus: None,
            thread: i as u32,
            program: Box::new(Periodic {
                run_ns: run_us as u64 * 1000,
                sleep_ns: sleep_us as u64 * 1000,
                running: false,
            }),
        });
    }
    sys
}

/// The mix as an rt-app workload (for `run`'s path: the interpreter and the metrics): the same
/// tasks, run and sleep lengths and attributes as [`mix_system`].
pub fn mix_workload(cpus: usize, tasks: usize, duration_s: f64) -> String {
    let mut body = String::new();
    for i in 0..tasks {
        let rt = i % 4 == 3;
        let (run_us, sleep_us) = if rt {
            (100 + (i % 7) * 50, 1_000 + (i % 5) * 300)
        } else {
            (500 + (i % 13) * 150, 700 + (i % 9) * 400)
        };
        let attrs = if rt {
            format!("\"policy\": \"SCHED_FIFO\", \"priority\": {}", 10 + i % 50)
        } else {
            format!(
                "\"policy\": \"SCHED_OTHER\", \"priority\": {}",
                (i % 11) as i32 - 5
            )
        };
        if i > 0 {
            body.push_str(",\n");
        }
        body.push_str(&format!(
            "    \"b{}-{i}\": {{ {attrs}, \"run\": {run_us}, \"sleep\": {sleep_us} }}",
            if rt { "rt" } else { "cfs" }
        ));
    }
    format!(
        "{{\n  \"global\": {{ \"duration\": {duration_s} }},\n  \"proxysched\": {{ \"cpus\": {cpus} }},\n  \"tasks\": {{\n{body}\n  }}\n}}\n"
    )
}

/// Build, run and time one workload; returns (events, steps, wall seconds).
pub fn measure(cpus: usize, tasks: usize, duration_s: f64) -> (u64, u64, f64) {
    measure_with(cpus, tasks, duration_s, &kernel::sched::Features::default())
}

/// [`measure`] with the scheduler features `feat`.
pub fn measure_with(
    cpus: usize,
    tasks: usize,
    duration_s: f64,
    feat: &kernel::sched::Features,
) -> (u64, u64, f64) {
    let mut sys = mix_system_with(cpus, tasks, duration_s, feat);
    // The cli is the one place allowed to read the wall clock (DESIGN: nothing below cli does).
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let out = sys.run(&mut |_| {});
    let wall = start.elapsed().as_secs_f64();
    let events = sys.k.st().nr_events;
    assert!(
        out.violations.is_empty(),
        "benchmark run violated an invariant: {:?}",
        out.violations
    );
    (events, out.steps, wall)
}

/// What `proxysched bench` runs.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRequest {
    /// Simulated seconds per workload.
    pub duration_s: f64,
    /// `(cpus, tasks)`; `None`: the two default sizes (the mix) or 16 CPUs / 200 tasks (EDF).
    pub size: Option<(usize, usize)>,
    /// The global-EDF set instead of the mix.
    pub edf: bool,
    /// `--feature NAME=on|off` switches for the mix (e.g. `nohz_idle=on`).
    pub features: Vec<String>,
}

/// The features of the request: the defaults with each `NAME=on|off` applied.
fn request_features(r: &BenchRequest) -> Result<kernel::sched::Features, crate::Failure> {
    let mut feat = kernel::sched::Features::default();
    for f in &r.features {
        let bad = |m: String| crate::Failure::BadInput(format!("error: --feature {f}: {m}"));
        let (name, value) = f
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=on|off".to_string()))?;
        let on = match value {
            "on" => true,
            "off" => false,
            _ => return Err(bad("expected on or off after `=`".to_string())),
        };
        feat.set(name, on).map_err(bad)?;
    }
    Ok(feat)
}

/// Checks a request's numbers; the message is what exit code 2 prints.
pub fn check_request(r: &BenchRequest) -> Result<(), crate::Failure> {
    let bad = |m: String| Err(crate::Failure::BadInput(m));
    if !(r.duration_s > 0.0 && r.duration_s.is_finite() && r.duration_s < 1.0e6) {
        return bad(format!(
            "error: --duration must be a positive number of seconds, got {}",
            r.duration_s
        ));
    }
    if let Some((cpus, tasks)) = r.size {
        if cpus == 0 || cpus > sim::cpumask::MAX_CPUS {
            return bad(format!(
                "error: --cpus must be between 1 and {}, got {cpus}",
                sim::cpumask::MAX_CPUS
            ));
        }
        if tasks == 0 || tasks > 10_000_000 {
            return bad(format!(
                "error: --tasks must be between 1 and 10000000, got {tasks}"
            ));
        }
    }
    Ok(())
}

/// `proxysched bench`: one line per workload on stdout (a closed stdout ends it quietly).
pub fn bench_command(r: &BenchRequest) -> Result<(), crate::Failure> {
    check_request(r)?;
    if r.edf {
        let (cpus, tasks) = r.size.unwrap_or((16, 200));
        return edf_bench(cpus, tasks, r.duration_s);
    }
    let feat = request_features(r)?;
    match r.size {
        None => bench_sizes(r.duration_s, &[(4, 32), (64, 1024)], &feat),
        Some(size) => bench_sizes(r.duration_s, &[size], &feat),
    }
}

/// `proxysched bench` without a size: the two default workloads.
pub fn bench(duration_s: f64) -> Result<(), crate::Failure> {
    bench_sizes(duration_s, &[(4, 32), (64, 1024)], &Default::default())
}

fn bench_sizes(
    duration_s: f64,
    sizes: &[(usize, usize)],
    feat: &kernel::sched::Features,
) -> Result<(), crate::Failure> {
    crate::write_stdout("workload                 sim_s  events      steps       wall_s   events/s\n")?;
    for &(cpus, tasks) in sizes {
        let (events, steps, wall) = measure_with(cpus, tasks, duration_s, feat);
        crate::write_stdout(&format!(
            "{:<24} {:<6} {:<11} {:<11} {:<8.3} {:.0}\n",
            format!("{cpus} CPUs, {tasks} tasks"),
            duration_s,
            events,
            steps,
            wall,
            events as f64 / wall
        ))?;
    }
    Ok(())
}

/// The rt-app JSON of the global-EDF set: `tasks` SCHED_DEADLINE tasks on `cpus` CPUs, each a
/// periodic job (`run`, then a per-thread `timer`), periods 5 to 24 ms, deadline = period,
/// the reservations adding up to 80% of the CPUs (at most half a CPU per task), every job
/// 90% of its reservation.
pub fn edf_workload(cpus: usize, tasks: usize, duration_s: f64) -> String {
    let util_ppm = (800_000 * cpus as u64 / tasks as u64).min(500_000);
    let mut body = String::new();
    for i in 0..tasks {
        let period_us = 5_000 + (i as u64 * 37 % 20) * 1_000;
        let runtime_us = (period_us * util_ppm / 1_000_000).max(1);
        let run_us = (runtime_us * 9 / 10).max(1);
        if i > 0 {
            body.push_str(",\n");
        }
        body.push_str(&format!(
            "    \"edf{i}\": {{ \"policy\": \"SCHED_DEADLINE\", \"dl-runtime\": {runtime_us}, \
             \"dl-period\": {period_us}, \"run\": {run_us}, \
             \"timer\": {{ \"ref\": \"unique\", \"period\": {period_us} }} }}"
        ));
    }
    format!(
        "{{\n  \"global\": {{ \"duration\": {duration_s} }},\n  \"proxysched\": {{ \"cpus\": {cpus} }},\n  \"tasks\": {{\n{body}\n  }}\n}}\n"
    )
}

/// What one EDF run gives: jobs, events, deadline misses, throttles, wall seconds.
pub struct EdfFigures {
    pub jobs: u64,
    pub events: u64,
    pub deadline_misses: u64,
    pub dl_throttles: u64,
    pub wall_s: f64,
}

/// Runs the global-EDF set through `run`'s path (metrics on, no trace) and counts its jobs.
pub fn measure_edf(cpus: usize, tasks: usize, duration_s: f64) -> Result<EdfFigures, crate::Failure> {
    let name = format!("bench-edf-{cpus}x{tasks}.json");
    let w = workload::load(&name, &edf_workload(cpus, tasks, duration_s))?;
    let flags = harness::Flags {
        file: name,
        ..Default::default()
    };
    let (cfg, costs_name) = harness::build_config(&w, &flags)?;
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let r = harness::simulate(&w, &cfg, &costs_name, Protocol::None, None, None, &mut |_| {})?;
    let wall_s = start.elapsed().as_secs_f64();
    assert!(
        r.outcome.violations.is_empty(),
        "benchmark run violated an invariant: {:?}",
        r.outcome.violations
    );
    let sum = |f: fn(&report::metrics::TaskMetrics) -> u64| r.metrics.tasks.iter().map(f).sum();
    Ok(EdfFigures {
        jobs: sum(|t| t.loop_ns.count),
        events: r.metrics.counters.events,
        deadline_misses: sum(|t| t.deadline_misses),
        dl_throttles: sum(|t| t.dl_throttles),
        wall_s,
    })
}

fn edf_bench(cpus: usize, tasks: usize, duration_s: f64) -> Result<(), crate::Failure> {
    let f = measure_edf(cpus, tasks, duration_s)?;
    crate::write_stdout("workload                 sim_s  jobs        events      misses  wall_s   jobs/s\n")?;
    crate::write_stdout(&format!(
        "{:<24} {:<6} {:<11} {:<11} {:<7} {:<8.3} {:.0}\n",
        format!("EDF {cpus} CPUs, {tasks} tasks"),
        duration_s,
        f.jobs,
        f.events,
        f.deadline_misses,
        f.wall_s,
        f.jobs as f64 / f.wall_s
    ))
}
