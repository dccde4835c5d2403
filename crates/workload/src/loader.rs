//! Counterpart: rt-app `src/rt-app_parse_config.c` (`parse_global`,
//! `parse_resources`, `parse_tasks`, `parse_task_data`, `parse_task_phase_data`,
//! `parse_task_event_data`, `parse_sched_data`).
//!
//! Turns the positioned JSON tree ([`crate::json`]) into a typed [`Workload`]. The rules follow
//! rt-app's parser (commit 518c338 as stored, cross-checked with `doc/tutorial.txt`):
//!
//! - Event keys match by prefix, in the order of [`EVENT_PREFIXES`] (`runtime` before `run`,
//!   `memrun` before `mem`); every repeat of a key is an event, in file order.
//! - A task without `"phases"` is its own single phase; its `loop` (default 1) is the phase
//!   count and the phase list then runs once if `loop` was given, forever if not. With
//!   `"phases"`, the task's `loop` (default -1 = forever) repeats the list, each phase's `loop`
//!   defaults to 1. A phase `loop` <= 0 never reaches its count, so it runs forever: -1 is
//!   rt-app's own idiom for that and passes silently; 0 and other negative counts are warned.
//! - Thread policy defaults to `global.default_policy`; `priority` is the nice value for
//!   SCHED_OTHER/BATCH/IDLE (default 0) and the RT priority for FIFO/RR (default 10).
//!   A phase has scheduling parameters only if it names `policy`, `priority` or `dl-*`; a phase
//!   that names only `priority` keeps the policy the thread has when the phase first runs.
//! - Resources are keyed by name *and* type (a mutex and a condition variable may share a
//!   name) and created on first use, after those declared in `"resources"`.
//! - A barrier's waiting counter starts at -1 and every `barrier` event naming it adds its
//!   task's instance count.
//!
//! Where rt-app would exit with "invalid config", we return a [`LoadError`] naming the line and
//! column and what was expected. Keys we do not model produce a [`Warning`]. rt-app's own
//! logging and host-setup globals (`calibration`, `logdir`, `log_basename`, `log_size`,
//! `ftrace`, `gnuplot`, `lock_pages`, `io_device`, `mem_buffer_size`, `cumulative_slack`) are
//! accepted without a warning: they change what rt-app writes or how it sets up the host, not
//! what the threads do.
//!
//! Deviation: legacy thread-level `runtime`/`period`/`deadline` are used only for
//! SCHED_DEADLINE (rt-app reads them for any policy, but only SCHED_DEADLINE uses them, and
//! `runtime` is also the `runtime` event).

use std::collections::BTreeSet;

use sim::cpumask::MAX_CPUS;
use uapi::{Policy, ResourceId, SchedAttr};

use crate::error::{LoadError, Warning};
use crate::json::{self, Kind, Member, Node, Pos};
use crate::program::RunCache;
use crate::spec::*;

/// Event key prefixes in matching order (rt-app `events[]` plus the newer `memrun` and
/// `sem_*`); `runtime` must precede `run` and `memrun` must precede `mem`.
pub const EVENT_PREFIXES: [&str; 20] = [
    "lock", "unlock", "wait", "signal", "broad", "sync", "sleep", "runtime", "run", "timer", "suspend",
    "resume", "memrun", "mem", "iorun", "yield", "barrier", "fork", "sem_post", "sem_wait",
];

/// The largest number of threads a workload may create (a bound on memory, not an rt-app
/// limit).
pub const MAX_THREADS: usize = 65_536;

/// The largest duration, loop count or priority rt-app can read (json-c `json_object_get_int`
/// is 32-bit).
const INT_MAX: i128 = i32::MAX as i128;

/// Globals rt-app uses for logging and host setup only; accepted silently.
const GLOBAL_HOST_KEYS: [&str; 10] = [
    "calibration",
    "logdir",
    "log_basename",
    "log_size",
    "ftrace",
    "gnuplot",
    "lock_pages",
    "io_device",
    "mem_buffer_size",
    "cumulative_slack",
];

/// Scheduling keys shared by thread and phase objects.
const SCHED_KEYS: [&str; 5] = ["policy", "priority", "dl-runtime", "dl-period", "dl-deadline"];

/// rt-app keys recognised but not modelled (warned).
const UNMODELLED_KEYS: [&str; 3] = ["util_min", "util_max", "nodes_membind"];

/// Most task groups a workload may have (declared and named together).
const MAX_TASKGROUPS: usize = 1024;

const PROTOCOLS: [&str; 3] = ["none", "pi", "proxy"];

/// proxysched's own event prefixes (workqueues). rt-app matches none of its prefixes on
/// them and ignores such keys, so a file using them still runs under rt-app.
pub const EXTENSION_EVENT_PREFIXES: [&str; 2] = ["queue_work", "flush_work"];

/// The event kind a key names, by prefix in rt-app's order, then our extensions.
pub fn event_prefix(key: &str) -> Option<&'static str> {
    EVENT_PREFIXES
        .iter()
        .chain(EXTENSION_EVENT_PREFIXES.iter())
        .copied()
        .find(|p| key.starts_with(p))
}

/// Loads an rt-app workload. `file_name` is used in messages and for [`Workload::name`].
pub fn load(file_name: &str, text: &str) -> Result<Workload, LoadError> {
    let root = json::parse(text).map_err(|e| LoadError {
        file: file_name.to_string(),
        line: e.pos.line,
        column: e.pos.column,
        message: e.message,
    })?;
    load_tree(file_name, &root)
}

/// [`load`] of a tree already read (or built with every position [`json::parse`] would
/// give it, as [`crate::generate::swarm_tree`] does): the same workload, the same errors.
pub fn load_tree(file_name: &str, root: &json::Node) -> Result<Workload, LoadError> {
    Loader::new(file_name).load_root(root)
}

type R<T> = Result<T, LoadError>;

/// Which of the two resource kinds; used as part of the resource key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rk {
    Mutex,
    Cond,
}

struct Loader<'f> {
    file: &'f str,
    warnings: Vec<Warning>,
    resources: Vec<ResourceSpec>,
    timers: Vec<TimerSpec>,
    barriers: Vec<BarrierSpec>,
    settings: Settings,
    /// The keys of `"tasks"` in file order, known before any task is parsed (a `signal`
    /// event may name a task defined after it).
    task_names: Vec<String>,
}

/// Thread-level scheduling, before it becomes a `SchedAttr`.
struct ParsedSched {
    policy: Option<Policy>,
    priority: Option<i32>,
    dl_runtime_us: u64,
    dl_deadline_us: u64,
    dl_period_us: u64,
    /// Where to point errors about these parameters.
    pos: Pos,
}

fn last<'n>(members: &'n [Member], key: &str) -> Option<&'n Member> {
    members.iter().rev().find(|m| m.key == key)
}

fn policy_from_name(name: &str) -> Option<Policy> {
    Some(match name {
        "SCHED_OTHER" => Policy::Normal,
        "SCHED_BATCH" => Policy::Batch,
        "SCHED_IDLE" => Policy::Idle,
        "SCHED_FIFO" => Policy::Fifo,
        "SCHED_RR" => Policy::Rr,
        "SCHED_DEADLINE" => Policy::Deadline,
        _ => return None,
    })
}

fn file_stem(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    base.strip_suffix(".json").unwrap_or(base).to_string()
}

impl<'f> Loader<'f> {
    fn new(file: &'f str) -> Self {
        Loader {
            file,
            warnings: Vec::new(),
            resources: Vec::new(),
            timers: Vec::new(),
            barriers: Vec::new(),
            settings: Settings::default(),
            task_names: Vec::new(),
        }
    }

