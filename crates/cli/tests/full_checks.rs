//! Skipping the quiet steps changes no verdict: every scenario (under each lock protocol and
//! each `--model`), a range of explored swarm schedules, and the runs that do fail (a
//! mechanism switched off) give the same outcome — the same violations with the same text at
//! the same time and step, the same end, metrics and recorded choices — with the checker's
//! quiet-step skipping on (the default) and off (`Config::full_checks`,
//! `PROXYSCHED_FULL_CHECKS=1`). The skipping must also happen: the default runs check fewer
//! steps, or the comparison would prove nothing.

mod common;

use harness::{Choices, Flags};

/// Everything a checked run shows a user, as one string, and (steps, checked steps); None
/// when the scenario is bad input (the misuse scenarios that the loader refuses).
fn scenario_run(
    name: &str,
    text: &str,
    protocol: Option<&str>,
    model: &str,
    features: &[&str],
    full: bool,
) -> Option<(String, u64, u64)> {
    let w = workload::load(name, text).ok()?;
    let flags = Flags {
        file: name.to_string(),
        protocol: protocol.map(str::to_string),
        model: Some(model.to_string()),
        features: features.iter().map(|f| f.to_string()).collect(),
        check: true,
        full_checks: full,
        ..Flags::default()
    };
    let (mut cfg, costs) = harness::build_config(&w, &flags).ok()?;
    cfg.check_invariants = true;
    assert_eq!(cfg.full_checks, full);
    let p = harness::default_protocol(&w, &flags).ok()?;
    let r = harness::simulate_with(&w, &cfg, &costs, p, None, None, &mut |_| {}, Choices::default());
    Some(match r {
        Ok(r) => {
            let o = &r.outcome;
            let shown = format!(
                "{}\n{:?} {} steps {} {:?} {:?} {:?}",
                r.metrics.to_json(),
                o.end_reason,
                o.sim_time_ns,
                o.steps,
                o.violations,
                o.report,
                o.warnings
            );
            (shown, o.steps, o.checked_steps)
        }
        Err(e) => (e.to_string(), 0, 0),
    })
}

fn scenario(name: &str) -> String {
    std::fs::read_to_string(common::scenario_path(name)).unwrap()
}

/// Both ways must show the same; returns (steps, steps checked by default, checked fully)
/// and what was shown.
fn same_both_ways(
    name: &str,
    text: &str,
    protocol: Option<&str>,
    model: &str,
    features: &[&str],
) -> Option<(u64, u64, u64, String)> {
    let (quick, steps, checked) = scenario_run(name, text, protocol, model, features, false)?;
    let (full, full_steps, full_checked) =
        scenario_run(name, text, protocol, model, features, true).expect("loads both times");
    if quick != full {
        let line = quick
            .lines()
            .zip(full.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{name} ({protocol:?}, model {model}, {features:?}): quiet-step skipping and full \
             checks differ from line {}:\nskipping: {:?}\nfull:     {:?}",
            line + 1,
            quick.lines().nth(line),
            full.lines().nth(line)
        );
    }
    assert_eq!(steps, full_steps);
    assert_eq!(full_checked, full_steps, "{name}: the full checks skipped a step");
    assert!(checked <= full_checked, "{name}: skipping checked more steps");
    Some((steps, checked, full_checked, quick))
}

/// Runs of more steps than this are left out of the sweeps below (the demo, 7.6 M steps, would
/// take minutes fully checked; `proxy_swarm_4cpus.json` has a test of its own).
const STEPS_MAX: u64 = 200_000;

/// Every scenario under `protocol` (None: the scenario's own) and `model`.
fn compare_scenarios(protocol: Option<&str>, model: &str) {
    let (mut ran, mut long, mut steps, mut checked) = (0, 0, 0, 0);
    for (name, text) in common::all_scenarios() {
        // The step count first, unchecked cost: skip the scenarios too long to check twice.
        let Some((_, n, _)) = scenario_run(&name, &text, protocol, model, &[], false) else {
            continue;
        };
        if n > STEPS_MAX {
            long += 1;
            continue;
        }
        let (s, c, _, _) = same_both_ways(&name, &text, protocol, model, &[]).expect("loads");
        steps += s;
        checked += c;
        ran += 1;
    }
    assert!(ran >= 50, "only {ran} scenarios ran ({long} too long)");
    assert!(
        checked * 2 < steps,
        "the quiet steps were not skipped ({checked} of {steps} steps checked)"
    );
}

#[test]
fn every_scenario_gives_the_same_verdict_with_and_without_full_checks_v29() {
    compare_scenarios(None, "v29");
}

