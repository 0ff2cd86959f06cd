//! Runs the read-write lock and semaphore commands against the
//! engine and shapes their replies. Bounds are the plain lock's: key length,
//! TTL within `[min_ttl, max_ttl]`, WAIT at most `max_wait`. A grant travels
//! to the writer as [`Response::HolderGrant`], which re-checks its validity
//! just before the reply is encoded and releases it when none is left.

use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};

use super::exec::{check_key, check_ttl, ms_reply, no_quorum, rejected, Response};
use super::Shared;
use crate::command::{RwCmd, SemCmd};
use crate::lock::holders::{Holder, KindAcquire, Mismatch};
use crate::lock::{rwlock, semaphore};
use crate::lock::{ExtendOutcome, Owner, ReleaseOutcome};
use crate::metrics::Op;
use crate::resp::Reply;

fn check_wait(shared: &Shared, cmd: &str, wait: Option<Duration>) -> Result<(), Reply> {
    let max_wait = shared.config().lock.max_wait;
    if wait.is_some_and(|w| w > max_wait) {
        return Err(Reply::error(format!(
            "ERR invalid wait in '{cmd}' command: at most {} ms",
            max_wait.as_millis()
        )));
    }
    Ok(())
}

fn holder_reply(h: &Holder) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(h.owner.clone()),
        Reply::Int(i64::try_from(h.token.0).unwrap_or(i64::MAX)),
        ms_reply(h.pttl),
    ])
}

fn release_reply(o: ReleaseOutcome) -> Reply {
    match o {
        ReleaseOutcome::Released => Reply::Int(1),
        ReleaseOutcome::NotHeld { .. } => Reply::Int(0),
        ReleaseOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
    }
}

fn extend_reply(o: ExtendOutcome) -> Reply {
    match o {
        ExtendOutcome::Extended { validity } if validity.as_millis() > 0 => ms_reply(validity),
        ExtendOutcome::Extended { .. } | ExtendOutcome::NotHeld | ExtendOutcome::Expired => {
            Reply::Nil
        }
        ExtendOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
    }
}

/// The reply to a lost acquire; a grant is shaped by the caller.
fn lost_reply(cmd: &str, o: KindAcquire) -> Reply {
    match o {
        KindAcquire::Granted(_) | KindAcquire::Busy | KindAcquire::Expired => Reply::NilArray,
        KindAcquire::NoQuorum { voted, needed } => no_quorum(voted, needed),
        KindAcquire::Refused(Mismatch { permits }) => Reply::error(format!(
            "ERR permits mismatch in '{cmd}' command: the semaphore is in use with {permits} permits"
        )),
    }
}

/// Runs an `RWLOCK.*` command.
pub fn rwlock(shared: Arc<Shared>, cmd: RwCmd) -> BoxFuture<'static, Response> {
    async move {
        let engine = &shared.engine;
        let name = cmd.name();
        match cmd {
            RwCmd::Acquire {
                key,
                mode,
                ttl,
                owner,
                wait,
            } => {
                if let Err(r) = check_key(&shared, name, &key)
                    .and_then(|_| check_ttl(&shared, name, ttl))
                    .and_then(|_| check_wait(&shared, name, wait))
                {
                    return rejected(&shared, mode.op(), r);
                }
                let owner = owner.unwrap_or_else(|| Owner::random().0);
                match rwlock::acquire(engine, &key, mode, &owner, ttl, wait).await {
                    KindAcquire::Granted(grant) => Response::HolderGrant {
                        op: mode.op(),
                        grant,
                        keys: rwlock::keys(engine, &key),
                        owner,
                    },
                    lost => Response::Reply(lost_reply(name, lost)),
                }
            }
            RwCmd::Release { key, owner } => {
                if let Err(r) = check_key(&shared, name, &key) {
                    return rejected(&shared, Op::RwRelease, r);
                }
                Response::Reply(release_reply(rwlock::release(engine, &key, &owner).await))
            }
            RwCmd::Extend { key, owner, ttl } => {
                if let Err(r) =
                    check_key(&shared, name, &key).and_then(|_| check_ttl(&shared, name, ttl))
                {
                    return rejected(&shared, Op::RwExtend, r);
                }
                Response::Reply(extend_reply(
                    rwlock::extend(engine, &key, &owner, ttl).await,
                ))
            }
            RwCmd::Status { key } => {
                if let Err(r) = check_key(&shared, name, &key) {
                    return rejected(&shared, Op::RwStatus, r);
                }
                Response::Reply(match rwlock::status(engine, &key).await {
                    Ok(view) => Reply::Array(vec![
                        view.writer.as_ref().map_or(Reply::NilArray, holder_reply),
                        Reply::Array(view.readers.iter().map(holder_reply).collect()),
                        Reply::Int(i64::from(view.writer_waiting)),
                    ]),
                    Err((voted, needed)) => no_quorum(voted, needed),
                })
            }
        }
    }
    .boxed()
}

/// Runs a `SEM.*` command.
pub fn sem(shared: Arc<Shared>, cmd: SemCmd) -> BoxFuture<'static, Response> {
    async move {
        let engine = &shared.engine;
        match cmd {
            SemCmd::Acquire {
                key,
                permits,
                ttl,
                owner,
                wait,
            } => {
                let name = "sem.acquire";
                if let Err(r) = check_key(&shared, name, &key)
                    .and_then(|_| check_ttl(&shared, name, ttl))
                    .and_then(|_| check_wait(&shared, name, wait))
                {
                    return rejected(&shared, Op::SemAcquire, r);
                }
                let owner = owner.unwrap_or_else(|| Owner::random().0);
                match semaphore::acquire(engine, &key, permits, &owner, ttl, wait).await {
                    KindAcquire::Granted(grant) => Response::HolderGrant {
                        op: Op::SemAcquire,
                        grant,
                        keys: semaphore::keys(engine, &key),
                        owner,
                    },
                    lost => Response::Reply(lost_reply(name, lost)),
                }
            }
            SemCmd::Release { key, owner } => {
                if let Err(r) = check_key(&shared, "sem.release", &key) {
                    return rejected(&shared, Op::SemRelease, r);
                }
                Response::Reply(release_reply(
                    semaphore::release(engine, &key, &owner).await,
                ))
            }
            SemCmd::Extend { key, owner, ttl } => {
                if let Err(r) = check_key(&shared, "sem.extend", &key)
                    .and_then(|_| check_ttl(&shared, "sem.extend", ttl))
                {
                    return rejected(&shared, Op::SemExtend, r);
                }
                Response::Reply(extend_reply(
                    semaphore::extend(engine, &key, &owner, ttl).await,
                ))
            }
            SemCmd::Status { key } => {
                if let Err(r) = check_key(&shared, "sem.status", &key) {
                    return rejected(&shared, Op::SemStatus, r);
                }
                Response::Reply(match semaphore::status(engine, &key).await {
                    Ok(view) => Reply::Array(vec![
                        Reply::Int(i64::try_from(view.permits).unwrap_or(i64::MAX)),
                        Reply::Int(i64::try_from(view.free()).unwrap_or(i64::MAX)),
                        Reply::Array(view.holders.iter().map(holder_reply).collect()),
                    ]),
                    Err((voted, needed)) => no_quorum(voted, needed),
                })
            }
        }
    }
    .boxed()
}
