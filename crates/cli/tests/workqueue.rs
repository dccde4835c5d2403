//! Workqueue scenarios (spec S-6/S-7, proxy-exec.md B4): an owner that waits, holding a
//! mutex, for a work item queued on the same pool as a worker blocked on that mutex. With the
//! sleeping hook the pool starts a second worker and everything finishes; without it the pool
//! keeps counting the blocked worker as running and the run stalls, naming the pool and item.

mod common;

use common::*;
use kernel::tracepoints::EventKind;

const US: u64 = 1_000;

/// (start, end) of each execution of the work item called `name`, with the worker's pid.
fn executions(s: &Scenario, name: &str) -> Vec<(u64, Option<u64>, u32)> {
    let mut out: Vec<(u64, Option<u64>, u32)> = Vec::new();
    for e in &s.events {
        match e.kind {
            EventKind::WorkqueueExecuteStart { function, .. } if function.as_str() == name => {
                out.push((e.time_ns, None, e.owner))
            }
            EventKind::WorkqueueExecuteEnd { function, .. } if function.as_str() == name => {
                if let Some(x) = out.iter_mut().rev().find(|x| x.2 == e.owner && x.1.is_none()) {
                    x.1 = Some(e.time_ns);
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn owner_flushing_a_same_pool_item_completes_because_the_blocked_worker_left_nr_running() {
    for protocol in ["none", "pi", "proxy"] {
        let s = run_with("workqueue_owner_flushes_same_pool_item.json", |a| {
            a.protocol = Some(protocol.to_string())
        });
        assert_eq!(s.result.outcome.end_reason.as_str(), "exited", "{protocol}");
        let g = executions(&s, "G");
        let w = executions(&s, "W");
        assert_eq!((g[0].0, g[0].1), (0, Some(200 * US)), "{protocol}: G at once");
        assert_eq!((w[0].0, w[0].1), (0, Some(300 * US)), "{protocol}");
        assert_ne!(g[0].2, w[0].2, "{protocol}: G ran on a second kworker");
        assert_eq!(s.exit_ns(s.pid("owner-0")), 300 * US, "{protocol}");
    }
}

#[test]
fn without_the_sleeping_hook_the_pool_stalls_and_the_report_names_it() {
    for protocol in ["none", "pi", "proxy"] {
        let s = run_with("workqueue_stall_without_sleeping_hook.json", |a| {
            a.protocol = Some(protocol.to_string())
        });
        let o = &s.result.outcome;
        assert_eq!(o.end_reason.as_str(), "stall", "{protocol}: {}", o.report);
        assert!(
            o.report
                .contains("workqueue pool cpu0: nr_running=1 but no worker runs; pending: G"),
            "{protocol}: {}",
            o.report
        );
        assert!(executions(&s, "G").is_empty(), "{protocol}: G never ran");
        let (code, msg) = cli::run::outcome_exit(o, "replay");
        assert_eq!(code, 3);
        assert!(msg.unwrap().contains("pending: G"));
    }
}
