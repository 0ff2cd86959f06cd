//! Integration-test harness: real `redis-server` masters on free loopback
//! ports, an in-process gateway bound to port 0, and small client helpers.

#![allow(dead_code)]

pub mod pki;

use std::net::SocketAddr;
use std::time::Duration;

use lockgate::config::{Bootstrap, Config, MasterConfig};
use lockgate::dev::{LocalRedis, RedisTls};
use lockgate::server::Gateway;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A set of real masters; dropping it kills them.
pub struct Cluster {
    pub masters: Vec<LocalRedis>,
}

impl Cluster {
    pub fn start(n: usize) -> Cluster {
        Cluster {
            masters: (0..n)
                .map(|_| LocalRedis::start().expect("redis-server must be installed"))
                .collect(),
        }
    }

    /// Masters started with extra `redis-server` arguments, e.g.
    /// `["--requirepass", "pw"]` or an ACL user.
    pub fn start_with_args(n: usize, args: &[&str]) -> Cluster {
        Cluster {
            masters: (0..n)
                .map(|_| LocalRedis::start_with_args(args).expect("redis-server must be installed"))
                .collect(),
        }
    }

    /// `n` masters serving TLS only, with the server certificate of `pki`
    /// signed by `ca.pem`, or by the unrelated CA when `wrong_ca` is set;
    /// with `auth_clients`, they refuse clients without a `ca.pem` client
    /// certificate.
    pub fn start_tls(n: usize, pki: &pki::Pki, auth_clients: bool) -> Cluster {
        Cluster {
            masters: (0..n)
                .map(|_| Self::tls_master(pki, auth_clients, false))
                .collect(),
        }
    }

    /// One TLS-only master; `wrong_ca` gives it a server certificate from
    /// the unrelated CA.
    pub fn tls_master(pki: &pki::Pki, auth_clients: bool, wrong_ca: bool) -> LocalRedis {
        let server = if wrong_ca { "wrong-server" } else { "server" };
        LocalRedis::start_tls(RedisTls {
            cert_file: pki.path(&format!("{server}.pem")).into(),
            key_file: pki.path(&format!("{server}.key")).into(),
            ca_file: pki.path("ca.pem").into(),
            auth_clients,
        })
        .expect("redis-server with TLS must be installed")
    }

    pub fn start_aof(n: usize) -> Cluster {
        Cluster {
            masters: (0..n)
                .map(|_| LocalRedis::start_aof().expect("redis-server must be installed"))
                .collect(),
        }
    }
}

/// A config for tests: ephemeral ports, masters initialised at once, and a
/// master deadline generous enough for a loaded 2-core machine.
pub fn test_config(cluster: &Cluster) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        masters: cluster
            .masters
            .iter()
            .map(|m| MasterConfig::plain(m.address()))
            .collect(),
        ..Config::default()
    };
    c.lock.bootstrap = Bootstrap::Immediate;
    c.lock.min_ttl = Duration::from_millis(1);
    c.lock.max_ttl = Duration::from_secs(60);
    // Tests run in parallel on 2 cores with many masters each.
    c.master.timeout = Duration::from_millis(200);
    c.master.reconnect_max = Duration::from_millis(500);
    c
}

/// [`test_config`] for TLS masters: every master has `tls = true` and is
/// checked against `ca.pem`; no client certificate unless set later.
pub fn tls_master_config(cluster: &Cluster, pki: &pki::Pki) -> Config {
    let mut c = test_config(cluster);
    for m in &mut c.masters {
        m.tls = true;
    }
    c.master_tls.ca_file = Some(pki.path("ca.pem"));
    c
}

/// Starts a gateway and waits until a quorum of masters is ready.
pub async fn start_gateway(cfg: Config) -> Gateway {
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    assert!(
        gw.wait_ready(Duration::from_secs(10)).await,
        "gateway did not become ready"
    );
    gw
}

pub async fn client(addr: SocketAddr) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{addr}"))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to gateway")
}

/// Sends raw bytes and returns everything read until the peer closes or is
/// quiet for 300 ms.
pub async fn raw_roundtrip(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let give_up = std::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= give_up {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The dashboards/ folder.
pub fn dashboards_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

/// Every PromQL expression of the dashboard, with its panel title.
pub fn dashboard_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dashboards_dir().join("lockgate-overview.json"))
        .expect("dashboard JSON");
    let d: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((p["title"].as_str().unwrap_or("").to_string(), e.to_string()));
            }
        }
    }
    out
}