    fn error(&self, pos: Pos, message: impl Into<String>) -> LoadError {
        LoadError {
            file: self.file.to_string(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }

    fn warn(&mut self, pos: Pos, key: &str, message: impl Into<String>) {
        self.warnings.push(Warning {
            line: pos.line,
            column: pos.column,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// Warns about every earlier occurrence of a property key that appears more than once
    /// (json-c keeps the last value).
    fn warn_repeats(&mut self, members: &[Member], is_property: impl Fn(&str) -> bool) {
        let mut last_index = std::collections::BTreeMap::new();
        for (i, m) in members.iter().enumerate() {
            last_index.insert(m.key.as_str(), i);
        }
        for (i, m) in members.iter().enumerate() {
            if is_property(&m.key) && last_index.get(m.key.as_str()) != Some(&i) {
                self.warn(
                    m.key_pos,
                    &m.key,
                    format!("\"{}\" is repeated; the last value is used", m.key),
                );
            }
        }
    }

    // ---- typed accessors -------------------------------------------------------------------

    fn object<'n>(&self, node: &'n Node, what: &str) -> R<&'n [Member]> {
        node.as_object().ok_or_else(|| {
            self.error(
                node.pos,
                format!("expected an object for {what}, found {}", node.describe()),
            )
        })
    }

    /// An integer in `min..=max`; `desc` says what kind of integer ("an integer number of
    /// microseconds").
    fn int(&self, m: &Member, desc: &str, min: i128, max: i128) -> R<i128> {
        let v = &m.value;
        let n = v.as_integer().ok_or_else(|| {
            self.error(
                v.pos,
                format!("expected {desc} for \"{}\", found {}", m.key, v.describe()),
            )
        })?;
        if n < min || n > max {
            return Err(self.error(
                v.pos,
                format!("expected {desc} from {min} to {max} for \"{}\", found {n}", m.key),
            ));
        }
        Ok(n)
    }

    fn micros(&self, m: &Member) -> R<u64> {
        Ok(self.int(m, "an integer number of microseconds", 0, INT_MAX)? as u64)
    }

    fn string<'n>(&self, m: &'n Member, desc: &str) -> R<&'n str> {
        m.value.as_str().ok_or_else(|| {
            self.error(
                m.value.pos,
                format!("expected {desc} for \"{}\", found {}", m.key, m.value.describe()),
            )
        })
    }

    fn boolean(&self, m: &Member) -> R<bool> {
        match m.value.kind {
            Kind::Bool(b) => Ok(b),
            _ => Err(self.error(
                m.value.pos,
                format!(
                    "expected true or false for \"{}\", found {}",
                    m.key,
                    m.value.describe()
                ),
            )),
        }
    }

    fn policy(&self, m: &Member) -> R<Policy> {
        let desc = "one of SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_FIFO, SCHED_RR, \
                    SCHED_DEADLINE";
        let name = self.string(m, desc)?;
        policy_from_name(name).ok_or_else(|| {
            self.error(
                m.value.pos,
                format!("expected {desc} for \"{}\", found \"{name}\"", m.key),
            )
        })
    }

    fn protocol(&self, m: &Member) -> R<String> {
        let desc = "one of \"none\", \"pi\", \"proxy\"";
        let p = self.string(m, desc)?;
        if PROTOCOLS.contains(&p) {
            Ok(p.to_string())
        } else {
            Err(self.error(
                m.value.pos,
                format!("expected {desc} for \"{}\", found \"{p}\"", m.key),
            ))
        }
    }

    /// `cpus`: a non-empty array of CPU ids below the workload's CPU count (or `MAX_CPUS`).
    fn cpus(&self, m: &Member) -> R<Vec<u32>> {
        let limit = self.settings.cpus.unwrap_or(MAX_CPUS);
        let Kind::Array(items) = &m.value.kind else {
            return Err(self.error(
                m.value.pos,
                format!(
                    "expected an array of CPU ids for \"{}\", found {}",
                    m.key,
                    m.value.describe()
                ),
            ));
        };
        if items.is_empty() {
            return Err(self.error(
                m.value.pos,
                format!(
                    "expected at least one CPU id in \"{}\", found an empty array",
                    m.key
                ),
            ));
        }
        let mut cpus = Vec::with_capacity(items.len());
        for item in items {
            match item.as_integer() {
                Some(c) if c >= 0 && c < limit as i128 => cpus.push(c as u32),
                _ => {
                    return Err(self.error(
                        item.pos,
                        format!(
                            "expected a CPU id from 0 to {} in \"{}\", found {}",
                            limit - 1,
                            m.key,
                            item.describe()
                        ),
                    ))
                }
            }
        }
        Ok(cpus)
    }

    // ---- resources ----------------------------------------------------------------------------

    fn find_resource(&self, name: &str, kind: Rk) -> Option<ResourceId> {
        self.resources
            .iter()
            .position(|r| {
                r.name == name
                    && matches!(
                        (&r.kind, kind),
                        (ResourceKind::Mutex { .. }, Rk::Mutex) | (ResourceKind::Cond, Rk::Cond)
                    )
            })
            .map(|i| i as ResourceId)
    }

    /// rt-app `get_resource_index()`: the resource with this name and type, created if new.
    fn resource(&mut self, name: &str, kind: Rk, internal: bool) -> ResourceId {
        if let Some(id) = self.find_resource(name, kind) {
            return id;
        }
        self.resources.push(ResourceSpec {
            name: name.to_string(),
            kind: match kind {
                Rk::Mutex => ResourceKind::Mutex {
                    protocol: None,
                    io: false,
                    interruptible: false,
                },
                Rk::Cond => ResourceKind::Cond,
            },
            internal,
        });
        (self.resources.len() - 1) as ResourceId
    }

    // ---- top level ----------------------------------------------------------------------------

    fn load_root(mut self, root: &Node) -> R<Workload> {
        let top = root.as_object().ok_or_else(|| {
            self.error(
                root.pos,
                format!("expected an object at the top level, found {}", root.describe()),
            )
        })?;
        self.warn_repeats(top, |_| true);
        for m in top {
            if !["global", "tasks", "resources", "proxysched"].contains(&m.key.as_str()) {
                self.warn(
                    m.key_pos,
                    &m.key,
                    format!("unknown top-level key \"{}\" ignored", m.key),
                );
            }
        }
        if let Some(m) = last(top, "proxysched") {
            self.proxysched(m)?;
        }
        let mut duration_s = None;
        if let Some(m) = last(top, "global") {
            duration_s = self.global(m)?;
        }
        if self.settings.protocol.is_none() && self.settings.pi_enabled {
            self.settings.protocol = Some("pi".to_string());
        }
        if let Some(m) = last(top, "resources") {
            self.declared_resources(m)?;
        }
        let Some(tasks_m) = last(top, "tasks") else {
            return Err(self.error(root.pos, "expected a \"tasks\" object at the top level"));
        };
        let tasks = self.tasks(tasks_m)?;
        // Work item bodies after the tasks: their mutexes are created in order of first use,
        // after the declared resources, like the tasks' own.
        if let Some(wq) = last(top, "proxysched")
            .and_then(|p| p.value.as_object())
            .and_then(|o| last(o, "workqueues"))
        {
            self.work_item_bodies(wq)?;
        }
        let threads = self.threads(&tasks)?;
        Ok(Workload {
            name: file_stem(self.file),
            duration_s,
            tasks,
            threads,
            resources: self.resources,
            timers: self.timers,
            barriers: self.barriers,
            settings: self.settings,
            warnings: self.warnings,
            run_cache: RunCache::default(),
        })
    }

    /// `"tasks"`: every task in file order; at least one, each name once.
    fn tasks(&mut self, tasks_m: &Member) -> R<Vec<TaskSpec>> {
        let tasks_obj = self.object(&tasks_m.value, "\"tasks\"")?;
        if tasks_obj.is_empty() {
            return Err(self.error(
                tasks_m.value.pos,
                "expected at least one task in \"tasks\", found an empty object",
            ));
        }
        self.task_names = tasks_obj.iter().map(|m| m.key.clone()).collect();
        let mut tasks = Vec::with_capacity(tasks_obj.len());
        let mut task_names = BTreeSet::new();
        for (i, m) in tasks_obj.iter().enumerate() {
            if !task_names.insert(m.key.as_str()) {
                return Err(self.error(m.key_pos, format!("task \"{}\" is defined twice", m.key)));
            }
            let task = self.task(i, m)?;
            tasks.push(task);
        }
        Ok(tasks)
    }

    /// The threads the tasks start: `instance` threads per task, named `<task>-<n>` with `n`
    /// counting threads across the whole workload.
    fn threads(&self, tasks: &[TaskSpec]) -> R<Vec<ThreadSpec>> {
        let mut threads = Vec::new();
        for (ti, task) in tasks.iter().enumerate() {
            if threads.len() + task.instances as usize > MAX_THREADS {
                return Err(self.error(
                    Pos {
                        line: task.line,
                        column: task.column,
                    },
                    format!("expected at most {MAX_THREADS} threads in total"),
                ));
            }
            for instance in 0..task.instances {
                threads.push(ThreadSpec {
                    name: format!("{}-{}", task.name, threads.len()),
                    task: task.name.clone(),
                    task_index: ti,
                    instance,
                    attr: task.attr,
                    cpus: task.cpus.clone(),
                    delay_us: task.delay_us,
                });
            }
        }
        Ok(threads)
    }

    fn proxysched(&mut self, m: &Member) -> R<()> {
        let obj = self.object(&m.value, "\"proxysched\"")?;
        self.warn_repeats(obj, |_| true);
        // cpus first: `cpus` arrays elsewhere are checked against it.
        if let Some(m) = last(obj, "cpus") {
            self.settings.cpus = Some(self.int(m, "a number of CPUs", 1, MAX_CPUS as i128)? as usize);
        }
        for m in obj {
            match m.key.as_str() {
                "cpus" => {}
                "llc_size" => {
                    self.settings.llc_size =
                        Some(self.int(m, "a number of CPUs per LLC", 1, MAX_CPUS as i128)? as usize)
                }
                "hz" => {
                    self.settings.hz =
                        Some(self.int(m, "ticks per second (CONFIG_HZ: 100 to 1000)", 100, 1000)? as u64)
                }
                "costs" => self.settings.costs = Some(self.costs(m)?),
                "seed" => {
                    self.settings.seed =
                        Some(self.int(m, "a non-negative integer seed", 0, u64::MAX as i128)? as u64)
                }
                "protocol" => self.settings.protocol = Some(self.protocol(m)?),
                "workqueues" => self.workqueues(m)?,
                "taskgroups" => self.taskgroups(m)?,
                "inject" => self.inject(m)?,
                "features" => self.settings.features = self.features(m)?,
                other => self.warn(
                    m.key_pos,
                    other,
                    format!("unknown proxysched setting \"{other}\" ignored"),
                ),
            }
        }
        Ok(())
    }

    /// `"costs"`: a preset name or an object of per-operation costs (ns), kept as JSON text
    /// for the kernel's cost model to read.
    fn costs(&self, m: &Member) -> R<CostsSpec> {
        Ok(match &m.value.kind {
            Kind::String(s) if s == "default" || s == "zero" => CostsSpec::Preset(s.clone()),
            Kind::Object(members) => {
                // Every cost is an integer number of ns up to the limit that keeps
                // simulated time from overflowing; the names are the kernel's to
                // check.
                for c in members {
                    self.int(
                        c,
                        "a cost in nanoseconds (at most 1 s per operation)",
                        0,
                        sim::time::MAX_COST_NS as i128,
                    )?;
                }
                CostsSpec::Inline(m.value.to_serde().to_string())
            }
            _ => {
                return Err(self.error(
                    m.value.pos,
                    format!(
                        "expected \"default\", \"zero\" or a cost object for \"costs\", \
                         found {}",
                        describe_value(&m.value)
                    ),
                ))
            }
        })
    }

    /// `"inject"`: the injection points switched on, in order of first mention.
    fn inject(&mut self, m: &Member) -> R<()> {
        let iobj = self.object(&m.value, "\"inject\"")?;
        self.warn_repeats(iobj, |_| true);
        for f in iobj {
            let Some(point) = uapi::Injection::from_name(&f.key) else {
                let names: Vec<&str> = uapi::Injection::ALL.iter().map(|i| i.name()).collect();
                return Err(self.error(
                    f.key_pos,
                    format!(
                        "unknown injection point \"{}\"; expected one of: {}",
                        f.key,
                        names.join(", ")
                    ),
                ));
            };
            if self.boolean(f)? && !self.settings.inject.contains(&point) {
                self.settings.inject.push(point);
            }
        }
        Ok(())
    }

    /// `"features"`: each scheduler feature switch, on or off; a repeated name counts once,
    /// at its last position, with its last value.
    fn features(&mut self, m: &Member) -> R<Vec<(String, bool)>> {
        let fobj = self.object(&m.value, "\"features\"")?;
        self.warn_repeats(fobj, |_| true);
        let mut features: Vec<(String, bool)> = Vec::new();
        for f in fobj {
            let on = match &f.value.kind {
                Kind::Bool(b) => *b,
                Kind::String(s) if s == "on" => true,
                Kind::String(s) if s == "off" => false,
                _ => {
                    return Err(self.error(
                        f.value.pos,
                        format!(
                            "expected true, false, \"on\" or \"off\" for feature \"{}\", \
                             found {}",
                            f.key,
                            describe_value(&f.value)
                        ),
                    ))
                }
            };
            features.retain(|(name, _)| name != &f.key);
            features.push((f.key.clone(), on));
        }
        Ok(features)
    }

    fn global(&mut self, m: &Member) -> R<Option<f64>> {
        let obj = self.object(&m.value, "\"global\"")?;
        self.warn_repeats(obj, |_| true);
        let mut duration_s = None;
        for m in obj {
            match m.key.as_str() {
                "duration" => {
                    let secs = m.value.as_f64().ok_or_else(|| {
                        self.error(
                            m.value.pos,
                            format!(
                                "expected a number of seconds for \"duration\", found {}",
                                m.value.describe()
                            ),
                        )
                    })?;
                    if m.value.as_integer().is_none() {
                        self.warn(
                            m.value.pos,
                            "duration",
                            "rt-app reads \"duration\" as an integer number of seconds; \
                             a fraction makes the file unusable with rt-app",
                        );
                    }
                    duration_s = (secs > 0.0).then_some(secs);
                }
                "default_policy" => self.settings.default_policy = self.policy(m)?,
                "pi_enabled" => self.settings.pi_enabled = self.boolean(m)?,
                k if GLOBAL_HOST_KEYS.contains(&k) => {}
                other => self.warn(
                    m.key_pos,
                    other,
                    format!("unknown global key \"{other}\" ignored"),
                ),
            }
        }
        Ok(duration_s)
    }

    /// `"resources"`: legacy rt-app declarations (`{"type": "mutex"}`) and our per-mutex
    /// `protocol`.
    ///
    /// A `"resources"` that is not an object declares nothing: rt-app's `parse_resources()`
    /// only walks an object and otherwise goes on with no declared resources (each is then
    /// created by its first use). We warn, naming the value, and do the same.
    ///
    /// Counterpart: rt-app `src/rt-app_parse_config.c` `parse_resources()`.
    fn declared_resources(&mut self, m: &Member) -> R<()> {
        let Some(obj) = m.value.as_object() else {
            let found = m.value.describe();
            self.warn(
                m.value.pos,
                &m.key,
                format!(
                    "expected an object for \"resources\", found {found}; rt-app ignores it, and \
                     so does proxysched (resources are created by their first use)"
                ),
            );
            return Ok(());
        };
        for r in obj {
            let robj = self.object(&r.value, &format!("resource \"{}\"", r.key))?;
            self.warn_repeats(robj, |_| true);
            let mut kind = Rk::Mutex;
            if let Some(t) = last(robj, "type") {
                let ty = self.string(t, "a resource type")?;
                kind = match ty {
                    "mutex" => Rk::Mutex,
                    "wait" | "signal" | "broadcast" | "sync" => Rk::Cond,
                    _ => {
                        self.warn(
                            t.value.pos,
                            "type",
                            format!(
                                "resource type \"{ty}\" needs no declaration; resource \"{}\" ignored",
                                r.key
                            ),
                        );
                        continue;
                    }
                };
            }
            let (protocol, io, interruptible) = self.resource_properties(r, robj, kind)?;
            let id = self.resource(&r.key, kind, false) as usize;
            if let ResourceKind::Mutex {
                protocol: p,
                io: i,
                interruptible: intr,
            } = &mut self.resources[id].kind
            {
                if protocol.is_some() {
                    *p = protocol;
                }
                *i |= io;
                *intr |= interruptible;
            }
        }
        Ok(())
    }

    /// The properties of declared resource `r` (object `robj`, of `kind`): a mutex's
    /// `protocol`, `io` and `interruptible`, a warning for unknown ones.
    fn resource_properties(
        &mut self,
        r: &Member,
        robj: &[Member],
        kind: Rk,
    ) -> R<(Option<String>, bool, bool)> {
        let mut protocol = None;
        let mut io = false;
        let mut interruptible = false;
        for k in robj {
            match k.key.as_str() {
                "type" => {}
                key @ ("io" | "interruptible") => {
                    if kind != Rk::Mutex {
                        return Err(self.error(
                            k.key_pos,
                            format!(
                                "expected \"{key}\" only on a mutex; \"{}\" is a condition variable",
                                r.key
                            ),
                        ));
                    }
                    if key == "io" {
                        io = self.boolean(k)?;
                    } else {
                        interruptible = self.boolean(k)?;
                    }
                }
                "protocol" => {
                    if kind != Rk::Mutex {
                        return Err(self.error(
                            k.key_pos,
                            format!(
                                "expected \"protocol\" only on a mutex; \"{}\" is a condition \
                                 variable",
                                r.key
                            ),
                        ));
                    }
                    protocol = Some(self.protocol(k)?);
                }
                other => self.warn(
                    k.key_pos,
                    other,
                    format!("unknown resource property \"{other}\" ignored"),
                ),
            }
        }
        Ok((protocol, io, interruptible))
    }

    // ---- tasks --------------------------------------------------------------------------------

    fn task(&mut self, task_index: usize, m: &Member) -> R<TaskSpec> {
        let name = m.key.clone();
        let obj = self.object(&m.value, &format!("task \"{name}\""))?;
        let has_phases = last(obj, "phases").is_some();
        self.warn_repeats(obj, |k| event_prefix(k).is_none());

        let instances = match last(obj, "instance") {
            Some(i) => self.int(i, "an instance count", 0, MAX_THREADS as i128)? as u32,
            None => 1,
        };
        if instances == 0 {
            self.warn(
                m.key_pos,
                &name,
                format!(
                    "task \"{name}\" has instance 0: rt-app creates it only by \"fork\", which \
                     is not modelled, so it never runs"
                ),
            );
        }
        let delay_us = match last(obj, "delay") {
            Some(d) => self.micros(d)?,
            None => 0,
        };
        let sched = self.sched(obj, m.key_pos)?;
        let attr = self.thread_attr(obj, &sched)?;
        let cpus = match last(obj, "cpus") {
            Some(c) => Some(self.cpus(c)?),
            None => None,
        };
        let taskgroup = match last(obj, "taskgroup") {
            Some(t) => {
                let g = self.taskgroup_ref(t)?;
                self.check_taskgroup_policy(g, attr.policy, t.key_pos)?;
                Some(g)
            }
            None => None,
        };

        self.check_task_keys(obj, &name, has_phases, attr.policy);

        // Barriers this task names, to warn about rt-app counting repeats.
        let mut barriers_named = BTreeSet::new();
        let task_ctx = TaskCtx {
            index: task_index,
            name: &name,
            instances,
        };
        let (thread_loop, phases) = if let Some(p) = last(obj, "phases") {
            self.task_phases(&task_ctx, obj, p, attr.policy, taskgroup, &mut barriers_named)?
        } else {
            self.task_single_phase(&task_ctx, obj, m.value.pos, attr.policy, &mut barriers_named)?
        };

        let task = TaskSpec {
            name,
            line: m.key_pos.line,
            column: m.key_pos.column,
            instances,
            delay_us,
            attr,
            cpus,
            thread_loop,
            phases,
            taskgroup,
        };
        Ok(task)
    }

    /// Warns about the keys of a task object that are neither properties nor (for a
    /// single-phase task) events: legacy deadline keys without effect, unmodelled keys,
    /// task-level events of a task with phases, unknown keys.
    fn check_task_keys(&mut self, obj: &[Member], name: &str, has_phases: bool, policy: Policy) {
        for k in obj {
            let key = k.key.as_str();
            let known = ["instance", "delay", "loop", "phases", "cpus", "taskgroup"].contains(&key)
                || SCHED_KEYS.contains(&key);
            if known {
                continue;
            }
            if key == "period" || key == "deadline" || (key == "runtime" && has_phases) {
                if policy != Policy::Deadline {
                    self.warn(
                        k.key_pos,
                        key,
                        format!(
                            "legacy \"{key}\" sets a SCHED_DEADLINE parameter and has no effect \
                             for {}",
                            policy.rtapp_name()
                        ),
                    );
                }
                continue;
            }
            if UNMODELLED_KEYS.contains(&key) {
                self.warn(k.key_pos, key, format!("\"{key}\" is not modelled; ignored"));
                continue;
            }
            if event_prefix(key).is_some() {
                if has_phases {
                    self.warn(
                        k.key_pos,
                        key,
                        format!(
                            "event \"{key}\" at task level is ignored because task \"{name}\" has \
                             phases (as in rt-app)"
                        ),
                    );
                }
                continue;
            }
            self.warn(
                k.key_pos,
                key,
                format!("unknown key \"{key}\" in task \"{name}\" ignored"),
            );
        }
    }

    /// The `"phases"` member `p` of task object `obj`, in order, and the task's `"loop"`
    /// (default forever). `thread_policy` and `taskgroup` are the thread's own.
    fn task_phases(
        &mut self,
        task_ctx: &TaskCtx<'_>,
        obj: &[Member],
        p: &Member,
        thread_policy: Policy,
        taskgroup: Option<TaskGroupId>,
        barriers_named: &mut BTreeSet<String>,
    ) -> R<(LoopCount, Vec<PhaseSpec>)> {
        let pobj = self.object(&p.value, &format!("\"phases\" of task \"{}\"", task_ctx.name))?;
        if pobj.is_empty() {
            return Err(self.error(
                p.value.pos,
                format!(
                    "expected at least one phase in task \"{}\", found an empty object",
                    task_ctx.name
                ),
            ));
        }
        let mut phases = Vec::with_capacity(pobj.len());
        // rt-app resolves a phase's "same policy" on its first run, to the policy the
        // thread has then: the thread's, or the last phase before it that set one.
        let mut policy = thread_policy;
        let mut group = taskgroup.unwrap_or(ROOT_TASKGROUP);
        for ph in pobj {
            let phobj = self.object(&ph.value, &format!("phase \"{}\"", ph.key))?;
            let at = PhaseAt {
                name: &ph.key,
                pos: ph.value.pos,
                is_task_object: false,
            };
            phases.push(self.phase(task_ctx, at, phobj, &mut policy, barriers_named)?);
            // rt-app check_taskgroup_policy_dep(): the phase's group and policy together.
            if let Some(g) = phases.last().and_then(|p| p.taskgroup) {
                group = g;
            }
            let pos = last(phobj, "taskgroup").map_or(ph.key_pos, |t| t.key_pos);
            self.check_taskgroup_policy(group, policy, pos)?;
        }
        let thread_loop = match last(obj, "loop") {
            Some(l) => match self.int(l, "a loop count", -INT_MAX - 1, INT_MAX)? {
                n if n < 0 => LoopCount::Forever,
                n => LoopCount::Times(n as u32),
            },
            None => LoopCount::Forever,
        };
        Ok((thread_loop, phases))
    }

    /// A task without `"phases"`: the task object `obj` (at `pos`) is its one phase. With a
    /// `"loop"` key the phase counts those loops and the thread runs it once; without one the
    /// thread repeats it forever.
    fn task_single_phase(
        &mut self,
        task_ctx: &TaskCtx<'_>,
        obj: &[Member],
        pos: Pos,
        thread_policy: Policy,
        barriers_named: &mut BTreeSet<String>,
    ) -> R<(LoopCount, Vec<PhaseSpec>)> {
        let at = PhaseAt {
            name: task_ctx.name,
            pos,
            is_task_object: true,
        };
        let mut policy = thread_policy;
        let phase = self.phase(task_ctx, at, obj, &mut policy, barriers_named)?;
        let thread_loop = if last(obj, "loop").is_some() {
            LoopCount::Times(1)
        } else {
            LoopCount::Forever
        };
        Ok((thread_loop, vec![phase]))
    }

    /// `policy`, `priority` and `dl-*` of a task or phase object (rt-app `parse_sched_data`).
    fn sched(&mut self, obj: &[Member], pos: Pos) -> R<ParsedSched> {
        let policy = match last(obj, "policy") {
            Some(p) => Some(self.policy(p)?),
            None => None,
        };
        let priority = match last(obj, "priority") {
            Some(p) => Some(self.int(p, "an integer priority", i32::MIN as i128, INT_MAX)? as i32),
            None => None,
        };
        let dl = |l: &Self, key: &str| -> R<Option<u64>> {
            match last(obj, key) {
                Some(m) => Ok(Some(l.micros(m)?)),
                None => Ok(None),
            }
        };
        let dl_runtime_us = dl(self, "dl-runtime")?.unwrap_or(0);
        let dl_period_us = dl(self, "dl-period")?.unwrap_or(dl_runtime_us);
        let dl_deadline_us = dl(self, "dl-deadline")?.unwrap_or(dl_period_us);
        let pos = last(obj, "policy")
            .or(last(obj, "priority"))
            .map(|m| m.key_pos)
            .unwrap_or(pos);
        Ok(ParsedSched {
            policy,
            priority,
            dl_runtime_us,
            dl_deadline_us,
            dl_period_us,
            pos,
        })
    }

    fn check_priority(&self, policy: Policy, prio: i32, pos: Pos) -> R<()> {
        let ok = match policy {
            Policy::Normal | Policy::Batch | Policy::Idle => (-20..=19).contains(&prio),
            Policy::Fifo | Policy::Rr => (1..=99).contains(&prio),
            Policy::Deadline => true,
        };
        if ok {
            return Ok(());
        }
        let range = if policy.is_rt() {
            "an RT priority from 1 to 99"
        } else {
            "a nice value from -20 to 19"
        };
        Err(self.error(
            pos,
            format!("expected {range} for {}, found {prio}", policy.rtapp_name()),
        ))
    }

    fn check_deadline(&self, runtime: u64, deadline: u64, period: u64, pos: Pos) -> R<()> {
        if runtime > 0 && runtime <= deadline && deadline <= period {
            return Ok(());
        }
        Err(self.error(
            pos,
            format!(
                "expected 0 < dl-runtime <= dl-deadline <= dl-period for SCHED_DEADLINE, found \
                 runtime {runtime}, deadline {deadline}, period {period} (µs)"
            ),
        ))
    }

    /// The attributes a thread sets at start (rt-app `parse_sched_data(obj, default_policy)`).
    fn thread_attr(&mut self, obj: &[Member], s: &ParsedSched) -> R<SchedAttr> {
        let policy = s.policy.unwrap_or(self.settings.default_policy);
        let prio = s.priority.unwrap_or(if policy.is_rt() { 10 } else { 0 });
        self.check_priority(policy, prio, s.pos)?;
        let (mut runtime, mut period, mut deadline) = (s.dl_runtime_us, s.dl_period_us, s.dl_deadline_us);
        if policy == Policy::Deadline {
            // Legacy grammar (rt-app reads it when dl-* left the value at 0).
            if runtime == 0 {
                if let Some(m) = last(obj, "runtime") {
                    runtime = self.micros(m)?;
                }
            }
            if period == 0 {
                period = match last(obj, "period") {
                    Some(m) => self.micros(m)?,
                    None => runtime,
                };
            }
            if deadline == 0 {
                deadline = match last(obj, "deadline") {
                    Some(m) => self.micros(m)?,
                    None => period,
                };
            }
            self.check_deadline(runtime, deadline, period, s.pos)?;
        }
        Ok(SchedAttr {
            policy,
            nice: if matches!(policy, Policy::Normal | Policy::Batch) {
                prio
            } else {
                0
            },
            rt_priority: if policy.is_rt() { prio as u32 } else { 0 },
            dl_runtime_ns: runtime * 1000,
            dl_deadline_ns: deadline * 1000,
            dl_period_ns: period * 1000,
        })
    }
}

fn describe_value(node: &Node) -> String {
    match &node.kind {
        Kind::String(s) => format!("\"{s}\""),
        _ => node.describe(),
    }
}

/// The task a phase belongs to.
struct TaskCtx<'a> {
    index: usize,
    name: &'a str,
    instances: u32,
}

