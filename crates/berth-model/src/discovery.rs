//! Service discovery (AWS Cloud Map) in the model: namespaces, services,
//! their registered instances and the operations that changed them, with
//! Cloud Map's rules and exception names. Pure data and rules; the store
//! keeps these records, `berth-api` converts them to the wire, and
//! `berth-dns` answers their DNS names.
//!
//! Berth completes every operation as it is asked: an `Operation` is
//! stored `SUCCESS` (or `FAIL`) when the request that started it
//! returns, never `SUBMITTED` or `PENDING` for long, so `GetOperation`
//! right after `CreatePrivateDnsNamespace` already shows the namespace.
//!
//! Health: a service with `HealthCheckCustomConfig` keeps each
//! instance's custom status (`HEALTHY` on registration unless the
//! `AWS_INIT_HEALTH_STATUS` attribute says otherwise); a service
//! without one has no health checks, and its instances are always
//! `HEALTHY` (in DNS and in the API). Route 53 health checks
//! (`HealthCheckConfig`, public namespaces only) are not served.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The one VPC of a Berth: private DNS namespaces belong to it.
pub const VPC_ID: &str = "vpc-default";
/// Cloud Map's instance attributes Berth reads.
pub const ATTR_IPV4: &str = "AWS_INSTANCE_IPV4";
pub const ATTR_IPV6: &str = "AWS_INSTANCE_IPV6";
pub const ATTR_PORT: &str = "AWS_INSTANCE_PORT";
pub const ATTR_INIT_HEALTH: &str = "AWS_INIT_HEALTH_STATUS";
pub const ATTR_ALIAS: &str = "AWS_ALIAS_DNS_NAME";
/// At most this many attributes per instance (Cloud Map's limit).
pub const MAX_ATTRIBUTES: usize = 30;
/// At most this many records in one multivalue DNS answer (Route 53's).
pub const MAX_MULTIVALUE_ANSWERS: usize = 8;

/// A Cloud Map error, named by the exception a client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("Namespace not found: {0}")]
    NamespaceNotFound(String),
    #[error("Service not found: {0}")]
    ServiceNotFound(String),
    #[error("Instance not found: {0}")]
    InstanceNotFound(String),
    #[error("Operation not found: {0}")]
    OperationNotFound(String),
    #[error("{0}")]
    NamespaceAlreadyExists(String),
    #[error("{0}")]
    ServiceAlreadyExists(String),
    #[error("{0}")]
    ResourceInUse(String),
    /// The `CreatorRequestId` was used by another request.
    #[error("{message}")]
    DuplicateRequest { message: String, operation_id: String },
    #[error("{0}")]
    CustomHealthNotFound(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    TooManyTags(String),
}

impl DiscoveryError {
    /// The Cloud Map exception type (`__type`).
    pub fn aws_type(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "InvalidInput",
            Self::NamespaceNotFound(_) => "NamespaceNotFound",
            Self::ServiceNotFound(_) => "ServiceNotFound",
            Self::InstanceNotFound(_) => "InstanceNotFound",
            Self::OperationNotFound(_) => "OperationNotFound",
            Self::NamespaceAlreadyExists(_) => "NamespaceAlreadyExists",
            Self::ServiceAlreadyExists(_) => "ServiceAlreadyExists",
            Self::ResourceInUse(_) => "ResourceInUse",
            Self::DuplicateRequest { .. } => "DuplicateRequest",
            Self::CustomHealthNotFound(_) => "CustomHealthNotFound",
            Self::ResourceNotFound(_) => "ResourceNotFoundException",
            Self::TooManyTags(_) => "TooManyTagsException",
        }
    }
}

fn invalid(m: impl Into<String>) -> DiscoveryError {
    DiscoveryError::InvalidInput(m.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NamespaceType {
    DnsPrivate,
    Http,
}

impl NamespaceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DnsPrivate => "DNS_PRIVATE",
            Self::Http => "HTTP",
        }
    }
}

