//! ELBv2's records as the data plane's configuration, pure: one load
//! balancer node (its address in one subnet) with its listeners, their
//! rules, and the target groups they forward to, with their targets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, UNIX_EPOCH};

use berth_lb as lb;
use berth_model::elb::{self, LoadBalancer, Protocol, RegisteredTarget, Rule, TargetGroup};

/// What the node of a load balancer needs from the records.
pub struct Records<'a> {
    pub load_balancer: &'a LoadBalancer,
    pub listeners: Vec<&'a elb::Listener>,
    /// Rules of those listeners (the default rule included).
    pub rules: Vec<&'a Rule>,
    pub target_groups: &'a BTreeMap<String, TargetGroup>,
    pub targets: &'a BTreeMap<String, Vec<RegisteredTarget>>,
    /// Certificates by ARN: chain (leaf first) and key, in PEM.
    pub certificates: &'a BTreeMap<String, lb::Certificate>,
}

/// The data plane's configuration of the node at `address`, and what
/// could not be configured (a certificate that is gone, a listener
/// without a default action), for the log.
pub fn node_config(r: &Records<'_>, address: Ipv4Addr) -> (lb::Config, Vec<String>) {
    let mut problems = Vec::new();
    let idle = r
        .load_balancer
        .attributes
        .get("idle_timeout.timeout_seconds")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs);
    let mut listeners = Vec::new();
    let mut used = BTreeSet::new();
    for l in &r.listeners {
        let protocol = match l.protocol {
            Protocol::Http => lb::ListenerProtocol::Http,
            Protocol::Tcp => lb::ListenerProtocol::Tcp,
            Protocol::Https => {
                let certificates: Vec<lb::Certificate> =
                    l.certificates.iter().filter_map(|arn| r.certificates.get(arn).cloned()).collect();
                if certificates.len() != l.certificates.len() || certificates.is_empty() {
                    problems.push(format!("listener {}: a certificate is missing", l.arn));
                    continue;
                }
                lb::ListenerProtocol::Https { certificates }
            }
        };
        let mut rules = Vec::new();
        let mut default_action = None;
        for rule in r.rules.iter().filter(|x| x.listener_arn == l.arn) {
            let Some(action) = terminal(&rule.actions) else { continue };
            match rule.priority {
                None => default_action = Some(action),
                Some(priority) => {
                    rules.push(lb::Rule { priority, conditions: rule.conditions.iter().map(condition).collect(), action })
                }
            }
        }
        let default_action = default_action.or_else(|| terminal(&l.default_actions));
        let Some(default_action) = default_action else {
            problems.push(format!("listener {}: no default action", l.arn));
            continue;
        };
        for a in rules.iter().map(|x| &x.action).chain([&default_action]) {
            used.extend(a.groups().map(str::to_owned));
        }
        listeners.push(lb::ListenerConfig {
            id: l.arn.clone(),
            bind: SocketAddr::new(IpAddr::V4(address), l.port),
            protocol,
            idle_timeout: idle,
            rules,
            default_action,
        });
    }
    let target_groups = used
        .iter()
        .filter_map(|arn| r.target_groups.get(arn))
        .map(|tg| target_group(tg, r.targets.get(&tg.arn).map(Vec::as_slice).unwrap_or_default()))
        .collect();
    (lb::Config { listeners, target_groups }, problems)
}

/// The action a request ends in (ELBv2's actions are in `order`; the last
/// is the one that answers).
fn terminal(actions: &[elb::Action]) -> Option<lb::Action> {
    let mut sorted: Vec<&elb::Action> = actions.iter().collect();
    sorted.sort_by_key(|a| order(a).unwrap_or(i32::MAX));
    sorted.last().map(|a| action(a))
}

fn order(a: &elb::Action) -> Option<i32> {
    match a {
        elb::Action::Forward { order, .. } | elb::Action::FixedResponse { order, .. } | elb::Action::Redirect { order, .. } => {
            *order
        }
    }
}

