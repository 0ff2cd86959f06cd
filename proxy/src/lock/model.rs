//! A model of N masters and interleaved proposers, to property-test the
//! fencing-token rule with the real quorum decision ([`Tally::decide`]),
//! counted by the core's own [`round::tally_vote`] and bounded by its
//! [`round::MAX_ROUNDS`] (docs/design.md, *Token rule* and *Amnesia guard*).
//!
//! Each master is the acquire scripts in miniature, over a few keys: a lock
//! holder with an expiry, a fence register per key that expires
//! `max(retention, ttl)` after its last grant, the metadata record (floor,
//! high-water mark, and the high-water mark of each bucket of keys), and
//! refusal codes for busy, stale and amnesia. A missing register reads as
//! its bucket's mark, or the floor while the bucket has none. Every master
//! keeps its own clock, which jumps forward and backward: expiry of holders
//! and registers follows it. A master may restart without its data (it then
//! answers amnesia until the amnesia guard re-seeds it, after the
//! quarantine, with the largest high-water mark of the masters that kept a
//! record) or with it (its clock jumps, so keys may expire on load).
//!
//! Proposers pick tokens the way [`crate::fence`] does (above the highest
//! value seen, above a clock that may be skewed per proposer, plus the lead
//! stale refusals taught), fan out to every master, and decide on each reply
//! as it arrives. A proposer may restart and forget what it saw. The
//! scheduler interleaves message deliveries freely, loses requests and
//! replies, lets time pass, and releases grants. A request older than the
//! longest acquire time is dropped, as the quarantine assumes.
//!
//! Properties, for every schedule:
//! - no two grants of a key carry the same token;
//! - a grant that completed before another was requested has the smaller
//!   token.
//!
//! Broken variants of the master's rule ([`Rule`]) must fail on the same
//! scheduler, so the properties cannot hold vacuously: no register check at
//! all, a missing register accepted at any token above 0, the floor check
//! dropped, and a grant that does not raise its bucket's mark.

#![cfg(test)]

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::quorum::{quorum, Decision, Tally};
use super::round::{self, MAX_ROUNDS};

/// Keys of the model, and the buckets they fall in.
const KEYS: usize = 3;
const BUCKETS: usize = 2;

/// The rule a master applies; only `Real` is the scripts' rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The acquire scripts' rule.
    Real,
    /// Broken: every token is accepted (no register check).
    NoRegisterCheck,
    /// Broken: a missing register reads as 0, so a key whose register
    /// expired accepts any token above 0.
    MissingRegisterIsZero,
    /// Broken: the floor is ignored, both beside a register and in place of
    /// a bucket mark not yet written.
    NoFloor,
    /// Broken: a grant raises the master-wide mark but not its bucket's.
    BucketNotRaised,
}

#[derive(Debug, Clone)]
struct Record {
    floor: u64,
    hwm: u64,
    buckets: [Option<u64>; BUCKETS],
}

#[derive(Debug, Clone)]
struct ModelMaster {
    /// None: the record is missing (restarted empty); no vote.
    record: Option<Record>,
    /// Per key: (owner, expires at on this master's clock).
    holder: [Option<(u32, i64)>; KEYS],
    /// Per key: (register, expires at on this master's clock).
    register: [Option<(u64, i64)>; KEYS],
    /// This master's clock minus real time.
    offset: i64,
    /// When the gateway first saw it without its record.
    lost_at: Option<u64>,
}

impl ModelMaster {
    fn new() -> Self {
        ModelMaster {
            record: Some(Record {
                floor: 0,
                hwm: 0,
                buckets: [None; BUCKETS],
            }),
            holder: [None; KEYS],
            register: [None; KEYS],
            offset: 0,
            lost_at: None,
        }
    }
}

enum Vote {
    Granted,
    Busy(u64),
    Stale(u64),
    Amnesia,
}

/// Everything one acquire hands a master.
struct Ask {
    key: usize,
    bucket: usize,
    owner: u32,
    token: u64,
    retry: bool,
}

