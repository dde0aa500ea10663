//! CloudWatch metrics: PutMetricData, GetMetricStatistics, GetMetricData
//! (MetricStat and metric math, `berth_model::metric_math`), ListMetrics,
//! over the store's datapoints (`berth_store::MetricStore`). Validation
//! follows CloudWatch's documented limits; the statistics are
//! `berth_model::metrics::aggregate`'s.

use std::collections::{BTreeMap, HashMap};

use berth_model::metric_math::{self, Expr, Series, Value};
use berth_model::metrics::{self as model, Datapoint, Dimensions, MetricKey, Sample, Statistic};
use berth_store::MetricQuery;
use berth_wire::cloudwatch::{
    Action, Datapoint as WireDatapoint, Dimension, GetMetricDataInput, GetMetricDataOutput, GetMetricStatisticsInput,
    GetMetricStatisticsOutput, ListMetricsInput, ListMetricsOutput, Metric, MetricDataQuery, MetricDataResult, MetricDatum,
    MetricStat, Output, PutMetricDataInput, ScanBy, StandardUnit, StatusCode,
};

use crate::{Api, ApiError};

/// CloudWatch's limits (PutMetricData, GetMetricStatistics, GetMetricData).
const MAX_METRIC_DATA: usize = 1000;
const MAX_DIMENSIONS: usize = 30;
const MAX_VALUES: usize = 150;
const MAX_PAST_MS: i64 = 14 * 24 * 3_600_000;
const MAX_FUTURE_MS: i64 = 2 * 3_600_000;
const MAX_STATISTIC_DATAPOINTS: i64 = 1440;
const MAX_QUERIES: usize = 500;
const DEFAULT_MAX_DATAPOINTS: usize = 100_800;
const LIST_PAGE: usize = 500;
/// CloudWatch rejects values of magnitude outside [2^-360, 2^360] (zero aside).
const MIN_MAGNITUDE: f64 = 8.515_920_e-109;
const MAX_MAGNITUDE: f64 = 1.174_271e108;

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::service("InvalidParameterValue", m)
}

fn combination(m: impl Into<String>) -> ApiError {
    ApiError::service("InvalidParameterCombination", m)
}

