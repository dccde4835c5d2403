//! Tracepoints: the event stream the kernel model emits.
//!
//! Every record carries a Linux tracepoint's name and fields (include/trace/events/sched.h,
//! lock.h, ipi.h, task.h) so the report crate can print it exactly as the kernel's `trace` file
//! does, and every metric is computed from this stream, never from model internals. Records
//! are emitted in simulated-time order.

use sim::{CpuId, Nanos};
use uapi::{Policy, TraceMarker};

/// A thread id (`pid` in tracepoints). The idle task of every CPU is pid 0.
pub type Pid = u32;

/// Who a task is, as tracepoints print it: pid and effective priority at emission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskRef {
    pub pid: Pid,
    /// Effective `p->prio` (-1 deadline, 0..98 RT, 100..139 fair, 120 for idle).
    pub prio: i32,
}

pub use uapi::Comm;

/// `prev_state` of `sched_switch` (TR-3): the letter, or `R+` for a preempted task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrevState {
    /// Still runnable and preempted (`R+`).
    Preempted,
    /// Runnable, gave up the CPU voluntarily (yield) or its sleep was cancelled (`R`).
    Running,
    /// `S` (TASK_INTERRUPTIBLE).
    Sleeping,
    /// `D` (TASK_UNINTERRUPTIBLE).
    DiskSleep,
    /// `I` (TASK_IDLE: UNINTERRUPTIBLE|NOLOAD).
    Idle,
    /// `X` (EXIT_DEAD), `Z` (EXIT_ZOMBIE).
    Dead,
    Zombie,
}

impl PrevState {
    /// The text ftrace prints.
    pub fn as_str(self) -> &'static str {
        match self {
            PrevState::Preempted => "R+",
            PrevState::Running => "R",
            PrevState::Sleeping => "S",
            PrevState::DiskSleep => "D",
            PrevState::Idle => "I",
            PrevState::Dead => "X",
            PrevState::Zombie => "Z",
        }
    }
}

/// The five trace-flag columns of a `trace` line (TR-6), from the model's state at emission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceFlags {
    pub irqs_off: bool,
    pub need_resched: bool,
    pub hardirq: bool,
    /// Preemption depth (held spinlocks plus explicit preempt_disable), printed in hex.
    pub preempt_depth: u8,
}

impl TraceFlags {
    /// The five characters, e.g. `d..2.`.
    pub fn render(&self) -> [u8; 5] {
        let depth = match self.preempt_depth {
            0 => b'.',
            d @ 1..=9 => b'0' + d,
            d @ 10..=15 => b'a' + d - 10,
            _ => b'f',
        };
        [
            if self.irqs_off { b'd' } else { b'.' },
            if self.need_resched { b'N' } else { b'.' },
            if self.hardirq { b'h' } else { b'.' },
            depth,
            b'.',
        ]
    }
}

/// One tracepoint record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub time_ns: Nanos,
    /// The CPU whose trace buffer holds the record.
    pub cpu: CpuId,
    /// The task current on that CPU when the record was written (the line's `comm-pid`).
    pub owner: Pid,
    pub flags: TraceFlags,
    pub kind: EventKind,
}