/// Which object a phase is parsed from.
struct PhaseAt<'a> {
    name: &'a str,
    pos: Pos,
    /// True for a task without `"phases"`: the task object is the phase, its keys were
    /// already classified by `task`, and its scheduling parameters are the thread's.
    is_task_object: bool,
}

impl<'f> Loader<'f> {
    /// rt-app `parse_task_phase_data()`.
    fn phase(
        &mut self,
        task: &TaskCtx<'_>,
        at: PhaseAt<'_>,
        obj: &[Member],
        policy: &mut Policy,
        barriers_named: &mut BTreeSet<String>,
    ) -> R<PhaseSpec> {
        if !at.is_task_object {
            self.warn_repeats(obj, |k| event_prefix(k).is_none());
        }
        let loop_count = match last(obj, "loop") {
            Some(l) => match self.int(l, "a loop count", -INT_MAX - 1, INT_MAX)? {
                // rt-app's documented "forever": no warning.
                -1 => LoopCount::Forever,
                n if n <= 0 => {
                    self.warn(
                        l.value.pos,
                        "loop",
                        format!(
                            "phase loop {n} never reaches its count, so phase \"{}\" repeats \
                             forever (as in rt-app)",
                            at.name
                        ),
                    );
                    LoopCount::Forever
                }
                n => LoopCount::Times(n as u32),
            },
            None => LoopCount::Times(1),
        };

        let events = self.phase_events(task, &at, obj, barriers_named)?;

        let taskgroup = match last(obj, "taskgroup") {
            Some(t) if !at.is_task_object => Some(self.taskgroup_ref(t)?),
            _ => None,
        };
        let (sched, cpus) = if at.is_task_object {
            // rt-app drops the phase copy of the scheduling parameters: they are the thread's,
            // and so are the cpus (set again at each phase start, a no-op after the first).
            (None, None)
        } else {
            let sched = self.phase_sched(&at, obj, policy)?;
            let cpus = match last(obj, "cpus") {
                Some(c) => Some(self.cpus(c)?),
                None => None,
            };
            (sched, cpus)
        };
        Ok(PhaseSpec {
            name: at.name.to_string(),
            loop_count,
            events,
            sched,
            cpus,
            taskgroup,
        })
    }

