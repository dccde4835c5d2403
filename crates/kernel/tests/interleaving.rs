//! The interleaving is real: kernel paths on different CPUs interleave at lock operations, a
//! CPU that finds a raw spinlock held spins while its time advances, and a path that drops the
//! rq lock in the middle (newidle balance) lets another CPU's path run inside the window.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::Collect;
use kernel::sched::core::{try_to_wake_up, Kernel};
use kernel::sched::fair;
use kernel::sched::{Costs, WakeFlags};
use kernel::system::{new_kernel, new_task_struct, Config};
use kernel::task::state::{TASK_INTERRUPTIBLE, TASK_NORMAL};
use kernel::task::task_ctx;
use kernel::task::TaskId;
use kernel::tracepoints::{EventKind, LockName};
use sim::{CpuId, Executor};

fn kernel(nr_cpus: usize, tweak: impl FnOnce(&mut Config)) -> (Rc<Kernel>, Collect) {
    let mut cfg = Config::new(nr_cpus);
    cfg.costs = Costs::zero();
    tweak(&mut cfg);
    let sink = Collect::default();
    (new_kernel(&cfg, Box::new(sink.clone())), sink)
}

/// A sleeping SCHED_NORMAL task allowed only on `cpu`.
fn sleeper(k: &Kernel, cpu: CpuId) -> TaskId {
    let s = &mut *k.st();
    let id = TaskId(s.tasks.len() as u32);
    let mut t = new_task_struct(&s.m, id, 2000 + id.0, "sleeper", cpu);
    t.state = TASK_INTERRUPTIBLE;
    t.cpus_mask = kernel::task::CpuMasks::single(cpu);
    t.nr_cpus_allowed = 1;
    s.tasks.push(t);
    fair::init_entity_fair(s, id);
    id
}

#[test]
fn remote_wakeup_spins_on_a_held_rq_lock_while_its_clock_advances() {
    // Direct activation (no wake list), so the waker on CPU 0 must take CPU 1's rq lock.
    let (k, events) = kernel(2, |c| c.feat.ttwu_queue = false);
    let p = sleeper(&k, CpuId(1));
    let log = Rc::new(RefCell::new(Vec::new()));
    // CPU 1 holds its own rq lock from 0 to 5 µs.
    {
        let (k2, log2) = (k.clone(), log.clone());
        k.m.spawn(task_ctx(TaskId(1)), async move {
            k2.rq_lock(CpuId(1)).await;
            k2.m.delay(5_000).await;
            log2.borrow_mut().push(("cpu1 unlocks rq1", k2.m.now()));
            k2.rq_unlock(CpuId(1)).await;
            k2.m.halt().await;
        });
    }
    // CPU 0 wakes p at 1 µs.
    {
        let (k2, log2) = (k.clone(), log.clone());
        k.m.spawn(task_ctx(TaskId(0)), async move {
            k2.m.delay(1_000).await;
            assert!(try_to_wake_up(&k2, p, TASK_NORMAL, WakeFlags::empty()).await);
            log2.borrow_mut().push(("cpu0 woke p", k2.m.now()));
            k2.m.halt().await;
        });
    }
    k.m.boot_cpu(CpuId(0), task_ctx(TaskId(0)));
    k.m.boot_cpu(CpuId(1), task_ctx(TaskId(1)));
    Executor::new(k.m.clone()).run(u64::MAX, &mut |_| true);
    assert_eq!(
        *log.borrow(),
        vec![("cpu1 unlocks rq1", 5_000), ("cpu0 woke p", 5_000)]
    );
    let ev = events.0.borrow();
    let on_cpu0: Vec<(u64, EventKind)> = ev
        .iter()
        .filter(|e| e.cpu == CpuId(0))
        .map(|e| (e.time_ns, e.kind))
        .collect();
    assert!(
        on_cpu0.contains(&(
            1_000,
            EventKind::ContentionBegin {
                lock: LockName::Rq(CpuId(1))
            }
        )),
        "the waker must start spinning at 1 µs: {on_cpu0:#?}"
    );
    assert!(
        on_cpu0.contains(&(
            5_000,
            EventKind::ContentionEnd {
                lock: LockName::Rq(CpuId(1)),
                spun_ns: 4_000
            }
        )),
        "and spin for 4 µs: {on_cpu0:#?}"
    );
    let wakeup = ev
        .iter()
        .find(|e| matches!(e.kind, EventKind::SchedWakeup { task, .. } if task.pid == 2000 + p.0))
        .unwrap();
    assert_eq!(
        (wakeup.time_ns, wakeup.cpu),
        (5_000, CpuId(0)),
        "activated by the waker once it got the lock"
    );
    let rq1_lock = k.st().rqs[1].lock;
    assert_eq!(k.m.lock_stats(rq1_lock), (1, 4_000));
}

