//! The simulator's fast paths change no behaviour: every scenario, and a range of explored
//! swarm schedules with perturbations, give byte-identical traces, metrics, outcomes and
//! recorded choices with the fast paths on (the default) and off (`Config::fast_paths`,
//! `PROXYSCHED_SLOW_PATHS=1`). The fast paths must also be taken: the runs with them on take
//! fewer machine steps, or the comparison would prove nothing.

mod common;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use harness::{Choices, Flags};
use kernel::tracepoints::{Event, EventSink};

/// A trace writer's output, kept in memory.
#[derive(Clone, Default)]
struct Buf(Rc<RefCell<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything a run shows a user, as one string, and the machine steps it took (all, and
/// those begun in place by an await point); None when the scenario is bad input (the misuse
/// scenarios that the loader refuses).
fn scenario_run(name: &str, text: &str, protocol: &str, check: bool, slow: bool) -> Option<(String, Steps)> {
    let w = workload::load(name, text).ok()?;
    let flags = Flags {
        file: name.to_string(),
        protocol: Some(protocol.to_string()),
        check,
        slow_paths: slow,
        ..Flags::default()
    };
    let (mut cfg, costs) = harness::build_config(&w, &flags).ok()?;
    cfg.check_invariants = check;
    assert_eq!(cfg.fast_paths, !slow);
    let p = harness::default_protocol(&w, &flags).ok()?;
    let buf = Buf::default();
    let r = harness::simulate_with(
        &w,
        &cfg,
        &costs,
        p,
        Some(Box::new(buf.clone())),
        None,
        &mut |_| {},
        Choices::default(),
    );
    let trace = String::from_utf8(buf.0.borrow().clone()).expect("an ftrace text trace");
    Some(match r {
        Ok(r) => {
            let o = &r.outcome;
            let shown = format!(
                "{trace}\n{}\n{:?} {} {:?} {:?} {:?}",
                r.metrics.to_json(),
                o.end_reason,
                o.sim_time_ns,
                o.violations,
                o.report,
                o.warnings
            );
            (
                shown,
                Steps {
                    all: o.steps,
                    in_place: o.in_place_steps,
                },
            )
        }
        Err(e) => (format!("{trace}\n{e}"), Steps::default()),
    })
}

/// Runs of more steps than this are compared without the per-step invariant checks, which
/// would make them take minutes (the few long deadlock and demo scenarios); the checks'
/// deadlines are still compared on every other scenario and on the explored schedules.
const CHECKED_STEPS_MAX: u64 = 200_000;

/// Machine steps of a run: all of them, and those begun in place.
#[derive(Clone, Copy, Default)]
struct Steps {
    all: u64,
    in_place: u64,
}

/// Both ways must show the same; returns (steps with the fast paths, steps without).
fn same_both_ways(name: &str, text: &str, protocol: &str, check: bool) -> Option<(Steps, Steps)> {
    let (fast, f) = scenario_run(name, text, protocol, check, false)?;
    let (slow, s) = scenario_run(name, text, protocol, check, true).expect("loads both times");
    if fast != slow {
        let line = fast
            .lines()
            .zip(slow.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{name} ({protocol}, check {check}): fast and slow paths differ from line {}:\nfast: {:?}\nslow: {:?}",
            line + 1,
            fast.lines().nth(line),
            slow.lines().nth(line)
        );
    }
    assert!(
        f.all <= s.all,
        "{name}: the fast paths took more steps ({} > {})",
        f.all,
        s.all
    );
    assert_eq!(
        s.in_place, 0,
        "{name}: a step began in place with the fast paths off"
    );
    Some((f, s))
}

/// Every scenario under `protocol`, without and (where short enough) with the invariant
/// checks; returns (steps with the fast paths, steps without) summed over the scenarios,
/// after checking that steps began in place with the fast paths.
fn compare_scenarios(protocol: &str) -> (u64, u64) {
    let (mut fast_steps, mut slow_steps, mut ran, mut checked) = (0, 0, 0, 0);
    let mut in_place = 0;
    for (name, text) in common::all_scenarios() {
        let Some((f, s)) = same_both_ways(&name, &text, protocol, false) else {
            continue;
        };
        fast_steps += f.all;
        slow_steps += s.all;
        in_place += f.in_place;
        ran += 1;
        if s.all <= CHECKED_STEPS_MAX {
            same_both_ways(&name, &text, protocol, true).expect("loads");
            checked += 1;
        }
    }
    assert!(ran >= 50, "only {ran} scenarios ran");
    assert!(
        checked * 10 >= ran * 8,
        "only {checked} of {ran} scenarios ran checked"
    );
    assert!(
        in_place * 20 > fast_steps,
        "few steps began in place: {in_place} of {fast_steps}"
    );
    (fast_steps, slow_steps)
}

#[test]
fn every_scenario_is_the_same_with_and_without_fast_paths_plain_mutex() {
    let (fast, slow) = compare_scenarios("none");
    assert!(fast < slow, "no poll was folded ({fast} steps both ways)");
}

#[test]
fn every_scenario_is_the_same_with_and_without_fast_paths_proxy() {
    let (fast, slow) = compare_scenarios("proxy");
    assert!(fast < slow, "no poll was folded ({fast} steps both ways)");
}

/// Keeps every event's debug text (the explorer's runs take a sink, not a writer).
#[derive(Clone, Default)]
struct Events(Rc<RefCell<String>>);

impl EventSink for Events {
    fn event(&mut self, e: &Event) {
        let mut s = self.0.borrow_mut();
        s.push_str(&format!("{e:?}\n"));
    }
}

#[test]
fn explored_swarm_schedules_are_the_same_with_and_without_fast_paths() {
    let (mut fast_steps, mut slow_steps) = (0, 0);
    for strategy in [explore::Strategy::Random, explore::Strategy::Pct] {
        for seed in 0..6u64 {
            let name = format!("swarm-{seed}.json");
            let text = explore::swarm::generate(seed, "v29").unwrap();
            let run = |slow: bool| {
                let flags = Flags {
                    file: name.clone(),
                    seed: Some(seed),
                    check: true,
                    slow_paths: slow,
                    ..Flags::default()
                };
                let events = Events::default();
                let ran = explore::run_text(
                    &name,
                    &text,
                    &flags,
                    &|n| strategy.source(seed, n, sim::Bounds::EXPLORE),
                    "replay",
                    Some(Box::new(events.clone())),
                )
                .unwrap();
                let shown = format!(
                    "{:?} {} {} {} {:?} {:?}",
                    ran.verdict, ran.invariant, ran.time_ns, ran.message, ran.choices, ran.coverage
                );
                let ev = events.0.borrow().clone();
                (shown, ev, ran.steps)
            };
            let (fast, fast_ev, f) = run(false);
            let (slow, slow_ev, s) = run(true);
            assert_eq!(fast, slow, "{strategy:?} seed {seed}: outcome or choices differ");
            assert!(fast_ev == slow_ev, "{strategy:?} seed {seed}: the events differ");
            fast_steps += f;
            slow_steps += s;
        }
    }
    assert!(
        fast_steps < slow_steps,
        "no poll was folded ({fast_steps} steps both ways)"
    );
}
