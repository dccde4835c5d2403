//! Fair-class placement and load balancing: `select_task_rq_fair` (wake_wide, wake_affine,
//! select_idle_sibling, the fork/exec slow path) and the newidle and periodic balancers.
//!
//! Linux: kernel/sched/fair.c (the SMP half of it).
//!
//! Deviation (spec §11.4): there is no PELT. A CPU's load is the sum of the weights queued on
//! its cfs_rq (`cfs_rq->load.weight`, delayed entities included), a task's load is its weight,
//! and a task's utilization is taken as a full CPU (1024) while it is queued; group
//! utilization and runnable figures are derived from task counts. The decision rules of
//! F-42…F-47 are kept. Tickless idle CPUs are balanced by the nohz idle load balancer
//! ([`crate::sched::nohz`], on by default); with `nohz_idle=off` idle CPUs keep ticking and run
//! their own periodic pass.

use sim::{CpuId, CpuMask};

use crate::sched::core::{self, Kernel};
use crate::sched::fair::{idle_cpu, sched_idle_cpu, NICE_0_LOAD};
use crate::sched::topology::{sd, SchedDomain, SCHED_CAPACITY_SCALE};
use crate::sched::{Class, DequeueFlags, EnqueueFlags, SchedState, WakeFlags};
use crate::task::TaskId;

// ---------------------------------------------------------------------- loads

/// Instantaneous load of a CPU: the sum of queued fair weights.
///
/// Linux: kernel/sched/fair.c cpu_load().
///
/// Deviation: PELT `load_avg` replaced by `cfs_rq->load.weight` (module docs).
pub fn cpu_load(s: &SchedState, cpu: CpuId) -> u64 {
    s.rqs[cpu.idx()].cfs.load_weight
}

/// A task's hierarchical load: the part of its CPU's root load that it stands for. A root
/// group task's is its weight; below a group, its weight's share of its cfs_rq's load times
/// that cfs_rq's `h_load`. 0 for a task outside the fair class.
///
/// Linux: kernel/sched/fair.c task_h_load().
fn task_h_load(s: &SchedState, p: TaskId) -> u64 {
    let t = &s.tasks[p.idx()];
    if t.class != Class::Fair {
        return 0;
    }
    let id = crate::sched::fair::cfs_rq_of(s, t.cpu, crate::sched::fair::SeId::Task(p));
    let load = crate::sched::fair::cfs_rq(s, id).load_weight;
    if id.tg == crate::sched::cgroup::ROOT_TASK_GROUP || load == 0 {
        return t.se.weight;
    }
    (t.se.weight as u128 * cfs_rq_h_load(s, id) as u128 / load as u128) as u64
}

/// The load a cfs_rq stands for at the root: the root's own load, and for a group's cfs_rq
/// its parent's `h_load` times the group entity's share of the parent's load.
///
/// Linux: kernel/sched/fair.c update_cfs_rq_h_load().
///
/// Deviation: computed on demand from `load.weight` (no PELT, no `last_h_load_update`
/// caching) and without Linux's `+1` in the divisors, which guards a zero PELT average; an
/// empty cfs_rq passes its parent's `h_load` through.
fn cfs_rq_h_load(s: &SchedState, id: crate::sched::fair::CfsRqId) -> u64 {
    use crate::sched::fair::{cfs_rq, cfs_rq_of, se_of, CfsRqId, SeId};
    if id.tg == crate::sched::cgroup::ROOT_TASK_GROUP {
        return cfs_rq(s, id).load_weight;
    }
    let e = SeId::Group(id.tg);
    let parent: CfsRqId = cfs_rq_of(s, id.cpu, e);
    let parent_h = cfs_rq_h_load(s, parent);
    let parent_load = cfs_rq(s, parent).load_weight;
    if parent_load == 0 || !se_of(s, id.cpu, e).on_rq {
        return parent_h;
    }
    (parent_h as u128 * se_of(s, id.cpu, e).weight as u128 / parent_load as u128) as u64
}

/// `available_idle_cpu()`: idle, no vCPU preemption in the model.
///
/// Linux: kernel/sched/core.c available_idle_cpu().
fn available_idle_cpu(s: &SchedState, cpu: CpuId) -> bool {
    idle_cpu(s, cpu)
}

// ---------------------------------------------------------------------- wakeup placement

/// Count the waker's wakee changes, halved once per second (input of wake_wide, F-30).
/// Must run before the choice of [`select_task_rq_fair`] on a TTWU wakeup (as in Linux, where
/// select_task_rq_fair() starts with it).
///
/// Linux: kernel/sched/fair.c record_wakee().
pub fn record_wakee(s: &mut SchedState, waker: TaskId, p: TaskId) {
    let now = s.now();
    let w = &mut s.tasks[waker.idx()];
    if now > w.wakee_flip_decay_ts + 1_000_000_000 {
        w.wakee_flips >>= 1;
        w.wakee_flip_decay_ts = now;
    }
    if w.last_wakee != Some(p) {
        w.last_wakee = Some(p);
        w.wakee_flips += 1;
    }
}

/// Whether waker and wakee switch partners so often that the wakee should not be pulled to
/// the waker's LLC (F-30).
///
/// Linux: kernel/sched/fair.c wake_wide().
fn wake_wide(s: &SchedState, waker: TaskId, p: TaskId, this_cpu: CpuId) -> bool {
    let mut master = s.tasks[waker.idx()].wakee_flips;
    let mut slave = s.tasks[p.idx()].wakee_flips;
    let factor = s.topo.llc_span[this_cpu.idx()].weight();
    if master < slave {
        std::mem::swap(&mut master, &mut slave);
    }
    !(slave < factor || master < slave * factor)
}

/// WA_IDLE (F-31). `None` stands for Linux's `nr_cpumask_bits` ("no opinion").
///
/// Linux: kernel/sched/fair.c wake_affine_idle().
fn wake_affine_idle(s: &SchedState, this_cpu: CpuId, prev_cpu: CpuId, sync: bool) -> Option<CpuId> {
    if available_idle_cpu(s, this_cpu) && s.topo.share_cache(this_cpu, prev_cpu) {
        return Some(if available_idle_cpu(s, prev_cpu) {
            prev_cpu
        } else {
            this_cpu
        });
    }
    if sync {
        let rq = &s.rqs[this_cpu.idx()];
        let delayed = rq.cfs.h_nr_queued - rq.cfs.h_nr_runnable;
        if rq.nr_running - delayed == 1 {
            return Some(this_cpu);
        }
    }
    if available_idle_cpu(s, prev_cpu) {
        return Some(prev_cpu);
    }
    None
}

/// WA_WEIGHT (F-31) on instantaneous loads.
///
/// Linux: kernel/sched/fair.c wake_affine_weight().
///
/// Deviation: loads are queued weights; the wakee's load is subtracted from `prev_cpu`'s
/// as the spec's formula says, although (unlike PELT's blocked load) the instantaneous load
/// of `prev_cpu` no longer contains it.
fn wake_affine_weight(
    s: &SchedState,
    dom: &SchedDomain,
    waker: TaskId,
    p: TaskId,
    this_cpu: CpuId,
    prev_cpu: CpuId,
    sync: bool,
) -> Option<CpuId> {
    let mut this_eff_load = cpu_load(s, this_cpu) as i128;
    if sync {
        let current_load = task_h_load(s, waker) as i128;
        if current_load > this_eff_load {
            return Some(this_cpu);
        }
        this_eff_load -= current_load;
    }
    let task_load = task_h_load(s, p) as i128;
    this_eff_load += task_load;
    if s.feat.wa_bias {
        this_eff_load *= 100;
    }
    this_eff_load *= SCHED_CAPACITY_SCALE as i128;
    let mut prev_eff_load = cpu_load(s, prev_cpu) as i128 - task_load;
    if s.feat.wa_bias {
        prev_eff_load *= 100 + (dom.imbalance_pct as i128 - 100) / 2;
    }
    prev_eff_load *= SCHED_CAPACITY_SCALE as i128;
    if sync {
        prev_eff_load += 1;
    }
    (this_eff_load < prev_eff_load).then_some(this_cpu)
}

