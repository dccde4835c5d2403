//! Workload shrinking: every candidate loads and is smaller, the edits keep workloads sane
//! (locks with their unlocks, CPU masks remapped, work item references removed with the item),
//! and a greedy shrink driven by a predicate ends at a small workload that still satisfies it.

use proptest::prelude::*;
use workload::generate::swarm;
use workload::shrink::{candidates, size, Size};
use workload::{load, Event, Workload};

fn ok(text: &str) -> Workload {
    load("c.json", text).unwrap_or_else(|e| panic!("candidate does not load: {e}\n{text}"))
}

const HAND: &str = r#"{
  // comments are not kept
  "global": { "duration": 2 },
  "proxysched": { "cpus": 4, "llc_size": 4,
    "workqueues": { "items": { "W": [ {"lock": "M"}, {"run": 100}, {"unlock": "M"}, {"queue_work": {"item": "G", "cpu": 3}} ],
                               "G": [ {"run": 40}, {"sleep": 20} ] } } },
  "tasks": {
    "big": { "instance": 4, "cpus": [3], "loop": 8, "lock": "M", "run": 300, "unlock": "M",
             "queue_work": {"item": "W", "cpu": 2}, "flush_work": "W", "sleep": 1000 },
    "small": { "policy": "SCHED_FIFO", "priority": 10, "delay": 50, "run": 10, "sleep": 90 },
    "ph": { "loop": 3, "phases": {
        "a": { "loop": 4, "cpus": [1, 2], "run": 200, "lock": "N", "run1": 5, "unlock": "N" },
        "b": { "priority": 5, "sleep": 400, "queue_work": "G" } } }
  }
}"#;

#[test]
fn size_counts_the_file() {
    let s = size(HAND);
    assert_eq!(
        s,
        Size {
            tasks: 3,
            threads: 6,
            phases: 4,
            // big 6, small 2, a 4, b 2; work steps 4 + 2
            events: 20,
            cpus: 4,
            work_items: 2,
            // M and N
            resources: 2,
            // big 4 x 300, small 10, a 205, work 100 + 40
            run_us: 1200 + 10 + 205 + 140,
            // big 4 x 1000, small 50 delay + 90, b 400, work 20
            sleep_us: 4000 + 140 + 400 + 20,
            // big 8, small 1 (one pass of its phase), ph 3 + 4 + 1
            loops: 8 + 1 + 3 + 4 + 1,
            duration_ms: 2000,
        }
    );
    assert_eq!(size("not json"), Size::default());
    assert!(
        s.to_string()
            .starts_with("3 tasks (6 threads, 4 phases), 20 events, 4 CPUs, 2 work items, 2 resources"),
        "{s}"
    );
}

#[test]
fn candidates_load_are_smaller_distinct_and_deterministic() {
    let before = size(HAND);
    let cands = candidates(HAND);
    assert!(cands.len() > 20, "{} candidates", cands.len());
    assert_eq!(cands, candidates(HAND), "a pure function");
    for (i, c) in cands.iter().enumerate() {
        let w = ok(c);
        assert!(
            Size::of(&w).smaller_than(&before),
            "candidate {i} is not smaller:\n{c}"
        );
        assert!(!cands[..i].contains(c), "candidate {i} repeats an earlier one");
    }
    // Most reducing first: the first drops the largest task (4 instances x 6 events).
    let first = ok(&cands[0]);
    assert_eq!(
        first.tasks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["small", "ph"]
    );
}

#[test]
fn fewer_cpus_remaps_masks_and_work_cpus() {
    let halved = candidates(HAND)
        .into_iter()
        .map(|c| ok(&c))
        .find(|w| w.settings.cpus == Some(2) && w.tasks.len() == 3)
        .expect("a candidate with 2 CPUs");
    assert_eq!(halved.settings.llc_size, Some(2));
    assert_eq!(halved.tasks[0].cpus, Some(vec![1]), "3 mod 2");
    assert_eq!(halved.tasks[2].phases[0].cpus, Some(vec![0, 1]), "[1, 2] mod 2");
    let qw: Vec<Option<u32>> = halved.tasks[0].phases[0]
        .events
        .iter()
        .filter_map(|e| match e.event {
            Event::QueueWork { cpu, .. } => Some(cpu),
            _ => None,
        })
        .collect();
    assert_eq!(qw, [Some(0)], "2 mod 2");
    let three = candidates(HAND)
        .into_iter()
        .map(|c| ok(&c))
        .find(|w| w.settings.cpus == Some(3))
        .expect("a candidate with one CPU less");
    assert_eq!(three.tasks[0].cpus, Some(vec![0]), "3 mod 3");
}

#[test]
fn locks_go_with_their_unlocks_and_items_with_their_references() {
    for c in candidates(HAND) {
        let w = ok(&c);
        for t in &w.tasks {
            for p in &t.phases {
                let mut held = Vec::new();
                for e in &p.events {
                    match e.event {
                        Event::Lock { mutex } => held.push(mutex),
                        Event::Unlock { mutex } => {
                            assert_eq!(held.pop(), Some(mutex), "unlock without its lock in\n{c}")
                        }
                        _ => {}
                    }
                }
                assert!(held.is_empty(), "lock without its unlock in\n{c}");
            }
        }
    }
    // Dropping W removes big's queue_work and flush_work of it; G's queueing by W goes too.
    let without_w = candidates(HAND)
        .into_iter()
        .map(|c| ok(&c))
        .find(|w| w.settings.workqueues.items.len() == 1 && w.settings.workqueues.items[0].name == "G")
        .expect("a candidate without W");
    let big = &without_w.tasks[0].phases[0].events;
    assert!(big
        .iter()
        .all(|e| !matches!(e.event, Event::QueueWork { .. } | Event::FlushWork { .. })));
    assert_eq!(big.len(), 4, "lock, run, unlock, sleep");
}

