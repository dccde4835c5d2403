//! Exploration: run one workload (or one generated workload per seed) under many schedules
//! and report the ones that break an invariant, with a file that replays each exactly.
//!
//! A *schedule* is one seed: the seed picks the workload (the swarm generator, when no
//! workload is given) and seeds the strategy that answers the machine's choices ([`random`],
//! [`pct`]); every decision is recorded, so a failure is written as a [`Case`] that
//! [`replay`] runs again byte for byte and [`shrink`] makes smaller. Invariants are checked
//! after every step (`Config::check_invariants`); the run watchdog reports deadlocks and
//! stalls. Seeds run in parallel on a rayon pool; `--shard I/N` keeps the seeds ≡ I mod N.

pub mod pct;
pub mod random;
pub mod replay;
pub mod shrink;
pub mod swarm;

use std::borrow::Cow;

use harness::{Choices, Failure, Flags};
use kernel::system::EndReason;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sim::{Bounds, ChoiceLog, ChoiceSource};

/// How the choices of a schedule are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Random,
    Pct,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "random" => Some(Strategy::Random),
            "pct" => Some(Strategy::Pct),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Random => "random",
            Strategy::Pct => "pct",
        }
    }

    /// The choice source of `seed` on a machine of `nr_cpus` CPUs.
    pub fn source(self, seed: u64, nr_cpus: usize, bounds: Bounds) -> Box<dyn ChoiceSource> {
        match self {
            Strategy::Random => Box::new(random::RandomSource::new(seed, bounds)),
            Strategy::Pct => Box::new(pct::PctSource::new(
                seed,
                nr_cpus,
                pct::DEFAULT_DEPTH,
                pct::DEFAULT_DECISIONS,
                bounds,
            )),
        }
    }
}

/// What an exploration runs.
#[derive(Debug)]
pub struct Explore {
    /// The workload given; None: the swarm generator.
    pub workload: Option<Given>,
    /// `--model`, `--feature`, `--protocol`, ... (`seed` is the schedule's; `check` is on).
    pub flags: Flags,
    pub strategy: Strategy,
    pub bounds: Bounds,
}

/// A workload given to the explorer, loaded once for all its seeds.
#[derive(Debug)]
pub struct Given {
    /// The file name, for messages.
    pub name: String,
    /// The JSON text, for the case files.
    pub text: String,
    /// What the text loads into.
    pub loaded: workload::Workload,
}

impl Given {
    /// Load `text` (named `name` in messages); bad input is an error.
    pub fn load(name: &str, text: &str) -> Result<Given, Failure> {
        let loaded = workload::load(name, text)?;
        Ok(Given {
            name: name.to_string(),
            text: text.to_string(),
            loaded,
        })
    }
}

/// What a schedule found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    /// A deadlock or a stall (exit 3).
    Liveness,
    /// An invariant violation or a model assertion (exit 4).
    Safety,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Liveness => 3,
            Verdict::Safety => 4,
        }
    }
}

/// One failing schedule: everything needed to run it again (`DIR/<seed>.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub schema: String,
    /// The workload's file name (as messages name it) and its text.
    pub workload_name: String,
    pub workload: String,
    pub flags: CaseFlags,
    pub strategy: Strategy,
    pub seed: u64,
    pub bounds: CaseBounds,
    /// The recorded decisions, in order ([`sim::ChoiceLog`]), written as one string of
    /// space-separated numbers to keep the file small.
    #[serde(with = "choices_text")]
    pub choices: Vec<u64>,
    /// The first invariant that failed (or `deadlock`, `stall`, `model_assertion`).
    pub invariant: String,
    pub time_ns: u64,
    pub verdict: Verdict,
    /// The message the run printed, replay line included.
    pub message: String,
    /// The command that replays this case (the message's replay line).
    pub replay: String,
}

mod choices_text {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let text: Vec<String> = v.iter().map(u64::to_string).collect();
        s.serialize_str(&text.join(" "))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        let text = String::deserialize(d)?;
        text.split_whitespace()
            .map(|t| {
                t.parse()
                    .map_err(|_| D::Error::custom(format!("choices: expected numbers, got `{t}`")))
            })
            .collect()
    }
}

