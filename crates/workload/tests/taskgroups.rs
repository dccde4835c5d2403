//! Task groups in workload files: `proxysched.taskgroups` and rt-app's `taskgroup` key, the
//! ops the interpreter emits for them, and errors at exact positions.

use uapi::{UserCtx, UserOp};
use workload::spec::{CpuMax, GroupWeight, ROOT_TASKGROUP};
use workload::{load, LoadError, Workload};

fn ok(text: &str) -> Workload {
    match load("w.json", text) {
        Ok(w) => w,
        Err(e) => panic!("unexpected load error: {e}"),
    }
}

fn err(text: &str) -> LoadError {
    match load("w.json", text) {
        Ok(_) => panic!("expected a load error"),
        Err(e) => e,
    }
}

#[test]
fn declared_and_named_groups_get_ids_parents_first() {
    let w = ok(r#"{
  "proxysched": { "taskgroups": {
    "/bg/a": { "cpu.shares": 256, "cpu.max": "50000 100000" },
    "/low": { "cpu.weight": 4 }
  } },
  "tasks": { "t": { "taskgroup": "/new", "run": 1 } }
}"#);
    let g: Vec<_> = w
        .settings
        .taskgroups
        .iter()
        .map(|g| (g.path.as_str(), g.parent, g.weight))
        .collect();
    // "/bg" is created (default weight) before its child; "/new" is named only by the task.
    assert_eq!(
        g,
        vec![
            ("/bg", ROOT_TASKGROUP, GroupWeight::Default),
            ("/bg/a", 1, GroupWeight::Shares(256)),
            ("/low", ROOT_TASKGROUP, GroupWeight::Weight(4)),
            ("/new", ROOT_TASKGROUP, GroupWeight::Default),
        ]
    );
    assert_eq!(
        w.settings.taskgroups[1].cpu_max,
        Some(CpuMax {
            quota_us: 50_000,
            period_us: 100_000
        })
    );
    assert_eq!(w.tasks[0].taskgroup, Some(4));
}

#[test]
fn the_interpreter_joins_at_start_and_phase_change_and_leaves_at_exit() {
    let w = ok(r#"{
  "proxysched": { "taskgroups": { "/a": {}, "/b": {} } },
  "tasks": { "t": { "taskgroup": "/a", "loop": 1, "phases": {
    "p1": { "run": 10 },
    "p2": { "taskgroup": "/b", "run": 10 },
    "p3": { "taskgroup": "/b", "run": 10 }
  } } }
}"#);
    let mut p = w.program(0);
    let mut groups = Vec::new();
    let mut now = 0;
    for _ in 0..100 {
        let op = p.next_op(&UserCtx::new(now, 0));
        match op {
            UserOp::SetCgroup { group } => groups.push(group),
            UserOp::Run { work_ns } => now += work_ns,
            UserOp::Exit => break,
            _ => {}
        }
    }
    // Into /a at the start, /b at p2 (p3 is already there), back to the root at exit.
    assert_eq!(groups, vec![1, 2, ROOT_TASKGROUP]);
}

#[test]
fn a_workload_without_groups_emits_no_cgroup_op() {
    let w = ok(r#"{ "tasks": { "t": { "loop": 1, "run": 10 } } }"#);
    let mut p = w.program(0);
    for _ in 0..20 {
        let op = p.next_op(&UserCtx::new(0, 0));
        assert!(!matches!(op, UserOp::SetCgroup { .. }), "{op:?}");
        if op == UserOp::Exit {
            break;
        }
    }
}

#[test]
fn bad_group_definitions_are_errors_at_their_position() {
    let e = err(r#"{ "proxysched": { "taskgroups": { "low": {} } }, "tasks": { "t": { "run": 1 } } }"#);
    assert_eq!((e.line, e.column), (1, 35));
    assert!(e.message.contains("must start with \"/\""), "{}", e.message);

    let e = err(r#"{ "proxysched": { "taskgroups": { "/a//b": {} } }, "tasks": { "t": { "run": 1 } } }"#);
    assert!(e.message.contains("empty component"), "{}", e.message);

    let e = err(
        r#"{ "proxysched": { "taskgroups": { "/a": { "cpu.weight": 0 } } }, "tasks": { "t": { "run": 1 } } }"#,
    );
    assert_eq!((e.line, e.column), (1, 57));
    assert!(e.message.contains("from 1 to 10000"), "{}", e.message);

    let e = err(
        r#"{ "proxysched": { "taskgroups": { "/a": { "cpu.shares": 1 } } }, "tasks": { "t": { "run": 1 } } }"#,
    );
    assert!(e.message.contains("from 2 to 262144"), "{}", e.message);

    let e = err(
        r#"{ "proxysched": { "taskgroups": { "/a": { "cpu.weight": 5, "cpu.shares": 10 } } }, "tasks": { "t": { "run": 1 } } }"#,
    );
    assert_eq!((e.line, e.column), (1, 60));
    assert!(
        e.message.contains("not both") || e.message.contains("found both"),
        "{}",
        e.message
    );

    let e = err(r#"{ "proxysched": { "taskgroups": { "/": {} } }, "tasks": { "t": { "run": 1 } } }"#);
    assert!(e.message.contains("below the root"), "{}", e.message);

    let e = err(
        r#"{ "proxysched": { "taskgroups": { "/a": { "cpu.max": "fast" } } }, "tasks": { "t": { "run": 1 } } }"#,
    );
    assert_eq!((e.line, e.column), (1, 54));
    assert!(e.message.contains("QUOTA PERIOD"), "{}", e.message);

    let e = err(
        r#"{ "proxysched": { "taskgroups": { "/a": { "cpu.max": "500 100000" } } }, "tasks": { "t": { "run": 1 } } }"#,
    );
    assert!(e.message.contains("at least 1000"), "{}", e.message);

    let e = err(r#"{ "proxysched": { "taskgroups": { "/a": 4 } }, "tasks": { "t": { "run": 1 } } }"#);
    assert!(e.message.contains("expected an object"), "{}", e.message);
}

#[test]
fn taskgroup_keys_are_checked_like_rt_app() {
    let e = err(r#"{ "tasks": { "t": { "taskgroup": 3, "run": 1 } } }"#);
    assert_eq!((e.line, e.column), (1, 34));
    let e = err(r#"{ "tasks": { "t": { "taskgroup": "low", "run": 1 } } }"#);
    assert!(e.message.contains("must start with"), "{}", e.message);
    // rt-app refuses a group for an RT or deadline thread (check_taskgroup_policy_dep()).
    let e = err(
        r#"{ "tasks": { "t": { "policy": "SCHED_FIFO", "priority": 10, "taskgroup": "/a", "run": 1 } } }"#,
    );
    assert_eq!((e.line, e.column), (1, 61));
    assert!(e.message.contains("SCHED_FIFO"), "{}", e.message);
    let e = err(
        r#"{ "tasks": { "t": { "taskgroup": "/a", "phases": { "p": { "policy": "SCHED_RR", "priority": 5, "run": 1 } } } } }"#,
    );
    assert!(e.message.contains("task group \"/a\""), "{}", e.message);
    // A group only in the root is fine for any policy.
    ok(r#"{ "tasks": { "t": { "policy": "SCHED_FIFO", "priority": 10, "taskgroup": "/", "run": 1 } } }"#);
}
