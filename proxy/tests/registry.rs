//! The command registry against every place that lists commands: the
//! parsers, the ACL families, `COMMAND` (`COUNT`, `INFO`, `DOCS`, `LIST`),
//! the per-command metric labels and the README's tables; and the shape of
//! `COMMAND INFO` against a real `redis-server`.
//!
//! [`problems`] runs the static checks over any list of rows, so the
//! negative controls can show that a row removed from the registry is
//! caught.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::Bytes;
use lockgate::acl::classify;
use lockgate::command::registry::{self, Command, Family, Keys, Metric, Route, COMMANDS};
use lockgate::command::{self, Request};
use lockgate::dev::LocalRedis;
use lockgate::resp::Reply;
use support::{start_gateway, test_config, Cluster, RawConn};

const ROUTES: [Route; 7] = [
    Route::Local,
    Route::Plain,
    Route::Reentrant,
    Route::RwLock,
    Route::Semaphore,
    Route::DropIn,
    Route::Script,
];

/// Arguments after the name with which each command parses. A new row
/// without an example fails [`every_row_parses_is_classified_and_documented`].
fn example(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "ping" | "quit" | "reset" | "info" | "time" | "dbsize" => &[],
        "echo" => &["x"],
        "hello" => &["3"],
        "auth" => &["pw"],
        "select" => &["0"],
        "client" => &["ID"],
        "command" => &["COUNT"],
        "lock.tokens" => &["ON"],
        "lock.acquire" | "rwlock.read" | "rwlock.write" => &["k", "100"],
        "rlock.acquire" => &["k", "100", "OWNER", "o"],
        "sem.acquire" => &["k", "2", "100"],
        "lock.release" | "rlock.release" | "rwlock.release" | "sem.release" => &["k", "o"],
        "lock.extend" | "rlock.extend" | "rwlock.extend" | "sem.extend" => &["k", "o", "100"],
        "lock.status" | "rlock.status" | "rwlock.status" | "sem.status" | "get" | "exists"
        | "pttl" | "ttl" => &["k"],
        "set" => &["k", "v", "NX", "PX", "100"],
        "blpop" => &["lock-signal:x", "1"],
        "eval" | "eval_ro" => &["return 1", "1", "k"],
        "evalsha" | "evalsha_ro" => &["abc", "1", "k"],
        "script" => &["LOAD", "x"],
        _ => return None,
    })
}

/// Arguments after `container sub` with which each subcommand parses.
fn sub_example(cmd: &str, sub: &str) -> Option<&'static [&'static str]> {
    Some(match (cmd, sub) {
        ("client", "getname" | "id" | "info" | "list")
        | ("command", "count" | "docs" | "info" | "list")
        | ("script", "flush") => &[],
        ("client", "setname") => &["x"],
        ("client", "setinfo") => &["LIB-NAME", "x"],
        ("client", "no-evict" | "no-touch") => &["ON"],
        ("script", "load") => &["return 1"],
        ("script", "exists") => &["abc"],
        _ => return None,
    })
}

fn args(parts: &[&str]) -> Vec<Bytes> {
    parts
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect()
}

/// Whether some parser, asked directly (not through the registry), knows
/// `name`: anything but "not mine".
fn a_parser_knows(name: &str) -> bool {
    let a = args(&[name]);
    ROUTES
        .iter()
        .any(|r| !matches!(command::parse_route(*r, &a[0], &a), Ok(None)))
}

/// String literals of the parser sources that could be command names
/// (`"RWLOCK.READ"`, `"EVAL_RO"` ...), wherever the parsers live.
fn names_in_parser_sources() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(std::fs::read_to_string(&p).expect("read source"));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = Vec::new();
    walk(&root.join("command"), &mut sources);
    walk(&root.join("kinds"), &mut sources);
    let mut names = BTreeSet::new();
    for s in &sources {
        for lit in s.split('"').skip(1).step_by(2) {
            let ok = !lit.is_empty()
                && lit.len() <= 32
                && lit.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && lit
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
            if ok {
                names.insert(lit.to_ascii_lowercase());
            }
        }
    }
    assert!(
        names.contains("lock.acquire") && names.contains("sem.status"),
        "the scan found the parsers"
    );
    names
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
        .expect("README.md")
}

