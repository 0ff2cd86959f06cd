//! Wire-level replays of clients that cannot be installed here (Go's
//! redsync on go-redis v9, Java's Redisson), and of script variants the
//! installed suites do not send (node-redlock v4, python-redis-lock reset).
//! Each test sends the exact command sequence the library sends, taken from
//! its source, and checks the exact reply bytes a single Redis would give.

mod support;

use support::{start_gateway, test_config, Cluster, RawConn};

const REDSYNC_DELETE: &str = "e950836ed1e694540c503ef9972b8de518044d3b";
const REDSYNC_TOUCH: &str = "d75bb8b5bd13532ddedd17762e772346e39b321e";
const REDSYNC_TOUCH_SETNX: &str = "b6b55c439e02c6f52ffb8be7ec8c0d0ac816ea79";
const REDSYNC_DELETE_SRC: &str = "\n\tlocal val = redis.call(\"GET\", KEYS[1])\n\tif val == ARGV[1] then\n\t\treturn redis.call(\"DEL\", KEYS[1])\n\telseif val == false then\n\t\treturn -1\n\telse\n\t\treturn 0\n\tend\n";
const NOSCRIPT: &str = "-NOSCRIPT No matching script. Please use EVAL.\r\n";

/// go-redis v9's connection handshake: HELLO 3, then its identity.
async fn go_redis_connect(addr: std::net::SocketAddr) -> RawConn {
    let mut c = RawConn::connect(addr).await;
    let hello = c.cmd_str(&["hello", "3"]).await;
    assert!(
        hello.starts_with('%'),
        "HELLO 3 answers a RESP3 map: {hello}"
    );
    assert!(hello.contains("proto\r\n:3"), "{hello}");
    for (attr, v) in [("LIB-NAME", "go-redis(,go1.25.0)"), ("LIB-VER", "9.21.0")] {
        assert_eq!(c.cmd_str(&["client", "setinfo", attr, v]).await, "+OK\r\n");
    }
    c
}

