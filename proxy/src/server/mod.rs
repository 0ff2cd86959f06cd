//! The gateway process: binds the client and admin listeners, starts the
//! masters, the lock engine and its amnesia guard, runs the accept loop, and
//! drains on shutdown.
//!
//! - [`connection`]: one task per client connection (pipelining, ordering).
//! - [`local`]: replies to the commands the gateway answers itself.
//! - [`exec`]: runs lock commands against the engine and shapes replies.
//! - [`limits`]: per-connection deadlines, the output cap, and the
//!   file-descriptor cap on `max_clients`.

mod compat;
pub mod connection;
pub mod exec;
pub mod limits;
pub mod local;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use prometheus::IntCounter;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::admin::{self, Readiness};
use crate::config::Config;
use crate::lock::{recovery, Engine};
use crate::master::Master;
use crate::metrics::{Limit, Metrics};
use crate::scripts::ScriptSet;

pub use connection::ClientEntry;

/// Why the gateway could not start; the operator is at fault (bad address,
/// port in use) or the environment is.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Command names counted in `lockgate_commands_total`; anything else is
/// `other`, so the label set stays bounded whatever clients send.
const COUNTED: &[&str] = &[
    "ping",
    "echo",
    "hello",
    "auth",
    "select",
    "quit",
    "reset",
    "client",
    "command",
    "info",
    "time",
    "dbsize",
    "lock.acquire",
    "lock.release",
    "lock.extend",
    "lock.status",
    "lock.tokens",
    "set",
    "get",
    "exists",
    "pttl",
    "ttl",
    "blpop",
    "eval",
    "evalsha",
    "script",
];

