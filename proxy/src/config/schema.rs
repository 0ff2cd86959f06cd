//! The schema: every setting as a typed field, with its TOML key (the field
//! name, or its `rename`), its default (the section's `Default`) and its
//! reload policy (the section's `RELOAD` table, beside the struct).
//!
//! Nothing else lists the settings. The environment overlay
//! ([`mod@super::env`]), the reload diff ([`super::tree::changes`]) and the
//! check of the example file and the README are all derived from these
//! structs through their serde form ([`super::tree`]). Durations are
//! [`Duration`]s here and `*_ms` integers in the file.
//!
//! Adding a setting: a field (with its serde spelling) and its default
//! here, its row in the section's `RELOAD` table, its line in
//! `config/lockgate.example.toml` and in the README's configuration table
//! (the config tests fail until all four agree), and a check in `validate`
//! if some values are impossible.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use serde::{Deserializer, Serializer};

use super::fields::{self, keyed};
use super::policy::{Reload, KEY_PREFIX, MASTER_LINKS, QUARANTINE, RESTART};

/// One Redis master the gateway votes with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterConfig {
    /// `host:port`; the host is re-resolved on every reconnect.
    pub address: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Reach this master over TLS, with the settings of [`Config::master_tls`].
    #[serde(default)]
    pub tls: bool,
    /// The master's `maxmemory-policy` as the operator declares it, one of
    /// [`EVICTION_POLICIES`]. Used only while the master refuses `CONFIG
    /// GET` (managed services): what the master reports always wins.
    #[serde(default)]
    pub eviction_policy: Option<String>,
}

/// Every `maxmemory-policy` Redis knows, the values `eviction_policy` may
/// declare. Only `noeviction` lets a master vote.
pub const EVICTION_POLICIES: [&str; 8] = [
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
];

impl MasterConfig {
    /// A master reached at `address` with no credentials.
    pub fn plain(address: impl Into<String>) -> Self {
        MasterConfig {
            address: address.into(),
            username: None,
            password: None,
            tls: false,
            eviction_policy: None,
        }
    }
}

/// A named client user (`[[users]]`), as in Redis ACLs. Plain data: the
/// ACL layer decides what the family names allow.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// SHA-256 of the password; the password itself is never stored.
    #[serde(with = "fields::sha256_hex")]
    pub password_sha256: [u8; 32],
    /// Families it may run besides the connection commands, by their
    /// configured names (one of [`USER_FAMILIES`]).
    #[serde(default, deserialize_with = "families")]
    pub commands: Vec<String>,
    /// Glob patterns; every key a command touches must match one.
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default = "fields::yes")]
    pub enabled: bool,
}

/// The command families a `[[users]]` entry may be granted; the connection
/// family is implied and cannot be granted or withheld.
pub const USER_FAMILIES: [&str; 3] = ["lock", "read", "admin"];

/// A user's `commands`: each one of [`USER_FAMILIES`].
fn families<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    match names.iter().find(|f| !USER_FAMILIES.contains(&f.as_str())) {
        Some(f) => Err(keyed(
            "commands",
            format_args!("unknown family {f:?}: use \"lock\", \"read\" or \"admin\""),
        )),
        None => Ok(names),
    }
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
/// masters carry the metadata record (`lock.bootstrap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    /// Wait out the quarantine period before initialising (production).
    Wait,
    /// Initialise at once (dev mode and tests, whose masters are brand new).
    Immediate,
}

impl Serialize for Bootstrap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Bootstrap::Wait => "wait",
            Bootstrap::Immediate => "immediate",
        })
    }
}

impl<'de> Deserialize<'de> for Bootstrap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "wait" => Ok(Bootstrap::Wait),
            "immediate" => Ok(Bootstrap::Immediate),
            other => Err(keyed(
                "lock.bootstrap",
                format_args!("must be \"wait\" or \"immediate\", not {other:?}"),
            )),
        }
    }
}

