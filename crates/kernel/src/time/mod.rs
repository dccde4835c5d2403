//! Time keeping: hrtimers and the tick.
//!
//! Linux: kernel/time/hrtimer.c, kernel/time/tick-sched.c.
//!
//! Each CPU has one clock-event device (the machine's) programmed for the earliest *hard*
//! expiry of its hrtimers; when it fires, every timer whose *soft* expiry has passed runs
//! (`__hrtimer_run_queues`). A timer armed with slack (`timer_slack_ns`, 50 µs for fair
//! tasks) therefore fires at its hard expiry unless another timer's interrupt comes first.
//! The periodic tick is itself an hrtimer (`tick_sched_timer`), aligned to jiffy boundaries on
//! every CPU (skew_tick=0).
//!
//! Deviation: no `hrtimer_cpu_base` lock. Tickless idle (NO_HZ_IDLE) is in
//! [`crate::sched::nohz`], behind the `nohz_idle` switch; with it off, idle CPUs keep ticking
//! and balance for themselves (spec §11.4).

use sim::{CpuId, Nanos};

use crate::sched::SchedState;
use crate::task::TaskId;

/// What an hrtimer does when it expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerFn {
    /// `tick_sched_timer`.
    Tick,
    /// `hrtimer_wakeup` of a sleeping task (nanosleep).
    WakeTask(TaskId),
    /// `dl_task_timer` of a throttled DL task (its replenishment).
    DlTask(TaskId),
    /// `dl_server_timer` of a CPU's fair server.
    DlServer(CpuId),
    /// `sched_cfs_period_timer` of a task group's CFS bandwidth.
    CfsPeriod(crate::sched::cgroup::GroupId),
}

/// One armed hrtimer. Ordered by hard expiry, then arming order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HrTimer {
    pub hard_ns: Nanos,
    pub seq: u64,
    pub soft_ns: Nanos,
    pub func: TimerFn,
}

/// `hrtimer_start_range_ns()` on `cpu`: arm a timer for `soft_ns` with `slack_ns`.
///
/// Linux: kernel/time/hrtimer.c hrtimer_start_range_ns().
pub fn hrtimer_start(s: &mut SchedState, cpu: CpuId, soft_ns: Nanos, slack_ns: Nanos, func: TimerFn) {
    s.hrtimer_seq += 1;
    let t = HrTimer {
        hard_ns: soft_ns.saturating_add(slack_ns),
        seq: s.hrtimer_seq,
        soft_ns,
        func,
    };
    s.hrtimers[cpu.idx()].insert(t);
    hrtimer_reprogram(s, cpu);
}

/// Program the CPU's clock-event device for its earliest hard expiry.
///
/// Linux: kernel/time/hrtimer.c hrtimer_reprogram(), tick_program_event().
pub fn hrtimer_reprogram(s: &mut SchedState, cpu: CpuId) {
    let first = s.hrtimers[cpu.idx()].first().map(|t| t.hard_ns);
    if s.m.clockevent(cpu) != first {
        s.m.program_clockevent(cpu, first);
    }
}

/// `hrtimer_cancel()` of the armed timer of `cpu` that runs `func` (if armed).
///
/// Linux: kernel/time/hrtimer.c hrtimer_cancel(), hrtimer_try_to_cancel().
pub fn hrtimer_cancel(s: &mut SchedState, cpu: CpuId, func: TimerFn) {
    let armed = s.hrtimers[cpu.idx()].iter().find(|t| t.func == func).copied();
    if let Some(t) = armed {
        s.hrtimers[cpu.idx()].remove(&t);
        hrtimer_reprogram(s, cpu);
    }
}

/// `__hrtimer_run_queues()`: remove and return the timers of `cpu` whose soft expiry passed.
///
/// Linux: kernel/time/hrtimer.c __hrtimer_run_queues().
pub fn hrtimer_expire(s: &mut SchedState, cpu: CpuId) -> Vec<TimerFn> {
    let now = s.m.now();
    // One pass in expiry order: the due timers leave the queue and come back in that order.
    let mut due = Vec::new();
    s.hrtimers[cpu.idx()].retain(|t| {
        let expired = t.soft_ns <= now;
        if expired {
            due.push(t.func);
        }
        !expired
    });
    hrtimer_reprogram(s, cpu);
    due
}

/// Whether any task timer is armed anywhere (for stall detection).
pub fn task_timers_armed(s: &SchedState) -> bool {
    s.task_timers_in_flight > 0
        || s.hrtimers.iter().any(|q| {
            q.iter()
                .any(|t| matches!(t.func, TimerFn::WakeTask(_) | TimerFn::DlTask(_)))
        })
}
