//! The RT class: SCHED_FIFO and SCHED_RR, with push/pull balancing over cpupri.
//!
//! Linux: kernel/sched/rt.c (flat `rt_rq` per CPU, CONFIG_SMP, no RT group scheduling).
//!
//! Per CPU, an [`RtRq`] holds 100 FIFO lists indexed by kernel priority plus a bitmap of
//! non-empty lists. The running task stays on its list, so the pick is always the
//! head of the strongest non-empty list. Every queued RT task that is not running and may run
//! on more than one CPU is also on the rq's *pushable* list, ordered by priority and FIFO
//! among equals; a non-empty pushable list makes the rq "overloaded" and puts its CPU in
//! the root domain's `rto_mask`.
//!
//! Cost: no hook searches a list. The strongest list is found through the bitmap; a task
//! leaves its priority list and the pushable list by the position key it keeps in its
//! [`SchedRtEntity`] (O(1) for the priority list, a binary search and a short move for the
//! pushable [`SortedSet`]), where Linux unlinks a `list_head` or a `plist_node` by pointer.
//!
//! Balancing moves RT tasks between CPUs so that, as far as affinities allow, the N strongest
//! RT tasks run on the N CPUs:
//! - push: after an RT pick, after a wakeup that cannot run soon, on a switch into RT,
//!   the rq tries to hand its strongest pushable task to the CPU at the weakest cpupri level;
//! - pull: when this rq's RT level drops, it takes a pushable task from an overloaded
//!   CPU, or with RT_PUSH_IPI asks the overloaded CPUs by an IPI chain to push.
//!
//! Locking: the sync hooks run with the rq lock of `cpu` held and never drop it (S-4). The
//! async paths ([`push_rt_tasks`], [`pull_rt_task`], [`balance_rt`], [`task_woken_rt`],
//! [`rto_push_irq_work_func`]) take a second rq lock with `double_lock_balance`, which may drop
//! and retake this rq's lock; everything read before such a call is re-validated after it.
//!
//! Deviation: no RT throttling (R-13: newest kernels have none outside RT group scheduling;
//! the fair server that replaces it belongs to the DL class), no RT group scheduling, no
//! migrate-disable (so no stopper hand-off from push/pull), no PELT (`update_rt_rq_load_avg`),
//! no RLIMIT_RTTIME watchdog.

use crate::sched::sortedset::SortedSet;

use sim::{CpuId, CpuMask};

use crate::sched::core::{self, Kernel};
use crate::sched::cpupri::{convert_prio, CPUPRI_INVALID};
use crate::sched::tasklist::{Link, ListNode, TaskList};
use crate::sched::topology::sd;
use crate::sched::{BalanceCallback, Class, DequeueFlags, EnqueueFlags, SchedState, WakeFlags};
use crate::task::TaskId;
use crate::tracepoints::IpiReason;
use uapi::Policy;

/// `MAX_RT_PRIO`: number of RT priority lists.
pub const MAX_RT_PRIO: usize = 100;

/// The value `highest_prio.curr/next` take when there is no RT task (`MAX_RT_PRIO - 1`; no
/// RT task can have it since rt_priority 1 is prio 98).
pub const RT_PRIO_NONE: i32 = MAX_RT_PRIO as i32 - 1;

/// `RT_MAX_TRIES`: attempts of `find_lock_lowest_rq` before giving up.
pub const RT_MAX_TRIES: u32 = 3;

/// `struct sched_rt_entity`. Protected by: the rq lock of the task's CPU.
#[derive(Clone, Debug, Default)]
pub struct SchedRtEntity {
    /// Remaining RR slice in ticks.
    pub time_slice: u32,
    /// On one of the rq's priority lists (`rt_se->on_list`). Stays set across a SAVE-only
    /// dequeue/enqueue pair, which keeps the list position.
    pub on_list: bool,
    /// Accounted on the RT rq (`rt_se->on_rq`, `on_rt_rq()`).
    pub on_rq: bool,
    /// Links on its priority list (`rt_se->run_list`), linked while on one (see [`RtList`]).
    pub run_list: ListNode,
    /// Key on the rq's pushable list, (prio at insertion, insertion number), while on it
    /// (`plist_node_empty(&p->pushable_tasks)` is false).
    pub pushable_key: Option<(i32, u64)>,
}

/// One priority level's FIFO list (`rt_prio_array.queue[prio]`, a `list_head`), a
/// [`TaskList`] through the tasks' `rt.run_list` (its module doc says how it differs from
/// Linux's list).
pub type RtList = TaskList;

/// `rt_rq->highest_prio`: the strongest queued RT prio (`curr`) and the strongest pushable
/// prio (`next`); [`RT_PRIO_NONE`] when there is none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtHighestPrio {
    pub curr: i32,
    pub next: i32,
}

/// `struct rt_rq` (one flat queue per CPU). Protected by: the rq lock.
#[derive(Clone, Debug)]
pub struct RtRq {
    /// Queued RT tasks, the running one included (`rt_nr_running`).
    pub rt_nr_running: u32,
    /// Tasks per priority level, FIFO order (`rt_rq->active.queue`); `MAX_RT_PRIO` lists.
    pub queues: Vec<RtList>,
    /// Bit `i` set iff `queues[i]` is non-empty (`rt_rq->active.bitmap`).
    pub bitmap: u128,
    pub highest_prio: RtHighestPrio,
    /// The pushable list is non-empty (`rt_rq->overloaded`).
    pub overloaded: bool,
    /// `rq->rt.pushable_tasks`: (prio at insertion, insertion number, task), ordered by prio,
    /// FIFO among equal prios (a `plist`). Each member keeps its key in
    /// [`SchedRtEntity::pushable_key`], so it leaves the set without a search.
    pub pushable_tasks: SortedSet<(i32, u64, TaskId)>,
    /// Insertion number of the next pushable task.
    pub pushable_seq: u64,
}

impl Default for RtRq {
    /// `init_rt_rq()`.
    fn default() -> Self {
        RtRq {
            rt_nr_running: 0,
            queues: vec![RtList::new(Link::RtRunList); MAX_RT_PRIO],
            bitmap: 0,
            highest_prio: RtHighestPrio {
                curr: RT_PRIO_NONE,
                next: RT_PRIO_NONE,
            },
            overloaded: false,
            pushable_tasks: SortedSet::new(),
            pushable_seq: 0,
        }
    }
}

impl RtRq {
    /// `sched_find_first_bit(array->bitmap)`: the strongest non-empty list.
    pub fn first_prio(&self) -> Option<usize> {
        if self.bitmap == 0 {
            None
        } else {
            Some(self.bitmap.trailing_zeros() as usize)
        }
    }

    /// `has_pushable_tasks()`.
    pub fn has_pushable_tasks(&self) -> bool {
        !self.pushable_tasks.is_empty()
    }
}

/// Root-domain state of the RT_PUSH_IPI chain (`rd->rto_cpu`, `rd->rto_loop`,
/// `rd->rto_loop_next`). Protected by: `rd->rto_lock` in Linux; in the model every access is
/// inside one machine step (see `tell_cpu_to_push`).
#[derive(Clone, Debug, Default)]
pub struct RtoState {
    /// The CPU the chain visits now; `None` = no chain running (`rto_cpu == -1`).
    pub rto_cpu: Option<CpuId>,
    /// Round of the chain in progress.
    pub rto_loop: u64,
    /// Bumped by every pull request; the chain runs another round while it differs.
    pub rto_loop_next: u64,
}

// ---------------------------------------------------------------------- helpers

fn rq_curr(s: &SchedState, cpu: CpuId) -> TaskId {
    s.rqs[cpu.idx()].curr
}

/// `rt_task()` in its long-standing form: prio below `MAX_RT_PRIO`, which includes DL tasks.
///
/// Linux: include/linux/sched/rt.h rt_or_dl_prio().
fn rt_or_dl_prio(prio: i32) -> bool {
    prio < MAX_RT_PRIO as i32
}

/// The task is queued on the RT class of its CPU (`on_rt_rq(&p->rt)`).
///
/// Linux: kernel/sched/rt.c on_rt_rq().
fn on_rt_rq(s: &SchedState, p: TaskId) -> bool {
    s.tasks[p.idx()].rt.on_rq
}

/// Whether `rq` runs stop or DL work or has RT work queued (the `balance_rt` result).
///
/// Linux: kernel/sched/rt.c balance_rt() (its return value: sched_stop_runnable() ||
/// sched_dl_runnable() || sched_rt_runnable()).
fn rt_or_higher_runnable(s: &SchedState, cpu: CpuId) -> bool {
    let rq = &s.rqs[cpu.idx()];
    crate::sched::stop_task::sched_stop_runnable(s, cpu) || rq.dl.dl_nr_running > 0 || rq.rt.rt_nr_running > 0
}

/// Linux: kernel/sched/rt.c rt_queue_push_tasks().
fn rt_queue_push_tasks(s: &mut SchedState, cpu: CpuId) {
    if s.rqs[cpu.idx()].rt.has_pushable_tasks() {
        core::queue_balance_callback(s, cpu, BalanceCallback::PushRt);
    }
}

