//! The reentrant lock: its owner may take it again while holding it, and
//! it is free once every hold is released.
//!
//! ```text
//! RLOCK.ACQUIRE key ttl_ms OWNER value [WAIT ms]    -> [owner, token, validity_ms, holds] | nil
//! RLOCK.RELEASE key owner                           -> holds left | nil
//! RLOCK.EXTEND  key owner ttl_ms                    -> validity_ms | nil
//! RLOCK.STATUS  key                                 -> [owner, token, pttl_ms, holds] | nil
//! ```
//!
//! Reentrancy is by owner, so OWNER is required, and holds are renewed by
//! their owner, never by the gateway (no KEEPALIVE). Bounds (key length,
//! TTL, WAIT) are the plain lock's. [`command`] parses; [`exec`] checks,
//! runs and shapes the replies.

pub mod command;
pub mod exec;
pub mod masters;
mod model;

use std::time::Duration;

use bytes::Bytes;

use crate::kinds::{Keyed, KindCmd};

pub use command::parse;
pub use exec::reentrant;

/// A parsed `RLOCK.*` command.
pub type ReentrantCmd = KindCmd<AcquireArgs>;

/// The arguments of this kind's acquire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireArgs {
    pub key: Bytes,
    pub ttl: Duration,
    pub owner: Bytes,
    pub wait: Option<Duration>,
}

impl Keyed for AcquireArgs {
    fn key(&self) -> &Bytes {
        &self.key
    }
}
