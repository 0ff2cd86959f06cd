//! Read-write locks (`RWLOCK.*`): many readers share a key, a writer
//! excludes readers and other writers, and every grant carries a fencing
//! token from the key's fence register (docs/design.md, *Read-write locks,
//! with writer preference*). The quorum machinery is the holder kinds'
//! ([`crate::kinds::holders`]); this module owns `rw_acquire.lua`'s KEYS and ARGV
//! and the shape of a read-write status.
//!
//! # State on each master
//! Under the internal `i:rw:` names of the user key (`lock::keys::rw`): a
//! readers sorted set and a writer sorted set (owner -> expiry in ms on that
//! master's clock, expired members removed inside every script), a hash
//! owner -> token, and a writer-intent marker. The fence register is the user key's own, shared
//! with plain locks and semaphores of the same name, so tokens of every kind
//! on one key rise together: a write granted after a read has the higher
//! token, and a resource can order writes after reads.
//!
//! # Admission rule (`rw_acquire.lua`)
//! - a writer is admitted when the master has no live reader and no live
//!   writer;
//! - a reader is admitted when the master has no live writer and no intent
//!   marker.
//!
//! # Why a valid writer never overlaps a valid reader or writer
//! Suppose at one instant a writer W and another holder H (reader or writer)
//! are both valid. Each was admitted by a quorum, and by the gateway's
//! drift-adjusted validity each admission is still live on every master of
//! its quorum. Two majorities share a master m. Whichever of W and H came
//! to m second was admitted there while the other was live, which the rule
//! forbids. So no such instant exists, under the same assumptions as for
//! plain locks: masters' clocks advance at a rate within the drift
//! allowance of the gateway's, no master's clock jumps, and no master
//! forgets its state without the amnesia guard noticing. A master clock
//! jump forward expires holders early there and breaks this, exactly as it
//! breaks plain locks; the fencing token is what a resource must check.
//!
//! # Writer preference (no writer starvation)
//! A writer that waits (`WAIT`) sets the intent marker, with a short TTL
//! ([`INTENT_TTL`]), on every master that refuses it, and refreshes it on
//! every retry. New readers are refused where a marker exists, so the
//! readers already in drain and the writer gets in. The marker is deleted
//! when its writer is granted or gives up. Limits: the marker lives on the
//! masters, so it works across gateways, but it is best effort. If the
//! writer's gateway dies, the marker expires within [`INTENT_TTL`] and
//! readers resume. Readers are shut out only while a marker is on a quorum.
//! Two waiting writers share one marker. A writer that does not wait never
//! blocks readers.
//!
//! # Namespace
//! A plain `LOCK.ACQUIRE k` and `RWLOCK.WRITE k` are different locks: they
//! do not exclude each other. They share only the fence register, so
//! their tokens are still totally ordered. Making them exclude each other
//! would mean changing `acquire.lua`, the plain lock's hot path and the
//! script every drop-in client relies on, for a mix nobody should rely on.

use std::time::Duration;

use bytes::Bytes;

use crate::kinds::holders::{self, AcquireSpec, Holder, HolderKeys, HoldersStatus, KindAcquire};
use crate::lock::{keys as names, Engine, ExtendOutcome, ReleaseOutcome};
use crate::metrics::Op;

/// How long a waiting writer's intent marker outlives its last refresh.
/// A waiter retries at least every 50 ms, so this covers slow rounds.
pub const INTENT_TTL: Duration = Duration::from_millis(500);

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RwMode {
    Read,
    Write,
}

impl RwMode {
    pub fn op(self) -> Op {
        match self {
            RwMode::Read => Op::RwRead,
            RwMode::Write => Op::RwWrite,
        }
    }
}

/// The master keys of the read-write lock `key`, per script.
pub fn keys(engine: &Engine, key: &[u8]) -> HolderKeys {
    let n = names::rw(&engine.config().key_prefix, key);
    let meta = engine.meta_key().clone();
    HolderKeys {
        acquire: vec![
            meta.clone(),
            n.readers.clone(),
            n.writer.clone(),
            n.tokens.clone(),
            n.intent.clone(),
            n.fence,
        ]
        .into(),
        release: vec![
            n.tokens.clone(),
            n.intent.clone(),
            n.writer.clone(),
            n.readers.clone(),
        ]
        .into(),
        extend: vec![n.tokens.clone(), n.writer.clone(), n.readers.clone()].into(),
        companions: 1,
        status: vec![meta, n.tokens, n.intent, n.writer.clone(), n.readers].into(),
        signal: n.writer,
    }
}

/// What a quorum of masters agrees on about one read-write lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RwView {
    pub writer: Option<Holder>,
    pub readers: Vec<Holder>,
    /// A waiting writer's intent marker is on a quorum.
    pub writer_waiting: bool,
}

/// Takes `key` for reading or writing; with `wait`, retries until it runs
/// out (a waiting writer holds back new readers meanwhile).
pub async fn acquire(
    engine: &Engine,
    key: &Bytes,
    mode: RwMode,
    owner: &Bytes,
    ttl: Duration,
    wait: Option<Duration>,
) -> KindAcquire {
    let keys = keys(engine, key);
    let waiting = wait.is_some_and(|w| !w.is_zero());
    let spec = AcquireSpec {
        op: mode.op(),
        script: |s| &s.rw_acquire,
        keys: &keys,
        extra: vec![
            Bytes::from_static(if mode == RwMode::Write { b"w" } else { b"r" }),
            Bytes::from_static(if waiting && mode == RwMode::Write {
                b"1"
            } else {
                b"0"
            }),
            Bytes::from(INTENT_TTL.as_millis().to_string()),
        ],
        clears_marker: waiting && mode == RwMode::Write,
        slots: None,
    };
    holders::acquire_or_wait(engine, &spec, owner, ttl, wait).await
}

/// Releases a reader or the writer of `key`.
pub async fn release(engine: &Engine, key: &Bytes, owner: &Bytes) -> ReleaseOutcome {
    holders::release(engine, Op::RwRelease, &keys(engine, key), owner).await
}

/// Extends a reader or the writer of `key`.
pub async fn extend(engine: &Engine, key: &Bytes, owner: &Bytes, ttl: Duration) -> ExtendOutcome {
    holders::extend(engine, Op::RwExtend, &keys(engine, key), owner, ttl).await
}

/// A quorum read of the writer and readers of `key`; `Err` carries (voted,
/// needed) when too few masters answered.
pub async fn status(engine: &Engine, key: &Bytes) -> Result<RwView, (usize, usize)> {
    match holders::status(engine, Op::RwStatus, &keys(engine, key)).await {
        HoldersStatus::Seen { extra, mut sets } => {
            let readers = sets.pop().unwrap_or_default();
            let writer = sets.pop().unwrap_or_default().into_iter().next();
            Ok(RwView {
                writer,
                readers,
                writer_waiting: extra.is_some(),
            })
        }
        HoldersStatus::NoQuorum { voted, needed } => Err((voted, needed)),
    }
}
