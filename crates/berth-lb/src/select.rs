//! Which target gets a request, pure: healthy targets only, every
//! registered one when none is healthy (ALB's fail-open), round robin or
//! least outstanding requests, slow start as a weight, and which of a
//! forward action's weighted target groups.

use std::time::Duration;

use crate::config::Algorithm;

/// A target's full share (the weight of one out of slow start).
pub const FULL: u32 = 1000;

/// Where a target stands for new requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Healthy,
    /// Initial or unhealthy: used only when no target is healthy.
    NotHealthy,
    /// Draining or deregistered: never.
    Out,
}

/// One target as selection sees it. `current` is the smooth weighted
/// round robin's running weight; the caller keeps it between picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub standing: Standing,
    /// 1..=FULL (see [`slow_start_weight`]).
    pub weight: u32,
    pub outstanding: usize,
    pub current: i64,
}

impl Candidate {
    pub fn new(standing: Standing) -> Self {
        Candidate { standing, weight: FULL, outstanding: 0, current: 0 }
    }
}

/// The targets a request may go to: the healthy ones, or when there are
/// none, all that are not out (fail-open). Empty: nothing registered.
pub fn pool(cands: &[Candidate]) -> Vec<usize> {
    let healthy: Vec<usize> = (0..cands.len()).filter(|&i| cands[i].standing == Standing::Healthy).collect();
    if !healthy.is_empty() {
        return healthy;
    }
    (0..cands.len()).filter(|&i| cands[i].standing != Standing::Out).collect()
}

/// Picks a target (an index into `cands`) and updates the running
/// weights. A sticky target that is still in the pool wins.
pub fn pick(cands: &mut [Candidate], algorithm: Algorithm, sticky: Option<usize>) -> Option<usize> {
    let pool = pool(cands);
    if let Some(s) = sticky.filter(|s| pool.contains(s)) {
        return Some(s);
    }
    let among: Vec<usize> = match algorithm {
        Algorithm::RoundRobin => pool,
        Algorithm::LeastOutstandingRequests => {
            // Fewest outstanding per share; ties go round robin.
            let load = |i: usize| cands[i].outstanding as u128 * u128::from(FULL) / u128::from(cands[i].weight.max(1));
            let least = pool.iter().map(|&i| load(i)).min()?;
            pool.into_iter().filter(|&i| load(i) == least).collect()
        }
    };
    smooth_round_robin(cands, &among)
}

/// nginx's smooth weighted round robin over `among`: equal weights give
/// plain rotation; a weight of half gets every other turn, spread out.
fn smooth_round_robin(cands: &mut [Candidate], among: &[usize]) -> Option<usize> {
    let total: i64 = among.iter().map(|&i| i64::from(cands[i].weight.max(1))).sum();
    for &i in among {
        cands[i].current += i64::from(cands[i].weight.max(1));
    }
    let best = among.iter().copied().max_by(|&a, &b| cands[a].current.cmp(&cands[b].current).then(b.cmp(&a)))?;
    cands[best].current -= total;
    Some(best)
}

/// Slow start: a target healthy for `healthy_for` out of a `slow_start`
/// window gets that fraction of a full share (at least 1/FULL), linearly.
pub fn slow_start_weight(healthy_for: Duration, slow_start: Duration) -> u32 {
    if slow_start.is_zero() || healthy_for >= slow_start {
        return FULL;
    }
    let share = healthy_for.as_secs_f64() / slow_start.as_secs_f64();
    ((share * f64::from(FULL)) as u32).clamp(1, FULL)
}

