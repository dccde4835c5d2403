//! Run assembly: from a workload, flags and a choice source to a finished run.
//!
//! Everything between "here is an rt-app workload and the flags" and "here are the metrics,
//! the outcome and the violations" lives here, so that the command line, its tests and the
//! explorer build and run systems the same way: [`build_config`] turns the workload's
//! settings and the [`Flags`] into a kernel [`Config`]; [`simulate_with`] boots a
//! [`System`], takes its decisions from a [`Choices`] (the seeded default, or an explorer's
//! strategy, recording them or not), runs it, and collects the metrics and outcome. A failed
//! `assert!` inside the model comes back as [`Failure::ModelPanic`]; [`with_replay`] turns it
//! into a reported violation carrying its replay line (exit 4), never a bare panic.
//!
//! Reading files: a `--costs FILE` is read here; nothing else touches the filesystem.

use std::io::Write;

use kernel::locking::Protocol;
use kernel::sched::features::Features;
use kernel::sched::Costs;
use kernel::system::{Config, EndReason, Outcome, System, TaskSpec};
use kernel::tracepoints::EventSink;
use report::metrics::{Metrics, MetricsCollector, RunInfo, ViolationRecord};
use report::sink::{Fanout, SharedSink};
use sim::{ChoiceLog, ChoiceSource, CpuMask};
use uapi::SchedAttr;
use workload::Workload;

/// The flags that configure a run (the command line's `--cpus`, `--protocol`, `--model`,
/// `--feature`, `--costs`, `--seed`, `--duration`, `--check`), as plain data.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    /// The workload file as error messages name it (the path given, `demo.json`, ...).
    pub file: String,
    pub cpus: Option<usize>,
    pub protocol: Option<String>,
    pub model: Option<String>,
    /// `NAME=on|off`, in order; later ones win.
    pub features: Vec<String>,
    pub costs: Option<String>,
    pub seed: Option<u64>,
    pub duration: Option<f64>,
    pub check: bool,
    /// Turn the machine's fast paths off (`Config::fast_paths`): the same traces and metrics,
    /// slower. The command line sets it from the environment (`PROXYSCHED_SLOW_PATHS=1`).
    pub slow_paths: bool,
    /// Check every step instead of skipping the quiet ones (`Config::full_checks`): the same
    /// verdicts, slower. The command line sets it from the environment
    /// (`PROXYSCHED_FULL_CHECKS=1`).
    pub full_checks: bool,
}

/// Default limit for a workload that sets no `global.duration` (rt-app would run until its
/// threads end, which for a `loop: -1` thread is forever).
pub const DEFAULT_LIMIT_S: f64 = 10.0;

/// The highest CPU the workload names (thread or phase `cpus`, `queue_work` targets), with
/// who names it and where: `(cpu, who, line, column)`.
pub fn highest_named_cpu(w: &Workload) -> Option<(u32, String, u32, u32)> {
    use workload::{Event, WorkStepSpec};
    let mut best: Option<(u32, String, u32, u32)> = None;
    let mut see = |cpu: u32, who: String, line: u32, column: u32| {
        if best.as_ref().is_none_or(|b| cpu > b.0) {
            best = Some((cpu, who, line, column));
        }
    };
    for t in &w.tasks {
        for &c in t.cpus.iter().flatten() {
            see(c, format!("task {}", t.name), t.line, t.column);
        }
        for p in &t.phases {
            for &c in p.cpus.iter().flatten() {
                see(c, format!("task {} phase {}", t.name, p.name), t.line, t.column);
            }
            for e in &p.events {
                if let Event::QueueWork { cpu: Some(c), .. } = e.event {
                    see(c, format!("task {} event {}", t.name, e.key), e.line, e.column);
                }
            }
        }
    }
    for item in &w.settings.workqueues.items {
        for s in &item.steps {
            if let WorkStepSpec::QueueWork { cpu: Some(c), .. } = *s {
                see(c, format!("work item {}", item.name), item.line, item.column);
            }
        }
    }
    best
}

