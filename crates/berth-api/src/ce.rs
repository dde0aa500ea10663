//! Cost Explorer's GetCostAndUsage (service `ce`, AWS JSON 1.1) over the
//! meter's usage records: Fargate's usage types, per DAILY, MONTHLY or
//! HOURLY period, grouped by dimensions or tags, filtered by
//! And/Or/Not expressions. The task's tags are its cost allocation tags.
//! Evaluation is pure ([`answer`]); the handler reads the store.

use std::collections::BTreeMap;

use berth_model::metering::{self, LineItem, PriceTable, UsageRecord};
use berth_wire::ce::{
    Action, DateInterval, Dimension, Expression, GetCostAndUsageRequest, GetCostAndUsageResponse, Granularity, Group,
    GroupDefinition, GroupDefinitionType, MatchOption, MetricValue, ResultByTime,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::{Api, ApiError};

/// The metrics answered: the three costs are the same number (no
/// discounts, credits or reservations here), UsageQuantity the usage.
const METRICS: &[&str] = &["UnblendedCost", "BlendedCost", "NetUnblendedCost", "AmortizedCost", "NetAmortizedCost", "UsageQuantity"];

pub(crate) async fn dispatch(api: &Api, action: Action) -> Result<serde_json::Value, ApiError> {
    match action {
        Action::GetCostAndUsage(req) => {
            let query = Query::parse(&req)?;
            let records = api.store.list_usage(query.start, query.end).await?;
            let out = answer(&query, &req, &records, &api.config.prices);
            serde_json::to_value(out).map_err(|e| ApiError::Internal(berth_store::StoreError::Corrupt(e)))
        }
    }
}

fn validation(msg: impl Into<String>) -> ApiError {
    ApiError::service("ValidationException", msg)
}

/// A request's period, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub start: i64,
    pub end: i64,
    pub granularity: Granularity,
}

impl Query {
    pub fn parse(req: &GetCostAndUsageRequest) -> Result<Self, ApiError> {
        let start = parse_time(&req.time_period.start)?;
        let end = parse_time(&req.time_period.end)?;
        if end <= start {
            return Err(validation("Start date (and hour) should be before end date (and hour)"));
        }
        if req.metrics.is_empty() {
            return Err(validation("Metrics is required; give at least one of UnblendedCost, UsageQuantity, …"));
        }
        for m in &req.metrics {
            if !METRICS.contains(&m.as_str()) {
                return Err(validation(format!("Invalid metrics: {m}; valid values are {}", METRICS.join(", "))));
            }
        }
        let groups = req.group_by.as_deref().unwrap_or_default();
        if groups.len() > 2 {
            return Err(validation("A GroupBy can have at most two group definitions."));
        }
        for g in groups {
            let _check = group_key(g)?;
        }
        if let Some(f) = &req.filter {
            check_expression(f)?;
        }
        Ok(Self { start, end, granularity: req.granularity })
    }
}

/// `YYYY-MM-DD` (a day's start, UTC) or, for HOURLY, `YYYY-MM-DDThh:mm:ssZ`.
fn parse_time(s: &str) -> Result<i64, ApiError> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let day = time::Date::parse(s, format_description!("[year]-[month]-[day]"))
        .map_err(|_| validation(format!("{s} is not a valid date: use yyyy-MM-dd (or yyyy-MM-ddThh:mm:ssZ for HOURLY)")))?;
    Ok(day.midnight().assume_utc().unix_timestamp())
}

fn format_time(t: i64, granularity: Granularity) -> String {
    let at = OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    match granularity {
        Granularity::Hourly => at.format(&Rfc3339).unwrap_or_default(),
        _ => at.date().format(format_description!("[year]-[month]-[day]")).unwrap_or_default(),
    }
}

