//! Booting and running a simulated system: the kernel's public entry point.
//!
//! Linux: init/main.c (start_kernel → sched_init, rest_init), kernel/sched/core.c
//! (sched_init, init_idle, sched_fork), kernel/fork.c (kernel_clone → wake_up_new_task).
//!
//! Deviation: the workload's threads are created at time 0 by the boot CPU (as if forked by a
//! parent that costs nothing), already carrying their policy, priority and affinity; rt-app's
//! own main thread, which creates them and then waits, is not modelled.

use std::cell::RefCell;
use std::rc::Rc;

use sim::{CpuId, CpuMask, Executor, Machine, Nanos, RunEnd};
use uapi::{Policy, SchedAttr, ThreadId, UserProgram};

use crate::locking::lockdep::Lockdep;
use crate::locking::mutex::{Mutex, MutexFlags, MutexId};
use crate::locking::rtmutex::{RtMutex, RtMutexId};
use crate::locking::usermutex::{UserCond, UserResource, WaitTarget};
use crate::locking::Protocol;
use crate::sched::class::check_class_changed;
use crate::sched::core::{self as core, Kernel, Violation};
use crate::sched::cpupri::CpuPri;
use crate::sched::fair::{CfsRq, SchedEntity};
use crate::sched::features::ModelVersion;
use crate::sched::features::{Features, Tunables};
use crate::sched::rt::{RtRq, SchedRtEntity};
use crate::sched::topology::Topology;
use crate::sched::{Class, Costs, Rq, SchedState};
use crate::task::{nice_to_prio, rt_prio, state, task_ctx, CpuMasks, OnRq, Task, TaskId, IDLE_PRIO};
use crate::time::{hrtimer_start, TimerFn};
use crate::tracepoints::{Comm, EventKind, EventSink, LockName};

/// How a run ended (the metrics' `end_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Every task of the workload exited.
    Exited,
    /// The time limit (`--duration` or the workload's) was reached.
    Duration,
    /// Tasks wait for each other in a cycle of locks.
    Deadlock,
    /// Live tasks remain but nothing can ever wake them.
    Stall,
    /// An invariant or lockdep rule was violated (see the violations).
    Violation,
    /// The workload's process exited with a non-zero status (`exit_group()`): rt-app does
    /// when a system call it cannot go on without fails (a refused `sched_setattr()` or
    /// affinity change). The run's report is what the process wrote on stderr.
    WorkloadFailed,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Exited => "exited",
            EndReason::Duration => "duration",
            EndReason::Deadlock => "deadlock",
            EndReason::Stall => "stall",
            EndReason::Violation => "violation",
            EndReason::WorkloadFailed => "workload_failed",
        }
    }
}

/// Everything that configures a run.
#[derive(Clone, Debug)]
pub struct Config {
    pub nr_cpus: usize,
    /// CPUs per LLC (None: one LLC).
    pub llc_size: Option<usize>,
    pub seed: u64,
    pub costs: Costs,
    pub feat: Features,
    /// The `--model` stage whose rules the invariants hold the run to (the switches in
    /// `feat` may turn single mechanisms of it off: that is what they are checked against).
    pub model: ModelVersion,
    pub tun: Tunables,
    /// Stop at this simulated time.
    pub limit_ns: Nanos,
    /// Check the named invariants after every step (tests; slower).
    pub check_invariants: bool,
    /// Let the machine fold busy-wait polls that provably read unchanged state
    /// (`sim::Machine::set_fast_paths`). Off gives the same traces and metrics, slower: it is
    /// there to check exactly that.
    pub fast_paths: bool,
    /// Run every per-step check after every step, instead of skipping the steps that cannot
    /// change a verdict (`invariants::Checker`). The same verdicts, slower: it is there to
    /// check exactly that.
    pub full_checks: bool,
}

impl Config {
    pub fn new(nr_cpus: usize) -> Config {
        Config {
            nr_cpus,
            llc_size: None,
            seed: 0,
            costs: Costs::default(),
            feat: Features::default(),
            model: ModelVersion::default(),
            tun: Tunables::default(),
            limit_ns: 10 * sim::time::NSEC_PER_SEC,
            check_invariants: false,
            fast_paths: true,
            full_checks: false,
        }
    }
}

/// A thread to create at boot.
pub struct TaskSpec {
    /// Thread name (truncated to 15 characters as `comm`).
    pub name: String,
    pub attr: SchedAttr,
    /// Allowed CPUs; None = all.
    pub cpus: Option<CpuMask>,
    pub thread: ThreadId,
    pub program: Box<dyn UserProgram>,
}

/// The result of [`System::run`].
#[derive(Clone, Debug)]
pub struct Outcome {
    pub end_reason: EndReason,
    pub sim_time_ns: Nanos,
    pub violations: Vec<Violation>,
    /// For a deadlock or stall: which tasks wait on what.
    pub report: String,
    /// Machine steps executed.
    pub steps: u64,
    /// Of them, steps begun in place by an await point (`sim::Machine::in_place_steps`;
    /// zero with the fast paths off).
    pub in_place_steps: u64,
    /// Steps after which the per-step checks ran (with `Config::check_invariants`; the quiet
    /// steps are skipped unless `Config::full_checks`, see `invariants::Checker`).
    pub checked_steps: u64,
    /// Kernel warnings raised during the run (`WARN_ONCE`), in order.
    pub warnings: Vec<String>,
    /// How often each rare path was taken ([`crate::coverage`]).
    pub coverage: crate::coverage::Coverage,
}

/// A booted system ready to run.
pub struct System {
    pub k: Rc<Kernel>,
    exec: Executor,
    programs: Vec<(TaskId, Box<dyn UserProgram>)>,
    cfg: Config,
}

/// First pid of the workload's threads (pids below are the per-CPU kernel threads).
pub const FIRST_USER_PID: u32 = 1000;

impl System {
    pub fn new(cfg: Config, sink: Box<dyn EventSink>) -> System {
        let k = new_kernel(&cfg, sink);
        k.m.set_fast_paths(cfg.fast_paths);
        System {
            exec: Executor::new(k.m.clone()),
            k,
            programs: Vec::new(),
            cfg,
        }
    }

    /// Create a user mutex (pthread mutex) with `protocol`; workload resource ids are
    /// assigned in creation order, mutexes and condition variables alike.
    pub fn add_mutex(&mut self, name: &str, protocol: Protocol) -> u32 {
        let wait_lock = self.k.m.new_lock();
        let mut s = self.k.st();
        let id = s.user_resources.len() as u32;
        let lock = match protocol {
            Protocol::None | Protocol::Proxy => {
                let idx = MutexId(s.mutexes.len() as u32);
                s.user_resources.push(UserResource::Mutex(idx));
                s.mutexes.push(Mutex {
                    name: name.to_string(),
                    owner: None,
                    flags: MutexFlags::EMPTY,
                    wait_list: Default::default(),
                    wait_lock,
                    osq: Default::default(),
                    proxy: protocol == Protocol::Proxy,
                    io: false,
                    interruptible: false,
                });
                LockName::Mutex(idx)
            }
            Protocol::Pi => {
                let idx = RtMutexId(s.rt_mutexes.len() as u32);
                s.user_resources.push(UserResource::RtMutex(idx));
                s.rt_mutexes.push(RtMutex::new(name, wait_lock));
                LockName::RtMutex(idx)
            }
        };
        core::emit(
            &mut s,
            CpuId(0),
            EventKind::LockInit {
                lock,
                name: Comm::new(name),
            },
        );
        id
    }

