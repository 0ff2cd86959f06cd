//! Runs the `RWLOCK.*` commands: each checks its bounds, makes its engine
//! call, and shapes its reply. A grant goes back as a
//! [`Response::HolderGrant`], which the writer re-checks just before the
//! reply is encoded and releases when no validity is left.

use std::time::Duration;

use bytes::Bytes;

use super::masters::{self as rwlock, RwMode};
use super::{AcquireArgs, RwCmd};
use crate::kinds::checks::{check_key, check_owner, check_ttl, check_wait, rejected, reserve_hold};
use crate::kinds::holders::{HolderGrant, KindAcquire};
use crate::kinds::holds::HoldKind;
use crate::kinds::plain::exec::extend_holds;
use crate::kinds::replies::{extend_reply, holder_reply, lost_reply, release_reply};
use crate::kinds::Ctx;
use crate::lock::{Owner, ReleaseOutcome};
use crate::metrics::Op;
use crate::resp::Reply;
use crate::response::{no_quorum, Response};

/// Runs one `RWLOCK.*` command.
pub async fn rwlock(ctx: &Ctx<'_>, cmd: RwCmd) -> Response {
    let name = cmd.name();
    match cmd {
        RwCmd::Acquire(AcquireArgs {
            key,
            mode,
            ttl,
            owner,
            wait,
        }) => acquire(ctx, name, key, mode, ttl, owner, wait).await,
        RwCmd::Release { key, owner } => release(ctx, name, key, owner).await,
        RwCmd::Extend { key, owner, ttl } => extend(ctx, name, key, owner, ttl).await,
        RwCmd::Status { key } => status(ctx, name, key).await,
    }
}

async fn acquire(
    ctx: &Ctx<'_>,
    name: &str,
    key: Bytes,
    mode: RwMode,
    ttl: Duration,
    owner: Option<Bytes>,
    wait: Option<Duration>,
) -> Response {
    if let Err(r) = check_key(ctx, name, &key)
        .and_then(|_| owner.as_ref().map_or(Ok(()), |o| check_owner(ctx, name, o)))
        .and_then(|_| check_ttl(ctx, name, ttl))
        .and_then(|_| check_wait(ctx, name, wait))
    {
        return rejected(ctx, mode.op(), r);
    }
    let engine = ctx.engine;
    let owner = owner.unwrap_or_else(|| Owner::random().0);
    let slot = match reserve_hold(
        ctx,
        name,
        HoldKind::RwLock,
        std::slice::from_ref(&key),
        &owner,
    ) {
        Ok(s) => s,
        Err(r) => return rejected(ctx, mode.op(), r),
    };
    let outcome = rwlock::acquire(engine, &key, mode, &owner, ttl, wait).await;
    if let KindAcquire::Granted(grant) = &outcome {
        slot.commit(grant.valid_until, None);
    }
    match outcome {
        KindAcquire::Granted(grant) => Response::grant(HolderGrant {
            op: mode.op(),
            grant,
            keys: rwlock::keys(engine, &key),
            owner,
        }),
        lost => Response::Reply(lost_reply(name, &key, lost)),
    }
}

async fn release(ctx: &Ctx<'_>, name: &str, key: Bytes, owner: Bytes) -> Response {
    if let Err(r) = check_key(ctx, name, &key).and_then(|_| check_owner(ctx, name, &owner)) {
        return rejected(ctx, Op::RwRelease, r);
    }
    let out = rwlock::release(ctx.engine, &key, &owner).await;
    if !matches!(out, ReleaseOutcome::NoQuorum { .. }) {
        ctx.holds
            .forget(HoldKind::RwLock, std::slice::from_ref(&key), &owner);
    }
    Response::Reply(release_reply(out))
}

async fn extend(ctx: &Ctx<'_>, name: &str, key: Bytes, owner: Bytes, ttl: Duration) -> Response {
    if let Err(r) = check_key(ctx, name, &key)
        .and_then(|_| check_owner(ctx, name, &owner))
        .and_then(|_| check_ttl(ctx, name, ttl))
    {
        return rejected(ctx, Op::RwExtend, r);
    }
    let out = rwlock::extend(ctx.engine, &key, &owner, ttl).await;
    extend_holds(
        ctx,
        HoldKind::RwLock,
        std::slice::from_ref(&key),
        &owner,
        &out,
    );
    Response::Reply(extend_reply(out))
}

async fn status(ctx: &Ctx<'_>, name: &str, key: Bytes) -> Response {
    if let Err(r) = check_key(ctx, name, &key) {
        return rejected(ctx, Op::RwStatus, r);
    }
    Response::Reply(match rwlock::status(ctx.engine, &key).await {
        Ok(view) => Reply::Array(vec![
            view.writer.as_ref().map_or(Reply::NilArray, holder_reply),
            Reply::Array(view.readers.iter().map(holder_reply).collect()),
            Reply::Int(i64::from(view.writer_waiting)),
        ]),
        Err((voted, needed)) => no_quorum(voted, needed),
    })
}
