//! The scheduler: core, classes and the state they share.
//!
//! Linux: kernel/sched/sched.h (struct rq, struct sched_class, enqueue/dequeue flags).
//!
//! Everything the scheduler owns lives in one [`SchedState`] arena, borrowed only between
//! await points of the kernel paths in [`core`]. Class code is synchronous: Linux forbids class
//! hooks from dropping the rq lock (S-4), so every hook runs inside one step of the machine.

pub mod cgroup;
pub mod class;
pub mod core;
pub mod costs;
pub mod cpudeadline;
pub mod cpupri;
pub mod deadline;
pub mod fair;
pub mod fair_balance;
pub mod features;
pub mod idle;
pub mod nohz;
pub mod rt;
pub mod sortedset;
pub mod stop_task;
pub mod tasklist;
pub mod topology;

use std::rc::Rc;

use sim::{CpuId, LockId, Machine, Nanos};

use crate::task::{Task, TaskId};
use crate::tracepoints::EventSink;

pub use costs::Costs;
pub use features::Features;

/// The scheduling classes in Linux's priority order (T-8). A closed set: an enum, not trait
/// objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Stop,
    Deadline,
    Rt,
    Fair,
    Idle,
}

impl Class {
    /// All classes, highest first (`for_each_class`).
    pub const ALL: [Class; 5] = [Class::Stop, Class::Deadline, Class::Rt, Class::Fair, Class::Idle];
}

bitflags::bitflags! {
    /// Enqueue flags (`ENQUEUE_*`): how `enqueue_task()` and the class hooks place a task. A
    /// type of their own, so a dequeue or wake flag cannot be passed where these belong:
    ///
    /// ```compile_fail
    /// use kernel::sched::{core::enqueue_task, DequeueFlags, SchedState};
    /// fn requeue(s: &mut SchedState) {
    ///     enqueue_task(s, 0, 1, DequeueFlags::SAVE); // expected `EnqueueFlags`
    /// }
    /// ```
    ///
    /// Linux: kernel/sched/sched.h ENQUEUE_*.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct EnqueueFlags: u32 {
        /// `ENQUEUE_WAKEUP`: the task wakes from a sleep.
        const WAKEUP = 0x01;
        /// `ENQUEUE_RESTORE`: requeued after a `DEQUEUE_SAVE` (a change of attributes).
        const RESTORE = 0x02;
        /// `ENQUEUE_MOVE`: the queue position may change (priority or class change).
        const MOVE = 0x04;
        /// `ENQUEUE_NOCLOCK`: the caller already updated the rq clock.
        const NOCLOCK = 0x08;
        /// `ENQUEUE_MIGRATING`: the task moves between runqueues.
        const MIGRATING = 0x10;
        /// `ENQUEUE_DELAYED`: a delay-dequeued fair task is requeued in place (F-20).
        const DELAYED = 0x20;
        /// `ENQUEUE_HEAD`: at the head of its priority list (a deboosted RT task, R-2).
        const HEAD = 0x40;
        /// `ENQUEUE_REPLENISH`: refill a DL entity's runtime on the enqueue.
        const REPLENISH = 0x80;
        /// `ENQUEUE_MIGRATED`: the task changed CPU since it last ran.
        const MIGRATED = 0x100;
        /// `ENQUEUE_INITIAL`: a new task's first enqueue.
        const INITIAL = 0x200;
        /// `ENQUEUE_RQ_SELECTED`: `select_task_rq()` chose this rq.
        const RQ_SELECTED = 0x400;
    }

    /// Dequeue flags (`DEQUEUE_*`): why `dequeue_task()` takes a task off its queue.
    ///
    /// Linux: kernel/sched/sched.h DEQUEUE_*.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct DequeueFlags: u32 {
        /// `DEQUEUE_SLEEP`: the task blocks.
        const SLEEP = 0x01;
        /// `DEQUEUE_SAVE`: taken off for an attribute change, requeued with `ENQUEUE_RESTORE`.
        const SAVE = 0x02;
        /// `DEQUEUE_MOVE`: the queue position may change.
        const MOVE = 0x04;
        /// `DEQUEUE_NOCLOCK`: the caller already updated the rq clock.
        const NOCLOCK = 0x08;
        /// `DEQUEUE_MIGRATING`: the task moves between runqueues.
        const MIGRATING = 0x10;
        /// `DEQUEUE_DELAYED`: finish a delayed dequeue (F-20).
        const DELAYED = 0x20;
        /// `DEQUEUE_SPECIAL`: a special state (dead, waking): never delay-dequeued.
        const SPECIAL = 0x40;
    }

    /// Wakeup flags (`WF_*`, W-12): what kind of wakeup `select_task_rq()` and
    /// `wakeup_preempt()` handle.
    ///
    /// Linux: kernel/sched/sched.h WF_*.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct WakeFlags: u32 {
        /// `WF_EXEC`: the task execs.
        const EXEC = 0x02;
        /// `WF_FORK`: a new task's first wakeup.
        const FORK = 0x04;
        /// `WF_TTWU`: an ordinary `try_to_wake_up()`.
        const TTWU = 0x08;
        /// `WF_SYNC`: the waker is about to sleep.
        const SYNC = 0x10;
        /// `WF_MIGRATED`: the wakeup moved the task to another CPU.
        const MIGRATED = 0x20;
        /// `WF_CURRENT_CPU`: prefer the waker's CPU.
        const CURRENT_CPU = 0x40;
        /// `WF_RQ_SELECTED`: `select_task_rq()` chose the rq.
        const RQ_SELECTED = 0x80;
    }
}

