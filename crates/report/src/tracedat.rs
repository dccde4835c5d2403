//! trace-cmd's `trace.dat` (`--trace FILE.dat`), file format version 6: what `trace-cmd
//! report` and KernelShark read.
//!
//! Format: trace-cmd.dat.v6(5). The file is the header (magic, version "6", little endian,
//! 8-byte longs, 4096-byte pages), the ring buffer's `header_page` and `header_event`
//! descriptions, the event format files (`events/ftrace/print` in the ftrace section;
//! `sched`, `task`, `ipi`, `lock` and `workqueue` systems after it), a kallsyms section, an
//! empty printk section, the saved cmdlines (pid → comm), the CPU count, and then
//! `flyrecord`: one (offset, size) pair per CPU pointing at that CPU's ring-buffer pages.
//!
//! Each page is what the kernel's ring buffer holds (Linux: kernel/trace/ring_buffer.c): a
//! `u64` base timestamp, a `u64` commit (bytes of data used) and 4080 bytes of events. An
//! event is a 32-bit header (`type_len` in bits 0–4, `time_delta` from the previous event in
//! bits 5–31), then the record: `type_len` 1–28 gives the record length in 4-byte words, 0
//! puts the length (plus 4) in the next word for longer records; a delta that does not fit
//! in 27 bits is preceded by a TIME_EXTEND (`type_len` 30) event carrying the upper bits.
//! A record is the tracepoint's `struct trace_event_raw_*`: the common header (`common_type`
//! = the event id, `common_flags`, `common_preempt_count`, `common_pid`) and the fields at the
//! offsets its format file states.
//!
//! The format files are written as the kernel's tracefs prints them (Linux:
//! kernel/trace/trace_events.c f_show()), with the fields of include/trace/events/sched.h,
//! task.h, ipi.h, lock.h and workqueue.h of a 6.x kernel and their `print fmt`s with the
//! kernel's constants already expanded, so `trace-cmd report` (libtraceevent) prints each
//! record as the ftrace text trace prints its line.
//!
//! Symbols: the records that hold code addresses (`print`'s `ip`, `ipi_send_cpu`'s
//! callsite/callback, the work functions) point into a small fake kallsyms that this writer
//! writes, so `%ps` prints `tracing_mark_write`, `resched_curr` or the work item's name.
//!
//! Deviation: `%pS` in `ipi_send_cpu` prints `resched_curr+0x0` where the text trace prints
//! the bare symbol; the event ids are ours (stable, but not those of any particular kernel);
//! the kernel appends a newline to a `trace_marker` write, which we leave out so that
//! `trace-cmd report` prints one line per marker. Records that no Linux tracepoint prints
//! (see docs/trace-format.md) are not written, as in the text trace.
//!
//! The writer buffers the per-CPU pages in memory until [`TraceDatWriter::finish`], because
//! the header (the cmdlines, the kallsyms and each CPU's offset) precedes the data: memory use
//! is about the size of the file.

use std::collections::BTreeMap;
use std::io;

use kernel::tracepoints::{Event, EventKind, EventSink, IpiReason, Pid, PrevState, TaskRef, TraceFlags};
use sim::CpuId;

use crate::ftrace::{ipi_symbols, lock_addr, work_addr};
use crate::perfetto::raw_prev_state;

/// The target's page size (x86-64).
pub const PAGE_SIZE: usize = 4096;
/// Bytes of a ring-buffer page before the events: `u64 timestamp`, `u64 commit`.
const PAGE_HEADER: usize = 16;
/// Event data per page.
const PAGE_DATA: usize = PAGE_SIZE - PAGE_HEADER;
/// Largest record encoded with its length in `type_len` (28 words).
const MAX_SMALL_DATA: usize = 28 * 4;
const TYPE_TIME_EXTEND: u32 = 30;
const TIME_DELTA_BITS: u32 = 27;

/// Kernel `TRACE_FLAG_*` bits of `common_flags` (kernel/trace/trace.h).
const TRACE_FLAG_IRQS_OFF: u8 = 0x01;
const TRACE_FLAG_NEED_RESCHED: u8 = 0x04;
const TRACE_FLAG_HARDIRQ: u8 = 0x08;

/// `events/header_page` of a 64-bit kernel (Linux: ring_buffer_print_page_header()).
const HEADER_PAGE: &str = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n";

/// `events/header_event` (Linux: ring_buffer_print_entry_header()).
const HEADER_EVENT: &str = "# compressed entry header\n\
\ttype_len    :    5 bits\n\
\ttime_delta  :   27 bits\n\
\tarray       :   32 bits\n\
\n\
\tpadding     : type == 29\n\
\ttime_extend : type == 30\n\
\ttime_stamp : type == 31\n\
\tdata max type_len  == 28\n";

