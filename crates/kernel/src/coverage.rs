//! Named coverage marks: counters for rare kernel paths, so that a sweep can say what it
//! reached and a test can assert "reached within seeds 0..N" instead of pinning one seed.
//!
//! A mark is hit where the modelled code takes the path; hitting it only adds one to a
//! counter in [`SchedState`](crate::sched::SchedState). Marks never draw from the oracle,
//! never take a lock and never emit an event, so they have no effect on the schedule, and the
//! counts are as deterministic as the run. [`Outcome::coverage`](crate::system::Outcome)
//! carries them out of a run.

/// One rare path. The order is the order of reports; the names are stable (an explorer
/// aggregates them across runs and tests name them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    /// `find_proxy_task()` met a link marked waking (F2): the unlocker chose it and its
    /// wakeup is on the way.
    ChainWakingLink,
    /// `find_proxy_task()` met a link whose mutex has no owner (F3).
    ChainOwnerlessMutex,
    /// F4, v29: the owner sleeps and the link is deactivated (`deactivate_link`).
    SleepingOwnerDeactivateLink,
    /// F4, 7.1: the owner sleeps and the donor is deactivated.
    SleepingOwnerDeactivateDonor,
    /// F4, post-v29 `sleeping_owner`: the donor is parked on the sleeping owner.
    SleepingOwnerParkDonor,
    /// F4/F5 with the current task in the chain: the CPU runs idle until the re-pick.
    ChainCurrInChainRunsIdle,
    /// F6: the owner is migrating to this CPU; the walk runs idle.
    ChainOwnerMigrating,
    /// A donor migration (D2) moved one task to the owner's CPU.
    DonorMigrationSingle,
    /// A whole-chain migration moved two tasks.
    ChainMigrationDepth2,
    /// A whole-chain migration moved three or more tasks.
    ChainMigrationDepth3Plus,
    /// `rq->donor` changed while the pick's class balance pass had dropped the rq lock (the
    /// B-v29-1 window).
    DonorChangedInBalance,
    /// `try_to_wake_up()` sent a donor home (`proxy_needs_return()`, R3).
    TtwuReturnMigration,
    /// `proxy_reset_donor()` (S12): a remote wakeup took this rq's donor away.
    ProxyResetDonor,
    /// `proxy_force_return()` moved a donor home (R9).
    ProxyForceReturn,
    /// `proxy_force_return()` found the task already gone and did nothing.
    ProxyForceReturnStale,
    /// The chain walk hit [`MAX_PROXY_CHAIN_DEPTH`](crate::sched::core::MAX_PROXY_CHAIN_DEPTH).
    ChainDepthBound,
    /// A signal woke a task that was still queued as a blocked donor (waiting for a mutex in
    /// `mutex_lock_interruptible()` with `blocked_on` set): a remote wakeup of a donor that
    /// no unlock caused.
    SignalWakesBlockedDonor,
    /// An owner running on another task's context released a mutex through which its
    /// donor's chain reaches it now, but not by the hop the last chain walk recorded (the
    /// chain re-formed after the pick): the lock went by the series' rule, not to that
    /// waiter (`proxy_handoff_to_booster` leaves the case out).
    HandoffChainReformed,
}

impl Mark {
    /// Every mark, in report order.
    pub const ALL: [Mark; 18] = [
        Mark::ChainWakingLink,
        Mark::ChainOwnerlessMutex,
        Mark::SleepingOwnerDeactivateLink,
        Mark::SleepingOwnerDeactivateDonor,
        Mark::SleepingOwnerParkDonor,
        Mark::ChainCurrInChainRunsIdle,
        Mark::ChainOwnerMigrating,
        Mark::DonorMigrationSingle,
        Mark::ChainMigrationDepth2,
        Mark::ChainMigrationDepth3Plus,
        Mark::DonorChangedInBalance,
        Mark::TtwuReturnMigration,
        Mark::ProxyResetDonor,
        Mark::ProxyForceReturn,
        Mark::ProxyForceReturnStale,
        Mark::ChainDepthBound,
        Mark::SignalWakesBlockedDonor,
        Mark::HandoffChainReformed,
    ];

