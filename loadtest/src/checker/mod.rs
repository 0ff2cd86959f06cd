//! The safety checker: a simulated protected resource that enforces the
//! fencing rule, and an offline analysis of every grant a run saw.
//!
//! The resource admits a write only with a token at least as high as the
//! highest it admitted before; lower tokens are rejected as stale (that is the
//! fencing rule doing its job, not a violation). The analysis, per lock key,
//! reports what must never happen:
//!
//! - a **duplicate** token: two grants with the same token;
//! - a **backwards** token: grant A's reply arrived before grant B was even
//!   requested, yet `token(B) <= token(A)`;
//!
//! and, separately, **overlaps**: B's grant arrived while A was still
//! relying on its lock (before A's release was sent and before A's validity
//! ran out). Overlaps are possible under timing faults (pauses, clock jumps),
//! which is exactly what fencing tokens are for; duplicates and backwards
//! tokens are never acceptable.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde::Serialize;

mod reentrant;

pub use reentrant::{
    analyse_reentrant, token_records, RAcquire, RGrant, RRelease, ReentrantHold, ReentrantReport,
};

/// One grant as the client saw it.
#[derive(Debug, Clone)]
pub struct GrantRecord {
    pub key: u64,
    pub token: u64,
    /// When the acquire request was sent.
    pub requested: Instant,
    /// When its reply arrived.
    pub granted: Instant,
    /// The validity the gateway reported.
    pub validity: Duration,
    /// When the release was sent, if it was.
    pub released: Option<Instant>,
}

impl GrantRecord {
    /// The end of the time the holder relied on the lock.
    fn end(&self) -> Instant {
        let lease_end = self.granted + self.validity;
        self.released.map_or(lease_end, |r| r.min(lease_end))
    }
}

/// What the analysis found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub grants: u64,
    pub duplicate_tokens: u64,
    pub backwards_tokens: u64,
    pub overlapping_validity: u64,
    pub stale_rejected: u64,
    /// A few examples, for a human.
    pub examples: Vec<String>,
}

impl Report {
    /// True when nothing unacceptable happened.
    pub fn safe(&self) -> bool {
        self.duplicate_tokens == 0 && self.backwards_tokens == 0
    }
}

const MAX_EXAMPLES: usize = 10;

/// Analyses a whole history.
pub fn analyse(history: &[GrantRecord], stale_rejected: u64) -> Report {
    let mut by_key: HashMap<u64, Vec<&GrantRecord>> = HashMap::new();
    for g in history {
        by_key.entry(g.key).or_default().push(g);
    }
    let mut r = Report {
        grants: history.len() as u64,
        stale_rejected,
        ..Report::default()
    };
    let example = |r: &mut Report, s: String| {
        if r.examples.len() < MAX_EXAMPLES {
            r.examples.push(s);
        }
    };
    for (key, mut grants) in by_key {
        let mut seen = HashSet::new();
        for g in &grants {
            if !seen.insert(g.token) {
                r.duplicate_tokens += 1;
                example(
                    &mut r,
                    format!("key {key}: token {} granted twice", g.token),
                );
            }
        }
        // Backwards: sweep grants by reply time, requests by request time,
        // keeping the highest token among replies that came before.
        grants.sort_by_key(|g| g.granted);
        let mut by_request: Vec<&GrantRecord> = grants.clone();
        by_request.sort_by_key(|g| g.requested);
        let mut i = 0;
        let mut highest: Option<u64> = None;
        for b in &by_request {
            while i < grants.len() && grants[i].granted < b.requested {
                highest = highest.max(Some(grants[i].token));
                i += 1;
            }
            if let Some(h) = highest {
                if b.token <= h {
                    r.backwards_tokens += 1;
                    example(
                        &mut r,
                        format!(
                            "key {key}: token {} requested after token {h} was granted",
                            b.token
                        ),
                    );
                }
            }
        }
        // Overlaps: in reply order, each grant against the latest end so far.
        let mut latest_end: Option<Instant> = None;
        for g in &grants {
            if latest_end.is_some_and(|e| g.granted < e) {
                r.overlapping_validity += 1;
            }
            latest_end = latest_end.max(Some(g.end()));
        }
    }
    r
}

