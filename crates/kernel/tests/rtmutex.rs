//! rt_mutex priority inheritance (M-10..M-16), checked to the nanosecond on whole systems
//! with zero costs: boost at the exact block time, transitive boost through a lock chain, a
//! fair owner running in the RT class while boosted, waiters served by priority, and the
//! M-13 acquisition rule (a stronger task steals a freed lock from a woken waiter that has
//! not run yet; an equal one does not).
//!
//! Each scenario also fails under the obvious wrong model: no PI (the hog preempts the
//! owner), a one-level boost (the hog preempts the chain's tail), a FIFO wait list (arrival
//! order), or a handoff unlock (the woken waiter owns the lock before it runs).

mod common;

use common::{Collect, Script};
use kernel::locking::rtmutex::RtMutexId;
use kernel::locking::Protocol;
use kernel::sched::{Class, Costs};
use kernel::system::{Config, EndReason, Outcome, System, TaskSpec};
use kernel::tracepoints::{Event, EventKind, LockName, Pid};
use sim::{CpuId, CpuMask};
use uapi::{SchedAttr, UserOp};

const MS: u64 = 1_000_000;

fn lock(m: u32) -> UserOp {
    UserOp::Lock { mutex: m }
}
fn unlock(m: u32) -> UserOp {
    UserOp::Unlock { mutex: m }
}
fn run_ms(ms: u64) -> UserOp {
    UserOp::Run { work_ns: ms * MS }
}
fn sleep_ms(ms: u64) -> UserOp {
    UserOp::Sleep { ns: ms * MS }
}

struct Done {
    sys: System,
    events: Vec<Event>,
    pids: Vec<Pid>,
}

/// Boot a one-CPU system with `nr_mutexes` PI mutexes (resource ids 0..) and the given
/// threads (created in order, all pinned to CPU 0), and run it to completion.
fn run(nr_mutexes: u32, threads: Vec<(&str, SchedAttr, Vec<UserOp>)>) -> Done {
    let (d, out) = run_to_end(nr_mutexes, threads);
    assert_eq!(out.end_reason, EndReason::Exited, "{}", out.report);
    d
}

/// [`run`] for runs that may end otherwise than by every thread exiting.
fn run_to_end(nr_mutexes: u32, threads: Vec<(&str, SchedAttr, Vec<UserOp>)>) -> (Done, Outcome) {
    let threads = threads.into_iter().map(|(n, a, ops)| (n, a, 0, ops)).collect();
    run_on(1, nr_mutexes, threads)
}

/// Boot `nr_cpus` CPUs; each thread is pinned to the CPU given with it.
fn run_on(
    nr_cpus: usize,
    nr_mutexes: u32,
    threads: Vec<(&str, SchedAttr, u32, Vec<UserOp>)>,
) -> (Done, Outcome) {
    let mut cfg = Config::new(nr_cpus);
    cfg.costs = Costs::zero();
    cfg.check_invariants = true;
    cfg.limit_ns = 1_000 * MS;
    let sink = Collect::default();
    let mut sys = System::new(cfg, Box::new(sink.clone()));
    for i in 0..nr_mutexes {
        assert_eq!(sys.add_mutex(&format!("m{i}"), Protocol::Pi), i);
    }
    let mut pids = Vec::new();
    for (i, (name, attr, cpu, ops)) in threads.into_iter().enumerate() {
        pids.push(sys.add_task(TaskSpec {
            name: name.to_string(),
            attr,
            cpus: Some(CpuMask::single(CpuId(cpu))),
            thread: i as u32,
            program: Script::boxed(ops),
        }));
    }
    let out = sys.run(&mut |_| {});
    assert!(out.violations.is_empty(), "violations: {:#?}", out.violations);
    let events = sink.0.borrow().clone();
    (Done { sys, events, pids }, out)
}

