//! The rt-app interpreter's steady state allocates nothing: once every thread has run a few
//! loops, asking for the next system call neither allocates nor frees memory, whatever the
//! events (`run`, `runtime`, `sleep`, shared and per-thread `timer`, `lock`/`unlock`,
//! `wait`/`signal`, `barrier`, `yield`, several phases with their own attributes).
//!
//! A counting global allocator wraps the system one in this test binary only; the counts are
//! per thread, so the harness's other threads do not disturb them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use uapi::{UserCtx, UserOp, UserProgram};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator may run while the thread's locals are being torn down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count();
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

const WORKLOAD: &str = r#"{
  "global": { "duration": 10 },
  "resources": { "m": { "type": "mutex" }, "c": { "type": "wait" } },
  "tasks": {
    "periodic": { "policy": "SCHED_FIFO", "priority": 10,
                  "run": 100, "timer": { "ref": "shared", "period": 1000 } },
    "mixed": { "phases": {
      "p0": { "loop": 3, "policy": "SCHED_OTHER", "priority": -5,
              "lock": "m", "runtime": 100, "unlock": "m", "sleep": 50, "yield": 0 },
      "p1": { "loop": 2, "policy": "SCHED_FIFO", "priority": 20,
              "run": 30, "timer": { "ref": "unique", "period": 500 } },
      "p2": { "lock": "m", "signal": "c", "unlock": "m", "barrier": "b" }
    } },
    "other": { "lock": "m", "wait": { "ref": "c", "mutex": "m" }, "unlock": "m", "barrier": "b" }
  }
}"#;

/// Steps every thread round-robin with a fake clock: `Run` and sleeps advance it.
fn step_all(programs: &mut [Box<dyn UserProgram>], now_ns: &mut u64, rounds: usize) -> u64 {
    let mut ops = 0;
    for _ in 0..rounds {
        for p in programs.iter_mut() {
            let op = p.next_op(&UserCtx::new(*now_ns, 0));
            match op {
                UserOp::Run { work_ns } => *now_ns += work_ns,
                UserOp::Sleep { ns } => *now_ns += ns,
                UserOp::SleepUntil { at_ns } => *now_ns = (*now_ns).max(at_ns),
                UserOp::Exit => panic!("the threads loop forever"),
                _ => {}
            }
            ops += 1;
        }
    }
    ops
}

#[test]
fn steady_state_next_op_does_not_allocate() {
    let w = workload::load("alloc.json", WORKLOAD).unwrap_or_else(|e| panic!("{e}"));
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    let mut programs = w.programs();
    let mut now_ns = 0;
    // Warm-up: every thread through all its phases a few times (queues reach their size).
    step_all(&mut programs, &mut now_ns, 500);
    let before = allocations();
    let ops = step_all(&mut programs, &mut now_ns, 20_000);
    let during = allocations() - before;
    assert!(ops == 60_000 && now_ns > 0);
    assert_eq!(during, 0, "{during} allocations in {ops} steady-state ops");
}

/// The counter does see allocations (so the test above can fail).
#[test]
fn the_counter_counts() {
    let before = allocations();
    let v: Vec<u64> = std::hint::black_box(vec![1, 2, 3]);
    drop(v);
    assert_eq!(allocations() - before, 2);
}
