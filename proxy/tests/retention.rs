//! Bounded state on the masters, against real `redis-server` masters: every
//! key a lock of any kind creates is gone within `lock.fence_retention_ms`
//! (R) after its release or expiry, each master's DBSIZE returns to its
//! baseline (the metadata record), and a key whose register expired still
//! gets a token above every token it had before (docs/design.md, *Token
//! rule*). Also: with retention off registers stay, a register outlives a
//! lock that is extended past R, and two gateways with skewed clocks taking
//! fresh keys need few stale retries.

mod support;

use std::time::Duration;

use lockgate::config::Config;
use redis::aio::MultiplexedConnection;
use redis::Value;
use support::{client, start_gateway, test_config, Cluster};

const R: Duration = Duration::from_millis(500);

fn config(cluster: &Cluster, retention: Option<Duration>) -> Config {
    let mut c = test_config(cluster);
    c.lock.fence_retention = retention;
    c
}

async fn direct(cluster: &Cluster) -> Vec<MultiplexedConnection> {
    let mut out = Vec::new();
    for m in &cluster.masters {
        out.push(
            redis::Client::open(format!("redis://{}", m.address()))
                .expect("client")
                .get_multiplexed_async_connection()
                .await
                .expect("connect to a master"),
        );
    }
    out
}

async fn dbsizes(masters: &mut [MultiplexedConnection]) -> Vec<i64> {
    let mut out = Vec::new();
    for m in masters.iter_mut() {
        out.push(redis::cmd("DBSIZE").query_async(m).await.expect("DBSIZE"));
    }
    out
}