/// Pull the wakee to the waker's CPU or leave it at `prev_cpu` (F-31).
///
/// Linux: kernel/sched/fair.c wake_affine().
fn wake_affine(
    s: &SchedState,
    dom: &SchedDomain,
    waker: TaskId,
    p: TaskId,
    this_cpu: CpuId,
    prev_cpu: CpuId,
    sync: bool,
) -> CpuId {
    let mut target = None;
    if s.feat.wa_idle {
        target = wake_affine_idle(s, this_cpu, prev_cpu, sync);
    }
    if s.feat.wa_weight && target.is_none() {
        target = wake_affine_weight(s, dom, waker, p, this_cpu, prev_cpu, sync);
    }
    if target != Some(this_cpu) {
        return prev_cpu;
    }
    this_cpu
}

/// The "idle enough to place a wakee" test of F-32: idle, or running only SCHED_IDLE tasks.
///
/// Linux: kernel/sched/fair.c select_idle_sibling() (`available_idle_cpu() || sched_idle_cpu()`).
fn idle_for_placement(s: &SchedState, cpu: CpuId) -> bool {
    available_idle_cpu(s, cpu) || sched_idle_cpu(s, cpu)
}

/// Full scan of `target`'s LLC for an idle (or SCHED_IDLE-only) allowed CPU, starting after
/// `target` and wrapping.
///
/// Linux: kernel/sched/fair.c select_idle_cpu().
///
/// Deviation: no SIS_UTIL scan shortening and no SMT idle-core search (F-32, §11.4).
fn select_idle_cpu(s: &SchedState, p: TaskId, target: CpuId) -> Option<CpuId> {
    let cpus = s.topo.llc_span[target.idx()].and(s.cpus_mask(&s.tasks[p.idx()]));
    let start = CpuId((target.0 + 1) % s.nr_cpus() as u32);
    let found = cpus.iter_wrap(start).find(|&c| idle_for_placement(s, c));
    found
}

/// The fast wakeup path (F-32). Returns the CPU and the new `recent_used_cpu` to store, if
/// Linux would store one.
///
/// Linux: kernel/sched/fair.c select_idle_sibling().
///
/// Deviation: the model has no kernel threads, so the "per-CPU kthread wakes a task that last
/// ran here" shortcut never applies.
fn select_idle_sibling(s: &SchedState, p: TaskId, prev: CpuId, target: CpuId) -> (CpuId, Option<CpuId>) {
    if idle_for_placement(s, target) {
        return (target, None);
    }
    if prev != target && s.topo.share_cache(prev, target) && idle_for_placement(s, prev) {
        return (prev, None);
    }
    let recent = s.tasks[p.idx()].recent_used_cpu;
    let store = Some(prev);
    if recent != prev
        && recent != target
        && recent.idx() < s.nr_cpus()
        && s.topo.share_cache(recent, target)
        && idle_for_placement(s, recent)
        && s.cpus_mask(&s.tasks[p.idx()]).test(recent)
    {
        return (recent, store);
    }
    if let Some(c) = select_idle_cpu(s, p, target) {
        return (c, store);
    }
    (target, store)
}

/// The placement decision without its side effects: (cpu, new `recent_used_cpu`).
///
/// Linux: kernel/sched/fair.c select_task_rq_fair().
///
/// Deviation: SD_BALANCE_WAKE is set on no domain (as in Linux by default) and EAS is out,
/// so a TTWU wakeup always takes the fast path.
fn select_task_rq_fair_inner(
    s: &SchedState,
    p: TaskId,
    prev_cpu: CpuId,
    wake_flags: WakeFlags,
) -> (CpuId, Option<CpuId>) {
    let cpu = s.m.this_cpu();
    let waker = s.rqs[cpu.idx()].curr;
    let sync = wake_flags.contains(WakeFlags::SYNC) && s.tasks[waker.idx()].exit_state == 0;
    let mask = *s.cpus_mask(&s.tasks[p.idx()]);
    let sd_flag = if wake_flags.contains(WakeFlags::FORK) {
        sd::BALANCE_FORK
    } else if wake_flags.contains(WakeFlags::EXEC) {
        sd::BALANCE_EXEC
    } else {
        0 // SD_BALANCE_WAKE: set on no domain of the model.
    };
    let mut new_cpu = prev_cpu;
    let mut want_affine = false;
    if wake_flags.contains(WakeFlags::TTWU) {
        if wake_flags.contains(WakeFlags::CURRENT_CPU) && mask.test(cpu) {
            return (cpu, None);
        }
        want_affine = !wake_wide(s, waker, p, cpu) && mask.test(cpu);
    }
    let mut slow: Option<usize> = None;
    for (i, dom) in s.topo.domains[cpu.idx()].iter().enumerate() {
        if want_affine && dom.flags & sd::WAKE_AFFINE != 0 && dom.span.test(prev_cpu) {
            if cpu != prev_cpu {
                new_cpu = wake_affine(s, dom, waker, p, cpu, prev_cpu, sync);
            }
            slow = None;
            break;
        }
        if dom.flags & sd_flag != 0 {
            slow = Some(i);
        } else if !want_affine {
            break;
        }
    }
    if let Some(level) = slow {
        return (
            sched_balance_find_dst_cpu(s, p, cpu, prev_cpu, level, sd_flag),
            None,
        );
    }
    if wake_flags.contains(WakeFlags::TTWU) {
        return select_idle_sibling(s, p, prev_cpu, new_cpu);
    }
    (new_cpu, None)
}

/// The CPU [`select_task_rq_fair`] would choose, without its side effects (`record_wakee()`
/// on the waker, the wakee's `recent_used_cpu`): for tests that ask several questions of one
/// state.
#[cfg(test)]
pub fn select_task_rq_fair_dry_run(
    s: &SchedState,
    p: TaskId,
    prev_cpu: CpuId,
    wake_flags: WakeFlags,
) -> CpuId {
    select_task_rq_fair_inner(s, p, prev_cpu, wake_flags).0
}

/// Choose the CPU for a waking, forked or exec'ing fair task (F-30…F-33), with `pi_lock`
/// held and no rq lock. This CPU (`s.m.this_cpu()`) runs the waker. Side effects in Linux's
/// order: `record_wakee()` first (TTWU only), then the choice, then
/// `p->recent_used_cpu = prev_cpu` where select_idle_sibling() stores it.
///
/// Linux: kernel/sched/fair.c select_task_rq_fair().
pub fn select_task_rq_fair(s: &mut SchedState, p: TaskId, prev_cpu: CpuId, wake_flags: WakeFlags) -> CpuId {
    if wake_flags.contains(WakeFlags::TTWU) {
        let waker = s.rqs[s.m.this_cpu().idx()].curr;
        record_wakee(s, waker, p);
    }
    let (cpu, recent) = select_task_rq_fair_inner(s, p, prev_cpu, wake_flags);
    if let Some(r) = recent {
        s.tasks[p.idx()].recent_used_cpu = r;
    }
    cpu
}

// ---------------------------------------------------------------------- group statistics

/// `enum group_type`, mildest first (F-44). The model classifies only these three.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum GroupType {
    HasSpare,
    FullyBusy,
    Overloaded,
}

/// `struct sg_lb_stats`.
#[derive(Clone, Copy, Debug, Default)]
struct SgStats {
    /// Σ cpu_load.
    load: u64,
    /// Σ rq->nr_running.
    nr_running: u32,
    /// Σ cfs h_nr_runnable.
    h_nr_running: u32,
    idle_cpus: u32,
    weight: u32,
    capacity: u64,
    /// Utilization proxy: 1024 per CPU with a runnable fair task.
    util: u64,
    avg_load: u64,
    group_type: Option<GroupType>,
}

