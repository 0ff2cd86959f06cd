//! Hostile tests of the key layout: no client command, of any family, on
//! any key (binary, with braces, empty, starting with the prefix, spelling
//! out an internal name of the current or of the previous layout), reads,
//! writes, expires or deletes a key the gateway keeps for itself. Each case
//! checks the reply and, over a direct connection to every master, that the
//! internal keys of victim locks are byte for byte what they were. The old
//! attacks (a SET on a fence register's name, a release or extend of it, a
//! catalogued script run on internal names) are replayed, and a register at
//! the end of the token space refuses its own key only.
//!
//! The negative control (that the same non-collision check fails on the
//! previous layout) is the unit test `lock::keys::tests::
//! the_check_catches_the_previous_layout`: on real masters the previous
//! layout cannot be built any more.

mod support;

use std::time::Duration;

use bytes::Bytes;
use lockgate::lock::keys;
use redis::aio::MultiplexedConnection;
use redis::Value;
use support::{client, start_gateway, test_config, Cluster, RawConn};

const PREFIX: &str = "lockgate:";
const REDIS_PY_RELEASE: &str = "\n        local token = redis.call('get', KEYS[1])\n        if not token or token ~= ARGV[1] then\n            return 0\n        end\n        redis.call('del', KEYS[1])\n        return 1\n    ";
const NODE_REDLOCK_ACQUIRE: &str = "\n  -- Return 0 if an entry already exists.\n  for i, key in ipairs(KEYS) do\n    if redis.call(\"exists\", key) == 1 then\n      return 0\n    end\n  end\n\n  -- Create an entry for each provided key.\n  for i, key in ipairs(KEYS) do\n    redis.call(\"set\", key, ARGV[1], \"PX\", ARGV[2])\n  end\n\n  -- Return the number of entries added.\n  return #KEYS\n";
const MAX_TOKEN: &str = "9007199254740991";

async fn masters(cluster: &Cluster) -> Vec<MultiplexedConnection> {
    let mut out = Vec::new();
    for m in &cluster.masters {
        out.push(
            redis::Client::open(format!("redis://{}/", m.address()))
                .expect("client")
                .get_multiplexed_async_connection()
                .await
                .expect("connect to master"),
        );
    }
    out
}

async fn call(c: &mut MultiplexedConnection, args: &[&[u8]]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).expect("command name"));
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await
}

async fn ok(c: &mut MultiplexedConnection, args: &[&[u8]]) -> Value {
    match call(c, args).await {
        Ok(v) => v,
        Err(e) => panic!("{:?}: {e}", show(args)),
    }
}