/// A task that another signals can be dropped in one edit: the signals to it go with it (a
/// signal to a task that is gone does not load, so without that the task could go only after
/// every signal to it had been dropped on its own).
#[test]
fn a_signalled_task_goes_with_the_signals_to_it() {
    let text = r#"{
      "global": { "duration": 0.1 },
      "tasks": {
        "waker": { "run": 100, "signal": { "thread": "sleeper" }, "sleep": 200,
                   "signal1": { "thread": "other" } },
        "sleeper": { "suspend": "sleeper", "run": 50 },
        "other": { "suspend": "other", "run": 10 }
      }
    }"#;
    ok(text);
    let names = |w: &Workload| w.tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    let without = candidates(text)
        .into_iter()
        .map(|c| ok(&c))
        .find(|w| names(w) == ["waker", "other"])
        .expect("a candidate without the sleeper");
    let waker = &without.tasks[0].phases[0].events;
    // run, sleep and the signal to `other` stay.
    assert_eq!(waker.len(), 3, "{waker:?}");
    assert_eq!(
        waker
            .iter()
            .filter(|e| matches!(e.event, Event::SignalThread { .. }))
            .count(),
        1
    );
}

#[test]
fn unused_declared_resources_are_dropped_and_used_ones_kept() {
    let text = r#"{ "resources": { "Used": { "protocol": "pi" }, "Idle": { "type": "mutex" }, "C": { "type": "wait" } },
                    "tasks": { "t": { "lock": "Used", "run": 10, "unlock": "Used" } } }"#;
    let names = |w: &Workload| w.resources.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ok(text)), ["Used", "Idle", "C"]);
    let dropped: Vec<Vec<String>> = candidates(text)
        .iter()
        .map(|c| names(&ok(c)))
        .filter(|n| n.len() == 2)
        .collect();
    assert_eq!(dropped, [vec!["Used", "C"], vec!["Used", "Idle"]]);
}

#[test]
fn halvings_and_duration() {
    let ws: Vec<Workload> = candidates(HAND).iter().map(|c| ok(c)).collect();
    assert!(ws.iter().any(|w| w.duration_s == Some(1.0)), "2 s halves to 1 s");
    let all_runs_halved = ws.iter().any(|w| {
        let s = Size::of(w);
        s.run_us == 600 + 5 + 102 + 70 && s.events == 20
    });
    assert!(all_runs_halved, "every run halved at once");
    assert!(ws.iter().any(|w| w.tasks[0].instances == 1), "one instance");
    assert!(ws.iter().any(|w| w.tasks[0].instances == 2), "half the instances");
    assert!(
        ws.iter()
            .any(|w| w.tasks.len() == 3 && w.tasks[2].phases.len() == 1),
        "a phase dropped"
    );

    // A one-second duration halves to a fraction (a warning, but it loads).
    let short = r#"{ "global": { "duration": 1 }, "tasks": { "t": { "run": 10 } } }"#;
    assert!(candidates(short).iter().any(|c| ok(c).duration_s == Some(0.5)));
    // Nothing left to take away: a single one-event task, one CPU, no duration.
    assert!(candidates(r#"{ "tasks": { "t": { "run": 1 } } }"#).is_empty());
    assert!(
        candidates("{").is_empty(),
        "text that does not load has no candidates"
    );
}

/// The greedy loop `proxysched shrink` runs: keep the first candidate that still "fails".
fn shrink_while(text: &str, fails: impl Fn(&Workload) -> bool) -> (String, usize) {
    let mut cur = text.to_string();
    let mut steps = 0;
    'outer: loop {
        for c in candidates(&cur) {
            if fails(&ok(&c)) {
                cur = c;
                steps += 1;
                assert!(steps < 10_000, "shrinking ends");
                continue 'outer;
            }
        }
        return (cur, steps);
    }
}

#[test]
fn greedy_shrink_of_a_swarm_workload_ends_small_and_still_fails() {
    // The "failure": a FIFO thread takes a mutex while another task exists that sleeps.
    let fails = |w: &Workload| {
        let fifo_locks = w.tasks.iter().any(|t| {
            t.attr.policy == uapi::Policy::Fifo
                && t.phases
                    .iter()
                    .any(|p| p.events.iter().any(|e| matches!(e.event, Event::Lock { .. })))
        });
        let sleeper = w.tasks.iter().any(|t| {
            t.phases
                .iter()
                .any(|p| p.events.iter().any(|e| matches!(e.event, Event::Sleep { .. })))
        });
        fifo_locks && sleeper
    };
    let seed = (0..200)
        .find(|&s| {
            let w = ok(&swarm(s, "v29"));
            fails(&w) && w.tasks.len() >= 5
        })
        .expect("a swarm seed with the property and five tasks");
    let text = swarm(seed, "v29");
    let before = size(&text);
    let (small, steps) = shrink_while(&text, fails);
    let after = size(&small);
    assert!(fails(&ok(&small)));
    assert!(steps > 0);
    assert!(after.smaller_than(&before), "{before} -> {after}");
    assert!(after.tasks <= 2, "{after}\n{small}");
    assert_eq!(after.cpus, 1, "{after}");
    assert!(after.events <= 4, "{after}\n{small}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The candidates of any swarm workload load and are smaller.
    #[test]
    fn swarm_candidates_load_and_shrink(seed in any::<u64>()) {
        let text = swarm(seed, "v29");
        let before = size(&text);
        for c in candidates(&text) {
            let w = load("c.json", &c);
            prop_assert!(w.is_ok(), "{:?}", w.err());
            prop_assert!(Size::of(&w.unwrap()).smaller_than(&before));
        }
    }
}
