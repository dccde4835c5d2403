//! `proxy_handoff_to_booster`: under Proxy Execution (v29 and later), a mutex released by an
//! owner that a chain walk put on its CPU goes to the waiter through which that walk reached
//! the owner, while that waiter still waits on it: the scheduler picked that waiter's chain,
//! so it is the waiter that matters most (v29 9/9). The checker keeps its own record of each CPU's last walk
//! (its own walk from `rq->donor` at the end of the pick, [`record_walk`]), not the
//! `blocked_donor` link the mechanism keeps, so a model that hands the lock to the FIFO head
//! instead (`--feature blocked_donor=off`, or a `blocked_donor` cleared too early or set to
//! the wrong link) fails it. See [`DOC`] for the rule and the case it leaves out.

use sim::CpuId;

use crate::locking::mutex::MutexId;
use crate::sched::features::ModelVersion;
use crate::sched::SchedState;
use crate::task::TaskId;

/// The rule and the case it excludes, for `docs/invariants.md`.
pub const DOC: &str = r#"
`proxy_handoff_to_booster` (safety, checked in the unlock slow path): when a chain walk
(`find_proxy_task()`) puts an owner O on its CPU for a donor, the last hop of that walk — the
waiter W through which the chain reached O, blocked on a mutex M that O holds — is recorded
for the CPU. While O runs without a new pick there, O's release of M must hand M to W as long
as W still waits on M; the first such release uses the record up. This is the series' rule:
`find_proxy_task()` writes `owner->blocked_donor = p` at each hop, `__schedule()` clears it
for the task it picks, and `__mutex_unlock_slowpath()` hands the lock to
`current->blocked_donor` only when that task is blocked on this very lock, clearing it then
(v29 9/9; johnstultz-work/linux-dev: mutex.c at b65ff9a1a64e, core.c at 32d34d761ad6). The
record is the checker's own walk from
`rq->donor` at the end of the pick, not the model's `blocked_donor` field.

Excluded, because the series does not do it: a chain that re-forms after the walk, with no
pick in between. The owner keeps running on the donor's context after an unlock has used the
record up (or after the chain changed around it); nothing reschedules it (the unlock path has
no resched; `proxy_needs_return()` reschedules only when the woken task is `rq->donor`), so
`blocked_donor` stays empty or stale until the next `__schedule()`. If the donor's chain
reaches O again — through W blocking on another mutex O took meanwhile, or through a new
mutex O now holds that the donor itself waits on — the next unlock finds no recorded hop for
that mutex and hands it to the FIFO head, which is what the series does (in the LKML review
of "sched: Add blocked_donor link to task for smarter mutex handoffs", May 2026, a
`blocked_donor` cleared before the unlock reads it is called harmless: the wait list's head
gets the lock). The coverage mark `handoff_chain_reformed` counts the case.

Found by the 10^5-seed swarm sweep with the v29 defaults (22 seeds, e.g. 211 and 5103), when
the rule was stated over the donor's current chain instead of the last walk's.
"#;

/// The last hop of a chain walk from `donor`: `link`, blocked on `mutex`, reached `owner`
/// through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    pub donor: TaskId,
    pub owner: TaskId,
    pub link: TaskId,
    pub mutex: MutexId,
}

/// At the end of a pick on `cpu` whose donor is `donor` and that runs `runs`: record the last
/// hop of the chain from `donor` to `runs`, by a walk of the checker's own (under the rq lock
/// every link and owner of a finished walk is queued here and not running, so the chain is
/// the one the pick's walk saw). A pick that runs its donor, or idle, records nothing.
///
/// Linux: kernel/sched/core.c __schedule() (`next->blocked_donor = NULL`) and
/// find_proxy_task() (`owner->blocked_donor = p`).
pub fn record_walk(s: &mut SchedState, cpu: CpuId, donor: TaskId, runs: TaskId) {
    let hop = if donor == runs {
        None
    } else {
        last_hop(s, donor, runs)
    };
    s.rqs[cpu.idx()].handoff_walk = hop;
}

