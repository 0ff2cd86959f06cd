//! What one client can store, against a gateway over real masters: a
//! 3 MiB owner is refused on every path that takes an owner (native
//! commands of every kind, `SET NX`, every catalogued lock script) with the
//! error naming `limits.max_owner_bytes`, the masters never see it, and the
//! connection goes on; the per-connection and per-user hold caps refuse
//! the hold past them and serve again after a release or an expiry; every
//! refusal is counted under its limit.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use lockgate::compat::{Action, Catalogue, LockKeys};
use lockgate::config::{Config, UserConfig};
use lockgate::metrics::Limit;
use lockgate::server::Gateway;
use support::{start_gateway, test_config, Cluster, RawConn};

const BIG: usize = 3 * 1024 * 1024;

fn owner_error(cmd: &str) -> String {
    format!("-ERR {cmd}: owner is {BIG} bytes, limit is 256 (limits.max_owner_bytes)\r\n")
}

/// `DBSIZE` and `used_memory` of one master, read directly.
fn footprint(cluster: &Cluster) -> Vec<(i64, i64)> {
    cluster
        .masters
        .iter()
        .map(|m| {
            let client = redis::Client::open(format!("redis://{}", m.address())).expect("client");
            let mut c = client.get_connection().expect("connect");
            let dbsize: i64 = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
            let info: String = redis::cmd("INFO")
                .arg("memory")
                .query(&mut c)
                .expect("info");
            let used = info
                .lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("used_memory");
            (dbsize, used)
        })
        .collect()
}

