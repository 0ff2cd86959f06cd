//! Reentrant locks (`RLOCK.*`): the owner that holds a key may acquire it
//! again and gets a hold count; only the release of the last hold frees it.
//!
//! # On the masters
//! A reentrant lock is the lock key K holding `rlock:<owner>` (so plain
//! `LOCK.*` commands see another owner: busy, not held) plus a hold count
//! key beside it (`keys::holds_key`), both with the lock's TTL, and the same
//! fence register as a plain lock. A fresh grant is a plain grant with the
//! token rule (`racquire.lua`); a reentry never touches the register, so the
//! token cannot change while the lock is held.
//!
//! # Counts when masters disagree
//! A master may miss a hold (its request timed out) or see one the client
//! was told failed (its reply was lost). A master whose count is too *low*
//! would free K early, so every operation is two steps:
//! 1. a read of every voting master (`rstatus.lua`); the expected count `e`
//!    is the highest count among the masters holding K for this owner, and
//!    at least `q` must hold it;
//! 2. a conditional write (`racquire.lua` / `rrelease.lua`) that sets the
//!    count to `e + 1` (or `e - 1`, deleting K at 0) on every master whose
//!    count is at most `e`, and refuses (no vote) where it is above `e`.
//!
//! Lagging masters are thus raised to the quorum's count, never lowered
//! below it, and a concurrent operation of the same owner (its count above
//! `e`) makes the other one read again instead of overwriting it. A count
//! that is too *high* (a hold the client was told failed) only delays the
//! release until the TTL; every reply carries the count the quorum now
//! stores, which is authoritative. An error reply leaves an operation's
//! outcome unknown, as for any write.
//!
//! `lock::model` property-tests these rules against lost requests and
//! replies and interleaved owners.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use tokio::time::Instant;
use tracing::debug;

use super::engine::{count_yes_no, settled};
use super::keys::{fence_key, holds_key};
use super::quorum::{Decision, Tally};
use super::validity::{remaining, valid_until};
use super::{Engine, ExtendOutcome, Grant};
use crate::fence::FencingToken;
use crate::master::{MasterError, Value};
use crate::metrics::{Op, Outcome};

/// What K holds on the masters when a reentrant lock owns it.
pub const MARKER: &[u8] = b"rlock:";

/// Read-and-write attempts one operation makes when a concurrent operation
/// of the same owner moved the count under it.
const MAX_READS: usize = 3;

/// Fresh-grant rounds (the first, plus up to two higher proposals).
const MAX_ROUNDS: usize = 3;

/// The value stored in K for a reentrant `owner`.
pub fn stored_value(owner: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(MARKER.len() + owner.len());
    b.put_slice(MARKER);
    b.put_slice(owner);
    b.freeze()
}

/// The outcome of `RLOCK.ACQUIRE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReentrantAcquire {
    /// Held by this owner on a quorum, with `holds` holds now.
    Granted {
        grant: Grant,
        holds: u64,
    },
    /// Held by another owner (or a plain lock) on enough masters.
    Busy,
    NoQuorum {
        voted: usize,
        needed: usize,
    },
    /// A quorum agreed but the validity ran out first.
    Expired,
}

/// The outcome of `RLOCK.RELEASE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReentrantRelease {
    /// One hold dropped; at 0 the lock is free.
    Released {
        remaining: u64,
    },
    NotHeld,
    NoQuorum {
        voted: usize,
        needed: usize,
    },
}

/// The outcome of `RLOCK.STATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReentrantStatus {
    Held {
        owner: Bytes,
        token: FencingToken,
        pttl: Duration,
        holds: u64,
    },
    /// No reentrant holder has a quorum (free, or a plain lock).
    NotHeld,
    NoQuorum {
        voted: usize,
        needed: usize,
    },
}

/// One master's view of K.
#[derive(Debug, Clone)]
enum View {
    Free,
    Held {
        value: Bytes,
        token: u64,
        pttl: i64,
        holds: u64,
    },
}

/// What a read of every voting master found for one owner.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Read {
    /// At least `q` masters hold K for the value asked about.
    Ours {
        holds: u64,
        token: u64,
        pttl: i64,
    },
    /// At least `q` masters have K free.
    Free,
    /// Answered by a quorum, but neither of the above.
    Other,
    NoQuorum {
        voted: usize,
    },
}