/// Linux: kernel/sched/rt.c rt_queue_pull_task().
fn rt_queue_pull_task(s: &mut SchedState, cpu: CpuId) {
    core::queue_balance_callback(s, cpu, BalanceCallback::PullRt);
}

/// Linux: kernel/sched/rt.c rt_set_overload(): this CPU joins `rto_mask`.
///
/// Deviation: `rd->rto_count` is not kept separately; it is the weight of `rto_mask`, which
/// the model updates atomically.
fn rt_set_overload(s: &mut SchedState, cpu: CpuId) {
    s.rto_mask.set(cpu);
}

/// Linux: kernel/sched/rt.c rt_clear_overload().
fn rt_clear_overload(s: &mut SchedState, cpu: CpuId) {
    s.rto_mask.clear(cpu);
}

/// `rt_overloaded()`: number of RT-overloaded CPUs in the root domain.
///
/// Linux: kernel/sched/rt.c rt_overloaded().
fn rt_overloaded(s: &SchedState) -> u32 {
    s.rto_mask.weight()
}

/// Take `p` off `cpu`'s pushable set if it is on it (by its saved key, no search).
///
/// Linux: lib/plist.c plist_del() (as dequeue_pushable_task() calls it).
fn pushable_remove(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let Some((prio, seq)) = s.tasks[p.idx()].rt.pushable_key else {
        return;
    };
    let was = s.rqs[cpu.idx()].rt.pushable_tasks.remove(&(prio, seq, p));
    assert!(was, "pushable task {p} is not on the pushable list of cpu{cpu}");
    s.tasks[p.idx()].rt.pushable_key = None;
}

/// Put `p` on the pushable list (at the tail of its prio, after taking it off if it was on)
/// and update `highest_prio.next` and the overload state.
///
/// Linux: kernel/sched/rt.c enqueue_pushable_task().
fn enqueue_pushable_task(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    pushable_remove(s, cpu, p);
    let prio = s.tasks[p.idx()].prio;
    let rt = &mut s.rqs[cpu.idx()].rt;
    let seq = rt.pushable_seq;
    rt.pushable_seq += 1;
    rt.pushable_tasks.insert((prio, seq, p));
    s.tasks[p.idx()].rt.pushable_key = Some((prio, seq));
    let rt = &mut s.rqs[cpu.idx()].rt;
    if prio < rt.highest_prio.next {
        rt.highest_prio.next = prio;
    }
    if !rt.overloaded {
        rt.overloaded = true;
        rt_set_overload(s, cpu);
    }
}

/// Take `p` off the pushable list (no-op if absent).
///
/// Linux: kernel/sched/rt.c dequeue_pushable_task().
fn dequeue_pushable_task(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    pushable_remove(s, cpu, p);
    let rt = &mut s.rqs[cpu.idx()].rt;
    if let Some(&(prio, _, _)) = rt.pushable_tasks.first() {
        rt.highest_prio.next = prio;
    } else {
        rt.highest_prio.next = RT_PRIO_NONE;
        if rt.overloaded {
            rt.overloaded = false;
            rt_clear_overload(s, cpu);
        }
    }
}

/// Publish this rq's RT level to cpupri if it changed.
///
/// Linux: kernel/sched/rt.c inc_rt_prio_smp() / dec_rt_prio_smp().
fn rt_prio_smp_update(s: &mut SchedState, cpu: CpuId, prev_prio: i32) {
    let curr = s.rqs[cpu.idx()].rt.highest_prio.curr;
    if curr != prev_prio {
        s.cpupri.set(cpu, convert_prio(curr));
    }
}

/// Linux: kernel/sched/rt.c inc_rt_prio().
fn inc_rt_prio(s: &mut SchedState, cpu: CpuId, prio: i32) {
    let prev = s.rqs[cpu.idx()].rt.highest_prio.curr;
    if prio < prev {
        s.rqs[cpu.idx()].rt.highest_prio.curr = prio;
    }
    rt_prio_smp_update(s, cpu, prev);
}

/// Linux: kernel/sched/rt.c dec_rt_prio().
fn dec_rt_prio(s: &mut SchedState, cpu: CpuId, prio: i32) {
    let rt = &mut s.rqs[cpu.idx()].rt;
    let prev = rt.highest_prio.curr;
    if rt.rt_nr_running > 0 {
        assert!(
            prio >= prev,
            "dequeued RT prio {prio} stronger than the rq's best {prev}"
        );
        if prio == prev {
            rt.highest_prio.curr = rt.first_prio().map_or(RT_PRIO_NONE, |i| i as i32);
        }
    } else {
        rt.highest_prio.curr = RT_PRIO_NONE;
    }
    rt_prio_smp_update(s, cpu, prev);
}

/// Charge the running RT task for the time since `exec_start`.
///
/// Linux: kernel/sched/rt.c update_curr_rt() (via update_curr_common()).
///
/// Deviation: no RT runtime accounting (no throttling, R-13), no PELT.
fn update_curr_rt(s: &mut SchedState, cpu: CpuId) {
    let donor = s.rqs[cpu.idx()].donor;
    if s.tasks[donor.idx()].class != Class::Rt {
        return;
    }
    // The interval is measured on the donor's clock; the time executed goes to rq->curr,
    // which differs from the donor while a proxy runs (A2/A3).
    crate::sched::core::update_curr_common(s, cpu);
}

/// Whether the entity leaves or joins its priority list: all but a SAVE-without-MOVE dequeue
/// and its RESTORE-without-MOVE enqueue, which keep the list position.
///
/// Linux: kernel/sched/rt.c move_entity().
///
/// Deviation: Linux tests one word, since `ENQUEUE_RESTORE`/`DEQUEUE_SAVE` and
/// `ENQUEUE_MOVE`/`DEQUEUE_MOVE` share their bits; the model's flags are two types, so the
/// callers pass the two bits.
fn move_entity(save_or_restore: bool, moving: bool) -> bool {
    !save_or_restore || moving
}

/// Linux: kernel/sched/rt.c __enqueue_rt_entity() (with inc_rt_tasks()).
fn enqueue_rt_entity(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: EnqueueFlags) {
    let moving = move_entity(
        flags.contains(EnqueueFlags::RESTORE),
        flags.contains(EnqueueFlags::MOVE),
    );
    let prio = s.tasks[p.idx()].prio;
    assert!(
        (0..MAX_RT_PRIO as i32).contains(&prio),
        "enqueue_rt of task {p} with prio {prio}"
    );
    assert!(!s.tasks[p.idx()].rt.on_rq, "task {p} already on an RT rq");
    let idx = prio as usize;
    if moving {
        assert!(!s.tasks[p.idx()].rt.on_list, "task {p} already on an RT list");
        let rt = &mut s.rqs[cpu.idx()].rt;
        if flags.contains(EnqueueFlags::HEAD) {
            rt.queues[idx].push_front(&mut s.tasks, p);
        } else {
            rt.queues[idx].push_back(&mut s.tasks, p);
        }
        rt.bitmap |= 1u128 << idx;
        s.tasks[p.idx()].rt.on_list = true;
    } else {
        assert!(
            s.tasks[p.idx()].rt.on_list,
            "SAVE-only re-enqueue of task {p} lost its list"
        );
    }
    s.tasks[p.idx()].rt.on_rq = true;
    s.rqs[cpu.idx()].rt.rt_nr_running += 1;
    inc_rt_prio(s, cpu, prio);
}

/// Linux: kernel/sched/rt.c __dequeue_rt_entity() (with __delist_rt_entity(), dec_rt_tasks()).
fn dequeue_rt_entity(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: DequeueFlags) {
    let moving = move_entity(
        flags.contains(DequeueFlags::SAVE),
        flags.contains(DequeueFlags::MOVE),
    );
    let prio = s.tasks[p.idx()].prio;
    assert!(s.tasks[p.idx()].rt.on_rq, "task {p} not on an RT rq");
    if moving {
        assert!(s.tasks[p.idx()].rt.on_list);
        let idx = prio as usize;
        let rt = &mut s.rqs[cpu.idx()].rt;
        rt.queues[idx].remove(&mut s.tasks, p);
        if rt.queues[idx].is_empty() {
            rt.bitmap &= !(1u128 << idx);
        }
        s.tasks[p.idx()].rt.on_list = false;
    }
    s.tasks[p.idx()].rt.on_rq = false;
    let rt = &mut s.rqs[cpu.idx()].rt;
    assert!(rt.rt_nr_running > 0, "rt_nr_running underflow on cpu{cpu}");
    rt.rt_nr_running -= 1;
    dec_rt_prio(s, cpu, prio);
}

