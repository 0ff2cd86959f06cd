//! The chaos workload: groups of workers that run fenced lock cycles
//! against a list of gateways while faults are injected, and a recorder that
//! keeps every grant for the safety checker plus the timeline the report
//! needs (when grants happened, which requests failed and how fast).
//!
//! This is the `rmw` cycle of `workload.rs` with what a fault run needs on
//! top: a per-request client deadline, failover to the next gateway after a
//! connection error (clients of a killed gateway move on), and a lease that
//! is counted from when the request was *sent*, as a Redlock client must. A
//! grant whose lease is already over when its reply arrives (a gateway
//! paused past the TTL) is never used. The protected resource checks the
//! token on the read and on the write, so overlapping holders cannot lose an
//! update however the lease was broken.
//!
//! A group runs one lock kind ([`LoadKind`]): plain locks, or
//! reentrant holds, keepalive locks, read-write locks or semaphores. Every
//! kind's tokens go into one history for the token checks; only exclusive
//! kinds go into the overlap check (readers and permit holders share a key
//! by design, and the kinds checker judges them instead).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio::task::JoinHandle;

use crate::checker::{GrantRecord, Kind, KindRecord, ReentrantHold, Resource};
use crate::kinds::{self, LostPushes, StepError};

/// Which lock a group's workers take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadKind {
    /// `LOCK.ACQUIRE` / `LOCK.RELEASE`.
    Plain,
    /// `RLOCK.ACQUIRE` nested 1 to 3 deep, the fenced access at full depth,
    /// then as many `RLOCK.RELEASE`s.
    Reentrant,
    /// `LOCK.ACQUIRE ... KEEPALIVE` on RESP3; hold it past the TTL with
    /// [`LoadOpts::hold`].
    Keepalive,
    /// `RWLOCK.WRITE` (`write_percent` of cycles, `WAIT` 200 ms) or
    /// `RWLOCK.READ` (a fenced read only).
    Rw { write_percent: u8 },
    /// `SEM.ACQUIRE key permits`.
    Sem { permits: u64 },
}

impl LoadKind {
    /// The label of the checker's lines and of per-kind grant counts.
    pub fn label(self) -> &'static str {
        match self {
            LoadKind::Plain => "plain",
            LoadKind::Reentrant => "reentrant",
            LoadKind::Keepalive => "keepalive",
            LoadKind::Rw { .. } => "rwlock",
            LoadKind::Sem { .. } => "sem",
        }
    }
}

/// What every worker of a group does.
#[derive(Debug, Clone)]
pub struct LoadOpts {
    pub ttl_ms: u64,
    /// Time between the fenced read and the fenced write.
    pub hold: Duration,
    /// Lock keys `key_base..key_base + keys`, shared by every group of a
    /// scenario that uses the same range.
    pub keys: u64,
    pub key_base: u64,
    /// The client gives up on a reply after this long.
    pub request_timeout: Duration,
    /// A prefix shared by every group of one scenario, so they contend.
    pub run: u64,
    pub kind: LoadKind,
}

/// A request that did not get an answer it could use.
#[derive(Debug, Clone)]
pub struct Failure {
    pub at: Instant,
    pub took: Duration,
    pub kind: String,
}

/// A usable grant: when it was asked for, when it arrived, and which
/// gateway served it (workers fail over, so a group's home is not enough).
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub requested: Instant,
    pub at: Instant,
    pub gateway: usize,
    /// [`LoadKind::label`] of the group.
    pub kind: &'static str,
}

/// Everything the workers saw.
#[derive(Debug, Default)]
pub struct Timeline {
    /// Grants of exclusive kinds (plain, keepalive): tokens and overlaps.
    pub history: Vec<GrantRecord>,
    /// Grants of shared kinds (read-write, semaphore): tokens only.
    pub shared: Vec<GrantRecord>,
    /// Read-write and semaphore grants for the kinds checker.
    pub kinds: Vec<KindRecord>,
    /// Reentrant holds, step by step (their tokens are added at analysis).
    pub holds: Vec<ReentrantHold>,
    /// Every usable grant.
    pub grants: Vec<Grant>,
    pub failures: Vec<Failure>,
    /// Fenced accesses the resource refused (the fencing rule working).
    pub stale_rejected: u64,
    /// Writes the resource admitted.
    pub admitted: u64,
    /// Replies that took longer than the TTL, and how they ended.
    pub late_replies: u64,
    pub late_refused: u64,
    /// Grants whose lease (counted from the request) was over on arrival.
    pub expired_on_arrival: u64,
    /// Lost-lock pushes received (filled by [`Recorder::take`]).
    pub lost_pushes: u64,
}

