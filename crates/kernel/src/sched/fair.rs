//! The fair class: EEVDF (Earliest Eligible Virtual Deadline First), with fair group
//! scheduling.
//!
//! Linux: kernel/sched/fair.c (the class hooks, the EEVDF math and CONFIG_FAIR_GROUP_SCHED).
//! Placement of waking and forked tasks and load balancing live in
//! [`crate::sched::fair_balance`]; the task groups themselves in [`crate::sched::cgroup`].
//!
//! Every hook here runs with the rq lock of `cpu` held and never drops it (S-4).
//!
//! ## The model in brief
//! - Each queued entity has a virtual runtime `v` and a virtual deadline `d`. The queue's
//!   weighted average `V = Σwᵢvᵢ / Σwᵢ` (F-3) is kept as exact `i128` sums relative to
//!   `zero_vruntime`, over the entities in the tree; the running entity (`curr`) sits outside
//!   the tree (T-9b) and is added on the fly.
//! - An entity is eligible when `v ≤ V` (F-4), tested without division.
//! - `pick_eevdf` runs the eligible entity with the earliest deadline (F-9), honouring the
//!   RUN_TO_PARITY shield of the running entity (F-11).
//! - A sleeping ineligible entity stays queued (DELAY_DEQUEUE, F-20) until it is picked or
//!   woken.
//! - Group scheduling: an entity ([`SeId`]) is a task or a task group's entity on one CPU. A
//!   task sits on its group's cfs_rq of its CPU ([`CfsRqId`]); a group entity sits on its
//!   parent group's cfs_rq and owns the group's cfs_rq below it. Enqueue and dequeue walk the
//!   hierarchy up (`for_each_sched_entity`), the pick walks it down from `rq->cfs`, and a
//!   group entity's weight is the group's share of its weight for this CPU
//!   (`calc_group_shares`). A workload without groups has only the root level, where every
//!   walk is one step.
//!
//! ## Cost
//! No per-event hook scans a queue. The timeline is a [`SortedSet`] (the model's cached
//! rbtree: a sorted vector, see its module doc) keyed by (deadline, insertion number). Linux
//! augments its rbtree with each subtree's minimum slice (`min_slice`, kept by
//! `min_vruntime_update()` through `RB_DECLARE_CALLBACKS`) so that `cfs_rq_min_slice()` reads
//! it at the root. A sorted set has no per-node hook to keep such an aggregate; so each
//! cfs_rq keeps, next to the timeline, an ordered set of the same entities keyed by slice
//! ([`CfsRq::slices`]), updated wherever the timeline or the slice of an entity in it
//! changes. Its first element is the root's `min_slice`: O(1) to read, one more set update
//! to keep, the same answer. `rq->cfs_tasks` is a [`CfsTasks`] (a linked list whose links
//! live in the list, not in the tasks).
//!
//! Deviation: virtual times start at [`VRUNTIME_ORIGIN`] and are compared as plain `u64`
//! (with wrapping differences where Linux uses `s64` differences). Linux starts
//! `min_vruntime`/`zero_vruntime` just below 2⁶⁴ to exercise wrap-around; a simulated run
//! never gets near 2⁶⁴ ns of virtual time, and a high origin keeps `V − lag` positive so the
//! ordered tree can use the raw deadline as its key.
//!
//! Deviation: `calc_delta_fair` divides exactly (`Δ·1024/w`, rounded down) instead of
//! multiplying by the 32-bit inverse weight (`sched_prio_to_wmult`), as spec §11.1 allows;
//! results can differ from Linux by a few ns of virtual time per update.
//!
//! Deviation: no PELT. `calc_group_shares()` divides the group's shares by the sum of the
//! instantaneous `cfs_rq->load.weight` of its cfs_rqs on all CPUs (Linux: the PELT
//! `load_avg`s, refreshed every few ms), so a group's weight on a CPU follows its queued load
//! at once.

use crate::sched::sortedset::SortedSet;

use sim::{CpuId, Nanos};
use uapi::Policy;

use crate::sched::cgroup::{GroupId, MIN_SHARES, ROOT_TASK_GROUP};
use crate::sched::core::{self, Kernel};
use crate::sched::tasklist::{Link, ListNode, TaskList};
use crate::sched::{Class, DequeueFlags, EnqueueFlags, SchedState, WakeFlags};
use crate::task::{OnRq, TaskId};

/// nice-0 weight (`NICE_0_LOAD` after `scale_load_down`).
pub const NICE_0_LOAD: u64 = 1024;

/// Weight of a SCHED_IDLE task (`WEIGHT_IDLEPRIO`).
pub const WEIGHT_IDLEPRIO: u64 = 3;

/// Where every runqueue's virtual time starts (see the module's first Deviation).
pub const VRUNTIME_ORIGIN: u64 = 1 << 40;

/// Custom slice bounds (F-7): `sched_attr.sched_runtime` clamped to [0.1, 100] ms.
pub const SLICE_MIN_NS: u64 = 100_000;
pub const SLICE_MAX_NS: u64 = 100_000_000;

/// `sched_prio_to_weight[]`, nice −20 … +19 (Appendix B).
pub const SCHED_PRIO_TO_WEIGHT: [u64; 40] = [
    88761, 71755, 56483, 46273, 36291, //
    29154, 23254, 18705, 14949, 11916, //
    9548, 7620, 6100, 4904, 3906, //
    3121, 2501, 1991, 1586, 1277, //
    1024, 820, 655, 526, 423, //
    335, 272, 215, 172, 137, //
    110, 87, 70, 56, 45, //
    36, 29, 23, 18, 15,
];

/// A scheduling entity: a task's `p->se`, or a task group's entity on one CPU
/// (`tg->se[cpu]`, which CPU is always known from the cfs_rq it is used with).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeId {
    Task(TaskId),
    Group(GroupId),
}

/// A cfs_rq: group `tg`'s queue on `cpu` (`tg->cfs_rq[cpu]`; the root group's is `rq->cfs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CfsRqId {
    pub cpu: CpuId,
    pub tg: GroupId,
}

impl CfsRqId {
    /// `&rq->cfs` of `cpu`.
    pub fn root(cpu: CpuId) -> CfsRqId {
        CfsRqId {
            cpu,
            tg: ROOT_TASK_GROUP,
        }
    }
}

/// `struct sched_entity`. Protected by: the rq lock of the task's CPU.
#[derive(Clone, Debug, Default)]
pub struct SchedEntity {
    /// `se->load.weight` (nice-0 = 1024).
    pub weight: u64,
    /// Virtual runtime (ns of virtual time).
    pub vruntime: u64,
    /// Virtual deadline; relative to `vruntime` while `rel_deadline` is set.
    pub deadline: u64,
    /// `V − v` saved at dequeue (F-5), used by placement (F-12).
    pub vlag: i64,
    /// Requested slice in ns (`se->slice`).
    pub slice: u64,
    /// Queued on the cfs_rq (in the tree, or as `curr`).
    pub on_rq: bool,
    /// Kept queued by DELAY_DEQUEUE although its task sleeps (F-20).
    pub sched_delayed: bool,
    /// `deadline` holds `d − v` (saved by a non-sleep dequeue, F-13).
    pub rel_deadline: bool,
    /// `slice` came from `sched_attr.sched_runtime` (F-7) and is not reset on placement.
    pub custom_slice: bool,
    /// RUN_TO_PARITY protection: curr is shielded while `vruntime < vprot` (F-11).
    pub vprot: u64,
    /// Start of the current accounting interval (`exec_start`).
    pub exec_start: Nanos,
    /// Total time this task executed (`sum_exec_runtime`); for a group entity, the time
    /// executed on the scheduling contexts below it.
    pub sum_exec_runtime: Nanos,
    pub prev_sum_exec_runtime: Nanos,
    /// This entity's tree key while it is in the tree: (deadline at insertion, insertion
    /// number). Linux removes an rbtree node by pointer, so the deadline may be rewritten
    /// (made relative) just before removal; the model removes by the saved key.
    pub tree_key: (u64, u64),
    /// The slice under which this entity is in [`CfsRq::slices`] while it is in the tree.
    pub tree_slice: u64,
    /// A task's links on `rq->cfs_tasks` ([`CfsTasks`]), linked while it is on it
    /// (`se->group_node`).
    pub group_node: ListNode,
}

/// `rq->cfs_tasks`: the queued fair tasks of a CPU, most recently run first (head first),
/// a [`TaskList`] through the tasks' `se.group_node` (its module doc says how it differs
/// from Linux's list).
pub type CfsTasks = TaskList;

/// `list_add(&p->se.group_node, &rq->cfs_tasks)`: `p` (on no list) goes to the head.
///
/// Linux: kernel/sched/fair.c account_entity_enqueue() (the `cfs_tasks` part).
fn cfs_tasks_add(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    assert!(
        !s.tasks[p.idx()].se.group_node.is_linked(),
        "task {p} twice on cfs_tasks of cpu{cpu}"
    );
    s.rqs[cpu.idx()].cfs.tasks.push_front(&mut s.tasks, p);
}

/// `list_del_init(&p->se.group_node)`: take `p` off `cpu`'s `cfs_tasks`; false if it was on
/// no list.
///
/// Linux: kernel/sched/fair.c account_entity_dequeue() (the `cfs_tasks` part).
fn cfs_tasks_del(s: &mut SchedState, cpu: CpuId, p: TaskId) -> bool {
    if !s.tasks[p.idx()].se.group_node.is_linked() {
        return false;
    }
    s.rqs[cpu.idx()].cfs.tasks.remove(&mut s.tasks, p);
    true
}

/// `list_move(&p->se.group_node, &rq->cfs_tasks)`: `p`, if it is on `cpu`'s list, becomes
/// its head (most recently run).
///
/// Linux: kernel/sched/fair.c set_next_task_fair() / detach_tasks() (their list_move()).
pub fn cfs_tasks_move_to_front(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    if cfs_tasks_del(s, cpu, p) {
        cfs_tasks_add(s, cpu, p);
    }
}

/// `struct cfs_rq`. Protected by: the rq lock.
#[derive(Clone, Debug)]
pub struct CfsRq {
    /// Tasks queued below this cfs_rq including `curr` and delayed ones (`h_nr_queued`).
    pub h_nr_queued: u32,
    /// Those of them that are not delayed (`h_nr_runnable`).
    pub h_nr_runnable: u32,
    /// Entities queued on this cfs_rq itself (`nr_queued`).
    pub nr_queued: u32,
    /// Sum of queued weights including `curr` and delayed ones (`cfs_rq->load.weight`).
    pub load_weight: u64,
    /// The entity set as next (`cfs_rq->curr`); outside the tree while set.
    pub curr: Option<SeId>,
    /// The timeline (`tasks_timeline`): entities other than `curr`, ordered by
    /// (deadline, insertion number).
    pub tree: SortedSet<(u64, u64, SeId)>,
    /// The same entities as `tree`, ordered by (slice, entity): the first one holds the
    /// timeline root's `min_slice` augmentation (see the module's Cost section).
    pub slices: SortedSet<(u64, SeId)>,
    /// Next insertion number.
    pub tree_seq: u64,
    /// `Σ wᵢ·(vᵢ − zero_vruntime)` over the tree (`sum_w_vruntime`, kernel `avg_vruntime`).
    pub sum_w_vruntime: i128,
    /// `Σ wᵢ` over the tree (`sum_weight`, kernel `avg_load`).
    pub sum_weight: u64,
    /// Reference point of the sums (`zero_vruntime`; [6.12] `min_vruntime`).
    pub zero_vruntime: u64,
    /// Next buddy (`cfs_rq->next`).
    pub next: Option<SeId>,
    /// `rq->cfs_tasks` (used on the root cfs_rq only): queued fair tasks of the CPU, most
    /// recently run first (balancer scan order).
    pub tasks: CfsTasks,
    /// CFS bandwidth (`cpu.max` of the group): this cfs_rq draws runtime from the group's pool.
    pub runtime_enabled: bool,
    /// Local runtime left (`runtime_remaining`), ns; may go negative by an overrun.
    pub runtime_remaining: i64,
    /// Throttled: out of runtime, its group entity off the parent's queue (`throttled`).
    pub throttled: bool,
    /// How many of this cfs_rq and its ancestors are throttled (`throttle_count`).
    pub throttle_count: u32,
    /// When it was throttled (`throttled_clock`), for `cpu.stat throttled_usec`.
    pub throttled_clock: Nanos,
}

impl Default for CfsRq {
    fn default() -> Self {
        CfsRq {
            h_nr_queued: 0,
            h_nr_runnable: 0,
            nr_queued: 0,
            load_weight: 0,
            curr: None,
            tree: SortedSet::new(),
            slices: SortedSet::new(),
            tree_seq: 0,
            sum_w_vruntime: 0,
            sum_weight: 0,
            zero_vruntime: VRUNTIME_ORIGIN,
            next: None,
            tasks: CfsTasks::new(Link::CfsTasks),
            runtime_enabled: false,
            runtime_remaining: 0,
            throttled: false,
            throttle_count: 0,
            throttled_clock: 0,
        }
    }
}

// ---------------------------------------------------------------------- the hierarchy

/// The cfs_rq `id`.
///
/// Linux: kernel/sched/sched.h (`tg->cfs_rq[cpu]`, `&rq->cfs`).
pub fn cfs_rq(s: &SchedState, id: CfsRqId) -> &CfsRq {
    if id.tg == ROOT_TASK_GROUP {
        &s.rqs[id.cpu.idx()].cfs
    } else {
        &s.groups[id.tg as usize].cfs_rq[id.cpu.idx()]
    }
}

fn cfs_rq_mut(s: &mut SchedState, id: CfsRqId) -> &mut CfsRq {
    if id.tg == ROOT_TASK_GROUP {
        &mut s.rqs[id.cpu.idx()].cfs
    } else {
        &mut s.groups[id.tg as usize].cfs_rq[id.cpu.idx()]
    }
}

/// The entity `e` (a group entity: the one on `cpu`).
pub fn se_of(s: &SchedState, cpu: CpuId, e: SeId) -> &SchedEntity {
    match e {
        SeId::Task(p) => &s.tasks[p.idx()].se,
        SeId::Group(g) => &s.groups[g as usize].se[cpu.idx()],
    }
}

fn se_mut(s: &mut SchedState, cpu: CpuId, e: SeId) -> &mut SchedEntity {
    match e {
        SeId::Task(p) => &mut s.tasks[p.idx()].se,
        SeId::Group(g) => &mut s.groups[g as usize].se[cpu.idx()],
    }
}

/// The group whose cfs_rq `e` is queued on.
fn parent_tg(s: &SchedState, e: SeId) -> GroupId {
    match e {
        SeId::Task(p) => s.tasks[p.idx()].sched_task_group,
        SeId::Group(g) => s.groups[g as usize].parent.expect("the root group has no entity"),
    }
}

/// `cfs_rq_of(se)`: the queue `e` is (or would be) queued on, on `cpu`.
///
/// Linux: kernel/sched/fair.c cfs_rq_of().
pub fn cfs_rq_of(s: &SchedState, cpu: CpuId, e: SeId) -> CfsRqId {
    CfsRqId {
        cpu,
        tg: parent_tg(s, e),
    }
}

/// `parent_entity(se)`: the group entity above `e`, None at the root level.
///
/// Linux: kernel/sched/fair.c parent_entity().
pub fn parent_entity(s: &SchedState, e: SeId) -> Option<SeId> {
    let tg = parent_tg(s, e);
    (tg != ROOT_TASK_GROUP).then_some(SeId::Group(tg))
}

/// `group_cfs_rq(se)`: the queue a group entity owns (`se->my_q`), None for a task.
///
/// Linux: kernel/sched/fair.c group_cfs_rq().
pub fn group_cfs_rq(cpu: CpuId, e: SeId) -> Option<CfsRqId> {
    match e {
        SeId::Task(_) => None,
        SeId::Group(g) => Some(CfsRqId { cpu, tg: g }),
    }
}

/// `se->depth`.
fn se_depth(s: &SchedState, e: SeId) -> u32 {
    s.groups[parent_tg(s, e) as usize].depth
}

/// Walk `se` and `pse` up until they are queued on the same cfs_rq.
///
/// Linux: kernel/sched/fair.c find_matching_se().
fn find_matching_se(s: &SchedState, mut se: SeId, mut pse: SeId) -> (SeId, SeId) {
    let (mut sd, mut pd) = (se_depth(s, se), se_depth(s, pse));
    while sd > pd {
        sd -= 1;
        se = parent_entity(s, se).expect("depth > 0 has a parent");
    }
    while pd > sd {
        pd -= 1;
        pse = parent_entity(s, pse).expect("depth > 0 has a parent");
    }
    while parent_tg(s, se) != parent_tg(s, pse) {
        se = parent_entity(s, se).expect("not at the root yet");
        pse = parent_entity(s, pse).expect("not at the root yet");
    }
    (se, pse)
}

