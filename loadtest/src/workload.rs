//! The workload driver: workers that run lock cycles against one target
//! through a real client crate (redis-rs, rslock for client-side Redlock,
//! or etcd-client for etcd's v3 lock API), and record latencies, outcomes
//! and every grant for the checker.
//!
//! A cycle is: choose a key, acquire, hold (optionally doing a fenced
//! read-modify-write on the simulated resource), release. A refused acquire
//! is counted as busy and retried after a short pause. etcd's `Lock` never
//! refuses: it queues the caller until the lock is free, so under contention
//! its waiting shows up in the acquire latency instead of as busy replies.
//!
//! A worker whose connection breaks (the gateway died, or a load balancer in
//! front of it closed the connection) opens a new one after a short backoff
//! and carries on; see [`reconnect`]. An acquire whose reply was lost has an
//! unknown outcome: it is counted as an error, never recorded as a grant,
//! and the lock, if it was granted, simply expires.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::ValueEnum;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use redis::aio::MultiplexedConnection;
use redis::Value;
use serde::Serialize;

use crate::checker::{self, GrantRecord, Report, Resource};
use crate::kinds::{self, LostPushes};
use crate::stats::{Stats, Summary};

/// Which keys the workers lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// A fresh key every cycle: no contention.
    Unique,
    /// One key for every worker.
    Hot,
    /// Keys drawn from a Zipf distribution over `keys` keys.
    Zipf,
    /// Zipf keys, and each hold does a fenced read-modify-write.
    Rmw,
}

/// How a lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `LOCK.ACQUIRE key ttl` / `LOCK.RELEASE key owner` (gateway only).
    Native,
    /// `SET key owner NX PX ttl` / redis-py's release script by EVALSHA;
    /// against a gateway, tokens come from `LOCK.TOKENS ON` (RESP3).
    Dropin,
    /// rslock's client-side Redlock over the `--target` addresses.
    Rslock,
    /// etcd's v3 lock API (single node or cluster endpoint); needs the
    /// `etcd` cargo feature. The `etcd` module below says what a cycle does.
    Etcd,
    /// `RWLOCK.READ` or `RWLOCK.WRITE` (`--write-percent` of cycles) and
    /// `RWLOCK.RELEASE` (gateway only).
    Rwlock,
    /// `SEM.ACQUIRE key permits` (`--permits`) and `SEM.RELEASE` (gateway
    /// only).
    Sem,
    /// A reentrant hold per cycle: `RLOCK.ACQUIRE ... OWNER o` nested 1 to 3
    /// deep, then as many `RLOCK.RELEASE`s (gateway only).
    Reentrant,
    /// `LOCK.ACQUIRE ... KEEPALIVE` on a RESP3 connection that counts the
    /// gateway's lost-lock pushes; hold it past the TTL with `--hold-ms`
    /// (gateway only).
    Keepalive,
}

/// Everything one run needs.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    /// One address, or (rslock) one per master.
    pub targets: Vec<String>,
    pub mode: Mode,
    pub scenario: Scenario,
    pub workers: usize,
    pub connections: usize,
    pub ttl_ms: u64,
    pub hold_ms: u64,
    pub duration: Duration,
    /// Stop after this many cycles (whichever of this and `duration` comes
    /// first).
    pub ops: Option<u64>,
    pub warmup: Duration,
    pub keys: u64,
    pub zipf_s: f64,
    pub busy_pause_ms: u64,
    pub progress: bool,
    /// `sem`: permits per semaphore.
    pub permits: u64,
    /// `rwlock`: the share of cycles that take the write lock, in percent.
    pub write_percent: u8,
    /// Connect with TLS (`rediss://`); every mode but keepalive and rslock.
    pub tls: Option<TlsFiles>,
}