    /// The events of a phase object, in order (rt-app keys them by prefix: `run0`, `lock1`,
    /// ...), with a warning for each key that is neither an event nor a phase property; at
    /// least one event is required.
    fn phase_events(
        &mut self,
        task: &TaskCtx<'_>,
        at: &PhaseAt<'_>,
        obj: &[Member],
        barriers_named: &mut BTreeSet<String>,
    ) -> R<Vec<EventSpec>> {
        let mut events = Vec::new();
        let mut event_keys = 0usize;
        for m in obj {
            let Some(prefix) = event_prefix(&m.key) else {
                if !at.is_task_object {
                    let key = m.key.as_str();
                    if key == "loop" || key == "cpus" || key == "taskgroup" || SCHED_KEYS.contains(&key) {
                        continue;
                    }
                    if UNMODELLED_KEYS.contains(&key) {
                        self.warn(m.key_pos, key, format!("\"{key}\" is not modelled; ignored"));
                    } else {
                        self.warn(
                            m.key_pos,
                            key,
                            format!("unknown key \"{key}\" in phase \"{}\" ignored", at.name),
                        );
                    }
                }
                continue;
            };
            event_keys += 1;
            if let Some(event) = self.event(task, prefix, m, barriers_named)? {
                events.push(EventSpec {
                    key: m.key.clone(),
                    line: m.key_pos.line,
                    column: m.key_pos.column,
                    event,
                });
            }
        }
        if event_keys == 0 {
            return Err(self.error(
                at.pos,
                format!(
                    "expected at least one event (run, sleep, timer, lock, ...) in phase \"{}\"",
                    at.name
                ),
            ));
        }
        Ok(events)
    }

