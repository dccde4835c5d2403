//! The machine and its executor: CPUs, contexts, spinlocks, interrupts.
//!
//! A *context* is one task's kernel stack, written as an `async fn` that never returns while
//! the task lives. Each CPU executes exactly one context at a time. A context gives up the
//! CPU only at an await point, and each await point says what the CPU does next:
//!
//! | await | meaning | CPU's next step |
//! |---|---|---|
//! | [`Machine::yield_now`] | an interleaving point | now (ties ordered by the oracle) |
//! | [`Machine::delay`] | a cost step, interrupts off | now + cost |
//! | [`Machine::poll`] | one or more busy-wait polls | now + n × period (see below) |
//! | [`Machine::run_interruptible`] | user work / idle, interrupts on | end, or the first interrupt |
//! | [`Machine::lock`] / [`Machine::spin`] | raw spinlock acquisition | now, or when handed the lock |
//! | [`Machine::switch_to`] | context switch | the next context resumes at once |
//!
//! The executor repeatedly advances the CPU whose next step is earliest. Which of the CPUs
//! due at the same instant steps first is asked of the machine's [`ChoiceSource`] when the
//! step is taken ([`crate::choice`]); the default source ([`SeedOrder`]) orders them by the
//! seed, so the same seed gives the same interleaving and another seed may give another.
//! The source may also add bounded delays at named points (IPI delivery, clock-event expiry,
//! spinlock attempts); the default adds none.
//!
//! ## Folding quiet polls
//!
//! A busy-wait loop (a mutex spinning on its owner, `smp_cond_load_acquire()`) re-reads
//! shared state every few nanoseconds. A poll can only see something new if something wrote
//! that state since the last poll, and in this machine only a step can write: another CPU's
//! step, or an interrupt taken by the polling CPU itself. [`Machine::poll`] lets a context say
//! "I will poll every `period_ns`, and each poll decides exactly as the last one did unless the
//! state it reads changed". After such a step, and after the step hook has looked at it, the
//! executor computes [`Machine::quiet_until`]: the earliest instant at which anything but this
//! CPU's own polls can act. Every poll strictly before it would read the state the last one
//! read, take the same branch, and be continued through the executor's fast path (no heap
//! entry, no key drawn, no tie: see [`Executor::run`]); so the executor moves the CPU's wait
//! to its first poll instant at or after that instant (queued there, with its key, as the
//! last skipped poll would have queued it), resumes the context only then, and
//! [`Machine::poll`] reports how many polls passed. Time, the spent budget the loop counts, the choice source's draws
//! and every trace line come out exactly as if each poll had been a step; only
//! [`Machine::steps`] counts fewer (and [`Machine::folded_polls`] counts the difference).
//!
//! Spinners that poll at the same instants as each other (two CPUs spinning on one owner)
//! never leave a quiet stretch to one of them alone, so each poll is queued and its tie
//! ordered as usual. Such a poll is still skipped when it is *quiet*: no step that may have
//! written shared state has ended since its CPU last decided to poll (a per-machine
//! *epoch*; a step that began in a poll, took no interrupt and ended polling again on the
//! same context is clean by the contract of [`Machine::poll`] and does not move it). The
//! executor then takes its queue entry as for a step (the same ties asked of the choice
//! source, the same keys drawn) and places the next poll, without resuming the context or
//! calling the hook (`fold_tied_poll`); [`Machine::folded_polls`] counts it too. When the
//! choice source draws no keys (every strategy of the explorer), a whole stretch of such
//! polls at the front of the queue is skipped at once, asking the same ties in the same order
//! (`fold_spinners`); when no two of those spinners poll at the same instants there is no tie
//! to ask, and where the stretch ends is computed instead of walked (`fold_spinners_apart`).
//!
//! ## Continuing in place
//!
//! Most steps end at an await point after which the same CPU is again the earliest: its
//! next step is strictly before every queued one, so the executor's fast path would resume
//! it at once, with no key drawn and no tie. Returning `Pending` through the context's chain
//! of nested futures to the executor and descending back into it is then pure overhead. So
//! the await point itself ends the step (`Machine::continue_in_place`): it calls the step
//! hook, folds quiet polls, checks the same conditions the executor checks, and if they
//! hold, begins the next step and completes at once. The hook sees every step, in the same
//! order and with the same state; [`Machine::steps`] counts them all and
//! [`Machine::in_place_steps`] those begun in place.
//!
//! [`Machine::set_fast_paths`] turns folding and continuing in place off, for the test that
//! compares both.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::choice::{Bounds, ChoiceLog, ChoiceSource, Point, SeedOrder};
use crate::cpumask::CpuId;
use crate::time::Nanos;

crate::id_type! {
    /// An execution context (the kernel stack of one task). Numbered by the kernel model.
    pub struct CtxId;
}

/// A raw spinlock of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockId(pub u32);

type CtxFuture = Pin<Box<dyn Future<Output = ()>>>;

/// What a CPU waits for before its context continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// Continue at `CpuSlot::time` (an interleaving point).
    Ready,
    /// Continue at this time; interrupts are not taken meanwhile.
    Until(Nanos),
    /// Continue at `end`, or earlier at the first interrupt.
    Interruptible { start: Nanos, end: Nanos },
    /// Busy-wait polling ([`Machine::poll`]): continue at `at` (a poll instant), having
    /// polled every `period_ns` since the await. `max_polls` bounds how far the executor may
    /// fold; `irqs` says an interrupt due on this CPU ends the quiet time (the loop takes
    /// interrupts between polls).
    Poll {
        at: Nanos,
        period_ns: Nanos,
        max_polls: u64,
        irqs: bool,
    },
    /// Spinning on a lock; continued by the unlocker's handoff.
    Spin,
    /// Stopped for good ([`Machine::halt`]).
    Halted,
    /// Set by the executor before each poll; a context that pends without a machine await
    /// point leaves it here, which is a bug in the model.
    Unset,
}

/// Result of [`Machine::run_interruptible`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunResult {
    /// The whole duration passed.
    Completed,
    /// An interrupt arrived after `ran_ns`; the caller must take it.
    Interrupted { ran_ns: Nanos },
}

/// Interrupt sources due on a CPU, returned by [`Machine::take_irqs`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqSources {
    /// The CPU's clock-event device fired.
    pub timer: bool,
    /// Bitmask of IPI vectors that arrived.
    pub ipis: u32,
}

impl IrqSources {
    pub fn is_empty(&self) -> bool {
        !self.timer && self.ipis == 0
    }
}

struct CpuSlot {
    /// Local time: when the current step of this CPU begins.
    time: Nanos,
    ctx: Option<CtxId>,
    wait: Wait,
    /// Set by the executor when it resumes an interruptible wait early.
    interrupted: bool,
    /// Programmed expiry of the clock-event device, as the kernel asked for it.
    clockevent: Option<Nanos>,
    /// When the device really fires: `clockevent` plus any perturbation.
    clockevent_fire: Option<Nanos>,
    /// Pending IPIs: (arrival time, vector).
    ipis: Vec<(Nanos, u32)>,
    /// Generation of this CPU's live heap entry; older entries are stale.
    generation: u32,
    spin_since: Nanos,
    /// The CPU queued behind this one on the lock this CPU spins on (its link in the lock's
    /// [`SpinState`] queue); a CPU spins on one lock at a time.
    next_spinner: Option<CpuId>,
    /// [`State::epoch`] when this CPU last read shared state and decided to poll: while the
    /// epoch has not moved since, its next poll reads what it read then ([`fold_tied_poll`]).
    poll_epoch: u64,
}

impl CpuSlot {
    fn next_irq(&self) -> Option<Nanos> {
        let ipi = self.ipis.iter().map(|&(t, _)| t).min();
        match (self.clockevent_fire, ipi) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When this CPU's next step happens, if it is not waiting for someone else.
    fn next_event(&self) -> Option<Nanos> {
        match self.wait {
            Wait::Ready => Some(self.time),
            Wait::Until(t) | Wait::Poll { at: t, .. } => Some(t),
            Wait::Interruptible { end, .. } => match self.next_irq() {
                Some(irq) => Some(end.min(irq.max(self.time))),
                None => Some(end),
            },
            Wait::Spin | Wait::Halted => None,
            Wait::Unset => panic!("context pended on something that is not a machine await point"),
        }
    }
}

/// One raw spinlock. Its spinning CPUs form a FIFO queue linked through their
/// [`CpuSlot::next_spinner`] (as a queued spinlock's MCS nodes are per-CPU), so a lock costs
/// 32 bytes however contended: the model has two per task (`pi_lock`, `blocked_lock`).
struct SpinState {
    owner: Option<CpuId>,
    /// First and last spinning CPU, [`NO_SPINNER`] when none spins.
    head: u32,
    tail: u32,
    contentions: u64,
    spin_ns: u64,
}

/// [`SpinState::head`]/[`SpinState::tail`] of a lock nobody spins on.
const NO_SPINNER: u32 = u32::MAX;

struct State {
    now: Nanos,
    cur: CpuId,
    cpus: Vec<CpuSlot>,
    locks: Vec<SpinState>,
    /// Every decision time does not fix (tie order, perturbations).
    choices: Box<dyn ChoiceSource>,
    /// Cached `choices.bounds()`.
    bounds: Bounds,
    /// Cached `choices.draws_keys()`: when false, every key is 0 and quiet polls are folded a
    /// whole stretch at a time ([`fold_spinners`]).
    draws_keys: bool,
    /// The decisions taken, when recording.
    log: Option<ChoiceLog>,
    /// Live and stale queued steps: (time, key from the choice source, cpu, generation).
    heap: BinaryHeap<Reverse<(Nanos, u64, CpuId, u32)>>,
    /// Scratch list of the CPUs tied at the earliest instant.
    tied: Vec<(CpuId, u32)>,
    /// Scratch lists of [`fold_spinners`]: the spinners (next poll, CPU) and a tie among them.
    spinners: Vec<(Nanos, CpuId)>,
    spin_tie: Vec<CpuId>,
    spawns: Vec<(CtxId, CtxFuture)>,
    reaped: Vec<CtxId>,
    /// Whether each context is executing on some CPU.
    running: Vec<bool>,
    stop: bool,
    spin_handoff_ns: Nanos,
    /// Busy-wait polls the executor folded instead of stepping ([`Machine::poll`]).
    folded_polls: u64,
    /// Steps begun in place by the await point that ended the previous one
    /// (`Machine::continue_in_place`).
    in_place_steps: u64,
    /// Whether quiet polls are folded ([`Machine::set_fast_paths`]).
    fast_paths: bool,
    /// The step hook's deadline for the current step ([`Machine::observe_before`]).
    observe_before: Nanos,
    /// The time limit of the running [`Executor::run`] (`Nanos::MAX` outside one).
    limit_ns: Nanos,
    /// Moves at the end of every step that may have written shared state: every step but a
    /// *clean* one (a poll that polls again, module doc), and at the start of each
    /// [`Executor::run`] (its caller may have changed anything).
    epoch: u64,
    /// The step being executed began in a busy-wait poll ([`Wait::Poll`]), on this context.
    step_from_poll: bool,
    step_ctx: Option<CtxId>,
    /// The step being executed took an interrupt ([`Machine::take_irqs`]).
    step_irq: bool,
}

/// The shared machine: kernel code holds an `Rc<Machine>` and calls it between awaits.
pub struct Machine {
    st: RefCell<State>,
    /// Cached copy of `State::now` so hot paths read time without a borrow.
    now: Cell<Nanos>,
    /// Cached copy of `State::cur`, for [`Machine::this_cpu`] without a borrow.
    cur: Cell<CpuId>,
    /// Steps executed ([`Machine::steps`]), readable without a borrow.
    steps: Cell<u64>,
    /// Contexts were spawned or reaped since the executor last looked.
    ctx_changes: Cell<bool>,
    /// The step hook of the running [`Executor::run`] (None outside one), so that an await
    /// point can end its step and begin the next in place (`Machine::continue_in_place`).
    hook: Cell<Option<HookPtr>>,
    /// Set when an await point ran the hook for the step it ended but did not continue in
    /// place: the hook's verdict, which the executor then uses instead of calling it again.
    hook_verdict: Cell<Option<bool>>,
}

/// The executor's step hook with its lifetime erased. Valid only while the
/// [`Executor::run`] that stored it is on the stack (its guard clears it on every exit).
type HookPtr = std::ptr::NonNull<dyn FnMut(CpuId) -> bool>;

/// Why [`Executor::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// The model asked to stop ([`Machine::stop`]).
    Stopped,
    /// The next step would be past the time limit; time is set to the limit.
    TimeLimit,
    /// No CPU has anything to do, not even an interrupt to wait for.
    NoEvents,
    /// The step hook asked to stop.
    Hook,
}

