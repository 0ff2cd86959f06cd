//! Frozen interfaces: the metric names and the error replies clients and
//! dashboards depend on, compared against golden files in `tests/golden/`.
//!
//! A refactor must not change either by accident. When a change is meant
//! (a new metric, a reworded error), regenerate the golden files and commit
//! them with the change, so the diff shows in review:
//!
//! ```text
//! LOCKGATE_BLESS=1 cargo test -p lockgate --test frozen
//! ```
//!
//! The error catalogue runs over raw RESP against a real gateway in front
//! of real `redis-server` masters, one fresh connection per case, so a
//! case's reply depends only on the case. Nothing here measures time.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lockgate::acl::sha256;
use lockgate::config::{Config, UserConfig};
use support::{raw_roundtrip, start_gateway, test_config, Cluster, RawConn};

const BLESS: &str = "LOCKGATE_BLESS";

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `actual` with the golden file `name`, or rewrites the file when
/// `LOCKGATE_BLESS=1`. On a mismatch, fails with the lines that differ.
fn check_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var(BLESS).is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, actual).expect("write golden file");
        eprintln!("blessed {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; generate it with {BLESS}=1 cargo test -p lockgate --test frozen",
            path.display()
        )
    });
    if expected == actual {
        return;
    }
    let diff = line_diff(&expected, actual);
    panic!(
        "{} no longer matches what the gateway does:\n{diff}\n\
         If this change is deliberate, regenerate the file and commit it with the change:\n  \
         {BLESS}=1 cargo test -p lockgate --test frozen",
        path.display()
    );
}

/// A line diff by longest common subsequence (the files are a few hundred
/// lines): `-` lines are in the golden file only, `+` lines only in what the
/// gateway does now.
fn line_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    out
}

// --- Metric names -----------------------------------------------------------

/// Labels whose values come from the test or the build, not from the
/// gateway's fixed tables: only their names are frozen.
const FREE_LABELS: &[&str] = &["master", "command", "version"];

/// Every family of a fresh registry, one line per family (`name type
/// labels`), then one indented line per label with a fixed set of values.
fn metric_catalogue() -> String {
    let m = lockgate::metrics::Metrics::new();
    // Labelled families appear only once a child exists; a running gateway
    // resolves every master's children at start and counts commands by name.
    let _ = m.master("127.0.0.1:7001");
    m.command("ping").inc();
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&m.registry.gather())
        .expect("encode");

    // family -> (type, label -> values)
    let mut families: BTreeMap<String, (String, BTreeMap<String, Vec<String>>)> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            current = name.to_string();
            families.insert(current.clone(), (kind.to_string(), BTreeMap::new()));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((_, labels)) = line.split_once('{') else {
            continue;
        };
        let labels = labels.split_once('}').expect("closing brace").0;
        let fam = &mut families.get_mut(&current).expect("samples follow TYPE").1;
        for pair in split_labels(labels) {
            let (k, v) = pair;
            if k == "le" {
                continue; // histogram buckets, not a label of the family
            }
            let values = fam.entry(k.clone()).or_default();
            if !FREE_LABELS.contains(&k.as_str()) && !values.contains(&v) {
                values.push(v);
            }
        }
    }

    let mut out = String::from(
        "# Metric families of a fresh lockgate::metrics::Metrics: name, type, label names;\n\
         # then each label with a fixed set of values. Generated by tests/frozen.rs.\n",
    );
    for (name, (kind, labels)) in &families {
        let names: Vec<&str> = labels.keys().map(String::as_str).collect();
        out.push_str(&format!("{name} {kind} [{}]\n", names.join(", ")));
        for (label, values) in labels {
            if values.is_empty() {
                continue;
            }
            let mut v = values.clone();
            v.sort();
            out.push_str(&format!("    {label}: {}\n", v.join(" ")));
        }
    }
    out
}

/// `a="x",b="y"` as pairs (values here hold no quotes or commas).
fn split_labels(s: &str) -> Vec<(String, String)> {
    s.split("\",")
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once("=\"").expect("label=\"value\"");
            (k.to_string(), v.trim_end_matches('"').to_string())
        })
        .collect()
}

