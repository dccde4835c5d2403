//! Task groups: the cgroup CPU controller's side of the scheduler.
//!
//! Linux: kernel/sched/sched.h struct task_group; kernel/sched/core.c (the `cpu` cgroup
//! controller: sched_create_group(), sched_move_task(), cpu_weight_write_u64(),
//! cpu_shares_write_u64()); kernel/sched/fair.c alloc_fair_sched_group(),
//! init_tg_cfs_entry(), sched_group_set_shares().
//!
//! The groups form a tree rooted at [`ROOT_TASK_GROUP`], created before the run starts (the
//! workload declares them). Every non-root group has, per CPU, a group scheduling entity queued
//! on its parent's cfs_rq and a cfs_rq of its own (`tg->se[cpu]`, `tg->cfs_rq[cpu]`); the
//! root group's cfs_rq on a CPU is `rq->cfs`. The hierarchy itself (enqueue, pick, shares) is
//! in [`crate::sched::fair`].
//!
//! Deviation: weights are kept at the 1024 resolution of task weights (Linux on 64-bit keeps
//! group weights `scale_load()`ed by another 2¹⁰); [`MIN_SHARES`] is 2 in those units.

use sim::CpuId;

use crate::sched::fair::{CfsRq, SchedEntity};
use crate::sched::SchedState;
use crate::task::TaskId;

/// Index of a task group in [`SchedState::groups`].
pub type GroupId = u32;

/// `root_task_group`.
pub const ROOT_TASK_GROUP: GroupId = 0;

/// Smallest weight a group entity gets (`MIN_SHARES`).
pub const MIN_SHARES: u64 = 2;
/// Largest `cpu.shares` (`MAX_SHARES`).
pub const MAX_SHARES: u64 = 1 << 18;
/// cgroup v2 `cpu.weight` default, bounds (`CGROUP_WEIGHT_DFL`, `_MIN`, `_MAX`).
pub const CGROUP_WEIGHT_DFL: u64 = 100;
pub const CGROUP_WEIGHT_MIN: u64 = 1;
pub const CGROUP_WEIGHT_MAX: u64 = 10_000;

/// `struct task_group` (its fair part). Protected by: the per-CPU parts by that CPU's rq
/// lock; `shares` is set before the run.
#[derive(Clone, Debug)]
pub struct TaskGroup {
    /// The cgroup path (`/`, `/low`, `/bg/a`).
    pub path: String,
    /// `tg->parent`; None for the root.
    pub parent: Option<GroupId>,
    /// Depth below the root (`se->depth` of its entities is `depth - 1`).
    pub depth: u32,
    /// `tg->shares`: the weight the group has against its siblings, split over CPUs by
    /// `calc_group_shares()`.
    pub shares: u64,
    /// `tg->se[cpu]`; empty for the root.
    pub se: Vec<SchedEntity>,
    /// `tg->cfs_rq[cpu]`; empty for the root (whose cfs_rq is `rq->cfs`).
    pub cfs_rq: Vec<CfsRq>,
    /// CPU time charged to the group and its descendants (`cpu.stat usage_usec`, in ns):
    /// the time executed on the scheduling context of its tasks (`cgroup_account_cputime()`
    /// is charged to the donor).
    pub usage_ns: u64,
    /// CFS bandwidth control (`cpu.max`).
    pub cfs_b: CfsBandwidth,
}

/// `struct cfs_bandwidth`: the group's `cpu.max` and its runtime pool for the current
/// period. Protected by: `cfs_b->lock` in Linux; here every update is one machine step
/// under the rq lock of the CPU that makes it (or in the period timer).
///
/// Deviation: no slack timer (`cfs_b->slack_timer`, `return_cfs_rq_runtime()`): a cfs_rq
/// that goes idle keeps its unused local runtime (at most one 5 ms slice) instead of
/// returning what exceeds 1 ms to the pool; and no `cpu.max.burst`.
#[derive(Clone, Debug)]
pub struct CfsBandwidth {
    /// `quota` per `period` (None: `max`, no limit).
    pub quota_ns: Option<u64>,
    pub period_ns: u64,
    /// Runtime left in the pool this period (`runtime`).
    pub runtime_ns: u64,
    /// The period timer is armed (`period_active`), on `timer_cpu`, expiring at
    /// `expires_ns` (always a multiple of the period: Linux forwards it from 0).
    pub period_active: bool,
    pub timer_cpu: CpuId,
    pub expires_ns: u64,
    /// No runtime was drawn in the last period (`idle`): the timer stops.
    pub idle: bool,
    /// CPUs whose cfs_rq of this group is throttled, in throttling order
    /// (`throttled_cfs_rq`).
    pub throttled_cpus: Vec<CpuId>,
    /// `cpu.stat`: `nr_periods`, `nr_throttled`, `throttled_usec` (ns here).
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_time_ns: u64,
}

impl Default for CfsBandwidth {
    fn default() -> Self {
        CfsBandwidth {
            quota_ns: None,
            period_ns: DEFAULT_CFS_PERIOD_NS,
            runtime_ns: 0,
            period_active: false,
            timer_cpu: CpuId(0),
            expires_ns: 0,
            idle: false,
            throttled_cpus: Vec::new(),
            nr_periods: 0,
            nr_throttled: 0,
            throttled_time_ns: 0,
        }
    }
}

/// `default_cfs_period()`: 100 ms.
pub const DEFAULT_CFS_PERIOD_NS: u64 = 100_000_000;