/// Everything wrong between `rows` and the parsers, the ACL and the README.
fn problems(rows: &[Command], readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let find = |n: &str| registry::find_in(rows, n.as_bytes());
    let mut candidates = names_in_parser_sources();
    candidates.extend(registry::UNSUPPORTED.iter().map(|u| u.to_ascii_lowercase()));
    candidates.extend(COMMANDS.iter().map(|c| c.name.to_string()));
    for name in &candidates {
        if a_parser_knows(name) && find(name).is_none() {
            out.push(format!(
                "a parser accepts {name} but the registry has no row"
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for c in rows {
        if !seen.insert(c.name) {
            out.push(format!("{}: two rows", c.name));
        }
        if c.name != c.name.to_ascii_lowercase() {
            out.push(format!("{}: names are lowercase", c.name));
        }
        if registry::is_unsupported(c.name.as_bytes()) {
            out.push(format!("{}: served and listed as unsupported", c.name));
        }
        let movable = c.flags.contains(&"movablekeys");
        if movable != matches!(c.keys, Keys::KeyNum { .. }) {
            out.push(format!(
                "{}: movablekeys iff the keys follow a count",
                c.name
            ));
        }
        if (c.keys == Keys::None) != c.key_flags.is_empty() {
            out.push(format!("{}: key flags iff keys", c.name));
        }
        if c.metric != Metric::Own {
            out.push(format!("{}: no metric label of its own", c.name));
        }
        let Some(ex) = example(c.name) else {
            out.push(format!("{}: no example in this test", c.name));
            continue;
        };
        let mut full = vec![c.name];
        full.extend_from_slice(ex);
        let a = args(&full);
        match command::parse_route(c.route, &a[0], &a) {
            Ok(Some(_)) => {}
            other => out.push(format!("{}: its route's parser answers {other:?}", c.name)),
        }
        if classify(&a) != c.family {
            out.push(format!(
                "{}: the ACL classifies it as {:?}",
                c.name,
                classify(&a)
            ));
        }
        let usage = format!("| `{}` |", c.usage.replace('|', "\\|"));
        if !readme.contains(&usage) {
            out.push(format!(
                "{}: missing from the README's command reference",
                c.name
            ));
        }
        for s in c.subs {
            let Some(ex) = sub_example(c.name, s.name) else {
                out.push(format!("{}|{}: no example in this test", c.name, s.name));
                continue;
            };
            let mut full = vec![c.name, s.name];
            full.extend_from_slice(ex);
            let a = args(&full);
            match command::parse_route(c.route, &a[0], &a) {
                Ok(Some(_)) => {}
                other => out.push(format!("{}|{}: parser answers {other:?}", c.name, s.name)),
            }
            if classify(&a) != s.family {
                out.push(format!(
                    "{}|{}: the ACL says {:?}",
                    c.name,
                    s.name,
                    classify(&a)
                ));
            }
        }
    }
    out
}

#[test]
fn every_row_parses_is_classified_and_documented() {
    let p = problems(COMMANDS, &readme());
    assert!(p.is_empty(), "{}", p.join("\n"));
}

#[test]
fn a_row_removed_from_the_registry_is_caught() {
    let readme = readme();
    for gone in ["eval_ro", "sem.status", "lock.tokens", "blpop"] {
        let rows: Vec<Command> = COMMANDS
            .iter()
            .filter(|c| c.name != gone)
            .copied()
            .collect();
        let p = problems(&rows, &readme);
        assert!(
            p.iter()
                .any(|l| l == &format!("a parser accepts {gone} but the registry has no row")),
            "{gone}: {p:?}"
        );
    }
    // A row the README lacks, and a row without its own metric label.
    let mut rows = COMMANDS.to_vec();
    rows[0].usage = "PING [message] [again]";
    rows[1].metric = Metric::Other;
    let p = problems(&rows, &readme);
    assert!(
        p.iter()
            .any(|l| l.contains("ping: missing from the README")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|l| l.contains("echo: no metric label")),
        "{p:?}"
    );
}

#[test]
fn names_with_no_row_keep_their_errors() {
    let err = |parts: &[&str]| match command::parse(&args(parts)) {
        Err(Reply::Error(e)) => String::from_utf8_lossy(&e).into_owned(),
        other => panic!("{parts:?}: {other:?}"),
    };
    assert_eq!(
        err(&["FOO", "a"]),
        "ERR unknown command 'FOO', with args beginning with: 'a' "
    );
    for u in registry::UNSUPPORTED {
        assert!(err(&[u]).contains("is not supported by lockgate"), "{u}");
        assert_eq!(classify(&args(&[u])), Family::Admin, "{u} fails closed");
    }
    assert_eq!(classify(&args(&["RWLOCK.ACQUIRE", "k"])), Family::Admin);
    assert!(matches!(
        command::parse(&args(&["eval_ro", "return 1", "0"])),
        Ok(Request::Script(_))
    ));
}

/// The byte range between the `registry:{tag}` markers.
fn span(text: &str, tag: &str) -> (usize, usize) {
    let begin = format!("<!-- registry:{tag} begin -->\n");
    let end = format!("<!-- registry:{tag} end -->");
    let a = text.find(&begin).expect("begin marker") + begin.len();
    let b = text.find(&end).expect("end marker");
    assert!(a <= b, "markers in order");
    (a, b)
}

fn between<'a>(text: &'a str, tag: &str) -> &'a str {
    let (a, b) = span(text, tag);
    &text[a..b]
}

/// The README's tables are generated from the registry; run with
/// `LOCKGATE_WRITE_README=1` to rewrite them after changing a row.
#[test]
fn readme_tables_are_generated_from_the_registry() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let mut text = readme();
    let tables = [
        ("commands", registry::readme_reference()),
        ("families", registry::readme_families()),
    ];
    if std::env::var_os("LOCKGATE_WRITE_README").is_some() {
        for (tag, want) in &tables {
            let (a, b) = span(&text, tag);
            text.replace_range(a..b, want);
        }
        std::fs::write(&path, &text).expect("write README");
    }
    for (tag, want) in &tables {
        assert_eq!(
            between(&text, tag),
            want,
            "README.md's {tag} table is stale; rerun with LOCKGATE_WRITE_README=1"
        );
    }
}

// --- Replies over the wire ---------------------------------------------------

/// A RESP2/RESP3 value with its type kept, for comparing shapes.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(String),
    Null,
    Array(Vec<V>),
    Set(Vec<V>),
    Map(Vec<(V, V)>),
}

