//! Replies to the commands the gateway answers itself.
//!
//! The server identifies as Redis 7.2 in HELLO and INFO, because client
//! libraries gate features on that version; the real identity is in the
//! `lockgate` INFO section. Credentials are checked by [`super::auth`].
//! `COMMAND` and its subcommands answer from the command registry
//! ([`crate::command::registry`]) in the shapes Redis 7 uses.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::state::ConnState;
use super::Shared;
use crate::acl::glob_match;
use crate::command::registry::{self, Command, Keys, Sub, COMMANDS};
use crate::command::{is, ClientSub, HelloArgs, ListFilter, Local};
use crate::resp::{Protocol, Reply};

/// The Redis version the gateway claims to be compatible with.
pub const REDIS_COMPAT_VERSION: &str = "7.2.0";

fn simple_set(items: &[&'static str]) -> Reply {
    Reply::Set(
        items
            .iter()
            .map(|f| Reply::Simple(Bytes::from_static(f.as_bytes())))
            .collect(),
    )
}

fn pairs(kv: Vec<(&'static str, Reply)>) -> Reply {
    Reply::Map(kv.into_iter().map(|(k, v)| (Reply::bulk(k), v)).collect())
}

/// The key specifications of `c`, shaped as Redis 7 shapes them.
fn key_specs(c: &Command) -> Reply {
    let (begin, find) = match c.keys {
        Keys::None => return Reply::Set(Vec::new()),
        Keys::Range { index, last, step } => (
            index,
            pairs(vec![
                ("type", Reply::bulk("range")),
                (
                    "spec",
                    pairs(vec![
                        ("lastkey", Reply::Int(last)),
                        ("keystep", Reply::Int(step)),
                        ("limit", Reply::Int(0)),
                    ]),
                ),
            ]),
        ),
        Keys::KeyNum { index } => (
            index,
            pairs(vec![
                ("type", Reply::bulk("keynum")),
                (
                    "spec",
                    pairs(vec![
                        ("keynumidx", Reply::Int(0)),
                        ("firstkey", Reply::Int(1)),
                        ("keystep", Reply::Int(1)),
                    ]),
                ),
            ]),
        ),
    };
    Reply::Set(vec![pairs(vec![
        ("flags", simple_set(c.key_flags)),
        (
            "begin_search",
            pairs(vec![
                ("type", Reply::bulk("index")),
                ("spec", pairs(vec![("index", Reply::Int(begin))])),
            ]),
        ),
        ("find_keys", find),
    ])])
}

/// A `COMMAND INFO` entry: name, arity, flags, first key, last key, step,
/// ACL categories, tips, key specs, subcommands.
fn command_info(c: &Command) -> Reply {
    let (first, last, step) = c.keys.triple();
    Reply::Array(vec![
        Reply::bulk(c.name),
        Reply::Int(c.arity),
        simple_set(c.flags),
        Reply::Int(first),
        Reply::Int(last),
        Reply::Int(step),
        simple_set(&c.categories()),
        Reply::Set(Vec::new()),
        key_specs(c),
        subcommands(c),
    ])
}

/// Redis answers an empty set for a command without subcommands, and an
/// array of their entries otherwise.
fn subcommands(c: &Command) -> Reply {
    if c.subs.is_empty() {
        return Reply::Set(Vec::new());
    }
    Reply::Array(c.subs.iter().map(|s| sub_info(c, s)).collect())
}

fn sub_info(c: &Command, s: &Sub) -> Reply {
    Reply::Array(vec![
        Reply::bulk(format!("{}|{}", c.name, s.name)),
        Reply::Int(s.arity),
        simple_set(s.flags),
        Reply::Int(0),
        Reply::Int(0),
        Reply::Int(0),
        simple_set(&s.categories(c)),
        Reply::Set(Vec::new()),
        Reply::Set(Vec::new()),
        Reply::Set(Vec::new()),
    ])
}

/// `name` or `container|sub`, as `COMMAND INFO` and `DOCS` take them.
fn lookup(name: &[u8]) -> Option<(&'static Command, Option<&'static Sub>)> {
    match name.iter().position(|&b| b == b'|') {
        None => registry::find(name).map(|c| (c, None)),
        Some(i) => {
            let c = registry::find(&name[..i])?;
            Some((c, Some(c.sub(&name[i + 1..])?)))
        }
    }
}

fn info_of(name: &[u8]) -> Reply {
    match lookup(name) {
        Some((c, None)) => command_info(c),
        Some((c, Some(s))) => sub_info(c, s),
        // Redis answers a nil for each unknown name.
        None => Reply::Nil,
    }
}

fn command_docs(c: &Command) -> Reply {
    let mut kv = vec![
        ("summary", Reply::bulk(c.summary)),
        ("group", Reply::bulk(c.group)),
    ];
    if !c.subs.is_empty() {
        kv.push((
            "subcommands",
            Reply::Map(
                c.subs
                    .iter()
                    .map(|s| {
                        (
                            Reply::bulk(format!("{}|{}", c.name, s.name)),
                            sub_docs(c, s),
                        )
                    })
                    .collect(),
            ),
        ));
    }
    pairs(kv)
}

fn sub_docs(c: &Command, s: &Sub) -> Reply {
    pairs(vec![
        ("summary", Reply::bulk(s.summary)),
        ("group", Reply::bulk(c.group)),
    ])
}

/// `COMMAND DOCS`: a map from name to docs; unknown names are left out.
fn docs(names: &[Bytes]) -> Reply {
    let entry = |c: &Command, s: Option<&Sub>| match s {
        None => (Reply::bulk(c.name), command_docs(c)),
        Some(s) => (
            Reply::bulk(format!("{}|{}", c.name, s.name)),
            sub_docs(c, s),
        ),
    };
    if names.is_empty() {
        return Reply::Map(COMMANDS.iter().map(|c| entry(c, None)).collect());
    }
    Reply::Map(
        names
            .iter()
            .filter_map(|n| lookup(n))
            .map(|(c, s)| entry(c, s))
            .collect(),
    )
}

/// Every command name and `container|sub` name, as `COMMAND LIST` lists
/// them, with the ACL categories each is filtered by.
fn list(filter: Option<&ListFilter>) -> Reply {
    let mut out = Vec::new();
    for c in COMMANDS {
        let mut names = vec![(c.name.to_string(), c.categories())];
        names.extend(
            c.subs
                .iter()
                .map(|s| (format!("{}|{}", c.name, s.name), s.categories(c))),
        );
        for (name, cats) in names {
            let keep = match filter {
                None => true,
                // The gateway loads no modules.
                Some(ListFilter::Module(_)) => false,
                Some(ListFilter::AclCat(cat)) => cats
                    .iter()
                    .any(|k| k.as_bytes()[1..].eq_ignore_ascii_case(cat)),
                Some(ListFilter::Pattern(p)) => {
                    glob_match(&p.to_ascii_lowercase(), name.as_bytes())
                }
            };
            if keep {
                out.push(Reply::bulk(name));
            }
        }
    }
    Reply::Array(out)
}

fn command_all() -> Reply {
    Reply::Array(COMMANDS.iter().map(command_info).collect())
}

fn hello_map(state: &ConnState) -> Reply {
    Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(REDIS_COMPAT_VERSION)),
        (
            Reply::bulk("proto"),
            Reply::Int(if state.proto == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (
            Reply::bulk("id"),
            Reply::Int(i64::try_from(state.id).unwrap_or(i64::MAX)),
        ),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk("master")),
        (Reply::bulk("modules"), Reply::Array(Vec::new())),
    ])
}

fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

fn set_name(state: &ConnState, name: &Bytes) -> Result<(), Reply> {
    if !valid_client_name(name) {
        return Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    if let Ok(mut m) = state.entry.meta.lock() {
        m.name = (!name.is_empty()).then(|| name.clone());
    }
    Ok(())
}

/// Answers a local command, updating connection state where it must.
pub fn answer(shared: &Shared, state: &mut ConnState, cmd: Local) -> Reply {
    match cmd {
        Local::Ping(None) => Reply::simple("PONG"),
        Local::Ping(Some(m)) | Local::Echo(m) => Reply::Bulk(m),
        Local::Hello(h) => hello(shared, state, h),
        Local::Auth { user, pass } => {
            match super::auth::login(shared, state, user.as_deref(), &pass) {
                Ok(()) => Reply::Ok,
                Err(e) => e,
            }
        }
        Local::Select(0) => Reply::Ok,
        Local::Select(_) => Reply::error("ERR DB index is out of range"),
        Local::Quit => Reply::Ok,
        Local::LockTokens(on) => {
            state.token_attribute = on;
            Reply::Ok
        }
        Local::Reset => {
            state.proto = Protocol::Resp2;
            state.token_attribute = false;
            state.authed = !crate::acl::required(&shared.config());
            state.user = None;
            if let Ok(mut m) = state.entry.meta.lock() {
                m.name = None;
                m.resp = 2;
            }
            Reply::simple("RESET")
        }
        Local::Client(sub) => client(shared, state, sub),
        Local::CommandCount => Reply::Int(i64::try_from(COMMANDS.len()).unwrap_or(i64::MAX)),
        Local::CommandDocs(names) => docs(&names),
        Local::CommandInfo(names) if names.is_empty() => command_all(),
        Local::CommandInfo(names) => Reply::Array(names.iter().map(|n| info_of(n)).collect()),
        Local::CommandAll => command_all(),
        Local::CommandList(filter) => list(filter.as_ref()),
        Local::Info(sections) => Reply::Verbatim(Bytes::from(info(shared, &sections))),
        Local::Time => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Reply::Array(vec![
                Reply::bulk(now.as_secs().to_string()),
                Reply::bulk(now.subsec_micros().to_string()),
            ])
        }
        Local::Dbsize => Reply::Int(0),
    }
}

