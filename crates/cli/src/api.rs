//! The library API: load an rt-app workload, configure a run, run it, and read the metrics and
//! the tracepoint event stream, from other Rust code. It drives exactly what the command line
//! drives ([`crate::run`]), so a run here and `proxysched run` with the same settings give the
//! same metrics.
//!
//! ```
//! use cli::{Protocol, Simulation};
//!
//! // The built-in demo (a fair-class, then an RT priority inversion), under rt_mutex PI and
//! // under Proxy Execution.
//! let demo = Simulation::demo();
//! let pi = demo.clone().protocol(Protocol::Pi).run()?;
//! let proxy = demo.protocol(Protocol::Proxy).run()?;
//! let ui_wait = |r: &cli::SimulationRun| r.task("ui-1").unwrap().lock_wait_ns.max;
//! assert!(ui_wait(&proxy) * 10 < ui_wait(&pi), "PI does not help a fair waiter; proxy does");
//! assert_eq!(proxy.exit_code(), 0);
//! # Ok::<(), cli::Failure>(())
//! ```
//!
//! Every setting defaults to what the workload file says, then to the command line's default
//! (1 CPU, seed 0, default costs, protocol proxy, v29 features), exactly as for `proxysched run`.

use std::path::Path;

use kernel::locking::Protocol;
use kernel::system::Outcome;
use kernel::tracepoints::{Event, EventSink};
use report::metrics::{Metrics, TaskMetrics};
use report::sink::{Fanout, SharedSink};
use workload::Workload;

use crate::run::{build_config, outcome_exit, replay_line, resolve_cpus, simulate};
use crate::{Failure, Format, RunArgs};

/// A workload and the settings to run it with (the flags of `proxysched run`). Cheap to clone,
/// so one loaded workload can be run under several settings.
#[derive(Clone)]
pub struct Simulation {
    workload: Workload,
    args: RunArgs,
    record_events: bool,
}

impl Simulation {
    /// The built-in demo workload ([`workload::DEMO`]).
    pub fn demo() -> Simulation {
        Simulation::from_json("demo.json", workload::DEMO).expect("the built-in demo loads")
    }

    /// A workload from rt-app JSON text; `file` names it in messages (`file:line:column`).
    ///
    /// ```
    /// let bad = cli::Simulation::from_json("w.json", "{ \"tasks\": { \"t\": { \"run\": \"ten\" } } }");
    /// let err = bad.err().expect("a string is not a run time");
    /// assert_eq!(err.exit_code(), 2);
    /// assert!(err.to_string().starts_with("w.json:1:"), "{err}");
    /// ```
    pub fn from_json(file: &str, text: &str) -> Result<Simulation, Failure> {
        let workload = workload::load(file, text)?;
        Ok(Simulation::new(workload, None))
    }

    /// A workload from an rt-app JSON file.
    pub fn from_file(path: &Path) -> Result<Simulation, Failure> {
        let args = RunArgs {
            workload: Some(path.to_path_buf()),
            ..default_args()
        };
        let workload = crate::run::load_workload(&args)?;
        Ok(Simulation::new(workload, Some(path)))
    }

    fn new(workload: Workload, path: Option<&Path>) -> Simulation {
        Simulation {
            workload,
            args: RunArgs {
                workload: path.map(Path::to_path_buf),
                ..default_args()
            },
            record_events: false,
        }
    }

    /// The loaded workload: its threads, resources, settings and the loader's warnings.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// Number of CPUs (`--cpus`).
    pub fn cpus(mut self, n: usize) -> Self {
        self.args.cpus = Some(n);
        self
    }

    /// The default lock protocol (`--protocol`); a resource's own `"protocol"` still wins.
    pub fn protocol(mut self, p: Protocol) -> Self {
        self.args.protocol = Some(p.as_str().to_string());
        self
    }

    /// The oracle's seed (`--seed`).
    pub fn seed(mut self, seed: u64) -> Self {
        self.args.seed = Some(seed);
        self
    }

    /// At most this many simulated seconds (`--duration`).
    pub fn duration_s(mut self, s: f64) -> Self {
        self.args.duration = Some(s);
        self
    }

    /// A scheduler feature or Proxy Execution mechanism switch (`--feature NAME=on|off`).
    pub fn feature(mut self, name: &str, on: bool) -> Self {
        self.args
            .features
            .push(format!("{name}={}", if on { "on" } else { "off" }));
        self
    }

    /// The Proxy Execution stage `6.17`, `7.1` or `v29` (`--model`).
    pub fn model(mut self, model: &str) -> Self {
        self.args.model = Some(model.to_string());
        self
    }

    /// The cost model: `default`, `zero` or a cost file's path (`--costs`).
    pub fn costs(mut self, spec: &str) -> Self {
        self.args.costs = Some(spec.to_string());
        self
    }

    /// Check every invariant after every step (`--check`); a violation ends the run with
    /// `end_reason` `violation`.
    pub fn check_invariants(mut self, on: bool) -> Self {
        self.args.check = on;
        self
    }