#[test]
fn newidle_balance_drops_the_rq_lock_and_another_cpu_runs_in_the_window() {
    let (k, _events) = kernel(2, |c| c.costs.newidle_balance_ns = 10_000);
    k.st().rd_overloaded = true;
    let log = Rc::new(RefCell::new(Vec::new()));
    {
        let (k2, log2) = (k.clone(), log.clone());
        k.m.spawn(task_ctx(TaskId(0)), async move {
            k2.rq_lock(CpuId(0)).await;
            log2.borrow_mut()
                .push(("cpu0 enters newidle with rq0 held", k2.m.now()));
            fair::sched_balance_newidle(&k2, CpuId(0)).await;
            assert!(k2.rq_locked(CpuId(0)), "newidle returns with the rq lock retaken");
            log2.borrow_mut().push(("cpu0 leaves newidle", k2.m.now()));
            k2.rq_unlock(CpuId(0)).await;
            k2.m.halt().await;
        });
    }
    {
        let (k2, log2) = (k.clone(), log.clone());
        k.m.spawn(task_ctx(TaskId(1)), async move {
            k2.m.delay(1_000).await;
            k2.rq_lock(CpuId(0)).await;
            log2.borrow_mut().push(("cpu1 holds rq0", k2.m.now()));
            k2.m.delay(2_000).await;
            k2.rq_unlock(CpuId(0)).await;
            k2.m.halt().await;
        });
    }
    k.m.boot_cpu(CpuId(0), task_ctx(TaskId(0)));
    k.m.boot_cpu(CpuId(1), task_ctx(TaskId(1)));
    Executor::new(k.m.clone()).run(u64::MAX, &mut |_| true);
    let log = log.borrow();
    assert_eq!(log[0], ("cpu0 enters newidle with rq0 held", 0));
    // CPU 1 takes rq0's lock at 1 µs without spinning: CPU 0 dropped it for the balance pass.
    assert_eq!(log[1], ("cpu1 holds rq0", 1_000));
    assert_eq!(log[2].0, "cpu0 leaves newidle");
    assert!(log[2].1 >= 10_000, "the pass costs one domain visit: {log:?}");
    let rq0 = k.st().rqs[0].lock;
    assert_eq!(
        k.m.lock_stats(rq0).0,
        0,
        "nobody had to spin: the lock really was free"
    );
}

#[test]
fn a_lock_order_violation_fails_the_run() {
    // pi_lock must be taken before an rq lock (T-10, L1); the reverse is a lockdep failure
    // that stops the machine and is reported as a violation.
    let (k, _events) = kernel(1, |_| {});
    let p = sleeper(&k, CpuId(0));
    {
        let k2 = k.clone();
        k.m.spawn(task_ctx(TaskId(0)), async move {
            k2.rq_lock(CpuId(0)).await;
            k2.pi_lock(p).await;
            k2.m.halt().await;
        });
    }
    k.m.boot_cpu(CpuId(0), task_ctx(TaskId(0)));
    let end = Executor::new(k.m.clone()).run(u64::MAX, &mut |_| true);
    assert_eq!(end, sim::RunEnd::Stopped);
    let v = k.violations.borrow();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].invariant, "lockdep");
    assert!(
        v[0].detail.contains("PiLock") && v[0].detail.contains("Rq(0)"),
        "{}",
        v[0].detail
    );
}