/// `se_is_idle()`: a SCHED_IDLE task (the model has no `cpu.idle` groups).
///
/// Linux: kernel/sched/fair.c se_is_idle().
fn se_is_idle(s: &SchedState, e: SeId) -> bool {
    match e {
        SeId::Task(p) => s.tasks[p.idx()].policy == Policy::Idle,
        SeId::Group(_) => false,
    }
}

// ---------------------------------------------------------------------- pure helpers

/// The weight of a fair task of `policy` and `nice` (F-1).
///
/// Linux: kernel/sched/core.c set_load_weight().
pub fn weight_of(policy: Policy, nice: i32) -> u64 {
    if policy == Policy::Idle {
        return WEIGHT_IDLEPRIO;
    }
    assert!((-20..=19).contains(&nice), "nice {nice} out of range");
    SCHED_PRIO_TO_WEIGHT[(nice + 20) as usize]
}

/// Wall time `delta_ns` as virtual time of an entity of weight `weight`.
///
/// Linux: kernel/sched/fair.c calc_delta_fair().
///
/// Deviation: exact division instead of the inverse-weight multiply (module docs).
pub fn calc_delta_fair(delta_ns: u64, weight: u64) -> u64 {
    assert!(weight > 0, "calc_delta_fair with zero weight");
    if weight == NICE_0_LOAD {
        return delta_ns;
    }
    (delta_ns as u128 * NICE_0_LOAD as u128 / weight as u128) as u64
}

/// Signed difference `a − b` of two virtual times.
///
/// Linux: the `(s64)(a - b)` comparisons of kernel/sched/fair.c (entity_before(), min_vruntime()).
fn vdiff(a: u64, b: u64) -> i64 {
    a.wrapping_sub(b) as i64
}

/// Division rounding toward −∞ (the kernel adjusts a negative dividend before `div_s64`).
///
/// Linux: kernel/sched/fair.c avg_vruntime() (its rounding step).
///
/// The operands nearly always fit in 64 bits; the same floor division is then done in 64
/// bits, without the 128-bit division helper.
fn floor_div(a: i128, b: i128) -> i128 {
    assert!(b > 0);
    if let (Ok(a), Ok(b)) = (i64::try_from(a), i64::try_from(b)) {
        return i128::from(a.div_euclid(b));
    }
    a.div_euclid(b)
}

/// `sysctl_sched_base_slice` for this machine (F-6).
///
/// Linux: kernel/sched/fair.c update_sysctl() / sysctl_sched_base_slice.
fn base_slice_ns(s: &SchedState) -> u64 {
    s.tun.base_slice_ns(s.nr_cpus())
}

// ---------------------------------------------------------------------- avg_vruntime

/// Add an entity to the tree sums.
///
/// Linux: kernel/sched/fair.c avg_vruntime_add() / sum_w_vruntime_add().
#[cfg(test)]
fn avg_vruntime_add(cfs: &mut CfsRq, se: &SchedEntity) {
    sum_w_vruntime_add(cfs, se.vruntime, se.weight);
}

/// [`avg_vruntime_add`] of an entity at `vruntime` with `weight`.
///
/// Linux: kernel/sched/fair.c sum_w_vruntime_add().
fn sum_w_vruntime_add(cfs: &mut CfsRq, vruntime: u64, weight: u64) {
    let key = vdiff(vruntime, cfs.zero_vruntime) as i128;
    cfs.sum_w_vruntime += key * weight as i128;
    cfs.sum_weight += weight;
}

/// Remove an entity at `vruntime` with `weight` from the tree sums.
///
/// Linux: kernel/sched/fair.c sum_w_vruntime_sub().
fn sum_w_vruntime_sub(cfs: &mut CfsRq, vruntime: u64, weight: u64) {
    let key = vdiff(vruntime, cfs.zero_vruntime) as i128;
    cfs.sum_w_vruntime -= key * weight as i128;
    assert!(cfs.sum_weight >= weight, "cfs sum_weight underflow");
    cfs.sum_weight -= weight;
}

/// `V` of the queue: the weighted mean of the tree and `curr` (if queued), rounded toward −∞;
/// an empty queue returns `zero_vruntime`.
///
/// Linux: kernel/sched/fair.c avg_vruntime().
pub fn avg_vruntime(cfs: &CfsRq, curr: Option<&SchedEntity>) -> u64 {
    let mut sum = cfs.sum_w_vruntime;
    let mut load = cfs.sum_weight as i128;
    if let Some(c) = curr.filter(|c| c.on_rq) {
        sum += vdiff(c.vruntime, cfs.zero_vruntime) as i128 * c.weight as i128;
        load += c.weight as i128;
    }
    let off = if load > 0 { floor_div(sum, load) } else { 0 };
    cfs.zero_vruntime.wrapping_add(off as i64 as u64)
}

/// Whether an entity at `vruntime` is eligible: `Σwⱼ(vⱼ−v₀) ≥ (v−v₀)·Σwⱼ` (F-4), exact.
///
/// Linux: kernel/sched/fair.c vruntime_eligible().
pub fn vruntime_eligible(cfs: &CfsRq, curr: Option<&SchedEntity>, vruntime: u64) -> bool {
    let mut sum = cfs.sum_w_vruntime;
    let mut load = cfs.sum_weight as i128;
    if let Some(c) = curr.filter(|c| c.on_rq) {
        sum += vdiff(c.vruntime, cfs.zero_vruntime) as i128 * c.weight as i128;
        load += c.weight as i128;
    }
    sum >= vdiff(vruntime, cfs.zero_vruntime) as i128 * load
}

/// Move `zero_vruntime` to the current `V`, rebasing the sums (keeps the keys small).
///
/// Linux: kernel/sched/fair.c update_zero_vruntime() ([6.12] update_min_vruntime()).
///
/// Deviation: [6.12] tracks a monotonic `min_vruntime`; with exact floor division the choice
/// of reference point does not change any result (shifting it by an integer shifts both sides
/// of every comparison equally), so the model follows the newest code.
fn update_zero_vruntime(s: &mut SchedState, id: CfsRqId) {
    let v = avg_vruntime_cfs(s, id);
    let cfs = cfs_rq_mut(s, id);
    let delta = vdiff(v, cfs.zero_vruntime) as i128;
    cfs.sum_w_vruntime -= cfs.sum_weight as i128 * delta;
    cfs.zero_vruntime = v;
}

/// The entity in `cfs_rq->curr`, if any.
///
/// Linux: kernel/sched/sched.h struct cfs_rq::curr.
fn curr_se(s: &SchedState, id: CfsRqId) -> Option<&SchedEntity> {
    cfs_rq(s, id).curr.map(|c| se_of(s, id.cpu, c))
}

/// `avg_vruntime(cfs_rq)`.
///
/// Linux: kernel/sched/fair.c avg_vruntime().
pub fn avg_vruntime_cfs(s: &SchedState, id: CfsRqId) -> u64 {
    avg_vruntime(cfs_rq(s, id), curr_se(s, id))
}

/// `avg_vruntime(&rq->cfs)` of `cpu`.
///
/// Linux: kernel/sched/fair.c avg_vruntime().
pub fn avg_vruntime_of(s: &SchedState, cpu: CpuId) -> u64 {
    avg_vruntime_cfs(s, CfsRqId::root(cpu))
}

/// Whether entity `e` is eligible on its cfs_rq `id`.
///
/// Linux: kernel/sched/fair.c entity_eligible().
fn se_eligible(s: &SchedState, id: CfsRqId, e: SeId) -> bool {
    vruntime_eligible(cfs_rq(s, id), curr_se(s, id), se_of(s, id.cpu, e).vruntime)
}

/// Whether task `p` (queued on `cpu`) is eligible on its cfs_rq.
///
/// Linux: kernel/sched/fair.c entity_eligible().
pub fn entity_eligible(s: &SchedState, cpu: CpuId, p: TaskId) -> bool {
    let e = SeId::Task(p);
    se_eligible(s, cfs_rq_of(s, cpu, e), e)
}

/// `V − v` clamped to ±max(2·slice, TICK_NSEC) in the entity's virtual time (F-5).
///
/// Linux: kernel/sched/fair.c update_entity_lag().
fn update_entity_lag(s: &mut SchedState, id: CfsRqId, e: SeId) {
    let v = avg_vruntime_cfs(s, id);
    let tick_ns = s.tun.tick_ns();
    let se = se_mut(s, id.cpu, e);
    let lag = vdiff(v, se.vruntime);
    let limit = calc_delta_fair((2 * se.slice).max(tick_ns), se.weight) as i64;
    se.vlag = lag.clamp(-limit, limit);
}

// ---------------------------------------------------------------------- the tree

/// Insert `e` into the timeline and the sums of `id`.
///
/// Linux: kernel/sched/fair.c __enqueue_entity().
fn enqueue_tree(s: &mut SchedState, id: CfsRqId, e: SeId) {
    assert_ne!(
        cfs_rq(s, id).curr,
        Some(e),
        "curr is kept outside the tree (T-9b)"
    );
    let seq = cfs_rq(s, id).tree_seq;
    let se = se_mut(s, id.cpu, e);
    se.tree_key = (se.deadline, seq);
    se.tree_slice = se.slice;
    let (key, slice, vruntime, weight) = (se.tree_key, se.slice, se.vruntime, se.weight);
    let cfs = cfs_rq_mut(s, id);
    cfs.tree_seq += 1;
    sum_w_vruntime_add(cfs, vruntime, weight);
    let fresh = cfs.tree.insert((key.0, key.1, e));
    assert!(fresh, "{e:?} inserted twice into the cfs tree {id:?}");
    let fresh = cfs.slices.insert((slice, e));
    assert!(fresh, "{e:?} inserted twice into the min_slice set of {id:?}");
    update_zero_vruntime(s, id);
}

/// Remove `e` from the timeline and the sums of `id`.
///
/// Linux: kernel/sched/fair.c __dequeue_entity().
fn dequeue_tree(s: &mut SchedState, id: CfsRqId, e: SeId) {
    let se = se_of(s, id.cpu, e);
    let (key, slice, vruntime, weight) = (se.tree_key, se.tree_slice, se.vruntime, se.weight);
    let cfs = cfs_rq_mut(s, id);
    let was = cfs.tree.remove(&(key.0, key.1, e));
    assert!(was, "{e:?} not in the cfs tree {id:?}");
    let was = cfs.slices.remove(&(slice, e));
    assert!(was, "{e:?} not in the min_slice set of {id:?}");
    sum_w_vruntime_sub(cfs, vruntime, weight);
    update_zero_vruntime(s, id);
}

/// Set the slice of entity `e` queued on `id` (a group entity taking the smallest slice
/// below it); if `e` is in the timeline, its place in the `min_slice` set follows.
///
/// Linux: kernel/sched/fair.c enqueue_task_fair() / dequeue_entities() (`se->slice = slice`
/// then `min_vruntime_cb_propagate()` unless `se` is `cfs_rq->curr`).
fn set_queued_slice(s: &mut SchedState, id: CfsRqId, e: SeId, slice: u64) {
    let old = se_of(s, id.cpu, e).tree_slice;
    let in_tree = cfs_rq_mut(s, id).slices.remove(&(old, e));
    let se = se_mut(s, id.cpu, e);
    se.slice = slice;
    if in_tree {
        se.tree_slice = slice;
        cfs_rq_mut(s, id).slices.insert((slice, e));
    }
}

/// Smallest slice among queued entities (tree and queued curr), `u64::MAX` if none: the
/// first of the `min_slice` set (the root's augmentation in Linux) and curr's.
///
/// Linux: kernel/sched/fair.c cfs_rq_min_slice().
fn cfs_rq_min_slice(s: &SchedState, id: CfsRqId) -> u64 {
    let cfs = cfs_rq(s, id);
    let mut min = u64::MAX;
    if let Some(c) = curr_se(s, id).filter(|c| c.on_rq) {
        min = c.slice;
    }
    if let Some(&(slice, _)) = cfs.slices.first() {
        min = min.min(slice);
    }
    // A debug build checks the set against the entities' own slices (an O(n) scan, which is
    // what the set replaces, so it is not done in release builds).
    #[cfg(debug_assertions)]
    {
        let scan = cfs.tree.iter().map(|&(_, _, t)| se_of(s, id.cpu, t).slice).min();
        assert_eq!(
            cfs.slices.first().map(|&(sl, _)| sl),
            scan,
            "min_slice set of {id:?} is stale"
        );
    }
    min
}

/// `cfs_rq->next = None` if it is `e`, and the same for its ancestors that are the next
/// buddy of their cfs_rq.
///
/// Linux: kernel/sched/fair.c clear_buddies() / __clear_buddies_next().
fn clear_buddies(s: &mut SchedState, id: CfsRqId, e: SeId) {
    if cfs_rq(s, id).next != Some(e) {
        return;
    }
    let mut cur = Some(e);
    while let Some(se) = cur {
        let q = cfs_rq_of(s, id.cpu, se);
        if cfs_rq(s, q).next != Some(se) {
            break;
        }
        cfs_rq_mut(s, q).next = None;
        cur = parent_entity(s, se);
    }
}

/// Make `e` and its ancestors the next buddy of their cfs_rqs.
///
/// Linux: kernel/sched/fair.c set_next_buddy().
fn set_next_buddy(s: &mut SchedState, cpu: CpuId, e: SeId) {
    let mut cur = Some(e);
    while let Some(se) = cur {
        if !se_of(s, cpu, se).on_rq || se_is_idle(s, se) {
            return;
        }
        let q = cfs_rq_of(s, cpu, se);
        cfs_rq_mut(s, q).next = Some(se);
        cur = parent_entity(s, se);
    }
}

// ---------------------------------------------------------------------- slices and protection

/// Start a new request when `v` reached `d` (F-2): `d = v + slice·1024/w`. True if it did.
///
/// Linux: kernel/sched/fair.c update_deadline().
fn update_deadline(s: &mut SchedState, cpu: CpuId, e: SeId) -> bool {
    let base = base_slice_ns(s);
    let se = se_mut(s, cpu, e);
    if vdiff(se.vruntime, se.deadline) < 0 {
        return false;
    }
    if !se.custom_slice {
        se.slice = base;
    }
    se.deadline = se.vruntime.wrapping_add(calc_delta_fair(se.slice, se.weight));
    true
}

/// Whether `p` is still inside its RUN_TO_PARITY protection.
///
/// Linux: kernel/sched/fair.c protect_slice().
pub fn protect_slice(se: &SchedEntity) -> bool {
    vdiff(se.vprot, se.vruntime) > 0
}

/// Set the protection of a freshly picked entity (F-11):
/// `vprot = min(d, v + min(s_min, slice)·1024/w)`, `s_min` the smallest queued slice with
/// RUN_TO_PARITY, the unscaled base slice without.
///
/// Linux: kernel/sched/fair.c set_protect_slice().
fn set_protect_slice(s: &mut SchedState, id: CfsRqId, e: SeId) {
    let mut slice = s.tun.base_slice_normalized_ns;
    if s.feat.run_to_parity {
        slice = cfs_rq_min_slice(s, id);
    }
    let se = se_mut(s, id.cpu, e);
    slice = slice.min(se.slice);
    let mut vprot = se.deadline;
    if slice != se.slice {
        let v = se.vruntime.wrapping_add(calc_delta_fair(slice, se.weight));
        if vdiff(v, vprot) < 0 {
            vprot = v;
        }
    }
    se.vprot = vprot;
}

/// Shorten the protection of `e` to the smallest queued slice (after a wakeup that did not
/// preempt).
///
/// Linux: kernel/sched/fair.c update_protect_slice().
fn update_protect_slice(s: &mut SchedState, id: CfsRqId, e: SeId) {
    let slice = cfs_rq_min_slice(s, id);
    let se = se_mut(s, id.cpu, e);
    let v = se.vruntime.wrapping_add(calc_delta_fair(slice, se.weight));
    if vdiff(v, se.vprot) < 0 {
        se.vprot = v;
    }
}

/// End the protection now.
///
/// Linux: kernel/sched/fair.c cancel_protect_slice().
fn cancel_protect_slice(se: &mut SchedEntity) {
    if protect_slice(se) {
        se.vprot = se.vruntime;
    }
}

// ---------------------------------------------------------------------- update_curr