    /// Keep every tracepoint record in [`SimulationRun::events`] (off by default: a long run
    /// has millions).
    ///
    /// ```
    /// use kernel::tracepoints::EventKind;
    ///
    /// let run = cli::Simulation::demo().record_events(true).run()?;
    /// // The metrics are computed from this very stream.
    /// let switches = run
    ///     .events
    ///     .iter()
    ///     .filter(|e| matches!(e.kind, EventKind::SchedSwitch { prev, next, .. } if prev.pid != next.pid))
    ///     .count();
    /// assert_eq!(switches as u64, run.metrics.counters.context_switches);
    /// assert_eq!(run.events.len() as u64, run.metrics.counters.events);
    /// # Ok::<(), cli::Failure>(())
    /// ```
    pub fn record_events(mut self, on: bool) -> Self {
        self.record_events = on;
        self
    }

    /// Runs the workload once and returns its metrics, outcome and (if recorded) events.
    /// Errors are bad settings (exit code 2); a deadlock, stall, violation or failed workload
    /// is a normal result (see [`SimulationRun::exit_code`]).
    pub fn run(&self) -> Result<SimulationRun, Failure> {
        self.run_with_sink(None)
    }

    /// [`Simulation::run`], also streaming every tracepoint record into `sink` as it is
    /// emitted. Wrap the sink in a [`SharedSink`] to get it back after the run:
    ///
    /// ```
    /// use kernel::tracepoints::{Event, EventKind, EventSink};
    /// use report::SharedSink;
    ///
    /// /// Counts proxy slices as they begin.
    /// #[derive(Default)]
    /// struct ProxySlices(u64);
    /// impl EventSink for ProxySlices {
    ///     fn event(&mut self, e: &Event) {
    ///         if matches!(e.kind, EventKind::ProxyBegin { .. }) {
    ///             self.0 += 1;
    ///         }
    ///     }
    /// }
    ///
    /// let slices = SharedSink::new(ProxySlices::default());
    /// let run = cli::Simulation::demo().run_with_sink(Some(Box::new(slices.clone())))?;
    /// let slices = slices.try_unwrap().ok().expect("the run is over").0;
    /// assert!(slices > 0);
    /// assert!(run.metrics.counters.proxy_picks > 0);
    /// # Ok::<(), cli::Failure>(())
    /// ```
    pub fn run_with_sink(&self, sink: Option<Box<dyn EventSink>>) -> Result<SimulationRun, Failure> {
        let (mut cfg, costs_name) = build_config(&self.workload, &self.args)?;
        cfg.check_invariants = self.args.check;
        let (_, note) = resolve_cpus(&self.workload, &self.args)?;
        let protocol = crate::run::default_protocol(&self.workload, &self.args)?;
        let recorder = self.record_events.then(|| SharedSink::new(Vec::<Event>::new()));
        let mut sinks: Vec<Box<dyn EventSink>> = Vec::new();
        sinks.extend(sink);
        if let Some(r) = &recorder {
            sinks.push(Box::new(r.clone()));
        }
        let extra: Option<Box<dyn EventSink>> = match sinks.len() {
            0 => None,
            _ => Some(Box::new(Fanout(sinks))),
        };
        let result = simulate(
            &self.workload,
            &cfg,
            &costs_name,
            protocol,
            None,
            extra,
            &mut |_| {},
        )?;
        let events = recorder
            .map(|r| r.try_unwrap().ok().expect("the run is over"))
            .unwrap_or_default();
        let replay = replay_line("run", &self.args, cfg.seed);
        Ok(SimulationRun {
            metrics: result.metrics,
            outcome: result.outcome,
            events,
            replay,
            notes: note.into_iter().collect(),
        })
    }
}

fn default_args() -> RunArgs {
    RunArgs {
        workload: None,
        cpus: None,
        protocol: None,
        model: None,
        features: Vec::new(),
        costs: None,
        seed: None,
        duration: None,
        trace: None,
        metrics: None,
        plot: None,
        plot_window: None,
        format: Format::Table,
        check: false,
    }
}

/// The result of one [`Simulation::run`].
pub struct SimulationRun {
    /// The `proxysched/metrics/v1` document (`to_json()` gives `--metrics`'s bytes).
    pub metrics: Metrics,
    /// How the run ended, with the deadlock/stall report and any violations.
    pub outcome: Outcome,
    /// Every tracepoint record in emission order, if [`Simulation::record_events`] was on.
    pub events: Vec<Event>,
    /// The `proxysched run ...` command line that reproduces this run.
    pub replay: String,
    /// What the table header notes (e.g. more CPUs than the default because the workload
    /// names them).
    pub notes: Vec<String>,
}

impl SimulationRun {
    /// The metrics of the task named `name` (rt-app's thread name, e.g. `ui-1`).
    pub fn task(&self, name: &str) -> Option<&TaskMetrics> {
        self.metrics.tasks.iter().find(|t| t.name == name)
    }

    /// The exit code `proxysched run` would give: 0, 3 (deadlock, stall), 4 (violation) or
    /// 5 (the workload failed as rt-app would).
    pub fn exit_code(&self) -> u8 {
        outcome_exit(&self.outcome, &self.replay).0
    }

    /// The table `proxysched run` prints.
    ///
    /// ```
    /// let run = cli::Simulation::demo().protocol(cli::Protocol::None).run()?;
    /// let table = run.table();
    /// assert!(table.starts_with("workload: demo  protocol: none  cpus: 1  seed: 0"));
    /// assert!(table.contains("nice -10") && table.contains("FIFO 30"));
    /// # Ok::<(), cli::Failure>(())
    /// ```
    pub fn table(&self) -> String {
        report::table::run_table(&self.metrics, &self.notes)
    }
}
