//! `bench`: the comparisons of `BENCHMARKS.md`, side by side in one run.
//!
//! It starts its own `redis-server` masters (no persistence) and `lockgate`
//! processes on free loopback ports, runs every pair A/B interleaved for
//! several rounds, reports medians and the ratios, and stops everything.
//! Absolute numbers drift on a shared 2-core machine; the ratios, measured
//! within one run, are the result.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use lockgate::dev::LocalRedis;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::procstat;
use crate::workload::{self, Mode, RunConfig, RunResult, Scenario};

#[derive(Args)]
pub struct BenchArgs {
    /// Rounds per comparison (A and B alternate within each round).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Measured time per run.
    #[arg(long, default_value_t = 2_000)]
    measure_ms: u64,
    #[arg(long, default_value_t = 300)]
    warmup_ms: u64,
    /// Worker counts (W workers share one multiplexed connection).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    workers: Vec<usize>,
    /// The lockgate binary; by default the one built beside this program
    /// (`cargo build --release -p lockgate`).
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Idle client connections for the memory measurement.
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// Sections to leave out: overhead, redlock, degraded, connections.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    #[arg(long)]
    json: Option<PathBuf>,
}

/// A gateway process.
struct Gateway {
    child: Child,
    addr: String,
}

impl Gateway {
    async fn start(
        bin: &PathBuf,
        masters: &[&LocalRedis],
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<Gateway> {
        let port = lockgate::dev::free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(bin);
        cmd.arg("--listen").arg(&addr);
        for m in masters {
            cmd.arg("--master").arg(m.address());
        }
        cmd.env("LOCKGATE_ADMIN_LISTEN", "")
            .env("LOCKGATE_LOCK_BOOTSTRAP", "immediate")
            .env("LOCKGATE_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let gw = Gateway { child, addr };
        gw.wait_ready().await?;
        Ok(gw)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let give_up = Instant::now() + Duration::from_secs(15);
        while Instant::now() < give_up {
            if let Ok(c) = redis::Client::open(format!("redis://{}/", self.addr)) {
                if let Ok(mut conn) = c.get_multiplexed_async_connection().await {
                    let r: redis::RedisResult<redis::Value> = redis::cmd("LOCK.STATUS")
                        .arg("bench:ready")
                        .query_async(&mut conn)
                        .await;
                    if r.is_ok() {
                        return Ok(());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("gateway {} not ready within 15 s", self.addr)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Medians over the rounds of one configuration.
#[derive(Debug, Clone, Serialize)]
struct Row {
    label: String,
    workers: usize,
    cycles_per_sec: f64,
    acquire_p50_ms: f64,
    acquire_p99_ms: f64,
    errors: u64,
    unsafe_runs: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn row(label: &str, workers: usize, runs: &[RunResult]) -> Row {
    Row {
        label: label.to_string(),
        workers,
        cycles_per_sec: median(runs.iter().map(|r| r.cycle.per_sec).collect()),
        acquire_p50_ms: median(runs.iter().map(|r| r.acquire_granted.p50_ms).collect()),
        acquire_p99_ms: median(runs.iter().map(|r| r.acquire_granted.p99_ms).collect()),
        errors: runs.iter().map(|r| r.errors.values().sum::<u64>()).sum(),
        unsafe_runs: runs.iter().filter(|r| !r.safety.safe()).count(),
    }
}

#[derive(Debug, Default, Serialize)]
struct Report {
    machine: String,
    rows: Vec<Row>,
    ratios: Vec<(String, f64)>,
    notes: Vec<String>,
}

impl Report {
    fn ratio(&mut self, what: String, v: f64) {
        println!("  {what}: {v:.2}x");
        self.ratios.push((what, v));
    }
}

fn cfg(args: &BenchArgs, targets: Vec<String>, mode: Mode, workers: usize) -> RunConfig {
    RunConfig {
        targets,
        mode,
        scenario: Scenario::Unique,
        workers,
        connections: 1,
        ttl_ms: 10_000,
        hold_ms: 0,
        duration: Duration::from_millis(args.measure_ms),
        ops: None,
        warmup: Duration::from_millis(args.warmup_ms),
        keys: 1,
        zipf_s: 1.0,
        busy_pause_ms: 1,
        progress: false,
    }
}

async fn one(c: RunConfig) -> anyhow::Result<RunResult> {
    let r = workload::run(c).await?;
    if !r.safety.safe() {
        eprintln!("SAFETY VIOLATION in a bench run:\n{}", workload::table(&r));
    }
    Ok(r)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let redis = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "{cores} cores, {} {}, {redis}; load driver, gateways and masters on one machine",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

fn gateway_bin(args: &BenchArgs) -> anyhow::Result<PathBuf> {
    let bin = match &args.gateway {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no parent dir")?
            .join("lockgate"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p lockgate`, or pass --gateway",
            bin.display()
        );
    }
    Ok(bin)
}

fn skip(args: &BenchArgs, section: &str) -> bool {
    args.skip.iter().any(|s| s == section)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let bin = gateway_bin(&args)?;
    let masters = lockgate::dev::start_masters(5).context("starting redis-server masters")?;
    let all: Vec<&LocalRedis> = masters.iter().collect();
    let mut rep = Report {
        machine: machine(),
        ..Report::default()
    };
    println!("machine: {}", rep.machine);

    if !skip(&args, "overhead") {
        println!("== overhead: gateway over 1 master vs that master directly (SET NX PX + EVALSHA release)");
        let gw1 = Gateway::start(&bin, &all[..1], &[]).await?;
        for &w in &args.workers {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..args.rounds {
                a.push(one(cfg(&args, vec![gw1.addr.clone()], Mode::Dropin, w)).await?);
                b.push(one(cfg(&args, vec![masters[0].address()], Mode::Dropin, w)).await?);
            }
            let (ra, rb) = (row("gateway, 1 master", w, &a), row("direct Redis", w, &b));
            rep.ratio(
                format!("overhead W={w}: gateway/direct cycle throughput"),
                ra.cycles_per_sec / rb.cycles_per_sec,
            );
            rep.ratio(
                format!("overhead W={w}: gateway/direct acquire p50"),
                ra.acquire_p50_ms / rb.acquire_p50_ms,
            );
            rep.rows.push(ra);
            rep.rows.push(rb);
        }
    }

    let gw5 = Gateway::start(&bin, &all, &[]).await?;
    let five: Vec<String> = masters.iter().map(|m| m.address()).collect();
    if !skip(&args, "redlock") {
        println!("== client-side Redlock: gateway over 5 masters vs rslock over the same 5");
        for &w in &args.workers {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let master_cpu0: Vec<_> = masters
                .iter()
                .map(|m| m.pid().and_then(procstat::cpu))
                .collect();
            let gw_cpu0 = procstat::cpu(gw5.pid());
            for _ in 0..args.rounds {
                a.push(one(cfg(&args, vec![gw5.addr.clone()], Mode::Native, w)).await?);
                b.push(one(cfg(&args, five.clone(), Mode::Rslock, w)).await?);
            }
            let (ra, rb) = (
                row("gateway, 5 masters", w, &a),
                row("rslock, 5 masters", w, &b),
            );
            rep.ratio(
                format!("redlock W={w}: gateway/rslock cycle throughput"),
                ra.cycles_per_sec / rb.cycles_per_sec,
            );
            rep.ratio(
                format!("redlock W={w}: gateway/rslock acquire p50"),
                ra.acquire_p50_ms / rb.acquire_p50_ms,
            );
            rep.ratio(
                format!("redlock W={w}: gateway/rslock acquire p99"),
                ra.acquire_p99_ms / rb.acquire_p99_ms,
            );
            if w == *args.workers.iter().max().unwrap_or(&w) {
                // Master CPU per cycle covers both A and B runs; the gateway
                // runs ran a script on every master per cycle, as rslock's
                // SET/EVAL do, so the per-cycle cost is comparable.
                let cycles: f64 = a.iter().chain(&b).map(|r| r.cycle.count as f64).sum();
                let master_cpu: f64 = masters
                    .iter()
                    .zip(&master_cpu0)
                    .filter_map(|(m, c0)| {
                        Some((m.pid().and_then(procstat::cpu)? - (*c0)?).as_secs_f64())
                    })
                    .sum();
                let per_cycle_us = master_cpu / cycles * 1e6;
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                let bound = cores * 1e6 / per_cycle_us;
                rep.notes.push(format!(
                    "ceiling: the 5 masters used {per_cycle_us:.1} µs of CPU per lock cycle (all 5 together, W={w}); \
                     with {cores} cores that bounds any 5-master Redlock at {bound:.0} cycles/s; the gateway reached {:.0} ({:.0}% of the bound)",
                    ra.cycles_per_sec,
                    100.0 * ra.cycles_per_sec / bound
                ));
                if let (Some(c1), Some(c0)) = (procstat::cpu(gw5.pid()), gw_cpu0) {
                    let gw_cycles: f64 = a.iter().map(|r| r.cycle.count as f64).sum();
                    rep.notes.push(format!(
                        "gateway CPU: {:.3} s per 1,000 lock cycles (5 masters, W={w})",
                        (c1 - c0).as_secs_f64() / gw_cycles * 1000.0
                    ));
                }
            }
            rep.rows.push(ra);
            rep.rows.push(rb);
        }
    }

    if !skip(&args, "degraded") {
        println!("== degraded: gateway over 5 masters, 1 SIGSTOPped vs all healthy");
        for &w in &args.workers {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..args.rounds {
                a.push(one(cfg(&args, vec![gw5.addr.clone()], Mode::Native, w)).await?);
                masters[0].stop();
                b.push(one(cfg(&args, vec![gw5.addr.clone()], Mode::Native, w)).await?);
                masters[0].resume();
                // Let the gateway reconnect before the next healthy run.
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
            let (ra, rb) = (
                row("gateway, 5 healthy", w, &a),
                row("gateway, 1 of 5 stopped", w, &b),
            );
            rep.ratio(
                format!("degraded W={w}: stopped/healthy cycle throughput"),
                rb.cycles_per_sec / ra.cycles_per_sec,
            );
            rep.ratio(
                format!("degraded W={w}: stopped/healthy acquire p99"),
                rb.acquire_p99_ms / ra.acquire_p99_ms,
            );
            rep.rows.push(ra);
            rep.rows.push(rb);
        }
        // rslock waits for every master, so one run is enough to show it.
        let w = *args.workers.iter().max().unwrap_or(&16);
        masters[0].stop();
        let mut c = cfg(&args, five.clone(), Mode::Rslock, w);
        c.duration = Duration::from_millis(args.measure_ms.max(2_000));
        let r = one(c).await;
        masters[0].resume();
        let r = r?;
        rep.rows
            .push(row("rslock, 1 of 5 stopped (1 run)", w, &[r]));
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    if !skip(&args, "connections") {
        println!(
            "== connections: RSS of one gateway holding {} idle clients",
            args.idle_connections
        );
        let gwc =
            Gateway::start(&bin, &all[..3], &[("LOCKGATE_LIMITS_MAX_CLIENTS", "50000")]).await?;
        let before = procstat::rss(gwc.pid()).unwrap_or(0);
        let mut conns = Vec::with_capacity(args.idle_connections);
        for _ in 0..args.idle_connections {
            conns.push(
                TcpStream::connect(&gwc.addr)
                    .await
                    .context("opening an idle connection")?,
            );
        }
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let after = procstat::rss(gwc.pid()).unwrap_or(0);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        rep.notes.push(format!(
            "connections: gateway RSS {:.1} MiB with 0 clients, {:.1} MiB with {} idle clients ({:.1} KiB each)",
            mib(before),
            mib(after),
            conns.len(),
            (after.saturating_sub(before)) as f64 / 1024.0 / conns.len().max(1) as f64
        ));
        drop(conns);
    }
    rep.notes.push(
        "etcd: not run here: Debian's etcd-server and the etcd-client crate (which needs protobuf-compiler) are not installed by this bench"
            .to_string(),
    );

    println!();
    println!(
        "| comparison | W | cycles/s | acquire p50 ms | acquire p99 ms | errors | unsafe runs |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rep.rows {
        println!(
            "| {} | {} | {:.0} | {:.3} | {:.3} | {} | {} |",
            r.label,
            r.workers,
            r.cycles_per_sec,
            r.acquire_p50_ms,
            r.acquire_p99_ms,
            r.errors,
            r.unsafe_runs
        );
    }
    println!();
    println!("| ratio (same run) | value |");
    println!("|---|---|");
    for (what, v) in &rep.ratios {
        println!("| {what} | {v:.2}x |");
    }
    println!();
    for n in &rep.notes {
        println!("- {n}");
    }
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_vec_pretty(&rep)?)?;
    }
    drop(gw5);
    drop(masters);
    if rep.rows.iter().any(|r| r.unsafe_runs > 0) {
        bail!("a bench run saw duplicate or backwards fencing tokens");
    }
    Ok(())
}
