//! The command registry: every command the gateway serves, declared once.
//!
//! A [`Command`] row holds what every other part needs to know about a
//! command: its name, its arity and flags as Redis reports them in
//! `COMMAND INFO`, its ACL [`Family`] (with per-subcommand families for the
//! container commands), where its keys are, a summary for `COMMAND DOCS`
//! and the README, the [`Route`] to its parser, and whether it has its own
//! [`Metric`] label. Parsing dispatches by row ([`super::parse`]), the ACL
//! classifies by row ([`crate::acl::classify`]), `COMMAND` answers from the
//! rows, the per-command counters are made from them, and a test checks the
//! README's command reference against them. Adding a command is one row
//! here plus its parser.
//!
//! [`UNSUPPORTED`] lists Redis commands deliberately not served, so that
//! they get a clearer error than "unknown command".

/// What a user may be allowed to run: the unit of ACL command permissions.
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

impl Family {
    /// Every family, in the order the README lists them.
    pub const ALL: [Family; 4] = [
        Family::Connection,
        Family::Lock,
        Family::Read,
        Family::Admin,
    ];

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

    /// The Redis ACL category closest to the family, for `COMMAND INFO`.
    fn category(self) -> &'static str {
        match self {
            Family::Connection => "@connection",
            Family::Lock => "@write",
            Family::Read => "@read",
            Family::Admin => "@admin",
        }
    }
}

/// Which parser classifies a command; [`super::parse`] holds the one
/// `match` from a route to its parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Answered by the gateway itself.
    Local,
    /// `LOCK.*`: plain exclusive locks.
    Plain,
    /// `RLOCK.*`: reentrant locks.
    Reentrant,
    /// `RWLOCK.*`: read-write locks.
    RwLock,
    /// `SEM.*`: counting semaphores.
    Semaphore,
    /// What lock libraries send to a single Redis (`SET NX`, `GET` ...).
    DropIn,
    /// `EVAL`, `EVALSHA` and `SCRIPT`.
    Script,
}

/// The `lockgate_commands_total` label a command counts under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Its own lowercase name.
    Own,
    /// Folded into `other` with unknown names.
    Other,
}

/// Where a command's keys are, as a Redis 7 key specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// No keys.
    None,
    /// Keys from argument `index`; `last` is relative to it as in Redis
    /// (`0` this one only, `-1` up to the last argument, `-2` up to the one
    /// before it), every `step`-th.
    Range { index: i64, last: i64, step: i64 },
    /// The key count is argument `index`; that many keys follow it (EVAL).
    KeyNum { index: i64 },
}

impl Keys {
    /// The legacy `(first, last, step)` triple of `COMMAND INFO`; `(0, 0,
    /// 0)` for movable keys, as Redis reports EVAL.
    pub fn triple(self) -> (i64, i64, i64) {
        match self {
            Keys::None | Keys::KeyNum { .. } => (0, 0, 0),
            Keys::Range { index, last, step } => {
                (index, if last >= 0 { index + last } else { last }, step)
            }
        }
    }
}

/// A subcommand of a container command (`CLIENT LIST`, `SCRIPT LOAD`).
#[derive(Debug, Clone, Copy)]
pub struct Sub {
    /// Lowercase, without the container's name (`list`).
    pub name: &'static str,
    pub arity: i64,
    pub flags: &'static [&'static str],
    pub family: Family,
    pub summary: &'static str,
}

/// One command the gateway serves.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    /// Lowercase, as Redis names commands in replies.
    pub name: &'static str,
    /// Argument count including the name; negative means "at least".
    pub arity: i64,
    /// As Redis reports them: `write`, `readonly`, `fast`, `noscript` ...
    pub flags: &'static [&'static str],
    /// The family of the command; a [`Sub`] row overrides it.
    pub family: Family,
    pub keys: Keys,
    /// The key specification's flags (`RW`, `RO`, `access`, `update` ...).
    pub key_flags: &'static [&'static str],
    /// The `COMMAND DOCS` group (`connection`, `string`, `lock` ...).
    pub group: &'static str,
    /// The synopsis, for the README.
    pub usage: &'static str,
    pub summary: &'static str,
    pub route: Route,
    pub metric: Metric,
    pub subs: &'static [Sub],
}