/// The C types of the fields we declare: (size, alignment, signed).
#[derive(Clone, Copy)]
enum Ty {
    Comm,
    Int,
    UInt,
    Long,
    ULong,
    Ptr,
    Short,
    Bool,
    DataLoc,
    FlexChar,
}

impl Ty {
    fn size_align_signed(self) -> (usize, usize, bool) {
        match self {
            Ty::Comm => (16, 1, false),
            Ty::Int => (4, 4, true),
            Ty::UInt => (4, 4, false),
            Ty::Long => (8, 8, true),
            Ty::ULong => (8, 8, false),
            Ty::Ptr => (8, 8, false),
            Ty::Short => (2, 2, true),
            Ty::Bool => (1, 1, false),
            Ty::DataLoc => (4, 4, false),
            Ty::FlexChar => (0, 1, true),
        }
    }
}

/// One tracepoint: its system, name, id, fields (C declaration, type) and `print fmt`.
struct EventFormat {
    system: &'static str,
    name: &'static str,
    id: u16,
    fields: &'static [(&'static str, Ty)],
    print_fmt: &'static str,
}

/// `prev_state` flags of a 6.x kernel with TASK_REPORT_MAX (0x100) expanded, as tracefs shows.
const SWITCH_FMT: &str = "\"prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s \
next_pid=%d next_prio=%d\", REC->prev_comm, REC->prev_pid, REC->prev_prio, (REC->prev_state & \
((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | \
0x00000040) + 1) << 1) - 1)) ? __print_flags(REC->prev_state & ((((0x00000000 | 0x00000001 | \
0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1), \
\"|\", { 0x00000001, \"S\" }, { 0x00000002, \"D\" }, { 0x00000004, \"T\" }, { 0x00000008, \"t\" }, \
{ 0x00000010, \"X\" }, { 0x00000020, \"Z\" }, { 0x00000040, \"P\" }, { 0x00000080, \"I\" }) : \"R\", \
REC->prev_state & (((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | \
0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) ? \"+\" : \"\", REC->next_comm, REC->next_pid, \
REC->next_prio";

const WAKEUP_FIELDS: &[(&str, Ty)] = &[
    ("char comm[16]", Ty::Comm),
    ("pid_t pid", Ty::Int),
    ("int prio", Ty::Int),
    ("int target_cpu", Ty::Int),
];
const WAKEUP_FMT: &str =
    "\"comm=%s pid=%d prio=%d target_cpu=%03d\", REC->comm, REC->pid, REC->prio, REC->target_cpu";
const WORK_FIELDS: &[(&str, Ty)] = &[("void * work", Ty::Ptr), ("void * function", Ty::Ptr)];
const WORK_FMT: &str = "\"work struct %p: function %ps\", REC->work, REC->function";

const PRINT_ID: u16 = 5;
const EV_SWITCH: usize = 1;
const EV_WAKING: usize = 2;
const EV_WAKEUP: usize = 3;
const EV_WAKEUP_NEW: usize = 4;
const EV_MIGRATE: usize = 5;
const EV_EXIT: usize = 6;
const EV_PI: usize = 7;
const EV_NEWTASK: usize = 8;
const EV_IPI: usize = 9;
const EV_CBEGIN: usize = 10;
const EV_CEND: usize = 11;
const EV_WQ_QUEUE: usize = 12;
const EV_WQ_START: usize = 13;
const EV_WQ_END: usize = 14;

