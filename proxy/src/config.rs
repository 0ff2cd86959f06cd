//! Configuration: the TOML schema, `LOCKGATE_*` environment overrides and
//! validation. Every duration is held as a [`Duration`]; milliseconds appear
//! only in the file's key names.
//!
//! (Interface fixed by the core; validation/env/TOML loading filled in by the
//! config work.)

use std::time::Duration;

/// One Redis master the gateway votes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterConfig {
    /// `host:port`; the host is re-resolved on every reconnect.
    pub address: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Reserved for TLS towards masters (issue 7); `true` is rejected for now.
    pub tls: bool,
}

/// What the gateway does for a deployment where fewer than a quorum of
/// masters carry the metadata record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    /// Wait out the quarantine period before initialising (production).
    Wait,
    /// Initialise at once (dev mode and tests, whose masters are brand new).
    Immediate,
}

/// Client-side protocol limits. Defaults are in [`Limits::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest single request frame, in bytes, including headers.
    pub max_frame_bytes: usize,
    /// Largest bulk string in a request.
    pub max_bulk_bytes: usize,
    /// Most arguments in one request.
    pub max_args: usize,
    /// Deepest aggregate nesting accepted anywhere (client and master side).
    pub max_nesting: usize,
    /// Longest inline (plain-text) command line.
    pub max_inline_bytes: usize,
    /// Most client connections at once.
    pub max_clients: usize,
    /// Most requests from one connection being worked on at once.
    pub max_pipeline: usize,
    /// Longest lock key, in bytes.
    pub max_key_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 8 * 1024 * 1024,
            max_bulk_bytes: 4 * 1024 * 1024,
            max_args: 1024,
            max_nesting: 8,
            max_inline_bytes: 64 * 1024,
            max_clients: 10_000,
            max_pipeline: 1024,
            max_key_bytes: 64 * 1024,
        }
    }
}

/// Everything the quorum engine needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct LockConfig {
    pub drift_factor: f64,
    pub drift_constant: Duration,
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    /// Longest `WAIT` a client may ask for.
    pub max_wait: Duration,
    /// Prefix of every key the gateway owns besides the lock keys themselves
    /// (fence registers, the master metadata record).
    pub key_prefix: String,
    /// Longest an acquire may take end to end; with `max_ttl` it sets the
    /// quarantine of a master that restarted empty.
    pub max_acquire_time: Duration,
    pub bootstrap: Bootstrap,
    /// `SET key value NX` with no expiry: `true` gives it `max_ttl`, `false`
    /// refuses it with an error.
    pub set_without_ttl_uses_max: bool,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            drift_factor: 0.01,
            drift_constant: Duration::from_millis(2),
            min_ttl: Duration::from_millis(10),
            max_ttl: Duration::from_secs(3600),
            max_wait: Duration::from_secs(60),
            key_prefix: "lockgate:".to_string(),
            max_acquire_time: Duration::from_secs(1),
            bootstrap: Bootstrap::Wait,
            set_without_ttl_uses_max: true,
        }
    }
}

/// Master connection behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterTuning {
    /// Deadline of one request to one master.
    pub timeout: Duration,
    /// Connect (and handshake) deadline.
    pub connect_timeout: Duration,
    /// Consecutive timeouts after which a master is marked down.
    pub down_after_timeouts: u32,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Requests queued or in flight to one master before new ones fail fast.
    pub max_inflight: usize,
}

impl Default for MasterTuning {
    fn default() -> Self {
        MasterTuning {
            timeout: Duration::from_millis(10),
            connect_timeout: Duration::from_millis(500),
            down_after_timeouts: 3,
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(1),
            max_inflight: 65_536,
        }
    }
}

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: String,
    pub admin_listen: String,
    pub masters: Vec<MasterConfig>,
    pub master: MasterTuning,
    pub lock: LockConfig,
    pub limits: Limits,
    /// Password clients must send with AUTH (issue 7 extends this to users).
    pub requirepass: Option<String>,
    pub log_level: String,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:6380".to_string(),
            admin_listen: "127.0.0.1:9380".to_string(),
            masters: Vec::new(),
            master: MasterTuning::default(),
            lock: LockConfig::default(),
            limits: Limits::default(),
            requirepass: None,
            log_level: "info".to_string(),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Majority quorum over the configured masters.
    pub fn quorum(&self) -> usize {
        self.masters.len() / 2 + 1
    }
}
