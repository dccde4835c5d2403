//! The idle class and the idle loop.
//!
//! Linux: kernel/sched/idle.c (do_idle, cpuidle_idle_call, pick_task_idle,
//! set_next_task_idle).

use sim::{CpuId, RunResult};

use crate::irq::do_irq;
use crate::sched::core::{__schedule, sched_ttwu_pending, Kernel, SchedMode};
use crate::sched::SchedState;
use crate::task::TaskId;

/// `set_next_task_idle()`: the CPU goes idle; remember when (`rq->idle_stamp`, used for
/// `avg_idle` at the next wakeup).
///
/// Deviation: Linux stamps `idle_stamp` at the start of newidle balancing; the model stamps it
/// when idle is picked, which differs by the length of the balance pass.
///
/// Linux: kernel/sched/idle.c set_next_task_idle().
pub fn set_next_task_idle(s: &mut SchedState, cpu: CpuId, next: TaskId) {
    let now = s.m.now();
    // Idle time is measured from here for the fair server (D-20).
    s.tasks[next.idx()].se.exec_start = s.rqs[cpu.idx()].clock_task;
    let rq = &mut s.rqs[cpu.idx()];
    if rq.idle_stamp == 0 {
        rq.idle_stamp = now.max(1);
    }
}

/// `do_idle()` forever: wait for an interrupt until need_resched, flush the wake list, and
/// `schedule_idle()`.
///
/// Deviation: one C-state (C1): every non-polling wakeup pays `idle_exit_ns`; a polling wakeup
/// pays `poll_wake_ns` (charged by the waker's kick).
///
/// Linux: kernel/sched/idle.c do_idle(), cpuidle_idle_call().
pub async fn do_idle(k: &Kernel) {
    loop {
        // __current_set_polling().
        {
            let s = &mut *k.st();
            let cpu = s.m.this_cpu();
            s.rqs[cpu.idx()].polling = s.feat.idle_polling;
        }
        while !k.need_resched() {
            crate::sched::nohz::tick_nohz_idle_stop_tick(&mut k.st(), k.this_cpu());
            match k.m.run_interruptible(u64::MAX).await {
                RunResult::Completed => unreachable!("an idle wait has no end"),
                RunResult::Interrupted { .. } => {
                    let srcs_are_kick_only = {
                        // A poll kick is not an interrupt: nothing to exit from.
                        let cpu = k.this_cpu();
                        k.m.ipi_pending(cpu, crate::sched::core::ipi::POLL_KICK)
                            && !k.m.irq_due_except_ipi(crate::sched::core::ipi::POLL_KICK)
                    };
                    if !srcs_are_kick_only {
                        let cost = k.st().costs.idle_exit_ns;
                        k.m.delay(cost).await;
                    }
                    do_irq(k).await;
                }
            }
        }
        let cpu = k.this_cpu();
        crate::sched::nohz::tick_nohz_idle_exit(&mut k.st(), cpu);
        // __current_clr_polling(): from here a waker must send a real IPI.
        k.st().rqs[cpu.idx()].polling = false;
        // flush_smp_call_function_queue(): wakeups queued while polling, a nohz kick, and the
        // softirq the kick raised.
        if !k.st().rqs[cpu.idx()].wake_list.is_empty() {
            sched_ttwu_pending(k, cpu).await;
        }
        if k.st().rqs[cpu.idx()].nohz.csd_pending {
            crate::sched::nohz::nohz_csd_func(&mut k.st(), cpu);
            if std::mem::take(&mut k.st().rqs[cpu.idx()].balance_softirq_pending) {
                crate::sched::nohz::sched_balance_softirq(k, cpu).await;
            }
        }
        __schedule(k, SchedMode::Idle).await;
    }
}