#[tokio::test]
async fn a_3_mib_owner_is_refused_on_every_path_and_never_reaches_a_master() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    let big = vec![b'o'; BIG];
    let big: &[u8] = &big;
    let before = footprint(&cluster);
    let hits = gw.metrics().limit_hits(Limit::MaxOwnerBytes);

    let native: Vec<(&str, Vec<&[u8]>)> = vec![
        (
            "lock.acquire",
            vec![b"LOCK.ACQUIRE", b"k", b"60000", b"OWNER", big],
        ),
        ("lock.release", vec![b"LOCK.RELEASE", b"k", big]),
        ("lock.extend", vec![b"LOCK.EXTEND", b"k", big, b"60000"]),
        ("set", vec![b"SET", b"k", big, b"NX", b"PX", b"60000"]),
        (
            "rlock.acquire",
            vec![b"RLOCK.ACQUIRE", b"k", b"60000", b"OWNER", big],
        ),
        ("rlock.release", vec![b"RLOCK.RELEASE", b"k", big]),
        ("rlock.extend", vec![b"RLOCK.EXTEND", b"k", big, b"60000"]),
        (
            "rwlock.read",
            vec![b"RWLOCK.READ", b"k", b"60000", b"OWNER", big],
        ),
        (
            "rwlock.write",
            vec![b"RWLOCK.WRITE", b"k", b"60000", b"OWNER", big],
        ),
        ("rwlock.release", vec![b"RWLOCK.RELEASE", b"k", big]),
        ("rwlock.extend", vec![b"RWLOCK.EXTEND", b"k", big, b"60000"]),
        (
            "sem.acquire",
            vec![b"SEM.ACQUIRE", b"k", b"3", b"60000", b"OWNER", big],
        ),
        ("sem.release", vec![b"SEM.RELEASE", b"k", big]),
        ("sem.extend", vec![b"SEM.EXTEND", b"k", big, b"60000"]),
    ];
    let mut refused = 0;
    for (cmd, args) in &native {
        let got = String::from_utf8_lossy(&c.cmd(args).await).into_owned();
        assert_eq!(got, owner_error(cmd), "{cmd}");
        refused += 1;
    }

    // Every catalogued script that runs and takes an owner.
    let mut scripts = 0;
    for e in Catalogue::builtin().entries() {
        let (Some(owner_arg), Some(_)) = (e.owner_arg, e.reply) else {
            continue;
        };
        if e.action == Action::Unsupported {
            continue;
        }
        let n = [
            Some(owner_arg),
            e.ttl_arg,
            e.add_flag.as_ref().map(|f| f.arg),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(owner_arg);
        let mut argv: Vec<&[u8]> = vec![b"10000"; n];
        argv[owner_arg - 1] = big;
        let numkeys: &[u8] = match e.lock_keys {
            LockKeys::First => b"3",
            LockKeys::All => b"1",
        };
        let mut args: Vec<&[u8]> = vec![b"EVALSHA", e.sha1.as_bytes(), numkeys];
        args.extend(std::iter::repeat_n(
            &b"k"[..],
            if numkeys == b"3" { 3 } else { 1 },
        ));
        args.extend(argv);
        let got = String::from_utf8_lossy(&c.cmd(&args).await).into_owned();
        assert_eq!(got, owner_error(&e.name()), "{}", e.name());
        scripts += 1;
    }
    assert!(
        scripts >= 5,
        "only {scripts} catalogued scripts take an owner"
    );
    refused += scripts;

    assert_eq!(
        gw.metrics().limit_hits(Limit::MaxOwnerBytes),
        hits + refused,
        "every refusal counts one max_owner_bytes hit"
    );
    // The masters never stored a byte of it: no key, and memory within
    // what a few hundred KiB of client buffers and allocator noise cost.
    for (m, ((k0, u0), (k1, u1))) in before.iter().zip(footprint(&cluster)).enumerate() {
        assert_eq!(*k0, k1, "master {m} gained keys");
        assert!(
            u1 - u0 < 1024 * 1024,
            "master {m} used_memory grew by {} bytes",
            u1 - u0
        );
    }
    // The connection goes on, and an owner at the limit is served.
    let at_limit = vec![b'o'; 256];
    let got = c
        .cmd(&[b"LOCK.ACQUIRE", b"k", b"60000", b"OWNER", &at_limit])
        .await;
    assert!(
        got.starts_with(b"*3\r\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(
        c.cmd(&[b"LOCK.RELEASE", b"k", &at_limit]).await,
        b":1\r\n".to_vec()
    );
    // A key named twice in one request is answered (it once made the
    // request wait for itself, and the connection with it).
    assert_eq!(c.cmd_str(&["EXISTS", "k", "k"]).await, ":0\r\n");
    let got = c
        .cmd_str(&[
            "EVALSHA",
            "96da70f7716f27d278a5218544df37fd8b0a5e4c",
            "2",
            "dup",
            "dup",
            "o",
            "1000",
        ])
        .await;
    assert!(!got.is_empty(), "{got}");
    // A name past limits.max_key_bytes (1024 by default) is refused too.
    let long = vec![b'n'; 1025];
    assert_eq!(
        String::from_utf8_lossy(&c.cmd(&[b"SEM.ACQUIRE", &long, b"2", b"1000"]).await),
        "-ERR invalid key in 'sem.acquire' command: longer than 1024 bytes\r\n"
    );
}

fn with_caps(cluster: &Cluster, per_conn: usize, per_user: usize) -> Config {
    let mut cfg = test_config(cluster);
    cfg.limits.max_holds_per_connection = per_conn;
    cfg.limits.max_holds_per_user = per_user;
    cfg
}

async fn granted(c: &mut RawConn, args: &[&str]) {
    let got = c.cmd_str(args).await;
    assert!(
        got.starts_with("*3\r\n") || got.starts_with("*4\r\n") || got == "+OK\r\n",
        "{args:?}: {got}"
    );
}

#[tokio::test]
async fn the_connection_cap_refuses_the_next_hold_and_serves_again_after_a_release() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(with_caps(&cluster, 4, 1000)).await;
    let addr = gw.local_addr();
    let mut c = RawConn::connect(addr).await;
    let hits = gw.metrics().limit_hits(Limit::MaxHoldsPerConnection);
    // Four holds of four kinds.
    granted(&mut c, &["LOCK.ACQUIRE", "a", "60000", "OWNER", "o"]).await;
    granted(&mut c, &["SET", "b", "o", "NX", "PX", "60000"]).await;
    granted(&mut c, &["RLOCK.ACQUIRE", "c", "60000", "OWNER", "o"]).await;
    granted(&mut c, &["SEM.ACQUIRE", "d", "2", "60000", "OWNER", "o"]).await;
    let full = "holds 4 locks, limit is 4 (limits.max_holds_per_connection)\r\n";
    for (cmd, args) in [
        ("lock.acquire", vec!["LOCK.ACQUIRE", "e", "60000"]),
        ("set", vec!["SET", "e", "o", "NX", "PX", "60000"]),
        ("rwlock.write", vec!["RWLOCK.WRITE", "e", "60000"]),
        (
            "sem.acquire",
            vec!["SEM.ACQUIRE", "d", "2", "60000", "OWNER", "p"],
        ),
    ] {
        assert_eq!(
            c.cmd_str(&args).await,
            format!("-ERR {cmd}: this connection {full}"),
            "{args:?}"
        );
    }
    // A catalogued script's acquire is a hold too (pottery's is SET NX;
    // node-redlock's acquire script takes every key).
    let got = c
        .cmd_str(&[
            "EVALSHA",
            "96da70f7716f27d278a5218544df37fd8b0a5e4c",
            "1",
            "e",
            "o",
            "60000",
        ])
        .await;
    assert_eq!(
        got,
        format!("-ERR node-redlock acquire script: this connection {full}")
    );
    assert_eq!(
        gw.metrics().limit_hits(Limit::MaxHoldsPerConnection),
        hits + 5
    );
    // Entering the reentrant lock again takes no new place.
    granted(&mut c, &["RLOCK.ACQUIRE", "c", "60000", "OWNER", "o"]).await;
    // Nothing was stored for the refused ones.
    assert_eq!(c.cmd_str(&["LOCK.STATUS", "e"]).await, "*-1\r\n");
    // Another connection has its own cap.
    let mut other = RawConn::connect(addr).await;
    granted(&mut other, &["LOCK.ACQUIRE", "e", "60000", "OWNER", "x"]).await;
    assert_eq!(other.cmd_str(&["LOCK.RELEASE", "e", "x"]).await, ":1\r\n");
    // A release frees a place at once.
    assert_eq!(c.cmd_str(&["LOCK.RELEASE", "a", "o"]).await, ":1\r\n");
    granted(&mut c, &["LOCK.ACQUIRE", "e", "60000", "OWNER", "o"]).await;
    assert!(c
        .cmd_str(&["LOCK.ACQUIRE", "f", "60000"])
        .await
        .starts_with("-ERR lock.acquire: this connection holds 4"));
    // So does the end of a grant's validity, with no release: "b" is
    // released through another connection, "e" is extended short here
    // and left to expire.
    assert_eq!(other.cmd_str(&["LOCK.RELEASE", "b", "o"]).await, ":1\r\n");
    let got = c.cmd_str(&["LOCK.EXTEND", "e", "o", "200"]).await;
    assert!(got.starts_with(':'), "{got}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    granted(&mut c, &["LOCK.ACQUIRE", "f", "60000", "OWNER", "o"]).await;
    // "b"'s grant is still within its validity here: counted until then.
    assert!(c
        .cmd_str(&["LOCK.ACQUIRE", "g", "60000"])
        .await
        .starts_with("-ERR lock.acquire: this connection holds 4"));
    // KEEPALIVE holds count while renewed, and stop with the release.
    assert_eq!(c.cmd_str(&["LOCK.RELEASE", "f", "o"]).await, ":1\r\n");
    granted(
        &mut c,
        &["LOCK.ACQUIRE", "k", "300", "OWNER", "o", "KEEPALIVE"],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(c
        .cmd_str(&["LOCK.ACQUIRE", "g", "60000"])
        .await
        .starts_with("-ERR lock.acquire: this connection holds 4"));
    assert_eq!(c.cmd_str(&["LOCK.RELEASE", "k", "o"]).await, ":1\r\n");
    granted(&mut c, &["LOCK.ACQUIRE", "g", "60000", "OWNER", "o"]).await;
}

#[tokio::test]
async fn pipelined_acquires_cannot_overshoot_the_connection_cap() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(with_caps(&cluster, 3, 1000)).await;
    let mut s = tokio::net::TcpStream::connect(gw.local_addr())
        .await
        .expect("connect");
    let mut burst = String::new();
    for i in 0..10 {
        burst.push_str(&format!("LOCK.ACQUIRE burst{i} 60000\r\n"));
    }
    let replies = pipeline(&mut s, burst.as_bytes(), 10).await;
    let granted = replies.iter().filter(|r| r.starts_with("*3")).count();
    let refused = replies
        .iter()
        .filter(|r| r.contains("(limits.max_holds_per_connection)"))
        .count();
    assert_eq!((granted, refused), (3, 7), "{replies:?}");
}

/// Writes `bytes` at once and reads `n` top-level replies (arrays of
/// three or one-line replies).
async fn pipeline(s: &mut tokio::net::TcpStream, bytes: &[u8], n: usize) -> Vec<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(bytes).await.expect("write");
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        let replies = split_replies(&text);
        if replies.len() >= n {
            return replies;
        }
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .expect("replies in time")
            .expect("read");
        assert!(read > 0, "closed after {text:?}");
        buf.extend_from_slice(&chunk[..read]);
    }
}