/// The periods of `[start, end)` at `granularity`: hours, days, or
/// calendar months (the first and last cut to the period asked).
pub fn periods(start: i64, end: i64, granularity: Granularity) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let next = match granularity {
            Granularity::Hourly => (at.div_euclid(metering::HOUR) + 1) * metering::HOUR,
            Granularity::Daily => (at.div_euclid(86_400) + 1) * 86_400,
            Granularity::Monthly => {
                let d = OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH).date();
                let (y, m) = if d.month() == time::Month::December { (d.year() + 1, time::Month::January) } else { (d.year(), d.month().next()) };
                time::Date::from_calendar_date(y, m, 1).map_or(end, |n| n.midnight().assume_utc().unix_timestamp())
            }
        };
        out.push((at, next.min(end)));
        at = next.min(end);
    }
    out
}

/// A line item's value of a dimension (`None`: a dimension Berth does
/// not record).
fn dimension(item: &LineItem<'_>, d: Dimension) -> Option<String> {
    let r = item.record;
    Some(match d {
        Dimension::Service => metering::SERVICE_NAME.to_owned(),
        Dimension::UsageType => item.usage_type.clone(),
        Dimension::Region => r.region.clone(),
        Dimension::LinkedAccount => r.task_arn.split(':').nth(4).unwrap_or_default().to_owned(),
        Dimension::PurchaseType => if r.spot() { "Spot Instances" } else { "On Demand Instances" }.to_owned(),
        Dimension::RecordType => "Usage".to_owned(),
        Dimension::Operation => "FargateTask".to_owned(),
        Dimension::OperatingSystem => "Linux".to_owned(),
        _ => return None,
    })
}

fn known_dimension(d: Dimension) -> Result<(), ApiError> {
    let probe = UsageRecord {
        task_arn: String::new(),
        hour: 0,
        seconds: 0,
        region: String::new(),
        cluster: String::new(),
        service: None,
        family: String::new(),
        capacity_provider: String::new(),
        cpu: 0,
        memory: 0,
        storage_gib: 0,
        tags: BTreeMap::new(),
        closed: true,
    };
    let item = LineItem { record: &probe, kind: metering::UsageKind::Vcpu, usage_type: String::new(), quantity: 0.0, cost: 0.0 };
    match dimension(&item, d) {
        Some(_) => Ok(()),
        None => Err(validation(format!(
            "Dimension {} is not available here: Berth answers SERVICE, USAGE_TYPE, REGION, LINKED_ACCOUNT, PURCHASE_TYPE, RECORD_TYPE, OPERATION and OPERATING_SYSTEM.",
            serde_json::to_value(d).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
        ))),
    }
}

/// A group definition's key for a line item, as Cost Explorer writes it:
/// the dimension's value, or `KEY$value` for a tag (`KEY$` untagged).
fn group_key(g: &GroupDefinition) -> Result<impl Fn(&LineItem<'_>) -> String + '_, ApiError> {
    let key = g.key.as_deref().filter(|k| !k.is_empty()).ok_or_else(|| validation("A group definition needs a Key."))?;
    let kind = g.r#type.unwrap_or_default();
    let dim = match kind {
        GroupDefinitionType::Dimension => {
            let d: Dimension = key.parse().map_err(|()| validation(format!("Invalid group by dimension: {key}")))?;
            known_dimension(d)?;
            Some(d)
        }
        GroupDefinitionType::Tag => None,
        GroupDefinitionType::CostCategory => return Err(validation("Berth has no cost categories.")),
    };
    Ok(move |item: &LineItem<'_>| match dim {
        Some(d) => dimension(item, d).unwrap_or_default(),
        None => format!("{key}${}", item.record.tags.get(key).map(String::as_str).unwrap_or("")),
    })
}

