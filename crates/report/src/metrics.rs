//! The metrics collector: every field of `proxysched/metrics/v1`, from the event stream alone.
//!
//! [`MetricsCollector`] is an [`EventSink`]; after the run, [`MetricsCollector::finish`] takes
//! the header the caller knows ([`RunInfo`]) and the invariant violations, and returns the
//! [`Metrics`] document whose JSON ([`Metrics::to_json`]) is the DESIGN.md contract. Every
//! field's exact definition is in docs/metrics.md; the short form is on each field below.
//!
//! Determinism: state lives in `BTreeMap`s keyed by pid and CPU, tasks come out sorted by pid,
//! and all arithmetic is integer, so the same events give byte-identical JSON.

use std::collections::BTreeMap;

use kernel::tracepoints::{Event, EventKind, EventSink, Pid, TaskRef};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use sim::user::Mark;
use sim::{CpuId, Nanos};

/// The schema string of the metrics document.
pub const SCHEMA: &str = "proxysched/metrics/v1";

/// The `end_reason` values the schema allows.
pub const END_REASONS: [&str; 4] = ["exited", "duration", "deadlock", "stall"];

/// What the caller knows about the run that the event stream does not carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunInfo {
    pub workload: String,
    pub cpus: u32,
    pub protocol: String,
    pub seed: u64,
    pub costs: String,
    /// Feature knobs in the order they are to be printed; names must be unique.
    pub features: Vec<(String, bool)>,
    /// Simulated time at the end of the run; intervals still open are closed here.
    pub sim_time_ns: Nanos,
    /// One of [`END_REASONS`].
    pub end_reason: String,
}

/// One entry of `invariant_violations`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ViolationRecord {
    pub invariant: String,
    pub time_ns: Nanos,
    pub detail: String,
}

/// A distribution summary `H` (all ns): nearest-rank percentiles, mean rounded half up.
/// An empty distribution is all zeros with `count` 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Hist {
    pub count: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: u64,
}

impl Hist {
    /// Summarises `samples` (any order).
    pub fn from_samples(samples: &[u64]) -> Hist {
        if samples.is_empty() {
            return Hist::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len() as u64;
        let sum: u128 = sorted.iter().map(|&x| u128::from(x)).sum();
        let n128 = u128::from(n);
        let mean = (sum + n128 / 2) / n128;
        Hist {
            count: n,
            min: sorted[0],
            p50: nearest_rank(&sorted, 50),
            p90: nearest_rank(&sorted, 90),
            p99: nearest_rank(&sorted, 99),
            max: sorted[sorted.len() - 1],
            mean: u64::try_from(mean).expect("mean of u64 samples fits u64"),
        }
    }
}

/// The nearest-rank percentile: the smallest sample such that at least `pct`% of the samples
/// are ≤ it, i.e. `sorted[ceil(pct·n/100) − 1]`.
fn nearest_rank(sorted: &[u64], pct: u64) -> u64 {
    assert!(!sorted.is_empty());
    assert!(pct > 0 && pct <= 100);
    let n = sorted.len() as u64;
    let rank = (pct * n).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

/// `config` of the metrics document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    pub cpus: u32,
    pub protocol: String,
    pub seed: u64,
    pub costs: String,
    /// Printed as a JSON object `{name: bool}` in this order.
    #[serde(serialize_with = "features_as_map")]
    pub features: Vec<(String, bool)>,
}

fn features_as_map<S: Serializer>(features: &[(String, bool)], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(features.len()))?;
    for (name, on) in features {
        map.serialize_entry(name, on)?;
    }
    map.end()
}

/// One entry of `tasks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskMetrics {
    /// `comm` from `task_newtask` (`<...>` if the task was never introduced).
    pub name: String,
    pub pid: Pid,
    /// rt-app policy name (`SCHED_OTHER`, `SCHED_FIFO`, ...; `unknown` if never introduced).
    pub policy: String,
    /// Effective prio at creation (`task_newtask`), kernel numbering.
    pub prio: i32,
    pub nice: i32,
    /// Time of its `sched_process_exit`; `None` (JSON null) if it never exited.
    pub exit_ns: Option<Nanos>,
    /// Sum of the intervals it was `next` of a `sched_switch` until the next switch on that CPU.
    pub runtime_ns: Nanos,
    /// Time others executed on its scheduling context (Proxy Execution); 0 until proxy events.
    pub donated_ns: Nanos,
    /// `sched_waking` → its next switch-in.
    pub wakeup_latency_ns: Hist,
    /// Time blocked on sleeping locks; empty until the stream carries mutex contention.
    pub lock_wait_ns: Hist,
    /// rt-app loop: `rtapp_loop: event=start` → the matching `event=end`.
    pub loop_ns: Hist,
    /// 0 until deadline events exist.
    pub deadline_misses: u64,
    /// Times switched out (`prev` of a `sched_switch` with `prev != next`).
    pub nr_switches: u64,
    /// `sched_migrate_task` records of it with `orig_cpu != dest_cpu`.
    pub nr_migrations: u64,
}