/// The outcome of one conditional write round.
enum Round {
    Granted {
        token: u64,
        holds: u64,
    },
    /// Lost because a concurrent operation of this owner moved the count.
    Moved,
    Busy,
    NoQuorum {
        voted: usize,
    },
}

// === impl Engine ===

impl Engine {
    fn rkeys(&self, key: &Bytes) -> Arc<[Bytes]> {
        let p = &self.config().key_prefix;
        Arc::from(vec![
            self.meta_key().clone(),
            key.clone(),
            fence_key(p, key),
            holds_key(p, key),
        ])
    }

    /// Reads K on every voting master (until each answered or the master
    /// deadline), and summarises it for `value`.
    async fn rread(&self, key: &Bytes) -> Vec<View> {
        let start = Instant::now();
        let scripts = self.scripts().clone();
        let (_, mut futs) = self.fan_out_script(
            &scripts.rstatus,
            self.rkeys(key),
            Arc::from(Vec::new()),
            start + self.timeout(),
            true,
        );
        let mut views = Vec::new();
        while let Some((i, reply)) = futs.next().await {
            match parse_view(reply) {
                Ok(Some(v)) => views.push(v),
                Ok(None) => self.note_amnesia(i),
                Err(()) => debug!(master = i, "no reentrant status from master"),
            }
        }
        views
    }

    fn summarise(&self, views: &[View], value: &[u8]) -> Read {
        let q = self.quorum();
        let mut ours = 0usize;
        let (mut holds, mut token, mut pttl) = (0u64, 0u64, i64::MAX);
        let mut free = 0usize;
        for v in views {
            match v {
                View::Free => free += 1,
                View::Held {
                    value: val,
                    token: t,
                    pttl: p,
                    holds: h,
                } if &val[..] == value && *h >= 1 => {
                    ours += 1;
                    holds = holds.max(*h);
                    token = token.max(*t);
                    pttl = pttl.min(*p);
                }
                View::Held { .. } => {}
            }
        }
        if ours >= q {
            Read::Ours { holds, token, pttl }
        } else if free >= q {
            Read::Free
        } else if views.len() >= q {
            Read::Other
        } else {
            Read::NoQuorum { voted: views.len() }
        }
    }

    /// `RLOCK.ACQUIRE` without waiting: a fresh grant when K is free on a
    /// quorum, one more hold when this owner holds it on a quorum, else
    /// busy.
    pub async fn racquire(&self, key: &Bytes, owner: &Bytes, ttl: Duration) -> ReentrantAcquire {
        let start = Instant::now();
        let out = self.racquire_inner(key, owner, ttl, start).await;
        let o = match &out {
            ReentrantAcquire::Granted { .. } => None, // recorded when replied
            ReentrantAcquire::Busy => Some(Outcome::Busy),
            ReentrantAcquire::NoQuorum { .. } => Some(Outcome::NoQuorum),
            ReentrantAcquire::Expired => Some(Outcome::ExpiredInFlight),
        };
        if let Some(o) = o {
            self.metrics()
                .lock_op(Op::ReentrantAcquire, o, start.elapsed().as_secs_f64());
        }
        out
    }

    async fn racquire_inner(
        &self,
        key: &Bytes,
        owner: &Bytes,
        ttl: Duration,
        start: Instant,
    ) -> ReentrantAcquire {
        let cfg = self.config();
        let until = valid_until(start, ttl, cfg.drift_factor, cfg.drift_constant);
        let value = stored_value(owner);
        let q = self.quorum();
        for _ in 0..MAX_READS {
            if remaining(until, Instant::now()).is_none() {
                return ReentrantAcquire::Expired;
            }
            let views = self.rread(key).await;
            let want = match self.summarise(&views, &value) {
                Read::Free => 0,
                Read::Ours { holds, .. } => holds,
                Read::Other => return ReentrantAcquire::Busy,
                Read::NoQuorum { voted } => return ReentrantAcquire::NoQuorum { voted, needed: q },
            };
            match self.racquire_round(key, &value, ttl, want, until).await {
                Round::Granted { token, holds } => {
                    if remaining(until, Instant::now()).is_none() {
                        if holds == 1 {
                            self.rrelease_in_background(key, &value, 1);
                        }
                        return ReentrantAcquire::Expired;
                    }
                    return ReentrantAcquire::Granted {
                        grant: Grant {
                            token: FencingToken(token),
                            valid_until: until,
                            start,
                        },
                        holds,
                    };
                }
                Round::Moved => continue,
                Round::Busy => return ReentrantAcquire::Busy,
                Round::NoQuorum { voted } => {
                    return ReentrantAcquire::NoQuorum { voted, needed: q }
                }
            }
        }
        ReentrantAcquire::Busy
    }

