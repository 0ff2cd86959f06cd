//! The quorum machinery shared by read-write locks and semaphores:
//! kinds whose state on each master is a set of *holders*, each a member of
//! a sorted set scored by its expiry on that master's own clock, with its
//! fencing token in a hash beside it.
//!
//! The rules are the plain lock's (docs/design.md, *Lock kinds*), unchanged:
//! - a grant needs `q` masters to admit the same owner with the same proposed
//!   token, and is reported only while `ttl - elapsed - drift` is positive;
//! - the token comes from the user key's fence register, proposed and retried
//!   by the core's rounds ([`crate::lock::round`]) exactly as for a plain acquire,
//!   so tokens of every kind on one key are unique and rise in real-time
//!   order;
//! - a master whose metadata record is missing (amnesia) casts no vote;
//! - a failed or expired grant is released on every master, because a write
//!   that timed out may still land.
//!
//! What differs is only the per-master admission rule, which lives in the
//! acquire script of each kind (`rw_acquire.lua`, `sem_acquire.lua`); the
//! release, extend and status scripts are shared (`holders_*.lua`), and so
//! are their typed replies, decoded here. docs/design.md, *Read-write locks,
//! with writer preference* and *Semaphores*, gives each kind's argument.

mod model;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::StreamExt;
use rand::Rng;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::fence::FencingToken;
use crate::lock::fair::wait_fair;
use crate::lock::round::{
    self, code, decimal, AcquireOutcome, AcquireReply, DecodeError, Metered, Release, Vote,
};
use crate::lock::{Engine, ExtendOutcome, Grant, ReleaseOutcome};
use crate::master::{MasterError, Value};
use crate::metrics::{Op, Outcome};
use crate::resp::Reply;
use crate::response::{GrantShape, Unreported};
use crate::scripts::{Script, ScriptSet};

/// Rounds a holder kind may take beyond [`round::MAX_ROUNDS`]: one, for a
/// semaphore to move to a slot that is free on a quorum. Read-write locks
/// share the allowance (their rounds are the same code), so both kinds may
/// take four rounds, as they always have.
pub const SLOT_ROUNDS: usize = 1;

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
    /// The kind's acquire script.
    pub script: fn(&ScriptSet) -> &Script,
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

/// A semaphore in use with another permit count: the refusal of a holder
/// kind's acquire (a client error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    pub permits: u64,
}

/// The outcome of one acquire of a holder kind.
pub type KindAcquire = AcquireOutcome<Grant, Mismatch>;

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

/// One acquire of a holder kind, as the core's rounds drive it.
struct HolderAcquire<'a> {
    spec: &'a AcquireSpec<'a>,
    owner: &'a Bytes,
    ttl_ms: Bytes,
    /// The semaphore slot asked for this round.
    slot: Option<u64>,
    /// A permit count some master refused the request under (any round).
    mismatch: Option<u64>,
    /// What this round's masters reported free.
    slot_votes: SlotVotes,
}

impl round::Acquire for HolderAcquire<'_> {
    type Reply = Admission;

    fn script<'s>(&self, scripts: &'s ScriptSet) -> &'s Script {
        (self.spec.script)(scripts)
    }

    fn keys(&self) -> Arc<[Bytes]> {
        self.spec.keys.acquire.clone()
    }

    fn args(&mut self, token: u64, round: usize) -> Arc<[Bytes]> {
        self.slot_votes = SlotVotes::default();
        let mut args = round::acquire_args(self.owner, &self.ttl_ms, token, round);
        args.extend(self.spec.extra.iter().cloned());
        if let Some(s) = self.slot {
            args.push(Bytes::from(s.to_string()));
        }
        args.into()
    }

    fn decode(&self, reply: Value) -> Result<Admission, DecodeError> {
        Admission::decode(reply)
    }

    fn vote(&mut self, Admission { reply, free }: Admission, token: u64) -> Vote {
        if !matches!(reply, AcquireReply::Amnesia | AcquireReply::Mismatch(_)) {
            self.slot_votes.add(&free);
        }
        match reply {
            AcquireReply::Granted(t) if t == token => Vote::Granted,
            AcquireReply::Busy(reg) => Vote::Busy(Some(reg)),
            AcquireReply::Stale(reg) => Vote::Stale(reg),
            AcquireReply::Mismatch(permits) => {
                // A refusal like busy: this master will not admit anyone
                // under the requested count while its holders live.
                self.mismatch = Some(permits);
                Vote::Busy(None)
            }
            AcquireReply::Amnesia => Vote::Amnesia,
            AcquireReply::Granted(t) => {
                warn!(token = t, "unexpected holder acquire reply from master");
                Vote::None
            }
        }
    }

    fn release(&self) -> Option<Release> {
        Some(release_of(self.spec.keys, self.owner, false))
    }

    fn extra_rounds(&self) -> usize {
        SLOT_ROUNDS
    }

    fn next_round(&mut self, unanswered: usize, q: usize) -> bool {
        // A semaphore whose asked slot is taken on too many masters may have
        // another slot free on a quorum.
        if self.mismatch.is_some() {
            return false;
        }
        match self.slot_votes.best(unanswered, q) {
            Some(s) if self.slot.is_some() && self.slot != Some(s) => {
                debug!(slot = s, "semaphore slot taken; moving to a free one");
                self.slot = Some(s);
                true
            }
            _ => false,
        }
    }
}

