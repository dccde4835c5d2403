//! Property tests: the loader never panics, whatever the text, and the programs of any
//! workload it accepts never panic either.

use proptest::prelude::*;
use uapi::{UserCtx, UserOp};
use workload::{load, DEMO};

/// A workload that uses most of the grammar, as a seed for mutations.
const RICH: &str = r#"{
    // every feature the loader knows
    "global": { "duration": 3, "default_policy": "SCHED_OTHER", "pi_enabled": false,
                "calibration": "CPU0", "frag": 2 },
    "proxysched": { "cpus": 4, "llc_size": 2, "seed": 7, "protocol": "proxy", "costs": "zero",
                    "features": { "is_blocked": "off", "x": true } },
    "resources": { "S": { "protocol": "pi" }, "C": { "type": "wait" } },
    "tasks": {
        "a": { "instance": 2, "delay": 100, "cpus": [0, 1], "loop": 3,
               "phases": {
                   "p0": { "loop": 2, "lock": "S", "run": 100, "unlock": "S",
                           "timer": { "ref": "T", "period": 1000, "mode": "absolute" } },
                   "p1": { "priority": 3, "cpus": [2], "runtime": 50, "barrier": "B",
                           "sleep": 10, "yield": "", "suspend": "" },
                   "p2": { "policy": "SCHED_FIFO", "priority": 20, "lock": "S",
                           "wait": { "ref": "C", "mutex": "S" }, "unlock": "S",
                           "timer1": { "ref": "unique", "period": 500 } },
               } },
        "b": { "policy": "SCHED_RR", "priority": 5, "barrier": "B", "resume": "a",
               "lock": "S", "sync": { "ref": "C", "mutex": "S" }, "signal": "C", "broad": "C",
               "unlock": "S", "mem": 10, "run": 7, "loop": 4 },
        "d": { "policy": "SCHED_DEADLINE", "dl-runtime": 100, "dl-period": 1000, "run": 50,
               "timer": { "ref": "unique", "period": 1000 } },
    },
}"#;

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "-1",
    "0",
    "99999999999999999999",
    "1.5",
    "1e3",
    "\"run\"",
    "\"runtime\"",
    "\"timer\"",
    "\"barrier\"",
    "\"lock\"",
    "true",
    "null",
    "\"SCHED_FIFO\"",
    "\"SCHED_DEADLINE\"",
    "\"phases\"",
    "\"loop\"",
    "//",
    "/*",
    "*/",
    "\n",
    "\"unique\"",
    "\"absolute\"",
    "-2147483648",
    "2147483647",
    "512",
    "511",
    "\"instance\"",
    "\"cpus\"",
    "[0]",
    "{}",
    "\"priority\"",
    "\"delay\"",
    "\"\"",
    "é",
    "\\u0000",
    "\"suspend\"",
    "\"proxysched\"",
];

/// Steps every program (at most 16 threads) for a while with a fake clock.
fn run_programs(text: &str) {
    let Ok(w) = load("m.json", text) else { return };
    for p in w.programs().iter_mut().take(16) {
        let mut now: u64 = 0;
        for _ in 0..300 {
            let op = p.next_op(&UserCtx::new(now, 0));
            now = match op {
                UserOp::Run { work_ns } => now.saturating_add(work_ns),
                UserOp::Sleep { ns } => now.saturating_add(ns),
                UserOp::SleepUntil { at_ns } => now.max(at_ns),
                UserOp::Exit => break,
                _ => now.saturating_add(1),
            };
        }
    }
}

#[derive(Clone, Debug)]
enum Edit {
    Delete(usize),
    Insert(usize, &'static str),
    Replace(usize, &'static str),
}

fn edit() -> impl Strategy<Value = Edit> {
    let token = proptest::sample::select(TOKENS);
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), token.clone()).prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<usize>(), token).prop_map(|(i, t)| Edit::Replace(i, t)),
    ]
}

fn apply(base: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for e in edits {
        match *e {
            Edit::Delete(i) if !chars.is_empty() => {
                chars.remove(i % chars.len());
            }
            Edit::Insert(i, t) => {
                let at = i % (chars.len() + 1);
                chars.splice(at..at, t.chars());
            }
            Edit::Replace(i, t) if !chars.is_empty() => {
                let at = i % chars.len();
                chars.splice(at..at + 1, t.chars());
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000), ..ProptestConfig::default() })]

    #[test]
    fn load_never_panics_on_arbitrary_strings(text in any::<String>()) {
        let _ = load("a.json", &text);
    }

    #[test]
    fn load_never_panics_on_json_like_strings(text in "[{}\\[\\]\":, 0-9a-z_./*\n-]{0,300}") {
        run_programs(&text);
    }

    #[test]
    fn mutated_workloads_never_panic(
        base in prop_oneof![Just(RICH), Just(DEMO)],
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        run_programs(&apply(base, &edits));
    }
}

#[test]
fn rich_seed_workload_loads_and_runs() {
    let w = load("rich.json", RICH).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(w.threads.len(), 4);
    run_programs(RICH);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let text = format!("{{\"tasks\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(load("deep.json", &text).is_err());
}

#[test]
fn single_edits_often_keep_the_workload_loadable() {
    // The mutation property only exercises the interpreter if mutants still load.
    let mut loaded = 0;
    let n = 400;
    for i in 0..n {
        let edit = match i % 3 {
            0 => Edit::Delete(i * 7919),
            1 => Edit::Insert(i * 104_729, TOKENS[i % TOKENS.len()]),
            _ => Edit::Replace(i * 1_299_709, TOKENS[i % TOKENS.len()]),
        };
        if load("m.json", &apply(RICH, &[edit])).is_ok() {
            loaded += 1;
        }
    }
    assert!(loaded > n / 10, "only {loaded} of {n} single-edit mutants load");
}
