//! The kernel `struct mutex` (spec §8 M-1..M-7, proxy-exec.md §2 M1–M4): FIFO waiters
//! regardless of priority, first-waiter handoff after a lost race, optimistic spinning only
//! while the owner runs, unbounded priority inversion without Proxy Execution, and the
//! `blocked_on` record. Zero costs, so asserted times are exact.

mod common;

use std::cell::RefCell;

use common::{Collect, Script};
use kernel::locking::mutex::MutexFlags;
use kernel::locking::mutex::MutexId;
use kernel::locking::Protocol;
use kernel::sched::core::Kernel;
use kernel::sched::Costs;
use kernel::system::{Config, EndReason, Outcome, System, TaskSpec};
use kernel::task::state::TASK_UNINTERRUPTIBLE;
use kernel::task::TaskId;
use kernel::tracepoints::{EventKind, LockName, PrevState};
use sim::{CpuId, CpuMask, Nanos};
use uapi::{SchedAttr, UserOp};

const M: u32 = 0;
/// The kernel mutex behind resource `M`: the first (and only) one these tests make.
const M_KERNEL: MutexId = MutexId(0);

fn lock() -> UserOp {
    UserOp::Lock { mutex: M }
}
fn unlock() -> UserOp {
    UserOp::Unlock { mutex: M }
}
fn run(work_ns: Nanos) -> UserOp {
    UserOp::Run { work_ns }
}
fn sleep(ns: Nanos) -> UserOp {
    UserOp::Sleep { ns }
}

struct Sim {
    sys: System,
    events: Collect,
    thread: u32,
}

impl Sim {
    fn new(nr_cpus: usize, protocol: Protocol, tweak: impl FnOnce(&mut Config)) -> Sim {
        let mut cfg = Config::new(nr_cpus);
        cfg.costs = Costs::zero();
        cfg.check_invariants = true;
        cfg.limit_ns = 1_000_000_000;
        tweak(&mut cfg);
        let events = Collect::default();
        let mut sys = System::new(cfg, Box::new(events.clone()));
        assert_eq!(sys.add_mutex("m", protocol), M);
        Sim {
            sys,
            events,
            thread: 0,
        }
    }

    /// Add a thread; returns (pid, task id).
    fn task(&mut self, name: &str, attr: SchedAttr, cpu: Option<u32>, ops: Vec<UserOp>) -> (u32, TaskId) {
        self.thread += 1;
        let pid = self.sys.add_task(TaskSpec {
            name: name.to_string(),
            attr,
            cpus: cpu.map(|c| CpuMask::single(CpuId(c))),
            thread: self.thread,
            program: Script::boxed(ops),
        });
        let id = self.sys.k.st().tasks.iter().find(|t| t.pid == pid).unwrap().id;
        (pid, id)
    }

    /// Run to the end, calling `watch` after every step; every task must exit cleanly.
    fn run(&mut self, mut watch: impl FnMut(&Kernel)) -> Outcome {
        let k = self.sys.k.clone();
        let out = self.sys.run(&mut |_| watch(&k));
        assert!(out.violations.is_empty(), "violations: {:?}", out.violations);
        assert_eq!(out.end_reason, EndReason::Exited, "{}", out.report);
        out
    }

    /// (time, pid) of every `kind` lock event on the mutex, in stream order.
    fn lock_events(&self, contended: bool) -> Vec<(Nanos, u32)> {
        self.events
            .0
            .borrow()
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::LockContended {
                    pid,
                    lock: LockName::Mutex(M_KERNEL),
                } if contended => Some((e.time_ns, pid)),
                EventKind::LockAcquired {
                    pid,
                    lock: LockName::Mutex(M_KERNEL),
                } if !contended => Some((e.time_ns, pid)),
                _ => None,
            })
            .collect()
    }

    /// Times at which `pid` switched out in TASK_UNINTERRUPTIBLE (`prev_state=D`).
    fn d_sleeps(&self, pid: u32) -> Vec<Nanos> {
        self.events
            .0
            .borrow()
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::SchedSwitch {
                    prev,
                    prev_state: PrevState::DiskSleep,
                    ..
                } if prev.pid == pid => Some(e.time_ns),
                _ => None,
            })
            .collect()
    }
}

