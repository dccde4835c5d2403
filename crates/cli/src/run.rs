//! `proxysched run`: load the workload, boot the model, run it, write the outputs.

use std::cell::RefCell;
use std::fs;
use std::io::Write;
use std::rc::Rc;

use kernel::locking::Protocol;
use kernel::sched::features::{Features, FEATURES};
use kernel::sched::Costs;
use kernel::system::{Config, EndReason, Outcome, System, TaskSpec};
use kernel::tracepoints::EventSink;
use report::metrics::{Metrics, MetricsCollector, RunInfo, ViolationRecord};
use report::sink::{Fanout, SharedSink};
use sim::user::SchedAttr;
use sim::CpuMask;
use workload::Workload;

use crate::{Failure, Format, RunArgs};

/// Default limit for a workload that sets no `global.duration` (rt-app would run until its
/// threads end, which for a `loop: -1` thread is forever).
pub const DEFAULT_LIMIT_S: f64 = 10.0;

/// The workload to run and its display name.
pub fn load_workload(args: &RunArgs) -> Result<Workload, Failure> {
    match &args.workload {
        None => workload::load("demo.json", workload::DEMO).map_err(|e| Failure::BadInput(e.to_string())),
        Some(path) => {
            let name = path.display().to_string();
            let text = fs::read_to_string(path)
                .map_err(|e| Failure::BadInput(format!("{name}: error: cannot read: {e}")))?;
            workload::load(&name, &text).map_err(|e| Failure::BadInput(e.to_string()))
        }
    }
}

/// The workload file as messages name it: the path given, or `demo.json` for the built-in demo.
pub fn workload_file(args: &RunArgs) -> String {
    args.workload
        .as_ref()
        .map_or_else(|| "demo.json".to_string(), |p| p.display().to_string())
}

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
pub fn resolve_cpus(w: &Workload, args: &RunArgs) -> Result<(usize, Option<String>), Failure> {
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
    let file = workload_file(args);
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
pub fn build_config(w: &Workload, args: &RunArgs) -> Result<(Config, String), Failure> {
    let bad = |m: String| Failure::BadInput(m);
    let (cpus, _) = resolve_cpus(w, args)?;
    let mut cfg = Config::new(cpus);
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
        kernel::sched::features::ModelVersion::parse(m)
            .ok_or_else(|| {
                bad(format!(
                    "error: --model expects 6.17, 7.1, v29 or next, got `{m}`"
                ))
            })?
            .apply(&mut feat);
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
            let text = fs::read_to_string(path)
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
    crate::catch_model_panic(|| simulate_unguarded(w, cfg, costs_name, protocol, trace, extra, progress))
}

/// A model assertion that failed in the run `replay` reproduces: exit 4 with the replay line,
/// as an invariant violation is reported.
fn with_replay(e: Failure, replay: &str) -> Failure {
    match e {
        Failure::ModelPanic(msg) => {
            Failure::Violation(format!("model assertion failed: {msg}\nreplay: {replay}"))
        }
        other => other,
    }
}

fn simulate_unguarded(
    w: &Workload,
    cfg: &Config,
    costs_name: &str,
    protocol: Protocol,
    trace: Option<Box<dyn Write>>,
    extra: Option<Box<dyn EventSink>>,
    progress: &mut dyn FnMut(u64),
) -> Result<RunResult, Failure> {
    let collector = SharedSink::new(MetricsCollector::new());
    let mut sinks: Vec<Box<dyn EventSink>> = vec![Box::new(collector.clone())];
    sinks.extend(extra);
    let ftrace = trace.map(|out| SharedSink::new(report::ftrace::FtraceWriter::new(out)));
    if let Some(f) = &ftrace {
        sinks.push(Box::new(f.clone()));
    }
    let mut sys = System::new(cfg.clone(), Box::new(Fanout(sinks)));
    for r in &w.resources {
        match &r.kind {
            workload::spec::ResourceKind::Mutex { protocol: p, io } => {
                let p = p
                    .as_deref()
                    .map(|p| Protocol::parse(p).expect("validated by the loader"));
                let id = sys.add_mutex(&r.name, p.unwrap_or(protocol));
                if *io {
                    sys.set_mutex_io(id);
                }
                id
            }
            workload::spec::ResourceKind::Cond => sys.add_cond(&r.name),
        };
    }
    let nr = cfg.nr_cpus;
    add_workqueues(w, &mut sys, nr)?;
    add_taskgroups(w, &mut sys);
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
    let outcome = sys.run(progress);
    drop(sys);
    if let Some(f) = ftrace {
        let w = f.try_unwrap().ok().expect("the trace writer is no longer shared");
        w.finish().map_err(|e| Failure::Io(e.to_string()))?;
    }
    let collector = collector
        .try_unwrap()
        .ok()
        .expect("the collector is no longer shared");
    let info = RunInfo {
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
    };
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
    })
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
    for name in &w.settings.inject {
        sys.arm_injection(name)
            .expect("the loader accepts only known injection points");
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
                        cpu,
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

/// The command line that reproduces this run.
pub fn replay_line(cmd: &str, args: &RunArgs, seed: u64) -> String {
    let mut s = format!("proxysched {cmd}");
    if let Some(w) = &args.workload {
        s += &format!(" {}", w.display());
    }
    if let Some(p) = &args.protocol {
        s += &format!(" --protocol {p}");
    }
    if let Some(m) = &args.model {
        s += &format!(" --model {m}");
    }
    if let Some(c) = args.cpus {
        s += &format!(" --cpus {c}");
    }
    for f in &args.features {
        s += &format!(" --feature {f}");
    }
    if let Some(c) = &args.costs {
        s += &format!(" --costs {c}");
    }
    s += &format!(" --seed {seed}");
    if let Some(d) = args.duration {
        s += &format!(" --duration {d}");
    }
    if args.check {
        s += " --check";
    }
    s
}

/// A progress bar on stderr for runs of more than a second of simulated time.
pub fn progress_bar(enabled: bool, limit_ns: u64) -> Box<dyn FnMut(u64)> {
    if !enabled || limit_ns < 1_000_000_000 {
        return Box::new(|_| {});
    }
    let bar = indicatif::ProgressBar::new(limit_ns / 1_000_000);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} simulated {pos}/{len} ms [{wide_bar}] {elapsed}")
            .expect("valid template"),
    );
    let bar = Rc::new(RefCell::new((bar, 0u64)));
    Box::new(move |now_ns| {
        let mut b = bar.borrow_mut();
        let ms = now_ns / 1_000_000;
        if ms != b.1 {
            b.1 = ms;
            b.0.set_position(ms);
        }
    })
}

