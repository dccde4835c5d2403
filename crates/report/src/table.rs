//! Human-readable tables for `--format table`: one run ([`run_table`]) and several protocols
//! side by side ([`compare_table`]).
//!
//! Formatting is deterministic: integer arithmetic only, times through [`format_ns`], column
//! widths from the cells themselves, columns separated by two spaces, no trailing spaces.

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

/// `p50`, `p99`, `max` of a distribution, or `-` three times when it is empty.
fn hist_cells(h: &Hist) -> [String; 3] {
    if h.count == 0 {
        return ["-".into(), "-".into(), "-".into()];
    }
    [format_ns(h.p50), format_ns(h.p99), format_ns(h.max)]
}

fn exit_cell(t: &TaskMetrics) -> String {
    t.exit_ns.map_or_else(|| "-".to_string(), format_ns)
}

/// `FIFO/89`, `OTHER/120`: the policy without `SCHED_`, then the prio.
fn policy_cell(t: &TaskMetrics) -> String {
    format!(
        "{}/{}",
        t.policy.strip_prefix("SCHED_").unwrap_or(&t.policy),
        t.prio
    )
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

/// One run: a config line, a per-task table, the counters, the end reason and any invariant
/// violations.
pub fn run_table(m: &Metrics) -> String {
    use Align::{Left as L, Right as R};
    let mut out = String::new();
    let c = &m.config;
    writeln!(
        out,
        "workload: {}  protocol: {}  cpus: {}  seed: {}  costs: {}",
        m.workload, c.protocol, c.cpus, c.seed, c.costs
    )
    .expect("String write");
    let header = [
        "TASK",
        "PID",
        "POLICY/PRIO",
        "EXIT",
        "RUNTIME",
        "WAKE p50",
        "WAKE p99",
        "WAKE max",
        "LOCK p50",
        "LOCK p99",
        "LOCK max",
        "LOOPS",
    ];
    let align = [L, R, L, R, R, R, R, R, R, R, R, R];
    let rows: Vec<Vec<String>> = m
        .tasks
        .iter()
        .map(|t| {
            let [w50, w99, wmax] = hist_cells(&t.wakeup_latency_ns);
            let [l50, l99, lmax] = hist_cells(&t.lock_wait_ns);
            vec![
                t.name.clone(),
                t.pid.to_string(),
                policy_cell(t),
                exit_cell(t),
                format_ns(t.runtime_ns),
                w50,
                w99,
                wmax,
                l50,
                l99,
                lmax,
                t.loop_ns.count.to_string(),
            ]
        })
        .collect();
    render(&mut out, &header, &align, &rows);
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

/// Several runs of the same workload side by side: per task one row per run (exit time, wakeup
/// latency and lock wait p50/p99/max, time donated), then one counters row per run.
///
/// Tasks are matched by (name, pid) and listed in the order they first appear, run by run.
pub fn compare_table(runs: &[(&str, &Metrics)]) -> String {
    use Align::{Left as L, Right as R};
    let mut keys: Vec<(&str, u32)> = Vec::new();
    for (_, m) in runs {
        for t in &m.tasks {
            if !keys.contains(&(t.name.as_str(), t.pid)) {
                keys.push((t.name.as_str(), t.pid));
            }
        }
    }
    let header = [
        "TASK", "PID", "PROTOCOL", "EXIT", "WAKE p50", "WAKE p99", "WAKE max", "LOCK p50", "LOCK p99",
        "LOCK max", "DONATED",
    ];
    let align = [L, R, L, R, R, R, R, R, R, R, R];
    let mut rows = Vec::new();
    for &(name, pid) in &keys {
        for (i, (protocol, m)) in runs.iter().enumerate() {
            let (name_cell, pid_cell) = if i == 0 {
                (name.to_string(), pid.to_string())
            } else {
                (String::new(), String::new())
            };
            let mut row = vec![name_cell, pid_cell, protocol.to_string()];
            match m.tasks.iter().find(|t| t.name == name && t.pid == pid) {
                Some(t) => {
                    row.push(exit_cell(t));
                    row.extend(hist_cells(&t.wakeup_latency_ns));
                    row.extend(hist_cells(&t.lock_wait_ns));
                    row.push(format_ns(t.donated_ns));
                }
                None => {
                    row.push("absent".to_string());
                    row.extend(std::iter::repeat_n("-".to_string(), 7));
                }
            }
            rows.push(row);
        }
    }
    let mut out = String::new();
    render(&mut out, &header, &align, &rows);
    out.push('\n');
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
    render(&mut out, &header, &align, &rows);
    out
}

/// The figures `ablate` compares: the worst lock-wait p99 of any task, donor-migration
/// operations, context switches, and the latest exit time (ns; 0 if no task exited).
pub fn ablation_figures(m: &Metrics) -> [u64; 4] {
    [
        m.tasks.iter().map(|t| t.lock_wait_ns.p99).max().unwrap_or(0),
        m.counters.proxy_migrations,
        m.counters.context_switches,
        m.tasks.iter().filter_map(|t| t.exit_ns).max().unwrap_or(0),
    ]
}

/// `proxysched ablate`: the baseline, then one row per mechanism switched off, with the
/// change from the baseline of each figure of [`ablation_figures`].
pub fn ablation_table(baseline: &Metrics, runs: &[(&str, &Metrics)]) -> String {
    let base = ablation_figures(baseline);
    let delta = |v: u64, b: u64, time: bool| {
        let d = v as i128 - b as i128;
        let mag = d.unsigned_abs() as u64;
        let txt = if time { format_ns(mag) } else { mag.to_string() };
        match d.signum() {
            0 => "=".to_string(),
            1 => format!("+{txt}"),
            _ => format!("-{txt}"),
        }
    };
    let mut out = format!(
        "{:<24} {:>14} {:>12} {:>10} {:>8} {:>10} {:>8} {:>14} {:>12}  {}\n",
        "MECHANISM OFF", "LOCK WAIT p99", "Δ", "DONOR MIGR", "Δ", "SWITCHES", "Δ", "LAST EXIT", "Δ", "END"
    );
    let mut row = |name: &str, f: [u64; 4], end: &str| {
        out += &format!(
            "{:<24} {:>14} {:>12} {:>10} {:>8} {:>10} {:>8} {:>14} {:>12}  {}\n",
            name,
            format_ns(f[0]),
            delta(f[0], base[0], true),
            f[1],
            delta(f[1], base[1], false),
            f[2],
            delta(f[2], base[2], false),
            format_ns(f[3]),
            delta(f[3], base[3], true),
            end,
        );
    };
    row("(none: all on, v29)", base, &baseline.end_reason);
    for (name, m) in runs {
        row(name, ablation_figures(m), &m.end_reason);
    }
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
            exit_ns: None,
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
        hi.exit_ns = Some(12_500_000 * scale);
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
TASK    PID  POLICY/PRIO       EXIT   RUNTIME  WAKE p50    WAKE p99    WAKE max  LOCK p50  LOCK p99  LOCK max  LOOPS
rt-hi  1001  FIFO/89      12.500 ms  4.000 ms  2.000 µs  250.000 µs  250.000 µs  3.000 ms  3.000 ms  3.000 ms      2
lo     1002  OTHER/120            -    999 ns         -           -           -         -         -         -      0
counters: context_switches=41 migrations=3 proxy_picks=0 proxy_migrations=0 return_migrations=0 ipis=9 events=321
end: exited at 20.000 ms
invariant violations: 1
  curr_is_runnable at 5.000 µs: cpu 1 curr 1002 sleeping
";
        assert_eq!(run_table(&m), expected);
        let clean = run_table(&metrics("proxy", 2));
        assert!(clean.ends_with("end: exited at 20.000 ms\ninvariant violations: none\n"));
        assert_eq!(clean, run_table(&metrics("proxy", 2)), "deterministic");
    }

    #[test]
    fn run_table_lists_deadline_misses_and_throttles_of_dl_tasks() {
        let mut m = metrics("none", 1);
        let mut dl = task("dl", 1003, "SCHED_DEADLINE", -1);
        dl.deadline_misses = 3;
        dl.dl_throttles = 4;
        m.tasks.push(dl);
        let out = run_table(&m);
        assert!(
            out.contains("\ndeadline: dl misses=3 throttles=4\nend: exited at 20.000 ms\n"),
            "{out}"
        );
        assert!(
            !run_table(&metrics("none", 1)).contains("deadline:"),
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
TASK    PID  PROTOCOL       EXIT  WAKE p50    WAKE p99    WAKE max  LOCK p50  LOCK p99  LOCK max     DONATED
rt-hi  1001  none      37.500 ms  4.500 µs  250.000 µs  250.000 µs  9.000 ms  9.000 ms  9.000 ms        0 ns
             pi        12.500 ms  2.000 µs  250.000 µs  250.000 µs  3.000 ms  3.000 ms  3.000 ms        0 ns
             proxy     25.000 ms  3.000 µs  250.000 µs  250.000 µs  6.000 ms  6.000 ms  6.000 ms        0 ns
lo     1002  none              -         -           -           -         -         -         -    1.400 ms
             pi           absent         -           -           -         -         -         -           -
             proxy             -         -           -           -         -         -         -  700.000 µs

PROTOCOL  CONTEXT SWITCHES  PROXY PICKS  MIGRATIONS  END                  VIOLATIONS
none                    43            2           3  exited at 20.000 ms           0
pi                      41            0           3  exited at 20.000 ms           0
proxy                   42            1           3  exited at 20.000 ms           0
";
        assert_eq!(
            compare_table(&[("none", &none), ("pi", &pi), ("proxy", &proxy)]),
            expected
        );
    }
}
