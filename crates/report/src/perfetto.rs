//! Perfetto's native protobuf trace (`--trace FILE.pftrace`): what ui.perfetto.dev and
//! trace_processor load without going through their ftrace-text importer.
//!
//! The file is a `Trace` (a stream of length-delimited `TracePacket`s, see
//! [`crate::perfetto_proto`] for the schema subset and why it is written by hand with prost).
//! Two packet sequences, every packet carrying its `trusted_packet_sequence_id`:
//!
//! - Sequence 1, the kernel's view, as Perfetto's own `traced_probes` would record it: a
//!   `SystemInfo` packet (utsname with a 6.x release, so trace_processor decodes `prev_state`
//!   bits with the 4.14+ layout), then per-CPU `FtraceEventBundle`s with `sched_switch`,
//!   `sched_waking`, `sched_wakeup`, `sched_wakeup_new`, `sched_migrate_task`,
//!   `sched_process_exit`, `sched_pi_setprio` and `task_newtask`. Each record is one
//!   `FtraceEvent` with the same CPU, timestamp (in ns, not rounded), `common_pid` and fields
//!   as the line of the ftrace text trace ([`crate::FtraceWriter`]).
//! - Sequence 2, the model's own tracks, as `TrackEvent`s on `TrackDescriptor`s: a process
//!   and a thread descriptor per task (so every thread has its name from its first event on),
//!   lock-wait slices (`lock_wait NAME`) on the waiter's thread track, Proxy Execution slices
//!   (`proxy for COMM-PID`) on a `proxy execution` track under the owner's thread, a flow
//!   from the donor's lock wait to each proxy slice it funds, and two counters per runqueue
//!   (`cpuN nr_running`, `cpuN donor prio`).
//!
//! The flow: trace_processor attaches a flow to the slice its event opens, so at each proxy
//! begin the writer puts a zero-length `donates to COMM-PID` instant on the donor's thread
//! track (it nests inside the donor's open `lock_wait` slice) carrying a fresh flow id, and
//! the owner's proxy slice begin terminates that flow. The UI draws the arrow from inside the
//! donor's lock wait to the owner's proxy slice.
//!
//! The proxy slices get their own track because an owner running as a proxy can itself block
//! on another lock (a chain): on one track the lock-wait slice would begin inside the proxy
//! slice and the proxy's end would close the wrong slice.
//!
//! The counters come from the event stream, like every metric (STYLE habit 9):
//! `nr_running` counts the tasks in TASK_RUNNING whose CPU is that runqueue (the running
//! one and those waiting), following `sched_wakeup*`, `sched_migrate_task` and the
//! `prev_state` of `sched_switch`; `donor prio` is the priority of the task whose scheduling
//! context the CPU uses: the switched-in task, or the donor while a proxy slice is open
//! (the idle task's 120 when idle), following `sched_pi_setprio` boosts.
//!
//! Deviation: `nr_running` is Linux's `rq->nr_running` only without Proxy Execution. A donor
//! blocked on a mutex stays enqueued under proxy (that is what lets it donate), but nothing
//! in the tracepoint stream says so, so the counter leaves blocked donors out.
//!
//! Records that Perfetto's ftrace schema has but that the model only prints as text
//! (`ipi_send_cpu`, `contention_*`, `workqueue_*`, rt-app's `tracing_mark_write` markers) are
//! not written to the protobuf trace; the ftrace text and trace.dat formats keep them.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use kernel::tracepoints::{Event, EventKind, EventSink, Pid, PrevState, TaskRef};
use prost::Message;
use sim::CpuId;

use crate::ftrace::lock_addr;
use crate::perfetto_proto as pb;
use crate::perfetto_proto::ftrace_event::Event as Fe;
use crate::perfetto_proto::packet::Data;

/// The sequence of the kernel's data (system info and ftrace bundles).
pub const SEQ_FTRACE: u32 = 1;
/// The sequence of the model's track events.
pub const SEQ_TRACKS: u32 = 2;

/// The kernel release written to `SystemInfo.utsname` (any release from 4.14 on selects the
/// `prev_state` layout the model uses).
pub const UTS_RELEASE: &str = "6.17.0-proxysched";

