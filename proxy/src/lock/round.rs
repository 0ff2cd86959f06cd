//! The one acquire round of every lock kind, and the tallies every kind's
//! release and extend share (docs/design.md, *Majority quorum, returned on
//! the first majority*, *Release of partial grants*, *Validity re-check
//! before reply* and *Release, extend, status*).
//!
//! A kind describes its acquire as an `Acquire`: the script, its KEYS, the
//! ARGV of each round, how each master's decoded reply votes, what a lost or
//! expired acquire must release, and an optional extra round (a semaphore
//! moving to a slot that is free on a quorum). `run` does the rest, the
//! same way for every kind: propose a token above the highest register seen,
//! fan the script out, tally the votes with [`Tally::decide`], retry higher
//! after stale refusals, and report a grant only while its validity is
//! positive. Every outcome is an [`AcquireOutcome`], whose `NoQuorum` case is
//! the one every kind reports.
//!
//! The reply codes of the scripts live in [`code`], once; each kind decodes
//! its scripts' replies into typed values beside its own logic, and anything
//! malformed is a [`DecodeError`], which counts as no vote.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::engine::{Answer, Engine};
use super::quorum::{Decision, Tally};
use super::validity::{drift, remaining, valid_until};
use super::{ExtendOutcome, Grant, ReleaseOutcome};
use crate::master::{MasterError, Value};
use crate::metrics::{Op, Outcome};
use crate::scripts::{Script, ScriptSet};

/// Rounds one acquire may take: the first, plus up to two retries with a
/// higher token after stale refusals. A kind may ask for more with
/// `Acquire::extra_rounds`.
pub const MAX_ROUNDS: usize = 3;

/// The reply codes of the gateway's scripts: the first element of every
/// array reply. The Lua files return these literals; a unit test checks
/// that each script and its decoder agree.
pub mod code {
    /// Acquire: granted with the proposed token.
    pub const GRANTED: i64 = 0;
    /// Acquire: refused, another holder is in the way.
    pub const BUSY: i64 = 1;
    /// Acquire: refused, the proposal is not above the register.
    pub const STALE: i64 = 2;
    /// Any script: the master's metadata record is missing; no vote.
    pub const AMNESIA: i64 = 3;
    /// Acquire and reentrant release: the master's state is not what the
    /// request expected (a semaphore's permit count, a reentrant hold count
    /// that a concurrent operation moved).
    pub const MISMATCH: i64 = 4;
    /// Status reads: held here.
    pub const HELD: i64 = 0;
    /// Status reads: not held here.
    pub const FREE: i64 = 1;
    /// Reentrant release: one hold dropped here.
    pub const DROPPED: i64 = 0;
    /// Reentrant release: not held by this owner here.
    pub const NOT_HELD: i64 = 1;
}

/// A master reply that no decoder accepts: counted as no vote, never a
/// panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The reply is not an array of the script's shape.
    Shape(&'static str),
    /// The reply carries a code its script never returns.
    Code(i64),
    /// A token or register is not a decimal number.
    Token,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Shape(script) => write!(f, "{script} reply has an unexpected shape"),
            DecodeError::Code(c) => write!(f, "unexpected reply code {c}"),
            DecodeError::Token => write!(f, "token is not a decimal number"),
        }
    }
}

/// The reply of an acquire script (`acquire.lua`, `rw_acquire.lua`,
/// `sem_acquire.lua`, `racquire.lua`), `{code, value, ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireReply {
    /// Granted with this token (for a reentry: the register).
    Granted(u64),
    /// Held by another owner; the highest register seen.
    Busy(u64),
    /// The proposal is not above this register.
    Stale(u64),
    Amnesia,
    /// The state is not what the request expected (see [`code::MISMATCH`]).
    Mismatch(u64),
}

