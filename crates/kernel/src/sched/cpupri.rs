//! cpupri: per-root-domain map from RT priority level to the CPUs at that level.
//!
//! Linux: kernel/sched/cpupri.c.
//!
//! Each CPU sits at exactly one level: the level of the strongest RT task queued on it
//! (`rt_rq->highest_prio.curr`), or CPUPRI_NORMAL when it has none. A task looking for a CPU
//! to run on scans the levels from the weakest upward and stops at the first level, strictly
//! weaker than its own, that holds a CPU it may use.
//!
//! Deviation: Linux keeps a per-level atomic count next to each mask so that lock-free readers
//! can skip empty levels cheaply; here every update is atomic within one machine step, so a
//! bitmap of the non-empty levels stands for the counts (bit `i` set iff count `i` > 0), and
//! the search visits only non-empty levels instead of testing every level's mask. The model
//! has no hotplug, so the `cpu_active_mask` filter is the identity.

use sim::{CpuId, CpuMask};

/// Levels: -1 invalid, 0 = no RT (CPUPRI_NORMAL), 1..=99 = rt_priority of the CPU's best RT
/// task, 100 = a DL task is present (CPUPRI_HIGHER).
pub const CPUPRI_NR_PRIORITIES: usize = 101;
pub const CPUPRI_INVALID: i32 = -1;
pub const CPUPRI_NORMAL: i32 = 0;
pub const CPUPRI_HIGHER: i32 = 100;

/// `MAX_RT_PRIO`: kernel priorities below this are RT (T-7).
const MAX_RT_PRIO: i32 = 100;

/// Map a kernel priority (`p->prio` or `rt_rq->highest_prio.curr`) to a cpupri level.
///
/// Linux: kernel/sched/cpupri.c convert_prio().
///
/// RT prio 0..=98 (rt_priority 99..=1) becomes level 99..=1; `MAX_RT_PRIO - 1` (99, the value
/// an RT queue without tasks reports) becomes CPUPRI_NORMAL; `MAX_RT_PRIO` becomes
/// CPUPRI_HIGHER. Fair priorities (100..) also map to CPUPRI_NORMAL: a fair task looking for
/// a CPU can beat nothing in cpupri.
///
/// Deviation: Linux only accepts -1..=100 here; the model folds fair priorities into
/// CPUPRI_NORMAL so callers need not special-case them.
pub fn convert_prio(prio: i32) -> i32 {
    match prio {
        CPUPRI_INVALID => CPUPRI_INVALID,
        0..=98 => MAX_RT_PRIO - 1 - prio,
        99 => CPUPRI_NORMAL,
        MAX_RT_PRIO => CPUPRI_HIGHER,
        p if p > MAX_RT_PRIO => CPUPRI_NORMAL,
        p => panic!("convert_prio: no cpupri level for prio {p}"),
    }
}

/// `struct cpupri`. Protected by: updates happen under the rq lock of the CPU whose level
/// changes; readers (`cpupri_find`) take no lock, exactly as in Linux, and must re-validate
/// under the target's rq lock (`find_lock_lowest_rq`).
pub struct CpuPri {
    /// Level of each CPU.
    pub cpu_to_pri: Vec<i32>,
    /// CPUs at each level.
    pub pri_to_cpu: Vec<CpuMask>,
    /// Bit `i` set iff level `i` holds a CPU (`pri_to_cpu[i].count != 0`).
    nonempty: u128,
}

impl CpuPri {
    pub fn new(nr_cpus: usize) -> CpuPri {
        let mut pri_to_cpu = vec![CpuMask::empty(); CPUPRI_NR_PRIORITIES];
        pri_to_cpu[CPUPRI_NORMAL as usize] = CpuMask::first_n(nr_cpus);
        CpuPri {
            cpu_to_pri: vec![CPUPRI_NORMAL; nr_cpus],
            pri_to_cpu,
            nonempty: if nr_cpus > 0 { 1 << CPUPRI_NORMAL } else { 0 },
        }
    }

    /// Record `cpu`'s new level (already converted with [`convert_prio`]).
    ///
    /// Linux: kernel/sched/cpupri.c cpupri_set().
    ///
    /// Deviation: Linux takes a kernel priority and converts it inside; the model takes the
    /// level so that other classes can set CPUPRI_HIGHER directly. Linux also orders the
    /// "add to new level" before the "remove from old level" with barriers so lock-free
    /// readers never miss the CPU; the model's update is atomic.
    pub fn set(&mut self, cpu: CpuId, newpri: i32) {
        assert!(
            (CPUPRI_INVALID..CPUPRI_NR_PRIORITIES as i32).contains(&newpri),
            "cpupri level {newpri} out of range"
        );
        let old = self.cpu_to_pri[cpu.idx()];
        if old == newpri {
            return;
        }
        if old >= 0 {
            assert!(
                self.pri_to_cpu[old as usize].test(cpu),
                "cpu{cpu} missing from its cpupri level {old}"
            );
            self.pri_to_cpu[old as usize].clear(cpu);
            if self.pri_to_cpu[old as usize].is_empty() {
                self.nonempty &= !(1u128 << old);
            }
        }
        if newpri >= 0 {
            self.pri_to_cpu[newpri as usize].set(cpu);
            self.nonempty |= 1u128 << newpri;
        }
        self.cpu_to_pri[cpu.idx()] = newpri;
    }

