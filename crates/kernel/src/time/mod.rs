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
//! timerqueue (an rbtree). A CPU with few timers keeps them in a short sorted array, whose
//! passes cost less than tree operations; with many, arming, cancelling and expiring cost
//! O(log n) per timer in the timers of that CPU, never a pass over all of them.
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

/// Armed timers up to which a CPU's queue is a sorted array; one more and it becomes
/// [`ManyTimers`]. A CPU usually has a handful (its tick, its fair server, the sleepers it
/// ran last); the array's linear passes then cost less than one B-tree operation.
const FEW_TIMERS_MAX: usize = 32;

/// Armed timers at or below which a queue of [`ManyTimers`] becomes an array again: half of
/// [`FEW_TIMERS_MAX`], so that a queue near the bound does not convert on every arm and
/// expiry.
const MANY_TIMERS_MIN: usize = FEW_TIMERS_MAX / 2;

/// One CPU's armed hrtimers (`hrtimer_clock_base.active`, a timerqueue).
///
/// Linux orders the timerqueue by hard expiry and finds the first timer through a cached
/// leftmost node. The model keeps the same order in one of two forms, chosen by the number
/// of timers: up to `FEW_TIMERS_MAX` (32) an array sorted by (hard expiry, arming order),
/// whose expiry and cancel are passes over the array (an expiry only over the timers that
/// can have expired); above it three B-trees (`ManyTimers`), where every operation is
/// O(log n) per timer it touches. Both give the same first timer, iteration order and
/// expired timers (the tests run both on the same operations).
#[derive(Clone, Debug)]
pub struct HrTimerQueue {
    timers: Timers,
    /// How many of them are task timers ([`TimerFn::is_task_timer`]).
    nr_task_timers: usize,
    /// The largest slack (hard minus soft expiry) of any timer ever armed here: a timer
    /// whose hard expiry is later than `now` plus this has not expired by `now`.
    max_slack_ns: Nanos,
    /// The list of expired timers the last interrupt ran, empty, kept for its allocation
    /// ([`hrtimer_expire`], [`hrtimer_expire_done`]).
    spare_due: Vec<TimerFn>,
}

#[derive(Clone, Debug)]
enum Timers {
    /// Sorted by (hard expiry, arming order), at most [`FEW_TIMERS_MAX`] long.
    Few(Vec<HrTimer>),
    /// More than [`MANY_TIMERS_MIN`].
    Many(Box<ManyTimers>),
}

/// A queue with many timers, kept three ways, each a `BTreeSet`: by hard expiry (the
/// timerqueue: the clock-event device is programmed for its first), by soft expiry (the
/// timers an interrupt runs), and by function (the timers a cancel removes).
#[derive(Clone, Debug, Default)]
struct ManyTimers {
    /// By (hard expiry, arming order).
    by_hard: BTreeSet<HrTimer>,
    /// The same timers by soft expiry.
    by_soft: BTreeSet<(Nanos, HrTimer)>,
    /// The same timers by function.
    by_func: BTreeSet<(TimerFn, HrTimer)>,
}

impl ManyTimers {
    fn insert(&mut self, t: HrTimer) {
        let fresh = self.by_hard.insert(t);
        assert!(fresh, "hrtimer {t:?} armed twice");
        self.by_soft.insert((t.soft_ns, t));
        self.by_func.insert((t.func, t));
    }

    fn remove(&mut self, t: HrTimer) {
        let was = self.by_hard.remove(&t);
        assert!(was, "hrtimer {t:?} not armed");
        let was = self.by_soft.remove(&(t.soft_ns, t));
        assert!(was, "hrtimer {t:?} missing from the soft-expiry order");
        let was = self.by_func.remove(&(t.func, t));
        assert!(was, "hrtimer {t:?} missing from the function index");
    }

    /// The armed timers that run `func`.
    fn with_func(&self, func: TimerFn) -> Vec<HrTimer> {
        let lo = HrTimer {
            hard_ns: Nanos::MIN,
            seq: u64::MIN,
            soft_ns: Nanos::MIN,
            func,
        };
        self.by_func
            .range((func, lo)..)
            .take_while(|(f, _)| *f == func)
            .map(|&(_, t)| t)
            .collect()
    }

