//! The hidden `chaos-gateway` subcommand: one lockgate gateway (the library's
//! own `Gateway`, the code the `lockgate` binary runs) in a child process of
//! the chaos runner, so that it can be SIGKILLed and SIGSTOPped for real.
//!
//! This is where the suite's **test-only switches** live, on purpose outside
//! the `lockgate` binary, which has no way to turn them on:
//! `--unsafe-test-disable-amnesia-guard` and
//! `--unsafe-test-disable-eviction-guard` (the negative controls) and
//! `--test-clock-offset-ms` (gateway clock skew). Each prints a loud warning.
//! The process prints `READY <addr> <admin addr>` once a quorum of masters
//! is ready (the admin listener serves `/metrics`, so the runner reads the
//! gateway's own counters, as an operator would) and
//! exits when its stdin closes, so a crashed runner leaves no gateway behind.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use lockgate::config::{Bootstrap, Config, MasterConfig};
use lockgate::server::Gateway;
use tokio::io::AsyncReadExt;

/// Flags of `lockgate-loadtest chaos-gateway` (hidden; the runner sets them).
#[derive(Args, Debug, Clone)]
pub struct GatewayArgs {
    #[arg(long)]
    pub listen: String,
    #[arg(long = "master")]
    pub masters: Vec<String>,
    #[arg(long)]
    pub timeout_ms: u64,
    #[arg(long)]
    pub max_ttl_ms: u64,
    #[arg(long)]
    pub max_acquire_ms: u64,
    /// TEST ONLY: shift this gateway's wall clock (token proposals).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub test_clock_offset_ms: i64,
    /// TEST ONLY, UNSAFE: re-seed amnesiac masters at once with floor 0.
    #[arg(long)]
    pub unsafe_test_disable_amnesia_guard: bool,
    /// TEST ONLY, UNSAFE: masters whose policy can evict keys still vote.
    #[arg(long)]
    pub unsafe_test_disable_eviction_guard: bool,
}

/// The configuration every chaos gateway runs with: short TTL bounds so a
/// quarantine lasts seconds, and a master deadline that a loaded 2-core
/// machine still meets.
pub fn config(a: &GatewayArgs) -> Config {
    let mut c = Config {
        listen: a.listen.clone(),
        // A free port: the runner scrapes `/metrics` (fence retries, master
        // errors by kind) to explain each row.
        admin_listen: "127.0.0.1:0".into(),
        masters: a.masters.iter().map(MasterConfig::plain).collect(),
        ..Config::default()
    };
    // The runner starts every master empty together with the gateways.
    c.lock.bootstrap = Bootstrap::Immediate;
    c.lock.min_ttl = Duration::from_millis(1);
    c.lock.max_ttl = Duration::from_millis(a.max_ttl_ms);
    c.lock.max_acquire_time = Duration::from_millis(a.max_acquire_ms);
    c.master.timeout = Duration::from_millis(a.timeout_ms);
    c.master.connect_timeout = Duration::from_millis(300);
    c.master.reconnect_min = Duration::from_millis(20);
    // "Recovers within about a second of healing" needs short backoff.
    c.master.reconnect_max = Duration::from_millis(250);
    c
}

/// Runs the gateway until stdin closes or SIGTERM.
///
/// # Errors
/// When the gateway cannot start or no quorum becomes ready.
pub async fn serve(a: GatewayArgs) -> anyhow::Result<()> {
    if a.unsafe_test_disable_amnesia_guard {
        eprintln!(
            "WARNING: TEST ONLY: the amnesia guard of this chaos gateway is OFF; masters that \
             restarted empty are re-seeded at once with floor 0, and token proposals learn no \
             lead from stale refusals. Fencing tokens are NOT safe."
        );
    }
    if a.unsafe_test_disable_eviction_guard {
        eprintln!(
            "WARNING: TEST ONLY: the eviction guard of this chaos gateway is OFF; masters whose \
             maxmemory-policy can evict fence registers vote. Fencing tokens are NOT safe."
        );
    }
    if a.test_clock_offset_ms != 0 {
        eprintln!(
            "WARNING: TEST ONLY: this chaos gateway's wall clock is shifted by {} ms",
            a.test_clock_offset_ms
        );
    }
    let cfg = config(&a).validate().context("chaos gateway config")?;
    let gw = Gateway::start(cfg).await.context("gateway start")?;
    gw.engine()
        .proposer()
        .set_clock_offset_us(a.test_clock_offset_ms.saturating_mul(1_000));
    if a.unsafe_test_disable_amnesia_guard {
        gw.engine().set_amnesia_guard(false);
        // A lagging clock must keep proposing low for the negative control
        // to meet a forgetful master: no lead learned from stale refusals.
        gw.engine().proposer().set_lead_learning(false);
    }
    if a.unsafe_test_disable_eviction_guard {
        for m in gw.engine().masters() {
            m.set_eviction_guard(false);
        }
    }
    anyhow::ensure!(
        gw.wait_ready(Duration::from_secs(15)).await,
        "no quorum of masters became ready"
    );
    let admin = gw
        .admin_addr()
        .context("the admin listener did not start")?;
    println!("READY {} {admin}", gw.local_addr());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    let eof = async {
        while let Ok(n) = stdin.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::select! {
        _ = eof => {}
        _ = term.recv() => {}
    }
    gw.shutdown(Duration::from_millis(200)).await;
    Ok(())
}
