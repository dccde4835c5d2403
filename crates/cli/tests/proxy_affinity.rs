//! B-v29-10, the `curr_in_affinity` finding of the first 10^5-seed swarm sweep
//! (`proxysched explore --seeds 100000 --duration 0.02`): swarm seeds 7625, 40575, 60745 and
//! 79712 run a task on a CPU outside its affinity with the v29 defaults.
//!
//! The mechanism (see `proxy_needs_return` in `crates/kernel/src/sched/core.rs`): the chain
//! walk meets a link that chain migration moved off its allowed CPUs and that the unlocker has
//! just marked waking; it clears the mark and deactivates the link, but under DELAY_DEQUEUE
//! the dequeue is only delayed, so the link stays queued there, and its wakeup, which no
//! longer sees it blocked, wakes it in place. The v29 tree has the same code, so v29 keeps
//! the failure (a bug of the series, not of the model); the later tree's
//! `proxy_needs_return()` returns a task by where it sits (`return_when_away`, on in
//! `--model next`), which keeps the four seeds clean.
//!
//! Each seed runs the sweep's own schedule in process: the swarm workload generated for v29,
//! the random strategy with the explorer's perturbation bounds, `--duration 0.02`, every
//! invariant checked after every step, and periodic idle ticks (`nohz_idle=off`), the
//! default when the sweep ran: with tickless idle the same seeds are other schedules.

mod common;

use common::bin::run;

use std::cell::RefCell;
use std::rc::Rc;

use explore::{Strategy, Verdict};
use harness::Flags;
use kernel::coverage::Mark;
use kernel::tracepoints::{Event, EventKind, EventSink};

/// The sweep's failing seeds and the time (ns) of the v29 failure of each.
const SEEDS: [(u64, u64); 4] = [
    (7625, 16_912_617),
    (40575, 1_418_112),
    (60745, 16_614_284),
    (79712, 17_348_704),
];

/// The return migrations of a run: (time, pid, CPU it left).
#[derive(Clone, Default)]
struct Returns(Rc<RefCell<Vec<(u64, u32, usize)>>>);

impl EventSink for Returns {
    fn event(&mut self, e: &Event) {
        if let EventKind::ReturnMigrate { task, orig_cpu } = e.kind {
            self.0.borrow_mut().push((e.time_ns, task.pid, orig_cpu.idx()));
        }
    }
}

struct Outcome {
    verdict: Verdict,
    invariant: String,
    time_ns: u64,
    message: String,
    waking_links: u64,
    returns: Vec<(u64, u32, usize)>,
}

/// Sweep seed `seed` (its v29 swarm workload, random strategy) under `model` and `features`.
fn sweep_seed(seed: u64, model: Option<&str>, features: &[&str]) -> Outcome {
    let name = format!("swarm-{seed}.json");
    let text = explore::swarm::generate(seed, "v29").unwrap();
    let flags = Flags {
        file: name.clone(),
        model: model.map(str::to_string),
        features: std::iter::once("nohz_idle=off")
            .chain(features.iter().copied())
            .map(str::to_string)
            .collect(),
        seed: Some(seed),
        duration: Some(0.02),
        check: true,
        ..Flags::default()
    };
    let returns = Returns::default();
    let ran = explore::run_text(
        &name,
        &text,
        &flags,
        &|n| Strategy::Random.source(seed, n, sim::Bounds::EXPLORE),
        "replay",
        Some(Box::new(returns.clone())),
    )
    .unwrap();
    let returns = returns.0.borrow().clone();
    Outcome {
        verdict: ran.verdict,
        invariant: ran.invariant,
        time_ns: ran.time_ns,
        message: ran.message,
        waking_links: ran.coverage.count(Mark::ChainWakingLink),
        returns,
    }
}

/// The (CPU, pid) of a `curr_in_affinity` message: "cpuC runs COMM-PID outside [...]".
fn offender(message: &str) -> (usize, u32) {
    let at = message.find(": cpu").expect("a curr_in_affinity message") + ": cpu".len();
    let rest = &message[at..];
    let (cpu, rest) = rest.split_once(" runs ").unwrap();
    let task = rest.split_whitespace().next().unwrap();
    let pid = task.rsplit_once('-').unwrap().1;
    (cpu.parse().unwrap(), pid.parse().unwrap())
}

/// v29 as the series' tree has it: each sweep seed meets a waking chain link and later runs
/// a task outside its affinity, at the time the sweep reported.
#[test]
fn b_v29_10_the_sweep_seeds_run_a_task_outside_its_affinity_under_v29() {
    for (seed, time_ns) in SEEDS {
        let v29 = sweep_seed(seed, None, &[]);
        assert_eq!(v29.verdict, Verdict::Safety, "seed {seed}: {}", v29.message);
        assert_eq!(v29.invariant, "curr_in_affinity", "seed {seed}: {}", v29.message);
        assert_eq!(v29.time_ns, time_ns, "seed {seed}: {}", v29.message);
        assert!(v29.waking_links >= 1, "seed {seed}: the walk met no waking link");
    }
}

/// With `return_when_away` (otherwise v29) the same schedules reach the same window — the
/// walk meets the waking link — and are clean: the task v29 ran outside its affinity is
/// returned from that very CPU by its wakeup instead, before v29's failure.
#[test]
fn b_v29_10_return_when_away_sends_the_delayed_link_home() {
    for (seed, _) in SEEDS {
        let v29 = sweep_seed(seed, None, &[]);
        let (cpu, pid) = offender(&v29.message);
        let fixed = sweep_seed(seed, None, &["return_when_away=on"]);
        assert_eq!(fixed.verdict, Verdict::Pass, "seed {seed}: {}", fixed.message);
        assert!(fixed.waking_links >= 1, "seed {seed}: the window was not reached");
        assert!(
            fixed
                .returns
                .iter()
                .any(|&(t, p, from)| p == pid && from == cpu && t <= v29.time_ns),
            "seed {seed}: pid {pid} is not returned from cpu{cpu} before {} ns: {:?}",
            v29.time_ns,
            fixed.returns
        );
    }
}

/// `--model next` (the later tree) is clean on the four schedules; without its
/// `return_when_away` the seeds whose schedule still reaches the window fail again.
#[test]
fn b_v29_10_next_is_clean_and_fails_without_return_when_away() {
    let mut failing = vec![];
    for (seed, _) in SEEDS {
        let next = sweep_seed(seed, Some("next"), &[]);
        assert_eq!(next.verdict, Verdict::Pass, "seed {seed}: {}", next.message);
        let off = sweep_seed(seed, Some("next"), &["return_when_away=off"]);
        if off.verdict != Verdict::Pass {
            assert_eq!(off.invariant, "curr_in_affinity", "seed {seed}: {}", off.message);
            failing.push(seed);
        }
    }
    assert_eq!(failing, NEXT_OFF_FAILS);
}

/// The seeds of [`SEEDS`] that `--model next --feature return_when_away=off` fails.
const NEXT_OFF_FAILS: &[u64] = &[7625, 40575, 60745];

/// The shrunk case kept in `findings/` replays the v29 failure exactly.
#[test]
fn b_v29_10_the_kept_replay_still_fails_under_v29() {
    let case = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../findings/swarm-40575-curr-in-affinity.json");
    let o = run(&["replay", case.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("curr_in_affinity at 1420295 ns: cpu2 runs c2-2-1002 outside [3]"),
        "{err}"
    );
}
