//! Berth's own operator API (`X-Amz-Target: Berth_20261201.*`): what AWS
//! has no API for here. Typed requests in, typed responses out, like the
//! ECS handlers.

mod images;
pub(crate) mod uploads;

use berth_store::StoreError;
use berth_wire::berth::Action;
use serde::Serialize;
use serde_json::Value;

use crate::{Api, ApiError};

pub(crate) async fn dispatch(api: &Api, action: Action) -> Result<Value, ApiError> {
    match action {
        Action::PullImage(r) => json(images::pull(api, r).await?),
        Action::ListImages(r) => json(images::list(api, r).await?),
        Action::RemoveImage(r) => json(images::remove(api, r).await?),
    }
}

fn json<T: Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::Internal(StoreError::Corrupt(e)))
}
