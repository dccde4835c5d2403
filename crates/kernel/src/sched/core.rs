//! The scheduler core: `__schedule()`, `try_to_wake_up()`, the tick, migration, and the lock
//! helpers every kernel path uses.
//!
//! Linux: kernel/sched/core.c.
//!
//! Kernel paths that take or drop locks are `async fn`s over a shared [`Kernel`]; each raw
//! spinlock acquisition and release is an await point at which another CPU's path may run.
//! Everything between two awaits runs atomically on a `&mut SchedState` borrowed for just that
//! stretch (never across an await).

use std::cell::{RefCell, RefMut};
use std::rc::Rc;

use sim::{CpuId, LockId, Machine, Nanos};

use crate::locking::lockdep::{LockClass, Lockdep};
use crate::sched::{Class, SchedState};
use crate::task::{OnRq, TaskId};
use crate::tracepoints::{Event, EventKind, LockName, TraceFlags};

/// A violated invariant or lockdep rule: the run fails with exit code 4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: String,
    pub time_ns: Nanos,
    pub detail: String,
}

/// The whole kernel: the machine it runs on and the scheduler state.
pub struct Kernel {
    pub m: Rc<Machine>,
    pub s: RefCell<SchedState>,
    pub lockdep: RefCell<Lockdep>,
    pub violations: RefCell<Vec<Violation>>,
}

