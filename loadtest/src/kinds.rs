//! Client steps of the lock kinds that a plain acquire/release cycle cannot
//! express, shared by `run` (`workload.rs`) and `chaos` (`chaos/load.rs`):
//! a reentrant hold (nested `RLOCK.ACQUIRE`s, then as many `RLOCK.RELEASE`s),
//! recorded step by step for [`crate::checker::analyse_reentrant`], and the
//! RESP3 connection of keepalive locks that catches the gateway's
//! `["lockgate", "lost", key, token]` pushes.
//!
//! Replies are parsed without trusting them: anything unexpected is an
//! error of the step, never a panic.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value};

use crate::checker::{RAcquire, RGrant, RRelease, ReentrantHold};

/// Why a step failed: the client error, or a reply of the wrong shape.
#[derive(Debug)]
pub enum StepError {
    Redis(redis::RedisError),
    Unexpected,
}

impl From<redis::RedisError> for StepError {
    fn from(e: redis::RedisError) -> Self {
        StepError::Redis(e)
    }
}

/// Parses `[owner, token, validity_ms, holds]` or nil.
fn parse_racquire(v: &Value) -> Result<Option<RGrant>, StepError> {
    match v {
        Value::Nil => Ok(None),
        Value::Array(items) => match items.as_slice() {
            [Value::BulkString(_), Value::Int(t), Value::Int(v), Value::Int(h)] => {
                Ok(Some(RGrant {
                    holds: *h,
                    token: u64::try_from(*t).map_err(|_| StepError::Unexpected)?,
                    validity: Duration::from_millis(u64::try_from(*v).unwrap_or(0)),
                }))
            }
            _ => Err(StepError::Unexpected),
        },
        _ => Err(StepError::Unexpected),
    }
}

/// Starts a hold: the fresh `RLOCK.ACQUIRE`. `Ok(None)` when busy (nil).
///
/// # Errors
/// The request failed or its reply had the wrong shape.
pub async fn rlock_first(
    c: &mut MultiplexedConnection,
    key: u64,
    name: &str,
    owner: &str,
    ttl_ms: u64,
) -> Result<Option<ReentrantHold>, StepError> {
    let sent = Instant::now();
    let v: Value = redis::cmd("RLOCK.ACQUIRE")
        .arg(name)
        .arg(ttl_ms)
        .arg("OWNER")
        .arg(owner)
        .query_async(c)
        .await?;
    let arrived = Instant::now();
    Ok(parse_racquire(&v)?.map(|g| ReentrantHold {
        key,
        acquires: vec![RAcquire {
            sent,
            arrived,
            grant: Some(g),
        }],
        releases: Vec::new(),
        failed: None,
    }))
}

/// Acquires again until the hold is `depth` deep or an acquire is refused;
/// returns how many acquires are held (what must be released).
///
/// # Errors
/// A request failed (recorded in `hold.failed`; its count is then unknown).
pub async fn rlock_nest(
    c: &mut MultiplexedConnection,
    hold: &mut ReentrantHold,
    name: &str,
    owner: &str,
    ttl_ms: u64,
    depth: usize,
) -> Result<usize, StepError> {
    while hold.acquires.len() < depth {
        let sent = Instant::now();
        let r: Result<Value, _> = redis::cmd("RLOCK.ACQUIRE")
            .arg(name)
            .arg(ttl_ms)
            .arg("OWNER")
            .arg(owner)
            .query_async(c)
            .await;
        let arrived = Instant::now();
        let grant = match r.map_err(StepError::from).and_then(|v| parse_racquire(&v)) {
            Ok(g) => g,
            Err(e) => {
                hold.failed = Some(arrived);
                return Err(e);
            }
        };
        hold.acquires.push(RAcquire {
            sent,
            arrived,
            grant,
        });
        if grant.is_none() {
            break;
        }
    }
    Ok(hold.acquires.iter().filter(|a| a.grant.is_some()).count())
}

