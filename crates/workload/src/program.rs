//! Counterpart: rt-app `src/rt-app.c` `thread_body()`, `run()` and `run_event()`.
//!
//! [`RtAppThread`] is the user-space half of one rt-app thread: each call of
//! [`UserProgram::next_op`] returns the next system call the thread makes. It is a small
//! state machine over the thread's phases and events with a queue of pending ops; events that
//! need a decision after a system call returns (the `runtime` busy loop re-reading the clock,
//! the barrier's shared counter read under its mutex) leave a continuation that runs on the
//! next call, i.e. when the kernel has completed the previous op.
//!
//! What one thread does, in rt-app's order (`thread_body()`):
//! 1. `Mark(TaskStart)`; if `delay` > 0, `SleepUntil(t_zero + delay)` (rt-app sleeps with
//!    `TIMER_ABSTIME` to `t_first = t_zero + delay`); then `SetAttr` with the thread's policy,
//!    and `SetCgroup` into the thread's `taskgroup` if it has one.
//! 2. For each iteration of each phase: `SetAffinity` if the wanted CPUs (phase `cpus`, else
//!    task `cpus`, else all) differ from the current ones; `SetAttr` if the phase has
//!    scheduling parameters and they are not the ones applied last (rt-app
//!    `curr_sched_data`); `SetCgroup` if the phase names a `taskgroup` the thread is not in
//!    (rt-app `set_thread_taskgroup()`); `Mark(LoopStart)`; the events; `Mark(LoopEnd)`.
//! 3. `SetAttr(SCHED_OTHER)` (rt-app resets the policy with `pthread_setschedparam` before
//!    leaving), `SetCgroup` back to the root if the thread is in a group (rt-app
//!    `reset_thread_taskgroup()`), `Mark(TaskEnd)`, `Exit`.
//!
//! A refused `SetAttr` or `SetAffinity` (the kernel returns `Err(errno)` with the next call)
//! ends the program as rt-app's `_set_thread_deadline()` and `set_thread_affinity()` do: it
//! writes its error message to stderr, then calls `exit(EXIT_FAILURE)` (`ExitGroup` with
//! status 1), which ends every thread of the process.
//!
//! Events (rt-app `run_event()`): `run` → `Run` of that much work; `runtime` → `Run` chunks
//! of 32 µs of work until `now - start >= runtime` (checked after each chunk, at least one
//! chunk, exactly rt-app's do-while); `sleep` → `Sleep`; `yield` → `Yield`; lock, unlock,
//! wait, signal, broad map one-to-one; `sync` → `CondSignal` then `CondWait`; `suspend` →
//! `Lock`, `CondWait`, `Unlock` on the thread's internal mutex and condition variable;
//! `resume` → `Lock`, `CondBroadcast`, `Unlock` on the target's; `barrier` → `Lock`, then
//! under the mutex: if the shared counter is 0, `CondBroadcast` and `Unlock`, otherwise
//! decrement it, `CondWait`, increment it, `Unlock` (no re-check loop, as in rt-app).
//!
//! Timers (rt-app `rtapp_timer`): on first use `t_next = t_first` (the thread start: `t_zero`
//! plus `delay`). Each `timer` event does `t_next += period`; if `now < t_next` the thread
//! sleeps until `t_next` (absolute); otherwise it is late and does not sleep, and a relative
//! timer re-bases `t_next = now` (missed activations are dropped) while an absolute timer
//! keeps its grid (the next activations may be late too). Shared timers (every thread naming
//! the same `ref`) share `t_next`; a `ref` starting with `unique` is per thread.
//!
//! `t_zero` is rt-app's common time reference, taken by thread 0 before all threads start
//! together at a barrier. Here it is the `now_ns` of the first `next_op` call of any program of
//! the run, shared by all of them (deviation: threads are not held back until all have
//! started; the simulator starts them all at once anyway).
//!
//! Shared state (timer expiries, barrier counters, `t_zero`) lives in one [`Run`]: all the
//! programs of one simulation run must come from the same `Run`, and each run needs a fresh
//! one. It is behind `Arc<Mutex<..>>` rather than `Rc<RefCell<..>>` only so that a
//! [`Workload`] stays `Send + Sync` for parallel seed sweeps; a run is still used from one
//! thread, deterministically.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use sim::cpumask::{CpuId, CpuMask, MAX_CPUS};
use sim::time::Nanos;
use uapi::{Errno, Policy, SchedAttr, UserCtx, UserOp, UserProgram};

