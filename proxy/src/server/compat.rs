//! Runs client-library lock scripts (EVAL/EVALSHA, from the catalogue in
//! [`crate::compat`]) and BLPOP on signal keys, with quorum semantics and
//! each library's own reply codes.
//!
//! A library pointed at lockgate sees one Redis, so whatever it would read
//! from that Redis (1 vs 0, python-redis-lock's inverted 0 for success,
//! node-redlock's key count, redsync's -1 for "gone") is what it gets here,
//! computed from the quorum outcome rather than from any single master.
//!
//! These run on the plain lock: they take the same [`Ctx`] as a kind's
//! command, the plain lock's bounds, and hand back a [`Response`].

use std::time::Duration;

use bytes::Bytes;
use futures::future::FutureExt;
use tokio::time::Instant;

use crate::command::ScriptCmd;
use crate::compat::{Action, Catalogue, Code, Entry, LockKeys, TtlUnit, Word};
use crate::kinds::checks::{bound_wait, check_key, check_owner, check_ttl, reserve_hold};
use crate::kinds::holds::HoldKind;
use crate::kinds::plain::exec::{extend_holds, forget_unless_no_quorum, PlainGrant};
use crate::kinds::plain::masters as plain;
use crate::kinds::replies::exhausted_reply;
use crate::kinds::Ctx;
use crate::lock::{AcquireOutcome, ExtendOutcome, ReleaseOutcome, StatusOutcome};
use crate::resp::Reply;
use crate::response::{ms_reply, no_quorum, GrantShape, Response};
use crate::scripts::sha1_hex;

/// Runs `EVAL`/`EVALSHA` of a recognised client-library script, and answers
/// `SCRIPT LOAD|EXISTS|FLUSH`.
pub async fn script(ctx: &Ctx<'_>, cmd: ScriptCmd) -> Response {
    let cat = Catalogue::builtin();
    let (by_sha, script, keys, args) = match cmd {
        ScriptCmd::Load(body) => return Response::Reply(Reply::bulk(sha1_hex(&body))),
        ScriptCmd::Exists(shas) => {
            return Response::Reply(Reply::Array(
                shas.iter()
                    .map(|s| Reply::Int(i64::from(cat.by_sha(s).is_some())))
                    .collect(),
            ))
        }
        // The catalogue is fixed; there is nothing to flush.
        ScriptCmd::Flush => return Response::Reply(Reply::Ok),
        ScriptCmd::Eval {
            by_sha,
            script,
            keys,
            args,
        } => (by_sha, script, keys, args),
    };
    let entry = if by_sha {
        cat.by_sha(&script)
    } else {
        cat.by_text(&script)
    };
    let Some(entry) = entry else {
        return Response::Reply(if by_sha {
            Reply::error("NOSCRIPT No matching script. Please use EVAL.")
        } else {
            Reply::error(format!(
                "ERR lockgate does not recognise this script (sha1 {}): only the lock \
                 scripts of known client libraries run, with quorum semantics",
                sha1_hex(&script)
            ))
        });
    };
    run(ctx, entry, keys, args).await
}

/// The script's arguments, checked against its catalogue entry.
struct Call {
    keys: Vec<Bytes>,
    owner: Bytes,
    ttl: Option<Duration>,
    add: bool,
}

fn err(entry: &Entry, reason: &str) -> Reply {
    Reply::error(format!("ERR {}: {reason}", entry.name()))
}

