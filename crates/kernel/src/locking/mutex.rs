//! The kernel `struct mutex`: owner word with WAITERS/HANDOFF/PICKUP flags, a FIFO of
//! sleeping waiters under `wait_lock`, optimistic spinning on a running owner, first-waiter
//! handoff, and the `blocked_on` record Proxy Execution reads (spec §8 M-1..M-7,
//! proxy-exec.md §2 M1–M4, M7–M9, M11).
//!
//! Linux: kernel/locking/mutex.c, kernel/locking/mutex.h, include/linux/mutex.h,
//! kernel/locking/osq_lock.c.
//!
//! Atomicity: every stretch of model code between two await points runs alone, so an
//! `atomic_long_try_cmpxchg` on the owner word is a plain read-modify-write inside one stretch.
//! The await points are the raw spinlock operations, cost steps (`delay`), `schedule()` and
//! the spin polls; every other CPU may act between them.
//!
//! Lock order (spec L1, checked by lockdep): `mutex.wait_lock` → `task.blocked_lock`. No raw
//! spinlock is held across `schedule()`; wakeups are issued after every spinlock is dropped
//! (M9).
//!
//! `mutex_lock()` and `mutex_lock_io()` sleep TASK_UNINTERRUPTIBLE as Linux's do;
//! `mutex_lock_interruptible()` (a mutex declared `"interruptible": true` by the workload)
//! sleeps TASK_INTERRUPTIBLE and leaves through the error path (-EINTR) when a signal is
//! pending (`crate::signal`).
//!
//! Deviation: ww_mutex (wound/die) is not modelled, nor `mutex_lock_killable()` (no fatal
//! signals are).
//!
//! The unlock slowpath takes `current.blocked_lock` and, nested inside it, the boosting
//! donor's (L2); the FIFO head's own `blocked_lock` is taken alone, under `wait_lock`.

use std::collections::VecDeque;

use sim::{LockId, Nanos};

use crate::locking::lockdep::LockClass;
use crate::locking::usermutex::WaitTarget;
use crate::locking::{trace_lock_acquired, trace_lock_contended};
use crate::sched::core::*;
use crate::sched::SchedState;
use crate::signal::{signal_pending_state, Eintr};
use crate::task::state::*;
use crate::task::TaskId;
use crate::tracepoints::LockName;

sim::id_type! {
    /// Index of a kernel mutex in [`crate::sched::SchedState::mutexes`].
    pub struct MutexId;
}

/// The flag bits of the owner word (`MUTEX_FLAG_*`, M-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MutexFlags(u8);

impl MutexFlags {
    pub const EMPTY: MutexFlags = MutexFlags(0);
    /// `MUTEX_FLAG_WAITERS`: the wait list is non-empty; unlock must take the slow path.
    pub const WAITERS: MutexFlags = MutexFlags(0x1);
    /// `MUTEX_FLAG_HANDOFF`: the first waiter asks the owner to hand the lock over directly.
    pub const HANDOFF: MutexFlags = MutexFlags(0x2);
    /// `MUTEX_FLAG_PICKUP`: the owner field names the handoff target, which must pick it up.
    pub const PICKUP: MutexFlags = MutexFlags(0x4);

    pub fn contains(self, f: MutexFlags) -> bool {
        self.0 & f.0 == f.0
    }

    pub fn insert(&mut self, f: MutexFlags) {
        self.0 |= f.0;
    }

