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
    /// What the connection and its user hold, against their caps.
    pub holds: &'a holds::Holds,
    /// The connection sent `LOCK.TOKENS ON`: a RESP3 drop-in grant carries
    /// its token and validity as an attribute.
    pub token_attribute: bool,
}
