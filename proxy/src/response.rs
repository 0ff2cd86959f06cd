//! What a command's execution hands back to the connection: a [`Response`]
//! (a finished reply, or a grant still to be re-checked), the
//! [`GrantShape`] a grant is shown in, and the reply helpers every kind
//! shares (the lost-quorum error, milliseconds as an integer).
//!
//! A grant is not a reply yet: [`Response::Grant`] carries it, as an
//! [`Unreported`] of its kind, to the writer, which has it re-check its
//! validity just before encoding (docs/design.md, *Validity re-check before
//! reply*). This module holds no state and imports only the quorum core's
//! types, so every layer that answers a client can use it, and a new kind
//! needs nothing here.

use std::time::Duration;

use bytes::Bytes;

use crate::lock::{no_quorum_message, Engine, Grant};
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

/// A grant that its client has not been told of yet. Each kind implements
/// it for its own grants, so the writer needs to know no kind.
pub trait Unreported: Send + 'static {
    /// Called by the writer just before the reply is encoded: re-checks the
    /// grant's validity now, releases it on the masters if it ran out (or
    /// starts what a reported grant starts, such as keepalive renewal), and
    /// returns the reply the client gets.
    fn report(self: Box<Self>, engine: &Engine) -> Reply;
}

/// A reply owed to a client.
pub enum Response {
    Reply(Reply),
    /// A grant, re-checked by the writer (see [`Unreported`]).
    Grant(Box<dyn Unreported>),
    /// `+OK`, then close the connection.
    Quit,
}

impl Response {
    /// A grant still to be reported.
    pub fn grant(g: impl Unreported) -> Response {
        Response::Grant(Box::new(g))
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Response::Reply(r) => f.debug_tuple("Reply").field(r).finish(),
            // Owners are capabilities: never printed.
            Response::Grant(_) => f.write_str("Grant(<unreported>)"),
            Response::Quit => f.write_str("Quit"),
        }
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
