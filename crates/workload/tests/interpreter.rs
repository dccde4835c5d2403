//! Interpreter tests: programs stepped with a fake clock, asserting the exact system calls.
//!
//! The fake kernel runs one thread alone on a CPU: `Run` advances the clock by its work,
//! `Sleep` by its length, `SleepUntil` to its deadline; every other op takes no time.

use sim::cpumask::{CpuId, CpuMask};
use uapi::{SchedAttr, UserCtx, UserOp, UserProgram};
use workload::{load, Mark, Workload};

const MS: u64 = 1_000_000;
const US: u64 = 1_000;

fn workload(text: &str) -> Workload {
    let w = load("t.json", text).unwrap_or_else(|e| panic!("{e}"));
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    w
}

/// Asks for the next op at `*now_ns` and lets the fake kernel carry it out.
fn step(p: &mut dyn UserProgram, now_ns: &mut u64) -> UserOp {
    let op = p.next_op(&UserCtx::new(*now_ns, 0));
    match op {
        UserOp::Run { work_ns } => *now_ns += work_ns,
        UserOp::Sleep { ns } => *now_ns += ns,
        UserOp::SleepUntil { at_ns } => *now_ns = (*now_ns).max(at_ns),
        _ => {}
    }
    op
}

/// Ops with the time each was issued, until `Exit` (included) or `limit` ops.
fn trace(p: &mut dyn UserProgram, now_ns: &mut u64, limit: usize) -> Vec<(u64, UserOp)> {
    let mut out = Vec::new();
    for _ in 0..limit {
        let at = *now_ns;
        let op = step(p, now_ns);
        let exit = op == UserOp::Exit;
        out.push((at, op));
        if exit {
            break;
        }
    }
    out
}

fn ops(t: &[(u64, UserOp)]) -> Vec<UserOp> {
    t.iter().map(|(_, op)| op.clone()).collect()
}

fn mark(mark: Mark) -> UserOp {
    UserOp::Mark { mark: mark.marker() }
}

fn start(thread_loop: u32, phase: u32, phase_loop: u32) -> UserOp {
    mark(Mark::LoopStart {
        thread_loop,
        phase,
        phase_loop,
    })
}

fn end(thread_loop: u32, phase: u32, phase_loop: u32) -> UserOp {
    mark(Mark::LoopEnd {
        thread_loop,
        phase,
        phase_loop,
    })
}

fn set(attr: SchedAttr) -> UserOp {
    UserOp::SetAttr { attr }
}

