//! Integration tests of read-write locks and counting semaphores
//! through the gateway, against real `redis-server` masters on loopback,
//! driven with the `redis` client crate: every command, contention, writer
//! preference, expiry, masters killed, and tokens across kinds on one key.

mod support;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Value;
use support::{client, start_gateway, test_config, Cluster};

type Grant = Option<(Vec<u8>, i64, i64)>;

fn grant_of(v: Value) -> Grant {
    match v {
        Value::Nil => None,
        Value::Array(items) => match items.as_slice() {
            [Value::BulkString(o), Value::Int(t), Value::Int(v)] => Some((o.clone(), *t, *v)),
            other => panic!("unexpected grant reply {other:?}"),
        },
        other => panic!("unexpected grant reply {other:?}"),
    }
}

async fn call(c: &mut MultiplexedConnection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await
}

async fn grant(c: &mut MultiplexedConnection, args: &[&str]) -> Grant {
    grant_of(call(c, args).await.expect("acquire answers"))
}

async fn int(c: &mut MultiplexedConnection, args: &[&str]) -> i64 {
    match call(c, args).await.expect("answers") {
        Value::Int(n) => n,
        other => panic!("expected an integer from {args:?}, got {other:?}"),
    }
}

fn owner(g: &Grant) -> String {
    String::from_utf8(g.as_ref().expect("granted").0.clone()).expect("hex owner")
}

fn token(g: &Grant) -> i64 {
    g.as_ref().expect("granted").1
}

/// `RWLOCK.STATUS`: (writer owner, reader owners, writer waiting).
async fn rw_status(
    c: &mut MultiplexedConnection,
    key: &str,
) -> (Option<Vec<u8>>, Vec<Vec<u8>>, i64) {
    let v = call(c, &["RWLOCK.STATUS", key]).await.expect("status");
    let Value::Array(items) = v else {
        panic!("status {v:?}")
    };
    let holder = |h: &Value| match h {
        Value::Array(x) => match x.as_slice() {
            [Value::BulkString(o), Value::Int(_), Value::Int(_)] => o.clone(),
            other => panic!("holder {other:?}"),
        },
        other => panic!("holder {other:?}"),
    };
    match items.as_slice() {
        [w, Value::Array(rs), Value::Int(waiting)] => (
            (*w != Value::Nil).then(|| holder(w)),
            rs.iter().map(holder).collect(),
            *waiting,
        ),
        other => panic!("status {other:?}"),
    }
}

