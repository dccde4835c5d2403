//! The cost model: how much simulated time each kernel operation takes (`--costs`).
//!
//! Defaults are the "initial defaults" of spec/linux-sched-model.md §9 for a recent x86 core
//! at about 3 GHz. Sources per field: K-1 idle exit (intel_idle C1 table, 2 µs); K-2/K-3 switch
//! and pick (futex/pipe ping-pong write-ups ≈ 1.1 µs per switch on 6.6, lmbench `lat_ctx`);
//! K-6 local/remote wake (estimate); K-7 IPI (published write-ups 1–3 µs round trip; estimate);
//! K-8 polling-idle wake; K-9 migration; K-11 tick; K-12 uncontended lock (two atomic RMWs);
//! K-15 one rt_mutex PI chain step. Everything but K-1 and K-3 is an estimate ([GUESS] in the
//! spec). `zero` makes every operation free, so schedules can be checked to the nanosecond.

use serde::{Deserialize, Serialize};
use sim::time::MAX_COST_NS;

/// The field names of [`Costs`], as cost files spell them.
pub const FIELDS: [&str; 16] = [
    "context_switch_ns",
    "schedule_no_switch_ns",
    "wake_local_ns",
    "wake_remote_ns",
    "ipi_latency_ns",
    "poll_wake_ns",
    "idle_exit_ns",
    "migration_ns",
    "tick_ns",
    "spin_lock_ns",
    "spin_handoff_ns",
    "newidle_balance_ns",
    "mutex_fast_ns",
    "mutex_slowpath_ns",
    "pi_chain_step_ns",
    "timer_slack_ns",
];

