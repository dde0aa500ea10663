//! The load balancers' data plane: what ELBv2 calls listeners, rules,
//! target groups and target health, running for real.
//!
//! The caller hands a [`Balancer`] whole [`Config`]s (`apply`, level-
//! triggered: it reconciles what runs to what is asked) built from its own
//! records, and reads back target health ([`Balancer::health`], with a
//! change notice) and per-target-group counters. Sockets come from a
//! [`Sockets`] the caller provides, so listeners and target connections
//! can live in a load balancer's network namespace.
//!
//! Where ELBv2's fields go (the caller converts):
//!
//! | ELBv2 | here |
//! | --- | --- |
//! | Listener ARN, Port (on the load balancer's address), Protocol HTTP/HTTPS/TCP | `ListenerConfig { id, bind, protocol }` |
//! | Listener Certificates (default first) + ACM's certificate and chain, private key | `ListenerProtocol::Https { certificates }` |
//! | LB attribute `idle_timeout.timeout_seconds` | `ListenerConfig::idle_timeout` |
//! | Rules (Priority, Conditions, Actions), DefaultActions | `Rule`, `Condition`, `Action` |
//! | forward (TargetGroups with Weight, TargetGroupStickinessConfig) | `Action::Forward(Forward)` |
//! | fixed-response, redirect (`#{…}` placeholders, HTTP_301/HTTP_302) | `FixedResponse`, `Redirect { permanent }` |
//! | TargetGroup Protocol, HealthCheck*, Matcher.HttpCode | `TargetGroupConfig { protocol, health_check }`, `Matcher::parse` |
//! | `load_balancing.algorithm.type`, `slow_start.duration_seconds`, `deregistration_delay.timeout_seconds`, `stickiness.lb_cookie.duration_seconds` (when `stickiness.enabled`) | `algorithm`, `slow_start`, `deregistration_delay`, `stickiness` |
//! | RegisterTargets / DeregisterTargets (then the delay) | `targets`, `Target::draining_until`; drop it after the delay |
//! | DescribeTargetHealth State, Reason, Description | `TargetHealthReport` (`HealthState::as_str`, `Reason::code`) |
//!
//! Rule matching ([`rules`]), target selection ([`select`]), the health
//! state machine and matcher ([`health`]) and ALB's headers ([`headers`])
//! are pure and tested as tables; the rest is I/O on hyper, hyper-util and
//! rustls.

mod balancer;
pub mod config;
mod counters;
mod group;
pub mod headers;
pub mod health;
mod io;
mod proxy;
pub mod rules;
pub mod select;
mod sockets;
mod tcp;
mod tls;

pub use balancer::{ApplyError, Balancer};
pub use config::*;
pub use counters::{GroupCounters, ListenerCounters};
pub use group::TargetHealthReport;
pub use health::{HealthState, Matcher, MatcherError, Reason};
pub use sockets::{HostSockets, Sockets};
pub use tls::CertificateError;
