//! Bridges, task namespaces and veths against the real kernel. Needs root.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_net::{NETNS_DIR, NetError, SecurityGroup, mac_for, netns};
use common::{TestNet, can_run};

fn sys(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn link_exists(name: &str) -> bool {
    Path::new(&format!("/sys/class/net/{name}")).exists()
}

fn mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_is_made_once_and_removed_when_unused() {
    if !can_run("a_bridge_is_made_once_and_removed_when_unused") {
        return;
    }
    let t = TestNet::new().await;
    let br = t.bridge.as_str();
    let gateway = t.subnet.gateway();
    assert_eq!(
        sys(&format!("/sys/class/net/{br}/address")).unwrap(),
        mac_for(gateway).to_string()
    );
    assert_eq!(
        sys(&format!("/sys/class/net/{br}/bridge/nf_call_iptables")).unwrap(),
        "1"
    );
    let flags = sys(&format!("/sys/class/net/{br}/flags")).unwrap();
    assert_eq!(
        u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap() & 1,
        1,
        "up"
    );
    // The gateway address is the host's: it can be bound.
    assert!(
        UdpSocket::bind((gateway, 0)).is_ok(),
        "{gateway} is on {br}"
    );
    t.net.ensure_bridge(&t.bridge, &t.subnet).await.unwrap();

    let att = t.attach().await;
    match t.net.remove_bridge(&t.bridge).await {
        Err(NetError::BridgeInUse { ports, .. }) => assert_eq!(ports, vec![att.host_veth.clone()]),
        other => panic!("expected BridgeInUse, got {other:?}"),
    }
    let veth = berth_net::BridgeName::new(att.host_veth.clone()).unwrap();
    assert!(matches!(
        t.net.ensure_bridge(&veth, &t.subnet).await,
        Err(NetError::NotABridge { .. })
    ));
    t.detach(&att).await;
    t.net.remove_bridge(&t.bridge).await.unwrap();
    assert!(!link_exists(br));
    t.net.remove_bridge(&t.bridge).await.unwrap();
    // And it can be made again.
    t.net.ensure_bridge(&t.bridge, &t.subnet).await.unwrap();
    assert!(link_exists(br));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_gets_its_namespace_address_mac_and_route() {
    if !can_run("a_task_gets_its_namespace_address_mac_and_route") {
        return;
    }
    let t = TestNet::new().await;
    let att = t.attach().await;
    assert_eq!(
        att.netns_path,
        Path::new(NETNS_DIR).join(format!("berth-{}", att.task_id))
    );
    assert!(netns::is_mounted(&att.netns_path).unwrap());
    let shared = mountinfo()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(NETNS_DIR) && l.contains(" shared:"));
    assert!(shared, "/run/netns is a shared mount point");
    let veth = &att.host_veth;
    let master = std::fs::read_link(format!("/sys/class/net/{veth}/master")).unwrap();
    assert_eq!(
        master.file_name().unwrap().to_str(),
        Some(t.bridge.as_str())
    );
    assert_eq!(
        sys(&format!("/sys/class/net/{veth}/ifalias")).unwrap(),
        format!("berth task {}", att.task_id)
    );
    assert_eq!((att.prefix, att.gateway), (24, t.subnet.gateway()));

    // Inside: eth0 holds the task's address (and only it can be bound),
    // the default route goes via the gateway, IPv6 is off on eth0 only.
    let (ip, other) = (att.ip, Ipv4Addr::from(u32::from(att.ip) + 1));
    let inside = netns::in_netns(&att.netns_path, move || {
        let own = UdpSocket::bind((ip, 0)).is_ok();
        let foreign = UdpSocket::bind((other, 0)).is_ok();
        let routes = std::fs::read_to_string("/proc/thread-self/net/route").unwrap();
        let v6 = |dev: &str| {
            std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6")).ok()
        };
        (own, foreign, routes, v6("eth0"), v6("lo"))
    })
    .await
    .unwrap();
    assert!(inside.0, "{ip} is bound inside");
    assert!(!inside.1, "{other} is not the task's");
    let gw_hex = format!("{:08X}", u32::from(att.gateway).swap_bytes());
    let default = inside
        .2
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("00000000"))
        .unwrap();
    let f: Vec<&str> = default.split_whitespace().collect();
    assert_eq!((f[0], f[2]), ("eth0", gw_hex.as_str()), "{}", inside.2);
    if let (Some(eth0), Some(lo)) = (inside.3, inside.4) {
        assert_eq!((eth0.trim(), lo.trim()), ("1", "0"));
    }

    // The host reaches the task (a closed port: refused at once, no
    // firewall table here) and learns its MAC.
    let refused =
        TcpStream::connect_timeout(&SocketAddr::from((att.ip, 9)), Duration::from_secs(3));
    assert_eq!(
        refused.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    let arp = std::fs::read_to_string("/proc/net/arp").unwrap();
    let entry = arp
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&att.ip.to_string()))
        .unwrap();
    assert!(entry.contains(&att.mac.to_string()), "{entry}");

    // A second attach of the same task is refused and changes nothing.
    let again = berth_net::AttachRequest {
        task_id: att.task_id.clone(),
        bridge: t.bridge.clone(),
        subnet: t.subnet,
        ip: att.ip,
    };
    assert!(matches!(
        t.net.attach(&again).await,
        Err(NetError::AlreadyAttached { .. })
    ));
    assert!(netns::is_mounted(&att.netns_path).unwrap());
    assert!(link_exists(veth));

    t.detach(&att).await;
    assert!(!att.netns_path.exists());
    assert!(!netns::is_mounted(&att.netns_path).unwrap());
    assert!(!link_exists(veth));
    t.net.detach(&att.task_id).await.unwrap();
    t.net.detach("never-attached").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_attach_detach_cycles_leave_nothing_behind() {
    if !can_run("a_hundred_attach_detach_cycles_leave_nothing_behind") {
        return;
    }
    let t = TestNet::new().await;
    let empty = t.state(vec![SecurityGroup::default_group("sg-default")], &[]);
    t.firewall.apply(&empty).await.unwrap();
    let tables = || {
        (
            common::nft_list("inet", t.firewall.table()),
            common::nft_list("bridge", t.firewall.table()),
        )
    };
    let before = tables();
    assert!(before.0.contains("chain forward"), "{}", before.0);
    let fds = open_fds();

    let started = Instant::now();
    let mut seen = Vec::new();
    for _ in 0..100 {
        let att = t.attach().await;
        t.firewall
            .apply(&t.state(
                vec![SecurityGroup::default_group("sg-default")],
                &[(&att, &["sg-default"])],
            ))
            .await
            .unwrap();
        t.detach(&att).await;
        t.firewall.apply(&empty).await.unwrap();
        seen.push(att);
    }
    eprintln!("100 cycles in {:?}", started.elapsed());

    let mounts = mountinfo();
    for att in &seen {
        assert!(!att.netns_path.exists(), "{}", att.netns_path.display());
        assert!(
            !mounts.contains(att.netns_path.to_str().unwrap()),
            "{} still mounted",
            att.netns_path.display()
        );
        assert!(
            !link_exists(&att.host_veth),
            "{} still there",
            att.host_veth
        );
    }
    let prefix = format!("berth-test-{:x}x", std::process::id());
    let left: Vec<_> = std::fs::read_dir(NETNS_DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .filter(|n| seen.iter().any(|a| a.netns_path.ends_with(n)))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let ports = std::fs::read_dir(format!("/sys/class/net/{}/brif", t.bridge))
        .unwrap()
        .count();
    assert_eq!(ports, 0, "the bridge has no ports left");
    assert_eq!(tables(), before, "the ruleset is as before");
    // Sockets (which would pin a namespace) are closed; their drivers end
    // asynchronously, so allow them a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    while open_fds() > fds && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(open_fds() <= fds, "fds: {} now, {fds} before", open_fds());
}

/// The questions the agent asks about the host, on a bridge this test
/// made: whether it exists, its ports, a task's leftovers, and routes
/// that overlap a subnet. Also times a link lookup over netlink against
/// the `/sys/class/net` stat it replaced (the agent asks on each launch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_is_asked_about_links_ports_and_routes_over_netlink() {
    if !can_run("the_host_is_asked_about_links_ports_and_routes_over_netlink") {
        return;
    }
    let t = TestNet::new().await;
    let br = t.bridge.as_str();
    assert!(t.net.link_exists(br).await.unwrap());
    assert_eq!(t.net.bridge_ports(&t.bridge).await.unwrap(), Some(Vec::new()));

    // The subnet's own routes (the bridge's, and Berth's blackhole) are no
    // conflict; seen from another bridge, the subnet is routed already.
    let blackhole = Blackhole(t.subnet);
    t.net.ensure_blackhole(&t.subnet).await.unwrap();
    assert_eq!(t.net.overlapping_route(&t.subnet, &t.bridge).await.unwrap(), None);
    let other = berth_net::BridgeName::new(common::unique("bo")).unwrap();
    let found = t.net.overlapping_route(&t.subnet, &other).await.unwrap();
    assert_eq!(
        found,
        Some(berth_net::HostRoute { destination: t.subnet.net(), device: Some(br.to_string()) })
    );

    let att = t.attach().await;
    assert_eq!(t.net.bridge_ports(&t.bridge).await.unwrap(), Some(vec![att.host_veth.clone()]));
    assert!(t.net.task_leftovers(&att.task_id).unwrap());
    assert!(!t.net.task_leftovers(&t.task_id()).unwrap(), "a task never attached left nothing");

    // Cost: each lookup is one netlink round trip.
    const N: u32 = 500;
    let began = Instant::now();
    for _ in 0..N {
        assert!(t.net.link_exists(&att.host_veth).await.unwrap());
    }
    let netlink = began.elapsed() / N;
    let began = Instant::now();
    for _ in 0..N {
        assert!(link_exists(&att.host_veth));
    }
    let stat = began.elapsed() / N;
    let began = Instant::now();
    for _ in 0..N {
        assert!(t.net.bridge_ports(&t.bridge).await.unwrap().is_some_and(|p| p.len() == 1));
    }
    let ports = began.elapsed() / N;
    eprintln!("link lookup: netlink {netlink:?}, /sys stat {stat:?}; bridge ports over netlink {ports:?}");
    assert!(netlink < Duration::from_millis(2), "a link lookup takes {netlink:?}");

    t.detach(&att).await;
    assert!(!t.net.task_leftovers(&att.task_id).unwrap());
    assert_eq!(t.net.bridge_ports(&t.bridge).await.unwrap(), Some(Vec::new()));
    drop(blackhole);
    t.net.remove_bridge(&t.bridge).await.unwrap();
    assert!(!t.net.link_exists(br).await.unwrap());
    assert_eq!(t.net.bridge_ports(&t.bridge).await.unwrap(), None);
    assert_eq!(t.net.overlapping_route(&t.subnet, &other).await.unwrap(), None, "its routes went with it");
}

/// Removes a subnet's blackhole route when dropped, also when the test
/// fails (on a thread with a runtime of its own, as `TestNet` does).
struct Blackhole(berth_net::Subnet);

impl Drop for Blackhole {
    fn drop(&mut self) {
        let subnet = self.0;
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Err(e) = berth_net::Network::connect().unwrap().remove_blackhole(&subnet).await {
                    eprintln!("cleanup: blackhole route of {subnet}: {e}");
                }
            });
        });
        let _ = cleanup.join();
    }
}