impl Command {
    /// The subcommand row of `sub`, if any (case-insensitive).
    pub fn sub(&self, sub: &[u8]) -> Option<&'static Sub> {
        self.subs
            .iter()
            .find(|s| s.name.as_bytes().eq_ignore_ascii_case(sub))
    }

    /// The Redis ACL categories `COMMAND INFO` reports, derived from the
    /// family and the flags.
    pub fn categories(&self) -> Vec<&'static str> {
        categories(self.family, self.flags, self.route == Route::Script)
    }
}

impl Sub {
    pub fn categories(&self, container: &Command) -> Vec<&'static str> {
        categories(self.family, self.flags, container.route == Route::Script)
    }
}

fn categories(family: Family, flags: &[&str], script: bool) -> Vec<&'static str> {
    let mut c = vec![family.category()];
    if script {
        c.push("@scripting");
    }
    if flags.contains(&"blocking") {
        c.push("@blocking");
    }
    c.push(if flags.contains(&"fast") {
        "@fast"
    } else {
        "@slow"
    });
    c
}

/// The row of `name` (case-insensitive) in `rows`.
pub fn find_in<'a>(rows: &'a [Command], name: &[u8]) -> Option<&'a Command> {
    rows.iter()
        .find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

/// The row of `name` (case-insensitive).
pub fn find(name: &[u8]) -> Option<&'static Command> {
    find_in(COMMANDS, name)
}

/// Whether `name` is a Redis command lockgate deliberately refuses.
pub fn is_unsupported(name: &[u8]) -> bool {
    UNSUPPORTED
        .iter()
        .any(|u| u.as_bytes().eq_ignore_ascii_case(name))
}

const CONN: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "allow_busy",
];
const CLIENT_SUB: &[&str] = &["noscript", "loading", "stale"];
const CLIENT_ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const INTROSPECT: &[&str] = &["loading", "stale"];
const SCRIPT_FLAGS: &[&str] = &[
    "noscript",
    "stale",
    "skip_monitor",
    "no_mandatory_keys",
    "movablekeys",
];
const SCRIPT_RO_FLAGS: &[&str] = &[
    "readonly",
    "noscript",
    "stale",
    "skip_monitor",
    "no_mandatory_keys",
    "movablekeys",
];

const ONE_KEY: Keys = Keys::Range {
    index: 1,
    last: 0,
    step: 1,
};
const RW_UPDATE: &[&str] = &["RW", "update"];
const RW_INSERT: &[&str] = &["RW", "insert"];
const RW_DELETE: &[&str] = &["RW", "delete"];
const RO_ACCESS: &[&str] = &["RO", "access"];

/// A command with its defaults; the rows below override what differs.
const fn row(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    family: Family,
    route: Route,
    usage: &'static str,
    summary: &'static str,
) -> Command {
    Command {
        name,
        arity,
        flags,
        family,
        keys: Keys::None,
        key_flags: &[],
        group: "connection",
        usage,
        summary,
        route,
        metric: Metric::Own,
        subs: &[],
    }
}

/// A key-taking command (the key is the first argument unless `keys`
/// says otherwise).
#[allow(clippy::too_many_arguments)]
const fn keyed(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    family: Family,
    route: Route,
    key_flags: &'static [&'static str],
    group: &'static str,
    usage: &'static str,
    summary: &'static str,
) -> Command {
    Command {
        keys: ONE_KEY,
        key_flags,
        group,
        ..row(name, arity, flags, family, route, usage, summary)
    }
}

use Family::{Admin, Connection, Lock, Read};

