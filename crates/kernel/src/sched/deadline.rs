//! The deadline class: SCHED_DEADLINE with the Constant Bandwidth Server and global EDF.
//!
//! Linux: kernel/sched/deadline.c (CONFIG_SMP, one root domain).
//!
//! Every DL entity has a reservation: runtime Q every period P, with relative deadline D
//! (D-1). Its *scheduling* deadline and remaining budget (`deadline`, `runtime`) follow the
//! CBS rules: a wakeup that would overrun its bandwidth gets a new deadline (D-7, with the
//! revised CBS rule for constrained D < P), running charges `runtime` (D-5), an exhausted
//! budget throttles the entity until its replenishment timer fires at the next period (D-6).
//! Per CPU, a [`DlRq`] keeps the runnable entities ordered by deadline (D-4); the pick is the
//! earliest. Across CPUs, [`CpuDl`](crate::sched::cpudeadline::CpuDl) tracks each CPU's
//! earliest deadline and push/pull move pushable tasks so that the earliest deadlines run
//! (global EDF, D-12, D-13), mirroring the RT class's push/pull (see [`crate::sched::rt`]).
//!
//! Each CPU also has a *fair server* (D-20, [`DlEntity::Server`]): a deferred DL entity with
//! 50 ms every second, started by the first fair enqueue. Fair (and idle) time drains its
//! budget in the background, so while fair tasks get the CPU it never competes; if they starve
//! under RT or DL load, its timer at the zero-laxity time queues it as a real DL entity, and
//! when picked it runs the fair class's pick for the rest of its budget, then throttles. The
//! `dl_server` feature turns it off (the old "RT starves fair" behaviour).
//!
//! The entity being charged is the rq's *scheduling context*: with Proxy Execution the task
//! executing (`rq.curr`) may be a non-DL lock owner running on a DL donor's budget. The class
//! keeps its own pointer to the entity it set as next, `dl_rq.curr` (v29 3/9), and charges
//! and compares against it ([`dl_curr`]); with the `dl_rq_curr` feature off it derives the
//! entity from `rq.donor` as 6.17 does.
//!
//! Locking: as in rt.rs, the sync hooks run with the rq lock of `cpu` held and never drop it
//! (S-4); the async paths ([`push_dl_tasks`], [`pull_dl_task`], [`balance_dl`],
//! [`task_woken_dl`], [`dl_task_timer`]) may drop and retake it in `double_lock_balance`.
//!
//! Deviation: no GRUB reclaiming (D-11) and no active-utilisation tracking (D-9):
//! `dl_non_contending`, the inactive timer and `running_bw`/`this_bw` are not modelled, and
//! the bandwidth of a task that leaves SCHED_DEADLINE is released at once rather than at its
//! 0-lag time. No HRTICK_DL: an overrun is caught by the next tick (D-5). PI boosting by a DL
//! waiter (D-21) covers non-DL owners only: a SCHED_DEADLINE owner keeps its own reservation
//! even if a waiter's deadline is earlier, and a boost keeps the first DL donor's reservation
//! until it ends (Linux follows the current top waiter); DL waiters on an rt_mutex queue by
//! prio and then FIFO, not by deadline. No capacity scaling, no PELT
//! (`update_dl_rq_load_avg`), no migrate-disable. Deadlines are absolute ns since boot and
//! never wrap, so `dl_time_before(a, b)` is `a < b`. The CBS overflow test (`dl_entity_overflow`)
//! is computed exactly in 128-bit arithmetic instead of with `DL_SCALE`-truncated operands.

use crate::sched::sortedset::SortedSet;

use sim::{CpuId, Nanos};
use uapi::Policy;

use crate::sched::core::{self, Kernel};
use crate::sched::cpupri::{convert_prio, CPUPRI_HIGHER};
use crate::sched::topology::sd;
use crate::sched::{BalanceCallback, Class, DequeueFlags, EnqueueFlags, SchedState, WakeFlags};
use crate::task::TaskId;
use crate::time::TimerFn;
use crate::tracepoints::EventKind;

/// `BW_SHIFT`: fixed-point shift of bandwidths (`bw = Q/P << 20`).
pub const BW_SHIFT: u32 = 20;
/// `BW_UNIT`: a bandwidth of 1.
pub const BW_UNIT: u64 = 1 << BW_SHIFT;
/// `DL_SCALE`: the smallest valid runtime is `1 << DL_SCALE` ns (D-1).
pub const DL_SCALE: u32 = 10;
/// `MAX_DL_PRIO - 1`: the `prio` of every DL task.
pub const DL_PRIO: i32 = -1;
/// `DL_MAX_TRIES`: attempts of `find_lock_later_rq`.
pub const DL_MAX_TRIES: u32 = 3;
/// `sysctl_sched_dl_period_min` (100 µs) and `sysctl_sched_dl_period_max` (2^22 µs).
pub const DL_PERIOD_MIN_NS: Nanos = 100_000;
pub const DL_PERIOD_MAX_NS: Nanos = (1 << 22) * 1_000;
/// `global_rt_runtime()` / `global_rt_period()`: 0.95 s every 1 s (D-2).
pub const GLOBAL_RT_RUNTIME_NS: Nanos = 950_000_000;
pub const GLOBAL_RT_PERIOD_NS: Nanos = 1_000_000_000;
/// The fair server's reservation (D-20): 50 ms every 1 s.
pub const FAIR_SERVER_RUNTIME_NS: Nanos = 50_000_000;
pub const FAIR_SERVER_PERIOD_NS: Nanos = 1_000_000_000;

/// `EPERM`, `EBUSY` and `EINVAL` as `sched_setattr()` returns them (negated).
pub const EPERM: i32 = uapi::Errno::EPERM.0;
pub const EBUSY: i32 = uapi::Errno::EBUSY.0;
pub const EINVAL: i32 = uapi::Errno::EINVAL.0;

/// `to_ratio(period, runtime)`: `runtime / period` in [`BW_SHIFT`] fixed point.
///
/// Linux: kernel/sched/core.c to_ratio().
pub fn to_ratio(period: Nanos, runtime: Nanos) -> u64 {
    if period == 0 {
        return 0;
    }
    ((runtime as u128) << BW_SHIFT) as u64 / period
}

/// A DL entity on a deadline queue: a task's `p->dl`, or a CPU's fair server
/// (`rq->fair_server`, D-20). A server is a scheduling context like a task (it can be picked,
/// charged, throttled), but runs the tasks of the class it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DlEntity {
    Task(TaskId),
    Server(CpuId),
}

/// `struct sched_dl_entity`. Protected by: the rq lock of the task's CPU (the parameters
/// also by `pi_lock`, as `__setparam_dl` runs under both).
#[derive(Clone, Debug, Default)]
pub struct SchedDlEntity {
    /// Reservation parameters (ns): Q, D, P.
    pub dl_runtime: Nanos,
    pub dl_deadline: Nanos,
    pub dl_period: Nanos,
    /// `Q/P` and `Q/D` in [`BW_SHIFT`] fixed point.
    pub dl_bw: u64,
    pub dl_density: u64,
    /// Remaining budget of the current instance (may go negative by an overrun).
    pub runtime: i64,
    /// Absolute scheduling deadline.
    pub deadline: Nanos,
    /// Budget exhausted (or yielded); off the queue until the replenishment timer fires.
    pub dl_throttled: bool,
    /// `sched_yield()` gave up the rest of this instance's budget (D-10).
    pub dl_yielded: bool,
    /// Position in the rq's deadline tree while queued there (`rb_node` non-empty):
    /// (deadline at insertion, FIFO ticket).
    pub rb_key: Option<(Nanos, u64)>,
    /// Task only: position in a pushable tree while on one (`pushable_dl_tasks` non-empty):
    /// (the CPU whose tree, deadline at insertion, FIFO ticket), so that the task leaves it
    /// without a search, as Linux erases the node by pointer.
    pub pushable_key: Option<(CpuId, Nanos, u64)>,
    /// The replenishment timer (`dl_timer`) is armed (`hrtimer_is_queued`).
    pub dl_timer_queued: bool,
    /// The deadline of the last instance counted as missed (a miss is counted once per
    /// instance; see `dl_check_miss`).
    pub missed_deadline: Option<Nanos>,
    /// Server only: started (`dl_server_active`).
    pub dl_server_active: bool,
    /// Server only: a deferred server (`dl_defer`): it waits in the throttled state until its
    /// zero-laxity time before it competes as a DL entity.
    pub dl_defer: bool,
    /// Server only: throttled waiting for the zero-laxity timer (`dl_defer_armed`).
    pub dl_defer_armed: bool,
    /// Server only: the starvation case is being handled; replenishments enqueue it at once
    /// instead of deferring again (`dl_defer_running`).
    pub dl_defer_running: bool,
    /// Task only: while PI-boosted by a SCHED_DEADLINE waiter (D-21), the task whose
    /// reservation this entity runs with (`dl_se->pi_se`); `None` = its own.
    pub pi_se: Option<TaskId>,
}

/// `dl_rq->earliest_dl`: the earliest queued deadline (`curr`) and the earliest pushable
/// deadline (`next`); `None` where Linux stores 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EarliestDl {
    pub curr: Option<Nanos>,
    pub next: Option<Nanos>,
}

/// `struct dl_rq`. Protected by: the rq lock.
#[derive(Clone, Debug, Default)]
pub struct DlRq {
    /// The deadline tree (`dl_rq->root`, leftmost cached): ordered by deadline, then by a FIFO
    /// ticket, so entities with equal deadlines keep their arrival order as `rb_add_cached`
    /// does.
    pub root: SortedSet<(Nanos, u64, DlEntity)>,
    /// Entities on `root` (`dl_nr_running`).
    pub dl_nr_running: u32,
    pub earliest_dl: EarliestDl,
    /// The pushable tree (`rq->dl.pushable_dl_tasks_root`): queued, not running, movable DL
    /// tasks by deadline, FIFO among equals.
    pub pushable: SortedSet<(Nanos, u64, TaskId)>,
    /// The pushable tree is non-empty (`dl_rq->overloaded`).
    pub overloaded: bool,
    /// Next FIFO ticket for either tree.
    pub seq: u64,
    /// `dl_rq->curr` (v29 3/9, spec P4): the DL task entity this rq has set as next (set in
    /// [`set_next_task_dl`], cleared in [`put_prev_task_dl`]), like `cfs_rq->curr`. With the
    /// `dl_rq_curr` feature the class charges and compares against it instead of deriving
    /// the running entity from `rq.donor`. The fair server is not "set as next" through the
    /// class and never appears here; it is charged from the fair class (D-20).
    pub curr: Option<TaskId>,
}

impl DlRq {
    /// The leftmost (earliest-deadline) entity.
    pub fn leftmost(&self) -> Option<DlEntity> {
        self.root.first().map(|&(_, _, e)| e)
    }

    /// `has_pushable_dl_tasks()`.
    pub fn has_pushable_dl_tasks(&self) -> bool {
        !self.pushable.is_empty()
    }
}

/// Root-domain admission state (`struct dl_bw` of the root domain). Protected by:
/// `dl_b->lock` in Linux; every update here is one machine step.
#[derive(Clone, Debug, Default)]
pub struct DlBw {
    /// Per-CPU limit (`dl_b->bw`, 0.95 by default).
    pub bw: u64,
    /// Admitted bandwidth of DL tasks and fair servers (`dl_b->total_bw`).
    pub total_bw: u64,
}

impl DlBw {
    /// `init_dl_bw()`; the fair servers add their reservations at boot ([`fair_server_init`]).
    pub fn new() -> DlBw {
        DlBw {
            bw: to_ratio(GLOBAL_RT_PERIOD_NS, GLOBAL_RT_RUNTIME_NS),
            total_bw: 0,
        }
    }
}

// ---------------------------------------------------------------------- helpers

/// `dl_server(dl_se)`: the entity is a server, not a task.
fn dl_server(e: DlEntity) -> bool {
    matches!(e, DlEntity::Server(_))
}

/// The entity's `struct sched_dl_entity` (`&p->dl` or `&rq->fair_server`).
fn dl_se(s: &SchedState, e: DlEntity) -> &SchedDlEntity {
    match e {
        DlEntity::Task(p) => &s.tasks[p.idx()].dl,
        DlEntity::Server(c) => &s.rqs[c.idx()].fair_server,
    }
}

/// Mutable [`dl_se`].
fn dl_se_mut(s: &mut SchedState, e: DlEntity) -> &mut SchedDlEntity {
    match e {
        DlEntity::Task(p) => &mut s.tasks[p.idx()].dl,
        DlEntity::Server(c) => &mut s.rqs[c.idx()].fair_server,
    }
}