/// A namespace: a DNS zone of the VPC (`DNS_PRIVATE`) or a name only the
/// API answers for (`HTTP`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    /// `ns-…`.
    pub id: String,
    pub arn: String,
    /// As given; DNS names compare without case.
    pub name: String,
    pub kind: NamespaceType,
    #[serde(default)]
    pub description: Option<String>,
    /// The VPC of a private DNS namespace.
    #[serde(default)]
    pub vpc: Option<String>,
    /// The hosted zone of a DNS namespace (`Z…`).
    #[serde(default)]
    pub hosted_zone_id: Option<String>,
    /// The SOA TTL of a DNS namespace (Cloud Map's default 15 s).
    #[serde(default)]
    pub soa_ttl: Option<i64>,
    #[serde(default)]
    pub creator_request_id: Option<String>,
    /// The CREATE_NAMESPACE operation that made it (a retried request
    /// with the same `CreatorRequestId` gets it again).
    pub operation_id: String,
    /// Seconds since the epoch.
    pub created_at: f64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// What CreatePrivateDnsNamespace / CreateHttpNamespace ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceSpec {
    pub name: String,
    pub kind: NamespaceType,
    pub vpc: Option<String>,
    pub soa_ttl: Option<i64>,
}

/// Checks a namespace request: a private DNS name is a DNS name (labels
/// of letters, digits, `-` and `_`, at most 63 characters each, 253 in
/// all, no trailing dot needed) in the one VPC; an HTTP name is 1 to
/// 1024 printable characters and not an ARN.
pub fn check_namespace(spec: &NamespaceSpec) -> Result<(), DiscoveryError> {
    let name = spec.name.as_str();
    if name.is_empty() || name.starts_with("arn:") || !name.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        return Err(invalid(format!("Namespace name '{name}' must be 1 or more printable characters without spaces and not an ARN.")));
    }
    match spec.kind {
        NamespaceType::Http => {
            if name.len() > 1024 {
                return Err(invalid("An HTTP namespace name must be at most 1024 characters."));
            }
            if spec.vpc.is_some() {
                return Err(invalid("An HTTP namespace has no VPC."));
            }
        }
        NamespaceType::DnsPrivate => {
            check_dns_name(name.strip_suffix('.').unwrap_or(name))
                .map_err(|why| invalid(format!("Namespace name '{name}' is not a valid DNS name: {why}.")))?;
            match spec.vpc.as_deref() {
                Some(VPC_ID) => {}
                Some(other) => {
                    return Err(invalid(format!("The VPC '{other}' does not exist: Berth has one VPC, '{VPC_ID}'.")));
                }
                None => return Err(invalid("A private DNS namespace needs a Vpc.")),
            }
            if let Some(ttl) = spec.soa_ttl
                && !(0..=i64::from(i32::MAX)).contains(&ttl)
            {
                return Err(invalid(format!("The SOA TTL must be 0 to 2147483647 seconds; {ttl} was given.")));
            }
        }
    }
    Ok(())
}

/// Why `name` is not a DNS name of labels `[A-Za-z0-9_-]{1,63}` joined
/// by dots, at most 253 characters.
pub fn check_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("it must be 1 to 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each label must be 1 to 63 characters");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("labels hold only letters, digits, '-' and '_'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label neither starts nor ends with '-'");
        }
    }
    Ok(())
}

/// A DNS record type a service's instances get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    A,
    Aaaa,
    Srv,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Srv => "SRV",
        }
    }

    /// Reads a record type; `CNAME` (Cloud Map allows it only with
    /// WEIGHTED routing and alone) is refused: Berth does not serve it.
    pub fn parse(s: &str) -> Result<Self, DiscoveryError> {
        match s {
            "A" => Ok(Self::A),
            "AAAA" => Ok(Self::Aaaa),
            "SRV" => Ok(Self::Srv),
            "CNAME" => Err(invalid("Berth does not serve CNAME records for services; use A or SRV.")),
            other => Err(invalid(format!("Unknown DNS record type '{other}'."))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RoutingPolicy {
    /// Up to eight healthy records in each answer.
    #[default]
    Multivalue,
    /// One healthy record per answer, chosen in turn.
    Weighted,
}

impl RoutingPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Multivalue => "MULTIVALUE",
            Self::Weighted => "WEIGHTED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsRecord {
    pub kind: RecordType,
    /// Seconds.
    pub ttl: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsConfig {
    pub routing_policy: RoutingPolicy,
    pub records: Vec<DnsRecord>,
}

impl DnsConfig {
    pub fn ttl(&self, kind: RecordType) -> Option<i64> {
        self.records.iter().find(|r| r.kind == kind).map(|r| r.ttl)
    }
}

/// Checks a service's DNS records as Cloud Map does: one to five, each
/// type once, TTL 0 to 2^31-1, SRV only with MULTIVALUE or WEIGHTED (both
/// allowed here), and not AAAA alone with SRV's A absent (fine too).
pub fn check_dns_records(records: &[DnsRecord]) -> Result<(), DiscoveryError> {
    if records.is_empty() {
        return Err(invalid("DnsConfig.DnsRecords must hold at least one record."));
    }
    for (i, r) in records.iter().enumerate() {
        if !(0..=i64::from(i32::MAX)).contains(&r.ttl) {
            return Err(invalid(format!("The TTL of the {} record must be 0 to 2147483647 seconds; {} was given.", r.kind.as_str(), r.ttl)));
        }
        if records[..i].iter().any(|o| o.kind == r.kind) {
            return Err(invalid(format!("DnsConfig.DnsRecords holds the type {} more than once.", r.kind.as_str())));
        }
    }
    Ok(())
}

/// Cloud Map's service types: `HTTP` (API discovery only), `DNS_HTTP`
/// (DNS records too), `DNS` (DNS only; Berth's services are never this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceType {
    Http,
    DnsHttp,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "HTTP",
            Self::DnsHttp => "DNS_HTTP",
        }
    }
}

