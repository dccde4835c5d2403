//! Named invariants, checked after every step when a run asks for it (tests do).
//!
//! Each checker is read-only and states one rule with the Linux rule it encodes. A runqueue is
//! only checked while nobody holds its lock: inside a critical section the model, like Linux,
//! is allowed to be between two consistent states.

use crate::sched::core::Kernel;
use crate::task::OnRq;

/// Every violated invariant as (name, detail).
pub fn check_all(k: &Kernel) -> Vec<(&'static str, String)> {
    let s = k.s.borrow();
    let mut out = Vec::new();
    // One pass over the tasks for the per-rq counts below.
    let mut queued_on = vec![0u32; s.rqs.len()];
    for t in &s.tasks {
        // A task in a throttled CFS hierarchy stays queued in its group but is not counted by
        // its rq (throttle_cfs_rq() subtracts it), like a throttled DL task.
        if t.on_rq == OnRq::Queued
            && !(t.class == crate::sched::Class::Deadline && t.dl.dl_throttled)
            && !crate::sched::fair::task_throttled(&s, t.id)
        {
            queued_on[t.cpu as usize] += 1;
        }
    }
    let queued_dl = crate::sched::deadline::queued_dl_tasks_per_cpu(&s);
    for rq in &s.rqs {
        if k.m.lock_owner(rq.lock).is_some() {
            continue;
        }
        let c = rq.cpu;
        // T-9a/T-9c: nr_running counts exactly the tasks queued on this rq, and each class's
        // count agrees (a task is on at most one rq and one class queue). A throttled DL task
        // stays `on_rq` but is off the DL tree and not counted (D-5, `dec_dl_tasks`).
        let queued = queued_on[c as usize];
        if queued != rq.nr_running {
            out.push((
                "nr_running_matches_queued",
                format!("cpu{c}: nr_running={} but {queued} tasks queued", rq.nr_running),
            ));
        }
        let stop_queued = u32::from(s.tasks[rq.stop as usize].on_rq == OnRq::Queued);
        // The fair server counts in dl_nr_running but not in nr_running (D-20).
        let dl_tasks = rq.dl.dl_nr_running - u32::from(rq.fair_server.rb_key.is_some());
        let by_class = rq.cfs.h_nr_queued + rq.rt.rt_nr_running + dl_tasks + stop_queued;
        if by_class != rq.nr_running {
            out.push((
                "class_counts_match_nr_running",
                format!(
                    "cpu{c}: cfs {} + rt {} + dl tasks {dl_tasks} + stop {stop_queued} != nr_running {}",
                    rq.cfs.h_nr_queued, rq.rt.rt_nr_running, rq.nr_running
                ),
            ));
        }
        // F-48 (group scheduling): each cfs_rq's counts and load match what is queued on it.
        if let Some(detail) = crate::sched::fair::check_cfs_hierarchy(&s, c) {
            out.push(("cfs_hierarchy_consistent", detail));
        }
        // D-4, D-12: the deadline tree holds exactly the queued, unthrottled DL tasks in
        // deadline order; dl_nr_running, earliest_dl, cpudl and the overload state agree.
        if let Some(detail) = crate::sched::deadline::check_dl_rq(&s, c, &queued_dl) {
            out.push(("dl_rq_consistent", detail));
        }
        // A1/P4 (v29 3/9): the DL entity set as next is the donor's, exactly when the donor
        // is a DL task (both readings of the scheduling context agree).
        let donor_dl = Some(rq.donor).filter(|&d| s.tasks[d as usize].class == crate::sched::Class::Deadline);
        if rq.dl.curr != donor_dl {
            out.push((
                "dl_rq_curr_is_donor",
                format!(
                    "cpu{c}: dl_rq.curr {:?} but rq.donor {} is {:?}",
                    rq.dl.curr, rq.donor, donor_dl
                ),
            ));
        }
        // I1/T-6: the task executing on a CPU is allowed there (an affinity change waiting for
        // the stopper is the one legal window).
        let curr = &s.tasks[rq.curr as usize];
        if !curr.cpus_mask.test(c) && !curr.migration_pending {
            out.push((
                "curr_in_affinity",
                format!(
                    "cpu{c} runs {}-{} outside {:?}",
                    curr.comm, curr.pid, curr.cpus_mask
                ),
            ));
        }
        // T-4/T-5: the current task is marked on its CPU, and is this CPU's.
        if !curr.on_cpu || curr.cpu != c {
            out.push((
                "curr_on_cpu",
                format!(
                    "cpu{c} curr {}-{} on_cpu={} task_cpu={}",
                    curr.comm, curr.pid, curr.on_cpu, curr.cpu
                ),
            ));
        }
        // I3/C3: the donor differs from curr only while a proxy runs (the donor is then queued
        // here: blocked, or woken by the unlock and not yet rescheduled, as 6.17 leaves it) or
        // after a transient swap to idle.
        if rq.donor != rq.curr {
            let d = &s.tasks[rq.donor as usize];
            // Inside the pick's class balance pass Linux leaves a blocking prev as curr next to
            // the blocked donor, and the pass may drop the lock (balance_dl() pulls when the
            // donor is a throttled DL task, which is off the DL tree): a legal window.
            let prev_blocking_in_balance = rq.in_prev_balance && curr.on_rq != OnRq::Queued && curr.on_cpu;
            let proxying = s.feat.proxy_exec
                && d.on_rq == OnRq::Queued
                && d.cpu == c
                && (curr.is_idle_task
                    || (curr.on_rq == OnRq::Queued && curr.cpu == c)
                    || prev_blocking_in_balance);
            if !proxying && !d.is_idle_task {
                out.push((
                    "donor_is_curr_unless_proxying",
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
                    ),
                ));
            }
        }
        // I4: a blocked donor that is rq->donor stays queued (a task that blocked the ordinary
        // way is legitimately dequeued while it is still prev inside __schedule).
        let d = &s.tasks[rq.donor as usize];
        if crate::sched::core::task_is_blocked(&s, rq.donor) && d.on_rq != OnRq::Queued {
            out.push((
                "donor_queued",
                format!("cpu{c} donor {}-{} is not queued", d.comm, d.pid),
            ));
        }
        // I13: next_class follows every donor swap.
        if rq.next_class != d.class {
            out.push((
                "next_class_is_donor_class",
                format!(
                    "cpu{c} next_class {:?} but donor {}-{} is {:?}",
                    rq.next_class, d.comm, d.pid, d.class
                ),
            ));
        }
    }
    // I5: blocked_on names a mutex the task is queued on as a waiter (it is set only by the
    // task itself inside the slow path, after queueing, and cleared before it leaves).
    for t in &s.tasks {
        if let Some(m) = t.blocked_on {
            let mx = &s.mutexes[m as usize];
            if k.m.lock_owner(mx.wait_lock).is_none() && !mx.wait_list.contains(&t.id) {
                out.push((
                    "blocked_on_is_a_waiter",
                    format!(
                        "{}-{} blocked_on {} but not on its wait list",
                        t.comm, t.pid, mx.name
                    ),
                ));
            }
        }
    }
    // I9: blocked_donor links (owner -> the chain task that proxied through it) form simple
    // paths: following them never comes back to a task already seen. A loop whose tasks are
    // all blocked on mutexes is a real lock cycle (ABBA): the deadlock detector reports it.
    for t in s.tasks.iter().filter(|t| t.blocked_donor.is_some()) {
        // Common case first: the path ends within as many links as there are tasks.
        let mut steps = 0;
        let mut at = t.blocked_donor;
        while let Some(d) = at {
            steps += 1;
            if steps > s.tasks.len() {
                break;
            }
            at = s.tasks[d as usize].blocked_donor;
        }
        if at.is_none() {
            continue;
        }
        let mut seen = vec![t.id];
        let mut at = t.blocked_donor;
        while let Some(d) = at {
            if seen.contains(&d) {
                let first = seen.iter().position(|&x| x == d).expect("seen");
                if seen[first..]
                    .iter()
                    .all(|&x| s.tasks[x as usize].blocked_on.is_some())
                {
                    break;
                }
                out.push((
                    "blocked_donor_path_is_simple",
                    format!(
                        "{}-{}: blocked_donor links loop back to pid {}",
                        t.comm, t.pid, s.tasks[d as usize].pid
                    ),
                ));
                break;
            }
            seen.push(d);
            at = s.tasks[d as usize].blocked_donor;
        }
    }
    // D-2: the admitted bandwidth is the fair servers' plus every DL task's (checked while no
    // rq lock is held: sched_setattr admits under the rq lock before it changes the class).
    if s.rqs.iter().all(|rq| k.m.lock_owner(rq.lock).is_none()) {
        if let Some(detail) = crate::sched::deadline::check_dl_bw(&s) {
            out.push(("dl_bw_admitted", detail));
        }
    }
    check_rt_mutexes(k, &s, &mut out);
    out.extend(crate::workqueue::check_pools(&s));
    if let Some(detail) = check_nr_iowait(&s) {
        out.push(("nr_iowait_balanced", detail));
    }
    out
}