/// Called after every step with the CPU that stepped; returning `false` stops the run.
///
/// Folded polls ([`Machine::poll`]) are not steps and the hook does not see them. That is
/// exact for a hook whose verdict on unchanged state changes only at deadlines it declares
/// with [`Machine::observe_before`] (and which keeps no per-call count): a folded poll changes
/// no state, and none is folded at or past a declared deadline.
pub type StepHook<'a> = &'a mut dyn FnMut(CpuId) -> bool;

impl Machine {
    /// A machine with `nr_cpus` CPUs. `seed` seeds the default choice source ([`SeedOrder`]);
    /// `spin_handoff_ns` is the time from a spinlock's release to the first waiter owning it.
    pub fn new(nr_cpus: usize, seed: u64, spin_handoff_ns: Nanos) -> Machine {
        assert!((1..=crate::MAX_CPUS).contains(&nr_cpus));
        let cpus = (0..nr_cpus)
            .map(|_| CpuSlot {
                time: 0,
                ctx: None,
                wait: Wait::Ready,
                interrupted: false,
                clockevent: None,
                clockevent_fire: None,
                ipis: Vec::new(),
                generation: 0,
                spin_since: 0,
                next_spinner: None,
                poll_epoch: 0,
            })
            .collect();
        Machine {
            st: RefCell::new(State {
                now: 0,
                cur: CpuId(0),
                cpus,
                locks: Vec::new(),
                choices: Box::new(SeedOrder::new(seed)),
                bounds: Bounds::OFF,
                draws_keys: true,
                log: None,
                heap: BinaryHeap::new(),
                tied: Vec::new(),
                spinners: Vec::new(),
                spin_tie: Vec::new(),
                spawns: Vec::new(),
                reaped: Vec::new(),
                running: Vec::new(),
                stop: false,
                spin_handoff_ns,
                folded_polls: 0,
                in_place_steps: 0,
                fast_paths: true,
                observe_before: Nanos::MAX,
                limit_ns: Nanos::MAX,
                epoch: 0,
                step_from_poll: false,
                step_ctx: None,
                step_irq: false,
            }),
            now: Cell::new(0),
            cur: Cell::new(CpuId(0)),
            steps: Cell::new(0),
            ctx_changes: Cell::new(false),
            hook: Cell::new(None),
            hook_verdict: Cell::new(None),
        }
    }

    pub fn nr_cpus(&self) -> usize {
        self.st.borrow().cpus.len()
    }

    /// Current simulated time (the time of the step being executed).
    #[inline]
    pub fn now(&self) -> Nanos {
        self.now.get()
    }

    /// The CPU whose step is being executed (Linux `smp_processor_id()`).
    #[inline]
    pub fn this_cpu(&self) -> CpuId {
        self.cur.get()
    }

    /// The context executing on `cpu` (inlined: every trace event asks it).
    #[inline]
    pub fn cpu_ctx(&self, cpu: CpuId) -> Option<CtxId> {
        self.st.borrow().cpus[cpu.idx()].ctx
    }

    /// Number of steps executed so far (folded polls are not steps: [`Machine::folded_polls`]).
    #[inline]
    pub fn steps(&self) -> u64 {
        self.steps.get()
    }

    /// Number of busy-wait polls the executor folded instead of stepping ([`Machine::poll`]).
    pub fn folded_polls(&self) -> u64 {
        self.st.borrow().folded_polls
    }

    /// Number of steps that an await point began in place, without returning to the executor
    /// (`Machine::continue_in_place`); they are counted in [`Machine::steps`] too.
    pub fn in_place_steps(&self) -> u64 {
        self.st.borrow().in_place_steps
    }

    /// Whether the executor may take its fast paths (on by default): fold quiet polls, and
    /// let an await point continue its context in place. Off, every poll of
    /// [`Machine::poll`] is its own step, as a chain of [`Machine::delay`]s would be, and every
    /// step returns to the executor; traces, metrics and choices are the same either way (the
    /// module doc says why).
    pub fn set_fast_paths(&self, on: bool) {
        self.st.borrow_mut().fast_paths = on;
    }

    /// Called by the step hook ([`StepHook`]): looking at unchanged state at any instant
    /// before `at` would tell the hook nothing new (a watchdog's next period, a bound on a
    /// wait), so the executor folds no poll at or past `at`. Reset to "never" before each call
    /// of the hook; a hook that depends on time only through such deadlines declares the
    /// earliest after every step.
    pub fn observe_before(&self, at: Nanos) {
        let mut st = self.st.borrow_mut();
        st.observe_before = st.observe_before.min(at);
    }

    /// The earliest instant at which something other than this CPU's own busy-wait polls can
    /// act, as seen now: the first queued step of any CPU (stale heap entries included: they
    /// end the executor's fast path too), this CPU's first interrupt when `irqs` (the poll
    /// loop takes interrupts), the end of the running [`Executor::run`]'s time limit, and the
    /// step hook's deadline ([`Machine::observe_before`]). Until then the state a poll reads
    /// cannot change. Meaningful at the end of a step; the executor uses it to fold the polls
    /// of [`Machine::poll`].
    pub fn quiet_until(&self, irqs: bool) -> Nanos {
        let st = self.st.borrow();
        quiet_until(&st, st.cur, irqs)
    }

    /// Take every later decision from `source` instead of the seeded default, and record
    /// them when `record` is set ([`Machine::choice_log`]). Only before the first step is
    /// queued (before [`Machine::boot_cpu`]).
    pub fn set_choice_source(&self, source: Box<dyn ChoiceSource>, record: bool) {
        let mut st = self.st.borrow_mut();
        assert!(
            st.heap.is_empty() && self.steps.get() == 0,
            "the choice source is chosen before the machine boots"
        );
        st.bounds = source.bounds();
        st.draws_keys = source.draws_keys();
        st.choices = source;
        st.log = record.then(|| ChoiceLog {
            bounds: st.bounds,
            ..ChoiceLog::default()
        });
    }

    /// Start recording the decisions of the current source.
    pub fn record_choices(&self) {
        let mut st = self.st.borrow_mut();
        let bounds = st.bounds;
        st.log.get_or_insert_with(|| ChoiceLog {
            bounds,
            ..ChoiceLog::default()
        });
    }

    /// The decisions recorded so far (None when not recording).
    pub fn choice_log(&self) -> Option<ChoiceLog> {
        self.st.borrow().log.clone()
    }

    /// Ask the executor to stop after the current step.
    pub fn stop(&self) {
        self.st.borrow_mut().stop = true;
    }

    /// Register a new context. It first runs when some CPU switches to it, or at boot when
    /// [`Machine::boot_cpu`] names it.
    pub fn spawn(&self, ctx: CtxId, fut: impl Future<Output = ()> + 'static) {
        self.st.borrow_mut().spawns.push((ctx, Box::pin(fut)));
        self.ctx_changes.set(true);
    }

    /// Make `ctx` the first context of `cpu`, runnable at time 0.
    pub fn boot_cpu(&self, cpu: CpuId, ctx: CtxId) {
        let mut st = self.st.borrow_mut();
        assert!(st.cpus[cpu.idx()].ctx.is_none(), "cpu{cpu} booted twice");
        st.cpus[cpu.idx()].ctx = Some(ctx);
        if st.running.len() <= ctx.idx() {
            st.running.resize(ctx.idx() + 1, false);
        }
        assert!(!st.running[ctx.idx()], "context {ctx} booted on two CPUs");
        st.running[ctx.idx()] = true;
        st.cpus[cpu.idx()].wait = Wait::Ready;
        queue_cpu(&mut st, cpu);
    }

    /// Drop a context that will never run again (a dead task after its final switch).
    pub fn reap(&self, ctx: CtxId) {
        self.st.borrow_mut().reaped.push(ctx);
        self.ctx_changes.set(true);
    }

    /// Called by an await point of the executing context with the wait it ends its step in:
    /// set the wait, end this step and, when the executor would continue this same CPU next
    /// anyway, begin the next step here and return `true` (the await point then completes at
    /// once, as if the executor had polled the context again). Otherwise return `false` and
    /// let the future pend.
    ///
    /// This does exactly what [`Executor::run`] does between two steps of one CPU on its fast
    /// path, in the same order: the step hook sees the state the step left (with
    /// [`Machine::observe_before`] reset), quiet polls are folded, and the CPU continues
    /// only if its next step is within the time limit and strictly earlier than every queued
    /// entry (so no key is drawn and no tie is decided, as on the executor's fast path). What
    /// is saved is the unwinding of the context's chain of nested futures to the executor and
    /// the descent back into it. When it cannot continue after the hook ran, the hook's
    /// verdict is left for the executor ([`Machine::hook_verdict`]), which places the step as
    /// usual without calling the hook twice.
    ///
    /// Never taken with the fast paths off, outside [`Executor::run`], or when contexts were
    /// spawned or reaped during the step (the executor adopts them between steps).
    #[inline]
    fn continue_in_place(&self, wait: Wait) -> bool {
        let (cpu, hook) = {
            let mut st = self.st.borrow_mut();
            let cpu = st.cur;
            st.cpus[cpu.idx()].wait = wait;
            let hook = match self.hook.get() {
                Some(hook) if st.fast_paths && !self.ctx_changes.get() => hook,
                _ => return false,
            };
            st.observe_before = Nanos::MAX;
            end_step(&mut st, cpu);
            (cpu, hook)
        };
        // SAFETY: `hook` was stored by the `Executor::run` on the stack below this poll, which
        // does not touch the hook while a context is being polled, and clears it before it
        // returns; no borrow of the machine is held across the call.
        let go_on = unsafe { (*hook.as_ptr())(cpu) };
        let mut st = self.st.borrow_mut();
        let next = match go_on && !st.stop {
            true => next_in_place(&mut st, cpu),
            false => None,
        };
        match next {
            Some(t) if !self.ctx_changes.get() => {
                begin_step(self, &mut st, t, cpu);
                st.in_place_steps += 1;
                true
            }
            _ => {
                self.hook_verdict.set(Some(go_on));
                false
            }
        }
    }

