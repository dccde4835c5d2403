//! The invariant catalogue: every rule the model checks (or knows it does not check), one
//! named entry each, with its one-line statement and the Linux rule it encodes.
//! `docs/invariants.md` is rendered from [`CATALOGUE`] by [`render_markdown`] (a test
//! compares the two).
//!
//! Naming: an entry's `name` is the string its violation reports (`--metrics`
//! `invariant_violations[].invariant`, the exit-4 message). Names are snake_case rules
//! ("curr_in_affinity"); the three spec §8.1 rules whose check is the whole rule and that
//! tests, docs and other tools already name by number keep their spec id (`I7`, `I10`,
//! `I12`). Each entry's `spec` column ties it to the spec (§8.1 I1–I14, the baseline tags).
//!
//! Per-step checkers are small, read-only functions over a [`Snapshot`] of the state. A
//! runqueue is only checked while nobody holds its lock: inside a critical section the model,
//! like Linux, may be between two consistent states. [`check_all`] runs them after every
//! machine step of a run that asks for it (tests and `--check` do) in catalogue order, per
//! runqueue first, then the system-wide ones.

pub mod handoff;
pub mod quiet;
pub mod rt_dl;

use crate::locking::rtmutex::RtMutexId;
use crate::sched::core::Kernel;
use crate::sched::{Class, Rq, SchedState};
use crate::task::{OnRq, TaskId};

/// What kind of rule an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Must hold at every instant it is checked; a violation ends the run (exit code 4).
    Safety,
    /// Something must happen within a bound; a violation ends the run (exit code 3 for a
    /// deadlock or stall, 4 for a bounded-settling rule).
    Liveness,
    /// The workload misused an API (exit code 4 with the misuse named).
    Workload,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Safety => "safety",
            Kind::Liveness => "liveness",
            Kind::Workload => "workload",
        }
    }
}

/// How and where an entry is checked.
#[derive(Clone, Copy)]
pub enum Check {
    /// After every step, for each runqueue whose lock is free.
    EachRq(fn(&Snapshot, &Rq) -> Option<String>),
    /// After every step, over the whole system; one detail per violation.
    EachStep(fn(&Snapshot) -> Vec<String>),
    /// Where the model takes the path (the named function reports it).
    InPath(&'static str),
    /// A model assertion: a failed `assert!` in the named function (the run fails, exit 4).
    Assertion(&'static str),
    /// A liveness check, by the named function (the run ends with the named end reason).
    Watch(&'static str),
    /// Not checked; the reason.
    NotChecked(&'static str),
}

/// One catalogued rule.
pub struct Invariant {
    /// What a violation reports.
    pub name: &'static str,
    /// The spec rule(s) it comes from (`I1`, `T-9a`, ...).
    pub spec: &'static str,
    pub kind: Kind,
    /// The rule, in one line.
    pub statement: &'static str,
    /// The Linux rule it encodes.
    pub linux: &'static str,
    pub check: Check,
}

impl Invariant {
    /// Where the entry is checked, for the catalogue's reader.
    pub fn checked_where(&self) -> String {
        match self.check {
            Check::EachRq(_) => "every step, each unlocked runqueue".to_string(),
            Check::EachStep(_) => "every step".to_string(),
            Check::InPath(f) => format!("in `{f}`"),
            Check::Assertion(f) => format!("model assertion in `{f}`"),
            Check::Watch(f) => format!("watch: `{f}`"),
            Check::NotChecked(why) => format!("**not checked**: {why}"),
        }
    }
}

/// The entry named `name`, if any.
pub fn lookup(name: &str) -> Option<&'static Invariant> {
    CATALOGUE.iter().find(|i| i.name == name)
}

/// The state the per-step checkers read, with the per-CPU counts they share computed once
/// (into buffers the caller keeps: a [`Checker`] reuses them from step to step).
pub struct Snapshot<'a> {
    pub k: &'a Kernel,
    pub s: &'a SchedState,
    /// Per CPU, the tasks queued and counted by `nr_running` (filled for the CPUs checked).
    queued_on: &'a [u32],
    /// Per CPU, the queued unthrottled DL tasks (filled for the CPUs checked).
    queued_dl: &'a [u32],
    /// Per CPU, the tasks asleep off the runqueue in iowait there (filled for every CPU).
    iowait_on: &'a [i64],
    /// The tasks with a `blocked_on` and those with a `blocked_donor`, in id order, and the
    /// bandwidth of the SCHED_DEADLINE tasks (filled for every task).
    blocked_on: &'a [TaskId],
    blocked_donor: &'a [TaskId],
    dl_tasks_bw: u64,
}

/// The per-CPU counts a [`Snapshot`] shares, kept between steps so that a check allocates
/// nothing.
#[derive(Default)]
struct Counts {
    queued_on: Vec<u32>,
    queued_dl: Vec<u32>,
    iowait_on: Vec<i64>,
    blocked_on: Vec<TaskId>,
    blocked_donor: Vec<TaskId>,
    /// Per task, its CPU at the last snapshot (no quiet step moves a task).
    task_cpu: Vec<sim::CpuId>,
    /// The RT/DL watch's candidates at the last snapshot, with their CPUs at the one before
    /// ([`rt_dl::Candidate`]).
    rt_dl_candidates: Vec<rt_dl::Candidate>,
}

impl Counts {
    /// A snapshot with the queued counts of the CPUs in `only` (every CPU with None), and the
    /// iowait sleepers of every CPU, the blocked tasks and the DL tasks' bandwidth, in one
    /// pass over the tasks (the checks that read them share it); the same pass finds the
    /// RT/DL watch's candidates.
    fn snapshot<'a>(&'a mut self, k: &'a Kernel, s: &'a SchedState, only: Option<&[bool]>) -> Snapshot<'a> {
        self.queued_on.clear();
        self.queued_on.resize(s.rqs.len(), 0);
        self.queued_dl.clear();
        self.queued_dl.resize(s.rqs.len(), 0);
        self.iowait_on.clear();
        self.iowait_on.resize(s.rqs.len(), 0);
        self.blocked_on.clear();
        self.blocked_donor.clear();
        self.rt_dl_candidates.clear();
        let seen = self.task_cpu.len();
        self.task_cpu.resize(s.tasks.len(), sim::CpuId(0));
        let mut dl_tasks_bw = 0;
        for (t, cpu) in s.tasks.iter().zip(&mut self.task_cpu) {
            let c = t.cpu.idx();
            let was = std::mem::replace(cpu, t.cpu);
            if sleeps_in_iowait(t) {
                self.iowait_on[c] += 1;
            }
            if t.blocked_on.is_some() {
                self.blocked_on.push(t.id);
            }
            if t.blocked_donor.is_some() {
                self.blocked_donor.push(t.id);
            }
            if t.policy == uapi::Policy::Deadline {
                dl_tasks_bw += t.dl.dl_bw;
            }
            if t.on_rq != OnRq::Queued {
                continue;
            }
            if rt_dl::queued_rt_dl(t) {
                let new = t.id.idx() >= seen;
                self.rt_dl_candidates.push((t.id, (!new).then_some(was)));
            }
            if only.is_some_and(|only| !only[c]) {
                continue;
            }
            if t.class == Class::Deadline {
                // sched::deadline::queued_dl_tasks_into()'s rule, which check_dl_rq() reads.
                if !t.dl.dl_throttled {
                    self.queued_dl[c] += 1;
                    self.queued_on[c] += 1;
                }
            } else if !crate::sched::fair::task_throttled(s, t.id) {
                // A task in a throttled CFS hierarchy stays queued in its group but is not
                // counted by its rq (throttle_cfs_rq() subtracts it), like a throttled DL
                // task.
                self.queued_on[c] += 1;
            }
        }
        Snapshot {
            k,
            s,
            queued_on: &self.queued_on,
            queued_dl: &self.queued_dl,
            iowait_on: &self.iowait_on,
            blocked_on: &self.blocked_on,
            blocked_donor: &self.blocked_donor,
            dl_tasks_bw,
        }
    }

