//! The `proxysched` binary: exit codes, error messages, outputs, byte-identical reruns.

mod common;

use common::bin::{run, scenario, stderr, tmp};

use std::path::PathBuf;

#[test]
fn demo_runs_and_prints_the_table() {
    let o = run(&["run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("TASK") && out.contains("ui-1") && out.contains("high-7"),
        "{out}"
    );
}

#[test]
fn malformed_workload_is_exit_2_with_file_line_column() {
    let f = tmp("bad.json");
    std::fs::write(&f, "{\n  \"tasks\": {\n    \"t\": { \"run\": \"ten\" }\n  }\n}\n").unwrap();
    let o = run(&["run", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.starts_with(&format!("{}:3:", f.display())), "{e}");
    assert!(e.contains("error:") && e.contains("run"), "{e}");
    assert!(!e.contains("panicked"), "{e}");

    std::fs::write(&f, "{ \"tasks\": { \"t\": { \"run\": 10 } }").unwrap();
    let o = run(&["run", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!("{}:1:", f.display())),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_flags_are_exit_2() {
    for args in [
        &["run", "--feature", "no_such_feature=on"][..],
        &["run", "--feature", "place_lag=maybe"],
        &["run", "--cpus", "0"],
        &["run", "--costs", "/nonexistent/costs.json"],
        &["run", "--duration", "-1"],
        &["run", "--format", "xml"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}");
    }
    let costs = tmp("costs.json");
    std::fs::write(&costs, "{\n  \"ipi_latency\": 5\n}").unwrap();
    let o = run(&["run", "--costs", costs.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("{}:2:", costs.display())),
        "{}",
        stderr(&o)
    );
}

#[test]
fn lock_cycle_is_a_deadlock_exit_3_naming_tasks_and_locks() {
    let o = run(&["run", &scenario("abba_deadlock.json")]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("deadlock"), "{e}");
    assert!(
        e.contains("ab-0-1000 waits for B") && e.contains("ba-1-1001 waits for A"),
        "{e}"
    );
    assert!(e.contains("replay: proxysched run"), "{e}");
}

#[test]
fn nothing_left_to_wake_is_a_stall_exit_3() {
    let o = run(&["run", &scenario("suspend_forever.json")]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("stall") && stderr(&o).contains("__suspend_sleeper"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn same_seed_gives_byte_identical_trace_and_metrics() {
    let go = |seed: &str, tag: &str| {
        let (t, m) = (tmp(&format!("t{tag}.txt")), tmp(&format!("m{tag}.json")));
        let o = run(&[
            "run",
            &scenario("ties_mixed.json"),
            "--seed",
            seed,
            "--trace",
            t.to_str().unwrap(),
            "--metrics",
            m.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        (std::fs::read(t).unwrap(), std::fs::read(m).unwrap())
    };
    let a = go("5", "a");
    let b = go("5", "b");
    assert!(a.0.starts_with(b"# tracer: nop\n"));
    assert_eq!(a.0, b.0, "traces differ for the same seed");
    assert_eq!(a.1, b.1, "metrics differ for the same seed");
    let c = go("6", "c");
    assert_ne!(a.0, c.0, "another seed should reorder ties");
    let m: serde_json::Value = serde_json::from_slice(&a.1).unwrap();
    assert_eq!(m["schema"], "proxysched/metrics/v1");
    assert_eq!(m["config"]["seed"], 5);
}

#[test]
fn compare_runs_three_protocols_and_writes_one_metrics_document() {
    let m = tmp("compare.json");
    let t = tmp("cmp.txt");
    let o = run(&[
        "compare",
        "--metrics",
        m.to_str().unwrap(),
        "--trace",
        t.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for p in ["none", "pi", "proxy"] {
        assert!(out.contains(p), "{out}");
        let trace = tmp(&format!("cmp.{p}.txt"));
        assert!(
            std::fs::read_to_string(&trace)
                .unwrap()
                .starts_with("# tracer: nop"),
            "{p}"
        );
    }
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["none", "pi", "proxy"]);
    for p in ["none", "pi", "proxy"] {
        assert_eq!(doc[p]["schema"], "proxysched/metrics/v1");
        assert_eq!(doc[p]["config"]["protocol"], p);
    }
    // The demo: first a fair-class inversion, where PI gives nothing and proxy cuts the UI
    // thread's worst lock wait more than tenfold; then the RT inversion, where both help.
    let wait = |p: &str, task: &str| {
        let t = doc[p]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == task)
            .unwrap_or_else(|| panic!("{p}: no {task}"));
        let h = &t["lock_wait_ns"];
        (h["max"].as_u64().unwrap(), h["count"].as_u64().unwrap())
    };
    let (ui_none, ui_pi, ui_proxy) = (wait("none", "ui-1"), wait("pi", "ui-1"), wait("proxy", "ui-1"));
    assert_eq!((ui_none.1, ui_pi.1, ui_proxy.1), (1, 1, 1));
    assert!(ui_proxy.0 * 10 < ui_none.0, "proxy {ui_proxy:?} none {ui_none:?}");
    assert!(
        ui_pi.0 * 10 > ui_none.0 * 9,
        "pi must not help a fair waiter: {ui_pi:?} vs {ui_none:?}"
    );
    assert!(
        ui_none.0 > 100_000_000,
        "the owner crawls at nice 19: {ui_none:?}"
    );
    let (hi_none, hi_pi, hi_proxy) = (
        wait("none", "high-7"),
        wait("pi", "high-7"),
        wait("proxy", "high-7"),
    );
    assert_eq!(
        (hi_none.1, hi_pi.1, hi_proxy.1),
        (10, 10, 10),
        "a wait every period"
    );
    assert!(hi_pi.0 * 2 < hi_none.0, "pi {hi_pi:?} none {hi_none:?}");
    assert!(hi_proxy.0 * 2 < hi_none.0, "proxy {hi_proxy:?} none {hi_none:?}");
    assert!(doc["proxy"]["counters"]["proxy_picks"].as_u64().unwrap() > 0);
    // Everything ends: the hogs before the RT part starts, then the RT threads.
    for p in ["none", "pi", "proxy"] {
        assert_eq!(doc[p]["end_reason"], "exited", "{p}");
        for t in doc[p]["tasks"].as_array().unwrap() {
            let done = t["done_ns"].as_u64().unwrap();
            if t["name"].as_str().unwrap().starts_with("hog") {
                assert!(done < 990_000_000, "{p}: {} done at {done}", t["name"]);
            }
        }
    }
}

#[test]
fn a_violation_is_exit_4_and_its_replay_line_reproduces_it() {
    let o = run(&["run", &scenario("unlock_not_owner.json"), "--seed", "9"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("workload_unlock_not_owner"), "{e}");
    let replay = e
        .lines()
        .find_map(|l| l.strip_prefix("replay: proxysched "))
        .expect("a replay line");
    let again = run(&replay.split(' ').collect::<Vec<_>>());
    assert_eq!(again.status.code(), Some(4));
    assert_eq!(
        stderr(&again),
        e,
        "the replay line must reproduce the same failure"
    );
    assert_eq!(again.stdout, o.stdout);
}

#[test]
fn ablate_switches_each_mechanism_off_in_turn() {
    let o = run(&["ablate", &scenario("donor_migration.json")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row: {out}"))
            .to_string()
    };
    // Switching donor migration off brings back the single-runqueue wait (2.5 ms → 11.5 ms).
    assert!(row("MECHANISM OFF").contains("LOCK WAIT p99 (ms)"), "{out}");
    let cells = |name: &str| row(name).split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(cells("(none: all on, v29)")[4..6], ["2.500", "="], "{out}");
    assert_eq!(cells("donor_migration")[1..3], ["11.500", "+9.000"], "{out}");
    row("chain_migration");
    row("ttwu_return_migration");
}

/// Regression B-v29-1 from the command line: the injected remote donor swap inside CPU 0's
/// newidle window (scenarios/stale_prev_injected.json) is harmless with v29's pick, which
/// reads `rq->donor` after the balance pass, and fails I12 with exit code 4 when the pick
/// hands on the prev it captured before the pass (`stale_prev_fix=off`). Both runs are the
/// same up to the pick after the window, so the injection fires in both (at 1 ms).
#[test]
fn b_v29_1_stale_prev_is_exit_4_only_without_the_fix() {
    let path = scenario("stale_prev_injected.json");
    let on = run(&["run", &path, "--check"]);
    assert_eq!(on.status.code(), Some(0), "{}", stderr(&on));
    let off = run(&["run", &path, "--check", "--feature", "stale_prev_fix=off"]);
    assert_eq!(off.status.code(), Some(4), "{}", stderr(&off));
    let e = stderr(&off);
    assert!(
        e.contains("I12 at 1000000 ns: cpu 0: put_prev_set_next_task with prev sleeper-2 while rq->donor is swapper/0"),
        "{e}"
    );
    // The 7.1 preset predates v29 1/9.
    let old = run(&["run", &path, "--check", "--model", "7.1"]);
    assert_eq!(old.status.code(), Some(4), "{}", stderr(&old));
}

/// The post-v29 tree's nr_iowait reproducer (kernel/sched/proxy_iowait_repro.c) as a
/// scenario: under `--model next` the donor in mutex_lock_io() is parked on the sleeping
/// owner and activated on the owner's CPU when it wakes at 5 ms. With the fix both CPUs stay
/// balanced; with the buggy order (`iowait_fix=off`) the run fails exactly as the reproducer
/// reports: the donor CPU leaks +1 and the owner CPU is driven to -1.
#[test]
fn iowait_reproducer_balanced_with_the_fix_and_plus_one_minus_one_without() {
    let path = scenario("proxy_iowait_repro.json");
    let fixed = run(&["run", &path, "--check", "--model", "next"]);
    assert_eq!(fixed.status.code(), Some(0), "{}", stderr(&fixed));
    let buggy = run(&[
        "run",
        &path,
        "--check",
        "--model",
        "next",
        "--feature",
        "iowait_fix=off",
    ]);
    assert_eq!(buggy.status.code(), Some(4), "{}", stderr(&buggy));
    let e = stderr(&buggy);
    assert!(
        e.contains("nr_iowait_balanced at 5000000 ns: cpu0: nr_iowait 1 (+1), 0 tasks in iowait sleep there; cpu1: nr_iowait -1 (-1)"),
        "{e}"
    );
    assert!(e.contains("replay: proxysched run"), "{e}");
    // v29 has no parking: the donor is deactivated on its own CPU and woken there, balanced
    // whatever the order switch says.
    let v29 = run(&["run", &path, "--check", "--feature", "iowait_fix=off"]);
    assert_eq!(v29.status.code(), Some(0), "{}", stderr(&v29));
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rtapp_examples")
        .join(name)
        .display()
        .to_string()
}

/// rt-app's own examples run as written: those that name CPU 1 run on two CPUs and say so in
/// the header, and rt-app's `"loop": -1` draws no warning.
#[test]
fn rtapp_examples_run_as_written() {
    for (file, cpus, named) in [
        ("dvfs.json", 2, "task thread names CPU 1"),
        ("example5.json", 2, "task thread1 names CPU 1"),
        ("example2.json", 1, ""),
    ] {
        let o = run(&["run", &example(file)]);
        assert_eq!(o.status.code(), Some(0), "{file}: {}", stderr(&o));
        assert!(!stderr(&o).contains("warning"), "{file}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        let mut lines = out.lines();
        assert!(
            lines.next().unwrap().contains(&format!("  cpus: {cpus}  ")),
            "{file}: {out}"
        );
        let second = lines.next().unwrap();
        if named.is_empty() {
            assert!(second.starts_with("TASK"), "{file}: {out}");
        } else {
            assert!(
                second.starts_with("note: running on 2 CPUs, not the default 1: ") && second.contains(named),
                "{file}: {out}"
            );
        }
    }
    // Asked for fewer CPUs than the file names: refused at the task that names the CPU.
    let f = example("dvfs.json");
    let o = run(&["run", &f, "--cpus", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.starts_with(&format!("{f}:3:3: error: task thread names CPU 1")),
        "{e}"
    );
    assert!(e.contains("expected --cpus 2 or more"), "{e}");
}

/// rt-app exits with EXIT_FAILURE when the kernel refuses a reservation: exit code 5 and
/// end reason `workload_failed`, in the table, the metrics and on stderr.
#[test]
fn a_refused_sched_setattr_is_exit_5_workload_failed() {
    let m = tmp("failed.json");
    let o = run(&[
        "run",
        &scenario("dl_admission.json"),
        "--metrics",
        m.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.starts_with("workload_failed at 3000000 ns: rt-app: thread c-2"),
        "{e}"
    );
    assert!(e.contains("replay: proxysched run"), "{e}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("\nend: workload_failed at 3.000 ms\n"), "{out}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    assert_eq!(doc["end_reason"], "workload_failed");
    // compare: every protocol fails the same way.
    let o = run(&["compare", &scenario("dl_admission.json")]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
}

/// An output path that cannot be written is bad input (exit 2) naming the path, found before
/// the simulation runs.
#[test]
fn unwritable_output_paths_are_exit_2_naming_the_path() {
    let bad = "/nonexistent-dir/out";
    for args in [
        &["run", "--metrics", "/nonexistent-dir/out.json"][..],
        &["run", "--trace", "/nonexistent-dir/out.txt"],
        &["compare", "--metrics", "/nonexistent-dir/out.json"],
        &["compare", "--trace", "/nonexistent-dir/out.txt"],
        &["ablate", "--metrics", "/nonexistent-dir/out.json"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.starts_with(bad) && e.contains(": error: cannot write"),
            "{args:?}: {e}"
        );
        assert!(o.stdout.is_empty(), "{args:?}: nothing runs");
    }
}

/// Flags a command ignores are neither offered nor accepted; `--help` explains the columns;
/// a negative seed is a bad value, not an unknown flag.
#[test]
fn help_offers_only_the_flags_each_command_uses() {
    let help = |cmd: &str| String::from_utf8_lossy(&run(&[cmd, "--help"]).stdout).into_owned();
    assert!(!help("compare").contains("--protocol"), "{}", help("compare"));
    assert!(help("run").contains("--protocol"));
    assert!(!help("ablate").contains("--trace"));
    for cmd in ["run", "compare", "ablate"] {
        let h = help(cmd);
        assert!(
            h.contains("DONE") && h.contains("one unit its header names"),
            "{cmd}: {h}"
        );
    }
    let o = run(&["compare", "--protocol", "pi"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("compare runs every protocol"),
        "{}",
        stderr(&o)
    );
    let o = run(&["ablate", "--trace", &tmp("ablate.txt").display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["run", "--seed", "-1"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("invalid value '-1' for '--seed"), "{e}");
    assert!(!e.contains("to pass '-1' as a value"), "{e}");
}

/// `compare` starts with the same header line as `run`; `ablate --format json` prints JSON.
#[test]
fn compare_header_and_ablate_json() {
    let o = run(&["compare", &scenario("donor_migration.json")]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with(
            "workload: donor_migration  protocol: none, pi, proxy  cpus: 2  seed: 0  costs: zero\nTASK "
        ),
        "{out}"
    );
    let o = run(&["ablate", &scenario("donor_migration.json"), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("ablate --format json is JSON");
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys[0], "baseline");
    assert!(keys.iter().any(|k| *k == "donor_migration"), "{keys:?}");
    assert_eq!(doc["baseline"]["config"]["features"]["donor_migration"], true);
    assert_eq!(
        doc["donor_migration"]["config"]["features"]["donor_migration"],
        false
    );
    let wait = |k: &str| {
        doc[k]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["lock_wait_ns"]["max"].as_u64().unwrap())
            .max()
    };
    assert_eq!(wait("baseline"), Some(2_500_000));
    assert_eq!(wait("donor_migration"), Some(11_500_000));
}

/// The README's first screen shows the demo's table exactly as `compare` prints it today.
#[test]
fn readme_shows_the_demo_table() {
    let o = run(&["compare"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let table = String::from_utf8(o.stdout).unwrap();
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    assert!(
        readme.contains(&format!("```\n{table}```\n")),
        "README.md's demo table is stale; `cargo run --release -- compare` prints:\n{table}"
    );
}

fn svg_texts(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

/// `--plot DIR`: per-task CDFs with one curve per protocol, a Gantt chart per run with the
/// proxy spans where (and only where) Proxy Execution ran, byte-identical on a rerun.
#[test]
fn compare_plots_cdfs_per_protocol_and_gantt_with_proxy_spans() {
    let dir = tmp("plots-compare");
    let _ = std::fs::remove_dir_all(&dir);
    let go = || {
        let o = run(&[
            "compare",
            "--plot",
            dir.to_str().unwrap(),
            "--plot-window",
            "15..30",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    };
    go();
    let lock = svg_texts(&dir.join("lock_wait.ui-1.svg"));
    for label in [
        "none (n=1)",
        "pi (n=1)",
        "proxy (n=1)",
        "ui-1: lock wait CDF",
        "lock wait (ms)",
    ] {
        assert!(lock.contains(&label.to_string()), "{label}: {lock:?}");
    }
    let wake = svg_texts(&dir.join("wakeup.high-7.svg"));
    assert!(wake.contains(&"proxy (n=31)".to_string()), "{wake:?}");
    // Hogs never wait for a lock: no lock-wait plot for them.
    assert!(!dir.join("lock_wait.hog-2.svg").exists());
    let gantt = |p: &str| svg_texts(&dir.join(format!("gantt.{p}.svg")));
    let proxy = gantt("proxy");
    assert!(proxy.contains(&"ui-1→bg-0".to_string()), "{proxy:?}");
    assert!(proxy
        .iter()
        .any(|t| t.starts_with("demo under proxy: per-CPU schedule, 15.000 to 30.000 ms")));
    for p in ["none", "pi"] {
        assert!(
            !gantt(p)
                .iter()
                .any(|t| t.contains('→') && t != "proxy: donor→owner, donor's colour"),
            "{p}"
        );
    }
    let before = std::fs::read(dir.join("gantt.proxy.svg")).unwrap();
    go();
    assert_eq!(
        std::fs::read(dir.join("gantt.proxy.svg")).unwrap(),
        before,
        "deterministic"
    );

    let o = run(&["run", "--plot-window", "1..2"]);
    assert_eq!(o.status.code(), Some(2), "a window without --plot");
    let o = run(&["run", "--plot", dir.to_str().unwrap(), "--plot-window", "5..1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--plot-window expects FROM..TO"),
        "{}",
        stderr(&o)
    );
}

/// `ablate --plot DIR`: the mechanisms' effects side by side, and a CDF curve per mechanism.
#[test]
fn ablate_plots_each_mechanism() {
    let dir = tmp("plots-ablate");
    let o = run(&[
        "ablate",
        &scenario("donor_migration.json"),
        "--plot",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = svg_texts(&dir.join("ablation.svg"));
    for want in [
        "baseline",
        "donor_migration",
        "chain_migration",
        "worst lock wait p99 (ms)",
        "donor migrations",
    ] {
        assert!(t.contains(&want.to_string()), "{want}: {t:?}");
    }
    let cdf = svg_texts(&dir.join("lock_wait.H-2.svg"));
    assert!(
        cdf.contains(&"baseline (n=1)".to_string()) && cdf.contains(&"donor_migration (n=1)".to_string()),
        "{cdf:?}"
    );
    assert!(dir.join("gantt.baseline.svg").exists() && dir.join("gantt.donor_migration.svg").exists());
}
