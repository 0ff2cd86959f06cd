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
//! handshake whose certificate verified), AUTH, PING and SCRIPT LOAD all
//! succeeded, each step within `connect_timeout`. A certificate that fails
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

pub mod backoff;
mod conn;
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
use tracing::{error, info, Instrument};

use crate::config::{MasterConfig, MasterTuning};
use crate::metrics::MasterMetrics;
use crate::scripts::{Script, ScriptSet};

use conn::{Connector, Handshake, TcpConnector, TlsConnector};

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
}

impl MasterState {
    pub fn as_str(self) -> &'static str {
        match self {
            MasterState::Up => "up",
            MasterState::Down => "down",
            MasterState::Amnesia => "amnesia",
            MasterState::Quarantined => "quarantined",
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
}

/// State shared by the [`Master`] handle and its connection task.
pub(crate) struct Shared {
    name: String,
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
}

/// The part of [`Shared`] only changed under its mutex.
struct Link {
    up: bool,
    generation: u64,
    /// Cancels the current connection (too many timeouts, shutdown).
    kill: Option<CancellationToken>,
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
    fn new(name: String, down_after_timeouts: u32, metrics: MasterMetrics) -> Self {
        Shared {
            name,
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
        match self.recovery() {
            Recovery::Healthy => MasterState::Up,
            Recovery::Amnesia => MasterState::Amnesia,
            Recovery::Quarantined => MasterState::Quarantined,
        }
    }

    fn recovery(&self) -> Recovery {
        match self.recovery.load(Ordering::Acquire) {
            1 => Recovery::Amnesia,
            2 => Recovery::Quarantined,
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
        if cfg.tls {
            let Some(tls) = tls else {
                error!(
                    master = %cfg.address,
                    "tls = true but no TLS client configuration; this master stays down"
                );
                let (m, _rx) = Master::new(index, &cfg, &tuning, metrics);
                return m;
            };
            let connector = TlsConnector::new(cfg.address.clone(), tls.config, tls.server_name);
            return Master::spawn_with(
                index,
                cfg,
                tuning,
                max_nesting,
                scripts,
                metrics,
                connector,
            );
        }
        let connector = TcpConnector::new(cfg.address.clone());
        Master::spawn_with(index, cfg, tuning, max_nesting, scripts, metrics, connector)
    }

    /// [`Master::spawn`] over any transport (tests use in-memory pipes).
    pub(crate) fn spawn_with<C: Connector>(
        index: usize,
        cfg: MasterConfig,
        tuning: MasterTuning,
        max_nesting: usize,
        scripts: Arc<ScriptSet>,
        metrics: MasterMetrics,
        connector: C,
    ) -> Arc<Master> {
        let (m, rx) = Master::new(index, &cfg, &tuning, metrics);
        let handshake = Handshake::new(&cfg, scripts, tuning.connect_timeout, max_nesting);
        let span = tracing::info_span!("master", name = %cfg.address);
        tokio::spawn(
            conn::supervise(m.shared.clone(), connector, handshake, tuning, rx).instrument(span),
        );
        m
    }

    fn new(
        index: usize,
        cfg: &MasterConfig,
        tuning: &MasterTuning,
        metrics: MasterMetrics,
    ) -> (Arc<Master>, mpsc::Receiver<Request>) {
        let limit = tuning.max_inflight.clamp(1, Semaphore::MAX_PERMITS);
        let (tx, rx) = mpsc::channel(limit);
        let shared = Arc::new(Shared::new(
            cfg.address.clone(),
            tuning.down_after_timeouts,
            metrics,
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

    /// Set by the lock engine's recovery task.
    pub fn set_recovery(&self, r: Recovery) {
        let link = self.shared.lock();
        self.shared.recovery.store(r as u8, Ordering::Release);
        self.shared.publish_state(&link);
    }

    pub fn recovery(&self) -> Recovery {
        self.shared.recovery()
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
