//! Runs the plain lock's commands: the native `LOCK.*` ones and the
//! drop-in `SET NX` and reads. Each command checks its bounds, makes its
//! engine call, and shapes its reply; a grant goes back as a
//! [`Response::Grant`] (or [`Response::Kept`] for `KEEPALIVE`) so that the
//! writer re-checks its validity before reporting it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::keepalive::KeepAlives;
use super::masters as plain;
use super::{AcquireArgs, LockCmd};
use crate::kinds::checks::{check_key, check_owner, check_ttl, check_wait, rejected, reserve_hold};
use crate::kinds::holds::HoldKind;
use crate::kinds::plain::DropIn;
use crate::kinds::replies::{exhausted_reply, extend_reply, release_reply};
use crate::kinds::Ctx;
use crate::lock::{
    AcquireOutcome, Engine, ExtendOutcome, Grant, Owner, ReleaseOutcome, StatusOutcome,
};
use crate::metrics::Op;
use crate::resp::Reply;
use crate::response::{int, ms_reply, no_quorum, GrantShape, Response, Unreported};

/// Runs one `LOCK.*` command.
pub async fn lock(ctx: &Ctx<'_>, cmd: LockCmd) -> Response {
    match cmd {
        LockCmd::Acquire(AcquireArgs {
            key,
            ttl,
            owner,
            wait,
            keepalive,
        }) => acquire(ctx, key, ttl, owner, wait, keepalive).await,
        LockCmd::Release { key, owner } => release(ctx, key, owner).await,
        LockCmd::Extend { key, owner, ttl } => extend(ctx, key, owner, ttl).await,
        LockCmd::Status { key } => status(ctx, key).await,
    }
}

async fn acquire(
    ctx: &Ctx<'_>,
    key: Bytes,
    ttl: Duration,
    owner: Option<Bytes>,
    wait: Option<Duration>,
    keepalive: bool,
) -> Response {
    let name = "lock.acquire";
    if let Err(r) = check_key(ctx, name, &key)
        .and_then(|_| owner.as_ref().map_or(Ok(()), |o| check_owner(ctx, name, o)))
        .and_then(|_| check_ttl(ctx, name, ttl))
        .and_then(|_| check_wait(ctx, name, wait))
    {
        return rejected(ctx, Op::Acquire, r);
    }
    let engine = ctx.engine;
    let owner = owner.unwrap_or_else(|| Owner::random().0);
    let keys = vec![key];
    let slot = match reserve_hold(ctx, name, HoldKind::Plain, &keys, &owner) {
        Ok(s) => s,
        Err(r) => return rejected(ctx, Op::Acquire, r),
    };
    let outcome = match wait {
        Some(w) if !w.is_zero() => plain::acquire_wait(engine, &keys, &owner, ttl, w).await,
        _ => plain::acquire(engine, &keys, &owner, ttl).await,
    };
    if let AcquireOutcome::Granted(grant) = &outcome {
        slot.commit(grant.valid_until, keepalive.then_some(ctx.keepalive));
    }
    match outcome {
        AcquireOutcome::Granted(grant) if keepalive => Response::grant(KeptGrant {
            grant,
            key: keys.into_iter().next().unwrap_or_default(),
            owner,
            ttl,
            set: ctx.keepalive.clone(),
        }),
        AcquireOutcome::Granted(grant) => Response::grant(PlainGrant {
            grant,
            keys,
            owner,
            shape: GrantShape::Native,
        }),
        AcquireOutcome::Busy | AcquireOutcome::Expired => Response::Reply(Reply::NilArray),
        AcquireOutcome::NoQuorum { voted, needed } => Response::Reply(no_quorum(voted, needed)),
        AcquireOutcome::Exhausted => Response::Reply(exhausted_reply(name, &keys)),
    }
}

async fn release(ctx: &Ctx<'_>, key: Bytes, owner: Bytes) -> Response {
    let name = "lock.release";
    if let Err(r) = check_key(ctx, name, &key).and_then(|_| check_owner(ctx, name, &owner)) {
        return rejected(ctx, Op::Release, r);
    }
    // Renewal stops first, so it cannot race the release.
    ctx.keepalive.stop(&key, &owner);
    let keys = [key];
    let out = plain::release(ctx.engine, &keys, &owner).await;
    forget_unless_no_quorum(ctx, &keys, &owner, &out);
    Response::Reply(release_reply(out))
}