/// Client-side protocol limits (`[limits]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Longest key a client may name, in bytes: the client's key, not its
    /// name on the masters, which adds at most `lock.key_prefix` and 12
    /// bytes (`lock::keys::overhead`).
    pub max_key_bytes: usize,
    /// Longest owner value (`OWNER`, the value of `SET NX`, a lock script's
    /// owner argument), in bytes.
    pub max_owner_bytes: usize,
    /// Most holds one connection may have at once on this gateway.
    pub max_holds_per_connection: usize,
    /// Most holds one user may have at once on this gateway, over all its
    /// connections.
    pub max_holds_per_user: usize,
    /// A connection with nothing in flight, nothing buffered and no byte
    /// received for this long is closed; `None` (0 in the file) never.
    #[serde(rename = "idle_timeout_ms", with = "fields::millis_or_off")]
    pub idle_timeout: Option<Duration>,
    /// Once the first byte of a request has arrived, the whole request must
    /// arrive within this (slowloris); `None` (0 in the file) never.
    #[serde(rename = "partial_frame_timeout_ms", with = "fields::millis_or_off")]
    pub partial_frame_timeout: Option<Duration>,
    /// Most reply bytes one connection may have waiting to be written; a
    /// client past it (one that does not read) is disconnected.
    pub max_output_buffer_bytes: usize,
    /// Longest a write to a client may make no progress while replies are
    /// waiting; `None` (0 in the file) never.
    #[serde(rename = "write_timeout_ms", with = "fields::millis_or_off")]
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
            // Lock names are short: the libraries' own prefixes
            // (`lock:`, `redlock:`, `redisson_lock__channel:{..}`) plus a
            // job id, a path or a resource name. 1 KiB is ten times a long
            // URL path, and bounds what one name costs every master (the
            // lock key, and the register kept beside it).
            max_key_bytes: 1024,
            // What the libraries send: redis-py a 32-hex uuid1, pottery a
            // 36-char uuid4, node-redlock 32 hex, redsync and
            // python-redis-lock 24 base64 chars, rslock 20 raw bytes,
            // Redisson `<uuid>:<threadId>` (at most 57), the gateway's own
            // 40 hex. 256 is four times the longest.
            max_owner_bytes: 256,
            // A connection holds a handful of locks; a multiplexed one
            // (ioredis, a shared pool) one per job in flight. Ten thousand
            // is far past either, and bounds what one connection can pin
            // on every master.
            max_holds_per_connection: 10_000,
            // Ten connections at their cap; at the size limits a hold costs
            // each master about 1.5 KB, so one user pins at most ~150 MB.
            max_holds_per_user: 100_000,
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

impl Limits {
    /// Protocol limits apply to connections opened after a reload; key
    /// length and `max_clients` at once. All are reported as `limits`.
    /// `max_nesting` sizes the master links' decoders, built at start.
    pub const RELOAD: &'static [(&'static str, Reload)] = &[
        ("limits.max_frame_bytes", Reload::LiveAs("limits")),
        ("limits.max_bulk_bytes", Reload::LiveAs("limits")),
        ("limits.max_args", Reload::LiveAs("limits")),
        ("limits.max_nesting", Reload::Refused(RESTART)),
        ("limits.max_inline_bytes", Reload::LiveAs("limits")),
        ("limits.max_clients", Reload::LiveAs("limits")),
        ("limits.max_pipeline", Reload::LiveAs("limits")),
        ("limits.max_key_bytes", Reload::LiveAs("limits")),
        ("limits.max_owner_bytes", Reload::LiveAs("limits")),
        ("limits.max_holds_per_connection", Reload::LiveAs("limits")),
        ("limits.max_holds_per_user", Reload::LiveAs("limits")),
        ("limits.idle_timeout_ms", Reload::LiveAs("limits")),
        ("limits.partial_frame_timeout_ms", Reload::LiveAs("limits")),
        ("limits.max_output_buffer_bytes", Reload::LiveAs("limits")),
        ("limits.write_timeout_ms", Reload::LiveAs("limits")),
    ];
}

