//! The choice seam: every decision of the executor that simulated time does not fix.
//!
//! Two kinds of decision go through one [`ChoiceSource`]:
//!
//! - **Tie order.** When several CPUs have their next step at the same instant, the executor
//!   asks the source which of them steps first, at the moment it takes the step (not when
//!   the steps were queued). A CPU that is alone at the earliest instant is no choice and the
//!   source is not asked.
//! - **Perturbations** at named [`Point`]s: a bounded extra delay added to an IPI's delivery,
//!   to a clock-event (tick, hrtimer) expiry, or before a spinlock attempt. They let an
//!   explorer reach orderings that never tie under the default costs. A source whose
//!   [`ChoiceSource::bounds`] are all zero is never asked, and the machine behaves exactly as
//!   without the seam.
//!
//! Every answer is appended to the machine's [`ChoiceLog`] when recording is on, one `u64`
//! per decision in the order they were taken; [`Replay`] feeds such a log back, so a run is
//! reproduced either from (workload, flags, strategy, seed) or from its recorded choices.

use crate::cpumask::CpuId;
use crate::oracle::{Oracle, Stream};
use crate::time::Nanos;

/// A named perturbation point of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// Delivery latency of an IPI ([`crate::Machine::send_ipi`]).
    Ipi,
    /// Expiry of a CPU's clock-event device: the tick and every hrtimer
    /// ([`crate::Machine::program_clockevent`]).
    Timer,
    /// The moment before a raw spinlock attempt ([`crate::Machine::lock`]).
    SpinLock,
}

impl Point {
    pub const ALL: [Point; 3] = [Point::Ipi, Point::Timer, Point::SpinLock];

    pub fn as_str(self) -> &'static str {
        match self {
            Point::Ipi => "ipi",
            Point::Timer => "timer",
            Point::SpinLock => "spinlock",
        }
    }
}

/// Upper bounds of the perturbations, per point (0: that point is never perturbed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bounds {
    pub ipi_ns: Nanos,
    pub timer_ns: Nanos,
    pub spin_ns: Nanos,
}

impl Bounds {
    /// No perturbation anywhere (the default of `proxysched run`).
    pub const OFF: Bounds = Bounds {
        ipi_ns: 0,
        timer_ns: 0,
        spin_ns: 0,
    };

    /// The bounds the explorer uses by default: a few microseconds of IPI and timer jitter
    /// (the spread of real interrupt delivery) and up to a microsecond before a spinlock
    /// attempt (a cache miss or two), enough to move one CPU's lock attempt past another's.
    pub const EXPLORE: Bounds = Bounds {
        ipi_ns: 4_000,
        timer_ns: 4_000,
        spin_ns: 1_000,
    };

    pub fn get(&self, p: Point) -> Nanos {
        match p {
            Point::Ipi => self.ipi_ns,
            Point::Timer => self.timer_ns,
            Point::SpinLock => self.spin_ns,
        }
    }

    pub fn any(&self) -> bool {
        Point::ALL.iter().any(|&p| self.get(p) > 0)
    }
}

/// Where the executor's nondeterministic decisions come from.
pub trait ChoiceSource {
    /// Which of `cpus` (at least two, in increasing order, all due at `now`) steps first:
    /// an index into `cpus`.
    fn pick_cpu(&mut self, now: Nanos, cpus: &[CpuId]) -> usize;

    /// Extra delay at `point` on `cpu`, at most `max` (which is never 0 when asked).
    fn perturb(&mut self, point: Point, cpu: CpuId, max: Nanos) -> Nanos;

    /// The perturbation bounds; all zero (the default) means [`ChoiceSource::perturb`] is
    /// never called.
    fn bounds(&self) -> Bounds {
        Bounds::OFF
    }

    /// `cpu`'s next step was queued in the executor: its key. The executor takes steps in
    /// (time, key) order and asks [`ChoiceSource::pick_cpu`] among the CPUs that share both.
    /// Sources that decide at step time leave every key 0 (the default); only [`SeedOrder`]
    /// draws keys, to keep the interleavings of `--seed` as they were.
    fn queued(&mut self, _cpu: CpuId) -> u64 {
        0
    }

