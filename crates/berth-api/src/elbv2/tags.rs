//! AddTags, RemoveTags, DescribeTags on load balancers, target groups,
//! listeners and rules (told apart by their ARNs), with ELBv2's limits:
//! 50 tags a resource, keys 1..=128 and values 0..=256 characters, no
//! `aws:` prefix.

use std::collections::BTreeMap;

use berth_wire::elbv2::{AddTagsInput, AddTagsOutput, DescribeTagsInput, DescribeTagsOutput, RemoveTagsInput, RemoveTagsOutput, Tag, TagDescription};
use berth_store::StoreError;

use super::{err, validation};
use crate::{Api, ApiError};

const MAX_TAGS: usize = 50;
const MAX_RESOURCES: usize = 20;

/// `current` with `new` added (values of existing keys replaced), checked.
pub(crate) fn merge(current: &BTreeMap<String, String>, new: &[Tag]) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = current.clone();
    let mut seen = std::collections::BTreeSet::new();
    for t in new {
        let value = t.value.clone().unwrap_or_default();
        if t.key.is_empty() || t.key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(validation(format!("Tag key '{}' must be 1 to 128 characters and its value at most 256", t.key)));
        }
        if t.key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
            return Err(validation(format!("Tag key '{}' uses the reserved prefix 'aws:'", t.key)));
        }
        if !seen.insert(t.key.clone()) {
            return Err(err("DuplicateTagKeys", format!("Tag key '{}' is given more than once", t.key)));
        }
        out.insert(t.key.clone(), value);
    }
    if out.len() > MAX_TAGS {
        return Err(err("TooManyTags", format!("A resource can have at most {MAX_TAGS} tags")));
    }
    Ok(out)
}

/// What `with_tags` does to a resource's tags: the new tags, or `None`
/// to leave them as they are.
type Edit<'a> = dyn Fn(&BTreeMap<String, String>) -> Result<Option<BTreeMap<String, String>>, ApiError> + Sync + 'a;

/// A resource's tags, changed by `edit` (re-read and retried on a
/// concurrent write); `None` from `edit` only reads.
async fn with_tags(
    api: &Api,
    arn: &str,
    edit: &Edit<'_>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let s = api.store.as_ref();
    for _ in 0..8 {
        // Each kind keeps its tags in its record: read, edit, write back at
        // the version read.
        macro_rules! edited {
            ($get:ident, $put:ident, $missing:path) => {{
                let v = s.$get(arn).await?.ok_or_else($missing)?;
                let Some(tags) = edit(&v.value.tags)? else { return Ok(v.value.tags) };
                let mut next = v.value;
                next.tags = tags.clone();
                s.$put(&next, Some(v.version)).await.map(|_| tags)
            }};
        }
        let written = if arn.contains(":loadbalancer/") {
            edited!(get_load_balancer, put_load_balancer, super::load_balancers::not_found)
        } else if arn.contains(":targetgroup/") {
            edited!(get_target_group, put_target_group, super::target_groups::not_found)
        } else if arn.contains(":listener/") {
            edited!(get_listener, put_listener, super::listeners::not_found)
        } else if arn.contains(":listener-rule/") {
            edited!(get_rule, put_rule, super::rules::not_found)
        } else {
            return Err(validation(format!("'{arn}' is not a valid load balancer, target group, listener or rule ARN")));
        };
        match written {
            Ok(tags) => return Ok(tags),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Internal(StoreError::Conflict))
}

fn check_count(arns: &[String]) -> Result<(), ApiError> {
    if arns.is_empty() || arns.len() > MAX_RESOURCES {
        return Err(validation(format!("From 1 to {MAX_RESOURCES} resource ARNs must be given")));
    }
    Ok(())
}

pub(super) async fn add(api: &Api, r: AddTagsInput) -> Result<AddTagsOutput, ApiError> {
    check_count(&r.resource_arns)?;
    for arn in &r.resource_arns {
        with_tags(api, arn, &|current| merge(current, &r.tags).map(Some)).await?;
    }
    Ok(AddTagsOutput {})
}

pub(super) async fn remove(api: &Api, r: RemoveTagsInput) -> Result<RemoveTagsOutput, ApiError> {
    check_count(&r.resource_arns)?;
    for arn in &r.resource_arns {
        with_tags(api, arn, &|current| {
            let mut next = current.clone();
            next.retain(|k, _| !r.tag_keys.contains(k));
            Ok(Some(next))
        })
        .await?;
    }
    Ok(RemoveTagsOutput {})
}

pub(super) async fn describe(api: &Api, r: DescribeTagsInput) -> Result<DescribeTagsOutput, ApiError> {
    check_count(&r.resource_arns)?;
    let mut out = Vec::new();
    for arn in &r.resource_arns {
        let tags = with_tags(api, arn, &|_| Ok(None)).await?;
        out.push(TagDescription {
            resource_arn: Some(arn.clone()),
            tags: Some(tags.into_iter().map(|(key, value)| Tag { key, value: Some(value) }).collect()),
        });
    }
    Ok(DescribeTagsOutput { tag_descriptions: Some(out) })
}
