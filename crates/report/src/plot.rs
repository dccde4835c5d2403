//! Plots for `--plot DIR`: latency CDFs, a per-CPU Gantt chart with Proxy Execution drawn as
//! donor→owner spans, and the `ablate` figures side by side, as SVG (the `plotters` crate's
//! SVG backend: no fonts or system libraries needed; text is left to the SVG viewer).
//!
//! [`PlotCollector`] is an [`EventSink`] like the metrics collector, and like it sees the event
//! stream only: it feeds an inner [`MetricsCollector`] (so the CDFs are drawn from exactly the
//! samples behind the metrics' `wakeup_latency_ns` and `lock_wait_ns`) and records, per CPU,
//! who ran when (`sched_switch`) and which proxy slices were open (`ProxyBegin`/`ProxyEnd`).
//! [`PlotCollector::finish`] gives the [`RunSeries`] that the drawing functions take.
//!
//! Determinism: ordered maps, tasks by pid, colours by position, fixed sizes; the same events
//! give byte-identical SVG.

use std::collections::BTreeMap;

use kernel::tracepoints::{Event, EventKind, EventSink, Pid};
use plotters::prelude::*;
use sim::{CpuId, Nanos};

use crate::metrics::{Metrics, MetricsCollector, TaskSamples};
use crate::table::{ablation_figures, Unit};

/// One interval in which `pid` was the running task (`rq->curr`) of `cpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunSpan {
    pub cpu: CpuId,
    pub pid: Pid,
    pub start_ns: Nanos,
    pub end_ns: Nanos,
}

/// One proxy slice: `owner` ran on `donor`'s scheduling context on `cpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxySpan {
    pub cpu: CpuId,
    pub donor: Pid,
    pub owner: Pid,
    pub start_ns: Nanos,
    pub end_ns: Nanos,
}

/// What one run contributes to the plots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSeries {
    /// Per task (by pid): its wakeup-latency and lock-wait samples.
    pub samples: Vec<TaskSamples>,
    /// Task names by pid (from `task_newtask`).
    pub names: BTreeMap<Pid, String>,
    /// Running intervals inside the window, clipped to it, in the order they ended.
    pub spans: Vec<RunSpan>,
    /// Proxy slices inside the window, clipped to it, in the order they ended.
    pub proxy_spans: Vec<ProxySpan>,
    /// CPUs seen in the stream (highest CPU + 1).
    pub nr_cpus: u32,
    /// The Gantt window `[from, to)`, ns (`to` is at most the end of the run).
    pub window_ns: (Nanos, Nanos),
}

/// Collects a run's [`RunSeries`] from the event stream.
#[derive(Clone, Debug)]
pub struct PlotCollector {
    metrics: MetricsCollector,
    window_ns: (Nanos, Nanos),
    names: BTreeMap<Pid, String>,
    /// Per CPU: the task switched in last and since when.
    running: BTreeMap<CpuId, (Pid, Nanos)>,
    /// Per CPU: the open proxy slice (donor, owner, since).
    proxy: BTreeMap<CpuId, (Pid, Pid, Nanos)>,
    spans: Vec<RunSpan>,
    proxy_spans: Vec<ProxySpan>,
    nr_cpus: u32,
}

/// `[start, end)` clipped to `window`, if anything is left.
fn clip(start: Nanos, end: Nanos, window: (Nanos, Nanos)) -> Option<(Nanos, Nanos)> {
    let (s, e) = (start.max(window.0), end.min(window.1));
    (s < e).then_some((s, e))
}

impl PlotCollector {
    /// A collector whose Gantt keeps what overlaps `[from_ns, to_ns)`; the CDFs always use the
    /// whole run.
    pub fn new(from_ns: Nanos, to_ns: Nanos) -> Self {
        assert!(from_ns < to_ns, "empty plot window");
        PlotCollector {
            metrics: MetricsCollector::new(),
            window_ns: (from_ns, to_ns),
            names: BTreeMap::new(),
            running: BTreeMap::new(),
            proxy: BTreeMap::new(),
            spans: Vec::new(),
            proxy_spans: Vec::new(),
            nr_cpus: 0,
        }
    }

