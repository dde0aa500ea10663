//! `berth iam whoami`: who the configured key signs as (STS's
//! GetCallerIdentity): the ARN, the user id and the account, as a table
//! or (`--output json`) STS's members as a JSON object.

use serde_json::json;

use crate::client::{Client, ClientArgs, Output};

#[derive(Debug, clap::Args)]
pub struct IamArgs {
    #[command(subcommand)]
    command: IamCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, clap::Subcommand)]
enum IamCommand {
    /// Who the configured credentials are: ARN, user id, account.
    Whoami,
}

pub async fn run(args: IamArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    match args.command {
        IamCommand::Whoami => {
            let params = [("Action".to_owned(), "GetCallerIdentity".to_owned()), ("Version".to_owned(), "2011-06-15".to_owned())];
            let doc = client.call_query("sts", &params).await?;
            let field = |name: &str| doc.text_at(&["GetCallerIdentityResult", name]);
            let (arn, user_id, account) = (field("Arn"), field("UserId"), field("Account"));
            match args.client.output {
                Output::Json => {
                    let v = json!({ "Arn": arn, "UserId": user_id, "Account": account });
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                Output::Table => {
                    crate::out::table(&["ARN", "USER ID", "ACCOUNT"], &[[arn, user_id, account]]);
                }
            }
        }
    }
    Ok(())
}
