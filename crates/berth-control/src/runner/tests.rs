//! The runner's rules, on a paused clock: every time asserted is virtual.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU32;

use futures_util::stream;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::sleep;

use super::*;

#[derive(Debug)]
struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scripted failure")
    }
}

impl std::error::Error for Failed {}

/// What a probe's reconcile of `key` returns on its `run`th run (1-based).
type Script = Box<dyn Fn(char, u32) -> Result<Action, Failed> + Send + Sync>;

/// A reconciler that takes `work` of virtual time per run and records
/// when each run started and how many ran at once.
struct Probe {
    t0: Instant,
    work: Duration,
    script: Script,
    starts: Mutex<Vec<(char, Duration)>>,
    ends: AtomicU32,
    active: Mutex<HashMap<char, u32>>,
    max_per_key: AtomicU32,
    active_total: AtomicU32,
    max_total: AtomicU32,
    policy_attempts: Mutex<Vec<u32>>,
}

impl Probe {
    fn new(work: Duration, script: impl Fn(char, u32) -> Result<Action, Failed> + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            t0: Instant::now(),
            work,
            script: Box::new(script),
            starts: Mutex::default(),
            ends: AtomicU32::new(0),
            active: Mutex::default(),
            max_per_key: AtomicU32::new(0),
            active_total: AtomicU32::new(0),
            max_total: AtomicU32::new(0),
            policy_attempts: Mutex::default(),
        })
    }

    fn starts(&self) -> Vec<(char, Duration)> {
        self.starts.lock().unwrap().clone()
    }

    fn starts_of(&self, key: char) -> Vec<Duration> {
        self.starts().into_iter().filter(|(k, _)| *k == key).map(|(_, t)| t).collect()
    }
}

impl Reconcile<char> for Arc<Probe> {
    type Error = Failed;

    async fn reconcile(&self, key: &char) -> Result<Action, Failed> {
        let run = {
            let mut starts = self.starts.lock().unwrap();
            starts.push((*key, self.t0.elapsed()));
            u32::try_from(starts.iter().filter(|(k, _)| k == key).count()).unwrap()
        };
        let now_on_key = {
            let mut active = self.active.lock().unwrap();
            let n = active.entry(*key).or_insert(0);
            *n += 1;
            *n
        };
        self.max_per_key.fetch_max(now_on_key, Ordering::SeqCst);
        let total = self.active_total.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_total.fetch_max(total, Ordering::SeqCst);
        sleep(self.work).await;
        *self.active.lock().unwrap().get_mut(key).unwrap() -= 1;
        self.active_total.fetch_sub(1, Ordering::SeqCst);
        self.ends.fetch_add(1, Ordering::SeqCst);
        (self.script)(*key, run)
    }

    fn error_policy(&self, _key: &char, _error: &Failed, attempts: u32) -> Action {
        self.policy_attempts.lock().unwrap().push(attempts);
        Action::requeue(Duration::ZERO)
    }
}

/// A running runner over a probe: send keys on `triggers`, end it with
/// `shutdown`; `done` gives the virtual time `run` returned.
struct Harness {
    triggers: mpsc::UnboundedSender<char>,
    shutdown: oneshot::Sender<()>,
    done: JoinHandle<Duration>,
    metrics: Arc<RunnerMetrics>,
}