/// The run's default lock protocol: `--protocol`, else the workload's (`proxysched.protocol`,
/// or pi for `pi_enabled`), else proxy (DESIGN.md).
pub fn default_protocol(w: &Workload, args: &RunArgs) -> Result<Protocol, Failure> {
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

/// The Gantt window when `--plot` is given (`--plot-window` alone is bad input).
fn plot_request(args: &RunArgs) -> Result<Option<(u64, u64)>, Failure> {
    let window = plot_window(args)?;
    match (&args.plot, &args.plot_window) {
        (Some(_), _) => Ok(Some(window)),
        (None, Some(_)) => Err(Failure::BadInput(
            "error: --plot-window chooses the window of --plot DIR's Gantt chart; give --plot too"
                .to_string(),
        )),
        (None, None) => Ok(None),
    }
}

/// The message for an output file that cannot be written: the path first, as for bad input.
pub fn output_error(path: &std::path::Path, what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::Io(format!("{}: error: cannot write {what}: {e}", path.display()))
}

/// A `--trace` writer: the format follows the file's extension (`.pftrace` Perfetto, `.dat`
/// trace.dat, else ftrace text). The kernel gets a clone as an extra sink; [`finish_trace`]
/// writes out the rest once the run is over.
type TraceOut = SharedSink<report::TraceWriter<std::io::BufWriter<fs::File>>>;

fn open_trace(path: Option<&std::path::Path>, nr_cpus: usize) -> Result<Option<TraceOut>, Failure> {
    match path {
        None => Ok(None),
        Some(p) => {
            let file = fs::File::create(p).map_err(|e| output_error(p, "the trace", e))?;
            let format = report::TraceFormat::from_path(p);
            Ok(Some(SharedSink::new(report::TraceWriter::new(
                format,
                std::io::BufWriter::new(file),
                nr_cpus,
            ))))
        }
    }
}

fn trace_sink(t: &Option<TraceOut>) -> Option<Box<dyn EventSink>> {
    t.as_ref().map(|t| Box::new(t.clone()) as Box<dyn EventSink>)
}

fn finish_trace(t: Option<TraceOut>, path: Option<&std::path::Path>) -> Result<(), Failure> {
    if let (Some(t), Some(p)) = (t, path) {
        let w = t.try_unwrap().ok().expect("the trace writer is no longer shared");
        w.finish().map_err(|e| output_error(p, "the trace", e))?;
    }
    Ok(())
}

/// Runs `sim` and names `trace` in a failure to write the trace.
fn with_trace_path<T>(trace: Option<&std::path::Path>, r: Result<T, Failure>) -> Result<T, Failure> {
    match (r, trace) {
        (Err(Failure::Io(m)), Some(p)) => Err(output_error(p, "the trace", m)),
        (r, _) => r,
    }
}

/// An output file the run writes at its end, created before the run so that a path that
/// cannot be written fails at once instead of after the simulation.
struct OutputFile {
    path: std::path::PathBuf,
    file: fs::File,
}

impl OutputFile {
    fn create(path: &std::path::Path, what: &str) -> Result<Self, Failure> {
        let file = fs::File::create(path).map_err(|e| output_error(path, what, e))?;
        Ok(OutputFile {
            path: path.to_path_buf(),
            file,
        })
    }

    fn write(mut self, what: &str, text: &str) -> Result<(), Failure> {
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| output_error(&self.path, what, e))
    }
}

