//! The typed workload: what [`crate::load`] produces from an rt-app JSON file.
//!
//! The structure mirrors rt-app's own parse result (`rtapp_options_t`, `thread_data_t`,
//! `phase_data_t`, `event_data_t`, `rtapp_resource_t` in rt-app's `src/rt-app_types.h`):
//! a list of task definitions ([`TaskSpec`], one per key of `"tasks"`), the threads created
//! from them ([`ThreadSpec`], one per instance, in creation order), and the named
//! synchronisation objects they use ([`ResourceSpec`], indexed by [`ResourceId`]). Timers and
//! barriers are user-space state in rt-app, so they get their own tables ([`TimerSpec`],
//! [`BarrierSpec`]) and are turned into system calls by the interpreter ([`crate::program`]).
//!
//! Units: everything from the file is kept in microseconds (`_us`), as rt-app writes it;
//! [`SchedAttr`] is in nanoseconds, as the kernel ABI is.

use uapi::{Injection, Policy, ResourceId, SchedAttr};

use crate::error::Warning;
use crate::program::RunCache;

/// A loaded rt-app workload.
#[derive(Debug)]
pub struct Workload {
    /// The file name without directories and without a `.json` extension.
    pub name: String,
    /// `global.duration` in seconds; `None` for -1 (or any value <= 0): run until every thread
    /// has exited.
    pub duration_s: Option<f64>,
    /// Task definitions, in file order (one per key of `"tasks"`).
    pub tasks: Vec<TaskSpec>,
    /// Threads, in rt-app's creation order (tasks in file order, instances in order). The index
    /// is the [`uapi::ThreadId`] and rt-app's thread index.
    pub threads: Vec<ThreadSpec>,
    /// Mutexes and condition variables; a [`ResourceId`] indexes this list. Declared resources
    /// (`"resources"`) come first, then others in order of first use, as rt-app creates them.
    pub resources: Vec<ResourceSpec>,
    /// Timers named by `timer` events.
    pub timers: Vec<TimerSpec>,
    /// Barriers named by `barrier` events.
    pub barriers: Vec<BarrierSpec>,
    /// Our own settings (`"proxysched"`) and the rt-app globals that affect the simulation.
    pub settings: Settings,
    /// Everything the loader skipped or wants the user to know, in file order.
    pub warnings: Vec<Warning>,
    /// The shared state of the run that [`Workload::program`] is handing out programs for.
    pub(crate) run_cache: RunCache,
}

impl Clone for Workload {
    /// Copies the description; the clone starts with no run in progress.
    fn clone(&self) -> Self {
        Workload {
            name: self.name.clone(),
            duration_s: self.duration_s,
            tasks: self.tasks.clone(),
            threads: self.threads.clone(),
            resources: self.resources.clone(),
            timers: self.timers.clone(),
            barriers: self.barriers.clone(),
            settings: self.settings.clone(),
            warnings: self.warnings.clone(),
            run_cache: RunCache::default(),
        }
    }
}

/// One simulated thread: an instance of a task.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadSpec {
    /// rt-app's thread name `<task>-<index>`, where index is the thread's position among all
    /// threads (rt-app `thread_data_set_unique_name()`), e.g. `a-0`, `a-1`, `b-2`.
    pub name: String,
    /// The task (key of `"tasks"`) this thread is an instance of.
    pub task: String,
    /// Index of that task in [`Workload::tasks`].
    pub task_index: usize,
    /// Instance number within the task, from 0.
    pub instance: u32,
    /// The scheduling attributes the thread sets for itself when it starts (after `delay`).
    /// rt-app creates its threads as SCHED_OTHER nice 0 and switches them with a system call,
    /// which the program emits as [`uapi::UserOp::SetAttr`].
    pub attr: SchedAttr,
    /// Thread-level `cpus`, if any (applied at the first phase start).
    pub cpus: Option<Vec<u32>>,
    /// `delay` before the first phase, µs.
    pub delay_us: u64,
}

