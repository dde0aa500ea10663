//! Target health, pure: ALB's states and reason codes, the matcher of
//! health-check response codes, and the one transition function a probe's
//! outcome drives.

use std::fmt;

/// ELBv2's TargetHealth.State.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthState {
    Initial,
    Healthy,
    Unhealthy,
    Unused,
    Draining,
}

impl HealthState {
    /// The wire value (`initial`, `healthy`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Initial => "initial",
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy => "unhealthy",
            HealthState::Unused => "unused",
            HealthState::Draining => "draining",
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ELBv2's TargetHealth.Reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    RegistrationInProgress,
    InitialHealthChecking,
    ResponseCodeMismatch,
    Timeout,
    FailedHealthChecks,
    DeregistrationInProgress,
    NotInUse,
}

impl Reason {
    /// The wire value, exactly ALB's.
    pub fn code(self) -> &'static str {
        match self {
            Reason::RegistrationInProgress => "Elb.RegistrationInProgress",
            Reason::InitialHealthChecking => "Elb.InitialHealthChecking",
            Reason::ResponseCodeMismatch => "Target.ResponseCodeMismatch",
            Reason::Timeout => "Target.Timeout",
            Reason::FailedHealthChecks => "Target.FailedHealthChecks",
            Reason::DeregistrationInProgress => "Target.DeregistrationInProgress",
            Reason::NotInUse => "Target.NotInUse",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What one health check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Connected (TCP) or answered with a code the matcher accepts.
    Passed,
    /// Answered with a code the matcher does not accept.
    CodeMismatch(u16),
    /// No answer within the check's timeout.
    TimedOut,
    /// Connection refused or reset, or an answer that is not HTTP.
    Failed,
}

/// The health-checking state of one target (its state, reason, and the
/// consecutive outcomes that move it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub state: HealthState,
    pub reason: Option<Reason>,
    /// The last mismatching code, for Target.ResponseCodeMismatch's text.
    pub code: Option<u16>,
    passes: u32,
    failures: u32,
}

impl Checked {
    /// A target just registered: no check has finished yet.
    pub const fn registered() -> Self {
        Checked { state: HealthState::Initial, reason: Some(Reason::RegistrationInProgress), code: None, passes: 0, failures: 0 }
    }

    /// ALB's description for the reason.
    pub fn description(&self) -> Option<String> {
        description(self.reason?, self.code)
    }

    /// The one transition: a probe's outcome with the group's thresholds.
    /// Initial and unhealthy targets turn healthy after `healthy`
    /// consecutive passes; initial and healthy ones turn unhealthy after
    /// `unhealthy` consecutive failures, with the last failure's reason.
    pub fn next(self, probe: Probe, healthy: u32, unhealthy: u32) -> Self {
        let mut n = self;
        match probe {
            Probe::Passed => {
                n.passes = n.passes.saturating_add(1);
                n.failures = 0;
            }
            _ => {
                n.failures = n.failures.saturating_add(1);
                n.passes = 0;
            }
        }
        let failure = |n: &mut Checked| {
            n.state = HealthState::Unhealthy;
            (n.reason, n.code) = match probe {
                Probe::CodeMismatch(c) => (Some(Reason::ResponseCodeMismatch), Some(c)),
                Probe::TimedOut => (Some(Reason::Timeout), None),
                _ => (Some(Reason::FailedHealthChecks), None),
            };
        };
        match (self.state, probe) {
            (HealthState::Initial | HealthState::Unhealthy, Probe::Passed) if n.passes >= healthy.max(1) => {
                n.state = HealthState::Healthy;
                n.reason = None;
                n.code = None;
            }
            (HealthState::Initial, Probe::Passed) => n.reason = Some(Reason::InitialHealthChecking),
            (HealthState::Initial | HealthState::Healthy, _) if !matches!(probe, Probe::Passed) && n.failures >= unhealthy.max(1) => {
                failure(&mut n)
            }
            (HealthState::Initial, _) => n.reason = Some(Reason::InitialHealthChecking),
            // Unhealthy stays so, but says what the latest failure was.
            (HealthState::Unhealthy, Probe::CodeMismatch(_) | Probe::TimedOut | Probe::Failed) => failure(&mut n),
            _ => {}
        }
        n
    }
}

/// ALB's TargetHealth.Description for a reason.
pub fn description(reason: Reason, code: Option<u16>) -> Option<String> {
    Some(match reason {
        Reason::RegistrationInProgress => "Target registration is in progress".into(),
        Reason::InitialHealthChecking => "Initial health checks in progress".into(),
        Reason::ResponseCodeMismatch => format!("Health checks failed with these codes: [{}]", code.map(|c| c.to_string()).unwrap_or_default()),
        Reason::Timeout => "Request timed out".into(),
        Reason::FailedHealthChecks => "Health checks failed".into(),
        Reason::DeregistrationInProgress => "Target deregistration is in progress".into(),
        Reason::NotInUse => "Target group is not configured to receive traffic from the load balancer".into(),
    })
}

