//! Parses the `LOCK.*` commands into a [`LockCmd`]. TTL and WAIT bounds are
//! checked against the configuration by [`super::exec`], not here, so that
//! parsing stays pure.

use bytes::Bytes;

use super::{AcquireArgs, LockCmd};
use crate::args::{acquire_options, is, millis, wrong_args, AcquireOptions};
use crate::kinds::{parse_shared, SharedNames};
use crate::resp::Reply;

/// The release, extend and status commands of this kind.
const SHARED: SharedNames = SharedNames {
    release: "lock.release",
    extend: "lock.extend",
    status: "lock.status",
};

/// Classifies a `LOCK.*` command; `Ok(None)` when `name` is not one.
pub fn parse(name: &[u8], args: &[Bytes]) -> Result<Option<LockCmd>, Reply> {
    if is(name, "LOCK.ACQUIRE") {
        let cmd = "lock.acquire";
        if args.len() < 3 {
            return Err(wrong_args(cmd));
        }
        let ttl = millis(&args[2], "ttl", cmd)?;
        let AcquireOptions {
            owner,
            wait,
            keepalive,
        } = acquire_options(&args[3..], cmd, true)?;
        return Ok(Some(LockCmd::Acquire(AcquireArgs {
            key: args[1].clone(),
            ttl,
            owner,
            wait,
            keepalive,
        })));
    }
    if let Some(c) = parse_shared(&SHARED, name, args)? {
        return Ok(Some(c));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn p(s: &[&str]) -> Result<Option<LockCmd>, Reply> {
        let args = crate::args::test_args(s);
        parse(&args[0], &args)
    }

    #[test]
    fn acquire_takes_options_in_any_order_and_case() {
        let c = p(&["lock.acquire", "k", "100", "wait", "50", "OWNER", "me"]);
        assert_eq!(
            c,
            Ok(Some(LockCmd::Acquire(AcquireArgs {
                key: Bytes::from_static(b"k"),
                ttl: Duration::from_millis(100),
                owner: Some(Bytes::from_static(b"me")),
                wait: Some(Duration::from_millis(50)),
                keepalive: false,
            })))
        );
    }

    #[test]
    fn keepalive_is_a_flag_in_any_position() {
        let c = p(&["LOCK.ACQUIRE", "k", "100", "keepalive", "OWNER", "me"]);
        assert!(matches!(
            c,
            Ok(Some(LockCmd::Acquire(AcquireArgs {
                keepalive: true,
                ..
            })))
        ));
        let c = p(&["LOCK.ACQUIRE", "k", "100", "WAIT", "5", "KEEPALIVE"]);
        assert!(matches!(
            c,
            Ok(Some(LockCmd::Acquire(AcquireArgs {
                keepalive: true,
                ..
            })))
        ));
        assert!(p(&["LOCK.ACQUIRE", "k", "100", "KEEPALIVE", "KEEPALIVE"]).is_err());
    }

    #[test]
    fn acquire_refuses_zero_negative_and_overflowing_ttls() {
        assert!(p(&["LOCK.ACQUIRE", "k", "0"]).is_err());
        assert!(p(&["LOCK.ACQUIRE", "k", "-5"]).is_err());
        assert!(p(&["LOCK.ACQUIRE", "k", "9223372036854775808"]).is_err());
        assert!(p(&["LOCK.ACQUIRE", "k", "ten"]).is_err());
    }

    #[test]
    fn acquire_refuses_dangling_and_repeated_options() {
        assert!(p(&["LOCK.ACQUIRE", "k", "10", "OWNER"]).is_err());
        assert!(p(&["LOCK.ACQUIRE", "k", "10", "OWNER", "a", "OWNER", "b"]).is_err());
        assert!(p(&["LOCK.ACQUIRE", "k", "10", "NX", "1"]).is_err());
    }

    #[test]
    fn wrong_arity_names_the_command() {
        let Err(Reply::Error(e)) = p(&["LOCK.RELEASE", "k"]) else {
            panic!("expected an error");
        };
        assert_eq!(
            &e[..],
            b"ERR wrong number of arguments for 'lock.release' command"
        );
    }

    #[test]
    fn other_names_are_not_lock_commands() {
        assert_eq!(p(&["GET", "k"]), Ok(None));
        assert_eq!(p(&["RLOCK.ACQUIRE", "k", "10", "OWNER", "o"]), Ok(None));
    }
}
