//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies, DeregisterTaskDefinition,
//! DeleteTaskDefinitions.

use berth_model::records::TaskDefinitionRecord;
use berth_model::{arn, tags, task_definition};
use berth_store::{FamilyStatus, Page, SortOrder, TaskDefinitionFilter, Versioned};
use berth_wire::ecs::{
    DeleteTaskDefinitionsRequest, DeleteTaskDefinitionsResponse, DeregisterTaskDefinitionRequest,
    DeregisterTaskDefinitionResponse, DescribeTaskDefinitionRequest, DescribeTaskDefinitionResponse, Failure,
    ListTaskDefinitionFamiliesRequest, ListTaskDefinitionFamiliesResponse, ListTaskDefinitionsRequest,
    ListTaskDefinitionsResponse, RegisterTaskDefinitionRequest, RegisterTaskDefinitionResponse, TaskDefinitionField,
    TaskDefinitionFamilyStatus, TaskDefinitionStatus,
};

use super::{Call, now_epoch, with_retry};
use crate::{ApiError, paging};

/// DeleteTaskDefinitions takes at most this many per call.
const MAX_DELETE: usize = 10;

pub async fn register(
    call: &Call<'_>,
    req: RegisterTaskDefinitionRequest,
) -> Result<RegisterTaskDefinitionResponse, ApiError> {
    task_definition::validate_size(call.body_len)?;
    task_definition::validate(&req)?;
    let tag_list = req.tags.clone().unwrap_or_default();
    tags::validate(&tag_list)?;
    let family = req.family.clone();
    let registered_at = now_epoch();
    let principal = call.principal_arn();
    let account = call.account().clone();
    let build = move |revision: i32| TaskDefinitionRecord {
        definition: task_definition::build(&account, req.clone(), revision, registered_at, Some(principal.clone())),
        tags: tag_list.clone(),
    };
    let stored = call.store().register_task_definition(&family, &build).await?;
    tracing::info!(family = %family, revision = stored.value.definition.revision, "registered task definition");
    let record = stored.value;
    Ok(RegisterTaskDefinitionResponse { task_definition: Some(record.definition), tags: Some(record.tags) })
}

pub async fn describe(
    call: &Call<'_>,
    req: DescribeTaskDefinitionRequest,
) -> Result<DescribeTaskDefinitionResponse, ApiError> {
    let found = lookup(call, &req.task_definition).await?;
    let with_tags = req.include.unwrap_or_default().contains(&TaskDefinitionField::Tags);
    let record = found.value;
    Ok(DescribeTaskDefinitionResponse {
        task_definition: Some(record.definition),
        tags: with_tags.then_some(record.tags),
    })
}

pub async fn list(call: &Call<'_>, req: ListTaskDefinitionsRequest) -> Result<ListTaskDefinitionsResponse, ApiError> {
    let limit = paging::limit(req.max_results)?;
    let after = paging::decode::<(String, i32)>(req.next_token.as_deref())?;
    let filter = TaskDefinitionFilter {
        family: req.family_prefix.filter(|f| !f.is_empty()),
        status: Some(req.status.unwrap_or(TaskDefinitionStatus::Active).as_str().to_owned()),
        sort: match req.sort {
            Some(berth_wire::ecs::SortOrder::Desc) => SortOrder::Desc,
            _ => SortOrder::Asc,
        },
    };
    let rows = call.store().list_task_definitions(&filter, Page { after, limit: limit + 1 }).await?;
    let (rows, next_token) = paging::finish(rows, limit, |r| {
        let d = &r.value.definition;
        (d.family.clone().unwrap_or_default(), d.revision.unwrap_or_default())
    });
    Ok(ListTaskDefinitionsResponse {
        task_definition_arns: Some(rows.into_iter().filter_map(|r| r.value.definition.task_definition_arn).collect()),
        next_token,
    })
}

pub async fn list_families(
    call: &Call<'_>,
    req: ListTaskDefinitionFamiliesRequest,
) -> Result<ListTaskDefinitionFamiliesResponse, ApiError> {
    let limit = paging::limit(req.max_results)?;
    let after = paging::decode::<String>(req.next_token.as_deref())?;
    let status = match req.status {
        Some(TaskDefinitionFamilyStatus::Active) => FamilyStatus::Active,
        Some(TaskDefinitionFamilyStatus::Inactive) => FamilyStatus::Inactive,
        Some(TaskDefinitionFamilyStatus::All) | None => FamilyStatus::All,
    };
    let prefix = req.family_prefix.filter(|p| !p.is_empty());
    let rows = call
        .store()
        .list_task_definition_families(prefix.as_deref(), status, Page { after, limit: limit + 1 })
        .await?;
    let (families, next_token) = paging::finish(rows, limit, Clone::clone);
    Ok(ListTaskDefinitionFamiliesResponse { families: Some(families), next_token })
}