/// A health check's Matcher.HttpCode: codes (`200`), lists (`200,202`)
/// and ranges (`200-299`), each 200..=499 as ALB allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    ranges: Vec<(u16, u16)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid health check matcher {text:?}: {why}")]
pub struct MatcherError {
    pub text: String,
    pub why: &'static str,
}

impl Matcher {
    /// `200`, ALB's default.
    pub fn ok() -> Self {
        Matcher { ranges: vec![(200, 200)] }
    }

    pub fn parse(text: &str) -> Result<Self, MatcherError> {
        let err = |why| MatcherError { text: text.to_owned(), why };
        let code = |s: &str| -> Result<u16, MatcherError> {
            let c: u16 = s.trim().parse().map_err(|_| err("codes are numbers"))?;
            if (200..=499).contains(&c) { Ok(c) } else { Err(err("codes are between 200 and 499")) }
        };
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let range = match part.split_once('-') {
                Some((a, b)) => (code(a)?, code(b)?),
                None => {
                    let c = code(part)?;
                    (c, c)
                }
            };
            if range.0 > range.1 {
                return Err(err("a range's first code is the lower"));
            }
            ranges.push(range);
        }
        Ok(Matcher { ranges })
    }

    pub fn accepts(&self, code: u16) -> bool {
        self.ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&code))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use HealthState::*;

    #[test]
    fn matcher_table() {
        let table: &[(&str, &[u16], &[u16])] = &[
            ("200", &[200], &[201, 500]),
            ("200,202", &[200, 202], &[201]),
            ("200-299", &[200, 250, 299], &[199, 300]),
            ("200-204,301,400-404", &[203, 301, 404], &[300, 405]),
        ];
        for &(text, yes, no) in table {
            let m = Matcher::parse(text).unwrap();
            for &c in yes {
                assert!(m.accepts(c), "{text} accepts {c}");
            }
            for &c in no {
                assert!(!m.accepts(c), "{text} refuses {c}");
            }
        }
        for bad in ["", "abc", "100", "500", "299-200", "200-", "200,,"] {
            assert!(Matcher::parse(bad).is_err(), "{bad:?} is refused");
        }
    }

    /// Runs a sequence of probes from a new registration with thresholds 3/2.
    fn run(probes: &[Probe]) -> Checked {
        probes.iter().fold(Checked::registered(), |c, &p| c.next(p, 3, 2))
    }

    #[test]
    fn transitions_table() {
        use Probe::*;
        let table: &[(&[Probe], HealthState, Option<Reason>)] = &[
            (&[], Initial, Some(Reason::RegistrationInProgress)),
            (&[Passed], Initial, Some(Reason::InitialHealthChecking)),
            (&[Passed, Passed], Initial, Some(Reason::InitialHealthChecking)),
            (&[Passed, Passed, Passed], Healthy, None),
            (&[Failed], Initial, Some(Reason::InitialHealthChecking)),
            (&[Failed, Failed], Unhealthy, Some(Reason::FailedHealthChecks)),
            (&[CodeMismatch(500), CodeMismatch(500)], Unhealthy, Some(Reason::ResponseCodeMismatch)),
            (&[Failed, TimedOut], Unhealthy, Some(Reason::Timeout)),
            (&[Passed, Passed, Passed, Failed], Healthy, None),
            (&[Passed, Passed, Passed, Failed, Passed, Failed], Healthy, None),
            (&[Passed, Passed, Passed, Failed, CodeMismatch(503)], Unhealthy, Some(Reason::ResponseCodeMismatch)),
            (&[Failed, Failed, Passed, Passed], Unhealthy, Some(Reason::FailedHealthChecks)),
            (&[Failed, Failed, Passed, Passed, Passed], Healthy, None),
            (&[Failed, Failed, Passed, Failed, Passed, Passed, Passed], Healthy, None),
            (&[Failed, Failed, TimedOut], Unhealthy, Some(Reason::Timeout)),
        ];
        for (probes, state, reason) in table {
            let c = run(probes);
            assert_eq!((c.state, c.reason), (*state, *reason), "{probes:?}");
        }
        let c = run(&[CodeMismatch(500), CodeMismatch(502)]);
        assert_eq!(c.description().unwrap(), "Health checks failed with these codes: [502]");
        assert_eq!(Checked::registered().description().unwrap(), "Target registration is in progress");
        assert_eq!(Reason::NotInUse.code(), "Target.NotInUse");
    }
}
