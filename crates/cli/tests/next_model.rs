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
