//! What the server knows about one client connection: the protocol state
//! its connection task carries ([`ConnState`]) and the entry `CLIENT LIST`
//! shows of it ([`ClientEntry`]).
//!
//! A leaf of the server: the connection task, the local-command answers and
//! authentication all read and write this state, and none of them need each
//! other to do so.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::kinds::holds::Ledger;
use crate::kinds::plain::keepalive::KeepAlives;
use crate::resp::Protocol;

/// What `CLIENT LIST` and `CLIENT INFO` show of a connection.
#[derive(Debug)]
pub struct ClientEntry {
    pub id: u64,
    pub addr: SocketAddr,
    pub created: Instant,
    /// Came in through the TLS listener.
    pub tls: bool,
    pub meta: Mutex<ClientMeta>,
}

/// The mutable part of [`ClientEntry`], written only by its own connection.
#[derive(Debug, Default, Clone)]
pub struct ClientMeta {
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub resp: u8,
    pub last_cmd: &'static str,
}

/// Per-connection protocol state.
pub struct ConnState {
    pub id: u64,
    pub proto: Protocol,
    pub authed: bool,
    /// The user the connection authenticated as; `None` is the default
    /// user of a gateway without authentication.
    pub user: Option<String>,
    /// Failed AUTH attempts on this connection (see [`super::auth`]).
    pub auth_failures: u32,
    /// Set by a failed AUTH: how its reply is delayed, and whether the
    /// connection closes after it.
    pub auth_penalty: Option<Penalty>,
    /// `LOCK.TOKENS ON`: RESP3 `SET NX` grants carry their token.
    pub token_attribute: bool,
    pub entry: Arc<ClientEntry>,
    /// Locks this connection keeps alive; dropped (and released) with it.
    pub keepalive: Arc<KeepAlives>,
    /// What this connection holds, against `limits.max_holds_per_connection`.
    pub holds: Arc<Ledger>,
}

/// What a failed AUTH attempt costs the connection; [`super::auth::penalty`]
/// decides it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Penalty {
    pub delay: Duration,
    pub close: bool,
}

// === impl ClientEntry ===

impl ClientEntry {
    /// The entry of a connection accepted now, speaking RESP2 until HELLO.
    pub fn new(id: u64, addr: SocketAddr, tls: bool) -> Self {
        ClientEntry {
            id,
            addr,
            created: Instant::now(),
            tls,
            meta: Mutex::new(ClientMeta {
                resp: 2,
                ..ClientMeta::default()
            }),
        }
    }
}

// === impl ConnState ===

impl ConnState {
    /// A fresh connection: RESP2, no user, no failures; `authed` when the
    /// gateway asks for no authentication.
    pub fn new(entry: Arc<ClientEntry>, keepalive: Arc<KeepAlives>, authed: bool) -> Self {
        ConnState {
            id: entry.id,
            proto: Protocol::Resp2,
            authed,
            user: None,
            auth_failures: 0,
            auth_penalty: None,
            token_attribute: false,
            entry,
            keepalive,
            holds: Ledger::new(),
        }
    }
}
