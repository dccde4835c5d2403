//! The `replay` strategy: the choices recorded in a [`Case`], fed back in order
//! ([`sim::Replay`]), so the run takes exactly the decisions it took when it failed and prints
//! the same trace, the same violation text and the same exit code.

use harness::Failure;
use sim::{Bounds, ChoiceLog};

use crate::{run_text, Case, Ran};

/// The choice log of `choices` under `case`'s bounds.
pub fn log_of(case: &Case, choices: &[u64]) -> ChoiceLog {
    ChoiceLog {
        bounds: Bounds::from(case.bounds),
        choices: choices.to_vec(),
        ties: 0,
    }
}

/// Run `case`'s workload and flags with `choices` instead of its own (shrinking tries
/// variants); `trace` receives the tracepoint events (a trace writer).
pub fn run_choices(
    case: &Case,
    choices: &[u64],
    trace: Option<Box<dyn kernel::tracepoints::EventSink>>,
) -> Result<Ran, Failure> {
    let log = log_of(case, choices);
    run_text(
        &case.workload_name,
        &case.workload,
        &case.run_flags(),
        &|_| Box::new(sim::Replay::new(&log)),
        &case.replay,
        trace,
    )
}

/// Replay `case` exactly.
pub fn replay(case: &Case, trace: Option<Box<dyn kernel::tracepoints::EventSink>>) -> Result<Ran, Failure> {
    run_choices(case, &case.choices, trace)
}
