//! The ftrace text writer: the kernel's `trace` file, line for line.
//!
//! Linux: kernel/trace/trace.c print_trace_header()/print_func_help_header_irq() (the header),
//! trace_output.c trace_print_context()/trace_print_lat_fmt() (the line prefix), and the
//! `TP_printk` formats of include/trace/events/{sched,task,ipi,lock}.h (the payloads). The
//! format is specified in docs/trace-format.md and spec TR-1..TR-8.
//!
//! Deviation: the `# entries-in-buffer/entries-written` header line is omitted (the writer
//! streams and does not know the totals up front); `ipi_send_cpu` prints plain symbol names
//! without `+off/size`; `contention_*` print a fake, stable address derived from the lock name
//! (see [`lock_addr`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;

use kernel::tracepoints::{Event, EventKind, EventSink, IpiReason, LockName, Pid, TaskRef};
use sim::user::Mark;
use sim::CpuId;

/// The header the kernel prints at the top of `trace` with the `nop` tracer (record-tgid off).
pub const HEADER: &str = "\
# tracer: nop
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
";

/// Writes every event as one `trace` line to `W`.
///
/// Comms are learnt from `task_newtask` records; pid 0 is `<idle>` as a line owner and
/// `swapper/N` in payloads; a pid never introduced prints as `<...>`, as the kernel does when
/// its comm cache misses. The first write error is kept, later events are dropped, and
/// [`FtraceWriter::finish`] returns it.
pub struct FtraceWriter<W: io::Write> {
    out: W,
    comms: BTreeMap<Pid, String>,
    group_dead: bool,
    line: String,
    error: Option<io::Error>,
}

impl<W: io::Write> FtraceWriter<W> {
    /// Writes the header immediately. Pass a buffered writer (`BufWriter`) for files: the
    /// writer issues one `write_all` per line.
    pub fn new(out: W) -> Self {
        let mut w = FtraceWriter {
            out,
            comms: BTreeMap::new(),
            group_dead: true,
            line: String::with_capacity(192),
            error: None,
        };
        if let Err(e) = w.out.write_all(HEADER.as_bytes()) {
            w.error = Some(e);
        }
        w
    }

    /// Whether `sched_process_exit` carries the ` group_dead=true` suffix of the newest kernels
    /// (default on; off prints the older `comm=%s pid=%d prio=%d`).
    pub fn with_group_dead(mut self, on: bool) -> Self {
        self.group_dead = on;
        self
    }

    /// The first write error so far, if any.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// Flushes and returns the writer, or the first error the run hit.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// The line owner's comm, right-aligned in the 16-wide TASK column.
    fn owner_comm(&self, pid: Pid) -> &str {
        if pid == 0 {
            return "<idle>";
        }
        self.comms.get(&pid).map_or("<...>", String::as_str)
    }

    /// A comm as printed in a payload: pid 0 is the per-CPU `swapper/N`.
    fn payload_comm(&self, pid: Pid, cpu: CpuId) -> String {
        if pid == 0 {
            return format!("swapper/{cpu}");
        }
        self.comms
            .get(&pid)
            .map_or_else(|| "<...>".to_string(), Clone::clone)
    }

    /// Formats one record into `self.line` (without writing it).
    fn format(&mut self, e: &Event) {
        let flags = e.flags.render();
        let flags = std::str::from_utf8(&flags).expect("flags are ASCII");
        // Linux: trace_print_time() prints ns2usecs(ts), which rounds to the nearest µs.
        let usecs = e.time_ns / 1000 + u64::from(e.time_ns % 1000 >= 500);
        let (secs, usec_rem) = (usecs / 1_000_000, usecs % 1_000_000);
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        write!(
            line,
            "{:>16}-{:<7} [{:03}] {} {:>5}.{:06}: ",
            self.owner_comm(e.owner),
            e.owner,
            e.cpu,
            flags,
            secs,
            usec_rem
        )
        .expect("String write");
        self.payload(e, &mut line);
        line.push('\n');
        self.line = line;
    }