fn missing(m: impl Into<String>) -> ApiError {
    ApiError::service("MissingParameter", m)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

pub(super) async fn dispatch(api: &Api, action: Action) -> Result<Output, ApiError> {
    match action {
        Action::PutMetricData(r) => put_metric_data(api, r).await.map(|()| Output::PutMetricData),
        Action::GetMetricStatistics(r) => get_metric_statistics(api, r).await.map(Output::GetMetricStatistics),
        Action::GetMetricData(r) => get_metric_data(api, r).await.map(Output::GetMetricData),
        Action::ListMetrics(r) => list_metrics(api, r).await.map(Output::ListMetrics),
        other => Err(ApiError::Unsupported(format!("{} is not a metrics operation.", other.name()))),
    }
}

fn check_namespace(ns: &str, what: &str) -> Result<(), ApiError> {
    if ns.is_empty() || ns.len() > 255 || ns.starts_with(':') {
        return Err(invalid(format!("The parameter {what} must be 1 to 255 characters, not starting with ':' (got '{ns}').")));
    }
    Ok(())
}

fn check_metric_name(name: &str, what: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > 255 {
        return Err(invalid(format!("The parameter {what} must be 1 to 255 characters.")));
    }
    Ok(())
}

/// The dimensions of a request as a metric's, checked as CloudWatch does.
fn dimensions(dims: Option<&[Dimension]>, what: &str) -> Result<Dimensions, ApiError> {
    let dims = dims.unwrap_or_default();
    if dims.len() > MAX_DIMENSIONS {
        return Err(invalid(format!("The collection {what} must not have more than {MAX_DIMENSIONS} members (got {}).", dims.len())));
    }
    for (i, d) in dims.iter().enumerate() {
        if d.name.is_empty() || d.name.len() > 255 {
            return Err(invalid(format!("The parameter {what}.member.{}.Name must be 1 to 255 characters.", i + 1)));
        }
        if d.value.is_empty() || d.value.len() > 1024 {
            return Err(invalid(format!("The parameter {what}.member.{}.Value must be 1 to 1024 characters.", i + 1)));
        }
    }
    Dimensions::new(dims.iter().map(|d| (d.name.clone(), d.value.clone())))
        .map_err(|e| invalid(format!("The collection {what} has a duplicate: {e}.")))
}

fn wire_dimensions(d: &Dimensions) -> Vec<Dimension> {
    d.pairs().iter().map(|(name, value)| Dimension { name: name.clone(), value: value.clone() }).collect()
}

fn check_value(v: f64, what: &str) -> Result<(), ApiError> {
    let a = v.abs();
    if !v.is_finite() || (a != 0.0 && !(MIN_MAGNITUDE..=MAX_MAGNITUDE).contains(&a)) {
        return Err(invalid(format!("The value {v} for parameter {what} is invalid: CloudWatch accepts 0 and magnitudes from 8.515920e-109 to 1.174271e+108.")));
    }
    Ok(())
}

/// One MetricDatum as a datapoint (`at`: its place, `MetricData.member.N`).
pub(crate) fn datum(namespace: &str, d: &MetricDatum, at: &str, now: i64) -> Result<Datapoint, ApiError> {
    check_metric_name(&d.metric_name, &format!("{at}.MetricName"))?;
    let dims = dimensions(d.dimensions.as_deref(), &format!("{at}.Dimensions"))?;
    let given = [d.value.is_some(), d.statistic_values.is_some(), d.values.as_ref().is_some_and(|v| !v.is_empty())];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(combination(format!("The parameters {at}.Value, {at}.StatisticValues and {at}.Values are mutually exclusive and you have specified more than one.")));
    }
    if d.counts.as_ref().is_some_and(|c| !c.is_empty()) && !given[2] {
        return Err(combination(format!("The parameter {at}.Counts needs {at}.Values.")));
    }
    let sample = if let Some(v) = d.value {
        check_value(v, &format!("{at}.Value"))?;
        Sample::value(v)
    } else if let Some(s) = &d.statistic_values {
        for (v, name) in [(s.sample_count, "SampleCount"), (s.sum, "Sum"), (s.minimum, "Minimum"), (s.maximum, "Maximum")] {
            check_value(v, &format!("{at}.StatisticValues.{name}"))?;
        }
        if s.sample_count <= 0.0 {
            return Err(invalid(format!("The parameter {at}.StatisticValues.SampleCount must be greater than 0.")));
        }
        if s.minimum > s.maximum {
            return Err(invalid(format!("The parameter {at}.StatisticValues.Minimum must not be greater than its Maximum.")));
        }
        Sample::set(s.sample_count, s.sum, s.minimum, s.maximum)
    } else if let Some(values) = d.values.as_ref().filter(|v| !v.is_empty()) {
        let counts = d.counts.as_deref().unwrap_or_default();
        if values.len() > MAX_VALUES {
            return Err(invalid(format!("The collection {at}.Values must not have more than {MAX_VALUES} members (got {}).", values.len())));
        }
        for (i, v) in values.iter().enumerate() {
            check_value(*v, &format!("{at}.Values.member.{}", i + 1))?;
        }
        if counts.iter().any(|c| !c.is_finite() || *c < 0.0) {
            return Err(invalid(format!("The collection {at}.Counts must hold counts of 0 or more.")));
        }
        Sample::values(values, counts).ok_or_else(|| {
            invalid(format!("The collections {at}.Values and {at}.Counts must have the same length ({} and {}).", values.len(), counts.len()))
        })?
    } else {
        return Err(missing(format!("One of {at}.Value, {at}.StatisticValues or {at}.Values is required.")));
    };
    let resolution_s = match d.storage_resolution {
        None | Some(60) => 60,
        Some(1) => 1,
        Some(r) => return Err(invalid(format!("The value {r} for parameter {at}.StorageResolution is invalid: it must be 1 or 60."))),
    };
    let timestamp_ms = d.timestamp.map_or(now, ms);
    if timestamp_ms < now - MAX_PAST_MS {
        return Err(invalid(format!("The parameter {at}.Timestamp must specify a time no more than two weeks in the past.")));
    }
    if timestamp_ms > now + MAX_FUTURE_MS {
        return Err(invalid(format!("The parameter {at}.Timestamp must specify a time no more than two hours in the future.")));
    }
    Ok(Datapoint {
        key: MetricKey::new(namespace, d.metric_name.clone(), dims),
        timestamp_ms,
        unit: d.unit.as_ref().map_or("None", StandardUnit::as_str).to_owned(),
        resolution_s,
        sample,
    })
}

