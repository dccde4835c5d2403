//! Concurrency-managed workqueues: per-CPU worker pools, their `kworker/N:M` threads, and the
//! scheduler hooks that keep each pool's count of running workers honest (spec S-6, S-7).
//!
//! Linux: kernel/workqueue.c.
//!
//! A pool starts one worker for its pending work items and lets that worker run them one
//! after another while it does not sleep. Only when the running worker blocks (the scheduler
//! calls `wq_worker_sleeping()` from `sched_submit_work()`) does the pool's `nr_running` drop
//! to zero and an idle worker get woken for the next item. A worker that blocks without that
//! hook (proxy-exec.md B4) leaves `nr_running` counting it, so the pool never starts another
//! worker: if the blocked worker waits, even through a lock, for an item queued behind it, the
//! system stalls. [`WqState::skip_sleeping_hook`] injects exactly that fault.
//!
//! What a work item does (`work->func`) is a small program of [`WorkStep`]s declared by the
//! workload; user threads queue items with `queue_work_on()` and wait for them with
//! `flush_work()`, both reached through system calls ([`uapi::UserOp::QueueWork`],
//! [`uapi::UserOp::FlushWork`]).
//!
//! Deviation: only the per-CPU normal-priority pools exist (no highpri or unbound pools, no
//! workqueue_struct/pool_workqueue layer, no max_active, no rescuer); every work item is queued
//! on `system_wq`'s pool of the CPU it names.
//!
//! Deviation: Linux creates workers on demand (`manage_workers()` keeps one idle worker in
//! reserve and `create_worker()` forks another when the last idle one starts working). The
//! model forks a fixed number of workers per pool at boot ([`WqState::workers_per_pool`],
//! default [`DEFAULT_WORKERS_PER_POOL`]), created already idle (as if each had run once to
//! `worker_enter_idle()`); when all of them are busy, pending work waits for one to return.

use std::collections::VecDeque;

use sim::{CpuId, LockId, Nanos, RunResult};
use uapi::{ResourceId, WorkId};

use crate::locking::lockdep::LockClass;
use crate::locking::usermutex::WaitTarget;
use crate::sched::core::{emit, preempt_point, schedule, schedule_tail, wake_up_process, Kernel};
use crate::sched::SchedState;
use crate::task::{state, TaskId};
use crate::tracepoints::{Comm, EventKind, LockName};

/// Workers forked per pool when the workload does not say.
pub const DEFAULT_WORKERS_PER_POOL: u32 = 4;

/// `wq_cpu_intensive_thresh_us` (10 ms): a work item that runs this long without sleeping is
/// CPU-intensive and stops counting in `nr_running` (S-7).
pub const WQ_CPU_INTENSIVE_THRESH_NS: Nanos = 10_000_000;

/// Upper bound on the steps of one work item (every loop has a limit).
pub const MAX_WORK_STEPS: usize = 4096;

/// One step of a work item's function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkStep {
    /// Execute `work_ns` of CPU work in kernel mode (preemptible, ticks arrive).
    Run { work_ns: Nanos },
    /// `msleep()`-like: sleep TASK_INTERRUPTIBLE for `ns` (an hrtimer wakes the worker).
    Sleep { ns: Nanos },
    /// `mutex_lock()` on a workload mutex (its protocol decides mutex or rt_mutex).
    Lock { mutex: ResourceId },
    /// `mutex_unlock()`.
    Unlock { mutex: ResourceId },
    /// `queue_work_on(cpu, work)`; `None` = the CPU the worker runs on (`queue_work()`).
    QueueWork { work: WorkId, cpu: Option<CpuId> },
}

/// `struct work_struct`: one work item, queued at most once at a time.
///
/// Protected by: the `lock` of the pool it was last queued on (`get_work_pool()`).
pub struct WorkStruct {
    pub name: String,
    /// What `work->func` does.
    pub steps: Vec<WorkStep>,
    /// `WORK_STRUCT_PENDING`: on some pool's worklist (or a worker's scheduled list).
    pub pending: bool,
    /// The pool it was last queued on (`work->data`'s pool id), None before the first queue.
    pub pool: Option<CpuId>,
    /// Successful `queue_work_on()` calls so far (instance numbers start at 1).
    pub nr_queued: u64,
    /// The instance a worker took off the list last, and the last one that finished.
    pub nr_started: u64,
    pub nr_done: u64,
    /// `flush_work()` callers: (task, instance it waits for).
    pub flushers: Vec<(TaskId, u64)>,
}

