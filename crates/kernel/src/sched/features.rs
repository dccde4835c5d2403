//! The knobs table: scheduler features (`sched_feat`), tunables (sysctls) and, later, the
//! Proxy Execution mechanisms. One row per knob with its Linux default and why it exists.
//!
//! Linux: kernel/sched/features.h, kernel/sched/fair.c (sysctl_sched_*), kernel/sched/rt.c.

macro_rules! feature_table {
    ($( $field:ident = $default:expr, $linux:literal, $doc:literal; )*) => {
        /// Boolean mechanisms, switchable with `--feature NAME=on|off`.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Features {
            $( #[doc = $doc] pub $field: bool, )*
        }

        impl Default for Features {
            fn default() -> Self {
                Features { $( $field: $default, )* }
            }
        }

        /// One row of the table.
        #[derive(Clone, Copy, Debug)]
        pub struct FeatureDesc {
            pub name: &'static str,
            pub default: bool,
            /// Where it comes from in Linux.
            pub linux: &'static str,
            pub doc: &'static str,
        }

        pub const FEATURES: &[FeatureDesc] = &[
            $( FeatureDesc { name: stringify!($field), default: $default, linux: $linux, doc: $doc }, )*
        ];

        impl Features {
            /// Set a feature by name (case-insensitive; `PLACE_LAG` and `place_lag` both work).
            pub fn set(&mut self, name: &str, on: bool) -> Result<(), String> {
                match name.to_ascii_lowercase().as_str() {
                    $( stringify!($field) => self.$field = on, )*
                    _ => return Err(format!(
                        "unknown feature `{name}`; expected one of: {}",
                        FEATURES.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                    )),
                }
                Ok(())
            }

            /// Every feature with its current value, in table order.
            pub fn values(&self) -> Vec<(&'static str, bool)> {
                vec![ $( (stringify!($field), self.$field), )* ]
            }
        }
    };
}

