//! ECS container dependencies (`dependsOn`): whether a waiting container
//! may start now, must keep waiting, or will never start. Pure rules over
//! what the shim knows of the other containers; the shim applies them.
//!
//! - START: the dependency has started (it may have exited since).
//! - COMPLETE: it has exited, with any code.
//! - SUCCESS: it has exited with code 0; any other exit fails the dependent.
//! - HEALTHY: its health check passed; becoming UNHEALTHY or exiting first
//!   fails the dependent. Confirmed at start only, as in ECS.
//!
//! A dependency that never started fails its dependents. One that has not
//! met its condition within its own `startTimeout` fails them too.

use std::time::Duration;

use berth_runtime_api::{Condition, Dependency};
use berth_runtime_api::HealthStatus;

/// What the shim knows of a container others depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Facts {
    /// It has not started yet.
    Waiting,
    /// It runs, with this health (`None`: it has no health check).
    Running(Option<HealthStatus>),
    /// It exited with this code.
    Exited(i32),
    /// It will never start.
    NotStarted,
}

/// The verdict on one waiting container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Every dependency is met: start it.
    Open,
    /// Some dependency may still be met.
    Wait,
    /// Some dependency can no longer be met: it never starts, for this reason.
    Never(String),
}

/// The verdict for a container with `deps`, given the facts of each
/// dependency (with its start timeout) and how long it has waited.
pub(crate) fn gate(deps: &[(&Dependency, Facts, Duration)], waited: Duration) -> Gate {
    let mut verdict = Gate::Open;
    for (dep, facts, timeout) in deps {
        match one(dep.condition, *facts) {
            Met::Yes => {}
            Met::Never(why) => {
                return Gate::Never(format!(
                    "CannotStartContainerError: dependency on container {} ({}) cannot be met: {why}",
                    dep.container,
                    dep.condition.as_str()
                ));
            }
            Met::NotYet if waited >= *timeout => {
                return Gate::Never(format!(
                    "CannotStartContainerError: dependency on container {} ({}) was not met within its startTimeout of {} s",
                    dep.container,
                    dep.condition.as_str(),
                    timeout.as_secs()
                ));
            }
            Met::NotYet => verdict = Gate::Wait,
        }
    }
    verdict
}

enum Met {
    Yes,
    NotYet,
    Never(String),
}

fn one(condition: Condition, facts: Facts) -> Met {
    use Condition as C;
    match (condition, facts) {
        (_, Facts::NotStarted) => Met::Never("it never started".into()),
        (_, Facts::Waiting) => Met::NotYet,
        (C::Start, Facts::Running(_) | Facts::Exited(_)) => Met::Yes,
        (C::Complete | C::Success, Facts::Running(_)) => Met::NotYet,
        (C::Complete, Facts::Exited(_)) | (C::Success, Facts::Exited(0)) => Met::Yes,
        (C::Success, Facts::Exited(code)) => Met::Never(format!("it exited with code {code}")),
        (C::Healthy, Facts::Running(Some(HealthStatus::Healthy))) => Met::Yes,
        (C::Healthy, Facts::Running(Some(HealthStatus::Unhealthy))) => {
            Met::Never("it is UNHEALTHY".into())
        }
        (C::Healthy, Facts::Running(_)) => Met::NotYet,
        (C::Healthy, Facts::Exited(code)) => {
            Met::Never(format!("it exited with code {code} before it was HEALTHY"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(10);

    fn verdict(condition: Condition, facts: Facts, waited: u64) -> Gate {
        let dep = Dependency {
            container: "dep".into(),
            condition,
        };
        gate(&[(&dep, facts, T)], Duration::from_secs(waited))
    }

    fn is_never(g: &Gate, containing: &str) -> bool {
        matches!(g, Gate::Never(why) if why.contains(containing) && why.starts_with("CannotStartContainerError: "))
    }

    #[test]
    fn conditions_as_a_table() {
        use Condition as C;
        use Facts as F;
        use HealthStatus as H;
        let open = [
            (C::Start, F::Running(None)),
            (C::Start, F::Exited(3)),
            (C::Complete, F::Exited(3)),
            (C::Success, F::Exited(0)),
            (C::Healthy, F::Running(Some(H::Healthy))),
        ];
        for (c, f) in open {
            assert_eq!(verdict(c, f, 0), Gate::Open, "{c:?} {f:?}");
        }
        let wait = [
            (C::Start, F::Waiting),
            (C::Complete, F::Running(None)),
            (C::Success, F::Running(None)),
            (C::Healthy, F::Running(Some(H::Unknown))),
            (C::Healthy, F::Waiting),
        ];
        for (c, f) in wait {
            assert_eq!(verdict(c, f, 0), Gate::Wait, "{c:?} {f:?}");
        }
        let never = [
            (C::Success, F::Exited(1), "exited with code 1"),
            (C::Healthy, F::Running(Some(H::Unhealthy)), "UNHEALTHY"),
            (C::Healthy, F::Exited(0), "before it was HEALTHY"),
            (C::Start, F::NotStarted, "never started"),
            (C::Complete, F::NotStarted, "never started"),
        ];
        for (c, f, why) in never {
            assert!(
                is_never(&verdict(c, f, 0), why),
                "{c:?} {f:?}: {:?}",
                verdict(c, f, 0)
            );
        }
    }

    #[test]
    fn a_dependency_not_met_in_its_start_timeout_fails_the_dependent() {
        assert_eq!(
            verdict(Condition::Complete, Facts::Running(None), 9),
            Gate::Wait
        );
        assert!(is_never(
            &verdict(Condition::Complete, Facts::Running(None), 10),
            "startTimeout of 10 s"
        ));
        // A met condition is met, however long it took.
        assert_eq!(
            verdict(Condition::Complete, Facts::Exited(0), 99),
            Gate::Open
        );
    }

    #[test]
    fn every_dependency_must_be_met() {
        let a = Dependency {
            container: "a".into(),
            condition: Condition::Start,
        };
        let b = Dependency {
            container: "b".into(),
            condition: Condition::Success,
        };
        let zero = Duration::ZERO;
        assert_eq!(gate(&[], zero), Gate::Open);
        assert_eq!(
            gate(
                &[(&a, Facts::Running(None), T), (&b, Facts::Running(None), T)],
                zero
            ),
            Gate::Wait
        );
        assert_eq!(
            gate(
                &[(&a, Facts::Running(None), T), (&b, Facts::Exited(0), T)],
                zero
            ),
            Gate::Open
        );
        let g = gate(&[(&a, Facts::Waiting, T), (&b, Facts::Exited(2), T)], zero);
        assert!(is_never(&g, "container b (SUCCESS)"), "{g:?}");
    }
}
