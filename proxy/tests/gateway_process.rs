//! Tests that run the `lockgate` binary itself: a second gateway process on
//! the same masters, graceful shutdown (with `/readyz` turning 503 while it
//! drains), and config checking.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lockgate::dev::free_port;
use redis::Value;
use support::{client, raw_roundtrip, start_gateway, test_config, Cluster};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_gateway(cluster: &Cluster) -> (Proc, u16) {
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
    (Proc(cmd.spawn().expect("spawn lockgate")), port)
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    String::from_utf8_lossy(&raw_roundtrip(addr, req.as_bytes()).await).into_owned()
}

async fn acquire(c: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<(Vec<u8>, i64)> {
    let v: Value = redis::cmd("LOCK.ACQUIRE")
        .arg(key)
        .arg(2000)
        .query_async(c)
        .await
        .ok()?;
    match v {
        Value::Array(items) => match items.as_slice() {
            [Value::BulkString(o), Value::Int(t), Value::Int(_)] => Some((o.clone(), *t)),
            _ => None,
        },
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_gateway_process_shares_the_token_order() {
    let cluster = Cluster::start(3);
    // The in-process gateway initialises the brand-new masters; the child
    // process then finds their records (its own bootstrap is "wait").
    let a = start_gateway(test_config(&cluster)).await;
    let (_b, port) = spawn_gateway(&cluster);
    let mut ca = client(a.local_addr()).await;
    let give_up = Instant::now() + Duration::from_secs(15);
    let mut cb = loop {
        if let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{port}")) {
            if let Ok(mut conn) = c.get_multiplexed_async_connection().await {
                if acquire(&mut conn, "probe").await.is_some() {
                    break conn;
                }
            }
        }
        assert!(
            Instant::now() < give_up,
            "second gateway never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut last = 0;
    for i in 0..40 {
        let c = if i % 2 == 0 { &mut ca } else { &mut cb };
        let (owner, token) = loop {
            if let Some(g) = acquire(c, "shared").await {
                break g;
            }
        };
        assert!(token > last, "token {token} after {last}");
        last = token;
        let released: i64 = redis::cmd("LOCK.RELEASE")
            .arg("shared")
            .arg(&owner)
            .query_async(c)
            .await
            .expect("release");
        assert_eq!(released, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight_then_stops_accepting() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let addr = gw.local_addr();
    let mut holder = client(addr).await;
    assert!(acquire(&mut holder, "drain").await.is_some());
    // A waiter blocks in WAIT while the gateway is told to shut down.
    let waiter = tokio::spawn(async move {
        let mut c = client(addr).await;
        let v: redis::RedisResult<Value> = redis::cmd("LOCK.ACQUIRE")
            .arg("drain")
            .arg(1000)
            .arg("WAIT")
            .arg(300)
            .query_async(&mut c)
            .await;
        v
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    gw.shutdown(Duration::from_secs(3)).await;
    let got = waiter.await.expect("task");
    assert_eq!(
        got.expect("the in-flight request got its reply"),
        Value::Nil
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_while_the_gateway_drains() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let admin = gw.admin_addr().expect("admin enabled");
    let addr = gw.local_addr();
    assert!(get(admin, "/readyz").await.starts_with("HTTP/1.1 200"));
    let mut holder = client(addr).await;
    let held: redis::Value = redis::cmd("LOCK.ACQUIRE")
        .arg("drain")
        .arg(5000)
        .query_async(&mut holder)
        .await
        .expect("acquire");
    assert!(matches!(held, redis::Value::Array(_)), "{held:?}");
    // A waiter keeps the drain open for a few hundred milliseconds (below
    // the client's 500 ms response timeout).
    let waiter = tokio::spawn(async move {
        let mut c = client(addr).await;
        let v: redis::RedisResult<redis::Value> = redis::cmd("LOCK.ACQUIRE")
            .arg("drain")
            .arg(1000)
            .arg("WAIT")
            .arg(450)
            .query_async(&mut c)
            .await;
        v
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let shutdown = tokio::spawn(gw.shutdown(Duration::from_secs(5)));
    let mut seen = String::new();
    for _ in 0..50 {
        seen = get(admin, "/readyz").await;
        if !seen.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen.starts_with("HTTP/1.1 503"), "{seen}");
    assert!(seen.contains("not ready: draining"), "{seen}");
    assert!(
        !waiter.is_finished(),
        "the drain was over before /readyz was checked"
    );
    let got = waiter.await.expect("task");
    assert_eq!(got.expect("the waiter got its reply"), redis::Value::Nil);
    shutdown.await.expect("shutdown");
}

#[test]
fn check_config_accepts_the_example_and_rejects_a_bad_file() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/lockgate.example.toml"
    );
    let ok = Command::new(env!("CARGO_BIN_EXE_lockgate"))
        .args(["--check-config", example])
        .output()
        .expect("run");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[masters]]\naddress = \"127.0.0.1:7000\"\n[lock]\ndrift_factor = 2.0\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_lockgate"))
        .arg("--check-config")
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lock.drift_factor"));
}