/// `holders_release.lua` of `owner`; `clear_marker` also deletes a waiting
/// writer's intent marker when it is the owner's.
fn release_of(keys: &HolderKeys, owner: &Bytes, clear_marker: bool) -> Release {
    Release {
        script: |s| &s.holders_release,
        keys: keys.release.clone(),
        args: Arc::from(vec![
            owner.clone(),
            Bytes::from_static(if clear_marker { b"1" } else { b"0" }),
        ]),
    }
}

/// One acquire attempt of a holder kind (no waiting).
pub async fn acquire(
    engine: &Engine,
    spec: &AcquireSpec<'_>,
    owner: &Bytes,
    ttl: Duration,
) -> KindAcquire {
    let start = Instant::now();
    let mut kind = HolderAcquire {
        spec,
        owner,
        ttl_ms: Bytes::from(ttl.as_millis().to_string()),
        slot: spec.slots.map(|p| rand::rng().random_range(0..p.max(1))),
        mismatch: None,
        slot_votes: SlotVotes::default(),
    };
    let end = round::run(engine, &mut kind, ttl, start).await;
    let outcome = match (end, kind.mismatch) {
        (
            round::End::Lost {
                last: crate::lock::quorum::Decision::Busy,
                ..
            },
            Some(permits),
        ) => AcquireOutcome::Refused(Mismatch { permits }),
        (end, _) => end.outcome(engine.quorum()),
    };
    round::record(engine, spec.op, start, &outcome);
    outcome
}

/// [`acquire`], or with a non-zero `wait` [`acquire_wait`].
pub async fn acquire_or_wait(
    engine: &Engine,
    spec: &AcquireSpec<'_>,
    owner: &Bytes,
    ttl: Duration,
    wait: Option<Duration>,
) -> KindAcquire {
    match wait {
        Some(w) if !w.is_zero() => acquire_wait(engine, spec, owner, ttl, w).await,
        _ => acquire(engine, spec, owner, ttl).await,
    }
}

/// Acquire with `WAIT`: waiters on one key of this gateway take turns in
/// arrival order (the same FIFO as plain locks, see `lock::fair`); the head
/// retries until `wait` runs out, at once when a holder of the same kind
/// and key is released through this gateway, otherwise after a short random
/// pause. A grant leaves the queue at once, so readers and semaphore
/// holders queued behind each other still share. A waiting writer that
/// gives up deletes its intent marker.
pub async fn acquire_wait(
    engine: &Engine,
    spec: &AcquireSpec<'_>,
    owner: &Bytes,
    ttl: Duration,
    wait: Duration,
) -> KindAcquire {
    let outcome = wait_fair(
        engine,
        &spec.keys.signal,
        wait,
        || acquire(engine, spec, owner, ttl),
        |o| {
            matches!(
                o,
                AcquireOutcome::Granted(_) | AcquireOutcome::Refused(_) | AcquireOutcome::Exhausted
            )
        },
    )
    .await
    // The wait ran out before this waiter's turn came.
    .unwrap_or(AcquireOutcome::Busy);
    if spec.clears_marker && !matches!(outcome, AcquireOutcome::Granted(_)) {
        round::release(engine, Some(release_of(spec.keys, owner, true)));
    }
    outcome
}

