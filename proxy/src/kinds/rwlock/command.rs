//! Parses the `RWLOCK.*` commands into an [`RwCmd`]. TTL and WAIT bounds
//! are checked against the configuration by [`super::exec`].

use bytes::Bytes;

use super::{AcquireArgs, RwCmd};
use crate::args::{acquire_options, is, millis, wrong_args};
use crate::kinds::rwlock::masters::RwMode;
use crate::kinds::{parse_shared, SharedNames};
use crate::resp::Reply;

/// The release, extend and status commands of this kind.
const SHARED: SharedNames = SharedNames {
    release: "rwlock.release",
    extend: "rwlock.extend",
    status: "rwlock.status",
};

/// Classifies an `RWLOCK.*` command; `Ok(None)` when `name` is not one.
pub fn parse(name: &[u8], args: &[Bytes]) -> Result<Option<RwCmd>, Reply> {
    for (kw, mode, cmd) in [
        ("RWLOCK.READ", RwMode::Read, "rwlock.read"),
        ("RWLOCK.WRITE", RwMode::Write, "rwlock.write"),
    ] {
        if is(name, kw) {
            if args.len() < 3 {
                return Err(wrong_args(cmd));
            }
            let ttl = millis(&args[2], "ttl", cmd)?;
            let o = acquire_options(&args[3..], cmd, false)?;
            return Ok(Some(RwCmd::Acquire(AcquireArgs {
                key: args[1].clone(),
                mode,
                ttl,
                owner: o.owner,
                wait: o.wait,
            })));
        }
    }
    if let Some(c) = parse_shared(&SHARED, name, args)? {
        return Ok(Some(c));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn p(s: &[&str]) -> Result<Option<RwCmd>, Reply> {
        let args = crate::args::test_args(s);
        parse(&args[0], &args)
    }

    #[test]
    fn read_and_write_take_options_in_any_order_and_case() {
        assert_eq!(
            p(&["rwlock.write", "k", "100", "wait", "50", "OWNER", "me"]),
            Ok(Some(RwCmd::Acquire(AcquireArgs {
                key: Bytes::from_static(b"k"),
                mode: RwMode::Write,
                ttl: Duration::from_millis(100),
                owner: Some(Bytes::from_static(b"me")),
                wait: Some(Duration::from_millis(50)),
            })))
        );
        assert!(matches!(
            p(&["RWLOCK.READ", "k", "100"]),
            Ok(Some(RwCmd::Acquire(AcquireArgs {
                mode: RwMode::Read,
                ..
            })))
        ));
    }

    #[test]
    fn bad_arguments_name_the_command() {
        let Err(Reply::Error(e)) = p(&["RWLOCK.READ", "k", "0"]) else {
            panic!("expected an error");
        };
        assert!(String::from_utf8_lossy(&e).contains("'rwlock.read'"));
        assert!(p(&["RWLOCK.WRITE", "k", "10", "OWNER"]).is_err());
        assert!(p(&["RWLOCK.WRITE", "k", "10", "OWNER", ""]).is_err());
        assert!(p(&["RWLOCK.WRITE", "k", "10", "WAIT", "-1"]).is_err());
        assert!(p(&["RWLOCK.RELEASE", "k"]).is_err());
        assert!(p(&["RWLOCK.EXTEND", "k", "o", "x"]).is_err());
        assert!(p(&["RWLOCK.STATUS"]).is_err());
    }

    #[test]
    fn other_names_are_not_rwlock_commands() {
        assert_eq!(p(&["LOCK.ACQUIRE", "k", "10"]), Ok(None));
    }
}