/// Shared by every group of one scenario.
#[derive(Debug, Default)]
pub struct Recorder {
    pub resource: Resource,
    /// Lost-lock pushes of every keepalive connection.
    pub lost: Arc<LostPushes>,
    timeline: Mutex<Timeline>,
}

// === impl Recorder ===

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, Timeline> {
        // A worker that panicked mid-update left plain counters behind.
        self.timeline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fail(&self, at: Instant, kind: String) {
        let took = at.elapsed();
        self.lock().failures.push(Failure { at, took, kind });
    }

    /// Puts back a timeline taken with [`Recorder::take`].
    pub fn put_back(&self, t: Timeline) {
        let mut cur = self.lock();
        let newer = std::mem::replace(&mut *cur, t);
        cur.history.extend(newer.history);
        cur.shared.extend(newer.shared);
        cur.kinds.extend(newer.kinds);
        cur.holds.extend(newer.holds);
        cur.grants.extend(newer.grants);
        cur.failures.extend(newer.failures);
        cur.stale_rejected += newer.stale_rejected;
        cur.admitted += newer.admitted;
        cur.late_replies += newer.late_replies;
        cur.late_refused += newer.late_refused;
        cur.expired_on_arrival += newer.expired_on_arrival;
    }

    /// Takes the timeline out (the groups must be stopped).
    pub fn take(&self) -> Timeline {
        let mut t = std::mem::take(&mut *self.lock());
        t.lost_pushes = self.lost.count.load(Ordering::Relaxed);
        t
    }

    /// Usable grants so far.
    pub fn grants(&self) -> usize {
        self.lock().grants.len()
    }

    /// When the most recent usable grant arrived.
    pub fn last_grant(&self) -> Option<Instant> {
        self.lock().grants.iter().map(|g| g.at).max()
    }
}

// === impl Timeline ===

impl Timeline {
    /// Usable grants per gateway index (`gateways` entries) among those
    /// requested at or after `from` that arrived no later than `to`.
    pub fn grants_per_gateway(&self, gateways: usize, from: Instant, to: Instant) -> Vec<u64> {
        let mut n = vec![0u64; gateways];
        for g in &self.grants {
            if g.requested >= from && g.at <= to {
                if let Some(c) = n.get_mut(g.gateway) {
                    *c += 1;
                }
            }
        }
        n
    }
}