    /// `<event>: <payload>` per TR-1.
    fn payload(&self, e: &Event, s: &mut String) {
        let cpu = e.cpu;
        let task = |t: &TaskRef| (self.payload_comm(t.pid, cpu), t.pid, t.prio);
        let r = match e.kind {
            EventKind::TaskNewtask { pid, comm, .. } => write!(
                s,
                "task_newtask: pid={pid} comm={comm} clone_flags=0 oom_score_adj=0"
            ),
            EventKind::SchedSwitch {
                prev,
                prev_state,
                next,
            } => {
                let (pc, pp, ppr) = task(&prev);
                let (nc, np, npr) = task(&next);
                write!(
                    s,
                    "sched_switch: prev_comm={pc} prev_pid={pp} prev_prio={ppr} prev_state={} \
                     ==> next_comm={nc} next_pid={np} next_prio={npr}",
                    prev_state.as_str()
                )
            }
            EventKind::SchedWaking {
                task: t,
                target_cpu,
            } => {
                let (c, p, pr) = task(&t);
                write!(
                    s,
                    "sched_waking: comm={c} pid={p} prio={pr} target_cpu={target_cpu:03}"
                )
            }
            EventKind::SchedWakeup {
                task: t,
                target_cpu,
            } => {
                let (c, p, pr) = task(&t);
                write!(
                    s,
                    "sched_wakeup: comm={c} pid={p} prio={pr} target_cpu={target_cpu:03}"
                )
            }
            EventKind::SchedWakeupNew {
                task: t,
                target_cpu,
            } => {
                let (c, p, pr) = task(&t);
                write!(
                    s,
                    "sched_wakeup_new: comm={c} pid={p} prio={pr} target_cpu={target_cpu:03}"
                )
            }
            EventKind::SchedMigrateTask {
                task: t,
                orig_cpu,
                dest_cpu,
            } => {
                let (c, p, pr) = task(&t);
                write!(
                    s,
                    "sched_migrate_task: comm={c} pid={p} prio={pr} orig_cpu={orig_cpu} \
                     dest_cpu={dest_cpu}"
                )
            }
            EventKind::SchedProcessExit { task: t } => {
                let (c, p, pr) = task(&t);
                write!(s, "sched_process_exit: comm={c} pid={p} prio={pr}").and_then(|()| {
                    if self.group_dead {
                        s.write_str(" group_dead=true")
                    } else {
                        Ok(())
                    }
                })
            }
            EventKind::SchedPiSetprio {
                task: t,
                oldprio,
                newprio,
            } => {
                let (c, p, _) = task(&t);
                write!(
                    s,
                    "sched_pi_setprio: comm={c} pid={p} oldprio={oldprio} newprio={newprio}"
                )
            }
            EventKind::IpiSendCpu { target_cpu, reason } => {
                let (callsite, callback) = ipi_symbols(reason);
                write!(
                    s,
                    "ipi_send_cpu: cpu={target_cpu} callsite={callsite} callback={callback}"
                )
            }
            EventKind::ContentionBegin { lock } => {
                write!(
                    s,
                    "contention_begin: {:#018x} (flags=SPIN)",
                    lock_addr(lock)
                )
            }
            EventKind::ContentionEnd { lock, .. } => {
                write!(s, "contention_end: {:#018x} (ret=0)", lock_addr(lock))
            }
            EventKind::UserMark { mark, .. } => {
                s.push_str("tracing_mark_write: ");
                write_mark(s, mark)
            }
        };
        r.expect("String write");
    }
}

/// rt-app's own marker text for a [`Mark`] (rt-app.c `log_ftrace` calls).
pub fn write_mark(s: &mut String, mark: Mark) -> std::fmt::Result {
    match mark {
        Mark::LoopStart {
            thread_loop,
            phase,
            phase_loop,
        } => write!(
            s,
            "rtapp_loop: event=start thread_loop={thread_loop} phase={phase} \
             phase_loop={phase_loop}"
        ),
        Mark::LoopEnd {
            thread_loop,
            phase,
            phase_loop,
        } => write!(
            s,
            "rtapp_loop: event=end thread_loop={thread_loop} phase={phase} \
             phase_loop={phase_loop}"
        ),
        Mark::TaskStart => s.write_str("rtapp_task: event=start"),
        Mark::TaskEnd => s.write_str("rtapp_task: event=end"),
    }
}

/// `callsite` and `callback` symbols of `ipi_send_cpu` for each modelled IPI.
///
/// Linux: kernel/sched/core.c smp_send_reschedule() traces `(cpu, _RET_IP_, NULL)` from
/// resched_curr() (a NULL callback prints `0x0`); kernel/smp.c __smp_call_single_queue() traces
/// `sched_ttwu_pending` as the callback of a wake-list entry queued from try_to_wake_up().
/// Deviation: `%pS` would print `sym+off/size`; we print the bare symbol.
pub fn ipi_symbols(reason: IpiReason) -> (&'static str, &'static str) {
    match reason {
        IpiReason::Reschedule => ("resched_curr", "0x0"),
        IpiReason::WakeList => ("try_to_wake_up", "sched_ttwu_pending"),
        IpiReason::CallFunction => (
            "smp_call_function_single_async",
            "generic_smp_call_function_single_interrupt",
        ),
    }
}

/// A fake kernel address for a model spinlock: stable across runs and distinct per lock.
///
/// `0xffff_8800_0000_0000 | class << 40 | instance << 6` with class 1 = `rq->__lock` (instance
/// = CPU), 2 = `p->pi_lock` (instance = pid), 3 = other raw spinlocks (instance = machine lock
/// number). 64-byte alignment, like a cache-line-aligned lock in the direct map.
pub fn lock_addr(lock: LockName) -> u64 {
    let (class, instance) = match lock {
        LockName::Rq(cpu) => (1u64, u64::from(cpu)),
        LockName::PiLock(pid) => (2, u64::from(pid)),
        LockName::Other(n) => (3, u64::from(n)),
    };
    0xffff_8800_0000_0000 | (class << 40) | (instance << 6)
}

impl<W: io::Write> EventSink for FtraceWriter<W> {
    fn event(&mut self, e: &Event) {
        if self.error.is_some() {
            return;
        }
        self.format(e);
        if let Err(err) = self.out.write_all(self.line.as_bytes()) {
            self.error = Some(err);
        }
        if let EventKind::TaskNewtask { pid, comm, .. } = e.kind {
            self.comms.insert(pid, comm.as_str().to_string());
        }
    }
}
