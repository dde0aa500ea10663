//! The load balancers' nodes, run by the agent: for each load balancer's
//! address in a subnet (an `LbNode`, as an ALB has a node per zone), a
//! network namespace with `eth0` at that address on the subnet's bridge —
//! in the firewall as a member of the load balancer's security groups,
//! like a task's ENI — and a `berth_lb::Balancer` whose listeners and
//! target connections are sockets in that namespace. Tasks and the host
//! reach a load balancer at its address over the bridge.
//!
//! Level-triggered on the runner: one reconcile (woken by notices of every
//! load balancing record and every [`RESYNC`]) reads the records, builds
//! each node's configuration (`config.rs`, pure), applies it, removes the
//! targets whose deregistration delay is over, marks new load balancers
//! `active`, and takes down the nodes of deleted ones. Each node writes
//! its targets' health into the store when it changes, where
//! DescribeTargetHealth and the service controller read it.
//!
//! An internet-facing load balancer's listeners are also published on the
//! operator's `--public-address` (the same ports, DNAT as for tasks'
//! `assignPublicIp`); without one, it is reached at its subnet address
//! like an internal one.
//!
//! Every node runs on this agent's host: placing load balancer nodes
//! across a fleet of agents is an open item.

mod config;
pub mod metrics;
mod sockets;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use berth_control::runner::{Action, Backoff, Reconcile, Runner, RunnerConfig, from_notices};
use berth_lb::{Balancer, TargetHealthReport};
use berth_model::elb::{HealthReason, HealthState, LbState, Scheme, TargetHealthRecord};
use berth_store::{RecordKind, Store, StoreError};
use futures_util::stream::{self, StreamExt as _};
use tokio::sync::Mutex;

pub use config::{Records, node_config};
use crate::network::NodeNetwork;
pub use sockets::NetnsSockets;

/// How often the nodes are looked at whatever happened (drained targets
/// go, a node that failed is tried again).
pub const RESYNC: Duration = Duration::from_secs(5);

/// Runs the load balancers' nodes until `shutdown` resolves.
pub async fn run_balancers(
    store: Arc<dyn Store>,
    network: Arc<NodeNetwork>,
    publish_every: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    let kinds = [
        RecordKind::LoadBalancer,
        RecordKind::Listener,
        RecordKind::ListenerRule,
        RecordKind::TargetGroup,
        RecordKind::Targets,
        RecordKind::Certificate,
    ];
    let triggers = stream::select_all(
        kinds.map(|k| from_notices(store.watch(k), |_| Some(()), || async { vec![()] }).boxed()),
    );
    let triggers = stream::select(stream::iter([()]), triggers);
    let nodes = BalancerNodes { store: store.clone(), network, nodes: Arc::default() };
    let publisher = tokio::spawn(publish_metrics(store, nodes.nodes.clone(), publish_every));
    let config = RunnerConfig { concurrency: 1, backoff: Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(30) } };
    Runner::new("balancers", nodes, config).run(triggers, shutdown).await;
    publisher.abort();
}

