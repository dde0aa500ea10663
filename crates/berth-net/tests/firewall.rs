//! Security groups and host isolation, with real TCP between task
//! namespaces on a test bridge. Needs root and nft.
//!
//! Every connection goes to an address inside the test's own subnet: a
//! task's, or the test bridge's gateway address.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::net::SocketAddr;

use berth_net::{HostService, Rule, SecurityGroup, Source, SubnetPolicy};
use common::{Server, TestNet, can_run, fetch_from, fetch_from_host};

fn web(port: u16, source: Source) -> SecurityGroup {
    SecurityGroup {
        id: "sg-web".into(),
        ingress: vec![Rule::tcp(port, port, source)],
        egress: SecurityGroup::anywhere(),
    }
}

fn client() -> SecurityGroup {
    SecurityGroup {
        id: "sg-client".into(),
        ingress: vec![],
        egress: SecurityGroup::anywhere(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_groups_decide_who_reaches_a_task() {
    if !can_run("security_groups_decide_who_reaches_a_task") {
        return;
    }
    let t = TestNet::new().await;
    let a = t.attach().await;
    let b = t.attach().await;
    assert_ne!(a.ip, b.ip, "each task has its own address");
    let allowed = Server::start(&a.netns_path, a.ip, 0, "a:allowed").await;
    let other = Server::start(&a.netns_path, a.ip, 0, "a:other").await;
    let on_b = Server::start(&b.netns_path, b.ip, 0, "b").await;
    let port = allowed.addr.port();

    // a is a web server that accepts `port` from members of sg-client.
    let groups = || {
        vec![
            SecurityGroup::default_group("sg-default"),
            web(port, Source::Group("sg-client".into())),
            client(),
        ]
    };
    t.firewall
        .apply(&t.state(groups(), &[(&a, &["sg-web"]), (&b, &["sg-client"])]))
        .await
        .unwrap();

    // The host reaches every task on every port.
    assert_eq!(fetch_from_host(allowed.addr).await.unwrap(), "a:allowed");
    assert_eq!(fetch_from_host(other.addr).await.unwrap(), "a:other");
    assert_eq!(fetch_from_host(on_b.addr).await.unwrap(), "b");
    // b reaches the allowed port of a, and only that one.
    assert_eq!(fetch_from(&b, allowed.addr).await.unwrap(), "a:allowed");
    fetch_from(&b, other.addr).await.unwrap_err();
    // b's group admits nobody, so a cannot reach b (a's own sending is
    // allowed; b's groups decide).
    fetch_from(&a, on_b.addr).await.unwrap_err();

    // b leaves sg-client: denied.
    t.firewall
        .apply(&t.state(groups(), &[(&a, &["sg-web"]), (&b, &[])]))
        .await
        .unwrap();
    let denied = fetch_from(&b, allowed.addr).await.unwrap_err();
    eprintln!("denied as: {denied}");
    assert_eq!(
        fetch_from_host(allowed.addr).await.unwrap(),
        "a:allowed",
        "the host still does"
    );

    // A CIDR source: exactly b's address.
    let by_cidr = || {
        vec![
            web(port, Source::Cidr(format!("{}/32", b.ip).parse().unwrap())),
            client(),
        ]
    };
    // (b is in sg-client only so that it may send: a task's groups' egress
    // rules decide what it sends, and sg-client's allow everything.)
    t.firewall
        .apply(&t.state(by_cidr(), &[(&a, &["sg-web"]), (&b, &["sg-client"])]))
        .await
        .unwrap();
    assert_eq!(fetch_from(&b, allowed.addr).await.unwrap(), "a:allowed");
    fetch_from(&b, other.addr).await.unwrap_err();

    // The default group: members accept everything from members.
    let default = || vec![SecurityGroup::default_group("sg-default")];
    t.firewall
        .apply(&t.state(default(), &[(&a, &["sg-default"]), (&b, &["sg-default"])]))
        .await
        .unwrap();
    assert_eq!(fetch_from(&b, other.addr).await.unwrap(), "a:other");
    assert_eq!(fetch_from(&a, on_b.addr).await.unwrap(), "b");
}

/// Egress rules limit what a task may reach, whatever the receiver's
/// groups admit; replies to what it was allowed to accept still leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_rules_limit_what_a_task_reaches() {
    if !can_run("egress_rules_limit_what_a_task_reaches") {
        return;
    }
    let t = TestNet::new().await;
    let a = t.attach().await;
    let b = t.attach().await;
    let allowed = Server::start(&a.netns_path, a.ip, 0, "a:allowed").await;
    let other = Server::start(&a.netns_path, a.ip, 0, "a:other").await;
    let on_b = Server::start(&b.netns_path, b.ip, 0, "b").await;
    let everyone = Source::Cidr("0.0.0.0/0".parse().unwrap());
    // a admits everything from anyone; b accepts everything from sg-open.
    let groups = |egress: Vec<Rule>| {
        vec![
            SecurityGroup { id: "sg-open".into(), ingress: vec![Rule::all(everyone.clone())], egress: SecurityGroup::anywhere() },
            SecurityGroup { id: "sg-out".into(), ingress: vec![Rule::all(Source::Group("sg-open".into()))], egress },
        ]
    };
    let members = [(&a, &["sg-open"][..]), (&b, &["sg-out"][..])];

    // b may only send TCP to a's allowed port.
    let one_port = vec![Rule::tcp(allowed.addr.port(), allowed.addr.port(), Source::Cidr(format!("{}/32", a.ip).parse().unwrap()))];
    t.firewall.apply(&t.state(groups(one_port), &members)).await.unwrap();
    assert_eq!(fetch_from(&b, allowed.addr).await.unwrap(), "a:allowed");
    fetch_from(&b, other.addr).await.unwrap_err();
    // Replies leave b whatever its egress rules: a reaches b's server.
    assert_eq!(fetch_from(&a, on_b.addr).await.unwrap(), "b");

    // A group as the destination: every member of sg-open, any port.
    t.firewall.apply(&t.state(groups(vec![Rule::all(Source::Group("sg-open".into()))]), &members)).await.unwrap();
    assert_eq!(fetch_from(&b, other.addr).await.unwrap(), "a:other");

    // No egress rules: b reaches nothing; the host still reaches it.
    t.firewall.apply(&t.state(groups(vec![]), &members)).await.unwrap();
    fetch_from(&b, allowed.addr).await.unwrap_err();
    assert_eq!(fetch_from_host(on_b.addr).await.unwrap(), "b");
    assert_eq!(fetch_from(&a, on_b.addr).await.unwrap(), "b", "and a reaches b: b's reply is not b sending");

    // EC2's default egress rule: everything again.
    t.firewall.apply(&t.state(groups(SecurityGroup::anywhere()), &members)).await.unwrap();
    assert_eq!(fetch_from(&b, other.addr).await.unwrap(), "a:other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_not_in_the_applied_state_gets_no_traffic_from_tasks() {
    if !can_run("a_task_not_in_the_applied_state_gets_no_traffic_from_tasks") {
        return;
    }
    let t = TestNet::new().await;
    let a = t.attach().await;
    let b = t.attach().await;
    let on_b = Server::start(&b.netns_path, b.ip, 0, "b").await;
    let on_a = Server::start(&a.netns_path, a.ip, 0, "a").await;
    let everyone = || {
        vec![SecurityGroup {
            id: "sg-open".into(),
            ingress: vec![Rule::all(Source::Cidr("0.0.0.0/0".parse().unwrap()))],
            egress: SecurityGroup::anywhere(),
        }]
    };
    // Only a is known: b (attached, not yet applied) receives nothing from
    // a, though a's group would admit b.
    t.firewall
        .apply(&t.state(everyone(), &[(&a, &["sg-open"])]))
        .await
        .unwrap();
    fetch_from(&a, on_b.addr).await.unwrap_err();
    assert_eq!(fetch_from_host(on_b.addr).await.unwrap(), "b");
    // Once named, b is governed by its groups like any task.
    t.firewall
        .apply(&t.state(everyone(), &[(&a, &["sg-open"]), (&b, &["sg-open"])]))
        .await
        .unwrap();
    assert_eq!(fetch_from(&a, on_b.addr).await.unwrap(), "b");
    assert_eq!(fetch_from(&b, on_a.addr).await.unwrap(), "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_reach_only_the_host_services_listed() {
    if !can_run("tasks_reach_only_the_host_services_listed") {
        return;
    }
    let t = TestNet::new().await;
    let a = t.attach().await;
    let gateway = t.subnet.gateway();
    let metadata = Server::start_on_host(gateway, "metadata");
    let private = Server::start_on_host(gateway, "private");
    let on_a = Server::start(&a.netns_path, a.ip, 0, "a").await;
    let mut state = t.state(
        vec![SecurityGroup::default_group("sg-default")],
        &[(&a, &["sg-default"])],
    );
    state.host_services = vec![HostService::tcp(gateway, metadata.addr.port())];
    t.firewall.apply(&state).await.unwrap();

    assert_eq!(fetch_from(&a, metadata.addr).await.unwrap(), "metadata");
    fetch_from(&a, private.addr).await.unwrap_err();
    // Host-initiated connections to the task still work (replies pass).
    assert_eq!(fetch_from_host(on_a.addr).await.unwrap(), "a");
    // Without the allow-list entry, the metadata endpoint is closed too.
    state.host_services.clear();
    t.firewall.apply(&state).await.unwrap();
    fetch_from(&a, metadata.addr).await.unwrap_err();
    let _: SocketAddr = metadata.addr;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_replaces_the_tables_whole_and_remove_deletes_them() {
    if !can_run("apply_replaces_the_tables_whole_and_remove_deletes_them") {
        return;
    }
    let t = TestNet::new().await;
    let a = t.attach().await;
    let table = t.firewall.table().to_string();
    let groups = vec![
        SecurityGroup::default_group("sg-default"),
        web(8080, Source::Group("sg-default".into())),
    ];
    t.firewall
        .apply(&t.state(groups, &[(&a, &["sg-default", "sg-web"])]))
        .await
        .unwrap();
    let inet = common::nft_list("inet", &table);
    assert!(
        inet.contains("chain sg-web") && inet.contains("tcp dport 8080 accept"),
        "{inet}"
    );
    assert!(inet.contains(&a.ip.to_string()), "{inet}");
    let bridge = common::nft_list("bridge", &table);
    assert!(
        bridge.contains(&format!("\"{}\" . {} . {}", a.host_veth, a.mac, a.ip)),
        "the port's identity is in port_ids: {bridge}"
    );
    assert!(bridge.contains(&a.mac.to_string()), "{bridge}");

    t.firewall
        .apply(&t.state(vec![SecurityGroup::default_group("sg-default")], &[]))
        .await
        .unwrap();
    let inet = common::nft_list("inet", &table);
    assert!(
        !inet.contains("sg-web") && !inet.contains(&a.ip.to_string()),
        "{inet}"
    );
    assert!(!common::nft_list("bridge", &table).contains(&a.host_veth));

    t.firewall.remove().await.unwrap();
    assert_eq!(common::nft_list("inet", &table), "");
    assert_eq!(common::nft_list("bridge", &table), "");
    t.firewall.remove().await.unwrap();
}

/// Egress is never applied in tests; `nft --check` has the kernel
/// validate the NAT rules without committing them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_rules_pass_the_kernels_check_without_being_applied() {
    if !can_run("egress_rules_pass_the_kernels_check_without_being_applied") {
        return;
    }
    let t = TestNet::new().await;
    let mut state = t.state(vec![SecurityGroup::default_group("sg-default")], &[]);
    state.subnets = vec![SubnetPolicy {
        bridge: t.bridge.clone(),
        subnet: t.subnet,
        egress: true,
    }];
    t.firewall.check(&state).await.unwrap();
    assert_eq!(
        common::nft_list("inet", t.firewall.table()),
        "",
        "nothing was applied"
    );
}

/// Adds `ip/32` to `eth0` inside a task's namespace (as a task with
/// CAP_NET_ADMIN could), so it can send from an address not its own.
async fn add_address_inside(att: &berth_net::VethAttachment, ip: std::net::Ipv4Addr) {
    use futures_util::TryStreamExt;
    let rt = tokio::runtime::Handle::current();
    let (conn, handle) = berth_net::netns::in_netns(&att.netns_path, move || {
        let _rt = rt.enter();
        let (conn, handle, _) = rtnetlink::new_connection().unwrap();
        (conn, handle)
    })
    .await
    .unwrap();
    let driver = tokio::spawn(conn);
    let eth0 = handle
        .link()
        .get()
        .match_name("eth0")
        .execute()
        .try_next()
        .await
        .unwrap()
        .unwrap();
    handle
        .address()
        .add(eth0.header.index, ip.into(), 32)
        .execute()
        .await
        .unwrap();
    driver.abort();
}

/// Sends one datagram from `from` (an address inside the task) to `to`.
async fn send_from(
    att: &berth_net::VethAttachment,
    from: std::net::Ipv4Addr,
    to: SocketAddr,
    what: &'static [u8],
) {
    berth_net::netns::in_netns(&att.netns_path, move || {
        let s = std::net::UdpSocket::bind((from, 0)).unwrap();
        s.send_to(what, to).unwrap();
    })
    .await
    .unwrap();
}

/// What arrives at `sock` within a second.
async fn received(sock: &std::net::UdpSocket) -> Vec<Vec<u8>> {
    let sock = sock.try_clone().unwrap();
    tokio::task::spawn_blocking(move || {
        sock.set_read_timeout(Some(std::time::Duration::from_secs(1)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while let Ok(n) = sock.recv(&mut buf) {
            got.push(buf[..n].to_vec());
        }
        got
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_cannot_borrow_a_group_members_address() {
    if !can_run("a_task_cannot_borrow_a_group_members_address") {
        return;
    }
    let t = TestNet::new().await;
    let (a, b, c) = (t.attach().await, t.attach().await, t.attach().await);
    let a_ip = a.ip;
    let sock = berth_net::netns::in_netns(&a.netns_path, move || {
        std::net::UdpSocket::bind((a_ip, 0)).unwrap()
    })
    .await
    .unwrap();
    let to = sock.local_addr().unwrap();
    let groups = || {
        vec![
            SecurityGroup {
                id: "sg-web".into(),
                ingress: vec![Rule::udp(
                    to.port(),
                    to.port(),
                    Source::Group("sg-client".into()),
                )],
                egress: SecurityGroup::anywhere(),
            },
            client(),
        ]
    };
    let members = [
        (&a, &["sg-web"][..]),
        (&b, &[][..]),
        (&c, &["sg-client"][..]),
    ];
    t.firewall
        .apply(&t.state(groups(), &members))
        .await
        .unwrap();

    send_from(&c, c.ip, to, b"c").await;
    send_from(&b, b.ip, to, b"b").await;
    assert_eq!(
        received(&sock).await,
        vec![b"c".to_vec()],
        "c is a client, b is not"
    );

    // b takes c's address as a second one and sends from it: its port
    // only passes its own address.
    add_address_inside(&b, c.ip).await;
    send_from(&b, c.ip, to, b"b as c").await;
    assert_eq!(received(&sock).await, Vec::<Vec<u8>>::new());

    // The control: with b's port unknown to the bridge table, the same
    // spoofed datagram gets in, so the port check is what stopped it.
    t.firewall
        .apply(&t.state(groups(), &[members[0], members[2]]))
        .await
        .unwrap();
    send_from(&b, c.ip, to, b"b as c").await;
    assert_eq!(received(&sock).await, vec![b"b as c".to_vec()]);
}

/// Tasks coming and going, and changing groups, through element updates
/// (`apply_changes`) give the same traffic as whole replacements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn element_updates_admit_and_deny_as_whole_replacements_do() {
    if !can_run("element_updates_admit_and_deny_as_whole_replacements_do") {
        return;
    }
    let t = TestNet::new().await;
    let a = t.attach().await;
    let server = Server::start(&a.netns_path, a.ip, 0, "a").await;
    let groups = || vec![web(server.addr.port(), Source::Group("sg-client".into())), client()];
    let first = t.state(groups(), &[(&a, &["sg-web"])]);
    t.firewall.apply(&first).await.unwrap();

    // b arrives in sg-client by an element update: it gets through.
    let b = t.attach().await;
    let with_b = t.state(groups(), &[(&a, &["sg-web"]), (&b, &["sg-client"])]);
    t.firewall.apply_changes(Some(&first), &with_b).await.unwrap();
    let inet = common::nft_list("inet", t.firewall.table());
    assert!(inet.contains(&b.ip.to_string()), "b is a member now: {inet}");
    assert_eq!(fetch_from(&b, server.addr).await.unwrap(), "a");

    // b leaves the group: denied; b goes: its port is forgotten.
    let b_alone = t.state(groups(), &[(&a, &["sg-web"]), (&b, &[])]);
    t.firewall.apply_changes(Some(&with_b), &b_alone).await.unwrap();
    fetch_from(&b, server.addr).await.unwrap_err();
    t.firewall.apply_changes(Some(&b_alone), &first).await.unwrap();
    let bridge = common::nft_list("bridge", t.firewall.table());
    assert!(!bridge.contains(&b.host_veth), "{bridge}");

    // A state the kernel does not have (rules flushed behind Berth's back)
    // falls back to a whole replacement.
    t.firewall.remove().await.unwrap();
    t.firewall.apply_changes(Some(&b_alone), &with_b).await.unwrap();
    assert_eq!(fetch_from(&b, server.addr).await.unwrap(), "a");
    assert_eq!(fetch_from_host(server.addr).await.unwrap(), "a");
}
