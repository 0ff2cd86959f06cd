//! What one connection and one user hold at once on this gateway: a
//! ledger of grants, bounded by `limits.max_holds_per_connection` and
//! `limits.max_holds_per_user`.
//!
//! A hold is one (kind, key, owner) whose grant was given to the client,
//! with the instant its validity ends. It stops counting when the client
//! releases it through this ledger's connection or user, when its validity
//! ends (an entry past its deadline is pruned, so a lock released through
//! another connection or gateway, or simply left to expire, is never
//! counted past its validity), or, for a `KEEPALIVE` hold, when the
//! connection stops renewing it. An extend through the same connection
//! moves the deadline. Re-acquiring a hold already counted (a reentrant
//! lock entered again) takes no new place.
//!
//! The ledger never grows past its cap: a place is reserved before the
//! engine is asked, so concurrent acquires of one pipelining connection
//! cannot overshoot, and a reservation whose acquire is lost gives its
//! place back when dropped. Expired entries are swept when the cap is
//! reached, at most once per [`SWEEP_EVERY`] unless an entry is known to
//! have expired, so a client pressing at its cap costs no more than one
//! scan per interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::kinds::plain::keepalive::KeepAlives;

/// Which kind a hold belongs to: one name may be held as a plain lock and
/// as a semaphore at once, and those are two holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldKind {
    Plain,
    Reentrant,
    RwLock,
    Semaphore,
}

/// At most this often a ledger at its cap scans for expired entries when
/// none is known to have expired.
pub const SWEEP_EVERY: Duration = Duration::from_millis(100);

type Id = (HoldKind, Bytes, Bytes);

struct Entry {
    until: Instant,
    /// A `KEEPALIVE` hold: live while its connection renews it.
    kept: Option<Weak<KeepAlives>>,
}

impl Entry {
    fn live(&self, id: &Id, now: Instant) -> bool {
        now < self.until
            || self
                .kept
                .as_ref()
                .and_then(Weak::upgrade)
                .is_some_and(|k| k.holds(&id.1, &id.2))
    }
}

#[derive(Default)]
struct Inner {
    held: HashMap<Id, Entry>,
    /// Places reserved by acquires in flight.
    pending: usize,
    /// The earliest deadline among the entries (kept ones excepted), as of
    /// the last sweep or insert.
    next_expiry: Option<Instant>,
    last_sweep: Option<Instant>,
}

impl Inner {
    fn sweep(&mut self, now: Instant) {
        self.held.retain(|id, e| e.live(id, now));
        self.next_expiry = self
            .held
            .values()
            .filter(|e| e.kept.is_none())
            .map(|e| e.until)
            .min();
        self.last_sweep = Some(now);
    }

    fn due(&self, now: Instant) -> bool {
        self.next_expiry.is_some_and(|t| now >= t)
            || self.last_sweep.is_none_or(|t| now >= t + SWEEP_EVERY)
    }
}

/// One connection's or one user's holds.
#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

/// Why a reservation was refused: the holds counted and the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub held: usize,
    pub cap: usize,
}

