//! Loader tests: rt-app's JSON dialect, prefix matching, defaults, errors with exact positions
//! and warnings for keys the simulator does not model.

use uapi::Policy;
use workload::{load, CostsSpec, Event, LoadError, LoopCount, ResourceKind, Workload, DEMO};

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

fn events(w: &Workload, task: usize, phase: usize) -> Vec<Event> {
    w.tasks[task].phases[phase]
        .events
        .iter()
        .map(|e| e.event)
        .collect()
}

fn warning_keys(w: &Workload) -> Vec<&str> {
    w.warnings.iter().map(|w| w.key.as_str()).collect()
}

#[test]
fn comments_trailing_commas_and_repeated_keys_in_file_order() {
    let w = ok(r#"
        // a line comment
        { "tasks": { "t": {
            /* block
               comment */
            "run": 100,
            "sleep": 200,
            "run": 300,   // the same key again: a second event
            "loop": 1,
        }, }, }"#);
    assert_eq!(
        events(&w, 0, 0),
        vec![
            Event::Run { work_us: 100 },
            Event::Sleep { duration_us: 200 },
            Event::Run { work_us: 300 },
        ]
    );
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    let keys: Vec<_> = w.tasks[0].phases[0]
        .events
        .iter()
        .map(|e| (e.key.as_str(), e.line))
        .collect();
    assert_eq!(keys, vec![("run", 6), ("sleep", 7), ("run", 8)]);
}

#[test]
fn events_match_by_prefix_in_rtapp_order() {
    let w = ok(r#"{ "tasks": { "t": {
        "run0": 1, "runtime_a": 2, "sleep_x": 3, "lock1": "M", "unlock1": "M",
        "signal_c": "C", "broad_c": "C", "yield0": "", "memrun": {}, "mem1": 10,
        "timer0": { "ref": "T", "period": 10 }
    } } }"#);
    let m = 0; // mutex "M" is the first resource
    let c = 1; // cond "C" the second
    assert_eq!(
        events(&w, 0, 0),
        vec![
            Event::Run { work_us: 1 },
            Event::Runtime { duration_us: 2 },
            Event::Sleep { duration_us: 3 },
            Event::Lock { mutex: m },
            Event::Unlock { mutex: m },
            Event::Signal { cond: c },
            Event::Broadcast { cond: c },
            Event::Yield,
            Event::Timer {
                timer: 0,
                period_us: 10
            },
        ]
    );
    // memrun and mem are recognised (memrun before mem) and skipped with a warning each.
    assert_eq!(warning_keys(&w), vec!["memrun", "mem1"]);
    assert!(w.warnings[0].message.contains("not modelled"));
}

#[test]
fn error_names_line_column_and_what_was_expected() {
    let e = err("{\n  \"tasks\": {\n    \"t\": { \"run\": \"abc\" }\n  }\n}");
    assert_eq!((e.line, e.column), (3, 19));
    assert_eq!(
        e.message,
        "expected an integer number of microseconds for \"run\", found a string"
    );
    assert_eq!(
        e.to_string(),
        "w.json:3:19: error: expected an integer number of microseconds for \"run\", found a string"
    );

    let e = err("{ \"tasks\": { \"t\": { \"run\": -5 } } }");
    assert_eq!((e.line, e.column), (1, 28));
    assert!(e.message.contains("from 0 to 2147483647"), "{}", e.message);

    let e = err("{ \"tasks\": { \"t\": { \"sleep\": 1.5 } } }");
    assert!(
        e.message.ends_with("found the non-integer number 1.5"),
        "{}",
        e.message
    );
}

#[test]
fn syntax_errors_have_positions() {
    let e = err("{\n  \"tasks\": {\n    \"t\": { \"run\": 1 \"sleep\": 2 }\n  }\n}");
    // Right after the value that should have been followed by a comma.
    assert_eq!((e.line, e.column), (3, 20));
    assert_eq!(e.message, "expected comma");
    let e = err("");
    assert_eq!((e.line, e.column), (1, 1));
}