impl ModelMaster {
    /// The acquire scripts for one key, on this master's clock `local`.
    fn acquire(&mut self, a: &Ask, local: i64, ttl: i64, retention: i64, rule: Rule) -> Vote {
        let Some(rec) = self.record.as_mut() else {
            return Vote::Amnesia;
        };
        if matches!(self.holder[a.key], Some((_, exp)) if exp <= local) {
            self.holder[a.key] = None;
        }
        if matches!(self.register[a.key], Some((_, exp)) if exp <= local) {
            self.register[a.key] = None;
        }
        let stand_in = if rule == Rule::NoFloor { 0 } else { rec.floor };
        let reg = match self.register[a.key] {
            Some((r, _)) => r,
            None if rule == Rule::MissingRegisterIsZero => 0,
            None => rec.buckets[a.bucket].unwrap_or(stand_in),
        };
        let highest = if rule == Rule::NoFloor {
            reg
        } else {
            reg.max(rec.floor)
        };
        if let Some((h, _)) = self.holder[a.key] {
            if h != a.owner || !a.retry {
                return Vote::Busy(highest);
            }
        }
        if a.token <= highest && rule != Rule::NoRegisterCheck {
            return Vote::Stale(highest);
        }
        self.holder[a.key] = Some((a.owner, local + ttl));
        let keep = self.register[a.key].map_or(0, |(_, e)| e);
        self.register[a.key] = Some((a.token, keep.max(local + retention.max(ttl))));
        if rule != Rule::BucketNotRaised {
            let b = &mut rec.buckets[a.bucket];
            *b = Some(b.unwrap_or(0).max(a.token));
        }
        rec.hwm = rec.hwm.max(a.token);
        Vote::Granted
    }

    fn release(&mut self, key: usize, owner: u32) {
        if matches!(self.holder[key], Some((h, _)) if h == owner) {
            self.holder[key] = None;
        }
    }
}

#[derive(Debug, Clone)]
struct Op {
    key: usize,
    owner: u32,
    proposer: usize,
    token: u64,
    round: usize,
    /// Masters this round's request has not reached yet.
    undelivered: Vec<usize>,
    tally: Tally,
    requested_at: u64,
    round_at: u64,
    done: bool,
}

/// One scheduler step, chosen by proptest.
#[derive(Debug, Clone)]
enum Step {
    Start {
        proposer: usize,
        key: usize,
    },
    Deliver {
        op: usize,
        pick: usize,
        lose_request: bool,
        lose_reply: bool,
    },
    Tick {
        by: u64,
    },
    Release {
        grant: usize,
    },
    /// A master's clock jumps (forward or backward).
    Jump {
        master: usize,
        by: i64,
    },
    /// A master restarts, with or without its data.
    Restart {
        master: usize,
        keep_data: bool,
    },
    /// The amnesia guard's recovery pass over every master.
    Recover,
    /// A proposer restarts and forgets what it saw.
    Forget {
        proposer: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0usize..3, 0usize..KEYS).prop_map(|(proposer, key)| Step::Start { proposer, key }),
        10 => (0usize..16, 0usize..8, prop::bool::weighted(0.1), prop::bool::weighted(0.1))
            .prop_map(|(op, pick, lose_request, lose_reply)| Step::Deliver { op, pick, lose_request, lose_reply }),
        2 => (1u64..40).prop_map(|by| Step::Tick { by }),
        1 => (0usize..16).prop_map(|grant| Step::Release { grant }),
        1 => (0usize..5, -120i64..120).prop_map(|(master, by)| Step::Jump { master, by }),
        1 => (0usize..5, any::<bool>()).prop_map(|(master, keep_data)| Step::Restart { master, keep_data }),
        1 => Just(Step::Recover),
        1 => (0usize..3).prop_map(|proposer| Step::Forget { proposer }),
    ]
}

/// The fixed parameters of one world.
#[derive(Debug, Clone)]
struct Setup {
    n: usize,
    skew: Vec<i64>,
    /// Bucket of each key.
    bucket_of: [usize; KEYS],
    retention: i64,
    rule: Rule,
}

struct World {
    masters: Vec<ModelMaster>,
    q: usize,
    now: u64,
    ttl: u64,
    /// Longest an acquire round may take: older requests are dropped.
    max_acquire: u64,
    retention: i64,
    rule: Rule,
    bucket_of: [usize; KEYS],
    /// Per proposer: highest value seen, its clock skew, its learned lead.
    seen: Vec<u64>,
    skew: Vec<i64>,
    lead: Vec<u64>,
    ops: Vec<Op>,
    /// (op index, key, token, requested_at, completed_at)
    grants: Vec<(usize, usize, u64, u64, u64)>,
    next_owner: u32,
}

impl World {
    fn new(s: &Setup) -> World {
        World {
            masters: vec![ModelMaster::new(); s.n],
            q: quorum(s.n),
            now: 1,
            ttl: 30,
            max_acquire: 20,
            retention: s.retention,
            rule: s.rule,
            bucket_of: s.bucket_of,
            seen: vec![0; s.skew.len()],
            lead: vec![0; s.skew.len()],
            skew: s.skew.clone(),
            ops: Vec::new(),
            grants: Vec::new(),
            next_owner: 0,
        }
    }

    /// [`crate::fence::TokenProposer::propose_above`] in miniature.
    fn propose(&mut self, p: usize, floor: u64) -> u64 {
        let clock = (self.now as i64 * 10 + self.skew[p]).max(0) as u64;
        if floor > clock {
            self.lead[p] = self.lead[p].max(floor - clock);
        }
        let t = (self.seen[p].max(floor) + 1).max(clock + self.lead[p]);
        self.seen[p] = t;
        t
    }

