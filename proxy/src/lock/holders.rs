//! The quorum machinery shared by read-write locks and semaphores:
//! kinds whose state on each master is a set of *holders*, each a member of
//! a sorted set scored by its expiry on that master's own clock, with its
//! fencing token in a hash beside it.
//!
//! The rules are the plain lock's (docs/design.md, *Lock kinds*), unchanged:
//! - a grant needs `q` masters to admit the same owner with the same proposed
//!   token, and is reported only while `ttl - elapsed - drift` is positive;
//! - the token comes from the user key's fence register, proposed and retried
//!   exactly as in [`Engine::acquire`], so tokens of every kind on one key are
//!   unique and rise in real-time order;
//! - a master whose metadata record is missing (amnesia) casts no vote;
//! - a failed or expired grant is released on every master, because a write
//!   that timed out may still land.
//!
//! What differs is only the per-master admission rule, which lives in the
//! acquire script of each kind (`rw_acquire.lua`, `sem_acquire.lua`); the
//! release, extend and status scripts are shared (`holders_*.lua`).

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::stream::StreamExt;
use rand::Rng;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::engine::{count_yes_no, parse_code_pair, Engine};
use super::keys::hash_tag;
use super::quorum::{Decision, Tally};
use super::validity::{remaining, valid_until};
use super::{ExtendOutcome, Grant, ReleaseOutcome};
use crate::fence::FencingToken;
use crate::master::{MasterError, Value};
use crate::metrics::{Op, Outcome};
use crate::scripts::Script;

/// Rounds one acquire may take: as for plain locks (the first plus two
/// retries with a higher token), plus one for a semaphore to move to a slot
/// that is free on a quorum.
const MAX_ROUNDS: usize = 4;

/// Reply codes of the kinds' acquire scripts (the first four are
/// `acquire.lua`'s).
const ACQ_GRANTED: i64 = 0;
const ACQ_BUSY: i64 = 1;
const ACQ_STALE: i64 = 2;
const ACQ_AMNESIA: i64 = 3;
const ACQ_MISMATCH: i64 = 4;

/// The name of one of a kind's structures on the masters:
/// `{prefix}{kind}:{tag}:{part}`. The tag is the user key's hash tag, or the
/// whole key, exactly as for its fence register ([`super::keys::fence_key`]),
/// so every key a script touches shares one Redis Cluster slot. The `kind`
/// namespace keeps these apart from plain lock keys of the same name.
pub fn kind_key(prefix: &str, kind: &str, key: &[u8], part: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(prefix.len() + kind.len() + key.len() + part.len() + 8);
    out.put_slice(prefix.as_bytes());
    out.put_slice(kind.as_bytes());
    out.put_u8(b':');
    match hash_tag(key) {
        Some(tag) => {
            out.put_u8(b'{');
            out.put_slice(tag);
            out.put_slice(b"}:");
            out.put_slice(key);
        }
        None => {
            out.put_u8(b'{');
            out.put_slice(key);
            out.put_u8(b'}');
        }
    }
    out.put_u8(b':');
    out.put_slice(part.as_bytes());
    out.freeze()
}

/// The master keys of one read-write lock or semaphore, per script.
#[derive(Debug, Clone)]
pub struct HolderKeys {
    /// KEYS of the kind's acquire script.
    pub acquire: Arc<[Bytes]>,
    /// KEYS of `holders_release.lua`: tokens hash, intent marker, sets.
    pub release: Arc<[Bytes]>,
    /// KEYS of `holders_extend.lua`: companions, then sets.
    pub extend: Arc<[Bytes]>,
    /// How many of `extend` are companions (kept alive with the holders).
    pub companions: usize,
    /// KEYS of `holders_status.lua`: record, tokens hash, extra, sets.
    pub status: Arc<[Bytes]>,
    /// What local waiters are woken on when a holder is released here.
    pub signal: Bytes,
}

/// One acquire request of a holder kind.
pub struct AcquireSpec<'a> {
    /// The metrics label of this acquire.
    pub op: Op,
    pub script: &'a Script,
    pub keys: &'a HolderKeys,
    /// ARGV after owner, ttl, token and the retry flag.
    pub extra: Vec<Bytes>,
    /// A waiting writer: giving up deletes its intent marker.
    pub clears_marker: bool,
    /// A semaphore's permit count: each round then asks for one slot (the
    /// last ARGV), and a busy round moves to a slot free on a quorum.
    pub slots: Option<u64>,
}

