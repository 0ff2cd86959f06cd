//! The metadata record, end to end with real `redis-server` masters: each
//! master's id, a replica promoted with `REPLICAOF NO ONE` (no vote until
//! quarantined and re-seeded, like an empty restart), a master restarting
//! from its own AOF (votes at once), a record of another key layout (no
//! vote), and two gateways whose master lists differ by one master (the
//! recorded set refuses the one that does not match, until the operator
//! adopts the new set), and a failover that lost a write (the promoted
//! replica lacks a held lock: no second holder with the guard, two without
//! it). Each check has its negative control.

mod support;

use std::time::Duration;

use lockgate::config::Config;
use lockgate::dev::LocalRedis;
use lockgate::lock::recovery::{adopt, LAYOUT_VERSION};
use lockgate::master::MasterState;
use lockgate::server::Gateway;
use support::{raw_roundtrip, start_gateway, test_config, wait_until, Cluster, RawConn};

async fn acquire(gw: &Gateway, key: &str) -> String {
    let mut c = RawConn::connect(gw.local_addr()).await;
    c.cmd_str(&["LOCK.ACQUIRE", key, "1000"]).await
}

fn granted(reply: &str) -> bool {
    reply.starts_with("*3\r\n")
}

async fn admin_get(gw: &Gateway, path: &str) -> String {
    let addr = gw.admin_addr().expect("admin enabled");
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    String::from_utf8_lossy(&raw_roundtrip(addr, req.as_bytes()).await).into_owned()
}

fn state_metric(gw: &Gateway, master: &str, state: &str) -> bool {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&gw.metrics().registry.gather())
        .expect("metrics encode");
    text.contains(&format!(
        "lockgate_master_state{{master=\"{master}\",state=\"{state}\"}} 1"
    ))
}

async fn direct(addr: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{addr}"))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to master")
}

async fn record_field(addr: &str, meta: &[u8], field: &str) -> Option<String> {
    let mut c = direct(addr).await;
    redis::cmd("HGET")
        .arg(meta)
        .arg(field)
        .query_async(&mut c)
        .await
        .expect("HGET")
}

async fn replid(addr: &str) -> String {
    let mut c = direct(addr).await;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut c)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("master_replid:"))
        .map(|s| s.trim().to_string())
        .expect("master_replid")
}

/// A real replica of the master at `addr`, started at once (no diskless
/// sync delay).
async fn replica_of(addr: &str, port: &str) -> LocalRedis {
    let mut c = direct(addr).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("repl-diskless-sync-delay")
        .arg("0")
        .query_async(&mut c)
        .await
        .expect("CONFIG SET");
    LocalRedis::start_with_args(&["--replicaof", "127.0.0.1", port])
        .expect("redis-server must be installed")
}

/// Quarantine of `max_ttl + max_acquire_time` = 3 s.
fn short_quarantine(cfg: &mut Config) {
    cfg.lock.max_ttl = Duration::from_secs(2);
    cfg.lock.max_acquire_time = Duration::from_secs(1);
}

