//! `struct rt_mutex`: sleeping locks with priority inheritance (the `pi` protocol).
//!
//! Linux: kernel/locking/rtmutex.c, kernel/locking/rtmutex_common.h, and the scheduler side
//! in kernel/sched/core.c (rt_mutex_setprio(), __rt_effective_prio(), rt_mutex_pre_schedule()).
//!
//! The pieces (M-10..M-16):
//! - the owner word: [`RtMutex::owner`] plus the `RT_MUTEX_HAS_WAITERS` bit
//!   ([`RtMutex::has_waiters`]); while the bit is set both fast paths fail and every lock and
//!   unlock goes through `wait_lock`;
//! - the wait tree [`RtMutex::waiters`]: one [`RtWaiter`] per blocked task, strongest waiter
//!   prio first, FIFO among equals;
//! - each owner's `pi_waiters` ([`crate::task::Task::pi_waiters`]): the top waiter of every
//!   rt_mutex it owns; its effective priority is `min(normal_prio, prio of the top
//!   pi_waiter's task)` (M-11), applied by [`rt_mutex_setprio`];
//! - the chain walk `rt_mutex_adjust_prio_chain`: a blocked owner's waiter is requeued on
//!   the lock it waits for and that lock's owner is adjusted in turn, link by link.
//!
//! Lock order (M-10, T-10): `wait_lock` → `pi_lock` → rq lock. The chain walk holds a task's
//! `pi_lock` when it needs the next lock's `wait_lock`, the reverse order, so it only
//! trylocks it and backs off.
//!
//! Deviation: waiters are ordered by prio and then FIFO; SCHED_DEADLINE waiters (all of prio
//! -1) are not ordered by deadline among themselves (`rt_waiter_node_less()` compares
//! deadlines). A DL top waiter lends its reservation to a non-DL owner (D-21, see
//! [`rt_mutex_setprio`] and `dl_pi_boost()` in deadline.rs, whose module doc lists how that
//! boost differs from Linux's); a SCHED_DEADLINE owner keeps its own.
//!
//! Deviation: there is no `pi_top_task` pointer; [`rt_mutex_setprio`] takes the new effective
//! prio instead of the donor task, and its caller skips the rq lock when the effective prio
//! does not change (Linux takes it just to update `pi_top_task`). Nothing the model observes
//! reads `pi_top_task`.
//!
//! Deviation: only the minimal chain walk (`RT_MUTEX_MIN_CHAINWALK`, no
//! CONFIG_DEBUG_RT_MUTEXES): full deadlock detection and the `requeue = false` walk are not
//! modelled. The checks Linux makes regardless of the mode are kept: relocking an owned lock,
//! the walk reaching the original lock or a lock owned by the blocking task, and
//! `max_lock_depth`.

use std::collections::BTreeSet;

use sim::{CpuId, LockId, Nanos};

use crate::locking::lockdep::LockClass;
use crate::locking::usermutex::WaitTarget;
use crate::locking::{trace_lock_acquired, trace_lock_contended};
use crate::sched::class::check_class_changed;
use crate::sched::core::*;
use crate::sched::{Class, SchedState, WakeFlags};
use crate::signal::{signal_pending_state, Eintr};
use crate::task::state::*;
use crate::task::{OnRq, TaskId};
use crate::tracepoints::{EventKind, LockName};

/// `max_lock_depth` (kernel/locking/rtmutex.c, sysctl `kernel.max_lock_depth`): the most
/// locks one chain walk follows before it gives up with -EDEADLK.
pub const MAX_LOCK_DEPTH: u32 = 1024;

/// `DEFAULT_PRIO`: the waiter prio of every non-RT task.
const DEFAULT_PRIO: i32 = 120;

/// Granularity of the model's busy-wait loops (backoff of the chain walk's trylock, owner
/// spinning).
const RT_SPIN_POLL_NS: Nanos = 10;

/// `struct rt_mutex_waiter` as a tree key: the waiter prio (`waiter->prio`, see
/// [`waiter_prio`]), then a FIFO ticket, then the task. The same type keys both trees a
/// waiter sits in: the lock's wait tree (ticket taken at `rt_mutex_enqueue`) and its owner's
/// `pi_waiters` (ticket taken at `rt_mutex_enqueue_pi`). A fresh ticket on every insertion
/// puts a waiter after its equals, as `rb_add_cached` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RtWaiter {
    pub prio: i32,
    pub seq: u64,
    pub task: TaskId,
}

sim::id_type! {
    /// Index of an rt_mutex in [`crate::sched::SchedState::rt_mutexes`]. A type apart from
    /// [`crate::locking::mutex::MutexId`]: the two kinds live in different arenas.
    pub struct RtMutexId;
}

/// `struct rt_mutex` (`struct rt_mutex_base` plus its name).
pub struct RtMutex {
    pub name: String,
    /// `rt_mutex_owner()`: the task part of the owner word. Protected by: `wait_lock`, except
    /// that the fast paths swap a word without the waiters bit atomically (cmpxchg).
    pub owner: Option<TaskId>,
    /// `RT_MUTEX_HAS_WAITERS`, bit 0 of the owner word. Set, both fast paths fail.
    /// Protected by: `wait_lock`.
    pub has_waiters: bool,
    /// `waiters`: the wait tree, strongest first (M-10). Protected by: `wait_lock`.
    pub waiters: BTreeSet<RtWaiter>,
    /// `wait_lock` (lock class [`LockClass::RtMutexWaitLock`]).
    pub wait_lock: LockId,
    /// Taken with `rt_mutex_lock_interruptible()`: a signal ends the wait with -EINTR
    /// (workload `"resources": {"M": {"interruptible": true}}` under protocol `pi`).
    pub interruptible: bool,
}

