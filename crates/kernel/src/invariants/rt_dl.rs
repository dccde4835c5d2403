//! `rt_dl_top_n_running`: the RT/DL balancing rule the v29 letter worries about under chain
//! migration (spec §8.2 O2), checked as a liveness rule with a settling bound.

use sim::{CpuId, CpuMask, Nanos};

use crate::sched::deadline::DlEntity;
use crate::sched::{Class, SchedState};
use crate::task::{OnRq, Task, TaskId};

/// The rule, its bound and its exclusions, for `docs/invariants.md`.
pub const DOC: &str = r#"
`rt_dl_top_n_running` (liveness, checked after every step with the other invariants): the
N highest-priority runnable RT/DL scheduling contexts run on the N CPUs, within a settling
bound, as far as Linux's push and pull promise it. Checked as: no runnable RT or DL context
*waits* while a CPU it may run on runs a strictly weaker context, for longer than the bound.
Strength: stop > DL (earlier deadline first; the fair server counts as a DL entity with its
own deadline while it runs a fair task) > RT (lower `prio` first) > fair and idle. A CPU's
context is its `rq->donor`: a donor counts by its own priority, whoever executes for it.

- A context *waits* when it is queued, not DL-throttled, not `rq->donor` of its CPU and not
  executing anywhere. It may run on the CPUs of its affinity.
- Settling bound: two ticks plus two IPI latencies (2.002 ms at HZ=1000 with the default
  costs). Push on wakeup (task_woken_rt()/_dl()), push after a pick (set_next_task_rt()/_dl())
  and pull when a CPU's priority drops (balance_rt()/_dl()) take a resched IPI, a schedule
  path and a migration; a longer wait is a balancing bug. The longest waits seen on the
  committed scenarios and swarm files with v29 defaults are 0.54 ms (`proxy_swarm_4cpus`
  under proxy; under pi 6 µs).

Excluded, because Linux does not balance them (each was found by a scenario when the check
was first run, and each is modelled as Linux does it):
- *Not pushed*: a context that waits behind a higher class on its CPU (an RT task behind a
  DL task, a PI-boosted owner, the fair server or the stopper). put_prev_task_rt()/_dl() only
  add it to the pushable list; it is pushed at the next pick of its own class on its CPU or
  its next enqueue, and until then only a CPU whose priority drops pulls it. A boosted owner
  that is deboosted while current does not push either (switched_to_rt() returns early for
  the current task). Found by `dl_swarm_4cpus` (pi, seed 2): an RT task of prio 79 waited
  2.3 ms behind a DL-boosted, then deboosted owner while another CPU ran a fair task.
- *Not pulled*: a CPU whose context got weaker without switching away from an RT/DL donor
  (a priority change of the running task, or a pick after a fair or idle prev: the pick's
  balance pass starts at the prev's class, so balance_rt() does not run; switched_from_rt()
  pulls only when no RT task is left). It is no target until it next switches away from an
  RT/DL donor. Found by `sched_football_4cpus` (none, seeds 1-2): an offense player's class
  change at its exit left a FIFO 5 owner running while a FIFO 20 player waited 3 ms.
  The exclusion ends for a waiting context at its own CPU's next push opportunity: a pick
  there that sets a context of its class (also one where only the task on the CPU changed:
  S8 puts and sets the donor again), or its own enqueue or move. A push reaches any weaker
  CPU through cpupri, idle ones included. This is how the rule finds B-7.1-2
  (`proxy_missed_balance_long`: without S8, L waits 4 ms behind its donor while a CPU
  idles). A move counts even where Linux queues no push: 7.1's proxy_force_return() places
  the task it sends home without WF_TTWU and activates it without task_woken(), and the CPU
  it leaves re-picks from idle without a pull. That is B-7.1-3, a bug of the 7.1 stage that
  v29's return through try_to_wake_up() removes (`proxy_force_return_unbalanced`: H waits
  7.8 ms behind E while a CPU idles; `dl_swarm_4cpus` fails at 443 ms under 7.1).
