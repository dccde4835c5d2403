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
use std::future::Future;
use std::rc::Rc;

use sim::{CpuId, LockId, Machine, Nanos};

use crate::coverage::Mark;
use crate::locking::lockdep::{LockClass, Lockdep};
use crate::sched::{Class, DequeueFlags, EnqueueFlags, SchedState, WakeFlags};
use crate::task::{ctx_task, task_ctx, OnRq, TaskId};
use crate::tracepoints::{Event, EventKind, LockName, PrevState, TraceFlags};

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
    /// Set when the run must end (first reason wins), with a report.
    pub end: RefCell<Option<(crate::system::EndReason, String)>>,
    /// What the user threads wrote on stderr (`write(2, ...)`), in order.
    pub stderr: RefCell<String>,
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
        assert!(
            crate::invariants::lookup(invariant).is_some(),
            "violation of {invariant}, which is not in the invariant catalogue"
        );
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
        let cost = self.s.borrow().costs.spin_lock_ns;
        self.raw_spin_lock_costed(lock, class, name, cost).await;
    }

    /// [`Kernel::raw_spin_lock`] with the cost of the attempt (`costs.spin_lock_ns`) already
    /// read, by a wrapper that reads it with the lock's id.
    async fn raw_spin_lock_costed(&self, lock: LockId, class: LockClass, name: LockName, cost: Nanos) {
        let cpu = self.this_cpu();
        // Checked and recorded at once (Lockdep::acquire says why recording early is exact).
        let checked = self.lockdep.borrow_mut().acquire(cpu, lock, class);
        if let Err(e) = checked {
            self.violation("lockdep", e);
        }
        if !self.m.lock(lock, cost).await {
            self.emit(cpu, EventKind::ContentionBegin { lock: name });
            let spun_ns = self.m.spin(lock).await;
            self.emit(cpu, EventKind::ContentionEnd { lock: name, spun_ns });
        }
        self.s.borrow_mut().rqs[cpu.idx()].preempt_count += 1;
    }

    /// Take a raw spinlock only if it is free (`raw_spin_trylock`); not an await point.
    /// A trylock cannot deadlock, so like Linux's lockdep it is not order-checked (only
    /// recursion is).
    pub fn raw_spin_trylock(&self, lock: LockId, class: LockClass) -> bool {
        let cpu = self.this_cpu();
        let mut lockdep = self.lockdep.borrow_mut();
        if lockdep.holds(cpu, lock) {
            self.violation("lockdep", format!("recursive trylock of {class:?}"));
        }
        if self.m.try_lock(lock) {
            lockdep.acquired(cpu, lock, class);
            self.s.borrow_mut().rqs[cpu.idx()].preempt_count += 1;
            true
        } else {
            false
        }
    }

    /// Release a raw spinlock: an interleaving point right after the release.
    ///
    /// The release happens when this is called, the interleaving point when the returned
    /// future is awaited (callers await it at once, as with an `async fn`); the same holds
    /// for the `rq_unlock`, `pi_unlock`, `blocked_unlock` and `mutex_wait_unlock` wrappers,
    /// which release under the one borrow that reads the lock's id.
    pub fn raw_spin_unlock(&self, lock: LockId) -> impl Future<Output = ()> + '_ {
        self.unlock_of(move |_| lock)
    }

    /// Release the lock `lock_of` names in the state, under the one borrow that reads it, and
    /// return the interleaving point after the release ([`Kernel::raw_spin_unlock`]).
    fn unlock_of(&self, lock_of: impl FnOnce(&SchedState) -> LockId) -> impl Future<Output = ()> + '_ {
        {
            let mut s = self.s.borrow_mut();
            let lock = lock_of(&s);
            self.raw_spin_release(&mut s, lock);
        }
        self.m.yield_now()
    }

    /// Acquire the lock `lock_of` names in the state, of `class`, reading it and the cost of
    /// the attempt in one borrow ([`Kernel::raw_spin_lock`]).
    fn lock_of(
        &self,
        class: LockClass,
        lock_of: impl FnOnce(&SchedState) -> (LockId, LockName),
    ) -> impl Future<Output = ()> + '_ {
        let (lock, name, cost) = {
            let s = self.s.borrow();
            let (lock, name) = lock_of(&s);
            (lock, name, s.costs.spin_lock_ns)
        };
        self.raw_spin_lock_costed(lock, class, name, cost)
    }

    /// The release of [`Kernel::raw_spin_unlock`], under the caller's borrow of the state.
    fn raw_spin_release(&self, s: &mut SchedState, lock: LockId) {
        let cpu = self.this_cpu();
        if let Err(e) = self.lockdep.borrow_mut().released(cpu, lock) {
            self.violation("lockdep", e);
        }
        self.m.unlock(lock);
        let rq = &mut s.rqs[cpu.idx()];
        assert!(rq.preempt_count > 0, "preempt_count underflow on cpu{cpu}");
        rq.preempt_count -= 1;
    }

    /// `raw_spin_rq_lock()`.
    ///
    /// Linux: kernel/sched/core.c raw_spin_rq_lock().
    pub fn rq_lock(&self, cpu: CpuId) -> impl Future<Output = ()> + '_ {
        self.lock_of(LockClass::Rq(cpu), move |s| {
            (s.rqs[cpu.idx()].lock, LockName::Rq(cpu))
        })
    }

    /// `raw_spin_rq_unlock()`.
    ///
    /// Linux: kernel/sched/core.c raw_spin_rq_unlock().
    pub fn rq_unlock(&self, cpu: CpuId) -> impl Future<Output = ()> + '_ {
        self.unlock_of(move |s| s.rqs[cpu.idx()].lock)
    }

    /// Whether this CPU holds `cpu`'s rq lock.
    pub fn rq_locked(&self, cpu: CpuId) -> bool {
        let lock = self.s.borrow().rqs[cpu.idx()].lock;
        self.lockdep.borrow().holds(self.this_cpu(), lock)
    }

    /// `double_rq_lock()`: both rq locks in ascending CPU order.
    ///
    /// Linux: kernel/sched/core.c double_rq_lock().
    pub async fn double_rq_lock(&self, a: CpuId, b: CpuId) {
        if a == b {
            self.rq_lock(a).await;
        } else {
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            self.rq_lock(lo).await;
            self.rq_lock(hi).await;
        }
    }

    /// `double_lock_balance()`: with `this`'s lock held, also take `busiest`'s. If the order
    /// requires it, `this` is dropped and retaken, and the return value is `true`: anything
    /// read under `this` before the call may have changed.
    ///
    /// Linux: kernel/sched/sched.h double_lock_balance().
    pub async fn double_lock_balance(&self, this: CpuId, busiest: CpuId) -> bool {
        assert!(self.rq_locked(this));
        let busiest_lock = self.s.borrow().rqs[busiest.idx()].lock;
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
    ///
    /// Linux: kernel/sched/sched.h double_unlock_balance().
    pub async fn double_unlock_balance(&self, _this: CpuId, busiest: CpuId) {
        self.rq_unlock(busiest).await;
    }

    /// `raw_spin_lock(&p->pi_lock)`.
    pub fn pi_lock(&self, p: TaskId) -> impl Future<Output = ()> + '_ {
        self.lock_of(LockClass::PiLock, move |s| {
            let t = &s.tasks[p.idx()];
            (t.pi_lock, LockName::PiLock(t.pid))
        })
    }

    pub fn pi_unlock(&self, p: TaskId) -> impl Future<Output = ()> + '_ {
        self.unlock_of(move |s| s.tasks[p.idx()].pi_lock)
    }

    /// `raw_spin_lock(&p->blocked_lock)` (spec C9, last in the lock order).
    pub fn blocked_lock(&self, p: TaskId) -> impl Future<Output = ()> + '_ {
        self.lock_of(LockClass::BlockedLock, move |s| {
            let lock = s.tasks[p.idx()].blocked_lock;
            (lock, LockName::Other(lock.0))
        })
    }

    pub fn blocked_unlock(&self, p: TaskId) -> impl Future<Output = ()> + '_ {
        self.unlock_of(move |s| s.tasks[p.idx()].blocked_lock)
    }

    /// `raw_spin_lock(&lock->wait_lock)` of kernel mutex `m`.
    pub fn mutex_wait_lock(&self, m: crate::locking::mutex::MutexId) -> impl Future<Output = ()> + '_ {
        self.lock_of(LockClass::MutexWaitLock, move |s| {
            let lock = s.mutexes[m.idx()].wait_lock;
            (lock, LockName::Other(lock.0))
        })
    }

    pub fn mutex_wait_unlock(&self, m: crate::locking::mutex::MutexId) -> impl Future<Output = ()> + '_ {
        self.unlock_of(move |s| s.mutexes[m.idx()].wait_lock)
    }

    // ------------------------------------------------------------------ events

    /// Emit a tracepoint record on `cpu`'s buffer.
    pub fn emit(&self, cpu: CpuId, kind: EventKind) {
        emit(&mut self.s.borrow_mut(), cpu, kind);
    }
}

/// Emit a tracepoint record on `cpu`'s buffer (sync form for class code).
///
/// The line's owner is `current`: the task whose stack executes on the CPU, which inside
/// `__schedule()` is still prev after `rq->curr` already names next (TR-5).
pub fn emit(s: &mut SchedState, cpu: CpuId, kind: EventKind) {
    // Ask the machine first (a call into the sim crate): then nothing else has to be kept in
    // saved registers across that call, on a path every event takes.
    let ctx = s.m.cpu_ctx(cpu);
    let rq = &s.rqs[cpu.idx()];
    let current = ctx.map_or(rq.curr, ctx_task);
    let curr = &s.tasks[current.idx()];
    let flags = TraceFlags {
        irqs_off: rq.irqs_disabled,
        need_resched: curr.need_resched,
        hardirq: rq.in_hardirq,
        preempt_depth: rq.preempt_count.min(15) as u8,
    };
    let e = Event {
        time_ns: s.m.now(),
        cpu,
        owner: curr.pid,
        flags,
        kind,
    };
    s.nr_events += 1;
    s.sink.event(&e);
}

// ---------------------------------------------------------------------- lock context

/// Whether lock assertions apply yet: only once the machine has run a step. The boot state
/// (idle tasks, the workload's first tasks) is built single-threaded before any CPU runs,
/// and unit tests of class code build queues directly; there is no lock to hold then, as in
/// Linux's early boot before lockdep is enabled.
#[inline]
fn lockdep_active(s: &SchedState) -> bool {
    s.m.steps() > 0
}

/// `lockdep_assert_rq_held()`: the CPU executing holds `cpu`'s rq lock. A failure is a model
/// assertion: the run ends with exit code 4 and its replay line (`catch_model_panic`).
///
/// Linux: kernel/sched/sched.h lockdep_assert_rq_held().
///
/// Deviation: asked of the machine's spinlock table (who owns the lock) rather than of
/// lockdep's held-lock stack, which sync code cannot reach (it lives in [`Kernel`]); both are
/// updated by the same `raw_spin_lock`/`raw_spin_unlock` calls.
///
/// Inlined (it guards every class hook): the check is a few loads and one compare, and the
/// failure message is built out of line (`rq_lock_not_held`).
#[inline]
#[track_caller]
pub fn lockdep_assert_rq_held(s: &SchedState, cpu: CpuId) {
    if !lockdep_active(s) {
        return;
    }
    let this = s.m.this_cpu();
    let owner = s.m.lock_owner(s.rqs[cpu.idx()].lock);
    if owner != Some(this) {
        rq_lock_not_held(this, cpu, owner);
    }
}

/// The failure of [`lockdep_assert_rq_held`]: `this` touches `cpu`'s runqueue while `owner`
/// holds (or nobody holds) its lock.
#[cold]
#[inline(never)]
#[track_caller]
fn rq_lock_not_held(this: CpuId, cpu: CpuId, owner: Option<CpuId>) -> ! {
    panic!("lockdep: cpu{this} touches cpu{cpu}'s runqueue without its rq lock (held by {owner:?})");
}

/// `lockdep_assert_held(&p->pi_lock)`: the CPU executing holds `p`'s `pi_lock`.
///
/// Linux: include/linux/lockdep.h lockdep_assert_held() (as select_task_rq() uses it).
#[track_caller]
pub fn lockdep_assert_pi_held(s: &SchedState, p: TaskId) {
    if !lockdep_active(s) {
        return;
    }
    let this = s.m.this_cpu();
    let owner = s.m.lock_owner(s.tasks[p.idx()].pi_lock);
    assert!(
        owner == Some(this),
        "lockdep: cpu{this} places task {p} without its pi_lock (held by {owner:?})"
    );
}

// ---------------------------------------------------------------------- sync helpers
// Called with the rq lock of `cpu` held.

/// `update_rq_clock()`. Rq lock of `cpu` held (asserted).
///
/// Linux: kernel/sched/core.c update_rq_clock().
///
/// Deviation: Linux's `rq_clock()` readers also assert the lock and that the clock was
/// updated in this section (`assert_clock_updated()`); the model's class code reads
/// `rq.clock_task` as a field, so the lock is asserted at every hook's entry instead (see
/// [`crate::sched::class`]) and the clock-update flags are not modelled.
pub fn update_rq_clock(s: &mut SchedState, cpu: CpuId) {
    lockdep_assert_rq_held(s, cpu);
    let now = s.m.now();
    let rq = &mut s.rqs[cpu.idx()];
    if now > rq.clock {
        rq.clock = now;
        rq.clock_task = now;
    }
}

/// `add_nr_running()`: also marks the root domain overloaded when a CPU gets a second task.
///
/// Linux: kernel/sched/sched.h add_nr_running().
pub fn add_nr_running(s: &mut SchedState, cpu: CpuId, n: u32) {
    let rq = &mut s.rqs[cpu.idx()];
    rq.nr_running += n;
    if rq.nr_running >= 2 {
        s.rd_overloaded = true;
    }
}

/// `sub_nr_running()`.
///
/// Linux: kernel/sched/sched.h sub_nr_running().
pub fn sub_nr_running(s: &mut SchedState, cpu: CpuId, n: u32) {
    let rq = &mut s.rqs[cpu.idx()];
    assert!(rq.nr_running >= n, "nr_running underflow on cpu{cpu}");
    rq.nr_running -= n;
}

/// The class a task's priority puts it in (T-8).
///
/// Linux: kernel/sched/core.c __setscheduler_class().
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
///
/// Linux: kernel/sched/sched.h task_on_rq_queued().
pub fn task_on_rq_queued(s: &SchedState, p: TaskId) -> bool {
    s.tasks[p.idx()].on_rq == OnRq::Queued
}

