//! Client-side RESP: request framing (RESP2 multibulk and inline commands)
//! under explicit [`Limits`], and reply encoding for RESP2 and RESP3.
//!
//! - [`request`]: framing with limits, never panicking on any input.
//! - [`reply`]: encoding, with RESP3 types degraded on RESP2 connections.

pub mod reply;
pub mod request;

#[cfg(test)]
mod tests;

use bytes::Bytes;

pub use crate::config::Limits;
use crate::metrics::Limit;

/// The protocol a connection speaks, switched by `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// A request the client got wrong at the framing level. Redis answers these
/// with `-ERR Protocol error: ...` and closes the connection; so do we.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The full message after `ERR `, e.g. `Protocol error: invalid bulk length`.
    #[error("{0}")]
    Invalid(String),
    /// Well-formed so far, but past a configured limit; the message is as
    /// for [`ProtocolError::Invalid`], and `limit` feeds the metric.
    #[error("{msg}")]
    Limit { limit: Limit, msg: String },
}

impl ProtocolError {
    /// The configured limit this error enforces, if any.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            ProtocolError::Invalid(_) => None,
            ProtocolError::Limit { limit, .. } => Some(*limit),
        }
    }
}

pub use request::parse_request;

/// A reply to a client, encoded for the connection's protocol at write time.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`
    Ok,
    /// A simple string (`+...`).
    Simple(Bytes),
    /// An error; the text includes its code, e.g. `ERR unknown command 'X'`
    /// or `NOSCRIPT No matching script. Please use EVAL.`
    Error(Bytes),
    Int(i64),
    Bulk(Bytes),
    /// Null bulk: `$-1` on RESP2, `_` on RESP3.
    Nil,
    /// Null array: `*-1` on RESP2, `_` on RESP3.
    NilArray,
    Array(Vec<Reply>),
    /// RESP3 map; a flat array of key, value on RESP2.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 set; an array on RESP2.
    Set(Vec<Reply>),
    /// RESP3 double; a bulk string on RESP2.
    Double(f64),
    /// RESP3 boolean; integer 1/0 on RESP2.
    Bool(bool),
    /// RESP3 verbatim string with its 3-byte format (`txt`); bulk on RESP2.
    Verbatim(Bytes),
    /// RESP3 push; never sent on RESP2 connections.
    Push(Vec<Reply>),
    /// RESP3 attribute map ahead of a reply; RESP2 sends the reply alone.
    Attributed(Vec<(Reply, Reply)>, Box<Reply>),
}

impl Reply {
    /// An error reply; CR and LF in `msg` are replaced by spaces.
    pub fn error(msg: impl Into<String>) -> Reply {
        let s: String = msg.into();
        Reply::Error(Bytes::from(s.replace(['\r', '\n'], " ")))
    }

    pub fn simple(s: &'static str) -> Reply {
        Reply::Simple(Bytes::from_static(s.as_bytes()))
    }

    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }
}
