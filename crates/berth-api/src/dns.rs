//! The DNS server's records from the store, and the runner that keeps
//! them (and the addresses it listens on) current.
//!
//! What it answers: each private DNS namespace is a zone; each of its
//! services with DNS records gets `SERVICE.NAMESPACE` — A records of its
//! healthy instances' `AWS_INSTANCE_IPV4` (all of them when none is
//! healthy: Route 53's fail-open), SRV records `1 1 PORT
//! INSTANCE.SERVICE.NAMESPACE` with an A record for each target — with
//! the TTLs configured, at most 8 records an answer (multivalue) or 1
//! (weighted). Each load balancer's DNS name answers its nodes' addresses.
//! Each live task with an address has its private DNS name
//! (`ip-10-89-0-7.ec2.internal`, or `…REGION.compute.internal`), in a zone
//! of its own.
//!
//! Where it listens: each subnet's gateway (the address of its bridge on
//! this host), port 53 in `berth up`. A bridge that does not exist yet
//! cannot be bound; the next pass (a notice or the periodic resync)
//! tries again. Subnets with egress forward other names to the host's
//! resolvers (`/etc/resolv.conf`); others answer REFUSED.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use berth_control::runner::{Action, Backoff, Reconcile, Runner, RunnerConfig, from_notices};
pub use berth_dns::DnsServer;
use berth_dns::{Forward, MAX_ANSWERS, Records, SrvTarget};
use berth_model::discovery::{DiscoveryService, Health, Instance, Namespace, NamespaceType, RecordType, RoutingPolicy};
use berth_model::network::private_dns_name;
use berth_store::{Page, RecordKind, Store, StoreError, TaskFilter};
use futures_util::stream::{self, StreamExt as _};

/// How often the records and listeners are rebuilt without a notice
/// (changes other processes made, a bridge that came up).
pub const DNS_RESYNC: Duration = Duration::from_secs(10);
/// The TTL of tasks' private DNS names.
const TASK_NAME_TTL: u32 = 60;

/// A namespace, its services and each service's instances, as read.
pub struct Zone {
    pub namespace: Namespace,
    pub services: Vec<(DiscoveryService, Vec<Instance>)>,
}

fn ttl(seconds: i64) -> u32 {
    u32::try_from(seconds.max(0)).unwrap_or(u32::MAX)
}

/// The TTL of load balancers' DNS names (ELB's own is 60 s).
const LB_NAME_TTL: u32 = 60;

/// The records of `zones`, of tasks at `task_ips` in `region`, and of the
/// load balancers (DNS name, node addresses) in `balancers`. Pure.
pub fn build_records(zones: &[Zone], task_ips: &[Ipv4Addr], balancers: &[(String, Vec<Ipv4Addr>)], region: &str) -> Records {
    let mut r = Records::new();
    for zone in zones.iter().filter(|z| z.namespace.kind == NamespaceType::DnsPrivate) {
        let ns = &zone.namespace;
        r.add_zone(&ns.name, ns.soa_ttl.map_or(berth_dns::DEFAULT_NEGATIVE_TTL, ttl));
        for (service, instances) in &zone.services {
            let Some(dns) = &service.dns else { continue };
            if service.name == "." {
                continue;
            }
            let name = format!("{}.{}", service.name, ns.name);
            let limit = match dns.routing_policy {
                RoutingPolicy::Multivalue => MAX_ANSWERS,
                RoutingPolicy::Weighted => 1,
            };
            let healthy: Vec<&Instance> = instances.iter().filter(|i| i.health == Health::Healthy).collect();
            let answering: Vec<&Instance> = if healthy.is_empty() { instances.iter().collect() } else { healthy };
            if let Some(a_ttl) = dns.ttl(RecordType::A) {
                r.add_a(&name, answering.iter().filter_map(|i| i.ipv4()), ttl(a_ttl), limit);
            }
            if let Some(srv_ttl) = dns.ttl(RecordType::Srv) {
                let mut targets = Vec::new();
                for i in &answering {
                    let (Some(ip), Some(port)) = (i.ipv4(), i.port()) else { continue };
                    let host = format!("{}.{name}", i.id);
                    if berth_model::discovery::check_dns_name(&host).is_err() {
                        continue;
                    }
                    r.add_a(&host, [ip], ttl(dns.ttl(RecordType::A).unwrap_or(srv_ttl)), MAX_ANSWERS);
                    targets.push(SrvTarget { priority: 1, weight: 1, port, target: host });
                }
                r.add_srv(&name, targets, ttl(srv_ttl), limit);
            }
        }
    }
    for ip in task_ips {
        let name = private_dns_name(*ip, region);
        if let Some((_, domain)) = name.split_once('.') {
            r.add_zone(domain, berth_dns::DEFAULT_NEGATIVE_TTL);
        }
        r.add_a(&name, [*ip], TASK_NAME_TTL, 1);
    }
    for (name, addresses) in balancers {
        if let Some((_, domain)) = name.split_once('.') {
            r.add_zone(domain, berth_dns::DEFAULT_NEGATIVE_TTL);
        }
        r.add_a(name, addresses.iter().copied(), LB_NAME_TTL, MAX_ANSWERS);
    }
    r
}

