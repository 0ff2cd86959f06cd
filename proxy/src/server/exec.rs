//! Runs lock commands against the engine and shapes their replies.
//!
//! A grant is not a reply yet: [`Response::Grant`] carries it to the writer,
//! which re-checks validity just before encoding (docs/design.md,
//! *Validity re-check before reply*). A grant whose validity ran
//! out while it waited behind earlier replies is released and answered as
//! not acquired.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::{BoxFuture, FutureExt};

use super::Shared;
use crate::command::{DropIn, LockCmd};
use crate::lock::holders::{self, HolderKeys};
use crate::lock::keepalive::KeepAlives;
use crate::lock::{
    no_quorum_message, plain, reentrant, AcquireOutcome, ExtendOutcome, Grant, Owner,
    ReleaseOutcome, StatusOutcome,
};
use crate::metrics::{Limit, Op, Outcome};
use crate::resp::{Protocol, Reply};

/// How a grant is shown to the client that asked for it.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantShape {
    /// `[owner, token, validity_ms]`, or a null array when expired.
    Native,
    /// `+OK`, or nil when expired (drop-in `SET NX`). With `attribute`, a
    /// RESP3 connection also gets the token and validity as an attribute.
    SetOk { attribute: bool },
    /// A catalogued script's own replies for success and for a grant that
    /// expired before it could be reported.
    Script { ok: Reply, expired: Reply },
}

/// A reply owed to a client.
#[derive(Debug)]
pub enum Response {
    Reply(Reply),
    Grant {
        grant: Grant,
        keys: Vec<Bytes>,
        owner: Bytes,
        shape: GrantShape,
    },
    /// A read-write lock or semaphore grant, shown as `[owner, token,
    /// validity_ms]` and re-checked like [`Response::Grant`].
    HolderGrant {
        op: Op,
        grant: Grant,
        keys: HolderKeys,
        owner: Bytes,
    },
    /// `+OK`, then close the connection.
    Quit,
    /// A `KEEPALIVE` grant: answered like [`Response::Grant`] with the
    /// native shape, and renewed from the moment it is reported.
    Kept {
        grant: Grant,
        key: Bytes,
        owner: Bytes,
        ttl: Duration,
        set: Arc<KeepAlives>,
    },
    /// A reentrant grant: `[owner, token, validity_ms, holds]`.
    Reentrant {
        grant: Grant,
        key: Bytes,
        owner: Bytes,
        holds: u64,
    },
}

impl std::fmt::Debug for KeepAlives {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeepAlives({} holds)", self.len())
    }
}

/// Encodes `resp` into `out`; returns true when the connection must close
/// after this write.
pub fn finish(shared: &Shared, resp: Response, proto: Protocol, out: &mut BytesMut) -> bool {
    match resp {
        Response::Reply(r) => r.encode(proto, out),
        Response::Quit => {
            Reply::Ok.encode(proto, out);
            return true;
        }
        Response::Grant {
            grant,
            keys,
            owner,
            shape,
        } => {
            let left =
                plain::finish(&shared.engine, &grant, &keys, &owner).filter(|d| d.as_millis() > 0);
            grant_reply(&shape, left, &owner, &grant).encode(proto, out);
        }
        Response::HolderGrant {
            op,
            grant,
            keys,
            owner,
        } => {
            let left = holders::finish(&shared.engine, op, &grant, &keys, &owner)
                .filter(|d| d.as_millis() > 0);
            grant_reply(&GrantShape::Native, left, &owner, &grant).encode(proto, out);
        }
        Response::Kept {
            grant,
            key,
            owner,
            ttl,
            set,
        } => {
            let keys = std::slice::from_ref(&key);
            let left =
                plain::finish(&shared.engine, &grant, keys, &owner).filter(|d| d.as_millis() > 0);
            if let Some(d) = left {
                // Renewal starts only once the client is told it holds it.
                set.start(key.clone(), owner.clone(), grant.token, ttl, d);
            }
            grant_reply(&GrantShape::Native, left, &owner, &grant).encode(proto, out);
        }
        Response::Reentrant {
            grant,
            key,
            owner,
            holds,
        } => {
            let left = reentrant::finish(&shared.engine, &grant, &key, &owner, holds)
                .filter(|d| d.as_millis() > 0);
            match left {
                Some(d) => Reply::Array(vec![
                    Reply::Bulk(owner),
                    Reply::Int(i64::try_from(grant.token.0).unwrap_or(i64::MAX)),
                    ms_reply(d),
                    Reply::Int(i64::try_from(holds).unwrap_or(i64::MAX)),
                ]),
                None => Reply::NilArray,
            }
            .encode(proto, out);
        }
    }
    false
}