/// Move `p` to the head or the tail of its priority list.
///
/// Linux: kernel/sched/rt.c requeue_task_rt() / requeue_rt_entity().
fn requeue_task_rt(s: &mut SchedState, cpu: CpuId, p: TaskId, head: bool) {
    if !on_rt_rq(s, p) {
        return;
    }
    let idx = s.tasks[p.idx()].prio as usize;
    let q = &mut s.rqs[cpu.idx()].rt.queues[idx];
    q.remove(&mut s.tasks, p);
    if head {
        q.push_front(&mut s.tasks, p);
    } else {
        q.push_back(&mut s.tasks, p);
    }
}

/// The first task on the pushable list that is not executing.
///
/// Linux: kernel/sched/rt.c pick_next_pushable_task().
///
/// Deviation: Linux's list never holds `rq->curr` and it BUG()s on a running entry. In the
/// model `put_prev_task_rt` makes `prev` pushable before the context switch clears its
/// `on_cpu`, and an unlocked window of the switch may let a push see it, so running entries
/// are skipped instead.
fn pick_next_pushable_task(s: &SchedState, cpu: CpuId) -> Option<TaskId> {
    let rq = &s.rqs[cpu.idx()];
    let p = rq
        .rt
        .pushable_tasks
        .iter()
        .map(|&(_, _, t)| t)
        // S10, D7: never an executing task, never a blocked donor (only Proxy Execution
        // moves those).
        .find(|&t| !s.tasks[t.idx()].on_cpu && !core::task_is_blocked(s, t))?;
    let t = &s.tasks[p.idx()];
    assert_eq!(t.cpu, cpu, "pushable task {p} on another CPU's list");
    assert_ne!(rq.curr, p, "pushable task {p} is curr");
    assert!(t.nr_cpus_allowed > 1, "pinned task {p} on the pushable list");
    assert!(core::task_on_rq_queued(s, p), "pushable task {p} not queued");
    assert_eq!(t.class, Class::Rt, "pushable task {p} not RT");
    Some(p)
}

/// The strongest pushable task of `cpu` that may run on `dst` and is not executing.
///
/// Linux: kernel/sched/rt.c pick_highest_pushable_task() / pick_rt_task().
fn pick_highest_pushable_task(s: &SchedState, cpu: CpuId, dst: CpuId) -> Option<TaskId> {
    s.rqs[cpu.idx()]
        .rt
        .pushable_tasks
        .iter()
        .map(|&(_, _, t)| t)
        .find(|&t| {
            let task = &s.tasks[t.idx()];
            !task.on_cpu && s.cpus_mask(task).test(dst) && !core::task_is_blocked(s, t)
        })
}

// ---------------------------------------------------------------------- class hooks (sync)

/// Fork-time RT state: a full RR slice, on no list.
///
/// Linux: kernel/sched/core.c __sched_fork() (the `p->rt` part).
pub fn init_entity_rt(s: &mut SchedState, p: TaskId) {
    let slice = s.tun.rr_timeslice_ticks();
    assert!(slice > 0, "RR slice of zero ticks");
    let rt = &mut s.tasks[p.idx()].rt;
    rt.time_slice = slice;
    rt.on_list = false;
    rt.on_rq = false;
}

/// Queue `p` at the tail of its priority list, or at the head with ENQUEUE_HEAD (PI deboost,
/// M-15); make it pushable unless it runs here or is pinned. Rq lock of `cpu` held.
///
/// Linux: kernel/sched/rt.c enqueue_task_rt() / enqueue_rt_entity().
pub fn enqueue_task_rt(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: EnqueueFlags) {
    assert_eq!(
        s.tasks[p.idx()].class,
        Class::Rt,
        "enqueue_task_rt of a non-RT task {p}"
    );
    enqueue_rt_entity(s, cpu, p, flags);
    core::add_nr_running(s, cpu, 1);
    if rq_curr(s, cpu) != p && s.tasks[p.idx()].nr_cpus_allowed > 1 {
        enqueue_pushable_task(s, cpu, p);
    }
}

/// Remove `p` from the RT queue (never delayed: returns true). Rq lock of `cpu` held.
///
/// Linux: kernel/sched/rt.c dequeue_task_rt() / dequeue_rt_entity().
pub fn dequeue_task_rt(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: DequeueFlags) -> bool {
    update_curr_rt(s, cpu);
    dequeue_rt_entity(s, cpu, p, flags);
    core::sub_nr_running(s, cpu, 1);
    dequeue_pushable_task(s, cpu, p);
    true
}

/// `sched_yield()` for an RT task: the scheduling context goes to the tail of its list.
/// While a proxy runs that is the donor, not the owner executing the yield (A5; the fix of
/// B-2025-11, where yielding the owner re-picked the same donor forever). Rq lock held.
///
/// Linux: kernel/sched/rt.c yield_task_rt().
pub fn yield_task_rt(s: &mut SchedState, cpu: CpuId) {
    let donor = s.rqs[cpu.idx()].donor;
    requeue_task_rt(s, cpu, donor, false);
}

/// Equal-priority wakeup: if the donor could run elsewhere and the wakee could not, put
/// the wakee at the head and reschedule, so that push moves the donor away.
///
/// Linux: kernel/sched/rt.c check_preempt_equal_prio().
fn check_preempt_equal_prio(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let curr = rq_curr(s, cpu);
    let donor = s.rqs[cpu.idx()].donor;
    if s.tasks[curr.idx()].nr_cpus_allowed == 1 {
        return;
    }
    let d = &s.tasks[donor.idx()];
    if s.cpupri.find(d.prio, s.cpus_mask(d)).is_none() {
        return;
    }
    let t = &s.tasks[p.idx()];
    if t.nr_cpus_allowed != 1 && s.cpupri.find(t.prio, s.cpus_mask(t)).is_some() {
        return;
    }
    requeue_task_rt(s, cpu, p, true);
    core::resched_curr(s, cpu);
}

/// An RT task woke (or moved) onto `cpu` whose donor is RT: reschedule if it is stronger
/// or apply the equal-priority rule. Rq lock of `cpu` held.
///
/// Linux: kernel/sched/rt.c wakeup_preempt_rt().
pub fn wakeup_preempt_rt(s: &mut SchedState, cpu: CpuId, p: TaskId, _wake_flags: WakeFlags) {
    let donor = s.rqs[cpu.idx()].donor;
    let curr = rq_curr(s, cpu);
    let (pp, dp) = (s.tasks[p.idx()].prio, s.tasks[donor.idx()].prio);
    if pp < dp {
        core::resched_curr(s, cpu);
        return;
    }
    if pp == dp && !s.tasks[curr.idx()].need_resched {
        check_preempt_equal_prio(s, cpu, p);
    }
}

/// The head of the strongest non-empty list, if any. Rq lock of `cpu` held; does not change
/// state (the chosen task is committed by [`set_next_task_rt`]).
///
/// Linux: kernel/sched/rt.c pick_task_rt() / _pick_next_task_rt() / pick_next_rt_entity().
pub fn pick_task_rt(s: &SchedState, cpu: CpuId) -> Option<TaskId> {
    let rt = &s.rqs[cpu.idx()].rt;
    if rt.rt_nr_running == 0 {
        return None;
    }
    let idx = rt.first_prio().expect("rt_nr_running > 0 with an empty bitmap");
    let p = rt.queues[idx]
        .front()
        .expect("bitmap bit set for an empty RT list");
    Some(p)
}

/// `prev` stops running: charge it, and make it pushable if it stays queued and may move.
/// Rq lock of `cpu` held.
///
/// Linux: kernel/sched/rt.c put_prev_task_rt().
pub fn put_prev_task_rt(s: &mut SchedState, cpu: CpuId, prev: TaskId) {
    update_curr_rt(s, cpu);
    if on_rt_rq(s, prev) && s.tasks[prev.idx()].nr_cpus_allowed > 1 {
        enqueue_pushable_task(s, cpu, prev);
    }
}

/// `p` becomes the running task: start its accounting, take it off the pushable list, and on
/// a real pick (`first`) queue a push of the remaining pushable tasks. Rq lock of `cpu`
/// held.
///
/// Linux: kernel/sched/rt.c set_next_task_rt().
pub fn set_next_task_rt(s: &mut SchedState, cpu: CpuId, p: TaskId, first: bool) {
    let now = s.rqs[cpu.idx()].clock_task;
    s.tasks[p.idx()].se.exec_start = now;
    dequeue_pushable_task(s, cpu, p);
    if !first {
        return;
    }
    rt_queue_push_tasks(s, cpu);
}

/// Tick for the running RT task: charge it; an RR task whose slice ran out gets a new one and,
/// only if a peer shares its list, goes to the tail and reschedules. Rq lock of `cpu`
/// held.
///
/// Linux: kernel/sched/rt.c task_tick_rt().
pub fn task_tick_rt(s: &mut SchedState, cpu: CpuId, curr: TaskId) {
    update_curr_rt(s, cpu);
    if s.tasks[curr.idx()].policy != Policy::Rr {
        return;
    }
    let rt = &mut s.tasks[curr.idx()].rt;
    assert!(rt.time_slice > 0, "RR task {curr} ticked with an empty slice");
    rt.time_slice -= 1;
    if rt.time_slice > 0 {
        return;
    }
    rt.time_slice = s.tun.rr_timeslice_ticks();
    let idx = s.tasks[curr.idx()].prio as usize;
    if s.rqs[cpu.idx()].rt.queues[idx].len() > 1 {
        requeue_task_rt(s, cpu, curr, false);
        core::resched_curr(s, cpu);
    }
}

