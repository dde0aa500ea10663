//! `berth subnet ls|create|delete` and `berth sg ls|create|delete|allow|revoke`:
//! the subnets and security groups that RunTask's `awsvpcConfiguration`
//! names, through the server's operator API.

use berth_wire::berth::{
    CreateSecurityGroupRequest, CreateSubnetRequest, DeleteSecurityGroupRequest, DeleteSubnetRequest, EmptyResponse,
    IngressRule, ListSecurityGroupsRequest, ListSecurityGroupsResponse, ListSubnetsRequest, ListSubnetsResponse,
    SIGNING_NAME, SecurityGroupDetail, SecurityGroupIngressRequest, SecurityGroupResponse, SubnetDetail,
    SubnetResponse, TARGET_PREFIX,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{Client, ClientArgs, Output};
use crate::image::print_table;

#[derive(Debug, clap::Args)]
pub struct SubnetArgs {
    #[command(subcommand)]
    command: SubnetCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, clap::Subcommand)]
enum SubnetCommand {
    /// Lists the subnets and their free addresses.
    #[command(alias = "list")]
    Ls,
    /// Makes a subnet from a private IPv4 range, e.g. 10.90.0.0/24.
    Create {
        cidr: String,
        #[arg(long)]
        name: Option<String>,
        /// Let its tasks reach beyond this host (masqueraded; the host must
        /// forward IPv4). Off by default: task traffic stays on the machine.
        #[arg(long)]
        egress: bool,
    },
    /// Deletes a subnet no task holds an address in.
    #[command(alias = "rm")]
    Delete { subnet_id: String },
}

#[derive(Debug, clap::Args)]
pub struct SgArgs {
    #[command(subcommand)]
    command: SgCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, clap::Subcommand)]
enum SgCommand {
    /// Lists the security groups and their ingress rules.
    #[command(alias = "list")]
    Ls,
    /// Makes a security group (with no ingress rules unless given).
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Deletes a security group no task and no other group's rule uses.
    #[command(alias = "rm")]
    Delete { group_id: String },
    /// Adds an ingress rule: `--protocol tcp --port 8080 --source sg-…|10.0.0.0/16`.
    Allow {
        group_id: String,
        #[command(flatten)]
        rule: RuleArgs,
    },
    /// Removes an ingress rule (given as it was added).
    Revoke {
        group_id: String,
        #[command(flatten)]
        rule: RuleArgs,
    },
}

#[derive(Debug, clap::Args)]
struct RuleArgs {
    /// tcp, udp, icmp or all.
    #[arg(long, default_value = "tcp")]
    protocol: String,
    /// A port or a range, e.g. 8080 or 8000-8100 (tcp and udp).
    #[arg(long)]
    port: Option<String>,
    /// Where traffic may come from: a security group id or an IPv4 CIDR.
    #[arg(long)]
    source: String,
}

impl RuleArgs {
    fn rule(&self) -> anyhow::Result<IngressRule> {
        let (from_port, to_port) = match self.port.as_deref() {
            None => (None, None),
            Some(p) => {
                let (from, to) = p.split_once('-').unwrap_or((p, p));
                let parse = |s: &str| s.trim().parse::<u16>().map_err(|_| anyhow::anyhow!("invalid port {s:?} in --port {p}"));
                (Some(parse(from)?), Some(parse(to)?))
            }
        };
        let protocol = if self.protocol == "all" { "-1".to_owned() } else { self.protocol.clone() };
        let (cidr_ip, source_group_id) = if self.source.starts_with("sg-") {
            (None, Some(self.source.clone()))
        } else {
            (Some(self.source.clone()), None)
        };
        Ok(IngressRule { ip_protocol: protocol, from_port, to_port, cidr_ip, source_group_id })
    }
}

async fn call<Req: Serialize, Resp: DeserializeOwned>(client: &Client, op: &str, req: &Req) -> anyhow::Result<Resp> {
    client.call(TARGET_PREFIX, SIGNING_NAME, op, req).await
}