fn show(args: &[&[u8]]) -> Vec<String> {
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// `[owner, token, validity]` of a grant.
fn grant(v: &Value) -> (Vec<u8>, i64) {
    match v {
        Value::Array(items) => match items.as_slice() {
            [Value::BulkString(o), Value::Int(t), Value::Int(_), ..] => (o.clone(), *t),
            other => panic!("expected a grant, got {other:?}"),
        },
        other => panic!("expected a grant, got {other:?}"),
    }
}

/// What a master stores under `name`: its DUMP and whether it has no TTL.
async fn stored(m: &mut MultiplexedConnection, name: &[u8]) -> (Option<Vec<u8>>, bool) {
    let dump: Option<Vec<u8>> = redis::cmd("DUMP")
        .arg(name)
        .query_async(m)
        .await
        .expect("dump");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(name)
        .query_async(m)
        .await
        .expect("pttl");
    (dump, pttl == -1)
}

/// The victims: a plain lock, a read-write lock and a semaphore on `x`, a
/// reentrant lock on `xr`; every name the gateway keeps for them, with the
/// metadata record's fixed fields.
struct Victims {
    names: Vec<Bytes>,
    before: Vec<Vec<(Option<Vec<u8>>, bool)>>,
    meta: Vec<(Option<String>, Option<String>)>,
    token: i64,
}

fn victim_names() -> Vec<Bytes> {
    let rw = keys::rw(PREFIX, b"x");
    let sem = keys::sem(PREFIX, b"x");
    vec![
        keys::lock_key(PREFIX, b"x"),
        keys::fence_key(PREFIX, b"x"),
        rw.readers,
        rw.writer,
        rw.tokens,
        rw.intent,
        sem.holders,
        sem.tokens,
        sem.slots,
        sem.permits,
        keys::lock_key(PREFIX, b"xr"),
        keys::fence_key(PREFIX, b"xr"),
        keys::holds_key(PREFIX, b"xr"),
    ]
}

async fn meta_fields(m: &mut MultiplexedConnection) -> (Option<String>, Option<String>) {
    let meta = keys::meta_key(PREFIX);
    let inc: Option<String> = redis::cmd("HGET")
        .arg(&meta[..])
        .arg("inc")
        .query_async(m)
        .await
        .expect("hget");
    let floor: Option<String> = redis::cmd("HGET")
        .arg(&meta[..])
        .arg("floor")
        .query_async(m)
        .await
        .expect("hget");
    (inc, floor)
}

impl Victims {
    async fn take(c: &mut MultiplexedConnection, ms: &mut [MultiplexedConnection]) -> Victims {
        let (_, first) = grant(&ok(c, &[b"LOCK.ACQUIRE", b"x", b"60000", b"OWNER", b"vo"]).await);
        grant(&ok(c, &[b"RWLOCK.READ", b"x", b"60000", b"OWNER", b"vo"]).await);
        grant(&ok(c, &[b"SEM.ACQUIRE", b"x", b"2", b"60000", b"OWNER", b"vo"]).await);
        grant(&ok(c, &[b"RLOCK.ACQUIRE", b"xr", b"60000", b"OWNER", b"vo"]).await);
        let names = victim_names();
        let mut before = Vec::new();
        let mut meta = Vec::new();
        for m in ms.iter_mut() {
            let mut row = Vec::new();
            for n in &names {
                row.push(stored(m, n).await);
            }
            before.push(row);
            meta.push(meta_fields(m).await);
        }
        // The victims' state really is on the masters under these names
        // (the register without a TTL), so "unchanged" below means something.
        for row in &before {
            assert!(row[0].0.is_some() && row[1].0.is_some() && row[1].1);
            assert!(row[6].0.is_some() && row[12].0.is_some());
        }
        // What LOCK.STATUS shows: x's register, which every kind on x
        // raised.
        let token = match ok(c, &[b"LOCK.STATUS", b"x"]).await {
            Value::Array(items) => int(&items[1]),
            other => panic!("victim status {other:?}"),
        };
        assert!(token > first);
        Victims {
            names,
            before,
            meta,
            token,
        }
    }

    /// Every victim key is byte for byte what it was, on every master, the
    /// record's incarnation and floor too, and the plain victim is still
    /// held by its owner with its token.
    async fn untouched(&self, c: &mut MultiplexedConnection, ms: &mut [MultiplexedConnection]) {
        for (i, m) in ms.iter_mut().enumerate() {
            for (j, n) in self.names.iter().enumerate() {
                assert_eq!(
                    stored(m, n).await,
                    self.before[i][j],
                    "master {i}: victim key {:?} changed",
                    String::from_utf8_lossy(n)
                );
            }
            assert_eq!(meta_fields(m).await, self.meta[i], "master {i}: record");
        }
        match ok(c, &[b"LOCK.STATUS", b"x"]).await {
            Value::Array(items) => {
                assert_eq!(items[0], Value::BulkString(b"vo".to_vec()));
                assert_eq!(items[1], Value::Int(self.token));
            }
            other => panic!("victim status {other:?}"),
        }
    }
}

/// Names that aim at the gateway's own keys, or at the layout's corners.
fn hostile_names() -> Vec<Vec<u8>> {
    let rw = keys::rw(PREFIX, b"x");
    let sem = keys::sem(PREFIX, b"x");
    let mut out: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\x00\xff\r\nbin".to_vec(),
        b"{".to_vec(),
        b"}".to_vec(),
        b"{}".to_vec(),
        b"}{".to_vec(),
        b"a{}b}".to_vec(),
        b"{x}".to_vec(),
        b"{x}:fence".to_vec(),
        b"=x".to_vec(),
        b"#{#}x".to_vec(),
        b"c:{x}".to_vec(),
        b"i:fence:{x}".to_vec(),
        PREFIX.as_bytes().to_vec(),
        // The previous layout's internal names of the victims.
        format!("{PREFIX}fence:{{x}}").into_bytes(),
        format!("{PREFIX}meta").into_bytes(),
        format!("{PREFIX}holds:{{xr}}").into_bytes(),
        format!("{PREFIX}rw:{{x}}:r").into_bytes(),
        format!("{PREFIX}sem:{{x}}:h").into_bytes(),
    ];
    // The current layout's names, spelled out.
    for n in [
        keys::meta_key(PREFIX),
        keys::lock_key(PREFIX, b"x"),
        keys::fence_key(PREFIX, b"x"),
        keys::holds_key(PREFIX, b"xr"),
        rw.readers,
        rw.writer,
        rw.intent,
        sem.holders,
        sem.permits,
    ] {
        out.push(n.to_vec());
    }
    out
}

