//! Triggers from broadcast notices (the store's `watch`).

use std::collections::VecDeque;

use futures_util::{Stream, stream};
use tokio::sync::broadcast::{Receiver, error::RecvError};

/// The keys `key_of` finds in `notices`, as a runner's triggers. A
/// receiver that lagged has lost notices it cannot name, so then every
/// key `resync` lists is triggered instead (reconciling a key with
/// nothing to do is harmless; missing one is not). The stream ends when
/// the sender is gone.
pub fn from_notices<N, K, F, L, Fut>(notices: Receiver<N>, key_of: F, resync: L) -> impl Stream<Item = K> + Send
where
    N: Clone + Send + 'static,
    K: Send,
    F: FnMut(N) -> Option<K> + Send,
    L: FnMut() -> Fut + Send,
    Fut: Future<Output = Vec<K>> + Send,
{
    let state = (notices, key_of, resync, VecDeque::new());
    stream::unfold(state, |(mut notices, mut key_of, mut resync, mut listed)| async move {
        loop {
            if let Some(key) = listed.pop_front() {
                return Some((key, (notices, key_of, resync, listed)));
            }
            match notices.recv().await {
                Ok(notice) => {
                    if let Some(key) = key_of(notice) {
                        return Some((key, (notices, key_of, resync, listed)));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "notices lagged: triggering every key");
                    listed.extend(resync().await);
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

/// Every key `list` gives, at once and then every `period`: a
/// controller's resync, which catches whatever notices could not carry.
pub fn every<K, L, Fut>(period: std::time::Duration, list: L) -> impl Stream<Item = K> + Send
where
    K: Send,
    L: FnMut() -> Fut + Send,
    Fut: Future<Output = Vec<K>> + Send,
{
    use futures_util::StreamExt as _;
    stream::unfold((list, true), move |(mut list, first)| async move {
        if !first {
            tokio::time::sleep(period).await;
        }
        let keys = list().await;
        Some((stream::iter(keys), (list, false)))
    })
    .flatten()
}
