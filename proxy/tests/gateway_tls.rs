//! TLS end to end: the gateway's TLS listener (with and without client
//! certificates, next to the plain port or alone) driven by the real
//! `redis-cli --tls`, by redis-rs over rustls and by a raw tokio-rustls
//! client; and TLS towards real `redis-server` masters that serve TLS only
//! (wrong CA, client certificates required, a master killed midway).
//! Every certificate is made by rcgen in the test (support/pki.rs).

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use lockgate::config::{Config, TlsListen};
use lockgate::master::MasterState;
use lockgate::server::Gateway;
use lockgate::tls::Pem;
use redis::Value;
use support::pki::Pki;
use support::{start_gateway, test_config, tls_master_config, wait_until, Cluster, RawConn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const SECOND: Duration = Duration::from_secs(1);

/// Adds a TLS listener with the test server certificate; `mtls` requires
/// client certificates from `ca.pem`.
fn with_tls_listener(mut c: Config, pki: &Pki, mtls: bool) -> Config {
    c.tls = Some(TlsListen {
        listen: "127.0.0.1:0".into(),
        cert_file: pki.path("server.pem"),
        key_file: pki.path("server.key"),
        client_ca_file: mtls.then(|| pki.path("ca.pem")),
        handshake_timeout: 5 * SECOND,
    });
    c.clone()
        .validate()
        .expect("the TLS configuration validates");
    c
}

/// A rustls client trusting `ca` and presenting `identity` (a file stem of
/// the test PKI, e.g. "client") when set.
fn rustls_client(pki: &Pki, ca: &str, identity: Option<&str>) -> Arc<rustls::ClientConfig> {
    let ca = pki.path(ca);
    let files = identity.map(|n| (pki.path(&format!("{n}.pem")), pki.path(&format!("{n}.key"))));
    lockgate::tls::client_config(
        Pem {
            key: "test",
            path: &ca,
        },
        files.as_ref().map(|(c, k)| {
            (
                Pem {
                    key: "test",
                    path: c,
                },
                Pem {
                    key: "test",
                    path: k,
                },
            )
        }),
    )
    .expect("client TLS config")
}

async fn tls_connect(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
}

/// PING over TLS: `Ok(reply)` or `Err(why)`. Under TLS 1.3 a server that
/// refuses the client certificate says so after the client's side of the
/// handshake is done, so the refusal shows on the first read.
async fn tls_ping(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> Result<String, String> {
    let mut s = tls_connect(addr, cfg)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    s.write_all(b"*1\r\n$4\r\nPING\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(10 * SECOND, s.read(&mut buf)).await {
        Err(_) => Err("no reply".into()),
        Ok(Err(e)) => Err(format!("read: {e}")),
        Ok(Ok(0)) => Err("closed".into()),
        Ok(Ok(n)) => Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
    }
}

/// Runs `redis-cli --tls` against `port`; (exit success, stdout + stderr).
async fn cli_tls(
    port: u16,
    pki: &Pki,
    ca: &str,
    identity: Option<&str>,
    args: &[&str],
) -> (bool, String) {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["--tls", "--cacert", &pki.path(ca)]);
    if let Some(n) = identity {
        cmd.args(["--cert", &pki.path(&format!("{n}.pem"))]);
        cmd.args(["--key", &pki.path(&format!("{n}.key"))]);
    }
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    cmd.args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run redis-cli");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim_end().to_string())
}

/// One sample of the gateway's Prometheus text, e.g.
/// `lockgate_tls_handshake_failures_total{reason="error"}`; 0 when absent.
fn metric(gw: &Gateway, series: &str) -> f64 {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&gw.metrics().registry.gather())
        .expect("encode");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn handshake_errors(gw: &Gateway) -> f64 {
    metric(
        gw,
        "lockgate_tls_handshake_failures_total{reason=\"error\"}",
    )
}

async fn acquire(c: &mut redis::aio::MultiplexedConnection, key: &str) -> Value {
    redis::cmd("LOCK.ACQUIRE")
        .arg(key)
        .arg(10_000)
        .query_async(c)
        .await
        .expect("LOCK.ACQUIRE")
}

fn is_grant(v: &Value) -> bool {
    matches!(v, Value::Array(a) if a.len() == 3 && matches!(a[1], Value::Int(t) if t > 0))
}

#[tokio::test]
async fn mtls_refuses_a_client_without_a_certificate() {
    let pki = Pki::new();
    let cluster = Cluster::start(3);
    let gw = start_gateway(with_tls_listener(test_config(&cluster), &pki, true)).await;
    let port = gw.tls_addr().expect("TLS listener").port();

    let r = tls_ping(
        gw.tls_addr().expect("tls"),
        rustls_client(&pki, "ca.pem", None),
    )
    .await;
    assert!(r.is_err(), "a client without a certificate got {r:?}");
    let (_, out) = cli_tls(port, &pki, "ca.pem", None, &["PING"]).await;
    assert!(
        !out.contains("PONG"),
        "redis-cli without a certificate: {out}"
    );
    assert!(
        wait_until(5 * SECOND, || handshake_errors(&gw) >= 2.0).await,
        "both refusals are counted; got {}",
        handshake_errors(&gw)
    );
}

#[tokio::test]
async fn mtls_refuses_a_certificate_from_another_ca() {
    let pki = Pki::new();
    let cluster = Cluster::start(3);
    let gw = start_gateway(with_tls_listener(test_config(&cluster), &pki, true)).await;
    let addr = gw.tls_addr().expect("TLS listener");

    let r = tls_ping(addr, rustls_client(&pki, "ca.pem", Some("wrong-client"))).await;
    assert!(r.is_err(), "a wrong-CA client certificate got {r:?}");
    let (_, out) = cli_tls(
        addr.port(),
        &pki,
        "ca.pem",
        Some("wrong-client"),
        &[
            "LOCK.ACQUIRE",
            "tls:intruder",
            "5000",
            "OWNER",
            "intruder-owner",
        ],
    )
    .await;
    assert!(
        !out.contains("intruder-owner"),
        "redis-cli with a wrong-CA certificate: {out}"
    );
    assert!(
        wait_until(5 * SECOND, || handshake_errors(&gw) >= 2.0).await,
        "both refusals are counted"
    );
    // Nothing was granted through the refused connections.
    let mut c = support::client(gw.local_addr()).await;
    let st: Value = redis::cmd("LOCK.STATUS")
        .arg("tls:intruder")
        .query_async(&mut c)
        .await
        .expect("LOCK.STATUS");
    assert_eq!(st, Value::Nil);
}

#[tokio::test]
async fn mtls_serves_the_right_certificate_to_redis_cli_redis_rs_and_rustls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = Pki::new();
    let cluster = Cluster::start(3);
    let gw = start_gateway(with_tls_listener(test_config(&cluster), &pki, true)).await;
    let addr = gw.tls_addr().expect("TLS listener");

    // redis-cli, the operator's tool.
    let (ok, out) = cli_tls(
        addr.port(),
        &pki,
        "ca.pem",
        Some("client"),
        &["LOCK.ACQUIRE", "tls:cli", "10000", "OWNER", "cli"],
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        ok && lines.len() == 3 && lines[0] == "cli" && lines[1].parse::<u64>().is_ok(),
        "redis-cli over mTLS: {out}"
    );

    // redis-rs over rustls, with the same client certificate.
    let read = |n: &str| std::fs::read(pki.path(n)).expect("read PEM");
    let client = redis::Client::build_with_tls(
        format!("rediss://127.0.0.1:{}", addr.port()),
        redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: read("client.pem"),
                client_key: read("client.key"),
            }),
            root_cert: Some(read("ca.pem")),
        },
    )
    .expect("rediss client");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis-rs connects over mTLS");
    let set: Option<String> = redis::cmd("SET")
        .arg("tls:rs")
        .arg("rs")
        .arg("NX")
        .arg("PX")
        .arg(10_000)
        .query_async(&mut c)
        .await
        .expect("SET NX PX");
    assert_eq!(set.as_deref(), Some("OK"));
    let busy = acquire(&mut c, "tls:cli").await;
    assert_eq!(busy, Value::Nil, "the redis-cli grant is held");

    // A raw tokio-rustls client: CLIENT INFO shows the transport.
    let s = tls_connect(addr, rustls_client(&pki, "ca.pem", Some("client")))
        .await
        .expect("raw mTLS handshake");
    let mut raw = RawConn::over(s);
    let info = raw.cmd_str(&["CLIENT", "INFO"]).await;
    assert!(info.contains("tls=yes"), "{info}");
    let got = raw.cmd_str(&["LOCK.STATUS", "tls:rs"]).await;
    assert!(got.starts_with("*3\r\n$2\r\nrs\r\n"), "{got}");
    assert_eq!(handshake_errors(&gw), 0.0);
}