/// Events per `FtraceEventBundle` before it is written out (traced_probes writes a bundle per
/// CPU per read pass; the size only trades memory for packet overhead).
const BUNDLE_EVENTS: usize = 512;

/// Track uuids: a tag in bits 40.. and the pid or CPU below.
const UUID_PROCESS: u64 = 1 << 40;
const UUID_THREAD: u64 = 2 << 40;
const UUID_PROXY: u64 = 3 << 40;
const UUID_NR_RUNNING: u64 = 4 << 40;
const UUID_DONOR_PRIO: u64 = 5 << 40;

pub fn process_track(pid: Pid) -> u64 {
    UUID_PROCESS | u64::from(pid)
}
pub fn thread_track(pid: Pid) -> u64 {
    UUID_THREAD | u64::from(pid)
}
pub fn proxy_track(pid: Pid) -> u64 {
    UUID_PROXY | u64::from(pid)
}
pub fn nr_running_track(cpu: CpuId) -> u64 {
    UUID_NR_RUNNING | u64::from(cpu.0)
}
pub fn donor_prio_track(cpu: CpuId) -> u64 {
    UUID_DONOR_PRIO | u64::from(cpu.0)
}

/// The raw `prev_state` the kernel stores in a `sched_switch` record.
///
/// Linux: include/trace/events/sched.h __trace_sched_switch_state(): a preempted task reports
/// TASK_REPORT_MAX (0x100); otherwise `1 << (__task_state_index() - 1)`, i.e. S 0x1, D 0x2,
/// X 0x10, Z 0x20, I (TASK_REPORT_IDLE) 0x80, and 0 for a runnable task.
pub fn raw_prev_state(s: PrevState) -> i64 {
    match s {
        PrevState::Preempted => 0x100,
        PrevState::Running => 0,
        PrevState::Sleeping => 0x1,
        PrevState::DiskSleep => 0x2,
        PrevState::Dead => 0x10,
        PrevState::Zombie => 0x20,
        PrevState::Idle => 0x80,
    }
}

/// Per-runqueue state behind the two counters.
#[derive(Clone, Default)]
struct RqCounters {
    nr_running: i64,
    /// The task whose scheduling context the CPU runs on (pid 0: idle).
    donor: Pid,
    donor_prio: i64,
    /// The values last written (None: not yet).
    emitted_nr: Option<i64>,
    emitted_prio: Option<i64>,
}

/// Streams the event stream as a Perfetto protobuf trace to `W`.
///
/// Ftrace records are buffered per CPU and written as bundles of up to 512 events; track
/// events are written as they come. The first write error is kept, later events are
/// dropped, and [`PerfettoWriter::finish`] returns it.
pub struct PerfettoWriter<W: io::Write> {
    out: W,
    error: Option<io::Error>,
    comms: BTreeMap<Pid, String>,
    lock_names: BTreeMap<u64, String>,
    bundles: Vec<Vec<pb::FtraceEvent>>,
    proxy_tracks: BTreeSet<Pid>,
    rqs: Vec<RqCounters>,
    /// Whether each task is in TASK_RUNNING, and its CPU.
    tasks: BTreeMap<Pid, (bool, CpuId)>,
    next_flow_id: u64,
    buf: Vec<u8>,
}

