//! The signal extensions of the workload format: `"interruptible": true` on a mutex and the
//! `{"signal": {"thread": TASK}}` event (rt-app's string `signal` stays a condvar signal),
//! lowered into `UserOp::Signal` for every thread of the task.

use uapi::{UserCtx, UserOp};
use workload::{load, Event, ResourceKind, Workload};

fn ok(text: &str) -> Workload {
    match load("w.json", text) {
        Ok(w) => w,
        Err(e) => panic!("unexpected load error: {e}"),
    }
}

const W: &str = r#"{
  "resources": { "M": { "type": "mutex", "interruptible": true }, "N": { "type": "mutex" } },
  "tasks": {
    "a": { "loop": 1, "signal": { "thread": "b" }, "signal1": "C", "lock": "N", "unlock": "N" },
    "b": { "instance": 2, "loop": 1, "lock": "M", "unlock": "M" }
  }
}"#;

#[test]
fn a_signal_object_names_a_task_defined_later_and_a_string_is_still_a_condvar() {
    let w = ok(W);
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    let ev: Vec<Event> = w.tasks[0].phases[0].events.iter().map(|e| e.event).collect();
    assert_eq!(ev[0], Event::SignalThread { task: 1 });
    assert!(matches!(ev[1], Event::Signal { .. }), "{:?}", ev[1]);
    let kind = |name: &str| {
        w.resources
            .iter()
            .find(|r| r.name == name && matches!(r.kind, ResourceKind::Mutex { .. }))
            .map(|r| r.kind.clone())
            .unwrap()
    };
    assert!(matches!(
        kind("M"),
        ResourceKind::Mutex {
            interruptible: true,
            ..
        }
    ));
    assert!(matches!(
        kind("N"),
        ResourceKind::Mutex {
            interruptible: false,
            ..
        }
    ));
}

#[test]
fn the_signal_event_signals_every_thread_of_the_task() {
    let w = ok(W);
    // Threads: a-0, b-1, b-2.
    let mut progs = w.programs();
    let mut a = progs.remove(0);
    // Past rt-app's own setup requests (trace marks, attributes) to the first events.
    let mut ops = Vec::new();
    for _ in 0..20 {
        let op = a.next_op(&UserCtx::new(0, 0));
        if !matches!(
            op,
            UserOp::Mark { .. } | UserOp::SetAttr { .. } | UserOp::SetAffinity { .. }
        ) {
            ops.push(op);
        }
        if ops.len() == 3 {
            break;
        }
    }
    assert_eq!(ops[0], UserOp::Signal { thread: 1 });
    assert_eq!(ops[1], UserOp::Signal { thread: 2 });
    assert!(matches!(ops[2], UserOp::CondSignal { .. }), "{:?}", ops[2]);
}
