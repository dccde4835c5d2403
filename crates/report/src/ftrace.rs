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
use std::fmt::{self, Write as _};
use std::io;

use kernel::tracepoints::{Comm, Event, EventKind, EventSink, IpiReason, LockName, Pid, PrevState, TaskRef};
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

/// A payload comm, formatted straight into the line: the writer sees every event, and a
/// switch to or from idle would otherwise allocate a `swapper/N` string per record.
enum PayloadComm<'a> {
    /// The idle task of a CPU.
    Swapper(CpuId),
    Comm(&'a str),
}

impl fmt::Display for PayloadComm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadComm::Swapper(cpu) => write!(f, "swapper/{cpu}"),
            PayloadComm::Comm(c) => f.write_str(c),
        }
    }
}

/// Writes every event as one `trace` line to `W`.
///
/// Comms are learnt from `task_newtask` records; pid 0 is `<idle>` as a line owner and
/// `swapper/N` in payloads; a pid never introduced prints as `<...>`, as the kernel does when
/// its comm cache misses. The first write error is kept, later events are dropped, and
/// [`FtraceWriter::finish`] returns it.
pub struct FtraceWriter<W: io::Write> {
    out: W,
    comms: BTreeMap<Pid, String>,
    /// Sleeping-lock names by [`lock_addr`], from `LockInit` records.
    lock_names: BTreeMap<u64, String>,
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
            lock_names: BTreeMap::new(),
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
    fn payload_comm(&self, pid: Pid, cpu: CpuId) -> PayloadComm<'_> {
        if pid == 0 {
            return PayloadComm::Swapper(cpu);
        }
        PayloadComm::Comm(self.comms.get(&pid).map_or("<...>", String::as_str))
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

    /// `<event>: <payload>` per TR-1: one line per record kind here, the longer formats in
    /// the functions below (each named after its tracepoint).
    fn payload(&self, e: &Event, s: &mut String) {
        let cpu = e.cpu;
        let r = match e.kind {
            EventKind::TaskNewtask { pid, comm, .. } => write!(
                s,
                "task_newtask: pid={pid} comm={comm} clone_flags=0 oom_score_adj=0"
            ),
            EventKind::SchedSwitch {
                prev,
                prev_state,
                next,
            } => self.sched_switch(s, cpu, prev, prev_state, next),
            EventKind::SchedWaking { task, target_cpu } => {
                self.sched_wakeup(s, "sched_waking", cpu, task, target_cpu)
            }
            EventKind::SchedWakeup { task, target_cpu } => {
                self.sched_wakeup(s, "sched_wakeup", cpu, task, target_cpu)
            }
            EventKind::SchedWakeupNew { task, target_cpu } => {
                self.sched_wakeup(s, "sched_wakeup_new", cpu, task, target_cpu)
            }
            EventKind::SchedMigrateTask {
                task,
                orig_cpu,
                dest_cpu,
            } => self.sched_migrate_task(s, cpu, task, orig_cpu, dest_cpu),
            EventKind::SchedProcessExit { task } => self.sched_process_exit(s, cpu, task),
            EventKind::SchedPiSetprio {
                task,
                oldprio,
                newprio,
            } => self.sched_pi_setprio(s, cpu, task, oldprio, newprio),
            EventKind::IpiSendCpu { target_cpu, reason } => ipi_send_cpu(s, target_cpu, reason),
            EventKind::ContentionBegin { lock } => {
                write!(s, "contention_begin: {:#018x} (flags=SPIN)", lock_addr(lock))
            }
            EventKind::ContentionEnd { lock, .. } => {
                write!(s, "contention_end: {:#018x} (ret=0)", lock_addr(lock))
            }
            EventKind::UserMark { mark, .. } => write!(s, "tracing_mark_write: {mark}"),
            // atrace slices: Perfetto draws the wait as a slice on the waiter's track.
            EventKind::LockContended { pid, lock } => write!(
                s,
                "tracing_mark_write: B|{pid}|lock_wait {}",
                self.lock_names.get(&lock_addr(lock)).map_or("?", String::as_str)
            ),
            EventKind::LockAcquired { pid, .. } | EventKind::LockInterrupted { pid, .. } => {
                write!(s, "tracing_mark_write: E|{pid}")
            }
            EventKind::SignalGenerate {
                sig,
                code,
                comm,
                pid,
                res,
            } => write!(
                s,
                "signal_generate: sig={sig} errno=0 code={code} comm={comm} pid={pid} grp=0 res={res}"
            ),
            EventKind::ProxyBegin { donor, owner } => write!(
                s,
                "tracing_mark_write: B|{}|proxy for {}-{}",
                owner.pid,
                self.payload_comm(donor.pid, cpu),
                donor.pid
            ),
            EventKind::ProxyEnd { owner, .. } => write!(s, "tracing_mark_write: E|{}", owner.pid),
            EventKind::WorkqueueQueueWork {
                work,
                function,
                req_cpu,
                cpu: pool_cpu,
            } => workqueue_queue_work(s, work, function, req_cpu, pool_cpu),
            EventKind::WorkqueueExecuteStart { work, function } => write!(
                s,
                "workqueue_execute_start: work struct {:#018x}: function {function}",
                work_addr(work)
            ),
            EventKind::WorkqueueExecuteEnd { work, function } => write!(
                s,
                "workqueue_execute_end: work struct {:#018x}: function {function}",
                work_addr(work)
            ),
            EventKind::SchedSetattr { .. }
            | EventKind::LockInit { .. }
            | EventKind::ProxyPick { .. }
            | EventKind::ProxyMigrate { .. }
            | EventKind::ReturnMigrate { .. }
            | EventKind::ProxyPark { .. }
            | EventKind::DlThrottle { .. }
            | EventKind::DlDeadlineMiss { .. } => {
                unreachable!("not printed")
            }
        };
        r.expect("String write");
    }

