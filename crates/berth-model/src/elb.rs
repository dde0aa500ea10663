//! Elastic Load Balancing (v2) in the model: load balancers, target
//! groups, listeners, rules, registered targets and their health, as
//! typed records with ELBv2's documented defaults, limits and names
//! (ARNs, DNS names), and ACM's imported certificates. Pure rules: the
//! API converts to and from the wire; the data plane reads these records.
//!
//! Every rule a request can break is an [`ElbError`] carrying ELBv2's own
//! error code (`ValidationError`, `InvalidConfigurationRequest`, …).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// A request broke one of ELBv2's rules: `code` is ELBv2's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ElbError {
    pub code: &'static str,
    pub message: String,
}

impl ElbError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationError", message)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new("InvalidConfigurationRequest", message)
    }
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $s)] $v),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$v),+];

            /// ELBv2's spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)+ _ => None }
            }
        }
    };
}

wire_enum!(
    /// `Type` of a load balancer.
    LbType { Application = "application", Network = "network" }
);
wire_enum!(
    /// `Scheme` of a load balancer.
    Scheme { Internal = "internal", InternetFacing = "internet-facing" }
);
wire_enum!(
    /// `State.Code`: provisioning until its node serves, then active.
    LbState { Provisioning = "provisioning", Active = "active", ActiveImpaired = "active_impaired", Failed = "failed" }
);
wire_enum!(
    /// The protocols Berth's load balancers speak.
    Protocol { Http = "HTTP", Https = "HTTPS", Tcp = "TCP" }
);
wire_enum!(
    /// `TargetHealth.State`.
    HealthState {
        Initial = "initial",
        Healthy = "healthy",
        Unhealthy = "unhealthy",
        UnhealthyDraining = "unhealthy.draining",
        Unused = "unused",
        Draining = "draining",
        Unavailable = "unavailable",
    }
);
wire_enum!(
    /// `TargetHealth.Reason`, as ALB and NLB document them.
    HealthReason {
        RegistrationInProgress = "Elb.RegistrationInProgress",
        InitialHealthChecking = "Elb.InitialHealthChecking",
        ResponseCodeMismatch = "Target.ResponseCodeMismatch",
        Timeout = "Target.Timeout",
        FailedHealthChecks = "Target.FailedHealthChecks",
        NotRegistered = "Target.NotRegistered",
        NotInUse = "Target.NotInUse",
        DeregistrationInProgress = "Target.DeregistrationInProgress",
        InvalidState = "Target.InvalidState",
        IpUnusable = "Target.IpUnusable",
        HealthCheckDisabled = "Target.HealthCheckDisabled",
        InternalError = "Elb.InternalError",
    }
);

impl HealthReason {
    /// ELBv2's description of the reason (`TargetHealth.Description`).
    pub fn description(self) -> &'static str {
        match self {
            Self::RegistrationInProgress => "Target registration is in progress",
            Self::InitialHealthChecking => "Initial health checks in progress",
            Self::ResponseCodeMismatch => "Health checks failed with these codes",
            Self::Timeout => "Request timed out",
            Self::FailedHealthChecks => "Health checks failed",
            Self::NotRegistered => "Target is not registered to the target group",
            Self::NotInUse => "Target group is not configured to receive traffic from the load balancer",
            Self::DeregistrationInProgress => "Target deregistration is in progress",
            Self::InvalidState => "Target is in the stopped or terminated state",
            Self::IpUnusable => "The IP address cannot be used as a target, as it is in use by a load balancer",
            Self::HealthCheckDisabled => "Health checks are disabled",
            Self::InternalError => "Health checks failed due to an internal error",
        }
    }
}

/// ELBv2's limits.
pub const MAX_NAME: usize = 32;
pub const MAX_RULE_PRIORITY: u32 = 50_000;
pub const MAX_CONDITION_VALUES: usize = 5;
pub const MAX_FORWARD_GROUPS: usize = 5;
pub const MAX_TARGETS_PER_CALL: usize = 1000;
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";
/// The security policies Berth's TLS listeners accept (rustls decides
/// the ciphers; the name is recorded).
pub const SSL_POLICIES: &[&str] = &[
    "ELBSecurityPolicy-2016-08",
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
];

/// Checks a load balancer or target group name: 1 to 32 alphanumerics
/// or hyphens, not starting or ending with a hyphen (nor, for load
/// balancers, with `internal-`).
pub fn validate_name(name: &str, what: &str) -> Result<(), ElbError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(ElbError::validation(format!(
            "{what} name '{name}' must have at most {MAX_NAME} alphanumeric characters or hyphens, and must not begin or end with a hyphen"
        )));
    }
    if what == "Load balancer" && name.starts_with("internal-") {
        return Err(ElbError::validation(format!("Load balancer name '{name}' cannot begin with 'internal-'")));
    }
    Ok(())
}

/// `arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/app|net/NAME/ID`.
pub fn load_balancer_arn(region: &str, account: &str, t: LbType, name: &str, id: &str) -> String {
    let kind = match t {
        LbType::Application => "app",
        LbType::Network => "net",
    };
    format!("arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/{kind}/{name}/{id}")
}

pub fn target_group_arn(region: &str, account: &str, name: &str, id: &str) -> String {
    format!("arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{name}/{id}")
}

/// A listener's ARN: its load balancer's, `loadbalancer` → `listener`, and its own id.
pub fn listener_arn(lb_arn: &str, id: &str) -> String {
    format!("{}/{id}", lb_arn.replacen(":loadbalancer/", ":listener/", 1))
}

/// A rule's ARN: its listener's, `listener` → `listener-rule`, and its own id.
pub fn rule_arn(listener_arn: &str, id: &str) -> String {
    format!("{}/{id}", listener_arn.replacen(":listener/", ":listener-rule/", 1))
}

/// The DNS name ELBv2 gives a load balancer: `NAME-DIGITS.REGION.elb.amazonaws.com`
/// for application load balancers (`internal-` first for internal ones),
/// `NAME-ID.elb.REGION.amazonaws.com` for network load balancers.
pub fn dns_name(name: &str, id: &str, region: &str, t: LbType, scheme: Scheme) -> String {
    let prefix = if scheme == Scheme::Internal { "internal-" } else { "" };
    let name = name.to_ascii_lowercase();
    match t {
        LbType::Application => {
            let digits = u64::from_str_radix(id.get(..10).unwrap_or(id), 16).unwrap_or(0) % 10_000_000_000;
            format!("{prefix}{name}-{digits:010}.{region}.elb.amazonaws.com")
        }
        LbType::Network => format!("{prefix}{name}-{id}.elb.{region}.amazonaws.com"),
    }
}

