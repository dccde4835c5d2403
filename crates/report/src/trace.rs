//! `--trace FILE`: the trace format chosen by the file's extension (DESIGN.md): `.pftrace`
//! Perfetto protobuf ([`PerfettoWriter`]), `.dat` trace-cmd's trace.dat ([`TraceDatWriter`]),
//! anything else ftrace text ([`FtraceWriter`]).

use std::io;
use std::path::Path;

use kernel::tracepoints::{Event, EventSink};

use crate::ftrace::FtraceWriter;
use crate::perfetto::PerfettoWriter;
use crate::tracedat::TraceDatWriter;

/// The formats `--trace` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    Ftrace,
    Perfetto,
    TraceDat,
}

impl TraceFormat {
    /// By extension, case-insensitively: `pftrace` → Perfetto, `dat` → trace.dat, otherwise
    /// ftrace text.
    pub fn from_path(path: &Path) -> TraceFormat {
        match path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .as_deref()
        {
            Some("pftrace") => TraceFormat::Perfetto,
            Some("dat") => TraceFormat::TraceDat,
            _ => TraceFormat::Ftrace,
        }
    }
}

/// A trace writer of any format, fed as one [`EventSink`].
pub enum TraceWriter<W: io::Write> {
    Ftrace(FtraceWriter<W>),
    Perfetto(PerfettoWriter<W>),
    TraceDat(TraceDatWriter<W>),
}

impl<W: io::Write> TraceWriter<W> {
    /// A writer of `format` for a run on `nr_cpus` CPUs.
    pub fn new(format: TraceFormat, out: W, nr_cpus: usize) -> Self {
        match format {
            TraceFormat::Ftrace => TraceWriter::Ftrace(FtraceWriter::new(out)),
            TraceFormat::Perfetto => TraceWriter::Perfetto(PerfettoWriter::new(out, nr_cpus)),
            TraceFormat::TraceDat => TraceWriter::TraceDat(TraceDatWriter::new(out, nr_cpus)),
        }
    }

    /// Writes what is still buffered, flushes, and returns the writer or the first error.
    pub fn finish(self) -> io::Result<W> {
        match self {
            TraceWriter::Ftrace(w) => w.finish(),
            TraceWriter::Perfetto(w) => w.finish(),
            TraceWriter::TraceDat(w) => w.finish(),
        }
    }
}

impl<W: io::Write> EventSink for TraceWriter<W> {
    fn event(&mut self, e: &Event) {
        match self {
            TraceWriter::Ftrace(w) => w.event(e),
            TraceWriter::Perfetto(w) => w.event(e),
            TraceWriter::TraceDat(w) => w.event(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(
            TraceFormat::from_path(Path::new("a/out.pftrace")),
            TraceFormat::Perfetto
        );
        assert_eq!(
            TraceFormat::from_path(Path::new("out.PFTRACE")),
            TraceFormat::Perfetto
        );
        assert_eq!(
            TraceFormat::from_path(Path::new("trace.dat")),
            TraceFormat::TraceDat
        );
        assert_eq!(TraceFormat::from_path(Path::new("out.txt")), TraceFormat::Ftrace);
        assert_eq!(TraceFormat::from_path(Path::new("out")), TraceFormat::Ftrace);
        assert_eq!(TraceFormat::from_path(Path::new("dat")), TraceFormat::Ftrace);
    }
}