impl AcquireReply {
    /// Every code an acquire script may return.
    pub const CODES: &'static [i64] = &[
        code::GRANTED,
        code::BUSY,
        code::STALE,
        code::AMNESIA,
        code::MISMATCH,
    ];

    /// Decodes `{code, value}`.
    pub fn decode(v: &Value) -> Result<Self, DecodeError> {
        match v {
            Value::Array(items) => match items.as_slice() {
                [Value::Int(c), Value::Int(val)] => Self::from_parts(*c, *val),
                _ => Err(DecodeError::Shape("acquire")),
            },
            _ => Err(DecodeError::Shape("acquire")),
        }
    }

    /// The reply with code `c` and value `val` (negative values read as 0).
    pub fn from_parts(c: i64, val: i64) -> Result<Self, DecodeError> {
        let val = u64::try_from(val).unwrap_or(0);
        Ok(match c {
            code::GRANTED => AcquireReply::Granted(val),
            code::BUSY => AcquireReply::Busy(val),
            code::STALE => AcquireReply::Stale(val),
            code::AMNESIA => AcquireReply::Amnesia,
            code::MISMATCH => AcquireReply::Mismatch(val),
            other => return Err(DecodeError::Code(other)),
        })
    }
}

/// Parses a register or token sent as a decimal string.
pub fn decimal(b: &[u8]) -> Result<u64, DecodeError> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(DecodeError::Token)
}

/// What one master's reply counts as in an acquire round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    /// Accepted the proposal.
    Granted,
    /// Refused by another holder; the register, when the kind observes it.
    Busy(Option<u64>),
    /// Refused: the proposal is not above this register.
    Stale(u64),
    /// The master forgot its data: no vote, and the amnesia guard is woken.
    Amnesia,
    /// No vote.
    None,
}

/// The outcome of one acquire of any kind. `G` is what a grant carries,
/// `R` a refusal of the kind's own (none for most kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcquireOutcome<G = Grant, R = Infallible> {
    Granted(G),
    /// Another holder is in the way on enough masters.
    Busy,
    /// Too few masters voted.
    NoQuorum {
        voted: usize,
        needed: usize,
    },
    /// A quorum agreed, but the validity ran out first; released again.
    Expired,
    /// Refused for a reason of the kind's own (a client error).
    Refused(R),
    /// No token can be proposed above this key's register: its token space
    /// is used up ([`crate::fence::TokenSpaceExhausted`]). Other keys are
    /// unaffected.
    Exhausted,
}

/// A script sent to every voting master without waiting for the answers:
/// what a lost or expired acquire releases. Never re-sent as EVAL after
/// NOSCRIPT: a re-sent release could overtake a later grant of the owner.
pub struct Release {
    pub script: fn(&ScriptSet) -> &Script,
    pub keys: Arc<[Bytes]>,
    pub args: Arc<[Bytes]>,
}

/// One kind's acquire, as [`run`] drives it.
pub(crate) trait Acquire {
    /// The decoded reply of the kind's acquire script.
    type Reply;

    /// The acquire script.
    fn script<'s>(&self, scripts: &'s ScriptSet) -> &'s Script;
    /// KEYS of the acquire script.
    fn keys(&self) -> Arc<[Bytes]>;
    /// ARGV of round `round` (0 first), proposing `token`. Called once at
    /// the start of every round, so per-round notes are reset here.
    fn args(&mut self, token: u64, round: usize) -> Arc<[Bytes]>;
    /// Decodes one master's reply.
    fn decode(&self, reply: Value) -> Result<Self::Reply, DecodeError>;
    /// How a decoded reply votes on a round that proposed `token`.
    fn vote(&mut self, reply: Self::Reply, token: u64) -> Vote;
    /// What a lost or expired acquire leaves to release, if anything.
    fn release(&self) -> Option<Release>;

    /// Whether rounds propose tokens; false for a write that keeps the
    /// register (a reentry), which then proposes 0 and never retries
    /// higher.
    fn proposes(&self) -> bool {
        true
    }
    /// Whether votes are counted in the per-master vote metrics.
    fn records_votes(&self) -> bool {
        true
    }
    /// Rounds beyond [`MAX_ROUNDS`] this kind may take.
    fn extra_rounds(&self) -> usize {
        0
    }
    /// After a busy round with rounds left: whether another round could
    /// win (a semaphore moving to a slot free on a quorum). `unanswered`
    /// masters had not answered when the round was decided.
    fn next_round(&mut self, _unanswered: usize, _q: usize) -> bool {
        false
    }
}

