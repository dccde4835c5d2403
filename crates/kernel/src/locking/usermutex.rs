//! User-space condition variables as rt-app uses them (pthread on futex), and how workload
//! resource ids map to kernel locks.
//!
//! Linux: kernel/futex/waitwake.c (futex_wait, futex_wake) as driven by glibc's
//! pthread_mutex_lock/unlock and pthread_cond_wait/signal/broadcast.
//!
//! Deviation: a condition variable is a FIFO wait queue under one raw spinlock; waiting
//! releases the mutex through its protocol's unlock and retakes it with its lock, and
//! signal/broadcast wake the first/all waiters (no futex word, no requeue-PI).

use std::collections::VecDeque;

use sim::LockId;

use crate::locking::mutex::MutexId;
use crate::locking::rtmutex::RtMutexId;
use crate::task::TaskId;

/// What a sleeping task waits on (for stall and deadlock reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitTarget {
    /// Index into `SchedState::mutexes`.
    Mutex(MutexId),
    /// Index into `SchedState::rt_mutexes`.
    RtMutex(RtMutexId),
    /// Index into `SchedState::user_conds`.
    Cond(u32),
    /// `flush_work()` on a work item (index into `WqState::works`).
    Work(u32),
}

/// A workload resource id resolved to the kernel object behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserResource {
    /// Index into `SchedState::mutexes` (kernel mutex).
    Mutex(MutexId),
    /// Index into `SchedState::rt_mutexes`.
    RtMutex(RtMutexId),
    /// Index into `SchedState::user_conds`.
    Cond(u32),
}

/// A pthread condition variable.
pub struct UserCond {
    pub name: String,
    /// FIFO of sleeping waiters. Protected by: `lock`.
    pub waiters: VecDeque<TaskId>,
    pub lock: LockId,
}