async fn put_metric_data(api: &Api, r: PutMetricDataInput) -> Result<(), ApiError> {
    check_namespace(&r.namespace, "Namespace")?;
    if r.namespace.starts_with("AWS/") {
        return Err(invalid(format!("The value {} for parameter Namespace is invalid: namespaces starting with AWS/ are reserved for AWS.", r.namespace)));
    }
    let data = r.metric_data.unwrap_or_default();
    if data.is_empty() {
        return Err(missing("The parameter MetricData is required."));
    }
    if data.len() > MAX_METRIC_DATA {
        return Err(invalid(format!("The collection MetricData must not have more than {MAX_METRIC_DATA} members (got {}).", data.len())));
    }
    let now = now_ms();
    let points = data
        .iter()
        .enumerate()
        .map(|(i, d)| datum(&r.namespace, d, &format!("MetricData.member.{}", i + 1), now))
        .collect::<Result<Vec<_>, _>>()?;
    api.store.put_datapoints(&points, now).await?;
    Ok(())
}

/// CloudWatch's periods: 1, 5, 10, 20, 30 or a multiple of 60 seconds.
fn check_period(period: i32, what: &str) -> Result<u32, ApiError> {
    if period <= 0 || !([1, 5, 10, 20, 30].contains(&period) || period % 60 == 0) {
        return Err(invalid(format!("The parameter {what} must be 1, 5, 10, 20, 30 or a multiple of 60 (got {period}).")));
    }
    Ok(period as u32)
}

fn unit_of(text: &str) -> Option<StandardUnit> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