/// Everything the quorum engine needs to know (`[lock]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockConfig {
    pub drift_factor: f64,
    #[serde(rename = "drift_constant_ms", with = "fields::millis")]
    pub drift_constant: Duration,
    #[serde(rename = "min_ttl_ms", with = "fields::millis")]
    pub min_ttl: Duration,
    #[serde(rename = "max_ttl_ms", with = "fields::millis")]
    pub max_ttl: Duration,
    /// Longest `WAIT` a client may ask for.
    #[serde(rename = "max_wait_ms", with = "fields::millis")]
    pub max_wait: Duration,
    /// Prefix of every key the gateway owns besides the lock keys themselves
    /// (fence registers, the master metadata record).
    pub key_prefix: String,
    /// Longest an acquire may take end to end; with `max_ttl` it sets the
    /// quarantine of a master that restarted empty.
    #[serde(rename = "max_acquire_time_ms", with = "fields::millis")]
    pub max_acquire_time: Duration,
    pub bootstrap: Bootstrap,
    /// `SET key value NX` with no expiry: `true` (`"max_ttl"` in the file)
    /// gives it `max_ttl`, `false` (`"error"`) refuses it with an error.
    #[serde(rename = "set_without_ttl", with = "fields::set_without_ttl")]
    pub set_without_ttl_uses_max: bool,
    /// How long a key's fence register (and with it every key a lock
    /// created) outlives the key's last grant or extend, at least the lease
    /// itself; `None` (`0` in the file) keeps registers forever. A key whose
    /// register expired draws its next token above the master's high-water
    /// mark instead (docs/design.md, *Token rule*).
    #[serde(rename = "fence_retention_ms", with = "fields::millis_or_off")]
    pub fence_retention: Option<Duration>,
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
            // Ten minutes: a key locked at least that often keeps its
            // register and never competes with the master-wide high-water
            // mark, while a service that locks per job id holds at most ten
            // minutes of new names (about 100 bytes each, BENCHMARKS.md).
            fence_retention: Some(Duration::from_secs(600)),
        }
    }
}

impl LockConfig {
    /// The amnesia guard reads the quarantine and drift keys once, at start;
    /// the fence registers live under `key_prefix`.
    pub const RELOAD: &'static [(&'static str, Reload)] = &[
        ("lock.key_prefix", Reload::Refused(KEY_PREFIX)),
        (
            "lock.max_ttl_ms",
            Reload::RefusedAs(QUARANTINE_KEYS, QUARANTINE),
        ),
        (
            "lock.max_acquire_time_ms",
            Reload::RefusedAs(QUARANTINE_KEYS, QUARANTINE),
        ),
        ("lock.drift_factor", Reload::RefusedAs(DRIFT_KEYS, RESTART)),
        (
            "lock.drift_constant_ms",
            Reload::RefusedAs(DRIFT_KEYS, RESTART),
        ),
        ("lock.bootstrap", Reload::Refused(RESTART)),
        ("lock.min_ttl_ms", Reload::Live),
        ("lock.max_wait_ms", Reload::Live),
        ("lock.set_without_ttl", Reload::Live),
        ("lock.fence_retention_ms", Reload::Refused(RESTART)),
    ];
}

const QUARANTINE_KEYS: &str = "lock.max_ttl_ms / lock.max_acquire_time_ms";
const DRIFT_KEYS: &str = "lock.drift_factor / lock.drift_constant_ms";
const MASTER_TUNING_KEYS: &str = "[master] (other than timeout_ms)";