/// The number of CPUs to run with, and a note for the table header when it is not what the
/// workload or flags said. `--cpus`, else `proxysched.cpus`, else 1 — raised to one more than
/// the highest CPU the workload names when neither was given (rt-app's own examples name
/// CPUs without saying how many the machine has); an explicit count that is too small is bad
/// input naming the place that asks for the missing CPU.
pub fn resolve_cpus(w: &Workload, args: &Flags) -> Result<(usize, Option<String>), Failure> {
    let explicit = args.cpus.or(w.settings.cpus);
    let cpus = explicit.unwrap_or(1);
    if cpus == 0 || cpus > sim::MAX_CPUS {
        return Err(Failure::BadInput(format!(
            "error: --cpus must be between 1 and {}, got {cpus}",
            sim::MAX_CPUS
        )));
    }
    let Some((cpu, who, line, column)) = highest_named_cpu(w) else {
        return Ok((cpus, None));
    };
    let needed = cpu as usize + 1;
    if needed <= cpus {
        return Ok((cpus, None));
    }
    let file = &args.file;
    if needed > sim::MAX_CPUS {
        return Err(Failure::BadInput(format!(
            "{file}:{line}:{column}: error: {who} names CPU {cpu}; the model has at most {} CPUs",
            sim::MAX_CPUS
        )));
    }
    if explicit.is_some() {
        let by = if args.cpus.is_some() {
            "--cpus"
        } else {
            "proxysched.cpus"
        };
        return Err(Failure::BadInput(format!(
            "{file}:{line}:{column}: error: {who} names CPU {cpu}, but {by} gives {cpus} CPUs; \
             expected --cpus {needed} or more"
        )));
    }
    Ok((
        needed,
        Some(format!(
            "running on {needed} CPUs, not the default 1: {who} names CPU {cpu} (set --cpus or proxysched.cpus to choose)"
        )),
    ))
}

/// The kernel configuration from the workload's settings, overridden by the flags.
pub fn build_config(w: &Workload, args: &Flags) -> Result<(Config, String), Failure> {
    let bad = |m: String| Failure::BadInput(m);
    let (cpus, _) = resolve_cpus(w, args)?;
    let mut cfg = Config::new(cpus);
    cfg.fast_paths = !args.slow_paths;
    cfg.full_checks = args.full_checks;
    cfg.llc_size = w.settings.llc_size;
    if let Some(hz) = w.settings.hz {
        cfg.tun.hz = hz;
    }
    cfg.seed = args.seed.or(w.settings.seed).unwrap_or(0);
    let (costs, costs_name) = match args.costs.as_deref() {
        Some(spec) => load_costs_flag(spec)?,
        None => match &w.settings.costs {
            None => (Costs::default(), "default".to_string()),
            Some(workload::spec::CostsSpec::Preset(p)) => load_costs_flag(p)?,
            Some(workload::spec::CostsSpec::Inline(text)) => (
                Costs::from_json(text)
                    .map_err(|e| bad(format!("{}: error: proxysched.costs: {e}", w.name)))?,
                "inline".to_string(),
            ),
        },
    };
    cfg.costs = costs;
    let mut feat = Features::default();
    if let Some(m) = &args.model {
        let model = kernel::sched::features::ModelVersion::parse(m).ok_or_else(|| {
            bad(format!(
                "error: --model expects 6.17, 7.1, v29 or next, got `{m}`"
            ))
        })?;
        model.apply(&mut feat);
        cfg.model = model;
    }
    for (name, on) in &w.settings.features {
        feat.set(name, *on)
            .map_err(|e| bad(format!("{}: error: proxysched.features: {e}", w.name)))?;
    }
    for f in &args.features {
        let (name, val) = f
            .split_once('=')
            .ok_or_else(|| bad(format!("error: --feature expects NAME=on|off, got `{f}`")))?;
        let on = match val {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            _ => {
                return Err(bad(format!(
                    "error: --feature {name}: expected on or off, got `{val}`"
                )))
            }
        };
        feat.set(name, on)
            .map_err(|e| bad(format!("error: --feature: {e}")))?;
    }
    cfg.feat = feat;
    let secs = args.duration.or(w.duration_s).unwrap_or(DEFAULT_LIMIT_S);
    if !(secs > 0.0 && secs.is_finite() && secs < 1.0e6) {
        return Err(bad(format!(
            "error: --duration must be a positive number of seconds, got {secs}"
        )));
    }
    cfg.limit_ns = (secs * 1e9).round() as u64;
    Ok((cfg, costs_name))
}