/// Every `every`, the nodes' counters as `AWS/ApplicationELB` datapoints
/// (see [`metrics`]), summed over each load balancer's nodes.
async fn publish_metrics(store: Arc<dyn Store>, nodes: Arc<Mutex<HashMap<String, Node>>>, every: Duration) {
    let mut before = BTreeMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let groups: HashMap<String, berth_model::elb::TargetGroup> = match store.list_target_groups().await {
            Ok(g) => g.into_iter().map(|t| (t.value.arn.clone(), t.value)).collect(),
            Err(e) => {
                tracing::debug!(error = %e, "load balancer metrics: listing target groups failed");
                continue;
            }
        };
        let mut sums = BTreeMap::<(String, String), berth_lb::GroupCounters>::new();
        for node in nodes.lock().await.values() {
            for (arn, c) in node.balancer.counters() {
                let Some(tg) = groups.get(&arn) else { continue };
                let key = (node.load_balancer.clone(), format!("targetgroup/{}/{}", tg.name, tg.id));
                let sum = sums.entry(key).or_default();
                sum.request_count += c.request_count;
                sum.target_2xx += c.target_2xx;
                sum.target_5xx += c.target_5xx;
                sum.target_response_time_count += c.target_response_time_count;
                sum.target_response_time_us_sum += c.target_response_time_us_sum;
                // Each node checks every target: the same counts, not more.
                sum.healthy_host_count = sum.healthy_host_count.max(c.healthy_host_count);
                sum.unhealthy_host_count = sum.unhealthy_host_count.max(c.unhealthy_host_count);
            }
        }
        if sums.is_empty() {
            before = sums;
            continue;
        }
        let readings: Vec<metrics::GroupReading> = sums
            .iter()
            .map(|((lb, tg), c)| metrics::GroupReading { load_balancer: lb.clone(), target_group: tg.clone(), counters: *c })
            .collect();
        let now_ms = (crate::now_epoch() * 1000.0) as i64;
        let width = every.as_millis().max(1) as i64;
        let window_start = now_ms.div_euclid(width) * width - width;
        let points = metrics::datapoints(&before, &readings, window_start);
        if let Err(e) = store.put_datapoints(&points, now_ms).await {
            tracing::warn!(error = %e, "load balancer metrics: publishing failed");
        }
        before = sums;
    }
}

/// The nodes running here, by interface id.
struct BalancerNodes {
    store: Arc<dyn Store>,
    network: Arc<NodeNetwork>,
    nodes: Arc<Mutex<HashMap<String, Node>>>,
}

struct Node {
    balancer: Arc<Balancer>,
    /// Its load balancer as ALB's metrics name it: `app/NAME/ID`.
    load_balancer: String,
    health_writer: tokio::task::JoinHandle<()>,
}

/// The interface id of a load balancer's node in a subnet.
fn interface_id(lb_id: &str, subnet_id: &str) -> String {
    format!("elb-{lb_id}-{subnet_id}")
}

impl Reconcile<()> for BalancerNodes {
    type Error = StoreError;