fn check_expression(e: &Expression) -> Result<(), ApiError> {
    let parts = usize::from(e.or.is_some())
        + usize::from(e.and.is_some())
        + usize::from(e.not.is_some())
        + usize::from(e.dimensions.is_some())
        + usize::from(e.tags.is_some())
        + usize::from(e.cost_categories.is_some());
    if parts != 1 {
        return Err(validation("Expression has more than one roots. Only one root operator is allowed for each expression: And, Or, Not, Dimensions, Tags, CostCategories"));
    }
    if e.cost_categories.is_some() {
        return Err(validation("Berth has no cost categories."));
    }
    if let Some(d) = &e.dimensions {
        let key = d.key.ok_or_else(|| validation("Dimensions must have a Key."))?;
        known_dimension(key)?;
    }
    for sub in e.or.iter().chain(e.and.iter()).flatten() {
        check_expression(sub)?;
    }
    if let Some(n) = &e.not {
        check_expression(n)?;
    }
    Ok(())
}

/// Whether `value` (`None`: absent) matches `values` under `options`.
fn matches(value: Option<&str>, values: &[String], options: &[MatchOption]) -> bool {
    if options.contains(&MatchOption::Absent) {
        return value.is_none_or(str::is_empty);
    }
    let Some(value) = value else { return false };
    let fold = options.contains(&MatchOption::CaseInsensitive);
    let norm = |s: &str| if fold { s.to_lowercase() } else { s.to_owned() };
    let v = norm(value);
    values.iter().any(|want| {
        let w = norm(want);
        if options.contains(&MatchOption::StartsWith) {
            v.starts_with(&w)
        } else if options.contains(&MatchOption::EndsWith) {
            v.ends_with(&w)
        } else if options.contains(&MatchOption::Contains) {
            v.contains(&w)
        } else {
            v == w
        }
    })
}

/// Whether a line item passes a filter expression.
pub fn passes(e: &Expression, item: &LineItem<'_>) -> bool {
    if let Some(all) = &e.and {
        return all.iter().all(|x| passes(x, item));
    }
    if let Some(any) = &e.or {
        return any.iter().any(|x| passes(x, item));
    }
    if let Some(n) = &e.not {
        return !passes(n, item);
    }
    if let Some(d) = &e.dimensions {
        let value = d.key.and_then(|k| dimension(item, k));
        return matches(value.as_deref(), d.values.as_deref().unwrap_or_default(), d.match_options.as_deref().unwrap_or_default());
    }
    if let Some(t) = &e.tags {
        let value = t.key.as_deref().and_then(|k| item.record.tags.get(k)).map(String::as_str);
        return matches(value, t.values.as_deref().unwrap_or_default(), t.match_options.as_deref().unwrap_or_default());
    }
    false
}

#[derive(Debug, Default, Clone, Copy)]
struct Sum {
    cost: f64,
    usage: f64,
}

fn metric_values(metrics: &[String], sum: Sum) -> BTreeMap<String, MetricValue> {
    metrics
        .iter()
        .map(|m| {
            let (amount, unit) = if m == "UsageQuantity" { (sum.usage, "N/A") } else { (sum.cost, "USD") };
            (m.clone(), MetricValue { amount: Some(format!("{amount:.10}")), unit: Some(unit.to_owned()) })
        })
        .collect()
}

