//! Reentrant locks (`RLOCK.*`) against real masters: nested holds with
//! counts and an unchanged token, other owners and plain locks busy until the
//! outermost release, expiry, and a master killed.

mod support;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;
use support::{client, start_gateway, test_config, Cluster};

/// `RLOCK.ACQUIRE`: `Some((token, holds))` when granted.
async fn racquire(
    c: &mut MultiplexedConnection,
    key: &str,
    owner: &str,
    ttl: u64,
) -> Option<(i64, i64)> {
    let v: Value = redis::cmd("RLOCK.ACQUIRE")
        .arg(key)
        .arg(ttl)
        .arg("OWNER")
        .arg(owner)
        .query_async(c)
        .await
        .expect("rlock.acquire");
    match v {
        Value::Array(items) => match items.as_slice() {
            [Value::BulkString(o), Value::Int(t), Value::Int(v), Value::Int(h)] => {
                assert_eq!(o, owner.as_bytes());
                assert!(*v > 0 && *v <= ttl as i64);
                Some((*t, *h))
            }
            other => panic!("unexpected grant {other:?}"),
        },
        Value::Nil => None,
        other => panic!("unexpected reply {other:?}"),
    }
}

async fn rrelease(c: &mut MultiplexedConnection, key: &str, owner: &str) -> Option<i64> {
    redis::cmd("RLOCK.RELEASE")
        .arg(key)
        .arg(owner)
        .query_async(c)
        .await
        .expect("rlock.release")
}

async fn rstatus(c: &mut MultiplexedConnection, key: &str) -> Option<(Vec<u8>, i64, i64)> {
    let v: Value = redis::cmd("RLOCK.STATUS")
        .arg(key)
        .query_async(c)
        .await
        .expect("rlock.status");
    match v {
        Value::Array(items) => match items.as_slice() {
            [Value::BulkString(o), Value::Int(t), Value::Int(_), Value::Int(h)] => {
                Some((o.clone(), *t, *h))
            }
            other => panic!("unexpected status {other:?}"),
        },
        _ => None,
    }
}

async fn plain_acquire(c: &mut MultiplexedConnection, key: &str) -> Value {
    redis::cmd("LOCK.ACQUIRE")
        .arg(key)
        .arg(5000)
        .query_async(c)
        .await
        .expect("lock.acquire")
}