#[tokio::test]
async fn the_plain_port_alongside_shares_locks_with_the_tls_port() {
    let pki = Pki::new();
    let cluster = Cluster::start(3);
    let gw = start_gateway(with_tls_listener(test_config(&cluster), &pki, false)).await;
    let tls = gw.tls_addr().expect("TLS listener");
    assert_ne!(tls, gw.local_addr());

    // Without mTLS a client needs no certificate, only the CA.
    let (ok, out) = cli_tls(
        tls.port(),
        &pki,
        "ca.pem",
        None,
        &["LOCK.ACQUIRE", "tls:both", "10000", "OWNER", "over-tls"],
    )
    .await;
    assert!(ok && out.starts_with("over-tls"), "{out}");

    let mut plain = RawConn::connect(gw.local_addr()).await;
    let got = plain.cmd_str(&["LOCK.STATUS", "tls:both"]).await;
    assert!(got.starts_with("*3\r\n$8\r\nover-tls\r\n"), "{got}");
    let got = plain.cmd_str(&["LOCK.ACQUIRE", "tls:both", "1000"]).await;
    assert_eq!(got, "*-1\r\n", "held through the other port");
    let info = plain.cmd_str(&["CLIENT", "INFO"]).await;
    assert!(info.contains("tls=no"), "{info}");
    // A client that speaks plain text to the TLS port gets no reply.
    let r = support::raw_roundtrip(tls, b"PING\r\n").await;
    assert!(!String::from_utf8_lossy(&r).contains("PONG"));
}

