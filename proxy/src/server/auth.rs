//! The connection side of authentication: the pre-auth protocol limits,
//! the per-connection rate limit on failed AUTH attempts, and the ACL gate
//! every authenticated command passes.
//!
//! # Failed attempts
//! A connection's first [`FREE_FAILURES`] failures are answered at once.
//! Each later one is answered after [`FAILURE_DELAY_STEP`] times the number
//! of failures beyond the free ones (at most [`FAILURE_DELAY_MAX`]); replies
//! leave in request order, so a pipelining guesser waits too. The
//! [`MAX_FAILURES`]-th failure closes the connection. A guesser therefore
//! gets at most ten tries per TCP connection, and every failure is counted
//! in `lockgate_auth_failures_total{reason}`.

use std::time::Duration;

use bytes::Bytes;

use super::state::{ConnState, Penalty};
use super::Shared;
use crate::acl::{self, AuthError};
use crate::command::Request;
use crate::config::Limits;
use crate::resp::Reply;

/// Failures answered without delay.
pub const FREE_FAILURES: u32 = 3;
/// Delay added per failure beyond [`FREE_FAILURES`].
pub const FAILURE_DELAY_STEP: Duration = Duration::from_millis(200);
/// Longest delay of one failure reply.
pub const FAILURE_DELAY_MAX: Duration = Duration::from_secs(2);
/// The failure that closes the connection.
pub const MAX_FAILURES: u32 = 10;

/// Redis 7's limits for a client that has not authenticated: at most 10
/// arguments, each at most 16 KiB. Breaking them is a protocol error that
/// closes the connection, so an anonymous peer cannot make the gateway
/// buffer megabytes.
pub fn preauth_limits(l: &Limits) -> Limits {
    Limits {
        max_args: l.max_args.min(10),
        max_bulk_bytes: l.max_bulk_bytes.min(16 * 1024),
        max_frame_bytes: l.max_frame_bytes.min(192 * 1024),
        max_inline_bytes: l.max_inline_bytes.min(16 * 1024),
        ..l.clone()
    }
}

/// The penalty of a connection's `n`-th failure (1-based).
pub fn penalty(n: u32) -> Penalty {
    let over = n.saturating_sub(FREE_FAILURES);
    Penalty {
        delay: FAILURE_DELAY_STEP
            .saturating_mul(over)
            .min(FAILURE_DELAY_MAX),
        close: n >= MAX_FAILURES,
    }
}

/// Runs AUTH or HELLO's AUTH for this connection: on success the connection
/// runs as the user; on failure the attempt is counted and its penalty left
/// in `state.auth_penalty` for the connection to apply.
///
/// # Errors
/// The reply to send (WRONGPASS, or Redis's no-password error).
pub fn login(
    shared: &Shared,
    state: &mut ConnState,
    user: Option<&[u8]>,
    pass: &[u8],
) -> Result<(), Reply> {
    match acl::authenticate(&shared.config(), user, pass) {
        Ok(name) => {
            state.authed = true;
            state.user = Some(name);
            Ok(())
        }
        // Not a guess: AUTH with authentication off is a client mistake
        // Redis answers plainly.
        Err(e @ AuthError::NoPasswordConfigured) => {
            shared
                .metrics
                .auth_failures
                .with_label_values(&[e.reason()])
                .inc();
            Err(Reply::error(e.to_string()))
        }
        Err(e) => {
            state.auth_failures = state.auth_failures.saturating_add(1);
            let p = penalty(state.auth_failures);
            let reason = if p.close {
                "too_many_attempts"
            } else {
                e.reason()
            };
            shared
                .metrics
                .auth_failures
                .with_label_values(&[reason])
                .inc();
            state.auth_penalty = Some(p);
            if p.close {
                tracing::info!(
                    failures = state.auth_failures,
                    "closing a connection after too many failed AUTH attempts"
                );
                return Err(Reply::error(
                    "ERR too many failed authentication attempts; closing the connection",
                ));
            }
            Err(Reply::error(e.to_string()))
        }
    }
}

/// The ACL gate: whether this connection's user may run `req` (`args` as
/// sent). `Err((reply, close))` when refused; `close` when the user is gone.
pub fn gate(
    shared: &Shared,
    state: &ConnState,
    args: &[Bytes],
    req: &Request,
) -> Result<(), (Reply, bool)> {
    let keys = req.keys();
    match acl::authorize(&shared.config(), state.user.as_deref(), args, &keys) {
        Ok(()) => Ok(()),
        Err(d) => {
            shared
                .metrics
                .acl_denied
                .with_label_values(&[d.reason()])
                .inc();
            let close = matches!(d, acl::Denied::Gone(_));
            Err((Reply::error(d.to_string()), close))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failures_are_free_then_delays_grow_and_the_tenth_closes() {
        assert_eq!(penalty(1), Penalty::default());
        assert_eq!(penalty(3), Penalty::default());
        assert_eq!(penalty(4).delay, Duration::from_millis(200));
        assert_eq!(penalty(6).delay, Duration::from_millis(600));
        assert!(!penalty(9).close);
        assert!(penalty(10).close);
        assert_eq!(penalty(50).delay, FAILURE_DELAY_MAX);
    }

    #[test]
    fn preauth_limits_are_redis_7s_and_never_looser_than_configured() {
        let l = preauth_limits(&Limits::default());
        assert_eq!(l.max_args, 10);
        assert_eq!(l.max_bulk_bytes, 16 * 1024);
        assert!(l.max_bulk_bytes <= l.max_frame_bytes);
        let tight = Limits {
            max_args: 4,
            max_bulk_bytes: 100,
            max_frame_bytes: 1000,
            ..Limits::default()
        };
        let l = preauth_limits(&tight);
        assert_eq!(
            (l.max_args, l.max_bulk_bytes, l.max_frame_bytes),
            (4, 100, 1000)
        );
    }
}