/// `struct worker` flags (`WORKER_*`) the model uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerFlags {
    /// `WORKER_IDLE`: on the pool's idle list.
    pub idle: bool,
    /// `WORKER_PREP`: preparing to run works (not yet, or no longer, executing).
    pub prep: bool,
    /// `WORKER_CPU_INTENSIVE`: the current item ran past the CPU-intensive threshold.
    pub cpu_intensive: bool,
}

impl WorkerFlags {
    /// `flags & WORKER_NOT_RUNNING`: the worker does not count in `nr_running`.
    pub fn not_running(self) -> bool {
        self.prep || self.cpu_intensive
    }
}

/// `struct worker`: one kworker thread of a pool.
pub struct Worker {
    pub task: TaskId,
    /// Index of the pool (= its CPU).
    pub pool: CpuId,
    /// The `M` of `kworker/N:M`.
    pub id: u32,
    /// Protected by: the pool lock (written only by the worker itself or under it).
    pub flags: WorkerFlags,
    /// `worker->sleeping`: the sleeping hook has taken this worker out of `nr_running`.
    /// Written only by the worker itself (from its own `schedule()`).
    pub sleeping: bool,
    /// `current_work` and the instance of it being executed.
    pub current_work: Option<WorkId>,
    pub current_instance: u64,
    /// `current_at`: `se.sum_exec_runtime` when the current stretch of running began.
    pub current_at_ns: Nanos,
    /// `worker->scheduled`: works assigned to this worker (`assign_work()`).
    pub scheduled: VecDeque<WorkId>,
}

/// `struct worker_pool` (per-CPU, normal priority).
pub struct WorkerPool {
    pub cpu: CpuId,
    /// `pool->lock` (raw spinlock, `LockClass::WorkerPool`).
    pub lock: LockId,
    /// `pool->worklist`: pending work items, FIFO. Protected by: `lock`.
    pub worklist: VecDeque<WorkId>,
    /// `pool->nr_running`: workers executing work and not asleep. Modified only by the
    /// pool's own CPU (the worker itself, from its hooks), as in Linux.
    pub nr_running: u32,
    pub nr_workers: u32,
    /// `pool->idle_list`, most recently idle first (`first_idle_worker()` is the front).
    /// Protected by: `lock`.
    pub idle_list: VecDeque<u32>,
    /// Every worker of the pool (indices into [`WqState::workers`]).
    pub workers: Vec<u32>,
}

impl WorkerPool {
    /// `pool->nr_idle`.
    pub fn nr_idle(&self) -> u32 {
        self.idle_list.len() as u32
    }
}

/// Everything the workqueue subsystem owns.
#[derive(Default)]
pub struct WqState {
    /// One pool per CPU, indexed by CPU; empty until [`init_workqueues`] ran.
    pub pools: Vec<WorkerPool>,
    pub workers: Vec<Worker>,
    pub works: Vec<WorkStruct>,
    pub workers_per_pool: u32,
    /// Fault injection ("buggify", proxy-exec.md B4 step 4): workers block without
    /// `wq_worker_sleeping()` running, as a worker preempted before its hook finished does.
    /// Never set outside tests and the scenario that demonstrates the stall.
    pub skip_sleeping_hook: bool,
    /// Bumped at every write of what [`check_pools`] reads (a worker's flags or sleeping
    /// mark, a pool's `nr_running`): the per-step checker judges the pools again only when
    /// it moved. Model-only bookkeeping, like a lockdep counter.
    pub gen: u64,
}

/// Declare a work item; returns its id. Called before boot.
pub fn add_work(s: &mut SchedState, name: &str, steps: Vec<WorkStep>) -> WorkId {
    assert!(
        steps.len() <= MAX_WORK_STEPS,
        "work item {name} has too many steps"
    );
    s.wq.works.push(WorkStruct {
        name: name.to_string(),
        steps,
        pending: false,
        pool: None,
        nr_queued: 0,
        nr_started: 0,
        nr_done: 0,
        flushers: Vec::new(),
    });
    (s.wq.works.len() - 1) as WorkId
}

