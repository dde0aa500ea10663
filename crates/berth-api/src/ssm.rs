//! SSM Parameter Store (`ssm`, AWS JSON 1.1): parameters with versions,
//! labels and tags. A SecureString's value is sealed by `berth-secrets`
//! before it is stored and opened only for a read `WithDecryption`;
//! without it the answer is the sealed value's base64 (opaque, as AWS's
//! ciphertext blob is: a nonce, the ciphertext and its tag). DescribeParameters never carries a value. The
//! KMS `KeyId` is recorded (default `alias/aws/ssm`), not used.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth_model::secrets::{self as model, ParameterValue, ParameterVersion};
use berth_secrets::lookup::{self, Selector};
use berth_secrets::{Aad, Cipher};
use berth_store::{StoreError, Versioned};
use berth_wire::ssm::{
    Action, DeleteParametersResult, DescribeParametersRequest, DescribeParametersResult, GetParameterHistoryRequest,
    GetParameterHistoryResult, GetParameterResult, GetParametersByPathRequest, GetParametersByPathResult, GetParametersResult,
    LabelParameterVersionRequest, LabelParameterVersionResult, ListTagsForResourceResult, Parameter, ParameterHistory,
    ParameterMetadata, ParameterStringFilter, ParameterTier, ParameterType, ParametersFilterKey, PutParameterRequest,
    PutParameterResult, ResourceTypeForTagging, Tag,
};
use serde_json::Value;

use crate::{Api, ApiError};

const DEFAULT_KEY_ID: &str = "alias/aws/ssm";
const MAX_VERSIONS: usize = 100;
const MAX_LABELS: usize = 10;
const MAX_DEPTH: usize = 15;
const STANDARD_MAX: usize = 4096;
const ADVANCED_MAX: usize = 8192;

