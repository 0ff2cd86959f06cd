//! The `retention` section: locks on distinct keys (1,000,000 by default,
//! or as many as fit in the time budget), through a gateway with bounded
//! register retention (`lock.fence_retention_ms` = R) and one with
//! registers kept forever (`0`), each over its own 3 masters, A/B
//! interleaved in chunks. It reports each master's key count (`DBSIZE`) and
//! `used_memory` before, at peak, at the end and R + TTL later, and the
//! throughput of both sides. Then two in-process gateways over 3 more
//! masters, one with its clock 60 s behind, take locks on fresh keys at once
//! and the stale-retry rate (`lockgate_fence_retries_total` over acquires)
//! is reported. Run it with `--only retention`: it is left out of a plain
//! `bench` because it takes minutes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use lockgate::dev::LocalRedis;
use redis::aio::MultiplexedConnection;

use super::{BenchArgs, Gateway, Report, Row};

/// One master's key count and memory.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    keys: u64,
    used_memory: u64,
}

async fn size(c: &mut MultiplexedConnection) -> anyhow::Result<Size> {
    let keys: u64 = redis::cmd("DBSIZE").query_async(c).await?;
    let info: String = redis::cmd("INFO").arg("memory").query_async(c).await?;
    let used_memory = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(Size { keys, used_memory })
}

/// One side of the comparison: a gateway, its masters, and what was seen.
struct Side {
    label: String,
    gateway: Gateway,
    direct: Vec<MultiplexedConnection>,
    next_key: Arc<AtomicU64>,
    done: u64,
    errors: u64,
    busy: f64,
    before: Vec<Size>,
    peak: Vec<Size>,
    end: Vec<Size>,
    later: Vec<Size>,
}

impl Side {
    async fn sizes(&mut self) -> anyhow::Result<Vec<Size>> {
        let mut out = Vec::new();
        for c in &mut self.direct {
            out.push(size(c).await?);
        }
        Ok(out)
    }

    async fn sample_peak(&mut self) -> anyhow::Result<()> {
        let now = self.sizes().await?;
        for (p, s) in self.peak.iter_mut().zip(now) {
            p.keys = p.keys.max(s.keys);
            p.used_memory = p.used_memory.max(s.used_memory);
        }
        Ok(())
    }