/// Every event we write, `print` first (the ftrace section), then by system.
const FORMATS: &[EventFormat] = &[
    EventFormat {
        system: "ftrace",
        name: "print",
        id: PRINT_ID,
        fields: &[("unsigned long ip", Ty::ULong), ("char buf[]", Ty::FlexChar)],
        print_fmt: "\"%ps: %s\", (void *)REC->ip, REC->buf",
    },
    EventFormat {
        system: "sched",
        name: "sched_switch",
        id: 316,
        fields: &[
            ("char prev_comm[16]", Ty::Comm),
            ("pid_t prev_pid", Ty::Int),
            ("int prev_prio", Ty::Int),
            ("long prev_state", Ty::Long),
            ("char next_comm[16]", Ty::Comm),
            ("pid_t next_pid", Ty::Int),
            ("int next_prio", Ty::Int),
        ],
        print_fmt: SWITCH_FMT,
    },
    EventFormat {
        system: "sched",
        name: "sched_waking",
        id: 319,
        fields: WAKEUP_FIELDS,
        print_fmt: WAKEUP_FMT,
    },
    EventFormat {
        system: "sched",
        name: "sched_wakeup",
        id: 318,
        fields: WAKEUP_FIELDS,
        print_fmt: WAKEUP_FMT,
    },
    EventFormat {
        system: "sched",
        name: "sched_wakeup_new",
        id: 317,
        fields: WAKEUP_FIELDS,
        print_fmt: WAKEUP_FMT,
    },
    EventFormat {
        system: "sched",
        name: "sched_migrate_task",
        id: 315,
        fields: &[
            ("char comm[16]", Ty::Comm),
            ("pid_t pid", Ty::Int),
            ("int prio", Ty::Int),
            ("int orig_cpu", Ty::Int),
            ("int dest_cpu", Ty::Int),
        ],
        print_fmt: "\"comm=%s pid=%d prio=%d orig_cpu=%d dest_cpu=%d\", REC->comm, REC->pid, \
REC->prio, REC->orig_cpu, REC->dest_cpu",
    },
    EventFormat {
        system: "sched",
        name: "sched_process_exit",
        id: 312,
        fields: &[
            ("char comm[16]", Ty::Comm),
            ("pid_t pid", Ty::Int),
            ("int prio", Ty::Int),
            ("bool group_dead", Ty::Bool),
        ],
        print_fmt: "\"comm=%s pid=%d prio=%d group_dead=%s\", REC->comm, REC->pid, REC->prio, \
REC->group_dead ? \"true\" : \"false\"",
    },
    EventFormat {
        system: "sched",
        name: "sched_pi_setprio",
        id: 303,
        fields: &[
            ("char comm[16]", Ty::Comm),
            ("pid_t pid", Ty::Int),
            ("int oldprio", Ty::Int),
            ("int newprio", Ty::Int),
        ],
        print_fmt: "\"comm=%s pid=%d oldprio=%d newprio=%d\", REC->comm, REC->pid, REC->oldprio, \
REC->newprio",
    },
    EventFormat {
        system: "task",
        name: "task_newtask",
        id: 140,
        fields: &[
            ("pid_t pid", Ty::Int),
            ("char comm[16]", Ty::Comm),
            ("unsigned long clone_flags", Ty::ULong),
            ("short oom_score_adj", Ty::Short),
        ],
        print_fmt: "\"pid=%d comm=%s clone_flags=%lx oom_score_adj=%hd\", REC->pid, REC->comm, \
REC->clone_flags, REC->oom_score_adj",
    },
    EventFormat {
        system: "ipi",
        name: "ipi_send_cpu",
        id: 590,
        fields: &[
            ("unsigned int cpu", Ty::UInt),
            ("void * callsite", Ty::Ptr),
            ("void * callback", Ty::Ptr),
        ],
        print_fmt: "\"cpu=%u callsite=%pS callback=%pS\", REC->cpu, REC->callsite, REC->callback",
    },
    EventFormat {
        system: "lock",
        name: "contention_begin",
        id: 560,
        fields: &[("void * lock_addr", Ty::Ptr), ("unsigned int flags", Ty::UInt)],
        print_fmt: "\"%p (flags=%s)\", REC->lock_addr, __print_flags(REC->flags, \"|\", \
{ (1U << 0), \"SPIN\" }, { (1U << 1), \"READ\" }, { (1U << 2), \"WRITE\" }, { (1U << 3), \"RT\" }, \
{ (1U << 4), \"PERCPU\" }, { (1U << 5), \"MUTEX\" })",
    },
    EventFormat {
        system: "lock",
        name: "contention_end",
        id: 561,
        fields: &[("void * lock_addr", Ty::Ptr), ("int ret", Ty::Int)],
        print_fmt: "\"%p (ret=%d)\", REC->lock_addr, REC->ret",
    },
    EventFormat {
        system: "workqueue",
        name: "workqueue_queue_work",
        id: 470,
        fields: &[
            ("void * work", Ty::Ptr),
            ("void * function", Ty::Ptr),
            ("__data_loc char[] workqueue", Ty::DataLoc),
            ("int req_cpu", Ty::Int),
            ("int cpu", Ty::Int),
        ],
        print_fmt: "\"work struct=%p function=%ps workqueue=%s req_cpu=%d cpu=%d\", REC->work, \
REC->function, __get_str(workqueue), REC->req_cpu, REC->cpu",
    },
    EventFormat {
        system: "workqueue",
        name: "workqueue_execute_start",
        id: 468,
        fields: WORK_FIELDS,
        print_fmt: WORK_FMT,
    },
    EventFormat {
        system: "workqueue",
        name: "workqueue_execute_end",
        id: 467,
        fields: WORK_FIELDS,
        print_fmt: WORK_FMT,
    },
];

/// Field offsets of an event and its fixed record size (C layout after the 8-byte header).
fn layout(f: &EventFormat) -> (Vec<usize>, usize) {
    let mut off: usize = 8;
    let mut max_align: usize = 4;
    let mut offs = Vec::with_capacity(f.fields.len());
    for &(_, ty) in f.fields {
        let (size, align, _) = ty.size_align_signed();
        off = off.div_ceil(align) * align;
        offs.push(off);
        off += size;
        max_align = max_align.max(align);
    }
    (offs, off.div_ceil(max_align) * max_align)
}