/// Records every change of the owner word as (time, owner, flags).
fn owner_log(log: &RefCell<Vec<(Nanos, Option<TaskId>, u8)>>, k: &Kernel) {
    let s = k.st();
    let mx = &s.mutexes[M_KERNEL.idx()];
    let cur = (k.m.now(), mx.owner, mx.flags.bits());
    let mut l = log.borrow_mut();
    if l.last().map(|&(_, o, f)| (o, f)) != Some((cur.1, cur.2)) {
        l.push(cur);
    }
}

#[test]
fn waiters_get_the_lock_in_arrival_order_not_priority_order() {
    // One CPU. The owner (FIFO 10) holds the lock for 1 ms of work; waiters of rising
    // priority (FIFO 20, 30, 40) arrive at 100, 200, 300 µs, preempt it and block. A
    // priority-ordered lock (rt_mutex) would serve 40, 30, 20; the mutex serves 20, 30, 40.
    let mut sim = Sim::new(1, Protocol::None, |_| {});
    let (o, _) = sim.task(
        "owner",
        SchedAttr::fifo(10),
        None,
        vec![lock(), run(1_000_000), unlock()],
    );
    let mut w = Vec::new();
    for (i, prio) in [20u32, 30, 40].into_iter().enumerate() {
        let delay = 100_000 * (i as u64 + 1);
        let (pid, _) = sim.task(
            &format!("w{prio}"),
            SchedAttr::fifo(prio),
            None,
            vec![sleep(delay), lock(), run(100_000), unlock()],
        );
        w.push(pid);
    }
    sim.run(|_| {});
    assert_eq!(
        sim.lock_events(true),
        vec![(100_000, w[0]), (200_000, w[1]), (300_000, w[2])]
    );
    // The owner's 1 ms of work ends at 1 ms (preemptions are free); each waiter holds 100 µs.
    assert_eq!(
        sim.lock_events(false),
        vec![(1_000_000, w[0]), (1_100_000, w[1]), (1_200_000, w[2])]
    );
    assert!(
        !sim.lock_events(false).iter().any(|&(_, p)| p == o),
        "the owner never waited"
    );
    // Nobody could spin: the owner was preempted whenever a waiter ran.
    for &p in &w {
        assert_eq!(sim.d_sleeps(p).len(), 1, "pid {p} slept once");
    }
}

/// One CPU. `hog` (FIFO 50) takes the lock three times in a row, sleeping 100 µs while it
/// holds it; `w` (fair) blocks on it at 0. The first release at 100 µs wakes `w`, but hog
/// steals the lock before `w` runs. `w` then sets HANDOFF, so the second release at 200 µs
/// hands the lock to `w` (owner = w | PICKUP) and hog's third attempt has to queue behind it.
fn handoff_scenario(protocol: Protocol, tweak: impl FnOnce(&mut Config)) -> (Sim, u32, u32, TaskId) {
    let mut sim = Sim::new(1, protocol, tweak);
    let mut ops = Vec::new();
    for _ in 0..3 {
        ops.extend([lock(), sleep(100_000), unlock()]);
    }
    let (hog, _) = sim.task("hog", SchedAttr::fifo(50), None, ops);
    let (w, wid) = sim.task("w", SchedAttr::normal(0), None, vec![lock(), unlock()]);
    (sim, hog, w, wid)
}

#[test]
fn a_woken_head_that_lost_the_race_sets_handoff_and_gets_the_lock_next() {
    let (mut sim, hog, w, wid) = handoff_scenario(Protocol::None, |_| {});
    let log = RefCell::new(Vec::new());
    sim.run(|k| owner_log(&log, k));
    // hog's first and second acquisitions are uncontended (the second is the steal); the
    // third waits behind w. Without handoff hog would steal again at 200 µs and w would wait
    // until 300 µs.
    assert_eq!(sim.lock_events(true), vec![(0, w), (200_000, hog)]);
    assert_eq!(sim.lock_events(false), vec![(200_000, w), (200_000, hog)]);
    let log = log.into_inner();
    let (waiters, handoff, pickup) = (
        MutexFlags::WAITERS.bits(),
        MutexFlags::HANDOFF.bits(),
        MutexFlags::PICKUP.bits(),
    );
    let hog_id = log[1].1.expect("hog owns first");
    // The steal at 100 µs keeps WAITERS; w, woken, sets HANDOFF at 100 µs; the release at
    // 200 µs makes w the owner with PICKUP (HANDOFF cleared, WAITERS kept).
    assert!(log.contains(&(100_000, Some(hog_id), waiters)), "{log:?}");
    assert!(
        log.contains(&(100_000, Some(hog_id), waiters | handoff)),
        "{log:?}"
    );
    assert!(log.contains(&(200_000, Some(wid), waiters | pickup)), "{log:?}");
    // w slept twice: once on arrival, once after losing the race; never a third time.
    assert_eq!(sim.d_sleeps(w), vec![0, 100_000]);
}