/// The Route 53 zone of load balancers in `region` (ELBv2's published
/// ids; regions not listed get us-east-1's).
pub fn canonical_hosted_zone_id(region: &str, t: LbType) -> &'static str {
    let zones: &[(&str, &str, &str)] = &[
        ("us-east-1", "Z35SXDOTRQ7X7K", "Z26RNL4JYFTOTI"),
        ("us-east-2", "Z3AADJGX6KTTL2", "ZLMOA37VPKANP"),
        ("us-west-1", "Z368ELLRRE2KJ0", "Z24FKFUX50B4VW"),
        ("us-west-2", "Z1H1FL5HABSF5", "Z18D5FSROUN65G"),
        ("eu-west-1", "Z32O12XQLNTSW2", "Z2IFOLAFXWLO4F"),
        ("eu-central-1", "Z215JYRZR1TBD5", "Z3F0SRJ5LGBH90"),
        ("ap-northeast-1", "Z14GRHDCWA56QT", "Z31USIVHYNEOWT"),
        ("ap-southeast-2", "Z1GM3OXH4ZPM65", "ZCT6FZBF4DROD"),
    ];
    let row = zones.iter().find(|z| z.0 == region).unwrap_or(&zones[0]);
    match t {
        LbType::Application => row.1,
        LbType::Network => row.2,
    }
}

/// A load balancer's node in one subnet: the address it listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LbNode {
    pub subnet_id: String,
    pub zone: String,
    pub address: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    /// The 16 hex digits ending the ARN.
    pub id: String,
    pub lb_type: LbType,
    pub scheme: Scheme,
    pub state: LbState,
    pub dns_name: String,
    pub vpc_id: String,
    /// Seconds since the epoch.
    pub created_at: f64,
    pub nodes: Vec<LbNode>,
    /// Application load balancers only.
    #[serde(default)]
    pub security_groups: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl LoadBalancer {
    pub fn deletion_protected(&self) -> bool {
        self.attributes.get("deletion_protection.enabled").is_some_and(|v| v == "true")
    }
}

/// What an attribute's value may be.
#[derive(Clone, Copy)]
enum Value {
    Bool,
    Range(i64, i64),
    /// 0 or a range (slow start).
    ZeroOr(i64, i64),
    OneOf(&'static [&'static str]),
    Text,
}

impl Value {
    fn check(self, kind: &str, key: &str, v: &str) -> Result<(), ElbError> {
        let ok = match self {
            Self::Bool => v == "true" || v == "false",
            Self::Range(lo, hi) => v.parse::<i64>().is_ok_and(|n| (lo..=hi).contains(&n)),
            Self::ZeroOr(lo, hi) => v.parse::<i64>().is_ok_and(|n| n == 0 || (lo..=hi).contains(&n)),
            Self::OneOf(values) => values.contains(&v),
            Self::Text => v.len() <= 1024,
        };
        if ok {
            return Ok(());
        }
        let allowed = match self {
            Self::Bool => "true or false".to_owned(),
            Self::Range(lo, hi) => format!("an integer from {lo} to {hi}"),
            Self::ZeroOr(lo, hi) => format!("0 or an integer from {lo} to {hi}"),
            Self::OneOf(values) => values.join(", "),
            Self::Text => "at most 1024 characters".to_owned(),
        };
        Err(ElbError::validation(format!("{kind} attribute '{key}' cannot be '{v}': it must be {allowed}")))
    }
}

type Attribute = (&'static str, &'static str, Value);

const ALB_ATTRIBUTES: &[Attribute] = &[
    ("access_logs.s3.enabled", "false", Value::Bool),
    ("access_logs.s3.bucket", "", Value::Text),
    ("access_logs.s3.prefix", "", Value::Text),
    ("connection_logs.s3.enabled", "false", Value::Bool),
    ("connection_logs.s3.bucket", "", Value::Text),
    ("connection_logs.s3.prefix", "", Value::Text),
    ("client_keep_alive.seconds", "3600", Value::Range(60, 604_800)),
    ("deletion_protection.enabled", "false", Value::Bool),
    ("idle_timeout.timeout_seconds", "60", Value::Range(1, 4000)),
    ("load_balancing.cross_zone.enabled", "true", Value::Bool),
    ("routing.http.desync_mitigation_mode", "defensive", Value::OneOf(&["monitor", "defensive", "strictest"])),
    ("routing.http.drop_invalid_header_fields.enabled", "false", Value::Bool),
    ("routing.http.preserve_host_header.enabled", "false", Value::Bool),
    ("routing.http.x_amzn_tls_version_and_cipher_suite.enabled", "false", Value::Bool),
    ("routing.http.xff_client_port.enabled", "false", Value::Bool),
    ("routing.http.xff_header_processing.mode", "append", Value::OneOf(&["append", "preserve", "remove"])),
    ("routing.http2.enabled", "true", Value::Bool),
    ("waf.fail_open.enabled", "false", Value::Bool),
    ("zonal_shift.config.enabled", "false", Value::Bool),
];

const NLB_ATTRIBUTES: &[Attribute] = &[
    ("access_logs.s3.enabled", "false", Value::Bool),
    ("access_logs.s3.bucket", "", Value::Text),
    ("access_logs.s3.prefix", "", Value::Text),
    ("deletion_protection.enabled", "false", Value::Bool),
    (
        "dns_record.client_routing_policy",
        "any_availability_zone",
        Value::OneOf(&["availability_zone_affinity", "partial_availability_zone_affinity", "any_availability_zone"]),
    ),
    ("load_balancing.cross_zone.enabled", "false", Value::Bool),
    ("zonal_shift.config.enabled", "false", Value::Bool),
];

const HTTP_TARGET_GROUP_ATTRIBUTES: &[Attribute] = &[
    ("deregistration_delay.timeout_seconds", "300", Value::Range(0, 3600)),
    ("load_balancing.algorithm.type", "round_robin", Value::OneOf(&["round_robin", "least_outstanding_requests"])),
    ("load_balancing.algorithm.anomaly_mitigation", "off", Value::OneOf(&["off"])),
    ("load_balancing.cross_zone.enabled", "use_load_balancer_configuration", Value::OneOf(&["true", "false", "use_load_balancer_configuration"])),
    ("slow_start.duration_seconds", "0", Value::ZeroOr(30, 900)),
    ("stickiness.enabled", "false", Value::Bool),
    ("stickiness.type", "lb_cookie", Value::OneOf(&["lb_cookie"])),
    ("stickiness.lb_cookie.duration_seconds", "86400", Value::Range(1, 604_800)),
    ("target_group_health.dns_failover.minimum_healthy_targets.count", "1", Value::Range(1, 1000)),
    ("target_group_health.dns_failover.minimum_healthy_targets.percentage", "off", Value::Text),
    ("target_group_health.unhealthy_state_routing.minimum_healthy_targets.count", "1", Value::Range(1, 1000)),
    ("target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage", "off", Value::Text),
];

