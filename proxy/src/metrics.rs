//! Prometheus metrics: one dedicated registry, `lockgate_` prefix, base units.
//!
//! Labelled children are resolved once (per master at start, per op and
//! outcome in fixed tables) so the hot path only bumps atomics. Labels never
//! carry lock keys, owners or client addresses.
//!
//! Each area (lock operations, masters, quorum health, clients, access
//! control, keepalive, the process) registers its own metrics in one
//! `register` function; [`Metrics::new`] only puts the areas together.
//! Names, help texts, labels and buckets are part of the interface:
//! dashboards and alerts depend on them.

use prometheus::core::Collector;
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Latency buckets from 50 µs to ~2 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.0,
];

/// Lock operations, the `op` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Acquire,
    Release,
    Extend,
    Status,
    /// Read-write locks.
    RwRead,
    RwWrite,
    RwRelease,
    RwExtend,
    RwStatus,
    /// Counting semaphores.
    SemAcquire,
    SemRelease,
    SemExtend,
    SemStatus,
    /// `RLOCK.ACQUIRE`: a fresh grant or one more hold.
    ReentrantAcquire,
    /// `RLOCK.RELEASE`: one hold dropped.
    ReentrantRelease,
}

// === impl Op ===

impl Op {
    pub const ALL: [Op; 15] = [
        Op::Acquire,
        Op::Release,
        Op::Extend,
        Op::Status,
        Op::RwRead,
        Op::RwWrite,
        Op::RwRelease,
        Op::RwExtend,
        Op::RwStatus,
        Op::SemAcquire,
        Op::SemRelease,
        Op::SemExtend,
        Op::SemStatus,
        Op::ReentrantAcquire,
        Op::ReentrantRelease,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Acquire => "acquire",
            Op::Release => "release",
            Op::Extend => "extend",
            Op::Status => "status",
            Op::RwRead => "rw_read",
            Op::RwWrite => "rw_write",
            Op::RwRelease => "rw_release",
            Op::RwExtend => "rw_extend",
            Op::RwStatus => "rw_status",
            Op::SemAcquire => "sem_acquire",
            Op::SemRelease => "sem_release",
            Op::SemExtend => "sem_extend",
            Op::SemStatus => "sem_status",
            Op::ReentrantAcquire => "reentrant_acquire",
            Op::ReentrantRelease => "reentrant_release",
        }
    }
}

/// Outcomes of a lock operation, the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acquire or extend granted; release deleted; status found a holder.
    Granted,
    /// Held by another owner (acquire) or not held by this owner
    /// (release/extend), or no holder (status).
    Busy,
    /// Too few masters answered to decide.
    NoQuorum,
    /// A quorum agreed but the validity ran out before the reply.
    ExpiredInFlight,
    /// A WAIT ran out without a grant.
    Timeout,
    /// Refused before any master was asked (bad arguments, limits).
    Rejected,
    Error,
}

// === impl Outcome ===

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Granted,
        Outcome::Busy,
        Outcome::NoQuorum,
        Outcome::ExpiredInFlight,
        Outcome::Timeout,
        Outcome::Rejected,
        Outcome::Error,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Granted => "granted",
            Outcome::Busy => "busy",
            Outcome::NoQuorum => "no_quorum",
            Outcome::ExpiredInFlight => "expired_in_flight",
            Outcome::Timeout => "timeout",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
        }
    }
}

/// Outcomes of a keepalive renewal, the `outcome` label of
/// `lockgate_keepalive_renewals_total`.
pub const KEEPALIVE_OUTCOMES: &[&str] = &["renewed", "not_held", "no_quorum"];
/// Limits a client can hit, the `limit` label of
/// `lockgate_limit_hits_total`: a fixed set, named after the config keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    MaxClients,
    IdleTimeout,
    PartialFrameTimeout,
    MaxOutputBuffer,
    WriteTimeout,
    MaxFrameBytes,
    MaxBulkBytes,
    MaxArgs,
    MaxInlineBytes,
    MaxKeyBytes,
    Ttl,
    MaxWait,
    MaxOwnerBytes,
    MaxHoldsPerConnection,
    MaxHoldsPerUser,
}

// === impl Limit ===