/// A release that reached a quorum (released, or not held at all) ends the
/// holds it names.
pub fn forget_unless_no_quorum(ctx: &Ctx<'_>, keys: &[Bytes], owner: &Bytes, out: &ReleaseOutcome) {
    if !matches!(out, ReleaseOutcome::NoQuorum { .. }) {
        ctx.holds.forget(HoldKind::Plain, keys, owner);
    }
}

/// An extend that reached a quorum moves the holds' deadline.
pub fn extend_holds(
    ctx: &Ctx<'_>,
    kind: HoldKind,
    keys: &[Bytes],
    owner: &Bytes,
    out: &ExtendOutcome,
) {
    if let ExtendOutcome::Extended { validity } = out {
        ctx.holds
            .extend(kind, keys, owner, tokio::time::Instant::now() + *validity);
    }
}

async fn extend(ctx: &Ctx<'_>, key: Bytes, owner: Bytes, ttl: Duration) -> Response {
    let name = "lock.extend";
    if let Err(r) = check_key(ctx, name, &key)
        .and_then(|_| check_owner(ctx, name, &owner))
        .and_then(|_| check_ttl(ctx, name, ttl))
    {
        return rejected(ctx, Op::Extend, r);
    }
    let keys = [key];
    let out = plain::extend(ctx.engine, &keys, &owner, ttl, false).await;
    extend_holds(ctx, HoldKind::Plain, &keys, &owner, &out);
    Response::Reply(extend_reply(out))
}

async fn status(ctx: &Ctx<'_>, key: Bytes) -> Response {
    if let Err(r) = check_key(ctx, "lock.status", &key) {
        return rejected(ctx, Op::Status, r);
    }
    Response::Reply(match plain::status(ctx.engine, &key).await {
        StatusOutcome::Held { owner, token, pttl } => {
            Reply::Array(vec![Reply::Bulk(owner), int(token.0), ms_reply(pttl)])
        }
        StatusOutcome::Free => Reply::NilArray,
        StatusOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
    })
}

/// Runs a drop-in command (`SET NX`, `GET`, `EXISTS`, `PTTL`, `TTL`);
/// replies are exactly what one Redis would send. With the connection's
/// `token_attribute`, a RESP3 grant also carries its token and validity as
/// an attribute. `BLPOP` waits on library signal keys and runs with the
/// catalogued scripts, never here.
pub async fn dropin(ctx: &Ctx<'_>, cmd: DropIn) -> Response {
    // Every key a read would send to the masters is bounded like a lock
    // key; SET checks its own, after its TTL default.
    let read_keys = match &cmd {
        DropIn::Get(k) | DropIn::Pttl(k) | DropIn::Ttl(k) => std::slice::from_ref(k),
        DropIn::Exists(ks) => ks.as_slice(),
        DropIn::SetNx { .. } | DropIn::Blpop { .. } => &[],
    };
    for k in read_keys {
        if let Err(r) = check_key(ctx, cmd.name(), k) {
            return rejected(ctx, Op::Status, r);
        }
    }
    match cmd {
        DropIn::SetNx { key, value, ttl } => set_nx(ctx, key, value, ttl).await,
        DropIn::Get(key) => get(ctx, key).await,
        DropIn::Exists(keys) => exists(ctx, keys).await,
        DropIn::Pttl(key) => pttl(ctx, key).await,
        DropIn::Ttl(key) => ttl(ctx, key).await,
        DropIn::Blpop { .. } => Response::Reply(Reply::error(
            "ERR internal error: BLPOP reached the plain lock's drop-in path",
        )),
    }
}

