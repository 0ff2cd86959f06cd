//! The `lockgate` binary: parse flags, init tracing, load and validate the
//! configuration (exit 64 before binding anything if it is wrong), run the
//! gateway, drain on SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use lockgate::config::{Bootstrap, Config, MasterConfig};
use lockgate::server::Gateway;
use tracing::{info, warn};

/// A Redlock gateway: one RESP address, quorum locks over N Redis masters,
/// a fencing token on every grant.
#[derive(Parser, Debug)]
#[command(name = "lockgate", version)]
struct Cli {
    /// TOML configuration file (see config/lockgate.example.toml).
    #[arg(long, short = 'c')]
    config: Option<String>,
    /// Validate FILE and exit 0 (valid) or 1 (invalid).
    #[arg(long, value_name = "FILE")]
    check_config: Option<String>,
    /// Client listen address (overrides the file and LOCKGATE_LISTEN).
    #[arg(long)]
    listen: Option<String>,
    /// Admin HTTP listen address.
    #[arg(long)]
    admin_listen: Option<String>,
    /// A master address; repeat for each master (replaces the file's list).
    #[arg(long = "master")]
    masters: Vec<String>,
    /// Log level: trace, debug, info, warn, error.
    #[arg(long)]
    log_level: Option<String>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Dev mode: start local redis-server masters and a gateway on them.
    Dev {
        /// How many masters to start.
        #[arg(long, default_value_t = 5)]
        masters: usize,
        #[arg(long, default_value = "127.0.0.1:6380")]
        listen: String,
        #[arg(long, default_value = "127.0.0.1:9380")]
        admin_listen: String,
    },
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    for w in config.warnings() {
        warn!("{w}");
    }
    let grace = config.shutdown_grace;
    let gw = Gateway::start(config).await.context("cannot start")?;
    info!(listen = %gw.local_addr(), tls_listen = ?gw.tls_addr(), admin = ?gw.admin_addr(), "serving");
    wait_for_signal().await;
    gw.shutdown(grace).await;
    Ok(())
}

async fn dev(masters: usize, listen: String, admin_listen: String) -> anyhow::Result<()> {
    let procs = tokio::task::spawn_blocking(move || lockgate::dev::start_masters(masters))
        .await
        .context("starting masters")??;
    let mut config = Config {
        listen,
        admin_listen,
        masters: procs
            .iter()
            .map(|m| MasterConfig::plain(m.address()))
            .collect(),
        ..Config::default()
    };
    // The masters were just started empty: initialise them at once.
    config.lock.bootstrap = Bootstrap::Immediate;
    config.master.timeout = Duration::from_millis(50);
    let config = config.validate()?;
    let gw = Gateway::start(config).await.context("cannot start")?;
    gw.wait_ready(Duration::from_secs(10)).await;
    let port = gw.local_addr().port();
    println!("lockgate dev mode: listening on {}", gw.local_addr());
    for m in &procs {
        println!(
            "  master redis-server 127.0.0.1:{} (pid {:?})",
            m.port(),
            m.pid()
        );
    }
    if let Some(a) = gw.admin_addr() {
        println!("  metrics http://{a}/metrics   ready http://{a}/readyz");
    }
    println!("try:  redis-cli -p {port} LOCK.ACQUIRE demo 10000");
    println!("Ctrl-C stops the gateway and the masters.");
    wait_for_signal().await;
    gw.shutdown(Duration::from_secs(2)).await;
    drop(procs);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The configured level applies once the file is read; until then (and
    // for dev mode and --check-config) the flag or "info" does.
    let early_level = cli.log_level.clone().unwrap_or_else(|| {
        Config::load_unvalidated(cli.config.as_deref(), &env)
            .map(|c| c.log_level)
            .unwrap_or_else(|_| "info".to_string())
    });
    init_tracing(&early_level);
    if let Some(path) = &cli.check_config {
        return match Config::load(Some(path), &env) {
            Ok(c) => {
                for w in c.warnings() {
                    eprintln!("warning: {w}");
                }
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{path}: {e}");
                ExitCode::from(1)
            }
        };
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(70);
        }
    };
    let result = match cli.cmd {
        Some(Cmd::Dev {
            masters,
            listen,
            admin_listen,
        }) => rt.block_on(dev(masters, listen, admin_listen)),
        None => {
            let mut config = match Config::load_unvalidated(cli.config.as_deref(), &env) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("configuration error: {e}");
                    return ExitCode::from(64);
                }
            };
            if let Some(l) = cli.listen {
                config.listen = l;
            }
            if let Some(a) = cli.admin_listen {
                config.admin_listen = a;
            }
            if let Some(l) = cli.log_level {
                config.log_level = l;
            }
            if !cli.masters.is_empty() {
                config.masters = cli.masters.iter().map(MasterConfig::plain).collect();
            }
            let config = match config.validate() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("configuration error: {e}");
                    return ExitCode::from(64);
                }
            };
            rt.block_on(serve(config))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lockgate: {e:#}");
            ExitCode::from(1)
        }
    }
}