/// Reports a holder grant to the client only if it is still valid now;
/// otherwise releases it. Called just before the reply is written.
pub fn finish(
    engine: &Engine,
    op: Op,
    grant: &Grant,
    keys: &HolderKeys,
    owner: &Bytes,
) -> Option<Duration> {
    round::finish(engine, op, grant, true, || {
        Some(release_of(keys, owner, false))
    })
}

/// A read-write lock or semaphore grant on its way to the client, shown as
/// `[owner, token, validity_ms]`.
pub struct HolderGrant {
    pub op: Op,
    pub grant: Grant,
    pub keys: HolderKeys,
    pub owner: Bytes,
}

impl Unreported for HolderGrant {
    fn report(self: Box<Self>, engine: &Engine) -> Reply {
        let left = finish(engine, self.op, &self.grant, &self.keys, &self.owner)
            .filter(|d| d.as_millis() > 0);
        GrantShape::Native.reply(left, &self.owner, &self.grant)
    }
}

/// Removes `owner` from the holders on every master; released when `q`
/// masters removed a live place.
pub async fn release(engine: &Engine, op: Op, keys: &HolderKeys, owner: &Bytes) -> ReleaseOutcome {
    let start = Instant::now();
    let r = release_of(keys, owner, false);
    let votes = round::yes_no(
        engine,
        (r.script)(engine.scripts()),
        r.keys,
        r.args,
        false,
        start,
        |_, reply| round::positive(reply),
    )
    .await;
    let best = i64::from(votes.0 > 0);
    round::release_outcome(
        engine,
        op,
        start,
        votes,
        best,
        std::slice::from_ref(&keys.signal),
    )
}

/// Gives a live holder a new expiry of `ttl` on every master; extended when
/// `q` masters accepted and the new validity is positive. The token does
/// not change.
pub async fn extend(
    engine: &Engine,
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
    let votes = round::yes_no(
        engine,
        &engine.scripts().holders_extend,
        keys.extend.clone(),
        args,
        true,
        start,
        |_, reply| round::positive(reply),
    )
    .await;
    round::extend_outcome(engine, op, start, ttl, votes)
}

/// A quorum read of the holders: a holder is reported when `q` masters list
/// the same owner with the same token. Waits for every voting master (each
/// bounded by the master timeout), since agreement is counted per holder.
pub async fn status(engine: &Engine, op: Op, keys: &HolderKeys) -> HoldersStatus {
    let start = Instant::now();
    let (_, mut futs) = engine.fan_out(
        &engine.scripts().holders_status,
        keys.status.clone(),
        Arc::from(Vec::new()),
        start + engine.timeout(),
        true,
    );
    let q = engine.quorum();
    let nsets = keys.status.len().saturating_sub(3);
    let mut answered = 0usize;
    let mut extras: Vec<(Bytes, usize)> = Vec::new();
    // Per set: (owner, token, smallest pttl, votes).
    let mut groups: Vec<Vec<(Bytes, u64, i64, usize)>> = vec![Vec::new(); nsets];
    while let Some((i, reply)) = futs.next().await {
        match decode_view(reply, nsets) {
            Some(HoldersReply::Amnesia) => engine.note_amnesia(i),
            None => {}
            Some(HoldersReply::Seen { extra, sets }) => {
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
    round::record(engine, op, start, &outcome);
    outcome
}

impl Metered for HoldersStatus {
    fn metric(&self) -> Option<Outcome> {
        Some(match self {
            HoldersStatus::Seen { sets, .. } if sets.iter().any(|s| !s.is_empty()) => {
                Outcome::Granted
            }
            HoldersStatus::Seen { .. } => Outcome::Busy,
            HoldersStatus::NoQuorum { .. } => Outcome::NoQuorum,
        })
    }
}

/// One master's answer to a holder kind's acquire script: `{code, value}`,
/// or a semaphore's `{code, value, free_slots}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub reply: AcquireReply,
    /// The slots no other live holder occupies on that master.
    pub free: Vec<u64>,
}

impl Admission {
    pub fn decode(v: Value) -> Result<Self, DecodeError> {
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
                Ok(Admission {
                    reply: AcquireReply::decode(&Value::Array(items))?,
                    free,
                })
            }
            other => Ok(Admission {
                reply: AcquireReply::decode(&other)?,
                free: Vec::new(),
            }),
        }
    }
}

