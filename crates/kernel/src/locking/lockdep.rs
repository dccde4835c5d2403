//! A model-level lockdep: checks every raw spinlock acquisition against the documented order.
//!
//! Linux: kernel/locking/lockdep.c (validate_chain), with the order of kernel/sched/core.c's
//! "Lock order" comment and spec L1: `rt_mutex->wait_lock` → `p->pi_lock` → `rq->lock` →
//! `mutex->wait_lock` → `p->blocked_lock`; two rq locks only in ascending CPU order (double_rq_lock).
//!
//! Deviation: Linux learns the order from observed acquisitions and reports cycles; the model
//! checks against a fixed rank table, which is stricter and needs no learning phase.

use sim::{CpuId, LockId};

/// Lock classes, in acquisition order (a class may be taken while holding only lower ranks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockClass {
    /// A user-visible wait-queue lock (futex hash bucket); taken before pi_lock by wakers.
    WaitQueue,
    /// `worker_pool::lock`: `kick_pool()` wakes a worker (pi_lock, rq lock) with it held.
    WorkerPool,
    /// `rt_mutex_base::wait_lock`: taken before the pi_lock of the tasks it links (M-10,
    /// T-10). The PI chain walk takes it while holding a pi_lock only by trylock.
    RtMutexWaitLock,
    PiLock,
    /// `rq->__lock`, with the CPU for the nesting rule.
    Rq(CpuId),
    MutexWaitLock,
    BlockedLock,
    /// A second task's `blocked_lock` taken inside the unlocker's own (`raw_spin_lock_nested`,
    /// L2: the unlock path nests one level, the lock path never).
    BlockedLockNested,
}

impl LockClass {
    fn rank(self) -> u8 {
        match self {
            LockClass::WaitQueue => 0,
            LockClass::WorkerPool => 1,
            LockClass::RtMutexWaitLock => 2,
            LockClass::PiLock => 3,
            LockClass::Rq(_) => 4,
            LockClass::MutexWaitLock => 5,
            LockClass::BlockedLock => 6,
            LockClass::BlockedLockNested => 7,
        }
    }
}

/// Locks held by each CPU, in acquisition order.
pub struct Lockdep {
    held: Vec<Vec<(LockId, LockClass)>>,
}

impl Lockdep {
    pub fn new(nr_cpus: usize) -> Lockdep {
        Lockdep {
            held: vec![Vec::new(); nr_cpus],
        }
    }

    /// Check that `cpu` may take `lock` of `class` now; records nothing.
    pub fn check_acquire(&self, cpu: CpuId, lock: LockId, class: LockClass) -> Result<(), String> {
        for &(h, hc) in &self.held[cpu.idx()] {
            if h == lock {
                return Err(format!("recursive acquisition of {class:?}"));
            }
            let ok = match (hc, class) {
                (LockClass::Rq(a), LockClass::Rq(b)) => a < b,
                (LockClass::PiLock, LockClass::PiLock) => false,
                (LockClass::BlockedLock, LockClass::BlockedLock) => false,
                (LockClass::RtMutexWaitLock, LockClass::RtMutexWaitLock) => false,
                _ => hc.rank() < class.rank(),
            };
            if !ok {
                return Err(format!(
                    "lock order violation: cpu{cpu} takes {class:?} while holding {hc:?}"
                ));
            }
        }
        Ok(())
    }

    pub fn acquired(&mut self, cpu: CpuId, lock: LockId, class: LockClass) {
        self.held[cpu.idx()].push((lock, class));
    }

    pub fn released(&mut self, cpu: CpuId, lock: LockId) -> Result<(), String> {
        let held = &mut self.held[cpu.idx()];
        match held.iter().rposition(|&(h, _)| h == lock) {
            Some(i) => {
                held.remove(i);
                Ok(())
            }
            None => Err(format!("cpu{cpu} releases a lock it does not hold")),
        }
    }

    pub fn held(&self, cpu: CpuId) -> &[(LockId, LockClass)] {
        &self.held[cpu.idx()]
    }

    pub fn holds(&self, cpu: CpuId, lock: LockId) -> bool {
        self.held[cpu.idx()].iter().any(|&(h, _)| h == lock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_order_is_enforced() {
        let mut ld = Lockdep::new(2);
        let (pi, rq0, rq1) = (LockId(0), LockId(1), LockId(2));
        ld.check_acquire(CpuId(0), pi, LockClass::PiLock).unwrap();
        ld.acquired(CpuId(0), pi, LockClass::PiLock);
        ld.check_acquire(CpuId(0), rq0, LockClass::Rq(CpuId(0))).unwrap();
        ld.acquired(CpuId(0), rq0, LockClass::Rq(CpuId(0)));
        ld.check_acquire(CpuId(0), rq1, LockClass::Rq(CpuId(1))).unwrap();
        // rq1 then rq0 is the wrong nesting order.
        let mut ld2 = Lockdep::new(2);
        ld2.acquired(CpuId(0), rq1, LockClass::Rq(CpuId(1)));
        assert!(ld2.check_acquire(CpuId(0), rq0, LockClass::Rq(CpuId(0))).is_err());
        // rq lock then pi_lock is inverted.
        assert!(ld2.check_acquire(CpuId(0), LockId(9), LockClass::PiLock).is_err());
    }

    #[test]
    fn rt_mutex_wait_lock_nests_outside_pi_lock() {
        let (wl, wl2, pi) = (LockId(0), LockId(1), LockId(2));
        let mut ld = Lockdep::new(1);
        ld.acquired(CpuId(0), wl, LockClass::RtMutexWaitLock);
        ld.check_acquire(CpuId(0), pi, LockClass::PiLock).unwrap();
        ld.check_acquire(CpuId(0), LockId(3), LockClass::Rq(CpuId(0)))
            .unwrap();
        // Two wait_locks never nest (the chain walk holds one at a time).
        assert!(ld
            .check_acquire(CpuId(0), wl2, LockClass::RtMutexWaitLock)
            .is_err());
        // pi_lock then wait_lock is the reverse order: only a trylock may do it.
        let mut ld2 = Lockdep::new(1);
        ld2.acquired(CpuId(0), pi, LockClass::PiLock);
        assert!(ld2
            .check_acquire(CpuId(0), wl, LockClass::RtMutexWaitLock)
            .is_err());
        // A futex wait-queue lock comes before it.
        let mut ld3 = Lockdep::new(1);
        ld3.acquired(CpuId(0), LockId(4), LockClass::WaitQueue);
        ld3.check_acquire(CpuId(0), wl, LockClass::RtMutexWaitLock)
            .unwrap();
    }
}