use crate::marks::Mark;

use crate::spec::*;

/// rt-app's `runtime` busy-loop granularity: `loadwait(32)`, 32 µs of work per chunk.
pub const RUNTIME_CHUNK_NS: Nanos = 32_000;

/// Steps without producing an op after which the interpreter declares itself broken. A phase
/// iteration always produces at least its two loop marks, so the real bound is the number of
/// events in a phase plus a few.
const STEP_LIMIT: usize = 1 << 24;

const NSEC_PER_USEC: Nanos = 1_000;

/// State of one timer in one run (rt-app `res.timer`).
#[derive(Clone, Copy, Debug, Default)]
struct TimerState {
    init: bool,
    t_next_ns: Nanos,
}

/// What the threads of one run share.
#[derive(Debug)]
struct RunState {
    t_zero_ns: Option<Nanos>,
    /// Indexed like `Workload::timers`; per-thread timers are kept in the program instead.
    timers: Vec<TimerState>,
    /// rt-app `res.barrier.waiting`, indexed like `Workload::barriers`.
    barrier_waiting: Vec<i64>,
}

/// The workload description a run's programs read.
#[derive(Debug)]
struct RunData {
    tasks: Vec<TaskSpec>,
    threads: Vec<ThreadSpec>,
    timers: Vec<TimerSpec>,
    barriers: Vec<BarrierSpec>,
}

/// One simulation run of a workload: the shared state its threads' programs use.
#[derive(Clone, Debug)]
pub struct Run {
    data: Arc<RunData>,
    state: Arc<Mutex<RunState>>,
}

impl Run {
    /// The program of `thread` (index into [`Workload::threads`]) for this run.
    pub fn program(&self, thread: usize) -> RtAppThread {
        assert!(
            thread < self.data.threads.len(),
            "thread {thread} out of range (workload has {} threads)",
            self.data.threads.len()
        );
        let spec = &self.data.threads[thread];
        let task = &self.data.tasks[spec.task_index];
        let mask = |cpus: &Option<Vec<u32>>| cpus.as_ref().map(|c| c.iter().copied().map(CpuId).collect());
        RtAppThread {
            data: Arc::clone(&self.data),
            state: Arc::clone(&self.state),
            thread,
            task: spec.task_index,
            thread_cpus: mask(&spec.cpus),
            phase_cpus: task.phases.iter().map(|p| mask(&p.cpus)).collect(),
            local_timers: vec![TimerState::default(); self.data.timers.len()],
            pending: OpQueue::default(),
            pc: Pc::Start,
            cont: Cont::None,
            t_first_ns: 0,
            thread_loop: 0,
            phase: 0,
            phase_loop: 0,
            nice: 0,
            sched_from: None,
            affinity: None,
            taskgroup: ROOT_TASKGROUP,
            checked_call: None,
        }
    }

    /// Every thread's program, in thread order.
    pub fn programs(&self) -> Vec<Box<dyn UserProgram>> {
        (0..self.data.threads.len())
            .map(|t| Box::new(self.program(t)) as Box<dyn UserProgram>)
            .collect()
    }
}

/// The run [`Workload::program`] is currently handing out programs for, and which threads
/// already have theirs.
#[derive(Debug, Default)]
pub(crate) struct RunCache {
    current: Mutex<Option<(Run, Vec<bool>)>>,
}