impl SgStats {
    fn ty(&self) -> GroupType {
        self.group_type.expect("group not classified")
    }
}

/// Linux: kernel/sched/fair.c group_classify() (with group_is_overloaded() and
/// group_has_capacity()).
///
/// Deviation: util and runnable come from task counts (1024 per task), so "overloaded" means
/// more tasks than CPUs and runnable > capacity·pct/100; "fully busy" means no CPU without a
/// task.
fn group_classify(imbalance_pct: u32, g: &SgStats) -> GroupType {
    let runnable = g.nr_running as u64 * SCHED_CAPACITY_SCALE;
    if g.nr_running > g.weight && g.capacity * (imbalance_pct as u64) < runnable * 100 {
        return GroupType::Overloaded;
    }
    if g.nr_running < g.weight {
        return GroupType::HasSpare;
    }
    GroupType::FullyBusy
}

/// Gather the statistics of one group.
///
/// Linux: kernel/sched/fair.c update_sg_lb_stats().
fn update_sg_lb_stats(s: &SchedState, dom: &SchedDomain, group: &CpuMask) -> SgStats {
    let mut g = SgStats::default();
    for c in group.iter() {
        let rq = &s.rqs[c.idx()];
        g.load += cpu_load(s, c);
        g.nr_running += rq.nr_running;
        g.h_nr_running += rq.cfs.h_nr_runnable;
        g.util += rq.cfs.h_nr_runnable.min(1) as u64 * SCHED_CAPACITY_SCALE;
        if rq.nr_running == 0 && idle_cpu(s, c) {
            g.idle_cpus += 1;
        }
        g.weight += 1;
        g.capacity += SCHED_CAPACITY_SCALE;
    }
    let ty = group_classify(dom.imbalance_pct, &g);
    g.group_type = Some(ty);
    if ty == GroupType::Overloaded {
        g.avg_load = g.load * SCHED_CAPACITY_SCALE / g.capacity;
    }
    g
}

/// Whether `sg` beats the current `busiest` (F-44).
///
/// Linux: kernel/sched/fair.c update_sd_pick_busiest().
fn update_sd_pick_busiest(sg: &SgStats, busiest: Option<&SgStats>) -> bool {
    if sg.h_nr_running == 0 {
        return false;
    }
    let Some(b) = busiest else {
        return true;
    };
    if sg.ty() != b.ty() {
        return sg.ty() > b.ty();
    }
    match sg.ty() {
        GroupType::Overloaded => sg.avg_load > b.avg_load,
        GroupType::FullyBusy => sg.avg_load >= b.avg_load,
        GroupType::HasSpare => {
            !(sg.idle_cpus > b.idle_cpus || (sg.idle_cpus == b.idle_cpus && sg.nr_running <= b.nr_running))
        }
    }
}

/// `enum cpu_idle_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleType {
    NotIdle,
    Idle,
    NewlyIdle,
}

/// `enum migration_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MigrationType {
    Load,
    Util,
    Task,
}

/// What find_busiest_group() decided.
struct Plan {
    busiest_group: CpuMask,
    mtype: MigrationType,
    imbalance: i64,
}

/// Linux: kernel/sched/fair.c sibling_imbalance().
fn sibling_imbalance(idle: IdleType, busiest: &SgStats, local: &SgStats) -> i64 {
    if idle == IdleType::NotIdle || busiest.nr_running == 0 {
        return 0;
    }
    let nb = busiest.weight as i64;
    let nl = local.weight as i64;
    if nb == nl {
        return (busiest.nr_running as i64 - local.nr_running as i64).max(0);
    }
    let mut imb = (nl * busiest.nr_running as i64 - nb * local.nr_running as i64).max(0);
    imb = (2 * imb + nl + nb) / (nl + nb);
    if imb <= 1 && local.nr_running == 0 && busiest.nr_running > 1 {
        imb = 2;
    }
    imb
}

/// Statistics of every group of `dom` (local group first, then in order wrapping), the
/// busiest group and the imbalance to fix (F-44). `None`: balanced.
///
/// Linux: kernel/sched/fair.c sched_balance_find_src_group() (find_busiest_group()),
/// update_sd_lb_stats(), calculate_imbalance().
///
/// Deviation: no group_imbalanced / misfit / asym / SMT types; migrate_util uses 1024 per
/// task as the utilization of a task and of a busy CPU.
fn find_busiest_group(
    s: &SchedState,
    dom: &SchedDomain,
    child_prefer_sibling: bool,
    this_cpu: CpuId,
    idle: IdleType,
) -> Option<Plan> {
    let n = dom.groups.len();
    let li = dom
        .groups
        .iter()
        .position(|g| g.test(this_cpu))
        .expect("this CPU in none of its domain's groups");
    let local = update_sg_lb_stats(s, dom, &dom.groups[li]);
    let mut total_load = local.load;
    let mut total_cap = local.capacity;
    let mut busiest: Option<(usize, SgStats)> = None;
    for k in 1..n {
        let gi = (li + k) % n;
        let g = update_sg_lb_stats(s, dom, &dom.groups[gi]);
        total_load += g.load;
        total_cap += g.capacity;
        if update_sd_pick_busiest(&g, busiest.as_ref().map(|b| &b.1)) {
            busiest = Some((gi, g));
        }
    }
    let (bi, b) = busiest?;
    if b.h_nr_running == 0 {
        return None;
    }
    let mut local = local;
    let sds_avg_load = total_load * SCHED_CAPACITY_SCALE / total_cap;
    if local.ty() > b.ty() {
        return None;
    }
    if local.ty() == GroupType::Overloaded {
        if local.avg_load >= b.avg_load {
            return None;
        }
        if local.avg_load >= sds_avg_load {
            return None;
        }
        if 100 * b.avg_load <= dom.imbalance_pct as u64 * local.avg_load {
            return None;
        }
    }
    let force =
        child_prefer_sibling && local.ty() == GroupType::HasSpare && sibling_imbalance(idle, &b, &local) > 1;
    if !force && b.ty() != GroupType::Overloaded {
        if idle == IdleType::NotIdle {
            return None;
        }
        if b.weight > 1 && local.idle_cpus <= b.idle_cpus + 1 {
            return None;
        }
        if b.h_nr_running == 1 {
            return None;
        }
    }
    // calculate_imbalance()
    let (mtype, imbalance) = if local.ty() == GroupType::HasSpare {
        if b.ty() > GroupType::FullyBusy && dom.flags & sd::SHARE_LLC == 0 {
            let imb = local.capacity.max(local.util) - local.util;
            if idle != IdleType::NotIdle && imb == 0 {
                (MigrationType::Task, 1)
            } else {
                (MigrationType::Util, imb as i64)
            }
        } else if b.weight == 1 || child_prefer_sibling {
            (MigrationType::Task, sibling_imbalance(idle, &b, &local) >> 1)
        } else {
            (
                MigrationType::Task,
                (local.idle_cpus as i64 - b.idle_cpus as i64).max(0) >> 1,
            )
        }
    } else {
        if local.ty() < GroupType::Overloaded {
            local.avg_load = local.load * SCHED_CAPACITY_SCALE / local.capacity;
            if local.avg_load >= b.avg_load || local.avg_load >= sds_avg_load {
                return None;
            }
        }
        if b.avg_load <= sds_avg_load || sds_avg_load <= local.avg_load {
            return None;
        }
        let imb = ((b.avg_load - sds_avg_load) * b.capacity)
            .min((sds_avg_load - local.avg_load) * local.capacity)
            / SCHED_CAPACITY_SCALE;
        (MigrationType::Load, imb as i64)
    };
    if imbalance <= 0 {
        return None;
    }
    Some(Plan {
        busiest_group: dom.groups[bi],
        mtype,
        imbalance,
    })
}

