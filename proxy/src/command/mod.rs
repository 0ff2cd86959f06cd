//! Command classification: a client's argument vector becomes a typed
//! [`Request`], or an error reply naming the command and the reason.
//!
//! Parsing never touches a master and never allocates more than the request
//! already holds (arguments are `Bytes` slices of the read buffer).
//!
//! - [`local`]: commands the gateway answers itself (PING, HELLO, CLIENT ...).
//! - [`args`]: the argument shapes every parser shares.
//! - the lock kinds' own commands are parsed in [`crate::kinds`].
//! - [`dropin`]: `SET NX PX`, `GET`, `EXISTS`, `PTTL`, `TTL` as lock clients
//!   send them.

pub mod args;
pub mod dropin;
pub mod local;
pub mod script;

use bytes::Bytes;

use crate::resp::Reply;

#[cfg(test)]
pub(crate) use args::test_args;
pub use args::{is, not_an_integer, parse_i64, wrong_args};
pub use dropin::DropIn;
pub use local::{ClientSub, HelloArgs, Local};
pub use script::ScriptCmd;

pub use crate::kinds::plain::LockCmd;
pub use crate::kinds::reentrant::ReentrantCmd;
pub use crate::kinds::rwlock::RwCmd;
pub use crate::kinds::semaphore::SemCmd;
use crate::kinds::{plain, reentrant, rwlock, semaphore};

/// A classified client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Local(Local),
    Lock(LockCmd),
    Reentrant(ReentrantCmd),
    DropIn(DropIn),
    Script(ScriptCmd),
    RwLock(RwCmd),
    Sem(SemCmd),
}

/// Commands of Redis's data model that a lock gateway deliberately does not
/// serve; they get a clearer error than "unknown command".
const UNSUPPORTED: &[&str] = &[
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
    "BLPOP",
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

/// Classifies `args` (non-empty). Errors are ready-to-send replies.
pub fn parse(args: &[Bytes]) -> Result<Request, Reply> {
    let Some(name) = args.first() else {
        return Err(Reply::error("ERR empty command"));
    };
    if let Some(l) = local::parse(name, args)? {
        return Ok(Request::Local(l));
    }
    if let Some(c) = plain::parse(name, args)? {
        return Ok(Request::Lock(c));
    }
    if let Some(c) = reentrant::parse(name, args)? {
        return Ok(Request::Reentrant(c));
    }
    if let Some(c) = rwlock::parse(name, args)? {
        return Ok(Request::RwLock(c));
    }
    if let Some(c) = semaphore::parse(name, args)? {
        return Ok(Request::Sem(c));
    }
    if let Some(d) = dropin::parse(name, args)? {
        return Ok(Request::DropIn(d));
    }
    if let Some(sc) = script::parse(name, args)? {
        return Ok(Request::Script(sc));
    }
    Err(unknown(name, &args[1..]))
}

/// The error for a command lockgate does not serve.
pub fn unknown(name: &[u8], rest: &[Bytes]) -> Reply {
    let shown = String::from_utf8_lossy(&name[..name.len().min(128)]).into_owned();
    if UNSUPPORTED
        .iter()
        .any(|u| u.as_bytes().eq_ignore_ascii_case(name))
    {
        return Reply::error(format!(
            "ERR command '{shown}' is not supported by lockgate: it serves locks only \
             (see LOCK.ACQUIRE, SET NX PX and the lock scripts of common clients)"
        ));
    }
    let mut msg = format!("ERR unknown command '{shown}', with args beginning with: ");
    for a in rest.iter().take(8) {
        msg.push('\'');
        msg.push_str(&String::from_utf8_lossy(&a[..a.len().min(128)]));
        msg.push_str("' ");
    }
    Reply::error(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<Bytes> {
        s.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    #[test]
    fn unknown_command_names_the_command_like_redis() {
        let Err(Reply::Error(e)) = parse(&args(&["FOO", "a", "b"])) else {
            panic!("expected an error");
        };
        assert_eq!(
            &e[..],
            b"ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
        );
    }

    #[test]
    fn data_commands_are_refused_as_unsupported() {
        let Err(Reply::Error(e)) = parse(&args(&["del", "k"])) else {
            panic!("expected an error");
        };
        assert!(String::from_utf8_lossy(&e).contains("not supported by lockgate"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_argument_vectors_never_panic(
            args in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..12), 1..8),
            name in proptest::sample::select(vec![
                "LOCK.ACQUIRE", "lock.release", "LOCK.EXTEND", "LOCK.STATUS", "SET", "GET",
                "EXISTS", "PTTL", "TTL", "HELLO", "AUTH", "CLIENT", "COMMAND", "PING", "SELECT",
                "INFO", "x", "RWLOCK.READ", "RWLOCK.WRITE", "RWLOCK.RELEASE", "RWLOCK.EXTEND",
                "RWLOCK.STATUS", "SEM.ACQUIRE", "SEM.RELEASE", "SEM.EXTEND", "SEM.STATUS",
            ]),
        ) {
            let mut v: Vec<Bytes> = vec![Bytes::from(name)];
            v.extend(args.into_iter().map(Bytes::from));
            let _ = parse(&v);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_names_and_arguments_never_panic(
            args in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..24), 1..10),
        ) {
            let v: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
            let _ = parse(&v);
        }
    }

    #[test]
    fn hostile_integers_are_errors_never_wraps() {
        for ttl in [
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "0",
            "-1",
        ] {
            let r = parse(&args(&["SET", "k", "v", "NX", "PX", ttl]));
            // i64::MAX parses; the server's TTL bound then refuses it.
            match r {
                Ok(Request::DropIn(DropIn::SetNx { ttl: Some(t), .. })) => {
                    assert_eq!(t, std::time::Duration::from_millis(i64::MAX.unsigned_abs()));
                }
                Err(Reply::Error(_)) => {}
                other => panic!("{ttl}: {other:?}"),
            }
        }
        // EX seconds that overflow when multiplied by 1000 saturate, and
        // are then refused by the TTL bound instead of wrapping to a short TTL.
        let r = parse(&args(&["SET", "k", "v", "NX", "EX", "9223372036854775807"]));
        let Ok(Request::DropIn(DropIn::SetNx { ttl: Some(t), .. })) = r else {
            panic!("{r:?}");
        };
        assert!(t >= std::time::Duration::from_secs(9_223_372_036_854_775));
    }

    #[test]
    fn integers_are_parsed_strictly() {
        assert_eq!(parse_i64(b"10"), Some(10));
        assert_eq!(parse_i64(b"-3"), Some(-3));
        assert_eq!(parse_i64(b"+3"), None);
        assert_eq!(parse_i64(b" 3"), None);
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b""), None);
    }
}
