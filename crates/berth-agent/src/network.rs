//! A task's awsvpc network on this node: an address from its subnet
//! (claimed in the store, so no two live tasks share one), the subnet's
//! bridge, the task's network namespace and veth (`berth-net`), its
//! `/etc/hosts` and `/etc/resolv.conf`, and the firewall (security
//! groups, host isolation) re-rendered from the store after every change.
//!
//! ```text
//! PROVISIONING    provision(task)   → address, bridge, netns + eth0, files, firewall
//! PENDING         task_network(task) → netns path, hostname, mounts for the containers
//! DEPROVISIONING  release(arn)      → netns + veth gone, address and ports freed (the bridge goes
//!                                     when unused for `bridge_idle`: remove_idle_bridges);
//!                 (ENI DELETED in the task)         sync_firewall()
//! ```
//! Everything is idempotent, so a driver that retries after an agent
//! restart finishes what an earlier one began.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_control::runner::{Action, Reconcile, Runner, RunnerConfig};
use berth_model::network::{self as model, SubnetRecord};
use berth_model::task::{EniStatus, PortBinding, Protocol as PortProtocolModel, Task};
use berth_net::{
    AttachRequest, VethAttachment, BridgeName, Firewall, FirewallState, HostService, LinkLocalService, NetError, Network, Protocol,
    PublishedPort, Rule, SecurityGroup, Source, Subnet, SubnetPolicy, TaskPolicy, Transport,
};
use berth_runtime_api::BindMount;
use berth_store::{PortClaim, PortProtocol, StoreError};

use crate::plane::NodeControlPlane;
use tokio::sync::{Mutex, watch};

/// How the node's networking is set up.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The nftables tables Berth owns (one `inet`, one `bridge`).
    pub nft_table: String,
    /// Where per-task files (`hosts`, `resolv.conf`) live.
    pub state_dir: PathBuf,
    /// Host services tasks may reach (the metadata endpoint).
    pub host_services: Vec<HostService>,
    /// The region, for private DNS names.
    pub region: String,
    /// The host address tasks with `assignPublicIp: ENABLED` publish their
    /// ports on (`None`: such tasks fail to start, saying so).
    pub public_address: Option<Ipv4Addr>,
    /// How long a subnet's bridge stays after its last task left (a
    /// bridge made and removed for every task costs each launch ~10 ms).
    pub bridge_idle: Duration,
    /// Berth's DNS server answers on each subnet's gateway (port 53, UDP
    /// and TCP): tasks' `/etc/resolv.conf` names the gateway and the
    /// firewall lets tasks reach it. Without it, tasks get the host's
    /// resolvers that are not loopback addresses.
    pub gateway_dns: bool,
}

/// The port of the DNS server on subnets' gateways.
pub const DNS_PORT: u16 = 53;

#[derive(Debug, thiserror::Error)]
pub enum TaskNetworkError {
    #[error("store")]
    Store(#[from] StoreError),
    #[error("network")]
    Net(#[from] NetError),
    #[error("{0}")]
    Setup(String),
}

impl TaskNetworkError {
    /// The ECS-style reason a task that could not get its network stops with.
    pub fn reason(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            text.push_str(": ");
            text.push_str(&e.to_string());
            source = e.source();
        }
        format!("ResourceInitializationError: unable to set up the task's network interface: {text}")
    }
}

/// What provisioning gave a task.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub subnet: SubnetRecord,
    pub attachment: VethAttachment,
    /// Published ports (`assignPublicIp: ENABLED`), by container.
    pub bindings: Vec<(String, PortBinding)>,
}

/// What the containers of a networked task are given.
#[derive(Debug, Clone)]
pub struct TaskNetwork {
    pub netns: PathBuf,
    /// The subnet's gateway: the host, where the metadata endpoint is.
    pub gateway: Ipv4Addr,
    pub hostname: String,
    pub mounts: Vec<BindMount>,
    pub ip: Ipv4Addr,
}