/// Every command the gateway serves. Flags, arities and key positions of the
/// commands Redis also has are Redis 7's (a test compares them with a real
/// `redis-server`).
#[rustfmt::skip]
pub const COMMANDS: &[Command] = &[
    // Answered by the gateway.
    row("ping", -1, &["fast"], Connection, Route::Local, "PING [message]", "Answers PONG, or the message"),
    row("echo", 2, &["loading", "stale", "fast"], Connection, Route::Local, "ECHO message", "Answers the message"),
    row("hello", -1, CONN, Connection, Route::Local, "HELLO [protover [AUTH user pass] [SETNAME name]]", "Handshake: picks RESP2 or RESP3, optionally authenticates"),
    row("auth", -2, CONN, Connection, Route::Local, "AUTH [user] pass", "Authenticates the connection"),
    row("select", 2, &["loading", "stale", "fast"], Connection, Route::Local, "SELECT 0", "Accepts database 0, the only one"),
    row("quit", -1, CONN, Connection, Route::Local, "QUIT", "Closes the connection"),
    row("reset", 1, CONN, Connection, Route::Local, "RESET", "Resets the connection's protocol, user, name and LOCK.TOKENS"),
    Command {
        subs: &[
            Sub { name: "setname", arity: 3, flags: CLIENT_SUB, family: Connection, summary: "Names the connection" },
            Sub { name: "getname", arity: 2, flags: CLIENT_SUB, family: Connection, summary: "Answers the connection's name" },
            Sub { name: "id", arity: 2, flags: CLIENT_SUB, family: Connection, summary: "Answers the connection's id" },
            Sub { name: "setinfo", arity: 4, flags: CLIENT_SUB, family: Connection, summary: "Records LIB-NAME or LIB-VER" },
            Sub { name: "info", arity: 2, flags: CLIENT_SUB, family: Connection, summary: "Describes this connection" },
            Sub { name: "list", arity: -2, flags: CLIENT_ADMIN, family: Admin, summary: "Describes every client connection" },
            Sub { name: "no-evict", arity: 3, flags: CLIENT_ADMIN, family: Connection, summary: "Accepted; no effect on a gateway" },
            Sub { name: "no-touch", arity: 3, flags: CLIENT_SUB, family: Connection, summary: "Accepted; no effect on a gateway" },
        ],
        ..row("client", -2, &[], Connection, Route::Local, "CLIENT SETNAME|GETNAME|ID|SETINFO|INFO|LIST|NO-EVICT|NO-TOUCH ...", "Connection names, ids and client listings")
    },
    Command {
        group: "server",
        subs: &[
            Sub { name: "count", arity: 2, flags: INTROSPECT, family: Connection, summary: "Answers the number of commands" },
            Sub { name: "docs", arity: -2, flags: INTROSPECT, family: Connection, summary: "Answers the summaries of commands" },
            Sub { name: "info", arity: -2, flags: INTROSPECT, family: Connection, summary: "Answers the details of commands" },
            Sub { name: "list", arity: -2, flags: INTROSPECT, family: Connection, summary: "Answers the names of the commands" },
        ],
        ..row("command", -1, INTROSPECT, Connection, Route::Local, "COMMAND [COUNT | DOCS [name ...] | INFO [name ...] | LIST]", "Describes the commands of this registry")
    },
    Command { group: "server", ..row("info", -1, INTROSPECT, Admin, Route::Local, "INFO [section ...]", "Server, clients, stats and lockgate sections") },
    Command { group: "server", ..row("time", 1, &["loading", "stale", "fast"], Connection, Route::Local, "TIME", "The gateway's clock") },
    Command { group: "server", ..row("dbsize", 1, &["readonly", "fast"], Admin, Route::Local, "DBSIZE", "Answers 0: the gateway stores no keys") },
    Command { group: "lock", ..row("lock.tokens", 2, &["loading", "stale", "fast"], Connection, Route::Local, "LOCK.TOKENS ON|OFF", "Whether SET NX grants carry the fencing token as a RESP3 attribute") },
    // Plain locks.
    keyed("lock.acquire", -3, &["write"], Lock, Route::Plain, RW_INSERT, "lock", "LOCK.ACQUIRE key ttl_ms [OWNER value] [WAIT ms] [KEEPALIVE]", "Acquires a lock on a quorum; answers owner, fencing token and validity"),
    keyed("lock.release", 3, &["write"], Lock, Route::Plain, RW_DELETE, "lock", "LOCK.RELEASE key owner", "Releases the owner's lock"),
    keyed("lock.extend", 4, &["write"], Lock, Route::Plain, RW_UPDATE, "lock", "LOCK.EXTEND key owner ttl_ms", "Extends the owner's lock"),
    keyed("lock.status", 2, &["readonly"], Read, Route::Plain, RO_ACCESS, "lock", "LOCK.STATUS key", "The holder a quorum agrees on, with its token"),
    // Reentrant locks.
    keyed("rlock.acquire", -5, &["write"], Lock, Route::Reentrant, RW_INSERT, "lock", "RLOCK.ACQUIRE key ttl_ms OWNER value [WAIT ms]", "Acquires or re-enters a reentrant lock"),
    keyed("rlock.release", 3, &["write"], Lock, Route::Reentrant, RW_DELETE, "lock", "RLOCK.RELEASE key owner", "Drops one hold of a reentrant lock"),
    keyed("rlock.extend", 4, &["write"], Lock, Route::Reentrant, RW_UPDATE, "lock", "RLOCK.EXTEND key owner ttl_ms", "Extends a reentrant lock"),
    keyed("rlock.status", 2, &["readonly"], Read, Route::Reentrant, RO_ACCESS, "lock", "RLOCK.STATUS key", "The reentrant holder a quorum agrees on, with its holds"),
    // Read-write locks.
    keyed("rwlock.read", -3, &["write"], Lock, Route::RwLock, RW_INSERT, "lock", "RWLOCK.READ key ttl_ms [OWNER value] [WAIT ms]", "Takes a shared (read) place"),
    keyed("rwlock.write", -3, &["write"], Lock, Route::RwLock, RW_INSERT, "lock", "RWLOCK.WRITE key ttl_ms [OWNER value] [WAIT ms]", "Takes the exclusive (write) place"),
    keyed("rwlock.release", 3, &["write"], Lock, Route::RwLock, RW_DELETE, "lock", "RWLOCK.RELEASE key owner", "Releases a reader's or the writer's place"),
    keyed("rwlock.extend", 4, &["write"], Lock, Route::RwLock, RW_UPDATE, "lock", "RWLOCK.EXTEND key owner ttl_ms", "Extends a reader's or the writer's place"),
    keyed("rwlock.status", 2, &["readonly"], Read, Route::RwLock, RO_ACCESS, "lock", "RWLOCK.STATUS key", "The writer, the readers and whether a writer waits"),
    // Counting semaphores.
    keyed("sem.acquire", -4, &["write"], Lock, Route::Semaphore, RW_INSERT, "lock", "SEM.ACQUIRE key permits ttl_ms [OWNER value] [WAIT ms]", "Takes one of `permits` permits"),
    keyed("sem.release", 3, &["write"], Lock, Route::Semaphore, RW_DELETE, "lock", "SEM.RELEASE key owner", "Releases the owner's permit"),
    keyed("sem.extend", 4, &["write"], Lock, Route::Semaphore, RW_UPDATE, "lock", "SEM.EXTEND key owner ttl_ms", "Extends the owner's permit"),
    keyed("sem.status", 2, &["readonly"], Read, Route::Semaphore, RO_ACCESS, "lock", "SEM.STATUS key", "The permit count, the free permits and the holders"),
    // Drop-in commands of lock libraries.
    keyed("set", -3, &["write", "denyoom"], Lock, Route::DropIn, &["RW", "access", "update", "variable_flags"], "string", "SET key value NX [PX ms | EX s]", "Acquires a lock with the value as owner (NX only)"),
    keyed("get", 2, &["readonly", "fast"], Read, Route::DropIn, RO_ACCESS, "string", "GET key", "The owner a quorum agrees on"),
    Command {
        keys: Keys::Range { index: 1, last: -1, step: 1 },
        key_flags: &["RO"],
        ..keyed("exists", -2, &["readonly", "fast"], Read, Route::DropIn, RO_ACCESS, "generic", "EXISTS key [key ...]", "How many of the keys a quorum agrees are held")
    },
    keyed("pttl", 2, &["readonly", "fast"], Read, Route::DropIn, RO_ACCESS, "generic", "PTTL key", "The holder's remaining time in milliseconds"),
    keyed("ttl", 2, &["readonly", "fast"], Read, Route::DropIn, RO_ACCESS, "generic", "TTL key", "The holder's remaining time in seconds"),
    Command {
        keys: Keys::Range { index: 1, last: -2, step: 1 },
        ..keyed("blpop", -3, &["write", "noscript", "blocking"], Lock, Route::DropIn, &["RW", "access", "delete"], "list", "BLPOP signal_key [signal_key ...] timeout", "Waits for a release (python-redis-lock signal keys only)")
    },
    // Scripts of lock libraries.
    Command {
        keys: Keys::KeyNum { index: 2 },
        ..keyed("eval", -3, SCRIPT_FLAGS, Lock, Route::Script, &["RW", "access", "update"], "scripting", "EVAL script numkeys [key ...] [arg ...]", "Runs a catalogued lock script with quorum semantics")
    },
    Command {
        keys: Keys::KeyNum { index: 2 },
        ..keyed("evalsha", -3, SCRIPT_FLAGS, Lock, Route::Script, &["RW", "access", "update"], "scripting", "EVALSHA sha1 numkeys [key ...] [arg ...]", "Runs a catalogued lock script by SHA1")
    },
    Command {
        keys: Keys::KeyNum { index: 2 },
        ..keyed("eval_ro", -3, SCRIPT_RO_FLAGS, Lock, Route::Script, RO_ACCESS, "scripting", "EVAL_RO script numkeys [key ...] [arg ...]", "EVAL, as read-only clients send it")
    },
    Command {
        keys: Keys::KeyNum { index: 2 },
        ..keyed("evalsha_ro", -3, SCRIPT_RO_FLAGS, Lock, Route::Script, RO_ACCESS, "scripting", "EVALSHA_RO sha1 numkeys [key ...] [arg ...]", "EVALSHA, as read-only clients send it")
    },
    Command {
        group: "scripting",
        subs: &[
            Sub { name: "load", arity: 3, flags: &["noscript", "stale"], family: Lock, summary: "Answers the SHA1 of the script" },
            Sub { name: "exists", arity: -3, flags: &["noscript"], family: Lock, summary: "Whether each SHA1 is a known script" },
            Sub { name: "flush", arity: -2, flags: &["noscript"], family: Admin, summary: "Forgets the loaded scripts" },
        ],
        ..row("script", -2, &[], Lock, Route::Script, "SCRIPT LOAD|EXISTS|FLUSH ...", "Loads and checks lock scripts")
    },
];

