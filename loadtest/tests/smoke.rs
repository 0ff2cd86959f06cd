//! CI smoke run: the real `lockgate-loadtest` binary drives a gateway over
//! three real masters for a few seconds, in native and drop-in mode, with
//! the safety checker on; any duplicate or backwards token fails the run.

mod support;

use std::time::Duration;

use lockgate::config::{Bootstrap, Config, MasterConfig};
use lockgate::dev::LocalRedis;
use lockgate::server::Gateway;
use support::drive;

async fn gateway(masters: &[LocalRedis]) -> Gateway {
    let mut c = Config {
        listen: "127.0.0.1:0".into(),
        admin_listen: String::new(),
        masters: masters
            .iter()
            .map(|m| MasterConfig::plain(m.address()))
            .collect(),
        ..Config::default()
    };
    c.lock.bootstrap = Bootstrap::Immediate;
    // A loaded 2-core CI machine runs other tests beside this one.
    c.master.timeout = Duration::from_millis(200);
    let gw = Gateway::start(c).await.expect("gateway starts");
    assert!(
        gw.wait_ready(Duration::from_secs(10)).await,
        "gateway ready"
    );
    gw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_run_against_three_masters_has_no_token_violations() {
    let masters: Vec<LocalRedis> = (0..3)
        .map(|_| LocalRedis::start().expect("redis-server must be installed"))
        .collect();
    let gw = gateway(&masters).await;
    let addr = gw.local_addr().to_string();
    let runs: [&[&str]; 3] = [
        &[
            "--scenario",
            "hot",
            "--workers",
            "16",
            "--duration-ms",
            "2000",
        ],
        &[
            "--scenario",
            "rmw",
            "--workers",
            "16",
            "--keys",
            "20",
            "--duration-ms",
            "2000",
        ],
        &[
            "--mode",
            "dropin",
            "--scenario",
            "zipf",
            "--workers",
            "8",
            "--duration-ms",
            "1500",
        ],
    ];
    // The lock kinds the checker judges beyond tokens: nested
    // reentrant holds, and keepalive locks held past their TTL.
    for (args, line) in [
        (
            &[
                "--mode",
                "reentrant",
                "--scenario",
                "zipf",
                "--keys",
                "5",
                "--workers",
                "8",
                "--duration-ms",
                "1500",
            ][..],
            "reentrant: ",
        ),
        (
            &[
                "--mode",
                "keepalive",
                "--scenario",
                "zipf",
                "--keys",
                "4",
                "--workers",
                "4",
                "--ttl-ms",
                "300",
                "--hold-ms",
                "500",
                "--duration-ms",
                "1500",
            ][..],
            "keepalive: RESP3",
        ),
    ] {
        let addr = addr.clone();
        let text = tokio::task::spawn_blocking(move || drive(&addr, args))
            .await
            .expect("join");
        let safety = text
            .lines()
            .find(|l| l.starts_with("safety: "))
            .expect("a safety line");
        assert!(
            safety.contains(" 0 duplicate tokens, 0 backwards tokens, 0 overlapping"),
            "{safety}"
        );
        let kind = text
            .lines()
            .find(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("no {line:?} line in {text}"));
        if line == "reentrant: " {
            assert!(
                kind.contains("0 negative counts, 0 holds mismatches, 0 token changes, 0 freed before the outermost release, 0 held by another owner"),
                "{kind}"
            );
            assert!(!kind.starts_with("reentrant: 0 holds"), "{kind}");
        }
    }
    for args in runs {
        let addr = addr.clone();
        let text = tokio::task::spawn_blocking(move || drive(&addr, args))
            .await
            .expect("join");
        let safety = text
            .lines()
            .find(|l| l.starts_with("safety: "))
            .expect("a safety line");
        assert!(
            safety.contains(" 0 duplicate tokens, 0 backwards tokens"),
            "{safety}"
        );
        let grants: u64 = safety
            .trim_start_matches("safety: ")
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("grant count");
        assert!(grants > 20, "too few grants checked: {safety}");
        if args.contains(&"rmw") {
            assert!(text.contains(", 0 lost updates"), "{text}");
        }
    }
}