impl Limit {
    pub const ALL: [Limit; 15] = [
        Limit::MaxClients,
        Limit::IdleTimeout,
        Limit::PartialFrameTimeout,
        Limit::MaxOutputBuffer,
        Limit::WriteTimeout,
        Limit::MaxFrameBytes,
        Limit::MaxBulkBytes,
        Limit::MaxArgs,
        Limit::MaxInlineBytes,
        Limit::MaxKeyBytes,
        Limit::Ttl,
        Limit::MaxWait,
        Limit::MaxOwnerBytes,
        Limit::MaxHoldsPerConnection,
        Limit::MaxHoldsPerUser,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxClients => "max_clients",
            Limit::IdleTimeout => "idle_timeout",
            Limit::PartialFrameTimeout => "partial_frame_timeout",
            Limit::MaxOutputBuffer => "max_output_buffer",
            Limit::WriteTimeout => "write_timeout",
            Limit::MaxFrameBytes => "max_frame_bytes",
            Limit::MaxBulkBytes => "max_bulk_bytes",
            Limit::MaxArgs => "max_args",
            Limit::MaxInlineBytes => "max_inline_bytes",
            Limit::MaxKeyBytes => "max_key_bytes",
            Limit::Ttl => "ttl",
            Limit::MaxWait => "max_wait",
            Limit::MaxOwnerBytes => "max_owner_bytes",
            Limit::MaxHoldsPerConnection => "max_holds_per_connection",
            Limit::MaxHoldsPerUser => "max_holds_per_user",
        }
    }
}

/// Kinds of master errors, the `kind` label. `oom` is a `noeviction`
/// master at its `maxmemory` refusing a write: a refused vote, and the
/// operator's cue to give it memory, kept apart from other error replies.
pub const MASTER_ERROR_KINDS: &[&str] = &[
    "timeout",
    "down",
    "connection",
    "overloaded",
    "reply",
    "protocol",
    "oom",
];

/// Why a connection attempt to a master failed, the `reason` label of
/// `lockgate_master_connect_failures_total`. `tls` covers a certificate
/// that failed verification, so an operator sees why a master is down.
pub const MASTER_CONNECT_FAILURES: &[&str] = &[
    "resolve", "connect", "timeout", "tls", "refused", "protocol", "closed",
];

/// Why a client's TLS handshake failed, the `reason` label of
/// `lockgate_tls_handshake_failures_total`.
pub const TLS_HANDSHAKE_FAILURES: &[&str] = &["timeout", "error"];

/// Per-master handles, resolved once at start.
#[derive(Clone)]
pub struct MasterMetrics {
    pub request_duration: Histogram,
    /// Indexed like [`MASTER_ERROR_KINDS`].
    pub errors: Vec<IntCounter>,
    /// One-hot `lockgate_master_state{state=...}` children, indexed like
    /// [`MASTER_STATES`].
    pub states: Vec<IntGauge>,
    pub votes_given: IntCounter,
    pub votes_refused: IntCounter,
    pub reconnects: IntCounter,
    /// Indexed like [`MASTER_CONNECT_FAILURES`].
    pub connect_failures: Vec<IntCounter>,
}

/// Master states as exported, in the order of `MasterState as usize`.
pub const MASTER_STATES: &[&str] = &[
    "up",
    "down",
    "amnesia",
    "quarantined",
    "evicting",
    "policy_unknown",
    "duplicate",
    "promoted",
    "layout_mismatch",
    "set_mismatch",
];

// === impl MasterMetrics ===

impl MasterMetrics {
    /// Makes `state` (an index into [`MASTER_STATES`]) the one set to 1.
    pub fn set_state(&self, state: usize) {
        for (i, g) in self.states.iter().enumerate() {
            g.set(i64::from(i == state));
        }
    }

    /// Counts a failed connection attempt; `reason` is one of
    /// [`MASTER_CONNECT_FAILURES`].
    pub fn connect_failure(&self, reason: &str) {
        if let Some(i) = MASTER_CONNECT_FAILURES.iter().position(|k| *k == reason) {
            self.connect_failures[i].inc();
        }
    }

