//! `struct task_struct`: the per-task state the scheduler model reads and writes.
//!
//! Linux: include/linux/sched.h struct task_struct.

use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use sim::{CpuId, CpuMask, CtxId, LockId, Nanos};
use uapi::Policy;

use crate::locking::rtmutex::RtWaiter;
use crate::sched::deadline::SchedDlEntity;
use crate::sched::fair::SchedEntity;
use crate::sched::rt::SchedRtEntity;
use crate::sched::Class;
use crate::tracepoints::{Comm, Pid, TaskRef};

sim::id_type! {
    /// Index of a task in [`crate::sched::SchedState::tasks`]. Distinct from its pid: every
    /// CPU's idle task has pid 0.
    pub struct TaskId;
}

/// The execution context (kernel stack) that runs task `p`.
///
/// Every task has exactly one kernel stack, and the kernel numbers it with the task's own id
/// when it spawns it (`System::run` for user tasks, kworkers, idle and stopper tasks), so the
/// two ids hold the same number. They still mean different things — a context is what the
/// machine executes on a CPU, a task is what the scheduler queues — and this function (with
/// [`ctx_task`]) is the one place where one becomes the other.
pub fn task_ctx(p: TaskId) -> CtxId {
    CtxId(p.0)
}

/// The task whose kernel stack context `c` is: the inverse of [`task_ctx`].
pub fn ctx_task(c: CtxId) -> TaskId {
    TaskId(c.0)
}

/// `__state` bits (T-1).
pub mod state {
    pub const TASK_RUNNING: u32 = 0x0000;
    pub const TASK_INTERRUPTIBLE: u32 = 0x0001;
    pub const TASK_UNINTERRUPTIBLE: u32 = 0x0002;
    pub const TASK_DEAD: u32 = 0x0080;
    pub const TASK_WAKEKILL: u32 = 0x0100;
    pub const TASK_WAKING: u32 = 0x0200;
    pub const TASK_NOLOAD: u32 = 0x0400;
    pub const TASK_NEW: u32 = 0x0800;
    pub const TASK_IDLE: u32 = TASK_UNINTERRUPTIBLE | TASK_NOLOAD;
    pub const TASK_NORMAL: u32 = TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE;
    /// `exit_state` values.
    pub const EXIT_DEAD: u32 = 0x0010;
    pub const EXIT_ZOMBIE: u32 = 0x0020;
}

/// `p->on_rq` (T-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnRq {
    /// Not on a runqueue (blocked, new, or dead).
    No,
    /// `TASK_ON_RQ_QUEUED`: queued in its class on `task_cpu`.
    Queued,
    /// `TASK_ON_RQ_MIGRATING`: dequeued to be enqueued on another CPU.
    Migrating,
}

/// Nice to static priority.
///
/// Linux: include/linux/sched/prio.h NICE_TO_PRIO().
pub fn nice_to_prio(nice: i32) -> i32 {
    120 + nice
}

/// `MAX_RT_PRIO - 1 - rt_priority` (T-7).
///
/// Linux: kernel/sched/syscalls.c __normal_prio() (the RT branch).
pub fn rt_prio(rt_priority: u32) -> i32 {
    99 - rt_priority as i32
}

/// The priority of an idle task (`MAX_PRIO`); traces print 120 for it (TR-2).
pub const IDLE_PRIO: i32 = 140;

