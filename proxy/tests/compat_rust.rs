//! The Rust clients from crates.io, unchanged, against a gateway over three
//! masters: rslock's `LockManager` (a client-side Redlock that sees one
//! server) and redis-rs's typed commands over RESP2 and RESP3, including
//! the RESP3 token attribute that `LOCK.TOKENS ON` opts into.

mod support;

use std::time::Duration;

use redis::{AsyncCommands, ExistenceCheck, SetExpiry, SetOptions, Value};
use rslock::{LockError, LockManager};
use support::{start_gateway, test_config, Cluster};

/// Counts passed checks so each test can report how many it made.
#[derive(Default)]
struct Checks(usize);

impl Checks {
    fn ok(&mut self, name: &str, cond: bool) {
        assert!(cond, "check failed: {name}");
        eprintln!("ok   {name}");
        self.0 += 1;
    }
}

/// rslock 0.10's `is_freed` answers a missing key with
/// `Err(RedisKeyNotFound)` (its docs say `Ok(true)`); both mean free.
async fn freed(m: &LockManager, lock: &rslock::Lock) -> bool {
    match m.is_freed(lock).await {
        Ok(free) => free,
        Err(LockError::RedisKeyNotFound) => true,
        Err(e) => panic!("is_freed: {e}"),
    }
}