/// Wakeup/fork placement for an RT task (W-11): stay on `cpu` unless its donor is RT/DL and
/// either its curr is pinned or the donor is at least as strong as `p`; then take the
/// weakest-level CPU if `p` beats the best RT task queued there. Called with `p->pi_lock` held.
///
/// Linux: kernel/sched/rt.c select_task_rq_rt().
///
/// Deviation: symmetric CPUs, so the capacity-fitness branch never triggers. A DL donor
/// counts as blocking (the long-standing `rt_task()` meaning, prio < 100); whether the newest
/// code (after the `rt_or_dl_task()` split) still does is \[UNSURE\]; with DL tasks in the model this choice now matters.
pub fn select_task_rq_rt(s: &SchedState, p: TaskId, cpu: CpuId, wake_flags: WakeFlags) -> CpuId {
    if !wake_flags.intersects(WakeFlags::TTWU | WakeFlags::FORK) {
        return cpu;
    }
    let rq = &s.rqs[cpu.idx()];
    let curr = &s.tasks[rq.curr.idx()];
    let donor = &s.tasks[rq.donor.idx()];
    let test = !donor.is_idle_task
        && rt_or_dl_prio(donor.prio)
        && (curr.nr_cpus_allowed < 2 || donor.prio <= s.tasks[p.idx()].prio);
    if test {
        if let Some(target) = find_lowest_rq(s, p) {
            if s.tasks[p.idx()].prio < s.rqs[target.idx()].rt.highest_prio.curr {
                return target;
            }
        }
    }
    cpu
}

/// `p` became RT (setscheduler or PI boost): queue a push if this rq is overloaded, and
/// reschedule if `p` beats the donor. Rq lock of `cpu` held.
///
/// Linux: kernel/sched/rt.c switched_to_rt().
pub fn switched_to_rt(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    if rq_curr(s, cpu) == p {
        return;
    }
    if core::task_on_rq_queued(s, p) {
        if s.tasks[p.idx()].nr_cpus_allowed > 1 && s.rqs[cpu.idx()].rt.overloaded {
            rt_queue_push_tasks(s, cpu);
        }
        let donor = s.rqs[cpu.idx()].donor;
        if s.tasks[p.idx()].prio < s.tasks[donor.idx()].prio {
            core::resched_curr(s, cpu);
        }
    }
}

/// `p` left the RT class: if it was this rq's last RT task, queue a pull. Rq lock of `cpu`
/// held.
///
/// Linux: kernel/sched/rt.c switched_from_rt().
pub fn switched_from_rt(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    if !core::task_on_rq_queued(s, p) || s.rqs[cpu.idx()].rt.rt_nr_running > 0 {
        return;
    }
    rt_queue_pull_task(s, cpu);
}

/// `p`'s priority changed within the RT class (already requeued by the core): a weaker
/// running task pulls and yields to a stronger queued one; a stronger queued task preempts.
/// Rq lock of `cpu` held.
///
/// Linux: kernel/sched/rt.c prio_changed_rt().
pub fn prio_changed_rt(s: &mut SchedState, cpu: CpuId, p: TaskId, oldprio: i32) {
    let prio = s.tasks[p.idx()].prio;
    if !core::task_on_rq_queued(s, p) || prio == oldprio {
        return;
    }
    let donor = s.rqs[cpu.idx()].donor;
    if donor == p {
        if oldprio < prio {
            rt_queue_pull_task(s, cpu);
        }
        if prio > s.rqs[cpu.idx()].rt.highest_prio.curr {
            core::resched_curr(s, cpu);
        }
    } else if prio < s.tasks[donor.idx()].prio {
        core::resched_curr(s, cpu);
    }
}

/// The CPU where `p` would preempt the weakest work: none if `p` is pinned or no
/// allowed CPU runs something weaker; else `task_cpu(p)` if it is among the weakest, else this
/// CPU if it is among them and shares a WAKE_AFFINE domain with `task_cpu`, else the first of
/// them in the nearest such domain, else this CPU if among them, else the first of them.
/// No lock needed (cpupri is read racily, as in Linux).
///
/// Linux: kernel/sched/rt.c find_lowest_rq().
///
/// Deviation: Linux picks within a domain with `cpumask_any_and_distribute()` (a per-CPU
/// rotating cursor); the model takes the first CPU, which is deterministic without extra
/// state.
pub fn find_lowest_rq(s: &SchedState, p: TaskId) -> Option<CpuId> {
    let t = &s.tasks[p.idx()];
    if t.nr_cpus_allowed == 1 {
        return None;
    }
    let lowest_mask = s.cpupri.find(t.prio, s.cpus_mask(t))?;
    let cpu = t.cpu;
    if lowest_mask.test(cpu) {
        return Some(cpu);
    }
    let this_cpu = Some(s.m.this_cpu()).filter(|&c| lowest_mask.test(c));
    for sd in &s.topo.domains[cpu.idx()] {
        if sd.flags & sd::WAKE_AFFINE == 0 {
            continue;
        }
        if let Some(tc) = this_cpu {
            if sd.span.test(tc) {
                return Some(tc);
            }
        }
        if let Some(best) = lowest_mask.and(&sd.span).first() {
            return Some(best);
        }
    }
    this_cpu.or_else(|| lowest_mask.first())
}

// ---------------------------------------------------------------------- push / pull (async)

/// With `task`'s rq lock held, find the weakest-level CPU for `task` and lock it too, retrying
/// up to [`RT_MAX_TRIES`] times; `None` if no CPU qualifies or `task` changed while this rq's
/// lock was dropped (then only `rq` is held).
///
/// Linux: kernel/sched/rt.c find_lock_lowest_rq().
async fn find_lock_lowest_rq(k: &Kernel, task: TaskId, rq: CpuId) -> Option<CpuId> {
    for _ in 0..RT_MAX_TRIES {
        let lowest = {
            let s = k.st();
            let cpu = find_lowest_rq(&s, task)?;
            if cpu == rq {
                return None;
            }
            if s.rqs[cpu.idx()].rt.highest_prio.curr <= s.tasks[task.idx()].prio {
                // Equal or stronger work there: retrying would not drop a lock and would
                // most likely see the same.
                return None;
            }
            cpu
        };
        if k.double_lock_balance(rq, lowest).await {
            // `rq` was dropped: the task may have moved, run, changed affinity or class, or
            // stopped being the first pushable task.
            let still_valid = {
                let s = k.st();
                let t = &s.tasks[task.idx()];
                t.cpu == rq
                    && s.cpus_mask(t).test(lowest)
                    && !t.on_cpu
                    && t.class == Class::Rt
                    && core::task_on_rq_queued(&s, task)
                    && pick_next_pushable_task(&s, rq) == Some(task)
            };
            if !still_valid {
                k.double_unlock_balance(rq, lowest).await;
                return None;
            }
        }
        let suitable = {
            let s = k.st();
            s.rqs[lowest.idx()].rt.highest_prio.curr > s.tasks[task.idx()].prio
        };
        if suitable {
            return Some(lowest);
        }
        k.double_unlock_balance(rq, lowest).await;
    }
    None
}

/// Push this rq's first pushable task to the weakest-level CPU; true if a task moved. Rq lock
/// of `cpu` held (may be dropped and retaken).
///
/// Linux: kernel/sched/rt.c push_rt_task().
///
/// Deviation: no migrate-disable, so the stopper hand-off branch does not exist. The retry on
/// a changed pushable list is bounded by the number of tasks (Linux loops unbounded).
async fn push_rt_task(k: &Kernel, cpu: CpuId) -> bool {
    let (mut next_task, max_retries) = {
        let s = k.st();
        if !s.rqs[cpu.idx()].rt.overloaded {
            return false;
        }
        match pick_next_pushable_task(&s, cpu) {
            Some(t) => (t, s.tasks.len()),
            None => return false,
        }
    };
    for _ in 0..=max_retries {
        {
            let mut s = k.st();
            let donor = s.rqs[cpu.idx()].donor;
            if s.tasks[next_task.idx()].prio < s.tasks[donor.idx()].prio {
                // The pushable task is stronger than what runs here: just reschedule.
                core::resched_curr(&mut s, cpu);
                return false;
            }
            if rq_curr(&s, cpu) == next_task {
                k.violation(
                    "rt_push_not_curr",
                    format!("cpu{cpu}: pushable task {next_task} is curr"),
                );
                return false;
            }
        }
        let Some(lowest) = find_lock_lowest_rq(k, next_task, cpu).await else {
            // This rq's lock may have been dropped: is the same task still first?
            let task = pick_next_pushable_task(&k.st(), cpu);
            match task {
                Some(t) if t != next_task => {
                    next_task = t;
                    continue;
                }
                // Unchanged (others will pull when they can) or nothing left.
                _ => return false,
            }
        };
        {
            let mut s = k.st();
            core::move_queued_task_locked(&mut s, cpu, lowest, next_task);
            core::resched_curr(&mut s, lowest);
        }
        k.double_unlock_balance(cpu, lowest).await;
        return true;
    }
    panic!("push_rt_task on cpu{cpu}: pushable list kept changing past {max_retries} retries");
}

