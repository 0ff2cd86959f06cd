//! Connection-bound keepalive (`LOCK.ACQUIRE ... KEEPALIVE`): the gateway
//! renews a lock with quorum extends for as long as the client's connection
//! is open and the lock has not been released.
//!
//! Each connection owns one [`KeepAlives`]. A hold is registered when its
//! grant reply is written (never earlier: a grant that expired in flight is
//! not kept), and renewed by its own task every `ttl / 3` with
//! [`masters::extend`]. The hold ends in one of three ways:
//! - `LOCK.RELEASE` by the client stops its renewal ([`KeepAlives::stop`]);
//! - the connection ends for any reason (QUIT, EOF, error, kill, shutdown):
//!   dropping the set stops every renewal and releases every hold, as
//!   ZooKeeper ephemeral nodes and etcd sessions do. A client that lost its
//!   connection cannot know whether it still holds the lock, so freeing it at
//!   once lets the next worker proceed; the fencing token protects the
//!   resource either way;
//! - renewal cannot reach a quorum before the current validity runs out:
//!   the hold is *lost*. The gateway stops renewing, releases it best effort
//!   and tells the client with a RESP3 push, [`lost_push`].
//!
//! If the gateway process dies, renewals stop with it and the lock expires
//! after its TTL: keepalive never outlives the process that renews it.
//!
//! # Safety
//! Renewal is the ordinary compare-and-pexpire extend: it never grants, never
//! changes the token, and only succeeds on masters that still hold the lock
//! for this owner, so it adds no path to a second holder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::masters;
use crate::fence::FencingToken;
use crate::lock::{Engine, ExtendOutcome};
use crate::resp::Reply;

/// The shortest pause between renewal attempts, so a tiny TTL cannot spin.
const MIN_PERIOD: Duration = Duration::from_millis(5);

/// The RESP3 push a connection gets when one of its keepalive locks is lost:
/// `>4 "lockgate" "lost" <key> <token>`.
pub fn lost_push(key: &Bytes, token: FencingToken) -> Reply {
    Reply::Push(vec![
        Reply::bulk("lockgate"),
        Reply::bulk("lost"),
        Reply::Bulk(key.clone()),
        Reply::Int(i64::try_from(token.0).unwrap_or(i64::MAX)),
    ])
}

/// One connection's keepalive holds, by (key, owner).
pub struct KeepAlives {
    engine: Arc<Engine>,
    holds: Mutex<HashMap<(Bytes, Bytes), (u64, CancellationToken)>>,
    next_id: std::sync::atomic::AtomicU64,
    push: mpsc::UnboundedSender<Reply>,
}

// === impl KeepAlives ===

