//! Master identity: one Redis server casts one vote, however many configured
//! addresses reach it (`127.0.0.1:P` and `localhost:P`, a DNS alias, a load
//! balancer in front of one server).
//!
//! Every connection learns the server's `run_id` from `INFO server` during
//! its handshake. `run_id` is random per server process, so two connections
//! reporting the same one reach the same process and the same data. The
//! port is deliberately not part of the identity: one process listening on
//! a plain and a TLS port is still one server; it is only shown in messages.
//!
//! # Claims
//! Before a connection turns `Up`, its master *claims* the run id in the
//! gateway's [`Peers`]. The first claim wins; a later claim of a run id
//! already held marks its master `duplicate`, which does not vote, before
//! that master ever turns up, so no acquire round can count the server
//! twice. A claim is given up only once its connection is gone and every
//! reply it could still deliver has been failed (the end of
//! `conn::serve`); the lowest-indexed duplicate of the same run id then
//! takes the claim over and regains its vote. At start-up the gateway
//! refuses to serve while any master is a duplicate
//! ([`super::refuse_duplicates`]).
//!
//! # Concurrency note
//! Claims are serialised by the `Peers` mutex; a master's state changes
//! under its own link lock, always taken after the `Peers` mutex, never
//! before.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tracing::{info, warn};

use super::policy::printable;
use super::{Shared, Value};

/// What a server says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerId {
    pub run_id: String,
    /// `tcp_port` from the same reply, for messages only.
    pub port: Option<u16>,
}

impl ServerId {
    /// Reads `run_id` and `tcp_port` from an `INFO server` reply. `None`
    /// when there is no well-formed run id: a server that cannot say who
    /// it is cannot be told apart from another address of itself.
    pub fn from_info(reply: &Value) -> Option<ServerId> {
        let Value::Bulk(text) = reply else {
            return None;
        };
        let mut run_id = None;
        let mut port = None;
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(v) = line.strip_prefix(b"run_id:") {
                // Redis sends 40 hex digits; anything else is not an id
                // worth comparing (and never a string worth logging whole).
                if !v.is_empty() && v.len() <= 64 && v.iter().all(u8::is_ascii_alphanumeric) {
                    run_id = Some(printable(v));
                }
            } else if let Some(v) = line.strip_prefix(b"tcp_port:") {
                port = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
            }
        }
        run_id.map(|run_id| ServerId { run_id, port })
    }

    /// `run_id 1a2b3c4d…, tcp_port 6379`, for messages.
    pub fn describe(&self) -> String {
        let short: String = self.run_id.chars().take(12).collect();
        match self.port {
            Some(p) => format!("run_id {short}…, tcp_port {p}"),
            None => format!("run_id {short}…"),
        }
    }
}

/// The claims of one gateway's masters.
#[derive(Default)]
pub struct Peers {
    seats: Mutex<Vec<Seat>>,
}

/// One master's connection, with the server it reached.
struct Seat {
    index: usize,
    id: ServerId,
    /// Holds the server's vote; otherwise a duplicate waiting for it.
    holder: bool,
    shared: Weak<Shared>,
}

// === impl Peers ===

impl Peers {
    fn lock(&self) -> MutexGuard<'_, Vec<Seat>> {
        // Nothing panics while holding it; the seats stay consistent.
        self.seats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Master `index` connected to the server `id`. Marks it duplicate
    /// (and returns the name of the master holding the server's vote) when
    /// another master already holds it.
    pub(crate) fn claim(
        &self,
        index: usize,
        shared: &Arc<Shared>,
        id: &ServerId,
    ) -> Option<String> {
        let mut seats = self.lock();
        // A seat of a master dropped without giving its claim up (its task
        // ended with the runtime) holds nothing.
        seats.retain(|s| s.index != index && s.shared.strong_count() > 0);
        let holder = seats
            .iter()
            .find(|s| s.holder && s.id.run_id == id.run_id)
            .and_then(|s| s.shared.upgrade());
        let me = Seat {
            index,
            id: id.clone(),
            holder: holder.is_none(),
            shared: Arc::downgrade(shared),
        };
        seats.push(me);
        match holder {
            Some(h) => {
                let name = h.name().to_string();
                warn!(
                    master = %shared.name(),
                    same_as = %name,
                    server = %id.describe(),
                    "two configured masters reach the same Redis server: this one does not vote \
                     (one server, one vote); list each server once"
                );
                shared.set_duplicate(Some(name.clone()));
                Some(name)
            }
            None => {
                shared.set_duplicate(None);
                None
            }
        }
    }

    /// Master `index`'s connection is gone. When it held its server's
    /// vote, the first duplicate of that server takes it over.
    pub(crate) fn release(&self, index: usize) {
        let mut seats = self.lock();
        let Some(pos) = seats.iter().position(|s| s.index == index) else {
            return;
        };
        let gone = seats.remove(pos);
        if !gone.holder {
            return;
        }
        let heir = seats
            .iter_mut()
            .filter(|s| s.id.run_id == gone.id.run_id)
            .min_by_key(|s| s.index);
        if let Some(heir) = heir {
            heir.holder = true;
            if let Some(shared) = heir.shared.upgrade() {
                info!(
                    master = %shared.name(),
                    server = %heir.id.describe(),
                    "no other configured master reaches this server any more: it votes again"
                );
                shared.set_duplicate(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn the_run_id_is_read_from_info_server() {
        let info = Value::Bulk(Bytes::from_static(
            b"# Server\r\nredis_version:7.0.15\r\nrun_id:4218936d0ee39c4bfd730a2aa73b804bce5218fe\r\n\
              tcp_port:7391\r\n",
        ));
        let id = ServerId::from_info(&info).expect("an id");
        assert_eq!(id.run_id, "4218936d0ee39c4bfd730a2aa73b804bce5218fe");
        assert_eq!(id.port, Some(7391));
        assert!(id.describe().contains("tcp_port 7391"));
    }

    #[test]
    fn no_well_formed_run_id_is_no_identity() {
        for info in [
            Value::Nil,
            Value::Int(1),
            Value::Bulk(Bytes::from_static(b"# Server\r\ntcp_port:1\r\n")),
            Value::Bulk(Bytes::from_static(b"run_id:\r\n")),
            Value::Bulk(Bytes::from_static(b"run_id:ab cd\r\n")),
            Value::Bulk(Bytes::from_static(b"run_id:\xff\xfe\r\n")),
        ] {
            assert_eq!(ServerId::from_info(&info), None, "{info:?}");
        }
    }
}