/// The text of `events/<system>/<name>/format` (Linux: trace_events.c f_show()).
fn format_file(f: &EventFormat) -> String {
    let mut s = format!("name: {}\nID: {}\nformat:\n", f.name, f.id);
    s += "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n";
    s += "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n";
    s += "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n";
    s += "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n";
    let (offs, _) = layout(f);
    for (&(decl, ty), off) in f.fields.iter().zip(offs) {
        let (size, _, signed) = ty.size_align_signed();
        s += &format!(
            "\tfield:{decl};\toffset:{off};\tsize:{size};\tsigned:{};\n",
            u8::from(signed)
        );
    }
    s += &format!("\nprint fmt: {}\n", f.print_fmt);
    s
}

/// One record being built: the fixed part at the format's offsets, then dynamic data.
struct Record {
    bytes: Vec<u8>,
    offs: Vec<usize>,
}

impl Record {
    /// The common header of event `ev` (index into [`FORMATS`]) written by `pid`.
    ///
    /// Linux: kernel/trace/trace.c tracing_gen_ctx_irq_test() (the `common_flags` bits and
    /// the preempt count in the low nibble of `common_preempt_count`) and
    /// tracing_generic_entry_update().
    /// Deviation: the migrate-disable nibble is always 0 (not modelled).
    fn new(ev: usize, flags: TraceFlags, pid: Pid) -> Record {
        let f = &FORMATS[ev];
        let (offs, size) = layout(f);
        let mut bytes = vec![0u8; size];
        bytes[0..2].copy_from_slice(&f.id.to_le_bytes());
        let mut cf = 0u8;
        if flags.irqs_off {
            cf |= TRACE_FLAG_IRQS_OFF;
        }
        if flags.need_resched {
            cf |= TRACE_FLAG_NEED_RESCHED;
        }
        if flags.hardirq {
            cf |= TRACE_FLAG_HARDIRQ;
        }
        bytes[2] = cf;
        bytes[3] = flags.preempt_depth.min(15);
        bytes[4..8].copy_from_slice(&(pid as i32).to_le_bytes());
        Record { bytes, offs }
    }

    fn put(&mut self, field: usize, v: &[u8]) -> &mut Self {
        let o = self.offs[field];
        self.bytes[o..o + v.len()].copy_from_slice(v);
        self
    }
    fn int(&mut self, field: usize, v: i32) -> &mut Self {
        self.put(field, &v.to_le_bytes())
    }
    fn u64(&mut self, field: usize, v: u64) -> &mut Self {
        self.put(field, &v.to_le_bytes())
    }
    fn comm(&mut self, field: usize, c: &str) -> &mut Self {
        let b = c.as_bytes();
        let n = b.len().min(15);
        self.put(field, &b[..n])
    }
    /// A `__data_loc` string: NUL-terminated after the fixed part; the field holds
    /// `len << 16 | offset`.
    fn data_loc(&mut self, field: usize, s: &str) -> &mut Self {
        let off = self.bytes.len();
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        let len = s.len() + 1;
        self.put(field, &(((len as u32) << 16) | off as u32).to_le_bytes())
    }
}

/// One CPU's ring buffer: finished pages, and the page being filled.
#[derive(Default)]
struct CpuBuffer {
    pages: Vec<u8>,
    data: Vec<u8>,
    page_ts: u64,
    last_ts: u64,
}

impl CpuBuffer {
    fn close_page(&mut self) {
        if self.data.is_empty() {
            return;
        }
        assert!(self.data.len() <= PAGE_DATA, "page overflow");
        self.pages.extend_from_slice(&self.page_ts.to_le_bytes());
        self.pages
            .extend_from_slice(&(self.data.len() as u64).to_le_bytes());
        self.pages.extend_from_slice(&self.data);
        self.pages
            .resize(self.pages.len() + PAGE_DATA - self.data.len(), 0);
        self.data.clear();
    }