    async fn reconcile(&self, _: &()) -> Result<Action, StoreError> {
        let s = self.store.as_ref();
        let now = crate::now_epoch();
        s.remove_drained_targets(now).await?;
        let lbs = s.list_load_balancers().await?;
        let listeners = s.list_listeners(None).await?;
        let rules = s.list_rules(None).await?;
        let target_groups: BTreeMap<_, _> =
            s.list_target_groups().await?.into_iter().map(|t| (t.value.arn.clone(), t.value)).collect();
        let mut targets = BTreeMap::new();
        for arn in target_groups.keys() {
            targets.insert(arn.clone(), s.list_targets(arn).await?);
        }
        let mut certificates = BTreeMap::new();
        for arn in listeners.iter().flat_map(|l| l.value.certificates.iter()) {
            if certificates.contains_key(arn) {
                continue;
            }
            let (Some(cert), Some(key)) = (s.get_certificate(arn).await?, s.certificate_key(arn).await?) else { continue };
            let chain_pem = format!("{}\n{}", cert.value.certificate_pem.trim_end(), cert.value.chain_pem.unwrap_or_default());
            certificates.insert(arn.clone(), berth_lb::Certificate { chain_pem, key_pem: key.0 });
        }

        let mut nodes = self.nodes.lock().await;
        let mut wanted = Vec::new();
        for lb in &lbs {
            let lb = &lb.value;
            let records = Records {
                load_balancer: lb,
                listeners: listeners.iter().map(|l| &l.value).filter(|l| l.load_balancer_arn == lb.arn).collect(),
                rules: rules.iter().map(|r| &r.value).collect(),
                target_groups: &target_groups,
                targets: &targets,
                certificates: &certificates,
            };
            for n in &lb.nodes {
                let id = interface_id(&lb.id, &n.subnet_id);
                wanted.push(id.clone());
                if !nodes.contains_key(&id) {
                    let name = format!("{}/{}/{}", if lb.lb_type == berth_model::elb::LbType::Network { "net" } else { "app" }, lb.name, lb.id);
                    match self.start_node(&id, &n.subnet_id, n.address, lb.security_groups.clone(), name).await {
                        Ok(node) => {
                            nodes.insert(id.clone(), node);
                        }
                        Err(e) => {
                            tracing::warn!(load_balancer = %lb.arn, subnet = %n.subnet_id, error = %e, "starting a load balancer node");
                            continue;
                        }
                    }
                }
                // Internet-facing: its listeners also on --public-address.
                let public: Vec<u16> = if lb.scheme == Scheme::InternetFacing {
                    records.listeners.iter().map(|l| l.port).collect()
                } else {
                    Vec::new()
                };
                self.network.publish_interface(&id, n.address, &public).await;
                let (config, problems) = node_config(&records, n.address);
                for p in problems {
                    tracing::warn!(load_balancer = %lb.arn, "{p}");
                }
                for e in nodes[&id].balancer.apply(config) {
                    tracing::warn!(load_balancer = %lb.arn, error = %e, "applying a load balancer node's configuration");
                }
            }
        }
        // New load balancers whose nodes all run are active.
        for lb in &lbs {
            let up = lb.value.nodes.iter().all(|n| nodes.contains_key(&interface_id(&lb.value.id, &n.subnet_id)));
            if lb.value.state == LbState::Provisioning && up {
                let mut active = lb.value.clone();
                active.state = LbState::Active;
                match s.put_load_balancer(&active, Some(lb.version)).await {
                    Ok(_) | Err(StoreError::Conflict | StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let gone: Vec<String> = nodes.keys().filter(|id| !wanted.contains(id)).cloned().collect();
        for id in gone {
            if let Some(node) = nodes.remove(&id) {
                node.balancer.apply(berth_lb::Config::default());
                node.health_writer.abort();
            }
            if let Err(e) = self.network.detach_interface(&id).await {
                tracing::warn!(interface = %id, error = %e, "removing a load balancer node's interface");
            }
        }
        Ok(Action::requeue(RESYNC))
    }
}

impl BalancerNodes {
    async fn start_node(
        &self,
        id: &str,
        subnet_id: &str,
        address: Ipv4Addr,
        groups: Vec<String>,
        load_balancer: String,
    ) -> Result<Node, String> {
        let subnet = self
            .store
            .get_subnet(subnet_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("subnet {subnet_id} is gone"))?;
        let attachment = self.network.attach_interface(id, &subnet.value, address, groups).await.map_err(|e| e.to_string())?;
        let sockets = NetnsSockets::new(&attachment.netns_path).map_err(|e| format!("the node's namespace: {e}"))?;
        let balancer = Arc::new(Balancer::new(sockets));
        let health_writer = tokio::spawn(write_health(self.store.clone(), balancer.clone()));
        tracing::info!(interface = id, %address, "load balancer node up");
        Ok(Node { balancer, load_balancer, health_writer })
    }
}

/// Writes a node's target health into the store whenever it changes.
async fn write_health(store: Arc<dyn Store>, balancer: Arc<Balancer>) {
    let mut changes = balancer.health_changes();
    let mut written: HashMap<(String, std::net::SocketAddr), TargetHealthReport> = HashMap::new();
    loop {
        for report in balancer.health() {
            let key = (report.target_group.clone(), report.addr);
            if written.get(&key) == Some(&report) {
                continue;
            }
            let IpAddr::V4(ip) = report.addr.ip() else { continue };
            let record = TargetHealthRecord {
                target_group_arn: report.target_group.clone(),
                id: ip,
                port: report.addr.port(),
                state: HealthState::parse(report.state.as_str()).unwrap_or(HealthState::Unavailable),
                reason: report.reason.and_then(|r| HealthReason::parse(r.code())),
                description: report.description.clone(),
                updated_at: crate::now_epoch(),
            };
            match store.put_target_health(&record).await {
                Ok(()) => {
                    written.insert(key, report);
                }
                Err(e) => tracing::warn!(target_group = %record.target_group_arn, target = %report.addr, error = %e, "writing target health"),
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}