/// The busiest runqueue of the busiest group (F-44).
///
/// Linux: kernel/sched/fair.c sched_balance_find_src_rq() (find_busiest_queue()).
fn find_busiest_queue(s: &SchedState, plan: &Plan) -> Option<CpuId> {
    let mut busiest = None;
    let mut busiest_load = 0u64;
    let mut busiest_nr = 0u32;
    for c in plan.busiest_group.iter() {
        let nr = s.rqs[c.idx()].cfs.h_nr_runnable;
        if nr == 0 {
            continue;
        }
        match plan.mtype {
            MigrationType::Load => {
                let load = cpu_load(s, c);
                if nr == 1 && load as i64 > plan.imbalance {
                    continue;
                }
                // Equal capacities: compare loads.
                if load > busiest_load {
                    busiest_load = load;
                    busiest = Some(c);
                }
            }
            MigrationType::Util => {
                if nr <= 1 {
                    continue;
                }
                if nr > busiest_nr {
                    busiest_nr = nr;
                    busiest = Some(c);
                }
            }
            MigrationType::Task => {
                if nr > busiest_nr {
                    busiest_nr = nr;
                    busiest = Some(c);
                }
            }
        }
    }
    busiest
}

/// `struct lb_env` (the parts the model uses).
struct LbEnv {
    src: CpuId,
    dst: CpuId,
    idle: IdleType,
    mtype: MigrationType,
    imbalance: i64,
    nr_balance_failed: u32,
    cache_nice_tries: u32,
    loop_max: u32,
}

/// Whether `p` is cache hot on the source (F-46).
///
/// Linux: kernel/sched/fair.c task_hot().
fn task_hot(s: &SchedState, p: TaskId, env: &LbEnv) -> bool {
    let t = &s.tasks[p.idx()];
    if t.class != Class::Fair || t.policy == uapi::Policy::Idle {
        return false;
    }
    if s.feat.cache_hot_buddy && s.rqs[env.dst.idx()].nr_running > 0 && {
        let e = crate::sched::fair::SeId::Task(p);
        crate::sched::fair::cfs_rq(s, crate::sched::fair::cfs_rq_of(s, env.src, e)).next == Some(e)
    } {
        return true;
    }
    if s.tun.migration_cost_ns == 0 {
        return false;
    }
    let delta = s.rqs[env.src.idx()].clock_task as i64 - t.se.exec_start as i64;
    delta < s.tun.migration_cost_ns as i64
}

/// Whether the balancer may move `p` (F-46).
///
/// Linux: kernel/sched/fair.c can_migrate_task().
///
/// Deviation: no LBF_DST_PINNED retry with another local CPU, no LBF_ALL_PINNED
/// bookkeeping, no "ineligible on dst" rule ([UNSURE] in the spec).
fn can_migrate_task(s: &SchedState, p: TaskId, env: &LbEnv) -> bool {
    let t = &s.tasks[p.idx()];
    if t.se.sched_delayed && env.mtype != MigrationType::Load {
        return false;
    }
    if crate::sched::fair::throttled_lb_pair(s, t.sched_task_group, env.src, env.dst) {
        return false;
    }
    if !s.cpus_mask(t).test(env.dst) {
        return false;
    }
    if core::task_on_cpu(s, p) || s.rqs[env.src.idx()].curr == p {
        return false;
    }
    // D7: only Proxy Execution moves a blocked donor or the current donor.
    if core::task_is_blocked(s, p) || s.rqs[env.src.idx()].donor == p {
        return false;
    }
    !task_hot(s, p, env) || env.nr_balance_failed > env.cache_nice_tries
}

/// Detach up to the imbalance from `env.src` (its rq lock held), least recently run first
/// (F-45): each task is deactivated (on_rq MIGRATING) and moved to `env.dst` with
/// `set_task_cpu`.
///
/// Linux: kernel/sched/fair.c detach_tasks() / detach_task().
fn detach_tasks(s: &mut SchedState, env: &mut LbEnv) -> Vec<TaskId> {
    let mut detached = Vec::new();
    if env.imbalance <= 0 {
        return detached;
    }
    let mut loops = 0u32;
    while let Some(p) = s.rqs[env.src.idx()].cfs.tasks.last() {
        if env.idle != IdleType::NotIdle && s.rqs[env.src.idx()].nr_running <= 1 {
            break;
        }
        loops += 1;
        if loops > env.loop_max {
            break;
        }
        let mut take = can_migrate_task(s, p, env);
        if take {
            match env.mtype {
                MigrationType::Load => {
                    let load = task_h_load(s, p).max(1);
                    if (load >> env.nr_balance_failed.min(63)) as i64 > env.imbalance {
                        take = false;
                    } else {
                        env.imbalance -= load as i64;
                    }
                }
                MigrationType::Util => {
                    let util = SCHED_CAPACITY_SCALE;
                    if (util >> env.nr_balance_failed.min(63)) as i64 > env.imbalance {
                        take = false;
                    } else {
                        env.imbalance -= util as i64;
                    }
                }
                MigrationType::Task => env.imbalance -= 1,
            }
        }
        if !take {
            // Rotate: the rejected task goes to the most-recent end.
            crate::sched::fair::cfs_tasks_move_to_front(s, env.src, p);
            continue;
        }
        core::deactivate_task(s, env.src, p, DequeueFlags::NOCLOCK);
        core::set_task_cpu(s, p, env.dst);
        detached.push(p);
        if env.idle == IdleType::NewlyIdle {
            break;
        }
        if env.imbalance <= 0 {
            break;
        }
    }
    detached
}

/// Queue the detached tasks on `dst` (its rq lock held) and check preemption for each.
///
/// Linux: kernel/sched/fair.c attach_tasks() / attach_task().
fn attach_tasks(s: &mut SchedState, dst: CpuId, tasks: &[TaskId]) {
    core::update_rq_clock(s, dst);
    for &p in tasks {
        assert_eq!(
            s.tasks[p.idx()].cpu,
            dst,
            "attaching task {p} that was not moved to cpu{dst}"
        );
        core::activate_task(s, dst, p, EnqueueFlags::NOCLOCK);
        core::wakeup_preempt(s, dst, p, WakeFlags::empty());
    }
}

/// Whether this CPU is the one to balance this domain (F-43): a NEWLY_IDLE CPU always is (if
/// still empty); otherwise the first idle CPU of the local group, else its first CPU.
///
/// Linux: kernel/sched/fair.c should_we_balance().
fn should_we_balance(s: &SchedState, dom: &SchedDomain, this_cpu: CpuId, idle: IdleType) -> bool {
    if idle == IdleType::NewlyIdle {
        let rq = &s.rqs[this_cpu.idx()];
        return rq.nr_running == 0 && !rq.ttwu_pending;
    }
    let local = dom.groups.iter().find(|g| g.test(this_cpu)).expect("local group");
    if let Some(c) = local.iter().find(|&c| idle_cpu(s, c)) {
        return c == this_cpu;
    }
    local.first() == Some(this_cpu)
}

/// Size the per-domain balance state of `cpu` (interval at `min_interval`, no failures) if the
/// boot code left it empty.
///
/// Linux: kernel/sched/topology.c sd_init() (`balance_interval = sd_weight`).
fn ensure_balance_state(s: &mut SchedState, cpu: CpuId) {
    let nd = s.topo.domains[cpu.idx()].len();
    let rq = &mut s.rqs[cpu.idx()];
    if rq.balance_interval_ms.len() < nd {
        let mins: Vec<u64> = s.topo.domains[cpu.idx()]
            .iter()
            .map(|d| d.min_interval_ms)
            .collect();
        rq.balance_interval_ms = mins;
        rq.nr_balance_failed.resize(nd, 0);
        rq.last_balance.resize(nd, 0);
    }
}