/// `nr_iowait` of each CPU counts exactly the tasks in iowait that blocked there and have
/// not been woken (asleep, off every runqueue, `task_cpu` that CPU): `__block_task()` raises
/// it on the CPU the task blocks on, and the wakeup lowers it on that same CPU before the
/// task moves. A wakeup that lowers it elsewhere leaks +1 on one CPU and −1 on another (the
/// post-v29 sleeping-owner bug, d346306db401).
fn check_nr_iowait(s: &crate::sched::SchedState) -> Option<String> {
    use crate::task::state::{TASK_RUNNING, TASK_WAKING};
    let mut want = vec![0i64; s.rqs.len()];
    for t in &s.tasks {
        if t.in_iowait && t.on_rq == OnRq::No && t.state != TASK_RUNNING && t.state != TASK_WAKING {
            want[t.cpu as usize] += 1;
        }
    }
    let bad: Vec<String> = s
        .rqs
        .iter()
        .zip(&want)
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
    (!bad.is_empty()).then(|| bad.join("; "))
}

/// M-10: the rt_mutex trees agree, checked for each lock whose `wait_lock` is free (every
/// change to a lock's tree and to the `pi_waiters` entry for it is made under it).
fn check_rt_mutexes(k: &Kernel, s: &crate::sched::SchedState, out: &mut Vec<(&'static str, String)>) {
    for (i, l) in s.rt_mutexes.iter().enumerate() {
        if k.m.lock_owner(l.wait_lock).is_some() {
            continue;
        }
        // Waiters force the slow paths: HAS_WAITERS is set while the tree is non-empty.
        if !l.waiters.is_empty() && !l.has_waiters {
            out.push((
                "rt_mutex_has_waiters_bit",
                format!("rt_mutex {} has waiters but no HAS_WAITERS bit", l.name),
            ));
        }
        // Each queued waiter is its task's pi_blocked_on waiter, with the same key.
        for w in &l.waiters {
            let t = &s.tasks[w.task as usize];
            if t.pi_blocked_on != Some(i as u32) || t.rt_waiter != Some(*w) {
                out.push((
                    "rt_mutex_waiter_linked",
                    format!(
                        "rt_mutex {}: waiter {w:?} but task has pi_blocked_on {:?}, rt_waiter {:?}",
                        l.name, t.pi_blocked_on, t.rt_waiter
                    ),
                ));
            }
        }
        // The owner's pi_waiters holds exactly this lock's top waiter (M-10).
        if let Some(o) = l.owner {
            let mine: Vec<u32> = s.tasks[o as usize]
                .pi_waiters
                .iter()
                .map(|p| p.task)
                .filter(|&w| s.tasks[w as usize].pi_blocked_on == Some(i as u32))
                .collect();
            let want: Vec<u32> = l.top_waiter().map(|w| w.task).into_iter().collect();
            if mine != want {
                out.push((
                    "rt_mutex_top_waiter_in_owner_pi_waiters",
                    format!(
                        "rt_mutex {}: owner {o} has pi_waiters {mine:?} for it, top waiter {want:?}",
                        l.name
                    ),
                ));
            }
        }
    }
}