fn hello(shared: &Shared, state: &mut ConnState, h: HelloArgs) -> Reply {
    let proto = match h.version {
        None => state.proto,
        Some(2) => Protocol::Resp2,
        Some(3) => Protocol::Resp3,
        Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
    };
    if let Some((user, pass)) = &h.auth {
        if let Err(e) = super::auth::login(shared, state, Some(user), pass) {
            return e;
        }
    }
    if !state.authed {
        return Reply::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time",
        );
    }
    if let Some(name) = &h.setname {
        if let Err(e) = set_name(state, name) {
            return e;
        }
    }
    state.proto = proto;
    if let Ok(mut m) = state.entry.meta.lock() {
        m.resp = if proto == Protocol::Resp3 { 3 } else { 2 };
    }
    hello_map(state)
}

fn client(shared: &Shared, state: &mut ConnState, sub: ClientSub) -> Reply {
    match sub {
        ClientSub::SetName(name) => match set_name(state, &name) {
            Ok(()) => Reply::Ok,
            Err(e) => e,
        },
        ClientSub::GetName => state
            .entry
            .meta
            .lock()
            .ok()
            .and_then(|m| m.name.clone())
            .map_or(Reply::Nil, Reply::Bulk),
        ClientSub::Id => Reply::Int(i64::try_from(state.id).unwrap_or(i64::MAX)),
        ClientSub::SetInfo { attr, value } => {
            if !valid_client_name(&value) {
                return Reply::error(
                    "ERR lib-name and lib-ver cannot contain spaces, newlines or special characters.",
                );
            }
            if let Ok(mut m) = state.entry.meta.lock() {
                if is(&attr, "LIB-NAME") {
                    m.lib_name = Some(value);
                } else {
                    m.lib_ver = Some(value);
                }
            }
            Reply::Ok
        }
        ClientSub::Info => Reply::Verbatim(Bytes::from(client_line(shared, &state.entry))),
        ClientSub::List => {
            let mut out = String::new();
            for e in shared.clients.iter() {
                out.push_str(&client_line(shared, e.value()));
            }
            Reply::Verbatim(Bytes::from(out))
        }
        ClientSub::Accept => Reply::Ok,
    }
}

fn client_line(shared: &Shared, e: &super::ClientEntry) -> String {
    let m = e.meta.lock().map(|m| m.clone()).unwrap_or_default();
    let s = |b: &Option<Bytes>| {
        b.as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    format!(
        "id={} addr={} laddr={} fd=0 name={} age={} idle=0 flags=N db=0 sub=0 psub=0 ssub=0 \
         multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 \
         omem=0 tot-mem=0 events=r cmd=NULL user=default redir=-1 resp={} lib-name={} lib-ver={} tls={}\n",
        e.id,
        e.addr,
        shared.local_addr,
        s(&m.name),
        e.created.elapsed().as_secs(),
        m.resp,
        s(&m.lib_name),
        s(&m.lib_ver),
        // Not a Redis field; parsers of key=value lines skip what they do
        // not know, and operators can tell TLS clients apart.
        if e.tls { "yes" } else { "no" },
    )
}

/// The INFO text. Sections: server, clients, persistence (for `loading:0`,
/// which ioredis waits for), stats, keyspace, and lockgate.
fn info(shared: &Shared, sections: &[Bytes]) -> String {
    let want = |s: &str| {
        sections.is_empty()
            || sections
                .iter()
                .any(|a| is(a, s) || is(a, "all") || is(a, "everything") || is(a, "default"))
    };
    let mut out = String::new();
    let uptime = shared.started.elapsed().as_secs();
    if want("server") {
        let _ = write!(
            out,
            "# Server\r\nredis_version:{REDIS_COMPAT_VERSION}\r\nredis_mode:standalone\r\n\
             lockgate_version:{}\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\n\
             uptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            shared.local_addr.port(),
            uptime / 86_400,
        );
    }
    if want("clients") {
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n\r\n",
            shared.clients.len(),
            shared.max_clients()
        );
    }
    if want("persistence") {
        out.push_str("# Persistence\r\nloading:0\r\nasync_loading:0\r\n\r\n");
    }
    if want("stats") {
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\r\n",
            shared.metrics.client_connections_total.get(),
            shared.commands_processed.load(Ordering::Relaxed),
        );
    }
    if want("keyspace") {
        out.push_str("# Keyspace\r\n\r\n");
    }
    if want("lockgate") {
        let e = &shared.engine;
        let _ = write!(
            out,
            "# Lockgate\r\nmasters:{}\r\nquorum:{}\r\nvoting_masters:{}\r\n",
            e.masters().len(),
            e.quorum(),
            e.voting()
        );
        for (i, m) in e.masters().iter().enumerate() {
            let _ = write!(
                out,
                "master{i}:address={},state={}\r\n",
                m.name(),
                m.state().as_str()
            );
        }
        out.push_str("\r\n");
    }
    // Redis ends INFO without the final blank line.
    while out.ends_with("\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_refuse_spaces() {
        assert!(valid_client_name(b"worker-1"));
        assert!(!valid_client_name(b"worker 1"));
        assert!(!valid_client_name(b"a\nb"));
    }
}
