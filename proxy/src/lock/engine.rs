//! The quorum engine: acquire, release, extend and status over N masters.
//!
//! Every operation fans one script out to the voting masters at once and
//! decides on the first answers that make the outcome certain; requests still
//! in flight are driven to completion in the background, so a slow or dead
//! master costs an operation nothing but its vote.
//!
//! # Safety
//! A grant is reported only when `q` masters accepted the *same* proposed
//! token (each raising its register for the key), and only while validity
//! (`ttl - elapsed - drift`) is still positive. A failed or expired acquire is
//! released on every master, because a write that timed out may still land.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::fair::FairQueue;
use super::keys::{fence_key, meta_key};
use super::quorum::{quorum, Decision, Tally};
use super::signals::Signals;
use super::validity::{drift, remaining, valid_until};
use super::{AcquireOutcome, ExtendOutcome, Grant, ReleaseOutcome, StatusOutcome};
use crate::config::LockConfig;
use crate::fence::{FencingToken, TokenProposer};
use crate::master::{Master, MasterError, Recovery, Value};
use crate::metrics::{MasterMetrics, Metrics, Op, Outcome};
use crate::scripts::{Script, ScriptSet};

/// Rounds one acquire may take: the first, plus up to two retries with a
/// higher token after stale refusals (docs/design.md, *Majority quorum,
/// returned on the first majority*).
const MAX_ROUNDS: usize = 3;

/// The slowest a waiter polls for a release made elsewhere.
const POLL_MAX: Duration = Duration::from_millis(100);

/// Reply codes of `acquire.lua`.
const ACQ_GRANTED: i64 = 0;
const ACQ_BUSY: i64 = 1;
const ACQ_STALE: i64 = 2;
const ACQ_AMNESIA: i64 = 3;

/// One master's answer: its index and its reply.
pub(super) type Vote = (usize, Result<Value, MasterError>);

