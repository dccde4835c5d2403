//! cpudl: per-root-domain map of each CPU's earliest DL deadline, plus the set of CPUs with no
//! DL task (D-12).
//!
//! Linux: kernel/sched/cpudeadline.c.
//!
//! `find_later_rq` asks cpudl for the CPUs where a task of deadline `d` would run at once:
//! the DL-free CPUs it may use, else the CPU whose earliest deadline is the latest of all, if
//! that deadline is later than `d` and the task may run there.
//!
//! Deviation: Linux keeps a binary max-heap (and a per-CPU index into it) so that the latest
//! deadline is found in O(1) and updated in O(log n); the model keeps one `Option<deadline>`
//! per CPU and scans, which is O(n) but deterministic. The heap breaks ties between equal
//! deadlines by heap position; the model takes the lowest CPU id. Like Linux, only the
//! single latest CPU is considered (a task not allowed there gets no later CPU even if
//! another CPU's deadline is also later than its own).

use sim::{CpuId, CpuMask, Nanos};

/// `struct cpudl`. Protected by: `cp->lock` in Linux, taken inside each update; updates are made
/// with the rq lock of the CPU whose value changes held. In the model every update and query is
/// atomic within one machine step, so readers (`cpudl_find`) see a consistent snapshot and must
/// re-validate under the target's rq lock (`find_lock_later_rq`).
#[derive(Clone, Debug)]
pub struct CpuDl {
    /// Earliest deadline queued on each CPU; `None` = no DL entity there.
    pub elements: Vec<Option<Nanos>>,
    /// CPUs with no DL entity (`cp->free_cpus`).
    pub free_cpus: CpuMask,
}

impl CpuDl {
    /// Linux: kernel/sched/cpudeadline.c cpudl_init().
    pub fn new(nr_cpus: usize) -> CpuDl {
        CpuDl {
            elements: vec![None; nr_cpus],
            free_cpus: CpuMask::first_n(nr_cpus),
        }
    }

    /// `cpu`'s earliest deadline is now `dl`.
    ///
    /// Linux: kernel/sched/cpudeadline.c cpudl_set().
    pub fn set(&mut self, cpu: CpuId, dl: Nanos) {
        self.elements[cpu.idx()] = Some(dl);
        self.free_cpus.clear(cpu);
    }

    /// `cpu` has no DL entity any more.
    ///
    /// Linux: kernel/sched/cpudeadline.c cpudl_clear().
    pub fn clear(&mut self, cpu: CpuId) {
        self.elements[cpu.idx()] = None;
        self.free_cpus.set(cpu);
    }

    /// The CPU with the latest earliest-deadline (the heap's root), lowest id among equals.
    ///
    /// Linux: kernel/sched/cpudeadline.c cpudl_maximum() / cpudl_maximum_dl().
    pub fn maximum(&self) -> Option<(CpuId, Nanos)> {
        let mut best: Option<(CpuId, Nanos)> = None;
        for (cpu, dl) in self.elements.iter().enumerate() {
            if let Some(dl) = *dl {
                if best.is_none_or(|(_, b)| dl > b) {
                    best = Some((CpuId(cpu as u32), dl));
                }
            }
        }
        best
    }

    /// The CPUs where a task with absolute deadline `deadline` allowed on `cpus_allowed` would
    /// preempt nothing earlier: the free CPUs it may use, else the latest CPU if it is allowed
    /// and its deadline is later; `None` if there is no such CPU.
    ///
    /// Linux: kernel/sched/cpudeadline.c cpudl_find().
    ///
    /// Deviation: symmetric capacities, so the capacity-fitness branch is not modelled.
    pub fn find(&self, deadline: Nanos, cpus_allowed: &CpuMask) -> Option<CpuMask> {
        let free = self.free_cpus.and(cpus_allowed);
        if !free.is_empty() {
            return Some(free);
        }
        let (best, dl) = self.maximum()?;
        if cpus_allowed.test(best) && deadline < dl {
            return Some(CpuMask::single(best));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpudl_find_prefers_free_cpus_then_the_latest_deadline() {
        let mut cp = CpuDl::new(3);
        let all = CpuMask::first_n(3);
        assert_eq!(cp.find(100, &all), Some(all), "all free");
        cp.set(CpuId(0), 50);
        cp.set(CpuId(1), 200);
        assert_eq!(
            cp.find(100, &all),
            Some(CpuMask::single(CpuId(2))),
            "free cpu2 first"
        );
        cp.set(CpuId(2), 300);
        assert_eq!(cp.maximum(), Some((CpuId(2), 300)));
        assert_eq!(
            cp.find(100, &all),
            Some(CpuMask::single(CpuId(2))),
            "latest deadline"
        );
        assert_eq!(cp.find(300, &all), None, "equal is not later");
        let not2: CpuMask = [0, 1].map(CpuId).into_iter().collect();
        assert_eq!(cp.find(100, &not2), None, "only the heap root is considered");
        cp.clear(CpuId(2));
        assert_eq!(cp.find(400, &not2), None);
        assert_eq!(cp.find(400, &all), Some(CpuMask::single(CpuId(2))));
        cp.set(CpuId(2), 200);
        assert_eq!(cp.maximum(), Some((CpuId(1), 200)), "ties: lowest CPU");
    }
}
