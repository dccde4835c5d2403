//! Interrupt entry and exit: the timer interrupt (hrtimers and the tick), IPIs, softirqs.
//!
//! Linux: kernel/softirq.c (irq_enter/irq_exit), kernel/time/hrtimer.c (hrtimer_interrupt),
//! kernel/time/tick-sched.c (tick_sched_timer), kernel/sched/core.c (sched_tick,
//! scheduler_ipi), kernel/smp.c (generic_smp_call_function_single_interrupt).

use sim::CpuId;

use crate::sched::core::{ipi, sched_ttwu_pending, try_to_wake_up, update_rq_clock, Kernel};
use crate::sched::WakeFlags;
use crate::task::state::TASK_NORMAL;
use crate::time::{hrtimer_expire, hrtimer_expire_done, hrtimer_start, TimerFn};

/// Take every interrupt due on this CPU, then run pending softirqs. Runs on top of whatever
/// context the CPU executes (the caller decides about preemption on the way out).
///
/// Linux: kernel/softirq.c irq_enter_rcu(), irq_exit_rcu(), invoke_softirq().
pub async fn do_irq(k: &Kernel) {
    let cpu = k.this_cpu();
    let was_disabled = {
        let mut s = k.st();
        let rq = &mut s.rqs[cpu.idx()];
        rq.in_hardirq = true;
        std::mem::replace(&mut rq.irqs_disabled, true)
    };
    loop {
        let src = k.m.take_irqs();
        if src.is_empty() {
            break;
        }
        if src.timer {
            hrtimer_interrupt(k, cpu).await;
        }
        if src.ipis & (1 << ipi::CALL_FUNCTION) != 0 {
            generic_smp_call_function_single_interrupt(k, cpu).await;
        }
        // RESCHEDULE: scheduler_ipi() has nothing to do beyond the need_resched flag the
        // sender set; POLL_KICK is not a real interrupt.
    }
    let balance = {
        let mut s = k.st();
        let rq = &mut s.rqs[cpu.idx()];
        rq.in_hardirq = false;
        rq.irqs_disabled = was_disabled;
        std::mem::take(&mut rq.balance_softirq_pending)
    };
    if balance {
        // SCHED_SOFTIRQ: sched_balance_softirq() on irq exit, interrupts enabled.
        Box::pin(crate::sched::nohz::sched_balance_softirq(k, cpu)).await;
    }
}

/// `hrtimer_interrupt()`: run every expired timer of this CPU.
///
/// Linux: kernel/time/hrtimer.c hrtimer_interrupt().
async fn hrtimer_interrupt(k: &Kernel, cpu: CpuId) {
    let due = hrtimer_expire(&mut k.st(), cpu);
    // Expired task timers whose handler has not run yet: the stall watchdog counts them as
    // armed (another CPU may look while this one is still in its tick handler).
    k.st().task_timers_in_flight += due.iter().filter(|f| matches!(f, TimerFn::WakeTask(_))).count() as u32;
    let mut ticked = false;
    for &f in &due {
        match f {
            TimerFn::Tick => {
                tick_sched_timer(k, cpu).await;
                ticked = true;
            }
            TimerFn::WakeTask(p) => {
                try_to_wake_up(k, p, TASK_NORMAL, WakeFlags::empty()).await;
                k.st().task_timers_in_flight -= 1;
            }
            TimerFn::DlTask(p) => Box::pin(crate::sched::deadline::dl_task_timer(k, p)).await,
            TimerFn::DlServer(c) => Box::pin(crate::sched::deadline::dl_server_timer(k, c)).await,
            TimerFn::CfsPeriod(g) => Box::pin(crate::sched::fair::sched_cfs_period_timer(k, g)).await,
        }
    }
    hrtimer_expire_done(&mut k.st(), cpu, due);
    // The model's stall watchdog looks once every timer of this interrupt has run: a task
    // wake-up timer that expired together with the tick (within its slack) has been taken
    // off the queue already, and until its handler runs nothing would show it is coming.
    if ticked && cpu == CpuId(0) {
        crate::system::check_stall(k);
    }
}

/// `tick_sched_timer()`: re-arm for the next jiffy, update jiffies, `sched_tick()`.
///
/// Linux: kernel/time/tick-sched.c tick_sched_timer(), tick_sched_handle().
async fn tick_sched_timer(k: &Kernel, cpu: CpuId) {
    let cost = {
        let s = &mut *k.st();
        let tick = s.tun.tick_ns();
        let now = s.m.now();
        s.jiffies = s.jiffies.max(now / tick);
        let next = (now / tick + 1) * tick;
        hrtimer_start(s, cpu, next, 0, TimerFn::Tick);
        s.costs.tick_ns
    };
    k.m.delay(cost).await;
    sched_tick(k, cpu).await;
}

/// `sched_tick()`: charge the running donor and let its class decide about preemption, then
/// trigger periodic balancing if due.
///
/// Linux: kernel/sched/core.c sched_tick(), sched_balance_trigger().
async fn sched_tick(k: &Kernel, cpu: CpuId) {
    k.rq_lock(cpu).await;
    let donor = {
        let s = &mut *k.st();
        update_rq_clock(s, cpu);
        let donor = s.rqs[cpu.idx()].donor;
        s.tasks[donor.idx()].class.task_tick(s, cpu, donor);
        let rq = &mut s.rqs[cpu.idx()];
        if s.jiffies >= rq.next_balance {
            rq.balance_softirq_pending = true;
        }
        donor
    };
    k.rq_unlock(cpu).await;
    // Linux (since the donor/curr split) passes rq->donor, read before the rq lock.
    if crate::workqueue::is_wq_worker(&k.st(), donor) {
        Box::pin(crate::workqueue::wq_worker_tick(k, donor)).await;
    }
    // sched_balance_trigger()'s second half: a busy CPU kicks the idle load balancer.
    crate::sched::nohz::nohz_balancer_kick(&mut k.st(), cpu);
}

/// `generic_smp_call_function_single_interrupt()`: the wake list, and RT push requests.
///
/// Linux: kernel/smp.c generic_smp_call_function_single_interrupt().
async fn generic_smp_call_function_single_interrupt(k: &Kernel, cpu: CpuId) {
    if k.st().rqs[cpu.idx()].nohz.csd_pending {
        crate::sched::nohz::nohz_csd_func(&mut k.st(), cpu);
    }
    let (ttwu, push) = {
        let mut s = k.st();
        let rq = &mut s.rqs[cpu.idx()];
        (
            rq.ttwu_pending || !rq.wake_list.is_empty(),
            std::mem::take(&mut rq.rt_push_work_pending),
        )
    };
    if ttwu {
        sched_ttwu_pending(k, cpu).await;
    }
    if push {
        Box::pin(crate::sched::rt::rto_push_irq_work_func(k, cpu)).await;
    }
}