    /// A task's `comm`, `pid` and `prio` as a payload prints them.
    fn task_fields(&self, t: TaskRef, cpu: CpuId) -> (PayloadComm<'_>, Pid, i32) {
        (self.payload_comm(t.pid, cpu), t.pid, t.prio)
    }

    /// Linux: include/trace/events/sched.h sched_switch.
    fn sched_switch(
        &self,
        s: &mut String,
        cpu: CpuId,
        prev: TaskRef,
        prev_state: PrevState,
        next: TaskRef,
    ) -> fmt::Result {
        let (pc, pp, ppr) = self.task_fields(prev, cpu);
        let (nc, np, npr) = self.task_fields(next, cpu);
        write!(
            s,
            "sched_switch: prev_comm={pc} prev_pid={pp} prev_prio={ppr} prev_state={} \
             ==> next_comm={nc} next_pid={np} next_prio={npr}",
            prev_state.as_str()
        )
    }

    /// Linux: include/trace/events/sched.h sched_wakeup_template (`sched_waking`,
    /// `sched_wakeup`, `sched_wakeup_new`, the record's `name`).
    fn sched_wakeup(
        &self,
        s: &mut String,
        name: &str,
        cpu: CpuId,
        t: TaskRef,
        target_cpu: CpuId,
    ) -> fmt::Result {
        let (c, p, pr) = self.task_fields(t, cpu);
        write!(s, "{name}: comm={c} pid={p} prio={pr} target_cpu={target_cpu:03}")
    }

    /// Linux: include/trace/events/sched.h sched_migrate_task.
    fn sched_migrate_task(
        &self,
        s: &mut String,
        cpu: CpuId,
        t: TaskRef,
        orig_cpu: CpuId,
        dest_cpu: CpuId,
    ) -> fmt::Result {
        let (c, p, pr) = self.task_fields(t, cpu);
        write!(
            s,
            "sched_migrate_task: comm={c} pid={p} prio={pr} orig_cpu={orig_cpu} dest_cpu={dest_cpu}"
        )
    }

    /// Linux: include/trace/events/sched.h sched_process_exit, with the ` group_dead=true`
    /// suffix of the newest kernels unless [`FtraceWriter::with_group_dead`] turned it off.
    fn sched_process_exit(&self, s: &mut String, cpu: CpuId, t: TaskRef) -> fmt::Result {
        let (c, p, pr) = self.task_fields(t, cpu);
        write!(s, "sched_process_exit: comm={c} pid={p} prio={pr}")?;
        if self.group_dead {
            s.write_str(" group_dead=true")?;
        }
        Ok(())
    }

