//! `bench`: the comparisons of `BENCHMARKS.md`, side by side in one run.
//!
//! It starts its own `redis-server` masters (no persistence) and `lockgate`
//! processes on free loopback ports, runs every pair A/B interleaved for
//! several rounds, reports medians and the ratios, and stops everything.
//! Absolute numbers drift on a shared 2-core machine; the ratios, measured
//! within one run, are the result.
//!
//! Sections (`--only` / `--skip`): `overhead`, `redlock`, `degraded`,
//! `connections`, `kinds` (plain locks vs semaphores vs read and write
//! locks on one gateway over the same 5 masters), `tls` (one
//! gateway's plain port against its TLS port, and a gateway whose masters
//! serve TLS only; certificates made at run time), and `etcd`, which also
//! starts a single-node `etcd` and needs the `etcd` cargo feature; without
//! it, or without `etcd` on PATH, the etcd rows are skipped with one line
//! saying how to enable them. `retention` (locks on a million distinct
//! keys, with bounded fence-register retention against registers kept
//! forever) runs only when named in `--only`: it takes minutes.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use lockgate::dev::LocalRedis;
use serde::Serialize;
use tokio::net::TcpStream;

mod retention;

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
    /// Sections to leave out: overhead, redlock, degraded, connections, tls,
    /// etcd, kinds.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Run only these sections (same names as --skip), e.g. `--only etcd`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    #[arg(long)]
    json: Option<PathBuf>,
    /// `retention`: locks on distinct keys per side.
    #[arg(long, default_value_t = 1_000_000)]
    retention_locks: u64,
    /// `retention`: stop taking locks after this many seconds.
    #[arg(long, default_value_t = 300)]
    retention_budget_s: u64,
    /// `retention`: `lock.fence_retention_ms` of the bounded side.
    #[arg(long, default_value_t = 30_000)]
    retention_ms: u64,
    /// `retention`: the TTL of each lock.
    #[arg(long, default_value_t = 10_000)]
    retention_ttl_ms: u64,
    /// `retention`: locks per chunk (the sides alternate chunk by chunk).
    #[arg(long, default_value_t = 20_000)]
    retention_chunk: u64,
    /// `retention`: seconds of the two-gateway skewed-clock measurement.
    #[arg(long, default_value_t = 20)]
    retention_skew_s: u64,
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
        // No masters here: the caller lists them in LOCKGATE_MASTERS (the
        // --master flag makes plain-text masters).
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
    error_kinds: String,
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
        error_kinds: {
            let mut kinds = std::collections::BTreeMap::<String, u64>::new();
            for r in runs {
                for (k, v) in &r.errors {
                    *kinds.entry(k.clone()).or_default() += v;
                }
            }
            kinds
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        unsafe_runs: runs
            .iter()
            .filter(|r| !r.safety.safe() || !r.kinds.clean())
            .count(),
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

    /// Records `a / b` for each metric, labelled "`what` <metric>".
    fn compare(&mut self, what: &str, a: &Row, b: &Row, metrics: &[Metric]) {
        for m in metrics {
            let (label, va, vb) = match m {
                Metric::Cycles => ("cycle throughput", a.cycles_per_sec, b.cycles_per_sec),
                Metric::P50 => ("acquire p50", a.acquire_p50_ms, b.acquire_p50_ms),
                Metric::P99 => ("acquire p99", a.acquire_p99_ms, b.acquire_p99_ms),
            };
            self.ratio(format!("{what} {label}"), va / vb);
        }
    }
}

/// What [`Report::compare`] divides.
enum Metric {
    Cycles,
    P50,
    P99,
}

/// Every cycle the runs made, warm-up included, so CPU measured around whole
/// runs is divided by the cycles that spent it.
fn cycles_total(runs: &[RunResult]) -> f64 {
    runs.iter().map(|r| r.cycles_total as f64).sum()
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
        permits: 3,
        write_percent: 0,
        tls: None,
    }
}

