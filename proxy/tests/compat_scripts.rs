//! Script transport: EVALSHA/EVAL/SCRIPT with the exact bytes of client
//! libraries (the libraries themselves run in `compat_*.rs`).

mod support;

use redis::Value;
use support::{client, start_gateway, test_config, Cluster};

const REDIS_PY_RELEASE: &str = "\n        local token = redis.call('get', KEYS[1])\n        if not token or token ~= ARGV[1] then\n            return 0\n        end\n        redis.call('del', KEYS[1])\n        return 1\n    ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_scripts_run_with_quorum_semantics_and_unknown_ones_are_refused() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(REDIS_PY_RELEASE)
        .query_async(&mut c)
        .await
        .expect("load");
    assert_eq!(sha, "c3f8721cbb97f72bc19e972846bd7aaf91901658");
    let ok: Value = redis::cmd("SET")
        .arg("k")
        .arg("tok")
        .arg("NX")
        .arg("PX")
        .arg(5000)
        .query_async(&mut c)
        .await
        .expect("set");
    assert_eq!(ok, Value::Okay);
    let other: i64 = redis::cmd("EVALSHA")
        .arg(&sha)
        .arg(1)
        .arg("k")
        .arg("other")
        .query_async(&mut c)
        .await
        .expect("evalsha");
    assert_eq!(other, 0);
    let mine: i64 = redis::cmd("EVALSHA")
        .arg(&sha)
        .arg(1)
        .arg("k")
        .arg("tok")
        .query_async(&mut c)
        .await
        .expect("evalsha");
    assert_eq!(mine, 1);
    // Re-indented text is still recognised by EVAL.
    let reindented = REDIS_PY_RELEASE.replace("        ", "  ");
    let again: i64 = redis::cmd("EVAL")
        .arg(reindented)
        .arg(1)
        .arg("k")
        .arg("tok")
        .query_async(&mut c)
        .await
        .expect("eval");
    assert_eq!(again, 0);
    // SCRIPT EXISTS knows the catalogue.
    let ex: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .arg("ffff")
        .query_async(&mut c)
        .await
        .expect("exists");
    assert_eq!(ex, vec![1, 0]);
    // Unknown SHA: exactly Redis's NOSCRIPT; unknown text: a clear error.
    let out = support::raw_roundtrip(
        gw.local_addr(),
        b"EVALSHA ffffffffffffffffffffffffffffffffffffffff 1 k\r\n",
    )
    .await;
    assert_eq!(out, b"-NOSCRIPT No matching script. Please use EVAL.\r\n");
    let e = redis::cmd("EVAL")
        .arg("return redis.call('flushall')")
        .arg(0)
        .query_async::<Value>(&mut c)
        .await;
    let msg = e.expect_err("unknown script refused").to_string();
    assert!(msg.contains("does not recognise this script"), "{msg}");
}