fn manager(url: &str) -> LockManager {
    let mut m = LockManager::new(vec![url.to_string()]);
    // One try: a refusal shows up at once instead of after the retries.
    m.set_retry(1, Duration::from_millis(10));
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rslock_lock_manager() {
    let mut cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let url = format!("redis://{}", gw.local_addr());
    let mut c = support::client(gw.local_addr()).await;
    let mut ck = Checks::default();
    let (a, b) = (manager(&url), manager(&url));

    let lock = a
        .lock("rs:res", Duration::from_secs(5))
        .await
        .expect("acquire");
    ck.ok("acquire", lock.validity_time > 4000);
    let v: Option<Vec<u8>> = c.get("rs:res").await.expect("get");
    ck.ok(
        "GET shows the 20 raw random bytes",
        v.as_deref() == Some(&lock.val[..]),
    );
    ck.ok(
        "contention: second client refused",
        matches!(
            b.lock("rs:res", Duration::from_secs(5)).await,
            Err(LockError::Unavailable)
        ),
    );
    let lock = a
        .extend(&lock, Duration::from_secs(8))
        .await
        .expect("extend");
    let pttl: i64 = c.pttl("rs:res").await.expect("pttl");
    ck.ok("extend", lock.validity_time > 7000 && pttl > 7000);
    let forged = rslock::Lock {
        resource: lock.resource.clone(),
        val: b"not-the-owner".to_vec(),
        validity_time: 0,
        lock_manager: b.clone(),
    };
    b.unlock(&forged).await;
    ck.ok("release by non-owner refused", !freed(&a, &lock).await);
    ck.ok(
        "extend by non-owner refused",
        b.extend(&forged, Duration::from_secs(5)).await.is_err(),
    );
    a.unlock(&lock).await;
    ck.ok("release", freed(&a, &lock).await);

    let short = a
        .lock("rs:exp", Duration::from_millis(500))
        .await
        .expect("acquire");
    ck.ok("acquire with 500 ms ttl", short.validity_time > 0);
    tokio::time::sleep(Duration::from_millis(700)).await;
    ck.ok(
        "expired lock can be taken again",
        b.lock("rs:exp", Duration::from_secs(1)).await.is_ok(),
    );

    let holder = a
        .lock("rs:wait", Duration::from_secs(5))
        .await
        .expect("acquire");
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move {
            // rslock's blocking acquire: retries until it gets the lock.
            tokio::time::timeout(
                Duration::from_secs(10),
                b.acquire_no_guard("rs:wait", Duration::from_secs(5)),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.unlock(&holder).await;
    let got = waiter.await.expect("join");
    ck.ok(
        "blocking acquire gets the lock after release",
        matches!(got, Ok(Ok(ref l)) if l.val != holder.val),
    );

    let held = a
        .lock("rs:kill", Duration::from_secs(5))
        .await
        .expect("acquire");
    ck.ok("acquire before a master dies", held.validity_time > 0);
    cluster.masters[0].kill();
    let held = a
        .extend(&held, Duration::from_secs(5))
        .await
        .expect("extend with one master killed");
    ck.ok("extend with one master killed", held.validity_time > 4000);
    ck.ok(
        "contention with one master killed",
        b.lock("rs:kill", Duration::from_secs(5)).await.is_err(),
    );
    a.unlock(&held).await;
    ck.ok("release with one master killed", freed(&a, &held).await);
    ck.ok(
        "acquire again with one master killed",
        b.lock("rs:kill", Duration::from_secs(5)).await.is_ok(),
    );
    eprintln!("rslock 0.10: {} checks passed", ck.0);
}

async fn redis_rs_typed(resp3: bool) -> usize {
    let mut cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let query = if resp3 { "?protocol=resp3" } else { "" };
    let url = format!("redis://{}/{query}", gw.local_addr());
    let connect = || async {
        redis::Client::open(url.as_str())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("redis-rs connects (its handshake works)")
    };
    let (mut a, mut b) = (connect().await, connect().await);
    let mut ck = Checks::default();
    let nx_px = |ms| {
        SetOptions::default()
            .conditional_set(ExistenceCheck::NX)
            .with_expiration(SetExpiry::PX(ms))
    };
    let ok: Option<String> = a
        .set_options("rr:k", "tok", nx_px(5000))
        .await
        .expect("set");
    ck.ok("SET NX PX acquires (+OK)", ok.as_deref() == Some("OK"));
    let busy: Option<String> = b
        .set_options("rr:k", "other", nx_px(5000))
        .await
        .expect("set");
    ck.ok("contention: SET NX answers nil", busy.is_none());
    let v: Option<String> = b.get("rr:k").await.expect("get");
    ck.ok("GET is the quorum value", v.as_deref() == Some("tok"));
    let n: i64 = b.exists("rr:k").await.expect("exists");
    ck.ok("EXISTS", n == 1);
    let ttl: i64 = b.ttl("rr:k").await.expect("ttl");
    ck.ok("TTL in seconds", ttl == 5);
    let release = redis::Script::new(
        "\n        local token = redis.call('get', KEYS[1])\n        if not token or token ~= ARGV[1] then\n            return 0\n        end\n        redis.call('del', KEYS[1])\n        return 1\n    ",
    );
    let refused: i64 = release
        .key("rr:k")
        .arg("other")
        .invoke_async(&mut b)
        .await
        .expect("script");
    ck.ok("redis::Script release by non-owner refused", refused == 0);
    let extended: i64 = redis::cmd("LOCK.EXTEND")
        .arg("rr:k")
        .arg("tok")
        .arg(8000)
        .query_async(&mut a)
        .await
        .expect("extend");
    ck.ok("LOCK.EXTEND by the owner", extended > 7000);
    let refused: Option<i64> = redis::cmd("LOCK.EXTEND")
        .arg("rr:k")
        .arg("other")
        .arg(8000)
        .query_async(&mut b)
        .await
        .expect("extend");
    ck.ok(
        "LOCK.EXTEND by a non-owner refused (nil)",
        refused.is_none(),
    );
    // Blocking acquire: a waiter with WAIT gets the lock once it is released.
    let mut w = connect().await;
    let waiter = tokio::spawn(async move {
        let got: Value = redis::cmd("LOCK.ACQUIRE")
            .arg("rr:k")
            .arg(5000)
            .arg("OWNER")
            .arg("waiter")
            .arg("WAIT")
            .arg(5000)
            .query_async(&mut w)
            .await
            .expect("acquire");
        got
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.masters[0].kill();
    let released: i64 = release
        .key("rr:k")
        .arg("tok")
        .invoke_async(&mut a)
        .await
        .expect("script");
    ck.ok(
        "redis::Script release with one master killed",
        released == 1,
    );
    let got = waiter.await.expect("join");
    ck.ok(
        "blocking acquire (WAIT) gets the lock after release",
        matches!(got, Value::Array(ref v) if v.first() == Some(&Value::BulkString(b"waiter".to_vec()))),
    );
    let _: i64 = redis::cmd("LOCK.RELEASE")
        .arg("rr:k")
        .arg("waiter")
        .query_async(&mut a)
        .await
        .expect("release");
    let pttl: i64 = a.pttl("rr:k").await.expect("pttl");
    ck.ok("PTTL of a free key is -2", pttl == -2);
    let ok: Option<String> = b.set_options("rr:exp", "t", nx_px(300)).await.expect("set");
    ck.ok("SET NX PX 300", ok.is_some());
    tokio::time::sleep(Duration::from_millis(450)).await;
    let ok: Option<String> = a.set_options("rr:exp", "u", nx_px(300)).await.expect("set");
    ck.ok("expired lock can be taken again", ok.is_some());
    if resp3 {
        let _: () = redis::cmd("LOCK.TOKENS")
            .arg("ON")
            .query_async(&mut a)
            .await
            .expect("opt in");
        let granted: Value = redis::cmd("SET")
            .arg("rr:tok")
            .arg("t")
            .arg("NX")
            .arg("PX")
            .arg(5000)
            .query_async(&mut a)
            .await
            .expect("set");
        let Value::Attribute { data, attributes } = granted else {
            panic!("expected a RESP3 attribute, got {granted:?}");
        };
        ck.ok(
            "LOCK.TOKENS ON: the grant is still +OK",
            *data == Value::Okay,
        );
        let token = attributes.iter().find_map(|(k, v)| match (k, v) {
            (Value::BulkString(k), Value::Int(t)) if k == b"token" => Some(*t),
            _ => None,
        });
        let status: Value = redis::cmd("LOCK.STATUS")
            .arg("rr:tok")
            .query_async(&mut b)
            .await
            .expect("status");
        let Value::Array(st) = status else {
            panic!("LOCK.STATUS: {status:?}")
        };
        ck.ok(
            "the attribute token is the holder's fencing token (LOCK.STATUS)",
            token.is_some() && st.get(1) == token.map(Value::Int).as_ref(),
        );
        let plain: Value = redis::cmd("SET")
            .arg("rr:tok2")
            .arg("t")
            .arg("NX")
            .arg("PX")
            .arg(5000)
            .query_async(&mut b)
            .await
            .expect("set");
        ck.ok("without opting in, +OK alone", plain == Value::Okay);
    }
    ck.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rs_over_resp2() {
    let n = redis_rs_typed(false).await;
    eprintln!("redis-rs RESP2: {n} checks passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rs_over_resp3_with_token_attribute() {
    let n = redis_rs_typed(true).await;
    eprintln!("redis-rs RESP3: {n} checks passed");
}
