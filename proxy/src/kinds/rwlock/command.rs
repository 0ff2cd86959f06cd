//! Parses the `RWLOCK.*` commands into an [`RwCmd`]. TTL and WAIT bounds
//! are checked against the configuration by [`super::exec`].

use bytes::Bytes;

use super::RwCmd;
use crate::args::{acquire_options, is, key_only, key_owner, key_owner_ttl, millis, wrong_args};
use crate::kinds::rwlock::masters::RwMode;
use crate::resp::Reply;

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
            return Ok(Some(RwCmd::Acquire {
                key: args[1].clone(),
                mode,
                ttl,
                owner: o.owner,
                wait: o.wait,
            }));
        }
    }
    if is(name, "RWLOCK.RELEASE") {
        let (key, owner) = key_owner(args, "rwlock.release")?;
        return Ok(Some(RwCmd::Release { key, owner }));
    }
    if is(name, "RWLOCK.EXTEND") {
        let (key, owner, ttl) = key_owner_ttl(args, "rwlock.extend")?;
        return Ok(Some(RwCmd::Extend { key, owner, ttl }));
    }
    if is(name, "RWLOCK.STATUS") {
        let key = key_only(args, "rwlock.status")?;
        return Ok(Some(RwCmd::Status { key }));
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
            Ok(Some(RwCmd::Acquire {
                key: Bytes::from_static(b"k"),
                mode: RwMode::Write,
                ttl: Duration::from_millis(100),
                owner: Some(Bytes::from_static(b"me")),
                wait: Some(Duration::from_millis(50)),
            }))
        );
        assert!(matches!(
            p(&["RWLOCK.READ", "k", "100"]),
            Ok(Some(RwCmd::Acquire {
                mode: RwMode::Read,
                ..
            }))
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
