//! What a command's execution hands back to the connection: a [`Response`]
//! (a finished reply, or a grant still to be re-checked), the
//! [`GrantShape`] a grant is shown in, and the reply helpers every kind
//! shares (the lost-quorum error, milliseconds as an integer).
//!
//! A grant is not a reply yet: [`Response::Grant`] and its siblings carry it
//! to the writer, which re-checks validity just before encoding
//! (docs/design.md, *Validity re-check before reply*) and then shapes it
//! with [`GrantShape::reply`]. This module holds no state and imports
//! nothing of the server, so every layer that answers a client can use it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::lock::holders::HolderKeys;
use crate::lock::keepalive::KeepAlives;
use crate::lock::{no_quorum_message, Grant};
use crate::metrics::Op;
use crate::resp::Reply;

/// How a grant is shown to the client that asked for it.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantShape {
    /// `[owner, token, validity_ms]`, or a null array when expired.
    Native,
    /// `+OK`, or nil when expired (drop-in `SET NX`). With `attribute`, a
    /// RESP3 connection also gets the token and validity as an attribute.
    SetOk { attribute: bool },
    /// A catalogued script's own replies for success and for a grant that
    /// expired before it could be reported.
    Script { ok: Reply, expired: Reply },
}

/// A reply owed to a client.
#[derive(Debug)]
pub enum Response {
    Reply(Reply),
    Grant {
        grant: Grant,
        keys: Vec<Bytes>,
        owner: Bytes,
        shape: GrantShape,
    },
    /// A read-write lock or semaphore grant, shown as `[owner, token,
    /// validity_ms]` and re-checked like [`Response::Grant`].
    HolderGrant {
        op: Op,
        grant: Grant,
        keys: HolderKeys,
        owner: Bytes,
    },
    /// `+OK`, then close the connection.
    Quit,
    /// A `KEEPALIVE` grant: answered like [`Response::Grant`] with the
    /// native shape, and renewed from the moment it is reported.
    Kept {
        grant: Grant,
        key: Bytes,
        owner: Bytes,
        ttl: Duration,
        set: Arc<KeepAlives>,
    },
    /// A reentrant grant: `[owner, token, validity_ms, holds]`.
    Reentrant {
        grant: Grant,
        key: Bytes,
        owner: Bytes,
        holds: u64,
    },
}

impl std::fmt::Debug for KeepAlives {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeepAlives({} holds)", self.len())
    }
}

// === impl GrantShape ===

impl GrantShape {
    /// The reply for `grant` with `left` validity after the re-check
    /// (`None`: it ran out and was released).
    pub fn reply(&self, left: Option<Duration>, owner: &Bytes, grant: &Grant) -> Reply {
        let token = int(grant.token.0);
        match (self, left) {
            (GrantShape::Native, Some(d)) => {
                Reply::Array(vec![Reply::Bulk(owner.clone()), token, ms_reply(d)])
            }
            (GrantShape::Native, None) => Reply::NilArray,
            (GrantShape::SetOk { attribute: true }, Some(d)) => Reply::Attributed(
                vec![
                    (Reply::bulk("token"), token),
                    (Reply::bulk("validity_ms"), ms_reply(d)),
                ],
                Box::new(Reply::Ok),
            ),
            (GrantShape::SetOk { .. }, Some(_)) => Reply::Ok,
            (GrantShape::SetOk { .. }, None) => Reply::Nil,
            (GrantShape::Script { ok, .. }, Some(_)) => ok.clone(),
            (GrantShape::Script { expired, .. }, None) => expired.clone(),
        }
    }
}

/// The reentrant grant's reply: `[owner, token, validity_ms, holds]`, or a
/// null array when no validity is `left`.
pub fn reentrant_reply(left: Option<Duration>, owner: Bytes, grant: &Grant, holds: u64) -> Reply {
    match left {
        Some(d) => Reply::Array(vec![
            Reply::Bulk(owner),
            int(grant.token.0),
            ms_reply(d),
            int(holds),
        ]),
        None => Reply::NilArray,
    }
}

/// The error for an operation that did not reach a quorum of masters.
pub fn no_quorum(voted: usize, needed: usize) -> Reply {
    Reply::error(no_quorum_message(voted, needed))
}

/// A duration as whole milliseconds (saturating).
pub fn ms_reply(d: Duration) -> Reply {
    Reply::Int(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An unsigned count or token as an integer reply (saturating).
pub fn int(n: u64) -> Reply {
    Reply::Int(i64::try_from(n).unwrap_or(i64::MAX))
}
