//! The `lockgate` binary's side of authentication: protected mode refusing to
//! start, and live reload from SIGHUP and `POST /reload`, including the
//! refusal of a master-set change.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lockgate::acl::sha256;
use lockgate::dev::free_port;
use support::{raw_roundtrip, Cluster, RawConn};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Running {
    proc: Proc,
    client: SocketAddr,
    admin: SocketAddr,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

fn hash(pw: &str) -> String {
    hex::encode(sha256(pw.as_bytes()))
}

/// The config file text: fixed ports, the cluster's masters (the first
/// `masters` of them), and `extra` top-level keys and tables.
fn config_text(client: u16, admin: u16, masters: &[String], top: &str, tail: &str) -> String {
    let mut t = format!(
        "listen = \"127.0.0.1:{client}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\
         requirepass = \"s3cret\"\n{top}\n\
         [lock]\nbootstrap = \"immediate\"\nmin_ttl_ms = 1\n\
         [master]\ntimeout_ms = 200\n{tail}\n"
    );
    for m in masters {
        t.push_str(&format!("[[masters]]\naddress = \"{m}\"\n"));
    }
    t.push_str(&format!(
        "[[users]]\nname = \"alice\"\npassword_sha256 = \"{}\"\ncommands = [\"lock\", \"read\"]\n\
         keys = [\"jobs:*\"]\n",
        hash("pw-alice")
    ));
    t
}

fn addrs(cluster: &Cluster) -> Vec<String> {
    cluster.masters.iter().map(|m| m.address()).collect()
}

async fn http(admin: SocketAddr, head: &str) -> String {
    String::from_utf8_lossy(&raw_roundtrip(admin, head.as_bytes()).await).into_owned()
}

async fn post_reload(admin: SocketAddr, token: Option<&str>) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    http(
        admin,
        &format!(
            "POST /reload HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    )
    .await
}

async fn metrics(admin: SocketAddr) -> String {
    http(
        admin,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
}

/// Polls `probe` every 50 ms until it returns true or 15 s pass.
async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let give_up = Instant::now() + Duration::from_secs(15);
    while !probe().await {
        assert!(Instant::now() < give_up, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start(cluster: &Cluster, top: &str) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("lockgate.toml");
    let (cp, ap) = (free_port().expect("port"), free_port().expect("port"));
    std::fs::write(&file, config_text(cp, ap, &addrs(cluster), top, "")).expect("write");
    let child = Command::new(env!("CARGO_BIN_EXE_lockgate"))
        .arg("--config")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn lockgate");
    let r = Running {
        proc: Proc(child),
        client: SocketAddr::from(([127, 0, 0, 1], cp)),
        admin: SocketAddr::from(([127, 0, 0, 1], ap)),
        file,
        _dir: dir,
    };
    let admin = r.admin;
    eventually("/readyz", || async move {
        // The listener is not bound until the process has started.
        tokio::net::TcpStream::connect(admin).await.is_ok()
            && http(
                admin,
                "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .await
            .starts_with("HTTP/1.1 200")
    })
    .await;
    r
}

fn rewrite(r: &Running, masters: &[String], top: &str, tail: &str) {
    std::fs::write(
        &r.file,
        config_text(r.client.port(), r.admin.port(), masters, top, tail),
    )
    .expect("rewrite");
}

fn sighup(r: &Running) {
    let ok = Command::new("kill")
        .arg("-HUP")
        .arg(r.proc.0.id().to_string())
        .status()
        .expect("kill");
    assert!(ok.success());
}

async fn auth_ok(addr: SocketAddr, user: &str, pw: &str) -> bool {
    let mut c = RawConn::connect(addr).await;
    c.cmd_str(&["AUTH", user, pw]).await == "+OK\r\n"
}

fn in_file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn protected_mode_refuses_a_public_listen_without_authentication_with_exit_64() {
    let out = Command::new(env!("CARGO_BIN_EXE_lockgate"))
        .args(["--listen", "0.0.0.0:0", "--master", "127.0.0.1:1"])
        .env_remove("LOCKGATE_REQUIREPASS")
        .output()
        .expect("run lockgate");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("protected_mode"), "{err}");
    assert!(err.contains("requirepass"), "{err}");
    assert!(err.contains("[[users]]"), "{err}");
    assert!(err.contains("protected_mode = false"), "{err}");
    // The same listen passes validation once a password is set.
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("c.toml");
    std::fs::write(
        &f,
        "listen = \"0.0.0.0:6380\"\nrequirepass = \"x\"\n[[masters]]\naddress = \"127.0.0.1:1\"\n",
    )
    .expect("write");
    let ok = Command::new(env!("CARGO_BIN_EXE_lockgate"))
        .arg("--check-config")
        .arg(&f)
        .output()
        .expect("run lockgate");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_user_and_a_limit_without_a_restart() {
    let cluster = Cluster::start(3);
    let r = start(&cluster, "").await;
    let mut alice = RawConn::connect(r.client).await;
    assert_eq!(
        alice.cmd_str(&["AUTH", "alice", "pw-alice"]).await,
        "+OK\r\n"
    );
    assert!(alice
        .cmd_str(&["LOCK.ACQUIRE", "jobs:0123456789", "5000"])
        .await
        .starts_with("*3"));
    assert!(!auth_ok(r.client, "carol", "pw-carol").await);

    let carol = format!(
        "[[users]]\nname = \"carol\"\npassword_sha256 = \"{}\"\ncommands = [\"read\"]\nkeys = [\"*\"]\n",
        hash("pw-carol")
    );
    rewrite(
        &r,
        &addrs(&cluster),
        "",
        &format!("[limits]\nmax_key_bytes = 8\n{carol}"),
    );
    assert!(in_file(&r.file).contains("carol"));
    sighup(&r);
    let addr = r.client;
    eventually("carol to be accepted", || {
        auth_ok(addr, "carol", "pw-carol")
    })
    .await;
    // The new key limit applies to a connection opened before the reload.
    assert_eq!(
        alice
            .cmd_str(&["LOCK.ACQUIRE", "jobs:0123456789", "5000"])
            .await,
        "-ERR invalid key in 'lock.acquire' command: longer than 8 bytes\r\n"
    );
    assert!(metrics(r.admin)
        .await
        .contains("lockgate_config_reloads_total{result=\"ok\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_reload_applies_the_file_and_says_what_changed() {
    let cluster = Cluster::start(3);
    let r = start(&cluster, "admin_token = \"tok\"").await;
    rewrite(
        &r,
        &addrs(&cluster),
        "admin_token = \"tok\"\nlog_level = \"debug\"",
        "[limits]\nmax_pipeline = 64\n",
    );
    let no_token = post_reload(r.admin, None).await;
    assert!(no_token.starts_with("HTTP/1.1 401"), "{no_token}");
    let bad_token = post_reload(r.admin, Some("nope")).await;
    assert!(bad_token.starts_with("HTTP/1.1 401"), "{bad_token}");
    let get = http(
        r.admin,
        "GET /reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(get.starts_with("HTTP/1.1 405"), "{get}");
    let ok = post_reload(r.admin, Some("tok")).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("log_level") && ok.contains("limits"), "{ok}");
    let again = post_reload(r.admin, Some("tok")).await;
    assert!(again.contains("nothing changed"), "{again}");
    assert!(auth_ok(r.client, "alice", "pw-alice").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_set_change_is_refused_and_the_gateway_keeps_serving() {
    let cluster = Cluster::start(3);
    let r = start(&cluster, "").await;
    let mut two = addrs(&cluster);
    two.pop();
    rewrite(&r, &two, "", "");
    let refused = post_reload(r.admin, None).await;
    assert!(refused.starts_with("HTTP/1.1 422"), "{refused}");
    assert!(refused.contains("masters changed"), "{refused}");
    assert!(refused.contains("Changing the master set"), "{refused}");
    sighup(&r);
    let admin = r.admin;
    eventually("the SIGHUP refusal to be counted", || async move {
        metrics(admin)
            .await
            .contains("lockgate_config_reloads_total{result=\"error\"} 2")
    })
    .await;
    let mut c = RawConn::connect(r.client).await;
    assert_eq!(c.cmd_str(&["AUTH", "s3cret"]).await, "+OK\r\n");
    let info = c.cmd_str(&["INFO", "lockgate"]).await;
    assert!(info.contains("masters:3"), "{info}");
    assert!(c
        .cmd_str(&["LOCK.ACQUIRE", "still:served", "5000"])
        .await
        .starts_with("*3"));
}