/// One balance pass of domain `level` of `this_cpu` (F-44…F-47). Takes and releases the
/// source and then the destination rq lock, one at a time; called with no rq lock held.
/// Returns the number of tasks moved.
///
/// Linux: kernel/sched/fair.c sched_balance_rq() (load_balance()).
///
/// The pass over the top domain also refreshes `rd_overloaded` (some CPU with ≥ 2 tasks), as
/// update_sd_lb_stats() does at the root.
///
/// Deviation: no active balance (F-47's stopper push of a running task) and no
/// LBF_NEED_BREAK / LBF_DST_PINNED / LBF_ALL_PINNED redo loops.
async fn sched_balance_rq(
    k: &Kernel,
    this_cpu: CpuId,
    level: usize,
    idle: IdleType,
    continue_balancing: &mut bool,
) -> u32 {
    let plan = {
        let mut s = k.st();
        ensure_balance_state(&mut s, this_cpu);
        let doms = &s.topo.domains[this_cpu.idx()];
        let dom = &doms[level];
        let child_prefer_sibling = level > 0 && doms[level - 1].flags & sd::PREFER_SIBLING != 0;
        if !should_we_balance(&s, dom, this_cpu, idle) {
            *continue_balancing = false;
            None
        } else {
            let plan = find_busiest_group(&s, dom, child_prefer_sibling, this_cpu, idle)
                .and_then(|plan| find_busiest_queue(&s, &plan).map(|src| (plan, src)));
            // The top level refreshes the root domain's overload flag from what it saw.
            let top = level + 1 == doms.len();
            let overloaded = dom.span.iter().any(|c| s.rqs[c.idx()].nr_running > 1);
            if top {
                s.rd_overloaded = overloaded;
            }
            plan
        }
    };
    let Some((plan, src)) = plan else {
        // out_balanced / out_one_pinned
        let mut s = k.st();
        let rq = &mut s.rqs[this_cpu.idx()];
        rq.nr_balance_failed[level] = 0;
        if idle != IdleType::NewlyIdle {
            let max = s.topo.domains[this_cpu.idx()][level].max_interval_ms;
            let rq = &mut s.rqs[this_cpu.idx()];
            if rq.balance_interval_ms[level] < max {
                rq.balance_interval_ms[level] *= 2;
            }
        }
        return 0;
    };
    assert_ne!(src, this_cpu, "the busiest runqueue is the local one");

    k.rq_lock(src).await;
    let detached = {
        let mut s = k.st();
        core::update_rq_clock(&mut s, src);
        if s.rqs[src.idx()].nr_running > 1 {
            let dom = &s.topo.domains[this_cpu.idx()][level];
            let mut env = LbEnv {
                src,
                dst: this_cpu,
                idle,
                mtype: plan.mtype,
                imbalance: plan.imbalance,
                nr_balance_failed: s.rqs[this_cpu.idx()].nr_balance_failed[level],
                cache_nice_tries: dom.cache_nice_tries,
                loop_max: s.tun.nr_migrate.min(s.rqs[src.idx()].nr_running),
            };
            detach_tasks(&mut s, &mut env)
        } else {
            Vec::new()
        }
    };
    k.rq_unlock(src).await;
    if !detached.is_empty() {
        k.rq_lock(this_cpu).await;
        attach_tasks(&mut k.st(), this_cpu, &detached);
        k.rq_unlock(this_cpu).await;
    }

    let moved = detached.len() as u32;
    let mut s = k.st();
    let min = s.topo.domains[this_cpu.idx()][level].min_interval_ms;
    let rq = &mut s.rqs[this_cpu.idx()];
    if moved == 0 {
        if idle != IdleType::NewlyIdle {
            rq.nr_balance_failed[level] += 1;
        }
    } else {
        rq.nr_balance_failed[level] = 0;
    }
    // We were unbalanced: reset the interval.
    rq.balance_interval_ms[level] = min;
    moved
}

/// `get_sd_balance_interval()`: the domain's interval in jiffies (×busy_factor − 1 when the
/// CPU is busy), clamped to [1, HZ·ncpus/10] (F-42).
///
/// Linux: kernel/sched/fair.c get_sd_balance_interval().
fn get_sd_balance_interval(s: &SchedState, cpu: CpuId, level: usize, busy: bool) -> u64 {
    let dom = &s.topo.domains[cpu.idx()][level];
    let mut interval_ms = s.rqs[cpu.idx()].balance_interval_ms[level];
    if busy {
        interval_ms *= dom.busy_factor;
    }
    let mut j = (interval_ms * s.tun.hz).div_ceil(1000);
    if busy {
        j = j.saturating_sub(1);
    }
    let max = (s.tun.hz * s.nr_cpus() as u64 / 10).max(1);
    j.clamp(1, max)
}

/// Whether the tick should raise the balance softirq on `cpu` (`jiffies >= next_balance`,
/// F-42).
///
/// Linux: kernel/sched/fair.c sched_balance_trigger().
///
/// The other half of Linux's function, the kick of an idle load balancer for tick-stopped
/// CPUs, is `crate::sched::nohz::nohz_balancer_kick()`, called from the tick.
pub fn sched_balance_trigger(s: &SchedState, cpu: CpuId) -> bool {
    s.jiffies >= s.rqs[cpu.idx()].next_balance
}

/// The SCHED_SOFTIRQ pass (F-42, F-43, F-47), run when `jiffies >= rq.next_balance`, with no rq
/// lock held: every domain whose interval passed is balanced bottom-up, then
/// `rq.next_balance` is set to the earliest next due time.
///
/// Linux: kernel/sched/fair.c sched_balance_softirq() / sched_balance_domains().
///
/// The nohz idle load balancer runs this pass on behalf of each tickless CPU that is due
/// (`crate::sched::nohz`, `_nohz_idle_balance()`).
///
/// Deviation: no newidle cost decay.
pub async fn sched_balance_periodic(k: &Kernel, this_cpu: CpuId) {
    let nd = {
        let mut s = k.st();
        ensure_balance_state(&mut s, this_cpu);
        s.topo.domains[this_cpu.idx()].len()
    };
    let mut idle = if idle_cpu(&k.st(), this_cpu) {
        IdleType::Idle
    } else {
        IdleType::NotIdle
    };
    let mut busy = idle == IdleType::NotIdle && !sched_idle_cpu(&k.st(), this_cpu);
    let mut continue_balancing = true;
    let mut next_balance = {
        let s = k.st();
        s.jiffies + 60 * s.tun.hz
    };
    let mut update_next = false;
    for level in 0..nd {
        if !continue_balancing {
            break;
        }
        let (due, interval) = {
            let s = k.st();
            let interval = get_sd_balance_interval(&s, this_cpu, level, busy);
            (
                s.jiffies >= s.rqs[this_cpu.idx()].last_balance[level] + interval,
                interval,
            )
        };
        let mut interval = interval;
        if due {
            if sched_balance_rq(k, this_cpu, level, idle, &mut continue_balancing).await > 0 {
                let s = k.st();
                idle = if idle_cpu(&s, this_cpu) {
                    IdleType::Idle
                } else {
                    IdleType::NotIdle
                };
                busy = idle == IdleType::NotIdle && !sched_idle_cpu(&s, this_cpu);
            }
            let mut s = k.st();
            s.rqs[this_cpu.idx()].last_balance[level] = s.jiffies;
            interval = get_sd_balance_interval(&s, this_cpu, level, busy);
        }
        let last = k.st().rqs[this_cpu.idx()].last_balance[level];
        if next_balance > last + interval {
            next_balance = last + interval;
            update_next = true;
        }
    }
    if update_next {
        k.st().rqs[this_cpu.idx()].next_balance = next_balance;
    }
}