    fn close_run(&mut self, cpu: CpuId, end_ns: Nanos) {
        if let Some((pid, since)) = self.running.remove(&cpu) {
            if let (true, Some((start_ns, end_ns))) = (pid != 0, clip(since, end_ns, self.window_ns)) {
                self.spans.push(RunSpan {
                    cpu,
                    pid,
                    start_ns,
                    end_ns,
                });
            }
        }
    }

    fn close_proxy(&mut self, cpu: CpuId, end_ns: Nanos) {
        if let Some((donor, owner, since)) = self.proxy.remove(&cpu) {
            if let Some((start_ns, end_ns)) = clip(since, end_ns, self.window_ns) {
                self.proxy_spans.push(ProxySpan {
                    cpu,
                    donor,
                    owner,
                    start_ns,
                    end_ns,
                });
            }
        }
    }

    /// Closes what is still open at `end_ns` (the end of the run).
    pub fn finish(mut self, end_ns: Nanos) -> RunSeries {
        let cpus: Vec<CpuId> = self.running.keys().copied().collect();
        for cpu in cpus {
            self.close_run(cpu, end_ns);
        }
        let cpus: Vec<CpuId> = self.proxy.keys().copied().collect();
        for cpu in cpus {
            self.close_proxy(cpu, end_ns);
        }
        let to_ns = self.window_ns.1.min(end_ns).max(self.window_ns.0 + 1);
        RunSeries {
            samples: self.metrics.samples(),
            names: self.names,
            spans: self.spans,
            proxy_spans: self.proxy_spans,
            nr_cpus: self.nr_cpus.max(1),
            window_ns: (self.window_ns.0, to_ns),
        }
    }
}

impl EventSink for PlotCollector {
    fn event(&mut self, e: &Event) {
        self.metrics.event(e);
        self.nr_cpus = self.nr_cpus.max(e.cpu.0 + 1);
        match e.kind {
            EventKind::TaskNewtask { pid, comm, .. } => {
                self.names.insert(pid, comm.as_str().to_string());
            }
            EventKind::SchedSwitch { next, .. } => {
                self.close_run(e.cpu, e.time_ns);
                self.running.insert(e.cpu, (next.pid, e.time_ns));
            }
            EventKind::ProxyBegin { donor, owner } => {
                self.close_proxy(e.cpu, e.time_ns);
                self.proxy.insert(e.cpu, (donor.pid, owner.pid, e.time_ns));
            }
            EventKind::ProxyEnd { .. } => self.close_proxy(e.cpu, e.time_ns),
            _ => {}
        }
    }
}

/// A fixed palette, so colours depend only on a series' position.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

const FONT: &str = "sans-serif";

/// Grid lines as plain light greys (no opacity, which some SVG converters ignore).
const GRID_LIGHT: RGBColor = RGBColor(0xf0, 0xf0, 0xf0);
const GRID_BOLD: RGBColor = RGBColor(0xd0, 0xd0, 0xd0);

/// Points of the empirical CDF of `samples` in `unit`: a step up by 1/n at every sample.
fn cdf_points(samples: &[u64], unit: Unit) -> Vec<(f64, f64)> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let n = sorted.len() as f64;
    let per = unit_ns(unit);
    let mut pts = Vec::with_capacity(2 * sorted.len());
    for (i, &v) in sorted.iter().enumerate() {
        let x = v as f64 / per;
        pts.push((x, i as f64 / n));
        pts.push((x, (i + 1) as f64 / n));
    }
    pts
}

fn unit_ns(unit: Unit) -> f64 {
    match unit {
        Unit::Ns => 1.0,
        Unit::Us => 1e3,
        Unit::Ms => 1e6,
        Unit::S => 1e9,
    }
}

/// An SVG document of `width` × `height` drawn by `draw`.
fn svg(
    width: u32,
    height: u32,
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, plotters::coord::Shift>),
) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).expect("drawing into a String");
        draw(root.clone());
        root.present().expect("drawing into a String");
    }
    out
}

