//! The native lock commands (DESIGN.md section 4):
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

use super::{is, not_an_integer, parse_i64, wrong_args};
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

fn millis(arg: &[u8], what: &str, cmd: &str) -> Result<Duration, Reply> {
    match parse_i64(arg) {
        Some(v) if v > 0 => Ok(Duration::from_millis(v.unsigned_abs())),
        Some(_) => Err(Reply::error(format!(
            "ERR invalid {what} in '{cmd}' command: must be a positive number of milliseconds"
        ))),
        None => Err(not_an_integer()),
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
        let mut owner = None;
        let mut wait = None;
        let mut keepalive = false;
        let mut i = 3;
        while i < args.len() {
            let opt = &args[i];
            if is(opt, "KEEPALIVE") && !keepalive && !reentrant {
                keepalive = true;
                i += 1;
                continue;
            }
            let Some(val) = args.get(i + 1) else {
                return Err(Reply::error("ERR syntax error"));
            };
            if is(opt, "OWNER") && owner.is_none() {
                if val.is_empty() {
                    return Err(Reply::error(format!(
                        "ERR invalid owner in '{cmd}' command: must not be empty"
                    )));
                }
                owner = Some(val.clone());
            } else if is(opt, "WAIT") && wait.is_none() {
                match parse_i64(val) {
                    Some(v) if v >= 0 => wait = Some(Duration::from_millis(v.unsigned_abs())),
                    Some(_) => {
                        return Err(Reply::error(format!(
                            "ERR invalid wait in '{cmd}' command: must not be negative"
                        )))
                    }
                    None => return Err(not_an_integer()),
                }
            } else {
                return Err(Reply::error("ERR syntax error"));
            }
            i += 2;
        }
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
        if args.len() != 3 {
            return Err(wrong_args("lock.release"));
        }
        return Ok(Some(LockCmd::Release {
            key: args[1].clone(),
            owner: args[2].clone(),
        }));
    }
    if is(name, "LOCK.EXTEND") {
        if args.len() != 4 {
            return Err(wrong_args("lock.extend"));
        }
        return Ok(Some(LockCmd::Extend {
            key: args[1].clone(),
            owner: args[2].clone(),
            ttl: millis(&args[3], "ttl", "lock.extend")?,
        }));
    }
    if is(name, "LOCK.STATUS") {
        if args.len() != 2 {
            return Err(wrong_args("lock.status"));
        }
        return Ok(Some(LockCmd::Status {
            key: args[1].clone(),
        }));
    }
    if is(name, "RLOCK.RELEASE") {
        if args.len() != 3 {
            return Err(wrong_args("rlock.release"));
        }
        return Ok(Some(LockCmd::RRelease {
            key: args[1].clone(),
            owner: args[2].clone(),
        }));
    }
    if is(name, "RLOCK.EXTEND") {
        if args.len() != 4 {
            return Err(wrong_args("rlock.extend"));
        }
        return Ok(Some(LockCmd::RExtend {
            key: args[1].clone(),
            owner: args[2].clone(),
            ttl: millis(&args[3], "ttl", "rlock.extend")?,
        }));
    }
    if is(name, "RLOCK.STATUS") {
        if args.len() != 2 {
            return Err(wrong_args("rlock.status"));
        }
        return Ok(Some(LockCmd::RStatus {
            key: args[1].clone(),
        }));
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