fn metrics_file(args: &RunArgs) -> Result<Option<OutputFile>, Failure> {
    args.metrics
        .as_deref()
        .map(|p| OutputFile::create(p, "the metrics"))
        .transpose()
}

/// A run's workload, configuration and the notes for the table header.
struct Prepared {
    w: Workload,
    cfg: Config,
    costs_name: String,
    notes: Vec<String>,
}

/// Load the workload (printing its warnings) and build the run's configuration.
fn prepare(args: &RunArgs) -> Result<Prepared, Failure> {
    let w = load_workload(args)?;
    for warn in &w.warnings {
        crate::write_stderr(&warn.render(&w.name));
    }
    let (mut cfg, costs_name) = build_config(&w, args)?;
    cfg.check_invariants = args.check;
    let (_, note) = resolve_cpus(&w, args)?;
    Ok(Prepared {
        w,
        cfg,
        costs_name,
        notes: note.into_iter().collect(),
    })
}

pub fn run_command(args: &RunArgs, tty: bool) -> Result<u8, Failure> {
    let Prepared {
        w,
        cfg,
        costs_name,
        notes,
    } = prepare(args)?;
    let protocol = default_protocol(&w, args)?;
    let window = plot_request(args)?;
    let metrics_out = metrics_file(args)?;
    let trace = open_trace(args.trace.as_deref(), cfg.nr_cpus)?;
    let mut progress = progress_bar(tty, cfg.limit_ns);
    let replay = replay_line("run", args, cfg.seed);
    let (r, series) = with_trace_path(
        args.trace.as_deref(),
        simulate_plotted(
            &w,
            &cfg,
            &costs_name,
            protocol,
            trace_sink(&trace),
            window,
            &mut *progress,
        ),
    )
    .map_err(|e| with_replay(e, &replay))?;
    finish_trace(trace, args.trace.as_deref())?;
    if let Some(f) = metrics_out {
        f.write("the metrics", &r.metrics.to_json())?;
    }
    if let (Some(dir), Some(series)) = (&args.plot, &series) {
        write_plots(dir, &w.name, &[(protocol.as_str(), series)])?;
    }
    match args.format {
        Format::Table => crate::write_stdout(&report::table::run_table(&r.metrics, &notes))?,
        Format::Json => crate::write_stdout(&format!("{}\n", r.metrics.to_json()))?,
    }
    let (code, msg) = outcome_exit(&r.outcome, &replay);
    if let Some(m) = msg {
        crate::write_stderr(&m);
    }
    Ok(code)
}