#[test]
fn single_phase_thread_exact_sequence() {
    let w = workload(r#"{ "tasks": { "t": { "loop": 2, "run": 100, "sleep": 50 } } }"#);
    let mut p = w.program(0);
    let mut now = 1_000;
    let t = trace(p.as_mut(), &mut now, 100);
    assert_eq!(
        t,
        vec![
            (1_000, mark(Mark::TaskStart)),
            (1_000, set(SchedAttr::normal(0))),
            (1_000, start(0, 0, 0)),
            (1_000, UserOp::Run { work_ns: 100 * US }),
            (101_000, UserOp::Sleep { ns: 50 * US }),
            (151_000, end(0, 0, 0)),
            (151_000, start(0, 0, 1)),
            (151_000, UserOp::Run { work_ns: 100 * US }),
            (251_000, UserOp::Sleep { ns: 50 * US }),
            (301_000, end(0, 0, 1)),
            (301_000, set(SchedAttr::normal(0))),
            (301_000, mark(Mark::TaskEnd)),
            (301_000, UserOp::Exit),
        ]
    );
    // Asking again after Exit keeps answering Exit.
    assert_eq!(step(p.as_mut(), &mut now), UserOp::Exit);
}

#[test]
fn delay_sleeps_to_absolute_start_then_sets_policy() {
    let w = workload(
        r#"{ "tasks": { "t": { "policy": "SCHED_FIFO", "priority": 7, "delay": 500, "loop": 1, "run": 10 } } }"#,
    );
    let mut p = w.program(0);
    let mut now = 2_000;
    let t = ops(&trace(p.as_mut(), &mut now, 100));
    assert_eq!(
        t[..4],
        [
            mark(Mark::TaskStart),
            UserOp::SleepUntil {
                at_ns: 2_000 + 500 * US
            },
            set(SchedAttr::fifo(7)),
            start(0, 0, 0),
        ]
    );
    // rt-app puts the thread back to SCHED_OTHER before its end marker.
    assert_eq!(
        t[t.len() - 3..],
        [set(SchedAttr::normal(0)), mark(Mark::TaskEnd), UserOp::Exit]
    );
}

#[test]
fn run_zero_emits_nothing_and_forever_threads_never_exit() {
    let w = workload(r#"{ "tasks": { "t": { "run": 0 } } }"#);
    let mut p = w.program(0);
    let mut now = 0;
    let t = ops(&trace(p.as_mut(), &mut now, 1000));
    assert_eq!(t.len(), 1000);
    assert!(!t.contains(&UserOp::Exit));
    // No "loop": the phase runs once per thread loop, and the thread loops forever.
    assert_eq!(
        t[2..6],
        [start(0, 0, 0), end(0, 0, 0), start(1, 0, 0), end(1, 0, 0)]
    );
}

#[test]
fn runtime_runs_32us_chunks_until_wall_time_passed() {
    let w = workload(r#"{ "tasks": { "t": { "loop": 1, "runtime": 100 } } }"#);
    let mut p = w.program(0);
    let mut now = 0;
    let t = trace(p.as_mut(), &mut now, 100);
    let runs: Vec<_> = t
        .iter()
        .filter(|(_, op)| matches!(op, UserOp::Run { .. }))
        .collect();
    // 32, 64, 96 µs < 100: keep going; 128 µs >= 100: stop. Four chunks.
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|(_, op)| *op == UserOp::Run { work_ns: 32 * US }));

    // Preempted for a long time after the first chunk: the wall time has passed, stop.
    let mut p = w.program(0);
    let mut now = 0;
    for _ in 0..3 {
        step(p.as_mut(), &mut now); // TaskStart, SetAttr, LoopStart
    }
    assert_eq!(step(p.as_mut(), &mut now), UserOp::Run { work_ns: 32 * US });
    now += 500 * US;
    assert_eq!(step(p.as_mut(), &mut now), end(0, 0, 0));

    // runtime 0 still runs one chunk (rt-app's do-while).
    let w = workload(r#"{ "tasks": { "t": { "loop": 1, "runtime": 0 } } }"#);
    let mut p = w.program(0);
    let mut now = 0;
    let t = ops(&trace(p.as_mut(), &mut now, 100));
    assert_eq!(t.iter().filter(|op| matches!(op, UserOp::Run { .. })).count(), 1);
}

/// A slow first phase overruns the 10 ms timer; then three fast activations.
fn late_timer_workload(mode: &str) -> Workload {
    workload(&format!(
        r#"{{ "tasks": {{ "t": {{ "loop": 1, "phases": {{
            "slow": {{ "run": 25000, "timer": {{ "ref": "t", "period": 10000, "mode": "{mode}" }} }},
            "fast": {{ "loop": 3, "run": 1000, "timer": {{ "ref": "t", "period": 10000, "mode": "{mode}" }} }}
        }} }} }} }}"#
    ))
}

fn runs_and_sleeps(t: &[(u64, UserOp)]) -> Vec<(u64, UserOp)> {
    t.iter()
        .filter(|(_, op)| matches!(op, UserOp::Run { .. } | UserOp::SleepUntil { .. }))
        .cloned()
        .collect()
}

#[test]
fn relative_timer_rebases_when_late() {
    let w = late_timer_workload("relative");
    let mut p = w.program(0);
    let mut now = 0;
    let t = trace(p.as_mut(), &mut now, 100);
    let run = |ms| UserOp::Run { work_ns: ms * MS };
    let until = |ms| UserOp::SleepUntil { at_ns: ms * MS };
    assert_eq!(
        runs_and_sleeps(&t),
        vec![
            (0, run(25)), // expiry 10 ms missed at 25 ms: next grid restarts at 25 ms
            (25 * MS, run(1)),
            (26 * MS, until(35)),
            (35 * MS, run(1)),
            (36 * MS, until(45)),
            (45 * MS, run(1)),
            (46 * MS, until(55)),
        ]
    );
}

#[test]
fn absolute_timer_keeps_its_grid_when_late() {
    let w = late_timer_workload("absolute");
    let mut p = w.program(0);
    let mut now = 0;
    let t = trace(p.as_mut(), &mut now, 100);
    let run = |ms| UserOp::Run { work_ns: ms * MS };
    let until = |ms| UserOp::SleepUntil { at_ns: ms * MS };
    assert_eq!(
        runs_and_sleeps(&t),
        vec![
            (0, run(25)),      // expiry 10 ms missed
            (25 * MS, run(1)), // expiry 20 ms missed too (now 26 ms): no sleep
            (26 * MS, run(1)),
            (27 * MS, until(30)),
            (30 * MS, run(1)),
            (31 * MS, until(40)),
        ]
    );
}