/// What a TLS client trusts and presents.
#[derive(Debug, Clone, Serialize)]
pub struct TlsFiles {
    /// CA that signed the server's certificate (PEM).
    pub ca: PathBuf,
    /// Client certificate and key (PEM), for an mTLS listener.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// A redis-rs client for `target`, over TLS when `tls` is set.
fn redis_client(
    target: &str,
    query: &str,
    tls: Option<&TlsFiles>,
) -> anyhow::Result<redis::Client> {
    let Some(t) = tls else {
        return Ok(redis::Client::open(format!("redis://{target}/{query}"))?);
    };
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let client_tls = match &t.identity {
        Some((cert, key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        None => None,
    };
    Ok(redis::Client::build_with_tls(
        format!("rediss://{target}/{query}"),
        redis::TlsCertificates {
            client_tls,
            root_cert: Some(read(&t.ca)?),
        },
    )?)
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub config: RunConfig,
    /// Measured seconds (after warm-up).
    pub seconds: f64,
    pub acquire_granted: Summary,
    pub acquire_busy: Summary,
    pub release: Summary,
    pub cycle: Summary,
    pub release_not_held: u64,
    /// Every cycle the run made, warm-up included.
    pub cycles_total: u64,
    pub errors: std::collections::BTreeMap<String, u64>,
    /// Whether grants carried fencing tokens (the checker needs them).
    pub tokens: bool,
    pub safety: Report,
    /// Read-modify-writes admitted by the resource, and lost updates
    /// (admitted writes the final counters do not account for).
    pub rmw_writes: u64,
    pub lost_updates: u64,
    /// The read-write lock and semaphore invariants (modes `rwlock`, `sem`).
    pub kinds: checker::KindReport,
    /// The reentrant hold-count invariants (mode `reentrant`).
    pub reentrant: checker::ReentrantReport,
    /// Lost-lock pushes received (mode `keepalive`).
    pub lost_pushes: u64,
}

/// A lock the worker holds.
struct Held {
    name: String,
    owner: Vec<u8>,
    token: Option<u64>,
    validity: Duration,
    handle: Handle,
    /// Read-write lock or semaphore grants: which kind.
    kind: Option<checker::Kind>,
}

/// What a client library needs back to release a lock, beyond name and
/// owner.
enum Handle {
    None,
    Rslock(rslock::Lock),
    /// The lease the lock key is attached to.
    #[cfg(feature = "etcd")]
    Etcd {
        lease: i64,
    },
}

enum Acquired {
    Granted(Held),
    Busy,
}

/// One worker's connection to the target.
#[derive(Clone)]
enum Client {
    Native(MultiplexedConnection),
    Dropin {
        conn: MultiplexedConnection,
        release: Arc<redis::Script>,
        tokens: bool,
    },
    Rslock(rslock::LockManager),
    /// `RWLOCK.*`: the write share in percent.
    Rw(MultiplexedConnection, u8),
    /// `SEM.*`: the permit count.
    Sem(MultiplexedConnection, u64),
    /// `RLOCK.*`: cycles are run by [`reentrant_cycle`].
    Reentrant(MultiplexedConnection),
    /// `LOCK.*` with `KEEPALIVE` over RESP3.
    Keepalive(MultiplexedConnection),
    /// One gRPC channel (HTTP/2, multiplexed), shared by clones. Boxed: with
    /// a stub per etcd service it is far larger than the other variants.
    #[cfg(feature = "etcd")]
    Etcd(Box<etcd_client::Client>),
}

/// redis-py's `Lock` release script, byte for byte.
const REDIS_PY_RELEASE: &str = "\n        local token = redis.call('get', KEYS[1])\n        if not token or token ~= ARGV[1] then\n            return 0\n        end\n        redis.call('del', KEYS[1])\n        return 1\n    ";

/// How long an `rwlock` writer waits (`WAIT`), holding back new readers;
/// well under the client's response timeout.
const WRITER_WAIT_MS: u64 = 200;

/// Prefix of the error kinds after which a worker replaces its connection.
const DISCONNECTED: &str = "disconnected ";

fn kind(e: &redis::RedisError) -> String {
    if e.is_unrecoverable_error() {
        // The connection is gone (reset, EOF, refused); redis-rs never
        // reopens a multiplexed connection by itself.
        return format!("{DISCONNECTED}({:?})", e.kind());
    }
    e.code()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:?}", e.kind()))
}

/// Replaces a broken connection, retrying with a capped backoff until it
/// succeeds or the run stops; `None` when the run stopped first.
async fn reconnect(shared: &Shared, stats: &mut Stats) -> Option<Client> {
    let mut pause = Duration::from_millis(20);
    while !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(pause).await;
        match Client::connect(&shared.cfg, &shared.lost).await {
            Ok(c) => {
                stats.error("reconnected");
                return Some(c);
            }
            Err(_) => {
                stats.error("reconnect failed");
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
    }
    None
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

impl Client {
    async fn connect(cfg: &RunConfig, lost: &Arc<LostPushes>) -> anyhow::Result<Client> {
        let first = cfg.targets.first().context("no target")?;
        match cfg.mode {
            Mode::Keepalive => Ok(Client::Keepalive(
                kinds::connect_resp3(first, lost.clone(), None).await?,
            )),
            Mode::Native | Mode::Rwlock | Mode::Sem | Mode::Reentrant => {
                let c = redis_client(first, "", cfg.tls.as_ref())?;
                let conn = c.get_multiplexed_async_connection().await?;
                Ok(match cfg.mode {
                    Mode::Rwlock => Client::Rw(conn, cfg.write_percent),
                    Mode::Sem => Client::Sem(conn, cfg.permits.max(1)),
                    Mode::Reentrant => Client::Reentrant(conn),
                    _ => Client::Native(conn),
                })
            }
            Mode::Dropin => {
                let c = redis_client(first, "?protocol=resp3", cfg.tls.as_ref())?;
                let mut conn = c.get_multiplexed_async_connection().await?;
                // A gateway hands out tokens as RESP3 attributes on request;
                // a plain Redis refuses the command and has no tokens.
                let tokens = redis::cmd("LOCK.TOKENS")
                    .arg("ON")
                    .query_async::<()>(&mut conn)
                    .await
                    .is_ok();
                Ok(Client::Dropin {
                    conn,
                    release: Arc::new(redis::Script::new(REDIS_PY_RELEASE)),
                    tokens,
                })
            }
            Mode::Rslock | Mode::Etcd if cfg.tls.is_some() => {
                bail!("--tls-ca applies to --mode native and dropin only")
            }
            Mode::Rslock => {
                let urls: Vec<String> = cfg
                    .targets
                    .iter()
                    .map(|t| format!("redis://{t}/"))
                    .collect();
                let mut m = rslock::LockManager::new(urls);
                // One try per cycle: the driver counts and paces retries.
                m.set_retry(1, Duration::from_millis(1));
                Ok(Client::Rslock(m))
            }
            #[cfg(feature = "etcd")]
            Mode::Etcd => {
                let endpoint = if first.contains("://") {
                    first.clone()
                } else {
                    format!("http://{first}")
                };
                let c = etcd_client::Client::connect([endpoint], None)
                    .await
                    .map_err(|e| anyhow::anyhow!("etcd: {e}"))?;
                Ok(Client::Etcd(Box::new(c)))
            }
            #[cfg(not(feature = "etcd"))]
            Mode::Etcd => bail!(
                "this lockgate-loadtest was built without etcd support: rebuild with \
                 `cargo build --release -p lockgate-loadtest --features etcd` (etcd-client's \
                 build needs protoc and the well-known .proto files: apt-get install \
                 protobuf-compiler libprotobuf-dev)"
            ),
        }
    }

    fn has_tokens(&self) -> bool {
        match self {
            Client::Native(_)
            | Client::Rw(..)
            | Client::Sem(..)
            | Client::Reentrant(_)
            | Client::Keepalive(_) => true,
            Client::Dropin { tokens, .. } => *tokens,
            Client::Rslock(_) => false,
            #[cfg(feature = "etcd")]
            Client::Etcd(_) => true,
        }
    }

    async fn acquire(&mut self, name: &str, ttl_ms: u64) -> Result<Acquired, String> {
        match self {
            Client::Native(c) => {
                let v: Value = redis::cmd("LOCK.ACQUIRE")
                    .arg(name)
                    .arg(ttl_ms)
                    .query_async(c)
                    .await
                    .map_err(|e| kind(&e))?;
                native_grant(v, name, None)
            }
            Client::Keepalive(c) => {
                let v: Value = redis::cmd("LOCK.ACQUIRE")
                    .arg(name)
                    .arg(ttl_ms)
                    .arg("KEEPALIVE")
                    .query_async(c)
                    .await
                    .map_err(|e| kind(&e))?;
                native_grant(v, name, None)
            }
            // The worker runs reentrant holds itself; never called.
            Client::Reentrant(_) => Err("reentrant cycles do not use acquire".into()),
            Client::Rw(c, write_percent) => {
                let write = rand::rng().random_range(0..100u8) < *write_percent;
                let cmd = if write { "RWLOCK.WRITE" } else { "RWLOCK.READ" };
                let mut req = redis::cmd(cmd);
                req.arg(name).arg(ttl_ms);
                if write {
                    // A writer that does not wait never holds back readers,
                    // so on a hot key it would starve; waiting exercises
                    // writer preference.
                    req.arg("WAIT").arg(WRITER_WAIT_MS);
                }
                let v: Value = req.query_async(c).await.map_err(|e| kind(&e))?;
                let k = if write {
                    checker::Kind::Write
                } else {
                    checker::Kind::Read
                };
                native_grant(v, name, Some(k))
            }
            Client::Sem(c, permits) => {
                let v: Value = redis::cmd("SEM.ACQUIRE")
                    .arg(name)
                    .arg(*permits)
                    .arg(ttl_ms)
                    .query_async(c)
                    .await
                    .map_err(|e| kind(&e))?;
                native_grant(v, name, Some(checker::Kind::Sem { permits: *permits }))
            }
            Client::Dropin { conn, .. } => {
                let owner: [u8; 16] = rand::random();
                let owner = owner.iter().map(|b| format!("{b:02x}")).collect::<String>();
                let v: Value = redis::cmd("SET")
                    .arg(name)
                    .arg(&owner)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(conn)
                    .await
                    .map_err(|e| kind(&e))?;
                let (ok, attrs) = match v {
                    Value::Attribute { data, attributes } => (*data == Value::Okay, attributes),
                    Value::Okay => (true, Vec::new()),
                    Value::Nil => (false, Vec::new()),
                    _ => return Err("unexpected reply".into()),
                };
                if !ok {
                    return Ok(Acquired::Busy);
                }
                let attr = |k: &[u8]| {
                    attrs.iter().find_map(|(a, v)| match a {
                        Value::BulkString(a) if a == k => int(v),
                        Value::SimpleString(a) if a.as_bytes() == k => int(v),
                        _ => None,
                    })
                };
                Ok(Acquired::Granted(Held {
                    name: name.to_string(),
                    owner: owner.into_bytes(),
                    token: attr(b"token").and_then(|t| u64::try_from(t).ok()),
                    validity: Duration::from_millis(
                        attr(b"validity_ms")
                            .and_then(|v| u64::try_from(v).ok())
                            .unwrap_or(ttl_ms),
                    ),
                    handle: Handle::None,
                    kind: None,
                }))
            }
            Client::Rslock(m) => match m.lock(name.as_bytes(), Duration::from_millis(ttl_ms)).await
            {
                Ok(l) => Ok(Acquired::Granted(Held {
                    name: name.to_string(),
                    owner: l.val.clone(),
                    token: None,
                    validity: Duration::from_millis(l.validity_time as u64),
                    handle: Handle::Rslock(l),
                    kind: None,
                })),
                Err(rslock::LockError::Unavailable) => Ok(Acquired::Busy),
                Err(e) => Err(format!("{e}")),
            },
            #[cfg(feature = "etcd")]
            Client::Etcd(c) => etcd::acquire(c, name, ttl_ms).await,
        }
    }

    /// True when the lock was still held by this owner.
    async fn release(&mut self, h: Held) -> Result<bool, String> {
        match self {
            Client::Native(c) | Client::Keepalive(c) => {
                let n: i64 = redis::cmd("LOCK.RELEASE")
                    .arg(&h.name)
                    .arg(&h.owner)
                    .query_async(c)
                    .await
                    .map_err(|e| kind(&e))?;
                Ok(n == 1)
            }
            Client::Reentrant(_) => Err("reentrant cycles do not use release".into()),
            Client::Rw(c, _) | Client::Sem(c, _) => {
                let cmd = if matches!(h.kind, Some(checker::Kind::Sem { .. })) {
                    "SEM.RELEASE"
                } else {
                    "RWLOCK.RELEASE"
                };
                let n: i64 = redis::cmd(cmd)
                    .arg(&h.name)
                    .arg(&h.owner)
                    .query_async(c)
                    .await
                    .map_err(|e| kind(&e))?;
                Ok(n == 1)
            }
            Client::Dropin { conn, release, .. } => {
                let n: i64 = release
                    .key(&h.name)
                    .arg(&h.owner)
                    .invoke_async(conn)
                    .await
                    .map_err(|e| kind(&e))?;
                Ok(n == 1)
            }
            Client::Rslock(m) => {
                if let Handle::Rslock(l) = &h.handle {
                    m.unlock(l).await;
                }
                Ok(true)
            }
            #[cfg(feature = "etcd")]
            Client::Etcd(c) => match h.handle {
                Handle::Etcd { lease } => etcd::release(c, h.owner, lease).await,
                _ => Err("etcd: grant without a lease".into()),
            },
        }
    }
}

/// Parses `[owner, token, validity_ms]` or nil, the native grant reply of
/// `LOCK.ACQUIRE`, `RWLOCK.READ|WRITE` and `SEM.ACQUIRE`.
fn native_grant(v: Value, name: &str, kind: Option<checker::Kind>) -> Result<Acquired, String> {
    match v {
        Value::Array(items) => match items.as_slice() {
            [Value::BulkString(owner), token, validity] => Ok(Acquired::Granted(Held {
                name: name.to_string(),
                owner: owner.clone(),
                token: int(token).and_then(|t| u64::try_from(t).ok()),
                validity: Duration::from_millis(
                    int(validity)
                        .and_then(|v| u64::try_from(v).ok())
                        .unwrap_or(0),
                ),
                handle: Handle::None,
                kind,
            })),
            _ => Err("unexpected reply".into()),
        },
        Value::Nil => Ok(Acquired::Busy),
        _ => Err("unexpected reply".into()),
    }
}

/// Picks keys for one worker.
struct Keys {
    scenario: Scenario,
    worker: u64,
    seq: u64,
    zipf: Option<Zipf<f64>>,
}

impl Keys {
    fn new(cfg: &RunConfig, worker: u64) -> anyhow::Result<Keys> {
        let zipf = match cfg.scenario {
            Scenario::Zipf | Scenario::Rmw => {
                Some(Zipf::new(cfg.keys.max(1) as f64, cfg.zipf_s).context("zipf parameters")?)
            }
            _ => None,
        };
        Ok(Keys {
            scenario: cfg.scenario,
            worker,
            seq: 0,
            zipf,
        })
    }

    /// A key id (for the checker).
    fn next(&mut self, rng: &mut impl Rng) -> u64 {
        self.seq += 1;
        match (self.scenario, &self.zipf) {
            (Scenario::Unique, _) => (self.worker << 40) | self.seq,
            (Scenario::Hot, _) => 0,
            (_, Some(z)) => z.sample(rng) as u64,
            (_, None) => 0,
        }
    }
}

struct Shared {
    cfg: RunConfig,
    run_id: u64,
    stop: AtomicBool,
    cycles: AtomicU64,
    measure_from: Instant,
    resource: Resource,
    rmw_writes: AtomicU64,
    stale: AtomicU64,
    lost: Arc<LostPushes>,
}

/// What one worker brings back.
type WorkerOut = (
    Stats,
    Vec<GrantRecord>,
    Vec<checker::KindRecord>,
    Vec<checker::ReentrantHold>,
);

/// One reentrant hold: nested acquires 1 to 3 deep under one fresh owner,
/// the hold, then as many releases. `Ok(None)` when the first acquire was
/// busy; `Err` with the error kind when a request failed (the hold, as far
/// as it went, is still returned for the checker).
async fn reentrant_cycle(
    c: &mut MultiplexedConnection,
    cfg: &RunConfig,
    key: u64,
    name: &str,
    owner: &str,
    depth: usize,
) -> (Option<checker::ReentrantHold>, Option<String>) {
    let step_kind = |e: kinds::StepError| match e {
        kinds::StepError::Redis(e) => kind(&e),
        kinds::StepError::Unexpected => "unexpected reply".to_string(),
    };
    let mut hold = match kinds::rlock_first(c, key, name, owner, cfg.ttl_ms).await {
        Ok(Some(h)) => h,
        Ok(None) => return (None, None),
        Err(e) => return (None, Some(step_kind(e))),
    };
    let held = match kinds::rlock_nest(c, &mut hold, name, owner, cfg.ttl_ms, depth).await {
        Ok(n) => n,
        Err(e) => return (Some(hold), Some(step_kind(e))),
    };
    if cfg.hold_ms > 0 {
        tokio::time::sleep(Duration::from_millis(cfg.hold_ms)).await;
    }
    let err = kinds::rlock_unwind(c, &mut hold, name, owner, held)
        .await
        .err()
        .map(step_kind);
    (Some(hold), err)
}

async fn worker(shared: Arc<Shared>, mut client: Client, id: u64) -> anyhow::Result<WorkerOut> {
    let cfg = &shared.cfg;
    let mut keys = Keys::new(cfg, id)?;
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut stats = Stats::default();
    let mut history = Vec::new();
    let mut kinds = Vec::new();
    let mut holds = Vec::new();
    let tokens = client.has_tokens();
    while !shared.stop.load(Ordering::Relaxed) {
        let key = keys.next(&mut rng);
        let name = format!("lt:{}:{key}", shared.run_id);
        let start = Instant::now();
        let measured = start >= shared.measure_from;
        if let Client::Reentrant(c) = &mut client {
            let owner = format!("lt-{}-{id}-{}", shared.run_id, keys.seq);
            let depth = rng.random_range(1..=3usize);
            let (hold, err) = reentrant_cycle(c, cfg, key, &name, &owner, depth).await;
            let broken = err.as_deref().is_some_and(|e| e.starts_with(DISCONNECTED));
            if let Some(e) = &err {
                stats.error(e);
            }
            match hold {
                Some(h) => {
                    if measured {
                        if let Some(a) = h.acquires.first() {
                            stats.granted(a.arrived - a.sent);
                        }
                        if let Some(r) = h.releases.last() {
                            stats.released(r.arrived - r.sent, r.left == Some(0));
                        }
                        stats.cycle(start.elapsed());
                    }
                    holds.push(h);
                    let done = shared.cycles.fetch_add(1, Ordering::Relaxed) + 1;
                    if cfg.ops.is_some_and(|n| done >= n) {
                        shared.stop.store(true, Ordering::Relaxed);
                    }
                }
                None if err.is_none() => {
                    if measured {
                        stats.busy(start.elapsed());
                    }
                    if cfg.busy_pause_ms > 0 {
                        let pause = rng.random_range(0..=cfg.busy_pause_ms);
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                }
                None => tokio::time::sleep(Duration::from_millis(1)).await,
            }
            if broken {
                match reconnect(&shared, &mut stats).await {
                    Some(c) => client = c,
                    None => break,
                }
            }
            continue;
        }
        match client.acquire(&name, cfg.ttl_ms).await {
            Ok(Acquired::Granted(held)) => {
                let granted = Instant::now();
                if measured {
                    stats.granted(granted - start);
                }
                if cfg.hold_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(cfg.hold_ms)).await;
                }
                if cfg.scenario == Scenario::Rmw {
                    let token = held.token.unwrap_or(0);
                    let v = shared.resource.read(key);
                    if shared.resource.write(key, token, v + 1) {
                        shared.rmw_writes.fetch_add(1, Ordering::Relaxed);
                    } else {
                        shared.stale.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let (token, validity, held_kind) = (held.token, held.validity, held.kind);
                let rel_start = Instant::now();
                let mut broken = false;
                match client.release(held).await {
                    Ok(was_held) if measured => stats.released(rel_start.elapsed(), was_held),
                    Ok(_) => {}
                    Err(e) => {
                        broken = e.starts_with(DISCONNECTED);
                        stats.error(&e);
                    }
                }
                if measured {
                    stats.cycle(start.elapsed());
                }
                if let (Some(kind), Some(token)) = (held_kind, token) {
                    kinds.push(checker::KindRecord {
                        key,
                        kind,
                        token,
                        granted,
                        validity,
                        released: Some(rel_start),
                    });
                }
                // A keepalive lock is renewed until released, unless the
                // gateway said it was lost: then it ended by the push.
                let validity = match (&client, token) {
                    (Client::Keepalive(_), Some(t)) => match shared.lost.lost_at(t) {
                        Some(lost) => lost.saturating_duration_since(granted),
                        None => rel_start.saturating_duration_since(granted).max(validity),
                    },
                    _ => validity,
                };
                if let (true, Some(token)) = (tokens, token) {
                    history.push(GrantRecord {
                        key,
                        token,
                        requested: start,
                        granted,
                        validity,
                        released: Some(rel_start),
                    });
                }
                let done = shared.cycles.fetch_add(1, Ordering::Relaxed) + 1;
                if cfg.ops.is_some_and(|n| done >= n) {
                    shared.stop.store(true, Ordering::Relaxed);
                }
                if broken {
                    match reconnect(&shared, &mut stats).await {
                        Some(c) => client = c,
                        None => break,
                    }
                }
            }
            Ok(Acquired::Busy) => {
                if measured {
                    stats.busy(start.elapsed());
                }
                if cfg.busy_pause_ms > 0 {
                    let pause = rng.random_range(0..=cfg.busy_pause_ms);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
            Err(e) => {
                stats.error(&e);
                if e.starts_with(DISCONNECTED) {
                    match reconnect(&shared, &mut stats).await {
                        Some(c) => client = c,
                        None => break,
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
    Ok((stats, history, kinds, holds))
}

/// Runs one bounded workload and analyses it.
pub async fn run(cfg: RunConfig) -> anyhow::Result<RunResult> {
    if cfg.workers == 0 || cfg.connections == 0 {
        bail!("--workers and --connections must be at least 1");
    }
    let lost = Arc::new(LostPushes::default());
    let mut clients = Vec::with_capacity(cfg.connections);
    for _ in 0..cfg.connections {
        clients.push(
            Client::connect(&cfg, &lost)
                .await
                .with_context(|| format!("connecting to {}", cfg.targets.join(",")))?,
        );
    }
    let tokens = clients.iter().all(Client::has_tokens);
    let start = Instant::now();
    let shared = Arc::new(Shared {
        run_id: rand::random::<u32>().into(),
        stop: AtomicBool::new(false),
        cycles: AtomicU64::new(0),
        measure_from: start + cfg.warmup,
        resource: Resource::default(),
        rmw_writes: AtomicU64::new(0),
        stale: AtomicU64::new(0),
        lost,
        cfg: cfg.clone(),
    });
    let mut tasks = Vec::with_capacity(cfg.workers);
    for w in 0..cfg.workers {
        let client = clients[w % clients.len()].clone();
        tasks.push(tokio::spawn(worker(shared.clone(), client, w as u64)));
    }
    let bar = if cfg.progress {
        let total = cfg.warmup + cfg.duration;
        let bar = indicatif::ProgressBar::new(total.as_millis() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let end = start + cfg.warmup + cfg.duration;
    while Instant::now() < end && !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(b) = &bar {
            let secs = start.elapsed().as_secs_f64().max(0.001);
            let n = shared.cycles.load(Ordering::Relaxed);
            b.set_position(start.elapsed().as_millis() as u64);
            b.set_message(format!("{n} cycles, {:.0}/s", n as f64 / secs));
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let measured_until = Instant::now();
    let mut stats = Stats::default();
    let mut history = Vec::new();
    let mut kinds = Vec::new();
    let mut holds = Vec::new();
    for t in tasks {
        let (s, h, k, r) = t.await.context("worker panicked")??;
        stats.merge(&s);
        history.extend(h);
        kinds.extend(k);
        holds.extend(r);
    }
    // Each reentrant hold is one grant for the token checks.
    history.extend(checker::token_records(&holds));
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let seconds = measured_until
        .saturating_duration_since(shared.measure_from)
        .as_secs_f64();
    let safety = checker::analyse(&history, shared.stale.load(Ordering::Relaxed));
    let rmw_writes = shared.rmw_writes.load(Ordering::Relaxed);
    let lost_updates = rmw_writes.saturating_sub(shared.resource.total());
    Ok(RunResult {
        seconds,
        acquire_granted: Summary::of(&stats.acquire_granted, seconds),
        acquire_busy: Summary::of(&stats.acquire_busy, seconds),
        release: Summary::of(&stats.release, seconds),
        cycle: Summary::of(&stats.cycle, seconds),
        release_not_held: stats.release_not_held,
        cycles_total: shared.cycles.load(Ordering::Relaxed),
        errors: stats.errors,
        tokens,
        safety,
        rmw_writes,
        lost_updates,
        kinds: checker::analyse_kinds(&kinds),
        reentrant: checker::analyse_reentrant(&holds),
        lost_pushes: shared.lost.count.load(Ordering::Relaxed),
        config: cfg,
    })
}

/// The human summary of a run.
pub fn table(r: &RunResult) -> String {
    let mut s = format!(
        "{} x{} workers over {} connection(s), {:?} {:?}, {:.1} s measured\n",
        r.config.targets.join(","),
        r.config.workers,
        r.config.connections,
        r.config.mode,
        r.config.scenario,
        r.seconds
    );
    s.push_str(&format!(
        "{:<18} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
        "op", "count", "per s", "p50 ms", "p90 ms", "p99 ms", "p99.9", "max ms"
    ));
    for (name, x) in [
        ("acquire granted", &r.acquire_granted),
        ("acquire busy", &r.acquire_busy),
        ("release", &r.release),
        ("full cycle", &r.cycle),
    ] {
        s.push_str(&format!(
            "{name:<18} {:>10} {:>10.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}\n",
            x.count, x.per_sec, x.p50_ms, x.p90_ms, x.p99_ms, x.p999_ms, x.max_ms
        ));
    }
    if r.release_not_held > 0 {
        s.push_str(&format!(
            "releases that found the lock gone: {}\n",
            r.release_not_held
        ));
    }
    for (k, v) in &r.errors {
        s.push_str(&format!("errors {k}: {v}\n"));
    }
    let c = &r.safety;
    if r.tokens {
        s.push_str(&format!(
            "safety: {} grants checked, {} duplicate tokens, {} backwards tokens, {} overlapping validity windows, {} stale writes rejected\n",
            c.grants, c.duplicate_tokens, c.backwards_tokens, c.overlapping_validity, c.stale_rejected
        ));
    } else {
        s.push_str("safety: no fencing tokens from this target (direct Redis or client-side Redlock); tokens not checked\n");
    }
    if r.config.scenario == Scenario::Rmw {
        s.push_str(&format!(
            "read-modify-write: {} writes admitted, {} lost updates\n",
            r.rmw_writes, r.lost_updates
        ));
    }
    for e in &c.examples {
        s.push_str(&format!("  violation: {e}\n"));
    }
    if matches!(r.config.mode, Mode::Rwlock | Mode::Sem) {
        s.push_str("  (readers and semaphore holders share a key by design, so overlapping windows are expected here; the kinds line checks their rules)\n");
        let k = &r.kinds;
        s.push_str(&format!(
            "kinds: {} reads, {} writes, {} semaphore grants; {} times more live semaphore holders than permits, {} writer overlaps\n",
            k.reads, k.writes, k.sem_grants, k.sem_over_permits, k.writer_overlaps
        ));
        for e in &k.examples {
            s.push_str(&format!("  violation: {e}\n"));
        }
    }
    if r.config.mode == Mode::Reentrant {
        s.push_str(&reentrant_line(&r.reentrant));
    }
    if r.config.mode == Mode::Keepalive {
        s.push_str(&format!(
            "keepalive: RESP3, {} lost-lock pushes received (a lost lock's window ends at its push)\n",
            r.lost_pushes
        ));
    }
    s
}

/// The checker's reentrant line, and its examples.
pub fn reentrant_line(r: &checker::ReentrantReport) -> String {
    let mut s = format!(
        "reentrant: {} holds, {} nested grants, {} releases, max depth {}; {} negative counts, \
         {} holds mismatches, {} token changes, {} freed before the outermost release, {} held \
         by another owner ({} holds past their lease, {} cut by a failed request, not judged \
         after that)\n",
        r.holds,
        r.nested_grants,
        r.releases,
        r.max_depth,
        r.negative_holds,
        r.holds_mismatch,
        r.token_changed,
        r.freed_early,
        r.held_by_other,
        r.expired_mid_hold,
        r.failed_mid_hold
    );
    for e in &r.examples {
        s.push_str(&format!("  violation: {e}\n"));
    }
    s
}

/// The etcd mode. A lock cycle is the etcd equivalent of the gateway's
/// `LOCK.ACQUIRE key ttl` + `LOCK.RELEASE key owner`, step for step:
///
/// - **acquire** = `LeaseGrant(ttl)` + `Lock(name, lease)`. The gateway's
///   acquire sets the TTL atomically with the grant; etcd can only expire a
///   lock through a lease, so both calls count as the acquire (time and
///   latency). The TTL is rounded up to whole seconds, at least 1, since
///   leases have no finer unit.
/// - **release** = `Unlock(key)` + `LeaseRevoke(lease)`. `Unlock` is the lock
///   API's release (it deletes the key the next waiter watches); the revoke
///   returns the lease, so, as after a gateway release, nothing of the cycle
///   outlives it on the server (an unrevoked lease would linger until its
///   TTL, and at thousands of cycles a second that is a server etcd users
///   would not run).
///
/// The fencing token is the lock response's header revision. etcd's
/// revisions are global and only rise, and a `Lock` reply carries the
/// revision at which the caller became the owner (its key's creation when
/// uncontended, else the read that saw every earlier waiter's key deleted),
/// so for one lock name a grant's revision is above that of every grant
/// that completed before it was requested: what the checker demands of the
/// gateway's tokens. etcd documents lock key revisions as fencing tokens.
/// The owner is the lock key etcd returns (`name/<lease id>`).
#[cfg(feature = "etcd")]
mod etcd {
    use std::time::{Duration, Instant};

    use super::{Acquired, Handle, Held};

    /// An error kind for the stats: the gRPC code when etcd answered, else
    /// the client's error class (messages would split one kind into many).
    pub(super) fn kind(e: &etcd_client::Error) -> String {
        use etcd_client::Error as E;
        match e {
            E::GRpcStatus(s) => format!("etcd {:?}", s.code()),
            E::TransportError(_) => "etcd transport".into(),
            E::IoError(_) => "etcd io".into(),
            other => format!(
                "etcd {}",
                other.to_string().split(':').next().unwrap_or("error")
            ),
        }
    }

    /// Revoking a lease that already ran out (so its lock went with it).
    fn lease_gone(e: &etcd_client::Error) -> bool {
        matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("lease not found"))
    }

    pub(super) async fn acquire(
        c: &mut etcd_client::Client,
        name: &str,
        ttl_ms: u64,
    ) -> Result<Acquired, String> {
        let start = Instant::now();
        let ttl_s = i64::try_from(ttl_ms.div_ceil(1000).max(1)).unwrap_or(i64::MAX);
        let lease = c.lease_grant(ttl_s, None).await.map_err(|e| kind(&e))?;
        if !lease.error().is_empty() {
            return Err("etcd lease grant refused".into());
        }
        let id = lease.id();
        let opts = etcd_client::LockOptions::new().with_lease(id);
        let reply = match c.lock(name, Some(opts)).await {
            Ok(r) => r,
            Err(e) => {
                // A failed Lock may still have queued our key; the revoke
                // removes it with the lease.
                let _ = c.lease_revoke(id).await;
                return Err(kind(&e));
            }
        };
        let token = reply
            .header()
            .map(|h| h.revision())
            .and_then(|r| u64::try_from(r).ok())
            .filter(|&r| r > 0);
        let Some(token) = token else {
            // A grant the checker cannot see would hide a violation, so it
            // is an error, not a silent grant; the revoke releases it.
            let _ = c.lease_revoke(id).await;
            return Err("etcd lock reply without a revision".into());
        };
        // The lease started counting when it was granted, before Lock.
        let lease_ttl = Duration::from_secs(u64::try_from(lease.ttl()).unwrap_or(0));
        Ok(Acquired::Granted(Held {
            name: name.to_string(),
            owner: reply.key().to_vec(),
            token: Some(token),
            validity: lease_ttl.saturating_sub(start.elapsed()),
            handle: Handle::Etcd { lease: id },
            kind: None,
        }))
    }

    /// True when the lease was still there, i.e. the lock had not expired.
    pub(super) async fn release(
        c: &mut etcd_client::Client,
        key: Vec<u8>,
        lease: i64,
    ) -> Result<bool, String> {
        let unlocked = c.unlock(key).await.map_err(|e| kind(&e));
        // Revoke even when Unlock failed: it deletes the lock key too, so a
        // failed cycle leaves nothing held.
        let revoked = match c.lease_revoke(lease).await {
            Ok(_) => Ok(true),
            Err(e) if lease_gone(&e) => Ok(false),
            Err(e) => Err(kind(&e)),
        };
        unlocked?;
        revoked
    }
}
