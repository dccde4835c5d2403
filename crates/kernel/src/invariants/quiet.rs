//! The premises of the per-step checker's skipping ([`super::Checker`]), checked: with
//! `Config::full_checks`, after every step the checker would have checked only in part or
//! not at all, the state it would have left unread must be what the previous step left.
//! A step that breaks that fails the run as a model assertion naming the step, so the test
//! that compares runs with and without full checks (crates/cli/tests/full_checks.rs) shows
//! any write the skipping would miss, even on runs whose checks all pass.
//!
//! The state is cut in three: per runqueue (its fields and those of the tasks whose
//! `task_cpu` it is), what only the other locks protect (mutex and rt_mutex waits), and the
//! rest of the system-wide scheduler state. Each part is one digest.

use std::fmt::Write as _;
use std::hash::Hasher;

use sim::CpuId;

use crate::sched::fair::{cfs_rq, CfsRqId};
use crate::sched::SchedState;
use crate::task::Task;

/// The digests of the state the per-step checks and the RT/DL watch read (a superset:
/// whole class runqueues and entities), without what changes outside a spinlock by design
/// (a running task's own `state` and `in_iowait` count only as `nr_iowait_balanced` reads
/// them; an rt_mutex's owner and the worker pools, which the checks that read them judge
/// after every step, `invariants::LOCKLESS_INPUTS`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Digests {
    /// Per CPU: its runqueue, its group runqueues and entities, its cpudl and overload
    /// entries, its curr, donor and stopper, the tasks on its DL trees and the tasks queued
    /// on it.
    pub per_rq: Vec<u64>,
    /// What the mutex and rt_mutex locks protect, but not `blocked_on` (which the 7.1 and
    /// later proxy paths clear under a runqueue lock): each task's `pi_blocked_on`,
    /// rt_mutex waiter and `pi_waiters`, the mutex wait lists and the rt_mutex wait trees.
    pub other_locks: u64,
    /// The rest of the system-wide state: cpudl, the overload mask, the root domain's
    /// bandwidth, and every task's fields (those queued nowhere included).
    pub system: u64,
}

/// Fill `d` with the digests of `s` (reusing its buffers).
pub fn checked_state_digests(s: &SchedState, d: &mut Digests) {
    let mut per_rq: Vec<Digest> = s.rqs.iter().map(|_| Digest::new()).collect();
    for rq in &s.rqs {
        let h = &mut per_rq[rq.cpu.idx()];
        let _ = write!(
            h,
            "{:?}{:?}{:?}{}{:?}{:?}{:?}{:?}{:?}{}{}",
            rq.curr,
            rq.donor,
            rq.next_class,
            rq.nr_running,
            rq.cfs,
            rq.rt,
            rq.dl,
            rq.fair_server,
            rq.dl_server,
            rq.nr_iowait,
            rq.in_prev_balance
        );
        let c = rq.cpu;
        for (tg, g) in s.groups.iter().enumerate().skip(1) {
            let _ = write!(
                h,
                "{:?}{:?}",
                cfs_rq(s, CfsRqId { cpu: c, tg: tg as _ }),
                g.se.get(c.idx())
            );
        }
        let _ = write!(
            h,
            "{:?}{}{}",
            s.cpudl.elements[c.idx()],
            s.cpudl.free_cpus.test(c),
            s.dlo_mask.test(c)
        );
    }
    // A runqueue's checks read its curr, donor and stopper, the tasks on its DL trees, and
    // the tasks queued on it (counted by task_cpu). A task queued nowhere is read by none
    // of them: it may change CPU under another runqueue's lock (proxy_migrate_task() sets
    // a dequeued donor's CPU under the source's) without either checked again.
    for rq in &s.rqs {
        let h = &mut per_rq[rq.cpu.idx()];
        for t in [rq.curr, rq.donor, rq.stop] {
            task_fields(s, &s.tasks[t.idx()], h);
        }
        for &(_, _, e) in rq.dl.root.iter() {
            if let crate::sched::deadline::DlEntity::Task(t) = e {
                task_fields(s, &s.tasks[t.idx()], h);
            }
        }
        for &(_, _, t) in rq.dl.pushable.iter() {
            task_fields(s, &s.tasks[t.idx()], h);
        }
    }
    let mut all_tasks = Digest::new();
    for t in &s.tasks {
        if t.on_rq == crate::task::OnRq::Queued {
            task_fields(s, t, &mut per_rq[t.cpu.idx()]);
        }
        task_fields(s, t, &mut all_tasks);
    }
    d.per_rq.clear();
    d.per_rq.extend(per_rq.into_iter().map(|h| h.0.finish()));
    let mut h = Digest::new();
    for t in &s.tasks {
        let _ = write!(
            h,
            "{}{:?}{:?}{:?}",
            t.id, t.pi_blocked_on, t.rt_waiter, t.pi_waiters
        );
    }
    for m in &s.mutexes {
        let _ = write!(h, "{:?}", m.wait_list);
    }
    for l in &s.rt_mutexes {
        let _ = write!(h, "{}{:?}", l.has_waiters, l.waiters);
    }
    d.other_locks = h.0.finish();
    let mut h = Digest::new();
    let _ = write!(h, "{}{:?}{:?}{:?}", s.tasks.len(), s.cpudl, s.dlo_mask, s.dl_bw);
    h.0.write_u64(all_tasks.0.finish());
    d.system = h.0.finish();
}

