//! The swarm generator's entry point for the explorer.
//!
//! The generator itself (`workload::generate::swarm(seed, model) -> String`, FoundationDB-
//! style swarm workloads) is written on another branch of issue 9.
// TODO(issue 9, h-swarm): replace the body with `Ok(workload::generate::swarm(seed, model))`
// once `workload::generate` is merged; until then `explore` without a workload refuses to run.

use harness::Failure;

/// The rt-app JSON text of the swarm workload of `seed` under `model`.
pub fn generate(seed: u64, model: &str) -> Result<String, Failure> {
    let _ = (seed, model);
    Err(Failure::BadInput(
        "error: explore without a WORKLOAD needs the swarm generator (workload::generate::swarm), \
         which is not in this build yet; give a workload file"
            .to_string(),
    ))
}