- *Blocked donors* under Proxy Execution: v29's push and pull skip `task_is_blocked()`
  tasks; only proxy migration moves them, towards their owner. Balancing whole chains is the
  later stage the letter names (O2), so a waiting blocked donor is not checked.
"#;

/// The strength of a scheduling context, smaller is stronger: (class rank, key in class).
type Strength = (u8, u64);

const WEAKEST: Strength = (3, 0);

/// The strength of `t` as a scheduling context.
fn strength(s: &SchedState, t: TaskId) -> Strength {
    let task = &s.tasks[t.idx()];
    if task.is_stopper {
        return (0, 0);
    }
    match task.class {
        Class::Stop => (0, 0),
        Class::Deadline => (1, task.dl.deadline),
        Class::Rt => (2, task.prio as u64),
        Class::Fair | Class::Idle => match task.dl_server {
            Some(DlEntity::Server(c)) => (1, s.rqs[c.idx()].fair_server.deadline),
            _ => WEAKEST,
        },
    }
}

/// Where a waiting RT/DL context `t` could run, or None when it does not wait (see [`DOC`]).
fn waiting_on(s: &SchedState, t: TaskId) -> Option<CpuMask> {
    let task = &s.tasks[t.idx()];
    if !queued_rt_dl(task) || s.rqs[task.cpu.idx()].donor == t {
        return None;
    }
    // A blocked donor (Proxy Execution): v29's push and pull skip it; only proxy migration
    // moves it, towards its owner (chain-level balancing is a later stage, O2).
    if crate::sched::core::task_is_blocked(s, t) {
        return None;
    }
    Some(*s.cpus_mask(task))
}

/// What `waiting_on` asks of `t` alone: it is a queued RT or (not throttled) DL context
/// that does not execute. An idle task or a stopper never is (`may_ever_wait`). The
/// tasks for which this holds are the watch's [`Candidate`]s.
pub fn queued_rt_dl(t: &Task) -> bool {
    let rt_dl = match t.class {
        Class::Deadline => !t.dl.dl_throttled,
        Class::Rt => true,
        _ => false,
    };
    rt_dl && may_ever_wait(t) && t.on_rq == OnRq::Queued && !t.on_cpu
}

/// A task the watch must judge at an evaluation because it may wait now ([`queued_rt_dl`]),
/// with its CPU at the previous evaluation (None: the task is new since).
pub type Candidate = (TaskId, Option<CpuId>);

/// Fill `out` with the candidates of `s` in id order, their previous CPUs read from
/// `task_cpu` (by task index; a task past its end is new).
pub fn scan_candidates(s: &SchedState, task_cpu: &[CpuId], out: &mut Vec<Candidate>) {
    out.clear();
    for t in s.tasks.iter().filter(|t| queued_rt_dl(t)) {
        out.push((t.id, task_cpu.get(t.id.idx()).copied()));
    }
}

/// Whether `t` may ever wait: an idle task or a stopper never does (both are fixed when the
/// task is created).
fn may_ever_wait(t: &Task) -> bool {
    !t.is_idle_task && !t.is_stopper
}

