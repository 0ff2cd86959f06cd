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
//! `lock::model_reentrant` property-tests these rules against lost requests
//! and replies and interleaved owners. docs/design.md, *Reentrant locks*,
//! gives the argument; the write rounds are the core's ([`crate::lock::round`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use tokio::time::Instant;
use tracing::debug;

use crate::fence::FencingToken;
use crate::lock::fair::wait_fair;
use crate::lock::keys::{fence_key, holds_key, lock_key};
use crate::lock::quorum::Decision;
use crate::lock::round::{
    self, code, decimal, AcquireOutcome, AcquireReply, DecodeError, Metered, Release, Vote, YesNo,
};
use crate::lock::validity::{remaining, valid_until};
use crate::lock::{Engine, ExtendOutcome, Grant};
use crate::master::Value;
use crate::metrics::{Op, Outcome};
use crate::scripts::{Script, ScriptSet};

/// What K holds on the masters when a reentrant lock owns it.
pub const MARKER: &[u8] = b"rlock:";

/// Read-and-write attempts one operation makes when a concurrent operation
/// of the same owner moved the count under it.
const MAX_READS: usize = 3;

/// The value stored in K for a reentrant `owner`.
pub fn stored_value(owner: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(MARKER.len() + owner.len());
    b.put_slice(MARKER);
    b.put_slice(owner);
    b.freeze()
}

/// A reentrant grant: the grant and the hold count now stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReentrantGrant {
    pub grant: Grant,
    pub holds: u64,
}

/// The outcome of `RLOCK.ACQUIRE`: held by this owner on a quorum, with
/// `holds` holds now; busy when another owner (or a plain lock) holds it.
pub type ReentrantAcquire = AcquireOutcome<ReentrantGrant>;

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

/// One master's answer to `rstatus.lua`: its view of K.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusReply {
    Free,
    Held {
        value: Bytes,
        token: u64,
        pttl: i64,
        holds: u64,
    },
    Amnesia,
}

impl StatusReply {
    /// Every code `rstatus.lua` returns.
    pub const CODES: &'static [i64] = &[code::HELD, code::FREE, code::AMNESIA];

    pub fn decode(reply: &Value) -> Result<Self, DecodeError> {
        const BAD: DecodeError = DecodeError::Shape("rstatus");
        let Value::Array(items) = reply else {
            return Err(BAD);
        };
        match items.as_slice() {
            [Value::Int(code::AMNESIA)] => Ok(StatusReply::Amnesia),
            [Value::Int(code::FREE)] => Ok(StatusReply::Free),
            [Value::Int(code::HELD), Value::Bulk(value), Value::Bulk(reg), Value::Int(pttl), Value::Int(h)] => {
                Ok(StatusReply::Held {
                    value: value.clone(),
                    token: decimal(reg)?,
                    pttl: *pttl,
                    holds: u64::try_from(*h).unwrap_or(0),
                })
            }
            _ => Err(BAD),
        }
    }
}

/// One master's answer to `racquire.lua`, `{code, a, b}`: the acquire
/// reply (a reentry's grant carries the register, its refusal
/// [`AcquireReply::Mismatch`] the count that moved) and the count stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquireTriple {
    pub reply: AcquireReply,
    pub holds: u64,
}

impl AcquireTriple {
    pub fn decode(reply: &Value) -> Result<Self, DecodeError> {
        match reply {
            Value::Array(items) => match items.as_slice() {
                [Value::Int(c), Value::Int(a), Value::Int(b)] => Ok(AcquireTriple {
                    reply: AcquireReply::from_parts(*c, *a)?,
                    holds: u64::try_from(*b).unwrap_or(0),
                }),
                _ => Err(DecodeError::Shape("racquire")),
            },
            _ => Err(DecodeError::Shape("racquire")),
        }
    }
}

