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

    /// This class's bit in [`Held::ranks`]: its rank, except that a nested `blocked_lock`
    /// shares the plain one's bit, because one lock is taken under both classes (a held
    /// `blocked_lock` retaken as nested must still be found recursive by the scan).
    fn rank_bit(self) -> u8 {
        match self {
            LockClass::BlockedLockNested => LockClass::BlockedLock.rank(),
            c => c.rank(),
        }
    }
}

/// How many locks one CPU may hold at once; one more is a model assertion.
///
/// Linux: include/linux/sched.h MAX_LOCK_DEPTH (lockdep's per-task held-lock array).
///
/// Deviation: Linux reports the overflow and turns lockdep off; the model stops the run, as
/// its paths never nest more than a handful of raw spinlocks.
const MAX_LOCK_DEPTH: usize = 48;

/// Number of distinct [`LockClass::rank_bit`]s.
const NR_RANK_BITS: usize = 8;

/// The locks one CPU holds: a fixed array, as Linux's `task_struct::held_locks`.
#[derive(Clone)]
struct Held {
    /// In acquisition order; the first `depth` entries are held.
    stack: [(LockId, LockClass); MAX_LOCK_DEPTH],
    depth: usize,
    /// Per rank bit, how many held locks have it.
    per_rank: [u8; NR_RANK_BITS],
    /// Bit `r` is set when some lock of rank `r` is held ([`LockClass::rank_bit`]): a lock
    /// whose rank is above every held one passes every rule, which is the common case and
    /// needs no scan.
    ranks: u8,
}

impl Default for Held {
    fn default() -> Held {
        Held {
            stack: [(LockId(0), LockClass::WaitQueue); MAX_LOCK_DEPTH],
            depth: 0,
            per_rank: [0; NR_RANK_BITS],
            ranks: 0,
        }
    }
}

impl Held {
    #[inline]
    fn locks(&self) -> &[(LockId, LockClass)] {
        &self.stack[..self.depth]
    }

    #[inline]
    fn push(&mut self, lock: LockId, class: LockClass) {
        assert!(
            self.depth < MAX_LOCK_DEPTH,
            "lockdep: more than {MAX_LOCK_DEPTH} locks held at once"
        );
        self.stack[self.depth] = (lock, class);
        self.depth += 1;
        let bit = class.rank_bit();
        self.per_rank[bit as usize] += 1;
        self.ranks |= 1 << bit;
    }

    /// Drop entry `i` (the others keep their order) and return it.
    #[inline]
    fn remove(&mut self, i: usize) -> (LockId, LockClass) {
        let entry = self.stack[i];
        if i + 1 < self.depth {
            self.stack.copy_within(i + 1..self.depth, i);
        }
        self.depth -= 1;
        let bit = entry.1.rank_bit();
        self.per_rank[bit as usize] -= 1;
        if self.per_rank[bit as usize] == 0 {
            self.ranks &= !(1 << bit);
        }
        entry
    }
}

/// Locks held by each CPU, in acquisition order.
pub struct Lockdep {
    held: Vec<Held>,
    /// Per CPU, the locks it released since the per-step checker last looked
    /// ([`Lockdep::released_since`]); kept only once the checker asked for it
    /// ([`Lockdep::log_releases`]), so that an unchecked run keeps nothing.
    released: Vec<Vec<(LockId, LockClass)>>,
    log_releases: bool,
}

impl Lockdep {
    pub fn new(nr_cpus: usize) -> Lockdep {
        Lockdep {
            held: vec![Held::default(); nr_cpus],
            released: vec![Vec::new(); nr_cpus],
            log_releases: false,
        }
    }

    /// Keep, per CPU, the locks it releases until [`Lockdep::clear_released`] (the per-step
    /// checker's record of what a step touched).
    pub fn log_releases(&mut self) {
        self.log_releases = true;
    }

    /// The locks `cpu` released since the last [`Lockdep::clear_released`], in order.
    pub fn released_since(&self, cpu: CpuId) -> &[(LockId, LockClass)] {
        &self.released[cpu.idx()]
    }

    pub fn clear_released(&mut self, cpu: CpuId) {
        self.released[cpu.idx()].clear();
    }

    /// Check that `cpu` may take `lock` of `class` now; records nothing.
    ///
    /// Linux: kernel/locking/lockdep.c validate_chain() (check_prev_add() per held lock).
    #[inline]
    pub fn check_acquire(&self, cpu: CpuId, lock: LockId, class: LockClass) -> Result<(), String> {
        let held = &self.held[cpu.idx()];
        if held.ranks >> class.rank_bit() == 0 {
            // Every held lock ranks strictly below: no rule can fail, and `lock` (a lock is
            // only ever taken under classes of one bit) is not among them.
            return Ok(());
        }
        Self::check_held(cpu, held.locks(), lock, class)
    }

