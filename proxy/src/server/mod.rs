//! The gateway process: binds the client and admin listeners, starts the
//! masters, the lock engine and its amnesia guard, runs the accept loop, and
//! drains on shutdown.
//!
//! Two client listeners may run side by side: the plain one (`listen`) and
//! the TLS one (`[tls] listen`). Each has its own accept loop; a TLS
//! handshake runs inside the connection's own task under a deadline, never
//! in the accept loop, so a client that stalls its handshake holds up
//! nobody.
//!
//! - [`connection`]: one task per client connection (pipelining, ordering).
//! - [`local`]: replies to the commands the gateway answers itself.
//! - [`respond`]: the writer's validity re-check of a grant before its
//!   reply is encoded.
//! - `compat`: the catalogued client-library scripts and BLPOP, run on
//!   the plain lock. The lock kinds' commands run in [`crate::kinds`].
//! - [`auth`]: pre-auth limits, failed-AUTH rate limit, the ACL gate.
//! - [`state`]: what the server keeps per connection (protocol state,
//!   the `CLIENT LIST` entry), which `connection`, `local` and `auth` share.
//! - [`limits`]: per-connection deadlines, the output cap, and the
//!   file-descriptor cap on `max_clients`.
//! - [`reload`]: what a live configuration reload may change.
//!
//! The configuration in force is held in an `ArcSwap` behind
//! [`Shared::config`]: a reload replaces it whole, and every reader sees
//! either the old or the new one, never a mix.

pub mod auth;
mod compat;
pub mod connection;
pub mod limits;
pub mod local;
pub mod reload;
pub mod respond;
pub mod state;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use dashmap::DashMap;
use prometheus::IntCounter;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::admin::{self, Readiness};
use crate::config::{Config, ConfigError, MasterConfig};
use crate::kinds::holds::Ledger;
use crate::lock::{recovery, Engine};
use crate::master::{Master, MasterSet, MasterTlsClient};
use crate::metrics::{Limit, Metrics};
use crate::scripts::ScriptSet;

pub use reload::ReloadError;
pub use state::ClientEntry;

/// Where a reload gets its configuration: the binary re-reads the file and
/// environment it started with.
pub type ConfigSource = Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;
/// Applies a new log filter (a tracing_subscriber reload handle).
pub type LogLevelHook = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// How the binary lets the gateway reload itself.
pub struct ReloadHooks {
    pub source: ConfigSource,
    pub log_level: Option<LogLevelHook>,
}

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

/// State shared by every connection of one gateway.
pub struct Shared {
    config: ArcSwap<Config>,
    reload_hooks: OnceLock<ReloadHooks>,
    /// Serialises reloads, so two cannot interleave their compare and swap.
    reloading: Mutex<()>,
    pub engine: Arc<Engine>,
    pub metrics: Metrics,
    pub clients: DashMap<u64, Arc<ClientEntry>>,
    /// What each user holds over all its connections, against
    /// `limits.max_holds_per_user`; `None` is the default user. Keyed by
    /// configured user names only, so it stays as small as the user list.
    user_holds: DashMap<Option<String>, Arc<Ledger>>,
    pub started: Instant,
    pub local_addr: SocketAddr,
    /// The most clients the open-files limit leaves room for; the
    /// configured `limits.max_clients` (reloadable) is capped by it.
    fd_room: usize,
    next_id: AtomicU64,
    pub commands_processed: AtomicU64,
    command_counters: Vec<(&'static str, IntCounter)>,
    other_counter: IntCounter,
}

// === impl Shared ===

impl Shared {
    /// The state of a gateway about to serve; the command counters are
    /// resolved here, once, so counting a command never allocates.
    fn new(
        config: Config,
        engine: Arc<Engine>,
        metrics: Metrics,
        local_addr: SocketAddr,
        fd_room: usize,
    ) -> Self {
        // Every registry row with its own label, resolved up front; anything
        // else is `other`, so the label set stays bounded whatever clients
        // send.
        let command_counters = crate::command::registry::COMMANDS
            .iter()
            .filter(|c| c.metric == crate::command::registry::Metric::Own)
            .map(|c| (c.name, metrics.command(c.name)))
            .collect();
        Shared {
            config: ArcSwap::from_pointee(config),
            reload_hooks: OnceLock::new(),
            reloading: Mutex::new(()),
            engine,
            other_counter: metrics.command("other"),
            metrics,
            clients: DashMap::new(),
            user_holds: DashMap::new(),
            started: Instant::now(),
            local_addr,
            fd_room,
            next_id: AtomicU64::new(1),
            commands_processed: AtomicU64::new(0),
            command_counters,
        }
    }