/// Whether `p` is the task executing on its CPU.
///
/// Linux: kernel/sched/sched.h task_on_cpu().
pub fn task_on_cpu(s: &SchedState, p: TaskId) -> bool {
    s.tasks[p.idx()].on_cpu
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
///
/// Linux: kernel/sched/core.c resched_curr().
pub fn resched_curr(s: &mut SchedState, cpu: CpuId) {
    let curr = s.rqs[cpu.idx()].curr;
    if s.tasks[curr.idx()].need_resched {
        return;
    }
    s.tasks[curr.idx()].need_resched = true;
    let this = s.m.this_cpu();
    if cpu == this {
        return;
    }
    let now = s.m.now();
    if s.rqs[cpu.idx()].polling {
        let at = now + s.costs.poll_wake_ns;
        s.m.send_ipi(cpu, ipi::POLL_KICK, at);
    } else {
        send_ipi(s, cpu, crate::tracepoints::IpiReason::Reschedule);
    }
}

/// `resched_curr_lazy()`. The model's preemption model is FULL without LAZY, where the lazy
/// form is the plain one (S-8).
///
/// Linux: kernel/sched/core.c resched_curr_lazy().
pub fn resched_curr_lazy(s: &mut SchedState, cpu: CpuId) {
    resched_curr(s, cpu);
}

/// Send an IPI from this CPU to `cpu` (`ipi_send_cpu` tracepoint, modelled latency).
///
/// Linux: kernel/smp.c send_call_function_single_ipi(), arch smp_send_reschedule().
pub fn send_ipi(s: &mut SchedState, cpu: CpuId, reason: crate::tracepoints::IpiReason) {
    let this = s.m.this_cpu();
    emit(
        s,
        this,
        EventKind::IpiSendCpu {
            target_cpu: cpu,
            reason,
        },
    );
    let vector = match reason {
        crate::tracepoints::IpiReason::Reschedule => ipi::RESCHEDULE,
        _ => ipi::CALL_FUNCTION,
    };
    let at = s.m.now() + s.costs.ipi_latency_ns;
    s.m.send_ipi(cpu, vector, at);
}

// ---------------------------------------------------------------------- class dispatch
// The core side of the ops table: each wrapper does the core's part (clock, accounting,
// class comparison) and calls the class hook in [`crate::sched::class`]. Rq lock of `cpu` held.

/// `enqueue_task()`: class enqueue. The class updates `nr_running`. Rq lock of `cpu` held
/// (asserted).
///
/// Linux: kernel/sched/core.c enqueue_task().
pub fn enqueue_task(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: EnqueueFlags) {
    lockdep_assert_rq_held(s, cpu);
    update_rq_clock(s, cpu);
    s.tasks[p.idx()].class.enqueue_task(s, cpu, p, flags);
}

/// `dequeue_task()`: false if the class kept the task queued (fair delayed dequeue, F-20).
/// Rq lock of `cpu` held (asserted).
///
/// Linux: kernel/sched/core.c dequeue_task().
pub fn dequeue_task(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: DequeueFlags) -> bool {
    lockdep_assert_rq_held(s, cpu);
    update_rq_clock(s, cpu);
    s.tasks[p.idx()].class.dequeue_task(s, cpu, p, flags)
}

/// `activate_task()`: enqueue and mark QUEUED (T-3).
///
/// Linux: kernel/sched/core.c activate_task().
pub fn activate_task(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: EnqueueFlags) {
    let flags = if s.tasks[p.idx()].on_rq == OnRq::Migrating {
        flags | EnqueueFlags::MIGRATED
    } else {
        flags
    };
    enqueue_task(s, cpu, p, flags);
    s.tasks[p.idx()].on_rq = OnRq::Queued;
}

/// `deactivate_task()`: dequeue for a move; `on_rq` becomes MIGRATING first (T-3).
///
/// Linux: kernel/sched/core.c deactivate_task().
pub fn deactivate_task(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: DequeueFlags) {
    assert!(
        !flags.contains(DequeueFlags::SLEEP),
        "deactivate_task is for moves, not sleeps"
    );
    s.tasks[p.idx()].on_rq = OnRq::Migrating;
    let removed = dequeue_task(s, cpu, p, flags | DequeueFlags::MIGRATING);
    assert!(removed, "a move dequeue cannot be delayed");
}

/// `__block_task()`: the last step of blocking once the class really removed `p`:
/// `on_rq = 0` (the last write; a remote waker may take the task from here on, T-3).
///
/// Linux: kernel/sched/core.c __block_task().
pub fn block_task_finish(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let t = &mut s.tasks[p.idx()];
    if t.sched_contributes_to_load {
        s.rqs[cpu.idx()].nr_uninterruptible += 1;
    }
    if t.in_iowait {
        s.rqs[cpu.idx()].nr_iowait += 1;
    }
    s.tasks[p.idx()].on_rq = OnRq::No;
}

/// `set_task_cpu()`: the only place `task_cpu` changes (T-5). The caller holds `p`'s
/// `pi_lock` or the rq lock of `task_cpu(p)` (asserted, as Linux's debug check does).
///
/// Linux: kernel/sched/core.c set_task_cpu().
pub fn set_task_cpu(s: &mut SchedState, p: TaskId, new_cpu: CpuId) {
    let old = s.tasks[p.idx()].cpu;
    if lockdep_active(s) {
        let this = s.m.this_cpu();
        let pi = s.m.lock_owner(s.tasks[p.idx()].pi_lock);
        let rq = s.m.lock_owner(s.rqs[old.idx()].lock);
        assert!(
            pi == Some(this) || rq == Some(this),
            "lockdep: cpu{this} moves task {p} from cpu{old} without its pi_lock or that rq lock"
        );
    }
    if old != new_cpu {
        let this = s.m.this_cpu();
        let task = s.tasks[p.idx()].task_ref();
        emit(
            s,
            this,
            EventKind::SchedMigrateTask {
                task,
                orig_cpu: old,
                dest_cpu: new_cpu,
            },
        );
        s.tasks[p.idx()].class.migrate_task_rq(s, p, new_cpu);
    }
    let t = &mut s.tasks[p.idx()];
    t.cpu = new_cpu;
    t.wake_cpu = new_cpu;
}

/// `wakeup_preempt()` (W-10): same class as the donor ⇒ class hook; higher ⇒ resched.
///
/// Linux: kernel/sched/core.c wakeup_preempt().
pub fn wakeup_preempt(s: &mut SchedState, cpu: CpuId, p: TaskId, wake_flags: WakeFlags) {
    let donor = s.rqs[cpu.idx()].donor;
    let pc = s.tasks[p.idx()].class;
    let dc = s.tasks[donor.idx()].class;
    if pc == dc {
        pc.wakeup_preempt(s, cpu, p, wake_flags);
    } else if pc < dc {
        resched_curr(s, cpu);
    }
}

// ---------------------------------------------------------------------- put/set/pick dispatch

/// Queue a balance callback once (`queue_balance_callback` ignores an already queued head).
///
/// Linux: kernel/sched/sched.h queue_balance_callback().
pub fn queue_balance_callback(s: &mut SchedState, cpu: CpuId, cb: crate::sched::BalanceCallback) {
    let cbs = &mut s.rqs[cpu.idx()].balance_callbacks;
    if !cbs.contains(&cb) {
        cbs.push(cb);
    }
}

/// Move a queued task between two rqs whose locks are both held (RT/DL push and pull).
///
/// Linux: kernel/sched/sched.h move_queued_task_locked().
pub fn move_queued_task_locked(s: &mut SchedState, src: CpuId, dst: CpuId, p: TaskId) {
    deactivate_task(s, src, p, DequeueFlags::empty());
    set_task_cpu(s, p, dst);
    activate_task(s, dst, p, EnqueueFlags::empty());
}

/// `put_prev_task()` of `prev`'s class.
///
/// Linux: kernel/sched/sched.h put_prev_task().
pub fn put_prev_task(s: &mut SchedState, cpu: CpuId, prev: TaskId) {
    s.tasks[prev.idx()].class.put_prev_task(s, cpu, prev);
}

/// `set_next_task()` of `next`'s class.
///
/// Linux: kernel/sched/sched.h set_next_task().
pub fn set_next_task(s: &mut SchedState, cpu: CpuId, next: TaskId, first: bool) {
    s.tasks[next.idx()].class.set_next_task(s, cpu, next, first);
}

/// `put_prev_set_next_task()`: `prev` must be the rq's donor (I12). The server a pick went
/// through (`rq->dl_server`) moves to `next` (`__put_prev_set_next_dl_server()`).
///
/// Linux: kernel/sched/sched.h put_prev_set_next_task().
pub fn put_prev_set_next_task(s: &mut SchedState, cpu: CpuId, prev: TaskId, next: TaskId) {
    assert_eq!(
        s.rqs[cpu.idx()].donor,
        prev,
        "put_prev_set_next_task with a prev that is not the donor"
    );
    let server = s.rqs[cpu.idx()].dl_server.take();
    s.tasks[prev.idx()].dl_server = None;
    s.tasks[next.idx()].dl_server = server;
    if next == prev {
        return;
    }
    put_prev_task(s, cpu, prev);
    set_next_task(s, cpu, next, true);
}

/// `update_curr_common()`: charge elapsed time to the donor's `exec_start` interval and the
/// executing task's `sum_exec_runtime` (A2/A3), for classes without their own accounting.
///
/// Linux: kernel/sched/fair.c update_curr_common().
pub fn update_curr_common(s: &mut SchedState, cpu: CpuId) -> Nanos {
    let rq = &s.rqs[cpu.idx()];
    let (donor, curr, now) = (rq.donor, rq.curr, rq.clock_task);
    let start = s.tasks[donor.idx()].se.exec_start;
    if now <= start {
        return 0;
    }
    let delta = now - start;
    s.tasks[donor.idx()].se.exec_start = now;
    s.tasks[curr.idx()].se.sum_exec_runtime += delta;
    delta
}

/// `__pick_next_task()`: the balance pass from prev's class down (which may drop the rq lock),
/// then the first class, stop → idle, whose pick returns a task.
///
/// Linux: kernel/sched/core.c __pick_next_task(), prev_balance().
///
/// Deviation: the fair fast path is folded into the general path (`balance_fair` runs the
/// same newidle balance `pick_next_task_fair` would); the outcome is the same.
async fn pick_next_task(k: &Kernel, cpu: CpuId) -> TaskId {
    // v29 1/9 (P2): prev is read from rq.donor at the moment of use, never carried across the
    // balance pass, which may drop the rq lock. With `stale_prev_fix` off the earlier code is
    // reproduced: `prev` is the donor captured on entry and handed to every user (P1).
    let (start, entry_prev, fix) = {
        let s = k.st();
        let donor = s.rqs[cpu.idx()].donor;
        (s.tasks[donor.idx()].class, donor, s.feat.stale_prev_fix)
    };
    let prev_now = |k: &Kernel| {
        if fix {
            k.st().rqs[cpu.idx()].donor
        } else {
            entry_prev
        }
    };
    k.st().rqs[cpu.idx()].in_prev_balance = true;
    for class in Class::ALL.into_iter().filter(|&c| c >= start) {
        if class.balance(k, cpu, prev_now(k)).await {
            break;
        }
    }
    k.st().rqs[cpu.idx()].in_prev_balance = false;
    {
        let s = &mut *k.st();
        if s.rqs[cpu.idx()].donor != entry_prev {
            s.coverage.hit(Mark::DonorChangedInBalance);
        }
    }
    let prev = prev_now(k);
    let mut st = k.st();
    let s = &mut *st;
    let p = Class::ALL
        .into_iter()
        .find_map(|class| class.pick_task(s, cpu))
        .expect("the idle class always has a task");
    let donor = s.rqs[cpu.idx()].donor;
    if prev != donor {
        // I12: the old code would now "put" a task that is no longer this rq's class current
        // (possibly queued elsewhere by then) and corrupt its class.
        let detail = format!(
            "cpu {cpu}: put_prev_set_next_task with prev {} while rq->donor is {} (the donor \
             changed while the balance pass had the rq lock dropped)",
            s.tasks[prev.idx()].comm.as_str(),
            s.tasks[donor.idx()].comm.as_str()
        );
        drop(st);
        k.violation("I12", detail);
        return p;
    }
    put_prev_set_next_task(s, cpu, prev, p);
    p
}

// ---------------------------------------------------------------------- __schedule

/// `__schedule()` modes (S-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedMode {
    /// `SM_NONE`: voluntary `schedule()`.
    None,
    /// `SM_PREEMPT`: preemption (never blocks prev).
    Preempt,
    /// `SM_IDLE`: from the idle loop.
    Idle,
}

impl Kernel {
    /// `current` on this CPU.
    pub fn current(&self) -> TaskId {
        let cpu = self.this_cpu();
        self.s.borrow().rqs[cpu.idx()].curr
    }

    pub fn need_resched(&self) -> bool {
        let s = self.s.borrow();
        let cpu = self.m.this_cpu();
        s.tasks[s.rqs[cpu.idx()].curr.idx()].need_resched
    }
}

/// The `prev_state` a `sched_switch` record prints (TR-3).
fn trace_prev_state(state: u32, exit_state: u32, preempt: bool) -> PrevState {
    use crate::task::state::*;
    if preempt {
        return PrevState::Preempted;
    }
    if exit_state & EXIT_DEAD != 0 {
        return PrevState::Dead;
    }
    if exit_state & EXIT_ZOMBIE != 0 {
        return PrevState::Zombie;
    }
    if state & TASK_UNINTERRUPTIBLE != 0 && state & TASK_NOLOAD != 0 {
        PrevState::Idle
    } else if state & TASK_UNINTERRUPTIBLE != 0 {
        PrevState::DiskSleep
    } else if state & TASK_INTERRUPTIBLE != 0 {
        PrevState::Sleeping
    } else {
        PrevState::Running
    }
}

/// `block_task()` (v29 4/9, B1), self-contained so proxy paths can call it directly: from the
/// sampled state decide whether the task contributes to load (uninterruptible, not NOLOAD)
/// and whether it is a special state (DEAD, or WAKING for a return migration: never
/// delay-dequeued), dequeue it as a sleeper, and only if the class really removed it finish
/// the block (`on_rq = 0`, load accounting). Returns whether it was removed.
///
/// Linux: kernel/sched/core.c block_task(), __block_task().
fn block_task(s: &mut SchedState, cpu: CpuId, p: TaskId, task_state: u32) -> bool {
    use crate::task::state::*;
    let t = &mut s.tasks[p.idx()];
    t.sched_contributes_to_load = task_state & TASK_UNINTERRUPTIBLE != 0 && task_state & TASK_NOLOAD == 0;
    let special = task_state & (TASK_DEAD | TASK_WAKING) != 0;
    let mut flags = DequeueFlags::SLEEP | DequeueFlags::NOCLOCK;
    if special {
        flags |= DequeueFlags::SPECIAL;
    }
    let removed = dequeue_task(s, cpu, p, flags);
    if removed {
        block_task_finish(s, cpu, p);
    }
    removed
}

/// `__schedule()` (S-2): block prev if it asked to sleep, pick, switch.
///
/// Linux: kernel/sched/core.c __schedule().
pub async fn __schedule(k: &Kernel, mode: SchedMode) {
    let cpu = k.this_cpu();
    {
        // preempt_disable() of schedule()/preempt_schedule(); the task switched to drops it
        // (at the end of its own __schedule, or in schedule_tail for a new task).
        let mut s = k.st();
        let rq = &mut s.rqs[cpu.idx()];
        rq.irqs_disabled = true;
        rq.preempt_count += 1;
    }
    k.rq_lock(cpu).await;
    let (prev, prev_state, voluntary) = schedule_block_prev(&mut k.st(), cpu, mode);
    let (next, keep_resched) = pick_again(k, cpu, prev).await;
    let switched = schedule_switch(&mut k.st(), cpu, prev, next, prev_state, voluntary, keep_resched);
    if switched {
        context_switch(k, next).await;
    } else {
        let cost = k.st().costs.schedule_no_switch_ns;
        k.m.delay(cost).await;
        do_balance_callbacks(k, cpu).await;
        k.st().rqs[cpu.idx()].irqs_disabled = false;
        k.rq_unlock(cpu).await;
    }
    sched_preempt_enable_no_resched(k);
}

/// `__schedule()`'s first part, under the rq lock: a task that calls schedule() in a sleeping
/// state blocks (S3), unless it is a blocked donor, which stays queued. Returns prev, its
/// state for `sched_switch` and whether the switch is voluntary.
///
/// Linux: kernel/sched/core.c __schedule() up to `pick_again`, try_to_block_task().
fn schedule_block_prev(s: &mut SchedState, cpu: CpuId, mode: SchedMode) -> (TaskId, PrevState, bool) {
    update_rq_clock(s, cpu);
    let prev = s.rqs[cpu.idx()].curr;
    let (mut state, exit_state) = (s.tasks[prev.idx()].state, s.tasks[prev.idx()].exit_state);
    let mut voluntary = false;
    if mode == SchedMode::None
        && state != crate::task::state::TASK_RUNNING
        && crate::signal::signal_pending_state(s, prev, state)
    {
        // try_to_block_task(): a signal relevant to the sleep keeps prev running (S-2 2a).
        state = crate::task::state::TASK_RUNNING;
        s.tasks[prev.idx()].state = state;
        voluntary = true;
    }
    if mode == SchedMode::None && state != crate::task::state::TASK_RUNNING {
        // S3: only the task's own voluntary pass marks it blocked (v29 6/9); a task
        // blocked on a mutex then stays queued as a donor.
        s.tasks[prev.idx()].is_blocked = true;
        if !task_is_blocked(s, prev) {
            // try_to_block_task(): no signal is pending (checked above), so a sleeping
            // state blocks.
            block_task(s, cpu, prev, state);
        }
        voluntary = true;
    }
    (
        prev,
        trace_prev_state(state, exit_state, mode == SchedMode::Preempt),
        voluntary,
    )
}

/// `pick_again`: pick a donor; if it is a blocked donor, find the task that runs for it.
/// Returns the task to run and whether to keep `need_resched` (a proxy walk that ends in
/// idle asks for another pass).
///
/// Linux: kernel/sched/core.c __schedule(), the `pick_again:` loop.
async fn pick_again(k: &Kernel, cpu: CpuId, prev: TaskId) -> (TaskId, bool) {
    loop {
        // S4/I10 (7.1): nothing is left queued from an abandoned pick.
        if !k.st().rqs[cpu.idx()].balance_callbacks.is_empty() {
            let left = k.st().rqs[cpu.idx()].balance_callbacks.clone();
            k.violation(
                "I10",
                format!("cpu {cpu}: balance callbacks {left:?} at pick_again"),
            );
        }
        let picked = pick_next_task(k, cpu).await;
        let (prev_donor, blocked) = {
            let s = &mut *k.st();
            let prev_donor = s.rqs[cpu.idx()].donor;
            rq_set_donor(s, cpu, picked);
            // S6 (v29 9/9): a task picked as donor proxies through nobody yet.
            s.tasks[picked.idx()].blocked_donor = None;
            (prev_donor, task_is_blocked(s, picked))
        };
        let next = if blocked {
            match Box::pin(find_proxy_task(k, cpu, picked)).await {
                // S7: the abandoned pick's push/pull work goes (zap_balance_callbacks()).
                Proxy::Repick => {
                    k.st().rqs[cpu.idx()].balance_callbacks.clear();
                    proxy_leave_pull(k, cpu, picked).await;
                    continue;
                }
                Proxy::Idle(idle) => {
                    k.st().rqs[cpu.idx()].balance_callbacks.clear();
                    proxy_leave_pull(k, cpu, picked).await;
                    crate::invariants::handoff::record_walk(&mut k.st(), cpu, idle, idle);
                    return (idle, true);
                }
                Proxy::Run(t) => t,
            }
        } else {
            picked
        };
        {
            // The checker's record of the walk (proxy_handoff_to_booster); changes nothing.
            let s = &mut *k.st();
            let donor = s.rqs[cpu.idx()].donor;
            crate::invariants::handoff::record_walk(s, cpu, donor, next);
        }
        proxy_missed_balance(&mut k.st(), cpu, prev_donor, prev, next);
        return (next, false);
    }
}