impl Workload {
    /// A fresh run: new timers, barrier counters and time reference.
    pub fn new_run(&self) -> Run {
        Run {
            data: Arc::new(RunData {
                tasks: self.tasks.clone(),
                threads: self.threads.clone(),
                timers: self.timers.clone(),
                barriers: self.barriers.clone(),
            }),
            state: Arc::new(Mutex::new(RunState {
                t_zero_ns: None,
                timers: vec![TimerState::default(); self.timers.len()],
                barrier_waiting: self.barriers.iter().map(|b| b.initial_waiting).collect(),
            })),
        }
    }

    /// All programs of one run, in thread order, sharing fresh state. Call once per run.
    pub fn programs(&self) -> Vec<Box<dyn UserProgram>> {
        self.new_run().programs()
    }

    /// The program of `thread`. Programs handed out by successive calls share one run until a
    /// thread is asked for a second time, which starts a new run with fresh shared state; so
    /// calling it once per thread per run (in any order) does the right thing.
    pub fn program(&self, thread: usize) -> Box<dyn UserProgram> {
        let mut current = self.run_cache.current.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = match &*current {
            Some((_, issued)) => issued.get(thread).copied().unwrap_or(false),
            None => true,
        };
        if fresh {
            *current = Some((self.new_run(), vec![false; self.threads.len()]));
        }
        let (run, issued) = current.get_or_insert_with(|| (self.new_run(), vec![false; self.threads.len()]));
        if let Some(slot) = issued.get_mut(thread) {
            *slot = true;
        }
        Box::new(run.program(thread))
    }
}

/// Where the thread is in `thread_body()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pc {
    /// Before the first op: take `t_zero`, mark the task start, sleep out the delay.
    Start,
    /// After the delay: set the thread's scheduling attributes.
    ThreadAttr,
    /// Top of the `while (thread_loop != loop)` body: affinity, phase attributes, loop mark.
    LoopTop,
    /// About to run event `i` of the current phase.
    Event(usize),
    /// After the last event: loop-end mark and loop counters.
    LoopBottom,
    /// Reset the policy, mark the task end, exit.
    Finish,
    Exited,
}

/// A decision to take on the next call, after the op just returned has completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cont {
    None,
    /// `runtime`: a chunk has run; keep going while `now - start_ns < duration_ns`.
    Runtime {
        start_ns: Nanos,
        duration_ns: Nanos,
    },
    /// `barrier`: the barrier mutex is held.
    BarrierLocked {
        barrier: usize,
    },
    /// `barrier`: woken from the condition wait, mutex held again.
    BarrierWoken {
        barrier: usize,
    },
}

/// The interpreter of one rt-app thread (see the module docs).
#[derive(Debug)]
pub struct RtAppThread {
    data: Arc<RunData>,
    state: Arc<Mutex<RunState>>,
    thread: usize,
    task: usize,
    thread_cpus: Option<CpuMask>,
    phase_cpus: Vec<Option<CpuMask>>,
    /// Per-thread (`unique`) timers, indexed like `Workload::timers`.
    local_timers: Vec<TimerState>,
    pending: OpQueue,
    pc: Pc,
    cont: Cont,
    /// rt-app `t_first`: `t_zero` plus the delay; the first expiry base of every timer.
    t_first_ns: Nanos,
    thread_loop: u32,
    phase: usize,
    phase_loop: u32,
    /// The nice value the thread has (kept across RT policies, as Linux keeps static_prio).
    nice: i32,
    /// rt-app `curr_sched_data`: `None` = the thread's, `Some(i)` = phase i's.
    sched_from: Option<Option<usize>>,
    /// The affinity this program last set; `None` = the inherited default (all CPUs).
    affinity: Option<CpuMask>,
    /// The task group the thread is in (rt-app `curr_taskgroup_data`).
    taskgroup: TaskGroupId,
    /// The last system call handed to the kernel, if its failure would end the program.
    checked_call: Option<CheckedCall>,
}

