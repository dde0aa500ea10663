//! `berth service ls|describe|events`: a cluster's services as ECS keeps
//! them (ListServices, DescribeServices), readable without a JSON tool.
//! `--output json` prints the ECS shapes as the API answered them.

use anyhow::bail;
use berth_wire::ecs::{
    Deployment, DescribeServicesRequest, DescribeServicesResponse, ListServicesRequest, ListServicesResponse, Service,
    ServiceEvent, ServiceField,
};

use crate::client::{Client, ClientArgs, Output};
use crate::image::print_table;

const ECS: (&str, &str) = ("AmazonEC2ContainerServiceV20141113", "ecs");
/// DescribeServices takes at most this many services per call.
const DESCRIBE_BATCH: usize = 10;
/// Events `describe` shows (`events` shows them all).
const DESCRIBE_EVENTS: usize = 5;

#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    command: ServiceCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, clap::Subcommand)]
enum ServiceCommand {
    /// Lists the cluster's services: their counts, task definition and rollout.
    #[command(alias = "list")]
    Ls {
        #[arg(long, default_value = "default")]
        cluster: String,
    },
    /// One service: how it runs, its deployments and its latest events.
    Describe {
        /// The service's name or ARN.
        name: String,
        #[arg(long, default_value = "default")]
        cluster: String,
    },
    /// A service's events, newest first (ECS keeps the latest 100).
    Events {
        /// The service's name or ARN.
        name: String,
        #[arg(long, default_value = "default")]
        cluster: String,
        /// Only the newest N.
        #[arg(long)]
        limit: Option<usize>,
    },
}

pub async fn run(args: ServiceArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let output = args.client.output;
    match args.command {
        ServiceCommand::Ls { cluster } => {
            let services = list(&client, &cluster).await?;
            match output {
                Output::Json => json(&serde_json::json!({ "services": services })),
                Output::Table => {
                    print_services(&services);
                    Ok(())
                }
            }
        }
        ServiceCommand::Describe { name, cluster } => {
            let service = one(&client, &cluster, &name).await?;
            match output {
                Output::Json => json(&service),
                Output::Table => {
                    print_service(&service);
                    Ok(())
                }
            }
        }
        ServiceCommand::Events { name, cluster, limit } => {
            let service = one(&client, &cluster, &name).await?;
            let mut events = service.events.unwrap_or_default();
            if let Some(n) = limit {
                events.truncate(n);
            }
            match output {
                Output::Json => json(&serde_json::json!({ "events": events })),
                Output::Table => {
                    print_events(&events);
                    Ok(())
                }
            }
        }
    }
}

/// Every service of the cluster (ListServices, all pages), described.
async fn list(client: &Client, cluster: &str) -> anyhow::Result<Vec<Service>> {
    let mut arns = Vec::new();
    let mut next_token = None;
    loop {
        let req = ListServicesRequest {
            cluster: Some(cluster.to_owned()),
            next_token: next_token.take(),
            max_results: Some(100),
            ..Default::default()
        };
        let resp: ListServicesResponse = client.call(ECS.0, ECS.1, "ListServices", &req).await?;
        arns.extend(resp.service_arns.unwrap_or_default());
        match resp.next_token {
            Some(t) if !t.is_empty() => next_token = Some(t),
            _ => break,
        }
    }
    let mut services = Vec::with_capacity(arns.len());
    for batch in arns.chunks(DESCRIBE_BATCH) {
        services.extend(describe(client, cluster, batch.to_vec()).await?.services.unwrap_or_default());
    }
    Ok(services)
}

async fn describe(client: &Client, cluster: &str, services: Vec<String>) -> anyhow::Result<DescribeServicesResponse> {
    let req = DescribeServicesRequest { cluster: Some(cluster.to_owned()), services, include: Some(vec![ServiceField::Tags]) };
    client.call(ECS.0, ECS.1, "DescribeServices", &req).await
}