/// How the rounds of one acquire ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// A quorum granted the last round's proposal, still valid.
    Granted(Grant),
    /// A quorum granted, but the validity ran out first; released again.
    Expired,
    /// No token could be proposed above the key's register (its token
    /// space is used up); released again.
    Exhausted,
    /// Lost, and released again.
    Lost {
        /// The decision of the last round that was decided (`NoQuorum`
        /// when the validity ran out before a round could start).
        last: Decision,
        /// Masters that voted in the last round that was decided.
        voted: usize,
        /// True when the last round was decided and ended the acquire; false
        /// when the rounds ran out or the validity ran out before a round.
        decided: bool,
    },
}

impl End {
    /// The outcome every kind reports for an end without a refusal of its
    /// own: lost to busy or stale refusals is busy, anything else a lost
    /// quorum.
    pub(crate) fn outcome<R>(self, q: usize) -> AcquireOutcome<Grant, R> {
        match self {
            End::Granted(g) => AcquireOutcome::Granted(g),
            End::Expired => AcquireOutcome::Expired,
            End::Lost {
                last: Decision::Busy | Decision::RetryHigher,
                ..
            } => AcquireOutcome::Busy,
            End::Lost { voted, .. } => AcquireOutcome::NoQuorum { voted, needed: q },
            End::Exhausted => AcquireOutcome::Exhausted,
        }
    }
}

/// Runs the rounds of one acquire that began at `start` with lease `ttl`.
pub(crate) async fn run<K: Acquire>(
    engine: &Engine,
    kind: &mut K,
    ttl: Duration,
    start: Instant,
) -> End {
    let cfg = engine.config();
    let until = valid_until(start, ttl, cfg.drift_factor, cfg.drift_constant);
    let q = engine.quorum();
    let keys = kind.keys();
    let max_rounds = MAX_ROUNDS + kind.extra_rounds();
    let mut floor = 0u64;
    let mut last = Decision::NoQuorum;
    let mut voted = 0;
    let mut decided = false;
    let mut exhausted = false;
    for round in 0..max_rounds {
        let now = Instant::now();
        if remaining(until, now).is_none() {
            last = Decision::NoQuorum;
            break;
        }
        let token = if kind.proposes() {
            match engine.proposer().propose_above(floor) {
                Ok(t) => t.0,
                Err(e) => {
                    warn!(cause = %e, "cannot propose a fencing token for this key");
                    exhausted = true;
                    break;
                }
            }
        } else {
            0
        };
        let args = with_retention(engine, &kind.args(token, round));
        let deadline = engine.master_deadline(now, until);
        let script = kind.script(engine.scripts());
        let (asked, mut futs) = engine.fan_out(script, keys.clone(), args, deadline, true);
        let mut tally = Tally::default();
        let mut decision = tally.decide(asked, q);
        while decision == Decision::Pending {
            let Some((i, reply)) = futs.next().await else {
                break;
            };
            let vote = match reply
                .map_err(|e| e.to_string())
                .and_then(|v| kind.decode(v).map_err(|e| e.to_string()))
            {
                Ok(r) => kind.vote(r, token),
                Err(e) => {
                    debug!(master = i, cause = %e, "no vote from master");
                    Vote::None
                }
            };
            count(
                engine,
                kind.records_votes(),
                i,
                vote,
                &mut tally,
                &mut floor,
            );
            decision = tally.decide(asked, q);
        }
        let answered = tally.granted + tally.busy + tally.stale + tally.no_vote;
        Engine::drain(futs);
        voted = tally.granted + tally.busy + tally.stale;
        last = decision;
        match decision {
            Decision::Granted => {
                if remaining(until, Instant::now()).is_none() {
                    release(engine, kind.release());
                    return End::Expired;
                }
                return End::Granted(Grant {
                    token: crate::fence::FencingToken(token),
                    valid_until: until,
                    start,
                });
            }
            Decision::RetryHigher if kind.proposes() => {
                engine.metrics().fence_retries.inc();
                debug!(
                    round,
                    floor, "fencing token proposal was stale; retrying higher"
                );
                continue;
            }
            Decision::Busy
                if round + 1 < max_rounds && kind.next_round(asked.saturating_sub(answered), q) =>
            {
                debug!(round, "another round could win; trying again");
                continue;
            }
            Decision::Busy | Decision::RetryHigher | Decision::NoQuorum | Decision::Pending => {
                decided = true;
                break;
            }
        }
    }
    // Lost: a write that timed out may still land, and masters that granted
    // this owner must not keep a partial grant.
    release(engine, kind.release());
    if exhausted {
        return End::Exhausted;
    }
    End::Lost {
        last,
        voted,
        decided,
    }
}