/// Push pushable tasks away until one cannot be pushed. Called with `cpu`'s rq lock held
/// (as a `BalanceCallback::PushRt`, from `task_woken_rt`, or from the RT_PUSH_IPI chain).
///
/// Linux: kernel/sched/rt.c push_rt_tasks().
///
/// Deviation: bounded by the number of tasks plus one (Linux loops while push succeeds).
pub async fn push_rt_tasks(k: &Kernel, cpu: CpuId) {
    let limit = k.st().tasks.len() + 1;
    for _ in 0..limit {
        if !push_rt_task(k, cpu).await {
            return;
        }
    }
    panic!("push_rt_tasks on cpu{cpu}: more than {limit} pushes in one pass");
}

/// Advance the RT_PUSH_IPI chain: the next CPU of `rto_mask` after `rto_cpu`; when the mask
/// is exhausted, start another round if pull requests arrived meanwhile, else end the chain.
///
/// Linux: kernel/sched/rt.c rto_next_cpu().
fn rto_next_cpu(s: &mut SchedState) -> Option<CpuId> {
    // At most two rounds: after one restart `rto_loop == rto_loop_next` (atomic here).
    for _ in 0..2 {
        let start = s.rto.rto_cpu.map_or(CpuId(0), |c| CpuId(c.0 + 1));
        let next = s.rto_mask.iter().find(|&c| c >= start);
        s.rto.rto_cpu = next;
        if next.is_some() {
            return next;
        }
        if s.rto.rto_loop == s.rto.rto_loop_next {
            return None;
        }
        s.rto.rto_loop = s.rto.rto_loop_next;
    }
    None
}

/// `irq_work_queue_on(&rd->rto_push_work, cpu)`: the work is single per root domain; queuing
/// an already pending work does nothing.
///
/// Linux: kernel/irq_work.c irq_work_queue_on().
fn rto_queue_push_work(s: &mut SchedState, cpu: CpuId) {
    if s.rqs[cpu.idx()].rt_push_work_pending {
        return;
    }
    s.rqs[cpu.idx()].rt_push_work_pending = true;
    core::send_ipi(s, cpu, IpiReason::CallFunction);
}

/// Ask the overloaded CPUs to push: bump the round counter, and start the IPI chain
/// unless one is running (it will see the bump and go round again).
///
/// Linux: kernel/sched/rt.c tell_cpu_to_push().
///
/// Deviation: Linux guards the start with `rto_loop_start` (a trylock) and `rd->rto_lock`;
/// here the whole update is one machine step, so neither lock is modelled.
fn tell_cpu_to_push(s: &mut SchedState) {
    s.rto.rto_loop_next += 1;
    if s.rto.rto_cpu.is_some() {
        return;
    }
    if let Some(cpu) = rto_next_cpu(s) {
        rto_queue_push_work(s, cpu);
    }
}

/// The RT_PUSH_IPI work on `cpu` (hard-IRQ context, no lock held): push this CPU's pushable
/// tasks, then pass the work to the next overloaded CPU or end the chain.
///
/// Linux: kernel/sched/rt.c rto_push_irq_work_func().
///
/// Deviation: the work's pending flag is `rqs[cpu].rt_push_work_pending`; this function
/// clears it on entry (as `irq_work_single()` clears PENDING before the callback) so the
/// caller need not.
pub async fn rto_push_irq_work_func(k: &Kernel, cpu: CpuId) {
    let has_pushable = {
        let mut s = k.st();
        s.rqs[cpu.idx()].rt_push_work_pending = false;
        s.rqs[cpu.idx()].rt.has_pushable_tasks()
    };
    if has_pushable {
        k.rq_lock(cpu).await;
        push_rt_tasks(k, cpu).await;
        k.rq_unlock(cpu).await;
    }
    let mut s = k.st();
    if let Some(next) = rto_next_cpu(&mut s) {
        rto_queue_push_work(&mut s, next);
    }
}

/// Pull stronger RT work to `this_cpu`: from every other overloaded CPU whose best
/// pushable task beats this rq's best, take that task unless it also beats the donor there.
/// With RT_PUSH_IPI, ask the overloaded CPUs to push instead. Rq lock of `this_cpu`
/// held (may be dropped and retaken).
///
/// Linux: kernel/sched/rt.c pull_rt_task().
///
/// Deviation: no migrate-disable, so no stopper push of a pinned-for-now task.
pub async fn pull_rt_task(k: &Kernel, this_cpu: CpuId) {
    let nr_cpus = {
        let mut s = k.st();
        let count = rt_overloaded(&s);
        if count == 0 {
            return;
        }
        if count == 1 && s.rto_mask.test(this_cpu) {
            return;
        }
        if s.feat.rt_push_ipi {
            tell_cpu_to_push(&mut s);
            return;
        }
        s.nr_cpus()
    };
    let mut resched = false;
    // `for_each_cpu(cpu, rto_mask)`: the mask is re-read at each step, since other CPUs run
    // while this rq's lock is dropped.
    for cpu in CpuId::all(nr_cpus) {
        if cpu == this_cpu {
            continue;
        }
        {
            let s = k.st();
            if !s.rto_mask.test(cpu) {
                continue;
            }
            // Racy pre-check without src's lock, as in Linux: a source that gets stronger
            // work will push it itself.
            if s.rqs[cpu.idx()].rt.highest_prio.next >= s.rqs[this_cpu.idx()].rt.highest_prio.curr {
                continue;
            }
        }
        k.double_lock_balance(this_cpu, cpu).await;
        {
            let mut s = k.st();
            if let Some(p) = pick_highest_pushable_task(&s, cpu, this_cpu) {
                if s.tasks[p.idx()].prio < s.rqs[this_cpu.idx()].rt.highest_prio.curr {
                    assert_ne!(p, s.rqs[cpu.idx()].curr, "pull of a running task");
                    assert!(core::task_on_rq_queued(&s, p), "pull of an unqueued task");
                    let src_donor = s.rqs[cpu.idx()].donor;
                    // A task stronger than its own donor is about to run there: leave it.
                    if s.tasks[p.idx()].prio >= s.tasks[src_donor.idx()].prio {
                        core::move_queued_task_locked(&mut s, cpu, this_cpu, p);
                        resched = true;
                    }
                }
            }
        }
        k.double_unlock_balance(this_cpu, cpu).await;
    }
    if resched {
        core::resched_curr(&mut k.st(), this_cpu);
    }
}

/// `need_pull_rt_task()`: this rq's RT level is weaker than the task leaving it.
///
/// Linux: kernel/sched/rt.c need_pull_rt_task().
fn need_pull_rt_task(s: &SchedState, cpu: CpuId, prev: TaskId) -> bool {
    s.rqs[cpu.idx()].rt.highest_prio.curr > s.tasks[prev.idx()].prio
}

/// The RT half of the `proxy_leave_pull` proposal: `prev_donor` left this runqueue through
/// the proxy walk; pull as `balance_rt()` would for it had it blocked here (its `on_rt_rq`
/// may now be true on the owner's CPU, so only the priority test applies).
///
/// Linux: kernel/sched/rt.c balance_rt() (its pull condition, need_pull_rt_task()).
pub async fn pull_for_departed(k: &Kernel, cpu: CpuId, prev_donor: TaskId) {
    if need_pull_rt_task(&k.st(), cpu, prev_donor) {
        pull_rt_task(k, cpu).await;
    }
}

/// Balance hook of the pick (S-3): if `prev` left the RT queue and this rq's RT level is now
/// weaker than it, pull. Returns whether stop, DL or RT work is runnable
/// here. Rq lock of `cpu` held (may be dropped and retaken by the pull).
///
/// Linux: kernel/sched/rt.c balance_rt().
pub async fn balance_rt(k: &Kernel, cpu: CpuId, prev: TaskId) -> bool {
    let pull = {
        let s = k.st();
        !on_rt_rq(&s, prev) && need_pull_rt_task(&s, cpu, prev)
    };
    if pull {
        Box::pin(pull_rt_task(k, cpu)).await;
    }
    rt_or_higher_runnable(&k.st(), cpu)
}