    /// Linux: include/trace/events/sched.h sched_pi_setprio.
    fn sched_pi_setprio(
        &self,
        s: &mut String,
        cpu: CpuId,
        t: TaskRef,
        oldprio: i32,
        newprio: i32,
    ) -> fmt::Result {
        let (c, p, _) = self.task_fields(t, cpu);
        write!(
            s,
            "sched_pi_setprio: comm={c} pid={p} oldprio={oldprio} newprio={newprio}"
        )
    }
}

/// Linux: include/trace/events/ipi.h ipi_send_cpu.
fn ipi_send_cpu(s: &mut String, target_cpu: CpuId, reason: IpiReason) -> fmt::Result {
    let (callsite, callback) = ipi_symbols(reason);
    write!(
        s,
        "ipi_send_cpu: cpu={target_cpu} callsite={callsite} callback={callback}"
    )
}

/// Linux: include/trace/events/workqueue.h workqueue_queue_work. The per-CPU pools serve
/// `system_wq`, whose name is "events".
fn workqueue_queue_work(
    s: &mut String,
    work: u32,
    function: Comm,
    req_cpu: CpuId,
    pool_cpu: CpuId,
) -> fmt::Result {
    write!(
        s,
        "workqueue_queue_work: work struct={:#018x} function={function} workqueue=events \
         req_cpu={req_cpu} cpu={pool_cpu}",
        work_addr(work)
    )
}

/// A stable fake `struct work_struct *` for work item `work` (distinct from lock addresses).
pub fn work_addr(work: u32) -> u64 {
    0xffff_8800_0000_0000 | (6 << 40) | (u64::from(work) << 6)
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
        IpiReason::NohzKick => ("kick_ilb", "nohz_csd_func"),
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
        LockName::Rq(cpu) => (1u64, u64::from(cpu.0)),
        LockName::PiLock(pid) => (2, u64::from(pid)),
        LockName::Other(n) => (3, u64::from(n)),
        LockName::Mutex(n) => (4, u64::from(n.0)),
        LockName::RtMutex(n) => (5, u64::from(n.0)),
    };
    0xffff_8800_0000_0000 | (class << 40) | (instance << 6)
}