fn load_costs_flag(spec: &str) -> Result<(Costs, String), Failure> {
    match spec {
        "default" => Ok((Costs::default(), "default".into())),
        "zero" => Ok((Costs::zero(), "zero".into())),
        path => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::BadInput(format!("{path}: error: cannot read cost file: {e}")))?;
            let c = Costs::from_json(&text).map_err(|e| Failure::BadInput(format!("{path}:{e}")))?;
            Ok((c, path.to_string()))
        }
    }
}

/// One complete run of a workload: its metrics and outcome.
pub struct RunResult {
    pub metrics: Metrics,
    pub outcome: Outcome,
    /// The decisions of the choice source, when [`Choices::record`] asked for them.
    pub choices: Option<ChoiceLog>,
}

/// Where a run's nondeterministic decisions come from ([`sim::choice`]).
#[derive(Default)]
pub struct Choices {
    /// None: the seeded default ([`sim::SeedOrder`] on `Config::seed`), as `proxysched run`.
    pub source: Option<Box<dyn ChoiceSource>>,
    /// Record every decision into [`RunResult::choices`].
    pub record: bool,
}

/// [`simulate`] with the decisions taken from `choices`: a model panic is returned as
/// [`Failure::ModelPanic`] (see [`with_replay`] to turn it into a reported violation).
#[allow(clippy::too_many_arguments)]
pub fn simulate_with(
    w: &Workload,
    cfg: &Config,
    costs_name: &str,
    protocol: Protocol,
    trace: Option<Box<dyn Write>>,
    extra: Option<Box<dyn EventSink>>,
    progress: &mut dyn FnMut(u64),
    choices: Choices,
) -> Result<RunResult, Failure> {
    catch_model_panic(|| simulate_unguarded(w, cfg, costs_name, protocol, trace, extra, progress, choices))
}

/// Boot a system for `w` under `cfg`, run it, and collect metrics (and a trace into `trace`).
pub fn simulate(
    w: &Workload,
    cfg: &Config,
    costs_name: &str,
    protocol: Protocol,
    trace: Option<Box<dyn Write>>,
    extra: Option<Box<dyn EventSink>>,
    progress: &mut dyn FnMut(u64),
) -> Result<RunResult, Failure> {
    simulate_with(
        w,
        cfg,
        costs_name,
        protocol,
        trace,
        extra,
        progress,
        Choices::default(),
    )
}

/// A model assertion that failed in the run `replay` reproduces: exit 4 with the replay line,
/// as an invariant violation is reported.
pub fn with_replay(e: Failure, replay: &str) -> Failure {
    match e {
        Failure::ModelPanic(msg) => {
            Failure::Violation(format!("model assertion failed: {msg}\nreplay: {replay}"))
        }
        other => other,
    }
}

#[allow(clippy::too_many_arguments)]
fn simulate_unguarded(
    w: &Workload,
    cfg: &Config,
    costs_name: &str,
    protocol: Protocol,
    trace: Option<Box<dyn Write>>,
    extra: Option<Box<dyn EventSink>>,
    progress: &mut dyn FnMut(u64),
    choices: Choices,
) -> Result<RunResult, Failure> {
    let collector = SharedSink::new(MetricsCollector::new());
    let mut sinks: Vec<Box<dyn EventSink>> = vec![Box::new(collector.clone())];
    sinks.extend(extra);
    let ftrace = trace.map(|out| SharedSink::new(report::ftrace::FtraceWriter::new(out)));
    if let Some(f) = &ftrace {
        sinks.push(Box::new(f.clone()));
    }
    let (outcome, choice_log) = boot_and_run(w, cfg, protocol, sinks, progress, choices)?;
    if let Some(f) = ftrace {
        let w = f.try_unwrap().ok().expect("the trace writer is no longer shared");
        w.finish().map_err(|e| Failure::Io(e.to_string()))?;
    }
    let collector = collector
        .try_unwrap()
        .ok()
        .expect("the collector is no longer shared");
    let info = run_info(w, cfg, costs_name, protocol, &outcome);
    let violations = outcome
        .violations
        .iter()
        .map(|v| ViolationRecord {
            invariant: v.invariant.clone(),
            time_ns: v.time_ns,
            detail: v.detail.clone(),
        })
        .collect();
    Ok(RunResult {
        metrics: collector.finish(info, violations),
        outcome,
        choices: choice_log,
    })
}

