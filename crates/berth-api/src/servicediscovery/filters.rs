//! The list filters Cloud Map takes (`Name`, `Values`, `Condition`), and
//! the operations (GetOperation, ListOperations).

use berth_model::discovery::{DiscoveryError, Operation};
use berth_wire::servicediscovery as wire;

use super::{invalid, page};
use crate::{Api, ApiError};

/// One filter of a list request.
pub(super) struct Filter {
    pub name: &'static str,
    pub values: Vec<String>,
    pub condition: &'static str,
}

impl Filter {
    /// A request's filters, each as (name, values, condition).
    pub fn all(
        filters: impl IntoIterator<Item = (&'static str, Vec<String>, Option<&'static str>)>,
    ) -> Result<Vec<Self>, ApiError> {
        filters
            .into_iter()
            .map(|(name, values, condition)| {
                if values.is_empty() {
                    return Err(invalid(format!("The filter {name} needs at least one value.")));
                }
                Ok(Self { name, values, condition: condition.unwrap_or("EQ") })
            })
            .collect()
    }
}

/// The items every filter keeps (`test` says whether one filter keeps one
/// item, or that the filter is not valid).
pub(super) fn kept<T>(
    items: impl IntoIterator<Item = T>,
    filters: &[Filter],
    test: impl Fn(&Filter, &T) -> Result<bool, ApiError>,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::new();
    for item in items {
        if filters.iter().try_fold(true, |keep, f| Ok::<_, ApiError>(keep && test(f, &item)?))? {
            out.push(item);
        }
    }
    Ok(out)
}

/// Whether `actual` passes `f`, whose condition must be one of `allowed`
/// (EQ: the one value; IN: any of the values; BEGINS_WITH: a prefix).
pub(super) fn matches(f: &Filter, actual: &str, allowed: &[&str]) -> Result<bool, ApiError> {
    if !allowed.contains(&f.condition) {
        return Err(invalid(format!(
            "The filter {} takes the condition {}, not {}.",
            f.name,
            allowed.join(" or "),
            f.condition
        )));
    }
    let one = || match f.values.as_slice() {
        [v] => Ok(v.as_str()),
        _ => Err(invalid(format!("The filter {} with {} takes exactly one value.", f.name, f.condition))),
    };
    Ok(match f.condition {
        "EQ" => one()? == actual,
        "BEGINS_WITH" => actual.starts_with(one()?),
        _ => f.values.iter().any(|v| v == actual),
    })
}

/// Whether `at` (epoch seconds) is within a BETWEEN filter's two values.
fn between(f: &Filter, at: f64) -> Result<bool, ApiError> {
    let bad = || invalid("The UPDATE_DATE filter takes BETWEEN and two epoch times (seconds).");
    if f.condition != "BETWEEN" {
        return Err(bad());
    }
    let [from, to] = f.values.as_slice() else { return Err(bad()) };
    let (from, to) = (from.parse::<f64>().map_err(|_| bad())?, to.parse::<f64>().map_err(|_| bad())?);
    Ok(from <= at && at <= to)
}

pub(super) fn wire_operation(op: &Operation, owner: &str) -> wire::Operation {
    let targets = op
        .targets
        .iter()
        .filter_map(|(k, v)| Some((k.parse::<wire::OperationTargetType>().ok()?, v.clone())))
        .collect();
    wire::Operation {
        id: Some(op.id.clone()),
        owner_account: Some(owner.to_owned()),
        r#type: op.kind.as_str().parse().ok(),
        status: op.status.as_str().parse().ok(),
        error_message: op.error_message.clone(),
        error_code: op.error_code.clone(),
        create_date: Some(op.created_at),
        update_date: Some(op.updated_at),
        targets: Some(targets),
    }
}

pub(super) async fn get_operation(api: &Api, r: wire::GetOperationRequest) -> Result<wire::GetOperationResponse, ApiError> {
    let op = api
        .store
        .get_operation(&r.operation_id)
        .await?
        .ok_or_else(|| DiscoveryError::OperationNotFound(r.operation_id.clone()))?;
    Ok(wire::GetOperationResponse { operation: Some(wire_operation(&op, &api.account().account_id)) })
}

pub(super) async fn list_operations(api: &Api, r: wire::ListOperationsRequest) -> Result<wire::ListOperationsResponse, ApiError> {
    let filters = Filter::all(
        r.filters.unwrap_or_default().into_iter().map(|f| (f.name.as_str(), f.values, f.condition.map(|c| c.as_str()))),
    )?;
    let kept = kept(api.store.list_operations().await?, &filters, |f, op| {
        let target = |k: &str| op.targets.get(k).map_or("", String::as_str);
        match f.name {
            "NAMESPACE_ID" => matches(f, target("NAMESPACE"), &["EQ"]),
            "SERVICE_ID" => matches(f, target("SERVICE"), &["EQ"]),
            "STATUS" => matches(f, op.status.as_str(), &["EQ", "IN"]),
            "TYPE" => matches(f, op.kind.as_str(), &["EQ", "IN"]),
            _ => between(f, op.updated_at),
        }
    })?;
    let (ops, next_token) = page(kept, |o| o.id.as_str(), r.next_token.as_deref(), r.max_results)?;
    let operations = ops
        .into_iter()
        .map(|o| wire::OperationSummary { id: Some(o.id.clone()), status: o.status.as_str().parse().ok() })
        .collect();
    Ok(wire::ListOperationsResponse { operations: Some(operations), next_token })
}
