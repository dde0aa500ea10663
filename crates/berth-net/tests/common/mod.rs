//! Test infrastructure: a private bridge, subnet and nft table per test,
//! released by a guard even when the test fails, and TCP probes that run
//! inside task namespaces.
//!
//! Network safety: every address a test sends to is inside a subnet the
//! test claimed (its bridge and the namespaces behind it); nothing is
//! routed off the machine (egress stays off, and IPv4 forwarding is not
//! touched). Subnets come from 10.250.0.0/16, one /24 per test, claimed
//! with a `flock` under /run/berth-net-tests so parallel test processes
//! never share one, and skipped if the host already routes it.
#![allow(dead_code, clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_net::{
    AttachRequest, VethAttachment, BridgeName, Firewall, FirewallState, Network, SecurityGroup, Subnet,
    SubnetPolicy, TaskPolicy, allocate,
};

/// False (after a loud message) when the test cannot run here: it needs
/// root and Debian's `nftables` (the `nft` binary).
pub fn can_run(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    let nft = std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let ok = root && nft && Firewall::check_host().is_ok();
    if !ok {
        eprintln!("SKIPPED: {test}: needs root, nft (Debian package nftables) and br_netfilter");
        assert!(std::env::var_os("CI").is_none(), "{test} must run in CI");
    }
    ok
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique short name in this process: `<prefix><pid hex><n hex>`.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:x}x{n:x}", std::process::id())
}

/// One test's network: a bridge on a claimed /24, its firewall table, and
/// the tasks attached through it. Dropping it detaches every task, deletes
/// the tables and removes the bridge.
pub struct TestNet {
    pub net: Network,
    pub bridge: BridgeName,
    pub subnet: Subnet,
    pub firewall: Firewall,
    tasks: Mutex<Vec<String>>,
    used: Mutex<BTreeSet<Ipv4Addr>>,
    _claim: File,
}

impl TestNet {
    pub async fn new() -> Self {
        let (subnet, claim) = claim_subnet();
        let bridge = BridgeName::new(unique("bt")).unwrap();
        let firewall = Firewall::new(&unique("berth_test_")).unwrap();
        let net = Network::connect().unwrap();
        let t = Self {
            net,
            bridge,
            subnet,
            firewall,
            tasks: Mutex::new(Vec::new()),
            used: Mutex::new(BTreeSet::new()),
            _claim: claim,
        };
        t.net.ensure_bridge(&t.bridge, &t.subnet).await.unwrap();
        t
    }

    /// A new task id (and so netns and veth names) unique to this process.
    pub fn task_id(&self) -> String {
        unique("test-")
    }

    /// Attaches a new task at the next free address.
    pub async fn attach(&self) -> VethAttachment {
        let task_id = self.task_id();
        self.tasks.lock().unwrap().push(task_id.clone());
        let ip = {
            let mut used = self.used.lock().unwrap();
            let ip = allocate(&self.subnet, &used).unwrap();
            used.insert(ip);
            ip
        };
        let req = AttachRequest {
            task_id,
            bridge: self.bridge.clone(),
            subnet: self.subnet,
            ip,
        };
        self.net.attach(&req).await.unwrap()
    }

    /// Detaches a task and frees its address.
    pub async fn detach(&self, att: &VethAttachment) {
        self.net.detach(&att.task_id).await.unwrap();
        self.used.lock().unwrap().remove(&att.ip);
        self.tasks.lock().unwrap().retain(|t| t != &att.task_id);
    }

