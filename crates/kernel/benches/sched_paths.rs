//! Criterion benchmarks of the scheduler's hot paths, each driven through the public API
//! (`System` with a few small user programs) by a workload that makes the machine take that
//! path over and over; one iteration is one whole simulated run (building the system is not
//! timed), and the throughput is the run's tracepoint records.
//!
//! - `pick_next_task`: one CPU, fair tasks that run 20 µs and `sched_yield()`: every yield is a
//!   `__schedule()` that picks the next task (also RT and DL variants of the mix).
//! - `try_to_wake_up`: four CPUs, tasks that run 10 µs and sleep 50 µs: every expiry wakes a
//!   sleeper (`try_to_wake_up()`, placement, enqueue, preemption check).
//! - `find_proxy_task/L`: one CPU, Proxy Execution, a blocked-on chain of L mutexes (the donor
//!   waits on m0, held by T0 which waits on m1, ... held by T(L-1), which runs 20 µs and yields):
//!   every pick walks the chain from the donor to the runnable owner.
//! - `donor_migration`: two CPUs, the `donor_migration.json` pattern repeated: the owner of S
//!   is preempted on CPU 1 while H (pinned to CPU 0) wants S, so H migrates to CPU 1 as a donor
//!   and returns when woken.
//!
//! Run: `cargo bench -p kernel --bench sched_paths` (or with a filter, e.g. `-- find_proxy`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use kernel::locking::Protocol;
use kernel::system::{Config, System, TaskSpec};
use kernel::tracepoints::{Event, EventKind, EventSink, NullSink};
use sim::cpumask::{CpuId, CpuMask};
use uapi::{SchedAttr, UserCtx, UserOp, UserProgram};

/// A program: `prefix` once, then `cycle` forever.
struct Script {
    prefix: Vec<UserOp>,
    cycle: Vec<UserOp>,
    i: usize,
}

impl UserProgram for Script {
    fn next_op(&mut self, _ctx: &UserCtx) -> UserOp {
        let i = self.i;
        self.i += 1;
        if i < self.prefix.len() {
            return self.prefix[i].clone();
        }
        self.cycle[(i - self.prefix.len()) % self.cycle.len()].clone()
    }
}

/// Adds a benchmark's tasks (and mutexes) to the system.
type Build = fn(&mut System);

/// The system under test, with its tasks added by `build`; `check` says whether a run's
/// records show the path the benchmark is about.
struct Setup {
    cpus: usize,
    sim_ns: u64,
    build: Build,
    check: fn(&Counts) -> bool,
}

/// What a run did, counted from its records (checked once per benchmark, not timed).
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    events: u64,
    switches: u64,
    wakings: u64,
    proxy_picks: u64,
    proxy_migrations: u64,
    return_migrations: u64,
}

struct Counter(Rc<RefCell<Counts>>);

impl EventSink for Counter {
    fn event(&mut self, e: &Event) {
        let mut c = self.0.borrow_mut();
        c.events += 1;
        match e.kind {
            EventKind::SchedSwitch { .. } => c.switches += 1,
            EventKind::SchedWaking { .. } => c.wakings += 1,
            EventKind::ProxyPick { .. } => c.proxy_picks += 1,
            EventKind::ProxyMigrate { .. } => c.proxy_migrations += 1,
            EventKind::ReturnMigrate { .. } => c.return_migrations += 1,
            _ => {}
        }
    }
}

fn system_with(s: &Setup, sink: Box<dyn EventSink>) -> System {
    let mut cfg = Config::new(s.cpus);
    cfg.limit_ns = s.sim_ns;
    cfg.seed = 1;
    let mut sys = System::new(cfg, sink);
    (s.build)(&mut sys);
    sys
}

fn system(s: &Setup) -> System {
    system_with(s, Box::new(NullSink))
}

fn task(
    sys: &mut System,
    name: &str,
    attr: SchedAttr,
    cpu: Option<u32>,
    prefix: Vec<UserOp>,
    cycle: Vec<UserOp>,
) {
    let thread = sys.k.st().nr_user_tasks;
    sys.add_task(TaskSpec {
        name: name.to_string(),
        attr,
        cpus: cpu.map(|c| std::iter::once(CpuId(c)).collect::<CpuMask>()),
        thread,
        program: Box::new(Script { prefix, cycle, i: 0 }),
    });
}

/// Events of one run, after checking the run does what the benchmark says: no violation, the
/// time limit reached (no deadlock or stall), and the path taken (`Setup::check`).
fn events_of(what: &str, s: &Setup) -> u64 {
    let counts = Rc::new(RefCell::new(Counts::default()));
    let mut sys = system_with(s, Box::new(Counter(Rc::clone(&counts))));
    let out = sys.run(&mut |_| {});
    assert!(out.violations.is_empty(), "{what}: {:?}", out.violations);
    assert_eq!(
        out.sim_time_ns, s.sim_ns,
        "{what}: the run must last until its limit: {:?}",
        out.end_reason
    );
    let c = *counts.borrow();
    assert!(
        (s.check)(&c),
        "{what}: the run does not take the benchmarked path: {c:?}"
    );
    eprintln!("{what}: one run: {c:?}");
    c.events
}