    // ---------------------------------------------------------------- await points

    /// An interleaving point: other CPUs with steps at this same instant may run first.
    pub fn yield_now(&self) -> WaitFuture<'_> {
        WaitFuture {
            m: self,
            kind: WaitKind::Yield,
            started: false,
        }
    }

    /// Burn `ns` of CPU time with interrupts off (a cost step). Zero is free and does not yield.
    pub fn delay(&self, ns: Nanos) -> WaitFuture<'_> {
        WaitFuture {
            m: self,
            kind: WaitKind::Delay(ns),
            started: false,
        }
    }

    /// Busy-wait: poll every `period_ns` (> 0) with interrupts off, or with interrupts taken
    /// between polls when `irqs` (then the caller checks [`Machine::irq_due`] on return).
    /// Returns the number of polls that passed, `n` in `1..=max_polls`: the caller's loop
    /// resumes at `now + n × period_ns`, its first poll whose outcome may differ.
    ///
    /// The contract: the caller awaits this only where each poll would re-read shared state
    /// and, finding it unchanged (and no interrupt due), take the same branch and await the
    /// same poll again; `max_polls` is how many more polls its own counters allow (a spin
    /// budget) before that branch changes. Then folding `n - 1` polls is exact (module doc).
    /// With `max_polls` 1, or fast paths off, it is `delay(period_ns)` returning 1.
    ///
    /// And: a step that resumes from this await, takes no interrupt and ends awaiting a poll
    /// again writes no shared state on the way, whatever it read (the checks between two
    /// polls of a spin loop only read). The executor relies on it to skip the polls of CPUs
    /// that spin at the same instants as each other (module doc).
    pub fn poll(&self, period_ns: Nanos, max_polls: u64, irqs: bool) -> PollFuture<'_> {
        assert!(period_ns > 0, "a poll period of 0 would not advance time");
        assert!(max_polls > 0, "a poll wait polls at least once");
        PollFuture {
            m: self,
            period_ns,
            max_polls,
            irqs,
            since: None,
        }
    }

    /// Stop this CPU for good (tests, and a machine with nothing left to run).
    pub fn halt(&self) -> WaitFuture<'_> {
        WaitFuture {
            m: self,
            kind: WaitKind::Halt,
            started: false,
        }
    }

    /// Run for `ns` with interrupts enabled; returns early if an interrupt arrives.
    /// `Nanos::MAX` waits for an interrupt only (idle).
    pub fn run_interruptible(&self, ns: Nanos) -> RunFuture<'_> {
        RunFuture {
            m: self,
            ns,
            started: false,
        }
    }

    /// Switch this CPU to context `next`. The calling context is parked and resumes (this
    /// future completes) when some CPU switches back to it.
    pub fn switch_to(&self, next: CtxId) -> SwitchFuture<'_> {
        SwitchFuture {
            m: self,
            next,
            started: false,
        }
    }

    /// Begin acquiring `lock`: an interleaving point after `cost_ns`, then either the lock is
    /// taken (`true`) or this CPU is queued behind the owner (`false`) and must await
    /// [`Machine::spin`].
    pub async fn lock(&self, lock: LockId, cost_ns: Nanos) -> bool {
        let cost_ns = {
            let mut st = self.st.borrow_mut();
            // `perturb` adds and records nothing at an unperturbed point: skip the call.
            if st.bounds.spin_ns == 0 {
                cost_ns
            } else {
                let cpu = st.cur;
                cost_ns + perturb(&mut st, Point::SpinLock, cpu)
            }
        };
        if cost_ns > 0 {
            self.delay(cost_ns).await;
        } else {
            self.yield_now().await;
        }
        self.try_lock(lock) || {
            self.enqueue_spinner(lock);
            false
        }
    }

    /// Wait, spinning, until the unlocker hands `lock` over. Returns the time spent spinning.
    pub async fn spin(&self, lock: LockId) -> Nanos {
        let since = {
            let st = self.st.borrow();
            st.cpus[st.cur.idx()].spin_since
        };
        WaitFuture {
            m: self,
            kind: WaitKind::Spin,
            started: false,
        }
        .await;
        let st = self.st.borrow();
        assert_eq!(
            st.locks[lock.0 as usize].owner,
            Some(st.cur),
            "spin returned without lock"
        );
        st.now - since
    }

    // ---------------------------------------------------------------- spinlocks

    pub fn new_lock(&self) -> LockId {
        let mut st = self.st.borrow_mut();
        st.locks.push(SpinState {
            owner: None,
            head: NO_SPINNER,
            tail: NO_SPINNER,
            contentions: 0,
            spin_ns: 0,
        });
        LockId(st.locks.len() as u32 - 1)
    }

    /// Give back the spare capacity of the lock table (its growth slack), once the locks of a
    /// run are made (at boot: a model with many tasks has two locks per task).
    pub fn shrink_locks(&self) {
        self.st.borrow_mut().locks.shrink_to_fit();
    }

    /// Take `lock` if it is free (Linux `raw_spin_trylock`); no interleaving point.
    #[inline]
    pub fn try_lock(&self, lock: LockId) -> bool {
        let mut st = self.st.borrow_mut();
        let cur = st.cur;
        let l = &mut st.locks[lock.0 as usize];
        assert_ne!(l.owner, Some(cur), "recursive acquisition of lock {}", lock.0);
        if l.owner.is_none() {
            l.owner = Some(cur);
            true
        } else {
            false
        }
    }

    fn enqueue_spinner(&self, lock: LockId) {
        let mut st = self.st.borrow_mut();
        let cur = st.cur;
        let now = st.now;
        st.cpus[cur.idx()].spin_since = now;
        st.cpus[cur.idx()].next_spinner = None;
        let l = &mut st.locks[lock.0 as usize];
        l.contentions += 1;
        let last = std::mem::replace(&mut l.tail, cur.0);
        if last == NO_SPINNER {
            l.head = cur.0;
        } else {
            st.cpus[last as usize].next_spinner = Some(cur);
        }
    }

    /// Release `lock` (held by this CPU). A spinning waiter, first come first served as with
    /// a queued spinlock, owns it after the handoff time. Not an await point by itself;
    /// kernel wrappers yield after it.
    #[inline]
    pub fn unlock(&self, lock: LockId) {
        let mut st = self.st.borrow_mut();
        let cur = st.cur;
        let now = st.now;
        let handoff = st.spin_handoff_ns;
        let l = &mut st.locks[lock.0 as usize];
        assert_eq!(
            l.owner,
            Some(cur),
            "unlock of lock {} not held by cpu{cur}",
            lock.0
        );
        match (l.head != NO_SPINNER).then_some(CpuId(l.head)) {
            None => l.owner = None,
            Some(w) => {
                l.owner = Some(w);
                let next = st.cpus[w.idx()].next_spinner.take();
                let l = &mut st.locks[lock.0 as usize];
                l.head = next.map_or(NO_SPINNER, |c| c.0);
                if next.is_none() {
                    l.tail = NO_SPINNER;
                }
                let slot = &mut st.cpus[w.idx()];
                assert_eq!(slot.wait, Wait::Spin);
                let spun = now + handoff - slot.spin_since;
                slot.wait = Wait::Until(now + handoff);
                st.locks[lock.0 as usize].spin_ns += spun;
                queue_cpu(&mut st, w);
            }
        }
    }

    #[inline]
    pub fn lock_owner(&self, lock: LockId) -> Option<CpuId> {
        self.st.borrow().locks[lock.0 as usize].owner
    }

    /// (times contended, total ns spent spinning) for `lock`.
    pub fn lock_stats(&self, lock: LockId) -> (u64, Nanos) {
        let st = self.st.borrow();
        let l = &st.locks[lock.0 as usize];
        (l.contentions, l.spin_ns)
    }

    // ---------------------------------------------------------------- interrupts

    /// Program `cpu`'s clock-event device to fire at `at` (or disarm it). A perturbing choice
    /// source may make it fire later; [`Machine::clockevent`] still reads `at`.
    pub fn program_clockevent(&self, cpu: CpuId, at: Option<Nanos>) {
        let mut st = self.st.borrow_mut();
        let fire = at.map(|t| t + perturb(&mut st, Point::Timer, cpu));
        st.cpus[cpu.idx()].clockevent = at;
        st.cpus[cpu.idx()].clockevent_fire = fire;
        requeue_if_interruptible(&mut st, cpu);
    }

    pub fn clockevent(&self, cpu: CpuId) -> Option<Nanos> {
        self.st.borrow().cpus[cpu.idx()].clockevent
    }

    /// Raise IPI `vector` (0..32) on `cpu`, arriving at `at` (later under a perturbing
    /// choice source).
    pub fn send_ipi(&self, cpu: CpuId, vector: u32, at: Nanos) {
        assert!(vector < 32);
        let mut st = self.st.borrow_mut();
        let at = at + perturb(&mut st, Point::Ipi, cpu);
        st.cpus[cpu.idx()].ipis.push((at, vector));
        requeue_if_interruptible(&mut st, cpu);
    }

    /// Whether an interrupt is due on this CPU now.
    pub fn irq_due(&self) -> bool {
        let st = self.st.borrow();
        st.cpus[st.cur.idx()].next_irq().is_some_and(|t| t <= st.now)
    }

    /// Whether an interrupt other than IPI `vector` is due on this CPU now (the kernel model
    /// asks it with a vector that stands for no real interrupt).
    pub fn irq_due_except_ipi(&self, vector: u32) -> bool {
        let st = self.st.borrow();
        let slot = &st.cpus[st.cur.idx()];
        slot.clockevent_fire.is_some_and(|t| t <= st.now)
            || slot.ipis.iter().any(|&(t, v)| t <= st.now && v != vector)
    }

    /// Take (acknowledge) every interrupt source due on this CPU now.
    pub fn take_irqs(&self) -> IrqSources {
        let mut st = self.st.borrow_mut();
        let now = st.now;
        let cur = st.cur.idx();
        let slot = &mut st.cpus[cur];
        let mut src = IrqSources::default();
        if slot.clockevent_fire.is_some_and(|t| t <= now) {
            slot.clockevent = None;
            slot.clockevent_fire = None;
            src.timer = true;
        }
        slot.ipis.retain(|&(t, v)| {
            if t <= now {
                src.ipis |= 1 << v;
                false
            } else {
                true
            }
        });
        if !src.is_empty() {
            st.step_irq = true;
        }
        src
    }

    /// Whether IPIs are pending (arrived or in flight) on `cpu`.
    pub fn ipi_pending(&self, cpu: CpuId, vector: u32) -> bool {
        self.st.borrow().cpus[cpu.idx()]
            .ipis
            .iter()
            .any(|&(_, v)| v == vector)
    }
}

