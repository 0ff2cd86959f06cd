//! Parses the `RLOCK.*` commands into a [`ReentrantCmd`]. TTL and WAIT
//! bounds are checked against the configuration by [`super::exec`].

use bytes::Bytes;

use super::{AcquireArgs, ReentrantCmd};
use crate::args::{acquire_options, is, millis, wrong_args};
use crate::kinds::{parse_shared, SharedNames};
use crate::resp::Reply;

/// The release, extend and status commands of this kind.
const SHARED: SharedNames = SharedNames {
    release: "rlock.release",
    extend: "rlock.extend",
    status: "rlock.status",
};

/// Classifies an `RLOCK.*` command; `Ok(None)` when `name` is not one.
pub fn parse(name: &[u8], args: &[Bytes]) -> Result<Option<ReentrantCmd>, Reply> {
    if is(name, "RLOCK.ACQUIRE") {
        let cmd = "rlock.acquire";
        if args.len() < 3 {
            return Err(wrong_args(cmd));
        }
        let ttl = millis(&args[2], "ttl", cmd)?;
        // Reentrant holds are renewed by their owner, not by the gateway.
        let o = acquire_options(&args[3..], cmd, false)?;
        // Reentrancy is by owner: a random one could never re-enter.
        let Some(owner) = o.owner else {
            return Err(Reply::error(
                "ERR missing owner in 'rlock.acquire' command: OWNER is required",
            ));
        };
        return Ok(Some(ReentrantCmd::Acquire(AcquireArgs {
            key: args[1].clone(),
            ttl,
            owner,
            wait: o.wait,
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

    fn p(s: &[&str]) -> Result<Option<ReentrantCmd>, Reply> {
        let args = crate::args::test_args(s);
        parse(&args[0], &args)
    }

    #[test]
    fn reentrant_acquire_needs_an_owner_and_takes_no_keepalive() {
        let Err(Reply::Error(e)) = p(&["RLOCK.ACQUIRE", "k", "100"]) else {
            panic!("expected an error");
        };
        assert!(std::str::from_utf8(&e).is_ok_and(|e| e.contains("'rlock.acquire'")));
        assert!(p(&["RLOCK.ACQUIRE", "k", "100", "OWNER", "o", "KEEPALIVE"]).is_err());
        assert_eq!(
            p(&["rlock.acquire", "k", "100", "owner", "o", "wait", "7"]),
            Ok(Some(ReentrantCmd::Acquire(AcquireArgs {
                key: Bytes::from_static(b"k"),
                ttl: Duration::from_millis(100),
                owner: Bytes::from_static(b"o"),
                wait: Some(Duration::from_millis(7)),
            })))
        );
        assert!(p(&["RLOCK.RELEASE", "k"]).is_err());
        assert!(p(&["RLOCK.EXTEND", "k", "o", "0"]).is_err());
        assert!(matches!(
            p(&["RLOCK.STATUS", "k"]),
            Ok(Some(ReentrantCmd::Status { .. }))
        ));
    }

    #[test]
    fn other_names_are_not_reentrant_commands() {
        assert_eq!(p(&["LOCK.ACQUIRE", "k", "10"]), Ok(None));
    }
}