/// Reads what [`build_records`] needs from the store.
pub async fn dns_records(store: &dyn Store, region: &str) -> Result<Records, StoreError> {
    let mut zones = Vec::new();
    for ns in store.list_namespaces().await? {
        let mut services = Vec::new();
        for s in store.list_discovery_services(Some(&ns.value.id)).await? {
            let instances = store.list_instances(&s.value.id).await?.into_iter().map(|i| i.value).collect();
            services.push((s.value, instances));
        }
        zones.push(Zone { namespace: ns.value, services });
    }
    let mut ips = Vec::new();
    let filter = TaskFilter { live_only: true, ..Default::default() };
    let mut after = None;
    loop {
        let page = store.list_tasks(&filter, Page { after: after.take(), limit: 500 }).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.value.arn.to_string());
        ips.extend(page.iter().filter_map(|t| t.value.ip()));
    }
    let balancers: Vec<(String, Vec<Ipv4Addr>)> = store
        .list_load_balancers()
        .await?
        .into_iter()
        .map(|lb| (lb.value.dns_name, lb.value.nodes.iter().map(|n| n.address).collect()))
        .collect();
    Ok(build_records(&zones, &ips, &balancers, region))
}

/// Keeps `server`'s records and listeners as the store says until
/// `shutdown`: on every notice of a namespace, service, instance, task or
/// subnet, and every [`DNS_RESYNC`]. Listens on each subnet's gateway at
/// `port`.
pub async fn run_dns(store: Arc<dyn Store>, server: Arc<DnsServer>, region: String, port: u16, shutdown: impl Future<Output = ()> + Send) {
    let kinds = [
        RecordKind::Namespace,
        RecordKind::DiscoveryService,
        RecordKind::DiscoveryInstance,
        RecordKind::Task,
        RecordKind::Subnet,
        RecordKind::LoadBalancer,
    ];
    let notices = stream::select_all(
        kinds.map(|k| from_notices(store.watch(k), |_| Some(()), || async { vec![()] }).boxed()),
    );
    let triggers = stream::iter([()]).chain(notices);
    let every = Backoff { initial: Duration::from_secs(1), max: DNS_RESYNC };
    let runner = Runner::new("dns", Dns { store, server, region, port }, RunnerConfig { concurrency: 1, backoff: every });
    runner.run(triggers, shutdown).await;
}

struct Dns {
    store: Arc<dyn Store>,
    server: Arc<DnsServer>,
    region: String,
    port: u16,
}

impl Reconcile<()> for Dns {
    type Error = StoreError;