const TCP_TARGET_GROUP_ATTRIBUTES: &[Attribute] = &[
    ("deregistration_delay.timeout_seconds", "300", Value::Range(0, 3600)),
    ("deregistration_delay.connection_termination.enabled", "false", Value::Bool),
    ("load_balancing.cross_zone.enabled", "use_load_balancer_configuration", Value::OneOf(&["true", "false", "use_load_balancer_configuration"])),
    ("preserve_client_ip.enabled", "false", Value::Bool),
    ("proxy_protocol_v2.enabled", "false", Value::Bool),
    ("stickiness.enabled", "false", Value::Bool),
    ("stickiness.type", "source_ip", Value::OneOf(&["source_ip"])),
    ("target_health_state.unhealthy.connection_termination.enabled", "true", Value::Bool),
    ("target_health_state.unhealthy.draining_interval_seconds", "0", Value::Range(0, 360_000)),
];

const HTTP_LISTENER_ATTRIBUTES: &[Attribute] = &[
    ("routing.http.response.server.enabled", "true", Value::Bool),
    ("routing.http.response.strict_transport_security.header_value", "", Value::Text),
    ("routing.http.response.access_control_allow_origin.header_value", "", Value::Text),
    ("routing.http.response.access_control_allow_methods.header_value", "", Value::Text),
    ("routing.http.response.access_control_allow_headers.header_value", "", Value::Text),
    ("routing.http.response.access_control_allow_credentials.header_value", "", Value::Text),
    ("routing.http.response.access_control_expose_headers.header_value", "", Value::Text),
    ("routing.http.response.access_control_max_age.header_value", "", Value::Text),
    ("routing.http.response.content_security_policy.header_value", "", Value::Text),
    ("routing.http.response.x_content_type_options.header_value", "", Value::Text),
    ("routing.http.response.x_frame_options.header_value", "", Value::Text),
    ("routing.http.request.x_amzn_tls_version.header_name", "", Value::Text),
    ("routing.http.request.x_amzn_tls_cipher_suite.header_name", "", Value::Text),
];

const TCP_LISTENER_ATTRIBUTES: &[Attribute] = &[("tcp.idle_timeout.seconds", "350", Value::Range(60, 6000))];

fn defaults(table: &[Attribute]) -> BTreeMap<String, String> {
    table.iter().map(|(k, v, _)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Applies `changes` to `current`: every key must be one the table knows
/// (ELBv2's `ValidationError` "… attribute key 'K' is not recognized"
/// otherwise, which Terraform relies on) and every value valid. Nothing
/// changes if any is not.
fn apply(kind: &str, table: &[Attribute], current: &BTreeMap<String, String>, changes: &[(String, String)]) -> Result<BTreeMap<String, String>, ElbError> {
    let mut out = current.clone();
    for (key, value) in changes {
        let Some((_, _, rule)) = table.iter().find(|(k, _, _)| k == key) else {
            return Err(ElbError::validation(format!("{kind} attribute key '{key}' is not recognized")));
        };
        rule.check(kind, key, value)?;
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

/// The attributes a new load balancer of type `t` has.
pub fn load_balancer_defaults(t: LbType) -> BTreeMap<String, String> {
    defaults(lb_table(t))
}

fn lb_table(t: LbType) -> &'static [Attribute] {
    match t {
        LbType::Application => ALB_ATTRIBUTES,
        LbType::Network => NLB_ATTRIBUTES,
    }
}

pub fn apply_load_balancer_attributes(lb: &LoadBalancer, changes: &[(String, String)]) -> Result<BTreeMap<String, String>, ElbError> {
    apply("Load balancer", lb_table(lb.lb_type), &lb.attributes, changes)
}

fn tg_table(p: Protocol) -> &'static [Attribute] {
    match p {
        Protocol::Http | Protocol::Https => HTTP_TARGET_GROUP_ATTRIBUTES,
        Protocol::Tcp => TCP_TARGET_GROUP_ATTRIBUTES,
    }
}

pub fn target_group_defaults(p: Protocol) -> BTreeMap<String, String> {
    defaults(tg_table(p))
}

/// Applies target group attribute changes; slow start cannot be combined
/// with least outstanding requests, as in ELBv2.
pub fn apply_target_group_attributes(tg: &TargetGroup, changes: &[(String, String)]) -> Result<BTreeMap<String, String>, ElbError> {
    let out = apply("Target group", tg_table(tg.protocol), &tg.attributes, changes)?;
    let lor = out.get("load_balancing.algorithm.type").is_some_and(|v| v == "least_outstanding_requests");
    let slow = out.get("slow_start.duration_seconds").is_some_and(|v| v != "0");
    if lor && slow {
        return Err(ElbError::config("Slow start mode cannot be enabled with the least outstanding requests algorithm"));
    }
    Ok(out)
}

fn listener_table(p: Protocol) -> &'static [Attribute] {
    match p {
        Protocol::Http | Protocol::Https => HTTP_LISTENER_ATTRIBUTES,
        Protocol::Tcp => TCP_LISTENER_ATTRIBUTES,
    }
}

pub fn listener_defaults(p: Protocol) -> BTreeMap<String, String> {
    defaults(listener_table(p))
}

pub fn apply_listener_attributes(l: &Listener, changes: &[(String, String)]) -> Result<BTreeMap<String, String>, ElbError> {
    apply("Listener", listener_table(l.protocol), &l.attributes, changes)
}

/// Where health checks go: the target's traffic port or a fixed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HealthCheckPort {
    TrafficPort,
    Port(u16),
}

impl HealthCheckPort {
    pub fn parse(s: &str) -> Result<Self, ElbError> {
        if s == "traffic-port" {
            return Ok(Self::TrafficPort);
        }
        match s.parse::<u16>() {
            Ok(p) if p >= 1 => Ok(Self::Port(p)),
            _ => Err(ElbError::validation(format!("Health check port '{s}' must be 'traffic-port' or a port from 1 to 65535"))),
        }
    }

