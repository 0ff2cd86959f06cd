//! Command classification: a client's argument vector becomes a typed
//! [`Request`], or an error reply naming the command and the reason.
//!
//! Parsing never touches a master and never allocates more than the request
//! already holds (arguments are `Bytes` slices of the read buffer).
//!
//! - [`registry`]: every served command declared once; [`parse`] picks the
//!   parser by the command's row.
//! - [`local`]: commands the gateway answers itself (PING, HELLO, CLIENT ...).
//! - [`script`]: `EVAL`/`EVALSHA` of the catalogued client-library scripts.
//! - the lock kinds' own commands, the drop-in `SET NX PX`, `GET`, `EXISTS`,
//!   `PTTL` and `TTL` among them, are parsed in [`crate::kinds`]; the
//!   argument shapes every parser shares are in [`crate::args`].

pub mod registry;

pub mod local;
pub mod script;

use bytes::Bytes;

use crate::resp::Reply;
use registry::Route;

#[cfg(test)]
pub(crate) use crate::args::test_args;
pub use crate::args::{is, not_an_integer, parse_i64, wrong_args};
pub use crate::kinds::plain::DropIn;
pub use local::{ClientSub, HelloArgs, ListFilter, Local};
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

impl Request {
    /// The client keys the request names: what the ACL's key patterns are
    /// checked against, and what orders requests on one connection.
    pub fn keys(&self) -> Vec<Bytes> {
        match self {
            Request::Local(_) => Vec::new(),
            Request::Lock(c) => c.keys(),
            Request::Reentrant(c) => c.keys(),
            Request::DropIn(d) => d.keys(),
            Request::Script(s) => s.keys(),
            Request::RwLock(c) => c.keys(),
            Request::Sem(c) => c.keys(),
        }
    }
}

/// Classifies `args` (non-empty). Errors are ready-to-send replies.
///
/// The command's [`registry`] row picks the parser; a name with no row is
/// unknown (or deliberately unsupported).
pub fn parse(args: &[Bytes]) -> Result<Request, Reply> {
    let Some(name) = args.first() else {
        return Err(Reply::error("ERR empty command"));
    };
    let Some(row) = registry::find(name) else {
        return Err(unknown(name, &args[1..]));
    };
    // A row whose parser does not know the name is a registry mistake that
    // the registry's tests catch; the client sees "unknown command".
    parse_route(row.route, name, args)?.ok_or_else(|| unknown(name, &args[1..]))
}

/// Runs the parser of `route` on `args`; `Ok(None)` when that parser does
/// not know `name`. The one place a route meets its parser.
pub fn parse_route(route: Route, name: &[u8], args: &[Bytes]) -> Result<Option<Request>, Reply> {
    Ok(match route {
        Route::Local => local::parse(name, args)?.map(Request::Local),
        Route::Plain => plain::parse(name, args)?.map(Request::Lock),
        Route::Reentrant => reentrant::parse(name, args)?.map(Request::Reentrant),
        Route::RwLock => rwlock::parse(name, args)?.map(Request::RwLock),
        Route::Semaphore => semaphore::parse(name, args)?.map(Request::Sem),
        Route::DropIn => plain::dropin::parse(name, args)?.map(Request::DropIn),
        Route::Script => script::parse(name, args)?.map(Request::Script),
    })
}

/// The error for a command lockgate does not serve.
pub fn unknown(name: &[u8], rest: &[Bytes]) -> Reply {
    let shown = String::from_utf8_lossy(&name[..name.len().min(128)]).into_owned();
    if registry::is_unsupported(name) {
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