/// The latency CDF of one task: one curve per run (`runs` = label and samples; runs without
/// samples are left out). `what` names the latency (`wakeup latency`, `lock wait`).
pub fn latency_cdf_svg(task: &str, what: &str, runs: &[(&str, &[u64])]) -> String {
    let all: Vec<u64> = runs.iter().flat_map(|(_, s)| s.iter().copied()).collect();
    let unit = Unit::for_values(&all);
    let x_max = (all.iter().copied().max().unwrap_or(0) as f64 / unit_ns(unit)).max(1e-3) * 1.05;
    svg(800, 500, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{task}: {what} CDF"), (FONT, 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..x_max, 0f64..1.0)
            .expect("drawing into a String");
        chart
            .configure_mesh()
            .light_line_style(GRID_LIGHT)
            .bold_line_style(GRID_BOLD)
            .x_desc(format!("{what} ({})", unit.symbol()))
            .y_desc("fraction of samples ≤ x")
            .draw()
            .expect("drawing into a String");
        for (i, (label, samples)) in runs.iter().enumerate() {
            if samples.is_empty() {
                continue;
            }
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(cdf_points(samples, unit), c.stroke_width(2)))
                .expect("drawing into a String")
                .label(format!("{label} (n={})", samples.len()))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .expect("drawing into a String");
    })
}