async fn wait_state(gw: &Gateway, i: usize, s: MasterState, within: Duration) -> bool {
    let m = gw.engine().masters()[i].clone();
    wait_until(within, || m.state() == s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_master_gets_an_id_and_the_set_is_recorded() {
    let cluster = Cluster::start(3);
    let cfg = test_config(&cluster);
    let meta = lockgate::lock::keys::meta_key(&cfg.lock.key_prefix);
    let gw = start_gateway(cfg).await;
    let masters = gw.engine().masters().to_vec();
    assert!(
        wait_until(Duration::from_secs(5), || masters
            .iter()
            .all(|m| m.master_id().is_some()))
        .await
    );
    let mut ids: Vec<String> = masters.iter().filter_map(|m| m.master_id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct ids: {ids:?}");
    let want = ids.join(",");
    for m in &cluster.masters {
        let a = m.address();
        let mut set = None;
        for _ in 0..40 {
            set = record_field(&a, &meta, "set").await;
            if set.as_deref() == Some(want.as_str()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(set.as_deref(), Some(want.as_str()), "set on {a}");
        assert_eq!(
            record_field(&a, &meta, "layout").await,
            Some(LAYOUT_VERSION.to_string())
        );
        assert_eq!(
            record_field(&a, &meta, "replid").await,
            Some(replid(&a).await)
        );
    }
    gw.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_replica_gets_no_vote_until_reseeded() {
    let mut cluster = Cluster::start(3);
    let mut cfg_a = test_config(&cluster);
    short_quarantine(&mut cfg_a);
    let meta = lockgate::lock::keys::meta_key(&cfg_a.lock.key_prefix);
    let gw_a = start_gateway(cfg_a.clone()).await;
    assert!(granted(&acquire(&gw_a, "before").await));
    // A real replica of master 0, caught up with its record.
    let m0 = cluster.masters[0].address();
    let port0 = cluster.masters[0].port().to_string();
    let replica = replica_of(&cluster.masters[0].address(), &port0).await;
    let r = replica.address();
    let mut inc = None;
    for _ in 0..50 {
        inc = record_field(&r, &meta, "inc").await;
        if inc.is_some() && inc == record_field(&m0, &meta, "inc").await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(inc.is_some(), "the replica carries master 0's record");
    gw_a.shutdown(Duration::from_secs(1)).await;
    // Failover: master 0 dies, its replica is promoted, and the gateway's
    // list names the replica in master 0's place.
    cluster.masters[0].kill();
    let mut rc = direct(&r).await;
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut rc)
        .await
        .expect("REPLICAOF NO ONE");
    let mut cfg = cfg_a.clone();
    cfg.masters[0] = lockgate::config::MasterConfig::plain(r.clone());
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    // Held out from its first connection, before any record check.
    assert_ne!(gw.engine().masters()[0].state(), MasterState::Up);
    assert!(
        wait_state(&gw, 0, MasterState::Promoted, Duration::from_secs(5)).await,
        "promoted replica must be held out: {:?}",
        gw.engine().masters()[0].state()
    );
    assert!(state_metric(&gw, &r, "promoted"));
    let ready = admin_get(&gw, "/readyz").await;
    assert!(ready.contains("promoted"), "{ready}");
    // The other two still serve, without it.
    assert!(granted(&acquire(&gw, "during").await));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gw.engine().masters()[0].state(), MasterState::Promoted);
    // After the quarantine it is re-seeded and votes; the record now names
    // its own history.
    assert!(wait_state(&gw, 0, MasterState::Up, Duration::from_secs(6)).await);
    assert_eq!(
        record_field(&r, &meta, "replid").await,
        Some(replid(&r).await)
    );
    assert!(granted(&acquire(&gw, "after").await));
    gw.shutdown(Duration::from_secs(1)).await;
}

/// A failover that loses a write: gateway A holds `x` on masters 0 and 1
/// (master 2 is down, and master 0's replica is paused, so it never
/// receives `x`). Master 0 dies, its replica is promoted, master 2 comes
/// back from its AOF (it never had `x`: it votes at once, rightly), and
/// gateway B lists the replica in master 0's place. B's acquire of `x`,
/// while A's grant is still valid, is what the guard decides.
async fn failover_that_lost_a_write(guard: bool) -> (Gateway, String) {
    let m0 = LocalRedis::start().expect("redis-server must be installed");
    let m1 = LocalRedis::start().expect("redis-server must be installed");
    let m2 = LocalRedis::start_aof().expect("redis-server must be installed");
    let mut cluster = Cluster {
        masters: vec![m0, m1, m2],
    };
    let cfg_a = test_config(&cluster);
    let meta = lockgate::lock::keys::meta_key(&cfg_a.lock.key_prefix);
    let gw_a = start_gateway(cfg_a.clone()).await;
    let a0 = cluster.masters[0].address();
    let port0 = cluster.masters[0].port().to_string();
    let replica = replica_of(&cluster.masters[0].address(), &port0).await;
    let r = replica.address();
    let mut synced = false;
    for _ in 0..50 {
        let inc = record_field(&r, &meta, "inc").await;
        if inc.is_some() && inc == record_field(&a0, &meta, "inc").await {
            synced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(synced, "the replica carries master 0's record");
    // Master 2's record on disk, then master 2 down and the replica paused.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.masters[2].kill();
    // The replica paused and its link cut, so nothing after this reaches it.
    replica.stop();
    let mut c0 = direct(&a0).await;
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query_async(&mut c0)
        .await
        .expect("CLIENT KILL");
    let mut c = RawConn::connect(gw_a.local_addr()).await;
    let held = c
        .cmd_str(&["LOCK.ACQUIRE", "x", "30000", "OWNER", "first"])
        .await;
    assert!(granted(&held), "A holds x on masters 0 and 1: {held}");
    // Master 0 dies before its replica saw x; the replica is promoted.
    cluster.masters[0].kill();
    replica.resume();
    let mut rc = direct(&r).await;
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut rc)
        .await
        .expect("REPLICAOF NO ONE");
    let xs: Option<String> = redis::cmd("GET")
        .arg("x")
        .query_async(&mut rc)
        .await
        .expect("GET");
    assert_eq!(xs, None, "the promoted replica lost x");
    cluster.masters[2].restart().expect("restart from AOF");
    let mut cfg_b = cfg_a.clone();
    cfg_b.masters[0] = lockgate::config::MasterConfig::plain(r.clone());
    let gw_b = Gateway::start(cfg_b).await.expect("gateway starts");
    gw_b.engine().set_amnesia_guard(guard);
    let want = if guard {
        MasterState::Promoted
    } else {
        MasterState::Up
    };
    assert!(wait_state(&gw_b, 0, want, Duration::from_secs(5)).await);
    // Master 2 came back from its own AOF: it votes at once.
    assert!(wait_state(&gw_b, 2, MasterState::Up, Duration::from_secs(5)).await);
    let mut c = RawConn::connect(gw_b.local_addr()).await;
    let second = c
        .cmd_str(&["LOCK.ACQUIRE", "x", "30000", "OWNER", "second"])
        .await;
    gw_a.shutdown(Duration::from_secs(1)).await;
    drop(replica);
    drop(cluster);
    (gw_b, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_that_lost_a_write_grants_no_second_holder() {
    let (gw, second) = failover_that_lost_a_write(true).await;
    assert_eq!(
        second, "*-1\r\n",
        "x is still A's: busy on master 1, one vote short"
    );
    gw.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_control_without_the_guard_the_failover_grants_a_second_holder() {
    let (gw, second) = failover_that_lost_a_write(false).await;
    assert!(granted(&second), "two valid holders of x: {second}");
    gw.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_restarting_from_its_aof_votes_at_once() {
    let mut cluster = Cluster::start_aof(3);
    let cfg = test_config(&cluster);
    let meta = lockgate::lock::keys::meta_key(&cfg.lock.key_prefix);
    // Default quarantine: over a minute, so any quarantine would show.
    let gw = start_gateway(cfg).await;
    assert!(granted(&acquire(&gw, "aof").await));
    let a = cluster.masters[0].address();
    let id = gw.engine().masters()[0].master_id().expect("an id");
    let before = replid(&a).await;
    // appendfsync everysec: let the record reach the disk.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.masters[0].restart().expect("restart");
    let after = replid(&a).await;
    assert_ne!(before, after, "a restart starts a new replication id");
    let m = gw.engine().masters()[0].clone();
    // Reconnected and confirmed, never held out.
    assert!(
        wait_until(Duration::from_secs(5), || m.connection_generation() >= 2
            && m.state() == MasterState::Up)
        .await
    );
    for _ in 0..10 {
        assert_eq!(m.state(), MasterState::Up);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut stamped = None;
    for _ in 0..30 {
        stamped = record_field(&a, &meta, "replid").await;
        if stamped.as_deref() == Some(after.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stamped.as_deref(), Some(after.as_str()));
    assert_eq!(m.master_id().as_deref(), Some(id.as_str()), "same id");
    assert!(granted(&acquire(&gw, "aof2").await));
    // Negative control: the same master losing its data is quarantined.
    let mut c = direct(&a).await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut c)
        .await
        .expect("flush");
    assert!(wait_state(&gw, 0, MasterState::Quarantined, Duration::from_secs(5)).await);
    gw.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_of_another_layout_gets_no_vote_until_adopted() {
    let cluster = Cluster::start(3);
    let cfg = test_config(&cluster);
    let meta = lockgate::lock::keys::meta_key(&cfg.lock.key_prefix);
    let gw = start_gateway(cfg).await;
    let a = cluster.masters[0].address();
    let mut c = direct(&a).await;
    // A record written before layout versions (version 1).
    let _: () = redis::cmd("HDEL")
        .arg(&meta[..])
        .arg("layout")
        .query_async(&mut c)
        .await
        .expect("HDEL");
    assert!(wait_state(&gw, 0, MasterState::LayoutMismatch, Duration::from_secs(5)).await);
    let why = gw.engine().masters()[0].guard_detail().expect("a reason");
    assert!(why.contains("layout version 1"), "{why}");
    assert!(
        why.contains(&format!("layout version {LAYOUT_VERSION}")),
        "{why}"
    );
    assert!(state_metric(&gw, &a, "layout_mismatch"));
    // Negative control: the untouched masters vote.
    assert_eq!(gw.engine().masters()[1].state(), MasterState::Up);
    assert_eq!(gw.engine().masters()[2].state(), MasterState::Up);
    // The upgrade step, as an operator runs it. With a master that does
    // not answer it writes nothing and says which.
    let dead = format!("127.0.0.1:{}", lockgate::dev::free_port().expect("port"));
    let mut args: Vec<String> = Vec::new();
    for m in &cluster.masters {
        args.push("--master".into());
        args.push(m.address());
    }
    let run = move |extra: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lockgate"));
        cmd.args(&args);
        if let Some(e) = extra {
            cmd.args(["--master", e]);
        }
        cmd.args(["--log-level", "error", "masters", "adopt"]);
        cmd.output().expect("run lockgate masters adopt")
    };
    let out = tokio::task::spawn_blocking({
        let dead = dead.clone();
        let run = run.clone();
        move || run(Some(&dead))
    })
    .await
    .expect("join");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{dead} did not answer")), "{err}");
    assert_eq!(record_field(&a, &meta, "layout").await, None);
    let out = tokio::task::spawn_blocking(move || run(None))
        .await
        .expect("join");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("on 3 masters"), "{said}");
    assert!(wait_state(&gw, 0, MasterState::Up, Duration::from_secs(5)).await);
    gw.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_whose_lists_differ_by_one_master() {
    let cluster = Cluster::start(4);
    let mut cfg_a = test_config(&cluster);
    cfg_a.masters.truncate(3);
    let meta = lockgate::lock::keys::meta_key(&cfg_a.lock.key_prefix);
    let gw_a = start_gateway(cfg_a.clone()).await;
    // Gateway A's set is recorded on its three masters.
    let a0 = cluster.masters[0].address();
    for _ in 0..40 {
        let set = record_field(&a0, &meta, "set").await.unwrap_or_default();
        if set.split(',').count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Gateway B lists one master more.
    let cfg_b = test_config(&cluster);
    let gw_b = Gateway::start(cfg_b).await.expect("gateway starts");
    let extra = cluster.masters[3].address();
    for i in 0..3 {
        assert!(
            wait_state(&gw_b, i, MasterState::SetMismatch, Duration::from_secs(5)).await,
            "master {i}: {:?}",
            gw_b.engine().masters()[i].state()
        );
    }
    // Once B has initialised the master only it lists, the error names it.
    let b0 = gw_b.engine().masters()[0].clone();
    wait_until(Duration::from_secs(5), || {
        b0.guard_detail().is_some_and(|w| w.contains(&extra))
    })
    .await;
    let why = b0.guard_detail().expect("a reason");
    assert!(why.contains(&extra), "names the extra master: {why}");
    assert!(why.contains("has 3 masters, this gateway lists 4"), "{why}");
    assert!(state_metric(&gw_b, &a0, "set_mismatch"));
    let ready = admin_get(&gw_b, "/readyz").await;
    assert!(ready.contains("set_mismatch"), "{ready}");
    assert!(acquire(&gw_b, "k").await.starts_with("-NOQUORUM"));
    // A, whose list matches, serves.
    assert!(granted(&acquire(&gw_a, "k").await));
    // Negative control: without the check, B's mismatched set votes.
    gw_b.engine().set_amnesia_guard(false);
    assert!(wait_state(&gw_b, 0, MasterState::Up, Duration::from_secs(5)).await);
    assert!(granted(&acquire(&gw_b, "k2").await));
    gw_b.engine().set_amnesia_guard(true);
    assert!(wait_state(&gw_b, 0, MasterState::SetMismatch, Duration::from_secs(5)).await);
    // The master-set change: A stops, B adopts its list.
    gw_a.shutdown(Duration::from_secs(1)).await;
    let msg = adopt(gw_b.engine()).await.expect("adopted");
    assert!(msg.contains("on 4 masters"), "{msg}");
    for i in 0..4 {
        assert!(wait_state(&gw_b, i, MasterState::Up, Duration::from_secs(5)).await);
    }
    assert!(granted(&acquire(&gw_b, "k3").await));
    // A gateway still on the old list is now the one refused.
    let gw_old = Gateway::start(cfg_a).await.expect("gateway starts");
    assert!(wait_state(&gw_old, 0, MasterState::SetMismatch, Duration::from_secs(5)).await);
    let why = gw_old.engine().masters()[0]
        .guard_detail()
        .expect("a reason");
    assert!(why.contains("which this gateway does not list"), "{why}");
    assert!(acquire(&gw_old, "k4").await.starts_with("-NOQUORUM"));
    gw_old.shutdown(Duration::from_secs(1)).await;
    gw_b.shutdown(Duration::from_secs(1)).await;
}

/// A gateway of key layout 1 keeps its record under the old name. Where one
/// appears (a master set still served by old gateways, or one of them
/// re-initialising a master after an upgrade), a gateway of this layout
/// gives that master no vote: two layouts serving one master set would be
/// two locks for one name. `adopt` then takes the old record's marks into
/// the floor and deletes it, and tokens keep rising across the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_one_record_takes_the_vote_until_adopted() {
    let cluster = Cluster::start(3);
    let cfg = test_config(&cluster);
    let prefix = cfg.lock.key_prefix.clone();
    let old = lockgate::lock::keys::v1_meta_key(&prefix);
    let meta = lockgate::lock::keys::meta_key(&prefix);
    let gw = start_gateway(cfg).await;
    let before = acquire(&gw, "upgrade").await;
    assert!(granted(&before), "{before}");
    // An old gateway's record on masters 0 and 1, with a mark far above
    // anything this gateway has granted.
    let high: u64 = 8_000_000_000_000_000;
    for m in &cluster.masters[..2] {
        let mut c = direct(&m.address()).await;
        let _: () = redis::cmd("HSET")
            .arg(&old[..])
            .arg("inc")
            .arg("v1")
            .arg("floor")
            .arg(high)
            .arg("hwm")
            .arg(high)
            .query_async(&mut c)
            .await
            .expect("HSET");
    }
    for i in 0..2 {
        assert!(
            wait_state(&gw, i, MasterState::LayoutMismatch, Duration::from_secs(5)).await,
            "master {i} still votes beside a layout-1 record"
        );
    }
    let why = gw.engine().masters()[0].guard_detail().expect("a reason");
    assert!(why.contains("layout version 1"), "{why}");
    // Negative control: the master without an old record still votes, and
    // with one vote of three nothing is granted.
    assert_eq!(gw.engine().masters()[2].state(), MasterState::Up);
    let refused = acquire(&gw, "upgrade-2").await;
    assert!(refused.starts_with("-NOQUORUM"), "{refused}");
    // The upgrade step: the old records go, the floor covers their marks.
    let done = adopt(gw.engine()).await.expect("adopt");
    assert!(done.contains("on 3 masters"), "{done}");
    for m in &cluster.masters {
        let mut c = direct(&m.address()).await;
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&old[..])
            .query_async(&mut c)
            .await
            .expect("EXISTS");
        assert_eq!(exists, 0, "{} keeps the layout-1 record", m.address());
        let floor: u64 = record_field(&m.address(), &meta, "floor")
            .await
            .and_then(|f| f.parse().ok())
            .expect("a floor");
        assert!(floor >= high, "{}: floor {floor} < {high}", m.address());
    }
    for i in 0..3 {
        assert!(wait_state(&gw, i, MasterState::Up, Duration::from_secs(5)).await);
    }
    let after = acquire(&gw, "upgrade-3").await;
    assert!(granted(&after), "{after}");
    let token: u64 = after
        .split("\r\n")
        .find_map(|l| l.strip_prefix(':'))
        .and_then(|t| t.parse().ok())
        .expect("a token");
    assert!(
        token > high,
        "token {token} is not above the old mark {high}"
    );
    gw.shutdown(Duration::from_secs(1)).await;
}