impl Kernel {
    /// Borrow the scheduler state for one atomic stretch (never hold it across an await).
    #[inline]
    pub fn st(&self) -> RefMut<'_, SchedState> {
        self.s.borrow_mut()
    }

    pub fn this_cpu(&self) -> CpuId {
        self.m.this_cpu()
    }

    /// Record a violation and stop the machine after this step.
    pub fn violation(&self, invariant: &str, detail: String) {
        self.violations.borrow_mut().push(Violation {
            invariant: invariant.to_string(),
            time_ns: self.m.now(),
            detail,
        });
        self.m.stop();
    }

    // ------------------------------------------------------------------ raw spinlocks

    /// Acquire a raw spinlock: an interleaving point; spins (burning this CPU's time) while
    /// another CPU holds it. Checks the documented lock order first.
    pub async fn raw_spin_lock(&self, lock: LockId, class: LockClass, name: LockName) {
        let cpu = self.this_cpu();
        if let Err(e) = self.lockdep.borrow().check_acquire(cpu, lock, class) {
            self.violation("lockdep", e);
        }
        let cost = self.s.borrow().costs.spin_lock_ns;
        if !self.m.lock(lock, cost).await {
            self.emit(cpu, EventKind::ContentionBegin { lock: name });
            let spun_ns = self.m.spin(lock).await;
            self.emit(cpu, EventKind::ContentionEnd { lock: name, spun_ns });
        }
        self.lockdep.borrow_mut().acquired(cpu, lock, class);
        self.s.borrow_mut().rqs[cpu as usize].preempt_count += 1;
    }

    /// Take a raw spinlock only if it is free (`raw_spin_trylock`); not an await point.
    pub fn raw_spin_trylock(&self, lock: LockId, class: LockClass) -> bool {
        let cpu = self.this_cpu();
        if let Err(e) = self.lockdep.borrow().check_acquire(cpu, lock, class) {
            self.violation("lockdep", e);
        }
        if self.m.try_lock(lock) {
            self.lockdep.borrow_mut().acquired(cpu, lock, class);
            self.s.borrow_mut().rqs[cpu as usize].preempt_count += 1;
            true
        } else {
            false
        }
    }

    /// Release a raw spinlock: an interleaving point right after the release.
    pub async fn raw_spin_unlock(&self, lock: LockId) {
        self.raw_spin_unlock_no_yield(lock);
        self.m.yield_now().await;
    }

    /// Release without yielding (for releases immediately followed by another await point,
    /// such as the context switch).
    pub fn raw_spin_unlock_no_yield(&self, lock: LockId) {
        let cpu = self.this_cpu();
        if let Err(e) = self.lockdep.borrow_mut().released(cpu, lock) {
            self.violation("lockdep", e);
        }
        self.m.unlock(lock);
        let mut s = self.s.borrow_mut();
        let rq = &mut s.rqs[cpu as usize];
        assert!(rq.preempt_count > 0, "preempt_count underflow on cpu{cpu}");
        rq.preempt_count -= 1;
    }

    /// `raw_spin_rq_lock()`.
    pub async fn rq_lock(&self, cpu: CpuId) {
        let lock = self.s.borrow().rqs[cpu as usize].lock;
        self.raw_spin_lock(lock, LockClass::Rq(cpu), LockName::Rq(cpu)).await;
    }

    /// `raw_spin_rq_unlock()`.
    pub async fn rq_unlock(&self, cpu: CpuId) {
        let lock = self.s.borrow().rqs[cpu as usize].lock;
        self.raw_spin_unlock(lock).await;
    }

    /// Whether this CPU holds `cpu`'s rq lock.
    pub fn rq_locked(&self, cpu: CpuId) -> bool {
        let lock = self.s.borrow().rqs[cpu as usize].lock;
        self.lockdep.borrow().holds(self.this_cpu(), lock)
    }

    /// `double_rq_lock()`: both rq locks in ascending CPU order.
    pub async fn double_rq_lock(&self, a: CpuId, b: CpuId) {
        if a == b {
            self.rq_lock(a).await;
        } else {
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            self.rq_lock(lo).await;
            self.rq_lock(hi).await;
        }
    }

    pub async fn double_rq_unlock(&self, a: CpuId, b: CpuId) {
        if a != b {
            self.rq_unlock(b).await;
        }
        self.rq_unlock(a).await;
    }

    /// `double_lock_balance()`: with `this`'s lock held, also take `busiest`'s. If the order
    /// requires it, `this` is dropped and retaken, and the return value is `true`: anything
    /// read under `this` before the call may have changed.
    pub async fn double_lock_balance(&self, this: CpuId, busiest: CpuId) -> bool {
        assert!(self.rq_locked(this));
        let busiest_lock = self.s.borrow().rqs[busiest as usize].lock;
        if busiest > this {
            self.rq_lock(busiest).await;
            return false;
        }
        if self.raw_spin_trylock(busiest_lock, LockClass::Rq(busiest)) {
            return false;
        }
        self.rq_unlock(this).await;
        self.double_rq_lock(this, busiest).await;
        true
    }

    /// `double_unlock_balance()`: drop `busiest`, keep `this`.
    pub async fn double_unlock_balance(&self, _this: CpuId, busiest: CpuId) {
        self.rq_unlock(busiest).await;
    }

    /// `raw_spin_lock(&p->pi_lock)`.
    pub async fn pi_lock(&self, p: TaskId) {
        let (lock, pid) = {
            let s = self.s.borrow();
            (s.tasks[p as usize].pi_lock, s.tasks[p as usize].pid)
        };
        self.raw_spin_lock(lock, LockClass::PiLock, LockName::PiLock(pid)).await;
    }

    pub async fn pi_unlock(&self, p: TaskId) {
        let lock = self.s.borrow().tasks[p as usize].pi_lock;
        self.raw_spin_unlock(lock).await;
    }

    // ------------------------------------------------------------------ events

    /// Emit a tracepoint record on `cpu`'s buffer.
    pub fn emit(&self, cpu: CpuId, kind: EventKind) {
        emit(&mut self.s.borrow_mut(), cpu, kind);
    }
}

/// Emit a tracepoint record on `cpu`'s buffer (sync form for class code).
pub fn emit(s: &mut SchedState, cpu: CpuId, kind: EventKind) {
    let rq = &s.rqs[cpu as usize];
    let curr = &s.tasks[rq.curr as usize];
    let flags = TraceFlags {
        irqs_off: rq.irqs_disabled,
        need_resched: curr.need_resched,
        hardirq: rq.in_hardirq,
        preempt_depth: rq.preempt_count.min(15) as u8,
    };
    let e = Event { time_ns: s.m.now(), cpu, owner: curr.pid, flags, kind };
    s.nr_events += 1;
    s.sink.event(&e);
}

// ---------------------------------------------------------------------- sync helpers
// Called with the rq lock of `cpu` held.

