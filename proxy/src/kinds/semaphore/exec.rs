//! Runs the `SEM.*` commands: each checks its bounds, makes its engine
//! call, and shapes its reply. A grant goes back as a
//! [`Response::HolderGrant`], which the writer re-checks just before the
//! reply is encoded and releases when no validity is left.

use std::time::Duration;

use bytes::Bytes;

use super::masters as semaphore;
use super::SemCmd;
use crate::kinds::checks::{check_key, check_ttl, check_wait, rejected};
use crate::kinds::holders::{HolderGrant, KindAcquire};
use crate::kinds::replies::{extend_reply, holder_reply, lost_reply, release_reply};
use crate::kinds::Ctx;
use crate::lock::Owner;
use crate::metrics::Op;
use crate::resp::Reply;
use crate::response::{int, no_quorum, Response};

/// Runs one `SEM.*` command.
pub async fn sem(ctx: &Ctx<'_>, cmd: SemCmd) -> Response {
    match cmd {
        SemCmd::Acquire {
            key,
            permits,
            ttl,
            owner,
            wait,
        } => acquire(ctx, key, permits, ttl, owner, wait).await,
        SemCmd::Release { key, owner } => release(ctx, key, owner).await,
        SemCmd::Extend { key, owner, ttl } => extend(ctx, key, owner, ttl).await,
        SemCmd::Status { key } => status(ctx, key).await,
    }
}

async fn acquire(
    ctx: &Ctx<'_>,
    key: Bytes,
    permits: u64,
    ttl: Duration,
    owner: Option<Bytes>,
    wait: Option<Duration>,
) -> Response {
    let name = "sem.acquire";
    if let Err(r) = check_key(ctx, name, &key)
        .and_then(|_| check_ttl(ctx, name, ttl))
        .and_then(|_| check_wait(ctx, name, wait))
    {
        return rejected(ctx, Op::SemAcquire, r);
    }
    let engine = ctx.engine;
    let owner = owner.unwrap_or_else(|| Owner::random().0);
    match semaphore::acquire(engine, &key, permits, &owner, ttl, wait).await {
        KindAcquire::Granted(grant) => Response::grant(HolderGrant {
            op: Op::SemAcquire,
            grant,
            keys: semaphore::keys(engine, &key),
            owner,
        }),
        lost => Response::Reply(lost_reply(name, &key, lost)),
    }
}

async fn release(ctx: &Ctx<'_>, key: Bytes, owner: Bytes) -> Response {
    if let Err(r) = check_key(ctx, "sem.release", &key) {
        return rejected(ctx, Op::SemRelease, r);
    }
    Response::Reply(release_reply(
        semaphore::release(ctx.engine, &key, &owner).await,
    ))
}

async fn extend(ctx: &Ctx<'_>, key: Bytes, owner: Bytes, ttl: Duration) -> Response {
    if let Err(r) =
        check_key(ctx, "sem.extend", &key).and_then(|_| check_ttl(ctx, "sem.extend", ttl))
    {
        return rejected(ctx, Op::SemExtend, r);
    }
    Response::Reply(extend_reply(
        semaphore::extend(ctx.engine, &key, &owner, ttl).await,
    ))
}

async fn status(ctx: &Ctx<'_>, key: Bytes) -> Response {
    if let Err(r) = check_key(ctx, "sem.status", &key) {
        return rejected(ctx, Op::SemStatus, r);
    }
    Response::Reply(match semaphore::status(ctx.engine, &key).await {
        Ok(view) => Reply::Array(vec![
            int(view.permits),
            int(view.free()),
            Reply::Array(view.holders.iter().map(holder_reply).collect()),
        ]),
        Err((voted, needed)) => no_quorum(voted, needed),
    })
}
