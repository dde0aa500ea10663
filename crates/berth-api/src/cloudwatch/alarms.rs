//! CloudWatch alarms and resource tags: not served yet (issue 16's
//! alarms half). Each operation answers that Berth does not support it.

use berth_wire::cloudwatch::{Action, Output};

use crate::{Api, ApiError};

pub(super) async fn dispatch(_api: &Api, action: Action) -> Result<Output, ApiError> {
    Err(ApiError::Unsupported(format!("Berth does not support the monitoring operation {} yet.", action.name())))
}