#[test]
fn a_waiter_spins_while_the_owner_runs_on_another_cpu() {
    // CPU 0: owner runs 50 µs of work holding the lock. CPU 1: w asks for it at 10 µs and
    // spins (the owner is on a CPU) instead of sleeping; it takes the lock right after the
    // release, within one poll step.
    let mut sim = Sim::new(2, Protocol::None, |_| {});
    let (_, oid) = sim.task(
        "owner",
        SchedAttr::normal(0),
        Some(0),
        vec![lock(), run(50_000), unlock()],
    );
    let (w, wid) = sim.task(
        "w",
        SchedAttr::normal(0),
        Some(1),
        vec![sleep(10_000), lock(), run(1_000), unlock()],
    );
    let log = RefCell::new(Vec::new());
    sim.run(|k| owner_log(&log, k));
    assert!(sim.d_sleeps(w).is_empty(), "w slept: {:?}", sim.d_sleeps(w));
    let log = log.into_inner();
    assert_eq!(log.len(), 5, "{log:?}");
    assert_eq!(log[1], (0, Some(oid), 0));
    assert_eq!(log[2], (50_000, None, 0));
    let (t, owner, flags) = log[3];
    assert_eq!((owner, flags), (Some(wid), 0));
    assert!(
        (50_000..=50_000 + 2 * kernel::locking::mutex::MUTEX_SPIN_POLL_NS).contains(&t),
        "took it at {t}"
    );
    // Spinning is waiting: one lock_contended when the spin starts (after the slow-path
    // entry cost, before the release), one lock_acquired when the spin takes the lock.
    let contended = sim.lock_events(true);
    assert_eq!(contended.len(), 1, "{contended:?}");
    assert_eq!(contended[0].1, w);
    assert!((10_000..20_000).contains(&contended[0].0), "{contended:?}");
    assert_eq!(sim.lock_events(false), vec![(t, w)]);
}

/// The owner (CPU 0) holds the lock for its first 50 µs, doing `hold` meanwhile; a waiter
/// on CPU 1 asks for it at 10 µs. The waiter must sleep in D from 10 µs and get the lock at
/// 50 µs.
fn assert_the_waiter_sleeps(hold: UserOp, tweak: impl FnOnce(&mut Config)) {
    let mut sim = Sim::new(2, Protocol::None, tweak);
    sim.task(
        "owner",
        SchedAttr::normal(0),
        Some(0),
        vec![lock(), hold, unlock()],
    );
    let (w, _) = sim.task(
        "w",
        SchedAttr::normal(0),
        Some(1),
        vec![sleep(10_000), lock(), unlock()],
    );
    sim.run(|_| {});
    assert_eq!(sim.d_sleeps(w), vec![10_000]);
    assert_eq!(sim.lock_events(true), vec![(10_000, w)]);
    assert_eq!(sim.lock_events(false), vec![(50_000, w)]);
}

#[test]
fn without_spin_on_owner_the_same_waiter_sleeps() {
    assert_the_waiter_sleeps(run(50_000), |c| c.feat.mutex_spin_on_owner = false);
}

#[test]
fn a_waiter_sleeps_when_the_owner_is_asleep() {
    // The owner holds the lock across a sleep: it is off CPU, so spinning is pointless.
    assert_the_waiter_sleeps(sleep(50_000), |_| {});
}

/// One CPU: low (FIFO 10) holds the lock for 1 ms of work; high (FIFO 90) wants it at
/// 100 µs; mid (FIFO 50) hogs the CPU for 10 ms from 200 µs.
fn inversion_scenario(protocol: Protocol, tweak: impl FnOnce(&mut Config)) -> (Sim, u32, TaskId) {
    let mut sim = Sim::new(1, protocol, tweak);
    sim.task(
        "low",
        SchedAttr::fifo(10),
        None,
        vec![lock(), run(1_000_000), unlock()],
    );
    let (h, hid) = sim.task(
        "high",
        SchedAttr::fifo(90),
        None,
        vec![sleep(100_000), lock(), unlock()],
    );
    sim.task(
        "mid",
        SchedAttr::fifo(50),
        None,
        vec![sleep(200_000), run(10_000_000)],
    );
    (sim, h, hid)
}