fn call(ctx: &Ctx<'_>, entry: &Entry, keys: Vec<Bytes>, args: &[Bytes]) -> Result<Call, Reply> {
    let name = entry.name();
    let keys = match entry.lock_keys {
        LockKeys::First => keys.into_iter().take(1).collect::<Vec<_>>(),
        LockKeys::All => keys,
    };
    if keys.is_empty() {
        return Err(err(entry, "needs at least one key"));
    }
    for k in &keys {
        check_key(ctx, &name, k)?;
    }
    let arg = |i: Option<usize>| i.and_then(|i| args.get(i - 1));
    let Some(owner) = arg(entry.owner_arg).cloned() else {
        return Err(err(entry, "missing the owner argument"));
    };
    check_owner(ctx, &name, &owner)?;
    let ttl = match entry.ttl_arg {
        None => None,
        Some(_) => {
            let n = arg(entry.ttl_arg)
                .and_then(|a| crate::args::parse_i64(a))
                .filter(|&n| n > 0)
                .ok_or_else(|| err(entry, "the ttl must be a positive integer"))?;
            let n = n.unsigned_abs();
            let ttl = match entry.ttl_unit {
                TtlUnit::Ms => Duration::from_millis(n),
                TtlUnit::S => Duration::from_secs(n.min(u64::MAX / 1000)),
            };
            check_ttl(ctx, &name, ttl)?;
            Some(ttl)
        }
    };
    let add = entry.add_flag.as_ref().is_some_and(|f| {
        args.get(f.arg - 1)
            .is_some_and(|a| a[..] == *f.adds_when.as_bytes())
    });
    Ok(Call {
        keys,
        owner,
        ttl,
        add,
    })
}

/// A catalogued reply for an outcome on `n` lock keys.
fn code(c: Code, n: usize, pttl: Option<Duration>) -> Reply {
    match c {
        Code::Int(i) => Reply::Int(i),
        Code::Word(Word::Count) => Reply::Int(i64::try_from(n).unwrap_or(i64::MAX)),
        Code::Word(Word::Pttl) => ms_reply(pttl.unwrap_or_default()),
        Code::Word(Word::Nil) => Reply::Nil,
    }
}

async fn run(ctx: &Ctx<'_>, entry: &'static Entry, keys: Vec<Bytes>, args: Vec<Bytes>) -> Response {
    let reply = match (entry.action, entry.reply) {
        (Action::Unsupported, _) | (_, None) => {
            let reason = entry.reason.as_deref().unwrap_or("not supported");
            return Response::Reply(Reply::error(format!(
                "ERR lockgate does not run the {}: {reason}",
                entry.name()
            )));
        }
        (_, Some(r)) => r,
    };
    let c = match call(ctx, entry, keys, &args) {
        Ok(c) => c,
        Err(r) => return Response::Reply(r),
    };
    let engine = ctx.engine;
    let n = c.keys.len();
    let ttl = c.ttl.unwrap_or(ctx.config.lock.max_ttl);
    let plain = |r: Reply| Response::Reply(r);
    let acquire = |c: Call| async move {
        let slot = match reserve_hold(ctx, &entry.name(), HoldKind::Plain, &c.keys, &c.owner) {
            Ok(s) => s,
            Err(r) => return plain(r),
        };
        let outcome = plain::acquire(engine, &c.keys, &c.owner, ttl).await;
        if let AcquireOutcome::Granted(grant) = &outcome {
            slot.commit(grant.valid_until, None);
        }
        match outcome {
            AcquireOutcome::Granted(grant) => Response::grant(PlainGrant {
                grant,
                keys: c.keys,
                owner: c.owner,
                shape: GrantShape::Script {
                    ok: code(reply.ok, n, None),
                    expired: code(reply.busy, n, None),
                },
            }),
            AcquireOutcome::Busy | AcquireOutcome::Expired => plain(code(reply.busy, n, None)),
            AcquireOutcome::NoQuorum { voted, needed } => plain(no_quorum(voted, needed)),
            AcquireOutcome::Exhausted => plain(exhausted_reply(&entry.name(), &c.keys)),
        }
    };
    match entry.action {
        Action::Acquire => acquire(c).await,
        Action::Release => {
            let out = plain::release(engine, &c.keys, &c.owner).await;
            forget_unless_no_quorum(ctx, &c.keys, &c.owner, &out);
            match out {
                ReleaseOutcome::Released => plain(code(reply.ok, n, None)),
                ReleaseOutcome::NotHeld { .. } => match reply.missing {
                    None => plain(code(reply.not_held, n, None)),
                    // The library tells "held by another" from "held by nobody".
                    Some(missing) => match plain::status(engine, &c.keys[0]).await {
                        StatusOutcome::Free => plain(code(missing, n, None)),
                        StatusOutcome::Held { .. } => plain(code(reply.not_held, n, None)),
                        StatusOutcome::NoQuorum { voted, needed } => {
                            plain(no_quorum(voted, needed))
                        }
                    },
                },
                ReleaseOutcome::NoQuorum { voted, needed } => plain(no_quorum(voted, needed)),
            }
        }
        Action::Extend | Action::ExtendOrAcquire => {
            let out = plain::extend(engine, &c.keys, &c.owner, ttl, c.add).await;
            extend_holds(ctx, HoldKind::Plain, &c.keys, &c.owner, &out);
            match out {
                ExtendOutcome::Extended { validity } => plain(code(reply.ok, n, Some(validity))),
                ExtendOutcome::NotHeld if entry.action == Action::ExtendOrAcquire => {
                    acquire(c).await
                }
                ExtendOutcome::NotHeld | ExtendOutcome::Expired => {
                    plain(code(reply.not_held, n, None))
                }
                ExtendOutcome::NoQuorum { voted, needed } => plain(no_quorum(voted, needed)),
            }
        }
        Action::Check => match plain::status(engine, &c.keys[0]).await {
            StatusOutcome::Held { owner, pttl, .. } if owner == c.owner && !pttl.is_zero() => {
                plain(code(reply.ok, n, Some(pttl)))
            }
            StatusOutcome::Held { .. } | StatusOutcome::Free => {
                plain(code(reply.not_held, n, None))
            }
            StatusOutcome::NoQuorum { voted, needed } => plain(no_quorum(voted, needed)),
        },
        // Answered by the guard at the top.
        Action::Unsupported => plain(err(entry, "not supported")),
    }
}

