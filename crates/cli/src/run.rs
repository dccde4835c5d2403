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

/// The kernel configuration from the workload's settings, overridden by the flags.
pub fn build_config(w: &Workload, args: &RunArgs) -> Result<(Config, String), Failure> {
    let bad = |m: String| Failure::BadInput(m);
    let cpus = args.cpus.or(w.settings.cpus).unwrap_or(1);
    if cpus == 0 || cpus > sim::MAX_CPUS {
        return Err(bad(format!(
            "error: --cpus must be between 1 and {}, got {cpus}",
            sim::MAX_CPUS
        )));
    }
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
            .ok_or_else(|| bad(format!("error: --model expects 6.17, 7.1 or v29, got `{m}`")))?
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
/// A failed model assertion (a panic anywhere in the run) is [`Failure::ModelPanic`].
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
            workload::spec::ResourceKind::Mutex { protocol: p } => {
                let p = p
                    .as_deref()
                    .map(|p| Protocol::parse(p).expect("validated by the loader"));
                sys.add_mutex(&r.name, p.unwrap_or(protocol))
            }
            workload::spec::ResourceKind::Cond => sys.add_cond(&r.name),
        };
    }
    let nr = cfg.nr_cpus;
    add_workqueues(w, &mut sys, nr)?;
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
        w.finish()
            .map_err(|e| Failure::Io(format!("writing the trace: {e}")))?;
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
        // A non-empty report on a normal end is the workload's own failure message (rt-app
        // exiting on a refused sched_setattr).
        EndReason::Exited | EndReason::Duration => (0, Some(o.report.clone()).filter(|r| !r.is_empty())),
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

fn open_trace(path: Option<&std::path::Path>) -> Result<Option<Box<dyn Write>>, Failure> {
    match path {
        None => Ok(None),
        Some(p) => Ok(Some(Box::new(std::io::BufWriter::new(
            fs::File::create(p).map_err(|e| Failure::Io(format!("{}: {e}", p.display())))?,
        )))),
    }
}

/// Load the workload (printing its warnings) and build the run's configuration.
fn prepare(args: &RunArgs) -> Result<(Workload, kernel::system::Config, String), Failure> {
    let w = load_workload(args)?;
    for warn in &w.warnings {
        crate::write_stderr(&warn.render(&w.name));
    }
    let (mut cfg, costs_name) = build_config(&w, args)?;
    cfg.check_invariants = args.check;
    Ok((w, cfg, costs_name))
}

pub fn run_command(args: &RunArgs, tty: bool) -> Result<u8, Failure> {
    let (w, cfg, costs_name) = prepare(args)?;
    let protocol = default_protocol(&w, args)?;
    let trace = open_trace(args.trace.as_deref())?;
    let mut progress = progress_bar(tty, cfg.limit_ns);
    let replay = replay_line("run", args, cfg.seed);
    let r = simulate(&w, &cfg, &costs_name, protocol, trace, None, &mut *progress)
        .map_err(|e| with_replay(e, &replay))?;
    if let Some(p) = &args.metrics {
        fs::write(p, r.metrics.to_json()).map_err(|e| Failure::Io(format!("{}: {e}", p.display())))?;
    }
    match args.format {
        Format::Table => crate::write_stdout(&report::table::run_table(&r.metrics))?,
        Format::Json => crate::write_stdout(&format!("{}\n", r.metrics.to_json()))?,
    }
    let (code, msg) = outcome_exit(&r.outcome, &replay);
    if let Some(m) = msg {
        crate::write_stderr(&m);
    }
    Ok(code)
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
    let (w, cfg, costs_name) = prepare(args)?;
    let mut results = Vec::new();
    for p in COMPARED {
        let trace = open_trace(
            args.trace
                .as_deref()
                .map(|t| protocol_trace_path(t, p))
                .as_deref(),
        )?;
        let mut progress = progress_bar(tty, cfg.limit_ns);
        let mut a = args.clone();
        a.protocol = Some(p.as_str().to_string());
        let r = simulate(&w, &cfg, &costs_name, p, trace, None, &mut *progress)
            .map_err(|e| with_replay(e, &replay_line("run", &a, cfg.seed)))?;
        results.push((p, r));
    }
    let runs: Vec<(&str, &Metrics)> = results.iter().map(|(p, r)| (p.as_str(), &r.metrics)).collect();
    if let Some(path) = &args.metrics {
        fs::write(path, report::metrics::compare_json(&runs))
            .map_err(|e| Failure::Io(format!("{}: {e}", path.display())))?;
    }
    match args.format {
        Format::Table => crate::write_stdout(&report::table::compare_table(&runs))?,
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

/// `proxysched ablate`: the workload under protocol proxy (unless `--protocol` says
/// otherwise) with the v29 defaults, then with each Proxy Execution mechanism off in turn.
pub fn ablate_command(args: &RunArgs, tty: bool) -> Result<u8, Failure> {
    let (w, cfg, costs_name) = prepare(args)?;
    let protocol = default_protocol(&w, args)?;
    let mut code = 0;
    let mut one =
        |cfg: &kernel::system::Config, label: &str, off: Option<&str>| -> Result<RunResult, Failure> {
            let mut progress = progress_bar(tty, cfg.limit_ns);
            // The run with one mechanism off replays with that switch on the command line.
            let mut a = args.clone();
            if let Some(name) = off {
                a.features.push(format!("{name}=off"));
            }
            let replay = replay_line("run", &a, cfg.seed);
            let r = simulate(&w, cfg, &costs_name, protocol, None, None, &mut *progress)
                .map_err(|e| with_replay(e, &replay))?;
            let (c, msg) = outcome_exit(&r.outcome, &replay);
            if let Some(m) = msg {
                crate::write_stderr(&format!("[{label}] {m}"));
            }
            code = code.max(c);
            Ok(r)
        };
    let baseline = one(&cfg, "all on", None)?;
    let mut runs = Vec::new();
    for &name in kernel::sched::features::PROXY_MECHANISMS {
        let mut c = cfg.clone();
        c.feat.set(name, false).expect("a listed mechanism");
        runs.push((name, one(&c, name, Some(name))?));
    }
    let rows: Vec<(&str, &Metrics)> = runs.iter().map(|(n, r)| (*n, &r.metrics)).collect();
    crate::write_stdout(&report::table::ablation_table(&baseline.metrics, &rows))?;
    Ok(code)
}
