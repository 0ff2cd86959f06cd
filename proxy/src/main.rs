//! The `lockgate` binary: parse flags, init tracing, load and validate the
//! configuration (exit 64 before binding anything if it is wrong), run the
//! gateway, reload it on SIGHUP, drain on SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use lockgate::config::{Bootstrap, Config, MasterConfig};
use lockgate::server::{Gateway, ReloadHooks};
use tracing::{info, warn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{reload, EnvFilter, Registry};

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
    /// The deployment's master set (see README, What the masters must be).
    Masters {
        #[command(subcommand)]
        action: MastersCmd,
    },
}

#[derive(Subcommand, Debug)]
enum MastersCmd {
    /// Record this configuration's masters, and this version's key layout,
    /// as the deployment's on every master. Every master must answer.
    Adopt,
}

type FilterHandle = reload::Handle<EnvFilter, Registry>;

/// Installs the subscriber behind a reload handle, so a configuration
/// reload can change the level without a restart.
fn init_tracing(level: &str) -> Option<FilterHandle> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (layer, handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(layer)
        .with(tracing_subscriber::fmt::layer())
        .try_init()
        .ok()
        .map(|()| handle)
}

/// The command-line overrides, kept so a reload re-reads the file and the
/// environment exactly as the start did.
#[derive(Clone)]
struct Overrides {
    config: Option<String>,
    listen: Option<String>,
    admin_listen: Option<String>,
    log_level: Option<String>,
    masters: Vec<String>,
}

impl Overrides {
    fn load(&self) -> Result<Config, lockgate::config::ConfigError> {
        let mut config = Config::load_unvalidated(self.config.as_deref(), &env)?;
        if let Some(l) = &self.listen {
            config.listen = l.clone();
        }
        if let Some(a) = &self.admin_listen {
            config.admin_listen = a.clone();
        }
        if let Some(l) = &self.log_level {
            config.log_level = l.clone();
        }
        if !self.masters.is_empty() {
            config.masters = self.masters.iter().map(MasterConfig::plain).collect();
        }
        Ok(config)
    }
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

async fn serve(
    config: Config,
    overrides: Overrides,
    log: Option<FilterHandle>,
) -> anyhow::Result<()> {
    for w in config.warnings() {
        warn!("{w}");
    }
    let gw = Gateway::start(config).await.context("cannot start")?;
    gw.set_reload_hooks(ReloadHooks {
        source: Box::new(move || overrides.load()),
        log_level: log.map(|h| {
            Box::new(move |level: &str| {
                let f = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
                h.reload(f).map_err(|e| e.to_string())
            }) as lockgate::server::LogLevelHook
        }),
    });
    info!(listen = %gw.local_addr(), tls_listen = ?gw.tls_addr(), admin = ?gw.admin_addr(), "serving");
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install the SIGHUP handler")?;
    let stop = wait_for_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = hup.recv() => {
                info!("SIGHUP: reloading the configuration");
                // The outcome is logged and counted by the reload itself.
                let _ = gw.reload_from_source();
            }
        }
    }
    let grace = gw.config().shutdown_grace;
    gw.shutdown(grace).await;
    Ok(())
}

/// `lockgate masters adopt`: connects to the configured masters (serving
/// nothing), waits for every one to answer with its record, and adopts.
async fn adopt_masters(mut config: Config) -> anyhow::Result<()> {
    config.listen = "127.0.0.1:0".into();
    config.admin_listen = String::new();
    config.tls = None;
    let gw = Gateway::start(config)
        .await
        .context("cannot reach the masters")?;
    let masters = gw.engine().masters().to_vec();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < until && !masters.iter().all(|m| m.master_id().is_some()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let result = lockgate::lock::recovery::adopt(gw.engine()).await;
    gw.shutdown(Duration::from_secs(1)).await;
    match result {
        Ok(msg) => {
            println!("{msg}");
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(e)),
    }
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
        match m.pid() {
            Some(pid) => println!("  master redis-server {} (pid {pid})", m.address()),
            None => println!("  master redis-server {} (not running)", m.address()),
        }
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
    let log_handle = init_tracing(&early_level);
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
        Some(Cmd::Masters {
            action: MastersCmd::Adopt,
        }) => {
            let overrides = Overrides {
                config: cli.config,
                listen: None,
                admin_listen: None,
                log_level: cli.log_level,
                masters: cli.masters,
            };
            match overrides.load().and_then(Config::validate) {
                Ok(c) => rt.block_on(adopt_masters(c)),
                Err(e) => {
                    eprintln!("configuration error: {e}");
                    return ExitCode::from(64);
                }
            }
        }
        None => {
            let overrides = Overrides {
                config: cli.config,
                listen: cli.listen,
                admin_listen: cli.admin_listen,
                log_level: cli.log_level,
                masters: cli.masters,
            };
            let config = match overrides.load().and_then(Config::validate) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("configuration error: {e}");
                    return ExitCode::from(64);
                }
            };
            // The file's level applies now that it has been read, unless
            // RUST_LOG or --log-level said otherwise at start.
            if std::env::var("RUST_LOG").is_err() {
                if let (Some(h), Ok(f)) = (&log_handle, EnvFilter::try_new(&config.log_level)) {
                    let _ = h.reload(f);
                }
            }
            rt.block_on(serve(config, overrides, log_handle))
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
