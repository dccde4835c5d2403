//! The `pct` strategy: probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi,
//! Nagarakatte, ASPLOS 2010), in the form awslabs/shuttle gives it (`PctScheduler`).
//!
//! Each CPU gets a distinct random priority at least `d`; of the CPUs due at the same instant
//! the one with the highest priority steps first. `d - 1` change points are drawn uniformly
//! over the expected number of decisions; when the i-th decision is a change point, the CPU
//! it picked drops to priority `d - 1 - i`, below every initial priority. A bug of depth `d`
//! (one that needs `d` ordering constraints) is found with probability at least
//! 1/(n·k^(d-1)) per run, for n CPUs and k decisions.
//!
//! Deviation from the paper: the paper schedules threads by priority at every step; in this
//! machine only CPUs due at the same instant compete, so priorities act through ties and
//! through the perturbations: a CPU's delay at a perturbation point is random up to a share
//! of the bound proportional to its rank (the highest-priority CPU is never delayed, the
//! lowest up to the whole bound), which is how a low-priority CPU "runs later" when its
//! steps do not tie.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{Bounds, ChoiceSource, CpuId, Nanos, Point};

pub struct PctSource {
    rng: ChaCha8Rng,
    bounds: Bounds,
    /// Priority of each CPU (higher steps first).
    prio: Vec<u64>,
    /// Decision indices at which the picked CPU's priority drops, ascending.
    change_points: Vec<u64>,
    decisions: u64,
}

/// Default depth: bugs needing up to three ordering constraints.
pub const DEFAULT_DEPTH: usize = 3;
/// Default expected number of decisions (tie picks) of a swarm schedule.
pub const DEFAULT_DECISIONS: u64 = 2_000;

impl PctSource {
    /// `depth` is the paper's `d`; `decisions` the paper's `k` (an estimate is enough).
    pub fn new(seed: u64, nr_cpus: usize, depth: usize, decisions: u64, bounds: Bounds) -> PctSource {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = depth.max(1) as u64;
        let mut prio: Vec<u64> = (d..d + nr_cpus as u64).collect();
        prio.shuffle(&mut rng);
        let mut change_points: Vec<u64> = (1..d).map(|_| rng.gen_range(0..decisions.max(1))).collect();
        change_points.sort_unstable();
        PctSource {
            rng,
            bounds,
            prio,
            change_points,
            decisions: 0,
        }
    }

    /// Rank of `cpu` (0 = highest priority).
    fn rank(&self, cpu: CpuId) -> usize {
        let p = self.prio[cpu as usize];
        self.prio.iter().filter(|&&q| q > p).count()
    }
}

impl ChoiceSource for PctSource {
    fn pick_cpu(&mut self, _now: Nanos, cpus: &[CpuId]) -> usize {
        let i = (0..cpus.len())
            .max_by_key(|&i| self.prio[cpus[i] as usize])
            .expect("a tie has CPUs");
        // Every change point equal to this decision lowers the picked CPU once more.
        while let Some(pos) = self.change_points.iter().position(|&c| c == self.decisions) {
            self.change_points.remove(pos);
            let lowest = self.change_points.len() as u64;
            self.prio[cpus[i] as usize] = lowest;
        }
        self.decisions += 1;
        i
    }

    fn perturb(&mut self, _point: Point, cpu: CpuId, max: Nanos) -> Nanos {
        let n = self.prio.len();
        if n < 2 {
            return 0;
        }
        let share = max * self.rank(cpu) as u64 / (n as u64 - 1);
        if share == 0 {
            0
        } else {
            self.rng.gen_range(0..=share)
        }
    }

    fn bounds(&self) -> Bounds {
        self.bounds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_priority_wins_until_a_change_point_lowers_it() {
        let mut s = PctSource::new(5, 3, 2, 10, Bounds::OFF);
        let cp = s.change_points[0];
        let top = (0..3u32).max_by_key(|&c| s.prio[c as usize]).unwrap();
        for k in 0..10u64 {
            let picked = s.pick_cpu(0, &[0, 1, 2]) as u32;
            if k <= cp {
                assert_eq!(picked, top, "decision {k}");
            } else {
                assert_ne!(picked, top, "decision {k}: the top CPU was lowered at {cp}");
            }
        }
    }

    #[test]
    fn lower_ranks_get_larger_delays() {
        let mut s = PctSource::new(9, 4, 3, 100, Bounds::EXPLORE);
        let top = (0..4u32).max_by_key(|&c| s.prio[c as usize]).unwrap();
        let bottom = (0..4u32).min_by_key(|&c| s.prio[c as usize]).unwrap();
        let mut sum = 0;
        for _ in 0..200 {
            assert_eq!(s.perturb(Point::Timer, top, 1000), 0);
            let d = s.perturb(Point::Timer, bottom, 1000);
            assert!(d <= 1000);
            sum += d;
        }
        assert!(sum > 200 * 300, "the lowest CPU is delayed ({sum})");
    }
}