/// Which lock kind a grant of a read-write lock or semaphore was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Read,
    Write,
    /// A semaphore permit out of `permits`.
    Sem {
        permits: u64,
    },
}

/// One grant of a read-write lock or semaphore, as the client saw it. Its
/// token also goes into the plain [`GrantRecord`] history, so the token
/// checks cover every kind on one key together.
#[derive(Debug, Clone)]
pub struct KindRecord {
    pub key: u64,
    pub kind: Kind,
    pub token: u64,
    pub granted: Instant,
    pub validity: Duration,
    pub released: Option<Instant>,
}

impl KindRecord {
    fn end(&self) -> Instant {
        let lease_end = self.granted + self.validity;
        self.released.map_or(lease_end, |r| r.min(lease_end))
    }
}

/// What the kinds analysis found. Like plain overlaps, these can only
/// happen under timing faults; in a run without faults they are bugs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KindReport {
    pub reads: u64,
    pub writes: u64,
    pub sem_grants: u64,
    /// Instants at which more semaphore holders than `permits` had live
    /// validity (counted once per grant that pushed the count over).
    pub sem_over_permits: u64,
    /// Grants that made a writer's live validity overlap another reader's
    /// or writer's.
    pub writer_overlaps: u64,
    pub examples: Vec<String>,
}

impl KindReport {
    /// True when no kind's exclusion rule was seen broken.
    pub fn clean(&self) -> bool {
        self.sem_over_permits == 0 && self.writer_overlaps == 0
    }
}

/// Checks the kinds' invariants over live validity windows
/// (`granted .. min(release sent, granted + validity)`), per key: never more
/// than `permits` semaphore holders at once; never a writer together with
/// any other reader or writer.
pub fn analyse_kinds(history: &[KindRecord]) -> KindReport {
    let mut r = KindReport::default();
    let mut by_key: BTreeMap<u64, Vec<&KindRecord>> = BTreeMap::new();
    for g in history {
        match g.kind {
            Kind::Read => r.reads += 1,
            Kind::Write => r.writes += 1,
            Kind::Sem { .. } => r.sem_grants += 1,
        }
        by_key.entry(g.key).or_default().push(g);
    }
    let example = |r: &mut KindReport, s: String| {
        if r.examples.len() < MAX_EXAMPLES {
            r.examples.push(s);
        }
    };
    for (key, mut grants) in by_key {
        grants.sort_by_key(|g| g.granted);
        // Each grant against the earlier grants still live when it arrived.
        for (i, g) in grants.iter().enumerate() {
            let live: Vec<&&KindRecord> =
                grants[..i].iter().filter(|e| e.end() > g.granted).collect();
            match g.kind {
                Kind::Sem { permits } => {
                    let holders = 1 + live
                        .iter()
                        .filter(|e| matches!(e.kind, Kind::Sem { .. }))
                        .count() as u64;
                    if holders > permits {
                        r.sem_over_permits += 1;
                        example(
                            &mut r,
                            format!("key {key}: token {} made {holders} live holders of {permits} permits", g.token),
                        );
                    }
                }
                Kind::Read | Kind::Write => {
                    let clash = live.iter().find(|e| {
                        !matches!(e.kind, Kind::Sem { .. })
                            && (g.kind == Kind::Write || e.kind == Kind::Write)
                    });
                    if let Some(e) = clash {
                        r.writer_overlaps += 1;
                        example(
                            &mut r,
                            format!(
                                "key {key}: {:?} token {} granted while {:?} token {} was live",
                                g.kind, g.token, e.kind, e.token
                            ),
                        );
                    }
                }
            }
        }
    }
    r
}

/// The simulated protected resource: per key, the highest admitted token
/// and a counter that lock-protected read-modify-writes increment.
#[derive(Debug, Default)]
pub struct Resource {
    keys: DashMap<u64, (u64, u64)>,
}