/// The watch: per task, since when it has been waiting while a weaker context runs where it
/// could run.
///
/// Only a queued RT/DL task that does not execute may wait (`queued_rt_dl`), and few are.
/// A step judges in full those (its [`Candidate`]s, which the checker's pass over the tasks
/// finds, each with its CPU at the previous step: a class change and a move can coincide)
/// and the tasks that waited at the previous step (resetting their state once they no
/// longer do). Every other task did not wait then and does not now, and what the watch keeps
/// of it stays as it is. What the watch keeps is what judging every task at every step
/// would keep.
pub struct TopNWatch {
    bound_ns: Nanos,
    /// What the watch keeps of each task, by task index (a task past its end is new at the
    /// next evaluation).
    watched: Vec<Watched>,
    /// The tasks that waited at the previous evaluation (`push_at` not [`NOT_WAITING`]), in
    /// id order; with the candidates, the tasks an evaluation judges, in id order (the
    /// order of reports).
    waiting: Vec<TaskId>,
    /// The candidates of an evaluation after a quiet step, and the previous `waiting` (kept
    /// to allocate nothing).
    scanned: Vec<Candidate>,
    waiting_spare: Vec<TaskId>,
    /// What the watch keeps of each CPU, by CPU index (empty before the first evaluation).
    cpus: Vec<CpuWatch>,
    /// Steps seen.
    step_no: u64,
    /// The longest wait seen so far (for calibrating the bound).
    pub worst_ns: Nanos,
    /// The earliest `since` of a wait being timed, as the last evaluation left it.
    min_since: Option<Nanos>,
}

/// What the watch keeps of one task.
#[derive(Clone)]
struct Watched {
    /// Since when it has been waiting while a weaker context runs where it could run.
    since: Option<Nanos>,
    /// It waits behind a higher class and no push of its class ran since (see [`DOC`]).
    unpushed: bool,
    /// The step of the last push opportunity of its CPU while it could be pushed (a pick
    /// there that set a context of its class, its own enqueue or move); [`NOT_WAITING`]
    /// while it does not wait (every step is one then).
    push_at: u64,
}

/// What the watch keeps of one CPU ([`TopNWatch::note_pulls`]).
struct CpuWatch {
    /// The donor, its strength (the strength of the CPU's context) and the task on the CPU,
    /// as the last evaluation saw them.
    donor: TaskId,
    running: Strength,
    curr: TaskId,
    /// At the last evaluation: whether the donor changed, and whether a pick changed the
    /// donor or the task on the CPU.
    donor_changed: bool,
    picked: bool,
    /// Since which step its context has been weaker without a pull opportunity (see
    /// [`DOC`]); cleared at the next one.
    unpulled_since: Option<u64>,
}

/// `push_at` of a task that did not wait at the previous step: that step was a push
/// opportunity, whatever its number (kept symbolic so that a step the watch skips as quiet
/// needs no per-task update).
const NOT_WAITING: u64 = u64::MAX;

impl TopNWatch {
    pub fn new(s: &SchedState) -> TopNWatch {
        TopNWatch {
            bound_ns: 2 * s.tun.tick_ns() + 2 * s.costs.ipi_latency_ns,
            watched: Vec::new(),
            waiting: Vec::new(),
            scanned: Vec::new(),
            waiting_spare: Vec::new(),
            cpus: Vec::new(),
            step_no: 0,
            worst_ns: 0,
            min_since: None,
        }
    }

    /// Number the step about to be accounted `n`, from the machine's count of steps and
    /// folded polls (`sim::Machine::folded_polls`): a folded poll is a step the watch never
    /// sees, and numbering by both keeps the order it compares (a push opportunity against
    /// the step a CPU got weaker) what it is when every poll is a step.
    pub fn number_step(&mut self, n: u64) {
        debug_assert!(n > self.step_no, "steps numbered backwards");
        self.step_no = n - 1;
    }

    /// The settling bound in use.
    pub fn bound_ns(&self) -> Nanos {
        self.bound_ns
    }

    /// The first instant at which a wait being timed outlasts the bound: before it, a step
    /// that changes nothing the watch reads cannot make it report (None: nothing is timed).
    pub fn deadline_ns(&self) -> Option<Nanos> {
        self.min_since
            .map(|since| since.saturating_add(self.bound_ns).saturating_add(1))
    }

