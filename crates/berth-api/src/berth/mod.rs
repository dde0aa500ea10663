//! Berth's own operator API (`X-Amz-Target: Berth_20261201.*`): what AWS
//! has no API for here. Typed requests in, typed responses out, like the
//! ECS handlers.

mod images;
pub mod network;
pub(crate) mod uploads;

use berth_store::StoreError;
use berth_wire::berth::Action;
use serde::Serialize;
use serde_json::Value;

use crate::{Api, ApiError};

pub(crate) async fn dispatch(api: &Api, action: Action) -> Result<Value, ApiError> {
    match action {
        Action::InterruptSpotTasks(r) => json(crate::spot::interrupt(api.store.as_ref(), r).await?),
        Action::GetCostReport(r) => json(crate::cost::get_report(api, r).await?),
        Action::PullImage(r) => json(images::pull(api, r).await?),
        Action::ListImages(r) => json(images::list(api, r).await?),
        Action::RemoveImage(r) => json(images::remove(api, r).await?),
        Action::CreateSubnet(r) => json(network::create_subnet(api, r).await?),
        Action::ListSubnets(r) => json(network::list_subnets(api, r).await?),
        Action::DeleteSubnet(r) => json(network::delete_subnet(api, r).await?),
        Action::CreateSecurityGroup(r) => json(network::create_group(api, r).await?),
        Action::ListSecurityGroups(r) => json(network::list_groups(api, r).await?),
        Action::DeleteSecurityGroup(r) => json(network::delete_group(api, r).await?),
        Action::AuthorizeSecurityGroupIngress(r) => json(network::change_ingress(api, r, true).await?),
        Action::RevokeSecurityGroupIngress(r) => json(network::change_ingress(api, r, false).await?),
    }
}

fn json<T: Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::Internal(StoreError::Corrupt(e)))
}