/// `struct task_struct` (the fields the scheduler model uses).
///
/// Memory: a model with many tasks holds one of these per task, so groups of fields that most
/// tasks never use (the deadline entity, rt_mutex PI waiters and the task's own rt_mutex
/// waiter, parked donors) are kept out of line in an [`OutOfLine`], which costs one pointer
/// until the group is first written, and the affinity mask is an id into the system's table
/// of distinct masks ([`CpuMasks`]).
///
/// Deviation: Linux embeds those groups in `task_struct`; reading them is the same here,
/// only where they are stored differs.
pub struct Task {
    pub id: TaskId,
    pub pid: Pid,
    pub comm: Comm,
    /// `__state`. Written by the task itself or by ttwu under `pi_lock`.
    pub state: u32,
    /// `exit_state`.
    pub exit_state: u32,
    /// Protected by: the rq lock of `cpu`.
    pub on_rq: OnRq,
    /// Set on `next` before a switch, cleared on `prev` after it (T-4).
    pub on_cpu: bool,
    /// `task_cpu(p)`; changed only by `set_task_cpu` (T-5).
    pub cpu: CpuId,
    /// Placement hint for the next wakeup.
    pub wake_cpu: CpuId,
    /// `cpus_mask` / `cpus_ptr`, as an id into the system's table of distinct masks
    /// ([`CpuMasks`]): read it with `SchedState::cpus_mask(t)`, write it with
    /// `SchedState::set_cpus_mask`. Protected by: `pi_lock` and the rq lock.
    pub cpus_mask: CpuMaskId,
    pub nr_cpus_allowed: u32,
    pub policy: Policy,
    /// Effective priority (`p->prio`, after PI boosting).
    pub prio: i32,
    /// `120 + nice`.
    pub static_prio: i32,
    /// Priority from the policy alone.
    pub normal_prio: i32,
    pub rt_priority: u32,
    /// `p->sched_class`, derived from `prio` and `policy` (T-8).
    pub class: Class,
    /// Fair entity (`p->se`), also holds `sum_exec_runtime` and `exec_start` for every class.
    pub se: SchedEntity,
    /// RT entity (`p->rt`).
    pub rt: SchedRtEntity,
    /// DL entity (`p->dl`). Out of line ([`OutOfLine`]): only tasks that have been
    /// SCHED_DEADLINE (or boosted by one) carry it.
    pub dl: OutOfLine<SchedDlEntity>,
    /// The server this task runs on behalf of (`p->dl_server`), if it was picked through one.
    /// Protected by: the rq lock.
    pub dl_server: Option<crate::sched::deadline::DlEntity>,
    /// `TIF_NEED_RESCHED` of this task's thread_info.
    pub need_resched: bool,
    /// `p->sched_contributes_to_load`.
    pub sched_contributes_to_load: bool,
    /// Voluntary / involuntary context switches (`nvcsw`, `nivcsw`).
    pub nvcsw: u64,
    pub nivcsw: u64,
    /// `p->pi_lock`: serialises wakeups and attribute changes.
    pub pi_lock: LockId,
    /// One of the per-CPU idle tasks (`swapper/N`).
    pub is_idle_task: bool,
    /// One of the per-CPU stopper tasks (`migration/N`).
    pub is_stopper: bool,
    /// Wake-affine bookkeeping (`last_wakee`, `wakee_flips`, `wakee_flip_decay_ts`).
    pub last_wakee: Option<TaskId>,
    pub wakee_flips: u32,
    pub wakee_flip_decay_ts: Nanos,
    /// `recent_used_cpu`.
    pub recent_used_cpu: CpuId,
    /// An affinity change is waiting for the stopper to move this running task (T-6).
    pub migration_pending: bool,
    /// The user-space half of the thread (rt-app), if any.
    pub thread: Option<uapi::ThreadId>,
    /// The user mutex or condvar this task sleeps on, for stall reports.
    pub waiting_on: Option<crate::locking::usermutex::WaitTarget>,
    /// `p->blocked_on` (spec C6): the kernel mutex (index into `SchedState::mutexes`) this
    /// task waits for as a Proxy Execution donor, or None. Only the task itself sets it; an
    /// unlocker clears it on the waiter it picks. Protected by: `blocked_lock` (and the
    /// mutex's `wait_lock`, taken before it).
    pub blocked_on: Option<crate::locking::mutex::MutexId>,
    /// `p->blocked_lock` (spec C9): raw spinlock, `LockClass::BlockedLock`, last in the
    /// order `pi_lock → rq → wait_lock → blocked_lock` (L1).
    pub blocked_lock: LockId,
    /// `blocked_on == PROXY_WAKING` (C7, v23-v29): an unlocker chose this waiter and woke it;
    /// until its wakeup returns it home (R6) it still counts as blocked, so it cannot run
    /// on a CPU it was migrated to as a donor. Protected by: `blocked_lock`.
    pub proxy_waking: bool,
    /// `p->is_blocked` (C10, v29 6/9): the task went through its own voluntary `schedule()`
    /// and has not been woken since. Written by the holder of its rq lock.
    pub is_blocked: bool,
    /// `p->blocked_donor` (C11, v29 9/9): the chain task that proxied through this owner in
    /// the latest chain walk. Protected by: the rq lock (written by find_proxy_task).
    pub blocked_donor: Option<TaskId>,
    /// `p->in_iowait`: the task sleeps for I/O (`io_schedule_prepare()`; here: while it takes
    /// a mutex declared `"io": true`, i.e. `mutex_lock_io()`). Written by the task itself.
    pub in_iowait: bool,
    /// `p->sleeping_owner` (post-v29 sleeping-owner parking): the sleeping lock owner this
    /// blocked donor is parked on, or None. Protected by: the owner's `blocked_lock`.
    pub sleeping_owner: Option<TaskId>,
    /// `p->blocked_head`: the donors parked on this sleeping owner, oldest first; they are
    /// activated on this task's runqueue when it wakes. Protected by: `blocked_lock`.
    /// Out of line ([`OutOfLine`]): only owners that donors were parked on carry it.
    pub blocked_head: OutOfLine<Vec<TaskId>>,
    /// `pi_waiters`: the top waiter of every rt_mutex this task owns, strongest first (M-10).
    /// Its first entry's task lends its priority (M-11). Protected by: `pi_lock`.
    /// Out of line ([`OutOfLine`]): only tasks that have owned a contended rt_mutex carry it.
    pub pi_waiters: OutOfLine<BTreeSet<RtWaiter>>,
    /// `pi_blocked_on`: the rt_mutex (index into `SchedState::rt_mutexes`) this task is queued
    /// on as a waiter. Protected by: `pi_lock` (written with the lock's `wait_lock` held too).
    pub pi_blocked_on: Option<crate::locking::rtmutex::RtMutexId>,
    /// The task's `struct rt_mutex_waiter` as queued on `pi_blocked_on`'s wait tree (its key:
    /// waiter prio and FIFO ticket); None while not queued. Protected by: the lock's
    /// `wait_lock`. Out of line ([`OutOfLine`]): only tasks that have waited on an rt_mutex
    /// carry it.
    pub rt_waiter: OutOfLine<Option<RtWaiter>>,
    /// `PF_WQ_WORKER` with `kthread_data()`: the workqueue worker (index into
    /// `WqState::workers`) this kernel thread is, or None.
    pub wq_worker: Option<u32>,
    /// `p->sched_task_group`: the task group whose cfs_rq the task is queued on. Changed by
    /// `sched_move_task()` under `pi_lock` and the rq lock.
    pub sched_task_group: crate::sched::cgroup::GroupId,
    /// `TIF_SIGPENDING`: a signal was sent to this task (`signal_wake_up()`) and is not yet
    /// handled; it is handled (and the flag cleared) on the task's next return to user mode.
    /// Written by the sender in one stretch with its wakeup, and by the task itself.
    pub sigpending: bool,
}

