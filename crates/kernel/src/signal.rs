//! Signals, as far as they reach the scheduler and the sleeping locks: a thread sends another
//! one a non-fatal signal (`tgkill(tgid, tid, SIGUSR1)`) whose handler is empty and installed
//! with `SA_RESTART`. The sender marks it pending (`TIF_SIGPENDING`) and wakes the target if
//! it sleeps interruptibly (`signal_wake_up()`); an interruptible sleep that finds a signal
//! pending gives up (-EINTR / -ERESTARTSYS); the target handles the signal on its way back
//! to user mode (the pending mark is cleared), and the interrupted system call is restarted.
//!
//! Linux: kernel/signal.c (do_tkill(), do_send_sig_info(), send_signal_locked(),
//! complete_signal(), signal_wake_up_state()), include/linux/sched/signal.h
//! (signal_pending_state()), kernel/entry/common.c (exit_to_user_mode_loop() →
//! arch_do_signal_or_restart()).
//!
//! Deviation: one signal (SIGUSR1) with an empty `SA_RESTART` handler is modelled; there are
//! no fatal signals (`TASK_WAKEKILL` waits never see one), no signal masks, no queued
//! real-time signals, and no `sighand->siglock` (the sender's marking and wakeup are one
//! stretch of model code). `kick_process()` (an IPI to a target running on another CPU, so
//! that it handles the signal soon) is not sent: a running thread handles the signal at its
//! next return to user mode anyway, and an empty handler has no effect there.

use uapi::Comm;

use crate::coverage::Mark;
use crate::sched::core::{emit, task_has_blocked_on, try_to_wake_up, Kernel};
use crate::sched::{SchedState, WakeFlags};
use crate::task::state::*;
use crate::task::TaskId;
use crate::tracepoints::EventKind;

/// `SIGUSR1`: the signal the workload's `signal` event sends.
pub const SIGUSR1: u32 = 10;

/// `SI_TKILL`: `si_code` of a signal sent with `tkill()`/`tgkill()`.
const SI_TKILL: i32 = -6;

/// `TRACE_SIGNAL_DELIVERED` and `TRACE_SIGNAL_ALREADY_PENDING`: `signal_generate`'s `res`.
const TRACE_SIGNAL_DELIVERED: u32 = 0;
const TRACE_SIGNAL_ALREADY_PENDING: u32 = 2;

/// An interrupted wait's error (`-EINTR`; the system call layer turns it into
/// `-ERESTARTSYS` and restarts the call after the handler).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Eintr;

/// `signal_pending_state()`: whether a task sleeping in `state` must give up its wait: a
/// pending signal for an interruptible sleep (a fatal one would also end a killable sleep;
/// none is modelled).
///
/// Linux: include/linux/sched/signal.h signal_pending_state().
pub fn signal_pending_state(s: &SchedState, p: TaskId, state: u32) -> bool {
    if state & (TASK_INTERRUPTIBLE | TASK_WAKEKILL) == 0 {
        return false;
    }
    s.tasks[p.idx()].sigpending && state & TASK_INTERRUPTIBLE != 0
}

/// `tgkill(tgid, tid, SIGUSR1)` from the current task to `target`: trace `signal_generate`;
/// a signal already pending is not queued again (a standard signal is queued once);
/// otherwise mark it pending and `signal_wake_up()`: wake the target if it sleeps
/// `TASK_INTERRUPTIBLE`, from this CPU (`try_to_wake_up()` with that state mask). A target
/// that already exited gets nothing (-ESRCH, no record).
///
/// Linux: kernel/signal.c do_tkill() → do_send_specific() → do_send_sig_info() →
/// send_signal_locked() (legacy_queue(), complete_signal()) → signal_wake_up_state().
pub async fn send_signal(k: &Kernel, target: TaskId) {
    let this = k.this_cpu();
    let queue = {
        let s = &mut *k.st();
        let t = &s.tasks[target.idx()];
        if t.exit_state != 0 || t.state == TASK_DEAD {
            return;
        }
        let already = t.sigpending;
        let (comm, pid): (Comm, _) = (t.comm, t.pid);
        let res = if already {
            TRACE_SIGNAL_ALREADY_PENDING
        } else {
            TRACE_SIGNAL_DELIVERED
        };
        emit(
            s,
            this,
            EventKind::SignalGenerate {
                sig: SIGUSR1,
                code: SI_TKILL,
                comm,
                pid,
                res,
            },
        );
        if !already {
            s.tasks[target.idx()].sigpending = true;
            // A task still queued with `blocked_on` set waits for a mutex as a Proxy
            // Execution donor: this wakeup comes from another CPU than the one it waits on
            // (or the same), and may take the donor away from a running owner (R6).
            if s.tasks[target.idx()].state & TASK_INTERRUPTIBLE != 0
                && task_has_blocked_on(s, target)
                && s.tasks[target.idx()].on_rq != crate::task::OnRq::No
            {
                s.coverage.hit(Mark::SignalWakesBlockedDonor);
            }
        }
        !already
    };
    if queue {
        try_to_wake_up(k, target, TASK_INTERRUPTIBLE, WakeFlags::empty()).await;
    }
}

/// The signal half of `exit_to_user_mode_loop()`: the current task handles a pending signal
/// (`arch_do_signal_or_restart()` → `handle_signal()` with an empty handler), which clears
/// `TIF_SIGPENDING`. An interrupted system call is restarted by its caller (`SA_RESTART`).
///
/// Linux: kernel/entry/common.c exit_to_user_mode_loop(), arch/x86/kernel/signal.c
/// arch_do_signal_or_restart().
pub fn handle_pending_signal(k: &Kernel) {
    let me = k.current();
    k.st().tasks[me.idx()].sigpending = false;
}
