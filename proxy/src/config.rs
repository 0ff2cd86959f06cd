//! Configuration: the TOML schema, `LOCKGATE_*` environment overrides and
//! validation. Every duration is held as a [`Duration`]; milliseconds appear
//! only in the file's key names.
//!
//! (Interface fixed by the core; validation/env/TOML loading filled in by the
//! config work.)

use std::sync::Arc;
use std::time::Duration;

/// One Redis master the gateway votes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterConfig {
    /// `host:port`; the host is re-resolved on every reconnect.
    pub address: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Reach this master over TLS, with the settings of [`Config::master_tls`].
    pub tls: bool,
}

impl MasterConfig {
    /// A master reached at `address` with no credentials.
    pub fn plain(address: impl Into<String>) -> Self {
        MasterConfig {
            address: address.into(),
            username: None,
            password: None,
            tls: false,
        }
    }
}

/// A named client user (`[[users]]`), as in Redis ACLs.
#[derive(Clone, PartialEq, Eq)]
pub struct UserConfig {
    pub name: String,
    /// SHA-256 of the password; the password itself is never stored.
    pub password_sha256: [u8; 32],
    /// Families it may run besides the connection commands.
    pub commands: Vec<crate::acl::Family>,
    /// Glob patterns; every key a command touches must match one.
    pub keys: Vec<String>,
    pub enabled: bool,
}

impl std::fmt::Debug for UserConfig {
    // The hash is a password equivalent for offline guessing: keep it out
    // of logs and error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("name", &self.name)
            .field("password_sha256", &"<redacted>")
            .field("commands", &self.commands)
            .field("keys", &self.keys)
            .field("enabled", &self.enabled)
            .finish()
    }
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
    /// A connection with nothing in flight, nothing buffered and no byte
    /// received for this long is closed; `None` (0 in the file) never.
    pub idle_timeout: Option<Duration>,
    /// Once the first byte of a request has arrived, the whole request must
    /// arrive within this (slowloris); `None` (0 in the file) never.
    pub partial_frame_timeout: Option<Duration>,
    /// Most reply bytes one connection may have waiting to be written; a
    /// client past it (one that does not read) is disconnected.
    pub max_output_buffer_bytes: usize,
    /// Longest a write to a client may make no progress while replies are
    /// waiting; `None` (0 in the file) never.
    pub write_timeout: Option<Duration>,
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
            // Off, as in Redis (`timeout 0`): pooled lock clients sit idle
            // between operations and several libraries do not reconnect when
            // the server closes; max_clients bounds what idle clients cost,
            // and the partial-frame deadline covers stalled requests.
            idle_timeout: None,
            partial_frame_timeout: Some(Duration::from_secs(10)),
            // Lock replies are tens of bytes: 16 MiB is thousands of
            // pipelined replies, yet bounds a client that never reads.
            max_output_buffer_bytes: 16 * 1024 * 1024,
            write_timeout: Some(Duration::from_secs(30)),
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

/// The TLS client listener (`[tls]`). Present only when `tls.listen` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListen {
    pub listen: String,
    /// The server certificate chain (PEM), leaf first.
    pub cert_file: String,
    pub key_file: String,
    /// When set, clients must present a certificate issued by this CA (mTLS).
    pub client_ca_file: Option<String>,
    /// Deadline of one client's TLS handshake; a client that stalls it is
    /// dropped (and counted) without holding up anybody else.
    pub handshake_timeout: Duration,
}

/// TLS towards masters (`[master_tls]`), used by every master with
/// `tls = true`. One section for all masters: they are one deployment,
/// normally signed by one CA, and the gateway has one client identity. The
/// name each certificate must carry differs per master, and defaults to the
/// host part of its address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MasterTls {
    /// CA that signed the masters' certificates (PEM); required when any
    /// master uses TLS.
    pub ca_file: Option<String>,
    /// Client certificate and key, for masters run with
    /// `tls-auth-clients yes`; both or neither.
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// Name every master's certificate is checked against, instead of the
    /// host of its address (for masters addressed by IP whose certificates
    /// carry only a DNS name).
    pub server_name: Option<String>,
}

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The plain-text client listener; empty turns it off (allowed only
    /// with a TLS listener).
    pub listen: String,
    pub admin_listen: String,
    pub masters: Vec<MasterConfig>,
    /// The TLS client listener, if any.
    pub tls: Option<TlsListen>,
    pub master_tls: MasterTls,
    pub master: MasterTuning,
    pub lock: LockConfig,
    pub limits: Limits,
    /// Password of the `default` user, as Redis's `requirepass`.
    pub requirepass: Option<String>,
    /// Named users (`[[users]]`); any of them makes authentication required.
    pub users: Vec<UserConfig>,
    /// Refuse to listen on a non-loopback address without authentication.
    pub protected_mode: bool,
    /// Bearer token that `POST /reload` on the admin listener requires.
    pub admin_token: Option<String>,
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
            tls: None,
            master_tls: MasterTls::default(),
            master: MasterTuning::default(),
            lock: LockConfig::default(),
            limits: Limits::default(),
            requirepass: None,
            users: Vec::new(),
            protected_mode: true,
            admin_token: None,
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

// === loading: TOML file, environment, validation ===

use serde::Deserialize;

/// A configuration the operator got wrong; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(String),
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaster {
    address: String,
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    tls: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    listen: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_ca_file: Option<String>,
    handshake_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMasterTls {
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    server_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMasterTuning {
    timeout_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    down_after_timeouts: Option<u32>,
    reconnect_min_ms: Option<u64>,
    reconnect_max_ms: Option<u64>,
    max_inflight: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    drift_factor: Option<f64>,
    drift_constant_ms: Option<u64>,
    min_ttl_ms: Option<u64>,
    max_ttl_ms: Option<u64>,
    max_wait_ms: Option<u64>,
    key_prefix: Option<String>,
    max_acquire_time_ms: Option<u64>,
    bootstrap: Option<String>,
    set_without_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_frame_bytes: Option<usize>,
    max_bulk_bytes: Option<usize>,
    max_args: Option<usize>,
    max_nesting: Option<usize>,
    max_inline_bytes: Option<usize>,
    max_clients: Option<usize>,
    max_pipeline: Option<usize>,
    max_key_bytes: Option<usize>,
    idle_timeout_ms: Option<u64>,
    partial_frame_timeout_ms: Option<u64>,
    max_output_buffer_bytes: Option<usize>,
    write_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    password_sha256: String,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    keys: Vec<String>,
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    admin_listen: Option<String>,
    log_level: Option<String>,
    requirepass: Option<String>,
    protected_mode: Option<bool>,
    admin_token: Option<String>,
    #[serde(default)]
    users: Vec<RawUser>,
    shutdown_grace_ms: Option<u64>,
    #[serde(default)]
    masters: Vec<RawMaster>,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    master_tls: RawMasterTls,
    #[serde(default)]
    master: RawMasterTuning,
    #[serde(default)]
    lock: RawLock,
    #[serde(default)]
    limits: RawLimits,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A timeout key where 0 turns the timeout off.
fn ms_or_off(v: u64) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v))
}

/// Reads an environment override, parsed, naming the variable on error.
fn env_parse<T: std::str::FromStr>(
    env: &dyn Fn(&str) -> Option<String>,
    var: &str,
) -> Result<Option<T>, ConfigError> {
    match env(var) {
        None => Ok(None),
        Some(s) => s
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|_| invalid(var, format!("cannot parse {s:?}"))),
    }
}