    /// Make workload mutex `id` one its threads take with `mutex_lock_io()` (they count as in
    /// iowait while they wait for it).
    ///
    /// Deviation: `rt_mutex_lock_io()` is not modelled; on a `pi` mutex this does nothing.
    pub fn set_mutex_io(&mut self, id: u32) {
        let mut s = self.k.st();
        if let Some(UserResource::Mutex(m)) = s.user_resources.get(id as usize).copied() {
            s.mutexes[m.idx()].io = true;
        }
    }

    /// Make workload mutex `id` one its threads take with `mutex_lock_interruptible()` (or
    /// `rt_mutex_lock_interruptible()` under protocol `pi`): a signal ends the wait with
    /// -EINTR and the thread retries after handling it.
    pub fn set_mutex_interruptible(&mut self, id: u32) {
        let mut s = self.k.st();
        match s.user_resources.get(id as usize).copied() {
            Some(UserResource::Mutex(m)) => s.mutexes[m.idx()].interruptible = true,
            Some(UserResource::RtMutex(m)) => s.rt_mutexes[m.idx()].interruptible = true,
            _ => {}
        }
    }

    /// Create a pthread condition variable; returns its workload resource id.
    pub fn add_cond(&mut self, name: &str) -> u32 {
        let lock = self.k.m.new_lock();
        let mut s = self.k.st();
        let idx = s.user_conds.len() as u32;
        s.user_resources.push(UserResource::Cond(idx));
        s.user_conds.push(UserCond {
            name: name.to_string(),
            waiters: Default::default(),
            lock,
        });
        s.user_resources.len() as u32 - 1
    }

    /// Declare a work item (`struct work_struct` with its function's steps); returns its id.
    /// Work items are numbered in declaration order. A system with work items gets per-CPU
    /// worker pools at boot.
    pub fn add_work(&mut self, name: &str, steps: Vec<crate::workqueue::WorkStep>) -> u32 {
        crate::workqueue::add_work(&mut self.k.st(), name, steps)
    }

    /// Workqueue settings: kworkers forked per pool (0 = the default), and the fault that
    /// makes workers block without `wq_worker_sleeping()` (proxy-exec.md B4).
    pub fn set_workqueue_config(&mut self, workers_per_pool: u32, skip_sleeping_hook: bool) {
        let s = &mut *self.k.st();
        s.wq.workers_per_pool = workers_per_pool;
        s.wq.skip_sleeping_hook = skip_sleeping_hook;
    }

    /// Create task group `path` below `parent` with `shares` (`tg->shares`); before the run.
    /// Returns its id, the next free one: the workload's groups are created in its order.
    pub fn add_task_group(
        &mut self,
        path: &str,
        parent: crate::sched::cgroup::GroupId,
        shares: u64,
    ) -> crate::sched::cgroup::GroupId {
        let s = &mut *self.k.st();
        crate::sched::cgroup::sched_create_group(s, path, parent, shares)
    }

    /// Set group `g`'s CFS bandwidth (`cpu.max`): `quota_ns` per `period_ns`; before the run.
    pub fn set_cfs_bandwidth(&mut self, g: crate::sched::cgroup::GroupId, quota_ns: u64, period_ns: u64) {
        let s = &mut *self.k.st();
        crate::sched::cgroup::tg_set_cfs_bandwidth(s, g, quota_ns, period_ns);
    }

    /// Arm a fault-injection point.
    pub fn arm_injection(&mut self, point: uapi::Injection) {
        let s = &mut *self.k.st();
        match point {
            uapi::Injection::DonorSwapInBalance => s.inject_donor_swap_in_balance = true,
            uapi::Injection::ModelAssertion => s.inject_model_assertion = true,
        }
    }

    /// Create a thread (forked at boot, `sched_fork()`); returns its pid.
    ///
    /// Linux: kernel/fork.c kernel_clone(), kernel/sched/core.c sched_fork().
    pub fn add_task(&mut self, spec: TaskSpec) -> u32 {
        let s = &mut *self.k.st();
        let id = TaskId(s.tasks.len() as u32);
        let pid = FIRST_USER_PID + s.nr_user_tasks;
        let mut t = new_task_struct(&s.m, id, pid, &spec.name, CpuId(0));
        t.thread = Some(spec.thread);
        let all = CpuMask::first_n(s.nr_cpus());
        let mask = spec
            .cpus
            .map(|c| c.and(&all))
            .filter(|c| !c.is_empty())
            .unwrap_or(all);
        t.cpus_mask = s.cpus_masks.intern(mask);
        t.nr_cpus_allowed = mask.weight();
        // The parent runs on CPU 0; a child whose mask excludes it starts on its first CPU.
        t.cpu = if mask.test(CpuId(0)) {
            CpuId(0)
        } else {
            mask.first().unwrap()
        };
        t.wake_cpu = t.cpu;
        t.state = state::TASK_NEW;
        s.tasks.push(t);
        apply_attr(s, id, spec.attr);
        s.tasks[id.idx()].class.init_entity(s, id);
        s.nr_user_tasks += 1;
        announce_task(s, id, false);
        self.programs.push((id, spec.program));
        pid
    }

    /// Boot every CPU and run until the workload exits, the time limit, a deadlock or stall,
    /// or a violation. `progress` is called after every step with the current time.
    pub fn run(&mut self, progress: &mut dyn FnMut(Nanos)) -> Outcome {
        self.boot();
        let k = self.k.clone();
        let check = self.cfg.check_invariants;
        let kk = k.clone();
        let mut watchdog = Watchdog::new(self.cfg.tun.tick_ns());
        let mut checker = crate::invariants::Checker::new(&k, self.cfg.full_checks);
        let checks = &mut checker;
        let mut hook = move |cpu: CpuId| {
            let stuck = watchdog.step(&kk);
            if let Some((reason, report)) = stuck {
                kk.end(reason, report);
            }
            if check {
                checks.after_step(&kk, cpu);
            }
            // The deadlines before which another look at unchanged state tells the watchers
            // nothing new (sim::StepHook): busy-wait polls are folded up to them.
            kk.m.observe_before(watchdog.next_period_ns());
            if check {
                if let Some(t) = checks.deadline_ns() {
                    kk.m.observe_before(t);
                }
            }
            progress(kk.m.now());
            true
        };
        let end = self.exec.run(self.cfg.limit_ns, &mut hook);
        drop(hook);
        let mut outcome = self.outcome(end);
        outcome.checked_steps = checker.checked_steps;
        outcome
    }

