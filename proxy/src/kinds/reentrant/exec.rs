//! Runs the `RLOCK.*` commands: each checks its bounds, makes its engine
//! call, and shapes its reply. A grant goes back as a
//! [`Response::Reentrant`], re-checked by the writer before it is reported.

use std::time::Duration;

use bytes::Bytes;

use super::ReentrantCmd;
use crate::kinds::checks::{check_key, check_ttl, check_wait, rejected};
use crate::kinds::replies::extend_reply;
use crate::kinds::Ctx;
use crate::lock::reentrant::{ReentrantAcquire, ReentrantRelease, ReentrantStatus};
use crate::metrics::Op;
use crate::resp::Reply;
use crate::response::{int, ms_reply, no_quorum, Response};

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
        Some(w) if !w.is_zero() => engine
            .wait_fair(
                &key,
                w,
                || engine.racquire(&key, &owner, ttl),
                |o| matches!(o, ReentrantAcquire::Granted { .. }),
            )
            .await
            .unwrap_or(ReentrantAcquire::Busy),
        _ => engine.racquire(&key, &owner, ttl).await,
    };
    match outcome {
        ReentrantAcquire::Granted { grant, holds } => Response::Reentrant {
            grant,
            key,
            owner,
            holds,
        },
        ReentrantAcquire::Busy | ReentrantAcquire::Expired => Response::Reply(Reply::NilArray),
        ReentrantAcquire::NoQuorum { voted, needed } => Response::Reply(no_quorum(voted, needed)),
    }
}

async fn release(ctx: &Ctx<'_>, key: Bytes, owner: Bytes) -> Response {
    if let Err(r) = check_key(ctx, "rlock.release", &key) {
        return rejected(ctx, Op::ReentrantRelease, r);
    }
    Response::Reply(match ctx.engine.rrelease(&key, &owner).await {
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
    Response::Reply(extend_reply(ctx.engine.rextend(&key, &owner, ttl).await))
}

async fn status(ctx: &Ctx<'_>, key: Bytes) -> Response {
    if let Err(r) = check_key(ctx, "rlock.status", &key) {
        return rejected(ctx, Op::Status, r);
    }
    Response::Reply(match ctx.engine.rstatus(&key).await {
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
