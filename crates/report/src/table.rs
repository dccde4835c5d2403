//! Human-readable tables for `--format table`: one run ([`run_table`]) and several protocols
//! side by side ([`compare_table`]).
//!
//! Formatting is deterministic: integer arithmetic only, column widths from the cells
//! themselves, columns separated by two spaces, no trailing spaces. Every time column has one
//! unit ([`Unit`]), chosen from its largest value and named in its header; [`LEGEND`] says
//! what the columns mean.

use std::fmt::Write as _;

use crate::metrics::{Hist, Metrics, TaskMetrics};

/// A duration in human units with three decimals, truncated (never rounded up into the next
/// unit): `999 ns`, `1.000 µs`, `12.345 ms`, `3.000 s`.
pub fn format_ns(ns: u64) -> String {
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    match ns {
        0..US => format!("{ns} ns"),
        US..MS => format!("{}.{:03} µs", ns / US, ns % US),
        MS..S => format!("{}.{:03} ms", ns / MS, ns % MS / US),
        _ => format!("{}.{:03} s", ns / S, ns % S / MS),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Lays out `rows` under `header`; widths count chars (so `µ` is one column).
fn render(out: &mut String, header: &[&str], align: &[Align], rows: &[Vec<String>]) {
    assert_eq!(header.len(), align.len());
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        assert_eq!(row.len(), header.len(), "row width");
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            match align[i] {
                Align::Left => {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// The unit of one table column: the largest of ns, µs, ms and s that the column's largest
/// value reaches, so every cell of a column is in one unit, named in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Ns,
    Us,
    Ms,
    S,
}

impl Unit {
    /// The unit for a column whose largest value is `max_ns`.
    pub fn for_max(max_ns: u64) -> Unit {
        match max_ns {
            0..1_000 => Unit::Ns,
            1_000..1_000_000 => Unit::Us,
            1_000_000..1_000_000_000 => Unit::Ms,
            _ => Unit::S,
        }
    }

    /// The unit for a column of `values`: [`Unit::for_max`] of the largest, stepped down while
    /// a non-zero value would print as `0.000` and the largest still fits in six integer digits
    /// of the smaller unit (540 ns next to 16 ms reads `0.540` and `16030.000` µs).
    pub fn for_values(values: &[u64]) -> Unit {
        let max = values.iter().copied().max().unwrap_or(0);
        let min_nonzero = values.iter().copied().filter(|&v| v > 0).min().unwrap_or(0);
        let mut unit = Unit::for_max(max);
        while let Some(smaller) = unit.smaller() {
            let hides_a_value = min_nonzero > 0 && min_nonzero < unit.ns() / 1_000;
            if !hides_a_value || max / smaller.ns() >= 1_000_000 {
                break;
            }
            unit = smaller;
        }
        unit
    }

    fn smaller(self) -> Option<Unit> {
        match self {
            Unit::Ns => None,
            Unit::Us => Some(Unit::Ns),
            Unit::Ms => Some(Unit::Us),
            Unit::S => Some(Unit::Ms),
        }
    }

    /// The unit's symbol as it appears in headers: `ns`, `µs`, `ms`, `s`.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "µs",
            Unit::Ms => "ms",
            Unit::S => "s",
        }
    }

    fn ns(self) -> u64 {
        match self {
            Unit::Ns => 1,
            Unit::Us => 1_000,
            Unit::Ms => 1_000_000,
            Unit::S => 1_000_000_000,
        }
    }

    /// `ns` in this unit without the symbol: an integer for ns, else three decimals,
    /// truncated like [`format_ns`].
    pub fn format(self, ns: u64) -> String {
        if self == Unit::Ns {
            return ns.to_string();
        }
        let per = self.ns();
        format!("{}.{:03}", ns / per, ns % per / (per / 1_000))
    }
}

/// What the table columns mean; printed by `--help` of the commands that run a workload and
/// kept in the README.
pub const LEGEND: &str = "\
Table columns (every time column is in the one unit its header names):
  SCHED      policy and priority as the workload wrote them: `FIFO 10`, `RR 5`, `nice -10`,
             `BATCH nice 0`, `IDLE`, `DL 3/10/10 ms` (runtime/deadline/period)
  DONE       when the task's rt-app work ended (its last loop end), `-` if it never did;
             rt-app resets the thread to SCHED_OTHER after this, so the exit is not shown
  RUNTIME    time it executed as the running task
  WAKE       wakeup latency: sched_waking to running, p50/p99/max
  LOCK       lock wait: from finding a mutex taken (optimistic spinning included) to
             holding it, p50/p99/max
  DONATED    time other tasks ran on its scheduling context (Proxy Execution)
  LOOPS      rt-app loops completed
  `-`        no sample (no wakeup, no contended lock)";

/// A column of times: the header with the unit appended, and the cells in that unit (`-` for
/// `None`).
fn time_column(name: &str, cells: &[Option<u64>]) -> (String, Vec<String>) {
    let values: Vec<u64> = cells.iter().flatten().copied().collect();
    let unit = Unit::for_values(&values);
    // A column without a single value has no unit to name.
    let header = if values.is_empty() {
        name.to_string()
    } else {
        format!("{name} ({})", unit.symbol())
    };
    let cells = cells
        .iter()
        .map(|c| c.map_or_else(|| "-".to_string(), |ns| unit.format(ns)))
        .collect();
    (header, cells)
}

/// A table built column by column, then laid out by [`render`].
struct Columns {
    header: Vec<String>,
    align: Vec<Align>,
    cols: Vec<Vec<String>>,
}

impl Columns {
    fn new() -> Self {
        Columns {
            header: Vec::new(),
            align: Vec::new(),
            cols: Vec::new(),
        }
    }

    fn text(&mut self, name: &str, align: Align, cells: Vec<String>) {
        self.header.push(name.to_string());
        self.align.push(align);
        self.cols.push(cells);
    }

    fn times(&mut self, name: &str, cells: &[Option<u64>]) {
        let (h, c) = time_column(name, cells);
        self.header.push(h);
        self.align.push(Align::Right);
        self.cols.push(c);
    }

    fn render(&self, out: &mut String) {
        let nrows = self.cols.first().map_or(0, Vec::len);
        assert!(self.cols.iter().all(|c| c.len() == nrows), "ragged columns");
        let rows: Vec<Vec<String>> = (0..nrows)
            .map(|r| self.cols.iter().map(|c| c[r].clone()).collect())
            .collect();
        let header: Vec<&str> = self.header.iter().map(String::as_str).collect();
        render(out, &header, &self.align, &rows);
    }
}

/// `Some(v)` for a non-empty distribution's `v`.
fn hist_pick(h: &Hist, f: fn(&Hist) -> u64) -> Option<u64> {
    (h.count > 0).then(|| f(h))
}

/// Picks one figure of a distribution.
type HistField = fn(&Hist) -> u64;

const HIST_FIELDS: [(&str, HistField); 3] = [("p50", |h| h.p50), ("p99", |h| h.p99), ("max", |h| h.max)];

/// A DL parameter list in one unit, shortest exact decimals: `3/10/10 ms`, `0.5/2/2 ms`.
fn dl_label(p: [u64; 3]) -> String {
    let unit = Unit::for_max(p.iter().copied().max().unwrap_or(0));
    let one = |ns: u64| {
        let s = unit.format(ns);
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    format!("DL {}/{}/{} {}", one(p[0]), one(p[1]), one(p[2]), unit.symbol())
}

/// The policy and priority as the workload wrote them (rt-app's `policy` and `priority`):
/// `FIFO 10` (rt priority, not the kernel's prio 89), `nice -10`, `DL 3/10/10 ms`.
pub fn sched_label(t: &TaskMetrics) -> String {
    let rt = 99 - t.prio;
    match t.policy.as_str() {
        "SCHED_FIFO" => format!("FIFO {rt}"),
        "SCHED_RR" => format!("RR {rt}"),
        "SCHED_OTHER" => format!("nice {}", t.nice),
        "SCHED_BATCH" => format!("BATCH nice {}", t.nice),
        "SCHED_IDLE" => "IDLE".to_string(),
        "SCHED_DEADLINE" => t.dl_params_ns.map_or_else(|| "DL".to_string(), dl_label),
        other => other.to_string(),
    }
}

fn counters_line(m: &Metrics) -> String {
    let c = &m.counters;
    format!(
        "counters: context_switches={} migrations={} proxy_picks={} proxy_migrations={} \
         return_migrations={} ipis={} events={}",
        c.context_switches,
        c.migrations,
        c.proxy_picks,
        c.proxy_migrations,
        c.return_migrations,
        c.ipis,
        c.events
    )
}

fn end_cell(m: &Metrics) -> String {
    format!("{} at {}", m.end_reason, format_ns(m.sim_time_ns))
}

/// The first line of every table: what ran, and how. `protocols` is the run's protocol or the
/// list a comparison ran; each note follows on its own `note:` line.
fn header_lines(out: &mut String, m: &Metrics, protocols: &str, notes: &[String]) {
    let c = &m.config;
    writeln!(
        out,
        "workload: {}  protocol: {}  cpus: {}  seed: {}  costs: {}",
        m.workload, protocols, c.cpus, c.seed, c.costs
    )
    .expect("String write");
    for n in notes {
        writeln!(out, "note: {n}").expect("String write");
    }
}

/// One run: a header line (and `notes`), a per-task table, the counters, the end reason and
/// any invariant violations.
pub fn run_table(m: &Metrics, notes: &[String]) -> String {
    use Align::{Left as L, Right as R};
    let mut out = String::new();
    header_lines(&mut out, m, &m.config.protocol, notes);
    let mut t = Columns::new();
    t.text("TASK", L, m.tasks.iter().map(|t| t.name.clone()).collect());
    t.text("PID", R, m.tasks.iter().map(|t| t.pid.to_string()).collect());
    t.text("SCHED", L, m.tasks.iter().map(sched_label).collect());
    let done: Vec<_> = m.tasks.iter().map(|t| t.done_ns).collect();
    t.times("DONE", &done);
    let runtime: Vec<_> = m.tasks.iter().map(|t| Some(t.runtime_ns)).collect();
    t.times("RUNTIME", &runtime);
    for (what, hist) in [("WAKE", wake as fn(&TaskMetrics) -> &Hist), ("LOCK", lock)] {
        for (field, f) in HIST_FIELDS {
            let cells: Vec<_> = m.tasks.iter().map(|t| hist_pick(hist(t), f)).collect();
            t.times(&format!("{what} {field}"), &cells);
        }
    }
    t.text(
        "LOOPS",
        R,
        m.tasks.iter().map(|t| t.loop_ns.count.to_string()).collect(),
    );
    t.render(&mut out);
    out.push_str(&counters_line(m));
    out.push('\n');
    // SCHED_DEADLINE tasks (or tasks with DL records): misses and throttles per task.
    let dl: Vec<String> = m
        .tasks
        .iter()
        .filter(|t| t.policy == "SCHED_DEADLINE" || t.deadline_misses > 0 || t.dl_throttles > 0)
        .map(|t| {
            format!(
                "{} misses={} throttles={}",
                t.name, t.deadline_misses, t.dl_throttles
            )
        })
        .collect();
    if !dl.is_empty() {
        writeln!(out, "deadline: {}", dl.join(", ")).expect("String write");
    }
    writeln!(out, "end: {}", end_cell(m)).expect("String write");
    if m.invariant_violations.is_empty() {
        out.push_str("invariant violations: none\n");
    } else {
        writeln!(out, "invariant violations: {}", m.invariant_violations.len()).expect("String write");
        for v in &m.invariant_violations {
            writeln!(out, "  {} at {}: {}", v.invariant, format_ns(v.time_ns), v.detail)
                .expect("String write");
        }
    }
    out
}

fn wake(t: &TaskMetrics) -> &Hist {
    &t.wakeup_latency_ns
}

fn lock(t: &TaskMetrics) -> &Hist {
    &t.lock_wait_ns
}

/// Several runs of the same workload side by side: the header of [`run_table`] (with every
/// run's name as the protocol), per task one row per run (done time, wakeup latency and lock
/// wait p50/p99/max, time donated), then one counters row per run.
///
/// Tasks are matched by (name, pid) and listed in the order they first appear, run by run.
pub fn compare_table(runs: &[(&str, &Metrics)], notes: &[String]) -> String {
    use Align::{Left as L, Right as R};
    let mut out = String::new();
    if let Some((_, first)) = runs.first() {
        let names: Vec<&str> = runs.iter().map(|(n, _)| *n).collect();
        header_lines(&mut out, first, &names.join(", "), notes);
    }
    let rows = compare_rows(runs);
    let mut t = Columns::new();
    t.text("TASK", L, rows.iter().map(|r| r.0.clone()).collect());
    t.text("PID", R, rows.iter().map(|r| r.1.clone()).collect());
    t.text("PROTOCOL", L, rows.iter().map(|r| r.2.to_string()).collect());
    t.text(
        "SCHED",
        L,
        rows.iter()
            .map(|r| r.3.map_or_else(|| "absent".to_string(), sched_label))
            .collect(),
    );
    let done: Vec<_> = rows.iter().map(|r| r.3.and_then(|t| t.done_ns)).collect();
    t.times("DONE", &done);
    for (what, hist) in [("WAKE", wake as fn(&TaskMetrics) -> &Hist), ("LOCK", lock)] {
        for (field, f) in HIST_FIELDS {
            let cells: Vec<_> = rows
                .iter()
                .map(|r| r.3.and_then(|t| hist_pick(hist(t), f)))
                .collect();
            t.times(&format!("{what} {field}"), &cells);
        }
    }
    let donated: Vec<_> = rows.iter().map(|r| r.3.map(|t| t.donated_ns)).collect();
    t.times("DONATED", &donated);
    t.render(&mut out);
    out.push('\n');
    compare_counters(&mut out, runs);
    out
}

/// A row of [`compare_table`]: the TASK and PID cells, the run's name, the task's metrics.
type CompareRow<'a> = (String, String, &'a str, Option<&'a TaskMetrics>);

/// The rows of [`compare_table`]: per task, matched by (name, pid) in the order tasks first
/// appear run by run, one row per run: the task's name and pid on its first row only, the
/// run's name, and the task's metrics if the run has them.
fn compare_rows<'a>(runs: &[(&'a str, &'a Metrics)]) -> Vec<CompareRow<'a>> {
    let mut keys: Vec<(&str, u32)> = Vec::new();
    for (_, m) in runs {
        for t in &m.tasks {
            if !keys.contains(&(t.name.as_str(), t.pid)) {
                keys.push((t.name.as_str(), t.pid));
            }
        }
    }
    let mut rows: Vec<CompareRow> = Vec::new();
    for &(name, pid) in &keys {
        for (i, (protocol, m)) in runs.iter().enumerate() {
            let (name_cell, pid_cell) = if i == 0 {
                (name.to_string(), pid.to_string())
            } else {
                (String::new(), String::new())
            };
            let t = m.tasks.iter().find(|t| t.name == name && t.pid == pid);
            rows.push((name_cell, pid_cell, protocol, t));
        }
    }
    rows
}

/// The counters rows of [`compare_table`]: one per run.
fn compare_counters(out: &mut String, runs: &[(&str, &Metrics)]) {
    use Align::{Left as L, Right as R};
    let header = [
        "PROTOCOL",
        "CONTEXT SWITCHES",
        "PROXY PICKS",
        "MIGRATIONS",
        "END",
        "VIOLATIONS",
    ];
    let align = [L, R, R, R, L, R];
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|(protocol, m)| {
            vec![
                protocol.to_string(),
                m.counters.context_switches.to_string(),
                m.counters.proxy_picks.to_string(),
                m.counters.migrations.to_string(),
                end_cell(m),
                m.invariant_violations.len().to_string(),
            ]
        })
        .collect();
    render(out, &header, &align, &rows);
}

/// The figures `ablate` compares: the worst lock-wait p99 of any task, donor-migration
/// operations, context switches, and the latest DONE time (ns; 0 if no task finished its work).
pub fn ablation_figures(m: &Metrics) -> [u64; 4] {
    [
        m.tasks.iter().map(|t| t.lock_wait_ns.p99).max().unwrap_or(0),
        m.counters.proxy_migrations,
        m.counters.context_switches,
        m.tasks.iter().filter_map(|t| t.done_ns).max().unwrap_or(0),
    ]
}

/// `proxysched ablate`: the header, the baseline, then one row per mechanism switched off,
/// with the change from the baseline of each figure of [`ablation_figures`]. A time column and
/// its change column share one unit.
pub fn ablation_table(baseline: &Metrics, runs: &[(&str, &Metrics)], notes: &[String]) -> String {
    use Align::{Left as L, Right as R};
    let mut out = String::new();
    header_lines(&mut out, baseline, &baseline.config.protocol, notes);
    let base = ablation_figures(baseline);
    let all: Vec<(&str, [u64; 4], &str)> =
        std::iter::once(("(none: all on, v29)", base, baseline.end_reason.as_str()))
            .chain(
                runs.iter()
                    .map(|(n, m)| (*n, ablation_figures(m), m.end_reason.as_str())),
            )
            .collect();
    let delta = |v: u64, b: u64, fmt: &dyn Fn(u64) -> String| {
        let d = v as i128 - b as i128;
        let mag = fmt(d.unsigned_abs() as u64);
        match d.signum() {
            0 => "=".to_string(),
            1 => format!("+{mag}"),
            _ => format!("-{mag}"),
        }
    };
    let mut t = Columns::new();
    t.text("MECHANISM OFF", L, all.iter().map(|r| r.0.to_string()).collect());
    for (i, name, time) in [
        (0, "LOCK WAIT p99", true),
        (1, "DONOR MIGR", false),
        (2, "SWITCHES", false),
        (3, "LAST DONE", true),
    ] {
        let unit = Unit::for_max(all.iter().map(|r| r.1[i]).max().unwrap_or(0));
        let fmt = |v: u64| if time { unit.format(v) } else { v.to_string() };
        let header = if time {
            format!("{name} ({})", unit.symbol())
        } else {
            name.to_string()
        };
        t.text(&header, R, all.iter().map(|r| fmt(r.1[i])).collect());
        t.text("Δ", R, all.iter().map(|r| delta(r.1[i], base[i], &fmt)).collect());
    }
    t.text("END", L, all.iter().map(|r| r.2.to_string()).collect());
    t.render(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Config, Counters, ViolationRecord};

    #[test]
    fn format_ns_units_and_truncation() {
        assert_eq!(format_ns(0), "0 ns");
        assert_eq!(format_ns(999), "999 ns");
        assert_eq!(format_ns(1_000), "1.000 µs");
        assert_eq!(format_ns(12_345), "12.345 µs");
        assert_eq!(format_ns(999_999), "999.999 µs");
        assert_eq!(format_ns(1_000_000), "1.000 ms");
        assert_eq!(format_ns(12_345_999), "12.345 ms");
        assert_eq!(format_ns(999_999_999), "999.999 ms");
        assert_eq!(format_ns(3_000_000_000), "3.000 s");
        assert_eq!(format_ns(u64::MAX), "18446744073.709 s");
    }

    fn task(name: &str, pid: u32, policy: &str, prio: i32) -> TaskMetrics {
        TaskMetrics {
            name: name.into(),
            pid,
            policy: policy.into(),
            prio,
            nice: 0,
            dl_params_ns: None,
            exit_ns: None,
            done_ns: None,
            runtime_ns: 0,
            donated_ns: 0,
            wakeup_latency_ns: Hist::default(),
            lock_wait_ns: Hist::default(),
            loop_ns: Hist::default(),
            deadline_misses: 0,
            dl_throttles: 0,
            nr_switches: 0,
            nr_migrations: 0,
        }
    }

    fn metrics(protocol: &str, scale: u64) -> Metrics {
        let mut hi = task("rt-hi", 1001, "SCHED_FIFO", 89);
        hi.done_ns = Some(12_500_000 * scale);
        hi.exit_ns = Some(12_600_000 * scale);
        hi.runtime_ns = 4_000_000;
        hi.wakeup_latency_ns = Hist::from_samples(&[1_500 * scale, 2_000, 250_000]);
        hi.lock_wait_ns = Hist::from_samples(&[3_000_000 * scale]);
        hi.loop_ns = Hist::from_samples(&[10_000_000, 10_000_000]);
        let mut lo = task("lo", 1002, "SCHED_OTHER", 120);
        lo.runtime_ns = 999;
        lo.donated_ns = 700_000 * (scale - 1);
        Metrics {
            schema: crate::metrics::SCHEMA.into(),
            workload: "pi-demo".into(),
            config: Config {
                cpus: 2,
                protocol: protocol.into(),
                seed: 1,
                costs: "default".into(),
                features: Vec::new(),
            },
            sim_time_ns: 20_000_000,
            end_reason: "exited".into(),
            tasks: vec![hi, lo],
            counters: Counters {
                context_switches: 40 + scale,
                migrations: 3,
                proxy_picks: scale - 1,
                proxy_migrations: 0,
                return_migrations: 0,
                ipis: 9,
                events: 321,
            },
            invariant_violations: Vec::new(),
        }
    }

    #[test]
    fn run_table_golden() {
        let mut m = metrics("pi", 1);
        m.invariant_violations.push(ViolationRecord {
            invariant: "curr_is_runnable".into(),
            time_ns: 5_000,
            detail: "cpu 1 curr 1002 sleeping".into(),
        });
        let expected = "\
workload: pi-demo  protocol: pi  cpus: 2  seed: 1  costs: default
TASK    PID  SCHED    DONE (ms)  RUNTIME (µs)  WAKE p50 (µs)  WAKE p99 (µs)  WAKE max (µs)  LOCK p50 (ms)  LOCK p99 (ms)  LOCK max (ms)  LOOPS
rt-hi  1001  FIFO 10     12.500      4000.000          2.000        250.000        250.000          3.000          3.000          3.000      2
lo     1002  nice 0           -         0.999              -              -              -              -              -              -      0
counters: context_switches=41 migrations=3 proxy_picks=0 proxy_migrations=0 return_migrations=0 ipis=9 events=321
end: exited at 20.000 ms
invariant violations: 1
  curr_is_runnable at 5.000 µs: cpu 1 curr 1002 sleeping
";
        assert_eq!(run_table(&m, &[]), expected);
        let clean = run_table(&metrics("proxy", 2), &[]);
        assert!(clean.ends_with("end: exited at 20.000 ms\ninvariant violations: none\n"));
        assert_eq!(clean, run_table(&metrics("proxy", 2), &[]), "deterministic");
    }

    #[test]
    fn run_table_lists_deadline_misses_and_throttles_of_dl_tasks() {
        let mut m = metrics("none", 1);
        let mut dl = task("dl", 1003, "SCHED_DEADLINE", -1);
        dl.deadline_misses = 3;
        dl.dl_throttles = 4;
        m.tasks.push(dl);
        let out = run_table(&m, &[]);
        assert!(
            out.contains("\ndeadline: dl misses=3 throttles=4\nend: exited at 20.000 ms\n"),
            "{out}"
        );
        assert!(
            !run_table(&metrics("none", 1), &[]).contains("deadline:"),
            "no DL task, no line"
        );
    }

    #[test]
    fn compare_table_golden() {
        let none = metrics("none", 3);
        let mut pi = metrics("pi", 1);
        pi.tasks.pop();
        let proxy = metrics("proxy", 2);
        let expected = "\
workload: pi-demo  protocol: none, pi, proxy  cpus: 2  seed: 1  costs: default
TASK    PID  PROTOCOL  SCHED    DONE (ms)  WAKE p50 (µs)  WAKE p99 (µs)  WAKE max (µs)  LOCK p50 (ms)  LOCK p99 (ms)  LOCK max (ms)  DONATED (ms)
rt-hi  1001  none      FIFO 10     37.500          4.500        250.000        250.000          9.000          9.000          9.000         0.000
             pi        FIFO 10     12.500          2.000        250.000        250.000          3.000          3.000          3.000         0.000
             proxy     FIFO 10     25.000          3.000        250.000        250.000          6.000          6.000          6.000         0.000
lo     1002  none      nice 0           -              -              -              -              -              -              -         1.400
             pi        absent           -              -              -              -              -              -              -             -
             proxy     nice 0           -              -              -              -              -              -              -         0.700

PROTOCOL  CONTEXT SWITCHES  PROXY PICKS  MIGRATIONS  END                  VIOLATIONS
none                    43            2           3  exited at 20.000 ms           0
pi                      41            0           3  exited at 20.000 ms           0
proxy                   42            1           3  exited at 20.000 ms           0
";
        assert_eq!(
            compare_table(&[("none", &none), ("pi", &pi), ("proxy", &proxy)], &[]),
            expected
        );
    }

    #[test]
    fn one_unit_per_column_from_its_largest_value() {
        assert_eq!(Unit::for_max(0), Unit::Ns);
        assert_eq!(Unit::for_max(999), Unit::Ns);
        assert_eq!(Unit::for_max(1_000), Unit::Us);
        assert_eq!(Unit::for_max(999_999_999), Unit::Ms);
        assert_eq!(Unit::for_max(1_000_000_000), Unit::S);
        assert_eq!(Unit::Ms.format(1_080_123_456), "1080.123");
        assert_eq!(Unit::Ms.format(540), "0.000");
        assert_eq!(Unit::Us.format(16_030), "16.030");
        assert_eq!(Unit::Ns.format(540), "540");
        let (h, cells) = time_column("LOCK max", &[Some(540), None, Some(362_000_000)]);
        assert_eq!(h, "LOCK max (µs)", "540 ns would read 0.000 ms");
        assert_eq!(cells, ["0.540", "-", "362000.000"]);
        let (h, cells) = time_column("LOCK max", &[Some(540), None, Some(1_080_000_000)]);
        assert_eq!(h, "LOCK max (ms)", "in µs 1.08 s would take seven digits");
        assert_eq!(cells, ["0.000", "-", "1080.000"]);
        let (h, _) = time_column("WAKE", &[Some(0), Some(2_000_000)]);
        assert_eq!(h, "WAKE (ms)", "zero is exact in any unit");
        let (h, cells) = time_column("DONE", &[None, None]);
        assert_eq!(
            (h.as_str(), cells),
            ("DONE", vec!["-".to_string(), "-".to_string()])
        );
    }

    #[test]
    fn sched_label_is_what_the_workload_wrote() {
        let label = |policy: &str, prio: i32, nice: i32| {
            let mut t = task("t", 1, policy, prio);
            t.nice = nice;
            sched_label(&t)
        };
        assert_eq!(label("SCHED_FIFO", 89, 0), "FIFO 10");
        assert_eq!(label("SCHED_RR", 4, 0), "RR 95");
        assert_eq!(label("SCHED_OTHER", 110, -10), "nice -10");
        assert_eq!(label("SCHED_BATCH", 139, 19), "BATCH nice 19");
        assert_eq!(label("SCHED_IDLE", 139, 0), "IDLE");
        let mut dl = task("d", 2, "SCHED_DEADLINE", -1);
        dl.dl_params_ns = Some([3_000_000, 10_000_000, 10_000_000]);
        assert_eq!(sched_label(&dl), "DL 3/10/10 ms");
        dl.dl_params_ns = Some([500_000, 2_000_000, 2_500_000]);
        assert_eq!(sched_label(&dl), "DL 0.5/2/2.5 ms");
        dl.dl_params_ns = Some([300_000, 900_000, 900_000]);
        assert_eq!(sched_label(&dl), "DL 300/900/900 µs");
    }

    #[test]
    fn ablation_table_golden() {
        let base = metrics("proxy", 1);
        let mut off = metrics("proxy", 3);
        off.counters.proxy_migrations = 2;
        off.end_reason = "stall".into();
        let expected = "\
workload: pi-demo  protocol: proxy  cpus: 2  seed: 1  costs: default
MECHANISM OFF        LOCK WAIT p99 (ms)       Δ  DONOR MIGR   Δ  SWITCHES   Δ  LAST DONE (ms)        Δ  END
(none: all on, v29)               3.000       =           0   =        41   =          12.500        =  exited
donor_migration                   9.000  +6.000           2  +2        43  +2          37.500  +25.000  stall
";
        assert_eq!(ablation_table(&base, &[("donor_migration", &off)], &[]), expected);
        let noted = ablation_table(&base, &[], &["cpus raised".to_string()]);
        assert!(
            noted.contains("costs: default\nnote: cpus raised\nMECHANISM"),
            "{noted}"
        );
    }
}