fn user_from_raw(i: usize, u: RawUser) -> Result<UserConfig, ConfigError> {
    let key = |k: &str| format!("users[{i}].{k}");
    let hash = hex::decode(u.password_sha256.trim())
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| {
            invalid(
                &key("password_sha256"),
                "must be 64 hex digits, the SHA-256 of the password \
                 (printf %s 'password' | sha256sum)",
            )
        })?;
    let mut commands = Vec::new();
    for f in &u.commands {
        match crate::acl::Family::from_config(f) {
            Some(fam) => commands.push(fam),
            None => {
                return Err(invalid(
                    &key("commands"),
                    format!("unknown family {f:?}: use \"lock\", \"read\" or \"admin\""),
                ))
            }
        }
    }
    Ok(UserConfig {
        name: u.name,
        password_sha256: hash,
        commands,
        keys: u.keys,
        enabled: u.enabled.unwrap_or(true),
    })
}

/// Whether a `host:port` listen address is on loopback only. Hostnames
/// other than `localhost` count as non-loopback: they may resolve to
/// anything.
pub fn is_loopback_listen(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// A string key from the file, overridden by its environment variable.
fn string_key(
    file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    var: &str,
) -> Option<String> {
    env(var).or(file)
}

/// `[tls]`: active when `listen` is non-empty; the other keys are checked
/// by [`Config::validate`].
fn tls_listen(
    raw: RawTls,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<TlsListen>, ConfigError> {
    let listen = string_key(raw.listen, env, "LOCKGATE_TLS_LISTEN").unwrap_or_default();
    if listen.is_empty() {
        return Ok(None);
    }
    let mut handshake_timeout = Duration::from_secs(5);
    if let Some(v) = raw.handshake_timeout_ms {
        handshake_timeout = ms(v);
    }
    if let Some(v) = env_parse(env, "LOCKGATE_TLS_HANDSHAKE_TIMEOUT_MS")? {
        handshake_timeout = ms(v);
    }
    Ok(Some(TlsListen {
        listen,
        cert_file: string_key(raw.cert_file, env, "LOCKGATE_TLS_CERT_FILE").unwrap_or_default(),
        key_file: string_key(raw.key_file, env, "LOCKGATE_TLS_KEY_FILE").unwrap_or_default(),
        client_ca_file: string_key(raw.client_ca_file, env, "LOCKGATE_TLS_CLIENT_CA_FILE")
            .filter(|s| !s.is_empty()),
        handshake_timeout,
    }))
}

/// `[master_tls]`; empty strings (an environment variable set to "") count
/// as unset.
fn master_tls(raw: RawMasterTls, env: &dyn Fn(&str) -> Option<String>) -> MasterTls {
    let get =
        |file: Option<String>, var: &str| string_key(file, env, var).filter(|s| !s.is_empty());
    MasterTls {
        ca_file: get(raw.ca_file, "LOCKGATE_MASTER_TLS_CA_FILE"),
        cert_file: get(raw.cert_file, "LOCKGATE_MASTER_TLS_CERT_FILE"),
        key_file: get(raw.key_file, "LOCKGATE_MASTER_TLS_KEY_FILE"),
        server_name: get(raw.server_name, "LOCKGATE_MASTER_TLS_SERVER_NAME"),
    }
}

fn from_tls(e: crate::tls::TlsError) -> ConfigError {
    invalid(e.key(), e.reason())
}

impl Config {
    /// Builds the TLS listener's rustls configuration, reading its files.
    ///
    /// # Errors
    /// A file that is missing or does not parse, naming its key.
    pub fn tls_server_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, ConfigError> {
        use crate::tls::{server_config, Pem};
        let Some(t) = &self.tls else {
            return Ok(None);
        };
        for (key, v) in [
            ("tls.cert_file", &t.cert_file),
            ("tls.key_file", &t.key_file),
        ] {
            if v.is_empty() {
                return Err(invalid(key, "required when tls.listen is set"));
            }
        }
        server_config(
            Pem {
                key: "tls.cert_file",
                path: &t.cert_file,
            },
            Pem {
                key: "tls.key_file",
                path: &t.key_file,
            },
            t.client_ca_file.as_deref().map(|path| Pem {
                key: "tls.client_ca_file",
                path,
            }),
        )
        .map(Some)
        .map_err(from_tls)
    }

    /// Builds the rustls configuration of links towards masters, reading
    /// its files; `None` when no master uses TLS and no CA is configured.
    ///
    /// # Errors
    /// A missing or unparsable file, or a half-configured client identity,
    /// naming the key.
    pub fn master_tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, ConfigError> {
        use crate::tls::{client_config, Pem};
        let t = &self.master_tls;
        let any_tls = self.masters.iter().any(|m| m.tls);
        let Some(ca) = &t.ca_file else {
            if any_tls {
                return Err(invalid(
                    "master_tls.ca_file",
                    "required when a master has tls = true",
                ));
            }
            return Ok(None);
        };
        let identity = match (&t.cert_file, &t.key_file) {
            (Some(cert), Some(key)) => Some((
                Pem {
                    key: "master_tls.cert_file",
                    path: cert,
                },
                Pem {
                    key: "master_tls.key_file",
                    path: key,
                },
            )),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "master_tls.key_file",
                    "required with master_tls.cert_file",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "master_tls.cert_file",
                    "required with master_tls.key_file",
                ))
            }
        };
        client_config(
            Pem {
                key: "master_tls.ca_file",
                path: ca,
            },
            identity,
        )
        .map(Some)
        .map_err(from_tls)
    }

    /// Parses a TOML document (no environment, no validation).
    ///
    /// # Errors
    /// Unknown keys and wrongly typed values, naming the key.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Self::from_raw(raw, &|_| None)
    }

    /// Loads `path` (or only defaults when `None`), applies `LOCKGATE_*`
    /// overrides read through `env`, and validates.
    ///
    /// # Errors
    /// Unreadable file, unknown keys, impossible values; the message names
    /// the key.
    pub fn load(
        path: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Self::load_unvalidated(path, env)?.validate()
    }

    /// [`Config::load`] without the final validation, so command-line flags
    /// can still be applied before it.
    ///
    /// # Errors
    /// Unreadable file, unknown keys, unparsable values.
    pub fn load_unvalidated(
        path: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_string(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse(format!("{p}: {e}")))?
            }
            None => RawConfig::default(),
        };
        Self::from_raw(raw, env)
    }

    fn from_raw(
        raw: RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        let e = |k: &str| env(k);
        macro_rules! set {
            ($dst:expr, $file:expr, $var:literal) => {
                if let Some(v) = $file {
                    $dst = v;
                }
                if let Some(v) = env_parse(&e, $var)? {
                    $dst = v;
                }
            };
            ($dst:expr, $file:expr, $var:literal, $conv:expr) => {
                if let Some(v) = $file {
                    $dst = $conv(v);
                }
                if let Some(v) = env_parse(&e, $var)? {
                    $dst = $conv(v);
                }
            };
        }
        set!(c.listen, raw.listen, "LOCKGATE_LISTEN", |v: String| v);
        set!(
            c.admin_listen,
            raw.admin_listen,
            "LOCKGATE_ADMIN_LISTEN",
            |v: String| v
        );
        set!(
            c.log_level,
            raw.log_level,
            "LOCKGATE_LOG_LEVEL",
            |v: String| v
        );
        set!(
            c.shutdown_grace,
            raw.shutdown_grace_ms,
            "LOCKGATE_SHUTDOWN_GRACE_MS",
            ms
        );
        c.requirepass = raw.requirepass;
        if let Some(p) = env("LOCKGATE_REQUIREPASS") {
            c.requirepass = Some(p);
        }
        set!(
            c.protected_mode,
            raw.protected_mode,
            "LOCKGATE_PROTECTED_MODE"
        );
        c.admin_token = raw.admin_token;
        if let Some(t) = env("LOCKGATE_ADMIN_TOKEN") {
            c.admin_token = Some(t);
        }
        for (i, u) in raw.users.into_iter().enumerate() {
            c.users.push(user_from_raw(i, u)?);
        }
        c.masters = raw
            .masters
            .into_iter()
            .map(|m| MasterConfig {
                address: m.address,
                username: m.username,
                password: m.password,
                tls: m.tls,
            })
            .collect();
        if let Some(list) = env("LOCKGATE_MASTERS") {
            c.masters = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(MasterConfig::plain)
                .collect();
        }
        // One ACL user on every master is the common case, and lets a
        // Kubernetes Secret or a systemd credential supply the password
        // without writing it into the configuration file.
        if let Some(u) = env("LOCKGATE_MASTERS_USERNAME") {
            for m in &mut c.masters {
                m.username = Some(u.clone());
            }
        }
        if let Some(p) = env("LOCKGATE_MASTERS_PASSWORD") {
            for m in &mut c.masters {
                m.password = Some(p.clone());
            }
        }
        if let Some(v) = env_parse::<bool>(&e, "LOCKGATE_MASTERS_TLS")? {
            for m in &mut c.masters {
                m.tls = v;
            }
        }
        c.tls = tls_listen(raw.tls, &e)?;
        c.master_tls = master_tls(raw.master_tls, &e);
        let t = raw.master;
        set!(
            c.master.timeout,
            t.timeout_ms,
            "LOCKGATE_MASTER_TIMEOUT_MS",
            ms
        );
        set!(
            c.master.connect_timeout,
            t.connect_timeout_ms,
            "LOCKGATE_MASTER_CONNECT_TIMEOUT_MS",
            ms
        );
        set!(
            c.master.down_after_timeouts,
            t.down_after_timeouts,
            "LOCKGATE_MASTER_DOWN_AFTER_TIMEOUTS"
        );
        set!(
            c.master.reconnect_min,
            t.reconnect_min_ms,
            "LOCKGATE_MASTER_RECONNECT_MIN_MS",
            ms
        );
        set!(
            c.master.reconnect_max,
            t.reconnect_max_ms,
            "LOCKGATE_MASTER_RECONNECT_MAX_MS",
            ms
        );
        set!(
            c.master.max_inflight,
            t.max_inflight,
            "LOCKGATE_MASTER_MAX_INFLIGHT"
        );
        let l = raw.lock;
        set!(
            c.lock.drift_factor,
            l.drift_factor,
            "LOCKGATE_LOCK_DRIFT_FACTOR"
        );
        set!(
            c.lock.drift_constant,
            l.drift_constant_ms,
            "LOCKGATE_LOCK_DRIFT_CONSTANT_MS",
            ms
        );
        set!(c.lock.min_ttl, l.min_ttl_ms, "LOCKGATE_LOCK_MIN_TTL_MS", ms);
        set!(c.lock.max_ttl, l.max_ttl_ms, "LOCKGATE_LOCK_MAX_TTL_MS", ms);
        set!(
            c.lock.max_wait,
            l.max_wait_ms,
            "LOCKGATE_LOCK_MAX_WAIT_MS",
            ms
        );
        set!(
            c.lock.key_prefix,
            l.key_prefix,
            "LOCKGATE_LOCK_KEY_PREFIX",
            |v: String| v
        );
        set!(
            c.lock.max_acquire_time,
            l.max_acquire_time_ms,
            "LOCKGATE_LOCK_MAX_ACQUIRE_TIME_MS",
            ms
        );
        let mut bootstrap: Option<String> = l.bootstrap;
        if let Some(b) = env("LOCKGATE_LOCK_BOOTSTRAP") {
            bootstrap = Some(b);
        }
        if let Some(b) = bootstrap {
            c.lock.bootstrap = match b.as_str() {
                "wait" => Bootstrap::Wait,
                "immediate" => Bootstrap::Immediate,
                other => {
                    return Err(invalid(
                        "lock.bootstrap",
                        format!("must be \"wait\" or \"immediate\", not {other:?}"),
                    ))
                }
            };
        }
        let mut swt: Option<String> = l.set_without_ttl;
        if let Some(b) = env("LOCKGATE_LOCK_SET_WITHOUT_TTL") {
            swt = Some(b);
        }
        if let Some(s) = swt {
            c.lock.set_without_ttl_uses_max = match s.as_str() {
                "max_ttl" => true,
                "error" => false,
                other => {
                    return Err(invalid(
                        "lock.set_without_ttl",
                        format!("must be \"max_ttl\" or \"error\", not {other:?}"),
                    ))
                }
            };
        }
        let lim = raw.limits;
        set!(
            c.limits.max_frame_bytes,
            lim.max_frame_bytes,
            "LOCKGATE_LIMITS_MAX_FRAME_BYTES"
        );
        set!(
            c.limits.max_bulk_bytes,
            lim.max_bulk_bytes,
            "LOCKGATE_LIMITS_MAX_BULK_BYTES"
        );
        set!(c.limits.max_args, lim.max_args, "LOCKGATE_LIMITS_MAX_ARGS");
        set!(
            c.limits.max_nesting,
            lim.max_nesting,
            "LOCKGATE_LIMITS_MAX_NESTING"
        );
        set!(
            c.limits.max_inline_bytes,
            lim.max_inline_bytes,
            "LOCKGATE_LIMITS_MAX_INLINE_BYTES"
        );
        set!(
            c.limits.max_clients,
            lim.max_clients,
            "LOCKGATE_LIMITS_MAX_CLIENTS"
        );
        set!(
            c.limits.max_pipeline,
            lim.max_pipeline,
            "LOCKGATE_LIMITS_MAX_PIPELINE"
        );
        set!(
            c.limits.max_key_bytes,
            lim.max_key_bytes,
            "LOCKGATE_LIMITS_MAX_KEY_BYTES"
        );
        set!(
            c.limits.idle_timeout,
            lim.idle_timeout_ms,
            "LOCKGATE_LIMITS_IDLE_TIMEOUT_MS",
            ms_or_off
        );
        set!(
            c.limits.partial_frame_timeout,
            lim.partial_frame_timeout_ms,
            "LOCKGATE_LIMITS_PARTIAL_FRAME_TIMEOUT_MS",
            ms_or_off
        );
        set!(
            c.limits.max_output_buffer_bytes,
            lim.max_output_buffer_bytes,
            "LOCKGATE_LIMITS_MAX_OUTPUT_BUFFER_BYTES"
        );
        set!(
            c.limits.write_timeout,
            lim.write_timeout_ms,
            "LOCKGATE_LIMITS_WRITE_TIMEOUT_MS",
            ms_or_off
        );
        Ok(c)
    }

    /// Rejects impossible values, naming the key. An even number of masters
    /// is allowed (and logged as a warning by the caller via
    /// [`Config::warnings`]).
    ///
    /// # Errors
    /// The first invalid key found.
    pub fn validate(self) -> Result<Config, ConfigError> {
        if self.masters.is_empty() {
            return Err(invalid("masters", "at least one master is required"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, m) in self.masters.iter().enumerate() {
            let key = format!("masters[{i}].address");
            let Some((host, port)) = m.address.rsplit_once(':') else {
                return Err(invalid(&key, format!("{:?} is not host:port", m.address)));
            };
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(invalid(&key, format!("{:?} is not host:port", m.address)));
            }
            if !seen.insert(m.address.clone()) {
                return Err(invalid(&key, format!("{:?} is listed twice", m.address)));
            }
            if m.tls {
                crate::tls::server_name(self.master_tls.server_name.as_deref(), &m.address)
                    .map_err(|e| match e.key() {
                        "masters.address" => invalid(&key, e.reason()),
                        _ => from_tls(e),
                    })?;
            }
        }
        self.master_tls_config()?;
        self.tls_server_config()?;
        if self.listen.is_empty() && self.tls.is_none() {
            return Err(invalid(
                "listen",
                "may be empty (plain port off) only when tls.listen is set",
            ));
        }
        let tls_listen = self.tls.as_ref().map_or("", |t| t.listen.as_str());
        for (key, addr) in [
            ("listen", &self.listen),
            ("admin_listen", &self.admin_listen),
            ("tls.listen", &tls_listen.to_string()),
        ] {
            if addr.is_empty() {
                continue; // empty disables that listener
            }
            if addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(invalid(key, format!("{addr:?} is not host:port")));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let key = format!("users[{i}].name");
            if u.name.is_empty() || !u.name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(&key, "must be non-empty, without spaces"));
            }
            if !names.insert(u.name.as_str()) {
                return Err(invalid(&key, format!("user {:?} is listed twice", u.name)));
            }
            if u.name == "default" && self.requirepass.is_some() {
                return Err(invalid(
                    &key,
                    "requirepass already sets the default user's password; use one or the other",
                ));
            }
        }
        if self.requirepass.as_deref() == Some("") {
            return Err(invalid("requirepass", "must not be empty"));
        }
        if self.admin_token.as_deref() == Some("") {
            return Err(invalid("admin_token", "must not be empty"));
        }
        self.check_protected_mode()?;
        let l = &self.lock;
        if !(0.0..0.5).contains(&l.drift_factor) {
            return Err(invalid("lock.drift_factor", "must be in [0, 0.5)"));
        }
        if l.min_ttl.is_zero() {
            return Err(invalid("lock.min_ttl_ms", "must be at least 1"));
        }
        if l.min_ttl > l.max_ttl {
            return Err(invalid(
                "lock.max_ttl_ms",
                format!("must be >= lock.min_ttl_ms ({})", l.min_ttl.as_millis()),
            ));
        }
        if l.key_prefix.is_empty() {
            return Err(invalid("lock.key_prefix", "must not be empty"));
        }
        if l.max_acquire_time.is_zero() {
            return Err(invalid("lock.max_acquire_time_ms", "must be at least 1"));
        }
        if let Some(t) = &self.tls {
            if t.handshake_timeout.is_zero() {
                return Err(invalid("tls.handshake_timeout_ms", "must be at least 1"));
            }
        }
        let t = &self.master;
        for (key, d) in [
            ("master.timeout_ms", t.timeout),
            ("master.connect_timeout_ms", t.connect_timeout),
            ("master.reconnect_min_ms", t.reconnect_min),
        ] {
            if d.is_zero() {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if t.reconnect_max < t.reconnect_min {
            return Err(invalid(
                "master.reconnect_max_ms",
                "must be >= master.reconnect_min_ms",
            ));
        }
        if t.down_after_timeouts == 0 {
            return Err(invalid("master.down_after_timeouts", "must be at least 1"));
        }
        if t.max_inflight == 0 {
            return Err(invalid("master.max_inflight", "must be at least 1"));
        }
        let lim = &self.limits;
        for (key, v) in [
            ("limits.max_frame_bytes", lim.max_frame_bytes),
            ("limits.max_bulk_bytes", lim.max_bulk_bytes),
            ("limits.max_args", lim.max_args),
            ("limits.max_nesting", lim.max_nesting),
            ("limits.max_inline_bytes", lim.max_inline_bytes),
            ("limits.max_clients", lim.max_clients),
            ("limits.max_pipeline", lim.max_pipeline),
            ("limits.max_key_bytes", lim.max_key_bytes),
            (
                "limits.max_output_buffer_bytes",
                lim.max_output_buffer_bytes,
            ),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if lim.max_bulk_bytes > lim.max_frame_bytes {
            return Err(invalid(
                "limits.max_bulk_bytes",
                "must be <= limits.max_frame_bytes",
            ));
        }
        Ok(self)
    }

    /// Protected mode, as in Redis: a gateway reachable from the network
    /// with no authentication hands every lock to anyone who connects.
    ///
    /// # Errors
    /// A non-loopback `listen` with no `requirepass`, no `[[users]]` and
    /// `protected_mode` on; the message names both ways out.
    pub fn check_protected_mode(&self) -> Result<(), ConfigError> {
        if !self.protected_mode || crate::acl::required(self) {
            return Ok(());
        }
        // The plain port is open to anyone who reaches it; the TLS port
        // only when it does not verify client certificates (mTLS
        // authenticates every client by its certificate).
        let exposed = if !self.listen.is_empty() && !is_loopback_listen(&self.listen) {
            Some(("listen", self.listen.as_str()))
        } else {
            self.tls
                .as_ref()
                .filter(|t| t.client_ca_file.is_none() && !is_loopback_listen(&t.listen))
                .map(|t| ("tls.listen", t.listen.as_str()))
        };
        let Some((key, addr)) = exposed else {
            return Ok(());
        };
        Err(invalid(
            "protected_mode",
            format!(
                "refusing to listen on {addr:?} ({key}), a non-loopback address, with no \
                 authentication configured. Either set requirepass (or LOCKGATE_REQUIREPASS) or \
                 add [[users]] (or, for tls.listen, require client certificates with \
                 tls.client_ca_file), or, if the network itself is trusted, set \
                 protected_mode = false (LOCKGATE_PROTECTED_MODE=false) to opt out explicitly; \
                 or listen on 127.0.0.1"
            ),
        ))
    }

    /// Legal but questionable settings, for the operator's log.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.masters.len() % 2 == 0 {
            w.push(format!(
                "masters: {} masters (even); a quorum needs {}, so one more master adds no \
                 fault tolerance",
                self.masters.len(),
                self.quorum()
            ));
        }
        if self.master_tls.ca_file.is_some() && !self.masters.iter().any(|m| m.tls) {
            w.push(
                "master_tls is configured but no master has tls = true; every master is \
                 reached in plain text"
                    .into(),
            );
        }
        if self.lock.bootstrap == Bootstrap::Immediate {
            w.push(
                "lock.bootstrap = \"immediate\": masters without a metadata record are \
                 initialised at once; use only for brand-new masters"
                    .into(),
            );
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = include_str!("../../config/lockgate.example.toml");

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_example_file_parses_and_validates() {
        let c = Config::from_toml_str(FULL).and_then(Config::validate);
        assert!(c.is_ok(), "{c:?}");
    }

    #[test]
    fn the_examples_commented_users_block_parses_when_uncommented() {
        let text = FULL.replace("\n#~ ", "\n");
        let c = Config::from_toml_str(&text)
            .and_then(Config::validate)
            .expect("valid");
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.users[0].name, "alice");
        assert_eq!(c.users[0].keys, vec!["jobs:*".to_string()]);
        assert!(c.protected_mode);
        let plain = Config::from_toml_str(FULL).expect("valid");
        assert!(plain.users.is_empty(), "the example must not ship a user");
    }

    #[test]
    fn the_example_file_spells_out_every_limit_at_its_default() {
        let c = Config::from_toml_str(FULL).expect("parses");
        assert_eq!(c.limits, Limits::default());
        for key in [
            "idle_timeout_ms",
            "partial_frame_timeout_ms",
            "max_output_buffer_bytes",
            "write_timeout_ms",
        ] {
            assert!(
                FULL.lines().any(|l| l.starts_with(&format!("{key} = "))),
                "{key} is not in the example file"
            );
        }
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let e = Config::from_toml_str("listen = \"127.0.0.1:1\"\nlisten_port = 5\n");
        assert!(matches!(e, Err(ConfigError::Parse(m)) if m.contains("listen_port")));
        let e = Config::from_toml_str("[lock]\nmax_tll_ms = 5\n");
        assert!(matches!(e, Err(ConfigError::Parse(m)) if m.contains("max_tll_ms")));
    }

    fn with(extra: &str) -> Result<Config, ConfigError> {
        let text = format!("[[masters]]\naddress = \"127.0.0.1:7000\"\n{extra}");
        Config::from_toml_str(&text).and_then(Config::validate)
    }

    /// Top-level keys must come before the first `[[masters]]` table.
    fn top(extra: &str) -> Result<Config, ConfigError> {
        let text = format!("{extra}\n[[masters]]\naddress = \"127.0.0.1:7000\"\n");
        Config::from_toml_str(&text).and_then(Config::validate)
    }

    fn bad_key(extra: &str) -> String {
        match with(extra) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }

    #[test]
    fn invalid_values_name_their_key() {
        assert_eq!(bad_key("[lock]\ndrift_factor = 0.7\n"), "lock.drift_factor");
        assert_eq!(
            bad_key("[lock]\nmin_ttl_ms = 100\nmax_ttl_ms = 10\n"),
            "lock.max_ttl_ms"
        );
        assert_eq!(bad_key("[master]\ntimeout_ms = 0\n"), "master.timeout_ms");
        assert_eq!(bad_key("[limits]\nmax_args = 0\n"), "limits.max_args");
        assert_eq!(bad_key("[lock]\nkey_prefix = \"\"\n"), "lock.key_prefix");
        assert_eq!(
            bad_key("[[masters]]\naddress = \"127.0.0.1:7000\"\n"),
            "masters[1].address"
        );
        assert_eq!(
            bad_key("[[masters]]\naddress = \"nohost\"\n"),
            "masters[1].address"
        );
    }

    #[test]
    fn limit_timeouts_of_zero_mean_off() {
        let c = with(
            "[limits]\nidle_timeout_ms = 0\npartial_frame_timeout_ms = 0\nwrite_timeout_ms = 0\n",
        )
        .expect("valid");
        assert_eq!(c.limits.idle_timeout, None);
        assert_eq!(c.limits.partial_frame_timeout, None);
        assert_eq!(c.limits.write_timeout, None);
        let c = with("[limits]\nidle_timeout_ms = 300000\nmax_output_buffer_bytes = 4096\n")
            .expect("valid");
        assert_eq!(c.limits.idle_timeout, Some(Duration::from_secs(300)));
        assert_eq!(c.limits.max_output_buffer_bytes, 4096);
        assert_eq!(
            bad_key("[limits]\nmax_output_buffer_bytes = 0\n"),
            "limits.max_output_buffer_bytes"
        );
    }

    #[test]
    fn no_masters_is_an_error() {
        let e = Config::from_toml_str("").and_then(Config::validate);
        assert!(matches!(e, Err(ConfigError::Invalid { key, .. }) if key == "masters"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = |k: &str| match k {
            "LOCKGATE_LOCK_MAX_TTL_MS" => Some("5000".to_string()),
            "LOCKGATE_MASTERS" => Some("127.0.0.1:1, 127.0.0.1:2,127.0.0.1:3".to_string()),
            "LOCKGATE_LOCK_BOOTSTRAP" => Some("immediate".to_string()),
            _ => None,
        };
        let dir = tempfile::tempdir().ok();
        let path = dir.as_ref().map(|d| d.path().join("c.toml"));
        if let Some(p) = &path {
            let _ = std::fs::write(p, "[lock]\nmax_ttl_ms = 9000\n");
        }
        let c = Config::load(path.as_ref().and_then(|p| p.to_str()), &env);
        let c = c.expect("valid");
        assert_eq!(c.lock.max_ttl, Duration::from_secs(5));
        assert_eq!(c.masters.len(), 3);
        assert_eq!(c.lock.bootstrap, Bootstrap::Immediate);
        assert!(Config::load(None, &no_env).is_err());
    }

    #[test]
    fn a_master_password_from_the_environment_applies_to_every_master() {
        let env = |k: &str| match k {
            "LOCKGATE_MASTERS" => Some("127.0.0.1:1,127.0.0.1:2,127.0.0.1:3".to_string()),
            "LOCKGATE_MASTERS_PASSWORD" => Some("s3cret".to_string()),
            _ => None,
        };
        let c = Config::load(None, &env).expect("valid");
        assert!(c
            .masters
            .iter()
            .all(|m| m.password.as_deref() == Some("s3cret") && m.username.is_none()));
    }

    #[test]
    fn protected_mode_refuses_a_public_listen_without_authentication() {
        let e = top("listen = \"0.0.0.0:6380\"\n");
        let Err(ConfigError::Invalid { key, reason }) = e else {
            panic!("expected protected mode to refuse, got {e:?}");
        };
        assert_eq!(key, "protected_mode");
        assert!(reason.contains("requirepass"), "{reason}");
        assert!(reason.contains("[[users]]"), "{reason}");
        assert!(reason.contains("protected_mode = false"), "{reason}");
    }

    #[test]
    fn protected_mode_covers_the_tls_port_unless_it_requires_client_certificates() {
        let check = |extra: &str| {
            let text = format!(
                "listen = \"\"\n[[masters]]\naddress = \"127.0.0.1:1\"\n\
                 [tls]\nlisten = \"0.0.0.0:6390\"\ncert_file = \"c\"\nkey_file = \"k\"\n{extra}"
            );
            Config::from_toml_str(&text)
                .expect("parses")
                .check_protected_mode()
        };
        let Err(ConfigError::Invalid { key, reason }) = check("") else {
            panic!("a public TLS port without authentication must be refused");
        };
        assert_eq!(key, "protected_mode");
        assert!(reason.contains("tls.listen"), "{reason}");
        assert!(reason.contains("client_ca_file"), "{reason}");
        assert!(check("client_ca_file = \"ca\"\n").is_ok());
        // The plain port is still judged on its own.
        let text = "listen = \"0.0.0.0:6380\"\n[[masters]]\naddress = \"127.0.0.1:1\"\n\
                    [tls]\nlisten = \"127.0.0.1:6390\"\ncert_file = \"c\"\nkey_file = \"k\"\n\
                    client_ca_file = \"ca\"\n";
        assert!(Config::from_toml_str(text)
            .expect("parses")
            .check_protected_mode()
            .is_err());
    }

    #[test]
    fn protected_mode_allows_loopback_authentication_or_an_explicit_opt_out() {
        for ok in [
            "listen = \"127.0.0.1:6380\"\n",
            "listen = \"[::1]:6380\"\n",
            "listen = \"localhost:6380\"\n",
            "listen = \"0.0.0.0:6380\"\nrequirepass = \"x\"\n",
            "listen = \"0.0.0.0:6380\"\nprotected_mode = false\n",
            "listen = \"10.0.0.5:6380\"\n[[users]]\nname = \"a\"\npassword_sha256 = \"30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4\"\n",
        ] {
            assert!(top(ok).is_ok(), "{ok}: {:?}", top(ok));
        }
        assert!(top("listen = \"[::]:6380\"\n").is_err());
        assert!(top("listen = \"gateway.example:6380\"\n").is_err());
        let env = |k: &str| match k {
            "LOCKGATE_MASTERS" => Some("127.0.0.1:1".to_string()),
            "LOCKGATE_LISTEN" => Some("0.0.0.0:6380".to_string()),
            "LOCKGATE_PROTECTED_MODE" => Some("false".to_string()),
            _ => None,
        };
        assert!(Config::load(None, &env).is_ok());
    }

    #[test]
    fn loopback_detection_reads_the_host_part() {
        assert!(is_loopback_listen("127.0.0.1:0"));
        assert!(is_loopback_listen("127.1.2.3:6380"));
        assert!(is_loopback_listen("[::1]:6380"));
        assert!(!is_loopback_listen("0.0.0.0:6380"));
        assert!(!is_loopback_listen("192.168.1.4:6380"));
        assert!(!is_loopback_listen(":6380"));
    }

    #[test]
    fn tls_keys_come_from_the_file_and_the_environment() {
        let text = "[[masters]]\naddress = \"127.0.0.1:7000\"\ntls = true\n\
                    [tls]\nlisten = \"127.0.0.1:6390\"\ncert_file = \"/f/cert.pem\"\n\
                    key_file = \"/f/key.pem\"\nhandshake_timeout_ms = 750\n\
                    [master_tls]\nca_file = \"/f/ca.pem\"\nserver_name = \"redis.internal\"\n";
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).expect("write");
        let env = |k: &str| match k {
            "LOCKGATE_TLS_CLIENT_CA_FILE" => Some("/env/clients.pem".to_string()),
            "LOCKGATE_MASTER_TLS_CA_FILE" => Some("/env/ca.pem".to_string()),
            "LOCKGATE_LISTEN" => Some(String::new()),
            _ => None,
        };
        let c = Config::load_unvalidated(path.to_str(), &env).expect("parses");
        let t = c.tls.as_ref().expect("TLS listener configured");
        assert_eq!(t.listen, "127.0.0.1:6390");
        assert_eq!(t.cert_file, "/f/cert.pem");
        assert_eq!(t.client_ca_file.as_deref(), Some("/env/clients.pem"));
        assert_eq!(t.handshake_timeout, Duration::from_millis(750));
        assert_eq!(c.master_tls.ca_file.as_deref(), Some("/env/ca.pem"));
        assert_eq!(c.master_tls.server_name.as_deref(), Some("redis.internal"));
        assert!(c.masters[0].tls);
        assert!(c.listen.is_empty());
        // Validation reads the files, so the missing ones are named.
        match c.validate() {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "master_tls.ca_file"),
            other => panic!("expected master_tls.ca_file, got {other:?}"),
        }
    }

    #[test]
    fn tls_settings_that_cannot_work_name_their_key() {
        assert_eq!(
            bad_key("[tls]\nlisten = \"127.0.0.1:6390\"\n"),
            "tls.cert_file"
        );
        assert_eq!(
            bad_key("[tls]\nlisten = \"127.0.0.1:6390\"\ncert_file = \"/nonexistent.pem\"\nkey_file = \"/nonexistent.key\"\n"),
            "tls.cert_file"
        );
        let e = Config::from_toml_str("listen = \"\"\n[[masters]]\naddress = \"127.0.0.1:7000\"\n")
            .and_then(Config::validate);
        assert!(matches!(e, Err(ConfigError::Invalid { key, .. }) if key == "listen"));
        let tls_master = "[[masters]]\naddress = \"127.0.0.1:7001\"\ntls = true\n";
        assert_eq!(bad_key(tls_master), "master_tls.ca_file");
        let half = format!("{tls_master}[master_tls]\ncert_file = \"/c.pem\"\n");
        assert_eq!(bad_key(&half), "master_tls.ca_file");
        let env = |k: &str| match k {
            "LOCKGATE_MASTERS" => Some("127.0.0.1:1".to_string()),
            "LOCKGATE_MASTERS_TLS" => Some("true".to_string()),
            "LOCKGATE_MASTER_TLS_CA_FILE" => Some("/nonexistent/ca.pem".to_string()),
            _ => None,
        };
        let e = Config::load(None, &env);
        assert!(
            matches!(&e, Err(ConfigError::Invalid { key, reason }) if key == "master_tls.ca_file" && reason.contains("/nonexistent/ca.pem")),
            "{e:?}"
        );
    }

    #[test]
    fn the_example_files_commented_tls_keys_are_real_keys() {
        // The TLS keys stay commented in the example (their files do not
        // exist here); uncommented, they must still be known keys.
        let mut in_tls = false;
        let mut out = String::new();
        for line in FULL.lines() {
            if line.starts_with('[') {
                in_tls = line == "[tls]" || line == "[master_tls]";
            }
            match line.strip_prefix("# ") {
                Some(rest)
                    if in_tls
                        && toml::from_str::<toml::Table>(rest).is_ok_and(|t| t.len() == 1) =>
                {
                    out.push_str(rest)
                }
                _ => out.push_str(line),
            }
            out.push('\n');
        }
        let c = Config::from_toml_str(&out).expect("uncommented TLS keys parse");
        let t = c.tls.expect("[tls] listen is set once uncommented");
        assert!(t.client_ca_file.is_some() && !t.cert_file.is_empty());
        assert!(c.master_tls.ca_file.is_some() && c.master_tls.server_name.is_some());
        assert!(c.master_tls.cert_file.is_some() && c.master_tls.key_file.is_some());
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let env = |k: &str| (k == "LOCKGATE_MASTER_TIMEOUT_MS").then(|| "fast".to_string());
        let e = Config::load(None, &env);
        assert!(
            matches!(e, Err(ConfigError::Invalid { key, .. }) if key == "LOCKGATE_MASTER_TIMEOUT_MS")
        );
    }
}