/// The ops produced and not yet handed out, oldest first.
///
/// Almost every step produces exactly one op, which is handed out at the next call: it waits
/// in `next`, without the ring-buffer bookkeeping of a `VecDeque` (the ops are 72 bytes, a
/// `CpuMask` wide). Only the ops behind it queue in `rest`. Invariant: `rest` is empty while
/// `next` is `None`.
#[derive(Debug, Default)]
struct OpQueue {
    next: Option<UserOp>,
    rest: VecDeque<UserOp>,
}

impl OpQueue {
    fn front(&self) -> Option<&UserOp> {
        self.next.as_ref()
    }

    fn push(&mut self, op: UserOp) {
        if self.next.is_none() {
            self.next = Some(op);
        } else {
            self.rest.push_back(op);
        }
    }

    fn pop(&mut self) -> Option<UserOp> {
        let op = self.next.take()?;
        if !self.rest.is_empty() {
            self.next = self.rest.pop_front();
        }
        Some(op)
    }

    fn clear(&mut self) {
        self.next = None;
        self.rest.clear();
    }
}

/// A system call whose failure rt-app does not survive.
#[derive(Clone, Copy, Debug)]
enum CheckedCall {
    SetAttr(SchedAttr),
    SetAffinity(CpuMask),
}

impl CheckedCall {
    /// What rt-app reports about the call failing: the call and its `perror()` prefix.
    fn describe(self) -> (String, &'static str) {
        match self {
            CheckedCall::SetAttr(attr) => (
                format!(
                    "sched_setattr({}, runtime {} ns, deadline {} ns, period {} ns)",
                    attr.policy.rtapp_name(),
                    attr.dl_runtime_ns,
                    attr.dl_deadline_ns,
                    attr.dl_period_ns
                ),
                "failed to set deadline attributes",
            ),
            CheckedCall::SetAffinity(cpus) => (
                format!("pthread_setaffinity_np({cpus:?})"),
                "pthread_setaffinity_np",
            ),
        }
    }
}

impl RtAppThread {
    fn shared(&self) -> MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn task(&self) -> &TaskSpec {
        &self.data.tasks[self.task]
    }

    /// One step of the state machine: either push ops or move on (or both).
    fn step(&mut self, now_ns: Nanos) {
        // Most steps have no continuation: skip taking one apart.
        if self.cont == Cont::None {
            return self.advance(now_ns);
        }
        match std::mem::replace(&mut self.cont, Cont::None) {
            Cont::None => self.advance(now_ns),
            Cont::Runtime {
                start_ns,
                duration_ns,
            } => {
                if now_ns.saturating_sub(start_ns) < duration_ns {
                    self.pending.push(UserOp::Run {
                        work_ns: RUNTIME_CHUNK_NS,
                    });
                    self.cont = Cont::Runtime {
                        start_ns,
                        duration_ns,
                    };
                }
            }
            Cont::BarrierLocked { barrier } => {
                let b = &self.data.barriers[barrier];
                let (mutex, cond) = (b.mutex, b.cond);
                let mut st = self.shared();
                if st.barrier_waiting[barrier] == 0 {
                    drop(st);
                    self.pending.push(UserOp::CondBroadcast { cond });
                    self.pending.push(UserOp::Unlock { mutex });
                } else {
                    st.barrier_waiting[barrier] -= 1;
                    drop(st);
                    self.pending.push(UserOp::CondWait { cond, mutex });
                    self.cont = Cont::BarrierWoken { barrier };
                }
            }
            Cont::BarrierWoken { barrier } => {
                self.shared().barrier_waiting[barrier] += 1;
                let mutex = self.data.barriers[barrier].mutex;
                self.pending.push(UserOp::Unlock { mutex });
            }
        }
    }

