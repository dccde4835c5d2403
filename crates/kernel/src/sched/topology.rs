//! CPU topology and scheduling domains.
//!
//! Linux: kernel/sched/topology.c (sched_domain, sched_group, build_sched_domains).
//!
//! Deviation: symmetric CPUs of capacity 1024 (SCHED_CAPACITY_SCALE), no SMT, no NUMA. By
//! default one LLC (an MC domain spanning every CPU); a workload may split the CPUs into LLCs
//! of `llc_size` CPUs, which adds a PKG domain above the MC domains.

use sim::{CpuId, CpuMask};

pub const SCHED_CAPACITY_SCALE: u64 = 1024;

/// `SD_*` flags that the model uses.
pub mod sd {
    pub const BALANCE_NEWIDLE: u32 = 0x1;
    pub const BALANCE_EXEC: u32 = 0x2;
    pub const BALANCE_FORK: u32 = 0x4;
    pub const WAKE_AFFINE: u32 = 0x10;
    pub const SHARE_LLC: u32 = 0x100;
    pub const PREFER_SIBLING: u32 = 0x1000;
}

/// One level of one CPU's domain hierarchy.
#[derive(Clone, Debug)]
pub struct SchedDomain {
    /// `MC` or `PKG`.
    pub name: &'static str,
    pub span: CpuMask,
    /// The child groups (each the span of a child domain, or single CPUs at the lowest level).
    pub groups: Vec<CpuMask>,
    pub flags: u32,
    /// `imbalance_pct`.
    pub imbalance_pct: u32,
    /// `cache_nice_tries`.
    pub cache_nice_tries: u32,
    /// `min_interval`/`max_interval` in ms (`span_weight`, `2 * span_weight`).
    pub min_interval_ms: u64,
    pub max_interval_ms: u64,
    /// `busy_factor`.
    pub busy_factor: u64,
}

pub struct Topology {
    pub nr_cpus: usize,
    /// LLC id of each CPU.
    pub llc_id: Vec<u32>,
    /// `per_cpu(sd_llc)` span per CPU.
    pub llc_span: Vec<CpuMask>,
    /// Domains per CPU, lowest first.
    pub domains: Vec<Vec<SchedDomain>>,
}

impl Topology {
    /// `nr_cpus` CPUs in LLCs of `llc_size` (None: one LLC).
    ///
    /// Linux: kernel/sched/topology.c build_sched_domains() (with sd_init() for each level).
    pub fn new(nr_cpus: usize, llc_size: Option<usize>) -> Topology {
        let llc_size = llc_size.unwrap_or(nr_cpus).clamp(1, nr_cpus);
        let all = CpuMask::first_n(nr_cpus);
        let llc_id: Vec<u32> = (0..nr_cpus).map(|c| (c / llc_size) as u32).collect();
        let nr_llc = nr_cpus.div_ceil(llc_size);
        let llc_masks: Vec<CpuMask> = (0..nr_llc)
            .map(|l| {
                (0..nr_cpus)
                    .filter(|&c| c / llc_size == l)
                    .map(|c| CpuId(c as u32))
                    .collect()
            })
            .collect();
        let mut domains = Vec::with_capacity(nr_cpus);
        for c in 0..nr_cpus {
            let mut v = Vec::new();
            let llc = llc_masks[llc_id[c] as usize];
            if llc.weight() > 1 {
                v.push(SchedDomain {
                    name: "MC",
                    span: llc,
                    groups: llc.iter().map(CpuMask::single).collect(),
                    flags: sd::BALANCE_NEWIDLE
                        | sd::BALANCE_EXEC
                        | sd::BALANCE_FORK
                        | sd::WAKE_AFFINE
                        | sd::SHARE_LLC
                        | sd::PREFER_SIBLING,
                    imbalance_pct: 117,
                    cache_nice_tries: 1,
                    min_interval_ms: llc.weight() as u64,
                    max_interval_ms: 2 * llc.weight() as u64,
                    busy_factor: 16,
                });
            }
            if nr_llc > 1 {
                v.push(SchedDomain {
                    name: "PKG",
                    span: all,
                    groups: llc_masks.clone(),
                    flags: sd::BALANCE_NEWIDLE
                        | sd::BALANCE_EXEC
                        | sd::BALANCE_FORK
                        | sd::WAKE_AFFINE
                        | sd::PREFER_SIBLING,
                    imbalance_pct: 117,
                    cache_nice_tries: 1,
                    min_interval_ms: nr_cpus as u64,
                    max_interval_ms: 2 * nr_cpus as u64,
                    busy_factor: 16,
                });
            }
            domains.push(v);
        }
        Topology {
            nr_cpus,
            llc_span: (0..nr_cpus).map(|c| llc_masks[llc_id[c] as usize]).collect(),
            llc_id,
            domains,
        }
    }

    /// `cpus_share_cache()`.
    ///
    /// Linux: kernel/sched/core.c cpus_share_cache().
    pub fn share_cache(&self, a: CpuId, b: CpuId) -> bool {
        self.llc_id[a.idx()] == self.llc_id[b.idx()]
    }
}
