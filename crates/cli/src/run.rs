//! `proxysched run`: load the workload, boot the model, run it, write the outputs.

use std::cell::RefCell;
use std::fs;
use std::io::Write;
use std::rc::Rc;

use kernel::locking::Protocol;
use kernel::sched::features::FEATURES;
use kernel::system::Config;
use kernel::tracepoints::EventSink;
use report::metrics::Metrics;
use report::sink::{Fanout, SharedSink};
use workload::Workload;

use crate::{Failure, Format, RunArgs};

pub use harness::DEFAULT_LIMIT_S;
/// The workload to run and its display name.
pub fn load_workload(args: &RunArgs) -> Result<Workload, Failure> {
    match &args.workload {
        None => Ok(workload::load("demo.json", workload::DEMO)?),
        Some(path) => {
            let name = path.display().to_string();
            let text = fs::read_to_string(path)
                .map_err(|e| Failure::BadInput(format!("{name}: error: cannot read: {e}")))?;
            Ok(workload::load(&name, &text)?)
        }
    }
}

/// The workload file as messages name it: the path given, or `demo.json` for the built-in demo.
pub fn workload_file(args: &RunArgs) -> String {
    args.workload
        .as_ref()
        .map_or_else(|| "demo.json".to_string(), |p| p.display().to_string())
}

pub use harness::{
    highest_named_cpu, outcome_exit, simulate, simulate_with, with_replay, Choices, RunResult,
    EXIT_WORKLOAD_FAILED,
};

/// [`harness::resolve_cpus`] with the command line's flags.
pub fn resolve_cpus(w: &Workload, args: &RunArgs) -> Result<(usize, Option<String>), Failure> {
    harness::resolve_cpus(w, &args.flags())
}

/// [`harness::build_config`] with the command line's flags.
pub fn build_config(w: &Workload, args: &RunArgs) -> Result<(Config, String), Failure> {
    harness::build_config(w, &args.flags())
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

/// [`harness::default_protocol`] with the command line's flags.
pub fn default_protocol(w: &Workload, args: &RunArgs) -> Result<Protocol, Failure> {
    harness::default_protocol(w, &args.flags())
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
pub(crate) type TraceOut = SharedSink<report::TraceWriter<std::io::BufWriter<fs::File>>>;

pub(crate) fn open_trace(
    path: Option<&std::path::Path>,
    nr_cpus: usize,
) -> Result<Option<TraceOut>, Failure> {
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

pub(crate) fn trace_sink(t: &Option<TraceOut>) -> Option<Box<dyn EventSink>> {
    t.as_ref().map(|t| Box::new(t.clone()) as Box<dyn EventSink>)
}

pub(crate) fn finish_trace(t: Option<TraceOut>, path: Option<&std::path::Path>) -> Result<(), Failure> {
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
