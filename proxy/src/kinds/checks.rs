//! The bounds every kind checks a command against before it reaches the
//! engine: key length (`limits.max_key_bytes`), owner length
//! (`limits.max_owner_bytes`), TTL within `[min_ttl, max_ttl]`, WAIT at
//! most `max_wait`, and the holds one connection and one user may have at
//! once (`limits.max_holds_per_connection`, `limits.max_holds_per_user`,
//! counted in [`super::holds`]). Each refusal counts its limit hit here,
//! once, so no path can check a bound and forget to count it.

use std::time::Duration;

use bytes::Bytes;

use super::holds::{HoldKind, Refused, Slot};
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

/// Checks an owner value (`OWNER`, `SET`'s value, a lock script's owner
/// argument) against `limits.max_owner_bytes` (counted when refused). Every
/// path that stores or compares an owner goes through here.
pub fn check_owner(ctx: &Ctx<'_>, cmd: &str, owner: &[u8]) -> Result<(), Reply> {
    let max = ctx.config.limits.max_owner_bytes;
    if owner.len() > max {
        ctx.metrics.limit_hit(Limit::MaxOwnerBytes);
        return Err(Reply::error(format!(
            "ERR {cmd}: owner is {} bytes, limit is {max} (limits.max_owner_bytes)",
            owner.len()
        )));
    }
    Ok(())
}

/// Reserves the places an acquire of `keys` by `owner` takes in its
/// connection's and its user's holds, refusing it (counted) past
/// `limits.max_holds_per_connection` or `limits.max_holds_per_user`. The
/// caller commits the [`Slot`] on a grant; dropped, it gives the places
/// back.
pub fn reserve_hold(
    ctx: &Ctx<'_>,
    cmd: &str,
    kind: HoldKind,
    keys: &[Bytes],
    owner: &Bytes,
) -> Result<Slot, Reply> {
    let lim = &ctx.config.limits;
    let per_conn = lim.max_holds_per_connection;
    let per_user = lim.max_holds_per_user;
    match ctx.holds.reserve(kind, keys, owner, per_conn, per_user) {
        Ok(slot) => Ok(slot),
        Err(Refused::Connection(full)) => {
            ctx.metrics.limit_hit(Limit::MaxHoldsPerConnection);
            Err(Reply::error(format!(
                "ERR {cmd}: this connection holds {} locks, limit is {} \
                 (limits.max_holds_per_connection)",
                full.held, full.cap
            )))
        }
        Err(Refused::User(full)) => {
            ctx.metrics.limit_hit(Limit::MaxHoldsPerUser);
            Err(Reply::error(format!(
                "ERR {cmd}: user '{}' holds {} locks, limit is {} \
                 (limits.max_holds_per_user)",
                ctx.holds.user_name, full.held, full.cap
            )))
        }
    }
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