/// First pid of the kworkers (below the workload's, above the stoppers').
pub const FIRST_KWORKER_PID: u32 = 10 + sim::MAX_CPUS as u32;

/// `workqueue_init()`: the per-CPU pools and their workers, idle. Returns the kworker task
/// ids, for the caller to announce and spawn.
///
/// Linux: kernel/workqueue.c workqueue_init(), init_worker_pool(), create_worker().
pub fn init_workqueues(s: &mut SchedState) -> Vec<TaskId> {
    assert!(s.wq.pools.is_empty(), "workqueues initialised twice");
    let n = s.nr_cpus();
    let per_pool = if s.wq.workers_per_pool == 0 {
        DEFAULT_WORKERS_PER_POOL
    } else {
        s.wq.workers_per_pool
    };
    s.wq.workers_per_pool = per_pool;
    let mut tids = Vec::new();
    for cpu in CpuId::all(n) {
        let lock = s.m.new_lock();
        let mut pool = WorkerPool {
            cpu,
            lock,
            worklist: VecDeque::new(),
            nr_running: 0,
            nr_workers: 0,
            idle_list: VecDeque::new(),
            workers: Vec::new(),
        };
        for i in 0..per_pool {
            let id = TaskId(s.tasks.len() as u32);
            let w = s.wq.workers.len() as u32;
            let pid = FIRST_KWORKER_PID + w;
            assert!(pid < crate::system::FIRST_USER_PID, "too many kworkers");
            let mut t = crate::system::new_task_struct(&s.m, id, pid, &format!("kworker/{cpu}:{i}"), cpu);
            // kthread_bind_mask(): per-CPU workers stay on their CPU.
            t.cpus_mask = crate::task::CpuMasks::single(cpu);
            t.nr_cpus_allowed = 1;
            t.state = state::TASK_IDLE;
            t.wq_worker = Some(w);
            s.tasks.push(t);
            crate::sched::fair::init_entity_fair(s, id);
            s.wq.workers.push(Worker {
                task: id,
                pool: cpu,
                id: i,
                flags: WorkerFlags {
                    idle: true,
                    prep: true,
                    cpu_intensive: false,
                },
                sleeping: false,
                current_work: None,
                current_instance: 0,
                current_at_ns: 0,
                scheduled: VecDeque::new(),
            });
            pool.workers.push(w);
            pool.nr_workers += 1;
            // worker_enter_idle(): list_add() at the head.
            pool.idle_list.push_front(w);
            tids.push(id);
        }
        s.wq.pools.push(pool);
    }
    tids
}

// ---------------------------------------------------------------------- pool helpers

/// `need_more_worker()`: work is pending and no worker of the pool is running.
///
/// Linux: kernel/workqueue.c need_more_worker().
pub fn need_more_worker(s: &SchedState, pool: CpuId) -> bool {
    let p = &s.wq.pools[pool.idx()];
    !p.worklist.is_empty() && p.nr_running == 0
}

/// `keep_working()`: more work is pending and this worker is the only one running.
///
/// Linux: kernel/workqueue.c keep_working().
fn keep_working(s: &SchedState, pool: CpuId) -> bool {
    let p = &s.wq.pools[pool.idx()];
    !p.worklist.is_empty() && p.nr_running <= 1
}

/// `worker_set_flags()`: entering a NOT_RUNNING state leaves `nr_running`.
///
/// Linux: kernel/workqueue.c worker_set_flags().
fn worker_set_flags(s: &mut SchedState, w: u32, set: impl FnOnce(&mut WorkerFlags)) {
    s.wq.gen += 1;
    let worker = &mut s.wq.workers[w as usize];
    let before = worker.flags.not_running();
    set(&mut worker.flags);
    let pool = worker.pool;
    if !before && worker.flags.not_running() {
        let p = &mut s.wq.pools[pool.idx()];
        assert!(p.nr_running > 0, "pool cpu{pool}: nr_running underflow");
        p.nr_running -= 1;
    }
}