/// Charge the time since `exec_start` to the current entity of `id` (F-2). For a task entity
/// (the scheduling context, `cfs_rq->curr`: the donor) the time goes as Linux's
/// `update_se()` sends it: `sum_exec_runtime` to the execution context (`rq->curr`), the
/// cgroup's CPU time to the donor's group and its ancestors; a group entity's own
/// `sum_exec_runtime` grows. Then virtual time, the deadline, and a lazy reschedule when a
/// new request starts or the protection has ended and another entity is queued.
///
/// Linux: kernel/sched/fair.c update_curr(), update_se().
fn update_curr(s: &mut SchedState, id: CfsRqId) {
    let Some(c) = cfs_rq(s, id).curr else {
        return;
    };
    let cpu = id.cpu;
    let now = s.rqs[cpu.idx()].clock_task;
    let delta = now as i64 - se_of(s, cpu, c).exec_start as i64;
    if delta <= 0 {
        return;
    }
    let delta = delta as u64;
    se_mut(s, cpu, c).exec_start = now;
    match c {
        SeId::Task(donor) => {
            // Execution time goes to the task that ran; with Proxy Execution it may differ
            // from the donor whose entity `c` is (A2/A3).
            let running = s.rqs[cpu.idx()].curr;
            let r = &mut s.tasks[running.idx()].se;
            r.exec_start = now;
            r.sum_exec_runtime += delta;
            // cgroup time is the donor's (cgroup_account_cputime(donor, ...)).
            let mut g = Some(s.tasks[donor.idx()].sched_task_group);
            while let Some(tg) = g {
                s.groups[tg as usize].usage_ns += delta;
                g = s.groups[tg as usize].parent;
            }
            // Fair execution drains the fair server's budget, through it or not (D-20).
            crate::sched::deadline::dl_server_update(s, cpu, delta);
        }
        SeId::Group(_) => se_mut(s, cpu, c).sum_exec_runtime += delta,
    }

    let se = se_mut(s, cpu, c);
    se.vruntime = se.vruntime.wrapping_add(calc_delta_fair(delta, se.weight));
    let resched = update_deadline(s, cpu, c);
    account_cfs_rq_runtime(s, id, delta);

    if cfs_rq(s, id).nr_queued == 1 {
        return;
    }
    if resched || !protect_slice(se_of(s, cpu, c)) {
        core::resched_curr_lazy(s, cpu);
        clear_buddies(s, id, c);
    }
}

/// The cfs_rq of the task entity at the bottom of `cpu`'s `curr` chain (the donor's own
/// cfs_rq, `cfs_rq_of(&rq->donor->se)`), if a fair entity is set as next.
///
/// Linux: kernel/sched/fair.c update_curr_fair() (its cfs_rq lookup).
fn donor_cfs_rq(s: &SchedState, cpu: CpuId) -> Option<CfsRqId> {
    let mut id = CfsRqId::root(cpu);
    // Bounded by the depth of the group tree.
    for _ in 0..=s.groups.len() {
        match cfs_rq(s, id).curr? {
            SeId::Task(_) => return Some(id),
            SeId::Group(g) => id = CfsRqId { cpu, tg: g },
        }
    }
    panic!("cfs curr chain of cpu{cpu} does not end in a task");
}

/// The class hook `update_curr` (the core calls it before reading runtimes): the donor's
/// own level only, as in Linux; the group entities above it are charged when their level is
/// next updated.
///
/// Linux: kernel/sched/fair.c update_curr_fair().
pub fn update_curr_fair(s: &mut SchedState, cpu: CpuId) {
    if let Some(id) = donor_cfs_rq(s, cpu) {
        update_curr(s, id);
    }
}

// ---------------------------------------------------------------------- group shares

/// The weight group `gcfs.tg`'s entity should have on `gcfs.cpu`: the group's shares times
/// this CPU's part of the group's load, clamped to [MIN_SHARES, shares].
///
/// Linux: kernel/sched/fair.c calc_group_shares().
///
/// Deviation: instantaneous `load.weight` for both the CPU's load and the group's total
/// (Linux: PELT averages, module docs).
fn calc_group_shares(s: &SchedState, gcfs: CfsRqId) -> u64 {
    let tg = &s.groups[gcfs.tg as usize];
    let load = tg.cfs_rq[gcfs.cpu.idx()].load_weight;
    let tg_weight: u64 = tg.cfs_rq.iter().map(|q| q.load_weight).sum();
    let shares = if tg_weight > 0 {
        (tg.shares as u128 * load as u128 / tg_weight as u128) as u64
    } else {
        tg.shares
    };
    shares.clamp(MIN_SHARES, tg.shares)
}

/// Re-weigh group entity `e` from its group's shares; an empty group keeps its weight (so a
/// delayed group entity keeps its lag, DELAY_DEQUEUE), and so does a throttled one.
///
/// Linux: kernel/sched/fair.c update_cfs_group().
fn update_cfs_group(s: &mut SchedState, cpu: CpuId, e: SeId) {
    let Some(gcfs) = group_cfs_rq(cpu, e) else {
        return;
    };
    if cfs_rq(s, gcfs).load_weight == 0 || throttled_hierarchy(s, gcfs) {
        return;
    }
    let shares = calc_group_shares(s, gcfs);
    if se_of(s, cpu, e).weight != shares {
        let q = cfs_rq_of(s, cpu, e);
        reweight_entity(s, q, e, shares);
    }
}

// ---------------------------------------------------------------------- CFS bandwidth
//
// Deviation: the throttle of Linux up to 6.17 (throttle_cfs_rq() takes the whole group entity
// off its parent's queue at once, unthrottle_cfs_rq() puts it back); since 6.18 Linux
// dequeues each task of a throttled hierarchy when it next returns to user mode (task-based
// throttling), which lets a task in the kernel finish its section first.

/// `sysctl_sched_cfs_bandwidth_slice`: runtime a cfs_rq draws from its group's pool at once.
pub const CFS_BANDWIDTH_SLICE_NS: u64 = 5_000_000;

/// Whether the cfs_rq `id` itself is throttled.
///
/// Linux: kernel/sched/fair.c cfs_rq_throttled().
pub fn cfs_rq_throttled(s: &SchedState, id: CfsRqId) -> bool {
    cfs_rq(s, id).throttled
}

/// Whether `id` or one of its ancestors is throttled.
///
/// Linux: kernel/sched/fair.c throttled_hierarchy().
pub fn throttled_hierarchy(s: &SchedState, id: CfsRqId) -> bool {
    cfs_rq(s, id).throttle_count > 0
}

/// Whether group `tg`'s cfs_rq is in a throttled hierarchy on `src` or on `dst` (the balancer
/// moves no task from or to one).
///
/// Linux: kernel/sched/fair.c throttled_lb_pair().
pub fn throttled_lb_pair(s: &SchedState, tg: GroupId, src: CpuId, dst: CpuId) -> bool {
    throttled_hierarchy(s, CfsRqId { cpu: src, tg }) || throttled_hierarchy(s, CfsRqId { cpu: dst, tg })
}

/// Whether fair task `p` sits in a throttled hierarchy (queued, but not counted by its rq).
pub fn task_throttled(s: &SchedState, p: TaskId) -> bool {
    let t = &s.tasks[p.idx()];
    t.class == Class::Fair && t.se.on_rq && throttled_hierarchy(s, cfs_rq_of(s, t.cpu, SeId::Task(p)))
}

/// Arm the group's period timer if it is not running, on this CPU, at the next multiple of
/// the period.
///
/// Linux: kernel/sched/fair.c start_cfs_bandwidth().
fn start_cfs_bandwidth(s: &mut SchedState, tg: GroupId) {
    if s.groups[tg as usize].cfs_b.period_active {
        return;
    }
    let now = s.now();
    let cpu = s.m.this_cpu();
    let b = &mut s.groups[tg as usize].cfs_b;
    b.period_active = true;
    b.timer_cpu = cpu;
    b.expires_ns = (now / b.period_ns + 1) * b.period_ns;
    let at = b.expires_ns;
    crate::time::hrtimer_start(s, cpu, at, 0, crate::time::TimerFn::CfsPeriod(tg));
}

/// Top the local runtime of `id` up to `target_ns` from the group's pool (as much as is
/// left). True if the cfs_rq then has runtime.
///
/// Linux: kernel/sched/fair.c __assign_cfs_rq_runtime().
fn assign_cfs_rq_runtime(s: &mut SchedState, id: CfsRqId, target_ns: u64) -> bool {
    let remaining = cfs_rq(s, id).runtime_remaining;
    assert!(remaining <= 0, "assign with runtime left on {id:?}");
    let min_amount = (target_ns as i64 - remaining) as u64;
    let amount = if s.groups[id.tg as usize].cfs_b.quota_ns.is_none() {
        min_amount
    } else {
        start_cfs_bandwidth(s, id.tg);
        let b = &mut s.groups[id.tg as usize].cfs_b;
        let amount = b.runtime_ns.min(min_amount);
        if amount > 0 {
            b.runtime_ns -= amount;
            b.idle = false;
        }
        amount
    };
    let cfs = cfs_rq_mut(s, id);
    cfs.runtime_remaining += amount as i64;
    cfs.runtime_remaining > 0
}

/// Charge `delta_ns` of execution to the local runtime of `id`; when it runs out and the pool
/// has none left, reschedule so that the put or the pick throttles it.
///
/// Linux: kernel/sched/fair.c account_cfs_rq_runtime(), __account_cfs_rq_runtime().
fn account_cfs_rq_runtime(s: &mut SchedState, id: CfsRqId, delta_ns: u64) {
    if !cfs_rq(s, id).runtime_enabled {
        return;
    }
    let cfs = cfs_rq_mut(s, id);
    cfs.runtime_remaining -= delta_ns as i64;
    if cfs.runtime_remaining > 0 {
        return;
    }
    if cfs.throttled {
        return;
    }
    if !assign_cfs_rq_runtime(s, id, CFS_BANDWIDTH_SLICE_NS) && cfs_rq(s, id).curr.is_some() {
        core::resched_curr(s, id.cpu);
    }
}

/// Throttle `id` if it is out of runtime. True if it is (or was already) throttled.
///
/// Linux: kernel/sched/fair.c check_cfs_rq_runtime().
fn check_cfs_rq_runtime(s: &mut SchedState, id: CfsRqId) -> bool {
    let cfs = cfs_rq(s, id);
    if !cfs.runtime_enabled || cfs.runtime_remaining > 0 {
        return false;
    }
    if cfs.throttled {
        return true;
    }
    throttle_cfs_rq(s, id)
}

/// A cfs_rq that becomes non-empty while out of runtime and not running is throttled at
/// once (a running one is left to the put and pick path).
///
/// Linux: kernel/sched/fair.c check_enqueue_throttle().
fn check_enqueue_throttle(s: &mut SchedState, id: CfsRqId) {
    let cfs = cfs_rq(s, id);
    if !cfs.runtime_enabled || cfs.curr.is_some() || cfs.throttled {
        return;
    }
    account_cfs_rq_runtime(s, id, 0);
    if cfs_rq(s, id).runtime_remaining <= 0 {
        throttle_cfs_rq(s, id);
    }
}

/// Add `delta` to the throttle count of `tg`'s cfs_rq on `cpu` and of every descendant's.
///
/// Linux: kernel/sched/fair.c tg_throttle_down(), tg_unthrottle_up() (walk_tg_tree_from()).
fn walk_throttle_count(s: &mut SchedState, cpu: CpuId, tg: GroupId, up: bool) {
    for g in 0..s.groups.len() as GroupId {
        if crate::sched::cgroup::is_descendant(s, g, tg) {
            let q = cfs_rq_mut(s, CfsRqId { cpu, tg: g });
            if up {
                assert!(q.throttle_count > 0, "throttle_count underflow");
                q.throttle_count -= 1;
            } else {
                q.throttle_count += 1;
            }
        }
    }
}

/// Throttle `id`: unless the pool still has a nanosecond for it, take its group entity (and
/// every ancestor left empty) off the queues, subtract its tasks from every level above and
/// from the rq, and list it for the period timer. True if throttled.
///
/// Linux: kernel/sched/fair.c throttle_cfs_rq() (up to 6.17, see the section's Deviation).
fn throttle_cfs_rq(s: &mut SchedState, id: CfsRqId) -> bool {
    let cpu = id.cpu;
    assert!(id.tg != ROOT_TASK_GROUP);
    // Raced with runtime becoming available: ask for 1 ns so later checks agree.
    if assign_cfs_rq_runtime(s, id, 1) {
        return false;
    }
    s.groups[id.tg as usize].cfs_b.throttled_cpus.push(cpu);
    walk_throttle_count(s, cpu, id.tg, false);
    let (queued_delta, runnable_delta) = {
        let c = cfs_rq(s, id);
        (c.h_nr_queued, c.h_nr_runnable)
    };
    let mut cur = Some(SeId::Group(id.tg));
    let mut reached_root = true;
    // Dequeue the group entity, and its ancestors that become empty.
    while let Some(se) = cur {
        let q = cfs_rq_of(s, cpu, se);
        if !se_of(s, cpu, se).on_rq {
            reached_root = false;
            break;
        }
        // SPECIAL: no delayed dequeue for a throttled entity.
        let mut flags = DequeueFlags::SLEEP | DequeueFlags::SPECIAL;
        if se_of(s, cpu, se).sched_delayed {
            flags |= DequeueFlags::DELAYED;
        }
        dequeue_entity(s, q, se, flags);
        let qc = cfs_rq_mut(s, q);
        qc.h_nr_queued -= queued_delta;
        qc.h_nr_runnable -= runnable_delta;
        cur = parent_entity(s, se);
        if cfs_rq(s, q).load_weight > 0 {
            break;
        }
    }
    // The levels above that keep other entities.
    while reached_root {
        let Some(se) = cur else { break };
        let q = cfs_rq_of(s, cpu, se);
        if !se_of(s, cpu, se).on_rq {
            reached_root = false;
            break;
        }
        let qc = cfs_rq_mut(s, q);
        qc.h_nr_queued -= queued_delta;
        qc.h_nr_runnable -= runnable_delta;
        cur = parent_entity(s, se);
    }
    if reached_root {
        core::sub_nr_running(s, cpu, queued_delta);
    }
    let now = s.rqs[cpu.idx()].clock;
    let cfs = cfs_rq_mut(s, id);
    cfs.throttled = true;
    if cfs.nr_queued > 0 {
        cfs.throttled_clock = now;
    }
    true
}

/// Unthrottle `id` (rq lock held): put its group entity (and the ancestors it empties) back
/// on the queues with its tasks counted again, and reschedule an idle CPU.
///
/// Linux: kernel/sched/fair.c unthrottle_cfs_rq() (up to 6.17).
pub fn unthrottle_cfs_rq(s: &mut SchedState, id: CfsRqId) {
    let cpu = id.cpu;
    assert!(
        cfs_rq_throttled(s, id),
        "unthrottle of {id:?} that is not throttled"
    );
    core::update_rq_clock(s, cpu);
    let now = s.rqs[cpu.idx()].clock;
    let clock = std::mem::take(&mut cfs_rq_mut(s, id).throttled_clock);
    cfs_rq_mut(s, id).throttled = false;
    let b = &mut s.groups[id.tg as usize].cfs_b;
    if clock > 0 {
        b.throttled_time_ns += now - clock;
    }
    b.throttled_cpus.retain(|&c| c != cpu);
    walk_throttle_count(s, cpu, id.tg, true);
    if cfs_rq(s, id).load_weight == 0 {
        return;
    }
    let rq_h_nr_queued = s.rqs[cpu.idx()].cfs.h_nr_queued;
    let (queued_delta, runnable_delta) = {
        let c = cfs_rq(s, id);
        (c.h_nr_queued, c.h_nr_runnable)
    };
    let mut cur = Some(SeId::Group(id.tg));
    let mut reached_root = true;
    while let Some(se) = cur {
        let q = cfs_rq_of(s, cpu, se);
        // Unfinished delayed dequeue business first.
        if se_of(s, cpu, se).sched_delayed {
            dequeue_entity(s, q, se, DequeueFlags::SLEEP | DequeueFlags::DELAYED);
        } else if se_of(s, cpu, se).on_rq {
            break;
        }
        enqueue_entity(s, q, se, EnqueueFlags::WAKEUP);
        let qc = cfs_rq_mut(s, q);
        qc.h_nr_queued += queued_delta;
        qc.h_nr_runnable += runnable_delta;
        if qc.throttled {
            reached_root = false;
            cur = None;
            break;
        }
        cur = parent_entity(s, se);
    }
    while let Some(se) = cur {
        let q = cfs_rq_of(s, cpu, se);
        update_cfs_group(s, cpu, se);
        let qc = cfs_rq_mut(s, q);
        qc.h_nr_queued += queued_delta;
        qc.h_nr_runnable += runnable_delta;
        if qc.throttled {
            reached_root = false;
            break;
        }
        cur = parent_entity(s, se);
    }
    if reached_root {
        if rq_h_nr_queued == 0 && s.rqs[cpu.idx()].cfs.h_nr_queued > 0 {
            crate::sched::deadline::dl_server_start(s, cpu);
        }
        core::add_nr_running(s, cpu, queued_delta);
    }
    let rq = &s.rqs[cpu.idx()];
    if rq.curr == rq.idle && rq.cfs.nr_queued > 0 {
        core::resched_curr(s, cpu);
    }
}