#[test]
fn structural_errors() {
    assert_eq!(
        err("[1]").message,
        "expected an object at the top level, found an array"
    );
    let e = err("{ \"global\": {} }");
    assert_eq!(e.message, "expected a \"tasks\" object at the top level");
    let e = err("{ \"tasks\": {} }");
    assert!(e.message.starts_with("expected at least one task"));
    let e = err("{ \"tasks\": { \"t\": { \"loop\": 3 } } }");
    assert!(
        e.message.starts_with("expected at least one event"),
        "{}",
        e.message
    );
    let e = err("{ \"tasks\": { \"t\": { \"policy\": \"SCHED_FOO\", \"run\": 1 } } }");
    assert!(e.message.contains("SCHED_FIFO"), "{}", e.message);
    assert_eq!((e.line, e.column), (1, 31));
    let e = err("{ \"tasks\": { \"t\": { \"policy\": \"SCHED_FIFO\", \"priority\": 0, \"run\": 1 } } }");
    assert_eq!(
        e.message,
        "expected an RT priority from 1 to 99 for SCHED_FIFO, found 0"
    );
    let e = err("{ \"tasks\": { \"t\": { \"priority\": 20, \"run\": 1 } } }");
    assert_eq!(
        e.message,
        "expected a nice value from -20 to 19 for SCHED_OTHER, found 20"
    );
    let e = err("{ \"proxysched\": {\"cpus\": 2}, \"tasks\": { \"t\": { \"cpus\": [0, 2], \"run\": 1 } } }");
    assert_eq!(
        e.message,
        "expected a CPU id from 0 to 1 in \"cpus\", found the integer 2"
    );
    let e = err("{ \"tasks\": { \"t\": { \"lock\": 3 } } }");
    assert_eq!(
        e.message,
        "expected a mutex name for \"lock\", found the integer 3"
    );
    let e = err("{ \"tasks\": { \"t\": { \"timer\": 3 } } }");
    assert!(
        e.message.starts_with("expected an object {\"ref\""),
        "{}",
        e.message
    );
    let e = err("{ \"tasks\": { \"t\": { \"run\": 1 }, \"t\": { \"run\": 1 } } }");
    assert_eq!(e.message, "task \"t\" is defined twice");
    let e = err("{ \"proxysched\": {\"inject\": {\"nope\": true}}, \"tasks\": { \"t\": { \"run\": 1 } } }");
    assert_eq!(
        e.message,
        "unknown injection point \"nope\"; expected one of: donor_swap_in_balance, model_assertion"
    );
    assert_eq!((e.line, e.column), (1, 29));
}

#[test]
fn unknown_and_unmodelled_keys_are_warnings_with_positions() {
    let w = ok(r#"{
  "global": { "frag": 1, "calibration": "CPU0", "logdir": "./" },
  "tasks": {
    "t": {
      "util_min": 10,
      "foo": 1,
      "phases": {
        "p": { "run": 1, "bar": 2, "taskgroup": "/a", "fork": "t" }
      },
      "sleep": 5
    }
  },
  "extra": 1
}"#);
    assert_eq!(
        warning_keys(&w),
        vec!["extra", "frag", "util_min", "foo", "sleep", "bar", "fork"]
    );
    // "taskgroup" is modelled: the phase joins /a, created with the default weight.
    assert_eq!(w.tasks[0].phases[0].taskgroup, Some(1));
    assert_eq!(w.settings.taskgroups[0].path, "/a");
    let frag = &w.warnings[1];
    assert_eq!((frag.line, frag.column), (2, 15));
    assert_eq!(
        frag.render("w.json"),
        "w.json:2:15: warning: unknown global key \"frag\" ignored"
    );
    let sleep = &w.warnings[4];
    assert!(sleep.message.contains("has phases"), "{}", sleep.message);
}

#[test]
fn repeated_property_keys_warn_and_the_last_wins() {
    let w = ok("{ \"tasks\": { \"t\": { \"delay\": 1, \"delay\": 2, \"run\": 1 } } }");
    assert_eq!(w.tasks[0].delay_us, 2);
    assert_eq!(warning_keys(&w), vec!["delay"]);
}

#[test]
fn thread_names_follow_rtapp_global_index() {
    let w = ok(r#"{ "tasks": {
        "a": { "instance": 2, "run": 1 },
        "b": { "run": 1 },
        "c": { "instance": 0, "run": 1 }
    } }"#);
    let names: Vec<_> = w.threads.iter().map(|t| (t.name.as_str(), t.instance)).collect();
    assert_eq!(names, vec![("a-0", 0), ("a-1", 1), ("b-2", 0)]);
    assert_eq!(w.threads[2].task, "b");
    assert_eq!(w.threads[2].task_index, 1);
    assert_eq!(warning_keys(&w), vec!["c"]);
}