#[test]
fn without_proxy_a_high_waiter_behind_a_preempted_low_owner_waits_for_the_middle_hog() {
    let (mut sim, h, _) = inversion_scenario(Protocol::None, |_| {});
    sim.run(|_| {});
    // low ran 100 + 100 µs before mid took the CPU, then mid's 10 ms, then low's last
    // 800 µs: high gets the lock at 11 ms, not at 1 ms.
    assert_eq!(sim.lock_events(true), vec![(100_000, h)]);
    assert_eq!(sim.lock_events(false), vec![(11_000_000, h)]);
}

/// Watches `blocked_on` on every step: it is only ever set on a task queued on that mutex's
/// wait list, and each time task `p` goes to sleep in TASK_UNINTERRUPTIBLE (a new sleep
/// begins: D and off CPU) it is set. (Later in a sleep it may legally be None: the unlocker
/// clears it before waking `p`, M7.)
struct BlockedOnWatch {
    p: TaskId,
    asleep: bool,
    sleeps_with: u32,
    sleeps_without: u32,
}

impl BlockedOnWatch {
    fn new(p: TaskId) -> Self {
        BlockedOnWatch {
            p,
            asleep: false,
            sleeps_with: 0,
            sleeps_without: 0,
        }
    }

    fn watch(&mut self, k: &Kernel) {
        let s = k.st();
        for t in s.tasks.iter() {
            if let Some(m) = t.blocked_on {
                assert!(
                    s.mutexes[m.idx()].wait_list.contains(&t.id),
                    "blocked_on set on pid {} which is not waiting",
                    t.pid
                );
            }
        }
        let t = &s.tasks[self.p.idx()];
        let asleep = t.state == TASK_UNINTERRUPTIBLE && !t.on_cpu;
        if asleep && !self.asleep {
            if t.blocked_on == Some(M_KERNEL) {
                self.sleeps_with += 1;
            } else {
                self.sleeps_without += 1;
            }
        }
        self.asleep = asleep;
    }
}

#[test]
fn blocked_on_is_set_on_every_sleep_on_a_proxy_mutex_and_cleared_on_acquire() {
    // The inversion scenario sleeps once; the handoff scenario sleeps twice, the second time
    // after a wakeup whose unlocker cleared blocked_on, so it must have been re-set (M2).
    for (scenario, want_sleeps) in [(0, 1), (1, 2)] {
        let (mut sim, p) = if scenario == 0 {
            let (sim, _, hid) = inversion_scenario(Protocol::Proxy, |_| {});
            (sim, hid)
        } else {
            let (sim, _, _, wid) = handoff_scenario(Protocol::Proxy, |_| {});
            (sim, wid)
        };
        let mut w = BlockedOnWatch::new(p);
        sim.run(|k| w.watch(k));
        assert_eq!(
            (w.sleeps_with, w.sleeps_without),
            (want_sleeps, 0),
            "scenario {scenario}"
        );
        let k = sim.sys.k.clone();
        let s = k.st();
        assert!(s.tasks.iter().all(|t| t.blocked_on.is_none()));
    }
}

#[test]
fn blocked_on_is_never_set_with_proxy_exec_off_or_a_plain_mutex() {
    let cases: [(Protocol, bool); 2] = [(Protocol::Proxy, false), (Protocol::None, true)];
    for (protocol, proxy_exec) in cases {
        for scenario in 0..2 {
            let tweak = |c: &mut Config| c.feat.proxy_exec = proxy_exec;
            let (mut sim, _) = if scenario == 0 {
                let (sim, _, hid) = inversion_scenario(protocol, tweak);
                (sim, hid)
            } else {
                let (sim, _, _, wid) = handoff_scenario(protocol, tweak);
                (sim, wid)
            };
            let mut seen = 0u64;
            sim.run(|k| seen += k.st().tasks.iter().filter(|t| t.blocked_on.is_some()).count() as u64);
            assert_eq!(
                seen, 0,
                "{protocol:?} proxy_exec={proxy_exec} scenario {scenario}"
            );
        }
    }
}