impl Task {
    pub fn task_ref(&self) -> TaskRef {
        TaskRef {
            pid: self.pid,
            prio: self.trace_prio(),
        }
    }

    /// The priority tracepoints print (TR-2): idle tasks show 120.
    pub fn trace_prio(&self) -> i32 {
        if self.is_idle_task {
            120
        } else {
            self.prio
        }
    }

    pub fn nice(&self) -> i32 {
        self.static_prio - 120
    }

    pub fn is_running_state(&self) -> bool {
        self.state == state::TASK_RUNNING
    }
}

sim::id_type! {
    /// An affinity mask interned in a system's [`CpuMasks`].
    pub struct CpuMaskId;
}

/// The distinct affinity masks of one system's tasks: a task holds a [`CpuMaskId`] (4 bytes)
/// into this table rather than a whole [`CpuMask`] (64 bytes), since most tasks share one of a
/// few masks (all CPUs, one CPU, a workload's few sets). Append-only: a mask, once interned,
/// keeps its id for the life of the system, so the table holds at most one entry per distinct
/// mask ever set. Ids `0..nr_cpus` are the single-CPU masks (id `n` is CPU `n` alone), so a
/// task built without the table ([`CpuMasks::single`]) already has a valid id.
///
/// Deviation: Linux keeps a cpumask in every task (`p->cpus_mask`, read through
/// `p->cpus_ptr`); the model's tasks share one copy of each distinct mask. Reading and
/// writing a task's mask mean the same as in Linux; only where the bits are stored differs.
pub struct CpuMasks {
    masks: Vec<CpuMask>,
    nr_cpus: usize,
    /// The id of each multi-CPU mask in `masks`.
    ids: std::collections::BTreeMap<CpuMask, u32>,
}