impl RtMutex {
    /// `__rt_mutex_base_init()`: free, no waiters.
    pub fn new(name: &str, wait_lock: LockId) -> RtMutex {
        RtMutex {
            name: name.to_string(),
            owner: None,
            has_waiters: false,
            waiters: BTreeSet::new(),
            wait_lock,
            interruptible: false,
        }
    }

    /// `rt_mutex_top_waiter()`.
    pub fn top_waiter(&self) -> Option<RtWaiter> {
        self.waiters.first().copied()
    }
}

/// Whether a waiter of prio `prio` may take a free lock ahead of `top`: only by beating it.
/// Equal-prio (lateral) steals exist only for PREEMPT_RT spinlocks, and never for RT tasks.
///
/// Linux: kernel/locking/rtmutex.c rt_mutex_steal() (without RT_MUTEX_BUILD_SPINLOCKS).
fn rt_mutex_steal(prio: i32, top: RtWaiter) -> bool {
    prio < top.prio
}

/// -EDEADLK from the chain walk or the early self-deadlock check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Edeadlk;

// ---------------------------------------------------------------------- trees (sync)

/// The prio a task queues with: its effective prio if RT, else `DEFAULT_PRIO` for every
/// non-RT task, so fair waiters are served FIFO whatever their nice.
///
/// Linux: kernel/locking/rtmutex.c __waiter_prio().
pub fn waiter_prio(s: &SchedState, p: TaskId) -> i32 {
    let prio = s.tasks[p.idx()].prio;
    if prio < 100 {
        prio
    } else {
        DEFAULT_PRIO
    }
}

fn next_ticket(s: &mut SchedState) -> u64 {
    s.rt_waiter_seq += 1;
    s.rt_waiter_seq
}

/// Queue `p`'s waiter on `m`'s wait tree with `p`'s current waiter prio. `wait_lock` held.
///
/// Linux: kernel/locking/rtmutex.c waiter_update_prio() followed by rt_mutex_enqueue().
fn rt_mutex_enqueue(s: &mut SchedState, m: RtMutexId, p: TaskId) {
    assert!(
        s.tasks[p.idx()].rt_waiter.is_none(),
        "task {p} queued twice on an rt_mutex"
    );
    let w = RtWaiter {
        prio: waiter_prio(s, p),
        seq: next_ticket(s),
        task: p,
    };
    *s.tasks[p.idx()].rt_waiter = Some(w);
    let inserted = s.rt_mutexes[m.idx()].waiters.insert(w);
    assert!(inserted, "duplicate waiter key on rt_mutex {m}");
}

/// Take `p`'s waiter off `m`'s wait tree (nothing if it is not queued). `wait_lock` held.
///
/// Linux: kernel/locking/rtmutex.c rt_mutex_dequeue().
fn rt_mutex_dequeue(s: &mut SchedState, m: RtMutexId, p: TaskId) {
    if let Some(w) = s.tasks[p.idx()].rt_waiter.take() {
        let removed = s.rt_mutexes[m.idx()].waiters.remove(&w);
        assert!(removed, "task {p}'s waiter is not on rt_mutex {m}'s wait tree");
    }
}

/// Insert waiter `w` (a queued waiter) into `owner`'s `pi_waiters`, keyed by the waiter's
/// prio. `owner`'s `pi_lock` and the lock's `wait_lock` held.
///
/// Linux: kernel/locking/rtmutex.c rt_mutex_enqueue_pi().
fn rt_mutex_enqueue_pi(s: &mut SchedState, owner: TaskId, w: TaskId) {
    let prio = s.tasks[w.idx()]
        .rt_waiter
        .expect("only a queued waiter can be a pi_waiter")
        .prio;
    assert!(
        !s.tasks[owner.idx()].pi_waiters.iter().any(|x| x.task == w),
        "task {w} is already a pi_waiter of task {owner}"
    );
    let key = RtWaiter {
        prio,
        seq: next_ticket(s),
        task: w,
    };
    s.tasks[owner.idx()].pi_waiters.insert(key);
}

/// Remove waiter `w` from `owner`'s `pi_waiters` (nothing if absent). Found by task: the key
/// it was inserted with may be older than the waiter's current prio (the walk requeues the
/// lock tree at step 7 and the pi tree only at step 11).
///
/// Linux: kernel/locking/rtmutex.c rt_mutex_dequeue_pi().
fn rt_mutex_dequeue_pi(s: &mut SchedState, owner: TaskId, w: TaskId) {
    let pw = &mut s.tasks[owner.idx()].pi_waiters;
    if let Some(key) = pw.iter().find(|x| x.task == w).copied() {
        pw.remove(&key);
    }
}

/// The task lending its priority to `p`: the task of `p`'s top pi_waiter.
///
/// Linux: kernel/locking/rtmutex.c rt_mutex_get_top_task(), task_top_pi_waiter().
pub fn rt_mutex_get_top_task(s: &SchedState, p: TaskId) -> Option<TaskId> {
    s.tasks[p.idx()].pi_waiters.first().map(|w| w.task)
}

