//! The quorum core's engine: the masters, the fan-out of one script to
//! every voting master, the draining of answers nobody waits for, the
//! per-request deadlines and the amnesia signal (docs/design.md, *Fan-out*
//! and *The layers*).
//!
//! Every operation of every kind fans one script out to the voting masters
//! at once and decides on the first answers that make the outcome certain;
//! requests still in flight are driven to completion in the background, so
//! a slow or dead master costs an operation nothing but its vote. How the
//! answers are counted lives in [`super::round`]; what each kind sends lives
//! in its own module ([`super::plain`], [`super::reentrant`],
//! [`super::rwlock`], [`super::semaphore`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::warn;

use super::fair::FairQueue;
use super::keys::meta_key;
use super::quorum::quorum;
use super::signals::Signals;
use crate::config::LockConfig;
use crate::fence::TokenProposer;
use crate::master::{Master, MasterError, Recovery, Value};
use crate::metrics::{MasterMetrics, Metrics};
use crate::scripts::{Script, ScriptSet};

/// One master's answer: its index and its reply.
pub(crate) type Answer = (usize, Result<Value, MasterError>);

/// The lock engine shared by every client connection.
pub struct Engine {
    masters: Vec<Arc<Master>>,
    q: usize,
    cfg: LockConfig,
    /// Per-request master deadline in nanoseconds; atomic so a live reload
    /// can change it under running requests (each reads it once).
    timeout_ns: AtomicU64,
    scripts: Arc<ScriptSet>,
    proposer: TokenProposer,
    metrics: Metrics,
    master_metrics: Vec<MasterMetrics>,
    meta: Bytes,
    /// Wakes the recovery task when a script reports amnesia.
    pub(crate) amnesia_seen: Arc<Notify>,
    /// Chaos-suite negative control: when false, amnesia replies are ignored
    /// by recovery (the master is re-initialised at once). Never false in
    /// production; only a test hook can clear it.
    pub(crate) amnesia_guard: AtomicBool,
    /// Per master: the amnesia guard last found its metadata record.
    pub(crate) record_seen: Vec<AtomicBool>,
    /// Wakes local waiters when a lock is released through this gateway.
    signals: Signals,
    /// Local waiters per key, served in arrival order (`lock::fair`).
    fair: FairQueue,
}

// === impl Engine ===

impl Engine {
    pub fn new(
        masters: Vec<Arc<Master>>,
        cfg: LockConfig,
        timeout: Duration,
        scripts: Arc<ScriptSet>,
        metrics: Metrics,
    ) -> Self {
        let n = masters.len();
        let q = quorum(n);
        let meta = meta_key(&cfg.key_prefix);
        let master_metrics = masters.iter().map(|m| metrics.master(m.name())).collect();
        Engine {
            masters,
            q,
            cfg,
            timeout_ns: AtomicU64::new(duration_ns(timeout)),
            scripts,
            proposer: TokenProposer::new(),
            metrics,
            master_metrics,
            meta,
            amnesia_seen: Arc::new(Notify::new()),
            amnesia_guard: AtomicBool::new(true),
            record_seen: (0..n).map(|_| AtomicBool::new(false)).collect(),
            signals: Signals::default(),
            fair: FairQueue::default(),
        }
    }

    /// Release wake-ups for local waiters.
    pub(crate) fn signals(&self) -> &Signals {
        &self.signals
    }

    /// The per-key queues of local waiters.
    pub fn fair(&self) -> &FairQueue {
        &self.fair
    }

    pub fn masters(&self) -> &[Arc<Master>] {
        &self.masters
    }

    pub fn quorum(&self) -> usize {
        self.q
    }

    pub fn config(&self) -> &LockConfig {
        &self.cfg
    }

    pub fn proposer(&self) -> &TokenProposer {
        &self.proposer
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(crate) fn meta_key(&self) -> &Bytes {
        &self.meta
    }

    pub(crate) fn scripts(&self) -> &Arc<ScriptSet> {
        &self.scripts
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_nanos(self.timeout_ns.load(Ordering::Relaxed))
    }

    /// Changes the per-request master deadline (live reload); requests
    /// already started keep the deadline they computed.
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout_ns
            .store(duration_ns(timeout), Ordering::Relaxed);
    }

    pub(crate) fn master_metrics(&self, i: usize) -> Option<&MasterMetrics> {
        self.master_metrics.get(i)
    }

    /// Masters able to vote now.
    pub fn voting(&self) -> usize {
        self.masters.iter().filter(|m| m.is_voting()).count()
    }

    /// Masters that vote and whose metadata record the amnesia guard has
    /// confirmed: what readiness counts.
    pub fn ready_masters(&self) -> usize {
        self.masters
            .iter()
            .zip(&self.record_seen)
            .filter(|(m, seen)| m.is_voting() && seen.load(Ordering::Relaxed))
            .count()
    }

    /// Test hook for the chaos suite's negative control.
    pub fn set_amnesia_guard(&self, on: bool) {
        self.amnesia_guard.store(on, Ordering::SeqCst);
    }

    /// Sends `script` to every voting master; yields `(master index,
    /// reply)`. `fallback` allows EVAL after NOSCRIPT: never for a release,
    /// which re-sent as EVAL would be enqueued behind later requests and
    /// could delete a newer lock of the same owner.
    pub(crate) fn fan_out(
        &self,
        script: &Script,
        keys: Arc<[Bytes]>,
        args: Arc<[Bytes]>,
        deadline: Instant,
        fallback: bool,
    ) -> (
        usize,
        FuturesUnordered<impl std::future::Future<Output = Answer> + Send + 'static>,
    ) {
        let futs = FuturesUnordered::new();
        for (i, m) in self.masters.iter().enumerate() {
            if !m.is_voting() {
                continue;
            }
            // Enqueued here, synchronously: see `Master::eval_now`.
            let reply = m.eval_now(script, &keys, &args, deadline, fallback);
            futs.push(async move { (i, reply.await) });
        }
        (futs.len(), futs)
    }

    /// Lets the requests still in flight finish in the background; their
    /// replies only matter to the masters' own bookkeeping.
    pub(crate) fn drain<F>(futs: FuturesUnordered<F>)
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send,
    {
        if !futs.is_empty() {
            tokio::spawn(async move {
                let mut futs = futs;
                while futs.next().await.is_some() {}
            });
        }
    }

    pub(crate) fn note_amnesia(&self, i: usize) {
        if let Some(m) = self.masters.get(i) {
            if m.recovery() == Recovery::Healthy {
                warn!(
                    master = m.name(),
                    "master lost its metadata record: amnesia"
                );
                m.set_recovery(Recovery::Amnesia);
            }
            self.amnesia_seen.notify_one();
        }
    }

    pub(crate) fn master_deadline(&self, start: Instant, until: Instant) -> Instant {
        (start + self.timeout()).min(until)
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
