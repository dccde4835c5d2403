//! The kernel `struct mutex`.
//!
//! Linux: kernel/locking/mutex.c.
//!
//! Deviation (this stage): a simple sleeping lock: a contended lock queues the waiter FIFO
//! under `wait_lock` and unlock hands ownership to the first waiter and wakes it. The owner
//! word with WAITERS/HANDOFF/PICKUP, optimistic spinning and `blocked_on` come with the
//! Proxy Execution stage.

use std::collections::VecDeque;

use sim::LockId;

use crate::locking::usermutex::WaitTarget;
use crate::sched::core::*;
use crate::task::state::*;
use crate::task::TaskId;
use crate::tracepoints::{EventKind, LockName};

/// `__mutex_owner()`: the task owning mutex `m`, if any.
pub fn mutex_owner(s: &crate::sched::SchedState, m: u32) -> Option<TaskId> {
    s.mutexes[m as usize].owner
}

/// `struct mutex`.
pub struct Mutex {
    pub name: String,
    pub owner: Option<TaskId>,
    /// FIFO of sleeping waiters. Protected by: `wait_lock`.
    pub wait_list: VecDeque<TaskId>,
    pub wait_lock: LockId,
    /// Waiters donate through this mutex when Proxy Execution is on (protocol `proxy`).
    pub proxy: bool,
}

/// Lock a pthread mutex: take it if free, else queue FIFO and sleep until handed over.
pub async fn mutex_lock(k: &Kernel, m: u32) {
    let lock = k.st().mutexes[m as usize].wait_lock;
    k.raw_spin_lock(
        lock,
        crate::locking::lockdep::LockClass::WaitQueue,
        crate::tracepoints::LockName::Other(lock.0),
    )
    .await;
    let me = k.current();
    let must_wait = {
        let s = &mut *k.st();
        let um = &mut s.mutexes[m as usize];
        // Relocking a held default pthread mutex deadlocks the caller, as it would for real.
        if um.owner.is_none() {
            um.owner = Some(me);
            false
        } else {
            um.wait_list.push_back(me);
            s.tasks[me as usize].state = TASK_INTERRUPTIBLE;
            s.tasks[me as usize].waiting_on = Some(WaitTarget::Mutex(m));
            true
        }
    };
    k.raw_spin_unlock(lock).await;
    if must_wait {
        let pid = k.st().tasks[me as usize].pid;
        k.emit(
            k.this_cpu(),
            EventKind::LockContended {
                pid,
                lock: LockName::Mutex(m),
            },
        );
        loop {
            schedule(k).await;
            let s = &mut *k.st();
            if s.mutexes[m as usize].owner == Some(me) {
                s.tasks[me as usize].waiting_on = None;
                let pid = s.tasks[me as usize].pid;
                let cpu = s.m.this_cpu();
                emit(
                    s,
                    cpu,
                    EventKind::LockAcquired {
                        pid,
                        lock: LockName::Mutex(m),
                    },
                );
                break;
            }
            // Woken for something else: sleep again.
            s.tasks[me as usize].state = TASK_INTERRUPTIBLE;
        }
    }
}

/// Unlock a pthread mutex: hand it to the first waiter and wake it.
pub async fn mutex_unlock(k: &Kernel, m: u32) {
    let lock = k.st().mutexes[m as usize].wait_lock;
    k.raw_spin_lock(
        lock,
        crate::locking::lockdep::LockClass::WaitQueue,
        crate::tracepoints::LockName::Other(lock.0),
    )
    .await;
    let me = k.current();
    let next = {
        let s = &mut *k.st();
        let um = &mut s.mutexes[m as usize];
        if um.owner != Some(me) {
            Err(format!(
                "mutex {} unlocked by a thread that does not hold it",
                um.name
            ))
        } else {
            let next = um.wait_list.pop_front();
            um.owner = next;
            Ok(next)
        }
    };
    let next = next.unwrap_or_else(|e| {
        k.violation("workload_unlock_not_owner", e);
        None
    });
    k.raw_spin_unlock(lock).await;
    if let Some(w) = next {
        wake_up_process(k, w).await;
        preempt_point(k).await;
    }
}