pub async fn deregister(
    call: &Call<'_>,
    req: DeregisterTaskDefinitionRequest,
) -> Result<DeregisterTaskDefinitionResponse, ApiError> {
    let (family, revision) = revision_ref(call, &req.task_definition)?;
    let updated = with_retry(|| async {
        let current = get(call, &family, revision).await?;
        let mut record = current.value;
        if record.definition.status == Some(TaskDefinitionStatus::Active) {
            record.definition.status = Some(TaskDefinitionStatus::Inactive);
            record.definition.deregistered_at = Some(now_epoch());
            Ok(call.store().update_task_definition(&record, current.version).await?)
        } else {
            Ok(Versioned { version: current.version, value: record })
        }
    })
    .await?;
    Ok(DeregisterTaskDefinitionResponse { task_definition: Some(updated.value.definition) })
}

pub async fn delete(
    call: &Call<'_>,
    req: DeleteTaskDefinitionsRequest,
) -> Result<DeleteTaskDefinitionsResponse, ApiError> {
    if req.task_definitions.is_empty() || req.task_definitions.len() > MAX_DELETE {
        return Err(ApiError::invalid_parameter(format!(
            "taskDefinitions must name 1 to {MAX_DELETE} task definitions; {} were given.",
            req.task_definitions.len()
        )));
    }
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for param in &req.task_definitions {
        match delete_one(call, param).await {
            Ok(def) => deleted.push(def),
            Err(ApiError::Internal(e)) => return Err(ApiError::Internal(e)),
            Err(e) => failures.push(Failure {
                arn: Some(param.clone()),
                reason: Some(e.to_string()),
                detail: None,
            }),
        }
    }
    Ok(DeleteTaskDefinitionsResponse { task_definitions: Some(deleted), failures: Some(failures) })
}

async fn delete_one(call: &Call<'_>, param: &str) -> Result<berth_wire::ecs::TaskDefinition, ApiError> {
    let (family, revision) = revision_ref(call, param)?;
    let updated = with_retry(|| async {
        let current = get(call, &family, revision).await?;
        let mut record = current.value;
        match record.definition.status {
            Some(TaskDefinitionStatus::Active) | None => Err(ApiError::invalid_parameter(
                "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
            )),
            Some(TaskDefinitionStatus::DeleteInProgress) => Ok(Versioned { version: current.version, value: record }),
            Some(TaskDefinitionStatus::Inactive) => {
                record.definition.status = Some(TaskDefinitionStatus::DeleteInProgress);
                record.definition.delete_requested_at = Some(now_epoch());
                Ok(call.store().update_task_definition(&record, current.version).await?)
            }
        }
    })
    .await?;
    Ok(updated.value.definition)
}

/// `family:revision` or an ARN; a bare family is refused (a revision is
/// required to deregister or delete).
fn revision_ref(call: &Call<'_>, param: &str) -> Result<(String, i32), ApiError> {
    match arn::task_definition_ref(call.account(), param)? {
        (family, Some(rev)) => Ok((family, rev)),
        (_, None) => Err(ApiError::ecs(
            "ClientException",
            format!("A revision is required: give {param}:REVISION or the task definition's full ARN."),
        )),
    }
}

async fn get(call: &Call<'_>, family: &str, revision: i32) -> Result<Versioned<TaskDefinitionRecord>, ApiError> {
    call.store()
        .get_task_definition(family, revision)
        .await?
        .ok_or_else(|| ApiError::ecs("ClientException", "Unable to describe task definition."))
}

/// A task definition by family (latest ACTIVE), family:revision or ARN.
pub(super) async fn lookup(call: &Call<'_>, param: &str) -> Result<Versioned<TaskDefinitionRecord>, ApiError> {
    match arn::task_definition_ref(call.account(), param)? {
        (family, Some(rev)) => get(call, &family, rev).await,
        (family, None) => call
            .store()
            .latest_active_task_definition(&family)
            .await?
            .ok_or_else(|| ApiError::ecs("ClientException", "Unable to describe task definition.")),
    }
}
