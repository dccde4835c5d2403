//! [`Dist`]: one distribution of the metrics (`wakeup_latency_ns`, `lock_wait_ns`, `loop_ns`)
//! in memory that stays bounded however long the run is.
//!
//! Every field of the summary [`Hist`] but the percentiles needs only running state: `count`,
//! `min`, `max` and the exact sum behind `mean`. The nearest-rank percentiles `p50`, `p90`,
//! `p99` need the sample *at* a rank, which no fixed-size summary gives exactly for arbitrary
//! ns values (an HDR histogram returns the upper edge of the bucket holding the rank, and at
//! three significant digits a 1.234567 ms sample lands in a 1 µs wide bucket). So a
//! distribution has two modes:
//!
//! - **Raw** for the first [`EXACT_SAMPLES`] samples: the samples themselves, in the order
//!   they came (8 bytes each, at most 32 KiB). Counting distinct values from the start would
//!   not pay: in short runs almost every latency is distinct (the largest such distribution of
//!   the shipped scenarios, 1 037 samples of `proxy_swarm_4cpus.json`, has 990 distinct
//!   values).
//! - **Counted** after that while there are at most [`EXACT_DISTINCT`] distinct values: a
//!   vector of `(value, count)` sorted by value (16 bytes each, at most 32 KiB). Long runs of
//!   a periodic workload repeat the same few latencies (`priority_inversion_demo.json`: 75 201
//!   wakeups of the foreground).
//! - **HDR** when a new distinct value would exceed that: the counts move into an
//!   [`hdrhistogram::Histogram`] at [`HDR_SIGFIG`] significant digits (auto-resizing to the
//!   largest sample; about `(log2(max / 256) + 2) × 128` 8-byte counters: 19 KB for values up
//!   to one second, 27 KB up to an hour). `count`, `min`, `max` and `mean` stay exact; each
//!   percentile is the highest value equivalent to the sample at the nearest rank, clamped to
//!   `[min, max]`: at most 1% above the exact one, never below it. Memory is flat from then
//!   on, whatever the number of samples.
//!
//! Every distribution of every shipped scenario stays exact; `scripts/behaviour-digest` checks
//! the metrics JSON is byte-identical to the per-sample path.
//!
//! The rank arithmetic is integer in both modes (`ceil(pct·n/100)`), so a percentile never
//! depends on floating-point rounding.

use hdrhistogram::Histogram;

use crate::metrics::Hist;

/// Samples a distribution keeps one by one before it counts distinct values.
pub const EXACT_SAMPLES: usize = 4096;

/// Distinct values a distribution counts exactly before it switches to an HDR histogram.
pub const EXACT_DISTINCT: usize = 2048;

/// Significant decimal digits of the HDR fallback (relative error at most 10^-2).
pub const HDR_SIGFIG: u8 = 2;

/// The largest value the HDR fallback can track (`i64::MAX / 2` ns, 146 years); larger samples
/// count in its top bucket (`min`, `max` and `mean` keep them exactly).
const HDR_MAX: u64 = (i64::MAX / 2) as u64;

/// Where the samples' counts live.
#[derive(Clone, Debug)]
enum Store {
    /// The samples in the order they came; never more than [`EXACT_SAMPLES`].
    Raw(Vec<u64>),
    /// Sorted by value, values distinct, counts ≥ 1; never more than [`EXACT_DISTINCT`].
    Counted(Vec<(u64, u64)>),
    Hdr(Box<Histogram<u64>>),
}

/// A stream of u64 samples summarised as a [`Hist`] (see the module docs).
#[derive(Clone, Debug)]
pub struct Dist {
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
    store: Store,
}

impl Default for Dist {
    fn default() -> Self {
        Dist {
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
            store: Store::Raw(Vec::new()),
        }
    }
}

impl Dist {
    /// Adds one sample.
    pub fn record(&mut self, v: u64) {
        self.count += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        match &mut self.store {
            Store::Raw(samples) if samples.len() < EXACT_SAMPLES => samples.push(v),
            _ => self.store_counted(v),
        }
    }

    /// [`Dist::record`]'s store once the raw samples are full: out of line, so that the
    /// common case (one more raw sample) needs no stack frame.
    #[inline(never)]
    fn store_counted(&mut self, v: u64) {
        match &mut self.store {
            Store::Raw(samples) => {
                assert_eq!(
                    samples.len(),
                    EXACT_SAMPLES,
                    "raw samples leave raw mode when full"
                );
                samples.push(v);
                samples.sort_unstable();
                let mut counted: Vec<(u64, u64)> = Vec::new();
                for &x in samples.iter() {
                    match counted.last_mut() {
                        Some((y, n)) if *y == x => *n += 1,
                        _ => counted.push((x, 1)),
                    }
                }
                self.store = Store::Counted(counted);
                self.spill_if_too_many();
            }
            Store::Counted(counted) => match counted.binary_search_by_key(&v, |&(x, _)| x) {
                Ok(i) => counted[i].1 += 1,
                Err(i) => {
                    counted.insert(i, (v, 1));
                    self.spill_if_too_many();
                }
            },
            Store::Hdr(h) => hdr_record(h, v, 1),
        }
    }

