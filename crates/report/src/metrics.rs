//! The metrics collector: every field of `proxysched/metrics/v1`, from the event stream alone.
//!
//! [`MetricsCollector`] is an [`EventSink`]; after the run, [`MetricsCollector::finish`] takes
//! the header the caller knows ([`RunInfo`]) and the invariant violations, and returns the
//! [`Metrics`] document whose JSON ([`Metrics::to_json`]) is the DESIGN.md contract. Every
//! field's exact definition is in docs/metrics.md; the short form is on each field below.
//!
//! Determinism: tasks come out sorted by pid and all arithmetic is integer, so the same events
//! give byte-identical JSON.
//!
//! Cost: no map lookup per event. A task's state is found through a vector indexed by pid
//! (pids above [`DIRECT_PIDS`] go through a `BTreeMap`, which the model never hands out), the
//! per-CPU state through vectors indexed by CPU. Memory per task is bounded however long the
//! run: each distribution is a [`Dist`], exact while it holds at most
//! [`crate::dist::EXACT_SAMPLES`] samples and an HDR histogram after that (see
//! [`crate::dist`] for what stays exact).

use std::collections::BTreeMap;

use crate::dist::Dist;

use kernel::tracepoints::{Event, EventKind, EventSink, Pid, PrevState, TaskRef};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use sim::{CpuId, Nanos};
use uapi::{Comm, Policy, TraceMarker};
use workload::Mark;

/// The schema string of the metrics document.
pub const SCHEMA: &str = "proxysched/metrics/v1";

/// The `end_reason` values the schema allows.
/// `violation` extends the four values of DESIGN.md: the run stopped at a violated invariant
/// (exit code 4), and `invariant_violations` says which. `workload_failed` extends them too:
/// the workload stopped itself as rt-app would (`exit(EXIT_FAILURE)` after a refused system
/// call; exit code 5).
pub const END_REASONS: [&str; 6] = [
    "exited",
    "duration",
    "deadlock",
    "stall",
    "violation",
    "workload_failed",
];

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
/// An empty distribution is all zeros with `count` 0. The collector builds it from a
/// [`Dist`]; [`Hist::from_samples`] is the per-sample definition it must agree with.
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
    /// SCHED_DEADLINE reservation `[runtime, deadline, period]` (ns) as set with
    /// `sched_setattr()`; absent from the JSON for other policies. Extension of the v1 schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dl_params_ns: Option<[Nanos; 3]>,
    /// Time of its `sched_process_exit`; `None` (JSON null) if it never exited.
    pub exit_ns: Option<Nanos>,
    /// When its rt-app work was done: the end of its last loop (`rtapp_loop: event=end`
    /// before `rtapp_task: event=end`), or the task-end marker if it ran no loop; `None` if it
    /// never finished. rt-app resets the thread to SCHED_OTHER after this point, so this is
    /// the time to compare across protocols, not `exit_ns`. Extension of the v1 schema.
    pub done_ns: Option<Nanos>,
    /// Sum of the intervals it was `next` of a `sched_switch` until the next switch on that CPU.
    pub runtime_ns: Nanos,
    /// Time others executed on its scheduling context (Proxy Execution); 0 until proxy events.
    pub donated_ns: Nanos,
    /// `sched_waking` → its next switch-in.
    pub wakeup_latency_ns: Hist,
    /// Sleeping-lock waits: `LockContended` → `LockAcquired` of the task (mutex slow path,
    /// rt_mutex block).
    pub lock_wait_ns: Hist,
    /// rt-app loop: `rtapp_loop: event=start` → the matching `event=end`.
    pub loop_ns: Hist,
    /// SCHED_DEADLINE instances still runnable after their absolute deadline
    /// (`DlDeadlineMiss` records; definition in docs/metrics.md).
    pub deadline_misses: u64,
    /// Times the task was throttled for exhausting (or yielding) its DL budget (`DlThrottle`
    /// records). Extension of the v1 schema.
    pub dl_throttles: u64,
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

/// One task's raw samples ([`MetricsCollector::samples`]), in the order they completed (in a
/// distribution that left exact mode, in ascending order, each standing for its HDR bucket:
/// [`Dist::samples`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSamples {
    pub pid: Pid,
    pub name: String,
    pub wakeup_latency_ns: Vec<u64>,
    pub lock_wait_ns: Vec<u64>,
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

