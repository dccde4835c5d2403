//! The `pct` strategy: probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi,
//! Nagarakatte, ASPLOS 2010), in the form awslabs/shuttle gives it (`PctScheduler`).
//!
//! Each CPU gets a distinct random priority at least `d`; of the CPUs due at the same instant
//! the one with the highest priority steps first. `d - 1` distinct change points are drawn
//! from the decisions 1..k (k: the expected number of decisions); at a change point the CPU
//! picked at the previous decision drops below every other priority, before this decision is
//! taken. Only real decisions (two or more CPUs tied) count, as in shuttle. A bug of depth
//! `d` (one that needs `d` ordering constraints) is found with probability at least
//! 1/(n·k^(d-1)) per run, for n CPUs and k decisions.
//!
//! Deviations: shuttle learns k from earlier iterations of one test; seeds here run
//! independently in parallel, so k is a fixed estimate ([`DEFAULT_DECISIONS`]). The paper
//! schedules threads by priority at every step; in this machine only CPUs due at the same
//! instant compete, so priorities act through ties and through the perturbations: a CPU's
//! delay at a perturbation point is random up to a share of the bound proportional to its
//! rank (the highest-priority CPU is never delayed, the lowest up to the whole bound), which
//! is how a low-priority CPU "runs later" when its steps do not tie.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{Bounds, ChoiceSource, CpuId, Nanos, Point};

pub struct PctSource {
    rng: ChaCha8Rng,
    bounds: Bounds,
    /// Priority of each CPU (higher steps first).
    prio: Vec<u64>,
    /// Decision indices at which the last picked CPU's priority drops.
    change_points: Vec<u64>,
    decisions: u64,
    /// The next priority handed out by a change point (below all others, decreasing).
    next_low: u64,
    /// The CPU picked at the previous decision.
    last: Option<CpuId>,
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
        let k = decisions.max(2) as usize;
        let n_points = (d as usize - 1).min(k - 1);
        let mut change_points: Vec<u64> = rand::seq::index::sample(&mut rng, k - 1, n_points)
            .iter()
            .map(|v| v as u64 + 1)
            .collect();
        change_points.sort_unstable();
        PctSource {
            rng,
            bounds,
            prio,
            change_points,
            decisions: 0,
            next_low: d - 1,
            last: None,
        }
    }

    /// Rank of `cpu` (0 = highest priority).
    fn rank(&self, cpu: CpuId) -> usize {
        let p = self.prio[cpu.idx()];
        self.prio.iter().filter(|&&q| q > p).count()
    }
}

impl ChoiceSource for PctSource {
    fn pick_cpu(&mut self, _now: Nanos, cpus: &[CpuId]) -> usize {
        if let (true, Some(last)) = (self.change_points.contains(&self.decisions), self.last) {
            self.prio[last.idx()] = self.next_low;
            self.next_low = self.next_low.saturating_sub(1);
        }
        self.decisions += 1;
        let i = (0..cpus.len())
            .max_by_key(|&i| self.prio[cpus[i].idx()])
            .expect("a tie has CPUs");
        self.last = Some(cpus[i]);
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
        assert_eq!(s.change_points.len(), 1);
        let cp = s.change_points[0];
        assert!((1..10).contains(&cp));
        let top = (0..3u32).max_by_key(|&c| s.prio[c as usize]).unwrap();
        for k in 0..10u64 {
            let picked = s.pick_cpu(0, &[CpuId(0), CpuId(1), CpuId(2)]) as u32;
            if k < cp {
                assert_eq!(picked, top, "decision {k}");
            } else {
                assert_ne!(picked, top, "decision {k}: the top CPU was lowered at {cp}");
            }
        }
    }

    #[test]
    fn change_points_are_distinct_and_d_minus_one() {
        for seed in 0..20 {
            let s = PctSource::new(seed, 4, 4, 5, Bounds::OFF);
            let mut c = s.change_points.clone();
            c.dedup();
            assert_eq!(c.len(), 3, "seed {seed}: {:?}", s.change_points);
            let mut p = s.prio.clone();
            p.sort_unstable();
            assert_eq!(p, vec![4, 5, 6, 7], "distinct priorities at least d");
        }
    }

    #[test]
    fn lower_ranks_get_larger_delays() {
        let mut s = PctSource::new(9, 4, 3, 100, Bounds::EXPLORE);
        let top = CpuId::all(4).max_by_key(|&c| s.prio[c.idx()]).unwrap();
        let bottom = CpuId::all(4).min_by_key(|&c| s.prio[c.idx()]).unwrap();
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