    /// Whether [`ChoiceSource::queued`] draws: a source that overrides it says so, and then
    /// the executor calls it for every queued step. With every key 0 (the default) the
    /// executor may skip the queue for busy-wait polls that change nothing, and asks only
    /// the ties they make (`sim::machine`, "Folding quiet polls").
    fn draws_keys(&self) -> bool {
        false
    }
}

/// The default source: each queued step gets a key drawn from [`Stream::Tie`], so CPUs due
/// at the same instant step in key order (equal keys: lowest CPU first); no perturbations.
///
/// This keeps the interleavings that `proxysched run --seed N` has always given (the draws
/// are the ones the executor made before the seam existed, in the same order). The
/// explorer's strategies leave keys at 0 and decide each tie when the step is taken.
pub struct SeedOrder {
    oracle: Oracle,
}

impl SeedOrder {
    pub fn new(seed: u64) -> SeedOrder {
        SeedOrder {
            oracle: Oracle::new(seed, Stream::Tie),
        }
    }
}

impl ChoiceSource for SeedOrder {
    fn pick_cpu(&mut self, _now: Nanos, _cpus: &[CpuId]) -> usize {
        0
    }

    fn perturb(&mut self, _point: Point, _cpu: CpuId, _max: Nanos) -> Nanos {
        0
    }

    fn queued(&mut self, _cpu: CpuId) -> u64 {
        self.oracle.next_u64()
    }

    fn draws_keys(&self) -> bool {
        true
    }
}

/// The recorded decisions of a run, in order: a tie's answer is the index picked, a
/// perturbation's is its delay in ns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChoiceLog {
    pub bounds: Bounds,
    pub choices: Vec<u64>,
    /// How many of `choices` were tie picks (the rest are perturbations).
    pub ties: u64,
}

/// A source that answers from a recorded sequence. An answer out of range is clamped (a
/// tie index to the last CPU, a delay to the bound); past the end of the sequence every tie
/// goes to the first CPU and every delay is 0. Shrinking relies on both: a shortened or
/// zeroed sequence is still a valid schedule.
pub struct Replay {
    choices: Vec<u64>,
    next: usize,
    bounds: Bounds,
}

impl Replay {
    pub fn new(log: &ChoiceLog) -> Replay {
        Replay {
            choices: log.choices.clone(),
            next: 0,
            bounds: log.bounds,
        }
    }

    fn take(&mut self) -> u64 {
        let v = self.choices.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        v
    }
}

impl ChoiceSource for Replay {
    fn pick_cpu(&mut self, _now: Nanos, cpus: &[CpuId]) -> usize {
        (self.take() as usize).min(cpus.len() - 1)
    }

    fn perturb(&mut self, _point: Point, _cpu: CpuId, max: Nanos) -> Nanos {
        self.take().min(max)
    }

    fn bounds(&self) -> Bounds {
        self.bounds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_order_keys_are_the_tie_stream() {
        let mut s = SeedOrder::new(3);
        let mut o = Oracle::new(3, Stream::Tie);
        for c in CpuId::all(4) {
            assert_eq!(s.queued(c), o.next_u64());
        }
        assert!(!s.bounds().any(), "the default source never perturbs");
    }

    #[test]
    fn replay_clamps_and_runs_out_to_defaults() {
        let log = ChoiceLog {
            bounds: Bounds {
                ipi_ns: 10,
                ..Bounds::OFF
            },
            choices: vec![7, 2, 50],
            ties: 2,
        };
        let mut r = Replay::new(&log);
        assert_eq!(
            r.pick_cpu(0, &[CpuId(0), CpuId(1), CpuId(2)]),
            2,
            "7 clamps to the last CPU"
        );
        assert_eq!(r.pick_cpu(0, &[CpuId(0), CpuId(1), CpuId(2)]), 2);
        assert_eq!(r.perturb(Point::Ipi, CpuId(0), 10), 10, "50 clamps to the bound");
        assert_eq!(r.pick_cpu(0, &[CpuId(0), CpuId(1)]), 0, "past the end: first CPU");
        assert_eq!(r.perturb(Point::Ipi, CpuId(0), 10), 0, "past the end: no delay");
        assert!(r.bounds().any());
    }
}
