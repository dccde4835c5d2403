//! The swarm generator: deterministic per seed, every seed loads without warnings, the
//! guarantees the module documents hold on the loaded workload (no lock cycle, balanced
//! locks, DL admission, flushes that cannot deadlock, a finite length), and each knob shows
//! up in the workloads of a small seed range.
//!
//! The checks read the *loaded* workload, not the knobs, so a generator that claims a knob
//! but does not emit it fails them.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use uapi::{Policy, ResourceId};
use workload::generate::{knobs, swarm, swarm_tree, swarm_with, Options, MAX_CHAIN_DEPTH, MODELS};
use workload::{load, Event, LoopCount, WorkStepSpec, Workload};

fn loaded(seed: u64, model: &str, options: &Options) -> Workload {
    let text = swarm_with(seed, model, options);
    let name = format!("swarm-{seed}.json");
    let w = load(&name, &text).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
    let warnings: Vec<String> = w.warnings.iter().map(|x| x.render(&name)).collect();
    assert!(warnings.is_empty(), "seed {seed}: {warnings:?}\n{text}");
    w
}

/// What the lock events of a workload imply.
#[derive(Default)]
struct LockFacts {
    /// Nested acquisitions: (held, then taken, the taking task's single CPU if pinned to one).
    edges: Vec<(ResourceId, ResourceId, Option<u32>)>,
    /// Deepest nesting seen.
    max_depth: usize,
    /// A sleep with a mutex held (a thread or a work item).
    sleeping_owner: bool,
    /// Phases or items that end with a mutex held.
    unbalanced: Vec<String>,
    /// `flush_work` while holding a mutex that does not come before all of the item's.
    bad_flushes: Vec<String>,
}

/// The rank of a generated mutex name (`M3` → 3); the cycle's `X0`/`X1` have none.
fn rank(w: &Workload, m: ResourceId) -> Option<u32> {
    w.resources[m as usize].name.strip_prefix('M')?.parse().ok()
}

fn lock_facts(w: &Workload) -> LockFacts {
    let mut f = LockFacts::default();
    // Lowest rank each work item takes (u32::MAX: none).
    let item_min: Vec<u32> = w
        .settings
        .workqueues
        .items
        .iter()
        .map(|it| {
            it.steps
                .iter()
                .filter_map(|s| match *s {
                    WorkStepSpec::Lock { mutex } => rank(w, mutex),
                    _ => None,
                })
                .min()
                .unwrap_or(u32::MAX)
        })
        .collect();
    for t in &w.tasks {
        for p in &t.phases {
            let cpus = p.cpus.as_ref().or(t.cpus.as_ref());
            let single = cpus.filter(|c| c.len() == 1).map(|c| c[0]);
            let mut held: Vec<ResourceId> = Vec::new();
            for e in &p.events {
                match e.event {
                    Event::Lock { mutex } => {
                        for &h in &held {
                            f.edges.push((h, mutex, single));
                        }
                        held.push(mutex);
                        f.max_depth = f.max_depth.max(held.len());
                    }
                    Event::Unlock { mutex } => {
                        let i = held
                            .iter()
                            .rposition(|&h| h == mutex)
                            .expect("unlock of a held mutex");
                        held.remove(i);
                    }
                    Event::Sleep { .. } if !held.is_empty() => f.sleeping_owner = true,
                    Event::FlushWork { item } => {
                        let max_held = held.iter().filter_map(|&h| rank(w, h)).max();
                        if max_held.is_some_and(|h| h >= item_min[item]) {
                            f.bad_flushes.push(format!("{}/{} {}", t.name, p.name, e.key));
                        }
                    }
                    _ => {}
                }
            }
            if !held.is_empty() {
                f.unbalanced.push(format!("{}/{}", t.name, p.name));
            }
        }
    }
    for it in &w.settings.workqueues.items {
        let mut held: Vec<ResourceId> = Vec::new();
        for s in &it.steps {
            match *s {
                WorkStepSpec::Lock { mutex } => {
                    for &h in &held {
                        f.edges.push((h, mutex, None));
                    }
                    held.push(mutex);
                    f.max_depth = f.max_depth.max(held.len());
                }
                WorkStepSpec::Unlock { mutex } => {
                    let i = held
                        .iter()
                        .rposition(|&h| h == mutex)
                        .expect("unlock of a held mutex");
                    held.remove(i);
                }
                WorkStepSpec::Sleep { .. } if !held.is_empty() => f.sleeping_owner = true,
                _ => {}
            }
        }
        if !held.is_empty() {
            f.unbalanced.push(format!("work item {}", it.name));
        }
    }
    f
}