/// The group's period timer: refill the pool with the quota, and hand runtime to the
/// throttled cfs_rqs (each under its rq lock), unthrottling those whose deficit it covers;
/// re-armed one period later unless the group was idle for a whole period.
///
/// Linux: kernel/sched/fair.c sched_cfs_period_timer(), do_sched_cfs_period_timer(),
/// distribute_cfs_runtime().
///
/// Deviation: remote cfs_rqs are unthrottled by taking their rq lock from the timer CPU
/// (Linux queues them to their own CPU with a CSD since 6.8); `cfs_b->lock` is not a modelled
/// spinlock.
pub async fn sched_cfs_period_timer(k: &Kernel, tg: GroupId) {
    let throttled: Vec<CpuId> = {
        let s = &mut *k.st();
        let now = s.now();
        let b = &mut s.groups[tg as usize].cfs_b;
        let Some(quota) = b.quota_ns else {
            b.period_active = false;
            return;
        };
        // hrtimer_forward_now(): the periods that passed.
        let mut overrun = 0;
        while b.expires_ns <= now {
            b.expires_ns += b.period_ns;
            overrun += 1;
        }
        assert!(overrun > 0, "period timer of group {tg} ran early");
        b.nr_periods += overrun;
        // __refill_cfs_bandwidth_runtime(): no burst, so the pool is the quota.
        b.runtime_ns = quota;
        let throttled = !b.throttled_cpus.is_empty();
        if b.idle && !throttled {
            b.period_active = false;
            return;
        }
        if !throttled {
            b.idle = true;
        } else {
            b.nr_throttled += overrun;
            b.idle = false;
        }
        let (cpu, at) = (b.timer_cpu, b.expires_ns);
        let list = b.throttled_cpus.clone();
        crate::time::hrtimer_start(s, cpu, at, 0, crate::time::TimerFn::CfsPeriod(tg));
        list
    };
    // distribute_cfs_runtime(): in throttling order, while the pool lasts.
    for cpu in throttled {
        k.rq_lock(cpu).await;
        {
            let s = &mut *k.st();
            let id = CfsRqId { cpu, tg };
            if cfs_rq_throttled(s, id) && s.groups[tg as usize].cfs_b.runtime_ns > 0 {
                let need = (1 - cfs_rq(s, id).runtime_remaining) as u64;
                let b = &mut s.groups[tg as usize].cfs_b;
                let give = need.min(b.runtime_ns);
                b.runtime_ns -= give;
                cfs_rq_mut(s, id).runtime_remaining += give as i64;
                if cfs_rq(s, id).runtime_remaining > 0 {
                    unthrottle_cfs_rq(s, id);
                }
            }
        }
        k.rq_unlock(cpu).await;
    }
}

// ---------------------------------------------------------------------- placement

/// Place an entity joining the queue (F-12, F-13): `v = V − vlag·(W+w)/W` with PLACE_LAG,
/// restore a relative deadline, else `d = v + slice·1024/w` (halved for new tasks).
///
/// Linux: kernel/sched/fair.c place_entity().
fn place_entity(s: &mut SchedState, id: CfsRqId, e: SeId, flags: EnqueueFlags) {
    let v_avg = avg_vruntime_cfs(s, id);
    let base = base_slice_ns(s);
    let place_lag = s.feat.place_lag;
    let initial_half = s.feat.place_deadline_initial && flags.contains(EnqueueFlags::INITIAL);
    let cfs = cfs_rq(s, id);
    let mut load = cfs.sum_weight;
    if let Some(c) = curr_se(s, id).filter(|c| c.on_rq) {
        load += c.weight;
    }
    let nr_queued = cfs.nr_queued;
    let se = se_mut(s, id.cpu, e);
    if !se.custom_slice {
        se.slice = base;
    }
    let mut vslice = calc_delta_fair(se.slice, se.weight);
    let mut lag: i64 = 0;
    if place_lag && nr_queued > 0 && se.vlag != 0 {
        // The entity joining shifts V toward itself by w·lag/(W+w); inflate the lag so that
        // after the shift it still has exactly `vlag` (kernel comment on place_entity).
        assert!(load > 0, "queue {id:?} with entities but no weight");
        let l = se.vlag as i128 * (load + se.weight) as i128;
        // div_s64 truncates toward zero.
        lag = (l / load as i128) as i64;
    }
    se.vruntime = v_avg.wrapping_sub(lag as u64);
    if se.rel_deadline {
        se.deadline = se.deadline.wrapping_add(se.vruntime);
        se.rel_deadline = false;
        return;
    }
    if initial_half {
        vslice /= 2;
    }
    se.deadline = se.vruntime.wrapping_add(vslice);
}

/// Queue one entity: place it, account it and insert it (unless it is `curr`).
///
/// Linux: kernel/sched/fair.c enqueue_entity(), account_entity_enqueue().
fn enqueue_entity(s: &mut SchedState, id: CfsRqId, e: SeId, flags: EnqueueFlags) {
    let is_curr = cfs_rq(s, id).curr == Some(e);
    // A re-queued curr is placed before update_curr so its own runtime is not double-counted
    // in V (kernel comment on enqueue_entity).
    if is_curr {
        place_entity(s, id, e, flags);
    }
    update_curr(s, id);
    update_cfs_group(s, id.cpu, e);
    if !is_curr {
        place_entity(s, id, e, flags);
    }
    let w = se_of(s, id.cpu, e).weight;
    let cfs = cfs_rq_mut(s, id);
    cfs.load_weight += w;
    cfs.nr_queued += 1;
    if let SeId::Task(p) = e {
        cfs_tasks_add(s, id.cpu, p);
    }
    if !is_curr {
        enqueue_tree(s, id, e);
    }
    se_mut(s, id.cpu, e).on_rq = true;
    if cfs_rq(s, id).nr_queued == 1 {
        check_enqueue_throttle(s, id);
    }
}

/// Mark `e` delayed; a delayed task no longer counts as runnable at any level that counts
/// it (F-20). The walk ends at the first throttled cfs_rq: the levels above took that
/// cfs_rq's tasks off their counts when it was throttled (`throttle_cfs_rq()`), so they do
/// not count this task. A task below a throttled cfs_rq can still block while running as
/// the owner a donor from another group proxies for.
///
/// Linux: kernel/sched/fair.c set_delayed() (up to 6.17; the per-task throttle of 6.18
/// walks every level).
fn set_delayed(s: &mut SchedState, cpu: CpuId, e: SeId) {
    se_mut(s, cpu, e).sched_delayed = true;
    if let SeId::Task(_) = e {
        let mut cur = Some(e);
        while let Some(se) = cur {
            let q = cfs_rq_of(s, cpu, se);
            let cfs = cfs_rq_mut(s, q);
            assert!(cfs.h_nr_runnable > 0, "h_nr_runnable underflow on {q:?}");
            cfs.h_nr_runnable -= 1;
            if cfs.throttled {
                break;
            }
            cur = parent_entity(s, se);
        }
    }
}

/// End `e`'s delay; a task counts as runnable again at every level that counts it, up to
/// and including the first throttled cfs_rq (see [`set_delayed`]).
///
/// Linux: kernel/sched/fair.c clear_delayed() (up to 6.17).
fn clear_delayed(s: &mut SchedState, cpu: CpuId, e: SeId) {
    se_mut(s, cpu, e).sched_delayed = false;
    if let SeId::Task(_) = e {
        let mut cur = Some(e);
        while let Some(se) = cur {
            let q = cfs_rq_of(s, cpu, se);
            let cfs = cfs_rq_mut(s, q);
            cfs.h_nr_runnable += 1;
            if cfs.throttled {
                break;
            }
            cur = parent_entity(s, se);
        }
    }
}

/// End a delay on full dequeue: clear the flag and cut positive lag (DELAY_ZERO, F-21).
///
/// Linux: kernel/sched/fair.c finish_delayed_dequeue_entity().
fn finish_delayed_dequeue_entity(s: &mut SchedState, cpu: CpuId, e: SeId) {
    clear_delayed(s, cpu, e);
    let delay_zero = s.feat.delay_zero;
    let se = se_mut(s, cpu, e);
    if delay_zero && se.vlag > 0 {
        se.vlag = 0;
    }
}

/// Dequeue one entity. Returns false when DELAY_DEQUEUE keeps a sleeping ineligible entity
/// queued (F-20).
///
/// Linux: kernel/sched/fair.c dequeue_entity(), account_entity_dequeue().
fn dequeue_entity(s: &mut SchedState, id: CfsRqId, e: SeId, flags: DequeueFlags) -> bool {
    let cpu = id.cpu;
    let sleep = flags.contains(DequeueFlags::SLEEP);
    update_curr(s, id);
    clear_buddies(s, id, e);
    if flags.contains(DequeueFlags::DELAYED) {
        assert!(
            se_of(s, cpu, e).sched_delayed,
            "DEQUEUE_DELAYED of {e:?} that is not delayed"
        );
    } else {
        let delay = sleep && !flags.contains(DequeueFlags::SPECIAL);
        assert!(
            !(delay && se_of(s, cpu, e).sched_delayed),
            "sleep-dequeue of an already delayed {e:?}"
        );
        if s.feat.delay_dequeue && delay && !se_eligible(s, id, e) {
            set_delayed(s, cpu, e);
            return false;
        }
    }
    update_entity_lag(s, id, e);
    if s.feat.place_rel_deadline && !sleep {
        let se = se_mut(s, cpu, e);
        se.deadline = se.deadline.wrapping_sub(se.vruntime);
        se.rel_deadline = true;
    }
    if cfs_rq(s, id).curr != Some(e) {
        dequeue_tree(s, id, e);
    }
    se_mut(s, cpu, e).on_rq = false;
    let w = se_of(s, cpu, e).weight;
    let cfs = cfs_rq_mut(s, id);
    assert!(cfs.load_weight >= w, "cfs load underflow on {id:?}");
    cfs.load_weight -= w;
    assert!(cfs.nr_queued > 0);
    cfs.nr_queued -= 1;
    if let SeId::Task(p) = e {
        assert!(
            cfs_tasks_del(s, cpu, p),
            "dequeued task {p} missing from cfs_tasks"
        );
    }
    update_cfs_group(s, cpu, e);
    if flags.contains(DequeueFlags::DELAYED) {
        finish_delayed_dequeue_entity(s, cpu, e);
    }
    true
}

/// Wake a delayed entity in place (F-22): with DELAY_ZERO, positive lag re-places it at lag 0;
/// then the delay ends.
///
/// Linux: kernel/sched/fair.c requeue_delayed_entity().
fn requeue_delayed_entity(s: &mut SchedState, cpu: CpuId, e: SeId) {
    let id = cfs_rq_of(s, cpu, e);
    assert!(
        se_of(s, cpu, e).sched_delayed,
        "requeue of {e:?} that is not delayed"
    );
    assert!(se_of(s, cpu, e).on_rq, "requeue of {e:?} that is not queued");
    if s.feat.delay_zero {
        update_entity_lag(s, id, e);
        if se_of(s, cpu, e).vlag > 0 {
            let is_curr = cfs_rq(s, id).curr == Some(e);
            cfs_rq_mut(s, id).nr_queued -= 1;
            if !is_curr {
                dequeue_tree(s, id, e);
            }
            se_mut(s, cpu, e).vlag = 0;
            place_entity(s, id, e, EnqueueFlags::empty());
            if !is_curr {
                enqueue_tree(s, id, e);
            }
            cfs_rq_mut(s, id).nr_queued += 1;
        }
    }
    clear_delayed(s, cpu, e);
}

// ---------------------------------------------------------------------- class hooks

/// Fork-time set-up of the fair entity: weight from nice (SCHED_IDLE: 3, F-1), base slice or
/// the custom one clamped to [0.1, 100] ms (F-7), lag 0 (F-13). Called for every new task
/// (Linux sets the load weight whatever the class).
///
/// Linux: kernel/sched/core.c __sched_fork() and set_load_weight().
pub fn init_entity_fair(s: &mut SchedState, p: TaskId) {
    let base = base_slice_ns(s);
    let t = &mut s.tasks[p.idx()];
    let nice = t.nice();
    let policy = t.policy;
    let se = &mut t.se;
    se.weight = weight_of(policy, nice);
    if se.custom_slice {
        se.slice = se.slice.clamp(SLICE_MIN_NS, SLICE_MAX_NS);
    } else {
        se.slice = base;
    }
    se.on_rq = false;
    se.sched_delayed = false;
    se.rel_deadline = false;
    se.vlag = 0;
    se.vruntime = 0;
    se.deadline = 0;
    se.vprot = 0;
    se.exec_start = 0;
    se.sum_exec_runtime = 0;
    se.prev_sum_exec_runtime = 0;
}

/// Give a fair-policy task that is not on a cfs_rq (it runs PI-boosted in the RT class) the
/// load weight of its current nice, for when it returns to the fair class.
///
/// Linux: kernel/sched/core.c set_load_weight() (the branch for a task not on a runqueue).
pub fn set_weight_unqueued(s: &mut SchedState, p: TaskId) {
    let t = &mut s.tasks[p.idx()];
    assert!(!t.se.on_rq, "set_weight_unqueued of queued task {p}");
    t.se.weight = weight_of(t.policy, t.nice());
}

/// Class enqueue (the core's `enqueue_task`, rq lock held). ENQUEUE_DELAYED wakes a delayed
/// task in place (F-22); otherwise the task is placed (F-12/F-13) and counted, and each group
/// entity above it that is not queued yet is queued too (a delayed one is woken in place);
/// the group entities above are re-weighed and take the smallest slice below them.
///
/// Linux: kernel/sched/fair.c enqueue_task_fair().
///
/// A delayed task moved by the balancer (F-46, migrate_load) stays delayed on its new CPU,
/// as in Linux: it is queued but not runnable until its wakeup or its pick.
pub fn enqueue_task_fair(s: &mut SchedState, cpu: CpuId, p: TaskId, mut flags: EnqueueFlags) {
    assert_eq!(s.tasks[p.idx()].class, Class::Fair);
    assert_eq!(
        s.tasks[p.idx()].cpu,
        cpu,
        "enqueue of task {p} on a CPU that is not task_cpu"
    );
    if flags.contains(EnqueueFlags::DELAYED) {
        requeue_delayed_entity(s, cpu, SeId::Task(p));
        return;
    }
    assert!(!s.tasks[p.idx()].se.on_rq, "enqueue of already queued task {p}");
    assert!(
        s.tasks[p.idx()].se.weight > 0,
        "task {p} has no fair weight (init_entity_fair?)"
    );
    let h_nr_runnable = u32::from(!s.tasks[p.idx()].se.sched_delayed);
    let rq_h_nr_queued = s.rqs[cpu.idx()].cfs.h_nr_queued;
    let mut slice = 0u64;
    let mut cur = Some(SeId::Task(p));
    while let Some(e) = cur {
        if se_of(s, cpu, e).on_rq {
            if se_of(s, cpu, e).sched_delayed {
                requeue_delayed_entity(s, cpu, e);
            }
            break;
        }
        let id = cfs_rq_of(s, cpu, e);
        if slice != 0 {
            let se = se_mut(s, cpu, e);
            se.slice = slice;
            se.custom_slice = true;
        }
        enqueue_entity(s, id, e, flags);
        slice = cfs_rq_min_slice(s, id);
        let cfs = cfs_rq_mut(s, id);
        cfs.h_nr_runnable += h_nr_runnable;
        cfs.h_nr_queued += 1;
        // A throttled cfs_rq keeps the task; nothing above it sees it (enqueue_throttle).
        if cfs.throttled {
            return;
        }
        flags = EnqueueFlags::WAKEUP;
        cur = parent_entity(s, e);
    }
    // The levels above the first one that was already queued.
    while let Some(e) = cur {
        let id = cfs_rq_of(s, cpu, e);
        update_cfs_group(s, cpu, e);
        set_queued_slice(s, id, e, slice);
        slice = cfs_rq_min_slice(s, id);
        let cfs = cfs_rq_mut(s, id);
        cfs.h_nr_runnable += h_nr_runnable;
        cfs.h_nr_queued += 1;
        if cfs.throttled {
            return;
        }
        cur = parent_entity(s, e);
    }
    // The first fair task starts the fair server; time idle until now counts (D-20).
    if rq_h_nr_queued == 0 {
        if s.rqs[cpu.idx()].nr_running == 0 {
            let curr = s.rqs[cpu.idx()].curr;
            crate::sched::deadline::dl_server_update_idle_time(s, cpu, curr);
        }
        crate::sched::deadline::dl_server_start(s, cpu);
    }
    core::add_nr_running(s, cpu, 1);
}