    /// Start the machine: announce the stoppers, start the workqueue pools and every CPU's
    /// tick, spawn the kworkers, the user threads (CPU 0's idle task wakes them up, as the
    /// workload's main thread would), the idle and stopper threads, and boot each CPU into its
    /// idle task. A workload without threads has exited at once.
    ///
    /// Linux: kernel/workqueue.c workqueue_init(), kernel/time/tick-common.c
    /// tick_setup_periodic() per CPU, kernel/sched/idle.c cpu_startup_entry() per CPU.
    ///
    /// Deviation: the stoppers are announced here, not forked by smpboot; the workload's
    /// threads are woken by CPU 0's idle task instead of a main thread creating them.
    fn boot(&mut self) {
        let k = self.k.clone();
        let n = self.cfg.nr_cpus;
        let mut kworkers = Vec::new();
        {
            let s = &mut *k.st();
            // The per-CPU stoppers were forked at boot, before the workload.
            for cpu in CpuId::all(n) {
                announce_task(s, stopper_task_id(n, cpu), true);
            }
            // workqueue_init(): the pools and their idle kworkers, if any work is declared.
            if !s.wq.works.is_empty() {
                kworkers = crate::workqueue::init_workqueues(s);
                for &id in &kworkers {
                    announce_task(s, id, true);
                }
            }
            let tick = s.tun.tick_ns();
            for cpu in CpuId::all(n) {
                hrtimer_start(s, cpu, tick, 0, TimerFn::Tick);
            }
            // Every task and lock of the run exists now: drop the tables' growth slack
            // before the tasks' stacks are allocated (memory per task, crates/cli/benches/memory.rs).
            s.tasks.shrink_to_fit();
            k.m.shrink_locks();
        }
        for id in kworkers {
            let kk = k.clone();
            let w = k.st().tasks[id.idx()].wq_worker.expect("a kworker");
            k.m.spawn(task_ctx(id), async move {
                crate::workqueue::worker_thread(&kk, w).await
            });
        }
        let user: Vec<TaskId> = self.programs.iter().map(|(id, _)| *id).collect();
        for (id, prog) in std::mem::take(&mut self.programs) {
            k.m.spawn(task_ctx(id), crate::syscalls::task_main(k.clone(), id, prog));
        }
        for cpu in CpuId::all(n) {
            let kk = k.clone();
            let boot = if cpu == CpuId(0) { user.clone() } else { Vec::new() };
            k.m.spawn(task_ctx(idle_task_id(cpu)), async move {
                for p in boot {
                    core::wake_up_new_task(&kk, p).await;
                }
                crate::sched::idle::do_idle(&kk).await;
            });
            let kk = k.clone();
            k.m.spawn(task_ctx(stopper_task_id(n, cpu)), async move {
                crate::sched::stop_task::stopper_main(&kk).await
            });
            k.m.boot_cpu(cpu, task_ctx(idle_task_id(cpu)));
        }
        if user.is_empty() {
            k.end(EndReason::Exited, String::new());
        }
    }

    /// The run's outcome once the executor stopped (`end`): a violation wins, then the end
    /// the kernel recorded, then the executor's own reason.
    fn outcome(&self, end: RunEnd) -> Outcome {
        let k = &self.k;
        let violations = k.violations.borrow().clone();
        let warnings = k.st().warnings.clone();
        let coverage = k.st().coverage.clone();
        let (reason, report) = if !violations.is_empty() {
            (EndReason::Violation, String::new())
        } else if let Some((r, rep)) = k.end.borrow().clone() {
            (r, rep)
        } else {
            match end {
                RunEnd::TimeLimit => (EndReason::Duration, String::new()),
                _ => (EndReason::Stall, "the machine ran out of events".to_string()),
            }
        };
        Outcome {
            end_reason: reason,
            sim_time_ns: k.m.now(),
            violations,
            report,
            steps: k.m.steps(),
            in_place_steps: k.m.in_place_steps(),
            checked_steps: 0,
            warnings,
            coverage,
        }
    }
}

/// The task id of `cpu`'s idle task: [`new_sched_state`] creates the idle tasks first, one
/// per CPU in CPU order, so task `cpu` is `swapper/cpu`.
pub fn idle_task_id(cpu: CpuId) -> TaskId {
    TaskId(cpu.0)
}

/// The task id of `cpu`'s stopper (`migration/cpu`) on a machine of `nr_cpus` CPUs: the
/// stoppers come right after the idle tasks, in CPU order.
pub fn stopper_task_id(nr_cpus: usize, cpu: CpuId) -> TaskId {
    TaskId(nr_cpus as u32 + cpu.0)
}

/// `sched_init()` + `init_idle()`: the scheduler state of a machine with `cfg.nr_cpus` CPUs,
/// each with its idle task (task id = CPU) and stopper (task id = nr_cpus + CPU).
///
/// Linux: kernel/sched/core.c sched_init(), init_idle().
pub fn new_sched_state(cfg: &Config, sink: Box<dyn EventSink>) -> SchedState {
    let n = cfg.nr_cpus;
    assert!((1..=sim::MAX_CPUS).contains(&n));
    let m = Rc::new(Machine::new(n, cfg.seed, cfg.costs.spin_handoff_ns));
    let topo = Topology::new(n, cfg.llc_size);
    let nohz = crate::sched::nohz::Nohz::new(&topo.llc_id);
    let mut tasks = Vec::new();
    let mut rqs = Vec::new();
    for cpu in CpuId::all(n) {
        tasks.push(new_idle_task(&m, cpu));
        rqs.push(new_rq(&m, &topo, n, cpu));
    }
    for cpu in CpuId::all(n) {
        tasks.push(new_stopper_task(&m, n, cpu));
    }
    let mut s = SchedState {
        m: m.clone(),
        tasks,
        cpus_masks: CpuMasks::new(n),
        rqs,
        feat: cfg.feat.clone(),
        model: cfg.model,
        tun: cfg.tun.clone(),
        costs: cfg.costs.clone(),
        topo,
        cpupri: CpuPri::new(n),
        cpudl: crate::sched::cpudeadline::CpuDl::new(n),
        dlo_mask: CpuMask::empty(),
        dl_bw: crate::sched::deadline::DlBw::new(),
        rto_mask: CpuMask::empty(),
        rto: Default::default(),
        rd_overloaded: false,
        inject_donor_swap_in_balance: false,
        inject_model_assertion: false,
        sink,
        jiffies: 0,
        nohz,
        nr_events: 0,
        hrtimers: vec![Default::default(); n],
        task_timers_in_flight: 0,
        hrtimer_seq: 0,
        proxy_chain_marks: Default::default(),
        mutexes: Vec::new(),
        rt_mutexes: Vec::new(),
        rt_waiter_seq: 0,
        user_conds: Vec::new(),
        user_resources: Vec::new(),
        nr_user_tasks: 0,
        nr_exited: 0,
        stall_ticks: 0,
        wake_list_seen: vec![None; n],
        warnings: Vec::new(),
        wq: Default::default(),
        groups: vec![crate::sched::cgroup::TaskGroup::root()],
        coverage: Default::default(),
    };
    for cpu in CpuId::all(n) {
        crate::sched::deadline::fair_server_init(&mut s, cpu);
    }
    s
}

