//! Proxy Execution with SCHED_DEADLINE donors (spec proxy-exec §3.5 A2, §6 P4, v29 2/9–3/9):
//! the owner runs on the donor's budget, is stopped when the donor is throttled and resumed
//! by its replenishment. Invariants (the DL ones among them) are checked after every step.

mod common;

use common::*;

const MS: u64 = 1_000_000;
const US: u64 = 1_000;

fn proxy(tweak: impl FnOnce(&mut cli::RunArgs)) -> Scenario {
    run_with("dl_donor_fair_owner.json", |a| {
        a.protocol = Some("proxy".into());
        tweak(a)
    })
}

/// The owner (fair, starved by a FIFO hog) runs only on the deadline donor's budget: 5 ms
/// per 20 ms period, from the donor's wakeup (2 ms, the CBS deadline 22 ms) to the tick that
/// sees the budget spent, then again from each replenishment (22 ms, 42 ms) until it unlocks
/// at 42.5 ms. Charging the owner's own context, or not throttling the donor, would let it
/// finish at 12.5 ms; not replenishing would leave it stuck behind the hog.
#[test]
fn dl_donor_budget_is_what_the_owner_runs_on() {
    let s = proxy(|_| {});
    let (owner, dl, hog) = (s.pid("owner-0"), s.pid("dl-2"), s.pid("hog-1"));
    assert_eq!(
        proxy_slices(&s, owner, dl),
        vec![
            (2 * MS, 7 * MS),
            (22 * MS, 27 * MS),
            (42 * MS, 42 * MS + 500 * US)
        ]
    );
    let m = s.result.metrics.task(dl).unwrap();
    assert_eq!(m.dl_throttles, 2, "the donor is throttled at 7 ms and 27 ms");
    assert_eq!(m.donated_ns, 10 * MS + 500 * US);
    // Its one job (lock, 1 ms, unlock) is still unfinished at the deadlines of 22 and 42 ms.
    assert_eq!(m.deadline_misses, 2);
    // The hog takes the CPU back at each throttle.
    let hog_ins: Vec<u64> = s.switch_ins(hog).into_iter().map(|(t, _)| t).collect();
    assert!(
        hog_ins.contains(&(7 * MS)) && hog_ins.contains(&(27 * MS)),
        "{hog_ins:?}"
    );
    // dl gets M at the unlock and runs its 1 ms on the 3.5 ms left of its budget.
    assert_eq!(s.work_done_ns(dl), 43 * MS + 500 * US);
}

/// Without Proxy Execution (plain kernel mutex) the owner stays behind the FIFO hog and the
/// deadline task waits for the hog's 100 ms.
#[test]
fn dl_donor_without_proxy_waits_for_the_hog() {
    let s = run_with("dl_donor_fair_owner.json", |a| a.protocol = Some("none".into()));
    let dl = s.pid("dl-2");
    // The owner ran 0.5 ms before the hog woke; the hog runs 0.5..100.5 ms, the owner's
    // other 11.5 ms end in its unlock at 112 ms, and dl's 1 ms ends at 113 ms.
    assert!(s.work_done_ns(dl) > 100 * MS, "{}", s.work_done_ns(dl));
    assert_eq!(s.work_done_ns(dl), 113 * MS);
    assert_eq!(s.result.metrics.task(dl).unwrap().donated_ns, 0);
}