/// Attributes of a `sched_setattr`: policy name, prio, nice, DL reservation.
type Attrs = (&'static str, i32, i32, Option<[Nanos; 3]>);

/// Per-task accumulation.
#[derive(Clone, Debug)]
struct TaskState {
    pid: Pid,
    /// `None` until `task_newtask` (reported as `<...>`).
    name: Option<Comm>,
    policy: &'static str,
    prio: i32,
    nice: i32,
    /// Attributes set by the latest `sched_setattr`, not yet reported: they become the
    /// reported ones at the next loop start (rt-app switches to SCHED_OTHER before exiting,
    /// which must not hide the policy the task ran its phases with).
    pending_attrs: Option<Box<Attrs>>,
    dl_params_ns: Option<[Nanos; 3]>,
    /// End of its latest completed loop (`rtapp_loop: event=end`).
    last_loop_end_ns: Option<Nanos>,
    done_ns: Option<Nanos>,
    /// A kernel thread (a CPU's stopper): its switches count, but it is not a workload task
    /// and gets no entry in `tasks`.
    kthread: bool,
    exit_ns: Option<Nanos>,
    runtime_ns: Nanos,
    /// Start of the sleeping-lock wait in progress (`LockContended`).
    lock_wait_since: Option<Nanos>,
    /// Completed waits: `LockContended` → `LockAcquired` of the same task.
    lock_wait: Dist,
    /// Time others executed on this task's scheduling context (closed proxy slices).
    donated_ns: Nanos,
    /// Time of the latest `sched_waking` not yet followed by a switch-in (cleared when the
    /// task switches out runnable: that waking cancelled a sleep instead of ending one).
    waking_since: Option<Nanos>,
    wakeup_latency: Dist,
    /// The open `rtapp_loop: event=start`: its time and (thread_loop, phase, phase_loop).
    loop_start: Option<(Nanos, (u32, u32, u32))>,
    loop_samples: Dist,
    nr_switches: u64,
    nr_migrations: u64,
    deadline_misses: u64,
    dl_throttles: u64,
}

impl TaskState {
    fn unknown(pid: Pid, prio: i32) -> Self {
        TaskState {
            pid,
            name: None,
            policy: "unknown",
            prio,
            nice: 0,
            pending_attrs: None,
            dl_params_ns: None,
            last_loop_end_ns: None,
            done_ns: None,
            lock_wait_since: None,
            lock_wait: Dist::default(),
            donated_ns: 0,
            kthread: false,
            exit_ns: None,
            runtime_ns: 0,
            waking_since: None,
            wakeup_latency: Dist::default(),
            loop_start: None,
            loop_samples: Dist::default(),
            nr_switches: 0,
            nr_migrations: 0,
            deadline_misses: 0,
            dl_throttles: 0,
        }
    }

    /// The task's entry of the metrics document.
    fn into_metrics(self) -> TaskMetrics {
        TaskMetrics {
            name: self.name_str().to_string(),
            pid: self.pid,
            policy: self.policy.to_string(),
            prio: self.prio,
            nice: self.nice,
            dl_params_ns: self.dl_params_ns,
            exit_ns: self.exit_ns,
            done_ns: self.done_ns,
            runtime_ns: self.runtime_ns,
            donated_ns: self.donated_ns,
            wakeup_latency_ns: self.wakeup_latency.hist(),
            lock_wait_ns: self.lock_wait.hist(),
            loop_ns: self.loop_samples.hist(),
            deadline_misses: self.deadline_misses,
            dl_throttles: self.dl_throttles,
            nr_switches: self.nr_switches,
            nr_migrations: self.nr_migrations,
        }
    }

    fn name_str(&self) -> &str {
        self.name.as_ref().map_or("<...>", Comm::as_str)
    }
}

/// Pids below this find their state through a vector indexed by pid (4 bytes per pid up to
/// the largest seen); larger ones through a map. Linux's `PID_MAX_LIMIT`.
pub const DIRECT_PIDS: Pid = 1 << 22;

/// Computes [`Metrics`] from the event stream.
#[derive(Clone, Debug, Default)]
pub struct MetricsCollector {
    /// Every task seen (pid 0, the idle tasks, excluded), in the order first seen.
    tasks: Vec<TaskState>,
    /// By pid below [`DIRECT_PIDS`]: 1 + the index into `tasks`, 0 if not seen.
    slot: Vec<u32>,
    /// By pid from [`DIRECT_PIDS`] on: the index into `tasks`.
    far_slot: BTreeMap<Pid, u32>,
    /// By CPU: the task switched in last and when (from `sched_switch`).
    cpu_curr: Vec<Option<(Pid, Nanos)>>,
    counters: Counters,
    /// By CPU: the donor of the proxy slice in progress and when it began.
    proxy_since: Vec<Option<(Pid, Nanos)>>,
    /// Time of the last record, to assert the stream is in time order.
    last_time_ns: Nanos,
}

impl MetricsCollector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The task's state, registering a task never introduced by `task_newtask`.
    #[inline]
    fn task(&mut self, pid: Pid, prio: i32) -> &mut TaskState {
        assert_ne!(pid, 0, "the idle task has no metrics");
        let found = if pid < DIRECT_PIDS {
            match self.slot.get(pid as usize) {
                Some(&i) if i != 0 => Some(i as usize - 1),
                _ => None,
            }
        } else {
            self.far_slot.get(&pid).map(|&i| i as usize)
        };
        let i = match found {
            Some(i) => i,
            None => self.register(pid, prio),
        };
        &mut self.tasks[i]
    }

    /// Adds a task first seen now; returns its index.
    #[cold]
    fn register(&mut self, pid: Pid, prio: i32) -> usize {
        let i = self.tasks.len();
        let index = u32::try_from(i).expect("fewer than 2^32 tasks");
        self.tasks.push(TaskState::unknown(pid, prio));
        if pid < DIRECT_PIDS {
            let p = pid as usize;
            if self.slot.len() <= p {
                self.slot.resize(p + 1, 0);
            }
            self.slot[p] = index + 1;
        } else {
            self.far_slot.insert(pid, index);
        }
        i
    }

    /// The per-CPU slot of `cpu` in `v`, grown as CPUs appear.
    #[inline]
    fn per_cpu(v: &mut Vec<Option<(Pid, Nanos)>>, cpu: CpuId) -> &mut Option<(Pid, Nanos)> {
        let c = cpu.idx();
        if v.len() <= c {
            v.resize(c + 1, None);
        }
        &mut v[c]
    }

    /// Linux: kernel/sched/core.c __schedule() → trace_sched_switch(); the interval accounting
    /// mirrors update_curr()'s `sum_exec_runtime` at the granularity of switches.
    ///
    /// Wakeup latency: a `sched_waking` seen while the task is still current is kept if the
    /// task then switches out asleep (the waker ran in the window between the sleeper's
    /// state change and its switch, so that waking is the one that ends the sleep), and
    /// dropped if it switches out runnable (`R`, `R+`: the waking cancelled the sleep).
    fn sched_switch(&mut self, t: Nanos, cpu: CpuId, prev: TaskRef, prev_state: PrevState, next: TaskRef) {
        let (prev, prev_prio, next, next_prio) = (prev.pid, prev.prio, next.pid, next.prio);
        let slot = Self::per_cpu(&mut self.cpu_curr, cpu);
        let last = slot.replace((next, t));
        if let Some((curr, since)) = last {
            if curr != 0 {
                self.task(curr, 0).runtime_ns += t - since;
            }
        }
        if prev != next {
            self.counters.context_switches += 1;
            if prev != 0 {
                let task = self.task(prev, prev_prio);
                task.nr_switches += 1;
                if matches!(prev_state, PrevState::Running | PrevState::Preempted) {
                    task.waking_since = None;
                }
            }
        }
        if next != 0 {
            let task = self.task(next, next_prio);
            if prev != next {
                if let Some(woken) = task.waking_since.take() {
                    task.wakeup_latency.record(t - woken);
                }
            }
        }
    }

    /// The raw samples behind each workload task's `wakeup_latency_ns` and `lock_wait_ns`
    /// distributions so far, by pid (kernel threads left out): what latency CDFs are drawn
    /// from (`report::plot`).
    pub fn samples(&self) -> Vec<TaskSamples> {
        let mut out: Vec<TaskSamples> = self
            .tasks
            .iter()
            .filter(|t| !t.kthread)
            .map(|t| TaskSamples {
                pid: t.pid,
                name: t.name_str().to_string(),
                wakeup_latency_ns: t.wakeup_latency.samples(),
                lock_wait_ns: t.lock_wait.samples(),
            })
            .collect();
        out.sort_unstable_by_key(|t| t.pid);
        out
    }

    /// Closes the intervals still open at `info.sim_time_ns` and builds the document.
    ///
    /// Panics on caller bugs: an `end_reason` outside [`END_REASONS`], a feature named twice,
    /// or a `sim_time_ns` before the last event.
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
        let open_proxy: Vec<(Pid, Nanos)> = self.proxy_since.iter().flatten().copied().collect();
        for (donor, since) in open_proxy {
            if donor != 0 {
                self.task(donor, 0).donated_ns += info.sim_time_ns - since;
            }
        }
        let open: Vec<(Pid, Nanos)> = self.cpu_curr.iter().flatten().copied().collect();
        for (pid, since) in open {
            if pid != 0 {
                self.task(pid, 0).runtime_ns += info.sim_time_ns - since;
            }
        }
        let mut tasks: Vec<TaskMetrics> = self
            .tasks
            .into_iter()
            .filter(|t| !t.kthread)
            .map(TaskState::into_metrics)
            .collect();
        tasks.sort_unstable_by_key(|t| t.pid);
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
    /// Checks the stream is in time order, counts the event, and hands it to the handler of
    /// its kind (events no metric reads are only counted).
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
                kthread,
            } => self.task_newtask(pid, comm, policy, prio, nice, kthread),
            EventKind::LockInit { .. } | EventKind::ProxyPark { .. } => {}
            EventKind::ProxyPick { .. } => self.counters.proxy_picks += 1,
            EventKind::ProxyMigrate { .. } => self.counters.proxy_migrations += 1,
            EventKind::ReturnMigrate { .. } => self.counters.return_migrations += 1,
            EventKind::ProxyBegin { donor, .. } => {
                *Self::per_cpu(&mut self.proxy_since, e.cpu) = Some((donor.pid, t));
            }
            EventKind::ProxyEnd { donor, .. } => self.proxy_end(t, e.cpu, donor.pid),
            EventKind::LockContended { pid, .. } => self.lock_contended(t, pid),
            EventKind::LockAcquired { pid, .. } => self.lock_acquired(t, pid),
            // An interrupted wait ends without the lock: no sample (the retry is a new wait).
            EventKind::LockInterrupted { pid, .. } => {
                if pid != 0 {
                    self.task(pid, 0).lock_wait_since = None;
                }
            }
            EventKind::SignalGenerate { .. } => {}
            EventKind::SchedSetattr {
                pid,
                policy,
                prio,
                nice,
                dl_params_ns,
            } => self.sched_setattr(pid, policy, prio, nice, dl_params_ns),
            EventKind::SchedSwitch {
                prev,
                prev_state,
                next,
            } => self.sched_switch(t, e.cpu, prev, prev_state, next),
            EventKind::SchedWaking { task, .. } => self.sched_waking(t, task),
            EventKind::SchedWakeup { task, .. } | EventKind::SchedWakeupNew { task, .. } => {
                if task.pid != 0 {
                    self.task(task.pid, task.prio);
                }
            }
            EventKind::SchedMigrateTask {
                task,
                orig_cpu,
                dest_cpu,
            } => self.sched_migrate_task(task, orig_cpu, dest_cpu),
            EventKind::SchedProcessExit { task } => self.sched_process_exit(t, task),
            EventKind::SchedPiSetprio { .. } => {}
            EventKind::DlThrottle { pid } => {
                if pid != 0 {
                    self.task(pid, 0).dl_throttles += 1;
                }
            }
            EventKind::DlDeadlineMiss { pid, .. } => {
                if pid != 0 {
                    self.task(pid, 0).deadline_misses += 1;
                }
            }
            EventKind::WorkqueueQueueWork { .. }
            | EventKind::WorkqueueExecuteStart { .. }
            | EventKind::WorkqueueExecuteEnd { .. } => {}
            EventKind::IpiSendCpu { .. } => self.counters.ipis += 1,
            EventKind::ContentionBegin { .. } | EventKind::ContentionEnd { .. } => {}
            EventKind::UserMark { pid, mark } => self.user_mark(t, pid, mark),
        }
    }
}