    /// One conditional write: from `want` holds to `want + 1`. A fresh grant
    /// (`want == 0`) proposes tokens and retries higher like a plain
    /// acquire; a lost fresh grant is released again.
    async fn racquire_round(
        &self,
        key: &Bytes,
        value: &Bytes,
        ttl: Duration,
        want: u64,
        until: Instant,
    ) -> Round {
        let q = self.quorum();
        let keys = self.rkeys(key);
        let scripts = self.scripts().clone();
        let mut floor = 0u64;
        let mut last = Round::NoQuorum { voted: 0 };
        for round in 0..MAX_ROUNDS {
            let now = Instant::now();
            if remaining(until, now).is_none() {
                break;
            }
            // A reentry keeps the register: its proposal is never used.
            let token = if want == 0 {
                match self.proposer().propose_above(floor) {
                    Ok(t) => t.0,
                    Err(_) => break,
                }
            } else {
                0
            };
            let args: Arc<[Bytes]> = Arc::from(vec![
                value.clone(),
                Bytes::from(ttl.as_millis().to_string()),
                Bytes::from(token.to_string()),
                Bytes::from_static(if round == 0 { b"0" } else { b"1" }),
                Bytes::from(want.to_string()),
            ]);
            let deadline = (now + self.timeout()).min(until);
            let (asked, mut futs) =
                self.fan_out_script(&scripts.racquire, keys.clone(), args, deadline, true);
            let mut tally = Tally::default();
            let mut moved = 0usize;
            let mut best = 0u64;
            let mut decision = tally.decide(asked, q);
            while decision == Decision::Pending {
                let Some((i, reply)) = futs.next().await else {
                    break;
                };
                match parse_triple(reply) {
                    Some((0, t, h)) if h == want + 1 && (want > 0 || t == token) => {
                        tally.granted += 1;
                        best = best.max(t);
                    }
                    Some((1, reg, _)) => {
                        tally.busy += 1;
                        self.proposer().observe(reg);
                    }
                    Some((2, reg, _)) => {
                        tally.stale += 1;
                        floor = floor.max(reg);
                        self.proposer().observe(reg);
                    }
                    Some((3, _, _)) => {
                        tally.no_vote += 1;
                        self.note_amnesia(i);
                    }
                    Some((4, _, _)) => {
                        tally.no_vote += 1;
                        moved += 1;
                    }
                    _ => tally.no_vote += 1,
                }
                decision = tally.decide(asked, q);
            }
            Self::drain(futs);
            let voted = tally.granted + tally.busy + tally.stale;
            last = match decision {
                Decision::Granted => {
                    return Round::Granted {
                        token: best,
                        holds: want + 1,
                    }
                }
                Decision::RetryHigher if want == 0 => {
                    self.metrics().fence_retries.inc();
                    continue;
                }
                _ if moved > 0 => Round::Moved,
                Decision::Busy | Decision::RetryHigher => Round::Busy,
                Decision::NoQuorum | Decision::Pending => Round::NoQuorum { voted },
            };
            break;
        }
        // A fresh grant that lost must not leave partial holds behind (a
        // write that timed out may still land). A lost reentry is left: a
        // count too high only delays the release, and lowering it could undo
        // a concurrent hold of the same owner.
        if want == 0 {
            self.rrelease_in_background(key, value, 1);
        }
        last
    }

    fn rrelease_in_background(&self, key: &Bytes, value: &Bytes, want: u64) {
        let keys: Arc<[Bytes]> = Arc::from(vec![
            self.meta_key().clone(),
            key.clone(),
            holds_key(&self.config().key_prefix, key),
        ]);
        let args: Arc<[Bytes]> = Arc::from(vec![value.clone(), Bytes::from(want.to_string())]);
        let scripts = self.scripts().clone();
        let deadline = Instant::now() + self.timeout();
        let (_, futs) = self.fan_out_script(&scripts.rrelease, keys, args, deadline, false);
        Self::drain(futs);
    }