fn grant_reply(shape: &GrantShape, left: Option<Duration>, owner: &Bytes, grant: &Grant) -> Reply {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let token = i64::try_from(grant.token.0).unwrap_or(i64::MAX);
    match (shape, left) {
        (GrantShape::Native, Some(d)) => Reply::Array(vec![
            Reply::Bulk(owner.clone()),
            Reply::Int(token),
            Reply::Int(ms(d)),
        ]),
        (GrantShape::Native, None) => Reply::NilArray,
        (GrantShape::SetOk { attribute: true }, Some(d)) => Reply::Attributed(
            vec![
                (Reply::bulk("token"), Reply::Int(token)),
                (Reply::bulk("validity_ms"), Reply::Int(ms(d))),
            ],
            Box::new(Reply::Ok),
        ),
        (GrantShape::SetOk { .. }, Some(_)) => Reply::Ok,
        (GrantShape::SetOk { .. }, None) => Reply::Nil,
        (GrantShape::Script { ok, .. }, Some(_)) => ok.clone(),
        (GrantShape::Script { expired, .. }, None) => expired.clone(),
    }
}

pub(crate) fn no_quorum(voted: usize, needed: usize) -> Reply {
    Reply::error(no_quorum_message(voted, needed))
}

pub(crate) fn ms_reply(d: Duration) -> Reply {
    Reply::Int(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Checks a TTL against the configured bounds (counted when refused).
pub fn check_ttl(shared: &Shared, cmd: &str, ttl: Duration) -> Result<(), Reply> {
    let cfg = shared.config();
    let lc = &cfg.lock;
    if ttl < lc.min_ttl || ttl > lc.max_ttl {
        shared.metrics.limit_hit(Limit::Ttl);
        return Err(Reply::error(format!(
            "ERR invalid ttl in '{cmd}' command: must be between {} and {} ms",
            lc.min_ttl.as_millis(),
            lc.max_ttl.as_millis()
        )));
    }
    Ok(())
}

/// Checks a key against the configured length limit (counted when refused).
pub fn check_key(shared: &Shared, cmd: &str, key: &[u8]) -> Result<(), Reply> {
    let max = shared.config().limits.max_key_bytes;
    if key.len() > max {
        shared.metrics.limit_hit(Limit::MaxKeyBytes);
        return Err(Reply::error(format!(
            "ERR invalid key in '{cmd}' command: longer than {max} bytes"
        )));
    }
    Ok(())
}

pub(crate) fn rejected(shared: &Shared, op: Op, reply: Reply) -> Response {
    shared.metrics.lock_op(op, Outcome::Rejected, 0.0);
    Response::Reply(reply)
}

/// Runs a native `LOCK.*` or `RLOCK.*` command for a connection whose
/// keepalive holds are `kept`.
pub fn lock(
    shared: Arc<Shared>,
    cmd: LockCmd,
    kept: Arc<KeepAlives>,
) -> BoxFuture<'static, Response> {
    async move {
        let engine = &shared.engine;
        match cmd {
            LockCmd::RAcquire { .. }
            | LockCmd::RRelease { .. }
            | LockCmd::RExtend { .. }
            | LockCmd::RStatus { .. } => super::reentrant::reentrant(&shared, cmd).await,
            LockCmd::Acquire {
                key,
                ttl,
                owner,
                wait,
                keepalive,
            } => {
                if let Err(r) = check_key(&shared, "lock.acquire", &key)
                    .and_then(|_| check_ttl(&shared, "lock.acquire", ttl))
                {
                    return rejected(&shared, Op::Acquire, r);
                }
                let max_wait = shared.config().lock.max_wait;
                if wait.is_some_and(|w| w > max_wait) {
                    shared.metrics.limit_hit(Limit::MaxWait);
                    let r = Reply::error(format!(
                        "ERR invalid wait in 'lock.acquire' command: at most {} ms",
                        max_wait.as_millis()
                    ));
                    return rejected(&shared, Op::Acquire, r);
                }
                let owner = owner.unwrap_or_else(|| Owner::random().0);
                let keys = vec![key];
                let outcome = match wait {
                    Some(w) if !w.is_zero() => {
                        plain::acquire_wait(engine, &keys, &owner, ttl, w).await
                    }
                    _ => plain::acquire(engine, &keys, &owner, ttl).await,
                };
                match outcome {
                    AcquireOutcome::Granted(grant) if keepalive => Response::Kept {
                        grant,
                        key: keys.into_iter().next().unwrap_or_default(),
                        owner,
                        ttl,
                        set: kept,
                    },
                    AcquireOutcome::Granted(grant) => Response::Grant {
                        grant,
                        keys,
                        owner,
                        shape: GrantShape::Native,
                    },
                    AcquireOutcome::Busy | AcquireOutcome::Expired => {
                        Response::Reply(Reply::NilArray)
                    }
                    AcquireOutcome::NoQuorum { voted, needed } => {
                        Response::Reply(no_quorum(voted, needed))
                    }
                }
            }
            LockCmd::Release { key, owner } => {
                if let Err(r) = check_key(&shared, "lock.release", &key) {
                    return rejected(&shared, Op::Release, r);
                }
                // Renewal stops first, so it cannot race the release.
                kept.stop(&key, &owner);
                Response::Reply(match plain::release(engine, &[key], &owner).await {
                    ReleaseOutcome::Released => Reply::Int(1),
                    ReleaseOutcome::NotHeld { .. } => Reply::Int(0),
                    ReleaseOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
                })
            }
            LockCmd::Extend { key, owner, ttl } => {
                if let Err(r) = check_key(&shared, "lock.extend", &key)
                    .and_then(|_| check_ttl(&shared, "lock.extend", ttl))
                {
                    return rejected(&shared, Op::Extend, r);
                }
                Response::Reply(
                    match plain::extend(engine, &[key], &owner, ttl, false).await {
                        ExtendOutcome::Extended { validity } if validity.as_millis() > 0 => {
                            ms_reply(validity)
                        }
                        ExtendOutcome::Extended { .. }
                        | ExtendOutcome::NotHeld
                        | ExtendOutcome::Expired => Reply::Nil,
                        ExtendOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
                    },
                )
            }
            LockCmd::Status { key } => {
                if let Err(r) = check_key(&shared, "lock.status", &key) {
                    return rejected(&shared, Op::Status, r);
                }
                Response::Reply(match plain::status(engine, &key).await {
                    StatusOutcome::Held { owner, token, pttl } => Reply::Array(vec![
                        Reply::Bulk(owner),
                        Reply::Int(i64::try_from(token.0).unwrap_or(i64::MAX)),
                        ms_reply(pttl),
                    ]),
                    StatusOutcome::Free => Reply::NilArray,
                    StatusOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
                })
            }
        }
    }
    .boxed()
}

/// Runs a drop-in command (`SET NX`, `GET`, `EXISTS`, `PTTL`, `TTL`,
/// `BLPOP` on signal keys); replies are exactly what one Redis would send.
/// With `token_attribute` (the connection sent `LOCK.TOKENS ON`), a RESP3
/// grant also carries its token and validity as an attribute.
pub fn dropin(
    shared: Arc<Shared>,
    cmd: DropIn,
    token_attribute: bool,
) -> BoxFuture<'static, Response> {
    async move {
        let engine = &shared.engine;
        // Every key a read would send to the masters is bounded like a
        // lock key; SET checks its own below, after its TTL default.
        let read_keys = match &cmd {
            DropIn::Get(k) | DropIn::Pttl(k) | DropIn::Ttl(k) => std::slice::from_ref(k),
            DropIn::Exists(ks) => ks.as_slice(),
            DropIn::SetNx { .. } | DropIn::Blpop { .. } => &[],
        };
        for k in read_keys {
            if let Err(r) = check_key(&shared, cmd.name(), k) {
                return rejected(&shared, Op::Status, r);
            }
        }
        match cmd {
            DropIn::SetNx { key, value, ttl } => {
                let ttl = match ttl {
                    Some(t) => t,
                    None if shared.config().lock.set_without_ttl_uses_max => {
                        shared.config().lock.max_ttl
                    }
                    None => {
                        let r = Reply::error(
                            "ERR 'set' without PX or EX is refused by lockgate: a lock needs an \
                             expiry (or set lock.set_without_ttl = \"max_ttl\")",
                        );
                        return rejected(&shared, Op::Acquire, r);
                    }
                };
                if let Err(r) =
                    check_key(&shared, "set", &key).and_then(|_| check_ttl(&shared, "set", ttl))
                {
                    return rejected(&shared, Op::Acquire, r);
                }
                let keys = vec![key];
                match plain::acquire(engine, &keys, &value, ttl).await {
                    AcquireOutcome::Granted(grant) => Response::Grant {
                        grant,
                        keys,
                        owner: value,
                        shape: GrantShape::SetOk {
                            attribute: token_attribute,
                        },
                    },
                    AcquireOutcome::Busy | AcquireOutcome::Expired => Response::Reply(Reply::Nil),
                    AcquireOutcome::NoQuorum { voted, needed } => {
                        Response::Reply(no_quorum(voted, needed))
                    }
                }
            }
            DropIn::Get(key) => Response::Reply(match plain::status(engine, &key).await {
                StatusOutcome::Held { owner, .. } => Reply::Bulk(owner),
                StatusOutcome::Free => Reply::Nil,
                StatusOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
            }),
            DropIn::Exists(keys) => {
                let mut n = 0;
                for k in &keys {
                    match plain::status(engine, k).await {
                        StatusOutcome::Held { .. } => n += 1,
                        StatusOutcome::Free => {}
                        StatusOutcome::NoQuorum { voted, needed } => {
                            return Response::Reply(no_quorum(voted, needed))
                        }
                    }
                }
                Response::Reply(Reply::Int(n))
            }
            DropIn::Pttl(key) => Response::Reply(match plain::status(engine, &key).await {
                StatusOutcome::Held { pttl, .. } => ms_reply(pttl),
                StatusOutcome::Free => Reply::Int(-2),
                StatusOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
            }),
            DropIn::Blpop { keys, timeout } => super::compat::blpop(&shared, keys, timeout).await,
            DropIn::Ttl(key) => Response::Reply(match plain::status(engine, &key).await {
                // Redis rounds the remaining time to the nearest second.
                StatusOutcome::Held { pttl, .. } => {
                    Reply::Int(i64::try_from((pttl.as_millis() + 500) / 1000).unwrap_or(i64::MAX))
                }
                StatusOutcome::Free => Reply::Int(-2),
                StatusOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
            }),
        }
    }
    .boxed()
}
