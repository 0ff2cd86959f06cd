//! Plain locks (`LOCK.*` and the drop-in commands): one owner per key, all
//! or nothing over several keys, each grant fenced by a token from the key's
//! register (docs/design.md, *Plain locks*).
//!
//! # Safety
//! A grant is reported only when `q` masters accepted the *same* proposed
//! token (each raising its register for the key), and only while validity
//! (`ttl - elapsed - drift`) is still positive. A failed or expired acquire is
//! released on every master, because a write that timed out may still land.
//! A key's register expires `max(R, ttl)` after its last grant or extend;
//! a missing one reads as its bucket's high-water mark, so tokens still
//! rise (see [`crate::kinds`], *Bounded state, and tokens that still rise*).
//! The rounds themselves are the core's ([`crate::lock::round`]); this module owns
//! the scripts `acquire.lua`, `release.lua`, `extend.lua` and `status.lua`,
//! their KEYS and ARGV, and the typed replies of `status.lua`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::StreamExt;
use rand::Rng;
use tokio::time::Instant;
use tracing::warn;

use crate::fence::FencingToken;
use crate::lock::fair::wait_fair;
use crate::lock::keys::{fence_key, lock_key, lock_keys};
use crate::lock::round::{
    self, code, decimal, AcquireReply, DecodeError, Metered, Release, Vote, YesNo,
};
use crate::lock::{AcquireOutcome, Engine, ExtendOutcome, Grant, ReleaseOutcome, StatusOutcome};
use crate::master::{MasterError, Value};
use crate::metrics::{Op, Outcome};
use crate::scripts::{Script, ScriptSet};

/// The slowest a waiter polls for a release made elsewhere.
const POLL_MAX: Duration = Duration::from_millis(100);

/// One acquire of every key in `keys` for `owner` (`acquire.lua`).
struct PlainAcquire<'a> {
    engine: &'a Engine,
    keys: &'a [Bytes],
    owner: &'a Bytes,
    ttl_ms: Bytes,
}

impl round::Acquire for PlainAcquire<'_> {
    type Reply = AcquireReply;

    fn script<'s>(&self, scripts: &'s ScriptSet) -> &'s Script {
        &scripts.acquire
    }

    fn keys(&self) -> Arc<[Bytes]> {
        let prefix = &self.engine.config().key_prefix;
        let mut out = Vec::with_capacity(1 + 2 * self.keys.len());
        out.push(self.engine.meta_key().clone());
        for k in self.keys {
            out.push(lock_key(prefix, k));
            out.push(fence_key(prefix, k));
        }
        out.into()
    }

    fn args(&mut self, token: u64, round: usize) -> Arc<[Bytes]> {
        round::acquire_args(self.owner, &self.ttl_ms, token, round).into()
    }

    fn decode(&self, reply: Value) -> Result<AcquireReply, DecodeError> {
        AcquireReply::decode(&reply)
    }

    fn vote(&mut self, reply: AcquireReply, token: u64) -> Vote {
        match reply {
            AcquireReply::Granted(t) if t == token => Vote::Granted,
            AcquireReply::Busy(reg) => Vote::Busy(Some(reg)),
            AcquireReply::Stale(reg) => Vote::Stale(reg),
            AcquireReply::Amnesia => Vote::Amnesia,
            other => {
                warn!(reply = ?other, "unexpected acquire reply from master");
                Vote::None
            }
        }
    }

    fn release(&self) -> Option<Release> {
        Some(release_of(self.engine, self.keys, self.owner))
    }
}

/// `release.lua` of the client keys `keys` for `owner`.
fn release_of(engine: &Engine, keys: &[Bytes], owner: &Bytes) -> Release {
    Release {
        script: |s| &s.release,
        keys: lock_keys(&engine.config().key_prefix, keys).into(),
        args: Arc::from(vec![owner.clone()]),
    }
}

/// One acquire attempt (no waiting): locks every key in `keys` for `owner`,
/// all or nothing.
pub async fn acquire(
    engine: &Engine,
    keys: &[Bytes],
    owner: &Bytes,
    ttl: Duration,
) -> AcquireOutcome {
    let start = Instant::now();
    let mut kind = PlainAcquire {
        engine,
        keys,
        owner,
        ttl_ms: Bytes::from(ttl.as_millis().to_string()),
    };
    let outcome = round::run(engine, &mut kind, ttl, start)
        .await
        .outcome(engine.quorum());
    round::record(engine, Op::Acquire, start, &outcome);
    outcome
}

