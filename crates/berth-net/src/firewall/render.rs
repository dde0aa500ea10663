//! The whole Berth ruleset from a [`FirewallState`]: pure, so it is tested
//! as data; [`super::Firewall::apply`] hands it to `nft` in one transaction.
//!
//! ```text
//! table inet T                                  stateful, sees bridged IPv4 (br_netfilter)
//!   set bridges, set egress (interval), set members_<sg> per group
//!   chain forward  hook forward  prio 0:
//!     iifname != @bridges oifname != @bridges accept    not Berth's traffic
//!     ct state established,related accept              replies
//!     ct state invalid drop
//!     iifname @bridges jump from_task                   the sender's groups' egress
//!     oifname != @bridges jump egress                   a task to elsewhere
//!     iifname != @bridges drop                          elsewhere to a task
//!     jump to_task                                      task to task
//!   chain from_task: ip saddr @members_<sg> <egress rule> return, per group
//!                    and rule; drop                     no group lets it out
//!   chain egress:   ip saddr @egress accept; drop       the subnet's switch
//!   chain to_task:  ip daddr @members_<sg> jump <sg>, for each group; drop
//!   chain <sg>:     one rule per ingress rule, each ending in accept
//!   chain input    hook input   prio 0:
//!     iifname != @bridges accept
//!     ct state established,related accept               replies to the host
//!     ip daddr <addr> tcp dport <port> accept           allowed host services
//!     drop
//!   chain postrouting  nat hook postrouting prio 100    only with egress:
//!     ip saddr @egress oifname != @bridges masquerade
//!   chain prerouting, chain output  nat prio -100        only with published ports:
//!     ip daddr <host addr> tcp dport <port> dnat ip to <task ip>:<port>
//!   (forward, before "elsewhere to a task":
//!     iifname != @bridges ct status dnat jump to_task)
//! table bridge T                                stateless: who a port may be
//!   set task_ports, set port_ids (port . mac . ip), set arp_ids (port . mac . mac . ip)
//!   chain prerouting  hook prerouting  prio -200:
//!     iifname @task_ports jump task_port
//!   chain task_port:
//!     iifname . ether saddr . ip saddr @port_ids accept
//!     iifname . ether saddr . arp saddr ether . arp saddr ip @arp_ids accept
//!     drop                                              no IPv6, no spoofing
//! ```
//!
//! Tasks are only ever set elements (their addresses in their groups'
//! members sets, their ports and identities in the bridge table's sets),
//! so [`render_changes`] moves between two states that differ only in
//! their tasks by adding and deleting elements.
//!
//! Host-to-task traffic leaves through the output hook, which Berth does
//! not filter, so the host always reaches a task (and the reply is
//! `established` on input).

use std::collections::BTreeSet;

use nftables::batch::Batch;
use nftables::expr::MetaKey;
use std::borrow::Cow;

use nftables::schema::{Element, NfListObject, Nftables, SetType};
use nftables::types::{NfChainType, NfFamily, NfHook};

use super::model::{FirewallState, Protocol, Rule, Source, Transport};
use super::nft::*;

/// The set of Berth's bridges, in both tables.
const BRIDGES: &str = "bridges";
/// The interval set of subnets with egress.
const EGRESS: &str = "egress";

/// The chain of a security group (`sg-0abc` is a valid nft identifier).
fn group_chain(id: &str) -> String {
    id.to_string()
}

/// The set of a security group's member addresses.
fn members_set(id: &str) -> String {
    format!("members_{id}")
}



/// Commands that replace both of Berth's tables named `table` with the
/// rules for `state` (which must be valid).
pub(crate) fn render(table: &str, state: &FirewallState) -> Nftables<'static> {
    let mut batch = Batch::new();
    inet(
        &mut TableBuilder {
            batch: &mut batch,
            family: NfFamily::INet,
            table: table.to_string(),
        },
        state,
    );
    bridge(
        &mut TableBuilder {
            batch: &mut batch,
            family: NfFamily::Bridge,
            table: table.to_string(),
        },
        state,
    );
    batch.to_nftables()
}