/// The service `name` (a name or an ARN) of `cluster`, or an error saying it is missing.
async fn one(client: &Client, cluster: &str, name: &str) -> anyhow::Result<Service> {
    let resp = describe(client, cluster, vec![name.to_owned()]).await?;
    if let Some(s) = resp.services.unwrap_or_default().into_iter().next() {
        return Ok(s);
    }
    let reason = resp.failures.unwrap_or_default().into_iter().find_map(|f| f.reason).unwrap_or_else(|| "MISSING".into());
    bail!("no service {name} in cluster {cluster} ({reason}); `berth service ls --cluster {cluster}` lists them")
}

fn json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    crate::out::outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn print_services(services: &[Service]) {
    let rows: Vec<[String; 7]> = services
        .iter()
        .map(|s| {
            [
                text(&s.service_name),
                text(&s.status),
                count(s.desired_count),
                count(s.running_count),
                count(s.pending_count),
                s.task_definition.as_deref().map_or_else(|| "-".into(), short_definition),
                rollout(s.deployments.as_deref().unwrap_or_default()),
            ]
        })
        .collect();
    print_table(&["NAME", "STATUS", "DESIRED", "RUNNING", "PENDING", "TASK DEFINITION", "ROLLOUT"], &rows);
}

fn print_service(s: &Service) {
    let mut fields: Vec<[String; 2]> = vec![
        ["Name".into(), text(&s.service_name)],
        ["ARN".into(), text(&s.service_arn)],
        ["Status".into(), text(&s.status)],
        [
            "Tasks".into(),
            format!(
                "{} running, {} pending, {} desired",
                count(s.running_count),
                count(s.pending_count),
                count(s.desired_count)
            ),
        ],
        ["Task definition".into(), s.task_definition.as_deref().map_or_else(|| "-".into(), short_definition)],
        ["Launch".into(), launch(s)],
        ["Network".into(), network(s)],
        ["Deployments".into(), deployment_rules(s)],
        ["Created".into(), s.created_at.map_or_else(|| "-".into(), timestamp)],
    ];
    if let Some(tags) = s.tags.as_deref().filter(|t| !t.is_empty()) {
        let tags: Vec<String> = tags
            .iter()
            .map(|t| format!("{}={}", t.key.as_deref().unwrap_or_default(), t.value.as_deref().unwrap_or_default()))
            .collect();
        fields.push(["Tags".into(), tags.join(", ")]);
    }
    let width = fields.iter().map(|[k, _]| k.len()).max().unwrap_or(0);
    for [k, v] in &fields {
        crate::out::outln!("{:<width$}  {v}", format!("{k}:"), width = width + 1);
    }
    crate::out::outln!();
    print_deployments(s.deployments.as_deref().unwrap_or_default());
    let events = s.events.as_deref().unwrap_or_default();
    crate::out::outln!();
    if events.len() > DESCRIBE_EVENTS {
        crate::out::outln!(
            "Latest {DESCRIBE_EVENTS} of {} events (`berth service events {}` shows them all):",
            events.len(),
            text(&s.service_name)
        );
    } else {
        crate::out::outln!("Events:");
    }
    print_events(&events[..events.len().min(DESCRIBE_EVENTS)]);
}

fn print_deployments(deployments: &[Deployment]) {
    let rows: Vec<[String; 9]> = deployments
        .iter()
        .map(|d| {
            [
                text(&d.id),
                text(&d.status),
                d.task_definition.as_deref().map_or_else(|| "-".into(), short_definition),
                count(d.desired_count),
                count(d.running_count),
                count(d.pending_count),
                count(d.failed_tasks),
                d.rollout_state.map_or_else(|| "-".into(), |r| r.as_str().to_owned()),
                d.updated_at.map_or_else(|| "-".into(), timestamp),
            ]
        })
        .collect();
    print_table(&["DEPLOYMENT", "STATUS", "TASK DEFINITION", "DESIRED", "RUNNING", "PENDING", "FAILED", "ROLLOUT", "UPDATED"], &rows);
}