/// Subcommands the parsers refuse but the ACL still classifies, so that a
/// user without the family is told NOPERM rather than "not supported".
pub const ACL_ONLY_SUBS: &[(&str, &str, Family)] = &[("client", "kill", Admin)];

/// Commands of Redis's data model that a lock gateway deliberately does not
/// serve; they get a clearer error than "unknown command".
pub const UNSUPPORTED: &[&str] = &[
    "DEL",
    "UNLINK",
    "INCR",
    "DECR",
    "INCRBY",
    "MGET",
    "MSET",
    "KEYS",
    "SCAN",
    "EXPIRE",
    "PEXPIRE",
    "PERSIST",
    "HSET",
    "HGET",
    "HGETALL",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "SADD",
    "ZADD",
    "FLUSHDB",
    "FLUSHALL",
    "MULTI",
    "EXEC",
    "WATCH",
    "UNWATCH",
    "DISCARD",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "PUBLISH",
    "WAIT",
    "CONFIG",
    "DEBUG",
    "SHUTDOWN",
    "MONITOR",
    "SYNC",
    "PSYNC",
    "REPLICAOF",
    "SLAVEOF",
    "CLUSTER",
    "FUNCTION",
    "FCALL",
    "TYPE",
    "RENAME",
    "GETSET",
    "GETDEL",
    "SETNX",
    "SETEX",
    "PSETEX",
    "APPEND",
    "BRPOP",
    "XADD",
    "XREAD",
    "SAVE",
    "BGSAVE",
    "LASTSAVE",
    "ROLE",
    "MEMORY",
    "SLOWLOG",
    "LATENCY",
    "OBJECT",
    "SWAPDB",
    "MOVE",
    "COPY",
];