    pub fn error(&self, kind: &str) {
        if let Some(i) = MASTER_ERROR_KINDS.iter().position(|k| *k == kind) {
            self.errors[i].inc();
        }
    }
}

/// Every metric the gateway exports.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    lock_ops: LockOps,
    masters: MasterFamilies,
    /// Indexed like [`TLS_HANDSHAKE_FAILURES`].
    pub tls_handshake_failures: Vec<IntCounter>,
    pub quorum_margin: IntGauge,
    pub fence_retries: IntCounter,
    pub master_reseeds: IntCounter,
    pub deployment_inits: IntCounter,
    pub grant_validity: Histogram,
    pub client_connections: IntGauge,
    pub client_connections_total: IntCounter,
    pub client_rejected: IntCounter,
    commands: IntCounterVec,
    pub protocol_errors: IntCounter,
    /// Failed AUTH attempts by bounded reason (never a user name).
    pub auth_failures: IntCounterVec,
    /// Commands refused by an ACL, by reason (command, key, user_gone).
    pub acl_denied: IntCounterVec,
    /// Configuration reloads by result (ok, error).
    pub config_reloads: IntCounterVec,
    /// Indexed like [`Limit::ALL`].
    limit_hits: Vec<IntCounter>,
    pub uptime_start: Gauge,
    keepalive_renewals: IntCounterVec,
    /// Keepalive locks given up because renewal found no quorum in time.
    pub keepalive_lost: IntCounter,
    /// Keepalive locks being renewed now.
    pub keepalive_holds: IntGauge,
}

/// `lockgate_lock_operations_total` and its latency histogram, with the
/// children of every op and outcome resolved up front.
#[derive(Clone)]
struct LockOps {
    ops: IntCounterVec,
    duration: HistogramVec,
    /// `[op][outcome]`, resolved once.
    ops_table: Vec<Vec<IntCounter>>,
    duration_table: Vec<Histogram>,
}

/// The per-master families; [`MasterFamilies::resolve`] picks one master's
/// children out of them.
#[derive(Clone)]
struct MasterFamilies {
    request_duration: HistogramVec,
    errors: IntCounterVec,
    state: IntGaugeVec,
    votes: IntCounterVec,
    reconnects: IntCounterVec,
    connect_failures: IntCounterVec,
}

/// How close the masters are to losing the quorum, and what the engine did
/// to keep tokens and grants sound.
struct QuorumMetrics {
    margin: IntGauge,
    fence_retries: IntCounter,
    reseeds: IntCounter,
    deployment_inits: IntCounter,
    grant_validity: Histogram,
}

/// The client side: connections, TLS handshakes, commands, protocol errors
/// and limit hits.
struct ClientMetrics {
    tls_handshake_failures: Vec<IntCounter>,
    connections: IntGauge,
    connections_total: IntCounter,
    rejected: IntCounter,
    commands: IntCounterVec,
    protocol_errors: IntCounter,
    limit_hits: Vec<IntCounter>,
}

/// Who may do what: failed AUTH attempts, ACL refusals, and configuration
/// reloads.
struct AccessMetrics {
    auth_failures: IntCounterVec,
    acl_denied: IntCounterVec,
    config_reloads: IntCounterVec,
}

/// Locks the gateway renews on its clients' behalf.
struct KeepaliveMetrics {
    renewals: IntCounterVec,
    lost: IntCounter,
    holds: IntGauge,
}

// === impl Metrics ===