    pub fn as_string(self) -> String {
        match self {
            Self::TrafficPort => "traffic-port".into(),
            Self::Port(p) => p.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub enabled: bool,
    pub protocol: Protocol,
    pub port: HealthCheckPort,
    /// HTTP and HTTPS checks only.
    pub path: Option<String>,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// `Matcher.HttpCode` (HTTP and HTTPS checks only): "200", "200,202", "200-299".
    pub matcher: Option<String>,
}

/// A health check's settings as a request gives them (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthCheckChange {
    pub enabled: Option<bool>,
    pub protocol: Option<Protocol>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub interval_seconds: Option<i32>,
    pub timeout_seconds: Option<i32>,
    pub healthy_threshold: Option<i32>,
    pub unhealthy_threshold: Option<i32>,
    pub matcher: Option<String>,
}

impl HealthCheck {
    /// ELBv2's defaults for a target group of `protocol` (ip targets):
    /// HTTP(S): the group's protocol, path `/`, 30 s, 5 s, 5 healthy,
    /// 2 unhealthy, matcher 200; TCP: 30 s, 10 s, 5 and 2.
    pub fn defaults(protocol: Protocol) -> Self {
        let http = protocol != Protocol::Tcp;
        Self {
            enabled: true,
            protocol,
            port: HealthCheckPort::TrafficPort,
            path: http.then(|| "/".to_owned()),
            interval_seconds: 30,
            timeout_seconds: if http { 5 } else { 10 },
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: http.then(|| "200".to_owned()),
        }
    }

    /// These settings with `c` applied, checked against ELBv2's ranges.
    pub fn changed(&self, c: &HealthCheckChange, group: Protocol) -> Result<Self, ElbError> {
        let mut h = self.clone();
        if let Some(p) = c.protocol
            && p != h.protocol
        {
            if group != Protocol::Tcp && p == Protocol::Tcp {
                return Err(ElbError::validation("Health check protocol TCP is not supported for target groups with the HTTP or HTTPS protocol"));
            }
            h.protocol = p;
            let http = p != Protocol::Tcp;
            h.path = if http { h.path.or_else(|| Some("/".into())) } else { None };
            h.matcher = if http { h.matcher.or_else(|| Some(if group == Protocol::Tcp { "200-399" } else { "200" }.into())) } else { None };
        }
        let http = h.protocol != Protocol::Tcp;
        if let Some(e) = c.enabled {
            if !e && group == Protocol::Tcp {
                return Err(ElbError::validation("Health checks cannot be disabled for target groups with the TCP protocol"));
            }
            h.enabled = e;
        }
        if let Some(p) = &c.port {
            h.port = HealthCheckPort::parse(p)?;
        }
        if let Some(path) = &c.path {
            if !http {
                return Err(ElbError::validation("A health check path can only be given for HTTP or HTTPS health checks"));
            }
            if !path.starts_with('/') || path.len() > 1024 {
                return Err(ElbError::validation(format!("Health check path '{path}' must begin with '/' and be at most 1024 characters")));
            }
            h.path = Some(path.clone());
        }
        if let Some(m) = &c.matcher {
            if !http {
                return Err(ElbError::validation("A health check matcher can only be given for HTTP or HTTPS health checks"));
            }
            parse_matcher(m)?;
            h.matcher = Some(m.clone());
        }
        let range = |v: Option<i32>, lo: i32, hi: i32, name: &str, cur: u32| -> Result<u32, ElbError> {
            match v {
                None => Ok(cur),
                Some(n) if (lo..=hi).contains(&n) => Ok(n as u32),
                Some(n) => Err(ElbError::validation(format!("{name} '{n}' must be from {lo} to {hi}"))),
            }
        };
        h.interval_seconds = range(c.interval_seconds, 5, 300, "Health check interval", h.interval_seconds)?;
        h.timeout_seconds = range(c.timeout_seconds, 2, 120, "Health check timeout", h.timeout_seconds)?;
        h.healthy_threshold = range(c.healthy_threshold, 2, 10, "Healthy threshold count", h.healthy_threshold)?;
        h.unhealthy_threshold = range(c.unhealthy_threshold, 2, 10, "Unhealthy threshold count", h.unhealthy_threshold)?;
        if h.timeout_seconds >= h.interval_seconds {
            return Err(ElbError::validation(format!(
                "Health check timeout '{}' must be smaller than the interval '{}'",
                h.timeout_seconds, h.interval_seconds
            )));
        }
        Ok(h)
    }

    /// Whether `code` is a success by this check's matcher.
    pub fn matches(&self, code: u16) -> bool {
        self.matcher.as_deref().and_then(|m| parse_matcher(m).ok()).is_some_and(|ranges| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&code)))
    }
}

/// Parses `Matcher.HttpCode`: codes from 200 to 499, as one ("200"), a
/// list ("200,202") or a range ("200-299").
pub fn parse_matcher(m: &str) -> Result<Vec<(u16, u16)>, ElbError> {
    let bad = || ElbError::validation(format!("Health check matcher HTTP code '{m}' must be codes from 200 to 499, like '200', '200,202' or '200-299'"));
    let code = |s: &str| s.trim().parse::<u16>().ok().filter(|c| (200..=499).contains(c)).ok_or_else(bad);
    if let Some((lo, hi)) = m.split_once('-') {
        let (lo, hi) = (code(lo)?, code(hi)?);
        return if lo <= hi { Ok(vec![(lo, hi)]) } else { Err(bad()) };
    }
    m.split(',').map(|c| code(c).map(|c| (c, c))).collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub id: String,
    pub protocol: Protocol,
    pub port: u16,
    pub vpc_id: String,
    /// `HTTP1` for HTTP and HTTPS groups.
    pub protocol_version: Option<String>,
    pub health_check: HealthCheck,
    pub attributes: BTreeMap<String, String>,
    pub created_at: f64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl TargetGroup {
    pub fn deregistration_delay(&self) -> u32 {
        self.attributes.get("deregistration_delay.timeout_seconds").and_then(|v| v.parse().ok()).unwrap_or(300)
    }
}

/// Checks a target group's type: Berth's targets are IP addresses (the
/// only type Fargate tasks can be).
pub fn check_target_type(t: &str) -> Result<(), ElbError> {
    if t == "ip" {
        Ok(())
    } else {
        Err(ElbError::validation(format!(
            "Target type '{t}' is not supported: Berth's target groups have target type 'ip' (Fargate tasks are registered by IP address)"
        )))
    }
}

/// Checks a port (1..=65535).
pub fn port(p: i32, what: &str) -> Result<u16, ElbError> {
    u16::try_from(p).ok().filter(|p| *p >= 1).ok_or_else(|| ElbError::validation(format!("{what} '{p}' must be from 1 to 65535")))
}

/// A weighted target group of a forward action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedGroup {
    pub target_group_arn: String,
    pub weight: u32,
}