    /// Reports a reentrant grant only if it is still valid now. A fresh grant
    /// that expired is released; an expired reentry is left (see the module
    /// notes on counts that are too high).
    pub fn finish_rgrant(
        &self,
        grant: &Grant,
        key: &Bytes,
        owner: &Bytes,
        holds: u64,
    ) -> Option<Duration> {
        let now = Instant::now();
        let elapsed = now.duration_since(grant.start).as_secs_f64();
        match remaining(grant.valid_until, now) {
            Some(left) => {
                self.metrics()
                    .lock_op(Op::ReentrantAcquire, Outcome::Granted, elapsed);
                Some(left)
            }
            None => {
                self.metrics()
                    .lock_op(Op::ReentrantAcquire, Outcome::ExpiredInFlight, elapsed);
                if holds == 1 {
                    self.rrelease_in_background(key, &stored_value(owner), 1);
                }
                None
            }
        }
    }

    /// `RLOCK.RELEASE`: drops one hold; the last one frees K and wakes local
    /// waiters.
    pub async fn rrelease(&self, key: &Bytes, owner: &Bytes) -> ReentrantRelease {
        let start = Instant::now();
        let out = self.rrelease_inner(key, owner).await;
        let o = match out {
            ReentrantRelease::Released { .. } => Outcome::Granted,
            ReentrantRelease::NotHeld => Outcome::Busy,
            ReentrantRelease::NoQuorum { .. } => Outcome::NoQuorum,
        };
        self.metrics()
            .lock_op(Op::ReentrantRelease, o, start.elapsed().as_secs_f64());
        out
    }

    async fn rrelease_inner(&self, key: &Bytes, owner: &Bytes) -> ReentrantRelease {
        let value = stored_value(owner);
        let q = self.quorum();
        let keys: Arc<[Bytes]> = Arc::from(vec![
            self.meta_key().clone(),
            key.clone(),
            holds_key(&self.config().key_prefix, key),
        ]);
        let scripts = self.scripts().clone();
        for _ in 0..MAX_READS {
            let views = self.rread(key).await;
            let want = match self.summarise(&views, &value) {
                Read::Ours { holds, .. } => holds,
                Read::Free | Read::Other => return ReentrantRelease::NotHeld,
                Read::NoQuorum { voted } => return ReentrantRelease::NoQuorum { voted, needed: q },
            };
            let args: Arc<[Bytes]> = Arc::from(vec![value.clone(), Bytes::from(want.to_string())]);
            let start = Instant::now();
            let (asked, mut futs) = self.fan_out_script(
                &scripts.rrelease,
                keys.clone(),
                args,
                start + self.timeout(),
                false,
            );
            let (mut yes, mut no, mut moved, mut failed) = (0usize, 0usize, 0usize, 0usize);
            while let Some((i, reply)) = futs.next().await {
                match parse_pair(reply) {
                    Some((0, _)) => yes += 1,
                    Some((1, _)) => no += 1,
                    Some((4, _)) => moved += 1,
                    Some((3, _)) => {
                        failed += 1;
                        self.note_amnesia(i);
                    }
                    _ => failed += 1,
                }
                if settled(yes, no + moved, failed, asked, q) {
                    break;
                }
            }
            Self::drain(futs);
            if yes >= q {
                let left = want.saturating_sub(1);
                if left == 0 {
                    self.signals().released(std::slice::from_ref(key));
                }
                return ReentrantRelease::Released { remaining: left };
            }
            if moved > 0 {
                continue;
            }
            if yes + no >= q {
                return ReentrantRelease::NotHeld;
            }
            return ReentrantRelease::NoQuorum {
                voted: yes + no,
                needed: q,
            };
        }
        ReentrantRelease::NotHeld
    }

