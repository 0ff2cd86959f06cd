//! Masters: one long-lived pipelined connection per Redis master, shared by
//! every client connection of this gateway process.
//!
//! Callers encode their command in their own task and hand it, with a reply
//! slot, to the connection's writer through a bounded channel. The writer
//! queues the slot in a FIFO *before* writing the bytes, then writes every
//! request waiting in the channel in one batch; the reader matches each reply
//! to the front of the FIFO. A caller that gives up (its deadline passed)
//! just drops its slot; the late reply is read and discarded, so the FIFO
//! never desynchronises.
//!
//! # Health
//! A master is `Up` only after connect (and, with `tls = true`, a TLS
//! handshake whose certificate verified), AUTH, PING, INFO server, INFO
//! replication (a refusal is an answer), CONFIG GET and SCRIPT LOAD all
//! succeeded (a refused CONFIG GET is an answer:
//! see *Guards*), each step within `connect_timeout`. `Up` is not yet a
//! vote: the guards below and the amnesia guard may still withhold it. A certificate that fails
//! verification keeps the master down like any other failed connect, counted
//! by reason in `lockgate_master_connect_failures_total`. Calls to a master whose
//! link is down fail at once with [`MasterError::Down`] and are never
//! queued: a dead master costs a caller nothing. A master that stops
//! answering (SIGSTOP, blackhole) is marked down by the caller whose timeout
//! is the `down_after_timeouts`-th in a row; timeouts of requests that were
//! in flight together count once (a pause of the gateway itself, or of the
//! whole machine, times out every pending request at the same moment and
//! says nothing about any one master). Its connection is then torn
//! down (pending callers get [`MasterError::ConnectionLost`]) and the
//! reconnect loop (exponential backoff with full jitter, host re-resolved
//! each time) brings it back once the whole handshake answers again. Each
//! successful connection bumps [`Master::connection_generation`]; each one
//! after the first counts in the `reconnects` metric.
//!
//! # Guards
//! A connected master votes only if it cannot lose the gateway's keys on
//! its own and is the only configured address of its server. The handshake
//! also reads `INFO server` (the server's identity, see [`identity`]) and
//! `CONFIG GET maxmemory*` (its eviction policy, see [`policy`]); a master
//! whose policy can evict is `evicting`, one whose policy is neither
//! readable nor declared is `policy_unknown`, and a second address of a
//! server already connected is `duplicate`. None of them vote. The policy
//! is read again every `master.policy_check_ms`, so a runtime `CONFIG SET
//! maxmemory-policy` takes the vote away (or gives it back) within that
//! interval. A master that refuses `INFO` fails its handshake and stays
//! down: it cannot be told apart from another address of itself.
//!
//! # Concurrency note
//! Link transitions (up, down, recovery flag) are serialised by one mutex so
//! the generation, the `up` flag and the one-hot state gauge always agree;
//! the hot path (`state`, `eval`, `call`) only reads atomics.
//!
//! # Layout
//! - `conn`: the connection task (connect, handshake, writer, reader) and
//!   the TCP and TLS connectors; the stream is generic, so tests drive it
//!   over in-memory pipes.
//! - [`wire`]: command encoding and the bounded reply decoder.
//! - [`backoff`]: reconnect pacing.
//! - [`policy`]: what an eviction policy means for the vote.
//! - [`identity`]: one server, one vote, whatever addresses reach it.
//! - [`replication`]: what `INFO replication` says about a server's past
//!   (a replica promoted in a master's place).

pub mod backoff;
mod conn;
pub mod identity;
pub mod policy;
pub mod replication;
pub mod wire;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn, Instrument};

use crate::config::{MasterConfig, MasterTuning};
use crate::metrics::MasterMetrics;
use crate::scripts::{Script, ScriptSet};

use conn::{Connector, Handshake, TcpConnector, TlsConnector};
use identity::Peers;
use policy::{Eviction, Verdict};

/// A request on its way to the writer.
pub(crate) struct Request {
    /// The whole command, RESP2-encoded by the caller.
    pub bytes: Bytes,
    pub reply: oneshot::Sender<Result<Value, MasterError>>,
    /// Held until the reply is read (or the connection dies), so
    /// `max_inflight` bounds requests queued *and* on the wire.
    pub permit: OwnedSemaphorePermit,
    /// When the caller handed it over; the reader observes the latency.
    pub started: Instant,
}