/// One handler per event kind that a metric reads; each ignores pid 0 (the idle tasks).
impl MetricsCollector {
    /// `task_newtask`: the task's name and its attributes at creation.
    fn task_newtask(&mut self, pid: Pid, comm: Comm, policy: Policy, prio: i32, nice: i32, kthread: bool) {
        if pid != 0 {
            let task = self.task(pid, prio);
            task.kthread = kthread;
            task.name = Some(comm);
            task.policy = policy.rtapp_name();
            task.prio = prio;
            task.nice = nice;
        }
    }

    /// `proxy_end`: the CPU's proxy slice closes; its length counts as donated by the donor.
    fn proxy_end(&mut self, t: Nanos, cpu: CpuId, donor: Pid) {
        if let Some((d, since)) = Self::per_cpu(&mut self.proxy_since, cpu).take() {
            assert_eq!(d, donor, "proxy slices must nest per CPU");
            if d != 0 {
                self.task(d, 0).donated_ns += t - since;
            }
        }
    }

    /// `lock_contended`: the task starts waiting for a lock.
    fn lock_contended(&mut self, t: Nanos, pid: Pid) {
        if pid != 0 {
            self.task(pid, 0).lock_wait_since = Some(t);
        }
    }

    /// `lock_acquired`: a wait begun at `lock_contended` ends, one `lock_wait_ns` sample.
    fn lock_acquired(&mut self, t: Nanos, pid: Pid) {
        if pid != 0 {
            let st = self.task(pid, 0);
            if let Some(since) = st.lock_wait_since.take() {
                st.lock_wait.record(t - since);
            }
        }
    }

