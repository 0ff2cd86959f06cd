//! The master-side guards, end to end with real `redis-server` masters: a
//! master whose `maxmemory-policy` can evict the gateway's keys does not
//! vote (read at connect and again every `master.policy_check_ms`), a
//! master that refuses `CONFIG` votes only with a declared policy, a full
//! `noeviction` master's OOM refusals are counted apart, and one server
//! reached through two configured addresses casts one vote. Each safety
//! check has its negative control: the same scenario with the guard turned
//! off through the masters' test hooks shows the vote that the guard
//! withholds.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lockgate::config::Config;
use lockgate::dev::LocalRedis;
use lockgate::master::MasterState;
use lockgate::server::Gateway;
use support::{raw_roundtrip, test_config, wait_until, Cluster, RawConn};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

fn master(args: &[&str]) -> LocalRedis {
    LocalRedis::start_with_args(args).expect("redis-server must be installed")
}

fn cluster_of(masters: Vec<LocalRedis>) -> Cluster {
    Cluster { masters }
}

async fn acquire(gw: &Gateway, key: &str) -> String {
    let mut c = RawConn::connect(gw.local_addr()).await;
    c.cmd_str(&["LOCK.ACQUIRE", key, "5000"]).await
}

fn granted(reply: &str) -> bool {
    reply.starts_with("*3\r\n")
}

async fn admin_get(gw: &Gateway, path: &str) -> String {
    let addr = gw.admin_addr().expect("admin enabled");
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    String::from_utf8_lossy(&raw_roundtrip(addr, req.as_bytes()).await).into_owned()
}

fn metrics_text(gw: &Gateway) -> String {
    prometheus::TextEncoder::new()
        .encode_to_string(&gw.metrics().registry.gather())
        .expect("metrics encode")
}

fn state_metric(gw: &Gateway, master: &str, state: &str) -> bool {
    metrics_text(gw).contains(&format!(
        "lockgate_master_state{{master=\"{master}\",state=\"{state}\"}} 1"
    ))
}

async fn info_lockgate(gw: &Gateway) -> String {
    let mut c = RawConn::connect(gw.local_addr()).await;
    c.cmd_str(&["INFO", "lockgate"]).await
}

/// Sends one command straight to a master.
async fn on_master(port: u16, args: &[&str]) -> String {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut c = RawConn::connect(addr).await;
    c.cmd_str(args).await
}

/// Starts a gateway and waits until every master has connected (whether
/// it votes or not).
async fn start_connected(cfg: Config) -> Gateway {
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    let all_up = wait_until(Duration::from_secs(10), || {
        gw.engine()
            .masters()
            .iter()
            .all(|m| m.state() != MasterState::Down)
    })
    .await;
    assert!(all_up, "masters did not connect");
    gw
}

async fn wait_state(gw: &Gateway, i: usize, want: MasterState, within: Duration) -> bool {
    let m = gw.engine().masters()[i].clone();
    wait_until(within, move || m.state() == want).await
}

