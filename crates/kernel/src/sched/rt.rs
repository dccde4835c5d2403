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