impl CpuMasks {
    /// A table holding the `nr_cpus` single-CPU masks.
    pub fn new(nr_cpus: usize) -> Self {
        assert!((1..=sim::MAX_CPUS).contains(&nr_cpus));
        let masks = CpuId::all(nr_cpus).map(CpuMask::single).collect();
        CpuMasks {
            masks,
            nr_cpus,
            ids: std::collections::BTreeMap::new(),
        }
    }

    /// The id of `{cpu}`, valid in every table (whose system has `cpu`).
    pub const fn single(cpu: CpuId) -> CpuMaskId {
        CpuMaskId(cpu.0)
    }

    /// The id of `mask`, adding it to the table if it is new.
    pub fn intern(&mut self, mask: CpuMask) -> CpuMaskId {
        if mask.weight() == 1 {
            let cpu = mask.first().expect("a mask of weight 1 has a first CPU");
            assert!(cpu.idx() < self.nr_cpus, "cpu{cpu} is not in this system");
            return CpuMasks::single(cpu);
        }
        let next = self.masks.len();
        let idx = *self.ids.entry(mask).or_insert_with(|| {
            assert!(next < u32::MAX as usize, "affinity mask table full");
            next as u32
        });
        if idx as usize == next {
            self.masks.push(mask);
        }
        CpuMaskId(idx)
    }

    /// The mask `id` stands for.
    #[inline]
    pub fn get(&self, id: CpuMaskId) -> &CpuMask {
        &self.masks[id.idx()]
    }

    /// How many distinct masks the table holds (the single-CPU ones included).
    pub fn len(&self) -> usize {
        self.masks.len()
    }

    /// Never: the table starts with the single-CPU masks.
    pub fn is_empty(&self) -> bool {
        self.masks.is_empty()
    }
}

/// A rarely used group of fields kept out of line: one pointer, and no allocation until the
/// group is first written. Reading a group that was never written yields its pristine value
/// (the value a new task's group has, `T::default()`), so code reads and writes the fields as
/// if they were inline: `t.dl.runtime`, `t.pi_waiters.first()` (through `Deref`), and
/// `t.dl.runtime = r` (through `DerefMut`, which allocates the group on first use).
///
/// Model-only: no Linux counterpart (see [`Task`]).
pub struct OutOfLine<T: Pristine>(Option<Box<T>>);

/// A type whose default value can be shared by every [`OutOfLine`] not yet written.
pub trait Pristine: Default + Sync + Send + Sized + 'static {
    /// The shared, never written default value.
    fn pristine() -> &'static Self;
}

/// Implements [`Pristine`] for each type with a lazily built shared default.
macro_rules! pristine {
    ($($t:ty),* $(,)?) => {$(
        impl Pristine for $t {
            fn pristine() -> &'static Self {
                static P: OnceLock<$t> = OnceLock::new();
                P.get_or_init(Default::default)
            }
        }
    )*};
}