/// The 1-based line and column of the member `"key":` in a cost object's text (the text was
/// parsed already, so the key is there; (1, 1) if not, which cannot happen).
fn key_position(text: &str, key: &str) -> (usize, usize) {
    let quoted = format!("\"{key}\"");
    let mut from = 0;
    while let Some(i) = text[from..].find(&quoted) {
        let at = from + i;
        let rest = text[at + quoted.len()..].trim_start();
        if rest.starts_with(':') {
            let before = &text[..at];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            return (line, column);
        }
        from = at + quoted.len();
    }
    (1, 1)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Costs {
    /// `context_switch()` including the scheduler pass that picked (K-3).
    pub context_switch_ns: u64,
    /// `__schedule()` that ends without a switch (K-2).
    pub schedule_no_switch_ns: u64,
    /// Waker-side work of a local wakeup and enqueue (K-6).
    pub wake_local_ns: u64,
    /// Waker-side work of a remote (wake-list) wakeup (K-6).
    pub wake_remote_ns: u64,
    /// IPI send to handler entry (K-7).
    pub ipi_latency_ns: u64,
    /// Waking an idle CPU that polls `need_resched` (K-8).
    pub poll_wake_ns: u64,
    /// Leaving the idle state (C1) before the first instruction runs (K-1).
    pub idle_exit_ns: u64,
    /// Dequeue/enqueue work of a direct migration (K-9).
    pub migration_ns: u64,
    /// One scheduler tick (K-11).
    pub tick_ns: u64,
    /// One raw spinlock acquisition, uncontended (K-12).
    pub spin_lock_ns: u64,
    /// From a spinlock's release to the next spinner owning it (K-13).
    pub spin_handoff_ns: u64,
    /// One newidle balance pass over one domain (K-10).
    pub newidle_balance_ns: u64,
    /// Uncontended mutex lock+unlock (K-12).
    pub mutex_fast_ns: u64,
    /// Mutex slow path overhead (K-14).
    pub mutex_slowpath_ns: u64,
    /// One link of the rt_mutex priority-inheritance chain walk: requeue a waiter and
    /// adjust one owner's priority (K-15).
    pub pi_chain_step_ns: u64,
    /// `timer_slack_ns` of fair tasks (Linux default 50 µs; RT and DL tasks get 0). Not a
    /// processing cost, but part of the latency model, so `zero` clears it too.
    pub timer_slack_ns: u64,
}

impl Default for Costs {
    fn default() -> Self {
        Costs {
            context_switch_ns: 1_200,
            schedule_no_switch_ns: 300,
            wake_local_ns: 500,
            wake_remote_ns: 300,
            ipi_latency_ns: 1_000,
            poll_wake_ns: 300,
            idle_exit_ns: 2_000,
            migration_ns: 1_000,
            tick_ns: 1_000,
            spin_lock_ns: 20,
            spin_handoff_ns: 100,
            newidle_balance_ns: 2_000,
            mutex_fast_ns: 20,
            mutex_slowpath_ns: 200,
            pi_chain_step_ns: 500,
            timer_slack_ns: 50_000,
        }
    }
}

impl Costs {
    /// Every cost zero: exact textbook schedules.
    pub fn zero() -> Self {
        Costs {
            context_switch_ns: 0,
            schedule_no_switch_ns: 0,
            wake_local_ns: 0,
            wake_remote_ns: 0,
            ipi_latency_ns: 0,
            poll_wake_ns: 0,
            idle_exit_ns: 0,
            migration_ns: 0,
            tick_ns: 0,
            spin_lock_ns: 0,
            spin_handoff_ns: 0,
            newidle_balance_ns: 0,
            mutex_fast_ns: 0,
            mutex_slowpath_ns: 0,
            pi_chain_step_ns: 0,
            timer_slack_ns: 0,
        }
    }

    /// A cost file: a JSON object with any subset of the fields; the rest keep the defaults.
    /// Errors read `LINE:COL: error: MESSAGE`; a cost over [`MAX_COST_NS`] is an error at its
    /// key, naming the key and the limit.
    pub fn from_json(text: &str) -> Result<Costs, String> {
        let costs: Costs =
            serde_json::from_str(text).map_err(|e| format!("{}:{}: error: {e}", e.line(), e.column()))?;
        let over = costs.over_limit();
        if let Some((line, column, key, value)) = over
            .iter()
            .map(|&(key, value)| {
                let (line, column) = key_position(text, key);
                (line, column, key, value)
            })
            .min()
        {
            return Err(format!(
                "{line}:{column}: error: cost \"{key}\" is {value} ns; the limit is {MAX_COST_NS} ns (1 s) per operation"
            ));
        }
        Ok(costs)
    }

    /// The fields whose value exceeds [`MAX_COST_NS`], by name.
    pub fn over_limit(&self) -> Vec<(&'static str, u64)> {
        let value = serde_json::to_value(self).expect("costs serialize");
        let fields = value.as_object().expect("costs serialize as an object");
        FIELDS
            .iter()
            .filter_map(|&name| {
                let v = fields[name].as_u64().expect("every cost is a u64");
                (v > MAX_COST_NS).then_some((name, v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_file_overrides_defaults() {
        let c = Costs::from_json(r#"{ "ipi_latency_ns": 3000 }"#).unwrap();
        assert_eq!(c.ipi_latency_ns, 3000);
        assert_eq!(c.context_switch_ns, Costs::default().context_switch_ns);
        let err = Costs::from_json("{ \"ipi_latency\": 1 }").unwrap_err();
        assert!(err.starts_with("1:"), "{err}");
        assert!(err.contains("unknown field"), "{err}");
    }

    /// FIELDS lists every field of the struct, so the limit check sees all of them.
    #[test]
    fn fields_are_the_struct_fields() {
        let value = serde_json::to_value(Costs::default()).unwrap();
        let mut names: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let mut listed = FIELDS.to_vec();
        names.sort_unstable();
        listed.sort_unstable();
        assert_eq!(names, listed);
    }

    /// A cost over one second is an error at its key, naming the key and the limit; the
    /// earliest such key in the file is the one reported. One second itself is accepted.
    #[test]
    fn a_cost_over_the_limit_names_its_key_and_the_limit() {
        let text = "{\n  \"tick_ns\": 5,\n  \"migration_ns\" : 18446744073709551615,\n  \"ipi_latency_ns\": 1000000001\n}";
        let err = Costs::from_json(text).unwrap_err();
        assert_eq!(
            err,
            "3:3: error: cost \"migration_ns\" is 18446744073709551615 ns; the limit is 1000000000 ns (1 s) per operation"
        );
        let ok = Costs::from_json("{\"timer_slack_ns\": 1000000000}").unwrap();
        assert_eq!(ok.timer_slack_ns, MAX_COST_NS);
        assert!(ok.over_limit().is_empty());
    }
}