/// Splits complete replies: a grant (`*3`, then a bulk owner and two
/// integers, five lines) or a one-line reply.
fn split_replies(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text
        .split_inclusive("\r\n")
        .filter(|l| l.ends_with("\r\n"))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let take = if lines[i] == "*3\r\n" { 5 } else { 1 };
        if i + take > lines.len() {
            break;
        }
        out.push(lines[i..i + take].concat());
        i += take;
    }
    out
}

fn user(name: &str) -> UserConfig {
    UserConfig {
        name: name.into(),
        password_sha256: lockgate::acl::sha256(format!("pw-{name}").as_bytes()),
        commands: ["lock", "read"]
            .iter()
            .map(|f| {
                let family = lockgate::acl::Family::from_config(f).expect("family");
                family.as_str().to_string()
            })
            .collect(),
        keys: vec!["*".into()],
        enabled: true,
    }
}

async fn login(addr: SocketAddr, name: &str) -> RawConn {
    let mut c = RawConn::connect(addr).await;
    let pw = format!("pw-{name}");
    assert_eq!(c.cmd_str(&["AUTH", name, &pw]).await, "+OK\r\n");
    c
}

async fn user_gateway(cluster: &Cluster) -> Gateway {
    let mut cfg = with_caps(cluster, 100, 3);
    cfg.requirepass = Some("s3cret".into());
    cfg.users = vec![user("alice"), user("carol")];
    start_gateway(cfg).await
}

