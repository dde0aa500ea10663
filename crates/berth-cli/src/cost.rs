//! `berth cost`: what the node's Fargate tasks cost, from the meter's
//! usage records and the price table (Berth's GetCostReport): per day or
//! hour, by cluster, service, family, capacity provider or a tag, as a
//! table, CSV or JSON.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use berth_wire::berth::{GetCostReportRequest, GetCostReportResponse, SIGNING_NAME, TARGET_PREFIX};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client::{Client, ClientArgs, Output};

#[derive(Debug, clap::Args)]
pub struct CostArgs {
    /// Group by: cluster, service, family, capacity-provider or tag:KEY.
    #[arg(long, default_value = "cluster")]
    by: String,
    /// From when: a duration back from now (`7d`, `12h`, `30m`), a date
    /// (`2026-12-01`, UTC) or an RFC 3339 time.
    #[arg(long, default_value = "7d")]
    since: String,
    #[arg(long, value_enum, default_value_t = Granularity::Daily)]
    granularity: Granularity,
    #[arg(long, value_enum, default_value_t = CostOutput::Table)]
    output: CostOutput,
    /// The Berth endpoint [default: BERTH_ENDPOINT, else the data dir's config].
    #[arg(long, env = "BERTH_ENDPOINT")]
    endpoint: Option<String>,
    /// The data dir whose config and credentials to use [default: as `berth up`'s].
    #[arg(long, env = "BERTH_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Granularity {
    Hourly,
    Daily,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CostOutput {
    Table,
    Csv,
    Json,
}

/// `--since` as epoch seconds, at `now`.
fn since(s: &str, now: OffsetDateTime) -> anyhow::Result<i64> {
    let units = [('d', 86_400), ('h', 3600), ('m', 60)];
    if let Some((n, per)) = units.iter().find_map(|(u, per)| s.strip_suffix(*u).and_then(|n| n.parse::<i64>().ok()).map(|n| (n, *per))) {
        if n < 0 {
            bail!("--since {s}: a duration cannot be negative");
        }
        return Ok(now.unix_timestamp() - n * per);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let day = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .with_context(|| format!("--since {s}: give a duration (7d, 12h, 30m), a date (2026-12-01) or an RFC 3339 time"))?;
    Ok(day.midnight().assume_utc().unix_timestamp())
}

fn time_text(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t).ok().and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_else(|| t.to_string())
}

/// A CSV field, quoted when it must be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

pub async fn run(args: CostArgs) -> anyhow::Result<()> {
    let client_args = ClientArgs { endpoint: args.endpoint.clone(), data_dir: args.data_dir.clone(), output: Output::Json };
    let client = Client::new(&client_args)?;
    let granularity = match args.granularity {
        Granularity::Hourly => "hourly",
        Granularity::Daily => "daily",
    };
    let req = GetCostReportRequest {
        by: Some(args.by.clone()),
        since: Some(since(&args.since, OffsetDateTime::now_utc())? as f64),
        granularity: Some(granularity.to_owned()),
    };
    let resp: GetCostReportResponse = client.call(TARGET_PREFIX, SIGNING_NAME, "GetCostReport", &req).await?;
    let header = ["START", "END", "KEY", "SECONDS", "VCPU_HOURS", "GB_HOURS", "STORAGE_GB_HOURS", "COST_USD"];
    let cells = |r: &berth_wire::berth::CostRow| {
        [
            time_text(r.start),
            time_text(r.end),
            r.key.clone(),
            r.seconds.to_string(),
            format!("{:.6}", r.vcpu_hours),
            format!("{:.6}", r.gb_hours),
            format!("{:.6}", r.storage_gb_hours),
            format!("{:.6}", r.cost),
        ]
    };
    match args.output {
        CostOutput::Json => println!("{}", serde_json::to_string_pretty(&resp)?),
        CostOutput::Csv => {
            crate::out::outln!("{}", header.join(",").to_lowercase());
            for r in &resp.rows {
                crate::out::outln!("{}", cells(r).iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
            }
        }
        CostOutput::Table => {
            let rows: Vec<[String; 8]> = resp.rows.iter().map(cells).collect();
            crate::out::table(&header, &rows);
            let total: f64 = resp.rows.iter().map(|r| r.cost).sum();
            crate::out::outln!("total: ${total:.6} by {} ({})", resp.by, resp.granularity);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_dates_and_times() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        assert_eq!(since("7d", now).unwrap(), 1_000_000 - 7 * 86_400);
        assert_eq!(since("90m", now).unwrap(), 1_000_000 - 5400);
        assert_eq!(since("1970-01-02", now).unwrap(), 86_400);
        assert_eq!(since("1970-01-02T01:00:00Z", now).unwrap(), 90_000);
        assert!(since("yesterday", now).is_err());
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
