//! Runs the `RLOCK.*` commands: each checks its bounds, makes its engine
//! call, and shapes its reply. A grant goes back as a
//! [`Response::Reentrant`], re-checked by the writer before it is reported.

use std::time::Duration;

use bytes::Bytes;

use super::masters::{
    self as reentrant, ReentrantAcquire, ReentrantGrant, ReentrantRelease, ReentrantStatus,
};
use super::{AcquireArgs, ReentrantCmd};
use crate::kinds::checks::{check_key, check_owner, check_ttl, check_wait, rejected, reserve_hold};
use crate::kinds::holds::HoldKind;
use crate::kinds::plain::exec::extend_holds;
use crate::kinds::replies::{exhausted_reply, extend_reply};
use crate::kinds::Ctx;
use crate::lock::{Engine, Grant};
use crate::metrics::Op;
use crate::resp::Reply;
use crate::response::{int, ms_reply, no_quorum, Response, Unreported};

/// Runs one `RLOCK.*` command.
pub async fn reentrant(ctx: &Ctx<'_>, cmd: ReentrantCmd) -> Response {
    match cmd {
        ReentrantCmd::Acquire(AcquireArgs {
            key,
            ttl,
            owner,
            wait,
        }) => acquire(ctx, key, ttl, owner, wait).await,
        ReentrantCmd::Release { key, owner } => release(ctx, key, owner).await,
        ReentrantCmd::Extend { key, owner, ttl } => extend(ctx, key, owner, ttl).await,
        ReentrantCmd::Status { key } => status(ctx, key).await,
    }
}

async fn acquire(
    ctx: &Ctx<'_>,
    key: Bytes,
    ttl: Duration,
    owner: Bytes,
    wait: Option<Duration>,
) -> Response {
    let name = "rlock.acquire";
    if let Err(r) = check_key(ctx, name, &key)
        .and_then(|_| check_owner(ctx, name, &owner))
        .and_then(|_| check_ttl(ctx, name, ttl))
        .and_then(|_| check_wait(ctx, name, wait))
    {
        return rejected(ctx, Op::ReentrantAcquire, r);
    }
    let engine = ctx.engine;
    let slot = match reserve_hold(
        ctx,
        name,
        HoldKind::Reentrant,
        std::slice::from_ref(&key),
        &owner,
    ) {
        Ok(s) => s,
        Err(r) => return rejected(ctx, Op::ReentrantAcquire, r),
    };
    let outcome = match wait {
        Some(w) if !w.is_zero() => reentrant::acquire_wait(engine, &key, &owner, ttl, w).await,
        _ => reentrant::acquire(engine, &key, &owner, ttl).await,
    };
    if let ReentrantAcquire::Granted(g) = &outcome {
        slot.commit(g.grant.valid_until, None);
    }
    match outcome {
        ReentrantAcquire::Granted(ReentrantGrant { grant, holds }) => Response::grant(Reentered {
            grant,
            key,
            owner,
            holds,
        }),
        ReentrantAcquire::Busy | ReentrantAcquire::Expired => Response::Reply(Reply::NilArray),
        ReentrantAcquire::NoQuorum { voted, needed } => Response::Reply(no_quorum(voted, needed)),
        ReentrantAcquire::Exhausted => {
            Response::Reply(exhausted_reply(name, std::slice::from_ref(&key)))
        }
    }
}

async fn release(ctx: &Ctx<'_>, key: Bytes, owner: Bytes) -> Response {
    let name = "rlock.release";
    if let Err(r) = check_key(ctx, name, &key).and_then(|_| check_owner(ctx, name, &owner)) {
        return rejected(ctx, Op::ReentrantRelease, r);
    }
    let out = reentrant::release(ctx.engine, &key, &owner).await;
    if matches!(
        out,
        ReentrantRelease::Released { remaining: 0 } | ReentrantRelease::NotHeld
    ) {
        ctx.holds
            .forget(HoldKind::Reentrant, std::slice::from_ref(&key), &owner);
    }
    Response::Reply(match out {
        ReentrantRelease::Released { remaining } => int(remaining),
        ReentrantRelease::NotHeld => Reply::Nil,
        ReentrantRelease::NoQuorum { voted, needed } => no_quorum(voted, needed),
    })
}

async fn extend(ctx: &Ctx<'_>, key: Bytes, owner: Bytes, ttl: Duration) -> Response {
    let name = "rlock.extend";
    if let Err(r) = check_key(ctx, name, &key)
        .and_then(|_| check_owner(ctx, name, &owner))
        .and_then(|_| check_ttl(ctx, name, ttl))
    {
        return rejected(ctx, Op::Extend, r);
    }
    let out = reentrant::extend(ctx.engine, &key, &owner, ttl).await;
    extend_holds(
        ctx,
        HoldKind::Reentrant,
        std::slice::from_ref(&key),
        &owner,
        &out,
    );
    Response::Reply(extend_reply(out))
}

async fn status(ctx: &Ctx<'_>, key: Bytes) -> Response {
    if let Err(r) = check_key(ctx, "rlock.status", &key) {
        return rejected(ctx, Op::Status, r);
    }
    Response::Reply(match reentrant::status(ctx.engine, &key).await {
        ReentrantStatus::Held {
            owner,
            token,
            pttl,
            holds,
        } => Reply::Array(vec![
            Reply::Bulk(owner),
            int(token.0),
            ms_reply(pttl),
            int(holds),
        ]),
        ReentrantStatus::NotHeld => Reply::NilArray,
        ReentrantStatus::NoQuorum { voted, needed } => no_quorum(voted, needed),
    })
}

/// A reentrant grant on its way to the client:
/// `[owner, token, validity_ms, holds]`.
pub struct Reentered {
    pub grant: Grant,
    pub key: Bytes,
    pub owner: Bytes,
    pub holds: u64,
}

impl Unreported for Reentered {
    fn report(self: Box<Self>, engine: &Engine) -> Reply {
        let left = reentrant::finish(engine, &self.grant, &self.key, &self.owner, self.holds)
            .filter(|d| d.as_millis() > 0);
        reentrant_reply(left, self.owner, &self.grant, self.holds)
    }
}

/// The reentrant grant's reply: `[owner, token, validity_ms, holds]`, or a
/// null array when no validity is `left`.
pub fn reentrant_reply(left: Option<Duration>, owner: Bytes, grant: &Grant, holds: u64) -> Reply {
    match left {
        Some(d) => Reply::Array(vec![
            Reply::Bulk(owner),
            int(grant.token.0),
            ms_reply(d),
            int(holds),
        ]),
        None => Reply::NilArray,
    }
}