/// How a master with `tls = true` is reached: the shared rustls client
/// configuration (CA, optional client certificate) and the name its
/// certificate must carry.
#[derive(Clone)]
pub struct MasterTlsClient {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: rustls_pki_types::ServerName<'static>,
}

/// A reply from a master, decoded from RESP2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Nil,
    Int(i64),
    Bulk(Bytes),
    Status(Bytes),
    Error(Bytes),
    Array(Vec<Value>),
}

/// Why a request to a master produced no usable reply. The master (or the
/// path to it) is at fault, never the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterError {
    #[error("master is down")]
    Down,
    #[error("master did not answer within its deadline")]
    Timeout,
    #[error("connection to master lost")]
    ConnectionLost,
    #[error("too many requests queued for master")]
    Overloaded,
    #[error("master replied with an error: {0}")]
    Reply(String),
    #[error("master sent a malformed reply: {0}")]
    Protocol(String),
}

impl MasterError {
    /// The `kind` label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            MasterError::Down => "down",
            MasterError::Timeout => "timeout",
            MasterError::ConnectionLost => "connection",
            MasterError::Overloaded => "overloaded",
            // A noeviction master at its maxmemory: the operator's cue to
            // give it memory, not a fault of the script.
            MasterError::Reply(e) if e.starts_with("OOM") => "oom",
            MasterError::Reply(_) => "reply",
            MasterError::Protocol(_) => "protocol",
        }
    }
}

/// Health of a master. Only `Up` masters vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterState {
    Up = 0,
    Down = 1,
    /// Connected, but its metadata record is missing: it forgot its data.
    Amnesia = 2,
    /// Connected, record missing, waiting out the quarantine before re-seed.
    Quarantined = 3,
    /// Connected, but its `maxmemory-policy` can evict the gateway's keys.
    Evicting = 4,
    /// Connected, but its policy can be neither read nor taken from the
    /// configuration.
    PolicyUnknown = 5,
    /// Connected to a server another configured master already reaches.
    Duplicate = 6,
    /// Connected, but a replica promoted since its record was written: it
    /// may lack its old master's last writes. Quarantined like amnesia.
    Promoted = 7,
    /// Connected, but its record was written for another layout of the
    /// gateway's keys.
    LayoutMismatch = 8,
    /// Connected, but the master set recorded on it is not this gateway's.
    SetMismatch = 9,
}

impl MasterState {
    pub fn as_str(self) -> &'static str {
        match self {
            MasterState::Up => "up",
            MasterState::Down => "down",
            MasterState::Amnesia => "amnesia",
            MasterState::Quarantined => "quarantined",
            MasterState::Evicting => "evicting",
            MasterState::PolicyUnknown => "policy_unknown",
            MasterState::Duplicate => "duplicate",
            MasterState::Promoted => "promoted",
            MasterState::LayoutMismatch => "layout_mismatch",
            MasterState::SetMismatch => "set_mismatch",
        }
    }
}

/// The recovery flag the lock engine sets; combined with link health it
/// gives [`MasterState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    Healthy = 0,
    Amnesia = 1,
    Quarantined = 2,
    /// A promoted replica, quarantined and then re-seeded like amnesia.
    Promoted = 3,
    /// Its record names another key layout version.
    LayoutMismatch = 4,
    /// Its record names another master set.
    SetMismatch = 5,
}

/// State shared by the [`Master`] handle and its connection task.
pub(crate) struct Shared {
    name: String,
    /// Position in the configured list, the seat in `peers`.
    index: usize,
    /// Mirrors `Link::up` for lock-free reads on the hot path.
    up: AtomicBool,
    recovery: AtomicU8,
    /// Mirrors `Link::generation`.
    generation: AtomicU64,
    /// Consecutive timeouts on the current connection.
    timeouts: AtomicU32,
    /// When the last counted timeout happened, in ns since `epoch` (0:
    /// none). A timeout of a request sent before then was in flight during
    /// the same silence and is not counted again.
    last_timeout: AtomicU64,
    epoch: Instant,
    down_after_timeouts: u32,
    link: Mutex<Link>,
    /// `true` while the link is up; lets tests and callers await it.
    connected: watch::Sender<bool>,
    /// Cancelled by `shutdown` or when the last handle is dropped.
    stop: CancellationToken,
    metrics: MasterMetrics,
    /// An [`Eviction`], from the last read of the policy.
    eviction: AtomicU8,
    /// The words behind `eviction`, for `/readyz` and the logs.
    verdict: Mutex<Option<Verdict>>,
    /// What the operator declared, for a master that refuses `CONFIG`.
    declared_policy: Option<String>,
    /// Set while another master holds the claim on this one's server.
    duplicate: AtomicBool,
    /// That master's name.
    duplicate_of: Mutex<Option<String>>,
    /// Test hooks for the negative controls: off, the verdicts are still
    /// made and shown in logs but no longer withhold the vote.
    eviction_guard: AtomicBool,
    identity_guard: AtomicBool,
    /// The claims of every master of this gateway.
    peers: Arc<Peers>,
    /// The master id read from its metadata record, once known.
    master_id: Mutex<Option<String>>,
    /// Why the record withholds the vote (promotion, layout, set), in the
    /// operator's words; set with the recovery flag.
    record_detail: Mutex<Option<String>>,
    /// `true` once the first connection attempt ended, either way; the
    /// start-up check waits for it.
    attempted: watch::Sender<bool>,
}