    /// A snapshot without what the pass over the tasks gathers (counts, iowait sleepers,
    /// blocked tasks, DL bandwidth), for the checks that read none of it (the lockless ones
    /// after a quiet step).
    fn snapshot_quiet<'a>(&'a self, k: &'a Kernel, s: &'a SchedState) -> Snapshot<'a> {
        Snapshot {
            k,
            s,
            queued_on: &[],
            queued_dl: &[],
            iowait_on: &[],
            blocked_on: &[],
            blocked_donor: &[],
            dl_tasks_bw: 0,
        }
    }
}

impl Snapshot<'_> {
    fn rq_locked(&self, rq: &Rq) -> bool {
        self.k.m.lock_owner(rq.lock).is_some()
    }
}

/// Every violated per-step invariant as (name, detail), in catalogue order: each unlocked
/// runqueue's entries, CPU by CPU, then the system-wide entries.
pub fn check_all(k: &Kernel) -> Vec<(&'static str, String)> {
    let s = k.s.borrow();
    let mut counts = Counts::default();
    let mut out = Vec::new();
    let x = counts.snapshot(k, &s, None);
    for rq in s.rqs.iter().filter(|rq| !x.rq_locked(rq)) {
        for inv in CATALOGUE {
            if let Check::EachRq(f) = inv.check {
                out.extend(f(&x, rq).map(|d| (inv.name, d)));
            }
        }
    }
    for inv in CATALOGUE {
        if let Check::EachStep(f) = inv.check {
            out.extend(f(&x).into_iter().map(|d| (inv.name, d)));
        }
    }
    out
}

/// A per-runqueue per-step checker ([`Check::EachRq`]).
type RqCheck = fn(&Snapshot, &Rq) -> Option<String>;

/// A system-wide per-step checker ([`Check::EachStep`]).
type SystemCheck = fn(&Snapshot) -> Vec<String>;

/// The system-wide checks that read a field the model, like Linux, writes without a spinlock:
/// they run after quiet steps too. A kworker marks itself sleeping, and counts itself running
/// again, without a lock (wq_worker_sleeping() before it takes the pool lock,
/// wq_worker_running()); an rt_mutex's owner is set and cleared by the lockless fast paths
/// (rt_mutex_cmpxchg_acquire()/_release()). Neither reads the per-CPU counts.
const LOCKLESS_INPUTS: &[&str] = &[
    "rt_mutex_top_waiter_in_owner_pi_waiters",
    "wq_nr_running_counts_running_workers",
];

/// The lockless check of the worker pools, which the [`Checker`] runs only when what it reads
/// changed, as `WqState::gen` tells.
const POOLS_CHECK: &str = "wq_nr_running_counts_running_workers";

/// The system-wide checks whose inputs the model writes under nothing but runqueue locks:
/// a task's `blocked_donor` (find_proxy_task()), its `blocked_on` (the 7.1 and later proxy
/// paths clear it with the rq lock held), `nr_iowait` and the tasks' queued state, and the
/// DL bandwidth check, which runs only while no runqueue lock is held. The other
/// system-wide checks read rt_mutex wait state, which an rt_mutex's `wait_lock` protects
/// (the task's `pi_lock` is taken inside it, never alone, for that state).
const RQ_LOCKED_INPUTS: &[&str] = &[
    "blocked_on_is_a_waiter",
    "blocked_donor_path_is_simple",
    "dl_bw_admitted",
    "nr_iowait_balanced",
];

/// When the checker runs a system-wide check ([`Checker`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// After every step (`LOCKLESS_INPUTS`).
    Lockless,
    /// After every step after which `WqState::gen` moved (`POOLS_CHECK`).
    Pools,
    /// After every step whose CPU released or holds a lock (`RQ_LOCKED_INPUTS`).
    RqLocks,
    /// After every step whose CPU released or holds a lock other than a runqueue, pi, worker
    /// pool or wait-queue lock.
    OtherLocks,
}

/// How much of the state a step may have changed ([`Checker::classify`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Touched {
    /// Nothing the checks read (its CPU released no lock and holds none that protects
    /// any).
    Nothing,
    /// The runqueues marked in `Checker::dirty` and what their locks protect, and what pi
    /// locks protect (the runqueue of each such lock's task is marked).
    Rqs,
    /// As [`Touched::Rqs`], and kernel mutex wait state besides: what mutex `wait_lock`s
    /// protect (wait lists) and what `blocked_lock`s protect (their task's `blocked_on`,
    /// `proxy_waking`, parked donors: the runqueue of each such lock's task is marked, and
    /// the CPU's own, whose task takes the wait_lock). Every system-wide check runs.
    Waits,
    /// Anything.
    All,
}