/// State shared by every connection of one gateway.
pub struct Shared {
    pub config: Arc<Config>,
    pub engine: Arc<Engine>,
    pub metrics: Metrics,
    pub clients: DashMap<u64, Arc<ClientEntry>>,
    pub started: Instant,
    pub local_addr: SocketAddr,
    /// `limits.max_clients` capped by the open-files limit (INFO shows it).
    pub max_clients: usize,
    next_id: AtomicU64,
    pub commands_processed: AtomicU64,
    command_counters: Vec<(&'static str, IntCounter)>,
    other_counter: IntCounter,
}

// === impl Shared ===

impl Shared {
    fn next_client_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a command by name without allocating.
    pub fn count_command(&self, name: &[u8]) {
        self.commands_processed.fetch_add(1, Ordering::Relaxed);
        match self
            .command_counters
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        {
            Some((_, c)) => c.inc(),
            None => self.other_counter.inc(),
        }
    }
}

/// Readiness of one gateway: not ready once it drains, so a load balancer
/// or Kubernetes stops sending it new connections while the requests in
/// flight finish (the admin listener outlives the client listener).
struct EngineReadiness {
    engine: Arc<Engine>,
    draining: Arc<AtomicBool>,
}

impl Readiness for EngineReadiness {
    fn ready(&self) -> Result<(), String> {
        if self.draining.load(Ordering::Relaxed) {
            return Err("draining: shutting down".into());
        }
        let e = &self.engine;
        let ok = e.ready_masters();
        if ok >= e.quorum() {
            Ok(())
        } else {
            Err(format!(
                "only {ok} of {} masters healthy, quorum is {}",
                e.masters().len(),
                e.quorum()
            ))
        }
    }
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    admin_addr: Option<SocketAddr>,
    stop_accepting: CancellationToken,
    stop_connections: CancellationToken,
    stop_background: CancellationToken,
    connections: TaskTracker,
    draining: Arc<AtomicBool>,
}

// === impl Gateway ===

impl Gateway {
    /// Binds the listeners, connects to the masters and starts serving.
    ///
    /// # Errors
    /// [`StartError`] when a listener cannot be bound or the configuration
    /// is unusable.
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        if config.masters.is_empty() {
            return Err(StartError::Config("no masters configured".into()));
        }
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen.clone(),
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
        let admin_listener = if config.admin_listen.is_empty() {
            None
        } else {
            Some(
                TcpListener::bind(&config.admin_listen)
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: config.admin_listen.clone(),
                        source,
                    })?,
            )
        };
        let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());

        let metrics = Metrics::new();
        let scripts = Arc::new(ScriptSet::new());
        let masters: Vec<Arc<Master>> = config
            .masters
            .iter()
            .enumerate()
            .map(|(i, mc)| {
                Master::spawn(
                    i,
                    mc.clone(),
                    config.master.clone(),
                    config.limits.max_nesting,
                    scripts.clone(),
                    metrics.master(&mc.address),
                )
            })
            .collect();
        let engine = Arc::new(Engine::new(
            masters,
            config.lock.clone(),
            config.master.timeout,
            scripts,
            metrics.clone(),
        ));

        let stop_background = CancellationToken::new();
        let draining = Arc::new(AtomicBool::new(false));
        tokio::spawn(recovery::run(engine.clone(), stop_background.clone()));
        if let Some(l) = admin_listener {
            tokio::spawn(admin::serve(
                l,
                metrics.clone(),
                Arc::new(EngineReadiness {
                    engine: engine.clone(),
                    draining: draining.clone(),
                }),
                stop_background.clone(),
            ));
        }

        let (max_clients, capped) = match limits::nofile_limit() {
            Some(n) => {
                limits::effective_max_clients(config.limits.max_clients, n, config.masters.len())
            }
            None => (config.limits.max_clients, false),
        };
        if capped {
            warn!(
                configured = config.limits.max_clients,
                effective = max_clients,
                nofile = limits::nofile_limit().unwrap_or(0),
                "limits.max_clients is above what the open-files limit (ulimit -n) allows; \
                 capped"
            );
        }
        let command_counters = COUNTED.iter().map(|n| (*n, metrics.command(n))).collect();
        let shared = Arc::new(Shared {
            config: Arc::new(config),
            engine,
            other_counter: metrics.command("other"),
            metrics,
            clients: DashMap::new(),
            started: Instant::now(),
            local_addr,
            max_clients,
            next_id: AtomicU64::new(1),
            commands_processed: AtomicU64::new(0),
            command_counters,
        });
        let stop_accepting = CancellationToken::new();
        let stop_connections = CancellationToken::new();
        let connections = TaskTracker::new();
        tokio::spawn(accept_loop(
            listener,
            shared.clone(),
            stop_accepting.clone(),
            stop_connections.clone(),
            connections.clone(),
        ));
        info!(listen = %local_addr, admin = ?admin_addr, masters = shared.engine.masters().len(),
              quorum = shared.engine.quorum(), "lockgate started");
        Ok(Gateway {
            shared,
            admin_addr,
            stop_accepting,
            stop_connections,
            stop_background,
            connections,
            draining,
        })
    }

    /// The bound client address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The bound admin address, if the admin listener is enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The lock engine (tests and the chaos suite use its hooks).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.shared.engine
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Waits until a quorum of masters is connected and carries a metadata
    /// record, or `timeout` passes; returns whether it is ready.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let give_up = Instant::now() + timeout;
        loop {
            if self.shared.engine.ready_masters() >= self.shared.engine.quorum() {
                return true;
            }
            if Instant::now() >= give_up {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Turns `/readyz` to 503, stops accepting, lets in-flight requests
    /// finish within `grace`, then closes client and master connections.
    /// The admin listener answers until the very end, so health checkers
    /// see "draining" rather than a refused connection.
    pub async fn shutdown(self, grace: Duration) {
        info!("shutting down: not ready, no new connections");
        self.draining.store(true, Ordering::Relaxed);
        self.stop_accepting.cancel();
        self.stop_connections.cancel();
        self.connections.close();
        if tokio::time::timeout(grace, self.connections.wait())
            .await
            .is_err()
        {
            warn!(
                remaining = self.connections.len(),
                "grace period over; closing connections with requests in flight"
            );
        }
        self.stop_background.cancel();
        for m in self.shared.engine.masters() {
            m.shutdown();
        }
        info!("lockgate stopped");
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop_accepting: CancellationToken,
    stop_connections: CancellationToken,
    tracker: TaskTracker,
) {
    let max_clients = shared.max_clients;
    loop {
        let accepted = tokio::select! {
            _ = stop_accepting.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((mut sock, peer)) => {
                shared.metrics.client_connections_total.inc();
                // The tracker counts a connection from the moment it is
                // spawned; `clients` only once its task has run, which lets
                // a burst of connects overshoot.
                if tracker.len() >= max_clients {
                    shared.metrics.client_rejected.inc();
                    shared.metrics.limit_hit(Limit::MaxClients);
                    // Redis's own words, so clients recognise the condition.
                    let _ = sock
                        .write_all(b"-ERR max number of clients reached\r\n")
                        .await;
                    continue;
                }
                let _ = sock.set_nodelay(true);
                let id = shared.next_client_id();
                tracker.spawn(connection::run(
                    sock,
                    peer,
                    id,
                    shared.clone(),
                    stop_connections.clone(),
                ));
            }
            Err(e) => {
                // Usually EMFILE: back off instead of spinning on accept.
                error!(cause = %e, "failed to accept a client connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
