//! CPU ids and fixed-size CPU masks (Linux `struct cpumask`).

use std::fmt;

crate::id_type! {
    /// Index of a simulated CPU.
    pub struct CpuId;
}

impl CpuId {
    /// CPUs `0..nr_cpus` in ascending order (Linux `for_each_possible_cpu`).
    pub fn all(nr_cpus: usize) -> impl Iterator<Item = CpuId> {
        assert!(nr_cpus <= MAX_CPUS, "at most {MAX_CPUS} CPUs");
        (0..nr_cpus as u32).map(CpuId)
    }
}

/// The largest machine the model supports.
pub const MAX_CPUS: usize = 512;
const WORDS: usize = MAX_CPUS / 64;

/// A set of CPUs. Iteration is always in ascending CPU order (deterministic). The order
/// between masks (`Ord`) is that of their bit words, for ordered maps; it means nothing else.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CpuMask {
    bits: [u64; WORDS],
}

impl CpuMask {
    pub const fn empty() -> Self {
        CpuMask { bits: [0; WORDS] }
    }

    /// CPUs `0..n`.
    pub fn first_n(n: usize) -> Self {
        assert!(n <= MAX_CPUS, "at most {MAX_CPUS} CPUs");
        let mut m = Self::empty();
        for c in CpuId::all(n) {
            m.set(c);
        }
        m
    }

    pub fn single(cpu: CpuId) -> Self {
        let mut m = Self::empty();
        m.set(cpu);
        m
    }

    pub fn set(&mut self, cpu: CpuId) {
        let c = cpu.idx();
        assert!(c < MAX_CPUS);
        self.bits[c / 64] |= 1 << (c % 64);
    }

    pub fn clear(&mut self, cpu: CpuId) {
        let c = cpu.idx();
        assert!(c < MAX_CPUS);
        self.bits[c / 64] &= !(1 << (c % 64));
    }

    pub fn test(&self, cpu: CpuId) -> bool {
        let c = cpu.idx();
        c < MAX_CPUS && self.bits[c / 64] & (1 << (c % 64)) != 0
    }

    pub fn weight(&self) -> u32 {
        self.bits.iter().map(|w| w.count_ones()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    pub fn and(&self, other: &CpuMask) -> CpuMask {
        let mut m = *self;
        for (a, b) in m.bits.iter_mut().zip(other.bits.iter()) {
            *a &= *b;
        }
        m
    }

    pub fn intersects(&self, other: &CpuMask) -> bool {
        self.bits.iter().zip(other.bits.iter()).any(|(a, b)| a & b != 0)
    }

    /// Lowest set CPU, if any (Linux `cpumask_first`).
    pub fn first(&self) -> Option<CpuId> {
        self.iter().next()
    }

    /// Ascending iteration.
    pub fn iter(&self) -> impl Iterator<Item = CpuId> + '_ {
        self.bits.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some(CpuId(i as u32 * 64 + b))
            })
        })
    }

    /// Iteration starting at `start` and wrapping around (Linux `for_each_cpu_wrap`).
    pub fn iter_wrap(&self, start: CpuId) -> impl Iterator<Item = CpuId> + '_ {
        self.iter()
            .filter(move |&c| c >= start)
            .chain(self.iter().filter(move |&c| c < start))
    }
}

impl fmt::Debug for CpuMask {
    /// Linux cpulist format: `0-3,6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cpus: Vec<CpuId> = self.iter().collect();
        let mut parts = Vec::new();
        let mut i = 0;
        while i < cpus.len() {
            let mut j = i;
            while j + 1 < cpus.len() && cpus[j + 1].0 == cpus[j].0 + 1 {
                j += 1;
            }
            if i == j {
                parts.push(format!("{}", cpus[i]));
            } else {
                parts.push(format!("{}-{}", cpus[i], cpus[j]));
            }
            i = j + 1;
        }
        write!(f, "[{}]", parts.join(","))
    }
}

impl FromIterator<CpuId> for CpuMask {
    fn from_iter<T: IntoIterator<Item = CpuId>>(iter: T) -> Self {
        let mut m = CpuMask::empty();
        for c in iter {
            m.set(c);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_test_iterate() {
        let m: CpuMask = [0, 3, 64, 511].map(CpuId).into_iter().collect();
        assert_eq!(m.weight(), 4);
        assert!(m.test(CpuId(64)));
        assert!(!m.test(CpuId(65)));
        assert_eq!(m.iter().collect::<Vec<_>>(), [0, 3, 64, 511].map(CpuId));
        assert_eq!(
            m.iter_wrap(CpuId(4)).collect::<Vec<_>>(),
            [64, 511, 0, 3].map(CpuId)
        );
        assert_eq!(format!("{:?}", CpuMask::first_n(4)), "[0-3]");
    }
}