fn start(probe: &Arc<Probe>, config: RunnerConfig) -> Harness {
    let (triggers, mut rx) = mpsc::unbounded_channel();
    let (shutdown, stop) = oneshot::channel::<()>();
    let runner = Runner::new("probe", probe.clone(), config);
    let metrics = runner.metrics();
    let t0 = probe.t0;
    let done = tokio::spawn(async move {
        let triggers = stream::poll_fn(move |cx| rx.poll_recv(cx));
        runner.run(triggers, stop.map(|_| ())).await;
        t0.elapsed()
    });
    Harness { triggers, shutdown, done, metrics }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn settle() -> Action {
    Action::await_change()
}

#[tokio::test(start_paused = true)]
async fn ten_triggers_for_a_queued_key_are_one_reconcile() {
    let probe = Probe::new(secs(10), |_, _| Ok(settle()));
    let h = start(&probe, RunnerConfig { concurrency: 1, ..RunnerConfig::default() });
    // 'a' takes the only slot; 'b' waits in the queue while it is
    // triggered ten times.
    h.triggers.send('a').unwrap();
    sleep(secs(1)).await;
    for _ in 0..10 {
        h.triggers.send('b').unwrap();
        sleep(Duration::from_millis(100)).await;
    }
    sleep(secs(60)).await;
    assert_eq!(probe.starts(), vec![('a', secs(0)), ('b', secs(10))]);
    drop(h.triggers);
    assert_eq!(h.done.await.unwrap(), secs(62));
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_triggers_is_one_reconcile() {
    let probe = Probe::new(secs(1), |_, _| Ok(settle()));
    let h = start(&probe, RunnerConfig::default());
    for _ in 0..10 {
        h.triggers.send('a').unwrap();
    }
    drop(h.triggers);
    h.done.await.unwrap();
    assert_eq!(probe.starts(), vec![('a', secs(0))]);
    assert_eq!(h.metrics.reconciles(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_key_triggered_while_it_runs_runs_once_more_after() {
    let probe = Probe::new(secs(5), |_, _| Ok(settle()));
    let h = start(&probe, RunnerConfig::default());
    h.triggers.send('a').unwrap();
    sleep(secs(1)).await;
    h.triggers.send('a').unwrap();
    sleep(secs(1)).await;
    h.triggers.send('a').unwrap();
    drop(h.triggers);
    h.done.await.unwrap();
    assert_eq!(probe.starts_of('a'), vec![secs(0), secs(5)]);
    assert_eq!(probe.max_per_key.load(Ordering::SeqCst), 1, "two reconciles of one key overlapped");
    assert_eq!(probe.ends.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn requeue_after_fires_at_its_time() {
    // Runs 1 and 2 ask to be requeued in 30 s, run 3 settles.
    let probe = Probe::new(secs(2), |_, run| Ok(if run < 3 { Action::requeue(secs(30)) } else { settle() }));
    let h = start(&probe, RunnerConfig::default());
    h.triggers.send('a').unwrap();
    drop(h.triggers);
    // The requeue counts from when the reconcile ended (2 s of work).
    assert_eq!(h.done.await.unwrap(), secs(66));
    assert_eq!(probe.starts_of('a'), vec![secs(0), secs(32), secs(64)]);
}

#[tokio::test(start_paused = true)]
async fn a_trigger_brings_a_requeue_forward() {
    let probe = Probe::new(Duration::ZERO, |_, run| Ok(if run == 1 { Action::requeue(secs(100)) } else { settle() }));
    let h = start(&probe, RunnerConfig::default());
    h.triggers.send('a').unwrap();
    sleep(secs(10)).await;
    h.triggers.send('a').unwrap();
    drop(h.triggers);
    h.done.await.unwrap();
    assert_eq!(probe.starts_of('a'), vec![secs(0), secs(10)]);
}

#[tokio::test(start_paused = true)]
async fn errors_back_off_exponentially_up_to_the_cap_and_a_success_resets() {
    // Runs 1-6 fail, 7 succeeds and requeues in 10 s, 8 fails, 9 settles.
    let probe = Probe::new(Duration::ZERO, |_, run| match run {
        1..=6 | 8 => Err(Failed),
        7 => Ok(Action::requeue(secs(10))),
        _ => Ok(settle()),
    });
    let backoff = Backoff { initial: secs(1), max: secs(8) };
    let h = start(&probe, RunnerConfig { concurrency: 1, backoff });
    h.triggers.send('a').unwrap();
    drop(h.triggers);
    h.done.await.unwrap();
    // Waits 1, 2, 4, 8, 8 (capped), then 8: run 7 at 31; after its
    // success the next failure waits 1 again.
    let at: Vec<_> = [0, 1, 3, 7, 15, 23, 31, 41, 42].into_iter().map(secs).collect();
    assert_eq!(probe.starts_of('a'), at);
    assert_eq!(*probe.policy_attempts.lock().unwrap(), vec![1, 2, 3, 4, 5, 6, 1]);
    assert_eq!(h.metrics.reconciles(), 9);
    assert_eq!(h.metrics.failures(), 7);
}

#[tokio::test(start_paused = true)]
async fn an_error_policy_may_wait_longer_than_the_backoff_or_for_a_change() {
    struct Patient;
    impl Reconcile<u8> for Patient {
        type Error = Failed;
        async fn reconcile(&self, _key: &u8) -> Result<Action, Failed> {
            Err(Failed)
        }
        fn error_policy(&self, key: &u8, _error: &Failed, _attempts: u32) -> Action {
            if *key == 0 { Action::requeue(secs(60)) } else { Action::await_change() }
        }
    }
    let runner = Runner::new("patient", Patient, RunnerConfig::default());
    let metrics = runner.metrics();
    let t0 = Instant::now();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(runner.run(stream::iter([0, 1]), stopped.map(|_| ())));
    sleep(secs(150)).await;
    stop.send(()).unwrap();
    run.await.unwrap();
    // Key 0 at 0, 60, 120; key 1 once.
    assert_eq!(metrics.reconciles(), 4);
    assert_eq!(t0.elapsed(), secs(150));
}

#[tokio::test(start_paused = true)]
async fn different_keys_run_concurrently_up_to_the_limit() {
    let probe = Probe::new(secs(10), |_, _| Ok(settle()));
    let h = start(&probe, RunnerConfig { concurrency: 3, ..RunnerConfig::default() });
    for key in ['a', 'b', 'c', 'd', 'e'] {
        h.triggers.send(key).unwrap();
    }
    drop(h.triggers);
    assert_eq!(h.done.await.unwrap(), secs(20));
    assert_eq!(probe.max_total.load(Ordering::SeqCst), 3);
    let mut at: Vec<_> = probe.starts().into_iter().map(|(_, t)| t).collect();
    at.sort();
    assert_eq!(at, vec![secs(0), secs(0), secs(0), secs(10), secs(10)]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_reconciles_under_way_and_starts_nothing_new() {
    let probe = Probe::new(secs(10), |_, _| Ok(Action::requeue(secs(1))));
    let h = start(&probe, RunnerConfig::default());
    h.triggers.send('a').unwrap();
    sleep(secs(1)).await;
    h.shutdown.send(()).unwrap();
    sleep(secs(1)).await;
    h.triggers.send('b').unwrap();
    // Returns when 'a' has finished its 10 s, not before, and neither 'b'
    // nor a's requeue ever starts.
    assert_eq!(h.done.await.unwrap(), secs(10));
    assert_eq!(probe.ends.load(Ordering::SeqCst), 1);
    sleep(secs(30)).await;
    assert_eq!(probe.starts(), vec![('a', secs(0))]);
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_a_failure_and_backs_off() {
    let probe = Probe::new(Duration::ZERO, |_, run| if run == 1 { panic!("scripted panic") } else { Ok(settle()) });
    let backoff = Backoff { initial: secs(3), max: secs(3) };
    let h = start(&probe, RunnerConfig { concurrency: 1, backoff });
    h.triggers.send('a').unwrap();
    drop(h.triggers);
    h.done.await.unwrap();
    assert_eq!(probe.starts_of('a'), vec![secs(0), secs(3)]);
    assert_eq!(h.metrics.failures(), 1);
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let b = Backoff { initial: Duration::from_millis(500), max: secs(5) };
    let delays: Vec<_> = (1..=6).map(|n| b.delay(n)).collect();
    let ms = Duration::from_millis;
    assert_eq!(delays, vec![ms(500), ms(1000), ms(2000), ms(4000), secs(5), secs(5)]);
    assert_eq!(b.delay(u32::MAX), secs(5));
}

#[tokio::test(start_paused = true)]
async fn notices_become_triggers_and_a_lag_triggers_every_key() {
    let (tx, rx) = broadcast::channel::<(bool, char)>(2);
    let triggers = from_notices(rx, |(wanted, key)| wanted.then_some(key), || async { vec!['x', 'y'] });
    let mut triggers = pin!(triggers);
    tx.send((true, 'a')).unwrap();
    tx.send((false, 'i')).unwrap();
    assert_eq!(triggers.next().await, Some('a'));
    // Four more into a channel of two: the receiver lags.
    for key in ['b', 'c', 'd', 'e'] {
        tx.send((true, key)).unwrap();
    }
    assert_eq!(triggers.next().await, Some('x'));
    assert_eq!(triggers.next().await, Some('y'));
    assert_eq!(triggers.next().await, Some('d'));
    assert_eq!(triggers.next().await, Some('e'));
    drop(tx);
    assert_eq!(triggers.next().await, None);
}