impl<W: io::Write> PerfettoWriter<W> {
    /// Writes the system info and the per-CPU counter tracks of a `nr_cpus`-CPU run at once.
    pub fn new(out: W, nr_cpus: usize) -> Self {
        let mut w = PerfettoWriter {
            out,
            error: None,
            comms: BTreeMap::new(),
            lock_names: BTreeMap::new(),
            bundles: vec![Vec::new(); nr_cpus],
            proxy_tracks: BTreeSet::new(),
            rqs: vec![
                RqCounters {
                    donor_prio: 120,
                    ..RqCounters::default()
                };
                nr_cpus
            ],
            tasks: BTreeMap::new(),
            next_flow_id: 1,
            buf: Vec::with_capacity(4096),
        };
        w.packet(pb::TracePacket {
            trusted_packet_sequence_id: Some(SEQ_FTRACE),
            first_packet_on_sequence: Some(true),
            sequence_flags: Some(pb::SEQ_INCREMENTAL_STATE_CLEARED),
            data: Some(Data::SystemInfo(pb::SystemInfo {
                utsname: Some(pb::Utsname {
                    sysname: Some("Linux".into()),
                    version: Some("#1 SMP PREEMPT proxysched model".into()),
                    release: Some(UTS_RELEASE.into()),
                    machine: Some("x86_64".into()),
                }),
                num_cpus: Some(nr_cpus as u32),
            })),
            ..Default::default()
        });
        for cpu in CpuId::all(nr_cpus) {
            for (uuid, what) in [
                (nr_running_track(cpu), "nr_running"),
                (donor_prio_track(cpu), "donor prio"),
            ] {
                let first = cpu == CpuId(0) && what == "nr_running";
                w.packet(pb::TracePacket {
                    trusted_packet_sequence_id: Some(SEQ_TRACKS),
                    first_packet_on_sequence: first.then_some(true),
                    sequence_flags: first.then_some(pb::SEQ_INCREMENTAL_STATE_CLEARED),
                    data: Some(Data::TrackDescriptor(pb::TrackDescriptor {
                        uuid: Some(uuid),
                        name: Some(format!("cpu{cpu} {what}")),
                        counter: Some(pb::CounterDescriptor {
                            unit: Some(pb::UNIT_COUNT),
                        }),
                        ..Default::default()
                    })),
                    ..Default::default()
                });
            }
        }
        w
    }