/// `counters` of the metrics document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// `sched_switch` records with `prev_pid != next_pid`.
    pub context_switches: u64,
    /// `sched_migrate_task` records with `orig_cpu != dest_cpu`.
    pub migrations: u64,
    pub proxy_picks: u64,
    pub proxy_migrations: u64,
    pub return_migrations: u64,
    /// `ipi_send_cpu` records.
    pub ipis: u64,
    /// Every record of the stream, of any kind.
    pub events: u64,
}

/// The whole `proxysched/metrics/v1` document. Field order is the JSON key order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Metrics {
    pub schema: String,
    pub workload: String,
    pub config: Config,
    pub sim_time_ns: Nanos,
    pub end_reason: String,
    pub tasks: Vec<TaskMetrics>,
    pub counters: Counters,
    pub invariant_violations: Vec<ViolationRecord>,
}

impl Metrics {
    /// Pretty JSON (two-space indent, keys in schema order), without a trailing newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("metrics serialise")
    }

    /// The task with this pid, if any.
    pub fn task(&self, pid: Pid) -> Option<&TaskMetrics> {
        self.tasks.iter().find(|t| t.pid == pid)
    }
}

/// `compare --metrics`: `{ "<protocol>": M, ... }` in the order given, pretty JSON.
pub fn compare_json(runs: &[(&str, &Metrics)]) -> String {
    struct Runs<'a>(&'a [(&'a str, &'a Metrics)]);
    impl Serialize for Runs<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (name, m) in self.0 {
                map.serialize_entry(name, m)?;
            }
            map.end()
        }
    }
    for (i, (name, _)) in runs.iter().enumerate() {
        assert!(
            !runs[..i].iter().any(|(n, _)| n == name),
            "duplicate run name {name:?}"
        );
    }
    serde_json::to_string_pretty(&Runs(runs)).expect("metrics serialise")
}

/// Per-task accumulation.
#[derive(Clone, Debug)]
struct TaskState {
    name: String,
    policy: String,
    prio: i32,
    nice: i32,
    exit_ns: Option<Nanos>,
    runtime_ns: Nanos,
    /// The CPU it is current on (switched in and not yet switched out).
    on_cpu: Option<CpuId>,
    /// Time of the first `sched_waking` since it last went off-CPU, not yet followed by a
    /// switch-in.
    waking_since: Option<Nanos>,
    wakeup_latency: Vec<u64>,
    /// The open `rtapp_loop: event=start`: its time and (thread_loop, phase, phase_loop).
    loop_start: Option<(Nanos, (u32, u32, u32))>,
    loop_samples: Vec<u64>,
    nr_switches: u64,
    nr_migrations: u64,
}

impl TaskState {
    fn unknown(prio: i32) -> Self {
        TaskState {
            name: "<...>".to_string(),
            policy: "unknown".to_string(),
            prio,
            nice: 0,
            exit_ns: None,
            runtime_ns: 0,
            on_cpu: None,
            waking_since: None,
            wakeup_latency: Vec::new(),
            loop_start: None,
            loop_samples: Vec::new(),
            nr_switches: 0,
            nr_migrations: 0,
        }
    }
}

/// Computes [`Metrics`] from the event stream.
#[derive(Clone, Debug, Default)]
pub struct MetricsCollector {
    /// Every task seen (pid 0, the idle tasks, excluded).
    tasks: BTreeMap<Pid, TaskState>,
    /// Per CPU: the task switched in last and when (from `sched_switch`).
    cpu_curr: BTreeMap<CpuId, (Pid, Nanos)>,
    counters: Counters,
    /// Time of the last record, to assert the stream is in time order.
    last_time_ns: Nanos,
}

