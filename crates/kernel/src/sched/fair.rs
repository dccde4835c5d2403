//! The fair class: EEVDF (Earliest Eligible Virtual Deadline First).
//!
//! Linux: kernel/sched/fair.c (the class hooks and the EEVDF math). Placement of waking and
//! forked tasks and load balancing live in [`crate::sched::fair_balance`].
//!
//! One flat queue per CPU (no group scheduling, F-48). Every hook here runs with the rq lock of
//! `cpu` held and never drops it (S-4).
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

use std::collections::BTreeSet;

use sim::user::Policy;
use sim::{CpuId, Nanos};

use crate::sched::core;
use crate::sched::{dequeue, enqueue, wf, Class, SchedState};
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
    /// Total time this task executed (`sum_exec_runtime`).
    pub sum_exec_runtime: Nanos,
    pub prev_sum_exec_runtime: Nanos,
    /// This entity's tree key while it is in the tree: (deadline at insertion, insertion
    /// number). Linux removes an rbtree node by pointer, so the deadline may be rewritten
    /// (made relative) just before removal; the model removes by the saved key.
    pub tree_key: (u64, u64),
}

/// `struct cfs_rq` (one flat queue per CPU). Protected by: the rq lock.
#[derive(Clone, Debug)]
pub struct CfsRq {
    /// Queued tasks including `curr` and delayed ones (`h_nr_queued`).
    pub h_nr_queued: u32,
    /// Queued tasks that are not delayed (`h_nr_runnable`).
    pub h_nr_runnable: u32,
    /// Queued entities (`nr_queued`); equals `h_nr_queued` outside a requeue in progress.
    pub nr_queued: u32,
    /// Sum of queued weights including `curr` and delayed ones (`cfs_rq->load.weight`).
    pub load_weight: u64,
    /// The entity set as next (`cfs_rq->curr`); outside the tree while set.
    pub curr: Option<TaskId>,
    /// The timeline (`tasks_timeline`): entities other than `curr`, ordered by
    /// (deadline, insertion number, id).
    pub tree: BTreeSet<(u64, u64, TaskId)>,
    /// Next insertion number.
    pub tree_seq: u64,
    /// `Σ wᵢ·(vᵢ − zero_vruntime)` over the tree (`sum_w_vruntime`, kernel `avg_vruntime`).
    pub sum_w_vruntime: i128,
    /// `Σ wᵢ` over the tree (`sum_weight`, kernel `avg_load`).
    pub sum_weight: u64,
    /// Reference point of the sums (`zero_vruntime`; [6.12] `min_vruntime`).
    pub zero_vruntime: u64,
    /// Next buddy (`cfs_rq->next`), set only with NEXT_BUDDY.
    pub next: Option<TaskId>,
    /// `rq->cfs_tasks`: queued fair tasks, most recently run first (balancer scan order).
    pub tasks: Vec<TaskId>,
}