/// Master connection behaviour (`[master]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MasterTuning {
    /// Deadline of one request to one master.
    #[serde(rename = "timeout_ms", with = "fields::millis")]
    pub timeout: Duration,
    /// Connect (and handshake) deadline.
    #[serde(rename = "connect_timeout_ms", with = "fields::millis")]
    pub connect_timeout: Duration,
    /// Consecutive timeouts after which a master is marked down.
    pub down_after_timeouts: u32,
    #[serde(rename = "reconnect_min_ms", with = "fields::millis")]
    pub reconnect_min: Duration,
    #[serde(rename = "reconnect_max_ms", with = "fields::millis")]
    pub reconnect_max: Duration,
    /// Requests queued or in flight to one master before new ones fail fast.
    pub max_inflight: usize,
    /// How often each master's `maxmemory` and `maxmemory-policy` are read
    /// again after the connect: an operator can change them at runtime.
    #[serde(rename = "policy_check_ms", with = "fields::millis")]
    pub policy_check: Duration,
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
            // A master that turns evicting keeps voting until the next
            // read; ten seconds keeps that window short at one cheap
            // CONFIG GET per master, and a policy changed by hand is rare.
            policy_check: Duration::from_secs(10),
        }
    }
}

impl MasterTuning {
    /// Each request reads the timeout; the links keep the rest.
    pub const RELOAD: &'static [(&'static str, Reload)] = &[
        ("master.timeout_ms", Reload::Live),
        (
            "master.connect_timeout_ms",
            Reload::RefusedAs(MASTER_TUNING_KEYS, MASTER_LINKS),
        ),
        (
            "master.down_after_timeouts",
            Reload::RefusedAs(MASTER_TUNING_KEYS, MASTER_LINKS),
        ),
        (
            "master.reconnect_min_ms",
            Reload::RefusedAs(MASTER_TUNING_KEYS, MASTER_LINKS),
        ),
        (
            "master.reconnect_max_ms",
            Reload::RefusedAs(MASTER_TUNING_KEYS, MASTER_LINKS),
        ),
        (
            "master.max_inflight",
            Reload::RefusedAs(MASTER_TUNING_KEYS, MASTER_LINKS),
        ),
        (
            "master.policy_check_ms",
            Reload::RefusedAs(MASTER_TUNING_KEYS, MASTER_LINKS),
        ),
    ];
}

/// The TLS client listener (`[tls]`). Present in [`Config::tls`] only when
/// `listen` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsListen {
    pub listen: String,
    /// The server certificate chain (PEM), leaf first.
    pub cert_file: String,
    pub key_file: String,
    /// When set, clients must present a certificate issued by this CA (mTLS).
    #[serde(with = "fields::non_empty")]
    pub client_ca_file: Option<String>,
    /// Deadline of one client's TLS handshake; a client that stalls it is
    /// dropped (and counted) without holding up anybody else.
    #[serde(rename = "handshake_timeout_ms", with = "fields::millis")]
    pub handshake_timeout: Duration,
}

impl Default for TlsListen {
    fn default() -> Self {
        TlsListen {
            listen: String::new(),
            cert_file: String::new(),
            key_file: String::new(),
            client_ca_file: None,
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

impl TlsListen {
    /// Certificates are read at start; a reload neither applies nor refuses
    /// a change to them.
    pub const RELOAD: &'static [(&'static str, Reload)] = &[
        ("tls.listen", Reload::Kept),
        ("tls.cert_file", Reload::Kept),
        ("tls.key_file", Reload::Kept),
        ("tls.client_ca_file", Reload::Kept),
        ("tls.handshake_timeout_ms", Reload::Kept),
    ];
}

/// `[tls]` in [`Config`]: the listener exists only when `listen` is
/// non-empty. An absent listener is written out as the section's defaults,
/// so that every key has a value in the tree the overlay and the reload
/// diff work on.
mod tls_listen {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<TlsListen>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => t.serialize(s),
            None => TlsListen::default().serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TlsListen>, D::Error> {
        let t = TlsListen::deserialize(d)?;
        Ok((!t.listen.is_empty()).then_some(t))
    }
}

/// TLS towards masters (`[master_tls]`), used by every master with
/// `tls = true`. One section for all masters: they are one deployment,
/// normally signed by one CA, and the gateway has one client identity. The
/// name each certificate must carry differs per master, and defaults to the
/// host part of its address. Empty strings count as unset.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MasterTls {
    /// CA that signed the masters' certificates (PEM); required when any
    /// master uses TLS.
    #[serde(with = "fields::non_empty")]
    pub ca_file: Option<String>,
    /// Client certificate and key, for masters run with
    /// `tls-auth-clients yes`; both or neither.
    #[serde(with = "fields::non_empty")]
    pub cert_file: Option<String>,
    #[serde(with = "fields::non_empty")]
    pub key_file: Option<String>,
    /// Name every master's certificate is checked against, instead of the
    /// host of its address (for masters addressed by IP whose certificates
    /// carry only a DNS name).
    #[serde(with = "fields::non_empty")]
    pub server_name: Option<String>,
}

