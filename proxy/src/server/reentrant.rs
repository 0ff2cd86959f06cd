//! Runs the reentrant lock commands (`RLOCK.*`) and shapes their replies.
//! Bounds (key length, TTL, WAIT) are the same as for `LOCK.*`.

use super::exec::{check_key, check_ttl, ms_reply, no_quorum, rejected, Response};
use super::Shared;
use crate::command::LockCmd;
use crate::lock::reentrant::{
    self, ReentrantAcquire, ReentrantGrant, ReentrantRelease, ReentrantStatus,
};
use crate::lock::ExtendOutcome;
use crate::metrics::Op;
use crate::resp::Reply;

/// Runs one `RLOCK.*` command; any other command is a programming error
/// answered with an error reply, never a panic.
pub(super) async fn reentrant(shared: &Shared, cmd: LockCmd) -> Response {
    let engine = &shared.engine;
    match cmd {
        LockCmd::RAcquire {
            key,
            ttl,
            owner,
            wait,
        } => {
            if let Err(r) = check_key(shared, "rlock.acquire", &key)
                .and_then(|_| check_ttl(shared, "rlock.acquire", ttl))
            {
                return rejected(shared, Op::ReentrantAcquire, r);
            }
            let max_wait = shared.config().lock.max_wait;
            if wait.is_some_and(|w| w > max_wait) {
                let r = Reply::error(format!(
                    "ERR invalid wait in 'rlock.acquire' command: at most {} ms",
                    max_wait.as_millis()
                ));
                return rejected(shared, Op::ReentrantAcquire, r);
            }
            let outcome = match wait {
                Some(w) if !w.is_zero() => {
                    reentrant::acquire_wait(engine, &key, &owner, ttl, w).await
                }
                _ => reentrant::acquire(engine, &key, &owner, ttl).await,
            };
            match outcome {
                ReentrantAcquire::Granted(ReentrantGrant { grant, holds }) => Response::Reentrant {
                    grant,
                    key,
                    owner,
                    holds,
                },
                ReentrantAcquire::Busy | ReentrantAcquire::Expired => {
                    Response::Reply(Reply::NilArray)
                }
                ReentrantAcquire::NoQuorum { voted, needed } => {
                    Response::Reply(no_quorum(voted, needed))
                }
            }
        }
        LockCmd::RRelease { key, owner } => {
            if let Err(r) = check_key(shared, "rlock.release", &key) {
                return rejected(shared, Op::ReentrantRelease, r);
            }
            Response::Reply(match reentrant::release(engine, &key, &owner).await {
                ReentrantRelease::Released { remaining } => {
                    Reply::Int(i64::try_from(remaining).unwrap_or(i64::MAX))
                }
                ReentrantRelease::NotHeld => Reply::Nil,
                ReentrantRelease::NoQuorum { voted, needed } => no_quorum(voted, needed),
            })
        }
        LockCmd::RExtend { key, owner, ttl } => {
            if let Err(r) = check_key(shared, "rlock.extend", &key)
                .and_then(|_| check_ttl(shared, "rlock.extend", ttl))
            {
                return rejected(shared, Op::Extend, r);
            }
            Response::Reply(match reentrant::extend(engine, &key, &owner, ttl).await {
                ExtendOutcome::Extended { validity } if validity.as_millis() > 0 => {
                    ms_reply(validity)
                }
                ExtendOutcome::Extended { .. }
                | ExtendOutcome::NotHeld
                | ExtendOutcome::Expired => Reply::Nil,
                ExtendOutcome::NoQuorum { voted, needed } => no_quorum(voted, needed),
            })
        }
        LockCmd::RStatus { key } => {
            if let Err(r) = check_key(shared, "rlock.status", &key) {
                return rejected(shared, Op::Status, r);
            }
            Response::Reply(match reentrant::status(engine, &key).await {
                ReentrantStatus::Held {
                    owner,
                    token,
                    pttl,
                    holds,
                } => Reply::Array(vec![
                    Reply::Bulk(owner),
                    Reply::Int(i64::try_from(token.0).unwrap_or(i64::MAX)),
                    ms_reply(pttl),
                    Reply::Int(i64::try_from(holds).unwrap_or(i64::MAX)),
                ]),
                ReentrantStatus::NotHeld => Reply::NilArray,
                ReentrantStatus::NoQuorum { voted, needed } => no_quorum(voted, needed),
            })
        }
        LockCmd::Acquire { .. }
        | LockCmd::Release { .. }
        | LockCmd::Extend { .. }
        | LockCmd::Status { .. } => Response::Reply(Reply::error(
            "ERR internal error: a plain lock command reached the reentrant path",
        )),
    }
}