// === eviction policies ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_master_gets_no_vote_and_says_why() {
    // maxmemory stays 0: nothing is evicted yet, and still no vote (the
    // limit is one CONFIG SET away; see the README).
    let cluster = cluster_of(vec![
        master(&["--maxmemory-policy", "allkeys-lru"]),
        master(&[]),
        master(&[]),
    ]);
    let evicting = cluster.masters[0].address();
    let gw = support::start_gateway(test_config(&cluster)).await;
    assert!(wait_state(&gw, 0, MasterState::Evicting, Duration::from_secs(5)).await);
    assert_eq!(gw.engine().voting(), 2);
    assert!(granted(&acquire(&gw, "ev:1").await));

    let info = info_lockgate(&gw).await;
    assert!(
        info.contains(&format!("address={evicting},state=evicting")),
        "{info}"
    );
    assert!(state_metric(&gw, &evicting, "evicting"));
    let ready = admin_get(&gw, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(
        ready.contains(&format!(
            "master {evicting}: evicting (maxmemory-policy allkeys-lru (maxmemory 0)"
        )),
        "{ready}"
    );
    assert!(
        ready.contains("CONFIG SET maxmemory-policy noeviction"),
        "{ready}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_evicting_masters_leave_no_quorum_unless_the_guard_is_off() {
    let cluster = cluster_of(vec![
        master(&["--maxmemory-policy", "allkeys-lru", "--maxmemory", "100mb"]),
        master(&["--maxmemory-policy", "volatile-lru"]),
        master(&[]),
    ]);
    let gw = start_connected(test_config(&cluster)).await;
    assert_eq!(gw.engine().masters()[0].state(), MasterState::Evicting);
    assert_eq!(gw.engine().masters()[1].state(), MasterState::Evicting);
    let r = acquire(&gw, "ev:2").await;
    assert!(r.starts_with("-NOQUORUM"), "{r}");
    let ready = admin_get(&gw, "/readyz").await;
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains("volatile-lru"), "{ready}");

    // Negative control: with the guard off the evicting masters vote, and
    // the same acquire is granted on their word.
    for m in gw.engine().masters() {
        m.set_eviction_guard(false);
    }
    assert!(gw.wait_ready(Duration::from_secs(10)).await);
    assert!(granted(&acquire(&gw, "ev:2").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_changed_at_runtime_takes_the_vote_away_within_the_interval() {
    let cluster = Cluster::start(3);
    let mut cfg = test_config(&cluster);
    cfg.master.policy_check = Duration::from_millis(200);
    let gw = support::start_gateway(cfg).await;
    assert!(granted(&acquire(&gw, "rt:1").await));

    let ports: Vec<u16> = cluster.masters.iter().map(|m| m.port()).collect();
    for &p in &ports[..2] {
        let r = on_master(p, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]).await;
        assert_eq!(r, "+OK\r\n");
    }
    // The interval plus scheduling slack on a loaded machine.
    let within = Duration::from_millis(200 + 1500);
    for i in 0..2 {
        assert!(
            wait_state(&gw, i, MasterState::Evicting, within).await,
            "master {i}"
        );
    }
    let r = acquire(&gw, "rt:2").await;
    assert!(r.starts_with("-NOQUORUM"), "{r}");

    // Negative control: the guard off, the same masters vote again.
    for m in gw.engine().masters() {
        m.set_eviction_guard(false);
    }
    assert!(granted(&acquire(&gw, "rt:3").await));
    for m in gw.engine().masters() {
        m.set_eviction_guard(true);
    }
    assert!(acquire(&gw, "rt:4").await.starts_with("-NOQUORUM"));

    // Set back: the vote returns within the interval.
    for &p in &ports[..2] {
        on_master(p, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]).await;
    }
    for i in 0..2 {
        assert!(
            wait_state(&gw, i, MasterState::Up, within).await,
            "master {i}"
        );
    }
    assert!(granted(&acquire(&gw, "rt:5").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_that_refuses_config_votes_only_with_a_declared_policy() {
    // Renamed away, as managed services do.
    let renamed = Cluster::start_with_args(3, &["--rename-command", "CONFIG", ""]);
    let gw = start_connected(test_config(&renamed)).await;
    for (i, m) in gw.engine().masters().iter().enumerate() {
        assert_eq!(m.state(), MasterState::PolicyUnknown, "master {i}");
    }
    assert!(state_metric(
        &gw,
        &renamed.masters[0].address(),
        "policy_unknown"
    ));
    assert!(acquire(&gw, "cfg:1").await.starts_with("-NOQUORUM"));
    let ready = admin_get(&gw, "/readyz").await;
    assert!(ready.contains("eviction_policy"), "{ready}");
    drop(gw);

    let mut cfg = test_config(&renamed);
    for m in &mut cfg.masters {
        m.eviction_policy = Some("noeviction".into());
    }
    let gw = support::start_gateway(cfg).await;
    assert!(granted(&acquire(&gw, "cfg:1").await));
    drop(gw);

    // An ACL user without CONFIG, the other way a master refuses it.
    let acl = Cluster::start_with_args(
        3,
        &[
            "--user", "gw", "on", ">gw-pw", "~*", "&*", "+@all", "-config", "--user", "default",
            "off",
        ],
    );
    let with_user = |declare: bool| {
        let mut cfg = test_config(&acl);
        for m in &mut cfg.masters {
            m.username = Some("gw".into());
            m.password = Some("gw-pw".into());
            m.eviction_policy = declare.then(|| "noeviction".into());
        }
        cfg
    };
    let gw = start_connected(with_user(false)).await;
    assert_eq!(gw.engine().voting(), 0);
    assert!(acquire(&gw, "cfg:2").await.starts_with("-NOQUORUM"));
    drop(gw);
    let gw = support::start_gateway(with_user(true)).await;
    assert!(granted(&acquire(&gw, "cfg:2").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_noeviction_master_refuses_with_oom_counted_apart() {
    let cluster = Cluster::start(3);
    let full = cluster.masters[0].address();
    let gw = support::start_gateway(test_config(&cluster)).await;
    let count = |kind: &str| {
        let line = format!("lockgate_master_errors_total{{kind=\"{kind}\",master=\"{full}\"}} ");
        metrics_text(&gw)
            .lines()
            .find_map(|l| l.strip_prefix(&line).map(|v| v.trim().to_string()))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Negative control: with memory to spare, no OOM.
    assert!(granted(&acquire(&gw, "oom:0").await));
    assert_eq!(count("oom"), 0);

    let r = on_master(
        cluster.masters[0].port(),
        &["CONFIG", "SET", "maxmemory", "1"],
    )
    .await;
    assert_eq!(r, "+OK\r\n");
    // The other two still grant; the full one refuses every write.
    for i in 1..=3 {
        assert!(granted(&acquire(&gw, &format!("oom:{i}")).await));
    }
    assert!(count("oom") >= 3, "oom {}", count("oom"));
    assert_eq!(count("reply"), 0);
    // Still noeviction: a full master is refused writes, never loses keys.
    assert_eq!(gw.engine().masters()[0].state(), MasterState::Up);
}

// === one server, one vote ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_addresses_of_one_server_refuse_the_start_naming_both() {
    let cluster = Cluster::start(3);
    let port = cluster.masters[0].port();
    let mut cfg = test_config(&cluster);
    cfg.masters[1].address = format!("localhost:{port}");
    let Err(e) = Gateway::start(cfg).await else {
        panic!("a gateway whose masters list one server twice must not start");
    };
    let e = e.to_string();
    assert!(
        e.contains(&format!(
            "127.0.0.1:{port} and localhost:{port} reach the same Redis server"
        )),
        "{e}"
    );

    // Negative control: the same servers, each listed once.
    let gw = support::start_gateway(test_config(&cluster)).await;
    assert!(granted(&acquire(&gw, "dup:0").await));
}

/// A TCP forwarder standing for an address whose target can change (a DNS
/// record or a load balancer moved): `cut` drops every open connection so
/// the gateway reconnects, and reaches whatever the target is then.
struct Forwarder {
    port: u16,
    target: Arc<AtomicU16>,
    open: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Forwarder {
    async fn start(target: u16) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let target = Arc::new(AtomicU16::new(target));
        let open: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (t, o) = (target.clone(), open.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = t.load(Ordering::SeqCst);
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", to)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                o.lock().expect("lock").push(task);
            }
        });
        Forwarder {
            port,
            target,
            open,
            accept,
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Points at `target` and drops the connections open now.
    fn retarget(&self, target: u16) {
        self.target.store(target, Ordering::SeqCst);
        for t in self.open.lock().expect("lock").drain(..) {
            t.abort();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
        self.retarget(0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_after_a_reconnect_loses_its_vote_at_once() {
    let mut cluster = Cluster::start(3);
    let (a, b) = (cluster.masters[0].port(), cluster.masters[1].port());
    let fwd = Forwarder::start(b).await;
    let mut cfg = test_config(&cluster);
    cfg.masters[1].address = fwd.address();
    let gw = support::start_gateway(cfg).await;
    assert!(wait_state(&gw, 1, MasterState::Up, Duration::from_secs(5)).await);
    let mut c = RawConn::connect(gw.local_addr()).await;
    let held = c
        .cmd_str(&["LOCK.ACQUIRE", "dup:1", "30000", "OWNER", "me"])
        .await;
    assert!(granted(&held), "{held}");

    // The forwarded address now reaches master 0's server.
    fwd.retarget(a);
    assert!(wait_state(&gw, 1, MasterState::Duplicate, Duration::from_secs(5)).await);
    assert!(state_metric(&gw, &fwd.address(), "duplicate"));
    assert_eq!(gw.engine().masters()[0].state(), MasterState::Up);
    let ready = admin_get(&gw, "/readyz").await;
    assert!(
        ready.contains(&format!(
            "master {}: duplicate (reaches the same Redis server as 127.0.0.1:{a})",
            fwd.address()
        )),
        "{ready}"
    );

    // With the third master gone, one server is left behind two addresses:
    // one vote, no quorum.
    cluster.masters[2].kill();
    assert!(wait_state(&gw, 2, MasterState::Down, Duration::from_secs(5)).await);
    let r = acquire(&gw, "dup:2").await;
    assert!(r.starts_with("-NOQUORUM"), "{r}");
    let extend = ["LOCK.EXTEND", "dup:1", "me", "30000"];
    let r = c.cmd_str(&extend).await;
    assert!(r.starts_with("-NOQUORUM"), "{r}");

    // Negative control: without the identity guard the one server answers
    // for two masters, and an extend "succeeds on a quorum" of one server.
    gw.engine().masters()[1].set_identity_guard(false);
    let r = c.cmd_str(&extend).await;
    assert!(r.starts_with(':'), "{r}");
    gw.engine().masters()[1].set_identity_guard(true);
    assert!(c.cmd_str(&extend).await.starts_with("-NOQUORUM"));

    // Pointed back at its own server, it votes again.
    fwd.retarget(b);
    assert!(wait_state(&gw, 1, MasterState::Up, Duration::from_secs(5)).await);
    let r = c.cmd_str(&extend).await;
    assert!(r.starts_with(':'), "{r}");
    assert!(granted(&acquire(&gw, "dup:3").await));
}