pristine!(SchedDlEntity, BTreeSet<RtWaiter>, Option<RtWaiter>, Vec<TaskId>);

impl<T: Pristine> OutOfLine<T> {
    /// A group that was never written (reads as `T::default()`).
    pub const fn new() -> Self {
        OutOfLine(None)
    }

    /// Back to the pristine value, freeing the group.
    pub fn reset(&mut self) {
        self.0 = None;
    }

    /// Whether the group has been written (and so allocated) since creation or the last
    /// [`OutOfLine::reset`].
    pub fn is_allocated(&self) -> bool {
        self.0.is_some()
    }
}

impl<T: Pristine> Default for OutOfLine<T> {
    fn default() -> Self {
        OutOfLine::new()
    }
}

impl<T: Pristine> Deref for OutOfLine<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        match &self.0 {
            Some(b) => b,
            None => T::pristine(),
        }
    }
}

impl<T: Pristine> DerefMut for OutOfLine<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Default::default)
    }
}

/// Prints the value (pristine or written alike), so a state dump does not depend on whether
/// a group was ever allocated.
impl<T: Pristine + std::fmt::Debug> std::fmt::Debug for OutOfLine<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_masks_intern_each_distinct_mask_once() {
        let mut t = CpuMasks::new(4);
        assert_eq!(t.len(), 4);
        // A single-CPU mask is its CPU's id, without growing the table.
        assert_eq!(t.intern(CpuMask::single(CpuId(2))), CpuMasks::single(CpuId(2)));
        assert_eq!(*t.get(CpuMasks::single(CpuId(3))), CpuMask::single(CpuId(3)));
        assert_eq!(t.len(), 4);
        let all = CpuMask::first_n(4);
        let mut two = CpuMask::single(CpuId(1));
        two.set(CpuId(3));
        let a = t.intern(all);
        let b = t.intern(two);
        assert_ne!(a, b);
        assert_eq!(t.intern(all), a, "an interned mask got a second id");
        assert_eq!(t.intern(two), b);
        assert_eq!(t.len(), 6);
        assert_eq!(*t.get(a), all);
        assert_eq!(*t.get(b), two);
    }

    #[test]
    fn cpu_masks_ids_follow_first_sight_among_many() {
        // Every pair of CPUs of a 64-CPU system: 2 016 distinct masks, ids in the order first
        // seen, each found again by its mask.
        let mut t = CpuMasks::new(64);
        let pairs: Vec<CpuMask> = (0..64u32)
            .flat_map(|a| (a + 1..64).map(move |b| (a, b)))
            .map(|(a, b)| {
                let mut m = CpuMask::single(CpuId(a));
                m.set(CpuId(b));
                m
            })
            .collect();
        for (i, &m) in pairs.iter().enumerate() {
            assert_eq!(t.intern(m), CpuMaskId(64 + i as u32));
        }
        for (i, &m) in pairs.iter().enumerate().rev() {
            assert_eq!(t.intern(m), CpuMaskId(64 + i as u32));
            assert_eq!(*t.get(CpuMaskId(64 + i as u32)), m);
        }
        assert_eq!(t.len(), 64 + 2016);
    }

    #[test]
    fn out_of_line_reads_pristine_until_written() {
        let mut g: OutOfLine<Vec<TaskId>> = OutOfLine::new();
        assert!(g.is_empty());
        assert!(!g.is_allocated(), "a read allocated the group");
        g.push(TaskId(3));
        assert!(g.is_allocated());
        assert_eq!(&*g, &[TaskId(3)]);
        assert_eq!(format!("{g:?}"), format!("{:?}", [TaskId(3)]));
        g.reset();
        assert!(!g.is_allocated());
        assert!(g.is_empty());
        // The shared pristine value was never written through any group.
        assert!(<Vec<TaskId> as Pristine>::pristine().is_empty());
    }
}
