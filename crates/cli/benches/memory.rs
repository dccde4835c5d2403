//! Memory per task, measured with a counting global allocator (this binary only):
//! `cargo bench -p cli --bench memory [-- CPUS TASKS SIM_SECONDS]` (default 4 CPUs, 10 000
//! tasks, 0.2 s). Prints, for the bench mix:
//!
//! - the model: bytes live after `System::new` and the tasks are added, then the peak and the
//!   live bytes over the run, minus the same system with no tasks, per task;
//! - through `run`'s path (the mix as an rt-app workload: loader, interpreter, metrics
//!   collector): the peak over loading and simulating, minus the empty workload's, per task;
//! - the sizes of the per-task types that are public, and of a user task's future
//!   (`kernel::syscalls::task_main`), which the machine keeps boxed for the task's whole life.
//!
//! "After setup" counts what `System::add_task` keeps per task (the `Task`, its `pi_lock` and
//! `blocked_lock` spinlocks, its program, and the tables' growth slack, at 10 000 tasks up to
//! 64 % of the table); the peak adds each task's future, allocated at boot (after the tables
//! dropped their slack), and what the run allocates while it goes. README.md ("Memory") has
//! the figures and what they are made of.

use std::alloc::{GlobalAlloc, Layout, System as SysAlloc};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use kernel::locking::Protocol;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn grow(n: usize) {
    let now = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(now, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grow(l.size());
        COUNT.fetch_add(1, Relaxed);
        unsafe { SysAlloc.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { SysAlloc.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if n >= l.size() {
            grow(n - l.size());
        } else {
            LIVE.fetch_sub(l.size() - n, Relaxed);
        }
        COUNT.fetch_add(1, Relaxed);
        unsafe { SysAlloc.realloc(p, l, n) }
    }
}

/// A program for sizing the task future (never run).
struct Idle;

impl uapi::UserProgram for Idle {
    fn next_op(&mut self, _ctx: &uapi::UserCtx) -> uapi::UserOp {
        uapi::UserOp::Exit
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live bytes now, and resets the peak to them.
fn mark() -> usize {
    let live = LIVE.load(Relaxed);
    PEAK.store(live, Relaxed);
    live
}

/// (bytes after setup, peak over the run, live at the end of the run) above `mark()`.
fn model(cpus: usize, tasks: usize, sim_s: f64) -> (usize, usize, usize) {
    let base = mark();
    let mut sys = cli::bench::mix_system(cpus, tasks, sim_s);
    let setup = LIVE.load(Relaxed) - base;
    let out = sys.run(&mut |_| {});
    assert!(out.violations.is_empty(), "{:?}", out.violations);
    let peak = PEAK.load(Relaxed) - base;
    let end = LIVE.load(Relaxed) - base;
    drop(sys);
    (setup, peak, end)
}

/// Peak bytes above `mark()` over loading and simulating the rt-app mix with metrics.
fn through_run(cpus: usize, tasks: usize, sim_s: f64) -> usize {
    let text = cli::bench::mix_workload(cpus, tasks.max(1), sim_s);
    let base = mark();
    let w = workload::load("mix.json", &text).expect("the generated mix loads");
    let flags = harness::Flags {
        file: "mix.json".into(),
        ..Default::default()
    };
    let (cfg, costs) = harness::build_config(&w, &flags).expect("config");
    let r = harness::simulate(&w, &cfg, &costs, Protocol::None, None, None, &mut |_| {}).expect("runs");
    assert!(r.outcome.violations.is_empty());
    let peak = PEAK.load(Relaxed) - base;
    drop((r, w));
    peak
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let num = |i: usize, d: f64| args.get(i).and_then(|a| a.parse::<f64>().ok()).unwrap_or(d);
    let (cpus, tasks, sim_s) = (num(0, 4.0) as usize, num(1, 10_000.0) as usize, num(2, 0.2));
    let per = |a: usize, b: usize| (a as f64 - b as f64) / tasks as f64;

    let (s0, p0, e0) = model(cpus, 0, sim_s);
    let (s1, p1, e1) = model(cpus, tasks, sim_s);
    println!("memory per task, {cpus} CPUs x {tasks} tasks, {sim_s} simulated s (bytes)");
    println!("model, after setup          {:>10.0}", per(s1, s0));
    println!("model, peak over the run    {:>10.0}", per(p1, p0));
    println!("model, live at the end      {:>10.0}", per(e1, e0));
    // The empty rt-app workload: one task (a workload needs one), scaled out below.
    let r0 = through_run(cpus, 1, sim_s);
    let r1 = through_run(cpus, tasks, sim_s);
    println!("run (rt-app + metrics), peak{:>10.0}", per(r1, r0));
    let sys = cli::bench::mix_system(cpus, 0, sim_s);
    let fut = kernel::syscalls::task_main(sys.k.clone(), kernel::task::TaskId(0), Box::new(Idle));
    println!(
        "sizes: kernel Task {} B, task future {} B, rt-app thread {} B, TaskMetrics {} B",
        std::mem::size_of::<kernel::task::Task>(),
        std::mem::size_of_val(&fut),
        std::mem::size_of::<workload::program::RtAppThread>(),
        std::mem::size_of::<report::metrics::TaskMetrics>(),
    );
}