/// Workers on one list of gateways.
pub struct Group {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

// === impl Group ===

impl Group {
    /// Starts `workers` workers; each starts on `targets[0]` and moves to the
    /// next target after a connection error or a client timeout. A target is
    /// a gateway's index (for per-gateway counts) and its address.
    pub fn start(
        rec: Arc<Recorder>,
        targets: Vec<(usize, String)>,
        workers: usize,
        opts: LoadOpts,
    ) -> Group {
        let stop = Arc::new(AtomicBool::new(false));
        let targets: Arc<[(usize, String)]> = targets.into();
        let tasks = (0..workers)
            .map(|_| {
                tokio::spawn(worker(
                    rec.clone(),
                    targets.clone(),
                    opts.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        Group { stop, tasks }
    }

    /// Stops the workers and waits for their current cycle to end.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn kind(e: &redis::RedisError) -> String {
    e.code()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:?}", e.kind()))
}

/// Whether the connection is unusable after `e` (as opposed to an error
/// reply such as NOQUORUM, after which it is fine).
fn broken(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() || e.is_timeout()
}

async fn connect(
    rec: &Recorder,
    kind: LoadKind,
    addr: &str,
    timeout: Duration,
) -> redis::RedisResult<MultiplexedConnection> {
    if kind == LoadKind::Keepalive {
        return kinds::connect_resp3(addr, rec.lost.clone(), Some(timeout)).await;
    }
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(timeout));
    redis::Client::open(format!("redis://{addr}/"))?
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
}

async fn worker(
    rec: Arc<Recorder>,
    targets: Arc<[(usize, String)]>,
    opts: LoadOpts,
    stop: Arc<AtomicBool>,
) {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut cur = 0usize;
    let mut conn: Option<MultiplexedConnection> = None;
    let ttl = Duration::from_millis(opts.ttl_ms);
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_mut() else {
            let at = Instant::now();
            let addr = &targets[cur % targets.len()].1;
            match connect(&rec, opts.kind, addr, opts.request_timeout).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    rec.fail(at, format!("connect {}", kind(&e)));
                    cur += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            continue;
        };
        // Taken now: a failed release below moves `cur` on before the grant
        // is recorded.
        let served = targets[cur % targets.len()].0;
        let key = opts.key_base + rng.random_range(0..opts.keys.max(1));
        let name = format!("chaos:{}:{key}", opts.run);
        if opts.kind == LoadKind::Reentrant {
            if reentrant_cycle(&rec, c, &opts, &mut rng, key, &name, served).await {
                conn = None;
                cur += 1;
            }
            continue;
        }
        let write = match opts.kind {
            LoadKind::Rw { write_percent } => rng.random_range(0..100u8) < write_percent,
            _ => true,
        };
        let (acquire, release) = match opts.kind {
            LoadKind::Rw { .. } if write => ("RWLOCK.WRITE", "RWLOCK.RELEASE"),
            LoadKind::Rw { .. } => ("RWLOCK.READ", "RWLOCK.RELEASE"),
            LoadKind::Sem { .. } => ("SEM.ACQUIRE", "SEM.RELEASE"),
            _ => ("LOCK.ACQUIRE", "LOCK.RELEASE"),
        };
        let mut req = redis::cmd(acquire);
        req.arg(&name);
        if let LoadKind::Sem { permits } = opts.kind {
            req.arg(permits);
        }
        req.arg(opts.ttl_ms);
        match opts.kind {
            LoadKind::Keepalive => {
                req.arg("KEEPALIVE");
            }
            // A writer that does not wait never holds back readers.
            LoadKind::Rw { .. } if write => {
                req.arg("WAIT").arg(200);
            }
            _ => {}
        }
        let requested = Instant::now();
        let reply = req.query_async::<Value>(c).await;
        let late = requested.elapsed() > ttl;
        if late && reply.is_ok() {
            rec.lock().late_replies += 1;
        }
        let (owner, token, validity) = match reply {
            Err(e) => {
                rec.fail(requested, kind(&e));
                if broken(&e) {
                    conn = None;
                    cur += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            Ok(Value::Nil) => {
                if late {
                    rec.lock().late_refused += 1;
                }
                let pause = rng.random_range(0..=2);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                continue;
            }
            Ok(Value::Array(items)) => match items.as_slice() {
                [Value::BulkString(o), Value::Int(t), Value::Int(v)] => (
                    o.clone(),
                    u64::try_from(*t).unwrap_or(0),
                    Duration::from_millis(u64::try_from(*v).unwrap_or(0)),
                ),
                _ => {
                    rec.fail(requested, "unexpected reply".into());
                    continue;
                }
            },
            Ok(_) => {
                rec.fail(requested, "unexpected reply".into());
                continue;
            }
        };
        let granted = Instant::now();
        // Counted from the request, as a Redlock client must: the gateway's
        // clock started no earlier than that.
        let lease_end = requested + validity;
        let usable = lease_end > granted;
        if usable && !write {
            // A reader only reads; a refused read is the fencing rule too.
            let read = rec.resource.read_fenced(key, token).is_some();
            tokio::time::sleep(opts.hold).await;
            if !read {
                rec.lock().stale_rejected += 1;
            }
        } else if usable {
            let mut written = false;
            if let Some(v) = rec.resource.read_fenced(key, token) {
                tokio::time::sleep(opts.hold).await;
                written = rec.resource.write(key, token, v + 1);
            }
            let mut t = rec.lock();
            if written {
                t.admitted += 1;
            } else {
                t.stale_rejected += 1;
            }
        } else {
            let mut t = rec.lock();
            t.expired_on_arrival += 1;
            if late {
                t.late_refused += 1;
            }
        }
        let released = Instant::now();
        if let Err(e) = redis::cmd(release)
            .arg(&name)
            .arg(&owner)
            .query_async::<i64>(c)
            .await
        {
            rec.fail(released, format!("release {}", kind(&e)));
            if broken(&e) {
                conn = None;
                cur += 1;
            }
        }
        let mut validity = lease_end.saturating_duration_since(granted);
        if opts.kind == LoadKind::Keepalive && usable {
            // Renewed until released, unless the gateway said it was lost:
            // a renewal that failed silently then shows as an overlap.
            validity = match rec.lost.lost_at(token) {
                Some(lost) => lost.saturating_duration_since(granted),
                None => released.saturating_duration_since(granted).max(validity),
            };
        }
        let record = GrantRecord {
            key,
            token,
            requested,
            granted,
            validity,
            released: Some(released),
        };
        let kind = match opts.kind {
            LoadKind::Rw { .. } if write => Some(Kind::Write),
            LoadKind::Rw { .. } => Some(Kind::Read),
            LoadKind::Sem { permits } => Some(Kind::Sem { permits }),
            _ => None,
        };
        let mut t = rec.lock();
        match kind {
            Some(kind) => {
                t.kinds.push(KindRecord {
                    key,
                    kind,
                    token,
                    granted,
                    validity,
                    released: Some(released),
                });
                t.shared.push(record);
            }
            None => t.history.push(record),
        }
        if usable {
            t.grants.push(Grant {
                requested,
                at: granted,
                gateway: served,
                kind: opts.kind.label(),
            });
        }
    }
}

/// One reentrant hold (see [`LoadKind::Reentrant`]), recorded in `rec`;
/// true when the connection broke.
async fn reentrant_cycle(
    rec: &Recorder,
    c: &mut MultiplexedConnection,
    opts: &LoadOpts,
    rng: &mut impl Rng,
    key: u64,
    name: &str,
    served: usize,
) -> bool {
    let owner = format!("o{:032x}", rng.random::<u128>());
    let depth = rng.random_range(1..=3usize);
    let failed = |e: StepError, at: Instant| -> bool {
        match e {
            StepError::Redis(e) => {
                rec.fail(at, kind(&e));
                broken(&e)
            }
            StepError::Unexpected => {
                rec.fail(at, "unexpected reply".into());
                false
            }
        }
    };
    let requested = Instant::now();
    let mut hold = match kinds::rlock_first(c, key, name, &owner, opts.ttl_ms).await {
        Ok(Some(h)) => h,
        Ok(None) => {
            let pause = rng.random_range(0..=2);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            return false;
        }
        Err(e) => {
            let b = failed(e, requested);
            tokio::time::sleep(Duration::from_millis(5)).await;
            return b;
        }
    };
    let mut broke = false;
    let step = Instant::now();
    match kinds::rlock_nest(c, &mut hold, name, &owner, opts.ttl_ms, depth).await {
        Ok(held) => {
            // The fenced access at full depth, inside the lease counted
            // from the first request.
            let first = hold.acquires.first().and_then(|a| a.grant);
            let granted = hold.acquires.first().map_or(requested, |a| a.arrived);
            if let Some(g) = first {
                if requested + g.validity > Instant::now() {
                    let mut written = false;
                    if let Some(v) = rec.resource.read_fenced(key, g.token) {
                        tokio::time::sleep(opts.hold).await;
                        written = rec.resource.write(key, g.token, v + 1);
                    }
                    let mut t = rec.lock();
                    if written {
                        t.admitted += 1;
                    } else {
                        t.stale_rejected += 1;
                    }
                    t.grants.push(Grant {
                        requested,
                        at: granted,
                        gateway: served,
                        kind: opts.kind.label(),
                    });
                } else {
                    rec.lock().expired_on_arrival += 1;
                }
            }
            let unwound = Instant::now();
            if let Err(e) = kinds::rlock_unwind(c, &mut hold, name, &owner, held).await {
                broke = failed(e, unwound);
            }
        }
        Err(e) => broke = failed(e, step),
    }
    rec.lock().holds.push(hold);
    broke
}
