//! `berth cost` (Berth's GetCostReport): the meter's usage records priced
//! by the price table, summed per period and per group. Pure
//! [`report`] over the records; the handler only reads the store.

use std::collections::BTreeMap;

use berth_model::metering::{self, PriceTable, UsageKind, UsageRecord};
use berth_wire::berth::{CostRow, GetCostReportRequest, GetCostReportResponse};

use crate::{Api, ApiError};

/// What rows are grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By {
    Cluster,
    Service,
    Family,
    CapacityProvider,
    Tag(String),
}

impl By {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s {
            "cluster" => Self::Cluster,
            "service" => Self::Service,
            "family" => Self::Family,
            "capacity-provider" => Self::CapacityProvider,
            _ => match s.strip_prefix("tag:") {
                Some(key) if !key.is_empty() => Self::Tag(key.to_owned()),
                _ => {
                    return Err(ApiError::invalid_parameter(format!(
                        "Cannot group by '{s}': use cluster, service, family, capacity-provider or tag:KEY."
                    )));
                }
            },
        })
    }

    fn key(&self, r: &UsageRecord) -> String {
        match self {
            Self::Cluster => r.cluster.clone(),
            Self::Service => r.service.clone().unwrap_or_default(),
            Self::Family => r.family.clone(),
            Self::CapacityProvider => r.capacity_provider.clone(),
            Self::Tag(k) => r.tags.get(k).cloned().unwrap_or_default(),
        }
    }
}

/// Hourly or daily periods (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Hourly,
    Daily,
}

impl Granularity {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "hourly" => Ok(Self::Hourly),
            "daily" => Ok(Self::Daily),
            _ => Err(ApiError::invalid_parameter(format!("Granularity '{s}' is not hourly or daily."))),
        }
    }

    fn seconds(self) -> i64 {
        match self {
            Self::Hourly => metering::HOUR,
            Self::Daily => 24 * metering::HOUR,
        }
    }
}

/// One row per (period, group) with usage, in period then key order.
pub fn report(records: &[UsageRecord], prices: &PriceTable, by: &By, granularity: Granularity) -> Vec<CostRow> {
    let len = granularity.seconds();
    let mut rows: BTreeMap<(i64, String), CostRow> = BTreeMap::new();
    for r in records {
        let start = r.hour.div_euclid(len) * len;
        let key = by.key(r);
        let row = rows.entry((start, key.clone())).or_insert_with(|| CostRow { start, end: start + len, key, ..CostRow::default() });
        row.seconds += r.seconds;
        for item in metering::line_items(r, prices) {
            match item.kind {
                UsageKind::Vcpu => row.vcpu_hours += item.quantity,
                UsageKind::Memory => row.gb_hours += item.quantity,
                UsageKind::Storage => row.storage_gb_hours += item.quantity,
            }
            row.cost += item.cost;
        }
    }
    rows.into_values().collect()
}

pub(crate) async fn get_report(api: &Api, req: GetCostReportRequest) -> Result<GetCostReportResponse, ApiError> {
    let by_name = req.by.unwrap_or_else(|| "cluster".to_owned());
    let by = By::parse(&by_name)?;
    let granularity_name = req.granularity.unwrap_or_else(|| "daily".to_owned());
    let granularity = Granularity::parse(&granularity_name)?;
    let since = req.since.unwrap_or(0.0).max(0.0) as i64;
    let from = since.div_euclid(metering::HOUR) * metering::HOUR;
    let records = api.store.list_usage(from, i64::MAX).await?;
    Ok(GetCostReportResponse { by: by_name, granularity: granularity_name, rows: report(&records, &api.config.prices, &by, granularity) })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(hour: i64, seconds: i64, spot: bool, team: Option<&str>) -> UsageRecord {
        UsageRecord {
            task_arn: format!("arn:aws:ecs:us-east-1:000000000000:task/prod/{hour:032x}"),
            hour,
            seconds,
            region: "us-east-1".into(),
            cluster: "prod".into(),
            service: Some("web".into()),
            family: "web".into(),
            capacity_provider: if spot { "FARGATE_SPOT" } else { "FARGATE" }.into(),
            cpu: 256,
            memory: 512,
            storage_gib: 20,
            tags: team.map(|t| [("team".to_owned(), t.to_owned())].into()).unwrap_or_default(),
            closed: true,
        }
    }

    #[test]
    fn rows_per_period_and_group() {
        let day = 86_400;
        let recs = [
            record(day, 90, false, Some("a")),
            record(day + 3600, 60, true, Some("a")),
            record(day + 7200, 3600, false, None),
            record(2 * day, 60, false, Some("b")),
        ];
        let table = PriceTable::default();
        let rows = report(&recs, &table, &By::Tag("team".into()), Granularity::Daily);
        let keys: Vec<(i64, &str)> = rows.iter().map(|r| (r.start, r.key.as_str())).collect();
        assert_eq!(keys, [(day, ""), (day, "a"), (2 * day, "b")]);
        let a = &rows[1];
        assert_eq!(a.seconds, 150);
        let on_demand = 0.25 * 90.0 / 3600.0 * 0.04048 + 0.5 * 90.0 / 3600.0 * 0.004445;
        let spot = (0.25 * 60.0 / 3600.0 * 0.04048 + 0.5 * 60.0 / 3600.0 * 0.004445) * 0.3;
        assert!((a.cost - (on_demand + spot)).abs() < 1e-12, "{}", a.cost);
        let hourly = report(&recs, &table, &By::CapacityProvider, Granularity::Hourly);
        assert_eq!(hourly.len(), 4);
        assert_eq!((hourly[1].key.as_str(), hourly[1].end - hourly[1].start), ("FARGATE_SPOT", 3600));
        assert!(By::parse("tag:").is_err() && By::parse("colour").is_err());
        assert_eq!(By::parse("tag:team").unwrap(), By::Tag("team".into()));
    }
}
