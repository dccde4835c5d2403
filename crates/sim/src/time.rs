//! Simulated time: u64 nanoseconds since boot. Units are in names (`_ns`, `_us`).

/// Nanoseconds of simulated time.
pub type Nanos = u64;

pub const NSEC_PER_USEC: Nanos = 1_000;
pub const NSEC_PER_MSEC: Nanos = 1_000_000;
pub const NSEC_PER_SEC: Nanos = 1_000_000_000;

/// The largest cost a cost model may give one kernel operation: one second. Simulated time is
/// a u64 of nanoseconds and runs are limited to 10^6 s (10^15 ns), so sums of bounded costs
/// stay far from overflow; a cost near 2^64 would wrap the clock or never let it reach the
/// next event. No real kernel operation comes within orders of magnitude of a second.
pub const MAX_COST_NS: Nanos = NSEC_PER_SEC;
