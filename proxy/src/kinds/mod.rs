//! The lock kinds, one module each: [`plain`] (`LOCK.*`, `KEEPALIVE` and
//! the drop-in `SET NX` and reads), [`reentrant`] (`RLOCK.*`), [`rwlock`]
//! (`RWLOCK.*`) and [`semaphore`] (`SEM.*`). Each kind owns its command
//! enum, its argument parsing, its checks against the configuration, its
//! engine calls and its reply shapes.
//!
//! A kind never sees the server: it runs against a [`Ctx`], which the
//! connection builds for each request from the gateway's shared state, and
//! hands back a [`Response`](crate::response::Response). The bounds every
//! kind applies the same way (key length, TTL, WAIT) are in [`checks`]; the
//! reply shapes several kinds share are in [`replies`]. Each kind's safety
//! argument is in docs/design.md.
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
pub mod plain;
pub mod reentrant;
pub mod replies;
pub mod rwlock;
pub mod semaphore;

use std::sync::Arc;

use crate::config::Config;
use crate::kinds::plain::keepalive::KeepAlives;
use crate::lock::Engine;
use crate::metrics::Metrics;

/// What a kind's command runs against: the engine, the configuration in
/// force when the command started, the metrics it counts into, and the
/// connection it came from.
pub struct Ctx<'a> {
    pub engine: &'a Arc<Engine>,
    pub config: Arc<Config>,
    pub metrics: &'a Metrics,
    /// The connection's keepalive holds (`LOCK.ACQUIRE ... KEEPALIVE`).
    pub keepalive: &'a Arc<KeepAlives>,
    /// The connection sent `LOCK.TOKENS ON`: a RESP3 drop-in grant carries
    /// its token and validity as an attribute.
    pub token_attribute: bool,
}
