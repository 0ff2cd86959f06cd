//! The WAIT bound (`lock.max_wait_ms`) on every command that waits, against
//! a gateway over real masters: each refusal or cap answers as documented
//! and counts one `max_wait` limit hit, and a wait within the bound counts
//! none.

mod support;

use std::time::Duration;

use lockgate::metrics::Limit;
use lockgate::server::Gateway;
use support::{start_gateway, test_config, Cluster, RawConn};

/// Sends `args`, checks the reply, and returns how many `max_wait` hits it
/// counted.
async fn hits(gw: &Gateway, c: &mut RawConn, args: &[&str], want: &str) -> u64 {
    let before = gw.metrics().limit_hits(Limit::MaxWait);
    assert_eq!(c.cmd_str(args).await, want, "{args:?}");
    gw.metrics().limit_hits(Limit::MaxWait) - before
}

#[tokio::test]
async fn every_command_that_waits_counts_a_wait_beyond_the_bound() {
    let cluster = Cluster::start(3);
    let mut cfg = test_config(&cluster);
    cfg.lock.max_wait = Duration::from_millis(300);
    let gw = start_gateway(cfg).await;
    let mut c = RawConn::connect(gw.local_addr()).await;

    for (cmd, args) in [
        (
            "lock.acquire",
            vec!["LOCK.ACQUIRE", "k", "1000", "WAIT", "301"],
        ),
        (
            "rlock.acquire",
            vec!["RLOCK.ACQUIRE", "k", "1000", "OWNER", "o", "WAIT", "301"],
        ),
        (
            "rwlock.read",
            vec!["RWLOCK.READ", "k", "1000", "WAIT", "301"],
        ),
        (
            "rwlock.write",
            vec!["RWLOCK.WRITE", "k", "1000", "WAIT", "301"],
        ),
        (
            "sem.acquire",
            vec!["SEM.ACQUIRE", "k", "2", "1000", "WAIT", "301"],
        ),
    ] {
        let want = format!("-ERR invalid wait in '{cmd}' command: at most 300 ms\r\n");
        assert_eq!(hits(&gw, &mut c, &args, &want).await, 1, "{cmd}");
    }

    // BLPOP caps its timeout at the bound instead of refusing it; a
    // timeout of 0 (forever) is beyond any bound.
    assert_eq!(
        c.cmd_str(&["SET", "lock:held", "id", "NX", "EX", "5"])
            .await,
        "+OK\r\n"
    );
    for timeout in ["5", "0"] {
        let args = ["BLPOP", "lock-signal:held", timeout];
        assert_eq!(hits(&gw, &mut c, &args, "*-1\r\n").await, 1, "{args:?}");
    }

    // Waits within the bound count nothing.
    let within = hits(
        &gw,
        &mut c,
        &["BLPOP", "lock-signal:held", "0.1"],
        "*-1\r\n",
    )
    .await;
    assert_eq!(within, 0);
    let before = gw.metrics().limit_hits(Limit::MaxWait);
    for args in [
        vec!["LOCK.ACQUIRE", "free-lock", "1000", "WAIT", "300"],
        vec![
            "RLOCK.ACQUIRE",
            "free-rlock",
            "1000",
            "OWNER",
            "o",
            "WAIT",
            "300",
        ],
        vec!["RWLOCK.READ", "free-rw", "1000", "WAIT", "300"],
        vec!["RWLOCK.WRITE", "free-rw-w", "1000", "WAIT", "300"],
        vec!["SEM.ACQUIRE", "free-sem", "2", "1000", "WAIT", "300"],
    ] {
        let got = c.cmd_str(&args).await;
        assert!(got.starts_with("*"), "{args:?}: {got}");
    }
    assert_eq!(gw.metrics().limit_hits(Limit::MaxWait), before);
}