    /// [`Lockdep::check_acquire`]'s rules, against every held lock.
    fn check_held(
        cpu: CpuId,
        held: &[(LockId, LockClass)],
        lock: LockId,
        class: LockClass,
    ) -> Result<(), String> {
        for &(h, hc) in held {
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

    #[inline]
    pub fn acquired(&mut self, cpu: CpuId, lock: LockId, class: LockClass) {
        self.held[cpu.idx()].push(lock, class);
    }

    /// [`Lockdep::check_acquire`] and then [`Lockdep::acquired`], in one call (one borrow
    /// for the spinlock wrapper). The lock is recorded even when the check fails, as the
    /// acquisition goes on (the failure ends the run after this step).
    ///
    /// Recording before the lock is won changes nothing anyone sees: while the CPU spins,
    /// only its own code reads its held locks, and it runs none.
    ///
    /// Linux: include/linux/spinlock_api_smp.h __raw_spin_lock(), whose spin_acquire()
    /// (lockdep's lock_acquire()) also runs before the lock is contended for.
    #[inline]
    pub fn acquire(&mut self, cpu: CpuId, lock: LockId, class: LockClass) -> Result<(), String> {
        let r = self.check_acquire(cpu, lock, class);
        self.acquired(cpu, lock, class);
        r
    }

    #[inline]
    pub fn released(&mut self, cpu: CpuId, lock: LockId) -> Result<(), String> {
        let held = &mut self.held[cpu.idx()];
        // Locks are mostly released newest first: look at the top before scanning.
        let top = held.depth.checked_sub(1);
        let found = match top {
            Some(t) if held.stack[t].0 == lock => top,
            _ => held.locks().iter().rposition(|&(h, _)| h == lock),
        };
        match found {
            Some(i) => {
                let entry = held.remove(i);
                if self.log_releases {
                    self.released[cpu.idx()].push(entry);
                }
                Ok(())
            }
            None => Err(format!("cpu{cpu} releases a lock it does not hold")),
        }
    }

    pub fn held(&self, cpu: CpuId) -> &[(LockId, LockClass)] {
        self.held[cpu.idx()].locks()
    }

    pub fn holds(&self, cpu: CpuId, lock: LockId) -> bool {
        self.held(cpu).iter().any(|&(h, _)| h == lock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rank mask's shortcut gives the scan's verdict: every pair and triple of held
    /// classes (on a CPU with two rq locks), taken in every order the checker allowed, then
    /// checked against every class, against a checker that always scans.
    #[test]
    fn rank_shortcut_agrees_with_the_full_scan() {
        let classes = [
            LockClass::WaitQueue,
            LockClass::WorkerPool,
            LockClass::RtMutexWaitLock,
            LockClass::PiLock,
            LockClass::Rq(CpuId(0)),
            LockClass::Rq(CpuId(1)),
            LockClass::MutexWaitLock,
            LockClass::BlockedLock,
            LockClass::BlockedLockNested,
        ];
        let scan = |held: &[(LockId, LockClass)], lock: LockId, class: LockClass| {
            Lockdep::check_held(CpuId(0), held, lock, class)
        };
        let ld_with = |held: &[(LockId, LockClass)]| {
            let mut ld = Lockdep::new(1);
            for &(h, c) in held {
                ld.acquired(CpuId(0), h, c);
            }
            ld
        };
        let mut compared = 0;
        let mut shortcut = 0;
        for a in 0..classes.len() {
            for b in 0..=classes.len() {
                let mut ld = Lockdep::new(1);
                let mut held = vec![(LockId(a as u32), classes[a])];
                ld.acquired(CpuId(0), LockId(a as u32), classes[a]);
                if b < classes.len() {
                    held.push((LockId(b as u32 + 10), classes[b]));
                    ld.acquired(CpuId(0), LockId(b as u32 + 10), classes[b]);
                }
                for (c, &class) in classes.iter().enumerate() {
                    // A fresh lock, and the first held one again where its class could be
                    // this one (one lock, one class, but for the nested blocked_lock).
                    let again = classes[a] == class
                        || (classes[a].rank_bit() == class.rank_bit()
                            && classes[a].rank() >= LockClass::BlockedLock.rank());
                    let probes = [Some(LockId(c as u32 + 20)), again.then_some(LockId(a as u32))];
                    for lock in probes.into_iter().flatten() {
                        let fast = ld.check_acquire(CpuId(0), lock, class);
                        assert_eq!(fast, scan(&held, lock, class), "{held:?} then {class:?}");
                        compared += 1;
                        shortcut += usize::from(ld.held[0].ranks >> class.rank_bit() == 0);
                    }
                }
                // Releasing either lock (the newest, or the oldest from under it) keeps the
                // stack and the mask right for what is left.
                for oldest in [false, true] {
                    let (mut ld, mut held) = (ld_with(&held), held.clone());
                    let i = if oldest { 0 } else { held.len() - 1 };
                    ld.released(CpuId(0), held[i].0).unwrap();
                    held.remove(i);
                    assert_eq!(ld.held(CpuId(0)), &held[..]);
                    let expect = held.iter().fold(0u8, |m, &(_, c)| m | 1 << c.rank_bit());
                    assert_eq!(ld.held[0].ranks, expect, "{held:?}");
                }
            }
        }
        assert!(shortcut > 0 && shortcut < compared, "{shortcut} of {compared}");
    }

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