/// The per-step checks of a run: [`check_all`] and the RT/DL settling watch
/// ([`rt_dl::TopNWatch`]) after every machine step, at a fraction of their cost and with
/// exactly their verdicts.
///
/// Everything the per-step checks read is written under some raw spinlock (rq, pi,
/// blocked, wait and pool locks) — the rules they check are rules about what a lock holder
/// leaves behind — except the inputs of the `LOCKLESS_INPUTS` checks, which run after every
/// step. So what a step may have changed is what the locks its CPU released during it, or
/// holds after it, protect ([`Lockdep::released_since`](crate::locking::lockdep::Lockdep::released_since),
/// [`Lockdep::held`](crate::locking::lockdep::Lockdep::held)); the checks that read nothing
/// of that would read what they read after the previous step, and passed then (a violation
/// ends the run). A step is
/// - *quiet* when those locks are only worker pool and wait-queue locks (whose data no
///   check but the lockless one reads), or none: no check but the lockless ones runs, and
///   the RT/DL watch only counts it and is evaluated again once a wait it times reaches its
///   bound ([`rt_dl::TopNWatch::deadline_ns`]). Quiet steps are most of a run: busy-wait
///   polls of mutex spinners, user work, the lock-free stretches of `schedule()` and the
///   idle loop;
/// - *runqueue-only* when they are runqueue and pi locks besides: the per-runqueue checks
///   run for those runqueues (while unlocked), the system-wide checks for what rq locks
///   protect (`RQ_LOCKED_INPUTS`) and the lockless ones, and the watch. A pi lock alone
///   (try_to_wake_up() before it takes a runqueue lock) guards its task's wakeup state and
///   the placement of a task queued nowhere: its task's runqueues before and after the
///   step are judged (the task may still be the curr or donor of the one it leaves), and
///   the system-wide checks; what the rt_mutex checks read it guards only together with an
///   rt_mutex's `wait_lock`;
/// - *runqueue and mutex only* when they are kernel mutex `wait_lock`s and `blocked_lock`s
///   besides: what a `blocked_lock` guards is its task's `blocked_on` and `proxy_waking`
///   and the donors parked on it, so its task's runqueues before and after the step are
///   marked as for a pi lock, and a `wait_lock` marks the CPU's own runqueue (its task is
///   the one that takes it); the per-runqueue checks run for the marked runqueues, every
///   system-wide check runs (the wait lists may have changed), and the watch;
/// - otherwise every check runs (an rt_mutex `wait_lock`, or a new task).
///
/// A runqueue's state here is its own fields and those of its curr, donor and stopper and
/// of the tasks queued on it (by `task_cpu`); a queued task changes CPU only with both
/// runqueues locked, and one queued nowhere under its `pi_lock` or the source's rq lock.
/// The worker pools' check runs only when `WqState::gen` moved.
///
/// `Config::full_checks` (`PROXYSCHED_FULL_CHECKS=1` on the command line) checks every step,
/// and asserts the premise after each step that would have been checked in part or not at
/// all: the state the skipped checks read is unchanged ([`quiet::unjudged_change`]), and the
/// pools' inputs did not change without `WqState::gen` moving. A test runs both ways over
/// the scenarios and swarm seeds, failing runs included, and asserts identical outcomes
/// (crates/cli/tests/full_checks.rs).
pub struct Checker {
    full: bool,
    counts: Counts,
    out: Vec<(&'static str, String)>,
    top_n: rt_dl::TopNWatch,
    /// The number of tasks after the previous step (None before the first).
    seen_tasks: Option<usize>,
    /// Per CPU: its runqueue may have changed in this step (see [`Touched::Rqs`]).
    dirty: Vec<bool>,
    /// By lock id: the task whose `pi_lock` or `blocked_lock` it is (rebuilt when tasks are
    /// added).
    lock_task: Vec<Option<TaskId>>,
    /// With `full`: the checked state as the previous step left it, rendered.
    rendered: quiet::CheckedState,
    rendered_now: quiet::CheckedState,
    /// With `full`: the pools' check inputs' digest after the previous step.
    pools_digest: u64,
    /// `WqState::gen` when the pools were last judged.
    wq_gen: Option<u64>,
    /// The per-runqueue and the system-wide entries, in catalogue order.
    per_rq: Vec<(&'static str, RqCheck)>,
    system: Vec<(&'static str, SystemCheck, Scope)>,
    /// The system-wide entries that run after a quiet step (`Lockless` and `Pools`), in
    /// catalogue order.
    system_quiet: Vec<(&'static str, SystemCheck, Scope)>,
    /// Steps checked (every check or those of some runqueues) and steps skipped as quiet.
    pub checked_steps: u64,
    pub quiet_steps: u64,
}

impl Checker {
    pub fn new(k: &Kernel, full: bool) -> Checker {
        let scope = |name: &str| {
            if name == POOLS_CHECK {
                Scope::Pools
            } else if LOCKLESS_INPUTS.contains(&name) {
                Scope::Lockless
            } else if RQ_LOCKED_INPUTS.contains(&name) {
                Scope::RqLocks
            } else {
                Scope::OtherLocks
            }
        };
        Checker {
            full,
            counts: Counts::default(),
            out: Vec::new(),
            top_n: rt_dl::TopNWatch::new(&k.s.borrow()),
            seen_tasks: None,
            dirty: Vec::new(),
            lock_task: Vec::new(),
            rendered: quiet::CheckedState::default(),
            rendered_now: quiet::CheckedState::default(),
            pools_digest: 0,
            wq_gen: None,
            per_rq: CATALOGUE
                .iter()
                .filter_map(|i| match i.check {
                    Check::EachRq(f) => Some((i.name, f)),
                    _ => None,
                })
                .collect(),
            system: CATALOGUE
                .iter()
                .filter_map(|i| match i.check {
                    Check::EachStep(f) => Some((i.name, f, scope(i.name))),
                    _ => None,
                })
                .collect(),
            system_quiet: CATALOGUE
                .iter()
                .filter_map(|i| match i.check {
                    Check::EachStep(f) => Some((i.name, f, scope(i.name))),
                    _ => None,
                })
                .filter(|&(_, _, scope)| matches!(scope, Scope::Lockless | Scope::Pools))
                .collect(),
            checked_steps: 0,
            quiet_steps: 0,
        }
    }

    /// What the step of `cpu` that just ended may have changed (see [`Checker`]), with
    /// `dirty` set for [`Touched::Rqs`]; forgets the locks it released.
    fn classify(&mut self, k: &Kernel, cpu: sim::CpuId, s: &SchedState) -> Touched {
        use crate::locking::lockdep::LockClass;
        let first = self.seen_tasks.is_none();
        let new_task = self.seen_tasks != Some(s.tasks.len());
        self.seen_tasks = Some(s.tasks.len());
        if new_task {
            self.lock_task.clear();
            for t in &s.tasks {
                for l in [t.pi_lock.0 as usize, t.blocked_lock.0 as usize] {
                    if self.lock_task.len() <= l {
                        self.lock_task.resize(l + 1, None);
                    }
                    self.lock_task[l] = Some(t.id);
                }
            }
        }
        let mut lockdep = k.lockdep.borrow_mut();
        if first {
            lockdep.log_releases();
        }
        self.dirty.clear();
        self.dirty.resize(k.m.nr_cpus(), false);
        let mut touched = if new_task { Touched::All } else { Touched::Nothing };
        // Lockdep records a lock when its acquisition starts (Lockdep::acquire); a CPU still
        // spinning for it owns nothing yet, so only locks the machine gives it count.
        let held = lockdep
            .held(cpu)
            .iter()
            .filter(|&&(lock, _)| k.m.lock_owner(lock) == Some(cpu));
        for &(lock, class) in lockdep.released_since(cpu).iter().chain(held) {
            match class {
                LockClass::Rq(c) => {
                    self.dirty[c.idx()] = true;
                    if touched == Touched::Nothing {
                        touched = Touched::Rqs;
                    }
                }
                // What a pi_lock alone guards is its task's wakeup state and the placement of
                // a task queued nowhere (try_to_wake_up() before it takes a runqueue lock):
                // the task's runqueues before and after the step are judged (it may still be
                // the curr or donor of the one it leaves), and the system-wide checks.
                LockClass::PiLock | LockClass::BlockedLock | LockClass::BlockedLockNested => {
                    let t = self.lock_task.get(lock.0 as usize).copied().flatten();
                    let t = t.expect("every pi_lock and blocked_lock belongs to a task");
                    self.dirty[s.tasks[t.idx()].cpu.idx()] = true;
                    if let Some(was) = self.counts.task_cpu.get(t.idx()) {
                        self.dirty[was.idx()] = true;
                    }
                    let at_least = if class == LockClass::PiLock {
                        Touched::Rqs
                    } else {
                        Touched::Waits
                    };
                    touched = touched.max(at_least);
                }
                LockClass::MutexWaitLock => {
                    self.dirty[cpu.idx()] = true;
                    touched = touched.max(Touched::Waits);
                }
                LockClass::WorkerPool | LockClass::WaitQueue => {}
                _ => touched = Touched::All,
            }
        }
        lockdep.clear_released(cpu);
        touched
    }

    /// Check the state after one machine step of `cpu`; every violation is reported to the
    /// kernel (which stops the run), in catalogue order, the RT/DL watch last.
    pub fn after_step(&mut self, k: &Kernel, cpu: sim::CpuId) {
        let s = k.s.borrow();
        let mut touched = self.classify(k, cpu, &s);
        let wq_gen = Some(s.wq.gen);
        let pools_changed = self.wq_gen != wq_gen;
        self.wq_gen = wq_gen;
        if self.full {
            quiet::render_checked_state(&s, &mut self.rendered_now);
            if touched != Touched::All && !self.rendered.per_rq.is_empty() {
                let changed = quiet::unjudged_change(
                    &self.rendered,
                    &self.rendered_now,
                    &self.dirty,
                    touched >= Touched::Rqs,
                    touched >= Touched::Waits,
                );
                assert!(
                    changed.is_none(),
                    "a step of cpu{cpu} judged {} changed {}, at {} ns, step {}",
                    match touched {
                        Touched::Nothing => "quiet (no lock released or held but pool and wait-queue locks)",
                        Touched::Rqs => "runqueue-only (only runqueue, pi, pool and wait-queue locks released or held)",
                        _ => "runqueue and mutex only (only runqueue, pi, mutex wait_lock, blocked_lock, pool and wait-queue locks released or held)",
                    },
                    changed.unwrap_or_default(),
                    k.m.now(),
                    k.m.steps()
                );
            }
            std::mem::swap(&mut self.rendered, &mut self.rendered_now);
            let pools = crate::workqueue::pool_check_inputs_digest(&s);
            assert!(
                pools_changed || pools == self.pools_digest,
                "the worker pools' nr_running or workers changed without WqState::gen moving, \
                 at {} ns, step {}",
                k.m.now(),
                k.m.steps()
            );
            self.pools_digest = pools;
            touched = Touched::All;
        }
        self.top_n.number_step(k.m.steps() + k.m.folded_polls());
        let late = if touched == Touched::Nothing {
            self.quiet_steps += 1;
            let x = self.counts.snapshot_quiet(k, &s);
            for &(name, f, scope) in &self.system_quiet {
                if scope == Scope::Lockless || pools_changed {
                    for d in f(&x) {
                        self.out.push((name, d));
                    }
                }
            }
            self.top_n.quiet_step(&s, k.m.now(), &self.counts.task_cpu)
        } else {
            self.checked_steps += 1;
            let all = touched == Touched::All;
            let x = self.counts.snapshot(k, &s, (!all).then_some(&self.dirty[..]));
            for rq in &s.rqs {
                if (all || self.dirty[rq.cpu.idx()]) && !x.rq_locked(rq) {
                    for &(name, f) in &self.per_rq {
                        if let Some(d) = f(&x, rq) {
                            self.out.push((name, d));
                        }
                    }
                }
            }
            for &(name, f, scope) in &self.system {
                let run = match scope {
                    Scope::Lockless => true,
                    Scope::Pools => pools_changed || self.full,
                    Scope::RqLocks => true,
                    Scope::OtherLocks => touched >= Touched::Waits,
                };
                if run {
                    for d in f(&x) {
                        self.out.push((name, d));
                    }
                }
            }
            self.top_n.step(
                &s,
                &self.counts.rt_dl_candidates,
                (!all).then_some(&self.dirty[..]),
            )
        };
        drop(s);
        for (inv, detail) in self.out.drain(..) {
            k.violation(inv, detail);
        }
        if let Some(detail) = late {
            k.violation("rt_dl_top_n_running", detail);
        }
    }

    /// The RT/DL watch's deadline ([`rt_dl::TopNWatch::deadline_ns`]).
    pub fn deadline_ns(&self) -> Option<sim::Nanos> {
        self.top_n.deadline_ns()
    }
}

// ------------------------------------------------------------------ the catalogue

/// Every invariant, safety first, then liveness, then workload misuse. The order of the
/// per-step entries is the order of reports within one step.
pub const CATALOGUE: &[Invariant] = &[
    Invariant {
        name: "nr_running_matches_queued",
        spec: "T-9a",
        kind: Kind::Safety,
        statement: "`rq->nr_running` counts exactly the tasks queued on this runqueue (throttled DL and CFS-throttled tasks excluded).",
        linux: "kernel/sched/core.c activate_task()/deactivate_task() with add_nr_running()/sub_nr_running(); a task is on at most one rq (I2).",
        check: Check::EachRq(nr_running_matches_queued),
    },
    Invariant {
        name: "class_counts_match_nr_running",
        spec: "T-9c",
        kind: Kind::Safety,
        statement: "The per-class counts (cfs `h_nr_queued`, `rt_nr_running`, DL tasks, stop) add up to `nr_running`; the fair server counts in `dl_nr_running` only.",
        linux: "each class's enqueue/dequeue adjusts its own count and the rq's together (inc_rt_tasks(), inc_dl_tasks(), enqueue_task_fair()).",
        check: Check::EachRq(class_counts_match_nr_running),
    },
    Invariant {
        name: "cfs_hierarchy_consistent",
        spec: "F-48",
        kind: Kind::Safety,
        statement: "Each cfs_rq's counts and load match the entities queued on it; a group entity with tasks below is queued unless throttled.",
        linux: "kernel/sched/fair.c account_entity_enqueue(), enqueue_task_fair(), dequeue_entities().",
        check: Check::EachRq(cfs_hierarchy_consistent),
    },
    Invariant {
        name: "dl_rq_consistent",
        spec: "D-4, D-12",
        kind: Kind::Safety,
        statement: "The DL tree holds exactly the queued unthrottled DL tasks in deadline order; `dl_nr_running`, `earliest_dl`, cpudl and the overload mask agree.",
        linux: "kernel/sched/deadline.c __enqueue_dl_entity(), inc_dl_deadline(), cpudl_set(), dl_set_overload().",
        check: Check::EachRq(dl_rq_consistent),
    },
    Invariant {
        name: "dl_rq_curr_is_donor",
        spec: "A1, P4 (v29 3/9)",
        kind: Kind::Safety,
        statement: "`dl_rq->curr` is the donor's DL entity exactly when the donor is a DL task.",
        linux: "v29 3/9: set_next_task_dl()/put_prev_task_dl() keep dl_rq->curr for the scheduling context, not rq->curr.",
        check: Check::EachRq(dl_rq_curr_is_donor),
    },
    Invariant {
        name: "curr_in_affinity",
        spec: "I1, T-6",
        kind: Kind::Safety,
        statement: "The task executing on a CPU is allowed there (an affinity change waiting for the stopper is the one legal window); a donor may be queued outside its mask.",
        linux: "kernel/sched/core.c is_cpu_allowed(), __set_cpus_allowed_ptr() → migration_cpu_stop(); find_proxy_task() never runs an owner off its mask.",
        check: Check::EachRq(curr_in_affinity),
    },
    Invariant {
        name: "curr_on_cpu",
        spec: "T-4, T-5",
        kind: Kind::Safety,
        statement: "The current task is marked `on_cpu` and its `task_cpu` is this CPU.",
        linux: "kernel/sched/core.c prepare_task()/finish_task() set p->on_cpu around the switch; set_task_cpu() before it runs.",
        check: Check::EachRq(curr_on_cpu),
    },
    Invariant {
        name: "donor_is_curr_unless_proxying",
        spec: "I3, C3",
        kind: Kind::Safety,
        statement: "`rq->donor == rq->curr` unless a proxy runs: then the donor is queued here and curr is queued here, idle, or a blocking prev inside the pick's balance pass.",
        linux: "kernel/sched/core.c __schedule(): rq_set_donor() then find_proxy_task(); proxy_resched_idle() for the transient swap.",
        check: Check::EachRq(donor_is_curr_unless_proxying),
    },
    Invariant {
        name: "donor_queued",
        spec: "I4",
        kind: Kind::Safety,
        statement: "A blocked donor that is `rq->donor` stays queued until proxy code swaps the donor away first.",
        linux: "kernel/sched/core.c try_to_block_task() leaves a blocked_on task queued under proxy exec; proxy_deactivate() swaps to idle before dequeuing.",
        check: Check::EachRq(donor_queued),
    },
    Invariant {
        name: "next_class_is_donor_class",
        spec: "I13",
        kind: Kind::Safety,
        statement: "`rq->next_class` is the class of `rq->donor` after every donor swap.",
        linux: "kernel/sched/core.c rq_set_donor() callers update rq->next_class (B-2026-05-1, C4/S11/S12).",
        check: Check::EachRq(next_class_is_donor_class),
    },
    Invariant {
        name: "blocked_on_is_a_waiter",
        spec: "I5",
        kind: Kind::Safety,
        statement: "A task's `blocked_on` names a mutex whose wait list holds it (checked while that mutex's wait_lock is free).",
        linux: "kernel/locking/mutex.c __mutex_lock_common(): __set_task_blocked_on() after __mutex_add_waiter(), cleared before __mutex_remove_waiter().",
        check: Check::EachStep(blocked_on_is_a_waiter),
    },
    Invariant {
        name: "blocked_donor_path_is_simple",
        spec: "I9",
        kind: Kind::Safety,
        statement: "`blocked_donor` links form simple paths (a loop is allowed only as a real lock cycle, which the deadlock check reports).",
        linux: "v29 9/9: find_proxy_task() writes owner->blocked_donor = p once per link of one walk; __schedule() clears it for the picked donor.",
        check: Check::EachStep(blocked_donor_path_is_simple),
    },
    Invariant {
        name: "dl_bw_admitted",
        spec: "D-2",
        kind: Kind::Safety,
        statement: "The root domain's admitted bandwidth is the fair servers' plus every DL task's (checked while no rq lock is held).",
        linux: "kernel/sched/deadline.c sched_dl_overflow(), __dl_add()/__dl_sub(), dl_server_apply_params().",
        check: Check::EachStep(dl_bw_admitted),
    },
    Invariant {
        name: "rt_mutex_has_waiters_bit",
        spec: "M-10",
        kind: Kind::Safety,
        statement: "An rt_mutex with waiters has its HAS_WAITERS bit set.",
        linux: "kernel/locking/rtmutex.c mark_rt_mutex_waiters(), fixup_rt_mutex_waiters().",
        check: Check::EachStep(rt_mutex_has_waiters_bit),
    },
    Invariant {
        name: "rt_mutex_waiter_linked",
        spec: "M-10",
        kind: Kind::Safety,
        statement: "Each queued rt_mutex waiter is its task's `pi_blocked_on` waiter, with the same key.",
        linux: "kernel/locking/rtmutex.c task_blocks_on_rt_mutex(): rt_mutex_enqueue() and task->pi_blocked_on = waiter under wait_lock.",
        check: Check::EachStep(rt_mutex_waiter_linked),
    },
    Invariant {
        name: "rt_mutex_top_waiter_in_owner_pi_waiters",
        spec: "M-10",
        kind: Kind::Safety,
        statement: "An rt_mutex owner's `pi_waiters` holds exactly that lock's top waiter.",
        linux: "kernel/locking/rtmutex.c rt_mutex_enqueue_pi()/rt_mutex_dequeue_pi() as the top waiter changes (rt_mutex_adjust_prio_chain()).",
        check: Check::EachStep(rt_mutex_top_waiter_in_owner_pi_waiters),
    },
    Invariant {
        name: "wq_nr_running_counts_running_workers",
        spec: "S-7",
        kind: Kind::Safety,
        statement: "A worker pool's `nr_running` counts its running workers, a worker inside the sleeping hook counted or not.",
        linux: "kernel/workqueue.c wq_worker_running()/wq_worker_sleeping(), worker_set_flags()/worker_clr_flags().",
        check: Check::EachStep(wq_nr_running_counts_running_workers),
    },
    Invariant {
        name: "nr_iowait_balanced",
        spec: "W-iowait (d346306db401)",
        kind: Kind::Safety,
        statement: "Each CPU's `nr_iowait` counts the tasks in iowait sleep that blocked there and are not yet woken.",
        linux: "kernel/sched/core.c __block_task() raises it on the CPU the task blocks on; ttwu_do_activate() lowers it on task_rq(p) before the task moves.",
        check: Check::EachStep(nr_iowait_balanced),
    },
    Invariant {
        name: "lockdep",
        spec: "L1-L4",
        kind: Kind::Safety,
        statement: "Raw spinlocks are taken in the documented order, never recursively, and released by their holder.",
        linux: "kernel/locking/lockdep.c check_prev_add()/check_deadlock() on the rq, pi, wait and blocked locks.",
        check: Check::InPath("Kernel::raw_spin_lock / raw_spin_trylock / raw_spin_unlock"),
    },
    Invariant {
        name: "I12",
        spec: "I12, P1-P2 (v29 1/9)",
        kind: Kind::Safety,
        statement: "`put_prev_set_next_task(prev, ...)` is only called with `prev == rq->donor`.",
        linux: "v29 1/9: __pick_next_task()/prev_balance() read rq->donor after the balance pass, which may drop the rq lock (B-v29-1).",
        check: Check::InPath("sched::core::pick_next_task"),
    },
    Invariant {
        name: "proxy_handoff_to_booster",
        spec: "M5-M6, C11 (v29 9/9)",
        kind: Kind::Safety,
        statement: "A mutex released by an owner that a chain walk put on its CPU goes to the waiter through which that walk reached the owner, while that waiter still waits on it and no earlier release used the walk up (v29 and later). Not checked: a chain that re-forms after the walk, with no pick in between (see below).",
        linux: "v29 9/9: find_proxy_task() writes owner->blocked_donor = p at each hop, __schedule() clears it for the picked task; __mutex_unlock_slowpath() hands the lock to current->blocked_donor when it is blocked on this lock (clearing it), else to the wait-list head.",
        check: Check::InPath("locking::mutex::mutex_unlock_slowpath"),
    },
    Invariant {
        name: "I10",
        spec: "I10, S4, S7",
        kind: Kind::Safety,
        statement: "`rq->balance_callback` is empty at every `pick_again`: an abandoned pick zaps its push/pull work.",
        linux: "kernel/sched/core.c zap_balance_callbacks() in __schedule() before a re-pick and in proxy_migrate_task()/proxy_force_return().",
        check: Check::InPath("sched::core::__schedule"),
    },
    Invariant {
        name: "I7",
        spec: "I7, B6",
        kind: Kind::Safety,
        statement: "No proxy path deactivates a TASK_RUNNING task (its wakeup would be lost).",
        linux: "kernel/sched/core.c proxy_deactivate() refuses a task whose state is TASK_RUNNING (B-2026-05-2).",
        check: Check::InPath("sched::core::find_proxy_task"),
    },
    Invariant {
        name: "rt_push_not_curr",
        spec: "I11, S10",
        kind: Kind::Safety,
        statement: "RT push never selects the task executing on the CPU (an owner running for a donor included).",
        linux: "kernel/sched/rt.c push_rt_task(): pick_next_pushable_task() skips on-cpu tasks (B-7.1-1).",
        check: Check::InPath("sched::rt::push_rt_task"),
    },
    Invariant {
        name: "dl_push_not_curr",
        spec: "I11, S10",
        kind: Kind::Safety,
        statement: "DL push never selects the task executing on the CPU.",
        linux: "kernel/sched/deadline.c push_dl_task(): pick_next_pushable_dl_task() skips on-cpu tasks.",
        check: Check::InPath("sched::deadline::push_dl_task"),
    },
    Invariant {
        name: "model_assertion",
        spec: "I6, B5, B-v22-2, ...",
        kind: Kind::Safety,
        statement: "Every `assert!` in the model holds (e.g. I6: proxy code only deactivates or migrates a task that blocked through its own schedule(); B-v22-2: no proxy action under a wait_lock or blocked_lock).",
        linux: "WARN_ON/BUG_ON in kernel/sched/core.c (proxy_deactivate(), proxy_migrate_task(), find_proxy_task()).",
        check: Check::Assertion("model-wide (reported by the run harness with its replay line)"),
    },
    Invariant {
        name: "I2",
        spec: "I2",
        kind: Kind::Safety,
        statement: "A task is queued on at most one runqueue and `task_cpu` names it; MIGRATING tasks are on none.",
        linux: "kernel/sched/core.c set_task_cpu(), move_queued_task().",
        check: Check::NotChecked("by construction: a task has one `on_rq` and one `cpu` field; the per-rq counts (nr_running_matches_queued) would see a double enqueue"),
    },
    Invariant {
        name: "I8",
        spec: "I8",
        kind: Kind::Safety,
        statement: "Owner chains are followed only under each mutex's wait_lock; the walk never spins forever.",
        linux: "kernel/sched/core.c find_proxy_task() takes mutex->wait_lock per link; the April 2026 depth bound.",
        check: Check::NotChecked("the lock part holds by construction (lockdep sees the locks taken); the bound is MAX_PROXY_CHAIN_DEPTH and a cycle is the deadlock_lock_cycle check"),
    },
    Invariant {
        name: "I14",
        spec: "I14",
        kind: Kind::Safety,
        statement: "Per tick interval, wall time on a CPU equals the time charged to `rq->curr`; vruntime/budget advance only for `rq->donor`.",
        linux: "kernel/sched/core.c update_curr_common(), update_curr_dl() charging the donor.",
        check: Check::NotChecked("a strict version does not hold, in the model as in Linux: when a DL donor is throttled at the tick, update_curr_dl() returns early for the off-tree donor and the microseconds until the reschedule are charged to nobody; a checker needs that allowance"),
    },
    Invariant {
        name: "rt_dl_top_n_running",
        spec: "O2 (v29 letter)",
        kind: Kind::Liveness,
        statement: "Within a settling bound, no runnable RT/DL scheduling context waits while a CPU it may run on runs a weaker context (a CPU's donor counts by its own priority; exclusions below).",
        linux: "kernel/sched/rt.c push_rt_task()/pull_rt_task() with cpupri, kernel/sched/deadline.c push_dl_task()/pull_dl_task() with cpudl: the N highest RT/DL contexts run on the N CPUs.",
        check: Check::Watch("invariants::rt_dl::TopNWatch::step (see its doc for the bound and exclusions)"),
    },
    Invariant {
        name: "deadlock_lock_cycle",
        spec: "I8, M-cycle",
        kind: Kind::Liveness,
        statement: "No cycle of mutex waits persists over two whole tick periods (end reason `deadlock`, exit 3).",
        linux: "the hung-task detector / lockdep's circular dependency report; find_proxy_task() would spin on the cycle.",
        check: Check::Watch("system::Watchdog::step, system::check_stall, sched::core::find_proxy_task"),
    },
    Invariant {
        name: "stall_quiet_ticks",
        spec: "I7",
        kind: Kind::Liveness,
        statement: "While workload tasks live, something is queued, waking or timed within two ticks (end reason `stall`, exit 3): no wakeup is lost.",
        linux: "the RCU stall / hung-task detectors: a task that nothing can ever wake.",
        check: Check::Watch("system::check_stall (CPU 0's tick)"),
    },
    Invariant {
        name: "stall_lost_wake_list",
        spec: "I7, W-7",
        kind: Kind::Liveness,
        statement: "No episode of a CPU's wake list (from empty to non-empty) lasts two ticks with no IPI or poll kick on its way, checked at CPU 0's tick (end reason `stall`, exit 3): no wake-list entry is lost.",
        linux: "kernel/smp.c __smp_call_single_queue(): the IPI goes out exactly when the list was empty; kernel/sched/core.c set_nr_if_polling() skips it only while the idle task polls (TIF_POLLING_NRFLAG).",
        check: Check::Watch("system::check_stall → check_lost_wake_list"),
    },
    Invariant {
        name: "livelock_no_time_progress",
        spec: "I8",
        kind: Kind::Liveness,
        statement: "Simulated time advances within LIVELOCK_STEPS machine steps (end reason `stall`, exit 3).",
        linux: "the soft-lockup watchdog: a CPU looping in the kernel without progress.",
        check: Check::Watch("system::Watchdog::step"),
    },
    Invariant {
        name: "livelock_user_requests",
        spec: "-",
        kind: Kind::Liveness,
        statement: "A thread makes at most LIVELOCK_USER_OPS requests at one simulated instant (end reason `stall`, exit 3).",
        linux: "none: a workload whose loop takes no time (rt-app would spin on a real CPU).",
        check: Check::Watch("syscalls::task_main → system::end_user_livelock"),
    },
    Invariant {
        name: "workload_unlock_not_owner",
        spec: "M-misuse",
        kind: Kind::Workload,
        statement: "A task unlocks only a mutex it owns.",
        linux: "kernel/locking/mutex.c __mutex_unlock_slowpath() DEBUG_LOCKS_WARN_ON(__owner_task(owner) != current).",
        check: Check::InPath("locking::mutex / locking::rtmutex unlock"),
    },
    Invariant {
        name: "workload_resource",
        spec: "-",
        kind: Kind::Workload,
        statement: "A workload names only resources and work items that exist, of the kind the event needs.",
        linux: "none: rt-app would refuse the resource at parse time.",
        check: Check::InPath("syscalls, workqueue::sys_queue_work"),
    },
];

// ------------------------------------------------------------------ per-runqueue checkers

fn nr_running_matches_queued(x: &Snapshot, rq: &Rq) -> Option<String> {
    let queued = x.queued_on[rq.cpu.idx()];
    (queued != rq.nr_running).then(|| {
        format!(
            "cpu{}: nr_running={} but {queued} tasks queued",
            rq.cpu, rq.nr_running
        )
    })
}

fn class_counts_match_nr_running(x: &Snapshot, rq: &Rq) -> Option<String> {
    let stop_queued = u32::from(x.s.tasks[rq.stop.idx()].on_rq == OnRq::Queued);
    // The fair server counts in dl_nr_running but not in nr_running (D-20).
    let dl_tasks = rq.dl.dl_nr_running - u32::from(rq.fair_server.rb_key.is_some());
    let by_class = rq.cfs.h_nr_queued + rq.rt.rt_nr_running + dl_tasks + stop_queued;
    (by_class != rq.nr_running).then(|| {
        format!(
            "cpu{}: cfs {} + rt {} + dl tasks {dl_tasks} + stop {stop_queued} != nr_running {}",
            rq.cpu, rq.cfs.h_nr_queued, rq.rt.rt_nr_running, rq.nr_running
        )
    })
}

fn cfs_hierarchy_consistent(x: &Snapshot, rq: &Rq) -> Option<String> {
    crate::sched::fair::check_cfs_hierarchy(x.s, rq.cpu)
}

fn dl_rq_consistent(x: &Snapshot, rq: &Rq) -> Option<String> {
    crate::sched::deadline::check_dl_rq(x.s, rq.cpu, x.queued_dl)
}

fn dl_rq_curr_is_donor(x: &Snapshot, rq: &Rq) -> Option<String> {
    let donor_dl = Some(rq.donor).filter(|&d| x.s.tasks[d.idx()].class == Class::Deadline);
    (rq.dl.curr != donor_dl).then(|| {
        format!(
            "cpu{}: dl_rq.curr {:?} but rq.donor {} is {:?}",
            rq.cpu, rq.dl.curr, rq.donor, donor_dl
        )
    })
}

fn curr_in_affinity(x: &Snapshot, rq: &Rq) -> Option<String> {
    let curr = &x.s.tasks[rq.curr.idx()];
    (!x.s.cpus_mask(curr).test(rq.cpu) && !curr.migration_pending).then(|| {
        format!(
            "cpu{} runs {}-{} outside {:?}",
            rq.cpu,
            curr.comm,
            curr.pid,
            x.s.cpus_mask(curr)
        )
    })
}

fn curr_on_cpu(x: &Snapshot, rq: &Rq) -> Option<String> {
    let curr = &x.s.tasks[rq.curr.idx()];
    (!curr.on_cpu || curr.cpu != rq.cpu).then(|| {
        format!(
            "cpu{} curr {}-{} on_cpu={} task_cpu={}",
            rq.cpu, curr.comm, curr.pid, curr.on_cpu, curr.cpu
        )
    })
}

fn donor_is_curr_unless_proxying(x: &Snapshot, rq: &Rq) -> Option<String> {
    if rq.donor == rq.curr {
        return None;
    }
    let c = rq.cpu;
    let curr = &x.s.tasks[rq.curr.idx()];
    let d = &x.s.tasks[rq.donor.idx()];
    // Inside the pick's class balance pass Linux leaves a blocking prev as curr next to the
    // blocked donor, and the pass may drop the lock (balance_dl() pulls when the donor is a
    // throttled DL task, which is off the DL tree): a legal window.
    let prev_blocking_in_balance = rq.in_prev_balance && curr.on_rq != OnRq::Queued && curr.on_cpu;
    let proxying = x.s.feat.proxy_exec
        && d.on_rq == OnRq::Queued
        && d.cpu == c
        && (curr.is_idle_task || (curr.on_rq == OnRq::Queued && curr.cpu == c) || prev_blocking_in_balance);
    (!proxying && !d.is_idle_task).then(|| {
        format!(
            "cpu{c} donor {}-{} != curr {}-{} without a proxy (donor on_rq {:?} cpu {} \
             blocked_on {:?} waking {}; curr on_rq {:?} cpu {})",
            d.comm,
            d.pid,
            curr.comm,
            curr.pid,
            d.on_rq,
            d.cpu,
            d.blocked_on,
            d.proxy_waking,
            curr.on_rq,
            curr.cpu
        )
    })
}

fn donor_queued(x: &Snapshot, rq: &Rq) -> Option<String> {
    // A task that blocked the ordinary way is legitimately dequeued while it is still prev
    // inside __schedule; only a blocked donor must stay queued.
    let d = &x.s.tasks[rq.donor.idx()];
    (crate::sched::core::task_is_blocked(x.s, rq.donor) && d.on_rq != OnRq::Queued)
        .then(|| format!("cpu{} donor {}-{} is not queued", rq.cpu, d.comm, d.pid))
}

fn next_class_is_donor_class(x: &Snapshot, rq: &Rq) -> Option<String> {
    let d = &x.s.tasks[rq.donor.idx()];
    (rq.next_class != d.class).then(|| {
        format!(
            "cpu{} next_class {:?} but donor {}-{} is {:?}",
            rq.cpu, rq.next_class, d.comm, d.pid, d.class
        )
    })
}

// ------------------------------------------------------------------ system-wide checkers

fn blocked_on_is_a_waiter(x: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for t in x.blocked_on.iter().map(|t| &x.s.tasks[t.idx()]) {
        if let Some(m) = t.blocked_on {
            let mx = &x.s.mutexes[m.idx()];
            if x.k.m.lock_owner(mx.wait_lock).is_none() && !mx.wait_list.contains(&t.id) {
                out.push(format!(
                    "{}-{} blocked_on {} but not on its wait list",
                    t.comm, t.pid, mx.name
                ));
            }
        }
    }
    out
}

fn blocked_donor_path_is_simple(x: &Snapshot) -> Vec<String> {
    let s = x.s;
    let mut out = Vec::new();
    for t in x.blocked_donor.iter().map(|t| &s.tasks[t.idx()]) {
        // Common case first: the path ends within as many links as there are tasks.
        let mut steps = 0;
        let mut at = t.blocked_donor;
        while let Some(d) = at {
            steps += 1;
            if steps > s.tasks.len() {
                break;
            }
            at = s.tasks[d.idx()].blocked_donor;
        }
        if at.is_none() {
            continue;
        }
        let mut seen = vec![t.id];
        let mut at = t.blocked_donor;
        while let Some(d) = at {
            if seen.contains(&d) {
                let first = seen.iter().position(|&x| x == d).expect("seen");
                // A loop whose tasks all wait on mutexes is a real lock cycle (ABBA): the
                // deadlock check reports it.
                if !seen[first..]
                    .iter()
                    .all(|&x| s.tasks[x.idx()].blocked_on.is_some())
                {
                    out.push(format!(
                        "{}-{}: blocked_donor links loop back to pid {}",
                        t.comm,
                        t.pid,
                        s.tasks[d.idx()].pid
                    ));
                }
                break;
            }
            seen.push(d);
            at = s.tasks[d.idx()].blocked_donor;
        }
    }
    out
}

fn dl_bw_admitted(x: &Snapshot) -> Vec<String> {
    // sched_setattr admits under the rq lock before it changes the class: check only while
    // no rq lock is held.
    if x.s.rqs.iter().any(|rq| x.rq_locked(rq)) {
        return Vec::new();
    }
    crate::sched::deadline::check_dl_bw(x.s, x.dl_tasks_bw)
        .into_iter()
        .collect()
}

/// The rt_mutexes whose `wait_lock` is free (every change to a lock's tree and to the
/// `pi_waiters` entry for it is made under it), with their index.
fn unlocked_rt_mutexes<'a>(
    x: &'a Snapshot,
) -> impl Iterator<Item = (RtMutexId, &'a crate::locking::rtmutex::RtMutex)> + 'a {
    x.s.rt_mutexes
        .iter()
        .enumerate()
        .map(|(i, l)| (RtMutexId(i as u32), l))
        .filter(|(_, l)| x.k.m.lock_owner(l.wait_lock).is_none())
}

fn rt_mutex_has_waiters_bit(x: &Snapshot) -> Vec<String> {
    unlocked_rt_mutexes(x)
        .filter(|(_, l)| !l.waiters.is_empty() && !l.has_waiters)
        .map(|(_, l)| format!("rt_mutex {} has waiters but no HAS_WAITERS bit", l.name))
        .collect()
}

fn rt_mutex_waiter_linked(x: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (i, l) in unlocked_rt_mutexes(x) {
        for w in &l.waiters {
            let t = &x.s.tasks[w.task.idx()];
            if t.pi_blocked_on != Some(i) || *t.rt_waiter != Some(*w) {
                out.push(format!(
                    "rt_mutex {}: waiter {w:?} but task has pi_blocked_on {:?}, rt_waiter {:?}",
                    l.name, t.pi_blocked_on, t.rt_waiter
                ));
            }
        }
    }
    out
}

fn rt_mutex_top_waiter_in_owner_pi_waiters(x: &Snapshot) -> Vec<String> {
    let s = x.s;
    let mut out = Vec::new();
    for (i, l) in unlocked_rt_mutexes(x) {
        let Some(o) = l.owner else { continue };
        let mine: Vec<TaskId> = s.tasks[o.idx()]
            .pi_waiters
            .iter()
            .map(|p| p.task)
            .filter(|&w| s.tasks[w.idx()].pi_blocked_on == Some(i))
            .collect();
        let want: Vec<TaskId> = l.top_waiter().map(|w| w.task).into_iter().collect();
        if mine != want {
            out.push(format!(
                "rt_mutex {}: owner {o} has pi_waiters {mine:?} for it, top waiter {want:?}",
                l.name
            ));
        }
    }
    out
}

fn wq_nr_running_counts_running_workers(x: &Snapshot) -> Vec<String> {
    crate::workqueue::check_pools(x.s)
}

/// A wakeup that lowers `nr_iowait` on another CPU than the one the task slept on leaks +1
/// on one CPU and −1 on another (the post-v29 sleeping-owner bug, d346306db401).
fn nr_iowait_balanced(x: &Snapshot) -> Vec<String> {
    debug_assert_eq!(
        x.iowait_on.len(),
        x.s.rqs.len(),
        "a snapshot without the iowait counts"
    );
    let bad: Vec<String> =
        x.s.rqs
            .iter()
            .zip(x.iowait_on)
            .filter(|(rq, &w)| rq.nr_iowait != w)
            .map(|(rq, &w)| {
                format!(
                    "cpu{}: nr_iowait {} ({:+}), {w} tasks in iowait sleep there",
                    rq.cpu,
                    rq.nr_iowait,
                    rq.nr_iowait - w
                )
            })
            .collect();
    if bad.is_empty() {
        Vec::new()
    } else {
        vec![bad.join("; ")]
    }
}

/// A task asleep off the runqueue in iowait, counted by its CPU's `nr_iowait`
/// ([`nr_iowait_balanced`]; a running task sets its own state and `in_iowait` without a lock).
fn sleeps_in_iowait(t: &crate::task::Task) -> bool {
    use crate::task::state::{TASK_RUNNING, TASK_WAKING};
    t.in_iowait && t.on_rq == OnRq::No && t.state != TASK_RUNNING && t.state != TASK_WAKING
}

// ------------------------------------------------------------------ the catalogue as a document

/// `docs/invariants.md`, rendered from [`CATALOGUE`] and the coverage marks.
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "# Invariants\n\n\
         <!-- Generated from crates/kernel/src/invariants.rs (CATALOGUE) and \
         crates/kernel/src/coverage.rs; do not edit. Regenerate with\n     \
         UPDATE_DOCS=1 cargo test --release -p kernel --test invariants_doc -->\n\n\
         Every rule the model checks, one named entry each. A violation reports the entry's \
         name (`--metrics` `invariant_violations[].invariant`, the exit-4 message); deadlocks \
         and stalls end the run with exit code 3. Per-step checks run after every machine step \
         with `--check` and in every test; a runqueue is checked only while its lock is free. \
         The spec column refers to `spec/proxy-exec.md` §8.1 (I1–I14) and the baseline tags of \
         `spec/linux-sched-model.md`.\n\n\
         Names are snake_case rules; the spec rules I7, I10 and I12, whose check is the whole \
         rule, keep their spec id as their name.\n",
    );
    for kind in [Kind::Safety, Kind::Liveness, Kind::Workload] {
        let title = match kind {
            Kind::Safety => "Safety",
            Kind::Liveness => "Liveness",
            Kind::Workload => "Workload misuse",
        };
        out.push_str(&format!(
            "\n## {title}\n\n| name | spec | rule | Linux | checked |\n|---|---|---|---|---|\n"
        ));
        for i in CATALOGUE.iter().filter(|i| i.kind == kind) {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                i.name,
                i.spec,
                cell(i.statement),
                cell(i.linux),
                cell(&i.checked_where())
            ));
        }
    }
    out.push_str(&format!(
        "\n## The RT/DL settling rule\n\n{}\n",
        rt_dl::DOC.trim()
    ));
    out.push_str(&format!("\n## The hand-off rule\n\n{}\n", handoff::DOC.trim()));
    out.push_str(
        "\n## Coverage marks\n\n\
         Counters of rare paths (`kernel::coverage`), reported in `Outcome::coverage`: a sweep \
         shows what it reached, and a test asserts \"reached within seeds 0..N\". A mark only \
         counts; it never changes the schedule.\n\n| mark | path |\n|---|---|\n",
    );
    for m in crate::coverage::Mark::ALL {
        out.push_str(&format!("| `{}` | {} |\n", m.name(), cell(m.doc())));
    }
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_snake_case_or_spec_ids() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|i| i.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate catalogue names");
        for i in CATALOGUE {
            let spec_id = i.name.starts_with('I') && i.name[1..].chars().all(|c| c.is_ascii_digit());
            let snake = i
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            assert!(spec_id || snake, "{} breaks the naming scheme", i.name);
            assert!(!i.statement.is_empty() && !i.linux.is_empty(), "{}", i.name);
        }
    }

    #[test]
    fn the_checks_run_after_quiet_steps_are_per_step_system_wide_entries() {
        for name in LOCKLESS_INPUTS
            .iter()
            .chain(RQ_LOCKED_INPUTS)
            .chain([&POOLS_CHECK])
        {
            let inv = lookup(name).unwrap_or_else(|| panic!("{name} is not in the catalogue"));
            assert!(
                matches!(inv.check, Check::EachStep(_)),
                "{name} is not checked every step"
            );
        }
    }

    #[test]
    fn every_spec_invariant_has_an_entry() {
        for n in 1..=14 {
            let id = format!("I{n}");
            assert!(
                CATALOGUE.iter().any(|i| i
                    .spec
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|w| w == id)),
                "spec invariant {id} has no catalogue entry"
            );
        }
    }
}