impl Default for CfsRq {
    fn default() -> Self {
        CfsRq {
            h_nr_queued: 0,
            h_nr_runnable: 0,
            nr_queued: 0,
            load_weight: 0,
            curr: None,
            tree: BTreeSet::new(),
            tree_seq: 0,
            sum_w_vruntime: 0,
            sum_weight: 0,
            zero_vruntime: VRUNTIME_ORIGIN,
            next: None,
            tasks: Vec::new(),
        }
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
fn floor_div(a: i128, b: i128) -> i128 {
    assert!(b > 0);
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
fn avg_vruntime_add(cfs: &mut CfsRq, se: &SchedEntity) {
    let key = vdiff(se.vruntime, cfs.zero_vruntime) as i128;
    cfs.sum_w_vruntime += key * se.weight as i128;
    cfs.sum_weight += se.weight;
}

/// Remove an entity from the tree sums.
///
/// Linux: kernel/sched/fair.c avg_vruntime_sub() / sum_w_vruntime_sub().
fn avg_vruntime_sub(cfs: &mut CfsRq, se: &SchedEntity) {
    let key = vdiff(se.vruntime, cfs.zero_vruntime) as i128;
    cfs.sum_w_vruntime -= key * se.weight as i128;
    assert!(cfs.sum_weight >= se.weight, "cfs sum_weight underflow");
    cfs.sum_weight -= se.weight;
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
fn update_zero_vruntime(s: &mut SchedState, cpu: CpuId) {
    let v = avg_vruntime_of(s, cpu);
    let cfs = &mut s.rqs[cpu as usize].cfs;
    let delta = vdiff(v, cfs.zero_vruntime) as i128;
    cfs.sum_w_vruntime -= cfs.sum_weight as i128 * delta;
    cfs.zero_vruntime = v;
}

/// The entity in `cfs_rq->curr`, if any.
///
/// Linux: kernel/sched/sched.h struct cfs_rq::curr.
fn curr_se(s: &SchedState, cpu: CpuId) -> Option<&SchedEntity> {
    s.rqs[cpu as usize].cfs.curr.map(|c| &s.tasks[c as usize].se)
}

/// `avg_vruntime(cfs_rq)` of `cpu`'s queue.
///
/// Linux: kernel/sched/fair.c avg_vruntime().
pub fn avg_vruntime_of(s: &SchedState, cpu: CpuId) -> u64 {
    avg_vruntime(&s.rqs[cpu as usize].cfs, curr_se(s, cpu))
}

/// Whether task `p` (queued on `cpu`) is eligible.
///
/// Linux: kernel/sched/fair.c entity_eligible().
pub fn entity_eligible(s: &SchedState, cpu: CpuId, p: TaskId) -> bool {
    vruntime_eligible(
        &s.rqs[cpu as usize].cfs,
        curr_se(s, cpu),
        s.tasks[p as usize].se.vruntime,
    )
}

/// `V − v` clamped to ±max(2·slice, TICK_NSEC) in `p`'s virtual time (F-5).
///
/// Linux: kernel/sched/fair.c update_entity_lag().
fn update_entity_lag(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let v = avg_vruntime_of(s, cpu);
    let tick_ns = s.tun.tick_ns();
    let se = &mut s.tasks[p as usize].se;
    let lag = vdiff(v, se.vruntime);
    let limit = calc_delta_fair((2 * se.slice).max(tick_ns), se.weight) as i64;
    se.vlag = lag.clamp(-limit, limit);
}

// ---------------------------------------------------------------------- the tree

/// Insert `p` into the timeline and the sums.
///
/// Linux: kernel/sched/fair.c __enqueue_entity().
fn enqueue_tree(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let cfs = &mut s.rqs[cpu as usize].cfs;
    let se = &mut s.tasks[p as usize].se;
    assert_ne!(cfs.curr, Some(p), "curr is kept outside the tree (T-9b)");
    se.tree_key = (se.deadline, cfs.tree_seq);
    cfs.tree_seq += 1;
    avg_vruntime_add(cfs, se);
    let fresh = cfs.tree.insert((se.tree_key.0, se.tree_key.1, p));
    assert!(fresh, "task {p} inserted twice into the cfs tree of cpu{cpu}");
    update_zero_vruntime(s, cpu);
}

/// Remove `p` from the timeline and the sums.
///
/// Linux: kernel/sched/fair.c __dequeue_entity().
fn dequeue_tree(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let cfs = &mut s.rqs[cpu as usize].cfs;
    let se = &s.tasks[p as usize].se;
    let was = cfs.tree.remove(&(se.tree_key.0, se.tree_key.1, p));
    assert!(was, "task {p} not in the cfs tree of cpu{cpu}");
    avg_vruntime_sub(cfs, se);
    update_zero_vruntime(s, cpu);
}

/// Smallest slice among queued entities (tree and queued curr), `u64::MAX` if none.
///
/// Linux: kernel/sched/fair.c cfs_rq_min_slice().
///
/// Deviation: a scan of the tree instead of the `min_slice` augmentation (same result).
fn cfs_rq_min_slice(s: &SchedState, cpu: CpuId) -> u64 {
    let cfs = &s.rqs[cpu as usize].cfs;
    let mut min = u64::MAX;
    if let Some(c) = curr_se(s, cpu).filter(|c| c.on_rq) {
        min = c.slice;
    }
    for &(_, _, t) in &cfs.tree {
        min = min.min(s.tasks[t as usize].se.slice);
    }
    min
}

/// `cfs_rq->next = None` if it is `p`.
///
/// Linux: kernel/sched/fair.c clear_buddies().
fn clear_buddies(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let cfs = &mut s.rqs[cpu as usize].cfs;
    if cfs.next == Some(p) {
        cfs.next = None;
    }
}

// ---------------------------------------------------------------------- slices and protection

/// Start a new request when `v` reached `d` (F-2): `d = v + slice·1024/w`. True if it did.
///
/// Linux: kernel/sched/fair.c update_deadline().
fn update_deadline(s: &mut SchedState, p: TaskId) -> bool {
    let base = base_slice_ns(s);
    let se = &mut s.tasks[p as usize].se;
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
fn set_protect_slice(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let mut slice = s.tun.base_slice_normalized_ns;
    if s.feat.run_to_parity {
        slice = cfs_rq_min_slice(s, cpu);
    }
    let se = &mut s.tasks[p as usize].se;
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

/// Shorten the protection of `p` to the smallest queued slice (after a wakeup that did not
/// preempt).
///
/// Linux: kernel/sched/fair.c update_protect_slice().
fn update_protect_slice(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    let slice = cfs_rq_min_slice(s, cpu);
    let se = &mut s.tasks[p as usize].se;
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

/// Charge the time since `exec_start` (F-2): virtual time to the scheduling context
/// (`cfs_rq->curr`, the donor's entity) and `sum_exec_runtime` to the execution context
/// (`rq->curr`); refresh the deadline; lazily reschedule when a new request starts or the
/// protection has ended and another entity is queued.
///
/// Linux: kernel/sched/fair.c update_curr() and update_se().
///
/// Deviation: no CFS bandwidth (quota) charging: the model has no cgroups.
fn update_curr(s: &mut SchedState, cpu: CpuId) {
    let Some(c) = s.rqs[cpu as usize].cfs.curr else {
        return;
    };
    let now = s.rqs[cpu as usize].clock_task;
    let running = s.rqs[cpu as usize].curr;
    let delta = now as i64 - s.tasks[c as usize].se.exec_start as i64;
    if delta <= 0 {
        return;
    }
    let delta = delta as u64;
    s.tasks[c as usize].se.exec_start = now;
    // Execution time goes to the task that ran; with Proxy Execution it may differ from the
    // donor whose entity `c` is (A2/A3).
    let r = &mut s.tasks[running as usize].se;
    r.exec_start = now;
    r.sum_exec_runtime += delta;
    // Fair execution drains the fair server's budget, through it or not (D-20).
    crate::sched::deadline::dl_server_update(s, cpu, delta);

    let se = &mut s.tasks[c as usize].se;
    se.vruntime = se.vruntime.wrapping_add(calc_delta_fair(delta, se.weight));
    let resched = update_deadline(s, c);

    if s.rqs[cpu as usize].cfs.nr_queued == 1 {
        return;
    }
    if resched || !protect_slice(&s.tasks[c as usize].se) {
        core::resched_curr_lazy(s, cpu);
        clear_buddies(s, cpu, c);
    }
}

/// The class hook `update_curr` (the core calls it before reading runtimes).
///
/// Linux: kernel/sched/fair.c update_curr_fair().
pub fn update_curr_fair(s: &mut SchedState, cpu: CpuId) {
    update_curr(s, cpu);
}

// ---------------------------------------------------------------------- placement

/// Place an entity joining the queue (F-12, F-13): `v = V − vlag·(W+w)/W` with PLACE_LAG,
/// restore a relative deadline, else `d = v + slice·1024/w` (halved for new tasks).
///
/// Linux: kernel/sched/fair.c place_entity().
fn place_entity(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: u32) {
    let v_avg = avg_vruntime_of(s, cpu);
    let base = base_slice_ns(s);
    let place_lag = s.feat.place_lag;
    let initial_half = s.feat.place_deadline_initial && flags & enqueue::INITIAL != 0;
    let cfs = &s.rqs[cpu as usize].cfs;
    let mut load = cfs.sum_weight;
    if let Some(c) = curr_se(s, cpu).filter(|c| c.on_rq) {
        load += c.weight;
    }
    let nr_queued = cfs.nr_queued;
    let se = &mut s.tasks[p as usize].se;
    if !se.custom_slice {
        se.slice = base;
    }
    let mut vslice = calc_delta_fair(se.slice, se.weight);
    let mut lag: i64 = 0;
    if place_lag && nr_queued > 0 && se.vlag != 0 {
        // The entity joining shifts V toward itself by w·lag/(W+w); inflate the lag so that
        // after the shift it still has exactly `vlag` (kernel comment on place_entity).
        assert!(load > 0, "queue with entities but no weight on cpu{cpu}");
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
/// Linux: kernel/sched/fair.c enqueue_entity().
fn enqueue_entity(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: u32) {
    let is_curr = s.rqs[cpu as usize].cfs.curr == Some(p);
    // A re-queued curr is placed before update_curr so its own runtime is not double-counted
    // in V (kernel comment on enqueue_entity).
    if is_curr {
        place_entity(s, cpu, p, flags);
    }
    update_curr(s, cpu);
    if !is_curr {
        place_entity(s, cpu, p, flags);
    }
    let w = s.tasks[p as usize].se.weight;
    let cfs = &mut s.rqs[cpu as usize].cfs;
    cfs.load_weight += w;
    cfs.nr_queued += 1;
    assert!(!cfs.tasks.contains(&p), "task {p} twice on cfs_tasks of cpu{cpu}");
    cfs.tasks.insert(0, p);
    if !is_curr {
        enqueue_tree(s, cpu, p);
    }
    s.tasks[p as usize].se.on_rq = true;
}

/// Mark `p` delayed; it no longer counts as runnable (F-20).
///
/// Linux: kernel/sched/fair.c set_delayed().
fn set_delayed(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    s.tasks[p as usize].se.sched_delayed = true;
    let cfs = &mut s.rqs[cpu as usize].cfs;
    assert!(cfs.h_nr_runnable > 0, "h_nr_runnable underflow on cpu{cpu}");
    cfs.h_nr_runnable -= 1;
}

/// End `p`'s delay; it counts as runnable again.
///
/// Linux: kernel/sched/fair.c clear_delayed().
fn clear_delayed(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    s.tasks[p as usize].se.sched_delayed = false;
    s.rqs[cpu as usize].cfs.h_nr_runnable += 1;
}

/// End a delay on full dequeue: clear the flag and cut positive lag (DELAY_ZERO, F-21).
///
/// Linux: kernel/sched/fair.c finish_delayed_dequeue_entity().
fn finish_delayed_dequeue_entity(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    clear_delayed(s, cpu, p);
    let se = &mut s.tasks[p as usize].se;
    if s.feat.delay_zero && se.vlag > 0 {
        se.vlag = 0;
    }
}

/// Dequeue one entity. Returns false when DELAY_DEQUEUE keeps a sleeping ineligible entity
/// queued (F-20).
///
/// Linux: kernel/sched/fair.c dequeue_entity().
fn dequeue_entity(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: u32) -> bool {
    let sleep = flags & dequeue::SLEEP != 0;
    update_curr(s, cpu);
    clear_buddies(s, cpu, p);
    if flags & dequeue::DELAYED != 0 {
        assert!(
            s.tasks[p as usize].se.sched_delayed,
            "DEQUEUE_DELAYED of a task that is not delayed"
        );
    } else {
        let delay = sleep && flags & dequeue::SPECIAL == 0;
        assert!(
            !(delay && s.tasks[p as usize].se.sched_delayed),
            "sleep-dequeue of an already delayed task {p}"
        );
        if s.feat.delay_dequeue && delay && !entity_eligible(s, cpu, p) {
            set_delayed(s, cpu, p);
            return false;
        }
    }
    update_entity_lag(s, cpu, p);
    if s.feat.place_rel_deadline && !sleep {
        let se = &mut s.tasks[p as usize].se;
        se.deadline = se.deadline.wrapping_sub(se.vruntime);
        se.rel_deadline = true;
    }
    if s.rqs[cpu as usize].cfs.curr != Some(p) {
        dequeue_tree(s, cpu, p);
    }
    s.tasks[p as usize].se.on_rq = false;
    let w = s.tasks[p as usize].se.weight;
    let cfs = &mut s.rqs[cpu as usize].cfs;
    assert!(cfs.load_weight >= w, "cfs load underflow on cpu{cpu}");
    cfs.load_weight -= w;
    assert!(cfs.nr_queued > 0);
    cfs.nr_queued -= 1;
    let pos = cfs
        .tasks
        .iter()
        .position(|&t| t == p)
        .expect("dequeued task missing from cfs_tasks");
    cfs.tasks.remove(pos);
    if flags & dequeue::DELAYED != 0 {
        finish_delayed_dequeue_entity(s, cpu, p);
    }
    true
}

/// Wake a delayed entity in place (F-22): with DELAY_ZERO, positive lag re-places it at lag 0;
/// then the delay ends.
///
/// Linux: kernel/sched/fair.c requeue_delayed_entity().
fn requeue_delayed_entity(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    assert!(
        s.tasks[p as usize].se.sched_delayed,
        "requeue of a task that is not delayed"
    );
    assert!(
        s.tasks[p as usize].se.on_rq,
        "requeue of a task that is not queued"
    );
    if s.feat.delay_zero {
        update_entity_lag(s, cpu, p);
        if s.tasks[p as usize].se.vlag > 0 {
            let is_curr = s.rqs[cpu as usize].cfs.curr == Some(p);
            s.rqs[cpu as usize].cfs.nr_queued -= 1;
            if !is_curr {
                dequeue_tree(s, cpu, p);
            }
            s.tasks[p as usize].se.vlag = 0;
            place_entity(s, cpu, p, 0);
            if !is_curr {
                enqueue_tree(s, cpu, p);
            }
            s.rqs[cpu as usize].cfs.nr_queued += 1;
        }
    }
    clear_delayed(s, cpu, p);
}

// ---------------------------------------------------------------------- class hooks

/// Fork-time set-up of the fair entity: weight from nice (SCHED_IDLE: 3, F-1), base slice or
/// the custom one clamped to [0.1, 100] ms (F-7), lag 0 (F-13). Called for every new task
/// (Linux sets the load weight whatever the class).
///
/// Linux: kernel/sched/core.c __sched_fork() and set_load_weight().
pub fn init_entity_fair(s: &mut SchedState, p: TaskId) {
    let base = base_slice_ns(s);
    let t = &mut s.tasks[p as usize];
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
    let t = &mut s.tasks[p as usize];
    assert!(!t.se.on_rq, "set_weight_unqueued of queued task {p}");
    t.se.weight = weight_of(t.policy, t.nice());
}

/// Set a fair task's requested slice from `sched_attr.sched_runtime` (F-7): non-zero ⇒ custom
/// slice clamped to [0.1, 100] ms; zero ⇒ back to the base slice. Called under `pi_lock` and
/// the task's rq lock, with a queued task dequeued around the change (sched_change), so the
/// next placement uses the new slice.
///
/// Linux: kernel/sched/syscalls.c __setscheduler_params() (its fair branch).
pub fn set_slice_fair(s: &mut SchedState, p: TaskId, sched_runtime_ns: u64) {
    let base = base_slice_ns(s);
    let se = &mut s.tasks[p as usize].se;
    assert!(!se.on_rq, "slice of task {p} changed while queued");
    if sched_runtime_ns > 0 {
        se.custom_slice = true;
        se.slice = sched_runtime_ns.clamp(SLICE_MIN_NS, SLICE_MAX_NS);
    } else {
        se.custom_slice = false;
        se.slice = base;
    }
}

/// Class enqueue (the core's `enqueue_task`, rq lock held). ENQUEUE_DELAYED wakes a delayed
/// task in place (F-22); otherwise the task is placed (F-12/F-13) and counted.
///
/// Linux: kernel/sched/fair.c enqueue_task_fair().
///
/// A delayed task moved by the balancer (F-46, migrate_load) stays delayed on its new CPU,
/// as in Linux: it is queued but not runnable until its wakeup or its pick.
pub fn enqueue_task_fair(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: u32) {
    assert_eq!(s.tasks[p as usize].class, Class::Fair);
    assert_eq!(
        s.tasks[p as usize].cpu, cpu,
        "enqueue of task {p} on a CPU that is not task_cpu"
    );
    if flags & enqueue::DELAYED != 0 {
        requeue_delayed_entity(s, cpu, p);
        return;
    }
    assert!(
        !s.tasks[p as usize].se.on_rq,
        "enqueue of already queued task {p}"
    );
    assert!(
        s.tasks[p as usize].se.weight > 0,
        "task {p} has no fair weight (init_entity_fair?)"
    );
    let runnable = !s.tasks[p as usize].se.sched_delayed;
    let rq_h_nr_queued = s.rqs[cpu as usize].cfs.h_nr_queued;
    enqueue_entity(s, cpu, p, flags);
    let cfs = &mut s.rqs[cpu as usize].cfs;
    cfs.h_nr_queued += 1;
    if runnable {
        cfs.h_nr_runnable += 1;
    }
    // The first fair task starts the fair server; time idle until now counts (D-20).
    if rq_h_nr_queued == 0 {
        if s.rqs[cpu as usize].nr_running == 0 {
            let curr = s.rqs[cpu as usize].curr;
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
/// Linux: kernel/sched/fair.c dequeue_task_fair() and dequeue_entities().
pub fn dequeue_task_fair(s: &mut SchedState, cpu: CpuId, p: TaskId, flags: u32) -> bool {
    let task_sleep = flags & dequeue::SLEEP != 0;
    let task_delayed = flags & dequeue::DELAYED != 0;
    assert!(
        s.tasks[p as usize].se.on_rq,
        "dequeue of task {p} that is not queued"
    );
    if task_delayed {
        assert!(task_sleep, "DEQUEUE_DELAYED without DEQUEUE_SLEEP");
        assert_eq!(s.tasks[p as usize].on_rq, OnRq::Queued);
    }
    let runnable = task_sleep || task_delayed || !s.tasks[p as usize].se.sched_delayed;
    if !dequeue_entity(s, cpu, p, flags) {
        return false;
    }
    let cfs = &mut s.rqs[cpu as usize].cfs;
    assert!(cfs.h_nr_queued > 0);
    cfs.h_nr_queued -= 1;
    if runnable {
        assert!(cfs.h_nr_runnable > 0, "h_nr_runnable underflow on cpu{cpu}");
        cfs.h_nr_runnable -= 1;
    }
    core::sub_nr_running(s, cpu, 1);
    if task_delayed {
        core::block_task_finish(s, cpu, p);
    }
    true
}

/// The EEVDF choice (F-9): the only entity; an eligible next buddy (PICK_BUDDY); a protected
/// eligible curr (F-11, when `protect`); else the eligible entity with the earliest deadline,
/// curr winning ties only if strictly earlier.
///
/// Linux: kernel/sched/fair.c __pick_eevdf() / pick_eevdf().
///
/// Deviation: the tree is walked in deadline order and the first eligible entity wins,
/// instead of the min-vruntime-augmented descent. Both find an eligible entity of earliest
/// deadline; among equal deadlines the model takes the earliest inserted.
pub fn pick_eevdf(s: &SchedState, cpu: CpuId, protect: bool) -> Option<TaskId> {
    let cfs = &s.rqs[cpu as usize].cfs;
    let leftmost = cfs.tree.first().map(|&(_, _, t)| t);
    let mut curr = cfs.curr;
    if cfs.nr_queued == 1 {
        return match curr {
            Some(c) if s.tasks[c as usize].se.on_rq => Some(c),
            _ => leftmost,
        };
    }
    if s.feat.pick_buddy {
        if let Some(n) = cfs.next {
            if entity_eligible(s, cpu, n) {
                assert!(!s.tasks[n as usize].se.sched_delayed, "next buddy is delayed");
                return Some(n);
            }
        }
    }
    if let Some(c) = curr {
        if !s.tasks[c as usize].se.on_rq || !entity_eligible(s, cpu, c) {
            curr = None;
        }
    }
    if let Some(c) = curr {
        if protect && protect_slice(&s.tasks[c as usize].se) {
            return Some(c);
        }
    }
    let best = cfs
        .tree
        .iter()
        .map(|&(_, _, t)| t)
        .find(|&t| entity_eligible(s, cpu, t));
    match (best, curr) {
        (None, c) => c,
        (Some(b), Some(c)) if vdiff(s.tasks[c as usize].se.deadline, s.tasks[b as usize].se.deadline) < 0 => {
            Some(c)
        }
        (b, _) => b,
    }
}

/// Class pick (rq lock held): pick_eevdf; a picked delayed task is dequeued for good and
/// blocked (F-10, `on_rq = 0`) and the pick repeats. Does not set the task as next.
///
/// Linux: kernel/sched/fair.c pick_task_fair() and pick_next_entity().
pub fn pick_task_fair(s: &mut SchedState, cpu: CpuId) -> Option<TaskId> {
    // Each round removes one delayed entity, so the loop is bounded by the queue length.
    let limit = s.rqs[cpu as usize].cfs.nr_queued + 1;
    for _ in 0..limit {
        if s.rqs[cpu as usize].cfs.nr_queued == 0 {
            return None;
        }
        if let Some(c) = s.rqs[cpu as usize].cfs.curr {
            if s.tasks[c as usize].se.on_rq {
                update_curr(s, cpu);
            }
        }
        let se = pick_eevdf(s, cpu, true).expect("a non-empty cfs_rq always has an eligible entity (F-4)");
        if s.tasks[se as usize].se.sched_delayed {
            dequeue_task_fair(s, cpu, se, dequeue::SLEEP | dequeue::DELAYED);
            continue;
        }
        return Some(se);
    }
    panic!("pick_task_fair on cpu{cpu} did not terminate");
}

/// The previous task leaves the CPU (rq lock held): charge it and put it back in the tree if
/// still queued; `cfs_rq->curr` becomes empty.
///
/// Linux: kernel/sched/fair.c put_prev_task_fair() / put_prev_entity().
pub fn put_prev_task_fair(s: &mut SchedState, cpu: CpuId, prev: TaskId) {
    assert_eq!(
        s.rqs[cpu as usize].cfs.curr,
        Some(prev),
        "put_prev of a task that is not cfs curr on cpu{cpu}"
    );
    if s.tasks[prev as usize].se.on_rq {
        update_curr(s, cpu);
        // Take it out of `curr` first: the tree insert asserts curr is outside the tree.
        s.rqs[cpu as usize].cfs.curr = None;
        enqueue_tree(s, cpu, prev);
    }
    s.rqs[cpu as usize].cfs.curr = None;
}

/// `p` becomes the running entity (rq lock held): out of the tree (it stays counted, T-9b),
/// RUN_TO_PARITY protection set (F-11), new accounting interval, `prev_sum_exec_runtime`
/// recorded; `p` moves to the front of `cfs_tasks`.
///
/// Linux: kernel/sched/fair.c set_next_task_fair() / set_next_entity().
pub fn set_next_task_fair(s: &mut SchedState, cpu: CpuId, p: TaskId, _first: bool) {
    assert!(
        s.rqs[cpu as usize].cfs.curr.is_none(),
        "set_next with a cfs curr still set on cpu{cpu}"
    );
    clear_buddies(s, cpu, p);
    if s.tasks[p as usize].se.on_rq {
        dequeue_tree(s, cpu, p);
        set_protect_slice(s, cpu, p);
    }
    let now = s.rqs[cpu as usize].clock_task;
    let se = &mut s.tasks[p as usize].se;
    se.exec_start = now;
    se.prev_sum_exec_runtime = se.sum_exec_runtime;
    let cfs = &mut s.rqs[cpu as usize].cfs;
    cfs.curr = Some(p);
    if let Some(pos) = cfs.tasks.iter().position(|&t| t == p) {
        let t = cfs.tasks.remove(pos);
        cfs.tasks.insert(0, t);
    }
}

/// Whether a fair wakee `p` should preempt the fair donor (F-24, newest rules), and if so
/// a lazy reschedule. Called with the rq lock held, after the wakee is queued.
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
pub fn wakeup_preempt_fair(s: &mut SchedState, cpu: CpuId, p: TaskId, wake_flags: u32) {
    let donor = s.rqs[cpu as usize].donor;
    if donor == p {
        return;
    }
    let running = s.rqs[cpu as usize].curr;
    if s.tasks[running as usize].need_resched {
        return;
    }
    if !s.feat.wakeup_preemption {
        return;
    }
    let cse_idle = s.tasks[donor as usize].policy == Policy::Idle;
    let pse_idle = s.tasks[p as usize].policy == Policy::Idle;
    let mut short = false;
    'decide: {
        if cse_idle && !pse_idle {
            break 'decide;
        }
        if cse_idle != pse_idle {
            return;
        }
        if s.tasks[p as usize].policy != Policy::Normal {
            return;
        }
        update_curr(s, cpu);
        if s.feat.preempt_short && s.tasks[p as usize].se.slice < s.tasks[donor as usize].se.slice {
            short = true;
        } else {
            if wake_flags & wf::FORK != 0 || s.tasks[p as usize].se.sched_delayed {
                return;
            }
            if !entity_eligible(s, cpu, donor) {
                break 'decide;
            }
            if s.feat.next_buddy {
                let cfs = &s.rqs[cpu as usize].cfs;
                let keep_old = cfs.next.is_some_and(|n| {
                    vdiff(s.tasks[n as usize].se.deadline, s.tasks[p as usize].se.deadline) < 0
                });
                if !keep_old {
                    s.rqs[cpu as usize].cfs.next = Some(p);
                }
                if wake_flags & wf::SYNC != 0 {
                    let se = &s.tasks[donor as usize].se;
                    let ran_ns = se.sum_exec_runtime - se.prev_sum_exec_runtime;
                    let min_ns = if wake_flags & wf::RQ_SELECTED != 0 {
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
        if pick_eevdf(s, cpu, !short) == Some(p) {
            break 'decide;
        }
        if s.feat.run_to_parity {
            update_protect_slice(s, cpu, donor);
        }
        return;
    }
    if short {
        cancel_protect_slice(&mut s.tasks[donor as usize].se);
    }
    core::resched_curr_lazy(s, cpu);
}

/// The tick for a fair donor (F-26): charge it; `update_curr` reschedules when the slice or
/// the protection ended and another entity is queued.
///
/// Linux: kernel/sched/fair.c task_tick_fair() / entity_tick().
///
/// Deviation: no HRTICK (off by default, F-26): slices end at ticks.
pub fn task_tick_fair(s: &mut SchedState, cpu: CpuId, curr: TaskId) {
    assert_eq!(
        s.rqs[cpu as usize].cfs.curr,
        Some(curr),
        "tick for a task that is not cfs curr on cpu{cpu}"
    );
    update_curr(s, cpu);
}

/// `sched_yield()` of the fair donor (F-28): if eligible, skip to the deadline and start a
/// new request.
///
/// Linux: kernel/sched/fair.c yield_task_fair().
pub fn yield_task_fair(s: &mut SchedState, cpu: CpuId) {
    if s.rqs[cpu as usize].nr_running == 1 {
        return;
    }
    let donor = s.rqs[cpu as usize].donor;
    clear_buddies(s, cpu, donor);
    core::update_rq_clock(s, cpu);
    update_curr(s, cpu);
    if entity_eligible(s, cpu, donor) {
        let se = &mut s.tasks[donor as usize].se;
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
fn reweight_entity(s: &mut SchedState, cpu: CpuId, p: TaskId, weight: u64) {
    assert!(weight > 0);
    let on_rq = s.tasks[p as usize].se.on_rq;
    let is_curr = s.rqs[cpu as usize].cfs.curr == Some(p);
    if on_rq {
        update_curr(s, cpu);
        update_entity_lag(s, cpu, p);
        let se = &mut s.tasks[p as usize].se;
        se.deadline = se.deadline.wrapping_sub(se.vruntime);
        se.rel_deadline = true;
        s.rqs[cpu as usize].cfs.nr_queued -= 1;
        if !is_curr {
            dequeue_tree(s, cpu, p);
        }
        let w = s.tasks[p as usize].se.weight;
        s.rqs[cpu as usize].cfs.load_weight -= w;
    }
    let se = &mut s.tasks[p as usize].se;
    let old = se.weight as i128;
    // vlag = V − v is in the entity's own virtual time; lag = w·vlag stays (division
    // truncates toward zero like div_s64).
    se.vlag = (se.vlag as i128 * old / weight as i128) as i64;
    if se.rel_deadline {
        se.deadline = (se.deadline as i64 as i128 * old / weight as i128) as i64 as u64;
    }
    se.weight = weight;
    if on_rq {
        place_entity(s, cpu, p, 0);
        s.rqs[cpu as usize].cfs.load_weight += weight;
        if !is_curr {
            enqueue_tree(s, cpu, p);
        }
        s.rqs[cpu as usize].cfs.nr_queued += 1;
    }
}

/// Renice (rq lock of `task_cpu(p)` held): new weight from `new_nice` (SCHED_IDLE keeps 3),
/// then, if queued, a weakened donor is rescheduled and a strengthened waiting task gets a
/// preemption check (F-27).
///
/// Linux: kernel/sched/fair.c reweight_task_fair() and prio_changed_fair().
pub fn reweight_task_fair(s: &mut SchedState, cpu: CpuId, p: TaskId, new_nice: i32) {
    let old = s.tasks[p as usize].se.weight;
    let new = weight_of(s.tasks[p as usize].policy, new_nice);
    reweight_entity(s, cpu, p, new);
    if new == old || !core::task_on_rq_queued(s, p) || s.rqs[cpu as usize].cfs.nr_queued == 1 {
        return;
    }
    if s.rqs[cpu as usize].donor == p {
        if new < old {
            core::resched_curr(s, cpu);
        }
    } else {
        core::wakeup_preempt(s, cpu, p, 0);
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
    let se = &mut s.tasks[p as usize].se;
    assert!(
        !se.on_rq,
        "task {p} migrated to cpu{new_cpu} while still on a cfs_rq"
    );
    se.exec_start = 0;
}

/// `p` joined the fair class (rq lock held, after its enqueue): a running donor is
/// rescheduled, a queued task gets a preemption check.
///
/// Linux: kernel/sched/fair.c switched_to_fair().
pub fn switched_to_fair(s: &mut SchedState, cpu: CpuId, p: TaskId) {
    if !core::task_on_rq_queued(s, p) {
        return;
    }
    if s.rqs[cpu as usize].donor == p {
        core::resched_curr(s, cpu);
    } else {
        core::wakeup_preempt(s, cpu, p, 0);
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
    let se = &s.tasks[p as usize].se;
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
    let rq = &s.rqs[cpu as usize];
    rq.curr == rq.idle && rq.nr_running == 0 && rq.wake_list.is_empty() && !rq.ttwu_pending
}

/// Whether `cpu` runs only SCHED_IDLE tasks (F-32: such a CPU counts as idle for placement).
///
/// Linux: kernel/sched/fair.c sched_idle_cpu().
pub fn sched_idle_cpu(s: &SchedState, cpu: CpuId) -> bool {
    let rq = &s.rqs[cpu as usize];
    rq.nr_running > 0
        && rq.nr_running == rq.cfs.h_nr_queued
        && rq
            .cfs
            .tasks
            .iter()
            .all(|&t| s.tasks[t as usize].policy == Policy::Idle)
}

pub use crate::sched::fair_balance::{
    record_wakee, sched_balance_newidle, sched_balance_periodic, sched_balance_trigger, select_task_rq_fair,
    select_task_rq_fair_mut,
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
            s.rqs[c].stop = c as TaskId;
        }
        for i in 0..nr_tasks {
            let id = (nr_cpus + i) as TaskId;
            let mut t = crate::system::new_task_struct(&s.m, id, id, "t", 0);
            t.state = 0;
            t.cpus_mask = CpuMask::first_n(nr_cpus);
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
        s.tasks[p as usize].se.vlag = vlag;
        core::activate_task(s, 0, p, enqueue::WAKEUP);
    }

    /// Make `p` the running task of CPU 0.
    fn run(s: &mut SchedState, p: TaskId) {
        set_next_task_fair(s, 0, p, true);
        s.rqs[0].curr = p;
        s.rqs[0].donor = p;
    }

    fn advance(s: &mut SchedState, ns: u64) {
        s.rqs[0].clock_task += ns;
        s.rqs[0].clock += ns;
    }

    fn check_sums(s: &SchedState, cpu: CpuId) {
        let cfs = &s.rqs[cpu as usize].cfs;
        let mut sum = 0i128;
        let mut w = 0u64;
        for &(d, _, t) in &cfs.tree {
            let se = &s.tasks[t as usize].se;
            assert_eq!(se.deadline, d, "tree key out of date for task {t}");
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
        init_entity_fair(&mut s, 5);
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
        let (a, b, c, d) = (1, 2, 3, 4);
        wake(&mut s, a, 0);
        // Empty queue: v = V = origin, d = v + 0.7 ms (1 CPU).
        assert_eq!(s.tasks[a as usize].se.vruntime, O);
        assert_eq!(s.tasks[a as usize].se.deadline, O + 700_000);
        wake(&mut s, b, 0);
        // C joins W = 2048 with vlag 3000: v = V − 3000·(2048+1024)/2048 = O − 4500.
        wake(&mut s, c, 3000);
        assert_eq!(s.tasks[c as usize].se.vruntime, O - 4500);
        // After the join V = O − 4500/3 = O − 1500, so C's lag is exactly the 3000 it had.
        assert_eq!(avg_vruntime_of(&s, 0), O - 1500);
        // A new task (ENQUEUE_INITIAL) gets half a slice to its deadline (F-13).
        core::activate_task(&mut s, 0, d, enqueue::INITIAL);
        let se = &s.tasks[d as usize].se;
        assert_eq!(se.vruntime, O - 1500);
        assert_eq!(se.deadline, O - 1500 + 350_000);
        assert_eq!(s.rqs[0].nr_running, 4);
        assert_eq!(s.rqs[0].cfs.h_nr_runnable, 4);
        assert_eq!(s.rqs[0].cfs.load_weight, 4096);
        check_sums(&s, 0);
    }

    #[test]
    fn pick_eevdf_takes_the_earliest_eligible_deadline() {
        let mut s = new_for_tests(1, 3);
        let (a, b, c) = (1, 2, 3);
        wake(&mut s, a, 0); // v = O, d = O + 700_000
        s.tasks[b as usize].se.custom_slice = true;
        s.tasks[b as usize].se.slice = 100_000;
        // B owes 2000: v = O + 2000·2048/1024 = O + 4000, d = O + 104_000 (earliest of all).
        wake(&mut s, b, -2000);
        assert_eq!(s.tasks[b as usize].se.vruntime, O + 4000);
        assert_eq!(avg_vruntime_of(&s, 0), O + 2000);
        // Earliest deadline but ineligible: A wins.
        assert_eq!(pick_eevdf(&s, 0, true), Some(a));
        s.tasks[c as usize].se.custom_slice = true;
        s.tasks[c as usize].se.slice = 300_000;
        // C is owed 1000: v = (O+2000) − 1000·3072/2048 = O + 500, d = O + 300_500.
        wake(&mut s, c, 1000);
        assert_eq!(s.tasks[c as usize].se.deadline, O + 300_500);
        // V = O + (4000 + 500)/3 = O + 1500: A and C eligible, B not; C is earlier than A.
        assert_eq!(avg_vruntime_of(&s, 0), O + 1500);
        assert!(!entity_eligible(&s, 0, b));
        assert_eq!(pick_eevdf(&s, 0, true), Some(c));
        assert_eq!(pick_task_fair(&mut s, 0), Some(c));
        check_sums(&s, 0);
    }

    #[test]
    fn update_curr_charges_weighted_time_and_refreshes_the_deadline() {
        let mut s = new_for_tests(1, 2);
        let (a, b) = (1, 2);
        s.tasks[a as usize].se.weight = weight_of(Policy::Normal, 5); // 335
        wake(&mut s, a, 0);
        wake(&mut s, b, 0);
        // A: d = O + 700_000·1024/335 = O + 2_139_701.
        assert_eq!(s.tasks[a as usize].se.deadline, O + 2_139_701);
        run(&mut s, a);
        advance(&mut s, 1_000_000);
        update_curr_fair(&mut s, 0);
        let se = &s.tasks[a as usize].se;
        assert_eq!(se.sum_exec_runtime, 1_000_000);
        assert_eq!(se.vruntime, O + 3_056_716);
        // v passed d: a new request d = v + 2_139_701, and a lazy resched (B is queued).
        assert_eq!(se.deadline, O + 3_056_716 + 2_139_701);
        assert!(s.tasks[a as usize].need_resched);
    }

    #[test]
    fn run_to_parity_protects_until_the_shortest_queued_slice() {
        let mut s = new_for_tests(1, 2);
        let (a, b) = (1, 2);
        wake(&mut s, a, 0);
        s.tasks[b as usize].se.custom_slice = true;
        s.tasks[b as usize].se.slice = 100_000;
        wake(&mut s, b, 0);
        run(&mut s, a);
        // Protection: min(d, v + min(0.1 ms, 0.7 ms)) = O + 100_000.
        assert_eq!(s.tasks[a as usize].se.vprot, O + 100_000);
        advance(&mut s, 99_999);
        update_curr_fair(&mut s, 0);
        assert!(!s.tasks[a as usize].need_resched, "still shielded");
        advance(&mut s, 1);
        update_curr_fair(&mut s, 0);
        assert!(s.tasks[a as usize].need_resched, "shield over, B queued");
    }

    #[test]
    fn delayed_dequeue_keeps_an_ineligible_sleeper_queued() {
        let (mut s, a, b) = a_runs_b_waits();
        advance(&mut s, 1_000_000);
        // A: v = O + 1e6 > V = O + 5e5: ineligible, so its sleep is delayed (F-20).
        assert!(!dequeue_task_fair(&mut s, 0, a, dequeue::SLEEP));
        assert!(s.tasks[a as usize].se.sched_delayed);
        assert!(s.tasks[a as usize].se.on_rq);
        assert_eq!(s.rqs[0].nr_running, 2, "a delayed task stays counted (T-9a)");
        assert_eq!(s.rqs[0].cfs.h_nr_queued, 2);
        assert_eq!(s.rqs[0].cfs.h_nr_runnable, 1);
        put_prev_task_fair(&mut s, 0, a);
        check_sums(&s, 0);
        // B (eligible, earliest) is picked; A stays delayed in the tree.
        assert_eq!(pick_task_fair(&mut s, 0), Some(b));
        assert!(s.tasks[a as usize].se.sched_delayed);
        run(&mut s, b);
        // B sleeps while eligible (it is curr at v = O, V = O + 5e5): really dequeued.
        assert!(dequeue_task_fair(&mut s, 0, b, dequeue::SLEEP));
        assert_eq!(s.tasks[b as usize].se.vlag, 500_000);
        assert_eq!(s.rqs[0].nr_running, 1);
        put_prev_task_fair(&mut s, 0, b);
        // Only the delayed A is left: the pick dequeues it for good and finds nothing (F-10).
        assert_eq!(pick_task_fair(&mut s, 0), None);
        assert_eq!(s.tasks[a as usize].on_rq, OnRq::No);
        assert!(!s.tasks[a as usize].se.sched_delayed);
        assert!(!s.tasks[a as usize].se.on_rq);
        assert_eq!(s.rqs[0].nr_running, 0);
        assert_eq!(s.rqs[0].cfs.h_nr_runnable, 0);
        assert_eq!(s.rqs[0].cfs.load_weight, 0);
    }

    #[test]
    fn waking_a_delayed_task_requeues_it_in_place() {
        let (mut s, a, _) = a_runs_b_waits();
        advance(&mut s, 1_000_000);
        assert!(!dequeue_task_fair(&mut s, 0, a, dequeue::SLEEP));
        put_prev_task_fair(&mut s, 0, a);
        let v = s.tasks[a as usize].se.vruntime;
        // The wakeup (ttwu_runnable) requeues: negative lag, so no re-placement (F-22).
        core::enqueue_task(&mut s, 0, a, enqueue::WAKEUP | enqueue::DELAYED);
        assert!(!s.tasks[a as usize].se.sched_delayed);
        assert_eq!(
            s.tasks[a as usize].se.vruntime, v,
            "debt not shed by sleeping (F-14)"
        );
        assert_eq!(s.rqs[0].nr_running, 2, "not counted twice");
        assert_eq!(s.rqs[0].cfs.h_nr_runnable, 2);
        check_sums(&s, 0);
    }

    #[test]
    fn delay_zero_replaces_a_sleeper_whose_lag_turned_positive() {
        let (mut s, a, b) = a_runs_b_waits();
        advance(&mut s, 1_000_000);
        // A (v = O + 1e6) is ineligible when it sleeps: delayed.
        assert!(!dequeue_task_fair(&mut s, 0, a, dequeue::SLEEP));
        put_prev_task_fair(&mut s, 0, a);
        run(&mut s, b);
        advance(&mut s, 2_000_000);
        update_curr_fair(&mut s, 0);
        // B ran 2 ms: V = O + 1.5e6, so A is now owed 0.5 ms. Its wakeup cuts that to zero
        // (DELAY_ZERO) and re-places it at V without A, i.e. at B's v = O + 2e6, with a fresh
        // deadline.
        core::enqueue_task(&mut s, 0, a, enqueue::WAKEUP | enqueue::DELAYED);
        let se = &s.tasks[a as usize].se;
        assert_eq!(se.vlag, 0);
        assert_eq!(se.vruntime, O + 2_000_000);
        assert_eq!(se.deadline, O + 2_700_000);
        check_sums(&s, 0);
    }

    /// One CPU, two nice-0 tasks woken at the same time: A (task 1) runs, B (task 2) waits.
    fn a_runs_b_waits() -> (SchedState, TaskId, TaskId) {
        let mut s = new_for_tests(1, 2);
        let (a, b) = (1, 2);
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
            task_tick_fair(s, 0, curr);
            if s.tasks[curr as usize].need_resched {
                s.tasks[curr as usize].need_resched = false;
                let next = pick_task_fair(s, 0).expect("runnable tasks");
                if next != curr {
                    put_prev_task_fair(s, 0, curr);
                    run(s, next);
                }
            }
        }
    }

    #[test]
    fn cpu_time_is_shared_in_proportion_to_weight() {
        let mut s = new_for_tests(1, 3);
        let (a, b, c) = (1, 2, 3);
        s.tasks[c as usize].se.weight = weight_of(Policy::Normal, 5); // 335
        for p in [a, b, c] {
            wake(&mut s, p, 0);
        }
        run(&mut s, a);
        simulate_ticks(&mut s, 3000);
        let ran = |p: TaskId| s.tasks[p as usize].se.sum_exec_runtime as f64 / 1e6;
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
        check_sums(&s, 0);
    }

    #[test]
    fn yield_skips_to_the_deadline_only_when_eligible() {
        let (mut s, a, _) = a_runs_b_waits();
        // Eligible at v = O = V: v = d = O + 700_000, d = O + 1_400_000.
        yield_task_fair(&mut s, 0);
        assert_eq!(s.tasks[a as usize].se.vruntime, O + 700_000);
        assert_eq!(s.tasks[a as usize].se.deadline, O + 1_400_000);
        // Now ineligible (V = O + 350_000): a second yield changes nothing.
        yield_task_fair(&mut s, 0);
        assert_eq!(s.tasks[a as usize].se.vruntime, O + 700_000);
    }

    #[test]
    fn wakeup_preempts_only_an_unprotected_or_ineligible_curr() {
        let mut s = new_for_tests(1, 3);
        let (a, b, c) = (1, 2, 3);
        wake(&mut s, a, 0);
        run(&mut s, a);
        advance(&mut s, 200_000);
        // B wakes with lag 0 at V = O + 200_000 (only A queued), d = V + 700_000; A's deadline
        // O + 700_000 is earlier and A is shielded: no preemption.
        wake(&mut s, b, 0);
        core::wakeup_preempt(&mut s, 0, b, wf::TTWU);
        assert!(!s.tasks[a as usize].need_resched);
        // C with a shorter slice cuts the shield (PREEMPT_SHORT) and has the earlier deadline:
        // v = V, d = V + 100_000 < O + 700_000.
        s.tasks[c as usize].se.custom_slice = true;
        s.tasks[c as usize].se.slice = 100_000;
        wake(&mut s, c, 0);
        core::wakeup_preempt(&mut s, 0, c, wf::TTWU);
        assert!(s.tasks[a as usize].need_resched);
        assert_eq!(
            s.tasks[a as usize].se.vprot, s.tasks[a as usize].se.vruntime,
            "shield cancelled"
        );
    }

    #[test]
    fn reweight_keeps_lag_and_relative_deadline() {
        let (mut s, a, b) = a_runs_b_waits();
        advance(&mut s, 300_000);
        update_curr_fair(&mut s, 0);
        // A (curr): v = O + 300_000. B (tree): v = O, d = O + 700_000. V = O + 150_000, so
        // B's vlag is +150_000. Renice B to +5 (w 335):
        //   vlag → 150_000·1024/335 = 458_507 (truncated),
        //   relative deadline 700_000 → 700_000·1024/335 = 2_139_701,
        //   placement against W = 1024 (A only): v = (O + 300_000) − 458_507·1359/1024
        //   = O + 300_000 − 608_506 = O − 308_506.
        reweight_task_fair(&mut s, 0, b, 5);
        let se = &s.tasks[b as usize].se;
        assert_eq!(se.weight, 335);
        assert_eq!(se.vlag, 458_507);
        assert_eq!(se.vruntime, O - 308_506);
        assert_eq!(se.deadline - se.vruntime, 2_139_701);
        // After the join V = O + ⌊(1024·300_000 − 335·308_506)/1359⌋ = O + 150_000: B's lag
        // w·(V − v) = 335·458_506 ≈ 1024·150_000, as before the renice (F-27).
        assert_eq!(avg_vruntime_of(&s, 0), O + 150_000);
        assert_eq!(s.rqs[0].cfs.load_weight, 1024 + 335);
        check_sums(&s, 0);
        // The renice ran a preemption check for B (prio_changed_fair): curr A (v = O + 300_000
        // > V) is not eligible, so it is preempted (F-24).
        assert!(s.tasks[a as usize].need_resched);
        // A weaker running task is rescheduled.
        s.tasks[a as usize].need_resched = false;
        reweight_task_fair(&mut s, 0, a, 3);
        assert!(s.tasks[a as usize].need_resched);
        check_sums(&s, 0);
    }

    #[test]
    fn idle_cpu_needs_idle_curr_empty_queue_and_no_pending_wakeup() {
        let mut s = new_for_tests(2, 1);
        assert!(idle_cpu(&s, 1));
        s.rqs[1].wake_list.push(2);
        assert!(!idle_cpu(&s, 1));
        assert!(idle_cpu(&s, 0));
        wake(&mut s, 2, 0);
        assert!(!idle_cpu(&s, 0));
    }
}
