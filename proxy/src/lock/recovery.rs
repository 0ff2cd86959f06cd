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
//!
//! # What else the record says
//! Besides the floor and the mark, the record carries:
//!
//! - `id`, the **master id**, random, given when the record is created. A
//!   master re-seeded after amnesia takes back the id the recorded set
//!   still names for it when it is the only one missing.
//! - `set`, the **master set** of the deployment: the sorted ids of its
//!   masters, written once every configured master has an id. A master
//!   whose recorded set is not this gateway's (one of this gateway's
//!   masters is not in it, or it has another size) does not vote for this
//!   gateway: two gateways with different lists could otherwise each find a
//!   quorum that the other's does not meet. Only [`adopt`], the operator's
//!   master-set change, rewrites it.
//! - `layout`, the [`LAYOUT_VERSION`] of the gateway's key names. A record
//!   of another version (a record without one is version 1) does not vote:
//!   two layouts on one master set would be two locks for one name.
//!   [`adopt`] is also the upgrade step.
//! - `replid`, the `master_replid` of the server when the record was
//!   written or last confirmed. A server that was promoted from replica
//!   since then (see [`crate::master::replication`]) may lack its old
//!   master's last writes: it is quarantined and re-seeded exactly like
//!   amnesia, with the record kept but its floor raised and `replid`
//!   renewed. A master restarting from its own AOF or RDB shows no second
//!   replication history: its record is confirmed with the new `replid` and
//!   it votes at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::Engine;
use crate::config::Bootstrap;
use crate::master::replication::Replication;
use crate::master::{MasterState, Recovery, Value};

/// The version of the gateway's key layout, written into every metadata
/// record; decided with the layout itself in `lock::keys`.
pub use super::keys::LAYOUT_VERSION;

/// How often the record of every reachable master is checked. Restarts are
/// also caught sooner: a script that finds no record wakes this task.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// A metadata record as read from a master.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    hwm: u64,
    floor: u64,
    id: Option<String>,
    /// 1 when the record has no `layout` field (written before versions).
    layout: u32,
    /// Sorted master ids; empty while no set is recorded.
    set: Vec<String>,
    /// Empty when the record names none.
    replid: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Record {
    Present(Meta, Replication),
    Missing(Option<Replication>),
    Unknown,
}

impl Record {
    fn is_missing(&self) -> bool {
        matches!(self, Record::Missing(_))
    }
}

/// What a present record means for the vote.
enum Verdict {
    Healthy,
    Promoted(String),
    Layout(String),
    Set(String),
}

/// Per-master memory of the recovery task.
struct Memory {
    first_missing: Vec<Option<Instant>>,
    first_promoted: Vec<Option<Instant>>,
    fresh_since: Option<Instant>,
    ever_recorded: Vec<bool>,
}

