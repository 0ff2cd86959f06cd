//! The bounds every kind checks a command against before it reaches the
//! engine: key length (`limits.max_key_bytes`), TTL within `[min_ttl,
//! max_ttl]`, and WAIT at most `max_wait`. Each refusal counts its limit
//! hit here, once, so no path can check a bound and forget to count it.

use std::time::Duration;

use super::Ctx;
use crate::metrics::{Limit, Op, Outcome};
use crate::resp::Reply;
use crate::response::Response;

/// Checks a TTL against the configured bounds (counted when refused).
pub fn check_ttl(ctx: &Ctx<'_>, cmd: &str, ttl: Duration) -> Result<(), Reply> {
    let lc = &ctx.config.lock;
    if ttl < lc.min_ttl || ttl > lc.max_ttl {
        ctx.metrics.limit_hit(Limit::Ttl);
        return Err(Reply::error(format!(
            "ERR invalid ttl in '{cmd}' command: must be between {} and {} ms",
            lc.min_ttl.as_millis(),
            lc.max_ttl.as_millis()
        )));
    }
    Ok(())
}

/// Checks a key against the configured length limit (counted when refused).
pub fn check_key(ctx: &Ctx<'_>, cmd: &str, key: &[u8]) -> Result<(), Reply> {
    let max = ctx.config.limits.max_key_bytes;
    if key.len() > max {
        ctx.metrics.limit_hit(Limit::MaxKeyBytes);
        return Err(Reply::error(format!(
            "ERR invalid key in '{cmd}' command: longer than {max} bytes"
        )));
    }
    Ok(())
}

/// Holds `wait` to `lock.max_wait`: `Err(max_wait)` when it is longer,
/// with the limit hit counted. Every command that waits goes through here,
/// whether it refuses a longer wait or caps it.
pub fn bound_wait(ctx: &Ctx<'_>, wait: Duration) -> Result<(), Duration> {
    let max_wait = ctx.config.lock.max_wait;
    if wait > max_wait {
        ctx.metrics.limit_hit(Limit::MaxWait);
        return Err(max_wait);
    }
    Ok(())
}

/// Refuses a `WAIT` longer than `lock.max_wait` (counted when refused).
pub fn check_wait(ctx: &Ctx<'_>, cmd: &str, wait: Option<Duration>) -> Result<(), Reply> {
    match wait.map(|w| bound_wait(ctx, w)) {
        Some(Err(max_wait)) => Err(Reply::error(format!(
            "ERR invalid wait in '{cmd}' command: at most {} ms",
            max_wait.as_millis()
        ))),
        _ => Ok(()),
    }
}

/// The response to a command refused by a check, counted as a rejected
/// lock operation.
pub fn rejected(ctx: &Ctx<'_>, op: Op, reply: Reply) -> Response {
    ctx.metrics.lock_op(op, Outcome::Rejected, 0.0);
    Response::Reply(reply)
}