/// Acquire with `WAIT`: retries until `wait` runs out, at once when the lock
/// is released through this gateway, otherwise after a short random pause
/// (releases elsewhere and expiry are only seen by retrying). Waiters for one
/// key on this gateway take turns in arrival order.
pub async fn acquire_wait(
    engine: &Engine,
    keys: &[Bytes],
    owner: &Bytes,
    ttl: Duration,
    wait: Duration,
) -> AcquireOutcome {
    // One key: wait in the key's local FIFO (`lock::fair`). Several keys
    // (drop-in multi-resource locks) keep the jittered race, because
    // queueing on several keys at once could deadlock two waiters.
    if let [key] = keys {
        return wait_fair(
            engine,
            key,
            wait,
            || acquire(engine, keys, owner, ttl),
            |o| matches!(o, AcquireOutcome::Granted(_) | AcquireOutcome::Exhausted),
        )
        .await
        .unwrap_or(AcquireOutcome::Busy);
    }
    let signals = engine.signals();
    let give_up = Instant::now() + wait;
    let watched: Vec<_> = keys.iter().map(|k| signals.watch(k)).collect();
    let outcome = loop {
        // Enabled before the attempt, so a release that lands while it runs
        // still wakes the pause below.
        let mut wakes: Vec<_> = watched.iter().map(|n| Box::pin(n.notified())).collect();
        for w in &mut wakes {
            w.as_mut().enable();
        }
        let outcome = acquire(engine, keys, owner, ttl).await;
        if matches!(
            outcome,
            AcquireOutcome::Granted(_) | AcquireOutcome::Exhausted
        ) {
            break outcome;
        }
        let now = Instant::now();
        if now >= give_up {
            break outcome;
        }
        // Jitter keeps waiters on one key from retrying in lock step.
        let jitter = Duration::from_millis(rand::rng().random_range(5..=50));
        tokio::select! {
            _ = futures::future::select_all(wakes) => {}
            _ = tokio::time::sleep(jitter.min(give_up - now)) => {}
        }
    };
    for (k, n) in keys.iter().zip(watched) {
        signals.forget(k, n);
    }
    outcome
}

/// Reports a grant to the client only if it is still valid now; otherwise
/// releases it. Called just before the reply is written.
pub fn finish(engine: &Engine, grant: &Grant, keys: &[Bytes], owner: &Bytes) -> Option<Duration> {
    round::finish(engine, Op::Acquire, grant, true, || {
        Some(release_of(engine, keys, owner))
    })
}

/// Waits until `key` is free on a quorum, or `until` passes (`None`: no
/// limit). True when it was seen free. Woken at once by a release through
/// this gateway; otherwise it polls, never slower than every 100 ms and
/// sooner when the holder's lease ends first.
pub async fn wait_free(engine: &Engine, key: &Bytes, until: Option<Instant>) -> bool {
    let signals = engine.signals();
    let n = signals.watch(key);
    let free = loop {
        let wake = n.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let poll = match status(engine, key).await {
            StatusOutcome::Free => break true,
            StatusOutcome::Held { pttl, .. } => pttl.clamp(Duration::from_millis(1), POLL_MAX),
            // Too few masters to tell: keep waiting, as a client blocked on
            // one Redis would.
            StatusOutcome::NoQuorum { .. } => POLL_MAX,
        };
        let jitter = Duration::from_millis(rand::rng().random_range(0..=10));
        let now = Instant::now();
        let mut next = now + poll + jitter;
        if let Some(u) = until {
            if now >= u {
                break false;
            }
            next = next.min(u);
        }
        tokio::select! {
            _ = &mut wake => {}
            _ = tokio::time::sleep_until(next) => {}
        }
    };
    signals.forget(key, n);
    free
}

/// Compare-and-delete on every master; released when `q` masters deleted
/// every key.
pub async fn release(engine: &Engine, keys: &[Bytes], owner: &Bytes) -> ReleaseOutcome {
    let start = Instant::now();
    let want = i64::try_from(keys.len()).unwrap_or(i64::MAX);
    let mut best = 0i64;
    let r = release_of(engine, keys, owner);
    let votes = round::yes_no(
        engine,
        (r.script)(engine.scripts()),
        r.keys,
        r.args,
        false,
        start,
        |_, reply| match reply {
            Ok(Value::Int(n)) => {
                best = best.max(n);
                if n >= want {
                    YesNo::Yes
                } else {
                    YesNo::No
                }
            }
            _ => YesNo::Failed,
        },
    )
    .await;
    round::release_outcome(engine, Op::Release, start, votes, best, keys)
}

/// Compare-and-pexpire on every master; extended when `q` masters accepted
/// and the new validity is positive. `add` adds `ttl` to the remaining time
/// instead of replacing it (redis-py's extend).
pub async fn extend(
    engine: &Engine,
    keys: &[Bytes],
    owner: &Bytes,
    ttl: Duration,
    add: bool,
) -> ExtendOutcome {
    let start = Instant::now();
    let args: Arc<[Bytes]> = Arc::from(vec![
        owner.clone(),
        Bytes::from(ttl.as_millis().to_string()),
        Bytes::from_static(if add { b"1" } else { b"0" }),
        round::retention_arg(engine),
    ]);
    let prefix = &engine.config().key_prefix;
    let mut ext_keys: Vec<Bytes> = lock_keys(prefix, keys);
    ext_keys.extend(keys.iter().map(|k| fence_key(prefix, k)));
    let mut new_ttl_ms = i64::MAX;
    let votes = round::yes_no(
        engine,
        &engine.scripts().extend,
        ext_keys.into(),
        args,
        true,
        start,
        |_, reply| {
            if let Ok(Value::Int(n)) = &reply {
                if *n > 0 {
                    new_ttl_ms = new_ttl_ms.min(*n);
                }
            }
            round::positive(reply)
        },
    )
    .await;
    let new_ttl = Duration::from_millis(u64::try_from(new_ttl_ms).unwrap_or(0));
    round::extend_outcome(engine, Op::Extend, start, new_ttl, votes)
}