impl MetricsCollector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The task's state, registering a task never introduced by `task_newtask`.
    fn task(&mut self, pid: Pid, prio: i32) -> &mut TaskState {
        assert_ne!(pid, 0, "the idle task has no metrics");
        self.tasks
            .entry(pid)
            .or_insert_with(|| TaskState::unknown(prio))
    }

    /// Linux: kernel/sched/core.c __schedule() → trace_sched_switch(); the interval accounting
    /// mirrors update_curr()'s `sum_exec_runtime` at the granularity of switches.
    fn sched_switch(&mut self, t: Nanos, cpu: CpuId, prev: TaskRef, next: TaskRef) {
        let (prev, prev_prio, next, next_prio) = (prev.pid, prev.prio, next.pid, next.prio);
        if let Some((curr, since)) = self.cpu_curr.remove(&cpu) {
            if curr != 0 {
                let task = self.task(curr, 0);
                task.runtime_ns += t - since;
                task.on_cpu = None;
            }
        }
        if prev != next {
            self.counters.context_switches += 1;
            if prev != 0 {
                let task = self.task(prev, prev_prio);
                task.nr_switches += 1;
                task.on_cpu = None;
            }
        }
        self.cpu_curr.insert(cpu, (next, t));
        if next != 0 {
            let task = self.task(next, next_prio);
            task.on_cpu = Some(cpu);
            if prev != next {
                if let Some(woken) = task.waking_since.take() {
                    task.wakeup_latency.push(t - woken);
                }
            }
        }
    }

    /// Closes open intervals at `end_ns` and builds the document.
    pub fn finish(mut self, info: RunInfo, violations: Vec<ViolationRecord>) -> Metrics {
        assert!(
            END_REASONS.contains(&info.end_reason.as_str()),
            "end_reason {:?} is not one of {END_REASONS:?}",
            info.end_reason
        );
        for (i, (name, _)) in info.features.iter().enumerate() {
            assert!(
                !info.features[..i].iter().any(|(n, _)| n == name),
                "feature {name:?} listed twice"
            );
        }
        assert!(
            info.sim_time_ns >= self.last_time_ns,
            "sim_time_ns {} before the last event at {}",
            info.sim_time_ns,
            self.last_time_ns
        );
        let open: Vec<(Pid, Nanos)> = self.cpu_curr.values().copied().collect();
        for (pid, since) in open {
            if pid != 0 {
                self.task(pid, 0).runtime_ns += info.sim_time_ns - since;
            }
        }
        let tasks = self
            .tasks
            .into_iter()
            .map(|(pid, t)| TaskMetrics {
                name: t.name,
                pid,
                policy: t.policy,
                prio: t.prio,
                nice: t.nice,
                exit_ns: t.exit_ns,
                runtime_ns: t.runtime_ns,
                donated_ns: 0,
                wakeup_latency_ns: Hist::from_samples(&t.wakeup_latency),
                lock_wait_ns: Hist::default(),
                loop_ns: Hist::from_samples(&t.loop_samples),
                deadline_misses: 0,
                nr_switches: t.nr_switches,
                nr_migrations: t.nr_migrations,
            })
            .collect();
        Metrics {
            schema: SCHEMA.to_string(),
            workload: info.workload,
            config: Config {
                cpus: info.cpus,
                protocol: info.protocol,
                seed: info.seed,
                costs: info.costs,
                features: info.features,
            },
            sim_time_ns: info.sim_time_ns,
            end_reason: info.end_reason,
            tasks,
            counters: self.counters,
            invariant_violations: violations,
        }
    }
}

impl EventSink for MetricsCollector {
    fn event(&mut self, e: &Event) {
        assert!(
            e.time_ns >= self.last_time_ns,
            "event at {} after one at {}: the stream must be in time order",
            e.time_ns,
            self.last_time_ns
        );
        self.last_time_ns = e.time_ns;
        self.counters.events += 1;
        let t = e.time_ns;
        match e.kind {
            EventKind::TaskNewtask {
                pid,
                comm,
                policy,
                prio,
                nice,
            } => {
                if pid != 0 {
                    let task = self.task(pid, prio);
                    task.name = comm.as_str().to_string();
                    task.policy = policy.rtapp_name().to_string();
                    task.prio = prio;
                    task.nice = nice;
                }
            }
            EventKind::SchedSwitch { prev, next, .. } => {
                self.sched_switch(t, e.cpu, prev, next);
            }
            EventKind::SchedWaking { task, .. } => {
                if task.pid != 0 {
                    let st = self.task(task.pid, task.prio);
                    // A task woken while still current never left the CPU: no latency sample.
                    if st.on_cpu.is_none() && st.waking_since.is_none() {
                        st.waking_since = Some(t);
                    }
                }
            }
            EventKind::SchedWakeup { task, .. } | EventKind::SchedWakeupNew { task, .. } => {
                if task.pid != 0 {
                    self.task(task.pid, task.prio);
                }
            }
            EventKind::SchedMigrateTask {
                task,
                orig_cpu,
                dest_cpu,
            } => {
                if orig_cpu != dest_cpu {
                    self.counters.migrations += 1;
                    if task.pid != 0 {
                        self.task(task.pid, task.prio).nr_migrations += 1;
                    }
                }
            }
            EventKind::SchedProcessExit { task } => {
                if task.pid != 0 {
                    let st = self.task(task.pid, task.prio);
                    st.exit_ns.get_or_insert(t);
                    st.waking_since = None;
                }
            }
            EventKind::SchedPiSetprio { .. } => {}
            EventKind::IpiSendCpu { .. } => self.counters.ipis += 1,
            EventKind::ContentionBegin { .. } | EventKind::ContentionEnd { .. } => {}
            EventKind::UserMark { pid, mark } => {
                if pid != 0 {
                    let st = self.task(pid, 0);
                    match mark {
                        Mark::LoopStart {
                            thread_loop,
                            phase,
                            phase_loop,
                        } => {
                            st.loop_start = Some((t, (thread_loop, phase, phase_loop)));
                        }
                        Mark::LoopEnd {
                            thread_loop,
                            phase,
                            phase_loop,
                        } => {
                            if let Some((start, id)) = st.loop_start.take() {
                                if id == (thread_loop, phase, phase_loop) {
                                    st.loop_samples.push(t - start);
                                }
                            }
                        }
                        Mark::TaskStart | Mark::TaskEnd => {}
                    }
                }
            }
        }
    }
}