/// CPU `cpu`'s idle task (`swapper/N`), running on it from boot.
///
/// Linux: kernel/sched/core.c init_idle().
fn new_idle_task(m: &Rc<Machine>, cpu: CpuId) -> Task {
    let mut t = new_task_struct(m, idle_task_id(cpu), 0, &format!("swapper/{cpu}"), cpu);
    t.is_idle_task = true;
    t.class = Class::Idle;
    t.prio = IDLE_PRIO;
    t.static_prio = IDLE_PRIO;
    t.normal_prio = IDLE_PRIO;
    t.state = state::TASK_RUNNING;
    t.on_cpu = true;
    t.cpus_mask = CpuMasks::single(cpu);
    t.nr_cpus_allowed = 1;
    t
}

/// CPU `cpu`'s runqueue, empty, its idle task current.
///
/// Linux: kernel/sched/core.c sched_init() (the per-CPU loop).
fn new_rq(m: &Rc<Machine>, topo: &Topology, n: usize, cpu: CpuId) -> Rq {
    Rq {
        cpu,
        lock: m.new_lock(),
        curr: idle_task_id(cpu),
        donor: idle_task_id(cpu),
        idle: idle_task_id(cpu),
        stop: stopper_task_id(n, cpu),
        next_class: Class::Idle,
        nr_running: 0,
        cfs: CfsRq::default(),
        rt: RtRq::default(),
        dl: Default::default(),
        fair_server: Default::default(),
        dl_server: None,
        clock: 0,
        clock_task: 0,
        nr_switches: 0,
        nr_uninterruptible: 0,
        nr_iowait: 0,
        wake_list: Vec::new(),
        ttwu_pending: false,
        wake_list_gen: 0,
        balance_callbacks: Vec::new(),
        in_prev_balance: false,
        handoff_walk: None,
        next_balance: 0,
        avg_idle_ns: 1_000_000,
        idle_stamp: 0,
        max_idle_balance_cost_ns: 500_000,
        // sd->balance_interval starts at the domain's min_interval.
        balance_interval_ms: topo.domains[cpu.idx()]
            .iter()
            .map(|d| d.min_interval_ms)
            .collect(),
        nr_balance_failed: vec![0; topo.domains[cpu.idx()].len()],
        last_balance: vec![0; topo.domains[cpu.idx()].len()],
        stop_works: Vec::new(),
        rt_push_work_pending: false,
        in_hardirq: false,
        last_prev: idle_task_id(cpu),
        proxy_traced: None,
        balance_softirq_pending: false,
        polling: false,
        nohz: Default::default(),
        preempt_count: 0,
        irqs_disabled: false,
    }
}

/// CPU `cpu`'s stopper thread (`migration/N`), FIFO 99 in the stop class, asleep until work
/// is queued.
///
/// Linux: kernel/stop_machine.c cpu_stop_init() / sched_set_stop_task().
fn new_stopper_task(m: &Rc<Machine>, n: usize, cpu: CpuId) -> Task {
    let id = stopper_task_id(n, cpu);
    let mut t = new_task_struct(m, id, 10 + cpu.0, &format!("migration/{cpu}"), cpu);
    t.is_stopper = true;
    t.class = Class::Stop;
    t.policy = Policy::Fifo;
    t.rt_priority = 99;
    t.prio = 0;
    t.normal_prio = 0;
    t.cpus_mask = CpuMasks::single(cpu);
    t.nr_cpus_allowed = 1;
    t.state = state::TASK_INTERRUPTIBLE;
    t
}

/// A kernel (machine + scheduler state) booted from `cfg`, with no workload yet.
pub fn new_kernel(cfg: &Config, sink: Box<dyn EventSink>) -> Rc<Kernel> {
    Kernel::from_state(new_sched_state(cfg, sink))
}

impl Kernel {
    /// Wrap a scheduler state (tests build one, then run kernel paths on it).
    pub fn from_state(s: SchedState) -> Rc<Kernel> {
        let n = s.nr_cpus();
        Rc::new(Kernel {
            m: s.m.clone(),
            s: RefCell::new(s),
            lockdep: RefCell::new(Lockdep::new(n)),
            violations: RefCell::new(Vec::new()),
            end: RefCell::new(None),
            stderr: RefCell::new(String::new()),
        })
    }
}

impl Kernel {
    /// End the run for `reason` (first reason wins).
    pub fn end(&self, reason: EndReason, report: String) {
        let mut e = self.end.borrow_mut();
        if e.is_none() {
            *e = Some((reason, report));
        }
        self.m.stop();
    }
}

/// `task_newtask`: announce a created task on CPU 0's buffer (the forking CPU at boot).
///
/// Linux: kernel/fork.c copy_process() → trace_task_newtask().
fn announce_task(s: &mut SchedState, id: TaskId, kthread: bool) {
    let t = &s.tasks[id.idx()];
    let (pid, comm, policy, prio, nice) = (t.pid, t.comm, t.policy, t.prio, t.nice());
    core::emit(
        s,
        CpuId(0),
        EventKind::TaskNewtask {
            pid,
            comm,
            policy,
            prio,
            nice,
            kthread,
        },
    );
}

/// A task_struct with defaults (SCHED_NORMAL nice 0, not queued, allowed only on `cpu`).
///
/// Linux: kernel/fork.c dup_task_struct(), kernel/sched/core.c __sched_fork().
pub fn new_task_struct(m: &Machine, id: TaskId, pid: u32, name: &str, cpu: CpuId) -> Task {
    Task {
        id,
        pid,
        comm: Comm::new(name),
        state: state::TASK_RUNNING,
        exit_state: 0,
        on_rq: OnRq::No,
        on_cpu: false,
        cpu,
        wake_cpu: cpu,
        cpus_mask: CpuMasks::single(cpu),
        nr_cpus_allowed: 1,
        policy: Policy::Normal,
        prio: 120,
        static_prio: 120,
        normal_prio: 120,
        rt_priority: 0,
        class: Class::Fair,
        se: SchedEntity::default(),
        rt: SchedRtEntity::default(),
        dl: Default::default(),
        dl_server: None,
        need_resched: false,
        sched_contributes_to_load: false,
        nvcsw: 0,
        nivcsw: 0,
        pi_lock: m.new_lock(),
        is_idle_task: false,
        is_stopper: false,
        last_wakee: None,
        wakee_flips: 0,
        wakee_flip_decay_ts: 0,
        recent_used_cpu: cpu,
        migration_pending: false,
        thread: None,
        waiting_on: None,
        blocked_on: None,
        blocked_lock: m.new_lock(),
        proxy_waking: false,
        is_blocked: false,
        blocked_donor: None,
        in_iowait: false,
        sleeping_owner: None,
        blocked_head: Default::default(),
        pi_waiters: Default::default(),
        pi_blocked_on: None,
        rt_waiter: Default::default(),
        wq_worker: None,
        sched_task_group: crate::sched::cgroup::ROOT_TASK_GROUP,
        sigpending: false,
    }
}

