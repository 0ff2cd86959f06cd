//! A model of N masters running the read-write lock and semaphore rules
//! (`rw_acquire.lua`, `sem_acquire.lua`) with interleaved proposers, to
//! property-test the invariants of read-write locks and semaphores with the
//! real quorum decision ([`Tally::decide`]), counted by the core's own
//! [`round::tally_vote`], the real slot choice ([`SlotVotes`]) and the real
//! round allowance ([`MAX_ROUNDS`] plus [`SLOT_ROUNDS`]); docs/design.md,
//! *Read-write locks, with writer preference* and *Semaphores*.
//!
//! The scheduler starts requests of every kind on one key, delivers their
//! messages in any order, loses requests and replies, lets model time pass
//! (masters expire holders on their own, fault-free clocks), and releases
//! grants. A grant is valid from its completion until `requested_at + ttl`
//! (the drift allowance is zero here, the clocks being exact) or until its
//! release. Properties, checked after every step:
//! - never more than `permits` valid semaphore holders;
//! - never a valid writer together with any other valid reader or writer;
//! - tokens of the key unique, and ordered by real time across kinds.
//!
//! Each property is shown able to fail by a test-only variant of the rule
//! ([`Broken`]): a quorum one too small, a slot check off by one, a count-only
//! semaphore, a reader admitted past a writer, a register that does not rise.

#![cfg(test)]

use proptest::prelude::*;

use crate::kinds::holders::{SlotVotes, SLOT_ROUNDS};
use crate::lock::quorum::{quorum, Decision, Tally};
use crate::lock::round::{self, MAX_ROUNDS};

/// Test-only ways to break the rules, to show the checks can fail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Broken {
    /// Subtracted from the majority quorum.
    quorum_minus: usize,
    /// Slots run 0..=permits instead of 0..permits.
    slot_off_by_one: bool,
    /// A semaphore master counts live holders instead of using slots.
    count_only: bool,
    /// Readers are admitted even with a live writer.
    reader_ignores_writer: bool,
    /// Proposals are not checked against the register.
    no_register: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sem,
    Read,
    Write,
}

#[derive(Debug, Clone, Default)]
struct Master {
    /// (owner, slot, expires_at)
    sem: Vec<(u32, u64, u64)>,
    readers: Vec<(u32, u64)>,
    writer: Option<(u32, u64)>,
    register: u64,
}

enum Vote {
    Granted(Vec<u64>),
    Busy(u64, Vec<u64>),
    Stale(u64, Vec<u64>),
}

impl Master {
    fn expire(&mut self, now: u64) {
        self.sem.retain(|h| h.2 > now);
        self.readers.retain(|h| h.1 > now);
        if self.writer.is_some_and(|w| w.1 <= now) {
            self.writer = None;
        }
    }

    /// The kinds' acquire scripts in miniature.
    #[allow(clippy::too_many_arguments)]
    fn acquire(
        &mut self,
        kind: Kind,
        owner: u32,
        token: u64,
        retry: bool,
        slot: u64,
        permits: u64,
        now: u64,
        ttl: u64,
        broken: Broken,
    ) -> Vote {
        self.expire(now);
        let reg = self.register;
        let mut free = Vec::new();
        let busy = match kind {
            Kind::Sem => {
                let mine = self.sem.iter().any(|h| h.0 == owner);
                let slots = if broken.slot_off_by_one {
                    permits + 1
                } else {
                    permits
                };
                free = (0..slots)
                    .filter(|s| !self.sem.iter().any(|h| h.0 != owner && h.1 == *s))
                    .collect();
                if broken.count_only {
                    let others = self.sem.iter().filter(|h| h.0 != owner).count() as u64;
                    (mine && !retry) || others >= permits
                } else {
                    (mine && !retry) || slot >= slots || !free.contains(&slot)
                }
            }
            Kind::Read => {
                let mine = self.readers.iter().any(|h| h.0 == owner);
                (mine && !retry) || (self.writer.is_some() && !broken.reader_ignores_writer)
            }
            Kind::Write => {
                let mine = self.writer.is_some_and(|w| w.0 == owner);
                !self.readers.is_empty() || (self.writer.is_some() && !(mine && retry))
            }
        };
        if busy {
            return Vote::Busy(reg, free);
        }
        if token <= reg && !broken.no_register {
            return Vote::Stale(reg, free);
        }
        let exp = now + ttl;
        match kind {
            Kind::Sem => {
                self.sem.retain(|h| h.0 != owner);
                self.sem.push((owner, slot, exp));
            }
            Kind::Read => {
                self.readers.retain(|h| h.0 != owner);
                self.readers.push((owner, exp));
            }
            Kind::Write => self.writer = Some((owner, exp)),
        }
        self.register = if broken.no_register {
            token
        } else {
            reg.max(token)
        };
        Vote::Granted(free)
    }