impl Done {
    /// `sched_pi_setprio` records of `pid`: (time, oldprio, newprio).
    fn setprio(&self, pid: Pid) -> Vec<(u64, i32, i32)> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::SchedPiSetprio {
                    task,
                    oldprio,
                    newprio,
                } if task.pid == pid => {
                    assert_eq!(task.prio, oldprio, "the record names the task at its old prio");
                    Some((e.time_ns, oldprio, newprio))
                }
                _ => None,
            })
            .collect()
    }

    /// Times `pid` blocked on rt_mutex `m`.
    fn contended(&self, pid: Pid, m: u32) -> Vec<u64> {
        self.lock_events(pid, m, true)
    }

    /// Times `pid` took rt_mutex `m` after waiting.
    fn acquired(&self, pid: Pid, m: u32) -> Vec<u64> {
        self.lock_events(pid, m, false)
    }

    fn lock_events(&self, who: Pid, m: u32, contended: bool) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::LockContended { pid, lock }
                    if contended && pid == who && lock == LockName::RtMutex(RtMutexId(m)) =>
                {
                    Some(e.time_ns)
                }
                EventKind::LockAcquired { pid, lock }
                    if !contended && pid == who && lock == LockName::RtMutex(RtMutexId(m)) =>
                {
                    Some(e.time_ns)
                }
                _ => None,
            })
            .collect()
    }

    /// Every switch to `pid`: (time, the prio `sched_switch` shows for it).
    fn switched_in(&self, pid: Pid) -> Vec<(u64, i32)> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::SchedSwitch { next, .. } if next.pid == pid => Some((e.time_ns, next.prio)),
                _ => None,
            })
            .collect()
    }

    fn exit_time(&self, pid: Pid) -> u64 {
        self.events
            .iter()
            .find_map(|e| match e.kind {
                EventKind::SchedProcessExit { task } if task.pid == pid => Some(e.time_ns),
                _ => None,
            })
            .expect("the task exited")
    }

    /// No task is left boosted, blocked or owning: every rt_mutex is free and clean.
    fn assert_all_clean(&self) {
        let s = self.sys.k.st();
        for t in s.tasks.iter().filter(|t| t.thread.is_some()) {
            assert!(t.pi_waiters.is_empty(), "{} still has pi_waiters", t.pid);
            assert_eq!(t.pi_blocked_on, None);
            assert_eq!(*t.rt_waiter, None);
            assert_eq!(t.prio, t.normal_prio, "{} still boosted", t.pid);
        }
        for m in &s.rt_mutexes {
            assert_eq!(m.owner, None);
            assert!(m.waiters.is_empty());
            assert!(!m.has_waiters, "{} keeps HAS_WAITERS", m.name);
        }
    }
}

/// The classic inversion on one CPU: low L (FIFO 10, prio 89) owns A; high H (FIFO 50,
/// prio 49) blocks on it at 1 ms; medium M (FIFO 30, prio 69) wakes at 2 ms to hog the CPU.
/// With PI, L runs at 49 from the block until its unlock at 10 ms, so M cannot preempt it,
/// and H takes A at exactly 10 ms. Without PI, M runs 2..22 ms and H waits until 30 ms.
#[test]
fn pi_boosts_the_owner_over_a_medium_hog_and_deboosts_at_unlock() {
    let a = 0;
    let d = run(
        1,
        vec![
            ("low", SchedAttr::fifo(10), vec![lock(a), run_ms(10), unlock(a)]),
            (
                "high",
                SchedAttr::fifo(50),
                vec![sleep_ms(1), lock(a), run_ms(1), unlock(a)],
            ),
            ("medium", SchedAttr::fifo(30), vec![sleep_ms(2), run_ms(20)]),
        ],
    );
    let (l, h, m) = (d.pids[0], d.pids[1], d.pids[2]);
    assert_eq!(d.setprio(l), vec![(MS, 89, 49), (10 * MS, 49, 89)]);
    assert_eq!(d.setprio(h), vec![]);
    assert_eq!(d.contended(h, a), vec![MS]);
    assert_eq!(d.acquired(h, a), vec![10 * MS]);
    // The boosted owner is what runs once H blocks, at H's prio.
    assert!(d.switched_in(l).contains(&(MS, 49)), "{:?}", d.switched_in(l));
    // The hog first runs after H is done (11 ms), not at its 2 ms wakeup.
    let hog: Vec<u64> = d.switched_in(m).iter().map(|x| x.0).filter(|&t| t > 0).collect();
    assert_eq!(hog.first(), Some(&(11 * MS)));
    assert_eq!(d.exit_time(h), 11 * MS);
    assert_eq!(d.exit_time(l), 31 * MS);
    d.assert_all_clean();
}

