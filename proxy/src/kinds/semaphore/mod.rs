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

use crate::kinds::{Keyed, KindCmd};

pub use command::parse;
pub use exec::sem;

/// A parsed `SEM.*` command.
pub type SemCmd = KindCmd<AcquireArgs>;

/// The arguments of this kind's acquire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireArgs {
    pub key: Bytes,
    pub permits: u64,
    pub ttl: Duration,
    pub owner: Option<Bytes>,
    pub wait: Option<Duration>,
}

impl Keyed for AcquireArgs {
    fn key(&self) -> &Bytes {
        &self.key
    }
}