fn action(a: &elb::Action) -> lb::Action {
    match a {
        elb::Action::Forward { groups, stickiness_seconds, .. } => lb::Action::Forward(lb::Forward {
            target_groups: groups
                .iter()
                .map(|g| lb::WeightedGroup { id: g.target_group_arn.clone(), weight: g.weight })
                .collect(),
            group_stickiness: stickiness_seconds.map(|s| Duration::from_secs(u64::from(s))),
        }),
        elb::Action::FixedResponse { status_code, content_type, message_body, .. } => {
            lb::Action::FixedResponse(lb::FixedResponse {
                status: status_code.parse().unwrap_or(503),
                content_type: content_type.clone(),
                body: message_body.clone().unwrap_or_default(),
            })
        }
        elb::Action::Redirect { protocol, port, host, path, query, status_code, .. } => lb::Action::Redirect(lb::Redirect {
            protocol: protocol.clone(),
            host: host.clone(),
            port: port.clone(),
            path: path.clone(),
            query: query.clone(),
            permanent: status_code == "HTTP_301",
        }),
    }
}

fn condition(c: &elb::Condition) -> lb::Condition {
    match c {
        elb::Condition::PathPattern { values } => lb::Condition::PathPattern(values.clone()),
        elb::Condition::HostHeader { values } => lb::Condition::HostHeader(values.clone()),
        elb::Condition::HttpHeader { name, values } => {
            lb::Condition::HttpHeader { name: name.clone(), values: values.clone() }
        }
        elb::Condition::HttpRequestMethod { values } => lb::Condition::HttpRequestMethod(values.clone()),
        elb::Condition::QueryString { values } => lb::Condition::QueryString(
            values.iter().map(|(key, value)| lb::QueryPair { key: key.clone(), value: value.clone() }).collect(),
        ),
        elb::Condition::SourceIp { values } => {
            lb::Condition::SourceIp(values.iter().map(|n| ipnet::IpNet::V4(*n)).collect())
        }
    }
}

fn target_group(tg: &TargetGroup, targets: &[RegisteredTarget]) -> lb::TargetGroupConfig {
    let attr = |k: &str| tg.attributes.get(k).map(String::as_str);
    let secs = |k: &str| attr(k).and_then(|v| v.parse::<u64>().ok()).map(Duration::from_secs);
    let protocol = match tg.protocol {
        Protocol::Https => lb::TargetProtocol::Https,
        Protocol::Http => lb::TargetProtocol::Http,
        Protocol::Tcp => lb::TargetProtocol::Tcp,
    };
    let hc = &tg.health_check;
    let health_check = lb::HealthCheck {
        protocol: match hc.protocol {
            Protocol::Http => lb::HealthCheckProtocol::Http,
            Protocol::Https => lb::HealthCheckProtocol::Https,
            Protocol::Tcp => lb::HealthCheckProtocol::Tcp,
        },
        path: hc.path.clone().unwrap_or_else(|| "/".into()),
        port: match hc.port {
            elb::HealthCheckPort::TrafficPort => lb::HealthCheckPort::TrafficPort,
            elb::HealthCheckPort::Port(p) => lb::HealthCheckPort::Port(p),
        },
        interval: Duration::from_secs(u64::from(hc.interval_seconds)),
        timeout: Duration::from_secs(u64::from(hc.timeout_seconds)),
        healthy_threshold: hc.healthy_threshold,
        unhealthy_threshold: hc.unhealthy_threshold,
        matcher: hc.matcher.as_deref().and_then(|m| lb::Matcher::parse(m).ok()).unwrap_or_else(lb::Matcher::ok),
    };
    let algorithm = match attr("load_balancing.algorithm.type") {
        Some("least_outstanding_requests") => lb::Algorithm::LeastOutstandingRequests,
        _ => lb::Algorithm::RoundRobin,
    };
    let sticky = attr("stickiness.enabled") == Some("true") && attr("stickiness.type").is_none_or(|t| t == "lb_cookie");
    lb::TargetGroupConfig {
        id: tg.arn.clone(),
        protocol,
        health_check,
        algorithm,
        slow_start: secs("slow_start.duration_seconds").unwrap_or_default(),
        deregistration_delay: Duration::from_secs(u64::from(tg.deregistration_delay())),
        stickiness: if sticky {
            Some(secs("stickiness.lb_cookie.duration_seconds").unwrap_or(Duration::from_secs(86_400)))
        } else {
            None
        },
        targets: targets
            .iter()
            .map(|t| lb::Target {
                addr: SocketAddr::new(IpAddr::V4(t.id), t.port),
                draining_until: t.draining_until.map(|at| UNIX_EPOCH + Duration::from_secs_f64(at.max(0.0))),
            })
            .collect(),
    }
}