    /// The scheduling parameters a phase object sets, if any. `policy` is the policy the
    /// thread has when the phase first runs (what rt-app's "same policy" resolves to); a phase
    /// that names one updates it for the phases after. A policy without a priority gets
    /// rt-app's default priority for it.
    fn phase_sched(
        &mut self,
        at: &PhaseAt<'_>,
        obj: &[Member],
        policy: &mut Policy,
    ) -> R<Option<PhaseSched>> {
        let s = self.sched(obj, at.pos)?;
        let priority = match (s.policy, s.priority) {
            (Some(p), None) => Some(if p.is_rt() { 10 } else { 0 }),
            (_, prio) => prio,
        };
        let meaningful = priority.is_some() || s.dl_runtime_us > 0 || s.dl_period_us > 0;
        Ok(if meaningful {
            if let Some(p) = s.policy {
                *policy = p;
            }
            if let Some(prio) = priority {
                self.check_priority(*policy, prio, s.pos)?;
            }
            if *policy == Policy::Deadline {
                self.check_deadline(s.dl_runtime_us, s.dl_deadline_us, s.dl_period_us, s.pos)?;
            }
            if priority.is_none() && *policy != Policy::Deadline {
                self.warn(
                    s.pos,
                    "dl-runtime",
                    format!(
                        "phase \"{}\" gives dl-* parameters without \"policy\" or \"priority\" \
                         for {}; rt-app leaves the thread's attributes unchanged",
                        at.name,
                        policy.rtapp_name()
                    ),
                );
            }
            Some(PhaseSched {
                policy: *policy,
                priority,
                dl_runtime_us: s.dl_runtime_us,
                dl_deadline_us: s.dl_deadline_us,
                dl_period_us: s.dl_period_us,
            })
        } else {
            None
        })
    }

