//! Runs the `SEM.*` commands: each checks its bounds, makes its engine
//! call, and shapes its reply. A grant goes back as a
//! [`Response::HolderGrant`], which the writer re-checks just before the
//! reply is encoded and releases when no validity is left.

use std::time::Duration;

use bytes::Bytes;

use super::masters as semaphore;
use super::{AcquireArgs, SemCmd};
use crate::kinds::checks::{check_key, check_owner, check_ttl, check_wait, rejected, reserve_hold};
use crate::kinds::holders::{HolderGrant, KindAcquire};
use crate::kinds::holds::HoldKind;
use crate::kinds::plain::exec::extend_holds;
use crate::kinds::replies::{extend_reply, holder_reply, lost_reply, release_reply};
use crate::kinds::Ctx;
use crate::lock::{Owner, ReleaseOutcome};
use crate::metrics::Op;
use crate::resp::Reply;
use crate::response::{int, no_quorum, Response};

/// Runs one `SEM.*` command.
pub async fn sem(ctx: &Ctx<'_>, cmd: SemCmd) -> Response {
    match cmd {
        SemCmd::Acquire(AcquireArgs {
            key,
            permits,
            ttl,
            owner,
            wait,
        }) => acquire(ctx, key, permits, ttl, owner, wait).await,
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
        .and_then(|_| owner.as_ref().map_or(Ok(()), |o| check_owner(ctx, name, o)))
        .and_then(|_| check_ttl(ctx, name, ttl))
        .and_then(|_| check_wait(ctx, name, wait))
    {
        return rejected(ctx, Op::SemAcquire, r);
    }
    let engine = ctx.engine;
    let owner = owner.unwrap_or_else(|| Owner::random().0);
    let keys = std::slice::from_ref(&key);
    let slot = match reserve_hold(ctx, name, HoldKind::Semaphore, keys, &owner) {
        Ok(s) => s,
        Err(r) => return rejected(ctx, Op::SemAcquire, r),
    };
    let outcome = semaphore::acquire(engine, &key, permits, &owner, ttl, wait).await;
    if let KindAcquire::Granted(grant) = &outcome {
        slot.commit(grant.valid_until, None);
    }
    match outcome {
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
    let name = "sem.release";
    if let Err(r) = check_key(ctx, name, &key).and_then(|_| check_owner(ctx, name, &owner)) {
        return rejected(ctx, Op::SemRelease, r);
    }
    let out = semaphore::release(ctx.engine, &key, &owner).await;
    if !matches!(out, ReleaseOutcome::NoQuorum { .. }) {
        ctx.holds
            .forget(HoldKind::Semaphore, std::slice::from_ref(&key), &owner);
    }
    Response::Reply(release_reply(out))
}

async fn extend(ctx: &Ctx<'_>, key: Bytes, owner: Bytes, ttl: Duration) -> Response {
    let name = "sem.extend";
    if let Err(r) = check_key(ctx, name, &key)
        .and_then(|_| check_owner(ctx, name, &owner))
        .and_then(|_| check_ttl(ctx, name, ttl))
    {
        return rejected(ctx, Op::SemExtend, r);
    }
    let out = semaphore::extend(ctx.engine, &key, &owner, ttl).await;
    extend_holds(
        ctx,
        HoldKind::Semaphore,
        std::slice::from_ref(&key),
        &owner,
        &out,
    );
    Response::Reply(extend_reply(out))
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
