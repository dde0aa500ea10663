//! The runner's queue: at most one entry per key, the earliest time wins.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use tokio::time::Instant;

/// Keys waiting for their time. `at` and `order` always hold the same
/// entries: `at` answers "is this key queued, and for when", `order`
/// answers "which key is due first".
#[derive(Debug)]
pub(super) struct Queue<K> {
    at: HashMap<K, Instant>,
    order: BTreeSet<(Instant, K)>,
}

impl<K> Default for Queue<K> {
    fn default() -> Self {
        Self { at: HashMap::new(), order: BTreeSet::new() }
    }
}

impl<K: Clone + Eq + Hash + Ord> Queue<K> {
    /// Queues `key` for `at`; a key already queued keeps the earlier of
    /// its two times, so a key is never queued twice.
    pub(super) fn schedule(&mut self, key: K, at: Instant) {
        if let Some(&old) = self.at.get(&key) {
            if old <= at {
                return;
            }
            self.order.remove(&(old, key.clone()));
        }
        self.at.insert(key.clone(), at);
        self.order.insert((at, key));
    }

    /// Takes the earliest key due by `now` for which `held` is false
    /// (keys held stay queued, for when they are no longer held).
    pub(super) fn pop_due(&mut self, now: Instant, held: impl Fn(&K) -> bool) -> Option<K> {
        let (at, key) = self.order.iter().take_while(|(at, _)| *at <= now).find(|(_, k)| !held(k))?.clone();
        self.order.remove(&(at, key.clone()));
        self.at.remove(&key);
        Some(key)
    }

    /// When the earliest key for which `held` is false is due.
    pub(super) fn next_due(&self, held: impl Fn(&K) -> bool) -> Option<Instant> {
        self.order.iter().find(|(_, k)| !held(k)).map(|(at, _)| *at)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.at.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn a_key_is_queued_once_at_the_earlier_time() {
        let t0 = Instant::now();
        let mut q = Queue::default();
        q.schedule("a", secs(t0, 10));
        q.schedule("a", secs(t0, 20));
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_due(|_| false), Some(secs(t0, 10)));
        q.schedule("a", secs(t0, 5));
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_due(|_| false), Some(secs(t0, 5)));
        assert_eq!(q.pop_due(secs(t0, 4), |_| false), None);
        assert_eq!(q.pop_due(secs(t0, 5), |_| false), Some("a"));
        assert!(q.is_empty());
        assert_eq!(q.pop_due(secs(t0, 100), |_| false), None);
    }

    #[test]
    fn held_keys_stay_queued_and_others_go_first() {
        let t0 = Instant::now();
        let mut q = Queue::default();
        q.schedule("a", secs(t0, 1));
        q.schedule("b", secs(t0, 2));
        q.schedule("c", secs(t0, 9));
        assert_eq!(q.pop_due(secs(t0, 3), |k| *k == "a"), Some("b"));
        assert_eq!(q.pop_due(secs(t0, 3), |k| *k == "a"), None);
        assert_eq!(q.next_due(|k| *k == "a"), Some(secs(t0, 9)));
        assert_eq!(q.pop_due(secs(t0, 3), |_| false), Some("a"));
        assert_eq!(q.len(), 1);
    }
}