/// What one round learnt about free semaphore slots: per slot, how many
/// masters reported it free.
#[derive(Debug, Clone, Default)]
pub(super) struct SlotVotes {
    free: Vec<(u64, usize)>,
}

impl SlotVotes {
    pub(super) fn add(&mut self, slots: &[u64]) {
        for &s in slots {
            match self.free.iter_mut().find(|f| f.0 == s) {
                Some(f) => f.1 += 1,
                None => self.free.push((s, 1)),
            }
        }
    }

    /// The slot most masters reported free, if it could still reach `q`
    /// with the masters that did not answer.
    pub(super) fn best(&self, unanswered: usize, q: usize) -> Option<u64> {
        self.free
            .iter()
            .max_by_key(|f| (f.1, std::cmp::Reverse(f.0)))
            .filter(|f| f.1 + unanswered >= q)
            .map(|f| f.0)
    }
}

/// The outcome of one acquire of a holder kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindAcquire {
    Granted(Grant),
    /// No room (semaphore full, lock held incompatibly) on enough masters.
    Busy,
    NoQuorum {
        voted: usize,
        needed: usize,
    },
    /// A quorum agreed, but the validity ran out first; released again.
    Expired,
    /// A semaphore is in use with another permit count (a client error).
    Mismatch {
        permits: u64,
    },
}

/// One live holder, as a quorum of masters sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub owner: Bytes,
    pub token: FencingToken,
    /// The smallest remaining time among the agreeing masters.
    pub pttl: Duration,
}

/// The outcome of a quorum read of a holder kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldersStatus {
    Seen {
        /// The extra value (permit count, intent marker) a quorum agrees on.
        extra: Option<Bytes>,
        /// Per holder set, the holders a quorum agrees on (same owner and
        /// token), ordered by token.
        sets: Vec<Vec<Holder>>,
    },
    NoQuorum {
        voted: usize,
        needed: usize,
    },
}

// === impl Engine ===

impl Engine {
    /// One acquire attempt of a holder kind (no waiting).
    pub async fn holders_acquire(
        &self,
        spec: &AcquireSpec<'_>,
        owner: &Bytes,
        ttl: Duration,
    ) -> KindAcquire {
        let start = Instant::now();
        let outcome = self.holders_acquire_inner(spec, owner, ttl, start).await;
        let elapsed = start.elapsed().as_secs_f64();
        let o = match &outcome {
            KindAcquire::Granted(_) => None, // recorded when the reply is written
            KindAcquire::Busy => Some(Outcome::Busy),
            KindAcquire::NoQuorum { .. } => Some(Outcome::NoQuorum),
            KindAcquire::Expired => Some(Outcome::ExpiredInFlight),
            KindAcquire::Mismatch { .. } => Some(Outcome::Rejected),
        };
        if let Some(o) = o {
            self.metrics().lock_op(spec.op, o, elapsed);
        }
        outcome
    }