/// H waits on A owned by M, and M waits on B owned by L: the chain walk lends H's prio to L
/// through M. L (FIFO 10) takes B; M (FIFO 20) takes A at 1 ms and blocks on B (L → 79); H
/// (FIFO 50) blocks on A at 2 ms (M → 49, then L → 49); a FIFO 30 hog wakes at 3 ms and
/// must not preempt L. L unlocks B at 10 ms, M gets B, then unlocks A at 11 ms for H.
#[test]
fn transitive_boost_through_a_two_lock_chain() {
    let (a, b) = (0, 1);
    let d = run(
        2,
        vec![
            ("low", SchedAttr::fifo(10), vec![lock(b), run_ms(10), unlock(b)]),
            (
                "mid",
                SchedAttr::fifo(20),
                vec![sleep_ms(1), lock(a), lock(b), run_ms(1), unlock(b), unlock(a)],
            ),
            (
                "high",
                SchedAttr::fifo(50),
                vec![sleep_ms(2), lock(a), run_ms(1), unlock(a)],
            ),
            ("hog", SchedAttr::fifo(30), vec![sleep_ms(3), run_ms(20)]),
        ],
    );
    let (l, m, h, x) = (d.pids[0], d.pids[1], d.pids[2], d.pids[3]);
    assert_eq!(
        d.setprio(l),
        vec![(MS, 89, 79), (2 * MS, 79, 49), (10 * MS, 49, 89)]
    );
    assert_eq!(d.setprio(m), vec![(2 * MS, 79, 49), (11 * MS, 49, 79)]);
    assert_eq!(d.contended(m, b), vec![MS]);
    assert_eq!(d.acquired(m, b), vec![10 * MS]);
    assert_eq!(d.contended(h, a), vec![2 * MS]);
    assert_eq!(d.acquired(h, a), vec![11 * MS]);
    let hog: Vec<u64> = d.switched_in(x).iter().map(|x| x.0).filter(|&t| t > 0).collect();
    assert_eq!(hog.first(), Some(&(12 * MS)));
    d.assert_all_clean();
}

/// A SCHED_NORMAL owner boosted by a FIFO 50 waiter runs in the RT class (prio 49) until it
/// unlocks, then returns to the fair class at 120: a FIFO 30 hog cannot preempt it while
/// boosted, and it runs again only after the hog.
#[test]
fn fair_owner_runs_in_the_rt_class_while_boosted() {
    let a = 0;
    let d = run(
        1,
        vec![
            ("fair", SchedAttr::normal(0), vec![lock(a), run_ms(10), unlock(a)]),
            (
                "high",
                SchedAttr::fifo(50),
                vec![sleep_ms(1), lock(a), run_ms(1), unlock(a)],
            ),
            ("hog", SchedAttr::fifo(30), vec![sleep_ms(2), run_ms(20)]),
        ],
    );
    let (l, h, x) = (d.pids[0], d.pids[1], d.pids[2]);
    assert_eq!(d.setprio(l), vec![(MS, 120, 49), (10 * MS, 49, 120)]);
    assert_eq!(d.acquired(h, a), vec![10 * MS]);
    let ins = d.switched_in(l);
    assert!(
        ins.contains(&(MS, 49)),
        "runs at the RT prio once H blocks: {ins:?}"
    );
    assert_eq!(
        ins.last(),
        Some(&(31 * MS, 120)),
        "back in the fair class after the hog: {ins:?}"
    );
    let hog: Vec<u64> = d.switched_in(x).iter().map(|x| x.0).filter(|&t| t > 0).collect();
    assert_eq!(hog.first(), Some(&(11 * MS)));
    assert_eq!(
        d.sys.k.st().tasks.iter().find(|t| t.pid == l).unwrap().class,
        Class::Fair
    );
    d.assert_all_clean();
}

