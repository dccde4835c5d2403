//! Shared helpers for scenario tests: load a scenario file, run it in-process with the
//! invariants checked after every step, and keep every event for assertions.

#![allow(dead_code)]

pub mod bin;

use std::path::PathBuf;

use cli::run::{build_config, simulate, RunResult};
use cli::{Format, RunArgs};
use kernel::tracepoints::{Event, EventKind, Pid};
use report::sink::SharedSink;

pub struct Scenario {
    pub result: RunResult,
    pub events: Vec<Event>,
}

pub fn scenario_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(name)
}

/// Every `scenarios/*.json` as (file name, text), sorted by name.
pub fn all_scenarios() -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenario_path(""))
        .expect("scenarios/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Scenario arguments. The protocol defaults to `none`: the scheduler-core scenarios take no
/// lock that inheritance would change, and the protocol scenarios set it explicitly.
pub fn args(name: &str) -> RunArgs {
    RunArgs {
        workload: Some(scenario_path(name)),
        cpus: None,
        protocol: Some("none".to_string()),
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
        check: true,
    }
}

/// Run a scenario with the given argument tweaks; invariants are checked after every step
/// and any violation fails the test.
pub fn run_with(name: &str, tweak: impl FnOnce(&mut RunArgs)) -> Scenario {
    let mut a = args(name);
    tweak(&mut a);
    let w = cli::run::load_workload(&a).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert!(
        w.warnings.is_empty(),
        "{name}: unexpected warnings: {:?}",
        w.warnings
    );
    let (mut cfg, costs) = build_config(&w, &a).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    cfg.check_invariants = a.check;
    let events = SharedSink::new(Vec::<Event>::new());
    let result = simulate(
        &w,
        &cfg,
        &costs,
        cli::run::default_protocol(&w, &a).unwrap_or_else(|e| panic!("{name}: {e:?}")),
        None,
        Some(Box::new(events.clone())),
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert!(
        result.outcome.violations.is_empty(),
        "{name}: invariant violations: {:#?}",
        result.outcome.violations
    );
    let events = events.try_unwrap().ok().expect("sink released");
    Scenario { result, events }
}

pub fn run(name: &str) -> Scenario {
    run_with(name, |_| {})
}

/// Run a scenario under Proxy Execution with the given `NAME=on|off` feature switches.
pub fn run_proxy(name: &str, features: &[&str]) -> Scenario {
    run_with(name, |a| {
        a.protocol = Some("proxy".into());
        a.features = features.iter().map(|f| f.to_string()).collect();
    })
}

/// (time, owner pid, donor pid) of every proxy slice that begins.
pub fn proxy_begins(s: &Scenario) -> Vec<(u64, u32, u32)> {
    s.events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ProxyBegin { donor, owner } => Some((e.time_ns, owner.pid, donor.pid)),
            _ => None,
        })
        .collect()
}

/// (begin, end) of each stretch `owner` ran on `donor`'s scheduling context.
pub fn proxy_slices(s: &Scenario, owner: Pid, donor: Pid) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut open = None;
    for e in &s.events {
        match e.kind {
            EventKind::ProxyBegin { donor: d, owner: o } if d.pid == donor && o.pid == owner => {
                open = Some(e.time_ns)
            }
            EventKind::ProxyEnd { donor: d, owner: o } if d.pid == donor && o.pid == owner => {
                out.push((open.take().expect("end without begin"), e.time_ns))
            }
            _ => {}
        }
    }
    assert!(open.is_none(), "unterminated proxy slice");
    out
}

/// (time, moved link pid, from, to, tasks moved) of every donor-migration operation.
pub fn proxy_migrations(s: &Scenario) -> Vec<(u64, u32, u32, u32, u32)> {
    s.events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ProxyMigrate {
                task,
                orig_cpu,
                dest_cpu,
                nr_tasks,
            } => Some((e.time_ns, task.pid, orig_cpu.0, dest_cpu.0, nr_tasks)),
            _ => None,
        })
        .collect()
}

/// (time, pid, orig_cpu) of every return migration, of any task.
pub fn return_migrations(s: &Scenario) -> Vec<(u64, u32, u32)> {
    s.events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ReturnMigrate { task, orig_cpu } => Some((e.time_ns, task.pid, orig_cpu.0)),
            _ => None,
        })
        .collect()
}

/// (time, cpu, orig_cpu) of every return migration of `pid`.
pub fn return_migrations_of(s: &Scenario, pid: Pid) -> Vec<(u64, u32, u32)> {
    s.events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::ReturnMigrate { task, orig_cpu } if task.pid == pid => {
                Some((e.time_ns, e.cpu.0, orig_cpu.0))
            }
            _ => None,
        })
        .collect()
}

/// (time, cpu) of every switch-in of `pid` after boot (the t = 0 switch-ins are the initial
/// placement, not a scheduling decision under test).
pub fn switch_ins_after_start(s: &Scenario, pid: Pid) -> Vec<(u64, u32)> {
    s.switch_ins(pid).into_iter().filter(|&(t, _)| t > 0).collect()
}

impl Scenario {
    /// The pid of the thread called `name` (rt-app name, e.g. `high-1`).
    pub fn pid(&self, name: &str) -> Pid {
        self.result
            .metrics
            .tasks
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no task {name}; tasks: {:?}",
                    self.result
                        .metrics
                        .tasks
                        .iter()
                        .map(|t| &t.name)
                        .collect::<Vec<_>>()
                )
            })
            .pid
    }

    /// (time, cpu) of every switch-in of `pid`.
    pub fn switch_ins(&self, pid: Pid) -> Vec<(u64, u32)> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::SchedSwitch { prev, next, .. } if next.pid == pid && prev.pid != pid => {
                    Some((e.time_ns, e.cpu.0))
                }
                _ => None,
            })
            .collect()
    }

    /// (time, cpu, next pid) of every switch-out of `pid`.
    pub fn switch_outs(&self, pid: Pid) -> Vec<(u64, u32, Pid)> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::SchedSwitch { prev, next, .. } if prev.pid == pid && next.pid != pid => {
                    Some((e.time_ns, e.cpu.0, next.pid))
                }
                _ => None,
            })
            .collect()
    }

    pub fn exit_ns(&self, pid: Pid) -> u64 {
        self.result
            .metrics
            .task(pid)
            .and_then(|t| t.exit_ns)
            .unwrap_or_else(|| panic!("pid {pid} did not exit"))
    }

    /// Time of `pid`'s last `rtapp_loop: event=end` marker: when its work was done (rt-app
    /// then switches the thread back to SCHED_OTHER before it exits).
    pub fn work_done_ns(&self, pid: Pid) -> u64 {
        self.events
            .iter()
            .rev()
            .find_map(|e| match e.kind {
                EventKind::UserMark { pid: p, mark }
                    if p == pid
                        && matches!(workload::Mark::parse(mark), Some(workload::Mark::LoopEnd { .. })) =>
                {
                    Some(e.time_ns)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("pid {pid} ended no loop"))
    }

    pub fn runtime_ns(&self, pid: Pid) -> u64 {
        self.result.metrics.task(pid).unwrap().runtime_ns
    }

    /// Times `pid` was woken (sched_waking).
    pub fn wakings(&self, pid: Pid) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::SchedWaking { task, .. } if task.pid == pid => Some(e.time_ns),
                _ => None,
            })
            .collect()
    }
}
