//! node-redlock v5 with ioredis, from npm, unchanged, against a gateway over
//! three masters (`compat/node/redlock_v5.js`). `.ci/run` runs `npm ci` in
//! `compat/node` first.

mod support;

use std::process::Command;

use support::{run_client_suite, toolchain_available};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_redlock_v5_with_ioredis() {
    let dir = format!("{}/../compat/node", env!("CARGO_MANIFEST_DIR"));
    let installed = toolchain_available(
        "node-redlock and ioredis",
        Command::new("node")
            .current_dir(&dir)
            .args(["-e", "require('redlock'); require('ioredis')"]),
        "npm ci --prefix compat/node",
    );
    if !installed {
        return;
    }
    let suite = format!("{dir}/redlock_v5.js");
    let passed = run_client_suite("node", &[&suite], &[]).await;
    eprintln!("node-redlock: {passed} checks passed");
}