/// `dl_task(p)`: the task is in the DL class.
///
/// Linux: include/linux/sched/deadline.h dl_task().
pub fn dl_task(s: &SchedState, p: TaskId) -> bool {
    s.tasks[p.idx()].class == Class::Deadline
}

/// `on_dl_rq()`: on the deadline tree.
///
/// Linux: kernel/sched/deadline.c on_dl_rq().
pub fn on_dl_rq(s: &SchedState, p: TaskId) -> bool {
    s.tasks[p.idx()].dl.rb_key.is_some()
}

/// `is_dl_boosted()`: running on a DL waiter's reservation (D-21).
///
/// Linux: kernel/sched/deadline.c is_dl_boosted().
fn is_dl_boosted(s: &SchedState, e: DlEntity) -> bool {
    dl_se(s, e).pi_se.is_some()
}

/// `pi_of(dl_se)`'s reservation (Q, D, P): the entity's own, or while PI-boosted the donor's.
fn pi_params(s: &SchedState, e: DlEntity) -> (Nanos, Nanos, Nanos) {
    let se = dl_se(s, e);
    let pi = se.pi_se.map_or(se, |q| &s.tasks[q.idx()].dl);
    (pi.dl_runtime, pi.dl_deadline, pi.dl_period)
}

/// `dl_is_implicit()`: D == P.
///
/// Linux: kernel/sched/deadline.c dl_is_implicit().
fn dl_is_implicit(se: &SchedDlEntity) -> bool {
    se.dl_deadline == se.dl_period
}

/// `dl_next_period()`: the start of the next period.
///
/// Linux: kernel/sched/deadline.c dl_next_period().
fn dl_next_period(se: &SchedDlEntity) -> Nanos {
    (se.deadline + se.dl_period).saturating_sub(se.dl_deadline)
}

/// `dl_entity_preempt(a, b)`: `a` has the earlier deadline.
///
/// Linux: kernel/sched/sched.h dl_entity_preempt().
///
/// Deviation: no SCHED_FLAG_SUGOV entities, so Linux's `dl_entity_is_special(a) ||` term is
/// always false; deadlines are 64-bit simulated nanoseconds that never wrap, so a plain `<`
/// stands for `dl_time_before()`.
fn dl_entity_preempt(s: &SchedState, a: TaskId, b: TaskId) -> bool {
    s.tasks[a.idx()].dl.deadline < s.tasks[b.idx()].dl.deadline
}

/// Linux: kernel/sched/deadline.c deadline_queue_push_tasks().
fn deadline_queue_push_tasks(s: &mut SchedState, cpu: CpuId) {
    if s.rqs[cpu.idx()].dl.has_pushable_dl_tasks() {
        core::queue_balance_callback(s, cpu, BalanceCallback::PushDl);
    }
}

/// Linux: kernel/sched/deadline.c deadline_queue_pull_task().
fn deadline_queue_pull_task(s: &mut SchedState, cpu: CpuId) {
    core::queue_balance_callback(s, cpu, BalanceCallback::PullDl);
}

/// `dl_overloaded()`: number of DL-overloaded CPUs (the weight of `rd->dlo_mask`).
///
/// Linux: kernel/sched/deadline.c dl_overloaded().
fn dl_overloaded(s: &SchedState) -> u32 {
    s.dlo_mask.weight()
}

/// Linux: kernel/sched/deadline.c enqueue_pushable_dl_task().
fn enqueue_pushable_dl_task(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    assert!(
        s.tasks[p.idx()].dl.rb_key.is_some(),
        "pushable DL task {p} not on the deadline tree"
    );
    dequeue_pushable_dl_task(s, cpu, p);
    // WARN_ON_ONCE(!RB_EMPTY_NODE(&p->pushable_dl_tasks)): a task is on one tree at most.
    if let Some((other, _, _)) = s.tasks[p.idx()].dl.pushable_key {
        panic!("DL task {p} made pushable on cpu{cpu} while on the pushable tree of cpu{other}");
    }
    let deadline = s.tasks[p.idx()].dl.deadline;
    let dl = &mut s.rqs[cpu.idx()].dl;
    dl.seq += 1;
    let seq = dl.seq;
    dl.pushable.insert((deadline, seq, p));
    s.tasks[p.idx()].dl.pushable_key = Some((cpu, deadline, seq));
    let dl = &mut s.rqs[cpu.idx()].dl;
    dl.earliest_dl.next = dl.pushable.first().map(|&(d, _, _)| d);
    if !dl.overloaded {
        dl.overloaded = true;
        s.dlo_mask.set(cpu);
    }
}

/// Take `p` off `cpu`'s pushable tree if it is on it (a task on another CPU's tree is not
/// on this one).
///
/// Linux: kernel/sched/deadline.c dequeue_pushable_dl_task().
fn dequeue_pushable_dl_task(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    // Read first: a task that was never pushable keeps its entity unallocated.
    if let Some((on, deadline, seq)) = s.tasks[p.idx()].dl.pushable_key {
        if on == cpu {
            s.tasks[p.idx()].dl.pushable_key = None;
            let was = s.rqs[cpu.idx()].dl.pushable.remove(&(deadline, seq, p));
            assert!(was, "DL task {p} missing from the pushable tree of cpu{cpu}");
        }
    }
    let dl = &mut s.rqs[cpu.idx()].dl;
    dl.earliest_dl.next = dl.pushable.first().map(|&(d, _, _)| d);
    if dl.pushable.is_empty() && dl.overloaded {
        dl.overloaded = false;
        s.dlo_mask.clear(cpu);
    }
}

/// Linux: kernel/sched/deadline.c inc_dl_deadline().
fn inc_dl_deadline(s: &mut SchedState, cpu: CpuId, deadline: Nanos) {
    let earliest = s.rqs[cpu.idx()].dl.earliest_dl.curr;
    if earliest.is_none_or(|e| deadline < e) {
        if earliest.is_none() {
            s.cpupri.set(cpu, CPUPRI_HIGHER);
        }
        s.rqs[cpu.idx()].dl.earliest_dl.curr = Some(deadline);
        s.cpudl.set(cpu, deadline);
    }
}

/// Linux: kernel/sched/deadline.c dec_dl_deadline().
fn dec_dl_deadline(s: &mut SchedState, cpu: CpuId) {
    let rq = &mut s.rqs[cpu.idx()];
    if rq.dl.dl_nr_running == 0 {
        rq.dl.earliest_dl.curr = None;
        rq.dl.earliest_dl.next = None;
        let rt_level = convert_prio(rq.rt.highest_prio.curr);
        s.cpudl.clear(cpu);
        s.cpupri.set(cpu, rt_level);
    } else {
        let first = rq.dl.root.first().map(|&(d, _, _)| d).expect("dl_nr_running > 0");
        rq.dl.earliest_dl.curr = Some(first);
        s.cpudl.set(cpu, first);
    }
}

/// Put `e` on the deadline tree and account it.
///
/// Linux: kernel/sched/deadline.c __enqueue_dl_entity() (with inc_dl_tasks(): a server counts
/// in `dl_nr_running` but not in `rq->nr_running`).
fn __enqueue_dl_entity(s: &mut SchedState, cpu: CpuId, e: DlEntity) {
    assert!(dl_se(s, e).rb_key.is_none(), "{e:?} already on a deadline tree");
    assert!(!dl_se(s, e).dl_throttled, "enqueue of throttled {e:?}");
    let deadline = dl_se(s, e).deadline;
    let dl = &mut s.rqs[cpu.idx()].dl;
    dl.seq += 1;
    let key = (deadline, dl.seq);
    dl.root.insert((key.0, key.1, e));
    dl.dl_nr_running += 1;
    dl_se_mut(s, e).rb_key = Some(key);
    if !dl_server(e) {
        core::add_nr_running(s, cpu, 1);
    }
    inc_dl_deadline(s, cpu, deadline);
}

/// Take `e` off the deadline tree (no-op if it is not there, e.g. throttled).
///
/// Linux: kernel/sched/deadline.c __dequeue_dl_entity() (with dec_dl_tasks()).
fn __dequeue_dl_entity(s: &mut SchedState, cpu: CpuId, e: DlEntity) {
    let Some(key) = dl_se(s, e).rb_key else {
        return;
    };
    let dl = &mut s.rqs[cpu.idx()].dl;
    let removed = dl.root.remove(&(key.0, key.1, e));
    assert!(removed, "{e:?} missing from cpu{cpu}'s deadline tree");
    assert!(dl.dl_nr_running > 0, "dl_nr_running underflow on cpu{cpu}");
    dl.dl_nr_running -= 1;
    dl_se_mut(s, e).rb_key = None;
    if !dl_server(e) {
        core::sub_nr_running(s, cpu, 1);
    }
    dec_dl_deadline(s, cpu);
}

/// Model-only: count a deadline miss of `p`'s current instance once, if its absolute
/// deadline has passed (`now > deadline`, or `now >= deadline` where the caller knows the
/// instance still has work at that instant).
///
/// The definition (documented in docs/metrics.md): an instance misses when its task is still
/// runnable — running, waiting for a CPU or throttled — once its absolute deadline has
/// passed; it is counted when the kernel next looks at the task (a charge, a replenishment,
/// or the task blocking, i.e. the rt-app phase ending after the deadline).
fn dl_check_miss(s: &mut SchedState, cpu: CpuId, p: TaskId, inclusive: bool) {
    let now = s.rqs[cpu.idx()].clock;
    if s.tasks[p.idx()].policy != Policy::Deadline {
        // A task running on a PI donor's reservation (D-21) has no deadlines of its own.
        return;
    }
    let se = &s.tasks[p.idx()].dl;
    let passed = if inclusive {
        now >= se.deadline
    } else {
        now > se.deadline
    };
    if se.deadline == 0 || !passed || se.missed_deadline == Some(se.deadline) {
        return;
    }
    let deadline = se.deadline;
    s.tasks[p.idx()].dl.missed_deadline = Some(deadline);
    let pid = s.tasks[p.idx()].pid;
    core::emit(
        s,
        cpu,
        EventKind::DlDeadlineMiss {
            pid,
            deadline_ns: deadline,
        },
    );
}

// ---------------------------------------------------------------------- CBS rules

/// A new instance: deadline one relative deadline from now, full budget.
///
/// Linux: kernel/sched/deadline.c replenish_dl_new_period().
fn replenish_dl_new_period(s: &mut SchedState, cpu: CpuId, e: DlEntity) {
    let now = s.rqs[cpu.idx()].clock;
    let (pi_runtime, pi_deadline, _) = pi_params(s, e);
    let se = dl_se_mut(s, e);
    se.deadline = now + pi_deadline;
    se.runtime = pi_runtime as i64;
    // A deferred server not handling a starvation case waits for its zero-laxity time.
    if se.dl_defer && !se.dl_defer_running {
        se.dl_throttled = true;
        se.dl_defer_armed = true;
    }
}

/// First activation after the parameters were set: start a new instance if the deadline is
/// in the past.
///
/// Linux: kernel/sched/deadline.c setup_new_dl_entity().
fn setup_new_dl_entity(s: &mut SchedState, cpu: CpuId, e: DlEntity) {
    let now = s.rqs[cpu.idx()].clock;
    assert!(!dl_se(s, e).dl_throttled, "setup of throttled {e:?}");
    if dl_se(s, e).deadline > now {
        return;
    }
    replenish_dl_new_period(s, cpu, e);
}

