//! The runner every controller shares, modelled on kube-runtime's
//! controller runner: keys go into a queue de-duplicated per key, a
//! [`Reconcile`]r brings each key's world to what it should be, and says
//! with an [`Action`] when to look again.
//!
//! - **One entry per key.** Scheduling a key already queued keeps the
//!   earlier of the two times; ten triggers for a queued key are one
//!   reconcile.
//! - **One reconcile per key at a time.** A key triggered while its
//!   reconcile runs stays queued and runs once more when that one ends:
//!   never concurrently, never lost.
//! - **Woken by triggers and by time**: a stream of keys to reconcile now
//!   (store notices, through [`from_notices`]), and the
//!   [`Action::requeue`] a reconcile returns.
//! - **Errors back off per key**, exponentially up to a cap, reset by a
//!   success; a failing key is never retried sooner than its [`Backoff`],
//!   whatever its error policy says, so there is no hot loop.
//! - **Bounded concurrency** across keys ([`RunnerConfig::concurrency`]).
//! - **Clean shutdown**: when the shutdown future resolves, nothing new
//!   starts and the run returns once the reconciles under way have ended.
//!
//! Reconcilers are level-triggered: they get a key, never a reason, and
//! read the current state themselves. The runner does no I/O of its own.

mod queue;
mod triggers;

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{FutureExt, Stream, StreamExt};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tracing::Instrument;

use queue::Queue;
pub use triggers::{every, from_notices};

/// What a runner's keys must be: cheap to clone, comparable (the queue is
/// ordered by time, then key), printable (spans and logs name the key).
pub trait Key: Clone + Eq + Hash + Ord + Debug + Send + Sync + 'static {}

impl<T: Clone + Eq + Hash + Ord + Debug + Send + Sync + 'static> Key for T {}

/// When to reconcile a key again, returned by a reconcile or an error
/// policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile again after `after` (sooner if a trigger comes first).
    pub const fn requeue(after: Duration) -> Self {
        Self { requeue_after: Some(after) }
    }

    /// Reconcile again only when a trigger names the key.
    pub const fn await_change() -> Self {
        Self { requeue_after: None }
    }

    pub const fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// A controller's logic for one key.
pub trait Reconcile<K>: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Brings `key`'s world to what it should be. Called for one key at a
    /// time; must be safe to repeat (it may run again with nothing changed).
    fn reconcile(&self, key: &K) -> impl Future<Output = Result<Action, Self::Error>> + Send;

    /// What to do after `reconcile` failed for `key`, the `attempts`th
    /// failure in a row (1 for the first). The runner logs the error and
    /// never retries sooner than its [`Backoff`] for `attempts`, so the
    /// default, `requeue(ZERO)`, means "as soon as the backoff allows".
    fn error_policy(&self, _key: &K, _error: &Self::Error, _attempts: u32) -> Action {
        Action::requeue(Duration::ZERO)
    }
}

/// Exponential backoff with a cap: `initial`, twice that, four times, …,
/// never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_secs(1), max: Duration::from_secs(300) }
    }
}

impl Backoff {
    /// The least wait before retrying after `attempts` failures in a row.
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }
}

/// How a runner runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerConfig {
    /// How many keys reconcile at once (at least one).
    pub concurrency: usize,
    pub backoff: Backoff,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self { concurrency: 8, backoff: Backoff::default() }
    }
}

/// Counters of one runner, readable while it runs.
#[derive(Debug, Default)]
pub struct RunnerMetrics {
    reconciles: AtomicU64,
    failures: AtomicU64,
}

impl RunnerMetrics {
    /// Reconciles that ended, failed ones included.
    pub fn reconciles(&self) -> u64 {
        self.reconciles.load(Ordering::Relaxed)
    }

    /// Reconciles that returned an error or panicked.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

/// How many ready triggers are taken in one go before due keys start, so
/// a burst of notices for one key queues it once instead of starting it
/// on the first and re-running it for the rest.
const TRIGGER_BATCH: usize = 1024;

/// One controller: a reconciler over keys `K`, run by [`Runner::run`].
pub struct Runner<K, R> {
    name: &'static str,
    reconciler: Arc<R>,
    config: RunnerConfig,
    metrics: Arc<RunnerMetrics>,
    _keys: PhantomData<fn(K)>,
}

/// What one reconcile task gives back.
type Done<K, E> = (K, Result<Action, E>);

/// The run's bookkeeping.
struct State<K, E> {
    queue: Queue<K>,
    /// Keys whose reconcile runs now.
    running: HashSet<K>,
    /// The key of each reconcile task, for those that panic.
    tasks_keys: HashMap<tokio::task::Id, K>,
    tasks: JoinSet<Done<K, E>>,
    /// Failures in a row per key; a success removes the key.
    attempts: HashMap<K, u32>,
}

impl<K: Key, R: Reconcile<K>> Runner<K, R> {
    /// `name` names the controller in spans and logs.
    pub fn new(name: &'static str, reconciler: R, config: RunnerConfig) -> Self {
        Self { name, reconciler: Arc::new(reconciler), config, metrics: Arc::default(), _keys: PhantomData }
    }

