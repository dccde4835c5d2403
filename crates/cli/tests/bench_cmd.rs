//! `proxysched bench`: the sizes it runs, the EDF set and its job count, bad sizes.
//! (Speed itself is measured by benchmarks, never asserted here.)

mod common;

use common::bin::{run, stderr};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Without a size: the header and the two default workloads, as before `--cpus`/`--tasks`.
#[test]
fn default_sizes_keep_their_format() {
    let o = run(&["bench", "--duration", "0.002"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("workload                 sim_s  events      steps"),
        "{out}"
    );
    assert!(lines[1].starts_with("4 CPUs, 32 tasks "), "{out}");
    assert!(lines[2].starts_with("64 CPUs, 1024 tasks "), "{out}");
}

/// `--cpus C --tasks N`: one line for that size, with events counted.
#[test]
fn one_size_on_request() {
    let o = run(&["bench", "--cpus", "3", "--tasks", "17", "--duration", "0.01"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let line = out.lines().nth(1).expect("a result line");
    assert!(line.starts_with("3 CPUs, 17 tasks "), "{out}");
    let events: u64 = line
        .split_whitespace()
        .nth(5)
        .expect("events")
        .parse()
        .expect("a number");
    assert!(events > 0, "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
}

/// `--edf`: jobs are counted, and the generated set is admitted (a refused `sched_setattr`
/// would end the run with exit 5).
#[test]
fn edf_set_counts_completed_jobs() {
    let o = run(&[
        "bench",
        "--edf",
        "--cpus",
        "2",
        "--tasks",
        "6",
        "--duration",
        "0.05",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("workload                 sim_s  jobs "), "{out}");
    let line = out.lines().nth(1).expect("a result line");
    assert!(line.starts_with("EDF 2 CPUs, 6 tasks "), "{out}");
    let jobs: u64 = line
        .split_whitespace()
        .nth(6)
        .expect("jobs")
        .parse()
        .expect("a number");
    // Periods 5, 22, 19, 16, 13 and 10 ms: in 50 ms at most 10 + 2 + 2 + 3 + 3 + 5 = 25
    // jobs end (a job ends when its timer fires), the last one of a task perhaps not.
    assert!((19..=25).contains(&jobs), "{out}");
}

/// Bad sizes are exit 2 with a message, never a panic.
#[test]
fn bad_sizes_are_exit_2() {
    for args in [
        &["bench", "--cpus", "0", "--tasks", "4"][..],
        &["bench", "--cpus", "4", "--tasks", "0"],
        &["bench", "--cpus", "4"],
        &["bench", "--duration", "-1"],
    ] {
        let o = run(args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains("error"), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
}

/// `--feature nohz_idle=on`: on 64 CPUs with 4 tasks the idle CPUs stop their ticks, so the
/// run takes far fewer machine steps (a count, not a time); a bad switch is exit 2.
#[test]
fn feature_switches_reach_the_mix() {
    let steps = |f: &str| -> u64 {
        let o = run(&[
            "bench",
            "--cpus",
            "64",
            "--tasks",
            "4",
            "--duration",
            "0.05",
            "--feature",
            f,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let out = stdout(&o);
        let line = out.lines().nth(1).expect("a result line").to_string();
        line.split_whitespace()
            .nth(6)
            .expect("steps")
            .parse()
            .expect("a number")
    };
    let (off, on) = (steps("nohz_idle=off"), steps("nohz_idle=on"));
    assert!(on * 4 < off, "nohz_idle=on {on} steps, off {off}");
    let o = run(&[
        "bench",
        "--cpus",
        "2",
        "--tasks",
        "2",
        "--feature",
        "nohz_idle=maybe",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected on or off"), "{}", stderr(&o));
}
