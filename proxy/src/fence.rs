//! Fencing-token proposals.
//!
//! A proposal is `max(highest token this gateway has seen + 1, wall-clock
//! Unix time in microseconds)`. The masters, not this module, make tokens
//! safe: each master's per-key register only rises, and any two quorums share
//! a master, so two grants never carry the same token and a grant that
//! completed before another was requested has the smaller one (docs/design.md,
//! *Token rule*). Proposals only need to be *likely* to win, and to stay below
//! 2^53 because the Lua on the masters holds them as doubles.
//!
//! # Deviation from the design, on purpose
//! The classic design keeps the highest token seen *per key*. A per-key map grows with
//! every lock name ever used; this gateway keeps one highest-seen value for
//! all keys instead. Up to [`MAX_LEAD_US`] ahead of the clock it is never
//! lower than any per-key value, so proposals win at least as often, and
//! memory stays constant. Tokens of a key may then jump by more than one;
//! the rule asks only that they rise.
//!
//! # What may move the highest seen
//! Only this gateway's own proposals and register values the masters
//! return: registers and the metadata record live under the gateway's
//! internal names, which no client command can name
//! ([`crate::lock::keys`]), so no value a client wrote ever drives it. And
//! it is never pulled more than [`MAX_LEAD_US`] ahead of the clock: a key
//! whose register is further ahead gets proposals above its register, for
//! that key alone. A key whose register is within reach of 2^53 is refused
//! with [`TokenSpaceExhausted`], naming the key; every other key keeps
//! getting tokens.
//!
//! # Lead over this gateway's clock
//! A key whose register expired takes its token above the master's
//! high-water mark, which another gateway's clock may have pushed ahead of
//! this one's. When a stale refusal returns a value above this gateway's
//! clock, the difference is kept as a lead and added to the clock for every
//! later proposal, so a lagging gateway keeps pace with the fastest one
//! instead of being refused once per fresh key. The lead only grows; it can
//! only make proposals larger, never unsafe.
//!
//! # Concurrency note
//! Proposals are handed out with a compare-and-swap so that two requests of
//! this gateway never propose the same value, even within one microsecond.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest token a master can hold exactly (Lua numbers are doubles).
pub const MAX_TOKEN: u64 = (1 << 53) - 1;

/// How far ahead of this gateway's clock the shared highest-seen value
/// may be pulled (one day). Gateway clocks are expected within seconds of
/// each other; a register further ahead is still honoured for its key, by
/// proposing above it, without dragging the proposals of every key along.
pub const MAX_LEAD_US: u64 = 24 * 3600 * 1_000_000;

/// A fencing token: strictly increasing per lock key across every grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(pub u64);

/// The token space of one key is used up: its register is within reach of
/// [`MAX_TOKEN`]. Only a wildly wrong clock (or an operator's write to a
/// register) gets here; the acquire of that key is refused, by name, and
/// other keys are unaffected. The one text of this error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fencing token space exhausted (a proposal would exceed 2^53)")]
pub struct TokenSpaceExhausted;

/// Hands out token proposals for this gateway process.
#[derive(Debug, Default)]
pub struct TokenProposer {
    highest: AtomicU64,
    /// Test hook: microseconds added to the wall clock, to emulate a gateway
    /// whose clock is skewed (the chaos suite moves it both ways).
    clock_offset_us: AtomicI64,
    /// Microseconds added to the clock: how far ahead of it stale refusals
    /// have shown the masters' high-water marks to be.
    lead_us: AtomicU64,
    /// Test hook: true stops learning a lead, so a lagging clock keeps
    /// proposing low (the chaos suite's negative control needs that).
    no_lead: AtomicBool,
}