fn print_events(events: &[ServiceEvent]) {
    let rows: Vec<[String; 2]> =
        events.iter().map(|e| [e.created_at.map_or_else(|| "-".into(), timestamp), text(&e.message)]).collect();
    print_table(&["TIME", "MESSAGE"], &rows);
}

fn text(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

fn count(n: Option<i32>) -> String {
    n.map_or_else(|| "-".into(), |n| n.to_string())
}

/// `family:revision` of a task definition ARN (anything else as it is).
fn short_definition(arn: &str) -> String {
    arn.rsplit_once(":task-definition/").map_or(arn, |(_, rest)| rest).to_owned()
}

/// The PRIMARY deployment's rollout state, and how many older ones still drain.
fn rollout(deployments: &[Deployment]) -> String {
    let primary = deployments.iter().find(|d| d.status.as_deref() == Some("PRIMARY"));
    let mut out = primary.and_then(|d| d.rollout_state).map_or_else(|| "-".into(), |r| r.as_str().to_owned());
    let older = deployments.iter().filter(|d| d.status.as_deref() == Some("ACTIVE")).count();
    if older > 0 {
        out.push_str(&format!(" ({older} draining)"));
    }
    out
}

fn launch(s: &Service) -> String {
    let how = match (&s.launch_type, s.capacity_provider_strategy.as_deref()) {
        (Some(l), _) => l.as_str().to_owned(),
        (None, Some(strategy)) if !strategy.is_empty() => strategy
            .iter()
            .map(|i| format!("{} (weight {}, base {})", i.capacity_provider, i.weight.unwrap_or(0), i.base.unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".into(),
    };
    match &s.platform_version {
        Some(v) => format!("{how}, platform {v}"),
        None => how,
    }
}

fn network(s: &Service) -> String {
    let Some(vpc) = s.network_configuration.as_ref().and_then(|n| n.awsvpc_configuration.as_ref()) else {
        return "-".into();
    };
    let groups = vpc.security_groups.as_deref().unwrap_or_default();
    format!(
        "subnets {}; security groups {}; public IP {}",
        vpc.subnets.join(", "),
        if groups.is_empty() { "-".into() } else { groups.join(", ") },
        vpc.assign_public_ip.map_or("DISABLED", |a| a.as_str())
    )
}

fn deployment_rules(s: &Service) -> String {
    let Some(c) = &s.deployment_configuration else { return "-".into() };
    let mut out = format!(
        "at least {}% healthy, at most {}% running",
        c.minimum_healthy_percent.map_or_else(|| "-".into(), |n| n.to_string()),
        c.maximum_percent.map_or_else(|| "-".into(), |n| n.to_string())
    );
    match &c.deployment_circuit_breaker {
        Some(b) if b.enable && b.rollback => out.push_str("; circuit breaker on, rolls back"),
        Some(b) if b.enable => out.push_str("; circuit breaker on, no rollback"),
        _ => out.push_str("; no circuit breaker"),
    }
    out
}

/// Seconds since the epoch as RFC 3339 in UTC, to the second.
fn timestamp(secs: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs.floor() as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use berth_wire::ecs::DeploymentRolloutState;

    use super::*;

    fn deployment(status: &str, rollout: Option<DeploymentRolloutState>) -> Deployment {
        Deployment { status: Some(status.into()), rollout_state: rollout, ..Default::default() }
    }

    #[test]
    fn summaries() {
        assert_eq!(short_definition("arn:aws:ecs:us-east-1:000000000000:task-definition/web:3"), "web:3");
        assert_eq!(short_definition("web:3"), "web:3");
        let ds = [
            deployment("PRIMARY", Some(DeploymentRolloutState::InProgress)),
            deployment("ACTIVE", Some(DeploymentRolloutState::Completed)),
        ];
        assert_eq!(rollout(&ds), "IN_PROGRESS (1 draining)");
        assert_eq!(rollout(&ds[..1]), "IN_PROGRESS");
        assert_eq!(rollout(&[]), "-");
        assert_eq!(timestamp(1_440_938_160.7), "2015-08-30T12:36:00Z");
    }
}