/// The register retention every acquire, reentry and extend script takes
/// as its last ARGV: milliseconds, `0` when registers never expire
/// (`lock.fence_retention_ms = 0`).
pub(crate) fn retention_arg(engine: &Engine) -> Bytes {
    let ms = engine
        .config()
        .fence_retention
        .map_or(0, |r| r.as_millis().max(1));
    Bytes::from(ms.to_string())
}

/// `args` with [`retention_arg`] appended, as every acquire script reads it.
fn with_retention(engine: &Engine, args: &[Bytes]) -> Arc<[Bytes]> {
    let mut out = Vec::with_capacity(args.len() + 1);
    out.extend_from_slice(args);
    out.push(retention_arg(engine));
    out.into()
}

/// Counts one vote in `tally`; a stale refusal raises `floor`, the least
/// the next round must propose above. The pure part of [`run`]'s counting,
/// which the models (`lock::model`, `lock::kinds_model`) drive too.
pub(crate) fn tally_vote(tally: &mut Tally, floor: &mut u64, vote: Vote) {
    match vote {
        Vote::Granted => tally.granted += 1,
        Vote::Busy(_) => tally.busy += 1,
        Vote::Stale(reg) => {
            tally.stale += 1;
            *floor = (*floor).max(reg);
        }
        Vote::Amnesia | Vote::None => tally.no_vote += 1,
    }
}

/// Tallies one vote of master `i`, with its side effects: registers are
/// observed by the proposer, amnesia wakes the guard, and (when the kind
/// records them) the per-master vote metrics count it.
fn count(engine: &Engine, records: bool, i: usize, vote: Vote, tally: &mut Tally, floor: &mut u64) {
    tally_vote(tally, floor, vote);
    let mm = engine.master_metrics(i).filter(|_| records);
    match vote {
        Vote::Granted => {
            if let Some(mm) = mm {
                mm.votes_given.inc();
            }
        }
        Vote::Busy(reg) => {
            if let Some(reg) = reg {
                engine.proposer().observe(reg);
            }
            if let Some(mm) = mm {
                mm.votes_refused.inc();
            }
        }
        Vote::Stale(reg) => {
            engine.proposer().observe(reg);
            if let Some(mm) = mm {
                mm.votes_refused.inc();
            }
        }
        Vote::Amnesia => engine.note_amnesia(i),
        Vote::None => {}
    }
}

/// An operation's outcome, and the metric outcome it is recorded under.
pub(crate) trait Metered {
    /// `None`: recorded later (a grant, when its reply is written, see
    /// [`finish`]).
    fn metric(&self) -> Option<Outcome>;
}

impl<G, R> Metered for AcquireOutcome<G, R> {
    fn metric(&self) -> Option<Outcome> {
        Some(match self {
            AcquireOutcome::Granted(_) => return None,
            AcquireOutcome::Busy => Outcome::Busy,
            AcquireOutcome::NoQuorum { .. } => Outcome::NoQuorum,
            AcquireOutcome::Expired => Outcome::ExpiredInFlight,
            AcquireOutcome::Refused(_) | AcquireOutcome::Exhausted => Outcome::Rejected,
        })
    }
}

impl Metered for ReleaseOutcome {
    fn metric(&self) -> Option<Outcome> {
        Some(match self {
            ReleaseOutcome::Released => Outcome::Granted,
            ReleaseOutcome::NotHeld { .. } => Outcome::Busy,
            ReleaseOutcome::NoQuorum { .. } => Outcome::NoQuorum,
        })
    }
}

impl Metered for ExtendOutcome {
    fn metric(&self) -> Option<Outcome> {
        Some(match self {
            ExtendOutcome::Extended { .. } => Outcome::Granted,
            ExtendOutcome::NotHeld => Outcome::Busy,
            ExtendOutcome::Expired => Outcome::ExpiredInFlight,
            ExtendOutcome::NoQuorum { .. } => Outcome::NoQuorum,
        })
    }
}

/// Records an operation that began at `start` under `op`.
pub(crate) fn record(engine: &Engine, op: Op, start: Instant, outcome: &impl Metered) {
    if let Some(o) = outcome.metric() {
        engine
            .metrics()
            .lock_op(op, o, start.elapsed().as_secs_f64());
    }
}

