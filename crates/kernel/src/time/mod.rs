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
//! Each CPU's timers sit in an [`HrTimerQueue`], ordered by hard expiry like Linux's
//! timerqueue (an rbtree); arming, cancelling and expiring cost O(log n) per timer in the
//! timers of that CPU, never a pass over all of them.
//!
//! Deviation: no `hrtimer_cpu_base` lock. Tickless idle (NO_HZ_IDLE) is in
//! [`crate::sched::nohz`], behind the `nohz_idle` switch; with it off, idle CPUs keep ticking
//! and balance for themselves (spec §11.4).

use std::collections::BTreeSet;

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

impl TimerFn {
    /// A task timer (a sleeper's wake-up or a DL replenishment), which the stall watchdog
    /// counts as work still to come.
    fn is_task_timer(self) -> bool {
        matches!(self, TimerFn::WakeTask(_) | TimerFn::DlTask(_))
    }
}

/// One armed hrtimer. Ordered by hard expiry, then arming order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HrTimer {
    pub hard_ns: Nanos,
    pub seq: u64,
    pub soft_ns: Nanos,
    pub func: TimerFn,
}

/// One CPU's armed hrtimers (`hrtimer_clock_base.active`, a timerqueue).
///
/// Linux orders the timerqueue by hard expiry and finds the first timer through a cached
/// leftmost node. The model keeps the same set three ways, each a `BTreeSet`: by hard expiry
/// (the timerqueue: the clock-event device is programmed for its first), by soft expiry (the
/// timers an interrupt runs), and by function (the timers a cancel removes). Every operation
/// is O(log n) per timer it touches.
#[derive(Clone, Debug, Default)]
pub struct HrTimerQueue {
    /// By (hard expiry, arming order).
    by_hard: BTreeSet<HrTimer>,
    /// The same timers by soft expiry.
    by_soft: BTreeSet<(Nanos, HrTimer)>,
    /// The same timers by function.
    by_func: BTreeSet<(TimerFn, HrTimer)>,
    /// How many of them are task timers ([`TimerFn::is_task_timer`]).
    nr_task_timers: usize,
}

impl HrTimerQueue {
    /// `enqueue_hrtimer()` / `timerqueue_add()`.
    fn insert(&mut self, t: HrTimer) {
        let fresh = self.by_hard.insert(t);
        assert!(fresh, "hrtimer {t:?} armed twice");
        self.by_soft.insert((t.soft_ns, t));
        self.by_func.insert((t.func, t));
        if t.func.is_task_timer() {
            self.nr_task_timers += 1;
        }
    }

    /// `__remove_hrtimer()` / `timerqueue_del()`.
    fn remove(&mut self, t: HrTimer) {
        let was = self.by_hard.remove(&t);
        assert!(was, "hrtimer {t:?} not armed");
        let was = self.by_soft.remove(&(t.soft_ns, t));
        assert!(was, "hrtimer {t:?} missing from the soft-expiry order");
        let was = self.by_func.remove(&(t.func, t));
        assert!(was, "hrtimer {t:?} missing from the function index");
        if t.func.is_task_timer() {
            self.nr_task_timers -= 1;
        }
    }

    /// The timer that expires first (`timerqueue_getnext()`).
    pub fn first(&self) -> Option<&HrTimer> {
        self.by_hard.first()
    }

    /// The armed timers in expiry order.
    pub fn iter(&self) -> impl Iterator<Item = &HrTimer> + '_ {
        self.by_hard.iter()
    }

    pub fn len(&self) -> usize {
        self.by_hard.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hard.is_empty()
    }

    /// Remove every armed timer that runs `func`; true if there was one.
    fn cancel_func(&mut self, func: TimerFn) -> bool {
        let lo = HrTimer {
            hard_ns: Nanos::MIN,
            seq: u64::MIN,
            soft_ns: Nanos::MIN,
            func,
        };
        let armed: Vec<HrTimer> = self
            .by_func
            .range((func, lo)..)
            .take_while(|(f, _)| *f == func)
            .map(|&(_, t)| t)
            .collect();
        for &t in &armed {
            self.remove(t);
        }
        !armed.is_empty()
    }

    /// Remove and return the timers whose soft expiry is at or before `now`, in expiry order
    /// (hard expiry, then arming order).
    fn take_expired(&mut self, now: Nanos) -> Vec<HrTimer> {
        let mut due: Vec<HrTimer> = self
            .by_soft
            .iter()
            .take_while(|&&(soft_ns, _)| soft_ns <= now)
            .map(|&(_, t)| t)
            .collect();
        due.sort_unstable();
        for &t in &due {
            self.remove(t);
        }
        due
    }
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

