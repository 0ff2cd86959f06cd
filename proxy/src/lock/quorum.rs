//! The quorum decision, as a pure function over the votes counted so far.
//!
//! An acquire round asks every voting master once. Each answer is one of:
//! granted with the proposed token, busy (held by another owner), stale (the
//! proposed token is not above the master's register), or no vote (error,
//! timeout, amnesia). The round ends as soon as the outcome is certain:
//! `q` grants win at once (stragglers are not awaited), and the round is lost
//! as soon as the masters still outstanding cannot bring the grants to `q`.

/// Majority quorum for `n` masters.
pub fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// Votes counted so far in one acquire round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub granted: usize,
    pub busy: usize,
    pub stale: usize,
    pub no_vote: usize,
}

/// What to do after counting a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// More answers could still change the outcome.
    Pending,
    /// `q` masters accepted the same token.
    Granted,
    /// Lost, but only because the token was too low: a round with a higher
    /// token could win.
    RetryHigher,
    /// Lost because another owner holds the key on enough masters.
    Busy,
    /// Lost because too few masters voted at all.
    NoQuorum,
}

impl Tally {
    fn answered(&self) -> usize {
        self.granted + self.busy + self.stale + self.no_vote
    }

    /// Decides the round given `asked` masters were asked (the voting ones)
    /// out of `n` configured, with quorum `q`.
    pub fn decide(&self, asked: usize, q: usize) -> Decision {
        if self.granted >= q {
            return Decision::Granted;
        }
        let outstanding = asked.saturating_sub(self.answered());
        if self.granted + outstanding >= q {
            return Decision::Pending;
        }
        // Lost. A retry with a higher token can only help when masters that
        // refused as stale (plus those that granted, which accept the higher
        // token as the same request's retry) could still form a quorum, and
        // no other owner is in the way.
        if self.busy == 0 && self.stale > 0 && self.granted + self.stale + outstanding >= q {
            return Decision::RetryHigher;
        }
        if self.busy > 0 {
            Decision::Busy
        } else {
            Decision::NoQuorum
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quorum_is_a_strict_majority() {
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(2), 2);
        assert_eq!(quorum(3), 2);
        assert_eq!(quorum(4), 3);
        assert_eq!(quorum(5), 3);
    }

    #[test]
    fn three_grants_of_five_win_without_waiting_for_stragglers() {
        let t = Tally {
            granted: 3,
            ..Tally::default()
        };
        assert_eq!(t.decide(5, 3), Decision::Granted);
    }

    #[test]
    fn two_grants_with_three_outstanding_is_pending() {
        let t = Tally {
            granted: 2,
            ..Tally::default()
        };
        assert_eq!(t.decide(5, 3), Decision::Pending);
    }

    #[test]
    fn lock_fails_when_only_minority_reachable() {
        let t = Tally {
            granted: 2,
            ..Tally::default()
        };
        // Three masters are down and were never asked.
        assert_eq!(t.decide(2, 3), Decision::NoQuorum);
    }

    #[test]
    fn busy_majority_is_busy_as_soon_as_it_is_certain() {
        let t = Tally {
            busy: 3,
            ..Tally::default()
        };
        assert_eq!(t.decide(5, 3), Decision::Busy);
    }

    #[test]
    fn stale_refusals_ask_for_a_higher_token() {
        let t = Tally {
            granted: 1,
            stale: 2,
            no_vote: 2,
            busy: 0,
        };
        assert_eq!(t.decide(5, 3), Decision::RetryHigher);
    }

    #[test]
    fn stale_refusals_behind_another_owner_do_not_retry() {
        let t = Tally {
            granted: 1,
            stale: 1,
            busy: 3,
            no_vote: 0,
        };
        assert_eq!(t.decide(5, 3), Decision::Busy);
    }

    proptest! {
        #[test]
        fn granted_only_with_a_quorum_of_grants(
            granted in 0usize..6, busy in 0usize..6, stale in 0usize..6, no_vote in 0usize..6,
        ) {
            let t = Tally { granted, busy, stale, no_vote };
            let asked = t.answered().max(5);
            let q = quorum(5);
            let d = t.decide(asked, q);
            prop_assert_eq!(d == Decision::Granted, granted >= q);
            if d == Decision::Pending {
                prop_assert!(granted + (asked - t.answered()) >= q);
            }
        }
    }
}