/// The Gantt window of `--plot-window FROM..TO` (simulated ms), in ns; the whole run without it.
pub fn plot_window(args: &RunArgs) -> Result<(u64, u64), Failure> {
    let Some(spec) = &args.plot_window else {
        return Ok((0, u64::MAX));
    };
    let bad = || {
        Failure::BadInput(format!(
            "error: --plot-window expects FROM..TO in simulated milliseconds with FROM < TO, got `{spec}`"
        ))
    };
    let (a, b) = spec.split_once("..").ok_or_else(bad)?;
    let ms = |t: &str| -> Result<u64, Failure> {
        let v: f64 = t.trim().parse().map_err(|_| bad())?;
        if !(0.0..1.0e9).contains(&v) {
            return Err(bad());
        }
        Ok((v * 1e6).round() as u64)
    };
    let (from, to) = (ms(a)?, ms(b)?);
    if from >= to {
        return Err(bad());
    }
    Ok((from, to))
}

/// A file name part from a task or run name: letters, digits, `.`, `_` and `-` kept, anything
/// else `_`.
fn file_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes the plots of `--plot DIR` for `runs` (label, series) and returns the files written:
/// `wakeup.TASK.svg` and `lock_wait.TASK.svg` per task with samples in any run (one curve
/// per run), and `gantt.svg` (one run) or `gantt.LABEL.svg` per run.
pub fn write_plots(
    dir: &std::path::Path,
    workload: &str,
    runs: &[(&str, &report::plot::RunSeries)],
) -> Result<Vec<std::path::PathBuf>, Failure> {
    use report::plot::{gantt_svg, latency_cdf_svg};
    fs::create_dir_all(dir).map_err(|e| output_error(dir, "plots into", e))?;
    let mut written = Vec::new();
    let mut put = |name: String, svg: String| -> Result<(), Failure> {
        let path = dir.join(name);
        fs::write(&path, svg).map_err(|e| output_error(&path, "a plot", e))?;
        written.push(path);
        Ok(())
    };
    // Tasks by (pid, name), in pid order over all runs.
    let mut tasks: Vec<(u32, &str)> = Vec::new();
    for (_, r) in runs {
        for t in &r.samples {
            if !tasks.contains(&(t.pid, t.name.as_str())) {
                tasks.push((t.pid, t.name.as_str()));
            }
        }
    }
    tasks.sort_unstable();
    for &(pid, name) in &tasks {
        type Pick = fn(&report::metrics::TaskSamples) -> &[u64];
        let kinds: [(&str, &str, Pick); 2] = [
            ("wakeup", "wakeup latency", |t| &t.wakeup_latency_ns),
            ("lock_wait", "lock wait", |t| &t.lock_wait_ns),
        ];
        for (file, what, pick) in kinds {
            let curves: Vec<(&str, &[u64])> = runs
                .iter()
                .map(|(label, r)| {
                    let s = r
                        .samples
                        .iter()
                        .find(|t| t.pid == pid && t.name == name)
                        .map_or(&[][..], pick);
                    (*label, s)
                })
                .collect();
            if curves.iter().any(|(_, s)| !s.is_empty()) {
                put(
                    format!("{file}.{}.svg", file_part(name)),
                    latency_cdf_svg(name, what, &curves),
                )?;
            }
        }
    }
    for (label, r) in runs {
        let (from, to) = r.window_ns;
        let title = format!(
            "{workload} under {label}: per-CPU schedule, {} to {} ms",
            report::table::Unit::Ms.format(from),
            report::table::Unit::Ms.format(to)
        );
        let name = if runs.len() == 1 {
            "gantt.svg".to_string()
        } else {
            format!("gantt.{}.svg", file_part(label))
        };
        put(name, gantt_svg(&title, r))?;
    }
    Ok(written)
}