/// `update_rq_clock()`.
pub fn update_rq_clock(s: &mut SchedState, cpu: CpuId) {
    let now = s.m.now();
    let rq = &mut s.rqs[cpu as usize];
    if now > rq.clock {
        rq.clock = now;
        rq.clock_task = now;
    }
}

/// `add_nr_running()`: also marks the root domain overloaded when a CPU gets a second task.
pub fn add_nr_running(s: &mut SchedState, cpu: CpuId, n: u32) {
    let rq = &mut s.rqs[cpu as usize];
    rq.nr_running += n;
    if rq.nr_running >= 2 {
        s.rd_overloaded = true;
    }
}

/// `sub_nr_running()`.
pub fn sub_nr_running(s: &mut SchedState, cpu: CpuId, n: u32) {
    let rq = &mut s.rqs[cpu as usize];
    assert!(rq.nr_running >= n, "nr_running underflow on cpu{cpu}");
    rq.nr_running -= n;
}

/// The class a task's priority puts it in (T-8).
pub fn class_of(prio: i32, is_idle_task: bool, is_stopper: bool) -> Class {
    if is_stopper {
        Class::Stop
    } else if is_idle_task {
        Class::Idle
    } else if prio < 0 {
        Class::Deadline
    } else if prio < 100 {
        Class::Rt
    } else {
        Class::Fair
    }
}

/// Whether `p` is queued (QUEUED) on a runqueue.
pub fn task_on_rq_queued(s: &SchedState, p: TaskId) -> bool {
    s.tasks[p as usize].on_rq == OnRq::Queued
}

/// Whether `p` is the task executing on its CPU (`task_on_cpu`).
pub fn task_on_cpu(s: &SchedState, p: TaskId) -> bool {
    s.tasks[p as usize].on_cpu
}

/// IPI vectors of the model.
pub mod ipi {
    /// `RESCHEDULE_VECTOR`: the handler does nothing; the return path sees need_resched.
    pub const RESCHEDULE: u32 = 0;
    /// `CALL_FUNCTION_SINGLE_VECTOR`: wake list (`sched_ttwu_pending`), stopper work, RT push.
    pub const CALL_FUNCTION: u32 = 1;
    /// Not an IPI: a polling idle CPU noticing its need_resched flag (no handler runs).
    pub const POLL_KICK: u32 = 2;
}

/// `resched_curr()`: set need_resched on `cpu`'s current task; a remote CPU also gets a
/// reschedule IPI unless it idles polling the flag (S-8).
pub fn resched_curr(s: &mut SchedState, cpu: CpuId) {
    let curr = s.rqs[cpu as usize].curr;
    if s.tasks[curr as usize].need_resched {
        return;
    }
    s.tasks[curr as usize].need_resched = true;
    let this = s.m.this_cpu();
    if cpu == this {
        return;
    }
    let now = s.m.now();
    if s.tasks[curr as usize].is_idle_task && s.feat.idle_polling {
        let at = now + s.costs.poll_wake_ns;
        s.m.send_ipi(cpu, ipi::POLL_KICK, at);
    } else {
        send_ipi(s, cpu, crate::tracepoints::IpiReason::Reschedule);
    }
}

/// `resched_curr_lazy()`. The model's preemption model is FULL without LAZY, where the lazy
/// form is the plain one (S-8).
pub fn resched_curr_lazy(s: &mut SchedState, cpu: CpuId) {
    resched_curr(s, cpu);
}

/// Send an IPI from this CPU to `cpu` (`ipi_send_cpu` tracepoint, modelled latency).
pub fn send_ipi(s: &mut SchedState, cpu: CpuId, reason: crate::tracepoints::IpiReason) {
    let this = s.m.this_cpu();
    emit(s, this, EventKind::IpiSendCpu { target_cpu: cpu, reason });
    let vector = match reason {
        crate::tracepoints::IpiReason::Reschedule => ipi::RESCHEDULE,
        _ => ipi::CALL_FUNCTION,
    };
    let at = s.m.now() + s.costs.ipi_latency_ns;
    s.m.send_ipi(cpu, vector, at);
}

// ---------------------------------------------------------------------- class dispatch
// The `struct sched_class` ops table as a match over the closed set of classes. Each op runs
// with the rq lock of `cpu` held and may not drop it (S-4).