#[test]
fn metric_names_are_frozen() {
    let cat = metric_catalogue();
    assert!(
        cat.lines().filter(|l| l.starts_with("lockgate_")).count() >= 20,
        "too few lockgate_ families found:\n{cat}"
    );
    check_golden("metrics.txt", &cat);
}

// --- Error replies ----------------------------------------------------------

/// One case: commands sent in order on one fresh connection; the reply to
/// the last is frozen (earlier ones set the state the error needs).
enum Case {
    Cmds(Vec<Vec<Vec<u8>>>),
    /// Bytes sent as they are (protocol errors); the frozen reply is
    /// everything the gateway sends before it closes.
    Raw(&'static str, Vec<u8>),
}

fn c(args: &[&str]) -> Case {
    Case::Cmds(vec![args.iter().map(|a| a.as_bytes().to_vec()).collect()])
}

fn seq(cmds: &[&[&str]]) -> Case {
    Case::Cmds(
        cmds.iter()
            .map(|args| args.iter().map(|a| a.as_bytes().to_vec()).collect())
            .collect(),
    )
}

/// A key of `n` bytes, past the test gateways' `max_key_bytes`.
fn long(n: usize) -> String {
    "k".repeat(n)
}

fn show_arg(a: &[u8]) -> String {
    if a.is_empty() {
        return "\"\"".into();
    }
    if a.len() > 40 {
        return format!("<{} bytes>", a.len());
    }
    let s = String::from_utf8_lossy(a);
    if s.chars().all(|ch| ch.is_ascii_graphic() && ch != '"') {
        s.into_owned()
    } else {
        format!("{:?}", s)
    }
}

fn show_reply(r: &[u8]) -> String {
    if r.is_empty() {
        return "(no reply)".into();
    }
    let s = String::from_utf8_lossy(r);
    let s = s.strip_suffix("\r\n").unwrap_or(&s);
    s.replace('\r', "\\r").replace('\n', "\\n")
}

impl Case {
    fn show(&self) -> String {
        match self {
            Case::Cmds(cmds) => cmds
                .iter()
                .map(|args| {
                    args.iter()
                        .map(|a| show_arg(a))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join(" ; "),
            Case::Raw(label, _) => format!("raw {label}"),
        }
    }

    async fn run(&self, addr: SocketAddr) -> Vec<u8> {
        match self {
            Case::Cmds(cmds) => {
                let mut conn = RawConn::connect(addr).await;
                let mut last = Vec::new();
                for args in cmds {
                    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                    last = conn.cmd(&args).await;
                }
                last
            }
            Case::Raw(_, bytes) => raw_roundtrip(addr, bytes).await,
        }
    }
}

/// Runs `cases` against `addr` and appends `command -> reply` lines; a case
/// whose reply is not an error goes to `not_errors` instead (only error
/// replies belong in the catalogue).
async fn record(
    out: &mut String,
    not_errors: &mut Vec<String>,
    section: &str,
    addr: SocketAddr,
    cases: &[Case],
) {
    out.push_str(&format!("\n# {section}\n"));
    for case in cases {
        let reply = case.run(addr).await;
        let line = format!("{} -> {}", case.show(), show_reply(&reply));
        if reply.first() == Some(&b'-') {
            out.push_str(&line);
            out.push('\n');
        } else {
            not_errors.push(line);
        }
    }
}

/// The limits the plain catalogue runs under, small enough to hit cheaply.
const MAX_KEY: usize = 16;
const MAX_WAIT_MS: u64 = 1000;

fn plain_config(cluster: &Cluster) -> Config {
    let mut c = test_config(cluster);
    c.limits.max_key_bytes = MAX_KEY;
    c.limits.max_args = 64;
    c.limits.max_bulk_bytes = 1024;
    c.limits.max_inline_bytes = 1024;
    c.lock.max_wait = Duration::from_millis(MAX_WAIT_MS);
    c.lock.set_without_ttl_uses_max = false;
    c
}

/// Recognised client-library scripts (sha1 of compat/catalogue.toml) and
/// whether each takes a TTL argument.
const SCRIPTS: &[(&str, bool)] = &[
    ("c3f8721cbb97f72bc19e972846bd7aaf91901658", false),
    ("a4e8783852e6b949f9ef3a97212805108459a890", true),
    ("1cac51482acf5858da00f6d685d68f886cd6b6b2", true),
    ("f5f7bd3a3aa4a63c507c1155c5ea1219b350d992", false),
    ("ba015a80261b616e7a62d35df0b8e3edbe6c9414", true),
    ("a4aada0b36710970eedaaaeec4a6b7d8c78c4f80", false),
    ("90da91872223f85eb1376a17e3c4df21ace8c54b", false),
    ("fed16109024d968d9496e4140fe1355bac05ebff", true),
    ("afbc8014508f92e446b56567e8ba600e811c1bd5", false),
    ("b121d3548d693116c3851b63befe947e49f28c7c", false),
    ("96da70f7716f27d278a5218544df37fd8b0a5e4c", true),
    ("aed6f382e410db8ba7926d4e5e9aab410bf2a78a", true),
    ("e4612211c9f8f51c257e26e056b0a654b3187242", false),
    ("e5a322e2634ef59a516e8ea150cb085afafee684", true),
    ("ce46f80993d5dac20dd066eb301a4e37994bdbed", true),
    ("0f0f23b9048b36752b5be114f357ba083449f908", false),
    ("e950836ed1e694540c503ef9972b8de518044d3b", false),
    ("00583931c4e4d483f6233879c133c71ed5393f9d", false),
    ("d75bb8b5bd13532ddedd17762e772346e39b321e", true),
    ("b6b55c439e02c6f52ffb8be7ec8c0d0ac816ea79", true),
    ("daf86bbf8740dd3ca86733367a016364b2110627", false),
    ("17a49af0c4b1a9034503fa84f3570f5ca76c4cbf", true),
    ("544c68b7ffd46e5d7ccc58a27204557efba43310", false),
    ("149c5a8bf18676fd99e9e6e24923bd64d9b62f94", false),
    ("6866459238a13a701d42f4971f12d9f3a50e2442", false),
    ("778cea8aada230ae060b432fc333adaec85f2f4c", false),
    ("3ffe249c16dee540ac8ab32e39bd408626b9aff7", false),
    ("605e338249a7a1d40df83b04f7658354f883b41b", false),
    ("6a3d31570dc6f4b0bd32bcdc8e75667747c6f635", false),
    ("8e19a1ddbdee9138df9f32a480c57addab4353d1", false),
    ("49babb5a1e6a0c5f188c2ae62b93b51cdfd63e45", false),
    ("46b5551ba403d6152a7a6eca122e08728d6c8c66", false),
];

/// Commands Redis has and lockgate refuses by name (one argument each).
const UNSUPPORTED: &[&str] = &[
    "DEL",
    "UNLINK",
    "INCR",
    "DECR",
    "INCRBY",
    "MGET",
    "MSET",
    "KEYS",
    "SCAN",
    "EXPIRE",
    "PEXPIRE",
    "PERSIST",
    "HSET",
    "HGET",
    "HGETALL",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "SADD",
    "ZADD",
    "FLUSHDB",
    "FLUSHALL",
    "MULTI",
    "EXEC",
    "WATCH",
    "UNWATCH",
    "DISCARD",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "PUBLISH",
    "WAIT",
    "CONFIG",
    "DEBUG",
    "SHUTDOWN",
    "MONITOR",
    "SYNC",
    "PSYNC",
    "REPLICAOF",
    "SLAVEOF",
    "CLUSTER",
    "FUNCTION",
    "FCALL",
    "TYPE",
    "RENAME",
    "GETSET",
    "GETDEL",
    "SETNX",
    "SETEX",
    "PSETEX",
    "APPEND",
    "BRPOP",
    "XADD",
    "XREAD",
    "SAVE",
    "BGSAVE",
    "LASTSAVE",
    "ROLE",
    "MEMORY",
    "SLOWLOG",
    "LATENCY",
    "OBJECT",
    "SWAPDB",
    "MOVE",
    "COPY",
    "ACL",
];

fn plain_cases() -> Vec<Case> {
    let lk = long(MAX_KEY + 1);
    let lk = lk.as_str();
    let sig = format!("lock-signal:{}", long(MAX_KEY));
    let mut v = vec![
        // Connection and introspection commands.
        c(&["PING", "a", "b"]),
        c(&["ECHO"]),
        c(&["ECHO", "a", "b"]),
        c(&["HELLO", "three"]),
        c(&["HELLO", "4"]),
        c(&["HELLO", "3", "FOO"]),
        c(&["HELLO", "3", "AUTH", "default"]),
        c(&["HELLO", "3", "SETNAME"]),
        c(&["HELLO", "3", "SETNAME", "a b"]),
        c(&["AUTH"]),
        c(&["AUTH", "a", "b", "c"]),
        c(&["AUTH", "pw"]),
        c(&["SELECT"]),
        c(&["SELECT", "x"]),
        c(&["SELECT", "1"]),
        c(&["RESET", "x"]),
        c(&["CLIENT"]),
        c(&["CLIENT", "SETNAME"]),
        c(&["CLIENT", "SETNAME", "a", "b"]),
        c(&["CLIENT", "SETNAME", "a b"]),
        c(&["CLIENT", "SETINFO", "LIB-NAME"]),
        c(&["CLIENT", "SETINFO", "COLOR", "blue"]),
        c(&["CLIENT", "SETINFO", "LIB-NAME", "a b"]),
        c(&["CLIENT", "NO-EVICT"]),
        c(&["CLIENT", "NO-EVICT", "maybe"]),
        c(&["CLIENT", "NO-TOUCH", "maybe"]),
        c(&["CLIENT", "KILL", "ID", "1"]),
        c(&["CLIENT", "PAUSE", "10"]),
        c(&["COMMAND", "FOO"]),
        c(&["COMMAND", "GETKEYS", "GET", "k"]),
        c(&["LOCK.TOKENS"]),
        c(&["LOCK.TOKENS", "MAYBE"]),
        c(&["LOCK.TOKENS", "ON", "OFF"]),
        // Unknown commands.
        c(&["FOO"]),
        c(&["FOO", "a", "b"]),
        c(&["LOCK.FOO", "k"]),
        c(&["FOO", "1", "2", "3", "4", "5", "6", "7", "8", "9"]),
        // LOCK.*
        c(&["LOCK.ACQUIRE"]),
        c(&["LOCK.ACQUIRE", "k"]),
        c(&["LOCK.ACQUIRE", "k", "x"]),
        c(&["LOCK.ACQUIRE", "k", "0"]),
        c(&["LOCK.ACQUIRE", "k", "-5"]),
        c(&["LOCK.ACQUIRE", "k", "+5"]),
        c(&["LOCK.ACQUIRE", "k", "1.5"]),
        c(&["LOCK.ACQUIRE", "k", "9223372036854775808"]),
        c(&["LOCK.ACQUIRE", "k", "60001"]),
        c(&["LOCK.ACQUIRE", "k", "1000", "OWNER"]),
        c(&["LOCK.ACQUIRE", "k", "1000", "OWNER", ""]),
        c(&["LOCK.ACQUIRE", "k", "1000", "OWNER", "a", "OWNER", "b"]),
        c(&["LOCK.ACQUIRE", "k", "1000", "WAIT"]),
        c(&["LOCK.ACQUIRE", "k", "1000", "WAIT", "x"]),
        c(&["LOCK.ACQUIRE", "k", "1000", "WAIT", "-1"]),
        c(&["LOCK.ACQUIRE", "k", "1000", "WAIT", "1", "WAIT", "2"]),
        c(&["LOCK.ACQUIRE", "k", "1000", "WAIT", "1001"]),
        c(&["LOCK.ACQUIRE", "k", "1000", "KEEPALIVE", "KEEPALIVE"]),
        c(&["LOCK.ACQUIRE", "k", "1000", "FOO", "bar"]),
        c(&["LOCK.ACQUIRE", "k", "1000", "FOO"]),
        c(&["LOCK.ACQUIRE", lk, "1000"]),
        c(&["LOCK.RELEASE"]),
        c(&["LOCK.RELEASE", "k"]),
        c(&["LOCK.RELEASE", "k", "o", "x"]),
        c(&["LOCK.RELEASE", lk, "o"]),
        c(&["LOCK.EXTEND", "k", "o"]),
        c(&["LOCK.EXTEND", "k", "o", "1", "x"]),
        c(&["LOCK.EXTEND", "k", "o", "x"]),
        c(&["LOCK.EXTEND", "k", "o", "0"]),
        c(&["LOCK.EXTEND", "k", "o", "60001"]),
        c(&["LOCK.EXTEND", lk, "o", "1000"]),
        c(&["LOCK.STATUS"]),
        c(&["LOCK.STATUS", "k", "x"]),
        c(&["LOCK.STATUS", lk]),
        // RLOCK.*
        c(&["RLOCK.ACQUIRE", "k"]),
        c(&["RLOCK.ACQUIRE", "k", "x", "OWNER", "o"]),
        c(&["RLOCK.ACQUIRE", "k", "0", "OWNER", "o"]),
        c(&["RLOCK.ACQUIRE", "k", "1000"]),
        c(&["RLOCK.ACQUIRE", "k", "1000", "OWNER", ""]),
        c(&["RLOCK.ACQUIRE", "k", "1000", "OWNER", "o", "KEEPALIVE"]),
        c(&["RLOCK.ACQUIRE", "k", "1000", "OWNER", "o", "WAIT", "-1"]),
        c(&["RLOCK.ACQUIRE", "k", "1000", "OWNER", "o", "WAIT", "1001"]),
        c(&["RLOCK.ACQUIRE", "k", "60001", "OWNER", "o"]),
        c(&["RLOCK.ACQUIRE", lk, "1000", "OWNER", "o"]),
        c(&["RLOCK.RELEASE", "k"]),
        c(&["RLOCK.RELEASE", lk, "o"]),
        c(&["RLOCK.EXTEND", "k", "o"]),
        c(&["RLOCK.EXTEND", "k", "o", "x"]),
        c(&["RLOCK.EXTEND", "k", "o", "0"]),
        c(&["RLOCK.EXTEND", "k", "o", "60001"]),
        c(&["RLOCK.EXTEND", lk, "o", "1000"]),
        c(&["RLOCK.STATUS"]),
        c(&["RLOCK.STATUS", lk]),
    ];
    // RWLOCK.READ and RWLOCK.WRITE take the same arguments.
    for cmd in ["RWLOCK.READ", "RWLOCK.WRITE"] {
        v.extend([
            c(&[cmd, "k"]),
            c(&[cmd, "k", "x"]),
            c(&[cmd, "k", "0"]),
            c(&[cmd, "k", "60001"]),
            c(&[cmd, "k", "1000", "OWNER"]),
            c(&[cmd, "k", "1000", "OWNER", ""]),
            c(&[cmd, "k", "1000", "WAIT", "-1"]),
            c(&[cmd, "k", "1000", "WAIT", "1001"]),
            c(&[cmd, "k", "1000", "KEEPALIVE"]),
            c(&[cmd, lk, "1000"]),
        ]);
    }
    v.extend([
        c(&["RWLOCK.RELEASE", "k"]),
        c(&["RWLOCK.RELEASE", lk, "o"]),
        c(&["RWLOCK.EXTEND", "k", "o"]),
        c(&["RWLOCK.EXTEND", "k", "o", "x"]),
        c(&["RWLOCK.EXTEND", "k", "o", "0"]),
        c(&["RWLOCK.EXTEND", "k", "o", "60001"]),
        c(&["RWLOCK.EXTEND", lk, "o", "1000"]),
        c(&["RWLOCK.STATUS"]),
        c(&["RWLOCK.STATUS", lk]),
        // SEM.*
        c(&["SEM.ACQUIRE", "s", "2"]),
        c(&["SEM.ACQUIRE", "s", "x", "1000"]),
        c(&["SEM.ACQUIRE", "s", "0", "1000"]),
        c(&["SEM.ACQUIRE", "s", "-1", "1000"]),
        c(&["SEM.ACQUIRE", "s", "1025", "1000"]),
        c(&["SEM.ACQUIRE", "s", "2", "x"]),
        c(&["SEM.ACQUIRE", "s", "2", "0"]),
        c(&["SEM.ACQUIRE", "s", "2", "60001"]),
        c(&["SEM.ACQUIRE", "s", "2", "1000", "OWNER"]),
        c(&["SEM.ACQUIRE", "s", "2", "1000", "OWNER", ""]),
        c(&["SEM.ACQUIRE", "s", "2", "1000", "WAIT", "-1"]),
        c(&["SEM.ACQUIRE", "s", "2", "1000", "WAIT", "1001"]),
        c(&["SEM.ACQUIRE", "s", "2", "1000", "KEEPALIVE"]),
        c(&["SEM.ACQUIRE", lk, "2", "1000"]),
        seq(&[
            &["SEM.ACQUIRE", "sem-mismatch", "2", "10000", "OWNER", "a"],
            &["SEM.ACQUIRE", "sem-mismatch", "3", "10000", "OWNER", "b"],
        ]),
        c(&["SEM.RELEASE", "s"]),
        c(&["SEM.RELEASE", lk, "o"]),
        c(&["SEM.EXTEND", "s", "o"]),
        c(&["SEM.EXTEND", "s", "o", "x"]),
        c(&["SEM.EXTEND", "s", "o", "0"]),
        c(&["SEM.EXTEND", "s", "o", "60001"]),
        c(&["SEM.EXTEND", lk, "o", "1000"]),
        c(&["SEM.STATUS"]),
        c(&["SEM.STATUS", "s", "x"]),
        c(&["SEM.STATUS", lk]),
        // The drop-in commands.
        c(&["SET", "k"]),
        c(&["SET", "k", "v"]),
        c(&["SET", "k", "v", "PX", "1000"]),
        c(&["SET", "k", "v", "NX", "XX", "PX", "1000"]),
        c(&["SET", "k", "v", "NX", "GET", "PX", "1000"]),
        c(&["SET", "k", "v", "NX", "KEEPTTL"]),
        c(&["SET", "k", "v", "NX", "PXAT", "1000"]),
        c(&["SET", "k", "v", "NX", "EXAT", "1000"]),
        c(&["SET", "k", "v", "NX", "PX"]),
        c(&["SET", "k", "v", "NX", "PX", "x"]),
        c(&["SET", "k", "v", "NX", "PX", "0"]),
        c(&["SET", "k", "v", "NX", "EX", "-1"]),
        c(&["SET", "k", "v", "NX", "PX", "9223372036854775808"]),
        c(&["SET", "k", "v", "NX", "PX", "1", "EX", "1"]),
        c(&["SET", "k", "v", "NX", "FOO"]),
        c(&["SET", "k", "v", "NX"]),
        c(&["SET", "k", "v", "NX", "PX", "60001"]),
        c(&["SET", "k", "v", "NX", "EX", "61"]),
        c(&["SET", lk, "v", "NX", "PX", "1000"]),
        c(&["GET"]),
        c(&["GET", "k", "x"]),
        c(&["GET", lk]),
        c(&["PTTL"]),
        c(&["PTTL", lk]),
        c(&["TTL"]),
        c(&["TTL", "k", "x"]),
        c(&["TTL", lk]),
        c(&["EXISTS"]),
        c(&["EXISTS", "k", lk]),
        c(&["BLPOP", "k"]),
        c(&["BLPOP", "k", "x"]),
        c(&["BLPOP", "k", "inf"]),
        c(&["BLPOP", "k", "-1"]),
        c(&["BLPOP", "k", "0.1"]),
        c(&["BLPOP", sig.as_str(), "0.1"]),
        // Scripts.
        c(&["EVAL"]),
        c(&["EVAL", "return 1"]),
        c(&["EVAL", "return 1", "x"]),
        c(&["EVAL", "return 1", "-1"]),
        c(&["EVAL", "return 1", "2", "k"]),
        c(&["EVAL", "return 1", "0"]),
        c(&["EVAL_RO", "return 1", "0"]),
        c(&["EVALSHA", "abc"]),
        c(&["EVALSHA", "abc", "x"]),
        c(&["EVALSHA", "abc", "1"]),
        c(&["EVALSHA", "abc", "0"]),
        c(&["EVALSHA_RO", "abc", "0"]),
        c(&["SCRIPT"]),
        c(&["SCRIPT", "LOAD"]),
        c(&["SCRIPT", "LOAD", "a", "b"]),
        c(&["SCRIPT", "EXISTS"]),
        c(&["SCRIPT", "KILL"]),
        c(&["SCRIPT", "DEBUG", "YES"]),
    ]);
    for (sha, ttl) in SCRIPTS {
        v.push(c(&["EVALSHA", sha, "0"]));
        v.push(c(&["EVALSHA", sha, "1", "k"]));
        v.push(c(&["EVALSHA", sha, "1", lk, "o", "1000", "0"]));
        if *ttl {
            v.push(c(&["EVALSHA", sha, "1", "k", "o", "0", "0"]));
            v.push(c(&["EVALSHA", sha, "1", "k", "o", "x", "0"]));
            v.push(c(&["EVALSHA", sha, "1", "k", "o", "60001", "0"]));
        }
    }
    for name in UNSUPPORTED {
        v.push(c(&[name, "k"]));
    }
    // Protocol errors close the connection after the reply.
    v.extend([
        Case::Raw("*x", b"*x\r\n".to_vec()),
        Case::Raw("*65 (max_args 64)", b"*65\r\n".to_vec()),
        Case::Raw("*1 +x", b"*1\r\n+x\r\n".to_vec()),
        Case::Raw("*1 $x", b"*1\r\n$x\r\n".to_vec()),
        Case::Raw("*1 $-1", b"*1\r\n$-1\r\n".to_vec()),
        Case::Raw(
            "*1 $1025 (max_bulk_bytes 1024)",
            b"*1\r\n$1025\r\n".to_vec(),
        ),
        Case::Raw("*1 $1 ab", b"*1\r\n$1\r\nab\r\n".to_vec()),
        Case::Raw("inline unbalanced quote", b"PING \"a\r\n".to_vec()),
        Case::Raw(
            "inline of 1025 bytes (max_inline_bytes 1024)",
            format!("PING {}\r\n", "a".repeat(1020)).into_bytes(),
        ),
        Case::Raw("inline unknown", b"FOO bar\r\n".to_vec()),
    ]);
    v
}

fn user(name: &str, pw: &str, families: &[&str], keys: &[&str], enabled: bool) -> UserConfig {
    UserConfig {
        name: name.into(),
        password_sha256: sha256(pw.as_bytes()),
        commands: families
            .iter()
            .map(|f| {
                lockgate::acl::Family::from_config(f).expect("family");
                (*f).to_string()
            })
            .collect(),
        keys: keys.iter().map(|k| (*k).to_string()).collect(),
        enabled,
    }
}

/// requirepass `s3cret`; alice may lock and read `jobs:*`; ops may only
/// administer; bob is disabled.
fn auth_config(cluster: &Cluster) -> Config {
    let mut c = test_config(cluster);
    c.requirepass = Some("s3cret".into());
    c.users = vec![
        user("alice", "pw-alice", &["lock", "read"], &["jobs:*"], true),
        user("ops", "pw-ops", &["admin"], &["*"], true),
        user("bob", "pw-bob", &["lock", "read", "admin"], &["*"], false),
    ];
    c
}

fn auth_cases() -> Vec<Case> {
    vec![
        c(&["LOCK.ACQUIRE", "jobs:1", "1000"]),
        c(&["GET", "k"]),
        c(&["LOCK.FOO"]),
        c(&["HELLO", "3"]),
        c(&["AUTH", "wrong"]),
        c(&["AUTH", "default", "wrong"]),
        c(&["AUTH", "nobody", "pw"]),
        c(&["AUTH", "bob", "pw-bob"]),
        c(&["HELLO", "3", "AUTH", "alice", "wrong"]),
        c(&["HELLO", "3", "AUTH", "bob", "pw-bob"]),
        seq(&[
            &["AUTH", "alice", "pw-alice"],
            &["LOCK.ACQUIRE", "other", "1000"],
        ]),
        seq(&[&["AUTH", "alice", "pw-alice"], &["GET", "other"]]),
        seq(&[
            &["AUTH", "alice", "pw-alice"],
            &["EXISTS", "jobs:1", "other"],
        ]),
        seq(&[&["AUTH", "alice", "pw-alice"], &["CLIENT", "LIST"]]),
        seq(&[&["AUTH", "alice", "pw-alice"], &["INFO"]]),
        seq(&[
            &["AUTH", "ops", "pw-ops"],
            &["LOCK.ACQUIRE", "jobs:1", "1000"],
        ]),
        seq(&[&["AUTH", "ops", "pw-ops"], &["LOCK.STATUS", "jobs:1"]]),
        seq(&[
            &["AUTH", "ops", "pw-ops"],
            &["SEM.ACQUIRE", "jobs:1", "2", "1000"],
        ]),
        seq(&[&["AUTH", "ops", "pw-ops"], &["EVALSHA", "abc", "0"]]),
        seq(&[&["AUTH", "s3cret"], &["LOCK.ACQUIRE", "k", "0"]]),
    ]
}

/// Commands that need the masters, refused once a quorum of them is gone.
fn no_quorum_cases() -> Vec<Case> {
    vec![
        c(&["LOCK.ACQUIRE", "k", "1000"]),
        c(&["LOCK.RELEASE", "k", "o"]),
        c(&["LOCK.EXTEND", "k", "o", "1000"]),
        c(&["LOCK.STATUS", "k"]),
        c(&["RLOCK.ACQUIRE", "k", "1000", "OWNER", "o"]),
        c(&["RLOCK.RELEASE", "k", "o"]),
        c(&["RLOCK.EXTEND", "k", "o", "1000"]),
        c(&["RLOCK.STATUS", "k"]),
        c(&["RWLOCK.READ", "k", "1000"]),
        c(&["RWLOCK.WRITE", "k", "1000"]),
        c(&["RWLOCK.RELEASE", "k", "o"]),
        c(&["RWLOCK.EXTEND", "k", "o", "1000"]),
        c(&["RWLOCK.STATUS", "k"]),
        c(&["SEM.ACQUIRE", "k", "2", "1000"]),
        c(&["SEM.RELEASE", "k", "o"]),
        c(&["SEM.EXTEND", "k", "o", "1000"]),
        c(&["SEM.STATUS", "k"]),
        c(&["SET", "k", "v", "NX", "PX", "1000"]),
        c(&["GET", "k"]),
        c(&["EXISTS", "k"]),
        c(&["PTTL", "k"]),
        c(&["TTL", "k"]),
        // redis-py's release script.
        c(&[
            "EVALSHA",
            "c3f8721cbb97f72bc19e972846bd7aaf91901658",
            "1",
            "k",
            "o",
        ]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_replies_are_frozen() {
    let mut out = String::from(
        "# Error replies of lockgate, one `command -> reply` line per case (the\n\
         # RESP error line without its CRLF). `a ; b` sends a then b on one\n\
         # connection and shows b's reply. Generated by tests/frozen.rs.\n",
    );

    let mut not_errors = Vec::new();
    let cluster = Cluster::start(3);
    let gw = start_gateway(plain_config(&cluster)).await;
    let section = format!(
        "3 masters; max_key_bytes {MAX_KEY}, max_wait {MAX_WAIT_MS} ms, ttl 1..60000 ms, \
         max_args 64, max_bulk_bytes 1024, max_inline_bytes 1024, set_without_ttl error"
    );
    record(
        &mut out,
        &mut not_errors,
        &section,
        gw.local_addr(),
        &plain_cases(),
    )
    .await;
    drop(gw);
    drop(cluster);

    let cluster = Cluster::start(3);
    let gw = start_gateway(auth_config(&cluster)).await;
    record(
        &mut out,
        &mut not_errors,
        "authentication: requirepass, alice (lock, read; jobs:*), ops (admin), bob (disabled)",
        gw.local_addr(),
        &auth_cases(),
    )
    .await;
    drop(gw);
    drop(cluster);

    let mut cluster = Cluster::start(3);
    let gw = start_gateway(test_config(&cluster)).await;
    cluster.masters[1].kill();
    cluster.masters[2].kill();
    // Until the gateway has seen both go, a round may still ask them and the
    // vote count in the reply would depend on which answer came first.
    let engine = gw.engine().clone();
    assert!(
        support::wait_until(Duration::from_secs(10), || engine.ready_masters() == 1).await,
        "the gateway did not notice the killed masters"
    );
    record(
        &mut out,
        &mut not_errors,
        "no quorum: 3 masters, 2 of them killed",
        gw.local_addr(),
        &no_quorum_cases(),
    )
    .await;
    drop(gw);

    assert!(
        not_errors.is_empty(),
        "these cases do not answer with an error:\n{}",
        not_errors.join("\n")
    );
    check_golden("errors.txt", &out);
}