/// One master's answer to `holders_status.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldersReply {
    Seen {
        extra: Bytes,
        /// Per holder set: (owner, token, pttl) of its live members.
        sets: Vec<Vec<(Bytes, u64, i64)>>,
    },
    Amnesia,
}

impl HoldersReply {
    /// Every code `holders_status.lua` returns.
    pub const CODES: &'static [i64] = &[code::HELD, code::AMNESIA];

    /// Decodes a status reply of `nsets` holder sets.
    pub fn decode(reply: &Value, nsets: usize) -> Result<Self, DecodeError> {
        const BAD: DecodeError = DecodeError::Shape("holders_status");
        let Value::Array(items) = reply else {
            return Err(BAD);
        };
        match items.as_slice() {
            [Value::Int(code::AMNESIA)] => Ok(HoldersReply::Amnesia),
            [Value::Int(code::HELD), Value::Bulk(extra), rest @ ..] if rest.len() == nsets => {
                let mut sets = Vec::with_capacity(nsets);
                for set in rest {
                    let flat: &[Value] = match set {
                        Value::Array(v) => v,
                        // An empty Lua table may come back as an empty array
                        // or a null one, depending on the master's protocol.
                        Value::Nil => &[],
                        _ => return Err(BAD),
                    };
                    let mut seen = Vec::with_capacity(flat.len() / 3);
                    for chunk in flat.chunks(3) {
                        match chunk {
                            [Value::Bulk(owner), Value::Bulk(token), Value::Int(pttl)] => {
                                seen.push((owner.clone(), decimal(token)?, *pttl));
                            }
                            _ => return Err(BAD),
                        }
                    }
                    sets.push(seen);
                }
                Ok(HoldersReply::Seen {
                    extra: extra.clone(),
                    sets,
                })
            }
            _ => Err(BAD),
        }
    }
}

/// A status reply, or `None` for anything unusable (no vote).
fn decode_view(reply: Result<Value, MasterError>, nsets: usize) -> Option<HoldersReply> {
    HoldersReply::decode(&reply.ok()?, nsets).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_status_replies_are_no_votes() {
        let bad = Ok(Value::Array(vec![
            Value::Int(0),
            Value::Bulk(Bytes::new()),
            Value::Array(vec![Value::Bulk(Bytes::from_static(b"o"))]),
        ]));
        assert!(decode_view(bad, 1).is_none());
        let wrong_sets = Ok(Value::Array(vec![Value::Int(0), Value::Bulk(Bytes::new())]));
        assert!(decode_view(wrong_sets, 1).is_none());
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
            decode_view(ok, 1),
            Some(HoldersReply::Seen { ref sets, .. }) if sets[0] == vec![(Bytes::from_static(b"o"), 17, 900)]
        ));
    }

    #[test]
    fn admissions_decode_with_and_without_free_slots() {
        let sem = Value::Array(vec![
            Value::Int(code::BUSY),
            Value::Int(40),
            Value::Array(vec![
                Value::Int(2),
                Value::Int(-1),
                Value::Bulk(Bytes::new()),
            ]),
        ]);
        assert_eq!(
            Admission::decode(sem),
            Ok(Admission {
                reply: AcquireReply::Busy(40),
                free: vec![2],
            })
        );
        let rw = Value::Array(vec![Value::Int(code::GRANTED), Value::Int(41)]);
        assert_eq!(
            Admission::decode(rw),
            Ok(Admission {
                reply: AcquireReply::Granted(41),
                free: Vec::new(),
            })
        );
        let mismatch = Value::Array(vec![Value::Int(code::MISMATCH), Value::Int(3)]);
        assert_eq!(
            Admission::decode(mismatch).map(|a| a.reply),
            Ok(AcquireReply::Mismatch(3))
        );
        assert!(Admission::decode(Value::Nil).is_err());
        assert!(Admission::decode(Value::Array(vec![
            Value::Bulk(Bytes::new()),
            Value::Int(0),
            Value::Array(Vec::new()),
        ]))
        .is_err());
    }
}