/// How many times a loop runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopCount {
    /// `loop` -1 (or, for a phase, any value <= 0): until the run ends.
    Forever,
    /// Exactly this many times (a thread-level 0 runs no phase at all).
    Times(u32),
}

/// One entry of `"tasks"`: the definition its instances share.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSpec {
    pub name: String,
    /// Where the task's key is in the file.
    pub line: u32,
    pub column: u32,
    /// `instance` (default 1).
    pub instances: u32,
    /// `delay`, µs (default 0).
    pub delay_us: u64,
    /// Thread-level policy and priority (global `default_policy` when absent).
    pub attr: SchedAttr,
    /// Thread-level `cpus`.
    pub cpus: Option<Vec<u32>>,
    /// How many times the phase list runs (see rt-app rule in the crate docs).
    pub thread_loop: LoopCount,
    /// Thread-level `taskgroup`: the group (a [`TaskGroupId`]) the thread joins when it
    /// starts, after setting its policy (rt-app `set_thread_taskgroup()`).
    pub taskgroup: Option<TaskGroupId>,
    /// Phases in file order; a task without `"phases"` has one phase made of the task object.
    pub phases: Vec<PhaseSpec>,
}

/// One phase: a repeated list of events.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseSpec {
    /// The key in `"phases"`, or the task name for a task without phases.
    pub name: String,
    /// `loop` (default 1).
    pub loop_count: LoopCount,
    pub events: Vec<EventSpec>,
    /// Phase-level `policy`/`priority`/`dl-*`, applied at phase start only when present.
    pub sched: Option<PhaseSched>,
    /// Phase-level `cpus`; when absent the thread-level `cpus` (or all CPUs) apply again.
    pub cpus: Option<Vec<u32>>,
    /// Phase-level `taskgroup`: joined at each phase start; when absent the thread stays in
    /// the group it is in (rt-app `set_thread_taskgroup()` ignores a phase without one).
    pub taskgroup: Option<TaskGroupId>,
}

/// Phase-level scheduling parameters (rt-app `sched_data_t` of a phase).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseSched {
    /// The policy after resolving rt-app's "same as before" (a phase that only gives
    /// `priority` keeps the policy the thread has when the phase first runs).
    pub policy: Policy,
    /// Nice (fair policies) or RT priority (FIFO/RR); `None` = unchanged.
    pub priority: Option<i32>,
    pub dl_runtime_us: u64,
    pub dl_deadline_us: u64,
    pub dl_period_us: u64,
}

/// One event of a phase and the key it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct EventSpec {
    /// The key as written (`run0`, `lock_a`).
    pub key: String,
    pub line: u32,
    pub column: u32,
    pub event: Event,
}

/// The rt-app events the interpreter executes (rt-app `resource_t` event types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `run`: a fixed amount of work, µs at full capacity.
    Run {
        work_us: u64,
    },
    /// `runtime`: busy until this much wall time has passed, µs.
    Runtime {
        duration_us: u64,
    },
    /// `sleep`: relative sleep, µs.
    Sleep {
        duration_us: u64,
    },
    /// `timer`: wait for the next expiry of timer `timer` (index into [`Workload::timers`]).
    Timer {
        timer: usize,
        period_us: u64,
    },
    /// `yield`.
    Yield,
    Lock {
        mutex: ResourceId,
    },
    Unlock {
        mutex: ResourceId,
    },
    /// `wait`: `pthread_cond_wait(cond, mutex)`; the mutex must be held.
    Wait {
        cond: ResourceId,
        mutex: ResourceId,
    },
    /// `signal`.
    Signal {
        cond: ResourceId,
    },
    /// `broad`.
    Broadcast {
        cond: ResourceId,
    },
    /// `sync`: signal `cond`, then wait on it (the mutex must be held).
    Sync {
        cond: ResourceId,
        mutex: ResourceId,
    },
    /// `barrier`: index into [`Workload::barriers`].
    Barrier {
        barrier: usize,
    },
    /// `suspend`: lock `mutex`, wait on `cond`, unlock.
    Suspend {
        cond: ResourceId,
        mutex: ResourceId,
    },
    /// `resume`: lock `mutex`, broadcast `cond`, unlock.
    Resume {
        cond: ResourceId,
        mutex: ResourceId,
    },
    /// `queue_work` (proxysched extension; rt-app ignores the key): queue work item `item`
    /// (index into [`WorkqueuesSpec::items`]) on `cpu`'s pool, or the caller's CPU.
    QueueWork {
        item: usize,
        cpu: Option<u32>,
    },
    /// `flush_work` (proxysched extension): wait until work item `item` has finished.
    FlushWork {
        item: usize,
    },
    /// `"signal": {"thread": TASK}` (proxysched extension): `tgkill()` SIGUSR1 to every
    /// thread of task `task` (index into [`Workload::tasks`]); its empty handler is installed
    /// with `SA_RESTART`. rt-app reads the object as the name of a condition variable nobody
    /// waits on, so on a real kernel the event does nothing.
    SignalThread {
        task: usize,
    },
}