    async fn holders_acquire_inner(
        &self,
        spec: &AcquireSpec<'_>,
        owner: &Bytes,
        ttl: Duration,
        start: Instant,
    ) -> KindAcquire {
        let cfg = self.config();
        let until = valid_until(start, ttl, cfg.drift_factor, cfg.drift_constant);
        let ttl_ms = Bytes::from(ttl.as_millis().to_string());
        let mut floor = 0u64;
        let mut last = Decision::NoQuorum;
        let mut voted = 0;
        let mut mismatch = None;
        let mut slot = spec.slots.map(|p| rand::rng().random_range(0..p.max(1)));
        for round in 0..MAX_ROUNDS {
            let now = Instant::now();
            if remaining(until, now).is_none() {
                last = Decision::NoQuorum;
                break;
            }
            let token = match self.proposer().propose_above(floor) {
                Ok(t) => t,
                Err(e) => {
                    warn!(cause = %e, "cannot propose a fencing token");
                    break;
                }
            };
            let mut args = vec![
                owner.clone(),
                ttl_ms.clone(),
                Bytes::from(token.0.to_string()),
                Bytes::from_static(if round == 0 { b"0" } else { b"1" }),
            ];
            args.extend(spec.extra.iter().cloned());
            if let Some(s) = slot {
                args.push(Bytes::from(s.to_string()));
            }
            let deadline = self.master_deadline(now, until);
            let (asked, mut futs) = self.fan_out_script(
                spec.script,
                spec.keys.acquire.clone(),
                args.into(),
                deadline,
                true,
            );
            let mut tally = Tally::default();
            let mut slot_votes = SlotVotes::default();
            let mut decision = tally.decide(asked, self.quorum());
            while decision == Decision::Pending {
                let Some((i, reply)) = futs.next().await else {
                    break;
                };
                let vote = HolderVote {
                    token,
                    floor: &mut floor,
                    mismatch: &mut mismatch,
                    slots: &mut slot_votes,
                };
                self.count_holder_vote(i, reply, &mut tally, vote);
                decision = tally.decide(asked, self.quorum());
            }
            let answered = tally.granted + tally.busy + tally.stale + tally.no_vote;
            Self::drain(futs);
            voted = tally.granted + tally.busy + tally.stale;
            last = decision;
            match decision {
                Decision::Granted => {
                    if remaining(until, Instant::now()).is_none() {
                        self.holders_release_in_background(spec.keys, owner, false);
                        return KindAcquire::Expired;
                    }
                    return KindAcquire::Granted(Grant {
                        token,
                        valid_until: until,
                        start,
                    });
                }
                Decision::RetryHigher => {
                    self.metrics().fence_retries.inc();
                    debug!(
                        round,
                        floor, "fencing token proposal was stale; retrying higher"
                    );
                    continue;
                }
                Decision::Busy if mismatch.is_none() && round + 1 < MAX_ROUNDS => {
                    // A semaphore whose asked slot is taken on too many
                    // masters may have another slot free on a quorum.
                    let unanswered = asked.saturating_sub(answered);
                    match slot_votes.best(unanswered, self.quorum()) {
                        Some(s) if slot.is_some() && slot != Some(s) => {
                            debug!(
                                round,
                                slot = s,
                                "semaphore slot taken; moving to a free one"
                            );
                            slot = Some(s);
                            continue;
                        }
                        _ => break,
                    }
                }
                Decision::Busy | Decision::NoQuorum | Decision::Pending => break,
            }
        }
        // Lost: admissions that landed (or may still land) must not linger.
        self.holders_release_in_background(spec.keys, owner, false);
        match (last, mismatch) {
            (Decision::Busy, Some(permits)) => KindAcquire::Mismatch { permits },
            (Decision::Busy | Decision::RetryHigher, _) => KindAcquire::Busy,
            _ => KindAcquire::NoQuorum {
                voted,
                needed: self.quorum(),
            },
        }
    }

    fn count_holder_vote(
        &self,
        i: usize,
        reply: Result<Value, MasterError>,
        tally: &mut Tally,
        vote: HolderVote<'_>,
    ) {
        let HolderVote {
            token,
            floor,
            mismatch,
            slots,
        } = vote;
        let mm = self.master_metrics(i);
        let parsed = reply
            .map_err(|e| e.to_string())
            .and_then(parse_holder_reply);
        if let Ok((code, _, free)) = &parsed {
            if *code != ACQ_AMNESIA && *code != ACQ_MISMATCH {
                slots.add(free);
            }
        }
        match parsed.map(|(c, v, _)| (c, v)) {
            Ok((ACQ_GRANTED, t)) if t == token.0 => {
                tally.granted += 1;
                if let Some(mm) = mm {
                    mm.votes_given.inc();
                }
            }
            Ok((ACQ_BUSY, reg)) => {
                tally.busy += 1;
                self.proposer().observe(reg);
                if let Some(mm) = mm {
                    mm.votes_refused.inc();
                }
            }
            Ok((ACQ_STALE, reg)) => {
                tally.stale += 1;
                *floor = (*floor).max(reg);
                self.proposer().observe(reg);
                if let Some(mm) = mm {
                    mm.votes_refused.inc();
                }
            }
            Ok((ACQ_MISMATCH, permits)) => {
                // A refusal like busy: this master will not admit anyone
                // under the requested count while its holders live.
                tally.busy += 1;
                *mismatch = Some(permits);
                if let Some(mm) = mm {
                    mm.votes_refused.inc();
                }
            }
            Ok((ACQ_AMNESIA, _)) => {
                tally.no_vote += 1;
                self.note_amnesia(i);
            }
            Ok((code, v)) => {
                tally.no_vote += 1;
                warn!(
                    code,
                    value = v,
                    "unexpected holder acquire reply from master"
                );
            }
            Err(e) => {
                tally.no_vote += 1;
                debug!(master = i, cause = %e, "no vote from master");
            }
        }
    }