#[test]
fn every_scenario_gives_the_same_verdict_with_and_without_full_checks_v29_none_and_pi() {
    compare_scenarios(Some("none"), "v29");
    compare_scenarios(Some("pi"), "v29");
}

#[test]
fn every_scenario_gives_the_same_verdict_with_and_without_full_checks_7_1_and_next() {
    compare_scenarios(None, "7.1");
    compare_scenarios(None, "next");
}

/// The longest scenario under the sweeps' bound but one: proxy swarm on 4 CPUs (about 440 000
/// steps, donor migration across CPUs), under v29 with its own protocol.
#[test]
fn the_4_cpu_proxy_swarm_gives_the_same_verdict_with_and_without_full_checks() {
    let name = "proxy_swarm_4cpus.json";
    let (steps, checked, _, _) = same_both_ways(name, &scenario(name), None, "v29", &[]).expect("loads");
    assert!(
        steps > STEPS_MAX,
        "{name}: {steps} steps, now within the sweeps' bound"
    );
    assert!(checked < steps, "{name}: every one of {steps} steps checked");
}

/// The mechanism-off runs that fail: each must fail, with the expected invariant or end,
/// identically both ways.
#[test]
fn failing_scenarios_fail_identically_with_and_without_full_checks() {
    let cases: &[(&str, &str, &[&str], &str)] = &[
        (
            "proxy_missed_balance_long.json",
            "7.1",
            &["missed_balance_fix=off"],
            "rt_dl_top_n_running",
        ),
        (
            "workqueue_stall_is_blocked.json",
            "v29",
            &["is_blocked=off"],
            "Stall",
        ),
        ("stale_prev_injected.json", "v29", &["stale_prev_fix=off"], "I12"),
        // A per-step check that fails (the three above fail in a watch or in a path).
        (
            "proxy_iowait_repro.json",
            "next",
            &["iowait_fix=off"],
            "nr_iowait_balanced",
        ),
    ];
    for &(name, model, features, expect) in cases {
        let (_, _, _, shown) = same_both_ways(name, &scenario(name), None, model, features).expect("loads");
        assert!(
            shown.contains(expect),
            "{name} with {features:?} did not fail with {expect}:\n{}",
            shown.lines().last().unwrap_or("")
        );
    }
}

/// One explored swarm schedule both ways: what the explorer reports and records.
fn swarm_both_ways(strategy: explore::Strategy, seed: u64, features: &[&str]) -> (String, u64, u64) {
    let name = format!("swarm-{seed}.json");
    let text = explore::swarm::generate(seed, "v29").unwrap();
    let run = |full: bool| {
        let flags = Flags {
            file: name.clone(),
            seed: Some(seed),
            features: features.iter().map(|f| f.to_string()).collect(),
            check: true,
            full_checks: full,
            ..Flags::default()
        };
        let ran = explore::run_text(
            &name,
            &text,
            &flags,
            &|n| strategy.source(seed, n, sim::Bounds::EXPLORE),
            "replay",
            None,
        )
        .unwrap();
        let shown = format!(
            "{:?} {} {} steps {} {} {:?} {:?}",
            ran.verdict, ran.invariant, ran.time_ns, ran.steps, ran.message, ran.choices, ran.coverage
        );
        (shown, ran.steps, ran.checked_steps)
    };
    let (quick, steps, checked) = run(false);
    let (full, full_steps, full_checked) = run(true);
    assert_eq!(
        quick, full,
        "{strategy:?} seed {seed} {features:?}: outcome or choices differ"
    );
    assert_eq!(steps, full_steps);
    assert_eq!(full_checked, full_steps);
    (quick, steps, checked)
}

#[test]
fn explored_swarm_schedules_give_the_same_verdict_with_and_without_full_checks() {
    let (mut steps, mut checked) = (0, 0);
    for strategy in [explore::Strategy::Random, explore::Strategy::Pct] {
        for seed in 0..12u64 {
            let (_, s, c) = swarm_both_ways(strategy, seed, &[]);
            steps += s;
            checked += c;
        }
    }
    assert!(
        checked * 2 < steps,
        "the quiet steps were not skipped ({checked} of {steps} steps checked)"
    );
}

/// `--feature blocked_donor=off`: swarm seed 83 (random strategy) hands a lock past its
/// booster; found the same way, at the same step, both ways.
#[test]
fn a_failing_swarm_schedule_fails_identically_with_and_without_full_checks() {
    let (shown, _, _) = swarm_both_ways(explore::Strategy::Random, 83, &["blocked_donor=off"]);
    assert!(
        shown.starts_with("Safety proxy_handoff_to_booster "),
        "seed 83 with blocked_donor=off: {shown}"
    );
}