/// A queued step: (time, key from the choice source, cpu, generation).
type Queued = (Nanos, u64, CpuId, u32);

fn queue_cpu(st: &mut State, cpu: CpuId) {
    if let Some(q) = queued_step(st, cpu) {
        st.heap.push(Reverse(q));
    }
}

/// The entry [`queue_cpu`] pushes for `cpu` (its older entries are stale from now on), for a
/// caller that hands it to [`pop_next`] instead.
#[inline]
fn queued_step(st: &mut State, cpu: CpuId) -> Option<Queued> {
    let slot = &mut st.cpus[cpu.idx()];
    slot.generation = slot.generation.wrapping_add(1);
    let generation = slot.generation;
    let t = slot.next_event()?;
    let key = st.choices.queued(cpu);
    Some((t, key, cpu, generation))
}

/// The extra delay at `point` on `cpu` (0 unless the source perturbs that point), recorded.
fn perturb(st: &mut State, point: Point, cpu: CpuId) -> Nanos {
    let max = st.bounds.get(point);
    if max == 0 {
        return 0;
    }
    let ns = st.choices.perturb(point, cpu, max).min(max);
    if let Some(log) = &mut st.log {
        log.choices.push(ns);
    }
    ns
}

/// Pop the next step to take: the earliest live entry by (time, key); when several CPUs share
/// that time and key, the choice source picks one at this moment and the others go back on
/// the heap.
///
/// `pending` is an entry the caller queued just before ([`queued_step`]) but did not push:
/// it counts as on the heap, and taking it or putting it in the place of the top entry costs
/// less than a push and a pop. Which entry is popped depends only on the heap's contents (the
/// entries are distinct and totally ordered), so the steps, ties and draws are the same.
fn pop_next(m: &Machine, st: &mut State, pending: Option<Queued>) -> Option<(Nanos, CpuId)> {
    let mut pending = pending;
    if !st.draws_keys && st.fast_paths {
        if let Some(q) = pending.take() {
            st.heap.push(Reverse(q));
        }
        fold_spinners(m, st);
    }
    let (t, key, cpu, generation) = loop {
        let (t, key, cpu, generation) = match pending.take() {
            None => st.heap.pop()?.0,
            Some(q) => match st.heap.peek_mut() {
                // The pending entry comes first: it is popped without touching the heap.
                None => q,
                Some(top) if q < top.0 => q,
                // The top comes first: the pending entry takes its place (one sift down).
                Some(mut top) => std::mem::replace(&mut *top, Reverse(q)).0,
            },
        };
        if st.cpus[cpu.idx()].generation == generation {
            break (t, key, cpu, generation);
        }
    };
    if st
        .heap
        .peek()
        .is_none_or(|Reverse((t2, k2, ..))| (*t2, *k2) != (t, key))
    {
        return Some((t, cpu));
    }
    let mut tied = std::mem::take(&mut st.tied);
    tied.clear();
    tied.push((cpu, generation));
    while let Some(&Reverse((t2, k2, c2, g2))) = st.heap.peek() {
        if (t2, k2) != (t, key) {
            break;
        }
        st.heap.pop();
        if st.cpus[c2.idx()].generation == g2 {
            tied.push((c2, g2));
        }
    }
    let cpu = if tied.len() == 1 {
        cpu
    } else {
        tied.sort_unstable();
        let cpus: Vec<CpuId> = tied.iter().map(|&(c, _)| c).collect();
        let i = st.choices.pick_cpu(t, &cpus).min(cpus.len() - 1);
        if let Some(log) = &mut st.log {
            log.choices.push(i as u64);
            log.ties += 1;
        }
        for (j, &(c, g)) in tied.iter().enumerate() {
            if j != i {
                st.heap.push(Reverse((t, key, c, g)));
            }
        }
        cpus[i]
    };
    st.tied = tied;
    Some((t, cpu))
}

/// [`Machine::quiet_until`] for `cpu`.
fn quiet_until(st: &State, cpu: CpuId, irqs: bool) -> Nanos {
    let mut t = st.heap.peek().map_or(Nanos::MAX, |Reverse((t, ..))| *t);
    if irqs {
        if let Some(irq) = st.cpus[cpu.idx()].next_irq() {
            t = t.min(irq);
        }
    }
    t.min(st.limit_ns.saturating_add(1)).min(st.observe_before)
}

/// Fold the quiet polls of `cpu`, which just ended a step (or a folded poll) in
/// [`Wait::Poll`] and whose step the hook has seen: move its next poll to its first poll
/// instant at or after [`quiet_until`], or to the last one its `max_polls` allows if that is
/// earlier.
///
/// Why this is exact: until `quiet` no other CPU steps (the heap's earliest entry is not
/// earlier), no interrupt reaches this CPU's loop, the run's time limit is not reached, and
/// the hook would learn nothing from another look at the same state. Each poll before
/// `quiet` is therefore a step of this CPU alone, reached by the executor's fast path (its
/// time is strictly before every queued entry, so no key is drawn and no tie is decided), that
/// reads the state the previous poll read and, by [`Machine::poll`]'s contract, awaits the
/// next poll again. Skipping those steps leaves every shared value, the heap and the choice
/// source exactly as they were; the context learns how many polls passed and accounts them.
/// The poll it lands on is placed as the last skipped one would have placed it (queued, with
/// its key, when it is not strictly the earliest), so a tie at `quiet` is ordered by the
/// choice source as it always was. A poll that exhausts `max_polls` takes another branch and
/// is always stepped.
#[inline(never)]
fn fold_polls(st: &mut State, cpu: CpuId) {
    let Wait::Poll {
        at,
        period_ns,
        max_polls,
        irqs,
    } = st.cpus[cpu.idx()].wait
    else {
        return;
    };
    // Its step (or the quiet poll the executor skipped) just ended in this epoch.
    debug_assert_eq!(st.cpus[cpu.idx()].poll_epoch, st.epoch, "folding a stale poll");
    if max_polls <= 1 {
        return;
    }
    let quiet = quiet_until(st, cpu, irqs);
    if quiet <= at {
        return;
    }
    // The polls at `at`, `at + period_ns`, ... strictly before `quiet`.
    let quiet_polls = (quiet - 1 - at) / period_ns + 1;
    let n = quiet_polls.min(max_polls - 1);
    st.cpus[cpu.idx()].wait = Wait::Poll {
        at: at + n * period_ns,
        period_ns,
        max_polls: max_polls - n,
        irqs,
    };
    st.folded_polls += n;
}

/// Fold one poll of `cpu` due at `t` that [`fold_polls`] could not fold because another CPU
/// is due at or before it (typically another spinner polling at the same instants): true if
/// the poll is *quiet* and was skipped, its CPU's wait moved on to the next poll.
///
/// A poll is quiet when no step that may have written shared state ended since its CPU
/// last decided to poll (its [`CpuSlot::poll_epoch`] is the current [`State::epoch`]), no
/// interrupt is due on it by `t` (when its loop takes them), it is not the last poll its
/// `max_polls` allows, and `t` is before the hook's deadline ([`Machine::observe_before`]).
/// Then it reads what its CPU read last, takes the same branch and polls again
/// ([`Machine::poll`]'s contract), writing nothing; so does every step it is interleaved
/// with that is itself such a poll (which is why a *clean* step, one that began in a poll,
/// took no interrupt and ended polling again on the same context, does not move the epoch:
/// [`end_step`]). The executor took the entry off its queue as for a step (the same ties
/// asked of the choice source, the same keys drawn) and places the next poll as after a
/// step; only the context is not resumed and the hook not called. It counts in
/// [`Machine::folded_polls`], not in [`Machine::steps`].
fn fold_tied_poll(m: &Machine, st: &mut State, t: Nanos, cpu: CpuId) -> bool {
    if !st.fast_paths || poll_is_quiet(st, cpu, t).is_none() {
        return false;
    }
    skip_poll(st, cpu);
    st.folded_polls += 1;
    st.now = t;
    m.now.set(t);
    true
}

/// Whether `cpu`'s poll at `t` (its next) is quiet ([`fold_tied_poll`]): its period if so.
fn poll_is_quiet(st: &State, cpu: CpuId, t: Nanos) -> Option<Nanos> {
    let slot = &st.cpus[cpu.idx()];
    let Wait::Poll {
        at,
        period_ns,
        max_polls,
        irqs,
    } = slot.wait
    else {
        return None;
    };
    debug_assert_eq!(at, t, "a poll taken off its instant");
    let quiet = max_polls > 1
        && slot.poll_epoch == st.epoch
        && t < st.observe_before
        && !(irqs && slot.next_irq().is_some_and(|i| i <= t));
    quiet.then_some(period_ns)
}

/// Move `cpu`'s poll wait on to its next poll (the current one is skipped).
fn skip_poll(st: &mut State, cpu: CpuId) {
    skip_polls(st, cpu, 1);
}

/// Move `cpu`'s poll wait on by `n` polls (its next `n` are skipped).
fn skip_polls(st: &mut State, cpu: CpuId, n: u64) {
    if let Wait::Poll {
        at,
        period_ns,
        max_polls,
        irqs,
    } = st.cpus[cpu.idx()].wait
    {
        st.cpus[cpu.idx()].wait = Wait::Poll {
            at: at + n * period_ns,
            period_ns,
            max_polls: max_polls - n,
            irqs,
        };
    }
}