/// Deferred cross-rq work queued by class hooks (`rq->balance_callback`, S-4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalanceCallback {
    /// `push_rt_tasks`.
    PushRt,
    /// `pull_rt_task` (used from `balance_rt` when it must drop the lock).
    PullRt,
    /// `push_dl_tasks`.
    PushDl,
    /// `pull_dl_task`.
    PullDl,
}

/// `struct rq`. Protected by: `lock` (the rq lock), except where a field says otherwise.
pub struct Rq {
    pub cpu: CpuId,
    /// `rq->__lock`.
    pub lock: LockId,
    /// The execution context (C1).
    pub curr: TaskId,
    /// The scheduling context (C2); equal to `curr` without Proxy Execution.
    pub donor: TaskId,
    pub idle: TaskId,
    pub stop: TaskId,
    /// Class of the task picked last (C4).
    pub next_class: Class,
    /// Queued tasks of every class, delayed fair tasks included (T-9a).
    pub nr_running: u32,
    pub cfs: fair::CfsRq,
    pub rt: rt::RtRq,
    pub dl: deadline::DlRq,
    /// The fair server (`rq->fair_server`, D-20): a DL entity queued on `dl` while it runs.
    pub fair_server: deadline::SchedDlEntity,
    /// The server whose pick is being committed (`rq->dl_server`): set by `pick_task_dl`,
    /// moved to the picked task by `put_prev_set_next_task`.
    pub dl_server: Option<deadline::DlEntity>,
    /// `rq->clock` and `rq->clock_task` (no IRQ/steal time is modelled, so they are equal).
    pub clock: Nanos,
    pub clock_task: Nanos,
    pub nr_switches: u64,
    pub nr_uninterruptible: i64,
    /// `rq->nr_iowait`: tasks in iowait that blocked on this CPU and were not yet woken.
    /// Raised by `__block_task()`, lowered by the wakeup on the CPU the task slept on
    /// (`task_rq(p)` before it moves). Signed: the post-v29 bug it exposes drives it below 0.
    pub nr_iowait: i64,
    /// Lock-free wake list (`rq->wake_list` of `call_single_data`). Pushed by remote wakers
    /// without the rq lock, drained by `sched_ttwu_pending`.
    pub wake_list: Vec<TaskId>,
    /// `rq->ttwu_pending`.
    pub ttwu_pending: bool,
    /// Model bookkeeping: how often the wake list went from empty to non-empty (each time
    /// an IPI or poll kick goes out), so the stall check can tell one episode from the next.
    pub wake_list_gen: u64,
    pub balance_callbacks: Vec<BalanceCallback>,
    /// Model-only: this rq's `__schedule()` is inside the class balance pass of its pick
    /// (`prev_balance()`), which may drop the rq lock. Read by the I3 checker only.
    pub in_prev_balance: bool,
    /// Jiffy at which the next periodic balance pass is due.
    pub next_balance: u64,
    /// Average idle period (`rq->avg_idle`), and when this CPU last went idle.
    pub avg_idle_ns: Nanos,
    pub idle_stamp: Nanos,
    pub max_idle_balance_cost_ns: Nanos,
    /// Per-domain balance state (interval and failure count of the periodic balancer).
    pub balance_interval_ms: Vec<u64>,
    pub nr_balance_failed: Vec<u32>,
    pub last_balance: Vec<u64>,
    /// Stop-class work queued for this CPU's stopper (`cpu_stopper.works`).
    pub stop_works: Vec<stop_task::StopWork>,
    /// An RT_PUSH_IPI request for this CPU to push its RT tasks (`rto_push_irq_work_func`).
    pub rt_push_work_pending: bool,
    /// The CPU is in an interrupt handler (for trace flags).
    pub in_hardirq: bool,
    /// Checker-only: the last hop of the chain walk of this CPU's last pick, while no unlock
    /// has used it up (`invariants::handoff::record_walk`); None after a pick that runs its
    /// donor or idle. Read by the `proxy_handoff_to_booster` check only.
    pub handoff_walk: Option<crate::invariants::handoff::Hop>,
    /// The (donor, executing task) pair last traced as a proxy slice, if a proxy ran.
    pub proxy_traced: Option<(TaskId, TaskId)>,
    /// The task this CPU switched away from last; read by the next task's
    /// `finish_task_switch()` (Linux passes it through `switch_to`'s `last`).
    pub last_prev: TaskId,
    /// The tick found a periodic balance due (`SCHED_SOFTIRQ` raised).
    pub balance_softirq_pending: bool,
    /// `TIF_POLLING_NRFLAG` of `rq->idle`: set while `do_idle()` waits in its loop (the
    /// model's C1 is mwait-like and keeps polling), cleared before the wake-list flush and
    /// `schedule_idle()`. A remote waker or `resched_curr()` only skips the IPI while it is set.
    pub polling: bool,
    /// Tickless idle state of this CPU (`tick_sched`, `rq->nohz_*`).
    pub nohz: nohz::RqNohz,
    /// Held spinlocks plus explicit preempt_disable (for trace flags and preemptibility).
    pub preempt_count: u32,
    pub irqs_disabled: bool,
}

