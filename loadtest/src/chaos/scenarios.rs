//! The fault scenarios. Each one starts its own masters, relays and gateway
//! processes, runs fenced load, injects one fault mid-run, heals it, and
//! returns its row. Lock TTL is 1 s, `max_ttl` 2 s and `max_acquire_time`
//! 300 ms, so a quarantine lasts 2.3 s and "longer than the TTL" is seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::cluster::{Env, GatewaySpec, Metrics, Tuning};
use super::load::{Group, LoadKind, LoadOpts, Recorder};
use super::{measure, Class, Profile, Row};
use crate::relay::Direction;

const TTL_MS: u64 = 1_000;
const MAX_TTL: Duration = Duration::from_millis(2_000);

/// A scenario: its name and how to run it.
pub type Scenario = (
    &'static str,
    fn(Profile) -> BoxFuture<'static, anyhow::Result<Row>>,
);

/// Every scenario, in the order they run (gateway faults last).
pub fn all() -> Vec<Scenario> {
    vec![
        ("master-kill-empty", |p| {
            Box::pin(amnesia(p, Amnesia::GuardOn))
        }),
        ("master-kill-empty-stall", |p| {
            Box::pin(amnesia(p, Amnesia::Stall))
        }),
        ("master-kill-empty-guard-off", |p| {
            Box::pin(amnesia(p, Amnesia::GuardOff))
        }),
        ("master-kill-aof", |p| Box::pin(amnesia(p, Amnesia::Aof))),
        ("master-sigstop", |p| Box::pin(master_sigstop(p))),
        ("master-client-pause", |p| Box::pin(master_client_pause(p))),
        ("master-latency", |p| Box::pin(master_latency(p))),
        ("master-replies-held", |p| Box::pin(master_replies_held(p))),
        ("blackhole-2-of-5", |p| Box::pin(blackhole(p, 2))),
        ("blackhole-3-of-5", |p| Box::pin(blackhole(p, 3))),
        ("partition", |p| Box::pin(partition(p))),
        ("master-clock-jump", |p| Box::pin(master_clock_jump(p))),
        ("gateway-clock-skew", |p| Box::pin(gateway_clock_skew(p))),
        ("gateway-kill", |p| Box::pin(gateway_kill(p))),
        ("gateway-sigstop", |p| Box::pin(gateway_sigstop(p))),
        ("kinds-master-kill-empty", |p| {
            Box::pin(kinds_fault(p, KindsFault::KillEmpty))
        }),
        ("master-evicts", |p| Box::pin(eviction(p, true))),
        // No guard-off twin: with registers read as their bucket's
        // high-water mark when missing, an evicted register no longer lets
        // a low token pass (bounded state, docs/design.md *Token rule*), so
        // this scenario's shape cannot show a token violation without the
        // guard. The guard's negative controls are in proxy/tests/master_guard.rs.
    ]
}

/// Scenarios only the long profile runs (CI time matters); `--only` can
/// still pick them in a short run.
pub fn long_only() -> Vec<Scenario> {
    vec![
        ("kinds-master-sigstop", |p| {
            Box::pin(kinds_fault(p, KindsFault::Sigstop))
        }),
        ("kinds-master-latency", |p| {
            Box::pin(kinds_fault(p, KindsFault::Latency))
        }),
    ]
}

/// Phase lengths of a profile.
#[derive(Debug, Clone, Copy)]
struct Phases {
    pre: Duration,
    /// Length of a fault that has no length of its own; always > 2 × TTL.
    fault: Duration,
    post: Duration,
    workers: usize,
}

fn phases(p: Profile) -> Phases {
    match p {
        Profile::Short => Phases {
            pre: Duration::from_millis(1_000),
            fault: Duration::from_millis(2_200),
            post: Duration::from_millis(1_500),
            workers: 6,
        },
        Profile::Long => Phases {
            pre: Duration::from_secs(5),
            fault: Duration::from_secs(8),
            post: Duration::from_secs(8),
            workers: 12,
        },
    }
}

fn tuning() -> Tuning {
    Tuning {
        timeout_ms: 150,
        max_ttl_ms: u64::try_from(MAX_TTL.as_millis()).unwrap_or(2_000),
        max_acquire_ms: 300,
    }
}

async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

/// One scenario in progress.
struct Ctx {
    env: Env,
    rec: Arc<Recorder>,
    opts: LoadOpts,
    groups: Vec<Option<Group>>,
    t0: Instant,
    checks: Vec<(String, bool)>,
    notes: Vec<String>,
    /// One line per gateway from its `/metrics`, filled by `finish`.
    gateway_side: Vec<String>,
    recover: Option<Duration>,
}

// === impl Ctx ===

impl Ctx {
    async fn new(n: usize, aof: bool, specs: &[GatewaySpec], keys: u64) -> anyhow::Result<Ctx> {
        let env = Env::start(n, aof, specs, tuning()).await?;
        Ok(Ctx {
            env,
            rec: Arc::new(Recorder::default()),
            opts: LoadOpts {
                ttl_ms: TTL_MS,
                hold: Duration::from_millis(5),
                keys,
                key_base: 0,
                request_timeout: Duration::from_secs(2),
                run: rand::random::<u32>().into(),
                kind: LoadKind::Plain,
            },
            groups: Vec::new(),
            t0: Instant::now(),
            checks: Vec::new(),
            notes: Vec::new(),
            gateway_side: Vec::new(),
            recover: None,
        })
    }

    /// Starts workers on gateways `gws` (the first is their home, the rest
    /// their failover order).
    fn load(&mut self, gws: &[usize], workers: usize) -> usize {
        self.load_with(gws, workers, self.opts.clone())
    }

    fn load_with(&mut self, gws: &[usize], workers: usize, opts: LoadOpts) -> usize {
        let targets = gws.iter().map(|&g| (g, self.env.addr(g))).collect();
        self.groups
            .push(Some(Group::start(self.rec.clone(), targets, workers, opts)));
        self.groups.len() - 1
    }

    async fn stop(&mut self, i: usize) {
        if let Some(g) = self.groups.get_mut(i).and_then(Option::take) {
            g.stop().await;
        }
    }

    fn check(&mut self, what: impl Into<String>, ok: bool) {
        self.checks.push((what.into(), ok));
    }