#[test]
fn timer_base_is_thread_start_after_delay() {
    let w = workload(
        r#"{ "tasks": { "t": { "delay": 3000, "loop": 2, "run": 1000, "timer": { "ref": "unique", "period": 10000 } } } }"#,
    );
    let mut p = w.program(0);
    let mut now = 0;
    let t = trace(p.as_mut(), &mut now, 100);
    let sleeps: Vec<_> = t
        .iter()
        .filter(|(_, op)| matches!(op, UserOp::SleepUntil { .. }))
        .map(|(_, op)| op.clone())
        .collect();
    let until = |ms| UserOp::SleepUntil { at_ns: ms * MS };
    assert_eq!(sleeps, vec![until(3), until(13), until(23)]);
}

/// The ops up to and including the first `SleepUntil`, issued at time 0.
fn until_first_sleep(p: &mut dyn UserProgram) -> UserOp {
    let mut now = 0;
    loop {
        let op = p.next_op(&UserCtx::new(now, 0));
        if let UserOp::SleepUntil { .. } = op {
            return op;
        }
        if let UserOp::Run { work_ns } = op {
            now += work_ns;
        }
    }
}

#[test]
fn shared_timers_are_shared_unique_timers_are_not_and_runs_are_fresh() {
    let w = workload(
        r#"{ "tasks": {
            "a": { "instance": 2, "timer": { "ref": "T", "period": 10000 } },
            "b": { "instance": 2, "timer": { "ref": "unique", "period": 10000 } }
        } }"#,
    );
    let until = |ms| UserOp::SleepUntil { at_ns: ms * MS };
    for _run in 0..2 {
        let mut ps = w.programs();
        let got: Vec<_> = ps.iter_mut().map(|p| until_first_sleep(p.as_mut())).collect();
        // a-0 and a-1 advance one shared timer; b-2 and b-3 each have their own.
        assert_eq!(got, vec![until(10), until(20), until(10), until(10)]);
    }
    // `program` hands out one run until a thread is asked for twice.
    for _run in 0..2 {
        let got: Vec<_> = (0..4).map(|t| until_first_sleep(w.program(t).as_mut())).collect();
        assert_eq!(got, vec![until(10), until(20), until(10), until(10)]);
    }
    let clone = w.clone();
    let got: Vec<_> = (0..2)
        .map(|t| until_first_sleep(clone.program(t).as_mut()))
        .collect();
    assert_eq!(got, vec![until(10), until(20)]);
}

#[test]
fn barrier_lowers_to_mutex_and_condvar_like_rtapp() {
    let w = workload(
        r#"{ "tasks": { "a": { "loop": 2, "barrier": "B" }, "b": { "loop": 2, "barrier": "B" } } }"#,
    );
    assert_eq!(w.barriers[0].initial_waiting, 1);
    let (m, c) = (w.barriers[0].mutex, w.barriers[0].cond);
    let mut ps = w.programs();
    let mut next = |i: usize| ps[i].next_op(&UserCtx::new(0, i as u32));
    for _ in 0..3 {
        next(0); // TaskStart, SetAttr, LoopStart
        next(1);
    }
    // a arrives first: counter 1 -> 0, waits.
    assert_eq!(next(0), UserOp::Lock { mutex: m });
    assert_eq!(next(0), UserOp::CondWait { cond: c, mutex: m });
    // b arrives last: counter is 0, broadcast.
    assert_eq!(next(1), UserOp::Lock { mutex: m });
    assert_eq!(next(1), UserOp::CondBroadcast { cond: c });
    assert_eq!(next(1), UserOp::Unlock { mutex: m });
    assert_eq!(next(1), end(0, 0, 0));
    // a wakes: counter back to 1, unlock.
    assert_eq!(next(0), UserOp::Unlock { mutex: m });
    assert_eq!(next(0), end(0, 0, 0));
    // Second round, b first this time.
    assert_eq!(next(1), start(0, 0, 1));
    assert_eq!(next(1), UserOp::Lock { mutex: m });
    assert_eq!(next(1), UserOp::CondWait { cond: c, mutex: m });
    assert_eq!(next(0), start(0, 0, 1));
    assert_eq!(next(0), UserOp::Lock { mutex: m });
    assert_eq!(next(0), UserOp::CondBroadcast { cond: c });
    assert_eq!(next(0), UserOp::Unlock { mutex: m });
    assert_eq!(next(1), UserOp::Unlock { mutex: m });
}

