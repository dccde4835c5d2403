//! The seeded oracle: the random draws that a seed fixes.
//!
//! One seed, split into named streams (one ChaCha8 stream each), so that adding draws to one
//! stream never shifts the draws of another. Two streams are drawn:
//!
//! - [`Stream::Tie`]: the default [`crate::SeedOrder`] choice source draws one key per queued
//!   step from it, ordering the CPUs due at the same instant under `proxysched run --seed N`.
//! - [`Stream::Workload`]: the swarm workload generator (`workload::generate`) takes its
//!   whole generator from it ([`Stream::rng`]).
//!
//! The explorer's strategies (`explore`) answer the machine's choices from their own seeded
//! generators instead of the oracle; nothing else in the model is random.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The named streams. Each has a fixed ChaCha stream number; never renumber one (the numbers
/// are those of the original five-stream oracle, so every seed keeps its draws).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Order of CPUs whose next steps fall at the same instant.
    Tie = 0,
    /// The swarm workload generator.
    Workload = 3,
    /// The swarm generator's signal extension (interruptible mutexes, signal senders), drawn
    /// apart so that seeds without it keep the workload the main stream gives them.
    WorkloadSignals = 4,
}

impl Stream {
    /// The stream's generator for `seed`: ChaCha8 seeded with `seed`, on this stream's number.
    pub fn rng(self, seed: u64) -> ChaCha8Rng {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(self as u64);
        r
    }
}

/// One stream of the oracle, drawn as `u64`s.
pub struct Oracle {
    seed: u64,
    rng: ChaCha8Rng,
}

impl Oracle {
    pub fn new(seed: u64, stream: Stream) -> Self {
        Oracle {
            seed,
            rng: stream.rng(seed),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn next_u64(&mut self) -> u64 {
        self.rng.r#gen()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_seeded() {
        let mut tie = Oracle::new(7, Stream::Tie);
        let x = tie.next_u64();
        assert_eq!(Oracle::new(7, Stream::Tie).next_u64(), x);
        assert_ne!(Oracle::new(7, Stream::Workload).next_u64(), x);
        assert_ne!(Oracle::new(8, Stream::Tie).next_u64(), x);
    }

    /// The stream numbers are part of every seed's meaning: the tie stream is ChaCha8's
    /// default stream and the workload stream is stream 3, as they have always been.
    #[test]
    fn stream_numbers_are_fixed() {
        let mut plain = ChaCha8Rng::seed_from_u64(11);
        assert_eq!(Oracle::new(11, Stream::Tie).next_u64(), plain.r#gen::<u64>());
        let mut three = ChaCha8Rng::seed_from_u64(11);
        three.set_stream(3);
        assert_eq!(Oracle::new(11, Stream::Workload).next_u64(), three.r#gen::<u64>());
    }
}