/// Class dequeue (rq lock held). Returns false when DELAY_DEQUEUE keeps the sleeping task
/// queued (F-20): `sched_delayed` is set and `nr_running` still counts it. A dequeue with
/// DEQUEUE_DELAYED (with DEQUEUE_SLEEP) removes a delayed task and blocks it: like Linux's
/// dequeue_entities() it calls [`core::block_task_finish`] itself, so the caller must not.
/// A move dequeue of a delayed task removes it but keeps it delayed.
///
/// Linux: kernel/sched/fair.c dequeue_task_fair().
pub fn dequeue_task_fair(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: DequeueFlags) -> bool {
    assert!(
        s.tasks[p.idx()].se.on_rq,
        "dequeue of task {p} that is not queued"
    );
    if flags.contains(DequeueFlags::DELAYED) {
        assert!(
            flags.contains(DequeueFlags::SLEEP),
            "DEQUEUE_DELAYED without DEQUEUE_SLEEP"
        );
        assert_eq!(s.tasks[p.idx()].on_rq, OnRq::Queued);
    }
    dequeue_entities(s, cpu, SeId::Task(p), flags)
}

/// Dequeue `e` and every group entity above it whose cfs_rq becomes empty; re-weigh the
/// rest. False when the task itself was delayed instead (F-20). A group entity can be
/// delayed too (its last task left while the group was ineligible); the pick removes it.
///
/// Linux: kernel/sched/fair.c dequeue_entities().
fn dequeue_entities(s: &mut SchedState, cpu: CpuId, e: SeId, mut flags: DequeueFlags) -> bool {
    let task_sleep = flags.contains(DequeueFlags::SLEEP);
    let task_delayed = flags.contains(DequeueFlags::DELAYED);
    let (task, h_nr_queued, h_nr_runnable) = match e {
        SeId::Task(p) => {
            let runnable = task_sleep || task_delayed || !s.tasks[p.idx()].se.sched_delayed;
            (Some(p), 1u32, u32::from(runnable))
        }
        SeId::Group(_) => (None, 0, 0),
    };
    let sub_counts = |s: &mut SchedState, id: CfsRqId| {
        let cfs = cfs_rq_mut(s, id);
        assert!(cfs.h_nr_queued >= h_nr_queued, "h_nr_queued underflow on {id:?}");
        cfs.h_nr_queued -= h_nr_queued;
        assert!(
            cfs.h_nr_runnable >= h_nr_runnable,
            "h_nr_runnable underflow on {id:?}"
        );
        cfs.h_nr_runnable -= h_nr_runnable;
        cfs.throttled
    };
    let mut slice = 0u64;
    let mut cur = Some(e);
    // Whether the walk reaches the root; it ends early at a throttled cfs_rq, whose tasks
    // the rq no longer counts.
    let mut at_root = true;
    while let Some(se) = cur {
        let id = cfs_rq_of(s, cpu, se);
        if !dequeue_entity(s, id, se, flags) {
            if task.is_some() && se == e {
                return false;
            }
            slice = cfs_rq_min_slice(s, id);
            break;
        }
        if sub_counts(s, id) {
            at_root = false;
            cur = None;
            break;
        }
        // Don't dequeue the parent if it has other entities besides us.
        if cfs_rq(s, id).load_weight > 0 {
            slice = cfs_rq_min_slice(s, id);
            cur = parent_entity(s, se);
            // Bias the next pick toward this cfs_rq (CGROUP_BUDDY).
            if let (true, Some(parent), false) = (task_sleep, cur, throttled_hierarchy(s, id)) {
                set_next_buddy(s, cpu, parent);
            }
            break;
        }
        flags |= DequeueFlags::SLEEP;
        flags &= !(DequeueFlags::DELAYED | DequeueFlags::SPECIAL);
        cur = parent_entity(s, se);
    }
    while let Some(se) = cur {
        let id = cfs_rq_of(s, cpu, se);
        update_cfs_group(s, cpu, se);
        set_queued_slice(s, id, se, slice);
        slice = cfs_rq_min_slice(s, id);
        if sub_counts(s, id) {
            at_root = false;
            break;
        }
        cur = parent_entity(s, se);
    }
    if h_nr_queued > 0 && at_root {
        core::sub_nr_running(s, cpu, h_nr_queued);
    }
    // Deviation: Linux returns at a throttled cfs_rq before the __block_task() of a
    // DEQUEUE_DELAYED task; the model always finishes the block its caller expects.
    if let (Some(p), true) = (task, task_delayed) {
        core::block_task_finish(s, cpu, p);
    }
    true
}

/// The EEVDF choice on cfs_rq `id` (F-9): the only entity; an eligible next buddy
/// (PICK_BUDDY); a protected eligible curr (F-11, when `protect`); else the eligible entity
/// with the earliest deadline, curr winning ties only if strictly earlier.
///
/// Linux: kernel/sched/fair.c __pick_eevdf() / pick_eevdf().
///
/// Deviation: the tree is walked in deadline order and the first eligible entity wins,
/// instead of the min-vruntime-augmented descent. Both find an eligible entity of earliest
/// deadline; among equal deadlines the model takes the earliest inserted.
pub fn pick_eevdf_cfs(s: &SchedState, id: CfsRqId, protect: bool) -> Option<SeId> {
    let cpu = id.cpu;
    let cfs = cfs_rq(s, id);
    let leftmost = cfs.tree.first().map(|&(_, _, t)| t);
    let mut curr = cfs.curr;
    if cfs.nr_queued == 1 {
        return match curr {
            Some(c) if se_of(s, cpu, c).on_rq => Some(c),
            _ => leftmost,
        };
    }
    if s.feat.pick_buddy {
        if let Some(n) = cfs.next {
            if se_eligible(s, id, n) {
                assert!(!se_of(s, cpu, n).sched_delayed, "next buddy is delayed");
                return Some(n);
            }
        }
    }
    if let Some(c) = curr {
        if !se_of(s, cpu, c).on_rq || !se_eligible(s, id, c) {
            curr = None;
        }
    }
    if let Some(c) = curr {
        if protect && protect_slice(se_of(s, cpu, c)) {
            return Some(c);
        }
    }
    let best = cfs
        .tree
        .iter()
        .map(|&(_, _, t)| t)
        .find(|&t| se_eligible(s, id, t));
    match (best, curr) {
        (None, c) => c,
        (Some(b), Some(c)) if vdiff(se_of(s, cpu, c).deadline, se_of(s, cpu, b).deadline) < 0 => Some(c),
        (b, _) => b,
    }
}

/// [`pick_eevdf_cfs`] on `cpu`'s root cfs_rq, for a queue of tasks only (tests).
///
/// Linux: kernel/sched/fair.c pick_eevdf().
#[cfg(test)]
pub fn pick_eevdf(s: &SchedState, cpu: CpuId, protect: bool) -> Option<TaskId> {
    pick_eevdf_cfs(s, CfsRqId::root(cpu), protect).map(|e| match e {
        SeId::Task(p) => p,
        SeId::Group(g) => panic!("pick_eevdf on cpu{cpu} found group {g}: use pick_eevdf_cfs"),
    })
}

/// `balance_fair()`: fair work is runnable here, or newidle balancing found some (or saw a
/// higher class appear while the rq lock was dropped).
///
/// Linux: kernel/sched/fair.c balance_fair().
pub async fn balance_fair(k: &Kernel, cpu: CpuId) -> bool {
    if k.st().rqs[cpu.idx()].cfs.h_nr_runnable > 0 {
        return true;
    }
    Box::pin(crate::sched::fair_balance::sched_balance_newidle(k, cpu)).await != 0
}

/// Class pick (rq lock held): pick_eevdf from the root cfs_rq down through the group
/// entities to a task; a picked delayed entity is dequeued for good (a task is blocked,
/// F-10, `on_rq = 0`) and the pick starts again. Does not set the task as next.
///
/// Linux: kernel/sched/fair.c pick_task_fair() and pick_next_entity().
pub fn pick_task_fair(s: &mut SchedState, cpu: CpuId) -> Option<TaskId> {
    // Each restart removes one delayed entity (a task or a group's) or throttles one
    // cfs_rq, and each descent is bounded by the depth of the group tree.
    let nr_groups = s.groups.len();
    let limit = (s.rqs[cpu.idx()].cfs.h_nr_queued as usize + 2 * nr_groups + 2) * (nr_groups + 1);
    let mut id = CfsRqId::root(cpu);
    for _ in 0..limit {
        if id.tg == ROOT_TASK_GROUP && s.rqs[cpu.idx()].cfs.nr_queued == 0 {
            return None;
        }
        if let Some(c) = cfs_rq(s, id).curr {
            if se_of(s, cpu, c).on_rq {
                update_curr(s, id);
            }
        }
        if check_cfs_rq_runtime(s, id) {
            id = CfsRqId::root(cpu);
            continue;
        }
        let se = pick_eevdf_cfs(s, id, true).expect("a non-empty cfs_rq always has an eligible entity (F-4)");
        if se_of(s, cpu, se).sched_delayed {
            dequeue_entities(s, cpu, se, DequeueFlags::SLEEP | DequeueFlags::DELAYED);
            id = CfsRqId::root(cpu);
            continue;
        }
        match se {
            SeId::Task(p) => return Some(p),
            SeId::Group(g) => id = CfsRqId { cpu, tg: g },
        }
    }
    panic!("pick_task_fair on cpu{cpu} did not terminate");
}

/// The previous task leaves the CPU (rq lock held): at each level from its own up, charge
/// the entity and put it back in the tree if still queued; `cfs_rq->curr` becomes empty.
///
/// Linux: kernel/sched/fair.c put_prev_task_fair() / put_prev_entity().
pub fn put_prev_task_fair(s: &mut SchedState, cpu: CpuId, prev: TaskId) {
    let mut cur = Some(SeId::Task(prev));
    while let Some(e) = cur {
        let id = cfs_rq_of(s, cpu, e);
        assert_eq!(
            cfs_rq(s, id).curr,
            Some(e),
            "put_prev of {e:?} that is not curr of {id:?}"
        );
        if se_of(s, cpu, e).on_rq {
            update_curr(s, id);
        }
        // Throttle a cfs_rq that ran out of runtime (this may dequeue the group entities
        // above, which this walk then finds not queued).
        check_cfs_rq_runtime(s, id);
        if se_of(s, cpu, e).on_rq {
            // Take it out of `curr` first: the tree insert asserts curr is outside the tree.
            cfs_rq_mut(s, id).curr = None;
            enqueue_tree(s, id, e);
        }
        cfs_rq_mut(s, id).curr = None;
        cur = parent_entity(s, e);
    }
}

/// `p` becomes the running entity (rq lock held): `p` moves to the front of `cfs_tasks`;
/// at each level from its own up the entity leaves the tree (it stays counted, T-9b), gets
/// its RUN_TO_PARITY protection (F-11), a new accounting interval and
/// `prev_sum_exec_runtime`.
///
/// Linux: kernel/sched/fair.c set_next_task_fair() / set_next_entity().
pub fn set_next_task_fair(s: &mut SchedState, cpu: CpuId, p: TaskId, _first: bool) {
    let now = s.rqs[cpu.idx()].clock_task;
    let mut cur = Some(SeId::Task(p));
    while let Some(e) = cur {
        let id = cfs_rq_of(s, cpu, e);
        assert!(
            cfs_rq(s, id).curr.is_none(),
            "set_next with a cfs curr still set on {id:?}"
        );
        clear_buddies(s, id, e);
        if se_of(s, cpu, e).on_rq {
            dequeue_tree(s, id, e);
            set_protect_slice(s, id, e);
        }
        let se = se_mut(s, cpu, e);
        se.exec_start = now;
        se.prev_sum_exec_runtime = se.sum_exec_runtime;
        cfs_rq_mut(s, id).curr = Some(e);
        // Ensure bandwidth has been allocated on the new cfs_rq.
        account_cfs_rq_runtime(s, id, 0);
        cur = parent_entity(s, e);
    }
    cfs_tasks_move_to_front(s, cpu, p);
}

/// Whether a fair wakee `p` should preempt the fair donor (F-24, newest rules), and if so
/// a lazy reschedule. The two are compared through their entities on the first cfs_rq they
/// share (`find_matching_se`). Called with the rq lock held, after the wakee is queued.
///
/// Linux: kernel/sched/fair.c check_preempt_wakeup_fair() (wakeup_preempt_fair()).
///
/// The "delayed wakee" rule applies to a task that is still `sched_delayed` when checked (a
/// delayed task moved by the balancer, or a class/priority change): preempting for it would
/// run an ineligible entity.
///
/// Deviation: with NEXT_BUDDY on, the newest buddy rules are modelled as: the wakee becomes
/// the buddy unless the current buddy has an earlier deadline; a SYNC wakeup preempts only
/// after curr ran ≥ 0.5 ms in this slice (0.125 ms with RQ_SELECTED), else it just leaves the
/// buddy; the other wakeups fall through to the pick.
pub fn wakeup_preempt_fair(s: &mut SchedState, cpu: CpuId, p: TaskId, wake_flags: WakeFlags) {
    let donor = s.rqs[cpu.idx()].donor;
    if donor == p {
        return;
    }
    let running = s.rqs[cpu.idx()].curr;
    if s.tasks[running.idx()].need_resched {
        return;
    }
    if !s.feat.wakeup_preemption {
        return;
    }
    // A wakee in a throttled hierarchy is not on the root's queue to compete.
    if throttled_hierarchy(s, cfs_rq_of(s, cpu, SeId::Task(p))) {
        return;
    }
    let (se, pse) = find_matching_se(s, SeId::Task(donor), SeId::Task(p));
    let id = cfs_rq_of(s, cpu, se);
    let cse_idle = se_is_idle(s, se);
    let pse_idle = se_is_idle(s, pse);
    let mut short = false;
    'decide: {
        if cse_idle && !pse_idle {
            break 'decide;
        }
        if cse_idle != pse_idle {
            return;
        }
        if s.tasks[p.idx()].policy != Policy::Normal {
            return;
        }
        update_curr(s, id);
        if s.feat.preempt_short && se_of(s, cpu, pse).slice < se_of(s, cpu, se).slice {
            short = true;
        } else {
            if wake_flags.contains(WakeFlags::FORK) || se_of(s, cpu, pse).sched_delayed {
                return;
            }
            if !se_eligible(s, id, se) {
                break 'decide;
            }
            if s.feat.next_buddy {
                let keep_old = cfs_rq(s, id)
                    .next
                    .is_some_and(|n| vdiff(se_of(s, cpu, n).deadline, se_of(s, cpu, pse).deadline) < 0);
                if !keep_old {
                    set_next_buddy(s, cpu, pse);
                }
                if wake_flags.contains(WakeFlags::SYNC) {
                    let c = se_of(s, cpu, se);
                    let ran_ns = c.sum_exec_runtime - c.prev_sum_exec_runtime;
                    let min_ns = if wake_flags.contains(WakeFlags::RQ_SELECTED) {
                        125_000
                    } else {
                        500_000
                    };
                    if ran_ns < min_ns {
                        return;
                    }
                }
            }
        }
        if pick_eevdf_cfs(s, id, !short) == Some(pse) {
            break 'decide;
        }
        if s.feat.run_to_parity {
            update_protect_slice(s, id, se);
        }
        return;
    }
    if short {
        cancel_protect_slice(se_mut(s, cpu, se));
    }
    core::resched_curr_lazy(s, cpu);
}

/// The tick for a fair donor (F-26): charge it and every group entity above it, re-weighing
/// the group entities; `update_curr` reschedules when a slice or a protection ended and
/// another entity is queued at that level.
///
/// Linux: kernel/sched/fair.c task_tick_fair() / entity_tick().
///
/// Deviation: no HRTICK (off by default, F-26): slices end at ticks.
pub fn task_tick_fair(s: &mut SchedState, cpu: CpuId, curr: TaskId) {
    let mut cur = Some(SeId::Task(curr));
    while let Some(e) = cur {
        let id = cfs_rq_of(s, cpu, e);
        assert_eq!(
            cfs_rq(s, id).curr,
            Some(e),
            "tick for {e:?} that is not curr of {id:?}"
        );
        update_curr(s, id);
        update_cfs_group(s, cpu, e);
        cur = parent_entity(s, e);
    }
}