    fn advance(&mut self, now_ns: Nanos) {
        match self.pc {
            Pc::Start => {
                let t_zero_ns = *self.shared().t_zero_ns.get_or_insert(now_ns);
                let delay_us = self.data.threads[self.thread].delay_us;
                self.t_first_ns = t_zero_ns.saturating_add(delay_us.saturating_mul(NSEC_PER_USEC));
                self.pending.push(UserOp::Mark {
                    mark: Mark::TaskStart.marker(),
                });
                if delay_us > 0 {
                    self.pending.push(UserOp::SleepUntil {
                        at_ns: self.t_first_ns,
                    });
                }
                self.pc = Pc::ThreadAttr;
            }
            Pc::ThreadAttr => {
                let attr = self.data.threads[self.thread].attr;
                self.set_attr(attr);
                self.sched_from = Some(None);
                if let Some(g) = self.task().taskgroup {
                    self.set_taskgroup(g);
                }
                self.pc = Pc::LoopTop;
            }
            Pc::LoopTop => {
                let more = match self.task().thread_loop {
                    LoopCount::Forever => true,
                    LoopCount::Times(n) => self.thread_loop < n,
                };
                if !more {
                    self.pc = Pc::Finish;
                    return;
                }
                self.phase_start();
                self.pc = Pc::Event(0);
            }
            Pc::Event(i) => {
                let phase = &self.task().phases[self.phase];
                match phase.events.get(i) {
                    Some(e) => {
                        let event = e.event;
                        self.pc = Pc::Event(i + 1);
                        self.run_event(event, now_ns);
                    }
                    None => self.pc = Pc::LoopBottom,
                }
            }
            Pc::LoopBottom => {
                self.pending.push(UserOp::Mark {
                    mark: self.loop_mark(false).marker(),
                });
                self.phase_loop = self.phase_loop.wrapping_add(1);
                let nphases = self.task().phases.len();
                if self.task().phases[self.phase].loop_count == LoopCount::Times(self.phase_loop) {
                    self.phase_loop = 0;
                    self.phase += 1;
                    if self.phase == nphases {
                        self.phase = 0;
                        // rt-app's int counter wraps to 0 when a forever loop overflows it.
                        self.thread_loop = if self.thread_loop >= i32::MAX as u32 {
                            0
                        } else {
                            self.thread_loop + 1
                        };
                    }
                }
                self.pc = Pc::LoopTop;
            }
            Pc::Finish => {
                // rt-app: pthread_setschedparam(SCHED_OTHER, 0) before the task-end marker.
                let attr = SchedAttr::normal(self.nice);
                self.pending.push(UserOp::SetAttr { attr });
                self.set_taskgroup(ROOT_TASKGROUP);
                self.pending.push(UserOp::Mark {
                    mark: Mark::TaskEnd.marker(),
                });
                self.pending.push(UserOp::Exit);
                self.pc = Pc::Exited;
            }
            Pc::Exited => self.pending.push(UserOp::Exit),
        }
    }

    fn loop_mark(&self, start: bool) -> Mark {
        let (thread_loop, phase, phase_loop) = (self.thread_loop, self.phase as u32, self.phase_loop);
        if start {
            Mark::LoopStart {
                thread_loop,
                phase,
                phase_loop,
            }
        } else {
            Mark::LoopEnd {
                thread_loop,
                phase,
                phase_loop,
            }
        }
    }

    fn set_attr(&mut self, attr: SchedAttr) {
        if matches!(attr.policy, Policy::Normal | Policy::Batch) {
            self.nice = attr.nice;
        }
        self.pending.push(UserOp::SetAttr { attr });
    }

    /// rt-app `set_thread_affinity()` + `set_thread_param()` + the loop-start marker.
    fn phase_start(&mut self) {
        let wanted = self.phase_cpus[self.phase].or(self.thread_cpus);
        if wanted != self.affinity {
            let cpus = wanted.unwrap_or_else(|| CpuMask::first_n(MAX_CPUS));
            self.pending.push(UserOp::SetAffinity { cpus });
            self.affinity = wanted;
        }
        let phase_sched = self.task().phases[self.phase].sched;
        if let Some(s) = phase_sched {
            if self.sched_from != Some(Some(self.phase)) {
                self.sched_from = Some(Some(self.phase));
                if let Some(attr) = self.phase_attr(&s) {
                    self.set_attr(attr);
                }
            }
        }
        if let Some(g) = self.task().phases[self.phase].taskgroup {
            self.set_taskgroup(g);
        }
        self.pending.push(UserOp::Mark {
            mark: self.loop_mark(true).marker(),
        });
    }