/// After a wakeup onto `cpu`: if the wakee will not run soon (the donor is RT/DL and either
/// pinned or at least as strong) and it may move, push now. Rq lock of `cpu` held.
///
/// Linux: kernel/sched/rt.c task_woken_rt().
pub async fn task_woken_rt(k: &Kernel, cpu: CpuId, p: TaskId) {
    let need_to_push = {
        let s = k.st();
        let rq = &s.rqs[cpu.idx()];
        let curr = &s.tasks[rq.curr.idx()];
        let donor = &s.tasks[rq.donor.idx()];
        let t = &s.tasks[p.idx()];
        !t.on_cpu
            && !curr.need_resched
            && t.nr_cpus_allowed > 1
            && !donor.is_idle_task
            && rt_or_dl_prio(donor.prio)
            && (curr.nr_cpus_allowed < 2 || donor.prio <= t.prio)
    };
    if need_to_push {
        Box::pin(push_rt_tasks(k, cpu)).await;
    }
}

/// Whether `cpu`'s cpupri level matches its RT queue (checker for the invariant "cpupri is the
/// level of the strongest queued RT task", R-7). Model-only: no Linux counterpart.
pub fn cpupri_consistent(s: &SchedState, cpu: CpuId) -> bool {
    let lvl = s.cpupri.cpu_to_pri[cpu.idx()];
    lvl != CPUPRI_INVALID && lvl == convert_prio(s.rqs[cpu.idx()].rt.highest_prio.curr)
}

/// CPUs whose RT queue is overloaded, as the rqs see it (checker: must equal `rto_mask`, R-6).
/// Model-only: no Linux counterpart.
pub fn overloaded_cpus(s: &SchedState) -> CpuMask {
    CpuId::all(s.nr_cpus())
        .filter(|&c| s.rqs[c.idx()].rt.overloaded)
        .collect()
}

#[cfg(test)]
mod tests {

    use std::rc::Rc;

    use sim::{CpuMask, Executor};

    use super::*;

    use crate::sched::cpupri::CPUPRI_NORMAL;

    use crate::sched::Costs;
    use crate::task::{rt_prio, OnRq};
    use crate::tracepoints::NullSink;

    /// A scheduler with `nr_cpus` idle CPUs (the real boot state: idle tasks and stoppers)
    /// and LLCs of `llc_size` CPUs, with zero costs.
    fn sched_state(nr_cpus: usize, llc_size: Option<usize>) -> SchedState {
        let mut cfg = crate::system::Config::new(nr_cpus);
        cfg.llc_size = llc_size;
        cfg.seed = 1;
        cfg.costs = Costs::zero();
        crate::system::new_sched_state(&cfg, Box::new(NullSink))
    }

    /// A new RT task of `policy` at `rt_priority` on `cpu`, allowed on `mask` (not queued).
    fn rt_task(s: &mut SchedState, policy: Policy, rt_priority: u32, cpu: CpuId, mask: CpuMask) -> TaskId {
        let id = TaskId(s.tasks.len() as u32);
        let mut t = crate::system::new_task_struct(&s.m, id, id.0, "t", cpu);
        t.policy = policy;
        t.rt_priority = rt_priority;
        t.prio = rt_prio(rt_priority);
        t.normal_prio = t.prio;
        t.class = Class::Rt;
        t.cpus_mask = s.cpus_masks.intern(mask);
        t.nr_cpus_allowed = mask.weight();
        s.tasks.push(t);
        init_entity_rt(s, id);
        id
    }

    fn all(s: &SchedState) -> CpuMask {
        CpuMask::first_n(s.nr_cpus())
    }

    /// The tasks on CPU 0's queue of `prio`, head first.
    fn queue(s: &SchedState, prio: i32) -> Vec<TaskId> {
        s.rqs[0].rt.queues[prio as usize].iter(&s.tasks).collect()
    }

    /// `activate_task` for a wakeup onto `cpu`.
    fn wake(s: &mut SchedState, cpu: CpuId, p: TaskId) {
        core::activate_task(s, cpu, p, EnqueueFlags::WAKEUP);
    }

    /// Run `p` on `cpu` the way `__schedule` does: put prev, set next, switch.
    fn run(s: &mut SchedState, cpu: CpuId, p: TaskId) {
        let prev = s.rqs[cpu.idx()].curr;
        if s.tasks[prev.idx()].class == Class::Rt {
            put_prev_task_rt(s, cpu, prev);
        }
        set_next_task_rt(s, cpu, p, true);
        s.tasks[prev.idx()].on_cpu = false;
        s.tasks[prev.idx()].need_resched = false;
        s.tasks[p.idx()].on_cpu = true;
        s.rqs[cpu.idx()].curr = p;
        s.rqs[cpu.idx()].donor = p;
    }

    #[test]
    fn rt_pick_order_follows_priority_array() {
        let mut s = sched_state(2, None);
        let m = all(&s);
        let a50 = rt_task(&mut s, Policy::Fifo, 50, CpuId(0), m);
        let b90 = rt_task(&mut s, Policy::Fifo, 90, CpuId(0), m);
        let c90 = rt_task(&mut s, Policy::Fifo, 90, CpuId(0), m);
        let d70 = rt_task(&mut s, Policy::Fifo, 70, CpuId(0), m);
        for p in [a50, b90, c90, d70] {
            wake(&mut s, CpuId(0), p);
        }
        assert_eq!(s.rqs[0].rt.rt_nr_running, 4);
        assert_eq!(s.rqs[0].nr_running, 4);
        assert_eq!(s.rqs[0].rt.highest_prio.curr, rt_prio(90));
        assert_eq!(s.cpupri.cpu_to_pri[0], 90, "cpupri level = best rt_priority");
        let mut order = Vec::new();
        while let Some(p) = pick_task_rt(&s, CpuId(0)) {
            order.push(p);
            assert!(dequeue_task_rt(&mut s, CpuId(0), p, dequeue_flags_sleep()));
            s.tasks[p.idx()].on_rq = OnRq::No;
            assert!(cpupri_consistent(&s, CpuId(0)));
        }
        assert_eq!(
            order,
            vec![b90, c90, d70, a50],
            "strongest list first, FIFO within"
        );
        assert_eq!(s.rqs[0].rt.highest_prio.curr, RT_PRIO_NONE);
        assert_eq!(s.cpupri.cpu_to_pri[0], CPUPRI_NORMAL);
        assert_eq!(s.rqs[0].nr_running, 0);
        assert!(s.rto_mask.is_empty());
    }

    fn dequeue_flags_sleep() -> crate::sched::DequeueFlags {
        crate::sched::DequeueFlags::SLEEP
    }

    #[test]
    fn rt_fifo_positions_wakeup_tail_preempted_keeps_yield_tail_head_on_enqueue_head() {
        let mut s = sched_state(1, None);
        let m = all(&s);
        let a = rt_task(&mut s, Policy::Fifo, 10, CpuId(0), m);
        let b = rt_task(&mut s, Policy::Fifo, 10, CpuId(0), m);
        wake(&mut s, CpuId(0), a);
        run(&mut s, CpuId(0), a);
        // A wakeup at equal priority goes to the tail: A keeps running.
        wake(&mut s, CpuId(0), b);
        wakeup_preempt_rt(&mut s, CpuId(0), b, WakeFlags::TTWU);
        assert!(
            !s.tasks[a.idx()].need_resched,
            "equal prio wakee must not preempt"
        );
        assert_eq!(queue(&s, rt_prio(10)), [a, b]);
        // A stronger wakee preempts A; A keeps its place ahead of B.
        let c = rt_task(&mut s, Policy::Fifo, 20, CpuId(0), m);
        wake(&mut s, CpuId(0), c);
        wakeup_preempt_rt(&mut s, CpuId(0), c, WakeFlags::TTWU);
        assert!(s.tasks[a.idx()].need_resched);
        assert_eq!(pick_task_rt(&s, CpuId(0)), Some(c));
        run(&mut s, CpuId(0), c);
        assert!(dequeue_task_rt(&mut s, CpuId(0), c, dequeue_flags_sleep()));
        s.tasks[c.idx()].on_rq = OnRq::No;
        assert_eq!(
            pick_task_rt(&s, CpuId(0)),
            Some(a),
            "preempted task resumes before its equal peer"
        );
        run(&mut s, CpuId(0), a);
        // Yield moves A behind B.
        yield_task_rt(&mut s, CpuId(0));
        assert_eq!(pick_task_rt(&s, CpuId(0)), Some(b));
        assert_eq!(queue(&s, rt_prio(10)), [b, a]);
        // A dequeue/enqueue with ENQUEUE_HEAD (PI deboost) puts A back at the head.
        let save_move = crate::sched::DequeueFlags::SAVE | crate::sched::DequeueFlags::MOVE;
        assert!(dequeue_task_rt(&mut s, CpuId(0), a, save_move));
        enqueue_task_rt(
            &mut s,
            CpuId(0),
            a,
            EnqueueFlags::RESTORE | EnqueueFlags::MOVE | EnqueueFlags::HEAD,
        );
        assert_eq!(queue(&s, rt_prio(10)), [a, b]);
        // A SAVE-only pair (no MOVE) keeps the position even without HEAD.
        assert!(dequeue_task_rt(
            &mut s,
            CpuId(0),
            a,
            crate::sched::DequeueFlags::SAVE
        ));
        assert!(s.tasks[a.idx()].rt.on_list);
        enqueue_task_rt(&mut s, CpuId(0), a, EnqueueFlags::RESTORE);
        assert_eq!(queue(&s, rt_prio(10)), [a, b]);
        assert_eq!(s.rqs[0].rt.rt_nr_running, 2);
    }