impl Metrics {
    /// Builds and registers every metric in a fresh registry.
    ///
    /// # Panics
    /// Only on a programming error (a duplicate or invalid metric name),
    /// which the unit test below catches.
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        let lock_ops = LockOps::register(r);
        let masters = MasterFamilies::register(r);
        let clients = ClientMetrics::register(r);
        let quorum = QuorumMetrics::register(r);
        let access = AccessMetrics::register(r);
        let uptime_start = register_process(r);
        let keepalive = KeepaliveMetrics::register(r);
        Metrics {
            registry,
            lock_ops,
            masters,
            tls_handshake_failures: clients.tls_handshake_failures,
            quorum_margin: quorum.margin,
            fence_retries: quorum.fence_retries,
            master_reseeds: quorum.reseeds,
            deployment_inits: quorum.deployment_inits,
            grant_validity: quorum.grant_validity,
            client_connections: clients.connections,
            client_connections_total: clients.connections_total,
            client_rejected: clients.rejected,
            commands: clients.commands,
            protocol_errors: clients.protocol_errors,
            auth_failures: access.auth_failures,
            acl_denied: access.acl_denied,
            config_reloads: access.config_reloads,
            limit_hits: clients.limit_hits,
            uptime_start,
            keepalive_renewals: keepalive.renewals,
            keepalive_lost: keepalive.lost,
            keepalive_holds: keepalive.holds,
        }
    }

    /// Records one finished lock operation.
    pub fn lock_op(&self, op: Op, outcome: Outcome, seconds: f64) {
        let oi = op as usize;
        self.lock_ops.ops_table[oi][outcome as usize].inc();
        self.lock_ops.duration_table[oi].observe(seconds);
    }

    /// Counts one keepalive renewal attempt; `outcome` is one of
    /// [`KEEPALIVE_OUTCOMES`].
    pub fn keepalive_renewal(&self, outcome: &'static str) {
        self.keepalive_renewals.with_label_values(&[outcome]).inc();
    }

    /// Keepalive renewal attempts so far with `outcome` (tests, INFO).
    pub fn keepalive_renewal_count(&self, outcome: &str) -> u64 {
        self.keepalive_renewals.with_label_values(&[outcome]).get()
    }

    /// Counts one hit of `limit`.
    pub fn limit_hit(&self, limit: Limit) {
        if let Some(c) = self.limit_hits.get(limit as usize) {
            c.inc();
        }
    }

    /// The hits of `limit` so far (tests and INFO).
    pub fn limit_hits(&self, limit: Limit) -> u64 {
        self.limit_hits
            .get(limit as usize)
            .map_or(0, IntCounter::get)
    }

    /// Resolves the per-master handles; call once per master at start.
    pub fn master(&self, name: &str) -> MasterMetrics {
        self.masters.resolve(name)
    }

    /// The counter of one `lockgate_commands_total` label; `name` must come
    /// from a bounded set: the command registry's rows with their own label
    /// (`crate::command::registry::Metric::Own`), and `other`.
    pub fn command(&self, name: &'static str) -> IntCounter {
        self.commands.with_label_values(&[name])
    }

    /// Unused handles kept for the vectors' sake.
    pub fn lock_ops_vec(&self) -> &IntCounterVec {
        &self.lock_ops.ops
    }

    pub fn lock_op_duration_vec(&self) -> &HistogramVec {
        &self.lock_ops.duration
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

// === impl LockOps ===

impl LockOps {
    fn register(r: &Registry) -> Self {
        let ops = counter_vec(
            r,
            "lockgate_lock_operations_total",
            "Lock operations by op and outcome",
            &["op", "outcome"],
        );
        let duration = latency_vec(
            r,
            "lockgate_lock_operation_duration_seconds",
            "Lock operation latency as seen by the gateway, by op",
            &["op"],
        );
        let ops_table = Op::ALL
            .iter()
            .map(|op| {
                Outcome::ALL
                    .iter()
                    .map(|o| ops.with_label_values(&[op.as_str(), o.as_str()]))
                    .collect()
            })
            .collect();
        let duration_table = Op::ALL
            .iter()
            .map(|op| duration.with_label_values(&[op.as_str()]))
            .collect();
        LockOps {
            ops,
            duration,
            ops_table,
            duration_table,
        }
    }
}

// === impl MasterFamilies ===

impl MasterFamilies {
    fn register(r: &Registry) -> Self {
        MasterFamilies {
            request_duration: latency_vec(
                r,
                "lockgate_master_request_duration_seconds",
                "Latency of one request to one master",
                &["master"],
            ),
            errors: counter_vec(
                r,
                "lockgate_master_errors_total",
                "Master request errors by kind",
                &["master", "kind"],
            ),
            state: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "lockgate_master_state",
                        "1 for the state each master is in (up, down, amnesia, quarantined, \
                         evicting, policy_unknown, duplicate, promoted, layout_mismatch, \
                         set_mismatch), else 0",
                    ),
                    &["master", "state"],
                ),
            ),
            votes: counter_vec(
                r,
                "lockgate_master_votes_total",
                "Acquire votes by master and vote",
                &["master", "vote"],
            ),
            reconnects: counter_vec(
                r,
                "lockgate_master_reconnects_total",
                "Master reconnects",
                &["master"],
            ),
            connect_failures: counter_vec(
                r,
                "lockgate_master_connect_failures_total",
                "Failed connection attempts to a master, by reason (tls: certificate \
                 verification or handshake)",
                &["master", "reason"],
            ),
        }
    }

    /// One master's children of every family.
    fn resolve(&self, name: &str) -> MasterMetrics {
        MasterMetrics {
            request_duration: self.request_duration.with_label_values(&[name]),
            errors: MASTER_ERROR_KINDS
                .iter()
                .map(|k| self.errors.with_label_values(&[name, k]))
                .collect(),
            states: MASTER_STATES
                .iter()
                .map(|s| self.state.with_label_values(&[name, s]))
                .collect(),
            votes_given: self.votes.with_label_values(&[name, "given"]),
            votes_refused: self.votes.with_label_values(&[name, "refused"]),
            reconnects: self.reconnects.with_label_values(&[name]),
            connect_failures: MASTER_CONNECT_FAILURES
                .iter()
                .map(|r| self.connect_failures.with_label_values(&[name, r]))
                .collect(),
        }
    }
}