/// `BLPOP signal [signal ...] timeout` on library signal keys: waits until
/// one of the matching lock keys is free on a quorum, then answers
/// `[signal, "1"]`; a null array when the timeout passes.
///
/// The wait is capped at `lock.max_wait_ms` like `LOCK.ACQUIRE ... WAIT`,
/// including `0` ("forever"). The cap answers the null array of a timed-out
/// BLPOP rather than an error: lock libraries wait in a loop and simply
/// wait again, whereas an error would fail a lock call that is still valid.
pub async fn blpop(ctx: &Ctx<'_>, keys: Vec<Bytes>, timeout: Option<Duration>) -> Response {
    // No timeout waits forever, which is beyond any bound.
    let timeout = timeout.unwrap_or(Duration::MAX);
    let timeout = bound_wait(ctx, timeout).map_or_else(|max_wait| max_wait, |()| timeout);
    let cat = Catalogue::builtin();
    let mut pairs = Vec::with_capacity(keys.len());
    for k in keys {
        let Some(lock) = cat.lock_for_signal(&k) else {
            let prefixes: Vec<_> = cat
                .signals()
                .iter()
                .map(|s| s.signal_prefix.as_str())
                .collect();
            return Response::Reply(Reply::error(format!(
                "ERR 'blpop' is only supported on lock signal keys ({}): lockgate keeps no lists",
                prefixes.join(", ")
            )));
        };
        if let Err(r) = check_key(ctx, "blpop", &lock) {
            return Response::Reply(r);
        }
        pairs.push((k, Bytes::from(lock)));
    }
    let until = Some(Instant::now() + timeout);
    let waits = pairs.iter().map(|(signal, lock)| {
        let engine = ctx.engine;
        async move {
            plain::wait_free(engine, lock, until)
                .await
                .then(|| signal.clone())
        }
        .boxed()
    });
    // The first key seen free wins, as BLPOP pops from the first non-empty
    // list; a timed-out wait only counts once every wait has timed out.
    let mut pending: Vec<_> = waits.collect();
    while !pending.is_empty() {
        let (got, _, rest) = futures::future::select_all(pending).await;
        if let Some(signal) = got {
            return Response::Reply(Reply::Array(vec![Reply::Bulk(signal), Reply::bulk("1")]));
        }
        pending = rest;
    }
    Response::Reply(Reply::NilArray)
}