/// `worker_clr_flags()`: leaving the last NOT_RUNNING state joins `nr_running`.
///
/// Linux: kernel/workqueue.c worker_clr_flags().
fn worker_clr_flags(s: &mut SchedState, w: u32, clr: impl FnOnce(&mut WorkerFlags)) {
    s.wq.gen += 1;
    let worker = &mut s.wq.workers[w as usize];
    let before = worker.flags.not_running();
    clr(&mut worker.flags);
    let pool = worker.pool;
    if before && !worker.flags.not_running() {
        s.wq.pools[pool.idx()].nr_running += 1;
    }
}

async fn pool_lock(k: &Kernel, pool: CpuId) {
    let lock = k.st().wq.pools[pool.idx()].lock;
    k.raw_spin_lock(lock, LockClass::WorkerPool, LockName::Other(lock.0))
        .await;
}

async fn pool_unlock(k: &Kernel, pool: CpuId) {
    let lock = k.st().wq.pools[pool.idx()].lock;
    k.raw_spin_unlock(lock).await;
}

/// `kick_pool()`: wake the first idle worker if the pool needs one. Pool lock held (Linux
/// wakes with it held too: `pool->lock` nests outside `pi_lock` and the rq lock).
///
/// Linux: kernel/workqueue.c kick_pool().
async fn kick_pool(k: &Kernel, pool: CpuId) -> bool {
    let idle = {
        let s = k.st();
        if !need_more_worker(&s, pool) {
            return false;
        }
        match s.wq.pools[pool.idx()].idle_list.front() {
            Some(&w) => s.wq.workers[w as usize].task,
            None => return false,
        }
    };
    wake_up_process(k, idle).await;
    true
}

// ---------------------------------------------------------------------- queueing

/// `queue_work_on()`: queue `work` on `cpu`'s pool unless it is already pending; returns
/// whether it was queued. A work item still executing on another pool's worker is queued
/// on that pool instead, so that it never runs on two workers at once (non-reentrancy).
///
/// Linux: kernel/workqueue.c queue_work_on(), __queue_work(), insert_work().
pub async fn queue_work_on(k: &Kernel, cpu: CpuId, work: WorkId) -> bool {
    let pool = {
        let mut s = k.st();
        if s.wq.works[work as usize].pending {
            // test_and_set_bit(WORK_STRUCT_PENDING_BIT) failed.
            return false;
        }
        s.wq.works[work as usize].pending = true;
        // find_worker_executing_work() on the last pool.
        match s.wq.works[work as usize].pool {
            Some(last) if last != cpu && executing_worker(&s, last, work).is_some() => last,
            _ => cpu,
        }
    };
    pool_lock(k, pool).await;
    {
        let s = &mut *k.st();
        let wk = &mut s.wq.works[work as usize];
        wk.pool = Some(pool);
        wk.nr_queued += 1;
        s.wq.pools[pool.idx()].worklist.push_back(work);
        let function = Comm::new(&s.wq.works[work as usize].name);
        let this = s.m.this_cpu();
        emit(
            s,
            this,
            EventKind::WorkqueueQueueWork {
                work,
                function,
                req_cpu: cpu,
                cpu: pool,
            },
        );
    }
    kick_pool(k, pool).await;
    pool_unlock(k, pool).await;
    true
}

/// The worker of `pool` executing `work`, if any (`find_worker_executing_work()`).
///
/// Linux: kernel/workqueue.c find_worker_executing_work().
fn executing_worker(s: &SchedState, pool: CpuId, work: WorkId) -> Option<u32> {
    s.wq.pools[pool.idx()]
        .workers
        .iter()
        .copied()
        .find(|&w| s.wq.workers[w as usize].current_work == Some(work))
}

/// The kernel half of [`uapi::UserOp::QueueWork`]: `queue_work_on()` (or `queue_work()`
/// on the caller's CPU), then the preemption point on the way out.
///
/// Deviation: Linux has no system call that queues an arbitrary work item; the model lets a
/// workload thread do it directly, standing for whatever driver path would (a write, an
/// ioctl), so that B4-shaped workloads can be written in rt-app JSON.
pub async fn sys_queue_work(k: &Kernel, work: WorkId, cpu: Option<CpuId>) {
    let cpu = cpu.unwrap_or_else(|| k.this_cpu());
    let ok = {
        let s = k.st();
        (work as usize) < s.wq.works.len() && cpu.idx() < s.wq.pools.len()
    };
    if !ok {
        k.violation(
            "workload_resource",
            format!("work item {work} on cpu{cpu} does not exist"),
        );
        return;
    }
    queue_work_on(k, cpu, work).await;
    preempt_point(k).await;
}