/// The fields of `t` a per-step check or the RT/DL watch reads.
fn task_fields(s: &SchedState, t: &Task, h: &mut Digest) {
    let _ = write!(
        h,
        "{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}",
        t.id,
        t.on_rq,
        t.on_cpu,
        t.cpu,
        t.class,
        s.cpus_mask(t),
        t.migration_pending,
        t.prio,
        t.dl,
        t.is_blocked,
        t.proxy_waking,
        t.blocked_on,
        t.blocked_donor,
        t.pi_blocked_on,
        t.rt_waiter,
        // nr_iowait_balanced reads a task's state only while it sleeps off the runqueue
        // (a running task sets its own state and in_iowait without a lock, by design).
        t.in_iowait
            && t.on_rq == crate::task::OnRq::No
            && t.state != crate::task::state::TASK_RUNNING
            && t.state != crate::task::state::TASK_WAKING,
        t.is_stopper,
        t.dl_server,
        t.pi_waiters,
        t.sched_task_group,
        crate::sched::fair::task_throttled(s, t.id)
    );
    // The fair entity: its queued state, weight and delayed dequeue (cfs_hierarchy_consistent).
    let _ = write!(h, "{:?}", t.se);
}

/// The premise of a step the checker judged only in part, or not at all (`dirty`: the
/// runqueues it judged; `all`: whether the system-wide state outside the mutex and rt_mutex
/// locks may have changed, i.e. whether it checked anything): the parts it did not judge are
/// unchanged from `before`. Returns what changed, if anything.
pub fn unjudged_change(before: &Digests, after: &Digests, dirty: &[bool], all: bool) -> Option<String> {
    if before.per_rq.len() != after.per_rq.len() {
        return Some("the number of CPUs".to_string());
    }
    if let Some(c) = (0..after.per_rq.len()).find(|&c| !dirty[c] && before.per_rq[c] != after.per_rq[c]) {
        return Some(format!("cpu{}'s runqueue or tasks", CpuId(c as u32)));
    }
    if before.other_locks != after.other_locks {
        return Some("mutex or rt_mutex wait state".to_string());
    }
    if !all && before.system != after.system {
        return Some("system-wide scheduler state".to_string());
    }
    None
}

/// Formats straight into a hasher (no string is built).
struct Digest(std::collections::hash_map::DefaultHasher);

impl Digest {
    fn new() -> Digest {
        Digest(std::collections::hash_map::DefaultHasher::new())
    }
}

impl std::fmt::Write for Digest {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}