async fn one(c: RunConfig) -> anyhow::Result<RunResult> {
    let r = workload::run(c).await?;
    if !r.safety.safe() || !r.kinds.clean() {
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

/// Total CPU seconds of every master so far.
fn masters_cpu(masters: &[LocalRedis]) -> f64 {
    masters
        .iter()
        .filter_map(|m| m.pid().and_then(procstat::cpu))
        .map(|d| d.as_secs_f64())
        .sum()
}

const SECTIONS: [&str; 8] = [
    "overhead",
    "redlock",
    "degraded",
    "connections",
    "tls",
    "etcd",
    "kinds",
    "retention",
];

/// Sections that run only when `--only` names them.
const ON_REQUEST: [&str; 1] = ["retention"];

fn selected(args: &BenchArgs, section: &str) -> bool {
    let asked = args.only.iter().any(|s| s == section);
    (asked || (args.only.is_empty() && !ON_REQUEST.contains(&section)))
        && !args.skip.iter().any(|s| s == section)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(bad) = args
        .only
        .iter()
        .chain(&args.skip)
        .find(|s| !SECTIONS.contains(&s.as_str()))
    {
        bail!(
            "unknown bench section '{bad}': expected one of {}",
            SECTIONS.join(", ")
        );
    }
    let bin = gateway_bin(&args)?;
    let masters = lockgate::dev::start_masters(5).context("starting redis-server masters")?;
    let all: Vec<&LocalRedis> = masters.iter().collect();
    let mut rep = Report {
        machine: machine(),
        ..Report::default()
    };
    println!("machine: {}", rep.machine);

    if selected(&args, "overhead") {
        println!("== overhead: gateway over 1 master vs that master directly (SET NX PX + EVALSHA release)");
        let gw1 = Gateway::start(&bin, &all[..1], &[]).await?;
        for &w in &args.workers {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..args.rounds {
                a.push(one(cfg(&args, vec![gw1.addr.clone()], Mode::Dropin, w)).await?);
                b.push(one(cfg(&args, vec![masters[0].address()], Mode::Dropin, w)).await?);
            }
            let (ra, rb) = (row("gateway, 1 master", w, &a), row("direct Redis", w, &b));
            rep.compare(
                &format!("overhead W={w}: gateway/direct"),
                &ra,
                &rb,
                &[Metric::Cycles, Metric::P50],
            );
            rep.rows.push(ra);
            rep.rows.push(rb);
        }
    }

    let gw5 =
        if selected(&args, "redlock") || selected(&args, "degraded") || selected(&args, "kinds") {
            Some(Gateway::start(&bin, &all, &[]).await?)
        } else {
            None
        };
    let five: Vec<String> = masters.iter().map(|m| m.address()).collect();
    if let (true, Some(gw5)) = (selected(&args, "redlock"), &gw5) {
        println!("== client-side Redlock: gateway over 5 masters vs rslock over the same 5");
        for &w in &args.workers {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            // Master CPU is measured around each run, so the gateway's and
            // rslock's per-cycle costs are told apart.
            let (mut cpu_a, mut cpu_b) = (0.0f64, 0.0f64);
            let mut gw_cpu = 0.0f64;
            for _ in 0..args.rounds {
                let (m0, g0) = (masters_cpu(&masters), procstat::cpu(gw5.pid()));
                a.push(one(cfg(&args, vec![gw5.addr.clone()], Mode::Native, w)).await?);
                let (m1, g1) = (masters_cpu(&masters), procstat::cpu(gw5.pid()));
                cpu_a += m1 - m0;
                if let (Some(g0), Some(g1)) = (g0, g1) {
                    gw_cpu += (g1 - g0).as_secs_f64();
                }
                b.push(one(cfg(&args, five.clone(), Mode::Rslock, w)).await?);
                cpu_b += masters_cpu(&masters) - m1;
            }
            let (ra, rb) = (
                row("gateway, 5 masters", w, &a),
                row("rslock, 5 masters", w, &b),
            );
            rep.compare(
                &format!("redlock W={w}: gateway/rslock"),
                &ra,
                &rb,
                &[Metric::Cycles, Metric::P50, Metric::P99],
            );
            if w == *args.workers.iter().max().unwrap_or(&w) {
                let per_a = cpu_a / cycles_total(&a) * 1e6;
                let per_b = cpu_b / cycles_total(&b) * 1e6;
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                let bound = cores * 1e6 / per_a;
                rep.notes.push(format!(
                    "ceiling (W={w}): per lock cycle the 5 masters together used {per_a:.1} µs of CPU under the gateway \
                     (its acquire script also raises the fencing register) and {per_b:.1} µs under rslock; with {cores} cores \
                     the masters alone bound a 5-master gateway at {bound:.0} cycles/s; it reached {:.0} ({:.0}% of that bound)",
                    ra.cycles_per_sec,
                    100.0 * ra.cycles_per_sec / bound
                ));
                rep.notes.push(format!(
                    "gateway CPU: {:.3} s per 1,000 lock cycles (5 masters, W={w})",
                    gw_cpu / cycles_total(&a) * 1000.0
                ));
            }
            rep.rows.push(ra);
            rep.rows.push(rb);
        }
    }

    if let (true, Some(gw5)) = (selected(&args, "degraded"), &gw5) {
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
            rep.compare(
                &format!("degraded W={w}: stopped/healthy"),
                &rb,
                &ra,
                &[Metric::Cycles, Metric::P99],
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

    if let (true, Some(gw5)) = (selected(&args, "kinds"), &gw5) {
        println!("== kinds: plain locks vs semaphores vs read and write locks, one gateway over 5 masters");
        for &w in &args.workers {
            let mut runs: [Vec<RunResult>; 4] = Default::default();
            for _ in 0..args.rounds {
                for (i, (mode, write_percent)) in [
                    (Mode::Native, 0),
                    (Mode::Sem, 0),
                    (Mode::Rwlock, 0),
                    (Mode::Rwlock, 100),
                ]
                .into_iter()
                .enumerate()
                {
                    let mut c = cfg(&args, vec![gw5.addr.clone()], mode, w);
                    c.write_percent = write_percent;
                    runs[i].push(one(c).await?);
                }
            }
            let [plain, sem, read, write] = &runs;
            let rows = [
                row("plain lock, 5 masters", w, plain),
                row("semaphore (3 permits), 5 masters", w, sem),
                row("rw read lock, 5 masters", w, read),
                row("rw write lock, 5 masters", w, write),
            ];
            for (other, what) in [(1, "semaphore"), (2, "rw read"), (3, "rw write")] {
                rep.compare(
                    &format!("kinds W={w}: {what}/plain"),
                    &rows[other],
                    &rows[0],
                    &[Metric::Cycles, Metric::P50],
                );
            }
            rep.rows.extend(rows);
        }
    }

    if selected(&args, "connections") {
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
    if selected(&args, "tls") {
        tls_section(&args, &bin, &all[..3], &mut rep).await?;
    }
    if selected(&args, "etcd") {
        etcd_section(&args, &bin, &all[..3], &mut rep).await?;
    }
    if selected(&args, "retention") {
        retention::section(&args, &bin, &mut rep).await?;
    }

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

/// The cost of TLS on native LOCK.ACQUIRE/LOCK.RELEASE cycles, in one run,
/// A/B/C interleaved per round: one gateway over 3 plain masters reached
/// through its plain port (A) and through its TLS port (B), and a second
/// gateway whose 3 masters serve TLS only, reached through its plain port
/// (C). W workers share one client connection in each, so A/B is the cost
/// of TLS on the client link and C/A the cost on the master links.
async fn tls_section(
    args: &BenchArgs,
    bin: &PathBuf,
    masters: &[&LocalRedis],
    rep: &mut Report,
) -> anyhow::Result<()> {
    use crate::pki::BenchPki;
    use crate::workload::TlsFiles;
    use lockgate::dev::RedisTls;

    println!(
        "== tls: native acquire/release through one gateway's plain port vs its TLS port \
         (3 masters), and a gateway over 3 TLS-only masters"
    );
    let pki = BenchPki::generate().context("making the bench certificates")?;
    let path = |n: &str| pki.path(n).to_string_lossy().into_owned();
    let tls_addr = format!("127.0.0.1:{}", lockgate::dev::free_port()?);
    let gw = Gateway::start(
        bin,
        masters,
        &[
            ("LOCKGATE_TLS_LISTEN", &tls_addr),
            ("LOCKGATE_TLS_CERT_FILE", &path("server.pem")),
            ("LOCKGATE_TLS_KEY_FILE", &path("server.key")),
        ],
    )
    .await?;
    let tls_masters = (0..masters.len())
        .map(|_| {
            LocalRedis::start_tls(RedisTls {
                cert_file: pki.path("server.pem"),
                key_file: pki.path("server.key"),
                ca_file: pki.path("ca.pem"),
                auth_clients: false,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .context("starting TLS-only redis-server masters")?;
    let list = tls_masters
        .iter()
        .map(LocalRedis::address)
        .collect::<Vec<_>>()
        .join(",");
    let gw_tm = Gateway::start(
        bin,
        &[],
        &[
            ("LOCKGATE_MASTERS", &list),
            ("LOCKGATE_MASTERS_TLS", "true"),
            ("LOCKGATE_MASTER_TLS_CA_FILE", &path("ca.pem")),
        ],
    )
    .await?;
    let tls = TlsFiles {
        ca: pki.path("ca.pem"),
        identity: None,
    };
    for &w in &args.workers {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.rounds {
            a.push(one(cfg(args, vec![gw.addr.clone()], Mode::Native, w)).await?);
            let mut over_tls = cfg(args, vec![tls_addr.clone()], Mode::Native, w);
            over_tls.tls = Some(tls.clone());
            b.push(one(over_tls).await?);
            c.push(one(cfg(args, vec![gw_tm.addr.clone()], Mode::Native, w)).await?);
        }
        let (ra, rb, rc) = (
            row("plain port, 3 plain masters", w, &a),
            row("TLS port, 3 plain masters", w, &b),
            row("plain port, 3 TLS masters", w, &c),
        );
        rep.compare(
            &format!("tls W={w}: TLS port/plain port"),
            &rb,
            &ra,
            &[Metric::Cycles, Metric::P50, Metric::P99],
        );
        rep.compare(
            &format!("tls W={w}: TLS masters/plain masters"),
            &rc,
            &ra,
            &[Metric::Cycles, Metric::P50, Metric::P99],
        );
        rep.rows.push(ra);
        rep.rows.push(rb);
        rep.rows.push(rc);
    }
    rep.notes.push(format!(
        "tls: rustls with the ring provider in the gateway, redis-rs over rustls as the \
         client, redis-server's own TLS on the masters; one long-lived connection per \
         client and per master, so the ratios are the per-request cost of TLS, not \
         handshakes ({} workers share one client connection)",
        args.workers
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("/")
    ));
    drop(gw_tm);
    drop(gw);
    drop(tls_masters);
    Ok(())
}

/// Says why the etcd rows are missing and how to get them. An explicit
/// `--only etcd` that cannot run is an error rather than an empty table.
fn etcd_skipped(args: &BenchArgs, rep: &mut Report, why: &str) -> anyhow::Result<()> {
    let line = format!(
        "etcd rows skipped: {why}; to enable them: apt-get install etcd-server protobuf-compiler libprotobuf-dev, \
         then cargo build --release -p lockgate-loadtest --features etcd"
    );
    if args.only.iter().any(|s| s == "etcd") {
        bail!("{line}");
    }
    println!("{line}");
    rep.notes.push(line);
    Ok(())
}

#[cfg(not(feature = "etcd"))]
async fn etcd_section(
    args: &BenchArgs,
    _bin: &PathBuf,
    _masters: &[&LocalRedis],
    rep: &mut Report,
) -> anyhow::Result<()> {
    etcd_skipped(args, rep, "this build has no `etcd` feature")
}

/// The gateway over 3 masters against a single-node etcd, both on this
/// machine, both with W workers sharing one client connection, A/B
/// interleaved per round. The etcd cycle is defined in `workload::etcd`.
#[cfg(feature = "etcd")]
async fn etcd_section(
    args: &BenchArgs,
    bin: &PathBuf,
    masters: &[&LocalRedis],
    rep: &mut Report,
) -> anyhow::Result<()> {
    use crate::etcd_server::{self, LocalEtcd};

    if !etcd_server::installed() {
        return etcd_skipped(args, rep, "`etcd` is not on PATH");
    }
    let etcd = tokio::task::spawn_blocking(LocalEtcd::start)
        .await
        .context("starting etcd")??;
    let version = etcd_server::version();
    println!(
        "== etcd: gateway over 3 masters vs {version}, single node (lease grant + lock, unlock + lease revoke)"
    );
    let gw3 = Gateway::start(bin, masters, &[]).await?;
    let backend_cpu = || -> f64 {
        masters
            .iter()
            .filter_map(|m| m.pid().and_then(procstat::cpu))
            .chain(procstat::cpu(gw3.pid()))
            .map(|d| d.as_secs_f64())
            .sum()
    };
    let etcd_cpu = || procstat::cpu(etcd.pid()).map_or(0.0, |d| d.as_secs_f64());
    let max_w = args.workers.iter().copied().max().unwrap_or(1);
    for &w in &args.workers {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (mut cpu_a, mut cpu_b) = (0.0f64, 0.0f64);
        for _ in 0..args.rounds {
            let c0 = backend_cpu();
            a.push(one(cfg(args, vec![gw3.addr.clone()], Mode::Native, w)).await?);
            cpu_a += backend_cpu() - c0;
            let e0 = etcd_cpu();
            b.push(one(cfg(args, vec![etcd.address()], Mode::Etcd, w)).await?);
            cpu_b += etcd_cpu() - e0;
        }
        let (ra, rb) = (
            row("gateway, 3 masters", w, &a),
            row("etcd, single node", w, &b),
        );
        rep.compare(
            &format!("etcd W={w}: gateway(3)/etcd"),
            &ra,
            &rb,
            &[Metric::Cycles, Metric::P50, Metric::P99],
        );
        if w == max_w {
            rep.notes.push(format!(
                "etcd CPU (W={w}): per lock cycle the gateway and its 3 masters together used {:.1} µs, \
                 etcd {:.1} µs ({version}, WAL fsynced as etcd does by default; the masters run \
                 without persistence)",
                cpu_a / cycles_total(&a).max(1.0) * 1e6,
                cpu_b / cycles_total(&b).max(1.0) * 1e6,
            ));
        }
        rep.rows.push(ra);
        rep.rows.push(rb);
    }
    drop(gw3);
    drop(etcd);
    Ok(())
}
