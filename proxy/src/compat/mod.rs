//! Drop-in compatibility: recognising the lock scripts that existing Redis
//! client libraries send, so they run with quorum semantics.
//!
//! - [`catalogue`]: the known scripts, loaded from `catalogue.toml` (data),
//!   indexed by SHA1 and by a whitespace-normalised form of the text, since
//!   versions of one library differ only in indentation; and the signal-key
//!   conventions that BLPOP waits on.

pub mod catalogue;

pub use catalogue::{Action, Catalogue, Code, Entry, LockKeys, TtlUnit, Word};