#[test]
fn loop_defaults_follow_rtapp() {
    let w = ok(r#"{ "tasks": {
        "forever": { "run": 1 },
        "counted": { "loop": 3, "run": 1 },
        "phased": { "phases": { "p1": { "run": 1 }, "p2": { "loop": 4, "run": 1 } } },
        "phased_twice": { "loop": 2, "phases": { "p": { "run": 1 } } },
        "never": { "loop": 0, "phases": { "p": { "run": 1 } } }
    } }"#);
    let t = &w.tasks;
    assert_eq!(t[0].thread_loop, LoopCount::Forever);
    assert_eq!(t[0].phases[0].loop_count, LoopCount::Times(1));
    assert_eq!(t[1].thread_loop, LoopCount::Times(1));
    assert_eq!(t[1].phases[0].loop_count, LoopCount::Times(3));
    assert_eq!(t[2].thread_loop, LoopCount::Forever);
    assert_eq!(t[2].phases[0].loop_count, LoopCount::Times(1));
    assert_eq!(t[2].phases[1].loop_count, LoopCount::Times(4));
    assert_eq!(t[2].phases[1].name, "p2");
    assert_eq!(t[3].thread_loop, LoopCount::Times(2));
    assert_eq!(t[4].thread_loop, LoopCount::Times(0));

    let w = ok("{ \"tasks\": { \"t\": { \"phases\": { \"p\": { \"loop\": 0, \"run\": 1 } } } } }");
    assert_eq!(w.tasks[0].phases[0].loop_count, LoopCount::Forever);
    assert_eq!(warning_keys(&w), vec!["loop"]);

    // rt-app's own idiom for "forever", at task and at phase level: no warning.
    let w = ok(r#"{ "tasks": {
        "t": { "loop": -1, "run": 1 },
        "u": { "phases": { "p": { "loop": -1, "run": 1 } } }
    } }"#);
    assert_eq!(w.tasks[0].phases[0].loop_count, LoopCount::Forever);
    assert_eq!(w.tasks[1].phases[0].loop_count, LoopCount::Forever);
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    let w = ok("{ \"tasks\": { \"t\": { \"phases\": { \"p\": { \"loop\": -2, \"run\": 1 } } } } }");
    assert_eq!(warning_keys(&w), vec!["loop"]);
}

#[test]
fn policy_and_priority_defaults() {
    let w = ok(r#"{ "global": { "default_policy": "SCHED_FIFO" }, "tasks": {
        "f": { "run": 1 },
        "o": { "policy": "SCHED_OTHER", "priority": 5, "run": 1 },
        "r": { "policy": "SCHED_RR", "priority": 42, "run": 1 },
        "d": { "policy": "SCHED_DEADLINE", "dl-runtime": 100, "dl-period": 1000, "run": 1 },
        "l": { "policy": "SCHED_DEADLINE", "runtime": 100, "period": 1000 }
    } }"#);
    let a: Vec<_> = w.threads.iter().map(|t| t.attr).collect();
    assert_eq!((a[0].policy, a[0].rt_priority), (Policy::Fifo, 10));
    assert_eq!((a[1].policy, a[1].nice), (Policy::Normal, 5));
    assert_eq!((a[2].policy, a[2].rt_priority), (Policy::Rr, 42));
    assert_eq!(a[3].policy, Policy::Deadline);
    assert_eq!(
        (a[3].dl_runtime_ns, a[3].dl_deadline_ns, a[3].dl_period_ns),
        (100_000, 1_000_000, 1_000_000)
    );
    // Legacy thread-level runtime/period for SCHED_DEADLINE; "runtime" is also an event.
    assert_eq!((a[4].dl_runtime_ns, a[4].dl_period_ns), (100_000, 1_000_000));
    assert_eq!(events(&w, 4, 0), vec![Event::Runtime { duration_us: 100 }]);
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
}

#[test]
fn phase_sched_only_when_present_and_same_policy_resolved() {
    let w = ok(
        r#"{ "tasks": { "t": { "policy": "SCHED_FIFO", "priority": 5, "phases": {
        "a": { "run": 1 },
        "b": { "priority": 50, "run": 1 },
        "c": { "policy": "SCHED_OTHER", "run": 1 },
        "d": { "priority": -3, "cpus": [0], "run": 1 }
    } } } }"#,
    );
    let p = &w.tasks[0].phases;
    assert_eq!(p[0].sched, None);
    let b = p[1].sched.unwrap();
    assert_eq!((b.policy, b.priority), (Policy::Fifo, Some(50)));
    let c = p[2].sched.unwrap();
    assert_eq!((c.policy, c.priority), (Policy::Normal, Some(0)));
    let d = p[3].sched.unwrap();
    assert_eq!((d.policy, d.priority), (Policy::Normal, Some(-3)));
    assert_eq!(p[3].cpus, Some(vec![0]));
}

