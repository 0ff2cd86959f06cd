//! Fair waiting within one gateway: a FIFO of local waiters per key.
//!
//! Without it, every `WAIT`er of a key retries on its own jittered timer and
//! whoever happens to retry first after a release wins, so a waiter can
//! starve. With it, only the head of a key's queue attempts; the others sleep
//! until they become head. The head leaves the queue when it is granted,
//! times out or is cancelled (a client disconnect drops its future), and
//! [`Ticket`]'s `Drop` then wakes the next one, so a dropped waiter can never
//! block the queue.
//!
//! # Scope
//! Fairness is local: waiters on other gateways, non-waiting acquires and
//! drop-in clients still race with the head, and expiry is only seen by
//! polling. Safety never depends on the queue: every attempt is a full
//! quorum acquire. The queue is keyed by the lock key alone and knows nothing
//! of lock kinds, so read-write locks and semaphores can queue on it too.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Engine;

/// The local waiters of every key, in arrival order.
#[derive(Debug, Default)]
pub struct FairQueue {
    map: Mutex<HashMap<Bytes, KeyQueue>>,
}

#[derive(Debug, Default)]
struct KeyQueue {
    next_id: u64,
    waiting: VecDeque<(u64, Arc<Notify>)>,
}

/// A place in one key's queue; leaving it (drop) hands the turn on.
#[derive(Debug)]
pub struct Ticket<'a> {
    queue: &'a FairQueue,
    key: Bytes,
    id: u64,
    notify: Arc<Notify>,
}

// === impl FairQueue ===

impl FairQueue {
    fn lock(&self) -> MutexGuard<'_, HashMap<Bytes, KeyQueue>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every critical section is a single push, remove or lookup).
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Joins the back of `key`'s queue.
    pub fn enter(&self, key: &Bytes) -> Ticket<'_> {
        let notify = Arc::new(Notify::new());
        let mut map = self.lock();
        let q = map.entry(key.clone()).or_default();
        let id = q.next_id;
        q.next_id += 1;
        q.waiting.push_back((id, notify.clone()));
        Ticket {
            queue: self,
            key: key.clone(),
            id,
            notify,
        }
    }

    /// How many local waiters `key` has (for tests and introspection).
    pub fn queued(&self, key: &[u8]) -> usize {
        self.lock().get(key).map_or(0, |q| q.waiting.len())
    }

    /// Keys with at least one waiter.
    pub fn keys(&self) -> usize {
        self.lock().len()
    }
}

// === impl Ticket ===

impl Ticket<'_> {
    /// Whether this waiter is at the front of its key's queue.
    pub fn is_head(&self) -> bool {
        self.queue
            .lock()
            .get(&self.key)
            .and_then(|q| q.waiting.front())
            .is_some_and(|(id, _)| *id == self.id)
    }

    /// Resolves once this waiter is at the front. `Notify::notify_one`
    /// stores a permit, so a turn handed on before this is polled is not
    /// lost.
    pub async fn head(&self) {
        loop {
            if self.is_head() {
                return;
            }
            self.notify.notified().await;
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut map = self.queue.lock();
        let Some(q) = map.get_mut(&self.key) else {
            return;
        };
        let was_head = q.waiting.front().is_some_and(|(id, _)| *id == self.id);
        q.waiting.retain(|(id, _)| *id != self.id);
        if q.waiting.is_empty() {
            map.remove(&self.key);
        } else if was_head {
            if let Some((_, next)) = q.waiting.front() {
                next.notify_one();
            }
        }
    }
}

/// Waits in `key`'s local queue and runs `attempt` only while at its
/// front, until `done` accepts an outcome or `wait` runs out. The head
/// retries at once when a release through this gateway signals the key,
/// otherwise after a short random pause (releases elsewhere and expiry
/// are only seen by retrying). `None`: the wait ran out before this
/// waiter's turn came.
///
/// Generic over the attempt, so every lock kind's `WAIT` shares one
/// queue per key.
pub async fn wait_fair<T, F, Fut>(
    engine: &Engine,
    key: &Bytes,
    wait: Duration,
    mut attempt: F,
    done: impl Fn(&T) -> bool,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let give_up = Instant::now() + wait;
    let ticket = engine.fair().enter(key);
    let n = engine.signals().watch(key);
    let outcome = loop {
        if !ticket.is_head() {
            tokio::select! {
                _ = ticket.head() => {}
                _ = tokio::time::sleep_until(give_up) => break None,
            }
        }
        // Enabled before the attempt, so a release that lands while it
        // runs still wakes the pause below.
        let wake = n.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let out = attempt().await;
        let now = Instant::now();
        if done(&out) || now >= give_up {
            break Some(out);
        }
        let jitter = Duration::from_millis(rand::rng().random_range(5..=50));
        tokio::select! {
            _ = &mut wake => {}
            _ = tokio::time::sleep(jitter.min(give_up - now)) => {}
        }
    };
    // Leaving the queue hands the turn to the next waiter.
    drop(ticket);
    engine.signals().forget(key, n);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn waiters_become_head_in_arrival_order() {
        let q = FairQueue::default();
        let a = q.enter(&k("x"));
        let b = q.enter(&k("x"));
        let other = q.enter(&k("y"));
        assert!(a.is_head() && !b.is_head() && other.is_head());
        drop(a);
        assert!(b.is_head());
        assert_eq!(q.queued(b"x"), 1);
        drop(b);
        drop(other);
        assert_eq!(q.keys(), 0, "empty queues are pruned");
    }

    #[tokio::test]
    async fn a_dropped_waiter_in_the_middle_never_blocks_the_queue() {
        let q = FairQueue::default();
        let a = q.enter(&k("x"));
        let b = q.enter(&k("x"));
        let c = q.enter(&k("x"));
        drop(b); // cancelled while waiting: the client went away
        drop(a);
        tokio::time::timeout(Duration::from_secs(1), c.head())
            .await
            .expect("c becomes head once a leaves, b's departure notwithstanding");
    }

    #[tokio::test]
    async fn the_next_waiter_is_woken_when_the_head_leaves() {
        let q = Arc::new(FairQueue::default());
        let a = q.enter(&k("x"));
        let q2 = q.clone();
        let waiter = tokio::spawn(async move {
            let b = q2.enter(&k("x"));
            b.head().await;
        });
        // Let the waiter enqueue and park.
        while q.queued(b"x") < 2 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished());
        drop(a);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("joined");
    }
}
