//! Command families, the unit of ACL command permissions: every command the
//! gateway serves belongs to exactly one family, declared in its row of the
//! command registry ([`crate::command::registry`]), and a container's
//! subcommand row (`client|list`) may name another.
//!
//! A command with no row falls back to [`Family::Admin`], so a command added
//! without thinking about ACLs is denied to lock and read users rather than
//! quietly allowed (fail closed).

use bytes::Bytes;

pub use crate::command::registry::Family;
use crate::command::registry::{self, ACL_ONLY_SUBS};

/// The family of a request (`args` non-empty for a useful answer).
pub fn classify(args: &[Bytes]) -> Family {
    let Some(name) = args.first() else {
        return Family::Admin;
    };
    let Some(row) = registry::find(name) else {
        return Family::Admin;
    };
    let Some(sub) = args.get(1) else {
        return row.family;
    };
    if let Some(s) = row.sub(sub) {
        return s.family;
    }
    ACL_ONLY_SUBS
        .iter()
        .find(|(c, s, _)| *c == row.name && s.as_bytes().eq_ignore_ascii_case(sub))
        .map_or(row.family, |(_, _, f)| *f)
}

/// Whether NOPERM names `name` with its subcommand (`client|list`), as
/// Redis does for container commands.
pub fn has_subcommands(name: &[u8]) -> bool {
    registry::find(name).is_some_and(|r| !r.subs.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fam(s: &[&str]) -> Family {
        classify(&crate::command::test_args(s))
    }

    #[test]
    fn lock_commands_are_the_lock_family() {
        assert_eq!(fam(&["LOCK.ACQUIRE", "k", "100"]), Family::Lock);
        assert_eq!(fam(&["lock.release", "k", "o"]), Family::Lock);
        assert_eq!(fam(&["lock.extend", "k", "o", "1"]), Family::Lock);
        assert_eq!(fam(&["set", "k", "v", "nx", "px", "1"]), Family::Lock);
        assert_eq!(fam(&["EVALSHA", "abc", "1", "k"]), Family::Lock);
        assert_eq!(fam(&["eval", "return 1", "0"]), Family::Lock);
        assert_eq!(fam(&["BLPOP", "lock-signal:x", "1"]), Family::Lock);
        assert_eq!(fam(&["SCRIPT", "LOAD", "x"]), Family::Lock);
    }

    #[test]
    fn reads_are_the_read_family() {
        for c in ["GET", "exists", "PTTL", "ttl", "LOCK.STATUS"] {
            assert_eq!(fam(&[c, "k"]), Family::Read, "{c}");
        }
    }

    #[test]
    fn introspection_is_admin_and_subcommands_win() {
        assert_eq!(fam(&["INFO"]), Family::Admin);
        assert_eq!(fam(&["DBSIZE"]), Family::Admin);
        assert_eq!(fam(&["CLIENT", "LIST"]), Family::Admin);
        assert_eq!(fam(&["client", "kill", "x"]), Family::Admin);
        assert_eq!(fam(&["SCRIPT", "FLUSH"]), Family::Admin);
        assert_eq!(fam(&["CLIENT", "SETNAME", "x"]), Family::Connection);
        assert_eq!(fam(&["CLIENT", "ID"]), Family::Connection);
    }

    #[test]
    fn connection_commands_are_always_allowed_family() {
        for c in [
            "PING", "HELLO", "AUTH", "QUIT", "SELECT", "COMMAND", "ECHO", "RESET",
        ] {
            assert_eq!(fam(&[c]), Family::Connection, "{c}");
        }
    }

    #[test]
    fn an_unclassified_command_fails_closed_as_admin() {
        assert_eq!(fam(&["RWLOCK.ACQUIRE", "k"]), Family::Admin);
        assert_eq!(fam(&[]), Family::Admin);
    }

    #[test]
    fn configured_family_names_parse_and_connection_is_not_grantable() {
        assert_eq!(Family::from_config("lock"), Some(Family::Lock));
        assert_eq!(Family::from_config("read"), Some(Family::Read));
        assert_eq!(Family::from_config("admin"), Some(Family::Admin));
        assert_eq!(Family::from_config("connection"), None);
        assert_eq!(Family::from_config("LOCK"), None);
    }
}
