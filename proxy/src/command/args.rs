//! Argument shapes shared by every lock kind's commands: TTLs in
//! milliseconds, the `[OWNER value] [WAIT ms] [KEEPALIVE]` options of an
//! acquire, and the `key owner`, `key owner ttl_ms` and `key` shapes of
//! release, extend and status. One parser each, so every kind refuses the
//! same mistakes with the same words.

use std::time::Duration;

use bytes::Bytes;

use super::{is, not_an_integer, parse_i64, wrong_args};
use crate::resp::Reply;

/// A positive number of milliseconds; `what` and `cmd` name it in errors.
pub(crate) fn millis(arg: &[u8], what: &str, cmd: &str) -> Result<Duration, Reply> {
    match parse_i64(arg) {
        Some(v) if v > 0 => Ok(Duration::from_millis(v.unsigned_abs())),
        Some(_) => Err(Reply::error(format!(
            "ERR invalid {what} in '{cmd}' command: must be a positive number of milliseconds"
        ))),
        None => Err(not_an_integer()),
    }
}

/// The options of an acquire.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AcquireOptions {
    pub owner: Option<Bytes>,
    pub wait: Option<Duration>,
    pub keepalive: bool,
}

/// `[OWNER value] [WAIT ms]`, plus the `KEEPALIVE` flag when `keepalive`
/// is allowed, in any order and case, each at most once.
pub(crate) fn acquire_options(
    opts: &[Bytes],
    cmd: &str,
    keepalive: bool,
) -> Result<AcquireOptions, Reply> {
    let mut out = AcquireOptions::default();
    let mut i = 0;
    while i < opts.len() {
        let opt = &opts[i];
        if keepalive && is(opt, "KEEPALIVE") && !out.keepalive {
            out.keepalive = true;
            i += 1;
            continue;
        }
        let Some(val) = opts.get(i + 1) else {
            return Err(Reply::error("ERR syntax error"));
        };
        if is(opt, "OWNER") && out.owner.is_none() {
            if val.is_empty() {
                return Err(Reply::error(format!(
                    "ERR invalid owner in '{cmd}' command: must not be empty"
                )));
            }
            out.owner = Some(val.clone());
        } else if is(opt, "WAIT") && out.wait.is_none() {
            match parse_i64(val) {
                Some(v) if v >= 0 => out.wait = Some(Duration::from_millis(v.unsigned_abs())),
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
    Ok(out)
}

/// `CMD key owner`: release.
pub(crate) fn key_owner(args: &[Bytes], cmd: &str) -> Result<(Bytes, Bytes), Reply> {
    match args {
        [_, key, owner] => Ok((key.clone(), owner.clone())),
        _ => Err(wrong_args(cmd)),
    }
}

/// `CMD key owner ttl_ms`: extend.
pub(crate) fn key_owner_ttl(args: &[Bytes], cmd: &str) -> Result<(Bytes, Bytes, Duration), Reply> {
    match args {
        [_, key, owner, ttl] => Ok((key.clone(), owner.clone(), millis(ttl, "ttl", cmd)?)),
        _ => Err(wrong_args(cmd)),
    }
}

/// `CMD key`: status.
pub(crate) fn key_only(args: &[Bytes], cmd: &str) -> Result<Bytes, Reply> {
    match args {
        [_, key] => Ok(key.clone()),
        _ => Err(wrong_args(cmd)),
    }
}