/// One master's answer to `status.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusReply {
    Held { owner: Bytes, token: u64, pttl: i64 },
    Free,
    Amnesia,
}

impl StatusReply {
    /// Every code `status.lua` returns.
    pub const CODES: &'static [i64] = &[code::HELD, code::FREE, code::AMNESIA];

    pub fn decode(reply: &Value) -> Result<Self, DecodeError> {
        let Value::Array(items) = reply else {
            return Err(DecodeError::Shape("status"));
        };
        match items.as_slice() {
            [Value::Int(code::AMNESIA)] => Ok(StatusReply::Amnesia),
            [Value::Int(code::FREE)] => Ok(StatusReply::Free),
            [Value::Int(code::HELD), Value::Bulk(owner), Value::Bulk(reg), Value::Int(pttl)] => {
                Ok(StatusReply::Held {
                    owner: owner.clone(),
                    token: decimal(reg)?,
                    pttl: *pttl,
                })
            }
            _ => Err(DecodeError::Shape("status")),
        }
    }
}

fn decode_status(reply: Result<Value, MasterError>) -> Option<StatusReply> {
    StatusReply::decode(&reply.ok()?).ok()
}

/// A quorum read: the owner and token that `q` masters agree on, with the
/// smallest remaining PTTL among them.
pub async fn status(engine: &Engine, key: &Bytes) -> StatusOutcome {
    let start = Instant::now();
    let q = engine.quorum();
    let prefix = &engine.config().key_prefix;
    let keys: Arc<[Bytes]> = Arc::from(vec![
        engine.meta_key().clone(),
        lock_key(prefix, key),
        fence_key(prefix, key),
    ]);
    let (_, mut futs) = engine.fan_out(
        &engine.scripts().status,
        keys,
        Arc::from(Vec::new()),
        start + engine.timeout(),
        true,
    );
    // (owner, token, smallest pttl, votes)
    let mut groups: Vec<(Bytes, u64, i64, usize)> = Vec::new();
    let mut free = 0usize;
    let mut result = None;
    while let Some((i, reply)) = futs.next().await {
        match decode_status(reply) {
            Some(StatusReply::Held { owner, token, pttl }) => {
                if let Some(g) = groups.iter_mut().find(|g| g.0 == owner && g.1 == token) {
                    g.2 = g.2.min(pttl);
                    g.3 += 1;
                } else {
                    groups.push((owner, token, pttl, 1));
                }
            }
            Some(StatusReply::Free) => free += 1,
            Some(StatusReply::Amnesia) => engine.note_amnesia(i),
            None => {}
        }
        if let Some(g) = groups.iter().find(|g| g.3 >= q) {
            result = Some(StatusOutcome::Held {
                owner: g.0.clone(),
                token: FencingToken(g.1),
                pttl: Duration::from_millis(u64::try_from(g.2).unwrap_or(0)),
            });
            break;
        }
        if free >= q {
            result = Some(StatusOutcome::Free);
            break;
        }
    }
    Engine::drain(futs);
    let answered = free + groups.iter().map(|g| g.3).sum::<usize>();
    let outcome = match result {
        Some(r) => r,
        // Every master answered but no owner has a quorum: not held.
        None if answered >= q => StatusOutcome::Free,
        None => StatusOutcome::NoQuorum {
            voted: answered,
            needed: q,
        },
    };
    round::record(engine, Op::Status, start, &outcome);
    outcome
}

impl Metered for StatusOutcome {
    fn metric(&self) -> Option<Outcome> {
        Some(match self {
            StatusOutcome::Held { .. } => Outcome::Granted,
            StatusOutcome::Free => Outcome::Busy,
            StatusOutcome::NoQuorum { .. } => Outcome::NoQuorum,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_replies_decode_and_malformed_ones_are_no_votes() {
        let held = Value::Array(vec![
            Value::Int(code::HELD),
            Value::Bulk(Bytes::from_static(b"o")),
            Value::Bulk(Bytes::from_static(b"17")),
            Value::Int(900),
        ]);
        assert_eq!(
            StatusReply::decode(&held),
            Ok(StatusReply::Held {
                owner: Bytes::from_static(b"o"),
                token: 17,
                pttl: 900
            })
        );
        assert_eq!(
            StatusReply::decode(&Value::Array(vec![Value::Int(code::FREE)])),
            Ok(StatusReply::Free)
        );
        let bad_token = Value::Array(vec![
            Value::Int(code::HELD),
            Value::Bulk(Bytes::from_static(b"o")),
            Value::Bulk(Bytes::from_static(b"x")),
            Value::Int(900),
        ]);
        assert!(StatusReply::decode(&bad_token).is_err());
        assert!(StatusReply::decode(&Value::Int(1)).is_err());
        assert!(decode_status(Err(MasterError::Timeout)).is_none());
    }
}
