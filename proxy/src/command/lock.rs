//! The native lock commands:
//!
//! ```text
//! LOCK.ACQUIRE key ttl_ms [OWNER value] [WAIT ms] [KEEPALIVE]
//!                                                   -> [owner, token, validity_ms] | nil
//! LOCK.RELEASE key owner                            -> 1 | 0
//! LOCK.EXTEND  key owner ttl_ms                     -> validity_ms | nil
//! LOCK.STATUS  key                                  -> [owner, token, pttl_ms] | nil
//!
//! RLOCK.ACQUIRE key ttl_ms OWNER value [WAIT ms]    -> [owner, token, validity_ms, holds] | nil
//! RLOCK.RELEASE key owner                           -> holds left | nil
//! RLOCK.EXTEND  key owner ttl_ms                    -> validity_ms | nil
//! RLOCK.STATUS  key                                 -> [owner, token, pttl_ms, holds] | nil
//! ```
//!
//! TTL and WAIT bounds are checked by the server against the configuration,
//! not here, so that parsing stays pure.

use std::time::Duration;

use bytes::Bytes;

use super::args::{acquire_options, key_only, key_owner, key_owner_ttl, millis, AcquireOptions};
use super::{is, wrong_args};
use crate::resp::Reply;

/// A parsed native lock command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockCmd {
    Acquire {
        key: Bytes,
        ttl: Duration,
        owner: Option<Bytes>,
        wait: Option<Duration>,
        /// Renewed by the gateway while the connection lives.
        keepalive: bool,
    },
    Release {
        key: Bytes,
        owner: Bytes,
    },
    Extend {
        key: Bytes,
        owner: Bytes,
        ttl: Duration,
    },
    Status {
        key: Bytes,
    },
    /// `RLOCK.ACQUIRE`: reentrant; OWNER is required.
    RAcquire {
        key: Bytes,
        ttl: Duration,
        owner: Bytes,
        wait: Option<Duration>,
    },
    RRelease {
        key: Bytes,
        owner: Bytes,
    },
    RExtend {
        key: Bytes,
        owner: Bytes,
        ttl: Duration,
    },
    RStatus {
        key: Bytes,
    },
}

impl LockCmd {
    /// The keys the command touches, for per-connection ordering.
    pub fn keys(&self) -> Vec<Bytes> {
        match self {
            LockCmd::Acquire { key, .. }
            | LockCmd::Release { key, .. }
            | LockCmd::Extend { key, .. }
            | LockCmd::Status { key }
            | LockCmd::RAcquire { key, .. }
            | LockCmd::RRelease { key, .. }
            | LockCmd::RExtend { key, .. }
            | LockCmd::RStatus { key } => vec![key.clone()],
        }
    }
}

/// Classifies a `LOCK.*` command; `Ok(None)` when `name` is not one.
pub fn parse(name: &[u8], args: &[Bytes]) -> Result<Option<LockCmd>, Reply> {
    if is(name, "LOCK.ACQUIRE") || is(name, "RLOCK.ACQUIRE") {
        let reentrant = is(name, "RLOCK.ACQUIRE");
        let cmd = if reentrant {
            "rlock.acquire"
        } else {
            "lock.acquire"
        };
        if args.len() < 3 {
            return Err(wrong_args(cmd));
        }
        let ttl = millis(&args[2], "ttl", cmd)?;
        // Reentrant holds are renewed by their owner, not by the gateway.
        let AcquireOptions {
            owner,
            wait,
            keepalive,
        } = acquire_options(&args[3..], cmd, !reentrant)?;
        if reentrant {
            // Reentrancy is by owner: a random one could never re-enter.
            let Some(owner) = owner else {
                return Err(Reply::error(
                    "ERR missing owner in 'rlock.acquire' command: OWNER is required",
                ));
            };
            return Ok(Some(LockCmd::RAcquire {
                key: args[1].clone(),
                ttl,
                owner,
                wait,
            }));
        }
        return Ok(Some(LockCmd::Acquire {
            key: args[1].clone(),
            ttl,
            owner,
            wait,
            keepalive,
        }));
    }
    if is(name, "LOCK.RELEASE") {
        let (key, owner) = key_owner(args, "lock.release")?;
        return Ok(Some(LockCmd::Release { key, owner }));
    }
    if is(name, "LOCK.EXTEND") {
        let (key, owner, ttl) = key_owner_ttl(args, "lock.extend")?;
        return Ok(Some(LockCmd::Extend { key, owner, ttl }));
    }
    if is(name, "LOCK.STATUS") {
        let key = key_only(args, "lock.status")?;
        return Ok(Some(LockCmd::Status { key }));
    }
    if is(name, "RLOCK.RELEASE") {
        let (key, owner) = key_owner(args, "rlock.release")?;
        return Ok(Some(LockCmd::RRelease { key, owner }));
    }
    if is(name, "RLOCK.EXTEND") {
        let (key, owner, ttl) = key_owner_ttl(args, "rlock.extend")?;
        return Ok(Some(LockCmd::RExtend { key, owner, ttl }));
    }
    if is(name, "RLOCK.STATUS") {
        let key = key_only(args, "rlock.status")?;
        return Ok(Some(LockCmd::RStatus { key }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Result<Option<LockCmd>, Reply> {
        let args = crate::command::test_args(s);
        parse(&args[0], &args)
    }

    #[test]
    fn acquire_takes_options_in_any_order_and_case() {
        let c = p(&["lock.acquire", "k", "100", "wait", "50", "OWNER", "me"]);
        assert_eq!(
            c,
            Ok(Some(LockCmd::Acquire {
                key: Bytes::from_static(b"k"),
                ttl: Duration::from_millis(100),
                owner: Some(Bytes::from_static(b"me")),
                wait: Some(Duration::from_millis(50)),
                keepalive: false,
            }))
        );
    }

    #[test]
    fn keepalive_is_a_flag_in_any_position() {
        let c = p(&["LOCK.ACQUIRE", "k", "100", "keepalive", "OWNER", "me"]);
        assert!(matches!(
            c,
            Ok(Some(LockCmd::Acquire {
                keepalive: true,
                ..
            }))
        ));
        let c = p(&["LOCK.ACQUIRE", "k", "100", "WAIT", "5", "KEEPALIVE"]);
        assert!(matches!(
            c,
            Ok(Some(LockCmd::Acquire {
                keepalive: true,
                ..
            }))
        ));
        assert!(p(&["LOCK.ACQUIRE", "k", "100", "KEEPALIVE", "KEEPALIVE"]).is_err());
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
            Ok(Some(LockCmd::RAcquire {
                key: Bytes::from_static(b"k"),
                ttl: Duration::from_millis(100),
                owner: Bytes::from_static(b"o"),
                wait: Some(Duration::from_millis(7)),
            }))
        );
        assert!(p(&["RLOCK.RELEASE", "k"]).is_err());
        assert!(p(&["RLOCK.EXTEND", "k", "o", "0"]).is_err());
        assert!(matches!(
            p(&["RLOCK.STATUS", "k"]),
            Ok(Some(LockCmd::RStatus { .. }))
        ));
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
    }
}