    #[test]
    fn rt_rr_refills_and_rotates_only_with_a_peer() {
        let mut s = sched_state(1, None);
        let m = all(&s);
        let slice = s.tun.rr_timeslice_ticks();
        assert_eq!(slice, 100, "100 ms at HZ=1000");
        let a = rt_task(&mut s, Policy::Rr, 10, CpuId(0), m);
        wake(&mut s, CpuId(0), a);
        run(&mut s, CpuId(0), a);
        for _ in 0..slice - 1 {
            task_tick_rt(&mut s, CpuId(0), a);
        }
        assert_eq!(s.tasks[a.idx()].rt.time_slice, 1);
        task_tick_rt(&mut s, CpuId(0), a);
        assert_eq!(s.tasks[a.idx()].rt.time_slice, slice, "refilled");
        assert!(!s.tasks[a.idx()].need_resched, "alone on its list: no rotation");
        // A peer at another priority does not count.
        let lo = rt_task(&mut s, Policy::Rr, 5, CpuId(0), m);
        wake(&mut s, CpuId(0), lo);
        for _ in 0..slice {
            task_tick_rt(&mut s, CpuId(0), a);
        }
        assert!(!s.tasks[a.idx()].need_resched);
        // An equal-priority peer: at slice end A goes to the tail and reschedules.
        let b = rt_task(&mut s, Policy::Rr, 10, CpuId(0), m);
        wake(&mut s, CpuId(0), b);
        for _ in 0..slice - 1 {
            task_tick_rt(&mut s, CpuId(0), a);
        }
        assert!(
            !s.tasks[a.idx()].need_resched,
            "no rotation before the slice ends"
        );
        task_tick_rt(&mut s, CpuId(0), a);
        assert!(s.tasks[a.idx()].need_resched);
        assert_eq!(s.tasks[a.idx()].rt.time_slice, slice);
        assert_eq!(pick_task_rt(&s, CpuId(0)), Some(b));
        // FIFO tasks have no slice.
        let f = rt_task(&mut s, Policy::Fifo, 30, CpuId(0), m);
        wake(&mut s, CpuId(0), f);
        run(&mut s, CpuId(0), f);
        for _ in 0..3 * slice {
            task_tick_rt(&mut s, CpuId(0), f);
        }
        assert_eq!(s.tasks[f.idx()].rt.time_slice, slice);
        assert!(!s.tasks[f.idx()].need_resched);
    }

    #[test]
    fn rt_find_lowest_rq_prefers_task_cpu_then_this_cpu_then_first() {
        // One LLC: 4 CPUs, this CPU is 0 (the machine's current CPU).
        let mut s = sched_state(4, None);
        assert_eq!(s.m.this_cpu(), CpuId(0));
        let m = all(&s);
        let p = rt_task(&mut s, Policy::Fifo, 50, CpuId(2), m);
        assert_eq!(
            find_lowest_rq(&s, p),
            Some(CpuId(2)),
            "task_cpu when it is among the lowest"
        );
        s.cpupri.set(CpuId(2), 30);
        assert_eq!(find_lowest_rq(&s, p), Some(CpuId(0)), "then this CPU");
        s.cpupri.set(CpuId(0), 30);
        assert_eq!(
            find_lowest_rq(&s, p),
            Some(CpuId(1)),
            "then the first lowest CPU in the domain"
        );
        // The weakest level wins over task_cpu at a weaker-than-p level.
        s.cpupri.set(CpuId(0), CPUPRI_NORMAL);
        s.cpupri.set(CpuId(1), 40);
        s.cpupri.set(CpuId(2), 10);
        s.cpupri.set(CpuId(3), 20);
        assert_eq!(find_lowest_rq(&s, p), Some(CpuId(0)));
        s.cpupri.set(CpuId(0), 60);
        assert_eq!(
            find_lowest_rq(&s, p),
            Some(CpuId(2)),
            "task_cpu holds the weakest level"
        );
        // Nothing weaker than p anywhere: none.
        for c in CpuId::all(4) {
            s.cpupri.set(c, 50);
        }
        assert_eq!(find_lowest_rq(&s, p), None);
        // Pinned: none, even with free CPUs.
        s.cpupri.set(CpuId(1), CPUPRI_NORMAL);
        let pinned = rt_task(&mut s, Policy::Fifo, 50, CpuId(2), CpuMask::single(CpuId(2)));
        assert_eq!(find_lowest_rq(&s, pinned), None);
    }

    #[test]
    fn rt_find_lowest_rq_nearest_domain_beats_this_cpu() {
        // Two LLCs {0,1} {2,3}; p last ran on cpu2; this CPU is 0.
        let mut s = sched_state(4, Some(2));
        let m = all(&s);
        let p = rt_task(&mut s, Policy::Fifo, 50, CpuId(2), m);
        s.cpupri.set(CpuId(2), 60);
        s.cpupri.set(CpuId(1), 60);
        // Lowest set {0, 3}: cpu3 shares cpu2's LLC, cpu0 is only in the PKG domain.
        assert_eq!(find_lowest_rq(&s, p), Some(CpuId(3)));
        s.cpupri.set(CpuId(3), 60);
        assert_eq!(
            find_lowest_rq(&s, p),
            Some(CpuId(0)),
            "this CPU in the next domain up"
        );
    }

    #[test]
    fn rt_pushable_list_orders_by_prio_then_fifo_and_drives_rto_mask() {
        let mut s = sched_state(2, None);
        let m = all(&s);
        let a = rt_task(&mut s, Policy::Fifo, 10, CpuId(1), m);
        let b = rt_task(&mut s, Policy::Fifo, 30, CpuId(1), m);
        let c = rt_task(&mut s, Policy::Fifo, 10, CpuId(1), m);
        let pinned = rt_task(&mut s, Policy::Fifo, 90, CpuId(1), CpuMask::single(CpuId(1)));
        for p in [a, b, c, pinned] {
            wake(&mut s, CpuId(1), p);
        }
        let order: Vec<TaskId> = s.rqs[1].rt.pushable_tasks.iter().map(|&(_, _, t)| t).collect();
        assert_eq!(order, vec![b, a, c], "pinned tasks are never pushable");
        assert_eq!(s.rqs[1].rt.highest_prio.next, rt_prio(30));
        assert!(s.rqs[1].rt.overloaded);
        assert_eq!(s.rto_mask, CpuMask::single(CpuId(1)));
        // The running task leaves the pushable list; put_prev brings it back at the tail of
        // its priority.
        run(&mut s, CpuId(1), b);
        assert_eq!(s.rqs[1].rt.highest_prio.next, rt_prio(10));
        run(&mut s, CpuId(1), pinned);
        let order: Vec<TaskId> = s.rqs[1].rt.pushable_tasks.iter().map(|&(_, _, t)| t).collect();
        assert_eq!(order, vec![b, a, c]);
        assert_eq!(
            s.rqs[1].balance_callbacks,
            vec![BalanceCallback::PushRt],
            "queued once"
        );
        for p in [a, b, c] {
            assert!(dequeue_task_rt(&mut s, CpuId(1), p, dequeue_flags_sleep()));
        }
        assert!(!s.rqs[1].rt.overloaded);
        assert!(s.rto_mask.is_empty());
        assert_eq!(overloaded_cpus(&s), s.rto_mask);
    }

    #[test]
    fn rt_equal_prio_wakeup_preempts_only_for_pinned_wakee_vs_movable_curr() {
        let mut s = sched_state(2, None);
        let m = all(&s);
        let curr = rt_task(&mut s, Policy::Fifo, 10, CpuId(0), m);
        wake(&mut s, CpuId(0), curr);
        run(&mut s, CpuId(0), curr);
        let movable = rt_task(&mut s, Policy::Fifo, 10, CpuId(0), m);
        wake(&mut s, CpuId(0), movable);
        wakeup_preempt_rt(&mut s, CpuId(0), movable, WakeFlags::TTWU);
        assert!(!s.tasks[curr.idx()].need_resched, "wakee can go elsewhere itself");
        let pinned = rt_task(&mut s, Policy::Fifo, 10, CpuId(0), CpuMask::single(CpuId(0)));
        wake(&mut s, CpuId(0), pinned);
        wakeup_preempt_rt(&mut s, CpuId(0), pinned, WakeFlags::TTWU);
        assert!(
            s.tasks[curr.idx()].need_resched,
            "curr can move, the wakee cannot"
        );
        assert_eq!(queue(&s, rt_prio(10)), [pinned, curr, movable]);
    }