/// `prio` lowered to the priority `p` inherits, if any (M-11). Used for the boost itself and
/// by `sched_setattr()` so that a policy change keeps a boost.
///
/// Linux: kernel/sched/core.c rt_effective_prio(), __rt_effective_prio().
pub fn rt_effective_prio(s: &SchedState, p: TaskId, prio: i32) -> i32 {
    match rt_mutex_get_top_task(s, p) {
        Some(top) => prio.min(s.tasks[top.idx()].prio),
        None => prio,
    }
}

// ---------------------------------------------------------------------- rt_mutex_setprio

/// Change `p`'s effective priority to `newprio` (PI boost or deboost, M-15): dequeue/put
/// (SAVE|MOVE), new `prio` and class (T-8), enqueue/set (an RT task losing priority goes to
/// the head of its new list, R-2), then the class-change hooks or `prio_changed`. Emits
/// `sched_pi_setprio` on this CPU when the prio changes; does nothing otherwise. Called
/// with `p`'s `pi_lock` and its rq lock (`cpu`) held; balance callbacks the hooks queue are
/// the caller's to run before it drops the rq lock.
///
/// Linux: kernel/sched/core.c rt_mutex_setprio().
///
/// Deviation: takes the new prio rather than the donor task (no `pi_top_task`, see the
/// module doc); `normal_prio`, policy, nice and load weight are untouched, as in Linux.
pub fn rt_mutex_setprio(s: &mut SchedState, cpu: CpuId, p: TaskId, newprio: i32) {
    use crate::sched::{DequeueFlags, EnqueueFlags};
    let (oldprio, prev_class) = {
        let t = &s.tasks[p.idx()];
        assert!(!t.is_idle_task, "rt_mutex_setprio on an idle task");
        assert!(!t.is_stopper, "rt_mutex_setprio on a stopper");
        assert_eq!(t.cpu, cpu, "rt_mutex_setprio without task_rq(p) locked");
        (t.prio, t.class)
    };
    if newprio == oldprio {
        // Also a DL owner's: it keeps its own reservation (see deadline.rs, D-21).
        return;
    }
    assert!((-1..140).contains(&newprio), "PI prio {newprio} out of range");
    let this = s.m.this_cpu();
    let task = s.tasks[p.idx()].task_ref();
    emit(
        s,
        this,
        EventKind::SchedPiSetprio {
            task,
            oldprio,
            newprio,
        },
    );
    let new_class = class_of(newprio, false, false);
    // A delayed fair task leaves for good before it changes class (switched_from_fair
    // expects no delayed entity); the fair class blocks it itself.
    if s.tasks[p.idx()].se.sched_delayed && new_class != prev_class {
        dequeue_task(
            s,
            cpu,
            p,
            DequeueFlags::SLEEP | DequeueFlags::DELAYED | DequeueFlags::NOCLOCK,
        );
    }
    let queued = s.tasks[p.idx()].on_rq == OnRq::Queued;
    let running = s.rqs[cpu.idx()].donor == p;
    if queued {
        dequeue_task(
            s,
            cpu,
            p,
            DequeueFlags::SAVE | DequeueFlags::MOVE | DequeueFlags::NOCLOCK,
        );
    }
    if running {
        put_prev_task(s, cpu, p);
    }
    let mut en = EnqueueFlags::RESTORE | EnqueueFlags::MOVE | EnqueueFlags::NOCLOCK;
    if new_class == Class::Rt && oldprio < newprio {
        // M-15/R-2: a deboosted RT task resumes ahead of its new equals.
        en |= EnqueueFlags::HEAD;
    }
    if new_class == Class::Deadline {
        // D-21: run on the DL top waiter's reservation, refilled on the boost.
        let top = rt_mutex_get_top_task(s, p).expect("a DL boost has a DL top waiter");
        let boosted = crate::sched::deadline::dl_pi_boost(s, p, top);
        assert!(boosted, "a SCHED_DEADLINE owner's prio cannot change");
        en |= EnqueueFlags::REPLENISH;
    }
    // __setscheduler_prio().
    s.tasks[p.idx()].prio = newprio;
    s.tasks[p.idx()].class = new_class;
    if queued {
        enqueue_task(s, cpu, p, en);
    }
    if running {
        set_next_task(s, cpu, p, false);
        // The donor's class changed: next_class follows it (C4, I13).
        s.rqs[cpu.idx()].next_class = new_class;
    }
    check_class_changed(s, cpu, p, prev_class, oldprio);
    assert_eq!(s.tasks[p.idx()].prio, newprio);
}

/// Recompute `p`'s effective prio from its `pi_waiters` and apply it. `p`'s `pi_lock` held;
/// takes `p`'s rq lock (only if the prio changes), runs the balance callbacks and drops it.
///
/// Linux: kernel/locking/rtmutex.c rt_mutex_adjust_prio() (with the locking half of
/// kernel/sched/core.c rt_mutex_setprio()).
async fn rt_mutex_adjust_prio(k: &Kernel, p: TaskId) {
    let unchanged = {
        let s = k.st();
        rt_effective_prio(&s, p, s.tasks[p.idx()].normal_prio) == s.tasks[p.idx()].prio
    };
    if unchanged {
        return;
    }
    let cpu = __task_rq_lock(k, p).await;
    {
        let s = &mut *k.st();
        update_rq_clock(s, cpu);
        let newprio = rt_effective_prio(s, p, s.tasks[p.idx()].normal_prio);
        rt_mutex_setprio(s, cpu, p, newprio);
    }
    do_balance_callbacks(k, cpu).await;
    k.rq_unlock(cpu).await;
}

// ---------------------------------------------------------------------- chain walk