/// Every `expr` of dashboards/alerts.yml as (rule name, is_alert, expr).
/// A small line-based reader: the file keeps to `- record:`/`- alert:`
/// followed by `expr:` (inline or `|` block).
pub fn rule_exprs() -> Vec<(String, bool, String)> {
    let text = std::fs::read_to_string(dashboards_dir().join("alerts.yml")).expect("alerts.yml");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut name = (String::new(), false);
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if let Some(n) = t.strip_prefix("- record:") {
            name = (n.trim().to_string(), false);
        } else if let Some(n) = t.strip_prefix("- alert:") {
            name = (n.trim().to_string(), true);
        } else if let Some(e) = t.strip_prefix("expr:") {
            let e = e.trim();
            if e == "|" {
                let indent = lines[i].len() - lines[i].trim_start().len();
                let mut block = Vec::new();
                while i + 1 < lines.len() {
                    let l = lines[i + 1];
                    if l.trim().is_empty() || l.len() - l.trim_start().len() <= indent {
                        break;
                    }
                    block.push(l.trim());
                    i += 1;
                }
                out.push((name.0.clone(), name.1, block.join(" ")));
            } else {
                out.push((name.0.clone(), name.1, e.to_string()));
            }
        }
        i += 1;
    }
    out
}

/// Runs `promtool check metrics` on a scrape; `None` when promtool is not
/// installed outside CI (under `CI=true` a missing promtool fails).
pub fn promtool_check_metrics(text: &str) -> Option<std::process::Output> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    if Command::new("promtool").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "promtool is missing: apt-get install prometheus"
        );
        eprintln!("skipping: promtool not installed (apt-get install prometheus)");
        return None;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    Some(child.wait_with_output().expect("wait"))
}

/// Whether an external client toolchain is usable. Skipping is allowed only
/// off CI: `.ci/run` installs every toolchain, so there a missing one fails.
pub fn toolchain_available(what: &str, probe: &mut std::process::Command, hint: &str) -> bool {
    let ok = probe.output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "{what} is missing on CI: {hint}"
        );
        eprintln!("skipping: {what} not installed ({hint})");
    }
    ok
}

/// Runs one client-library suite as a child process against a fresh gateway
/// over three real masters. The child gets `args` then HOST PORT and any
/// `tail` arguments, and `LOCKGATE_KILL_PID`: a master it must SIGKILL
/// midway, to prove the library keeps working with one master gone. It
/// prints `ok   <check>` per passed check and exits non-zero on the first
/// failure. Returns the number of passed checks.
pub async fn run_client_suite(program: &str, args: &[&str], tail: &[&str]) -> usize {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let pid = cluster.masters[0].pid().expect("master pid").to_string();
    let port = gw.local_addr().port().to_string();
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .args(["127.0.0.1", port.as_str()])
        .args(tail)
        .env("LOCKGATE_KILL_PID", &pid);
    let what = format!("{program} {}", args.join(" "));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{what} {tail:?} failed (see output above)"
    );
    let passed = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(passed > 0, "{what} printed no checks");
    drop(gw);
    passed
}

/// A raw client connection for wire-level replays: sends commands exactly as
/// a library would and returns each reply's exact bytes.
pub struct RawConn {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
}

/// Any client byte stream: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> RawConn {
        Self::over(TcpStream::connect(addr).await.expect("connect"))
    }

    /// Over an already open stream (a TLS client, for instance).
    pub fn over(stream: impl Io + 'static) -> RawConn {
        RawConn {
            stream: Box::new(stream),
            buf: Vec::new(),
        }
    }

    /// Sends one command as a RESP array of bulk strings and returns the
    /// raw bytes of its reply.
    pub async fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).await.expect("write");
        self.reply().await
    }

    /// [`RawConn::cmd`] with string arguments.
    pub async fn cmd_str(&mut self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        String::from_utf8_lossy(&self.cmd(&args).await).into_owned()
    }

    /// The next complete frame the gateway sends, unasked (a RESP3 push).
    pub async fn next_frame_str(&mut self) -> String {
        String::from_utf8_lossy(&self.reply().await).into_owned()
    }

    async fn reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(n) = frame_len(&self.buf) {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .expect("reply within 10 s")
                .expect("read");
            assert!(
                n > 0,
                "connection closed; had {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The length of the first complete RESP2/RESP3 frame in `b`, if any.
fn frame_len(b: &[u8]) -> Option<usize> {
    let line_end = b.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&b[1..line_end]).ok()?;
    let after = line_end + 2;
    let count = |h: &str| h.parse::<i64>().ok();
    match b.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let n = count(head)?;
            if n < 0 {
                return Some(after);
            }
            let end = after + usize::try_from(n).ok()? + 2;
            (b.len() >= end).then_some(end)
        }
        t @ (b'*' | b'~' | b'>' | b'%' | b'|') => {
            let n = count(head)?;
            if n < 0 {
                return Some(after);
            }
            let items = usize::try_from(n).ok()? * if matches!(t, b'%' | b'|') { 2 } else { 1 };
            let mut at = after;
            for _ in 0..items {
                at += frame_len(&b[at..])?;
            }
            // An attribute is followed by the reply it annotates.
            if *t == b'|' {
                at += frame_len(&b[at..])?;
            }
            Some(at)
        }
        _ => None,
    }
}