/// `enqueue_task()`: class enqueue. The class updates `nr_running`.
pub fn enqueue_task(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: u32) {
    update_rq_clock(s, cpu);
    match s.tasks[p as usize].class {
        Class::Fair => crate::sched::fair::enqueue_task_fair(s, cpu, p, flags),
        Class::Rt => crate::sched::rt::enqueue_task_rt(s, cpu, p, flags),
        Class::Stop => crate::sched::stop_task::enqueue_task_stop(s, cpu, p, flags),
        Class::Deadline | Class::Idle => panic!("enqueue of a task in class {:?}", s.tasks[p as usize].class),
    }
}

/// `dequeue_task()`: false if the class kept the task queued (fair delayed dequeue, F-20).
pub fn dequeue_task(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: u32) -> bool {
    update_rq_clock(s, cpu);
    match s.tasks[p as usize].class {
        Class::Fair => crate::sched::fair::dequeue_task_fair(s, cpu, p, flags),
        Class::Rt => crate::sched::rt::dequeue_task_rt(s, cpu, p, flags),
        Class::Stop => crate::sched::stop_task::dequeue_task_stop(s, cpu, p, flags),
        Class::Deadline | Class::Idle => panic!("dequeue of a task in class {:?}", s.tasks[p as usize].class),
    }
}

/// `activate_task()`: enqueue and mark QUEUED (T-3).
pub fn activate_task(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: u32) {
    let flags = if s.tasks[p as usize].on_rq == OnRq::Migrating {
        flags | crate::sched::enqueue::MIGRATED
    } else {
        flags
    };
    enqueue_task(s, cpu, p, flags);
    s.tasks[p as usize].on_rq = OnRq::Queued;
}

/// `deactivate_task()`: dequeue for a move; `on_rq` becomes MIGRATING first (T-3).
pub fn deactivate_task(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: u32) {
    assert_eq!(flags & crate::sched::dequeue::SLEEP, 0, "deactivate_task is for moves, not sleeps");
    s.tasks[p as usize].on_rq = OnRq::Migrating;
    let removed = dequeue_task(s, cpu, p, flags | crate::sched::dequeue::MIGRATING);
    assert!(removed, "a move dequeue cannot be delayed");
}

/// `__block_task()`: the last step of blocking once the class really removed `p`:
/// `on_rq = 0` (the last write; a remote waker may take the task from here on, T-3).
pub fn block_task_finish(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let t = &mut s.tasks[p as usize];
    if t.sched_contributes_to_load {
        s.rqs[cpu as usize].nr_uninterruptible += 1;
    }
    s.tasks[p as usize].on_rq = OnRq::No;
}

/// `set_task_cpu()`: the only place `task_cpu` changes (T-5).
pub fn set_task_cpu(s: &mut SchedState, p: TaskId, new_cpu: CpuId) {
    let old = s.tasks[p as usize].cpu;
    if old != new_cpu {
        let this = s.m.this_cpu();
        let task = s.tasks[p as usize].task_ref();
        emit(s, this, EventKind::SchedMigrateTask { task, orig_cpu: old, dest_cpu: new_cpu });
        if s.tasks[p as usize].class == Class::Fair {
            crate::sched::fair::migrate_task_rq_fair(s, p, new_cpu);
        }
    }
    let t = &mut s.tasks[p as usize];
    t.cpu = new_cpu;
    t.wake_cpu = new_cpu;
}

/// `wakeup_preempt()` (W-10): same class as the donor ⇒ class hook; higher ⇒ resched.
pub fn wakeup_preempt(s: &mut SchedState, cpu: CpuId, p: TaskId, wake_flags: u32) {
    let donor = s.rqs[cpu as usize].donor;
    let pc = s.tasks[p as usize].class;
    let dc = s.tasks[donor as usize].class;
    if pc == dc {
        match pc {
            Class::Fair => crate::sched::fair::wakeup_preempt_fair(s, cpu, p, wake_flags),
            Class::Rt => crate::sched::rt::wakeup_preempt_rt(s, cpu, p, wake_flags),
            _ => {}
        }
    } else if pc < dc {
        resched_curr(s, cpu);
    }
}
