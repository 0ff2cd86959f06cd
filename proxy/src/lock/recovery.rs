//! The amnesia guard: masters that forgot their data must not vote until it
//! is safe again (docs/design.md, *Amnesia guard*).
//!
//! Each master carries a metadata record (`<prefix>meta`: incarnation id,
//! fence floor, high-water mark). Every script refuses to vote on a master
//! whose record is missing, so safety never depends on this task noticing in
//! time; this task only brings such masters back:
//!
//! - **Amnesia** (at least `q` reachable masters still carry the record): the
//!   forgetful master is quarantined for `max_ttl + max_acquire_time`, counted
//!   from when this gateway first saw it without its record (never earlier
//!   than its restart, so the wait is conservative). By then every lock it
//!   forgot has expired everywhere. It is then re-seeded with
//!   `floor = max(high-water marks of the q or more healthy masters)`. Any
//!   grant's quorum intersects those masters, so the floor is at least every
//!   token ever granted, and the master's registers can only refuse lower
//!   proposals.
//! - **Fresh deployment or total loss** (fewer than `q` carry the record):
//!   after the same wait (at once with `bootstrap = immediate`, which dev mode
//!   and tests use for masters they just started), every reachable master
//!   without a record is initialised with
//!   `floor = max(any high-water mark read, now in µs)`. The time floor keeps
//!   tokens above those issued before a total loss as long as clocks are sane.
//!   A master this gateway has seen with a record is seeded here only when
//!   every master answered (a real total loss) and its own quarantine is
//!   over: fewer than `q` records because some masters are merely
//!   unreachable is amnesia plus an outage, and waits for a quorum.
//! - **Late starters under `bootstrap = immediate`**: a master this gateway
//!   has never seen with a record is new by the operator's word, even when
//!   the others are already initialised (masters started together rarely
//!   answer together), so it is initialised at once the same way instead of
//!   being quarantined. Once seen with a record, losing it is amnesia.
//!
//! Seeding uses a script that creates the record only if it is still
//! missing, so gateways racing to seed the same master cannot lower a floor.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::Engine;
use crate::config::Bootstrap;
use crate::master::{MasterState, Recovery, Value};

/// How often the record of every reachable master is checked. Restarts are
/// also caught sooner: a script that finds no record wakes this task.
const CHECK_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    Present { hwm: u64 },
    Missing,
    Unknown,
}