    fn release(&mut self, owner: u32) {
        self.sem.retain(|h| h.0 != owner);
        self.readers.retain(|h| h.0 != owner);
        if self.writer.is_some_and(|w| w.0 == owner) {
            self.writer = None;
        }
    }
}

#[derive(Debug, Clone)]
struct Op {
    kind: Kind,
    owner: u32,
    proposer: usize,
    token: u64,
    slot: u64,
    round: usize,
    undelivered: Vec<usize>,
    tally: Tally,
    slots: SlotVotes,
    requested_at: u64,
    done: bool,
}

#[derive(Debug, Clone)]
struct GrantRec {
    kind: Kind,
    owner: u32,
    token: u64,
    requested_at: u64,
    completed_at: u64,
    /// Valid while `now < until` (expiry or release).
    until: u64,
}

#[derive(Debug, Clone)]
enum Step {
    Start {
        kind: usize,
        proposer: usize,
        slot: u64,
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
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0usize..3, 0usize..3, 0u64..8)
            .prop_map(|(kind, proposer, slot)| Step::Start { kind, proposer, slot }),
        10 => (0usize..24, 0usize..8, prop::bool::weighted(0.1), prop::bool::weighted(0.1))
            .prop_map(|(op, pick, lose_request, lose_reply)| Step::Deliver { op, pick, lose_request, lose_reply }),
        1 => (1u64..30).prop_map(|by| Step::Tick { by }),
        1 => (0usize..24).prop_map(|grant| Step::Release { grant }),
    ]
}

struct World {
    masters: Vec<Master>,
    q: usize,
    permits: u64,
    now: u64,
    ttl: u64,
    seen: Vec<u64>,
    ops: Vec<Op>,
    grants: Vec<GrantRec>,
    next_owner: u32,
    broken: Broken,
}

impl World {
    fn new(n: usize, permits: u64, broken: Broken) -> World {
        World {
            masters: vec![Master::default(); n],
            q: quorum(n).saturating_sub(broken.quorum_minus).max(1),
            permits,
            now: 1,
            ttl: 40,
            seen: vec![0; 3],
            ops: Vec::new(),
            grants: Vec::new(),
            next_owner: 0,
            broken,
        }
    }

    fn propose(&mut self, p: usize, floor: u64) -> u64 {
        let t = (self.seen[p].max(floor) + 1).max(self.now * 10);
        self.seen[p] = t;
        t
    }

    fn start(&mut self, kind: Kind, proposer: usize, slot: u64) {
        let token = self.propose(proposer, 0);
        self.next_owner += 1;
        self.ops.push(Op {
            kind,
            owner: self.next_owner,
            proposer,
            token,
            slot: slot % self.permits,
            round: 0,
            undelivered: (0..self.masters.len()).collect(),
            tally: Tally::default(),
            slots: SlotVotes::default(),
            requested_at: self.now,
            done: false,
        });
    }

    fn new_round(&mut self, oi: usize) {
        let n = self.masters.len();
        let op = &mut self.ops[oi];
        op.round += 1;
        op.tally = Tally::default();
        op.slots = SlotVotes::default();
        op.undelivered = (0..n).collect();
    }

    fn fail(&mut self, oi: usize) {
        // The gateway releases a lost request everywhere.
        let owner = self.ops[oi].owner;
        self.ops[oi].done = true;
        for m in &mut self.masters {
            m.release(owner);
        }
    }

