//! The user/kernel interface (named after Linux's `include/uapi`): what a simulated user
//! thread and the kernel model share. Scheduling policies and `struct sched_attr`, a task's
//! `comm`, the system calls a thread can make ([`UserOp`]) and what they return
//! ([`SysResult`], [`Errno`]), trace-marker writes ([`TraceMarker`]), the [`UserProgram`]
//! trait (the user-space half of a thread), and the model's fault-injection points
//! ([`Injection`]).
//!
//! The kernel model (`kernel`) runs a thread's kernel half: each time the thread returns to
//! user space it asks the program for its next [`UserOp`], handing it the result of the last
//! one, and carries it out as Linux would (`Run` burns CPU in user mode, `Sleep` is
//! `clock_nanosleep`, `Lock` is a contended-lock system call, and so on). The user programs
//! themselves (rt-app's threads) are in `workload`. Neither side depends on the other; both
//! depend on this crate.

use sim::{CpuMask, Nanos};

/// A task's `comm`: at most 15 bytes (TASK_COMM_LEN 16 with the NUL), stored inline so that
/// events stay `Copy`. Built from a name with spaces and `=` replaced by `_` (trace parsers
/// split on both, TR-8).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Comm {
    len: u8,
    bytes: [u8; 15],
}

impl Comm {
    pub fn new(name: &str) -> Comm {
        let mut bytes = [0u8; 15];
        let mut len = 0;
        for ch in name.chars() {
            let ch = if ch == ' ' || ch == '=' || !ch.is_ascii() || ch.is_ascii_control() {
                '_'
            } else {
                ch
            };
            if len == 15 {
                break;
            }
            bytes[len] = ch as u8;
            len += 1;
        }
        Comm {
            len: len as u8,
            bytes,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("comm is ASCII")
    }
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::fmt::Display for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Scheduling policy (Linux `SCHED_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    Normal,
    Fifo,
    Rr,
    Batch,
    Idle,
    Deadline,
}

impl Policy {
    /// The kernel's policy number (`SCHED_NORMAL` = 0 ...).
    pub fn number(self) -> u32 {
        match self {
            Policy::Normal => 0,
            Policy::Fifo => 1,
            Policy::Rr => 2,
            Policy::Batch => 3,
            Policy::Idle => 5,
            Policy::Deadline => 6,
        }
    }

    /// The name rt-app and `chrt` use (`SCHED_OTHER` for Normal).
    pub fn rtapp_name(self) -> &'static str {
        match self {
            Policy::Normal => "SCHED_OTHER",
            Policy::Fifo => "SCHED_FIFO",
            Policy::Rr => "SCHED_RR",
            Policy::Batch => "SCHED_BATCH",
            Policy::Idle => "SCHED_IDLE",
            Policy::Deadline => "SCHED_DEADLINE",
        }
    }

    pub fn is_rt(self) -> bool {
        matches!(self, Policy::Fifo | Policy::Rr)
    }
}

/// `struct sched_attr`, as far as the model uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedAttr {
    pub policy: Policy,
    /// Nice value for fair policies (-20..=19).
    pub nice: i32,
    /// RT priority for FIFO/RR (1..=99).
    pub rt_priority: u32,
    /// SCHED_DEADLINE parameters (ns); 0 for the other policies.
    ///
    /// Deviation: Linux 6.12+ reads a non-zero `sched_runtime` of a fair task as a custom
    /// slice request; the model ignores it for fair policies (every fair task has the default
    /// slice).
    pub dl_runtime_ns: Nanos,
    pub dl_deadline_ns: Nanos,
    pub dl_period_ns: Nanos,
}

impl SchedAttr {
    pub fn normal(nice: i32) -> Self {
        SchedAttr {
            policy: Policy::Normal,
            nice,
            rt_priority: 0,
            dl_runtime_ns: 0,
            dl_deadline_ns: 0,
            dl_period_ns: 0,
        }
    }

    pub fn fifo(rt_priority: u32) -> Self {
        SchedAttr {
            policy: Policy::Fifo,
            rt_priority,
            ..Self::normal(0)
        }
    }

    pub fn rr(rt_priority: u32) -> Self {
        SchedAttr {
            policy: Policy::Rr,
            rt_priority,
            ..Self::normal(0)
        }
    }
}

/// Index of a user-visible synchronisation object (mutex or condition variable), as numbered
/// by the workload.
pub type ResourceId = u32;

/// Index of a work item (`struct work_struct`) declared by the workload, in declaration order.
pub type WorkId = u32;

/// Index of a simulated user thread, in the order the workload created them.
pub type ThreadId = u32;

/// A `write()` to the trace marker (`/sys/kernel/tracing/trace_marker`), which the kernel
/// records as a `tracing_mark_write` print event. The text is [`TraceMarker::fmt`] with each
/// `{}` replaced by the next of [`TraceMarker::args`] (`Display` gives it).
///
/// Linux: kernel/trace/trace.c tracing_mark_write().
///
/// Deviation: Linux copies the written text into the ring buffer; the model keeps the format
/// and up to three numbers and prints them when the trace is read, as `trace_bprintk()`
/// records do (kernel/trace/trace_printk.c), so that trace records stay small and `Copy`.
/// A reader sees the same text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceMarker {
    pub fmt: &'static str,
    pub args: [u32; 3],
}

impl std::fmt::Display for TraceMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut args = self.args.iter();
        let mut rest = self.fmt;
        while let Some(i) = rest.find("{}") {
            f.write_str(&rest[..i])?;
            match args.next() {
                Some(a) => write!(f, "{a}")?,
                None => f.write_str("{}")?,
            }
            rest = &rest[i + 2..];
        }
        f.write_str(rest)
    }
}

/// One request from user space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserOp {
    /// Execute `work_ns` of CPU work in user mode (rt-app `run`; at capacity 1024 and a fixed
    /// frequency one ns of work takes one ns of CPU time).
    Run { work_ns: Nanos },
    /// `clock_nanosleep(CLOCK_MONOTONIC, 0, ns)`.
    Sleep { ns: Nanos },
    /// `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, at_ns)`.
    SleepUntil { at_ns: Nanos },
    /// `sched_yield()`.
    Yield,
    /// Take a mutex (blocking).
    Lock { mutex: ResourceId },
    /// Release a mutex held by this thread.
    Unlock { mutex: ResourceId },
    /// `pthread_cond_wait(cond, mutex)`: release `mutex`, sleep until signalled, retake it.
    CondWait { cond: ResourceId, mutex: ResourceId },
    /// Wake one waiter of `cond`.
    CondSignal { cond: ResourceId },
    /// Wake every waiter of `cond`.
    CondBroadcast { cond: ResourceId },
    /// `sched_setattr()` on itself.
    SetAttr { attr: SchedAttr },
    /// `sched_setaffinity()` on itself.
    SetAffinity { cpus: CpuMask },
    /// `write(trace_marker, ...)`.
    Mark { mark: TraceMarker },
    /// `exit()`: this thread ends.
    Exit,
    /// `write(fd, text)`: output of the program, e.g. a message on stderr (fd 2).
    Write { fd: u32, text: String },
    /// `exit_group(status)` (libc's `exit()`): every thread of the process ends at once.
    ExitGroup { status: i32 },
    /// A system call whose kernel half queues work item `work` with `queue_work_on(cpu)`;
    /// `cpu` None = the calling CPU (`queue_work()`). No effect if the item is pending.
    QueueWork { work: WorkId, cpu: Option<u32> },
    /// A system call whose kernel half waits in `flush_work(work)` until the last queued
    /// instance of the item has finished.
    FlushWork { work: WorkId },
    /// `write(<cgroup>/cgroup.procs, tid)` for itself: move into task group `group` (an index
    /// into the workload's groups, 0 = the root), as rt-app's `cgroup_attach_task()` does.
    SetCgroup { group: u32 },
    /// `tgkill(getpid(), tid, SIGUSR1)` to thread `thread`, whose handler is empty and
    /// installed with `SA_RESTART`: an interruptible wait of the target (a mutex declared
    /// `"interruptible"`, a sleep) is interrupted; an interrupted lock is tried again.
    Signal { thread: ThreadId },
}

/// What the kernel tells a program when asking for its next op.
#[derive(Clone, Copy, Debug)]
pub struct UserCtx {
    /// `clock_gettime(CLOCK_MONOTONIC)` now.
    pub now_ns: Nanos,
    /// The thread asking.
    pub thread: ThreadId,
    /// Its thread id (`gettid()`).
    pub pid: u32,
    /// Its name (`prctl(PR_GET_NAME)`).
    pub comm: Comm,
    /// The result of the request the program made last (`Ok` before its first).
    pub ret: SysResult,
}

impl UserCtx {
    /// The context of a thread with no pid, no name and no failed request (for driving a
    /// program without a kernel).
    pub fn new(now_ns: Nanos, thread: ThreadId) -> UserCtx {
        UserCtx {
            now_ns,
            thread,
            pid: 0,
            comm: Comm::new(""),
            ret: Ok(()),
        }
    }
}

/// A system call's error: the `errno` it sets (the kernel returns it negated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Errno = Errno(1);
    pub const EBUSY: Errno = Errno(16);
    pub const EINVAL: Errno = Errno(22);

    /// `strerror()`: glibc's text for the errors the model returns.
    pub fn strerror(self) -> &'static str {
        match self {
            Errno::EPERM => "Operation not permitted",
            Errno::EBUSY => "Device or resource busy",
            Errno::EINVAL => "Invalid argument",
            _ => "error",
        }
    }
}

/// What a system call returns to the program: nothing of interest, or an error.
pub type SysResult = Result<(), Errno>;

/// The user-space half of a simulated thread.
pub trait UserProgram {
    /// The next request. Called each time the thread is back in user space.
    fn next_op(&mut self, ctx: &UserCtx) -> UserOp;
}

/// A fault-injection point of the model, armed by a workload under
/// `"proxysched": {"inject": {NAME: true}}` (as Linux arms its fault injection through
/// debugfs). Each makes a legal but unusual concurrent step happen at a named point of the
/// kernel model. The one list of the points: the loader validates names against
/// [`Injection::ALL`] and the kernel arms what it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injection {
    /// Spec proxy-exec §9 #24 (B-v29-1): while a pick's newidle balance pass has the rq lock
    /// dropped, another CPU swaps that rq's donor to idle, as a remote return migration of the
    /// donor does (R6). Fires once.
    DonorSwapInBalance,
    /// A model assertion fails at CPU 0's first tick, as any broken model invariant would:
    /// for the tests of how a failed assertion is reported (exit 4 with the replay line).
    ModelAssertion,
}

impl Injection {
    /// Every point, in the order error messages list them.
    pub const ALL: [Injection; 2] = [Injection::DonorSwapInBalance, Injection::ModelAssertion];

    /// The name a workload uses.
    pub fn name(self) -> &'static str {
        match self {
            Injection::DonorSwapInBalance => "donor_swap_in_balance",
            Injection::ModelAssertion => "model_assertion",
        }
    }

    /// The point called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Injection> {
        Injection::ALL.into_iter().find(|i| i.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_prints_its_format_with_its_numbers() {
        let m = |fmt, args| TraceMarker { fmt, args }.to_string();
        assert_eq!(m("a={} b={} c={}", [1, 22, 333]), "a=1 b=22 c=333");
        assert_eq!(m("no numbers", [7, 8, 9]), "no numbers");
        assert_eq!(m("{}{}", [4, 5, 6]), "45");
        assert_eq!(m("{}{}{}{}", [1, 2, 3]), "123{}");
    }

    #[test]
    fn injection_names_round_trip() {
        for i in Injection::ALL {
            assert_eq!(Injection::from_name(i.name()), Some(i));
        }
        assert_eq!(Injection::from_name("donor_swap"), None);
        assert_eq!(Injection::ALL.len(), 2, "a new point belongs in ALL and name()");
    }
}
