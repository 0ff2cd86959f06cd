//! Commands the gateway answers itself, without asking any master:
//! connection handshake and introspection (PING, ECHO, HELLO, AUTH, SELECT,
//! QUIT, RESET, CLIENT, COMMAND, INFO, TIME, DBSIZE, LOCK.TOKENS).
//!
//! Accept what clients send on connect: redis-py, ioredis, go-redis and
//! redis-rs all probe some of these and refuse to continue on an error.

use bytes::Bytes;

use super::{is, not_an_integer, parse_i64, wrong_args};
use crate::resp::Reply;

/// Arguments of `HELLO [protover [AUTH user pass] [SETNAME name]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloArgs {
    pub version: Option<i64>,
    pub auth: Option<(Bytes, Bytes)>,
    pub setname: Option<Bytes>,
}

/// `CLIENT` subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSub {
    SetName(Bytes),
    GetName,
    Id,
    SetInfo {
        attr: Bytes,
        value: Bytes,
    },
    Info,
    List,
    /// NO-EVICT, NO-TOUCH and the like: accepted, no effect on a gateway.
    Accept,
}

/// The filter of `COMMAND LIST FILTERBY ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFilter {
    Module(Bytes),
    AclCat(Bytes),
    Pattern(Bytes),
}

/// A locally answered command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    Ping(Option<Bytes>),
    Echo(Bytes),
    Hello(HelloArgs),
    Auth {
        user: Option<Bytes>,
        pass: Bytes,
    },
    Select(i64),
    Quit,
    Reset,
    Client(ClientSub),
    /// `COMMAND`: the details of every command.
    CommandAll,
    CommandCount,
    /// `COMMAND DOCS [name ...]`; no names: every command.
    CommandDocs(Vec<Bytes>),
    /// `COMMAND INFO [name ...]`; no names: every command.
    CommandInfo(Vec<Bytes>),
    /// `COMMAND LIST [FILTERBY MODULE m | ACLCAT c | PATTERN p]`.
    CommandList(Option<ListFilter>),
    Info(Vec<Bytes>),
    Time,
    Dbsize,
    /// `LOCK.TOKENS ON|OFF`: whether this connection's `SET NX` grants carry
    /// the fencing token as a RESP3 attribute.
    LockTokens(bool),
}

/// Classifies a locally answered command; `Ok(None)` when `name` is not one.
pub fn parse(name: &[u8], args: &[Bytes]) -> Result<Option<Local>, Reply> {
    let n = args.len();
    let l = if is(name, "PING") {
        match n {
            1 => Local::Ping(None),
            2 => Local::Ping(Some(args[1].clone())),
            _ => return Err(wrong_args("ping")),
        }
    } else if is(name, "ECHO") {
        if n != 2 {
            return Err(wrong_args("echo"));
        }
        Local::Echo(args[1].clone())
    } else if is(name, "HELLO") {
        Local::Hello(parse_hello(args)?)
    } else if is(name, "AUTH") {
        match n {
            2 => Local::Auth {
                user: None,
                pass: args[1].clone(),
            },
            3 => Local::Auth {
                user: Some(args[1].clone()),
                pass: args[2].clone(),
            },
            _ => return Err(wrong_args("auth")),
        }
    } else if is(name, "SELECT") {
        if n != 2 {
            return Err(wrong_args("select"));
        }
        Local::Select(parse_i64(&args[1]).ok_or_else(not_an_integer)?)
    } else if is(name, "QUIT") {
        Local::Quit
    } else if is(name, "RESET") {
        if n != 1 {
            return Err(wrong_args("reset"));
        }
        Local::Reset
    } else if is(name, "CLIENT") {
        Local::Client(parse_client(args)?)
    } else if is(name, "COMMAND") {
        match args.get(1) {
            None => Local::CommandAll,
            Some(s) if is(s, "COUNT") => Local::CommandCount,
            Some(s) if is(s, "DOCS") => Local::CommandDocs(args[2..].to_vec()),
            Some(s) if is(s, "INFO") => Local::CommandInfo(args[2..].to_vec()),
            Some(s) if is(s, "LIST") => Local::CommandList(parse_list_filter(&args[2..])?),
            Some(s) => {
                return Err(Reply::error(format!(
                    "ERR unknown subcommand '{}'. Try COMMAND HELP.",
                    String::from_utf8_lossy(&s[..s.len().min(64)])
                )))
            }
        }
    } else if is(name, "INFO") {
        Local::Info(args[1..].to_vec())
    } else if is(name, "TIME") {
        Local::Time
    } else if is(name, "DBSIZE") {
        Local::Dbsize
    } else if is(name, "LOCK.TOKENS") {
        match args.get(1) {
            Some(v) if n == 2 && is(v, "ON") => Local::LockTokens(true),
            Some(v) if n == 2 && is(v, "OFF") => Local::LockTokens(false),
            _ => {
                return Err(Reply::error(
                    "ERR syntax error in 'lock.tokens' command: expected LOCK.TOKENS ON|OFF",
                ))
            }
        }
    } else {
        return Ok(None);
    };
    Ok(Some(l))
}