/// A named synchronisation object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSpec {
    /// The rt-app name (`"S"`), or `__barrier_NAME` / `__suspend_NAME` for the mutex and
    /// condition variable rt-app creates internally for barriers and suspend/resume.
    pub name: String,
    pub kind: ResourceKind,
    /// True for the internal objects behind `barrier`, `suspend` and `resume`.
    pub internal: bool,
}

/// Mutex or condition variable. A mutex and a condition variable may share a name (rt-app
/// keys its resources by name and type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// A pthread mutex; `protocol` ("none" | "pi" | "proxy") overrides the run's default
    /// protocol for this mutex (`"resources": {"S": {"protocol": "pi"}}`).
    Mutex {
        protocol: Option<String>,
        /// Our extension `"io": true`: threads take it with `mutex_lock_io()` and count as
        /// in iowait while they wait (the post-v29 nr_iowait reproducer needs it).
        io: bool,
        /// Our extension `"interruptible": true`: threads take it with
        /// `mutex_lock_interruptible()` (`rt_mutex_lock_interruptible()` under `pi`), so a
        /// signal interrupts the wait and the thread tries again.
        interruptible: bool,
    },
    Cond,
}

/// A periodic timer (rt-app `rtapp_timer` resource).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerSpec {
    /// The `ref` name.
    pub name: String,
    /// `Some(task)` for a `ref` starting with `unique`: every thread of that task (index into
    /// [`Workload::tasks`]) has its own copy. `None`: one timer shared by every thread that
    /// names it.
    pub per_thread_of_task: Option<usize>,
    /// `mode` "absolute" on any event naming this timer (rt-app stores the mode on the timer
    /// and never resets it); otherwise relative.
    pub absolute: bool,
}

/// A barrier (rt-app `rtapp_barrier` resource): its internal mutex and condition variable and
/// the initial value of its waiting counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BarrierSpec {
    pub name: String,
    pub mutex: ResourceId,
    pub cond: ResourceId,
    /// rt-app starts the counter at -1 and adds the task's instance count for every `barrier`
    /// event that names it; the arrival that finds 0 broadcasts.
    pub initial_waiting: i64,
}

/// `proxysched.workqueues`: the work items threads may queue, and the worker pools' knobs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkqueuesSpec {
    /// `items`, in file order; a work item id is the index.
    pub items: Vec<WorkItemSpec>,
    /// `workers_per_pool`: kworkers forked per CPU (None: the kernel's default).
    pub workers_per_pool: Option<u32>,
    /// `skip_sleeping_hook`: fault injection, workers block without `wq_worker_sleeping()`
    /// (proxy-exec.md B4).
    pub skip_sleeping_hook: bool,
}

/// One work item: what its function does, step by step.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkItemSpec {
    pub name: String,
    /// Where its key is in the file.
    pub line: u32,
    pub column: u32,
    pub steps: Vec<WorkStepSpec>,
}