feature_table! {
    place_lag = true, "sched_feat PLACE_LAG", "Keep a waking/migrating entity's lag (F-12).";
    place_deadline_initial = true, "sched_feat PLACE_DEADLINE_INITIAL", "New tasks start with half a slice to their deadline (F-13).";
    place_rel_deadline = true, "sched_feat PLACE_REL_DEADLINE", "Keep the relative deadline across a non-sleep dequeue (F-13).";
    run_to_parity = true, "sched_feat RUN_TO_PARITY", "Protect a picked entity until it reaches its protected vruntime (F-11).";
    preempt_short = true, "sched_feat PREEMPT_SHORT", "A wakee with a shorter slice may cut the protection (F-24).";
    next_buddy = false, "sched_feat NEXT_BUDDY", "Prefer the last wakee at the next pick (off in 6.12).";
    pick_buddy = true, "sched_feat PICK_BUDDY", "Honour an eligible next buddy in pick_eevdf (F-9).";
    cache_hot_buddy = true, "sched_feat CACHE_HOT_BUDDY", "A next buddy on a busy CPU counts as cache hot (F-46).";
    delay_dequeue = true, "sched_feat DELAY_DEQUEUE", "Keep an ineligible sleeper queued until its lag is paid (F-20).";
    delay_zero = true, "sched_feat DELAY_ZERO", "Clip positive lag to zero when a delayed entity leaves (F-14).";
    wakeup_preemption = true, "sched_feat WAKEUP_PREEMPTION", "Let fair wakeups preempt a fair current task (F-24).";
    ttwu_queue = true, "sched_feat TTWU_QUEUE", "Remote wakeups go through the target's wake list and an IPI (W-8).";
    rt_push_ipi = true, "sched_feat RT_PUSH_IPI", "RT pull asks overloaded CPUs to push by IPI instead of locking them (R-12).";
    wa_idle = true, "sched_feat WA_IDLE", "wake_affine prefers an idle CPU (F-31).";
    wa_weight = true, "sched_feat WA_WEIGHT", "wake_affine compares loads (F-31).";
    wa_bias = true, "sched_feat WA_BIAS", "wake_affine biases toward the previous CPU by imbalance_pct (F-31).";
    hrtick = false, "sched_feat HRTICK", "End slices with an hrtimer instead of at the next tick (F-26).";
    donor_migration = true, "Proxy Execution [7.1] proxy_migrate_task()", "A donor whose lock owner is on another CPU moves there instead of being deactivated (D1-D2).";
    chain_migration = true, "Proxy Execution v29 8/9", "Donor migration moves the whole chain (the remote link and every donor lending through it) at once (D2-D3).";
    ttwu_return_migration = true, "Proxy Execution v29 5/9 proxy_needs_return()", "A waking donor away from its wake_cpu leaves the owner's runqueue in try_to_wake_up() and is placed again (R5-R7).";
    is_blocked = true, "Proxy Execution v29 6/9", "Only a task that went through its own voluntary schedule() is a donor; one preempted in the lock slow path runs normally (B5, against the workqueue stall B4).";
    stale_prev_fix = true, "Proxy Execution v29 1/9", "pick_next_task() and prev_balance() read rq->donor when they use it instead of a prev captured before the balance pass, which may drop the rq lock (P1-P2, I12).";
    dl_rq_curr = true, "Proxy Execution v29 3/9 dl_rq->curr", "The deadline class charges and compares against the entity it set as next instead of deriving it from rq->donor (P4), and keeps that entity off the pushable tree when it is queued again; see the doc of deadline::dl_curr.";
    missed_balance_fix = true, "Proxy Execution [7.1] sched: Fix potentially missing balancing with Proxy Exec", "When the donor stays but the task on the CPU changes, __schedule() puts and sets the donor again so RT/DL push work skipped for the on-CPU owner is queued (S8).";
    blocked_donor = true, "Proxy Execution v29 9/9", "An owner's unlock hands the mutex to the donor that was boosting it through that lock instead of the FIFO head (M5-M6, M8).";
    deactivate_link = true, "Proxy Execution v27+ find_proxy_task() (proxy_force_return() removed)", "A chain link that cannot be proxied through (waking, ownerless mutex, sleeping owner) is deactivated and its return left to try_to_wake_up(); off: 7.1's proxy_force_return() and donor deactivation (F2-F4).";
    return_when_needed = false, "post-v29 sched/proxy: Only return migrate when needed", "proxy_needs_return() leaves a waking donor that is on its wake_cpu queued where it is; off (v29): every waking blocked task that is not current goes through a full wakeup (R6).";
    return_when_away = false, "post-v29 proxy_needs_return() (johnstultz-work/linux-dev 014c4be7310b: returns by task_cpu(p) != wake_cpu)", "A waking task queued away from its wake_cpu is sent back through a full wakeup even when its blocked_on is already cleared: a chain link whose proxy deactivation was only a delayed dequeue (B-v29-10); off (v29): such a link is woken in place, outside its affinity (R6).";
    sleeping_owner = false, "post-v29 (v30) proxy_enqueue_on_owner()/activate_blocked_waiters()", "A donor whose lock owner sleeps is parked on the owner and activated on the owner's runqueue when it wakes; off: the link is deactivated (F4, O5).";
    iowait_fix = true, "post-v29 d346306db401 sched: proxy-exec: fix nr_iowait imbalance in do_activate_blocked_waiter()", "An activated parked waiter in iowait is taken off the nr_iowait of the CPU it slept on before it moves; off: after it moves, so the donor CPU leaks +1 and the owner CPU goes -1 (kernel/sched/proxy_iowait_repro.c).";
    proxy_leave_pull = false, "proposal (proxysched), not in any tree of the series: spec O2", "When find_proxy_task() takes an RT or DL donor off this runqueue (deactivated for a sleeping or remote owner, or moved by donor/chain migration), run the pull its blocking would have run (balance_rt()/balance_dl() with it as prev); off (every preset, as the series): proxy_resched_idle() makes idle the prev of the next pick, so no class pull runs and this CPU can idle while RT/DL work waits on an overloaded one (invariant rt_dl_top_n_running).";
    nohz_idle = true, "CONFIG_NO_HZ_IDLE (y in the common distribution configs)", "Idle CPUs stop their tick and a busy CPU's tick kicks an idle load balancer to balance for them (sched::nohz); off: idle CPUs tick and balance for themselves.";
    idle_polling = true, "TIF_POLLING_NRFLAG in the idle loop", "Idle CPUs poll need_resched, so waking them needs no IPI (S-8, I-1).";
    mutex_spin_on_owner = true, "CONFIG_MUTEX_SPIN_ON_OWNER (default y on SMP)", "A mutex contender spins while the owner runs on a CPU instead of sleeping (M-4).";
    dl_server = true, "fair_server (Linux 6.12+, /sys/kernel/debug/sched/fair_server/cpuN/runtime)", "Each CPU's deferred fair server gives fair tasks 50 ms per second under RT/DL load (D-20); off: runtime 0, RT can starve fair tasks.";
    proxy_exec = true, "sched_proxy_exec boot switch (CONFIG_SCHED_PROXY_EXEC)", "Mutex waiters record blocked_on so the scheduler can run the owner on their behalf (spec C6, M1-M4); off: nothing of Proxy Execution happens.";
}

/// Proxy Execution stages of the spec's version map (`--model`), oldest first: each turns
/// off the mechanisms that came later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum ModelVersion {
    /// Single-runqueue proxying as merged for 6.17.
    V6_17,
    /// "Simple donor migration" (7.1): donor migration, scheduler-side return.
    V7_1,
    /// v29 "Optimized Donor Migration" as the series' tree has it
    /// (johnstultz-work/linux-dev kernel/sched/core.c at 32d34d761ad6). The default.
    #[default]
    V29,
    /// The development after v29: return migration only when needed and whenever a waking
    /// task sits away from its wake_cpu (B-v29-10), sleeping-owner parking with per-CPU
    /// nr_iowait accounting (v30 work in the same tree).
    Next,
}

