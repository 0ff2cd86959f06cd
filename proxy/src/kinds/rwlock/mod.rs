//! The read-write lock: many readers or one writer, and a waiting writer
//! keeps new readers out so it is not starved.
//!
//! ```text
//! RWLOCK.READ    key ttl_ms [OWNER value] [WAIT ms] -> [owner, token, validity_ms] | nil
//! RWLOCK.WRITE   key ttl_ms [OWNER value] [WAIT ms] -> [owner, token, validity_ms] | nil
//! RWLOCK.RELEASE key owner                          -> 1 | 0
//! RWLOCK.EXTEND  key owner ttl_ms                   -> validity_ms | nil
//! RWLOCK.STATUS  key                                -> [writer | nil, [reader ...], writer_waiting]
//! ```
//!
//! Bounds are the plain lock's: key length, TTL within `[min_ttl,
//! max_ttl]`, WAIT at most `max_wait`. [`command`] parses; [`exec`] checks,
//! runs and shapes the replies.

pub mod command;
pub mod exec;
pub mod masters;

use std::time::Duration;

use bytes::Bytes;

use crate::kinds::rwlock::masters::RwMode;

pub use command::parse;
pub use exec::rwlock;

/// A parsed `RWLOCK.*` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RwCmd {
    Acquire {
        key: Bytes,
        mode: RwMode,
        ttl: Duration,
        owner: Option<Bytes>,
        wait: Option<Duration>,
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

impl RwCmd {
    /// The keys the command touches, for per-connection ordering.
    pub fn keys(&self) -> Vec<Bytes> {
        match self {
            RwCmd::Acquire { key, .. }
            | RwCmd::Release { key, .. }
            | RwCmd::Extend { key, .. }
            | RwCmd::Status { key } => vec![key.clone()],
        }
    }

    /// The command's name as errors show it.
    pub fn name(&self) -> &'static str {
        match self {
            RwCmd::Acquire {
                mode: RwMode::Read, ..
            } => "rwlock.read",
            RwCmd::Acquire { .. } => "rwlock.write",
            RwCmd::Release { .. } => "rwlock.release",
            RwCmd::Extend { .. } => "rwlock.extend",
            RwCmd::Status { .. } => "rwlock.status",
        }
    }
}