// === impl QuorumMetrics ===

impl QuorumMetrics {
    fn register(r: &Registry) -> Self {
        QuorumMetrics {
            margin: register(
                r,
                IntGauge::new(
                    "lockgate_quorum_margin",
                    "Healthy masters minus the quorum; below 0 no lock can be granted",
                ),
            ),
            fence_retries: counter(
                r,
                "lockgate_fence_proposal_retries_total",
                "Acquire rounds retried because a master refused the proposed token as stale",
            ),
            reseeds: counter(
                r,
                "lockgate_master_reseeds_total",
                "Masters re-seeded after amnesia",
            ),
            deployment_inits: counter(
                r,
                "lockgate_deployment_inits_total",
                "Masters initialised because fewer than a quorum carried a metadata record",
            ),
            grant_validity: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "lockgate_grant_validity_seconds",
                        "Validity remaining when a grant is replied",
                    )
                    .buckets(vec![
                        0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
                    ]),
                ),
            ),
        }
    }
}

// === impl ClientMetrics ===

impl ClientMetrics {
    fn register(r: &Registry) -> Self {
        let tls_handshake_failures = counter_vec(
            r,
            "lockgate_tls_handshake_failures_total",
            "Client TLS handshakes that failed (error) or ran out of time (timeout)",
            &["reason"],
        );
        let limit_hits = counter_vec(
            r,
            "lockgate_limit_hits_total",
            "Requests refused and connections closed at a configured limit, by limit",
            &["limit"],
        );
        ClientMetrics {
            tls_handshake_failures: TLS_HANDSHAKE_FAILURES
                .iter()
                .map(|r| tls_handshake_failures.with_label_values(&[r]))
                .collect(),
            connections: register(
                r,
                IntGauge::new("lockgate_client_connections", "Open client connections"),
            ),
            connections_total: counter(
                r,
                "lockgate_client_connections_total",
                "Client connections accepted",
            ),
            rejected: counter(
                r,
                "lockgate_client_connections_rejected_total",
                "Client connections refused at the maxclients limit",
            ),
            commands: counter_vec(
                r,
                "lockgate_commands_total",
                "Client commands by name",
                &["command"],
            ),
            protocol_errors: counter(
                r,
                "lockgate_protocol_errors_total",
                "Client requests that broke the protocol or a limit",
            ),
            // Resolved up front so every label shows (at 0) before its
            // first hit.
            limit_hits: Limit::ALL
                .iter()
                .map(|l| limit_hits.with_label_values(&[l.as_str()]))
                .collect(),
        }
    }
}

// === impl AccessMetrics ===