/// Whether the lock-order graph has a cycle.
fn has_cycle(edges: &[(ResourceId, ResourceId, Option<u32>)]) -> bool {
    let mut next: BTreeMap<ResourceId, BTreeSet<ResourceId>> = BTreeMap::new();
    for &(a, b, _) in edges {
        next.entry(a).or_default().insert(b);
    }
    // 0 unvisited, 1 on the path, 2 done.
    fn visit(
        n: ResourceId,
        next: &BTreeMap<ResourceId, BTreeSet<ResourceId>>,
        mark: &mut BTreeMap<ResourceId, u8>,
    ) -> bool {
        match mark.get(&n) {
            Some(1) => return true,
            Some(2) => return false,
            _ => {}
        }
        mark.insert(n, 1);
        for &m in next.get(&n).into_iter().flatten() {
            if visit(m, next, mark) {
                return true;
            }
        }
        mark.insert(n, 2);
        false
    }
    let mut mark = BTreeMap::new();
    next.keys().any(|&n| visit(n, &next, &mut mark))
}

/// Longest path of nested-lock edges whose tasks are each pinned to one CPU, all different:
/// a blocked-on chain that must cross CPUs.
fn longest_chain_across_cpus(edges: &[(ResourceId, ResourceId, Option<u32>)]) -> usize {
    fn extend(at: ResourceId, used: &mut Vec<u32>, edges: &[(ResourceId, ResourceId, Option<u32>)]) -> usize {
        let mut best = 0;
        for &(a, b, cpu) in edges {
            let Some(cpu) = cpu else { continue };
            if a != at || used.contains(&cpu) {
                continue;
            }
            used.push(cpu);
            best = best.max(1 + extend(b, used, edges));
            used.pop();
        }
        best
    }
    let starts: BTreeSet<ResourceId> = edges.iter().map(|&(a, _, _)| a).collect();
    starts
        .into_iter()
        .map(|s| extend(s, &mut Vec::new(), edges))
        .max()
        .unwrap_or(0)
}

#[test]
fn same_seed_same_text_and_seeds_differ() {
    for model in MODELS {
        for seed in [0, 1, 17, 99, u64::MAX] {
            assert_eq!(
                swarm(seed, model),
                swarm(seed, model),
                "seed {seed} model {model}"
            );
        }
    }
    let texts: BTreeSet<String> = (0..50).map(|s| swarm(s, "v29")).collect();
    assert_eq!(texts.len(), 50, "50 seeds give 50 different workloads");
    // The header names the seed and the model.
    assert!(swarm(7, "next").starts_with("/* proxysched swarm workload: seed 7, model next."));
}

/// The tree the generator hands over with its text is the tree the parser reads from that
/// text, every position included (the explorer loads it without parsing), and it loads into
/// the same workload.
#[test]
fn the_generated_tree_is_the_parsed_text_positions_included() {
    for model in MODELS {
        for cycles in [false, true] {
            for seed in 0..60 {
                let (text, tree) = swarm_tree(seed, model, &Options { cycles });
                let parsed = workload::json::parse(&text).expect("the text parses");
                assert!(parsed == tree, "seed {seed}, {model}, cycles {cycles}:\n{text}");
                let name = format!("swarm-{seed}.json");
                let from_tree = workload::load_tree(&name, &tree).expect("the tree loads");
                let from_text = load(&name, &text).expect("the text loads");
                assert_eq!(
                    format!("{from_tree:?}"),
                    format!("{from_text:?}"),
                    "seed {seed}, {model}"
                );
            }
        }
    }
}

#[test]
fn five_hundred_seeds_load_without_warnings_and_keep_the_guarantees() {
    for seed in 0..500 {
        let model = MODELS[seed as usize % MODELS.len()];
        let w = loaded(seed, model, &Options::default());
        let k = knobs(seed, model, &Options::default());
        let cpus = w.settings.cpus.expect("cpus is set");
        assert!((2..=16).contains(&cpus), "seed {seed}: {cpus} CPUs");
        assert_eq!(
            cpus, k.cpus as usize,
            "seed {seed}: the knobs describe the workload"
        );
        assert_eq!(w.duration_s, Some(1.0), "seed {seed}: one second cap");

        let f = lock_facts(&w);
        assert!(!has_cycle(&f.edges), "seed {seed}: lock cycle");
        assert!(
            f.unbalanced.is_empty(),
            "seed {seed}: unbalanced {:?}",
            f.unbalanced
        );
        assert!(
            f.bad_flushes.is_empty(),
            "seed {seed}: flushes that may deadlock {:?}",
            f.bad_flushes
        );
        assert!(f.max_depth <= 4, "seed {seed}: nesting {}", f.max_depth);

        // DL: admitted with room to spare, never pinned, valid parameters.
        let mut dl_util = 0.0;
        for t in w.threads.iter().filter(|t| t.attr.policy == Policy::Deadline) {
            let a = t.attr;
            assert!(
                a.dl_runtime_ns >= 50_000 && a.dl_period_ns >= 1_000_000,
                "seed {seed}: {a:?}"
            );
            assert!(a.dl_runtime_ns <= a.dl_deadline_ns && a.dl_deadline_ns <= a.dl_period_ns);
            assert!(t.cpus.is_none(), "seed {seed}: pinned DL thread {}", t.name);
            dl_util += a.dl_runtime_ns as f64 / a.dl_period_ns as f64;
        }
        assert!(
            dl_util <= 0.45 * cpus as f64 + 1e-9,
            "seed {seed}: DL utilisation {dl_util}"
        );

        // Ends by itself: every thread runs a finite number of loops.
        for t in &w.tasks {
            let finite = match t.thread_loop {
                LoopCount::Times(_) => t.phases.iter().all(|p| p.loop_count != LoopCount::Forever),
                LoopCount::Forever => false,
            };
            assert!(finite, "seed {seed}: task {} loops for ever", t.name);
        }
        assert!(w.threads.len() <= 26, "seed {seed}: {} threads", w.threads.len());
        // A flushed item always finds a worker: more workers per pool than items.
        let wq = &w.settings.workqueues;
        assert!(wq.items.len() <= 3, "seed {seed}");
        assert!(
            wq.workers_per_pool.unwrap_or(4) as usize > wq.items.len(),
            "seed {seed}"
        );
    }
}

