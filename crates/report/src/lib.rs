//! What a run leaves behind: the ftrace text trace, the `proxysched/metrics/v1` metrics and the
//! human-readable tables.
//!
//! Everything here consumes the kernel model's tracepoint stream
//! ([`kernel::tracepoints::Event`]) through [`kernel::tracepoints::EventSink`] and nothing
//! else: metrics are computed from the events, never from model internals (STYLE habit 9).
//!
//! - [`ftrace`]: [`FtraceWriter`], the kernel's `trace` file format (docs/trace-format.md).
//! - [`perfetto`]: [`PerfettoWriter`], Perfetto's protobuf trace (`.pftrace`), with the schema
//!   subset in [`perfetto_proto`].
//! - [`tracedat`]: [`TraceDatWriter`], trace-cmd's `trace.dat` (version 6).
//! - [`trace`]: [`TraceWriter`], the `--trace` format chosen by file extension.
//! - [`metrics`]: [`MetricsCollector`] and the [`Metrics`] JSON document (docs/metrics.md).
//! - [`table`]: [`run_table`] and [`compare_table`] for `--format table`.
//! - [`plot`]: [`plot::PlotCollector`] and the SVG plots of `--plot DIR` (latency CDFs, per-CPU
//!   Gantt with proxy spans, ablation panels).
//! - [`sink`]: [`Fanout`] and [`SharedSink`], so that one run feeds several sinks and the caller
//!   gets them back after the kernel drops its `Box<dyn EventSink>`.

pub mod dist;
pub mod ftrace;
pub mod metrics;
pub mod perfetto;
pub mod perfetto_proto;
pub mod plot;
pub mod sink;
pub mod table;
pub mod trace;
pub mod tracedat;

pub use ftrace::FtraceWriter;
pub use metrics::{
    compare_json, Config, Counters, Hist, Metrics, MetricsCollector, RunInfo, TaskMetrics, ViolationRecord,
};
pub use perfetto::PerfettoWriter;
pub use sink::{Fanout, SharedSink};
pub use table::{compare_table, format_ns, run_table};
pub use trace::{TraceFormat, TraceWriter};
pub use tracedat::TraceDatWriter;