    /// rt-app `set_thread_taskgroup()`: join group `g` unless already in it.
    fn set_taskgroup(&mut self, g: TaskGroupId) {
        if g != self.taskgroup {
            self.taskgroup = g;
            self.pending.push(UserOp::SetCgroup { group: g });
        }
    }

    /// The attributes a phase sets, or `None` when rt-app leaves them unchanged ("priority
    /// unchanged => policy unchanged" for RT and fair policies).
    fn phase_attr(&self, s: &PhaseSched) -> Option<SchedAttr> {
        if s.priority.is_none() && s.policy != Policy::Deadline {
            return None;
        }
        let prio = s.priority.unwrap_or(0);
        let mut attr = SchedAttr {
            policy: s.policy,
            nice: self.nice,
            rt_priority: 0,
            dl_runtime_ns: s.dl_runtime_us * NSEC_PER_USEC,
            dl_deadline_ns: s.dl_deadline_us * NSEC_PER_USEC,
            dl_period_ns: s.dl_period_us * NSEC_PER_USEC,
        };
        match s.policy {
            Policy::Normal | Policy::Batch => attr.nice = prio,
            Policy::Fifo | Policy::Rr => attr.rt_priority = prio as u32,
            Policy::Idle | Policy::Deadline => {}
        }
        Some(attr)
    }

    /// rt-app `run_event()`.
    fn run_event(&mut self, event: Event, now_ns: Nanos) {
        let push = |this: &mut Self, op: UserOp| this.pending.push(op);
        match event {
            Event::Run { work_us } => {
                if work_us > 0 {
                    push(
                        self,
                        UserOp::Run {
                            work_ns: work_us * NSEC_PER_USEC,
                        },
                    );
                }
            }
            Event::Runtime { duration_us } => {
                push(
                    self,
                    UserOp::Run {
                        work_ns: RUNTIME_CHUNK_NS,
                    },
                );
                self.cont = Cont::Runtime {
                    start_ns: now_ns,
                    duration_ns: duration_us * NSEC_PER_USEC,
                };
            }
            Event::Sleep { duration_us } => push(
                self,
                UserOp::Sleep {
                    ns: duration_us * NSEC_PER_USEC,
                },
            ),
            Event::Timer { timer, period_us } => self.timer(timer, period_us, now_ns),
            Event::Yield => push(self, UserOp::Yield),
            Event::Lock { mutex } => push(self, UserOp::Lock { mutex }),
            Event::Unlock { mutex } => push(self, UserOp::Unlock { mutex }),
            Event::Wait { cond, mutex } => push(self, UserOp::CondWait { cond, mutex }),
            Event::Signal { cond } => push(self, UserOp::CondSignal { cond }),
            Event::Broadcast { cond } => push(self, UserOp::CondBroadcast { cond }),
            Event::Sync { cond, mutex } => {
                push(self, UserOp::CondSignal { cond });
                push(self, UserOp::CondWait { cond, mutex });
            }
            Event::Barrier { barrier } => {
                let mutex = self.data.barriers[barrier].mutex;
                push(self, UserOp::Lock { mutex });
                self.cont = Cont::BarrierLocked { barrier };
            }
            Event::Suspend { cond, mutex } => {
                push(self, UserOp::Lock { mutex });
                push(self, UserOp::CondWait { cond, mutex });
                push(self, UserOp::Unlock { mutex });
            }
            Event::Resume { cond, mutex } => {
                push(self, UserOp::Lock { mutex });
                push(self, UserOp::CondBroadcast { cond });
                push(self, UserOp::Unlock { mutex });
            }
            Event::QueueWork { item, cpu } => push(
                self,
                UserOp::QueueWork {
                    work: item as u32,
                    cpu,
                },
            ),
            Event::FlushWork { item } => push(self, UserOp::FlushWork { work: item as u32 }),
            Event::SignalThread { task } => {
                let targets: Vec<u32> = (0..self.data.threads.len())
                    .filter(|&i| self.data.threads[i].task_index == task)
                    .map(|i| i as u32)
                    .collect();
                for thread in targets {
                    push(self, UserOp::Signal { thread });
                }
            }
        }
    }