    /// `RLOCK.EXTEND`: compare-and-pexpire of K and its hold count; the
    /// count and the token do not change.
    pub async fn rextend(&self, key: &Bytes, owner: &Bytes, ttl: Duration) -> ExtendOutcome {
        let start = Instant::now();
        let q = self.quorum();
        let keys: Arc<[Bytes]> =
            Arc::from(vec![key.clone(), holds_key(&self.config().key_prefix, key)]);
        let args: Arc<[Bytes]> = Arc::from(vec![
            stored_value(owner),
            Bytes::from(ttl.as_millis().to_string()),
        ]);
        let scripts = self.scripts().clone();
        let (asked, mut futs) =
            self.fan_out_script(&scripts.rextend, keys, args, start + self.timeout(), true);
        let (yes, no) = count_yes_no(&mut futs, asked, q).await;
        Self::drain(futs);
        self.extend_outcome(Op::Extend, start, ttl, yes, no)
    }

    /// `RLOCK.STATUS`: the reentrant holder a quorum agrees on, with the
    /// highest hold count among them.
    pub async fn rstatus(&self, key: &Bytes) -> ReentrantStatus {
        let start = Instant::now();
        let views = self.rread(key).await;
        let q = self.quorum();
        let mut seen: Vec<Bytes> = Vec::new();
        for v in &views {
            if let View::Held { value, holds, .. } = v {
                if *holds >= 1 && value.starts_with(MARKER) && !seen.contains(value) {
                    seen.push(value.clone());
                }
            }
        }
        let mut out = if views.len() >= q {
            ReentrantStatus::NotHeld
        } else {
            ReentrantStatus::NoQuorum {
                voted: views.len(),
                needed: q,
            }
        };
        for value in seen {
            if let Read::Ours { holds, token, pttl } = self.summarise(&views, &value) {
                out = ReentrantStatus::Held {
                    owner: value.slice(MARKER.len()..),
                    token: FencingToken(token),
                    pttl: Duration::from_millis(u64::try_from(pttl).unwrap_or(0)),
                    holds,
                };
            }
        }
        let o = match out {
            ReentrantStatus::Held { .. } => Outcome::Granted,
            ReentrantStatus::NotHeld => Outcome::Busy,
            ReentrantStatus::NoQuorum { .. } => Outcome::NoQuorum,
        };
        self.metrics()
            .lock_op(Op::Status, o, start.elapsed().as_secs_f64());
        out
    }
}

/// `Ok(None)` for amnesia; `Err` for anything unusable.
fn parse_view(reply: Result<Value, MasterError>) -> Result<Option<View>, ()> {
    let Ok(Value::Array(items)) = reply else {
        return Err(());
    };
    match items.as_slice() {
        [Value::Int(3)] => Ok(None),
        [Value::Int(1)] => Ok(Some(View::Free)),
        [Value::Int(0), Value::Bulk(value), Value::Bulk(reg), Value::Int(pttl), Value::Int(h)] => {
            let token = std::str::from_utf8(reg)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(())?;
            Ok(Some(View::Held {
                value: value.clone(),
                token,
                pttl: *pttl,
                holds: u64::try_from(*h).unwrap_or(0),
            }))
        }
        _ => Err(()),
    }
}

fn parse_triple(reply: Result<Value, MasterError>) -> Option<(i64, u64, u64)> {
    let Ok(Value::Array(items)) = reply else {
        return None;
    };
    match items.as_slice() {
        [Value::Int(c), Value::Int(a), Value::Int(b)] => Some((
            *c,
            u64::try_from(*a).unwrap_or(0),
            u64::try_from(*b).unwrap_or(0),
        )),
        _ => None,
    }
}

fn parse_pair(reply: Result<Value, MasterError>) -> Option<(i64, u64)> {
    let Ok(Value::Array(items)) = reply else {
        return None;
    };
    match items.as_slice() {
        [Value::Int(c), Value::Int(a)] => Some((*c, u64::try_from(*a).unwrap_or(0))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_value_is_marked() {
        assert_eq!(&stored_value(b"me")[..], b"rlock:me");
    }

    #[test]
    fn malformed_master_replies_are_no_votes_not_panics() {
        assert!(parse_view(Ok(Value::Int(7))).is_err());
        assert!(parse_view(Ok(Value::Array(vec![
            Value::Int(0),
            Value::Bulk(Bytes::from_static(b"v")),
            Value::Bulk(Bytes::from_static(b"not a number")),
            Value::Int(5),
            Value::Int(1),
        ])))
        .is_err());
        assert_eq!(parse_triple(Ok(Value::Array(vec![Value::Int(0)]))), None);
        assert_eq!(parse_pair(Ok(Value::Nil)), None);
    }
}
