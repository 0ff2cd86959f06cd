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
//! A master is `Up` only after connect, AUTH, PING and SCRIPT LOAD all
//! succeeded within `connect_timeout`. Calls to a master that is not `Up`
//! fail at once with [`MasterError::Down`]: a dead master costs nothing. A
//! master that stops answering (SIGSTOP, blackhole) is marked down after
//! `down_after_timeouts` consecutive timeouts; its connection is dropped and
//! the reconnect loop (exponential backoff with full jitter, host re-resolved
//! each time) brings it back once PING answers again.
//!
//! - [`conn`]: the connection task (writer, reader, FIFO).
//! - [`wire`]: command encoding and the bounded reply decoder.

pub mod conn;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::config::{MasterConfig, MasterTuning};
use crate::metrics::MasterMetrics;
use crate::scripts::{Script, ScriptSet};

/// A request on its way to the writer: encoded bytes and the reply slot.
pub(crate) struct Request {
    pub bytes: Bytes,
    pub reply: oneshot::Sender<Result<Value, MasterError>>,
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

/// One master: a handle onto its connection task.
pub struct Master {
    index: usize,
    name: String,
    up: AtomicBool,
    recovery: AtomicU8,
    generation: AtomicU64,
    timeouts: AtomicU32,
    tuning: MasterTuning,
    tx: mpsc::Sender<Request>,
    /// Tears the current connection down (too many timeouts).
    kick: Notify,
    stop: CancellationToken,
    metrics: MasterMetrics,
    state_lock: Mutex<()>,
}

// === impl Master ===

impl Master {
    /// Starts the connection task (connect, AUTH, SCRIPT LOAD, reconnect with
    /// jittered backoff) and returns the handle at once; the master starts
    /// `Down` and turns `Up` when its first connection is ready.
    pub fn spawn(
        index: usize,
        cfg: MasterConfig,
        tuning: MasterTuning,
        max_nesting: usize,
        scripts: Arc<ScriptSet>,
        metrics: MasterMetrics,
    ) -> Arc<Master> {
        let (tx, rx) = mpsc::channel(tuning.max_inflight.max(1));
        let m = Arc::new(Master {
            index,
            name: cfg.address.clone(),
            up: AtomicBool::new(false),
            recovery: AtomicU8::new(Recovery::Healthy as u8),
            generation: AtomicU64::new(0),
            timeouts: AtomicU32::new(0),
            tuning,
            tx,
            kick: Notify::new(),
            stop: CancellationToken::new(),
            metrics,
            state_lock: Mutex::new(()),
        });
        m.publish_state();
        if cfg.tls {
            warn!(master = %cfg.address, "TLS towards masters is not supported yet; connecting in plain TCP");
        }
        tokio::spawn(conn::supervise(m.clone(), cfg, max_nesting, scripts, rx));
        m
    }

    /// Position in the configured master list.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The configured address, used in logs and metric labels.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Link health combined with the recovery flag.
    pub fn state(&self) -> MasterState {
        if !self.up.load(Ordering::Acquire) {
            return MasterState::Down;
        }
        match self.recovery() {
            Recovery::Healthy => MasterState::Up,
            Recovery::Amnesia => MasterState::Amnesia,
            Recovery::Quarantined => MasterState::Quarantined,
        }
    }

    /// Only `Up` masters are sent lock requests.
    pub fn is_voting(&self) -> bool {
        self.state() == MasterState::Up
    }

    /// Set by the lock engine's recovery task.
    pub fn set_recovery(&self, r: Recovery) {
        self.recovery.store(r as u8, Ordering::Release);
        self.publish_state();
    }

    pub fn recovery(&self) -> Recovery {
        match self.recovery.load(Ordering::Acquire) {
            1 => Recovery::Amnesia,
            2 => Recovery::Quarantined,
            _ => Recovery::Healthy,
        }
    }

    /// Bumped on every successful (re)connect, so recovery can re-check the
    /// metadata record of a master that may have restarted.
    pub fn connection_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn set_link(&self, up: bool) {
        if up {
            self.timeouts.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        self.up.store(up, Ordering::Release);
        self.publish_state();
    }

    fn publish_state(&self) {
        // Serialised so the one-hot gauge never shows two states at once.
        let _g = self.state_lock.lock();
        self.metrics.set_state(self.state() as usize);
    }

    pub(crate) fn metrics(&self) -> &MasterMetrics {
        &self.metrics
    }

    pub(crate) fn tuning(&self) -> &MasterTuning {
        &self.tuning
    }

    pub(crate) fn stop_token(&self) -> &CancellationToken {
        &self.stop
    }

    pub(crate) fn kicked(&self) -> &Notify {
        &self.kick
    }

    /// Waits until the link is up or `timeout` passes.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let give_up = Instant::now() + timeout;
        while Instant::now() < give_up {
            if self.up.load(Ordering::Acquire) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.up.load(Ordering::Acquire)
    }

    /// Sends pre-encoded bytes and waits for the reply until `deadline`.
    async fn send(&self, bytes: Bytes, deadline: Instant) -> Result<Value, MasterError> {
        if !self.up.load(Ordering::Acquire) {
            self.metrics.error("down");
            return Err(MasterError::Down);
        }
        let (reply, rx) = oneshot::channel();
        let started = Instant::now();
        if self.tx.try_send(Request { bytes, reply }).is_err() {
            self.metrics.error("overloaded");
            return Err(MasterError::Overloaded);
        }
        let result = match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(MasterError::ConnectionLost),
            Err(_) => Err(MasterError::Timeout),
        };
        match &result {
            Ok(_) | Err(MasterError::Reply(_)) => {
                self.timeouts.store(0, Ordering::Relaxed);
                self.metrics
                    .request_duration
                    .observe(started.elapsed().as_secs_f64());
            }
            Err(MasterError::Timeout) => {
                self.metrics.error("timeout");
                let n = self.timeouts.fetch_add(1, Ordering::AcqRel) + 1;
                if n >= self.tuning.down_after_timeouts && self.up.load(Ordering::Acquire) {
                    warn!(master = %self.name, timeouts = n, "master stopped answering; marking it down");
                    self.set_link(false);
                    self.kick.notify_one();
                }
            }
            Err(e) => self.metrics.error(e.kind()),
        }
        result
    }

    /// Runs `script` with EVALSHA (EVAL on NOSCRIPT), answering by `deadline`.
    /// Fails fast with [`MasterError::Down`] when the link is down.
    pub async fn eval(
        &self,
        script: &Script,
        keys: &[&[u8]],
        args: &[&[u8]],
        deadline: Instant,
    ) -> Result<Value, MasterError> {
        let bytes = wire::encode_eval(b"EVALSHA", script.sha1.as_bytes(), keys, args);
        match self.send(bytes, deadline).await {
            Err(MasterError::Reply(e)) if e.starts_with("NOSCRIPT") => {
                let bytes = wire::encode_eval(b"EVAL", script.body.as_bytes(), keys, args);
                self.send(bytes, deadline).await
            }
            other => other,
        }
    }

    /// Sends a plain command, answering by `deadline`.
    pub async fn call(&self, args: &[&[u8]], deadline: Instant) -> Result<Value, MasterError> {
        self.send(wire::encode_command(args), deadline).await
    }

    /// Closes the connection and stops reconnecting.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}