pub const CASE_SCHEMA: &str = "proxysched/explore-case/v1";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseFlags {
    pub cpus: Option<usize>,
    pub protocol: Option<String>,
    pub model: Option<String>,
    pub features: Vec<String>,
    pub costs: Option<String>,
    pub duration: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseBounds {
    pub ipi_ns: u64,
    pub timer_ns: u64,
    pub spin_ns: u64,
}

impl From<Bounds> for CaseBounds {
    fn from(b: Bounds) -> Self {
        CaseBounds {
            ipi_ns: b.ipi_ns,
            timer_ns: b.timer_ns,
            spin_ns: b.spin_ns,
        }
    }
}

impl From<CaseBounds> for Bounds {
    fn from(b: CaseBounds) -> Self {
        Bounds {
            ipi_ns: b.ipi_ns,
            timer_ns: b.timer_ns,
            spin_ns: b.spin_ns,
        }
    }
}

impl Case {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a case serializes") + "\n"
    }

    /// A case file; `file` names it in the error.
    pub fn from_json(file: &str, text: &str) -> Result<Case, Failure> {
        let c: Case = serde_json::from_str(text).map_err(|e| {
            Failure::BadInput(format!(
                "{file}:{}:{}: error: expected an explore case file ({CASE_SCHEMA}): {e}",
                e.line(),
                e.column()
            ))
        })?;
        if c.schema != CASE_SCHEMA {
            return Err(Failure::BadInput(format!(
                "{file}:1:1: error: expected schema {CASE_SCHEMA}, got `{}`",
                c.schema
            )));
        }
        Ok(c)
    }

    pub fn run_flags(&self) -> Flags {
        Flags {
            file: self.workload_name.clone(),
            cpus: self.flags.cpus,
            protocol: self.flags.protocol.clone(),
            model: self.flags.model.clone(),
            features: self.flags.features.clone(),
            costs: self.flags.costs.clone(),
            seed: Some(self.seed),
            duration: self.flags.duration,
            check: true,
            slow_paths: false,
            full_checks: false,
        }
    }
}

/// The result of one schedule.
#[derive(Clone, Debug)]
pub struct SeedResult {
    pub seed: u64,
    pub verdict: Verdict,
    /// Machine steps taken.
    pub steps: u64,
    /// CPUs of the simulated machine.
    pub cpus: usize,
    /// Seconds this schedule took on the thread that ran it, by the clock [`Explore::run_seeds`]
    /// was given (0 from [`Explore::run_seed`]: this crate never reads the wall clock).
    pub thread_s: f64,
    /// For a failure: the case to write (its message names `replay`).
    pub case: Option<Case>,
    /// The rare paths this schedule reached.
    pub coverage: kernel::coverage::Coverage,
}

/// The outcome of running a workload text under a choice source: verdict, first failing
/// invariant, its time, the message (with `replay` as its replay line), steps, choices.
pub struct Ran {
    pub verdict: Verdict,
    pub invariant: String,
    pub time_ns: u64,
    pub message: String,
    pub steps: u64,
    /// Steps after which the per-step checks ran (`kernel::system::Outcome::checked_steps`).
    pub checked_steps: u64,
    pub choices: ChoiceLog,
    pub exit_code: u8,
    /// CPUs of the simulated machine.
    pub cpus: usize,
    /// How often the run took each rare path ([`kernel::coverage`]); empty after a panic.
    pub coverage: kernel::coverage::Coverage,
}

/// Run `text` under `flags` with `source`, recording the choices. `trace` receives the
/// tracepoint events when given (a trace writer). Bad input (a workload or flag the loader
/// refuses) is an error.
pub fn run_text(
    name: &str,
    text: &str,
    flags: &Flags,
    make_source: &dyn Fn(usize) -> Box<dyn ChoiceSource>,
    replay: &str,
    trace: Option<Box<dyn kernel::tracepoints::EventSink>>,
) -> Result<Ran, Failure> {
    let w = workload::load(name, text)?;
    run_workload(&w, flags, make_source, replay, trace)
}