/// What a listener or rule does with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Action {
    Forward {
        groups: Vec<WeightedGroup>,
        /// Whether the request named one group by `TargetGroupArn`
        /// (shown back the same way).
        single: bool,
        /// Group stickiness: its duration when enabled.
        stickiness_seconds: Option<u32>,
        order: Option<i32>,
    },
    FixedResponse {
        status_code: String,
        content_type: Option<String>,
        message_body: Option<String>,
        order: Option<i32>,
    },
    Redirect {
        protocol: Option<String>,
        port: Option<String>,
        host: Option<String>,
        path: Option<String>,
        query: Option<String>,
        /// `HTTP_301` or `HTTP_302`.
        status_code: String,
        order: Option<i32>,
    },
}

impl Action {
    pub fn target_groups(&self) -> Vec<&str> {
        match self {
            Self::Forward { groups, .. } => groups.iter().map(|g| g.target_group_arn.as_str()).collect(),
            _ => vec![],
        }
    }
}

const CONTENT_TYPES: &[&str] = &["text/plain", "text/css", "text/html", "application/javascript", "application/json"];

/// Checks a fixed response and a redirect as ELBv2 does.
pub fn check_action(a: &Action) -> Result<(), ElbError> {
    match a {
        Action::Forward { groups, stickiness_seconds, .. } => {
            if groups.is_empty() {
                return Err(ElbError::validation("A forward action must name a target group"));
            }
            if groups.len() > MAX_FORWARD_GROUPS {
                return Err(ElbError::new("TooManyTargetGroups", format!("A forward action can have at most {MAX_FORWARD_GROUPS} target groups")));
            }
            if groups.iter().any(|g| g.weight > 999) {
                return Err(ElbError::validation("Target group weights must be from 0 to 999"));
            }
            let mut arns: Vec<&str> = groups.iter().map(|g| g.target_group_arn.as_str()).collect();
            arns.sort_unstable();
            if arns.windows(2).any(|w| w[0] == w[1]) {
                return Err(ElbError::validation("A target group can appear only once in a forward action"));
            }
            if let Some(d) = stickiness_seconds
                && !(1..=604_800).contains(d)
            {
                return Err(ElbError::validation("Target group stickiness duration must be from 1 to 604800 seconds"));
            }
        }
        Action::FixedResponse { status_code, content_type, message_body, .. } => {
            let ok = status_code.len() == 3
                && status_code.chars().all(|c| c.is_ascii_digit())
                && matches!(status_code.as_bytes()[0], b'2' | b'4' | b'5');
            if !ok {
                return Err(ElbError::validation(format!("Fixed response status code '{status_code}' must be a 2XX, 4XX or 5XX code")));
            }
            if let Some(t) = content_type
                && !CONTENT_TYPES.contains(&t.as_str())
            {
                return Err(ElbError::validation(format!("Fixed response content type '{t}' must be one of {}", CONTENT_TYPES.join(", "))));
            }
            if message_body.as_ref().is_some_and(|b| b.len() > 1024) {
                return Err(ElbError::validation("A fixed response message body can be at most 1024 characters"));
            }
        }
        Action::Redirect { protocol, port, host, path, query, status_code, .. } => {
            if status_code != "HTTP_301" && status_code != "HTTP_302" {
                return Err(ElbError::validation(format!("Redirect status code '{status_code}' must be HTTP_301 or HTTP_302")));
            }
            if let Some(p) = protocol
                && !["HTTP", "HTTPS", "#{protocol}"].contains(&p.as_str())
            {
                return Err(ElbError::validation(format!("Redirect protocol '{p}' must be HTTP, HTTPS or #{{protocol}}")));
            }
            if let Some(p) = port
                && p != "#{port}"
                && !p.parse::<u16>().is_ok_and(|n| n >= 1)
            {
                return Err(ElbError::validation(format!("Redirect port '{p}' must be from 1 to 65535 or #{{port}}")));
            }
            if let Some(p) = path
                && !p.starts_with('/')
            {
                return Err(ElbError::validation(format!("Redirect path '{p}' must begin with '/'")));
            }
            let keeps = |v: &Option<String>, same: &str| v.as_deref().is_none_or(|v| v == same);
            if keeps(protocol, "#{protocol}") && keeps(port, "#{port}") && keeps(host, "#{host}") && keeps(path, "/#{path}") && keeps(query, "#{query}") {
                return Err(ElbError::config("A redirect must change at least one of protocol, port, host, path or query; otherwise it redirects to itself"));
            }
        }
    }
    Ok(())
}

/// A rule condition, by field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "field")]
pub enum Condition {
    PathPattern { values: Vec<String> },
    HostHeader { values: Vec<String> },
    HttpHeader { name: String, values: Vec<String> },
    HttpRequestMethod { values: Vec<String> },
    /// (key, value) pairs; a missing key matches any key.
    QueryString { values: Vec<(Option<String>, String)> },
    SourceIp { values: Vec<Ipv4Net> },
}

impl Condition {
    pub fn field(&self) -> &'static str {
        match self {
            Self::PathPattern { .. } => "path-pattern",
            Self::HostHeader { .. } => "host-header",
            Self::HttpHeader { .. } => "http-header",
            Self::HttpRequestMethod { .. } => "http-request-method",
            Self::QueryString { .. } => "query-string",
            Self::SourceIp { .. } => "source-ip",
        }
    }

    fn value_count(&self) -> usize {
        match self {
            Self::PathPattern { values } | Self::HostHeader { values } | Self::HttpRequestMethod { values } => values.len(),
            Self::HttpHeader { values, .. } => values.len(),
            Self::QueryString { values } => values.len(),
            Self::SourceIp { values } => values.len(),
        }
    }
}