/// `sched_yield()` of the fair donor (F-28): if eligible, skip to the deadline and start a
/// new request.
///
/// Linux: kernel/sched/fair.c yield_task_fair().
pub fn yield_task_fair(s: &mut SchedState, cpu: CpuId) {
    if s.rqs[cpu.idx()].nr_running == 1 {
        return;
    }
    let donor = s.rqs[cpu.idx()].donor;
    let e = SeId::Task(donor);
    let id = cfs_rq_of(s, cpu, e);
    clear_buddies(s, id, e);
    core::update_rq_clock(s, cpu);
    update_curr(s, id);
    if se_eligible(s, id, e) {
        let se = &mut s.tasks[donor.idx()].se;
        se.vruntime = se.deadline;
        se.deadline = se.deadline.wrapping_add(calc_delta_fair(se.slice, se.weight));
    }
}

/// Change an entity's weight keeping its lag and relative deadline (F-27): `vlag` and the
/// relative deadline scale by `w_old/w_new`, and a queued entity is re-placed.
///
/// Linux: kernel/sched/fair.c reweight_entity().
///
/// As in Linux, a running entity stays `on_rq` and `cfs_rq->curr` while it is re-placed, so
/// `V` and the placement weight still include it (with its new weight): its lag is then
/// kept only approximately. A waiting entity leaves the tree first and keeps it exactly.
fn reweight_entity(s: &mut SchedState, id: CfsRqId, e: SeId, weight: u64) {
    assert!(weight > 0);
    let cpu = id.cpu;
    let on_rq = se_of(s, cpu, e).on_rq;
    let is_curr = cfs_rq(s, id).curr == Some(e);
    if on_rq {
        update_curr(s, id);
        update_entity_lag(s, id, e);
        let se = se_mut(s, cpu, e);
        se.deadline = se.deadline.wrapping_sub(se.vruntime);
        se.rel_deadline = true;
        cfs_rq_mut(s, id).nr_queued -= 1;
        if !is_curr {
            dequeue_tree(s, id, e);
        }
        let w = se_of(s, cpu, e).weight;
        cfs_rq_mut(s, id).load_weight -= w;
    }
    let se = se_mut(s, cpu, e);
    let old = se.weight as i128;
    // vlag = V − v is in the entity's own virtual time; lag = w·vlag stays (division
    // truncates toward zero like div_s64).
    se.vlag = (se.vlag as i128 * old / weight as i128) as i64;
    if se.rel_deadline {
        se.deadline = (se.deadline as i64 as i128 * old / weight as i128) as i64 as u64;
    }
    se.weight = weight;
    if on_rq {
        place_entity(s, id, e, EnqueueFlags::empty());
        cfs_rq_mut(s, id).load_weight += weight;
        if !is_curr {
            enqueue_tree(s, id, e);
        }
        cfs_rq_mut(s, id).nr_queued += 1;
    }
}

/// Renice (rq lock of `task_cpu(p)` held): new weight from `new_nice` (SCHED_IDLE keeps 3),
/// then, if queued, a weakened donor is rescheduled and a strengthened waiting task gets a
/// preemption check (F-27).
///
/// Linux: kernel/sched/fair.c reweight_task_fair() and prio_changed_fair().
pub fn reweight_task_fair(s: &mut SchedState, cpu: CpuId, p: TaskId, new_nice: i32) {
    let old = s.tasks[p.idx()].se.weight;
    let new = weight_of(s.tasks[p.idx()].policy, new_nice);
    let e = SeId::Task(p);
    let id = cfs_rq_of(s, cpu, e);
    reweight_entity(s, id, e, new);
    if new == old || !core::task_on_rq_queued(s, p) || s.rqs[cpu.idx()].cfs.nr_queued == 1 {
        return;
    }
    if s.rqs[cpu.idx()].donor == p {
        if new < old {
            core::resched_curr(s, cpu);
        }
    } else {
        core::wakeup_preempt(s, cpu, p, WakeFlags::empty());
    }
}

/// `set_task_cpu` is moving `p` to `new_cpu` (called before `task_cpu` changes). The lag and a
/// relative deadline were already saved by the dequeue (or the sleep); what remains is that
/// a migrated task is no longer cache hot.
///
/// Linux: kernel/sched/fair.c migrate_task_rq_fair().
///
/// Deviation: no PELT state to carry over.
pub fn migrate_task_rq_fair(s: &mut SchedState, p: TaskId, new_cpu: CpuId) {
    let se = &mut s.tasks[p.idx()].se;
    assert!(
        !se.on_rq,
        "task {p} migrated to cpu{new_cpu} while still on a cfs_rq"
    );
    se.exec_start = 0;
}

/// `p`'s priority changed within the fair class (a renice, or a PI boost lent by a stronger
/// fair waiter): the load weight was already updated with `static_prio`, so only the
/// preemption check remains. A running donor that got weaker reschedules; a queued task that
/// is not the donor is checked against the donor. Nothing to do for a task that is not
/// queued, an unchanged prio, or when `p` is the only entity on the root cfs_rq. Rq lock of
/// `cpu` held.
///
/// Linux: kernel/sched/fair.c prio_changed_fair().
pub fn prio_changed_fair(s: &mut SchedState, cpu: CpuId, p: TaskId, oldprio: i32) {
    let prio = s.tasks[p.idx()].prio;
    if !core::task_on_rq_queued(s, p) || prio == oldprio || s.rqs[cpu.idx()].cfs.nr_queued == 1 {
        return;
    }
    if s.rqs[cpu.idx()].donor == p {
        if prio > oldprio {
            core::resched_curr(s, cpu);
        }
    } else {
        core::wakeup_preempt(s, cpu, p, WakeFlags::empty());
    }
}

/// `p` joined the fair class (rq lock held, after its enqueue): a running donor is
/// rescheduled, a queued task gets a preemption check.
///
/// Linux: kernel/sched/fair.c switched_to_fair().
pub fn switched_to_fair(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    if !core::task_on_rq_queued(s, p) {
        return;
    }
    if s.rqs[cpu.idx()].donor == p {
        core::resched_curr(s, cpu);
    } else {
        core::wakeup_preempt(s, cpu, p, WakeFlags::empty());
    }
}

/// `p` left the fair class (rq lock held). The core must already have removed a delayed
/// task with DEQUEUE_SLEEP|DEQUEUE_DELAYED (newest Linux does so before the class change).
///
/// Linux: kernel/sched/fair.c switched_from_fair().
///
/// Deviation: [6.12] cleans up a still-delayed task here; the model requires the newest
/// ordering and asserts it.
pub fn switched_from_fair(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let se = &s.tasks[p.idx()].se;
    assert!(
        !se.on_rq,
        "task {p} left the fair class while still on cpu{cpu}'s cfs_rq"
    );
    assert!(
        !se.sched_delayed,
        "task {p} left the fair class while delayed: dequeue it with DEQUEUE_DELAYED first"
    );
}

/// Whether `cpu` is idle (I-2): running its idle task, nothing queued, no pending wakeups.
///
/// Linux: kernel/sched/core.c idle_cpu().
pub fn idle_cpu(s: &SchedState, cpu: CpuId) -> bool {
    let rq = &s.rqs[cpu.idx()];
    rq.curr == rq.idle && rq.nr_running == 0 && rq.wake_list.is_empty() && !rq.ttwu_pending
}

/// Whether `cpu` runs only SCHED_IDLE tasks (F-32: such a CPU counts as idle for placement).
///
/// Linux: kernel/sched/fair.c sched_idle_cpu().
pub fn sched_idle_cpu(s: &SchedState, cpu: CpuId) -> bool {
    let rq = &s.rqs[cpu.idx()];
    rq.nr_running > 0
        && rq.nr_running == rq.cfs.h_nr_queued
        && rq
            .cfs
            .tasks
            .iter(&s.tasks)
            .all(|t| s.tasks[t.idx()].policy == Policy::Idle)
}

/// The group hierarchy of `cpu` is consistent (checked only when the machine has task
/// groups): every cfs_rq's `nr_queued` and `load.weight` match the entities queued on it
/// (its tree plus a queued curr), its `h_nr_queued` is the sum over them (a task counts 1, a
/// group entity its own cfs_rq's count), and a group entity whose cfs_rq has tasks is queued
/// unless the hierarchy is throttled there.
/// A description of the first difference, or None.
///
/// Linux: the accounting of kernel/sched/fair.c account_entity_enqueue(),
/// enqueue_task_fair() and dequeue_entities().
pub fn check_cfs_hierarchy(s: &SchedState, cpu: CpuId) -> Option<String> {
    if s.groups.len() <= 1 {
        return None;
    }
    for tg in 0..s.groups.len() as GroupId {
        let id = CfsRqId { cpu, tg };
        let cfs = cfs_rq(s, id);
        let mut entities: Vec<SeId> = cfs.tree.iter().map(|&(_, _, e)| e).collect();
        if let Some(c) = cfs.curr.filter(|&c| se_of(s, cpu, c).on_rq) {
            entities.push(c);
        }
        let load: u64 = entities.iter().map(|&e| se_of(s, cpu, e).weight).sum();
        let h: u32 = entities
            .iter()
            .map(|&e| match e {
                SeId::Task(_) => 1,
                SeId::Group(g) => cfs_rq(s, CfsRqId { cpu, tg: g }).h_nr_queued,
            })
            .sum();
        let r: u32 = entities
            .iter()
            .map(|&e| match e {
                SeId::Task(_) => u32::from(!se_of(s, cpu, e).sched_delayed),
                SeId::Group(g) => cfs_rq(s, CfsRqId { cpu, tg: g }).h_nr_runnable,
            })
            .sum();
        if r != cfs.h_nr_runnable {
            return Some(format!(
                "cpu{cpu} group {}: h_nr_runnable {}, but its entities give {r}",
                s.groups[tg as usize].path, cfs.h_nr_runnable
            ));
        }
        if entities.len() as u32 != cfs.nr_queued || load != cfs.load_weight || h != cfs.h_nr_queued {
            return Some(format!(
                "cpu{cpu} group {}: nr_queued {} load {} h_nr_queued {}, but its entities give {} / {load} / {h}",
                s.groups[tg as usize].path,
                cfs.nr_queued,
                cfs.load_weight,
                cfs.h_nr_queued,
                entities.len()
            ));
        }
        if tg != ROOT_TASK_GROUP
            && cfs.h_nr_queued > 0
            && !cfs.throttled
            && !throttled_hierarchy(s, cfs_rq_of(s, cpu, SeId::Group(tg)))
            && !s.groups[tg as usize].se[cpu.idx()].on_rq
        {
            return Some(format!(
                "cpu{cpu} group {} has {} tasks queued but its entity is not queued",
                s.groups[tg as usize].path, cfs.h_nr_queued
            ));
        }
    }
    None
}

pub use crate::sched::fair_balance::{
    record_wakee, sched_balance_newidle, sched_balance_periodic, sched_balance_trigger, select_task_rq_fair,
};

#[cfg(test)]
pub(crate) mod test_util {
    //! A bare scheduler state for unit tests of the fair class (no kernel paths running).

    use sim::CpuMask;

    use super::*;

    use crate::sched::Costs;
    use crate::task::nice_to_prio;
    use crate::tracepoints::NullSink;