/// With every key 0 ([`ChoiceSource::draws_keys`] false): skip, a whole stretch at a time,
/// the quiet polls ([`fold_tied_poll`]) at the front of the queue, asking the choice source
/// exactly the ties the executor would have asked one poll at a time.
///
/// It takes off the queue the earliest live entries while each is a quiet poll of one common
/// period (stale entries met on the way are dropped, as [`pop_next`] drops them); the first
/// entry that is not, its time `stop`, ends the stretch. Then, instant by instant in time
/// order, while the instant is before `stop`, the hook's deadline and within the time
/// limit, and every spinner due then is still quiet (its budget, its interrupts): the CPUs
/// due at that instant are a tie when there are several, decided as [`pop_next`] decides one
/// (the source picks one of them in CPU order, then one of the rest, until one is left), and
/// each skips that poll. Every spinner then goes back on the queue at its next poll.
///
/// Why the executor's own order is kept: with every key 0, entries are taken in time order
/// and the CPUs due at one instant tie, whichever of them was queued or continued on the
/// fast path; a skipped poll writes nothing and queues its next one a period later, so
/// nothing but these spinners can step before `stop`, and the ties are the same instants
/// with the same CPUs in the same order.
///
/// When no two spinners poll at the same instants (no tie to ask), the instants are not
/// walked one by one: [`fold_spinners_apart`] computes where that walk would end.
fn fold_spinners(m: &Machine, st: &mut State) {
    let mut spinners = std::mem::take(&mut st.spinners);
    spinners.clear();
    let mut period = 0;
    let stop = loop {
        let Some(&Reverse((t, _, cpu, generation))) = st.heap.peek() else {
            break Nanos::MAX;
        };
        if st.cpus[cpu.idx()].generation != generation {
            st.heap.pop();
            continue;
        }
        match poll_is_quiet(st, cpu, t) {
            Some(p) if period == 0 || p == period => {
                period = p;
                st.heap.pop();
                spinners.push((t, cpu));
            }
            _ => break t,
        }
    };
    if spinners.is_empty() {
        st.spinners = spinners;
        return;
    }
    if let Some(last) = fold_spinners_apart(st, &mut spinners, period, stop) {
        end_fold(m, st, spinners, last);
        return;
    }
    let mut tie = std::mem::take(&mut st.spin_tie);
    let mut last = None;
    // The next instant: the earliest next poll of any spinner (kept up to date by the pass
    // that moves them on).
    let mut u = spinners.iter().map(|&(t, _)| t).min().expect("not empty");
    'instants: loop {
        if u >= stop || u >= st.observe_before || u > st.limit_ns {
            break;
        }
        tie.clear();
        for &(t, cpu) in &spinners {
            if t == u {
                if poll_is_quiet(st, cpu, u).is_none() {
                    break 'instants;
                }
                tie.push(cpu);
            }
        }
        if tie.len() > 1 {
            tie.sort_unstable();
        }
        while tie.len() > 1 {
            let i = st.choices.pick_cpu(u, &tie).min(tie.len() - 1);
            if let Some(log) = &mut st.log {
                log.choices.push(i as u64);
                log.ties += 1;
            }
            tie.remove(i);
        }
        let mut next = Nanos::MAX;
        for (t, cpu) in spinners.iter_mut() {
            if *t == u {
                skip_poll(st, *cpu);
                *t += period;
                st.folded_polls += 1;
            }
            next = next.min(*t);
        }
        last = Some(u);
        u = next;
    }
    st.spin_tie = tie;
    end_fold(m, st, spinners, last);
}

/// The end of [`fold_spinners`]: time moves on to the last instant skipped (if any), and
/// each spinner is queued at its next poll.
fn end_fold(m: &Machine, st: &mut State, spinners: Vec<(Nanos, CpuId)>, last: Option<Nanos>) {
    if let Some(u) = last {
        st.now = u;
        m.now.set(u);
    }
    for &(_, cpu) in &spinners {
        queue_cpu(st, cpu);
    }
    st.spinners = spinners;
}

/// [`fold_spinners`]'s walk over the instants, computed at once when no two `spinners` (next
/// poll, CPU; all quiet at that poll, all of `period`) poll at the same instants: None when
/// two do (their ties must be asked one instant at a time), else the last instant skipped
/// (None if none was), with every spinner's wait and next poll moved on as the walk moves them.
///
/// Why it is the walk: without ties the walk asks the choice source nothing; it skips every
/// instant in time order until the first at which the bounds end it (`stop`, the hook's
/// deadline, the time limit) or a spinner due then is no longer quiet. With nothing stepping
/// in between, a spinner's polls stay quiet until its budget allows only one more
/// (`max_polls` reaches 1) or, when its loop takes interrupts, until the first poll at or
/// after its next interrupt: so the walk ends at the least of the bounds and each spinner's
/// first poll that is not quiet, and every spinner skips its polls before that instant.
fn fold_spinners_apart(
    st: &mut State,
    spinners: &mut [(Nanos, CpuId)],
    period: Nanos,
    stop: Nanos,
) -> Option<Option<Nanos>> {
    for (i, &(t, _)) in spinners.iter().enumerate() {
        if spinners[..i].iter().any(|&(t2, _)| t2 % period == t % period) {
            return None;
        }
    }
    // Work in u128: a budget of u64::MAX polls is "no bound", and no product overflows.
    let p = period as u128;
    let mut end = (stop as u128)
        .min(st.observe_before as u128)
        .min(st.limit_ns as u128 + 1);
    for &(t, cpu) in spinners.iter() {
        let slot = &st.cpus[cpu.idx()];
        let Wait::Poll { max_polls, irqs, .. } = slot.wait else {
            unreachable!("a spinner that does not poll")
        };
        let t = t as u128;
        // The poll that may use the last of the budget.
        end = end.min(t + (max_polls as u128 - 1) * p);
        if let Some(irq) = slot.next_irq().filter(|_| irqs) {
            // The first poll at or after the interrupt (the first poll, at `t`, is quiet).
            let irq = irq as u128;
            debug_assert!(irq > t, "a spinner taken as quiet with an interrupt due");
            end = end.min(t + (irq - t).div_ceil(p) * p);
        }
    }
    let mut last = None;
    for (t, cpu) in spinners.iter_mut() {
        let t0 = *t as u128;
        if end <= t0 {
            continue;
        }
        let n = (end - t0).div_ceil(p) as u64;
        skip_polls(st, *cpu, n);
        st.folded_polls += n;
        let skipped_last = *t + (n - 1) * period;
        last = last.max(Some(skipped_last));
        *t += n * period;
    }
    Some(last)
}

/// End `cpu`'s step, before the hook looks at it: move [`State::epoch`] unless the step was
/// clean (it began in a busy-wait poll, took no interrupt and ends polling again on the same
/// context: by [`Machine::poll`]'s contract it wrote nothing), and when the CPU now polls,
/// note that it decided so on the state of this epoch.
#[inline]
fn end_step(st: &mut State, cpu: CpuId) {
    let slot = &mut st.cpus[cpu.idx()];
    let polls = matches!(slot.wait, Wait::Poll { .. });
    if !(polls && st.step_from_poll && !st.step_irq && slot.ctx == st.step_ctx) {
        st.epoch += 1;
    }
    if polls {
        slot.poll_epoch = st.epoch;
    }
}

fn requeue_if_interruptible(st: &mut State, cpu: CpuId) {
    // Only a CPU parked in an interruptible wait (and not the one executing) can have its
    // next step moved by an interrupt source.
    if matches!(st.cpus[cpu.idx()].wait, Wait::Interruptible { .. }) && st.cpus[cpu.idx()].ctx.is_some() {
        queue_cpu(st, cpu);
    }
}

// -------------------------------------------------------------------- futures

enum WaitKind {
    Halt,
    Yield,
    Delay(Nanos),
    Spin,
}

/// Future for [`Machine::yield_now`], [`Machine::delay`] and spinning.
pub struct WaitFuture<'a> {
    m: &'a Machine,
    kind: WaitKind,
    started: bool,
}

impl Future for WaitFuture<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.started {
            return Poll::Ready(());
        }
        let wait = match self.kind {
            WaitKind::Halt => Wait::Halted,
            WaitKind::Yield => Wait::Ready,
            WaitKind::Delay(0) => return Poll::Ready(()),
            WaitKind::Delay(ns) => Wait::Until(self.m.now() + ns),
            WaitKind::Spin => Wait::Spin,
        };
        self.started = true;
        match self.m.continue_in_place(wait) {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    }
}

/// Future for [`Machine::poll`]: the number of polls that passed.
pub struct PollFuture<'a> {
    m: &'a Machine,
    period_ns: Nanos,
    max_polls: u64,
    irqs: bool,
    since: Option<Nanos>,
}

impl Future for PollFuture<'_> {
    type Output = u64;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u64> {
        if self.since.is_none() {
            let now = self.m.now();
            self.since = Some(now);
            let wait = Wait::Poll {
                at: now + self.period_ns,
                period_ns: self.period_ns,
                max_polls: self.max_polls,
                irqs: self.irqs,
            };
            if !self.m.continue_in_place(wait) {
                return Poll::Pending;
            }
        }
        let (now, since) = (self.m.now(), self.since.expect("set above"));
        let n = (now - since) / self.period_ns;
        assert!(
            (1..=self.max_polls).contains(&n) && now == since + n * self.period_ns,
            "a poll wait resumed off its poll instants"
        );
        Poll::Ready(n)
    }
}

/// Future for [`Machine::run_interruptible`].
pub struct RunFuture<'a> {
    m: &'a Machine,
    ns: Nanos,
    started: bool,
}

impl Future for RunFuture<'_> {
    type Output = RunResult;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<RunResult> {
        if !self.started {
            if self.ns == 0 {
                return Poll::Ready(RunResult::Completed);
            }
            let wait = {
                let st = self.m.st.borrow();
                let now = st.now;
                // An interrupt already pending is taken before any work is done.
                if st.cpus[st.cur.idx()].next_irq().is_some_and(|t| t <= now) {
                    return Poll::Ready(RunResult::Interrupted { ran_ns: 0 });
                }
                Wait::Interruptible {
                    start: now,
                    end: now.saturating_add(self.ns),
                }
            };
            self.started = true;
            if !self.m.continue_in_place(wait) {
                return Poll::Pending;
            }
        }
        let mut st = self.m.st.borrow_mut();
        let cur = st.cur.idx();
        let now = st.now;
        let slot = &mut st.cpus[cur];
        let Wait::Interruptible { start, .. } = slot.wait else {
            unreachable!("run future resumed from another wait")
        };
        slot.wait = Wait::Ready;
        if std::mem::take(&mut slot.interrupted) {
            Poll::Ready(RunResult::Interrupted { ran_ns: now - start })
        } else {
            Poll::Ready(RunResult::Completed)
        }
    }
}

/// Future for [`Machine::switch_to`].
pub struct SwitchFuture<'a> {
    m: &'a Machine,
    next: CtxId,
    started: bool,
}

impl Future for SwitchFuture<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.started {
            return Poll::Ready(());
        }
        self.started = true;
        let mut st = self.m.st.borrow_mut();
        let cur = st.cur.idx();
        let next = self.next;
        let n = next.idx();
        if st.running.len() <= n {
            st.running.resize(n + 1, false);
        }
        assert!(!st.running[n], "context {next} is already executing on a CPU");
        if let Some(prev) = st.cpus[cur].ctx {
            st.running[prev.idx()] = false;
        }
        st.running[n] = true;
        st.cpus[cur].ctx = Some(next);
        st.cpus[cur].wait = Wait::Ready;
        Poll::Pending
    }
}

// -------------------------------------------------------------------- executor

/// Drives the contexts of a [`Machine`] in simulated-time order.
pub struct Executor {
    m: std::rc::Rc<Machine>,
    ctxs: Vec<Option<CtxFuture>>,
}