impl ModelVersion {
    pub fn parse(s: &str) -> Option<ModelVersion> {
        match s {
            "6.17" => Some(ModelVersion::V6_17),
            "7.1" => Some(ModelVersion::V7_1),
            "v29" => Some(ModelVersion::V29),
            "next" => Some(ModelVersion::Next),
            _ => None,
        }
    }

    /// Set the Proxy Execution switches to this stage.
    pub fn apply(self, f: &mut Features) {
        let (donor, chain, ttwu_return, donor_handoff) = match self {
            ModelVersion::V6_17 => (false, false, false, false),
            ModelVersion::V7_1 => (true, false, false, false),
            ModelVersion::V29 | ModelVersion::Next => (true, true, true, true),
        };
        let v29_or_later = matches!(self, ModelVersion::V29 | ModelVersion::Next);
        f.is_blocked = v29_or_later;
        f.stale_prev_fix = v29_or_later;
        f.dl_rq_curr = v29_or_later;
        f.deactivate_link = v29_or_later;
        f.return_when_needed = self == ModelVersion::Next;
        f.return_when_away = self == ModelVersion::Next;
        f.sleeping_owner = self == ModelVersion::Next;
        f.iowait_fix = true;
        f.missed_balance_fix = self != ModelVersion::V6_17;
        f.donor_migration = donor;
        f.chain_migration = chain;
        f.ttwu_return_migration = ttwu_return;
        f.blocked_donor = donor_handoff;
    }
}

/// The Proxy Execution mechanisms `proxysched ablate` switches off one at a time (each a row
/// of the table above whose off position reproduces the earlier behaviour).
pub const PROXY_MECHANISMS: &[&str] = &[
    "donor_migration",
    "chain_migration",
    "ttwu_return_migration",
    "is_blocked",
    "stale_prev_fix",
    "dl_rq_curr",
    "missed_balance_fix",
    "blocked_donor",
    "deactivate_link",
];

/// The post-v29 mechanisms `proxysched ablate --model next` also switches off one at a time.
pub const NEXT_MECHANISMS: &[&str] = &[
    "return_when_needed",
    "return_when_away",
    "sleeping_owner",
    "iowait_fix",
];

/// The mechanisms worth switching off one at a time from `f`: every listed one that is on,
/// except `iowait_fix` without `sleeping_owner` (it only changes the parked-waiter path).
pub fn ablation_mechanisms(f: &Features) -> Vec<&'static str> {
    let values = f.values();
    let on = |name: &str| values.iter().any(|&(n, v)| n == name && v);
    PROXY_MECHANISMS
        .iter()
        .chain(NEXT_MECHANISMS)
        .copied()
        .filter(|&n| on(n) && (n != "iowait_fix" || on("sleeping_owner")))
        .collect()
}

/// Numeric tunables (sysctls and boot parameters), with units in their names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunables {
    /// `CONFIG_HZ`: ticks per second.
    pub hz: u64,
    /// `sysctl_sched_base_slice` before CPU-count scaling (`normalized_sysctl_sched_base_slice`).
    pub base_slice_normalized_ns: u64,
    /// `sysctl_sched_migration_cost`: a task that ran this recently is cache hot (F-46).
    pub migration_cost_ns: u64,
    /// `sysctl_sched_nr_migrate`: tasks scanned per balance pass.
    pub nr_migrate: u32,
    /// `sched_rr_timeslice` (RR_TIMESLICE = 100 ms).
    pub rr_timeslice_ms: u64,
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables {
            hz: 1000,
            base_slice_normalized_ns: 700_000,
            migration_cost_ns: 500_000,
            nr_migrate: 32,
            rr_timeslice_ms: 100,
        }
    }
}

impl Tunables {
    /// `TICK_NSEC`.
    pub fn tick_ns(&self) -> u64 {
        1_000_000_000 / self.hz
    }

    /// `sysctl_sched_base_slice` after `update_sysctl()` scaling (F-6):
    /// normalized × (1 + ⌊log₂ min(ncpus, 8)⌋).
    pub fn base_slice_ns(&self, nr_cpus: usize) -> u64 {
        let factor = 1 + (nr_cpus.min(8) as u64).ilog2() as u64;
        self.base_slice_normalized_ns * factor
    }

    /// RR time slice in ticks.
    pub fn rr_timeslice_ticks(&self) -> u32 {
        (self.rr_timeslice_ms * self.hz / 1000) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_slice_scales_with_log2_of_cpus() {
        let t = Tunables::default();
        assert_eq!(t.base_slice_ns(1), 700_000);
        assert_eq!(t.base_slice_ns(2), 1_400_000);
        assert_eq!(t.base_slice_ns(4), 2_100_000);
        assert_eq!(t.base_slice_ns(64), 2_800_000);
    }

    #[test]
    fn features_set_by_name() {
        let mut f = Features::default();
        f.set("PLACE_LAG", false).unwrap();
        assert!(!f.place_lag);
        assert!(f.set("no_such_thing", true).is_err());
    }
}
