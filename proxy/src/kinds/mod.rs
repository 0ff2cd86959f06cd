//! The lock kinds, one module each: [`plain`] (`LOCK.*`, `KEEPALIVE` and
//! the drop-in `SET NX` and reads), [`reentrant`] (`RLOCK.*`), [`rwlock`]
//! (`RWLOCK.*`) and [`semaphore`] (`SEM.*`). Each kind owns its command
//! enum, its argument parsing, its checks against the configuration, its
//! engine calls and its reply shapes.
//!
//! A kind never sees the server: it runs against a [`Ctx`], which the
//! connection builds for each request from the gateway's shared state, and
//! hands back a [`Response`](crate::response::Response). The bounds every
//! kind applies the same way (key and owner length, TTL, WAIT, the holds a
//! connection and a user may have) are in [`checks`], the ledger of holds
//! in [`holds`]; the reply shapes several kinds share are in [`replies`].
//! Each kind's safety argument is in docs/design.md.
//!
//! # Bounded state, and tokens that still rise
//! Every key a kind's scripts create on a master expires: lock keys and
//! hold counts with the lease, holder sets, token hashes, slots and permit
//! counts one lease after their last member's grant or extend, the
//! writer-intent marker on its own PX, and the key's fence register
//! `max(R, ttl)` after the key's last grant or extend (R is
//! `lock.fence_retention_ms`; an extend or a reentry lengthens a register
//! with the lease, never shortens it). Only the master's metadata record
//! stays. Every kind's acquire script reads a missing register as the
//! high-water mark of the key's bucket (a field of the record chosen by the
//! SHA1 of the register's name, raised by every grant of the bucket's keys;
//! the record's floor while unwritten), so a key whose register expired
//! still needs a token above every token that master ever accepted for it.
//! Any two quorums share a master, so any two grants of a key were both
//! accepted by one master, the later one above the earlier: tokens never
//! repeat and never go back, with no clock assumed (docs/design.md, *Token
//! rule*). The script's stale reply carries that mark, so the next round
//! proposes above it.

pub mod checks;
#[cfg(test)]
mod contract;
pub mod holders;
pub mod holds;
pub mod plain;
pub mod reentrant;
pub mod replies;
pub mod rwlock;
pub mod semaphore;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::args::{is, key_only, key_owner, key_owner_ttl};
use crate::config::Config;
use crate::kinds::plain::keepalive::KeepAlives;
use crate::lock::Engine;
use crate::metrics::Metrics;
use crate::resp::Reply;

/// What a kind's command runs against: the engine, the configuration in
/// force when the command started, the metrics it counts into, and the
/// connection it came from.
pub struct Ctx<'a> {
    pub engine: &'a Arc<Engine>,
    pub config: Arc<Config>,
    pub metrics: &'a Metrics,
    /// The connection's keepalive holds (`LOCK.ACQUIRE ... KEEPALIVE`).
    pub keepalive: &'a Arc<KeepAlives>,
    /// What the connection and its user hold, against their caps.
    pub holds: &'a holds::Holds,
    /// The connection sent `LOCK.TOKENS ON`: a RESP3 drop-in grant carries
    /// its token and validity as an attribute.
    pub token_attribute: bool,
}

/// A parsed command of one lock kind: the kind's own acquire `A`, and the
/// release, extend and status that every kind shares in shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindCmd<A> {
    Acquire(A),
    Release {
        key: Bytes,
        owner: Bytes,
    },
    Extend {
        key: Bytes,
        owner: Bytes,
        ttl: Duration,
    },
    Status {
        key: Bytes,
    },
}

/// The one key a kind's acquire locks.
pub trait Keyed {
    fn key(&self) -> &Bytes;
}

impl<A: Keyed> KindCmd<A> {
    /// The key the command touches.
    pub fn key(&self) -> &Bytes {
        match self {
            KindCmd::Acquire(a) => a.key(),
            KindCmd::Release { key, .. }
            | KindCmd::Extend { key, .. }
            | KindCmd::Status { key } => key,
        }
    }

    /// The keys the command touches, for per-connection ordering.
    pub fn keys(&self) -> Vec<Bytes> {
        vec![self.key().clone()]
    }
}

/// The names of a kind's release, extend and status commands, in lowercase
/// as its errors show them.
pub struct SharedNames {
    pub release: &'static str,
    pub extend: &'static str,
    pub status: &'static str,
}

/// Parses `release key owner`, `extend key owner ttl_ms` and `status key`
/// under a kind's `names`; `Ok(None)` for any other name, so the kind's
/// parser goes on to its acquire.
pub fn parse_shared<A>(
    names: &SharedNames,
    name: &[u8],
    args: &[Bytes],
) -> Result<Option<KindCmd<A>>, Reply> {
    if is(name, names.release) {
        let (key, owner) = key_owner(args, names.release)?;
        return Ok(Some(KindCmd::Release { key, owner }));
    }
    if is(name, names.extend) {
        let (key, owner, ttl) = key_owner_ttl(args, names.extend)?;
        return Ok(Some(KindCmd::Extend { key, owner, ttl }));
    }
    if is(name, names.status) {
        let key = key_only(args, names.status)?;
        return Ok(Some(KindCmd::Status { key }));
    }
    Ok(None)
}