impl Executor {
    pub fn new(m: std::rc::Rc<Machine>) -> Executor {
        Executor { m, ctxs: Vec::new() }
    }

    /// Take over the contexts spawned and drop those reaped since the last look.
    #[inline]
    fn adopt(&mut self) {
        if self.m.ctx_changes.replace(false) {
            self.adopt_changes();
        }
    }

    #[cold]
    fn adopt_changes(&mut self) {
        let mut st = self.m.st.borrow_mut();
        // Grown once to the highest new context (no doubling slack: the contexts of a run are
        // spawned together at boot), and the spawn list is freed, not kept at its capacity.
        let len = st.spawns.iter().map(|(id, _)| id.idx() + 1).max().unwrap_or(0);
        if self.ctxs.len() < len {
            self.ctxs.reserve_exact(len - self.ctxs.len());
            self.ctxs.resize_with(len, || None);
        }
        for (id, fut) in std::mem::take(&mut st.spawns) {
            let i = id.idx();
            assert!(self.ctxs[i].is_none(), "context {id} spawned twice");
            self.ctxs[i] = Some(fut);
        }
        for id in st.reaped.drain(..) {
            self.ctxs[id.idx()] = None;
        }
    }

    /// Run until the model stops, nothing is left to do, or the next step would pass
    /// `limit_ns`. `hook` runs after every step.
    pub fn run(&mut self, limit_ns: Nanos, hook: StepHook<'_>) -> RunEnd {
        let mut cx = Context::from_waker(Waker::noop());
        // The CPU that stepped last, when its next step is strictly earlier than every queued
        // one: it continues without a round trip through the heap (no tie is possible, so no
        // oracle draw is skipped that could have changed the order).
        let mut fast: Option<(Nanos, CpuId)> = None;
        // Otherwise, the entry the CPU that stepped last queued, handed to the next pop instead
        // of pushed (`pop_next`).
        let mut pending: Option<Queued> = None;
        {
            let mut st = self.m.st.borrow_mut();
            st.limit_ns = limit_ns;
            // Whatever the caller did since the last run, no poll may assume it unchanged.
            st.epoch += 1;
        }
        // SAFETY (lifetime erasure): the pointer is cleared by the guard before `hook`'s
        // borrow ends, and used only while this function is on the stack.
        let hook: HookPtr = unsafe {
            std::mem::transmute::<std::ptr::NonNull<dyn FnMut(CpuId) -> bool + '_>, HookPtr>(
                std::ptr::NonNull::from(hook),
            )
        };
        self.m.hook.set(Some(hook));
        self.m.hook_verdict.set(None);
        let _guard = HookGuard(self.m.clone());
        loop {
            self.adopt();
            let cpu = {
                let mut st = self.m.st.borrow_mut();
                if st.stop {
                    if let Some((_, c)) = fast.take() {
                        queue_cpu(&mut st, c);
                    }
                    if let Some(q) = pending.take() {
                        st.heap.push(Reverse(q));
                    }
                    return RunEnd::Stopped;
                }
                let (t, cpu) = match fast.take() {
                    Some(next) => next,
                    None => match pop_next(&self.m, &mut st, pending.take()) {
                        Some(next) => next,
                        None => return RunEnd::NoEvents,
                    },
                };
                if t > limit_ns {
                    st.now = limit_ns.max(st.now);
                    self.m.now.set(st.now);
                    // Put the step back so a later run() continues where this one stopped.
                    queue_cpu(&mut st, cpu);
                    return RunEnd::TimeLimit;
                }
                if fold_tied_poll(&self.m, &mut st, t, cpu) {
                    // A poll that reads what its CPU last read: placed as after a step.
                    match next_in_place(&mut st, cpu) {
                        Some(t) => fast = Some((t, cpu)),
                        None => pending = queued_step(&mut st, cpu),
                    }
                    continue;
                }
                begin_step(&self.m, &mut st, t, cpu);
                cpu
            };
            let mut first = true;
            loop {
                let ctx = self.m.cpu_ctx(cpu).expect("stepping a CPU without a context");
                let mut fut = self.ctxs[ctx.idx()].take().expect("context has no future");
                if !first {
                    // The next context of a switch resumes from its own await point.
                    let mut st = self.m.st.borrow_mut();
                    let slot = &mut st.cpus[cpu.idx()];
                    if !matches!(slot.wait, Wait::Interruptible { .. }) {
                        slot.wait = Wait::Unset;
                    }
                }
                first = false;
                if fut.as_mut().poll(&mut cx).is_ready() {
                    panic!("context {ctx} returned; task contexts must park forever");
                }
                self.ctxs[ctx.idx()] = Some(fut);
                self.adopt();
                if self.m.cpu_ctx(cpu) == Some(ctx) {
                    break;
                }
                // A context switch: the next context continues on this CPU at once.
            }
            // The hook looks at the state this step left, before the CPU's next step is
            // placed: it neither reads nor changes the queue, and its deadline bounds folding.
            // An await point that ended the step may have run it already.
            let go_on = match self.m.hook_verdict.take() {
                Some(verdict) => verdict,
                None => {
                    {
                        let mut st = self.m.st.borrow_mut();
                        st.observe_before = Nanos::MAX;
                        end_step(&mut st, cpu);
                    }
                    // SAFETY: `hook` is the `&mut` this function was given; no other use of
                    // it is live (await points call it only while a context is polled).
                    unsafe { (*hook.as_ptr())(cpu) }
                }
            };
            let mut st = self.m.st.borrow_mut();
            if !go_on {
                queue_cpu(&mut st, cpu);
                return RunEnd::Hook;
            }
            let next = match st.stop {
                true => None,
                false => next_in_place(&mut st, cpu),
            };
            match next {
                Some(t) => fast = Some((t, cpu)),
                None => pending = queued_step(&mut st, cpu),
            }
        }
    }
}

/// Clears the machine's hook pointer when [`Executor::run`] returns or unwinds.
struct HookGuard(std::rc::Rc<Machine>);

impl Drop for HookGuard {
    fn drop(&mut self) {
        self.0.hook.set(None);
        self.0.hook_verdict.set(None);
    }
}

/// Begin `cpu`'s step at `t`: the machine's time and current CPU (and their cached copies),
/// the step count, and the CPU's wait as the resumed await point expects to find it.
#[inline]
fn begin_step(m: &Machine, st: &mut State, t: Nanos, cpu: CpuId) {
    debug_assert!(t >= st.now, "time went backwards");
    st.now = t;
    st.cur = cpu;
    m.now.set(t);
    m.cur.set(cpu);
    m.steps.set(m.steps.get() + 1);
    let slot = &mut st.cpus[cpu.idx()];
    slot.time = t;
    st.step_from_poll = matches!(slot.wait, Wait::Poll { .. });
    st.step_ctx = slot.ctx;
    st.step_irq = false;
    match slot.wait {
        // Keep an interruptible wait visible to the RunFuture being resumed.
        Wait::Interruptible { end, .. } => slot.interrupted = t < end,
        _ => slot.wait = Wait::Unset,
    }
}

