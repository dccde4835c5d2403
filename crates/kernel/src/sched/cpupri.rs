//! cpupri: per-root-domain map from RT priority level to the CPUs at that level.
//!
//! Linux: kernel/sched/cpupri.c.

use sim::{CpuId, CpuMask};

/// Levels: -1 invalid, 0 = no RT (CPUPRI_NORMAL), 1..=99 = rt_priority of the CPU's best RT
/// task, 100 = a DL task is present (CPUPRI_HIGHER).
pub const CPUPRI_NR_PRIORITIES: usize = 101;
pub const CPUPRI_INVALID: i32 = -1;
pub const CPUPRI_NORMAL: i32 = 0;
pub const CPUPRI_HIGHER: i32 = 100;

pub struct CpuPri {
    /// Level of each CPU.
    pub cpu_to_pri: Vec<i32>,
    /// CPUs at each level.
    pub pri_to_cpu: Vec<CpuMask>,
}

impl CpuPri {
    pub fn new(nr_cpus: usize) -> CpuPri {
        let mut pri_to_cpu = vec![CpuMask::empty(); CPUPRI_NR_PRIORITIES];
        pri_to_cpu[CPUPRI_NORMAL as usize] = CpuMask::first_n(nr_cpus);
        CpuPri { cpu_to_pri: vec![CPUPRI_NORMAL; nr_cpus], pri_to_cpu }
    }

    /// `cpupri_set()`: record `cpu`'s new level.
    pub fn set(&mut self, cpu: CpuId, newpri: i32) {
        let old = self.cpu_to_pri[cpu as usize];
        if old == newpri {
            return;
        }
        if old >= 0 {
            self.pri_to_cpu[old as usize].clear(cpu);
        }
        if newpri >= 0 {
            self.pri_to_cpu[newpri as usize].set(cpu);
        }
        self.cpu_to_pri[cpu as usize] = newpri;
    }
}
