//! Counting semaphores (`SEM.*`): at most `permits` holders of a key at a
//! time, each grant fenced by a token from the key's fence register
//! (docs/design.md, *Semaphores*). The quorum machinery is the holder kinds'
//! ([`crate::kinds::holders`]), with its extra round for moving to a free slot;
//! this module owns `sem_acquire.lua`'s KEYS and ARGV and the shape of a
//! semaphore status.
//!
//! # State on each master
//! Under the internal `i:sem:` names of the user key (`lock::keys::sem`): a
//! holders sorted set (owner -> expiry in ms on that master's clock; expired
//! holders are removed inside every script with ZREMRANGEBYSCORE), a hash
//! owner -> token, and the permit count. The fence register is the user key's own, shared with plain
//! locks and read-write locks of the same name.
//!
//! # Admission rule (`sem_acquire.lua`)
//! A master admits a holder when it has fewer than `permits` live holders,
//! or when the holder is already admitted there by an earlier round of the
//! same request (a retry with a higher token).
//!
//! # Permit counts
//! The count is stored on a master on first use and kept while any holder
//! lives there; a request with another count is refused by that master
//! (`-ERR ... permits mismatch`). Taking the count from each request instead
//! would let one client with a larger count push the number of holders past
//! what every other client relies on. Once every holder is gone a new count
//! may be set, so a semaphore can be resized by draining it.
//!
//! # Slots, and why a count alone is not enough
//! A master that merely counted its live holders would not bound the valid
//! ones: with N = 3 and 2 permits, holders admitted on {m1,m2}, {m2,m3} and
//! {m1,m3} leave each master with two, yet all three hold a quorum. So each
//! permit is a *slot*, and a slot is a mutex: a master admits at most one
//! live holder per slot. The gateway asks for one slot per round (at random
//! at first); masters that refuse list the slots free there, and the next
//! round asks for the slot most of them reported free. The property tests in
//! `semaphore_model` show the count-only rule failing and the slot rule
//! holding.
//!
//! # Why at most `permits` holders are valid at once
//! Suppose at some instant two valid holders H1 and H2 occupy the same slot
//! s. Each was admitted to s by a quorum, and because the gateway reports a
//! grant only while `ttl - elapsed - drift` is positive, each admission is
//! still live on every master of its quorum (each master set the expiry to
//! `now + ttl` on its own clock, no earlier than the request began; the
//! drift allowance covers clock *rates* within `drift_factor`). Two
//! majorities share a master m, and whichever of H1 and H2 reached m second
//! was admitted to s while the other was live there, which the script
//! refuses. So each slot has at most one valid holder. All valid holders
//! were admitted under the same count P: their quorums also share a master,
//! which refuses a count other than the one its live holders were admitted
//! under. Slots run from 0 to P - 1, so at most P holders are valid.
//!
//! Assumptions, as for plain locks: masters' clocks run at rates within the
//! drift allowance and never jump; no process pauses past its validity; no
//! master forgets its state unnoticed (the amnesia guard quarantines one
//! that restarts empty for `max_ttl + max_acquire_time`). A master clock
//! that jumps forward, or an operator who rewinds `TIME` by restoring an old
//! snapshot, expires holders early on that master; its next admission can
//! then let P + 1 holders be valid. Fencing tokens stay unique and ordered
//! regardless: a protected resource must check them.

use std::time::Duration;

use bytes::Bytes;

use crate::kinds::holders::{self, AcquireSpec, Holder, HolderKeys, HoldersStatus, KindAcquire};
use crate::lock::{keys as names, Engine, ExtendOutcome, ReleaseOutcome};
use crate::metrics::Op;

/// Largest permit count: a slot list travels in every busy reply, and a
/// master scans its live holders on each acquire.
pub const MAX_PERMITS: u64 = 1024;

/// The master keys of the semaphore `key`, per script.
pub fn keys(engine: &Engine, key: &[u8]) -> HolderKeys {
    let n = names::sem(&engine.config().key_prefix, key);
    let meta = engine.meta_key().clone();
    HolderKeys {
        acquire: vec![
            meta.clone(),
            n.holders.clone(),
            n.tokens.clone(),
            n.slots.clone(),
            n.permits.clone(),
            n.fence,
        ]
        .into(),
        // The "marker" slot of the release script is never cleared for a
        // semaphore (ARGV[2] is '0'); the permit count fills it.
        release: vec![n.tokens.clone(), n.permits.clone(), n.holders.clone()].into(),
        extend: vec![
            n.tokens.clone(),
            n.slots,
            n.permits.clone(),
            n.holders.clone(),
        ]
        .into(),
        companions: 3,
        status: vec![meta, n.tokens, n.permits, n.holders.clone()].into(),
        signal: n.holders,
    }
}

/// What a quorum of masters agrees on about one semaphore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemView {
    /// The permit count a quorum stores; 0 when none agrees (unused).
    pub permits: u64,
    pub holders: Vec<Holder>,
}

impl SemView {
    pub fn free(&self) -> u64 {
        self.permits
            .saturating_sub(u64::try_from(self.holders.len()).unwrap_or(u64::MAX))
    }
}

/// Takes one of `permits` slots of `key`; with `wait`, retries until it
/// runs out.
pub async fn acquire(
    engine: &Engine,
    key: &Bytes,
    permits: u64,
    owner: &Bytes,
    ttl: Duration,
    wait: Option<Duration>,
) -> KindAcquire {
    let keys = keys(engine, key);
    let spec = AcquireSpec {
        op: Op::SemAcquire,
        script: |s| &s.sem_acquire,
        keys: &keys,
        extra: vec![Bytes::from(permits.to_string())],
        clears_marker: false,
        slots: Some(permits),
    };
    holders::acquire_or_wait(engine, &spec, owner, ttl, wait).await
}

/// Releases `owner`'s permit of `key`.
pub async fn release(engine: &Engine, key: &Bytes, owner: &Bytes) -> ReleaseOutcome {
    holders::release(engine, Op::SemRelease, &keys(engine, key), owner).await
}

/// Extends `owner`'s permit of `key`.
pub async fn extend(engine: &Engine, key: &Bytes, owner: &Bytes, ttl: Duration) -> ExtendOutcome {
    holders::extend(engine, Op::SemExtend, &keys(engine, key), owner, ttl).await
}

/// A quorum read of the holders of `key`; `Err` carries (voted, needed) when
/// too few masters answered.
pub async fn status(engine: &Engine, key: &Bytes) -> Result<SemView, (usize, usize)> {
    match holders::status(engine, Op::SemStatus, &keys(engine, key)).await {
        HoldersStatus::Seen { extra, mut sets } => Ok(SemView {
            permits: extra
                .and_then(|e| std::str::from_utf8(&e).ok()?.parse().ok())
                .unwrap_or(0),
            holders: sets.pop().unwrap_or_default(),
        }),
        HoldersStatus::NoQuorum { voted, needed } => Err((voted, needed)),
    }
}