    /// A `{ref, mutex}` or `{ref, period, mode}` event object: string members by name, with
    /// rt-app's defaults, and a warning for anything else.
    fn event_object<'n>(&mut self, m: &'n Member, shape: &str, allowed: &[&str]) -> R<&'n [Member]> {
        let obj = m.value.as_object().ok_or_else(|| {
            self.error(
                m.value.pos,
                format!(
                    "expected an object {shape} for \"{}\", found {}",
                    m.key,
                    m.value.describe()
                ),
            )
        })?;
        self.warn_repeats(obj, |_| true);
        for k in obj {
            if !allowed.contains(&k.key.as_str()) {
                self.warn(
                    k.key_pos,
                    &k.key,
                    format!("unknown key \"{}\" in \"{}\" ignored", k.key, m.key),
                );
            }
        }
        Ok(obj)
    }

    /// A string member of an event object; rt-app defaults a missing one to "unknown".
    fn event_ref(&mut self, event: &Member, obj: &[Member], key: &str) -> R<String> {
        match last(obj, key) {
            Some(r) => Ok(self.string(r, "a name")?.to_string()),
            None => {
                self.warn(
                    event.value.pos,
                    key,
                    format!(
                        "\"{}\" has no \"{key}\"; rt-app uses the name \"unknown\"",
                        event.key
                    ),
                );
                Ok("unknown".to_string())
            }
        }
    }

    /// rt-app `parse_task_event_data()`: one parser per event kind. `None` for events we skip
    /// (with a warning).
    fn event(
        &mut self,
        task: &TaskCtx<'_>,
        prefix: &'static str,
        m: &Member,
        barriers_named: &mut BTreeSet<String>,
    ) -> R<Option<Event>> {
        let name_of =
            |l: &Self, what: &str| -> R<String> { Ok(l.string(m, &format!("a {what} name"))?.to_string()) };
        let event = match prefix {
            "run" => Event::Run {
                work_us: self.micros(m)?,
            },
            "runtime" => Event::Runtime {
                duration_us: self.micros(m)?,
            },
            "sleep" => Event::Sleep {
                duration_us: self.micros(m)?,
            },
            "yield" => Event::Yield,
            "lock" => Event::Lock {
                mutex: self.resource(&name_of(self, "mutex")?, Rk::Mutex, false),
            },
            "unlock" => Event::Unlock {
                mutex: self.resource(&name_of(self, "mutex")?, Rk::Mutex, false),
            },
            "signal" if m.value.as_object().is_some() => self.signal_thread_event(m)?,
            "signal" => Event::Signal {
                cond: self.resource(&name_of(self, "condition variable")?, Rk::Cond, false),
            },
            "broad" => Event::Broadcast {
                cond: self.resource(&name_of(self, "condition variable")?, Rk::Cond, false),
            },
            "wait" | "sync" => self.wait_event(prefix, m)?,
            "timer" => self.timer_event(task, m)?,
            "barrier" => self.barrier_event(task, &name_of(self, "barrier")?, m, barriers_named),
            "suspend" | "resume" => self.suspend_event(task, prefix, name_of(self, "thread")?),
            "queue_work" => {
                let (item, cpu) = self.queue_work_value(m)?;
                Event::QueueWork { item, cpu }
            }
            "flush_work" => Event::FlushWork {
                item: self.work_item_ref(m)?,
            },
            "mem" | "memrun" | "iorun" => {
                return self.skipped_event(
                    m,
                    format!("\"{}\" (memory/IO load) is not modelled; event skipped", m.key),
                );
            }
            "fork" => {
                return self.skipped_event(
                    m,
                    format!(
                        "\"{}\": fork is not modelled (threads are created at start); event skipped",
                        m.key
                    ),
                );
            }
            "sem_post" | "sem_wait" => {
                return self.skipped_event(
                    m,
                    format!("\"{}\": semaphores are not modelled; event skipped", m.key),
                );
            }
            other => unreachable!("event prefix {other} has no parser"),
        };
        Ok(Some(event))
    }

    /// A `signal` event whose value is an object (proxysched extension): `{"thread": TASK}`
    /// sends SIGUSR1 to every thread of task `TASK`, which must exist. (A string value is
    /// rt-app's condition-variable `signal`.)
    fn signal_thread_event(&mut self, m: &Member) -> R<Event> {
        let obj = self.event_object(m, "{\"thread\": TASK}", &["thread"])?;
        let Some(t) = last(obj, "thread") else {
            return Err(self.error(
                m.value.pos,
                format!(
                    "expected {{\"thread\": TASK}} for \"{}\": the task to signal",
                    m.key
                ),
            ));
        };
        let name = self.string(t, "a task name")?;
        match self.task_names.iter().position(|n| n == name) {
            Some(task) => Ok(Event::SignalThread { task }),
            None => Err(self.error(
                t.value.pos,
                format!(
                    "expected the name of a task to signal, found \"{name}\"; the tasks are: {}",
                    self.task_names.join(", ")
                ),
            )),
        }
    }

    /// A `wait` or `sync` event: `{"ref": COND, "mutex": MUTEX}`.
    fn wait_event(&mut self, prefix: &str, m: &Member) -> R<Event> {
        let obj = self.event_object(m, "{\"ref\": COND, \"mutex\": MUTEX}", &["ref", "mutex"])?;
        let cond_name = self.event_ref(m, obj, "ref")?;
        let mutex_name = self.event_ref(m, obj, "mutex")?;
        let cond = self.resource(&cond_name, Rk::Cond, false);
        let mutex = self.resource(&mutex_name, Rk::Mutex, false);
        Ok(if prefix == "wait" {
            Event::Wait { cond, mutex }
        } else {
            Event::Sync { cond, mutex }
        })
    }

    /// A `timer` event: `{"ref": NAME, "period": MICROSECONDS, "mode": ...}`. Timers are
    /// shared by name; a name starting with "unique" gives each task its own timer.
    fn timer_event(&mut self, task: &TaskCtx<'_>, m: &Member) -> R<Event> {
        let obj = self.event_object(
            m,
            "{\"ref\": NAME, \"period\": MICROSECONDS, \"mode\": \"relative\"|\"absolute\"}",
            &["ref", "period", "mode"],
        )?;
        let name = self.event_ref(m, obj, "ref")?;
        let period_us = match last(obj, "period") {
            Some(p) => self.micros(p)?,
            None => 0,
        };
        let absolute = match last(obj, "mode") {
            // rt-app: a mode starting with "absolute" is absolute, anything else relative.
            Some(md) => self
                .string(md, "\"relative\" or \"absolute\"")?
                .starts_with("absolute"),
            None => false,
        };
        let per_thread_of_task = name.starts_with("unique").then_some(task.index);
        let timer = match self
            .timers
            .iter()
            .position(|t| t.name == name && t.per_thread_of_task == per_thread_of_task)
        {
            Some(i) => i,
            None => {
                self.timers.push(TimerSpec {
                    name,
                    per_thread_of_task,
                    absolute: false,
                });
                self.timers.len() - 1
            }
        };
        // rt-app sets the mode on the timer; "absolute" on any event sticks.
        self.timers[timer].absolute |= absolute;
        Ok(Event::Timer { timer, period_us })
    }

    /// A `barrier` event on the barrier `name`: every instance of every task that names it
    /// (once per mention) is one more arrival the barrier waits for.
    fn barrier_event(
        &mut self,
        task: &TaskCtx<'_>,
        name: &str,
        m: &Member,
        barriers_named: &mut BTreeSet<String>,
    ) -> Event {
        if !barriers_named.insert(name.to_string()) {
            self.warn(
                m.key_pos,
                &m.key,
                format!(
                    "barrier \"{name}\" is named more than once in task \"{}\"; rt-app \
                     counts every mention as {} more arrival(s), so the barrier may never \
                     open",
                    task.name, task.instances
                ),
            );
        }
        let barrier = match self.barriers.iter().position(|b| b.name == name) {
            Some(i) => i,
            None => {
                let internal = format!("__barrier_{name}");
                let mutex = self.resource(&internal, Rk::Mutex, true);
                let cond = self.resource(&internal, Rk::Cond, true);
                self.barriers.push(BarrierSpec {
                    name: name.to_string(),
                    mutex,
                    cond,
                    initial_waiting: -1,
                });
                self.barriers.len() - 1
            }
        };
        self.barriers[barrier].initial_waiting += i64::from(task.instances);
        Event::Barrier { barrier }
    }

    /// A `suspend` or `resume` event on the thread named `target` (the task itself when empty),
    /// through an internal condition variable and mutex per target.
    fn suspend_event(&mut self, task: &TaskCtx<'_>, prefix: &str, mut target: String) -> Event {
        if target.is_empty() {
            // rt-app's workgen fills an empty suspend with the task's own name.
            target = task.name.to_string();
        }
        let internal = format!("__suspend_{target}");
        let cond = self.resource(&internal, Rk::Cond, true);
        let mutex = self.resource(&internal, Rk::Mutex, true);
        if prefix == "suspend" {
            Event::Suspend { cond, mutex }
        } else {
            Event::Resume { cond, mutex }
        }
    }

    /// An rt-app event the model does not run: warned about at its key and left out.
    fn skipped_event(&mut self, m: &Member, why: String) -> R<Option<Event>> {
        self.warn(m.key_pos, &m.key, why);
        Ok(None)
    }
}