/// Pay for one link of priority inheritance (K-15).
async fn pi_chain_step(k: &Kernel) {
    let cost = k.st().costs.pi_chain_step_ns;
    if cost > 0 {
        k.m.delay(cost).await;
    }
}

async fn lock_wait_lock(k: &Kernel, m: RtMutexId) -> LockId {
    let lock = k.st().rt_mutexes[m.idx()].wait_lock;
    k.raw_spin_lock(lock, LockClass::RtMutexWaitLock, LockName::Other(lock.0))
        .await;
    lock
}

/// Propagate a priority change up the chain of blocked owners, starting at `task` (an owner
/// whose priority may just have changed and which is itself blocked on `next_lock`). Each
/// link, with numbers of Linux's step table:
/// 1. take `task`'s `pi_lock`; 2. its waiter (`pi_blocked_on`);
/// 3. `check_exit_conditions_1`: stop if `task` is no longer blocked, if `orig_lock` lost
///    its owner, if `task` moved to another lock than `next_lock`, if `top_waiter` is no
///    longer `task`'s top pi_waiter, or if the waiter prio already equals `task`'s (the prio
///    stopped changing);
/// 4. the next lock; 5. trylock its `wait_lock` (reverse order: back off and retry);
/// 6. `check_exit_conditions_2`: the next lock is `orig_lock` or is owned by `top_task` ⇒
///    -EDEADLK;
/// 7. requeue `task`'s waiter with its new prio; 8. drop `task`'s `pi_lock`;
/// 9. `check_exit_conditions_3`: no owner ⇒ end (waking `task` if it became the top
///    waiter, so that it tries to take the free lock);
/// 10. the owner becomes `task`, take its `pi_lock`;
/// 11. requeue the pi_waiters: the requeued waiter became top ⇒ it replaces the old top in
///     the owner's `pi_waiters`; it was top and no longer is ⇒ the new top replaces it; then
///     `rt_mutex_adjust_prio()`;
/// 12. `check_exit_conditions_4`: remember where the owner is blocked and the lock's top
///     waiter; 13. drop both locks; continue only if the owner is blocked and our waiter is
///     still the lock's top waiter.
///
/// At most `max_lock_depth` links (then -EDEADLK). Called with no lock held.
///
/// Linux: kernel/locking/rtmutex.c rt_mutex_adjust_prio_chain().
///
/// Deviation: minimal chain walk only (see the module doc): `detect_deadlock` is always
/// false, so the walk never continues just to look for a cycle.
async fn rt_mutex_adjust_prio_chain(
    k: &Kernel,
    task: TaskId,
    orig_lock: Option<RtMutexId>,
    next_lock: Option<RtMutexId>,
    orig_waiter: Option<TaskId>,
    top_task: TaskId,
) -> Result<(), Edeadlk> {
    let mut task = task;
    let mut next_lock = next_lock;
    let mut top_waiter = orig_waiter;
    let mut depth = 0u32;
    loop {
        // again:
        depth += 1;
        if depth > MAX_LOCK_DEPTH {
            return Err(Edeadlk);
        }
        pi_chain_step(k).await;
        // retry: steps 1..5.
        let mut tries = 0u64;
        let lock = loop {
            tries += 1;
            assert!(tries < 1_000_000, "chain walk: wait_lock trylock never succeeds");
            k.pi_lock(task).await;
            let go = {
                let s = k.st();
                let t = &s.tasks[task.idx()];
                match t.pi_blocked_on {
                    None => None,
                    Some(l) => {
                        let w = t.rt_waiter.expect("pi_blocked_on without a queued waiter");
                        let orig_released =
                            orig_waiter.is_some() && s.rt_mutexes[orig_lock.unwrap().idx()].owner.is_none();
                        let not_top =
                            top_waiter.is_some_and(|tw| rt_mutex_get_top_task(&s, task) != Some(tw));
                        if orig_released || next_lock != Some(l) || not_top || w.prio == waiter_prio(&s, task)
                        {
                            None
                        } else {
                            Some(l)
                        }
                    }
                }
            };
            let Some(l) = go else {
                k.pi_unlock(task).await;
                return Ok(());
            };
            let wl = k.st().rt_mutexes[l.idx()].wait_lock;
            if k.raw_spin_trylock(wl, LockClass::RtMutexWaitLock) {
                break l;
            }
            k.pi_unlock(task).await;
            k.m.delay(RT_SPIN_POLL_NS).await;
        };
        let wl = k.st().rt_mutexes[lock.idx()].wait_lock;
        // Step 6.
        let deadlock = Some(lock) == orig_lock || k.st().rt_mutexes[lock.idx()].owner == Some(top_task);
        if deadlock {
            k.raw_spin_unlock(wl).await;
            k.pi_unlock(task).await;
            return Err(Edeadlk);
        }
        // Step 7.
        let prerequeue_top = {
            let s = &mut *k.st();
            let before = s.rt_mutexes[lock.idx()].top_waiter().map(|w| w.task);
            rt_mutex_dequeue(s, lock, task);
            rt_mutex_enqueue(s, lock, task);
            before
        };
        // Step 8.
        k.pi_unlock(task).await;
        let mut waiter = task;
        // Step 9.
        let (owner, top_now) = {
            let s = k.st();
            let l = &s.rt_mutexes[lock.idx()];
            (l.owner, l.top_waiter().map(|w| w.task))
        };
        let Some(owner) = owner else {
            if prerequeue_top != top_now {
                try_to_wake_up(k, waiter, TASK_UNINTERRUPTIBLE, WakeFlags::empty()).await;
            }
            k.raw_spin_unlock(wl).await;
            return Ok(());
        };
        // Step 10.
        task = owner;
        k.pi_lock(task).await;
        // Step 11.
        if top_now == Some(waiter) {
            {
                let s = &mut *k.st();
                let old = prerequeue_top.expect("the lock had a waiter before the requeue");
                rt_mutex_dequeue_pi(s, task, old);
                rt_mutex_enqueue_pi(s, task, waiter);
            }
            rt_mutex_adjust_prio(k, task).await;
        } else if prerequeue_top == Some(waiter) {
            {
                let s = &mut *k.st();
                rt_mutex_dequeue_pi(s, task, waiter);
                waiter = top_now.expect("the requeued waiter is still queued");
                rt_mutex_enqueue_pi(s, task, waiter);
            }
            rt_mutex_adjust_prio(k, task).await;
        }
        // Step 12.
        {
            let s = k.st();
            next_lock = s.tasks[task.idx()].pi_blocked_on;
            top_waiter = s.rt_mutexes[lock.idx()].top_waiter().map(|w| w.task);
        }
        // Step 13.
        k.pi_unlock(task).await;
        k.raw_spin_unlock(wl).await;
        if next_lock.is_none() || top_waiter != Some(waiter) {
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------------- lock

/// Whether `task` may take `m` now (M-13), and if so take it: the lock must be free and
/// `task` must be its top waiter, or there are no waiters, or `task` strictly beats the top
/// waiter (no equal-prio steal: that exists only for PREEMPT_RT spinlocks). On success
/// `task` stops being a waiter and the lock's new top waiter (if any) joins its
/// `pi_waiters`. Sets HAS_WAITERS first so that the owner's fast unlock fails meanwhile.
/// `wait_lock` held; `waiter` says whether `task` is queued on `m`.
///
/// Linux: kernel/locking/rtmutex.c try_to_take_rt_mutex(), rt_mutex_steal().
async fn try_to_take_rt_mutex(k: &Kernel, m: RtMutexId, task: TaskId, waiter: bool) -> bool {
    // Whether `task` ends up owning a lock that still has waiters: then it must take over
    // the top waiter as a pi_waiter (and clear its own pi_blocked_on).
    let with_waiters = {
        let s = &mut *k.st();
        // mark_rt_mutex_waiters().
        s.rt_mutexes[m.idx()].has_waiters = true;
        if s.rt_mutexes[m.idx()].owner.is_some() {
            return false;
        }
        let top = s.rt_mutexes[m.idx()].top_waiter();
        if waiter {
            let mine = s.tasks[task.idx()].rt_waiter.expect("queued waiter");
            let top = top.expect("a queued waiter means a non-empty tree");
            // The top waiter, or a waiter allowed to steal from it.
            if top.task != task && !rt_mutex_steal(mine.prio, top) {
                return false;
            }
            rt_mutex_dequeue(s, m, task);
            true
        } else {
            match top {
                // The top waiter stays queued; `task` must beat it.
                Some(top) if !rt_mutex_steal(waiter_prio(s, task), top) => return false,
                Some(_) => true,
                // No waiters: take it without the pi_lock dance.
                None => false,
            }
        }
    };
    if with_waiters {
        k.pi_lock(task).await;
        {
            let s = &mut *k.st();
            s.tasks[task.idx()].pi_blocked_on = None;
            if let Some(top) = s.rt_mutexes[m.idx()].top_waiter() {
                rt_mutex_enqueue_pi(s, task, top.task);
                // The new owner is at least as strong as every remaining waiter (it was the
                // top waiter or beat it), so it needs no boost.
                assert!(
                    waiter_prio(s, task) <= top.prio,
                    "rt_mutex {m}: new owner {task} is weaker than its top waiter"
                );
            }
        }
        k.pi_unlock(task).await;
    }
    // takeit: rt_mutex_set_owner() keeps HAS_WAITERS only if waiters remain.
    let s = &mut *k.st();
    let l = &mut s.rt_mutexes[m.idx()];
    l.owner = Some(task);
    l.has_waiters = !l.waiters.is_empty();
    true
}

/// Queue `task` as a waiter of `m` and, if it became the top waiter, boost the owner and walk
/// the chain from it (M-12). `wait_lock` held; dropped and retaken around the chain walk.
/// -EDEADLK if `task` owns `m` already or the walk finds a cycle or runs too deep.
///
/// Linux: kernel/locking/rtmutex.c task_blocks_on_rt_mutex().
async fn task_blocks_on_rt_mutex(k: &Kernel, m: RtMutexId, task: TaskId) -> Result<(), Edeadlk> {
    let owner = k.st().rt_mutexes[m.idx()].owner;
    if owner == Some(task) {
        return Err(Edeadlk);
    }
    k.pi_lock(task).await;
    let top_before = {
        let s = &mut *k.st();
        let before = s.rt_mutexes[m.idx()].top_waiter().map(|w| w.task);
        rt_mutex_enqueue(s, m, task);
        s.tasks[task.idx()].pi_blocked_on = Some(m);
        before
    };
    k.pi_unlock(task).await;
    let Some(owner) = owner else {
        return Ok(());
    };
    k.pi_lock(owner).await;
    let is_top = k.st().rt_mutexes[m.idx()].top_waiter().map(|w| w.task) == Some(task);
    let mut chain_walk = false;
    if is_top {
        pi_chain_step(k).await;
        {
            let s = &mut *k.st();
            if let Some(old) = top_before {
                rt_mutex_dequeue_pi(s, owner, old);
            }
            rt_mutex_enqueue_pi(s, owner, task);
        }
        rt_mutex_adjust_prio(k, owner).await;
        chain_walk = k.st().tasks[owner.idx()].pi_blocked_on.is_some();
    }
    let next_lock = k.st().tasks[owner.idx()].pi_blocked_on;
    k.pi_unlock(owner).await;
    if !chain_walk || next_lock.is_none() {
        return Ok(());
    }
    let wl = k.st().rt_mutexes[m.idx()].wait_lock;
    k.raw_spin_unlock(wl).await;
    let res = rt_mutex_adjust_prio_chain(k, owner, Some(m), next_lock, Some(task), task).await;
    lock_wait_lock(k, m).await;
    res
}

/// Take `task`'s waiter off `m` after a failed block (-EDEADLK) or an interrupted wait
/// (-EINTR); if it was the top waiter,
/// give the owner the new top waiter instead, readjust it and walk its chain. `wait_lock`
/// held (dropped and retaken around the walk).
///
/// Linux: kernel/locking/rtmutex.c remove_waiter().
async fn remove_waiter(k: &Kernel, m: RtMutexId, task: TaskId) {
    let (is_top, owner) = {
        let s = k.st();
        let l = &s.rt_mutexes[m.idx()];
        (l.top_waiter().map(|w| w.task) == Some(task), l.owner)
    };
    k.pi_lock(task).await;
    {
        let s = &mut *k.st();
        rt_mutex_dequeue(s, m, task);
        s.tasks[task.idx()].pi_blocked_on = None;
    }
    k.pi_unlock(task).await;
    let Some(owner) = owner.filter(|_| is_top) else {
        return;
    };
    k.pi_lock(owner).await;
    {
        let s = &mut *k.st();
        rt_mutex_dequeue_pi(s, owner, task);
        if let Some(top) = s.rt_mutexes[m.idx()].top_waiter() {
            rt_mutex_enqueue_pi(s, owner, top.task);
        }
    }
    rt_mutex_adjust_prio(k, owner).await;
    let next_lock = k.st().tasks[owner.idx()].pi_blocked_on;
    k.pi_unlock(owner).await;
    if next_lock.is_none() {
        return;
    }
    let wl = k.st().rt_mutexes[m.idx()].wait_lock;
    k.raw_spin_unlock(wl).await;
    // As in Linux the result of this deboost walk is ignored: an -EDEADLK (a cycle through
    // `m`, or the depth cap) only ends the walk early.
    let _ = rt_mutex_adjust_prio_chain(k, owner, Some(m), next_lock, None, task).await;
    lock_wait_lock(k, m).await;
}

/// Clear a HAS_WAITERS bit that `try_to_take_rt_mutex` left on a lock without waiters.
/// `wait_lock` held.
///
/// Linux: kernel/locking/rtmutex.c fixup_rt_mutex_waiters().
fn fixup_rt_mutex_waiters(s: &mut SchedState, m: RtMutexId) {
    let l = &mut s.rt_mutexes[m.idx()];
    if l.waiters.is_empty() {
        l.has_waiters = false;
    }
}

/// The S-6 submit hook, once before an rt_mutex wait (M-16): `sched_submit_work()` tells
/// workqueue and io workers that they are about to sleep and flushes plugged block I/O.
///
/// Linux: kernel/sched/core.c rt_mutex_pre_schedule().
async fn rt_mutex_pre_schedule(k: &Kernel) {
    let me = k.current();
    sched_submit_work(k, me).await;
}

/// The S-6 hook after an rt_mutex wait (M-16): `sched_update_worker()`.
///
/// Linux: kernel/sched/core.c rt_mutex_post_schedule().
fn rt_mutex_post_schedule(k: &Kernel) {
    let me = k.current();
    sched_update_worker(k, me);
}

/// Adaptive wait of the top waiter while `owner` holds `m`: true if the owner changed (try
/// again at once), false to sleep. Stops when the owner leaves its CPU, a reschedule is due,
/// or this waiter is the top waiter. No lock held.
///
/// Linux: kernel/locking/rtmutex.c rtmutex_spin_on_owner().
///
/// Note: this follows mainline's code, not its comment. The comment says to stop once the
/// waiter is no longer the top waiter; the condition (since the "avoid pointer dereference"
/// fix of the adaptive spinwait) stops when it *is* the top waiter. Only the top waiter gets
/// here, so in practice the owner is re-checked once before sleeping, and the waiter spins
/// only if a stronger waiter arrived after `wait_lock` was dropped.
async fn rtmutex_spin_on_owner(k: &Kernel, m: RtMutexId, me: TaskId, owner: TaskId) -> bool {
    loop {
        {
            let s = k.st();
            let l = &s.rt_mutexes[m.idx()];
            if l.owner != Some(owner) {
                return true;
            }
            let is_top = l.top_waiter().map(|w| w.task) == Some(me);
            if !s.tasks[owner.idx()].on_cpu || s.tasks[me.idx()].need_resched || is_top {
                return false;
            }
        }
        k.m.delay(RT_SPIN_POLL_NS).await;
    }
}

/// The wait loop: try to take the lock; else give up if a signal is pending for an
/// interruptible `state`; else drop `wait_lock`, sleep (or briefly spin), retake it and set
/// `state` again. Returns with `wait_lock` held: `Ok` with the lock taken, `Err(Eintr)`
/// still queued as a waiter (the caller removes it).
///
/// Linux: kernel/locking/rtmutex.c rt_mutex_slowlock_block().
async fn rt_mutex_slowlock_block(k: &Kernel, m: RtMutexId, me: TaskId, state: u32) -> Result<(), Eintr> {
    loop {
        if try_to_take_rt_mutex(k, m, me, true).await {
            return Ok(());
        }
        if signal_pending_state(&k.st(), me, state) {
            return Err(Eintr);
        }
        let (wl, owner) = {
            let s = k.st();
            let l = &s.rt_mutexes[m.idx()];
            let top = l.top_waiter().map(|w| w.task) == Some(me);
            (l.wait_lock, if top { l.owner } else { None })
        };
        k.raw_spin_unlock(wl).await;
        let retry_now = match owner {
            Some(o) => rtmutex_spin_on_owner(k, m, me, o).await,
            None => false,
        };
        if !retry_now {
            rt_mutex_schedule(k).await;
        }
        lock_wait_lock(k, m).await;
        k.st().tasks[me.idx()].state = state;
    }
}

/// What a thread does after -EDEADLK: it sleeps for good, still naming the lock it wanted,
/// so that the stall detector reports the cycle.
///
/// Linux: kernel/locking/rtmutex.c rt_mutex_handle_deadlock().
///
/// Deviation: Linux WARNs here for an in-kernel rt_mutex; a user PI mutex reaches the
/// kernel through FUTEX_LOCK_PI, which returns -EDEADLK, and glibc then blocks the thread
/// forever. User locks call `rt_mutex_lock` directly in the model, so the model does what
/// the user sees: no warning, an endless sleep.
async fn rt_mutex_handle_deadlock(k: &Kernel, wl: LockId) -> ! {
    k.raw_spin_unlock(wl).await;
    loop {
        let me = k.current();
        k.st().tasks[me.idx()].state = TASK_INTERRUPTIBLE;
        rt_mutex_schedule(k).await;
        // A signal ends glibc's futex sleep; the thread handles it and sleeps again.
        crate::signal::handle_pending_signal(k);
    }
}

/// The slow path of `rt_mutex_lock()`: under `wait_lock`, take the lock if M-13 allows;
/// else emit `LockContended`, sleep in `state` as a queued waiter (boosting the owner chain)
/// until `try_to_take_rt_mutex` succeeds, then emit `LockAcquired`. With an interruptible
/// `state` a pending signal ends the wait: TASK_RUNNING, `remove_waiter()` (which gives the
/// owner the next top waiter and readjusts its priority down the chain),
/// `LockInterrupted`, `Err(Eintr)`.
///
/// Linux: kernel/locking/rtmutex.c rt_mutex_slowlock(), __rt_mutex_slowlock_locked(),
/// __rt_mutex_slowlock() (its `if (likely(!ret)) … else { remove_waiter() … }`).
async fn rt_mutex_slowlock(k: &Kernel, m: RtMutexId, state: u32) -> Result<(), Eintr> {
    let me = k.current();
    rt_mutex_pre_schedule(k).await;
    let wl = lock_wait_lock(k, m).await;
    if try_to_take_rt_mutex(k, m, me, false).await {
        fixup_rt_mutex_waiters(&mut k.st(), m);
        k.raw_spin_unlock(wl).await;
        rt_mutex_post_schedule(k);
        return Ok(());
    }
    {
        let s = &mut *k.st();
        s.tasks[me.idx()].state = state;
        s.tasks[me.idx()].waiting_on = Some(WaitTarget::RtMutex(m));
        trace_lock_contended(s, me, LockName::RtMutex(m));
    }
    if task_blocks_on_rt_mutex(k, m, me).await.is_err() {
        k.st().tasks[me.idx()].state = TASK_RUNNING;
        remove_waiter(k, m, me).await;
        rt_mutex_handle_deadlock(k, wl).await;
    }
    if let Err(e) = rt_mutex_slowlock_block(k, m, me, state).await {
        k.st().tasks[me.idx()].state = TASK_RUNNING;
        remove_waiter(k, m, me).await;
        {
            let s = &mut *k.st();
            s.tasks[me.idx()].waiting_on = None;
            fixup_rt_mutex_waiters(s, m);
            crate::locking::trace_lock_interrupted(s, me, LockName::RtMutex(m));
        }
        k.raw_spin_unlock(wl).await;
        rt_mutex_post_schedule(k);
        return Err(e);
    }
    {
        let s = &mut *k.st();
        s.tasks[me.idx()].state = TASK_RUNNING;
        s.tasks[me.idx()].waiting_on = None;
        fixup_rt_mutex_waiters(s, m);
        trace_lock_acquired(s, me, LockName::RtMutex(m));
    }
    k.raw_spin_unlock(wl).await;
    rt_mutex_post_schedule(k);
    Ok(())
}

/// Lock rt_mutex `m` for the current task (task context; may sleep). The fast path swaps a
/// free owner word without the waiters bit for `current`; anything else takes the slow
/// path.
///
/// Linux: kernel/locking/rtmutex_api.c rt_mutex_lock() → kernel/locking/rtmutex.c
/// __rt_mutex_lock(), rt_mutex_cmpxchg_acquire().
///
/// Deviation: the uncontended lock+unlock cost (`mutex_fast_ns`, K-12) is charged once, on
/// the lock's atomic.
pub async fn rt_mutex_lock(k: &Kernel, m: RtMutexId) {
    let r = rt_mutex_lock_state(k, m, TASK_UNINTERRUPTIBLE).await;
    assert_eq!(r, Ok(()), "an uninterruptible rt_mutex wait was interrupted");
}

/// `rt_mutex_lock_interruptible()`: `rt_mutex_lock()` sleeping TASK_INTERRUPTIBLE; returns
/// `Err(Eintr)` without the lock if a signal is pending while it waits.
///
/// Linux: kernel/locking/rtmutex_api.c rt_mutex_lock_interruptible().
pub async fn rt_mutex_lock_interruptible(k: &Kernel, m: RtMutexId) -> Result<(), Eintr> {
    rt_mutex_lock_state(k, m, TASK_INTERRUPTIBLE).await
}

/// `__rt_mutex_lock()`: the fast path, else the slow path sleeping in `state`.
///
/// Linux: kernel/locking/rtmutex.c __rt_mutex_lock().
async fn rt_mutex_lock_state(k: &Kernel, m: RtMutexId, state: u32) -> Result<(), Eintr> {
    let cost = k.st().costs.mutex_fast_ns;
    if cost > 0 {
        k.m.delay(cost).await;
    }
    let me = k.current();
    {
        let s = &mut *k.st();
        let l = &mut s.rt_mutexes[m.idx()];
        if l.owner.is_none() && !l.has_waiters {
            l.owner = Some(me);
            return Ok(());
        }
    }
    rt_mutex_slowlock(k, m, state).await
}

/// Under `wait_lock` and `current`'s `pi_lock`: take the top waiter off my `pi_waiters` and
/// deboost me **before** it is woken (M-14), free the lock keeping HAS_WAITERS (the woken
/// waiter must still win M-13: no handoff), and disable preemption until the wakeup is
/// issued. Returns the waiter to wake.
///
/// Linux: kernel/locking/rtmutex.c mark_wakeup_next_waiter().
async fn mark_wakeup_next_waiter(k: &Kernel, m: RtMutexId, me: TaskId) -> (TaskId, CpuId) {
    k.pi_lock(me).await;
    let w = {
        let s = &mut *k.st();
        let w = s.rt_mutexes[m.idx()]
            .top_waiter()
            .expect("slow unlock with waiters")
            .task;
        rt_mutex_dequeue_pi(s, me, w);
        w
    };
    rt_mutex_adjust_prio(k, me).await;
    let cpu = {
        let s = &mut *k.st();
        let l = &mut s.rt_mutexes[m.idx()];
        l.owner = None;
        l.has_waiters = true;
        // preempt_disable(), paired with rt_mutex_wake_up_q().
        let cpu = s.m.this_cpu();
        s.rqs[cpu.idx()].preempt_count += 1;
        cpu
    };
    k.pi_unlock(me).await;
    (w, cpu)
}

/// Wake the waiter chosen by `mark_wakeup_next_waiter`, then re-enable preemption (a
/// preemption point: the woken waiter may preempt the unlocker).
///
/// Linux: kernel/locking/rtmutex.c rt_mutex_wake_up_q().
async fn rt_mutex_wake_up_q(k: &Kernel, w: TaskId, cpu: CpuId) {
    wake_up_process(k, w).await;
    {
        let s = &mut *k.st();
        assert_eq!(s.m.this_cpu(), cpu, "migrated with preemption disabled");
        let rq = &mut s.rqs[cpu.idx()];
        assert!(rq.preempt_count > 0, "preempt_count underflow on cpu{cpu}");
        rq.preempt_count -= 1;
    }
    preempt_point(k).await;
}

/// Unlock rt_mutex `m` held by the current task. The fast path clears an owner word without
/// the waiters bit; otherwise the slow path: no waiters ⇒ just free it; else
/// `mark_wakeup_next_waiter` and wake the top waiter (M-14).
///
/// Linux: kernel/locking/rtmutex_api.c rt_mutex_unlock() → kernel/locking/rtmutex.c
/// __rt_mutex_unlock(), rt_mutex_slowunlock().
pub async fn rt_mutex_unlock(k: &Kernel, m: RtMutexId) {
    let me = k.current();
    {
        let s = &mut *k.st();
        let l = &mut s.rt_mutexes[m.idx()];
        if l.owner == Some(me) && !l.has_waiters {
            // rt_mutex_cmpxchg_release(lock, current, NULL).
            l.owner = None;
            return;
        }
    }
    let wl = lock_wait_lock(k, m).await;
    let not_owner = {
        let s = k.st();
        let l = &s.rt_mutexes[m.idx()];
        (l.owner != Some(me)).then(|| format!("mutex {} unlocked by a thread that does not hold it", l.name))
    };
    if let Some(e) = not_owner {
        k.violation("workload_unlock_not_owner", e);
        k.raw_spin_unlock(wl).await;
        return;
    }
    let no_waiters = {
        let s = &mut *k.st();
        let l = &mut s.rt_mutexes[m.idx()];
        if l.waiters.is_empty() {
            // unlock_rt_mutex_safe() of the no-fast-path build: all under wait_lock.
            l.owner = None;
            l.has_waiters = false;
            true
        } else {
            false
        }
    };
    if no_waiters {
        k.raw_spin_unlock(wl).await;
        return;
    }
    let (w, cpu) = mark_wakeup_next_waiter(k, m, me).await;
    k.raw_spin_unlock(wl).await;
    rt_mutex_wake_up_q(k, w, cpu).await;
}