/// `flush_work()`: wait until the last queued instance of `work` has finished executing;
/// returns at once if it is neither pending nor running. Sleeps TASK_UNINTERRUPTIBLE.
///
/// Linux: kernel/workqueue.c flush_work(), start_flush_work(), insert_wq_barrier().
///
/// Deviation: Linux queues a barrier work right behind the item (on the worklist, or on the
/// executing worker's scheduled list) and waits for its completion; the model records the
/// instance to wait for on the item and the worker wakes the flusher when that instance
/// finishes, which is the same moment the barrier would run (minus its own execution).
pub async fn flush_work(k: &Kernel, work: WorkId) {
    let me = k.current();
    let pool = {
        let s = k.st();
        if (work as usize) >= s.wq.works.len() {
            drop(s);
            k.violation("workload_resource", format!("work item {work} does not exist"));
            return;
        }
        s.wq.works[work as usize].pool
    };
    let Some(pool) = pool else {
        return; // never queued
    };
    pool_lock(k, pool).await;
    let target = {
        let s = &mut *k.st();
        let wk = &s.wq.works[work as usize];
        let busy = wk.pending || wk.nr_done < wk.nr_started;
        if busy {
            let target = wk.nr_queued;
            s.wq.works[work as usize].flushers.push((me, target));
            let t = &mut s.tasks[me.idx()];
            t.state = state::TASK_UNINTERRUPTIBLE;
            t.waiting_on = Some(WaitTarget::Work(work));
            Some(target)
        } else {
            None
        }
    };
    pool_unlock(k, pool).await;
    let Some(target) = target else {
        return;
    };
    // wait_for_completion(): sleep until the worker reports the instance done.
    loop {
        schedule(k).await;
        let s = &mut *k.st();
        if s.wq.works[work as usize].nr_done >= target {
            s.tasks[me.idx()].waiting_on = None;
            break;
        }
        s.tasks[me.idx()].state = state::TASK_UNINTERRUPTIBLE;
    }
    preempt_point(k).await;
}

// ---------------------------------------------------------------------- the worker

/// A kworker's life: `worker_thread()`. Woken idle, it leaves the idle list; while the pool
/// needs a running worker it takes pending items (`assign_work()`) and executes them
/// (`process_scheduled_works()`), continuing as long as `keep_working()`; then it enters the
/// idle list and sleeps TASK_IDLE.
///
/// Linux: kernel/workqueue.c worker_thread().
pub async fn worker_thread(k: &Kernel, w: u32) {
    schedule_tail(k).await;
    let pool = k.st().wq.workers[w as usize].pool;
    loop {
        // woke_up:
        pool_lock(k, pool).await;
        {
            // worker_leave_idle().
            let s = &mut *k.st();
            let worker = &mut s.wq.workers[w as usize];
            if worker.flags.idle {
                worker.flags.idle = false;
                s.wq.pools[pool.idx()].idle_list.retain(|&x| x != w);
            }
        }
        // recheck:
        if need_more_worker(&k.st(), pool) {
            // Deviation: may_start_working()/manage_workers() are not modelled (workers are
            // forked at boot, see the module docs).
            worker_clr_flags(&mut k.st(), w, |f| f.prep = false);
            loop {
                let assigned = {
                    let s = &mut *k.st();
                    let work = s.wq.pools[pool.idx()]
                        .worklist
                        .pop_front()
                        .expect("keep_working or need_more_worker saw pending work");
                    assign_work(s, pool, w, work)
                };
                if assigned {
                    process_scheduled_works(k, w).await;
                }
                if !keep_working(&k.st(), pool) {
                    break;
                }
            }
            worker_set_flags(&mut k.st(), w, |f| f.prep = true);
        }
        // sleep: worker_enter_idle(), then schedule() in TASK_IDLE.
        {
            let s = &mut *k.st();
            let worker = &mut s.wq.workers[w as usize];
            assert!(!worker.flags.idle, "worker entering idle twice");
            worker.flags.idle = true;
            s.wq.pools[pool.idx()].idle_list.push_front(w);
            let task = s.wq.workers[w as usize].task;
            s.tasks[task.idx()].state = state::TASK_IDLE;
        }
        pool_unlock(k, pool).await;
        schedule(k).await;
    }
}