/// Refill after throttling (D-6): postpone the deadline by whole periods until the budget is
/// positive; a deadline still in the past starts a new instance from now. A deferred server
/// at its zero-laxity time that would overflow its bandwidth starts a new period from now;
/// one replenished while not handling starvation is deferred again (D-20).
///
/// Linux: kernel/sched/deadline.c replenish_dl_entity().
fn replenish_dl_entity(s: &mut SchedState, cpu: CpuId, e: DlEntity) {
    let now = s.rqs[cpu.idx()].clock;
    let pi = pi_params(s, e);
    let (pi_runtime, pi_deadline, pi_period) = pi;
    let se = dl_se_mut(s, e);
    assert!(pi_runtime > 0, "replenish of {e:?} without a reservation");
    // A boosted non-DL task (no own deadline) or a deferred server that would overflow at
    // its zero-laxity time: a new period.
    if se.dl_deadline == 0 || (se.dl_defer_armed && dl_entity_overflow(se, pi, now)) {
        se.deadline = now + pi_deadline;
        se.runtime = pi_runtime as i64;
    }
    let se = dl_se_mut(s, e);
    if se.dl_yielded && se.runtime > 0 {
        se.runtime = 0;
    }
    // Bounded: each round adds a full runtime, and an overrun is at most a few ticks.
    let limit = 1 + (se.runtime.unsigned_abs() / pi_runtime) + 1;
    let mut rounds = 0;
    while se.runtime <= 0 {
        se.deadline += pi_period;
        se.runtime += pi_runtime as i64;
        rounds += 1;
        assert!(rounds <= limit, "replenish of {e:?} did not converge");
    }
    if se.deadline < now {
        replenish_dl_new_period(s, cpu, e);
    }
    let se = dl_se_mut(s, e);
    se.dl_yielded = false;
    se.dl_throttled = false;
    if se.dl_defer_armed {
        se.dl_defer_armed = false;
        return;
    }
    // Deferred and not handling starvation, with laxity left: throttle until the zero-laxity
    // time. (The newest kernels no longer ask whether the server has tasks here.)
    if se.dl_defer && !se.dl_defer_running && now < se.deadline.saturating_sub(se.runtime.max(0) as u64) {
        se.dl_defer_armed = true;
        se.dl_throttled = true;
        if !start_dl_timer(s, cpu, e) {
            cancel_dl_timer(s, e);
            let se = dl_se_mut(s, e);
            se.dl_defer_armed = false;
            se.dl_throttled = false;
        }
    }
}

/// Whether keeping the current (deadline, runtime) would let the entity use more than its
/// bandwidth from `t` on: `runtime / (deadline - t) > dl_runtime / dl_deadline`, with the
/// reservation `pi` (`pi_of(dl_se)`: its own, or a PI donor's).
///
/// Linux: kernel/sched/deadline.c dl_entity_overflow().
fn dl_entity_overflow(se: &SchedDlEntity, pi: (Nanos, Nanos, Nanos), t: Nanos) -> bool {
    let (pi_runtime, pi_deadline, _) = pi;
    let left = pi_deadline as i128 * se.runtime as i128;
    let right = (se.deadline as i128 - t as i128) * pi_runtime as i128;
    right < left
}

/// Revised CBS for constrained deadlines: keep the deadline, scale the budget to the time
/// left at the entity's density.
///
/// Linux: kernel/sched/deadline.c update_dl_revised_wakeup().
fn update_dl_revised_wakeup(s: &mut SchedState, cpu: CpuId, e: DlEntity) {
    let now = s.rqs[cpu.idx()].clock;
    let se = dl_se_mut(s, e);
    assert!(se.deadline > now, "revised wakeup with a past deadline");
    let laxity = se.deadline - now;
    se.runtime = ((se.dl_density as u128 * laxity as u128) >> BW_SHIFT) as i64;
}

/// The CBS wakeup rule (D-7).
///
/// Linux: kernel/sched/deadline.c update_dl_entity().
fn update_dl_entity(s: &mut SchedState, cpu: CpuId, e: DlEntity) {
    let now = s.rqs[cpu.idx()].clock;
    let pi = pi_params(s, e);
    let boosted = is_dl_boosted(s, e);
    let se = dl_se(s, e);
    if se.deadline < now || dl_entity_overflow(se, pi, now) {
        if !dl_is_implicit(se) && se.deadline >= now && !boosted {
            update_dl_revised_wakeup(s, cpu, e);
            return;
        }
        replenish_dl_new_period(s, cpu, e);
    } else if dl_server(e) && se.dl_defer && !se.dl_defer_running {
        // A deferred server keeping its instance still waits for its zero-laxity time.
        let se = dl_se_mut(s, e);
        se.dl_defer_armed = true;
        se.dl_throttled = true;
    }
}

/// Arm the replenishment timer for the next period (for a deferred server waiting to run:
/// its zero-laxity time, `deadline - runtime`); false if that instant has passed (the caller
/// then replenishes at once). Arming an armed timer does nothing.
///
/// Linux: kernel/sched/deadline.c start_dl_timer().
///
/// Deviation: ns granularity (Linux compares in µs, so an instant under 1 µs past still arms
/// a timer that fires at once); the timer goes on this CPU's queue, as `hrtimer_start` does.
fn start_dl_timer(s: &mut SchedState, cpu: CpuId, e: DlEntity) -> bool {
    let now = s.rqs[cpu.idx()].clock;
    let se = dl_se(s, e);
    let act = if se.dl_defer_armed {
        assert!(se.dl_throttled, "armed deferred {e:?} not throttled");
        se.deadline.saturating_sub(se.runtime.max(0) as u64)
    } else {
        dl_next_period(se)
    };
    if act <= now {
        return false;
    }
    if !dl_se(s, e).dl_timer_queued {
        dl_se_mut(s, e).dl_timer_queued = true;
        // A server's timer is pinned to its CPU (HRTIMER_MODE_ABS_HARD on the rq's CPU).
        let (on, func) = match e {
            DlEntity::Task(p) => (s.m.this_cpu(), TimerFn::DlTask(p)),
            DlEntity::Server(c) => (c, TimerFn::DlServer(c)),
        };
        crate::time::hrtimer_start(s, on, act, 0, func);
    }
    true
}

/// Cancel `e`'s replenishment timer (`hrtimer_try_to_cancel(&dl_se->dl_timer)`).
fn cancel_dl_timer(s: &mut SchedState, e: DlEntity) {
    if !dl_se(s, e).dl_timer_queued {
        return;
    }
    dl_se_mut(s, e).dl_timer_queued = false;
    let func = match e {
        DlEntity::Task(p) => TimerFn::DlTask(p),
        DlEntity::Server(c) => TimerFn::DlServer(c),
    };
    crate::time::hrtimer_cancel(s, func);
}

/// A constrained task woken after its deadline but before its next period would run on
/// bandwidth of the next period: throttle it until then (D-8).
///
/// Linux: kernel/sched/deadline.c dl_check_constrained_dl().
fn dl_check_constrained_dl(s: &mut SchedState, cpu: CpuId, e: DlEntity) {
    let now = s.rqs[cpu.idx()].clock;
    let se = dl_se(s, e);
    if se.deadline < now && now < dl_next_period(se) {
        if is_dl_boosted(s, e) || !start_dl_timer(s, cpu, e) {
            return;
        }
        let se = dl_se_mut(s, e);
        se.dl_throttled = true;
        if se.runtime > 0 {
            se.runtime = 0;
        }
    }
}

/// Linux: kernel/sched/deadline.c enqueue_dl_entity().
fn enqueue_dl_entity(s: &mut SchedState, cpu: CpuId, e: DlEntity, flags: EnqueueFlags) {
    assert!(dl_se(s, e).rb_key.is_none(), "{e:?} enqueued twice");
    if !dl_se(s, e).dl_throttled && !dl_is_implicit(dl_se(s, e)) {
        dl_check_constrained_dl(s, cpu, e);
    }
    // A throttled entity waits for its timer, which enqueues it with ENQUEUE_REPLENISH (a
    // deferred server goes on to the rules below, which may defer it again).
    if !dl_se(s, e).dl_defer && dl_se(s, e).dl_throttled && !flags.contains(EnqueueFlags::REPLENISH) {
        return;
    }
    let now = s.rqs[cpu.idx()].clock;
    if flags.contains(EnqueueFlags::WAKEUP) {
        update_dl_entity(s, cpu, e);
    } else if flags.contains(EnqueueFlags::REPLENISH) {
        replenish_dl_entity(s, cpu, e);
    } else if flags.contains(EnqueueFlags::RESTORE) && !is_dl_boosted(s, e) && dl_se(s, e).deadline <= now {
        // `<=`: a reservation set at boot time (now = 0) has no instance yet either.
        setup_new_dl_entity(s, cpu, e);
    }
    // Still throttled (a deferred server waiting for its zero-laxity time): not queued.
    if dl_se(s, e).dl_throttled && start_dl_timer(s, cpu, e) {
        return;
    }
    if dl_se(s, e).dl_throttled {
        // The defer time has passed: run now, and drop the pointless timer.
        cancel_dl_timer(s, e);
        let se = dl_se_mut(s, e);
        se.dl_defer_armed = false;
        se.dl_throttled = false;
    }
    __enqueue_dl_entity(s, cpu, e);
}

/// Linux: kernel/sched/deadline.c dequeue_dl_entity().
fn dequeue_dl_entity(s: &mut SchedState, cpu: CpuId, e: DlEntity) {
    __dequeue_dl_entity(s, cpu, e);
}

/// Charge `delta` to `e` and throttle it if its budget ran out or it yielded (D-5).
///
/// Linux: kernel/sched/deadline.c update_curr_dl_se().
fn update_curr_dl_se(s: &mut SchedState, cpu: CpuId, e: DlEntity, delta: Nanos) {
    if delta == 0 && !dl_se(s, e).dl_yielded {
        return;
    }
    let se = dl_se(s, e);
    if dl_server(e) && se.dl_throttled && !se.dl_defer {
        return;
    }
    dl_se_mut(s, e).runtime -= delta as i64;
    if let DlEntity::Task(p) = e {
        dl_check_miss(s, cpu, p, false);
    }
    let se = dl_se(s, e);
    // A deferred server that used up its runtime in the background (its class got the CPU
    // without it) is not needed this period: start a new deferred period from now.
    if se.dl_defer && se.dl_throttled && se.runtime <= 0 {
        dl_se_mut(s, e).dl_defer_running = false;
        cancel_dl_timer(s, e);
        replenish_dl_new_period(s, cpu, e);
        let armed = start_dl_timer(s, cpu, e);
        assert!(armed, "deferred {e:?}: no timer for its new period");
        return;
    }
    if se.runtime > 0 && !se.dl_yielded {
        return;
    }
    dl_se_mut(s, e).dl_throttled = true;
    let boosted = is_dl_boosted(s, e);
    if let DlEntity::Task(p) = e {
        if !boosted {
            let pid = s.tasks[p.idx()].pid;
            core::emit(s, cpu, EventKind::DlThrottle { pid });
        }
    }
    dequeue_dl_entity(s, cpu, e);
    if let DlEntity::Task(p) = e {
        dequeue_pushable_dl_task(s, cpu, p);
    }
    // A boosted entity is never left throttled (D-21): refilled at once.
    if boosted || !start_dl_timer(s, cpu, e) {
        enqueue_dl_entity(s, cpu, e, EnqueueFlags::REPLENISH);
    }
    if s.rqs[cpu.idx()].dl.leftmost() != Some(e) {
        core::resched_curr(s, cpu);
    }
}

/// Charge the rq's scheduling context for the time since its `exec_start` (D-5). The
/// scheduling context is the DL entity set as next ([`dl_curr`]); with Proxy Execution the
/// executing `rq.curr` may be a non-DL lock owner, which gets the `sum_exec_runtime` while the
/// donor's budget pays.
///
/// Linux: kernel/sched/deadline.c update_curr_dl() (v29 3/9: `dl_rq->curr`; 6.17:
/// `rq->donor`).
pub fn update_curr_dl(s: &mut SchedState, cpu: CpuId) {
    let Some(p) = dl_curr(s, cpu) else {
        return;
    };
    if !on_dl_rq(s, p) {
        return;
    }
    let delta = core::update_curr_common(s, cpu);
    update_curr_dl_se(s, cpu, DlEntity::Task(p), delta);
}

/// The DL task whose budget runs on `cpu` now: `dl_rq->curr` with the `dl_rq_curr` feature
/// (v29 3/9), else `rq->donor` if it is a DL task (the 6.17 derivation).
///
/// The two agree in every state the model reaches: each donor change goes through
/// `put_prev_set_next_task`, which settles the outgoing entity (`put_prev_task_dl`) before
/// the pointer moves, and the `dl_rq_curr_is_donor` invariant checks it after every step.
/// So the charging is the same with the switch off (spec P4 marks the v29 diff as inferred).
/// What the switch does change is [`enqueue_task_dl`]'s test of the pointer: off, as in 6.17,
/// a donor queued again by its replenishment while another task runs on its budget becomes
/// pushable, and under `--model next` a push can then move it
/// (`findings/next-1285-donor-pushed.json`, `crates/cli/tests/donor_push.rs`).
pub fn dl_curr(s: &SchedState, cpu: CpuId) -> Option<TaskId> {
    let rq = &s.rqs[cpu.idx()];
    if s.feat.dl_rq_curr {
        rq.dl.curr
    } else {
        Some(rq.donor).filter(|&d| dl_task(s, d))
    }
}

// ---------------------------------------------------------------------- parameters, admission

