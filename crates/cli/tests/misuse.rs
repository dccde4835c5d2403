//! Lock misuse and degenerate inputs a user can write by mistake (issue 10, item 3): each
//! ends with a clear report and the documented exit code, never a hang, a panic or a silent
//! exit 0. The inputs are the files under `scenarios/misuse_*` or generated below.

mod common;

use common::bin::{bin, run, scenario, stderr, tmp};

use std::path::PathBuf;
use std::process::{Output, Stdio};

/// No panic message, no backtrace, no hint about one.
fn assert_no_panic(what: &str, e: &str) {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!e.contains(bad), "{what}: stderr mentions {bad:?}:\n{e}");
    }
}

/// The `lock cycle:` line of a deadlock report, split into its links.
fn cycle_links(e: &str) -> Vec<String> {
    let line = e
        .lines()
        .find_map(|l| l.strip_prefix("lock cycle: "))
        .unwrap_or_else(|| panic!("no lock cycle in:\n{e}"));
    line.split(", ").map(str::to_string).collect()
}

/// Every (protocol, model) pair the lock tests run under.
const SETUPS: [(&str, &str); 9] = [
    ("none", "6.17"),
    ("none", "7.1"),
    ("none", "v29"),
    ("pi", "6.17"),
    ("pi", "7.1"),
    ("pi", "v29"),
    ("proxy", "6.17"),
    ("proxy", "7.1"),
    ("proxy", "v29"),
];

/// `"loop": 3, "lock": "M", "run": 100` and no unlock: the second lock relocks a held mutex.
/// Exit 3 naming the thread and the mutex under every protocol and model (it used to panic
/// under none and proxy).
#[test]
fn recursive_lock_is_a_deadlock_naming_thread_and_mutex() {
    let w = scenario("misuse_recursive_lock.json");
    for (protocol, model) in SETUPS {
        let o = run(&["run", &w, "--protocol", protocol, "--model", model]);
        let e = stderr(&o);
        let what = format!("{protocol} {model}");
        assert_eq!(o.status.code(), Some(3), "{what}:\n{e}");
        assert_no_panic(&what, &e);
        assert!(
            e.starts_with("deadlock: the simulated system deadlocked"),
            "{what}:\n{e}"
        );
        assert_eq!(cycle_links(&e), vec!["T-0-1000 waits for M"], "{what}");
        assert!(
            e.contains("  T-0-1000 waits for mutex M held by T-0-1000"),
            "{what}:\n{e}"
        );
    }
}

/// A ring of `n` threads, thread i on CPU `cpu(i)`: holds Mi, sleeps 1 ms, wants M(i+1 mod n).
fn ring(n: usize, cpu: impl Fn(usize) -> usize, costs: &str) -> PathBuf {
    let mut tasks = Vec::new();
    for i in 0..n {
        let next = (i + 1) % n;
        tasks.push(format!(
            r#""t{i}": {{ "policy": "SCHED_FIFO", "priority": 10, "cpus": [{}], "loop": 1, "lock": "M{i}", "sleep": 1000, "lock2": "M{next}", "run": 100, "unlock2": "M{next}", "unlock": "M{i}" }}"#,
            cpu(i)
        ));
    }
    let cpus = (0..n).map(&cpu).max().unwrap() + 1;
    let text = format!(
        "{{ \"global\": {{ \"duration\": 1 }}, \"proxysched\": {{ \"cpus\": {cpus}, \"costs\": \"{costs}\" }},\n  \"tasks\": {{\n{}\n}} }}\n",
        tasks.join(",\n")
    );
    let f = tmp(&format!("ring_{n}_{cpus}cpus_{costs}.json"));
    std::fs::write(&f, text).unwrap();
    f
}

/// The deadlock report of a ring names exactly its `n` links (in some rotation).
fn assert_ring_reported(what: &str, o: &Output, n: usize) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(3), "{what}:\n{e}");
    assert_no_panic(what, &e);
    let report = e
        .lines()
        .find(|l| !l.starts_with("kernel warning: "))
        .unwrap_or_default();
    assert!(report.starts_with("deadlock:"), "{what}:\n{e}");
    let mut links = cycle_links(&e);
    links.sort();
    let mut want: Vec<String> = (0..n)
        .map(|i| format!("t{i}-{i}-{} waits for M{}", 1000 + i, (i + 1) % n))
        .collect();
    want.sort();
    assert_eq!(links, want, "{what}");
}

