//! A running target group: its targets' health and load, target
//! selection over them, and the group's counters.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Instant, SystemTime};

use hyper::client::conn::http1::SendRequest;
use tokio::task::AbortHandle;

use crate::config::{Target, TargetGroupConfig};
use crate::counters::GroupCells;
use crate::health::{Checked, HealthState, Probe, Reason};
use crate::select::{self, Candidate, Standing};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn read<T: Clone>(m: &RwLock<T>) -> T {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

pub(crate) fn write<T>(m: &RwLock<T>, value: T) {
    *m.write().unwrap_or_else(std::sync::PoisonError::into_inner) = value;
}

/// One registered target.
#[derive(Debug)]
pub(crate) struct TargetState {
    pub addr: SocketAddr,
    /// Requests (or TCP flows) in flight to it.
    pub outstanding: AtomicUsize,
    pub health: Mutex<TargetHealth>,
    draining_until: Mutex<Option<SystemTime>>,
    /// Gone from the configuration: in-flight requests finish, no new ones.
    removed: AtomicBool,
    checker: Mutex<Option<AbortHandle>>,
    /// Idle keep-alive connections to it.
    pub idle: Mutex<Vec<SendRequest<crate::proxy::Upload>>>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct TargetHealth {
    pub checked: Checked,
    /// When it last turned healthy, and whether slow start applies (ALB
    /// starts it only when other targets were healthy already).
    pub healthy_since: Option<Instant>,
    pub slow_start: bool,
}

impl TargetState {
    fn new(t: &Target) -> Self {
        TargetState {
            addr: t.addr,
            outstanding: AtomicUsize::new(0),
            health: Mutex::new(TargetHealth { checked: Checked::registered(), healthy_since: None, slow_start: false }),
            draining_until: Mutex::new(t.draining_until),
            removed: AtomicBool::new(false),
            checker: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn draining(&self) -> bool {
        lock(&self.draining_until).is_some()
    }

    pub fn removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    fn stop_checking(&self) {
        if let Some(h) = lock(&self.checker).take() {
            h.abort();
        }
    }

    pub fn set_checker(&self, handle: AbortHandle) {
        if let Some(old) = lock(&self.checker).replace(handle) {
            old.abort();
        }
    }

    pub fn is_checked(&self) -> bool {
        lock(&self.checker).as_ref().is_some_and(|h| !h.is_finished())
    }
}

impl Drop for TargetState {
    fn drop(&mut self) {
        self.stop_checking();
    }
}

/// A request's (or flow's) hold on a target: counts as outstanding until dropped.
#[derive(Debug)]
pub(crate) struct Outstanding(pub Arc<TargetState>);

impl Outstanding {
    pub fn new(t: Arc<TargetState>) -> Self {
        t.outstanding.fetch_add(1, Ordering::Relaxed);
        Outstanding(t)
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Slot {
    target: Arc<TargetState>,
    current: i64,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub config: RwLock<Arc<TargetGroupConfig>>,
    slots: Mutex<Vec<Slot>>,
    pub counters: GroupCells,
    /// Referred to by a listener (else its targets are unused).
    used: AtomicBool,
}

impl Group {
    pub fn new(config: &TargetGroupConfig) -> Self {
        Group {
            id: config.id.clone(),
            config: RwLock::new(Arc::new(config.clone())),
            slots: Mutex::new(Vec::new()),
            counters: GroupCells::default(),
            used: AtomicBool::new(false),
        }
    }

    pub fn used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes a new configuration: targets no longer listed are removed
    /// (in-flight requests keep them alive until done), new ones start
    /// initial; draining deadlines are updated.
    pub fn update(&self, config: &TargetGroupConfig, used: bool) {
        write(&self.config, Arc::new(config.clone()));
        let was_used = self.used.swap(used, Ordering::Relaxed);
        let wanted: HashMap<SocketAddr, &Target> = config.targets.iter().map(|t| (t.addr, t)).collect();
        let mut slots = lock(&self.slots);
        slots.retain(|s| {
            let keep = wanted.contains_key(&s.target.addr);
            if !keep {
                s.target.removed.store(true, Ordering::Relaxed);
                s.target.stop_checking();
                lock(&s.target.idle).clear();
            }
            keep
        });
        for t in &config.targets {
            match slots.iter().find(|s| s.target.addr == t.addr) {
                Some(s) => {
                    *lock(&s.target.draining_until) = t.draining_until;
                    if t.draining_until.is_some() {
                        // No new requests: its idle connections can go now.
                        s.target.stop_checking();
                        lock(&s.target.idle).clear();
                    }
                }
                None => {
                    slots.push(Slot { target: Arc::new(TargetState::new(t)), current: 0 });
                }
            }
        }
        if !used {
            for s in slots.iter() {
                s.target.stop_checking();
            }
        }
        if used && !was_used {
            // Newly in use: the targets start over as a registration does.
            for s in slots.iter() {
                let mut h = lock(&s.target.health);
                h.checked = Checked::registered();
                h.healthy_since = None;
            }
        }
    }

    /// Targets to (re)start health checks on: in use, not draining, not checked.
    pub fn unchecked(&self) -> Vec<Arc<TargetState>> {
        if !self.used() {
            return Vec::new();
        }
        lock(&self.slots).iter().filter(|s| !s.target.draining() && !s.target.is_checked()).map(|s| s.target.clone()).collect()
    }

    pub fn stop(&self) {
        for s in lock(&self.slots).iter() {
            s.target.removed.store(true, Ordering::Relaxed);
            s.target.stop_checking();
        }
    }

    /// A probe's outcome on `target`; true when its state or reason changed.
    pub fn record(&self, target: &TargetState, probe: Probe) -> bool {
        let config = read(&self.config);
        let others_healthy = lock(&self.slots)
            .iter()
            .any(|s| s.target.addr != target.addr && lock(&s.target.health).checked.state == HealthState::Healthy);
        let mut h = lock(&target.health);
        let before = h.checked;
        let after = before.next(probe, config.health_check.healthy_threshold, config.health_check.unhealthy_threshold);
        h.checked = after;
        if after.state == HealthState::Healthy && before.state != HealthState::Healthy {
            h.healthy_since = Some(Instant::now());
            h.slow_start = others_healthy && !config.slow_start.is_zero();
        }
        (before.state, before.reason, before.code) != (after.state, after.reason, after.code)
    }

    /// Picks a target for a new request (`sticky`: the one a cookie names).
    pub fn pick(&self, sticky: Option<SocketAddr>) -> Option<Arc<TargetState>> {
        let config = read(&self.config);
        let now = Instant::now();
        let mut slots = lock(&self.slots);
        let mut cands: Vec<Candidate> = slots
            .iter()
            .map(|s| {
                let h = *lock(&s.target.health);
                let standing = if s.target.draining() || s.target.removed() {
                    Standing::Out
                } else if h.checked.state == HealthState::Healthy {
                    Standing::Healthy
                } else {
                    Standing::NotHealthy
                };
                let weight = match h.healthy_since {
                    Some(since) if h.slow_start => select::slow_start_weight(now - since, config.slow_start),
                    _ => select::FULL,
                };
                Candidate { standing, weight, outstanding: s.target.outstanding.load(Ordering::Relaxed), current: s.current }
            })
            .collect();
        let sticky = sticky.and_then(|a| slots.iter().position(|s| s.target.addr == a));
        let i = select::pick(&mut cands, config.algorithm, sticky)?;
        for (s, c) in slots.iter_mut().zip(&cands) {
            s.current = c.current;
        }
        Some(slots[i].target.clone())
    }

    /// Each target's reported health.
    pub fn report(&self) -> Vec<TargetHealthReport> {
        let used = self.used();
        lock(&self.slots)
            .iter()
            .map(|s| {
                let checked = lock(&s.target.health).checked;
                let (state, reason, code) = if s.target.draining() {
                    (HealthState::Draining, Some(Reason::DeregistrationInProgress), None)
                } else if !used {
                    (HealthState::Unused, Some(Reason::NotInUse), None)
                } else {
                    (checked.state, checked.reason, checked.code)
                };
                TargetHealthReport {
                    target_group: self.id.clone(),
                    addr: s.target.addr,
                    state,
                    reason,
                    description: reason.and_then(|r| crate::health::description(r, code)),
                }
            })
            .collect()
    }

    pub fn snapshot(&self) -> crate::counters::GroupCounters {
        let report = self.report();
        let healthy = report.iter().filter(|r| r.state == HealthState::Healthy).count() as u64;
        let unhealthy = report.iter().filter(|r| r.state == HealthState::Unhealthy).count() as u64;
        self.counters.snapshot(healthy, unhealthy)
    }
}

/// One target's health as DescribeTargetHealth reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealthReport {
    /// The target group's id (ARN).
    pub target_group: String,
    pub addr: SocketAddr,
    pub state: HealthState,
    pub reason: Option<Reason>,
    pub description: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn slow_start_ramps_a_target_that_joins_healthy_peers_only() {
        let (a, b): (SocketAddr, SocketAddr) = ("10.0.0.1:80".parse().unwrap(), "10.0.0.2:80".parse().unwrap());
        let mut config = TargetGroupConfig::http("tg", &[a, b]);
        config.slow_start = Duration::from_secs(600);
        let group = Group::new(&config);
        group.update(&config, true);
        let target = |addr| lock(&group.slots).iter().find(|s| s.target.addr == addr).unwrap().target.clone();
        let (ta, tb) = (target(a), target(b));
        let threshold = config.health_check.healthy_threshold;
        for _ in 0..threshold {
            group.record(&ta, Probe::Passed);
        }
        assert!(!lock(&ta.health).slow_start, "the first healthy target has no peers: no slow start");
        for _ in 0..threshold {
            group.record(&tb, Probe::Passed);
        }
        assert!(lock(&tb.health).slow_start);
        let to_b = (0..200).filter(|_| group.pick(None).unwrap().addr == b).count();
        assert!(to_b <= 2, "a target just into a 10-minute slow start gets almost nothing: {to_b} of 200");
        // Without slow start the two share equally.
        config.slow_start = Duration::ZERO;
        group.update(&config, true);
        lock(&tb.health).slow_start = false;
        let to_b = (0..200).filter(|_| group.pick(None).unwrap().addr == b).count();
        assert_eq!(to_b, 100);
    }

    #[test]
    fn draining_and_unused_targets_are_reported_so_and_get_nothing() {
        let (a, b): (SocketAddr, SocketAddr) = ("10.0.0.1:80".parse().unwrap(), "10.0.0.2:80".parse().unwrap());
        let mut config = TargetGroupConfig::http("tg", &[a, b]);
        config.targets[0].draining_until = Some(SystemTime::now());
        let group = Group::new(&config);
        group.update(&config, true);
        let report = group.report();
        assert_eq!((report[0].state, report[0].reason), (HealthState::Draining, Some(Reason::DeregistrationInProgress)));
        assert_eq!((report[1].state, report[1].reason), (HealthState::Initial, Some(Reason::RegistrationInProgress)));
        assert!((0..10).all(|_| group.pick(None).unwrap().addr == b));
        group.update(&config, false);
        assert_eq!(group.report()[1].state, HealthState::Unused);
        assert_eq!(group.report()[1].description.as_deref(), Some("Target group is not configured to receive traffic from the load balancer"));
    }
}