/// `assign_work()`: give `work` (just taken off the worklist) to worker `w`, unless another
/// worker of the pool is executing it, which then runs it next (non-reentrancy). Returns
/// whether `w` got it. Pool lock held.
///
/// Linux: kernel/workqueue.c assign_work().
fn assign_work(s: &mut SchedState, pool: CpuId, w: u32, work: WorkId) -> bool {
    let owner = executing_worker(s, pool, work).unwrap_or(w);
    s.wq.workers[owner as usize].scheduled.push_back(work);
    owner == w
}

/// `process_scheduled_works()`: execute this worker's scheduled works. Pool lock held on
/// entry and exit.
///
/// Linux: kernel/workqueue.c process_scheduled_works().
async fn process_scheduled_works(k: &Kernel, w: u32) {
    loop {
        let next = k.st().wq.workers[w as usize].scheduled.pop_front();
        match next {
            Some(work) => process_one_work(k, w, work).await,
            None => return,
        }
    }
}

/// `process_one_work()`: claim the item (clear PENDING, record the instance), drop the pool
/// lock, execute its steps, retake the lock, finish (wake flushers of this instance). Pool
/// lock held on entry and exit.
///
/// Linux: kernel/workqueue.c process_one_work().
async fn process_one_work(k: &Kernel, w: u32, work: WorkId) {
    let pool = k.st().wq.workers[w as usize].pool;
    {
        let s = &mut *k.st();
        let wk = &mut s.wq.works[work as usize];
        assert!(wk.pending, "executing a work item that is not pending");
        wk.pending = false;
        wk.nr_started = wk.nr_queued;
        let instance = wk.nr_started;
        let task = s.wq.workers[w as usize].task;
        let now_sum = s.tasks[task.idx()].se.sum_exec_runtime;
        let worker = &mut s.wq.workers[w as usize];
        worker.current_work = Some(work);
        worker.current_instance = instance;
        worker.current_at_ns = now_sum;
    }
    // kick_pool(): a no-op for a per-CPU pool (this worker counts in nr_running), kept
    // because it chains NOT_RUNNING workers (CPU-intensive) as in Linux.
    kick_pool(k, pool).await;
    pool_unlock(k, pool).await;
    {
        let s = &mut *k.st();
        let function = Comm::new(&s.wq.works[work as usize].name);
        let cpu = s.m.this_cpu();
        emit(s, cpu, EventKind::WorkqueueExecuteStart { work, function });
    }
    let nr_steps = k.st().wq.works[work as usize].steps.len();
    for i in 0..nr_steps {
        let step = k.st().wq.works[work as usize].steps[i];
        run_step(k, step).await;
    }
    {
        let s = &mut *k.st();
        let function = Comm::new(&s.wq.works[work as usize].name);
        let cpu = s.m.this_cpu();
        emit(s, cpu, EventKind::WorkqueueExecuteEnd { work, function });
    }
    // cond_resched() between items.
    preempt_point(k).await;
    pool_lock(k, pool).await;
    let flushers = {
        let s = &mut *k.st();
        let instance = s.wq.workers[w as usize].current_instance;
        let worker = &mut s.wq.workers[w as usize];
        worker.current_work = None;
        worker_clr_flags(s, w, |f| f.cpu_intensive = false);
        let wk = &mut s.wq.works[work as usize];
        wk.nr_done = instance;
        let (done, waiting): (Vec<_>, Vec<_>) = wk.flushers.iter().partition(|&&(_, t)| t <= instance);
        wk.flushers = waiting;
        done
    };
    // The barrier's complete(): wake the flushers (the pool lock is dropped around it, as
    // the barrier work runs unlocked in Linux).
    if !flushers.is_empty() {
        pool_unlock(k, pool).await;
        for (t, _) in flushers {
            wake_up_process(k, t).await;
        }
        pool_lock(k, pool).await;
    }
}