/// `SEM.STATUS`: (permits, free, holder owners with tokens).
async fn sem_status(c: &mut MultiplexedConnection, key: &str) -> (i64, i64, Vec<(Vec<u8>, i64)>) {
    let v = call(c, &["SEM.STATUS", key]).await.expect("status");
    match v {
        Value::Array(items) => match items.as_slice() {
            [Value::Int(p), Value::Int(f), Value::Array(hs)] => (
                *p,
                *f,
                hs.iter()
                    .map(|h| match h {
                        Value::Array(x) => match x.as_slice() {
                            [Value::BulkString(o), Value::Int(t), Value::Int(pttl)] => {
                                assert!(*pttl > 0, "a live holder has time left");
                                (o.clone(), *t)
                            }
                            other => panic!("holder {other:?}"),
                        },
                        other => panic!("holder {other:?}"),
                    })
                    .collect(),
            ),
            other => panic!("status {other:?}"),
        },
        other => panic!("status {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_share_a_key_and_exclude_a_writer_and_vice_versa() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let addr = gw.local_addr();
    // Many readers at once, each on its own connection.
    let readers: Vec<Grant> = futures::future::join_all((0..8).map(|_| async move {
        let mut c = client(addr).await;
        grant(&mut c, &["RWLOCK.READ", "doc", "10000"]).await
    }))
    .await;
    assert!(readers.iter().all(Option::is_some), "{readers:?}");
    let mut tokens: Vec<i64> = readers.iter().map(token).collect();
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 8, "every reader has its own token");

    let mut c = client(addr).await;
    assert_eq!(grant(&mut c, &["RWLOCK.WRITE", "doc", "10000"]).await, None);
    let (w, rs, waiting) = rw_status(&mut c, "doc").await;
    assert_eq!((w, rs.len(), waiting), (None, 8, 0));
    for r in &readers {
        assert_eq!(int(&mut c, &["RWLOCK.RELEASE", "doc", &owner(r)]).await, 1);
    }
    let wg = grant(&mut c, &["RWLOCK.WRITE", "doc", "10000", "OWNER", "w1"]).await;
    assert_eq!(owner(&wg), "w1");
    assert!(token(&wg) > tokens[7], "the write orders after every read");
    // A writer excludes readers and other writers.
    assert_eq!(grant(&mut c, &["RWLOCK.READ", "doc", "10000"]).await, None);
    assert_eq!(grant(&mut c, &["RWLOCK.WRITE", "doc", "10000"]).await, None);
    let (w, rs, _) = rw_status(&mut c, "doc").await;
    assert_eq!((w, rs.len()), (Some(b"w1".to_vec()), 0));
    // Extend by the owner only.
    let ext = call(&mut c, &["RWLOCK.EXTEND", "doc", "w1", "20000"])
        .await
        .expect("extend");
    assert!(
        matches!(ext, Value::Int(v) if v > 19_000 && v < 20_000),
        "{ext:?}"
    );
    let ext = call(&mut c, &["RWLOCK.EXTEND", "doc", "intruder", "20000"])
        .await
        .expect("extend");
    assert_eq!(ext, Value::Nil);
    assert_eq!(int(&mut c, &["RWLOCK.RELEASE", "doc", "intruder"]).await, 0);
    assert_eq!(int(&mut c, &["RWLOCK.RELEASE", "doc", "w1"]).await, 1);
    assert_eq!(int(&mut c, &["RWLOCK.RELEASE", "doc", "w1"]).await, 0);
    assert!(grant(&mut c, &["RWLOCK.READ", "doc", "10000"])
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_writer_blocks_new_readers_and_gets_the_lock() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let addr = gw.local_addr();
    let mut c = client(addr).await;
    let r1 = grant(&mut c, &["RWLOCK.READ", "feed", "10000"]).await;
    // With no writer waiting, readers keep joining.
    let r2 = grant(&mut c, &["RWLOCK.READ", "feed", "10000"]).await;
    assert!(r2.is_some());
    let writer = tokio::spawn(async move {
        let mut w = client(addr).await;
        grant(
            &mut w,
            &[
                "RWLOCK.WRITE",
                "feed",
                "10000",
                "OWNER",
                "w",
                "WAIT",
                "8000",
            ],
        )
        .await
    });
    let mut seen_waiting = false;
    for _ in 0..200 {
        if rw_status(&mut c, "feed").await.2 == 1 {
            seen_waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        seen_waiting,
        "the waiting writer's intent marker is on a quorum"
    );
    assert_eq!(
        grant(&mut c, &["RWLOCK.READ", "feed", "10000"]).await,
        None,
        "a new reader must not overtake the waiting writer"
    );
    assert!(!writer.is_finished(), "the writer waits for the readers");
    assert_eq!(
        int(&mut c, &["RWLOCK.RELEASE", "feed", &owner(&r1)]).await,
        1
    );
    assert_eq!(
        int(&mut c, &["RWLOCK.RELEASE", "feed", &owner(&r2)]).await,
        1
    );
    let w = writer.await.expect("writer task");
    assert_eq!(owner(&w), "w");
    assert!(token(&w) > token(&r2));
    // Granted: the marker is gone, and readers are refused by the writer.
    let (wr, _, waiting) = rw_status(&mut c, "feed").await;
    assert_eq!((wr, waiting), (Some(b"w".to_vec()), 0));
    assert_eq!(int(&mut c, &["RWLOCK.RELEASE", "feed", "w"]).await, 1);
    assert!(grant(&mut c, &["RWLOCK.READ", "feed", "10000"])
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semaphore_admits_permits_holders_and_refuses_one_more() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let addr = gw.local_addr();
    let holders: Vec<Grant> = futures::future::join_all((0..4).map(|_| async move {
        let mut c = client(addr).await;
        grant(&mut c, &["SEM.ACQUIRE", "pool", "3", "10000"]).await
    }))
    .await;
    let granted: Vec<&Grant> = holders.iter().filter(|g| g.is_some()).collect();
    let mut c = client(addr).await;
    // Four racing for three slots: at most three win (a loser may retry
    // into a slot that is still free).
    assert!(granted.len() <= 3, "{holders:?}");
    while sem_status(&mut c, "pool").await.2.len() < 3 {
        assert!(grant(&mut c, &["SEM.ACQUIRE", "pool", "3", "10000"])
            .await
            .is_some());
    }
    assert_eq!(
        grant(&mut c, &["SEM.ACQUIRE", "pool", "3", "10000"]).await,
        None
    );
    let (permits, free, hs) = sem_status(&mut c, "pool").await;
    assert_eq!((permits, free, hs.len()), (3, 0, 3));
    // Another permit count while in use is a client error.
    let err = call(&mut c, &["SEM.ACQUIRE", "pool", "5", "10000"])
        .await
        .expect_err("mismatch");
    assert!(err.to_string().contains("permits mismatch"), "{err}");
    assert!(err.to_string().contains("sem.acquire"), "{err}");
    // Extend, release, then the next one gets in.
    let first = String::from_utf8(hs[0].0.clone()).expect("owner");
    let ext = call(&mut c, &["SEM.EXTEND", "pool", &first, "20000"])
        .await
        .expect("extend");
    assert!(matches!(ext, Value::Int(v) if v > 19_000), "{ext:?}");
    assert_eq!(
        call(&mut c, &["SEM.EXTEND", "pool", "nobody", "20000"])
            .await
            .expect("ok"),
        Value::Nil
    );
    assert_eq!(int(&mut c, &["SEM.RELEASE", "pool", &first]).await, 1);
    assert_eq!(int(&mut c, &["SEM.RELEASE", "pool", &first]).await, 0);
    assert_eq!(sem_status(&mut c, "pool").await.1, 1);
    let next = grant(&mut c, &["SEM.ACQUIRE", "pool", "3", "10000"]).await;
    assert!(token(&next) > hs.iter().map(|h| h.1).max().unwrap_or(0));
    assert_eq!(
        grant(&mut c, &["SEM.ACQUIRE", "pool", "3", "10000"]).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_expire_and_waiters_then_get_in() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let s = grant(&mut c, &["SEM.ACQUIRE", "short", "1", "300"]).await;
    assert!(s.is_some());
    assert_eq!(
        grant(&mut c, &["SEM.ACQUIRE", "short", "1", "10000"]).await,
        None
    );
    // Nobody releases: the waiter gets in when the holder expires.
    let next = grant(
        &mut c,
        &["SEM.ACQUIRE", "short", "1", "10000", "WAIT", "5000"],
    )
    .await;
    assert!(token(&next) > token(&s));
    let ext = call(&mut c, &["SEM.EXTEND", "short", &owner(&s), "1000"])
        .await
        .expect("ok");
    assert_eq!(ext, Value::Nil, "an expired holder is never revived");

    let w = grant(&mut c, &["RWLOCK.WRITE", "brief", "300"]).await;
    assert!(w.is_some());
    let r = grant(&mut c, &["RWLOCK.READ", "brief", "10000", "WAIT", "5000"]).await;
    assert!(token(&r) > token(&w));
    assert_eq!(
        int(&mut c, &["RWLOCK.RELEASE", "brief", &owner(&w)]).await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_masters_killed_still_grants_and_two_refuse() {
    let mut cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    cluster.masters[1].kill();
    for i in 0..5 {
        let k = format!("k{i}");
        let r = grant(&mut c, &["RWLOCK.READ", &k, "5000"]).await;
        assert_eq!(int(&mut c, &["RWLOCK.RELEASE", &k, &owner(&r)]).await, 1);
        let w = grant(&mut c, &["RWLOCK.WRITE", &k, "5000"]).await;
        assert_eq!(rw_status(&mut c, &k).await.0, Some(owner(&w).into_bytes()));
        let s = grant(&mut c, &["SEM.ACQUIRE", &k, "2", "5000"]).await;
        assert_eq!(sem_status(&mut c, &k).await.2.len(), 1);
        assert_eq!(int(&mut c, &["SEM.RELEASE", &k, &owner(&s)]).await, 1);
    }
    cluster.masters[2].kill();
    for args in [
        &["RWLOCK.READ", "x", "5000"][..],
        &["RWLOCK.WRITE", "x", "5000"][..],
        &["SEM.ACQUIRE", "x", "2", "5000"][..],
        &["SEM.STATUS", "x"][..],
        &["RWLOCK.STATUS", "x"][..],
    ] {
        let err = call(&mut c, args).await.expect_err("no quorum with 1 of 3");
        assert!(err.to_string().contains("NOQUORUM"), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_increase_across_kinds_on_one_key() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let mut last = 0;
    for round in 0..3 {
        let l = grant(&mut c, &["LOCK.ACQUIRE", "acct", "5000"]).await;
        // A plain lock and a read-write lock of one name are distinct locks
        // (README): the write is granted while the plain lock is held.
        let w = grant(&mut c, &["RWLOCK.WRITE", "acct", "5000"]).await;
        assert_eq!(int(&mut c, &["LOCK.RELEASE", "acct", &owner(&l)]).await, 1);
        assert_eq!(
            int(&mut c, &["RWLOCK.RELEASE", "acct", &owner(&w)]).await,
            1
        );
        let r = grant(&mut c, &["RWLOCK.READ", "acct", "5000"]).await;
        assert_eq!(
            int(&mut c, &["RWLOCK.RELEASE", "acct", &owner(&r)]).await,
            1
        );
        let s = grant(&mut c, &["SEM.ACQUIRE", "acct", "2", "5000"]).await;
        assert_eq!(int(&mut c, &["SEM.RELEASE", "acct", &owner(&s)]).await, 1);
        for (what, t) in [
            ("lock", token(&l)),
            ("write", token(&w)),
            ("read", token(&r)),
            ("sem", token(&s)),
        ] {
            assert!(t > last, "round {round}: {what} token {t} not above {last}");
            last = t;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_refused_with_the_command_and_reason() {
    let cluster = Cluster::start(1);
    let mut cfg = test_config(&cluster);
    cfg.lock.max_wait = Duration::from_millis(1000);
    cfg.limits.max_key_bytes = 16;
    let gw = start_gateway(cfg).await;
    let mut c = client(gw.local_addr()).await;
    let long = "k".repeat(17);
    for (args, want) in [
        (
            vec!["RWLOCK.READ", "k", "61000"],
            "invalid ttl in 'rwlock.read'",
        ),
        (
            vec!["RWLOCK.WRITE", "k", "100", "WAIT", "2000"],
            "invalid wait in 'rwlock.write'",
        ),
        (
            vec!["RWLOCK.WRITE", &long, "100"],
            "invalid key in 'rwlock.write'",
        ),
        (
            vec!["RWLOCK.EXTEND", "k", "o", "61000"],
            "invalid ttl in 'rwlock.extend'",
        ),
        (
            vec!["SEM.ACQUIRE", "k", "0", "100"],
            "invalid permits in 'sem.acquire'",
        ),
        (
            vec!["SEM.ACQUIRE", "k", "1", "61000"],
            "invalid ttl in 'sem.acquire'",
        ),
        (
            vec!["SEM.ACQUIRE", "k", "1", "100", "WAIT", "2000"],
            "invalid wait in 'sem.acquire'",
        ),
        (vec!["SEM.STATUS", &long], "invalid key in 'sem.status'"),
        (
            vec!["SEM.RELEASE", "k"],
            "wrong number of arguments for 'sem.release'",
        ),
    ] {
        let err = call(&mut c, &args).await.expect_err("refused");
        assert!(err.to_string().contains(want), "{args:?}: {err}");
    }
    // The connection survives every refusal.
    assert!(grant(&mut c, &["SEM.ACQUIRE", "k", "1", "100"])
        .await
        .is_some());
}

#[tokio::test]
async fn semaphore_waiters_on_one_gateway_get_permits_in_arrival_order() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let addr = gw.local_addr();
    let mut holder = client(addr).await;
    let g = grant(&mut holder, &["SEM.ACQUIRE", "fifo-sem", "1", "10000"]).await;
    let held = owner(&g);
    let queue = lockgate::kinds::semaphore::masters::keys(gw.engine(), b"fifo-sem").signal;
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..4usize {
        let order = order.clone();
        let mut c = client(addr).await;
        tasks.push(tokio::spawn(async move {
            let g = grant(
                &mut c,
                &["SEM.ACQUIRE", "fifo-sem", "1", "10000", "WAIT", "20000"],
            )
            .await;
            let o = owner(&g);
            order.lock().expect("order").push(i);
            assert_eq!(int(&mut c, &["SEM.RELEASE", "fifo-sem", &o]).await, 1);
        }));
        // Waiter i is queued before waiter i + 1 is sent.
        let engine = gw.engine().clone();
        let q = queue.clone();
        assert!(
            support::wait_until(Duration::from_secs(5), || engine.fair().queued(&q) == i + 1).await,
            "waiter {i} never queued"
        );
    }
    assert_eq!(
        int(&mut holder, &["SEM.RELEASE", "fifo-sem", &held]).await,
        1
    );
    for t in tasks {
        t.await.expect("waiter");
    }
    assert_eq!(*order.lock().expect("order"), vec![0, 1, 2, 3]);
    assert_eq!(gw.engine().fair().keys(), 0, "queues are pruned");
}
