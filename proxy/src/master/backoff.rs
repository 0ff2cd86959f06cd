//! Reconnect pacing: exponential backoff with full jitter.
//!
//! The ceiling starts at `min` and doubles after every failed attempt up to
//! `max`; each wait is drawn uniformly from `[0, ceiling]` ("full jitter"),
//! so many gateways that lost the same master do not reconnect in lockstep.
//! A healed master is therefore retried within `max` of healing (plus one
//! connect attempt). [`Backoff::reset`] after a successful connect.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff state for one master's reconnect loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    /// Failed attempts since the last reset.
    attempt: u32,
}

// === impl Backoff ===

impl Backoff {
    /// A backoff between `min` and `max`. Inverted bounds are not an error
    /// here (configuration validation rejects them); `max` is raised to `min`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The upper bound of the next wait.
    pub fn ceiling(&self) -> Duration {
        // 2^16 × min already exceeds any sensible max; stop doubling there so
        // the multiplication cannot overflow.
        self.min
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max)
    }

    /// The next wait, uniformly drawn from `[0, ceiling]`; raises the ceiling.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }

    /// Back to `min`, after a successful connect.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceiling_doubles_from_min_up_to_max_and_resets() {
        let mut b = Backoff::new(50 * MS, 1000 * MS);
        let mut ceilings = Vec::new();
        for _ in 0..7 {
            ceilings.push(b.ceiling());
            b.next_wait();
        }
        assert_eq!(
            ceilings,
            [50, 100, 200, 400, 800, 1000, 1000].map(|m| m * MS)
        );
        b.reset();
        assert_eq!(b.ceiling(), 50 * MS);
    }

    #[test]
    fn inverted_bounds_are_clamped() {
        let b = Backoff::new(200 * MS, 100 * MS);
        assert_eq!(b.ceiling(), 200 * MS);
    }

    #[test]
    fn many_attempts_do_not_overflow() {
        let mut b = Backoff::new(Duration::MAX, Duration::MAX);
        for _ in 0..100 {
            b.next_wait();
        }
        assert_eq!(b.ceiling(), Duration::MAX);
    }

    proptest! {
        #[test]
        fn every_wait_is_within_the_ceiling(min in 1u32..1000, extra in 0u32..10_000, n in 0usize..40) {
            let mut b = Backoff::new(MS * min, MS * (min + extra));
            for _ in 0..n {
                let ceiling = b.ceiling();
                prop_assert!(ceiling <= MS * (min + extra));
                prop_assert!(b.next_wait() <= ceiling);
            }
        }
    }
}