#[tokio::test]
async fn with_the_plain_port_off_only_tls_is_served() {
    let pki = Pki::new();
    let cluster = Cluster::start(1);
    let mut cfg = with_tls_listener(test_config(&cluster), &pki, false);
    cfg.listen = String::new();
    let cfg = cfg.validate().expect("listen = \"\" is valid with TLS on");
    let gw = start_gateway(cfg).await;
    let tls = gw.tls_addr().expect("TLS listener");
    assert_eq!(
        gw.local_addr(),
        tls,
        "the only client address is the TLS one"
    );
    let r = tls_ping(tls, rustls_client(&pki, "ca.pem", None)).await;
    assert_eq!(r.as_deref(), Ok("+PONG\r\n"));
}

#[tokio::test]
async fn a_stalled_handshake_holds_up_no_other_client_and_times_out() {
    let pki = Pki::new();
    let cluster = Cluster::start(1);
    let mut cfg = with_tls_listener(test_config(&cluster), &pki, false);
    if let Some(t) = &mut cfg.tls {
        t.handshake_timeout = 3 * SECOND;
    }
    let gw = start_gateway(cfg).await;
    let tls = gw.tls_addr().expect("TLS listener");
    let timeouts = || {
        metric(
            &gw,
            "lockgate_tls_handshake_failures_total{reason=\"timeout\"}",
        )
    };

    // Connects and never sends a ClientHello.
    let _stalled = TcpStream::connect(tls).await.expect("connect");
    let r = tls_ping(tls, rustls_client(&pki, "ca.pem", None)).await;
    assert_eq!(r.as_deref(), Ok("+PONG\r\n"));
    // Served while the stalled handshake was still within its deadline: a
    // handshake in the accept loop would have made this client wait it out.
    assert_eq!(timeouts(), 0.0, "the other client was served first");
    assert!(
        wait_until(15 * SECOND, || timeouts() == 1.0).await,
        "the stalled handshake ran out of time and was counted"
    );
}

#[tokio::test]
async fn a_master_with_a_certificate_from_another_ca_does_not_vote() {
    let pki = Pki::new();
    let mut cluster = Cluster::start_tls(2, &pki, false);
    cluster.masters.push(Cluster::tls_master(&pki, false, true));
    let cfg = tls_master_config(&cluster, &pki);
    let cfg = cfg.validate().expect("valid");
    let gw = start_gateway(cfg).await;
    let impostor = &gw.engine().masters()[2];
    let series = format!(
        "lockgate_master_connect_failures_total{{master=\"{}\",reason=\"tls\"}}",
        impostor.name()
    );
    assert!(
        wait_until(10 * SECOND, || metric(&gw, &series) >= 1.0).await,
        "the failed verification is counted as a TLS failure"
    );
    assert_eq!(impostor.state(), MasterState::Down);
    for m in &gw.engine().masters()[..2] {
        assert_eq!(m.state(), MasterState::Up, "{}", m.name());
    }

    let mut c = support::client(gw.local_addr()).await;
    let v = acquire(&mut c, "tls:vote").await;
    assert!(is_grant(&v), "granted by the two good masters: {v:?}");
    // The key is on the good masters and was never written to the other.
    let name = lockgate::lock::keys::lock_key(&gw.engine().config().key_prefix, b"tls:vote");
    let name = String::from_utf8_lossy(&name).into_owned();
    for (i, ca) in [(0, "ca.pem"), (1, "ca.pem"), (2, "wrong-ca.pem")] {
        let port = cluster.masters[i].port();
        let (ok, out) = cli_tls(port, &pki, ca, None, &["EXISTS", &name]).await;
        let want = if i == 2 { "0" } else { "1" };
        assert!(ok && out == want, "master {i}: EXISTS gave {out:?}");
    }
}

