//! The `random` strategy: every tie goes to a uniformly random CPU, and each perturbation
//! point gets, with probability 1/4, a uniformly random delay up to its bound (otherwise
//! none: most interrupts and lock attempts keep their modelled timing, a few slip).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{Bounds, ChoiceSource, CpuId, Nanos, Point};

pub struct RandomSource {
    rng: ChaCha8Rng,
    bounds: Bounds,
}

impl RandomSource {
    pub fn new(seed: u64, bounds: Bounds) -> RandomSource {
        RandomSource {
            rng: ChaCha8Rng::seed_from_u64(seed),
            bounds,
        }
    }
}

impl ChoiceSource for RandomSource {
    fn pick_cpu(&mut self, _now: Nanos, cpus: &[CpuId]) -> usize {
        self.rng.gen_range(0..cpus.len())
    }

    fn perturb(&mut self, _point: Point, _cpu: CpuId, max: Nanos) -> Nanos {
        if self.rng.gen_ratio(1, 4) {
            self.rng.gen_range(0..=max)
        } else {
            0
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
    fn picks_every_cpu_and_stays_in_bounds() {
        let mut s = RandomSource::new(1, Bounds::EXPLORE);
        let mut seen = [0u32; 3];
        let mut delayed = 0;
        for _ in 0..300 {
            seen[s.pick_cpu(0, &[CpuId(0), CpuId(1), CpuId(2)])] += 1;
            let d = s.perturb(Point::Ipi, CpuId(0), 100);
            assert!(d <= 100);
            delayed += (d > 0) as u32;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert!((30..150).contains(&delayed), "{delayed} of 300 delayed");
    }
}