/// Runs the amnesia guard until `shutdown` is cancelled.
pub async fn run(engine: Arc<Engine>, shutdown: CancellationToken) {
    let n = engine.masters().len();
    let mut mem = Memory {
        first_missing: vec![None; n],
        first_promoted: vec![None; n],
        fresh_since: None,
        ever_recorded: vec![false; n],
    };
    loop {
        check_once(&engine, &mut mem).await;
        let margin = engine.voting() as i64 - engine.quorum() as i64;
        engine.metrics().quorum_margin.set(margin);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = engine.amnesia_seen.notified() => {}
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn number(v: &Value) -> u64 {
    text(v).and_then(|s| s.parse().ok()).unwrap_or(0)
}

async fn read_replication(engine: &Engine, i: usize) -> Option<Replication> {
    let m = engine.masters().get(i)?;
    let deadline = Instant::now() + engine.timeout().max(Duration::from_millis(100));
    let reply = m.call(&[b"INFO", b"replication"], deadline).await.ok()?;
    Replication::from_info(&reply)
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
    let fields: [&[u8]; 9] = [
        b"HMGET", &meta, b"inc", b"hwm", b"floor", b"id", b"layout", b"set", b"replid",
    ];
    let items = match m.call(&fields, deadline).await {
        Ok(Value::Array(items)) if items.len() == 7 => items,
        _ => return Record::Unknown,
    };
    // A record of layout 1 sits under another name, which a gateway of that
    // layout may still be using: such a master never votes here, and its
    // marks count towards the floor `adopt` writes.
    let v1 = super::keys::v1_meta_key(&engine.config().key_prefix);
    let old = match m
        .call(&[b"HMGET", &v1, b"inc", b"hwm", b"floor"], deadline)
        .await
    {
        Ok(Value::Array(old)) if old.len() == 3 => old,
        _ => return Record::Unknown,
    };
    let v1_marks = (old[0] != Value::Nil).then(|| number(&old[1]).max(number(&old[2])));
    let repl = read_replication(engine, i).await;
    if items[0] == Value::Nil && v1_marks.is_none() {
        return Record::Missing(repl);
    }
    // Judging a present record needs the server's replication history.
    let Some(repl) = repl else {
        return Record::Unknown;
    };
    if items[0] == Value::Nil {
        let marks = v1_marks.unwrap_or(0);
        return Record::Present(
            Meta {
                hwm: marks,
                floor: marks,
                id: None,
                layout: 1,
                set: Vec::new(),
                replid: String::new(),
            },
            repl,
        );
    }
    let set: Vec<String> = text(&items[5])
        .map(|s| {
            let mut v: Vec<String> = s
                .split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    let layout = match (&items[4], v1_marks) {
        (_, Some(_)) | (Value::Nil, None) => 1,
        (v, None) => text(v).and_then(|s| s.parse().ok()).unwrap_or(0),
    };
    let old_marks = v1_marks.unwrap_or(0);
    Record::Present(
        Meta {
            hwm: number(&items[1]).max(old_marks),
            floor: number(&items[2]).max(old_marks),
            id: text(&items[3]).filter(|s| !s.is_empty()),
            layout,
            set,
            replid: text(&items[6]).unwrap_or_default(),
        },
        repl,
    )
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The master set `meta` records against this gateway's masters: `None`
/// when they agree (or no set is recorded yet), else the difference.
fn set_difference(engine: &Engine, i: usize, meta: &Meta, records: &[Record]) -> Option<String> {
    if meta.set.is_empty() {
        return None;
    }
    let masters = engine.masters();
    let n = masters.len();
    let here = masters.get(i).map(|m| m.name()).unwrap_or("?");
    let mut diffs = Vec::new();
    let mut known = Vec::new();
    for (j, r) in records.iter().enumerate() {
        if let Record::Present(
            Meta {
                id: Some(id),
                layout: LAYOUT_VERSION,
                ..
            },
            _,
        ) = r
        {
            known.push(id.clone());
            if !meta.set.contains(id) {
                let addr = masters.get(j).map(|m| m.name()).unwrap_or("?");
                diffs.push(format!(
                    "this gateway lists {addr} (master id {}), which the set recorded on {here} \
                     does not name",
                    short(id)
                ));
            }
        }
    }
    let all_known = known.len() == n;
    for id in &meta.set {
        if all_known && !known.contains(id) {
            diffs.push(format!(
                "the set recorded on {here} names master id {}, which this gateway does not list",
                short(id)
            ));
        }
    }
    if meta.set.len() != n {
        diffs.push(format!(
            "the set recorded on {here} has {} masters, this gateway lists {n}",
            meta.set.len()
        ));
    }
    if diffs.is_empty() {
        return None;
    }
    let recorded: Vec<&str> = meta.set.iter().map(|s| short(s)).collect();
    Some(format!(
        "master set differs: {}; recorded set [{}]; if this gateway's list is the intended \
         one, run `lockgate masters adopt` (see README, What the masters must be)",
        diffs.join("; "),
        recorded.join(",")
    ))
}

fn judge(
    engine: &Engine,
    i: usize,
    meta: &Meta,
    repl: &Replication,
    records: &[Record],
    guard_on: bool,
) -> Verdict {
    let name = engine.masters().get(i).map(|m| m.name()).unwrap_or("?");
    if meta.layout != LAYOUT_VERSION {
        return Verdict::Layout(format!(
            "the record on {name} is for key layout version {}, this gateway uses layout \
             version {LAYOUT_VERSION}: two layouts on one master set would be two locks for \
             one name; stop every gateway of the other version, then run `lockgate masters \
             adopt` (see README, What the masters must be)",
            meta.layout
        ));
    }
    // The negative control (guard off) votes on a promoted replica at once.
    if guard_on && repl.promoted_since(&meta.replid) {
        return Verdict::Promoted(format!(
            "{name} is a replica promoted to master (master_replid2 {}…) since its record was \
             written: it may lack its old master's last writes; quarantined, then re-seeded",
            short(repl.replid2.as_deref().unwrap_or(""))
        ));
    }
    if guard_on {
        if let Some(diff) = set_difference(engine, i, meta, records) {
            return Verdict::Set(diff);
        }
    }
    Verdict::Healthy
}

async fn check_once(engine: &Engine, mem: &mut Memory) {
    let n = engine.masters().len();
    let mut records = Vec::with_capacity(n);
    for i in 0..n {
        records.push(read_record(engine, i).await);
    }
    let cx = Check::new(engine, mem, &records);
    let survey = survey(engine, mem, &records, &cx).await;
    if survey.present >= engine.quorum() {
        reseed_promoted_due(engine, mem, &survey).await;
    }
    form_set(engine, &records).await;
    let missing: Vec<usize> = (0..n).filter(|&i| records[i].is_missing()).collect();
    if missing.is_empty() {
        mem.fresh_since = None;
        return;
    }
    if survey.present >= engine.quorum() {
        mem.fresh_since = None;
        seed_beside_a_quorum(engine, mem, &records, &missing, &cx, survey).await;
    } else {
        seed_without_a_quorum(engine, mem, &records, &missing, &cx, &survey).await;
    }
}

/// What one check holds fixed while it judges every master.
struct Check {
    now: Instant,
    quarantine: Duration,
    guard_on: bool,
    /// Per master: new by the operator's word (see the module docs).
    late: Vec<bool>,
}

impl Check {
    fn new(engine: &Engine, mem: &Memory, records: &[Record]) -> Check {
        let cfg = engine.config();
        Check {
            now: Instant::now(),
            quarantine: cfg.max_ttl + cfg.max_acquire_time,
            guard_on: engine.amnesia_guard.load(Ordering::SeqCst),
            late: (0..records.len())
                .map(|i| {
                    cfg.bootstrap == Bootstrap::Immediate
                        && records[i].is_missing()
                        && !mem.ever_recorded[i]
                })
                .collect(),
        }
    }

    fn quarantine_ms(&self) -> u64 {
        u64::try_from(self.quarantine.as_millis()).unwrap_or(u64::MAX)
    }
}

/// What the records of one check showed.
struct Survey {
    /// Masters whose record is healthy.
    present: usize,
    /// The highest mark or floor any record carries.
    max_hwm: u64,
    /// The master set the healthy masters record.
    recorded_set: Option<Vec<String>>,
    /// Promoted replicas whose quarantine is over: (master, the replication
    /// id their record names, the one they have now).
    promoted_due: Vec<(usize, String, String)>,
}

/// Judges every master's record and sets its recovery state; an
/// unanswered check (a busy master) keeps the last verdict, and only a
/// missing record or a lost link withdraws it.
async fn survey(engine: &Engine, mem: &mut Memory, records: &[Record], cx: &Check) -> Survey {
    let mut s = Survey {
        present: 0,
        max_hwm: 0,
        recorded_set: None,
        promoted_due: Vec::new(),
    };
    for (i, rec) in records.iter().enumerate() {
        let m = &engine.masters()[i];
        match rec {
            Record::Present(..) => engine.record_seen[i].store(true, Ordering::Relaxed),
            Record::Missing(_) => engine.record_seen[i].store(false, Ordering::Relaxed),
            Record::Unknown if m.state() == MasterState::Down => {
                engine.record_seen[i].store(false, Ordering::Relaxed)
            }
            Record::Unknown => {}
        }
        match rec {
            Record::Present(meta, repl) => {
                mem.ever_recorded[i] = true;
                mem.first_missing[i] = None;
                m.set_master_id(meta.id.clone());
                // Every mark is at most a granted-or-refused proposal, so a
                // higher floor from any of them is only more conservative.
                s.max_hwm = s.max_hwm.max(meta.hwm).max(meta.floor);
                let verdict = judge(engine, i, meta, repl, records, cx.guard_on);
                if !matches!(verdict, Verdict::Promoted(_)) {
                    mem.first_promoted[i] = None;
                }
                apply_verdict(engine, mem, i, (meta, repl), verdict, cx, &mut s).await;
            }
            Record::Missing(_) => {
                m.set_master_id(None);
                if mem.first_missing[i].is_none() {
                    mem.first_missing[i] = Some(cx.now);
                }
                if m.recovery() != Recovery::Quarantined && !cx.late[i] {
                    warn!(
                        master = m.name(),
                        quarantine_ms = cx.quarantine_ms(),
                        "master has no metadata record (new, or restarted empty): not voting \
                         until it is initialised"
                    );
                    m.set_recovery_detail(Recovery::Quarantined, None);
                }
            }
            Record::Unknown => {}
        }
    }
    s
}

/// Sets master `i`'s recovery state from the verdict on its record.
async fn apply_verdict(
    engine: &Engine,
    mem: &mut Memory,
    i: usize,
    (meta, repl): (&Meta, &Replication),
    verdict: Verdict,
    cx: &Check,
    s: &mut Survey,
) {
    let m = &engine.masters()[i];
    match verdict {
        Verdict::Healthy => {
            s.present += 1;
            if !meta.set.is_empty() {
                s.recorded_set.get_or_insert_with(|| meta.set.clone());
            }
            if m.recovery() != Recovery::Healthy {
                info!(master = m.name(), "master has its metadata record again");
                m.set_recovery_detail(Recovery::Healthy, None);
            }
            if meta.replid != repl.replid && repl.master {
                // Restarted from its own data (or a record written before
                // `replid`): confirm it. A replica listed as a master
                // refuses writes anyway, and is left alone.
                restamp(engine, i, &repl.replid).await;
            }
        }
        Verdict::Promoted(detail) => {
            let since = *mem.first_promoted[i].get_or_insert(cx.now);
            // The connection may already hold it out, with words of its
            // own: give the guard's.
            let changed = m.guard_detail().as_deref() != Some(detail.as_str());
            if m.recovery() != Recovery::Promoted || changed {
                warn!(
                    master = m.name(),
                    quarantine_ms = cx.quarantine_ms(),
                    "{detail}"
                );
                m.set_recovery_detail(Recovery::Promoted, Some(detail));
            }
            if cx.now >= since + cx.quarantine {
                s.promoted_due
                    .push((i, meta.replid.clone(), repl.replid.clone()));
            }
        }
        Verdict::Layout(detail) => {
            if m.recovery() != Recovery::LayoutMismatch {
                error!(
                    master = m.name(),
                    record_layout = meta.layout,
                    gateway_layout = LAYOUT_VERSION,
                    "master does not vote: {detail}"
                );
                m.set_recovery_detail(Recovery::LayoutMismatch, Some(detail));
            }
        }
        Verdict::Set(detail) => {
            let changed = m.guard_detail().as_deref() != Some(detail.as_str());
            if m.recovery() != Recovery::SetMismatch || changed {
                error!(master = m.name(), "master does not vote: {detail}");
                m.set_recovery_detail(Recovery::SetMismatch, Some(detail));
            }
        }
    }
}

/// Promoted replicas whose quarantine is over: re-seeds their floor from a
/// quorum of healthy masters, as for amnesia.
async fn reseed_promoted_due(engine: &Engine, mem: &mut Memory, s: &Survey) {
    for (i, expected, replid) in &s.promoted_due {
        if reseed_promoted(engine, *i, s.max_hwm, expected, replid).await {
            engine.metrics().master_reseeds.inc();
            mem.first_promoted[*i] = None;
            info!(
                master = engine.masters()[*i].name(),
                floor = s.max_hwm,
                "promoted replica re-seeded after quarantine"
            );
        }
    }
}

/// The replication id a master without a record reports.
fn replid_of(records: &[Record], i: usize) -> String {
    match &records[i] {
        Record::Missing(Some(r)) => r.replid.clone(),
        _ => String::new(),
    }
}

/// With a quorum of healthy records: initialises late starters at once and
/// re-seeds forgetful masters after their quarantine, from the quorum's
/// marks (docs/design.md, *Re-seeding the fence floor*).
async fn seed_beside_a_quorum(
    engine: &Engine,
    mem: &mut Memory,
    records: &[Record],
    missing: &[usize],
    cx: &Check,
    s: Survey,
) {
    let floor = s.max_hwm.max(engine.proposer().now_us());
    for &i in missing.iter().filter(|&&i| cx.late[i]) {
        if seed(engine, i, floor, &new_id(), "", &replid_of(records, i)).await {
            mem.ever_recorded[i] = true;
            engine.metrics().deployment_inits.inc();
            info!(
                master = engine.masters()[i].name(),
                floor, "initialised a master that started after the others"
            );
        }
    }
    // A master re-seeded after amnesia takes back its id when it is the
    // only master the recorded set is missing.
    let set = s.recorded_set.unwrap_or_default();
    let known: Vec<&String> = records
        .iter()
        .filter_map(|r| match r {
            Record::Present(meta, _) => meta.id.as_ref(),
            _ => None,
        })
        .collect();
    let leftover: Vec<&String> = set.iter().filter(|id| !known.contains(id)).collect();
    let inherit = (leftover.len() == 1 && missing.len() == 1).then(|| leftover[0].clone());
    for &i in missing.iter().filter(|&&i| !cx.late[i]) {
        let due = mem.first_missing[i].is_some_and(|t| cx.now >= t + cx.quarantine);
        if !due && cx.guard_on {
            continue;
        }
        // The negative control (guard off) seeds at once with no floor,
        // which is exactly the unsafe behaviour the guard prevents.
        let floor = if cx.guard_on { s.max_hwm } else { 0 };
        let id = inherit.clone().unwrap_or_else(new_id);
        let set_s = if inherit.is_some() {
            set.join(",")
        } else {
            String::new()
        };
        if seed(engine, i, floor, &id, &set_s, &replid_of(records, i)).await {
            engine.metrics().master_reseeds.inc();
            info!(
                master = engine.masters()[i].name(),
                floor, "master re-seeded after quarantine"
            );
        }
    }
}

/// Fewer than a quorum carry a record: a fresh deployment or a total loss,
/// but only if every master answered (docs/design.md, *Fresh deployments
/// and total loss*).
async fn seed_without_a_quorum(
    engine: &Engine,
    mem: &mut Memory,
    records: &[Record],
    missing: &[usize],
    cx: &Check,
    s: &Survey,
) {
    let since = *mem.fresh_since.get_or_insert(cx.now);
    let waited = cx.now >= since + cx.quarantine;
    // When some masters did not answer (stopped, cut, starved), a master
    // this gateway saw with a record and now finds empty is plain amnesia:
    // seeding it from the few reachable high-water marks and this gateway's
    // clock could put its floor below tokens a quorum granted without the
    // reachable ones. It waits for a quorum of records instead.
    // `bootstrap = immediate` skips the wait only for masters never seen
    // with a record, as its contract says.
    let all_answered = records.iter().all(|r| *r != Record::Unknown);
    let floor = s.max_hwm.max(engine.proposer().now_us());
    let bootstrap = engine.config().bootstrap;
    for &i in missing {
        let due = if mem.ever_recorded[i] && cx.guard_on {
            all_answered
                && waited
                && mem.first_missing[i].is_some_and(|t| cx.now >= t + cx.quarantine)
        } else {
            // New masters, and the negative control (guard off), which keeps
            // the old, unsafe shortcut on purpose.
            bootstrap == Bootstrap::Immediate || waited
        };
        if !due {
            continue;
        }
        if seed(engine, i, floor, &new_id(), "", &replid_of(records, i)).await {
            mem.ever_recorded[i] = true;
            engine.metrics().deployment_inits.inc();
            warn!(
                master = engine.masters()[i].name(),
                floor,
                with_record = s.present,
                quorum = engine.quorum(),
                "initialised master: fewer than a quorum carried a metadata record \
                 (new deployment or total loss)"
            );
        }
    }
}

fn new_id() -> String {
    let id: [u8; 8] = rand::random();
    hex::encode(id)
}

/// Records the master set once every configured master carries a record of
/// this layout with an id, on the masters that record none yet, provided
/// every set already recorded is this gateway's.
async fn form_set(engine: &Engine, records: &[Record]) {
    let mut ids = Vec::with_capacity(records.len());
    let mut empty = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let Record::Present(meta, _) = r else { return };
        let Some(id) = &meta.id else { return };
        if meta.layout != LAYOUT_VERSION {
            return;
        }
        ids.push(id.clone());
        if meta.set.is_empty() {
            empty.push(i);
        }
    }
    ids.sort();
    ids.dedup();
    if empty.is_empty() || ids.len() != records.len() {
        return;
    }
    let agreed = records.iter().all(|r| match r {
        Record::Present(meta, _) => meta.set.is_empty() || meta.set == ids,
        _ => false,
    });
    if !agreed {
        return;
    }
    let set = Bytes::from(ids.join(","));
    let meta = engine.meta_key().clone();
    for i in empty {
        let Some(m) = engine.masters().get(i) else {
            continue;
        };
        let deadline = Instant::now() + engine.timeout().max(Duration::from_millis(200));
        // HSET only if the set is still empty: another gateway may have
        // written it meanwhile.
        let _ = m
            .eval(
                &engine.scripts().meta_init,
                &[&meta],
                &[b"setifempty", b"", b"0", b"", b"", &set, b""],
                deadline,
            )
            .await;
    }
    info!(set = %String::from_utf8_lossy(&set), "recorded the master set on every master");
}

/// Confirms the record of a master that restarted from its own data.
async fn restamp(engine: &Engine, i: usize, replid: &str) {
    let Some(m) = engine.masters().get(i) else {
        return;
    };
    let deadline = Instant::now() + engine.timeout().max(Duration::from_millis(200));
    let meta = engine.meta_key().clone();
    let _ = m
        .call(&[b"HSET", &meta, b"replid", replid.as_bytes()], deadline)
        .await;
}

/// Creates the record on master `i` if it is still missing.
async fn seed(engine: &Engine, i: usize, floor: u64, id: &str, set: &str, replid: &str) -> bool {
    write_record(engine, i, b"init", floor, id, set, replid, "").await
}

/// Replaces the record of a promoted replica if it still names the old
/// history `expected`.
async fn reseed_promoted(
    engine: &Engine,
    i: usize,
    floor: u64,
    expected: &str,
    replid: &str,
) -> bool {
    write_record(engine, i, b"reseed", floor, "", "", replid, expected).await
}

#[allow(clippy::too_many_arguments)]
async fn write_record(
    engine: &Engine,
    i: usize,
    mode: &[u8],
    floor: u64,
    id: &str,
    set: &str,
    replid: &str,
    expected: &str,
) -> bool {
    let Some(m) = engine.masters().get(i) else {
        return false;
    };
    let incarnation: [u8; 8] = rand::random();
    let inc = Bytes::from(hex::encode(incarnation));
    let floor_s = Bytes::from(floor.to_string());
    let layout = Bytes::from(LAYOUT_VERSION.to_string());
    let deadline = Instant::now() + engine.timeout().max(Duration::from_millis(200));
    let meta = engine.meta_key().clone();
    let v1 = super::keys::v1_meta_key(&engine.config().key_prefix);
    match m
        .eval(
            &engine.scripts().meta_init,
            &[&meta, &v1],
            &[
                mode,
                &inc,
                &floor_s,
                id.as_bytes(),
                &layout,
                set.as_bytes(),
                replid.as_bytes(),
                expected.as_bytes(),
            ],
            deadline,
        )
        .await
    {
        Ok(Value::Int(_)) => {
            engine.proposer().observe(floor);
            engine.record_seen[i].store(true, Ordering::Relaxed);
            if !id.is_empty() {
                m.set_master_id(Some(id.to_string()));
            }
            m.set_recovery_detail(Recovery::Healthy, None);
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

/// The operator's master-set change and layout upgrade: records this
/// gateway's masters as the deployment's master set, and this gateway's
/// [`LAYOUT_VERSION`], on every one of them.
///
/// Every configured master must answer with a record and none may be a
/// duplicate or a promoted replica still in quarantine; otherwise nothing
/// is written. The floor of every master is raised to the highest mark and
/// floor of all of them, so registers under a new key layout start above
/// every token granted under the old one.
///
/// # Errors
/// What kept the set from being adopted, naming the masters.
pub async fn adopt(engine: &Engine) -> Result<String, String> {
    let n = engine.masters().len();
    let mut records = Vec::with_capacity(n);
    for i in 0..n {
        records.push(read_record(engine, i).await);
    }
    let mut problems = Vec::new();
    let mut floor = 0u64;
    let mut ids = Vec::with_capacity(n);
    // Written only where adopt creates the record (an upgrade from layout 1).
    let mut replids = Vec::with_capacity(n);
    for (i, r) in records.iter().enumerate() {
        let m = &engine.masters()[i];
        if m.state() == MasterState::Duplicate {
            problems.push(format!(
                "{} reaches the same server as another master",
                m.name()
            ));
            continue;
        }
        match r {
            Record::Unknown => problems.push(format!("{} did not answer", m.name())),
            Record::Missing(_) => problems.push(format!(
                "{} has no metadata record yet (new, or amnesia): wait until it is initialised",
                m.name()
            )),
            Record::Present(meta, repl) => {
                if repl.promoted_since(&meta.replid) {
                    problems.push(format!(
                        "{} is a promoted replica still in quarantine",
                        m.name()
                    ));
                }
                floor = floor.max(meta.hwm).max(meta.floor);
                ids.push(meta.id.clone().unwrap_or_else(new_id));
                replids.push(repl.replid.clone());
            }
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "master set not adopted, nothing written: {}; every configured master must \
             answer with its record",
            problems.join("; ")
        ));
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != n {
        return Err(
            "master set not adopted: two masters carry the same master id (a \
                    replica listed beside its master?); list each server once"
                .to_string(),
        );
    }
    let set = sorted.join(",");
    let mut failed = Vec::new();
    for (i, (id, replid)) in ids.iter().zip(&replids).enumerate() {
        if !write_record(engine, i, b"adopt", floor, id, &set, replid, "").await {
            failed.push(engine.masters()[i].name().to_string());
        }
    }
    engine.amnesia_seen.notify_one();
    if !failed.is_empty() {
        return Err(format!(
            "master set written on some masters only (not on {}); run adopt again",
            failed.join(", ")
        ));
    }
    info!(set = %set, layout = LAYOUT_VERSION, floor, "adopted the master set");
    Ok(format!(
        "adopted master set [{set}] (layout version {LAYOUT_VERSION}) on {n} masters, floor {floor}"
    ))
}