/// Checks a rule's conditions: at least one; each of path-pattern,
/// host-header, http-request-method and source-ip at most once; at most
/// five values in all; each value within its field's limits.
pub fn check_conditions(conditions: &[Condition]) -> Result<(), ElbError> {
    if conditions.is_empty() {
        return Err(ElbError::validation("A rule must have at least one condition"));
    }
    let total: usize = conditions.iter().map(Condition::value_count).sum();
    if total > MAX_CONDITION_VALUES {
        return Err(ElbError::validation(format!("A rule can have at most {MAX_CONDITION_VALUES} condition values; {total} were given")));
    }
    for (i, c) in conditions.iter().enumerate() {
        let once = !matches!(c, Condition::HttpHeader { .. } | Condition::QueryString { .. });
        if once && conditions[..i].iter().any(|o| o.field() == c.field()) {
            return Err(ElbError::validation(format!("A rule can have only one '{}' condition", c.field())));
        }
        if c.value_count() == 0 {
            return Err(ElbError::validation(format!("A '{}' condition must have at least one value", c.field())));
        }
        let pattern_ok = |v: &str, extra: &str| {
            !v.is_empty() && v.len() <= 128 && v.chars().all(|ch| ch.is_ascii_alphanumeric() || "-._*?".contains(ch) || extra.contains(ch))
        };
        match c {
            Condition::PathPattern { values } => {
                if let Some(v) = values.iter().find(|v| !pattern_ok(v, "/~\"'@:+&")) {
                    return Err(ElbError::validation(format!("Path pattern '{v}' must be 1 to 128 characters of A-Z, a-z, 0-9, _ - . $ / ~ \" ' @ : + & and the wildcards * ?")));
                }
            }
            Condition::HostHeader { values } => {
                if let Some(v) = values.iter().find(|v| !pattern_ok(v, "")) {
                    return Err(ElbError::validation(format!("Host header '{v}' must be 1 to 128 characters of A-Z, a-z, 0-9, - . and the wildcards * ?")));
                }
            }
            Condition::HttpHeader { name, values } => {
                if name.is_empty() || name.len() > 40 || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_".contains(ch)) {
                    return Err(ElbError::validation(format!("HTTP header name '{name}' must be 1 to 40 characters of A-Z, a-z, 0-9, - _")));
                }
                if let Some(v) = values.iter().find(|v| v.is_empty() || v.len() > 128) {
                    return Err(ElbError::validation(format!("HTTP header value '{v}' must be 1 to 128 characters")));
                }
            }
            Condition::HttpRequestMethod { values } => {
                if let Some(v) = values.iter().find(|v| v.is_empty() || v.len() > 40 || !v.chars().all(|ch| ch.is_ascii_uppercase() || "-_".contains(ch))) {
                    return Err(ElbError::validation(format!("HTTP request method '{v}' must be 1 to 40 characters of A-Z, - _")));
                }
            }
            Condition::QueryString { values } => {
                let bad = |s: &str| s.is_empty() || s.len() > 128;
                if let Some((k, v)) = values.iter().find(|(k, v)| k.as_deref().is_some_and(bad) || bad(v)) {
                    return Err(ElbError::validation(format!("Query string key '{}' and value '{v}' must each be 1 to 128 characters", k.as_deref().unwrap_or(""))));
                }
            }
            Condition::SourceIp { .. } => {}
        }
    }
    Ok(())
}

/// Checks a rule priority: 1 to 50000.
pub fn rule_priority(p: i32) -> Result<u32, ElbError> {
    u32::try_from(p)
        .ok()
        .filter(|p| (1..=MAX_RULE_PRIORITY).contains(p))
        .ok_or_else(|| ElbError::validation(format!("Rule priority '{p}' must be from 1 to {MAX_RULE_PRIORITY}")))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    pub arn: String,
    pub load_balancer_arn: String,
    pub protocol: Protocol,
    pub port: u16,
    /// Certificate ARNs, the default first (HTTPS only).
    #[serde(default)]
    pub certificates: Vec<String>,
    pub ssl_policy: Option<String>,
    pub default_actions: Vec<Action>,
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Checks a listener's protocol against its load balancer's type:
/// application load balancers listen on HTTP and HTTPS, network ones on TCP.
pub fn check_listener_protocol(t: LbType, p: Protocol) -> Result<(), ElbError> {
    let ok = match t {
        LbType::Application => p != Protocol::Tcp,
        LbType::Network => p == Protocol::Tcp,
    };
    if ok {
        Ok(())
    } else {
        Err(ElbError::new("UnsupportedProtocol", format!("Protocol '{}' is not supported for {} load balancers", p.as_str(), t.as_str())))
    }
}

/// Whether a listener of protocol `listener` can forward to a group of `group`.
pub fn check_forward_protocol(listener: Protocol, group: Protocol, tg_arn: &str) -> Result<(), ElbError> {
    let ok = match listener {
        Protocol::Http | Protocol::Https => group != Protocol::Tcp,
        Protocol::Tcp => group == Protocol::Tcp,
    };
    if ok {
        Ok(())
    } else {
        Err(ElbError::new("IncompatibleProtocols", format!(
            "The target group '{tg_arn}' has protocol {} and cannot be used with a {} listener",
            group.as_str(),
            listener.as_str()
        )))
    }
}

/// A listener rule. `priority` `None` is the listener's default rule
/// (its default actions, no conditions), which DescribeRules shows with
/// `IsDefault` true.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub arn: String,
    pub listener_arn: String,
    pub priority: Option<u32>,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Checks a listener's or rule's actions: one to five, exactly one of
/// them forward, fixed-response or redirect (the others, authentication,
/// are not served), orders unique.
pub fn check_actions(actions: &[Action]) -> Result<(), ElbError> {
    if actions.is_empty() {
        return Err(ElbError::validation("At least one action must be specified"));
    }
    if actions.len() > 1 {
        return Err(ElbError::new("TooManyActions", "Only one forward, fixed-response or redirect action can be specified"));
    }
    actions.iter().try_for_each(check_action)
}

/// A target registered with a target group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredTarget {
    pub target_group_arn: String,
    pub id: Ipv4Addr,
    pub port: u16,
    pub zone: String,
    pub registered_at: f64,
    /// Set by DeregisterTargets: the target drains until then, and is gone after.
    pub draining_until: Option<f64>,
}

/// What the data plane last found of a target (written by it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetHealthRecord {
    pub target_group_arn: String,
    pub id: Ipv4Addr,
    pub port: u16,
    pub state: HealthState,
    pub reason: Option<HealthReason>,
    pub description: Option<String>,
    pub updated_at: f64,
}

/// The health DescribeTargetHealth shows for a registered target: a
/// draining target is `draining`; a target of a group no listener uses
/// is `unused`; else what the data plane wrote, or, before it wrote
/// anything, `initial` (registration in progress).
pub fn effective_health(
    target: &RegisteredTarget,
    record: Option<&TargetHealthRecord>,
    in_use: bool,
) -> (HealthState, Option<HealthReason>, Option<String>) {
    let of = |s, r: HealthReason| (s, Some(r), Some(r.description().to_owned()));
    if target.draining_until.is_some() {
        return of(HealthState::Draining, HealthReason::DeregistrationInProgress);
    }
    if !in_use {
        return of(HealthState::Unused, HealthReason::NotInUse);
    }
    match record.filter(|r| r.updated_at >= target.registered_at) {
        Some(r) => (r.state, r.reason, r.description.clone().or_else(|| r.reason.map(|x| x.description().to_owned()))),
        None => of(HealthState::Initial, HealthReason::RegistrationInProgress),
    }
}