/// A per-CPU Gantt chart of `run`'s window: one row per CPU, a bar per running interval in the
/// task's colour, and over it, in the upper part of the row, every proxy slice as a hatched
/// bar in the donor's colour labelled `donor→owner` (the owner runs on the donor's
/// scheduling context).
pub fn gantt_svg(title: &str, run: &RunSeries) -> String {
    let (from, to) = run.window_ns;
    let unit = Unit::for_max(to - from);
    let g = GanttLayout::new(run, unit_ns(unit));
    let nr = run.nr_cpus;
    let legend_rows = g.pids.len() as u32 + u32::from(!run.proxy_spans.is_empty());
    svg(1200, (100 + 60 * nr).max(60 + 18 * legend_rows), |root| {
        let (plot_area, legend_area) = root.split_horizontally(960);
        draw_legend(
            &legend_area,
            g.pids.iter().map(|&p| (g.name(p), g.colour(p).filled())).chain(
                (!run.proxy_spans.is_empty()).then(|| {
                    (
                        "proxy: donor→owner, donor's colour".to_string(),
                        BLACK.stroke_width(1),
                    )
                }),
            ),
        );
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(title, (FONT, 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(g.x(from)..g.x(to), 0f64..nr as f64)
            .expect("drawing into a String");
        chart
            .configure_mesh()
            .light_line_style(GRID_LIGHT)
            .bold_line_style(GRID_BOLD)
            .disable_y_mesh()
            .y_labels(2 * nr as usize + 1)
            .y_label_formatter(&|y| {
                let cpu = y.floor();
                if (y - cpu - 0.5).abs() < 1e-9 {
                    format!("CPU {cpu}")
                } else {
                    String::new()
                }
            })
            .x_desc(format!("time ({})", unit.symbol()))
            .draw()
            .expect("drawing into a String");
        draw_run_bars(&mut chart, &g);
        draw_proxy_spans(&mut chart, &g);
    })
}

/// The chart a Gantt chart draws into: time on x, CPU rows on y.
type GanttChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Where things go on a Gantt chart: the time scale, the CPU rows, the tasks' colours and
/// names.
struct GanttLayout<'a> {
    run: &'a RunSeries,
    /// Nanoseconds per unit of the time axis.
    per: f64,
    /// Tasks that ran (or donated) in the window, by pid: the legend and the colours.
    pids: Vec<Pid>,
}

impl<'a> GanttLayout<'a> {
    fn new(run: &'a RunSeries, per: f64) -> Self {
        let mut pids: Vec<Pid> = run
            .spans
            .iter()
            .map(|s| s.pid)
            .chain(run.proxy_spans.iter().flat_map(|p| [p.donor, p.owner]))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        GanttLayout { run, per, pids }
    }

    fn x(&self, ns: Nanos) -> f64 {
        ns as f64 / self.per
    }

    /// Row of CPU c: c (bottom) .. c + 1 (top), top down as in KernelShark.
    fn row(&self, cpu: CpuId) -> f64 {
        (self.run.nr_cpus - 1 - cpu.0) as f64
    }

    fn colour(&self, pid: Pid) -> RGBColor {
        colour(
            self.pids
                .iter()
                .position(|&p| p == pid)
                .unwrap_or(self.pids.len()),
        )
    }

    fn name(&self, pid: Pid) -> String {
        self.run
            .names
            .get(&pid)
            .cloned()
            .unwrap_or_else(|| format!("<{pid}>"))
    }
}

/// The running intervals: per task, a bar in its colour in the lower part of its CPU's row.
fn draw_run_bars(chart: &mut GanttChart<'_, '_>, g: &GanttLayout<'_>) {
    for &pid in &g.pids {
        let c = g.colour(pid);
        let bars: Vec<Rectangle<(f64, f64)>> = g
            .run
            .spans
            .iter()
            .filter(|s| s.pid == pid)
            .map(|s| {
                let r = g.row(s.cpu);
                Rectangle::new([(g.x(s.start_ns), r + 0.1), (g.x(s.end_ns), r + 0.6)], c.filled())
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        chart.draw_series(bars).expect("drawing into a String");
    }
}

/// The proxy slices: a half-tone bar in the donor's colour, outlined, in the upper part of
/// the CPU's row, labelled `donor→owner`.
fn draw_proxy_spans(chart: &mut GanttChart<'_, '_>, g: &GanttLayout<'_>) {
    let run = g.run;
    if run.proxy_spans.is_empty() {
        return;
    }
    let mut elems: Vec<Rectangle<(f64, f64)>> = Vec::new();
    for p in &run.proxy_spans {
        let r = g.row(p.cpu);
        let c = g.colour(p.donor);
        elems.push(Rectangle::new(
            [(g.x(p.start_ns), r + 0.62), (g.x(p.end_ns), r + 0.9)],
            c.mix(0.5).filled(),
        ));
        elems.push(Rectangle::new(
            [(g.x(p.start_ns), r + 0.62), (g.x(p.end_ns), r + 0.9)],
            BLACK.stroke_width(1),
        ));
    }
    chart.draw_series(elems).expect("drawing into a String");
    let labels = run.proxy_spans.iter().map(|p| {
        Text::new(
            format!("{}→{}", g.name(p.donor), g.name(p.owner)),
            (g.x(p.start_ns), g.row(p.cpu) + 0.98),
            (FONT, 11).into_font(),
        )
    });
    chart.draw_series(labels).expect("drawing into a String");
}

/// A legend drawn by hand beside a chart: one swatch and name per line.
fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    entries: impl Iterator<Item = (String, ShapeStyle)>,
) {
    for (i, (label, style)) in entries.enumerate() {
        let y = 50 + 18 * i as i32;
        area.draw(&Rectangle::new([(10, y - 6), (24, y + 6)], style))
            .expect("drawing into a String");
        area.draw(&Text::new(label, (30, y - 6), (FONT, 13).into_font()))
            .expect("drawing into a String");
    }
}

/// `ablate`'s figures ([`ablation_figures`]) side by side, one panel per figure, one bar per
/// run (`runs[0]` is the baseline).
pub fn ablation_svg(title: &str, runs: &[(&str, &Metrics)]) -> String {
    let figures: Vec<[u64; 4]> = runs.iter().map(|(_, m)| ablation_figures(m)).collect();
    let panels = [
        ("worst lock wait p99", true),
        ("donor migrations", false),
        ("context switches", false),
        ("last DONE", true),
    ];
    let n = runs.len();
    svg(1600, 160 + 28 * n as u32, |root| {
        let (top, body) = root.split_vertically(40);
        top.draw(&Text::new(title.to_string(), (20, 10), (FONT, 20).into_font()))
            .expect("drawing into a String");
        let areas = body.split_evenly((1, panels.len()));
        for (k, (area, (what, time))) in areas.iter().zip(panels).enumerate() {
            let values: Vec<u64> = figures.iter().map(|f| f[k]).collect();
            let unit = Unit::for_values(&values);
            let scale = if time { unit_ns(unit) } else { 1.0 };
            let max = (values.iter().copied().max().unwrap_or(0) as f64 / scale).max(1e-3) * 1.1;
            let desc = if time {
                format!("{what} ({})", unit.symbol())
            } else {
                what.to_string()
            };
            let names: Vec<String> = runs.iter().map(|(l, _)| l.to_string()).collect();
            let mut chart = ChartBuilder::on(area)
                .margin(10)
                .x_label_area_size(50)
                .y_label_area_size(if k == 0 { 170 } else { 10 })
                .build_cartesian_2d(0f64..max, 0f64..n as f64)
                .expect("drawing into a String");
            chart
                .configure_mesh()
                .light_line_style(GRID_LIGHT)
                .bold_line_style(GRID_BOLD)
                .disable_y_mesh()
                .y_labels(2 * n + 1)
                .y_label_formatter(&|y| {
                    let i = y.floor();
                    if k == 0 && (y - i - 0.5).abs() < 1e-9 && (i as usize) < n {
                        names[n - 1 - i as usize].clone()
                    } else {
                        String::new()
                    }
                })
                .x_desc(desc)
                .x_labels(4)
                .draw()
                .expect("drawing into a String");
            let bars = values.iter().enumerate().map(|(i, &v)| {
                let r = (n - 1 - i) as f64;
                let c = if i == 0 {
                    BLACK.mix(0.6)
                } else {
                    colour(2).mix(0.8)
                };
                Rectangle::new([(0.0, r + 0.15), (v as f64 / scale, r + 0.85)], c.filled())
            });
            chart
                .draw_series(bars)
                .expect("drawing into a String")
                .label(what.to_string());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_points_step_by_one_over_n_in_the_unit() {
        let pts = cdf_points(&[3_000_000, 1_000_000], Unit::Ms);
        assert_eq!(pts, vec![(1.0, 0.0), (1.0, 0.5), (3.0, 0.5), (3.0, 1.0)]);
    }

    fn parse(svg: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(svg).expect("well-formed SVG")
    }

    fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or("").trim().to_string())
            .collect()
    }

    /// Polylines drawn in `colour` with the series' stroke width, and their point counts.
    fn curves(doc: &roxmltree::Document<'_>, c: RGBColor) -> Vec<usize> {
        let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
        doc.descendants()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some(hex.as_str()))
            .map(|n| n.attribute("points").unwrap().split_whitespace().count())
            .collect()
    }

    #[test]
    fn cdf_has_one_curve_per_run_with_samples() {
        let none = [5_000_000, 1_000_000];
        let proxy = [2_000];
        let svg = latency_cdf_svg(
            "ui-1",
            "lock wait",
            &[("none", &none), ("pi", &[]), ("proxy", &proxy)],
        );
        let doc = parse(&svg);
        let t = texts(&doc);
        assert!(t.contains(&"ui-1: lock wait CDF".to_string()), "{t:?}");
        assert!(
            t.contains(&"none (n=2)".to_string()) && t.contains(&"proxy (n=1)".to_string()),
            "{t:?}"
        );
        assert!(
            !t.iter().any(|x| x.starts_with("pi ")),
            "no curve, no label: {t:?}"
        );
        assert!(t.contains(&"lock wait (ms)".to_string()), "{t:?}");
        // The curve (two points per sample) and its legend swatch (two points).
        assert_eq!(curves(&doc, colour(0)), vec![4, 2]);
        assert_eq!(curves(&doc, colour(1)), Vec::<usize>::new());
        assert_eq!(curves(&doc, colour(2)), vec![2, 2]);
        assert_eq!(
            svg,
            latency_cdf_svg(
                "ui-1",
                "lock wait",
                &[("none", &none), ("pi", &[]), ("proxy", &proxy)]
            )
        );
    }

    #[test]
    fn gantt_draws_runs_per_cpu_and_proxy_spans_donor_to_owner() {
        let names: BTreeMap<Pid, String> = [
            (1000, "bg".to_string()),
            (1001, "ui".to_string()),
            (1002, "hog".to_string()),
        ]
        .into();
        let span = |cpu, pid, start_ns, end_ns| RunSpan {
            cpu,
            pid,
            start_ns,
            end_ns,
        };
        let run = RunSeries {
            samples: Vec::new(),
            names,
            spans: vec![
                span(CpuId(0), 1002, 0, 1_000_000),
                span(CpuId(0), 1000, 1_000_000, 3_000_000),
                span(CpuId(1), 1002, 0, 4_000_000),
            ],
            proxy_spans: vec![ProxySpan {
                cpu: CpuId(0),
                donor: 1001,
                owner: 1000,
                start_ns: 1_000_000,
                end_ns: 3_000_000,
            }],
            nr_cpus: 2,
            window_ns: (0, 4_000_000),
        };
        let svg = gantt_svg("demo", &run);
        let doc = parse(&svg);
        let t = texts(&doc);
        for want in ["demo", "CPU 0", "CPU 1", "ui→bg", "bg", "ui", "hog", "time (ms)"] {
            assert!(t.contains(&want.to_string()), "{want}: {t:?}");
        }
        let filled = |c: RGBColor| {
            let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
            doc.descendants()
                .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(hex.as_str()))
                .count()
        };
        // Colours by pid order: bg, ui, hog; one legend swatch each.
        assert_eq!(filled(colour(0)), 1 + 1, "bg: one bar and its swatch");
        assert_eq!(filled(colour(2)), 2 + 1, "hog: a bar on each CPU and its swatch");
        assert_eq!(
            filled(colour(1)),
            1 + 1,
            "ui: the proxy span in the donor's colour, and its swatch"
        );
    }

    /// The collector's spans from a stream: clipped to the window, idle left out, the proxy
    /// slice with its donor and owner, intervals still open closed at the end; the samples
    /// are the metrics collector's.
    #[test]
    fn collector_records_runs_and_proxy_slices_in_the_window() {
        use kernel::tracepoints::{Comm, PrevState, TaskRef, TraceFlags};
        use uapi::Policy;
        let ev = |time_ns, cpu, kind| Event {
            time_ns,
            cpu,
            owner: 0,
            flags: TraceFlags::default(),
            kind,
        };
        let r = |pid| TaskRef { pid, prio: 120 };
        let new = |pid, name| EventKind::TaskNewtask {
            pid,
            comm: Comm::new(name),
            policy: Policy::Normal,
            prio: 120,
            nice: 0,
            kthread: false,
        };
        let sw = |prev, next| EventKind::SchedSwitch {
            prev: r(prev),
            prev_state: PrevState::Running,
            next: r(next),
        };
        let mut c = PlotCollector::new(100, 1_000);
        for e in [
            ev(0, CpuId(0), new(7, "owner")),
            ev(0, CpuId(0), new(8, "donor")),
            ev(50, CpuId(0), sw(0, 7)),
            ev(50, CpuId(1), sw(0, 8)),
            ev(200, CpuId(1), sw(8, 0)),
            ev(
                300,
                CpuId(0),
                EventKind::ProxyBegin {
                    donor: r(8),
                    owner: r(7),
                },
            ),
            ev(
                400,
                CpuId(0),
                EventKind::ProxyEnd {
                    donor: r(8),
                    owner: r(7),
                },
            ),
            ev(500, CpuId(0), sw(7, 0)),
            ev(900, CpuId(1), sw(0, 7)),
        ] {
            c.event(&e);
        }
        let run = c.finish(2_000);
        let span = |cpu, pid, start_ns, end_ns| RunSpan {
            cpu,
            pid,
            start_ns,
            end_ns,
        };
        assert_eq!(
            run.spans,
            vec![
                span(CpuId(1), 8, 100, 200),
                span(CpuId(0), 7, 100, 500),
                span(CpuId(1), 7, 900, 1_000)
            ]
        );
        assert_eq!(
            run.proxy_spans,
            vec![ProxySpan {
                cpu: CpuId(0),
                donor: 8,
                owner: 7,
                start_ns: 300,
                end_ns: 400
            }]
        );
        assert_eq!((run.nr_cpus, run.window_ns), (2, (100, 1_000)));
        assert_eq!(run.names[&7], "owner");
        assert_eq!(run.samples.len(), 2);
        // A window past the end of the run ends with the run.
        assert_eq!(
            PlotCollector::new(0, u64::MAX).finish(2_000).window_ns,
            (0, 2_000)
        );
    }

    #[test]
    fn clip_keeps_only_the_window() {
        assert_eq!(clip(0, 10, (5, 20)), Some((5, 10)));
        assert_eq!(clip(0, 5, (5, 20)), None);
        assert_eq!(clip(25, 30, (5, 20)), None);
        assert_eq!(clip(6, 30, (5, 20)), Some((6, 20)));
    }
}
