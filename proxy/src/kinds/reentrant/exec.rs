//! Runs the `RLOCK.*` commands: each checks its bounds, makes its engine
//! call, and shapes its reply. A grant goes back as a
//! [`Response::Reentrant`], re-checked by the writer before it is reported.

use std::time::Duration;

use bytes::Bytes;

use super::masters::{
    self as reentrant, ReentrantAcquire, ReentrantGrant, ReentrantRelease, ReentrantStatus,
};
use super::ReentrantCmd;
use crate::kinds::checks::{check_key, check_ttl, check_wait, rejected};
use crate::kinds::replies::{exhausted_reply, extend_reply};
use crate::kinds::Ctx;
use crate::lock::{Engine, Grant};
use crate::metrics::Op;
use crate::resp::Reply;
use crate::response::{int, ms_reply, no_quorum, Response, Unreported};

/// Runs one `RLOCK.*` command.
pub async fn reentrant(ctx: &Ctx<'_>, cmd: ReentrantCmd) -> Response {
    match cmd {
        ReentrantCmd::Acquire {
            key,
            ttl,
            owner,
            wait,
        } => acquire(ctx, key, ttl, owner, wait).await,
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
        .and_then(|_| check_ttl(ctx, name, ttl))
        .and_then(|_| check_wait(ctx, name, wait))
    {
        return rejected(ctx, Op::ReentrantAcquire, r);
    }
    let engine = ctx.engine;
    let outcome = match wait {
        Some(w) if !w.is_zero() => reentrant::acquire_wait(engine, &key, &owner, ttl, w).await,
        _ => reentrant::acquire(engine, &key, &owner, ttl).await,
    };
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
    if let Err(r) = check_key(ctx, "rlock.release", &key) {
        return rejected(ctx, Op::ReentrantRelease, r);
    }
    Response::Reply(match reentrant::release(ctx.engine, &key, &owner).await {
        ReentrantRelease::Released { remaining } => int(remaining),
        ReentrantRelease::NotHeld => Reply::Nil,
        ReentrantRelease::NoQuorum { voted, needed } => no_quorum(voted, needed),
    })
}

async fn extend(ctx: &Ctx<'_>, key: Bytes, owner: Bytes, ttl: Duration) -> Response {
    if let Err(r) =
        check_key(ctx, "rlock.extend", &key).and_then(|_| check_ttl(ctx, "rlock.extend", ttl))
    {
        return rejected(ctx, Op::Extend, r);
    }
    Response::Reply(extend_reply(
        reentrant::extend(ctx.engine, &key, &owner, ttl).await,
    ))
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