async fn get_metric_statistics(api: &Api, r: GetMetricStatisticsInput) -> Result<GetMetricStatisticsOutput, ApiError> {
    check_namespace(&r.namespace, "Namespace")?;
    check_metric_name(&r.metric_name, "MetricName")?;
    let dims = dimensions(r.dimensions.as_deref(), "Dimensions")?;
    let period = check_period(r.period, "Period")?;
    let (start, end) = (ms(r.start_time), ms(r.end_time));
    if start >= end {
        return Err(invalid("The parameter StartTime must be less than the parameter EndTime."));
    }
    let stats: Vec<Statistic> = r
        .statistics
        .iter()
        .flatten()
        .map(|s| s.as_str().parse::<Statistic>().map_err(|e| invalid(e.to_string())))
        .collect::<Result<_, _>>()?;
    let extended: Vec<(String, Statistic)> = r
        .extended_statistics
        .iter()
        .flatten()
        .map(|s| match s.parse::<Statistic>() {
            Ok(p @ Statistic::Percentile(_)) => Ok((s.clone(), p)),
            _ => Err(invalid(format!("The value {s} for parameter ExtendedStatistics is invalid: it must be a percentile, pNN.NN."))),
        })
        .collect::<Result<_, _>>()?;
    match (stats.is_empty(), extended.is_empty()) {
        (true, true) => return Err(missing("Either the parameter Statistics or the parameter ExtendedStatistics is required.")),
        (false, false) => return Err(combination("The parameters Statistics and ExtendedStatistics are mutually exclusive and you have specified both.")),
        _ => {}
    }
    if stats.len() > 5 {
        return Err(invalid(format!("The collection Statistics must not have more than 5 members (got {}).", stats.len())));
    }
    if extended.len() > 10 {
        return Err(invalid(format!("The collection ExtendedStatistics must not have more than 10 members (got {}).", extended.len())));
    }
    let width = i64::from(period) * 1000;
    let asked = (end - start + width - 1) / width;
    if asked > MAX_STATISTIC_DATAPOINTS {
        return Err(combination(format!(
            "You have requested up to {asked} datapoints, which exceeds the limit of {MAX_STATISTIC_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, or decreasing the time range."
        )));
    }
    let key = MetricKey::new(r.namespace.clone(), r.metric_name.clone(), dims);
    let points = api.store.metric_datapoints(&key, model::period_origin(start, period), end).await?;
    let unit = r.unit.as_ref().map(StandardUnit::as_str);
    let datapoints = model::aggregate(&points, start, end, period, unit)
        .into_iter()
        .map(|p| {
            let get = |s: Statistic| if stats.contains(&s) { p.get(s) } else { None };
            WireDatapoint {
                timestamp: Some(p.start_ms as f64 / 1000.0),
                sample_count: get(Statistic::SampleCount),
                average: get(Statistic::Average),
                sum: get(Statistic::Sum),
                minimum: get(Statistic::Minimum),
                maximum: get(Statistic::Maximum),
                unit: unit_of(&p.unit),
                extended_statistics: (!extended.is_empty())
                    .then(|| extended.iter().filter_map(|(name, s)| p.get(*s).map(|v| (name.clone(), v))).collect::<BTreeMap<_, _>>()),
            }
        })
        .collect();
    Ok(GetMetricStatisticsOutput { label: Some(r.metric_name), datapoints: Some(datapoints) })
}

/// A checked MetricDataQuery: a metric's statistic, or an expression.
enum Query {
    Stat { key: MetricKey, period: u32, stat: Statistic, unit: Option<String> },
    Math(Expr),
}

fn check_query(q: &MetricDataQuery, at: &str) -> Result<Query, ApiError> {
    let id_ok = q.id.len() <= 255
        && q.id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && q.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !id_ok {
        return Err(invalid(format!(
            "The value {} for parameter {at}.Id is invalid: it must start with a lowercase letter and hold only letters, digits and underscores.",
            q.id
        )));
    }
    match (&q.metric_stat, &q.expression) {
        (Some(_), Some(_)) => Err(combination(format!("The parameters {at}.MetricStat and {at}.Expression are mutually exclusive and you have specified both."))),
        (None, None) => Err(missing(format!("One of {at}.MetricStat or {at}.Expression is required."))),
        (Some(MetricStat { metric, period, stat, unit }), None) => {
            let ns = metric.namespace.as_deref().ok_or_else(|| missing(format!("The parameter {at}.MetricStat.Metric.Namespace is required.")))?;
            let name = metric.metric_name.as_deref().ok_or_else(|| missing(format!("The parameter {at}.MetricStat.Metric.MetricName is required.")))?;
            check_namespace(ns, &format!("{at}.MetricStat.Metric.Namespace"))?;
            check_metric_name(name, &format!("{at}.MetricStat.Metric.MetricName"))?;
            let dims = dimensions(metric.dimensions.as_deref(), &format!("{at}.MetricStat.Metric.Dimensions"))?;
            let period = check_period(*period, &format!("{at}.MetricStat.Period"))?;
            let stat = stat.parse::<Statistic>().map_err(|e| invalid(format!("The parameter {at}.MetricStat.Stat is invalid: {e}.")))?;
            Ok(Query::Stat { key: MetricKey::new(ns, name, dims), period, stat, unit: unit.as_ref().map(|u| u.as_str().to_owned()) })
        }
        (None, Some(text)) => metric_math::parse(text)
            .map(Query::Math)
            .map_err(|e| ApiError::service("ValidationError", format!("Error in expression '{}': {e}", q.id))),
    }
}