/// The `proxy_leave_pull` proposal (spec O2, a finding of the explorer): the walk from
/// `donor` took it off this runqueue (deactivated it for a sleeping or remote owner, or moved
/// it with its chain to the owner's CPU) and left idle as the rq's donor. Run the pull that
/// its class's `balance()` would have run had it blocked as an ordinary sleeper
/// (`balance_rt()`: the RT level here is now weaker than it; `balance_dl()`: it is a DL task),
/// so RT/DL work queued behind a running task on an overloaded CPU comes here instead of this
/// CPU idling. A pull that moves work here reschedules this CPU (`resched_curr`). Without the
/// switch nothing runs, as in the series: `proxy_resched_idle()` made idle the prev of the
/// next pick, whose balance pass starts at the idle class. Rq lock of `cpu` held (the pull
/// may drop and retake it).
///
/// Linux: none (a proposal); the pulls are kernel/sched/rt.c balance_rt() and
/// kernel/sched/deadline.c balance_dl(), skipped by kernel/sched/core.c proxy_deactivate()
/// and proxy_migrate_task() of the tree at 32d34d761ad6 through proxy_resched_idle().
async fn proxy_leave_pull(k: &Kernel, cpu: CpuId, donor: TaskId) {
    let class = {
        let s = k.st();
        let t = &s.tasks[donor.idx()];
        let still_here = t.cpu == cpu && task_on_rq_queued(&s, donor);
        if !s.feat.proxy_leave_pull || still_here {
            return;
        }
        t.class
    };
    match class {
        // Boxed: rare, and its state would otherwise sit in every task's resident future.
        Class::Rt => Box::pin(crate::sched::rt::pull_for_departed(k, cpu, donor)).await,
        Class::Deadline => Box::pin(crate::sched::deadline::pull_dl_task(k, cpu)).await,
        _ => {}
    }
}

/// The switch's bookkeeping, under the rq lock: clear `need_resched` (unless kept), trace the
/// proxy slice, and if `next` differs from `prev` make it curr, count the switch and emit
/// `sched_switch`. Returns whether the task changed.
///
/// Linux: kernel/sched/core.c __schedule() after `picked:`, up to context_switch().
fn schedule_switch(
    s: &mut SchedState,
    cpu: CpuId,
    prev: TaskId,
    next: TaskId,
    prev_state: PrevState,
    voluntary: bool,
    keep_resched: bool,
) -> bool {
    if !keep_resched {
        s.tasks[prev.idx()].need_resched = false;
    }
    trace_proxy(s, cpu, next);
    if next != prev {
        let rq = &mut s.rqs[cpu.idx()];
        rq.nr_switches += 1;
        rq.curr = next;
        rq.last_prev = prev;
        if voluntary {
            s.tasks[prev.idx()].nvcsw += 1;
        } else {
            s.tasks[prev.idx()].nivcsw += 1;
        }
        let (pr, nr) = (s.tasks[prev.idx()].task_ref(), s.tasks[next.idx()].task_ref());
        emit(
            s,
            cpu,
            EventKind::SchedSwitch {
                prev: pr,
                prev_state,
                next: nr,
            },
        );
        true
    } else {
        false
    }
}

/// Drop the preemption count taken on entry to `__schedule()` (on whichever CPU this task
/// now runs).
///
/// Linux: kernel/sched/core.c sched_preempt_enable_no_resched().
fn sched_preempt_enable_no_resched(k: &Kernel) {
    let cpu = k.this_cpu();
    let mut s = k.st();
    let rq = &mut s.rqs[cpu.idx()];
    assert!(rq.preempt_count > 0, "preempt_count underflow on cpu{cpu}");
    rq.preempt_count -= 1;
}

/// `context_switch()`: mark next on the CPU, pay the switch, and continue as `next`. Returns
/// when this task is switched back in, after `finish_task_switch()`.
///
/// Linux: kernel/sched/core.c context_switch(), prepare_task_switch().
async fn context_switch(k: &Kernel, next: TaskId) {
    let cost = {
        let s = &mut *k.st();
        s.tasks[next.idx()].on_cpu = true;
        s.costs.context_switch_ns
    };
    k.m.delay(cost).await;
    k.m.switch_to(task_ctx(next)).await;
    finish_task_switch(k).await;
}

/// `finish_task_switch()`: as the new task, let go of prev and release the rq lock.
///
/// Linux: kernel/sched/core.c finish_task_switch().
pub async fn finish_task_switch(k: &Kernel) {
    let cpu = k.this_cpu();
    let (prev, prev_dead) = {
        let s = &mut *k.st();
        let prev = s.rqs[cpu.idx()].last_prev;
        // finish_task(): the release that lets a waker take prev (T-4).
        s.tasks[prev.idx()].on_cpu = false;
        (prev, s.tasks[prev.idx()].state == crate::task::state::TASK_DEAD)
    };
    do_balance_callbacks(k, cpu).await;
    k.st().rqs[cpu.idx()].irqs_disabled = false;
    k.rq_unlock(cpu).await;
    if prev_dead {
        // put_task_struct_rcu_user(): the dead task's stack is freed.
        k.m.reap(task_ctx(prev));
        let s = &mut *k.st();
        s.nr_exited += 1;
        let all_done = s.nr_exited == s.nr_user_tasks;
        if all_done {
            k.end(crate::system::EndReason::Exited, String::new());
        }
    }
}

/// `schedule_tail()`: the first thing a new task runs.
///
/// Linux: kernel/sched/core.c schedule_tail().
pub async fn schedule_tail(k: &Kernel) {
    finish_task_switch(k).await;
    sched_preempt_enable_no_resched(k);
}

/// `__balance_callbacks()`: run the deferred push/pull work (rq lock held; the work may drop
/// and retake it).
///
/// Linux: kernel/sched/core.c __balance_callbacks().
pub async fn do_balance_callbacks(k: &Kernel, cpu: CpuId) {
    loop {
        let cb = {
            let mut s = k.st();
            let rq = &mut s.rqs[cpu.idx()];
            if rq.balance_callbacks.is_empty() {
                break;
            }
            rq.balance_callbacks.remove(0)
        };
        match cb {
            crate::sched::BalanceCallback::PushRt => Box::pin(crate::sched::rt::push_rt_tasks(k, cpu)).await,
            crate::sched::BalanceCallback::PullRt => Box::pin(crate::sched::rt::pull_rt_task(k, cpu)).await,
            crate::sched::BalanceCallback::PushDl => {
                Box::pin(crate::sched::deadline::push_dl_tasks(k, cpu)).await
            }
            crate::sched::BalanceCallback::PullDl => {
                Box::pin(crate::sched::deadline::pull_dl_task(k, cpu)).await
            }
        }
    }
}

/// `schedule()`: loop on `__schedule(SM_NONE)` while need_resched is set (S-2 step 5),
/// with the S-6 worker hooks around the loop: `sched_submit_work()` before it when the task
/// is about to sleep, `sched_update_worker()` after it.
///
/// Linux: kernel/sched/core.c schedule().
pub async fn schedule(k: &Kernel) {
    // Interrupts are on and preemption is enabled on the way in (schedule_preempt_disabled()
    // re-enabled it without rescheduling): an interrupt pending since the caller last had
    // interrupts off is taken here, and may preempt the task with its sleep state already set
    // but before sched_submit_work() ran — the window of the workqueue stall (B4 step 4).
    let cpu = k.this_cpu();
    if k.m.irq_due() && !k.st().rqs[cpu.idx()].irqs_disabled {
        // Boxed: rarely taken, and its state (the interrupt, then a preemption) would
        // otherwise be part of every task's state while it sleeps in `schedule()`.
        Box::pin(irq_before_schedule(k)).await;
    }
    let tsk = k.current();
    if !k.st().tasks[tsk.idx()].is_running_state() {
        sched_submit_work(k, tsk).await;
    }
    loop {
        __schedule(k, SchedMode::None).await;
        if !k.need_resched() {
            break;
        }
    }
    sched_update_worker(k, tsk);
}

/// The interrupt `schedule()` takes on its way in, and the preemption on return from it.
///
/// Linux: kernel/entry/common.c irqentry_exit(): an interrupt taken in the kernel with
/// preemption enabled may reschedule on its way out (here through [`preempt_point`]).
async fn irq_before_schedule(k: &Kernel) {
    crate::irq::do_irq(k).await;
    preempt_point(k).await;
}

/// `preempt_schedule()` at a preemption point of kernel code: preempts (SM_PREEMPT, prev
/// shown as `R+`) if need_resched is set and nothing disables preemption.
///
/// Linux: kernel/sched/core.c preempt_schedule().
pub async fn preempt_point(k: &Kernel) {
    while k.need_resched() && k.st().rqs[k.this_cpu().idx()].preempt_count == 0 {
        __schedule(k, SchedMode::Preempt).await;
    }
}

// ---------------------------------------------------------------------- Proxy Execution
// The blocked-donor pick and the chain walk (spec proxy-exec.md §1–3), with the cross-CPU
// parts of the v29 series and its successors: donor migration to the owner's CPU
// (`proxy_migrate_task`), return migration (`proxy_force_return`), sleeping-owner parking,
// each switchable by a feature (§4–§7).

/// Whether `p` is a blocked donor for the pick and the chain walk: Proxy Execution is on and
/// `p` waits on a mutex or was chosen by an unlocker and not yet returned home (the
/// PROXY_WAKING mark counts as blocked), and — with `is_blocked` (v29 6/9) — went through
/// its own voluntary `schedule()` since its last wakeup.
///
/// Linux: kernel/sched/core.c __schedule() (`next->is_blocked && next->blocked_on`, tree
/// 32d34d761ad6), kernel/sched/sched.h task_is_blocked().
///
/// Deviation: the v29 tree tests `is_blocked` only for the picked donor and follows any
/// owner that has `blocked_on` set; the model asks `is_blocked` of every link, as the
/// post-v29 "Be more strict about p->is_blocked" does, so that proxy code never moves a task
/// that did not block itself (I6, B5).
pub fn task_is_blocked(s: &SchedState, p: TaskId) -> bool {
    let t = &s.tasks[p.idx()];
    // v29 6/9: only a task that went through its own voluntary schedule() is a donor; one
    // preempted inside the lock slow path is an ordinary runnable task (B5). Off: v23's rule.
    // Without the ttwu-side return (v29 5/9) the scheduler is what sends a woken waking task
    // home (F2 → proxy_force_return), so the mark keeps it a donor after its wakeup.
    let must_return = t.proxy_waking && !s.feat.ttwu_return_migration;
    s.feat.proxy_exec && task_has_blocked_on(s, p) && (t.is_blocked || !s.feat.is_blocked || must_return)
}

/// `task_is_blocked()` as sched.h defines it: Proxy Execution is on and `blocked_on` is set,
/// the PROXY_WAKING mark included. `proxy_needs_return()` and `try_to_block_task()` ask this.
///
/// Linux: kernel/sched/sched.h task_is_blocked().
pub fn task_has_blocked_on(s: &SchedState, p: TaskId) -> bool {
    let t = &s.tasks[p.idx()];
    s.feat.proxy_exec && (t.proxy_waking || t.blocked_on.is_some())
}

/// S8 (7.1, "sched: Fix potentially missing balancing with Proxy Exec"): when the donor did
/// not change but the task on the CPU did,
///
/// ```text
///            prev    next
///   donor:    B       B
///   curr:     A     B or C
/// ```
///
/// the pick's `put_prev_set_next_task(B, B)` did nothing, yet A may have missed an RT/DL
/// balance opportunity while it was on the CPU (push and pull skip on-CPU tasks, S10). Put
/// and set the donor again so its class queues the push work. Rq lock of `cpu` held.
///
/// Linux: kernel/sched/core.c __schedule() (the `rq->donor == prev_donor && prev != next`
/// branch).
fn proxy_missed_balance(s: &mut SchedState, cpu: CpuId, prev_donor: TaskId, prev: TaskId, next: TaskId) {
    let donor = s.rqs[cpu.idx()].donor;
    if !s.feat.proxy_exec || !s.feat.missed_balance_fix || donor != prev_donor || prev == next {
        return;
    }
    put_prev_task(s, cpu, donor);
    set_next_task(s, cpu, donor, true);
}

/// `rq_set_donor()`: the picked task becomes the scheduling context; `next_class` follows it
/// (C4, I13).
///
/// Linux: kernel/sched/sched.h rq_set_donor().
fn rq_set_donor(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let class = s.tasks[p.idx()].class;
    let rq = &mut s.rqs[cpu.idx()];
    rq.donor = p;
    rq.next_class = class;
}

/// `proxy_resched_idle()` (S11): stop referencing the donor (class current pointers and
/// `rq->donor`), run idle, and reschedule at once.
///
/// Linux: kernel/sched/core.c proxy_resched_idle().
fn proxy_resched_idle(s: &mut SchedState, cpu: CpuId) -> TaskId {
    let (donor, idle) = (s.rqs[cpu.idx()].donor, s.rqs[cpu.idx()].idle);
    put_prev_set_next_task(s, cpu, donor, idle);
    rq_set_donor(s, cpu, idle);
    s.tasks[idle.idx()].need_resched = true;
    idle
}

/// `proxy_reset_donor()` (S12): a remote wakeup takes this rq's donor away while the owner
/// keeps running on it: make the running task its own donor, drop the balance work queued
/// for the old one, and reschedule. Rq lock of `cpu` held.
///
/// Linux: kernel/sched/core.c proxy_reset_donor() (tree 32d34d761ad6).
fn proxy_reset_donor(s: &mut SchedState, cpu: CpuId) {
    let (donor, curr) = (s.rqs[cpu.idx()].donor, s.rqs[cpu.idx()].curr);
    assert_ne!(donor, curr, "proxy_reset_donor without a proxy on cpu{cpu}");
    s.coverage.hit(Mark::ProxyResetDonor);
    put_prev_set_next_task(s, cpu, donor, curr);
    rq_set_donor(s, cpu, curr);
    s.rqs[cpu.idx()].balance_callbacks.clear();
    resched_curr(s, cpu);
}

/// Fault injection `donor_swap_in_balance` (spec §9 #24, regression B-v29-1): called by the
/// newidle balance pass of `cpu` right after it dropped the rq lock. Once, and only while the
/// rq's donor is a task, another CPU's step is played in the window: it takes the free rq
/// lock and swaps the donor to idle, as a remote return migration of this rq's donor does
/// (R6), then unlocks. The pick that started the balance pass must now read the live
/// donor (v29 1/9); with `stale_prev_fix` off it hands the old one to
/// `put_prev_set_next_task` and the run fails with I12.
///
/// Why injected: the window is narrow. A queued donor keeps every class balance pass from
/// dropping the rq lock unless it is a throttled SCHED_DEADLINE donor (its pick pulls with
/// `double_lock_balance()`), and only a wakeup that no unlock caused (a signal to a
/// `mutex_lock_interruptible()` waiter) changes the donor from another CPU meanwhile;
/// `scenarios/stale_prev_signal.json` reaches it under `proxysched explore` (two seeds of
/// twenty). The injection plays the swap in every run, on any workload.
pub async fn inject_remote_donor_swap(k: &Kernel, cpu: CpuId) {
    {
        let s = k.st();
        let rq = &s.rqs[cpu.idx()];
        if !s.inject_donor_swap_in_balance || rq.donor == rq.idle {
            return;
        }
    }
    k.rq_lock(cpu).await;
    {
        let s = &mut *k.st();
        if s.rqs[cpu.idx()].donor != s.rqs[cpu.idx()].idle {
            s.inject_donor_swap_in_balance = false;
            update_rq_clock(s, cpu);
            proxy_resched_idle(s, cpu);
        }
    }
    k.rq_unlock(cpu).await;
}

/// `proxy_deactivate()` (S14): block a chain task `p` (the donor, or with `deactivate_link`
/// the link the walk stopped at) as an ordinary sleeper, after swapping the donor to idle
/// (once `on_rq` is 0 a remote wakeup may take it at once). Refuses a task that is already
/// TASK_RUNNING (B6): nobody would wake it again.
///
/// Linux: kernel/sched/core.c proxy_deactivate().
fn proxy_deactivate(s: &mut SchedState, cpu: CpuId, p: TaskId) -> bool {
    // I6 (B5): proxy code only moves a task that blocked through its own schedule().
    assert!(
        !s.feat.is_blocked || s.tasks[p.idx()].is_blocked,
        "I6: proxy_deactivate of a task that never went through its own schedule()"
    );
    let state = s.tasks[p.idx()].state;
    if state == crate::task::state::TASK_RUNNING {
        return false;
    }
    proxy_resched_idle(s, cpu);
    block_task(s, cpu, p, state);
    true
}