/// The answer to a checked query over `records`.
pub fn answer(query: &Query, req: &GetCostAndUsageRequest, records: &[UsageRecord], prices: &PriceTable) -> GetCostAndUsageResponse {
    let defs: &[GroupDefinition] = req.group_by.as_deref().unwrap_or_default();
    let keyers: Vec<_> = defs.iter().filter_map(|g| group_key(g).ok()).collect();
    let spans = periods(query.start, query.end, query.granularity);
    let mut results = Vec::new();
    for (start, end) in spans {
        let mut total = Sum::default();
        let mut groups: BTreeMap<Vec<String>, Sum> = BTreeMap::new();
        for r in records.iter().filter(|r| r.hour >= start && r.hour < end) {
            for item in metering::line_items(r, prices) {
                if req.filter.as_ref().is_some_and(|f| !passes(f, &item)) {
                    continue;
                }
                total.cost += item.cost;
                total.usage += item.quantity;
                if !keyers.is_empty() {
                    let g = groups.entry(keyers.iter().map(|k| k(&item)).collect()).or_default();
                    g.cost += item.cost;
                    g.usage += item.quantity;
                }
            }
        }
        let (total, groups) = if keyers.is_empty() {
            (Some(metric_values(&req.metrics, total)), Some(Vec::new()))
        } else {
            let groups = groups
                .into_iter()
                .map(|(keys, sum)| Group { keys: Some(keys), metrics: Some(metric_values(&req.metrics, sum)) })
                .collect();
            (Some(BTreeMap::new()), Some(groups))
        };
        results.push(ResultByTime {
            time_period: Some(DateInterval { start: format_time(start, query.granularity), end: format_time(end, query.granularity) }),
            total,
            groups,
            estimated: Some(end as f64 > crate::ecs::now_epoch()),
        });
    }
    GetCostAndUsageResponse {
        group_definitions: (!defs.is_empty()).then(|| defs.to_vec()),
        results_by_time: Some(results),
        dimension_value_attributes: Some(Vec::new()),
        next_page_token: None,
    }
}

#[cfg(test)]
mod tests {
    use berth_wire::ce::{DimensionValues, TagValues};

    use super::*;
    use crate::cost::tests::record;

    fn request(groups: Vec<GroupDefinition>, filter: Option<Expression>) -> GetCostAndUsageRequest {
        GetCostAndUsageRequest {
            time_period: DateInterval { start: "1970-01-02".into(), end: "1970-01-04".into() },
            granularity: Granularity::Daily,
            metrics: vec!["UnblendedCost".into(), "UsageQuantity".into()],
            group_by: (!groups.is_empty()).then_some(groups),
            filter,
            ..Default::default()
        }
    }

    fn amount(m: &BTreeMap<String, MetricValue>, k: &str) -> f64 {
        m[k].amount.as_deref().unwrap().parse().unwrap()
    }

    #[test]
    fn daily_totals_grouped_by_tag_and_usage_type() {
        let day = 86_400;
        let recs = [record(day, 3600, false, Some("a")), record(day + 3600, 3600, true, None), record(2 * day, 60, false, Some("b"))];
        let prices = PriceTable::default();
        let tag = GroupDefinition { r#type: Some(GroupDefinitionType::Tag), key: Some("team".into()) };
        let req = request(vec![tag], None);
        let q = Query::parse(&req).unwrap();
        let out = answer(&q, &req, &recs, &prices);
        let days = out.results_by_time.unwrap();
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].time_period.as_ref().unwrap().start, "1970-01-02");
        let keys: Vec<Vec<String>> = days[0].groups.as_ref().unwrap().iter().map(|g| g.keys.clone().unwrap()).collect();
        assert_eq!(keys, [vec!["team$".to_owned()], vec!["team$a".to_owned()]]);
        let a = days[0].groups.as_ref().unwrap()[1].metrics.as_ref().unwrap();
        assert!((amount(a, "UnblendedCost") - (0.25 * 0.04048 + 0.5 * 0.004445)).abs() < 1e-9);
        assert!((amount(a, "UsageQuantity") - 0.75).abs() < 1e-9, "0.25 vCPU-hours and 0.5 GB-hours");

        let by_type = GroupDefinition { r#type: Some(GroupDefinitionType::Dimension), key: Some("USAGE_TYPE".into()) };
        let req = request(vec![by_type], None);
        let out = answer(&Query::parse(&req).unwrap(), &req, &recs, &prices);
        let keys: Vec<String> =
            out.results_by_time.unwrap()[0].groups.as_ref().unwrap().iter().map(|g| g.keys.clone().unwrap()[0].clone()).collect();
        assert_eq!(
            keys,
            ["USE1-Fargate-GB-Hours", "USE1-Fargate-vCPU-Hours:perCPU", "USE1-SpotUsage-Fargate-GB-Hours", "USE1-SpotUsage-Fargate-vCPU-Hours:perCPU"]
        );
    }

