//! `proxysched bench`: simulated events (tracepoint records) per wall-clock second.
//!
//! Two generated workloads: 4 CPUs with 32 tasks (24 fair at mixed nice levels, 8 SCHED_FIFO)
//! and 64 CPUs with 1024 tasks in the same proportions. Every task alternates `run` and
//! `sleep`, so the model exercises wakeups, preemption, migrations and balancing. The event
//! sink discards records, so the figure measures the model, not trace formatting.

use std::time::Instant;

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

/// Build, run and time one workload; returns (events, steps, wall seconds).
pub fn measure(cpus: usize, tasks: usize, duration_s: f64) -> (u64, u64, f64) {
    let mut cfg = Config::new(cpus);
    cfg.limit_ns = (duration_s * 1e9) as u64;
    cfg.seed = 1;
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

/// `proxysched bench`: one line per workload on stdout (a closed stdout ends it quietly).
pub fn bench(duration_s: f64) -> Result<(), crate::Failure> {
    crate::write_stdout("workload                 sim_s  events      steps       wall_s   events/s\n")?;
    for (cpus, tasks) in [(4, 32), (64, 1024)] {
        let (events, steps, wall) = measure(cpus, tasks, duration_s);
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