/// `proxy_enqueue_on_owner()` (post-v29 sleeping-owner work, O5): the lock owner of link `p`
/// sleeps, so the whole chain up to the donor cannot run anywhere until it wakes. Park the
/// donor on the owner: block it as a sleeper (its iowait counts on this CPU, as in
/// `__block_task()`), record the owner, and queue it on the owner's `blocked_head`, which
/// `try_to_wake_up()` of the owner drains onto the owner's runqueue. Called in the same
/// atomic stretch that saw the owner off the runqueue, with the mutex's `wait_lock` held, so
/// the owner's wakeup either already happened (and the walk did not get here) or drains
/// this donor later. Rq lock of `cpu` held.
///
/// Linux: kernel/sched/core.c proxy_enqueue_on_owner() (post-v29 development tree; the
/// body read is the v14-era posting, the v30 tree is described by proxy_iowait_repro.c).
///
/// Deviation: the owner's `blocked_lock` is not taken (the stretch is atomic in the model).
fn proxy_enqueue_on_owner(s: &mut SchedState, cpu: CpuId, donor: TaskId, owner: TaskId) -> bool {
    if !proxy_deactivate(s, cpu, donor) {
        return false;
    }
    assert!(
        s.tasks[donor.idx()].sleeping_owner.is_none(),
        "donor parked twice"
    );
    s.tasks[donor.idx()].sleeping_owner = Some(owner);
    s.tasks[owner.idx()].blocked_head.push(donor);
    let (d, o) = (s.tasks[donor.idx()].task_ref(), s.tasks[owner.idx()].task_ref());
    emit(s, cpu, EventKind::ProxyPark { donor: d, owner: o });
    true
}

/// What `find_proxy_task()` decided.
enum Proxy {
    /// The chain changed or the donor was deactivated: pick again.
    Repick,
    /// Run idle with need_resched kept (the donor was swapped out).
    Idle(TaskId),
    /// Run this task on the donor's scheduling context (it may be the donor itself).
    Run(TaskId),
}

/// The most `blocked_on` links one `find_proxy_task()` walk follows. Past it the walk gives
/// up with a warning and runs idle, leaving a lock cycle to the deadlock detector.
///
/// Linux: the April 2026 patch "sched/proxy_exec: Limit find_proxy_task() chain depth to
/// prevent CPU hang" (zhidao su, 13 Apr 2026; acked in John Stultz's reply of 20 Apr 2026,
/// lkml.iu.edu/hypermail/linux/kernel/2604.2/06350.html): a `chain_depth` counter against
/// `MAX_PROXY_CHAIN_DEPTH` = 64, `WARN_ONCE` and `proxy_resched_idle()` when exceeded.
///
/// Deviation: read from the patch description in that thread (its diff is not in the
/// reference store), so the exact test is ours: at most 64 links are followed. The v29-era
/// tree (johnstultz-work/linux-dev 32d34d76) and the 6.17/7.1 trees have no bound and would
/// walk a cycle forever with the rq lock held; every model preset uses the bound so that the
/// run goes on to the deadlock report instead of hanging.
pub const MAX_PROXY_CHAIN_DEPTH: usize = 64;

/// Marks that make the chain walk's `blocked_on` cycle test O(1) per link (model
/// bookkeeping; Linux has no cycle test, only [`MAX_PROXY_CHAIN_DEPTH`]).
///
/// Each walk gets a number, and every task it puts on its chain is marked with (walk, CPU):
/// an owner marked by the current walk of this CPU is on its chain. Walks on other CPUs run
/// in the windows where this one waits for a lock and may overwrite a mark; the first walk
/// that overwrites a mark of a walk still in progress flags that walk, which then falls back
/// to searching its chain for the rest of the walk. So the answer is always exactly "is the
/// owner on the chain", and the search happens only when two walks crossed.
#[derive(Clone, Debug, Default)]
pub struct ProxyChainMarks {
    /// Per task (by index; none past the end): `walk · MAX_CPUS + cpu` of the walk that last
    /// put it on its chain, 0 for none.
    task_mark: Vec<u64>,
    /// Per CPU: the number of its walk in progress (or of its last one), and whether another
    /// walk overwrote one of that walk's marks.
    cpu_walk: Vec<(u64, bool)>,
    /// Number of the last walk begun (walks start at 1).
    last_walk: u64,
}

impl ProxyChainMarks {
    const CPUS: u64 = sim::MAX_CPUS as u64;

    /// The mark the walk in progress on `cpu` leaves.
    fn own_mark(&self, cpu: CpuId) -> u64 {
        self.cpu_walk[cpu.idx()].0 * Self::CPUS + cpu.idx() as u64
    }

    /// A walk begins on `cpu`; its chain is empty.
    fn begin(&mut self, cpu: CpuId) {
        self.last_walk += 1;
        if self.cpu_walk.len() <= cpu.idx() {
            self.cpu_walk.resize(cpu.idx() + 1, (0, false));
        }
        self.cpu_walk[cpu.idx()] = (self.last_walk, false);
    }

    /// The walk on `cpu` puts `p` on its chain.
    fn mark(&mut self, cpu: CpuId, p: TaskId) {
        let me = self.own_mark(cpu);
        if self.task_mark.len() <= p.idx() {
            self.task_mark.resize(p.idx() + 1, 0);
        }
        let old = self.task_mark[p.idx()];
        if old != 0 && old != me {
            let (walk, c) = ((old / Self::CPUS), (old % Self::CPUS) as usize);
            if self.cpu_walk[c].0 == walk {
                self.cpu_walk[c].1 = true;
            }
        }
        self.task_mark[p.idx()] = me;
    }

    /// Whether `p` is on `chain`, the chain of the walk in progress on `cpu`.
    fn on_chain(&self, cpu: CpuId, p: TaskId, chain: &[TaskId]) -> bool {
        if self.task_mark.get(p.idx()) == Some(&self.own_mark(cpu)) {
            return true;
        }
        // A crossing walk may have overwritten one of this walk's marks: search.
        self.cpu_walk[cpu.idx()].1 && chain.contains(&p)
    }
}

#[cfg(test)]
mod proxy_chain_marks_tests {
    use super::*;

    /// Marks answer "on this walk's chain" exactly: own marks hit, earlier walks' marks do
    /// not, and a mark overwritten by a crossing walk on another CPU is still found.
    #[test]
    fn marks_find_the_chain_also_when_walks_cross() {
        let (c0, c1) = (CpuId(0), CpuId(1));
        let (d, x, y, z) = (TaskId(3), TaskId(4), TaskId(5), TaskId(6));
        let mut m = ProxyChainMarks::default();
        m.begin(c0);
        m.mark(c0, d);
        m.mark(c0, x);
        let chain0 = [d, x];
        assert!(m.on_chain(c0, x, &chain0));
        assert!(!m.on_chain(c0, y, &chain0), "never marked");
        assert!(!m.on_chain(c0, TaskId(100), &chain0), "past the mark table");
        // CPU 1's walk passes through x while CPU 0's walk is in progress.
        m.begin(c1);
        m.mark(c1, z);
        m.mark(c1, x);
        assert!(m.on_chain(c1, x, &[z, x]));
        assert!(
            m.on_chain(c0, x, &chain0),
            "overwritten mark: found by the search"
        );
        assert!(
            !m.on_chain(c0, z, &chain0),
            "the other walk's task is not on this chain"
        );
        // A new walk on CPU 0 starts with an empty chain: old marks mean nothing.
        m.begin(c0);
        m.mark(c0, y);
        assert!(!m.on_chain(c0, d, &[y]));
        assert!(!m.on_chain(c0, x, &[y]));
        assert!(m.on_chain(c0, y, &[y]));
        assert!(!m.cpu_walk[c0.idx()].1, "a new walk starts unflagged");
        // Overwriting a mark of CPU 1's walk flags that walk, not this one.
        m.mark(c0, z);
        assert!(m.on_chain(c0, z, &[y, z]));
        assert!(!m.cpu_walk[c0.idx()].1);
        assert!(m.cpu_walk[c1.idx()].1);
        assert!(!m.on_chain(c1, y, &[z, x]));
    }
}

/// `find_proxy_task()` (spec §3.4, F1–F10): follow the `blocked_on` chain from the donor to
/// a runnable owner on this runqueue. Each link is examined under its mutex's `wait_lock`
/// (which holds off the unlock and keeps the owner alive) and the link's `blocked_lock`;
/// actions that drop or retake the rq lock (deactivate, migrate, force-return) happen after
/// both are released (B-v22-2). A link is any task `task_is_blocked()` accepts.
///
/// Where the walk cannot go on, v29 (`deactivate_link`, as the tree at 32d34d761ad6 has it)
/// and 7.1 differ:
///
/// | link `p`                   | v29 (`deactivate_link` on)         | 7.1 (off)                  |
/// |----------------------------|------------------------------------|----------------------------|
/// | waking (F2), not current   | clear the mark, deactivate `p` (needs `ttwu_return_migration`) | `proxy_force_return(p)` |
/// | mutex has no owner (F3)    | clear `blocked_on`, deactivate `p` | run in place if home, else force-return |
/// | owner sleeps (F4)          | clear `blocked_on`, deactivate `p` | deactivate the donor       |
///
/// A deactivated link's wakeup (already on its way for F2) then places it through a full
/// `try_to_wake_up()` from its `wake_cpu`. With `sleeping_owner` (post-v29) a sleeping owner
/// parks the donor on it instead (`proxy_enqueue_on_owner()`).
///
/// Linux: kernel/sched/core.c find_proxy_task() (v29: johnstultz-work/linux-dev at
/// 32d34d761ad6; 7.1: the merged "simple donor migration").
async fn find_proxy_task(k: &Kernel, cpu: CpuId, donor: TaskId) -> Proxy {
    let mut p = donor;
    let mut chain = vec![donor];
    {
        let marks = &mut k.st().proxy_chain_marks;
        marks.begin(cpu);
        marks.mark(cpu, donor);
    }
    let mut curr_in_chain = false;
    loop {
        curr_in_chain |= k.st().rqs[cpu.idx()].curr == p;
        let step = proxy_examine_link(k, cpu, donor, p, curr_in_chain).await;
        assert_no_link_lock(k, cpu, &step);
        match step {
            LinkStep::Next(o) => match proxy_follow_owner(k, cpu, donor, &mut chain, o) {
                Some(r) => return r,
                None => p = o,
            },
            LinkStep::Done(r) => return r,
            action => return proxy_act(k, cpu, donor, action).await,
        }
    }
}

/// What the walk decided about one link, under its locks (see [`find_proxy_task`]).
enum LinkStep {
    /// Go on to this owner (F9).
    Next(TaskId),
    /// The walk's answer.
    Done(Proxy),
    /// Deactivate the donor (F4 at 7.1, F5 without donor migration).
    Deactivate,
    /// Deactivate this link (v29, F2-F4).
    DeactivateLink(TaskId),
    /// Migrate the chain from this link to the owner's CPU (F5).
    Migrate(TaskId, CpuId),
    /// Send this link home (F2/F3 at 7.1).
    ForceReturn(TaskId),
}

/// One link `p` of the walk from `donor`: look at it under its mutex's `wait_lock` and its
/// `blocked_lock` (F1-F9) and say what to do; change nothing that needs the rq lock dropped.
///
/// Linux: kernel/sched/core.c find_proxy_task(), the body of its `for` loop up to the
/// actions.
async fn proxy_examine_link(
    k: &Kernel,
    cpu: CpuId,
    donor: TaskId,
    p: TaskId,
    curr_in_chain: bool,
) -> LinkStep {
    let (blocked_on, waking) = {
        let s = k.st();
        (s.tasks[p.idx()].blocked_on, s.tasks[p.idx()].proxy_waking)
    };
    let v27_waking = k.st().feat.deactivate_link && k.st().feat.ttwu_return_migration;
    if waking && v27_waking {
        // F2 (v27+): the unlocker chose p and its wakeup is on the way. Clear the mark
        // (clear_task_blocked_on(p, PROXY_WAKING), under p's blocked_lock); the current
        // task runs, any other link is deactivated so that the wakeup places it from its
        // wake_cpu (try_to_wake_up() does the return).
        k.blocked_lock(p).await;
        let step = {
            let s = &mut *k.st();
            s.coverage.hit(Mark::ChainWakingLink);
            s.tasks[p.idx()].proxy_waking = false;
            if s.rqs[cpu.idx()].curr == p {
                s.tasks[p.idx()].is_blocked = false;
                LinkStep::Done(Proxy::Run(p))
            } else {
                LinkStep::DeactivateLink(p)
            }
        };
        k.blocked_unlock(p).await;
        step
    } else if waking {
        // F2 (7.1): the unlocker chose p and woke it; it must be home before running (a
        // task that is current, or already on its wake_cpu, is).
        let s = &mut *k.st();
        s.coverage.hit(Mark::ChainWakingLink);
        let t = &s.tasks[p.idx()];
        if s.rqs[cpu.idx()].curr == p || t.cpu == t.wake_cpu {
            s.tasks[p.idx()].proxy_waking = false;
            s.tasks[p.idx()].is_blocked = false;
            LinkStep::Done(Proxy::Run(p))
        } else {
            LinkStep::ForceReturn(p)
        }
    } else if let Some(m) = blocked_on {
        proxy_examine_mutex_link(k, cpu, donor, p, m, curr_in_chain).await
    } else {
        // F1: the link stopped waiting before we could look.
        LinkStep::Done(Proxy::Repick)
    }
}

/// A link `p` blocked on mutex `m` (F1, F3-F9), under `m`'s `wait_lock` and `p`'s
/// `blocked_lock`.
///
/// Linux: kernel/sched/core.c find_proxy_task(), from `mutex = p->blocked_on` to the next
/// owner.
async fn proxy_examine_mutex_link(
    k: &Kernel,
    cpu: CpuId,
    donor: TaskId,
    p: TaskId,
    m: crate::locking::mutex::MutexId,
    curr_in_chain: bool,
) -> LinkStep {
    k.mutex_wait_lock(m).await;
    k.blocked_lock(p).await;
    let step = {
        let s = &mut *k.st();
        let owner = crate::locking::mutex::mutex_owner(s, m);
        if s.tasks[p.idx()].blocked_on != Some(m) || s.tasks[p.idx()].proxy_waking {
            // F1: something changed in the chain: let __schedule() pick again.
            LinkStep::Done(Proxy::Repick)
        } else if let Some(o) = owner {
            proxy_link_to_owner(s, cpu, donor, p, o, curr_in_chain)
        } else {
            proxy_link_to_no_owner(s, cpu, p)
        }
    };
    k.blocked_unlock(p).await;
    k.mutex_wait_unlock(m).await;
    step
}

/// F4-F9: link `p`'s mutex is owned by `o`. Under the link locks.
///
/// Linux: kernel/sched/core.c find_proxy_task(), from `owner = __mutex_owner(mutex)` to
/// `owner->blocked_donor = p`.
fn proxy_link_to_owner(
    s: &mut SchedState,
    cpu: CpuId,
    donor: TaskId,
    p: TaskId,
    o: TaskId,
    curr_in_chain: bool,
) -> LinkStep {
    let ot = &s.tasks[o.idx()];
    if ot.on_rq == OnRq::No || ot.se.sched_delayed {
        // F4: a sleeping or delay-dequeued owner (tested before F5, S13).
        if curr_in_chain {
            s.coverage.hit(Mark::ChainCurrInChainRunsIdle);
            LinkStep::Done(Proxy::Idle(proxy_resched_idle(s, cpu)))
        } else if s.feat.sleeping_owner && ot.on_rq == OnRq::No && proxy_enqueue_on_owner(s, cpu, donor, o) {
            // Post-v29: the donor waits on the sleeping owner, not on a CPU.
            s.coverage.hit(Mark::SleepingOwnerParkDonor);
            LinkStep::Done(Proxy::Repick)
        } else if s.feat.deactivate_link {
            // v29: the link stops waiting here; it re-sets blocked_on itself
            // when its lock wakes it (M2).
            s.coverage.hit(Mark::SleepingOwnerDeactivateLink);
            s.tasks[p.idx()].blocked_on = None;
            LinkStep::DeactivateLink(p)
        } else {
            s.coverage.hit(Mark::SleepingOwnerDeactivateDonor);
            LinkStep::Deactivate
        }
    } else if ot.cpu != cpu {
        // F5: the owner is on another CPU (read once).
        let owner_cpu = ot.cpu;
        if curr_in_chain {
            s.coverage.hit(Mark::ChainCurrInChainRunsIdle);
            LinkStep::Done(Proxy::Idle(proxy_resched_idle(s, cpu)))
        } else if s.feat.donor_migration {
            LinkStep::Migrate(p, owner_cpu)
        } else {
            LinkStep::Deactivate
        }
    } else if ot.on_rq == OnRq::Migrating {
        // F6: the owner is migrating here; let the migration finish.
        s.coverage.hit(Mark::ChainOwnerMigrating);
        LinkStep::Done(Proxy::Idle(proxy_resched_idle(s, cpu)))
    } else if o == p {
        // F8: p was just handed the lock and its wakeup has not finished: run
        // idle so ttwu can take the rq lock.
        LinkStep::Done(Proxy::Idle(proxy_resched_idle(s, cpu)))
    } else {
        // F9: the owner is runnable here; remember who proxies through it
        // and continue down the chain.
        s.tasks[o.idx()].blocked_donor = Some(p);
        LinkStep::Next(o)
    }
}