/// A run's outcome and recorded decisions without its metrics: what the explorer keeps of a
/// schedule. The events go to `extra` alone, if given (the metrics collector's work per
/// event is saved; the model does not read its sinks, so the run is the same).
/// A model panic is returned as [`Failure::ModelPanic`], as [`simulate_with`] does.
pub fn simulate_outcome(
    w: &Workload,
    cfg: &Config,
    protocol: Protocol,
    extra: Option<Box<dyn EventSink>>,
    choices: Choices,
) -> Result<(Outcome, Option<ChoiceLog>), Failure> {
    let sinks: Vec<Box<dyn EventSink>> = extra.into_iter().collect();
    catch_model_panic(|| boot_and_run(w, cfg, protocol, sinks, &mut |_| {}, choices))
}

/// Boot a system for `w` under `cfg` with its events going to `sinks`, run it, and return
/// its outcome and the decisions recorded (when `choices` asked for them).
fn boot_and_run(
    w: &Workload,
    cfg: &Config,
    protocol: Protocol,
    sinks: Vec<Box<dyn EventSink>>,
    progress: &mut dyn FnMut(u64),
    choices: Choices,
) -> Result<(Outcome, Option<ChoiceLog>), Failure> {
    let sink: Box<dyn EventSink> = if sinks.is_empty() {
        Box::new(kernel::tracepoints::NullSink)
    } else {
        Box::new(Fanout(sinks))
    };
    let mut sys = System::new(cfg.clone(), sink);
    match choices.source {
        Some(src) => sys.k.m.set_choice_source(src, choices.record),
        None if choices.record => sys.k.m.record_choices(),
        None => {}
    }
    add_resources(w, &mut sys, protocol);
    let nr = cfg.nr_cpus;
    add_workqueues(w, &mut sys, nr)?;
    add_taskgroups(w, &mut sys);
    add_threads(w, &mut sys, nr)?;
    let outcome = sys.run(progress);
    let choice_log = sys.k.m.choice_log();
    Ok((outcome, choice_log))
}

/// The workload's mutexes and condition variables, in the loader's order; a mutex without
/// its own `"protocol"` gets the run's `protocol`.
fn add_resources(w: &Workload, sys: &mut System, protocol: Protocol) {
    for r in &w.resources {
        match &r.kind {
            workload::spec::ResourceKind::Mutex {
                protocol: p,
                io,
                interruptible,
            } => {
                let p = p
                    .as_deref()
                    .map(|p| Protocol::parse(p).expect("validated by the loader"));
                let id = sys.add_mutex(&r.name, p.unwrap_or(protocol));
                if *io {
                    sys.set_mutex_io(id);
                }
                if *interruptible {
                    sys.set_mutex_interruptible(id);
                }
                id
            }
            workload::spec::ResourceKind::Cond => sys.add_cond(&r.name),
        };
    }
}

/// One task per workload thread, on CPUs `0..nr`; a thread pinned to a CPU the system does not
/// have is bad input.
fn add_threads(w: &Workload, sys: &mut System, nr: usize) -> Result<(), Failure> {
    for (i, (t, prog)) in w.threads.iter().zip(w.programs()).enumerate() {
        if let Some(cpus) = &t.cpus {
            if let Some(bad) = cpus.iter().find(|&&c| c as usize >= nr) {
                return Err(Failure::BadInput(format!(
                    "{}: error: thread {} asks for CPU {bad}, but the system has {nr} CPUs (use --cpus or proxysched.cpus)",
                    w.name, t.name
                )));
            }
        }
        sys.add_task(TaskSpec {
            name: t.name.clone(),
            // rt-app threads start as SCHED_OTHER and set their own policy and affinity.
            attr: SchedAttr::normal(0),
            cpus: Some(CpuMask::first_n(nr)),
            thread: i as u32,
            program: prog,
        });
    }
    Ok(())
}

/// The metrics header: what the caller knows about the run and the event stream does not carry.
fn run_info(w: &Workload, cfg: &Config, costs_name: &str, protocol: Protocol, outcome: &Outcome) -> RunInfo {
    RunInfo {
        workload: w.name.clone(),
        cpus: cfg.nr_cpus as u32,
        protocol: protocol.as_str().to_string(),
        seed: cfg.seed,
        costs: costs_name.to_string(),
        features: cfg
            .feat
            .values()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
        sim_time_ns: outcome.sim_time_ns,
        end_reason: outcome.end_reason.as_str().to_string(),
    }
}