#[test]
fn resources_keyed_by_name_and_kind_declared_first() {
    let w = ok(r#"{
        "resources": { "S": { "protocol": "pi" }, "C": { "type": "wait" } },
        "tasks": {
            "a": { "lock": "M", "wait": { "ref": "S", "mutex": "M" }, "unlock": "M",
                   "barrier": "B", "suspend": "", "resume": "b" },
            "b": { "instance": 2, "barrier": "B", "sync": { "ref": "C", "mutex": "S" } }
        }
    }"#);
    let r: Vec<_> = w
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r.kind.clone(), r.internal))
        .collect();
    let mutex = |p: Option<&str>| ResourceKind::Mutex {
        protocol: p.map(str::to_string),
        io: false,
        interruptible: false,
    };
    assert_eq!(
        r,
        vec![
            ("S", mutex(Some("pi")), false),
            ("C", ResourceKind::Cond, false),
            ("M", mutex(None), false),
            ("S", ResourceKind::Cond, false),
            ("__barrier_B", mutex(None), true),
            ("__barrier_B", ResourceKind::Cond, true),
            ("__suspend_a", ResourceKind::Cond, true),
            ("__suspend_a", mutex(None), true),
            ("__suspend_b", ResourceKind::Cond, true),
            ("__suspend_b", mutex(None), true),
        ]
    );
    assert_eq!(events(&w, 0, 0)[1], Event::Wait { cond: 3, mutex: 2 });
    assert_eq!(events(&w, 0, 0)[4], Event::Suspend { cond: 6, mutex: 7 });
    assert_eq!(events(&w, 0, 0)[5], Event::Resume { cond: 8, mutex: 9 });
    assert_eq!(events(&w, 1, 0)[1], Event::Sync { cond: 1, mutex: 0 });
    // -1 + 1 instance of a + 2 instances of b.
    assert_eq!(w.barriers[0].initial_waiting, 2);
    assert_eq!((w.barriers[0].mutex, w.barriers[0].cond), (4, 5));

    let e = err("{ \"resources\": { \"C\": { \"type\": \"wait\", \"protocol\": \"pi\" } }, \"tasks\": { \"t\": { \"run\": 1 } } }");
    assert!(
        e.message.starts_with("expected \"protocol\" only on a mutex"),
        "{}",
        e.message
    );
}

#[test]
fn timers_shared_unique_and_absolute_mode_sticks() {
    let w = ok(r#"{ "tasks": {
        "a": { "timer": { "ref": "T", "period": 10 }, "timer1": { "ref": "unique", "period": 5 } },
        "b": { "timer": { "ref": "T", "period": 10, "mode": "absolute" },
               "timer1": { "ref": "unique", "period": 5 } }
    } }"#);
    let t: Vec<_> = w
        .timers
        .iter()
        .map(|t| (t.name.as_str(), t.per_thread_of_task, t.absolute))
        .collect();
    assert_eq!(
        t,
        vec![
            ("T", None, true),
            ("unique", Some(0), false),
            ("unique", Some(1), false)
        ]
    );
}

#[test]
fn settings_from_proxysched_and_global() {
    let w = ok(r#"{
        "global": { "duration": 5, "pi_enabled": true },
        "proxysched": { "cpus": 4, "llc_size": 2, "seed": 18446744073709551615,
                        "costs": { "ctx_switch_ns": 1500, "ipi_ns": 700 },
                        "features": { "is_blocked": "off", "proxy_migrate": true } },
        "tasks": { "t": { "run": 1 } }
    }"#);
    let s = &w.settings;
    assert_eq!((s.cpus, s.llc_size, s.seed), (Some(4), Some(2), Some(u64::MAX)));
    assert_eq!(
        s.costs,
        Some(CostsSpec::Inline(
            "{\"ctx_switch_ns\":1500,\"ipi_ns\":700}".into()
        ))
    );
    assert_eq!(
        s.features,
        vec![("is_blocked".into(), false), ("proxy_migrate".into(), true)]
    );
    assert!(s.pi_enabled);
    assert_eq!(s.protocol.as_deref(), Some("pi"));
    assert_eq!(w.duration_s, Some(5.0));
    assert_eq!(w.name, "w");

    let w = ok(r#"{ "global": { "duration": -1, "pi_enabled": true },
        "proxysched": { "protocol": "proxy", "costs": "zero" }, "tasks": { "t": { "run": 1 } } }"#);
    assert_eq!(w.duration_s, None);
    assert_eq!(w.settings.protocol.as_deref(), Some("proxy"));
    assert_eq!(w.settings.costs, Some(CostsSpec::Preset("zero".into())));

    let e = err("{ \"proxysched\": { \"protocol\": \"inherit\" }, \"tasks\": { \"t\": { \"run\": 1 } } }");
    assert_eq!(
        e.message,
        "expected one of \"none\", \"pi\", \"proxy\" for \"protocol\", found \"inherit\""
    );
    let e = err("{ \"proxysched\": { \"costs\": \"fast\" }, \"tasks\": { \"t\": { \"run\": 1 } } }");
    assert!(e.message.contains("found \"fast\""), "{}", e.message);
}