/// [`run_text`] of a workload already loaded.
pub fn run_workload(
    w: &workload::Workload,
    flags: &Flags,
    make_source: &dyn Fn(usize) -> Box<dyn ChoiceSource>,
    replay: &str,
    trace: Option<Box<dyn kernel::tracepoints::EventSink>>,
) -> Result<Ran, Failure> {
    let (mut cfg, _costs) = harness::build_config(w, flags)?;
    cfg.check_invariants = true;
    let protocol = harness::default_protocol(w, flags)?;
    let cpus = cfg.nr_cpus;
    let choices = Choices {
        source: Some(make_source(cfg.nr_cpus)),
        record: true,
    };
    match harness::simulate_outcome(w, &cfg, protocol, trace, choices) {
        Ok((o, choices)) => {
            let (code, msg) = harness::outcome_exit(&o, replay);
            let (verdict, invariant, time_ns) = match o.end_reason {
                EndReason::Violation => {
                    let v = o.violations.first();
                    (
                        Verdict::Safety,
                        v.map_or("violation".to_string(), |v| v.invariant.clone()),
                        v.map_or(o.sim_time_ns, |v| v.time_ns),
                    )
                }
                EndReason::Deadlock | EndReason::Stall => (
                    Verdict::Liveness,
                    o.end_reason.as_str().to_string(),
                    o.sim_time_ns,
                ),
                _ => (Verdict::Pass, String::new(), o.sim_time_ns),
            };
            Ok(Ran {
                verdict,
                invariant,
                time_ns,
                message: msg.unwrap_or_default(),
                steps: o.steps,
                checked_steps: o.checked_steps,
                choices: choices.unwrap_or_default(),
                exit_code: code,
                cpus,
                coverage: o.coverage.clone(),
            })
        }
        Err(e @ Failure::ModelPanic(_)) => {
            let message = harness::with_replay(e, replay).to_string();
            Ok(Ran {
                verdict: Verdict::Safety,
                invariant: "model_assertion".to_string(),
                time_ns: 0,
                message,
                steps: 0,
                checked_steps: 0,
                choices: ChoiceLog::default(),
                exit_code: 4,
                cpus,
                coverage: Default::default(),
            })
        }
        Err(e) => Err(e),
    }
}

impl Explore {
    /// The model the swarm generates for (`--model`, v29 by default).
    fn model(&self) -> &str {
        self.flags.model.as_deref().unwrap_or("v29")
    }

    /// Run one schedule. `replay_of(seed)` is the replay line a failure's message carries.
    pub fn run_seed(&self, seed: u64, replay_of: &dyn Fn(u64) -> String) -> Result<SeedResult, Failure> {
        // A swarm workload is loaded from the generator's tree, which is the tree its text
        // parses into (positions included): the text is kept for a failure's case file.
        let swarm;
        let (name, text, w): (String, Cow<str>, _) = match &self.workload {
            Some(g) => (g.name.clone(), Cow::Borrowed(&g.text), &g.loaded),
            None => {
                let name = format!("swarm-{seed}.json");
                let (text, tree) = swarm::generate_tree(seed, self.model());
                swarm = workload::load_tree(&name, &tree)?;
                (name, Cow::Owned(text), &swarm)
            }
        };
        let mut flags = self.flags.clone();
        flags.file = name.clone();
        flags.seed = Some(seed);
        flags.check = true;
        let (strategy, bounds) = (self.strategy, self.bounds);
        let replay = replay_of(seed);
        let ran = run_workload(w, &flags, &|n| strategy.source(seed, n, bounds), &replay, None)?;
        let case = (ran.verdict != Verdict::Pass).then(|| Case {
            schema: CASE_SCHEMA.to_string(),
            workload_name: name,
            workload: text.into_owned(),
            flags: CaseFlags {
                cpus: flags.cpus,
                protocol: flags.protocol.clone(),
                model: flags.model.clone(),
                features: flags.features.clone(),
                costs: flags.costs.clone(),
                duration: flags.duration,
            },
            strategy,
            seed,
            bounds: self.bounds.into(),
            choices: ran.choices.choices.clone(),
            invariant: ran.invariant.clone(),
            time_ns: ran.time_ns,
            verdict: ran.verdict,
            message: ran.message.clone(),
            replay,
        });
        Ok(SeedResult {
            seed,
            verdict: ran.verdict,
            steps: ran.steps,
            cpus: ran.cpus,
            thread_s: 0.0,
            case,
            coverage: ran.coverage,
        })
    }