/// The workload's task groups (`proxysched.taskgroups` and `taskgroup` keys), created in the
/// loader's order so that a group's kernel id is its workload id.
fn add_taskgroups(w: &Workload, sys: &mut System) {
    use kernel::sched::cgroup::sched_weight_from_cgroup;
    use workload::spec::GroupWeight;
    for (i, g) in w.settings.taskgroups.iter().enumerate() {
        let shares = match g.weight {
            GroupWeight::Default => kernel::sched::fair::NICE_0_LOAD,
            GroupWeight::Weight(v) => sched_weight_from_cgroup(v),
            GroupWeight::Shares(v) => v,
        };
        let id = sys.add_task_group(&g.path, g.parent, shares);
        assert_eq!(id as usize, i + 1, "task group ids follow the workload's order");
        if let Some(max) = g.cpu_max {
            sys.set_cfs_bandwidth(id, max.quota_us * 1_000, max.period_us * 1_000);
        }
    }
}

/// The workload's work items and worker-pool knobs (`proxysched.workqueues`). A `queue_work`
/// naming a CPU the system does not have is bad input.
fn add_workqueues(w: &Workload, sys: &mut System, nr: usize) -> Result<(), Failure> {
    use kernel::workqueue::WorkStep;
    use workload::{Event, WorkStepSpec};
    let wq = &w.settings.workqueues;
    let bad_cpu = |cpu: Option<u32>, whose: &str| -> Result<(), Failure> {
        match cpu {
            Some(c) if c as usize >= nr => Err(Failure::BadInput(format!(
                "{}: error: {whose} queues work on CPU {c}, but the system has {nr} CPUs (use --cpus or proxysched.cpus)",
                w.name
            ))),
            _ => Ok(()),
        }
    };
    for t in &w.tasks {
        for e in t.phases.iter().flat_map(|p| &p.events) {
            if let Event::QueueWork { cpu, .. } = e.event {
                bad_cpu(cpu, &format!("task {}", t.name))?;
            }
        }
    }
    sys.set_workqueue_config(wq.workers_per_pool.unwrap_or(0), wq.skip_sleeping_hook);
    for &point in &w.settings.inject {
        sys.arm_injection(point);
    }
    for item in &wq.items {
        let mut steps = Vec::with_capacity(item.steps.len());
        for s in &item.steps {
            steps.push(match *s {
                WorkStepSpec::Run { work_us } => WorkStep::Run {
                    work_ns: work_us * 1000,
                },
                WorkStepSpec::Sleep { duration_us } => WorkStep::Sleep {
                    ns: duration_us * 1000,
                },
                WorkStepSpec::Lock { mutex } => WorkStep::Lock { mutex },
                WorkStepSpec::Unlock { mutex } => WorkStep::Unlock { mutex },
                WorkStepSpec::QueueWork { item: target, cpu } => {
                    bad_cpu(cpu, &format!("work item {}", item.name))?;
                    WorkStep::QueueWork {
                        work: target as u32,
                        cpu: cpu.map(sim::CpuId),
                    }
                }
            });
        }
        sys.add_work(&item.name, steps);
    }
    Ok(())
}

/// Exit code of a run that rt-app would have aborted (`end_reason` `workload_failed`).
pub const EXIT_WORKLOAD_FAILED: u8 = 5;

/// The exit code for an outcome, and the message for stderr.
pub fn outcome_exit(o: &Outcome, replay: &str) -> (u8, Option<String>) {
    let (code, msg) = outcome_exit_code(o, replay);
    // Kernel warnings (WARN_ONCE) do not change the exit code, but are never silent.
    let warnings: Vec<String> = o
        .warnings
        .iter()
        .map(|w| format!("kernel warning: {w}"))
        .collect();
    if warnings.is_empty() {
        return (code, msg);
    }
    let mut text = warnings.join("\n");
    if let Some(m) = msg {
        text = format!("{text}\n{m}");
    }
    (code, Some(text))
}