/// `__checkparam_dl()` (D-1): the reservation is valid.
///
/// Linux: kernel/sched/syscalls.c __checkparam_dl().
pub fn checkparam_dl(runtime: Nanos, deadline: Nanos, period: Nanos) -> bool {
    let period = if period == 0 { deadline } else { period };
    deadline != 0
        && runtime >= (1 << DL_SCALE)
        && runtime <= deadline
        && deadline <= period
        && (DL_PERIOD_MIN_NS..=DL_PERIOD_MAX_NS).contains(&period)
        && deadline >> 63 == 0
}

/// `__dl_overflow()`: admitting `new_bw` in place of `old_bw` would exceed `bw × CPUs`.
///
/// Linux: kernel/sched/deadline.c __dl_overflow().
fn __dl_overflow(s: &SchedState, old_bw: u64, new_bw: u64) -> bool {
    let cap = s.dl_bw.bw * s.nr_cpus() as u64;
    cap < s.dl_bw.total_bw - old_bw + new_bw
}

/// Admission control (D-2) for `p` changing to `policy` with reservation `(Q, D, P)`: update
/// the root domain's `total_bw`, or refuse with `EBUSY`. Called under `pi_lock` and the rq
/// lock before the change.
///
/// Linux: kernel/sched/deadline.c sched_dl_overflow().
///
/// Deviation: a task leaving SCHED_DEADLINE releases its bandwidth here, at once; Linux keeps
/// it until the task's 0-lag time (the inactive timer, D-9), which the model does not track.
pub fn sched_dl_overflow(
    s: &mut SchedState,
    p: TaskId,
    policy: Policy,
    runtime: Nanos,
    period: Nanos,
) -> Result<(), i32> {
    let new_bw = if policy == Policy::Deadline {
        to_ratio(period, runtime)
    } else {
        0
    };
    let t = &s.tasks[p.idx()];
    let has_dl = t.policy == Policy::Deadline;
    let old_bw = t.dl.dl_bw;
    // `__sched_setscheduler` only asks when the old or the new policy is SCHED_DEADLINE.
    if !has_dl && policy != Policy::Deadline {
        return Ok(());
    }
    if has_dl && new_bw == old_bw {
        return Ok(());
    }
    if policy == Policy::Deadline && !has_dl && !__dl_overflow(s, 0, new_bw) {
        s.dl_bw.total_bw += new_bw;
        return Ok(());
    }
    if policy == Policy::Deadline && has_dl && !__dl_overflow(s, old_bw, new_bw) {
        s.dl_bw.total_bw = s.dl_bw.total_bw - old_bw + new_bw;
        return Ok(());
    }
    if policy != Policy::Deadline && has_dl {
        assert!(s.dl_bw.total_bw >= old_bw, "total_bw underflow");
        s.dl_bw.total_bw -= old_bw;
        return Ok(());
    }
    Err(EBUSY)
}

/// A fresh DL entity for `p`, new or just moved into the class: a new reservation starts with
/// no instance (no deadline, no runtime, not throttled); the first enqueue sets one up.
///
/// Linux: kernel/sched/core.c __sched_fork() (the `p->dl` part, init_dl_entity()).
pub fn init_entity_dl(s: &mut SchedState, p: TaskId) {
    let dl = &mut s.tasks[p.idx()].dl;
    dl.deadline = 0;
    dl.runtime = 0;
    dl.dl_throttled = false;
    dl.dl_yielded = false;
    dl.missed_deadline = None;
}

/// Set `p`'s reservation (the class change itself is the caller's).
///
/// Linux: kernel/sched/syscalls.c __setparam_dl().
pub fn setparam_dl(s: &mut SchedState, p: TaskId, runtime: Nanos, deadline: Nanos, period: Nanos) {
    let period = if period == 0 { deadline } else { period };
    let se = &mut s.tasks[p.idx()].dl;
    se.dl_runtime = runtime;
    se.dl_deadline = deadline;
    se.dl_period = period;
    se.dl_bw = to_ratio(period, runtime);
    se.dl_density = to_ratio(deadline, runtime);
}

/// Clear the per-instance state of a task that leaves (or never had) SCHED_DEADLINE.
///
/// Linux: kernel/sched/deadline.c __dl_clear_params().
pub fn dl_clear_params(s: &mut SchedState, p: TaskId) {
    cancel_dl_timer(s, DlEntity::Task(p));
    s.tasks[p.idx()].dl.reset();
}

// ---------------------------------------------------------------------- class hooks (sync)

/// Queue `p`: a wakeup applies the CBS rule, a throttled task stays off the tree until its
/// timer; make it pushable unless it runs here, is the entity set as next, or is pinned. Rq
/// lock of `cpu` held.
///
/// With Proxy Execution the entity set as next (`dl_rq->curr`) is the donor, and the donor is
/// not `rq->curr` while another task runs on its budget. A donor whose budget ran out is
/// throttled (dequeued) and its replenishment timer queues it again here while it is still
/// the donor; without the `dl_rq->curr` test it would enter the pushable tree and the push
/// that `dl_task_timer()` runs next could move it to another CPU while this rq still has it
/// as `rq->donor` (`findings/next-1285-donor-pushed.json`: under `return_when_needed` a donor
/// woken at home stays the donor with `blocked_on` clear, so the pick's blocked filter does
/// not keep it back either). The tree returns before making the entity set as next pushable;
/// the test goes with the `dl_rq_curr` switch, the pointer it reads.
///
/// Linux: kernel/sched/deadline.c enqueue_task_dl() (johnstultz-work/linux-dev at
/// 2df88f65d0ea: `dl_rq->curr == dl_se` returns before enqueue_pushable_dl_task(); 6.17 tests
/// task_current() only).
///
/// Deviation: that tree also returns early for a blocked task (`task_is_blocked(p)`), here
/// and in put_prev_task_dl(), so a blocked task never enters the pushable tree; the model
/// keeps blocked tasks in the tree and skips them where a push or pull picks
/// (`pick_next_pushable_dl_task`, `pick_earliest_pushable_dl_task`). So the model's
/// `dl_rq->overloaded` (and the pull's `dlo_count` test) can count a tree that holds only
/// blocked tasks, and a blocked task woken in place (`return_when_needed`) is pushable at
/// once, where the tree makes it pushable only when put_prev_task_dl() next puts it back.
pub fn enqueue_task_dl(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: EnqueueFlags) {
    assert!(dl_task(s, p), "enqueue_task_dl of a non-DL task {p}");
    let e = DlEntity::Task(p);
    if is_dl_boosted(s, e) {
        // The boost overrides a throttle the task got before it blocked (D-21).
        if s.tasks[p.idx()].dl.dl_throttled {
            cancel_dl_timer(s, e);
            s.tasks[p.idx()].dl.dl_throttled = false;
        }
    } else if s.tasks[p.idx()].policy != Policy::Deadline {
        // Deboosted while over its runtime: it leaves the class, no replenishment.
        s.tasks[p.idx()].dl.dl_throttled = false;
    }
    enqueue_dl_entity(s, cpu, e, flags);
    if s.feat.dl_rq_curr && s.rqs[cpu.idx()].dl.curr == Some(p) {
        // The scheduling context: set_next_task_dl() took it off the pushable tree and
        // put_prev_task_dl() puts it back when it stops being the donor.
        return;
    }
    let t = &s.tasks[p.idx()];
    if s.rqs[cpu.idx()].curr != p && !t.dl.dl_throttled && t.nr_cpus_allowed > 1 {
        enqueue_pushable_dl_task(s, cpu, p);
    }
}

/// Remove `p` (never delayed: returns true). A task blocking after its deadline counts a miss.
/// Rq lock of `cpu` held.
///
/// Linux: kernel/sched/deadline.c dequeue_task_dl().
pub fn dequeue_task_dl(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: DequeueFlags) -> bool {
    update_curr_dl(s, cpu);
    if flags.contains(DequeueFlags::SLEEP) {
        dl_check_miss(s, cpu, p, false);
    }
    dequeue_dl_entity(s, cpu, DlEntity::Task(p));
    dequeue_pushable_dl_task(s, cpu, p);
    true
}

/// `sched_yield()` (D-10): the donor gives up the rest of its budget and is throttled until
/// its next period. Rq lock held, clock updated.
///
/// Linux: kernel/sched/deadline.c yield_task_dl().
pub fn yield_task_dl(s: &mut SchedState, cpu: CpuId) {
    let donor = dl_curr(s, cpu).expect("yield_task_dl without a DL scheduling context");
    s.tasks[donor.idx()].dl.dl_yielded = true;
    update_curr_dl(s, cpu);
}

/// Equal deadlines (D-14): reschedule only if the running task can go elsewhere and the wakee
/// cannot.
///
/// Linux: kernel/sched/deadline.c check_preempt_equal_dl().
fn check_preempt_equal_dl(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let rq = &s.rqs[cpu.idx()];
    let (curr, donor) = (rq.curr, rq.donor);
    if s.tasks[curr.idx()].nr_cpus_allowed == 1 {
        return;
    }
    let d = &s.tasks[donor.idx()];
    if s.cpudl.find(d.dl.deadline, s.cpus_mask(d)).is_none() {
        return;
    }
    let t = &s.tasks[p.idx()];
    if t.nr_cpus_allowed != 1 && s.cpudl.find(t.dl.deadline, s.cpus_mask(t)).is_some() {
        return;
    }
    core::resched_curr(s, cpu);
}

/// A DL task woke (or was moved) onto `cpu` whose donor is DL: an earlier deadline preempts;
/// an equal one applies D-14. Rq lock held.
///
/// Linux: kernel/sched/deadline.c wakeup_preempt_dl().
pub fn wakeup_preempt_dl(s: &mut SchedState, cpu: CpuId, p: TaskId, _wake_flags: WakeFlags) {
    let donor = dl_curr(s, cpu).expect("wakeup_preempt_dl without a DL scheduling context");
    if dl_entity_preempt(s, p, donor) {
        core::resched_curr(s, cpu);
        return;
    }
    let curr = s.rqs[cpu.idx()].curr;
    if s.tasks[p.idx()].dl.deadline == s.tasks[donor.idx()].dl.deadline && !s.tasks[curr.idx()].need_resched {
        check_preempt_equal_dl(s, cpu, p);
    }
}

/// The earliest-deadline entity's task, if any: a task itself, or for the fair server the
/// fair task it picks (`rq->dl_server` records the server for `put_prev_set_next_task`). A
/// server with nothing to run is stopped and the pick repeats. Rq lock held.
///
/// Linux: kernel/sched/deadline.c pick_task_dl() / __pick_task_dl() / pick_next_dl_entity().
pub fn pick_task_dl(s: &mut SchedState, cpu: CpuId) -> Option<TaskId> {
    // At most one server per rq: the second round sees only tasks.
    for _ in 0..2 {
        match s.rqs[cpu.idx()].dl.leftmost()? {
            DlEntity::Task(p) => return Some(p),
            e @ DlEntity::Server(c) => {
                assert_eq!(c, cpu, "cpu{cpu} queues another CPU's server");
                match crate::sched::fair::pick_task_fair(s, cpu) {
                    Some(p) => {
                        s.rqs[cpu.idx()].dl_server = Some(e);
                        return Some(p);
                    }
                    None => dl_server_stop(s, cpu),
                }
            }
        }
    }
    unreachable!("cpu{cpu}: the fair server was picked twice")
}

/// `prev` stops running: charge it, and make it pushable if it is still queued and may move.
///
/// Linux: kernel/sched/deadline.c put_prev_task_dl().
pub fn put_prev_task_dl(s: &mut SchedState, cpu: CpuId, prev: TaskId) {
    update_curr_dl(s, cpu);
    assert_eq!(
        s.rqs[cpu.idx()].dl.curr,
        Some(prev),
        "put_prev_task_dl of an entity not set as next"
    );
    s.rqs[cpu.idx()].dl.curr = None;
    if on_dl_rq(s, prev) && s.tasks[prev.idx()].nr_cpus_allowed > 1 {
        enqueue_pushable_dl_task(s, cpu, prev);
    }
}

/// `p` becomes the scheduling context: start its accounting, take it off the pushable tree,
/// and on a real pick queue a push of the remaining pushable tasks (D-12).
///
/// Linux: kernel/sched/deadline.c set_next_task_dl().
pub fn set_next_task_dl(s: &mut SchedState, cpu: CpuId, p: TaskId, first: bool) {
    let now = s.rqs[cpu.idx()].clock_task;
    s.tasks[p.idx()].se.exec_start = now;
    assert_eq!(
        s.rqs[cpu.idx()].dl.curr,
        None,
        "set_next_task_dl over a current entity"
    );
    s.rqs[cpu.idx()].dl.curr = Some(p);
    dequeue_pushable_dl_task(s, cpu, p);
    if first {
        deadline_queue_push_tasks(s, cpu);
    }
}

