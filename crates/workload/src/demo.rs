//! The built-in demo workload: two priority inversions on one CPU, the one where Proxy
//! Execution matters most first, then the textbook one.
//!
//! **1. Fair-class inversion (0 to ~0.8 s), the Android shape.** A background thread `bg`
//! (nice 19, weight 15) takes mutex `L` at once and needs 2 ms of work inside it; the UI thread
//! `ui` (nice -10, weight 9548) wants `L` 20 ms later; four `hog` threads (nice 0, 200 ms of
//! work each) keep the CPU busy. rt_mutex PI boosts only for RT and DL waiters
//! (`__waiter_prio()` gives every fair waiter DEFAULT_PRIO), so under `pi` as under `none` the
//! owner crawls at weight 15 against 4 x 1024 and `ui` waits about half a second. With Proxy
//! Execution the blocked `ui` stays queued and `bg` runs on `ui`'s weight: about 1 ms.
//!
//! **2. RT inversion (from 1 s, ten 100 ms periods).** Three SCHED_FIFO threads:
//! - `low` (prio 10) takes mutex `S` at the start of each period and runs 20 ms inside it;
//! - `high` (prio 30) wants `S` 2 ms into each period and runs 1 ms inside it;
//! - `medium` (prio 20) runs 50 ms from 5 ms into each period without touching `S`.
//!
//! Without inheritance `medium` preempts the lock owner `low`, so `high` waits for `medium`'s
//! whole burst (unbounded priority inversion, ~68 ms); with rt_mutex PI or Proxy Execution
//! `low` runs on `high`'s behalf and `high` gets `S` after ~18 ms. The RT threads start (and,
//! as rt-app does, switch to SCHED_FIFO) when the fair part is over and the CPU is idle:
//! `medium` at 990 ms, `high` at 995 ms, `low` at 1 s; their in-period offsets are `sleep`s
//! after each timer expiry. `duration` 3 s is a backstop; the run ends at about 2 s.

/// The demo workload (rt-app JSON; runs unchanged under rt-app on a real kernel).
pub const DEMO: &str = r#"{
    /* proxysched demo: a fair-class then an RT priority inversion on one CPU
     * (see crates/workload/src/demo.rs) */
    "global": {
        "duration": 3,
        "default_policy": "SCHED_OTHER"
    },
    "proxysched": {
        "cpus": 1
    },
    "tasks": {
        "bg": { "priority": 19, "loop": 1, "lock": "L", "run": 2000, "unlock": "L" },
        "ui": { "priority": -10, "loop": 1, "sleep": 20000, "lock": "L", "run": 1000, "unlock": "L" },
        "hog": { "instance": 4, "priority": 0, "loop": 1, "run": 200000 },
        "low": {
            "policy": "SCHED_FIFO", "priority": 10, "delay": 1000000, "loop": 10,
            "lock": "S", "run": 20000, "unlock": "S",
            "timer": { "ref": "unique", "period": 100000 }
        },
        "high": {
            "policy": "SCHED_FIFO", "priority": 30, "delay": 995000, "loop": 10,
            "sleep": 7000, "lock": "S", "run": 1000, "unlock": "S",
            "timer": { "ref": "unique", "period": 100000 }
        },
        "medium": {
            "policy": "SCHED_FIFO", "priority": 20, "delay": 990000, "loop": 10,
            "sleep": 15000, "run": 50000,
            "timer": { "ref": "unique", "period": 100000 }
        }
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use uapi::Policy;

    #[test]
    fn demo_loads_without_warnings() {
        let w = crate::load("demo", DEMO).unwrap();
        assert_eq!(w.warnings, vec![]);
        assert_eq!(w.settings.cpus, Some(1));
        assert_eq!(w.duration_s, Some(3.0));
        let names: Vec<_> = w.threads.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["bg-0", "ui-1", "hog-2", "hog-3", "hog-4", "hog-5", "low-6", "high-7", "medium-8"]
        );
        let nice: Vec<_> = w.threads[..6]
            .iter()
            .map(|t| (t.attr.policy, t.attr.nice))
            .collect();
        assert_eq!(nice[0], (Policy::Normal, 19));
        assert_eq!(nice[1], (Policy::Normal, -10));
        assert!(nice[2..].iter().all(|&a| a == (Policy::Normal, 0)));
        assert!(w.threads[6..].iter().all(|t| t.attr.policy == Policy::Fifo));
        let prios: Vec<_> = w.threads[6..].iter().map(|t| t.attr.rt_priority).collect();
        assert_eq!(prios, [10, 30, 20]);
        // The RT part starts after the fair part, each thread on an idle CPU.
        let delays: Vec<_> = w.threads[6..].iter().map(|t| t.delay_us).collect();
        assert_eq!(delays, [1_000_000, 995_000, 990_000]);
        let res: Vec<_> = w.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(res, ["L", "S"]);
    }
}
