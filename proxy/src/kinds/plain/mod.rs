//! The plain lock: one owner at a time, a fencing token per grant.
//!
//! ```text
//! LOCK.ACQUIRE key ttl_ms [OWNER value] [WAIT ms] [KEEPALIVE]
//!                                                   -> [owner, token, validity_ms] | nil
//! LOCK.RELEASE key owner                            -> 1 | 0
//! LOCK.EXTEND  key owner ttl_ms                     -> validity_ms | nil
//! LOCK.STATUS  key                                  -> [owner, token, pttl_ms] | nil
//! ```
//!
//! The same lock answers the drop-in commands lock libraries send to one
//! Redis (`SET key value NX PX ms`, `GET`, `EXISTS`, `PTTL`, `TTL`; parsed
//! in [`crate::kinds::plain::dropin`]), with the replies one Redis would give.
//! [`command`] parses the native commands; [`exec`] checks them against the
//! configuration, runs them on the engine and shapes their replies.

pub mod command;
pub mod dropin;
pub mod exec;
pub mod keepalive;
pub mod masters;

use std::time::Duration;

use bytes::Bytes;

use crate::kinds::{Keyed, KindCmd};

pub use command::parse;
pub use dropin::DropIn;
pub use exec::{dropin, lock};

/// A parsed `LOCK.*` command.
pub type LockCmd = KindCmd<AcquireArgs>;

/// The arguments of this kind's acquire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireArgs {
    pub key: Bytes,
    pub ttl: Duration,
    pub owner: Option<Bytes>,
    pub wait: Option<Duration>,
    /// Renewed by the gateway while the connection lives.
    pub keepalive: bool,
}

impl Keyed for AcquireArgs {
    fn key(&self) -> &Bytes {
        &self.key
    }
}