#[derive(Clone, Copy)]
enum Which {
    Acquire,
    Release,
    Extend,
    Status,
}

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

    pub(super) fn master_metrics(&self, i: usize) -> Option<&MasterMetrics> {
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

    /// Sends `which` to every voting master; yields `(master index, reply)`.
    fn fan_out(
        &self,
        which: Which,
        keys: Arc<[Bytes]>,
        args: Arc<[Bytes]>,
        deadline: Instant,
    ) -> (
        usize,
        FuturesUnordered<impl std::future::Future<Output = Vote>>,
    ) {
        let script = match which {
            Which::Acquire => &self.scripts.acquire,
            Which::Release => &self.scripts.release,
            Which::Extend => &self.scripts.extend,
            Which::Status => &self.scripts.status,
        };
        // A release re-sent as EVAL after NOSCRIPT would be enqueued behind
        // later requests and could delete a newer lock of the same owner.
        let fallback = !matches!(which, Which::Release);
        self.fan_out_script(script, keys, args, deadline, fallback)
    }

    /// Sends `script` to every voting master; yields `(master index,
    /// reply)`. `fallback` allows EVAL after NOSCRIPT (never for releases).
    pub(super) fn fan_out_script(
        &self,
        script: &Script,
        keys: Arc<[Bytes]>,
        args: Arc<[Bytes]>,
        deadline: Instant,
        fallback: bool,
    ) -> (
        usize,
        FuturesUnordered<impl std::future::Future<Output = Vote> + Send + 'static>,
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
    pub(super) fn drain<F>(futs: FuturesUnordered<F>)
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

    pub(super) fn note_amnesia(&self, i: usize) {
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

    pub(super) fn master_deadline(&self, start: Instant, until: Instant) -> Instant {
        (start + self.timeout()).min(until)
    }

    /// One acquire attempt (no waiting): locks every key in `keys` for
    /// `owner`, all or nothing.
    pub async fn acquire(&self, keys: &[Bytes], owner: &Bytes, ttl: Duration) -> AcquireOutcome {
        let start = Instant::now();
        let outcome = self.acquire_inner(keys, owner, ttl, start).await;
        let elapsed = start.elapsed().as_secs_f64();
        match &outcome {
            AcquireOutcome::Granted(_) => {} // recorded when the reply is written
            AcquireOutcome::Busy => self.metrics.lock_op(Op::Acquire, Outcome::Busy, elapsed),
            AcquireOutcome::NoQuorum { .. } => {
                self.metrics
                    .lock_op(Op::Acquire, Outcome::NoQuorum, elapsed)
            }
            AcquireOutcome::Expired => {
                self.metrics
                    .lock_op(Op::Acquire, Outcome::ExpiredInFlight, elapsed)
            }
        }
        outcome
    }

    async fn acquire_inner(
        &self,
        keys: &[Bytes],
        owner: &Bytes,
        ttl: Duration,
        start: Instant,
    ) -> AcquireOutcome {
        let until = valid_until(start, ttl, self.cfg.drift_factor, self.cfg.drift_constant);
        let mut script_keys = Vec::with_capacity(1 + 2 * keys.len());
        script_keys.push(self.meta.clone());
        for k in keys {
            script_keys.push(k.clone());
            script_keys.push(fence_key(&self.cfg.key_prefix, k));
        }
        let script_keys: Arc<[Bytes]> = script_keys.into();
        let ttl_ms = Bytes::from(ttl.as_millis().to_string());

        let mut floor = 0u64;
        let mut last = Decision::NoQuorum;
        let mut voted = 0;
        for round in 0..MAX_ROUNDS {
            let now = Instant::now();
            if remaining(until, now).is_none() {
                last = Decision::NoQuorum;
                break;
            }
            let token = match self.proposer.propose_above(floor) {
                Ok(t) => t,
                Err(e) => {
                    warn!(cause = %e, "cannot propose a fencing token");
                    break;
                }
            };
            let args: Arc<[Bytes]> = Arc::from(vec![
                owner.clone(),
                ttl_ms.clone(),
                Bytes::from(token.0.to_string()),
                Bytes::from_static(if round == 0 { b"0" } else { b"1" }),
            ]);
            let deadline = self.master_deadline(now, until);
            let (asked, mut futs) =
                self.fan_out(Which::Acquire, script_keys.clone(), args, deadline);
            let mut tally = Tally::default();
            let mut decision = tally.decide(asked, self.q);
            while decision == Decision::Pending {
                let Some((i, reply)) = futs.next().await else {
                    break;
                };
                self.count_acquire_vote(i, reply, token, &mut tally, &mut floor);
                decision = tally.decide(asked, self.q);
            }
            Self::drain(futs);
            voted = tally.granted + tally.busy + tally.stale;
            last = decision;
            match decision {
                Decision::Granted => {
                    if remaining(until, Instant::now()).is_none() {
                        self.release_in_background(keys, owner);
                        return AcquireOutcome::Expired;
                    }
                    return AcquireOutcome::Granted(Grant {
                        token,
                        valid_until: until,
                        start,
                    });
                }
                Decision::RetryHigher => {
                    self.metrics.fence_retries.inc();
                    debug!(
                        round,
                        floor, "fencing token proposal was stale; retrying higher"
                    );
                    continue;
                }
                Decision::Busy | Decision::NoQuorum | Decision::Pending => break,
            }
        }
        // Lost: a write that timed out may still land, and masters that
        // granted this owner must not keep a partial lock.
        self.release_in_background(keys, owner);
        match last {
            Decision::Busy | Decision::RetryHigher => AcquireOutcome::Busy,
            _ => AcquireOutcome::NoQuorum {
                voted,
                needed: self.q,
            },
        }
    }

    fn count_acquire_vote(
        &self,
        i: usize,
        reply: Result<Value, MasterError>,
        token: FencingToken,
        tally: &mut Tally,
        floor: &mut u64,
    ) {
        let mm = self.master_metrics.get(i);
        let parsed = reply.map_err(|e| e.to_string()).and_then(parse_code_pair);
        match parsed {
            Ok((ACQ_GRANTED, t)) if t == token.0 => {
                tally.granted += 1;
                if let Some(mm) = mm {
                    mm.votes_given.inc();
                }
            }
            Ok((ACQ_BUSY, reg)) => {
                tally.busy += 1;
                self.proposer.observe(reg);
                if let Some(mm) = mm {
                    mm.votes_refused.inc();
                }
            }
            Ok((ACQ_STALE, reg)) => {
                tally.stale += 1;
                *floor = (*floor).max(reg);
                self.proposer.observe(reg);
                if let Some(mm) = mm {
                    mm.votes_refused.inc();
                }
            }
            Ok((ACQ_AMNESIA, _)) => {
                tally.no_vote += 1;
                self.note_amnesia(i);
            }
            Ok((code, v)) => {
                tally.no_vote += 1;
                warn!(code, value = v, "unexpected acquire reply from master");
            }
            Err(e) => {
                tally.no_vote += 1;
                debug!(master = i, cause = %e, "no vote from master");
            }
        }
    }

    /// Acquire with `WAIT`: retries until `wait` runs out, at once when the
    /// lock is released through this gateway, otherwise after a short random
    /// pause (releases elsewhere and expiry are only seen by retrying).
    /// Waiters for one key on this gateway take turns in arrival order.
    pub async fn acquire_wait(
        &self,
        keys: &[Bytes],
        owner: &Bytes,
        ttl: Duration,
        wait: Duration,
    ) -> AcquireOutcome {
        // One key: wait in the key's local FIFO (`lock::fair`). Several keys
        // (drop-in multi-resource locks) keep the jittered race, because
        // queueing on several keys at once could deadlock two waiters.
        if let [key] = keys {
            return self
                .wait_fair(
                    key,
                    wait,
                    || self.acquire(keys, owner, ttl),
                    |o| matches!(o, AcquireOutcome::Granted(_)),
                )
                .await
                .unwrap_or(AcquireOutcome::Busy);
        }
        let give_up = Instant::now() + wait;
        let watched: Vec<_> = keys.iter().map(|k| self.signals.watch(k)).collect();
        let outcome = loop {
            // Enabled before the attempt, so a release that lands while it
            // runs still wakes the pause below.
            let mut wakes: Vec<_> = watched.iter().map(|n| Box::pin(n.notified())).collect();
            for w in &mut wakes {
                w.as_mut().enable();
            }
            let outcome = self.acquire(keys, owner, ttl).await;
            if matches!(outcome, AcquireOutcome::Granted(_)) {
                break outcome;
            }
            let now = Instant::now();
            if now >= give_up {
                break outcome;
            }
            // Jitter keeps waiters on one key from retrying in lock step.
            let jitter = Duration::from_millis(rand::rng().random_range(5..=50));
            tokio::select! {
                _ = futures::future::select_all(wakes) => {}
                _ = tokio::time::sleep(jitter.min(give_up - now)) => {}
            }
        };
        for (k, n) in keys.iter().zip(watched) {
            self.signals.forget(k, n);
        }
        outcome
    }

    /// Waits until `key` is free on a quorum, or `until` passes (`None`:
    /// no limit). True when it was seen free. Woken at once by a release
    /// through this gateway; otherwise it polls, never slower than every
    /// 100 ms and sooner when the holder's lease ends first.
    pub async fn wait_free(&self, key: &Bytes, until: Option<Instant>) -> bool {
        let n = self.signals.watch(key);
        let free = loop {
            let wake = n.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let poll = match self.status(key).await {
                StatusOutcome::Free => break true,
                StatusOutcome::Held { pttl, .. } => pttl.clamp(Duration::from_millis(1), POLL_MAX),
                // Too few masters to tell: keep waiting, as a client blocked
                // on one Redis would.
                StatusOutcome::NoQuorum { .. } => POLL_MAX,
            };
            let jitter = Duration::from_millis(rand::rng().random_range(0..=10));
            let now = Instant::now();
            let mut next = now + poll + jitter;
            if let Some(u) = until {
                if now >= u {
                    break false;
                }
                next = next.min(u);
            }
            tokio::select! {
                _ = &mut wake => {}
                _ = tokio::time::sleep_until(next) => {}
            }
        };
        self.signals.forget(key, n);
        free
    }

    /// Reports a grant to the client only if it is still valid now; otherwise
    /// releases it. Called just before the reply is written.
    pub fn finish_grant(&self, grant: &Grant, keys: &[Bytes], owner: &Bytes) -> Option<Duration> {
        let now = Instant::now();
        let elapsed = now.duration_since(grant.start).as_secs_f64();
        match remaining(grant.valid_until, now) {
            Some(left) => {
                self.metrics.lock_op(Op::Acquire, Outcome::Granted, elapsed);
                self.metrics.grant_validity.observe(left.as_secs_f64());
                Some(left)
            }
            None => {
                self.metrics
                    .lock_op(Op::Acquire, Outcome::ExpiredInFlight, elapsed);
                self.release_in_background(keys, owner);
                None
            }
        }
    }

    fn release_in_background(&self, keys: &[Bytes], owner: &Bytes) {
        let keys: Arc<[Bytes]> = keys.to_vec().into();
        let args: Arc<[Bytes]> = Arc::from(vec![owner.clone()]);
        let deadline = Instant::now() + self.timeout();
        let (_, futs) = self.fan_out(Which::Release, keys, args, deadline);
        Self::drain(futs);
    }

    /// Compare-and-delete on every master; released when `q` masters deleted
    /// every key.
    pub async fn release(&self, keys: &[Bytes], owner: &Bytes) -> ReleaseOutcome {
        let start = Instant::now();
        let want = i64::try_from(keys.len()).unwrap_or(i64::MAX);
        let keys_arc: Arc<[Bytes]> = keys.to_vec().into();
        let args: Arc<[Bytes]> = Arc::from(vec![owner.clone()]);
        let (asked, mut futs) =
            self.fan_out(Which::Release, keys_arc, args, start + self.timeout());
        let (mut yes, mut no, mut failed) = (0usize, 0usize, 0usize);
        let mut best = 0i64;
        while let Some((_, reply)) = futs.next().await {
            match reply {
                Ok(Value::Int(n)) => {
                    best = best.max(n);
                    if n >= want {
                        yes += 1;
                    } else {
                        no += 1;
                    }
                }
                _ => failed += 1,
            }
            if settled(yes, no, failed, asked, self.q) {
                break;
            }
        }
        Self::drain(futs);
        let outcome = if yes >= self.q {
            self.signals.released(keys);
            ReleaseOutcome::Released
        } else if yes + no >= self.q {
            ReleaseOutcome::NotHeld { best }
        } else {
            ReleaseOutcome::NoQuorum {
                voted: yes + no,
                needed: self.q,
            }
        };
        let o = match outcome {
            ReleaseOutcome::Released => Outcome::Granted,
            ReleaseOutcome::NotHeld { .. } => Outcome::Busy,
            ReleaseOutcome::NoQuorum { .. } => Outcome::NoQuorum,
        };
        self.metrics
            .lock_op(Op::Release, o, start.elapsed().as_secs_f64());
        outcome
    }

    /// Compare-and-pexpire on every master; extended when `q` masters
    /// accepted and the new validity is positive. `add` adds `ttl` to the
    /// remaining time instead of replacing it (redis-py's extend).
    pub async fn extend(
        &self,
        keys: &[Bytes],
        owner: &Bytes,
        ttl: Duration,
        add: bool,
    ) -> ExtendOutcome {
        let start = Instant::now();
        let keys_arc: Arc<[Bytes]> = keys.to_vec().into();
        let args: Arc<[Bytes]> = Arc::from(vec![
            owner.clone(),
            Bytes::from(ttl.as_millis().to_string()),
            Bytes::from_static(if add { b"1" } else { b"0" }),
        ]);
        let (asked, mut futs) = self.fan_out(Which::Extend, keys_arc, args, start + self.timeout());
        let (mut yes, mut no, mut failed) = (0usize, 0usize, 0usize);
        let mut new_ttl_ms = i64::MAX;
        while let Some((_, reply)) = futs.next().await {
            match reply {
                Ok(Value::Int(n)) if n > 0 => {
                    yes += 1;
                    new_ttl_ms = new_ttl_ms.min(n);
                }
                Ok(Value::Int(_)) => no += 1,
                _ => failed += 1,
            }
            if settled(yes, no, failed, asked, self.q) {
                break;
            }
        }
        Self::drain(futs);
        let new_ttl = Duration::from_millis(u64::try_from(new_ttl_ms).unwrap_or(0));
        self.extend_outcome(Op::Extend, start, new_ttl, yes, no)
    }

    /// A quorum read: the owner and token that `q` masters agree on, with the
    /// smallest remaining PTTL among them.
    pub async fn status(&self, key: &Bytes) -> StatusOutcome {
        let start = Instant::now();
        let keys: Arc<[Bytes]> = Arc::from(vec![
            self.meta.clone(),
            key.clone(),
            fence_key(&self.cfg.key_prefix, key),
        ]);
        let (asked, mut futs) = self.fan_out(
            Which::Status,
            keys,
            Arc::from(Vec::new()),
            start + self.timeout(),
        );
        // (owner, token, smallest pttl, votes)
        let mut groups: Vec<(Bytes, u64, i64, usize)> = Vec::new();
        let (mut free, mut failed) = (0usize, 0usize);
        let mut result = None;
        while let Some((i, reply)) = futs.next().await {
            match parse_status(reply) {
                Some(MasterView::Held { owner, token, pttl }) => {
                    if let Some(g) = groups.iter_mut().find(|g| g.0 == owner && g.1 == token) {
                        g.2 = g.2.min(pttl);
                        g.3 += 1;
                    } else {
                        groups.push((owner, token, pttl, 1));
                    }
                }
                Some(MasterView::Free) => free += 1,
                Some(MasterView::Amnesia) => {
                    failed += 1;
                    self.note_amnesia(i);
                }
                None => failed += 1,
            }
            if let Some(g) = groups.iter().find(|g| g.3 >= self.q) {
                result = Some(StatusOutcome::Held {
                    owner: g.0.clone(),
                    token: FencingToken(g.1),
                    pttl: Duration::from_millis(u64::try_from(g.2).unwrap_or(0)),
                });
                break;
            }
            if free >= self.q {
                result = Some(StatusOutcome::Free);
                break;
            }
        }
        Self::drain(futs);
        let answered = free + groups.iter().map(|g| g.3).sum::<usize>();
        let _ = failed;
        let outcome = match result {
            Some(r) => r,
            // Every master answered but no owner has a quorum: not held.
            None if answered >= self.q => StatusOutcome::Free,
            None => StatusOutcome::NoQuorum {
                voted: answered,
                needed: self.q,
            },
        };
        let _ = asked;
        let o = match outcome {
            StatusOutcome::Held { .. } => Outcome::Granted,
            StatusOutcome::Free => Outcome::Busy,
            StatusOutcome::NoQuorum { .. } => Outcome::NoQuorum,
        };
        self.metrics
            .lock_op(Op::Status, o, start.elapsed().as_secs_f64());
        outcome
    }
}

/// Whether a release or extend round can stop: success is certain (`q`
/// yes), or failure is certain *and* so is its kind. "Not held" needs `q`
/// masters to have answered; "no quorum" needs the outstanding answers to be
/// unable to make `q` either way. Stopping as soon as success is impossible
/// would report a lost quorum for a lock that is simply not held whenever one
/// master is slow.
pub(super) fn settled(yes: usize, no: usize, failed: usize, asked: usize, q: usize) -> bool {
    let outstanding = asked.saturating_sub(yes + no + failed);
    yes >= q || (yes + outstanding < q && yes + no >= q) || yes + no + outstanding < q
}

/// Counts the votes of a compare-and-* script whose reply is an integer
/// (above 0: done on that master, 0: not held there) until [`settled`];
/// returns `(yes, no)`. Requests still in flight are left in `futs`.
pub(super) async fn count_yes_no<F>(
    futs: &mut FuturesUnordered<F>,
    asked: usize,
    q: usize,
) -> (usize, usize)
where
    F: std::future::Future<Output = Vote>,
{
    let (mut yes, mut no, mut failed) = (0usize, 0usize, 0usize);
    while let Some((_, reply)) = futs.next().await {
        match reply {
            Ok(Value::Int(n)) if n > 0 => yes += 1,
            Ok(Value::Int(_)) => no += 1,
            _ => failed += 1,
        }
        if settled(yes, no, failed, asked, q) {
            break;
        }
    }
    (yes, no)
}

impl Engine {
    /// The outcome of an extend that `yes` masters accepted and `no`
    /// refused, each setting its expiry to its own now + `ttl`, that now
    /// being no earlier than `start`; recorded under `op`.
    pub(super) fn extend_outcome(
        &self,
        op: Op,
        start: Instant,
        ttl: Duration,
        yes: usize,
        no: usize,
    ) -> ExtendOutcome {
        let q = self.q;
        let outcome = if yes >= q {
            let until = start
                + ttl.saturating_sub(drift(ttl, self.cfg.drift_factor, self.cfg.drift_constant));
            match remaining(until, Instant::now()) {
                Some(left) => ExtendOutcome::Extended { validity: left },
                None => ExtendOutcome::Expired,
            }
        } else if yes + no >= q {
            ExtendOutcome::NotHeld
        } else {
            ExtendOutcome::NoQuorum {
                voted: yes + no,
                needed: q,
            }
        };
        let o = match outcome {
            ExtendOutcome::Extended { .. } => Outcome::Granted,
            ExtendOutcome::NotHeld => Outcome::Busy,
            ExtendOutcome::Expired => Outcome::ExpiredInFlight,
            ExtendOutcome::NoQuorum { .. } => Outcome::NoQuorum,
        };
        self.metrics.lock_op(op, o, start.elapsed().as_secs_f64());
        outcome
    }
}

enum MasterView {
    Held { owner: Bytes, token: u64, pttl: i64 },
    Free,
    Amnesia,
}

fn parse_status(reply: Result<Value, MasterError>) -> Option<MasterView> {
    let Ok(Value::Array(items)) = reply else {
        return None;
    };
    match items.as_slice() {
        [Value::Int(3)] => Some(MasterView::Amnesia),
        [Value::Int(1)] => Some(MasterView::Free),
        [Value::Int(0), Value::Bulk(owner), Value::Bulk(reg), Value::Int(pttl)] => {
            let token = std::str::from_utf8(reg).ok()?.parse::<u64>().ok()?;
            Some(MasterView::Held {
                owner: owner.clone(),
                token,
                pttl: *pttl,
            })
        }
        _ => None,
    }
}

/// Parses a `{code, value}` script reply.
pub(super) fn parse_code_pair(v: Value) -> Result<(i64, u64), String> {
    match v {
        Value::Array(items) => match items.as_slice() {
            [Value::Int(code), Value::Int(val)] => Ok((*code, u64::try_from(*val).unwrap_or(0))),
            _ => Err("acquire reply has an unexpected shape".to_string()),
        },
        other => Err(format!("acquire reply is not an array: {other:?}")),
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::settled;

    #[test]
    fn a_slow_master_does_not_turn_not_held_into_no_quorum() {
        // 5 masters: two said "not held", one timed out, two still out.
        assert!(!settled(0, 2, 1, 5, 3));
        // A third "not held" settles it as not held.
        assert!(settled(0, 3, 1, 5, 3));
    }

    #[test]
    fn release_settles_on_a_quorum_of_yes() {
        assert!(settled(3, 0, 0, 5, 3));
        assert!(!settled(2, 0, 0, 5, 3));
    }

    #[test]
    fn too_many_failures_settle_as_no_quorum() {
        assert!(settled(1, 0, 3, 5, 3));
        assert!(settled(0, 0, 2, 2, 3)); // only two masters were asked
    }
}
