//! The fair class: EEVDF.
//!
//! Linux: kernel/sched/fair.c. (Being written; see the fair-class work.)

use sim::Nanos;

use crate::task::TaskId;

/// `struct sched_entity`.
#[derive(Clone, Debug, Default)]
pub struct SchedEntity {
    /// `se->load.weight` (nice-0 = 1024).
    pub weight: u64,
    pub vruntime: u64,
    pub deadline: u64,
    pub vlag: i64,
    pub slice: u64,
    pub on_rq: bool,
    pub sched_delayed: bool,
    /// Start of the current accounting interval (`exec_start`).
    pub exec_start: Nanos,
    /// Total time this task executed (`sum_exec_runtime`).
    pub sum_exec_runtime: Nanos,
    pub prev_sum_exec_runtime: Nanos,
}

/// `struct cfs_rq` (one flat queue per CPU).
#[derive(Clone, Debug, Default)]
pub struct CfsRq {
    /// Queued entities including `curr` and delayed ones (`h_nr_queued`).
    pub h_nr_queued: u32,
    /// Queued entities that are not delayed (`h_nr_runnable`).
    pub h_nr_runnable: u32,
    /// Sum of queued weights (`cfs_rq->load.weight`).
    pub load_weight: u64,
    /// The entity set as next (`cfs_rq->curr`).
    pub curr: Option<TaskId>,
}

// Placeholder entry points, replaced by the fair-class work.
use crate::sched::SchedState;
use sim::CpuId;
pub fn enqueue_task_fair(_s: &mut SchedState, _cpu: CpuId, _p: TaskId, _flags: u32) {
    unimplemented!()
}
pub fn dequeue_task_fair(_s: &mut SchedState, _cpu: CpuId, _p: TaskId, _flags: u32) -> bool {
    unimplemented!()
}
pub fn wakeup_preempt_fair(_s: &mut SchedState, _cpu: CpuId, _p: TaskId, _wake_flags: u32) {
    unimplemented!()
}
pub fn migrate_task_rq_fair(_s: &mut SchedState, _p: TaskId, _new_cpu: CpuId) {
    unimplemented!()
}
pub fn init_entity_fair(_s: &mut SchedState, _p: TaskId) {
    unimplemented!()
}
pub fn pick_task_fair(_s: &mut SchedState, _cpu: CpuId) -> Option<TaskId> {
    unimplemented!()
}
pub fn put_prev_task_fair(_s: &mut SchedState, _cpu: CpuId, _p: TaskId) {
    unimplemented!()
}
pub fn set_next_task_fair(_s: &mut SchedState, _cpu: CpuId, _p: TaskId, _first: bool) {
    unimplemented!()
}
pub fn task_tick_fair(_s: &mut SchedState, _cpu: CpuId, _p: TaskId) {
    unimplemented!()
}
pub fn yield_task_fair(_s: &mut SchedState, _cpu: CpuId) {
    unimplemented!()
}
pub fn reweight_task_fair(_s: &mut SchedState, _cpu: CpuId, _p: TaskId, _nice: i32) {
    unimplemented!()
}
pub fn switched_to_fair(_s: &mut SchedState, _cpu: CpuId, _p: TaskId) {
    unimplemented!()
}
pub fn switched_from_fair(_s: &mut SchedState, _cpu: CpuId, _p: TaskId) {
    unimplemented!()
}
pub fn select_task_rq_fair(_s: &SchedState, _p: TaskId, cpu: CpuId, _wf: u32) -> CpuId {
    cpu
}
pub async fn balance_fair(_k: &crate::sched::core::Kernel, _cpu: CpuId) -> bool {
    unimplemented!()
}
pub async fn sched_balance_periodic(_k: &crate::sched::core::Kernel, _cpu: CpuId) {
    unimplemented!()
}