#[tokio::test]
async fn the_user_cap_spans_the_users_connections_and_serves_again_after_a_release() {
    let cluster = Cluster::start(3);
    let gw = user_gateway(&cluster).await;
    let addr = gw.local_addr();
    let hits = gw.metrics().limit_hits(Limit::MaxHoldsPerUser);
    let mut a1 = login(addr, "alice").await;
    let mut a2 = login(addr, "alice").await;
    granted(&mut a1, &["LOCK.ACQUIRE", "u1", "60000", "OWNER", "o1"]).await;
    granted(&mut a1, &["RWLOCK.READ", "u2", "60000", "OWNER", "o1"]).await;
    granted(&mut a2, &["LOCK.ACQUIRE", "u3", "60000", "OWNER", "o2"]).await;
    let want =
        "-ERR lock.acquire: user 'alice' holds 3 locks, limit is 3 (limits.max_holds_per_user)\r\n";
    assert_eq!(a2.cmd_str(&["LOCK.ACQUIRE", "u4", "60000"]).await, want);
    assert_eq!(a1.cmd_str(&["LOCK.ACQUIRE", "u4", "60000"]).await, want);
    // A new connection of the same user is no way around it.
    let mut a3 = login(addr, "alice").await;
    assert_eq!(a3.cmd_str(&["LOCK.ACQUIRE", "u4", "60000"]).await, want);
    assert_eq!(gw.metrics().limit_hits(Limit::MaxHoldsPerUser), hits + 3);
    // Another user has its own.
    let mut carol = login(addr, "carol").await;
    granted(&mut carol, &["LOCK.ACQUIRE", "u4", "60000", "OWNER", "c"]).await;
    assert_eq!(carol.cmd_str(&["LOCK.RELEASE", "u4", "c"]).await, ":1\r\n");
    // A release by one of alice's connections frees a place for all.
    assert_eq!(a1.cmd_str(&["RWLOCK.RELEASE", "u2", "o1"]).await, ":1\r\n");
    granted(&mut a3, &["LOCK.ACQUIRE", "u4", "60000", "OWNER", "o3"]).await;
    assert_eq!(a2.cmd_str(&["LOCK.ACQUIRE", "u5", "60000"]).await, want);
}
