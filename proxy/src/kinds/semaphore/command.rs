//! Parses the `SEM.*` commands into a [`SemCmd`]. `permits` is checked
//! here (its range is the semaphore's own); TTL and WAIT bounds are checked
//! against the configuration by [`super::exec`].

use bytes::Bytes;

use super::{AcquireArgs, SemCmd};
use crate::args::{acquire_options, is, millis, not_an_integer, parse_i64, wrong_args};
use crate::kinds::semaphore::masters::MAX_PERMITS;
use crate::kinds::{parse_shared, SharedNames};
use crate::resp::Reply;

/// The release, extend and status commands of this kind.
const SHARED: SharedNames = SharedNames {
    release: "sem.release",
    extend: "sem.extend",
    status: "sem.status",
};

/// Classifies a `SEM.*` command; `Ok(None)` when `name` is not one.
pub fn parse(name: &[u8], args: &[Bytes]) -> Result<Option<SemCmd>, Reply> {
    if is(name, "SEM.ACQUIRE") {
        if args.len() < 4 {
            return Err(wrong_args("sem.acquire"));
        }
        let permits = match parse_i64(&args[2]) {
            Some(p) if (1..=MAX_PERMITS).contains(&p.unsigned_abs()) && p > 0 => p.unsigned_abs(),
            Some(_) => {
                return Err(Reply::error(format!(
                "ERR invalid permits in 'sem.acquire' command: must be between 1 and {MAX_PERMITS}"
            )))
            }
            None => return Err(not_an_integer()),
        };
        let ttl = millis(&args[3], "ttl", "sem.acquire")?;
        let o = acquire_options(&args[4..], "sem.acquire", false)?;
        return Ok(Some(SemCmd::Acquire(AcquireArgs {
            key: args[1].clone(),
            permits,
            ttl,
            owner: o.owner,
            wait: o.wait,
        })));
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

    fn p(s: &[&str]) -> Result<Option<SemCmd>, Reply> {
        let args = crate::args::test_args(s);
        parse(&args[0], &args)
    }

    #[test]
    fn acquire_parses_permits_ttl_and_options() {
        assert_eq!(
            p(&["sem.acquire", "k", "3", "100", "OWNER", "me", "WAIT", "5"]),
            Ok(Some(SemCmd::Acquire(AcquireArgs {
                key: Bytes::from_static(b"k"),
                permits: 3,
                ttl: Duration::from_millis(100),
                owner: Some(Bytes::from_static(b"me")),
                wait: Some(Duration::from_millis(5)),
            })))
        );
    }

    #[test]
    fn permits_out_of_range_are_refused_with_the_reason() {
        for bad in ["0", "-1", "1025"] {
            let Err(Reply::Error(e)) = p(&["SEM.ACQUIRE", "k", bad, "100"]) else {
                panic!("expected an error for {bad}");
            };
            assert!(String::from_utf8_lossy(&e).contains("invalid permits in 'sem.acquire'"));
        }
        assert!(p(&["SEM.ACQUIRE", "k", "x", "100"]).is_err());
        assert!(p(&["SEM.ACQUIRE", "k", "2"]).is_err());
        assert!(p(&["SEM.ACQUIRE", "k", "2", "0"]).is_err());
    }

    #[test]
    fn release_extend_status_check_their_arity() {
        assert!(p(&["SEM.RELEASE", "k"]).is_err());
        assert!(p(&["SEM.EXTEND", "k", "o"]).is_err());
        assert!(p(&["SEM.STATUS", "k", "x"]).is_err());
        assert!(matches!(
            p(&["sem.status", "k"]),
            Ok(Some(SemCmd::Status { .. }))
        ));
    }
}
