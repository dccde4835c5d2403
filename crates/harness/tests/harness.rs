//! Run assembly: the same flags give the same run, a recorded run replays, a model panic is
//! a reported failure.

use harness::{Choices, Failure, Flags};
use sim::{ChoiceLog, Replay};

const W: &str = r#"{ "global": { "duration": 0.02 }, "proxysched": { "cpus": 2 },
  "tasks": {
    "a": { "instance": 3, "loop": -1, "lock": "S", "run": 300, "unlock": "S", "sleep": 200 },
    "b": { "policy": "SCHED_FIFO", "priority": 20, "loop": -1, "run": 500, "sleep": 700 } } }"#;

fn run(text: &str, flags: &Flags, choices: Choices) -> Result<harness::RunResult, Failure> {
    let w = workload::load("w.json", text).unwrap();
    let (cfg, costs) = harness::build_config(&w, flags)?;
    let p = harness::default_protocol(&w, flags)?;
    harness::simulate_with(&w, &cfg, &costs, p, None, None, &mut |_| {}, choices)
}

fn flags(seed: u64) -> Flags {
    Flags {
        file: "w.json".into(),
        seed: Some(seed),
        ..Flags::default()
    }
}

#[test]
fn recorded_ties_replay_to_the_same_metrics() {
    let rec = |seed| {
        run(
            W,
            &flags(seed),
            Choices {
                source: None,
                record: true,
            },
        )
        .unwrap()
    };
    let a = rec(3);
    assert_eq!(
        a.metrics.to_json(),
        rec(3).metrics.to_json(),
        "same seed, same run"
    );
    // The default source's decisions are not in the log (its keys come from the seed).
    let log = a.choices.clone().expect("recording");
    assert!(log.choices.is_empty());
    // A step-time source: a replayed log of choices gives the run that recorded it.
    let picks = ChoiceLog {
        choices: (0..5000).map(|i| (i * 7 % 3) as u64).collect(),
        ..ChoiceLog::default()
    };
    let replayed = |log: &ChoiceLog| {
        run(
            W,
            &flags(0),
            Choices {
                source: Some(Box::new(Replay::new(log))),
                record: true,
            },
        )
        .unwrap()
    };
    let first = replayed(&picks);
    let log = first.choices.clone().unwrap();
    assert!(log.ties > 10, "the workload ties ({} ties)", log.ties);
    let again = replayed(&log);
    assert_eq!(first.metrics.to_json(), again.metrics.to_json());
    assert_eq!(again.choices.unwrap().choices, log.choices);
    let other = replayed(&ChoiceLog::default());
    assert_ne!(
        first.metrics.to_json(),
        other.metrics.to_json(),
        "other tie choices, another schedule"
    );
}

#[test]
fn a_model_assertion_is_a_failure_with_its_replay_line() {
    let text = r#"{ "global": { "duration": 1 }, "proxysched": { "inject": { "model_assertion": true } },
                    "tasks": { "T": { "loop": 1, "run": 5000 } } }"#;
    let e = match run(text, &flags(0), Choices::default()) {
        Err(e) => e,
        Ok(_) => panic!("the injected assertion must fail the run"),
    };
    assert!(matches!(e, Failure::ModelPanic(_)), "{e}");
    let v = harness::with_replay(e, "proxysched run w.json --seed 0");
    assert_eq!(v.exit_code(), 4);
    let m = v.to_string();
    assert!(
        m.starts_with("model assertion failed: injected model assertion"),
        "{m}"
    );
    assert!(m.ends_with("\nreplay: proxysched run w.json --seed 0"), "{m}");
}

#[test]
fn bad_flags_name_what_was_expected() {
    let f = Flags {
        features: vec!["no_such=on".into()],
        ..flags(0)
    };
    let e = run(W, &f, Choices::default()).err().expect("refused");
    assert_eq!(e.exit_code(), 2);
    let f = Flags {
        model: Some("v30".into()),
        ..flags(0)
    };
    let e = run(W, &f, Choices::default()).err().expect("refused");
    assert!(e.to_string().contains("--model expects"), "{e}");
}