/// Waiters arrive FIFO 20, FIFO 40, FIFO 30 (at 1, 2, 3 ms) while a FIFO 10 owner holds the
/// lock, asleep until 5 ms, then running until 10 ms: they get it strongest first (40 at
/// 10 ms, 30 at 11 ms, 20 at 12 ms), not in arrival order. The sleeping owner's prio follows
/// only the top waiter: 79 at 1 ms, 59 at 2 ms, and no change when the weaker FIFO 30 waiter
/// arrives.
#[test]
fn waiters_are_served_by_priority_not_arrival() {
    let a = 0;
    let waiter = |ms| vec![sleep_ms(ms), lock(a), run_ms(1), unlock(a)];
    let d = run(
        1,
        vec![
            (
                "owner",
                SchedAttr::fifo(10),
                vec![lock(a), sleep_ms(5), run_ms(5), unlock(a)],
            ),
            ("w20", SchedAttr::fifo(20), waiter(1)),
            ("w40", SchedAttr::fifo(40), waiter(2)),
            ("w30", SchedAttr::fifo(30), waiter(3)),
        ],
    );
    let (o, w20, w40, w30) = (d.pids[0], d.pids[1], d.pids[2], d.pids[3]);
    assert_eq!(
        d.setprio(o),
        vec![(MS, 89, 79), (2 * MS, 79, 59), (10 * MS, 59, 89)]
    );
    assert_eq!(d.acquired(w40, a), vec![10 * MS]);
    assert_eq!(d.acquired(w30, a), vec![11 * MS]);
    assert_eq!(d.acquired(w20, a), vec![12 * MS]);
    // The new owners never needed a boost: each beats the waiters it leaves behind.
    for w in [w20, w30, w40] {
        assert_eq!(d.setprio(w), vec![]);
    }
    d.assert_all_clean();
}

/// The M-13 race on lock `a`: a FIFO 50 owner holds it from 0 to 10 ms (asleep until 2 ms),
/// a FIFO 20 waiter blocks on it at 1 ms, and a third thread `name` (pids 0, 1, 2 in that
/// order) queues at 5 ms and asks for it as soon as it runs.
fn steal_race(a: u32, name: &str, attr: SchedAttr) -> Done {
    run(
        1,
        vec![
            (
                "owner",
                SchedAttr::fifo(50),
                vec![lock(a), sleep_ms(2), run_ms(8), unlock(a)],
            ),
            (
                "waiter",
                SchedAttr::fifo(20),
                vec![sleep_ms(1), lock(a), run_ms(1), unlock(a)],
            ),
            (name, attr, vec![sleep_ms(5), lock(a), run_ms(1), unlock(a)]),
        ],
    )
}

/// M-13, no handoff: a FIFO 50 owner unlocks at 10 ms with a FIFO 20 waiter W; W is woken
/// but cannot run before the owner exits, and a FIFO 40 task S, queued since 5 ms, runs
/// first: the lock is free and S beats the top waiter, so S takes it without waiting. W gets
/// it when S unlocks at 11 ms. (A handoff model would give W the lock at 10 ms and block S.)
#[test]
fn a_stronger_task_steals_a_freed_lock_from_the_woken_waiter() {
    let a = 0;
    let d = steal_race(a, "stealer", SchedAttr::fifo(40));
    let (o, w, st) = (d.pids[0], d.pids[1], d.pids[2]);
    assert_eq!(d.contended(w, a), vec![MS]);
    assert!(d.contended(st, a).is_empty(), "the stealer never waits");
    assert_eq!(d.acquired(w, a), vec![11 * MS]);
    assert_eq!(d.exit_time(o), 10 * MS);
    assert_eq!(d.exit_time(st), 11 * MS);
    // The weaker waiter never boosts anyone.
    assert_eq!(d.setprio(o), vec![]);
    assert_eq!(d.setprio(st), vec![]);
    d.assert_all_clean();
}

/// The same race with an equal-prio (FIFO 20) latecomer queued ahead of the woken waiter: it
/// runs first but may not steal (RT tasks never steal laterally), so it blocks at 10 ms and
/// the woken waiter takes the lock at 10 ms, then hands it on at 11 ms.
#[test]
fn an_equal_prio_task_does_not_steal() {
    let a = 0;
    let d = steal_race(a, "latecomer", SchedAttr::fifo(20));
    let (w, late) = (d.pids[1], d.pids[2]);
    assert_eq!(d.contended(late, a), vec![10 * MS]);
    assert_eq!(d.acquired(w, a), vec![10 * MS]);
    assert_eq!(d.acquired(late, a), vec![11 * MS]);
    d.assert_all_clean();
}