/// The first ARGV of every acquire script: owner (or stored value), ttl in
/// ms, the proposed token, and whether this is a retry round of the same
/// request.
pub(crate) fn acquire_args(owner: &Bytes, ttl_ms: &Bytes, token: u64, round: usize) -> Vec<Bytes> {
    vec![
        owner.clone(),
        ttl_ms.clone(),
        Bytes::from(token.to_string()),
        Bytes::from_static(if round == 0 { b"0" } else { b"1" }),
    ]
}

/// Reports a grant only if it is still valid now; otherwise sends
/// `release()` and records it as expired. Called just before the reply is
/// written. `validity` also records the validity left in the histogram.
pub(crate) fn finish(
    engine: &Engine,
    op: Op,
    grant: &Grant,
    validity: bool,
    release_it: impl FnOnce() -> Option<Release>,
) -> Option<Duration> {
    let now = Instant::now();
    let elapsed = now.duration_since(grant.start).as_secs_f64();
    let m = engine.metrics();
    match remaining(grant.valid_until, now) {
        Some(left) => {
            m.lock_op(op, Outcome::Granted, elapsed);
            if validity {
                m.grant_validity.observe(left.as_secs_f64());
            }
            Some(left)
        }
        None => {
            m.lock_op(op, Outcome::ExpiredInFlight, elapsed);
            release(engine, release_it());
            None
        }
    }
}

/// Sends `r` to every voting master and lets the answers come in the
/// background (no EVAL fallback).
pub(crate) fn release(engine: &Engine, r: Option<Release>) {
    let Some(r) = r else { return };
    let deadline = Instant::now() + engine.timeout();
    let script = (r.script)(engine.scripts());
    let (_, futs) = engine.fan_out(script, r.keys, r.args, deadline, false);
    Engine::drain(futs);
}

/// One master's answer to a compare-and-* script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum YesNo {
    /// Done on that master.
    Yes,
    /// Not held there.
    No,
    /// No answer, an error, or amnesia.
    Failed,
}

/// The usual reading of a compare-and-* reply: an integer above 0 is done
/// there, any other integer not held, anything else no answer.
pub(crate) fn positive(reply: Result<Value, MasterError>) -> YesNo {
    match reply {
        Ok(Value::Int(n)) if n > 0 => YesNo::Yes,
        Ok(Value::Int(_)) => YesNo::No,
        _ => YesNo::Failed,
    }
}

/// Whether a release or extend round can stop: success is certain (`q`
/// yes), or failure is certain *and* so is its kind. "Not held" needs `q`
/// masters to have answered; "no quorum" needs the outstanding answers to be
/// unable to make `q` either way. Stopping as soon as success is impossible
/// would report a lost quorum for a lock that is simply not held whenever one
/// master is slow.
pub(crate) fn settled(yes: usize, no: usize, failed: usize, asked: usize, q: usize) -> bool {
    let outstanding = asked.saturating_sub(yes + no + failed);
    yes >= q || (yes + outstanding < q && yes + no >= q) || yes + no + outstanding < q
}

/// Sends one compare-and-* script to every voting master and counts the
/// answers, each read by `read`, until [`settled`]; returns `(yes, no)`.
/// Answers still in flight finish in the background.
pub(crate) async fn yes_no(
    engine: &Engine,
    script: &Script,
    keys: Arc<[Bytes]>,
    args: Arc<[Bytes]>,
    fallback: bool,
    start: Instant,
    mut read: impl FnMut(usize, Result<Value, MasterError>) -> YesNo,
) -> (usize, usize) {
    let q = engine.quorum();
    let (asked, mut futs) = engine.fan_out(script, keys, args, start + engine.timeout(), fallback);
    let (yes, no) = tally_yes_no(&mut futs, asked, q, &mut read).await;
    Engine::drain(futs);
    (yes, no)
}

async fn tally_yes_no<F>(
    futs: &mut FuturesUnordered<F>,
    asked: usize,
    q: usize,
    read: &mut impl FnMut(usize, Result<Value, MasterError>) -> YesNo,
) -> (usize, usize)
where
    F: std::future::Future<Output = Answer>,
{
    let (mut yes, mut no, mut failed) = (0usize, 0usize, 0usize);
    while let Some((i, reply)) = futs.next().await {
        match read(i, reply) {
            YesNo::Yes => yes += 1,
            YesNo::No => no += 1,
            YesNo::Failed => failed += 1,
        }
        if settled(yes, no, failed, asked, q) {
            break;
        }
    }
    (yes, no)
}