/// Lock cycles of 2, 4, 8 and 64 threads, one per CPU: exit 3 naming the cycle under every
/// protocol and model. Rings of four or more under 7.1 and v29 used to bounce the donors
/// between CPUs (millions of proxy migrations) until the duration and exit 0: the run's
/// watchdog now reports the cycle once it has lasted two whole tick periods. The scenario
/// file runs as a user would run it; the generated rings run without optimistic spinning
/// (otherwise every waiter first spins on its running owner for the model's 100 ms limit,
/// which takes seconds of wall time per run and changes nothing here).
#[test]
fn lock_rings_across_cpus_are_deadlocks_naming_the_cycle() {
    let fixture = scenario("misuse_lock_ring_4cpus.json");
    for (protocol, model) in SETUPS {
        let o = run(&["run", &fixture, "--protocol", protocol, "--model", model]);
        assert_ring_reported(&format!("ring 4 {protocol} {model}"), &o, 4);
    }
    for n in [2, 4, 8, 64] {
        let w = ring(n, |i| i, "default");
        for (protocol, model) in SETUPS {
            let o = run(&[
                "run",
                w.to_str().unwrap(),
                "--protocol",
                protocol,
                "--model",
                model,
                "--feature",
                "mutex_spin_on_owner=off",
            ]);
            assert_ring_reported(&format!("ring {n} {protocol} {model} (no spin)"), &o, n);
        }
    }
}

/// The ring under 7.1 and v29 (where the donors migrate round it) keeps every invariant until
/// the deadlock is reported, also at zero cost (where all of it happens at one instant).
/// Without optimistic spinning the waiters become donors at once (with it, each first spins
/// on its running owner for the model's 100 ms spin limit, which `--check` makes slow).
#[test]
fn lock_ring_with_migrating_donors_keeps_the_invariants() {
    for costs in ["default", "zero"] {
        let w = ring(8, |i| i, costs);
        for model in ["7.1", "v29"] {
            let o = run(&[
                "run",
                w.to_str().unwrap(),
                "--model",
                model,
                "--check",
                "--feature",
                "mutex_spin_on_owner=off",
            ]);
            assert_ring_reported(&format!("ring 8 {model} {costs} --check"), &o, 8);
        }
    }
}

/// `find_proxy_task()` follows at most 64 links (the April 2026 bound): a cycle of 65 threads
/// on one CPU makes the walk give up with the kernel's warning, and the watchdog reports the
/// cycle; a cycle of 64 is still seen by the walk itself, without a warning.
#[test]
fn proxy_chain_walk_is_bounded_at_64_links() {
    const WARNING: &str = "kernel warning: find_proxy_task: proxy chain depth exceeded 64";
    for model in ["6.17", "7.1", "v29"] {
        for costs in ["default", "zero"] {
            let long = ring(65, |_| 0, costs);
            let o = run(&[
                "run",
                long.to_str().unwrap(),
                "--protocol",
                "proxy",
                "--model",
                model,
            ]);
            let what = format!("65 on one CPU, {model} {costs}");
            assert_ring_reported(&what, &o, 65);
            assert!(stderr(&o).starts_with(WARNING), "{what}:\n{}", stderr(&o));

            let short = ring(64, |_| 0, costs);
            let o = run(&[
                "run",
                short.to_str().unwrap(),
                "--protocol",
                "proxy",
                "--model",
                model,
            ]);
            let what = format!("64 on one CPU, {model} {costs}");
            assert_ring_reported(&what, &o, 64);
            assert!(!stderr(&o).contains(WARNING), "{what}:\n{}", stderr(&o));
        }
    }
}