/// F3: link `p`'s mutex has no owner (its unlock is in progress). Under the link locks.
///
/// Linux: kernel/sched/core.c find_proxy_task(), the `!owner` branch.
fn proxy_link_to_no_owner(s: &mut SchedState, cpu: CpuId, p: TaskId) -> LinkStep {
    let home = s.tasks[p.idx()].cpu == s.tasks[p.idx()].wake_cpu;
    if s.feat.deactivate_link {
        s.coverage.hit(Mark::ChainOwnerlessMutex);
        // F3 (v27+): no owner. Current runs and retries the lock; any other link
        // sleeps until the unlocker's pick (or a later unlock) wakes it.
        s.tasks[p.idx()].blocked_on = None;
        if s.rqs[cpu.idx()].curr == p {
            s.tasks[p.idx()].is_blocked = false;
            LinkStep::Done(Proxy::Run(p))
        } else {
            LinkStep::DeactivateLink(p)
        }
    } else if s.rqs[cpu.idx()].curr == p || home {
        s.coverage.hit(Mark::ChainOwnerlessMutex);
        // F3 (7.1): no owner: p runs and retries the lock.
        s.tasks[p.idx()].blocked_on = None;
        s.tasks[p.idx()].is_blocked = false;
        LinkStep::Done(Proxy::Run(p))
    } else {
        // F3: no owner, but p is away from home: it must be returned first.
        s.coverage.hit(Mark::ChainOwnerlessMutex);
        LinkStep::ForceReturn(p)
    }
}

/// B-v22-2: decide inside the walk, act after every per-link lock is released; the actions
/// drop or retake the rq lock (or, deactivating, let a remote wakeup take the donor) and must
/// never run under a wait_lock or blocked_lock.
fn assert_no_link_lock(k: &Kernel, cpu: CpuId, step: &LinkStep) {
    if !matches!(step, LinkStep::Done(_) | LinkStep::Next(_)) {
        use crate::locking::lockdep::LockClass;
        let lockdep = k.lockdep.borrow();
        let link_lock = lockdep.held(cpu).iter().find(|(_, c)| {
            matches!(
                c,
                LockClass::MutexWaitLock | LockClass::BlockedLock | LockClass::BlockedLockNested
            )
        });
        assert!(
            link_lock.is_none(),
            "B-v22-2: proxy action on cpu{cpu} under {link_lock:?}"
        );
    }
}

/// The action the walk decided on, after the link locks are released: deactivate, migrate or
/// send home, then pick again.
///
/// Linux: kernel/sched/core.c find_proxy_task(), the actions after the loop
/// (`deactivate:`, `migrate:`, `force_return:`).
async fn proxy_act(k: &Kernel, cpu: CpuId, donor: TaskId, action: LinkStep) -> Proxy {
    match action {
        LinkStep::Deactivate => {
            let ok = proxy_deactivate(&mut k.st(), cpu, donor);
            if !ok {
                // A donor already TASK_RUNNING cannot be deactivated (B6): its wakeup is in
                // progress; send it home (v23-v29) rather than clearing blocked_on
                // without the lock (B-v21-1).
                proxy_force_return(k, cpu, donor).await;
            }
            Proxy::Repick
        }
        LinkStep::DeactivateLink(p) => {
            if !proxy_deactivate(&mut k.st(), cpu, p) {
                // The tree warns and blocks the task anyway, which would lose its wakeup
                // (B6); no model path gets here, so say so loudly and send it home.
                k.violation(
                    "I7",
                    format!("cpu{cpu}: find_proxy_task would deactivate TASK_RUNNING task {p}"),
                );
                proxy_force_return(k, cpu, p).await;
            }
            Proxy::Repick
        }
        LinkStep::Migrate(p, target) => {
            proxy_migrate_task(k, cpu, p, target).await;
            Proxy::Repick
        }
        LinkStep::ForceReturn(p) => {
            proxy_force_return(k, cpu, p).await;
            Proxy::Repick
        }
        LinkStep::Done(r) => r,
        LinkStep::Next(_) => unreachable!("the walk follows owners itself"),
    }
}

/// F9 onwards: the walk reached owner `o` (runnable here). Stop at the depth bound or a lock
/// cycle, or run `o` on the donor's context if it is not blocked itself (F7, F10); `None`:
/// go on down the chain from `o`.
///
/// Linux: kernel/sched/core.c find_proxy_task(), the end of the loop body.
fn proxy_follow_owner(
    k: &Kernel,
    cpu: CpuId,
    donor: TaskId,
    chain: &mut Vec<TaskId>,
    o: TaskId,
) -> Option<Proxy> {
    if chain.len() > MAX_PROXY_CHAIN_DEPTH {
        // The bound of the April 2026 patch: warn once, run idle.
        let s = &mut *k.st();
        s.coverage.hit(Mark::ChainDepthBound);
        s.warn_once(format!(
            "find_proxy_task: proxy chain depth exceeded {MAX_PROXY_CHAIN_DEPTH}, possible deadlock cycle"
        ));
        return Some(Proxy::Idle(proxy_resched_idle(s, cpu)));
    }
    if k.st().proxy_chain_marks.on_chain(cpu, o, chain) {
        // A blocked_on cycle: the tasks wait for each other's mutexes (ABBA). Linux
        // would spin here with the rq lock held (I8); the model reports a deadlock.
        let report = lock_cycle_report(&k.st(), chain);
        k.end(crate::system::EndReason::Deadlock, report);
        let s = &mut *k.st();
        return Some(Proxy::Idle(proxy_resched_idle(s, cpu)));
    }
    chain.push(o);
    k.st().proxy_chain_marks.mark(cpu, o);
    if !task_is_blocked(&k.st(), o) {
        // F7: re-check that the owner is still queued here, then F10: it runs on
        // the donor's context.
        let s = &mut *k.st();
        let ot = &s.tasks[o.idx()];
        if ot.on_rq != OnRq::Queued || ot.cpu != cpu {
            return Some(Proxy::Repick);
        }
        let (d, ow) = (s.tasks[donor.idx()].task_ref(), s.tasks[o.idx()].task_ref());
        emit(s, cpu, EventKind::ProxyPick { donor: d, owner: ow });
        return Some(Proxy::Run(o));
    }
    None
}

/// The deadlock report of a `blocked_on` cycle: who waits for which mutex, along `chain`.
fn lock_cycle_report(s: &SchedState, chain: &[TaskId]) -> String {
    let links: Vec<String> = chain
        .iter()
        .filter_map(|&t| {
            let m = s.tasks[t.idx()].blocked_on?;
            let t = &s.tasks[t.idx()];
            Some(format!(
                "{}-{} waits for {}",
                t.comm,
                t.pid,
                s.mutexes[m.idx()].name
            ))
        })
        .collect();
    format!("lock cycle: {}", links.join(", "))
}

/// `proxy_set_task_cpu()` (D4): move `p`'s scheduling context to `cpu` but keep `wake_cpu`,
/// which remembers where it last ran as a runner.
///
/// Linux: kernel/sched/core.c proxy_set_task_cpu().
fn proxy_set_task_cpu(s: &mut SchedState, p: TaskId, cpu: CpuId) {
    let wake_cpu = s.tasks[p.idx()].wake_cpu;
    set_task_cpu(s, p, cpu);
    s.tasks[p.idx()].wake_cpu = wake_cpu;
}

/// `proxy_migrate_task()` (D2, v29 8/9): move the remote-owned link `p` — and, with
/// `chain_migration`, everyone who was lending through it (`blocked_donor` links written in
/// this walk, up to the donor) — to the owner's CPU. The rq lock is dropped before the
/// target's is taken (L4); other CPUs really run in that window (D5), so nothing read before
/// it is used after: the caller re-picks.
///
/// Linux: kernel/sched/core.c proxy_migrate_task(), __attach_tasks() (v29 7/9).
async fn proxy_migrate_task(k: &Kernel, cpu: CpuId, p: TaskId, target: CpuId) {
    let moved = {
        let s = &mut *k.st();
        // D2.1: drop every reference to the donor before the lock goes (B-v9-4).
        proxy_resched_idle(s, cpu);
        let mut moved = Vec::new();
        let mut t = Some(p);
        while let Some(x) = t {
            assert_ne!(x, s.rqs[cpu.idx()].curr, "proxy migration of the running task");
            assert!(
                !s.feat.is_blocked || s.tasks[x.idx()].is_blocked,
                "I6: proxy migration of a task that never went through its own schedule()"
            );
            deactivate_task(s, cpu, x, DequeueFlags::NOCLOCK);
            proxy_set_task_cpu(s, x, target);
            moved.push(x);
            t = if s.feat.chain_migration {
                s.tasks[x.idx()].blocked_donor.take()
            } else {
                None
            };
        }
        s.coverage.hit(match moved.len() {
            1 => Mark::DonorMigrationSingle,
            2 => Mark::ChainMigrationDepth2,
            _ => Mark::ChainMigrationDepth3Plus,
        });
        let task = s.tasks[p.idx()].task_ref();
        let nr_tasks = moved.len() as u32;
        emit(
            s,
            cpu,
            EventKind::ProxyMigrate {
                task,
                orig_cpu: cpu,
                dest_cpu: target,
                nr_tasks,
            },
        );
        // Zap the balance callbacks before the rq lock is released (I10).
        s.rqs[cpu.idx()].balance_callbacks.clear();
        moved
    };
    let cost = k.st().costs.migration_ns;
    k.m.delay(cost).await;
    k.rq_unlock(cpu).await;
    attach_tasks(k, target, &moved).await;
    k.rq_lock(cpu).await;
    update_rq_clock(&mut k.st(), cpu);
}

/// `__attach_tasks()` (v29 7/9, the core helper shared by load balancing, donor migration and
/// return migration): lock `dest`, enqueue every task detached for it (MIGRATING ⇒ migrated
/// enqueue), check preemption, unlock. No other rq lock may be held.
///
/// Linux: kernel/sched/sched.h __attach_tasks(), attach_one_task().
pub async fn attach_tasks(k: &Kernel, dest: CpuId, tasks: &[TaskId]) {
    k.rq_lock(dest).await;
    {
        let s = &mut *k.st();
        update_rq_clock(s, dest);
        for &p in tasks {
            activate_task(s, dest, p, EnqueueFlags::NOCLOCK);
            wakeup_preempt(s, dest, p, WakeFlags::empty());
        }
    }
    k.rq_unlock(dest).await;
}

/// `proxy_force_return()` (R9): send a donor that must not run here (waking, or without an
/// owner, away from its `wake_cpu`) back through normal placement. Drops the rq lock, takes
/// the task's `pi_lock` and rq lock, re-validates, moves it (clearing `blocked_on` under its
/// `blocked_lock`, B-v21-1), and retakes the rq lock. Never "block then wake_up_process"
/// (B-v22-1): it re-activates directly.
///
/// No RT/DL balancing sees this move (B-7.1-3, `scenarios/proxy_force_return_unbalanced.json`).
/// The placement passes no wake flags, and `select_task_rq_rt()`/`select_task_rq_dl()` leave
/// a task that is not waking or forking on the CPU they are given (`wake_cpu`), however
/// strong the task running there; the activation runs `wakeup_preempt()` but no
/// `task_woken()`, so nothing pushes it on. The CPU it leaves ran its balance pass while the
/// task was still queued there and re-picks from idle's context, so nothing pulls either.
/// v29 sends a woken task home through `try_to_wake_up()` instead (5/9, R6-R7), which places
/// it with `WF_TTWU` and pushes from `task_woken()`.
///
/// Linux: kernel/sched/core.c proxy_force_return() (7.1: "sched: Handle blocked-waiter
/// migration (and return migration)", merged as b049b81bdff6 from the v26 posting; the body
/// read is v23 6/9's as posted on LKML, 2025-10-30: `wake_flag = 0`,
/// `select_task_rq(p, p->wake_cpu, &wake_flag)`, `activate_task()`, `wakeup_preempt()`;
/// removed from v27 on).
async fn proxy_force_return(k: &Kernel, cpu: CpuId, p: TaskId) {
    k.st().rqs[cpu.idx()].balance_callbacks.clear();
    // As before a donor migration (D2.1): nothing on this rq may point at the donor or the
    // chain once the lock is dropped, so the rq runs idle's context until the re-pick.
    proxy_resched_idle(&mut k.st(), cpu);
    k.rq_unlock(cpu).await;
    k.pi_lock(p).await;
    let rq = __task_rq_lock(k, p).await;
    let dest = {
        let s = &mut *k.st();
        let t = &s.tasks[p.idx()];
        let valid = rq == cpu && t.on_rq == OnRq::Queued && !t.on_cpu && s.rqs[rq.idx()].curr != p;
        if valid {
            update_rq_clock(s, rq);
            if s.rqs[rq.idx()].donor == p {
                proxy_resched_idle(s, rq);
            }
            deactivate_task(s, rq, p, DequeueFlags::NOCLOCK);
            let wake_cpu = s.tasks[p.idx()].wake_cpu;
            let dest = select_task_rq(s, p, wake_cpu, WakeFlags::empty());
            set_task_cpu(s, p, dest);
            let task = s.tasks[p.idx()].task_ref();
            emit(s, rq, EventKind::ReturnMigrate { task, orig_cpu: rq });
            s.coverage.hit(Mark::ProxyForceReturn);
            Some(dest)
        } else {
            s.coverage.hit(Mark::ProxyForceReturnStale);
            None
        }
    };
    if dest.is_some() {
        // clear_task_blocked_on(): like every blocked_on write, under p's blocked_lock
        // (B-v21-1); an unlocker may be marking p waking right now (L3).
        k.blocked_lock(p).await;
        {
            let t = &mut k.st().tasks[p.idx()];
            t.blocked_on = None;
            t.proxy_waking = false;
        }
        k.blocked_unlock(p).await;
    }
    k.rq_unlock(rq).await;
    if let Some(dest) = dest {
        attach_tasks(k, dest, &[p]).await;
    }
    k.pi_unlock(p).await;
    k.rq_lock(cpu).await;
    update_rq_clock(&mut k.st(), cpu);
}

/// Emit proxy slice boundaries when the (donor, executing task) pair of `cpu` changes: a
/// `ProxyBegin` when `next` runs on another task's context, a `ProxyEnd` when that stops.
fn trace_proxy(s: &mut SchedState, cpu: CpuId, next: TaskId) {
    let donor = s.rqs[cpu.idx()].donor;
    let now = (donor != next).then_some((donor, next));
    let was = s.rqs[cpu.idx()].proxy_traced;
    if was == now {
        return;
    }
    if let Some((d, o)) = was {
        let (d, o) = (s.tasks[d.idx()].task_ref(), s.tasks[o.idx()].task_ref());
        emit(s, cpu, EventKind::ProxyEnd { donor: d, owner: o });
    }
    if let Some((d, o)) = now {
        let (d, o) = (s.tasks[d.idx()].task_ref(), s.tasks[o.idx()].task_ref());
        emit(s, cpu, EventKind::ProxyBegin { donor: d, owner: o });
    }
    s.rqs[cpu.idx()].proxy_traced = now;
}

// ---------------------------------------------------------------------- wakeups

/// `select_task_rq()` (T-6): the class hook if the task may run on more than one CPU, then
/// the fallback to an allowed CPU.
///
/// Linux: kernel/sched/core.c select_task_rq(), select_fallback_rq().
pub fn select_task_rq(s: &mut SchedState, p: TaskId, cpu: CpuId, wake_flags: WakeFlags) -> CpuId {
    lockdep_assert_pi_held(s, p);
    let (nr_allowed, class) = (s.tasks[p.idx()].nr_cpus_allowed, s.tasks[p.idx()].class);
    let cpu = if nr_allowed > 1 {
        class.select_task_rq(s, p, cpu, wake_flags)
    } else {
        s.cpus_mask(&s.tasks[p.idx()]).first().expect("empty affinity")
    };
    let t = &s.tasks[p.idx()];
    if s.cpus_mask(t).test(cpu) && cpu.idx() < s.nr_cpus() {
        cpu
    } else {
        s.cpus_mask(t).first().expect("empty affinity")
    }
}

/// `ttwu_do_activate()` (W-9): enqueue, preemption check, TASK_RUNNING, `sched_wakeup`,
/// then the class `task_woken` hook. Target rq lock held.
///
/// Linux: kernel/sched/core.c ttwu_do_activate().
async fn ttwu_do_activate(k: &Kernel, cpu: CpuId, p: TaskId, wake_flags: WakeFlags) {
    let class = {
        let s = &mut *k.st();
        let mut en = EnqueueFlags::WAKEUP | EnqueueFlags::NOCLOCK;
        if wake_flags.contains(WakeFlags::MIGRATED) {
            en |= EnqueueFlags::MIGRATED;
        }
        if s.tasks[p.idx()].sched_contributes_to_load {
            s.rqs[cpu.idx()].nr_uninterruptible -= 1;
        }
        activate_task(s, cpu, p, en);
        wakeup_preempt(s, cpu, p, wake_flags);
        ttwu_do_wakeup(s, cpu, p);
        let rq = &mut s.rqs[cpu.idx()];
        if rq.idle_stamp != 0 {
            // Fold this idle period into avg_idle (W-9).
            let delta = s.m.now().saturating_sub(rq.idle_stamp);
            let max = 2 * rq.max_idle_balance_cost_ns;
            let avg = rq.avg_idle_ns as i64 + (delta as i64 - rq.avg_idle_ns as i64) / 8;
            rq.avg_idle_ns = (avg.max(0) as u64).min(max.max(1));
            rq.idle_stamp = 0;
        }
        s.tasks[p.idx()].class
    };
    class.task_woken(k, cpu, p).await;
}

/// `ttwu_do_wakeup()`: TASK_RUNNING and `sched_wakeup` (target_cpu = the enqueue CPU).
///
/// Linux: kernel/sched/core.c ttwu_do_wakeup().
fn ttwu_do_wakeup(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    s.tasks[p.idx()].state = crate::task::state::TASK_RUNNING;
    s.tasks[p.idx()].is_blocked = false;
    let task = s.tasks[p.idx()].task_ref();
    let this = s.m.this_cpu();
    emit(
        s,
        this,
        EventKind::SchedWakeup {
            task,
            target_cpu: cpu,
        },
    );
}