/// The hop through which the blocked-on chain from `donor` reaches `owner`, if it does.
fn last_hop(s: &SchedState, donor: TaskId, owner: TaskId) -> Option<Hop> {
    let mut link = donor;
    for _ in 0..s.tasks.len() {
        let t = &s.tasks[link.idx()];
        if t.proxy_waking {
            return None;
        }
        let on = t.blocked_on?;
        let holder = s.mutexes[on.idx()].owner?;
        if holder == owner {
            return Some(Hop {
                donor,
                owner,
                link,
                mutex: on,
            });
        }
        link = holder;
    }
    None
}

/// Whether the run holds `m`'s unlocks to the v29 rules.
fn rule_on(s: &SchedState, m: MutexId) -> bool {
    s.model >= ModelVersion::V29 && s.feat.proxy_exec && s.mutexes[m.idx()].proxy
}

/// The hop the rule applies to at `owner`'s release of `m`: the record of `owner`'s CPU
/// names `owner` and `m`.
fn recorded_hop(s: &SchedState, m: MutexId, owner: TaskId) -> Option<Hop> {
    let rq = &s.rqs[(s.tasks[owner.idx()].cpu).idx()];
    if rq.curr != owner {
        return None;
    }
    rq.handoff_walk.filter(|h| h.owner == owner && h.mutex == m)
}

/// Whether `w` waits on `m` (blocked on it and not marked waking).
fn waits_on(s: &SchedState, w: TaskId, m: MutexId) -> bool {
    let t = &s.tasks[w.idx()];
    t.blocked_on == Some(m) && !t.proxy_waking
}

/// Called once the unlock of `m` by `owner` has chosen `next` (the task it hands `m` to or
/// wakes; that task is already marked waking). Returns the violation's detail when the
/// recorded waiter still waits on `m` but the lock goes elsewhere. Uses the record up when
/// the lock goes to the recorded waiter (or when the run fails). A recorded waiter that no
/// longer waits on `m` (woken meanwhile) leaves the record as it is, as the series leaves
/// `blocked_donor` when `next_lock != lock`. Counts the excluded case (coverage mark
/// `handoff_chain_reformed`) when the lock goes elsewhere by the rule.
///
/// Linux: kernel/locking/mutex.c __mutex_unlock_slowpath() (johnstultz-work/linux-dev
/// b65ff9a1a64e: `next_lock == lock` before `current->blocked_donor = NULL`).
pub fn check(s: &mut SchedState, m: MutexId, owner: TaskId, next: Option<TaskId>) -> Option<String> {
    if !rule_on(s, m) {
        return None;
    }
    let cpu = s.tasks[owner.idx()].cpu;
    let Some(hop) = recorded_hop(s, m, owner).filter(|h| next == Some(h.link) || waits_on(s, h.link, m))
    else {
        // No recorded hop for m: the lock goes by the wait list, whatever the donor's chain
        // looks like now.
        let donor = s.rqs[cpu.idx()].donor;
        let reformed = donor != owner
            && last_hop(s, donor, owner)
                .is_some_and(|h| h.mutex == m && next != Some(h.link) && waits_on(s, h.link, m));
        if reformed {
            s.coverage.hit(crate::coverage::Mark::HandoffChainReformed);
        }
        return None;
    };
    s.rqs[cpu.idx()].handoff_walk = None;
    if next == Some(hop.link) {
        return None;
    }
    let name = |t: TaskId| format!("{}-{}", s.tasks[t.idx()].comm, s.tasks[t.idx()].pid);
    Some(format!(
        "cpu{}: {} releases {} while its CPU's last chain walk (donor {}) reached it through \
         waiter {}, which still waits on it, but the lock goes to {}",
        cpu,
        name(owner),
        s.mutexes[m.idx()].name,
        name(hop.donor),
        name(hop.link),
        next.map_or("nobody".to_string(), name),
    ))
}