    fn deliver(&mut self, oi: usize, pick: usize, lose_request: bool, lose_reply: bool) {
        let n = self.masters.len();
        let (permits, now, ttl, broken) = (self.permits, self.now, self.ttl, self.broken);
        let Some(op) = self.ops.get_mut(oi) else {
            return;
        };
        if op.done || op.undelivered.is_empty() {
            return;
        }
        let m = op.undelivered.remove(pick % op.undelivered.len());
        let (kind, owner, token, retry, slot) =
            (op.kind, op.owner, op.token, op.round > 0, op.slot);
        let vote = (!lose_request).then(|| {
            self.masters[m].acquire(kind, owner, token, retry, slot, permits, now, ttl, broken)
        });
        let op = &mut self.ops[oi];
        // What the proposer observes: the register of any refusal.
        let (counted, floor) = match vote {
            _ if lose_reply || lose_request => (round::Vote::None, 0),
            Some(Vote::Granted(free)) => {
                op.slots.add(&free);
                (round::Vote::Granted, 0)
            }
            Some(Vote::Busy(r, free)) => {
                op.slots.add(&free);
                (round::Vote::Busy(Some(r)), r)
            }
            Some(Vote::Stale(r, free)) => {
                op.slots.add(&free);
                (round::Vote::Stale(r), r)
            }
            None => (round::Vote::None, 0),
        };
        round::tally_vote(&mut op.tally, &mut 0, counted);
        let p = op.proposer;
        self.seen[p] = self.seen[p].max(floor);
        let t = op.tally;
        let decision = t.decide(n, self.q);
        let answered = t.granted + t.busy + t.stale + t.no_vote;
        match decision {
            Decision::Pending => {}
            Decision::Granted => {
                let op = &mut self.ops[oi];
                op.done = true;
                let until = op.requested_at + ttl;
                if now < until {
                    self.grants.push(GrantRec {
                        kind,
                        owner,
                        token: op.token,
                        requested_at: op.requested_at,
                        completed_at: now,
                        until,
                    });
                } else {
                    self.fail(oi);
                }
            }
            Decision::RetryHigher if self.ops[oi].round + 1 < MAX_ROUNDS + SLOT_ROUNDS => {
                let f = self.seen[p];
                let t = self.propose(p, f);
                self.ops[oi].token = t;
                self.new_round(oi);
            }
            Decision::Busy
                if kind == Kind::Sem && self.ops[oi].round + 1 < MAX_ROUNDS + SLOT_ROUNDS =>
            {
                let best = self.ops[oi].slots.best(n - answered, self.q);
                match best {
                    Some(s) if s != slot => {
                        self.ops[oi].slot = s;
                        self.new_round(oi);
                    }
                    _ => self.fail(oi),
                }
            }
            _ => self.fail(oi),
        }
    }

    fn release(&mut self, gi: usize) {
        let now = self.now;
        let Some(g) = self.grants.get_mut(gi) else {
            return;
        };
        g.until = g.until.min(now);
        let owner = g.owner;
        for m in &mut self.masters {
            m.release(owner);
        }
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let now = self.now;
        let valid: Vec<&GrantRec> = self
            .grants
            .iter()
            .filter(|g| g.completed_at <= now && now < g.until)
            .collect();
        let sems = valid.iter().filter(|g| g.kind == Kind::Sem).count() as u64;
        prop_assert!(
            sems <= self.permits,
            "{} valid semaphore holders, {} permits",
            sems,
            self.permits
        );
        let writers = valid.iter().filter(|g| g.kind == Kind::Write).count();
        let readers = valid.iter().filter(|g| g.kind == Kind::Read).count();
        prop_assert!(
            writers == 0 || (writers == 1 && readers == 0),
            "{} valid writers with {} valid readers",
            writers,
            readers
        );
        for (i, a) in self.grants.iter().enumerate() {
            for b in &self.grants[i + 1..] {
                prop_assert_ne!(a.token, b.token, "two grants carry one token");
                if a.completed_at < b.requested_at {
                    prop_assert!(a.token < b.token, "token went backwards");
                }
                if b.completed_at < a.requested_at {
                    prop_assert!(b.token < a.token, "token went backwards");
                }
            }
        }
        Ok(())
    }