/// `__task_rq_lock()`: lock the rq `p` is on, retrying while it moves (T-10). Returns it.
/// The caller holds `p->pi_lock` (asserted): the model's callers take it themselves, which
/// together is Linux's `task_rq_lock()`.
///
/// Linux: kernel/sched/core.c __task_rq_lock().
pub async fn __task_rq_lock(k: &Kernel, p: TaskId) -> CpuId {
    lockdep_assert_pi_held(&k.st(), p);
    loop {
        let cpu = k.st().tasks[p.idx()].cpu;
        k.rq_lock(cpu).await;
        let stable = {
            let s = k.st();
            let t = &s.tasks[p.idx()];
            t.cpu == cpu && t.on_rq != OnRq::Migrating
        };
        if stable {
            return cpu;
        }
        k.rq_unlock(cpu).await;
        k.m.delay(SPIN_POLL_NS).await;
    }
}

/// Granularity of the model's busy-wait loops (`smp_cond_load_acquire`, `cpu_relax`).
const SPIN_POLL_NS: Nanos = 10;

/// `ttwu_runnable()` (W-4): the task is still queued; make it running where it is.
///
/// Linux: kernel/sched/core.c ttwu_runnable().
async fn ttwu_runnable(k: &Kernel, p: TaskId, wake_flags: WakeFlags) -> bool {
    let cpu = __task_rq_lock(k, p).await;
    // The waking mark is read and cleared under the task's blocked_lock (B-v21-1, L1).
    k.blocked_lock(p).await;
    let woken = {
        let s = &mut *k.st();
        if task_on_rq_queued(s, p) {
            update_rq_clock(s, cpu);
            if s.tasks[p.idx()].se.sched_delayed {
                enqueue_task(s, cpu, p, EnqueueFlags::NOCLOCK | EnqueueFlags::DELAYED);
            }
            // R5: the return-migration check comes after the delayed requeue and before
            // wakeup_preempt (B-v18-2).
            if proxy_needs_return(s, cpu, p) {
                false
            } else {
                if !task_on_cpu(s, p) {
                    wakeup_preempt(s, cpu, p, wake_flags);
                }
                // A donor parked on a sleeping owner while its sleep was only delayed (still
                // queued) is woken here, in place: it leaves the owner's list as a full
                // wakeup's activation would take it off (do_activate_task()).
                proxy_unpark(s, p);
                ttwu_do_wakeup(s, cpu, p);
                true
            }
        } else {
            false
        }
    };
    k.blocked_unlock(p).await;
    k.rq_unlock(cpu).await;
    woken
}

/// `proxy_needs_return()` (R6, v29 5/9): a waking task that is still blocked on a mutex or
/// carries the waking mark (`task_is_blocked()` of sched.h) and is not running here is
/// taken off this runqueue with block semantics (it looks blocked, `on_rq` 0: B-v23-2), so
/// that `try_to_wake_up()` places it again from its `wake_cpu` — wherever it sits, its home
/// CPU included. If it was this rq's donor, the running owner becomes its own donor and the
/// CPU reschedules (`proxy_reset_donor()`). `blocked_on` and the mark are cleared either
/// way. Returns whether it was removed. Rq lock and the task's `blocked_lock` held.
///
/// With `return_when_needed` (post-v29 "Only return migrate when needed") a task already on
/// its `wake_cpu` stays queued and is woken in place (marks left as they are: it re-sets
/// `blocked_on` itself when it runs, M2).
///
/// With `return_when_away` (post-v29) a task that blocked itself (`is_blocked`) and sits away
/// from its `wake_cpu` is taken off as well when nothing marks it blocked any more: the
/// later tree decides by `task_cpu(p) != p->wake_cpu`, under `p->is_blocked` in
/// `ttwu_runnable()`, not by `blocked_on`. With both switches that is the later tree's test.
///
/// B-v29-10, a bug of the v29 tree (`return_when_away` off): a chain link that
/// `find_proxy_task()` cannot proxy through (waking, F2; ownerless mutex, F3; sleeping owner,
/// F4) has its `blocked_on` (or waking mark) cleared and is then `proxy_deactivate()`d, whose
/// `block_task()` is an ordinary sleep dequeue. Under DELAY_DEQUEUE an ineligible fair link
/// is only delayed (`se.sched_delayed`): it stays queued where chain migration put it,
/// possibly outside its affinity. When its wakeup reaches `ttwu_runnable()` before a pick
/// finishes the dequeue, nothing marks it blocked, so this function lets it be woken in
/// place, and the CPU runs it there (as the owner a donor proxies through, or on its own):
///
/// ```text
///   CPU 2 (walk from donor D)                  CPU 4 (owner of M, unlocking)
///                                              mutex_unlock(M): hand M to link L, mark L
///                                                PROXY_WAKING, wake_q
///   find_proxy_task(): L is waking, not curr
///     clear the mark; proxy_deactivate(L)
///       block_task(): L ineligible, delayed;
///       L stays queued on CPU 2 (allowed: 3)
///                                              try_to_wake_up(L): on_rq
///                                                ttwu_runnable(): requeue delayed L;
///                                                proxy_needs_return(): not blocked: false
///                                                ttwu_do_wakeup(L): woken on CPU 2
///   __schedule(): L runs on CPU 2 (curr_in_affinity fails)
/// ```
///
/// K Prateek Nayak named the delayed `proxy_deactivate()` in the v26 review (April 2026) and
/// Peter Zijlstra answered that `ttwu_runnable()` should deal with it; the v29 tree's
/// `ttwu_runnable()` requeues the delayed task first (R5), but its `proxy_needs_return()`
/// still asks `task_is_blocked()`, which the walk has just made false.
///
/// Linux: kernel/sched/core.c proxy_needs_return() (v29: johnstultz-work/linux-dev at
/// 32d34d761ad6; post-v29: the same tree at 014c4be7310b, spec R6).
///
/// Deviation: with both post-v29 switches on, a task that still has `blocked_on` but not
/// `is_blocked` and sits away from its `wake_cpu` is returned too (the later tree would
/// leave it); no model path queues such a task away from home, because only tasks that
/// blocked themselves are moved as donors (I6). And the model's `try_to_wake_up()` keeps a
/// stale `wake_cpu` when a return lands on the CPU the task already sits on (the tree's
/// wakeup resets `p->wake_cpu` there), so `return_when_away` also sends such a task through
/// a full wakeup the tree would not do (`proxy_swarm_4cpus.json` under `--model next`: d-11
/// at 109.744 ms, placed on the same CPU again).
fn proxy_needs_return(s: &mut SchedState, cpu: CpuId, p: TaskId) -> bool {
    let t = &s.tasks[p.idx()];
    let home = t.cpu == t.wake_cpu;
    let away_unmarked = s.feat.return_when_away && t.is_blocked && !home;
    if !s.feat.ttwu_return_migration || !(task_has_blocked_on(s, p) || away_unmarked) {
        return false;
    }
    if s.feat.return_when_needed && home {
        // Post-v29 has no PROXY_WAKING: its waking mark is `is_blocked && !blocked_on`, which
        // this wakeup ends (ttwu_do_wakeup() clears is_blocked). The model's separate flag
        // goes with it.
        s.tasks[p.idx()].proxy_waking = false;
        return false;
    }
    let t = &mut s.tasks[p.idx()];
    t.proxy_waking = false;
    t.blocked_on = None;
    if s.rqs[cpu.idx()].curr == p {
        return false;
    }
    if s.rqs[cpu.idx()].donor == p {
        proxy_reset_donor(s, cpu);
    }
    let removed = block_task(s, cpu, p, crate::task::state::TASK_WAKING);
    assert!(removed, "a special-state dequeue is never delayed");
    s.coverage.hit(Mark::TtwuReturnMigration);
    true
}

/// `ttwu_queue_cond()` (W-8): whether to hand the activation to the target's wake list.
///
/// Linux: kernel/sched/core.c ttwu_queue_cond().
fn ttwu_queue_cond(s: &SchedState, p: TaskId, cpu: CpuId) -> bool {
    if !s.cpus_mask(&s.tasks[p.idx()]).test(cpu) {
        return false;
    }
    let this = s.m.this_cpu();
    if !s.topo.share_cache(this, cpu) {
        return true;
    }
    if cpu == this {
        return false;
    }
    s.rqs[cpu.idx()].nr_running == 0
}

/// `__ttwu_queue_wakelist()`: push on the target's lock-free wake list; IPI (or poll kick)
/// only if the list was empty (W-7).
///
/// Linux: kernel/sched/core.c __ttwu_queue_wakelist().
fn ttwu_queue_wakelist(s: &mut SchedState, p: TaskId, cpu: CpuId) {
    // R8 (B-v23-1): a MIGRATING task must never be handed to a remote wake list: the target
    // CPU could be spinning in task_rq_lock() on it with interrupts off. Return migration
    // removes the task with block semantics (on_rq 0, TASK_WAKING: B-v23-2), so no path
    // reaches this with a MIGRATING task.
    assert_ne!(
        s.tasks[p.idx()].on_rq,
        OnRq::Migrating,
        "R8: MIGRATING task {p} queued on cpu{cpu}'s wake list"
    );
    let rq = &mut s.rqs[cpu.idx()];
    rq.ttwu_pending = true;
    let was_empty = rq.wake_list.is_empty();
    rq.wake_list.push(p);
    if was_empty {
        rq.wake_list_gen += 1;
        if rq.polling {
            // set_nr_if_polling(): the idle loop notices need_resched and flushes the list.
            let idle_task = rq.idle;
            s.tasks[idle_task.idx()].need_resched = true;
            let at = s.m.now() + s.costs.poll_wake_ns;
            s.m.send_ipi(cpu, ipi::POLL_KICK, at);
        } else {
            send_ipi(s, cpu, crate::tracepoints::IpiReason::WakeList);
        }
    }
}

/// `ttwu_queue()`: the wake list when W-8 allows, else activate here under the target lock.
///
/// Linux: kernel/sched/core.c ttwu_queue().
async fn ttwu_queue(k: &Kernel, p: TaskId, cpu: CpuId, wake_flags: WakeFlags) {
    let queued = {
        let s = &mut *k.st();
        if s.feat.ttwu_queue && ttwu_queue_cond(s, p, cpu) {
            ttwu_queue_wakelist(s, p, cpu);
            true
        } else {
            false
        }
    };
    if queued {
        let cost = k.st().costs.wake_remote_ns;
        k.m.delay(cost).await;
        return;
    }
    k.rq_lock(cpu).await;
    let cost = {
        let s = &mut *k.st();
        update_rq_clock(s, cpu);
        s.costs.wake_local_ns
    };
    k.m.delay(cost).await;
    ttwu_do_activate(k, cpu, p, wake_flags).await;
    k.rq_unlock(cpu).await;
}

/// `sched_ttwu_pending()`: activate every task on this CPU's wake list (W-9).
///
/// Linux: kernel/sched/core.c sched_ttwu_pending().
pub async fn sched_ttwu_pending(k: &Kernel, cpu: CpuId) {
    k.rq_lock(cpu).await;
    let list = {
        let s = &mut *k.st();
        update_rq_clock(s, cpu);
        let rq = &mut s.rqs[cpu.idx()];
        rq.ttwu_pending = false;
        std::mem::take(&mut rq.wake_list)
    };
    for p in list {
        let migrated = k.st().tasks[p.idx()].wake_cpu != cpu;
        let wf = WakeFlags::TTWU
            | if migrated {
                WakeFlags::MIGRATED
            } else {
                WakeFlags::empty()
            };
        ttwu_do_activate(k, cpu, p, wf).await;
    }
    k.rq_unlock(cpu).await;
}

/// `try_to_wake_up()` (W-1..W-9). Returns whether `p` was woken (its state matched).
///
/// Linux: kernel/sched/core.c try_to_wake_up().
///
/// Deviation: for `p == current` the v29 tree (32d34d761ad6) also clears `p->blocked_on`
/// (current may run where it is) and warns on `is_blocked`; the model's self-wakeup path
/// does neither. The mutex slow path, the only writer of `blocked_on`, never wakes its own
/// task, so no model path reaches it with `blocked_on` set.
pub async fn try_to_wake_up(k: &Kernel, p: TaskId, state_mask: u32, wake_flags: WakeFlags) -> bool {
    let this = k.this_cpu();
    if p == k.current() {
        // W-2: waking oneself; no locks needed.
        let s = &mut *k.st();
        if s.tasks[p.idx()].state & state_mask == 0 {
            return false;
        }
        let task = s.tasks[p.idx()].task_ref();
        emit(
            s,
            this,
            EventKind::SchedWaking {
                task,
                target_cpu: this,
            },
        );
        ttwu_do_wakeup(s, this, p);
        return true;
    }
    k.pi_lock(p).await;
    let matched = {
        let s = &mut *k.st();
        if s.tasks[p.idx()].state & state_mask == 0 {
            false
        } else {
            let t = &s.tasks[p.idx()];
            let (task, target_cpu) = (t.task_ref(), t.cpu);
            emit(s, this, EventKind::SchedWaking { task, target_cpu });
            true
        }
    };
    if !matched {
        k.pi_unlock(p).await;
        return false;
    }
    if k.st().tasks[p.idx()].on_rq != OnRq::No && ttwu_runnable(k, p, wake_flags).await {
        k.pi_unlock(p).await;
        return true;
    }
    let on_cpu_queued = {
        let s = &mut *k.st();
        s.tasks[p.idx()].state = crate::task::state::TASK_WAKING;
        ttwu_iowait_end(s, p);
        proxy_unpark(s, p);
        let t = &s.tasks[p.idx()];
        let tcpu = t.cpu;
        if t.on_cpu && s.feat.ttwu_queue && ttwu_queue_cond(s, p, tcpu) {
            ttwu_queue_wakelist(s, p, tcpu);
            true
        } else {
            false
        }
    };
    if !on_cpu_queued {
        // smp_cond_load_acquire(&p->on_cpu, !VAL): wait for prev's CPU to let go of it.
        while k.st().tasks[p.idx()].on_cpu {
            k.m.delay(SPIN_POLL_NS).await;
        }
        let (cpu, wf) = {
            let s = &mut *k.st();
            // A full wakeup places the task from its wake_cpu: whatever CPU it waited on as a
            // donor, the waking mark has done its job (R7). A task whose CPU is not its
            // wake_cpu was moved there as a donor (proxy_set_task_cpu() keeps wake_cpu): this
            // placement is its return migration.
            s.tasks[p.idx()].proxy_waking = false;
            let t = &s.tasks[p.idx()];
            if t.cpu != t.wake_cpu {
                let (task, orig_cpu) = (t.task_ref(), t.cpu);
                emit(s, this, EventKind::ReturnMigrate { task, orig_cpu });
            }
            let wake_cpu = s.tasks[p.idx()].wake_cpu;
            let cpu = select_task_rq(s, p, wake_cpu, wake_flags | WakeFlags::TTWU);
            let mut wf = wake_flags | WakeFlags::TTWU;
            if s.tasks[p.idx()].cpu != cpu {
                wf |= WakeFlags::MIGRATED;
                set_task_cpu(s, p, cpu);
            }
            (cpu, wf)
        };
        ttwu_queue(k, p, cpu, wf).await;
    }
    k.pi_unlock(p).await;
    if k.st().feat.sleeping_owner {
        let cpu = k.st().tasks[p.idx()].cpu;
        activate_blocked_waiters(k, cpu, p).await;
    }
    true
}

/// The iowait half of a full wakeup: a task that slept in iowait leaves the `nr_iowait` of
/// the CPU it slept on (`task_rq(p)` before any `set_task_cpu()`). `pi_lock` held.
///
/// Linux: kernel/sched/core.c try_to_wake_up() (`atomic_dec(&task_rq(p)->nr_iowait)` before
/// `set_task_cpu()`), ttwu_do_activate() (the same for a wakeup that does not migrate).
fn ttwu_iowait_end(s: &mut SchedState, p: TaskId) {
    if s.tasks[p.idx()].in_iowait {
        let cpu = s.tasks[p.idx()].cpu;
        s.rqs[cpu.idx()].nr_iowait -= 1;
    }
}

/// A parked donor woken by other means (its lock handed to it) leaves its sleeping owner's
/// `blocked_head` so the owner's wakeup does not activate it a second time.
///
/// Linux: kernel/sched/core.c do_activate_task() (post-v29 sleeping-owner work).
fn proxy_unpark(s: &mut SchedState, p: TaskId) {
    if let Some(o) = s.tasks[p.idx()].sleeping_owner.take() {
        s.tasks[o.idx()].blocked_head.retain(|&x| x != p);
    }
}

