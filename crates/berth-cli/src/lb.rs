//! `berth lb ls|describe|targets`: load balancers, their listeners and
//! rules, and target groups' targets with their health, as ELBv2 answers
//! them (DescribeLoadBalancers, DescribeListeners, DescribeRules,
//! DescribeTargetGroups, DescribeTargetHealth over AWS Query), readable
//! without a JSON tool. `--output json` prints the same as JSON objects.

use anyhow::bail;
use serde_json::{Value, json};

use crate::client::{Client, ClientArgs, Output};
use crate::image::print_table;
use crate::xml::Element;

const ELBV2: &str = "elasticloadbalancing";

#[derive(Debug, clap::Args)]
pub struct LbArgs {
    #[command(subcommand)]
    command: LbCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, clap::Subcommand)]
enum LbCommand {
    /// Lists the load balancers: type, scheme, state, DNS name, addresses.
    #[command(alias = "list")]
    Ls,
    /// One load balancer: its nodes, listeners and rules.
    Describe {
        /// The load balancer's name or ARN.
        name: String,
    },
    /// A target group's targets and their health.
    Targets {
        /// The target group's name or ARN.
        target_group: String,
    },
}

pub async fn run(args: LbArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let output = args.client.output;
    match args.command {
        LbCommand::Ls => {
            let lbs = all(&client, "DescribeLoadBalancers", &[], &["LoadBalancers"]).await?;
            match output {
                Output::Json => print(&json!({ "loadBalancers": lbs.iter().map(load_balancer).collect::<Vec<_>>() })),
                Output::Table => {
                    let rows: Vec<[String; 6]> = lbs
                        .iter()
                        .map(|l| {
                            [
                                l.text_at(&["LoadBalancerName"]),
                                l.text_at(&["Type"]),
                                l.text_at(&["Scheme"]),
                                l.text_at(&["State", "Code"]),
                                l.text_at(&["DNSName"]),
                                addresses(l).join(","),
                            ]
                        })
                        .collect();
                    print_table(&["NAME", "TYPE", "SCHEME", "STATE", "DNS NAME", "SUBNETS"], &rows);
                    Ok(())
                }
            }
        }
        LbCommand::Describe { name } => {
            let key = if name.starts_with("arn:") { "LoadBalancerArns.member.1" } else { "Names.member.1" };
            let lbs = all(&client, "DescribeLoadBalancers", &[(key, name.clone())], &["LoadBalancers"]).await?;
            let Some(lb) = lbs.first() else { bail!("no load balancer {name}; `berth lb ls` lists them") };
            let arn = lb.text_at(&["LoadBalancerArn"]);
            let listeners = all(&client, "DescribeListeners", &[("LoadBalancerArn", arn.clone())], &["Listeners"]).await?;
            let mut rules = Vec::new();
            for l in &listeners {
                let of = all(&client, "DescribeRules", &[("ListenerArn", l.text_at(&["ListenerArn"]))], &["Rules"]).await?;
                rules.push(of);
            }
            match output {
                Output::Json => {
                    let listeners: Vec<Value> = listeners
                        .iter()
                        .zip(&rules)
                        .map(|(l, r)| {
                            let mut v = listener(l);
                            v["rules"] = r.iter().map(rule).collect();
                            v
                        })
                        .collect();
                    let mut v = load_balancer(lb);
                    v["listeners"] = Value::Array(listeners);
                    print(&v)
                }
                Output::Table => {
                    let v = load_balancer(lb);
                    for (k, label) in [("name", "Name"), ("arn", "ARN"), ("type", "Type"), ("scheme", "Scheme"), ("state", "State"), ("dnsName", "DNS name")] {
                        println!("{label:<16}{}", v[k].as_str().unwrap_or(""));
                    }
                    println!("{:<16}{}", "Security groups", lb.members(&["SecurityGroups"]).iter().map(|m| m.text.clone()).collect::<Vec<_>>().join(", "));
                    println!("{:<16}{}", "Subnets", addresses(lb).join(", "));
                    for (l, r) in listeners.iter().zip(&rules) {
                        println!();
                        println!("Listener {}:{}  {}", l.text_at(&["Protocol"]), l.text_at(&["Port"]), l.text_at(&["ListenerArn"]));
                        let rows: Vec<[String; 3]> =
                            r.iter().map(|x| [x.text_at(&["Priority"]), conditions(x), actions(x.members(&["Actions"]))]).collect();
                        print_table(&["PRIORITY", "CONDITIONS", "ACTIONS"], &rows);
                    }
                    Ok(())
                }
            }
        }
        LbCommand::Targets { target_group } => {
            let key = if target_group.starts_with("arn:") { "TargetGroupArns.member.1" } else { "Names.member.1" };
            let groups = all(&client, "DescribeTargetGroups", &[(key, target_group.clone())], &["TargetGroups"]).await?;
            let Some(tg) = groups.first() else { bail!("no target group {target_group}") };
            let arn = tg.text_at(&["TargetGroupArn"]);
            let doc = client.call_query(ELBV2, &params("DescribeTargetHealth", &[("TargetGroupArn", arn)])).await?;
            let targets = doc.members(&["DescribeTargetHealthResult", "TargetHealthDescriptions"]);
            let rows: Vec<[String; 5]> = targets
                .iter()
                .map(|t| {
                    [
                        t.text_at(&["Target", "Id"]),
                        t.text_at(&["Target", "Port"]),
                        t.text_at(&["TargetHealth", "State"]),
                        t.text_at(&["TargetHealth", "Reason"]),
                        t.text_at(&["TargetHealth", "Description"]),
                    ]
                })
                .collect();
            match output {
                Output::Json => {
                    let keys = ["id", "port", "state", "reason", "description"];
                    let list: Vec<Value> =
                        rows.iter().map(|r| Value::Object(keys.iter().zip(r).map(|(k, v)| ((*k).to_owned(), json!(v))).collect())).collect();
                    print(&json!({ "targetGroup": tg.text_at(&["TargetGroupName"]), "targets": list }))
                }
                Output::Table => {
                    println!(
                        "{} ({} {}, health check {} {})",
                        tg.text_at(&["TargetGroupName"]),
                        tg.text_at(&["Protocol"]),
                        tg.text_at(&["Port"]),
                        tg.text_at(&["HealthCheckProtocol"]),
                        tg.text_at(&["HealthCheckPath"]),
                    );
                    print_table(&["TARGET", "PORT", "STATE", "REASON", "DESCRIPTION"], &rows);
                    Ok(())
                }
            }
        }
    }
}

