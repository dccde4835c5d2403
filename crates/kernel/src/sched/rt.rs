//! The RT class: SCHED_FIFO and SCHED_RR.
//!
//! Linux: kernel/sched/rt.c. (Being written; see the RT-class work.)

use crate::task::TaskId;

/// `struct sched_rt_entity`.
#[derive(Clone, Debug, Default)]
pub struct SchedRtEntity {
    /// Remaining RR slice in ticks.
    pub time_slice: u32,
    pub on_list: bool,
}

/// `struct rt_rq`.
#[derive(Clone, Debug, Default)]
pub struct RtRq {
    pub rt_nr_running: u32,
    /// Tasks per priority level, FIFO order.
    pub queues: Vec<std::collections::VecDeque<TaskId>>,
}

// Placeholder entry points, replaced by the RT-class work.
use crate::sched::SchedState;
use sim::CpuId;
pub fn enqueue_task_rt(_s: &mut SchedState, _cpu: CpuId, _p: TaskId, _flags: u32) { unimplemented!() }
pub fn dequeue_task_rt(_s: &mut SchedState, _cpu: CpuId, _p: TaskId, _flags: u32) -> bool { unimplemented!() }
pub fn wakeup_preempt_rt(_s: &mut SchedState, _cpu: CpuId, _p: TaskId, _wake_flags: u32) { unimplemented!() }
pub fn init_entity_rt(_s: &mut SchedState, _p: TaskId) { unimplemented!() }
pub fn pick_task_rt(_s: &mut SchedState, _cpu: CpuId) -> Option<TaskId> { unimplemented!() }
pub fn put_prev_task_rt(_s: &mut SchedState, _cpu: CpuId, _p: TaskId) { unimplemented!() }
pub fn set_next_task_rt(_s: &mut SchedState, _cpu: CpuId, _p: TaskId, _first: bool) { unimplemented!() }
pub fn task_tick_rt(_s: &mut SchedState, _cpu: CpuId, _p: TaskId) { unimplemented!() }
pub fn yield_task_rt(_s: &mut SchedState, _cpu: CpuId) { unimplemented!() }
pub fn switched_to_rt(_s: &mut SchedState, _cpu: CpuId, _p: TaskId) { unimplemented!() }
pub fn switched_from_rt(_s: &mut SchedState, _cpu: CpuId, _p: TaskId) { unimplemented!() }
pub fn prio_changed_rt(_s: &mut SchedState, _cpu: CpuId, _p: TaskId, _old: i32) { unimplemented!() }
pub fn select_task_rq_rt(_s: &SchedState, _p: TaskId, cpu: CpuId, _wf: u32) -> CpuId { cpu }
pub async fn balance_rt(_k: &crate::sched::core::Kernel, _cpu: CpuId, _prev: TaskId) -> bool { unimplemented!() }
pub async fn task_woken_rt(_k: &crate::sched::core::Kernel, _cpu: CpuId, _p: TaskId) { unimplemented!() }
pub async fn push_rt_tasks(_k: &crate::sched::core::Kernel, _cpu: CpuId) { unimplemented!() }
pub async fn pull_rt_task(_k: &crate::sched::core::Kernel, _cpu: CpuId) { unimplemented!() }
pub async fn rto_push_irq_work_func(_k: &crate::sched::core::Kernel, _cpu: CpuId) { unimplemented!() }
