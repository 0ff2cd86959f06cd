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

pub use command::parse;
pub use dropin::DropIn;
pub use exec::{dropin, lock};

/// A parsed `LOCK.*` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockCmd {
    Acquire {
        key: Bytes,
        ttl: Duration,
        owner: Option<Bytes>,
        wait: Option<Duration>,
        /// Renewed by the gateway while the connection lives.
        keepalive: bool,
    },
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

impl LockCmd {
    /// The keys the command touches, for per-connection ordering.
    pub fn keys(&self) -> Vec<Bytes> {
        match self {
            LockCmd::Acquire { key, .. }
            | LockCmd::Release { key, .. }
            | LockCmd::Extend { key, .. }
            | LockCmd::Status { key } => vec![key.clone()],
        }
    }
}
