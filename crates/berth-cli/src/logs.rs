//! `berth logs TASK [--container NAME] [-f] [--since DURATION]`: a task's
//! container output, as the awslogs driver stored it, read through the
//! CloudWatch Logs API (GetLogEvents). The task (ARN or id) is looked up
//! with DescribeTasks, its containers' log groups and streams in its task
//! definition — the same rules the agent ships by.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use berth_agent::logs::{Destination, destination};
use berth_wire::ecs::{
    DescribeTaskDefinitionRequest, DescribeTaskDefinitionResponse, DescribeTasksRequest, DescribeTasksResponse,
};
use berth_wire::logs::{GetLogEventsRequest, GetLogEventsResponse, OutputLogEvent};

use crate::client::{Client, ClientArgs, Output, ServiceError};
use crate::out::{escape, escape_log};

const ECS: (&str, &str) = ("AmazonEC2ContainerServiceV20141113", "ecs");
const LOGS: (&str, &str) = ("Logs_20140328", "logs");
/// How often `--follow` asks for new events.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The task: its ARN, or its id (in `--cluster`).
    task: String,
    /// Only this container's output [default: every container's, each line prefixed with its name].
    #[arg(long)]
    container: Option<String>,
    /// Keep printing new output as it comes, until the task is STOPPED (or Ctrl-C).
    #[arg(short, long)]
    follow: bool,
    /// Only output newer than this: e.g. 30s, 10m, 2h, 1h30m, 1d.
    #[arg(long, value_parser = parse_duration)]
    since: Option<Duration>,
    /// The task's cluster, when TASK is an id.
    #[arg(long, default_value = "default")]
    cluster: String,
    #[command(flatten)]
    client: ClientArgs,
}

/// One stream being read, and where the next read starts.
struct Reader {
    dest: Destination,
    token: Option<String>,
}

pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let task = describe(&client, &args).await?;
    let arn: berth_model::arn::TaskArn =
        task.task_arn.as_deref().unwrap_or_default().parse().context("DescribeTasks answered with an invalid task ARN")?;
    let id = arn.id.clone();
    let arn = arn.to_string();
    let definition_arn = task.task_definition_arn.clone().context("the task has no task definition")?;
    let req = DescribeTaskDefinitionRequest { task_definition: definition_arn.clone(), include: None };
    let resp: DescribeTaskDefinitionResponse = client.call(ECS.0, ECS.1, "DescribeTaskDefinition", &req).await?;
    let definition = resp.task_definition.context("DescribeTaskDefinition answered without a definition")?;
    let containers: Vec<_> = definition.container_definitions.unwrap_or_default();
    if let Some(name) = &args.container
        && !containers.iter().any(|c| c.name.as_deref() == Some(name.as_str()))
    {
        let names: Vec<&str> = containers.iter().filter_map(|c| c.name.as_deref()).collect();
        bail!("task {id} has no container {name:?}; its containers: {}", names.join(", "));
    }
    let mut readers = Vec::new();
    for c in &containers {
        let name = c.name.clone().unwrap_or_default();
        if args.container.as_ref().is_some_and(|n| *n != name) {
            continue;
        }
        match destination(c, &id) {
            Ok(Some(dest)) => readers.push(Reader { dest, token: None }),
            Ok(None) => eprintln!(
                "container {name} has no awslogs log configuration: its output is not kept (set logConfiguration \
                 {{\"logDriver\": \"awslogs\", \"options\": {{\"awslogs-group\": ..., \"awslogs-stream-prefix\": ...}}}} \
                 in {definition_arn})"
            ),
            Err(reason) => eprintln!("container {name}: its awslogs options are unusable ({reason})"),
        }
    }
    if readers.is_empty() {
        bail!("no output to show: no container of task {id} logs with the awslogs driver");
    }
    let start_time = args.since.map(|d| now_ms() - i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let prefix = readers.len() > 1;
    let output = args.client.output;
    loop {
        // Seen STOPPED before reading: the agent shipped everything before
        // the task became STOPPED, so this read is the last one needed.
        let stopped = !args.follow || status(&client, &arn).await?.as_deref() == Some("STOPPED");
        let mut events = Vec::new();
        for (i, reader) in readers.iter_mut().enumerate() {
            for e in read_new(&client, reader, start_time).await? {
                events.push((i, e));
            }
        }
        // One stream's events are in order already; across streams, by time.
        events.sort_by_key(|(_, e)| e.timestamp.unwrap_or(0));
        if print(&readers, &events, prefix, output).is_err() {
            return Ok(()); // stdout closed (`| head`)
        }
        if stopped {
            return Ok(());
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

async fn describe(client: &Client, args: &LogsArgs) -> anyhow::Result<berth_wire::ecs::Task> {
    let req =
        DescribeTasksRequest { cluster: Some(args.cluster.clone()), tasks: vec![args.task.clone()], include: None };
    let resp: DescribeTasksResponse = client.call(ECS.0, ECS.1, "DescribeTasks", &req).await?;
    match resp.tasks.unwrap_or_default().into_iter().next() {
        Some(t) => Ok(t),
        None => bail!("no task {} in cluster {}", args.task, args.cluster),
    }
}

async fn status(client: &Client, arn: &str) -> anyhow::Result<Option<String>> {
    let req = DescribeTasksRequest { cluster: None, tasks: vec![arn.to_owned()], include: None };
    let resp: DescribeTasksResponse = client.call(ECS.0, ECS.1, "DescribeTasks", &req).await?;
    Ok(resp.tasks.unwrap_or_default().into_iter().next().and_then(|t| t.last_status))
}

/// Every event of the stream after the reader's position (none while the
/// stream does not exist yet), moving the position past them.
async fn read_new(
    client: &Client,
    reader: &mut Reader,
    start_time: Option<i64>,
) -> anyhow::Result<Vec<OutputLogEvent>> {
    let mut out = Vec::new();
    loop {
        let req = GetLogEventsRequest {
            log_group_name: Some(reader.dest.group.clone()),
            log_stream_name: reader.dest.stream.clone(),
            start_time,
            next_token: reader.token.clone(),
            start_from_head: Some(true),
            ..Default::default()
        };
        let resp: GetLogEventsResponse = match client.call(LOGS.0, LOGS.1, "GetLogEvents", &req).await {
            Ok(r) => r,
            Err(e) if e.downcast_ref::<ServiceError>().is_some_and(|s| s.aws_type == "ResourceNotFoundException") => {
                return Ok(out);
            }
            Err(e) => return Err(e),
        };
        let events = resp.events.unwrap_or_default();
        if resp.next_forward_token.is_some() {
            reader.token = resp.next_forward_token;
        }
        if events.is_empty() {
            return Ok(out);
        }
        out.extend(events);
    }
}

fn print(readers: &[Reader], events: &[(usize, OutputLogEvent)], prefix: bool, output: Output) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for (i, e) in events {
        let container = &readers[*i].dest.container;
        let message = e.message.as_deref().unwrap_or_default();
        match output {
            Output::Json => {
                let line = serde_json::json!({"container": container, "timestamp": e.timestamp, "message": message});
                writeln!(out, "{line}")?;
            }
            Output::Table if prefix => writeln!(out, "{} | {}", escape(container), escape_log(message))?,
            Output::Table => writeln!(out, "{}", escape_log(message))?,
        }
    }
    out.flush()
}

/// `30s`, `10m`, `2h`, `1d`, or several together (`1h30m`); a bare number is seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration: use e.g. 30s, 10m, 2h, 1h30m, 1d");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() || s.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "m", "10x", "1h30", "-5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
