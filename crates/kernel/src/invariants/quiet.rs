//! The premise of skipping quiet steps ([`super::Checker`]), checked: with
//! `Config::full_checks`, after every step that the checker would have skipped as quiet, the
//! state the per-step checks read must be what the previous step left. A step that breaks
//! that fails the run as a model assertion naming the step, so the test that compares runs
//! with and without full checks (crates/cli/tests/full_checks.rs) shows any write the skipping
//! would miss, even on runs whose checks all pass.

use std::fmt::Write as _;
use std::hash::Hasher;

use crate::sched::SchedState;

/// A digest of every field a per-step check or the RT/DL watch reads (a superset: whole
/// class runqueues and entities), and nothing that changes outside a spinlock by design (a
/// running task's own `state` and `in_iowait` count only as `nr_iowait_balanced` reads them).
pub fn checked_state_digest(s: &SchedState) -> u64 {
    let mut h = Digest(std::collections::hash_map::DefaultHasher::new());
    for rq in &s.rqs {
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
    }
    for t in &s.tasks {
        let _ = write!(
            h,
            "{:?}{}{:?}{:?}{:?}{}{}{:?}{}{}{:?}{:?}{:?}{:?}{}{}{}{:?}{:?}{:?}{}",
            t.on_rq,
            t.on_cpu,
            t.cpu,
            t.class,
            t.cpus_mask,
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
            0,
            t.is_stopper,
            t.dl_server,
            t.pi_waiters,
            t.sched_task_group,
            crate::sched::fair::task_throttled(s, t.id)
        );
    }
    let _ = write!(h, "{:?}{:?}{:?}", s.cpudl, s.dlo_mask, s.dl_bw);
    for m in &s.mutexes {
        let _ = write!(h, "{:?}", m.wait_list);
    }
    for l in &s.rt_mutexes {
        let _ = write!(h, "{}{:?}", l.has_waiters, l.waiters);
    }
    // Not an rt_mutex's owner nor the worker pools: they change without a lock, so the checks
    // that read them run after quiet steps too (`invariants::LOCKLESS_INPUTS`).
    h.0.finish()
}

/// Formats straight into a hasher (no string is built).
struct Digest(std::collections::hash_map::DefaultHasher);

impl std::fmt::Write for Digest {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}
