//! Hostile clients against a gateway on real masters.
//!
//! Every case asserts the specific error or the disconnect it gets, then
//! that a client connected before the attack is unaffected (same
//! connection: LOCK.ACQUIRE and LOCK.RELEASE still work) and that a new
//! client is served. Limits are configured small where the case needs one
//! to trigger quickly.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use lockgate::config::Config;
use lockgate::metrics::Limit;
use lockgate::server::Gateway;
use support::{start_gateway, test_config, wait_until, Cluster, RawConn};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A gateway over three real masters with `tune` applied to its config,
/// and a bystander connected before any attack.
async fn setup(tune: impl FnOnce(&mut Config)) -> (Cluster, Gateway, RawConn) {
    let cluster = Cluster::start(3);
    let mut cfg = test_config(&cluster);
    tune(&mut cfg);
    let gw = start_gateway(cfg).await;
    let mut bystander = RawConn::connect(gw.local_addr()).await;
    assert_eq!(bystander.cmd_str(&["PING"]).await, "+PONG\r\n");
    (cluster, gw, bystander)
}

/// The bystander keeps its connection and can still lock; a new client is
/// served.
async fn assert_unaffected(addr: SocketAddr, bystander: &mut RawConn) {
    let got = bystander
        .cmd_str(&["LOCK.ACQUIRE", "bystander", "5000", "OWNER", "b"])
        .await;
    assert!(got.starts_with("*3\r\n$1\r\nb\r\n:"), "bystander: {got}");
    assert_eq!(
        bystander.cmd_str(&["LOCK.RELEASE", "bystander", "b"]).await,
        ":1\r\n"
    );
    let mut fresh = RawConn::connect(addr).await;
    assert_eq!(fresh.cmd_str(&["PING"]).await, "+PONG\r\n");
    let got = fresh
        .cmd_str(&["LOCK.ACQUIRE", "fresh", "5000", "OWNER", "f"])
        .await;
    assert!(got.starts_with("*3\r\n$1\r\nf\r\n:"), "new client: {got}");
}

/// Sends `bytes` and reads until the gateway closes the connection (a
/// reset counts as closed); fails if it stays open for 10 s.
async fn closes_after(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    read_until_closed(&mut s).await
}

async fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(give_up, s.read(&mut buf)).await {
            Err(_) => panic!(
                "connection still open; read {:?}",
                String::from_utf8_lossy(&out[..out.len().min(200)])
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[tokio::test]
async fn negative_lengths_are_protocol_errors_or_ignored_like_redis() {
    let (_c, gw, mut by) = setup(|_| {}).await;
    let addr = gw.local_addr();
    let out = closes_after(addr, b"*2\r\n$4\r\nECHO\r\n$-5\r\n").await;
    assert_eq!(text(&out), "-ERR Protocol error: invalid bulk length\r\n");
    let out = closes_after(addr, b"*1\r\n$-1\r\n").await;
    assert_eq!(text(&out), "-ERR Protocol error: invalid bulk length\r\n");
    // A count below i64::MIN does not parse at all.
    let out = closes_after(addr, b"*-9223372036854775809\r\n").await;
    assert_eq!(
        text(&out),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    // A negative multibulk count is an empty request, as in Redis; the
    // connection goes on.
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(b"*-5\r\n*-1\r\n*-9223372036854775807\r\nPING\r\n")
        .await
        .expect("write");
    let mut line = String::new();
    BufReader::new(&mut c)
        .read_line(&mut line)
        .await
        .expect("read");
    assert_eq!(line, "+PONG\r\n");
    assert_unaffected(addr, &mut by).await;
}

#[tokio::test]
async fn huge_lengths_are_refused_at_the_header_without_buffering() {
    let (_c, gw, mut by) = setup(|_| {}).await;
    let addr = gw.local_addr();
    let before = gw.metrics().limit_hits(Limit::MaxBulkBytes);
    let out = closes_after(addr, b"*2\r\n$4\r\nECHO\r\n$1073741824\r\n").await;
    assert_eq!(text(&out), "-ERR Protocol error: invalid bulk length\r\n");
    assert_eq!(gw.metrics().limit_hits(Limit::MaxBulkBytes), before + 1);
    let out = closes_after(addr, b"*2\r\n$4\r\nECHO\r\n$99999999999999999999999\r\n").await;
    assert_eq!(text(&out), "-ERR Protocol error: invalid bulk length\r\n");
    let out = closes_after(addr, b"*9223372036854775807\r\n").await;
    assert_eq!(
        text(&out),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert!(gw.metrics().limit_hits(Limit::MaxArgs) >= 1);
    let out = closes_after(addr, b"*99999999999999999999999\r\n").await;
    assert_eq!(
        text(&out),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert_unaffected(addr, &mut by).await;
}

#[tokio::test]
async fn cr_and_lf_inside_bulk_strings_are_data_and_a_wrong_length_is_an_error() {
    let (_c, gw, mut by) = setup(|_| {}).await;
    let addr = gw.local_addr();
    let mut c = RawConn::connect(addr).await;
    // Binary-safe: CR, LF and CRLF inside a bulk string are its bytes.
    assert_eq!(
        c.cmd(&[b"ECHO", b"a\r\nb\rc\n"]).await,
        b"$7\r\na\r\nb\rc\n\r\n"
    );
    let key: &[u8] = b"k\r\n*1\r\n$4\r\nPING\r\n";
    let got = text(
        &c.cmd(&[b"LOCK.ACQUIRE", key, b"5000", b"OWNER", b"o\r\n"])
            .await,
    );
    assert!(got.starts_with("*3\r\n$3\r\no\r\n\r\n:"), "{got}");
    assert_eq!(
        text(&c.cmd(&[b"LOCK.STATUS", key]).await)[..13].to_string(),
        "*3\r\n$3\r\no\r\n\r\n"
    );
    assert_eq!(c.cmd(&[b"LOCK.RELEASE", key, b"o\r\n"]).await, b":1\r\n");
    // A declared length shorter than the data: the CRLF is not where the
    // length says.
    let out = closes_after(addr, b"*2\r\n$4\r\nECHO\r\n$1\r\nab\r\n").await;
    assert_eq!(
        text(&out),
        "-ERR Protocol error: expected CRLF after bulk data\r\n"
    );
    assert_unaffected(addr, &mut by).await;
}

#[tokio::test]
async fn binary_keys_and_owners_lock_and_release_exactly() {
    let (_c, gw, mut by) = setup(|_| {}).await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    let key: &[u8] = &[0, 255, 1, 254, b'\r', 0, 0x80];
    let owner: &[u8] = &[0xde, 0xad, 0, 0xbe, 0xef];
    let got = c
        .cmd(&[b"LOCK.ACQUIRE", key, b"5000", b"OWNER", owner])
        .await;
    let mut want = b"*3\r\n$5\r\n".to_vec();
    want.extend_from_slice(owner);
    want.extend_from_slice(b"\r\n:");
    assert!(got.starts_with(&want), "{got:?}");
    // A different binary key is a different lock.
    let other: &[u8] = &[0, 255, 1, 254, b'\r', 0, 0x81];
    assert_eq!(c.cmd(&[b"LOCK.STATUS", other]).await, b"*-1\r\n");
    let mut v = b"$5\r\n".to_vec();
    v.extend_from_slice(owner);
    v.extend_from_slice(b"\r\n");
    assert_eq!(c.cmd(&[b"GET", key]).await, v);
    assert_eq!(c.cmd(&[b"LOCK.RELEASE", key, owner]).await, b":1\r\n");
    assert_unaffected(gw.local_addr(), &mut by).await;
}

#[tokio::test]
async fn invalid_utf8_gets_errors_and_the_connection_stays() {
    let (_c, gw, mut by) = setup(|_| {}).await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    let got = text(&c.cmd(&[b"\xff\xfeLOCK", b"\xc3\x28"]).await);
    assert_eq!(
        got,
        "-ERR unknown command '\u{fffd}\u{fffd}LOCK', with args beginning with: '\u{fffd}(' \r\n"
    );
    // Invalid UTF-8 where a number belongs.
    assert_eq!(
        text(&c.cmd(&[b"LOCK.ACQUIRE", b"k", b"\xff10"]).await),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        text(&c.cmd(&[b"BLPOP", b"lock-signal:x", b"\xff"]).await),
        "-ERR timeout is not a float or out of range\r\n"
    );
    // As key and owner it is just bytes.
    let got = text(
        &c.cmd(&[b"SET", b"\xc3\x28", b"\xe2\x82", b"NX", b"PX", b"5000"])
            .await,
    );
    assert_eq!(got, "+OK\r\n");
    assert_eq!(c.cmd(&[b"GET", b"\xc3\x28"]).await, b"$2\r\n\xe2\x82\r\n");
    assert_eq!(c.cmd_str(&["PING"]).await, "+PONG\r\n");
    assert_unaffected(gw.local_addr(), &mut by).await;
}

#[tokio::test]
async fn overflowing_ttls_and_waits_are_errors_never_wraps() {
    let (_c, gw, mut by) = setup(|_| {}).await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    let max = "9223372036854775807";
    let bound = "must be between 1 and 60000 ms";
    let before = gw.metrics().limit_hits(Limit::Ttl);
    for (cmd, args) in [
        ("set", vec!["SET", "k", "v", "NX", "PX", max]),
        ("set", vec!["SET", "k", "v", "NX", "EX", max]),
        // EX * 1000 overflows i64 here.
        ("set", vec!["SET", "k", "v", "NX", "EX", "9223372036854776"]),
        ("lock.acquire", vec!["LOCK.ACQUIRE", "k", max]),
        ("lock.extend", vec!["LOCK.EXTEND", "k", "o", max]),
    ] {
        assert_eq!(
            c.cmd_str(&args).await,
            format!("-ERR invalid ttl in '{cmd}' command: {bound}\r\n"),
            "{args:?}"
        );
    }
    assert_eq!(gw.metrics().limit_hits(Limit::Ttl), before + 5);
    assert_eq!(
        c.cmd_str(&["LOCK.ACQUIRE", "k", "100", "WAIT", max]).await,
        "-ERR invalid wait in 'lock.acquire' command: at most 60000 ms\r\n"
    );
    assert!(gw.metrics().limit_hits(Limit::MaxWait) >= 1);
    for args in [
        vec!["SET", "k", "v", "NX", "PX", "9223372036854775808"],
        vec!["LOCK.ACQUIRE", "k", "9223372036854775808"],
        vec!["LOCK.ACQUIRE", "k", "100", "WAIT", "99999999999999999999"],
    ] {
        assert_eq!(
            c.cmd_str(&args).await,
            "-ERR value is not an integer or out of range\r\n",
            "{args:?}"
        );
    }
    // A lock script's TTL argument is bounded the same way.
    // (redsync's touch script, by SHA, as compat_wire.rs sends it)
    let redsync_touch = "d75bb8b5bd13532ddedd17762e772346e39b321e";
    let got = c
        .cmd_str(&["EVALSHA", redsync_touch, "1", "k", "o", max])
        .await;
    assert!(
        got.starts_with("-ERR invalid ttl in '") && got.contains(bound),
        "{got}"
    );
    // Nothing was locked by any of it.
    assert_eq!(c.cmd_str(&["LOCK.STATUS", "k"]).await, "*-1\r\n");
    assert_unaffected(gw.local_addr(), &mut by).await;
}

#[tokio::test]
async fn zero_and_negative_ttls_are_refused_naming_the_command() {
    let (_c, gw, mut by) = setup(|_| {}).await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    for ttl in ["0", "-1", "-9223372036854775808"] {
        for px in ["PX", "EX"] {
            assert_eq!(
                c.cmd_str(&["SET", "k", "v", "NX", px, ttl]).await,
                "-ERR invalid expire time in 'set' command\r\n"
            );
        }
        assert_eq!(
            c.cmd_str(&["LOCK.ACQUIRE", "k", ttl]).await,
            "-ERR invalid ttl in 'lock.acquire' command: must be a positive number of milliseconds\r\n"
        );
        assert_eq!(
            c.cmd_str(&["LOCK.EXTEND", "k", "o", ttl]).await,
            "-ERR invalid ttl in 'lock.extend' command: must be a positive number of milliseconds\r\n"
        );
    }
    assert_eq!(
        c.cmd_str(&["LOCK.ACQUIRE", "k", "100", "WAIT", "-1"]).await,
        "-ERR invalid wait in 'lock.acquire' command: must not be negative\r\n"
    );
    assert_eq!(
        c.cmd_str(&["BLPOP", "lock-signal:k", "-1"]).await,
        "-ERR timeout is negative\r\n"
    );
    assert_eq!(c.cmd_str(&["LOCK.STATUS", "k"]).await, "*-1\r\n");
    assert_unaffected(gw.local_addr(), &mut by).await;
}

#[tokio::test]
async fn a_one_mib_key_is_refused_by_every_command_that_takes_a_key() {
    let (_c, gw, mut by) = setup(|_| {}).await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    let key = vec![b'k'; 1024 * 1024];
    let before = gw.metrics().limit_hits(Limit::MaxKeyBytes);
    let cases: Vec<(&str, Vec<&[u8]>)> = vec![
        ("lock.acquire", vec![b"LOCK.ACQUIRE", &key, b"5000"]),
        ("lock.release", vec![b"LOCK.RELEASE", &key, b"o"]),
        ("lock.extend", vec![b"LOCK.EXTEND", &key, b"o", b"5000"]),
        ("lock.status", vec![b"LOCK.STATUS", &key]),
        ("set", vec![b"SET", &key, b"v", b"NX", b"PX", b"5000"]),
        ("get", vec![b"GET", &key]),
        ("exists", vec![b"EXISTS", b"small", &key]),
        ("pttl", vec![b"PTTL", &key]),
        ("ttl", vec![b"TTL", &key]),
    ];
    let n = u64::try_from(cases.len()).expect("small");
    for (cmd, args) in cases {
        assert_eq!(
            text(&c.cmd(&args).await),
            format!("-ERR invalid key in '{cmd}' command: longer than 1024 bytes\r\n")
        );
    }
    assert_eq!(gw.metrics().limit_hits(Limit::MaxKeyBytes), before + n);
    assert_unaffected(gw.local_addr(), &mut by).await;
}

#[tokio::test]
async fn nesting_ten_thousand_deep_is_a_protocol_error() {
    let (_c, gw, mut by) = setup(|_| {}).await;
    let mut deep = b"*1\r\n".repeat(10_000);
    deep.extend_from_slice(b"$4\r\nPING\r\n");
    let out = closes_after(gw.local_addr(), &deep).await;
    assert_eq!(text(&out), "-ERR Protocol error: expected '$', got '*'\r\n");
    assert_unaffected(gw.local_addr(), &mut by).await;
}

/// One attacking connection: what it saw first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Served,
    Rejected,
    /// The connection failed before a reply could be read.
    Failed,
}

async fn attack_once(addr: SocketAddr) -> (Seen, Option<TcpStream>) {
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await
    else {
        return (Seen::Failed, None);
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return (Seen::Failed, None);
    }
    let mut line = String::new();
    let mut r = BufReader::new(&mut s);
    let read = tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut line)).await;
    match (read, line.as_str()) {
        (Ok(Ok(_)), "+PONG\r\n") => (Seen::Served, Some(s)),
        (Ok(Ok(_)), "-ERR max number of clients reached\r\n") => (Seen::Rejected, None),
        (Ok(Ok(0)), _) | (Ok(Err(_)), _) => (Seen::Failed, None),
        other => panic!("unexpected: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_connection_attempts_hit_max_clients_and_recover() {
    const MAX: usize = 500;
    const WAVE: usize = 1_000;
    const ATTEMPTS: usize = 20_000;
    let (_c, gw, mut by) = setup(|c| c.limits.max_clients = MAX).await;
    let addr = gw.local_addr();
    let mut totals = [0usize; 3];
    // At most WAVE attacking sockets are open at once: the test and the
    // in-process gateway share one open-files limit.
    for _ in 0..ATTEMPTS / WAVE {
        let wave = futures::future::join_all((0..WAVE).map(|_| attack_once(addr))).await;
        let served = wave.iter().filter(|(s, _)| *s == Seen::Served).count();
        // The bystander holds one slot.
        assert!(served < MAX, "{served} served in one wave");
        for (s, _) in &wave {
            totals[*s as usize] += 1;
        }
        drop(wave);
    }
    eprintln!(
        "{ATTEMPTS} attempts: {} served, {} rejected with the maxclients error, {} failed",
        totals[0], totals[1], totals[2]
    );
    assert!(totals[1] >= ATTEMPTS / 2, "{totals:?}");
    let rejected = gw.metrics().limit_hits(Limit::MaxClients);
    assert!(rejected >= u64::try_from(totals[1]).expect("fits"));
    // Once the attackers are gone, the slots come back.
    let m = gw.metrics().client_connections.clone();
    assert!(
        wait_until(Duration::from_secs(30), || m.get() <= 1).await,
        "{} connections left",
        m.get()
    );
    let info = by.cmd_str(&["INFO", "clients"]).await;
    assert!(info.contains(&format!("maxclients:{MAX}\r\n")), "{info}");
    assert_unaffected(addr, &mut by).await;
}

#[tokio::test]
async fn a_half_frame_that_stalls_gets_an_error_and_a_close_at_the_deadline() {
    let (_c, gw, mut by) = setup(|c| {
        c.limits.partial_frame_timeout = Some(Duration::from_millis(300));
    })
    .await;
    let out = closes_after(gw.local_addr(), b"*2\r\n$4\r\nECHO\r\n$5\r\nab").await;
    assert_eq!(
        text(&out),
        "-ERR Protocol error: request not completed within 300 ms \
         (limits.partial_frame_timeout_ms)\r\n"
    );
    assert_eq!(gw.metrics().limit_hits(Limit::PartialFrameTimeout), 1);
    // The bystander sat idle far longer than the deadline: having no
    // request under way, it is not affected by it.
    assert_unaffected(gw.local_addr(), &mut by).await;
}

#[tokio::test]
async fn a_request_dripped_byte_by_byte_is_cut_off_from_its_first_byte() {
    let (_c, gw, mut by) = setup(|c| {
        c.limits.partial_frame_timeout = Some(Duration::from_millis(500));
    })
    .await;
    let mut s = TcpStream::connect(gw.local_addr()).await.expect("connect");
    let req = multibulk(&[b"ECHO", &[b'x'; 1000]]);
    // One byte per 20 ms keeps bytes arriving well inside the deadline,
    // but the whole request would take 20 s: slowloris.
    let mut sent = 0;
    for b in &req {
        if s.write_all(&[*b]).await.is_err() {
            break;
        }
        sent += 1;
        if gw.metrics().limit_hits(Limit::PartialFrameTimeout) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(sent < req.len(), "the whole request got through");
    let out = read_until_closed(&mut s).await;
    assert_eq!(
        text(&out),
        "-ERR Protocol error: request not completed within 500 ms \
         (limits.partial_frame_timeout_ms)\r\n"
    );
    assert_unaffected(gw.local_addr(), &mut by).await;
}

/// Pipelines `count` ECHOs of `size` bytes and never reads a reply; stops
/// early when a write fails (the gateway dropped the connection).
async fn never_read(addr: SocketAddr, count: usize, size: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let payload = vec![b'x'; size];
    let req = multibulk(&[b"ECHO", &payload]);
    let mut sent = 0;
    for _ in 0..count {
        if s.write_all(&req).await.is_err() {
            break;
        }
        sent += 1;
    }
    eprintln!("never-reading client: {sent} of {count} ECHOs of {size} bytes written");
    s
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_at_the_output_buffer_limit() {
    let (_c, gw, mut by) = setup(|c| {
        c.limits.max_output_buffer_bytes = 1024 * 1024;
        c.limits.write_timeout = None;
    })
    .await;
    let addr = gw.local_addr();
    // 128 MiB of replies asked for; far more than any socket buffers hold.
    let attacker = tokio::spawn(never_read(addr, 2_000, 64 * 1024));
    let m = gw.metrics().clone();
    assert!(
        wait_until(Duration::from_secs(30), || m
            .limit_hits(Limit::MaxOutputBuffer)
            >= 1)
        .await
    );
    // Other clients are served while and after it happens.
    assert_unaffected(addr, &mut by).await;
    let mut s = tokio::time::timeout(Duration::from_secs(30), attacker)
        .await
        .expect("the attacker's writes end once it is disconnected")
        .expect("join");
    // What it finally reads is some replies, then the close.
    let got = read_until_closed(&mut s).await;
    eprintln!(
        "after the cut it read {} bytes of replies, then the close",
        got.len()
    );
    assert_eq!(m.limit_hits(Limit::MaxOutputBuffer), 1);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_at_the_write_timeout() {
    let (_c, gw, mut by) = setup(|c| {
        c.limits.max_output_buffer_bytes = 512 * 1024 * 1024;
        c.limits.write_timeout = Some(Duration::from_millis(300));
    })
    .await;
    let addr = gw.local_addr();
    // 32 MiB of replies: more than the socket buffers, less than the cap.
    let s = never_read(addr, 2_000, 16 * 1024).await;
    let m = gw.metrics().clone();
    assert!(
        wait_until(Duration::from_secs(30), || m
            .limit_hits(Limit::WriteTimeout)
            >= 1)
        .await
    );
    assert_eq!(m.limit_hits(Limit::MaxOutputBuffer), 0);
    let mut s = s;
    let got = read_until_closed(&mut s).await;
    eprintln!(
        "after the cut it read {} bytes of replies, then the close",
        got.len()
    );
    assert_unaffected(addr, &mut by).await;
}

#[tokio::test]
async fn an_idle_client_is_closed_but_a_waiting_one_is_not() {
    let (_c, gw, by) = setup(|c| {
        c.limits.idle_timeout = Some(Duration::from_millis(300));
    })
    .await;
    let addr = gw.local_addr();
    // Idle: closed silently, as Redis does.
    let out = closes_after(addr, b"").await;
    assert!(out.is_empty(), "{}", text(&out));
    assert!(gw.metrics().limit_hits(Limit::IdleTimeout) >= 1);
    // Blocked in a WAIT three times as long as the idle timeout: not idle.
    // (The holder itself goes idle meanwhile and is closed; its lock stays
    // until its TTL.)
    let mut holder = RawConn::connect(addr).await;
    let got = holder
        .cmd_str(&["LOCK.ACQUIRE", "w", "5000", "OWNER", "h"])
        .await;
    assert!(got.starts_with("*3"), "{got}");
    let mut waiter = RawConn::connect(addr).await;
    assert_eq!(
        waiter
            .cmd_str(&["LOCK.ACQUIRE", "w", "5000", "WAIT", "1000"])
            .await,
        "*-1\r\n"
    );
    assert_eq!(waiter.cmd_str(&["PING"]).await, "+PONG\r\n");
    // The bystander went idle during all this and was closed: that is this
    // limit working. The waiter stands in for it, and a new client is served.
    drop(by);
    let got = waiter
        .cmd_str(&["LOCK.ACQUIRE", "other", "5000", "OWNER", "w"])
        .await;
    assert!(got.starts_with("*3"), "{got}");
    let mut fresh = RawConn::connect(addr).await;
    assert_eq!(fresh.cmd_str(&["PING"]).await, "+PONG\r\n");
}