async fn get_metric_data(api: &Api, r: GetMetricDataInput) -> Result<GetMetricDataOutput, ApiError> {
    let (start, end) = (ms(r.start_time), ms(r.end_time));
    if start >= end {
        return Err(invalid("The parameter StartTime must be less than the parameter EndTime."));
    }
    if r.metric_data_queries.is_empty() {
        return Err(missing("The parameter MetricDataQueries is required."));
    }
    if r.metric_data_queries.len() > MAX_QUERIES {
        return Err(invalid(format!("The collection MetricDataQueries must not have more than {MAX_QUERIES} members.")));
    }
    let max_points = match r.max_datapoints {
        None => DEFAULT_MAX_DATAPOINTS,
        Some(n) if n > 0 => n as usize,
        Some(n) => return Err(invalid(format!("The parameter MaxDatapoints must be greater than 0 (got {n})."))),
    };
    let skip = match &r.next_token {
        None => 0,
        Some(t) => t.strip_prefix("gmd-").and_then(|n| n.parse::<usize>().ok()).ok_or_else(|| ApiError::service("InvalidNextToken", "The NextToken is not one GetMetricData returned."))?,
    };
    let mut queries = Vec::with_capacity(r.metric_data_queries.len());
    let mut seen = HashMap::new();
    for (i, q) in r.metric_data_queries.iter().enumerate() {
        let at = format!("MetricDataQueries.member.{}", i + 1);
        if seen.insert(q.id.clone(), i).is_some() {
            return Err(invalid(format!("The value {} for parameter {at}.Id is used more than once.", q.id)));
        }
        queries.push(check_query(q, &at)?);
    }
    if !r.metric_data_queries.iter().any(|q| q.return_data.unwrap_or(true)) {
        return Err(invalid("At least one of the MetricDataQueries must have ReturnData true."));
    }

    // Metric statistics first, then expressions as their ids resolve.
    let mut values: HashMap<String, Value> = HashMap::new();
    let mut metric_series = Vec::new();
    for (q, query) in r.metric_data_queries.iter().zip(&queries) {
        if let Query::Stat { key, period, stat, unit } = query {
            let points = api.store.metric_datapoints(key, model::period_origin(start, *period), end).await?;
            let series: Series = model::aggregate(&points, start, end, *period, unit.as_deref())
                .into_iter()
                .filter_map(|p| p.get(*stat).map(|v| (p.start_ms, v)))
                .collect();
            metric_series.push(series.clone());
            values.insert(q.id.clone(), Value::Series(series));
        }
    }
    let mut pending: Vec<(usize, &Expr)> =
        queries.iter().enumerate().filter_map(|(i, q)| if let Query::Math(e) = q { Some((i, e)) } else { None }).collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut still = Vec::new();
        for (i, e) in pending {
            let mut refs = Vec::new();
            let mut _all = false;
            e.references(&mut refs, &mut _all);
            let id = &r.metric_data_queries[i].id;
            if let Some(unknown) = refs.iter().find(|x| !seen.contains_key(*x)) {
                return Err(ApiError::service("ValidationError", format!("Error in expression '{id}': Unknown metric or expression id {unknown}")));
            }
            if refs.iter().all(|x| values.contains_key(x)) {
                let v = metric_math::eval(e, &|x| values.get(x).cloned(), &metric_series)
                    .map_err(|err| ApiError::service("ValidationError", format!("Error in expression '{id}': {err}")))?;
                values.insert(id.clone(), v);
            } else {
                still.push((i, e));
            }
        }
        if still.len() == before {
            return Err(ApiError::service("ValidationError", "The expressions of MetricDataQueries refer to each other in a cycle."));
        }
        pending = still;
    }

    let descending = !matches!(r.scan_by, Some(ScanBy::TimestampAscending));
    let mut results = Vec::new();
    let mut skipped = 0usize;
    let mut given = 0usize;
    let mut more = false;
    for q in r.metric_data_queries.iter().filter(|q| q.return_data.unwrap_or(true)) {
        let mut points: Vec<(i64, f64)> = match values.get(&q.id) {
            Some(Value::Series(s)) => s.iter().map(|(t, v)| (*t, *v)).collect(),
            // A number: CloudWatch gives it at each timestamp of the request's metrics.
            Some(Value::Scalar(x)) if x.is_finite() => {
                let mut times: Vec<i64> = metric_series.iter().flat_map(|s| s.keys().copied()).collect();
                times.sort_unstable();
                times.dedup();
                times.into_iter().map(|t| (t, *x)).collect()
            }
            Some(Value::Array(_)) => {
                return Err(ApiError::service(
                    "ValidationError",
                    format!("Error in expression '{}': the result is an array of time series; apply SUM, AVG, MIN or MAX.", q.id),
                ));
            }
            _ => Vec::new(),
        };
        if descending {
            points.reverse();
        }
        // Pages run across results in order: skip what earlier pages gave.
        let drop = (skip - skipped).min(points.len());
        skipped += drop;
        let room = max_points - given;
        let rest = &points[drop..];
        let take = rest.len().min(room);
        more |= take < rest.len();
        given += take;
        let page = &rest[..take];
        let label = q.label.clone().or_else(|| match &q.metric_stat {
            Some(s) => s.metric.metric_name.clone(),
            None => Some(q.id.clone()),
        });
        results.push(MetricDataResult {
            id: Some(q.id.clone()),
            label,
            timestamps: Some(page.iter().map(|p| p.0 as f64 / 1000.0).collect()),
            values: Some(page.iter().map(|p| p.1).collect()),
            status_code: Some(if take < rest.len() { StatusCode::PartialData } else { StatusCode::Complete }),
            messages: None,
        });
    }
    Ok(GetMetricDataOutput {
        metric_data_results: Some(results),
        next_token: more.then(|| format!("gmd-{}", skip + given)),
        messages: Some(Vec::new()),
    })
}

