//! Command families, the unit of ACL command permissions: every command the
//! gateway serves belongs to exactly one family, looked up in [`TABLE`].
//!
//! Classifying a new command is one row in [`TABLE`]: its lowercase name,
//! optionally a subcommand (`client|list`), and its family. A command with
//! no row falls back to [`Family::Admin`], so a command added without
//! thinking about ACLs is denied to lock and read users rather than quietly
//! allowed (fail closed).

use bytes::Bytes;

/// What a user may be allowed to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Handshake and per-connection state (PING, HELLO, AUTH, CLIENT
    /// SETNAME ...): allowed to every authenticated user.
    Connection,
    /// Takes, extends or releases locks.
    Lock,
    /// Reads lock state.
    Read,
    /// Gateway introspection and administration.
    Admin,
}

/// Rows of (command, subcommand, family); a row with a subcommand wins over
/// the command's own row.
pub const TABLE: &[(&str, Option<&str>, Family)] = &[
    ("ping", None, Family::Connection),
    ("echo", None, Family::Connection),
    ("hello", None, Family::Connection),
    ("auth", None, Family::Connection),
    ("quit", None, Family::Connection),
    ("reset", None, Family::Connection),
    ("select", None, Family::Connection),
    ("command", None, Family::Connection),
    ("time", None, Family::Connection),
    ("lock.tokens", None, Family::Connection),
    ("client", None, Family::Connection),
    ("client", Some("list"), Family::Admin),
    ("client", Some("kill"), Family::Admin),
    ("lock.acquire", None, Family::Lock),
    ("lock.release", None, Family::Lock),
    ("lock.extend", None, Family::Lock),
    ("rwlock.read", None, Family::Lock),
    ("rwlock.write", None, Family::Lock),
    ("rwlock.release", None, Family::Lock),
    ("rwlock.extend", None, Family::Lock),
    ("rlock.acquire", None, Family::Lock),
    ("rlock.release", None, Family::Lock),
    ("rlock.extend", None, Family::Lock),
    ("sem.acquire", None, Family::Lock),
    ("sem.release", None, Family::Lock),
    ("sem.extend", None, Family::Lock),
    ("set", None, Family::Lock),
    ("eval", None, Family::Lock),
    ("evalsha", None, Family::Lock),
    ("eval_ro", None, Family::Lock),
    ("evalsha_ro", None, Family::Lock),
    ("blpop", None, Family::Lock),
    ("script", None, Family::Lock),
    ("script", Some("flush"), Family::Admin),
    ("get", None, Family::Read),
    ("exists", None, Family::Read),
    ("pttl", None, Family::Read),
    ("ttl", None, Family::Read),
    ("lock.status", None, Family::Read),
    ("rwlock.status", None, Family::Read),
    ("sem.status", None, Family::Read),
    ("rlock.status", None, Family::Read),
    ("info", None, Family::Admin),
    ("dbsize", None, Family::Admin),
];

// === impl Family ===

impl Family {
    /// The name used in the configuration (`commands = ["lock", ...]`).
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Connection => "connection",
            Family::Lock => "lock",
            Family::Read => "read",
            Family::Admin => "admin",
        }
    }

    /// Parses a configured family name; `connection` is implied and cannot
    /// be granted or withheld.
    pub fn from_config(s: &str) -> Option<Family> {
        match s {
            "lock" => Some(Family::Lock),
            "read" => Some(Family::Read),
            "admin" => Some(Family::Admin),
            _ => None,
        }
    }
}

/// The family of a request (`args` non-empty for a useful answer).
pub fn classify(args: &[Bytes]) -> Family {
    let Some(name) = args.first() else {
        return Family::Admin;
    };
    let sub = args.get(1);
    let mut found = None;
    for (cmd, s, fam) in TABLE {
        if !cmd.as_bytes().eq_ignore_ascii_case(name) {
            continue;
        }
        match (s, sub) {
            (Some(s), Some(a)) if s.as_bytes().eq_ignore_ascii_case(a) => return *fam,
            (None, _) => found = Some(*fam),
            _ => {}
        }
    }
    found.unwrap_or(Family::Admin)
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