/// Polls until every master's DBSIZE is `want`, up to `within`; the sizes
/// last seen.
async fn settle(masters: &mut [MultiplexedConnection], want: &[i64], within: Duration) -> Vec<i64> {
    let until = tokio::time::Instant::now() + within;
    loop {
        let now = dbsizes(masters).await;
        if now == want || tokio::time::Instant::now() >= until {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cmd(c: &mut MultiplexedConnection, args: &[&str]) -> Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await.expect("command")
}

/// Owner and token of a `LOCK.ACQUIRE`-shaped grant.
fn grant(v: &Value) -> (String, i64) {
    match v {
        Value::Array(items) => match items.as_slice() {
            [Value::BulkString(o), Value::Int(t), ..] => (String::from_utf8_lossy(o).into(), *t),
            other => panic!("unexpected grant {other:?}"),
        },
        other => panic!("not granted: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_of_released_locks_expire_and_tokens_still_rise() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(config(&cluster, Some(R))).await;
    let mut masters = direct(&cluster).await;
    let baseline = dbsizes(&mut masters).await;
    assert_eq!(baseline, vec![1, 1, 1], "only the metadata records");
    let mut c = client(gw.local_addr()).await;
    let n = 200;
    let mut first = Vec::new();
    for i in 0..n {
        let key = format!("job:{i}");
        // A lease no longer than R: the register then lives R past it.
        let (owner, token) = grant(&cmd(&mut c, &["LOCK.ACQUIRE", &key, "400"]).await);
        let released = cmd(&mut c, &["LOCK.RELEASE", &key, &owner]).await;
        assert_eq!(released, Value::Int(1));
        first.push(token);
    }
    // Released: the registers remain for R, then go.
    let peak = dbsizes(&mut masters).await;
    assert!(
        peak.iter().any(|&s| s > 1),
        "registers are retained for a while: {peak:?}"
    );
    let after = settle(&mut masters, &baseline, R + Duration::from_secs(3)).await;
    assert_eq!(after, baseline, "each master back to its metadata record");
    // The key's register is gone; its next token is above its earlier one
    // (and above every token any key had: the high-water mark).
    let highest = first.iter().copied().max().unwrap_or(0);
    for i in [0usize, n / 2, n - 1] {
        let key = format!("job:{i}");
        let (owner, token) = grant(&cmd(&mut c, &["LOCK.ACQUIRE", &key, "5000"]).await);
        assert!(token > first[i], "{key}: token {token} after {}", first[i]);
        assert!(token > highest, "{key}: token {token} not above {highest}");
        cmd(&mut c, &["LOCK.RELEASE", &key, &owner]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_a_clock_far_behind_still_gets_tokens_above_expired_registers() {
    let cluster = Cluster::start(3);
    let a = start_gateway(config(&cluster, Some(R))).await;
    let b = start_gateway(config(&cluster, Some(R))).await;
    b.engine().proposer().set_clock_offset_us(-3_600_000_000);
    let mut masters = direct(&cluster).await;
    let baseline = dbsizes(&mut masters).await;
    let mut ca = client(a.local_addr()).await;
    let (owner, t1) = grant(&cmd(&mut ca, &["LOCK.ACQUIRE", "k", "1000"]).await);
    cmd(&mut ca, &["LOCK.RELEASE", "k", &owner]).await;
    assert_eq!(
        settle(&mut masters, &baseline, R + Duration::from_secs(3)).await,
        baseline
    );
    // Gateway B's clock is an hour behind and it has seen nothing: only the
    // masters' high-water marks can put its token above t1.
    let mut cb = client(b.local_addr()).await;
    let (owner, t2) = grant(&cmd(&mut cb, &["LOCK.ACQUIRE", "k", "1000"]).await);
    assert!(t2 > t1, "token {t2} after {t1}");
    cmd(&mut cb, &["LOCK.RELEASE", "k", &owner]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_leaves_nothing_behind_after_release_or_expiry() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(config(&cluster, Some(R))).await;
    let mut masters = direct(&cluster).await;
    let baseline = dbsizes(&mut masters).await;
    let mut c = client(gw.local_addr()).await;
    // Released, one of each kind.
    let (o, _) = grant(&cmd(&mut c, &["LOCK.ACQUIRE", "p", "1000"]).await);
    cmd(&mut c, &["LOCK.EXTEND", "p", &o, "1000"]).await;
    cmd(&mut c, &["LOCK.RELEASE", "p", &o]).await;
    grant(&cmd(&mut c, &["RLOCK.ACQUIRE", "r", "1000", "OWNER", "me"]).await);
    grant(&cmd(&mut c, &["RLOCK.ACQUIRE", "r", "1000", "OWNER", "me"]).await);
    cmd(&mut c, &["RLOCK.EXTEND", "r", "me", "1000"]).await;
    cmd(&mut c, &["RLOCK.RELEASE", "r", "me"]).await;
    cmd(&mut c, &["RLOCK.RELEASE", "r", "me"]).await;
    let (o, _) = grant(&cmd(&mut c, &["RWLOCK.READ", "rw", "1000"]).await);
    cmd(&mut c, &["RWLOCK.EXTEND", "rw", &o, "1000"]).await;
    cmd(&mut c, &["RWLOCK.RELEASE", "rw", &o]).await;
    let (o, _) = grant(&cmd(&mut c, &["RWLOCK.WRITE", "rw2", "1000"]).await);
    cmd(&mut c, &["RWLOCK.RELEASE", "rw2", &o]).await;
    let (o, _) = grant(&cmd(&mut c, &["SEM.ACQUIRE", "s", "3", "1000"]).await);
    cmd(&mut c, &["SEM.EXTEND", "s", &o, "1000"]).await;
    cmd(&mut c, &["SEM.RELEASE", "s", &o]).await;
    // A writer that waited behind a reader leaves its intent marker.
    let (o, _) = grant(&cmd(&mut c, &["RWLOCK.READ", "rw3", "300"]).await);
    let _ = cmd(&mut c, &["RWLOCK.WRITE", "rw3", "300", "WAIT", "50"]).await;
    cmd(&mut c, &["RWLOCK.RELEASE", "rw3", &o]).await;
    // Expired without a release, one of each kind.
    grant(&cmd(&mut c, &["LOCK.ACQUIRE", "xp", "200"]).await);
    grant(&cmd(&mut c, &["RLOCK.ACQUIRE", "xr", "200", "OWNER", "me"]).await);
    grant(&cmd(&mut c, &["RWLOCK.READ", "xrw", "200"]).await);
    grant(&cmd(&mut c, &["RWLOCK.WRITE", "xrw2", "200"]).await);
    grant(&cmd(&mut c, &["SEM.ACQUIRE", "xs", "2", "200"]).await);
    let peak = dbsizes(&mut masters).await;
    assert!(peak.iter().all(|&s| s > 10), "state was created: {peak:?}");
    let after = settle(&mut masters, &baseline, R + Duration::from_secs(5)).await;
    if after != baseline {
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut masters[0])
            .await
            .expect("KEYS");
        let keys: Vec<String> = keys
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        panic!("left behind: {after:?}, {keys:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_extended_past_the_retention_keeps_its_token() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(config(&cluster, Some(Duration::from_millis(200)))).await;
    let mut c = client(gw.local_addr()).await;
    let (o, t) = grant(&cmd(&mut c, &["LOCK.ACQUIRE", "long", "300"]).await);
    let (_, rt) = grant(&cmd(&mut c, &["RLOCK.ACQUIRE", "rlong", "300", "OWNER", "me"]).await);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        for v in [
            cmd(&mut c, &["LOCK.EXTEND", "long", &o, "300"]).await,
            cmd(&mut c, &["RLOCK.EXTEND", "rlong", "me", "300"]).await,
        ] {
            assert!(matches!(v, Value::Int(n) if n > 0), "not extended: {v:?}");
        }
    }
    // Held for 750 ms with R = 200 ms: the registers, which status reads
    // the holders' tokens from, must still be there.
    let status = cmd(&mut c, &["LOCK.STATUS", "long"]).await;
    assert!(
        format!("{status:?}").contains(&t.to_string()),
        "status {status:?} lost token {t}"
    );
    let status = cmd(&mut c, &["RLOCK.STATUS", "rlong"]).await;
    assert!(
        format!("{status:?}").contains(&rt.to_string()),
        "status {status:?} lost token {rt}"
    );
    // A reentry reports the same token.
    let (_, again) = grant(&cmd(&mut c, &["RLOCK.ACQUIRE", "rlong", "300", "OWNER", "me"]).await);
    assert_eq!(again, rt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_retention_off_registers_stay() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(config(&cluster, None)).await;
    let mut masters = direct(&cluster).await;
    let mut c = client(gw.local_addr()).await;
    for i in 0..20 {
        let key = format!("keep:{i}");
        let (o, _) = grant(&cmd(&mut c, &["LOCK.ACQUIRE", &key, "200"]).await);
        cmd(&mut c, &["LOCK.RELEASE", &key, &o]).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let sizes = dbsizes(&mut masters).await;
    // A master outside a quorum may have missed a few; a quorum has all 20.
    assert!(
        sizes.iter().filter(|&&s| s == 21).count() >= 2,
        "registers kept forever: {sizes:?}"
    );
}

/// Two gateways, one with its clock 60 s behind, each taking locks on fresh
/// keys at once: the lagging one's proposals fall below the high-water
/// marks the other raises, so it learns the lead from stale replies and
/// proposes above it. The stale-retry rate must stay low.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_keys_from_two_skewed_gateways_rarely_retry() {
    let cluster = Cluster::start(3);
    let a = start_gateway(config(&cluster, Some(R))).await;
    let b = start_gateway(config(&cluster, Some(R))).await;
    b.engine().proposer().set_clock_offset_us(-60_000_000);
    let n = 300;
    let run = |addr, tag: &'static str| async move {
        let mut c = client(addr).await;
        for i in 0..n {
            let key = format!("{tag}:{i}");
            let (o, _) = grant(&cmd(&mut c, &["LOCK.ACQUIRE", &key, "5000"]).await);
            cmd(&mut c, &["LOCK.RELEASE", &key, &o]).await;
        }
    };
    tokio::join!(run(a.local_addr(), "a"), run(b.local_addr(), "b"));
    let retries = a.metrics().fence_retries.get() + b.metrics().fence_retries.get();
    let rate = retries as f64 / f64::from(2 * n);
    eprintln!(
        "stale retries: {retries} over {} acquires ({rate:.4})",
        2 * n
    );
    assert!(rate < 0.05, "stale-retry rate {rate} ({retries} retries)");
}
