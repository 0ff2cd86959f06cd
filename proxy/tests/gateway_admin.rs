//! The admin listener of a running gateway: metrics, liveness, readiness.

mod support;

use std::time::Duration;

use support::{raw_roundtrip, start_gateway, test_config, wait_until, Cluster};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    String::from_utf8_lossy(&raw_roundtrip(addr, req.as_bytes()).await).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_quorum_and_metrics_count_operations() {
    let mut cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let admin = gw.admin_addr().expect("admin enabled");
    assert!(get(admin, "/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(get(admin, "/readyz").await.starts_with("HTTP/1.1 200"));
    assert!(get(admin, "/nope").await.starts_with("HTTP/1.1 404"));

    let mut c = support::client(gw.local_addr()).await;
    let _: redis::Value = redis::cmd("LOCK.ACQUIRE")
        .arg("m")
        .arg(1000)
        .query_async(&mut c)
        .await
        .expect("acquire");
    let m = get(admin, "/metrics").await;
    assert!(
        m.contains("lockgate_lock_operations_total{op=\"acquire\",outcome=\"granted\"} 1"),
        "{m}"
    );
    assert!(m.contains("lockgate_quorum_margin 1"), "{m}");

    cluster.masters[0].kill();
    cluster.masters[1].kill();
    let engine = gw.engine().clone();
    assert!(wait_until(Duration::from_secs(5), || engine.ready_masters() < 2).await);
    let r = get(admin, "/readyz").await;
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    assert!(r.contains("not ready: only 1 of 3 masters healthy"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_oversized_admin_requests_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cluster = Cluster::start(1);
    let gw = start_gateway(test_config(&cluster)).await;
    let admin = gw.admin_addr().expect("admin enabled");
    // Half a request, then silence: closed by the header timeout.
    let mut s = tokio::net::TcpStream::connect(admin)
        .await
        .expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "a stalled request was not cut off");
    assert!(started.elapsed() < Duration::from_secs(8));
    // 64 KiB of headers: refused, never served.
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let out = raw_roundtrip(admin, big.as_bytes()).await;
    let text = String::from_utf8_lossy(&out);
    assert!(!text.starts_with("HTTP/1.1 200"), "{text}");
    // Other methods are refused.
    let out = raw_roundtrip(
        admin,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 405"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_scrape_passes_promtool_check_metrics() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = support::client(gw.local_addr()).await;
    for i in 0..20 {
        let _: redis::Value = redis::cmd("LOCK.ACQUIRE")
            .arg(format!("s{}", i % 3))
            .arg(1000)
            .query_async(&mut c)
            .await
            .expect("acquire");
    }
    let _: redis::RedisResult<redis::Value> = redis::cmd("NOPE").query_async(&mut c).await;
    let scrape = get(gw.admin_addr().expect("admin"), "/metrics").await;
    let body = scrape
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .expect("body");
    assert!(body.contains("lockgate_build_info"));
    let Some(out) = support::promtool_check_metrics(&body) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
