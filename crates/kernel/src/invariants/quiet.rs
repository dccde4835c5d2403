//! The premises of the per-step checker's skipping ([`super::Checker`]), checked: with
//! `Config::full_checks`, after every step the checker would have checked only in part or
//! not at all, the state it would have left unread must be what the previous step left.
//! A step that breaks that fails the run as a model assertion naming the step, so the test
//! that compares runs with and without full checks (crates/cli/tests/full_checks.rs) shows
//! any write the skipping would miss, even on runs whose checks all pass.
//!
//! The state is cut in four: per runqueue (its fields and those of the tasks whose
//! `task_cpu` it is), what only the rt_mutex locks protect, what only the kernel mutexes'
//! `wait_lock`s protect (their wait lists), and the rest of the system-wide scheduler
//! state. Each part is rendered as text and compared whole
//! with the previous step's (no hash, so nothing can collide); each task is rendered once per
//! step and its text copied into every part that reads it.

use std::fmt::Write as _;

use sim::CpuId;

use crate::sched::fair::{cfs_rq, CfsRqId};
use crate::sched::rt::RtRq;
use crate::sched::SchedState;
use crate::task::Task;

/// The state the per-step checks and the RT/DL watch read (a superset: whole class
/// runqueues and entities), rendered, without what changes outside a spinlock by design
/// (a running task's own `state` and `in_iowait` count only as `nr_iowait_balanced` reads
/// them; an rt_mutex's owner and the worker pools, which the checks that read them judge
/// after every step, `invariants::LOCKLESS_INPUTS`).
#[derive(Clone, Default)]
pub struct CheckedState {
    /// Per CPU: its runqueue, its group runqueues and entities, its cpudl and overload
    /// entries, its curr, donor and stopper, the tasks on its DL trees and the tasks queued
    /// on it.
    pub per_rq: Vec<String>,
    /// What the rt_mutex locks protect: each task's `pi_blocked_on`, rt_mutex waiter and
    /// `pi_waiters`, and the rt_mutex wait trees.
    pub rt_mutex_waits: String,
    /// What the kernel mutexes' `wait_lock`s protect: their wait lists (not `blocked_on`,
    /// a task field, which the 7.1 and later proxy paths clear under a runqueue lock).
    pub mutex_waits: String,
    /// The rest of the system-wide state: cpudl, the overload mask and the root domain's
    /// bandwidth, with `tasks`.
    pub system: String,
    /// Each task's fields ([`task_fields`]), those queued nowhere included: system-wide
    /// state too, compared with `system`.
    tasks: Vec<String>,
}

/// Fill `d` with the rendering of `s` (reusing its buffers).
pub fn render_checked_state(s: &SchedState, d: &mut CheckedState) {
    d.tasks.resize_with(s.tasks.len(), String::new);
    for (t, text) in s.tasks.iter().zip(&mut d.tasks) {
        text.clear();
        task_fields(s, t, text);
    }
    let tasks = &d.tasks;
    d.per_rq.resize_with(s.rqs.len(), String::new);
    for rq in &s.rqs {
        let h = &mut d.per_rq[rq.cpu.idx()];
        h.clear();
        let _ = write!(
            h,
            "{:?}{:?}{:?}{}{:?}",
            rq.curr, rq.donor, rq.next_class, rq.nr_running, rq.cfs
        );
        rt_rq_fields(s, &rq.rt, h);
        let _ = write!(
            h,
            "{:?}{:?}{:?}{}{}",
            rq.dl, rq.fair_server, rq.dl_server, rq.nr_iowait, rq.in_prev_balance
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
        // A runqueue's checks read its curr, donor and stopper, the tasks on its DL trees,
        // and the tasks queued on it (counted by task_cpu). A task queued nowhere is read by
        // none of them: it may change CPU under another runqueue's lock
        // (proxy_migrate_task() sets a dequeued donor's CPU under the source's) without
        // either checked again.
        for t in [rq.curr, rq.donor, rq.stop] {
            h.push_str(&tasks[t.idx()]);
        }
        for &(_, _, e) in rq.dl.root.iter() {
            if let crate::sched::deadline::DlEntity::Task(t) = e {
                h.push_str(&tasks[t.idx()]);
            }
        }
        for &(_, _, t) in rq.dl.pushable.iter() {
            h.push_str(&tasks[t.idx()]);
        }
    }
    for (t, text) in s.tasks.iter().zip(tasks) {
        if t.on_rq == crate::task::OnRq::Queued {
            d.per_rq[t.cpu.idx()].push_str(text);
        }
    }
    let h = &mut d.rt_mutex_waits;
    h.clear();
    for t in &s.tasks {
        let _ = write!(
            h,
            "{}{:?}{:?}{:?}",
            t.id, t.pi_blocked_on, t.rt_waiter, t.pi_waiters
        );
    }
    for l in &s.rt_mutexes {
        let _ = write!(h, "{}{:?}", l.has_waiters, l.waiters);
    }
    let h = &mut d.mutex_waits;
    h.clear();
    for m in &s.mutexes {
        let _ = write!(h, "{:?}", m.wait_list);
    }
    let h = &mut d.system;
    h.clear();
    let _ = write!(h, "{:?}{:?}{:?}", s.cpudl, s.dlo_mask, s.dl_bw);
}

/// An RT runqueue: its counts, bitmap and pushable list, and each non-empty priority
/// list's tasks in order (the list heads alone would not show a reordering in the middle,
/// and the empty lists, most of the hundred, show nothing).
fn rt_rq_fields(s: &SchedState, rt: &RtRq, h: &mut String) {
    // Destructured, so that a field added to `RtRq` must be added here.
    let RtRq {
        rt_nr_running,
        queues,
        bitmap,
        highest_prio,
        overloaded,
        pushable_tasks,
        pushable_seq,
    } = rt;
    let _ = write!(
        h,
        "{rt_nr_running} {bitmap:#x} {highest_prio:?} {overloaded} {pushable_tasks:?} {pushable_seq}"
    );
    for (prio, q) in queues.iter().enumerate() {
        if !q.is_empty() {
            let _ = write!(h, " [{prio} {}:", q.len());
            // Bounded: a list whose links loop would otherwise never end here.
            for t in q.iter(&s.tasks).take(q.len() + 1) {
                let _ = write!(h, " {}", t.0);
            }
            h.push(']');
        }
    }
}

/// The fields of `t` a per-step check or the RT/DL watch reads.
fn task_fields(s: &SchedState, t: &Task, h: &mut String) {
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
/// locks may have changed, i.e. whether it checked anything; `waits`: whether the kernel
/// mutexes' wait state may have changed, i.e. whether it ran every system-wide check): the
/// parts it did not judge are unchanged from `before`. Returns what changed, if anything.
pub fn unjudged_change(
    before: &CheckedState,
    after: &CheckedState,
    dirty: &[bool],
    all: bool,
    waits: bool,
) -> Option<String> {
    if before.per_rq.len() != after.per_rq.len() {
        return Some("the number of CPUs".to_string());
    }
    if let Some(c) = (0..after.per_rq.len()).find(|&c| !dirty[c] && before.per_rq[c] != after.per_rq[c]) {
        return Some(format!("cpu{}'s runqueue or tasks", CpuId(c as u32)));
    }
    if before.rt_mutex_waits != after.rt_mutex_waits {
        return Some("rt_mutex wait state".to_string());
    }
    if !waits && before.mutex_waits != after.mutex_waits {
        return Some("mutex wait state".to_string());
    }
    if !all && (before.system != after.system || before.tasks != after.tasks) {
        return Some("system-wide scheduler state".to_string());
    }
    None
}
