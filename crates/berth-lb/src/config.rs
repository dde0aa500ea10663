//! What the data plane is told to do: plain values the caller builds from
//! its records (ELBv2's listeners, rules and target groups). No wire
//! shapes, no store: `Balancer::apply` takes the whole of it each time.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;

use crate::health::Matcher;

/// Everything the balancer runs: its listeners and the target groups they
/// (and nothing else) refer to by id.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub listeners: Vec<ListenerConfig>,
    pub target_groups: Vec<TargetGroupConfig>,
}

/// One listener (an ELBv2 listener on one load balancer address).
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// The listener's ARN (any string the caller keys it by).
    pub id: String,
    pub bind: SocketAddr,
    pub protocol: ListenerProtocol,
    /// The load balancer's `idle_timeout.timeout_seconds` (ALB default 60 s):
    /// a client connection with no data either way for this long is
    /// closed, and a target that has not answered within it gives 504.
    pub idle_timeout: Duration,
    /// Rules other than the default one, any order (they are tried by
    /// ascending priority).
    pub rules: Vec<Rule>,
    pub default_action: Action,
}

#[derive(Debug, Clone)]
pub enum ListenerProtocol {
    Http,
    /// TLS termination; `certificates[0]` is the default certificate, the
    /// others are picked by the client's SNI name (wildcards included).
    Https { certificates: Vec<Certificate> },
    /// Network load balancer: bytes passed through to a target of the
    /// default action's (first) target group; rules do not apply.
    Tcp,
}

impl ListenerProtocol {
    /// The name in X-Forwarded-Proto and in redirects' `#{protocol}`.
    pub fn scheme(&self) -> &'static str {
        match self {
            ListenerProtocol::Http | ListenerProtocol::Tcp => "http",
            ListenerProtocol::Https { .. } => "https",
        }
    }
}

/// An imported certificate: PEM certificate chain (leaf first) and its
/// PEM private key (PKCS#8, PKCS#1 or SEC1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub chain_pem: String,
    pub key_pem: String,
}

/// A listener rule: all its conditions hold, then its action is taken.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Lower first; ALB's 1..=50000.
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub action: Action,
}

/// ALB's rule conditions. The values within one condition are
/// alternatives (any matches); a rule's conditions all must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Path patterns with `*` and `?`, case-sensitive, against the path
    /// (not the query string).
    PathPattern(Vec<String>),
    /// Host names with `*` and `?`, case-insensitive, without the port.
    HostHeader(Vec<String>),
    /// A header (name case-insensitive) whose value matches one of the
    /// patterns (`*`, `?`, case-insensitive).
    HttpHeader { name: String, values: Vec<String> },
    /// Methods, exact and case-sensitive.
    HttpRequestMethod(Vec<String>),
    /// Key/value pairs (`*`, `?`, case-insensitive); no key matches any key.
    QueryString(Vec<QueryPair>),
    /// The client's address (the connection's peer) in one of the ranges.
    SourceIp(Vec<IpNet>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPair {
    pub key: Option<String>,
    pub value: String,
}

#[derive(Debug, Clone)]
pub enum Action {
    Forward(Forward),
    FixedResponse(FixedResponse),
    Redirect(Redirect),
}

/// Forward to one or more weighted target groups.
#[derive(Debug, Clone)]
pub struct Forward {
    pub target_groups: Vec<WeightedGroup>,
    /// Group-level stickiness (ForwardConfig.TargetGroupStickinessConfig):
    /// a client keeps its target group for this long (AWSALBTG cookie).
    pub group_stickiness: Option<Duration>,
}

impl Forward {
    /// Forward everything to one group.
    pub fn to(group: &str) -> Self {
        Forward { target_groups: vec![WeightedGroup { id: group.to_owned(), weight: 1 }], group_stickiness: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedGroup {
    pub id: String,
    /// ALB's 0..=999; a group of weight 0 gets no requests.
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedResponse {
    pub status: u16,
    /// ALB's text/plain, text/css, text/html, application/javascript,
    /// application/json; none: text/plain.
    pub content_type: Option<String>,
    pub body: String,
}

/// ALB's redirect: each part is a template with `#{protocol}`,
/// `#{host}`, `#{port}`, `#{path}` and `#{query}`; `None` keeps the
/// request's own (ALB's defaults).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redirect {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    /// Starts with `/`; default `/#{path}`.
    pub path: Option<String>,
    /// Without the `?`; default `#{query}`.
    pub query: Option<String>,
    pub permanent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetProtocol {
    Http,
    /// TLS to the target, which is not verified (as ALB does).
    Https,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    LeastOutstandingRequests,
}

/// A target group (target type ip: each target an address and port).
#[derive(Debug, Clone)]
pub struct TargetGroupConfig {
    /// The target group's ARN.
    pub id: String,
    pub protocol: TargetProtocol,
    pub health_check: HealthCheck,
    pub algorithm: Algorithm,
    /// `slow_start.duration_seconds`; zero: off.
    pub slow_start: Duration,
    /// `deregistration_delay.timeout_seconds`. The caller keeps a
    /// deregistered target in `targets` with `draining_until` set for this
    /// long; kept here for the caller's use and for the report.
    pub deregistration_delay: Duration,
    /// `stickiness.lb_cookie.duration_seconds` when stickiness is on.
    pub stickiness: Option<Duration>,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    /// Set when the target was deregistered: it gets no new requests,
    /// its in-flight ones finish, and it is reported draining.
    pub draining_until: Option<SystemTime>,
}

impl Target {
    pub fn new(addr: SocketAddr) -> Self {
        Target { addr, draining_until: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckProtocol {
    Http,
    Https,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckPort {
    TrafficPort,
    Port(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub protocol: HealthCheckProtocol,
    /// HTTP(S) only.
    pub path: String,
    pub port: HealthCheckPort,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// HTTP(S) only.
    pub matcher: Matcher,
}

impl HealthCheck {
    /// ALB's defaults for an HTTP target group: GET / every 30 s, 5 s
    /// timeout, 5 to become healthy, 2 to become unhealthy, 200.
    pub fn http(path: &str) -> Self {
        HealthCheck {
            protocol: HealthCheckProtocol::Http,
            path: path.to_owned(),
            port: HealthCheckPort::TrafficPort,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: Matcher::ok(),
        }
    }

    /// NLB's defaults for a TCP target group: connect every 30 s, 10 s
    /// timeout, 5 and 2.
    pub fn tcp() -> Self {
        HealthCheck {
            protocol: HealthCheckProtocol::Tcp,
            path: "/".into(),
            port: HealthCheckPort::TrafficPort,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: Matcher::ok(),
        }
    }
}

impl TargetGroupConfig {
    /// An HTTP target group with ALB's defaults and these targets.
    pub fn http(id: &str, targets: &[SocketAddr]) -> Self {
        TargetGroupConfig {
            id: id.to_owned(),
            protocol: TargetProtocol::Http,
            health_check: HealthCheck::http("/"),
            algorithm: Algorithm::RoundRobin,
            slow_start: Duration::ZERO,
            deregistration_delay: Duration::from_secs(300),
            stickiness: None,
            targets: targets.iter().copied().map(Target::new).collect(),
        }
    }
}

impl Action {
    /// The target groups this action can send to.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        let groups = match self {
            Action::Forward(f) => &f.target_groups[..],
            _ => &[],
        };
        groups.iter().map(|g| g.id.as_str())
    }
}
