//! Container health checks, Docker's rules as ECS documents them: a
//! container starts UNKNOWN; a passing check makes it HEALTHY; `retries`
//! failing checks in a row make it UNHEALTHY; failures during the start
//! period do not count (but a pass there counts, and ends the period). A
//! check that outlives its timeout is a failure.
//!
//! The shim runs the checks (`runc exec` in the container, every
//! `interval`, first one `interval` after start) and applies [`record`].

use berth_runtime_api::{Health, HealthStatus};

/// The result of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It exited with this code.
    Exited(i32),
    /// It ran past its timeout (and was killed).
    TimedOut,
    /// It could not be run at all.
    NotRun,
}

/// Applies one check's outcome. `in_start_period`: the container is still
/// within its start period and has never passed a check.
pub(crate) fn record(health: &mut Health, outcome: Outcome, retries: u32, in_start_period: bool) {
    health.checks += 1;
    health.last_exit_code = match outcome {
        Outcome::Exited(code) => Some(code),
        Outcome::TimedOut | Outcome::NotRun => None,
    };
    if outcome == Outcome::Exited(0) {
        health.status = HealthStatus::Healthy;
        health.failing_streak = 0;
        return;
    }
    if in_start_period {
        return;
    }
    health.failing_streak += 1;
    if health.failing_streak >= retries {
        health.status = HealthStatus::Unhealthy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcomes: &[(Outcome, bool)], retries: u32) -> Health {
        let mut h = Health::unknown();
        for (o, in_start) in outcomes {
            record(&mut h, *o, retries, *in_start);
        }
        h
    }

    #[test]
    fn health_by_docker_rules() {
        use HealthStatus as H;
        use Outcome as O;
        let pass = (O::Exited(0), false);
        let fail = (O::Exited(1), false);
        type Case<'a> = (&'a [(Outcome, bool)], H, u32);
        let cases: &[Case] = &[
            (&[], H::Unknown, 0),
            (&[pass], H::Healthy, 0),
            (&[fail, fail], H::Unknown, 2),
            (&[fail, fail, fail], H::Unhealthy, 3),
            (&[fail, fail, pass], H::Healthy, 0),
            (&[pass, fail, fail, fail], H::Unhealthy, 3),
            (
                &[(O::TimedOut, false), (O::NotRun, false), fail],
                H::Unhealthy,
                3,
            ),
            // Failures in the start period do not count.
            (
                &[
                    (O::Exited(1), true),
                    (O::Exited(1), true),
                    (O::Exited(1), true),
                    (O::Exited(1), true),
                ],
                H::Unknown,
                0,
            ),
            (&[(O::Exited(1), true), fail, fail], H::Unknown, 2),
            (&[(O::Exited(0), true), fail, fail, fail], H::Unhealthy, 3),
        ];
        for (outcomes, status, streak) in cases {
            let h = run(outcomes, 3);
            assert_eq!(
                (h.status, h.failing_streak),
                (*status, *streak),
                "{outcomes:?}"
            );
            assert_eq!(h.checks, outcomes.len() as u64);
        }
        assert_eq!(run(&[fail], 1).status, H::Unhealthy, "retries 1");
        assert_eq!(run(&[(O::TimedOut, false)], 3).last_exit_code, None);
        assert_eq!(run(&[(O::Exited(7), false)], 3).last_exit_code, Some(7));
    }
}