/// The scheduler's arena: every task, every runqueue, the knobs, and the event sink.
pub struct SchedState {
    pub m: Rc<Machine>,
    pub tasks: Vec<Task>,
    /// The distinct affinity masks the tasks' `cpus_mask` ids stand for (append-only).
    pub cpus_masks: crate::task::CpuMasks,
    pub rqs: Vec<Rq>,
    pub feat: Features,
    /// The `--model` stage whose rules the invariants check (see `system::Config::model`).
    pub model: features::ModelVersion,
    /// Numeric tunables (sysctls: RR slice, HZ, base slice, ...).
    pub tun: features::Tunables,
    pub costs: Costs,
    pub topo: topology::Topology,
    /// Root-domain cpupri (R-7).
    pub cpupri: cpupri::CpuPri,
    /// Root-domain RT overload mask (`rd->rto_mask`, R-6).
    pub rto_mask: sim::CpuMask,
    /// Root-domain RT_PUSH_IPI chain state (`rd->rto_cpu`, `rto_loop`, `rto_loop_next`, R-12).
    pub rto: rt::RtoState,
    /// Root-domain cpudl (D-12). Protected by: the rq lock of the CPU whose entry changes.
    pub cpudl: cpudeadline::CpuDl,
    /// Root-domain DL overload mask (`rd->dlo_mask`). Protected by: as `rto_mask`.
    pub dlo_mask: sim::CpuMask,
    /// Root-domain DL admission state (`rd->dl_bw`, D-2). Protected by: `dl_b->lock` in Linux;
    /// updated under the task's `pi_lock` and rq lock here, each update one machine step.
    pub dl_bw: deadline::DlBw,
    /// Root-domain overload flag: some CPU has more than one runnable task (F-41).
    pub rd_overloaded: bool,
    /// Fault injection `donor_swap_in_balance` is armed (see
    /// [`core::inject_remote_donor_swap`]); it disarms when it fires.
    pub inject_donor_swap_in_balance: bool,
    /// Fault injection `model_assertion`: a model assertion fails at CPU 0's first tick.
    pub inject_model_assertion: bool,
    pub sink: Box<dyn EventSink>,
    /// `jiffies`.
    pub jiffies: u64,
    /// The tickless idle CPUs and the idle load balancer's state (`nohz` in fair.c).
    pub nohz: nohz::Nohz,
    pub nr_events: u64,
    /// Per-CPU hrtimer queues (kernel/time/hrtimer.c), ordered by hard expiry.
    pub hrtimers: Vec<crate::time::HrTimerQueue>,
    /// Task wake-up timers taken off their queue by an interrupt whose handler has not run
    /// yet (model bookkeeping for the stall watchdog, not a Linux field).
    pub task_timers_in_flight: u32,
    pub hrtimer_seq: u64,
    /// The chain walk's cycle marks ([`crate::sched::core::ProxyChainMarks`]).
    pub proxy_chain_marks: crate::sched::core::ProxyChainMarks,
    /// User-visible synchronisation objects (the workload's mutexes and condvars).
    /// Kernel mutexes (`struct mutex`) and rt_mutexes of the workload.
    pub mutexes: Vec<crate::locking::mutex::Mutex>,
    pub rt_mutexes: Vec<crate::locking::rtmutex::RtMutex>,
    /// Next FIFO ticket for an rt_mutex wait tree or `pi_waiters` insertion: a waiter inserted
    /// among equals goes after them, as `rb_add_cached` does.
    pub rt_waiter_seq: u64,
    pub user_conds: Vec<crate::locking::usermutex::UserCond>,
    /// The workload's resource ids (`uapi::ResourceId`) in creation order.
    pub user_resources: Vec<crate::locking::usermutex::UserResource>,
    /// Tasks of the workload (not idle or stopper tasks), and how many have exited.
    pub nr_user_tasks: u32,
    pub nr_exited: u32,
    /// Consecutive ticks with nothing runnable anywhere (stall detection).
    pub stall_ticks: u32,
    /// Per CPU, the wake-list episode (`Rq::wake_list_gen`) the stall check first saw
    /// non-empty, and when (model bookkeeping for the lost wake-list rule).
    pub wake_list_seen: Vec<Option<(u64, Nanos)>>,
    /// Kernel warnings (`WARN_ONCE`) that do not fail the run, in the order they fired, each
    /// once; the command line prints them.
    pub warnings: Vec<String>,
    /// Worker pools, kworkers and work items (kernel/workqueue.c).
    pub wq: crate::workqueue::WqState,
    /// Task groups (the cgroup CPU controller), indexed by [`cgroup::GroupId`]; entry 0 is
    /// the root group. Protected by: see [`cgroup::TaskGroup`].
    pub groups: Vec<cgroup::TaskGroup>,
    /// Coverage marks of rare paths (model-only counters, no effect on the schedule).
    pub coverage: crate::coverage::Coverage,
}

impl SchedState {
    /// `WARN_ONCE()`: record `msg` the first time it is raised.
    pub fn warn_once(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    #[inline]
    pub fn now(&self) -> Nanos {
        self.m.now()
    }

    pub fn nr_cpus(&self) -> usize {
        self.rqs.len()
    }

    /// Task `t`'s affinity (`t->cpus_ptr`), from the table of distinct masks.
    #[inline]
    pub fn cpus_mask(&self, t: &Task) -> &sim::CpuMask {
        self.cpus_masks.get(t.cpus_mask)
    }

    /// Sets task `p`'s affinity to `mask` (the `cpus_mask` write of `set_cpus_allowed_common()`);
    /// `nr_cpus_allowed` is the caller's to update.
    pub fn set_cpus_mask(&mut self, p: TaskId, mask: sim::CpuMask) {
        self.tasks[p.idx()].cpus_mask = self.cpus_masks.intern(mask);
    }
}
