//! Integration tests of the quorum engine through the gateway, against real
//! `redis-server` masters on loopback, driven with the `redis` client crate.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lockgate::master::MasterState;
use redis::aio::MultiplexedConnection;
use redis::Value;
use support::{client, start_gateway, test_config, wait_until, Cluster};

type Acq = Option<(Vec<u8>, i64, i64)>;

async fn acquire(c: &mut MultiplexedConnection, key: &str, ttl: u64) -> redis::RedisResult<Acq> {
    let v: Value = redis::cmd("LOCK.ACQUIRE")
        .arg(key)
        .arg(ttl)
        .query_async(c)
        .await?;
    Ok(match v {
        Value::Nil => None,
        Value::Array(items) => match items.as_slice() {
            [Value::BulkString(o), Value::Int(t), Value::Int(v)] => Some((o.clone(), *t, *v)),
            other => panic!("unexpected acquire reply {other:?}"),
        },
        other => panic!("unexpected acquire reply {other:?}"),
    })
}

async fn release(c: &mut MultiplexedConnection, key: &str, owner: &[u8]) -> i64 {
    redis::cmd("LOCK.RELEASE")
        .arg(key)
        .arg(owner)
        .query_async(c)
        .await
        .expect("release")
}

async fn lifecycle_on(n: usize) {
    let cluster = Cluster::start(n);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let (owner, token, validity) = acquire(&mut c, "job", 5_000)
        .await
        .expect("ok")
        .expect("granted");
    assert!(token > 0);
    assert!(validity > 4_000 && validity < 5_000, "validity {validity}");
    // Busy while held.
    assert_eq!(acquire(&mut c, "job", 5_000).await.expect("ok"), None);
    // Status shows holder and token.
    let st: Value = redis::cmd("LOCK.STATUS")
        .arg("job")
        .query_async(&mut c)
        .await
        .expect("status");
    match st {
        Value::Array(items) => {
            assert_eq!(items[0], Value::BulkString(owner.clone()));
            assert_eq!(items[1], Value::Int(token));
        }
        other => panic!("status {other:?}"),
    }
    // Extend by owner, refused for others.
    let ext: Option<i64> = redis::cmd("LOCK.EXTEND")
        .arg("job")
        .arg(&owner)
        .arg(8_000)
        .query_async(&mut c)
        .await
        .expect("extend");
    assert!(ext.expect("extended") > 7_000);
    let ext2: Option<i64> = redis::cmd("LOCK.EXTEND")
        .arg("job")
        .arg("intruder")
        .arg(8_000)
        .query_async(&mut c)
        .await
        .expect("extend");
    assert_eq!(ext2, None);
    // Release by non-owner refused, by owner accepted, then free.
    assert_eq!(release(&mut c, "job", b"intruder").await, 0);
    assert_eq!(release(&mut c, "job", &owner).await, 1);
    assert_eq!(release(&mut c, "job", &owner).await, 0);
    let st: Value = redis::cmd("LOCK.STATUS")
        .arg("job")
        .query_async(&mut c)
        .await
        .expect("status");
    assert_eq!(st, Value::Nil);
    // A new grant gets a higher token.
    let (_, token2, _) = acquire(&mut c, "job", 5_000)
        .await
        .expect("ok")
        .expect("granted");
    assert!(token2 > token);
    gw.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_lifecycle_on_one_master() {
    lifecycle_on(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_lifecycle_on_three_masters() {
    lifecycle_on(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_lifecycle_on_five_masters() {
    lifecycle_on(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_expires_after_its_ttl() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    assert!(acquire(&mut c, "short", 300).await.expect("ok").is_some());
    assert!(acquire(&mut c, "short", 300).await.expect("ok").is_none());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(acquire(&mut c, "short", 300).await.expect("ok").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contending_clients_get_exactly_one_winner_at_a_time() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let addr = gw.local_addr();
    let held = Arc::new(AtomicBool::new(false));
    let grants = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (held, grants, tokens) = (held.clone(), grants.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = client(addr).await;
            let stop = Instant::now() + Duration::from_secs(2);
            while Instant::now() < stop {
                let v: Value = redis::cmd("LOCK.ACQUIRE")
                    .arg("hot")
                    .arg(5_000)
                    .arg("WAIT")
                    .arg(200)
                    .query_async(&mut c)
                    .await
                    .expect("acquire");
                let Value::Array(items) = v else { continue };
                let (Value::BulkString(owner), Value::Int(token)) = (&items[0], &items[1]) else {
                    panic!()
                };
                assert!(!held.swap(true, Ordering::SeqCst), "two holders at once");
                grants.fetch_add(1, Ordering::SeqCst);
                tokens.lock().expect("lock").push(*token);
                tokio::time::sleep(Duration::from_millis(2)).await;
                held.store(false, Ordering::SeqCst);
                assert_eq!(release(&mut c, "hot", owner).await, 1);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let tokens = tokens.lock().expect("lock").clone();
    assert!(
        grants.load(Ordering::SeqCst) >= 10,
        "too few grants: {}",
        tokens.len()
    );
    // Grants were serial, so tokens in grant order strictly increase.
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens not increasing: {tokens:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_five_masters_killed_still_grants() {
    let mut cluster = Cluster::start(5);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    cluster.masters[0].kill();
    cluster.masters[3].kill();
    for i in 0..20 {
        let key = format!("k{i}");
        let got = acquire(&mut c, &key, 5_000).await.expect("ok");
        let (owner, ..) = got.expect("granted with 3 of 5");
        assert_eq!(release(&mut c, &key, &owner).await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_of_five_masters_killed_never_grants_and_fails_fast() {
    let mut cluster = Cluster::start(5);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    for i in [0, 2, 4] {
        cluster.masters[i].kill();
    }
    for i in 0..20 {
        let started = Instant::now();
        let r = acquire(&mut c, &format!("k{i}"), 5_000).await;
        let took = started.elapsed();
        match r {
            Err(e) => assert!(e.to_string().contains("NOQUORUM"), "{e}"),
            Ok(v) => panic!("granted without a quorum: {v:?}"),
        }
        // The deadline is the per-master timeout (200 ms in tests); allow a
        // wide margin for a loaded machine, but never a hang.
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stopped_master_does_not_slow_acquires() {
    let cluster = Cluster::start(5);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    cluster.masters[1].stop();
    let mut lat = Vec::new();
    for i in 0..100 {
        let key = format!("s{i}");
        let t = Instant::now();
        let (owner, ..) = acquire(&mut c, &key, 5_000)
            .await
            .expect("ok")
            .expect("granted");
        lat.push(t.elapsed());
        release(&mut c, &key, &owner).await;
    }
    cluster.masters[1].resume();
    lat.sort();
    let p50 = lat[lat.len() / 2];
    eprintln!(
        "acquire latency with 1 of 5 stopped: p50 {:?} max {:?}",
        p50,
        lat[lat.len() - 1]
    );
    // Acquires return on the first 3 votes; waiting for the stopped master
    // would cost its whole 200 ms deadline on every request.
    assert!(p50 < Duration::from_millis(50), "p50 {p50:?}");
    // After SIGCONT the master comes back.
    assert!(
        wait_until(Duration::from_secs(5), || gw.engine().masters()[1].state()
            == MasterState::Up)
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_restarted_empty_is_quarantined_then_reseeded_and_tokens_keep_rising() {
    let mut cluster = Cluster::start(3);
    let mut cfg = test_config(&cluster);
    cfg.lock.max_ttl = Duration::from_millis(1_500);
    cfg.lock.max_acquire_time = Duration::from_millis(200);
    let gw = start_gateway(cfg).await;
    let mut c = client(gw.local_addr()).await;
    let (owner, t1, _) = acquire(&mut c, "amn", 1_000)
        .await
        .expect("ok")
        .expect("granted");
    release(&mut c, "amn", &owner).await;
    cluster.masters[2].kill();
    cluster.masters[2].restart().expect("restart");
    let m = gw.engine().masters()[2].clone();
    assert!(
        wait_until(Duration::from_secs(5), || m.state()
            == MasterState::Quarantined)
        .await,
        "restarted master not quarantined: {:?}",
        m.state()
    );
    // Still grants with 2 of 3, excluding the amnesiac master.
    let (owner, t2, _) = acquire(&mut c, "amn", 1_000)
        .await
        .expect("ok")
        .expect("granted");
    assert!(t2 > t1);
    release(&mut c, "amn", &owner).await;
    // Re-seeded after max_ttl + max_acquire_time.
    assert!(wait_until(Duration::from_secs(6), || m.state() == MasterState::Up).await);
    // Now the other two are killed: a grant must involve the re-seeded master,
    // and its floor keeps tokens above everything granted before.
    cluster.masters[0].kill();
    let got = acquire(&mut c, "amn", 1_000)
        .await
        .expect("ok")
        .expect("granted with 2 of 3");
    assert!(got.1 > t2, "token went backwards: {} <= {t2}", got.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_that_starts_late_under_immediate_bootstrap_is_initialised_not_quarantined() {
    let mut cluster = Cluster::start(3);
    // Not answering while the gateway initialises the other two.
    cluster.masters[2].stop();
    let cfg = test_config(&cluster);
    let meta = lockgate::lock::keys::meta_key(&cfg.lock.key_prefix);
    let gw = start_gateway(cfg).await;
    let m = gw.engine().masters()[2].clone();
    tokio::time::sleep(Duration::from_millis(600)).await;
    cluster.masters[2].resume();
    // Quarantine would last max_ttl + max_acquire_time (over a minute here).
    assert!(
        wait_until(Duration::from_secs(5), || m.state() == MasterState::Up).await,
        "late master not initialised: {:?}",
        m.state()
    );
    let mut direct = redis::Client::open(format!("redis://{}", cluster.masters[2].address()))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the late master");
    let mut seeded = false;
    for _ in 0..250 {
        let n: i64 = redis::cmd("EXISTS")
            .arg(&meta[..])
            .query_async(&mut direct)
            .await
            .expect("exists");
        if n == 1 {
            seeded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seeded, "the late master never got its metadata record");
    // It votes: with another master gone, grants need it.
    cluster.masters[0].kill();
    let mut c = client(gw.local_addr()).await;
    assert!(acquire(&mut c, "late", 1_000).await.expect("ok").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_issue_strictly_increasing_tokens_even_with_skewed_clocks() {
    let cluster = Cluster::start(3);
    let a = start_gateway(test_config(&cluster)).await;
    let b = start_gateway(test_config(&cluster)).await;
    // Gateway B's clock lags by a minute: its first proposals are stale and
    // must be retried higher, never granted lower.
    b.engine().proposer().set_clock_offset_us(-60_000_000);
    let mut ca = client(a.local_addr()).await;
    let mut cb = client(b.local_addr()).await;
    let mut last = 0;
    for i in 0..40 {
        let c = if i % 2 == 0 { &mut ca } else { &mut cb };
        let (owner, token, _) = loop {
            if let Some(g) = acquire(c, "shared", 2_000).await.expect("ok") {
                break g;
            }
        };
        assert!(token > last, "token {token} after {last}");
        last = token;
        assert_eq!(release(c, "shared", &owner).await, 1);
    }
    assert!(
        b.metrics().fence_retries.get() > 0,
        "the lagging gateway never retried"
    );
}

/// Found by the chaos suite (FAULTS.md, `master-kill-empty` under load): a
/// master restarted empty while another master is unreachable leaves fewer
/// than a quorum of readable records. That is amnesia plus an outage, not a
/// fresh deployment: the empty master must stay quarantined, even under
/// `bootstrap = immediate`, instead of being initialised at once from the
/// one reachable high-water mark and the gateway's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amnesia_during_an_outage_is_not_taken_for_a_fresh_deployment() {
    let mut cluster = Cluster::start(3);
    let cfg = test_config(&cluster);
    let meta = lockgate::lock::keys::meta_key(&cfg.lock.key_prefix);
    let gw = start_gateway(cfg).await;
    let mut c = client(gw.local_addr()).await;
    let (owner, _, _) = acquire(&mut c, "outage", 1_000)
        .await
        .expect("ok")
        .expect("granted");
    release(&mut c, "outage", &owner).await;
    let m1 = gw.engine().masters()[1].clone();
    // Every master has been seen with its record.
    assert!(wait_until(Duration::from_secs(5), || m1.state() == MasterState::Up).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Master 0 stops answering; master 1 restarts empty.
    cluster.masters[0].stop();
    cluster.masters[1].kill();
    cluster.masters[1].restart().expect("restart");
    let mut direct = redis::Client::open(format!("redis://{}", cluster.masters[1].address()))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the restarted master");
    // The guard checks every 250 ms; quarantine is max_ttl + max_acquire_time
    // (over a minute here), so 2 s of checks must leave master 1 empty.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n: i64 = redis::cmd("EXISTS")
            .arg(&meta[..])
            .query_async(&mut direct)
            .await
            .expect("exists");
        assert_eq!(
            n,
            0,
            "the restarted master was initialised during the outage ({:?}), skipping its \
             quarantine",
            m1.state()
        );
    }
    // Its scripts refuse to vote without a record anyway; the guard shows it.
    assert_eq!(m1.state(), MasterState::Quarantined);
    cluster.masters[0].resume();
    // With master 0 back, 2 of 3 carry records: plain amnesia, quarantined.
    assert!(
        wait_until(Duration::from_secs(5), || m1.state()
            == MasterState::Quarantined)
        .await,
        "not quarantined once master 0 is back: {:?}",
        m1.state()
    );
}