    /// Acquire with `WAIT`: waiters on one key of this gateway take turns
    /// in arrival order (the same FIFO as plain locks, see `lock::fair`);
    /// the head retries until `wait` runs out, at once when a holder of the
    /// same kind and key is released through this gateway, otherwise after
    /// a short random pause. A grant leaves the queue at once, so readers
    /// and semaphore holders queued behind each other still share. A
    /// waiting writer that gives up deletes its intent marker.
    pub async fn holders_acquire_wait(
        &self,
        spec: &AcquireSpec<'_>,
        owner: &Bytes,
        ttl: Duration,
        wait: Duration,
    ) -> KindAcquire {
        let outcome = self
            .wait_fair(
                &spec.keys.signal,
                wait,
                || self.holders_acquire(spec, owner, ttl),
                |o| matches!(o, KindAcquire::Granted(_) | KindAcquire::Mismatch { .. }),
            )
            .await
            // The wait ran out before this waiter's turn came.
            .unwrap_or(KindAcquire::Busy);
        if spec.clears_marker && !matches!(outcome, KindAcquire::Granted(_)) {
            self.holders_release_in_background(spec.keys, owner, true);
        }
        outcome
    }

    /// Reports a holder grant to the client only if it is still valid now;
    /// otherwise releases it. Called just before the reply is written.
    pub fn finish_holder_grant(
        &self,
        op: Op,
        grant: &Grant,
        keys: &HolderKeys,
        owner: &Bytes,
    ) -> Option<Duration> {
        let now = Instant::now();
        let elapsed = now.duration_since(grant.start).as_secs_f64();
        match remaining(grant.valid_until, now) {
            Some(left) => {
                self.metrics().lock_op(op, Outcome::Granted, elapsed);
                self.metrics().grant_validity.observe(left.as_secs_f64());
                Some(left)
            }
            None => {
                self.metrics()
                    .lock_op(op, Outcome::ExpiredInFlight, elapsed);
                self.holders_release_in_background(keys, owner, false);
                None
            }
        }
    }

    fn holders_release_in_background(&self, keys: &HolderKeys, owner: &Bytes, clear_marker: bool) {
        let args: Arc<[Bytes]> = Arc::from(vec![
            owner.clone(),
            Bytes::from_static(if clear_marker { b"1" } else { b"0" }),
        ]);
        let deadline = Instant::now() + self.timeout();
        let script = &self.scripts().holders_release;
        // No EVAL fallback, as for plain releases: a re-sent release could
        // overtake a later admission of the same owner.
        let (_, futs) = self.fan_out_script(script, keys.release.clone(), args, deadline, false);
        Self::drain(futs);
    }

    /// Removes `owner` from the holders on every master; released when `q`
    /// masters removed a live place.
    pub async fn holders_release(
        &self,
        op: Op,
        keys: &HolderKeys,
        owner: &Bytes,
    ) -> ReleaseOutcome {
        let start = Instant::now();
        let args: Arc<[Bytes]> = Arc::from(vec![owner.clone(), Bytes::from_static(b"0")]);
        let script = &self.scripts().holders_release;
        let (asked, mut futs) = self.fan_out_script(
            script,
            keys.release.clone(),
            args,
            start + self.timeout(),
            false,
        );
        let (yes, no) = count_yes_no(&mut futs, asked, self.quorum()).await;
        Self::drain(futs);
        let q = self.quorum();
        let outcome = if yes >= q {
            self.signals().released(std::slice::from_ref(&keys.signal));
            ReleaseOutcome::Released
        } else if yes + no >= q {
            ReleaseOutcome::NotHeld {
                best: i64::from(yes > 0),
            }
        } else {
            ReleaseOutcome::NoQuorum {
                voted: yes + no,
                needed: q,
            }
        };
        let o = match outcome {
            ReleaseOutcome::Released => Outcome::Granted,
            ReleaseOutcome::NotHeld { .. } => Outcome::Busy,
            ReleaseOutcome::NoQuorum { .. } => Outcome::NoQuorum,
        };
        self.metrics().lock_op(op, o, start.elapsed().as_secs_f64());
        outcome
    }