/// Execute one step of a work item's function on worker `w`.
async fn run_step(k: &Kernel, step: WorkStep) {
    match step {
        WorkStep::Run { work_ns } => kernel_run(k, work_ns).await,
        WorkStep::Sleep { ns } => {
            let until = k.m.now().saturating_add(ns);
            crate::syscalls::do_nanosleep(k, until).await;
        }
        WorkStep::Lock { mutex } => crate::syscalls::sys_lock(k, mutex).await,
        WorkStep::Unlock { mutex } => crate::syscalls::sys_unlock(k, mutex).await,
        WorkStep::QueueWork { work, cpu } => {
            let cpu = cpu.unwrap_or_else(|| k.this_cpu());
            queue_work_on(k, cpu, work).await;
            preempt_point(k).await;
        }
    }
}

/// Busy CPU work in kernel mode: interrupts arrive (and the tick may mark the item
/// CPU-intensive); on the way back from each interrupt the kernel preempts if it must.
async fn kernel_run(k: &Kernel, work_ns: Nanos) {
    let mut left = work_ns;
    while left > 0 {
        match k.m.run_interruptible(left).await {
            RunResult::Completed => left = 0,
            RunResult::Interrupted { ran_ns } => {
                left -= ran_ns.min(left);
                crate::irq::do_irq(k).await;
                preempt_point(k).await;
            }
        }
    }
}

// ---------------------------------------------------------------------- scheduler hooks

/// `wq_worker_running()`: worker task `p` is back from a sleep: count it in `nr_running`
/// again (unless NOT_RUNNING) and restart the CPU-intensive clock.
///
/// Linux: kernel/workqueue.c wq_worker_running().
pub fn wq_worker_running(s: &mut SchedState, p: TaskId) {
    let Some(w) = s.tasks[p.idx()].wq_worker else {
        return;
    };
    if !s.wq.workers[w as usize].sleeping {
        return;
    }
    // preempt_disable(): nr_running is only touched from the pool's CPU.
    s.wq.gen += 1;
    let worker = &s.wq.workers[w as usize];
    if !worker.flags.not_running() {
        s.wq.pools[worker.pool.idx()].nr_running += 1;
    }
    let sum = s.tasks[p.idx()].se.sum_exec_runtime;
    let worker = &mut s.wq.workers[w as usize];
    worker.current_at_ns = sum;
    worker.sleeping = false;
}

/// `wq_worker_sleeping()`: worker task `p` is about to sleep: take it out of `nr_running`
/// and, if that leaves pending work with no running worker, wake an idle worker.
///
/// Linux: kernel/workqueue.c wq_worker_sleeping().
pub async fn wq_worker_sleeping(k: &Kernel, p: TaskId) {
    let pool = {
        let s = &mut *k.st();
        let Some(w) = s.tasks[p.idx()].wq_worker else {
            return;
        };
        let worker = &mut s.wq.workers[w as usize];
        if worker.flags.not_running() || worker.sleeping {
            return;
        }
        worker.sleeping = true;
        let pool = worker.pool;
        s.wq.gen += 1;
        pool
    };
    pool_lock(k, pool).await;
    let counted = {
        let s = &mut *k.st();
        let w = s.tasks[p.idx()].wq_worker.expect("a worker");
        // Recheck under the lock: the worker may have become NOT_RUNNING meanwhile.
        if s.wq.workers[w as usize].flags.not_running() {
            false
        } else {
            s.wq.gen += 1;
            let pl = &mut s.wq.pools[pool.idx()];
            assert!(pl.nr_running > 0, "pool cpu{pool}: nr_running underflow");
            pl.nr_running -= 1;
            true
        }
    };
    if counted {
        kick_pool(k, pool).await;
    }
    pool_unlock(k, pool).await;
}

