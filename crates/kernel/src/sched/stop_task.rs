//! The stop class: per-CPU `migration/N` stoppers running one-shot works.
//!
//! Linux: kernel/sched/stop_task.c, kernel/stop_machine.c.

use sim::CpuId;

use crate::task::TaskId;

/// A work queued for a CPU's stopper (`struct cpu_stop_work`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopWork {
    /// `migration_cpu_stop`: move `task` off this CPU to `dest` (affinity change).
    Migrate { task: TaskId, dest: CpuId },
    /// `active_load_balance_cpu_stop`: push the running task to `dest`.
    ActiveBalance { dest: CpuId },
}

use crate::sched::core::add_nr_running;
use crate::sched::SchedState;

/// `enqueue_task_stop()`: the stopper is the only task of its class on its CPU.
pub fn enqueue_task_stop(s: &mut SchedState, cpu: CpuId, _p: TaskId, _flags: u32) {
    add_nr_running(s, cpu, 1);
}

/// `dequeue_task_stop()`.
pub fn dequeue_task_stop(s: &mut SchedState, cpu: CpuId, _p: TaskId, _flags: u32) -> bool {
    crate::sched::core::sub_nr_running(s, cpu, 1);
    true
}