#[test]
fn barrier_named_twice_in_one_task_warns() {
    let w = ok(r#"{ "tasks": { "a": { "phases": {
        "p1": { "barrier": "B", "run": 1 }, "p2": { "barrier1": "B", "run": 1 } } },
        "b": { "barrier": "B" } } }"#);
    assert_eq!(w.barriers[0].initial_waiting, 2);
    assert_eq!(warning_keys(&w), vec!["barrier1"]);
}

#[test]
fn demo_is_a_valid_workload() {
    let w = load("demo.json", DEMO).unwrap();
    assert!(w.warnings.is_empty());
    assert_eq!(w.name, "demo");
}

/// Loading is linear in the number of task keys, also on one long line (a generated file):
/// 70,000 tasks on a single line reach the thread limit with the position of the first task
/// past it. Positions used to be counted from the line start for every key, which took
/// minutes here; the test has no timing assertion, it just has to finish.
#[test]
fn seventy_thousand_task_keys_on_one_line_load_to_the_thread_limit() {
    let mut text = String::from(r#"{"tasks": {"#);
    for i in 0..70_000 {
        if i > 0 {
            text.push(',');
        }
        text += &format!(r#""t{i}": {{"run": 10}}"#);
    }
    text += "}}";
    let e = err(&text);
    let first_past = format!(r#""t{}""#, workload::loader::MAX_THREADS);
    let column = text.find(&first_past).unwrap() as u32 + 1;
    assert_eq!((e.line, e.column), (1, column), "{e}");
    assert!(e.message.contains("at most 65536 threads"), "{e}");
}

/// rt-app's `parse_resources()` walks `"resources"` only when it is an object; an integer (the
/// legacy resource count), an array or a string declares nothing, and the workload runs with
/// the resources its events create. The loader warns at the value and loads the workload.
#[test]
fn resources_that_are_not_an_object_are_ignored_with_a_warning() {
    for (value, found) in [
        ("3", "the integer 3"),
        (r#"["M"]"#, "an array"),
        (r#""M""#, "a string"),
    ] {
        let text = format!(
            "{{\n  \"resources\": {value},\n  \"tasks\": {{ \"t\": {{ \"lock\": \"M\", \"run\": 10, \"unlock\": \"M\" }} }}\n}}"
        );
        let w = ok(&text);
        let names: Vec<&str> = w.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["M"], "{value}");
        assert_eq!(w.warnings.len(), 1, "{value}: {:?}", w.warnings);
        let warn = &w.warnings[0];
        assert_eq!(
            (warn.line, warn.column, warn.key.as_str()),
            (2, 16, "resources"),
            "{value}"
        );
        assert!(warn.message.contains(found), "{value}: {}", warn.message);
        assert!(warn.message.contains("rt-app ignores it"), "{}", warn.message);
    }
}

/// An inline cost over one second (here 2^64 - 1, which would wrap simulated time) is a load
/// error at the value, naming the key and the limit; one second is accepted.
#[test]
fn inline_cost_over_the_limit_is_an_error_naming_key_and_limit() {
    let e = err(
        "{ \"proxysched\": { \"costs\": {\n  \"migration_ns\": 18446744073709551615 } },\n  \"tasks\": { \"t\": { \"run\": 1 } } }",
    );
    assert_eq!((e.line, e.column), (2, 19), "{e}");
    assert!(e.message.contains("\"migration_ns\""), "{e}");
    assert!(e.message.contains("from 0 to 1000000000"), "{e}");
    assert!(e.message.contains("found 18446744073709551615"), "{e}");
    let w = ok("{ \"proxysched\": { \"costs\": { \"tick_ns\": 1000000000 } }, \"tasks\": { \"t\": { \"run\": 1 } } }");
    assert!(matches!(w.settings.costs, Some(CostsSpec::Inline(_))));
}