    fn run(&mut self, steps: Vec<Step>) -> Result<(), TestCaseError> {
        for s in steps {
            match s {
                Step::Start {
                    kind,
                    proposer,
                    slot,
                } => {
                    let kind = [Kind::Sem, Kind::Read, Kind::Write][kind % 3];
                    self.start(kind, proposer % 3, slot);
                }
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
                Step::Tick { by } => self.now += by,
                Step::Release { grant } => {
                    if !self.grants.is_empty() {
                        let gi = grant % self.grants.len();
                        self.release(gi);
                    }
                }
            }
            self.check()?;
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn semaphores_and_rw_locks_keep_their_invariants(
        n in prop::sample::select(vec![1usize, 3, 5]),
        permits in 1u64..4,
        steps in prop::collection::vec(step(), 1..300),
    ) {
        World::new(n, permits, Broken::default()).run(steps)?;
    }
}

/// Starts a request of `kind` for `slot` and delivers it to `masters`, in
/// order, with every message arriving.
fn grant_on(w: &mut World, kind: Kind, slot: u64, masters: &[usize]) -> usize {
    w.start(kind, 0, slot);
    let oi = w.ops.len() - 1;
    for &m in masters {
        let pos = w.ops[oi]
            .undelivered
            .iter()
            .position(|&x| x == m)
            .unwrap_or(0);
        w.deliver(oi, pos, false, false);
    }
    oi
}

fn sem_violation(broken: Broken, permits: u64, plan: &[(u64, &[usize])]) -> bool {
    let mut w = World::new(3, permits, broken);
    for (slot, masters) in plan {
        grant_on(&mut w, Kind::Sem, *slot, masters);
    }
    w.check().is_err()
}

#[test]
fn the_slot_rule_holds_where_a_count_only_rule_admits_three_of_two() {
    // Three holders on {m0,m1}, {m1,m2}, {m0,m2}: two per master.
    let plan: &[(u64, &[usize])] = &[(0, &[0, 1]), (1, &[1, 2]), (0, &[0, 2])];
    let count_only = Broken {
        count_only: true,
        ..Broken::default()
    };
    assert!(sem_violation(count_only, 2, plan), "count-only must fail");
    assert!(
        !sem_violation(Broken::default(), 2, plan),
        "slots must hold"
    );
}

#[test]
fn the_semaphore_check_catches_an_off_by_one_slot_range() {
    let plan: &[(u64, &[usize])] = &[(0, &[0, 1]), (1, &[0, 1])];
    let mut w = World::new(
        3,
        1,
        Broken {
            slot_off_by_one: true,
            ..Broken::default()
        },
    );
    grant_on(&mut w, Kind::Sem, 0, &[0, 1]);
    // Slot 1 does not exist with one permit; the broken range admits it.
    w.start(Kind::Sem, 0, 0);
    let oi = w.ops.len() - 1;
    w.ops[oi].slot = 1;
    w.deliver(oi, 0, false, false);
    w.deliver(oi, 0, false, false);
    assert!(w.check().is_err(), "off-by-one slots must fail");
    assert!(!sem_violation(Broken::default(), 1, plan));
}

#[test]
fn the_checks_catch_a_quorum_one_too_small() {
    let small = Broken {
        quorum_minus: 1,
        ..Broken::default()
    };
    // Semaphore of one: two holders on disjoint single masters.
    let plan: &[(u64, &[usize])] = &[(0, &[0]), (0, &[2])];
    assert!(sem_violation(small, 1, plan));
    assert!(!sem_violation(Broken::default(), 1, plan));
    // A writer and a reader on disjoint single masters.
    let mut w = World::new(3, 1, small);
    grant_on(&mut w, Kind::Write, 0, &[0]);
    grant_on(&mut w, Kind::Read, 0, &[2]);
    assert!(w.check().is_err(), "a minority quorum must overlap");
}

#[test]
fn the_rw_check_catches_a_reader_admitted_past_a_writer() {
    let broken = Broken {
        reader_ignores_writer: true,
        ..Broken::default()
    };
    for (b, expect) in [(broken, true), (Broken::default(), false)] {
        let mut w = World::new(3, 1, b);
        grant_on(&mut w, Kind::Write, 0, &[0, 1]);
        grant_on(&mut w, Kind::Read, 0, &[1, 2]);
        assert_eq!(w.check().is_err(), expect);
    }
}

#[test]
fn the_token_check_catches_a_register_that_does_not_rise() {
    let broken = Broken {
        no_register: true,
        ..Broken::default()
    };
    let mut w = World::new(3, 2, broken);
    grant_on(&mut w, Kind::Read, 0, &[0, 1]);
    // A later request whose proposal is lower (its gateway's clock lags).
    w.now = 2;
    w.start(Kind::Read, 1, 0);
    let oi = w.ops.len() - 1;
    w.ops[oi].token = 5;
    w.deliver(oi, 0, false, false);
    w.deliver(oi, 0, false, false);
    assert_eq!(w.grants.len(), 2);
    assert!(w.check().is_err(), "a non-rising register must be caught");
}