fn outcome_exit_code(o: &Outcome, replay: &str) -> (u8, Option<String>) {
    match o.end_reason {
        EndReason::Exited | EndReason::Duration => (0, Some(o.report.clone()).filter(|r| !r.is_empty())),
        // rt-app itself would have exited with EXIT_FAILURE: the report is its message.
        EndReason::WorkloadFailed => (
            EXIT_WORKLOAD_FAILED,
            Some(format!(
                "workload_failed at {} ns: {}\nreplay: {replay}",
                o.sim_time_ns, o.report
            )),
        ),
        EndReason::Deadlock | EndReason::Stall => (
            3,
            Some(format!(
                "{}: the simulated system {} at {} ns\n{}\nreplay: {replay}",
                o.end_reason.as_str(),
                if o.end_reason == EndReason::Deadlock {
                    "deadlocked"
                } else {
                    "stalled"
                },
                o.sim_time_ns,
                o.report
            )),
        ),
        EndReason::Violation => {
            let lines: Vec<String> = o
                .violations
                .iter()
                .map(|v| format!("  {} at {} ns: {}", v.invariant, v.time_ns, v.detail))
                .collect();
            (
                4,
                Some(format!(
                    "invariant violated:\n{}\nreplay: {replay}",
                    lines.join("\n")
                )),
            )
        }
    }
}

/// The run's default lock protocol: `--protocol`, else the workload's (`proxysched.protocol`,
/// or pi for `pi_enabled`), else proxy (DESIGN.md).
pub fn default_protocol(w: &Workload, args: &Flags) -> Result<Protocol, Failure> {
    if let Some(p) = &args.protocol {
        return Protocol::parse(p).ok_or_else(|| {
            Failure::BadInput(format!("error: --protocol expects none, pi or proxy, got `{p}`"))
        });
    }
    Ok(w.settings
        .protocol
        .as_deref()
        .and_then(Protocol::parse)
        .unwrap_or(Protocol::Proxy))
}

/// A failure and the exit code it maps to ([`Failure::exit_code`]); `Display` gives the
/// message the command line prints.
#[derive(Debug)]
pub enum Failure {
    /// Bad workload or flags (exit 2).
    BadInput(String),
    /// Could not write an output file (exit 2, like other bad input): the message names the
    /// path and starts with it.
    Io(String),
    /// A model assertion failed inside a run: the message and where (exit 4 once the command
    /// has added the replay line, see [`Failure::Violation`]).
    ModelPanic(String),
    /// An invariant or model assertion failed; the message carries the replay line (exit 4).
    Violation(String),
}

thread_local! {
    /// Inside [`catch_model_panic`]: a panic is a model assertion, reported by the command
    /// with its replay line, so the panic hook stays quiet.
    static IN_MODEL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Where the last model panic happened (`file:line:column`), recorded by the hook.
    static PANIC_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Install the panic hook of the binary: a panic inside a run is recorded for the command to
/// report (exit 4 with the replay line); any other panic prints its message and location, and
/// never the hint about `RUST_BACKTRACE`.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_else(|| "an unknown location".to_string());
        if IN_MODEL.with(|m| m.get()) {
            PANIC_AT.with(|p| *p.borrow_mut() = Some(at));
        } else {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr().lock(),
                "internal error: {} at {at}",
                panic_message(info.payload())
            );
        }
    }));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Run `f` (a simulation); a panic in it — a failed model assertion — becomes
/// [`Failure::ModelPanic`] with its message and location instead of unwinding further.
pub fn catch_model_panic<T>(f: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    let was = IN_MODEL.with(|m| m.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_MODEL.with(|m| m.set(was));
    match r {
        Ok(r) => r,
        Err(payload) => {
            let at = PANIC_AT
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "an unknown location".to_string());
            Err(Failure::ModelPanic(format!(
                "{} (at {at})",
                panic_message(&*payload)
            )))
        }
    }
}

impl Failure {
    /// The command line's exit code for this failure: 2 (bad input or output path), 4 (a
    /// failed model assertion or invariant).
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::BadInput(_) | Failure::Io(_) => 2,
            Failure::ModelPanic(_) | Failure::Violation(_) => 4,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::BadInput(m) | Failure::Io(m) | Failure::Violation(m) => f.write_str(m),
            Failure::ModelPanic(m) => write!(f, "model assertion failed: {m}"),
        }
    }
}

impl std::error::Error for Failure {}

/// A workload that does not load is bad input (exit 2); the message names the file, line and
/// column.
impl From<workload::LoadError> for Failure {
    fn from(e: workload::LoadError) -> Failure {
        Failure::BadInput(e.to_string())
    }
}
