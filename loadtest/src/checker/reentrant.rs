//! The reentrant-lock checker: every `RLOCK.*` hold a run made, step by
//! step, checked against what the README promises of hold counts.
//!
//! A hold is one owner's nested acquires on one key (the first a fresh
//! grant), then its releases. Rules, per hold:
//!
//! - **negative**: no reply ever reports a negative count;
//! - **holds mismatch**: the i-th granted acquire reports `holds == i`, and
//!   each release reports what is still owed (`granted - released`);
//! - **token changed**: nested grants carry the first grant's token;
//! - **freed early**: the lock is free, or someone else's, only after the
//!   outermost release: an inner release never answers 0 left, and while
//!   the hold's lease is surely live no nested acquire or inner release
//!   answers nil (not held by this owner);
//! - **held by other**: no other hold on the key is granted while this one
//!   is live (the same convention as [`super::analyse_kinds`]).
//!
//! "Surely live" is counted from the request, as a Redlock client must: a
//! lease ends at the latest `sent + validity` of the hold's grants, and a
//! step counts only when its reply arrived before that. A step after it is
//! excused (the key may simply have expired) and the hold's checks stop
//! there. A hold whose request failed (error reply, timeout) stops being
//! checked at the failure: its count on the masters is then unknown.
//!
//! Token uniqueness and order are not checked here: [`token_records`] turns
//! each hold into one plain [`GrantRecord`] for [`super::analyse`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{GrantRecord, MAX_EXAMPLES};

/// A granted `RLOCK.ACQUIRE` reply.
#[derive(Debug, Clone, Copy)]
pub struct RGrant {
    pub holds: i64,
    pub token: u64,
    pub validity: Duration,
}

/// One `RLOCK.ACQUIRE` of a hold: `grant` is `None` for nil.
#[derive(Debug, Clone, Copy)]
pub struct RAcquire {
    pub sent: Instant,
    pub arrived: Instant,
    pub grant: Option<RGrant>,
}

/// One `RLOCK.RELEASE` of a hold: `left` is `None` for nil (not held).
#[derive(Debug, Clone, Copy)]
pub struct RRelease {
    pub sent: Instant,
    pub arrived: Instant,
    pub left: Option<i64>,
}

/// One owner's hold of one key. `acquires[0]` is the fresh grant (a hold
/// is only recorded once it was granted).
#[derive(Debug, Clone)]
pub struct ReentrantHold {
    pub key: u64,
    pub acquires: Vec<RAcquire>,
    pub releases: Vec<RRelease>,
    /// When a request of this hold failed; later steps are not checked.
    pub failed: Option<Instant>,
}

/// What the reentrant analysis found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReentrantReport {
    pub holds: u64,
    /// Granted acquires after the first of a hold.
    pub nested_grants: u64,
    pub releases: u64,
    pub max_depth: u64,
    pub negative_holds: u64,
    pub holds_mismatch: u64,
    pub token_changed: u64,
    pub freed_early: u64,
    pub held_by_other: u64,
    /// Holds whose later steps came after their lease (not checked).
    pub expired_mid_hold: u64,
    /// Holds cut short by a failed request (later steps not checked).
    pub failed_mid_hold: u64,
    pub examples: Vec<String>,
}

impl ReentrantReport {
    /// True when no reentrant rule was seen broken.
    pub fn clean(&self) -> bool {
        self.violations() == 0
    }

    /// Every broken rule, counted.
    pub fn violations(&self) -> u64 {
        self.negative_holds
            + self.holds_mismatch
            + self.token_changed
            + self.freed_early
            + self.held_by_other
    }

    fn example(&mut self, s: String) {
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(s);
        }
    }
}

// === impl ReentrantHold ===

impl ReentrantHold {
    fn first(&self) -> Option<(Instant, Instant, RGrant)> {
        let a = self.acquires.first()?;
        Some((a.sent, a.arrived, a.grant?))
    }

    /// The end of the time the holder surely held the lock: its outermost
    /// release sent, or its lease end (counted from the request).
    fn end(&self) -> Option<Instant> {
        let mut lease = None;
        for a in &self.acquires {
            if let Some(g) = a.grant {
                lease = lease.max(Some(a.sent + g.validity));
            }
        }
        let released = self.releases.last().map(|r| r.sent);
        match (lease, released) {
            (Some(l), Some(r)) => Some(l.min(r)),
            (l, _) => l,
        }
    }
}

/// One plain grant record per hold, for the token checks.
pub fn token_records(holds: &[ReentrantHold]) -> Vec<GrantRecord> {
    holds
        .iter()
        .filter_map(|h| {
            let (sent, arrived, g) = h.first()?;
            let end = h.end()?;
            Some(GrantRecord {
                key: h.key,
                token: g.token,
                requested: sent,
                granted: arrived,
                validity: end.saturating_duration_since(arrived),
                released: h.releases.last().map(|r| r.sent),
            })
        })
        .collect()
}