    /// Appends one record at `ts` (ns), with a time extend if the delta needs one.
    ///
    /// Linux: kernel/trace/ring_buffer.c rb_calculate_event_length() (4-byte alignment, the
    /// extra length word above 28 words), rb_update_event() (`type_len`/`array[0]`),
    /// rb_add_time_stamp() (TIME_EXTEND for deltas of 2^27 ns and more) and rb_move_tail()
    /// (a record that does not fit starts the next page, whose timestamp is its own).
    /// Deviation: the kernel pads the rest of a page with a PADDING event; we leave the
    /// bytes past `commit` zero, which readers skip by `commit` alone.
    fn push(&mut self, ts: u64, record: &[u8]) {
        let padded = record.len().div_ceil(4) * 4;
        let body = if padded <= MAX_SMALL_DATA && padded > 0 {
            4 + padded
        } else {
            8 + padded
        };
        let mut delta = ts.checked_sub(self.last_ts).expect("per-CPU time is monotone");
        let extend = if delta >> TIME_DELTA_BITS != 0 { 8 } else { 0 };
        if self.data.is_empty() || self.data.len() + extend + body > PAGE_DATA {
            self.close_page();
            self.page_ts = ts;
            delta = 0;
        }
        assert!(body <= PAGE_DATA, "a record larger than a page");
        if delta >> TIME_DELTA_BITS != 0 {
            let low = (delta & ((1 << TIME_DELTA_BITS) - 1)) as u32;
            let high = u32::try_from(delta >> TIME_DELTA_BITS).expect("delta below 2^59 ns");
            self.data
                .extend_from_slice(&(TYPE_TIME_EXTEND | (low << 5)).to_le_bytes());
            self.data.extend_from_slice(&high.to_le_bytes());
            delta = 0;
        }
        let delta = delta as u32;
        if padded <= MAX_SMALL_DATA && padded > 0 {
            let type_len = (padded / 4) as u32;
            self.data
                .extend_from_slice(&(type_len | (delta << 5)).to_le_bytes());
        } else {
            self.data.extend_from_slice(&(delta << 5).to_le_bytes());
            self.data.extend_from_slice(&((padded + 4) as u32).to_le_bytes());
        }
        self.data.extend_from_slice(record);
        self.data.resize(self.data.len() + padded - record.len(), 0);
        self.last_ts = ts;
    }
}

/// Base of the fake kernel text the writer's kallsyms maps.
const KTEXT: u64 = 0xffff_ffff_8100_0000;

/// Writes the event stream as a trace-cmd `trace.dat` (version 6) to `W` on
/// [`TraceDatWriter::finish`].
pub struct TraceDatWriter<W: io::Write> {
    out: W,
    cpus: Vec<CpuBuffer>,
    comms: BTreeMap<Pid, String>,
    lock_names: BTreeMap<u64, String>,
    /// Fake text symbols by name, with their addresses (assigned in order of first use).
    syms: BTreeMap<String, u64>,
}

impl<W: io::Write> TraceDatWriter<W> {
    pub fn new(out: W, nr_cpus: usize) -> Self {
        let mut w = TraceDatWriter {
            out,
            cpus: (0..nr_cpus).map(|_| CpuBuffer::default()).collect(),
            comms: BTreeMap::new(),
            lock_names: BTreeMap::new(),
            syms: BTreeMap::new(),
        };
        w.sym("tracing_mark_write");
        w
    }

    /// The fake address of text symbol `name`.
    fn sym(&mut self, name: &str) -> u64 {
        if let Some(&a) = self.syms.get(name) {
            return a;
        }
        let a = KTEXT + 0x100 * self.syms.len() as u64;
        self.syms.insert(name.to_string(), a);
        a
    }

    fn comm(&self, pid: Pid, cpu: CpuId) -> String {
        if pid == 0 {
            return format!("swapper/{cpu}");
        }
        self.comms
            .get(&pid)
            .map_or_else(|| "<...>".to_string(), Clone::clone)
    }

    fn wakeup(&self, ev: usize, e: &Event, t: TaskRef, target_cpu: CpuId) -> Vec<u8> {
        let mut r = Record::new(ev, e.flags, e.owner);
        r.comm(0, &self.comm(t.pid, e.cpu))
            .int(1, t.pid as i32)
            .int(2, t.prio)
            .int(3, target_cpu.0 as i32);
        r.bytes
    }

