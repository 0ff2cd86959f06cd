//! Drop-in commands: what existing lock libraries send to a single Redis.
//!
//! `SET key value NX PX|EX ttl` (any case, any option order) is a quorum
//! acquire; `GET`, `EXISTS`, `PTTL` and `TTL` on lock keys are quorum reads.
//! SET without NX is refused: lockgate is not a key-value store.

use std::time::Duration;

use bytes::Bytes;

use crate::args::{is, not_an_integer, parse_i64, wrong_args};
use crate::resp::Reply;

/// A parsed drop-in command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropIn {
    /// `SET key value NX [PX ms | EX s | PXAT | EXAT]`; `ttl` is `None` when
    /// the client sent no expiry.
    SetNx {
        key: Bytes,
        value: Bytes,
        ttl: Option<Duration>,
    },
    Get(Bytes),
    Exists(Vec<Bytes>),
    Pttl(Bytes),
    Ttl(Bytes),
    /// `BLPOP key [key ...] timeout` on library signal keys (waits for a
    /// release); `timeout` is `None` for 0, which blocks without limit.
    Blpop {
        keys: Vec<Bytes>,
        timeout: Option<Duration>,
    },
}

impl DropIn {
    /// The command's name as Redis writes it in errors.
    pub fn name(&self) -> &'static str {
        match self {
            DropIn::SetNx { .. } => "set",
            DropIn::Get(_) => "get",
            DropIn::Exists(_) => "exists",
            DropIn::Pttl(_) => "pttl",
            DropIn::Ttl(_) => "ttl",
            DropIn::Blpop { .. } => "blpop",
        }
    }

    /// The keys the command touches, for per-connection ordering.
    pub fn keys(&self) -> Vec<Bytes> {
        match self {
            DropIn::SetNx { key, .. } | DropIn::Get(key) | DropIn::Pttl(key) | DropIn::Ttl(key) => {
                vec![key.clone()]
            }
            DropIn::Exists(keys) | DropIn::Blpop { keys, .. } => keys.clone(),
        }
    }
}

fn set_error(reason: &str) -> Reply {
    Reply::error(format!("ERR 'set' {reason}"))
}

fn parse_set(args: &[Bytes]) -> Result<DropIn, Reply> {
    if args.len() < 3 {
        return Err(wrong_args("set"));
    }
    let mut nx = false;
    let mut ttl: Option<Duration> = None;
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        if is(opt, "NX") {
            nx = true;
            i += 1;
        } else if is(opt, "PX") || is(opt, "EX") {
            if ttl.is_some() {
                return Err(Reply::error("ERR syntax error"));
            }
            let Some(v) = args.get(i + 1) else {
                return Err(Reply::error("ERR syntax error"));
            };
            let n = parse_i64(v).ok_or_else(not_an_integer)?;
            if n <= 0 {
                return Err(Reply::error("ERR invalid expire time in 'set' command"));
            }
            let n = n.unsigned_abs();
            ttl = Some(if is(opt, "PX") {
                Duration::from_millis(n)
            } else {
                Duration::from_secs(n.min(u64::MAX / 1000))
            });
            i += 2;
        } else if is(opt, "XX") || is(opt, "GET") || is(opt, "KEEPTTL") {
            return Err(set_error(&format!(
                "with {} is not supported by lockgate: only SET key value NX PX|EX ttl acquires a lock",
                String::from_utf8_lossy(opt).to_ascii_uppercase()
            )));
        } else if is(opt, "PXAT") || is(opt, "EXAT") {
            return Err(set_error(
                "with an absolute expiry (PXAT/EXAT) is not supported by lockgate: use PX or EX",
            ));
        } else {
            return Err(Reply::error("ERR syntax error"));
        }
    }
    if !nx {
        return Err(set_error(
            "without NX is not supported by lockgate: it is a lock service, not a key-value \
             store (use SET key value NX PX ms to acquire a lock)",
        ));
    }
    Ok(DropIn::SetNx {
        key: args[1].clone(),
        value: args[2].clone(),
        ttl,
    })
}

fn parse_blpop(args: &[Bytes]) -> Result<DropIn, Reply> {
    if args.len() < 3 {
        return Err(wrong_args("blpop"));
    }
    let last = &args[args.len() - 1];
    // Redis 6+ takes fractional seconds; anything else is its own error.
    let secs = std::str::from_utf8(last)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite())
        .ok_or_else(|| Reply::error("ERR timeout is not a float or out of range"))?;
    if secs < 0.0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    // A day is "forever" for any lock wait; it keeps the Duration in range.
    let timeout = (secs > 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    Ok(DropIn::Blpop {
        keys: args[1..args.len() - 1].to_vec(),
        timeout,
    })
}

/// Classifies a drop-in command; `Ok(None)` when `name` is not one.
pub fn parse(name: &[u8], args: &[Bytes]) -> Result<Option<DropIn>, Reply> {
    let one_key = |cmd: &str| -> Result<Bytes, Reply> {
        if args.len() != 2 {
            return Err(wrong_args(cmd));
        }
        Ok(args[1].clone())
    };
    let d = if is(name, "SET") {
        parse_set(args)?
    } else if is(name, "GET") {
        DropIn::Get(one_key("get")?)
    } else if is(name, "PTTL") {
        DropIn::Pttl(one_key("pttl")?)
    } else if is(name, "TTL") {
        DropIn::Ttl(one_key("ttl")?)
    } else if is(name, "BLPOP") {
        parse_blpop(args)?
    } else if is(name, "EXISTS") {
        if args.len() < 2 {
            return Err(wrong_args("exists"));
        }
        DropIn::Exists(args[1..].to_vec())
    } else {
        return Ok(None);
    };
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Result<Option<DropIn>, Reply> {
        let args = crate::args::test_args(s);
        parse(&args[0], &args)
    }

    #[test]
    fn go_redis_order_and_case_is_an_acquire() {
        assert_eq!(
            p(&["set", "k", "v", "ex", "8", "nx"]),
            Ok(Some(DropIn::SetNx {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v"),
                ttl: Some(Duration::from_secs(8)),
            }))
        );
    }

    #[test]
    fn set_nx_px_is_an_acquire() {
        assert!(matches!(
            p(&["SET", "k", "v", "NX", "PX", "100"]),
            Ok(Some(DropIn::SetNx { ttl: Some(t), .. })) if t == Duration::from_millis(100)
        ));
    }

    #[test]
    fn set_nx_without_expiry_has_no_ttl() {
        assert!(matches!(
            p(&["SET", "k", "v", "NX"]),
            Ok(Some(DropIn::SetNx { ttl: None, .. }))
        ));
    }

    #[test]
    fn set_without_nx_is_refused_with_a_reason() {
        let Err(Reply::Error(e)) = p(&["SET", "k", "v", "PX", "100"]) else {
            panic!("expected an error");
        };
        assert!(String::from_utf8_lossy(&e).contains("without NX is not supported"));
    }

    #[test]
    fn set_refuses_bad_expiries_like_redis() {
        assert!(p(&["SET", "k", "v", "NX", "PX", "0"]).is_err());
        assert!(p(&["SET", "k", "v", "NX", "PX", "-1"]).is_err());
        assert!(p(&["SET", "k", "v", "NX", "PX", "9223372036854775808"]).is_err());
        assert!(p(&["SET", "k", "v", "NX", "PX"]).is_err());
        assert!(p(&["SET", "k", "v", "NX", "PX", "1", "EX", "1"]).is_err());
    }
}