    #[test]
    fn filters_and_or_not() {
        let day = 86_400;
        let recs = [record(day, 3600, false, Some("a")), record(day + 3600, 3600, true, Some("b"))];
        let prices = PriceTable::default();
        let dims = |key: Dimension, values: &[&str], options: Vec<MatchOption>| Expression {
            dimensions: Some(DimensionValues {
                key: Some(key),
                values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
                match_options: Some(options),
            }),
            ..Default::default()
        };
        let total = |filter: Expression| {
            let req = request(vec![], Some(filter));
            let out = answer(&Query::parse(&req).unwrap(), &req, &recs, &prices);
            amount(out.results_by_time.unwrap()[0].total.as_ref().unwrap(), "UsageQuantity")
        };
        assert!((total(dims(Dimension::Service, &["Amazon Elastic Container Service"], vec![])) - 1.5).abs() < 1e-9);
        assert!((total(dims(Dimension::UsageType, &["USE1-SpotUsage"], vec![MatchOption::StartsWith])) - 0.75).abs() < 1e-9);
        assert!((total(dims(Dimension::UsageType, &["use1-fargate-gb-hours"], vec![MatchOption::CaseInsensitive])) - 0.5).abs() < 1e-9);
        let tag_a = Expression {
            tags: Some(TagValues { key: Some("team".into()), values: Some(vec!["a".into()]), match_options: None }),
            ..Default::default()
        };
        assert!((total(tag_a.clone()) - 0.75).abs() < 1e-9);
        let not_a = Expression { not: Some(Box::new(tag_a.clone())), ..Default::default() };
        assert!((total(not_a) - 0.75).abs() < 1e-9);
        let both = Expression { and: Some(vec![tag_a.clone(), dims(Dimension::UsageType, &["USE1-Fargate-GB-Hours"], vec![])]), ..Default::default() };
        assert!((total(both) - 0.5).abs() < 1e-9);
        let either = Expression { or: Some(vec![tag_a, dims(Dimension::PurchaseType, &["Spot Instances"], vec![])]), ..Default::default() };
        assert!((total(either) - 1.5).abs() < 1e-9);

        let two_roots = Expression { and: Some(vec![]), or: Some(vec![]), ..Default::default() };
        assert!(Query::parse(&request(vec![], Some(two_roots))).is_err());
        let mut bad = request(vec![], None);
        bad.metrics = vec!["Happiness".into()];
        assert!(Query::parse(&bad).is_err());
        bad.metrics = vec!["UnblendedCost".into()];
        bad.time_period.end = "1970-01-01".into();
        assert!(Query::parse(&bad).is_err(), "end before start");
        let az = GroupDefinition { r#type: Some(GroupDefinitionType::Dimension), key: Some("AZ".into()) };
        assert!(Query::parse(&request(vec![az], None)).is_err());
    }

    #[test]
    fn months_and_hours() {
        let start = parse_time("2026-01-30").unwrap();
        let end = parse_time("2026-03-02").unwrap();
        let months = periods(start, end, Granularity::Monthly);
        let shown: Vec<String> = months.iter().map(|(s, _)| format_time(*s, Granularity::Monthly)).collect();
        assert_eq!(shown, ["2026-01-30", "2026-02-01", "2026-03-01"]);
        let hours = periods(parse_time("2026-01-30T10:00:00Z").unwrap(), parse_time("2026-01-30T12:00:00Z").unwrap(), Granularity::Hourly);
        assert_eq!(hours.len(), 2);
        assert_eq!(format_time(hours[1].0, Granularity::Hourly), "2026-01-30T11:00:00Z");
        assert!(parse_time("30/01/2026").is_err());
    }
}