    /// The timers whose soft expiry is at or before `now`, in (hard expiry, arming) order.
    fn expired(&self, now: Nanos) -> Vec<HrTimer> {
        let mut due: Vec<HrTimer> = self
            .by_soft
            .iter()
            .take_while(|&&(soft_ns, _)| soft_ns <= now)
            .map(|&(_, t)| t)
            .collect();
        due.sort_unstable();
        due
    }
}

impl Default for HrTimerQueue {
    fn default() -> Self {
        HrTimerQueue {
            timers: Timers::Few(Vec::new()),
            nr_task_timers: 0,
            max_slack_ns: 0,
            spare_due: Vec::new(),
        }
    }
}

impl HrTimerQueue {
    /// `enqueue_hrtimer()` / `timerqueue_add()`.
    fn insert(&mut self, t: HrTimer) {
        assert!(
            t.soft_ns <= t.hard_ns,
            "hrtimer {t:?} has its soft expiry after its hard one"
        );
        match &mut self.timers {
            Timers::Few(v) if v.len() < FEW_TIMERS_MAX => {
                let at = v.partition_point(|x| *x < t);
                assert!(v.get(at) != Some(&t), "hrtimer {t:?} armed twice");
                v.insert(at, t);
            }
            Timers::Few(v) => {
                let mut many = ManyTimers::default();
                for &x in v.iter() {
                    many.insert(x);
                }
                many.insert(t);
                self.timers = Timers::Many(Box::new(many));
            }
            Timers::Many(many) => many.insert(t),
        }
        if t.func.is_task_timer() {
            self.nr_task_timers += 1;
        }
        self.max_slack_ns = self.max_slack_ns.max(t.hard_ns - t.soft_ns);
    }

    /// Back to the array once a queue of many timers has few again.
    fn maybe_shrink(&mut self) {
        if let Timers::Many(many) = &self.timers {
            if many.by_hard.len() <= MANY_TIMERS_MIN {
                let mut v = Vec::with_capacity(FEW_TIMERS_MAX);
                v.extend(many.by_hard.iter().copied());
                self.timers = Timers::Few(v);
            }
        }
    }

    /// The timer that expires first (`timerqueue_getnext()`).
    pub fn first(&self) -> Option<&HrTimer> {
        match &self.timers {
            Timers::Few(v) => v.first(),
            Timers::Many(many) => many.by_hard.first(),
        }
    }

    /// The armed timers in expiry order.
    pub fn iter(&self) -> impl Iterator<Item = &HrTimer> + '_ {
        let (few, many) = match &self.timers {
            Timers::Few(v) => (Some(v.iter()), None),
            Timers::Many(many) => (None, Some(many.by_hard.iter())),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }

    pub fn len(&self) -> usize {
        match &self.timers {
            Timers::Few(v) => v.len(),
            Timers::Many(many) => many.by_hard.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remove every armed timer that runs `func`; true if there was one.
    fn cancel_func(&mut self, func: TimerFn) -> bool {
        let removed = match &mut self.timers {
            Timers::Few(v) => {
                let before = v.len();
                v.retain(|t| t.func != func);
                before - v.len()
            }
            Timers::Many(many) => {
                let armed = many.with_func(func);
                for &t in &armed {
                    many.remove(t);
                }
                armed.len()
            }
        };
        if func.is_task_timer() {
            self.nr_task_timers -= removed;
        }
        self.maybe_shrink();
        removed > 0
    }

    /// Remove the timers whose soft expiry is at or before `now` and append their functions
    /// to `due`, in expiry order (hard expiry, then arming order).
    fn take_expired(&mut self, now: Nanos, due: &mut Vec<TimerFn>) {
        let mut nr_task = 0;
        match &mut self.timers {
            Timers::Few(v) => {
                // Only a timer whose hard expiry is at most `horizon` can have expired: a
                // pass over those in order, moving the ones that stay to the front.
                let horizon = now.saturating_add(self.max_slack_ns);
                let (mut kept, mut i) = (0, 0);
                while i < v.len() && v[i].hard_ns <= horizon {
                    let t = v[i];
                    if t.soft_ns <= now {
                        due.push(t.func);
                        nr_task += usize::from(t.func.is_task_timer());
                    } else {
                        v[kept] = t;
                        kept += 1;
                    }
                    i += 1;
                }
                v.drain(kept..i);
            }
            Timers::Many(many) => {
                for t in many.expired(now) {
                    many.remove(t);
                    due.push(t.func);
                    nr_task += usize::from(t.func.is_task_timer());
                }
            }
        }
        self.nr_task_timers -= nr_task;
        self.maybe_shrink();
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
    let q = &mut s.hrtimers[cpu.idx()];
    let mut due = std::mem::take(&mut q.spare_due);
    assert!(
        due.is_empty(),
        "the spare list of expired timers is handed back empty"
    );
    q.take_expired(now, &mut due);
    hrtimer_reprogram(s, cpu);
    due
}

/// Hand back the list [`hrtimer_expire`] returned once its timers have run, so that the
/// next interrupt of `cpu` reuses its allocation (an interrupt that does not hand it back
/// only costs the next one an allocation).
pub fn hrtimer_expire_done(s: &mut SchedState, cpu: CpuId, mut due: Vec<TimerFn>) {
    due.clear();
    s.hrtimers[cpu.idx()].spare_due = due;
}

/// Whether any task timer is armed anywhere (for stall detection). O(CPUs).
pub fn task_timers_armed(s: &SchedState) -> bool {
    s.task_timers_in_flight > 0 || s.hrtimers.iter().any(|q| q.nr_task_timers > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::{Oracle, Stream};

    fn timer(hard_ns: Nanos, soft_ns: Nanos, seq: u64, func: TimerFn) -> HrTimer {
        HrTimer {
            hard_ns,
            seq,
            soft_ns,
            func,
        }
    }

    /// A queue holding `padding` fair-server timers far in the future (seq 1000 on), so that
    /// with enough of them the tests below run on the B-tree form, otherwise on the array.
    fn queue(padding: usize) -> HrTimerQueue {
        let mut q = HrTimerQueue::default();
        for i in 0..padding {
            let far = 1_000_000 + i as Nanos;
            q.insert(timer(
                far,
                far,
                1_000 + i as u64,
                TimerFn::DlServer(CpuId(i as u32)),
            ));
        }
        q
    }

    fn expire(q: &mut HrTimerQueue, now: Nanos) -> Vec<TimerFn> {
        let mut due = Vec::new();
        q.take_expired(now, &mut due);
        due
    }

    /// Both forms: the array (no padding) and the B-trees (padding that keeps it above
    /// [`MANY_TIMERS_MIN`] throughout).
    const PADDINGS: [usize; 2] = [0, FEW_TIMERS_MAX + 4];

    fn is_many(q: &HrTimerQueue) -> bool {
        matches!(q.timers, Timers::Many(_))
    }

    /// An interrupt runs every timer whose soft expiry passed, in hard-expiry order, also one
    /// queued behind a timer that is not due yet; the rest stay armed.
    #[test]
    fn expiry_takes_the_soft_expired_in_hard_order() {
        for padding in PADDINGS {
            let mut q = queue(padding);
            let (p, r) = (TaskId(7), TaskId(8));
            q.insert(timer(100, 100, 1, TimerFn::Tick));
            q.insert(timer(150, 60, 2, TimerFn::WakeTask(p)));
            q.insert(timer(120, 110, 3, TimerFn::DlTask(r)));
            q.insert(timer(90, 40, 4, TimerFn::WakeTask(r)));
            assert_eq!(is_many(&q), padding > 0);
            assert_eq!(q.first().map(|t| t.hard_ns), Some(90));
            assert_eq!(q.nr_task_timers, 3);
            assert!(expire(&mut q, 39).is_empty());
            // Hard order 90, 100, 150; the DL timer (soft 110) stays although its hard
            // expiry (120) is before the nanosleep's (150).
            assert_eq!(
                expire(&mut q, 100),
                vec![TimerFn::WakeTask(r), TimerFn::Tick, TimerFn::WakeTask(p)]
            );
            assert_eq!(q.len(), padding + 1);
            assert_eq!(q.first().map(|t| t.func), Some(TimerFn::DlTask(r)));
            assert_eq!(q.nr_task_timers, 1);
            assert_eq!(is_many(&q), padding > 0);
        }
    }

    /// Equal expiries run in arming order; a cancel removes every timer of its function and
    /// nothing else.
    #[test]
    fn equal_expiries_keep_arming_order_and_cancel_is_by_function() {
        for padding in PADDINGS {
            let mut q = queue(padding);
            let (a, b) = (TaskId(1), TaskId(2));
            q.insert(timer(50, 50, 3, TimerFn::WakeTask(b)));
            q.insert(timer(50, 50, 1, TimerFn::WakeTask(a)));
            q.insert(timer(50, 50, 2, TimerFn::Tick));
            q.insert(timer(70, 70, 4, TimerFn::CfsPeriod(1)));
            q.insert(timer(80, 80, 5, TimerFn::CfsPeriod(1)));
            assert!(q.cancel_func(TimerFn::CfsPeriod(1)));
            assert!(!q.cancel_func(TimerFn::CfsPeriod(1)), "already gone");
            assert!(!q.cancel_func(TimerFn::DlTask(a)), "never armed");
            assert_eq!(
                expire(&mut q, 1_000),
                vec![TimerFn::WakeTask(a), TimerFn::Tick, TimerFn::WakeTask(b)]
            );
            assert_eq!(q.len(), padding);
            if let Timers::Many(many) = &q.timers {
                assert_eq!(many.by_soft.len(), padding);
                assert_eq!(many.by_func.len(), padding);
            }
            assert_eq!(q.nr_task_timers, 0);
        }
    }

    /// The queue against its definition (a plain list, sorted on every question), over random
    /// arming, cancelling and expiry that cross [`FEW_TIMERS_MAX`] and [`MANY_TIMERS_MIN`]
    /// many times: the same first timer, order, expired timers and count of task timers in
    /// both forms and across the conversions.
    #[test]
    fn both_forms_agree_with_a_sorted_list() {
        let mut o = Oracle::new(11, Stream::Tie);
        let mut q = HrTimerQueue::default();
        let mut reference: Vec<HrTimer> = Vec::new();
        let (mut now, mut seq) = (0, 0);
        let (mut conversions, mut was_many) = (0, false);
        for round in 0..20_000u32 {
            // Phases of 500 rounds that mostly arm, then mostly expire.
            let arming = (round / 500).is_multiple_of(2);
            let r = o.next_u64();
            match r % 10 {
                0..=5 if arming || r.is_multiple_of(10) => {
                    seq += 1;
                    let soft_ns = now + (r >> 8) % 400;
                    let slack_ns = [0, 0, 50][(r >> 20) as usize % 3];
                    let task = TaskId(((r >> 24) % 48) as u32);
                    let func = match (r >> 32) % 4 {
                        0 => TimerFn::Tick,
                        1 => TimerFn::DlTask(task),
                        _ => TimerFn::WakeTask(task),
                    };
                    let t = timer(soft_ns + slack_ns, soft_ns, seq, func);
                    q.insert(t);
                    reference.push(t);
                }
                6 => {
                    let task = TaskId(((r >> 24) % 48) as u32);
                    let func = TimerFn::WakeTask(task);
                    let before = reference.len();
                    reference.retain(|t| t.func != func);
                    assert_eq!(q.cancel_func(func), reference.len() < before);
                }
                _ => {
                    now += (r >> 8) % 40;
                    reference.sort_unstable();
                    let want: Vec<TimerFn> = reference
                        .iter()
                        .filter(|t| t.soft_ns <= now)
                        .map(|t| t.func)
                        .collect();
                    reference.retain(|t| t.soft_ns > now);
                    assert_eq!(expire(&mut q, now), want, "round {round}");
                }
            }
            reference.sort_unstable();
            assert_eq!(q.first(), reference.first(), "round {round}");
            assert_eq!(q.len(), reference.len());
            let task_timers = reference.iter().filter(|t| t.func.is_task_timer()).count();
            assert_eq!(q.nr_task_timers, task_timers);
            if round.is_multiple_of(97) {
                assert!(q.iter().eq(reference.iter()), "round {round}");
            }
            if is_many(&q) != was_many {
                was_many = !was_many;
                conversions += 1;
            }
        }
        assert!(
            conversions >= 10,
            "the forms were exercised: {conversions} conversions"
        );
    }
}