fn params(action: &str, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut out = vec![("Action".to_owned(), action.to_owned()), ("Version".to_owned(), "2015-12-01".to_owned())];
    out.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    out
}

/// Every item of a Describe call's list at `list` (all pages).
async fn all(client: &Client, action: &str, extra: &[(&str, String)], list: &[&str]) -> anyhow::Result<Vec<Element>> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut p = params(action, extra);
        if let Some(m) = marker.take() {
            p.push(("Marker".to_owned(), m));
        }
        let doc = client.call_query(ELBV2, &p).await?;
        let result = format!("{action}Result");
        let mut path = vec![result.as_str()];
        path.extend_from_slice(list);
        out.extend(doc.members(&path).into_iter().cloned());
        match doc.text_at(&[result.as_str(), "NextMarker"]) {
            m if m.is_empty() => return Ok(out),
            m => marker = Some(m),
        }
    }
}

/// Each node's subnet (and, for network load balancers, its address).
fn addresses(lb: &Element) -> Vec<String> {
    lb.members(&["AvailabilityZones"])
        .iter()
        .map(|z| {
            let ip = z.members(&["LoadBalancerAddresses"]).first().map(|a| a.text_at(&["PrivateIPv4Address"])).unwrap_or_default();
            if ip.is_empty() { z.text_at(&["SubnetId"]) } else { format!("{} ({ip})", z.text_at(&["SubnetId"])) }
        })
        .collect()
}

fn load_balancer(l: &Element) -> Value {
    json!({
        "name": l.text_at(&["LoadBalancerName"]),
        "arn": l.text_at(&["LoadBalancerArn"]),
        "type": l.text_at(&["Type"]),
        "scheme": l.text_at(&["Scheme"]),
        "state": l.text_at(&["State", "Code"]),
        "dnsName": l.text_at(&["DNSName"]),
        "subnets": l.members(&["AvailabilityZones"]).iter().map(|z| z.text_at(&["SubnetId"])).collect::<Vec<_>>(),
    })
}

fn listener(l: &Element) -> Value {
    json!({
        "arn": l.text_at(&["ListenerArn"]),
        "protocol": l.text_at(&["Protocol"]),
        "port": l.text_at(&["Port"]),
        "defaultActions": actions(l.members(&["DefaultActions"])),
    })
}

fn rule(r: &Element) -> Value {
    json!({ "arn": r.text_at(&["RuleArn"]), "priority": r.text_at(&["Priority"]), "conditions": conditions(r), "actions": actions(r.members(&["Actions"])) })
}

fn conditions(r: &Element) -> String {
    let list: Vec<String> = r
        .members(&["Conditions"])
        .iter()
        .map(|c| {
            let values: Vec<String> = c.members(&["Values"]).iter().map(|v| v.text.clone()).collect();
            format!("{} {}", c.text_at(&["Field"]), values.join(","))
        })
        .collect();
    if list.is_empty() { "(default)".to_owned() } else { list.join("; ") }
}

fn actions(actions: Vec<&Element>) -> String {
    actions
        .iter()
        .map(|a| match a.text_at(&["Type"]).as_str() {
            "forward" => {
                let groups: Vec<String> = a
                    .members(&["ForwardConfig", "TargetGroups"])
                    .iter()
                    .map(|g| {
                        let arn = g.text_at(&["TargetGroupArn"]);
                        let name = arn.split('/').nth(1).unwrap_or(&arn).to_owned();
                        format!("{name}:{}", g.text_at(&["Weight"]))
                    })
                    .collect();
                format!("forward {}", groups.join(","))
            }
            "fixed-response" => format!("fixed-response {}", a.text_at(&["FixedResponseConfig", "StatusCode"])),
            "redirect" => format!("redirect {}", a.text_at(&["RedirectConfig", "StatusCode"])),
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn print(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