/// Balance from a CPU about to go idle (F-41). Called with `this_cpu`'s rq lock HELD; drops it
/// while balancing (other CPUs run meanwhile) and retakes it before returning. Returns >0 if a
/// task was pulled (or fair work appeared meanwhile), <0 if a higher class has work now
/// (RETRY_TASK), 0 otherwise.
///
/// Linux: kernel/sched/fair.c sched_balance_newidle().
///
/// Deviation: each domain's `max_newidle_lb_cost` is the modelled cost of one pass
/// (`costs.newidle_balance_ns`, K-10), charged with a delay per domain visited; Linux measures
/// and decays it. No NI_RANDOM skipping, no `nohz_newidle_balance()` kick (it updates blocked
/// load, which the model does not keep; see `crate::sched::nohz`).
pub async fn sched_balance_newidle(k: &Kernel, this_cpu: CpuId) -> i32 {
    assert!(
        k.rq_locked(this_cpu),
        "sched_balance_newidle needs the rq lock of cpu{this_cpu}"
    );
    let (proceed, cost_ns, nd) = {
        let mut s = k.st();
        ensure_balance_state(&mut s, this_cpu);
        if s.rqs[this_cpu.idx()].ttwu_pending {
            return 0;
        }
        let clock = s.rqs[this_cpu.idx()].clock;
        s.rqs[this_cpu.idx()].idle_stamp = clock;
        let nd = s.topo.domains[this_cpu.idx()].len();
        let cost_ns = s.costs.newidle_balance_ns;
        let proceed = s.rd_overloaded && !(nd > 0 && s.rqs[this_cpu.idx()].avg_idle_ns < cost_ns);
        (proceed, cost_ns, nd)
    };
    let mut next_balance = {
        let s = k.st();
        let mut nb = s.jiffies + s.tun.hz;
        if !proceed && nd > 0 {
            let interval = get_sd_balance_interval(&s, this_cpu, 0, false);
            nb = nb.min(s.rqs[this_cpu.idx()].last_balance[0] + interval);
        }
        nb
    };
    let mut pulled: i32 = 0;
    if proceed {
        k.rq_unlock(this_cpu).await;
        crate::sched::core::inject_remote_donor_swap(k, this_cpu).await;
        let mut curr_cost_ns = 0u64;
        let mut continue_balancing = true;
        for level in 0..nd {
            let (stop, has_newidle) = {
                let s = k.st();
                let interval = get_sd_balance_interval(&s, this_cpu, level, false);
                next_balance = next_balance.min(s.rqs[this_cpu.idx()].last_balance[level] + interval);
                let dom = &s.topo.domains[this_cpu.idx()][level];
                (
                    s.rqs[this_cpu.idx()].avg_idle_ns < curr_cost_ns + cost_ns,
                    dom.flags & sd::BALANCE_NEWIDLE != 0,
                )
            };
            if stop {
                break;
            }
            if has_newidle {
                let t0 = k.m.now();
                k.m.delay(cost_ns).await;
                pulled = sched_balance_rq(k, this_cpu, level, IdleType::NewlyIdle, &mut continue_balancing)
                    .await as i32;
                curr_cost_ns += k.m.now() - t0;
            }
            if pulled > 0 || !continue_balancing {
                break;
            }
        }
        k.rq_lock(this_cpu).await;
        let mut s = k.st();
        let rq = &mut s.rqs[this_cpu.idx()];
        if curr_cost_ns > rq.max_idle_balance_cost_ns {
            rq.max_idle_balance_cost_ns = curr_cost_ns;
        }
        // The lock was dropped: work may have arrived meanwhile.
        if rq.cfs.h_nr_queued > 0 && pulled == 0 {
            pulled = 1;
        }
        if rq.nr_running != rq.cfs.h_nr_queued {
            pulled = -1;
        }
    }
    let mut s = k.st();
    let rq = &mut s.rqs[this_cpu.idx()];
    if rq.next_balance > next_balance {
        rq.next_balance = next_balance;
    }
    if pulled != 0 {
        rq.idle_stamp = 0;
    }
    pulled
}

// ---------------------------------------------------------------------- fork/exec slow path

/// Load statistics of a group for placing a new task.
///
/// Linux: kernel/sched/fair.c update_sg_wakeup_stats().
///
/// The task being placed does not count where it is queued (an exec'ing task runs on this
/// CPU; a forked one is not queued yet), as Linux's cpu_load_without() and
/// idle_cpu_without() arrange.
fn update_sg_wakeup_stats(s: &SchedState, dom: &SchedDomain, group: &CpuMask, p: TaskId) -> SgStats {
    let mut g = SgStats::default();
    let t = &s.tasks[p.idx()];
    for c in group.iter() {
        let rq = &s.rqs[c.idx()];
        let here = t.se.on_rq && t.cpu == c;
        let (load, nr, h_nr) = if here {
            (
                cpu_load(s, c) - t.se.weight,
                rq.nr_running - 1,
                rq.cfs.h_nr_runnable - 1,
            )
        } else {
            (cpu_load(s, c), rq.nr_running, rq.cfs.h_nr_runnable)
        };
        g.load += load;
        g.nr_running += nr;
        g.h_nr_running += h_nr;
        g.util += h_nr.min(1) as u64 * SCHED_CAPACITY_SCALE;
        let idle = rq.wake_list.is_empty() && !rq.ttwu_pending && (rq.curr == rq.idle || rq.curr == p);
        if nr == 0 && idle {
            g.idle_cpus += 1;
        }
        g.weight += 1;
        g.capacity += SCHED_CAPACITY_SCALE;
    }
    let ty = group_classify(dom.imbalance_pct, &g);
    g.group_type = Some(ty);
    if ty != GroupType::HasSpare {
        g.avg_load = g.load * SCHED_CAPACITY_SCALE / g.capacity;
    }
    g
}

/// The least busy group of `dom` for `p`, or `None` to stay in the local group (F-33).
///
/// Linux: kernel/sched/fair.c sched_balance_find_dst_group().
///
/// Deviation: "lowest group_util" among has-spare groups compares task counts.
fn sched_balance_find_dst_group(
    s: &SchedState,
    dom: &SchedDomain,
    p: TaskId,
    this_cpu: CpuId,
) -> Option<CpuMask> {
    let mask = *s.cpus_mask(&s.tasks[p.idx()]);
    let n = dom.groups.len();
    let li = dom.groups.iter().position(|g| g.test(this_cpu));
    let start = li.unwrap_or(0);
    let mut local: Option<SgStats> = None;
    let mut idlest: Option<(CpuMask, SgStats)> = None;
    for k in 0..n {
        let gi = (start + k) % n;
        let group = &dom.groups[gi];
        if !group.intersects(&mask) {
            continue;
        }
        let g = update_sg_wakeup_stats(s, dom, group, p);
        if Some(gi) == li {
            local = Some(g);
            continue;
        }
        let better = match &idlest {
            None => true,
            Some((_, b)) => {
                if g.ty() != b.ty() {
                    g.ty() < b.ty()
                } else {
                    match g.ty() {
                        GroupType::Overloaded | GroupType::FullyBusy => g.avg_load < b.avg_load,
                        GroupType::HasSpare => {
                            g.idle_cpus > b.idle_cpus
                                || (g.idle_cpus == b.idle_cpus && g.h_nr_running < b.h_nr_running)
                        }
                    }
                }
            }
        };
        if better {
            idlest = Some((*group, g));
        }
    }
    let (ig, i) = idlest?;
    let Some(l) = local else {
        return Some(ig);
    };
    if l.ty() < i.ty() {
        return None;
    }
    if l.ty() > i.ty() {
        return Some(ig);
    }
    match l.ty() {
        GroupType::Overloaded | GroupType::FullyBusy => {
            let imbalance = NICE_0_LOAD * (dom.imbalance_pct as u64 - 100) / 100;
            if i.avg_load >= l.avg_load + imbalance {
                return None;
            }
            if 100 * l.avg_load <= dom.imbalance_pct as u64 * i.avg_load {
                return None;
            }
        }
        GroupType::HasSpare => {
            if l.idle_cpus >= i.idle_cpus {
                return None;
            }
        }
    }
    Some(ig)
}