/// The effective priority `attr` gives (before any PI boost).
///
/// Linux: kernel/sched/syscalls.c __normal_prio().
fn prio_of(attr: SchedAttr) -> i32 {
    match attr.policy {
        Policy::Fifo | Policy::Rr => rt_prio(attr.rt_priority.clamp(1, 99)),
        Policy::Deadline => crate::sched::deadline::DL_PRIO,
        _ => nice_to_prio(attr.nice.clamp(-20, 19)),
    }
}

/// `__setscheduler_params()` + `__setscheduler_prio()`: policy, priorities and class.
///
/// Linux: kernel/sched/syscalls.c __setscheduler_params(), __setscheduler_prio().
fn apply_attr(s: &mut SchedState, p: TaskId, attr: SchedAttr) {
    let t = &mut s.tasks[p.idx()];
    t.policy = attr.policy;
    match attr.policy {
        Policy::Fifo | Policy::Rr => {
            t.rt_priority = attr.rt_priority.clamp(1, 99);
            t.normal_prio = rt_prio(t.rt_priority);
        }
        Policy::Deadline => {
            t.rt_priority = 0;
            t.static_prio = nice_to_prio(attr.nice.clamp(-20, 19));
            t.normal_prio = crate::sched::deadline::DL_PRIO;
        }
        Policy::Normal | Policy::Batch | Policy::Idle => {
            t.rt_priority = 0;
            t.static_prio = nice_to_prio(attr.nice.clamp(-20, 19));
            t.normal_prio = t.static_prio;
        }
    }
    if t.policy.is_rt() {
        t.static_prio = nice_to_prio(attr.nice.clamp(-20, 19));
    }
    t.prio = t.normal_prio;
    t.class = core::class_of(t.prio, false, false);
    if attr.policy == Policy::Deadline {
        crate::sched::deadline::setparam_dl(s, p, attr.dl_runtime_ns, attr.dl_deadline_ns, attr.dl_period_ns);
    }
}

/// `__sched_setscheduler()` from the point where `pi_lock` and the rq lock are held and the
/// change was checked and admitted: dequeue/put, change, enqueue/set,
/// `check_class_changed()`. An inherited (PI) priority survives the change: the effective
/// prio is `rt_effective_prio()` of the new normal prio.
///
/// Linux: kernel/sched/syscalls.c __sched_setscheduler().
///
/// Deviation: the parameter checks, the locking and the DL admission before this point are
/// the caller's (`sched_setattr_self()` in `syscalls.rs`); no `user`/capability checks.
pub fn __sched_setscheduler(s: &mut SchedState, cpu: CpuId, p: TaskId, attr: SchedAttr) {
    use crate::sched::{DequeueFlags, EnqueueFlags};
    // A delayed fair task leaves for good before it changes class (switched_from_fair
    // expects no delayed entity), as Linux's __sched_setscheduler does.
    // With PI a policy change keeps an inherited boost (rt_effective_prio()).
    let new_class = core::class_of(
        crate::locking::rtmutex::rt_effective_prio(s, p, prio_of(attr)),
        false,
        false,
    );
    if s.tasks[p.idx()].se.sched_delayed && new_class != s.tasks[p.idx()].class {
        // The fair class blocks it itself (dequeue_entities → __block_task).
        core::dequeue_task(
            s,
            cpu,
            p,
            DequeueFlags::SLEEP | DequeueFlags::DELAYED | DequeueFlags::NOCLOCK,
        );
    }
    let queued = s.tasks[p.idx()].on_rq == OnRq::Queued;
    let running = s.rqs[cpu.idx()].donor == p;
    if queued {
        core::dequeue_task(
            s,
            cpu,
            p,
            DequeueFlags::SAVE | DequeueFlags::MOVE | DequeueFlags::NOCLOCK,
        );
    }
    if running {
        core::put_prev_task(s, cpu, p);
    }
    let (prev_class, oldprio, old_nice, old_policy_class) = {
        let t = &s.tasks[p.idx()];
        (
            t.class,
            t.prio,
            t.nice(),
            core::class_of(t.normal_prio, false, false),
        )
    };
    apply_attr(s, p, attr);
    set_boosted_prio(s, p, new_class);
    switch_entities(s, cpu, p, prev_class, old_nice, old_policy_class);
    if queued {
        core::enqueue_task(
            s,
            cpu,
            p,
            EnqueueFlags::RESTORE | EnqueueFlags::MOVE | EnqueueFlags::NOCLOCK,
        );
    }
    if running {
        core::set_next_task(s, cpu, p, false);
        // The donor's class changed: next_class follows it (C4, I13).
        s.rqs[cpu.idx()].next_class = s.tasks[p.idx()].class;
    }
    check_class_changed(s, cpu, p, prev_class, oldprio);
}

/// `__sched_setscheduler()`'s priority step after the new attributes are in: the effective
/// prio keeps an inherited boost (`rt_effective_prio()`), and a task still boosted into the
/// deadline class by a SCHED_DEADLINE waiter runs on that waiter's reservation (D-21).
///
/// Linux: kernel/sched/syscalls.c __sched_setscheduler() (`newprio`, `__setscheduler_prio()`).
fn set_boosted_prio(s: &mut SchedState, p: TaskId, new_class: Class) {
    let boosted = crate::locking::rtmutex::rt_effective_prio(s, p, s.tasks[p.idx()].normal_prio);
    let t = &mut s.tasks[p.idx()];
    t.prio = boosted;
    t.class = core::class_of(boosted, false, false);
    assert_eq!(t.class, new_class);
    if new_class == Class::Deadline && t.policy != Policy::Deadline {
        // Still boosted by a SCHED_DEADLINE waiter (D-21): its reservation applies.
        let top = crate::locking::rtmutex::rt_mutex_get_top_task(s, p).expect("a DL boost has a top waiter");
        crate::sched::deadline::dl_pi_boost(s, p, top);
    } else if new_class == Class::Deadline {
        // Its own reservation from now on.
        s.tasks[p.idx()].dl.pi_se = None;
    }
}

/// `__sched_setscheduler()`'s class step: a class change initialises the new class's entity,
/// a nice change reweights a fair one; with a PI boost, the policy's own class is prepared
/// for the deboost. Rq lock of `cpu` held, `p` dequeued and put.
///
/// Linux: kernel/sched/syscalls.c __setscheduler_class(), __setscheduler_params().
fn switch_entities(
    s: &mut SchedState,
    cpu: CpuId,
    p: TaskId,
    prev_class: Class,
    old_nice: i32,
    old_policy_class: Class,
) {
    let (class, new_nice) = {
        let t = &s.tasks[p.idx()];
        (t.class, t.nice())
    };
    if class != prev_class {
        class.init_entity(s, p);
    } else if class == Class::Fair && new_nice != old_nice {
        crate::sched::fair::reweight_task_fair(s, cpu, p, new_nice);
    }
    // A PI boost keeps the task in the RT class while its policy may have moved: prepare the
    // policy's class for the deboost, as entering it would (Linux keeps `p->se` and `p->rt`
    // initialised for every task).
    let policy_class = core::class_of(s.tasks[p.idx()].normal_prio, false, false);
    if policy_class != class {
        match policy_class {
            Class::Fair if old_policy_class != Class::Fair => crate::sched::fair::init_entity_fair(s, p),
            Class::Fair if new_nice != old_nice => crate::sched::fair::set_weight_unqueued(s, p),
            _ => {}
        }
    } else if class == prev_class && policy_class == Class::Rt && old_policy_class != Class::Rt {
        s.tasks[p.idx()].rt.time_slice = s.tun.rr_timeslice_ticks();
    }
}