fn json(v: &impl Serialize) -> anyhow::Result<()> {
    crate::out::outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn subnet(args: SubnetArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let output = args.client.output;
    match args.command {
        SubnetCommand::Ls => {
            let resp: ListSubnetsResponse = call(&client, "ListSubnets", &ListSubnetsRequest {}).await?;
            match output {
                Output::Json => json(&resp),
                Output::Table => {
                    print_subnets(&resp.subnets);
                    Ok(())
                }
            }
        }
        SubnetCommand::Create { cidr, name, egress } => {
            let req = CreateSubnetRequest { cidr_block: cidr, name, egress: Some(egress) };
            let resp: SubnetResponse = call(&client, "CreateSubnet", &req).await?;
            match output {
                Output::Json => json(&resp),
                Output::Table => {
                    print_subnets(&[resp.subnet]);
                    Ok(())
                }
            }
        }
        SubnetCommand::Delete { subnet_id } => {
            let _: EmptyResponse = call(&client, "DeleteSubnet", &DeleteSubnetRequest { subnet_id: subnet_id.clone() }).await?;
            match output {
                Output::Json => json(&serde_json::json!({ "deleted": subnet_id })),
                Output::Table => {
                    crate::out::outln!("deleted {subnet_id}");
                    Ok(())
                }
            }
        }
    }
}

pub async fn sg(args: SgArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let output = args.client.output;
    let show = |groups: &[SecurityGroupDetail]| -> anyhow::Result<()> {
        match output {
            Output::Json => json(&serde_json::json!({ "securityGroups": groups })),
            Output::Table => {
                print_groups(groups);
                Ok(())
            }
        }
    };
    match args.command {
        SgCommand::Ls => {
            let resp: ListSecurityGroupsResponse = call(&client, "ListSecurityGroups", &ListSecurityGroupsRequest {}).await?;
            show(&resp.security_groups)
        }
        SgCommand::Create { name, description } => {
            let req = CreateSecurityGroupRequest { group_name: name, description, ingress: None };
            let resp: SecurityGroupResponse = call(&client, "CreateSecurityGroup", &req).await?;
            show(&[resp.security_group])
        }
        SgCommand::Delete { group_id } => {
            let _: EmptyResponse =
                call(&client, "DeleteSecurityGroup", &DeleteSecurityGroupRequest { group_id: group_id.clone() }).await?;
            match output {
                Output::Json => json(&serde_json::json!({ "deleted": group_id })),
                Output::Table => {
                    crate::out::outln!("deleted {group_id}");
                    Ok(())
                }
            }
        }
        SgCommand::Allow { group_id, rule } => {
            let req = SecurityGroupIngressRequest { group_id, rules: vec![rule.rule()?] };
            let resp: SecurityGroupResponse = call(&client, "AuthorizeSecurityGroupIngress", &req).await?;
            show(&[resp.security_group])
        }
        SgCommand::Revoke { group_id, rule } => {
            let req = SecurityGroupIngressRequest { group_id, rules: vec![rule.rule()?] };
            let resp: SecurityGroupResponse = call(&client, "RevokeSecurityGroupIngress", &req).await?;
            show(&[resp.security_group])
        }
    }
}

fn print_subnets(subnets: &[SubnetDetail]) {
    let rows: Vec<[String; 5]> = subnets
        .iter()
        .map(|s| {
            [
                s.subnet_id.clone(),
                s.cidr_block.clone(),
                s.available_ip_address_count.to_string(),
                if s.egress { "yes".into() } else { "no".into() },
                s.name.clone(),
            ]
        })
        .collect();
    print_table(&["SUBNET", "CIDR", "FREE", "EGRESS", "NAME"], &rows);
}

fn print_groups(groups: &[SecurityGroupDetail]) {
    let list = |rules: &[IngressRule], word: &str| -> String {
        let rules: Vec<String> = rules.iter().map(|r| describe_rule(r, word)).collect();
        if rules.is_empty() { "-".into() } else { rules.join(", ") }
    };
    let rows: Vec<[String; 4]> = groups
        .iter()
        .map(|g| [g.group_id.clone(), g.group_name.clone(), list(&g.ingress, "from"), list(&g.egress, "to")])
        .collect();
    print_table(&["GROUP", "NAME", "INGRESS", "EGRESS"], &rows);
}

/// A rule as `tcp:8080 from sg-web` (ingress) or `all to 0.0.0.0/0` (egress).
fn describe_rule(r: &IngressRule, word: &str) -> String {
    let proto = if r.ip_protocol == "-1" { "all" } else { r.ip_protocol.as_str() };
    let ports = match (r.from_port, r.to_port) {
        (Some(a), Some(b)) if a == b => format!(":{a}"),
        (Some(a), Some(b)) => format!(":{a}-{b}"),
        _ => String::new(),
    };
    let peer = r.cidr_ip.clone().or_else(|| r.source_group_id.clone()).unwrap_or_default();
    format!("{proto}{ports} {word} {peer}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_from_flags() {
        let r = RuleArgs { protocol: "tcp".into(), port: Some("8000-8100".into()), source: "sg-web".into() }.rule().unwrap();
        assert_eq!((r.from_port, r.to_port, r.source_group_id.as_deref()), (Some(8000), Some(8100), Some("sg-web")));
        let r = RuleArgs { protocol: "all".into(), port: None, source: "10.0.0.0/8".into() }.rule().unwrap();
        assert_eq!((r.ip_protocol.as_str(), r.cidr_ip.as_deref()), ("-1", Some("10.0.0.0/8")));
        assert!(RuleArgs { protocol: "tcp".into(), port: Some("http".into()), source: "sg-x".into() }.rule().is_err());
        assert_eq!(describe_rule(&RuleArgs { protocol: "udp".into(), port: Some("53".into()), source: "sg-a".into() }.rule().unwrap(), "from"), "udp:53 from sg-a");
        let all = RuleArgs { protocol: "all".into(), port: None, source: "0.0.0.0/0".into() }.rule().unwrap();
        assert_eq!(describe_rule(&all, "to"), "all to 0.0.0.0/0");
    }
}