/// The node's networking.
pub struct NodeNetwork {
    net: Network,
    plane: Arc<dyn NodeControlPlane>,
    node_id: String,
    config: NetworkConfig,
    /// Bridge creation and removal, attach and detach: one at a time, so
    /// a bridge is never removed under a task being attached to it.
    links: Mutex<Bridges>,
    /// The task metadata endpoint, on every subnet's gateway.
    metadata: Option<crate::metadata::MetadataServer>,
    /// Firewall applies wanted (a generation count) and done.
    wanted: watch::Sender<u64>,
    applied: watch::Receiver<u64>,
    /// Interfaces of other things than tasks (load balancer nodes), by id,
    /// with their groups: in the firewall as tasks are.
    interfaces: std::sync::Mutex<BTreeMap<String, TaskPolicy>>,
    /// Ports of those interfaces published on `--public-address`, by id.
    interface_ports: std::sync::Mutex<BTreeMap<String, Vec<PublishedPort>>>,
}

impl NodeNetwork {
    /// Connects to the kernel and starts the firewall applier. Needs root
    /// and `br_netfilter`.
    pub fn new(
        plane: Arc<dyn NodeControlPlane>,
        node_id: String,
        config: NetworkConfig,
        metadata: Option<crate::metadata::MetadataServer>,
    ) -> Result<Arc<Self>, TaskNetworkError> {
        Firewall::check_host()?;
        let firewall = Firewall::new(&config.nft_table)?;
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| TaskNetworkError::Setup(format!("creating {}: {e}", config.state_dir.display())))?;
        let (wanted, wanted_rx) = watch::channel(0u64);
        let (applied_tx, applied) = watch::channel(0u64);
        let this = Arc::new(Self {
            net: Network::connect()?,
            plane,
            node_id,
            config,
            links: Mutex::new(Bridges::default()),
            metadata,
            wanted,
            applied,
            interfaces: std::sync::Mutex::default(),
            interface_ports: std::sync::Mutex::default(),
        });
        tokio::spawn(applier(Arc::downgrade(&this), firewall, wanted_rx, applied_tx));
        Ok(this)
    }

    /// PROVISIONING: gives the task an address, its namespace and `eth0`
    /// on its subnet's bridge, and its files; returns what DescribeTasks
    /// shows of it. The firewall names the task when this returns.
    pub async fn provision(
        &self,
        task: &Task,
        ports: &[(String, PortProtocolModel, u16)],
    ) -> Result<Provisioned, TaskNetworkError> {
        let task_id = task.id();
        let began = std::time::Instant::now();
        let bindings = self.publish(task, ports).await?;
        let (subnet, ip) = self.address(task).await?;
        let attachment = self.attach_on(task_id, &subnet, ip, began).await?;
        self.write_files(task_id, ip, &model::private_dns_name(ip, &self.config.region), subnet.gateway())?;
        Ok(Provisioned { subnet, attachment, bindings })
    }

    /// An interface of something other than a task (a load balancer's
    /// node): `id`'s namespace with `eth0` at `ip` on the subnet's bridge,
    /// a member of `groups` in the firewall (in force when this returns).
    /// Idempotent; [`Self::detach_interface`] undoes it.
    pub async fn attach_interface(
        &self,
        id: &str,
        subnet: &SubnetRecord,
        ip: Ipv4Addr,
        groups: Vec<String>,
    ) -> Result<VethAttachment, TaskNetworkError> {
        let attachment = self.attach_on(id, subnet, ip, std::time::Instant::now()).await?;
        let groups = if groups.is_empty() { vec![model::DEFAULT_SECURITY_GROUP_ID.to_owned()] } else { groups };
        self.interfaces.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.to_owned(), TaskPolicy::new(&attachment, groups));
        self.sync_firewall().await;
        Ok(attachment)
    }

    /// Removes an interface [`Self::attach_interface`] made (the address
    /// claim is its owner's to free).
    pub async fn detach_interface(&self, id: &str) -> Result<(), TaskNetworkError> {
        {
            let _links = self.links.lock().await;
            self.net.detach(id).await?;
        }
        self.interfaces.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
        self.interface_ports.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
        self.sync_firewall().await;
        Ok(())
    }

    /// Publishes TCP `ports` of the interface `id` (at `ip`) on the
    /// operator's `--public-address`, the same port there (an
    /// internet-facing load balancer's listeners); an empty list, or no
    /// public address, publishes nothing. A port a task already publishes
    /// there stays the task's. Applies the firewall only on a change.
    pub async fn publish_interface(&self, id: &str, ip: Ipv4Addr, ports: &[u16]) {
        let wanted: Vec<PublishedPort> = match self.config.public_address {
            Some(host_addr) => ports
                .iter()
                .map(|&port| PublishedPort { transport: Transport::Tcp, host_addr, host_port: port, task_ip: ip, task_port: port })
                .collect(),
            None => Vec::new(),
        };
        let changed = {
            let mut all = self.interface_ports.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let before = all.get(id).cloned().unwrap_or_default();
            if wanted.is_empty() {
                all.remove(id);
            } else {
                all.insert(id.to_owned(), wanted.clone());
            }
            before != wanted
        };
        if changed {
            self.sync_firewall().await;
        }
    }

    /// Makes the subnet's bridge ready and attaches `id`'s namespace to it
    /// at `ip`.
    async fn attach_on(
        &self,
        task_id: &str,
        subnet: &SubnetRecord,
        ip: Ipv4Addr,
        began: std::time::Instant,
    ) -> Result<VethAttachment, TaskNetworkError> {
        let claimed = began.elapsed();
        let net_subnet = Subnet::new(subnet.cidr)
            .map_err(|e| TaskNetworkError::Setup(format!("subnet {} ({}): {e}", subnet.id, subnet.cidr)))?;
        let bridge = BridgeName::for_subnet(&net_subnet);
        let request = AttachRequest { task_id: task_id.to_owned(), bridge: bridge.clone(), subnet: net_subnet, ip };
        let attachment = {
            let mut links = self.links.lock().await;
            // A bridge this agent set up and that is still there is ready.
            if !(links.ready.contains_key(bridge.as_str()) && self.net.link_exists(bridge.as_str()).await?) {
                // A subnet whose range the host already routes elsewhere
                // would cut the host off from that network: refuse it.
                if let Some(route) = self.net.overlapping_route(&net_subnet, &bridge).await? {
                    return Err(TaskNetworkError::Setup(format!(
                        "subnet {} ({}) overlaps the host's route to {route}; give Berth a range the host does not \
                         use (berth up --default-subnet, or berth subnet create)",
                        subnet.id, subnet.cidr
                    )));
                }
                // Never off the machine: without its bridge, the subnet's
                // traffic is dropped on the host, not sent to the default route.
                self.net.ensure_blackhole(&net_subnet).await?;
                self.net.ensure_bridge(&bridge, &net_subnet).await?;
                links.ready.insert(bridge.as_str().to_owned(), net_subnet);
            }
            links.idle.remove(bridge.as_str());
            if let Some(metadata) = &self.metadata {
                metadata.listen(net_subnet.gateway()).map_err(|e| {
                    TaskNetworkError::Setup(format!("task metadata endpoint on {}: {e}", net_subnet.gateway()))
                })?;
            }
            let bridged = began.elapsed();
            // A namespace left by an attach an agent restart cut short.
            if self.net.task_leftovers(task_id)? {
                self.net.detach(task_id).await?;
            }
            let attachment = self.net.attach(&request).await?;
            tracing::debug!(
                task = task_id,
                claim_ms = claimed.as_millis() as u64,
                bridge_ms = (bridged - claimed).as_millis() as u64,
                attach_ms = (began.elapsed() - bridged).as_millis() as u64,
                "network attached"
            );
            attachment
        };
        Ok(attachment)
    }

    /// `assignPublicIp: ENABLED`: claims each container port on the public
    /// address (one task per address and port), returning the containers'
    /// `networkBindings`.
    async fn publish(
        &self,
        task: &Task,
        ports: &[(String, PortProtocolModel, u16)],
    ) -> Result<Vec<(String, PortBinding)>, TaskNetworkError> {
        if !task.network.as_ref().is_some_and(|n| n.assign_public_ip) {
            return Ok(Vec::new());
        }
        let addr = self.config.public_address.ok_or_else(|| {
            TaskNetworkError::Setup(
                "assignPublicIp ENABLED needs a host address to publish on: start berth up with --public-address ADDR"
                    .into(),
            )
        })?;
        let arn = task.arn.to_string();
        let arn = arn.as_str();
        let mut bindings = Vec::new();
        for (container, protocol, port) in ports {
            let transport = match protocol {
                PortProtocolModel::Tcp => PortProtocol::Tcp,
                PortProtocolModel::Udp => PortProtocol::Udp,
            };
            if !self.plane.claim_port(PortClaim { address: addr, protocol: transport, port: *port }, arn).await? {
                let _ = self.plane.release_ports(arn).await;
                return Err(TaskNetworkError::Setup(format!(
                    "port {port}/{} on {addr} is already published by another task",
                    protocol.as_str()
                )));
            }
            bindings.push((
                container.clone(),
                PortBinding { bind_ip: addr, container_port: *port, host_port: *port, protocol: *protocol },
            ));
        }
        Ok(bindings)
    }

    /// The firewall, re-rendered from the store; returns once rules that
    /// include every change made before the call are in force.
    pub async fn sync_firewall(&self) {
        let generation = {
            let mut next = 0;
            self.wanted.send_modify(|g| {
                *g += 1;
                next = *g;
            });
            next
        };
        let mut applied = self.applied.clone();
        let _ = applied.wait_for(|g| *g >= generation).await;
    }

    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` for a task, where this
    /// node serves task-role credentials (`None`: it serves none).
    pub fn credentials_uri(&self, task_arn: &str) -> Option<String> {
        self.metadata.as_ref().map(|m| m.credentials_uri(task_arn))
    }

    /// `AWS_ENDPOINT_URL` for tasks behind `gateway`: Berth's API on the
    /// gateway, if this node serves it there.
    pub fn api_endpoint(&self, gateway: std::net::Ipv4Addr) -> Option<String> {
        self.metadata.as_ref().and_then(|m| m.api_endpoint(gateway))
    }

    /// What the task's containers are given (from its record: the
    /// attachment follows from its address).
    pub async fn task_network(&self, task: &Task) -> Option<TaskNetwork> {
        let eni = &task.network.as_ref()?.eni;
        let ip = eni.ip?;
        let id = task.id();
        let names = berth_net::TaskNames::for_task(id).ok()?;
        let dir = self.config.state_dir.join(id);
        // resolv.conf is Berth's (read-only, as the gateway's DNS server
        // is the task's resolver); hosts and hostname the task may change.
        let mounts = ["hosts", "resolv.conf", "hostname"]
            .iter()
            .map(|f| BindMount {
                source: dir.join(f),
                destination: format!("/etc/{f}"),
                read_only: *f == "resolv.conf" && self.config.gateway_dns,
            })
            .collect();
        let gateway = self.plane.subnet(&eni.subnet_id).await.ok()??.gateway();
        Some(TaskNetwork {
            netns: names.netns_path,
            gateway,
            hostname: model::private_dns_name(ip, &self.config.region),
            mounts,
            ip,
        })
    }

    /// DEPROVISIONING: the namespace and veth go, the address and the
    /// published ports are freed;
    /// the bridge goes [`NetworkConfig::bridge_idle`] after its last task
    /// ([`Self::remove_idle_bridges`]). Call [`Self::sync_firewall`] once
    /// the record no longer shows the interface attached.
    pub async fn release(&self, task: &Task) -> Result<(), TaskNetworkError> {
        let (arn, task_id) = (task.arn.to_string(), task.id());
        let held = self.plane.task_ips(&arn).await?;
        {
            let _links = self.links.lock().await;
            self.net.detach(task_id).await?;
        }
        if !held.is_empty() && self.config.bridge_idle.is_zero() {
            self.remove_idle_bridges().await;
        }
        self.plane.release_ips(&arn).await?;
        // Only a task with assignPublicIp ENABLED claimed ports (one store
        // write less per stop for every other task).
        if task.network.as_ref().is_some_and(|n| n.assign_public_ip) {
            self.plane.release_ports(&arn).await?;
        }
        let dir = self.config.state_dir.join(task_id);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "removing the task's network files");
        }
        Ok(())
    }

    /// Removes the bridges of this node's subnets that have had no task
    /// for [`NetworkConfig::bridge_idle`] (also those an earlier run of the
    /// agent left), and at once those of subnets deleted meanwhile. Called
    /// on every firewall refresh.
    pub async fn remove_idle_bridges(&self) {
        let subnets = match self.plane.subnets().await {
            Ok(s) => s,
            Err(e) => return tracing::warn!(error = %e, "listing subnets to remove idle bridges"),
        };
        let now = std::time::Instant::now();
        let mut links = self.links.lock().await;
        let mut bridges: Vec<(BridgeName, Duration)> = subnets
            .iter()
            .filter_map(|s| Subnet::new(s.cidr).ok())
            .map(|s| (BridgeName::for_subnet(&s), self.config.bridge_idle))
            .collect();
        for subnet in links.ready.values() {
            let bridge = BridgeName::for_subnet(subnet);
            if !bridges.iter().any(|(b, _)| *b == bridge) {
                bridges.push((bridge, Duration::ZERO));
            }
        }
        for (bridge, grace) in bridges {
            let name = bridge.as_str();
            let ports = match self.net.bridge_ports(&bridge).await {
                Ok(ports) => ports,
                Err(e) => {
                    tracing::warn!(%bridge, error = %e, "listing a bridge's ports");
                    continue;
                }
            };
            let Some(ports) = ports else {
                links.ready.remove(name);
                links.idle.remove(name);
                continue;
            };
            if !ports.is_empty() {
                links.idle.remove(name);
                continue;
            }
            let since = *links.idle.entry(name.to_owned()).or_insert(now);
            if now.duration_since(since) < grace {
                continue;
            }
            match self.net.remove_bridge(&bridge).await {
                Ok(()) => {
                    links.ready.remove(name);
                    links.idle.remove(name);
                }
                Err(NetError::BridgeInUse { .. }) => {
                    links.idle.remove(name);
                }
                Err(e) => tracing::warn!(%bridge, error = %e, "removing an unused bridge"),
            }
        }
    }

    /// The task's address: the one it already holds (a retried
    /// provisioning), else the first free one in the first of its subnets
    /// that has one.
    async fn address(&self, task: &Task) -> Result<(SubnetRecord, Ipv4Addr), TaskNetworkError> {
        let arn = task.arn.to_string();
        let arn = arn.as_str();
        let subnets: Vec<String> = task
            .network
            .as_ref()
            .map(|n| n.subnets.clone())
            .unwrap_or_else(|| vec![model::DEFAULT_SUBNET_ID.to_owned()]);
        for (subnet_id, ip) in self.plane.task_ips(arn).await? {
            if let (Some(subnet), Ok(ip)) = (self.plane.subnet(&subnet_id).await?, ip.parse()) {
                return Ok((subnet, ip));
            }
        }
        for subnet_id in &subnets {
            let Some(subnet) = self.plane.subnet(subnet_id).await? else { continue };
            let net_subnet = Subnet::new(subnet.cidr)
                .map_err(|e| TaskNetworkError::Setup(format!("subnet {} ({}): {e}", subnet.id, subnet.cidr)))?;
            // One transaction reads what is held and takes the lowest free
            // address: a burst of tasks never races for the same one.
            let pick = move |held: &BTreeSet<String>| {
                let used: BTreeSet<Ipv4Addr> = held.iter().filter_map(|ip| ip.parse().ok()).collect();
                berth_net::allocate(&net_subnet, &used).map(|ip| ip.to_string())
            };
            match self.plane.claim_free_ip(&subnet.id, arn, &pick).await {
                Ok(Some(ip)) => {
                    let ip =
                        ip.parse().map_err(|_| TaskNetworkError::Setup(format!("stored address {ip:?} is not IPv4")))?;
                    return Ok((subnet, ip));
                }
                Ok(None) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(TaskNetworkError::Setup(format!("no free address in subnets {}", subnets.join(", "))))
    }

    fn write_files(&self, task_id: &str, ip: Ipv4Addr, hostname: &str, gateway: Ipv4Addr) -> Result<(), TaskNetworkError> {
        let dir = self.config.state_dir.join(task_id);
        let io =
            |what: &str, e: std::io::Error| TaskNetworkError::Setup(format!("writing {what} in {}: {e}", dir.display()));
        std::fs::create_dir_all(&dir).map_err(|e| io("the directory", e))?;
        let short = hostname.split('.').next().unwrap_or(hostname);
        let hosts =
            format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{hostname} {short}\n");
        std::fs::write(dir.join("hosts"), hosts).map_err(|e| io("hosts", e))?;
        std::fs::write(dir.join("hostname"), format!("{hostname}\n")).map_err(|e| io("hostname", e))?;
        let resolv = if self.config.gateway_dns {
            gateway_resolv_conf(gateway)
        } else {
            resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
        };
        std::fs::write(dir.join("resolv.conf"), resolv).map_err(|e| io("resolv.conf", e))?;
        Ok(())
    }

    /// Everything the firewall should enforce now, from the store.
    async fn desired_state(&self) -> Result<FirewallState, TaskNetworkError> {
        let mut subnets = Vec::new();
        for s in self.plane.subnets().await? {
            let Ok(subnet) = Subnet::new(s.cidr) else { continue };
            subnets.push(SubnetPolicy { bridge: BridgeName::for_subnet(&subnet), subnet, egress: s.egress });
        }
        let groups = self.plane.security_groups().await?.iter().map(security_group).collect();
        let mut tasks = Vec::new();
        let mut published = Vec::new();
        for t in self.plane.live_tasks(&self.node_id).await? {
            if let Some(policy) = task_policy(&t.value, &subnets) {
                published.extend(published_ports(&t.value, policy.ip));
                tasks.push(policy);
            }
        }
        tasks.extend(self.interfaces.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().cloned());
        published.extend(self.interface_ports.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().flatten().copied());
        // Addresses from a stale record are dropped rather than fail the
        // whole ruleset.
        let mut seen = BTreeSet::new();
        tasks.retain(|t: &TaskPolicy| seen.insert(t.ip));
        let mut seen = BTreeSet::new();
        published.retain(|p: &PublishedPort| seen.insert((p.transport, p.host_addr, p.host_port)));
        let mut host_services = self.config.host_services.clone();
        let mut link_local = Vec::new();
        if self.metadata.is_some() {
            host_services
                .extend(subnets.iter().map(|s| HostService::tcp(s.subnet.gateway(), crate::metadata::METADATA_PORT)));
            // The credentials endpoint where SDKs look for it (see crate::credentials).
            link_local.push(LinkLocalService {
                addr: crate::credentials::LINK_LOCAL_ADDR,
                port: crate::credentials::LINK_LOCAL_PORT,
                gateway_port: crate::metadata::METADATA_PORT,
            });
        }
        if self.config.gateway_dns {
            for s in &subnets {
                host_services.push(HostService::tcp(s.subnet.gateway(), DNS_PORT));
                host_services.push(HostService { transport: berth_net::Transport::Udp, addr: s.subnet.gateway(), port: DNS_PORT });
            }
        }
        Ok(FirewallState { subnets, groups, tasks, host_services, published, link_local })
    }
}

/// Applies the firewall whenever more applies are wanted than done,
/// coalescing requests that come while one is in flight.
async fn applier(
    network: std::sync::Weak<NodeNetwork>,
    firewall: Firewall,
    mut wanted: watch::Receiver<u64>,
    applied: watch::Sender<u64>,
) {
    // The rules are re-applied unchanged now and then too, in case
    // something else flushed them.
    const REAPPLY: Duration = Duration::from_secs(30);
    let mut last: Option<(FirewallState, std::time::Instant)> = None;
    loop {
        if wanted.changed().await.is_err() {
            return;
        }
        let generation = *wanted.borrow_and_update();
        let Some(network) = network.upgrade() else { return };
        match network.desired_state().await {
            Ok(state) if last.as_ref().is_some_and(|(s, at)| *s == state && at.elapsed() < REAPPLY) => {}
            Ok(state) => {
                // Tasks coming and going are set element updates; the tables
                // are replaced whole when more changed, and now and then.
                let fresh = last.as_ref().filter(|(_, at)| at.elapsed() < REAPPLY);
                let applied_at = fresh.map_or_else(std::time::Instant::now, |(_, at)| *at);
                let result = match fresh {
                    Some((from, _)) => firewall.apply_changes(Some(from), &state).await,
                    None => firewall.apply(&state).await,
                };
                match result {
                    Ok(()) => last = Some((state, applied_at)),
                    Err(e) => {
                        last = None;
                        tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "applying the firewall");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "reading the firewall's state"),
        }
        drop(network);
        applied.send_replace(generation);
    }
}

/// Re-applies the firewall (security group changes made through the API
/// reach the rules this way) and removes idle bridges now and `every`
/// after each pass, until the network is gone: a controller with one key.
pub async fn refresh_firewall(network: std::sync::Weak<NodeNetwork>, every: Duration) {
    let runner = Runner::new("firewall-refresh", FirewallRefresh { network, every }, RunnerConfig::default());
    runner.run(futures_util::stream::iter([()]), std::future::pending()).await;
}

/// The firewall refresh as a reconciler. Its steps log their own errors
/// and it never fails.
struct FirewallRefresh {
    network: std::sync::Weak<NodeNetwork>,
    every: Duration,
}

impl Reconcile<()> for FirewallRefresh {
    type Error = std::convert::Infallible;

    async fn reconcile(&self, _: &()) -> Result<Action, Self::Error> {
        // Nothing triggers this runner, so waiting for a change ends it.
        let Some(n) = self.network.upgrade() else { return Ok(Action::await_change()) };
        n.sync_firewall().await;
        n.remove_idle_bridges().await;
        Ok(Action::requeue(self.every))
    }
}

fn task_policy(task: &Task, subnets: &[SubnetPolicy]) -> Option<TaskPolicy> {
    let net = task.network.as_ref()?;
    if net.eni.status != EniStatus::Attached {
        return None;
    }
    let ip = net.eni.ip?;
    let subnet = subnets.iter().find(|s| s.subnet.is_assignable(ip))?;
    let request = AttachRequest { task_id: task.id().to_owned(), bridge: subnet.bridge.clone(), subnet: subnet.subnet, ip };
    let attachment = VethAttachment::for_request(&request).ok()?;
    let groups = if net.security_groups.is_empty() {
        vec![model::DEFAULT_SECURITY_GROUP_ID.to_owned()]
    } else {
        net.security_groups.clone()
    };
    Some(TaskPolicy::new(&attachment, groups))
}

/// A task's published ports, from its containers' bindings.
fn published_ports(task: &Task, task_ip: Ipv4Addr) -> Vec<PublishedPort> {
    task.containers
        .iter()
        .flat_map(|c| &c.bindings)
        .map(|b| PublishedPort {
            transport: match b.protocol {
                PortProtocolModel::Tcp => Transport::Tcp,
                PortProtocolModel::Udp => Transport::Udp,
            },
            host_addr: b.bind_ip,
            host_port: b.host_port,
            task_ip,
            task_port: b.container_port,
        })
        .collect()
}

fn security_group(g: &model::SecurityGroupRecord) -> SecurityGroup {
    SecurityGroup { id: g.id.clone(), ingress: firewall_rules(&g.ingress), egress: firewall_rules(&g.egress) }
}

/// The model's rules (EC2's terms) as the firewall's; a rule's peer is the
/// source of an ingress rule and the destination of an egress rule.
fn firewall_rules(rules: &[model::IngressRule]) -> Vec<Rule> {
    rules
        .iter()
        .filter_map(|r| {
            let source = match (&r.cidr, &r.source_group) {
                (Some(c), _) => Source::Cidr(*c),
                (None, Some(g)) => Source::Group(g.clone()),
                (None, None) => return None,
            };
            let protocol = match r.protocol.as_str() {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "icmp" => Protocol::Icmp,
                _ => Protocol::All,
            };
            let (from_port, to_port) = match protocol {
                Protocol::Tcp | Protocol::Udp => (r.from_port, r.to_port),
                _ => (0, u16::MAX),
            };
            Some(Rule { protocol, from_port, to_port, source })
        })
        .collect()
}

/// The host's resolver settings without loopback servers (unreachable
/// from a task's namespace), as Docker writes them for containers.
fn resolv_conf(host: &str) -> String {
    let mut out = String::from("# written by Berth for this task\n");
    for line in host.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("nameserver"), Some(addr)) if addr.parse::<std::net::IpAddr>().is_ok_and(|a| !a.is_loopback()) => {
                out.push_str(line);
                out.push('\n');
            }
            (Some("search" | "domain" | "options"), Some(_)) => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// A task's resolv.conf when Berth's DNS server answers on its subnet's
/// gateway (as a VPC's resolver answers at its base address + 2).
fn gateway_resolv_conf(gateway: Ipv4Addr) -> String {
    format!("# written by Berth for this task: Berth's DNS server on the subnet's gateway\nnameserver {gateway}\n")
}

/// The agent's bookkeeping of bridges (under [`NodeNetwork::links`]).
#[derive(Debug, Default)]
struct Bridges {
    /// Bridges this agent made ready (up, addressed, blackhole route set),
    /// with their subnets.
    ready: std::collections::BTreeMap<String, Subnet>,
    /// Bridges without ports, since when.
    idle: std::collections::HashMap<String, std::time::Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_servers() {
        let host = "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.internal\noptions edns0\n";
        assert_eq!(
            resolv_conf(host),
            "# written by Berth for this task\nnameserver 10.0.0.2\nsearch example.internal\noptions edns0\n"
        );
    }

    #[test]
    fn with_gateway_dns_the_task_asks_its_gateway() {
        assert_eq!(
            gateway_resolv_conf(Ipv4Addr::new(10, 89, 0, 1)),
            "# written by Berth for this task: Berth's DNS server on the subnet's gateway\nnameserver 10.89.0.1\n"
        );
    }

    #[test]
    fn groups_map_onto_firewall_rules() {
        let g = model::SecurityGroupRecord {
            id: "sg-web".into(),
            name: "web".into(),
            description: String::new(),
            ingress: vec![
                model::IngressRule {
                    protocol: "tcp".into(),
                    from_port: 80,
                    to_port: 81,
                    cidr: Some("10.0.0.0/8".parse().unwrap()),
                    source_group: None,
                },
                model::IngressRule {
                    protocol: "-1".into(),
                    from_port: 0,
                    to_port: 0,
                    cidr: None,
                    source_group: Some("sg-web".into()),
                },
            ],
            created_at: 0.0,
            egress: model::allow_all_egress(),
            tags: Default::default(),
        };
        let fw = security_group(&g);
        assert_eq!(fw.ingress[0], Rule::tcp(80, 81, Source::Cidr("10.0.0.0/8".parse().unwrap())));
        assert_eq!(fw.ingress[1], Rule::all(Source::Group("sg-web".into())));
        assert_eq!(fw.egress, SecurityGroup::anywhere());
    }
}