/// `activate_blocked_waiters()` (post-v29 sleeping-owner work, at the tail of the owner's
/// `try_to_wake_up()`): every donor parked on `owner` is moved to the owner's runqueue
/// `cpu` and activated there, and so on down the donors parked on them. A parked donor whose
/// own wakeup is already under way (TASK_WAKING, or queued again) is left to it. For each,
/// under its `pi_lock`: with `iowait_fix` its iowait leaves the CPU it slept on *before*
/// `proxy_set_task_cpu()` moves it (commit d346306db401); without, after, so the decrement
/// lands on the owner's CPU — the imbalance `kernel/sched/proxy_iowait_repro.c` reproduces.
///
/// Linux: kernel/sched/core.c activate_blocked_waiters(), do_activate_blocked_waiter()
/// (post-v29 development tree, as proxy_iowait_repro.c describes them).
///
/// Deviation: the owner's `blocked_lock` is not taken around the list (each list operation is
/// one atomic stretch in the model); the walk down parked donors is a loop, not recursion.
async fn activate_blocked_waiters(k: &Kernel, cpu: CpuId, owner: TaskId) {
    let mut owners = vec![owner];
    while let Some(o) = owners.pop() {
        loop {
            let pp = {
                let s = &mut *k.st();
                if s.tasks[o.idx()].blocked_head.is_empty() {
                    break;
                }
                let pp = s.tasks[o.idx()].blocked_head.remove(0);
                s.tasks[pp.idx()].sleeping_owner = None;
                pp
            };
            k.pi_lock(pp).await;
            k.rq_lock(cpu).await;
            let activated = {
                let s = &mut *k.st();
                let t = &s.tasks[pp.idx()];
                let racing = t.state == crate::task::state::TASK_WAKING || t.on_rq != OnRq::No;
                if !racing {
                    if s.feat.iowait_fix {
                        ttwu_iowait_end(s, pp);
                        proxy_set_task_cpu(s, pp, cpu);
                    } else {
                        proxy_set_task_cpu(s, pp, cpu);
                        ttwu_iowait_end(s, pp);
                    }
                    update_rq_clock(s, cpu);
                    let en = EnqueueFlags::WAKEUP | EnqueueFlags::NOCLOCK;
                    activate_task(s, cpu, pp, en);
                    resched_curr(s, cpu);
                }
                !racing
            };
            k.rq_unlock(cpu).await;
            if activated {
                owners.push(pp);
            }
            k.pi_unlock(pp).await;
        }
    }
}

/// `wake_up_process()`.
///
/// Linux: kernel/sched/core.c wake_up_process().
pub async fn wake_up_process(k: &Kernel, p: TaskId) -> bool {
    try_to_wake_up(k, p, crate::task::state::TASK_NORMAL, WakeFlags::empty()).await
}

/// `wake_up_new_task()` (W-13): place with the fork balancer and enqueue.
///
/// Linux: kernel/sched/core.c wake_up_new_task().
pub async fn wake_up_new_task(k: &Kernel, p: TaskId) {
    k.pi_lock(p).await;
    {
        let s = &mut *k.st();
        s.tasks[p.idx()].state = crate::task::state::TASK_RUNNING;
        let from = s.tasks[p.idx()].cpu;
        let cpu = select_task_rq(s, p, from, WakeFlags::FORK);
        let t = &mut s.tasks[p.idx()];
        t.recent_used_cpu = from;
        // __set_task_cpu(): no migration event for a task that never ran.
        t.cpu = cpu;
        t.wake_cpu = cpu;
    }
    let cpu = __task_rq_lock(k, p).await;
    let class = {
        let s = &mut *k.st();
        update_rq_clock(s, cpu);
        activate_task(s, cpu, p, EnqueueFlags::INITIAL | EnqueueFlags::NOCLOCK);
        let task = s.tasks[p.idx()].task_ref();
        let this = s.m.this_cpu();
        emit(
            s,
            this,
            EventKind::SchedWakeupNew {
                task,
                target_cpu: cpu,
            },
        );
        wakeup_preempt(s, cpu, p, WakeFlags::FORK);
        s.tasks[p.idx()].class
    };
    class.task_woken(k, cpu, p).await;
    k.rq_unlock(cpu).await;
    k.pi_unlock(p).await;
}

// ---------------------------------------------------------------------- workqueue hooks

/// `sched_submit_work()`: before a voluntary sleep, tell the workqueue that this worker
/// stops running (`wq_worker_sleeping()`). Only `schedule()` with a non-running state calls
/// it; preemption and the idle loop never do (S-6).
///
/// Linux: kernel/sched/core.c sched_submit_work().
///
/// Deviation: io_uring workers and plugged block I/O are not modelled. A task that is not a
/// worker passes through without an await point, so non-workqueue schedules are unchanged.
pub async fn sched_submit_work(k: &Kernel, tsk: TaskId) {
    let hook = {
        let s = k.st();
        crate::workqueue::is_wq_worker(&s, tsk) && !s.wq.skip_sleeping_hook
    };
    if hook {
        Box::pin(crate::workqueue::wq_worker_sleeping(k, tsk)).await;
    }
}

/// `sched_update_worker()`: after `schedule()` returns, a worker counts as running again
/// (`wq_worker_running()`, a no-op unless the sleeping hook took it out).
///
/// Linux: kernel/sched/core.c sched_update_worker().
pub fn sched_update_worker(k: &Kernel, tsk: TaskId) {
    let s = &mut *k.st();
    if crate::workqueue::is_wq_worker(s, tsk) {
        crate::workqueue::wq_worker_running(s, tsk);
    }
}