impl V {
    fn tag(&self) -> &'static str {
        match self {
            V::Simple(_) => "simple",
            V::Error(_) => "error",
            V::Int(_) => "int",
            V::Bulk(_) => "bulk",
            V::Null => "null",
            V::Array(_) => "array",
            V::Set(_) => "set",
            V::Map(_) => "map",
        }
    }

    fn items(&self) -> &[V] {
        match self {
            V::Array(v) | V::Set(v) => v,
            other => panic!("not an aggregate: {other:?}"),
        }
    }

    fn text(&self) -> String {
        match self {
            V::Simple(s) | V::Bulk(s) => s.clone(),
            other => panic!("not a string: {other:?}"),
        }
    }

    fn int(&self) -> i64 {
        match self {
            V::Int(i) => *i,
            other => panic!("not an integer: {other:?}"),
        }
    }

    fn strings(&self) -> BTreeSet<String> {
        self.items().iter().map(V::text).collect()
    }

    /// A key spec map without `notes` (free text Redis adds to some).
    fn without_notes(&self) -> V {
        match self {
            V::Map(kv) => V::Map(
                kv.iter()
                    .filter(|(k, _)| k.text() != "notes")
                    .cloned()
                    .collect(),
            ),
            // RESP2: a flat array of pairs.
            V::Array(v) => V::Array(
                v.chunks(2)
                    .filter(|p| p[0].text() != "notes")
                    .flatten()
                    .cloned()
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

fn parse_value(b: &[u8], pos: &mut usize) -> V {
    let end = *pos
        + b[*pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("line");
    let tag = b[*pos];
    let line = String::from_utf8_lossy(&b[*pos + 1..end]).into_owned();
    *pos = end + 2;
    let n = || line.parse::<i64>().expect("length");
    let many = |count: i64, pos: &mut usize| (0..count).map(|_| parse_value(b, pos)).collect();
    match tag {
        b'+' => V::Simple(line),
        b'-' => V::Error(line),
        b':' => V::Int(n()),
        b'_' => V::Null,
        b'$' if n() < 0 => V::Null,
        b'*' if n() < 0 => V::Null,
        b'$' => {
            let len = usize::try_from(n()).expect("len");
            let s = String::from_utf8_lossy(&b[*pos..*pos + len]).into_owned();
            *pos += len + 2;
            V::Bulk(s)
        }
        b'*' => V::Array(many(n(), pos)),
        b'~' => V::Set(many(n(), pos)),
        b'%' => {
            let v: Vec<V> = many(n() * 2, pos);
            V::Map(v.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect())
        }
        other => panic!("unexpected RESP type {}", other as char),
    }
}

async fn ask(conn: &mut RawConn, parts: &[&str]) -> V {
    let raw: Vec<&[u8]> = parts.iter().map(|a| a.as_bytes()).collect();
    let bytes = conn.cmd(&raw).await;
    let mut pos = 0;
    let v = parse_value(&bytes, &mut pos);
    assert_eq!(pos, bytes.len(), "one frame");
    v
}

/// Pairs of a map, or of a RESP2 flat array.
fn pairs_of(v: &V) -> Vec<(V, V)> {
    match v {
        V::Map(kv) => kv.clone(),
        V::Array(items) => items
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
        other => panic!("not a map: {other:?}"),
    }
}

fn all_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for c in COMMANDS {
        names.insert(c.name.to_string());
        for s in c.subs {
            names.insert(format!("{}|{}", c.name, s.name));
        }
    }
    names
}

#[tokio::test]
async fn command_answers_for_every_row_and_every_row_is_counted() {
    let cluster = Cluster::start(1);
    let gw = start_gateway(test_config(&cluster)).await;
    for proto in ["2", "3"] {
        let mut c = RawConn::connect(gw.local_addr()).await;
        ask(&mut c, &["HELLO", proto]).await;
        let count = ask(&mut c, &["COMMAND", "COUNT"]).await;
        assert_eq!(count, V::Int(i64::try_from(COMMANDS.len()).expect("count")));
        assert!(COMMANDS.len() >= 41, "every served command is a row");

        let listed = ask(&mut c, &["COMMAND", "LIST"]).await.strings();
        assert_eq!(listed, all_names(), "COMMAND LIST, RESP{proto}");
        let filtered = ask(&mut c, &["COMMAND", "LIST", "FILTERBY", "PATTERN", "SEM.*"]).await;
        assert_eq!(filtered.items().len(), 4, "{filtered:?}");

        let mut q = vec!["COMMAND", "INFO"];
        q.extend(COMMANDS.iter().map(|c| c.name));
        q.push("nosuch");
        q.push("client|list");
        let infos = ask(&mut c, &q).await;
        let infos = infos.items();
        assert_eq!(infos.len(), COMMANDS.len() + 2);
        for (row, info) in COMMANDS.iter().zip(infos) {
            let i = info.items();
            assert_eq!(i.len(), 10, "{}", row.name);
            assert_eq!(i[0].text(), row.name);
            assert_eq!(i[1].int(), row.arity, "{}", row.name);
            let flags = i[2].strings();
            assert_eq!(flags, row.flags.iter().map(|f| f.to_string()).collect());
            let (first, last, step) = row.keys.triple();
            assert_eq!((i[3].int(), i[4].int(), i[5].int()), (first, last, step));
            assert_eq!(
                i[8].items().is_empty(),
                row.keys == Keys::None,
                "{}",
                row.name
            );
            assert_eq!(i[9].items().len(), row.subs.len(), "{}", row.name);
            let set = if proto == "3" { "set" } else { "array" };
            assert_eq!(i[2].tag(), set, "flags are a set");
            assert_eq!(i[6].tag(), set, "categories are a set");
        }
        assert_eq!(infos[COMMANDS.len()], V::Null, "unknown names are nil");
        assert_eq!(infos[COMMANDS.len() + 1].items()[0].text(), "client|list");

        let all = ask(&mut c, &["COMMAND"]).await;
        assert_eq!(all.items().len(), COMMANDS.len());
        let bare_info = ask(&mut c, &["COMMAND", "INFO"]).await;
        assert_eq!(bare_info, all, "COMMAND INFO with no names is COMMAND");

        let docs = pairs_of(&ask(&mut c, &["COMMAND", "DOCS", "get", "nosuch", "client"]).await);
        let names: Vec<String> = docs.iter().map(|(k, _)| k.text()).collect();
        assert_eq!(names, ["get", "client"], "unknown names are left out");
        let get: BTreeMap<String, V> = pairs_of(&docs[0].1)
            .into_iter()
            .map(|(k, v)| (k.text(), v))
            .collect();
        assert_eq!(get["summary"].text(), "The owner a quorum agrees on");
        let client: BTreeMap<String, V> = pairs_of(&docs[1].1)
            .into_iter()
            .map(|(k, v)| (k.text(), v))
            .collect();
        assert_eq!(pairs_of(&client["subcommands"]).len(), 8);
        let every = pairs_of(&ask(&mut c, &["COMMAND", "DOCS"]).await);
        assert_eq!(every.len(), COMMANDS.len());
    }

    // Every row has its own label from the start, at 0.
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&gw.metrics().registry.gather())
        .expect("encode");
    for row in COMMANDS {
        let label = format!("lockgate_commands_total{{command=\"{}\"}}", row.name);
        assert!(text.contains(&label), "{label}");
    }
    let mut c = RawConn::connect(gw.local_addr()).await;
    ask(&mut c, &["EVAL_RO", "return 1", "0"]).await;
    ask(&mut c, &["evalsha_ro", "abc", "0"]).await;
    for n in ["eval_ro", "evalsha_ro"] {
        assert_eq!(
            gw.metrics().command(n).get(),
            1,
            "{n} counts under its own label"
        );
    }
}

/// Commands both lockgate and Redis serve: their `COMMAND INFO` entries
/// must agree in arity, flags, key triple and key specs, in both protocols.
#[tokio::test]
async fn command_info_has_the_shape_of_a_real_redis() {
    let redis = LocalRedis::start().expect("redis-server must be installed");
    let cluster = Cluster::start(1);
    let gw = start_gateway(test_config(&cluster)).await;
    let redis_addr = redis.address().parse().expect("address");
    let mut compared = 0;
    for proto in ["2", "3"] {
        let mut ours = RawConn::connect(gw.local_addr()).await;
        let mut theirs = RawConn::connect(redis_addr).await;
        ask(&mut ours, &["HELLO", proto]).await;
        ask(&mut theirs, &["HELLO", proto]).await;
        for row in COMMANDS {
            let q = ["COMMAND", "INFO", row.name];
            let t = ask(&mut theirs, &q).await;
            let t = &t.items()[0];
            if *t == V::Null {
                continue; // a lockgate command (LOCK.*, SEM.* ...)
            }
            let o = ask(&mut ours, &q).await;
            let o = &o.items()[0];
            let (oi, ti) = (o.items(), t.items());
            assert_eq!(oi.len(), ti.len(), "{}", row.name);
            for (k, (a, b)) in oi.iter().zip(ti).enumerate() {
                assert_eq!(a.tag(), b.tag(), "{} element {k}, RESP{proto}", row.name);
            }
            assert_eq!(oi[0], ti[0]);
            assert_eq!(oi[1], ti[1], "{} arity", row.name);
            assert_eq!(oi[2].strings(), ti[2].strings(), "{} flags", row.name);
            assert_eq!(oi[3..6], ti[3..6], "{} key triple", row.name);
            let specs = |v: &V| v.items().iter().map(V::without_notes).collect::<Vec<_>>();
            assert_eq!(specs(&oi[8]), specs(&ti[8]), "{} key specs", row.name);
            // The subcommands both serve (this Redis may predate some).
            for s in oi[9].items() {
                let name = s.items()[0].text();
                if let Some(r) = ti[9].items().iter().find(|r| r.items()[0].text() == name) {
                    assert_eq!(s.items()[1], r.items()[1], "{name} arity");
                    assert_eq!(
                        s.items()[2].strings(),
                        r.items()[2].strings(),
                        "{name} flags"
                    );
                    assert_eq!(s.items()[3..6], r.items()[3..6], "{name} keys");
                }
            }
            compared += 1;
        }
        // Unknown names: the same nil in each protocol.
        let q = ["COMMAND", "INFO", "nosuch"];
        assert_eq!(ask(&mut ours, &q).await, ask(&mut theirs, &q).await);
        let q = ["COMMAND", "DOCS", "nosuch"];
        assert_eq!(ask(&mut ours, &q).await, ask(&mut theirs, &q).await);
    }
    // get, set, ping and the other commands lock clients share with Redis.
    assert!(compared >= 2 * 20, "compared {compared}");
}
