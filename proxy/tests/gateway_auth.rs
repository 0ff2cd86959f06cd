//! Authentication and ACLs against real masters: AUTH in both forms, HELLO
//! 3 AUTH, NOAUTH before authentication, Redis 7's pre-auth size limits,
//! NOPERM by family and by key pattern, WRONGPASS with its metric and rate
//! limit, redis-cli and the redis crate, per-master credentials, and a live
//! reload of the users.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lockgate::acl::sha256;
use lockgate::config::{Config, UserConfig};
use lockgate::server::Gateway;
use support::{start_gateway, test_config, wait_until, Cluster, RawConn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WRONGPASS: &str = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
const NOAUTH: &str = "-NOAUTH Authentication required.\r\n";

fn user(name: &str, pw: &str, families: &[&str], keys: &[&str], enabled: bool) -> UserConfig {
    UserConfig {
        name: name.into(),
        password_sha256: sha256(pw.as_bytes()),
        commands: families
            .iter()
            .map(|f| {
                let family = lockgate::acl::Family::from_config(f).expect("family");
                family.as_str().to_string()
            })
            .collect(),
        keys: keys.iter().map(|k| (*k).to_string()).collect(),
        enabled,
    }
}

/// requirepass `s3cret`; alice may lock and read `jobs:*`; ops may only
/// administer; bob is disabled.
fn auth_config(cluster: &Cluster) -> Config {
    let mut c = test_config(cluster);
    c.requirepass = Some("s3cret".into());
    c.users = vec![
        user("alice", "pw-alice", &["lock", "read"], &["jobs:*"], true),
        user("ops", "pw-ops", &["admin"], &["*"], true),
        user("bob", "pw-bob", &["lock", "read", "admin"], &["*"], false),
    ];
    c
}

async fn auth_gateway() -> (Cluster, Gateway) {
    let cluster = Cluster::start(3);
    let gw = start_gateway(auth_config(&cluster)).await;
    (cluster, gw)
}

async fn login(addr: SocketAddr, args: &[&str]) -> RawConn {
    let mut c = RawConn::connect(addr).await;
    assert_eq!(c.cmd_str(args).await, "+OK\r\n", "{args:?}");
    c
}

/// Writes `bytes` and reads until the peer closes; fails if it stays open.
async fn send_until_closed(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    // The gateway may close while we still write; that is the point.
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&out).into_owned(),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "connection still open after 10 s; got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

fn resp_command(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn failures(gw: &Gateway, reason: &str) -> u64 {
    gw.metrics()
        .auth_failures
        .with_label_values(&[reason])
        .get()
}

fn denials(gw: &Gateway, reason: &str) -> u64 {
    gw.metrics().acl_denied.with_label_values(&[reason]).get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_with_a_password_alone_and_with_user_and_password_both_work() {
    let (_cluster, gw) = auth_gateway().await;
    let addr = gw.local_addr();
    let mut c = RawConn::connect(addr).await;
    assert_eq!(c.cmd_str(&["LOCK.ACQUIRE", "jobs:a", "5000"]).await, NOAUTH);
    assert_eq!(c.cmd_str(&["AUTH", "s3cret"]).await, "+OK\r\n");
    assert!(c
        .cmd_str(&["LOCK.ACQUIRE", "any:key", "5000"])
        .await
        .starts_with("*3\r\n"));

    let mut a = login(addr, &["AUTH", "alice", "pw-alice"]).await;
    assert!(a
        .cmd_str(&["LOCK.ACQUIRE", "jobs:b", "5000"])
        .await
        .starts_with("*3\r\n"));
    login(addr, &["AUTH", "default", "s3cret"]).await;
    let mut w = RawConn::connect(addr).await;
    assert_eq!(w.cmd_str(&["AUTH", "alice", "s3cret"]).await, WRONGPASS);
    assert_eq!(w.cmd_str(&["AUTH", "pw-alice"]).await, WRONGPASS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_3_auth_authenticates_and_switches_to_resp3() {
    let (_cluster, gw) = auth_gateway().await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    let refused = c.cmd_str(&["HELLO", "3"]).await;
    assert!(
        refused.starts_with("-NOAUTH HELLO must be called"),
        "{refused}"
    );
    let bad = c.cmd_str(&["HELLO", "3", "AUTH", "alice", "nope"]).await;
    assert_eq!(bad, WRONGPASS);
    let hello = c
        .cmd_str(&["HELLO", "3", "AUTH", "alice", "pw-alice", "SETNAME", "w1"])
        .await;
    assert!(hello.starts_with('%'), "a RESP3 map: {hello}");
    assert!(hello.contains("proto\r\n:3"), "{hello}");
    let got = c.cmd_str(&["LOCK.ACQUIRE", "jobs:hello", "5000"]).await;
    assert!(got.starts_with("*3\r\n"), "{got}");
    assert_eq!(c.cmd_str(&["CLIENT", "GETNAME"]).await, "$2\r\nw1\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_before_auth_get_noauth_and_the_connection_stays_open() {
    let (_cluster, gw) = auth_gateway().await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    for cmd in [
        &["GET", "jobs:1"][..],
        &["SET", "jobs:1", "v", "NX", "PX", "100"],
        &["INFO"],
        &["CLIENT", "LIST"],
        &["LOCK.STATUS", "jobs:1"],
    ] {
        assert_eq!(c.cmd_str(cmd).await, NOAUTH, "{cmd:?}");
    }
    assert_eq!(c.cmd_str(&["PING"]).await, "+PONG\r\n");
    assert_eq!(c.cmd_str(&["AUTH", "s3cret"]).await, "+OK\r\n");
    assert!(c
        .cmd_str(&["INFO", "server"])
        .await
        .contains("redis_version"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_clients_are_held_to_ten_arguments_and_16_kib_bulks() {
    let (_cluster, gw) = auth_gateway().await;
    let addr = gw.local_addr();
    let mut eleven: Vec<Vec<u8>> = vec![b"EXISTS".to_vec()];
    eleven.extend((0..10).map(|i| format!("jobs:{i}").into_bytes()));
    let got = send_until_closed(addr, &resp_command(&eleven)).await;
    assert!(got.starts_with("-ERR Protocol error"), "{got}");

    let big = [vec![b"PING".to_vec(), vec![b'x'; 16 * 1024 + 1]]];
    let got = send_until_closed(addr, &resp_command(&big[0])).await;
    assert!(got.starts_with("-ERR Protocol error"), "{got}");

    // The same requests are fine once authenticated: the limits are
    // pre-auth only.
    let mut c = login(addr, &["AUTH", "s3cret"]).await;
    let args: Vec<&[u8]> = eleven.iter().map(|a| &a[..]).collect();
    assert_eq!(c.cmd(&args).await, b":0\r\n");
    let pong = c.cmd(&[b"PING", &big[0][1]]).await;
    assert!(pong.starts_with(b"$16385\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noperm_refuses_commands_outside_the_users_families() {
    let (_cluster, gw) = auth_gateway().await;
    let addr = gw.local_addr();
    let before = denials(&gw, "command");
    let mut alice = login(addr, &["AUTH", "alice", "pw-alice"]).await;
    assert_eq!(
        alice.cmd_str(&["INFO"]).await,
        "-NOPERM User alice has no permissions to run the 'info' command\r\n"
    );
    assert_eq!(
        alice.cmd_str(&["CLIENT", "LIST"]).await,
        "-NOPERM User alice has no permissions to run the 'client|list' command\r\n"
    );
    // Connection commands stay allowed, and the connection stays open.
    assert_eq!(alice.cmd_str(&["CLIENT", "SETNAME", "a"]).await, "+OK\r\n");
    assert_eq!(alice.cmd_str(&["PING"]).await, "+PONG\r\n");
    assert_eq!(alice.cmd_str(&["GET", "jobs:x"]).await, "$-1\r\n");

    let mut ops = login(addr, &["AUTH", "ops", "pw-ops"]).await;
    assert_eq!(
        ops.cmd_str(&["LOCK.ACQUIRE", "jobs:1", "1000"]).await,
        "-NOPERM User ops has no permissions to run the 'lock.acquire' command\r\n"
    );
    assert_eq!(
        ops.cmd_str(&["LOCK.STATUS", "jobs:1"]).await,
        "-NOPERM User ops has no permissions to run the 'lock.status' command\r\n"
    );
    assert!(ops
        .cmd_str(&["INFO", "lockgate"])
        .await
        .contains("quorum:2"));
    assert_eq!(denials(&gw, "command"), before + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noperm_refuses_any_key_outside_the_users_patterns() {
    let (_cluster, gw) = auth_gateway().await;
    let before = denials(&gw, "key");
    let mut alice = login(gw.local_addr(), &["AUTH", "alice", "pw-alice"]).await;
    let key_denied = "-NOPERM No permissions to access a key\r\n";
    assert_eq!(
        alice.cmd_str(&["LOCK.ACQUIRE", "other:1", "5000"]).await,
        key_denied
    );
    assert_eq!(
        alice
            .cmd_str(&["SET", "other:1", "me", "NX", "PX", "5000"])
            .await,
        key_denied
    );
    // Every key counts, not just the first.
    assert_eq!(
        alice.cmd_str(&["EXISTS", "jobs:1", "other:1"]).await,
        key_denied
    );
    assert_eq!(
        alice
            .cmd_str(&[
                "EVALSHA",
                "0000000000000000000000000000000000000000",
                "1",
                "other:1"
            ])
            .await,
        key_denied
    );
    assert_eq!(
        alice
            .cmd_str(&["SET", "jobs:1", "me", "NX", "PX", "5000"])
            .await,
        "+OK\r\n"
    );
    assert_eq!(alice.cmd_str(&["GET", "jobs:1"]).await, "$2\r\nme\r\n");
    assert_eq!(denials(&gw, "key"), before + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_counted_delayed_and_finally_disconnected() {
    let (_cluster, gw) = auth_gateway().await;
    let addr = gw.local_addr();
    let wrong = failures(&gw, "wrong_password");
    let disabled = failures(&gw, "user_disabled");
    let unknown = failures(&gw, "unknown_user");
    let closed = failures(&gw, "too_many_attempts");

    let mut c = RawConn::connect(addr).await;
    assert_eq!(c.cmd_str(&["AUTH", "bob", "pw-bob"]).await, WRONGPASS);
    assert_eq!(c.cmd_str(&["AUTH", "carol", "x"]).await, WRONGPASS);
    assert_eq!(c.cmd_str(&["AUTH", "guess"]).await, WRONGPASS);
    // The fourth failure is no longer answered at once.
    let t = Instant::now();
    assert_eq!(c.cmd_str(&["AUTH", "alice", "guess"]).await, WRONGPASS);
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(failures(&gw, "user_disabled"), disabled + 1);
    assert_eq!(failures(&gw, "unknown_user"), unknown + 1);
    assert_eq!(failures(&gw, "wrong_password"), wrong + 2);
    // The right password still works before the limit.
    assert_eq!(c.cmd_str(&["AUTH", "alice", "pw-alice"]).await, "+OK\r\n");

    // A pipelined guesser gets ten tries, then the connection closes.
    let mut burst = Vec::new();
    for i in 0..20 {
        burst.extend(resp_command(&[
            b"AUTH".to_vec(),
            format!("g{i}").into_bytes(),
        ]));
    }
    let got = send_until_closed(addr, &burst).await;
    assert_eq!(got.matches("-WRONGPASS").count(), 9, "{got}");
    assert!(
        got.ends_with("-ERR too many failed authentication attempts; closing the connection\r\n"),
        "{got}"
    );
    assert_eq!(failures(&gw, "too_many_attempts"), closed + 1);
    assert_eq!(failures(&gw, "wrong_password"), wrong + 2 + 9);
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli is installed");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_authenticates_with_a_and_with_user_and_pass() {
    let mut probe = std::process::Command::new("redis-cli");
    probe.arg("--version");
    if !support::toolchain_available("redis-cli", &mut probe, "apt-get install redis-tools") {
        return;
    }
    let (_cluster, gw) = auth_gateway().await;
    let port = gw.local_addr().port();
    let run =
        move |args: Vec<&'static str>| tokio::task::spawn_blocking(move || redis_cli(port, &args));
    let anon = run(vec!["LOCK.ACQUIRE", "jobs:cli0", "5000"])
        .await
        .expect("join");
    assert!(anon.contains("NOAUTH"), "{anon}");
    let a = run(vec![
        "-a",
        "s3cret",
        "--no-auth-warning",
        "LOCK.ACQUIRE",
        "x:cli",
        "5000",
    ])
    .await
    .expect("join");
    assert!(a.lines().count() >= 3 && !a.contains("ERR"), "{a}");
    let u = run(vec![
        "--user",
        "alice",
        "--pass",
        "pw-alice",
        "--no-auth-warning",
        "SET",
        "jobs:cli",
        "v",
        "NX",
        "PX",
        "5000",
    ])
    .await
    .expect("join");
    assert_eq!(u.trim(), "OK");
    // -3 makes redis-cli authenticate with HELLO 3 AUTH user pass.
    let h = run(vec![
        "-3",
        "--user",
        "alice",
        "--pass",
        "pw-alice",
        "--no-auth-warning",
        "LOCK.STATUS",
        "jobs:cli",
    ])
    .await
    .expect("join");
    assert!(h.contains('v') && !h.contains("ERR"), "{h}");
    let bad = run(vec![
        "--user",
        "alice",
        "--pass",
        "wrong",
        "--no-auth-warning",
        "GET",
        "jobs:cli",
    ])
    .await
    .expect("join");
    assert!(bad.contains("WRONGPASS"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_crate_authenticates_from_a_url() {
    let (_cluster, gw) = auth_gateway().await;
    let addr = gw.local_addr();
    for url in [
        format!("redis://alice:pw-alice@{addr}"),
        format!("redis://alice:pw-alice@{addr}/?protocol=resp3"),
        format!("redis://:s3cret@{addr}"),
    ] {
        let mut c = redis::Client::open(url.as_str())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let ok: Option<String> = redis::cmd("SET")
            .arg("jobs:url")
            .arg(&url)
            .arg("NX")
            .arg("PX")
            .arg(5000)
            .query_async(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(ok.as_deref(), Some("OK"), "{url}");
        let _: i64 = redis::cmd("LOCK.RELEASE")
            .arg("jobs:url")
            .arg(&url)
            .query_async(&mut c)
            .await
            .expect("release");
    }
    let bad = redis::Client::open(format!("redis://alice:nope@{addr}"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await;
    let Err(e) = bad else {
        panic!("a wrong password must fail the connect");
    };
    assert_eq!(e.kind(), redis::ErrorKind::AuthenticationFailed, "{e}");
}

async fn locks_work_through(cfg: Config) {
    let gw = start_gateway(cfg).await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    let got = c.cmd_str(&["LOCK.ACQUIRE", "m:1", "5000"]).await;
    assert!(got.starts_with("*3\r\n"), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masters_with_requirepass_are_reached_with_their_password() {
    let cluster = Cluster::start_with_args(3, &["--requirepass", "master-pw"]);
    // Negative control: without the password no master votes.
    let gw = Gateway::start(test_config(&cluster)).await.expect("starts");
    assert!(!gw.wait_ready(Duration::from_secs(2)).await);
    drop(gw);
    let mut cfg = test_config(&cluster);
    for m in &mut cfg.masters {
        m.password = Some("master-pw".into());
    }
    locks_work_through(cfg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masters_with_an_acl_user_are_reached_with_username_and_password() {
    let cluster = Cluster::start_with_args(
        3,
        &[
            "--user", "gw", "on", ">gw-pw", "~*", "&*", "+@all", "--user", "default", "off",
        ],
    );
    let mut cfg = test_config(&cluster);
    for m in &mut cfg.masters {
        m.username = Some("gw".into());
        m.password = Some("gw-pw".into());
    }
    locks_work_through(cfg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_users_and_closes_connections_of_removed_ones() {
    let (cluster, gw) = auth_gateway().await;
    let addr = gw.local_addr();
    let mut alice = login(addr, &["AUTH", "alice", "pw-alice"]).await;
    let mut cfg = auth_config(&cluster);
    cfg.users.retain(|u| u.name != "alice");
    cfg.users
        .push(user("carol", "pw-carol", &["read"], &["*"], true));
    let changed = gw.reload(cfg).expect("reload applies");
    assert_eq!(changed, vec!["users"]);
    login(addr, &["AUTH", "carol", "pw-carol"]).await;
    let mut c = RawConn::connect(addr).await;
    assert_eq!(c.cmd_str(&["AUTH", "alice", "pw-alice"]).await, WRONGPASS);
    let got = alice.cmd_str(&["GET", "jobs:1"]).await;
    assert!(got.starts_with("-NOAUTH user alice was removed"), "{got}");
    assert!(
        wait_until(Duration::from_secs(5), || gw
            .metrics()
            .acl_denied
            .with_label_values(&["user_gone"])
            .get()
            == 1)
        .await
    );
}
