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
struct RawConfig {
    listen: Option<String>,
    admin_listen: Option<String>,
    log_level: Option<String>,
    requirepass: Option<String>,
    shutdown_grace_ms: Option<u64>,
    #[serde(default)]
    masters: Vec<RawMaster>,
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

impl Config {
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
                return Err(invalid(
                    &format!("masters[{i}].tls"),
                    "TLS towards masters is not supported yet",
                ));
            }
        }
        for (key, addr) in [
            ("listen", &self.listen),
            ("admin_listen", &self.admin_listen),
        ] {
            if key == "admin_listen" && addr.is_empty() {
                continue; // empty disables the admin listener
            }
            if addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(invalid(key, format!("{addr:?} is not host:port")));
            }
        }
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
    fn bad_environment_values_name_the_variable() {
        let env = |k: &str| (k == "LOCKGATE_MASTER_TIMEOUT_MS").then(|| "fast".to_string());
        let e = Config::load(None, &env);
        assert!(
            matches!(e, Err(ConfigError::Invalid { key, .. }) if key == "LOCKGATE_MASTER_TIMEOUT_MS")
        );
    }
}
