//! `lockgate-loadtest`: drives lock workloads against a gateway (or, for
//! baselines, against Redis directly or through client-side Redlock),
//! records latency percentiles, and checks every fencing token it is given.
//!
//! - `run`: one bounded workload; exits non-zero on any duplicate or
//!   backwards token.
//! - `bench`: the side-by-side comparisons of `BENCHMARKS.md`, starting and
//!   stopping its own masters and gateways (and, with the `etcd` feature,
//!   a single-node etcd).
//! - `chaos`: fault scenarios under fenced load (`FAULTS.md`).

mod bench;
mod chaos;
mod checker;
#[cfg(feature = "etcd")]
mod etcd_server;
mod kinds;
mod pki;
mod procstat;
mod relay;
mod stats;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use workload::{Mode, RunConfig, Scenario};

#[derive(Parser)]
#[command(name = "lockgate-loadtest", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one bounded workload against one target.
    Run(RunArgs),
    /// Run the benchmark comparisons and print the BENCHMARKS.md table.
    Bench(bench::BenchArgs),
    /// Inject master, gateway and network faults under fenced load and
    /// check every token (the FAULTS.md table).
    Chaos(chaos::ChaosArgs),
    /// Internal: one gateway process for `chaos` (test-only switches).
    #[command(hide = true)]
    ChaosGateway(chaos::gateway::GatewayArgs),
}

#[derive(Args)]
struct RunArgs {
    /// host:port of a gateway (or Redis for the direct baseline); for
    /// `--mode rslock`, a comma-separated list of masters; for
    /// `--mode etcd`, etcd's client address (e.g. 127.0.0.1:2379).
    #[arg(long, default_value = "127.0.0.1:6380", value_delimiter = ',')]
    target: Vec<String>,
    #[arg(long, value_enum, default_value = "native")]
    mode: Mode,
    #[arg(long, value_enum, default_value = "unique")]
    scenario: Scenario,
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// Client connections shared by the workers (multiplexed).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    #[arg(long, default_value_t = 10_000)]
    ttl_ms: u64,
    /// Time each holder keeps the lock before releasing.
    #[arg(long, default_value_t = 0)]
    hold_ms: u64,
    /// Measured time, after the warm-up.
    #[arg(long, default_value_t = 10_000)]
    duration_ms: u64,
    /// Stop after this many lock cycles instead (whichever comes first).
    #[arg(long)]
    ops: Option<u64>,
    #[arg(long, default_value_t = 1_000)]
    warmup_ms: u64,
    /// Number of distinct keys for zipf and rmw.
    #[arg(long, default_value_t = 1_000)]
    keys: u64,
    /// Zipf exponent.
    #[arg(long, default_value_t = 1.0)]
    zipf_s: f64,
    /// Upper bound of the random pause after a refused acquire.
    #[arg(long, default_value_t = 2)]
    busy_pause_ms: u64,
    /// `--mode sem`: permits per semaphore.
    #[arg(long, default_value_t = 3)]
    permits: u64,
    /// `--mode rwlock`: percent of cycles that take the write lock.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(0..=100))]
    write_percent: u8,
    /// Write the result as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress bar (for logs and CI).
    #[arg(long)]
    no_progress: bool,
    /// Connect over TLS, trusting this CA (PEM); native and dropin modes.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a listener that requires one; with
    /// --tls-key.
    #[arg(long, requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, requires_all = ["tls_cert", "tls_ca"])]
    tls_key: Option<PathBuf>,
}

impl RunArgs {
    fn config(&self) -> RunConfig {
        RunConfig {
            targets: self.target.clone(),
            mode: self.mode,
            scenario: self.scenario,
            workers: self.workers,
            connections: self.connections,
            ttl_ms: self.ttl_ms,
            hold_ms: self.hold_ms,
            duration: Duration::from_millis(self.duration_ms),
            ops: self.ops,
            warmup: Duration::from_millis(self.warmup_ms),
            keys: self.keys,
            zipf_s: self.zipf_s,
            busy_pause_ms: self.busy_pause_ms,
            progress: !self.no_progress,
            permits: self.permits,
            write_percent: self.write_percent,
            tls: self.tls_ca.clone().map(|ca| workload::TlsFiles {
                ca,
                identity: self.tls_cert.clone().zip(self.tls_key.clone()),
            }),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // redis-rs builds its rustls configs with the process-wide provider;
    // name ring (the gateway's) rather than rely on feature unification.
    let _ = lockgate::tls::ring_provider().install_default();
    match cli.cmd {
        Cmd::Run(args) => {
            let r = workload::run(args.config()).await?;
            print!("{}", workload::table(&r));
            if let Some(path) = &args.json {
                std::fs::write(path, serde_json::to_vec_pretty(&r)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if !r.safety.safe() || r.lost_updates > 0 || !r.kinds.clean() || !r.reentrant.clean() {
                eprintln!("SAFETY VIOLATION: see above");
                std::process::exit(2);
            }
            Ok(())
        }
        Cmd::Bench(args) => bench::run(args).await,
        Cmd::Chaos(args) => chaos::run(args).await,
        Cmd::ChaosGateway(args) => chaos::gateway::serve(args).await,
    }
}