/// The README's command reference table, generated from [`COMMANDS`] (a
/// test keeps the README's copy current).
pub fn readme_reference() -> String {
    let mut out = String::from(
        "| command | arity | flags | keys (first, last, step) | family | summary |\n\
         |---|---|---|---|---|---|\n",
    );
    for c in COMMANDS {
        let (first, last, step) = c.keys.triple();
        let keys = match c.keys {
            Keys::None => "none".to_string(),
            Keys::KeyNum { index } => format!("numkeys at {index}, then the keys"),
            Keys::Range { .. } => format!("{first}, {last}, {step}"),
        };
        let flags = if c.flags.is_empty() {
            "—".to_string()
        } else {
            c.flags.join(" ")
        };
        let mut family = format!("`{}`", c.family.as_str());
        for (sub, fam) in other_families(c) {
            family.push_str(&format!(
                "; `{} {}`: `{}`",
                c.name.to_ascii_uppercase(),
                sub.to_ascii_uppercase(),
                fam.as_str()
            ));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            c.usage.replace('|', "\\|"),
            c.arity,
            flags,
            keys,
            family,
            c.summary.replace('|', "\\|"),
        ));
    }
    out
}

/// The README's family table, generated from [`COMMANDS`].
pub fn readme_families() -> String {
    let mut out = String::from("| family | commands |\n|---|---|\n");
    for f in Family::ALL {
        let mut names = Vec::new();
        for c in COMMANDS {
            let others = other_families(c);
            if c.family == f {
                let except: Vec<String> = others
                    .iter()
                    .map(|(s, _)| format!("`{}`", s.to_ascii_uppercase()))
                    .collect();
                let mut n = format!("`{}`", c.name.to_ascii_uppercase());
                if !except.is_empty() {
                    n.push_str(&format!(" (except {})", except.join(", ")));
                }
                names.push(n);
            }
            for (s, fam) in others {
                if fam == f {
                    names.push(format!(
                        "`{} {}`",
                        c.name.to_ascii_uppercase(),
                        s.to_ascii_uppercase()
                    ));
                }
            }
        }
        let label = match f {
            Family::Connection => "connection (always allowed once authenticated)".to_string(),
            f => format!("`{}`", f.as_str()),
        };
        out.push_str(&format!("| {label} | {} |\n", names.join(", ")));
    }
    out
}