/// Checks a target's address: an IPv4 address inside one of `subnets`
/// (the group's VPC's), not a network, gateway or broadcast address.
/// Returns the subnet's id.
pub fn check_target_address(ip: Ipv4Addr, subnets: &[(String, Ipv4Net)]) -> Result<&str, ElbError> {
    let found = subnets.iter().find(|(_, net)| net.contains(&ip)).ok_or_else(|| {
        ElbError::new("InvalidTarget", format!("The IP address '{ip}' is not within any subnet of the target group's VPC"))
    })?;
    let net = found.1;
    let gateway = Ipv4Addr::from(u32::from(net.network()) + 1);
    if ip == net.network() || ip == net.broadcast() || ip == gateway {
        return Err(ElbError::new("InvalidTarget", format!("The IP address '{ip}' is reserved in subnet '{}'", found.0)));
    }
    Ok(&found.0)
}

/// An ACM certificate imported into Berth, as read from its PEM. The
/// private key is kept apart (a secret: stored, never shown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRecord {
    /// `arn:aws:acm:REGION:ACCOUNT:certificate/UUID`.
    pub arn: String,
    pub domain_name: String,
    pub subject_alternative_names: Vec<String>,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    /// ACM's `KeyAlgorithm`, e.g. `RSA_2048`, `EC_prime256v1`.
    pub key_algorithm: String,
    pub signature_algorithm: String,
    pub not_before: f64,
    pub not_after: f64,
    pub imported_at: f64,
    pub certificate_pem: String,
    pub chain_pem: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