impl Ledger {
    pub fn new() -> Arc<Ledger> {
        Arc::new(Ledger::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds counted now (live ones and places reserved), after a sweep.
    pub fn count(&self) -> usize {
        let mut g = self.lock();
        g.sweep(Instant::now());
        g.held.len() + g.pending
    }

    /// Reserves places for the holds among `ids` not already counted;
    /// refused when they would take the ledger past `cap`.
    fn reserve(&self, ids: &[Id], cap: usize) -> Result<usize, Full> {
        let now = Instant::now();
        let mut g = self.lock();
        // An entry already there, live or not yet swept, is replaced on
        // commit: it is counted once already.
        let new = |g: &Inner| ids.iter().filter(|id| !g.held.contains_key(*id)).count();
        let mut need = new(&g);
        if g.held.len() + g.pending + need > cap && g.due(now) {
            g.sweep(now);
            need = new(&g);
        }
        let held = g.held.len() + g.pending;
        if held + need > cap {
            return Err(Full { held, cap });
        }
        g.pending += need;
        Ok(need)
    }

    fn unreserve(&self, n: usize) {
        let mut g = self.lock();
        g.pending = g.pending.saturating_sub(n);
    }

    /// Turns `reserved` places into the holds `ids`, valid until `until`.
    fn commit(&self, ids: &[Id], reserved: usize, until: Instant, kept: Option<&Arc<KeepAlives>>) {
        let mut g = self.lock();
        g.pending = g.pending.saturating_sub(reserved);
        for (kind, key, owner) in ids {
            // Copied: the request's bytes may be a slice of a much larger
            // read buffer, which a long-lived entry would keep alive.
            let id = (
                *kind,
                Bytes::copy_from_slice(key),
                Bytes::copy_from_slice(owner),
            );
            g.held.insert(
                id,
                Entry {
                    until,
                    kept: kept.map(Arc::downgrade),
                },
            );
        }
        if kept.is_none() {
            g.next_expiry = Some(g.next_expiry.map_or(until, |t| t.min(until)));
        }
    }

    fn extend(&self, ids: &[Id], until: Instant) {
        let mut g = self.lock();
        for id in ids {
            // The extend set a new expiry on the masters, shorter or
            // longer: the hold counts until then.
            if let Some(e) = g.held.get_mut(id) {
                e.until = until;
            }
        }
    }

    fn forget(&self, ids: &[Id]) {
        let mut g = self.lock();
        for id in ids {
            g.held.remove(id);
        }
    }
}

/// The two ledgers a request counts into: its connection's and its
/// user's.
#[derive(Clone)]
pub struct Holds {
    pub conn: Arc<Ledger>,
    pub user: Arc<Ledger>,
    /// The user's name, for the refusal ("default" without one).
    pub user_name: Arc<str>,
}

/// Which cap refused a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Connection(Full),
    User(Full),
}

fn ids(kind: HoldKind, keys: &[Bytes], owner: &Bytes) -> Vec<Id> {
    keys.iter()
        .map(|k| (kind, k.clone(), owner.clone()))
        .collect()
}

impl Holds {
    /// A fresh pair of ledgers (tests, and requests outside a connection).
    pub fn detached() -> Holds {
        Holds {
            conn: Ledger::new(),
            user: Ledger::new(),
            user_name: Arc::from("default"),
        }
    }

    /// Reserves places for `keys` held by `owner`, within both caps.
    pub fn reserve(
        &self,
        kind: HoldKind,
        keys: &[Bytes],
        owner: &Bytes,
        per_conn: usize,
        per_user: usize,
    ) -> Result<Slot, Refused> {
        let ids = ids(kind, keys, owner);
        let conn = self
            .conn
            .reserve(&ids, per_conn)
            .map_err(Refused::Connection)?;
        let user = match self.user.reserve(&ids, per_user) {
            Ok(n) => n,
            Err(full) => {
                self.conn.unreserve(conn);
                return Err(Refused::User(full));
            }
        };
        Ok(Slot {
            holds: self.clone(),
            ids,
            conn,
            user,
        })
    }

    /// The client extended these holds: they count until `until`.
    pub fn extend(&self, kind: HoldKind, keys: &[Bytes], owner: &Bytes, until: Instant) {
        let ids = ids(kind, keys, owner);
        self.conn.extend(&ids, until);
        self.user.extend(&ids, until);
    }