/// Commands that delete both tables, whether they exist or not.
pub(crate) fn render_delete(table: &str) -> Nftables<'static> {
    let mut batch = Batch::new();
    for family in [NfFamily::INet, NfFamily::Bridge] {
        TableBuilder {
            batch: &mut batch,
            family,
            table: table.to_string(),
        }
        .delete_table();
    }
    batch.to_nftables()
}

fn inet(t: &mut TableBuilder<'_>, state: &FirewallState) {
    t.replace_table();
    let bridges = state.subnets.iter().map(|s| string(&s.bridge)).collect();
    t.set(BRIDGES, SetType::Ifname, false, bridges);
    let egress: Vec<_> = state
        .subnets
        .iter()
        .filter(|s| s.egress)
        .map(|s| prefix(s.subnet.net()))
        .collect();
    let any_egress = !egress.is_empty();
    t.set(EGRESS, SetType::Ipv4Addr, true, egress);
    for g in &state.groups {
        let members = state
            .tasks
            .iter()
            .filter(|task| task.groups.contains(&g.id))
            .map(|task| ip(task.ip))
            .collect();
        t.set(&members_set(&g.id), SetType::Ipv4Addr, false, members);
    }

    let not_ours = || {
        vec![
            ne(meta(MetaKey::Iifname), set_ref(BRIDGES)),
            ne(meta(MetaKey::Oifname), set_ref(BRIDGES)),
            accept(),
        ]
    };
    let established = || {
        vec![
            is_in(ct_state(), list(&["established", "related"])),
            accept(),
        ]
    };

    t.base_chain("forward", NfChainType::Filter, NfHook::Forward, 0);
    t.chain("from_task");
    t.chain("egress");
    t.chain("to_task");
    t.rule("forward", Some("not Berth's"), not_ours());
    t.rule("forward", Some("replies"), established());
    t.rule(
        "forward",
        None,
        vec![eq(ct_state(), string("invalid")), drop()],
    );
    t.rule(
        "forward",
        Some("what the sender's groups let out"),
        vec![eq(meta(MetaKey::Iifname), set_ref(BRIDGES)), jump("from_task")],
    );
    t.rule(
        "forward",
        Some("a task to elsewhere"),
        vec![ne(meta(MetaKey::Oifname), set_ref(BRIDGES)), jump("egress")],
    );
    if !state.published.is_empty() {
        t.rule(
            "forward",
            Some("to a published port: the task's groups decide"),
            vec![
                ne(meta(MetaKey::Iifname), set_ref(BRIDGES)),
                is_in(ct_status(), list(&["dnat"])),
                jump("to_task"),
            ],
        );
    }
    t.rule(
        "forward",
        Some("elsewhere to a task"),
        vec![ne(meta(MetaKey::Iifname), set_ref(BRIDGES)), drop()],
    );
    t.rule("forward", Some("task to task"), vec![jump("to_task")]);
    t.rule(
        "egress",
        Some("subnets with egress"),
        vec![eq(payload("ip", "saddr"), set_ref(EGRESS)), accept()],
    );
    t.rule("egress", None, vec![drop()]);

    // A group's egress rules, each behind its membership: `return` goes on
    // to the checks after (the subnet's switch, the receiver's groups).
    for g in &state.groups {
        for rule in &g.egress {
            let mut stmts = vec![eq(payload("ip", "saddr"), set_ref(&members_set(&g.id)))];
            stmts.extend(rule_match(rule, "daddr"));
            stmts.push(ret());
            t.rule("from_task", Some("a group's egress rule"), stmts);
        }
    }
    t.rule("from_task", Some("no group of the sender lets it out"), vec![drop()]);

    for g in &state.groups {
        let chain = group_chain(&g.id);
        t.chain(&chain);
        for rule in &g.ingress {
            t.rule(&chain, None, rule_statements(rule));
        }
    }
    // A destination's groups are the members sets it is in: a task only
    // ever adds or removes set elements (see `render_changes`).
    for g in &state.groups {
        t.rule(
            "to_task",
            Some("the destination is in this group"),
            vec![eq(payload("ip", "daddr"), set_ref(&members_set(&g.id))), jump(&group_chain(&g.id))],
        );
    }
    t.rule("to_task", Some("no group allows it"), vec![drop()]);

    t.base_chain("input", NfChainType::Filter, NfHook::Input, 0);
    t.rule(
        "input",
        Some("not from a task"),
        vec![ne(meta(MetaKey::Iifname), set_ref(BRIDGES)), accept()],
    );
    t.rule("input", Some("replies"), established());
    for svc in &state.host_services {
        let l4 = match svc.transport {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        };
        t.rule(
            "input",
            Some("host service"),
            vec![
                eq(payload("ip", "daddr"), ip(svc.addr)),
                eq(payload(l4, "dport"), ports(svc.port, svc.port)),
                accept(),
            ],
        );
    }
    t.rule(
        "input",
        Some("tasks reach no other host service"),
        vec![drop()],
    );

    if !state.published.is_empty() || !state.link_local.is_empty() {
        t.base_chain("prerouting", NfChainType::NAT, NfHook::Prerouting, -100);
    }
    // A task's connection to a link-local service goes to its own subnet's
    // gateway (a local address: it never leaves the machine).
    for svc in &state.link_local {
        for s in &state.subnets {
            t.rule(
                "prerouting",
                Some("link-local service"),
                vec![
                    eq(meta(MetaKey::Iifname), string(&s.bridge)),
                    eq(payload("ip", "daddr"), ip(svc.addr)),
                    eq(payload("tcp", "dport"), ports(svc.port, svc.port)),
                    dnat(s.subnet.gateway(), svc.gateway_port),
                ],
            );
        }
    }
    if !state.published.is_empty() {
        // Connections from elsewhere (prerouting) and from the host itself
        // (output) to a published address and port go to the task.
        t.base_chain("output", NfChainType::NAT, NfHook::Output, -100);
        for chain in ["prerouting", "output"] {
            for p in &state.published {
                let l4 = match p.transport {
                    Transport::Tcp => "tcp",
                    Transport::Udp => "udp",
                };
                t.rule(
                    chain,
                    Some("published port"),
                    vec![
                        eq(payload("ip", "daddr"), ip(p.host_addr)),
                        eq(payload(l4, "dport"), ports(p.host_port, p.host_port)),
                        dnat(p.task_ip, p.task_port),
                    ],
                );
            }
        }
    }

    if any_egress {
        t.base_chain("postrouting", NfChainType::NAT, NfHook::Postrouting, 100);
        t.rule(
            "postrouting",
            Some("egress"),
            vec![
                eq(payload("ip", "saddr"), set_ref(EGRESS)),
                ne(meta(MetaKey::Oifname), set_ref(BRIDGES)),
                masquerade(),
            ],
        );
    }
}

