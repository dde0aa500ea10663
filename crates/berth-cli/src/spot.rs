//! `berth spot interrupt`: Fargate Spot takes capacity back (Berth's
//! InterruptSpotTasks). Each interrupted task gets the two-minute warning
//! (desiredStatus STOPPED, stopCode TerminationNotice, SIGTERM), stops
//! after its stopTimeout and ends with stopCode SpotInterruption.

use berth_wire::berth::{InterruptSpotTasksRequest, InterruptSpotTasksResponse, SIGNING_NAME, TARGET_PREFIX};

use crate::client::{Client, ClientArgs, Output};

#[derive(Debug, clap::Args)]
pub struct SpotArgs {
    #[command(subcommand)]
    command: SpotCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, clap::Subcommand)]
enum SpotCommand {
    /// Interrupts running FARGATE_SPOT tasks: `--count N` of them (oldest
    /// first; 1 by default) or the one `--task ARN`.
    Interrupt {
        #[arg(long, conflicts_with = "task")]
        count: Option<u32>,
        #[arg(long)]
        task: Option<String>,
    },
}

pub async fn run(args: SpotArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    match args.command {
        SpotCommand::Interrupt { count, task } => {
            let req = InterruptSpotTasksRequest { task_arn: task, count };
            let resp: InterruptSpotTasksResponse = client.call(TARGET_PREFIX, SIGNING_NAME, "InterruptSpotTasks", &req).await?;
            match args.client.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&resp)?),
                Output::Table if resp.task_arns.is_empty() => crate::out::outln!("no running Spot task to interrupt"),
                Output::Table => {
                    for arn in &resp.task_arns {
                        crate::out::outln!("interrupted {}", crate::out::escape(arn));
                    }
                }
            }
        }
    }
    Ok(())
}