    pub fn metrics(&self) -> Arc<RunnerMetrics> {
        self.metrics.clone()
    }

    /// Reconciles the keys `triggers` yields (each as soon as the rules
    /// allow) and those their actions requeue, until `shutdown` resolves
    /// (then waits for the reconciles under way) or nothing can happen any
    /// more (the triggers ended, nothing is queued or running). Dropping
    /// the run instead aborts the reconciles under way.
    pub async fn run(self, triggers: impl Stream<Item = K> + Send, shutdown: impl Future<Output = ()> + Send) {
        let mut triggers = pin!(triggers.fuse());
        let mut shutdown = pin!(shutdown);
        let mut triggers_open = true;
        let mut state = State {
            queue: Queue::default(),
            running: HashSet::new(),
            tasks_keys: HashMap::new(),
            tasks: JoinSet::new(),
            attempts: HashMap::new(),
        };
        let concurrency = self.config.concurrency.max(1);
        loop {
            self.start_due(&mut state, concurrency);
            if !triggers_open && state.queue.is_empty() && state.tasks.is_empty() {
                return;
            }
            // Sleep until the next key that could start now is due; with
            // every slot taken, only an ending reconcile can start one.
            let wake = if state.running.len() < concurrency {
                state.queue.next_due(|k| state.running.contains(k))
            } else {
                None
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = state.tasks.join_next_with_id() => self.finish(&mut state, done),
                trigger = triggers.next(), if triggers_open => match trigger {
                    Some(key) => {
                        let now = Instant::now();
                        state.queue.schedule(key, now);
                        for _ in 1..TRIGGER_BATCH {
                            let Some(Some(key)) = triggers.next().now_or_never() else { break };
                            state.queue.schedule(key, now);
                        }
                    }
                    None => triggers_open = false,
                },
                () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
            }
        }
        tracing::debug!(controller = self.name, running = state.tasks.len(), "shutting down: waiting for reconciles");
        while let Some(done) = state.tasks.join_next_with_id().await {
            self.finish(&mut state, done);
        }
    }

    /// Starts due keys that are not running, while there are free slots.
    fn start_due(&self, state: &mut State<K, R::Error>, concurrency: usize) {
        let now = Instant::now();
        while state.running.len() < concurrency {
            let Some(key) = state.queue.pop_due(now, |k| state.running.contains(k)) else {
                return;
            };
            let span = tracing::info_span!("reconcile", controller = self.name, key = ?key);
            let reconciler = self.reconciler.clone();
            let task_key = key.clone();
            let task = state.tasks.spawn(
                async move {
                    let result = reconciler.reconcile(&task_key).await;
                    (task_key, result)
                }
                .instrument(span),
            );
            state.tasks_keys.insert(task.id(), key.clone());
            state.running.insert(key);
        }
    }

    /// Books an ended reconcile and queues its key again as its action (or,
    /// after a failure, the error policy and the backoff) says.
    fn finish(&self, state: &mut State<K, R::Error>, done: Result<(tokio::task::Id, Done<K, R::Error>), JoinError>) {
        let (key, result) = match done {
            Ok((id, (key, result))) => {
                state.tasks_keys.remove(&id);
                (key, Ok(result))
            }
            Err(e) => match state.tasks_keys.remove(&e.id()) {
                Some(key) => (key, Err(e)),
                None => return,
            },
        };
        state.running.remove(&key);
        self.metrics.reconciles.fetch_add(1, Ordering::Relaxed);
        let requeue_after = match result {
            Ok(Ok(action)) => {
                state.attempts.remove(&key);
                action.requeue_after
            }
            Ok(Err(error)) => {
                let attempts = self.failed(state, &key);
                let least = self.config.backoff.delay(attempts);
                let retry = self.reconciler.error_policy(&key, &error, attempts).requeue_after.map(|d| d.max(least));
                tracing::warn!(controller = self.name, key = ?key, error = %error,
                    cause = ?std::error::Error::source(&error), attempts, retry_in = ?retry, "reconcile failed");
                retry
            }
            Err(panic) => {
                let attempts = self.failed(state, &key);
                let retry = self.config.backoff.delay(attempts);
                tracing::error!(controller = self.name, key = ?key, error = %panic, attempts, retry_in = ?retry,
                    "reconcile panicked");
                Some(retry)
            }
        };
        if let Some(at) = requeue_after.and_then(|after| Instant::now().checked_add(after)) {
            state.queue.schedule(key, at);
        }
    }

    /// Counts a failure of `key`; returns its failures in a row.
    fn failed(&self, state: &mut State<K, R::Error>, key: &K) -> u32 {
        self.metrics.failures.fetch_add(1, Ordering::Relaxed);
        let attempts = state.attempts.entry(key.clone()).or_insert(0);
        *attempts = attempts.saturating_add(1);
        *attempts
    }
}

#[cfg(test)]
mod tests;