/// M-15/R-2: a deboosted RT task goes to the head of its new list. L (FIFO 10) is boosted
/// by H from 1 ms; its FIFO 10 peer E wakes at 2 ms and queues at prio 89. L unlocks at
/// 10 ms and drops back to 89 ahead of E, so after H (10..11 ms) L runs its last 5 ms
/// before E does. (Queued at the tail, E would run first.)
#[test]
fn a_deboosted_rt_task_resumes_ahead_of_its_new_equals() {
    let a = 0;
    let d = run(
        1,
        vec![
            // Created first, so it runs (and goes to sleep) before L takes the lock.
            ("peer", SchedAttr::fifo(10), vec![sleep_ms(2), run_ms(5)]),
            (
                "low",
                SchedAttr::fifo(10),
                vec![lock(a), run_ms(10), unlock(a), run_ms(5)],
            ),
            (
                "high",
                SchedAttr::fifo(50),
                vec![sleep_ms(1), lock(a), run_ms(1), unlock(a)],
            ),
        ],
    );
    let (e, l) = (d.pids[0], d.pids[1]);
    assert_eq!(d.setprio(l), vec![(MS, 89, 49), (10 * MS, 49, 89)]);
    assert_eq!(d.exit_time(l), 16 * MS);
    assert_eq!(d.exit_time(e), 21 * MS);
    d.assert_all_clean();
}

/// Swarm check on 4 CPUs: RT and fair threads take random nested subsets of three PI mutexes
/// (always in ascending order, so no lock cycles), hold them across work, sleeps and
/// `sched_setattr()` calls, with real costs or zero costs. Every run must finish without an
/// invariant or lockdep violation (the rt_mutex invariants included) and leave every lock
/// free, every task unboosted and unblocked.
#[test]
fn swarm_nested_pi_locks_on_four_cpus_stay_consistent() {
    for seed in 0..24u64 {
        let (sys, out, boosts) = swarm(seed, false);
        assert_eq!(out.end_reason, EndReason::Exited, "seed {seed}: {}", out.report);
        assert!(boosts > 0, "seed {seed}: the swarm should exercise PI");
        let s = sys.k.st();
        for t in s.tasks.iter().filter(|t| t.thread.is_some()) {
            assert!(t.pi_waiters.is_empty(), "seed {seed}");
            assert_eq!(t.pi_blocked_on, None, "seed {seed}");
            assert_eq!(t.prio, t.normal_prio, "seed {seed}: {} left boosted", t.pid);
        }
        for m in &s.rt_mutexes {
            assert_eq!(m.owner, None, "seed {seed}");
            assert!(!m.has_waiters, "seed {seed}");
        }
    }
}

/// The same swarm with locks taken in random order: lock cycles form, the chain walk finds
/// some of them (-EDEADLK, waiter removed, owner deboosted), the rest simply block. Either
/// way no invariant or lockdep rule may break, and a run that does not finish ends as a
/// reported deadlock.
#[test]
fn swarm_with_lock_cycles_ends_cleanly_or_as_a_reported_deadlock() {
    let mut deadlocks = 0;
    for seed in 0..24u64 {
        let (_sys, out, _) = swarm(seed, true);
        match out.end_reason {
            EndReason::Exited => {}
            EndReason::Deadlock => {
                assert!(out.report.contains("lock cycle"), "seed {seed}: {}", out.report);
                deadlocks += 1;
            }
            r => panic!("seed {seed}: ended {r:?}: {}", out.report),
        }
    }
    assert!(deadlocks > 0, "the swarm should produce lock cycles");
}