/// A Cloud Map service: a name in a namespace that instances register in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryService {
    /// `srv-…`.
    pub id: String,
    pub arn: String,
    pub name: String,
    pub namespace_id: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub dns: Option<DnsConfig>,
    /// `HealthCheckCustomConfig` (its FailureThreshold, which Cloud Map
    /// keeps but no longer uses: 1).
    #[serde(default)]
    pub custom_health: Option<i32>,
    pub kind: ServiceType,
    #[serde(default)]
    pub creator_request_id: Option<String>,
    pub created_at: f64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// What CreateService asks for, read from its request.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    pub dns: Option<DnsConfig>,
    /// `Type: HTTP` was asked for.
    pub http_only: bool,
    pub custom_health: Option<i32>,
    pub route53_health_check: bool,
}

/// Checks a service request against its namespace and gives its type.
pub fn check_service(spec: &ServiceSpec, namespace: &Namespace) -> Result<ServiceType, DiscoveryError> {
    let name = spec.name.as_str();
    if name != "." && (name.len() > 127 || check_dns_name(name).is_err()) {
        return Err(invalid(format!(
            "Service name '{name}' must be DNS labels of letters, digits, '-' and '_' (at most 127 characters in all)."
        )));
    }
    if spec.route53_health_check {
        return Err(invalid(
            "HealthCheckConfig needs a public DNS namespace and Route 53 health checks, which Berth does not serve; \
             use HealthCheckCustomConfig.",
        ));
    }
    if let Some(t) = spec.custom_health
        && !(1..=10).contains(&t)
    {
        return Err(invalid(format!("HealthCheckCustomConfig.FailureThreshold must be 1 to 10; {t} was given.")));
    }
    match (&spec.dns, namespace.kind) {
        (Some(_), NamespaceType::Http) => {
            Err(invalid(format!("The namespace {} is an HTTP namespace: its services have no DnsConfig.", namespace.id)))
        }
        (Some(_), _) if spec.http_only => Err(invalid("A service of Type HTTP has no DnsConfig.")),
        (Some(dns), NamespaceType::DnsPrivate) => {
            check_dns_records(&dns.records)?;
            Ok(ServiceType::DnsHttp)
        }
        (None, _) => Ok(ServiceType::Http),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Health {
    #[default]
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "HEALTHY",
            Self::Unhealthy => "UNHEALTHY",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HEALTHY" => Some(Self::Healthy),
            "UNHEALTHY" => Some(Self::Unhealthy),
            _ => None,
        }
    }
}

/// A registered instance of a service (an ECS task, for `serviceRegistries`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub service_id: String,
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    /// Its custom health status (always HEALTHY without a custom health
    /// check).
    pub health: Health,
    #[serde(default)]
    pub creator_request_id: Option<String>,
    pub registered_at: f64,
}

impl Instance {
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.attributes.get(ATTR_IPV4).and_then(|a| a.parse().ok())
    }

    pub fn port(&self) -> Option<u16> {
        self.attributes.get(ATTR_PORT).and_then(|p| p.parse().ok())
    }
}