#[test]
fn suspend_resume_sync_wait_signal_lower_one_to_one() {
    let w = workload(
        r#"{ "tasks": {
            "a": { "loop": 1, "suspend": "", "lock": "M", "wait": { "ref": "C", "mutex": "M" },
                   "sync": { "ref": "C", "mutex": "M" }, "unlock": "M", "signal": "C", "broad": "C",
                   "yield": "" },
            "b": { "loop": 1, "resume": "a" }
        } }"#,
    );
    let id = |name: &str, mutex: bool| {
        w.resources
            .iter()
            .position(|r| r.name == name && matches!(r.kind, workload::ResourceKind::Mutex { .. }) == mutex)
            .unwrap() as u32
    };
    let (sm, sc) = (id("__suspend_a", true), id("__suspend_a", false));
    let (m, c) = (id("M", true), id("C", false));
    let mut now = 0;
    let a = ops(&trace(w.program(0).as_mut(), &mut now, 100));
    assert_eq!(
        a[3..a.len() - 4],
        [
            UserOp::Lock { mutex: sm },
            UserOp::CondWait { cond: sc, mutex: sm },
            UserOp::Unlock { mutex: sm },
            UserOp::Lock { mutex: m },
            UserOp::CondWait { cond: c, mutex: m },
            UserOp::CondSignal { cond: c },
            UserOp::CondWait { cond: c, mutex: m },
            UserOp::Unlock { mutex: m },
            UserOp::CondSignal { cond: c },
            UserOp::CondBroadcast { cond: c },
            UserOp::Yield,
        ]
    );
    let b = ops(&trace(w.program(1).as_mut(), &mut now, 100));
    assert_eq!(
        b[3..6],
        [
            UserOp::Lock { mutex: sm },
            UserOp::CondBroadcast { cond: sc },
            UserOp::Unlock { mutex: sm }
        ]
    );
}

#[test]
fn phase_attributes_and_affinity_only_when_they_change() {
    let w = workload(
        r#"{ "proxysched": { "cpus": 4 },
            "tasks": { "t": { "policy": "SCHED_FIFO", "priority": 5, "cpus": [2, 3], "loop": 2,
                "phases": { "a": { "priority": 50, "cpus": [1], "run": 10 }, "b": { "run": 10 } } } } }"#,
    );
    let mut now = 0;
    let t = ops(&trace(w.program(0).as_mut(), &mut now, 100));
    let cpus = |c: &[u32]| UserOp::SetAffinity {
        cpus: c.iter().copied().map(CpuId).collect::<CpuMask>(),
    };
    let run = || UserOp::Run { work_ns: 10 * US };
    assert_eq!(
        t,
        vec![
            mark(Mark::TaskStart),
            set(SchedAttr::fifo(5)),
            cpus(&[1]),
            set(SchedAttr::fifo(50)),
            start(0, 0, 0),
            run(),
            end(0, 0, 0),
            cpus(&[2, 3]),
            start(0, 1, 0),
            run(),
            end(0, 1, 0),
            // Phase a again: its attributes are still the current ones (rt-app
            // curr_sched_data), only the affinity changes back.
            cpus(&[1]),
            start(1, 0, 0),
            run(),
            end(1, 0, 0),
            cpus(&[2, 3]),
            start(1, 1, 0),
            run(),
            end(1, 1, 0),
            set(SchedAttr::normal(0)),
            mark(Mark::TaskEnd),
            UserOp::Exit,
        ]
    );
}

#[test]
fn phase_without_cpus_returns_to_all_cpus_and_nice_survives_rt() {
    let w = workload(
        r#"{ "tasks": { "t": { "priority": -5, "loop": 1, "phases": {
            "a": { "cpus": [0], "policy": "SCHED_RR", "priority": 3, "run": 1 },
            "b": { "run": 1 } } } } }"#,
    );
    let mut now = 0;
    let t = ops(&trace(w.program(0).as_mut(), &mut now, 100));
    let rr = SchedAttr {
        nice: -5,
        ..SchedAttr::rr(3)
    };
    assert_eq!(t[1], set(SchedAttr::normal(-5)));
    assert_eq!(
        t[2],
        UserOp::SetAffinity {
            cpus: CpuMask::single(CpuId(0))
        }
    );
    assert_eq!(t[3], set(rr));
    assert_eq!(
        t[7],
        UserOp::SetAffinity {
            cpus: CpuMask::first_n(sim::MAX_CPUS)
        }
    );
    // The final reset keeps the nice value, as pthread_setschedparam does.
    assert_eq!(t[t.len() - 3], set(SchedAttr::normal(-5)));
}