    /// Gives a live holder a new expiry of `ttl` on every master; extended
    /// when `q` masters accepted and the new validity is positive. The token
    /// does not change.
    pub async fn holders_extend(
        &self,
        op: Op,
        keys: &HolderKeys,
        owner: &Bytes,
        ttl: Duration,
    ) -> ExtendOutcome {
        let start = Instant::now();
        let args: Arc<[Bytes]> = Arc::from(vec![
            owner.clone(),
            Bytes::from(ttl.as_millis().to_string()),
            Bytes::from(keys.companions.to_string()),
        ]);
        let script = &self.scripts().holders_extend;
        let (asked, mut futs) = self.fan_out_script(
            script,
            keys.extend.clone(),
            args,
            start + self.timeout(),
            true,
        );
        let (yes, no) = count_yes_no(&mut futs, asked, self.quorum()).await;
        Self::drain(futs);
        self.extend_outcome(op, start, ttl, yes, no)
    }

    /// A quorum read of the holders: a holder is reported when `q` masters
    /// list the same owner with the same token. Waits for every voting
    /// master (each bounded by the master timeout), since agreement is
    /// counted per holder.
    pub async fn holders_status(&self, op: Op, keys: &HolderKeys) -> HoldersStatus {
        let start = Instant::now();
        let script = &self.scripts().holders_status;
        let (_, mut futs) = self.fan_out_script(
            script,
            keys.status.clone(),
            Arc::from(Vec::new()),
            start + self.timeout(),
            true,
        );
        let q = self.quorum();
        let nsets = keys.status.len().saturating_sub(3);
        let mut answered = 0usize;
        let mut extras: Vec<(Bytes, usize)> = Vec::new();
        // Per set: (owner, token, smallest pttl, votes).
        let mut groups: Vec<Vec<(Bytes, u64, i64, usize)>> = vec![Vec::new(); nsets];
        while let Some((i, reply)) = futs.next().await {
            match parse_holders_view(reply, nsets) {
                Some(HoldersView::Amnesia) => self.note_amnesia(i),
                None => {}
                Some(HoldersView::Seen { extra, sets }) => {
                    answered += 1;
                    if !extra.is_empty() {
                        match extras.iter_mut().find(|e| e.0 == extra) {
                            Some(e) => e.1 += 1,
                            None => extras.push((extra, 1)),
                        }
                    }
                    for (set, seen) in groups.iter_mut().zip(sets) {
                        for (owner, token, pttl) in seen {
                            match set.iter_mut().find(|g| g.0 == owner && g.1 == token) {
                                Some(g) => {
                                    g.2 = g.2.min(pttl);
                                    g.3 += 1;
                                }
                                None => set.push((owner, token, pttl, 1)),
                            }
                        }
                    }
                }
            }
        }
        let outcome = if answered < q {
            HoldersStatus::NoQuorum {
                voted: answered,
                needed: q,
            }
        } else {
            let sets = groups
                .into_iter()
                .map(|set| {
                    let mut held: Vec<Holder> = set
                        .into_iter()
                        .filter(|g| g.3 >= q)
                        .map(|g| Holder {
                            owner: g.0,
                            token: FencingToken(g.1),
                            pttl: Duration::from_millis(u64::try_from(g.2).unwrap_or(0)),
                        })
                        .collect();
                    held.sort_by_key(|h| h.token);
                    held
                })
                .collect();
            HoldersStatus::Seen {
                extra: extras.into_iter().find(|e| e.1 >= q).map(|e| e.0),
                sets,
            }
        };
        let o = match &outcome {
            HoldersStatus::Seen { sets, .. } if sets.iter().any(|s| !s.is_empty()) => {
                Outcome::Granted
            }
            HoldersStatus::Seen { .. } => Outcome::Busy,
            HoldersStatus::NoQuorum { .. } => Outcome::NoQuorum,
        };
        self.metrics().lock_op(op, o, start.elapsed().as_secs_f64());
        outcome
    }
}