/// The subcommands of `c` whose family differs from its own.
fn other_families(c: &Command) -> Vec<(&'static str, Family)> {
    let mut v: Vec<(&'static str, Family)> = c
        .subs
        .iter()
        .filter(|s| s.family != c.family)
        .map(|s| (s.name, s.family))
        .collect();
    v.extend(
        ACL_ONLY_SUBS
            .iter()
            .filter(|(n, _, f)| *n == c.name && *f != c.family)
            .map(|(_, s, f)| (*s, *f)),
    );
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_key_triples_follow_redis() {
        let t = |n: &str| find(n.as_bytes()).expect(n).keys.triple();
        assert_eq!(t("get"), (1, 1, 1));
        assert_eq!(t("EXISTS"), (1, -1, 1));
        assert_eq!(t("blpop"), (1, -2, 1));
        assert_eq!(t("evalsha"), (0, 0, 0));
        assert_eq!(t("ping"), (0, 0, 0));
    }

    #[test]
    fn categories_come_from_the_family_and_flags() {
        let c = |n: &str| find(n.as_bytes()).expect(n).categories();
        assert_eq!(c("get"), ["@read", "@fast"]);
        assert_eq!(c("blpop"), ["@write", "@blocking", "@slow"]);
        assert_eq!(c("eval_ro"), ["@write", "@scripting", "@slow"]);
        assert_eq!(c("ping"), ["@connection", "@fast"]);
    }

    #[test]
    fn lookups_ignore_case_and_unsupported_names_are_not_served() {
        assert_eq!(find(b"LoCk.AcQuIrE").map(|c| c.route), Some(Route::Plain));
        assert!(find(b"del").is_none() && is_unsupported(b"del"));
        assert!(COMMANDS.iter().all(|c| !is_unsupported(c.name.as_bytes())));
        let client = find(b"client").expect("client");
        assert_eq!(client.sub(b"LIST").map(|s| s.family), Some(Family::Admin));
        assert!(client.sub(b"kill").is_none(), "refused by the parser");
    }
}