    /// The holds ledger of `user` (`None`: the default user), shared by
    /// all its connections.
    pub fn user_holds(&self, user: Option<&str>) -> Arc<Ledger> {
        let key = user.map(str::to_owned);
        if let Some(l) = self.user_holds.get(&key) {
            return l.clone();
        }
        self.user_holds.entry(key).or_default().clone()
    }

    /// `limits.max_clients` in force, capped by the open-files limit (INFO
    /// shows it).
    pub fn max_clients(&self) -> usize {
        self.config().limits.max_clients.min(self.fd_room)
    }

    /// The configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Validates `new`, checks that every change may be applied live, and
    /// swaps it in. Returns the keys that changed.
    ///
    /// # Errors
    /// [`ReloadError`] naming the key; nothing is applied then.
    pub fn reload(&self, new: Config) -> Result<Vec<&'static str>, ReloadError> {
        let r = self.apply(new);
        let result = if r.is_ok() { "ok" } else { "error" };
        self.metrics
            .config_reloads
            .with_label_values(&[result])
            .inc();
        match &r {
            Ok(changed) => info!(?changed, "configuration reloaded"),
            Err(e) => warn!(cause = %e, "configuration reload refused"),
        }
        r
    }

    fn apply(&self, new: Config) -> Result<Vec<&'static str>, ReloadError> {
        let new = new.validate()?;
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.config();
        let changed = reload::plan(&old, &new)?;
        if changed.contains(&"log_level") {
            if let Some(hook) = self.reload_hooks.get().and_then(|h| h.log_level.as_ref()) {
                hook(&new.log_level).map_err(|reason| {
                    ReloadError::Invalid(ConfigError::Invalid {
                        key: "log_level".into(),
                        reason,
                    })
                })?;
            }
        }
        if changed.contains(&"master.timeout_ms") {
            self.engine.set_timeout(new.master.timeout);
        }
        for w in new.warnings() {
            warn!("{w}");
        }
        self.config.store(Arc::new(new));
        Ok(changed)
    }

    /// Re-reads the configuration source the binary registered and applies
    /// it (SIGHUP, `POST /reload`).
    ///
    /// # Errors
    /// [`ReloadError::NoSource`] without a registered source, otherwise as
    /// [`Shared::reload`].
    pub fn reload_from_source(&self) -> Result<Vec<&'static str>, ReloadError> {
        let Some(hooks) = self.reload_hooks.get() else {
            self.metrics
                .config_reloads
                .with_label_values(&["error"])
                .inc();
            return Err(ReloadError::NoSource);
        };
        match (hooks.source)() {
            Ok(c) => self.reload(c),
            Err(e) => {
                self.metrics
                    .config_reloads
                    .with_label_values(&["error"])
                    .inc();
                warn!(cause = %e, "configuration reload refused");
                Err(ReloadError::Invalid(e))
            }
        }
    }

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

// === impl EngineReadiness ===

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

    fn masters(&self) -> &[Arc<Master>] {
        self.engine.masters()
    }
}

/// Lets the admin listener trigger and guard reloads.
struct SharedReloader(Arc<Shared>);

// === impl SharedReloader ===

impl admin::Reloader for SharedReloader {
    fn reload(&self) -> Result<String, String> {
        match self.0.reload_from_source() {
            Ok(changed) if changed.is_empty() => Ok("reloaded; nothing changed\n".into()),
            Ok(changed) => Ok(format!("reloaded; changed: {}\n", changed.join(", "))),
            Err(e) => Err(format!("{e}\n")),
        }
    }

    fn guard(&self, bearer: Option<&[u8]>) -> Result<(), admin::GuardError> {
        let cfg = self.0.config();
        match (&cfg.admin_token, bearer) {
            (Some(t), Some(b)) => {
                let ok = crate::acl::digest_eq(
                    &crate::acl::sha256(t.as_bytes()),
                    &crate::acl::sha256(b),
                );
                if ok {
                    Ok(())
                } else {
                    Err(admin::GuardError::Unauthorized)
                }
            }
            (Some(_), None) => Err(admin::GuardError::Unauthorized),
            (None, _) if crate::config::is_loopback_listen(&cfg.admin_listen) => Ok(()),
            (None, _) => Err(admin::GuardError::NeedsToken),
        }
    }
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    tls_addr: Option<SocketAddr>,
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
        // Built before anything is bound: a bad file is a config error.
        let server_tls = config
            .tls_server_config()
            .map_err(|e| StartError::Config(e.to_string()))?;
        let master_tls = config
            .master_tls_config()
            .map_err(|e| StartError::Config(e.to_string()))?;
        let listeners = Listeners::bind(&config, server_tls).await?;