/// A chain of 66 threads without a cycle on one CPU at zero cost: the top donor's walk needs
/// 65 links, so (as Linux with the bound) the CPU runs idle and picks it again for ever, at
/// one instant. The watchdog ends the run as a livelock naming what the CPU runs, with the
/// kernel's warning: exit 3, not a hang.
#[test]
fn a_chain_past_the_bound_at_zero_cost_is_a_livelock_not_a_hang() {
    let n = 66;
    let mut tasks = vec![
        r#""t0": { "policy": "SCHED_FIFO", "priority": 1, "cpus": [0], "loop": 1, "sleep": 500, "lock": "M0", "run": 10000, "unlock": "M0" }"#
            .to_string(),
    ];
    for i in 1..n {
        tasks.push(format!(
            r#""t{i}": {{ "policy": "SCHED_FIFO", "priority": {}, "cpus": [0], "loop": 1, "lock": "M{i}", "sleep": 1000, "lock2": "M{}", "unlock2": "M{}", "unlock": "M{i}" }}"#,
            1 + i,
            i - 1,
            i - 1
        ));
    }
    let f = tmp("chain_66_one_cpu.json");
    std::fs::write(
        &f,
        format!(
            "{{ \"global\": {{ \"duration\": 1 }}, \"proxysched\": {{ \"cpus\": 1, \"costs\": \"zero\" }},\n  \"tasks\": {{\n{}\n}} }}\n",
            tasks.join(",\n")
        ),
    )
    .unwrap();
    let o = run(&["run", f.to_str().unwrap(), "--protocol", "proxy"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert_no_panic("chain 66", &e);
    assert!(
        e.contains("stall: the simulated system stalled at 1000000 ns"),
        "{e}"
    );
    assert!(
        e.contains("livelock: simulated time stopped advancing at 1000000 ns"),
        "{e}"
    );
    assert!(e.contains("proxy chain depth exceeded 64"), "{e}");
}

/// `"loop": -1` with `"run": 0` or `"sleep": 0`: nothing in the loop takes simulated time. A
/// livelock naming the thread, exit 3, within about a second and in bounded memory (it used
/// to grow without bound); `compare` ends the same way for every protocol.
#[test]
fn loops_that_never_advance_time_are_a_livelock() {
    for name in ["misuse_loop_run0.json", "misuse_loop_sleep0.json"] {
        let w = scenario(name);
        let o = run(&["run", &w]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{name}:\n{e}");
        assert_no_panic(name, &e);
        assert!(
            e.contains("stall: the simulated system stalled at"),
            "{name}:\n{e}"
        );
        assert!(
            e.contains("livelock: thread T-0-1000 made 1000000 requests at"),
            "{name}:\n{e}"
        );
        assert!(
            e.contains(&format!("replay: proxysched run {w} --seed 0")),
            "{name}:\n{e}"
        );
        let o = run(&["compare", &w]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{name} compare:\n{e}");
        for p in ["none", "pi", "proxy"] {
            assert!(e.contains(&format!("[{p}] stall:")), "{name} compare {p}:\n{e}");
        }
    }
}

/// Costs that would overflow simulated time: exit 2 naming file, line, column, key and limit,
/// from a `--costs` file and from inline `proxysched.costs` (they used to panic in the metrics
/// or hang).
#[test]
fn cost_over_the_limit_is_bad_input_naming_the_key_and_the_limit() {
    let costs = scenario("misuse_costs_overflow.costs.json");
    let w = scenario("donor_migration.json");
    for cmd in ["run", "compare", "ablate"] {
        let o = run(&[cmd, &w, "--costs", &costs]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd}:\n{e}");
        assert_eq!(
            e.trim_end(),
            format!(
                "{costs}:3:3: error: cost \"context_switch_ns\" is 18446744073709551615 ns; the limit is 1000000000 ns (1 s) per operation"
            ),
            "{cmd}"
        );
    }
    let inline = scenario("misuse_costs_overflow.json");
    let o = run(&["run", &inline]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.starts_with(&format!("{inline}:7:21: error: ")), "{e}");
    assert!(
        e.contains("\"migration_ns\"") && e.contains("to 1000000000"),
        "{e}"
    );
    assert_no_panic("inline costs", &e);
}

/// stdout is a pipe whose reader has gone (`proxysched compare | true`): every command ends
/// quietly with its normal exit code instead of panicking on the broken pipe.
#[test]
fn closed_stdout_pipe_ends_quietly() {
    let w = scenario("donor_migration.json");
    let cases: [&[&str]; 6] = [
        &["run", &w],
        &["run", &w, "--format", "json"],
        &["compare", &w],
        &["ablate", &w],
        &["features"],
        &["bench", "--duration", "0.001"],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = bin()
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}:\n{e}");
        assert_no_panic(&format!("{args:?}"), &e);
        assert!(!e.contains("Broken pipe"), "{args:?}:\n{e}");
    }
}

/// A failed model assertion (here the `model_assertion` fault injection, a model `assert!`
/// at CPU 0's first tick) is exit 4 with the assertion's message and the replay line, never
/// exit 101 with a panic and a backtrace hint; the replay line reproduces it.
#[test]
fn failed_model_assertion_is_exit_4_with_a_replay_line_that_reproduces_it() {
    let f = tmp("model_assertion.json");
    std::fs::write(
        &f,
        r#"{ "global": { "duration": 1 }, "proxysched": { "inject": { "model_assertion": true } },
             "tasks": { "T": { "loop": 1, "run": 5000 } } }"#,
    )
    .unwrap();
    let w = f.to_str().unwrap();
    let message = "model assertion failed: injected model assertion failure (proxysched.inject.model_assertion) (at crates/kernel/src/system.rs:";
    for (cmd, replay) in [
        ("run", format!("replay: proxysched run {w} --seed 0")),
        (
            "compare",
            format!("replay: proxysched run {w} --protocol none --seed 0"),
        ),
        ("ablate", format!("replay: proxysched run {w} --seed 0")),
    ] {
        let o = run(&[cmd, w, "--seed", "0"]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(4), "{cmd}:\n{e}");
        assert_no_panic(cmd, &e);
        assert!(e.starts_with(message), "{cmd}:\n{e}");
        assert!(e.trim_end().ends_with(&replay), "{cmd}:\n{e}");
        // The replay line, run as printed, fails the same way.
        let line = replay.strip_prefix("replay: proxysched ").unwrap();
        let args: Vec<&str> = line.split(' ').collect();
        let again = run(&args);
        assert_eq!(again.status.code(), Some(4), "{cmd} replay");
        assert!(
            stderr(&again).starts_with(message),
            "{cmd} replay:\n{}",
            stderr(&again)
        );
    }
}

/// rt-app fidelity: a top-level `"resources"` that is not an object (an old rt-app count) is
/// ignored with a warning, as rt-app's `parse_resources()` ignores it; the run succeeds.
#[test]
fn resources_count_runs_with_a_warning() {
    let w = scenario("rtapp_resources_count.json");
    let o = run(&["run", &w, "--format", "json"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(
        e.contains(":8:16: warning: expected an object for \"resources\", found the integer 2"),
        "{e}"
    );
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["end_reason"], "exited");
    assert_eq!(m["tasks"][0]["exit_ns"], 1_000_000);
}