/// Tick: charge the donor; an exhausted budget throttles it here, up to a tick late (D-5).
///
/// Linux: kernel/sched/deadline.c task_tick_dl().
///
/// Deviation: no HRTICK_DL, so no hrtick is armed for the remaining budget.
pub fn task_tick_dl(s: &mut SchedState, cpu: CpuId, _curr: TaskId) {
    update_curr_dl(s, cpu);
}

/// The CPU where `p` would run at once (D-12): none if pinned or no CPU qualifies; else
/// `task_cpu(p)` if it qualifies, else this CPU if it qualifies and shares a WAKE_AFFINE domain
/// with `task_cpu`, else the first qualifying CPU of the nearest such domain, else this CPU,
/// else the first. No lock needed (cpudl is read racily, as in Linux).
///
/// Linux: kernel/sched/deadline.c find_later_rq().
///
/// Deviation: the first CPU instead of `cpumask_any_and_distribute()` (as in rt.rs).
pub fn find_later_rq(s: &SchedState, p: TaskId) -> Option<CpuId> {
    let t = &s.tasks[p.idx()];
    if t.nr_cpus_allowed == 1 {
        return None;
    }
    let later_mask = s.cpudl.find(t.dl.deadline, s.cpus_mask(t))?;
    let cpu = t.cpu;
    if later_mask.test(cpu) {
        return Some(cpu);
    }
    let this_cpu = Some(s.m.this_cpu()).filter(|&c| later_mask.test(c));
    for sd in &s.topo.domains[cpu.idx()] {
        if sd.flags & sd::WAKE_AFFINE == 0 {
            continue;
        }
        if let Some(tc) = this_cpu {
            if sd.span.test(tc) {
                return Some(tc);
            }
        }
        if let Some(best) = later_mask.and(&sd.span).first() {
            return Some(best);
        }
    }
    this_cpu.or_else(|| later_mask.first())
}

/// Wakeup/fork placement (D-12): stay unless the donor here is DL and either curr is pinned
/// or the donor's deadline is not later than `p`'s; then go to a later CPU if `p` would run
/// first there. Called with `p->pi_lock` held.
///
/// Linux: kernel/sched/deadline.c select_task_rq_dl().
pub fn select_task_rq_dl(s: &SchedState, p: TaskId, cpu: CpuId, wake_flags: WakeFlags) -> CpuId {
    if !wake_flags.intersects(WakeFlags::TTWU | WakeFlags::FORK) {
        return cpu;
    }
    let rq = &s.rqs[cpu.idx()];
    let curr = &s.tasks[rq.curr.idx()];
    let select_rq = dl_task(s, rq.donor)
        && (curr.nr_cpus_allowed < 2 || !dl_entity_preempt(s, p, rq.donor))
        && s.tasks[p.idx()].nr_cpus_allowed > 1;
    if select_rq {
        if let Some(target) = find_later_rq(s, p) {
            let trq = &s.rqs[target.idx()];
            if trq
                .dl
                .earliest_dl
                .curr
                .is_none_or(|e| s.tasks[p.idx()].dl.deadline < e)
            {
                return target;
            }
        }
    }
    cpu
}

/// `p` became DL (setattr): reschedule or push as needed. Rq lock held.
///
/// Linux: kernel/sched/deadline.c switched_to_dl().
pub fn switched_to_dl(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    if !core::task_on_rq_queued(s, p) {
        return;
    }
    if s.rqs[cpu.idx()].donor != p {
        if s.tasks[p.idx()].nr_cpus_allowed > 1 && s.rqs[cpu.idx()].dl.overloaded {
            deadline_queue_push_tasks(s, cpu);
        }
        let donor = s.rqs[cpu.idx()].donor;
        if dl_task(s, donor) {
            wakeup_preempt_dl(s, cpu, p, WakeFlags::empty());
        } else {
            core::resched_curr(s, cpu);
        }
    }
}

/// `p` left the DL class: drop its instance state and timer, and if it was this rq's last DL
/// task, queue a pull. Rq lock held.
///
/// Linux: kernel/sched/deadline.c switched_from_dl().
///
/// Deviation: Linux leaves an armed replenishment timer to fire and clear the parameters
/// (`dl_task_timer` sees a non-DL task); the model cancels it here.
pub fn switched_from_dl(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    dl_clear_params(s, p);
    if !core::task_on_rq_queued(s, p) || s.rqs[cpu.idx()].dl.dl_nr_running > 0 {
        return;
    }
    deadline_queue_pull_task(s, cpu);
}

/// `p`'s parameters changed within the DL class. Rq lock held.
///
/// Linux: kernel/sched/deadline.c prio_changed_dl().
pub fn prio_changed_dl(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    if !core::task_on_rq_queued(s, p) || !on_dl_rq(s, p) {
        return;
    }
    let rq = &s.rqs[cpu.idx()];
    if rq.donor == p {
        let deadline = s.tasks[p.idx()].dl.deadline;
        if rq.dl.earliest_dl.curr.is_some_and(|e| e < deadline) {
            deadline_queue_pull_task(s, cpu);
        }
        if s.rqs[cpu.idx()].dl.leftmost() != Some(DlEntity::Task(p)) {
            core::resched_curr(s, cpu);
        }
    } else {
        core::resched_curr(s, cpu);
    }
}

// ---------------------------------------------------------------------- push / pull (async)

/// The earliest pushable task that is not executing and not a blocked donor.
///
/// Linux: kernel/sched/deadline.c pick_next_pushable_dl_task().
///
/// Deviation: as in rt.rs, running entries are skipped rather than BUG()ed on.
fn pick_next_pushable_dl_task(s: &SchedState, cpu: CpuId) -> Option<TaskId> {
    let p = s.rqs[cpu.idx()]
        .dl
        .pushable
        .iter()
        .map(|&(_, _, t)| t)
        .find(|&t| !s.tasks[t.idx()].on_cpu && !core::task_is_blocked(s, t))?;
    let t = &s.tasks[p.idx()];
    assert_eq!(t.cpu, cpu, "pushable DL task {p} on another CPU's tree");
    assert!(t.nr_cpus_allowed > 1, "pinned DL task {p} pushable");
    assert!(core::task_on_rq_queued(s, p), "pushable DL task {p} not queued");
    assert!(dl_task(s, p), "pushable task {p} not DL");
    Some(p)
}

/// The earliest pushable task of `cpu` that may run on `dst` and is not executing.
///
/// Linux: kernel/sched/deadline.c pick_earliest_pushable_dl_task() / pick_dl_task().
fn pick_earliest_pushable_dl_task(s: &SchedState, cpu: CpuId, dst: CpuId) -> Option<TaskId> {
    s.rqs[cpu.idx()]
        .dl
        .pushable
        .iter()
        .map(|&(_, _, t)| t)
        .find(|&t| {
            let task = &s.tasks[t.idx()];
            !task.on_cpu && s.cpus_mask(task).test(dst) && !core::task_is_blocked(s, t)
        })
}

/// `task`'s later rq must have no DL task or a later earliest deadline.
fn later_rq_suitable(s: &SchedState, later: CpuId, task: TaskId) -> bool {
    let e = s.rqs[later.idx()].dl.earliest_dl.curr;
    s.rqs[later.idx()].dl.dl_nr_running == 0 || e.is_none_or(|e| s.tasks[task.idx()].dl.deadline < e)
}

/// With `rq`'s lock held, find and lock a later CPU for `task`, retrying up to
/// [`DL_MAX_TRIES`]; `None` if none qualifies or `task` changed while `rq` was dropped.
///
/// Linux: kernel/sched/deadline.c find_lock_later_rq().
async fn find_lock_later_rq(k: &Kernel, task: TaskId, rq: CpuId) -> Option<CpuId> {
    for _ in 0..DL_MAX_TRIES {
        let later = {
            let s = k.st();
            let cpu = find_later_rq(&s, task)?;
            if cpu == rq {
                return None;
            }
            if !later_rq_suitable(&s, cpu, task) {
                return None;
            }
            cpu
        };
        if k.double_lock_balance(rq, later).await {
            let still_valid = {
                let s = k.st();
                let t = &s.tasks[task.idx()];
                t.cpu == rq
                    && s.cpus_mask(t).test(later)
                    && !t.on_cpu
                    && dl_task(&s, task)
                    && core::task_on_rq_queued(&s, task)
                    && on_dl_rq(&s, task)
                    && pick_next_pushable_dl_task(&s, rq) == Some(task)
            };
            if !still_valid {
                k.double_unlock_balance(rq, later).await;
                return None;
            }
        }
        if later_rq_suitable(&k.st(), later, task) {
            return Some(later);
        }
        k.double_unlock_balance(rq, later).await;
    }
    None
}

/// Push this rq's earliest pushable task to a later CPU; true if a task moved. Rq lock of
/// `cpu` held (may be dropped and retaken).
///
/// Linux: kernel/sched/deadline.c push_dl_task().
async fn push_dl_task(k: &Kernel, cpu: CpuId) -> bool {
    let (mut next_task, max_retries) = {
        let s = k.st();
        if !s.rqs[cpu.idx()].dl.overloaded {
            return false;
        }
        match pick_next_pushable_dl_task(&s, cpu) {
            Some(t) => (t, s.tasks.len()),
            None => return false,
        }
    };
    for _ in 0..=max_retries {
        {
            let mut s = k.st();
            let rq = &s.rqs[cpu.idx()];
            let (curr, donor) = (rq.curr, rq.donor);
            // An earlier pushable task than the donor here: reschedule instead of pushing.
            if dl_task(&s, donor)
                && dl_entity_preempt(&s, next_task, donor)
                && s.tasks[curr.idx()].nr_cpus_allowed > 1
            {
                core::resched_curr(&mut s, cpu);
                return false;
            }
            if curr == next_task {
                k.violation(
                    "dl_push_not_curr",
                    format!("cpu{cpu}: pushable DL task {next_task} is curr"),
                );
                return false;
            }
        }
        let Some(later) = find_lock_later_rq(k, next_task, cpu).await else {
            let task = pick_next_pushable_dl_task(&k.st(), cpu);
            match task {
                Some(t) if t != next_task => {
                    next_task = t;
                    continue;
                }
                _ => return false,
            }
        };
        {
            let mut s = k.st();
            core::move_queued_task_locked(&mut s, cpu, later, next_task);
            core::resched_curr(&mut s, later);
        }
        k.double_unlock_balance(cpu, later).await;
        return true;
    }
    panic!("push_dl_task on cpu{cpu}: pushable tree kept changing past {max_retries} retries");
}

/// Push until a push fails (D-12). Rq lock of `cpu` held.
///
/// Linux: kernel/sched/deadline.c push_dl_tasks().
///
/// Deviation: bounded by the number of tasks plus one.
pub async fn push_dl_tasks(k: &Kernel, cpu: CpuId) {
    let limit = k.st().tasks.len() + 1;
    for _ in 0..limit {
        if !push_dl_task(k, cpu).await {
            return;
        }
    }
    panic!("push_dl_tasks on cpu{cpu}: more than {limit} pushes in one pass");
}