/// The best CPU of a group for a new task: a SCHED_IDLE-only CPU, else the most recently
/// idled idle CPU, else the least loaded allowed CPU (`this_cpu` if none is less loaded).
///
/// Linux: kernel/sched/fair.c sched_balance_find_dst_group_cpu().
///
/// Deviation: no cpuidle exit latencies: among idle CPUs the latest `idle_stamp` wins.
fn sched_balance_find_dst_group_cpu(s: &SchedState, group: &CpuMask, p: TaskId, this_cpu: CpuId) -> CpuId {
    if group.weight() == 1 {
        return group.first().expect("non-empty group");
    }
    let mut min_load = u64::MAX;
    let mut least_loaded = this_cpu;
    let mut shallowest: Option<CpuId> = None;
    let mut latest_idle_ts = 0;
    for c in group.and(s.cpus_mask(&s.tasks[p.idx()])).iter() {
        if sched_idle_cpu(s, c) {
            return c;
        }
        if available_idle_cpu(s, c) {
            let ts = s.rqs[c.idx()].idle_stamp;
            if shallowest.is_none() || ts > latest_idle_ts {
                latest_idle_ts = ts;
                shallowest = Some(c);
            }
        } else if shallowest.is_none() {
            let load = cpu_load(s, c);
            if load < min_load {
                min_load = load;
                least_loaded = c;
            }
        }
    }
    shallowest.unwrap_or(least_loaded)
}

/// The fork/exec slow path (F-33): walk down from the highest BALANCE_FORK/EXEC domain
/// choosing the idlest group and its best CPU.
///
/// Linux: kernel/sched/fair.c sched_balance_find_dst_cpu().
fn sched_balance_find_dst_cpu(
    s: &SchedState,
    p: TaskId,
    cpu: CpuId,
    prev_cpu: CpuId,
    level: usize,
    sd_flag: u32,
) -> CpuId {
    let mut cpu = cpu;
    let mut new_cpu = cpu;
    let mask = *s.cpus_mask(&s.tasks[p.idx()]);
    if !s.topo.domains[cpu.idx()][level].span.intersects(&mask) {
        return prev_cpu;
    }
    let mut level = Some(level);
    // Each step moves to a strictly lower level or a smaller span: bounded by the depth.
    let mut steps = 0;
    while let Some(l) = level {
        steps += 1;
        assert!(steps <= 4 * s.nr_cpus() + 8, "find_dst_cpu did not terminate");
        let dom = &s.topo.domains[cpu.idx()][l];
        let child = l.checked_sub(1);
        if dom.flags & sd_flag == 0 {
            level = child;
            continue;
        }
        let Some(group) = sched_balance_find_dst_group(s, dom, p, cpu) else {
            level = child;
            continue;
        };
        new_cpu = sched_balance_find_dst_group_cpu(s, &group, p, cpu);
        if new_cpu == cpu {
            level = child;
            continue;
        }
        let weight = dom.span.weight();
        cpu = new_cpu;
        level = None;
        for (i, tmp) in s.topo.domains[cpu.idx()].iter().enumerate() {
            if weight <= tmp.span.weight() {
                break;
            }
            if tmp.flags & sd_flag != 0 {
                level = Some(i);
            }
        }
    }
    new_cpu
}

#[cfg(test)]
mod tests {
    //! Placement checked on a bare state; balancing run on the simulated machine, so the
    //! lock dropping and retaking really happens.

    use std::cell::Cell;
    use std::rc::Rc;

    use sim::Executor;

    use super::*;

    use crate::sched::fair::set_next_task_fair;
    use crate::sched::fair::test_util::new_for_tests;
    use crate::task::task_ctx;
    use crate::task::OnRq;

    /// Make `p` (queued on `cpu`) the running task there.
    fn run(s: &mut SchedState, cpu: CpuId, p: TaskId) {
        set_next_task_fair(s, cpu, p, true);
        let idle = s.rqs[cpu.idx()].idle;
        s.tasks[idle.idx()].on_cpu = false;
        s.tasks[p.idx()].on_cpu = true;
        s.rqs[cpu.idx()].curr = p;
        s.rqs[cpu.idx()].donor = p;
    }

    fn queue(s: &mut SchedState, cpu: CpuId, p: TaskId) {
        s.tasks[p.idx()].cpu = cpu;
        core::activate_task(s, cpu, p, EnqueueFlags::WAKEUP);
    }

    /// 2 CPUs: CPU 0 runs task 2 with 3 and 4 waiting (queued in that order); CPU 1 idle.
    /// Clocks at 10 ms, jiffies 100.
    fn overloaded_pair() -> SchedState {
        let mut s = new_for_tests(2, 3);
        for p in [2, 3, 4].map(TaskId) {
            queue(&mut s, CpuId(0), p);
        }
        run(&mut s, CpuId(0), TaskId(2));
        for c in 0..2 {
            s.rqs[c].clock = 10_000_000;
            s.rqs[c].clock_task = 10_000_000;
        }
        s.jiffies = 100;
        s
    }

    fn kernel(s: SchedState) -> Rc<Kernel> {
        Kernel::from_state(s)
    }

    fn run_machine(k: &Rc<Kernel>) {
        let mut ex = Executor::new(k.m.clone());
        ex.run(1_000_000_000, &mut |_| true);
        assert!(k.violations.borrow().is_empty(), "{:?}", k.violations.borrow());
    }

    /// Run one `sched_balance_periodic()` pass for CPU 1 on CPU 1, to completion.
    fn balance_periodic_on_cpu1(s: SchedState) -> Rc<Kernel> {
        let k = kernel(s);
        let k2 = k.clone();
        k.m.spawn(task_ctx(TaskId(0)), async move {
            sched_balance_periodic(&k2, CpuId(1)).await;
            k2.m.halt().await;
        });
        k.m.boot_cpu(CpuId(1), task_ctx(TaskId(0)));
        run_machine(&k);
        k
    }

    #[test]
    fn periodic_balance_pulls_the_least_recently_run_cold_task() {
        let mut s = overloaded_pair();
        // cfs_tasks is MRU-first: [2 (running), 4, 3]. The scan starts at 3, which ran 0.1 ms
        // ago (cache hot, first failure ≤ cache_nice_tries): it is skipped and 4 is taken.
        s.tasks[3].se.exec_start = 10_000_000 - 100_000;
        let k = balance_periodic_on_cpu1(s);
        let s = k.st();
        assert_eq!(s.tasks[4].cpu, CpuId(1));
        assert_eq!(s.tasks[4].on_rq, OnRq::Queued);
        assert_eq!(s.tasks[3].cpu, CpuId(0));
        assert_eq!(s.rqs[0].nr_running, 2);
        assert_eq!(s.rqs[1].nr_running, 1);
        assert_eq!(s.rqs[1].cfs.load_weight, 1024);
        assert!(s.tasks[1].need_resched, "CPU 1's idle task is told to reschedule");
        assert_eq!(s.rqs[1].nr_balance_failed[0], 0);
        assert_eq!(s.rqs[1].balance_interval_ms[0], 2);
        // CPU 1 is now busy: next pass in 2 ms × busy_factor 16 − 1 = 31 jiffies.
        assert_eq!(s.rqs[1].last_balance[0], 100);
        assert_eq!(s.rqs[1].next_balance, 131);
    }

    #[test]
    fn periodic_balance_counts_a_failure_when_every_task_is_cache_hot() {
        let mut s = overloaded_pair();
        s.tasks[3].se.exec_start = 10_000_000 - 100_000;
        s.tasks[4].se.exec_start = 10_000_000 - 100_000;
        let k = balance_periodic_on_cpu1(s);
        let s = k.st();
        assert_eq!(s.rqs[1].nr_running, 0);
        assert_eq!(s.rqs[1].nr_balance_failed[0], 1);
    }

    #[test]
    fn periodic_balance_leaves_one_task_per_cpu_alone_and_backs_off() {
        let mut s = new_for_tests(2, 1);
        queue(&mut s, CpuId(0), TaskId(2));
        run(&mut s, CpuId(0), TaskId(2));
        s.jiffies = 100;
        s.rd_overloaded = true; // stale: nobody has two tasks
        let k = balance_periodic_on_cpu1(s);
        let s = k.st();
        assert_eq!(s.rqs[0].nr_running, 1);
        // Balanced: the interval doubles (2 → 4 ms, max 4).
        assert_eq!(s.rqs[1].balance_interval_ms[0], 4);
        assert!(!s.rd_overloaded, "the root-level pass clears the overload flag");
    }