/// One step of a work item (µs, as everywhere in the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkStepSpec {
    Run { work_us: u64 },
    Sleep { duration_us: u64 },
    Lock { mutex: ResourceId },
    Unlock { mutex: ResourceId },
    QueueWork { item: usize, cpu: Option<u32> },
}

/// How the kernel's cost model is chosen from the workload file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CostsSpec {
    /// `"costs": "default"` or `"costs": "zero"`.
    Preset(String),
    /// `"costs": {...}`: the object as compact JSON text, for the kernel to parse.
    Inline(String),
}

/// Settings from the top-level `"proxysched"` object and the rt-app globals that affect the
/// simulation.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `proxysched.cpus`: number of CPUs.
    pub cpus: Option<usize>,
    /// `proxysched.llc_size`: CPUs per last-level cache domain.
    pub llc_size: Option<usize>,
    /// `proxysched.hz`: the tick rate (CONFIG_HZ).
    pub hz: Option<u64>,
    /// `proxysched.costs`.
    pub costs: Option<CostsSpec>,
    /// `proxysched.seed`.
    pub seed: Option<u64>,
    /// Default lock protocol: `proxysched.protocol` if given, else "pi" when `global.pi_enabled`
    /// is true, else `None` (the command line's default applies).
    pub protocol: Option<String>,
    /// `proxysched.features`, in file order.
    pub features: Vec<(String, bool)>,
    /// `global.pi_enabled`.
    pub pi_enabled: bool,
    /// `global.default_policy` (SCHED_OTHER).
    pub default_policy: Policy,
    /// `proxysched.workqueues`.
    pub workqueues: WorkqueuesSpec,
    /// `proxysched.inject`: the fault-injection points armed, in file order.
    pub inject: Vec<Injection>,
    /// Task groups: those declared in `proxysched.taskgroups` and those only named by a
    /// `taskgroup` key (with the defaults), parents before children. Group id `i + 1` is
    /// entry `i`; id 0 ([`ROOT_TASKGROUP`]) is the root group.
    pub taskgroups: Vec<TaskGroupSpec>,
}

/// A task group's id: 0 is the root group, `i + 1` is `Settings::taskgroups[i]`.
pub type TaskGroupId = u32;

/// The root cgroup (`/`).
pub const ROOT_TASKGROUP: TaskGroupId = 0;

/// One task group (a cgroup with the `cpu` controller), from `proxysched.taskgroups` or only
/// named by a `taskgroup` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskGroupSpec {
    /// The cgroup path, `/name[/name...]`.
    pub path: String,
    /// The parent group (0 = the root).
    pub parent: TaskGroupId,
    /// Its weight: cgroup v2 `cpu.weight`, v1 `cpu.shares`, or the default.
    pub weight: GroupWeight,
    /// `cpu.max` (CFS bandwidth), if limited.
    pub cpu_max: Option<CpuMax>,
    /// Where the group was declared (or first named).
    pub line: u32,
    pub column: u32,
}

/// A task group's weight as the file gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupWeight {
    /// Not given: `cpu.weight` 100, i.e. `cpu.shares` 1024.
    Default,
    /// cgroup v2 `cpu.weight`, 1..10000.
    Weight(u64),
    /// cgroup v1 `cpu.shares`, 2..262144.
    Shares(u64),
}

/// `cpu.max "QUOTA PERIOD"` (µs): the group may run `quota_us` per `period_us`, summed over
/// CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuMax {
    pub quota_us: u64,
    pub period_us: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cpus: None,
            llc_size: None,
            hz: None,
            costs: None,
            seed: None,
            protocol: None,
            features: Vec::new(),
            pi_enabled: false,
            default_policy: Policy::Normal,
            workqueues: WorkqueuesSpec::default(),
            inject: Vec::new(),
            taskgroups: Vec::new(),
        }
    }
}