#[test]
fn demo_program_starts_as_documented() {
    let w = workload(workload::DEMO);
    let mut ps = w.programs();
    let mut now = 0;
    let high = ops(&trace(ps[7].as_mut(), &mut now, 7));
    assert_eq!(
        high,
        vec![
            mark(Mark::TaskStart),
            UserOp::SleepUntil { at_ns: 995 * MS },
            set(SchedAttr::fifo(30)),
            start(0, 0, 0),
            UserOp::Sleep { ns: 7 * MS },
            UserOp::Lock { mutex: 1 },
            UserOp::Run { work_ns: MS },
        ]
    );
}

#[test]
fn workloads_and_programs_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<Workload>();
    assert_send::<workload::RtAppThread>();
}

/// The calls of a DL thread driven with the kernel's results: `refuse` answers the call of
/// that index (0-based) with `Err(errno)`, every other call succeeds.
fn with_results(text: &str, refuse: usize, errno: uapi::Errno) -> Vec<UserOp> {
    let w = workload(text);
    let mut p = w.program(0);
    let mut ops: Vec<UserOp> = Vec::new();
    let mut ctx = UserCtx::new(0, 0);
    ctx.pid = 1000;
    ctx.comm = uapi::Comm::new("dl thread");
    for _ in 0..50 {
        ctx.ret = if ops.len() == refuse + 1 {
            Err(errno)
        } else {
            Ok(())
        };
        let op = p.next_op(&ctx);
        let last = matches!(op, UserOp::Exit | UserOp::ExitGroup { .. });
        ops.push(op);
        if last {
            break;
        }
    }
    ops
}

const DL_THREAD: &str = r#"{"tasks": {"dl thread": {"policy": "SCHED_DEADLINE", "cpus": [0],
    "dl-runtime": 500, "dl-period": 10000, "run": 100}}, "global": {"duration": 1}}"#;

/// A refused `sched_setattr()` ends the program as rt-app does: its message on stderr, then
/// `exit(EXIT_FAILURE)`; nothing of the thread's work is issued after the refusal.
#[test]
fn a_refused_setattr_writes_the_error_and_exits_the_process() {
    let ok = with_results(DL_THREAD, usize::MAX, uapi::Errno::EBUSY);
    let i = ok
        .iter()
        .position(|op| matches!(op, UserOp::SetAttr { attr } if attr.policy == uapi::Policy::Deadline))
        .expect("the thread sets SCHED_DEADLINE");
    assert!(
        ok[i + 1..].iter().any(|op| matches!(op, UserOp::Run { .. })),
        "{ok:?}"
    );
    assert!(!ok
        .iter()
        .any(|op| matches!(op, UserOp::ExitGroup { .. } | UserOp::Write { .. })));

    let failed = with_results(DL_THREAD, i, uapi::Errno::EBUSY);
    assert_eq!(failed[..=i], ok[..=i]);
    assert_eq!(
        failed[i + 1..],
        [
            UserOp::Write {
                fd: 2,
                text: "rt-app: thread dl_thread (pid 1000): sched_setattr(SCHED_DEADLINE, runtime \
                       500000 ns, deadline 10000000 ns, period 10000000 ns) failed with -16: failed \
                       to set deadline attributes: Device or resource busy; rt-app exits \
                       (EXIT_FAILURE)\n"
                    .to_string()
            },
            UserOp::ExitGroup { status: 1 },
        ]
    );
}

/// A failed call rt-app does not check (here the `run` before it) changes nothing: only the
/// result of the call just made counts.
#[test]
fn a_result_belongs_to_the_call_just_made() {
    let ok = with_results(DL_THREAD, usize::MAX, uapi::Errno::EBUSY);
    let run = ok
        .iter()
        .position(|op| matches!(op, UserOp::Run { .. }))
        .expect("a run");
    assert_eq!(with_results(DL_THREAD, run, uapi::Errno::EINVAL), ok);
}
