//! The built-in demo workload: classic priority inversion on one CPU.
//!
//! Three SCHED_FIFO threads share CPU 0 and a 100 ms period (per-thread `unique` timers):
//! - `low` (prio 10) takes mutex `S` at the start of each period and runs 20 ms inside it;
//! - `high` (prio 30) arrives 2 ms into each period, preempts `low` and blocks on `S`;
//! - `medium` (prio 20) arrives 5 ms into each period and runs 50 ms without touching `S`.
//!
//! Without inheritance `medium` preempts the lock owner `low`, so `high` waits for `medium`'s
//! whole 50 ms burst (unbounded priority inversion); with rt_mutex PI or Proxy Execution,
//! `low` runs on `high`'s behalf and `high` gets `S` after about 18 ms. Ten periods, so the
//! run lasts about one second (`duration` 2 s is a backstop).

/// The demo workload (rt-app JSON; runs unchanged under rt-app on a real kernel).
pub const DEMO: &str = r#"{
    /* proxysched demo: priority inversion on one CPU (see crates/workload/src/demo.rs) */
    "global": {
        "duration": 2,
        "default_policy": "SCHED_FIFO"
    },
    "proxysched": {
        "cpus": 1
    },
    "tasks": {
        "low": {
            "priority": 10,
            "loop": 10,
            "lock": "S",
            "run": 20000,
            "unlock": "S",
            "timer": { "ref": "unique", "period": 100000 }
        },
        "high": {
            "priority": 30,
            "delay": 2000,
            "loop": 10,
            "lock": "S",
            "run": 1000,
            "unlock": "S",
            "timer": { "ref": "unique", "period": 100000 }
        },
        "medium": {
            "priority": 20,
            "delay": 5000,
            "loop": 10,
            "run": 50000,
            "timer": { "ref": "unique", "period": 100000 }
        }
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use sim::user::Policy;

    #[test]
    fn demo_loads_without_warnings() {
        let w = crate::load("demo", DEMO).unwrap();
        assert_eq!(w.warnings, vec![]);
        assert_eq!(w.settings.cpus, Some(1));
        assert_eq!(w.duration_s, Some(2.0));
        let names: Vec<_> = w.threads.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["low-0", "high-1", "medium-2"]);
        assert!(w.threads.iter().all(|t| t.attr.policy == Policy::Fifo));
        let prios: Vec<_> = w.threads.iter().map(|t| t.attr.rt_priority).collect();
        assert_eq!(prios, [10, 30, 20]);
        assert_eq!(w.resources.len(), 1);
        assert_eq!(w.resources[0].name, "S");
    }
}