    /// The record of `e`, or None for records no Linux tracepoint prints. The records with
    /// more than one field have a function each below, named after the tracepoint.
    fn record(&mut self, e: &Event) -> Option<Vec<u8>> {
        let cpu = e.cpu;
        let rec = |ev: usize| Record::new(ev, e.flags, e.owner);
        Some(match e.kind {
            EventKind::TaskNewtask { pid, comm, .. } => {
                let mut r = rec(EV_NEWTASK);
                r.int(0, pid as i32).comm(1, comm.as_str());
                r.bytes
            }
            EventKind::SchedSwitch {
                prev,
                prev_state,
                next,
            } => self.sched_switch(e, prev, prev_state, next),
            EventKind::SchedWaking { task, target_cpu } => self.wakeup(EV_WAKING, e, task, target_cpu),
            EventKind::SchedWakeup { task, target_cpu } => self.wakeup(EV_WAKEUP, e, task, target_cpu),
            EventKind::SchedWakeupNew { task, target_cpu } => self.wakeup(EV_WAKEUP_NEW, e, task, target_cpu),
            EventKind::SchedMigrateTask {
                task,
                orig_cpu,
                dest_cpu,
            } => self.sched_migrate_task(e, task, orig_cpu, dest_cpu),
            EventKind::SchedProcessExit { task } => self.sched_process_exit(e, task),
            EventKind::SchedPiSetprio {
                task,
                oldprio,
                newprio,
            } => self.sched_pi_setprio(e, task, oldprio, newprio),
            EventKind::IpiSendCpu { target_cpu, reason } => self.ipi_send_cpu(e, target_cpu, reason),
            EventKind::ContentionBegin { lock } => {
                let mut r = rec(EV_CBEGIN);
                r.u64(0, lock_addr(lock)).put(1, &1u32.to_le_bytes());
                r.bytes
            }
            EventKind::ContentionEnd { lock, .. } => {
                let mut r = rec(EV_CEND);
                r.u64(0, lock_addr(lock)).int(1, 0);
                r.bytes
            }
            EventKind::UserMark { mark, .. } => self.print(e, &mark.to_string()),
            EventKind::LockContended { pid, lock } => {
                let text = format!(
                    "B|{pid}|lock_wait {}",
                    self.lock_names.get(&lock_addr(lock)).map_or("?", String::as_str)
                );
                self.print(e, &text)
            }
            EventKind::LockAcquired { pid, .. } | EventKind::LockInterrupted { pid, .. } => {
                self.print(e, &format!("E|{pid}"))
            }
            EventKind::ProxyBegin { donor, owner } => {
                let text = format!(
                    "B|{}|proxy for {}-{}",
                    owner.pid,
                    self.comm(donor.pid, cpu),
                    donor.pid
                );
                self.print(e, &text)
            }
            EventKind::ProxyEnd { owner, .. } => self.print(e, &format!("E|{}", owner.pid)),
            EventKind::WorkqueueQueueWork {
                work,
                function,
                req_cpu,
                cpu: pool_cpu,
            } => self.workqueue_queue_work(e, work, function.as_str(), req_cpu, pool_cpu),
            EventKind::WorkqueueExecuteStart { work, function } => {
                self.workqueue_execute(EV_WQ_START, e, work, function.as_str())
            }
            EventKind::WorkqueueExecuteEnd { work, function } => {
                self.workqueue_execute(EV_WQ_END, e, work, function.as_str())
            }
            EventKind::LockInit { lock, name } => {
                self.lock_names.insert(lock_addr(lock), name.as_str().to_string());
                return None;
            }
            EventKind::SchedSetattr { .. }
            | EventKind::ProxyPick { .. }
            | EventKind::ProxyMigrate { .. }
            | EventKind::ReturnMigrate { .. }
            | EventKind::ProxyPark { .. }
            | EventKind::DlThrottle { .. }
            | EventKind::DlDeadlineMiss { .. }
            | EventKind::SignalGenerate { .. } => return None,
        })
    }

    fn sched_switch(&self, e: &Event, prev: TaskRef, prev_state: PrevState, next: TaskRef) -> Vec<u8> {
        let mut r = Record::new(EV_SWITCH, e.flags, e.owner);
        r.comm(0, &self.comm(prev.pid, e.cpu))
            .int(1, prev.pid as i32)
            .int(2, prev.prio)
            .u64(3, raw_prev_state(prev_state) as u64)
            .comm(4, &self.comm(next.pid, e.cpu))
            .int(5, next.pid as i32)
            .int(6, next.prio);
        r.bytes
    }

    fn sched_migrate_task(&self, e: &Event, task: TaskRef, orig_cpu: CpuId, dest_cpu: CpuId) -> Vec<u8> {
        let mut r = Record::new(EV_MIGRATE, e.flags, e.owner);
        r.comm(0, &self.comm(task.pid, e.cpu))
            .int(1, task.pid as i32)
            .int(2, task.prio)
            .int(3, orig_cpu.0 as i32)
            .int(4, dest_cpu.0 as i32);
        r.bytes
    }

    /// `group_dead` is always set: each model task is its own thread group, so it is always
    /// the last one.
    fn sched_process_exit(&self, e: &Event, task: TaskRef) -> Vec<u8> {
        let mut r = Record::new(EV_EXIT, e.flags, e.owner);
        r.comm(0, &self.comm(task.pid, e.cpu))
            .int(1, task.pid as i32)
            .int(2, task.prio)
            .put(3, &[1]);
        r.bytes
    }

    fn sched_pi_setprio(&self, e: &Event, task: TaskRef, oldprio: i32, newprio: i32) -> Vec<u8> {
        let mut r = Record::new(EV_PI, e.flags, e.owner);
        r.comm(0, &self.comm(task.pid, e.cpu))
            .int(1, task.pid as i32)
            .int(2, oldprio)
            .int(3, newprio);
        r.bytes
    }