    /// A scheduler with `nr_cpus` idle CPUs (tasks `0..nr_cpus` are their idle tasks) and
    /// `nr_tasks` SCHED_NORMAL nice-0 tasks on CPU 0, initialised but not queued.
    pub(crate) fn new_for_tests(nr_cpus: usize, nr_tasks: usize) -> SchedState {
        let mut cfg = crate::system::Config::new(nr_cpus);
        cfg.seed = 1;
        cfg.costs = Costs::zero();
        let mut s = crate::system::new_sched_state(&cfg, Box::new(NullSink));
        // Keep the idle tasks only (the stoppers are never queued here): test tasks then
        // have ids nr_cpus.. and each CPU's idle task stands in for its stopper.
        s.tasks.truncate(nr_cpus);
        for c in 0..nr_cpus {
            s.rqs[c].stop = TaskId(c as u32);
        }
        for i in 0..nr_tasks {
            let id = TaskId((nr_cpus + i) as u32);
            let mut t = crate::system::new_task_struct(&s.m, id, id.0, "t", CpuId(0));
            t.state = 0;
            t.cpus_mask = s.cpus_masks.intern(CpuMask::first_n(nr_cpus));
            t.nr_cpus_allowed = nr_cpus as u32;
            t.static_prio = nice_to_prio(0);
            s.tasks.push(t);
            init_entity_fair(&mut s, id);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    //! Hand-computed EEVDF checks. Every expectation below is worked out in the comment next
    //! to it; each one fails under a plausible wrong model (truncating instead of flooring,
    //! placing at `V − vlag` without the `(W+w)/W` factor, earliest-deadline without
    //! eligibility, dequeuing an ineligible sleeper at once, ...).

    use super::test_util::new_for_tests;
    use super::*;

    const O: u64 = VRUNTIME_ORIGIN;

    /// Queue `p` on CPU 0 as a wakeup with the given saved lag.
    fn wake(s: &mut SchedState, p: TaskId, vlag: i64) {
        s.tasks[p.idx()].se.vlag = vlag;
        core::activate_task(s, CpuId(0), p, EnqueueFlags::WAKEUP);
    }

    /// Make `p` the running task of CPU 0.
    fn run(s: &mut SchedState, p: TaskId) {
        set_next_task_fair(s, CpuId(0), p, true);
        s.rqs[0].curr = p;
        s.rqs[0].donor = p;
    }

    fn advance(s: &mut SchedState, ns: u64) {
        s.rqs[0].clock_task += ns;
        s.rqs[0].clock += ns;
    }

    fn check_sums(s: &SchedState, cpu: CpuId) {
        let cfs = &s.rqs[cpu.idx()].cfs;
        let mut sum = 0i128;
        let mut w = 0u64;
        for &(d, _, t) in &cfs.tree {
            let se = se_of(s, cpu, t);
            assert_eq!(se.deadline, d, "tree key out of date for {t:?}");
            sum += vdiff(se.vruntime, cfs.zero_vruntime) as i128 * se.weight as i128;
            w += se.weight;
        }
        assert_eq!(cfs.sum_w_vruntime, sum);
        assert_eq!(cfs.sum_weight, w);
    }

    #[test]
    fn weights_follow_the_nice_table_and_sched_idle() {
        assert_eq!(weight_of(Policy::Normal, 0), 1024);
        assert_eq!(weight_of(Policy::Normal, -20), 88761);
        assert_eq!(weight_of(Policy::Batch, 19), 15);
        assert_eq!(weight_of(Policy::Normal, 5), 335);
        // SCHED_IDLE ignores nice.
        assert_eq!(weight_of(Policy::Idle, -10), 3);
        // 1 ms of a nice-5 task is 1e6·1024/335 = 3_056_716.4… → 3_056_716 ns of virtual time.
        assert_eq!(calc_delta_fair(1_000_000, 335), 3_056_716);
        assert_eq!(calc_delta_fair(1_000, 2048), 500);
        assert_eq!(calc_delta_fair(777, 1024), 777);
    }

    #[test]
    fn init_sets_weight_and_scaled_base_slice() {
        let mut s = new_for_tests(4, 2);
        // 4 CPUs: 0.70 ms × (1 + log2 4) = 2.1 ms (F-6).
        assert_eq!(s.tasks[4].se.slice, 2_100_000);
        assert_eq!(s.tasks[4].se.weight, 1024);
        s.tasks[5].policy = Policy::Idle;
        s.tasks[5].se.custom_slice = true;
        s.tasks[5].se.slice = 5_000; // below the 0.1 ms floor
        init_entity_fair(&mut s, TaskId(5));
        assert_eq!(s.tasks[5].se.weight, 3);
        assert_eq!(s.tasks[5].se.slice, 100_000);
    }

    #[test]
    fn avg_vruntime_floors_toward_minus_infinity() {
        let mut cfs = CfsRq {
            zero_vruntime: 1000,
            ..Default::default()
        };
        let a = SchedEntity {
            weight: 1024,
            vruntime: 999,
            ..Default::default()
        };
        let b = SchedEntity {
            weight: 2048,
            vruntime: 1000,
            ..Default::default()
        };
        avg_vruntime_add(&mut cfs, &a);
        avg_vruntime_add(&mut cfs, &b);
        // Σw(v−v₀) = 1024·(−1) + 0 = −1024, W = 3072: −1024/3072 = −0.33 → ⌊⌋ = −1 (a
        // truncating division would say 0).
        assert_eq!(cfs.sum_w_vruntime, -1024);
        assert_eq!(avg_vruntime(&cfs, None), 999);
        // Eligible ⇔ −1024 ≥ (v−1000)·3072: v = 999 yes, v = 1000 no (although ⌊V⌋ = 999 < 1000
        // is consistent, the test is on the exact sum, not on the rounded V).
        assert!(vruntime_eligible(&cfs, None, 999));
        assert!(!vruntime_eligible(&cfs, None, 1000));

        // A running curr (outside the sums) is counted when queued: curr w=1024 at v=4071.
        // Σ = −1024 + 1024·3071 = 3_143_680, W = 4096 ⇒ V = 1000 + 767 (767.5 floored).
        let curr = SchedEntity {
            weight: 1024,
            vruntime: 4071,
            on_rq: true,
            ..Default::default()
        };
        assert_eq!(avg_vruntime(&cfs, Some(&curr)), 1767);
        assert!(vruntime_eligible(&cfs, Some(&curr), 1767));
        assert!(!vruntime_eligible(&cfs, Some(&curr), 1768));
        // A curr that is no longer queued (sleeping) does not count.
        let gone = SchedEntity { on_rq: false, ..curr };
        assert_eq!(avg_vruntime(&cfs, Some(&gone)), 999);
    }

    #[test]
    fn placement_keeps_lag_across_the_join() {
        let mut s = new_for_tests(1, 4);
        let (a, b, c, d) = (TaskId(1), TaskId(2), TaskId(3), TaskId(4));
        wake(&mut s, a, 0);
        // Empty queue: v = V = origin, d = v + 0.7 ms (1 CPU).
        assert_eq!(s.tasks[a.idx()].se.vruntime, O);
        assert_eq!(s.tasks[a.idx()].se.deadline, O + 700_000);
        wake(&mut s, b, 0);
        // C joins W = 2048 with vlag 3000: v = V − 3000·(2048+1024)/2048 = O − 4500.
        wake(&mut s, c, 3000);
        assert_eq!(s.tasks[c.idx()].se.vruntime, O - 4500);
        // After the join V = O − 4500/3 = O − 1500, so C's lag is exactly the 3000 it had.
        assert_eq!(avg_vruntime_of(&s, CpuId(0)), O - 1500);
        // A new task (ENQUEUE_INITIAL) gets half a slice to its deadline (F-13).
        core::activate_task(&mut s, CpuId(0), d, EnqueueFlags::INITIAL);
        let se = &s.tasks[d.idx()].se;
        assert_eq!(se.vruntime, O - 1500);
        assert_eq!(se.deadline, O - 1500 + 350_000);
        assert_eq!(s.rqs[0].nr_running, 4);
        assert_eq!(s.rqs[0].cfs.h_nr_runnable, 4);
        assert_eq!(s.rqs[0].cfs.load_weight, 4096);
        check_sums(&s, CpuId(0));
    }

    #[test]
    fn pick_eevdf_takes_the_earliest_eligible_deadline() {
        let mut s = new_for_tests(1, 3);
        let (a, b, c) = (TaskId(1), TaskId(2), TaskId(3));
        wake(&mut s, a, 0); // v = O, d = O + 700_000
        s.tasks[b.idx()].se.custom_slice = true;
        s.tasks[b.idx()].se.slice = 100_000;
        // B owes 2000: v = O + 2000·2048/1024 = O + 4000, d = O + 104_000 (earliest of all).
        wake(&mut s, b, -2000);
        assert_eq!(s.tasks[b.idx()].se.vruntime, O + 4000);
        assert_eq!(avg_vruntime_of(&s, CpuId(0)), O + 2000);
        // Earliest deadline but ineligible: A wins.
        assert_eq!(pick_eevdf(&s, CpuId(0), true), Some(a));
        s.tasks[c.idx()].se.custom_slice = true;
        s.tasks[c.idx()].se.slice = 300_000;
        // C is owed 1000: v = (O+2000) − 1000·3072/2048 = O + 500, d = O + 300_500.
        wake(&mut s, c, 1000);
        assert_eq!(s.tasks[c.idx()].se.deadline, O + 300_500);
        // V = O + (4000 + 500)/3 = O + 1500: A and C eligible, B not; C is earlier than A.
        assert_eq!(avg_vruntime_of(&s, CpuId(0)), O + 1500);
        assert!(!entity_eligible(&s, CpuId(0), b));
        assert_eq!(pick_eevdf(&s, CpuId(0), true), Some(c));
        assert_eq!(pick_task_fair(&mut s, CpuId(0)), Some(c));
        check_sums(&s, CpuId(0));
    }

    #[test]
    fn update_curr_charges_weighted_time_and_refreshes_the_deadline() {
        let mut s = new_for_tests(1, 2);
        let (a, b) = (TaskId(1), TaskId(2));
        s.tasks[a.idx()].se.weight = weight_of(Policy::Normal, 5); // 335
        wake(&mut s, a, 0);
        wake(&mut s, b, 0);
        // A: d = O + 700_000·1024/335 = O + 2_139_701.
        assert_eq!(s.tasks[a.idx()].se.deadline, O + 2_139_701);
        run(&mut s, a);
        advance(&mut s, 1_000_000);
        update_curr_fair(&mut s, CpuId(0));
        let se = &s.tasks[a.idx()].se;
        assert_eq!(se.sum_exec_runtime, 1_000_000);
        assert_eq!(se.vruntime, O + 3_056_716);
        // v passed d: a new request d = v + 2_139_701, and a lazy resched (B is queued).
        assert_eq!(se.deadline, O + 3_056_716 + 2_139_701);
        assert!(s.tasks[a.idx()].need_resched);
    }

    #[test]
    fn run_to_parity_protects_until_the_shortest_queued_slice() {
        let mut s = new_for_tests(1, 2);
        let (a, b) = (TaskId(1), TaskId(2));
        wake(&mut s, a, 0);
        s.tasks[b.idx()].se.custom_slice = true;
        s.tasks[b.idx()].se.slice = 100_000;
        wake(&mut s, b, 0);
        run(&mut s, a);
        // Protection: min(d, v + min(0.1 ms, 0.7 ms)) = O + 100_000.
        assert_eq!(s.tasks[a.idx()].se.vprot, O + 100_000);
        advance(&mut s, 99_999);
        update_curr_fair(&mut s, CpuId(0));
        assert!(!s.tasks[a.idx()].need_resched, "still shielded");
        advance(&mut s, 1);
        update_curr_fair(&mut s, CpuId(0));
        assert!(s.tasks[a.idx()].need_resched, "shield over, B queued");
    }

    /// The `min_slice` set follows enqueue, pick (curr leaves the tree but still counts),
    /// put_prev and dequeue: a stale set would keep 0.1 ms after B left, or lose it while B
    /// runs.
    #[test]
    fn min_slice_follows_the_queued_entities() {
        let mut s = new_for_tests(1, 3);
        let (a, b, c) = (TaskId(1), TaskId(2), TaskId(3));
        let root = CfsRqId::root(CpuId(0));
        assert_eq!(cfs_rq_min_slice(&s, root), u64::MAX, "empty queue");
        wake(&mut s, a, 0);
        assert_eq!(cfs_rq_min_slice(&s, root), 700_000);
        s.tasks[b.idx()].se.custom_slice = true;
        s.tasks[b.idx()].se.slice = 100_000;
        wake(&mut s, b, 0);
        s.tasks[c.idx()].se.custom_slice = true;
        s.tasks[c.idx()].se.slice = 300_000;
        wake(&mut s, c, 0);
        assert_eq!(cfs_rq_min_slice(&s, root), 100_000);
        // B runs: out of the tree, still queued as curr.
        run(&mut s, b);
        assert_eq!(cfs_rq(&s, root).slices.len(), 2);
        assert_eq!(cfs_rq_min_slice(&s, root), 100_000, "curr's slice counts");
        // B blocks (its lag is 0, so it leaves at once): C's 0.3 ms is the smallest.
        assert!(dequeue_task_fair(&mut s, CpuId(0), b, DequeueFlags::SLEEP));
        put_prev_task_fair(&mut s, CpuId(0), b);
        assert_eq!(cfs_rq_min_slice(&s, root), 300_000);
        assert!(dequeue_task_fair(&mut s, CpuId(0), c, DequeueFlags::SAVE));
        assert_eq!(cfs_rq_min_slice(&s, root), 700_000);
        assert_eq!(cfs_rq(&s, root).slices.len(), 1);
    }

    /// The 64-bit path of `floor_div` rounds toward −∞ like the 128-bit one, and operands
    /// past 64 bits still take the 128-bit one.
    #[test]
    fn floor_div_rounds_down_in_both_widths() {
        assert_eq!(floor_div(7, 2), 3);
        assert_eq!(floor_div(-7, 2), -4);
        assert_eq!(floor_div(-6, 3), -2);
        assert_eq!(floor_div(i64::MIN as i128, 1), i64::MIN as i128);
        let big = i64::MAX as i128 * 4 + 1;
        assert_eq!(floor_div(-big, 4), -(i64::MAX as i128) - 1);
        assert_eq!(floor_div(big, 4), i64::MAX as i128);
        assert_eq!(floor_div(-1, big), -1);
    }

    /// `rq->cfs_tasks` is most recently run first: enqueue adds at the head, a pick moves the
    /// task to the head, a dequeue unlinks it wherever it is.
    #[test]
    fn cfs_tasks_keeps_the_most_recently_run_first() {
        let mut s = new_for_tests(1, 3);
        let (a, b, c) = (TaskId(1), TaskId(2), TaskId(3));
        for p in [a, b, c] {
            wake(&mut s, p, 0);
        }
        let list = |s: &SchedState| s.rqs[0].cfs.tasks.iter(&s.tasks).collect::<Vec<_>>();
        assert_eq!(list(&s), [c, b, a]);
        assert_eq!(s.rqs[0].cfs.tasks.last(), Some(a));
        run(&mut s, a);
        assert_eq!(list(&s), [a, c, b]);
        assert!(dequeue_task_fair(&mut s, CpuId(0), c, DequeueFlags::SAVE));
        assert_eq!(list(&s), [a, b]);
        assert!(!s.tasks[c.idx()].se.group_node.is_linked());
        cfs_tasks_move_to_front(&mut s, CpuId(0), b);
        assert_eq!(list(&s), [b, a]);
        // Not on the list: nothing moves.
        cfs_tasks_move_to_front(&mut s, CpuId(0), c);
        assert_eq!(list(&s), [b, a]);
    }

    #[test]
    fn delayed_dequeue_keeps_an_ineligible_sleeper_queued() {
        let (mut s, a, b) = a_runs_b_waits();
        advance(&mut s, 1_000_000);
        // A: v = O + 1e6 > V = O + 5e5: ineligible, so its sleep is delayed (F-20).
        assert!(!dequeue_task_fair(&mut s, CpuId(0), a, DequeueFlags::SLEEP));
        assert!(s.tasks[a.idx()].se.sched_delayed);
        assert!(s.tasks[a.idx()].se.on_rq);
        assert_eq!(s.rqs[0].nr_running, 2, "a delayed task stays counted (T-9a)");
        assert_eq!(s.rqs[0].cfs.h_nr_queued, 2);
        assert_eq!(s.rqs[0].cfs.h_nr_runnable, 1);
        put_prev_task_fair(&mut s, CpuId(0), a);
        check_sums(&s, CpuId(0));
        // B (eligible, earliest) is picked; A stays delayed in the tree.
        assert_eq!(pick_task_fair(&mut s, CpuId(0)), Some(b));
        assert!(s.tasks[a.idx()].se.sched_delayed);
        run(&mut s, b);
        // B sleeps while eligible (it is curr at v = O, V = O + 5e5): really dequeued.
        assert!(dequeue_task_fair(&mut s, CpuId(0), b, DequeueFlags::SLEEP));
        assert_eq!(s.tasks[b.idx()].se.vlag, 500_000);
        assert_eq!(s.rqs[0].nr_running, 1);
        put_prev_task_fair(&mut s, CpuId(0), b);
        // Only the delayed A is left: the pick dequeues it for good and finds nothing (F-10).
        assert_eq!(pick_task_fair(&mut s, CpuId(0)), None);
        assert_eq!(s.tasks[a.idx()].on_rq, OnRq::No);
        assert!(!s.tasks[a.idx()].se.sched_delayed);
        assert!(!s.tasks[a.idx()].se.on_rq);
        assert_eq!(s.rqs[0].nr_running, 0);
        assert_eq!(s.rqs[0].cfs.h_nr_runnable, 0);
        assert_eq!(s.rqs[0].cfs.load_weight, 0);
    }

    #[test]
    fn waking_a_delayed_task_requeues_it_in_place() {
        let (mut s, a, _) = a_runs_b_waits();
        advance(&mut s, 1_000_000);
        assert!(!dequeue_task_fair(&mut s, CpuId(0), a, DequeueFlags::SLEEP));
        put_prev_task_fair(&mut s, CpuId(0), a);
        let v = s.tasks[a.idx()].se.vruntime;
        // The wakeup (ttwu_runnable) requeues: negative lag, so no re-placement (F-22).
        core::enqueue_task(&mut s, CpuId(0), a, EnqueueFlags::WAKEUP | EnqueueFlags::DELAYED);
        assert!(!s.tasks[a.idx()].se.sched_delayed);
        assert_eq!(
            s.tasks[a.idx()].se.vruntime,
            v,
            "debt not shed by sleeping (F-14)"
        );
        assert_eq!(s.rqs[0].nr_running, 2, "not counted twice");
        assert_eq!(s.rqs[0].cfs.h_nr_runnable, 2);
        check_sums(&s, CpuId(0));
    }

    #[test]
    fn delay_zero_replaces_a_sleeper_whose_lag_turned_positive() {
        let (mut s, a, b) = a_runs_b_waits();
        advance(&mut s, 1_000_000);
        // A (v = O + 1e6) is ineligible when it sleeps: delayed.
        assert!(!dequeue_task_fair(&mut s, CpuId(0), a, DequeueFlags::SLEEP));
        put_prev_task_fair(&mut s, CpuId(0), a);
        run(&mut s, b);
        advance(&mut s, 2_000_000);
        update_curr_fair(&mut s, CpuId(0));
        // B ran 2 ms: V = O + 1.5e6, so A is now owed 0.5 ms. Its wakeup cuts that to zero
        // (DELAY_ZERO) and re-places it at V without A, i.e. at B's v = O + 2e6, with a fresh
        // deadline.
        core::enqueue_task(&mut s, CpuId(0), a, EnqueueFlags::WAKEUP | EnqueueFlags::DELAYED);
        let se = &s.tasks[a.idx()].se;
        assert_eq!(se.vlag, 0);
        assert_eq!(se.vruntime, O + 2_000_000);
        assert_eq!(se.deadline, O + 2_700_000);
        check_sums(&s, CpuId(0));
    }

    /// One CPU, two nice-0 tasks woken at the same time: A (task 1) runs, B (task 2) waits.
    fn a_runs_b_waits() -> (SchedState, TaskId, TaskId) {
        let mut s = new_for_tests(1, 2);
        let (a, b) = (TaskId(1), TaskId(2));
        wake(&mut s, a, 0);
        wake(&mut s, b, 0);
        run(&mut s, a);
        (s, a, b)
    }

    /// Drive one CPU tick by tick: charge the running task, and on need_resched pick again
    /// (switching only if another task wins, like put_prev_set_next_task()).
    fn simulate_ticks(s: &mut SchedState, ticks: u32) {
        for _ in 0..ticks {
            advance(s, 1_000_000);
            let curr = s.rqs[0].curr;
            task_tick_fair(s, CpuId(0), curr);
            if s.tasks[curr.idx()].need_resched {
                s.tasks[curr.idx()].need_resched = false;
                let next = pick_task_fair(s, CpuId(0)).expect("runnable tasks");
                if next != curr {
                    put_prev_task_fair(s, CpuId(0), curr);
                    run(s, next);
                }
            }
        }
    }

    #[test]
    fn cpu_time_is_shared_in_proportion_to_weight() {
        let mut s = new_for_tests(1, 3);
        let (a, b, c) = (TaskId(1), TaskId(2), TaskId(3));
        s.tasks[c.idx()].se.weight = weight_of(Policy::Normal, 5); // 335
        for p in [a, b, c] {
            wake(&mut s, p, 0);
        }
        run(&mut s, a);
        simulate_ticks(&mut s, 3000);
        let ran = |p: TaskId| s.tasks[p.idx()].se.sum_exec_runtime as f64 / 1e6;
        // Shares 1024 : 1024 : 335 of 3000 ms = 1289.1 / 1289.1 / 421.7 ms (a model charging
        // unweighted time would give 1000 each).
        for (p, want) in [(a, 1289.1), (b, 1289.1), (c, 421.7)] {
            assert!(
                (ran(p) - want).abs() <= 4.0,
                "task {p} ran {} ms, want {want}",
                ran(p)
            );
        }
        assert_eq!(ran(a) + ran(b) + ran(c), 3000.0);
        check_sums(&s, CpuId(0));
    }

    /// Create group `path` under `parent` with `shares`, and put tasks `tasks` in it (before
    /// they are queued).
    fn group(s: &mut SchedState, path: &str, parent: GroupId, shares: u64, tasks: &[TaskId]) -> GroupId {
        let g = crate::sched::cgroup::sched_create_group(s, path, parent, shares);
        for &p in tasks {
            s.tasks[p.idx()].sched_task_group = g;
        }
        g
    }

    /// Queue, pick and run the first task on CPU 0 as the core would.
    fn start(s: &mut SchedState) {
        let first = pick_task_fair(s, CpuId(0)).expect("runnable tasks");
        run(s, first);
    }

    #[test]
    fn equal_groups_split_the_cpu_whatever_their_task_counts() {
        // Group A holds one task, group B four; equal shares. Per task: A's 50%, B's 12.5%
        // each (a flat queue would give every task 20%).
        let mut s = new_for_tests(1, 5);
        let (a, bs) = (TaskId(1), [2, 3, 4, 5].map(TaskId));
        group(&mut s, "/a", ROOT_TASK_GROUP, 1024, &[a]);
        let gb = group(&mut s, "/b", ROOT_TASK_GROUP, 1024, &bs);
        for p in [a, TaskId(2), TaskId(3), TaskId(4), TaskId(5)] {
            wake(&mut s, p, 0);
        }
        assert_eq!(s.rqs[0].cfs.nr_queued, 2, "two group entities on the root");
        assert_eq!(s.rqs[0].cfs.h_nr_queued, 5);
        assert_eq!(s.groups[gb as usize].cfs_rq[0].nr_queued, 4);
        assert_eq!(s.rqs[0].nr_running, 5);
        start(&mut s);
        simulate_ticks(&mut s, 4000);
        let ran = |p: TaskId| s.tasks[p.idx()].se.sum_exec_runtime as f64 / 1e6;
        assert!((ran(a) - 2000.0).abs() <= 10.0, "A ran {} ms", ran(a));
        for p in bs {
            assert!((ran(p) - 500.0).abs() <= 10.0, "B task {p} ran {} ms", ran(p));
        }
        // The groups' own entities were charged what their tasks ran.
        assert_eq!(
            s.groups[gb as usize].se[0].sum_exec_runtime as f64 / 1e6,
            bs.iter().map(|&p| ran(p)).sum::<f64>()
        );
        assert_eq!(
            s.groups[gb as usize].usage_ns,
            s.groups[gb as usize].se[0].sum_exec_runtime
        );
        check_sums(&s, CpuId(0));
    }

    #[test]
    fn nested_groups_split_at_every_level() {
        // /x (1024) holds task a and group /x/y (1024) with tasks b, c; root task d (1024).
        // Root level: d vs /x = 1/2 each; in /x: a vs /x/y = 1/4 each; in /x/y: b, c = 1/8.
        let mut s = new_for_tests(1, 4);
        let (a, b, c, d) = (TaskId(1), TaskId(2), TaskId(3), TaskId(4));
        let x = group(&mut s, "/x", ROOT_TASK_GROUP, 1024, &[a]);
        let y = group(&mut s, "/x/y", x, 1024, &[b, c]);
        for p in [a, b, c, d] {
            wake(&mut s, p, 0);
        }
        assert_eq!(s.rqs[0].cfs.nr_queued, 2);
        assert_eq!(s.groups[x as usize].cfs_rq[0].nr_queued, 2);
        assert_eq!(s.groups[x as usize].cfs_rq[0].h_nr_queued, 3);
        assert_eq!(s.groups[y as usize].cfs_rq[0].nr_queued, 2);
        start(&mut s);
        simulate_ticks(&mut s, 8000);
        let ran = |p: TaskId| s.tasks[p.idx()].se.sum_exec_runtime as f64 / 1e6;
        for (p, want) in [(d, 4000.0), (a, 2000.0), (b, 1000.0), (c, 1000.0)] {
            assert!(
                (ran(p) - want).abs() <= 20.0,
                "task {p} ran {} ms, want {want}",
                ran(p)
            );
        }
        assert_eq!(
            s.groups[x as usize].usage_ns,
            s.tasks[a.idx()].se.sum_exec_runtime + s.groups[y as usize].usage_ns
        );
    }

    #[test]
    fn group_shares_follow_the_load_on_each_cpu() {
        // Group /g (shares 1024) with three tasks on CPU 0 and one on CPU 1: its entity on
        // CPU 1 weighs 1024·1024/4096 = 256 when that task joins; the one on CPU 0 still has
        // the 1024 of its last update (all the group's load was on CPU 0 then) until its
        // level is updated again, then 1024·3072/4096 = 768.
        let mut s = new_for_tests(2, 4);
        let g = group(
            &mut s,
            "/g",
            ROOT_TASK_GROUP,
            1024,
            &[TaskId(2), TaskId(3), TaskId(4), TaskId(5)],
        );
        for p in [2, 3, 4].map(TaskId) {
            wake(&mut s, p, 0);
        }
        s.tasks[5].cpu = CpuId(1);
        core::activate_task(&mut s, CpuId(1), TaskId(5), EnqueueFlags::WAKEUP);
        assert_eq!(s.groups[g as usize].se[1].weight, 256);
        assert_eq!(s.groups[g as usize].se[0].weight, 1024);
        assert_eq!(s.rqs[1].cfs.load_weight, 256);
        update_cfs_group(&mut s, CpuId(0), SeId::Group(g));
        assert_eq!(s.groups[g as usize].se[0].weight, 768);
        assert_eq!(s.rqs[0].cfs.load_weight, 768);
        // A tiny group never goes below MIN_SHARES.
        let tiny = group(&mut s, "/tiny", ROOT_TASK_GROUP, 3, &[]);
        s.groups[tiny as usize].cfs_rq[0].load_weight = 1;
        s.groups[tiny as usize].cfs_rq[1].load_weight = 1000;
        assert_eq!(
            calc_group_shares(
                &s,
                CfsRqId {
                    cpu: CpuId(0),
                    tg: tiny
                }
            ),
            MIN_SHARES
        );
    }

    #[test]
    fn a_proxied_owner_is_charged_as_commit_aa4f74dfd42b_charges_it() {
        // Donor d (root group) runs owner o (in /low) on its scheduling context: d's entity
        // (and its groups: the root) get the virtual time and the cgroup time, o gets
        // sum_exec_runtime and /low nothing (Linux update_se(): "cgroup time is always
        // accounted against the donor").
        let mut s = new_for_tests(1, 2);
        let (d, o) = (TaskId(1), TaskId(2));
        let low = group(&mut s, "/low", ROOT_TASK_GROUP, 41, &[o]);
        wake(&mut s, d, 0);
        wake(&mut s, o, 0);
        run(&mut s, d);
        s.rqs[0].curr = o; // find_proxy_task() chose the owner; d stays rq->donor
        let v_low = s.groups[low as usize].se[0].vruntime;
        let v_d = s.tasks[d.idx()].se.vruntime;
        advance(&mut s, 2_000_000);
        update_curr_fair(&mut s, CpuId(0));
        assert_eq!(s.tasks[o.idx()].se.sum_exec_runtime, 2_000_000);
        assert_eq!(s.tasks[d.idx()].se.sum_exec_runtime, 0);
        assert_eq!(s.tasks[d.idx()].se.vruntime, v_d + 2_000_000);
        assert_eq!(s.groups[ROOT_TASK_GROUP as usize].usage_ns, 2_000_000);
        assert_eq!(s.groups[low as usize].usage_ns, 0);
        assert_eq!(
            s.groups[low as usize].se[0].vruntime, v_low,
            "/low's entity is not charged"
        );
        assert_eq!(s.groups[low as usize].se[0].sum_exec_runtime, 0);
    }

    #[test]
    fn the_hierarchy_checker_sees_a_wrong_count() {
        let mut s = new_for_tests(1, 2);
        let g = group(&mut s, "/g", ROOT_TASK_GROUP, 1024, &[TaskId(1), TaskId(2)]);
        wake(&mut s, TaskId(1), 0);
        wake(&mut s, TaskId(2), 0);
        assert_eq!(check_cfs_hierarchy(&s, CpuId(0)), None);
        s.groups[g as usize].cfs_rq[0].load_weight += 1;
        assert!(check_cfs_hierarchy(&s, CpuId(0)).is_some_and(|d| d.contains("group /g")));
        s.groups[g as usize].cfs_rq[0].load_weight -= 1;
        s.rqs[0].cfs.h_nr_queued = 1;
        assert!(check_cfs_hierarchy(&s, CpuId(0)).is_some_and(|d| d.contains("group /:")));
    }

    #[test]
    fn a_task_delayed_below_a_throttled_group_counts_only_up_to_it() {
        // /g (cpu.max) holds A and B, the root C and D. /g is throttled: the root no longer
        // counts its tasks. A then sleeps while ineligible in /g (as an owner can, running
        // for a donor of another group): its delay and its wake-in-place change /g's
        // h_nr_runnable only, never the root's (set_delayed()/clear_delayed() stop at the
        // throttled cfs_rq, up to 6.17).
        let mut s = new_for_tests(1, 4);
        let (a, b, c, d) = (TaskId(1), TaskId(2), TaskId(3), TaskId(4));
        let g = group(&mut s, "/g", ROOT_TASK_GROUP, 1024, &[a, b]);
        crate::sched::cgroup::tg_set_cfs_bandwidth(&mut s, g, 1_000_000, 100_000_000);
        wake(&mut s, b, 0);
        wake(&mut s, a, -1_000_000);
        wake(&mut s, c, 0);
        wake(&mut s, d, 0);
        let gq = CfsRqId { cpu: CpuId(0), tg: g };
        // The local runtime and the pool are used up and the period timer already runs: the
        // throttle sticks.
        cfs_rq_mut(&mut s, gq).runtime_remaining = 0;
        s.groups[g as usize].cfs_b.runtime_ns = 0;
        s.groups[g as usize].cfs_b.period_active = true;
        assert!(throttle_cfs_rq(&mut s, gq));
        assert_eq!(s.rqs[0].cfs.h_nr_runnable, 2);
        assert_eq!(cfs_rq(&s, gq).h_nr_runnable, 2);
        assert!(!se_eligible(&s, gq, SeId::Task(a)));
        assert!(
            !dequeue_task_fair(&mut s, CpuId(0), a, DequeueFlags::SLEEP),
            "A's sleep is delayed"
        );
        assert_eq!(cfs_rq(&s, gq).h_nr_runnable, 1);
        assert_eq!(s.rqs[0].cfs.h_nr_runnable, 2, "the root never counted A");
        assert_eq!(check_cfs_hierarchy(&s, CpuId(0)), None);
        // Woken in place: the delay ends, again below the throttle only.
        enqueue_task_fair(&mut s, CpuId(0), a, EnqueueFlags::WAKEUP | EnqueueFlags::DELAYED);
        assert!(!s.tasks[a.idx()].se.sched_delayed);
        assert_eq!(cfs_rq(&s, gq).h_nr_runnable, 2);
        assert_eq!(s.rqs[0].cfs.h_nr_runnable, 2);
        assert_eq!(check_cfs_hierarchy(&s, CpuId(0)), None);
        // The unthrottle brings both of /g's tasks back to the root.
        s.groups[g as usize].cfs_b.runtime_ns = 1_000_000;
        unthrottle_cfs_rq(&mut s, gq);
        assert_eq!(s.rqs[0].cfs.h_nr_runnable, 4);
        assert_eq!(s.rqs[0].cfs.h_nr_queued, 4);
        assert_eq!(check_cfs_hierarchy(&s, CpuId(0)), None);
    }

    #[test]
    fn check_cfs_hierarchy_sees_a_wrong_h_nr_runnable() {
        let mut s = new_for_tests(1, 2);
        let g = group(&mut s, "/g", ROOT_TASK_GROUP, 1024, &[TaskId(1)]);
        wake(&mut s, TaskId(1), 0);
        wake(&mut s, TaskId(2), 0);
        assert_eq!(check_cfs_hierarchy(&s, CpuId(0)), None);
        s.groups[g as usize].cfs_rq[0].h_nr_runnable = 0;
        assert!(check_cfs_hierarchy(&s, CpuId(0)).is_some_and(|d| d.contains("h_nr_runnable")));
    }

    #[test]
    fn yield_skips_to_the_deadline_only_when_eligible() {
        let (mut s, a, _) = a_runs_b_waits();
        // Eligible at v = O = V: v = d = O + 700_000, d = O + 1_400_000.
        yield_task_fair(&mut s, CpuId(0));
        assert_eq!(s.tasks[a.idx()].se.vruntime, O + 700_000);
        assert_eq!(s.tasks[a.idx()].se.deadline, O + 1_400_000);
        // Now ineligible (V = O + 350_000): a second yield changes nothing.
        yield_task_fair(&mut s, CpuId(0));
        assert_eq!(s.tasks[a.idx()].se.vruntime, O + 700_000);
    }

    #[test]
    fn wakeup_preempts_only_an_unprotected_or_ineligible_curr() {
        let mut s = new_for_tests(1, 3);
        let (a, b, c) = (TaskId(1), TaskId(2), TaskId(3));
        wake(&mut s, a, 0);
        run(&mut s, a);
        advance(&mut s, 200_000);
        // B wakes with lag 0 at V = O + 200_000 (only A queued), d = V + 700_000; A's deadline
        // O + 700_000 is earlier and A is shielded: no preemption.
        wake(&mut s, b, 0);
        core::wakeup_preempt(&mut s, CpuId(0), b, WakeFlags::TTWU);
        assert!(!s.tasks[a.idx()].need_resched);
        // C with a shorter slice cuts the shield (PREEMPT_SHORT) and has the earlier deadline:
        // v = V, d = V + 100_000 < O + 700_000.
        s.tasks[c.idx()].se.custom_slice = true;
        s.tasks[c.idx()].se.slice = 100_000;
        wake(&mut s, c, 0);
        core::wakeup_preempt(&mut s, CpuId(0), c, WakeFlags::TTWU);
        assert!(s.tasks[a.idx()].need_resched);
        assert_eq!(
            s.tasks[a.idx()].se.vprot,
            s.tasks[a.idx()].se.vruntime,
            "shield cancelled"
        );
    }

    #[test]
    fn reweight_keeps_lag_and_relative_deadline() {
        let (mut s, a, b) = a_runs_b_waits();
        advance(&mut s, 300_000);
        update_curr_fair(&mut s, CpuId(0));
        // A (curr): v = O + 300_000. B (tree): v = O, d = O + 700_000. V = O + 150_000, so
        // B's vlag is +150_000. Renice B to +5 (w 335):
        //   vlag → 150_000·1024/335 = 458_507 (truncated),
        //   relative deadline 700_000 → 700_000·1024/335 = 2_139_701,
        //   placement against W = 1024 (A only): v = (O + 300_000) − 458_507·1359/1024
        //   = O + 300_000 − 608_506 = O − 308_506.
        reweight_task_fair(&mut s, CpuId(0), b, 5);
        let se = &s.tasks[b.idx()].se;
        assert_eq!(se.weight, 335);
        assert_eq!(se.vlag, 458_507);
        assert_eq!(se.vruntime, O - 308_506);
        assert_eq!(se.deadline - se.vruntime, 2_139_701);
        // After the join V = O + ⌊(1024·300_000 − 335·308_506)/1359⌋ = O + 150_000: B's lag
        // w·(V − v) = 335·458_506 ≈ 1024·150_000, as before the renice (F-27).
        assert_eq!(avg_vruntime_of(&s, CpuId(0)), O + 150_000);
        assert_eq!(s.rqs[0].cfs.load_weight, 1024 + 335);
        check_sums(&s, CpuId(0));
        // The renice ran a preemption check for B (prio_changed_fair): curr A (v = O + 300_000
        // > V) is not eligible, so it is preempted (F-24).
        assert!(s.tasks[a.idx()].need_resched);
        // A weaker running task is rescheduled.
        s.tasks[a.idx()].need_resched = false;
        reweight_task_fair(&mut s, CpuId(0), a, 3);
        assert!(s.tasks[a.idx()].need_resched);
        check_sums(&s, CpuId(0));
    }

    #[test]
    fn idle_cpu_needs_idle_curr_empty_queue_and_no_pending_wakeup() {
        let mut s = new_for_tests(2, 1);
        assert!(idle_cpu(&s, CpuId(1)));
        s.rqs[1].wake_list.push(TaskId(2));
        assert!(!idle_cpu(&s, CpuId(1)));
        assert!(idle_cpu(&s, CpuId(0)));
        wake(&mut s, TaskId(2), 0);
        assert!(!idle_cpu(&s, CpuId(0)));
    }
}
