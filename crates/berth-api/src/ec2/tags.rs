//! CreateTags, DeleteTags, DescribeTags on subnets and security groups
//! (a subnet's `Name` tag is its Berth name). The VPC takes no tags: it is
//! not a record of its own.

use std::collections::BTreeMap;

use berth_model::network::SubnetRecord;
use berth_wire::ec2::{
    CreateTagsRequest, DeleteTagsRequest, DescribeTagsRequest, DescribeTagsResult, ResourceType, Tag, TagDescription,
    TagSpecification,
};

use super::filters::{Filters, page};
use super::{Call, VPC_ID, invalid};
use crate::ApiError;
use crate::berth::network as shared;

/// EC2's limit of tags per resource.
const MAX_TAGS: usize = 50;

/// A subnet's tags as EC2 shows them: its name is the `Name` tag.
pub(super) fn subnet_tags(s: &SubnetRecord) -> BTreeMap<String, String> {
    let mut tags = s.tags.clone();
    if !s.name.is_empty() {
        tags.insert("Name".into(), s.name.clone());
    }
    tags
}

fn check_tag(key: &str, value: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(invalid(format!("Tag key '{key}' must be 1 to 128 characters.")));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(invalid(format!("Tag keys starting with 'aws:' are reserved for AWS use ('{key}').")));
    }
    if value.chars().count() > 256 {
        return Err(invalid(format!("The value of tag '{key}' must be at most 256 characters.")));
    }
    Ok(())
}

fn to_map(tags: Vec<Tag>) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for t in tags {
        let key = t.key.unwrap_or_default();
        let value = t.value.unwrap_or_default();
        check_tag(&key, &value)?;
        out.insert(key, value);
    }
    Ok(out)
}

/// The tags a create request's `TagSpecification`s give a resource of
/// `kind`; a specification for another kind is refused, as EC2 does.
pub(super) fn tags_for(specs: Option<Vec<TagSpecification>>, kind: ResourceType) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for spec in specs.unwrap_or_default() {
        let rt = spec.resource_type.unwrap_or(kind);
        if rt != kind {
            return Err(invalid(format!("'{}' is not a valid taggable resource type for this operation.", rt.as_str())));
        }
        out.extend(to_map(spec.tags.unwrap_or_default())?);
    }
    if out.len() > MAX_TAGS {
        return Err(ApiError::service("TagLimitExceeded", format!("A resource can have at most {MAX_TAGS} tags.")));
    }
    Ok(out)
}

/// What a resource id names.
enum Resource {
    Subnet,
    Group,
}

fn resource(id: &str) -> Result<Resource, ApiError> {
    if id == VPC_ID {
        return Err(invalid(format!("Berth's VPC {VPC_ID} takes no tags; tag its subnets and security groups.")));
    }
    if id.starts_with("subnet-") {
        Ok(Resource::Subnet)
    } else if id.starts_with("sg-") {
        Ok(Resource::Group)
    } else {
        Err(ApiError::service("InvalidID", format!("The ID '{id}' is not valid: Berth tags subnets (subnet-…) and security groups (sg-…).")))
    }
}

/// Changes the tags of every resource, each in a versioned write; every
/// id is checked to exist first, so an unknown one changes nothing.
async fn change(call: &Call<'_>, ids: &[String], f: impl Fn(&mut BTreeMap<String, String>)) -> Result<(), ApiError> {
    for id in ids {
        match resource(id)? {
            Resource::Subnet => {
                call.store().get_subnet(id).await?.ok_or_else(|| shared::subnet_not_found(id))?;
            }
            Resource::Group => {
                call.store().get_security_group(id).await?.ok_or_else(|| shared::group_not_found(id))?;
            }
        }
    }
    for id in ids {
        crate::ecs::with_retry(|| async {
            match resource(id)? {
                Resource::Subnet => {
                    let cur = call.store().get_subnet(id).await?.ok_or_else(|| shared::subnet_not_found(id))?;
                    let mut s = cur.value;
                    let mut tags = subnet_tags(&s);
                    f(&mut tags);
                    if tags.len() > MAX_TAGS {
                        return Err(ApiError::service("TagLimitExceeded", format!("A resource can have at most {MAX_TAGS} tags.")));
                    }
                    s.name = tags.remove("Name").unwrap_or_default();
                    s.tags = tags;
                    call.store().put_subnet(&s, Some(cur.version)).await?;
                }
                Resource::Group => {
                    let cur = call.store().get_security_group(id).await?.ok_or_else(|| shared::group_not_found(id))?;
                    let mut g = cur.value;
                    f(&mut g.tags);
                    if g.tags.len() > MAX_TAGS {
                        return Err(ApiError::service("TagLimitExceeded", format!("A resource can have at most {MAX_TAGS} tags.")));
                    }
                    call.store().put_security_group(&g, Some(cur.version)).await?;
                }
            }
            Ok(())
        })
        .await?;
    }
    Ok(())
}

pub(super) async fn create(call: &Call<'_>, r: CreateTagsRequest) -> Result<(), ApiError> {
    let tags = to_map(r.tags)?;
    change(call, &r.resources, |t| t.extend(tags.clone())).await
}

/// DeleteTags: a tag given with a value is deleted only if it has that
/// value; without one, whatever its value; no tags given, all of them.
pub(super) async fn delete(call: &Call<'_>, r: DeleteTagsRequest) -> Result<(), ApiError> {
    let given = r.tags;
    change(call, &r.resources, |t| match &given {
        None => t.clear(),
        Some(list) if list.is_empty() => t.clear(),
        Some(list) => {
            for tag in list {
                let key = tag.key.clone().unwrap_or_default();
                if tag.value.as_ref().is_none_or(|v| t.get(&key) == Some(v)) {
                    t.remove(&key);
                }
            }
        }
    })
    .await
}

pub(super) async fn describe(call: &Call<'_>, r: DescribeTagsRequest) -> Result<DescribeTagsResult, ApiError> {
    let filters = Filters::new(r.filters, &["key", "value", "resource-id", "resource-type"])?;
    let mut all: Vec<(String, ResourceType, BTreeMap<String, String>)> = Vec::new();
    for s in call.store().list_subnets().await? {
        all.push((s.value.id.clone(), ResourceType::Subnet, subnet_tags(&s.value)));
    }
    for g in call.store().list_security_groups().await? {
        all.push((g.value.id.clone(), ResourceType::SecurityGroup, g.value.tags.clone()));
    }
    let mut out = Vec::new();
    for (id, kind, tags) in all {
        for (k, v) in &tags {
            let one = BTreeMap::from([(k.clone(), v.clone())]);
            let value = |name: &str| -> Vec<String> {
                match name {
                    "key" => vec![k.clone()],
                    "value" => vec![v.clone()],
                    "resource-id" => vec![id.clone()],
                    "resource-type" => vec![kind.as_str().into()],
                    _ => vec![],
                }
            };
            if filters.matches(&one, value) {
                out.push(TagDescription {
                    key: Some(k.clone()),
                    value: Some(v.clone()),
                    resource_id: Some(id.clone()),
                    resource_type: Some(kind),
                });
            }
        }
    }
    let key = |t: &TagDescription| format!("{}\u{0}{}", t.resource_id.as_deref().unwrap_or(""), t.key.as_deref().unwrap_or(""));
    let (tags, next_token) = page(out, key, r.max_results, r.next_token.as_deref())?;
    Ok(DescribeTagsResult { tags: Some(tags), next_token })
}
