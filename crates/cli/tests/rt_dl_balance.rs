//! The spec's open problem O2 (chain migration and RT/DL balancing), made concrete by the
//! explorer: a donor that the proxy walk takes off its CPU (deactivated for a sleeping owner,
//! or moved to the owner's CPU) leaves that CPU through `proxy_resched_idle()`, so the next
//! pick balances from the idle class and no RT/DL pull runs. The CPU idles while RT work waits
//! behind a running task elsewhere, and `rt_dl_top_n_running` fails. The series (v29 and the
//! later tree) does this; the proposal `proxy_leave_pull` runs the pull.

mod common;

use common::bin::{run, scenario, tmp};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `run --check` of scenarios/proxy_leave_pull.json with extra arguments: exit code and stderr.
fn check(extra: &[&str]) -> (Option<i32>, String) {
    let path = scenario("proxy_leave_pull.json");
    let mut args = vec!["run", path.as_str(), "--check"];
    args.extend_from_slice(extra);
    let o = run(&args);
    (o.status.code(), text(&o.stderr))
}

/// v29 (the default): after the donor migration at 9.137 ms CPU 1 idles and t0-0 waits on
/// CPU 0 behind t1-4 past the 2 ms bound (exit 4, at the exact time). With the proposal CPU 1
/// pulls and the run is clean; without proxy (`none`, `pi`) t0-1 blocks as an ordinary
/// sleeper, `balance_rt()` pulls, and the run is clean too.
#[test]
fn o2_a_migrated_donor_leaves_its_cpu_idle_without_the_rt_pull() {
    let (code, err) = check(&[]);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains(
            "rt_dl_top_n_running at 11472580 ns: t0-0-1000 (Rt prio 69) waits on cpu0 for \
             2335420 ns (bound 2002000 ns) while cpu1 runs the context of swapper/1-0"
        ),
        "{err}"
    );
    for extra in [
        &["--feature", "proxy_leave_pull=on"][..],
        &["--protocol", "none"][..],
        &["--protocol", "pi"][..],
    ] {
        let (code, err) = check(extra);
        assert_eq!(code, Some(0), "{extra:?}: {err}");
    }
}

/// The pull happens where the model says: with the proposal, CPU 1's pull asks CPU 0 (an
/// RT_PUSH_IPI) and CPU 0 pushes t0-0 to CPU 1 two microseconds after the migration.
#[test]
fn o2_with_the_proposal_cpu_0_pushes_the_waiting_owner_to_the_idled_cpu() {
    let trace = tmp("leave_pull.txt");
    let path = scenario("proxy_leave_pull.json");
    let o = run(&[
        "run",
        &path,
        "--feature",
        "proxy_leave_pull=on",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let t = std::fs::read_to_string(&trace).unwrap();
    let migrations: Vec<&str> = t
        .lines()
        .filter(|l| l.contains("sched_migrate_task: comm=t0-"))
        .filter(|l| l.contains(" 0.00913"))
        .collect();
    assert_eq!(migrations.len(), 2, "{migrations:#?}");
    assert!(migrations[0].contains("comm=t0-1") && migrations[0].contains("orig_cpu=1 dest_cpu=0"));
    assert!(migrations[1].contains("[000]") && migrations[1].contains("comm=t0-0"));
    assert!(migrations[1].contains("orig_cpu=0 dest_cpu=1"));
}

/// The explorer finds it in the swarm: sweep seeds 32875 (a donor deactivated for a sleeping
/// owner) and 55519 (a donor migration) fail `rt_dl_top_n_running` with the v29 defaults and
/// are clean with the proposal.
#[test]
fn o2_the_sweep_seeds_fail_under_v29_and_are_clean_with_the_proposal() {
    for seed in ["32875", "55519"] {
        for (feature, want) in [("proxy_leave_pull=off", 4), ("proxy_leave_pull=on", 0)] {
            let out = tmp(&format!("o2-{seed}-{feature}"));
            let o = run(&[
                "explore",
                "--seeds",
                "1",
                "--start",
                seed,
                "--duration",
                "0.02",
                "--jobs",
                "1",
                "--feature",
                feature,
                "--out",
                out.to_str().unwrap(),
                "--format",
                "json",
            ]);
            assert_eq!(
                o.status.code(),
                Some(want),
                "seed {seed} {feature}: {}",
                text(&o.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let failures = v["failures"].as_array().unwrap();
            if want == 4 {
                assert_eq!(failures.len(), 1);
                assert_eq!(failures[0]["invariant"], "rt_dl_top_n_running");
            } else {
                assert!(failures.is_empty(), "{failures:?}");
            }
        }
    }
}