fn bench_setup(c: &mut Criterion, group: &str, param: &str, s: &Setup) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(events_of(&format!("{group}/{param}"), s)));
    g.bench_with_input(BenchmarkId::from_parameter(param), s, |b, s| {
        b.iter_batched(
            || system(s),
            |mut sys| {
                sys.run(&mut |_| {});
                sys
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

const US: u64 = 1_000;

/// Eight tasks on CPU 0 that run 20 µs and yield, with attributes `attr(i)`.
fn yielders(sys: &mut System, attr: fn(usize) -> SchedAttr) {
    for i in 0..8 {
        let cycle = vec![UserOp::Run { work_ns: 20 * US }, UserOp::Yield];
        task(sys, &format!("y{i}"), attr(i), Some(0), vec![], cycle);
    }
}

fn pick_next_task(c: &mut Criterion) {
    let cases: [(&str, Build); 2] = [
        ("fair", |sys| yielders(sys, |i| SchedAttr::normal(i as i32 % 3))),
        ("fifo", |sys| yielders(sys, |_| SchedAttr::fifo(10))),
    ];
    for (name, build) in cases {
        let s = Setup {
            cpus: 1,
            sim_ns: 20_000 * US,
            build,
            // A switch per yield: 20 ms of CPU in 20 µs pieces, less the costs.
            check: |c| c.switches > 500,
        };
        bench_setup(c, "pick_next_task", name, &s);
    }
}

fn try_to_wake_up(c: &mut Criterion) {
    let s = Setup {
        cpus: 4,
        sim_ns: 20_000 * US,
        build: |sys| {
            for i in 0..16u64 {
                let attr = if i % 4 == 3 {
                    SchedAttr::fifo(20)
                } else {
                    SchedAttr::normal(0)
                };
                let cycle = vec![
                    UserOp::Run {
                        work_ns: (10 + i) * US,
                    },
                    UserOp::Sleep {
                        ns: (50 + 3 * i) * US,
                    },
                ];
                task(sys, &format!("w{i}"), attr, None, vec![], cycle);
            }
        },
        check: |c| c.wakings > 1_000,
    };
    bench_setup(c, "try_to_wake_up", "16 tasks, 4 CPUs", &s);
}

/// The chain of `len` mutexes of `find_proxy_task/len` (see the module docs).
fn chain(sys: &mut System, len: u32) {
    let m: Vec<u32> = (0..len)
        .map(|i| sys.add_mutex(&format!("m{i}"), Protocol::Proxy))
        .collect();
    for i in 0..len as usize {
        // Every Ti takes its mutex first (at 0), then, after 1 ms, blocks on the next one.
        let mut prefix = vec![UserOp::Lock { mutex: m[i] }, UserOp::Sleep { ns: 1_000 * US }];
        let cycle = if i + 1 < m.len() {
            prefix.push(UserOp::Lock { mutex: m[i + 1] });
            vec![UserOp::Run { work_ns: 1_000 * US }]
        } else {
            vec![UserOp::Run { work_ns: 20 * US }, UserOp::Yield]
        };
        task(
            sys,
            &format!("t{i}"),
            SchedAttr::normal(0),
            Some(0),
            prefix,
            cycle,
        );
    }
    let donor = vec![UserOp::Sleep { ns: 2_000 * US }, UserOp::Lock { mutex: m[0] }];
    let cycle = vec![UserOp::Run { work_ns: 1_000 * US }];
    task(sys, "donor", SchedAttr::fifo(50), Some(0), donor, cycle);
}

fn find_proxy_task(c: &mut Criterion) {
    // `Setup::build` is a plain fn: one per chain length.
    let lens: [(u32, Build); 7] = [
        (1, |s| chain(s, 1)),
        (2, |s| chain(s, 2)),
        (4, |s| chain(s, 4)),
        (8, |s| chain(s, 8)),
        (16, |s| chain(s, 16)),
        (32, |s| chain(s, 32)),
        (64, |s| chain(s, 64)),
    ];
    for (len, build) in lens {
        let s = Setup {
            cpus: 1,
            sim_ns: 20_000 * US,
            build,
            // The donor is blocked from 2 ms on: proxy picks from then on, one per yield.
            check: |c| c.proxy_picks > 100,
        };
        bench_setup(c, "find_proxy_task", &len.to_string(), &s);
    }
}

fn donor_migration(c: &mut Criterion) {
    let s = Setup {
        cpus: 2,
        sim_ns: 50_000 * US,
        build: |sys| {
            let s = sys.add_mutex("S", Protocol::Proxy);
            let l = vec![
                UserOp::Lock { mutex: s },
                UserOp::Run { work_ns: 300 * US },
                UserOp::Unlock { mutex: s },
                UserOp::Sleep { ns: 200 * US },
            ];
            task(sys, "L", SchedAttr::fifo(10), Some(1), vec![], l);
            let m = vec![UserOp::Sleep { ns: 100 * US }, UserOp::Run { work_ns: 250 * US }];
            task(sys, "M", SchedAttr::fifo(30), Some(1), vec![], m);
            let h = vec![
                UserOp::Sleep { ns: 230 * US },
                UserOp::Lock { mutex: s },
                UserOp::Run { work_ns: 20 * US },
                UserOp::Unlock { mutex: s },
            ];
            task(sys, "H", SchedAttr::fifo(50), Some(0), vec![], h);
        },
        check: |c| c.proxy_migrations > 20 && c.return_migrations > 20,
    };
    bench_setup(c, "donor_migration", "2 CPUs", &s);
}

criterion_group!(
    benches,
    pick_next_task,
    try_to_wake_up,
    find_proxy_task,
    donor_migration
);
criterion_main!(benches);