/// Runs the amnesia guard until `shutdown` is cancelled.
pub async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    let n = engine.masters().len();
    let mut first_missing: Vec<Option<Instant>> = vec![None; n];
    let mut fresh_since: Option<Instant> = None;
    let mut ever_recorded = vec![false; n];
    loop {
        check_once(
            &engine,
            &mut first_missing,
            &mut fresh_since,
            &mut ever_recorded,
        )
        .await;
        let margin = engine.voting() as i64 - engine.quorum() as i64;
        engine.metrics().quorum_margin.set(margin);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = engine.amnesia_seen.notified() => {}
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

async fn read_record(engine: &Engine, i: usize) -> Record {
    let Some(m) = engine.masters().get(i) else {
        return Record::Unknown;
    };
    if m.state() == MasterState::Down {
        return Record::Unknown;
    }
    let deadline = Instant::now() + engine.timeout().max(Duration::from_millis(100));
    let meta = engine.meta_key().clone();
    match m.call(&[b"HMGET", &meta, b"inc", b"hwm"], deadline).await {
        Ok(Value::Array(items)) => match items.as_slice() {
            [Value::Nil, _] => Record::Missing,
            [Value::Bulk(_), hwm] => {
                let hwm = match hwm {
                    Value::Bulk(b) => std::str::from_utf8(b)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(0),
                    _ => 0,
                };
                Record::Present { hwm }
            }
            _ => Record::Unknown,
        },
        _ => Record::Unknown,
    }
}

async fn check_once(
    engine: &Engine,
    first_missing: &mut [Option<Instant>],
    fresh_since: &mut Option<Instant>,
    ever_recorded: &mut [bool],
) {
    let n = engine.masters().len();
    let q = engine.quorum();
    let mut records = Vec::with_capacity(n);
    for i in 0..n {
        records.push(read_record(engine, i).await);
    }
    let now = Instant::now();
    let cfg = engine.config();
    let quarantine = cfg.max_ttl + cfg.max_acquire_time;
    let guard_on = engine.amnesia_guard.load(Ordering::SeqCst);

    let mut present = 0;
    let mut max_hwm = 0u64;
    // Masters new by the operator's word: see the module docs.
    let late: Vec<bool> = (0..n)
        .map(|i| {
            cfg.bootstrap == Bootstrap::Immediate
                && records[i] == Record::Missing
                && !ever_recorded[i]
        })
        .collect();
    for (i, rec) in records.iter().enumerate() {
        let m = &engine.masters()[i];
        if let Record::Present { .. } = rec {
            ever_recorded[i] = true;
        }
        // An unanswered check (a busy master) keeps the last verdict; only a
        // missing record or a lost link withdraws it.
        match rec {
            Record::Present { .. } => engine.record_seen[i].store(true, Ordering::Relaxed),
            Record::Missing => engine.record_seen[i].store(false, Ordering::Relaxed),
            Record::Unknown if m.state() == MasterState::Down => {
                engine.record_seen[i].store(false, Ordering::Relaxed)
            }
            Record::Unknown => {}
        }
        match rec {
            Record::Present { hwm } => {
                present += 1;
                max_hwm = max_hwm.max(*hwm);
                first_missing[i] = None;
                if m.recovery() != Recovery::Healthy {
                    info!(master = m.name(), "master has its metadata record again");
                    m.set_recovery(Recovery::Healthy);
                }
            }
            Record::Missing => {
                if first_missing[i].is_none() {
                    first_missing[i] = Some(now);
                }
                if m.recovery() != Recovery::Quarantined && !late[i] {
                    warn!(
                        master = m.name(),
                        quarantine_ms = u64::try_from(quarantine.as_millis()).unwrap_or(u64::MAX),
                        "master has no metadata record (new, or restarted empty): not voting \
                         until it is initialised"
                    );
                    m.set_recovery(Recovery::Quarantined);
                }
            }
            Record::Unknown => {}
        }
    }

    let missing: Vec<usize> = (0..n).filter(|&i| records[i] == Record::Missing).collect();
    if missing.is_empty() {
        *fresh_since = None;
        return;
    }

    if present >= q {
        *fresh_since = None;
        let floor = max_hwm.max(engine.proposer().now_us());
        for &i in missing.iter().filter(|&&i| late[i]) {
            if seed(engine, i, floor).await {
                ever_recorded[i] = true;
                engine.metrics().deployment_inits.inc();
                info!(
                    master = engine.masters()[i].name(),
                    floor, "initialised a master that started after the others"
                );
            }
        }
        for &i in missing.iter().filter(|&&i| !late[i]) {
            let due = first_missing[i].is_some_and(|t| now >= t + quarantine);
            if !due && guard_on {
                continue;
            }
            // The negative control (guard off) seeds at once with no floor,
            // which is exactly the unsafe behaviour the guard prevents.
            let floor = if guard_on { max_hwm } else { 0 };
            if seed(engine, i, floor).await {
                engine.metrics().master_reseeds.inc();
                info!(
                    master = engine.masters()[i].name(),
                    floor, "master re-seeded after quarantine"
                );
            }
        }
    } else {
        let since = *fresh_since.get_or_insert(now);
        let waited = now >= since + quarantine;
        // Fewer than q answered with a record. That is a fresh deployment
        // or a total loss only if every master answered; when some did not
        // (stopped, cut, starved), a master this gateway saw with a record
        // and now finds empty is plain amnesia: seeding it from the few
        // reachable high-water marks and this gateway's clock could put its
        // floor below tokens a quorum granted without the reachable ones.
        // It waits for a quorum of records (the branch above) instead.
        // `bootstrap = immediate` skips the wait only for masters never seen
        // with a record, as its contract says.
        let all_answered = records.iter().all(|r| *r != Record::Unknown);
        let floor = max_hwm.max(engine.proposer().now_us());
        for &i in &missing {
            let due = if ever_recorded[i] && guard_on {
                all_answered && waited && first_missing[i].is_some_and(|t| now >= t + quarantine)
            } else {
                // New masters, and the negative control (guard off), which
                // keeps the old, unsafe shortcut on purpose.
                cfg.bootstrap == Bootstrap::Immediate || waited
            };
            if !due {
                continue;
            }
            if seed(engine, i, floor).await {
                ever_recorded[i] = true;
                engine.metrics().deployment_inits.inc();
                warn!(
                    master = engine.masters()[i].name(),
                    floor,
                    with_record = present,
                    quorum = q,
                    "initialised master: fewer than a quorum carried a metadata record \
                     (new deployment or total loss)"
                );
            }
        }
    }
}

/// Creates the record on master `i` if it is still missing.
async fn seed(engine: &Engine, i: usize, floor: u64) -> bool {
    let Some(m) = engine.masters().get(i) else {
        return false;
    };
    let incarnation: [u8; 8] = rand::random();
    let inc = Bytes::from(hex::encode(incarnation));
    let floor_s = Bytes::from(floor.to_string());
    let deadline = Instant::now() + engine.timeout().max(Duration::from_millis(200));
    let meta = engine.meta_key().clone();
    match m
        .eval(
            &engine.scripts().meta_init,
            &[&meta],
            &[&inc, &floor_s],
            deadline,
        )
        .await
    {
        Ok(Value::Int(_)) => {
            engine.proposer().observe(floor);
            engine.record_seen[i].store(true, Ordering::Relaxed);
            m.set_recovery(Recovery::Healthy);
            true
        }
        Ok(other) => {
            error!(master = m.name(), reply = ?other, "unexpected reply to metadata seed");
            false
        }
        Err(e) => {
            warn!(master = m.name(), cause = %e, "could not seed master metadata; will retry");
            false
        }
    }
}
