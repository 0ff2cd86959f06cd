//! Latency and outcome recording: one [`Stats`] per worker (no shared locks
//! on the hot path), merged at the end into the summary table and the JSON
//! document.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, 1 µs to 60 s, 3 significant
/// digits.
fn histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts (the unit tests build one).
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// What one worker (or a whole run, once merged) observed.
#[derive(Debug, Clone)]
pub struct Stats {
    pub acquire_granted: Histogram<u64>,
    pub acquire_busy: Histogram<u64>,
    pub release: Histogram<u64>,
    pub cycle: Histogram<u64>,
    pub release_not_held: u64,
    pub errors: BTreeMap<String, u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            acquire_granted: histogram(),
            acquire_busy: histogram(),
            release: histogram(),
            cycle: histogram(),
            release_not_held: 0,
            errors: BTreeMap::new(),
        }
    }
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Stats {
    pub fn granted(&mut self, d: Duration) {
        self.acquire_granted.saturating_record(us(d));
    }
    pub fn busy(&mut self, d: Duration) {
        self.acquire_busy.saturating_record(us(d));
    }
    pub fn released(&mut self, d: Duration, held: bool) {
        self.release.saturating_record(us(d));
        if !held {
            self.release_not_held += 1;
        }
    }
    pub fn cycle(&mut self, d: Duration) {
        self.cycle.saturating_record(us(d));
    }
    pub fn error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
    }

    pub fn merge(&mut self, o: &Stats) {
        let _ = self.acquire_granted.add(&o.acquire_granted);
        let _ = self.acquire_busy.add(&o.acquire_busy);
        let _ = self.release.add(&o.release);
        let _ = self.cycle.add(&o.cycle);
        self.release_not_held += o.release_not_held;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    pub fn of(h: &Histogram<u64>, secs: f64) -> Summary {
        let ms = |v: u64| v as f64 / 1000.0;
        Summary {
            count: h.len(),
            per_sec: if secs > 0.0 {
                h.len() as f64 / secs
            } else {
                0.0
            },
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_stats_add_counts_and_keep_percentiles() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        for i in 1..=100 {
            a.granted(Duration::from_micros(i * 10));
            b.granted(Duration::from_micros(i * 10));
        }
        b.error("NOQUORUM");
        b.released(Duration::from_micros(5), false);
        a.merge(&b);
        let s = Summary::of(&a.acquire_granted, 2.0);
        assert_eq!(s.count, 200);
        assert_eq!(s.per_sec, 100.0);
        assert!((s.p50_ms - 0.5).abs() < 0.01, "{s:?}");
        assert!((s.max_ms - 1.0).abs() < 0.01, "{s:?}");
        assert_eq!(a.errors.get("NOQUORUM"), Some(&1));
        assert_eq!(a.release_not_held, 1);
    }
}