/// One master's answer to `rrelease.lua`, `{code, value}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReply {
    /// One hold dropped; this many remain there.
    Dropped(u64),
    NotHeld,
    Amnesia,
    /// The count there is above the expected one: read again.
    Moved(u64),
}

impl ReleaseReply {
    /// Every code `rrelease.lua` returns.
    pub const CODES: &'static [i64] =
        &[code::DROPPED, code::NOT_HELD, code::AMNESIA, code::MISMATCH];

    pub fn decode(reply: &Value) -> Result<Self, DecodeError> {
        let Value::Array(items) = reply else {
            return Err(DecodeError::Shape("rrelease"));
        };
        match items.as_slice() {
            [Value::Int(c), Value::Int(a)] => {
                let a = u64::try_from(*a).unwrap_or(0);
                match *c {
                    code::DROPPED => Ok(ReleaseReply::Dropped(a)),
                    code::NOT_HELD => Ok(ReleaseReply::NotHeld),
                    code::AMNESIA => Ok(ReleaseReply::Amnesia),
                    code::MISMATCH => Ok(ReleaseReply::Moved(a)),
                    other => Err(DecodeError::Code(other)),
                }
            }
            _ => Err(DecodeError::Shape("rrelease")),
        }
    }
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

/// KEYS of `racquire.lua` and `rstatus.lua`.
fn rkeys(engine: &Engine, key: &Bytes) -> Arc<[Bytes]> {
    let p = &engine.config().key_prefix;
    Arc::from(vec![
        engine.meta_key().clone(),
        lock_key(p, key),
        fence_key(p, key),
        holds_key(p, key),
    ])
}

/// KEYS of `rrelease.lua`.
fn release_keys(engine: &Engine, key: &Bytes) -> Arc<[Bytes]> {
    let p = &engine.config().key_prefix;
    Arc::from(vec![
        engine.meta_key().clone(),
        lock_key(p, key),
        holds_key(p, key),
    ])
}

/// `rrelease.lua` of `value` expecting `want` holds.
fn release_of(engine: &Engine, key: &Bytes, value: &Bytes, want: u64) -> Release {
    Release {
        script: |s| &s.rrelease,
        keys: release_keys(engine, key),
        args: Arc::from(vec![value.clone(), Bytes::from(want.to_string())]),
    }
}

/// Reads K on every voting master (until each answered or the master
/// deadline).
async fn read(engine: &Engine, key: &Bytes) -> Vec<StatusReply> {
    let start = Instant::now();
    let (_, mut futs) = engine.fan_out(
        &engine.scripts().rstatus,
        rkeys(engine, key),
        Arc::from(Vec::new()),
        start + engine.timeout(),
        true,
    );
    let mut views = Vec::new();
    while let Some((i, reply)) = futs.next().await {
        match reply
            .map_err(|_| ())
            .and_then(|v| StatusReply::decode(&v).map_err(|_| ()))
        {
            Ok(StatusReply::Amnesia) => engine.note_amnesia(i),
            Ok(v) => views.push(v),
            Err(()) => debug!(master = i, "no reentrant status from master"),
        }
    }
    views
}

/// Summarises `views` for the stored value `value`.
fn summarise(q: usize, views: &[StatusReply], value: &[u8]) -> Read {
    let mut ours = 0usize;
    let (mut holds, mut token, mut pttl) = (0u64, 0u64, i64::MAX);
    let mut free = 0usize;
    for v in views {
        match v {
            StatusReply::Free => free += 1,
            StatusReply::Held {
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
            StatusReply::Held { .. } | StatusReply::Amnesia => {}
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

/// One conditional write, from `want` holds to `want + 1`, as the core's
/// rounds drive it. A fresh grant (`want == 0`) proposes tokens and retries
/// higher like a plain acquire; a lost fresh grant is released again. A
/// lost reentry is left: a count too high only delays the release, and
/// lowering it could undo a concurrent hold of the same owner.
struct Write<'a> {
    engine: &'a Engine,
    key: &'a Bytes,
    value: &'a Bytes,
    ttl_ms: Bytes,
    want: u64,
    /// This round: masters whose count moved, and the highest token granted.
    moved: usize,
    best: u64,
}

impl round::Acquire for Write<'_> {
    type Reply = AcquireTriple;

    fn script<'s>(&self, scripts: &'s ScriptSet) -> &'s Script {
        &scripts.racquire
    }

    fn keys(&self) -> Arc<[Bytes]> {
        rkeys(self.engine, self.key)
    }

    fn args(&mut self, token: u64, round: usize) -> Arc<[Bytes]> {
        self.moved = 0;
        self.best = 0;
        let mut args = round::acquire_args(self.value, &self.ttl_ms, token, round);
        args.push(Bytes::from(self.want.to_string()));
        args.into()
    }

    fn decode(&self, reply: Value) -> Result<AcquireTriple, DecodeError> {
        AcquireTriple::decode(&reply)
    }

    fn vote(&mut self, AcquireTriple { reply, holds }: AcquireTriple, token: u64) -> Vote {
        let want = self.want;
        match reply {
            AcquireReply::Granted(t) if holds == want + 1 && (want > 0 || t == token) => {
                self.best = self.best.max(t);
                Vote::Granted
            }
            AcquireReply::Busy(reg) => Vote::Busy(Some(reg)),
            AcquireReply::Stale(reg) => Vote::Stale(reg),
            AcquireReply::Amnesia => Vote::Amnesia,
            AcquireReply::Mismatch(_) => {
                self.moved += 1;
                Vote::None
            }
            AcquireReply::Granted(_) => Vote::None,
        }
    }

    fn release(&self) -> Option<Release> {
        (self.want == 0).then(|| release_of(self.engine, self.key, self.value, 1))
    }

    /// A reentry keeps the register: its proposal is never used.
    fn proposes(&self) -> bool {
        self.want == 0
    }

    fn records_votes(&self) -> bool {
        false
    }
}

/// `RLOCK.ACQUIRE` without waiting: a fresh grant when K is free on a
/// quorum, one more hold when this owner holds it on a quorum, else busy.
pub async fn acquire(
    engine: &Engine,
    key: &Bytes,
    owner: &Bytes,
    ttl: Duration,
) -> ReentrantAcquire {
    let start = Instant::now();
    let out = acquire_inner(engine, key, owner, ttl, start).await;
    round::record(engine, Op::ReentrantAcquire, start, &out);
    out
}

async fn acquire_inner(
    engine: &Engine,
    key: &Bytes,
    owner: &Bytes,
    ttl: Duration,
    start: Instant,
) -> ReentrantAcquire {
    let cfg = engine.config();
    let until = valid_until(start, ttl, cfg.drift_factor, cfg.drift_constant);
    let value = stored_value(owner);
    let q = engine.quorum();
    for _ in 0..MAX_READS {
        if remaining(until, Instant::now()).is_none() {
            return AcquireOutcome::Expired;
        }
        let views = read(engine, key).await;
        let want = match summarise(q, &views, &value) {
            Read::Free => 0,
            Read::Ours { holds, .. } => holds,
            Read::Other => return AcquireOutcome::Busy,
            Read::NoQuorum { voted } => return AcquireOutcome::NoQuorum { voted, needed: q },
        };
        let mut write = Write {
            engine,
            key,
            value: &value,
            ttl_ms: Bytes::from(ttl.as_millis().to_string()),
            want,
            moved: 0,
            best: 0,
        };
        match round::run(engine, &mut write, ttl, start).await {
            round::End::Granted(grant) => {
                return AcquireOutcome::Granted(ReentrantGrant {
                    grant: Grant {
                        token: FencingToken(write.best),
                        ..grant
                    },
                    holds: want + 1,
                })
            }
            round::End::Expired => return AcquireOutcome::Expired,
            round::End::Exhausted => return AcquireOutcome::Exhausted,
            // Out of time or of rounds before a round decided.
            round::End::Lost { decided: false, .. } => {
                return AcquireOutcome::NoQuorum {
                    voted: 0,
                    needed: q,
                }
            }
            // A concurrent operation of this owner moved the count: read
            // again.
            round::End::Lost { .. } if write.moved > 0 => continue,
            round::End::Lost {
                last: Decision::Busy | Decision::RetryHigher,
                ..
            } => return AcquireOutcome::Busy,
            round::End::Lost { voted, .. } => return AcquireOutcome::NoQuorum { voted, needed: q },
        }
    }
    AcquireOutcome::Busy
}

/// `RLOCK.ACQUIRE ... WAIT`: waiters on one key of this gateway take turns
/// in arrival order (`lock::fair`), each attempt a full [`acquire`].
pub async fn acquire_wait(
    engine: &Engine,
    key: &Bytes,
    owner: &Bytes,
    ttl: Duration,
    wait: Duration,
) -> ReentrantAcquire {
    wait_fair(
        engine,
        key,
        wait,
        || acquire(engine, key, owner, ttl),
        |o| matches!(o, AcquireOutcome::Granted(_) | AcquireOutcome::Exhausted),
    )
    .await
    .unwrap_or(AcquireOutcome::Busy)
}

/// Reports a reentrant grant only if it is still valid now. A fresh grant
/// that expired is released; an expired reentry is left (see the module
/// notes on counts that are too high).
pub fn finish(
    engine: &Engine,
    grant: &Grant,
    key: &Bytes,
    owner: &Bytes,
    holds: u64,
) -> Option<Duration> {
    round::finish(engine, Op::ReentrantAcquire, grant, false, || {
        (holds == 1).then(|| release_of(engine, key, &stored_value(owner), 1))
    })
}

/// `RLOCK.RELEASE`: drops one hold; the last one frees K and wakes local
/// waiters.
pub async fn release(engine: &Engine, key: &Bytes, owner: &Bytes) -> ReentrantRelease {
    let start = Instant::now();
    let out = release_inner(engine, key, owner).await;
    round::record(engine, Op::ReentrantRelease, start, &out);
    out
}

impl Metered for ReentrantRelease {
    fn metric(&self) -> Option<Outcome> {
        Some(match self {
            ReentrantRelease::Released { .. } => Outcome::Granted,
            ReentrantRelease::NotHeld => Outcome::Busy,
            ReentrantRelease::NoQuorum { .. } => Outcome::NoQuorum,
        })
    }
}

async fn release_inner(engine: &Engine, key: &Bytes, owner: &Bytes) -> ReentrantRelease {
    let value = stored_value(owner);
    let q = engine.quorum();
    for _ in 0..MAX_READS {
        let views = read(engine, key).await;
        let want = match summarise(q, &views, &value) {
            Read::Ours { holds, .. } => holds,
            Read::Free | Read::Other => return ReentrantRelease::NotHeld,
            Read::NoQuorum { voted } => return ReentrantRelease::NoQuorum { voted, needed: q },
        };
        let r = release_of(engine, key, &value, want);
        let mut moved = 0usize;
        // A moved count is a "no" for settling, but not for "not held".
        let (yes, no) = round::yes_no(
            engine,
            (r.script)(engine.scripts()),
            r.keys,
            r.args,
            false,
            Instant::now(),
            |i, reply| match reply.ok().map(|v| ReleaseReply::decode(&v)) {
                Some(Ok(ReleaseReply::Dropped(_))) => YesNo::Yes,
                Some(Ok(ReleaseReply::NotHeld)) => YesNo::No,
                Some(Ok(ReleaseReply::Moved(_))) => {
                    moved += 1;
                    YesNo::No
                }
                Some(Ok(ReleaseReply::Amnesia)) => {
                    engine.note_amnesia(i);
                    YesNo::Failed
                }
                _ => YesNo::Failed,
            },
        )
        .await;
        let no = no - moved;
        if yes >= q {
            let left = want.saturating_sub(1);
            if left == 0 {
                engine.signals().released(std::slice::from_ref(key));
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

/// `RLOCK.EXTEND`: compare-and-pexpire of K and its hold count; the count
/// and the token do not change.
pub async fn extend(engine: &Engine, key: &Bytes, owner: &Bytes, ttl: Duration) -> ExtendOutcome {
    let start = Instant::now();
    let p = &engine.config().key_prefix;
    let keys: Arc<[Bytes]> =
        Arc::from(vec![lock_key(p, key), holds_key(p, key), fence_key(p, key)]);
    let args: Arc<[Bytes]> = Arc::from(vec![
        stored_value(owner),
        Bytes::from(ttl.as_millis().to_string()),
        round::retention_arg(engine),
    ]);
    let votes = round::yes_no(
        engine,
        &engine.scripts().rextend,
        keys,
        args,
        true,
        start,
        |_, reply| round::positive(reply),
    )
    .await;
    round::extend_outcome(engine, Op::Extend, start, ttl, votes)
}

/// `RLOCK.STATUS`: the reentrant holder a quorum agrees on, with the
/// highest hold count among them.
pub async fn status(engine: &Engine, key: &Bytes) -> ReentrantStatus {
    let start = Instant::now();
    let views = read(engine, key).await;
    let q = engine.quorum();
    let mut seen: Vec<Bytes> = Vec::new();
    for v in &views {
        if let StatusReply::Held { value, holds, .. } = v {
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
        if let Read::Ours { holds, token, pttl } = summarise(q, &views, &value) {
            out = ReentrantStatus::Held {
                owner: value.slice(MARKER.len()..),
                token: FencingToken(token),
                pttl: Duration::from_millis(u64::try_from(pttl).unwrap_or(0)),
                holds,
            };
        }
    }
    round::record(engine, Op::Status, start, &out);
    out
}

impl Metered for ReentrantStatus {
    fn metric(&self) -> Option<Outcome> {
        Some(match self {
            ReentrantStatus::Held { .. } => Outcome::Granted,
            ReentrantStatus::NotHeld => Outcome::Busy,
            ReentrantStatus::NoQuorum { .. } => Outcome::NoQuorum,
        })
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
        assert!(StatusReply::decode(&Value::Int(7)).is_err());
        assert!(StatusReply::decode(&Value::Array(vec![
            Value::Int(0),
            Value::Bulk(Bytes::from_static(b"v")),
            Value::Bulk(Bytes::from_static(b"not a number")),
            Value::Int(5),
            Value::Int(1),
        ]))
        .is_err());
        assert!(AcquireTriple::decode(&Value::Array(vec![Value::Int(0)])).is_err());
        assert!(AcquireTriple::decode(&Value::Array(vec![
            Value::Int(7),
            Value::Int(0),
            Value::Int(0)
        ]))
        .is_err());
        assert!(ReleaseReply::decode(&Value::Nil).is_err());
        assert_eq!(
            ReleaseReply::decode(&Value::Array(vec![Value::Int(9), Value::Int(0)])),
            Err(DecodeError::Code(9))
        );
    }

    #[test]
    fn replies_decode_to_their_codes() {
        let triple = Value::Array(vec![
            Value::Int(code::GRANTED),
            Value::Int(17),
            Value::Int(2),
        ]);
        assert_eq!(
            AcquireTriple::decode(&triple),
            Ok(AcquireTriple {
                reply: AcquireReply::Granted(17),
                holds: 2
            })
        );
        let moved = Value::Array(vec![Value::Int(code::MISMATCH), Value::Int(3)]);
        assert_eq!(ReleaseReply::decode(&moved), Ok(ReleaseReply::Moved(3)));
        assert_eq!(
            StatusReply::decode(&Value::Array(vec![Value::Int(code::AMNESIA)])),
            Ok(StatusReply::Amnesia)
        );
    }
}