/// The tracepoints. Field names follow the kernel's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `task_newtask: pid=%d comm=%s clone_flags=%lx oom_score_adj=%hd`, plus the scheduling
    /// attributes the task starts with (model extension, not printed).
    TaskNewtask {
        pid: Pid,
        comm: Comm,
        policy: Policy,
        prio: i32,
        nice: i32,
        /// A kernel thread (the per-CPU stoppers), not a workload task.
        kthread: bool,
    },
    /// A task's policy or priority changed through `sched_setattr()` (model extension: Linux
    /// has no tracepoint here, so the ftrace writer prints nothing; rt-app's own
    /// `rtapp_attrs` marker is the user-visible trace of it).
    SchedSetattr {
        pid: Pid,
        policy: Policy,
        prio: i32,
        nice: i32,
        /// For SCHED_DEADLINE: `sched_runtime`, `sched_deadline`, `sched_period` as the
        /// caller passed them (ns), so reports can print the reservation as the user wrote it.
        dl_params_ns: Option<[Nanos; 3]>,
    },
    /// `sched_switch`.
    SchedSwitch {
        prev: TaskRef,
        prev_state: PrevState,
        next: TaskRef,
    },
    /// `sched_waking` (emitted by the waker, target_cpu = the task's CPU before placement).
    SchedWaking { task: TaskRef, target_cpu: CpuId },
    /// `sched_wakeup` (when the task becomes TASK_RUNNING on `target_cpu`).
    SchedWakeup { task: TaskRef, target_cpu: CpuId },
    /// `sched_wakeup_new`.
    SchedWakeupNew { task: TaskRef, target_cpu: CpuId },
    /// `sched_migrate_task`.
    SchedMigrateTask {
        task: TaskRef,
        orig_cpu: CpuId,
        dest_cpu: CpuId,
    },
    /// `sched_process_exit`.
    SchedProcessExit { task: TaskRef },
    /// `sched_pi_setprio: comm=%s pid=%d oldprio=%d newprio=%d`.
    SchedPiSetprio {
        task: TaskRef,
        oldprio: i32,
        newprio: i32,
    },
    /// `ipi_send_cpu: cpu=%u callsite=%pS callback=%pS`.
    IpiSendCpu { target_cpu: CpuId, reason: IpiReason },
    /// `contention_begin: %p (flags=SPIN)` on a raw spinlock (model: lock class and instance).
    ContentionBegin { lock: LockName },
    /// `contention_end: %p (ret=0)`.
    ContentionEnd { lock: LockName, spun_ns: Nanos },
    /// A sleeping lock was created (model extension, not printed): its name for the reports.
    LockInit { lock: LockName, name: Comm },
    /// `pid` must wait for a sleeping lock (mutex slow path, rt_mutex block). Printed as an
    /// atrace slice begin `tracing_mark_write: B|pid|lock_wait NAME` (model extension; Linux
    /// has `contention_begin` with flags MUTEX/RT, which does not name the waiter).
    LockContended { pid: Pid, lock: LockName },
    /// `pid` took the lock it waited for (`tracing_mark_write: E|pid`).
    LockAcquired { pid: Pid, lock: LockName },
    /// `pid`'s wait for a sleeping lock ended without the lock: a signal interrupted
    /// `mutex_lock_interruptible()` / `rt_mutex_lock_interruptible()` (-EINTR). Ends the
    /// wait's slice like `LockAcquired` (`tracing_mark_write: E|pid`); Linux's
    /// `contention_end` carries `ret=-4` here.
    LockInterrupted { pid: Pid, lock: LockName },
    /// `signal_generate: sig=%d errno=%d code=%d comm=%s pid=%d grp=%d res=%d`: a signal was
    /// sent to thread `pid` (`comm`) with `tgkill()` (code SI_TKILL, grp 0); `res` is 0
    /// (TRACE_SIGNAL_DELIVERED) or 2 (TRACE_SIGNAL_ALREADY_PENDING: a standard signal already
    /// pending is not queued twice). Printed in the ftrace text only.
    SignalGenerate {
        sig: u32,
        code: i32,
        comm: Comm,
        pid: Pid,
        res: u32,
    },
    /// `find_proxy_task()` chose `owner` to run on `donor`'s scheduling context (model
    /// extension, not printed; counted as `proxy_picks`).
    ProxyPick { donor: TaskRef, owner: TaskRef },
    /// `owner` starts executing on `donor`'s scheduling context on this CPU: printed as the
    /// atrace slice `tracing_mark_write: B|<owner pid>|proxy for <donor comm>-<pid>`.
    ProxyBegin { donor: TaskRef, owner: TaskRef },
    /// The proxy slice ends (`tracing_mark_write: E|<owner pid>`).
    ProxyEnd { donor: TaskRef, owner: TaskRef },
    /// One donor migration (`proxy_migrate_task()`): `task`, the link whose owner is remote,
    /// and with chain migration everyone lending through it (`nr_tasks` in all) moved to the
    /// owner's CPU (model extension, not printed; each move is also a `sched_migrate_task`
    /// record; counted as `proxy_migrations`, one per operation).
    ProxyMigrate {
        task: TaskRef,
        orig_cpu: CpuId,
        dest_cpu: CpuId,
        nr_tasks: u32,
    },
    /// A waking donor left the CPU it was migrated to and is placed again (model extension,
    /// counted as `return_migrations`).
    ReturnMigrate { task: TaskRef, orig_cpu: CpuId },
    /// Post-v29 sleeping-owner parking (`proxy_enqueue_on_owner()`): `donor` sleeps until its
    /// lock's `owner` wakes, then is activated on the owner's runqueue (model extension, not
    /// printed).
    ProxyPark { donor: TaskRef, owner: TaskRef },
    /// `tracing_mark_write:` a user program's write to the trace marker.
    UserMark { pid: Pid, mark: TraceMarker },
    /// `workqueue_queue_work: work struct=%p function=%ps workqueue=%s req_cpu=%d cpu=%d`
    /// (`function` is the work item's name).
    WorkqueueQueueWork {
        work: u32,
        function: Comm,
        req_cpu: CpuId,
        cpu: CpuId,
    },
    /// `workqueue_execute_start: work struct %p: function %ps`.
    WorkqueueExecuteStart { work: u32, function: Comm },
    /// `workqueue_execute_end: work struct %p: function %ps`.
    WorkqueueExecuteEnd { work: u32, function: Comm },
    /// A DL task ran out of budget (or yielded) and was throttled until its next period
    /// (`update_curr_dl_se()`; model extension, not printed: Linux has no tracepoint here;
    /// counted as the task's `dl_throttles`).
    DlThrottle { pid: Pid },
    /// A DL task's instance was still runnable after its absolute deadline `deadline_ns`
    /// (model extension, not printed; counted as the task's `deadline_misses`, see
    /// docs/metrics.md for the definition).
    DlDeadlineMiss { pid: Pid, deadline_ns: Nanos },
}

/// Why an IPI was sent (printed as the callback symbol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpiReason {
    /// `resched_curr` → `smp_send_reschedule`.
    Reschedule,
    /// Wake list → `generic_smp_call_function_single_interrupt` → `sched_ttwu_pending`.
    WakeList,
    /// Stopper / push work queued on another CPU.
    CallFunction,
    /// `kick_ilb()`: the nohz idle load balancer's kick (`nohz_csd_func`).
    NohzKick,
}

/// A raw spinlock named by class and instance, for contention records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockName {
    /// `rq->__lock` of a CPU.
    Rq(CpuId),
    /// `p->pi_lock`.
    PiLock(Pid),
    /// Any other raw spinlock of the model, by machine lock number.
    Other(u32),
    /// A kernel `struct mutex` (index into `SchedState::mutexes`).
    Mutex(crate::locking::mutex::MutexId),
    /// An rt_mutex (index into `SchedState::rt_mutexes`).
    RtMutex(crate::locking::rtmutex::RtMutexId),
}

/// Receives the event stream. Implemented by the report crate's writers and collectors.
pub trait EventSink {
    fn event(&mut self, e: &Event);
}

/// Discards everything (for benchmarks of the model alone).
pub struct NullSink;

impl EventSink for NullSink {
    fn event(&mut self, _e: &Event) {}
}

impl EventSink for Vec<Event> {
    fn event(&mut self, e: &Event) {
        self.push(*e);
    }
}