    /// `sched_setattr`: rt-app threads start as SCHED_OTHER and switch themselves; the metrics
    /// report the attributes in effect at the task's last loop start, so these wait for it.
    fn sched_setattr(
        &mut self,
        pid: Pid,
        policy: Policy,
        prio: i32,
        nice: i32,
        dl_params_ns: Option<[Nanos; 3]>,
    ) {
        if pid != 0 {
            let task = self.task(pid, prio);
            task.pending_attrs = Some(Box::new((policy.rtapp_name(), prio, nice, dl_params_ns)));
        }
    }

    /// `sched_waking`: the start of a wakeup latency sample. The latest waking wins: an
    /// off-CPU sleeper gets exactly one (the state match fails for the next waker), so a
    /// second one means the first cancelled an earlier sleep.
    fn sched_waking(&mut self, t: Nanos, task: TaskRef) {
        if task.pid != 0 {
            self.task(task.pid, task.prio).waking_since = Some(t);
        }
    }

    /// `sched_migrate_task`: a migration when the CPU changes.
    fn sched_migrate_task(&mut self, task: TaskRef, orig_cpu: CpuId, dest_cpu: CpuId) {
        if orig_cpu != dest_cpu {
            self.counters.migrations += 1;
            if task.pid != 0 {
                self.task(task.pid, task.prio).nr_migrations += 1;
            }
        }
    }