fn ssm(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::service(code, message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ssm("ValidationException", message)
}

fn not_found(name: &str) -> ApiError {
    ssm("ParameterNotFound", format!("Parameter {name} not found."))
}

/// A body that does not make the operation's input: SSM calls a missing
/// member or a value outside an enumeration a ValidationException.
pub(crate) fn parse_error(e: ApiError) -> ApiError {
    match e {
        ApiError::Ecs { aws_type: "InvalidParameterException", message } => invalid(message),
        other => other,
    }
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

fn empty() -> Value {
    Value::Object(Default::default())
}

pub(crate) async fn dispatch(api: &Api, action: Action) -> Result<Value, ApiError> {
    Ok(match action {
        Action::PutParameter(r) => json(&put(api, r).await?),
        Action::GetParameter(r) => {
            let p = get_one(api, &r.name, r.with_decryption.unwrap_or(false)).await?;
            json(&GetParameterResult { parameter: Some(p) })
        }
        Action::GetParameters(r) => {
            if r.names.is_empty() || r.names.len() > 10 {
                return Err(invalid("GetParameters takes 1 to 10 names."));
            }
            let (mut parameters, mut invalid_parameters) = (Vec::new(), Vec::new());
            for name in &r.names {
                match get_one(api, name, r.with_decryption.unwrap_or(false)).await {
                    Ok(p) => parameters.push(p),
                    Err(ApiError::Service { aws_type: "ParameterNotFound" | "ParameterVersionNotFound", .. }) => {
                        invalid_parameters.push(name.clone());
                    }
                    Err(e) => return Err(e),
                }
            }
            json(&GetParametersResult { parameters: Some(parameters), invalid_parameters: Some(invalid_parameters) })
        }
        Action::GetParametersByPath(r) => json(&by_path(api, r).await?),
        Action::DeleteParameter(r) => {
            if !api.store.delete_parameter(&r.name).await? {
                return Err(not_found(&r.name));
            }
            empty()
        }
        Action::DeleteParameters(r) => {
            if r.names.is_empty() || r.names.len() > 10 {
                return Err(invalid("DeleteParameters takes 1 to 10 names."));
            }
            let (mut deleted, mut missing) = (Vec::new(), Vec::new());
            for name in r.names {
                if api.store.delete_parameter(&name).await? { deleted.push(name) } else { missing.push(name) }
            }
            json(&DeleteParametersResult { deleted_parameters: Some(deleted), invalid_parameters: Some(missing) })
        }
        Action::DescribeParameters(r) => json(&describe(api, r).await?),
        Action::GetParameterHistory(r) => json(&history(api, r).await?),
        Action::LabelParameterVersion(r) => json(&label(api, r).await?),
        Action::AddTagsToResource(r) => {
            tagged_parameter(&r.resource_type)?;
            edit(api, &r.resource_id, |p| {
                for t in &r.tags {
                    check_tag(&t.key, &t.value)?;
                    p.tags.insert(t.key.clone(), t.value.clone());
                }
                if p.tags.len() > 50 {
                    return Err(ssm("TooManyTagsError", "A parameter can have at most 50 tags."));
                }
                Ok(())
            })
            .await?;
            empty()
        }
        Action::RemoveTagsFromResource(r) => {
            tagged_parameter(&r.resource_type)?;
            edit(api, &r.resource_id, |p| {
                for k in &r.tag_keys {
                    p.tags.remove(k);
                }
                Ok(())
            })
            .await?;
            empty()
        }
        Action::ListTagsForResource(r) => {
            tagged_parameter(&r.resource_type)?;
            let p = resource(api, &r.resource_id).await?;
            let tag_list = p.value.tags.into_iter().map(|(key, value)| Tag { key, value }).collect();
            json(&ListTagsForResourceResult { tag_list: Some(tag_list) })
        }
    })
}

fn tagged_parameter(t: &ResourceTypeForTagging) -> Result<(), ApiError> {
    if *t == ResourceTypeForTagging::Parameter {
        Ok(())
    } else {
        Err(ssm("InvalidResourceType", format!("Berth serves tags of parameters only, not of {}.", t.as_str())))
    }
}

/// The parameter a tagging call names (by name or ARN).
async fn resource(api: &Api, id: &str) -> Result<Versioned<model::Parameter>, ApiError> {
    let r = lookup::parameter_ref(id);
    lookup::find_parameter(api.store.as_ref(), &r)
        .await?
        .ok_or_else(|| ssm("InvalidResourceId", format!("The resource ID \"{id}\" is not valid. Verify the ID and try again.")))
}

/// Read, change, write back at the version read (retrying a race).
async fn edit(
    api: &Api,
    id: &str,
    mut change: impl FnMut(&mut model::Parameter) -> Result<(), ApiError>,
) -> Result<Versioned<model::Parameter>, ApiError> {
    for _ in 0..8 {
        let v = resource(api, id).await?;
        let mut next = v.value.clone();
        change(&mut next)?;
        match api.store.put_parameter(&next, Some(v.version)).await {
            Ok(w) => return Ok(w),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Internal(StoreError::Conflict))
}

fn check_tag(key: &str, value: &str) -> Result<(), ApiError> {
    berth_model::tags::check_pair(key, value).map_err(invalid)
}

/// SSM's rules for a parameter name.
fn check_name(name: &str) -> Result<(), ApiError> {
    let bad = || {
        invalid(
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can \
             consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and \
             the following 3 symbols .-_",
        )
    };
    if name.is_empty() || name.len() > 2048 {
        return Err(invalid("The parameter name must be 1 to 2048 characters."));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b)) {
        return Err(bad());
    }
    if name.contains('/') && !name.starts_with('/') {
        return Err(invalid(
            "Parameter name must be a fully qualified name: a name with a hierarchy must begin with a forward slash (/).",
        ));
    }
    let first = name.trim_start_matches('/').split('/').next().unwrap_or("");
    if first.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("aws") || p.eq_ignore_ascii_case("ssm")) {
        return Err(bad());
    }
    if name.trim_start_matches('/').split('/').any(str::is_empty) {
        return Err(bad());
    }
    if name.matches('/').count() > MAX_DEPTH {
        return Err(ssm(
            "HierarchyLevelLimitExceededException",
            "A hierarchy can have a maximum of 15 levels. For more information, see \
             https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html",
        ));
    }
    Ok(())
}

fn model_type(t: &ParameterType) -> model::ParameterType {
    match t {
        ParameterType::String => model::ParameterType::String,
        ParameterType::StringList => model::ParameterType::StringList,
        ParameterType::SecureString => model::ParameterType::SecureString,
    }
}

fn wire_type(t: model::ParameterType) -> ParameterType {
    match t {
        model::ParameterType::String => ParameterType::String,
        model::ParameterType::StringList => ParameterType::StringList,
        model::ParameterType::SecureString => ParameterType::SecureString,
    }
}

fn wire_tier(tier: &str) -> Option<ParameterTier> {
    tier.parse().ok()
}

fn last_user(api: &Api) -> String {
    format!("arn:aws:iam::{}:root", api.account().account_id)
}

/// The tier a value is stored in: what was asked, Intelligent-Tiering
/// the smallest that fits; never back down from Advanced.
fn tier(asked: Option<&ParameterTier>, previous: Option<&str>, value_len: usize) -> Result<&'static str, ApiError> {
    let fits_standard = value_len <= STANDARD_MAX;
    let was_advanced = previous == Some("Advanced");
    let chosen = match asked {
        Some(ParameterTier::Advanced) => "Advanced",
        Some(ParameterTier::IntelligentTiering) if was_advanced || !fits_standard => "Advanced",
        Some(ParameterTier::IntelligentTiering) => "Standard",
        Some(ParameterTier::Standard) if was_advanced => {
            return Err(invalid(
                "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the \
                 advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced \
                 parameter and recreate it as a standard parameter.",
            ));
        }
        Some(ParameterTier::Standard) => "Standard",
        None => previous.map_or("Standard", |p| if p == "Advanced" { "Advanced" } else { "Standard" }),
    };
    if chosen == "Standard" && !fits_standard {
        return Err(invalid(
            "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger \
             parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see \
             https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html",
        ));
    }
    if value_len > ADVANCED_MAX {
        return Err(invalid("Advanced tier parameters support a maximum parameter value of 8192 characters."));
    }
    Ok(chosen)
}