    /// Run `seeds` on the current rayon pool; results in seed order. `each` is called as
    /// each schedule finishes (from any thread, in any order: a progress bar). `clock` reads
    /// seconds from a fixed origin (the command line's wall clock) to time each schedule.
    pub fn run_seeds(
        &self,
        seeds: &[u64],
        replay_of: &(dyn Fn(u64) -> String + Sync),
        each: &(dyn Fn(&SeedResult) + Sync),
        clock: &(dyn Fn() -> f64 + Sync),
    ) -> Result<Vec<SeedResult>, Failure> {
        seeds
            .par_iter()
            .map(|&s| {
                let started = clock();
                let mut r = self.run_seed(s, replay_of)?;
                r.thread_s = clock() - started;
                each(&r);
                Ok(r)
            })
            .collect()
    }
}

/// The seeds `start..start+count` that shard `index` of `shards` runs (seed ≡ index mod
/// shards).
pub fn shard_seeds(start: u64, count: u64, index: u64, shards: u64) -> Vec<u64> {
    (start..start.saturating_add(count))
        .filter(|s| s % shards == index)
        .collect()
}

/// Parse `--shard I/N` (0 ≤ I < N).
pub fn parse_shard(s: &str) -> Option<(u64, u64)> {
    let (i, n) = s.split_once('/')?;
    let (i, n) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
    (n > 0 && i < n).then_some((i, n))
}

/// The `--format json` summary of a sweep; summaries of shards merge with [`Summary::merge`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema: String,
    pub strategy: String,
    pub seeds_run: u64,
    pub steps: u64,
    /// Wall-clock seconds summed over shards (the command line fills it in).
    pub wall_s: f64,
    pub schedules_per_s: f64,
    pub failures: Vec<SummaryFailure>,
    /// For each coverage mark ([`kernel::coverage`]): how many of the seeds reached it.
    /// Shards add up.
    #[serde(default)]
    pub coverage: std::collections::BTreeMap<String, u64>,
    /// Seeds and thread-seconds by the simulated machine's CPU count (the key, in decimal),
    /// so a rate can be read for machines of a given size: issue 9 counts schedules "on up
    /// to 4 CPUs". Shards add up.
    #[serde(default)]
    pub by_cpus: std::collections::BTreeMap<String, CpuBucket>,
}

/// One row of [`Summary::by_cpus`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuBucket {
    pub seeds: u64,
    /// Seconds the seeds took on the threads that ran them.
    pub thread_s: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryFailure {
    pub seed: u64,
    pub invariant: String,
    pub time_ns: u64,
    pub verdict: Verdict,
    pub file: Option<String>,
}

pub const SUMMARY_SCHEMA: &str = "proxysched/explore-summary/v1";

impl Summary {
    /// Count, for every mark, the seeds of `results` that reached it (every mark listed).
    pub fn add_coverage(&mut self, results: &[SeedResult]) {
        for mark in kernel::coverage::Mark::ALL {
            let seeds = results.iter().filter(|r| r.coverage.count(mark) > 0).count() as u64;
            *self.coverage.entry(mark.name().to_string()).or_default() += seeds;
        }
    }

    /// Count seeds and thread-seconds of `results` by CPU count.
    pub fn add_by_cpus(&mut self, results: &[SeedResult]) {
        for r in results {
            let b = self.by_cpus.entry(format!("{:02}", r.cpus)).or_default();
            b.seeds += 1;
            b.thread_s += r.thread_s;
        }
    }