/// The match of one ingress rule, ending in accept.
fn rule_statements(rule: &Rule) -> Vec<Stmt> {
    let mut stmts = rule_match(rule, "saddr");
    stmts.push(accept());
    stmts
}

/// The match of a rule, its peer being the packet's `field` (`saddr` for
/// ingress, `daddr` for egress).
fn rule_match(rule: &Rule, field: &'static str) -> Vec<Stmt> {
    let mut stmts = Vec::new();
    match &rule.source {
        Source::Cidr(net) if net.prefix_len() == 0 => {}
        Source::Cidr(net) => stmts.push(eq(payload("ip", field), prefix(net.trunc()))),
        Source::Group(id) => stmts.push(eq(payload("ip", field), set_ref(&members_set(id)))),
    }
    match rule.protocol {
        Protocol::Tcp => stmts.push(eq(
            payload("tcp", "dport"),
            ports(rule.from_port, rule.to_port),
        )),
        Protocol::Udp => stmts.push(eq(
            payload("udp", "dport"),
            ports(rule.from_port, rule.to_port),
        )),
        Protocol::Icmp => stmts.push(eq(meta(MetaKey::L4proto), string("icmp"))),
        Protocol::All => {}
    }
    stmts
}

fn bridge(t: &mut TableBuilder<'_>, state: &FirewallState) {
    t.replace_table();
    t.set(TASK_PORTS, SetType::Ifname, false, task_ports(state));
    t.set_concat(PORT_IDS, &[SetType::Ifname, SetType::EtherAddr, SetType::Ipv4Addr], port_ids(state));
    t.set_concat(
        ARP_IDS,
        &[SetType::Ifname, SetType::EtherAddr, SetType::EtherAddr, SetType::Ipv4Addr],
        arp_ids(state),
    );
    t.base_chain("prerouting", NfChainType::Filter, NfHook::Prerouting, -200);
    t.chain("task_port");
    t.rule(
        "prerouting",
        Some("frames from task ports"),
        vec![eq(meta(MetaKey::Iifname), set_ref(TASK_PORTS)), jump("task_port")],
    );
    t.rule(
        "task_port",
        Some("IPv4 from the port's own MAC and address"),
        vec![
            eq(concat(vec![meta(MetaKey::Iifname), payload("ether", "saddr"), payload("ip", "saddr")]), set_ref(PORT_IDS)),
            accept(),
        ],
    );
    t.rule(
        "task_port",
        Some("ARP for the port's own MAC and address"),
        vec![
            eq(
                concat(vec![
                    meta(MetaKey::Iifname),
                    payload("ether", "saddr"),
                    payload("arp", "saddr ether"),
                    payload("arp", "saddr ip"),
                ]),
                set_ref(ARP_IDS),
            ),
            accept(),
        ],
    );
    t.rule("task_port", Some("spoofed, IPv6 or not IP"), vec![drop()]);
}

