//! Argument shapes shared by every command parser: keywords compared
//! without case, integers read exactly as Redis reads them, Redis's wording
//! for a wrong argument count, TTLs in milliseconds, the `[OWNER value]
//! [WAIT ms] [KEEPALIVE]` options of an acquire, and the `key owner`,
//! `key owner ttl_ms` and `key` shapes of release, extend and status. One
//! parser each, so every kind refuses the same mistakes with the same
//! words. A leaf: the kinds' parsers and [`crate::command`] both build on
//! it.

use std::time::Duration;

use bytes::Bytes;

use crate::resp::Reply;

/// `ERR wrong number of arguments for 'x' command`, as Redis words it.
pub fn wrong_args(name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_ascii_lowercase()
    ))
}

/// The Redis wording for an argument that is not a valid integer.
pub fn not_an_integer() -> Reply {
    Reply::error("ERR value is not an integer or out of range")
}

/// Parses a decimal integer argument exactly as Redis does (no spaces, no
/// plus sign, no overflow).
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 || b.first() == Some(&b'+') {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse::<i64>().ok()
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is(arg: &[u8], kw: &str) -> bool {
    arg.eq_ignore_ascii_case(kw.as_bytes())
}

/// Builds an argument vector from strings (tests of the parsers).
#[cfg(test)]
pub(crate) fn test_args(s: &[&str]) -> Vec<Bytes> {
    s.iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect()
}

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