    /// In counted mode with more than [`EXACT_DISTINCT`] values: switch to the HDR histogram.
    fn spill_if_too_many(&mut self) {
        if let Store::Counted(counted) = &self.store {
            if counted.len() > EXACT_DISTINCT {
                let mut h = hdr();
                for &(x, n) in counted {
                    hdr_record(&mut h, x, n);
                }
                self.store = Store::Hdr(Box::new(h));
            }
        }
    }

    /// Whether the percentiles are still exact (no switch to the HDR histogram yet).
    pub fn is_exact(&self) -> bool {
        !matches!(self.store, Store::Hdr(_))
    }

    /// The samples: the recorded ones in the order they came in raw mode, in ascending order
    /// in counted mode; in HDR mode in ascending order, each represented by the highest value
    /// of its bucket (clamped to `[min, max]`).
    pub fn samples(&self) -> Vec<u64> {
        match &self.store {
            Store::Raw(samples) => samples.clone(),
            Store::Counted(counted) => {
                let mut out = Vec::with_capacity(usize::try_from(self.count).unwrap_or(0));
                for &(v, n) in counted {
                    out.extend(std::iter::repeat_n(v, n as usize));
                }
                out
            }
            Store::Hdr(h) => {
                let mut out = Vec::with_capacity(usize::try_from(self.count).unwrap_or(0));
                for it in h.iter_recorded() {
                    let v = it.value_iterated_to().clamp(self.min, self.max);
                    out.extend(std::iter::repeat_n(v, it.count_at_value() as usize));
                }
                out
            }
        }
    }

    /// The summary: nearest-rank percentiles, mean rounded half up; all zeros when empty.
    pub fn hist(&self) -> Hist {
        if self.count == 0 {
            return Hist::default();
        }
        let n = u128::from(self.count);
        let mean = (self.sum + n / 2) / n;
        let sorted = match &self.store {
            Store::Raw(samples) => {
                let mut sorted = samples.clone();
                sorted.sort_unstable();
                Some(sorted)
            }
            Store::Counted(_) | Store::Hdr(_) => None,
        };
        let at = |pct| {
            let r = rank(self.count, pct);
            match &sorted {
                Some(sorted) => sorted[(r - 1) as usize],
                None => self.at_rank(r),
            }
        };
        Hist {
            count: self.count,
            min: self.min,
            p50: at(50),
            p90: at(90),
            p99: at(99),
            max: self.max,
            mean: u64::try_from(mean).expect("mean of u64 samples fits u64"),
        }
    }

    /// In counted or HDR mode: the sample of 1-based rank `r` (in HDR mode the top of its
    /// bucket, clamped to `[min, max]`).
    fn at_rank(&self, r: u64) -> u64 {
        let mut seen = 0u64;
        match &self.store {
            Store::Raw(_) => unreachable!("raw samples are sorted instead"),
            Store::Counted(counted) => {
                for &(v, n) in counted {
                    seen += n;
                    if seen >= r {
                        return v;
                    }
                }
            }
            Store::Hdr(h) => {
                for it in h.iter_recorded() {
                    seen += it.count_at_value();
                    if seen >= r {
                        return it.value_iterated_to().clamp(self.min, self.max);
                    }
                }
            }
        }
        unreachable!("rank {r} beyond the {} samples", self.count)
    }
}

/// The 1-based nearest rank of percentile `pct` among `n` samples: `ceil(pct·n/100)`, at
/// least 1.
fn rank(n: u64, pct: u64) -> u64 {
    debug_assert!(pct > 0 && pct <= 100);
    (u128::from(pct) * u128::from(n)).div_ceil(100).max(1) as u64
}

fn hdr() -> Histogram<u64> {
    Histogram::new(HDR_SIGFIG).expect("valid HDR parameters")
}