/// [`simulate`], plus the plot series when `window` is given (`--plot`).
#[allow(clippy::too_many_arguments)]
pub fn simulate_plotted(
    w: &Workload,
    cfg: &Config,
    costs_name: &str,
    protocol: Protocol,
    trace: Option<Box<dyn EventSink>>,
    window: Option<(u64, u64)>,
    progress: &mut dyn FnMut(u64),
) -> Result<(RunResult, Option<report::plot::RunSeries>), Failure> {
    let Some((from, to)) = window else {
        return Ok((
            simulate(w, cfg, costs_name, protocol, None, trace, progress)?,
            None,
        ));
    };
    let plot = SharedSink::new(report::plot::PlotCollector::new(from, to));
    let mut sinks: Vec<Box<dyn EventSink>> = vec![Box::new(plot.clone())];
    sinks.extend(trace);
    let r = simulate(
        w,
        cfg,
        costs_name,
        protocol,
        None,
        Some(Box::new(Fanout(sinks))),
        progress,
    )?;
    let series = plot
        .try_unwrap()
        .ok()
        .expect("the plot collector is no longer shared")
        .finish(r.metrics.sim_time_ns);
    Ok((r, Some(series)))
}

/// `proxysched features`.
pub fn features_listing() -> String {
    let mut s = String::from(
        "feature                  default  linux                                  what it does\n",
    );
    for f in FEATURES {
        s += &format!(
            "{:<24} {:<8} {:<38} {}\n",
            f.name,
            if f.default { "on" } else { "off" },
            f.linux,
            f.doc
        );
    }
    let t = kernel::sched::features::Tunables::default();
    s += &format!(
        "\ntunables: hz={} base_slice_normalized_ns={} migration_cost_ns={} nr_migrate={} rr_timeslice_ms={}\n",
        t.hz, t.base_slice_normalized_ns, t.migration_cost_ns, t.nr_migrate, t.rr_timeslice_ms
    );
    s
}

/// The protocols `compare` runs, in table order.
pub const COMPARED: [Protocol; 3] = [Protocol::None, Protocol::Pi, Protocol::Proxy];

/// `--trace out.txt` under `compare` writes `out.none.txt`, `out.pi.txt`, `out.proxy.txt`.
pub fn protocol_trace_path(path: &std::path::Path, p: Protocol) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{}.{}", p.as_str(), ext.to_string_lossy()),
        None => format!("{stem}.{}", p.as_str()),
    };
    path.with_file_name(name)
}

/// `proxysched compare`: the same workload, flags and seed under none, pi and proxy.
pub fn compare_command(args: &RunArgs, tty: bool) -> Result<u8, Failure> {
    if let Some(p) = &args.protocol {
        return Err(Failure::BadInput(format!(
            "error: compare runs every protocol (none, pi, proxy); --protocol {p} is for run and ablate"
        )));
    }
    let Prepared {
        w,
        cfg,
        costs_name,
        notes,
    } = prepare(args)?;
    let window = plot_request(args)?;
    let metrics_out = metrics_file(args)?;
    let mut results = Vec::new();
    let mut plots = Vec::new();
    for p in COMPARED {
        let path = args.trace.as_deref().map(|t| protocol_trace_path(t, p));
        let trace = open_trace(path.as_deref(), cfg.nr_cpus)?;
        let mut progress = progress_bar(tty, cfg.limit_ns);
        let mut a = args.clone();
        a.protocol = Some(p.as_str().to_string());
        let (r, series) = with_trace_path(
            path.as_deref(),
            simulate_plotted(
                &w,
                &cfg,
                &costs_name,
                p,
                trace_sink(&trace),
                window,
                &mut *progress,
            ),
        )
        .map_err(|e| with_replay(e, &replay_line("run", &a, cfg.seed)))?;
        finish_trace(trace, path.as_deref())?;
        results.push((p, r));
        plots.extend(series.map(|s| (p.as_str(), s)));
    }
    let runs: Vec<(&str, &Metrics)> = results.iter().map(|(p, r)| (p.as_str(), &r.metrics)).collect();
    if let Some(f) = metrics_out {
        f.write("the metrics", &report::metrics::compare_json(&runs))?;
    }
    if let Some(dir) = &args.plot {
        let series: Vec<_> = plots.iter().map(|(l, s)| (*l, s)).collect();
        write_plots(dir, &w.name, &series)?;
    }
    match args.format {
        Format::Table => crate::write_stdout(&report::table::compare_table(&runs, &notes))?,
        Format::Json => crate::write_stdout(&format!("{}\n", report::metrics::compare_json(&runs)))?,
    }
    // The worst outcome decides the exit code.
    let mut code = 0;
    for (p, r) in &results {
        let mut a = args.clone();
        a.protocol = Some(p.as_str().to_string());
        let (c, msg) = outcome_exit(&r.outcome, &replay_line("run", &a, cfg.seed));
        if let Some(m) = msg {
            crate::write_stderr(&format!("[{}] {m}", p.as_str()));
        }
        code = code.max(c);
    }
    Ok(code)
}