/// `rt_mutex_schedule()`: the `__schedule(SM_NONE)` loop of `schedule()` without the worker
/// hooks, which an rt_mutex wait runs once around its whole loop instead
/// (`rt_mutex_pre_schedule()` / `rt_mutex_post_schedule()`, M-16).
///
/// Linux: kernel/sched/core.c rt_mutex_schedule(), __schedule_loop().
pub async fn rt_mutex_schedule(k: &Kernel) {
    loop {
        __schedule(k, SchedMode::None).await;
        if !k.need_resched() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use sim::{CpuMask, Executor};

    use super::*;
    use crate::sched::Costs;
    use crate::task::state::TASK_INTERRUPTIBLE;
    use crate::tracepoints::NullSink;

    /// Regression B-v29-1 (spec §9 #24, P1/P2, I12): the stale `prev`.
    ///
    /// CPU 0's task `a` has just blocked and is still `rq->donor`; the pick's balance pass
    /// (newidle) drops rq 0's lock for 10 µs. Inside that window CPU 1 swaps rq 0's donor away,
    /// as a remote return migration does when the task it returns is that rq's donor (R6).
    /// Fault injection: no workload reaches this window by itself (a queued donor keeps the
    /// balance pass from dropping the lock, and a dequeued one cannot be woken while on the
    /// CPU), so CPU 1's step is injected here, as the spec's regression asks.
    ///
    /// ```text
    ///   CPU 0 (__schedule, prev a)          CPU 1
    ///   rq_lock(0); a blocks
    ///   pick_next_task: prev = a (old code)
    ///   balance_fair → newidle: unlock rq0
    ///                                       rq_lock(0); donor a → idle; unlock
    ///   lock rq0; pick idle
    ///   put_prev_set_next_task(prev, idle)   ← `a` is no longer the donor
    /// ```
    fn stale_prev_window(fix: bool) -> Vec<String> {
        let mut cfg = crate::system::Config::new(2);
        cfg.costs = Costs::zero();
        cfg.costs.newidle_balance_ns = 10_000;
        cfg.feat.delay_dequeue = false;
        cfg.feat.stale_prev_fix = fix;
        let k = crate::system::new_kernel(&cfg, Box::new(NullSink));
        let a = {
            let s = &mut *k.st();
            let id = TaskId(s.tasks.len() as u32);
            let mut t = crate::system::new_task_struct(&s.m, id, 3000, "a", CpuId(0));
            t.cpus_mask = crate::task::CpuMasks::single(CpuId(0));
            t.nr_cpus_allowed = 1;
            s.tasks.push(t);
            crate::sched::fair::init_entity_fair(s, id);
            activate_task(s, CpuId(0), id, EnqueueFlags::empty());
            put_prev_set_next_task(s, CpuId(0), s.rqs[0].donor, id);
            s.rqs[0].curr = id;
            s.rqs[0].donor = id;
            s.rqs[0].next_class = Class::Fair;
            s.tasks[id.idx()].state = TASK_INTERRUPTIBLE;
            assert!(block_task(s, CpuId(0), id, TASK_INTERRUPTIBLE));
            s.rd_overloaded = true;
            id
        };
        {
            let k2 = k.clone();
            k.m.spawn(task_ctx(TaskId(0)), async move {
                k2.rq_lock(CpuId(0)).await;
                update_rq_clock(&mut k2.st(), CpuId(0));
                let next = pick_next_task(&k2, CpuId(0)).await;
                assert_eq!(next, k2.st().rqs[0].idle);
                k2.rq_unlock(CpuId(0)).await;
                k2.m.halt().await;
            });
        }
        {
            let k2 = k.clone();
            k.m.spawn(task_ctx(TaskId(1)), async move {
                k2.m.delay(1_000).await;
                k2.rq_lock(CpuId(0)).await;
                {
                    let s = &mut *k2.st();
                    assert_eq!(s.rqs[0].donor, a, "CPU 0 is inside its balance window");
                    proxy_resched_idle(s, CpuId(0));
                }
                k2.rq_unlock(CpuId(0)).await;
                k2.m.halt().await;
            });
        }
        k.m.boot_cpu(CpuId(0), task_ctx(TaskId(0)));
        k.m.boot_cpu(CpuId(1), task_ctx(TaskId(1)));
        Executor::new(k.m.clone()).run(u64::MAX, &mut |_| true);
        let v = k.violations.borrow();
        v.iter()
            .map(|v| format!("{}: {}", v.invariant, v.detail))
            .collect()
    }

    #[test]
    fn b_v29_1_stale_prev_breaks_i12_without_the_fix() {
        let v = stale_prev_window(false);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].starts_with("I12: cpu 0: put_prev_set_next_task with prev a while rq->donor is swapper/0"),
            "{v:?}"
        );
    }

    #[test]
    fn b_v29_1_pick_reads_the_live_donor_with_the_fix() {
        assert_eq!(stale_prev_window(true), Vec::<String>::new());
    }

    /// Collects the event stream for assertions.
    #[derive(Clone, Default)]
    struct Collect(Rc<RefCell<Vec<Event>>>);

    impl crate::tracepoints::EventSink for Collect {
        fn event(&mut self, e: &Event) {
            self.0.borrow_mut().push(*e);
        }
    }

    /// A SCHED_NORMAL task on `cpu` (not queued) allowed on `allowed`.
    fn fair_task(s: &mut SchedState, name: &str, cpu: CpuId, allowed: CpuMask) -> TaskId {
        let id = TaskId(s.tasks.len() as u32);
        let mut t = crate::system::new_task_struct(&s.m, id, 3000 + id.0, name, cpu);
        t.nr_cpus_allowed = allowed.weight();
        t.cpus_mask = s.cpus_masks.intern(allowed);
        s.tasks.push(t);
        crate::sched::fair::init_entity_fair(s, id);
        id
    }

    /// A proxy mutex held by `owner` with `waiter` queued on it and blocked on it (M1).
    fn mutex_held(s: &mut SchedState, owner: TaskId, waiter: TaskId) -> crate::locking::mutex::MutexId {
        use crate::locking::mutex::{Mutex, MutexFlags};
        let wait_lock = s.m.new_lock();
        let m = crate::locking::mutex::MutexId(s.mutexes.len() as u32);
        s.mutexes.push(Mutex {
            name: "M".into(),
            owner: Some(owner),
            flags: MutexFlags::WAITERS,
            wait_list: [waiter].into(),
            wait_lock,
            osq: Default::default(),
            proxy: true,
            io: false,
            interruptible: false,
        });
        let t = &mut s.tasks[waiter.idx()];
        t.blocked_on = Some(m);
        t.waiting_on = Some(crate::locking::usermutex::WaitTarget::Mutex(m));
        m
    }

    fn zero_cost_config(nr_cpus: usize) -> crate::system::Config {
        let mut cfg = crate::system::Config::new(nr_cpus);
        cfg.costs = Costs::zero();
        cfg
    }

    /// Where the chain walk stops, v29 and 7.1 act on different tasks (find_proxy_task F3,
    /// F4; tree 32d34d761ad6 against the 7.1 merge). Chain d → (M1) → p → (M2) → o on one
    /// CPU, d and p blocked donors (`is_blocked`), both queued. `owner_sleeps`: o holds M2 and
    /// sleeps (F4); else M2 has no owner (F3). Returns, after one walk from d: (d queued, p
    /// queued, p's blocked_on, what the walk returned).
    fn walk_stops_at_p(
        deactivate_link: bool,
        owner_sleeps: bool,
    ) -> (bool, bool, Option<crate::locking::mutex::MutexId>, &'static str) {
        let mut cfg = zero_cost_config(1);
        cfg.feat.deactivate_link = deactivate_link;
        let k = crate::system::new_kernel(&cfg, Box::new(Collect::default()));
        let (d, p) = {
            let s = &mut *k.st();
            let o = fair_task(s, "o", CpuId(0), CpuMask::single(CpuId(0)));
            s.tasks[o.idx()].state = TASK_INTERRUPTIBLE;
            let p = fair_task(s, "p", CpuId(0), CpuMask::single(CpuId(0)));
            let d = fair_task(s, "d", CpuId(0), CpuMask::single(CpuId(0)));
            let m2 = mutex_held(s, o, p);
            if !owner_sleeps {
                s.mutexes[m2.idx()].owner = None;
            }
            mutex_held(s, p, d);
            for t in [p, d] {
                s.tasks[t.idx()].state = crate::task::state::TASK_UNINTERRUPTIBLE;
                s.tasks[t.idx()].is_blocked = true;
                activate_task(s, CpuId(0), t, EnqueueFlags::empty());
            }
            (d, p)
        };
        let out = std::rc::Rc::new(std::cell::RefCell::new(None));
        {
            let (k2, out) = (k.clone(), out.clone());
            k.m.spawn(task_ctx(TaskId(0)), async move {
                k2.rq_lock(CpuId(0)).await;
                {
                    let s = &mut *k2.st();
                    update_rq_clock(s, CpuId(0));
                    let prev = s.rqs[0].donor;
                    put_prev_set_next_task(s, CpuId(0), prev, d);
                    rq_set_donor(s, CpuId(0), d);
                }
                let r = match find_proxy_task(&k2, CpuId(0), d).await {
                    Proxy::Repick => "repick",
                    Proxy::Idle(_) => "idle",
                    Proxy::Run(t) if t == p => "run p",
                    Proxy::Run(_) => "run other",
                };
                {
                    let s = k2.st();
                    let q = |t: TaskId| s.tasks[t.idx()].on_rq == OnRq::Queued;
                    *out.borrow_mut() = Some((q(d), q(p), s.tasks[p.idx()].blocked_on, r));
                }
                k2.rq_unlock(CpuId(0)).await;
                k2.m.halt().await;
            });
        }
        k.m.boot_cpu(CpuId(0), task_ctx(TaskId(0)));
        Executor::new(k.m.clone()).run(u64::MAX, &mut |_| true);
        assert_eq!(*k.violations.borrow(), vec![]);
        let r = out.borrow_mut().take().expect("the walk ran");
        r
    }

    /// F4, a sleeping owner: v29 deactivates the link p (its blocked_on cleared, the donor d
    /// stays queued); 7.1 deactivates the donor d and leaves p queued.
    #[test]
    fn sleeping_owner_deactivates_the_link_in_v29_and_the_donor_in_7_1() {
        assert_eq!(walk_stops_at_p(true, true), (true, false, None, "repick"));
        let (d_queued, p_queued, p_on, r) = walk_stops_at_p(false, true);
        assert_eq!((d_queued, p_queued, r), (false, true, "repick"));
        assert!(p_on.is_some());
    }

    /// F3, a mutex without owner: v29 clears the link's blocked_on and deactivates it (it
    /// sleeps until an unlock wakes it); 7.1 runs the link in place, as it is on its
    /// wake_cpu, to retry the lock.
    #[test]
    fn ownerless_mutex_deactivates_the_link_in_v29_and_runs_it_at_home_in_7_1() {
        assert_eq!(walk_stops_at_p(true, false), (true, false, None, "repick"));
        assert_eq!(walk_stops_at_p(false, false), (true, true, None, "run p"));
    }

    /// Regression B-2026-05-2 (spec §9 #22, B6, S14, I7): proxy code never deactivates a
    /// TASK_RUNNING task. Fault injection: donor `d` is blocked on M (7.1 rule, `is_blocked`
    /// off) but already TASK_RUNNING, as the mutex slow path left it before the May 2026 fix
    /// (the optimistic spin's fail path set TASK_RUNNING and only `blocked_on` was set again,
    /// M3); the model's mutex re-sets the state with `blocked_on`, so no workload reaches this.
    /// M's owner sleeps (F4). Deactivating `d` would lose it for good: it is TASK_RUNNING, so
    /// no wakeup matches it again. The fix refuses (S14) and force-returns it instead (R9): it
    /// stays queued, its `blocked_on` is cleared, and the re-pick runs it to retry the lock.
    #[test]
    fn b_2026_05_2_running_donor_is_force_returned_not_deactivated() {
        let mut cfg = zero_cost_config(1);
        cfg.feat.is_blocked = false;
        // The 7.1 stage: proxy_force_return() (v27+ deactivates the link instead).
        cfg.feat.deactivate_link = false;
        let events = Collect::default();
        let k = crate::system::new_kernel(&cfg, Box::new(events.clone()));
        let (d, m) = {
            let s = &mut *k.st();
            let o = fair_task(s, "o", CpuId(0), CpuMask::single(CpuId(0)));
            s.tasks[o.idx()].state = TASK_INTERRUPTIBLE;
            let d = fair_task(s, "d", CpuId(0), CpuMask::single(CpuId(0)));
            let m = mutex_held(s, o, d);
            activate_task(s, CpuId(0), d, EnqueueFlags::empty());
            (d, m)
        };
        {
            let k2 = k.clone();
            k.m.spawn(task_ctx(TaskId(0)), async move {
                k2.rq_lock(CpuId(0)).await;
                update_rq_clock(&mut k2.st(), CpuId(0));
                let next = pick_next_task(&k2, CpuId(0)).await;
                assert_eq!(next, d);
                {
                    let s = &mut *k2.st();
                    rq_set_donor(s, CpuId(0), next);
                    assert!(task_is_blocked(s, d));
                    assert_eq!(s.tasks[d.idx()].state, crate::task::state::TASK_RUNNING);
                }
                assert!(matches!(find_proxy_task(&k2, CpuId(0), d).await, Proxy::Repick));
                {
                    let s = k2.st();
                    let t = &s.tasks[d.idx()];
                    assert_eq!(t.on_rq, OnRq::Queued, "a TASK_RUNNING donor was deactivated");
                    assert_eq!((t.cpu, t.blocked_on), (CpuId(0), None));
                    assert_eq!(s.mutexes[m.idx()].wait_list, [d], "still a waiter");
                }
                // The re-pick runs d itself: it is no longer a donor.
                let next = pick_next_task(&k2, CpuId(0)).await;
                assert_eq!(next, d);
                rq_set_donor(&mut k2.st(), CpuId(0), next);
                assert!(!task_is_blocked(&k2.st(), d));
                k2.rq_unlock(CpuId(0)).await;
                k2.m.halt().await;
            });
        }
        k.m.boot_cpu(CpuId(0), task_ctx(TaskId(0)));
        Executor::new(k.m.clone()).run(u64::MAX, &mut |_| true);
        assert_eq!(*k.violations.borrow(), vec![]);
        let pid = k.st().tasks[d.idx()].pid;
        assert!(events.0.borrow().iter().any(
            |e| matches!(e.kind, EventKind::ReturnMigrate { task, orig_cpu: CpuId(0) } if task.pid == pid)
        ));
    }

    /// Regression B-v18-2 (spec §9 #9, R5): a fair-delayed waking donor is requeued before
    /// `proxy_needs_return()`, which runs before `wakeup_preempt()`. Donor `d` (home CPU 0)
    /// was migrated to owner `o`'s CPU 1 and deactivated there when `o` went to sleep (F4),
    /// while ineligible next to `x`: DELAY_DEQUEUE kept it queued (`sched_delayed`). The
    /// unlock marks it waking and CPU 0 wakes it: `ttwu_runnable()` finds it queued on CPU 1,
    /// requeues the delayed entity, sees it away from home and removes it with block
    /// semantics (TASK_WAKING), and the full wakeup places it on CPU 0. CPU 1 keeps only `x`,
    /// its counts intact, and is not asked to reschedule for a task that left.
    ///
    /// The state is built directly: in the model a donor reaches F4's `proxy_deactivate()` just
    /// after being picked, hence eligible, so it is always dequeued fully; here `d` carries
    /// the negative lag of a donor that was charged for its owner's run. Both wrong orders
    /// fail here: with the return check before the requeue, the WAKING dequeue takes the
    /// delayed entity off and the requeue then finds it gone; with `wakeup_preempt()` first,
    /// CPU 1 (running idle) is told to reschedule for a task that is leaving it.
    #[test]
    fn b_v18_2_delayed_donor_is_requeued_then_returned() {
        let events = Collect::default();
        let k = crate::system::new_kernel(&zero_cost_config(2), Box::new(events.clone()));
        let (d, x) = {
            let s = &mut *k.st();
            let o = fair_task(s, "o", CpuId(1), CpuMask::single(CpuId(1)));
            s.tasks[o.idx()].state = TASK_INTERRUPTIBLE;
            let x = fair_task(s, "x", CpuId(1), CpuMask::single(CpuId(1)));
            activate_task(s, CpuId(1), x, EnqueueFlags::empty());
            let d = fair_task(s, "d", CpuId(1), CpuMask::single(CpuId(0)));
            s.tasks[d.idx()].wake_cpu = CpuId(0);
            s.tasks[d.idx()].se.vlag = -1_000_000;
            mutex_held(s, o, d);
            activate_task(s, CpuId(1), d, EnqueueFlags::MIGRATED);
            s.tasks[d.idx()].state = crate::task::state::TASK_UNINTERRUPTIBLE;
            s.tasks[d.idx()].is_blocked = true;
            assert!(!crate::sched::fair::entity_eligible(s, CpuId(1), d));
            assert!(proxy_deactivate(s, CpuId(1), d));
            assert_eq!(s.tasks[d.idx()].on_rq, OnRq::Queued);
            assert!(s.tasks[d.idx()].se.sched_delayed);
            // The F4 pass ran idle with need_resched (S11); that reschedule is over.
            let idle = s.rqs[1].idle;
            s.tasks[idle.idx()].need_resched = false;
            // M7: the unlock clears blocked_on and marks d waking (L3: no rq lock).
            s.tasks[d.idx()].blocked_on = None;
            s.tasks[d.idx()].proxy_waking = true;
            (d, x)
        };
        {
            let k2 = k.clone();
            k.m.spawn(task_ctx(TaskId(0)), async move {
                assert!(try_to_wake_up(&k2, d, crate::task::state::TASK_NORMAL, WakeFlags::empty()).await);
                k2.m.halt().await;
            });
        }
        // Only CPU 0 runs a kernel path; CPU 1 is only ever locked by the waker.
        k.m.boot_cpu(CpuId(0), task_ctx(TaskId(0)));
        Executor::new(k.m.clone()).run(u64::MAX, &mut |_| true);
        assert_eq!(*k.violations.borrow(), vec![]);
        let s = k.st();
        let t = &s.tasks[d.idx()];
        assert_eq!(
            (t.on_rq, t.cpu, t.state),
            (OnRq::Queued, CpuId(0), crate::task::state::TASK_RUNNING)
        );
        assert!(!t.se.sched_delayed);
        assert!(!t.proxy_waking);
        let rq1 = &s.rqs[1];
        assert_eq!(
            (rq1.nr_running, rq1.cfs.h_nr_queued, rq1.cfs.h_nr_runnable),
            (1, 1, 1)
        );
        assert_eq!(rq1.cfs.tasks.iter(&s.tasks).collect::<Vec<_>>(), [x]);
        assert!(!s.tasks[rq1.curr.idx()].need_resched, "CPU 1 rescheduled for d");
        assert_eq!(s.rqs[0].nr_running, 1);
        let pid = t.pid;
        drop(s);
        assert_eq!(crate::invariants::check_all(&k), vec![]);
        let ev = events.0.borrow();
        let ret = ev
            .iter()
            .position(|e| matches!(e.kind, EventKind::ReturnMigrate { task, orig_cpu: CpuId(1) } if task.pid == pid))
            .expect("d is returned from CPU 1");
        assert!(ev[ret..].iter().any(
            |e| matches!(e.kind, EventKind::SchedWakeup { task, target_cpu: CpuId(0) } if task.pid == pid)
        ));
    }

    /// Regression B-v21-1 (spec §9 #12, C9, L3): the deactivate-failed path clears the
    /// donor's `blocked_on` under its `blocked_lock`, like every `blocked_on` write. Same
    /// TASK_RUNNING donor `d` as in B-2026-05-2, with every raw spinlock acquisition costing
    /// 1 µs so the steps spread out; CPU 1 injects an unlocker marking `d` waking (M7) under
    /// `d`'s `blocked_lock` while CPU 0 is inside `proxy_force_return()`:
    ///
    /// ```text
    ///   CPU 0 (__schedule)                      CPU 1 (mutex unlock, M7)
    ///   find_proxy_task: F4, d TASK_RUNNING
    ///   proxy_force_return: task_rq_lock(d)
    ///     deactivate d, select CPU 0            lock d.blocked_lock (4.5 µs)
    ///     lock d.blocked_lock  ← spins            d.blocked_on = NULL; waking
    ///                                           unlock (10 µs)
    ///     d.blocked_on = NULL; not waking
    /// ```
    ///
    /// The clear waits for CPU 1 (one contention on `d`'s `blocked_lock`, from CPU 0); the
    /// write it replaces was made under the rq lock alone.
    #[test]
    fn b_v21_1_force_return_clears_blocked_on_under_blocked_lock() {
        let mut cfg = zero_cost_config(2);
        cfg.costs.spin_lock_ns = 1_000;
        cfg.feat.is_blocked = false;
        // The 7.1 stage: proxy_force_return() (v27+ deactivates the link instead).
        cfg.feat.deactivate_link = false;
        let events = Collect::default();
        let k = crate::system::new_kernel(&cfg, Box::new(events.clone()));
        let d = {
            let s = &mut *k.st();
            let o = fair_task(s, "o", CpuId(0), CpuMask::single(CpuId(0)));
            s.tasks[o.idx()].state = TASK_INTERRUPTIBLE;
            let d = fair_task(s, "d", CpuId(0), CpuMask::single(CpuId(0)));
            mutex_held(s, o, d);
            activate_task(s, CpuId(0), d, EnqueueFlags::empty());
            d
        };
        let blocked_lock = k.st().tasks[d.idx()].blocked_lock;
        {
            let k2 = k.clone();
            k.m.spawn(task_ctx(TaskId(0)), async move {
                k2.rq_lock(CpuId(0)).await;
                update_rq_clock(&mut k2.st(), CpuId(0));
                let next = pick_next_task(&k2, CpuId(0)).await;
                rq_set_donor(&mut k2.st(), CpuId(0), next);
                assert!(matches!(find_proxy_task(&k2, CpuId(0), d).await, Proxy::Repick));
                k2.rq_unlock(CpuId(0)).await;
                k2.m.halt().await;
            });
        }
        {
            let k2 = k.clone();
            k.m.spawn(task_ctx(TaskId(1)), async move {
                k2.m.delay(3_500).await;
                k2.blocked_lock(d).await;
                {
                    let t = &mut k2.st().tasks[d.idx()];
                    t.blocked_on = None;
                    t.proxy_waking = true;
                }
                k2.m.delay(5_500).await;
                k2.raw_spin_unlock(blocked_lock).await;
                k2.m.halt().await;
            });
        }
        k.m.boot_cpu(CpuId(0), task_ctx(TaskId(0)));
        k.m.boot_cpu(CpuId(1), task_ctx(TaskId(1)));
        Executor::new(k.m.clone()).run(u64::MAX, &mut |_| true);
        assert_eq!(*k.violations.borrow(), vec![]);
        let contended: Vec<(u64, u32)> = events
            .0
            .borrow()
            .iter()
            .filter(|e| matches!(e.kind, EventKind::ContentionBegin { lock } if lock == LockName::Other(blocked_lock.0)))
            .map(|e| (e.time_ns, e.cpu.0))
            .collect();
        assert_eq!(
            contended,
            vec![(6_000, 0)],
            "CPU 0's clear waits for CPU 1's mark"
        );
        let s = k.st();
        let t = &s.tasks[d.idx()];
        assert_eq!(
            (t.on_rq, t.cpu, t.blocked_on, t.proxy_waking),
            (OnRq::Queued, CpuId(0), None, false)
        );
    }

    /// Regression B-v9-2 (spec §9 #2, I2, D2): a task a proxy path is moving looks MIGRATING
    /// until it is queued again, so a concurrent `task_rq_lock()` user waits instead of
    /// misreading it. CPU 0 migrates donor `d` (home CPU 0) to its owner's CPU 1; CPU 1 holds its
    /// own rq lock until 11 µs, so `d` sits detached (MIGRATING, `task_cpu` 1) in between.
    /// CPU 2 injects the owner's unlock at 3 µs: it marks `d` waking (M7) and wakes it:
    ///
    /// ```text
    ///   CPU 0 (__schedule)        CPU 1              CPU 2 (mutex unlock)
    ///                             rq_lock(1)
    ///   F5: deactivate d,
    ///   task_cpu = 1; unlock rq0
    ///   attach: rq_lock(1) ...                       mark d waking; ttwu(d)
    ///                                                 task_rq_lock(d): rq1 ...
    ///                             unlock (11 µs)
    ///   enqueue d on rq1                              d queued: ttwu_runnable
    ///                                                 → away from home: return
    /// ```
    ///
    /// The wakeup is not lost and not doubled: `d` ends queued once, on CPU 0, running.
    /// Had the move looked like a sleep (`on_rq` 0), the waker would have taken the full
    /// wakeup path and queued `d` on CPU 0 while the attach queued it on CPU 1 as well.
    #[test]
    fn b_v9_2_waker_waits_for_a_task_in_flight() {
        let mut cfg = zero_cost_config(3);
        cfg.feat.ttwu_queue = false;
        let events = Collect::default();
        let k = crate::system::new_kernel(&cfg, Box::new(events.clone()));
        let (d, m) = {
            let s = &mut *k.st();
            let o = fair_task(s, "o", CpuId(1), CpuMask::single(CpuId(1)));
            activate_task(s, CpuId(1), o, EnqueueFlags::empty());
            let d = fair_task(s, "d", CpuId(0), CpuMask::single(CpuId(0)));
            let m = mutex_held(s, o, d);
            activate_task(s, CpuId(0), d, EnqueueFlags::empty());
            let t = &mut s.tasks[d.idx()];
            t.state = crate::task::state::TASK_UNINTERRUPTIBLE;
            t.is_blocked = true;
            (d, m)
        };
        {
            let k2 = k.clone();
            k.m.spawn(task_ctx(TaskId(1)), async move {
                k2.rq_lock(CpuId(1)).await;
                k2.m.delay(11_000).await;
                k2.rq_unlock(CpuId(1)).await;
                k2.m.halt().await;
            });
        }
        {
            let k2 = k.clone();
            k.m.spawn(task_ctx(TaskId(0)), async move {
                k2.m.delay(1_000).await;
                k2.rq_lock(CpuId(0)).await;
                update_rq_clock(&mut k2.st(), CpuId(0));
                let next = pick_next_task(&k2, CpuId(0)).await;
                assert_eq!(next, d);
                rq_set_donor(&mut k2.st(), CpuId(0), next);
                assert!(matches!(find_proxy_task(&k2, CpuId(0), d).await, Proxy::Repick));
                k2.rq_unlock(CpuId(0)).await;
                k2.m.halt().await;
            });
        }
        {
            let k2 = k.clone();
            k.m.spawn(task_ctx(TaskId(2)), async move {
                k2.m.delay(3_000).await;
                {
                    let s = k2.st();
                    let t = &s.tasks[d.idx()];
                    assert_eq!((t.on_rq, t.cpu), (OnRq::Migrating, CpuId(1)), "d is in flight");
                }
                k2.mutex_wait_lock(m).await;
                k2.blocked_lock(d).await;
                {
                    let t = &mut k2.st().tasks[d.idx()];
                    t.blocked_on = None;
                    t.proxy_waking = true;
                }
                k2.blocked_unlock(d).await;
                k2.mutex_wait_unlock(m).await;
                assert!(try_to_wake_up(&k2, d, crate::task::state::TASK_NORMAL, WakeFlags::empty()).await);
                k2.m.halt().await;
            });
        }
        k.m.boot_cpu(CpuId(0), task_ctx(TaskId(0)));
        k.m.boot_cpu(CpuId(1), task_ctx(TaskId(1)));
        k.m.boot_cpu(CpuId(2), task_ctx(TaskId(2)));
        Executor::new(k.m.clone()).run(u64::MAX, &mut |_| true);
        assert_eq!(*k.violations.borrow(), vec![]);
        let pid = k.st().tasks[d.idx()].pid;
        let ev = events.0.borrow();
        let at = |f: &dyn Fn(&EventKind) -> bool| -> Vec<(u64, u32)> {
            ev.iter()
                .filter(|e| f(&e.kind))
                .map(|e| (e.time_ns, e.cpu.0))
                .collect()
        };
        assert_eq!(
            at(&|k| matches!(k, EventKind::ProxyMigrate { task, dest_cpu: CpuId(1), .. } if task.pid == pid)),
            vec![(1_000, 0)]
        );
        assert_eq!(
            at(&|k| matches!(
                k,
                EventKind::ContentionBegin {
                    lock: LockName::Rq(CpuId(1))
                }
            )),
            vec![(1_000, 0), (3_000, 2)],
            "the attach and the waker both wait for rq 1"
        );
        assert_eq!(
            at(&|k| matches!(k, EventKind::ReturnMigrate { task, orig_cpu: CpuId(1) } if task.pid == pid)),
            vec![(11_000, 2)],
            "returned from rq 1 once it was queued there (recorded by the waker on CPU 2)"
        );
        assert_eq!(
            at(&|k| matches!(k, EventKind::SchedWakeup { task, target_cpu: CpuId(0) } if task.pid == pid)),
            vec![(11_000, 2)]
        );
        drop(ev);
        let s = k.st();
        let t = &s.tasks[d.idx()];
        assert_eq!(
            (t.on_rq, t.cpu, t.state),
            (OnRq::Queued, CpuId(0), crate::task::state::TASK_RUNNING)
        );
        assert_eq!((s.rqs[0].nr_running, s.rqs[1].nr_running), (1, 1));
        drop(s);
        assert_eq!(crate::invariants::check_all(&k), vec![]);
    }
}