impl KeepAlives {
    /// A connection's empty set, and the receiver of its out-of-band pushes
    /// (the connection writes them between replies).
    pub fn new(engine: Arc<Engine>) -> (Arc<KeepAlives>, mpsc::UnboundedReceiver<Reply>) {
        let (push, rx) = mpsc::unbounded_channel();
        (
            Arc::new(KeepAlives {
                engine,
                holds: Mutex::new(HashMap::new()),
                next_id: std::sync::atomic::AtomicU64::new(0),
                push,
            }),
            rx,
        )
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(Bytes, Bytes), (u64, CancellationToken)>> {
        self.holds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts renewing a lock whose grant was just reported with `validity`
    /// left. A hold already kept for the same key and owner is replaced.
    pub fn start(
        self: &Arc<Self>,
        key: Bytes,
        owner: Bytes,
        token: FencingToken,
        ttl: Duration,
        validity: Duration,
    ) {
        let cancel = CancellationToken::new();
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let old = self
            .lock()
            .insert((key.clone(), owner.clone()), (id, cancel.clone()));
        if let Some((_, old)) = old {
            old.cancel();
        } else {
            self.engine.metrics().keepalive_holds.inc();
        }
        let hold = Hold {
            engine: self.engine.clone(),
            key,
            owner,
            token,
            ttl,
            valid_until: Instant::now() + validity,
            id,
            cancel,
            push: self.push.clone(),
            set: Arc::downgrade(self),
        };
        tokio::spawn(hold.run());
    }

    /// Stops renewing `key` for `owner` (the client released it); true when
    /// it was kept.
    pub fn stop(&self, key: &Bytes, owner: &Bytes) -> bool {
        let removed = self.lock().remove(&(key.clone(), owner.clone()));
        match removed {
            Some((_, c)) => {
                c.cancel();
                self.engine.metrics().keepalive_holds.dec();
                true
            }
            None => false,
        }
    }

    /// Whether this connection keeps `key` alive (for any owner).
    pub fn keeps(&self, key: &[u8]) -> bool {
        self.lock().keys().any(|(k, _)| &k[..] == key)
    }

    /// Whether this connection keeps `key` alive for `owner`.
    pub fn holds(&self, key: &Bytes, owner: &Bytes) -> bool {
        self.lock().contains_key(&(key.clone(), owner.clone()))
    }

    /// Holds being renewed.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes a lost hold, unless it was already replaced or stopped.
    fn forget_lost(&self, key: &Bytes, owner: &Bytes, id: u64) {
        let mut map = self.lock();
        let k = (key.clone(), owner.clone());
        if map.get(&k).is_some_and(|(i, _)| *i == id) {
            map.remove(&k);
            self.engine.metrics().keepalive_holds.dec();
        }
    }
}

impl Drop for KeepAlives {
    /// The connection is gone: stop every renewal and release every hold.
    fn drop(&mut self) {
        let holds: Vec<_> = self.lock().drain().collect();
        if holds.is_empty() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for ((key, owner), (_, cancel)) in holds {
            cancel.cancel();
            self.engine.metrics().keepalive_holds.dec();
            let engine = self.engine.clone();
            rt.spawn(async move {
                let out = masters::release(&engine, std::slice::from_ref(&key), &owner).await;
                debug!(?out, "keepalive lock released on disconnect");
            });
        }
    }
}

/// One renewed lock.
struct Hold {
    engine: Arc<Engine>,
    key: Bytes,
    owner: Bytes,
    token: FencingToken,
    ttl: Duration,
    valid_until: Instant,
    id: u64,
    cancel: CancellationToken,
    push: mpsc::UnboundedSender<Reply>,
    set: Weak<KeepAlives>,
}

// === impl Hold ===

impl Hold {
    async fn run(mut self) {
        let period = (self.ttl / 3).max(MIN_PERIOD);
        let mut next = Instant::now() + period;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
            if Instant::now() >= self.valid_until {
                break;
            }
            let keys = std::slice::from_ref(&self.key);
            let out = tokio::select! {
                _ = self.cancel.cancelled() => return,
                out = masters::extend(&self.engine, keys, &self.owner, self.ttl, false) => out,
            };
            let m = self.engine.metrics();
            match out {
                ExtendOutcome::Extended { validity } => {
                    m.keepalive_renewal("renewed");
                    self.valid_until = Instant::now() + validity;
                    next = Instant::now() + period;
                }
                ExtendOutcome::NotHeld => {
                    m.keepalive_renewal("not_held");
                    break;
                }
                ExtendOutcome::Expired | ExtendOutcome::NoQuorum { .. } => {
                    m.keepalive_renewal("no_quorum");
                    // Try again soon, but never past the validity: at that
                    // point the lock is lost.
                    next = (Instant::now() + (period / 4).max(MIN_PERIOD)).min(self.valid_until);
                }
            }
        }
        self.lost().await;
    }

    async fn lost(self) {
        if self.cancel.is_cancelled() {
            return;
        }
        warn!(
            token = self.token.0,
            "keepalive lock lost: renewal found no quorum in time"
        );
        self.engine.metrics().keepalive_lost.inc();
        if let Some(set) = self.set.upgrade() {
            set.forget_lost(&self.key, &self.owner, self.id);
        }
        // Best effort: masters that still hold it free it now instead of at
        // its TTL. Whatever they answer, this gateway no longer claims it.
        let _ = masters::release(&self.engine, std::slice::from_ref(&self.key), &self.owner).await;
        let _ = self.push.send(lost_push(&self.key, self.token));
    }
}