#[tokio::test]
async fn masters_requiring_client_certificates_accept_the_configured_one() {
    let pki = Pki::new();
    let cluster = Cluster::start_tls(3, &pki, true);

    // Without a client certificate every master refuses the gateway.
    let without = tls_master_config(&cluster, &pki);
    let gw = Gateway::start(without).await.expect("starts");
    let first = gw.engine().masters()[0].name().to_string();
    let series =
        format!("lockgate_master_connect_failures_total{{master=\"{first}\",reason=\"tls\"}}");
    assert!(
        wait_until(10 * SECOND, || metric(&gw, &series) >= 1.0).await,
        "refused for the missing certificate, counted as TLS"
    );
    assert_eq!(gw.engine().ready_masters(), 0);
    gw.shutdown(SECOND).await;

    let mut with = tls_master_config(&cluster, &pki);
    with.master_tls.cert_file = Some(pki.path("client.pem"));
    with.master_tls.key_file = Some(pki.path("client.key"));
    let with = with.validate().expect("valid");
    let gw = start_gateway(with).await;
    assert!(
        wait_until(10 * SECOND, || gw.engine().ready_masters() == 3).await,
        "all three masters accept the configured certificate"
    );
    let mut c = support::client(gw.local_addr()).await;
    let v = acquire(&mut c, "tls:mtls-masters").await;
    assert!(is_grant(&v), "{v:?}");
}

#[tokio::test]
async fn a_tls_master_killed_midway_leaves_a_quorum_that_grants() {
    let pki = Pki::new();
    let mut cluster = Cluster::start_tls(3, &pki, false);
    let gw = start_gateway(tls_master_config(&cluster, &pki)).await;
    assert!(
        wait_until(10 * SECOND, || gw.engine().ready_masters() == 3).await,
        "all three TLS masters up"
    );
    let mut c = support::client(gw.local_addr()).await;
    let before = acquire(&mut c, "tls:a").await;
    assert!(is_grant(&before), "{before:?}");

    cluster.masters[0].kill();
    let killed = &gw.engine().masters()[0];
    assert!(
        wait_until(10 * SECOND, || killed.state() == MasterState::Down).await,
        "the killed master goes down"
    );
    let after = acquire(&mut c, "tls:b").await;
    assert!(is_grant(&after), "granted by the two left: {after:?}");
    let busy = acquire(&mut c, "tls:a").await;
    assert_eq!(busy, Value::Nil, "the earlier grant still holds");
    let owner = match &before {
        Value::Array(a) => match &a[0] {
            Value::BulkString(b) => b.clone(),
            other => panic!("owner {other:?}"),
        },
        other => panic!("grant {other:?}"),
    };
    let released: i64 = redis::cmd("LOCK.RELEASE")
        .arg("tls:a")
        .arg(owner)
        .query_async(&mut c)
        .await
        .expect("LOCK.RELEASE");
    assert_eq!(released, 1);
}

#[tokio::test]
async fn a_pipelined_burst_over_tls_gets_every_reply() {
    let pki = Pki::new();
    let cluster = Cluster::start(1);
    let gw = start_gateway(with_tls_listener(test_config(&cluster), &pki, false)).await;
    let s = tls_connect(
        gw.tls_addr().expect("tls"),
        rustls_client(&pki, "ca.pem", None),
    )
    .await
    .expect("handshake");
    // More replies than the socket buffers hold, so the gateway's writes
    // meet backpressure while the client is still sending.
    const N: usize = 60_000;
    let (mut rd, mut wr) = tokio::io::split(s);
    let writer = tokio::spawn(async move {
        let burst = b"PING\r\n".repeat(1_000);
        for _ in 0..N / 1_000 {
            wr.write_all(&burst).await.expect("write");
        }
        wr.flush().await.expect("flush");
        wr
    });
    let want = b"+PONG\r\n".len() * N;
    let mut got = 0;
    // Small reads drain slowly, so the last replies meet a full socket.
    let mut buf = vec![0u8; 512];
    while got < want {
        let n = tokio::time::timeout(30 * SECOND, rd.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("stalled after {got} of {want} reply bytes"))
            .expect("read");
        assert!(n > 0, "closed after {got} of {want} reply bytes");
        got += n;
    }
    assert_eq!(got, want);
    let _wr = writer.await.expect("writer");
}