    /// Account a quiet step ([`crate::invariants::Checker`]): one that changed nothing the
    /// watch reads. It counts as a step, and a wait being timed grows; only once one reaches
    /// its bound is the state evaluated again (with the verdict [`Self::step`] gives), its
    /// candidates found by a pass over the tasks, their previous CPUs read from `task_cpu`
    /// (no quiet step moves a task).
    pub fn quiet_step(&mut self, s: &SchedState, now: Nanos, task_cpu: &[CpuId]) -> Option<String> {
        if self.deadline_ns().is_some_and(|d| now >= d) || self.watched.len() != s.tasks.len() {
            let mut scanned = std::mem::take(&mut self.scanned);
            scan_candidates(s, task_cpu, &mut scanned);
            let out = self.step_at(s, now, &scanned, Some(&[]));
            self.scanned = scanned;
            return out;
        }
        self.step_no += 1;
        if let Some(since) = self.min_since {
            self.worst_ns = self.worst_ns.max(now - since);
        }
        None
    }

    /// Account the state after one step, given its `candidates` in id order and the CPUs
    /// whose runqueue it may have changed (`dirty`, None: any; see `note_pulls`); the
    /// violation's detail once a wait outlasts the bound.
    pub fn step(
        &mut self,
        s: &SchedState,
        candidates: &[Candidate],
        dirty: Option<&[bool]>,
    ) -> Option<String> {
        self.step_at(s, s.now(), candidates, dirty)
    }

