//! The stop class: per-CPU `migration/N` stoppers running one-shot works.
//!
//! Linux: kernel/sched/stop_task.c, kernel/stop_machine.c.

use sim::CpuId;

use crate::task::TaskId;

/// A work queued for a CPU's stopper (`struct cpu_stop_work`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopWork {
    /// `migration_cpu_stop`: move `task` off this CPU to `dest` (affinity change).
    ///
    /// Deviation: the only work; there is no `active_load_balance_cpu_stop`, since the model
    /// has no active balance (see `sched_balance_rq`).
    Migrate { task: TaskId, dest: CpuId },
}

use crate::sched::core::add_nr_running;
use crate::sched::{DequeueFlags, EnqueueFlags, SchedState};

/// `enqueue_task_stop()`: the stopper is the only task of its class on its CPU.
///
/// Linux: kernel/sched/stop_task.c enqueue_task_stop().
pub fn enqueue_task_stop(s: &mut SchedState, cpu: CpuId, _p: TaskId, _flags: EnqueueFlags) {
    add_nr_running(s, cpu, 1);
}

/// `dequeue_task_stop()`.
///
/// Linux: kernel/sched/stop_task.c dequeue_task_stop().
pub fn dequeue_task_stop(s: &mut SchedState, cpu: CpuId, _p: TaskId, _flags: DequeueFlags) -> bool {
    crate::sched::core::sub_nr_running(s, cpu, 1);
    true
}

/// `sched_stop_runnable()`.
///
/// Linux: kernel/sched/sched.h sched_stop_runnable().
pub fn sched_stop_runnable(s: &SchedState, cpu: CpuId) -> bool {
    let stop = s.rqs[cpu.idx()].stop;
    s.tasks[stop.idx()].on_rq == crate::task::OnRq::Queued
}

/// `pick_task_stop()`.
///
/// Linux: kernel/sched/stop_task.c pick_task_stop().
pub fn pick_task_stop(s: &mut SchedState, cpu: CpuId) -> Option<TaskId> {
    if sched_stop_runnable(s, cpu) {
        Some(s.rqs[cpu.idx()].stop)
    } else {
        None
    }
}

/// The stopper thread: run queued works, sleep when there are none.
///
/// Linux: kernel/stop_machine.c cpu_stopper_thread(), smpboot_thread_fn().
pub async fn stopper_main(k: &crate::sched::core::Kernel) {
    crate::sched::core::schedule_tail(k).await;
    loop {
        let cpu = k.this_cpu();
        let work = {
            let mut s = k.st();
            let rq = &mut s.rqs[cpu.idx()];
            if rq.stop_works.is_empty() {
                None
            } else {
                Some(rq.stop_works.remove(0))
            }
        };
        match work {
            Some(StopWork::Migrate { task, dest }) => migration_cpu_stop(k, task, dest).await,
            None => {
                let me = k.current();
                k.st().tasks[me.idx()].state = crate::task::state::TASK_INTERRUPTIBLE;
                crate::sched::core::schedule(k).await;
            }
        }
    }
}

/// `migration_cpu_stop()`: move `p` off this CPU if it is still queued here.
///
/// Linux: kernel/sched/core.c migration_cpu_stop(), __migrate_task(), move_queued_task().
async fn migration_cpu_stop(k: &crate::sched::core::Kernel, p: TaskId, dest: CpuId) {
    use crate::sched::core::*;
    let cpu = k.this_cpu();
    k.pi_lock(p).await;
    k.rq_lock(cpu).await;
    let moved = {
        let s = &mut *k.st();
        s.tasks[p.idx()].migration_pending = false;
        let t = &s.tasks[p.idx()];
        if t.cpu == cpu
            && t.on_rq == crate::task::OnRq::Queued
            && s.cpus_mask(t).test(dest)
            && !s.cpus_mask(t).test(cpu)
        {
            update_rq_clock(s, cpu);
            deactivate_task(s, cpu, p, DequeueFlags::NOCLOCK);
            set_task_cpu(s, p, dest);
            true
        } else {
            if t.on_rq == crate::task::OnRq::No {
                s.tasks[p.idx()].wake_cpu = dest;
            }
            false
        }
    };
    let cost = k.st().costs.migration_ns;
    k.m.delay(cost).await;
    k.rq_unlock(cpu).await;
    if moved {
        attach_tasks(k, dest, &[p]).await;
    }
    k.pi_unlock(p).await;
}