/// Every command family on one hostile name `h`: each behaves as on any
/// other name, and lands under the client namespace on the masters.
async fn families(c: &mut MultiplexedConnection, ms: &mut [MultiplexedConnection], h: &[u8]) {
    let hs = String::from_utf8_lossy(h).into_owned();
    // Plain lock, native.
    let (o, t) = grant(&ok(c, &[b"LOCK.ACQUIRE", h, b"10000", b"OWNER", b"ho"]).await);
    assert_eq!(o, b"ho", "{hs}");
    for m in ms.iter_mut() {
        let v: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&keys::lock_key(PREFIX, h)[..])
            .query_async(m)
            .await
            .expect("get");
        assert_eq!(
            v.as_deref(),
            Some(&b"ho"[..]),
            "{hs}: the lock key on a master"
        );
    }
    match ok(c, &[b"LOCK.STATUS", h]).await {
        Value::Array(items) => {
            assert_eq!(items[0], Value::BulkString(b"ho".to_vec()), "{hs}");
            assert_eq!(items[1], Value::Int(t), "{hs}");
        }
        other => panic!("{hs}: status {other:?}"),
    }
    assert!(
        int(&ok(c, &[b"LOCK.EXTEND", h, b"ho", b"10000"]).await) > 0,
        "{hs}"
    );
    assert_eq!(
        ok(c, &[b"LOCK.EXTEND", h, b"vo", b"10000"]).await,
        Value::Nil,
        "{hs}"
    );
    // Drop-in reads.
    assert_eq!(
        ok(c, &[b"GET", h]).await,
        Value::BulkString(b"ho".to_vec()),
        "{hs}"
    );
    assert_eq!(int(&ok(c, &[b"EXISTS", h]).await), 1, "{hs}");
    assert!(int(&ok(c, &[b"PTTL", h]).await) > 0, "{hs}");
    assert!(int(&ok(c, &[b"TTL", h]).await) >= 0, "{hs}");
    assert_eq!(int(&ok(c, &[b"LOCK.RELEASE", h, b"vo"]).await), 0, "{hs}");
    assert_eq!(int(&ok(c, &[b"LOCK.RELEASE", h, b"ho"]).await), 1, "{hs}");
    assert_eq!(int(&ok(c, &[b"EXISTS", h]).await), 0, "{hs}");
    assert_eq!(int(&ok(c, &[b"PTTL", h]).await), -2, "{hs}");
    assert_eq!(ok(c, &[b"GET", h]).await, Value::Nil, "{hs}");
    // Drop-in SET and a catalogued script.
    assert_eq!(
        ok(c, &[b"SET", h, b"sv", b"NX", b"PX", b"10000"]).await,
        Value::Okay,
        "{hs}"
    );
    assert_eq!(
        int(&ok(c, &[b"EVAL", REDIS_PY_RELEASE.as_bytes(), b"1", h, b"vo"]).await),
        0,
        "{hs}"
    );
    assert_eq!(
        int(&ok(c, &[b"EVAL", REDIS_PY_RELEASE.as_bytes(), b"1", h, b"sv"]).await),
        1,
        "{hs}"
    );
    // Reentrant.
    let r = ok(c, &[b"RLOCK.ACQUIRE", h, b"10000", b"OWNER", b"ho"]).await;
    let (_, rt) = grant(&r);
    assert!(rt > t, "{hs}: tokens of one name rise across kinds");
    ok(c, &[b"RLOCK.ACQUIRE", h, b"10000", b"OWNER", b"ho"]).await;
    assert!(
        int(&ok(c, &[b"RLOCK.EXTEND", h, b"ho", b"10000"]).await) > 0,
        "{hs}"
    );
    ok(c, &[b"RLOCK.STATUS", h]).await;
    ok(c, &[b"RLOCK.RELEASE", h, b"ho"]).await;
    ok(c, &[b"RLOCK.RELEASE", h, b"ho"]).await;
    assert_eq!(
        int(&ok(c, &[b"EXISTS", h]).await),
        0,
        "{hs}: reentrant released"
    );
    // Read-write.
    let (_, wt) = grant(&ok(c, &[b"RWLOCK.WRITE", h, b"10000", b"OWNER", b"ho"]).await);
    assert!(wt > rt, "{hs}");
    assert!(
        int(&ok(c, &[b"RWLOCK.EXTEND", h, b"ho", b"10000"]).await) > 0,
        "{hs}"
    );
    ok(c, &[b"RWLOCK.STATUS", h]).await;
    assert_eq!(int(&ok(c, &[b"RWLOCK.RELEASE", h, b"vo"]).await), 0, "{hs}");
    assert_eq!(int(&ok(c, &[b"RWLOCK.RELEASE", h, b"ho"]).await), 1, "{hs}");
    grant(&ok(c, &[b"RWLOCK.READ", h, b"10000", b"OWNER", b"ho"]).await);
    assert_eq!(int(&ok(c, &[b"RWLOCK.RELEASE", h, b"ho"]).await), 1, "{hs}");
    // Semaphore.
    let (_, st) = grant(&ok(c, &[b"SEM.ACQUIRE", h, b"2", b"10000", b"OWNER", b"ho"]).await);
    assert!(st > wt, "{hs}");
    assert!(
        int(&ok(c, &[b"SEM.EXTEND", h, b"ho", b"10000"]).await) > 0,
        "{hs}"
    );
    ok(c, &[b"SEM.STATUS", h]).await;
    assert_eq!(int(&ok(c, &[b"SEM.RELEASE", h, b"vo"]).await), 0, "{hs}");
    assert_eq!(int(&ok(c, &[b"SEM.RELEASE", h, b"ho"]).await), 1, "{hs}");
}