/// Stall and deadlock detection, from CPU 0's tick: live workload tasks remain, yet no CPU has
/// anything queued, no wakeup is pending or in flight, and no task timer is armed — for two
/// consecutive ticks. Lock cycles are reported as a deadlock naming tasks and locks. (A lock
/// cycle while other tasks still run, or whose donors stay queued under Proxy Execution, is
/// found by the run's [`Watchdog`].)
pub fn check_stall(k: &Kernel) {
    let report = {
        let s = &mut *k.st();
        assert!(
            !s.inject_model_assertion,
            "injected model assertion failure (proxysched.inject.model_assertion)"
        );
        if s.nr_exited >= s.nr_user_tasks {
            return;
        }
        if let Some(report) = check_lost_wake_list(s) {
            report
        } else {
            let quiet = s
                .rqs
                .iter()
                .all(|rq| rq.nr_running == 0 && rq.wake_list.is_empty() && rq.stop_works.is_empty())
                && !crate::time::task_timers_armed(s)
                && s.tasks
                    .iter()
                    .all(|t| t.is_idle_task || t.is_stopper || !t.on_cpu)
                && s.tasks.iter().all(|t| {
                    t.state != state::TASK_WAKING
                        && !(t.state == state::TASK_RUNNING && t.thread.is_some() && t.exit_state == 0)
                });
            if !quiet {
                s.stall_ticks = 0;
                return;
            }
            s.stall_ticks += 1;
            if s.stall_ticks < 2 {
                return;
            }
            stall_report(s)
        }
    };
    k.end(report.0, report.1);
}

/// A lost wakeup the quiet test above cannot see: tasks sit on a CPU's wake list (in
/// TASK_WAKING, which counts as progress) while no IPI or poll kick is pending for that CPU,
/// so nothing will ever flush the list. Reported when one episode of the list (from empty to
/// non-empty, `Rq::wake_list_gen`) has lasted two ticks: a flush takes microseconds, and a
/// CPU may legitimately be between taking the interrupt and draining the list at a check
/// (CPU 0 itself, whose tick runs this check).
///
/// Linux: kernel/smp.c __smp_call_single_queue() sends the IPI exactly when the list was
/// empty, and the target drains the whole list in flush_smp_call_function_queue(), so a
/// non-empty list always has an IPI (or a polling idle CPU's need_resched) on its way.
fn check_lost_wake_list(s: &mut SchedState) -> Option<(EndReason, String)> {
    let now = s.m.now();
    let bound = 2 * s.tun.tick_ns();
    let mut lost = None;
    for cpu in 0..s.rqs.len() {
        let rq = &s.rqs[cpu];
        if rq.wake_list.is_empty() {
            s.wake_list_seen[cpu] = None;
            continue;
        }
        match s.wake_list_seen[cpu] {
            Some((gen, since)) if gen == rq.wake_list_gen => {
                let pending = s.m.ipi_pending(rq.cpu, crate::sched::core::ipi::CALL_FUNCTION)
                    || s.m.ipi_pending(rq.cpu, crate::sched::core::ipi::POLL_KICK);
                if now.saturating_sub(since) >= bound && !pending && lost.is_none() {
                    lost = Some(cpu);
                }
            }
            _ => s.wake_list_seen[cpu] = Some((rq.wake_list_gen, now)),
        }
    }
    let rq = &s.rqs[lost?];
    let names: Vec<String> = rq
        .wake_list
        .iter()
        .map(|&t| format!("{}-{}", s.tasks[t.idx()].comm, s.tasks[t.idx()].pid))
        .collect();
    Some((
        EndReason::Stall,
        format!(
            "lost wakeup: cpu{}'s wake list holds {} and no IPI or poll kick is pending for it",
            rq.cpu,
            names.join(", ")
        ),
    ))
}

/// System calls one thread may make at one simulated instant before the run is a livelock.
/// Such a thread never gives the executor a step (every request returns at once), so the
/// step guard cannot see it; ordinary threads make a handful of requests per instant.
pub const LIVELOCK_USER_OPS: u64 = 1_000_000;

/// End the run as a livelock of thread `p`, which made [`LIVELOCK_USER_OPS`] requests without
/// simulated time advancing (a stall, exit code 3). A lock cycle, if any, is reported instead.
pub fn end_user_livelock(k: &Kernel, p: TaskId) {
    let (reason, report) = {
        let s = &*k.st();
        match stall_report(s) {
            r @ (EndReason::Deadlock, _) => r,
            _ => {
                let t = &s.tasks[p.idx()];
                (
                    EndReason::Stall,
                    format!(
                        "livelock: thread {}-{} made {LIVELOCK_USER_OPS} requests at {} ns without simulated time advancing; \
                         its loop takes no simulated time (every event is like \"run\": 0 or \"sleep\": 0), \
                         so the clock can never move (give the loop a run or a sleep that lasts)",
                        t.comm,
                        t.pid,
                        s.now()
                    ),
                )
            }
        }
    };
    k.end(reason, report);
}

/// Machine steps at one simulated instant after which a run is a livelock: kernel paths that
/// retry for ever without simulated time advancing (at zero cost, a donor bouncing between
/// CPUs, or a pick that runs idle and picks again). A legitimate instant takes far fewer:
/// booting 65,536 threads at time 0 takes about 300,000 steps.
pub const LIVELOCK_STEPS: u64 = 10_000_000;

/// Tick periods that must begin while a lock cycle exists before the [`Watchdog`] reports a
/// deadlock: the cycle then persisted over two whole periods. (A deadlock of an otherwise
/// quiet system is reported by `check_stall` at its second tick, first, as before the
/// watchdog existed.)
pub const CYCLE_PERIODS: u32 = 3;

/// The run's liveness watchdog, outside the modelled kernel: called after every machine step,
/// whatever the CPUs do (a CPU looping in `__schedule()` with interrupts off takes no tick, so
/// a check from the tick could miss it). It ends the run
/// - as a deadlock when a cycle of mutex waits ([`find_lock_cycle`]) exists at the start of
///   [`CYCLE_PERIODS`] consecutive tick periods: such a cycle never resolves (a mutex waiter
///   sleeps uninterruptibly and only the owner unlocks), but other tasks may still run, and
///   under Proxy Execution its tasks stay queued as donors (and may migrate between CPUs for
///   ever), so the system is never quiet;
/// - as a livelock (a stall, or the deadlock it hides) when [`LIVELOCK_STEPS`] steps pass
///   without simulated time advancing.
pub struct Watchdog {
    tick_ns: Nanos,
    last_ns: Nanos,
    steps_at_last_ns: u64,
    last_period: u64,
    /// The start of the period after `last_period`, `(last_period + 1) · tick_ns`
    /// (saturating): simulated time never goes back, so a step before it is in the same
    /// period.
    next_period_ns: Nanos,
    cycle_periods: u32,
}