fn check_pattern(pattern: &str, value: &str) -> Result<(), ApiError> {
    let re = regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|_| ssm("InvalidAllowedPatternException", format!("The allowed pattern {pattern} is not a valid regular expression.")))?;
    if !re.is_match(value) {
        return Err(ssm(
            "ParameterPatternMismatchException",
            format!("Parameter value, cannot be validated against allowedPattern: {pattern}"),
        ));
    }
    Ok(())
}

async fn put(api: &Api, r: PutParameterRequest) -> Result<PutParameterResult, ApiError> {
    check_name(&r.name)?;
    let overwrite = r.overwrite.unwrap_or(false);
    if overwrite && r.tags.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(invalid(
            "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove \
             overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or \
             RemoveTagsFromResource.",
        ));
    }
    if r.value.is_empty() {
        return Err(invalid(
            "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater \
             than or equal to 1",
        ));
    }
    let data_type = r.data_type.clone().unwrap_or_else(|| "text".to_owned());
    if !["text", "aws:ec2:image", "aws:ssm:integration"].contains(&data_type.as_str()) {
        return Err(invalid(format!("The following data type is not supported: {data_type} (Data type names are all lowercase.)")));
    }
    if r.description.as_ref().is_some_and(|d| d.chars().count() > 1024) {
        return Err(invalid("The description can be at most 1024 characters."));
    }
    for _ in 0..8 {
        let existing = api.store.get_parameter(&r.name).await?;
        if existing.is_some() && !overwrite {
            return Err(ssm(
                "ParameterAlreadyExists",
                "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
            ));
        }
        let previous = existing.as_ref().and_then(|v| v.value.latest());
        let r#type = match (&r.r#type, previous) {
            (Some(t), _) => model_type(t),
            (None, Some(p)) => p.r#type,
            (None, None) => return Err(invalid("A parameter type is required when you create a parameter.")),
        };
        if r.key_id.is_some() && r#type != model::ParameterType::SecureString {
            return Err(invalid("KeyId is required for SecureString type parameter only."));
        }
        let allowed_pattern = r.allowed_pattern.clone().or_else(|| previous.and_then(|p| p.allowed_pattern.clone()));
        if let Some(p) = &allowed_pattern {
            check_pattern(p, &r.value)?;
        }
        let tier = tier(r.tier.as_ref(), previous.map(|p| p.tier.as_str()), r.value.len())?;
        let mut param = match &existing {
            Some(v) => v.value.clone(),
            None => {
                let mut tags = BTreeMap::new();
                for t in r.tags.iter().flatten() {
                    check_tag(&t.key, &t.value)?;
                    tags.insert(t.key.clone(), t.value.clone());
                }
                model::Parameter { name: r.name.clone(), versions: Vec::new(), tags }
            }
        };
        let version = previous.map_or(1, |p| p.version + 1);
        if param.versions.len() >= MAX_VERSIONS {
            if param.versions.first().is_some_and(|v| !v.labels.is_empty()) {
                let oldest = param.versions.first().map_or(0, |v| v.version);
                return Err(ssm(
                    "ParameterMaxVersionLimitExceeded",
                    format!(
                        "You attempted to create a new version of {} by calling the PutParameter API with the overwrite \
                         flag. Version {oldest}, the oldest version, can't be deleted because it has a label associated \
                         with it. Move the label to another version of the parameter, and try again.",
                        r.name
                    ),
                ));
            }
            param.versions.remove(0);
        }
        let value = match r#type {
            model::ParameterType::SecureString => {
                ParameterValue::Sealed(api.cipher.seal(&Aad::parameter(&r.name, version), r.value.as_bytes()))
            }
            _ => ParameterValue::Plain(r.value.clone()),
        };
        let key_id = (r#type == model::ParameterType::SecureString)
            .then(|| r.key_id.clone().or_else(|| previous.and_then(|p| p.key_id.clone())).unwrap_or_else(|| DEFAULT_KEY_ID.to_owned()));
        param.versions.push(ParameterVersion {
            version,
            r#type,
            value,
            key_id,
            description: r.description.clone().or_else(|| previous.and_then(|p| p.description.clone())),
            allowed_pattern,
            tier: tier.to_owned(),
            data_type: data_type.clone(),
            labels: Vec::new(),
            last_modified_date: crate::berth::network::now(),
            last_modified_user: last_user(api),
        });
        match api.store.put_parameter(&param, existing.map(|v| v.version)).await {
            Ok(_) => return Ok(PutParameterResult { version: Some(version), tier: wire_tier(tier) }),
            Err(StoreError::Conflict) if overwrite => continue,
            Err(StoreError::Conflict) => {
                return Err(ssm(
                    "ParameterAlreadyExists",
                    "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ssm("TooManyUpdates", "There are concurrent updates for a resource that supports one update at a time."))
}

/// A version's value as a read answers it: in the clear for String and
/// StringList, and for SecureString only `WithDecryption`.
fn value(cipher: &Cipher, name: &str, v: &ParameterVersion, decrypt: bool) -> Result<String, ApiError> {
    match &v.value {
        ParameterValue::Plain(s) => Ok(s.clone()),
        ParameterValue::Sealed(s) if !decrypt => Ok(STANDARD.encode(&s.0)),
        ParameterValue::Sealed(_) => lookup::open_parameter(cipher, name, v).map(|s| s.to_string()).map_err(|e| {
            tracing::error!(parameter = %name, error = %e, "a stored SecureString cannot be opened");
            ssm("InternalServerError", "The parameter's value cannot be decrypted.")
        }),
    }
}

fn wire_parameter(api: &Api, p: &model::Parameter, v: &ParameterVersion, selector: Option<String>, decrypt: bool) -> Result<Parameter, ApiError> {
    Ok(Parameter {
        name: Some(p.name.clone()),
        r#type: Some(wire_type(v.r#type)),
        value: Some(value(&api.cipher, &p.name, v, decrypt)?),
        version: Some(v.version),
        selector,
        source_result: None,
        last_modified_date: Some(v.last_modified_date),
        arn: Some(p.arn(&api.account().region, &api.account().account_id)),
        data_type: Some(v.data_type.clone()),
    })
}

async fn get_one(api: &Api, reference: &str, decrypt: bool) -> Result<Parameter, ApiError> {
    let r = lookup::parameter_ref(reference);
    let p = lookup::find_parameter(api.store.as_ref(), &r).await?.ok_or_else(|| not_found(reference))?;
    let v = lookup::select_version(&p.value, &r.selector).map_err(|e| ssm(e.aws_type(), e.to_string()))?;
    wire_parameter(api, &p.value, v, r.selector_text, decrypt)
}

fn metadata(api: &Api, p: &model::Parameter, v: &ParameterVersion) -> ParameterMetadata {
    ParameterMetadata {
        name: Some(p.name.clone()),
        arn: Some(p.arn(&api.account().region, &api.account().account_id)),
        r#type: Some(wire_type(v.r#type)),
        key_id: v.key_id.clone(),
        last_modified_date: Some(v.last_modified_date),
        last_modified_user: Some(v.last_modified_user.clone()),
        description: v.description.clone(),
        allowed_pattern: v.allowed_pattern.clone(),
        version: Some(v.version),
        tier: wire_tier(&v.tier),
        policies: Some(Vec::new()),
        data_type: Some(v.data_type.clone()),
    }
}

/// A ParameterStringFilter, checked once.
struct Filter {
    key: String,
    option: String,
    values: Vec<String>,
}

const FILTER_KEYS: &[&str] = &["Name", "Type", "KeyId", "Path", "Label", "DataType", "Tier"];

fn filters(given: Option<&[ParameterStringFilter]>, allowed: &[&str]) -> Result<Vec<Filter>, ApiError> {
    let mut out = Vec::new();
    for f in given.unwrap_or_default() {
        let is_tag = f.key.starts_with("tag:") && f.key.len() > 4;
        if !is_tag && !allowed.contains(&f.key.as_str()) {
            return Err(ssm(
                "InvalidFilterKey",
                format!("The following filter key is not valid: {}. Valid filter keys include: [{}].", f.key, allowed.join(", ")),
            ));
        }
        let option = f.option.clone().unwrap_or_else(|| if f.key == "Path" { "OneLevel".into() } else { "Equals".into() });
        let options: &[&str] = match f.key.as_str() {
            "Path" => &["Recursive", "OneLevel"],
            "Name" => &["Equals", "BeginsWith", "Contains"],
            _ if is_tag => &["Equals", "BeginsWith"],
            "Type" | "KeyId" | "DataType" | "Tier" => &["Equals", "BeginsWith"],
            _ => &["Equals"],
        };
        if !options.contains(&option.as_str()) {
            return Err(ssm(
                "InvalidFilterOption",
                format!("The filter option {option} is not valid for key {}. Valid options include: [{}].", f.key, options.join(", ")),
            ));
        }
        let values = f.values.clone().unwrap_or_default();
        if values.is_empty() && !is_tag {
            return Err(ssm("InvalidFilterValue", format!("The filter {} needs at least one value.", f.key)));
        }
        out.push(Filter { key: f.key.clone(), option, values });
    }
    Ok(out)
}

fn text_matches(option: &str, have: &str, want: &str) -> bool {
    match option {
        "BeginsWith" => have.starts_with(want),
        "Contains" => have.contains(want),
        _ => have == want,
    }
}

fn under_path(name: &str, path: &str, recursive: bool) -> bool {
    let path = path.trim_end_matches('/');
    let Some(rest) = name.strip_prefix(path).and_then(|r| r.strip_prefix('/')) else { return false };
    !rest.is_empty() && (recursive || !rest.contains('/'))
}

fn passes(f: &Filter, p: &model::Parameter, v: &ParameterVersion) -> bool {
    let any = |have: &str| f.values.iter().any(|w| text_matches(&f.option, have, w));
    match f.key.as_str() {
        "Name" => f.values.iter().any(|w| {
            // SSM matches a name with or without its leading slash.
            let w = if p.name.starts_with('/') && !w.starts_with('/') { format!("/{w}") } else { w.clone() };
            text_matches(&f.option, &p.name, &w)
        }),
        "Type" => any(v.r#type.as_str()),
        "KeyId" => v.key_id.as_deref().is_some_and(any),
        "DataType" => any(&v.data_type),
        "Tier" => any(&v.tier),
        "Label" => p.versions.iter().flat_map(|x| &x.labels).any(|l| any(l)),
        "Path" => f.values.iter().any(|w| under_path(&p.name, w, f.option == "Recursive")),
        tag => {
            let key = tag.trim_start_matches("tag:");
            p.tags.get(key).is_some_and(|have| f.values.is_empty() || any(have))
        }
    }
}

fn page_limit(max: Option<i32>, most: i32) -> Result<usize, ApiError> {
    match max {
        None => Ok(most as usize),
        Some(n) if (1..=most).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value \
             less than or equal to {most}"
        ))),
    }
}

fn after<K: serde::de::DeserializeOwned>(token: Option<&str>) -> Result<Option<K>, ApiError> {
    crate::paging::decode(token).map_err(|_| ssm("InvalidNextToken", "The specified token isn't valid."))
}

async fn by_path(api: &Api, r: GetParametersByPathRequest) -> Result<GetParametersByPathResult, ApiError> {
    if !r.path.starts_with('/') {
        return Err(invalid(
            "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward \
             slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).",
        ));
    }
    if r.path.matches('/').count() > MAX_DEPTH {
        return Err(ssm("HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of 15 levels."));
    }
    let fs = filters(r.parameter_filters.as_deref(), &["Type", "KeyId", "Label", "DataType", "Tier"])?;
    let limit = page_limit(r.max_results, 10)?;
    let start: Option<String> = after(r.next_token.as_deref())?;
    let recursive = r.recursive.unwrap_or(false);
    let decrypt = r.with_decryption.unwrap_or(false);
    let mut rows = Vec::new();
    for p in api.store.list_parameters().await? {
        let p = p.value;
        let Some(v) = p.latest() else { continue };
        if start.as_ref().is_some_and(|s| p.name <= *s) || !under_path(&p.name, &r.path, recursive) || !fs.iter().all(|f| passes(f, &p, v)) {
            continue;
        }
        rows.push(p);
        if rows.len() > limit {
            break;
        }
    }
    let (rows, next_token) = crate::paging::finish(rows, limit as u32, |p| p.name.clone());
    let parameters = rows
        .iter()
        .filter_map(|p| p.latest().map(|v| wire_parameter(api, p, v, None, decrypt)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GetParametersByPathResult { parameters: Some(parameters), next_token })
}

async fn describe(api: &Api, r: DescribeParametersRequest) -> Result<DescribeParametersResult, ApiError> {
    if r.filters.is_some() && r.parameter_filters.is_some() {
        return Err(invalid("You can use either Filters or ParameterFilters in a single request."));
    }
    // The older `Filters`: Name, Type, KeyId with the Equals option.
    let legacy: Vec<ParameterStringFilter> = r
        .filters
        .iter()
        .flatten()
        .map(|f| ParameterStringFilter {
            key: match f.key {
                ParametersFilterKey::Name => "Name".into(),
                ParametersFilterKey::Type => "Type".into(),
                ParametersFilterKey::KeyId => "KeyId".into(),
            },
            option: Some(if f.key == ParametersFilterKey::Name { "BeginsWith".into() } else { "Equals".into() }),
            values: Some(f.values.clone()),
        })
        .collect();
    let given = if r.filters.is_some() { Some(legacy.as_slice()) } else { r.parameter_filters.as_deref() };
    let fs = filters(given, FILTER_KEYS)?;
    let limit = page_limit(r.max_results, 50)?;
    let start: Option<String> = after(r.next_token.as_deref())?;
    let mut rows = Vec::new();
    for p in api.store.list_parameters().await? {
        let p = p.value;
        let Some(v) = p.latest() else { continue };
        if start.as_ref().is_some_and(|s| p.name <= *s) || !fs.iter().all(|f| passes(f, &p, v)) {
            continue;
        }
        rows.push(p);
        if rows.len() > limit {
            break;
        }
    }
    let (rows, next_token) = crate::paging::finish(rows, limit as u32, |p| p.name.clone());
    let parameters = rows.iter().filter_map(|p| p.latest().map(|v| metadata(api, p, v))).collect();
    Ok(DescribeParametersResult { parameters: Some(parameters), next_token })
}

async fn history(api: &Api, r: GetParameterHistoryRequest) -> Result<GetParameterHistoryResult, ApiError> {
    let reference = lookup::parameter_ref(&r.name);
    let p = lookup::find_parameter(api.store.as_ref(), &reference).await?.ok_or_else(|| not_found(&r.name))?.value;
    let limit = page_limit(r.max_results, 50)?;
    let start: Option<i64> = after(r.next_token.as_deref())?;
    let decrypt = r.with_decryption.unwrap_or(false);
    let rows: Vec<&ParameterVersion> =
        p.versions.iter().filter(|v| start.is_none_or(|s| v.version > s)).take(limit + 1).collect();
    let (rows, next_token) = crate::paging::finish(rows, limit as u32, |v| v.version);
    let parameters = rows
        .into_iter()
        .map(|v| {
            Ok(ParameterHistory {
                name: Some(p.name.clone()),
                r#type: Some(wire_type(v.r#type)),
                key_id: v.key_id.clone(),
                last_modified_date: Some(v.last_modified_date),
                last_modified_user: Some(v.last_modified_user.clone()),
                description: v.description.clone(),
                value: Some(value(&api.cipher, &p.name, v, decrypt)?),
                allowed_pattern: v.allowed_pattern.clone(),
                version: Some(v.version),
                labels: Some(v.labels.clone()),
                tier: wire_tier(&v.tier),
                policies: Some(Vec::new()),
                data_type: Some(v.data_type.clone()),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(GetParameterHistoryResult { parameters: Some(parameters), next_token })
}

/// A label SSM accepts: letters, digits, `.`, `-`, `_`, at most 100
/// characters, not starting with a digit or with `aws`/`ssm`.
fn valid_label(l: &str) -> bool {
    let lower = l.to_ascii_lowercase();
    !l.is_empty()
        && l.len() <= 100
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !l.as_bytes()[0].is_ascii_digit()
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
}

async fn label(api: &Api, r: LabelParameterVersionRequest) -> Result<LabelParameterVersionResult, ApiError> {
    if r.labels.is_empty() || r.labels.len() > MAX_LABELS {
        return Err(invalid("LabelParameterVersion takes 1 to 10 labels."));
    }
    let (good, bad): (Vec<String>, Vec<String>) = r.labels.iter().cloned().partition(|l| valid_label(l));
    let mut chosen = 0;
    edit(api, &r.name, |p| {
        let selector = r.parameter_version.map_or(Selector::Latest, Selector::Version);
        chosen = lookup::select_version(p, &selector).map_err(|e| ssm(e.aws_type(), e.to_string()))?.version;
        for v in &mut p.versions {
            if v.version != chosen {
                v.labels.retain(|l| !good.contains(l));
            }
        }
        let Some(v) = p.versions.iter_mut().find(|v| v.version == chosen) else { return Ok(()) };
        for l in &good {
            if !v.labels.contains(l) {
                v.labels.push(l.clone());
            }
        }
        if v.labels.len() > MAX_LABELS {
            return Err(ssm(
                "ParameterVersionLabelLimitExceeded",
                "A parameter version can have maximum 10 labels. Move one or more labels to another version and try again.",
            ));
        }
        Ok(())
    })
    .await
    .map_err(|e| match e {
        ApiError::Service { aws_type: "InvalidResourceId", .. } => not_found(&r.name),
        other => other,
    })?;
    Ok(LabelParameterVersionResult { invalid_labels: Some(bad), parameter_version: Some(chosen) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["db", "/app/db", "/a.b/c-d/e_f", "a.b"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "app/db", "/aws/x", "ssmthing", "/a//b", "a b", "/a/"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let deep = "/a".repeat(16);
        assert_eq!(check_name(&deep).err().map(|e| e.aws_type()), Some("HierarchyLevelLimitExceededException"));
        assert!(check_name(&"/a".repeat(15)).is_ok());
    }

    #[test]
    fn tiers() {
        assert_eq!(tier(None, None, 10).ok(), Some("Standard"));
        assert!(tier(None, None, 5000).is_err());
        assert_eq!(tier(Some(&ParameterTier::Advanced), None, 5000).ok(), Some("Advanced"));
        assert_eq!(tier(Some(&ParameterTier::IntelligentTiering), None, 5000).ok(), Some("Advanced"));
        assert_eq!(tier(Some(&ParameterTier::IntelligentTiering), None, 50).ok(), Some("Standard"));
        assert!(tier(Some(&ParameterTier::Standard), Some("Advanced"), 50).is_err());
        assert!(tier(Some(&ParameterTier::Advanced), None, 9000).is_err());
    }

    #[test]
    fn labels_and_paths() {
        assert!(valid_label("prod") && valid_label("v1.2_x-y"));
        assert!(!valid_label("1st") && !valid_label("awsx") && !valid_label("SSM") && !valid_label("a/b"));
        assert!(under_path("/a/b", "/a", false) && under_path("/a/b", "/a/", false));
        assert!(!under_path("/a/b/c", "/a", false) && under_path("/a/b/c", "/a", true));
        assert!(!under_path("/ab", "/a", true) && !under_path("/a", "/a", true));
        assert!(under_path("/x", "/", false) && !under_path("x", "/", true));
    }
}