        let metrics = Metrics::new();
        let engine = start_engine(&config, master_tls.as_ref(), &metrics)?;
        crate::master::refuse_duplicates(engine.masters(), &config.master)
            .await
            .map_err(StartError::Config)?;
        let stop_background = CancellationToken::new();
        tokio::spawn(recovery::run(engine.clone(), stop_background.clone()));
        let fd_room = fd_room(&config);
        let shared = Arc::new(Shared::new(
            config,
            engine,
            metrics,
            listeners.local_addr,
            fd_room,
        ));

        let gateway = Gateway {
            shared,
            tls_addr: listeners.tls_addr,
            admin_addr: listeners.admin_addr,
            stop_accepting: CancellationToken::new(),
            stop_connections: CancellationToken::new(),
            stop_background,
            connections: TaskTracker::new(),
            draining: Arc::new(AtomicBool::new(false)),
        };
        gateway.serve(listeners);
        info!(listen = %gateway.shared.local_addr, tls_listen = ?gateway.tls_addr,
              admin = ?gateway.admin_addr, masters = gateway.shared.engine.masters().len(),
              quorum = gateway.shared.engine.quorum(), "lockgate started");
        Ok(gateway)
    }

    /// Starts the admin listener's server and one accept loop per client
    /// listener.
    fn serve(&self, listeners: Listeners) {
        if let Some(l) = listeners.admin {
            tokio::spawn(admin::serve(
                l,
                self.shared.metrics.clone(),
                Arc::new(EngineReadiness {
                    engine: self.shared.engine.clone(),
                    draining: self.draining.clone(),
                }),
                Arc::new(SharedReloader(self.shared.clone())),
                self.stop_background.clone(),
            ));
        }
        if let Some(listener) = listeners.plain {
            self.spawn_accept_loop(listener, None);
        }
        if let Some((listener, tls)) = listeners.tls {
            self.spawn_accept_loop(listener, Some(Arc::new(tls)));
        }
    }

    fn spawn_accept_loop(&self, listener: TcpListener, tls: Option<Arc<TlsListener>>) {
        tokio::spawn(accept_loop(
            listener,
            tls,
            self.shared.clone(),
            self.stop_accepting.clone(),
            self.stop_connections.clone(),
            self.connections.clone(),
        ));
    }

    /// The bound plain client address (useful with port 0), or the TLS
    /// one when the plain port is off.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The bound TLS client address, if the TLS listener is enabled.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The bound admin address, if the admin listener is enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        self.shared.config()
    }

    /// Applies a new configuration live; see [`reload`] for what may change.
    ///
    /// # Errors
    /// [`ReloadError`] naming the key; nothing is applied then.
    pub fn reload(&self, new: Config) -> Result<Vec<&'static str>, ReloadError> {
        self.shared.reload(new)
    }

    /// Re-reads the registered configuration source and applies it.
    ///
    /// # Errors
    /// As [`Gateway::reload`], or [`ReloadError::NoSource`].
    pub fn reload_from_source(&self) -> Result<Vec<&'static str>, ReloadError> {
        self.shared.reload_from_source()
    }

    /// Registers how SIGHUP and `POST /reload` re-read the configuration;
    /// only the first call counts.
    pub fn set_reload_hooks(&self, hooks: ReloadHooks) {
        let _ = self.shared.reload_hooks.set(hooks);
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

/// The TLS side of a client listener.
struct TlsListener {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

/// Every socket a gateway listens on, bound before anything else starts,
/// so a port in use fails the start before any master is dialled.
struct Listeners {
    /// The plain client listener; `None` when `listen` is empty.
    plain: Option<TcpListener>,
    tls: Option<(TcpListener, TlsListener)>,
    admin: Option<TcpListener>,
    /// The plain address, or the TLS one when the plain port is off.
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
}

// === impl Listeners ===

impl Listeners {
    /// Binds the plain, TLS and admin listeners the configuration asks for,
    /// in that order.
    async fn bind(
        config: &Config,
        server_tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Listeners, StartError> {
        let plain = if config.listen.is_empty() {
            None // plain port off; validation demands a TLS listener then
        } else {
            Some(bind(&config.listen).await?)
        };
        let tls = match (&config.tls, server_tls) {
            (Some(t), Some(server_config)) => Some((
                bind(&t.listen).await?,
                TlsListener {
                    acceptor: TlsAcceptor::from(server_config),
                    handshake_timeout: t.handshake_timeout,
                },
            )),
            _ => None,
        };
        let tls_addr = tls.as_ref().and_then(|(l, _)| l.local_addr().ok());
        let local_addr = match (&plain, tls_addr) {
            (Some(l), _) => l.local_addr().map_err(|source| StartError::Bind {
                addr: config.listen.clone(),
                source,
            })?,
            (None, Some(a)) => a,
            (None, None) => {
                return Err(StartError::Config(
                    "no client listener: listen is empty and tls.listen is not set".into(),
                ))
            }
        };
        let admin = if config.admin_listen.is_empty() {
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
        let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
        Ok(Listeners {
            plain,
            tls,
            admin,
            local_addr,
            tls_addr,
            admin_addr,
        })
    }
}

/// Spawns one connection task per configured master, and the engine that
/// fans lock operations out to them.
fn start_engine(
    config: &Config,
    master_tls: Option<&Arc<rustls::ClientConfig>>,
    metrics: &Metrics,
) -> Result<Arc<Engine>, StartError> {
    let scripts = Arc::new(ScriptSet::new());
    let set = MasterSet::new(
        config.master.clone(),
        config.limits.max_nesting,
        scripts.clone(),
    );
    let masters: Vec<Arc<Master>> = config
        .masters
        .iter()
        .enumerate()
        .map(|(i, mc)| {
            Ok(set.spawn(
                i,
                mc.clone(),
                metrics.master(&mc.address),
                master_tls_client(config, master_tls, mc)?,
            ))
        })
        .collect::<Result<_, StartError>>()?;
    Ok(Arc::new(Engine::new(
        masters,
        config.lock.clone(),
        config.master.timeout,
        scripts,
        metrics.clone(),
    )))
}

/// The TLS client side for master `mc`, when it is reached over TLS.
fn master_tls_client(
    config: &Config,
    master_tls: Option<&Arc<rustls::ClientConfig>>,
    mc: &MasterConfig,
) -> Result<Option<MasterTlsClient>, StartError> {
    match (master_tls, mc.tls) {
        (Some(config_tls), true) => {
            let server_name =
                crate::tls::server_name(config.master_tls.server_name.as_deref(), &mc.address)
                    .map_err(|e| StartError::Config(e.to_string()))?;
            Ok(Some(MasterTlsClient {
                config: config_tls.clone(),
                server_name,
            }))
        }
        _ => Ok(None),
    }
}

/// The most clients the open-files limit leaves room for, warning when it
/// caps the configured `limits.max_clients`.
fn fd_room(config: &Config) -> usize {
    let fd_room = limits::nofile_limit().map_or(usize::MAX, |n| {
        limits::effective_max_clients(usize::MAX, n, config.masters.len()).0
    });
    let max_clients = config.limits.max_clients.min(fd_room);
    if max_clients < config.limits.max_clients {
        warn!(
            configured = config.limits.max_clients,
            effective = max_clients,
            nofile = limits::nofile_limit().unwrap_or(0),
            "limits.max_clients is above what the open-files limit (ulimit -n) allows; \
             capped"
        );
    }
    fd_room
}

async fn bind(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<TlsListener>>,
    shared: Arc<Shared>,
    stop_accepting: CancellationToken,
    stop_connections: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        // Read per connection, so a reloaded limit applies at once.
        let max_clients = shared.max_clients();
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
                    // A TLS client could not read them in clear text, so it
                    // only sees the connection close.
                    if tls.is_none() {
                        let _ = sock
                            .write_all(b"-ERR max number of clients reached\r\n")
                            .await;
                    }
                    continue;
                }
                let _ = sock.set_nodelay(true);
                let id = shared.next_client_id();
                match &tls {
                    None => tracker.spawn(connection::run(
                        sock,
                        peer,
                        id,
                        false,
                        shared.clone(),
                        stop_connections.clone(),
                    )),
                    Some(tls) => tracker.spawn(tls_connection(
                        tls.clone(),
                        sock,
                        peer,
                        id,
                        shared.clone(),
                        stop_connections.clone(),
                    )),
                };
            }
            Err(e) => {
                // Usually EMFILE: back off instead of spinning on accept.
                error!(cause = %e, "failed to accept a client connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Completes the TLS handshake under its deadline, then serves the client
/// like any other. A failed or stalled handshake is counted and dropped;
/// it is logged at debug level only, since load balancer probes and port
/// scanners cause them all the time.
async fn tls_connection(
    tls: Arc<TlsListener>,
    sock: tokio::net::TcpStream,
    peer: SocketAddr,
    id: u64,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let handshake = tokio::time::timeout(tls.handshake_timeout, tls.acceptor.accept(sock));
    let failures = &shared.metrics.tls_handshake_failures;
    let stream = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = handshake => match r {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                failures[1].inc();
                debug!(%peer, cause = %e, "client TLS handshake failed");
                return;
            }
            Err(_) => {
                failures[0].inc();
                debug!(%peer, "client TLS handshake timed out");
                return;
            }
        },
    };
    connection::run(stream, peer, id, true, shared, shutdown).await;
}
