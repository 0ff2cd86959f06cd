//! Release signals: wake waiters in this process the moment a lock is
//! released through it.
//!
//! Waiting for a lock (`LOCK.ACQUIRE ... WAIT`, python-redis-lock's BLPOP)
//! must also notice releases made through other gateways and plain expiry,
//! so waiters poll; a signal only makes the common case (holder and waiter on
//! one gateway) prompt. A missed signal therefore costs latency, never
//! correctness, which is why the map is pruned loosely.

use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::Notify;

/// Per-key wake-ups for local waiters.
#[derive(Debug, Default)]
pub struct Signals {
    map: DashMap<Bytes, Arc<Notify>>,
}

// === impl Signals ===

impl Signals {
    /// The notifier for `key`; hand it back with [`Signals::forget`].
    pub fn watch(&self, key: &Bytes) -> Arc<Notify> {
        self.map.entry(key.clone()).or_default().clone()
    }

    /// Drops a waiter's handle, and the entry once nobody else holds it.
    pub fn forget(&self, key: &Bytes, n: Arc<Notify>) {
        drop(n);
        self.map.remove_if(key, |_, v| Arc::strong_count(v) == 1);
    }

    /// Wakes every local waiter on any of `keys`.
    pub fn released(&self, keys: &[Bytes]) {
        for k in keys {
            if let Some(n) = self.map.get(k) {
                n.notify_waiters();
            }
        }
    }

    /// Keys with at least one waiter (for tests and introspection).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_release_wakes_a_waiter_that_enabled_before_it() {
        let s = Signals::default();
        let k = Bytes::from_static(b"k");
        let n = s.watch(&k);
        {
            let notified = n.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            s.released(std::slice::from_ref(&k));
            tokio::time::timeout(Duration::from_secs(5), notified)
                .await
                .expect("woken");
        }
        s.forget(&k, n);
        assert!(s.is_empty(), "the last waiter prunes the entry");
    }

    #[tokio::test]
    async fn a_release_of_another_key_does_not_wake() {
        let s = Signals::default();
        let k = Bytes::from_static(b"k");
        let n = s.watch(&k);
        {
            let notified = n.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            s.released(&[Bytes::from_static(b"other")]);
            assert!(futures::poll!(notified.as_mut()).is_pending());
        }
        let n2 = s.watch(&k);
        s.forget(&k, n2);
        assert_eq!(s.len(), 1, "kept while a waiter remains");
        s.forget(&k, n);
        assert!(s.is_empty());
    }
}