/// The part of [`Shared`] only changed under its mutex.
struct Link {
    up: bool,
    generation: u64,
    /// Cancels the current connection (too many timeouts, shutdown).
    kill: Option<CancellationToken>,
}

/// What every master of one gateway shares: the link tuning, the scripts,
/// and the claims that keep one server to one vote ([`identity`]).
pub struct MasterSet {
    tuning: MasterTuning,
    max_nesting: usize,
    scripts: Arc<ScriptSet>,
    peers: Arc<Peers>,
}

/// One master: a handle onto its connection task. Dropping the last handle
/// stops the task, as [`Master::shutdown`] does.
pub struct Master {
    index: usize,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Request>,
    inflight: Arc<Semaphore>,
}

// === impl Shared ===

impl Shared {
    fn new(
        index: usize,
        cfg: &MasterConfig,
        down_after_timeouts: u32,
        metrics: MasterMetrics,
        peers: Arc<Peers>,
    ) -> Self {
        Shared {
            name: cfg.address.clone(),
            index,
            up: AtomicBool::new(false),
            recovery: AtomicU8::new(Recovery::Healthy as u8),
            generation: AtomicU64::new(0),
            timeouts: AtomicU32::new(0),
            last_timeout: AtomicU64::new(0),
            epoch: Instant::now(),
            // Zero would mean "down before the first timeout", which is
            // meaningless; config validation rejects it, this is a backstop.
            down_after_timeouts: down_after_timeouts.max(1),
            link: Mutex::new(Link {
                up: false,
                generation: 0,
                kill: None,
            }),
            connected: watch::Sender::new(false),
            stop: CancellationToken::new(),
            metrics,
            eviction: AtomicU8::new(Eviction::Unknown as u8),
            verdict: Mutex::new(None),
            declared_policy: cfg.eviction_policy.clone(),
            duplicate: AtomicBool::new(false),
            duplicate_of: Mutex::new(None),
            eviction_guard: AtomicBool::new(true),
            identity_guard: AtomicBool::new(true),
            peers,
            master_id: Mutex::new(None),
            record_detail: Mutex::new(None),
            attempted: watch::Sender::new(false),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn metrics(&self) -> &MasterMetrics {
        &self.metrics
    }

    pub(crate) fn stop_token(&self) -> &CancellationToken {
        &self.stop
    }

    fn lock(&self) -> MutexGuard<'_, Link> {
        // Nothing panics while holding it; a poisoned lock still holds a
        // consistent `Link`.
        self.link.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> MasterState {
        if !self.up.load(Ordering::Acquire) {
            return MasterState::Down;
        }
        if self.duplicate.load(Ordering::Acquire) && self.identity_guard.load(Ordering::Acquire) {
            return MasterState::Duplicate;
        }
        if self.eviction_guard.load(Ordering::Acquire) {
            match Eviction::from_u8(self.eviction.load(Ordering::Acquire)) {
                Eviction::Safe => {}
                Eviction::Evicting => return MasterState::Evicting,
                Eviction::Unknown => return MasterState::PolicyUnknown,
            }
        }
        match self.recovery() {
            Recovery::Healthy => MasterState::Up,
            Recovery::Amnesia => MasterState::Amnesia,
            Recovery::Quarantined => MasterState::Quarantined,
            Recovery::Promoted => MasterState::Promoted,
            Recovery::LayoutMismatch => MasterState::LayoutMismatch,
            Recovery::SetMismatch => MasterState::SetMismatch,
        }
    }

    fn recovery(&self) -> Recovery {
        match self.recovery.load(Ordering::Acquire) {
            1 => Recovery::Amnesia,
            2 => Recovery::Quarantined,
            3 => Recovery::Promoted,
            4 => Recovery::LayoutMismatch,
            5 => Recovery::SetMismatch,
            _ => Recovery::Healthy,
        }
    }

    /// Call with the link lock held, so concurrent transitions cannot leave
    /// the gauge showing a state the master is no longer in.
    fn publish_state(&self, _held: &MutexGuard<'_, Link>) {
        self.metrics.set_state(self.state() as usize);
    }

    /// A connection finished its handshake; `kill` tears it down. Returns
    /// the new connection generation, or `None` when the master was shut
    /// down meanwhile (it then never reports `Up` again).
    pub(crate) fn link_up(&self, kill: CancellationToken) -> Option<u64> {
        let mut link = self.lock();
        if self.stop.is_cancelled() {
            kill.cancel();
            return None;
        }
        link.generation += 1;
        link.up = true;
        if let Some(old) = link.kill.replace(kill) {
            old.cancel();
        }
        self.timeouts.store(0, Ordering::Relaxed);
        self.generation.store(link.generation, Ordering::Release);
        self.up.store(true, Ordering::Release);
        self.publish_state(&link);
        self.connected.send_replace(true);
        info!(master = %self.name, generation = link.generation, "master up");
        Some(link.generation)
    }

    /// Marks the link down (once) and cancels the current connection.
    pub(crate) fn link_down(&self, cause: &str) {
        let mut link = self.lock();
        if let Some(kill) = link.kill.take() {
            kill.cancel();
        }
        if !link.up {
            return;
        }
        link.up = false;
        self.up.store(false, Ordering::Release);
        self.publish_state(&link);
        self.connected.send_replace(false);
        info!(master = %self.name, cause, "master down");
    }

    pub(crate) fn declared_policy(&self) -> Option<&str> {
        self.declared_policy.as_deref()
    }

    pub(crate) fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// The first connection attempt ended (either way).
    pub(crate) fn attempted(&self) {
        self.attempted.send_replace(true);
    }

    /// Records a reading of the policy; logs only when the vote changes,
    /// so a master left evicting is not logged every interval.
    pub(crate) fn set_policy(&self, v: Verdict) {
        let link = self.lock();
        let before = Eviction::from_u8(self.eviction.swap(v.eviction as u8, Ordering::AcqRel));
        self.publish_state(&link);
        drop(link);
        let mut slot = self.verdict.lock().unwrap_or_else(|p| p.into_inner());
        let first = slot.is_none();
        if before != v.eviction || first {
            match v.eviction {
                Eviction::Safe if !first => {
                    info!(master = %self.name, detail = %v.detail, "master votes again: maxmemory-policy noeviction")
                }
                Eviction::Safe => {}
                Eviction::Evicting => warn!(
                    master = %self.name,
                    maxmemory_policy = %v.policy,
                    detail = %v.detail,
                    "master's maxmemory-policy can evict lock keys or fence registers: it does not                      vote until it runs with noeviction; fix: {}",
                    policy::FIX
                ),
                Eviction::Unknown => warn!(
                    master = %self.name,
                    detail = %v.detail,
                    "cannot tell whether master may evict keys: it does not vote"
                ),
            }
        }
        *slot = Some(v);
    }

    /// A new connection reached a server with a second replication
    /// history: until the amnesia guard has compared it with the record,
    /// it might be a promoted replica, so it does not vote (`promoted`).
    /// A master already held out for its record keeps that state.
    pub(crate) fn hold_until_checked(&self) {
        if self.recovery() != Recovery::Healthy {
            return;
        }
        *self.record_detail.lock().unwrap_or_else(|p| p.into_inner()) = Some(
            "the server shows a second replication history (a promoted replica?): not voting \
             until its metadata record is checked"
                .to_string(),
        );
        let link = self.lock();
        self.recovery
            .store(Recovery::Promoted as u8, Ordering::Release);
        self.publish_state(&link);
    }

    /// Marks this master a second address of the server `of` holds (or
    /// clears it); called by [`Peers`] only.
    pub(crate) fn set_duplicate(&self, of: Option<String>) {
        let is = of.is_some();
        // The name first, so whoever sees the flag finds it.
        *self.duplicate_of.lock().unwrap_or_else(|p| p.into_inner()) = of;
        let link = self.lock();
        self.duplicate.store(is, Ordering::Release);
        self.publish_state(&link);
    }

    /// The master holding this one's server, while this one is a duplicate.
    fn duplicate_of(&self) -> Option<String> {
        if !self.duplicate.load(Ordering::Acquire) {
            return None;
        }
        self.duplicate_of
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A caller's request sent at `sent` on connection `generation` timed
    /// out.
    fn note_timeout(&self, generation: u64, sent: Instant) {
        let nanos = |t: Instant| {
            u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
        };
        let last = self.last_timeout.load(Ordering::Acquire);
        if last != 0 && nanos(sent) < last {
            return;
        }
        // Of several timeouts at the same moment only the one that moves
        // `last_timeout` counts; the others belong to the same silence.
        let now = nanos(Instant::now()).max(1);
        if self
            .last_timeout
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let n = self
            .timeouts
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if n < self.down_after_timeouts {
            return;
        }
        {
            let link = self.lock();
            // A timeout from an older connection says nothing about this one.
            if !link.up || link.generation != generation {
                return;
            }
        }
        self.link_down(&format!("{n} consecutive request timeouts"));
    }

    /// A caller got an answer in time: the master is alive.
    fn note_answer(&self) {
        // Load first: under load most replies find the count at zero, and a
        // plain load keeps the cache line shared between cores.
        if self.timeouts.load(Ordering::Relaxed) != 0 {
            self.timeouts.store(0, Ordering::Relaxed);
        }
    }
}

// === impl MasterSet ===

impl MasterSet {
    pub fn new(tuning: MasterTuning, max_nesting: usize, scripts: Arc<ScriptSet>) -> Self {
        MasterSet {
            tuning,
            max_nesting,
            scripts,
            peers: Arc::default(),
        }
    }

    /// [`Master::spawn`] as one of this set, so that two of its masters
    /// reaching one server never both vote.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn spawn(
        &self,
        index: usize,
        cfg: MasterConfig,
        metrics: MasterMetrics,
        tls: Option<MasterTlsClient>,
    ) -> Arc<Master> {
        if cfg.tls {
            let Some(tls) = tls else {
                error!(
                    master = %cfg.address,
                    "tls = true but no TLS client configuration; this master stays down"
                );
                let (m, _rx) = Master::new(index, &cfg, &self.tuning, metrics, self.peers.clone());
                m.shared.attempted();
                return m;
            };
            let connector = TlsConnector::new(cfg.address.clone(), tls.config, tls.server_name);
            return self.spawn_with(index, cfg, metrics, connector);
        }
        let connector = TcpConnector::new(cfg.address.clone());
        self.spawn_with(index, cfg, metrics, connector)
    }

    /// [`MasterSet::spawn`] over any transport (tests use in-memory pipes).
    pub(crate) fn spawn_with<C: Connector>(
        &self,
        index: usize,
        cfg: MasterConfig,
        metrics: MasterMetrics,
        connector: C,
    ) -> Arc<Master> {
        let tuning = self.tuning.clone();
        let (m, rx) = Master::new(index, &cfg, &tuning, metrics, self.peers.clone());
        let handshake = Handshake::new(
            &cfg,
            self.scripts.clone(),
            tuning.connect_timeout,
            self.max_nesting,
        );
        let span = tracing::info_span!("master", name = %cfg.address);
        tokio::spawn(
            watch_policy(
                Arc::downgrade(&m),
                tuning.policy_check,
                tuning.connect_timeout,
            )
            .instrument(span.clone()),
        );
        tokio::spawn(
            conn::supervise(m.shared.clone(), connector, handshake, tuning, rx).instrument(span),
        );
        m
    }
}

/// Reads the policy of `master` again every `every` while its link is up,
/// until the master is dropped or shut down.
async fn watch_policy(master: std::sync::Weak<Master>, every: Duration, timeout: Duration) {
    let Some(stop) = master.upgrade().map(|m| m.shared.stop.clone()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let Some(m) = master.upgrade() else { return };
        if !m.shared.up.load(Ordering::Acquire) {
            continue; // the next connect reads it anyway
        }
        let generation = m.connection_generation();
        let read = m.probe(&policy::CONFIG_GET, Instant::now() + timeout).await;
        let verdict = match &read {
            Ok(v) => policy::judge(Ok(v), m.shared.declared_policy()),
            Err(MasterError::Reply(e)) => policy::judge(Err(e), m.shared.declared_policy()),
            // No answer says nothing about the policy: keep the last
            // reading. A master that stays silent is marked down anyway.
            Err(_) => continue,
        };
        // A reading from a connection that has since been replaced must
        // not overwrite the newer connection's own.
        if m.connection_generation() == generation {
            m.shared.set_policy(verdict);
        }
    }
}

/// Waits until every master's first connection attempt has ended (at most
/// four connect timeouts), then refuses a master list in which two
/// addresses reached the same server, naming both. A master still
/// connecting by then is checked when it does connect: as a duplicate it
/// would simply not vote.
///
/// # Errors
/// The message for the operator, naming each pair of addresses.
pub async fn refuse_duplicates(
    masters: &[Arc<Master>],
    tuning: &MasterTuning,
) -> Result<(), String> {
    let give_up = Instant::now() + tuning.connect_timeout.saturating_mul(4);
    for m in masters {
        let mut rx = m.shared.attempted.subscribe();
        let _ = tokio::time::timeout_at(give_up, rx.wait_for(|done| *done)).await;
    }
    let pairs: Vec<String> = masters
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let of = m.shared.duplicate_of()?;
            // In the order of the configured list, whichever connected first.
            let pair = match masters.iter().position(|h| h.name() == of) {
                Some(h) if h > i => format!("{} and {of}", m.name()),
                _ => format!("{of} and {}", m.name()),
            };
            Some(format!("{pair} reach the same Redis server"))
        })
        .collect();
    if pairs.is_empty() {
        return Ok(());
    }
    Err(format!(
        "masters: {}; one server must not cast two votes: list each server once",
        pairs.join("; ")
    ))
}