    /// rt-app `rtapp_timer` / `rtapp_timer_unique` in `run_event()`.
    fn timer(&mut self, timer: usize, period_us: u64, now_ns: Nanos) {
        let spec = &self.data.timers[timer];
        let relative = !spec.absolute;
        let per_thread = spec.per_thread_of_task.is_some();
        let t_first_ns = self.t_first_ns;
        let sleep_until = {
            let mut shared;
            let t: &mut TimerState = if per_thread {
                &mut self.local_timers[timer]
            } else {
                shared = self.state.lock().unwrap_or_else(|e| e.into_inner());
                &mut shared.timers[timer]
            };
            if !t.init {
                t.init = true;
                t.t_next_ns = t_first_ns;
            }
            t.t_next_ns = t.t_next_ns.saturating_add(period_us * NSEC_PER_USEC);
            if now_ns < t.t_next_ns {
                Some(t.t_next_ns)
            } else {
                if relative {
                    t.t_next_ns = now_ns;
                }
                None
            }
        };
        if let Some(at_ns) = sleep_until {
            self.pending.push(UserOp::SleepUntil { at_ns });
        }
    }
}

impl RtAppThread {
    /// rt-app's reaction to a failed `call`: its message on stderr, then
    /// `exit(EXIT_FAILURE)`.
    ///
    /// Linux: (user space) rt-app src/rt-app.c _set_thread_deadline() (`log_critical` of the
    /// returned value, `perror()`, `exit(EXIT_FAILURE)`) and set_thread_affinity().
    ///
    /// Deviation: the message is one line of the model's own wording (thread name and pid,
    /// the call with its arguments, the errno and its text), not rt-app's log lines.
    fn fail(&mut self, ctx: &UserCtx, call: CheckedCall, errno: Errno) {
        let (call, perror) = call.describe();
        let text = format!(
            "rt-app: thread {} (pid {}): {call} failed with -{}: {perror}: {}; rt-app exits (EXIT_FAILURE)\n",
            ctx.comm,
            ctx.pid,
            errno.0,
            errno.strerror()
        );
        self.pending.clear();
        self.pending.push(UserOp::Write { fd: 2, text });
        self.pending.push(UserOp::ExitGroup { status: 1 });
        self.pc = Pc::Exited;
        self.cont = Cont::None;
    }
}

impl UserProgram for RtAppThread {
    fn next_op(&mut self, ctx: &UserCtx) -> UserOp {
        if let (Some(call), Err(errno)) = (self.checked_call.take(), ctx.ret) {
            self.fail(ctx, call, errno);
        }
        for _ in 0..STEP_LIMIT {
            if let Some(op) = self.pending.front() {
                // `checked_call` is `None` here (taken above): only the calls whose failure
                // ends the program set it, and the other ops need not write it again.
                match *op {
                    UserOp::SetAttr { attr } => self.checked_call = Some(CheckedCall::SetAttr(attr)),
                    UserOp::SetAffinity { cpus } => self.checked_call = Some(CheckedCall::SetAffinity(cpus)),
                    _ => {}
                }
                return self.pending.pop().expect("the queue has a next op");
            }
            self.step(ctx.now_ns);
        }
        panic!(
            "rt-app interpreter of thread {} made no system call in {STEP_LIMIT} steps",
            self.data.threads[self.thread].name
        );
    }
}