fn parse_list_filter(rest: &[Bytes]) -> Result<Option<ListFilter>, Reply> {
    match rest {
        [] => Ok(None),
        [by, kind, v] if is(by, "FILTERBY") => {
            let v = v.clone();
            if is(kind, "MODULE") {
                Ok(Some(ListFilter::Module(v)))
            } else if is(kind, "ACLCAT") {
                Ok(Some(ListFilter::AclCat(v)))
            } else if is(kind, "PATTERN") {
                Ok(Some(ListFilter::Pattern(v)))
            } else {
                Err(Reply::error("ERR syntax error"))
            }
        }
        _ => Err(Reply::error("ERR syntax error")),
    }
}

fn parse_hello(args: &[Bytes]) -> Result<HelloArgs, Reply> {
    let mut h = HelloArgs {
        version: None,
        auth: None,
        setname: None,
    };
    let Some(v) = args.get(1) else {
        return Ok(h);
    };
    h.version =
        Some(parse_i64(v).ok_or_else(|| {
            Reply::error("ERR Protocol version is not an integer or out of range")
        })?);
    let mut i = 2;
    while i < args.len() {
        let opt = &args[i];
        if is(opt, "AUTH") && i + 2 < args.len() {
            h.auth = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 3;
        } else if is(opt, "SETNAME") && i + 1 < args.len() {
            h.setname = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Err(Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&opt[..opt.len().min(64)])
            )));
        }
    }
    Ok(h)
}

fn parse_client(args: &[Bytes]) -> Result<ClientSub, Reply> {
    let Some(sub) = args.get(1) else {
        return Err(wrong_args("client"));
    };
    let n = args.len();
    let c = if is(sub, "SETNAME") {
        if n != 3 {
            return Err(wrong_args("client|setname"));
        }
        ClientSub::SetName(args[2].clone())
    } else if is(sub, "GETNAME") {
        ClientSub::GetName
    } else if is(sub, "ID") {
        ClientSub::Id
    } else if is(sub, "SETINFO") {
        if n != 4 {
            return Err(wrong_args("client|setinfo"));
        }
        if !is(&args[2], "LIB-NAME") && !is(&args[2], "LIB-VER") {
            return Err(Reply::error(format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(&args[2][..args[2].len().min(64)])
            )));
        }
        ClientSub::SetInfo {
            attr: args[2].clone(),
            value: args[3].clone(),
        }
    } else if is(sub, "INFO") {
        ClientSub::Info
    } else if is(sub, "LIST") {
        ClientSub::List
    } else if is(sub, "NO-EVICT") || is(sub, "NO-TOUCH") {
        match args.get(2) {
            Some(v) if is(v, "ON") || is(v, "OFF") => ClientSub::Accept,
            _ => return Err(Reply::error("ERR syntax error")),
        }
    } else {
        return Err(Reply::error(format!(
            "ERR CLIENT {} is not supported by lockgate",
            String::from_utf8_lossy(&sub[..sub.len().min(64)]).to_ascii_uppercase()
        )));
    };
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Result<Option<Local>, Reply> {
        let args = crate::command::test_args(s);
        parse(&args[0], &args)
    }

    #[test]
    fn hello_with_auth_and_setname_parses() {
        let got = p(&["HELLO", "3", "AUTH", "default", "pw", "SETNAME", "app"]);
        assert_eq!(
            got,
            Ok(Some(Local::Hello(HelloArgs {
                version: Some(3),
                auth: Some((Bytes::from_static(b"default"), Bytes::from_static(b"pw"))),
                setname: Some(Bytes::from_static(b"app")),
            })))
        );
    }

    #[test]
    fn hello_with_a_non_integer_version_is_refused() {
        assert!(p(&["HELLO", "three"]).is_err());
    }

    #[test]
    fn client_setinfo_accepts_lib_name_and_version() {
        assert!(matches!(
            p(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]),
            Ok(Some(Local::Client(ClientSub::SetInfo { .. })))
        ));
        assert!(p(&["CLIENT", "SETINFO", "COLOR", "blue"]).is_err());
    }

    #[test]
    fn command_subcommands_parse() {
        assert_eq!(p(&["command", "count"]), Ok(Some(Local::CommandCount)));
        assert_eq!(
            p(&["COMMAND", "DOCS"]),
            Ok(Some(Local::CommandDocs(vec![])))
        );
        assert_eq!(p(&["COMMAND"]), Ok(Some(Local::CommandAll)));
        assert_eq!(p(&["COMMAND", "list"]), Ok(Some(Local::CommandList(None))));
        assert_eq!(
            p(&["COMMAND", "LIST", "filterby", "pattern", "lock.*"]),
            Ok(Some(Local::CommandList(Some(ListFilter::Pattern(
                Bytes::from_static(b"lock.*")
            )))))
        );
        assert!(p(&["COMMAND", "LIST", "FILTERBY", "COLOR", "x"]).is_err());
        assert!(p(&["COMMAND", "LIST", "x"]).is_err());
    }
}