/// Releases `n` times (stopping at the first nil); returns the last count
/// left, `None` when the last answer was nil.
///
/// # Errors
/// A request failed (recorded in `hold.failed`).
pub async fn rlock_unwind(
    c: &mut MultiplexedConnection,
    hold: &mut ReentrantHold,
    name: &str,
    owner: &str,
    n: usize,
) -> Result<Option<i64>, StepError> {
    let mut last = None;
    for _ in 0..n {
        let sent = Instant::now();
        let r: Result<Value, _> = redis::cmd("RLOCK.RELEASE")
            .arg(name)
            .arg(owner)
            .query_async(c)
            .await;
        let arrived = Instant::now();
        let left = match r {
            Ok(Value::Int(i)) => Some(i),
            Ok(Value::Nil) => None,
            Ok(_) => {
                hold.failed = Some(arrived);
                return Err(StepError::Unexpected);
            }
            Err(e) => {
                hold.failed = Some(arrived);
                return Err(e.into());
            }
        };
        hold.releases.push(RRelease {
            sent,
            arrived,
            left,
        });
        last = left;
        if left.is_none() {
            break;
        }
    }
    Ok(last)
}

/// Lost-lock pushes seen on keepalive connections: token -> arrival.
#[derive(Debug, Default)]
pub struct LostPushes {
    pub by_token: DashMap<u64, Instant>,
    pub count: AtomicU64,
}

impl LostPushes {
    /// When the push for `token` arrived, if one did.
    pub fn lost_at(&self, token: u64) -> Option<Instant> {
        self.by_token.get(&token).map(|e| *e)
    }

    fn record(&self, p: &PushInfo) {
        // The gateway's push is `["lockgate", "lost", key, token]`; redis-rs
        // takes the first element as the kind and keeps the rest as data.
        let PushKind::Other(kind) = &p.kind else {
            return;
        };
        if kind != "lockgate" {
            return;
        }
        if let [Value::BulkString(what), _key, Value::Int(token)] = p.data.as_slice() {
            if what.as_slice() == b"lost" {
                if let Ok(t) = u64::try_from(*token) {
                    self.by_token.insert(t, Instant::now());
                    self.count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// A RESP3 connection whose pushes land in `lost`.
///
/// # Errors
/// The connection could not be opened (or RESP3 was refused).
pub async fn connect_resp3(
    addr: &str,
    lost: Arc<LostPushes>,
    response_timeout: Option<Duration>,
) -> redis::RedisResult<MultiplexedConnection> {
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(response_timeout)
        .set_push_sender(move |p: PushInfo| -> Result<(), Infallible> {
            lost.record(&p);
            Ok(())
        });
    redis::Client::open(format!("redis://{addr}/?protocol=resp3"))?
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_push_is_recorded_by_token_and_other_pushes_are_ignored() {
        let l = LostPushes::default();
        let push = |kind: &str, what: &[u8], token: i64| PushInfo {
            kind: PushKind::Other(kind.into()),
            data: vec![
                Value::BulkString(what.to_vec()),
                Value::BulkString(b"k".to_vec()),
                Value::Int(token),
            ],
        };
        l.record(&push("lockgate", b"lost", 42));
        l.record(&push("lockgate", b"other", 43));
        l.record(&push("message", b"lost", 44));
        l.record(&push("lockgate", b"lost", -1));
        assert!(l.lost_at(42).is_some());
        assert!(l.lost_at(43).is_none() && l.lost_at(44).is_none());
        assert_eq!(l.count.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_malformed_racquire_reply_is_an_error_not_a_panic() {
        assert!(matches!(parse_racquire(&Value::Nil), Ok(None)));
        assert!(parse_racquire(&Value::Int(1)).is_err());
        assert!(parse_racquire(&Value::Array(vec![Value::Int(1)])).is_err());
        let neg = Value::Array(vec![
            Value::BulkString(b"o".to_vec()),
            Value::Int(-5),
            Value::Int(10),
            Value::Int(1),
        ]);
        assert!(parse_racquire(&neg).is_err());
        let ok = Value::Array(vec![
            Value::BulkString(b"o".to_vec()),
            Value::Int(5),
            Value::Int(10),
            Value::Int(-1),
        ]);
        // A negative count is passed through for the checker to judge.
        assert!(matches!(parse_racquire(&ok), Ok(Some(g)) if g.holds == -1));
    }
}