/// Which weighted group a roll in `0..sum(weights)` lands on; `None` when
/// every weight is zero.
pub fn pick_weighted(weights: &[u32], roll: u64) -> Option<usize> {
    let mut left = roll;
    for (i, &w) in weights.iter().enumerate() {
        if left < u64::from(w) {
            return Some(i);
        }
        left -= u64::from(w);
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use Standing::*;

    fn cands(standings: &[Standing]) -> Vec<Candidate> {
        standings.iter().map(|&s| Candidate::new(s)).collect()
    }

    fn picks(c: &mut [Candidate], algorithm: Algorithm, n: usize) -> Vec<usize> {
        (0..n).map(|_| pick(c, algorithm, None).unwrap()).collect()
    }

    #[test]
    fn round_robin_over_healthy_targets_only() {
        let mut c = cands(&[Healthy, NotHealthy, Healthy, Out, Healthy]);
        assert_eq!(picks(&mut c, Algorithm::RoundRobin, 6), vec![0, 2, 4, 0, 2, 4]);
    }

    #[test]
    fn fail_open_when_none_is_healthy_but_never_to_draining() {
        let mut c = cands(&[NotHealthy, Out, NotHealthy]);
        assert_eq!(picks(&mut c, Algorithm::RoundRobin, 4), vec![0, 2, 0, 2]);
        let mut out = cands(&[Out, Out]);
        assert_eq!(pick(&mut out, Algorithm::RoundRobin, None), None);
        assert_eq!(pick(&mut [], Algorithm::RoundRobin, None), None);
    }

    #[test]
    fn least_outstanding_prefers_the_idle_target_and_rotates_ties() {
        let mut c = cands(&[Healthy, Healthy, Healthy]);
        c[0].outstanding = 3;
        c[1].outstanding = 0;
        c[2].outstanding = 1;
        assert_eq!(picks(&mut c, Algorithm::LeastOutstandingRequests, 3), vec![1, 1, 1]);
        c[2].outstanding = 0;
        assert_eq!(picks(&mut c, Algorithm::LeastOutstandingRequests, 4), vec![1, 2, 1, 2]);
    }

    #[test]
    fn stickiness_holds_while_the_target_is_in_the_pool() {
        let mut c = cands(&[Healthy, Healthy, NotHealthy]);
        assert_eq!(pick(&mut c, Algorithm::RoundRobin, Some(1)), Some(1));
        assert_eq!(pick(&mut c, Algorithm::RoundRobin, Some(1)), Some(1));
        // The sticky target is unhealthy while others are healthy: a new one.
        assert_ne!(pick(&mut c, Algorithm::RoundRobin, Some(2)), Some(2));
    }

    #[test]
    fn slow_start_ramps_linearly() {
        let s = Duration::from_secs;
        let table = [(s(0), s(0), FULL), (s(0), s(100), 1), (s(10), s(100), 100), (s(50), s(100), 500), (s(99), s(100), 990), (s(100), s(100), FULL), (s(500), s(100), FULL)];
        for (healthy_for, window, want) in table {
            assert_eq!(slow_start_weight(healthy_for, window), want, "{healthy_for:?} of {window:?}");
        }
    }

    #[test]
    fn slow_start_weight_shares_requests_in_proportion() {
        // A target at a quarter share next to two full ones: 1 in 9.
        let mut c = cands(&[Healthy, Healthy, Healthy]);
        c[2].weight = FULL / 4;
        let got = picks(&mut c, Algorithm::RoundRobin, 900);
        let counts: Vec<usize> = (0..3).map(|i| got.iter().filter(|&&g| g == i).count()).collect();
        assert_eq!(counts, vec![400, 400, 100]);
    }

    #[test]
    fn weighted_groups() {
        let table: &[(&[u32], u64, Option<usize>)] = &[
            (&[80, 20], 0, Some(0)),
            (&[80, 20], 79, Some(0)),
            (&[80, 20], 80, Some(1)),
            (&[80, 20], 99, Some(1)),
            (&[0, 5], 0, Some(1)),
            (&[0, 0], 0, None),
        ];
        for &(w, roll, want) in table {
            assert_eq!(pick_weighted(w, roll), want, "{w:?} {roll}");
        }
    }
}