/// `hrtimer_try_to_cancel()` of every armed timer that runs `func`, on any CPU; reprograms
/// the clock-event device of each CPU that lost one. True if one was armed.
///
/// Linux: kernel/time/hrtimer.c hrtimer_try_to_cancel() / remove_hrtimer().
///
/// Deviation: Linux's timer knows its base; the model looks the function up on each CPU's
/// queue (O(CPUs · log n)).
pub fn hrtimer_cancel(s: &mut SchedState, func: TimerFn) -> bool {
    let mut any = false;
    for cpu in CpuId::all(s.nr_cpus()) {
        if s.hrtimers[cpu.idx()].cancel_func(func) {
            hrtimer_reprogram(s, cpu);
            any = true;
        }
    }
    any
}

/// `hrtimer_cancel()` of the timer of `cpu` that runs `func` (a CPU's own tick); true if one
/// was armed.
///
/// Linux: kernel/time/hrtimer.c hrtimer_cancel() (the timer's base is `cpu`).
pub fn hrtimer_cancel_on(s: &mut SchedState, cpu: CpuId, func: TimerFn) -> bool {
    let was = s.hrtimers[cpu.idx()].cancel_func(func);
    if was {
        hrtimer_reprogram(s, cpu);
    }
    was
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

/// `__hrtimer_run_queues()`: remove and return the timers of `cpu` whose soft expiry passed,
/// in expiry order (hard expiry, then arming order).
///
/// Linux: kernel/time/hrtimer.c __hrtimer_run_queues().
///
/// Deviation: Linux walks the timerqueue in hard-expiry order and stops at the first timer
/// whose soft expiry has not passed; the model runs every timer whose soft expiry passed,
/// also one behind such a timer (a timer with more slack than an earlier one). The due
/// timers are found through the soft-expiry order, so the cost is in the due timers only.
pub fn hrtimer_expire(s: &mut SchedState, cpu: CpuId) -> Vec<TimerFn> {
    let now = s.m.now();
    let due = s.hrtimers[cpu.idx()].take_expired(now);
    hrtimer_reprogram(s, cpu);
    due.into_iter().map(|t| t.func).collect()
}

/// Whether any task timer is armed anywhere (for stall detection). O(CPUs).
pub fn task_timers_armed(s: &SchedState) -> bool {
    s.task_timers_in_flight > 0 || s.hrtimers.iter().any(|q| q.nr_task_timers > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(hard_ns: Nanos, soft_ns: Nanos, seq: u64, func: TimerFn) -> HrTimer {
        HrTimer {
            hard_ns,
            seq,
            soft_ns,
            func,
        }
    }

    /// An interrupt runs every timer whose soft expiry passed, in hard-expiry order, also one
    /// queued behind a timer that is not due yet; the rest stay armed.
    #[test]
    fn expiry_takes_the_soft_expired_in_hard_order() {
        let mut q = HrTimerQueue::default();
        let (p, r) = (TaskId(7), TaskId(8));
        q.insert(timer(100, 100, 1, TimerFn::Tick));
        q.insert(timer(150, 60, 2, TimerFn::WakeTask(p)));
        q.insert(timer(120, 110, 3, TimerFn::DlTask(r)));
        q.insert(timer(90, 40, 4, TimerFn::WakeTask(r)));
        assert_eq!(q.first().map(|t| t.hard_ns), Some(90));
        assert_eq!(q.nr_task_timers, 3);
        assert!(q.take_expired(39).is_empty());
        let due: Vec<TimerFn> = q.take_expired(100).into_iter().map(|t| t.func).collect();
        // Hard order 90, 100, 150; the DL timer (soft 110) stays although its hard expiry
        // (120) is before the nanosleep's (150).
        assert_eq!(
            due,
            vec![TimerFn::WakeTask(r), TimerFn::Tick, TimerFn::WakeTask(p)]
        );
        assert_eq!(q.len(), 1);
        assert_eq!(q.first().map(|t| t.func), Some(TimerFn::DlTask(r)));
        assert_eq!(q.nr_task_timers, 1);
    }

    /// Equal expiries run in arming order; a cancel removes every timer of its function and
    /// nothing else, from all three orders.
    #[test]
    fn equal_expiries_keep_arming_order_and_cancel_is_by_function() {
        let mut q = HrTimerQueue::default();
        let (a, b) = (TaskId(1), TaskId(2));
        q.insert(timer(50, 50, 3, TimerFn::WakeTask(b)));
        q.insert(timer(50, 50, 1, TimerFn::WakeTask(a)));
        q.insert(timer(50, 50, 2, TimerFn::Tick));
        q.insert(timer(70, 70, 4, TimerFn::DlServer(CpuId(0))));
        assert!(q.cancel_func(TimerFn::DlServer(CpuId(0))));
        assert!(!q.cancel_func(TimerFn::DlServer(CpuId(0))), "already gone");
        assert!(!q.cancel_func(TimerFn::DlTask(a)), "never armed");
        let due: Vec<TimerFn> = q.take_expired(1_000).into_iter().map(|t| t.func).collect();
        assert_eq!(
            due,
            vec![TimerFn::WakeTask(a), TimerFn::Tick, TimerFn::WakeTask(b)]
        );
        assert!(q.is_empty());
        assert!(q.by_soft.is_empty() && q.by_func.is_empty());
        assert_eq!(q.nr_task_timers, 0);
    }
}