    /// The first write error so far, if any.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// Writes the pending bundles, flushes, and returns the writer or the first error.
    pub fn finish(mut self) -> io::Result<W> {
        for cpu in 0..self.bundles.len() {
            self.flush_bundle(cpu);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Writes one packet as `Trace.packet` (field 1, length-delimited).
    fn packet(&mut self, p: pb::TracePacket) {
        if self.error.is_some() {
            return;
        }
        assert!(
            p.trusted_packet_sequence_id.is_some(),
            "every packet carries a sequence id"
        );
        self.buf.clear();
        prost::encoding::message::encode(1, &p, &mut self.buf);
        if let Err(e) = self.out.write_all(&self.buf) {
            self.error = Some(e);
        }
    }

    fn flush_bundle(&mut self, cpu: usize) {
        if self.bundles[cpu].is_empty() {
            return;
        }
        let event = std::mem::take(&mut self.bundles[cpu]);
        self.packet(pb::TracePacket {
            trusted_packet_sequence_id: Some(SEQ_FTRACE),
            data: Some(Data::FtraceEvents(pb::FtraceEventBundle {
                cpu: Some(cpu as u32),
                event,
            })),
            ..Default::default()
        });
    }

    fn ftrace(&mut self, e: &Event, ev: Fe) {
        let cpu = e.cpu.idx();
        assert!(
            cpu < self.bundles.len(),
            "event on CPU {cpu} of a {}-CPU trace",
            self.bundles.len()
        );
        self.bundles[cpu].push(pb::FtraceEvent {
            timestamp: Some(e.time_ns),
            pid: Some(e.owner),
            event: Some(ev),
        });
        if self.bundles[cpu].len() >= BUNDLE_EVENTS {
            self.flush_bundle(cpu);
        }
    }

    fn track_event(&mut self, time_ns: u64, te: pb::TrackEvent) {
        self.packet(pb::TracePacket {
            timestamp: Some(time_ns),
            trusted_packet_sequence_id: Some(SEQ_TRACKS),
            sequence_flags: Some(pb::SEQ_NEEDS_INCREMENTAL_STATE),
            data: Some(Data::TrackEvent(te)),
            ..Default::default()
        });
    }

    fn descriptor(&mut self, d: pb::TrackDescriptor) {
        self.packet(pb::TracePacket {
            trusted_packet_sequence_id: Some(SEQ_TRACKS),
            data: Some(Data::TrackDescriptor(d)),
            ..Default::default()
        });
    }

    /// A comm as the ftrace payload prints it (pid 0 is the per-CPU `swapper/N`).
    fn comm(&self, pid: Pid, cpu: CpuId) -> String {
        if pid == 0 {
            return format!("swapper/{cpu}");
        }
        self.comms
            .get(&pid)
            .map_or_else(|| "<...>".to_string(), Clone::clone)
    }

    fn wakeup(&self, t: &TaskRef, target_cpu: CpuId, cpu: CpuId) -> pb::SchedWakeupFtraceEvent {
        pb::SchedWakeupFtraceEvent {
            comm: Some(self.comm(t.pid, cpu)),
            pid: Some(t.pid as i32),
            prio: Some(t.prio),
            target_cpu: Some(target_cpu.0 as i32),
        }
    }

    fn process_exit(&self, t: &TaskRef, cpu: CpuId) -> pb::SchedProcessExitFtraceEvent {
        pb::SchedProcessExitFtraceEvent {
            comm: Some(self.comm(t.pid, cpu)),
            pid: Some(t.pid as i32),
            tgid: Some(t.pid as i32),
            prio: Some(t.prio),
        }
    }

    /// Sets a task's run state and CPU, moving it between the `nr_running` counts.
    fn set_task(&mut self, pid: Pid, runnable: bool, cpu: CpuId) {
        if pid == 0 {
            return;
        }
        let old = self.tasks.insert(pid, (runnable, cpu));
        if let Some((true, old_cpu)) = old {
            self.rqs[old_cpu.idx()].nr_running -= 1;
            assert!(self.rqs[old_cpu.idx()].nr_running >= 0, "nr_running below zero");
        }
        if runnable {
            self.rqs[cpu.idx()].nr_running += 1;
        }
    }

    fn set_donor(&mut self, cpu: CpuId, t: TaskRef) {
        let rq = &mut self.rqs[cpu.idx()];
        rq.donor = t.pid;
        rq.donor_prio = i64::from(t.prio);
    }

    /// Writes the counters whose values changed (at `time_ns`).
    fn emit_counters(&mut self, time_ns: u64) {
        for cpu in 0..self.rqs.len() {
            let rq = self.rqs[cpu].clone();
            if rq.emitted_nr != Some(rq.nr_running) {
                self.rqs[cpu].emitted_nr = Some(rq.nr_running);
                self.track_event(
                    time_ns,
                    pb::TrackEvent {
                        r#type: Some(pb::TYPE_COUNTER),
                        track_uuid: Some(nr_running_track(CpuId(cpu as u32))),
                        counter_value: Some(rq.nr_running),
                        ..Default::default()
                    },
                );
            }
            if rq.emitted_prio != Some(rq.donor_prio) {
                self.rqs[cpu].emitted_prio = Some(rq.donor_prio);
                self.track_event(
                    time_ns,
                    pb::TrackEvent {
                        r#type: Some(pb::TYPE_COUNTER),
                        track_uuid: Some(donor_prio_track(CpuId(cpu as u32))),
                        counter_value: Some(rq.donor_prio),
                        ..Default::default()
                    },
                );
            }
        }
    }

    fn slice(ty: i32, track: u64, name: Option<String>) -> pb::TrackEvent {
        pb::TrackEvent {
            r#type: Some(ty),
            track_uuid: Some(track),
            name,
            ..Default::default()
        }
    }

    /// One record: its ftrace event, its track events, and the counters it moves. The kinds
    /// with more than a line of work have a function each below, named after the record.
    fn handle(&mut self, e: &Event) {
        let cpu = e.cpu;
        match e.kind {
            EventKind::TaskNewtask {
                pid, comm, kthread, ..
            } => self.task_newtask(e, pid, comm.as_str(), kthread),
            EventKind::SchedSwitch {
                prev,
                prev_state,
                next,
            } => self.sched_switch(e, prev, prev_state, next),
            EventKind::SchedWaking { task, target_cpu } => {
                let ev = self.wakeup(&task, target_cpu, cpu);
                self.ftrace(e, Fe::SchedWaking(ev));
            }
            EventKind::SchedWakeup { task, target_cpu } => {
                let ev = self.wakeup(&task, target_cpu, cpu);
                self.sched_wakeup(e, Fe::SchedWakeup(ev), task.pid, target_cpu);
            }
            EventKind::SchedWakeupNew { task, target_cpu } => {
                let ev = self.wakeup(&task, target_cpu, cpu);
                self.sched_wakeup(e, Fe::SchedWakeupNew(ev), task.pid, target_cpu);
            }
            EventKind::SchedMigrateTask {
                task,
                orig_cpu,
                dest_cpu,
            } => self.sched_migrate_task(e, task, orig_cpu, dest_cpu),
            EventKind::SchedProcessExit { task } => {
                let ev = self.process_exit(&task, cpu);
                self.ftrace(e, Fe::SchedProcessExit(ev));
            }
            EventKind::SchedPiSetprio {
                task,
                oldprio,
                newprio,
            } => self.sched_pi_setprio(e, task, oldprio, newprio),
            EventKind::LockInit { lock, name } => {
                self.lock_names.insert(lock_addr(lock), name.as_str().to_string());
            }
            EventKind::LockContended { pid, lock } => {
                let name = format!(
                    "lock_wait {}",
                    self.lock_names.get(&lock_addr(lock)).map_or("?", String::as_str)
                );
                let te = Self::slice(pb::TYPE_SLICE_BEGIN, thread_track(pid), Some(name));
                self.track_event(e.time_ns, te);
            }
            EventKind::LockAcquired { pid, .. } | EventKind::LockInterrupted { pid, .. } => {
                let te = Self::slice(pb::TYPE_SLICE_END, thread_track(pid), None);
                self.track_event(e.time_ns, te);
            }
            EventKind::ProxyBegin { donor, owner } => self.proxy_begin(e, donor, owner),
            EventKind::ProxyEnd { owner, .. } => {
                let te = Self::slice(pb::TYPE_SLICE_END, proxy_track(owner.pid), None);
                self.track_event(e.time_ns, te);
            }
            // Printed only in the text formats (see the module doc), or model-only records.
            EventKind::SchedSetattr { .. }
            | EventKind::IpiSendCpu { .. }
            | EventKind::ContentionBegin { .. }
            | EventKind::ContentionEnd { .. }
            | EventKind::ProxyPick { .. }
            | EventKind::ProxyMigrate { .. }
            | EventKind::ReturnMigrate { .. }
            | EventKind::ProxyPark { .. }
            | EventKind::UserMark { .. }
            | EventKind::SignalGenerate { .. }
            | EventKind::WorkqueueQueueWork { .. }
            | EventKind::WorkqueueExecuteStart { .. }
            | EventKind::WorkqueueExecuteEnd { .. }
            | EventKind::DlThrottle { .. }
            | EventKind::DlDeadlineMiss { .. } => {}
        }
    }

    /// `task_newtask`: learns the comm, and describes the task's process and thread tracks.
    fn task_newtask(&mut self, e: &Event, pid: Pid, comm: &str, kthread: bool) {
        self.comms.insert(pid, comm.to_string());
        self.ftrace(
            e,
            Fe::TaskNewtask(pb::TaskNewtaskFtraceEvent {
                pid: Some(pid as i32),
                comm: Some(comm.to_string()),
                clone_flags: Some(0),
                oom_score_adj: Some(0),
            }),
        );
        // Each model task is its own thread group: one process, one thread.
        let name = comm.to_string();
        self.descriptor(pb::TrackDescriptor {
            uuid: Some(process_track(pid)),
            process: Some(pb::ProcessDescriptor {
                pid: Some(pid as i32),
                process_name: Some(if kthread {
                    format!("[{name}]")
                } else {
                    name.clone()
                }),
            }),
            ..Default::default()
        });
        self.descriptor(pb::TrackDescriptor {
            uuid: Some(thread_track(pid)),
            parent_uuid: Some(process_track(pid)),
            thread: Some(pb::ThreadDescriptor {
                pid: Some(pid as i32),
                tid: Some(i64::from(pid)),
                thread_name: Some(name),
            }),
            ..Default::default()
        });
    }

    /// `sched_switch`: `prev` stays runnable if it was preempted, `next` runs and is the
    /// CPU's donor until a proxy slice says otherwise.
    fn sched_switch(&mut self, e: &Event, prev: TaskRef, prev_state: PrevState, next: TaskRef) {
        let cpu = e.cpu;
        let ev = pb::SchedSwitchFtraceEvent {
            prev_comm: Some(self.comm(prev.pid, cpu)),
            prev_pid: Some(prev.pid as i32),
            prev_prio: Some(prev.prio),
            prev_state: Some(raw_prev_state(prev_state)),
            next_comm: Some(self.comm(next.pid, cpu)),
            next_pid: Some(next.pid as i32),
            next_prio: Some(next.prio),
        };
        self.ftrace(e, Fe::SchedSwitch(ev));
        let still = matches!(prev_state, PrevState::Preempted | PrevState::Running);
        self.set_task(prev.pid, still, cpu);
        self.set_task(next.pid, true, cpu);
        self.set_donor(cpu, next);
        self.emit_counters(e.time_ns);
    }

    /// `sched_wakeup` and `sched_wakeup_new` (the ftrace event `ev`): `pid` becomes runnable
    /// on `target_cpu`.
    fn sched_wakeup(&mut self, e: &Event, ev: Fe, pid: Pid, target_cpu: CpuId) {
        self.ftrace(e, ev);
        self.set_task(pid, true, target_cpu);
        self.emit_counters(e.time_ns);
    }

    /// `sched_migrate_task`: the task's runnable count moves to `dest_cpu`.
    fn sched_migrate_task(&mut self, e: &Event, task: TaskRef, orig_cpu: CpuId, dest_cpu: CpuId) {
        let ev = pb::SchedMigrateTaskFtraceEvent {
            comm: Some(self.comm(task.pid, e.cpu)),
            pid: Some(task.pid as i32),
            prio: Some(task.prio),
            orig_cpu: Some(orig_cpu.0 as i32),
            dest_cpu: Some(dest_cpu.0 as i32),
        };
        self.ftrace(e, Fe::SchedMigrateTask(ev));
        let runnable = self.tasks.get(&task.pid).is_some_and(|&(r, _)| r);
        self.set_task(task.pid, runnable, dest_cpu);
        self.emit_counters(e.time_ns);
    }

    /// `sched_pi_setprio`: a CPU whose donor is the task shows its new priority.
    fn sched_pi_setprio(&mut self, e: &Event, task: TaskRef, oldprio: i32, newprio: i32) {
        let ev = pb::SchedPiSetprioFtraceEvent {
            comm: Some(self.comm(task.pid, e.cpu)),
            newprio: Some(newprio),
            oldprio: Some(oldprio),
            pid: Some(task.pid as i32),
        };
        self.ftrace(e, Fe::SchedPiSetprio(ev));
        for rq in &mut self.rqs {
            if rq.donor == task.pid && task.pid != 0 {
                rq.donor_prio = i64::from(newprio);
            }
        }
        self.emit_counters(e.time_ns);
    }

    /// A proxy slice begins: the owner's proxy track (described at its first slice) gets a
    /// slice joined by a flow to an instant on the donor's thread, and the donor becomes the
    /// CPU's donor.
    fn proxy_begin(&mut self, e: &Event, donor: TaskRef, owner: TaskRef) {
        let cpu = e.cpu;
        if self.proxy_tracks.insert(owner.pid) {
            self.descriptor(pb::TrackDescriptor {
                uuid: Some(proxy_track(owner.pid)),
                parent_uuid: Some(thread_track(owner.pid)),
                name: Some("proxy execution".into()),
                ..Default::default()
            });
        }
        let flow = self.next_flow_id;
        self.next_flow_id += 1;
        let mut lend = Self::slice(
            pb::TYPE_INSTANT,
            thread_track(donor.pid),
            Some(format!("donates to {}-{}", self.comm(owner.pid, cpu), owner.pid)),
        );
        lend.flow_ids.push(flow);
        self.track_event(e.time_ns, lend);
        let mut run = Self::slice(
            pb::TYPE_SLICE_BEGIN,
            proxy_track(owner.pid),
            Some(format!("proxy for {}-{}", self.comm(donor.pid, cpu), donor.pid)),
        );
        run.terminating_flow_ids.push(flow);
        self.track_event(e.time_ns, run);
        self.set_donor(cpu, donor);
        self.emit_counters(e.time_ns);
    }
}

impl<W: io::Write> EventSink for PerfettoWriter<W> {
    fn event(&mut self, e: &Event) {
        if self.error.is_some() {
            return;
        }
        self.handle(e);
    }
}

/// Decodes a whole `.pftrace` file (for tests and tools).
pub fn decode(bytes: &[u8]) -> Result<pb::Trace, prost::DecodeError> {
    pb::Trace::decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::locking::mutex::MutexId;
    use kernel::tracepoints::{Comm, LockName, TraceFlags};
    use uapi::Policy;

    fn ev(time_ns: u64, cpu: CpuId, owner: Pid, kind: EventKind) -> Event {
        Event {
            time_ns,
            cpu,
            owner,
            flags: TraceFlags::default(),
            kind,
        }
    }

    fn newtask(pid: Pid, name: &str) -> EventKind {
        EventKind::TaskNewtask {
            pid,
            comm: Comm::new(name),
            policy: Policy::Normal,
            prio: 120,
            nice: 0,
            kthread: false,
        }
    }

    fn t(pid: Pid, prio: i32) -> TaskRef {
        TaskRef { pid, prio }
    }

    fn write(events: &[Event], nr_cpus: usize) -> pb::Trace {
        let mut w = PerfettoWriter::new(Vec::new(), nr_cpus);
        for e in events {
            w.event(e);
        }
        decode(&w.finish().expect("no io error")).expect("decodes")
    }

    /// (track uuid, value) of every counter event, in order.
    fn counters(trace: &pb::Trace) -> Vec<(u64, i64)> {
        trace
            .packet
            .iter()
            .filter_map(|p| match &p.data {
                Some(Data::TrackEvent(te)) if te.r#type == Some(pb::TYPE_COUNTER) => {
                    Some((te.track_uuid.expect("track"), te.counter_value.expect("value")))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn prev_state_bits_are_the_kernels() {
        assert_eq!(raw_prev_state(PrevState::Preempted), 256);
        assert_eq!(raw_prev_state(PrevState::Running), 0);
        assert_eq!(raw_prev_state(PrevState::Sleeping), 1);
        assert_eq!(raw_prev_state(PrevState::DiskSleep), 2);
        assert_eq!(raw_prev_state(PrevState::Dead), 16);
        assert_eq!(raw_prev_state(PrevState::Zombie), 32);
        assert_eq!(raw_prev_state(PrevState::Idle), 128);
    }

    #[test]
    fn nr_running_follows_wakeups_migrations_and_sleeps() {
        let a = t(1001, 120);
        let events = [
            ev(0, CpuId(0), 0, newtask(1001, "a")),
            ev(
                10,
                CpuId(0),
                0,
                EventKind::SchedWakeupNew {
                    task: a,
                    target_cpu: CpuId(0),
                },
            ),
            ev(
                20,
                CpuId(0),
                0,
                EventKind::SchedSwitch {
                    prev: t(0, 120),
                    prev_state: PrevState::Running,
                    next: a,
                },
            ),
            // Preempted: still runnable.
            ev(
                30,
                CpuId(0),
                1001,
                EventKind::SchedSwitch {
                    prev: a,
                    prev_state: PrevState::Preempted,
                    next: t(0, 120),
                },
            ),
            ev(
                40,
                CpuId(0),
                0,
                EventKind::SchedMigrateTask {
                    task: a,
                    orig_cpu: CpuId(0),
                    dest_cpu: CpuId(1),
                },
            ),
            ev(
                50,
                CpuId(1),
                0,
                EventKind::SchedSwitch {
                    prev: t(0, 120),
                    prev_state: PrevState::Running,
                    next: a,
                },
            ),
            ev(
                60,
                CpuId(1),
                1001,
                EventKind::SchedSwitch {
                    prev: a,
                    prev_state: PrevState::Sleeping,
                    next: t(0, 120),
                },
            ),
        ];
        let c = counters(&write(&events, 2));
        let nr0: Vec<i64> = c
            .iter()
            .filter(|(u, _)| *u == nr_running_track(CpuId(0)))
            .map(|x| x.1)
            .collect();
        let nr1: Vec<i64> = c
            .iter()
            .filter(|(u, _)| *u == nr_running_track(CpuId(1)))
            .map(|x| x.1)
            .collect();
        assert_eq!(nr0, vec![1, 0], "woken on CPU 0, migrated away");
        assert_eq!(nr1, vec![0, 1, 0], "arrives on CPU 1, then sleeps");
        let prio0: Vec<i64> = c
            .iter()
            .filter(|(u, _)| *u == donor_prio_track(CpuId(0)))
            .map(|x| x.1)
            .collect();
        assert_eq!(prio0, vec![120], "idle and a fair task share prio 120");
    }

    #[test]
    fn proxy_slice_gets_a_flow_from_the_donors_lock_wait_and_the_donor_prio() {
        let owner = t(1001, 120);
        let donor = t(1002, 89);
        let events = [
            ev(0, CpuId(0), 0, newtask(1001, "owner")),
            ev(0, CpuId(0), 0, newtask(1002, "donor")),
            ev(
                0,
                CpuId(0),
                0,
                EventKind::LockInit {
                    lock: LockName::Mutex(MutexId(0)),
                    name: Comm::new("M"),
                },
            ),
            ev(
                5,
                CpuId(0),
                1002,
                EventKind::LockContended {
                    pid: 1002,
                    lock: LockName::Mutex(MutexId(0)),
                },
            ),
            ev(
                6,
                CpuId(0),
                1002,
                EventKind::SchedSwitch {
                    prev: donor,
                    prev_state: PrevState::DiskSleep,
                    next: owner,
                },
            ),
            ev(6, CpuId(0), 1001, EventKind::ProxyBegin { donor, owner }),
            ev(9, CpuId(0), 1001, EventKind::ProxyEnd { donor, owner }),
            ev(
                9,
                CpuId(0),
                1001,
                EventKind::LockAcquired {
                    pid: 1002,
                    lock: LockName::Mutex(MutexId(0)),
                },
            ),
        ];
        let trace = write(&events, 1);
        assert!(trace
            .packet
            .iter()
            .all(|p| p.trusted_packet_sequence_id.is_some()));
        let tes: Vec<&pb::TrackEvent> = trace
            .packet
            .iter()
            .filter_map(|p| match &p.data {
                Some(Data::TrackEvent(te)) if te.r#type != Some(pb::TYPE_COUNTER) => Some(te),
                _ => None,
            })
            .collect();
        let kinds: Vec<(i32, u64, Option<&str>)> = tes
            .iter()
            .map(|te| {
                (
                    te.r#type.expect("type"),
                    te.track_uuid.expect("uuid"),
                    te.name.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (pb::TYPE_SLICE_BEGIN, thread_track(1002), Some("lock_wait M")),
                (
                    pb::TYPE_INSTANT,
                    thread_track(1002),
                    Some("donates to owner-1001")
                ),
                (
                    pb::TYPE_SLICE_BEGIN,
                    proxy_track(1001),
                    Some("proxy for donor-1002")
                ),
                (pb::TYPE_SLICE_END, proxy_track(1001), None),
                (pb::TYPE_SLICE_END, thread_track(1002), None),
            ]
        );
        assert_eq!(tes[1].flow_ids.len(), 1);
        assert_eq!(tes[1].flow_ids, tes[2].terminating_flow_ids);
        // While proxying, CPU 0 runs on the donor's scheduling context: prio 89.
        let prio: Vec<i64> = counters(&trace)
            .into_iter()
            .filter(|(u, _)| *u == donor_prio_track(CpuId(0)))
            .map(|x| x.1)
            .collect();
        assert_eq!(prio, vec![120, 89]);
    }
}
