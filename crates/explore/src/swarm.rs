//! The swarm generator's entry point for the explorer: without a workload, each seed runs
//! the FoundationDB-style swarm workload `workload::generate::swarm` makes for it (2 to 16
//! CPUs, fair/RT/DL mixes, mutex graphs and chains, affinities, sleeping owners, workqueue
//! items), with the feature switches of the chosen model.

use harness::Failure;

/// The rt-app JSON text of the swarm workload of `seed` under `model`.
pub fn generate(seed: u64, model: &str) -> Result<String, Failure> {
    Ok(workload::generate::swarm(seed, model))
}

/// [`generate`]'s text with the tree it parses into, positions included
/// (`workload::generate::swarm_tree`).
pub fn generate_tree(seed: u64, model: &str) -> (String, workload::json::Node) {
    workload::generate::swarm_tree(seed, model, &workload::generate::Options::default())
}