    /// `sched_process_exit`: the first exit time counts; no wakeup is pending any more.
    fn sched_process_exit(&mut self, t: Nanos, task: TaskRef) {
        if task.pid != 0 {
            let st = self.task(task.pid, task.prio);
            st.exit_ns.get_or_insert(t);
            st.waking_since = None;
        }
    }

    /// An rt-app mark: a loop start applies the pending attributes and opens a loop sample,
    /// the matching loop end closes it, and the task's end is its last loop end.
    fn user_mark(&mut self, t: Nanos, pid: Pid, mark: TraceMarker) {
        if pid == 0 {
            return;
        }
        // The task's entry exists from its first marker on, an rt-app one or not.
        let st = self.task(pid, 0);
        let Some(mark) = Mark::parse(mark) else {
            return;
        };
        match mark {
            Mark::LoopStart {
                thread_loop,
                phase,
                phase_loop,
            } => {
                if let Some(attrs) = st.pending_attrs.take() {
                    let (policy, prio, nice, dl) = *attrs;
                    st.policy = policy;
                    st.prio = prio;
                    st.nice = nice;
                    st.dl_params_ns = dl;
                }
                st.loop_start = Some((t, (thread_loop, phase, phase_loop)));
            }
            Mark::LoopEnd {
                thread_loop,
                phase,
                phase_loop,
            } => {
                if let Some((start, id)) = st.loop_start.take() {
                    if id == (thread_loop, phase, phase_loop) {
                        st.loop_samples.record(t - start);
                    }
                }
                st.last_loop_end_ns = Some(t);
            }
            Mark::TaskEnd => {
                st.done_ns.get_or_insert(st.last_loop_end_ns.unwrap_or(t));
            }
            Mark::TaskStart => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::tracepoints::{Comm, IpiReason, TraceFlags};
    use uapi::Policy;

    /// Builds a stream in time order.
    #[derive(Default)]
    struct Stream(Vec<Event>);

    impl Stream {
        fn push(&mut self, time_ns: Nanos, cpu: CpuId, kind: EventKind) -> &mut Self {
            self.0.push(Event {
                time_ns,
                cpu,
                owner: 0,
                flags: TraceFlags::default(),
                kind,
            });
            self
        }
        fn newtask(&mut self, t: Nanos, pid: Pid, name: &str, policy: Policy, prio: i32) -> &mut Self {
            let nice = if prio >= 100 { prio - 120 } else { 0 };
            self.push(
                t,
                CpuId(0),
                EventKind::TaskNewtask {
                    pid,
                    comm: Comm::new(name),
                    policy,
                    prio,
                    nice,
                    kthread: false,
                },
            )
        }
        fn switch(&mut self, t: Nanos, cpu: CpuId, prev: Pid, state: PrevState, next: Pid) -> &mut Self {
            self.push(
                t,
                cpu,
                EventKind::SchedSwitch {
                    prev: TaskRef { pid: prev, prio: 120 },
                    prev_state: state,
                    next: TaskRef { pid: next, prio: 120 },
                },
            )
        }
        fn waking(&mut self, t: Nanos, pid: Pid) -> &mut Self {
            self.push(
                t,
                CpuId(0),
                EventKind::SchedWaking {
                    task: TaskRef { pid, prio: 120 },
                    target_cpu: CpuId(0),
                },
            )
        }
        fn mark(&mut self, t: Nanos, pid: Pid, mark: Mark) -> &mut Self {
            let mark = mark.marker();
            self.push(t, CpuId(0), EventKind::UserMark { pid, mark })
        }
        fn collect(&self, sim_time_ns: Nanos) -> Metrics {
            let mut c = MetricsCollector::new();
            for e in &self.0 {
                c.event(e);
            }
            c.finish(info(sim_time_ns), Vec::new())
        }
    }

    fn info(sim_time_ns: Nanos) -> RunInfo {
        RunInfo {
            workload: "demo".into(),
            cpus: 2,
            protocol: "proxy".into(),
            seed: 7,
            costs: "zero".into(),
            features: vec![("ttwu_queue".into(), true), ("is_blocked".into(), false)],
            sim_time_ns,
            end_reason: "exited".into(),
        }
    }

    const A: Pid = 1001;
    const B: Pid = 1002;

    #[test]
    fn hist_nearest_rank_and_mean() {
        assert_eq!(Hist::from_samples(&[]), Hist::default());
        let one = Hist::from_samples(&[42]);
        assert_eq!(
            one,
            Hist {
                count: 1,
                min: 42,
                p50: 42,
                p90: 42,
                p99: 42,
                max: 42,
                mean: 42
            }
        );
        let three = Hist::from_samples(&[30, 10, 20]);
        assert_eq!(
            three,
            Hist {
                count: 3,
                min: 10,
                p50: 20,
                p90: 30,
                p99: 30,
                max: 30,
                mean: 20
            }
        );
        let hundred: Vec<u64> = (1..=100).rev().collect();
        let h = Hist::from_samples(&hundred);
        assert_eq!(
            h,
            Hist {
                count: 100,
                min: 1,
                p50: 50,
                p90: 90,
                p99: 99,
                max: 100,
                mean: 51
            }
        );
        // 2 samples: p50 is the lower one (rank ceil(1.0) = 1), mean 1.5 rounds half up.
        let two = Hist::from_samples(&[2, 1]);
        assert_eq!((two.p50, two.p90, two.mean), (1, 2, 2));
        // No overflow on huge samples.
        let big = Hist::from_samples(&[u64::MAX, u64::MAX]);
        assert_eq!(big.mean, u64::MAX);
    }

    #[test]
    fn runtime_sums_switch_intervals_and_closes_open_ones_at_the_end() {
        let m = Stream::default()
            .newtask(0, A, "a", Policy::Normal, 120)
            .newtask(0, B, "b", Policy::Fifo, 89)
            .switch(100, CpuId(0), 0, PrevState::Running, A)
            .switch(300, CpuId(0), A, PrevState::Sleeping, 0)
            .switch(400, CpuId(1), 0, PrevState::Running, B)
            .switch(450, CpuId(1), B, PrevState::Preempted, A)
            .switch(500, CpuId(0), 0, PrevState::Running, B)
            .collect(1000);
        let a = m.task(A).expect("a");
        let b = m.task(B).expect("b");
        assert_eq!(a.runtime_ns, 200 + 550);
        assert_eq!(b.runtime_ns, 50 + 500);
        assert_eq!(a.nr_switches, 1);
        assert_eq!(b.nr_switches, 1);
        assert_eq!(m.counters.context_switches, 5);
        assert_eq!(m.counters.events, 7);
        assert_eq!((a.policy.as_str(), a.prio, a.nice), ("SCHED_OTHER", 120, 0));
        assert_eq!((b.policy.as_str(), b.prio), ("SCHED_FIFO", 89));
        assert_eq!(a.exit_ns, None);
    }

    #[test]
    fn wakeup_latency_from_waking_to_switch_in() {
        let m = Stream::default()
            .newtask(0, A, "a", Policy::Normal, 120)
            .switch(0, CpuId(0), 0, PrevState::Running, A)
            // Woken in the window before its sleeping switch-out: that waking counts (40).
            .waking(10, A)
            .switch(20, CpuId(0), A, PrevState::Sleeping, 0)
            .switch(50, CpuId(0), 0, PrevState::Running, A)
            // Woken while current, then preempted runnable: the sleep was cancelled.
            .waking(60, A)
            .switch(70, CpuId(0), A, PrevState::Preempted, B)
            .switch(90, CpuId(0), B, PrevState::Sleeping, A)
            // Cancelled again, keeps running, then really sleeps: only the later waking (10).
            .waking(100, A)
            .switch(200, CpuId(0), A, PrevState::Sleeping, 0)
            .waking(1_000, A)
            .switch(1_010, CpuId(0), 0, PrevState::Running, A)
            .collect(2_000);
        let h = m.task(A).expect("a").wakeup_latency_ns;
        assert_eq!(
            h,
            Hist {
                count: 2,
                min: 10,
                p50: 10,
                p90: 40,
                p99: 40,
                max: 40,
                mean: 25
            }
        );
    }

    #[test]
    fn migrations_count_only_real_moves() {
        let mut s = Stream::default();
        s.newtask(0, A, "a", Policy::Normal, 120);
        for (orig_cpu, dest_cpu) in [(0, 1), (1, 1), (1, 0)].map(|(o, d)| (CpuId(o), CpuId(d))) {
            s.push(
                5,
                CpuId(0),
                EventKind::SchedMigrateTask {
                    task: TaskRef { pid: A, prio: 120 },
                    orig_cpu,
                    dest_cpu,
                },
            );
        }
        s.push(
            6,
            CpuId(0),
            EventKind::IpiSendCpu {
                target_cpu: CpuId(1),
                reason: IpiReason::WakeList,
            },
        );
        let m = s.collect(10);
        assert_eq!(m.task(A).expect("a").nr_migrations, 2);
        assert_eq!(m.counters.migrations, 2);
        assert_eq!(m.counters.ipis, 1);
        assert_eq!(m.counters.events, 5);
    }

    #[test]
    fn loop_ns_pairs_matching_start_and_end_of_the_same_task() {
        let l = |thread_loop, phase_loop| (thread_loop, 0, phase_loop);
        let start = |(thread_loop, phase, phase_loop)| Mark::LoopStart {
            thread_loop,
            phase,
            phase_loop,
        };
        let end = |(thread_loop, phase, phase_loop)| Mark::LoopEnd {
            thread_loop,
            phase,
            phase_loop,
        };
        let m = Stream::default()
            .newtask(0, A, "a", Policy::Normal, 120)
            .newtask(0, B, "b", Policy::Normal, 120)
            .mark(1_000, A, Mark::TaskStart)
            .mark(1_000, A, start(l(0, 0)))
            .mark(2_000, B, start(l(0, 0)))
            .mark(5_000, A, end(l(0, 0)))
            .mark(5_000, A, start(l(0, 1)))
            // Mismatched end: dropped, and the open start is consumed.
            .mark(6_000, A, end(l(0, 2)))
            .mark(7_000, A, end(l(0, 1)))
            .mark(8_000, A, start(l(1, 0)))
            .mark(9_000, A, end(l(1, 0)))
            .collect(10_000);
        let a = m.task(A).expect("a").loop_ns;
        assert_eq!((a.count, a.min, a.max, a.mean), (2, 1_000, 4_000, 2_500));
        assert_eq!(m.task(B).expect("b").loop_ns.count, 0);
    }

    /// DONE is the last loop end before the task-end marker; the exit comes later, after
    /// rt-app's reset to SCHED_OTHER. A task that ran no loop is done at its end marker, and
    /// one that never got there is not done.
    #[test]
    fn done_ns_is_the_last_loop_end_not_the_exit() {
        let l = |thread_loop| Mark::LoopStart {
            thread_loop,
            phase: 0,
            phase_loop: 0,
        };
        let e = |thread_loop| Mark::LoopEnd {
            thread_loop,
            phase: 0,
            phase_loop: 0,
        };
        const C: Pid = 1003;
        let m = Stream::default()
            .newtask(0, A, "a", Policy::Normal, 120)
            .newtask(0, B, "b", Policy::Normal, 120)
            .newtask(0, C, "c", Policy::Normal, 120)
            .mark(100, A, l(0))
            .mark(200, A, e(0))
            .mark(300, A, l(1))
            .mark(450, A, e(1))
            .mark(460, A, Mark::TaskEnd)
            .push(
                900,
                CpuId(0),
                EventKind::SchedProcessExit {
                    task: TaskRef { pid: A, prio: 120 },
                },
            )
            .mark(950, B, Mark::TaskEnd)
            .mark(960, C, l(0))
            .mark(970, C, e(0))
            .collect(1_000);
        let a = m.task(A).expect("a");
        assert_eq!((a.done_ns, a.exit_ns), (Some(450), Some(900)));
        assert_eq!(m.task(B).expect("b").done_ns, Some(950));
        assert_eq!(m.task(C).expect("c").done_ns, None, "no task-end marker");
    }

    /// The reported attributes are those of the last loop start, DL reservation included.
    #[test]
    fn dl_params_come_with_the_attributes_of_the_loops() {
        let m = Stream::default()
            .newtask(0, A, "a", Policy::Normal, 120)
            .push(
                10,
                CpuId(0),
                EventKind::SchedSetattr {
                    pid: A,
                    policy: Policy::Deadline,
                    prio: -1,
                    nice: 0,
                    dl_params_ns: Some([3_000_000, 10_000_000, 20_000_000]),
                },
            )
            .mark(
                20,
                A,
                Mark::LoopStart {
                    thread_loop: 0,
                    phase: 0,
                    phase_loop: 0,
                },
            )
            .push(
                30,
                CpuId(0),
                EventKind::SchedSetattr {
                    pid: A,
                    policy: Policy::Normal,
                    prio: 120,
                    nice: 0,
                    dl_params_ns: None,
                },
            )
            .collect(40);
        let a = m.task(A).expect("a");
        assert_eq!((a.policy.as_str(), a.prio), ("SCHED_DEADLINE", -1));
        assert_eq!(a.dl_params_ns, Some([3_000_000, 10_000_000, 20_000_000]));
        let v: serde_json::Value = serde_json::from_str(&m.to_json()).expect("json");
        assert_eq!(v["tasks"][0]["dl_params_ns"][2], 20_000_000);
    }

    #[test]
    fn exit_and_unknown_tasks() {
        let m = Stream::default()
            .switch(0, CpuId(0), 0, PrevState::Running, 77)
            .push(
                40,
                CpuId(0),
                EventKind::SchedProcessExit {
                    task: TaskRef { pid: 77, prio: 120 },
                },
            )
            .switch(50, CpuId(0), 77, PrevState::Dead, 0)
            .collect(60);
        let t = m.task(77).expect("auto-registered");
        assert_eq!(
            (t.name.as_str(), t.policy.as_str(), t.prio),
            ("<...>", "unknown", 120)
        );
        assert_eq!((t.exit_ns, t.runtime_ns), (Some(40), 50));
        assert!(m.task(0).is_none(), "idle has no entry");
    }

    #[test]
    fn json_schema_key_order_and_golden() {
        let mut c = MetricsCollector::new();
        let mut s = Stream::default();
        s.newtask(0, A, "a", Policy::Fifo, 89)
            .switch(10, CpuId(0), 0, PrevState::Running, A);
        for e in &s.0 {
            c.event(e);
        }
        let violation = ViolationRecord {
            invariant: "rq_curr_on_rq".into(),
            time_ns: 10,
            detail: "cpu 0".into(),
        };
        let m = c.finish(info(100), vec![violation]);
        let expected = r#"{
  "schema": "proxysched/metrics/v1",
  "workload": "demo",
  "config": {
    "cpus": 2,
    "protocol": "proxy",
    "seed": 7,
    "costs": "zero",
    "features": {
      "ttwu_queue": true,
      "is_blocked": false
    }
  },
  "sim_time_ns": 100,
  "end_reason": "exited",
  "tasks": [
    {
      "name": "a",
      "pid": 1001,
      "policy": "SCHED_FIFO",
      "prio": 89,
      "nice": 0,
      "exit_ns": null,
      "done_ns": null,
      "runtime_ns": 90,
      "donated_ns": 0,
      "wakeup_latency_ns": {
        "count": 0,
        "min": 0,
        "p50": 0,
        "p90": 0,
        "p99": 0,
        "max": 0,
        "mean": 0
      },
      "lock_wait_ns": {
        "count": 0,
        "min": 0,
        "p50": 0,
        "p90": 0,
        "p99": 0,
        "max": 0,
        "mean": 0
      },
      "loop_ns": {
        "count": 0,
        "min": 0,
        "p50": 0,
        "p90": 0,
        "p99": 0,
        "max": 0,
        "mean": 0
      },
      "deadline_misses": 0,
      "dl_throttles": 0,
      "nr_switches": 0,
      "nr_migrations": 0
    }
  ],
  "counters": {
    "context_switches": 1,
    "migrations": 0,
    "proxy_picks": 0,
    "proxy_migrations": 0,
    "return_migrations": 0,
    "ipis": 0,
    "events": 2
  },
  "invariant_violations": [
    {
      "invariant": "rq_curr_on_rq",
      "time_ns": 10,
      "detail": "cpu 0"
    }
  ]
}"#;
        assert_eq!(m.to_json(), expected);
        let v: serde_json::Value = serde_json::from_str(&m.to_json()).expect("valid JSON");
        assert_eq!(v["schema"], SCHEMA);
    }

    #[test]
    fn compare_json_keeps_run_order() {
        let m = Stream::default().collect(0);
        let j = compare_json(&[("none", &m), ("pi", &m), ("proxy", &m)]);
        let (n, p, x) = (j.find("\"none\""), j.find("\"pi\""), j.find("\"proxy\": {"));
        assert!(n < p && p < x && n.is_some(), "{j}");
    }

    #[test]
    fn same_events_give_identical_json() {
        let mut s = Stream::default();
        s.newtask(0, A, "a", Policy::Normal, 120)
            .newtask(0, B, "b", Policy::Normal, 120);
        for i in 0..200u64 {
            let t = 100 + i * 100;
            let (cpu, pid) = (CpuId((i % 2) as u32), if i % 3 == 0 { A } else { B });
            s.waking(t, pid)
                .switch(t + 7 * (i % 5), cpu, 0, PrevState::Running, pid);
            s.switch(t + 50, cpu, pid, PrevState::Sleeping, 0);
        }
        assert_eq!(s.collect(100_000).to_json(), s.collect(100_000).to_json());
    }

    /// Tasks come out in pid order whatever the order they were first seen in, pids past the
    /// direct-indexed range included, and each keeps its own state.
    #[test]
    fn tasks_sorted_by_pid_across_direct_and_far_pids() {
        let far = DIRECT_PIDS + 5;
        let m = Stream::default()
            .newtask(0, far, "far", Policy::Normal, 120)
            .newtask(0, B, "b", Policy::Normal, 120)
            .newtask(0, A, "a", Policy::Fifo, 89)
            .switch(10, CpuId(3), 0, PrevState::Running, far)
            .switch(30, CpuId(3), far, PrevState::Sleeping, B)
            .waking(40, far)
            .switch(45, CpuId(3), B, PrevState::Sleeping, far)
            .collect(100);
        let pids: Vec<Pid> = m.tasks.iter().map(|t| t.pid).collect();
        assert_eq!(pids, vec![A, B, far]);
        let f = m.task(far).expect("far");
        assert_eq!(
            (f.name.as_str(), f.runtime_ns, f.nr_switches),
            ("far", 20 + 55, 1)
        );
        assert_eq!(f.wakeup_latency_ns.count, 1);
        assert_eq!(m.task(B).expect("b").runtime_ns, 15);
        assert_eq!(m.task(A).expect("a").runtime_ns, 0);
    }

    #[test]
    #[should_panic(expected = "end_reason")]
    fn bad_end_reason_is_a_caller_bug() {
        let mut i = info(0);
        i.end_reason = "crashed".into();
        MetricsCollector::new().finish(i, Vec::new());
    }
}