/// A gateway whose fence registers never expire: a register then carries
/// no TTL at all, so a client command that set one on it (the old
/// `LOCK.EXTEND` on a register's name) shows as a change.
fn forever(cluster: &Cluster) -> lockgate::config::Config {
    let mut cfg = test_config(cluster);
    cfg.lock.fence_retention = None;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_on_hostile_names_stays_in_the_client_namespace() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(forever(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let mut ms = masters(&cluster).await;
    let victims = Victims::take(&mut c, &mut ms).await;
    for h in hostile_names() {
        families(&mut c, &mut ms, &h).await;
        victims.untouched(&mut c, &mut ms).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_attacks_reach_nothing_internal() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(forever(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let mut ms = masters(&cluster).await;
    let victims = Victims::take(&mut c, &mut ms).await;
    let token = victims.token.to_string();
    let old_fence = format!("{PREFIX}fence:{{x}}").into_bytes();
    let new_fence = keys::fence_key(PREFIX, b"x").to_vec();
    let meta = keys::meta_key(PREFIX).to_vec();
    let old_meta = format!("{PREFIX}meta").into_bytes();

    // 1. SET on a fence register's name, then locks on other keys: before,
    //    every LOCK.ACQUIRE on every key answered NOQUORUM from then on.
    for name in [&old_fence, &new_fence, &meta, &old_meta] {
        assert_eq!(
            ok(
                &mut c,
                &[b"SET", name, MAX_TOKEN.as_bytes(), b"NX", b"PX", b"60000"]
            )
            .await,
            Value::Okay
        );
    }
    for k in [&b"y"[..], b"z", b"x2"] {
        let (_, t) = grant(&ok(&mut c, &[b"LOCK.ACQUIRE", k, b"5000"]).await);
        assert!(t > victims.token && t < 9_007_199_254_740_991);
    }
    victims.untouched(&mut c, &mut ms).await;

    // 2. LOCK.RELEASE / LOCK.EXTEND on a fence register's name with the
    //    token LOCK.STATUS shows: before, 1, and the register was deleted
    //    (or given an expiry) on every master.
    for name in [&old_fence, &new_fence, &meta] {
        assert_eq!(
            int(&ok(&mut c, &[b"LOCK.RELEASE", name, token.as_bytes()]).await),
            0
        );
        assert_eq!(
            ok(&mut c, &[b"LOCK.EXTEND", name, token.as_bytes(), b"1000"]).await,
            Value::Nil
        );
        assert_eq!(
            ok(&mut c, &[b"RLOCK.EXTEND", name, token.as_bytes(), b"1000"]).await,
            Value::Nil
        );
    }
    // The name's own client lock is what the owner of the SET releases.
    assert_eq!(
        int(&ok(&mut c, &[b"LOCK.RELEASE", &old_fence, MAX_TOKEN.as_bytes()]).await),
        1
    );
    victims.untouched(&mut c, &mut ms).await;

    // 3. Catalogued scripts on internal names.
    assert_eq!(
        int(&ok(
            &mut c,
            &[
                b"EVAL",
                REDIS_PY_RELEASE.as_bytes(),
                b"1",
                &new_fence,
                token.as_bytes()
            ]
        )
        .await),
        0
    );
    assert_eq!(
        int(&ok(
            &mut c,
            &[
                b"EVAL",
                NODE_REDLOCK_ACQUIRE.as_bytes(),
                b"2",
                &new_fence,
                b"lockgate:i:fence:{y}",
                b"me",
                b"5000"
            ]
        )
        .await),
        0,
        "the client lock named like x's register is still held by the SET"
    );
    assert_eq!(
        int(&ok(
            &mut c,
            &[
                b"EVAL",
                NODE_REDLOCK_ACQUIRE.as_bytes(),
                b"2",
                &old_meta,
                b"lockgate:i:fence:{y}",
                b"me",
                b"5000"
            ]
        )
        .await),
        0
    );
    assert_eq!(
        int(&ok(
            &mut c,
            &[
                b"EVAL",
                NODE_REDLOCK_ACQUIRE.as_bytes(),
                b"2",
                b"lockgate:i:fence:{y}",
                b"lockgate:i:rw:r:{x}",
                b"me",
                b"5000"
            ]
        )
        .await),
        2
    );
    // GET of a register's name reads the client lock of that name, never
    // the register.
    assert_eq!(
        ok(&mut c, &[b"GET", &new_fence]).await,
        Value::BulkString(MAX_TOKEN.as_bytes().to_vec())
    );
    assert_eq!(
        ok(&mut c, &[b"GET", b"lockgate:i:fence:{xr}"]).await,
        Value::Nil
    );
    assert_eq!(
        int(&ok(&mut c, &[b"EXISTS", b"lockgate:i:fence:{xr}"]).await),
        0
    );
    assert_eq!(
        int(&ok(&mut c, &[b"PTTL", b"lockgate:i:fence:{xr}"]).await),
        -2
    );
    victims.untouched(&mut c, &mut ms).await;

    // 4. BLPOP on a signal key naming an internal key waits on a client
    //    lock of that name: free, so it answers at once.
    let mut raw = RawConn::connect(gw.local_addr()).await;
    let signal = format!("lock-signal:{PREFIX}i:meta");
    assert_eq!(
        raw.cmd_str(&["BLPOP", &signal, "1"]).await,
        format!("*2\r\n${}\r\n{signal}\r\n$1\r\n1\r\n", signal.len())
    );

    // 5. KEEPALIVE renewals on a name that spells out x's register renew
    //    that client lock only.
    let kept = ok(
        &mut c,
        &[
            b"LOCK.ACQUIRE",
            b"lockgate:i:fence:{xr}",
            b"300",
            b"OWNER",
            b"k",
            b"KEEPALIVE",
        ],
    )
    .await;
    grant(&kept);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        int(&ok(&mut c, &[b"EXISTS", b"lockgate:i:fence:{xr}"]).await),
        1,
        "renewed past its ttl"
    );
    victims.untouched(&mut c, &mut ms).await;

    // After it all, x is released by its owner and its next token rises
    // above every earlier one: its register was never lost.
    assert_eq!(int(&ok(&mut c, &[b"LOCK.RELEASE", b"x", b"vo"]).await), 1);
    let (_, next) = grant(&ok(&mut c, &[b"LOCK.ACQUIRE", b"x", b"5000"]).await);
    assert!(next > victims.token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_at_the_end_of_the_token_space_refuses_its_own_key_only() {
    let cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    let mut c = client(gw.local_addr()).await;
    let mut ms = masters(&cluster).await;
    // An operator (no client can) writes x's register to 2^53 - 1.
    for m in ms.iter_mut() {
        let _: () = redis::cmd("SET")
            .arg(&keys::fence_key(PREFIX, b"x")[..])
            .arg(MAX_TOKEN)
            .query_async(m)
            .await
            .expect("set register");
    }
    let mut raw = RawConn::connect(gw.local_addr()).await;
    let refused = |cmd: &str| {
        format!("-ERR {cmd} 'x': fencing token space exhausted (a proposal would exceed 2^53)\r\n")
    };
    for _ in 0..3 {
        assert_eq!(
            raw.cmd_str(&["LOCK.ACQUIRE", "x", "5000"]).await,
            refused("lock.acquire")
        );
        // Other keys keep their tokens, far below the end.
        let (o, t) = grant(&ok(&mut c, &[b"LOCK.ACQUIRE", b"y", b"5000"]).await);
        assert!(t < 9_000_000_000_000_000);
        assert_eq!(int(&ok(&mut c, &[b"LOCK.RELEASE", b"y", &o]).await), 1);
    }
    assert_eq!(
        raw.cmd_str(&["LOCK.ACQUIRE", "x", "5000", "WAIT", "500"])
            .await,
        refused("lock.acquire")
    );
    assert_eq!(
        raw.cmd_str(&["RLOCK.ACQUIRE", "x", "5000", "OWNER", "o"])
            .await,
        refused("rlock.acquire")
    );
    assert_eq!(
        raw.cmd_str(&["RWLOCK.WRITE", "x", "5000"]).await,
        refused("rwlock.write")
    );
    assert_eq!(
        raw.cmd_str(&["SEM.ACQUIRE", "x", "2", "5000"]).await,
        refused("sem.acquire")
    );
    assert_eq!(
        raw.cmd_str(&["SET", "x", "v", "NX", "PX", "5000"]).await,
        refused("set")
    );
    for k in ["a", "b", "{x}", "x:other"] {
        grant(&ok(&mut c, &[b"LOCK.ACQUIRE", k.as_bytes(), b"5000"]).await);
    }
    // The register was not lowered or touched.
    for m in ms.iter_mut() {
        let v: String = redis::cmd("GET")
            .arg(&keys::fence_key(PREFIX, b"x")[..])
            .query_async(m)
            .await
            .expect("get register");
        assert_eq!(v, MAX_TOKEN);
    }
}