/// One swarm run (see the tests above); returns the system, the outcome and the number of
/// `sched_pi_setprio` records. Asserts there was no violation.
fn swarm(seed: u64, any_order: bool) -> (System, Outcome, usize) {
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut cfg = Config::new(4);
    cfg.seed = seed;
    if seed.is_multiple_of(2) {
        cfg.costs = Costs::zero();
    }
    cfg.check_invariants = true;
    cfg.limit_ns = 10_000 * MS;
    let sink = Collect::default();
    let mut sys = System::new(cfg, Box::new(sink.clone()));
    for i in 0..3 {
        sys.add_mutex(&format!("m{i}"), Protocol::Pi);
    }
    let attr = |x: u64| {
        if x < 5 {
            SchedAttr::fifo(1 + 10 * x as u32)
        } else {
            SchedAttr::normal(x as i32 - 8)
        }
    };
    for t in 0..8u32 {
        let mut ops = Vec::new();
        for _ in 0..15 {
            ops.push(UserOp::Sleep { ns: next(2_000_000) });
            let set = 1 + next(7);
            let mut held: Vec<u32> = (0..3).filter(|i| set & (1 << i) != 0).collect();
            if any_order && next(2) == 0 {
                held.reverse();
            }
            for &m in &held {
                ops.push(lock(m));
                ops.push(UserOp::Run {
                    work_ns: next(200_000),
                });
            }
            if next(4) == 0 {
                ops.push(UserOp::SetAttr { attr: attr(next(9)) });
            }
            ops.push(UserOp::Run {
                work_ns: next(500_000),
            });
            if next(4) == 0 {
                ops.push(UserOp::Sleep { ns: next(300_000) });
            }
            for &m in held.iter().rev() {
                ops.push(unlock(m));
            }
        }
        sys.add_task(TaskSpec {
            name: format!("t{t}"),
            attr: attr(next(9)),
            cpus: None,
            thread: t,
            program: Script::boxed(ops),
        });
    }
    let out = sys.run(&mut |_| {});
    assert!(out.violations.is_empty(), "seed {seed}: {:#?}", out.violations);
    let boosts = sink
        .0
        .borrow()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::SchedPiSetprio { .. }))
        .count();
    (sys, out, boosts)
}

/// ABBA with PI mutexes: T1 (FIFO 10) holds A and blocks on B at 2 ms (no boost: T2 is
/// stronger); T2 (FIFO 30) holds B and blocks on A at 3 ms. T2's block boosts T1 to 69, the
/// chain walk reaches B, owned by T2 itself: -EDEADLK. T2's waiter is removed again (T1
/// drops back to 89 at once) and T2 sleeps for good, as glibc leaves a thread whose
/// FUTEX_LOCK_PI failed with EDEADLK; the stall detector reports the lock cycle.
#[test]
fn abba_deadlock_is_detected_by_the_chain_walk_and_reported() {
    let (a, b) = (0, 1);
    let (d, out) = run_to_end(
        2,
        vec![
            ("t1", SchedAttr::fifo(10), vec![lock(a), sleep_ms(2), lock(b)]),
            (
                "t2",
                SchedAttr::fifo(30),
                vec![sleep_ms(1), lock(b), sleep_ms(2), lock(a)],
            ),
        ],
    );
    let (t1, t2) = (d.pids[0], d.pids[1]);
    assert_eq!(out.end_reason, EndReason::Deadlock, "{}", out.report);
    assert!(out.report.contains("lock cycle"), "{}", out.report);
    assert_eq!(d.setprio(t1), vec![(3 * MS, 89, 69), (3 * MS, 69, 89)]);
    assert_eq!(d.contended(t1, b), vec![2 * MS]);
    assert_eq!(d.contended(t2, a), vec![3 * MS]);
    let s = d.sys.k.st();
    let task = |pid| s.tasks.iter().find(|t| t.pid == pid).unwrap();
    // T1 still waits on B; T2 is no waiter any more, only a sleeper that names A.
    assert_eq!(task(t1).pi_blocked_on, Some(RtMutexId(b)));
    assert_eq!(task(t2).pi_blocked_on, None);
    assert_eq!(*task(t2).rt_waiter, None);
    assert!(s.rt_mutexes[a as usize].waiters.is_empty());
}