    /// The CPUs in `cpus_allowed` at the weakest level strictly below the level of a task of
    /// priority `task_prio`, or `None` if every allowed CPU runs something at least as strong.
    ///
    /// Linux: kernel/sched/cpupri.c cpupri_find() / cpupri_find_fitness() / __cpupri_find().
    ///
    /// Deviation: symmetric CPUs, so the fitness callback (asymmetric capacity) is always
    /// satisfied and the fitness fallback pass never runs. Linux returns 0/1 and fills a
    /// caller-provided `lowest_mask` (or none); the model returns the mask, and callers that
    /// only need the yes/no answer use `is_some()`.
    pub fn find(&self, task_prio: i32, cpus_allowed: &CpuMask) -> Option<CpuMask> {
        let task_pri = convert_prio(task_prio);
        assert!(task_pri >= 0, "cpupri_find for a task with an invalid level");
        // The non-empty levels strictly below the task's, weakest first (the count skip).
        let mut levels = self.nonempty & ((1u128 << task_pri) - 1);
        while levels != 0 {
            let idx = levels.trailing_zeros() as usize;
            levels &= levels - 1;
            let lowest = self.pri_to_cpu[idx].and(cpus_allowed);
            if !lowest.is_empty() {
                return Some(lowest);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convert_prio_maps_rt_levels() {
        assert_eq!(convert_prio(0), 99, "rt_priority 99");
        assert_eq!(convert_prio(98), 1, "rt_priority 1");
        assert_eq!(convert_prio(99), CPUPRI_NORMAL, "empty RT queue");
        assert_eq!(convert_prio(120), CPUPRI_NORMAL, "fair");
        assert_eq!(convert_prio(100), CPUPRI_HIGHER);
        assert_eq!(convert_prio(-1), CPUPRI_INVALID);
    }

    #[test]
    fn rt_cpupri_find_picks_lowest_level_within_affinity() {
        let mut cp = CpuPri::new(4);
        // cpu0: rt_priority 50, cpu1: 10, cpu2: 10, cpu3: no RT.
        cp.set(CpuId(0), convert_prio(49));
        cp.set(CpuId(1), convert_prio(89));
        cp.set(CpuId(2), convert_prio(89));
        let all = CpuMask::first_n(4);
        // A prio-10 task (rt_priority 89): cpu3 is free.
        assert_eq!(cp.find(10, &all), Some(CpuMask::single(CpuId(3))));
        // Without cpu3 in the affinity, level 10 has cpu1 and cpu2 (both, lowest level).
        let no3: CpuMask = [0, 1, 2].map(CpuId).into_iter().collect();
        assert_eq!(cp.find(10, &no3), Some([1, 2].map(CpuId).into_iter().collect()));
        // Affinity limited to cpu2 and cpu0: cpu2 (level 10) beats cpu0 (level 50).
        let m02: CpuMask = [0, 2].map(CpuId).into_iter().collect();
        assert_eq!(cp.find(10, &m02), Some(CpuMask::single(CpuId(2))));
        // A task at rt_priority 10 cannot beat level-10 CPUs (strictly below only) ...
        let m12: CpuMask = [1, 2].map(CpuId).into_iter().collect();
        assert_eq!(cp.find(89, &m12), None);
        // ... and a task at rt_priority 50 cannot beat cpu0 at 50.
        assert_eq!(cp.find(49, &CpuMask::single(CpuId(0))), None);
        // Moving a CPU between levels removes it from the old one.
        cp.set(CpuId(3), convert_prio(0));
        assert!(!cp.pri_to_cpu[CPUPRI_NORMAL as usize].test(CpuId(3)));
        assert_eq!(cp.find(10, &all), Some([1, 2].map(CpuId).into_iter().collect()));
    }

    #[test]
    fn cpupri_find_follows_levels_that_empty_and_fill_again() {
        // The kernel prio of an RT task at cpupri level `l` (rt_priority `l`).
        let prio = |l: i32| MAX_RT_PRIO - 1 - l;
        assert_eq!(convert_prio(prio(70)), 70);
        let mut cp = CpuPri::new(2);
        let all = CpuMask::first_n(2);
        // Both CPUs leave CPUPRI_NORMAL for level 30: that level is now the weakest.
        cp.set(CpuId(0), 30);
        cp.set(CpuId(1), 30);
        assert_eq!(cp.find(prio(70), &all), Some(all), "level 30 for a level-70 task");
        assert_eq!(cp.find(prio(30), &all), None, "nothing strictly below level 30");
        // Level 30 empties as both move up; a level-55 task sees only level 50.
        cp.set(CpuId(0), 50);
        cp.set(CpuId(1), 60);
        assert_eq!(cp.find(prio(40), &all), None);
        assert_eq!(cp.find(prio(55), &all), Some(CpuMask::single(CpuId(0))));
        // CPU 1 drops back to CPUPRI_NORMAL: the weakest non-empty level again.
        cp.set(CpuId(1), CPUPRI_NORMAL);
        assert_eq!(cp.find(prio(55), &all), Some(CpuMask::single(CpuId(1))));
        // Invalid (offline) takes a CPU off every level.
        cp.set(CpuId(1), CPUPRI_INVALID);
        assert_eq!(cp.find(prio(40), &all), None);
    }
}
