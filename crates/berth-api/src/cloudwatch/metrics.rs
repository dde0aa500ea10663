//! CloudWatch metrics: PutMetricData, GetMetricStatistics, GetMetricData,
//! ListMetrics.

use berth_wire::cloudwatch::{Action, ListMetricsInput, ListMetricsOutput, Output};

use crate::{Api, ApiError};

pub(super) async fn dispatch(_api: &Api, action: Action) -> Result<Output, ApiError> {
    Err(ApiError::Unsupported(format!("Berth does not support the monitoring operation {} yet.", action.name())))
}

pub(super) async fn list_metrics(_api: &Api, r: ListMetricsInput) -> Result<ListMetricsOutput, ApiError> {
    let invalid = |m: String| ApiError::service("InvalidParameterValue", m);
    if let Some(ns) = &r.namespace
        && (ns.is_empty() || ns.len() > 255 || ns.starts_with(':'))
    {
        return Err(invalid(format!("The parameter Namespace must be 1 to 255 characters, not starting with ':' (got '{ns}').")));
    }
    if let Some(name) = &r.metric_name
        && (name.is_empty() || name.len() > 255)
    {
        return Err(invalid("The parameter MetricName must be 1 to 255 characters.".into()));
    }
    let dims = r.dimensions.unwrap_or_default();
    if dims.len() > 10 {
        return Err(invalid(format!("The collection Dimensions must not have more than 10 members (got {}).", dims.len())));
    }
    if let Some(d) = dims.iter().find(|d| d.name.is_empty() || d.name.len() > 255) {
        return Err(invalid(format!("The dimension name '{}' must be 1 to 255 characters.", d.name)));
    }
    if r.next_token.is_some() {
        // No list was ever cut into pages, so no token is one of ours.
        return Err(ApiError::service("InvalidNextToken", "The NextToken is not one ListMetrics returned."));
    }
    Ok(ListMetricsOutput { metrics: Some(Vec::new()), next_token: None, owning_accounts: None })
}