/// Relocking a PI mutex one owns is -EDEADLK before any queueing: the thread sleeps for good
/// and the run ends as a deadlock naming the lock.
#[test]
fn relocking_an_owned_pi_mutex_deadlocks_the_caller() {
    let a = 0;
    let (d, out) = run_to_end(1, vec![("self", SchedAttr::fifo(10), vec![lock(a), lock(a)])]);
    assert_eq!(out.end_reason, EndReason::Deadlock, "{}", out.report);
    assert!(out.report.contains("self-1000 waits for m0"), "{}", out.report);
    assert!(d.sys.k.st().rt_mutexes[a as usize].waiters.is_empty());
}

/// `sched_setattr()` on a boosted owner keeps the boost (rt_effective_prio): L (FIFO 10),
/// boosted to 49 by H at 1 ms, switches itself to FIFO 20 at 5 ms while holding A. It stays
/// at 49 (the FIFO 30 hog still cannot preempt it) and deboosts to its new normal prio 79
/// at the unlock.
#[test]
fn setattr_on_a_boosted_owner_keeps_the_boost() {
    let a = 0;
    let d = run(
        1,
        vec![
            (
                "low",
                SchedAttr::fifo(10),
                vec![
                    lock(a),
                    run_ms(5),
                    UserOp::SetAttr {
                        attr: SchedAttr::fifo(20),
                    },
                    run_ms(5),
                    unlock(a),
                ],
            ),
            (
                "high",
                SchedAttr::fifo(50),
                vec![sleep_ms(1), lock(a), run_ms(1), unlock(a)],
            ),
            ("hog", SchedAttr::fifo(30), vec![sleep_ms(2), run_ms(20)]),
        ],
    );
    let (l, h) = (d.pids[0], d.pids[1]);
    assert_eq!(d.setprio(l), vec![(MS, 89, 49), (10 * MS, 49, 79)]);
    assert_eq!(d.acquired(h, a), vec![10 * MS]);
    let setattr: Vec<(u64, i32)> = d
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::SchedSetattr { pid, prio, .. } if pid == l => Some((e.time_ns, prio)),
            _ => None,
        })
        .collect();
    assert_eq!(setattr, vec![(5 * MS, 49)]);
    d.assert_all_clean();
}

/// The boost of an owner running on another CPU: H (FIFO 50, CPU 0) blocks at 1 ms on A,
/// held by L (FIFO 10) running on CPU 1. CPU 0 boosts L under CPU 1's rq lock and records
/// `sched_pi_setprio` in its own buffer; a FIFO 30 hog waking on CPU 1 at 2 ms then cannot
/// preempt L. L unlocks at 10 ms on CPU 1 (the deboost is recorded there) and H, woken on
/// idle CPU 0, takes A at 10 ms.
#[test]
fn remote_owner_is_boosted_by_the_waiters_cpu() {
    let a = 0;
    let (d, out) = run_on(
        2,
        1,
        vec![
            (
                "low",
                SchedAttr::fifo(10),
                1,
                vec![lock(a), run_ms(10), unlock(a)],
            ),
            (
                "high",
                SchedAttr::fifo(50),
                0,
                vec![sleep_ms(1), lock(a), run_ms(1), unlock(a)],
            ),
            ("hog", SchedAttr::fifo(30), 1, vec![sleep_ms(2), run_ms(20)]),
        ],
    );
    assert_eq!(out.end_reason, EndReason::Exited, "{}", out.report);
    let (l, h, x) = (d.pids[0], d.pids[1], d.pids[2]);
    let boosts: Vec<(u64, u32, i32, i32)> = d
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::SchedPiSetprio {
                task,
                oldprio,
                newprio,
            } if task.pid == l => Some((e.time_ns, e.cpu.0, oldprio, newprio)),
            _ => None,
        })
        .collect();
    assert_eq!(boosts, vec![(MS, 0, 89, 49), (10 * MS, 1, 49, 89)]);
    assert_eq!(d.acquired(h, a), vec![10 * MS]);
    let hog: Vec<u64> = d.switched_in(x).iter().map(|x| x.0).filter(|&t| t > 0).collect();
    assert_eq!(hog.first(), Some(&(10 * MS)), "the hog runs once L is deboosted");
    d.assert_all_clean();
}