    /// Schedules per thread-second over the machines of at most `cpus` CPUs (None when no
    /// such seed ran).
    pub fn rate_up_to(&self, cpus: usize) -> Option<f64> {
        let (n, t) = self
            .by_cpus
            .iter()
            .filter(|(k, _)| k.parse::<usize>().is_ok_and(|c| c <= cpus))
            .fold((0u64, 0.0f64), |(n, t), (_, b)| (n + b.seeds, t + b.thread_s));
        (n > 0 && t > 0.0).then(|| n as f64 / t)
    }

    pub fn exit_code(&self) -> u8 {
        self.failures
            .iter()
            .map(|f| f.verdict.exit_code())
            .max()
            .unwrap_or(0)
    }

    /// Merge the summaries of several shards: seeds and steps add, failures join in seed
    /// order, the rate is recomputed from the summed wall time per shard (so it is the rate
    /// of one shard's worth of cores, times the number of shards).
    pub fn merge(parts: &[Summary]) -> Summary {
        let mut m = Summary {
            schema: SUMMARY_SCHEMA.to_string(),
            strategy: parts.first().map(|p| p.strategy.clone()).unwrap_or_default(),
            ..Summary::default()
        };
        let mut rate = 0.0;
        for p in parts {
            m.seeds_run += p.seeds_run;
            m.steps += p.steps;
            m.wall_s += p.wall_s;
            rate += p.schedules_per_s;
            m.failures.extend(p.failures.iter().cloned());
            for (mark, n) in &p.coverage {
                *m.coverage.entry(mark.clone()).or_default() += n;
            }
            for (cpus, b) in &p.by_cpus {
                let e = m.by_cpus.entry(cpus.clone()).or_default();
                e.seeds += b.seeds;
                e.thread_s += b.thread_s;
            }
        }
        m.schedules_per_s = rate;
        m.failures.sort_by_key(|f| f.seed);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_seed_range() {
        let n = 5;
        let mut all: Vec<u64> = (0..n).flat_map(|i| shard_seeds(10, 37, i, n)).collect();
        all.sort_unstable();
        assert_eq!(all, (10..47).collect::<Vec<_>>());
        assert!(shard_seeds(10, 37, 2, n).iter().all(|s| s % 5 == 2));
        assert_eq!(parse_shard("2/5"), Some((2, 5)));
        assert_eq!(parse_shard("5/5"), None);
        assert_eq!(parse_shard("1/0"), None);
    }

    #[test]
    fn summaries_merge() {
        let f = |seed| SummaryFailure {
            seed,
            invariant: "I1".into(),
            time_ns: 1,
            verdict: Verdict::Liveness,
            file: None,
        };
        let a = Summary {
            seeds_run: 3,
            steps: 10,
            wall_s: 1.0,
            schedules_per_s: 3.0,
            failures: vec![f(4)],
            by_cpus: [
                (
                    "02".to_string(),
                    CpuBucket {
                        seeds: 2,
                        thread_s: 0.5,
                    },
                ),
                (
                    "08".to_string(),
                    CpuBucket {
                        seeds: 1,
                        thread_s: 0.5,
                    },
                ),
            ]
            .into(),
            ..Summary::default()
        };
        let b = Summary {
            seeds_run: 2,
            steps: 5,
            wall_s: 1.0,
            schedules_per_s: 2.0,
            failures: vec![f(1)],
            by_cpus: [(
                "04".to_string(),
                CpuBucket {
                    seeds: 2,
                    thread_s: 1.0,
                },
            )]
            .into(),
            ..Summary::default()
        };
        let m = Summary::merge(&[a, b]);
        assert_eq!((m.seeds_run, m.steps), (5, 15));
        assert_eq!(m.failures.iter().map(|f| f.seed).collect::<Vec<_>>(), vec![1, 4]);
        assert_eq!(m.exit_code(), 3);
        // Machines of at most 4 CPUs: 4 seeds in 1.5 thread-seconds; the 8-CPU one is out.
        assert_eq!(m.rate_up_to(4), Some(4.0 / 1.5));
        assert_eq!(m.rate_up_to(1), None);
        assert_eq!(m.by_cpus["02"].seeds, 2);
    }
}
