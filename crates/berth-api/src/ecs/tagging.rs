//! TagResource, UntagResource, ListTagsForResource.

use berth_model::arn::ResourceArn;
use berth_model::tags;
use berth_wire::ecs::{
    ListTagsForResourceRequest, ListTagsForResourceResponse, Tag, TagResourceRequest, TagResourceResponse,
    UntagResourceRequest, UntagResourceResponse,
};

use super::{Call, convert, with_retry};
use crate::ApiError;

pub async fn tag(call: &Call<'_>, req: TagResourceRequest) -> Result<TagResourceResponse, ApiError> {
    tags::validate(&req.tags)?;
    modify(call, &req.resource_arn, |current| tags::merge(current, &req.tags).map_err(Into::into)).await?;
    Ok(TagResourceResponse {})
}

pub async fn untag(call: &Call<'_>, req: UntagResourceRequest) -> Result<UntagResourceResponse, ApiError> {
    modify(call, &req.resource_arn, |current| Ok(tags::remove(current, &req.tag_keys))).await?;
    Ok(UntagResourceResponse {})
}

pub async fn list(call: &Call<'_>, req: ListTagsForResourceRequest) -> Result<ListTagsForResourceResponse, ApiError> {
    let tags = match ResourceArn::parse(call.account(), &req.resource_arn)? {
        ResourceArn::Cluster { name } => super::clusters::active(call, &name).await?.value.tags,
        ResourceArn::TaskDefinition { family, revision } => {
            Some(task_definition(call, &family, revision).await?.value.tags)
        }
        ResourceArn::Task { .. } => {
            Some(convert::tags_to_wire(&call.store().get_task(&req.resource_arn).await?.ok_or_else(not_found)?.value.tags))
        }
        ResourceArn::Service { .. } => Some(convert::tags_to_wire(
            &call.store().get_service(&req.resource_arn).await?.ok_or_else(not_found)?.value.tags,
        )),
    };
    Ok(ListTagsForResourceResponse { tags: Some(tags.unwrap_or_default()) })
}

fn not_found() -> ApiError {
    ApiError::ecs("ResourceNotFoundException", "The specified resource could not be found.")
}

async fn task_definition(
    call: &Call<'_>,
    family: &str,
    revision: i32,
) -> Result<berth_store::Versioned<berth_model::records::TaskDefinitionRecord>, ApiError> {
    call.store().get_task_definition(family, revision).await?.ok_or_else(not_found)
}

/// Applies `change` to a resource's tags with optimistic concurrency.
async fn modify(
    call: &Call<'_>,
    resource_arn: &str,
    change: impl Fn(&[Tag]) -> Result<Vec<Tag>, ApiError>,
) -> Result<(), ApiError> {
    let target = ResourceArn::parse(call.account(), resource_arn)?;
    let store = call.store();
    with_retry(|| async {
        match &target {
            ResourceArn::Cluster { name } => {
                let current = super::clusters::active(call, name).await?;
                let mut c = current.value;
                c.tags = Some(change(c.tags.as_deref().unwrap_or_default())?);
                store.update_cluster(&c, current.version).await?;
            }
            ResourceArn::TaskDefinition { family, revision } => {
                let current = task_definition(call, family, *revision).await?;
                let mut r = current.value;
                r.tags = change(&r.tags)?;
                store.update_task_definition(&r, current.version).await?;
            }
            ResourceArn::Task { .. } => {
                let current = store.get_task(resource_arn).await?.ok_or_else(not_found)?;
                let mut t = current.value;
                t.tags = convert::tags_from_wire(&change(&convert::tags_to_wire(&t.tags))?);
                store.put_task(&t, Some(current.version)).await?;
            }
            ResourceArn::Service { .. } => {
                let current = store.get_service(resource_arn).await?.ok_or_else(not_found)?;
                let mut s = current.value;
                s.tags = convert::tags_from_wire(&change(&convert::tags_to_wire(&s.tags))?);
                store.put_service(&s, Some(current.version)).await?;
            }
        }
        Ok(())
    })
    .await
}