/// The key of the all-mechanisms-on run in `ablate`'s JSON (`--format json`, `--metrics`);
/// the other keys are the names of the mechanisms switched off.
pub const ABLATE_BASELINE: &str = "baseline";

/// `proxysched ablate`: the workload under protocol proxy (unless `--protocol` says
/// otherwise) with the chosen `--model` (default v29), then with each of its Proxy Execution
/// mechanisms that is on switched off in turn.
pub fn ablate_command(args: &RunArgs, tty: bool) -> Result<u8, Failure> {
    if let Some(t) = &args.trace {
        return Err(Failure::BadInput(format!(
            "error: ablate runs the workload {} times; --trace {} is for run and compare",
            kernel::sched::features::ablation_mechanisms(&Default::default()).len() + 1,
            t.display()
        )));
    }
    let Prepared {
        w,
        cfg,
        costs_name,
        notes,
    } = prepare(args)?;
    let protocol = default_protocol(&w, args)?;
    let window = plot_request(args)?;
    let metrics_out = metrics_file(args)?;
    let mut code = 0;
    let mut plots = Vec::new();
    let mut one = |cfg: &kernel::system::Config,
                   label: &'static str,
                   off: Option<&str>|
     -> Result<RunResult, Failure> {
        let mut progress = progress_bar(tty, cfg.limit_ns);
        // The run with one mechanism off replays with that switch on the command line.
        let mut a = args.clone();
        if let Some(name) = off {
            a.features.push(format!("{name}=off"));
        }
        let replay = replay_line("run", &a, cfg.seed);
        let (r, series) = simulate_plotted(&w, cfg, &costs_name, protocol, None, window, &mut *progress)
            .map_err(|e| with_replay(e, &replay))?;
        plots.extend(series.map(|s| (label, s)));
        let (c, msg) = outcome_exit(&r.outcome, &replay);
        if let Some(m) = msg {
            crate::write_stderr(&format!("[{label}] {m}"));
        }
        code = code.max(c);
        Ok(r)
    };
    let baseline = one(&cfg, ABLATE_BASELINE, None)?;
    let mut runs = Vec::new();
    for name in kernel::sched::features::ablation_mechanisms(&cfg.feat) {
        let mut c = cfg.clone();
        c.feat.set(name, false).expect("a listed mechanism");
        runs.push((name, one(&c, name, Some(name))?));
    }
    let rows: Vec<(&str, &Metrics)> = runs.iter().map(|(n, r)| (*n, &r.metrics)).collect();
    let all: Vec<(&str, &Metrics)> = std::iter::once((ABLATE_BASELINE, &baseline.metrics))
        .chain(rows.iter().copied())
        .collect();
    if let Some(f) = metrics_out {
        f.write("the metrics", &report::metrics::compare_json(&all))?;
    }
    if let Some(dir) = &args.plot {
        let series: Vec<_> = plots.iter().map(|(l, s)| (*l, s)).collect();
        write_plots(dir, &w.name, &series)?;
        let title = format!("{}: each Proxy Execution mechanism off in turn", w.name);
        let path = dir.join("ablation.svg");
        fs::write(&path, report::plot::ablation_svg(&title, &all))
            .map_err(|e| output_error(&path, "a plot", e))?;
    }
    match args.format {
        Format::Table => {
            crate::write_stdout(&report::table::ablation_table(&baseline.metrics, &rows, &notes))?
        }
        Format::Json => crate::write_stdout(&format!("{}\n", report::metrics::compare_json(&all)))?,
    }
    Ok(code)
}