/// The nested-holds walk every test below repeats under its own fault.
async fn nested_holds(c: &mut MultiplexedConnection, other: &mut MultiplexedConnection, key: &str) {
    let (t1, h1) = racquire(c, key, "alice", 5000).await.expect("fresh grant");
    assert_eq!(h1, 1);
    let (t2, h2) = racquire(c, key, "alice", 5000).await.expect("reentry");
    let (t3, h3) = racquire(c, key, "alice", 5000).await.expect("reentry");
    assert_eq!((h2, h3), (2, 3));
    assert_eq!((t2, t3), (t1, t1), "the token never changes while held");
    assert_eq!(rstatus(other, key).await, Some((b"alice".to_vec(), t1, 3)));
    // Another owner, a plain acquire, and plain release/extend by the same
    // owner value: all refused while alice holds it.
    assert_eq!(racquire(other, key, "bob", 5000).await, None);
    assert_eq!(plain_acquire(other, key).await, Value::Nil);
    let r: i64 = redis::cmd("LOCK.RELEASE")
        .arg(key)
        .arg("alice")
        .query_async(other)
        .await
        .expect("lock.release");
    assert_eq!(r, 0, "a plain release does not free a reentrant lock");
    assert_eq!(rrelease(other, key, "bob").await, None);
    assert_eq!(rrelease(c, key, "alice").await, Some(2));
    assert_eq!(rrelease(c, key, "alice").await, Some(1));
    assert_eq!(
        racquire(other, key, "bob", 5000).await,
        None,
        "still held once"
    );
    assert_eq!(rstatus(other, key).await, Some((b"alice".to_vec(), t1, 1)));
    assert_eq!(
        rrelease(c, key, "alice").await,
        Some(0),
        "the outermost release"
    );
    assert_eq!(
        rrelease(c, key, "alice").await,
        None,
        "counts never go below 0"
    );
    assert_eq!(rstatus(other, key).await, None);
    let (tb, hb) = racquire(other, key, "bob", 5000).await.expect("free now");
    assert_eq!(hb, 1);
    assert!(tb > t1, "token {tb} after {t1}");
    assert_eq!(rrelease(other, key, "bob").await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_holds_count_up_and_down_and_only_the_outermost_release_frees() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let mut other = client(gw.local_addr()).await;
    nested_holds(&mut c, &mut other, "r").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_lock_is_busy_for_rlock_acquire_even_for_the_same_owner() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let v: Value = redis::cmd("LOCK.ACQUIRE")
        .arg("p")
        .arg(5000)
        .arg("OWNER")
        .arg("alice")
        .query_async(&mut c)
        .await
        .expect("lock.acquire");
    assert!(matches!(v, Value::Array(_)));
    assert_eq!(racquire(&mut c, "p", "alice", 5000).await, None);
    // A plain owner that looks like a stored reentrant value has no count.
    let v: Value = redis::cmd("LOCK.ACQUIRE")
        .arg("p2")
        .arg(5000)
        .arg("OWNER")
        .arg("rlock:alice")
        .query_async(&mut c)
        .await
        .expect("lock.acquire");
    assert!(matches!(v, Value::Array(_)));
    assert_eq!(racquire(&mut c, "p2", "alice", 5000).await, None);
    assert_eq!(rrelease(&mut c, "p2", "alice").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reentrant_lock_expires_at_its_ttl_whatever_its_count() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let (t1, _) = racquire(&mut c, "e", "alice", 200).await.expect("grant");
    let (_, h) = racquire(&mut c, "e", "alice", 200).await.expect("reentry");
    assert_eq!(h, 2);
    let give_up = std::time::Instant::now() + Duration::from_secs(5);
    while rstatus(&mut c, "e").await.is_some() {
        assert!(std::time::Instant::now() < give_up, "never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (t2, h2) = racquire(&mut c, "e", "bob", 1000)
        .await
        .expect("free after expiry");
    assert_eq!(h2, 1);
    assert!(t2 > t1);
    // Alice's stale holds are gone: she cannot release bob's lock.
    assert_eq!(rrelease(&mut c, "e", "alice").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reentrant_locks_work_with_one_master_of_three_killed() {
    let mut cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let mut other = client(gw.local_addr()).await;
    // Killed while held: the survivors carry the count.
    let (t, _) = racquire(&mut c, "m", "alice", 5000).await.expect("grant");
    let (_, h) = racquire(&mut c, "m", "alice", 5000).await.expect("reentry");
    assert_eq!(h, 2);
    cluster.masters[0].kill();
    let (t2, h) = racquire(&mut c, "m", "alice", 5000).await.expect("reentry");
    assert_eq!((t2, h), (t, 3));
    assert_eq!(racquire(&mut other, "m", "bob", 5000).await, None);
    for left in [2, 1, 0] {
        assert_eq!(rrelease(&mut c, "m", "alice").await, Some(left));
    }
    nested_holds(&mut c, &mut other, "m2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rlock_wait_gets_the_lock_after_the_outermost_release() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let addr = gw.local_addr();
    let mut c = client(addr).await;
    racquire(&mut c, "w", "alice", 5000).await.expect("grant");
    racquire(&mut c, "w", "alice", 5000).await.expect("reentry");
    let waiter = tokio::spawn(async move {
        let mut b = client(addr).await;
        let v: Value = redis::cmd("RLOCK.ACQUIRE")
            .arg("w")
            .arg(5000)
            .arg("OWNER")
            .arg("bob")
            .arg("WAIT")
            .arg(10_000)
            .query_async(&mut b)
            .await
            .expect("rlock.acquire wait");
        v
    });
    let engine = gw.engine().clone();
    assert!(support::wait_until(Duration::from_secs(5), || engine.fair().queued(b"w") == 1).await);
    assert_eq!(rrelease(&mut c, "w", "alice").await, Some(1));
    assert!(!waiter.is_finished());
    assert_eq!(rrelease(&mut c, "w", "alice").await, Some(0));
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("waiter woke")
        .expect("task");
    assert!(
        matches!(got, Value::Array(ref a) if a.len() == 4),
        "{got:?}"
    );
}