impl Watchdog {
    pub fn new(tick_ns: Nanos) -> Watchdog {
        let tick_ns = tick_ns.max(1);
        Watchdog {
            tick_ns,
            last_ns: 0,
            steps_at_last_ns: 0,
            last_period: 0,
            next_period_ns: tick_ns,
            cycle_periods: 0,
        }
    }

    /// The start of the next tick period: until then another step at a new instant, on
    /// unchanged state, only moves `last_ns` (the lock-cycle count advances per period).
    #[inline]
    pub fn next_period_ns(&self) -> Nanos {
        self.next_period_ns
    }

    /// Account one step; returns the end of the run if it must end now. Most steps only
    /// compare times (without borrowing the scheduler state); the work of a new period and
    /// of a livelock is out of line.
    #[inline]
    pub fn step(&mut self, k: &Kernel) -> Option<(EndReason, String)> {
        let now = k.m.now();
        if now != self.last_ns {
            self.last_ns = now;
            self.steps_at_last_ns = 0;
            if now < self.next_period_ns {
                return None;
            }
            return self.new_period(&k.st(), now);
        }
        self.steps_at_last_ns += 1;
        if self.steps_at_last_ns < LIVELOCK_STEPS {
            return None;
        }
        self.livelock(&k.st(), now)
    }

    /// The first step of a new tick period: look for a lock cycle.
    #[cold]
    #[inline(never)]
    fn new_period(&mut self, s: &SchedState, now: Nanos) -> Option<(EndReason, String)> {
        let period = now / self.tick_ns;
        if period == self.last_period {
            // Only at the end of time, where `next_period_ns` saturated.
            return None;
        }
        self.last_period = period;
        self.next_period_ns = (period + 1).saturating_mul(self.tick_ns);
        if lock_cycle_possible(s) && find_lock_cycle(s).is_some() {
            self.cycle_periods += 1;
        } else {
            self.cycle_periods = 0;
        }
        if self.cycle_periods >= CYCLE_PERIODS {
            return Some(stall_report(s));
        }
        None
    }

    /// [`LIVELOCK_STEPS`] steps at `now`: the stall report, or the deadlock it hides.
    #[cold]
    #[inline(never)]
    fn livelock(&mut self, s: &SchedState, now: Nanos) -> Option<(EndReason, String)> {
        let (reason, report) = stall_report(s);
        if reason == EndReason::Deadlock {
            return Some((reason, report));
        }
        let name = |t: TaskId| format!("{}-{}", s.tasks[t.idx()].comm, s.tasks[t.idx()].pid);
        let mut lines = vec![format!(
            "livelock: simulated time stopped advancing at {now} ns ({LIVELOCK_STEPS} machine steps without progress)"
        )];
        for rq in &s.rqs {
            if rq.curr == rq.idle && rq.donor == rq.idle {
                lines.push(format!("  cpu{} is idle", rq.cpu));
            } else if rq.donor != rq.curr {
                lines.push(format!(
                    "  cpu{} runs {} on the context of {}",
                    rq.cpu,
                    name(rq.curr),
                    name(rq.donor)
                ));
            } else {
                lines.push(format!("  cpu{} runs {}", rq.cpu, name(rq.curr)));
            }
        }
        Some((EndReason::Stall, lines.join("\n")))
    }
}

/// The task `t` waits for through a mutex (or rt_mutex): its owner. A mutex handed off but
/// not yet picked up (PICKUP) names the waiter that will take it, which is not a wait for
/// another task, so it is no edge.
fn lock_wait_next(s: &SchedState, t: TaskId) -> Option<TaskId> {
    match s.tasks[t.idx()].waiting_on {
        Some(WaitTarget::Mutex(m)) => mutex_wait_owner(&s.mutexes[m.idx()]),
        Some(WaitTarget::RtMutex(m)) => s.rt_mutexes[m.idx()].owner,
        _ => None,
    }
}

/// The owner a waiter of mutex `mx` waits for (none while a handoff is being picked up).
fn mutex_wait_owner(mx: &crate::locking::mutex::Mutex) -> Option<TaskId> {
    if mx.flags.contains(crate::locking::mutex::MutexFlags::PICKUP) {
        None
    } else {
        mx.owner
    }
}

/// A necessary condition for a cycle of mutex waits, in the locks rather than the tasks: in
/// a cycle every member waits for the owner of a lock, and that owner waits too, so some
/// (mutex or rt_mutex) owner that a waiter would wait for is itself waiting for a lock's
/// owner. False means [`find_lock_cycle`] finds nothing; the watchdog asks this first every
/// tick period, so that a run without nested lock waits costs nothing per task.
fn lock_cycle_possible(s: &SchedState) -> bool {
    let waits = |o: Option<TaskId>| o.is_some_and(|o| lock_wait_next(s, o).is_some());
    s.mutexes.iter().any(|m| waits(mutex_wait_owner(m))) || s.rt_mutexes.iter().any(|m| waits(m.owner))
}

/// The first cycle of mutex waits, found from the workload threads in task order: each task
/// in it waits for a mutex (or rt_mutex) whose owner is the next task (`lock_wait_next`),
/// the last one's owner being the first. Linear in the tasks.
pub fn find_lock_cycle(s: &SchedState) -> Option<Vec<TaskId>> {
    let next = |t: TaskId| lock_wait_next(s, t);
    // 0: not seen, 1: on the path being followed, 2: done (no cycle from there).
    let mut seen = vec![0u8; s.tasks.len()];
    // One path buffer for every start (most starts wait for nothing and need none).
    let mut path = Vec::new();
    for start in s
        .tasks
        .iter()
        .filter(|t| t.thread.is_some() && t.exit_state == 0)
        .map(|t| t.id)
    {
        if seen[start.idx()] == 0 && next(start).is_none() {
            // A path of one task that ends at once: done, as the walk below would find.
            seen[start.idx()] = 2;
            continue;
        }
        path.clear();
        let mut cur = Some(start);
        while let Some(t) = cur {
            match seen[t.idx()] {
                1 => {
                    let i = path.iter().position(|&x| x == t).expect("on the path");
                    return Some(path[i..].to_vec());
                }
                2 => break,
                _ => {}
            }
            seen[t.idx()] = 1;
            path.push(t);
            cur = next(t);
        }
        for &t in &path {
            seen[t.idx()] = 2;
        }
    }
    None
}

/// Name and owner of the lock a wait target names.
fn lock_of(s: &SchedState, w: WaitTarget) -> (&str, Option<TaskId>) {
    match w {
        WaitTarget::Mutex(m) => (&s.mutexes[m.idx()].name, s.mutexes[m.idx()].owner),
        WaitTarget::RtMutex(m) => (&s.rt_mutexes[m.idx()].name, s.rt_mutexes[m.idx()].owner),
        WaitTarget::Cond(c) => (&s.user_conds[c as usize].name, None),
        WaitTarget::Work(w) => (&s.wq.works[w as usize].name, None),
    }
}