/// Checks every hold against the rules in the module doc.
pub fn analyse_reentrant(holds: &[ReentrantHold]) -> ReentrantReport {
    let mut r = ReentrantReport::default();
    for h in holds {
        check_hold(h, &mut r);
    }
    // Held by other: per key, each hold's grant against the earlier holds
    // still live when it arrived.
    let mut by_key: BTreeMap<u64, Vec<(Instant, Instant, u64)>> = BTreeMap::new();
    for h in holds {
        if let (Some((_, arrived, g)), Some(end)) = (h.first(), h.end()) {
            by_key
                .entry(h.key)
                .or_default()
                .push((arrived, end, g.token));
        }
    }
    for (key, mut v) in by_key {
        v.sort_by_key(|x| x.0);
        for (i, (at, _, token)) in v.iter().enumerate() {
            if let Some((_, _, other)) = v[..i].iter().find(|e| e.1 > *at) {
                r.held_by_other += 1;
                r.example(format!(
                    "key {key}: token {token} granted while token {other} still held it"
                ));
            }
        }
    }
    r
}

fn check_hold(h: &ReentrantHold, r: &mut ReentrantReport) {
    let Some((first_sent, _, first)) = h.first() else {
        return;
    };
    let key = h.key;
    r.holds += 1;
    let before_failure = |t: Instant| h.failed.is_none_or(|f| t < f);
    let mut lease_end = first_sent + first.validity;
    let mut granted: i64 = 0;
    let mut expired = false;
    for (i, a) in h.acquires.iter().enumerate() {
        if !before_failure(a.arrived) {
            break;
        }
        if i > 0 && a.arrived >= lease_end {
            expired = true;
            break;
        }
        let Some(g) = a.grant else {
            if i > 0 {
                r.freed_early += 1;
                r.example(format!(
                    "key {key}: nested acquire {} answered nil while token {} was held",
                    i + 1,
                    first.token
                ));
            }
            break;
        };
        granted += 1;
        if i > 0 {
            r.nested_grants += 1;
        }
        if g.holds < 0 {
            r.negative_holds += 1;
            r.example(format!("key {key}: acquire reported {} holds", g.holds));
        } else if g.holds != granted {
            r.holds_mismatch += 1;
            r.example(format!(
                "key {key}: grant {granted} of token {} reported {} holds",
                first.token, g.holds
            ));
        }
        if g.token != first.token {
            r.token_changed += 1;
            r.example(format!(
                "key {key}: nested grant {granted} carried token {} instead of {}",
                g.token, first.token
            ));
        }
        lease_end = lease_end.max(a.sent + g.validity);
    }
    r.max_depth = r.max_depth.max(u64::try_from(granted).unwrap_or(0));
    if !expired {
        for (j, rel) in h.releases.iter().enumerate() {
            if !before_failure(rel.arrived) {
                break;
            }
            r.releases += 1;
            let owed = granted - 1 - i64::try_from(j).unwrap_or(i64::MAX);
            let live = rel.arrived < lease_end;
            match rel.left {
                Some(left) if left < 0 => {
                    r.negative_holds += 1;
                    r.example(format!("key {key}: release reported {left} holds left"));
                }
                // Never excused by timing: an expired key answers nil.
                Some(0) if owed > 0 => {
                    r.freed_early += 1;
                    r.example(format!(
                        "key {key}: release {} of {granted} freed token {} ({owed} still owed)",
                        j + 1,
                        first.token
                    ));
                }
                Some(left) if live && left != owed => {
                    r.holds_mismatch += 1;
                    r.example(format!(
                        "key {key}: release {} of {granted} left {left} holds, expected {owed}",
                        j + 1
                    ));
                }
                None if live && owed > 0 => {
                    r.freed_early += 1;
                    r.example(format!(
                        "key {key}: release {} of {granted} found token {} gone ({owed} owed)",
                        j + 1,
                        first.token
                    ));
                }
                None if !live => {
                    expired = true;
                    break;
                }
                _ => {}
            }
        }
    }
    if expired {
        r.expired_mid_hold += 1;
    }
    if h.failed.is_some() {
        r.failed_mid_hold += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(b: Instant, ms: u64) -> Instant {
        b + Duration::from_millis(ms)
    }

    fn grant(b: Instant, ms: u64, holds: i64, token: u64) -> RAcquire {
        RAcquire {
            sent: at(b, ms),
            arrived: at(b, ms + 1),
            grant: Some(RGrant {
                holds,
                token,
                validity: Duration::from_secs(1),
            }),
        }
    }

    fn rel(b: Instant, ms: u64, left: Option<i64>) -> RRelease {
        RRelease {
            sent: at(b, ms),
            arrived: at(b, ms + 1),
            left,
        }
    }

    /// A clean depth-3 hold of token 7 on key 1, from `t` ms.
    fn hold3(b: Instant, t: u64, token: u64) -> ReentrantHold {
        ReentrantHold {
            key: 1,
            acquires: vec![
                grant(b, t, 1, token),
                grant(b, t + 2, 2, token),
                grant(b, t + 4, 3, token),
            ],
            releases: vec![
                rel(b, t + 6, Some(2)),
                rel(b, t + 8, Some(1)),
                rel(b, t + 10, Some(0)),
            ],
            failed: None,
        }
    }

    #[test]
    fn clean_nested_holds_pass() {
        let b = Instant::now();
        let r = analyse_reentrant(&[hold3(b, 0, 7), hold3(b, 20, 8)]);
        assert!(r.clean(), "{r:?}");
        assert_eq!((r.holds, r.nested_grants, r.releases), (2, 4, 6));
        assert_eq!(r.max_depth, 3);
    }

    #[test]
    fn a_negative_count_is_caught() {
        let b = Instant::now();
        let mut h = hold3(b, 0, 7);
        h.releases[2].left = Some(-1);
        let r = analyse_reentrant(&[h]);
        assert_eq!(r.negative_holds, 1, "{r:?}");
        assert!(!r.clean());
    }

    #[test]
    fn a_nested_grant_whose_holds_differ_from_the_depth_is_caught() {
        let b = Instant::now();
        let mut h = hold3(b, 0, 7);
        h.acquires[1] = grant(b, 2, 1, 7);
        let r = analyse_reentrant(&[h]);
        assert!(r.holds_mismatch >= 1, "{r:?}");
        assert!(!r.clean());
    }

    #[test]
    fn a_release_that_leaves_too_many_holds_is_caught() {
        let b = Instant::now();
        let mut h = hold3(b, 0, 7);
        h.releases[2].left = Some(1);
        let r = analyse_reentrant(&[h]);
        assert_eq!(r.holds_mismatch, 1, "{r:?}");
    }

    #[test]
    fn a_nested_grant_with_a_new_token_is_caught() {
        let b = Instant::now();
        let mut h = hold3(b, 0, 7);
        h.acquires[2] = grant(b, 4, 3, 9);
        let r = analyse_reentrant(&[h]);
        assert_eq!(r.token_changed, 1, "{r:?}");
        assert!(!r.clean());
    }

    #[test]
    fn an_inner_release_that_frees_the_lock_is_caught() {
        let b = Instant::now();
        let mut h = hold3(b, 0, 7);
        h.releases[1].left = Some(0);
        let r = analyse_reentrant(&[h]);
        assert_eq!(r.freed_early, 1, "{r:?}");
        assert!(!r.clean());
    }

    #[test]
    fn a_live_inner_release_or_nested_acquire_answering_nil_is_caught() {
        let b = Instant::now();
        let mut h = hold3(b, 0, 7);
        h.releases[0].left = None;
        assert_eq!(analyse_reentrant(&[h]).freed_early, 1);
        let mut h = hold3(b, 0, 7);
        h.acquires[1].grant = None;
        h.acquires.truncate(2);
        h.releases = vec![rel(b, 6, Some(0))];
        let r = analyse_reentrant(&[h]);
        assert_eq!(r.freed_early, 1, "{r:?}");
    }

    #[test]
    fn nil_after_the_lease_ran_out_is_excused() {
        let b = Instant::now();
        let mut h = hold3(b, 0, 7);
        // Every grant's lease (1 s from its request) is over by 2 s.
        h.releases = vec![rel(b, 2_000, None)];
        let r = analyse_reentrant(&[h]);
        assert!(r.clean(), "{r:?}");
        assert_eq!(r.expired_mid_hold, 1);
    }

    #[test]
    fn another_owner_granted_while_the_hold_is_live_is_caught() {
        let b = Instant::now();
        // The second hold is granted at 5 ms, before the first's outermost
        // release at 10 ms.
        let r = analyse_reentrant(&[hold3(b, 0, 7), hold3(b, 4, 8)]);
        assert!(r.held_by_other >= 1, "{r:?}");
        assert!(!r.clean());
    }

    #[test]
    fn steps_after_a_failed_request_are_not_judged() {
        let b = Instant::now();
        let mut h = hold3(b, 0, 7);
        h.failed = Some(at(b, 5));
        h.releases[0].left = Some(5);
        let r = analyse_reentrant(&[h]);
        assert!(r.clean(), "{r:?}");
        assert_eq!(r.failed_mid_hold, 1);
    }

    #[test]
    fn each_hold_is_one_token_record_and_repeats_across_holds_are_caught() {
        let b = Instant::now();
        let recs = token_records(&[hold3(b, 0, 7), hold3(b, 20, 7)]);
        assert_eq!(recs.len(), 2);
        let rep = super::super::analyse(&recs, 0);
        assert_eq!(rep.duplicate_tokens, 1, "{rep:?}");
        let recs = token_records(&[hold3(b, 0, 7), hold3(b, 20, 6)]);
        assert_eq!(super::super::analyse(&recs, 0).backwards_tokens, 1);
        let recs = token_records(&[hold3(b, 0, 7), hold3(b, 20, 8)]);
        assert!(super::super::analyse(&recs, 0).safe());
    }
}
