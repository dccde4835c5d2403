//! Simulated time: u64 nanoseconds since boot. Units are in names (`_ns`, `_us`).

/// Nanoseconds of simulated time.
pub type Nanos = u64;

pub const NSEC_PER_USEC: Nanos = 1_000;
pub const NSEC_PER_MSEC: Nanos = 1_000_000;
pub const NSEC_PER_SEC: Nanos = 1_000_000_000;