/// The bridge table's set of task ports.
const TASK_PORTS: &str = "task_ports";
/// (port, MAC, IPv4) a task port may send IPv4 from.
const PORT_IDS: &str = "port_ids";
/// (port, frame MAC, ARP sender MAC, ARP sender IPv4) a port may send ARP as.
const ARP_IDS: &str = "arp_ids";

fn task_ports(state: &FirewallState) -> Vec<Expr> {
    state.tasks.iter().map(|t| string(&t.host_veth)).collect()
}

fn port_ids(state: &FirewallState) -> Vec<Expr> {
    state.tasks.iter().map(|t| concat(vec![string(&t.host_veth), string(t.mac), ip(t.ip)])).collect()
}

fn arp_ids(state: &FirewallState) -> Vec<Expr> {
    state.tasks.iter().map(|t| concat(vec![string(&t.host_veth), string(t.mac), string(t.mac), ip(t.ip)])).collect()
}

/// Whether two states differ only in their tasks (who is attached, in
/// which groups): then [`render_changes`] can move from one to the other.
fn same_structure(a: &FirewallState, b: &FirewallState) -> bool {
    a.subnets == b.subnets && a.groups == b.groups && a.host_services == b.host_services
        && a.published == b.published
        && a.link_local == b.link_local
}

/// The commands that turn the kernel's rules for `from` into those for
/// `to` by adding and deleting set elements only (no table is replaced,
/// so the kernel commits at once), or `None` when more than tasks changed.
pub(crate) fn render_changes(table: &str, from: &FirewallState, to: &FirewallState) -> Option<Nftables<'static>> {
    if !same_structure(from, to) {
        return None;
    }
    let mut batch = Batch::new();
    let mut element = |family: NfFamily, set: &str, old: Vec<Expr>, new: Vec<Expr>| {
        let (gone, came) = diff(old, new);
        let obj = |elem: Vec<Expr>| {
            NfListObject::Element(Element { family, table: table.to_string().into(), name: set.to_string().into(), elem: Cow::Owned(elem) })
        };
        if !gone.is_empty() {
            batch.delete(obj(gone));
        }
        if !came.is_empty() {
            batch.add(obj(came));
        }
    };
    for g in &to.groups {
        let members = |s: &FirewallState| -> Vec<Expr> {
            s.tasks.iter().filter(|t| t.groups.contains(&g.id)).map(|t| ip(t.ip)).collect()
        };
        element(NfFamily::INet, &members_set(&g.id), members(from), members(to));
    }
    element(NfFamily::Bridge, TASK_PORTS, task_ports(from), task_ports(to));
    element(NfFamily::Bridge, PORT_IDS, port_ids(from), port_ids(to));
    element(NfFamily::Bridge, ARP_IDS, arp_ids(from), arp_ids(to));
    Some(batch.to_nftables())
}