    fn start(&mut self, proposer: usize, key: usize) {
        let token = self.propose(proposer, 0);
        self.next_owner += 1;
        self.ops.push(Op {
            key,
            owner: self.next_owner,
            proposer,
            token,
            round: 0,
            undelivered: (0..self.masters.len()).collect(),
            tally: Tally::default(),
            requested_at: self.now,
            round_at: self.now,
            done: false,
        });
    }

    fn deliver(&mut self, oi: usize, pick: usize, lose_request: bool, lose_reply: bool) {
        let n = self.masters.len();
        let now = self.now;
        let Some(op) = self.ops.get_mut(oi) else {
            return;
        };
        if op.done || op.undelivered.is_empty() {
            return;
        }
        if now > op.round_at + self.max_acquire {
            // The acquire ran out of time; its requests are gone.
            op.done = true;
            return;
        }
        let m = op.undelivered.remove(pick % op.undelivered.len());
        let ask = Ask {
            key: op.key,
            bucket: self.bucket_of[op.key],
            owner: op.owner,
            token: op.token,
            retry: op.round > 0,
        };
        let local = now as i64 + self.masters[m].offset;
        let vote = if lose_request {
            None
        } else {
            Some(self.masters[m].acquire(&ask, local, self.ttl as i64, self.retention, self.rule))
        };
        let op = &mut self.ops[oi];
        // What the proposer observes: the register of any refusal.
        let (counted, floor) = match vote {
            _ if lose_reply || lose_request => (round::Vote::None, 0),
            Some(Vote::Granted) => (round::Vote::Granted, 0),
            Some(Vote::Busy(r)) => (round::Vote::Busy(Some(r)), r),
            Some(Vote::Stale(r)) => (round::Vote::Stale(r), r),
            Some(Vote::Amnesia) => {
                if self.masters[m].lost_at.is_none() {
                    self.masters[m].lost_at = Some(now);
                }
                (round::Vote::Amnesia, 0)
            }
            None => (round::Vote::None, 0),
        };
        round::tally_vote(&mut op.tally, &mut 0, counted);
        let p = op.proposer;
        self.seen[p] = self.seen[p].max(floor);
        let decision = self.ops[oi].tally.decide(n, self.q);
        let op = &mut self.ops[oi];
        match decision {
            Decision::Pending => {}
            Decision::Granted => {
                op.done = true;
                self.grants
                    .push((oi, op.key, op.token, op.requested_at, self.now));
            }
            Decision::RetryHigher if op.round + 1 < MAX_ROUNDS => {
                let next_floor = self.seen[p];
                let t = self.propose(p, next_floor);
                let op = &mut self.ops[oi];
                op.round += 1;
                op.token = t;
                op.tally = Tally::default();
                op.undelivered = (0..n).collect();
                op.round_at = now;
            }
            _ => op.done = true,
        }
    }

    fn restart(&mut self, m: usize, keep_data: bool) {
        let now = self.now;
        let retention = self.retention.max(self.ttl as i64);
        let mm = &mut self.masters[m];
        if keep_data {
            // Back from its own data, with a clock that moved on: keys may
            // expire on load.
            mm.offset += retention;
        } else {
            *mm = ModelMaster {
                record: None,
                lost_at: Some(now),
                ..ModelMaster::new()
            };
        }
    }

    /// The amnesia guard: a master without its record, quarantined for
    /// `ttl + max_acquire` since it was first seen so, is re-seeded with the
    /// largest high-water mark of the masters that carry a record, when at
    /// least a quorum do.
    fn recover(&mut self) {
        let quarantine = self.ttl + self.max_acquire;
        let healthy: Vec<u64> = self
            .masters
            .iter()
            .filter_map(|m| m.record.as_ref().map(|r| r.hwm))
            .collect();
        if healthy.len() < self.q {
            return;
        }
        let floor = healthy.iter().copied().max().unwrap_or(0);
        for m in &mut self.masters {
            if m.record.is_none() && m.lost_at.is_some_and(|t| self.now >= t + quarantine) {
                m.record = Some(Record {
                    floor,
                    hwm: floor,
                    buckets: [None; BUCKETS],
                });
                m.lost_at = None;
            }
        }
    }