/// Checks a RegisterInstance request against its service and gives the
/// instance's initial health: attribute keys and values as Cloud Map
/// allows them, at most 30; an address for an A record, a port for an SRV
/// one; `AWS_INIT_HEALTH_STATUS` only with a custom health check.
pub fn check_instance(
    service: &DiscoveryService,
    id: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<Health, DiscoveryError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_/:.@-".contains(&b)) {
        return Err(invalid(format!("InstanceId '{id}' must be 1 to 64 letters, digits or _/:.@-.")));
    }
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!("An instance has at most {MAX_ATTRIBUTES} attributes; {} were given.", attributes.len())));
    }
    for (k, v) in attributes {
        if k.is_empty() || k.len() > 255 || !k.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
            return Err(invalid(format!("Attribute key '{k}' must be 1 to 255 printable characters without spaces.")));
        }
        if v.len() > 1024 || v.starts_with([' ', '\t']) || v.ends_with([' ', '\t']) || v.bytes().any(|b| b != b' ' && b != b'\t' && !(b'!'..=b'~').contains(&b)) {
            return Err(invalid(format!("The value of attribute '{k}' must be at most 1024 printable characters, not starting or ending with a space.")));
        }
    }
    let ipv4 = attributes.get(ATTR_IPV4);
    if let Some(a) = ipv4
        && a.parse::<Ipv4Addr>().is_err()
    {
        return Err(invalid(format!("{ATTR_IPV4} '{a}' is not an IPv4 address.")));
    }
    if let Some(p) = attributes.get(ATTR_PORT)
        && !p.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(invalid(format!("{ATTR_PORT} '{p}' is not a port (1 to 65535).")));
    }
    if let Some(dns) = &service.dns {
        let has = |k: RecordType| dns.records.iter().any(|r| r.kind == k);
        if has(RecordType::A) && ipv4.is_none() {
            return Err(invalid(format!("The service {} has an A record: the instance needs {ATTR_IPV4}.", service.id)));
        }
        if has(RecordType::Aaaa) && !attributes.contains_key(ATTR_IPV6) {
            return Err(invalid(format!("The service {} has an AAAA record: the instance needs {ATTR_IPV6}.", service.id)));
        }
        if has(RecordType::Srv) && (!attributes.contains_key(ATTR_PORT) || ipv4.is_none()) {
            return Err(invalid(format!(
                "The service {} has an SRV record: the instance needs {ATTR_PORT} and {ATTR_IPV4}.",
                service.id
            )));
        }
    }
    match attributes.get(ATTR_INIT_HEALTH) {
        None => Ok(Health::Healthy),
        Some(_) if service.custom_health.is_none() => Err(invalid(format!(
            "{ATTR_INIT_HEALTH} is only allowed for a service with HealthCheckCustomConfig."
        ))),
        Some(s) => Health::parse(s).ok_or_else(|| invalid(format!("{ATTR_INIT_HEALTH} must be HEALTHY or UNHEALTHY, not '{s}'."))),
    }
}

/// DiscoverInstances' `HealthStatus` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HealthFilter {
    #[default]
    Healthy,
    Unhealthy,
    All,
    HealthyOrElseAll,
}

/// The instances DiscoverInstances returns, in order: those whose
/// attributes hold every `query` pair, then narrowed by every
/// `optional` pair unless that leaves none; then by health (with
/// HEALTHY_OR_ELSE_ALL: the healthy ones, or all when none is); at most
/// `max`.
pub fn discover<'a>(
    instances: &'a [Instance],
    query: &BTreeMap<String, String>,
    optional: &BTreeMap<String, String>,
    health: HealthFilter,
    max: usize,
) -> Vec<&'a Instance> {
    let holds = |i: &Instance, pairs: &BTreeMap<String, String>| pairs.iter().all(|(k, v)| i.attributes.get(k) == Some(v));
    let mut found: Vec<&Instance> = instances.iter().filter(|i| holds(i, query)).collect();
    let narrowed: Vec<&Instance> = found.iter().copied().filter(|i| holds(i, optional)).collect();
    if !narrowed.is_empty() {
        found = narrowed;
    }
    let healthy = |i: &&Instance| i.health == Health::Healthy;
    found = match health {
        HealthFilter::All => found,
        HealthFilter::Healthy => found.into_iter().filter(healthy).collect(),
        HealthFilter::Unhealthy => found.into_iter().filter(|i| !healthy(i)).collect(),
        HealthFilter::HealthyOrElseAll if found.iter().any(healthy) => found.into_iter().filter(healthy).collect(),
        HealthFilter::HealthyOrElseAll => found,
    };
    found.truncate(max);
    found
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationType {
    CreateNamespace,
    DeleteNamespace,
    UpdateService,
    RegisterInstance,
    DeregisterInstance,
}