    /// The callsite and callback are fake text symbols.
    fn ipi_send_cpu(&mut self, e: &Event, target_cpu: CpuId, reason: IpiReason) -> Vec<u8> {
        let (callsite, callback) = ipi_symbols(reason);
        let site = self.sym(callsite);
        // A NULL callback prints as 0x0.
        let cb = if callback == "0x0" { 0 } else { self.sym(callback) };
        let mut r = Record::new(EV_IPI, e.flags, e.owner);
        r.put(0, &target_cpu.0.to_le_bytes()).u64(1, site).u64(2, cb);
        r.bytes
    }

    /// The work function is a fake text symbol; the per-CPU pools serve `system_wq`, whose
    /// name is "events".
    fn workqueue_queue_work(
        &mut self,
        e: &Event,
        work: u32,
        function: &str,
        req_cpu: CpuId,
        pool_cpu: CpuId,
    ) -> Vec<u8> {
        let f = self.sym(function);
        let mut r = Record::new(EV_WQ_QUEUE, e.flags, e.owner);
        r.u64(0, work_addr(work))
            .u64(1, f)
            .int(3, req_cpu.0 as i32)
            .int(4, pool_cpu.0 as i32)
            .data_loc(2, "events");
        r.bytes
    }

    /// `workqueue_execute_start` or `_end` (`ev`): the work item and its function's symbol.
    fn workqueue_execute(&mut self, ev: usize, e: &Event, work: u32, function: &str) -> Vec<u8> {
        let f = self.sym(function);
        let mut r = Record::new(ev, e.flags, e.owner);
        r.u64(0, work_addr(work)).u64(1, f);
        r.bytes
    }

    /// A `trace_marker` write: the ftrace `print` event with `ip` at `tracing_mark_write`.
    fn print(&mut self, e: &Event, text: &str) -> Vec<u8> {
        let ip = self.sym("tracing_mark_write");
        let mut r = Record::new(0, e.flags, e.owner);
        r.u64(0, ip);
        r.bytes.extend_from_slice(text.as_bytes());
        r.bytes.push(0);
        r.bytes
    }

    /// Writes the whole file and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        for c in &mut self.cpus {
            c.close_page();
        }
        let h = self.header();
        self.out.write_all(&h)?;
        for c in &self.cpus {
            self.out.write_all(&c.pages)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Everything before the CPUs' pages: the initial format, the event formats, kallsyms,
    /// the printk formats, saved_cmdlines and the flyrecord offset table, padded to a page.
    fn header(&self) -> Vec<u8> {
        let mut h: Vec<u8> = Vec::new();
        h.extend_from_slice(&[0x17, 0x08, 0x44]);
        h.extend_from_slice(b"tracing6\0");
        h.push(0); // little endian
        h.push(8); // userspace long size
        h.extend_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
        h.extend_from_slice(b"header_page\0");
        h.extend_from_slice(&(HEADER_PAGE.len() as u64).to_le_bytes());
        h.extend_from_slice(HEADER_PAGE.as_bytes());
        h.extend_from_slice(b"header_event\0");
        h.extend_from_slice(&(HEADER_EVENT.len() as u64).to_le_bytes());
        h.extend_from_slice(HEADER_EVENT.as_bytes());
        event_formats(&mut h);
        // kallsyms: the fake symbols, by address.
        let mut syms: Vec<(u64, &str)> = self.syms.iter().map(|(n, &a)| (a, n.as_str())).collect();
        syms.sort();
        let kallsyms: String = syms.iter().map(|(a, n)| format!("{a:016x} T {n}\n")).collect();
        h.extend_from_slice(&(kallsyms.len() as u32).to_le_bytes());
        h.extend_from_slice(kallsyms.as_bytes());
        // printk formats: none.
        h.extend_from_slice(&0u32.to_le_bytes());
        // saved_cmdlines.
        let cmdlines: String = self.comms.iter().map(|(p, c)| format!("{p} {c}\n")).collect();
        h.extend_from_slice(&(cmdlines.len() as u64).to_le_bytes());
        h.extend_from_slice(cmdlines.as_bytes());
        h.extend_from_slice(&(self.cpus.len() as u32).to_le_bytes());
        h.extend_from_slice(b"flyrecord\0");
        // Each CPU's pages start page-aligned after the header and the offset table.
        let table_end = h.len() + 16 * self.cpus.len();
        let mut off = table_end.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        for c in &self.cpus {
            h.extend_from_slice(&(off as u64).to_le_bytes());
            h.extend_from_slice(&(c.pages.len() as u64).to_le_bytes());
            off += c.pages.len();
        }
        h.resize(table_end.div_ceil(PAGE_SIZE) * PAGE_SIZE, 0);
        h
    }
}

