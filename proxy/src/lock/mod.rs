//! The quorum core that every lock kind runs on (docs/design.md, *The
//! algorithm*, *Token rule* and *Amnesia guard*). It knows no kind: the
//! kinds in [`crate::kinds`] plug their scripts, keys and reply decoders
//! into [`round`].
//!
//! - [`engine`]: the masters, the fan-out of one script, deadlines.
//! - [`round`]: the one acquire round every kind uses, the release and
//!   extend tallies, the validity re-check before reply, the background
//!   release of partial grants, and the scripts' shared reply codes.
//! - [`quorum`]: the pure quorum decision.
//! - [`validity`]: the pure validity arithmetic.
//! - [`keys`]: every key name on the masters.
//! - [`signals`]: wake-ups for local waiters when a lock is released.
//! - [`fair`]: per-key FIFO of local waiters (`WAIT` in arrival order).
//! - [`recovery`]: the amnesia guard: detecting masters that forgot their
//!   data, quarantining them and re-seeding their fence floor.
//! - the token-rule model of N masters, which the property tests run.
//!
//! Token proposals live in [`crate::fence`].

pub mod engine;
pub mod fair;
pub mod keys;
mod model;
pub mod quorum;
pub mod recovery;
pub mod round;
pub mod signals;
pub mod validity;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

pub use engine::Engine;
pub use round::AcquireOutcome;

use crate::fence::FencingToken;

/// A lock owner value. Owner values are capabilities (whoever knows one can
/// release the lock), so `Debug` never prints them.
#[derive(Clone, PartialEq, Eq)]
pub struct Owner(pub Bytes);

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Owner(<{} bytes redacted>)", self.0.len())
    }
}

impl Owner {
    /// A fresh random owner: 20 random bytes as 40 hex digits.
    pub fn random() -> Owner {
        let bytes: [u8; 20] = rand::random();
        Owner(Bytes::from(hex::encode(bytes)))
    }
}

/// A quorum grant, not yet reported to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub token: FencingToken,
    /// After this instant the grant must not be relied on.
    pub valid_until: Instant,
    /// When the acquire request began.
    pub start: Instant,
}

/// The outcome of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released,
    /// Not held by this owner on a quorum; `best` is the highest per-master
    /// count of keys deleted (node-redlock style replies use it).
    NotHeld {
        best: i64,
    },
    NoQuorum {
        voted: usize,
        needed: usize,
    },
}

/// The outcome of an extend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtendOutcome {
    Extended {
        validity: Duration,
    },
    NotHeld,
    /// A quorum accepted, but no validity is left.
    Expired,
    NoQuorum {
        voted: usize,
        needed: usize,
    },
}

/// The outcome of a quorum read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    Held {
        owner: Bytes,
        token: FencingToken,
        pttl: Duration,
    },
    Free,
    NoQuorum {
        voted: usize,
        needed: usize,
    },
}

/// The error text for a lost quorum, shared by every command that needs one.
pub fn no_quorum_message(voted: usize, needed: usize) -> String {
    format!("NOQUORUM only {voted} master(s) answered, {needed} needed")
}