// ---- task groups (the cgroup cpu controller; proxysched extension and rt-app's taskgroup) ----

impl<'f> Loader<'f> {
    /// The id of the group at `path` (given at `pos`), creating it and its missing ancestors
    /// with the default weight. `/` is the root group.
    fn taskgroup_id(&mut self, path: &str, pos: Pos, what: &str) -> R<TaskGroupId> {
        let why = if !path.starts_with('/') {
            Some("it must start with \"/\"")
        } else if path.len() > 1 && path[1..].split('/').any(str::is_empty) {
            Some("it has an empty component")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(self.error(
                pos,
                format!("expected a cgroup path such as \"/low\" or \"/bg/a\" for {what}, found \"{path}\": {why}"),
            ));
        }
        if path == "/" {
            return Ok(ROOT_TASKGROUP);
        }
        let mut id = ROOT_TASKGROUP;
        let mut prefix = String::new();
        for part in path[1..].split('/') {
            prefix.push('/');
            prefix.push_str(part);
            id = match self.settings.taskgroups.iter().position(|g| g.path == prefix) {
                Some(i) => (i + 1) as TaskGroupId,
                None => {
                    if self.settings.taskgroups.len() >= MAX_TASKGROUPS {
                        return Err(self.error(pos, format!("expected at most {MAX_TASKGROUPS} task groups")));
                    }
                    self.settings.taskgroups.push(TaskGroupSpec {
                        path: prefix.clone(),
                        parent: id,
                        weight: GroupWeight::Default,
                        cpu_max: None,
                        line: pos.line,
                        column: pos.column,
                    });
                    self.settings.taskgroups.len() as TaskGroupId
                }
            };
        }
        Ok(id)
    }

    /// A `taskgroup` key of a task or phase (rt-app `parse_taskgroup_data()`).
    fn taskgroup_ref(&mut self, m: &Member) -> R<TaskGroupId> {
        let path = self.string(m, "a cgroup path such as \"/low\"")?.to_string();
        self.taskgroup_id(&path, m.value.pos, "\"taskgroup\"")
    }

    /// rt-app `check_taskgroup_policy_dep()`: a thread in a group other than the root must
    /// have a fair policy (rt-app has no RT or deadline group scheduling).
    fn check_taskgroup_policy(&self, group: TaskGroupId, policy: Policy, pos: Pos) -> R<()> {
        if group == ROOT_TASKGROUP || matches!(policy, Policy::Normal | Policy::Batch | Policy::Idle) {
            return Ok(());
        }
        Err(self.error(
            pos,
            format!(
                "expected SCHED_OTHER, SCHED_BATCH or SCHED_IDLE for a thread in task group \"{}\", \
                 found {} (rt-app has no taskgroup support for it)",
                self.settings.taskgroups[group as usize - 1].path,
                policy.rtapp_name()
            ),
        ))
    }

    /// `proxysched.taskgroups`: `{ "/low": { "cpu.weight": 4 }, "/bg/a": { "cpu.shares": 256,
    /// "cpu.max": "50000 100000" } }`.
    fn taskgroups(&mut self, m: &Member) -> R<()> {
        let obj = self.object(&m.value, "\"taskgroups\"")?;
        self.warn_repeats(obj, |_| true);
        for g in obj {
            let id = self.taskgroup_id(&g.key, g.key_pos, "a \"taskgroups\" key")?;
            if id == ROOT_TASKGROUP {
                return Err(self.error(
                    g.key_pos,
                    "expected a group below the root such as \"/low\": the root group \"/\" has no CPU controls",
                ));
            }
            let gobj = self.object(&g.value, &format!("task group \"{}\"", g.key))?;
            self.warn_repeats(gobj, |_| true);
            let mut weight = GroupWeight::Default;
            let mut cpu_max = None;
            for c in gobj {
                match c.key.as_str() {
                    "cpu.weight" | "cpu.shares" => {
                        let given = if c.key == "cpu.weight" {
                            GroupWeight::Weight(self.int(c, "a cgroup v2 weight", 1, 10_000)? as u64)
                        } else {
                            GroupWeight::Shares(self.int(c, "a cgroup v1 share count", 2, 262_144)? as u64)
                        };
                        let clash = matches!(
                            (weight, given),
                            (GroupWeight::Weight(_), GroupWeight::Shares(_))
                                | (GroupWeight::Shares(_), GroupWeight::Weight(_))
                        );
                        if clash {
                            return Err(self.error(
                                c.key_pos,
                                format!(
                                    "expected either \"cpu.weight\" (cgroup v2) or \"cpu.shares\" (v1) for task group \"{}\", found both",
                                    g.key
                                ),
                            ));
                        }
                        weight = given;
                    }
                    "cpu.max" => cpu_max = self.cpu_max(c)?,
                    other => self.warn(
                        c.key_pos,
                        other,
                        format!(
                            "unknown CPU control \"{other}\" of task group \"{}\" ignored",
                            g.key
                        ),
                    ),
                }
            }
            let spec = &mut self.settings.taskgroups[id as usize - 1];
            spec.weight = weight;
            spec.cpu_max = cpu_max;
            spec.line = g.key_pos.line;
            spec.column = g.key_pos.column;
        }
        Ok(())
    }