    /// `n` acquire+release cycles on fresh keys with `workers` workers on
    /// one multiplexed connection.
    async fn chunk(&mut self, n: u64, workers: usize, ttl_ms: u64) -> anyhow::Result<()> {
        let client = redis::Client::open(format!("redis://{}/", self.gateway.addr))?;
        let conn = client.get_multiplexed_async_connection().await?;
        let left = Arc::new(AtomicU64::new(n));
        let errors = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (mut conn, left, errors, next) = (
                conn.clone(),
                left.clone(),
                errors.clone(),
                self.next_key.clone(),
            );
            let tag = self.label.clone();
            tasks.push(tokio::spawn(async move {
                while left
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1))
                    .is_ok()
                {
                    let key = format!("ret:{tag}:{}", next.fetch_add(1, Ordering::Relaxed));
                    let r: redis::RedisResult<redis::Value> = redis::cmd("LOCK.ACQUIRE")
                        .arg(&key)
                        .arg(ttl_ms)
                        .query_async(&mut conn)
                        .await;
                    let owner = match r {
                        Ok(redis::Value::Array(items)) => match items.first() {
                            Some(redis::Value::BulkString(o)) => o.clone(),
                            _ => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        },
                        other => {
                            if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("  not granted: {other:?}");
                            }
                            continue;
                        }
                    };
                    let r: redis::RedisResult<i64> = redis::cmd("LOCK.RELEASE")
                        .arg(&key)
                        .arg(owner)
                        .query_async(&mut conn)
                        .await;
                    if !matches!(r, Ok(1)) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        self.busy += start.elapsed().as_secs_f64();
        self.done += n;
        self.errors += errors.load(Ordering::Relaxed);
        Ok(())
    }

    fn row(&self, workers: usize) -> Row {
        Row {
            label: self.label.clone(),
            workers,
            cycles_per_sec: self.done as f64 / self.busy.max(1e-9),
            acquire_p50_ms: 0.0,
            acquire_p99_ms: 0.0,
            errors: self.errors,
            error_kinds: String::new(),
            unsafe_runs: 0,
        }
    }
}

/// Two in-process gateways over 3 fresh masters, the second with its clock
/// `skew_ms` behind, each with `workers` workers taking and releasing locks
/// on fresh keys for `secs`: (acquires, fence retries, errors).
async fn skewed_pair(workers: usize, secs: u64, skew_ms: i64) -> anyhow::Result<(u64, u64, u64)> {
    use lockgate::config::{Bootstrap, Config, MasterConfig};
    let set = lockgate::dev::start_masters(3).context("starting masters")?;
    let mut gws = Vec::new();
    for skew in [0i64, -skew_ms] {
        let mut c = Config {
            listen: "127.0.0.1:0".into(),
            admin_listen: String::new(),
            masters: set
                .iter()
                .map(|m| MasterConfig::plain(m.address()))
                .collect(),
            ..Config::default()
        };
        c.lock.bootstrap = Bootstrap::Immediate;
        c.master.timeout = Duration::from_millis(200);
        let gw = lockgate::server::Gateway::start(c.validate()?).await?;
        anyhow::ensure!(
            gw.wait_ready(Duration::from_secs(15)).await,
            "no quorum ready"
        );
        gw.engine()
            .proposer()
            .set_clock_offset_us(skew.saturating_mul(1_000));
        gws.push(gw);
    }
    let until = Instant::now() + Duration::from_secs(secs);
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (g, gw) in gws.iter().enumerate() {
        let conn = redis::Client::open(format!("redis://{}/", gw.local_addr()))?
            .get_multiplexed_async_connection()
            .await?;
        for _ in 0..workers {
            let (mut conn, done, errors, next) =
                (conn.clone(), done.clone(), errors.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    let key = format!("skew:{g}:{}", next.fetch_add(1, Ordering::Relaxed));
                    let r: redis::RedisResult<redis::Value> = redis::cmd("LOCK.ACQUIRE")
                        .arg(&key)
                        .arg(10_000)
                        .query_async(&mut conn)
                        .await;
                    let owner = match r {
                        Ok(redis::Value::Array(items)) => match items.first() {
                            Some(redis::Value::BulkString(o)) => o.clone(),
                            _ => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        },
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    };
                    done.fetch_add(1, Ordering::Relaxed);
                    let _: redis::RedisResult<i64> = redis::cmd("LOCK.RELEASE")
                        .arg(&key)
                        .arg(owner)
                        .query_async(&mut conn)
                        .await;
                }
            }));
        }
    }
    for t in tasks {
        t.await?;
    }
    let retries = gws.iter().map(|g| g.metrics().fence_retries.get()).sum();
    for gw in gws {
        gw.shutdown(Duration::from_millis(100)).await;
    }
    drop(set);
    Ok((
        done.load(Ordering::Relaxed),
        retries,
        errors.load(Ordering::Relaxed),
    ))
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