    /// The client released these holds (or was told it no longer holds
    /// them): they stop counting.
    pub fn forget(&self, kind: HoldKind, keys: &[Bytes], owner: &Bytes) {
        let ids = ids(kind, keys, owner);
        self.conn.forget(&ids);
        self.user.forget(&ids);
    }
}

/// Places reserved for one acquire; given back when dropped uncommitted.
pub struct Slot {
    holds: Holds,
    ids: Vec<Id>,
    conn: usize,
    user: usize,
}

impl Slot {
    /// The acquire was granted: its holds count until `until` (and, with
    /// `kept`, while that connection keeps them alive).
    pub fn commit(mut self, until: Instant, kept: Option<&Arc<KeepAlives>>) {
        let (conn, user) = (
            std::mem::take(&mut self.conn),
            std::mem::take(&mut self.user),
        );
        self.holds.conn.commit(&self.ids, conn, until, kept);
        self.holds.user.commit(&self.ids, user, until, kept);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.holds.conn.unreserve(self.conn);
        self.holds.user.unreserve(self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[tokio::test]
    async fn caps_count_live_holds_and_give_back_lost_reservations() {
        let h = Holds::detached();
        let later = Instant::now() + Duration::from_secs(10);
        let s1 = h
            .reserve(HoldKind::Plain, &[b("a")], &b("o"), 2, 10)
            .expect("within the cap");
        let s2 = h
            .reserve(HoldKind::Plain, &[b("b")], &b("o"), 2, 10)
            .expect("within the cap");
        // Two in flight: a third is refused before any is granted.
        assert_eq!(
            h.reserve(HoldKind::Plain, &[b("c")], &b("o"), 2, 10).err(),
            Some(Refused::Connection(Full { held: 2, cap: 2 }))
        );
        s1.commit(later, None);
        drop(s2); // lost: its place comes back
        let s3 = h
            .reserve(HoldKind::Plain, &[b("c")], &b("o"), 2, 10)
            .expect("within the cap");
        s3.commit(later, None);
        assert_eq!(h.conn.count(), 2);
        // Holding "a" again takes no new place.
        let again = h
            .reserve(HoldKind::Plain, &[b("a")], &b("o"), 2, 10)
            .expect("within the cap");
        again.commit(later, None);
        // Another kind on the same name is another hold.
        assert!(h
            .reserve(HoldKind::Semaphore, &[b("a")], &b("o"), 2, 10)
            .is_err());
        h.forget(HoldKind::Plain, &[b("a")], &b("o"));
        assert_eq!(h.conn.count(), 1);
        assert_eq!(h.user.count(), 1);
    }

    #[tokio::test]
    async fn expired_holds_stop_counting() {
        let h = Holds::detached();
        let soon = Instant::now() + Duration::from_millis(150);
        for k in ["a", "b"] {
            let s = h
                .reserve(HoldKind::Plain, &[b(k)], &b("o"), 2, 2)
                .expect("within the cap");
            s.commit(soon, None);
        }
        assert!(h
            .reserve(HoldKind::Plain, &[b("c")], &b("o"), 2, 2)
            .is_err());
        // Extended on this connection: "a" outlives the first deadline.
        h.extend(
            HoldKind::Plain,
            &[b("a")],
            &b("o"),
            soon + Duration::from_millis(300),
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let s = h
            .reserve(HoldKind::Plain, &[b("c")], &b("o"), 2, 2)
            .expect("within the cap");
        s.commit(soon + Duration::from_secs(60), None);
        assert!(h
            .reserve(HoldKind::Plain, &[b("d")], &b("o"), 2, 2)
            .is_err());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(h.conn.count(), 1);
    }

    #[tokio::test]
    async fn the_user_cap_spans_connections() {
        let user = Ledger::new();
        let a = Holds {
            conn: Ledger::new(),
            user: user.clone(),
            user_name: Arc::from("u"),
        };
        let b2 = Holds {
            conn: Ledger::new(),
            ..a.clone()
        };
        let later = Instant::now() + Duration::from_secs(10);
        a.reserve(HoldKind::Plain, &[b("x")], &b("o"), 5, 1)
            .expect("within the cap")
            .commit(later, None);
        assert_eq!(
            b2.reserve(HoldKind::Plain, &[b("y")], &b("p"), 5, 1).err(),
            Some(Refused::User(Full { held: 1, cap: 1 }))
        );
        // The refused user reservation gave the connection's place back.
        assert_eq!(b2.conn.count(), 0);
    }
}
