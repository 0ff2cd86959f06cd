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
use crate::kinds::{Keyed, KindCmd};

pub use command::parse;
pub use exec::rwlock;

/// A parsed `RWLOCK.*` command.
pub type RwCmd = KindCmd<AcquireArgs>;

/// The arguments of this kind's acquire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireArgs {
    pub key: Bytes,
    pub mode: RwMode,
    pub ttl: Duration,
    pub owner: Option<Bytes>,
    pub wait: Option<Duration>,
}

impl Keyed for AcquireArgs {
    fn key(&self) -> &Bytes {
        &self.key
    }
}

impl RwCmd {
    /// The command's name as errors show it.
    pub fn name(&self) -> &'static str {
        match self {
            RwCmd::Acquire(AcquireArgs {
                mode: RwMode::Read, ..
            }) => "rwlock.read",
            RwCmd::Acquire(AcquireArgs { .. }) => "rwlock.write",
            RwCmd::Release { .. } => "rwlock.release",
            RwCmd::Extend { .. } => "rwlock.extend",
            RwCmd::Status { .. } => "rwlock.status",
        }
    }
}