    pub fn remove(&mut self, f: MutexFlags) {
        self.0 &= !f.0;
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn bits(self) -> u8 {
        self.0
    }
}

/// `__mutex_owner()`: the task owning mutex `m`, if any (with PICKUP set, the task the lock
/// was handed to).
///
/// Linux: kernel/locking/mutex.c __mutex_owner().
pub fn mutex_owner(s: &crate::sched::SchedState, m: MutexId) -> Option<TaskId> {
    s.mutexes[m.idx()].owner
}

/// `struct mutex`.
pub struct Mutex {
    pub name: String,
    /// Task part of the owner word (`__mutex_owner()`); with PICKUP set it names the handoff
    /// target, who does not own the lock until its trylock picks it up. Written only by
    /// atomic (single-stretch) read-modify-writes.
    pub owner: Option<TaskId>,
    /// Flag part of the owner word. Written together with `owner`.
    pub flags: MutexFlags,
    /// FIFO of sleeping waiters (`wait_list`, `first_waiter`). Protected by: `wait_lock`.
    pub wait_list: VecDeque<TaskId>,
    /// `wait_lock`: raw spinlock, `LockClass::MutexWaitLock`.
    pub wait_lock: LockId,
    /// `osq`: the optimistic spinners that are not waiters, in arrival order; only the head
    /// spins on the owner.
    ///
    /// Deviation: the MCS-style `optimistic_spin_queue` is a plain FIFO; its per-CPU nodes,
    /// unqueue protocol and cache-line behaviour are not modelled.
    pub osq: VecDeque<TaskId>,
    /// Waiters donate through this mutex when Proxy Execution is on (protocol `proxy`).
    pub proxy: bool,
    /// Taken with `mutex_lock_io()`: the locker counts as in iowait while it waits
    /// (workload `"resources": {"M": {"io": true}}`).
    pub io: bool,
    /// Taken with `mutex_lock_interruptible()`: a signal ends the wait with -EINTR (workload
    /// `"resources": {"M": {"interruptible": true}}`; `io` takes precedence).
    pub interruptible: bool,
}

impl Mutex {
    /// Whether the owner word is entirely clear (the fast paths' CAS operand).
    fn word_is_zero(&self) -> bool {
        self.owner.is_none() && self.flags.is_empty()
    }
}

/// Granularity of the spin polls (`cpu_relax()` loops).
pub const MUTEX_SPIN_POLL_NS: Nanos = 10;

/// Upper bound on one optimistic spin, a safety limit only (every loop has a limit).
///
/// Deviation: Linux spins as long as the owner runs and no reschedule is pending; the model
/// gives up after this long and sleeps. A spin this long also ends by a tick in Linux on any
/// CPU with other work queued.
pub const MUTEX_SPIN_MAX_NS: Nanos = 100_000_000;

/// Whether this mutex's waiters record `blocked_on` (`sched_proxy_exec()` and protocol).
///
/// Deviation: Linux takes `blocked_lock` and records `blocked_on` whenever Proxy Execution
/// is compiled in, even with the boot switch off (the scheduler then ignores it). The model
/// does neither unless the `proxy_exec` feature is on and the mutex has protocol `proxy`, so
/// a run without Proxy Execution pays no `blocked_lock` cost and is the plain mutex.
fn proxy_on(k: &Kernel, m: MutexId) -> bool {
    let s = k.st();
    s.feat.proxy_exec && s.mutexes[m.idx()].proxy
}

/// `preempt_disable()` on this CPU.
///
/// Linux: include/linux/preempt.h preempt_disable().
fn preempt_disable(k: &Kernel) {
    let cpu = k.this_cpu();
    k.st().rqs[cpu.idx()].preempt_count += 1;
}

/// `preempt_enable_no_resched()` on this CPU.
///
/// Linux: include/linux/preempt.h preempt_enable_no_resched().
fn preempt_enable_no_resched(k: &Kernel) {
    let cpu = k.this_cpu();
    let mut s = k.st();
    let rq = &mut s.rqs[cpu.idx()];
    assert!(rq.preempt_count > 0, "preempt_count underflow on cpu{cpu}");
    rq.preempt_count -= 1;
}

/// `schedule_preempt_disabled()`: drop the caller's preemption count, schedule, retake it
/// (on whichever CPU the task then runs).
///
/// Linux: kernel/sched/core.c schedule_preempt_disabled().
async fn schedule_preempt_disabled(k: &Kernel) {
    preempt_enable_no_resched(k);
    schedule(k).await;
    preempt_disable(k);
}

/// `__set_task_blocked_on()`: record the mutex `p` waits for. Caller holds `wait_lock` and
/// `p.blocked_lock`. A task never switches from one mutex to another (C6).
///
/// Linux: include/linux/sched.h __set_task_blocked_on().
fn set_task_blocked_on(k: &Kernel, p: TaskId, m: MutexId) {
    let s = &mut *k.st();
    let t = &mut s.tasks[p.idx()];
    assert!(
        t.blocked_on.is_none() || t.blocked_on == Some(m),
        "blocked_on changes from one mutex to another"
    );
    t.blocked_on = Some(m);
    // The task itself re-sets blocked_on after a wakeup (M2): that ends any waking mark.
    t.proxy_waking = false;
}

/// `__clear_task_blocked_on()`: caller holds `p.blocked_lock`.
///
/// Linux: include/linux/sched.h __clear_task_blocked_on().
fn clear_task_blocked_on(k: &Kernel, p: TaskId, m: MutexId) {
    let s = &mut *k.st();
    let t = &mut s.tasks[p.idx()];
    assert!(
        t.blocked_on.is_none() || t.blocked_on == Some(m),
        "blocked_on clears a different mutex"
    );
    t.blocked_on = None;
}

/// `set_current_state()`.
///
/// Linux: include/linux/sched.h set_current_state().
fn set_current_state(k: &Kernel, p: TaskId, state: u32) {
    k.st().tasks[p.idx()].state = state;
}

/// `__mutex_trylock_common()`: take the lock if its task part is free (keeping the flags), or
/// pick it up if it was handed to `me`; with `handoff`, a failed attempt sets HANDOFF so the
/// owner hands the lock to `me` (the first waiter). Returns None when `me` now owns it, else
/// the owner it saw.
///
/// Linux: kernel/locking/mutex.c __mutex_trylock_common().
fn mutex_trylock_common(k: &Kernel, m: MutexId, me: TaskId, handoff: bool) -> Option<TaskId> {
    let s = &mut *k.st();
    let mx = &mut s.mutexes[m.idx()];
    match mx.owner {
        Some(o) if mx.flags.contains(MutexFlags::PICKUP) => {
            if o != me {
                return Some(o);
            }
            mx.flags.remove(MutexFlags::PICKUP);
            None
        }
        Some(o) => {
            assert_ne!(o, me, "mutex {} relocked by its owner", mx.name);
            if handoff {
                mx.flags.insert(MutexFlags::HANDOFF);
            }
            Some(o)
        }
        None => {
            assert!(!mx.flags.contains(MutexFlags::HANDOFF), "free mutex with HANDOFF");
            assert!(!mx.flags.contains(MutexFlags::PICKUP), "free mutex with PICKUP");
            mx.owner = Some(me);
            None
        }
    }
}

/// `__mutex_trylock()`: any takeable state, including a handoff to `me`.
///
/// Linux: kernel/locking/mutex.c __mutex_trylock().
fn mutex_trylock(k: &Kernel, m: MutexId, me: TaskId) -> bool {
    mutex_trylock_common(k, m, me, false).is_none()
}

/// `__mutex_trylock_fast()`: CAS of an all-zero owner word to `me` (M-2).
///
/// Linux: kernel/locking/mutex.c __mutex_trylock_fast().
fn mutex_trylock_fast(k: &Kernel, m: MutexId, me: TaskId) -> bool {
    let s = &mut *k.st();
    let mx = &mut s.mutexes[m.idx()];
    if mx.word_is_zero() {
        mx.owner = Some(me);
        true
    } else {
        false
    }
}

/// `__mutex_unlock_fast()`: CAS of exactly `me` (no flags) to zero (M-2).
///
/// Linux: kernel/locking/mutex.c __mutex_unlock_fast().
fn mutex_unlock_fast(k: &Kernel, m: MutexId, me: TaskId) -> bool {
    let s = &mut *k.st();
    let mx = &mut s.mutexes[m.idx()];
    if mx.owner == Some(me) && mx.flags.is_empty() {
        mx.owner = None;
        true
    } else {
        false
    }
}

/// Whether the task the owner word names runs on a CPU now (`owner_on_cpu()`).
///
/// Linux: include/linux/sched.h owner_on_cpu().
fn owner_on_cpu(k: &Kernel, owner: TaskId) -> bool {
    task_on_cpu(&k.st(), owner)
}

/// `cpu_relax()` in a spin loop: poll once, or up to `max_polls` times while the loop's
/// caller would take the same branch after every poll (the contract of `Machine::poll`: the
/// caller's checks read only shared state that another CPU's step or an interrupt must change,
/// and `max_polls` is what its spin budget allows). Interrupts stay enabled while a mutex
/// spins (only preemption is off), so any interrupt due is taken here; it may set
/// need_resched, which ends the spin. Folded polls are not machine steps, but time, the
/// spin budget and the trace come out as if each were. Every path from one `spin_relax` to
/// the next without an interrupt only reads (the OSQ head and owner checks, a failed
/// `mutex_trylock_common()` without `handoff`), as `Machine::poll` requires: a trylock that
/// succeeds or a spinner leaving the OSQ writes, and then stops spinning.
async fn spin_relax(k: &Kernel, max_polls: u64) {
    k.m.poll(MUTEX_SPIN_POLL_NS, max_polls, true).await;
    if k.m.irq_due() {
        crate::irq::do_irq(k).await;
    }
}

/// How many more polls the spin budget allows before a loop that checks
/// `spent_ns >= MUTEX_SPIN_MAX_NS` ahead of each poll stops: the polls `spin_relax` may fold.
fn polls_left(spent_ns: Nanos) -> u64 {
    assert!(spent_ns < MUTEX_SPIN_MAX_NS, "polling past the spin budget");
    (MUTEX_SPIN_MAX_NS - spent_ns).div_ceil(MUTEX_SPIN_POLL_NS)
}

/// `mutex_can_spin_on_owner()`: worth entering the spin loop at all (M-4).
///
/// Linux: kernel/locking/mutex.c mutex_can_spin_on_owner().
fn mutex_can_spin_on_owner(k: &Kernel, m: MutexId) -> bool {
    if k.need_resched() {
        return false;
    }
    let owner = k.st().mutexes[m.idx()].owner;
    match owner {
        Some(o) => owner_on_cpu(k, o),
        // Released: the spin path's trylock is quicker than sleeping.
        None => true,
    }
}

/// `mutex_spin_on_owner()`: spin while the owner word still names `owner`. Returns true if
/// the owner changed (try again), false if the owner left its CPU or this task needs to
/// reschedule (give up spinning). `spent_ns` carries the spin budget.
///
/// Linux: kernel/locking/mutex.c mutex_spin_on_owner().
async fn mutex_spin_on_owner(k: &Kernel, m: MutexId, owner: TaskId, spent_ns: &mut Nanos) -> bool {
    while k.st().mutexes[m.idx()].owner == Some(owner) {
        if !owner_on_cpu(k, owner) || k.need_resched() {
            return false;
        }
        if *spent_ns >= MUTEX_SPIN_MAX_NS {
            return false;
        }
        // Every check above reads shared state only: the polls may fold.
        let t0 = k.m.now();
        spin_relax(k, polls_left(*spent_ns)).await;
        *spent_ns += k.m.now() - t0;
    }
    true
}

/// `osq_lock()`: queue as a spinner; only the queue head spins on the owner. Gives up (and
/// leaves the queue) on need_resched. Returns whether this task heads the queue.
///
/// Linux: kernel/locking/osq_lock.c osq_lock().
///
/// Deviation: a FIFO of task ids instead of per-CPU MCS nodes (see `Mutex::osq`).
async fn osq_lock(k: &Kernel, m: MutexId, me: TaskId, spent_ns: &mut Nanos) -> bool {
    k.st().mutexes[m.idx()].osq.push_back(me);
    loop {
        if k.st().mutexes[m.idx()].osq.front() == Some(&me) {
            return true;
        }
        if k.need_resched() || *spent_ns >= MUTEX_SPIN_MAX_NS {
            osq_unlock(k, m, me);
            return false;
        }
        // As in mutex_spin_on_owner(): the checks read shared state only.
        let t0 = k.m.now();
        spin_relax(k, polls_left(*spent_ns)).await;
        *spent_ns += k.m.now() - t0;
    }
}

/// `osq_unlock()` (and the unqueue path of `osq_lock()`): leave the spinner queue.
///
/// Linux: kernel/locking/osq_lock.c osq_unlock().
fn osq_unlock(k: &Kernel, m: MutexId, me: TaskId) {
    let s = &mut *k.st();
    let osq = &mut s.mutexes[m.idx()].osq;
    let i = osq.iter().position(|&t| t == me).expect("spinner not on the osq");
    osq.remove(i);
}

/// `mutex_optimistic_spin()` (M-4): spin for the lock while its owner runs on a CPU and this
/// task need not reschedule. A newcomer (`is_waiter` false) first queues on the OSQ; the
/// first waiter spins directly, alongside the OSQ head. Returns true if the lock was taken.
/// If spinning stopped because of need_resched, this task reschedules first (as
/// TASK_RUNNING), so it is not preempted right after taking the lock.
///
/// Linux: kernel/locking/mutex.c mutex_optimistic_spin().
async fn mutex_optimistic_spin(k: &Kernel, m: MutexId, me: TaskId, is_waiter: bool) -> bool {
    if !k.st().feat.mutex_spin_on_owner {
        return false;
    }
    let mut spent_ns: Nanos = 0;
    let mut acquired = false;
    let mut queued = false;
    let go = if is_waiter {
        true
    } else if mutex_can_spin_on_owner(k, m) && osq_lock(k, m, me, &mut spent_ns).await {
        queued = true;
        true
    } else {
        false
    };
    if go {
        loop {
            match mutex_trylock_common(k, m, me, false) {
                None => {
                    acquired = true;
                    break;
                }
                Some(owner) => {
                    if !mutex_spin_on_owner(k, m, owner, &mut spent_ns).await {
                        break;
                    }
                }
            }
            if spent_ns >= MUTEX_SPIN_MAX_NS {
                break;
            }
            // The next iteration's trylock may take the lock: one poll, never folded.
            let t0 = k.m.now();
            spin_relax(k, 1).await;
            spent_ns += k.m.now() - t0;
        }
    }
    if queued {
        osq_unlock(k, m, me);
    }
    if !acquired && k.need_resched() {
        set_current_state(k, me, TASK_RUNNING);
        schedule_preempt_disabled(k).await;
    }
    acquired
}

/// `mutex_lock()`: take the mutex, sleeping TASK_UNINTERRUPTIBLE until it is ours.
///
/// Linux: kernel/locking/mutex.c mutex_lock() → __mutex_trylock_fast(), else
/// __mutex_lock_slowpath() → __mutex_lock_common().
///
/// Deviation: the fast path is charged `mutex_fast_ns` (one lock+unlock pair, K-12) here;
/// the fast unlock is free.
pub async fn mutex_lock(k: &Kernel, m: MutexId) {
    if k.st().mutexes[m.idx()].io {
        return mutex_lock_io(k, m).await;
    }
    let me = k.current();
    let fast_ns = k.st().costs.mutex_fast_ns;
    k.m.delay(fast_ns).await;
    if mutex_trylock_fast(k, m, me) {
        return;
    }
    let r = mutex_lock_common(k, m, me, TASK_UNINTERRUPTIBLE).await;
    assert_eq!(r, Ok(()), "an uninterruptible mutex wait was interrupted");
    assert_eq!(k.st().mutexes[m.idx()].owner, Some(me));
    assert!(!k.st().mutexes[m.idx()].flags.contains(MutexFlags::PICKUP));
}

/// `mutex_lock_interruptible()`: `mutex_lock()` sleeping TASK_INTERRUPTIBLE; returns
/// `Err(Eintr)` without the lock if a signal is pending while it waits.
///
/// Linux: kernel/locking/mutex.c mutex_lock_interruptible() →
/// __mutex_lock_interruptible_slowpath() → __mutex_lock_common(TASK_INTERRUPTIBLE).
pub async fn mutex_lock_interruptible(k: &Kernel, m: MutexId) -> Result<(), Eintr> {
    let me = k.current();
    let fast_ns = k.st().costs.mutex_fast_ns;
    k.m.delay(fast_ns).await;
    if mutex_trylock_fast(k, m, me) {
        return Ok(());
    }
    mutex_lock_common(k, m, me, TASK_INTERRUPTIBLE).await?;
    assert_eq!(k.st().mutexes[m.idx()].owner, Some(me));
    assert!(!k.st().mutexes[m.idx()].flags.contains(MutexFlags::PICKUP));
    Ok(())
}

/// `mutex_lock_io()`: `mutex_lock()` between `io_schedule_prepare()` and
/// `io_schedule_finish()`, so the task counts as in iowait (`p->in_iowait`) while it sleeps
/// for the lock, and a CPU it blocks on counts it in `nr_iowait`.
///
/// Linux: kernel/locking/mutex.c mutex_lock_io(), kernel/sched/core.c io_schedule_prepare().
async fn mutex_lock_io(k: &Kernel, m: MutexId) {
    let me = k.current();
    let token = std::mem::replace(&mut k.st().tasks[me.idx()].in_iowait, true);
    let fast_ns = k.st().costs.mutex_fast_ns;
    k.m.delay(fast_ns).await;
    if !mutex_trylock_fast(k, m, me) {
        let r = mutex_lock_common(k, m, me, TASK_UNINTERRUPTIBLE).await;
        assert_eq!(r, Ok(()), "an uninterruptible mutex wait was interrupted");
    }
    k.st().tasks[me.idx()].in_iowait = token;
}

/// `__mutex_lock_common()` for a plain mutex (M-3, M1–M4, M11). The order of steps:
///
/// 1. preemption off; `__mutex_trylock()`; if the lock is taken and the spin will be tried,
///    `lock_contended` (`LockContended` event) now, so the wait includes the spin; then
///    `mutex_optimistic_spin()` as a newcomer (`LockAcquired` if the spin took the lock);
/// 2. `wait_lock`; `__mutex_trylock()` again; else append at the tail (`__mutex_add_waiter`,
///    WAITERS when first), `lock_contended` (`LockContended` event) unless step 1 emitted it;
/// 3. [proxy] `blocked_lock`, `blocked_on = m`; state = `state` (M1);
/// 4. loop: `__mutex_trylock()` → acquired; [proxy] drop `blocked_lock`;
///    `signal_pending_state()` → the error path (below); drop `wait_lock`;
///    `schedule_preempt_disabled()`; `first` = head of the list?; `wait_lock`, [proxy]
///    `blocked_lock`, `blocked_on = m` again; state again (M2); `__mutex_trylock_or_handoff
///    (first)` → acquired; if first: [proxy] `blocked_on = None`, drop `blocked_lock`; drop
///    `wait_lock`; `mutex_optimistic_spin()` as the waiter; `wait_lock`, [proxy]
///    `blocked_lock`, `blocked_on = m`; state again (M3); acquired → leave the loop;
/// 5. acquired: [proxy] `blocked_on = None`; TASK_RUNNING; [proxy] drop `blocked_lock` (M4);
///    unlink (`__mutex_remove_waiter`, all flags cleared if the list empties);
///    `LockAcquired`; drop `wait_lock`; preemption back on.
///
/// The error path (`err:`, only for an interruptible `state`), entered with `wait_lock` held
/// and `blocked_lock` not: [proxy] `clear_task_blocked_on()` (which takes `blocked_lock`;
/// it ends a waking mark too, which Linux keeps in the same field); TASK_RUNNING;
/// `__mutex_remove_waiter()`; `LockInterrupted`; drop `wait_lock`; preemption back on;
/// `Err(Eintr)`.
///
/// Linux: kernel/locking/mutex.c __mutex_lock_common() (the error path as in the v29-era
/// johnstultz-work/linux-dev b65ff9a1a64e93d274a574e8d1e91d5cd486bda3, the tree with
/// PROXY_WAKING: the signal check after `blocked_lock` is dropped, `clear_task_blocked_on()`
/// first on `err:`; the later 663edfe3177933d419c5a9e761a73cd089480291 has the same path).
///
/// Deviation: Linux brackets the newcomer's spin with `contention_begin(LCB_F_MUTEX |
/// LCB_F_SPIN)` and `contention_end`, and the sleeping wait with a second
/// `contention_begin(LCB_F_MUTEX)`; the model emits one `LockContended`/`LockAcquired` pair per
/// contended acquisition, starting where the spin starts, so a task that spins 10 ms for a
/// lock shows a 10 ms lock wait (and one `lock_wait` slice in the trace).
async fn mutex_lock_common(k: &Kernel, m: MutexId, me: TaskId, state: u32) -> Result<(), Eintr> {
    let slow_ns = k.st().costs.mutex_slowpath_ns;
    k.m.delay(slow_ns).await;
    preempt_disable(k);
    if mutex_trylock(k, m, me) {
        preempt_enable_no_resched(k);
        preempt_point(k).await;
        return Ok(());
    }
    // The same test mutex_optimistic_spin() starts with, at the same instant: whether this
    // task is about to spin on the owner, i.e. starts waiting now.
    let spins = k.st().feat.mutex_spin_on_owner && mutex_can_spin_on_owner(k, m);
    if spins {
        trace_lock_contended(&mut k.st(), me, LockName::Mutex(m));
    }
    if mutex_optimistic_spin(k, m, me, false).await {
        if spins {
            trace_lock_acquired(&mut k.st(), me, LockName::Mutex(m));
        }
        preempt_enable_no_resched(k);
        preempt_point(k).await;
        return Ok(());
    }
    k.mutex_wait_lock(m).await;
    if mutex_trylock(k, m, me) {
        if spins {
            trace_lock_acquired(&mut k.st(), me, LockName::Mutex(m));
        }
        k.mutex_wait_unlock(m).await;
        preempt_enable_no_resched(k);
        preempt_point(k).await;
        return Ok(());
    }
    let proxy = proxy_on(k, m);
    mutex_add_waiter(&mut k.st(), m, me, spins);
    if proxy {
        k.blocked_lock(me).await;
        set_task_blocked_on(k, me, m);
    }
    set_current_state(k, me, state);
    if let Err(e) = mutex_wait_for_lock(k, m, me, proxy, state).await {
        if proxy {
            k.blocked_lock(me).await;
            clear_task_blocked_on(k, me, m);
            k.st().tasks[me.idx()].proxy_waking = false;
            k.blocked_unlock(me).await;
        }
        set_current_state(k, me, TASK_RUNNING);
        mutex_remove_waiter(&mut k.st(), m, me);
        crate::locking::trace_lock_interrupted(&mut k.st(), me, LockName::Mutex(m));
        k.mutex_wait_unlock(m).await;
        preempt_enable_no_resched(k);
        preempt_point(k).await;
        return Err(e);
    }
    if proxy {
        clear_task_blocked_on(k, me, m);
    }
    set_current_state(k, me, TASK_RUNNING);
    if proxy {
        k.blocked_unlock(me).await;
    }
    mutex_remove_waiter(&mut k.st(), m, me);
    trace_lock_acquired(&mut k.st(), me, LockName::Mutex(m));
    k.mutex_wait_unlock(m).await;
    preempt_enable_no_resched(k);
    preempt_point(k).await;
    Ok(())
}

/// `__mutex_add_waiter()`: queue `me` at the tail (FIFO), WAITERS with the first waiter;
/// the lock wait starts here unless it started with the spin. Under `wait_lock`.
///
/// Linux: kernel/locking/mutex.c __mutex_add_waiter().
fn mutex_add_waiter(s: &mut SchedState, m: MutexId, me: TaskId, spins: bool) {
    let mx = &mut s.mutexes[m.idx()];
    assert!(!mx.wait_list.contains(&me), "task queued twice on a mutex");
    if mx.wait_list.is_empty() {
        mx.flags.insert(MutexFlags::WAITERS);
    }
    mx.wait_list.push_back(me);
    let t = &mut s.tasks[me.idx()];
    assert!(t.blocked_on.is_none(), "a running task has blocked_on set");
    t.waiting_on = Some(WaitTarget::Mutex(m));
    if !spins {
        trace_lock_contended(s, me, LockName::Mutex(m));
    }
}

/// The sleeping wait of `__mutex_lock_common()` (step 4 above): try, sleep, and as the first
/// waiter spin again, until the lock is ours. Entered and left with `wait_lock` (and, with
/// `proxy`, `blocked_lock`) held and the task in `state`. Returns `Err(Eintr)` when a signal
/// is pending for an interruptible `state`, with `wait_lock` held and `blocked_lock` not.
///
/// Linux: kernel/locking/mutex.c __mutex_lock_common(), its `for (;;)` loop.
async fn mutex_wait_for_lock(
    k: &Kernel,
    m: MutexId,
    me: TaskId,
    proxy: bool,
    state: u32,
) -> Result<(), Eintr> {
    loop {
        // Serialised against an unlock's handoff by wait_lock: pick a handoff up first.
        if mutex_trylock(k, m, me) {
            break;
        }
        if proxy {
            k.blocked_unlock(me).await;
        }
        // Under wait_lock, so a cancellation is ordered against mutex_unlock()'s handoff.
        if signal_pending_state(&k.st(), me, state) {
            return Err(Eintr);
        }
        k.mutex_wait_unlock(m).await;
        schedule_preempt_disabled(k).await;
        let first = k.st().mutexes[m.idx()].wait_list.front() == Some(&me);
        k.mutex_wait_lock(m).await;
        if proxy {
            k.blocked_lock(me).await;
            // The unlocker that woke us cleared it (M2).
            set_task_blocked_on(k, me, m);
        }
        set_current_state(k, me, state);
        // Either the lock is ours now, or (as the first waiter) the owner must hand it over.
        if mutex_trylock_common(k, m, me, first).is_none() {
            break;
        }
        if first {
            // Spinning may schedule: look like an ordinary runnable task meanwhile (M3).
            if proxy {
                clear_task_blocked_on(k, me, m);
                k.blocked_unlock(me).await;
            }
            k.mutex_wait_unlock(m).await;
            let got = mutex_optimistic_spin(k, m, me, true).await;
            k.mutex_wait_lock(m).await;
            if proxy {
                k.blocked_lock(me).await;
                set_task_blocked_on(k, me, m);
            }
            set_current_state(k, me, state);
            if got {
                break;
            }
        }
    }
    Ok(())
}

/// `__mutex_remove_waiter()`: unlink the waiter (acquiring, or leaving on a signal); an
/// emptied list clears every flag. Under `wait_lock`.
///
/// Linux: kernel/locking/mutex.c __mutex_remove_waiter().
fn mutex_remove_waiter(s: &mut SchedState, m: MutexId, me: TaskId) {
    let mx = &mut s.mutexes[m.idx()];
    let i = mx
        .wait_list
        .iter()
        .position(|&t| t == me)
        .expect("leaving waiter not on the wait list");
    mx.wait_list.remove(i);
    if mx.wait_list.is_empty() {
        mx.flags = MutexFlags::EMPTY;
    }
    let t = &mut s.tasks[me.idx()];
    t.waiting_on = None;
    assert!(
        t.blocked_on.is_none(),
        "blocked_on set when leaving the wait list"
    );
}

/// `mutex_unlock()`: release the mutex; the caller's preemption point follows in the
/// syscall layer.
///
/// Linux: kernel/locking/mutex.c mutex_unlock() → __mutex_unlock_fast(), else
/// __mutex_unlock_slowpath().
pub async fn mutex_unlock(k: &Kernel, m: MutexId) {
    let me = k.current();
    let not_owner = {
        let s = k.st();
        let mx = &s.mutexes[m.idx()];
        if mx.owner != Some(me) || mx.flags.contains(MutexFlags::PICKUP) {
            Some(format!(
                "mutex {} unlocked by a thread that does not hold it",
                mx.name
            ))
        } else {
            None
        }
    };
    if let Some(e) = not_owner {
        k.violation("workload_unlock_not_owner", e);
        return;
    }
    if mutex_unlock_fast(k, m, me) {
        return;
    }
    mutex_unlock_slowpath(k, m, me).await;
}

/// `__mutex_unlock_slowpath()` (M-5..M-9, v29 9/9): with a `blocked_donor` (the task that
/// was lending its context to us through a chain walk) behave as if HANDOFF were set; else
/// without HANDOFF release the task part at once (flags kept) and stop if nobody waits.
/// Under `wait_lock` and our `blocked_lock`, pick the donor if it still waits on this mutex
/// (its `blocked_lock` nested) and only then clear our `blocked_donor`, else the FIFO head;
/// mark it waking (PROXY_WAKING); hand the lock to it as owner|PICKUP if handing off; drop
/// the locks, then wake it.
///
/// Nothing here reschedules an owner that runs as a proxy, also when this unlock breaks its
/// donor's chain: the owner runs on the donor's context until its CPU's next pick, with
/// `blocked_donor` used up, and a chain that re-forms meanwhile gets the FIFO head at the
/// next unlock (`invariants::handoff::DOC`). The tree's slow path has no resched either, and
/// the wakeup reschedules only when the woken task is `rq->donor` (`proxy_needs_return()`).
///
/// Linux: kernel/locking/mutex.c __mutex_unlock_slowpath(), __mutex_handoff() (v29 9/9 as
/// posted on LKML and in johnstultz-work/linux-dev: `current->blocked_donor = NULL` inside
/// `if (next_lock == lock)`; b65ff9a1a64e checked for a resched: none), kernel/sched/core.c
/// proxy_needs_return() (32d34d761ad6).
async fn mutex_unlock_slowpath(k: &Kernel, m: MutexId, me: TaskId) {
    let slow_ns = k.st().costs.mutex_slowpath_ns;
    k.m.delay(slow_ns).await;
    // Preemption stays off over the whole slow path so blocked_donor cannot change between
    // the two steps (M5).
    preempt_disable(k);
    let proxy = proxy_on(k, m);
    let use_donor = proxy && k.st().feat.blocked_donor && k.st().tasks[me.idx()].blocked_donor.is_some();
    // Release before taking wait_lock, so that contenders (spinners) go on at once; with
    // HANDOFF (or a blocked_donor) the owner field must stay ours until it is set to `next`.
    let (handoff, waiters) = {
        let s = &mut *k.st();
        let mx = &mut s.mutexes[m.idx()];
        assert_eq!(mx.owner, Some(me), "unlock slowpath by a non-owner");
        assert!(!mx.flags.contains(MutexFlags::PICKUP));
        if use_donor || mx.flags.contains(MutexFlags::HANDOFF) {
            (true, true)
        } else {
            mx.owner = None;
            (false, mx.flags.contains(MutexFlags::WAITERS))
        }
    };
    if !waiters {
        preempt_enable_no_resched(k);
        return;
    }
    k.mutex_wait_lock(m).await;
    let mut next = None;
    if proxy {
        k.blocked_lock(me).await;
        let donor = if k.st().feat.blocked_donor {
            k.st().tasks[me.idx()].blocked_donor
        } else {
            None
        };
        if let Some(d) = donor {
            let lock = k.st().tasks[d.idx()].blocked_lock;
            k.raw_spin_lock(lock, LockClass::BlockedLockNested, LockName::Other(lock.0))
                .await;
            if k.st().tasks[d.idx()].blocked_on == Some(m) {
                // M6: the donor that was boosting us through this very lock gets it, and only
                // then is the link used up. A donor boosting us through another mutex we hold
                // stays recorded for that mutex's unlock (`next_lock == lock` in the tree).
                clear_task_blocked_on(k, d, m);
                k.st().tasks[d.idx()].proxy_waking = true;
                k.st().tasks[me.idx()].blocked_donor = None;
                next = Some(d);
            }
            k.raw_spin_unlock(lock).await;
        }
        k.blocked_unlock(me).await;
    }
    if next.is_none() {
        next = k.st().mutexes[m.idx()].wait_list.front().copied();
        if let (Some(n), true) = (next, proxy) {
            // M7: the FIFO head, marked waking (PROXY_WAKING, v23-v29): it must be checked
            // for return migration before it may run, wherever it was migrated as a donor.
            k.blocked_lock(n).await;
            clear_task_blocked_on(k, n, m);
            k.st().tasks[n.idx()].proxy_waking = true;
            k.blocked_unlock(n).await;
        }
    }
    let wrong_handoff = crate::invariants::handoff::check(&mut k.st(), m, me, next);
    if let Some(detail) = wrong_handoff {
        k.violation("proxy_handoff_to_booster", detail);
    }
    if handoff {
        // __mutex_handoff(): owner = next | PICKUP, WAITERS kept, HANDOFF cleared.
        let s = &mut *k.st();
        let mx = &mut s.mutexes[m.idx()];
        assert_eq!(mx.owner, Some(me));
        let waiters = mx.flags.contains(MutexFlags::WAITERS);
        mx.flags = MutexFlags::EMPTY;
        if waiters {
            mx.flags.insert(MutexFlags::WAITERS);
        }
        mx.owner = next;
        if next.is_some() {
            mx.flags.insert(MutexFlags::PICKUP);
        }
    }
    k.mutex_wait_unlock(m).await;
    preempt_enable_no_resched(k);
    if let Some(n) = next {
        wake_up_process(k, n).await;
    }
}