/// (in `old` only, in `new` only), each without repeats.
fn diff(old: Vec<Expr>, new: Vec<Expr>) -> (Vec<Expr>, Vec<Expr>) {
    let key = |e: &Expr| serde_json::to_string(e).unwrap_or_default();
    let old_keys: BTreeSet<String> = old.iter().map(key).collect();
    let new_keys: BTreeSet<String> = new.iter().map(key).collect();
    let mut seen = BTreeSet::new();
    let gone = old.into_iter().filter(|e| !new_keys.contains(&key(e)) && seen.insert(key(e))).collect();
    let mut seen = BTreeSet::new();
    let came = new.into_iter().filter(|e| !old_keys.contains(&key(e)) && seen.insert(key(e))).collect();
    (gone, came)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::{Value, json};

    use super::*;
    use crate::firewall::model::{HostService, SecurityGroup, SubnetPolicy, TaskPolicy};
    use crate::{BridgeName, mac_for};

    fn task(ip: &str, veth: &str, groups: &[&str]) -> TaskPolicy {
        let ip = ip.parse().unwrap();
        TaskPolicy {
            ip,
            host_veth: veth.into(),
            mac: mac_for(ip),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn state() -> FirewallState {
        FirewallState {
            subnets: vec![SubnetPolicy {
                bridge: BridgeName::new("berthtest").unwrap(),
                subnet: "10.250.9.0/24".parse().unwrap(),
                egress: false,
            }],
            groups: vec![
                SecurityGroup::default_group("sg-default"),
                SecurityGroup {
                    id: "sg-web".into(),
                    ingress: vec![
                        Rule::tcp(80, 80, Source::Cidr("0.0.0.0/0".parse().unwrap())),
                        Rule::tcp(8000, 8099, Source::Group("sg-default".into())),
                        Rule::udp(53, 53, Source::Cidr("10.250.9.7/24".parse().unwrap())),
                        Rule::icmp(Source::Group("sg-web".into())),
                    ],
                    egress: vec![Rule::tcp(443, 443, Source::Cidr("10.0.0.0/8".parse().unwrap()))],
                },
            ],
            tasks: vec![
                task("10.250.9.2", "bva", &["sg-default"]),
                task("10.250.9.3", "bvb", &["sg-web", "sg-default", "sg-web"]),
            ],
            host_services: vec![HostService::tcp("10.250.9.1".parse().unwrap(), 51679)],
            published: vec![],
            link_local: vec![],
        }
    }

    /// The rendered commands as JSON.
    fn commands(state: &FirewallState) -> Vec<Value> {
        state.validate().unwrap();
        let v = serde_json::to_value(render("bt", state)).unwrap();
        v["nftables"].as_array().unwrap().clone()
    }

    /// The `expr` of every rule of `chain` in `family`, in order.
    fn rules(cmds: &[Value], family: &str, chain: &str) -> Vec<Value> {
        cmds.iter()
            .filter_map(|c| c["add"]["rule"].as_object())
            .filter(|r| r["family"] == family && r["chain"] == chain)
            .map(|r| r["expr"].clone())
            .collect()
    }

    fn object(cmds: &[Value], kind: &str, family: &str, name: &str) -> Option<Value> {
        cmds.iter()
            .map(|c| c["add"][kind].clone())
            .find(|o| o["family"] == family && o["name"] == name)
    }

    #[test]
    fn both_tables_are_replaced_in_one_batch() {
        let cmds = commands(&state());
        let head: Vec<_> = cmds.iter().take(3).cloned().collect();
        let t = json!({"family": "inet", "name": "bt"});
        assert_eq!(
            head,
            vec![
                json!({"add": {"table": t}}),
                json!({"delete": {"table": t}}),
                json!({"add": {"table": t}})
            ]
        );
        let bridge_table = json!({"table": {"family": "bridge", "name": "bt"}});
        assert!(cmds.contains(&json!({"delete": bridge_table})));
        // Nothing outside the two tables.
        for c in &cmds {
            let obj = c
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap();
            let table = obj.get("table").or(obj.get("name")).unwrap();
            assert_eq!(table, "bt", "{c}");
        }
    }

    #[test]
    fn membership_becomes_sets_and_rules_become_chains() {
        let cmds = commands(&state());
        assert_eq!(
            object(&cmds, "set", "inet", "bridges").unwrap()["elem"],
            json!(["berthtest"])
        );
        assert_eq!(
            object(&cmds, "set", "inet", "members_sg-default").unwrap()["elem"],
            json!(["10.250.9.2", "10.250.9.3"])
        );
        assert_eq!(
            object(&cmds, "set", "inet", "members_sg-web").unwrap()["elem"],
            json!(["10.250.9.3"])
        );
        let ip = |f: &str| json!({"payload": {"protocol": "ip", "field": f}});
        let dport = |p: &str| json!({"payload": {"protocol": p, "field": "dport"}});
        assert_eq!(
            rules(&cmds, "inet", "sg-web"),
            vec![
                json!([{"match": {"op": "==", "left": dport("tcp"), "right": 80}}, {"accept": null}]),
                json!([
                    {"match": {"op": "==", "left": ip("saddr"), "right": "@members_sg-default"}},
                    {"match": {"op": "==", "left": dport("tcp"), "right": {"range": [8000, 8099]}}},
                    {"accept": null}
                ]),
                json!([
                    {"match": {"op": "==", "left": ip("saddr"), "right": {"prefix": {"addr": "10.250.9.0", "len": 24}}}},
                    {"match": {"op": "==", "left": dport("udp"), "right": 53}},
                    {"accept": null}
                ]),
                json!([
                    {"match": {"op": "==", "left": ip("saddr"), "right": "@members_sg-web"}},
                    {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "icmp"}},
                    {"accept": null}
                ]),
            ]
        );
        assert_eq!(
            rules(&cmds, "inet", "sg-default"),
            vec![
                json!([{"match": {"op": "==", "left": ip("saddr"), "right": "@members_sg-default"}}, {"accept": null}])
            ]
        );
        // A destination's groups decide, in group order; then drop.
        let to_task = rules(&cmds, "inet", "to_task");
        assert_eq!(
            to_task[0],
            json!([
                {"match": {"op": "==", "left": ip("daddr"), "right": "@members_sg-default"}},
                {"jump": {"target": "sg-default"}}
            ])
        );
        assert_eq!(to_task[1][1], json!({"jump": {"target": "sg-web"}}));
        assert_eq!(to_task[2], json!([{"drop": null}]), "no group allows it: drop");
    }

    #[test]
    fn forward_and_input_fence_tasks_in() {
        let cmds = commands(&state());
        let forward = rules(&cmds, "inet", "forward");
        assert_eq!(forward.len(), 7);
        assert_eq!(
            forward[1][0]["match"]["right"],
            json!(["established", "related"])
        );
        assert_eq!(forward[3][1], json!({"jump": {"target": "from_task"}}));
        assert_eq!(forward[4][1], json!({"jump": {"target": "egress"}}));
        assert_eq!(forward[5][1], json!({"drop": null}));
        // Without egress the egress chain only drops (the set is empty) and
        // there is no NAT at all.
        assert_eq!(
            object(&cmds, "set", "inet", "egress").unwrap().get("elem"),
            None
        );
        assert_eq!(
            rules(&cmds, "inet", "egress").last().unwrap(),
            &json!([{"drop": null}])
        );
        assert!(object(&cmds, "chain", "inet", "postrouting").is_none());
        let input = rules(&cmds, "inet", "input");
        assert_eq!(input.len(), 4);
        assert_eq!(
            input[2],
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.250.9.1"}},
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 51679}},
                {"accept": null}
            ])
        );
        assert_eq!(input[3], json!([{"drop": null}]));
        let chain = object(&cmds, "chain", "inet", "forward").unwrap();
        assert_eq!(
            (chain["hook"].clone(), chain["policy"].clone()),
            (json!("forward"), json!("accept"))
        );
    }

    #[test]
    fn a_groups_egress_rules_guard_what_its_members_send() {
        let cmds = commands(&state());
        let from_task = rules(&cmds, "inet", "from_task");
        // sg-default's everywhere rule, sg-web's one TCP rule, then drop.
        assert_eq!(from_task.len(), 3);
        assert_eq!(
            from_task[0],
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@members_sg-default"}},
                {"return": null}
            ])
        );
        assert_eq!(
            from_task[1],
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@members_sg-web"}},
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}},
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 443}},
                {"return": null}
            ])
        );
        assert_eq!(from_task[2], json!([{"drop": null}]));
    }

    #[test]
    fn egress_adds_the_subnet_and_masquerade() {
        let mut s = state();
        s.subnets[0].egress = true;
        let cmds = commands(&s);
        assert_eq!(
            object(&cmds, "set", "inet", "egress").unwrap()["elem"],
            json!([{"prefix": {"addr": "10.250.9.0", "len": 24}}])
        );
        let post = rules(&cmds, "inet", "postrouting");
        assert_eq!(post.len(), 1);
        assert_eq!(post[0][2], json!({"masquerade": null}));
        let chain = object(&cmds, "chain", "inet", "postrouting").unwrap();
        assert_eq!(
            (chain["type"].clone(), chain["prio"].clone()),
            (json!("nat"), json!(100))
        );
    }

    #[test]
    fn task_ports_only_pass_their_own_addresses() {
        let cmds = commands(&state());
        assert_eq!(object(&cmds, "set", "bridge", "task_ports").unwrap()["elem"], json!(["bva", "bvb"]));
        assert_eq!(
            object(&cmds, "set", "bridge", "port_ids").unwrap()["elem"][0],
            json!({"concat": ["bva", "02:be:0a:fa:09:02", "10.250.9.2"]})
        );
        assert_eq!(
            object(&cmds, "set", "bridge", "arp_ids").unwrap()["elem"][1],
            json!({"concat": ["bvb", "02:be:0a:fa:09:03", "02:be:0a:fa:09:03", "10.250.9.3"]})
        );
        let port = rules(&cmds, "bridge", "task_port");
        assert_eq!(port.len(), 3);
        assert_eq!(port[0][0]["match"]["right"], "@port_ids");
        assert_eq!(port[1][0]["match"]["right"], "@arp_ids");
        assert_eq!(port[2], json!([{"drop": null}]));
        let pre = rules(&cmds, "bridge", "prerouting");
        assert_eq!(pre[0][1], json!({"jump": {"target": "task_port"}}));
    }

    #[test]
    fn a_change_of_tasks_only_is_element_adds_and_deletes() {
        let from = state();
        let mut to = state();
        to.tasks.remove(0);
        to.tasks.push(task("10.250.9.4", "bvc", &["sg-web"]));
        let cmds: Vec<Value> = serde_json::to_value(render_changes("bt", &from, &to).expect("only tasks changed"))
            .unwrap()["nftables"]
            .as_array()
            .unwrap()
            .clone();
        assert!(cmds.iter().all(|c| c["add"]["element"].is_object() || c["delete"]["element"].is_object()), "{cmds:?}");
        let elements = |verb: &str, set: &str| -> Vec<Value> {
            cmds.iter()
                .filter(|c| c[verb]["element"]["name"] == set)
                .flat_map(|c| c[verb]["element"]["elem"].as_array().cloned().unwrap_or_default())
                .collect()
        };
        assert_eq!(elements("delete", "members_sg-default"), [json!("10.250.9.2")]);
        assert_eq!(elements("add", "members_sg-web"), [json!("10.250.9.4")]);
        assert!(elements("add", "members_sg-default").is_empty(), "10.250.9.3 stays");
        assert_eq!(elements("delete", "task_ports"), [json!("bva")]);
        assert_eq!(elements("add", "task_ports"), [json!("bvc")]);
        assert_eq!(elements("add", "port_ids"), [json!({"concat": ["bvc", "02:be:0a:fa:09:04", "10.250.9.4"]})]);
        // Nothing changed: nothing to do. A group changed: not elements only.
        assert!(serde_json::to_value(render_changes("bt", &from, &from).unwrap()).unwrap()["nftables"].as_array().unwrap().is_empty());
        let mut regrouped = state();
        regrouped.groups[1].ingress.pop();
        assert!(render_changes("bt", &from, &regrouped).is_none());
    }

    #[test]
    fn published_ports_are_dnat_in_prerouting_and_output_and_pass_the_tasks_groups() {
        let mut st = state();
        st.published.push(crate::PublishedPort {
            transport: Transport::Tcp,
            host_addr: "10.251.0.1".parse().unwrap(),
            host_port: 8080,
            task_ip: "10.250.9.3".parse().unwrap(),
            task_port: 80,
        });
        st.validate().unwrap();
        let cmds = commands(&st);
        for chain in ["prerouting", "output"] {
            let r = rules(&cmds, "inet", chain);
            assert_eq!(r.len(), 1, "{chain}: {r:?}");
            let dnat = &r[0][2]["dnat"];
            assert_eq!((dnat["addr"].as_str(), dnat["port"].as_u64()), (Some("10.250.9.3"), Some(80)), "{r:?}");
        }
        let fwd = rules(&cmds, "inet", "forward");
        let i_dnat = fwd.iter().position(|r| r.to_string().contains("\"dnat\"")).expect("a dnat rule in forward");
        let i_drop = fwd.iter().position(|r| r.to_string().contains("drop") && r.to_string().contains("iifname")).unwrap();
        assert!(i_dnat < i_drop, "published traffic reaches to_task before the drop of outside traffic");
        // Without published ports there are no NAT chains at all.
        assert!(rules(&commands(&state()), "inet", "prerouting").is_empty());
        // One address and port, one task.
        let mut twice = st.clone();
        twice.published.push(twice.published[0]);
        assert!(twice.validate().is_err());
    }

    #[test]
    fn link_local_services_are_dnat_to_each_subnets_gateway_from_its_bridge_only() {
        let mut st = state();
        st.link_local.push(crate::LinkLocalService { addr: "169.254.170.2".parse().unwrap(), port: 80, gateway_port: 51679 });
        st.validate().unwrap();
        let cmds = commands(&st);
        let r = rules(&cmds, "inet", "prerouting");
        assert_eq!(r.len(), 1, "{r:?}");
        let text = r[0].to_string();
        assert!(text.contains("\"iifname\"") && text.contains("berthtest") && text.contains("169.254.170.2"), "{text}");
        let dnat = &r[0][3]["dnat"];
        assert_eq!((dnat["addr"].as_str(), dnat["port"].as_u64()), (Some("10.250.9.1"), Some(51679)), "{r:?}");
        assert!(rules(&cmds, "inet", "output").is_empty(), "the host's own traffic is not redirected");
        assert!(render_changes("bt", &state(), &st).is_none(), "a new redirect replaces the tables");
    }

    #[test]
    fn an_empty_state_renders_tables_that_govern_nothing() {
        let cmds = commands(&FirewallState::default());
        assert!(
            rules(&cmds, "inet", "to_task")
                .iter()
                .all(|r| r == &json!([{"drop": null}]))
        );
        // The bridge table's rules match no port: its sets are empty.
        assert_eq!(object(&cmds, "set", "bridge", "task_ports").unwrap().get("elem"), None);
        assert_eq!(
            object(&cmds, "set", "inet", "bridges").unwrap().get("elem"),
            None
        );
    }
}