    /// `cpu.max`: `"QUOTA PERIOD"`, `"QUOTA"` (period 100000) or `"max [PERIOD]"` (no limit),
    /// in µs, with Linux's bounds (quota ≥ 1 ms, period 1 ms to 1 s).
    fn cpu_max(&self, m: &Member) -> R<Option<CpuMax>> {
        let desc = "\"QUOTA PERIOD\" in microseconds (e.g. \"50000 100000\") or \"max\"";
        let text = self.string(m, desc)?;
        let bad = || {
            self.error(
                m.value.pos,
                format!("expected {desc} for \"cpu.max\", found \"{text}\""),
            )
        };
        let mut words = text.split_whitespace();
        let quota = words.next().ok_or_else(bad)?;
        let period_us = match words.next() {
            Some(p) => p.parse::<u64>().map_err(|_| bad())?,
            None => 100_000,
        };
        if words.next().is_some() {
            return Err(bad());
        }
        if !(1_000..=1_000_000).contains(&period_us) {
            return Err(self.error(
                m.value.pos,
                format!("expected a \"cpu.max\" period from 1000 to 1000000 µs, found {period_us}"),
            ));
        }
        if quota == "max" {
            return Ok(None);
        }
        let quota_us = quota.parse::<u64>().map_err(|_| bad())?;
        if !(1_000..=INT_MAX as u64).contains(&quota_us) {
            return Err(self.error(
                m.value.pos,
                format!("expected a \"cpu.max\" quota of at least 1000 µs, found {quota_us}"),
            ));
        }
        Ok(Some(CpuMax { quota_us, period_us }))
    }
}

// ---- workqueues (proxysched extension) -------------------------------------------------------

impl<'f> Loader<'f> {
    /// `proxysched.workqueues`: the knobs and the item names (bodies come later, see
    /// [`Loader::work_item_bodies`]), so that events can name items in any order.
    fn workqueues(&mut self, m: &Member) -> R<()> {
        let obj = self.object(&m.value, "\"workqueues\"")?;
        self.warn_repeats(obj, |_| true);
        let mut spec = WorkqueuesSpec::default();
        for f in obj {
            match f.key.as_str() {
                "items" => {
                    let items = self.object(&f.value, "\"items\" (work item name: [steps])")?;
                    for it in items {
                        if spec.items.iter().any(|i| i.name == it.key) {
                            return Err(
                                self.error(it.key_pos, format!("work item \"{}\" is defined twice", it.key))
                            );
                        }
                        spec.items.push(WorkItemSpec {
                            name: it.key.clone(),
                            line: it.key_pos.line,
                            column: it.key_pos.column,
                            steps: Vec::new(),
                        });
                    }
                }
                "workers_per_pool" => {
                    spec.workers_per_pool = Some(self.int(f, "a number of workers per CPU", 1, 64)? as u32)
                }
                "skip_sleeping_hook" => spec.skip_sleeping_hook = self.boolean(f)?,
                other => self.warn(
                    f.key_pos,
                    other,
                    format!("unknown workqueues setting \"{other}\" ignored"),
                ),
            }
        }
        self.settings.workqueues = spec;
        Ok(())
    }

    /// The steps of every work item: an array of one-key objects, e.g.
    /// `[{"lock": "M"}, {"run": 500}, {"unlock": "M"}, {"queue_work": "G"}, {"sleep": 100}]`.
    fn work_item_bodies(&mut self, wq: &Member) -> R<()> {
        let Some(items) = wq.value.as_object().and_then(|o| last(o, "items")) else {
            return Ok(());
        };
        let items = self.object(&items.value, "\"items\"")?;
        for (i, it) in items.iter().enumerate() {
            let Kind::Array(list) = &it.value.kind else {
                return Err(self.error(
                    it.value.pos,
                    format!(
                        "expected an array of steps for work item \"{}\", found {}",
                        it.key,
                        it.value.describe()
                    ),
                ));
            };
            let mut steps = Vec::new();
            for node in list {
                let obj = node.as_object().ok_or_else(|| {
                    self.error(
                        node.pos,
                        format!(
                            "expected a step object ({{\"run\": US}}, {{\"lock\": MUTEX}}, ...) in \
                             work item \"{}\", found {}",
                            it.key,
                            node.describe()
                        ),
                    )
                })?;
                for s in obj {
                    steps.extend(self.work_step(&it.key, s)?);
                }
            }
            if steps.len() > 4096 {
                return Err(self.error(
                    it.value.pos,
                    format!("expected at most 4096 steps in work item \"{}\"", it.key),
                ));
            }
            self.settings.workqueues.items[i].steps = steps;
        }
        Ok(())
    }

    /// One step of the work item named `item_name` (a one-key object's member); `None` for an
    /// unknown step, with a warning.
    fn work_step(&mut self, item_name: &str, s: &Member) -> R<Option<WorkStepSpec>> {
        let step = match s.key.as_str() {
            "run" => WorkStepSpec::Run {
                work_us: self.micros(s)?,
            },
            "sleep" => WorkStepSpec::Sleep {
                duration_us: self.micros(s)?,
            },
            "lock" | "unlock" => {
                let name = self.string(s, "a mutex name")?.to_string();
                let mutex = self.resource(&name, Rk::Mutex, false);
                if s.key == "lock" {
                    WorkStepSpec::Lock { mutex }
                } else {
                    WorkStepSpec::Unlock { mutex }
                }
            }
            "queue_work" => {
                let (item, cpu) = self.queue_work_value(s)?;
                WorkStepSpec::QueueWork { item, cpu }
            }
            other => {
                self.warn(
                    s.key_pos,
                    other,
                    format!("unknown step \"{other}\" in work item \"{item_name}\" ignored"),
                );
                return Ok(None);
            }
        };
        Ok(Some(step))
    }

    /// A work item named by a string member.
    fn work_item_ref(&self, m: &Member) -> R<usize> {
        let name = self.string(m, "a work item name")?;
        self.settings
            .workqueues
            .items
            .iter()
            .position(|i| i.name == name)
            .ok_or_else(|| {
                self.error(
                    m.value.pos,
                    format!(
                        "expected a work item declared in proxysched.workqueues.items for \"{}\", \
                         found \"{name}\"",
                        m.key
                    ),
                )
            })
    }

    /// `"queue_work": "G"` or `"queue_work": {"item": "G", "cpu": 0}`.
    fn queue_work_value(&mut self, m: &Member) -> R<(usize, Option<u32>)> {
        if m.value.as_str().is_some() {
            return Ok((self.work_item_ref(m)?, None));
        }
        let obj = self.event_object(
            m,
            "{\"item\": NAME, \"cpu\": CPU} or a work item name",
            &["item", "cpu"],
        )?;
        let Some(item) = last(obj, "item") else {
            return Err(self.error(m.value.pos, format!("expected an \"item\" in \"{}\"", m.key)));
        };
        let item = self.work_item_ref(item)?;
        let cpu = match last(obj, "cpu") {
            Some(c) => {
                let limit = self.settings.cpus.unwrap_or(MAX_CPUS);
                Some(self.int(c, "a CPU id", 0, limit as i128 - 1)? as u32)
            }
            None => None,
        };
        Ok((item, cpu))
    }
}