/// After `cpu`'s step and its hook (and the model did not ask to stop): fold its quiet polls
/// and, when its next step is within the time limit and strictly earlier than every queued
/// entry, invalidate any queued entry of it and return that time: the CPU continues at once,
/// without a round trip through the queue (no tie is possible, so no draw is skipped that
/// could have changed the order). None: the caller queues the CPU.
#[inline]
fn next_in_place(st: &mut State, cpu: CpuId) -> Option<Nanos> {
    if st.fast_paths && matches!(st.cpus[cpu.idx()].wait, Wait::Poll { .. }) {
        fold_polls(st, cpu);
    }
    let State {
        cpus, heap, limit_ns, ..
    } = st;
    let slot = &mut cpus[cpu.idx()];
    let t = slot.next_event()?;
    if t > *limit_ns || heap.peek().is_some_and(|Reverse((top, ..))| t >= *top) {
        return None;
    }
    slot.generation = slot.generation.wrapping_add(1);
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn spinning_cpu_burns_time_until_handoff() {
        let m = Rc::new(Machine::new(2, 1, 10));
        let l = m.new_lock();
        let log = Rc::new(RefCell::new(Vec::new()));
        {
            let (m2, log2) = (m.clone(), log.clone());
            m.spawn(CtxId(0), async move {
                assert!(m2.lock(l, 0).await);
                m2.delay(1000).await;
                m2.unlock(l);
                log2.borrow_mut().push(("cpu0 unlocked", m2.now()));
                m2.halt().await;
            });
        }
        {
            let (m2, log2) = (m.clone(), log.clone());
            m.spawn(CtxId(1), async move {
                m2.delay(100).await;
                let got = m2.lock(l, 0).await;
                assert!(!got, "lock must be held by cpu0");
                let spun = m2.spin(l).await;
                log2.borrow_mut().push(("cpu1 locked", m2.now()));
                assert_eq!(spun, 910);
                m2.unlock(l);
                m2.halt().await;
            });
        }
        m.boot_cpu(CpuId(0), CtxId(0));
        m.boot_cpu(CpuId(1), CtxId(1));
        let mut ex = Executor::new(m.clone());
        assert_eq!(ex.run(10_000, &mut |_| true), RunEnd::NoEvents);
        assert_eq!(
            *log.borrow(),
            vec![("cpu0 unlocked", 1000), ("cpu1 locked", 1010)]
        );
        assert_eq!(m.lock_stats(l), (1, 910));
    }

    /// Spinners are handed the lock first come, first served, whatever their CPU numbers, and
    /// the queue (linked through the CPUs) empties and fills again: CPU 0 holds the lock for
    /// 1,000 ns; CPUs 3, 1, 2 queue at 100, 200, 300 ns; each holds it 10 ns (no handoff
    /// time); then CPU 0 takes the free lock again at 1,500 ns, and CPU 3 (at 1,530 ns) spins
    /// behind it once more until 1,600 ns.
    #[test]
    fn spinners_get_the_lock_in_arrival_order() {
        let m = Rc::new(Machine::new(4, 1, 0));
        let l = m.new_lock();
        let log = Rc::new(RefCell::new(Vec::new()));
        for (cpu, arrive) in [(0u32, 0), (3, 100), (1, 200), (2, 300)] {
            let (m2, log2) = (m.clone(), log.clone());
            m.spawn(CtxId(cpu), async move {
                m2.delay(arrive).await;
                if !m2.lock(l, 0).await {
                    m2.spin(l).await;
                }
                log2.borrow_mut().push((cpu, m2.now()));
                m2.delay(if cpu == 0 { 1000 } else { 10 }).await;
                m2.unlock(l);
                match cpu {
                    0 => {
                        m2.delay(500).await;
                        assert!(m2.lock(l, 0).await, "nobody holds the lock at 1,500 ns");
                        log2.borrow_mut().push((0, m2.now()));
                        m2.delay(100).await;
                        m2.unlock(l);
                    }
                    3 => {
                        m2.delay(520).await;
                        assert!(!m2.lock(l, 0).await, "CPU 0 holds the lock again");
                        m2.spin(l).await;
                        log2.borrow_mut().push((3, m2.now()));
                        m2.unlock(l);
                    }
                    _ => {}
                }
                m2.halt().await;
            });
            m.boot_cpu(CpuId(cpu), CtxId(cpu));
        }
        let mut ex = Executor::new(m.clone());
        assert_eq!(ex.run(10_000, &mut |_| true), RunEnd::NoEvents);
        assert_eq!(
            *log.borrow(),
            vec![(0, 0), (3, 1000), (1, 1010), (2, 1020), (0, 1500), (3, 1600)]
        );
        assert_eq!(m.lock_stats(l).0, 4);
    }

    /// CPU 0 polls a flag every 10 ns (interrupts taken between polls) until CPU 1 sets it
    /// at 1,005 ns; an IPI to CPU 0 at 503 ns (sent at 0) ends the first quiet stretch.
    /// Returns (when CPU 0 saw the flag, polls counted, polls at which an irq was due,
    /// steps, folded polls).
    fn poll_until_flag(fast: bool) -> (Nanos, u64, Vec<Nanos>, u64, u64) {
        let m = Rc::new(Machine::new(2, 1, 0));
        m.set_fast_paths(fast);
        let flag = Rc::new(Cell::new(false));
        let out = Rc::new(RefCell::new((0, 0, Vec::new())));
        {
            let (m2, flag2, out2) = (m.clone(), flag.clone(), out.clone());
            m.spawn(CtxId(0), async move {
                let mut polls = 0;
                while !flag2.get() {
                    polls += m2.poll(10, u64::MAX, true).await;
                    if m2.irq_due() {
                        out2.borrow_mut().2.push(m2.now());
                        m2.take_irqs();
                    }
                }
                {
                    let mut o = out2.borrow_mut();
                    (o.0, o.1) = (m2.now(), polls);
                }
                m2.halt().await;
            });
        }
        {
            let (m2, flag2) = (m.clone(), flag.clone());
            m.spawn(CtxId(1), async move {
                m2.send_ipi(CpuId(0), 1, 503);
                m2.delay(1005).await;
                flag2.set(true);
                m2.halt().await;
            });
        }
        m.boot_cpu(CpuId(0), CtxId(0));
        m.boot_cpu(CpuId(1), CtxId(1));
        Executor::new(m.clone()).run(u64::MAX, &mut |_| true);
        let (t, polls, irqs) = out.borrow().clone();
        (t, polls, irqs, m.steps(), m.folded_polls())
    }

    #[test]
    fn quiet_polls_fold_to_the_same_times() {
        let slow = poll_until_flag(false);
        let fast = poll_until_flag(true);
        // The first poll after the flag is set (1,005) is at 1,010; the IPI is seen at 510.
        assert_eq!((slow.0, slow.1, slow.2.clone()), (1010, 101, vec![510]));
        assert_eq!((fast.0, fast.1, fast.2), (slow.0, slow.1, slow.2));
        assert_eq!(slow.4, 0, "nothing folds with the fast paths off");
        assert!(fast.4 > 90, "quiet polls were folded: {}", fast.4);
        assert_eq!(fast.3 + fast.4, slow.3, "every folded poll is a step saved");
    }

    #[test]
    fn polls_never_fold_past_a_tie_or_the_hook_deadline() {
        // CPU 1 steps at 100 exactly, a poll instant of CPU 0: the poll at 100 is queued and
        // ordered against CPU 1's step by the choice source, as without folding. CPU 1's step
        // may write what CPU 0 reads, so CPU 0's first poll after it is a step: the one at 100
        // if it goes second, else the one at 110 (the one at 100, going first, reads what the
        // last one read and is skipped).
        let m = Rc::new(Machine::new(2, 1, 0));
        let seen = Rc::new(RefCell::new(Vec::new()));
        {
            let (m2, seen2) = (m.clone(), seen.clone());
            m.spawn(CtxId(0), async move {
                loop {
                    m2.poll(10, 1000, false).await;
                    seen2.borrow_mut().push(m2.now());
                }
            });
        }
        {
            let m2 = m.clone();
            m.spawn(CtxId(1), async move {
                m2.delay(100).await;
                m2.halt().await;
            });
        }
        m.boot_cpu(CpuId(0), CtxId(0));
        m.boot_cpu(CpuId(1), CtxId(1));
        let mut hook = |_| {
            // An observer that must see every step from 300 on.
            m.observe_before(300);
            true
        };
        Executor::new(m.clone()).run(400, &mut hook);
        let seen = seen.borrow().clone();
        assert!(
            seen.first().is_some_and(|&t| t == 100 || t == 110),
            "polls before the tie fold, the first after CPU 1's step is a step: {seen:?}"
        );
        let late: Vec<Nanos> = (30..=40).map(|i| i * 10).collect();
        assert!(
            seen.ends_with(&late) && seen.len() == late.len() + 1,
            "the polls between fold, every poll from 300 on is a step: {seen:?}"
        );
    }

    /// A source that picks the tied CPUs round robin (by how many ties it was asked).
    struct RoundRobin(usize);
    impl ChoiceSource for RoundRobin {
        fn pick_cpu(&mut self, _now: Nanos, cpus: &[CpuId]) -> usize {
            self.0 += 1;
            self.0 % cpus.len()
        }
        fn perturb(&mut self, _p: Point, _cpu: CpuId, _max: Nanos) -> Nanos {
            0
        }
    }

    /// An entry handed to `pop_next` instead of pushed (the executor's `pending`) is taken
    /// exactly as if it had been pushed: the same steps in the same order, the same ties asked
    /// of the source, and stale entries (a CPU queued again while queued) dropped alike. Keys
    /// are drawn ([`SeedOrder`]) and not ([`RoundRobin`], where every step at an instant ties).
    #[test]
    fn a_pending_entry_pops_as_if_pushed() {
        for (seed, keys) in (0..8u64).flat_map(|s| [(s, true), (s, false)]) {
            let steps = |hand: bool| {
                let m = Machine::new(8, seed, 0);
                m.set_fast_paths(false);
                match keys {
                    true => m.record_choices(),
                    false => m.set_choice_source(Box::new(RoundRobin(0)), true),
                }
                let mut st = m.st.borrow_mut();
                let mut taken = Vec::new();
                let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                for _ in 0..400 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Queue (or queue again) two CPUs a few ns from now, the second as the
                    // pending entry, then take a step.
                    let (a, cpu) = (CpuId((x % 8) as u32), CpuId((x >> 3) as u32 % 8));
                    st.cpus[a.idx()].wait = Wait::Until(st.now + (x >> 8) % 3);
                    queue_cpu(&mut st, a);
                    st.cpus[cpu.idx()].wait = Wait::Until(st.now + (x >> 16) % 3);
                    let q = queued_step(&mut st, cpu);
                    let next = match hand {
                        true => pop_next(&m, &mut st, q),
                        false => {
                            st.heap.push(Reverse(q.expect("a timed wait is queued")));
                            pop_next(&m, &mut st, None)
                        }
                    };
                    let (t, cpu) = next.expect("a step is queued");
                    st.now = t;
                    taken.push((t, cpu));
                }
                let log = st.log.clone().expect("recording");
                (taken, log.choices, log.ties)
            };
            let (pushed, handed) = (steps(false), steps(true));
            assert!(pushed.2 > 0 || keys, "no tie was asked");
            assert_eq!(pushed, handed, "seed {seed}, keys {keys}");
        }
    }

    /// CPUs 0 and 1 poll a flag every 10 ns at the same instants (each poll a tie), CPU 2
    /// every 10 ns from 5 ns on (between theirs), until CPU 3 sets it at 1,005 ns; CPU 1 spins
    /// with interrupts on and gets an IPI at 503 ns, and CPU 2's budget allows 40 polls, after
    /// which it polls once more, alone, and leaves. Returns what each poller saw (its polls counted, when it stopped, when it took
    /// an interrupt), the choice log, steps and folded polls. With `cpu1_from` > 0, CPU 1
    /// polls from then on instead (at 3 ns, no two pollers ever tie).
    #[allow(clippy::type_complexity)]
    fn tied_pollers(
        fast: bool,
        src: Box<dyn ChoiceSource>,
        cpu1_from: Nanos,
    ) -> (Vec<(u64, Nanos, Nanos)>, ChoiceLog, u64, u64) {
        let m = Rc::new(Machine::new(4, 1, 0));
        m.set_fast_paths(fast);
        m.set_choice_source(src, true);
        let flag = Rc::new(Cell::new(false));
        let out = Rc::new(RefCell::new(vec![(0, 0, 0); 3]));
        for cpu in 0..3u32 {
            let (m2, flag2, out2) = (m.clone(), flag.clone(), out.clone());
            m.spawn(CtxId(cpu), async move {
                let mut polls = 0;
                let budget = if cpu == 2 { 40 } else { u64::MAX };
                if cpu == 2 {
                    m2.delay(5).await;
                }
                if cpu == 1 && cpu1_from > 0 {
                    m2.delay(cpu1_from).await;
                }
                while !flag2.get() && polls < budget {
                    polls += m2.poll(10, budget - polls, cpu == 1).await;
                    if m2.irq_due() {
                        m2.take_irqs();
                        out2.borrow_mut()[cpu as usize].2 = m2.now();
                    }
                }
                if polls == budget {
                    m2.poll(10, 1, false).await;
                }
                {
                    let mut o = out2.borrow_mut();
                    (o[cpu as usize].0, o[cpu as usize].1) = (polls, m2.now());
                }
                m2.halt().await;
            });
        }
        {
            let (m2, flag2) = (m.clone(), flag.clone());
            m.spawn(CtxId(3), async move {
                m2.send_ipi(CpuId(1), 1, 503);
                m2.delay(1005).await;
                flag2.set(true);
                m2.halt().await;
            });
        }
        for cpu in 0..4 {
            m.boot_cpu(CpuId(cpu), CtxId(cpu));
        }
        // Bounded, so that a wrong fold (polling on past the flag) fails instead of hanging.
        Executor::new(m.clone()).run(5_000, &mut |_| true);
        let seen = out.borrow().clone();
        (seen, m.choice_log().unwrap(), m.steps(), m.folded_polls())
    }

    #[test]
    fn tied_quiet_polls_fold_with_the_same_ties_and_keys() {
        for (name, src) in [
            (
                "round robin",
                (|| Box::new(RoundRobin(0)) as Box<dyn ChoiceSource>) as fn() -> _,
            ),
            ("seeded keys", || Box::new(SeedOrder::new(7))),
        ] {
            let slow = tied_pollers(false, src(), 0);
            let fast = tied_pollers(true, src(), 0);
            assert_eq!(
                slow.0,
                vec![(101, 1010, 0), (101, 1010, 510), (40, 415, 0)],
                "{name}"
            );
            assert_eq!(fast.0, slow.0, "{name}: the pollers saw the same");
            assert_eq!(fast.1, slow.1, "{name}: the same ties asked, answered alike");
            assert_eq!(slow.3, 0, "{name}: nothing folds with the fast paths off");
            assert_eq!(
                fast.2 + fast.3,
                slow.2,
                "{name}: every folded poll is a step saved"
            );
            assert!(
                fast.2 * 10 < slow.2,
                "{name}: most tied polls folded: {} of {}",
                fast.3,
                slow.2
            );
        }
        // The round-robin source was asked every tie: one per poll instant of CPUs 0 and 1.
        assert!(tied_pollers(true, Box::new(RoundRobin(0)), 0).1.ties >= 100);
    }

    /// Pollers that never poll at the same instant (CPU 1 from 3 ns on, CPU 2 from 5 ns, CPU 0
    /// from 0 ns, all every 10 ns) are folded a stretch at a time without walking its instants
    /// (`fold_spinners_apart`): the same polls counted, the same instants at which the flag,
    /// the IPI and the end of CPU 2's budget are seen, and no tie asked, as with every poll a
    /// step.
    #[test]
    fn polls_apart_fold_to_the_same_instants() {
        let slow = tied_pollers(false, Box::new(RoundRobin(0)), 3);
        let fast = tied_pollers(true, Box::new(RoundRobin(0)), 3);
        assert_eq!(
            slow.0,
            vec![(101, 1010, 0), (101, 1013, 503), (40, 415, 0)],
            "CPU 1 sees the flag at its own poll instant, and the IPI at the one it lands on"
        );
        assert_eq!(fast.0, slow.0, "the pollers saw the same");
        assert_eq!(fast.1, slow.1, "the same (no) ties");
        assert_eq!(slow.1.ties, 3, "only the boot steps at 0 tie, never two polls");
        assert_eq!(fast.2 + fast.3, slow.2, "every folded poll is a step saved");
        assert!(
            fast.2 * 10 < slow.2,
            "most polls folded: {} of {}",
            fast.3,
            slow.2
        );
    }

    /// Two CPUs doing cost steps, yields and an interruptible run of different lengths; the
    /// hook logs (cpu, time, step) after every step and stops the run at its `stop_at`-th
    /// call. Returns the hook's log, the contexts' log, steps and steps begun in place.
    #[allow(clippy::type_complexity)]
    fn mixed_steps(fast: bool, stop_at: usize) -> (Vec<(CpuId, Nanos, u64)>, Vec<(u32, Nanos)>, u64, u64) {
        let m = Rc::new(Machine::new(2, 1, 0));
        m.set_fast_paths(fast);
        let log = Rc::new(RefCell::new(Vec::new()));
        for id in 0..2u32 {
            let (m2, log2) = (m.clone(), log.clone());
            m.spawn(CtxId(id), async move {
                for i in 0..20u64 {
                    m2.delay(7 + i * (id as u64 + 1)).await;
                    m2.yield_now().await;
                    if i % 5 == 4 {
                        let r = m2.run_interruptible(50).await;
                        assert_eq!(r, RunResult::Completed);
                    }
                    log2.borrow_mut().push((id, m2.now()));
                }
                m2.halt().await;
            });
            m.boot_cpu(CpuId(id), CtxId(id));
        }
        let seen = RefCell::new(Vec::new());
        let mut hook = |cpu| {
            let mut v = seen.borrow_mut();
            v.push((cpu, m.now(), m.steps()));
            v.len() < stop_at
        };
        let end = Executor::new(m.clone()).run(u64::MAX, &mut hook);
        assert_eq!(end == RunEnd::Hook, seen.borrow().len() == stop_at);
        let v = log.borrow().clone();
        (seen.into_inner(), v, m.steps(), m.in_place_steps())
    }

    #[test]
    fn steps_begun_in_place_are_the_executors_steps() {
        for stop_at in [usize::MAX, 3, 17, 40] {
            let slow = mixed_steps(false, stop_at);
            let fast = mixed_steps(true, stop_at);
            assert_eq!(slow.3, 0, "nothing begins in place with the fast paths off");
            assert_eq!(fast.0, slow.0, "the hook saw other steps (stop at {stop_at})");
            assert_eq!(fast.1, slow.1, "the contexts saw other times (stop at {stop_at})");
            assert_eq!(fast.2, slow.2, "step counts differ (stop at {stop_at})");
            if stop_at > 10 {
                assert!(fast.3 > 0, "no step began in place (stop at {stop_at})");
            }
        }
        // The hook ran once per step, each time after the step it names.
        let (seen, _, steps, _) = mixed_steps(true, usize::MAX);
        assert_eq!(seen.len() as u64, steps);
        assert!(seen.iter().enumerate().all(|(i, s)| s.2 == i as u64 + 1));
    }

    #[test]
    fn interrupt_cuts_interruptible_run() {
        let m = Rc::new(Machine::new(2, 1, 0));
        let out = Rc::new(Cell::new(None));
        {
            let (m2, out2) = (m.clone(), out.clone());
            m.spawn(CtxId(0), async move {
                let r = m2.run_interruptible(1_000_000).await;
                out2.set(Some((r, m2.now(), m2.take_irqs())));
                m2.halt().await;
            });
        }
        {
            let m2 = m.clone();
            m.spawn(CtxId(1), async move {
                m2.delay(300).await;
                m2.send_ipi(CpuId(0), 2, m2.now() + 50);
                m2.halt().await;
            });
        }
        m.boot_cpu(CpuId(0), CtxId(0));
        m.boot_cpu(CpuId(1), CtxId(1));
        Executor::new(m.clone()).run(u64::MAX, &mut |_| true);
        let (r, t, irqs) = out.get().unwrap();
        assert_eq!(r, RunResult::Interrupted { ran_ns: 350 });
        assert_eq!(t, 350);
        assert_eq!(
            irqs,
            IrqSources {
                timer: false,
                ipis: 1 << 2
            }
        );
    }

    #[test]
    fn switch_parks_and_resumes_contexts() {
        let m = Rc::new(Machine::new(1, 1, 0));
        let log = Rc::new(RefCell::new(Vec::new()));
        for id in 0..2u32 {
            let (m2, log2) = (m.clone(), log.clone());
            m.spawn(CtxId(id), async move {
                for round in 0..2 {
                    log2.borrow_mut().push((id, round, m2.now()));
                    m2.delay(10).await;
                    m2.switch_to(CtxId(1 - id)).await;
                }
                m2.halt().await;
            });
        }
        m.boot_cpu(CpuId(0), CtxId(0));
        Executor::new(m.clone()).run(u64::MAX, &mut |_| true);
        assert_eq!(*log.borrow(), vec![(0, 0, 0), (1, 0, 10), (0, 1, 20), (1, 1, 30)]);
    }

    /// A source that always picks the last CPU of a tie and delays every IPI by its bound.
    struct LastAndSlow;
    impl ChoiceSource for LastAndSlow {
        fn pick_cpu(&mut self, _now: Nanos, cpus: &[CpuId]) -> usize {
            cpus.len() - 1
        }
        fn perturb(&mut self, _p: Point, _cpu: CpuId, max: Nanos) -> Nanos {
            max
        }
        fn bounds(&self) -> Bounds {
            Bounds {
                ipi_ns: 25,
                ..Bounds::OFF
            }
        }
    }

    /// Four CPUs yield at time 0; returns the order they got past the yield, and the log.
    fn tie_order(src: Option<Box<dyn ChoiceSource>>) -> (Vec<u32>, Option<ChoiceLog>) {
        let m = Rc::new(Machine::new(4, 1, 0));
        if let Some(src) = src {
            m.set_choice_source(src, true);
        }
        let log = Rc::new(RefCell::new(Vec::new()));
        for id in 0..4u32 {
            let (m2, log2) = (m.clone(), log.clone());
            m.spawn(CtxId(id), async move {
                m2.yield_now().await;
                log2.borrow_mut().push(id);
                m2.halt().await;
            });
            m.boot_cpu(CpuId(id), CtxId(id));
        }
        Executor::new(m.clone()).run(u64::MAX, &mut |_| true);
        let v = log.borrow().clone();
        (v, m.choice_log())
    }

    #[test]
    fn ties_are_decided_by_the_source_at_step_time_and_replay() {
        let (order, log) = tie_order(Some(Box::new(LastAndSlow)));
        // Boot steps tie four ways, then the yields: always the highest CPU first.
        assert_eq!(order, vec![3, 2, 1, 0]);
        let log = log.expect("recording");
        assert_eq!(
            log.ties as usize,
            log.choices.len(),
            "no perturbation point was met"
        );
        assert!(log.ties >= 3);
        let (again, log2) = tie_order(Some(Box::new(crate::choice::Replay::new(&log))));
        assert_eq!(again, order, "the recorded choices replay the same order");
        assert_eq!(log2.unwrap().choices, log.choices);
        // An all-zero replay is the lowest CPU first.
        let zero = ChoiceLog {
            choices: vec![0; log.choices.len()],
            ..log.clone()
        };
        assert_eq!(
            tie_order(Some(Box::new(crate::choice::Replay::new(&zero)))).0,
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn ipi_perturbation_delays_delivery_within_its_bound() {
        let m = Rc::new(Machine::new(2, 1, 0));
        m.set_choice_source(Box::new(LastAndSlow), true);
        let out = Rc::new(Cell::new(None));
        {
            let (m2, out2) = (m.clone(), out.clone());
            m.spawn(CtxId(0), async move {
                let r = m2.run_interruptible(1_000_000).await;
                out2.set(Some((r, m2.now())));
                m2.halt().await;
            });
        }
        {
            let m2 = m.clone();
            m.spawn(CtxId(1), async move {
                m2.delay(300).await;
                m2.send_ipi(CpuId(0), 2, m2.now() + 50);
                m2.halt().await;
            });
        }
        m.boot_cpu(CpuId(0), CtxId(0));
        m.boot_cpu(CpuId(1), CtxId(1));
        Executor::new(m.clone()).run(u64::MAX, &mut |_| true);
        // 300 + 50 of latency + 25 of perturbation.
        assert_eq!(out.get().unwrap(), (RunResult::Interrupted { ran_ns: 375 }, 375));
        assert_eq!(m.choice_log().unwrap().choices.last(), Some(&25));
    }

    #[test]
    fn ties_follow_the_seed() {
        let order = |seed| {
            let m = Rc::new(Machine::new(4, seed, 0));
            let log = Rc::new(RefCell::new(Vec::new()));
            for id in 0..4u32 {
                let (m2, log2) = (m.clone(), log.clone());
                m.spawn(CtxId(id), async move {
                    m2.yield_now().await;
                    log2.borrow_mut().push(id);
                    m2.halt().await;
                });
                m.boot_cpu(CpuId(id), CtxId(id));
            }
            Executor::new(m.clone()).run(u64::MAX, &mut |_| true);
            let v = log.borrow().clone();
            v
        };
        assert_eq!(order(1), order(1));
        assert!(
            (2..20).any(|s| order(s) != order(1)),
            "ties never reordered by the seed"
        );
    }
}