async fn set_nx(ctx: &Ctx<'_>, key: Bytes, value: Bytes, ttl: Option<Duration>) -> Response {
    let lc = &ctx.config.lock;
    let ttl = match ttl {
        Some(t) => t,
        None if lc.set_without_ttl_uses_max => lc.max_ttl,
        None => {
            let r = Reply::error(
                "ERR 'set' without PX or EX is refused by lockgate: a lock needs an \
                 expiry (or set lock.set_without_ttl = \"max_ttl\")",
            );
            return rejected(ctx, Op::Acquire, r);
        }
    };
    if let Err(r) = check_key(ctx, "set", &key)
        .and_then(|_| check_owner(ctx, "set", &value))
        .and_then(|_| check_ttl(ctx, "set", ttl))
    {
        return rejected(ctx, Op::Acquire, r);
    }
    let keys = vec![key];
    let slot = match reserve_hold(ctx, "set", HoldKind::Plain, &keys, &value) {
        Ok(s) => s,
        Err(r) => return rejected(ctx, Op::Acquire, r),
    };
    let outcome = plain::acquire(ctx.engine, &keys, &value, ttl).await;
    if let AcquireOutcome::Granted(grant) = &outcome {
        slot.commit(grant.valid_until, None);
    }
    match outcome {
        AcquireOutcome::Granted(grant) => Response::grant(PlainGrant {
            grant,
            keys,
            owner: value,
            shape: GrantShape::SetOk {
                attribute: ctx.token_attribute,
            },
        }),
        AcquireOutcome::Busy | AcquireOutcome::Expired => Response::Reply(Reply::Nil),
        AcquireOutcome::NoQuorum { voted, needed } => Response::Reply(no_quorum(voted, needed)),
        AcquireOutcome::Exhausted => Response::Reply(exhausted_reply("set", &keys)),
    }
}

async fn get(ctx: &Ctx<'_>, key: Bytes) -> Response {
    Response::Reply(match plain::status(ctx.engine, &key).await {
        StatusOutcome::Held { owner, .. } => Reply::Bulk(owner),
        StatusOutcome::Free => Reply::Nil,
        StatusOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
    })
}

async fn exists(ctx: &Ctx<'_>, keys: Vec<Bytes>) -> Response {
    let mut n = 0;
    for k in &keys {
        match plain::status(ctx.engine, k).await {
            StatusOutcome::Held { .. } => n += 1,
            StatusOutcome::Free => {}
            StatusOutcome::NoQuorum { voted, needed } => {
                return Response::Reply(no_quorum(voted, needed))
            }
        }
    }
    Response::Reply(Reply::Int(n))
}

async fn pttl(ctx: &Ctx<'_>, key: Bytes) -> Response {
    Response::Reply(match plain::status(ctx.engine, &key).await {
        StatusOutcome::Held { pttl, .. } => ms_reply(pttl),
        StatusOutcome::Free => Reply::Int(-2),
        StatusOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
    })
}

async fn ttl(ctx: &Ctx<'_>, key: Bytes) -> Response {
    Response::Reply(match plain::status(ctx.engine, &key).await {
        // Redis rounds the remaining time to the nearest second.
        StatusOutcome::Held { pttl, .. } => {
            Reply::Int(i64::try_from((pttl.as_millis() + 500) / 1000).unwrap_or(i64::MAX))
        }
        StatusOutcome::Free => Reply::Int(-2),
        StatusOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
    })
}

/// A plain grant on its way to the client: native, drop-in or a catalogued
/// script's shape.
pub struct PlainGrant {
    pub grant: Grant,
    pub keys: Vec<Bytes>,
    pub owner: Bytes,
    pub shape: GrantShape,
}

impl Unreported for PlainGrant {
    fn report(self: Box<Self>, engine: &Engine) -> Reply {
        let left = plain::finish(engine, &self.grant, &self.keys, &self.owner)
            .filter(|d| d.as_millis() > 0);
        self.shape.reply(left, &self.owner, &self.grant)
    }
}

/// A `KEEPALIVE` grant: answered in the native shape, and renewed from the
/// moment the client is told it holds it.
pub struct KeptGrant {
    pub grant: Grant,
    pub key: Bytes,
    pub owner: Bytes,
    pub ttl: Duration,
    pub set: Arc<KeepAlives>,
}

impl Unreported for KeptGrant {
    fn report(self: Box<Self>, engine: &Engine) -> Reply {
        let keys = std::slice::from_ref(&self.key);
        let left =
            plain::finish(engine, &self.grant, keys, &self.owner).filter(|d| d.as_millis() > 0);
        if let Some(d) = left {
            // Renewal starts only once the client is told it holds it.
            self.set.start(
                self.key.clone(),
                self.owner.clone(),
                self.grant.token,
                self.ttl,
                d,
            );
        }
        GrantShape::Native.reply(left, &self.owner, &self.grant)
    }
}
