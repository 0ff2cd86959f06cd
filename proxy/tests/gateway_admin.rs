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