/// Records `n` samples of `v` (clamped to [`HDR_MAX`]).
fn hdr_record(h: &mut Histogram<u64>, v: u64, n: u64) {
    h.record_n(v.min(HDR_MAX), n)
        .expect("an auto-resizing histogram tracks values up to HDR_MAX");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(samples: &[u64]) -> Dist {
        let mut d = Dist::default();
        for &s in samples {
            d.record(s);
        }
        d
    }

    /// A small deterministic generator (no wall clock, no global RNG).
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn exact_mode_matches_the_per_sample_summary() {
        let mut seed = 7;
        for len in [0usize, 1, 2, 3, 10, 99, 100, 101, 1000, EXACT_SAMPLES] {
            // Values from a small set (repeats) and from a wide one (mostly distinct).
            for spread in [17u64, 1 << 40] {
                let samples: Vec<u64> = (0..len).map(|_| 1_000 + lcg(&mut seed) % spread * 37).collect();
                let d = dist(&samples);
                assert!(d.is_exact());
                assert_eq!(
                    d.hist(),
                    Hist::from_samples(&samples),
                    "len {len} spread {spread}"
                );
                assert_eq!(d.samples(), samples);
            }
        }
    }

    #[test]
    fn switches_to_hdr_past_the_bound_and_stays_close() {
        let mut seed = 11;
        let samples: Vec<u64> = (0..50_000).map(|_| 500 + lcg(&mut seed) % 20_000_000).collect();
        let d = dist(&samples);
        assert!(!d.is_exact(), "50 000 distinct-ish values must leave exact mode");
        let exact = Hist::from_samples(&samples);
        let h = d.hist();
        assert_eq!(
            (h.count, h.min, h.max, h.mean),
            (exact.count, exact.min, exact.max, exact.mean)
        );
        for (got, want) in [(h.p50, exact.p50), (h.p90, exact.p90), (h.p99, exact.p99)] {
            assert!(
                got >= want,
                "the bucket's top is never below the sample: {got} < {want}"
            );
            assert!(got - want <= want / 100 + 1, "within 1%: {got} vs {want}");
        }
        let approx = d.samples();
        assert_eq!(approx.len(), samples.len());
        assert!(approx.windows(2).all(|w| w[0] <= w[1]), "HDR samples come sorted");
    }

    #[test]
    fn counted_mode_stays_exact_up_to_the_bound_of_distinct_values() {
        // Many samples, few distinct values: counted, exact, in ascending order.
        let mut seed = 3;
        let samples: Vec<u64> = (0..50_000).map(|_| 2_600 + 10 * (lcg(&mut seed) % 40)).collect();
        let d = dist(&samples);
        assert!(matches!(d.store, Store::Counted(_)));
        assert_eq!(d.hist(), Hist::from_samples(&samples));
        let mut sorted = samples.clone();
        sorted.sort_unstable();
        assert_eq!(d.samples(), sorted);
        // Exactly EXACT_DISTINCT distinct values: still exact; one more switches to HDR.
        let samples: Vec<u64> = (0..3 * EXACT_DISTINCT as u64)
            .map(|i| 10_007 * (1 + i % EXACT_DISTINCT as u64))
            .collect();
        let mut d = dist(&samples);
        assert!(d.is_exact());
        assert_eq!(d.hist(), Hist::from_samples(&samples));
        d.record(1);
        assert!(!d.is_exact());
        assert_eq!((d.hist().min, d.hist().count), (1, 3 * EXACT_DISTINCT as u64 + 1));
    }

    #[test]
    fn raw_samples_keep_their_order_until_the_bound() {
        let samples: Vec<u64> = (0..EXACT_SAMPLES as u64).map(|i| (i * 7_919) % 1_009).collect();
        let mut d = dist(&samples);
        assert!(matches!(d.store, Store::Raw(_)));
        assert_eq!(d.samples(), samples);
        d.record(5);
        assert!(
            matches!(d.store, Store::Counted(_)),
            "past EXACT_SAMPLES the values are counted"
        );
        let mut all = samples.clone();
        all.push(5);
        assert_eq!(d.hist(), Hist::from_samples(&all));
    }

    #[test]
    fn huge_values_keep_exact_extremes_and_mean() {
        let mut d = Dist::default();
        for i in 0..=EXACT_SAMPLES as u64 {
            d.record(u64::MAX - i);
        }
        assert!(!d.is_exact());
        let h = d.hist();
        assert_eq!((h.min, h.max), (u64::MAX - EXACT_SAMPLES as u64, u64::MAX));
        assert_eq!(h.mean, u64::MAX - EXACT_SAMPLES as u64 / 2);
        assert!(h.p50 >= h.min && h.p50 <= h.max);
    }

    #[test]
    fn rank_is_integer_nearest_rank() {
        assert_eq!(rank(10, 90), 9);
        assert_eq!(rank(100, 99), 99);
        assert_eq!(rank(1, 50), 1);
        assert_eq!(rank(2, 50), 1);
        assert_eq!(rank(3, 50), 2);
    }
}