/// Pull earlier-deadline work to `this_cpu` (D-13): from every DL-overloaded CPU whose next
/// pushable deadline beats ours, take its earliest pushable task if earlier than ours and not
/// earlier than that CPU's own donor. Rq lock of `this_cpu` held (may be dropped).
///
/// Linux: kernel/sched/deadline.c pull_dl_task().
pub async fn pull_dl_task(k: &Kernel, this_cpu: CpuId) {
    let nr_cpus = {
        let s = k.st();
        if dl_overloaded(&s) == 0 {
            return;
        }
        s.nr_cpus()
    };
    let mut resched = false;
    let mut dmin: Option<Nanos> = None;
    for cpu in CpuId::all(nr_cpus) {
        if cpu == this_cpu {
            continue;
        }
        {
            let s = k.st();
            if !s.dlo_mask.test(cpu) {
                continue;
            }
            let this = &s.rqs[this_cpu.idx()].dl;
            let src = &s.rqs[cpu.idx()].dl;
            // Racy pre-check, as in Linux: the source's next deadline must beat ours.
            if this.dl_nr_running > 0 {
                if let (Some(ours), Some(next)) = (this.earliest_dl.curr, src.earliest_dl.next) {
                    if ours < next {
                        continue;
                    }
                }
            }
        }
        k.double_lock_balance(this_cpu, cpu).await;
        {
            let mut s = k.st();
            if s.rqs[cpu.idx()].dl.dl_nr_running > 1 {
                if let Some(p) = pick_earliest_pushable_dl_task(&s, cpu, this_cpu) {
                    let pd = s.tasks[p.idx()].dl.deadline;
                    let ours = s.rqs[this_cpu.idx()].dl.earliest_dl.curr;
                    let beats_dmin = dmin.is_none_or(|d| pd < d);
                    let beats_ours =
                        s.rqs[this_cpu.idx()].dl.dl_nr_running == 0 || ours.is_none_or(|o| pd < o);
                    if beats_dmin && beats_ours {
                        assert_ne!(p, s.rqs[cpu.idx()].curr, "pull of a running DL task");
                        assert!(core::task_on_rq_queued(&s, p), "pull of an unqueued DL task");
                        let src_donor = s.rqs[cpu.idx()].donor;
                        // Pull only if p does not beat the donor there (it would run there).
                        let runs_there = dl_task(&s, src_donor) && pd < s.tasks[src_donor.idx()].dl.deadline;
                        if !runs_there {
                            core::move_queued_task_locked(&mut s, cpu, this_cpu, p);
                            dmin = Some(pd);
                            resched = true;
                        }
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

/// Balance hook of the pick (S-3): if DL `prev` left the DL tree (blocked or throttled), pull.
/// Returns whether stop or DL work is runnable here. Rq lock held (may be dropped).
///
/// Linux: kernel/sched/deadline.c balance_dl().
pub async fn balance_dl(k: &Kernel, cpu: CpuId, prev: TaskId) -> bool {
    let pull = {
        let s = k.st();
        dl_task(&s, prev) && !on_dl_rq(&s, prev)
    };
    if pull {
        Box::pin(pull_dl_task(k, cpu)).await;
    }
    let s = k.st();
    let rq = &s.rqs[cpu.idx()];
    crate::sched::stop_task::sched_stop_runnable(&s, cpu) || rq.dl.dl_nr_running > 0
}

/// After a wakeup onto `cpu`: if `p` will not run soon and may move, push now (D-12).
///
/// Linux: kernel/sched/deadline.c task_woken_dl().
pub async fn task_woken_dl(k: &Kernel, cpu: CpuId, p: TaskId) {
    let need_to_push = {
        let s = k.st();
        let rq = &s.rqs[cpu.idx()];
        let curr = &s.tasks[rq.curr.idx()];
        let t = &s.tasks[p.idx()];
        !t.on_cpu
            && !curr.need_resched
            && t.nr_cpus_allowed > 1
            && dl_task(&s, rq.donor)
            && (curr.nr_cpus_allowed < 2 || !dl_entity_preempt(&s, p, rq.donor))
    };
    if need_to_push {
        Box::pin(push_dl_tasks(k, cpu)).await;
    }
}

/// The replenishment timer of `p` (hard-IRQ context, no lock held): refill a throttled task,
/// re-enqueue it if it is runnable, preempt as needed, and push if this rq is overloaded.
///
/// Linux: kernel/sched/deadline.c dl_task_timer().
pub async fn dl_task_timer(k: &Kernel, p: TaskId) {
    k.pi_lock(p).await;
    let cpu = core::__task_rq_lock(k, p).await;
    let push = {
        let s = &mut *k.st();
        s.tasks[p.idx()].dl.dl_timer_queued = false;
        if !dl_task(s, p) || !s.tasks[p.idx()].dl.dl_throttled || is_dl_boosted(s, DlEntity::Task(p)) {
            false
        } else {
            core::update_rq_clock(s, cpu);
            let e = DlEntity::Task(p);
            if !core::task_on_rq_queued(s, p) {
                // Blocked: only refill; the wakeup applies the CBS rule.
                replenish_dl_entity(s, cpu, e);
                false
            } else {
                // Still runnable at its next period: unless it gave the rest of the instance
                // up (yield, D-10), this instance ran past its deadline.
                if !s.tasks[p.idx()].dl.dl_yielded {
                    dl_check_miss(s, cpu, p, true);
                }
                enqueue_task_dl(s, cpu, p, EnqueueFlags::REPLENISH);
                if dl_curr(s, cpu).is_some() {
                    wakeup_preempt_dl(s, cpu, p, WakeFlags::empty());
                } else {
                    core::resched_curr(s, cpu);
                }
                s.rqs[cpu.idx()].dl.has_pushable_dl_tasks()
            }
        }
    };
    if push {
        push_dl_task(k, cpu).await;
    }
    k.rq_unlock(cpu).await;
    k.pi_unlock(p).await;
}

// ---------------------------------------------------------------------- the fair server

/// PI boost of `p` by its top waiter, a SCHED_DEADLINE task (D-21): run with that task's
/// reservation (`p->dl.pi_se = pi_task->dl.pi_se`). Called by `rt_mutex_setprio` and
/// `sched_setattr` before `p` is enqueued in the DL class (with ENQUEUE_REPLENISH from the
/// former). Returns false if `p` has its own reservation (a SCHED_DEADLINE task is not
/// boosted).
///
/// Linux: kernel/sched/core.c rt_mutex_setprio() (the `dl_prio(prio)` branch).
pub fn dl_pi_boost(s: &mut SchedState, p: TaskId, pi_task: TaskId) -> bool {
    if s.tasks[p.idx()].policy == Policy::Deadline {
        return false;
    }
    assert!(dl_task(s, pi_task), "DL boost of {p} by non-DL {pi_task}");
    let donor = s.tasks[pi_task.idx()].dl.pi_se.unwrap_or(pi_task);
    assert_ne!(donor, p, "task {p} boosted by itself");
    s.tasks[p.idx()].dl.pi_se = Some(donor);
    true
}

/// Boot-time setup of `cpu`'s fair server (D-20): a deferred DL entity with 50 ms every 1 s
/// whose bandwidth is admitted like a task's, so tasks get 0.90 of each CPU. With the
/// `dl_server` feature off the server has no runtime (Linux: runtime 0 written to its debugfs
/// knob), reserves nothing and never starts, and RT tasks can starve fair ones.
///
/// Linux: kernel/sched/fair.c fair_server_init(), kernel/sched/deadline.c
/// sched_init_dl_servers() / dl_server_apply_params().
pub fn fair_server_init(s: &mut SchedState, cpu: CpuId) {
    let on = s.feat.dl_server;
    let se = &mut s.rqs[cpu.idx()].fair_server;
    *se = SchedDlEntity::default();
    if !on {
        return;
    }
    se.dl_runtime = FAIR_SERVER_RUNTIME_NS;
    se.dl_deadline = FAIR_SERVER_PERIOD_NS;
    se.dl_period = FAIR_SERVER_PERIOD_NS;
    se.dl_bw = to_ratio(FAIR_SERVER_PERIOD_NS, FAIR_SERVER_RUNTIME_NS);
    se.dl_density = to_ratio(FAIR_SERVER_PERIOD_NS, FAIR_SERVER_RUNTIME_NS);
    se.dl_defer = true;
    s.dl_bw.total_bw += s.rqs[cpu.idx()].fair_server.dl_bw;
}

/// The first fair task was queued on `cpu`: start the server. A deferred server starts
/// throttled, its timer at the zero-laxity time of a fresh period. Rq lock held.
///
/// Linux: kernel/sched/deadline.c dl_server_start().
pub fn dl_server_start(s: &mut SchedState, cpu: CpuId) {
    let se = &s.rqs[cpu.idx()].fair_server;
    if se.dl_runtime == 0 || se.dl_server_active {
        return;
    }
    s.rqs[cpu.idx()].fair_server.dl_server_active = true;
    let e = DlEntity::Server(cpu);
    if dl_se(s, e).deadline == 0 {
        // The first start: a fresh (deferred) period from now.
        setup_new_dl_entity(s, cpu, e);
    }
    enqueue_dl_entity(s, cpu, e, EnqueueFlags::WAKEUP);
    let donor = s.rqs[cpu.idx()].donor;
    // A deferred server is not queued yet; only a queued one can preempt.
    let queued = dl_se(s, e).rb_key.is_some();
    if queued && (!dl_task(s, donor) || dl_se(s, e).deadline < s.tasks[donor.idx()].dl.deadline) {
        core::resched_curr(s, cpu);
    }
}

/// Stop `cpu`'s server: off the queue, timer cancelled, not deferred or running. Rq lock held.
///
/// Linux: kernel/sched/deadline.c dl_server_stop().
///
/// Deviation: `dl_defer_running` is also cleared, so a restarted server defers again instead
/// of competing at once (\[UNSURE\] which kernel release does the same).
pub fn dl_server_stop(s: &mut SchedState, cpu: CpuId) {
    let e = DlEntity::Server(cpu);
    if s.rqs[cpu.idx()].fair_server.dl_runtime == 0 || !s.rqs[cpu.idx()].fair_server.dl_server_active {
        return;
    }
    dequeue_dl_entity(s, cpu, e);
    cancel_dl_timer(s, e);
    let se = &mut s.rqs[cpu.idx()].fair_server;
    se.dl_defer_armed = false;
    se.dl_throttled = false;
    se.dl_defer_running = false;
    se.dl_server_active = false;
}

/// Fair execution of `delta` ns on `cpu` drains the active server's budget, whether or not it
/// ran through the server (D-20). Called from the fair class's `update_curr`. Rq lock held.
///
/// Linux: kernel/sched/deadline.c dl_server_update() (fair.c update_curr() calls it while
/// `dl_server_active()`).
pub fn dl_server_update(s: &mut SchedState, cpu: CpuId, delta: Nanos) {
    let se = &s.rqs[cpu.idx()].fair_server;
    if se.dl_runtime == 0 || !se.dl_server_active {
        return;
    }
    update_curr_dl_se(s, cpu, DlEntity::Server(cpu), delta);
}

/// Idle time since `p` (the idle task) was set counts as time the fair class could have used:
/// it drains a deferred server's budget down to 0 (D-20). Rq lock held.
///
/// Linux: kernel/sched/deadline.c dl_server_update_idle_time() (from put_prev_task_idle() and
/// from enqueue_task_fair() on an idle rq).
pub fn dl_server_update_idle_time(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let now = s.rqs[cpu.idx()].clock_task;
    let se = &s.rqs[cpu.idx()].fair_server;
    if !se.dl_defer || se.runtime < 0 {
        return;
    }
    let start = s.tasks[p.idx()].se.exec_start;
    if now < start {
        return;
    }
    let se = &mut s.rqs[cpu.idx()].fair_server;
    se.runtime -= (now - start) as i64;
    if se.runtime < 0 {
        se.dl_defer_running = false;
        se.runtime = 0;
    }
    s.tasks[p.idx()].se.exec_start = now;
}

/// `1 ms`: a deferred server's timer is not pushed back for less (`dl_server_min_res`).
const DL_SERVER_MIN_RES_NS: Nanos = 1_000_000;

/// The server's timer on `cpu` (hard-IRQ context, no lock held): at the zero-laxity time of a
/// deferred server whose class starved, or at the next period of a throttled running one,
/// queue the server as a DL entity and preempt whatever runs (D-20).
///
/// Linux: kernel/sched/deadline.c dl_server_timer().
///
/// Deviation: a server with no fair task queued is refilled and stopped here, as 6.12–6.16
/// do (the newest kernels leave that to the pick). Linux forwards the timer by the laxity
/// still left (`hrtimer_forward_now`); the model re-arms it at the zero-laxity time.
pub async fn dl_server_timer(k: &Kernel, cpu: CpuId) {
    k.rq_lock(cpu).await;
    let push = {
        let s = &mut *k.st();
        let e = DlEntity::Server(cpu);
        s.rqs[cpu.idx()].fair_server.dl_timer_queued = false;
        let se = &s.rqs[cpu.idx()].fair_server;
        if !se.dl_throttled || se.dl_runtime == 0 {
            false
        } else {
            core::update_rq_clock(s, cpu);
            let now = s.rqs[cpu.idx()].clock;
            if s.rqs[cpu.idx()].cfs.h_nr_queued == 0 {
                replenish_dl_entity(s, cpu, e);
                dl_server_stop(s, cpu);
                false
            } else {
                let se = &s.rqs[cpu.idx()].fair_server;
                let zero_laxity = se.deadline.saturating_sub(se.runtime.max(0) as u64);
                if se.dl_defer_armed && now + DL_SERVER_MIN_RES_NS < zero_laxity {
                    // The class ran in the background meanwhile: wait for the new
                    // zero-laxity time.
                    s.rqs[cpu.idx()].fair_server.dl_timer_queued = true;
                    crate::time::hrtimer_start(s, cpu, zero_laxity, 0, TimerFn::DlServer(cpu));
                    false
                } else {
                    if se.dl_defer_armed {
                        s.rqs[cpu.idx()].fair_server.dl_defer_running = true;
                    }
                    enqueue_dl_entity(s, cpu, e, EnqueueFlags::REPLENISH);
                    let donor = s.rqs[cpu.idx()].donor;
                    let deadline = s.rqs[cpu.idx()].fair_server.deadline;
                    if !dl_task(s, donor) || deadline < s.tasks[donor.idx()].dl.deadline {
                        core::resched_curr(s, cpu);
                    }
                    s.rqs[cpu.idx()].dl.has_pushable_dl_tasks()
                }
            }
        }
    };
    if push {
        push_dl_task(k, cpu).await;
    }
    k.rq_unlock(cpu).await;
}

// ---------------------------------------------------------------------- invariant

fn queued_unthrottled_dl(s: &SchedState, p: TaskId) -> bool {
    let t = &s.tasks[p.idx()];
    t.class == Class::Deadline && core::task_on_rq_queued(s, p) && !t.dl.dl_throttled
}

/// Per CPU, the queued and unthrottled DL tasks (the tasks the deadline tree must hold), in
/// one pass over the tasks for [`check_dl_rq`].
pub fn queued_dl_tasks_per_cpu(s: &SchedState) -> Vec<u32> {
    let mut n = Vec::new();
    queued_dl_tasks_into(s, &mut n);
    n
}

/// [`queued_dl_tasks_per_cpu`] into a buffer the caller keeps (no allocation per step).
pub fn queued_dl_tasks_into(s: &SchedState, n: &mut Vec<u32>) {
    n.clear();
    n.resize(s.rqs.len(), 0);
    for t in &s.tasks {
        if t.class == Class::Deadline && queued_unthrottled_dl(s, t.id) {
            n[t.cpu.idx()] += 1;
        }
    }
}

/// Model-only checker of the DL state of `cpu` (rq lock free): the tree holds exactly the
/// queued, unthrottled DL tasks of this CPU in deadline order, `dl_nr_running` counts them,
/// `earliest_dl` and cpudl match the leftmost, the pushable tree holds only tree members,
/// and the overload flag matches `dlo_mask`. Returns the first violation found.
pub fn check_dl_rq(s: &SchedState, cpu: CpuId, queued_dl: &[u32]) -> Option<String> {
    dl_tree_members(s, cpu)
        .or_else(|| dl_tree_complete(s, cpu, queued_dl))
        .or_else(|| dl_leftmost_cached(s, cpu))
        .or_else(|| dl_pushable_consistent(s, cpu))
}

/// [`check_dl_rq`]: `dl_nr_running` counts the tree, and each member is rightly there (a
/// server that is active and unthrottled, or a queued, unthrottled DL task of this CPU) with
/// its own key.
fn dl_tree_members(s: &SchedState, cpu: CpuId) -> Option<String> {
    let dl = &s.rqs[cpu.idx()].dl;
    if dl.root.len() as u32 != dl.dl_nr_running {
        return Some(format!(
            "cpu{cpu}: dl_nr_running {} but {} entities on the tree",
            dl.dl_nr_running,
            dl.root.len()
        ));
    }
    for &(d, seq, e) in &dl.root {
        let se = dl_se(s, e);
        let p = match e {
            DlEntity::Server(c) => {
                if c != cpu || se.rb_key != Some((d, seq)) || se.dl_throttled || !se.dl_server_active {
                    return Some(format!(
                        "cpu{cpu}: server {e:?} on the tree with key {:?} (tree {:?}), throttled {}, active {}",
                        se.rb_key,
                        (d, seq),
                        se.dl_throttled,
                        se.dl_server_active
                    ));
                }
                continue;
            }
            DlEntity::Task(p) => p,
        };
        let t = &s.tasks[p.idx()];
        if se.rb_key != Some((d, seq))
            || t.cpu != cpu
            || !core::task_on_rq_queued(s, p)
            || se.dl_throttled
            || !dl_task(s, p)
        {
            return Some(format!(
                "cpu{cpu}: {e:?} on the tree with key {:?} (tree {:?}), task_cpu {}, on_rq {:?}, throttled {}, class {:?}",
                se.rb_key, (d, seq), t.cpu, t.on_rq, se.dl_throttled, t.class
            ));
        }
    }
    None
}

/// [`check_dl_rq`]: no queued, unthrottled DL task of this CPU is missing from the tree.
fn dl_tree_complete(s: &SchedState, cpu: CpuId, queued_dl: &[u32]) -> Option<String> {
    let dl = &s.rqs[cpu.idx()].dl;
    // Every tree member was checked above; equal counts mean no queued task is missing.
    let on_tree = dl
        .root
        .iter()
        .filter(|&&(_, _, e)| matches!(e, DlEntity::Task(_)))
        .count() as u32;
    if on_tree != queued_dl[cpu.idx()] {
        let missing = s
            .tasks
            .iter()
            .find(|t| t.cpu == cpu && queued_unthrottled_dl(s, t.id) && t.dl.rb_key.is_none());
        return Some(match missing {
            Some(t) => format!(
                "cpu{cpu}: queued, unthrottled DL task {}-{} not on the tree",
                t.comm, t.pid
            ),
            None => format!(
                "cpu{cpu}: {on_tree} DL tasks on the tree, {} queued",
                queued_dl[cpu.idx()]
            ),
        });
    }
    None
}

/// [`check_dl_rq`]: `earliest_dl` and cpudl hold the leftmost deadline.
fn dl_leftmost_cached(s: &SchedState, cpu: CpuId) -> Option<String> {
    let dl = &s.rqs[cpu.idx()].dl;
    let leftmost = dl.root.first().map(|&(d, _, _)| d);
    if dl.earliest_dl.curr != leftmost {
        return Some(format!(
            "cpu{cpu}: earliest_dl.curr {:?} but leftmost deadline {leftmost:?}",
            dl.earliest_dl.curr
        ));
    }
    if s.cpudl.elements[cpu.idx()] != leftmost || s.cpudl.free_cpus.test(cpu) != leftmost.is_none() {
        return Some(format!(
            "cpu{cpu}: cpudl {:?} (free {}) but leftmost deadline {leftmost:?}",
            s.cpudl.elements[cpu.idx()],
            s.cpudl.free_cpus.test(cpu)
        ));
    }
    None
}

/// [`check_dl_rq`]: the pushable tree holds only members of this CPU's tree, and the
/// overload flag and `dlo_mask` agree with it.
fn dl_pushable_consistent(s: &SchedState, cpu: CpuId) -> Option<String> {
    let dl = &s.rqs[cpu.idx()].dl;
    for &(_, _, p) in &dl.pushable {
        if s.tasks[p.idx()].dl.rb_key.is_none() || s.tasks[p.idx()].cpu != cpu {
            return Some(format!("cpu{cpu}: pushable DL task {p} not on this CPU's tree"));
        }
    }
    if dl.overloaded == dl.pushable.is_empty() || s.dlo_mask.test(cpu) != dl.overloaded {
        return Some(format!(
            "cpu{cpu}: overloaded {} with {} pushable, dlo_mask {}",
            dl.overloaded,
            dl.pushable.len(),
            s.dlo_mask.test(cpu)
        ));
    }
    None
}

/// Model-only: `total_bw` equals the fair servers' reservations plus every DL task's `dl_bw`
/// (the fair servers reserve nothing with the `dl_server` feature off); `tasks` is the sum
/// of the `dl_bw` of the SCHED_DEADLINE tasks, which the invariant checker takes in the pass
/// over the tasks its other checks share.
pub fn check_dl_bw(s: &SchedState, tasks: u64) -> Option<String> {
    let servers: u64 = s.rqs.iter().map(|rq| rq.fair_server.dl_bw).sum();
    if servers + tasks != s.dl_bw.total_bw {
        return Some(format!(
            "total_bw {} but servers {servers} + tasks {tasks}",
            s.dl_bw.total_bw
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use sim::CpuMask;

    use super::*;
    use crate::sched::Costs;
    use crate::task::{task_ctx, OnRq};
    use crate::tracepoints::NullSink;

    const MS: Nanos = 1_000_000;

    fn sched_state(nr_cpus: usize) -> SchedState {
        let mut cfg = crate::system::Config::new(nr_cpus);
        cfg.seed = 1;
        cfg.costs = Costs::zero();
        crate::system::new_sched_state(&cfg, Box::new(NullSink))
    }

    /// A new DL task on `cpu` with (Q, D, P), allowed everywhere, not queued.
    fn dl_task_new(s: &mut SchedState, cpu: CpuId, q: Nanos, d: Nanos, p: Nanos) -> TaskId {
        let id = TaskId(s.tasks.len() as u32);
        let mut t = crate::system::new_task_struct(&s.m, id, 2000 + id.0, "dl", cpu);
        t.cpus_mask = s.cpus_masks.intern(CpuMask::first_n(s.nr_cpus()));
        t.nr_cpus_allowed = s.nr_cpus() as u32;
        t.policy = Policy::Deadline;
        t.prio = DL_PRIO;
        t.normal_prio = DL_PRIO;
        t.class = Class::Deadline;
        s.tasks.push(t);
        setparam_dl(s, id, q, d, p);
        id
    }

    fn set_clock(s: &mut SchedState, cpu: CpuId, now: Nanos) {
        s.rqs[cpu.idx()].clock = now;
        s.rqs[cpu.idx()].clock_task = now;
    }

    fn wake(s: &mut SchedState, cpu: CpuId, p: TaskId) {
        enqueue_task_dl(s, cpu, p, EnqueueFlags::WAKEUP);
        s.tasks[p.idx()].on_rq = OnRq::Queued;
    }

    #[test]
    fn dl_bandwidth_fixed_point_and_admission_limit() {
        assert_eq!(to_ratio(10 * MS, 3 * MS), 314_572, "0.3 << 20, truncated");
        assert_eq!(to_ratio(1_000 * MS, 50 * MS), 52_428, "the fair server's 0.05");
        let mut s = sched_state(1);
        assert_eq!(s.dl_bw.total_bw, 52_428, "one fair server reserved at boot");
        let a = dl_task_new(&mut s, CpuId(0), 3 * MS, 10 * MS, 10 * MS);
        let b = dl_task_new(&mut s, CpuId(0), 3 * MS, 10 * MS, 10 * MS);
        let c = dl_task_new(&mut s, CpuId(0), 3 * MS, 10 * MS, 10 * MS);
        let d = dl_task_new(&mut s, CpuId(0), MS / 10, 10 * MS, 10 * MS);
        for t in [a, b, c, d] {
            s.tasks[t.idx()].policy = Policy::Normal;
        }
        // 0.3 + 0.3 + 0.3 = 0.90 fits (0.95 minus the server), 0.01 more does not.
        for t in [a, b, c] {
            assert_eq!(
                sched_dl_overflow(&mut s, t, Policy::Deadline, 3 * MS, 10 * MS),
                Ok(())
            );
            s.tasks[t.idx()].policy = Policy::Deadline;
        }
        assert_eq!(
            sched_dl_overflow(&mut s, d, Policy::Deadline, MS / 10, 10 * MS),
            Err(EBUSY)
        );
        // Leaving DL releases at once; then it fits.
        assert_eq!(sched_dl_overflow(&mut s, a, Policy::Normal, 0, 0), Ok(()));
        s.tasks[a.idx()].policy = Policy::Normal;
        s.tasks[a.idx()].dl.dl_bw = 0;
        assert_eq!(
            sched_dl_overflow(&mut s, d, Policy::Deadline, MS / 10, 10 * MS),
            Ok(())
        );
        // Parameter validity (D-1).
        assert!(checkparam_dl(MS, 10 * MS, 10 * MS));
        assert!(!checkparam_dl(1000, 10 * MS, 10 * MS), "runtime under 1024 ns");
        assert!(!checkparam_dl(MS, 5 * MS, 4 * MS), "deadline after period");
        assert!(!checkparam_dl(10_000, 50_000, 50_000), "period under 100 us");
        assert!(checkparam_dl(10_000, 100_000, 0), "period 0 means D");
    }

    /// Give `p`'s current instance absolute deadline `deadline` and `runtime` left.
    fn set_instance(s: &mut SchedState, p: TaskId, deadline: Nanos, runtime: i64) {
        let dl = &mut s.tasks[p.idx()].dl;
        dl.deadline = deadline;
        dl.runtime = runtime;
    }

    #[test]
    fn dl_cbs_wakeup_keeps_or_renews_the_instance() {
        let mut s = sched_state(1);
        let p = dl_task_new(&mut s, CpuId(0), 2 * MS, 10 * MS, 10 * MS);
        // Current instance: deadline 20 ms, 1 ms left.
        set_instance(&mut s, p, 20 * MS, MS as i64);
        // At 12 ms: 1 ms over 8 ms left is under Q/D = 0.2: keep both.
        set_clock(&mut s, CpuId(0), 12 * MS);
        wake(&mut s, CpuId(0), p);
        assert_eq!(s.tasks[p.idx()].dl.deadline, 20 * MS);
        assert_eq!(s.tasks[p.idx()].dl.runtime, MS as i64);
        assert!(dequeue_task_dl(&mut s, CpuId(0), p, DequeueFlags::SLEEP));
        s.tasks[p.idx()].on_rq = OnRq::No;
        // At 16 ms: 1 ms over 4 ms is 0.25 > 0.2: new instance from now.
        set_clock(&mut s, CpuId(0), 16 * MS);
        wake(&mut s, CpuId(0), p);
        assert_eq!(s.tasks[p.idx()].dl.deadline, 26 * MS);
        assert_eq!(s.tasks[p.idx()].dl.runtime, 2 * MS as i64);
        assert!(dequeue_task_dl(&mut s, CpuId(0), p, DequeueFlags::SLEEP));
        s.tasks[p.idx()].on_rq = OnRq::No;
        // A deadline in the past: new instance.
        set_clock(&mut s, CpuId(0), 30 * MS);
        wake(&mut s, CpuId(0), p);
        assert_eq!(s.tasks[p.idx()].dl.deadline, 40 * MS);
    }

    #[test]
    fn dl_revised_cbs_for_constrained_deadlines() {
        let mut s = sched_state(1);
        // Q = 2 ms, D = 5 ms, P = 10 ms: density 0.4.
        let p = dl_task_new(&mut s, CpuId(0), 2 * MS, 5 * MS, 10 * MS);
        set_instance(&mut s, p, 15 * MS, 2 * MS as i64);
        // At 13 ms: 2 ms over 2 ms overflows, but the deadline is ahead: keep it and scale the
        // budget to density × laxity = 0.4 × 2 ms (fixed point).
        set_clock(&mut s, CpuId(0), 13 * MS);
        wake(&mut s, CpuId(0), p);
        assert_eq!(s.tasks[p.idx()].dl.deadline, 15 * MS);
        let want = ((to_ratio(5 * MS, 2 * MS) as u128 * (2 * MS) as u128) >> BW_SHIFT) as i64;
        assert_eq!(s.tasks[p.idx()].dl.runtime, want);
        assert!((799_990..=800_000).contains(&want));
    }

    #[test]
    fn dl_constrained_wakeup_between_deadline_and_next_period_is_throttled() {
        let mut s = sched_state(1);
        let p = dl_task_new(&mut s, CpuId(0), 2 * MS, 5 * MS, 10 * MS);
        set_instance(&mut s, p, 15 * MS, MS as i64);
        // At 17 ms: past the deadline, before the next period (20 ms): D-8.
        set_clock(&mut s, CpuId(0), 17 * MS);
        wake(&mut s, CpuId(0), p);
        let se = &s.tasks[p.idx()].dl;
        assert!(se.dl_throttled);
        assert_eq!(se.runtime, 0);
        assert!(se.rb_key.is_none(), "not on the tree");
        assert!(se.dl_timer_queued);
        assert_eq!(s.rqs[0].dl.dl_nr_running, 0);
        assert_eq!(s.rqs[0].nr_running, 0, "a throttled task is not counted");
        let armed: Vec<Nanos> = s.hrtimers[0]
            .iter()
            .filter(|t| t.func == TimerFn::DlTask(p))
            .map(|t| t.soft_ns)
            .collect();
        assert_eq!(armed, vec![20 * MS], "replenished at the next period");
        // The timer's work: replenish (deadline += P, full budget) and enqueue.
        set_clock(&mut s, CpuId(0), 20 * MS);
        enqueue_task_dl(&mut s, CpuId(0), p, EnqueueFlags::REPLENISH);
        let se = &s.tasks[p.idx()].dl;
        assert!(!se.dl_throttled);
        assert_eq!((se.deadline, se.runtime), (25 * MS, 2 * MS as i64));
        assert_eq!(pick_task_dl(&mut s, CpuId(0)), Some(p));
    }

    #[test]
    fn dl_replenish_pays_back_an_overrun_and_restarts_a_lagging_instance() {
        let mut s = sched_state(1);
        let p = dl_task_new(&mut s, CpuId(0), 2 * MS, 10 * MS, 10 * MS);
        set_instance(&mut s, p, 10 * MS, -(3 * MS as i64));
        s.tasks[p.idx()].dl.dl_throttled = true;
        // -3 ms needs two refills: deadline 30 ms, runtime 1 ms.
        set_clock(&mut s, CpuId(0), 10 * MS);
        replenish_dl_entity(&mut s, CpuId(0), DlEntity::Task(p));
        let se = &s.tasks[p.idx()].dl;
        assert_eq!((se.deadline, se.runtime), (30 * MS, MS as i64));
        assert!(!se.dl_throttled);
        // Far behind: the postponed deadline is still past, so a new instance from now.
        s.tasks[p.idx()].dl.runtime = -1;
        set_clock(&mut s, CpuId(0), 100 * MS);
        replenish_dl_entity(&mut s, CpuId(0), DlEntity::Task(p));
        let se = &s.tasks[p.idx()].dl;
        assert_eq!((se.deadline, se.runtime), (110 * MS, 2 * MS as i64));
    }

    #[test]
    fn dl_pick_is_earliest_deadline_fifo_among_equals_and_cpudl_follows() {
        let mut s = sched_state(2);
        set_clock(&mut s, CpuId(0), MS);
        let a = dl_task_new(&mut s, CpuId(0), MS, 30 * MS, 30 * MS);
        let b = dl_task_new(&mut s, CpuId(0), MS, 10 * MS, 10 * MS);
        let c = dl_task_new(&mut s, CpuId(0), MS, 10 * MS, 10 * MS);
        for p in [a, b, c] {
            wake(&mut s, CpuId(0), p);
        }
        assert_eq!(s.rqs[0].dl.dl_nr_running, 3);
        assert_eq!(s.rqs[0].dl.earliest_dl.curr, Some(11 * MS));
        assert_eq!(s.cpudl.elements[0], Some(11 * MS));
        assert!(!s.cpudl.free_cpus.test(CpuId(0)) && s.cpudl.free_cpus.test(CpuId(1)));
        assert_eq!(s.cpupri.cpu_to_pri[0], CPUPRI_HIGHER);
        assert!(s.rqs[0].dl.overloaded && s.dlo_mask.test(CpuId(0)));
        assert_eq!(check_dl_rq(&s, CpuId(0), &queued_dl_tasks_per_cpu(&s)), None);
        let mut order = Vec::new();
        while let Some(p) = pick_task_dl(&mut s, CpuId(0)) {
            order.push(p);
            assert!(dequeue_task_dl(&mut s, CpuId(0), p, DequeueFlags::SLEEP));
            s.tasks[p.idx()].on_rq = OnRq::No;
            assert_eq!(check_dl_rq(&s, CpuId(0), &queued_dl_tasks_per_cpu(&s)), None);
        }
        assert_eq!(
            order,
            vec![b, c, a],
            "earliest first, equal deadlines in arrival order"
        );
        assert_eq!(s.cpudl.elements[0], None);
        assert!(s.cpudl.free_cpus.test(CpuId(0)));
        assert_eq!(s.cpupri.cpu_to_pri[0], crate::sched::cpupri::CPUPRI_NORMAL);
        assert!(s.dlo_mask.is_empty());
    }

    /// Run `p` on `cpu` the way `__schedule` does: put prev, set next, switch.
    fn run(s: &mut SchedState, cpu: CpuId, p: TaskId) {
        let prev = s.rqs[cpu.idx()].curr;
        if dl_task(s, prev) {
            put_prev_task_dl(s, cpu, prev);
        }
        set_next_task_dl(s, cpu, p, true);
        s.tasks[prev.idx()].on_cpu = false;
        s.tasks[prev.idx()].need_resched = false;
        s.tasks[p.idx()].on_cpu = true;
        s.rqs[cpu.idx()].curr = p;
        s.rqs[cpu.idx()].donor = p;
        s.rqs[cpu.idx()].next_class = Class::Deadline;
    }

    fn run_on_cpu<F: std::future::Future<Output = ()> + 'static>(k: &std::rc::Rc<Kernel>, cpu: CpuId, f: F) {
        let m = k.m.clone();
        let m2 = m.clone();
        m.spawn(task_ctx(TaskId(0)), async move {
            f.await;
            m2.halt().await;
        });
        m.boot_cpu(cpu, task_ctx(TaskId(0)));
        let mut ex = sim::Executor::new(m);
        ex.run(1_000_000, &mut |_| true);
    }

    #[test]
    fn dl_push_moves_the_waiting_task_to_the_latest_deadline_cpu() {
        // cpu0 runs A (deadline 11 ms) with B (deadline 21 ms) waiting; cpu1 runs C
        // (deadline 51 ms), cpu2 runs D (deadline 31 ms): B goes to cpu1, the latest.
        let mut s = sched_state(3);
        for c in CpuId::all(3) {
            set_clock(&mut s, c, MS);
        }
        let a = dl_task_new(&mut s, CpuId(0), MS, 10 * MS, 10 * MS);
        let b = dl_task_new(&mut s, CpuId(0), MS, 20 * MS, 20 * MS);
        let c = dl_task_new(&mut s, CpuId(1), MS, 50 * MS, 50 * MS);
        let d = dl_task_new(&mut s, CpuId(2), MS, 30 * MS, 30 * MS);
        wake(&mut s, CpuId(0), a);
        run(&mut s, CpuId(0), a);
        wake(&mut s, CpuId(0), b);
        wake(&mut s, CpuId(1), c);
        run(&mut s, CpuId(1), c);
        wake(&mut s, CpuId(2), d);
        run(&mut s, CpuId(2), d);
        assert_eq!(s.dlo_mask, CpuMask::single(CpuId(0)));
        assert_eq!(s.cpudl.maximum(), Some((CpuId(1), 51 * MS)));
        let k = Kernel::from_state(s);
        let k2 = k.clone();
        run_on_cpu(&k, CpuId(0), async move {
            k2.rq_lock(CpuId(0)).await;
            push_dl_tasks(&k2, CpuId(0)).await;
            k2.rq_unlock(CpuId(0)).await;
        });
        let mut s = k.st();
        assert!(k.violations.borrow().is_empty(), "{:?}", k.violations.borrow());
        assert_eq!(s.tasks[b.idx()].cpu, CpuId(1));
        assert_eq!(pick_task_dl(&mut s, CpuId(1)), Some(b), "earlier than C there");
        assert!(s.tasks[c.idx()].need_resched, "C is preempted");
        assert_eq!(s.rqs[0].dl.dl_nr_running, 1);
        for cpu in CpuId::all(3) {
            assert_eq!(check_dl_rq(&s, cpu, &queued_dl_tasks_per_cpu(&s)), None);
        }
    }

    #[test]
    fn dl_pull_takes_an_earlier_task_from_an_overloaded_cpu() {
        let mut s = sched_state(2);
        for c in CpuId::all(2) {
            set_clock(&mut s, c, MS);
        }
        let a = dl_task_new(&mut s, CpuId(1), MS, 10 * MS, 10 * MS);
        let b = dl_task_new(&mut s, CpuId(1), MS, 20 * MS, 20 * MS);
        wake(&mut s, CpuId(1), a);
        run(&mut s, CpuId(1), a);
        wake(&mut s, CpuId(1), b);
        let k = Kernel::from_state(s);
        let k2 = k.clone();
        run_on_cpu(&k, CpuId(0), async move {
            k2.rq_lock(CpuId(0)).await;
            pull_dl_task(&k2, CpuId(0)).await;
            k2.rq_unlock(CpuId(0)).await;
        });
        let s = k.st();
        assert!(k.violations.borrow().is_empty(), "{:?}", k.violations.borrow());
        assert_eq!(s.tasks[b.idx()].cpu, CpuId(0), "pulled to the DL-free CPU");
        assert!(s.tasks[0].need_resched, "cpu0's idle task reschedules");
        assert_eq!(s.tasks[a.idx()].cpu, CpuId(1), "the running task stays");
    }
}