async fn list_metrics(api: &Api, r: ListMetricsInput) -> Result<ListMetricsOutput, ApiError> {
    if let Some(ns) = &r.namespace {
        check_namespace(ns, "Namespace")?;
    }
    if let Some(name) = &r.metric_name {
        check_metric_name(name, "MetricName")?;
    }
    let dims = r.dimensions.unwrap_or_default();
    if dims.len() > 10 {
        return Err(invalid(format!("The collection Dimensions must not have more than 10 members (got {}).", dims.len())));
    }
    if let Some(d) = dims.iter().find(|d| d.name.is_empty() || d.name.len() > 255) {
        return Err(invalid(format!("The dimension name '{}' must be 1 to 255 characters.", d.name)));
    }
    let skip = match &r.next_token {
        None => 0,
        Some(t) => t
            .strip_prefix("lm-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::service("InvalidNextToken", "The NextToken is not one ListMetrics returned."))?,
    };
    let query = MetricQuery {
        namespace: r.namespace,
        metric_name: r.metric_name,
        dimensions: dims.into_iter().map(|d| (d.name, d.value)).collect(),
        active_since_ms: r.recently_active.map(|_| now_ms() - model::RECENTLY_ACTIVE_MS),
    };
    let all = api.store.list_metrics(&query).await?;
    let page: Vec<Metric> = all
        .iter()
        .skip(skip)
        .take(LIST_PAGE)
        .map(|m| Metric {
            namespace: Some(m.key.namespace.clone()),
            metric_name: Some(m.key.metric_name.clone()),
            dimensions: Some(wire_dimensions(&m.key.dimensions)),
        })
        .collect();
    let next = skip + page.len();
    Ok(ListMetricsOutput { metrics: Some(page), next_token: (next < all.len()).then(|| format!("lm-{next}")), owning_accounts: None })
}