/// Regression B-v20-2 (dl_server boot hang): RT players hog both CPUs from boot. The fair
/// servers, started by the boot-time fair enqueues, reach their zero-laxity point at 950 ms;
/// CPU 0's server picks the waiter, a blocked fair donor, and runs the owner on it (proxy
/// slices from 950 ms: at boot the waiter ran its 0.1 ms sleep before the offense took CPU 0,
/// so it is already blocked on M when the server first picks it), so M is released and both
/// fair tasks are done by 970 ms (the owner at 969 ms), inside the server's 50 ms budget. With the server off neither gets the CPU before the RT players end
/// at 1.5 s (the hang, bounded here only by the players' finite run).
#[test]
fn b_v20_2_fair_server_runs_a_donor_from_boot() {
    let on = run_with("dl_server_boot_hang.json", |a| a.protocol = Some("proxy".into()));
    let (owner, waiter) = (on.pid("owner-0"), on.pid("waiter-1"));
    let slices = proxy_slices(&on, owner, waiter);
    assert_eq!(slices.first(), Some(&(950 * MS, 952 * MS)), "{slices:?}");
    assert!(
        slices.iter().all(|&(b, e)| b >= 950 * MS && e <= 1000 * MS),
        "{slices:?}"
    );
    assert!(on.result.metrics.task(waiter).unwrap().donated_ns > 0);
    assert_eq!(on.work_done_ns(waiter), 970 * MS);
    assert_eq!(on.work_done_ns(owner), 969 * MS);
    // Fair time in the first second is the server's budget at most.
    assert!(on.runtime_ns(owner) + on.runtime_ns(waiter) <= 50 * MS);

    let off = run_with("dl_server_boot_hang.json", |a| {
        a.protocol = Some("proxy".into());
        a.features.push("dl_server=off".into());
    });
    let (owner, waiter) = (off.pid("owner-0"), off.pid("waiter-1"));
    assert!(off.work_done_ns(owner) > 1_500 * MS);
    assert!(off.work_done_ns(waiter) > 1_500 * MS);
    assert!(proxy_slices(&off, owner, waiter)
        .iter()
        .all(|&(b, _)| b >= 1_500 * MS));
}

/// `dl_rq_curr` (v29 3/9): the deadline class charges the entity it set as next. Off, it
/// derives the entity from `rq.donor` as 6.17 does; every donor change settles the outgoing
/// entity first, so both give the same budgets, throttles and schedules, here on the proxied
/// deadline donor and on a 4-CPU swarm of DL, RT and fair lock users (the
/// `dl_rq_curr_is_donor` invariant, checked after every step, holds in both runs).
#[test]
fn dl_rq_curr_and_the_6_17_derivation_charge_the_same_entity() {
    for name in ["dl_donor_fair_owner.json", "dl_swarm_4cpus.json"] {
        let on = run_proxy(name, &[]);
        let off = run_proxy(name, &["dl_rq_curr=off"]);
        assert_eq!(on.events, off.events, "{name}");
        for (a, b) in on.result.metrics.tasks.iter().zip(&off.result.metrics.tasks) {
            assert_eq!(
                (a.runtime_ns, a.donated_ns, a.dl_throttles, a.deadline_misses),
                (b.runtime_ns, b.donated_ns, b.dl_throttles, b.deadline_misses),
                "{name}: {}",
                a.name
            );
        }
    }
}

/// Found by a swarm (7.1 stage, seed 12, 760.6 ms): a proxying owner blocks while its DL
/// donor is throttled. The donor is off the DL tree, so `balance_dl()` in the pick's balance
/// pass pulls and drops the rq lock, and other CPUs see the blocking prev still as curr next
/// to the blocked donor, as in Linux. The I3 checker accepts exactly that window (it failed
/// the run before); the state outside the pass is still checked. The interleaving was found
/// with periodic idle ticks, so the run keeps them (`nohz_idle=off`).
#[test]
fn throttled_dl_donor_balance_window_is_legal() {
    let s = run_with("dl_swarm_4cpus.json", |a| {
        a.protocol = Some("proxy".into());
        a.model = Some("7.1".into());
        a.seed = Some(12);
        a.duration = Some(0.8);
        a.features.push("nohz_idle=off".into());
    });
    assert_eq!(s.result.outcome.end_reason.as_str(), "duration");
}

/// I11 for the deadline class: CPU 0 runs the fair owner O on the context of the DL donor D
/// (deadline 21 ms, proxy from 1 ms until D's budget is spent at 9 ms). W, a DL task with a
/// later deadline whose previous CPU is 0, wakes at 5 ms: placement judges CPU 0 by its donor,
/// so W is sent to idle CPU 1 and runs at once. Judged by the executing (fair) owner, W would
/// stay on CPU 0 and wait behind D's context.
#[test]
fn i11_dl_wakeup_placement_sees_the_donor_deadline() {
    let s = run_with("proxy_dl_wakeup_sees_donor_deadline.json", |a| {
        a.protocol = Some("proxy".into())
    });
    let (o, d, w) = (s.pid("O-0"), s.pid("D-1"), s.pid("W-2"));
    assert_eq!(proxy_slices(&s, o, d), vec![(MS, 9 * MS)]);
    assert_eq!(s.switch_ins(w).last(), Some(&(5 * MS, 1)));
    assert_eq!(s.work_done_ns(w), 5 * MS + 500 * US);
}
