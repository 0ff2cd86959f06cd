//! A real Prometheus (Debian's package) scrapes a running gateway under a
//! short lock workload; every PromQL expression of the dashboard and the
//! rules must parse, and must return data (alert expressions: with their
//! final threshold comparison removed, since a healthy system should not
//! fire them).

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lockgate::dev::free_port;
use support::{
    client, dashboard_exprs, dashboards_dir, rule_exprs, start_gateway, test_config, Cluster,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GET over HTTP/1.0, so the body is never chunked.
async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

async fn query(prom: SocketAddr, expr: &str) -> serde_json::Value {
    let path = format!("/api/v1/query?query={}", urlencode(expr));
    let (_, body) = http_get(prom, &path).await.expect("prometheus answers");
    serde_json::from_str(&body).expect("JSON from prometheus")
}

fn strip_threshold(expr: &str) -> String {
    for op in [" >= ", " <= ", " == ", " != ", " > ", " < "] {
        if let Some((lhs, rhs)) = expr.rsplit_once(op) {
            if rhs.trim().parse::<f64>().is_ok() {
                return lhs.trim().to_string();
            }
        }
    }
    expr.to_string()
}

fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$instance", ".*")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_rule_expression_returns_data_from_a_real_prometheus() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").is_err(),
            "prometheus is missing: apt-get install prometheus"
        );
        eprintln!("skipping: prometheus not installed (apt-get install prometheus)");
        return;
    }
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let admin = gw.admin_addr().expect("admin");

    let dir = tempfile::tempdir().expect("tmp");
    let prom_port = free_port().expect("port");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: lockgate\n    static_configs:\n      - targets: ['{admin}']\n",
            dashboards_dir().join("alerts.yml").display()
        ),
    )
    .expect("write config");
    let _prom = Proc(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let prom: SocketAddr = format!("127.0.0.1:{prom_port}").parse().expect("addr");

    // A short workload with contention, releases, status reads and extends.
    let mut c = client(gw.local_addr()).await;
    let until = Instant::now() + Duration::from_secs(8);
    let mut i = 0u64;
    while Instant::now() < until {
        let key = format!("k{}", i % 7);
        let v: redis::Value = redis::cmd("LOCK.ACQUIRE")
            .arg(&key)
            .arg(2000)
            .query_async(&mut c)
            .await
            .expect("acquire");
        let _: redis::Value = redis::cmd("LOCK.STATUS")
            .arg(&key)
            .query_async(&mut c)
            .await
            .expect("status");
        if let redis::Value::Array(items) = v {
            if let Some(redis::Value::BulkString(owner)) = items.first() {
                if i.is_multiple_of(3) {
                    let _: redis::Value = redis::cmd("LOCK.EXTEND")
                        .arg(&key)
                        .arg(owner)
                        .arg(2000)
                        .query_async(&mut c)
                        .await
                        .expect("extend");
                }
                let _: i64 = redis::cmd("LOCK.RELEASE")
                    .arg(&key)
                    .arg(owner)
                    .query_async(&mut c)
                    .await
                    .expect("release");
            }
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Wait until Prometheus has several scrapes of the gateway.
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        let r = query(prom, "count_over_time(up{job=\"lockgate\"}[1m])").await;
        let n = r["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
        if n >= 5.0 {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "prometheus did not scrape the gateway: {r}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let mut checked = 0;
    let mut all: Vec<(String, String, bool)> = dashboard_exprs()
        .into_iter()
        .map(|(t, e)| (format!("panel '{t}'"), e, false))
        .collect();
    all.extend(
        rule_exprs()
            .into_iter()
            .map(|(n, alert, e)| (format!("rule {n}"), e, alert)),
    );
    for (what, expr, alert) in all {
        let e = substitute(&expr);
        let full = query(prom, &e).await;
        assert_eq!(
            full["status"], "success",
            "{what}: {e} does not parse: {full}"
        );
        let probe = if alert {
            strip_threshold(&e)
        } else {
            e.clone()
        };
        let r = query(prom, &probe).await;
        let series = r["data"]["result"].as_array().map_or(0, Vec::len);
        assert!(series > 0, "{what}: {probe} returned no data: {r}");
        checked += 1;
        eprintln!("ok  {what}: {series} series");
    }
    eprintln!("{checked} expressions checked against a real Prometheus, all returned data");
    assert!(checked >= 28);
}
