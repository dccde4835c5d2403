//! `--model next`: the development after v29 in johnstultz-work/linux-dev (return migration
//! only when needed, sleeping-owner parking), against `--model v29` on the same workloads.

mod common;

use common::*;
use kernel::tracepoints::EventKind;

const MS: u64 = 1_000_000;

fn run_model(name: &str, model: &str, features: &[&str]) -> Scenario {
    run_with(name, |a| {
        a.protocol = Some("proxy".into());
        a.model = Some(model.into());
        a.features = features.iter().map(|f| f.to_string()).collect();
    })
}

fn parks(s: &Scenario) -> Vec<(u64, u32, u32)> {
    s.events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ProxyPark { donor, owner } => Some((e.time_ns, donor.pid, owner.pid)),
            _ => None,
        })
        .collect()
}

/// Sleeping-owner parking: the donor is parked on the sleeping owner at 1 ms (when it blocks)
/// and is activated on the owner's CPU when the owner wakes at 5 ms; v29 parks nobody (it
/// deactivates the link instead). Both hand M over at 5 ms.
#[test]
fn next_parks_the_donor_on_the_sleeping_owner() {
    let next = run_model("proxy_iowait_repro.json", "next", &[]);
    let (o, d) = (next.pid("O-0"), next.pid("D-1"));
    assert_eq!(parks(&next), vec![(MS, d, o)]);
    assert_eq!(next.result.metrics.task(d).unwrap().lock_wait_ns.max, 4 * MS);

    let v29 = run_model("proxy_iowait_repro.json", "v29", &[]);
    assert!(parks(&v29).is_empty());
    assert_eq!(v29.result.metrics.task(d).unwrap().lock_wait_ns.max, 4 * MS);
}

/// The return path for a donor woken on its home CPU (R6). v29: H leaves the runqueue, the
/// running owner L becomes its own donor and is preempted by H's full wakeup at 3.5 ms; L is
/// pushed to CPU 1 and both finish at 4.5 ms (H) and 5.5 ms (L). next: H stays queued, no
/// reschedule, L runs on H's context to 5.5 ms on CPU 0 and H only then (done 6.5 ms).
#[test]
fn a_donor_woken_at_home_is_placed_again_in_v29_and_left_queued_in_next() {
    let v29 = run_model("proxy_return_at_home.json", "v29", &[]);
    let (l, h) = (v29.pid("L-0"), v29.pid("H-1"));
    assert!(
        v29.switch_ins(h).contains(&(3_500_000, 0)),
        "{:?}",
        v29.switch_ins(h)
    );
    assert!(
        v29.switch_ins(l).contains(&(3_500_000, 1)),
        "{:?}",
        v29.switch_ins(l)
    );
    assert_eq!(v29.work_done_ns(h), 4_500_000);
    assert_eq!(v29.work_done_ns(l), 5_500_000);

    let next = run_model("proxy_return_at_home.json", "next", &[]);
    assert!(
        next.switch_ins(h).contains(&(5_500_000, 0)),
        "{:?}",
        next.switch_ins(h)
    );
    assert!(switch_ins_after_start(&next, l).iter().all(|&(_, c)| c == 0));
    assert_eq!(next.work_done_ns(h), 6_500_000);
    assert_eq!(next.work_done_ns(l), 5_500_000);
    // The switch alone makes the difference.
    let v29_like = run_model("proxy_return_at_home.json", "next", &["return_when_needed=off"]);
    assert_eq!(v29_like.work_done_ns(h), 4_500_000);
}
