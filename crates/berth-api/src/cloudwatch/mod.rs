//! CloudWatch (`monitoring`), over each of the three protocols its model
//! lists (Smithy RPC v2 CBOR, AWS JSON 1.0 in query compatibility, AWS
//! Query; the edge decodes and encodes them). Metrics (PutMetricData,
//! GetMetricStatistics, GetMetricData, ListMetrics) are in [`metrics`];
//! alarms and resource tags in [`alarms`].

mod alarms;
pub(crate) mod metrics;
mod retention;

pub use retention::run_metric_retention;

use berth_wire::cloudwatch::{Action, Output};

use crate::{Api, ApiError};

pub(crate) async fn dispatch(api: &Api, action: Action) -> Result<Output, ApiError> {
    match action {
        Action::ListMetrics(_) | Action::PutMetricData(_) | Action::GetMetricStatistics(_) | Action::GetMetricData(_) => {
            metrics::dispatch(api, action).await
        }
        Action::PutMetricAlarm(_)
        | Action::DescribeAlarms(_)
        | Action::DescribeAlarmsForMetric(_)
        | Action::DescribeAlarmHistory(_)
        | Action::SetAlarmState(_)
        | Action::EnableAlarmActions(_)
        | Action::DisableAlarmActions(_)
        | Action::DeleteAlarms(_)
        | Action::TagResource(_)
        | Action::UntagResource(_)
        | Action::ListTagsForResource(_) => alarms::dispatch(api, action).await,
    }
}
