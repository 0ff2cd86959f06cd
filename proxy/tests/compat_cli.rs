//! `redis-cli`, the tool operators reach for first, against a gateway over
//! three masters: the drop-in commands and the native LOCK.* commands, over
//! RESP2 and RESP3 (`-3`).

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use support::{start_gateway, test_config, toolchain_available, Cluster};

/// Runs one redis-cli command; its stdout (not a terminal, so raw replies,
/// one line per element, nil as an empty line).
async fn cli(addr: SocketAddr, resp3: bool, args: &[&str]) -> String {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &addr.port().to_string()]);
    if resp3 {
        cmd.arg("-3");
    }
    cmd.args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run redis-cli");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

async fn suite(resp3: bool) -> usize {
    let mut cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let addr = gw.local_addr();
    let mut n = 0;
    let mut ok = |name: &str, cond: bool, got: &str| {
        assert!(cond, "check failed: {name}: got {got:?}");
        eprintln!("ok   {name}");
        n += 1;
    };
    let got = cli(addr, resp3, &["PING"]).await;
    ok("PING", got == "PONG", &got);
    let got = cli(addr, resp3, &["SET", "cli:k", "me", "NX", "PX", "5000"]).await;
    ok("SET NX PX acquires", got == "OK", &got);
    let got = cli(addr, resp3, &["set", "cli:k", "you", "px", "5000", "nx"]).await;
    ok("contention: nil", got.is_empty(), &got);
    let got = cli(addr, resp3, &["GET", "cli:k"]).await;
    ok("GET", got == "me", &got);
    let got = cli(addr, resp3, &["LOCK.STATUS", "cli:k"]).await;
    let lines: Vec<&str> = got.lines().collect();
    ok(
        "LOCK.STATUS shows owner, token and pttl",
        lines.len() == 3 && lines[0] == "me" && lines[1].parse::<u64>().is_ok(),
        &got,
    );
    let got = cli(addr, resp3, &["LOCK.EXTEND", "cli:k", "me", "9000"]).await;
    ok(
        "LOCK.EXTEND",
        got.parse::<u64>().is_ok_and(|v| v > 8000),
        &got,
    );
    let got = cli(addr, resp3, &["LOCK.RELEASE", "cli:k", "you"]).await;
    ok("release by non-owner refused", got == "0", &got);
    let got = cli(addr, resp3, &["LOCK.RELEASE", "cli:k", "me"]).await;
    ok("release", got == "1", &got);

    let got = cli(addr, resp3, &["LOCK.ACQUIRE", "cli:exp", "300"]).await;
    ok(
        "LOCK.ACQUIRE with 300 ms ttl",
        got.lines().count() == 3,
        &got,
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    let got = cli(addr, resp3, &["PTTL", "cli:exp"]).await;
    ok("expired: PTTL -2", got == "-2", &got);

    let got = cli(
        addr,
        resp3,
        &["LOCK.ACQUIRE", "cli:wait", "5000", "OWNER", "holder"],
    )
    .await;
    ok("holder acquires", got.starts_with("holder"), &got);
    let waiter = tokio::spawn(cli(
        addr,
        resp3,
        &[
            "LOCK.ACQUIRE",
            "cli:wait",
            "5000",
            "OWNER",
            "waiter",
            "WAIT",
            "5000",
        ],
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = cli(addr, resp3, &["LOCK.RELEASE", "cli:wait", "holder"]).await;
    ok("holder releases", got == "1", &got);
    let got = waiter.await.expect("join");
    ok(
        "blocking waiter (WAIT) gets the lock",
        got.starts_with("waiter"),
        &got,
    );

    let got = cli(addr, resp3, &["SET", "cli:kill", "me", "NX", "EX", "5"]).await;
    ok("acquire before a master dies", got == "OK", &got);
    cluster.masters[0].kill();
    let got = cli(addr, resp3, &["LOCK.EXTEND", "cli:kill", "me", "5000"]).await;
    ok(
        "extend with one master killed",
        got.parse::<u64>().is_ok(),
        &got,
    );
    let got = cli(addr, resp3, &["SET", "cli:kill", "you", "NX", "EX", "5"]).await;
    ok("contention with one master killed", got.is_empty(), &got);
    let got = cli(addr, resp3, &["LOCK.RELEASE", "cli:kill", "me"]).await;
    ok("release with one master killed", got == "1", &got);
    let got = cli(addr, resp3, &["SET", "cli:kill", "you", "NX", "EX", "5"]).await;
    ok("acquire again with one master killed", got == "OK", &got);
    let got = cli(addr, resp3, &["FLUSHALL"]).await;
    ok(
        "a non-lock command gets a clear error",
        got.contains("not supported by lockgate"),
        &got,
    );
    n
}

fn have_cli() -> bool {
    toolchain_available(
        "redis-cli",
        Command::new("redis-cli").arg("--version"),
        "apt-get install redis-tools",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_over_resp2() {
    if have_cli() {
        let n = suite(false).await;
        eprintln!("redis-cli RESP2: {n} checks passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_over_resp3() {
    if have_cli() {
        let n = suite(true).await;
        eprintln!("redis-cli RESP3: {n} checks passed");
    }
}