    /// A firewall state of this test's subnet (egress off) with these
    /// groups and members.
    pub fn state(
        &self,
        groups: Vec<SecurityGroup>,
        tasks: &[(&VethAttachment, &[&str])],
    ) -> FirewallState {
        FirewallState {
            subnets: vec![SubnetPolicy {
                bridge: self.bridge.clone(),
                subnet: self.subnet,
                egress: false,
            }],
            groups,
            tasks: tasks
                .iter()
                .map(|(att, groups)| TaskPolicy::new(att, groups.iter().copied()))
                .collect(),
            host_services: Vec::new(),
            published: Vec::new(),
            link_local: Vec::new(),
        }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        let bridge = self.bridge.clone();
        let firewall = self.firewall.clone();
        // Drop cannot await, and may run while the test's runtime unwinds:
        // clean up on a thread with a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let net = Network::connect().unwrap();
                for task in &tasks {
                    if let Err(e) = net.detach(task).await {
                        eprintln!("cleanup: detach {task}: {e}");
                    }
                }
                if let Err(e) = firewall.remove().await {
                    eprintln!("cleanup: nft table {}: {e}", firewall.table());
                }
                if let Err(e) = net.remove_bridge(&bridge).await {
                    eprintln!("cleanup: bridge {bridge}: {e}");
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Claims a free 10.250.x.0/24 for this test (held until the file closes).
fn claim_subnet() -> (Subnet, File) {
    let dir = Path::new("/run/berth-net-tests");
    std::fs::create_dir_all(dir).unwrap();
    let routed = host_routes();
    let start = std::process::id() as usize % 256;
    for i in 0..256 {
        let x = (start + i) % 256;
        let subnet: Subnet = format!("10.250.{x}.0/24").parse().unwrap();
        if routed
            .iter()
            .any(|(net, mask)| net & mask == u32::from(subnet.network()) & mask)
        {
            continue;
        }
        let file = File::create(dir.join(format!("10.250.{x}.0.lock"))).unwrap();
        if file.try_lock().is_ok() {
            return (subnet, file);
        }
    }
    panic!("no free test subnet in 10.250.0.0/16");
}

/// The host's IPv4 routes as (destination, mask), from /proc/net/route.
fn host_routes() -> Vec<(u32, u32)> {
    let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
            let (dest, mask) = (hex(f.get(1)?)?, hex(f.get(7)?)?);
            // The default route (mask 0) overlaps everything; not ours.
            (mask != 0).then_some((dest, mask))
        })
        .collect()
}

/// A TCP server inside a task's namespace, answering each connection with
/// `greeting`; it stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Listens on `ip:port` (0: any free port) inside `netns`.
    pub async fn start(netns: &Path, ip: Ipv4Addr, port: u16, greeting: &'static str) -> Self {
        let listener = berth_net::netns::in_netns(netns, move || TcpListener::bind((ip, port)))
            .await
            .unwrap()
            .unwrap();
        Self::serve(listener, greeting)
    }

    /// Listens on `ip:port` on the host.
    pub fn start_on_host(ip: Ipv4Addr, greeting: &'static str) -> Self {
        Self::serve(TcpListener::bind((ip, 0)).unwrap(), greeting)
    }

    fn serve(listener: TcpListener, greeting: &'static str) -> Self {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let task = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut conn, _)) = listener.accept().await {
                let _ = conn.write_all(greeting.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        Self { addr, task }
    }
}

/// How long a connection attempt that the firewall drops is waited for.
pub const DENIED_AFTER: Duration = Duration::from_millis(1500);

/// Connects to `addr` and reads what the server says; Err if the
/// connection fails or times out.
pub fn fetch(addr: SocketAddr) -> std::io::Result<String> {
    let mut conn = TcpStream::connect_timeout(&addr, DENIED_AFTER)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut got = String::new();
    conn.read_to_string(&mut got)?;
    Ok(got)
}

/// [`fetch`] from the host, off the runtime's threads.
pub async fn fetch_from_host(addr: SocketAddr) -> std::io::Result<String> {
    tokio::task::spawn_blocking(move || fetch(addr))
        .await
        .unwrap()
}

/// [`fetch`] from inside a task's namespace.
pub async fn fetch_from(att: &VethAttachment, addr: SocketAddr) -> std::io::Result<String> {
    berth_net::netns::in_netns(&att.netns_path, move || fetch(addr))
        .await
        .unwrap()
}

/// Runs `nft list table <family> <table>` and returns its text.
pub fn nft_list(family: &str, table: &str) -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "table", family, table])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