    async fn reconcile(&self, _: &()) -> Result<Action, StoreError> {
        self.server.set_records(dns_records(self.store.as_ref(), &self.region).await?);
        let resolvers = berth_dns::host_resolvers();
        let wanted: BTreeMap<SocketAddr, Forward> = self
            .store
            .list_subnets()
            .await?
            .into_iter()
            .map(|s| {
                let forward = if s.value.egress { Forward::To(resolvers.clone()) } else { Forward::Refuse };
                (SocketAddr::new(s.value.gateway().into(), self.port), forward)
            })
            .collect();
        for (addr, forward) in &wanted {
            if let Err(e) = self.server.listen(*addr, forward.clone()).await {
                // Most often the subnet's bridge is not up on this host yet.
                tracing::debug!(%addr, error = %e, "DNS server cannot listen yet");
            }
        }
        let keep: BTreeSet<&SocketAddr> = wanted.keys().collect();
        for addr in self.server.listening() {
            if !keep.contains(&addr) {
                self.server.stop(addr);
            }
        }
        Ok(Action::requeue(DNS_RESYNC))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use berth_model::discovery::{DnsConfig, DnsRecord, ServiceType};

    use super::*;

    fn namespace(kind: NamespaceType) -> Namespace {
        Namespace {
            id: "ns-1".into(),
            arn: String::new(),
            name: "corp.local".into(),
            kind,
            description: None,
            vpc: None,
            hosted_zone_id: None,
            soa_ttl: Some(30),
            creator_request_id: None,
            operation_id: String::new(),
            created_at: 0.0,
            tags: BTreeMap::new(),
        }
    }

    fn service(name: &str, records: &[(RecordType, i64)], policy: RoutingPolicy) -> DiscoveryService {
        DiscoveryService {
            id: format!("srv-{name}"),
            arn: String::new(),
            name: name.into(),
            namespace_id: "ns-1".into(),
            description: None,
            dns: (!records.is_empty()).then(|| DnsConfig {
                routing_policy: policy,
                records: records.iter().map(|&(kind, ttl)| DnsRecord { kind, ttl }).collect(),
            }),
            custom_health: Some(1),
            kind: ServiceType::DnsHttp,
            creator_request_id: None,
            created_at: 0.0,
            tags: BTreeMap::new(),
        }
    }

    fn instance(id: &str, ip: u8, health: Health) -> Instance {
        Instance {
            service_id: String::new(),
            id: id.into(),
            attributes: BTreeMap::from([
                ("AWS_INSTANCE_IPV4".to_owned(), format!("10.89.0.{ip}")),
                ("AWS_INSTANCE_PORT".to_owned(), "8080".to_owned()),
            ]),
            health,
            creator_request_id: None,
            registered_at: 0.0,
        }
    }

    fn ips(r: &Records, name: &str) -> Vec<String> {
        r.a(name).map(|s| s.addresses.iter().map(ToString::to_string).collect()).unwrap_or_default()
    }

    #[test]
    fn records_from_namespaces_services_and_tasks() {
        let zones = [
            Zone {
                namespace: namespace(NamespaceType::DnsPrivate),
                services: vec![
                    (
                        service("api", &[(RecordType::A, 10), (RecordType::Srv, 20)], RoutingPolicy::Multivalue),
                        vec![instance("t1", 1, Health::Healthy), instance("t2", 2, Health::Unhealthy), instance("t3", 3, Health::Healthy)],
                    ),
                    (service("down", &[(RecordType::A, 5)], RoutingPolicy::Weighted), vec![instance("t4", 4, Health::Unhealthy)]),
                    (service("api-only", &[], RoutingPolicy::Multivalue), vec![instance("t5", 5, Health::Healthy)]),
                ],
            },
            Zone {
                namespace: Namespace { id: "ns-2".into(), name: "web".into(), ..namespace(NamespaceType::Http) },
                services: vec![(service("x", &[], RoutingPolicy::Multivalue), vec![instance("t6", 6, Health::Healthy)])],
            },
        ];
        let lb = ("internal-front-1234567890.us-east-1.elb.amazonaws.com".to_owned(), vec![Ipv4Addr::new(10, 89, 0, 2)]);
        let r = build_records(&zones, &[Ipv4Addr::new(10, 89, 0, 7)], &[lb], "us-east-1");
        // (name, addresses) — healthy only; all when none is healthy.
        let cases: &[(&str, &[&str])] = &[
            ("api.corp.local", &["10.89.0.1", "10.89.0.3"]),
            ("t1.api.corp.local", &["10.89.0.1"]),
            ("t2.api.corp.local", &[]),
            ("down.corp.local", &["10.89.0.4"]),
            ("api-only.corp.local", &[]),
            ("x.web", &[]),
            ("ip-10-89-0-7.ec2.internal", &["10.89.0.7"]),
            ("internal-front-1234567890.us-east-1.elb.amazonaws.com", &["10.89.0.2"]),
        ];
        for (name, want) in cases {
            assert_eq!(ips(&r, name), *want, "{name}");
        }
        assert_eq!(r.a("api.corp.local").map(|s| (s.ttl, s.limit)), Some((10, MAX_ANSWERS)));
        assert_eq!(r.a("down.corp.local").map(|s| s.limit), Some(1));
        let srv = r.srv("api.corp.local").unwrap();
        assert_eq!(srv.ttl, 20);
        assert_eq!(srv.targets.iter().map(|t| (t.port, t.target.as_str())).collect::<Vec<_>>(), [(8080, "t1.api.corp.local"), (8080, "t3.api.corp.local")]);
        assert_eq!(r.zone_of("nope.corp.local"), Some(("corp.local", 30)));
        assert_eq!(r.zone_of("ip-10-89-0-9.ec2.internal"), Some(("ec2.internal", berth_dns::DEFAULT_NEGATIVE_TTL)));
        assert!(r.zone_of("x.web").is_none());
        let other = build_records(&[], &[Ipv4Addr::new(10, 0, 0, 1)], &[], "eu-west-1");
        assert_eq!(ips(&other, "ip-10-0-0-1.eu-west-1.compute.internal"), ["10.0.0.1"]);
    }
}