    /// [`Self::step`] at time `now`.
    fn step_at(
        &mut self,
        s: &SchedState,
        now: Nanos,
        candidates: &[Candidate],
        dirty: Option<&[bool]>,
    ) -> Option<String> {
        if self.watched.len() < s.tasks.len() {
            let new = Watched {
                since: None,
                unpushed: false,
                push_at: NOT_WAITING,
            };
            self.watched.resize(s.tasks.len(), new);
        }
        self.step_no += 1;
        self.note_pulls(s, dirty);
        let mut out = None;
        let mut min_since: Option<Nanos> = None;
        let before = std::mem::replace(&mut self.waiting, std::mem::take(&mut self.waiting_spare));
        let (mut cands, mut waited) = (candidates.iter().peekable(), before.iter().peekable());
        // In id order, each once: the candidates, and the tasks that waited at the previous
        // step. One of those that is no candidate now does not wait now: where it was at
        // the previous step does not matter then, and it counts as not moved.
        loop {
            let candidate_first = match (cands.peek(), waited.peek()) {
                (None, None) => break,
                (Some(&&(c, _)), Some(&&w)) => c <= w,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            let (id, prev_cpu) = if candidate_first {
                let &(id, prev) = cands.next().expect("peeked");
                if waited.peek() == Some(&&id) {
                    waited.next();
                }
                (id, prev)
            } else {
                let &id = waited.next().expect("peeked");
                (id, Some(s.tasks[id.idx()].cpu))
            };
            let t = &s.tasks[id.idx()];
            let w = &mut self.watched[id.idx()];
            let judged = wronged_on(s, t, prev_cpu, w, &self.cpus, self.step_no);
            if w.push_at != NOT_WAITING {
                self.waiting.push(id);
            }
            let Some(cpu) = judged else {
                w.since = None;
                continue;
            };
            let since = *w.since.get_or_insert(now);
            min_since = Some(min_since.map_or(since, |m| m.min(since)));
            let waited = now - since;
            self.worst_ns = self.worst_ns.max(waited);
            if waited > self.bound_ns && out.is_none() {
                let rq = &s.rqs[cpu.idx()];
                let d = &s.tasks[rq.donor.idx()];
                out = Some(format!(
                    "{}-{} ({:?} prio {}) waits on cpu{} for {waited} ns (bound {} ns) while cpu{cpu} \
                     runs the context of {}-{} ({:?} prio {})",
                    t.comm, t.pid, t.class, t.prio, t.cpu, self.bound_ns, d.comm, d.pid, d.class, d.prio
                ));
            }
        }
        self.min_since = min_since;
        self.waiting_spare = before;
        self.waiting_spare.clear();
        out
    }

    /// Per CPU, the strength of its context now, and pull opportunities: a CPU that switches
    /// away from an RT/DL/stop donor balances (balance_rt()/balance_dl() pull when its
    /// priority drops); one whose context gets weaker any other way (a priority change, or a
    /// fair or idle prev) does not, and stays unpulled until its donor changes. Fills
    /// `running`, `donor_changed` and whether a pick changed its donor or the task on it
    /// (`picked`).
    ///
    /// A CPU outside `dirty` (None: every CPU is in it) kept its runqueue, and with it its
    /// donor, its curr and what the donor's strength is made of, as the checker's premise
    /// says (`invariants::quiet`): nothing changed there, and only the flags of a change are
    /// cleared.
    fn note_pulls(&mut self, s: &SchedState, dirty: Option<&[bool]>) {
        if self.cpus.is_empty() {
            self.cpus = s
                .rqs
                .iter()
                .map(|rq| CpuWatch {
                    donor: rq.donor,
                    running: strength(s, rq.donor),
                    curr: rq.curr,
                    donor_changed: false,
                    picked: false,
                    unpulled_since: None,
                })
                .collect();
        }
        for (rq, cpu) in s.rqs.iter().zip(&mut self.cpus) {
            if dirty.is_some_and(|d| d.get(rq.cpu.idx()) != Some(&true)) {
                debug_assert!(
                    (cpu.donor, cpu.running, cpu.curr) == (rq.donor, strength(s, rq.donor), rq.curr),
                    "cpu{} changed outside the dirty runqueues",
                    rq.cpu
                );
                cpu.donor_changed = false;
                cpu.picked = false;
                continue;
            }
            let running = strength(s, rq.donor);
            let donor_changed = rq.donor != cpu.donor;
            let prev_rt_dl = || {
                matches!(
                    s.tasks[cpu.donor.idx()].class,
                    Class::Rt | Class::Deadline | Class::Stop
                )
            };
            if donor_changed && prev_rt_dl() {
                cpu.unpulled_since = None;
            } else if running > cpu.running {
                cpu.unpulled_since.get_or_insert(self.step_no);
            }
            cpu.picked = donor_changed || rq.curr != cpu.curr;
            cpu.donor_changed = donor_changed;
            (cpu.donor, cpu.running, cpu.curr) = (rq.donor, running, rq.curr);
        }
    }
}

/// The CPU whose context is weaker than waiting task `t` and that it may run on, if any
/// (the first in its mask), once `t` had its push opportunity: its own enqueue or move,
/// or a pick of its class on its CPU (set_next_task_rt()/_dl() queue a push; a pick that
/// keeps the donor and changes only the task on the CPU too, S8). Behind a higher class
/// it was only made pushable (put_prev_task_rt()/_dl()). A push reaches any weaker CPU
/// (cpupri), an unpulled one too, so an unpulled CPU is a target only after one. Updates
/// what the watch keeps of `t` (`w`) for step `step_no`; `prev_cpu` is where `t` was at the
/// previous step (None: it is new).
fn wronged_on(
    s: &SchedState,
    t: &Task,
    prev_cpu: Option<CpuId>,
    w: &mut Watched,
    cpus: &[CpuWatch],
    step_no: u64,
) -> Option<CpuId> {
    let waiting = waiting_on(s, t.id);
    let mine = strength(s, t.id);
    let moved = prev_cpu != Some(t.cpu);
    let c = t.cpu.idx();
    let own = cpus[c].running;
    if waiting.is_none() || moved || (cpus[c].donor_changed && own.0 == mine.0) {
        w.unpushed = false;
    }
    if waiting.is_none() {
        w.push_at = NOT_WAITING;
    } else if moved || (cpus[c].picked && own.0 == mine.0) {
        w.push_at = step_no;
    } else if w.push_at == NOT_WAITING {
        // It waits since this step: the previous one, quiet or not, was its last push
        // opportunity.
        w.push_at = step_no - 1;
    }
    if waiting.is_some() && own.0 < mine.0 {
        w.unpushed = true;
    }
    let push_at = w.push_at;
    let target = |c: usize| {
        if cpus[c].unpulled_since.is_some_and(|since| push_at <= since) {
            (0, 0)
        } else {
            cpus[c].running
        }
    };
    match waiting.filter(|_| !w.unpushed) {
        Some(mask) => mask.iter().find(|&c| target(c.idx()) > mine),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use sim::CpuMask;
    use uapi::Policy;

    use super::*;
    use crate::sched::Costs;
    use crate::task::rt_prio;
    use crate::tracepoints::NullSink;

    /// `nr_cpus` idle CPUs and one RT task per entry of `prios` (rt_priority), on CPU 0,
    /// allowed everywhere, not queued.
    fn state(nr_cpus: usize, prios: &[u32]) -> (SchedState, Vec<TaskId>) {
        let mut cfg = crate::system::Config::new(nr_cpus);
        cfg.costs = Costs::zero();
        let mut s = crate::system::new_sched_state(&cfg, Box::new(NullSink));
        let mut ids = Vec::new();
        for &p in prios {
            let id = TaskId(s.tasks.len() as u32);
            let mut t = crate::system::new_task_struct(&s.m, id, id.0, "rt", CpuId(0));
            t.cpus_mask = s.cpus_masks.intern(CpuMask::first_n(nr_cpus));
            t.nr_cpus_allowed = nr_cpus as u32;
            t.policy = Policy::Fifo;
            t.rt_priority = p;
            t.prio = rt_prio(p);
            t.normal_prio = t.prio;
            t.class = Class::Rt;
            s.tasks.push(t);
            ids.push(id);
        }
        (s, ids)
    }

    /// `t` runs on `cpu` (its donor and curr).
    fn run_on(s: &mut SchedState, cpu: usize, t: TaskId) {
        s.tasks[t.idx()].cpu = CpuId(cpu as u32);
        s.tasks[t.idx()].on_rq = OnRq::Queued;
        s.tasks[t.idx()].on_cpu = true;
        s.rqs[cpu].curr = t;
        s.rqs[cpu].donor = t;
    }

    /// The watch as the checker drives it: each step's candidates with where they were at
    /// the previous step.
    struct Stepper {
        w: TopNWatch,
        task_cpu: Vec<CpuId>,
        candidates: Vec<Candidate>,
    }

    impl Stepper {
        fn new(s: &SchedState) -> Stepper {
            Stepper {
                w: TopNWatch::new(s),
                task_cpu: Vec::new(),
                candidates: Vec::new(),
            }
        }

        fn bound_ns(&self) -> Nanos {
            self.w.bound_ns()
        }

        fn step_at(&mut self, s: &SchedState, now: Nanos) -> Option<String> {
            scan_candidates(s, &self.task_cpu, &mut self.candidates);
            let out = self.w.step_at(s, now, &self.candidates, None);
            self.task_cpu = s.tasks.iter().map(|t| t.cpu).collect();
            out
        }
    }

    fn queue_on(s: &mut SchedState, cpu: usize, t: TaskId) {
        s.tasks[t.idx()].cpu = CpuId(cpu as u32);
        s.tasks[t.idx()].on_rq = OnRq::Queued;
    }

    #[test]
    fn a_waiting_rt_task_next_to_an_idle_cpu_fails_only_after_the_bound() {
        let (mut s, t) = state(2, &[50, 40]);
        run_on(&mut s, 0, t[0]);
        let mut w = Stepper::new(&s);
        let bound = w.bound_ns();
        assert_eq!(bound, 2 * s.tun.tick_ns());
        assert_eq!(w.step_at(&s, 0), None);
        // t[1] (weaker than t[0]) waits on CPU 0 while CPU 1 is idle.
        queue_on(&mut s, 0, t[1]);
        assert_eq!(w.step_at(&s, 1_000), None);
        assert_eq!(
            w.step_at(&s, 1_000 + bound),
            None,
            "at the bound it may still settle"
        );
        let v = w
            .step_at(&s, 1_001 + bound)
            .expect("a wait past the bound is a violation");
        assert!(
            v.contains("waits on cpu0") && v.contains("cpu1 runs the context of swapper/1"),
            "{v}"
        );
    }

    #[test]
    fn a_wait_that_settles_resets_and_an_equal_or_stronger_cpu_is_no_target() {
        let (mut s, t) = state(2, &[50, 40, 40]);
        run_on(&mut s, 0, t[0]);
        let mut w = Stepper::new(&s);
        let bound = w.bound_ns();
        queue_on(&mut s, 0, t[1]);
        assert_eq!(w.step_at(&s, 0), None);
        // Pushed to CPU 1 before the bound: the wait ends.
        run_on(&mut s, 1, t[1]);
        assert_eq!(w.step_at(&s, bound / 2), None);
        // A third task of the same priority waits: CPU 1 runs an equal context, CPU 0 a
        // stronger one; nothing is owed, however long.
        queue_on(&mut s, 0, t[2]);
        assert_eq!(w.step_at(&s, bound), None);
        assert_eq!(w.step_at(&s, 10 * bound), None);
        assert_eq!(w.w.worst_ns, 0);
    }

    #[test]
    fn a_task_behind_a_higher_class_is_not_owed_until_a_pick_of_its_class() {
        let (mut s, t) = state(2, &[50, 40, 60]);
        run_on(&mut s, 0, t[0]);
        let mut w = Stepper::new(&s);
        let bound = w.bound_ns();
        // t[0] is boosted to DL while t[1] waits behind it: only made pushable.
        s.tasks[t[0].idx()].class = Class::Deadline;
        queue_on(&mut s, 0, t[1]);
        assert_eq!(w.step_at(&s, 0), None);
        assert_eq!(w.step_at(&s, 10 * bound), None);
        // Deboosted while current: still no push (switched_to_rt() returns early).
        s.tasks[t[0].idx()].class = Class::Rt;
        assert_eq!(w.step_at(&s, 11 * bound), None);
        // The next RT pick on CPU 0 queues a push; from then on the wait counts.
        s.tasks[t[0].idx()].on_cpu = false;
        run_on(&mut s, 0, t[2]);
        assert_eq!(w.step_at(&s, 12 * bound), None);
        assert!(w.step_at(&s, 13 * bound + 1).is_some());
    }

    #[test]
    fn a_cpu_that_got_weaker_without_an_rt_prev_is_no_target_until_it_pulls() {
        let (mut s, t) = state(2, &[50, 40, 30, 10]);
        run_on(&mut s, 0, t[0]);
        run_on(&mut s, 1, t[2]);
        queue_on(&mut s, 0, t[1]);
        let mut w = Stepper::new(&s);
        let bound = w.bound_ns();
        assert_eq!(w.step_at(&s, 0), None);
        // CPU 1's task drops to fair by a priority change: no pull.
        s.tasks[t[2].idx()].class = Class::Fair;
        s.tasks[t[2].idx()].prio = 120;
        assert_eq!(w.step_at(&s, 1), None);
        s.tasks[t[2].idx()].on_cpu = false;
        run_on(&mut s, 1, t[3]);
        assert_eq!(w.step_at(&s, 2), None);
        assert_eq!(w.step_at(&s, 10 * bound), None);
        // CPU 1 switches away from its RT task to idle: a pull opportunity; the weaker CPU
        // is a target again.
        s.tasks[t[3].idx()].on_cpu = false;
        s.tasks[t[3].idx()].on_rq = OnRq::No;
        let idle = s.rqs[1].idle;
        s.rqs[1].curr = idle;
        s.rqs[1].donor = idle;
        assert_eq!(w.step_at(&s, 11 * bound), None);
        assert!(w.step_at(&s, 12 * bound + 1).is_some());
    }

    #[test]
    fn a_pick_that_keeps_the_donor_is_a_push_opportunity_towards_an_unpulled_cpu() {
        // t[0] H (FIFO 50) is CPU 0's donor and t[1] L (FIFO 10) runs on its context; CPU 1
        // runs t[2] (FIFO 30) until it drops to fair by a priority change and then idles:
        // CPU 1 never pulls.
        let (mut s, t) = state(2, &[50, 10, 30]);
        run_on(&mut s, 0, t[1]);
        s.rqs[0].donor = t[0];
        queue_on(&mut s, 0, t[0]);
        run_on(&mut s, 1, t[2]);
        let mut w = Stepper::new(&s);
        let bound = w.bound_ns();
        assert_eq!(w.step_at(&s, 0), None);
        s.tasks[t[2].idx()].class = Class::Fair;
        s.tasks[t[2].idx()].prio = 120;
        assert_eq!(w.step_at(&s, 1), None);
        s.tasks[t[2].idx()].on_cpu = false;
        s.tasks[t[2].idx()].on_rq = OnRq::No;
        let idle = s.rqs[1].idle;
        s.rqs[1].curr = idle;
        s.rqs[1].donor = idle;
        assert_eq!(w.step_at(&s, 2), None);
        // The pick keeps donor H and makes it curr; L is put back and waits. The pick queues
        // a push (S8), which reaches the idle CPU 1: from now on the wait counts.
        s.tasks[t[1].idx()].on_cpu = false;
        s.tasks[t[0].idx()].on_cpu = true;
        s.rqs[0].curr = t[0];
        assert_eq!(w.step_at(&s, 3), None);
        assert_eq!(w.step_at(&s, 3 + bound), None);
        let v = w
            .step_at(&s, 4 + bound)
            .expect("no push for longer than the bound");
        assert!(
            v.contains("waits on cpu0") && v.contains("cpu1 runs the context of swapper/1"),
            "{v}"
        );
    }

    #[test]
    fn a_task_that_becomes_rt_while_moving_had_its_move_as_a_push_opportunity() {
        // t[0] (FIFO 50) runs on CPU 0, t[2] (FIFO 30) on CPU 1, and t[1] is a fair task
        // queued on CPU `first`, then `second`. CPU 1's task drops to fair by a priority
        // change (no pull); in the next step t[1] becomes FIFO 40 and is queued on CPU 0
        // behind t[0]. Only if that step moved it was it a push opportunity, after which the
        // unpulled CPU 1 is a target: the watch must know where the fair task was.
        for (first, second, owed) in [(1, 1, true), (0, 0, false), (0, 1, true), (1, 0, false)] {
            let (mut s, t) = state(2, &[50, 40, 30]);
            run_on(&mut s, 0, t[0]);
            run_on(&mut s, 1, t[2]);
            s.tasks[t[1].idx()].class = Class::Fair;
            s.tasks[t[1].idx()].prio = 120;
            queue_on(&mut s, first, t[1]);
            let mut w = Stepper::new(&s);
            let bound = w.bound_ns();
            assert_eq!(w.step_at(&s, 0), None);
            s.tasks[t[2].idx()].class = Class::Fair;
            s.tasks[t[2].idx()].prio = 120;
            queue_on(&mut s, second, t[1]);
            assert_eq!(w.step_at(&s, 1), None);
            s.tasks[t[1].idx()].class = Class::Rt;
            s.tasks[t[1].idx()].prio = rt_prio(40);
            queue_on(&mut s, 0, t[1]);
            assert_eq!(w.step_at(&s, 2), None);
            assert_eq!(w.step_at(&s, 2 + bound), None);
            let v = w.step_at(&s, 3 + bound);
            assert_eq!(v.is_some(), owed, "cpu{first}, cpu{second}, cpu0: {v:?}");
        }
    }
}