    /// Waits (load running) until a grant arrived after `heal` and every
    /// live gateway reports every master up; records the time since `heal`.
    async fn recover_from(&mut self, heal: Instant, within: Duration) -> Option<Duration> {
        while heal.elapsed() < within {
            if self.rec.last_grant().is_some_and(|g| g > heal)
                && self
                    .env
                    .wait_all_up(Duration::from_millis(1))
                    .await
                    .is_some()
            {
                self.recover = Some(heal.elapsed());
                return self.recover;
            }
            sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Every live gateway's metrics, by gateway index (`None` when it is
    /// gone or does not answer).
    async fn scrape_all(&self) -> Vec<Option<Metrics>> {
        let mut out = Vec::new();
        for g in 0..self.env.gateways.len() {
            out.push(self.env.scrape(g).await.ok());
        }
        out
    }

    /// Stops the load, checks that no lock outlives its TTL, and measures.
    async fn finish(mut self, name: &'static str, class: Class) -> anyhow::Result<Row> {
        for i in 0..self.groups.len() {
            self.stop(i).await;
        }
        // What each gateway saw, so a failed request in the row has its
        // cause next to it (client errors only say NOQUORUM).
        for (g, m) in self.scrape_all().await.into_iter().enumerate() {
            let Some(m) = m else { continue };
            let mut parts = vec![format!(
                "fence retries {}",
                m.count("lockgate_fence_proposal_retries_total", &[])
            )];
            for (label, name) in [
                ("acquires", "lockgate_lock_operations_total"),
                ("master errors", "lockgate_master_errors_total"),
                ("reconnects", "lockgate_master_reconnects_total"),
            ] {
                let nz: Vec<String> = m
                    .nonzero(name)
                    .into_iter()
                    .filter(|s| label != "acquires" || s.starts_with("op acquire"))
                    .map(|s| s.replace("op acquire outcome ", ""))
                    .collect();
                if !nz.is_empty() {
                    parts.push(format!("{label} [{}]", nz.join(", ")));
                }
            }
            self.gateway_side
                .push(format!("gateway {g}: {}", parts.join("; ")));
        }
        let end = Instant::now();
        let stuck = self.env.stuck_locks(self.opts.run, MAX_TTL).await;
        let stuck_ok = stuck.is_empty();
        self.check(
            format!(
                "no lock key outlives its TTL once the fault is gone{}",
                if stuck_ok {
                    String::new()
                } else {
                    format!(": {}", stuck.join("; "))
                }
            ),
            stuck_ok,
        );
        let t = self.rec.take();
        let m = measure(&t, self.rec.resource.total(), self.t0, end);
        if t.late_replies > 0 || t.expired_on_arrival > 0 {
            self.notes.push(format!(
                "{} replies came later than the TTL ({} refused: nil for lost validity, or a \
                 grant whose lease was over on arrival); {} grants expired on arrival in all.",
                t.late_replies, t.late_refused, t.expired_on_arrival
            ));
        }
        let worst = t.failures.iter().map(|f| f.took).max().unwrap_or_default();
        let mut kinds = std::collections::BTreeMap::<&str, u64>::new();
        for f in &t.failures {
            *kinds.entry(f.kind.as_str()).or_default() += 1;
        }
        let failure_kinds = kinds
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        if !kinds.is_empty() {
            self.notes.push(format!(
                "The slowest failed request took {} ms.",
                worst.as_millis()
            ));
        }
        Ok(Row {
            name,
            class,
            measured: m,
            failure_kinds,
            recover: self.recover,
            checks: self.checks,
            notes: self.notes.join(" "),
            gateway_side: self.gateway_side,
            seconds: 0.0,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Amnesia {
    GuardOn,
    /// As `GuardOn`, and master 0 stops answering for 400 ms once master 1
    /// is quarantined: fewer than a quorum of records are readable, which
    /// once made the gateway take amnesia for a fresh deployment and seed
    /// master 1 at once (and is what load-starved masters look like).
    Stall,
    GuardOff,
    Aof,
}

/// A master SIGKILLed and restarted at once. One forgetful master alone can
/// never break tokens while the other two remember (every quorum includes a
/// master that refuses a low proposal), so the scenario first lets master 2
/// fall behind (its links are cut while gateway A grants on {0, 1}), then
/// kills master 1. The masters that vote next, {1, 2}, then remember nothing
/// of A's last grants; only the guard (or AOF) keeps tokens safe. Gateway B,
/// whose clock lags by 10 minutes and which last saw tokens before the cut,
/// proposes low tokens once the restarted master votes again.
async fn amnesia(p: Profile, mode: Amnesia) -> anyhow::Result<Row> {
    let ph = phases(p);
    let guard_off = mode == Amnesia::GuardOff;
    let a_spec = GatewaySpec {
        guard_off,
        clock_offset_ms: 0,
        ..GatewaySpec::default()
    };
    let b_spec = GatewaySpec {
        guard_off,
        clock_offset_ms: -600_000,
        ..GatewaySpec::default()
    };
    let mut cx = Ctx::new(3, mode == Amnesia::Aof, &[a_spec, b_spec], 4).await?;
    // Load on other keys through the whole scenario: the system is never idle.
    let background = LoadOpts {
        key_base: 1_000,
        keys: 16,
        ..cx.opts.clone()
    };
    cx.load_with(&[0], ph.workers / 2, background);
    let a = cx.load(&[0], ph.workers);
    let b = cx.load(&[1], ph.workers / 2);
    sleep(ph.pre).await;
    cx.stop(a).await;
    // B alone last: every register of the 4 keys is then at most what B saw.
    sleep(Duration::from_millis(300)).await;
    cx.stop(b).await;
    for r in cx.env.relays_to(2) {
        r.cut();
    }
    let a = cx.load(&[0], ph.workers);
    sleep(ph.fault / 2).await;
    cx.stop(a).await;
    for r in cx.env.relays_to(2) {
        r.heal();
    }
    let back = cx.env.wait_all_up(Duration::from_secs(5)).await;
    cx.check(
        format!(
            "master 2, cut and marked down, is back up on every gateway within 1.5 s of \
             healing (took {} ms)",
            back.map_or("never".into(), |d| d.as_millis().to_string())
        ),
        back.is_some_and(|d| d <= Duration::from_millis(1_500)),
    );
    let killed = Instant::now();
    cx.env.restart_master(1).await?;
    // Watch master 1 until it votes again.
    let mut quarantined = false;
    let mut up = None;
    let mut stalled = mode != Amnesia::Stall;
    while killed.elapsed() < Duration::from_secs(10) {
        if cx.env.master_is(0, 1, "quarantined").await
            || cx.env.master_is(1, 1, "quarantined").await
        {
            quarantined = true;
            if !stalled {
                stalled = true;
                cx.env.masters[0].stop();
                sleep(Duration::from_millis(400)).await;
                cx.env.masters[0].resume();
                cx.notes.push(format!(
                    "Master 0 stopped for 400 ms, {} ms after master 1's restart, while \
                     master 1 was quarantined: a bare quorum with one master gone.",
                    killed.elapsed().as_millis().saturating_sub(400)
                ));
            }
        }
        if cx.env.wait_all_up(Duration::from_millis(1)).await.is_some()
            && killed.elapsed() > Duration::from_millis(300)
        {
            up = Some(killed.elapsed());
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    cx.recover = up;
    match mode {
        Amnesia::GuardOn | Amnesia::Stall => {
            cx.check(
                "the restarted empty master is quarantined (does not vote)",
                quarantined,
            );
            cx.check(
                format!(
                    "then re-seeded and back in the quorum after max_ttl + max_acquire_time \
                     (2.3 s; took {} ms)",
                    up.map_or("never".into(), |d| d.as_millis().to_string())
                ),
                up.is_some_and(|d| d >= Duration::from_millis(2_000)),
            );
        }
        Amnesia::GuardOff => {
            cx.notes.push(
                "Guard OFF (test-only switch `--unsafe-test-disable-amnesia-guard`): the \
                 restarted master is re-seeded at once with floor 0."
                    .into(),
            );
            cx.check("the restarted master votes again", up.is_some());
        }
        Amnesia::Aof => {
            cx.check(
                "the master restarted from its AOF keeps its record: never quarantined",
                !quarantined,
            );
        }
    }
    // B first (its low proposals meet the restarted master), then A too.
    cx.load(&[1], ph.workers / 2);
    sleep(Duration::from_millis(300)).await;
    cx.load(&[0], ph.workers);
    sleep(ph.post).await;
    let class = if guard_off {
        Class::Negative
    } else {
        Class::Safety
    };
    let name = match mode {
        Amnesia::GuardOn => "master-kill-empty",
        Amnesia::Stall => "master-kill-empty-stall",
        Amnesia::GuardOff => "master-kill-empty-guard-off",
        Amnesia::Aof => "master-kill-aof",
    };
    cx.finish(name, class).await
}

/// One gateway, three masters, `fault` applied to master 0 for longer than
/// the TTL; service must continue and the master must come back.
async fn one_master_fault(
    p: Profile,
    name: &'static str,
    inject: impl FnOnce(&Env) -> anyhow::Result<()>,
    heal: impl FnOnce(&Env) -> anyhow::Result<()>,
) -> anyhow::Result<Row> {
    let ph = phases(p);
    let mut cx = Ctx::new(3, false, &[GatewaySpec::default()], 8).await?;
    cx.load(&[0], ph.workers);
    sleep(ph.pre).await;
    let start = Instant::now();
    inject(&cx.env)?;
    sleep(ph.fault).await;
    let during = cx.rec.grants();
    heal(&cx.env)?;
    let healed = Instant::now();
    let grants_during = cx
        .rec
        .last_grant()
        .is_some_and(|g| g > start + Duration::from_millis(300));
    cx.check(
        "service continues during the fault (grants with 2 of 3 masters)",
        grants_during && during > 0,
    );
    let r = cx.recover_from(healed, Duration::from_secs(5)).await;
    cx.check(
        format!(
            "the master is back up on its own within about a second of healing (took {} ms)",
            r.map_or("never".into(), |d| d.as_millis().to_string())
        ),
        r.is_some_and(|d| d <= Duration::from_millis(1_500)),
    );
    sleep(ph.post).await;
    cx.finish(name, Class::Safety).await
}

async fn master_sigstop(p: Profile) -> anyhow::Result<Row> {
    one_master_fault(
        p,
        "master-sigstop",
        |env| {
            env.masters[0].stop();
            Ok(())
        },
        |env| {
            env.masters[0].resume();
            Ok(())
        },
    )
    .await
}

fn client_pause(env: &Env, ms: u64) -> anyhow::Result<()> {
    let mut c =
        redis::Client::open(format!("redis://{}/", env.masters[0].address()))?.get_connection()?;
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(ms)
        .arg("ALL")
        .query::<()>(&mut c)?;
    Ok(())
}

async fn master_client_pause(p: Profile) -> anyhow::Result<Row> {
    let ms = u64::try_from(phases(p).fault.as_millis()).unwrap_or(2_200);
    one_master_fault(
        p,
        "master-client-pause",
        move |env| client_pause(env, ms + 5_000),
        |env| {
            let mut c = redis::Client::open(format!("redis://{}/", env.masters[0].address()))?
                .get_connection()?;
            redis::cmd("CLIENT").arg("UNPAUSE").query::<()>(&mut c)?;
            Ok(())
        },
    )
    .await
}

async fn master_latency(p: Profile) -> anyhow::Result<Row> {
    one_master_fault(
        p,
        "master-latency",
        |env| {
            // Around the 150 ms master deadline: some votes arrive, some not.
            for r in env.relays_to(0) {
                r.set_latency(Duration::from_millis(100), Duration::from_millis(100));
            }
            Ok(())
        },
        |env| {
            for r in env.relays_to(0) {
                r.heal();
            }
            Ok(())
        },
    )
    .await
}

/// Master 0's replies held (one direction of the link dropped): requests
/// arrive and execute, their answers do not.
async fn master_replies_held(p: Profile) -> anyhow::Result<Row> {
    one_master_fault(
        p,
        "master-replies-held",
        |env| {
            for r in env.relays_to(0) {
                r.drop_direction(Direction::Down, true);
            }
            Ok(())
        },
        |env| {
            for r in env.relays_to(0) {
                r.heal();
            }
            Ok(())
        },
    )
    .await
}

/// `k` of 5 masters blackholed (connections accepted, nothing answered).
async fn blackhole(p: Profile, k: usize) -> anyhow::Result<Row> {
    let ph = phases(p);
    let mut cx = Ctx::new(5, false, &[GatewaySpec::default()], 8).await?;
    cx.load(&[0], ph.workers);
    sleep(ph.pre).await;
    for m in 0..k {
        for r in cx.env.relays_to(m) {
            r.blackhole(true);
        }
    }
    let start = Instant::now();
    sleep(ph.fault).await;
    let healed = Instant::now();
    for m in 0..k {
        for r in cx.env.relays_to(m) {
            r.heal();
        }
    }
    let r = cx.recover_from(healed, Duration::from_secs(5)).await;
    sleep(ph.post).await;
    let name = if k == 2 {
        "blackhole-2-of-5"
    } else {
        "blackhole-3-of-5"
    };
    let snapshot = cx.rec.take();
    let granted_during = snapshot
        .history
        .iter()
        .filter(|g| g.requested >= start && g.granted < healed)
        .count();
    let failed_during: Vec<_> = snapshot
        .failures
        .iter()
        .filter(|f| f.at >= start && f.at < healed)
        .collect();
    let slowest = failed_during
        .iter()
        .map(|f| f.took)
        .max()
        .unwrap_or_default();
    if k == 2 {
        cx.check(
            format!("service continues: {granted_during} grants requested during the fault"),
            granted_during > 0,
        );
    } else {
        cx.check(
            format!("no grant at all while 3 of 5 are blackholed ({granted_during} grants)"),
            granted_during == 0,
        );
        cx.check(
            format!(
                "every request fails within its deadline: {} failed, slowest {} ms (master \
                 deadline 150 ms, bound 1000 ms)",
                failed_during.len(),
                slowest.as_millis()
            ),
            !failed_during.is_empty() && slowest <= Duration::from_millis(1_000),
        );
    }
    cx.check(
        format!(
            "the blackholed masters are back up within about a second of healing (took {} ms)",
            r.map_or("never".into(), |d| d.as_millis().to_string())
        ),
        r.is_some_and(|d| d <= Duration::from_millis(1_500)),
    );
    // Put the timeline back for the row.
    restore(&cx.rec, snapshot);
    cx.finish(name, Class::Safety).await
}

fn restore(rec: &Recorder, t: super::load::Timeline) {
    rec.put_back(t);
}

/// Gateway A reaches masters {0, 1, 2}, gateway B reaches {2, 3, 4}; both
/// under load on the same keys. Each side reaches exactly a quorum (3 of 5),
/// so both can grant, and every grant on either side needs master 2's vote:
/// master 2's lock key is what keeps the two sides mutually exclusive, and
/// its fence register what keeps their tokens ordered. The row proves both
/// sides really granted while cut off from each other.
async fn partition(p: Profile) -> anyhow::Result<Row> {
    let ph = phases(p);
    let specs = [GatewaySpec::default(), GatewaySpec::default()];
    let mut cx = Ctx::new(5, false, &specs, 8).await?;
    cx.load(&[0], ph.workers / 2);
    cx.load(&[1], ph.workers / 2);
    sleep(ph.pre).await;
    for m in [3, 4] {
        cx.env.relays[0][m].cut();
    }
    for m in [0, 1] {
        cx.env.relays[1][m].cut();
    }
    let start = Instant::now();
    sleep(ph.fault).await;
    // Both gateways must see the far side down, or a grant could still have
    // come from a link the cut had not reached yet.
    let a_cut = cx.env.master_is(0, 3, "down").await && cx.env.master_is(0, 4, "down").await;
    let b_cut = cx.env.master_is(1, 0, "down").await && cx.env.master_is(1, 1, "down").await;
    let healed = Instant::now();
    for row in &cx.env.relays {
        for r in row {
            r.heal();
        }
    }
    let r = cx.recover_from(healed, Duration::from_secs(5)).await;
    let t = cx.rec.take();
    let sides = t.grants_per_gateway(2, start, healed);
    restore(&cx.rec, t);
    let (a, b) = (sides[0], sides[1]);
    cx.check(
        format!(
            "the cut holds: gateway A sees masters 3 and 4 down ({a_cut}), gateway B sees \
             masters 0 and 1 down ({b_cut})"
        ),
        a_cut && b_cut,
    );
    cx.check(
        format!(
            "both sides granted during the partition: gateway A (masters 0, 1, 2) {a} grants, \
             gateway B (masters 2, 3, 4) {b} grants"
        ),
        a > 0 && b > 0,
    );
    cx.notes.push(format!(
        "Grants requested and received during the partition: side A {a}, side B {b}. Each \
         side reaches exactly 3 of 5 masters, so every one of these grants carries master \
         2's vote: the shared master keeps the sides mutually exclusive and their tokens \
         ordered."
    ));
    cx.check(
        format!(
            "cut masters are back up within about a second of healing (took {} ms)",
            r.map_or("never".into(), |d| d.as_millis().to_string())
        ),
        r.is_some_and(|d| d <= Duration::from_millis(1_500)),
    );
    sleep(ph.post).await;
    cx.finish("partition", Class::Safety).await
}

/// A master clock jump, emulated by expiring lock keys early on master 2
/// (`PEXPIRE` to 1 ms, repeatedly). It breaks mutual exclusion only when a
/// holder's quorum was exactly a majority that includes the jumping master,
/// so the gateways are partitioned as in `partition` (A: {0,1,2}, B:
/// {2,3,4}) and hold their locks long. Overlaps are expected; fencing must
/// still reject every stale access.
async fn master_clock_jump(p: Profile) -> anyhow::Result<Row> {
    let ph = phases(p);
    let specs = [GatewaySpec::default(), GatewaySpec::default()];
    let mut cx = Ctx::new(5, false, &specs, 2).await?;
    cx.opts.hold = Duration::from_millis(150);
    for m in [3, 4] {
        cx.env.relays[0][m].cut();
    }
    for m in [0, 1] {
        cx.env.relays[1][m].cut();
    }
    sleep(Duration::from_millis(500)).await;
    cx.load(&[0], ph.workers / 2);
    cx.load(&[1], ph.workers / 2);
    sleep(ph.pre).await;
    let victim = cx.env.masters[2].address();
    // The lock keys of this run on the masters (client keys live under the
    // gateway's client namespace, `lock::keys`).
    let pattern = lockgate::lock::keys::lock_key_glob(
        &lockgate::config::Config::default().lock.key_prefix,
        format!("chaos:{}:", cx.opts.run).as_bytes(),
    )
    .unwrap_or_default();
    let jumper = tokio::spawn(async move {
        let Ok(c) = redis::Client::open(format!("redis://{victim}/")) else {
            return 0u64;
        };
        let Ok(mut c) = c.get_multiplexed_async_connection().await else {
            return 0;
        };
        let mut expired = 0;
        let stop = Instant::now() + ph.fault;
        while Instant::now() < stop {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut c)
                .await
                .unwrap_or_default();
            for k in keys {
                let n: i64 = redis::cmd("PEXPIRE")
                    .arg(&k)
                    .arg(1)
                    .query_async(&mut c)
                    .await
                    .unwrap_or(0);
                expired += u64::try_from(n).unwrap_or(0);
            }
            sleep(Duration::from_millis(20)).await;
        }
        expired
    });
    let expired = jumper.await.unwrap_or(0);
    cx.notes.push(format!(
        "{expired} lock keys expired early on master 2 (the clock jump)."
    ));
    for row in &cx.env.relays {
        for r in row {
            r.heal();
        }
    }
    sleep(ph.post).await;
    let row = cx.finish("master-clock-jump", Class::Timing).await?;
    let mut row = row;
    row.checks.push((
        format!(
            "the checker shows the broken mutual exclusion ({} overlaps) and fencing \
             protecting the resource ({} stale accesses rejected, {} lost updates)",
            row.measured.overlaps, row.measured.stale_rejected, row.measured.lost_updates
        ),
        row.measured.overlaps > 0
            && row.measured.stale_rejected > 0
            && row.measured.lost_updates == 0,
    ));
    Ok(row)
}

/// Gateway clocks skewed by 5 minutes in both directions: gateway 0 honest,
/// gateway 1 ahead, gateway 2 behind, all under load on the same keys. The
/// design says skew costs retries, never safety: a proposal is
/// max(highest seen + 1, wall clock), so the behind gateway's clock-based
/// proposals land below registers the others raised and are refused as
/// stale, then retried above them; the ahead gateway's land above
/// everything. The checker runs over the merged history of all three, so a
/// token from either skewed side that repeated or went backwards against any
/// other gateway's grants would show.
async fn gateway_clock_skew(p: Profile) -> anyhow::Result<Row> {
    const SKEW_MS: i64 = 300_000;
    let ph = phases(p);
    let specs = [
        GatewaySpec::default(),
        GatewaySpec {
            clock_offset_ms: SKEW_MS,
            guard_off: false,
            ..GatewaySpec::default()
        },
        GatewaySpec {
            clock_offset_ms: -SKEW_MS,
            guard_off: false,
            ..GatewaySpec::default()
        },
    ];
    let mut cx = Ctx::new(3, false, &specs, 4).await?;
    let start = Instant::now();
    for g in 0..3 {
        cx.load(&[g], (ph.workers / 2).max(2));
    }
    sleep(ph.pre + ph.fault).await;
    let t = cx.rec.take();
    let per = t.grants_per_gateway(3, start, Instant::now());
    restore(&cx.rec, t);
    let scraped = cx.scrape_all().await;
    let retries: Vec<Option<u64>> = scraped
        .iter()
        .map(|m| {
            m.as_ref()
                .map(|m| m.count("lockgate_fence_proposal_retries_total", &[]))
        })
        .collect();
    let show = |r: Option<u64>| r.map_or("unreadable".into(), |n| n.to_string());
    cx.check(
        format!(
            "every gateway grants: honest {}, 5 min ahead {}, 5 min behind {}",
            per[0], per[1], per[2]
        ),
        per.iter().all(|&n| n > 0),
    );
    cx.check(
        format!(
            "the gateway 5 minutes behind retried stale proposals \
             (lockgate_fence_proposal_retries_total = {})",
            show(retries[2])
        ),
        retries[2].is_some_and(|n| n > 0),
    );
    cx.notes.push(format!(
        "Gateway 0 honest, gateway 1 5 minutes ahead, gateway 2 5 minutes behind (test-only \
         `--test-clock-offset-ms`), all on the same 4 keys. Fence proposal retries \
         (`lockgate_fence_proposal_retries_total` scraped from each gateway): honest {}, ahead \
         {}, behind {}. Tokens from both skewed directions are checked against each other and \
         the honest gateway's in one merged history.",
        show(retries[0]),
        show(retries[1]),
        show(retries[2])
    ));
    cx.finish("gateway-clock-skew", Class::Safety).await
}

/// Gateway 0 SIGKILLed mid-acquires; its clients fail over to gateway 1.
async fn gateway_kill(p: Profile) -> anyhow::Result<Row> {
    let ph = phases(p);
    let specs = [GatewaySpec::default(), GatewaySpec::default()];
    let mut cx = Ctx::new(3, false, &specs, 8).await?;
    cx.load(&[0, 1], ph.workers);
    cx.load(&[1, 0], ph.workers / 2);
    sleep(ph.pre).await;
    let killed = Instant::now();
    if let Some(g) = cx.env.gateways[0].as_mut() {
        g.kill().await;
    }
    cx.env.gateways[0] = None;
    let r = cx.recover_from(killed, Duration::from_secs(5)).await;
    sleep(ph.fault).await;
    let t = cx.rec.take();
    let after = t.grants.iter().filter(|g| g.at > killed).count();
    cx.check(
        format!(
            "clients of the killed gateway reconnect to the other one and continue ({after} \
             grants after the kill; first after {} ms)",
            r.map_or("never".into(), |d| d.as_millis().to_string())
        ),
        after > 0 && r.is_some(),
    );
    restore(&cx.rec, t);
    cx.finish("gateway-kill", Class::Safety).await
}

/// One acquire of a burst: when it was sent, what came back, when.
struct BurstReply {
    key: u64,
    requested: Instant,
    arrived: Instant,
    /// `None` for nil or an error reply; `Some((owner, token, validity))`
    /// for a grant.
    grant: Option<(Vec<u8>, u64, Duration)>,
    /// An error reply (e.g. NOQUORUM: the master links timed out during
    /// the pause), also a refusal.
    error: Option<String>,
}

/// Fires `n` acquires on fresh keys `base..base + n` at once, each on its
/// own connection (opened beforehand, so the burst is only the requests),
/// and returns their tasks. A reply that is not nil or a grant is an error.
async fn burst(
    addr: &str,
    run: u64,
    base: u64,
    n: u64,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Result<BurstReply>>>> {
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(10)));
    let mut conns = Vec::new();
    for _ in 0..n {
        conns.push(
            redis::Client::open(format!("redis://{addr}/"))?
                .get_multiplexed_async_connection_with_config(&cfg)
                .await?,
        );
    }
    Ok(conns
        .into_iter()
        .zip(base..)
        .map(|(mut c, key)| {
            tokio::spawn(async move {
                let requested = Instant::now();
                let reply = redis::cmd("LOCK.ACQUIRE")
                    .arg(format!("chaos:{run}:{key}"))
                    .arg(TTL_MS)
                    .query_async::<redis::Value>(&mut c)
                    .await;
                let arrived = Instant::now();
                let v = match reply {
                    Ok(v) => v,
                    // A client timeout is not an answer: the check needs one.
                    Err(e) if e.is_timeout() || e.is_io_error() => return Err(e.into()),
                    Err(e) => {
                        return Ok(BurstReply {
                            key,
                            requested,
                            arrived,
                            grant: None,
                            error: Some(e.code().unwrap_or("error").to_string()),
                        })
                    }
                };
                let grant = match v {
                    redis::Value::Nil => None,
                    redis::Value::Array(items) => match items.as_slice() {
                        [redis::Value::BulkString(o), redis::Value::Int(t), redis::Value::Int(v)] => {
                            Some((
                                o.clone(),
                                u64::try_from(*t).unwrap_or(0),
                                Duration::from_millis(u64::try_from(*v).unwrap_or(0)),
                            ))
                        }
                        other => anyhow::bail!("unexpected acquire reply {other:?}"),
                    },
                    other => anyhow::bail!("unexpected acquire reply {other:?}"),
                };
                Ok(BurstReply {
                    key,
                    requested,
                    arrived,
                    grant,
                    error: None,
                })
            })
        })
        .collect())
}

/// Gateway 0 SIGSTOPped for 2.5 × TTL with acquires in flight, then
/// resumed; its clients wait for it (5 s client deadline) while gateway 1's
/// clients take the same keys. The stop comes right after a burst of
/// acquires on fresh keys, each on its own connection, so that many are in
/// flight inside the gateway (or in its socket buffers) when it freezes:
/// after the resume, each must come back nil (the gateway's monotonic clock
/// saw the validity go) or as a grant whose lease, counted from the request,
/// is already over, and whose token the resource then rejects as stale once
/// a later holder has used the key.
async fn gateway_sigstop(p: Profile) -> anyhow::Result<Row> {
    const BURST: u64 = 32;
    const BURST_BASE: u64 = 100;
    const BURST_LINK_DELAY: Duration = Duration::from_millis(40);
    let ph = phases(p);
    let specs = [GatewaySpec::default(), GatewaySpec::default()];
    let mut cx = Ctx::new(3, false, &specs, 4).await?;
    let patient = LoadOpts {
        request_timeout: Duration::from_secs(5),
        ..cx.opts.clone()
    };
    cx.load_with(&[0], ph.workers, patient);
    cx.load(&[1], ph.workers / 2);
    sleep(ph.pre).await;
    // The burst must still be inside the gateway when it freezes. On a
    // loaded machine the SIGSTOP can land after a fast gateway has already
    // answered, so its master links get a round trip (well inside the
    // master timeout) that keeps the burst in flight for the stop.
    for r in &cx.env.relays[0] {
        r.set_latency(BURST_LINK_DELAY, Duration::ZERO);
    }
    let in_flight = burst(&cx.env.addr(0), cx.opts.run, BURST_BASE, BURST).await?;
    if let Some(g) = cx.env.gateways[0].as_ref() {
        g.stop();
    }
    let stopped = Instant::now();
    sleep(Duration::from_millis(TTL_MS * 5 / 2)).await;
    for r in &cx.env.relays[0] {
        r.set_latency(Duration::ZERO, Duration::ZERO);
    }
    if let Some(g) = cx.env.gateways[0].as_ref() {
        g.resume();
    }
    let resumed = Instant::now();
    let r = cx.recover_from(resumed, Duration::from_secs(5)).await;
    cx.check(
        format!(
            "the resumed gateway serves again (took {} ms)",
            r.map_or("never".into(), |d| d.as_millis().to_string())
        ),
        r.is_some(),
    );
    let mut replies = Vec::new();
    for h in in_flight {
        replies.push(h.await??);
    }
    let ttl = Duration::from_millis(TTL_MS);
    // Late: still unanswered when the gateway froze, answered after the TTL.
    let late: Vec<&BurstReply> = replies
        .iter()
        .filter(|b| b.arrived > stopped && b.arrived.duration_since(b.requested) > ttl)
        .collect();
    let nil = late
        .iter()
        .filter(|b| b.grant.is_none() && b.error.is_none())
        .count();
    let errors = late.iter().filter(|b| b.error.is_some()).count();
    let mut over = 0;
    let mut fenced = 0;
    let mut usable = 0;
    let mut c1 = redis::Client::open(format!("redis://{}/", cx.env.addr(1)))?
        .get_multiplexed_async_connection()
        .await?;
    for b in &late {
        let Some((_, token, validity)) = &b.grant else {
            continue;
        };
        if b.requested + *validity > b.arrived {
            usable += 1;
            continue;
        }
        over += 1;
        // A later holder through gateway 1 uses the key; the late token must
        // then be refused by the resource.
        let give_up = Instant::now() + Duration::from_secs(3);
        while Instant::now() < give_up {
            let v = redis::cmd("LOCK.ACQUIRE")
                .arg(format!("chaos:{}:{}", cx.opts.run, b.key))
                .arg(TTL_MS)
                .query_async::<redis::Value>(&mut c1)
                .await;
            if let Ok(redis::Value::Array(items)) = v {
                if let [redis::Value::BulkString(o), redis::Value::Int(t), _] = items.as_slice() {
                    let newer = u64::try_from(*t).unwrap_or(0);
                    let _ = cx.rec.resource.read_fenced(b.key, newer);
                    let _: redis::RedisResult<i64> = redis::cmd("LOCK.RELEASE")
                        .arg(format!("chaos:{}:{}", cx.opts.run, b.key))
                        .arg(o)
                        .query_async(&mut c1)
                        .await;
                    if cx.rec.resource.read_fenced(b.key, *token).is_none() {
                        fenced += 1;
                    }
                    break;
                }
            }
            sleep(Duration::from_millis(50)).await;
        }
    }
    cx.notes.push(format!(
        "Burst of {BURST} acquires on fresh keys just before SIGSTOP: {} answered after the \
         pause and later than the TTL ({nil} nil for lost validity, {errors} error replies, {over} grants whose lease \
         was over on arrival, {fenced} of those then rejected as stale by the resource, \
         {usable} usable), {} answered before the stop took hold.",
        late.len(),
        replies.len() - late.len()
    ));
    cx.check(
        format!(
            "several acquires were in flight at the SIGSTOP: {} of {BURST} burst replies came \
             after the pause (need at least 8)",
            late.len()
        ),
        late.len() >= 8,
    );
    cx.check(
        format!(
            "every burst reply after the pause was refused: {nil} nil (validity lost), {errors} \
             errors, {over} grants with the lease over on arrival (all {fenced} fenced as stale), {usable} \
             usable"
        ),
        usable == 0 && fenced == over && nil + errors + over == late.len(),
    );
    sleep(ph.post).await;
    let t = cx.rec.take();
    let late = t.late_replies;
    let refused = t.late_refused;
    cx.check(
        format!(
            "every workload reply that came after the pause was refused: {refused} of {late} \
             late replies were nil (validity lost) or grants whose lease was already over"
        ),
        late == refused,
    );
    restore(&cx.rec, t);
    cx.finish("gateway-sigstop", Class::Safety).await
}

/// The master fault a kinds scenario injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KindsFault {
    /// Master 1 of 5 SIGKILLed and restarted empty: quarantined by the
    /// amnesia guard, then re-seeded.
    KillEmpty,
    /// Master 0 of 3 SIGSTOPped for longer than the TTL.
    Sigstop,
    /// 100 ms each way on every link to master 0 of 3, around the 150 ms
    /// master deadline.
    Latency,
}

/// The read-write and semaphore lock kinds under one master fault: a group each of
/// reentrant holds, keepalive locks held past the TTL, read-write locks (30 %
/// writers) and 2-permit semaphores, each on its own keys, all through one
/// gateway. The row passes only when every kind kept granting during the
/// fault and the token, overlap and kinds checkers report nothing.
async fn kinds_fault(p: Profile, fault: KindsFault) -> anyhow::Result<Row> {
    let ph = phases(p);
    let masters = if fault == KindsFault::KillEmpty { 5 } else { 3 };
    let mut cx = Ctx::new(masters, false, &[GatewaySpec::default()], 4).await?;
    let workers = (ph.workers / 3).max(2);
    let short = Duration::from_millis(5);
    let groups = [
        (LoadKind::Reentrant, 0, 4, short),
        // Held 1.5 × TTL: only the gateway's renewals keep it.
        (
            LoadKind::Keepalive,
            100,
            4,
            Duration::from_millis(TTL_MS * 3 / 2),
        ),
        (LoadKind::Rw { write_percent: 30 }, 200, 2, short),
        (LoadKind::Sem { permits: 2 }, 300, 2, short),
    ];
    for (kind, key_base, keys, hold) in groups {
        let opts = LoadOpts {
            kind,
            key_base,
            keys,
            hold,
            ..cx.opts.clone()
        };
        cx.load_with(&[0], workers, opts);
    }
    sleep(ph.pre).await;
    let start = Instant::now();
    match fault {
        KindsFault::KillEmpty => cx.env.restart_master(1).await?,
        KindsFault::Sigstop => cx.env.masters[0].stop(),
        KindsFault::Latency => {
            for r in cx.env.relays_to(0) {
                r.set_latency(Duration::from_millis(100), Duration::from_millis(100));
            }
        }
    }
    let mut quarantined = false;
    while start.elapsed() < ph.fault {
        if fault == KindsFault::KillEmpty && !quarantined {
            quarantined = cx.env.master_is(0, 1, "quarantined").await;
        }
        sleep(Duration::from_millis(50)).await;
    }
    match fault {
        KindsFault::KillEmpty => {}
        KindsFault::Sigstop => cx.env.masters[0].resume(),
        KindsFault::Latency => {
            for r in cx.env.relays_to(0) {
                r.heal();
            }
        }
    }
    let healed = Instant::now();
    let t = cx.rec.take();
    let mut during = std::collections::BTreeMap::<&str, u64>::new();
    for g in &t.grants {
        if g.requested >= start && g.at <= healed {
            *during.entry(g.kind).or_default() += 1;
        }
    }
    restore(&cx.rec, t);
    let kinds = ["reentrant", "keepalive", "rwlock", "sem"];
    cx.check(
        format!(
            "every kind is granted during the fault: {}",
            kinds
                .iter()
                .map(|k| format!("{k} {}", during.get(k).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        kinds.iter().all(|k| during.get(k).is_some_and(|&n| n > 0)),
    );
    if fault == KindsFault::KillEmpty {
        cx.check(
            "the restarted empty master is quarantined (does not vote)",
            quarantined,
        );
    }
    let r = cx.recover_from(healed, Duration::from_secs(5)).await;
    cx.check(
        format!(
            "every master is back up within 5 s of healing (took {} ms)",
            r.map_or("never".into(), |d| d.as_millis().to_string())
        ),
        r.is_some(),
    );
    sleep(ph.post).await;
    let name = match fault {
        KindsFault::KillEmpty => "kinds-master-kill-empty",
        KindsFault::Sigstop => "kinds-master-sigstop",
        KindsFault::Latency => "kinds-master-latency",
    };
    cx.finish(name, Class::Safety).await
}

/// Whether master key `name` belongs to one of lock keys `0..keys` of run
/// `run` (its lock key, fence register or any structure beside it),
/// whatever the gateway's key layout: the client key appears verbatim,
/// followed by something other than a digit.
fn of_scenario_keys(name: &str, run: u64, keys: u64) -> bool {
    (0..keys).any(|k| {
        let needle = format!("chaos:{run}:{k}");
        name.match_indices(&needle).any(|(i, _)| {
            !name[i + needle.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
    })
}

/// The keys of master `addr`, and its `used_memory` and `evicted_keys`.
async fn master_keys(addr: &str) -> anyhow::Result<(Vec<String>, i64, i64)> {
    let mut c = redis::Client::open(format!("redis://{addr}/"))?
        .get_multiplexed_async_connection()
        .await?;
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut c).await?;
    let info: String = redis::cmd("INFO").query_async(&mut c).await?;
    let field = |f: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(f))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0)
    };
    Ok((keys, field("used_memory:"), field("evicted_keys:")))
}

/// `TOUCH`es every key of master `addr` but the junk and the scenario's
/// locks, so that those are the idlest. The metadata record is read with
/// `EXISTS`, which leaves its LRU clock alone: untouched, it is the first
/// key `allkeys-lru` evicts, the amnesia guard then takes the master out,
/// and the negative control would show nothing of the eviction guard.
async fn keep_warm(addr: &str, run: u64, keys: u64) -> anyhow::Result<()> {
    let (all, _, _) = master_keys(addr).await?;
    let warm: Vec<&String> = all
        .iter()
        .filter(|k| !k.starts_with("junk:") && !of_scenario_keys(k, run, keys))
        .collect();
    if warm.is_empty() {
        return Ok(());
    }
    let mut c = redis::Client::open(format!("redis://{addr}/"))?
        .get_multiplexed_async_connection()
        .await?;
    redis::cmd("TOUCH")
        .arg(&warm)
        .query_async::<i64>(&mut c)
        .await?;
    Ok(())
}

/// Junk the way a cache sharing the master would write it: `n` values of
/// `size` bytes under `junk:{from}..`.
async fn write_junk(addr: &str, from: u64, n: u64, size: usize) -> anyhow::Result<()> {
    let mut c = redis::Client::open(format!("redis://{addr}/"))?
        .get_multiplexed_async_connection()
        .await?;
    let value = vec![b'j'; size];
    let mut pipe = redis::pipe();
    for i in from..from + n {
        pipe.cmd("SET")
            .arg(format!("junk:{i}"))
            .arg(&value)
            .ignore();
    }
    pipe.query_async::<()>(&mut c).await?;
    Ok(())
}

/// Master 1 runs `maxmemory-policy allkeys-lru` with a small `maxmemory`
/// (set at runtime, then its links reset, so each gateway reads the policy
/// as it reconnects), and junk written beside the locks makes it evict
/// them. As in `master-kill-empty`, master 2 first falls behind (cut while
/// gateway A locks), then master 1 evicts the fence registers of the
/// scenario's keys, and gateway B, whose clock lags 10 minutes, proposes
/// low tokens on {1, 2}.
///
/// With the eviction guard on, master 1 never votes: no grant while master
/// 2 is cut (master 0 alone is no quorum), and zero token violations.
/// `guard = false` (`--unsafe-test-disable-eviction-guard`, amnesia guard
/// on) lets it vote; before registers fell back to their bucket's mark,
/// B's low tokens then passed on the evicted registers. It is not in the
/// suite any more (see the list above) but kept runnable for that check.
async fn eviction(p: Profile, guard: bool) -> anyhow::Result<Row> {
    const KEYS: u64 = 4;
    let ph = phases(p);
    let a_spec = GatewaySpec {
        eviction_guard_off: !guard,
        ..GatewaySpec::default()
    };
    let b_spec = GatewaySpec {
        clock_offset_ms: -600_000,
        eviction_guard_off: !guard,
        ..GatewaySpec::default()
    };
    let mut cx = Ctx::new(3, false, &[a_spec, b_spec], KEYS).await?;
    let run = cx.opts.run;
    let m1 = cx.env.masters[1].address();
    let (_, used, _) = master_keys(&m1).await?;
    // Room for the locks and a little more: junk past it is evicted.
    let budget: i64 = 2 * 1024 * 1024;
    {
        let mut c = redis::Client::open(format!("redis://{m1}/"))?
            .get_multiplexed_async_connection()
            .await?;
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg("allkeys-lru")
            .query_async::<()>(&mut c)
            .await?;
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(used + budget)
            .query_async::<()>(&mut c)
            .await?;
    }
    for r in cx.env.relays_to(1) {
        r.reset();
    }
    let want = if guard { "evicting" } else { "up" };
    let seen = Instant::now();
    let mut both = false;
    while seen.elapsed() < Duration::from_secs(5) {
        both = cx.env.master_is(0, 1, want).await && cx.env.master_is(1, 1, want).await;
        if both {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    cx.check(
        format!(
            "both gateways read master 1's allkeys-lru on reconnect and show it {want:?} \
             (took {} ms)",
            seen.elapsed().as_millis()
        ),
        both,
    );
    let background = LoadOpts {
        key_base: 1_000,
        keys: 16,
        ..cx.opts.clone()
    };
    cx.load_with(&[0], ph.workers / 2, background);
    let a = cx.load(&[0], ph.workers);
    let b = cx.load(&[1], ph.workers / 2);
    sleep(ph.pre).await;
    cx.stop(a).await;
    sleep(Duration::from_millis(300)).await;
    cx.stop(b).await;
    for r in cx.env.relays_to(2) {
        r.cut();
    }
    let cut = Instant::now();
    let a = cx.load(&[0], ph.workers);
    sleep(ph.fault / 2).await;
    cx.stop(a).await;
    let voted = cx
        .rec
        .last_grant()
        .is_some_and(|g| g > cut + Duration::from_millis(300));
    if guard {
        cx.check(
            "no grant while master 2 is cut: master 1 (evicting) never votes, master 0 alone \
             is no quorum",
            !voted,
        );
    } else {
        cx.check(
            "grants go on while master 2 is cut: master 1 votes although it evicts",
            voted,
        );
    }
    // Evict the scenario keys' registers on master 1, least recently used
    // first: let them (and the first junk) age past Redis's 1 s LRU clock,
    // so the metadata record, read by every script, is never the idlest.
    sleep(Duration::from_millis(1_100)).await;
    let (before, _, evicted0) = master_keys(&m1).await?;
    let old: Vec<String> = before
        .into_iter()
        .filter(|k| of_scenario_keys(k, run, KEYS))
        .collect();
    let size = 1024;
    let fill = u64::try_from(budget).unwrap_or(0) / 1024 * 9 / 10;
    write_junk(&m1, 0, fill, size).await?;
    sleep(Duration::from_millis(1_100)).await;
    let mut next = fill;
    let mut left = old.len();
    while next < fill * 4 {
        keep_warm(&m1, run, KEYS).await?;
        write_junk(&m1, next, 128, size).await?;
        next += 128;
        let (now, _, _) = master_keys(&m1).await?;
        left = old.iter().filter(|k| now.contains(k)).count();
        if left == 0 {
            break;
        }
    }
    let (_, _, evicted1) = master_keys(&m1).await?;
    cx.notes.push(format!(
        "Master 1: maxmemory {} bytes over its start, allkeys-lru; {} junk keys of 1 KiB \
         written beside the locks, {} keys evicted, {} of the {} keys of the scenario's locks \
         left.",
        budget,
        next,
        evicted1 - evicted0,
        left,
        old.len()
    ));
    if !guard {
        cx.notes.push(
            "Eviction guard OFF (test-only switch `--unsafe-test-disable-eviction-guard`); the \
             amnesia guard is on."
                .into(),
        );
    }
    if old.is_empty() {
        // With the guard on, master 1 never took a write of these locks.
        cx.check(
            format!(
                "master 1 evicted keys ({}) and holds no key of the scenario's locks",
                evicted1 - evicted0
            ),
            evicted1 > evicted0,
        );
    } else {
        cx.check(
            format!(
                "master 1 evicted keys ({}), {} of the {} keys of the scenario's locks \
                 (fence registers) among them",
                evicted1 - evicted0,
                old.len() - left,
                old.len()
            ),
            evicted1 > evicted0 && left < old.len(),
        );
    }
    for r in cx.env.relays_to(2) {
        r.heal();
    }
    let healed = Instant::now();
    while healed.elapsed() < Duration::from_secs(5)
        && !(cx.env.master_is(0, 2, "up").await && cx.env.master_is(1, 2, "up").await)
    {
        sleep(Duration::from_millis(20)).await;
    }
    cx.recover = Some(healed.elapsed());
    // B first (its low proposals meet master 1's evicted registers), then A.
    cx.load(&[1], ph.workers / 2);
    sleep(Duration::from_millis(300)).await;
    cx.load(&[0], ph.workers);
    sleep(ph.post).await;
    if guard {
        let still =
            cx.env.master_is(0, 1, "evicting").await && cx.env.master_is(1, 1, "evicting").await;
        cx.check(
            "master 1 is still evicting, and without a vote, at the end",
            still,
        );
    }
    let (name, class) = if guard {
        ("master-evicts", Class::Safety)
    } else {
        ("master-evicts-guard-off", Class::Negative)
    };
    cx.finish(name, class).await
}