pub fn certificate_arn(region: &str, account: &str, uuid: &str) -> String {
    format!("arn:aws:acm:{region}:{account}:certificate/{uuid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["web", "a-b-1", "A1234567890123456789012345678901"] {
            assert!(validate_name(ok, "Load balancer").is_ok(), "{ok}");
        }
        for bad in ["", "-web", "web-", "we_b", "a23456789012345678901234567890123", "internal-x"] {
            assert_eq!(validate_name(bad, "Load balancer").unwrap_err().code, "ValidationError", "{bad}");
        }
        assert!(validate_name("internal-x", "Target group").is_ok());
    }

    #[test]
    fn arns_and_dns_names_follow_elbv2s_forms() {
        let lb = load_balancer_arn("us-east-1", "123456789012", LbType::Application, "web", "50dc6c495c0c9188");
        assert_eq!(lb, "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188");
        let l = listener_arn(&lb, "f2f7dc8efc522ab2");
        assert_eq!(l, "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2");
        assert_eq!(
            rule_arn(&l, "9683b2d02a6cabee"),
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
        );
        let cases = [
            (LbType::Application, Scheme::InternetFacing, "web-0347692745.us-east-1.elb.amazonaws.com"),
            (LbType::Application, Scheme::Internal, "internal-web-0347692745.us-east-1.elb.amazonaws.com"),
            (LbType::Network, Scheme::InternetFacing, "web-50dc6c495c0c9188.elb.us-east-1.amazonaws.com"),
            (LbType::Network, Scheme::Internal, "internal-web-50dc6c495c0c9188.elb.us-east-1.amazonaws.com"),
        ];
        for (t, s, want) in cases {
            let got = dns_name("Web", "50dc6c495c0c9188", "us-east-1", t, s);
            if t == LbType::Application {
                let digits = got.trim_start_matches("internal-").trim_start_matches("web-").split('.').next().unwrap().to_owned();
                assert_eq!(digits.len(), 10);
                assert!(got.ends_with(".us-east-1.elb.amazonaws.com"));
                assert_eq!(got.starts_with("internal-"), s == Scheme::Internal);
            } else {
                assert_eq!(got, want);
            }
        }
        assert_eq!(canonical_hosted_zone_id("us-east-1", LbType::Application), "Z35SXDOTRQ7X7K");
        assert_eq!(canonical_hosted_zone_id("us-east-1", LbType::Network), "Z26RNL4JYFTOTI");
    }

    fn group(p: Protocol) -> TargetGroup {
        TargetGroup {
            arn: "arn:tg".into(),
            name: "tg".into(),
            id: "0".into(),
            protocol: p,
            port: 80,
            vpc_id: "vpc-default".into(),
            protocol_version: None,
            health_check: HealthCheck::defaults(p),
            attributes: target_group_defaults(p),
            created_at: 0.0,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn attributes_have_defaults_and_refuse_unknown_keys_and_bad_values() {
        let tg = group(Protocol::Http);
        assert_eq!(tg.attributes["deregistration_delay.timeout_seconds"], "300");
        assert_eq!(tg.attributes["stickiness.lb_cookie.duration_seconds"], "86400");
        let set = |k: &str, v: &str| apply_target_group_attributes(&tg, &[(k.into(), v.into())]);
        assert_eq!(set("deregistration_delay.timeout_seconds", "5").unwrap()["deregistration_delay.timeout_seconds"], "5");
        let cases = [
            ("deregistration_delay.timeout_seconds", "3601", "ValidationError"),
            ("slow_start.duration_seconds", "10", "ValidationError"),
            ("slow_start.duration_seconds", "30", ""),
            ("load_balancing.algorithm.type", "least_outstanding_requests", ""),
            ("load_balancing.algorithm.type", "random", "ValidationError"),
            ("stickiness.enabled", "yes", "ValidationError"),
            ("no.such.key", "1", "ValidationError"),
        ];
        for (k, v, code) in cases {
            match set(k, v) {
                Ok(_) => assert_eq!(code, "", "{k}={v}"),
                Err(e) => assert_eq!(e.code, code, "{k}={v}"),
            }
        }
        let e = set("no.such.key", "1").unwrap_err();
        assert_eq!(e.message, "Target group attribute key 'no.such.key' is not recognized");
        let both = apply_target_group_attributes(
            &tg,
            &[("load_balancing.algorithm.type".into(), "least_outstanding_requests".into()), ("slow_start.duration_seconds".into(), "60".into())],
        );
        assert_eq!(both.unwrap_err().code, "InvalidConfigurationRequest");
        assert_eq!(load_balancer_defaults(LbType::Application)["idle_timeout.timeout_seconds"], "60");
        assert!(!load_balancer_defaults(LbType::Network).contains_key("idle_timeout.timeout_seconds"));
        assert_eq!(listener_defaults(Protocol::Tcp)["tcp.idle_timeout.seconds"], "350");
    }

    #[test]
    fn health_checks_have_defaults_per_protocol_and_ranges() {
        let h = HealthCheck::defaults(Protocol::Http);
        assert_eq!((h.interval_seconds, h.timeout_seconds, h.healthy_threshold, h.unhealthy_threshold), (30, 5, 5, 2));
        assert_eq!(h.path.as_deref(), Some("/"));
        let t = HealthCheck::defaults(Protocol::Tcp);
        assert_eq!((t.timeout_seconds, t.path.clone(), t.matcher.clone()), (10, None, None));
        let change = |c: HealthCheckChange| h.changed(&c, Protocol::Http);
        assert!(change(HealthCheckChange { interval_seconds: Some(4), ..Default::default() }).is_err());
        assert!(change(HealthCheckChange { interval_seconds: Some(5), timeout_seconds: Some(2), ..Default::default() }).is_ok());
        assert!(change(HealthCheckChange { timeout_seconds: Some(30), ..Default::default() }).is_err(), "timeout must be below interval");
        assert!(change(HealthCheckChange { healthy_threshold: Some(11), ..Default::default() }).is_err());
        assert!(change(HealthCheckChange { path: Some("health".into()), ..Default::default() }).is_err());
        assert!(change(HealthCheckChange { port: Some("0".into()), ..Default::default() }).is_err());
        assert!(t.changed(&HealthCheckChange { path: Some("/x".into()), ..Default::default() }, Protocol::Tcp).is_err());
        let http = t.changed(&HealthCheckChange { protocol: Some(Protocol::Http), ..Default::default() }, Protocol::Tcp).unwrap();
        assert_eq!(http.matcher.as_deref(), Some("200-399"));
    }

    #[test]
    fn matchers_take_elbv2s_three_forms() {
        assert_eq!(parse_matcher("200").unwrap(), vec![(200, 200)]);
        assert_eq!(parse_matcher("200,202").unwrap(), vec![(200, 200), (202, 202)]);
        assert_eq!(parse_matcher("200-299").unwrap(), vec![(200, 299)]);
        for bad in ["", "abc", "199", "500", "299-200", "200-"] {
            assert!(parse_matcher(bad).is_err(), "{bad}");
        }
        let mut h = HealthCheck::defaults(Protocol::Http);
        h.matcher = Some("200-299".into());
        assert!(h.matches(204) && !h.matches(500));
    }

    #[test]
    fn priorities_conditions_and_actions_are_checked() {
        assert_eq!(rule_priority(1).unwrap(), 1);
        assert_eq!(rule_priority(50_000).unwrap(), 50_000);
        assert!(rule_priority(0).is_err() && rule_priority(50_001).is_err());
        let path = |v: &[&str]| Condition::PathPattern { values: v.iter().map(|s| (*s).to_owned()).collect() };
        assert!(check_conditions(&[path(&["/api/*"])]).is_ok());
        assert!(check_conditions(&[]).is_err());
        assert!(check_conditions(&[path(&["/a", "/b", "/c", "/d", "/e", "/f"])]).is_err());
        assert!(check_conditions(&[path(&["/a"]), path(&["/b"])]).is_err());
        assert!(check_conditions(&[path(&["/a b"])]).is_err());
        let hdr = |n: &str| Condition::HttpHeader { name: n.into(), values: vec!["x".into()] };
        assert!(check_conditions(&[hdr("X-Env"), hdr("X-Other")]).is_ok());
        assert!(check_conditions(&[hdr("bad name")]).is_err());
        assert!(check_conditions(&[Condition::HttpRequestMethod { values: vec!["get".into()] }]).is_err());
        let fwd = |n: usize| Action::Forward {
            groups: (0..n).map(|i| WeightedGroup { target_group_arn: format!("arn:{i}"), weight: 1 }).collect(),
            single: false,
            stickiness_seconds: None,
            order: None,
        };
        assert!(check_actions(&[fwd(2)]).is_ok());
        assert_eq!(check_actions(&[fwd(6)]).unwrap_err().code, "TooManyTargetGroups");
        assert_eq!(check_actions(&[]).unwrap_err().code, "ValidationError");
        let fixed = |c: &str| Action::FixedResponse { status_code: c.into(), content_type: Some("text/plain".into()), message_body: None, order: None };
        assert!(check_action(&fixed("503")).is_ok());
        assert!(check_action(&fixed("302")).is_err());
        let redirect = |proto: Option<&str>| Action::Redirect {
            protocol: proto.map(str::to_owned),
            port: None,
            host: None,
            path: None,
            query: None,
            status_code: "HTTP_301".into(),
            order: None,
        };
        assert!(check_action(&redirect(Some("HTTPS"))).is_ok());
        assert_eq!(check_action(&redirect(None)).unwrap_err().code, "InvalidConfigurationRequest");
        assert!(check_listener_protocol(LbType::Network, Protocol::Http).is_err());
        assert!(check_forward_protocol(Protocol::Http, Protocol::Tcp, "arn").is_err());
    }

    #[test]
    fn target_health_follows_registration_use_and_the_data_planes_records() {
        let t = RegisteredTarget {
            target_group_arn: "arn:tg".into(),
            id: Ipv4Addr::new(10, 0, 0, 5),
            port: 80,
            zone: "us-east-1a".into(),
            registered_at: 100.0,
            draining_until: None,
        };
        let healthy = TargetHealthRecord {
            target_group_arn: "arn:tg".into(),
            id: t.id,
            port: 80,
            state: HealthState::Healthy,
            reason: None,
            description: None,
            updated_at: 120.0,
        };
        assert_eq!(effective_health(&t, None, true).0, HealthState::Initial);
        assert_eq!(effective_health(&t, None, true).1, Some(HealthReason::RegistrationInProgress));
        assert_eq!(effective_health(&t, Some(&healthy), true).0, HealthState::Healthy);
        let unused = effective_health(&t, Some(&healthy), false);
        assert_eq!((unused.0, unused.1), (HealthState::Unused, Some(HealthReason::NotInUse)));
        let stale = TargetHealthRecord { updated_at: 50.0, ..healthy.clone() };
        assert_eq!(effective_health(&t, Some(&stale), true).0, HealthState::Initial, "a record from before registration");
        let draining = RegisteredTarget { draining_until: Some(400.0), ..t };
        assert_eq!(effective_health(&draining, Some(&healthy), true).1, Some(HealthReason::DeregistrationInProgress));
    }

    #[test]
    fn targets_must_be_inside_a_subnet_and_not_reserved() {
        let subnets = vec![("subnet-a".to_owned(), "10.89.0.0/16".parse().unwrap())];
        assert_eq!(check_target_address("10.89.0.7".parse().unwrap(), &subnets).unwrap(), "subnet-a");
        for bad in ["10.90.0.7", "10.89.0.0", "10.89.0.1", "10.89.255.255"] {
            assert_eq!(check_target_address(bad.parse().unwrap(), &subnets).unwrap_err().code, "InvalidTarget", "{bad}");
        }
    }
}