fn stall_report(s: &SchedState) -> (EndReason, String) {
    let name = |t: TaskId| format!("{}-{}", s.tasks[t.idx()].comm, s.tasks[t.idx()].pid);
    let mut lines = Vec::new();
    let busy_worker = |t: &crate::task::Task| {
        t.wq_worker
            .is_some_and(|w| s.wq.workers[w as usize].current_work.is_some())
    };
    for t in s
        .tasks
        .iter()
        .filter(|t| (t.thread.is_some() && t.exit_state == 0) || busy_worker(t))
    {
        let what = match t.waiting_on {
            Some(w @ (WaitTarget::Mutex(_) | WaitTarget::RtMutex(_))) => {
                let (lname, owner) = lock_of(s, w);
                match owner {
                    Some(o) => format!("waits for mutex {lname} held by {}", name(o)),
                    None => format!("waits for mutex {lname}"),
                }
            }
            Some(WaitTarget::Cond(c)) => format!("waits on condition {}", s.user_conds[c as usize].name),
            Some(WaitTarget::Work(w)) => format!("waits in flush_work for {}", s.wq.works[w as usize].name),
            None => "sleeps with nothing to wake it".to_string(),
        };
        lines.push(format!("  {} {}", name(t.id), what));
    }
    lines.extend(crate::workqueue::stall_report(s));
    if let Some(cycle) = find_lock_cycle(s) {
        let links: Vec<String> = cycle
            .iter()
            .map(|&t| {
                let w = s.tasks[t.idx()].waiting_on.expect("on a waits-for path");
                format!("{} waits for {}", name(t), lock_of(s, w).0)
            })
            .collect();
        return (
            EndReason::Deadlock,
            format!("lock cycle: {}\n{}", links.join(", "), lines.join("\n")),
        );
    }
    (
        EndReason::Stall,
        format!("no task can make progress:\n{}", lines.join("\n")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracepoints::NullSink;

    /// A scheduler state with `n` workload threads (task ids from `2 * cpus`) and `m` plain
    /// mutexes, nothing held or waited for.
    fn state(n: usize, m: usize) -> (SchedState, Vec<TaskId>) {
        let mut s = new_sched_state(&Config::new(1), Box::new(NullSink));
        let mut ids = Vec::new();
        for i in 0..n {
            let id = TaskId(s.tasks.len() as u32);
            let mut t = new_task_struct(&s.m, id, FIRST_USER_PID + i as u32, &format!("t{i}"), CpuId(0));
            t.thread = Some(i as u32);
            s.tasks.push(t);
            ids.push(id);
        }
        for i in 0..m {
            let wait_lock = s.m.new_lock();
            s.mutexes.push(Mutex {
                name: format!("M{i}"),
                owner: None,
                flags: MutexFlags::EMPTY,
                wait_list: Default::default(),
                wait_lock,
                osq: Default::default(),
                proxy: true,
                io: false,
                interruptible: false,
            });
        }
        (s, ids)
    }

    fn hold(s: &mut SchedState, t: TaskId, m: MutexId) {
        s.mutexes[m.idx()].owner = Some(t);
    }

    fn wait(s: &mut SchedState, t: TaskId, m: MutexId) {
        let mx = &mut s.mutexes[m.idx()];
        mx.wait_list.push_back(t);
        mx.flags.insert(MutexFlags::WAITERS);
        s.tasks[t.idx()].waiting_on = Some(WaitTarget::Mutex(m));
    }

    /// A ring a → M1 → b → M2 → c → M0 → a is found, in the rotation that starts at the first
    /// thread on it; a chain that ends at a runnable owner is not a cycle.
    #[test]
    fn a_ring_of_waits_is_a_cycle_and_a_chain_is_not() {
        let (mut s, t) = state(4, 3);
        for (m, &owner) in t[..3].iter().enumerate() {
            hold(&mut s, owner, MutexId(m as u32));
        }
        wait(&mut s, t[0], MutexId(1));
        wait(&mut s, t[1], MutexId(2));
        assert_eq!(find_lock_cycle(&s), None);
        wait(&mut s, t[2], MutexId(0));
        assert_eq!(find_lock_cycle(&s), Some(vec![t[0], t[1], t[2]]));
        // A thread waiting on the ring from outside is not part of the cycle.
        wait(&mut s, t[3], MutexId(0));
        assert_eq!(find_lock_cycle(&s), Some(vec![t[0], t[1], t[2]]));
    }

    /// A mutex handed off (owner = the waiter, PICKUP) is not held by anyone the waiter waits
    /// for: no self-cycle, no deadlock, while the same owner word without PICKUP (a thread
    /// waiting for a mutex it holds) is the one-thread cycle.
    #[test]
    fn a_handoff_in_flight_is_no_cycle_but_a_relock_is() {
        let (mut s, t) = state(2, 2);
        hold(&mut s, t[1], MutexId(1));
        wait(&mut s, t[0], MutexId(1));
        wait(&mut s, t[1], MutexId(0));
        // M0's owner handed it to its waiter t1 (owner word t1|PICKUP): t1 takes it when it
        // runs and waits for nobody, so t0 → M1 → t1 ends there.
        s.mutexes[0].owner = Some(t[1]);
        s.mutexes[0].flags.insert(MutexFlags::PICKUP);
        assert_eq!(find_lock_cycle(&s), None);
        s.mutexes[0].flags.remove(MutexFlags::PICKUP);
        assert_eq!(find_lock_cycle(&s), Some(vec![t[1]]));
    }

    /// The watchdog's pre-test: single waits on held locks cannot form a cycle; a waiting
    /// owner makes one possible, and every cycle passes the pre-test.
    #[test]
    fn a_cycle_needs_an_owner_that_waits() {
        let (mut s, t) = state(4, 3);
        assert!(!lock_cycle_possible(&s), "no waits");
        hold(&mut s, t[0], MutexId(0));
        wait(&mut s, t[1], MutexId(0));
        wait(&mut s, t[2], MutexId(0));
        assert!(!lock_cycle_possible(&s), "waiters of a running owner");
        hold(&mut s, t[1], MutexId(1));
        wait(&mut s, t[3], MutexId(1));
        assert!(lock_cycle_possible(&s), "t3 waits for t1, which waits for t0");
        assert_eq!(
            find_lock_cycle(&s),
            None,
            "possible is not found: the chain ends at t0"
        );
        wait(&mut s, t[0], MutexId(1));
        assert!(lock_cycle_possible(&s));
        assert_eq!(find_lock_cycle(&s), Some(vec![t[0], t[1]]));
        // A handoff in flight is no wait for its owner.
        s.mutexes[1].flags.insert(MutexFlags::PICKUP);
        s.mutexes[0].flags.insert(MutexFlags::PICKUP);
        assert!(!lock_cycle_possible(&s));
        assert_eq!(find_lock_cycle(&s), None);
    }
}
