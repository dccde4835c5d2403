//! `proxysched.workqueues` and the `queue_work` / `flush_work` events: what they load into,
//! warnings for unknown keys, and positioned errors for malformed values.

use workload::{load, Event, LoadError, ResourceKind, WorkStepSpec, Workload};

fn ok(text: &str) -> Workload {
    load("w.json", text).unwrap_or_else(|e| panic!("unexpected load error: {e}"))
}

fn err(text: &str) -> LoadError {
    match load("w.json", text) {
        Ok(_) => panic!("expected a load error"),
        Err(e) => e,
    }
}

const B4: &str = r#"{
  "proxysched": { "cpus": 2, "workqueues": { "workers_per_pool": 3, "items": {
      "W": [ {"lock": "M"}, {"run": 500}, {"unlock": "M"}, {"queue_work": "G"} ],
      "G": [ {"sleep": 10}, {"queue_work": {"item": "W", "cpu": 1}} ] } } },
  "tasks": { "o": { "loop": 1, "lock": "M", "queue_work": {"item": "W", "cpu": 0},
                    "queue_work_g": "G", "flush_work": "G", "unlock": "M" } }
}"#;

#[test]
fn items_steps_and_events_load_in_file_order() {
    let w = ok(B4);
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    let wq = &w.settings.workqueues;
    assert_eq!(wq.workers_per_pool, Some(3));
    assert!(!wq.skip_sleeping_hook);
    let names: Vec<&str> = wq.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["W", "G"]);
    // The task's lock of M comes first, so M is resource 0 either way; one mutex only.
    assert_eq!(w.resources.len(), 1);
    assert!(matches!(w.resources[0].kind, ResourceKind::Mutex { .. }));
    assert_eq!(
        wq.items[0].steps,
        [
            WorkStepSpec::Lock { mutex: 0 },
            WorkStepSpec::Run { work_us: 500 },
            WorkStepSpec::Unlock { mutex: 0 },
            WorkStepSpec::QueueWork { item: 1, cpu: None },
        ]
    );
    assert_eq!(
        wq.items[1].steps,
        [
            WorkStepSpec::Sleep { duration_us: 10 },
            WorkStepSpec::QueueWork {
                item: 0,
                cpu: Some(1)
            },
        ]
    );
    let ev: Vec<Event> = w.tasks[0].phases[0].events.iter().map(|e| e.event).collect();
    assert_eq!(
        ev,
        [
            Event::Lock { mutex: 0 },
            Event::QueueWork {
                item: 0,
                cpu: Some(0)
            },
            Event::QueueWork { item: 1, cpu: None },
            Event::FlushWork { item: 1 },
            Event::Unlock { mutex: 0 },
        ]
    );
}

#[test]
fn programs_turn_the_events_into_system_calls() {
    use uapi::{UserCtx, UserOp};
    let w = ok(B4);
    let mut progs = w.programs();
    let mut ops = Vec::new();
    for _ in 0..20 {
        let op = progs[0].next_op(&UserCtx::new(0, 0));
        if op == UserOp::Exit {
            break;
        }
        if matches!(op, UserOp::QueueWork { .. } | UserOp::FlushWork { .. }) {
            ops.push(op);
        }
    }
    assert_eq!(
        ops,
        [
            UserOp::QueueWork {
                work: 0,
                cpu: Some(0)
            },
            UserOp::QueueWork { work: 1, cpu: None },
            UserOp::FlushWork { work: 1 },
        ]
    );
}

#[test]
fn unknown_keys_warn() {
    let w = ok(r#"{ "proxysched": { "workqueues": { "colour": 1, "items": {
        "G": [ {"run": 1, "spin": 2} ] } } },
        "tasks": { "t": { "loop": 1, "queue_work": {"item": "G", "prio": 3} } } }"#);
    let keys: Vec<&str> = w.warnings.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["colour", "prio", "spin"]);
    assert_eq!(
        w.settings.workqueues.items[0].steps,
        [WorkStepSpec::Run { work_us: 1 }]
    );
}

#[test]
fn malformed_values_are_positioned_errors() {
    let e = err(
        r#"{ "proxysched": { "workqueues": { "items": { "G": [ {"run": "x"} ] } } },
  "tasks": { "t": { "run": 1 } } }"#,
    );
    assert_eq!((e.line, e.column), (1, 61), "{e}");
    assert!(e.message.contains("microseconds"), "{e}");

    let e = err(
        r#"{ "proxysched": { "workqueues": { "items": { "G": [ {"run": 1} ] } } },
  "tasks": { "t": { "queue_work": "H" } } }"#,
    );
    assert_eq!((e.line, e.column), (2, 35), "{e}");
    assert!(e.message.contains("found \"H\""), "{e}");

    let e = err(
        r#"{ "proxysched": { "cpus": 2, "workqueues": { "items": { "G": [ ] } } },
  "tasks": { "t": { "queue_work": {"item": "G", "cpu": 2} } } }"#,
    );
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("from 0 to 1"), "{e}");

    let e = err(
        r#"{ "proxysched": { "workqueues": { "items": { "G": {"run": 1} } } },
  "tasks": { "t": { "run": 1 } } }"#,
    );
    assert!(e.message.contains("array of steps"), "{e}");

    let e = err(r#"{ "proxysched": { "workqueues": { "items": { "G": [1] } } },
  "tasks": { "t": { "run": 1 } } }"#);
    assert!(e.message.contains("step object"), "{e}");

    let e = err(
        r#"{ "proxysched": { "workqueues": { "skip_sleeping_hook": "yes" } },
  "tasks": { "t": { "run": 1 } } }"#,
    );
    assert!(e.message.contains("true or false"), "{e}");
}
