//! The counting semaphore: up to `permits` holders at once, each with its
//! own fencing token.
//!
//! ```text
//! SEM.ACQUIRE key permits ttl_ms [OWNER value] [WAIT ms] -> [owner, token, validity_ms] | nil
//! SEM.RELEASE key owner                                  -> 1 | 0
//! SEM.EXTEND  key owner ttl_ms                           -> validity_ms | nil
//! SEM.STATUS  key                                        -> [permits, free, [holder ...]]
//! ```
//!
//! `permits` lies in 1..=[`MAX_PERMITS`](crate::kinds::semaphore::masters::MAX_PERMITS);
//! the other bounds are the plain lock's. [`command`] parses; [`exec`]
//! checks, runs and shapes the replies.

pub mod command;
pub mod exec;
pub mod masters;

use std::time::Duration;

use bytes::Bytes;

pub use command::parse;
pub use exec::sem;

/// A parsed `SEM.*` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SemCmd {
    Acquire {
        key: Bytes,
        permits: u64,
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

impl SemCmd {
    /// The keys the command touches, for per-connection ordering.
    pub fn keys(&self) -> Vec<Bytes> {
        match self {
            SemCmd::Acquire { key, .. }
            | SemCmd::Release { key, .. }
            | SemCmd::Extend { key, .. }
            | SemCmd::Status { key } => vec![key.clone()],
        }
    }
}