/// The outcome of a release that `yes` masters did and `no` refused,
/// recorded under `op`; a success wakes the local waiters of `signal`.
/// `best` is what a "not held" reply reports.
pub(crate) fn release_outcome(
    engine: &Engine,
    op: Op,
    start: Instant,
    (yes, no): (usize, usize),
    best: i64,
    signal: &[Bytes],
) -> ReleaseOutcome {
    let q = engine.quorum();
    let outcome = if yes >= q {
        engine.signals().released(signal);
        ReleaseOutcome::Released
    } else if yes + no >= q {
        ReleaseOutcome::NotHeld { best }
    } else {
        ReleaseOutcome::NoQuorum {
            voted: yes + no,
            needed: q,
        }
    };
    record(engine, op, start, &outcome);
    outcome
}

/// The outcome of an extend that `yes` masters accepted and `no` refused,
/// each setting its expiry to its own now + `ttl`, that now being no
/// earlier than `start`; recorded under `op`.
pub(crate) fn extend_outcome(
    engine: &Engine,
    op: Op,
    start: Instant,
    ttl: Duration,
    (yes, no): (usize, usize),
) -> ExtendOutcome {
    let q = engine.quorum();
    let cfg = engine.config();
    let outcome = if yes >= q {
        let until = start + ttl.saturating_sub(drift(ttl, cfg.drift_factor, cfg.drift_constant));
        match remaining(until, Instant::now()) {
            Some(left) => ExtendOutcome::Extended { validity: left },
            None => ExtendOutcome::Expired,
        }
    } else if yes + no >= q {
        ExtendOutcome::NotHeld
    } else {
        ExtendOutcome::NoQuorum {
            voted: yes + no,
            needed: q,
        }
    };
    record(engine, op, start, &outcome);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_master_does_not_turn_not_held_into_no_quorum() {
        // 5 masters: two said "not held", one timed out, two still out.
        assert!(!settled(0, 2, 1, 5, 3));
        // A third "not held" settles it as not held.
        assert!(settled(0, 3, 1, 5, 3));
    }

    #[test]
    fn release_settles_on_a_quorum_of_yes() {
        assert!(settled(3, 0, 0, 5, 3));
        assert!(!settled(2, 0, 0, 5, 3));
    }

    #[test]
    fn too_many_failures_settle_as_no_quorum() {
        assert!(settled(1, 0, 3, 5, 3));
        assert!(settled(0, 0, 2, 2, 3)); // only two masters were asked
    }

    #[test]
    fn acquire_replies_decode_to_their_codes() {
        let pair = |c, v| Value::Array(vec![Value::Int(c), Value::Int(v)]);
        assert_eq!(
            AcquireReply::decode(&pair(code::GRANTED, 7)),
            Ok(AcquireReply::Granted(7))
        );
        assert_eq!(
            AcquireReply::decode(&pair(code::BUSY, 9)),
            Ok(AcquireReply::Busy(9))
        );
        assert_eq!(
            AcquireReply::decode(&pair(code::STALE, -1)),
            Ok(AcquireReply::Stale(0))
        );
        assert_eq!(
            AcquireReply::decode(&pair(code::AMNESIA, 0)),
            Ok(AcquireReply::Amnesia)
        );
        assert_eq!(
            AcquireReply::decode(&pair(code::MISMATCH, 3)),
            Ok(AcquireReply::Mismatch(3))
        );
    }

    #[test]
    fn malformed_acquire_replies_are_errors_not_panics() {
        assert_eq!(
            AcquireReply::decode(&Value::Array(vec![Value::Int(9), Value::Int(0)])),
            Err(DecodeError::Code(9))
        );
        assert!(AcquireReply::decode(&Value::Int(0)).is_err());
        assert!(AcquireReply::decode(&Value::Array(vec![Value::Int(0)])).is_err());
        assert!(AcquireReply::decode(&Value::Array(vec![
            Value::Int(0),
            Value::Bulk(Bytes::from_static(b"1"))
        ]))
        .is_err());
        assert_eq!(decimal(b"x1"), Err(DecodeError::Token));
    }
}