fn token(status: &str) -> u64 {
    // `*3 $owner :token :pttl` (RESP3 arrays look the same).
    status
        .split("\r\n")
        .find(|l| l.starts_with(':'))
        .and_then(|l| l[1..].parse().ok())
        .unwrap_or_else(|| panic!("no token in {status:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redsync_on_go_redis_v9() {
    let mut cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut a = go_redis_connect(gw.local_addr()).await;
    let mut b = go_redis_connect(gw.local_addr()).await;
    let (name, v1, v2) = (
        "redsync:job",
        "q83vEjRWeJCrze8SNFZ4kA==",
        "7mVnUAbCdEfGhIjKlMnOpQ==",
    );

    // Mutex.Lock: go-redis SetNX with the default 8 s expiry.
    assert_eq!(
        a.cmd_str(&["set", name, v1, "ex", "8", "nx"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        b.cmd_str(&["set", name, v2, "ex", "8", "nx"]).await,
        "_\r\n"
    );
    assert_eq!(b.cmd_str(&["get", name]).await, format!("$24\r\n{v1}\r\n"));
    let first = token(&b.cmd_str(&["LOCK.STATUS", name]).await);
    // Mutex.Extend: touch with the expiry in ms.
    assert_eq!(
        a.cmd_str(&["evalsha", REDSYNC_TOUCH, "1", name, v1, "8000"])
            .await,
        ":1\r\n"
    );
    assert_eq!(
        b.cmd_str(&["evalsha", REDSYNC_TOUCH, "1", name, v2, "8000"])
            .await,
        ":0\r\n"
    );
    // Mutex.Unlock by another value: 0; by the owner: 1; again: -1 (gone).
    assert_eq!(
        b.cmd_str(&["evalsha", REDSYNC_DELETE, "1", name, v2]).await,
        ":0\r\n"
    );
    assert_eq!(
        a.cmd_str(&["evalsha", REDSYNC_DELETE, "1", name, v1]).await,
        ":1\r\n"
    );
    assert_eq!(
        a.cmd_str(&["evalsha", REDSYNC_DELETE, "1", name, v1]).await,
        ":-1\r\n"
    );
    // The NOSCRIPT fallback: redsync matches "NOSCRIPT " and sends EVAL.
    let unknown = "0123456789012345678901234567890123456789";
    assert_eq!(
        a.cmd_str(&["evalsha", unknown, "1", name, v1]).await,
        NOSCRIPT
    );
    assert_eq!(
        a.cmd_str(&["set", name, v1, "px", "500", "nx"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        a.cmd_str(&["eval", REDSYNC_DELETE_SRC, "1", name, v1])
            .await,
        ":1\r\n"
    );
    // WithSetNXOnExtend: extending a lock that is gone takes it again, with
    // a new, higher fencing token.
    assert_eq!(
        a.cmd_str(&["evalsha", REDSYNC_TOUCH_SETNX, "1", name, v1, "8000"])
            .await,
        ":1\r\n"
    );
    let second = token(&b.cmd_str(&["LOCK.STATUS", name]).await);
    assert!(second > first, "token {second} after {first}");
    assert_eq!(
        b.cmd_str(&["evalsha", REDSYNC_TOUCH_SETNX, "1", name, v2, "8000"])
            .await,
        ":0\r\n"
    );
    // One master killed: the same sequence still works.
    cluster.masters[0].kill();
    assert_eq!(
        a.cmd_str(&["evalsha", REDSYNC_DELETE, "1", name, v1]).await,
        ":1\r\n"
    );
    assert_eq!(
        b.cmd_str(&["set", name, v2, "ex", "8", "nx"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        a.cmd_str(&["set", name, v1, "ex", "8", "nx"]).await,
        "_\r\n"
    );
    assert_eq!(
        b.cmd_str(&["evalsha", REDSYNC_TOUCH, "1", name, v2, "8000"])
            .await,
        ":1\r\n"
    );
    assert_eq!(
        b.cmd_str(&["evalsha", REDSYNC_DELETE, "1", name, v2]).await,
        ":1\r\n"
    );
    // Expiry: a sub-second lock (go-redis sends px for it) frees itself.
    assert_eq!(
        a.cmd_str(&["set", name, v1, "px", "300", "nx"]).await,
        "+OK\r\n"
    );
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    assert_eq!(
        b.cmd_str(&["set", name, v2, "px", "300", "nx"]).await,
        "+OK\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redisson_rlock_is_refused_with_a_reason_and_the_connection_survives() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    assert_eq!(c.cmd_str(&["PING"]).await, "+PONG\r\n");
    // RLock.lock(): EVALSHA of the reentrant hash-lock script.
    let lock = c
        .cmd_str(&[
            "EVALSHA",
            "149c5a8bf18676fd99e9e6e24923bd64d9b62f94",
            "1",
            "myLock",
            "30000",
            "c0ffee00-0000-4000-8000-000000000001:1",
        ])
        .await;
    assert!(
        lock.starts_with("-ERR lockgate does not run the Redisson lock script: ")
            && lock.contains("reentrant hash lock"),
        "{lock}"
    );
    // Its waiters subscribe to the lock channel: refused, connection kept.
    let sub = c
        .cmd_str(&["SUBSCRIBE", "redisson_lock__channel:{myLock}"])
        .await;
    assert!(
        sub.starts_with("-ERR command 'SUBSCRIBE' is not supported by lockgate"),
        "{sub}"
    );
    // RFencedLock's token script is refused the same way.
    let fenced = c
        .cmd_str(&[
            "EVALSHA",
            "49babb5a1e6a0c5f188c2ae62b93b51cdfd63e45",
            "2",
            "myLock",
            "redisson_lock_token:{myLock}",
            "30000",
            "c0ffee00-0000-4000-8000-000000000001:1",
        ])
        .await;
    assert!(fenced.contains("Redisson RFencedLock"), "{fenced}");
    assert_eq!(c.cmd_str(&["PING"]).await, "+PONG\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_redlock_v4_scripts_are_multi_key_and_answer_counts() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    let (lock, extend, unlock) = (
        "e5a322e2634ef59a516e8ea150cb085afafee684",
        "ce46f80993d5dac20dd066eb301a4e37994bdbed",
        "0f0f23b9048b36752b5be114f357ba083449f908",
    );
    let v = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        c.cmd_str(&["evalsha", lock, "2", "v4:a", "v4:b", v, "5000"])
            .await,
        ":2\r\n"
    );
    assert_eq!(
        c.cmd_str(&["evalsha", lock, "1", "v4:b", "other", "5000"])
            .await,
        ":0\r\n"
    );
    assert_eq!(
        c.cmd_str(&["evalsha", extend, "2", "v4:a", "v4:b", v, "9000"])
            .await,
        ":2\r\n"
    );
    assert_eq!(
        c.cmd_str(&["evalsha", extend, "2", "v4:a", "v4:b", "other", "9000"])
            .await,
        ":0\r\n"
    );
    assert_eq!(
        c.cmd_str(&["evalsha", unlock, "2", "v4:a", "v4:b", "other"])
            .await,
        ":0\r\n"
    );
    assert_eq!(
        c.cmd_str(&["evalsha", unlock, "2", "v4:a", "v4:b", v])
            .await,
        ":2\r\n"
    );
    assert_eq!(
        c.cmd_str(&["evalsha", unlock, "2", "v4:a", "v4:b", v])
            .await,
        ":0\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_redis_lock_reset_and_blpop_edges() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = RawConn::connect(gw.local_addr()).await;
    let reset = c
        .cmd_str(&[
            "EVALSHA",
            "afbc8014508f92e446b56567e8ba600e811c1bd5",
            "2",
            "lock:x",
            "lock-signal:x",
            "1000",
        ])
        .await;
    assert!(
        reset.starts_with("-ERR lockgate does not run the python-redis-lock reset script"),
        "{reset}"
    );
    // BLPOP works only on signal keys; a timeout answers a null array.
    let other = c.cmd_str(&["BLPOP", "queue", "0.1"]).await;
    assert!(
        other.contains("only supported on lock signal keys"),
        "{other}"
    );
    assert_eq!(
        c.cmd_str(&["SET", "lock:x", "id", "NX", "EX", "5"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        c.cmd_str(&["BLPOP", "lock-signal:x", "0.2"]).await,
        "*-1\r\n"
    );
    assert_eq!(
        c.cmd_str(&["BLPOP", "lock-signal:free", "1"]).await,
        "*2\r\n$16\r\nlock-signal:free\r\n$1\r\n1\r\n"
    );
    assert_eq!(
        c.cmd_str(&["BLPOP", "lock-signal:x", "-1"]).await,
        "-ERR timeout is negative\r\n"
    );
}