/// Set group `g`'s `cpu.max` before the run: `quota_ns` per `period_ns`; the pool starts
/// full and every cfs_rq of the group draws from it.
///
/// Linux: kernel/sched/core.c tg_set_cfs_bandwidth(); kernel/sched/fair.c
/// __refill_cfs_bandwidth_runtime().
pub fn tg_set_cfs_bandwidth(s: &mut SchedState, g: GroupId, quota_ns: u64, period_ns: u64) {
    assert!(g != ROOT_TASK_GROUP, "the root group has no bandwidth limit");
    assert!(quota_ns > 0 && period_ns > 0);
    let tg = &mut s.groups[g as usize];
    tg.cfs_b.quota_ns = Some(quota_ns);
    tg.cfs_b.period_ns = period_ns;
    tg.cfs_b.runtime_ns = quota_ns;
    for q in &mut tg.cfs_rq {
        q.runtime_enabled = true;
        q.runtime_remaining = 0;
    }
}

impl TaskGroup {
    /// The root group (`root_task_group`): its cfs_rq on each CPU is `rq->cfs`.
    pub fn root() -> TaskGroup {
        TaskGroup {
            path: "/".to_string(),
            parent: None,
            depth: 0,
            shares: crate::sched::fair::NICE_0_LOAD,
            se: Vec::new(),
            cfs_rq: Vec::new(),
            usage_ns: 0,
            cfs_b: CfsBandwidth::default(),
        }
    }
}

/// The weight of cgroup v2 `cpu.weight` `w` (1..10000, default 100 = nice 0).
///
/// Linux: kernel/sched/sched.h sched_weight_from_cgroup() (rounded to the closest).
pub fn sched_weight_from_cgroup(w: u64) -> u64 {
    assert!((CGROUP_WEIGHT_MIN..=CGROUP_WEIGHT_MAX).contains(&w));
    (w * crate::sched::fair::NICE_0_LOAD + CGROUP_WEIGHT_DFL / 2) / CGROUP_WEIGHT_DFL
}

/// Create group `path` under `parent` with `shares` (clamped to [MIN_SHARES, MAX_SHARES]),
/// with an entity and a cfs_rq on every CPU. Before the run only (no task is queued in it).
///
/// Linux: kernel/sched/core.c sched_create_group(); kernel/sched/fair.c
/// alloc_fair_sched_group(), init_tg_cfs_entry(), sched_group_set_shares().
pub fn sched_create_group(s: &mut SchedState, path: &str, parent: GroupId, shares: u64) -> GroupId {
    assert!(
        (parent as usize) < s.groups.len(),
        "parent group {parent} does not exist"
    );
    let n = s.nr_cpus();
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    let depth = s.groups[parent as usize].depth + 1;
    // A new group entity has the group's full weight until its first enqueue recomputes it.
    let se = SchedEntity {
        weight: shares,
        ..Default::default()
    };
    let id = s.groups.len() as GroupId;
    s.groups.push(TaskGroup {
        path: path.to_string(),
        parent: Some(parent),
        depth,
        shares,
        se: vec![se; n],
        cfs_rq: vec![CfsRq::default(); n],
        usage_ns: 0,
        cfs_b: CfsBandwidth::default(),
    });
    id
}

/// Move `p` (on `cpu`, its `pi_lock` and rq lock held) into group `to`: dequeued and put
/// around the change as `sched_change` does, then a running task is rescheduled.
///
/// Linux: kernel/sched/core.c sched_move_task(), sched_change_group(); kernel/sched/fair.c
/// task_change_group_fair().
///
/// Deviation: no `detach_task_cfs_rq()`/`attach_task_cfs_rq()` PELT transfer (the model has
/// no PELT); the lag and relative deadline saved by the `DEQUEUE_SAVE` dequeue carry the
/// task's position into the new group's cfs_rq, as they do in Linux.
pub fn sched_move_task(s: &mut SchedState, cpu: CpuId, p: TaskId, to: GroupId) {
    use crate::sched::{core, Class, DequeueFlags, EnqueueFlags};
    use crate::task::OnRq;
    assert!((to as usize) < s.groups.len(), "group {to} does not exist");
    if s.tasks[p.idx()].sched_task_group == to {
        return;
    }
    let fair = s.tasks[p.idx()].class == Class::Fair;
    let queued = s.tasks[p.idx()].on_rq == OnRq::Queued;
    let running = s.rqs[cpu.idx()].donor == p;
    if fair && queued {
        core::dequeue_task(
            s,
            cpu,
            p,
            DequeueFlags::SAVE | DequeueFlags::MOVE | DequeueFlags::NOCLOCK,
        );
    }
    if fair && running {
        core::put_prev_task(s, cpu, p);
    }
    s.tasks[p.idx()].sched_task_group = to;
    if fair && queued {
        core::enqueue_task(
            s,
            cpu,
            p,
            EnqueueFlags::RESTORE | EnqueueFlags::MOVE | EnqueueFlags::NOCLOCK,
        );
    }
    if fair && running {
        core::set_next_task(s, cpu, p, false);
        core::resched_curr(s, cpu);
    }
}

/// Whether `g` is `ancestor` or below it.
pub fn is_descendant(s: &SchedState, mut g: GroupId, ancestor: GroupId) -> bool {
    loop {
        if g == ancestor {
            return true;
        }
        match s.groups[g as usize].parent {
            Some(p) => g = p,
            None => return false,
        }
    }
}