    /// The stable name reported for the mark.
    pub fn name(self) -> &'static str {
        match self {
            Mark::ChainWakingLink => "chain_walk_waking_link",
            Mark::ChainOwnerlessMutex => "chain_walk_ownerless_mutex",
            Mark::SleepingOwnerDeactivateLink => "sleeping_owner_deactivate_link",
            Mark::SleepingOwnerDeactivateDonor => "sleeping_owner_deactivate_donor",
            Mark::SleepingOwnerParkDonor => "sleeping_owner_park_donor",
            Mark::ChainCurrInChainRunsIdle => "chain_walk_curr_in_chain_runs_idle",
            Mark::ChainOwnerMigrating => "chain_walk_owner_migrating",
            Mark::DonorMigrationSingle => "donor_migration_single",
            Mark::ChainMigrationDepth2 => "chain_migration_depth_2",
            Mark::ChainMigrationDepth3Plus => "chain_migration_depth_3_plus",
            Mark::DonorChangedInBalance => "donor_changed_in_balance",
            Mark::TtwuReturnMigration => "ttwu_return_migration",
            Mark::ProxyResetDonor => "proxy_reset_donor",
            Mark::ProxyForceReturn => "proxy_force_return",
            Mark::ProxyForceReturnStale => "proxy_force_return_stale",
            Mark::ChainDepthBound => "chain_walk_depth_bound",
            Mark::SignalWakesBlockedDonor => "signal_wakes_blocked_donor",
            Mark::HandoffChainReformed => "handoff_chain_reformed",
        }
    }

    /// The path the mark counts, in one line (for `docs/invariants.md`).
    pub fn doc(self) -> &'static str {
        match self {
            Mark::ChainWakingLink => "`find_proxy_task()` met a link marked waking (F2): the unlocker chose it and its wakeup is on the way",
            Mark::ChainOwnerlessMutex => "`find_proxy_task()` met a link whose mutex has no owner (F3)",
            Mark::SleepingOwnerDeactivateLink => "F4 under v29 (`deactivate_link`): the owner sleeps, the link is deactivated",
            Mark::SleepingOwnerDeactivateDonor => "F4 under 7.1: the owner sleeps, the donor is deactivated",
            Mark::SleepingOwnerParkDonor => "F4 with post-v29 `sleeping_owner`: the donor is parked on the sleeping owner",
            Mark::ChainCurrInChainRunsIdle => "F4/F5 with the current task in the chain: the CPU runs idle until the re-pick",
            Mark::ChainOwnerMigrating => "F6: the owner is migrating to this CPU; the walk runs idle",
            Mark::DonorMigrationSingle => "`proxy_migrate_task()` moved one task to the owner's CPU",
            Mark::ChainMigrationDepth2 => "`proxy_migrate_task()` moved a chain of two tasks",
            Mark::ChainMigrationDepth3Plus => "`proxy_migrate_task()` moved a chain of three or more tasks",
            Mark::DonorChangedInBalance => "`rq->donor` changed while the pick's class balance pass had dropped the rq lock (the B-v29-1 window)",
            Mark::TtwuReturnMigration => "`try_to_wake_up()` sent a donor home (`proxy_needs_return()`, R3)",
            Mark::ProxyResetDonor => "`proxy_reset_donor()` (S12): a remote wakeup took the rq's donor while its owner ran",
            Mark::ProxyForceReturn => "`proxy_force_return()` moved a donor home (R9)",
            Mark::ProxyForceReturnStale => "`proxy_force_return()` found the task gone or running and moved nothing",
            Mark::ChainDepthBound => "the chain walk hit `MAX_PROXY_CHAIN_DEPTH` and ran idle",
            Mark::SignalWakesBlockedDonor => "a signal woke a queued blocked donor (a `mutex_lock_interruptible()` waiter with `blocked_on` set)",
            Mark::HandoffChainReformed => "an unlock by an owner running on another task's context: the donor's chain reaches it through a waiter of this mutex by a hop the last chain walk did not record (re-formed after the pick), and the lock goes elsewhere, as the series does (the case `proxy_handoff_to_booster` leaves out)",
        }
    }

    /// The mark of a name, if any.
    pub fn from_name(name: &str) -> Option<Mark> {
        Mark::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The counters of one run, one per [`Mark`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    hits: [u64; Mark::ALL.len()],
}

impl Coverage {
    /// Count one pass through `mark`'s path.
    pub fn hit(&mut self, mark: Mark) {
        self.hits[mark as usize] += 1;
    }

    /// How often `mark` was hit.
    pub fn count(&self, mark: Mark) -> u64 {
        self.hits[mark as usize]
    }

    /// Every mark with its count, in report order (zeros included, so that a sweep can list
    /// what it never reached).
    pub fn iter(&self) -> impl Iterator<Item = (Mark, u64)> + '_ {
        Mark::ALL.into_iter().map(|m| (m, self.hits[m as usize]))
    }

    /// Add another run's counts (an explorer aggregating seeds).
    pub fn merge(&mut self, other: &Coverage) {
        for (a, b) in self.hits.iter_mut().zip(other.hits) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_listed_once_in_discriminant_order_with_distinct_names() {
        for (i, m) in Mark::ALL.into_iter().enumerate() {
            assert_eq!(m as usize, i, "{m:?} out of place in Mark::ALL");
            assert_eq!(Mark::from_name(m.name()), Some(m));
        }
        let mut names: Vec<&str> = Mark::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Mark::ALL.len());
    }

    #[test]
    fn hits_count_per_mark_and_merge_adds() {
        let mut a = Coverage::default();
        a.hit(Mark::ProxyResetDonor);
        a.hit(Mark::ProxyResetDonor);
        a.hit(Mark::ChainDepthBound);
        let mut b = Coverage::default();
        b.hit(Mark::ProxyResetDonor);
        b.merge(&a);
        assert_eq!(b.count(Mark::ProxyResetDonor), 3);
        assert_eq!(b.count(Mark::ChainDepthBound), 1);
        assert_eq!(b.count(Mark::TtwuReturnMigration), 0);
        assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), 4);
    }
}