// === impl Master ===

impl Master {
    /// Starts the connection task (connect, AUTH, SCRIPT LOAD, reconnect with
    /// jittered backoff) and returns the handle at once; the master starts
    /// `Down` and turns `Up` when its first connection is ready.
    ///
    /// A master with `cfg.tls = true` is reached with `tls`. Given none, the
    /// error is logged and the master stays `Down`: credentials are never
    /// sent in clear text to a master the operator meant to reach over TLS.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn spawn(
        index: usize,
        cfg: MasterConfig,
        tuning: MasterTuning,
        max_nesting: usize,
        scripts: Arc<ScriptSet>,
        metrics: MasterMetrics,
        tls: Option<MasterTlsClient>,
    ) -> Arc<Master> {
        MasterSet::new(tuning, max_nesting, scripts).spawn(index, cfg, metrics, tls)
    }

    fn new(
        index: usize,
        cfg: &MasterConfig,
        tuning: &MasterTuning,
        metrics: MasterMetrics,
        peers: Arc<Peers>,
    ) -> (Arc<Master>, mpsc::Receiver<Request>) {
        let limit = tuning.max_inflight.clamp(1, Semaphore::MAX_PERMITS);
        let (tx, rx) = mpsc::channel(limit);
        let shared = Arc::new(Shared::new(
            index,
            cfg,
            tuning.down_after_timeouts,
            metrics,
            peers,
        ));
        {
            let link = shared.lock();
            shared.publish_state(&link);
        }
        let m = Arc::new(Master {
            index,
            shared,
            tx,
            inflight: Arc::new(Semaphore::new(limit)),
        });
        (m, rx)
    }

    /// Position in the configured master list.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The configured address, used in logs and metric labels.
    pub fn name(&self) -> &str {
        self.shared.name()
    }

    /// Link health combined with the recovery flag.
    pub fn state(&self) -> MasterState {
        self.shared.state()
    }

    /// Only `Up` masters are sent lock requests.
    pub fn is_voting(&self) -> bool {
        self.state() == MasterState::Up
    }

    /// Why a connected master does not vote, in the operator's words (the
    /// setting and its fix, or the other address of its server); `None`
    /// while it votes, is down, or waits on the amnesia guard.
    pub fn guard_detail(&self) -> Option<String> {
        match self.state() {
            MasterState::Evicting | MasterState::PolicyUnknown => self
                .shared
                .verdict
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|v| v.detail.clone()),
            MasterState::Duplicate => self
                .shared
                .duplicate_of()
                .map(|of| format!("reaches the same Redis server as {of}")),
            MasterState::Promoted | MasterState::LayoutMismatch | MasterState::SetMismatch => self
                .shared
                .record_detail
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            _ => None,
        }
    }

    /// Test hook for the negative controls: with `false`, an evicting or
    /// unknown policy no longer withholds this master's vote.
    pub fn set_eviction_guard(&self, on: bool) {
        let link = self.shared.lock();
        self.shared.eviction_guard.store(on, Ordering::Release);
        self.shared.publish_state(&link);
    }

    /// Test hook for the negative controls: with `false`, a second address
    /// of a server votes as if it were another server.
    pub fn set_identity_guard(&self, on: bool) {
        let link = self.shared.lock();
        self.shared.identity_guard.store(on, Ordering::Release);
        self.shared.publish_state(&link);
    }

    /// Set by the lock engine's recovery task.
    pub fn set_recovery(&self, r: Recovery) {
        let link = self.shared.lock();
        self.shared.recovery.store(r as u8, Ordering::Release);
        self.shared.publish_state(&link);
    }

    pub fn recovery(&self) -> Recovery {
        self.shared.recovery()
    }

    /// Sets the recovery flag with the words behind it (shown by
    /// [`Master::guard_detail`] for the record's own states).
    pub fn set_recovery_detail(&self, r: Recovery, detail: Option<String>) {
        *self
            .shared
            .record_detail
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = detail;
        self.set_recovery(r);
    }

    /// The master id from this master's metadata record, once read.
    pub fn master_id(&self) -> Option<String> {
        self.shared
            .master_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Set by the amnesia guard whenever it reads the record; logs the id
    /// when it is learned or changes.
    pub fn set_master_id(&self, id: Option<String>) {
        let mut slot = self
            .shared
            .master_id
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(new) = id.as_deref() {
            if slot.as_deref() != Some(new) {
                info!(master = %self.name(), master_id = %new, "master id (from its metadata record)");
            }
        }
        *slot = id;
    }

    /// Bumped on every successful (re)connect, so recovery can re-check the
    /// metadata record of a master that may have restarted. 0 until the
    /// first connection is up.
    pub fn connection_generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Waits until the link is up (at once if it already is) or `timeout`
    /// passes; returns whether it is up.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.shared.connected.subscribe();
        let up = tokio::time::timeout(timeout, rx.wait_for(|up| *up)).await;
        matches!(up, Ok(Ok(_)))
    }

    /// Runs `script` with EVALSHA, retrying once with EVAL and the body on a
    /// `NOSCRIPT` reply (the master lost its script cache), both by
    /// `deadline`.
    ///
    /// # Errors
    /// [`MasterError::Down`] at once when the link is down; see
    /// [`MasterError`] for the rest. An error reply from the script is
    /// [`MasterError::Reply`].
    pub async fn eval(
        &self,
        script: &Script,
        keys: &[&[u8]],
        args: &[&[u8]],
        deadline: Instant,
    ) -> Result<Value, MasterError> {
        let bytes = wire::encode_eval(b"EVALSHA", script.sha1.as_bytes(), keys, args);
        let result = match self.send(bytes, deadline).await {
            Err(MasterError::Reply(e)) if e.starts_with("NOSCRIPT") => {
                let bytes = wire::encode_eval(b"EVAL", script.body.as_bytes(), keys, args);
                self.send(bytes, deadline).await
            }
            other => other,
        };
        self.count(result)
    }

    /// Sends a plain command, answering by `deadline`.
    ///
    /// # Errors
    /// As [`Master::eval`].
    pub async fn call(&self, args: &[&[u8]], deadline: Instant) -> Result<Value, MasterError> {
        let result = self.send(wire::encode_command(args), deadline).await;
        self.count(result)
    }

    /// Closes the connection and stops reconnecting. The master is `Down`
    /// when this returns; pending callers get
    /// [`MasterError::ConnectionLost`].
    pub fn shutdown(&self) {
        self.shared.stop.cancel();
        self.shared.link_down("shutdown");
    }

    /// Errors are counted once per caller-visible result, so a NOSCRIPT
    /// that the EVAL fallback repaired is not an error.
    fn count(&self, result: Result<Value, MasterError>) -> Result<Value, MasterError> {
        if let Err(e) = &result {
            self.shared.metrics.error(e.kind());
        }
        result
    }

    /// A command of the gateway's own upkeep (the policy re-read): like
    /// [`Master::call`], but neither counted as a master error nor as a
    /// timeout towards marking the master down, which only the lock
    /// traffic decides.
    async fn probe(&self, args: &[&[u8]], deadline: Instant) -> Result<Value, MasterError> {
        let queued = self.enqueue(wire::encode_command(args), deadline)?;
        match tokio::time::timeout_at(deadline, queued.rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(MasterError::ConnectionLost),
            Err(_) => Err(MasterError::Timeout),
        }
    }

    /// Hands pre-encoded bytes to the writer and waits for the reply until
    /// `deadline`. Never waits for anything but the reply itself.
    async fn send(&self, bytes: Bytes, deadline: Instant) -> Result<Value, MasterError> {
        let queued = self.enqueue(bytes, deadline)?;
        self.wait(queued, deadline).await
    }

    /// Puts a request in this master's FIFO at once (no await), so requests
    /// enqueued one after another reach the master in that order.
    fn enqueue(&self, bytes: Bytes, deadline: Instant) -> Result<InQueue, MasterError> {
        if !self.shared.up.load(Ordering::Acquire) {
            return Err(MasterError::Down);
        }
        let generation = self.shared.generation.load(Ordering::Acquire);
        let started = Instant::now();
        if deadline <= started {
            // Nothing could answer in time; not the master's fault, so it
            // does not count towards marking it down.
            return Err(MasterError::Timeout);
        }
        let Ok(permit) = self.inflight.clone().try_acquire_owned() else {
            return Err(MasterError::Overloaded);
        };
        let (reply, rx) = oneshot::channel();
        let request = Request {
            bytes,
            reply,
            permit,
            started,
        };
        match self.tx.try_send(request) {
            Ok(()) => Ok(InQueue {
                rx,
                generation,
                sent: started,
            }),
            Err(mpsc::error::TrySendError::Full(_)) => Err(MasterError::Overloaded),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(MasterError::Down),
        }
    }

    /// Waits for the reply to an enqueued request until `deadline`.
    async fn wait(&self, queued: InQueue, deadline: Instant) -> Result<Value, MasterError> {
        match tokio::time::timeout_at(deadline, queued.rx).await {
            Ok(Ok(result)) => {
                if matches!(result, Ok(_) | Err(MasterError::Reply(_))) {
                    self.shared.note_answer();
                }
                result
            }
            // The connection task dropped the slot without answering.
            Ok(Err(_)) => Err(MasterError::ConnectionLost),
            Err(_) => {
                self.shared.note_timeout(queued.generation, queued.sent);
                Err(MasterError::Timeout)
            }
        }
    }

    /// Runs a lockgate script like [`Master::eval`], but its EVALSHA enters
    /// this master's FIFO *now*, before this returns, rather than when the
    /// returned future is first polled. The engine relies on this: a release
    /// left to finish in the background must reach every master before the
    /// next acquire by the same owner, or it would delete that new lock.
    ///
    /// Without `fallback`, a NOSCRIPT is not retried with EVAL (a retry would
    /// be enqueued late, behind later requests); the scripts are reloaded in
    /// the background instead and this master simply does not vote.
    pub fn eval_now(
        self: &Arc<Self>,
        script: &Script,
        keys: &[Bytes],
        args: &[Bytes],
        deadline: Instant,
        fallback: bool,
    ) -> impl std::future::Future<Output = Result<Value, MasterError>> + Send + 'static {
        let k: Vec<&[u8]> = keys.iter().map(|b| &b[..]).collect();
        let a: Vec<&[u8]> = args.iter().map(|b| &b[..]).collect();
        let queued = self.enqueue(
            wire::encode_eval(b"EVALSHA", script.sha1.as_bytes(), &k, &a),
            deadline,
        );
        let retry = fallback.then(|| wire::encode_eval(b"EVAL", script.body.as_bytes(), &k, &a));
        let reload = wire::encode_command(&[b"SCRIPT", b"LOAD", script.body.as_bytes()]);
        let this = self.clone();
        async move {
            let result = match queued {
                Ok(q) => this.wait(q, deadline).await,
                Err(e) => Err(e),
            };
            let result = match (result, retry) {
                (Err(MasterError::Reply(e)), Some(eval)) if e.starts_with("NOSCRIPT") => {
                    this.send(eval, deadline).await
                }
                (Err(MasterError::Reply(e)), None) if e.starts_with("NOSCRIPT") => {
                    let _ = this.send(reload, deadline).await;
                    Err(MasterError::Reply(e))
                }
                (other, _) => other,
            };
            this.count(result)
        }
    }
}

/// A request in a master's FIFO, awaiting its reply.
struct InQueue {
    rx: oneshot::Receiver<Result<Value, MasterError>>,
    generation: u64,
    sent: Instant,
}

impl Drop for Master {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

impl std::fmt::Debug for Master {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Master")
            .field("index", &self.index)
            .field("name", &self.shared.name)
            .field("state", &self.state())
            .field("generation", &self.connection_generation())
            .finish()
    }
}