#[test]
fn every_knob_appears_within_two_hundred_seeds() {
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    let mut max_chain = 0;
    let mut max_cpus = 0;
    for seed in 0..200 {
        let w = loaded(seed, "v29", &Options::default());
        let f = lock_facts(&w);
        let mut mark = |knob: &'static str, present: bool| {
            if present {
                *seen.entry(knob).or_default() += 1;
            }
        };
        let policies: Vec<Policy> = w.threads.iter().map(|t| t.attr.policy).collect();
        mark("deadline", policies.contains(&Policy::Deadline));
        mark("fifo", policies.contains(&Policy::Fifo));
        mark("rr", policies.contains(&Policy::Rr));
        mark("fair", policies.contains(&Policy::Normal));
        mark("nesting >= 3", f.max_depth >= 3);
        let chain = longest_chain_across_cpus(&f.edges);
        max_chain = max_chain.max(chain);
        mark("chain of 3 across CPUs", chain >= 3);
        mark(
            "affinity",
            w.tasks
                .iter()
                .any(|t| t.cpus.is_some() || t.phases.iter().any(|p| p.cpus.is_some())),
        );
        mark("sleeping owner", f.sleeping_owner);
        let events = || w.tasks.iter().flat_map(|t| &t.phases).flat_map(|p| &p.events);
        mark(
            "workqueues",
            !w.settings.workqueues.items.is_empty()
                && events().any(|e| matches!(e.event, Event::QueueWork { .. })),
        );
        mark(
            "flush_work",
            events().any(|e| matches!(e.event, Event::FlushWork { .. })),
        );
        mark("timers", events().any(|e| matches!(e.event, Event::Timer { .. })));
        mark("yield", events().any(|e| matches!(e.event, Event::Yield)));
        mark("phases", w.tasks.iter().any(|t| t.phases.len() > 1));
        mark(
            "phase policy change",
            w.tasks.iter().any(|t| t.phases.iter().any(|p| p.sched.is_some())),
        );
        mark("instances", w.tasks.iter().any(|t| t.instances > 1));
        mark("llc", w.settings.llc_size.is_some());
        mark("lock cycle", has_cycle(&f.edges));
        max_cpus = max_cpus.max(w.settings.cpus.unwrap_or(0));
    }
    for knob in [
        "deadline",
        "fifo",
        "rr",
        "fair",
        "nesting >= 3",
        "chain of 3 across CPUs",
        "affinity",
        "sleeping owner",
        "workqueues",
        "flush_work",
        "timers",
        "yield",
        "phases",
        "phase policy change",
        "instances",
        "llc",
    ] {
        assert!(
            seen.get(knob).copied().unwrap_or(0) >= 3,
            "{knob} in fewer than 3 of 200 seeds: {seen:?}"
        );
    }
    assert!(!seen.contains_key("lock cycle"), "cycles are off by default");
    assert_eq!(
        max_chain as u32, MAX_CHAIN_DEPTH,
        "the deepest ladder is reached across CPUs"
    );
    assert!(max_cpus > 8, "large machines come up too ({max_cpus})");
}

#[test]
fn cycles_only_when_asked_and_then_in_some_seeds() {
    let on = Options { cycles: true };
    let mut with_cycle = 0;
    for seed in 0..40 {
        let k = knobs(seed, "v29", &on);
        let w = loaded(seed, "v29", &on);
        let cyclic = has_cycle(&lock_facts(&w).edges);
        assert_eq!(
            cyclic, k.cycle,
            "seed {seed}: the cycle knob and the workload agree"
        );
        with_cycle += usize::from(cyclic);
        assert!(!knobs(seed, "v29", &Options::default()).cycle);
    }
    assert!(
        (5..=35).contains(&with_cycle),
        "about half the seeds: {with_cycle}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any seed, any model: loads without warnings, no lock cycle, balanced locks.
    #[test]
    fn any_seed_loads_clean(seed in any::<u64>(), model in 0usize..4) {
        let w = loaded(seed, MODELS[model], &Options::default());
        let f = lock_facts(&w);
        prop_assert!(!has_cycle(&f.edges));
        prop_assert!(f.unbalanced.is_empty());
        prop_assert!(f.bad_flushes.is_empty());
    }
}