pub(super) async fn section(
    args: &BenchArgs,
    bin: &std::path::PathBuf,
    rep: &mut Report,
) -> anyhow::Result<()> {
    let r_ms = args.retention_ms;
    let ttl_ms = args.retention_ttl_ms;
    let workers = args.workers.iter().copied().max().unwrap_or(64);
    println!(
        "== retention: up to {} locks on distinct keys per side (budget {} s), fence_retention_ms = {r_ms} \
         vs 0 (registers forever), 3 masters each, W={workers}, ttl {ttl_ms} ms, A/B interleaved",
        args.retention_locks, args.retention_budget_s
    );
    let set_a = lockgate::dev::start_masters(3).context("starting masters")?;
    let set_b = lockgate::dev::start_masters(3).context("starting masters")?;
    let mut sides = Vec::new();
    for (label, set, r) in [
        (format!("retention {r_ms} ms"), &set_a, r_ms.to_string()),
        ("retention off".to_string(), &set_b, "0".to_string()),
    ] {
        let ms: Vec<&LocalRedis> = set.iter().collect();
        let gateway = Gateway::start(
            bin,
            &ms,
            &[
                ("LOCKGATE_LOCK_FENCE_RETENTION_MS", &r),
                // A deadline a shared 2-core machine meets under load: timeouts
                // would be errors of both sides, not a cost of retention.
                ("LOCKGATE_MASTER_TIMEOUT_MS", "100"),
            ],
        )
        .await?;
        let mut direct = Vec::new();
        for m in set.iter() {
            direct.push(
                redis::Client::open(format!("redis://{}/", m.address()))?
                    .get_multiplexed_async_connection()
                    .await?,
            );
        }
        let mut side = Side {
            label,
            gateway,
            direct,
            next_key: Arc::new(AtomicU64::new(0)),
            done: 0,
            errors: 0,
            busy: 0.0,
            before: Vec::new(),
            peak: Vec::new(),
            end: Vec::new(),
            later: Vec::new(),
        };
        side.before = side.sizes().await?;
        side.peak = side.before.clone();
        sides.push(side);
    }
    let budget = Duration::from_secs(args.retention_budget_s);
    let began = Instant::now();
    let chunk = args.retention_chunk.max(1);
    while sides.iter().all(|s| s.done < args.retention_locks) && began.elapsed() < budget {
        for s in &mut sides {
            let n = chunk.min(args.retention_locks - s.done);
            s.chunk(n, workers, ttl_ms).await?;
            s.sample_peak().await?;
        }
        println!(
            "  {:.0} s: {}",
            began.elapsed().as_secs_f64(),
            sides
                .iter()
                .map(|s| format!("{} {} locks", s.label, s.done))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for s in &mut sides {
        s.end = s.sizes().await?;
    }
    let wait = Duration::from_millis(r_ms.max(ttl_ms) + ttl_ms) + Duration::from_secs(2);
    println!("  waiting {} s (R + TTL + 2 s slack)", wait.as_secs());
    tokio::time::sleep(wait).await;
    for s in &mut sides {
        s.later = s.sizes().await?;
    }
    for s in &sides {
        let row = s.row(workers);
        println!(
            "  {}: {} locks in {:.1} s busy, {:.0} cycles/s, {} errors",
            s.label, s.done, s.busy, row.cycles_per_sec, s.errors
        );
        for (i, (((b, p), e), l)) in s
            .before
            .iter()
            .zip(&s.peak)
            .zip(&s.end)
            .zip(&s.later)
            .enumerate()
        {
            let note = format!(
                "{} master {i}: keys {} before, {} at peak, {} at the end, {} R + TTL later; \
                 used_memory {:.2} MiB before, {:.2} MiB at peak, {:.2} MiB at the end, {:.2} MiB R + TTL later",
                s.label,
                b.keys,
                p.keys,
                e.keys,
                l.keys,
                mib(b.used_memory),
                mib(p.used_memory),
                mib(e.used_memory),
                mib(l.used_memory)
            );
            println!("  {note}");
            rep.notes.push(note);
        }
        rep.rows.push(row);
    }
    let (a, b) = (sides[0].row(workers), sides[1].row(workers));
    rep.ratio(
        format!("retention W={workers}: bounded/forever cycle throughput"),
        a.cycles_per_sec / b.cycles_per_sec.max(1e-9),
    );
    rep.notes.push(format!(
        "retention: {} and {} locks on distinct keys in {:.0} s (budget {} s, target {})",
        sides[0].done,
        sides[1].done,
        began.elapsed().as_secs_f64(),
        args.retention_budget_s,
        args.retention_locks
    ));
    drop(sides);
    drop(set_a);
    drop(set_b);
    let secs = args.retention_skew_s;
    println!("== retention: two gateways, one 60 s behind, fresh keys at once, W={workers} each, {secs} s");
    let (acquires, retries, errors) = skewed_pair(workers, secs, 60_000).await?;
    let note = format!(
        "stale retries with two gateways (one clock 60 s behind), fresh keys, W={workers} each: \
         {retries} retries over {acquires} grants ({:.3}%), {errors} errors",
        100.0 * retries as f64 / (acquires.max(1) as f64)
    );
    println!("  {note}");
    rep.notes.push(note);
    Ok(())
}
