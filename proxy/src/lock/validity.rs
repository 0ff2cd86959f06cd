//! Validity arithmetic: how long a grant may be relied on.
//!
//! `validity = ttl - elapsed - (ttl * drift_factor + drift_constant)`
//! (docs/design.md, *Drift allowance*). The drift allowance covers clock-rate differences
//! between the gateway and the masters, which expire keys on their own clocks.
//! These are pure functions so the rule can be tested exhaustively.

use std::time::Duration;

use tokio::time::Instant;

/// The clock-drift allowance for a lease of `ttl`.
pub fn drift(ttl: Duration, factor: f64, constant: Duration) -> Duration {
    // `mul_f64` panics on negative or non-finite factors; config validation
    // keeps the factor in [0, 0.5), and the clamp makes this total anyway.
    let factor = if factor.is_finite() {
        factor.clamp(0.0, 1.0)
    } else {
        1.0
    };
    ttl.mul_f64(factor).saturating_add(constant)
}

/// Remaining validity of a lease of `ttl` whose request began `elapsed` ago,
/// or `None` when nothing is left (the grant must not be reported).
pub fn validity(
    ttl: Duration,
    elapsed: Duration,
    factor: f64,
    constant: Duration,
) -> Option<Duration> {
    let left = ttl
        .checked_sub(elapsed)?
        .checked_sub(drift(ttl, factor, constant))?;
    (!left.is_zero()).then_some(left)
}

/// The instant after which a lease of `ttl`, requested at `start`, must no
/// longer be relied on by the gateway.
pub fn valid_until(start: Instant, ttl: Duration, factor: f64, constant: Duration) -> Instant {
    start + ttl.saturating_sub(drift(ttl, factor, constant))
}

/// Remaining validity at `now` of a lease valid until `until`.
pub fn remaining(until: Instant, now: Instant) -> Option<Duration> {
    let left = until.checked_duration_since(now)?;
    (!left.is_zero()).then_some(left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn default_drift_is_one_percent_plus_two_ms() {
        assert_eq!(drift(Duration::from_secs(10), 0.01, 2 * MS), 102 * MS);
    }

    #[test]
    fn validity_subtracts_elapsed_and_drift() {
        let v = validity(Duration::from_secs(10), 50 * MS, 0.01, 2 * MS);
        assert_eq!(v, Some(Duration::from_millis(10_000 - 50 - 102)));
    }

    #[test]
    fn validity_is_none_when_drift_eats_the_lease() {
        assert_eq!(validity(2 * MS, Duration::ZERO, 0.01, 2 * MS), None);
        assert_eq!(validity(10 * MS, 8 * MS, 0.01, 2 * MS), None);
    }

    #[test]
    fn valid_until_matches_validity() {
        let start = Instant::now();
        let ttl = Duration::from_secs(1);
        let until = valid_until(start, ttl, 0.01, 2 * MS);
        assert_eq!(remaining(until, start + 100 * MS), Some(888 * MS));
        assert_eq!(remaining(until, start + 988 * MS), None);
    }

    proptest! {
        #[test]
        fn validity_is_never_positive_once_elapsed_reaches_ttl(
            ttl_ms in 0u64..10_000_000,
            extra_ms in 0u64..10_000_000,
            factor in 0.0f64..0.5,
            constant_ms in 0u64..100,
        ) {
            let ttl = Duration::from_millis(ttl_ms);
            let elapsed = ttl + Duration::from_millis(extra_ms);
            prop_assert_eq!(validity(ttl, elapsed, factor, Duration::from_millis(constant_ms)), None);
        }

        #[test]
        fn validity_never_exceeds_ttl_minus_elapsed(
            ttl_ms in 0u64..10_000_000,
            elapsed_ms in 0u64..10_000_000,
            factor in 0.0f64..0.5,
            constant_ms in 0u64..100,
        ) {
            let ttl = Duration::from_millis(ttl_ms);
            let elapsed = Duration::from_millis(elapsed_ms);
            if let Some(v) = validity(ttl, elapsed, factor, Duration::from_millis(constant_ms)) {
                prop_assert!(v + elapsed <= ttl);
            }
        }
    }
}