impl MasterTls {
    /// The master links build their TLS settings at start; a reload neither
    /// applies nor refuses a change to them.
    pub const RELOAD: &'static [(&'static str, Reload)] = &[
        ("master_tls.ca_file", Reload::Kept),
        ("master_tls.cert_file", Reload::Kept),
        ("master_tls.key_file", Reload::Kept),
        ("master_tls.server_name", Reload::Kept),
    ];
}

/// The whole configuration. The field order is the order the file's
/// top-level keys are listed in parse errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The plain-text client listener; empty turns it off (allowed only
    /// with a TLS listener).
    pub listen: String,
    pub admin_listen: String,
    pub log_level: String,
    /// Password of the `default` user, as Redis's `requirepass`.
    pub requirepass: Option<String>,
    /// Refuse to listen on a non-loopback address without authentication.
    pub protected_mode: bool,
    /// Bearer token that `POST /reload` on the admin listener requires.
    pub admin_token: Option<String>,
    /// Named users (`[[users]]`); any of them makes authentication required.
    #[serde(deserialize_with = "fields::users")]
    pub users: Vec<UserConfig>,
    /// How long shutdown waits for in-flight requests.
    #[serde(rename = "shutdown_grace_ms", with = "fields::millis")]
    pub shutdown_grace: Duration,
    pub masters: Vec<MasterConfig>,
    /// The TLS client listener, if `[tls] listen` is set.
    #[serde(with = "tls_listen")]
    pub tls: Option<TlsListen>,
    pub master_tls: MasterTls,
    pub master: MasterTuning,
    pub lock: LockConfig,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:6380".to_string(),
            admin_listen: "127.0.0.1:9380".to_string(),
            log_level: "info".to_string(),
            requirepass: None,
            protected_mode: true,
            admin_token: None,
            users: Vec::new(),
            shutdown_grace: Duration::from_secs(5),
            masters: Vec::new(),
            tls: None,
            master_tls: MasterTls::default(),
            master: MasterTuning::default(),
            lock: LockConfig::default(),
            limits: Limits::default(),
        }
    }
}

impl Config {
    /// The top-level keys. Their order is the order a reload reports
    /// changes in; the sections follow in the order of [`Config::RELOAD_SECTIONS`].
    pub const RELOAD: &'static [(&'static str, Reload)] = &[
        ("masters", Reload::MasterList),
        ("listen", Reload::Refused(RESTART)),
        ("admin_listen", Reload::Refused(RESTART)),
        ("requirepass", Reload::Live),
        ("users", Reload::Live),
        ("protected_mode", Reload::Live),
        ("admin_token", Reload::Live),
        ("log_level", Reload::Live),
        ("shutdown_grace_ms", Reload::Live),
    ];

    /// Every reload table, top level first.
    pub const RELOAD_SECTIONS: &'static [&'static [(&'static str, Reload)]] = &[
        Config::RELOAD,
        LockConfig::RELOAD,
        MasterTuning::RELOAD,
        Limits::RELOAD,
        TlsListen::RELOAD,
        MasterTls::RELOAD,
    ];

    /// Every key with its reload policy, in the order a reload checks and
    /// reports them: the top level, then the sections.
    pub fn reload_policies() -> impl Iterator<Item = (&'static str, Reload)> {
        Config::RELOAD_SECTIONS
            .iter()
            .flat_map(|table| table.iter().copied())
    }
}
