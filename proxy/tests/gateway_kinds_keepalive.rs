//! Connection-bound keepalive (`LOCK.ACQUIRE ... KEEPALIVE`) and fair
//! `WAIT` queues against real masters: renewal past the TTL, release on
//! disconnect and on `LOCK.RELEASE`, a lost lock reported as a RESP3 push,
//! one master killed, the gateway process SIGKILLed (renewals stop, the lock
//! expires at its TTL), and waiters served in arrival order.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lockgate::dev::free_port;
use redis::aio::MultiplexedConnection;
use redis::Value;
use support::{client, start_gateway, test_config, wait_until, Cluster, RawConn};

async fn acquire_kept(c: &mut MultiplexedConnection, key: &str, ttl: u64) -> (Vec<u8>, i64) {
    let v: Value = redis::cmd("LOCK.ACQUIRE")
        .arg(key)
        .arg(ttl)
        .arg("KEEPALIVE")
        .query_async(c)
        .await
        .expect("acquire");
    grant(v).expect("granted")
}

fn grant(v: Value) -> Option<(Vec<u8>, i64)> {
    match v {
        Value::Array(items) => match items.as_slice() {
            [Value::BulkString(o), Value::Int(t), Value::Int(_)] => Some((o.clone(), *t)),
            _ => None,
        },
        _ => None,
    }
}