/// `wq_worker_tick()`: from the tick, when the interrupted task is a worker: a work item
/// that has run past the CPU-intensive threshold without sleeping leaves `nr_running`, and
/// the pool is kicked so that the next item need not wait for it.
///
/// Linux: kernel/workqueue.c wq_worker_tick().
pub async fn wq_worker_tick(k: &Kernel, p: TaskId) {
    let (w, pool) = {
        let s = k.st();
        let Some(w) = s.tasks[p.idx()].wq_worker else {
            return;
        };
        let worker = &s.wq.workers[w as usize];
        let ran = s.tasks[p.idx()]
            .se
            .sum_exec_runtime
            .saturating_sub(worker.current_at_ns);
        if worker.current_work.is_none()
            || worker.flags.not_running()
            || worker.sleeping
            || ran < WQ_CPU_INTENSIVE_THRESH_NS
        {
            return;
        }
        (w, worker.pool)
    };
    pool_lock(k, pool).await;
    worker_set_flags(&mut k.st(), w, |f| f.cpu_intensive = true);
    kick_pool(k, pool).await;
    pool_unlock(k, pool).await;
}

/// Whether `p` is a workqueue worker (`p->flags & PF_WQ_WORKER`).
pub fn is_wq_worker(s: &SchedState, p: TaskId) -> bool {
    s.tasks[p.idx()].wq_worker.is_some()
}

// ---------------------------------------------------------------------- invariants

/// S-7 `wq_nr_running_counts_running_workers`: a pool's `nr_running` counts each of its
/// workers that is not NOT_RUNNING, except those the sleeping hook has already taken out. A
/// worker inside `wq_worker_sleeping()` (marked sleeping, count not yet dropped) may be
/// counted or not, so the rule is a pair of bounds that hold at every step.
pub fn check_pools(s: &SchedState) -> Vec<String> {
    let mut out = Vec::new();
    for pool in &s.wq.pools {
        let (mut may_count, mut must_count) = (0u32, 0u32);
        for &w in &pool.workers {
            let w = &s.wq.workers[w as usize];
            if !w.flags.not_running() {
                may_count += 1;
                must_count += u32::from(!w.sleeping);
            }
        }
        if pool.nr_running < must_count || pool.nr_running > may_count {
            out.push(format!(
                "pool cpu{}: nr_running={} outside [{must_count}, {may_count}]",
                pool.cpu, pool.nr_running
            ));
        }
    }
    out
}

/// A digest of everything [`check_pools`] reads, for the full-checks mode to assert that
/// [`WqState::gen`] moves whenever it changes.
pub fn pool_check_inputs_digest(s: &SchedState) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for pool in &s.wq.pools {
        (pool.nr_running, &pool.workers).hash(&mut h);
    }
    for w in &s.wq.workers {
        (w.flags.not_running(), w.sleeping).hash(&mut h);
    }
    h.finish()
}

// ---------------------------------------------------------------------- stall report

/// Lines for a stall report: every pool with pending work and no worker able to run it, the
/// items waiting, and what each of its busy workers waits for.
pub fn stall_report(s: &SchedState) -> Vec<String> {
    let mut lines = Vec::new();
    for pool in &s.wq.pools {
        let waiting: Vec<&str> = pool
            .worklist
            .iter()
            .chain(
                pool.workers
                    .iter()
                    .flat_map(|&w| s.wq.workers[w as usize].scheduled.iter()),
            )
            .map(|&wk| s.wq.works[wk as usize].name.as_str())
            .collect();
        if waiting.is_empty() {
            continue;
        }
        let runnable = pool.workers.iter().any(|&w| {
            let t = &s.tasks[s.wq.workers[w as usize].task.idx()];
            t.on_cpu || t.state == state::TASK_RUNNING || t.state == state::TASK_WAKING
        });
        if runnable {
            continue;
        }
        let why = if pool.nr_running > 0 {
            format!("nr_running={} but no worker runs", pool.nr_running)
        } else {
            format!("nr_running=0 and no idle worker ({} busy)", pool.nr_workers)
        };
        lines.push(format!(
            "  workqueue pool cpu{}: {why}; pending: {}",
            pool.cpu,
            waiting.join(", ")
        ));
        for &w in &pool.workers {
            let worker = &s.wq.workers[w as usize];
            let Some(cur) = worker.current_work else {
                continue;
            };
            let t = &s.tasks[worker.task.idx()];
            lines.push(format!(
                "    {}-{} executes {}{}",
                t.comm,
                t.pid,
                s.wq.works[cur as usize].name,
                if worker.sleeping || worker.flags.not_running() {
                    ""
                } else {
                    " and still counts as running"
                }
            ));
        }
    }
    lines
}