    fn check(&self) -> Result<(), TestCaseError> {
        for (i, a) in self.grants.iter().enumerate() {
            for b in self.grants[i + 1..].iter().filter(|b| b.1 == a.1) {
                prop_assert_ne!(a.2, b.2, "two grants of key {} carry token {}", a.1, a.2);
                if a.4 < b.3 {
                    prop_assert!(a.2 < b.2, "grant {:?} completed before {:?} began", a, b);
                }
                if b.4 < a.3 {
                    prop_assert!(b.2 < a.2, "grant {:?} completed before {:?} began", b, a);
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, s: Step) {
        let n = self.masters.len();
        match s {
            Step::Start { proposer, key } => self.start(proposer % self.seen.len(), key),
            Step::Deliver {
                op,
                pick,
                lose_request,
                lose_reply,
            } => {
                if !self.ops.is_empty() {
                    let oi = op % self.ops.len();
                    self.deliver(oi, pick, lose_request, lose_reply);
                }
            }
            // Time only moves forward between deliveries, so "completed
            // before requested" compares distinct instants.
            Step::Tick { by } => self.now += by,
            Step::Release { grant } => {
                if !self.grants.is_empty() {
                    let (oi, key, ..) = self.grants[grant % self.grants.len()];
                    let owner = self.ops[oi].owner;
                    for m in &mut self.masters {
                        m.release(key, owner);
                    }
                }
            }
            Step::Jump { master, by } => self.masters[master % n].offset += by,
            Step::Restart { master, keep_data } => self.restart(master % n, keep_data),
            Step::Recover => self.recover(),
            Step::Forget { proposer } => {
                let p = proposer % self.seen.len();
                self.seen[p] = 0;
                self.lead[p] = 0;
            }
        }
    }
}

fn run(setup: &Setup, steps: Vec<Step>) -> Result<usize, TestCaseError> {
    let mut w = World::new(setup);
    for s in steps {
        w.apply(s);
        w.check()?;
    }
    Ok(w.grants.len())
}

fn setup(rule: Rule) -> impl Strategy<Value = Setup> {
    (
        prop::sample::select(vec![1usize, 3, 5]),
        prop::collection::vec(-400i64..400, 3),
        prop::array::uniform3(0usize..BUCKETS),
        prop::sample::select(vec![0i64, 10, 60]),
    )
        .prop_map(move |(n, skew, bucket_of, retention)| Setup {
            n,
            skew,
            bucket_of,
            retention,
            rule,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tokens_are_unique_and_ordered_by_real_time(
        setup in setup(Rule::Real),
        steps in prop::collection::vec(step(), 1..300),
    ) {
        run(&setup, steps)?;
    }
}

/// Whether the scheduler finds a violation of the properties under `rule`
/// within `cases` deterministic schedules.
fn finds_violation(rule: Rule, cases: u32) -> bool {
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    runner
        .run(
            &(setup(rule), prop::collection::vec(step(), 1..300)),
            |(setup, steps)| run(&setup, steps).map(|_| ()),
        )
        .is_err()
}

/// The model must be able to fail: each broken rule is caught by the same
/// scheduler that finds no violation of the real one.
#[test]
fn the_model_catches_every_broken_rule() {
    for rule in [
        Rule::NoRegisterCheck,
        Rule::MissingRegisterIsZero,
        Rule::BucketNotRaised,
    ] {
        assert!(
            finds_violation(rule, 2048),
            "{rule:?} must produce a violation"
        );
    }
}

/// Two masters of three restart empty one after the other and are
/// re-seeded; a proposer whose clock lags far and who has seen nothing then
/// proposes a token below one granted before. Only the floor (the
/// re-seeded masters have no registers and no bucket marks) refuses it.
fn reseeded_majority(rule: Rule) -> Result<usize, TestCaseError> {
    let mut w = World::new(&Setup {
        n: 3,
        skew: vec![0, -100_000],
        bucket_of: [0; KEYS],
        retention: 10,
        rule,
    });
    w.now = 20_000;
    w.start(0, 0);
    for _ in 0..3 {
        w.deliver(0, 0, false, false);
    }
    assert_eq!(w.grants.len(), 1);
    for m in [0, 1] {
        w.apply(Step::Restart {
            master: m,
            keep_data: false,
        });
        w.apply(Step::Tick { by: 60 });
        w.apply(Step::Recover);
        assert!(w.masters[m].record.is_some(), "master {m} re-seeded");
    }
    w.start(1, 0);
    let oi = w.ops.len() - 1;
    for _ in 0..3 * MAX_ROUNDS {
        w.deliver(oi, 0, false, false);
    }
    w.check()?;
    Ok(w.grants.len())
}

#[test]
fn the_floor_keeps_re_seeded_masters_above_what_they_forgot() {
    assert_eq!(reseeded_majority(Rule::Real).ok(), Some(2));
    assert!(
        reseeded_majority(Rule::NoFloor).is_err(),
        "dropping the floor check must produce a violation"
    );
}

/// The real rule holds on the deterministic schedules the broken ones fail.
#[test]
fn the_real_rule_holds_on_the_same_schedules() {
    assert!(!finds_violation(Rule::Real, 1024));
}
