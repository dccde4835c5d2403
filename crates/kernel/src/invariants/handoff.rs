//! `proxy_handoff_to_booster`: under Proxy Execution (v29 and later), a mutex released by an
//! owner that runs on another task's scheduling context goes to the waiter through which that
//! context's blocked-on chain reached the owner: "the highest waiter, as selected by the
//! scheduling function" (v29 9/9). Checked in the unlock slow path against a chain walk of
//! its own from `rq->donor`, not against the `blocked_donor` link the mechanism keeps, so a
//! model that hands the lock to the FIFO head instead (`--feature blocked_donor=off`, or a
//! `blocked_donor` cleared too early or set to the wrong link) fails it.

use crate::locking::mutex::MutexId;
use crate::sched::features::ModelVersion;
use crate::sched::SchedState;
use crate::task::TaskId;

/// The waiter of mutex `m` that the donor of `owner`'s CPU is boosting `owner` through, when
/// the rule applies: `owner` is that CPU's running task on another task's context, the chain
/// `donor → blocked_on → owner → …` reaches `owner` through a link blocked on `m` (not
/// marked waking), and the run holds the model to the v29 rules.
pub fn expected_handoff(s: &SchedState, m: MutexId, owner: TaskId) -> Option<TaskId> {
    if s.model < ModelVersion::V29 || !s.feat.proxy_exec || !s.mutexes[m.idx()].proxy {
        return None;
    }
    let rq = &s.rqs[(s.tasks[owner.idx()].cpu).idx()];
    if rq.curr != owner || rq.donor == owner {
        return None;
    }
    let mut link = rq.donor;
    for _ in 0..s.tasks.len() {
        let t = &s.tasks[link.idx()];
        if t.proxy_waking {
            return None;
        }
        let on = t.blocked_on?;
        let holder = s.mutexes[on.idx()].owner?;
        if holder == owner {
            return (on == m).then_some(link);
        }
        link = holder;
    }
    None
}

/// The violation's detail when `next` (the task the unlock hands `m` to or wakes) is not the
/// expected waiter.
pub fn check(s: &SchedState, m: MutexId, owner: TaskId, next: Option<TaskId>) -> Option<String> {
    let want = expected_handoff(s, m, owner)?;
    if next == Some(want) {
        return None;
    }
    let name = |t: TaskId| format!("{}-{}", s.tasks[t.idx()].comm, s.tasks[t.idx()].pid);
    let rq = &s.rqs[(s.tasks[owner.idx()].cpu).idx()];
    Some(format!(
        "cpu{}: {} releases {} while running on the context of {}, whose chain reaches it \
         through waiter {}, but the lock goes to {}",
        rq.cpu,
        name(owner),
        s.mutexes[m.idx()].name,
        name(rq.donor),
        name(want),
        next.map_or("nobody".to_string(), name),
    ))
}
