//! What `INFO replication` says about a server's past.
//!
//! A replica promoted with `REPLICAOF NO ONE` (by an operator or a failover
//! tool) carries its old master's data, metadata record included, but may
//! lack the old master's last writes: replication is asynchronous. For the
//! gateway that is an empty restart in disguise. Redis shows the promotion:
//! the promoted server starts a new replication id (`master_replid`) and
//! keeps the one it replicated under as `master_replid2`, valid from
//! `second_repl_offset`. A master that restarts from its own AOF or RDB
//! starts with `master_replid2` all zeros and `second_repl_offset:-1`
//! (checked against redis-server 7.0).
//!
//! The metadata record keeps the `master_replid` of the server it was
//! written (or last confirmed) on, so a server whose `master_replid2` is set
//! and whose record names a replication id other than its current one took
//! over another server's history since then: it was promoted. Once the
//! gateway re-seeds it, the record names the new id and it is a master like
//! any other.

use super::policy::printable;
use super::Value;

/// The fields of `INFO replication` the gateway reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    /// `role:master`.
    pub master: bool,
    /// `master_replid`.
    pub replid: String,
    /// `master_replid2`, `None` when all zeros or `second_repl_offset` is -1.
    pub replid2: Option<String>,
}

fn well_formed(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= 64 && v.iter().all(u8::is_ascii_alphanumeric)
}

impl Replication {
    /// Parses an `INFO replication` reply; `None` when it carries no role or
    /// no well-formed replication id.
    pub fn from_info(reply: &Value) -> Option<Replication> {
        let Value::Bulk(text) = reply else {
            return None;
        };
        let mut role = None;
        let mut replid = None;
        let mut replid2 = None;
        let mut second_offset_valid = true;
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(v) = line.strip_prefix(b"role:") {
                role = Some(v == b"master");
            } else if let Some(v) = line.strip_prefix(b"master_replid:") {
                if well_formed(v) {
                    replid = Some(printable(v));
                }
            } else if let Some(v) = line.strip_prefix(b"master_replid2:") {
                if well_formed(v) && v.iter().any(|&b| b != b'0') {
                    replid2 = Some(printable(v));
                }
            } else if let Some(v) = line.strip_prefix(b"second_repl_offset:") {
                second_offset_valid = v != b"-1";
            }
        }
        Some(Replication {
            master: role?,
            replid: replid?,
            replid2: replid2.filter(|_| second_offset_valid),
        })
    }

    /// Whether this server took over another server's replication history
    /// since a record stamped with `recorded` (a `master_replid`, empty when
    /// the record carries none) was written on it.
    pub fn promoted_since(&self, recorded: &str) -> bool {
        self.replid2.is_some() && recorded != self.replid
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn info(s: &'static str) -> Value {
        Value::Bulk(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn a_promoted_replica_shows_its_old_history() {
        let r = Replication::from_info(&info(
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\
             master_replid:456ba14809245a503d6a73d1428158c493f6da24\r\n\
             master_replid2:0f89099418ce253f9fc8c892c34906f3abb2112b\r\n\
             master_repl_offset:0\r\nsecond_repl_offset:1\r\n",
        ))
        .expect("parsed");
        assert!(r.master);
        assert_eq!(
            r.replid2.as_deref(),
            Some("0f89099418ce253f9fc8c892c34906f3abb2112b")
        );
        // Stamped on the old master (or as a replica): promoted since.
        assert!(r.promoted_since("0f89099418ce253f9fc8c892c34906f3abb2112b"));
        assert!(r.promoted_since(""));
        // Re-seeded after the promotion: the record names the new id.
        assert!(!r.promoted_since("456ba14809245a503d6a73d1428158c493f6da24"));
    }

    #[test]
    fn a_restarted_master_has_no_second_history() {
        let r = Replication::from_info(&info(
            "role:master\r\nmaster_replid:9bc9b4d95138da1e89386107115d6db344e48c28\r\n\
             master_replid2:0000000000000000000000000000000000000000\r\n\
             second_repl_offset:-1\r\n",
        ))
        .expect("parsed");
        assert_eq!(r.replid2, None);
        assert!(!r.promoted_since("f1482c82fa17237405f29313c159ecef51d97a69"));
        assert!(!r.promoted_since(""));
    }

    #[test]
    fn malformed_replies_are_no_reading() {
        for v in [
            Value::Nil,
            info("role:master\r\n"),
            info("master_replid:abc\r\n"),
            info("role:master\r\nmaster_replid:ab cd\r\n"),
        ] {
            assert_eq!(Replication::from_info(&v), None, "{v:?}");
        }
        let r = Replication::from_info(&info("role:slave\r\nmaster_replid:ab\r\n")).expect("a");
        assert!(!r.master);
    }
}