    #[test]
    fn newidle_balance_drops_the_lock_pulls_one_task_and_retakes_it() {
        let s = overloaded_pair();
        let k = kernel(s);
        let k2 = k.clone();
        let result = Rc::new(Cell::new(i32::MIN));
        let r2 = result.clone();
        k.m.spawn(task_ctx(TaskId(0)), async move {
            k2.rq_lock(CpuId(1)).await;
            let pulled = sched_balance_newidle(&k2, CpuId(1)).await;
            assert!(k2.rq_locked(CpuId(1)), "returns with the rq lock held");
            r2.set(pulled);
            k2.rq_unlock(CpuId(1)).await;
            k2.m.halt().await;
        });
        k.m.boot_cpu(CpuId(1), task_ctx(TaskId(0)));
        run_machine(&k);
        assert_eq!(result.get(), 1);
        let s = k.st();
        // Tasks 3 and 4 are cold (never ran); the scan starts at the LRU end: task 3.
        assert_eq!(s.tasks[3].cpu, CpuId(1));
        assert_eq!(s.rqs[1].nr_running, 1);
        assert_eq!(s.rqs[0].nr_running, 2);
        assert_eq!(s.rqs[1].idle_stamp, 0, "pulled: not going idle");
    }

    #[test]
    fn newidle_balance_does_nothing_without_overload() {
        let mut s = overloaded_pair();
        s.rd_overloaded = false;
        let k = kernel(s);
        let k2 = k.clone();
        let result = Rc::new(Cell::new(i32::MIN));
        let r2 = result.clone();
        k.m.spawn(task_ctx(TaskId(0)), async move {
            k2.rq_lock(CpuId(1)).await;
            r2.set(sched_balance_newidle(&k2, CpuId(1)).await);
            k2.rq_unlock(CpuId(1)).await;
            k2.m.halt().await;
        });
        k.m.boot_cpu(CpuId(1), task_ctx(TaskId(0)));
        run_machine(&k);
        assert_eq!(result.get(), 0);
        assert_eq!(k.st().rqs[1].nr_running, 0);
    }

    /// 4 CPUs, one LLC: CPUs 0 and 2 each run one nice-0 task (tasks 4 and 5), 1 and 3 idle.
    /// Task 6 sleeps; it last ran on CPU 2.
    fn half_busy_quad() -> SchedState {
        let mut s = new_for_tests(4, 3);
        queue(&mut s, CpuId(0), TaskId(4));
        run(&mut s, CpuId(0), TaskId(4));
        queue(&mut s, CpuId(2), TaskId(5));
        run(&mut s, CpuId(2), TaskId(5));
        s.tasks[6].cpu = CpuId(2);
        s.tasks[6].recent_used_cpu = CpuId(2);
        s
    }

    #[test]
    fn wakeup_scans_the_llc_from_after_the_target() {
        let s = half_busy_quad();
        // Waker (task 4) on CPU 0, prev 2. wake_affine: neither CPU idle; WA_WEIGHT: this =
        // (1024 + 1024)·100·1024 vs prev = (1024 − 1024)·108·1024 = 0 ⇒ stay on prev (2).
        // select_idle_sibling(2): 2 busy ⇒ scan 3, 0, 1 ⇒ CPU 3 (a scan from CPU 0 would
        // answer 1).
        assert_eq!(
            select_task_rq_fair_dry_run(&s, TaskId(6), CpuId(2), WakeFlags::TTWU),
            CpuId(3)
        );
        // CURRENT_CPU: the waker's CPU when allowed.
        assert_eq!(
            select_task_rq_fair_dry_run(&s, TaskId(6), CpuId(2), WakeFlags::TTWU | WakeFlags::CURRENT_CPU),
            CpuId(0)
        );
    }

    #[test]
    fn wakeup_prefers_an_idle_prev_and_respects_affinity() {
        let mut s = half_busy_quad();
        // prev 3 is idle: WA_IDLE picks it, and select_idle_sibling keeps it.
        assert_eq!(
            select_task_rq_fair_dry_run(&s, TaskId(6), CpuId(3), WakeFlags::TTWU),
            CpuId(3)
        );
        // Only CPUs 0–2 allowed: the scan from 3 wraps and finds 1.
        let mut mask = *s.cpus_mask(&s.tasks[6]);
        mask.clear(CpuId(3));
        s.set_cpus_mask(TaskId(6), mask);
        assert_eq!(
            select_task_rq_fair_dry_run(&s, TaskId(6), CpuId(2), WakeFlags::TTWU),
            CpuId(1)
        );
    }

    #[test]
    fn wakeup_side_effects_record_the_wakee_and_recent_cpu() {
        let mut s = half_busy_quad();
        assert_eq!(
            select_task_rq_fair(&mut s, TaskId(6), CpuId(2), WakeFlags::TTWU),
            CpuId(3)
        );
        assert_eq!(s.tasks[4].last_wakee, Some(TaskId(6)));
        assert_eq!(s.tasks[4].wakee_flips, 1);
        assert_eq!(s.tasks[6].recent_used_cpu, CpuId(2));
    }

    #[test]
    fn exec_does_not_count_the_exec_ing_task_against_its_own_cpu() {
        let s = half_busy_quad();
        // Task 4 execs on CPU 0, where it is the only task: without it CPU 0 is idle, as idle
        // as the idlest other group, so the task stays (counting it would send it to CPU 1).
        assert_eq!(
            select_task_rq_fair_dry_run(&s, TaskId(4), CpuId(0), WakeFlags::EXEC),
            CpuId(0)
        );
    }

    #[test]
    fn task_h_load_is_the_tasks_part_of_its_groups_load() {
        // Group /g (shares 1024) with four nice-0 tasks, all on CPU 0: the root holds one
        // entity of 1024, so each task stands for 1024·1024/4096 = 256 of CPU 0's load (a
        // flat view would say 1024 each, four times the CPU's whole load). A root task's
        // h_load is its weight.
        let mut s = new_for_tests(2, 5);
        let g = crate::sched::cgroup::sched_create_group(&mut s, "/g", 0, 1024);
        for p in 2..6 {
            s.tasks[p].sched_task_group = g;
            queue(&mut s, CpuId(0), TaskId(p as u32));
        }
        assert_eq!(cpu_load(&s, CpuId(0)), 1024);
        for p in 2..6 {
            assert_eq!(task_h_load(&s, TaskId(p)), 256);
        }
        queue(&mut s, CpuId(0), TaskId(6));
        assert_eq!(task_h_load(&s, TaskId(6)), 1024);
        // Nested: /g/h (shares 1024) takes task 5 out of /g's direct tasks; /g's cfs_rq now
        // holds three tasks and /g/h's entity (1024): 4096 in all, so /g/h's h_load is
        // 1024·1024/4096 = 256 and task 5, alone in /g/h, has all of it.
        let h = crate::sched::cgroup::sched_create_group(&mut s, "/g/h", g, 1024);
        core::deactivate_task(&mut s, CpuId(0), TaskId(5), DequeueFlags::empty());
        s.tasks[5].sched_task_group = h;
        core::activate_task(&mut s, CpuId(0), TaskId(5), EnqueueFlags::empty());
        assert_eq!(task_h_load(&s, TaskId(5)), 256);
        assert_eq!(task_h_load(&s, TaskId(2)), 256);
    }

    #[test]
    fn fork_goes_to_the_first_idlest_group() {
        let s = half_busy_quad();
        // Groups from CPU 0: {0} fully busy (local), {1} idle, {2} busy, {3} idle: {1} is the
        // first of the two idlest, and it beats the busy local group.
        assert_eq!(
            select_task_rq_fair_dry_run(&s, TaskId(6), CpuId(0), WakeFlags::FORK),
            CpuId(1)
        );
    }
}