impl Resource {
    /// Reads the counter of `key`.
    pub fn read(&self, key: u64) -> u64 {
        self.keys.get(&key).map_or(0, |e| e.1)
    }

    /// Reads the counter of `key` under `token`, as a resource that checks
    /// fencing tokens on every access does: `None` (stale) when a higher
    /// token was already seen. A read raises the key's token, so the holder
    /// whose lease ran out cannot write back what it read before: without
    /// this, two overlapping holders could both read, both write, and lose
    /// an update although every write carried an increasing token.
    pub fn read_fenced(&self, key: u64, token: u64) -> Option<u64> {
        let mut e = self.keys.entry(key).or_insert((0, 0));
        if token < e.0 {
            return None;
        }
        e.0 = token;
        Some(e.1)
    }

    /// Writes `value` under `token`; false (stale) when a higher token was
    /// already admitted for this key.
    pub fn write(&self, key: u64, token: u64, value: u64) -> bool {
        let mut e = self.keys.entry(key).or_insert((0, 0));
        if token < e.0 {
            return false;
        }
        *e = (token, value);
        true
    }

    /// The sum of every key's counter.
    pub fn total(&self) -> u64 {
        self.keys.iter().map(|e| e.1).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    /// A grant of `key` requested at `req`, granted at `got`, released at
    /// `rel` (ms from `base`), valid for 1 s.
    fn g(base: Instant, key: u64, token: u64, req: u64, got: u64, rel: u64) -> GrantRecord {
        GrantRecord {
            key,
            token,
            requested: at(base, req),
            granted: at(base, got),
            validity: Duration::from_secs(1),
            released: Some(at(base, rel)),
        }
    }

    #[test]
    fn a_clean_serial_history_passes() {
        let b = Instant::now();
        let h = [
            g(b, 1, 10, 0, 1, 5),
            g(b, 1, 11, 5, 6, 9),
            g(b, 2, 3, 0, 1, 2),
        ];
        let r = analyse(&h, 0);
        assert_eq!(r.grants, 3);
        assert!(r.safe(), "{r:?}");
        assert_eq!(r.overlapping_validity, 0);
    }

    #[test]
    fn a_duplicate_token_is_caught() {
        let b = Instant::now();
        let h = [g(b, 1, 10, 0, 1, 5), g(b, 1, 10, 6, 7, 9)];
        let r = analyse(&h, 0);
        assert_eq!(r.duplicate_tokens, 1);
        assert!(!r.safe());
    }

    #[test]
    fn a_token_that_goes_backwards_in_real_time_is_caught() {
        let b = Instant::now();
        // The second grant was requested after the first was granted.
        let h = [g(b, 1, 10, 0, 1, 5), g(b, 1, 9, 6, 7, 9)];
        let r = analyse(&h, 0);
        assert_eq!(r.backwards_tokens, 1);
        assert!(!r.safe());
    }

    #[test]
    fn concurrent_requests_may_be_granted_in_either_token_order() {
        let b = Instant::now();
        // Both requested before either reply: no real-time order to respect.
        let h = [g(b, 1, 10, 0, 3, 4), g(b, 1, 9, 1, 2, 2)];
        let r = analyse(&h, 0);
        assert!(r.safe(), "{r:?}");
    }

    #[test]
    fn tokens_of_different_keys_are_independent() {
        let b = Instant::now();
        let h = [g(b, 1, 10, 0, 1, 2), g(b, 2, 5, 3, 4, 5)];
        assert!(analyse(&h, 0).safe());
    }

    #[test]
    fn overlapping_validity_is_reported_but_not_unsafe() {
        let b = Instant::now();
        // B granted at 3 while A held until 5 (a timing fault).
        let h = [g(b, 1, 10, 0, 1, 5), g(b, 1, 11, 2, 3, 6)];
        let r = analyse(&h, 0);
        assert_eq!(r.overlapping_validity, 1);
        assert!(r.safe());
    }

    #[test]
    fn a_lease_that_ran_out_ends_the_holding_time() {
        let b = Instant::now();
        let mut a = g(b, 1, 10, 0, 1, 5_000);
        a.validity = Duration::from_millis(100);
        // B granted at 200: A's lease ended at 101, so no overlap.
        let h = [a, g(b, 1, 11, 150, 200, 300)];
        assert_eq!(analyse(&h, 0).overlapping_validity, 0);
    }

    fn k(b: Instant, kind: Kind, token: u64, got: u64, rel: u64) -> KindRecord {
        KindRecord {
            key: 1,
            kind,
            token,
            granted: at(b, got),
            validity: Duration::from_secs(1),
            released: Some(at(b, rel)),
        }
    }

    #[test]
    fn permits_holders_at_once_pass_and_one_more_is_caught() {
        let b = Instant::now();
        let sem = Kind::Sem { permits: 2 };
        let ok = [
            k(b, sem, 1, 0, 10),
            k(b, sem, 2, 1, 10),
            k(b, sem, 3, 10, 20),
        ];
        let r = analyse_kinds(&ok);
        assert!(r.clean(), "{r:?}");
        assert_eq!(r.sem_grants, 3);
        let over = [
            k(b, sem, 1, 0, 10),
            k(b, sem, 2, 1, 10),
            k(b, sem, 3, 5, 20),
        ];
        let r = analyse_kinds(&over);
        assert_eq!(r.sem_over_permits, 1);
        assert!(!r.clean());
    }

    #[test]
    fn readers_may_share_but_a_writer_overlapping_a_reader_is_caught() {
        let b = Instant::now();
        let shared = [k(b, Kind::Read, 1, 0, 10), k(b, Kind::Read, 2, 1, 10)];
        assert!(analyse_kinds(&shared).clean());
        let w_after_r = [k(b, Kind::Read, 1, 0, 10), k(b, Kind::Write, 2, 5, 20)];
        assert_eq!(analyse_kinds(&w_after_r).writer_overlaps, 1);
        let r_after_w = [k(b, Kind::Write, 1, 0, 10), k(b, Kind::Read, 2, 5, 20)];
        assert_eq!(analyse_kinds(&r_after_w).writer_overlaps, 1);
        let w_w = [k(b, Kind::Write, 1, 0, 10), k(b, Kind::Write, 2, 5, 20)];
        assert_eq!(analyse_kinds(&w_w).writer_overlaps, 1);
        let serial = [k(b, Kind::Write, 1, 0, 10), k(b, Kind::Read, 2, 10, 20)];
        assert!(analyse_kinds(&serial).clean());
    }

    #[test]
    fn a_lease_that_ran_out_ends_a_kind_holding_time() {
        let b = Instant::now();
        let mut w = k(b, Kind::Write, 1, 0, 5_000);
        w.validity = Duration::from_millis(100);
        let h = [w, k(b, Kind::Read, 2, 200, 300)];
        assert!(analyse_kinds(&h).clean());
    }

    #[test]
    fn the_resource_rejects_stale_tokens_and_keeps_the_value() {
        let r = Resource::default();
        assert!(r.write(1, 10, 1));
        assert!(r.write(1, 10, 2), "the same holder may write again");
        assert!(!r.write(1, 9, 3));
        assert_eq!(r.read(1), 2);
        assert!(r.write(1, 11, 3));
        assert_eq!(r.total(), 3);
    }

    #[test]
    fn a_fenced_read_makes_the_older_holder_write_stale() {
        let r = Resource::default();
        // Two overlapping holders both read 0; the newer one wins.
        assert_eq!(r.read_fenced(1, 10), Some(0));
        assert_eq!(r.read_fenced(1, 11), Some(0));
        assert!(!r.write(1, 10, 1), "the older holder's write is stale");
        assert!(r.write(1, 11, 1));
        assert_eq!(r.read_fenced(1, 10), None);
        assert_eq!(r.total(), 1);
    }
}