    #[test]
    fn rt_select_task_rq_leaves_only_when_stuck_behind_rt() {
        let mut s = sched_state(2, None);
        let m = all(&s);
        let p = rt_task(&mut s, Policy::Fifo, 10, CpuId(0), m);
        assert_eq!(
            select_task_rq_rt(&s, p, CpuId(0), WakeFlags::TTWU),
            CpuId(0),
            "idle target: stay"
        );
        let hog = rt_task(&mut s, Policy::Fifo, 10, CpuId(0), m);
        wake(&mut s, CpuId(0), hog);
        run(&mut s, CpuId(0), hog);
        assert_eq!(
            select_task_rq_rt(&s, p, CpuId(0), WakeFlags::TTWU),
            CpuId(1),
            "equal-prio RT curr: go to cpu1"
        );
        assert_eq!(
            select_task_rq_rt(&s, p, CpuId(0), WakeFlags::empty()),
            CpuId(0),
            "not a wakeup or fork: stay"
        );
        let strong = rt_task(&mut s, Policy::Fifo, 20, CpuId(0), m);
        assert_eq!(
            select_task_rq_rt(&s, strong, CpuId(0), WakeFlags::TTWU),
            CpuId(0),
            "beats curr: stay"
        );
    }

    fn kernel(s: SchedState) -> Rc<Kernel> {
        Kernel::from_state(s)
    }

    /// Run `f` on cpu 0 of `k`'s machine until it parks.
    fn run_on_cpu0<F: std::future::Future<Output = ()> + 'static>(k: &Rc<Kernel>, f: F) {
        run_on(k, CpuId(0), TaskId(0), f);
    }

    /// Run `f` as the context of task `task`, booted on `cpu`, until it parks.
    fn run_on<F: std::future::Future<Output = ()> + 'static>(k: &Rc<Kernel>, cpu: CpuId, task: TaskId, f: F) {
        let m = k.m.clone();
        let m2 = m.clone();
        let ctx = crate::task::task_ctx(task);
        m.spawn(ctx, async move {
            f.await;
            m2.halt().await;
        });
        m.boot_cpu(cpu, ctx);
        let mut ex = Executor::new(m);
        ex.run(1_000_000, &mut |_| true);
    }

    #[test]
    fn rt_push_moves_waiting_task_to_the_lowest_cpu() {
        let mut s = sched_state(3, None);
        let m = all(&s);
        let hog = rt_task(&mut s, Policy::Fifo, 50, CpuId(0), m);
        let waiter = rt_task(&mut s, Policy::Fifo, 40, CpuId(0), m);
        let mid = rt_task(&mut s, Policy::Fifo, 20, CpuId(1), m);
        wake(&mut s, CpuId(0), hog);
        run(&mut s, CpuId(0), hog);
        wake(&mut s, CpuId(0), waiter);
        wake(&mut s, CpuId(1), mid);
        run(&mut s, CpuId(1), mid);
        assert_eq!(s.rto_mask, CpuMask::single(CpuId(0)));
        let k = kernel(s);
        let k2 = k.clone();
        run_on_cpu0(&k, async move {
            k2.rq_lock(CpuId(0)).await;
            push_rt_tasks(&k2, CpuId(0)).await;
            k2.rq_unlock(CpuId(0)).await;
        });
        let s = k.st();
        assert!(k.violations.borrow().is_empty());
        assert_eq!(
            s.tasks[waiter.idx()].cpu,
            CpuId(2),
            "cpu2 (no RT) is lower than cpu1 (rt 20)"
        );
        assert_eq!(s.rqs[2].rt.rt_nr_running, 1);
        assert!(s.tasks[2].need_resched, "cpu2's idle task is told to reschedule");
        // Queued but not yet running there, the moved task is pushable on cpu2 (as in Linux).
        assert_eq!(s.rto_mask, CpuMask::single(CpuId(2)));
        assert!(!s.rqs[0].rt.overloaded);
        assert!(cpupri_consistent(&s, CpuId(0)) && cpupri_consistent(&s, CpuId(2)));
    }

    /// Two CPUs without RT_PUSH_IPI: cpu1 runs a FIFO task of `curr_prio` and has a FIFO task
    /// of `waiter_prio` queued behind it; cpu0 (idle) runs `pull_rt_task()` under its rq lock.
    /// Returns the kernel and the waiter.
    fn pull_to_idle_cpu0(curr_prio: u32, waiter_prio: u32) -> (Rc<Kernel>, TaskId) {
        let mut s = sched_state(2, None);
        s.feat.rt_push_ipi = false;
        let m = all(&s);
        let curr = rt_task(&mut s, Policy::Fifo, curr_prio, CpuId(1), m);
        let waiter = rt_task(&mut s, Policy::Fifo, waiter_prio, CpuId(1), m);
        wake(&mut s, CpuId(1), curr);
        run(&mut s, CpuId(1), curr);
        wake(&mut s, CpuId(1), waiter);
        let k = kernel(s);
        let k2 = k.clone();
        run_on_cpu0(&k, async move {
            k2.rq_lock(CpuId(0)).await;
            pull_rt_task(&k2, CpuId(0)).await;
            k2.rq_unlock(CpuId(0)).await;
        });
        (k, waiter)
    }

    #[test]
    fn rt_pull_takes_stronger_pushable_task_unless_it_beats_its_curr() {
        let (k, waiter) = pull_to_idle_cpu0(80, 40);
        let s = k.st();
        assert_eq!(s.tasks[waiter.idx()].cpu, CpuId(0));
        assert_eq!(s.rqs[0].rt.rt_nr_running, 1);
        assert!(s.tasks[0].need_resched, "the puller reschedules");
        assert_eq!(
            s.rto_mask,
            CpuMask::single(CpuId(0)),
            "pulled, not yet running: pushable here"
        );
    }

    #[test]
    fn rt_pull_leaves_a_task_that_is_about_to_preempt_its_curr() {
        let (k, wakee) = pull_to_idle_cpu0(30, 40);
        let s = k.st();
        assert_eq!(s.tasks[wakee.idx()].cpu, CpuId(1), "it will run on cpu1 at once");
        assert!(!s.tasks[0].need_resched);
    }

    #[test]
    fn rt_pull_with_push_ipi_runs_the_chain_over_overloaded_cpus() {
        // cpu0 is overloaded; cpu2 pulls.
        let mut s = sched_state(3, None);
        let m = all(&s);
        let hog = rt_task(&mut s, Policy::Fifo, 80, CpuId(0), m);
        let waiter = rt_task(&mut s, Policy::Fifo, 40, CpuId(0), m);
        wake(&mut s, CpuId(0), hog);
        run(&mut s, CpuId(0), hog);
        wake(&mut s, CpuId(0), waiter);
        let k = kernel(s);
        let k2 = k.clone();
        run_on(&k, CpuId(2), TaskId(0), async move {
            k2.rq_lock(CpuId(2)).await;
            pull_rt_task(&k2, CpuId(2)).await;
            k2.rq_unlock(CpuId(2)).await;
        });
        {
            let s = k.st();
            assert_eq!(
                s.tasks[waiter.idx()].cpu,
                CpuId(0),
                "no remote locking with RT_PUSH_IPI"
            );
            assert!(s.rqs[0].rt_push_work_pending);
            assert_eq!(s.rto.rto_cpu, Some(CpuId(0)));
            assert!(s.m.ipi_pending(CpuId(0), core::ipi::CALL_FUNCTION));
        }
        // Hop 1, on cpu0: push the waiter to the first idle CPU (cpu1).
        let k2 = k.clone();
        run_on(&k, CpuId(0), TaskId(1), async move {
            rto_push_irq_work_func(&k2, CpuId(0)).await
        });
        {
            let s = k.st();
            assert_eq!(s.tasks[waiter.idx()].cpu, CpuId(1));
            assert!(!s.rqs[0].rt_push_work_pending);
            // Queued, not yet running, the waiter makes cpu1 overloaded: the chain goes on.
            assert_eq!(s.rto.rto_cpu, Some(CpuId(1)));
            assert!(s.rqs[1].rt_push_work_pending);
        }
        // Hop 2, on cpu1: the waiter beats the idle donor, so resched, no push. The mask is
        // exhausted but `rto_loop` lags `rto_loop_next`, so one more pass starts, again at
        // cpu1 (hop 3); then the chain ends.
        let k2 = k.clone();
        let hops = Rc::new(std::cell::Cell::new(0));
        let hops2 = hops.clone();
        run_on(&k, CpuId(1), TaskId(2), async move {
            for _ in 0..4 {
                if !k2.st().rqs[1].rt_push_work_pending {
                    break;
                }
                hops2.set(hops2.get() + 1);
                rto_push_irq_work_func(&k2, CpuId(1)).await;
            }
        });
        let s = k.st();
        assert!(k.violations.borrow().is_empty(), "{:?}", k.violations.borrow());
        assert_eq!(hops.get(), 2, "the second pass of the round visits cpu1 again");
        assert_eq!(s.tasks[waiter.idx()].cpu, CpuId(1));
        assert!(s.tasks[1].need_resched);
        assert!(!s.rqs[1].rt_push_work_pending);
        assert_eq!(s.rto.rto_cpu, None, "the chain ends");
        assert_eq!(s.rto.rto_loop, s.rto.rto_loop_next);
    }
}