/// Where one acquire vote is tallied.
struct HolderVote<'a> {
    token: FencingToken,
    floor: &'a mut u64,
    mismatch: &'a mut Option<u64>,
    slots: &'a mut SlotVotes,
}

/// Parses `{code, value}` or a semaphore's `{code, value, free_slots}`.
fn parse_holder_reply(v: Value) -> Result<(i64, u64, Vec<u64>), String> {
    match v {
        Value::Array(mut items) if items.len() == 3 => {
            let free = match items.pop() {
                Some(Value::Array(slots)) => slots
                    .iter()
                    .filter_map(|s| match s {
                        Value::Int(n) => u64::try_from(*n).ok(),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let (code, value) = parse_code_pair(Value::Array(items))?;
            Ok((code, value, free))
        }
        other => parse_code_pair(other).map(|(c, v)| (c, v, Vec::new())),
    }
}

/// One master's answer to `holders_status.lua`.
enum HoldersView {
    Seen {
        extra: Bytes,
        sets: Vec<Vec<(Bytes, u64, i64)>>,
    },
    Amnesia,
}

/// Parses a status reply; `None` for anything malformed (no vote).
fn parse_holders_view(reply: Result<Value, MasterError>, nsets: usize) -> Option<HoldersView> {
    let Ok(Value::Array(items)) = reply else {
        return None;
    };
    match items.as_slice() {
        [Value::Int(3)] => Some(HoldersView::Amnesia),
        [Value::Int(0), Value::Bulk(extra), rest @ ..] if rest.len() == nsets => {
            let mut sets = Vec::with_capacity(nsets);
            for set in rest {
                let flat: &[Value] = match set {
                    Value::Array(v) => v,
                    // An empty Lua table may come back as an empty array or
                    // a null one, depending on the master's protocol.
                    Value::Nil => &[],
                    _ => return None,
                };
                let mut seen = Vec::with_capacity(flat.len() / 3);
                for chunk in flat.chunks(3) {
                    match chunk {
                        [Value::Bulk(owner), Value::Bulk(token), Value::Int(pttl)] => {
                            let token = std::str::from_utf8(token).ok()?.parse::<u64>().ok()?;
                            seen.push((owner.clone(), token, *pttl));
                        }
                        _ => return None,
                    }
                }
                sets.push(seen);
            }
            Some(HoldersView::Seen {
                extra: extra.clone(),
                sets,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_keys_share_the_fence_registers_slot() {
        let k = kind_key("lg:", "rw", b"orders", "r");
        assert_eq!(&k[..], b"lg:rw:{orders}:r");
        assert_eq!(
            hash_tag(&k),
            hash_tag(&super::super::keys::fence_key("lg:", b"orders"))
        );
        let t = kind_key("lg:", "sem", b"job:{42}", "h");
        assert_eq!(&t[..], b"lg:sem:{42}:job:{42}:h");
    }

    #[test]
    fn kind_keys_never_collide_with_plain_lock_keys() {
        // A plain lock key is the user key itself; a kind key always starts
        // with the prefix and the kind's namespace.
        let k = kind_key("", "rw", b"x", "w");
        assert_ne!(&k[..], b"x");
        assert_ne!(
            kind_key("p:", "rw", b"x", "w"),
            kind_key("p:", "sem", b"x", "w")
        );
    }

    #[test]
    fn malformed_status_replies_are_no_votes() {
        let bad = Ok(Value::Array(vec![
            Value::Int(0),
            Value::Bulk(Bytes::new()),
            Value::Array(vec![Value::Bulk(Bytes::from_static(b"o"))]),
        ]));
        assert!(parse_holders_view(bad, 1).is_none());
        let wrong_sets = Ok(Value::Array(vec![Value::Int(0), Value::Bulk(Bytes::new())]));
        assert!(parse_holders_view(wrong_sets, 1).is_none());
        let ok = Ok(Value::Array(vec![
            Value::Int(0),
            Value::Bulk(Bytes::from_static(b"3")),
            Value::Array(vec![
                Value::Bulk(Bytes::from_static(b"o")),
                Value::Bulk(Bytes::from_static(b"17")),
                Value::Int(900),
            ]),
        ]));
        assert!(matches!(
            parse_holders_view(ok, 1),
            Some(HoldersView::Seen { ref sets, .. }) if sets[0] == vec![(Bytes::from_static(b"o"), 17, 900)]
        ));
    }
}