impl OperationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateNamespace => "CREATE_NAMESPACE",
            Self::DeleteNamespace => "DELETE_NAMESPACE",
            Self::UpdateService => "UPDATE_SERVICE",
            Self::RegisterInstance => "REGISTER_INSTANCE",
            Self::DeregisterInstance => "DEREGISTER_INSTANCE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationStatus {
    Submitted,
    Pending,
    Success,
    Fail,
}

impl OperationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "SUBMITTED",
            Self::Pending => "PENDING",
            Self::Success => "SUCCESS",
            Self::Fail => "FAIL",
        }
    }

    /// The one transition an operation makes: SUBMITTED (or PENDING) to
    /// SUCCESS or FAIL; a finished operation stays as it is.
    pub fn finish(self, ok: bool) -> Self {
        match self {
            Self::Submitted | Self::Pending if ok => Self::Success,
            Self::Submitted | Self::Pending => Self::Fail,
            done => done,
        }
    }
}

/// An asynchronous change as Cloud Map reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub id: String,
    pub kind: OperationType,
    pub status: OperationStatus,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
    /// `NAMESPACE`, `SERVICE`, `INSTANCE` → id.
    pub targets: BTreeMap<String, String>,
}

impl Operation {
    /// An operation Berth has already carried out (see the module docs).
    pub fn succeeded(id: String, kind: OperationType, now: f64, targets: BTreeMap<String, String>) -> Self {
        Self {
            id,
            kind,
            status: OperationStatus::Submitted.finish(true),
            error_code: None,
            error_message: None,
            created_at: now,
            updated_at: now,
            targets,
        }
    }
}