/// `LOCK.STATUS`: `Some((owner, token))` when held.
async fn status(c: &mut MultiplexedConnection, key: &str) -> Option<(Vec<u8>, i64)> {
    let v: Value = redis::cmd("LOCK.STATUS")
        .arg(key)
        .query_async(c)
        .await
        .expect("status");
    grant(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_holds_a_lock_past_its_ttl_while_the_connection_lives() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut holder = client(gw.local_addr()).await;
    let mut other = client(gw.local_addr()).await;
    let (owner, token) = acquire_kept(&mut holder, "ka", 300).await;
    // Four TTLs: without renewal the lock would long have expired.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(status(&mut other, "ka").await, Some((owner, token)));
    assert!(gw.metrics().keepalive_renewal_count("renewed") >= 3);
    assert_eq!(gw.metrics().keepalive_holds.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_releases_a_keepalive_lock_at_once() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut holder = RawConn::connect(gw.local_addr()).await;
    let r = holder
        .cmd_str(&["LOCK.ACQUIRE", "kd", "30000", "KEEPALIVE"])
        .await;
    assert!(r.starts_with("*3\r\n"), "{r}");
    let mut other = client(gw.local_addr()).await;
    assert!(status(&mut other, "kd").await.is_some());
    drop(holder);
    // Far sooner than the 30 s TTL: released, not expired.
    let t = Instant::now();
    loop {
        if status(&mut other, "kd").await.is_none() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        wait_until(Duration::from_secs(5), || gw
            .metrics()
            .keepalive_holds
            .get()
            == 0)
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_release_stops_the_renewal() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let (owner, _) = acquire_kept(&mut c, "kr", 150).await;
    let released: i64 = redis::cmd("LOCK.RELEASE")
        .arg("kr")
        .arg(&owner)
        .query_async(&mut c)
        .await
        .expect("release");
    assert_eq!(released, 1);
    assert_eq!(gw.metrics().keepalive_holds.get(), 0);
    let m = gw.metrics();
    let before: u64 = ["renewed", "not_held", "no_quorum"]
        .iter()
        .map(|o| m.keepalive_renewal_count(o))
        .sum();
    // Several renewal periods (50 ms each) pass with no attempt at all.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let after: u64 = ["renewed", "not_held", "no_quorum"]
        .iter()
        .map(|o| m.keepalive_renewal_count(o))
        .sum();
    assert_eq!(before, after, "renewal kept running after LOCK.RELEASE");
    assert!(status(&mut c, "kr").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_master_killed_of_three_keeps_the_lock_alive() {
    let mut cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let (owner, token) = acquire_kept(&mut c, "k1", 300).await;
    cluster.masters[1].kill();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut other = client(gw.local_addr()).await;
    assert_eq!(status(&mut other, "k1").await, Some((owner, token)));
    assert_eq!(gw.metrics().keepalive_lost.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_without_a_quorum_loses_the_lock_and_pushes_it_to_a_resp3_client() {
    let mut cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    let hello = c.cmd_str(&["HELLO", "3"]).await;
    assert!(hello.starts_with('%'), "{hello}");
    let r = c
        .cmd_str(&["LOCK.ACQUIRE", "kl", "400", "OWNER", "me", "KEEPALIVE"])
        .await;
    let token = r
        .split("\r\n")
        .nth(3)
        .and_then(|l| l.strip_prefix(':'))
        .expect("token line")
        .to_string();
    cluster.masters[0].kill();
    cluster.masters[2].kill();
    // The next frame the connection sends on its own is the push.
    let push = c.next_frame_str().await;
    assert_eq!(
        push,
        format!(">4\r\n$8\r\nlockgate\r\n$4\r\nlost\r\n$2\r\nkl\r\n:{token}\r\n")
    );
    assert_eq!(gw.metrics().keepalive_lost.get(), 1);
    assert_eq!(gw.metrics().keepalive_holds.get(), 0);
    // The connection still works, and the gateway no longer claims the lock.
    let st = c.cmd_str(&["LOCK.STATUS", "kl"]).await;
    assert!(st.starts_with("-NOQUORUM"), "{st}");
    let ext = c.cmd_str(&["LOCK.EXTEND", "kl", "me", "400"]).await;
    assert!(ext.starts_with("-NOQUORUM"), "{ext}");
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_gateway_stops_renewing_and_its_locks_expire_at_their_ttl() {
    let cluster = Cluster::start(3);
    // The in-process gateway seeds the masters and observes; the child
    // process holds the keepalive lock.
    let observer = start_gateway(test_config(&cluster)).await;
    let port = free_port().expect("port");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockgate"));
    cmd.arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--admin-listen")
        .arg(format!("127.0.0.1:{}", free_port().expect("port")))
        .env("LOCKGATE_LOCK_MIN_TTL_MS", "1")
        .env("LOCKGATE_MASTER_TIMEOUT_MS", "200")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for m in &cluster.masters {
        cmd.arg("--master").arg(m.address());
    }
    let mut child = Proc(cmd.spawn().expect("spawn lockgate"));
    let ttl = Duration::from_millis(1500);
    let give_up = Instant::now() + Duration::from_secs(15);
    let (mut held_by_child, owner, token) = loop {
        if let Ok(cl) = redis::Client::open(format!("redis://127.0.0.1:{port}")) {
            if let Ok(mut conn) = cl.get_multiplexed_async_connection().await {
                let v: redis::RedisResult<Value> = redis::cmd("LOCK.ACQUIRE")
                    .arg("gk")
                    .arg(ttl.as_millis() as u64)
                    .arg("KEEPALIVE")
                    .query_async(&mut conn)
                    .await;
                if let Some((o, t)) = v.ok().and_then(grant) {
                    break (conn, o, t);
                }
            }
        }
        assert!(Instant::now() < give_up, "child gateway never granted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut obs = client(observer.local_addr()).await;
    // Past two TTLs the child still renews it.
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(status(&mut obs, "gk").await, Some((owner.clone(), token)));
    // SIGKILL: no disconnect handling runs, renewals just stop.
    child.0.kill().expect("SIGKILL the child gateway");
    let killed = Instant::now();
    let _ = child.0.wait();
    let _ = redis::cmd("PING")
        .query_async::<Value>(&mut held_by_child)
        .await;
    assert_eq!(
        status(&mut obs, "gk").await,
        Some((owner, token)),
        "a SIGKILLed gateway cannot release: the lock stays until its TTL"
    );
    loop {
        if status(&mut obs, "gk").await.is_none() {
            break;
        }
        assert!(
            killed.elapsed() < ttl + Duration::from_millis(1000),
            "the lock outlived its TTL after the gateway died"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let freed_after = killed.elapsed();
    // The last renewal can have happened up to ttl/3 before the kill.
    assert!(
        freed_after + ttl / 3 + Duration::from_millis(50) >= ttl,
        "freed after {freed_after:?}: before its TTL, so something released it"
    );
    let v: Value = redis::cmd("LOCK.ACQUIRE")
        .arg("gk")
        .arg(1000)
        .query_async(&mut obs)
        .await
        .expect("acquire");
    let (_, next) = grant(v).expect("free again");
    assert!(next > token, "token {next} after {token}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_on_one_gateway_get_the_lock_in_arrival_order() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let addr = gw.local_addr();
    let mut holder = client(addr).await;
    let v: Value = redis::cmd("LOCK.ACQUIRE")
        .arg("fifo")
        .arg(10_000)
        .query_async(&mut holder)
        .await
        .expect("acquire");
    let (owner, _) = grant(v).expect("granted");
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5usize {
        let order = order.clone();
        let mut c = client(addr).await;
        tasks.push(tokio::spawn(async move {
            let v: Value = redis::cmd("LOCK.ACQUIRE")
                .arg("fifo")
                .arg(10_000)
                .arg("WAIT")
                .arg(20_000)
                .query_async(&mut c)
                .await
                .expect("acquire");
            let (o, _) = grant(v).expect("granted after waiting");
            order.lock().expect("order").push(i);
            let _: i64 = redis::cmd("LOCK.RELEASE")
                .arg("fifo")
                .arg(&o)
                .query_async(&mut c)
                .await
                .expect("release");
        }));
        // Waiter i is queued before waiter i + 1 is sent.
        let engine = gw.engine().clone();
        assert!(
            wait_until(Duration::from_secs(5), || engine.fair().queued(b"fifo")
                == i + 1)
            .await
        );
    }
    let _: i64 = redis::cmd("LOCK.RELEASE")
        .arg("fifo")
        .arg(&owner)
        .query_async(&mut holder)
        .await
        .expect("release");
    for t in tasks {
        t.await.expect("waiter");
    }
    assert_eq!(*order.lock().expect("order"), vec![0, 1, 2, 3, 4]);
    assert_eq!(gw.engine().fair().keys(), 0, "queues are pruned");
}