impl TokenProposer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wall-clock Unix time in microseconds, with the test offset applied.
    pub fn now_us(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let off = self.clock_offset_us.load(Ordering::Relaxed);
        if off >= 0 {
            real.saturating_add(off.unsigned_abs())
        } else {
            real.saturating_sub(off.unsigned_abs())
        }
    }

    /// Shifts this gateway's notion of wall-clock time (tests only).
    pub fn set_clock_offset_us(&self, offset: i64) {
        self.clock_offset_us.store(offset, Ordering::Relaxed);
    }

    /// A fresh proposal, above every proposal and observation so far.
    ///
    /// # Errors
    /// [`TokenSpaceExhausted`] when the proposal would pass [`MAX_TOKEN`].
    pub fn propose(&self) -> Result<FencingToken, TokenSpaceExhausted> {
        self.propose_above(0)
    }

    /// A fresh proposal that is also above `floor` (a value a master
    /// returned when it refused a proposal as stale: the key's register, or
    /// the master's fence floor).
    ///
    /// The shared highest-seen value moves up to the proposal, but never
    /// more than [`MAX_LEAD_US`] ahead of this gateway's clock: a `floor`
    /// further ahead (one key whose register some far-ahead clock raised)
    /// is served for its own key only, so it cannot push every other key's
    /// proposals towards the end of the token space. Two requests racing on
    /// such a key may then propose the same value; the masters accept at
    /// most one of them, and the other retries higher.
    ///
    /// # Errors
    /// [`TokenSpaceExhausted`] when the proposal would pass [`MAX_TOKEN`]:
    /// this key (the one whose register set `floor`) can get no token, and
    /// other keys are unaffected.
    pub fn propose_above(&self, floor: u64) -> Result<FencingToken, TokenSpaceExhausted> {
        let clock = self.now_us();
        // The lead follows the masters' marks, but never past the same
        // bound the shared highest-seen value keeps.
        if floor > clock && !self.no_lead.load(Ordering::Relaxed) {
            self.lead_us
                .fetch_max((floor - clock).min(MAX_LEAD_US), Ordering::AcqRel);
        }
        let now = clock.saturating_add(self.lead_us.load(Ordering::Acquire));
        let cap = clock.saturating_add(MAX_LEAD_US);
        let mut cur = self.highest.load(Ordering::Relaxed);
        loop {
            let shared = cur.saturating_add(1).max(now);
            let next = shared.max(floor.saturating_add(1));
            if next > MAX_TOKEN {
                return Err(TokenSpaceExhausted);
            }
            let keep = next.min(cap.max(shared));
            match self
                .highest
                .compare_exchange_weak(cur, keep, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(FencingToken(next)),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Stops (or resumes) learning a lead from stale refusals (tests only).
    pub fn set_lead_learning(&self, on: bool) {
        self.no_lead.store(!on, Ordering::Relaxed);
    }

    /// How far ahead of this gateway's clock proposals run (see the module
    /// docs, *Lead over this gateway's clock*).
    pub fn lead_us(&self) -> u64 {
        self.lead_us.load(Ordering::Relaxed)
    }

    /// Records a register value a master returned (an acquire script's
    /// busy or stale reply, or the high-water marks the amnesia guard
    /// reads). Registers are written only by gateways, under names no
    /// client command reaches ([`crate::lock::keys`]), so no value a client
    /// wrote gets here; even so, a value is taken at most [`MAX_LEAD_US`]
    /// ahead of this gateway's clock, so one key's register can slow
    /// nobody else's proposals, let alone exhaust them.
    pub fn observe(&self, token: u64) {
        let cap = self.now_us().saturating_add(MAX_LEAD_US);
        self.highest
            .fetch_max(token.min(cap).min(MAX_TOKEN), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposals_strictly_increase() {
        let p = TokenProposer::new();
        let mut last = 0;
        for _ in 0..10_000 {
            let t = p.propose().unwrap_or(FencingToken(0)).0;
            assert!(t > last);
            last = t;
        }
    }

    #[test]
    fn proposals_follow_the_wall_clock() {
        let p = TokenProposer::new();
        let now = p.now_us();
        let t = p.propose().unwrap_or(FencingToken(0)).0;
        assert!(t >= now);
    }

    #[test]
    fn proposals_rise_above_observed_tokens_from_a_clock_ahead() {
        let p = TokenProposer::new();
        let ahead = p.now_us() + 60_000_000;
        p.observe(ahead);
        assert!(p.propose().unwrap_or(FencingToken(0)).0 > ahead);
        assert!(p.propose_above(ahead + 10).unwrap_or(FencingToken(0)).0 > ahead + 10);
    }

    #[test]
    fn a_clock_that_jumps_back_never_lowers_proposals() {
        let p = TokenProposer::new();
        let first = p.propose().unwrap_or(FencingToken(0)).0;
        p.set_clock_offset_us(-600_000_000);
        assert!(p.propose().unwrap_or(FencingToken(0)).0 > first);
    }

    #[test]
    fn a_stale_floor_ahead_of_the_clock_becomes_a_lead() {
        let p = TokenProposer::new();
        let ahead = p.now_us() + 60_000_000;
        assert!(p.propose_above(ahead).unwrap_or(FencingToken(0)).0 > ahead);
        assert!(p.lead_us() >= 59_000_000);
        // Later plain proposals keep pace with the clock that was ahead.
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(p.propose().unwrap_or(FencingToken(0)).0 > ahead + 4_000);
        // A floor behind the clock teaches nothing.
        let q = TokenProposer::new();
        let _ = q.propose_above(1);
        assert_eq!(q.lead_us(), 0);
    }

    #[test]
    fn proposals_stop_below_two_to_the_53() {
        let p = TokenProposer::new();
        assert_eq!(p.propose_above(MAX_TOKEN), Err(TokenSpaceExhausted));
        assert_eq!(p.propose_above(MAX_TOKEN - 1), Ok(FencingToken(MAX_TOKEN)));
    }

    #[test]
    fn one_key_at_the_end_of_the_token_space_wedges_no_other_key() {
        let p = TokenProposer::new();
        // A register at 2^53 - 1 is observed (a stale reply) and proposed
        // above: that key is refused, the next key is not.
        p.observe(MAX_TOKEN);
        assert_eq!(p.propose_above(MAX_TOKEN), Err(TokenSpaceExhausted));
        let far = MAX_TOKEN - 10;
        assert_eq!(p.propose_above(far), Ok(FencingToken(far + 1)));
        for _ in 0..100 {
            let t = p.propose().map(|t| t.0).unwrap_or(0);
            assert!(t > 0 && t <= p.now_us() + MAX_LEAD_US + 1_000, "{t}");
        }
    }

    #[test]
    fn registers_within_the_lead_still_raise_every_proposal() {
        let p = TokenProposer::new();
        let ahead = p.now_us() + MAX_LEAD_US / 2;
        p.observe(ahead);
        assert!(p.propose().map(|t| t.0).unwrap_or(0) > ahead);
    }

    #[test]
    fn concurrent_proposals_are_unique() {
        let p = std::sync::Arc::new(TokenProposer::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    (0..5000)
                        .map(|_| p.propose().map(|t| t.0).unwrap_or(0))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