/// The event format sections: the `ftrace` system's (`print`), then each other system with
/// its events, in [`FORMATS`] order.
fn event_formats(h: &mut Vec<u8>) {
    let file = |h: &mut Vec<u8>, text: &str| {
        h.extend_from_slice(&(text.len() as u64).to_le_bytes());
        h.extend_from_slice(text.as_bytes());
    };
    // The ftrace section: `print`.
    let ftrace: Vec<&EventFormat> = FORMATS.iter().filter(|f| f.system == "ftrace").collect();
    h.extend_from_slice(&(ftrace.len() as u32).to_le_bytes());
    for f in ftrace {
        file(h, &format_file(f));
    }
    // The other systems, each with its events, in table order.
    let mut systems: Vec<&str> = Vec::new();
    for f in FORMATS.iter().filter(|f| f.system != "ftrace") {
        if !systems.contains(&f.system) {
            systems.push(f.system);
        }
    }
    h.extend_from_slice(&(systems.len() as u32).to_le_bytes());
    for sys in systems {
        h.extend_from_slice(sys.as_bytes());
        h.push(0);
        let evs: Vec<&EventFormat> = FORMATS.iter().filter(|f| f.system == sys).collect();
        h.extend_from_slice(&(evs.len() as u32).to_le_bytes());
        for f in evs {
            file(h, &format_file(f));
        }
    }
}

impl<W: io::Write> EventSink for TraceDatWriter<W> {
    fn event(&mut self, e: &Event) {
        if let Some(r) = self.record(e) {
            let cpu = e.cpu.idx();
            assert!(
                cpu < self.cpus.len(),
                "event on CPU {cpu} of a {}-CPU trace",
                self.cpus.len()
            );
            self.cpus[cpu].push(e.time_ns, &r);
        }
        if let EventKind::TaskNewtask { pid, comm, .. } = e.kind {
            self.comms.insert(pid, comm.as_str().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
    }

    #[test]
    fn record_layouts_match_the_kernels_structs() {
        let size = |name: &str| layout(FORMATS.iter().find(|f| f.name == name).expect("event")).1;
        assert_eq!(size("sched_switch"), 64);
        assert_eq!(size("sched_waking"), 36);
        assert_eq!(size("sched_migrate_task"), 40);
        assert_eq!(size("task_newtask"), 48);
        assert_eq!(size("ipi_send_cpu"), 32);
        assert_eq!(size("print"), 16);
        let switch = format_file(&FORMATS[EV_SWITCH]);
        assert!(switch.contains("\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;\n"));
        assert!(switch.starts_with("name: sched_switch\nID: 316\nformat:\n"));
    }

    #[test]
    fn long_gaps_get_a_time_extend_and_long_records_a_length_word() {
        let mut c = CpuBuffer::default();
        c.push(1_000, &[1; 8]);
        let gap = 1u64 << 30; // more than 27 bits of ns
        c.push(1_000 + gap, &[2; 8]);
        c.push(1_000 + gap + 7, &[3; 200]);
        c.close_page();
        assert_eq!(c.pages.len(), PAGE_SIZE);
        assert_eq!(u64::from_le_bytes(c.pages[0..8].try_into().expect("8")), 1_000);
        let data = &c.pages[PAGE_HEADER..];
        // 1: type_len 2 (8 bytes), delta 0.
        assert_eq!(u32_at(data, 0), 2);
        // 2: time extend carrying the gap, then type_len 2 with delta 0.
        assert_eq!(u32_at(data, 12) & 0x1f, TYPE_TIME_EXTEND);
        let ext = u64::from(u32_at(data, 12) >> 5) | (u64::from(u32_at(data, 16)) << 27);
        assert_eq!(ext, gap);
        assert_eq!(u32_at(data, 20), 2);
        // 3: type_len 0, delta 7, length word = 200 + 4.
        assert_eq!(u32_at(data, 32), 7 << 5);
        assert_eq!(u32_at(data, 36), 204);
        let commit = u64::from_le_bytes(c.pages[8..16].try_into().expect("8"));
        assert_eq!(commit, 32 + 8 + 200);
    }

    #[test]
    fn a_full_page_starts_a_new_one_at_the_events_time() {
        let mut c = CpuBuffer::default();
        for i in 0..200u64 {
            c.push(i * 10, &[0; 60]);
        }
        c.close_page();
        // 64 bytes per event, 63 per 4080-byte page: 4 pages.
        assert_eq!(c.pages.len(), 4 * PAGE_SIZE);
        let second_ts = u64::from_le_bytes(c.pages[PAGE_SIZE..PAGE_SIZE + 8].try_into().expect("8"));
        assert_eq!(second_ts, 63 * 10);
    }
}