/// Whether `name` (a DNS query name, any case, with or without the final
/// dot) is `zone` or below it: the part before the zone (`Some("")` for
/// the zone itself).
pub fn below_zone<'a>(name: &'a str, zone: &str) -> Option<&'a str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let zone = zone.strip_suffix('.').unwrap_or(zone);
    if name.eq_ignore_ascii_case(zone) {
        return Some("");
    }
    let cut = name.len().checked_sub(zone.len() + 1)?;
    (name.is_char_boundary(cut) && name.as_bytes()[cut] == b'.' && name[cut + 1..].eq_ignore_ascii_case(zone))
        .then(|| &name[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(kind: NamespaceType) -> Namespace {
        Namespace {
            id: "ns-1".into(),
            arn: "arn".into(),
            name: "corp.local".into(),
            kind,
            description: None,
            vpc: Some(VPC_ID.into()),
            hosted_zone_id: None,
            soa_ttl: None,
            creator_request_id: None,
            operation_id: "op".into(),
            created_at: 0.0,
            tags: BTreeMap::new(),
        }
    }

    fn svc(records: &[RecordType], custom: bool) -> DiscoveryService {
        DiscoveryService {
            id: "srv-1".into(),
            arn: "arn".into(),
            name: "api".into(),
            namespace_id: "ns-1".into(),
            description: None,
            dns: (!records.is_empty()).then(|| DnsConfig {
                routing_policy: RoutingPolicy::Multivalue,
                records: records.iter().map(|&kind| DnsRecord { kind, ttl: 10 }).collect(),
            }),
            custom_health: custom.then_some(1),
            kind: ServiceType::DnsHttp,
            creator_request_id: None,
            created_at: 0.0,
            tags: BTreeMap::new(),
        }
    }

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn namespace_rules() {
        let spec = |name: &str, kind, vpc: Option<&str>| NamespaceSpec { name: name.into(), kind, vpc: vpc.map(Into::into), soa_ttl: None };
        let cases: &[(NamespaceSpec, bool)] = &[
            (spec("corp.local", NamespaceType::DnsPrivate, Some(VPC_ID)), true),
            (spec("corp.local.", NamespaceType::DnsPrivate, Some(VPC_ID)), true),
            (spec("corp.local", NamespaceType::DnsPrivate, Some("vpc-123")), false),
            (spec("corp.local", NamespaceType::DnsPrivate, None), false),
            (spec("bad..name", NamespaceType::DnsPrivate, Some(VPC_ID)), false),
            (spec("-bad.local", NamespaceType::DnsPrivate, Some(VPC_ID)), false),
            (spec(&"a".repeat(64), NamespaceType::DnsPrivate, Some(VPC_ID)), false),
            (spec("has space", NamespaceType::Http, None), false),
            (spec("arn:aws:x", NamespaceType::Http, None), false),
            (spec("any/thing!", NamespaceType::Http, None), true),
            (spec("web", NamespaceType::Http, Some(VPC_ID)), false),
            (spec("", NamespaceType::Http, None), false),
        ];
        for (s, ok) in cases {
            assert_eq!(check_namespace(s).is_ok(), *ok, "{s:?}");
        }
    }

    #[test]
    fn service_rules() {
        let dns = |records: &[(RecordType, i64)]| DnsConfig {
            routing_policy: RoutingPolicy::Multivalue,
            records: records.iter().map(|&(kind, ttl)| DnsRecord { kind, ttl }).collect(),
        };
        let spec = |name: &str, d: Option<DnsConfig>| ServiceSpec { name: name.into(), dns: d, http_only: false, custom_health: None, route53_health_check: false };
        let private = ns(NamespaceType::DnsPrivate);
        let http = ns(NamespaceType::Http);
        let cases: Vec<(ServiceSpec, &Namespace, Result<ServiceType, &str>)> = vec![
            (spec("api", Some(dns(&[(RecordType::A, 10)]))), &private, Ok(ServiceType::DnsHttp)),
            (spec("api", Some(dns(&[(RecordType::A, 10), (RecordType::Srv, 10)]))), &private, Ok(ServiceType::DnsHttp)),
            (spec("api", None), &private, Ok(ServiceType::Http)),
            (spec("api", None), &http, Ok(ServiceType::Http)),
            (spec("api", Some(dns(&[(RecordType::A, 10)]))), &http, Err("InvalidInput")),
            (spec("api", Some(dns(&[]))), &private, Err("InvalidInput")),
            (spec("api", Some(dns(&[(RecordType::A, 10), (RecordType::A, 20)]))), &private, Err("InvalidInput")),
            (spec("api", Some(dns(&[(RecordType::A, -1)]))), &private, Err("InvalidInput")),
            (spec("bad name", None), &private, Err("InvalidInput")),
            (ServiceSpec { route53_health_check: true, ..spec("api", None) }, &private, Err("InvalidInput")),
            (ServiceSpec { custom_health: Some(11), ..spec("api", None) }, &private, Err("InvalidInput")),
            (ServiceSpec { http_only: true, ..spec("api", Some(dns(&[(RecordType::A, 1)]))) }, &private, Err("InvalidInput")),
        ];
        for (s, n, want) in cases {
            assert_eq!(check_service(&s, n).map_err(|e| e.aws_type()), want, "{s:?}");
        }
        assert!(RecordType::parse("CNAME").is_err());
        assert_eq!(RecordType::parse("SRV"), Ok(RecordType::Srv));
    }

    #[test]
    fn instance_rules() {
        let a = svc(&[RecordType::A], false);
        let srv = svc(&[RecordType::A, RecordType::Srv], true);
        let http = svc(&[], false);
        let cases: Vec<(&DiscoveryService, &str, BTreeMap<String, String>, Result<Health, &str>)> = vec![
            (&a, "t1", attrs(&[(ATTR_IPV4, "10.0.0.5")]), Ok(Health::Healthy)),
            (&a, "t1", attrs(&[]), Err("InvalidInput")),
            (&a, "t1", attrs(&[(ATTR_IPV4, "10.0.0.300")]), Err("InvalidInput")),
            (&srv, "t1", attrs(&[(ATTR_IPV4, "10.0.0.5")]), Err("InvalidInput")),
            (&srv, "t1", attrs(&[(ATTR_IPV4, "10.0.0.5"), (ATTR_PORT, "8080")]), Ok(Health::Healthy)),
            (&srv, "t1", attrs(&[(ATTR_IPV4, "10.0.0.5"), (ATTR_PORT, "0")]), Err("InvalidInput")),
            (&srv, "t1", attrs(&[(ATTR_IPV4, "10.0.0.5"), (ATTR_PORT, "80"), (ATTR_INIT_HEALTH, "UNHEALTHY")]), Ok(Health::Unhealthy)),
            (&srv, "t1", attrs(&[(ATTR_IPV4, "10.0.0.5"), (ATTR_PORT, "80"), (ATTR_INIT_HEALTH, "MAYBE")]), Err("InvalidInput")),
            (&a, "t1", attrs(&[(ATTR_IPV4, "10.0.0.5"), (ATTR_INIT_HEALTH, "HEALTHY")]), Err("InvalidInput")),
            (&http, "t1", attrs(&[("stage", "blue")]), Ok(Health::Healthy)),
            (&http, "bad id!", attrs(&[]), Err("InvalidInput")),
            (&http, "t1", attrs(&[("k", " leading")]), Err("InvalidInput")),
            (&http, "t1", attrs(&[("k k", "v")]), Err("InvalidInput")),
        ];
        for (s, id, at, want) in cases {
            assert_eq!(check_instance(s, id, &at).map_err(|e| e.aws_type()), want, "{id} {at:?}");
        }
        let many: BTreeMap<String, String> = (0..31).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(check_instance(&http, "t", &many).is_err());
    }

    #[test]
    fn discover_filters() {
        let inst = |id: &str, h: Health, pairs: &[(&str, &str)]| Instance {
            service_id: "srv-1".into(),
            id: id.into(),
            attributes: attrs(pairs),
            health: h,
            creator_request_id: None,
            registered_at: 0.0,
        };
        let all = vec![
            inst("a", Health::Healthy, &[("stage", "blue"), ("az", "1")]),
            inst("b", Health::Unhealthy, &[("stage", "blue"), ("az", "2")]),
            inst("c", Health::Healthy, &[("stage", "green"), ("az", "2")]),
        ];
        let ids = |v: Vec<&Instance>| v.iter().map(|i| i.id.clone()).collect::<Vec<_>>().join(",");
        let none = BTreeMap::new();
        let cases: Vec<(BTreeMap<String, String>, BTreeMap<String, String>, HealthFilter, usize, &str)> = vec![
            (none.clone(), none.clone(), HealthFilter::Healthy, 10, "a,c"),
            (none.clone(), none.clone(), HealthFilter::All, 10, "a,b,c"),
            (none.clone(), none.clone(), HealthFilter::Unhealthy, 10, "b"),
            (attrs(&[("stage", "blue")]), none.clone(), HealthFilter::All, 10, "a,b"),
            (attrs(&[("stage", "blue")]), attrs(&[("az", "2")]), HealthFilter::All, 10, "b"),
            // An optional filter that matches nothing is dropped.
            (attrs(&[("stage", "blue")]), attrs(&[("az", "9")]), HealthFilter::All, 10, "a,b"),
            (attrs(&[("stage", "blue"), ("az", "2")]), none.clone(), HealthFilter::HealthyOrElseAll, 10, "b"),
            (attrs(&[("stage", "blue")]), none.clone(), HealthFilter::HealthyOrElseAll, 10, "a"),
            (attrs(&[("stage", "red")]), none.clone(), HealthFilter::All, 10, ""),
            (none.clone(), none, HealthFilter::All, 2, "a,b"),
        ];
        for (q, o, h, max, want) in cases {
            assert_eq!(ids(discover(&all, &q, &o, h, max)), want, "{q:?} {o:?} {h:?}");
        }
    }

    #[test]
    fn operations_finish_once() {
        assert_eq!(OperationStatus::Submitted.finish(true), OperationStatus::Success);
        assert_eq!(OperationStatus::Pending.finish(false), OperationStatus::Fail);
        assert_eq!(OperationStatus::Success.finish(false), OperationStatus::Success);
        assert_eq!(OperationStatus::Fail.finish(true), OperationStatus::Fail);
    }

    #[test]
    fn zone_matching_ignores_case_and_the_final_dot() {
        let cases = [
            ("api.corp.local.", "corp.local", Some("api")),
            ("API.Corp.LOCAL", "corp.local.", Some("API")),
            ("corp.local", "corp.local", Some("")),
            ("t1.api.corp.local", "corp.local", Some("t1.api")),
            ("xcorp.local", "corp.local", None),
            ("corp.local.org", "corp.local", None),
            ("local", "corp.local", None),
        ];
        for (name, zone, want) in cases {
            assert_eq!(below_zone(name, zone), want, "{name} {zone}");
        }
    }
}
