//! `EVAL`, `EVALSHA` and `SCRIPT`: the script transport of lock libraries.

use bytes::Bytes;

use super::{is, not_an_integer, parse_i64, wrong_args};
use crate::resp::Reply;

/// A parsed script command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptCmd {
    /// `EVAL body numkeys ...` (`by_sha == false`) or `EVALSHA sha numkeys ...`.
    Eval {
        by_sha: bool,
        script: Bytes,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
    },
    Load(Bytes),
    Exists(Vec<Bytes>),
    Flush,
}

impl ScriptCmd {
    pub fn keys(&self) -> Vec<Bytes> {
        match self {
            ScriptCmd::Eval { keys, .. } => keys.clone(),
            _ => Vec::new(),
        }
    }
}

/// Classifies a script command; `Ok(None)` when `name` is not one.
pub fn parse(name: &[u8], args: &[Bytes]) -> Result<Option<ScriptCmd>, Reply> {
    let by_sha = is(name, "EVALSHA") || is(name, "EVALSHA_RO");
    if by_sha || is(name, "EVAL") || is(name, "EVAL_RO") {
        let cmd = if by_sha { "evalsha" } else { "eval" };
        if args.len() < 3 {
            return Err(wrong_args(cmd));
        }
        let n = parse_i64(&args[2]).ok_or_else(not_an_integer)?;
        let n =
            usize::try_from(n).map_err(|_| Reply::error("ERR Number of keys can't be negative"))?;
        if n > args.len() - 3 {
            return Err(Reply::error(
                "ERR Number of keys can't be greater than number of args",
            ));
        }
        return Ok(Some(ScriptCmd::Eval {
            by_sha,
            script: args[1].clone(),
            keys: args[3..3 + n].to_vec(),
            args: args[3 + n..].to_vec(),
        }));
    }
    if !is(name, "SCRIPT") {
        return Ok(None);
    }
    let Some(sub) = args.get(1) else {
        return Err(wrong_args("script"));
    };
    let c = if is(sub, "LOAD") {
        if args.len() != 3 {
            return Err(wrong_args("script|load"));
        }
        ScriptCmd::Load(args[2].clone())
    } else if is(sub, "EXISTS") {
        if args.len() < 3 {
            return Err(wrong_args("script|exists"));
        }
        ScriptCmd::Exists(args[2..].to_vec())
    } else if is(sub, "FLUSH") {
        ScriptCmd::Flush
    } else {
        return Err(Reply::error(format!(
            "ERR SCRIPT {} is not supported by lockgate",
            String::from_utf8_lossy(&sub[..sub.len().min(64)]).to_ascii_uppercase()
        )));
    };
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Result<Option<ScriptCmd>, Reply> {
        let args = crate::command::test_args(s);
        parse(&args[0], &args)
    }

    #[test]
    fn evalsha_splits_keys_and_args() {
        let got = p(&["evalsha", "abc", "1", "k", "v", "10"]);
        assert_eq!(
            got,
            Ok(Some(ScriptCmd::Eval {
                by_sha: true,
                script: Bytes::from_static(b"abc"),
                keys: vec![Bytes::from_static(b"k")],
                args: vec![Bytes::from_static(b"v"), Bytes::from_static(b"10")],
            }))
        );
    }

    #[test]
    fn bad_key_counts_get_redis_errors() {
        assert!(p(&["EVAL", "x", "3", "k"]).is_err());
        assert!(p(&["EVAL", "x", "-1"]).is_err());
        assert!(p(&["EVAL", "x", "one"]).is_err());
    }

    #[test]
    fn script_subcommands_parse() {
        assert!(matches!(
            p(&["SCRIPT", "LOAD", "return 1"]),
            Ok(Some(ScriptCmd::Load(_)))
        ));
        assert!(
            matches!(p(&["script", "exists", "a", "b"]), Ok(Some(ScriptCmd::Exists(v))) if v.len() == 2)
        );
        assert_eq!(p(&["SCRIPT", "FLUSH"]), Ok(Some(ScriptCmd::Flush)));
        assert!(p(&["SCRIPT", "KILL"]).is_err());
    }
}