impl<W: io::Write> EventSink for FtraceWriter<W> {
    fn event(&mut self, e: &Event) {
        if self.error.is_some() {
            return;
        }
        // Model-only records that no Linux tracepoint prints.
        match e.kind {
            EventKind::SchedSetattr { .. }
            | EventKind::ProxyPick { .. }
            | EventKind::ProxyMigrate { .. }
            | EventKind::ReturnMigrate { .. }
            | EventKind::ProxyPark { .. }
            | EventKind::DlThrottle { .. }
            | EventKind::DlDeadlineMiss { .. } => return,
            EventKind::LockInit { lock, name } => {
                self.lock_names.insert(lock_addr(lock), name.as_str().to_string());
                return;
            }
            _ => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::tracepoints::{Comm, PrevState, TraceFlags};
    use uapi::Policy;

    const SWITCH: TraceFlags = TraceFlags {
        irqs_off: true,
        need_resched: false,
        hardirq: false,
        preempt_depth: 2,
    };
    const WAKE: TraceFlags = TraceFlags {
        irqs_off: true,
        need_resched: false,
        hardirq: false,
        preempt_depth: 3,
    };
    const IPI_WAKE: TraceFlags = TraceFlags {
        irqs_off: true,
        need_resched: false,
        hardirq: true,
        preempt_depth: 2,
    };

    fn ev(time_ns: u64, cpu: CpuId, owner: Pid, flags: TraceFlags, kind: EventKind) -> Event {
        Event {
            time_ns,
            cpu,
            owner,
            flags,
            kind,
        }
    }

    fn newtask(pid: Pid, name: &str) -> Event {
        ev(
            0,
            CpuId(0),
            0,
            TraceFlags::default(),
            EventKind::TaskNewtask {
                pid,
                comm: Comm::new(name),
                policy: Policy::Normal,
                prio: 120,
                nice: 0,
                kthread: false,
            },
        )
    }

    fn tr(pid: Pid, prio: i32) -> TaskRef {
        TaskRef { pid, prio }
    }

    /// The lines after the header for `events`, preceded by `task_newtask` for worker (1001)
    /// and rt-hi (1002) whose lines are dropped.
    fn lines(events: &[Event]) -> Vec<String> {
        let mut w = FtraceWriter::new(Vec::new());
        w.event(&newtask(1001, "worker"));
        w.event(&newtask(1002, "rt-hi"));
        for e in events {
            w.event(e);
        }
        let text = String::from_utf8(w.finish().expect("no io error")).expect("utf8");
        let body = text.strip_prefix(HEADER).expect("header first");
        body.lines().skip(2).map(str::to_string).collect()
    }

    fn line(e: Event) -> String {
        let mut l = lines(&[e]);
        assert_eq!(l.len(), 1);
        l.pop().expect("one line")
    }

    #[test]
    fn header_is_the_kernel_nop_header() {
        let w = FtraceWriter::new(Vec::new());
        let text = String::from_utf8(w.finish().expect("ok")).expect("utf8");
        let mut it = text.lines();
        assert_eq!(it.next(), Some("# tracer: nop"));
        assert_eq!(it.next(), Some("#"));
        assert_eq!(
            it.next(),
            Some("#                                _-----=> irqs-off/BH-disabled")
        );
        assert_eq!(
            it.clone().last(),
            Some("#              | |         |   |||||     |         |")
        );
        assert!(text.lines().all(|l| l.starts_with('#')));
        // The flag legend's `|||||` sits exactly over the five flag columns of a line.
        let legend = text.lines().find(|l| l.contains("TASK-PID")).expect("legend");
        let sample = line(ev(
            0,
            CpuId(0),
            0,
            SWITCH,
            EventKind::IpiSendCpu {
                target_cpu: CpuId(1),
                reason: IpiReason::Reschedule,
            },
        ));
        assert_eq!(legend.find("|||||"), sample.find("d..2."));
    }

    #[test]
    fn sched_switch_from_idle_matches_the_spec_example() {
        let e = ev(
            105_000_123_000,
            CpuId(2),
            0,
            SWITCH,
            EventKind::SchedSwitch {
                prev: tr(0, 120),
                prev_state: PrevState::Running,
                next: tr(1001, 120),
            },
        );
        assert_eq!(
            line(e),
            "          <idle>-0       [002] d..2.   105.000123: sched_switch: prev_comm=swapper/2 \
             prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=worker next_pid=1001 \
             next_prio=120"
        );
    }

    #[test]
    fn sched_switch_preempted_to_idle() {
        let e = ev(
            1_500_000,
            CpuId(0),
            1002,
            SWITCH,
            EventKind::SchedSwitch {
                prev: tr(1002, 89),
                prev_state: PrevState::Preempted,
                next: tr(0, 120),
            },
        );
        assert_eq!(
            line(e),
            "           rt-hi-1002    [000] d..2.     0.001500: sched_switch: prev_comm=rt-hi \
             prev_pid=1002 prev_prio=89 prev_state=R+ ==> next_comm=swapper/0 next_pid=0 \
             next_prio=120"
        );
    }

    #[test]
    fn prev_state_letters() {
        let states = [
            (PrevState::Sleeping, "S"),
            (PrevState::DiskSleep, "D"),
            (PrevState::Idle, "I"),
            (PrevState::Dead, "X"),
            (PrevState::Zombie, "Z"),
        ];
        for (state, letter) in states {
            let e = ev(
                0,
                CpuId(0),
                1001,
                SWITCH,
                EventKind::SchedSwitch {
                    prev: tr(1001, 120),
                    prev_state: state,
                    next: tr(0, 120),
                },
            );
            assert!(
                line(e).contains(&format!(" prev_state={letter} ==> ")),
                "{letter}"
            );
        }
    }

    #[test]
    fn wakeups_and_flags() {
        let waking = ev(
            2_000_001_000,
            CpuId(1),
            1002,
            WAKE,
            EventKind::SchedWaking {
                task: tr(1001, 120),
                target_cpu: CpuId(3),
            },
        );
        let wakeup = ev(
            2_000_002_000,
            CpuId(3),
            0,
            IPI_WAKE,
            EventKind::SchedWakeup {
                task: tr(1001, 120),
                target_cpu: CpuId(3),
            },
        );
        let new = ev(
            12_345_678_901_234,
            CpuId(0),
            1002,
            WAKE,
            EventKind::SchedWakeupNew {
                task: tr(1001, 120),
                target_cpu: CpuId(12),
            },
        );
        assert_eq!(
            lines(&[waking, wakeup, new]),
            [
                "           rt-hi-1002    [001] d..3.     2.000001: sched_waking: comm=worker \
                 pid=1001 prio=120 target_cpu=003",
                "          <idle>-0       [003] d.h2.     2.000002: sched_wakeup: comm=worker \
                 pid=1001 prio=120 target_cpu=003",
                "           rt-hi-1002    [000] d..3. 12345.678901: sched_wakeup_new: comm=worker \
                 pid=1001 prio=120 target_cpu=012",
            ]
        );
    }

    #[test]
    fn flag_rendering_need_resched_and_hex_depth() {
        let f = TraceFlags {
            irqs_off: false,
            need_resched: true,
            hardirq: false,
            preempt_depth: 11,
        };
        let e = ev(
            0,
            CpuId(0),
            0,
            f,
            EventKind::IpiSendCpu {
                target_cpu: CpuId(1),
                reason: IpiReason::Reschedule,
            },
        );
        assert_eq!(
            line(e),
            "          <idle>-0       [000] .N.b.     0.000000: ipi_send_cpu: cpu=1 \
             callsite=resched_curr callback=0x0"
        );
    }

    #[test]
    fn timestamps_round_to_the_nearest_microsecond_like_ns2usecs() {
        let at = |t| {
            line(ev(
                t,
                CpuId(0),
                0,
                TraceFlags::default(),
                EventKind::SchedProcessExit { task: tr(1001, 120) },
            ))
        };
        assert!(at(499).contains(" .....     0.000000: "));
        assert!(at(500).contains(" .....     0.000001: "));
        assert!(at(1_999_999_500).contains(" .....     2.000000: "));
        assert!(at(123_456_789_999_999_000).contains(" ..... 123456789.999999: "));
    }

    #[test]
    fn unknown_and_wide_pids() {
        let e = ev(
            0,
            CpuId(5),
            77,
            WAKE,
            EventKind::SchedWaking {
                task: tr(1234567, 100),
                target_cpu: CpuId(5),
            },
        );
        assert_eq!(
            line(e),
            "           <...>-77      [005] d..3.     0.000000: sched_waking: comm=<...> \
             pid=1234567 prio=100 target_cpu=005"
        );
        let e = ev(
            0,
            CpuId(123),
            1234567,
            SWITCH,
            EventKind::SchedMigrateTask {
                task: tr(1001, 120),
                orig_cpu: CpuId(0),
                dest_cpu: CpuId(123),
            },
        );
        assert_eq!(
            line(e),
            "           <...>-1234567 [123] d..2.     0.000000: sched_migrate_task: comm=worker \
             pid=1001 prio=120 orig_cpu=0 dest_cpu=123"
        );
    }

    #[test]
    fn exit_pi_setprio_and_newtask_payloads() {
        let exit = ev(
            7,
            CpuId(1),
            1001,
            TraceFlags::default(),
            EventKind::SchedProcessExit { task: tr(1001, 120) },
        );
        let pi = ev(
            7,
            CpuId(1),
            1002,
            WAKE,
            EventKind::SchedPiSetprio {
                task: tr(1001, 120),
                oldprio: 120,
                newprio: 89,
            },
        );
        let nt = ev(
            7,
            CpuId(1),
            1002,
            TraceFlags::default(),
            EventKind::TaskNewtask {
                pid: 1003,
                comm: Comm::new("a very long task name"),
                policy: Policy::Fifo,
                prio: 89,
                nice: 0,
                kthread: false,
            },
        );
        assert_eq!(
            lines(&[exit, pi, nt]),
            [
                "          worker-1001    [001] .....     0.000000: sched_process_exit: \
                 comm=worker pid=1001 prio=120 group_dead=true",
                "           rt-hi-1002    [001] d..3.     0.000000: sched_pi_setprio: \
                 comm=worker pid=1001 oldprio=120 newprio=89",
                "           rt-hi-1002    [001] .....     0.000000: task_newtask: pid=1003 \
                 comm=a_very_long_tas clone_flags=0 oom_score_adj=0",
            ]
        );
        let mut w = FtraceWriter::new(Vec::new()).with_group_dead(false);
        w.event(&exit);
        let text = String::from_utf8(w.finish().expect("ok")).expect("utf8");
        assert!(text.ends_with(": sched_process_exit: comm=<...> pid=1001 prio=120\n"));
    }

    #[test]
    fn ipi_callsites() {
        let ipi = |reason| {
            line(ev(
                0,
                CpuId(0),
                1001,
                IPI_WAKE,
                EventKind::IpiSendCpu {
                    target_cpu: CpuId(2),
                    reason,
                },
            ))
        };
        assert!(ipi(IpiReason::WakeList)
            .ends_with(": ipi_send_cpu: cpu=2 callsite=try_to_wake_up callback=sched_ttwu_pending"));
        assert!(ipi(IpiReason::CallFunction).ends_with(
            ": ipi_send_cpu: cpu=2 callsite=smp_call_function_single_async \
             callback=generic_smp_call_function_single_interrupt"
        ));
    }

    #[test]
    fn contention_addresses_are_stable_and_distinct() {
        let begin = ev(
            0,
            CpuId(0),
            1001,
            SWITCH,
            EventKind::ContentionBegin {
                lock: LockName::Rq(CpuId(1)),
            },
        );
        let end = ev(
            0,
            CpuId(0),
            1001,
            SWITCH,
            EventKind::ContentionEnd {
                lock: LockName::Rq(CpuId(1)),
                spun_ns: 40,
            },
        );
        assert_eq!(
            lines(&[begin, end]),
            [
                "          worker-1001    [000] d..2.     0.000000: contention_begin: \
                 0xffff890000000040 (flags=SPIN)",
                "          worker-1001    [000] d..2.     0.000000: contention_end: \
                 0xffff890000000040 (ret=0)",
            ]
        );
        assert_eq!(lock_addr(LockName::PiLock(1001)), 0xffff_8a00_0000_fa40);
        assert_eq!(lock_addr(LockName::Other(3)), 0xffff_8b00_0000_00c0);
        let all = [
            LockName::Rq(CpuId(0)),
            LockName::Rq(CpuId(u32::MAX)),
            LockName::PiLock(0),
            LockName::PiLock(u32::MAX),
            LockName::Other(0),
            LockName::Other(u32::MAX),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(lock_addr(*a), lock_addr(*b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn rt_app_markers() {
        use workload::Mark;
        let mark = |mark: Mark| {
            let mark = mark.marker();
            ev(
                3_000,
                CpuId(1),
                1001,
                TraceFlags::default(),
                EventKind::UserMark { pid: 1001, mark },
            )
        };
        assert_eq!(
            lines(&[
                mark(Mark::TaskStart),
                mark(Mark::LoopStart {
                    thread_loop: 4,
                    phase: 1,
                    phase_loop: 2
                }),
                mark(Mark::LoopEnd {
                    thread_loop: 4,
                    phase: 1,
                    phase_loop: 2
                }),
                mark(Mark::TaskEnd),
            ]),
            [
                "          worker-1001    [001] .....     0.000003: tracing_mark_write: \
                 rtapp_task: event=start",
                "          worker-1001    [001] .....     0.000003: tracing_mark_write: \
                 rtapp_loop: event=start thread_loop=4 phase=1 phase_loop=2",
                "          worker-1001    [001] .....     0.000003: tracing_mark_write: \
                 rtapp_loop: event=end thread_loop=4 phase=1 phase_loop=2",
                "          worker-1001    [001] .....     0.000003: tracing_mark_write: \
                 rtapp_task: event=end",
            ]
        );
    }

    /// Fails every write after `budget` bytes.
    struct Failing {
        budget: usize,
    }

    impl io::Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.budget {
                return Err(io::Error::other("disk full"));
            }
            self.budget -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn first_write_error_surfaces_from_finish() {
        let mut w = FtraceWriter::new(Failing { budget: HEADER.len() });
        assert!(w.error().is_none());
        w.event(&newtask(1001, "worker"));
        assert!(w.error().is_some());
        w.event(&newtask(1002, "rt-hi"));
        let err = w.finish().err().expect("error surfaces");
        assert_eq!(err.to_string(), "disk full");
        let w = FtraceWriter::new(Failing { budget: 3 });
        assert!(w.finish().is_err(), "a failed header is an error too");
    }

    #[test]
    fn same_events_give_identical_bytes() {
        let events: Vec<Event> = (0..50u64)
            .map(|i| {
                ev(
                    i * 1_337,
                    CpuId((i % 4) as u32),
                    1001,
                    WAKE,
                    EventKind::SchedWaking {
                        task: tr(1002, 89),
                        target_cpu: CpuId((i % 3) as u32),
                    },
                )
            })
            .collect();
        assert_eq!(lines(&events), lines(&events));
        assert_eq!(lines(&events).len(), 50);
    }
}