impl AccessMetrics {
    fn register(r: &Registry) -> Self {
        let auth_failures = counter_vec(
            r,
            "lockgate_auth_failures_total",
            "Failed client authentication attempts by reason",
            &["reason"],
        );
        let acl_denied = counter_vec(
            r,
            "lockgate_acl_denied_total",
            "Client commands refused by an ACL, by reason",
            &["reason"],
        );
        let config_reloads = counter_vec(
            r,
            "lockgate_config_reloads_total",
            "Configuration reloads (SIGHUP or POST /reload) by result",
            &["result"],
        );
        // Export every series from the start, so alerts on rate() see a 0
        // before the first failure.
        for reason in [
            "wrong_password",
            "unknown_user",
            "user_disabled",
            "no_password_configured",
            "too_many_attempts",
        ] {
            auth_failures.with_label_values(&[reason]);
        }
        for reason in ["command", "key", "user_gone"] {
            acl_denied.with_label_values(&[reason]);
        }
        for result in ["ok", "error"] {
            config_reloads.with_label_values(&[result]);
        }
        AccessMetrics {
            auth_failures,
            acl_denied,
            config_reloads,
        }
    }
}

// === impl KeepaliveMetrics ===

impl KeepaliveMetrics {
    fn register(r: &Registry) -> Self {
        let renewals = counter_vec(
            r,
            "lockgate_keepalive_renewals_total",
            "Keepalive renewal attempts by outcome (renewed, not_held, no_quorum)",
            &["outcome"],
        );
        for o in KEEPALIVE_OUTCOMES {
            renewals.with_label_values(&[o]);
        }
        KeepaliveMetrics {
            renewals,
            lost: counter(
                r,
                "lockgate_keepalive_lost_total",
                "Keepalive locks lost: renewal found no quorum before the validity ran out",
            ),
            holds: register(
                r,
                IntGauge::new(
                    "lockgate_keepalive_holds",
                    "Keepalive locks this gateway is renewing",
                ),
            ),
        }
    }
}

/// The process itself: start time, build information, and (on Linux) the
/// standard `process_*` collector. Returns the start-time gauge.
fn register_process(r: &Registry) -> Gauge {
    let uptime_start = register(
        r,
        Gauge::new(
            "lockgate_start_time_seconds",
            "Unix time the gateway started",
        ),
    );
    let build_info = register(
        r,
        IntGaugeVec::new(
            Opts::new("lockgate_build_info", "Build information"),
            &["version"],
        ),
    );
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    #[cfg(target_os = "linux")]
    {
        let pc = prometheus::process_collector::ProcessCollector::for_self();
        let _ = r.register(Box::new(pc));
    }
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        uptime_start.set(d.as_secs_f64());
    }
    uptime_start
}

// === registration helpers ===

/// Registers `metric` (built by a prometheus constructor) and returns it.
///
/// # Panics
/// Only on a programming error (a duplicate or invalid metric name), which
/// the unit test below catches.
#[allow(clippy::expect_used)]
fn register<T: Collector + Clone + 'static>(r: &Registry, metric: prometheus::Result<T>) -> T {
    let c = metric.expect("valid");
    r.register(Box::new(c.clone()))
        .expect("metric names are unique and valid");
    c
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    register(r, IntCounter::new(name, help))
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(r, IntCounterVec::new(Opts::new(name, help), labels))
}

/// A histogram family with [`LATENCY_BUCKETS`].
fn latency_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    register(
        r,
        HistogramVec::new(
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
            labels,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_builds_and_encodes() {
        let m = Metrics::new();
        m.lock_op(Op::Acquire, Outcome::Granted, 0.001);
        let mm = m.master("127.0.0.1:1");
        mm.votes_given.inc();
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&m.registry.gather())
            .unwrap_or_default();
        assert!(text.contains("lockgate_lock_operations_total"));
        assert!(text.contains("lockgate_master_votes_total"));
        for l in Limit::ALL {
            assert!(
                text.contains(&format!(
                    "lockgate_limit_hits_total{{limit=\"{}\"}} 0",
                    l.as_str()
                )),
                "{l:?} is missing"
            );
        }
        m.limit_hit(Limit::MaxWait);
        assert_eq!(m.limit_hits(Limit::MaxWait), 1);
        assert_eq!(m.limit_hits(Limit::Ttl), 0);
    }
}
