//! Listener rules: CreateRule, DescribeRules, ModifyRule, DeleteRule,
//! SetRulePriorities, and their conditions (path-pattern, host-header,
//! http-header, http-request-method, query-string, source-ip), given as
//! `Field` and `Values` or as the field's config.

use berth_model::elb::{self, Condition, Rule};
use berth_wire::elbv2::{
    CreateRuleInput, CreateRuleOutput, DeleteRuleInput, DeleteRuleOutput, DescribeRulesInput, DescribeRulesOutput,
    HostHeaderConditionConfig, HttpHeaderConditionConfig, HttpRequestMethodConditionConfig, ModifyRuleInput,
    ModifyRuleOutput, PathPatternConditionConfig, QueryStringConditionConfig, QueryStringKeyValuePair,
    Rule as WireRule, RuleCondition, SetRulePrioritiesInput, SetRulePrioritiesOutput, SourceIpConditionConfig,
};
use berth_store::{StoreError, Versioned};

use super::listeners::{self, wire_action};
use super::{MAX_RULES, err, new_id, page, tags_from, validation};
use crate::{Api, ApiError};

pub(crate) fn not_found() -> ApiError {
    err("RuleNotFound", "One or more rules not found")
}

async fn get(api: &Api, arn: &str) -> Result<Versioned<Rule>, ApiError> {
    api.store.get_rule(arn).await?.ok_or_else(not_found)
}

fn priority_in_use(p: u32) -> ApiError {
    err("PriorityInUse", format!("Priority '{p}' is currently in use"))
}

fn condition(c: &RuleCondition) -> Result<Condition, ApiError> {
    let field = c.field.as_deref().ok_or_else(|| validation("A condition must have a field"))?;
    let plain = |config: Option<&Vec<String>>| -> Vec<String> { config.cloned().or_else(|| c.values.clone()).unwrap_or_default() };
    if c.regex_values.is_some()
        || c.host_header_config.as_ref().is_some_and(|h| h.regex_values.is_some())
        || c.path_pattern_config.as_ref().is_some_and(|h| h.regex_values.is_some())
        || c.http_header_config.as_ref().is_some_and(|h| h.regex_values.is_some())
    {
        return Err(validation("Regular expression conditions are not supported by Berth"));
    }
    Ok(match field {
        "path-pattern" => Condition::PathPattern { values: plain(c.path_pattern_config.as_ref().and_then(|x| x.values.as_ref())) },
        "host-header" => Condition::HostHeader { values: plain(c.host_header_config.as_ref().and_then(|x| x.values.as_ref())) },
        "http-header" => {
            let h = c.http_header_config.as_ref().ok_or_else(|| validation("An http-header condition needs an HttpHeaderConfig"))?;
            Condition::HttpHeader { name: h.http_header_name.clone().unwrap_or_default(), values: h.values.clone().unwrap_or_default() }
        }
        "http-request-method" => Condition::HttpRequestMethod {
            values: c.http_request_method_config.as_ref().and_then(|x| x.values.clone()).unwrap_or_default(),
        },
        "query-string" => Condition::QueryString {
            values: c
                .query_string_config
                .as_ref()
                .and_then(|x| x.values.as_ref())
                .into_iter()
                .flatten()
                .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
                .collect(),
        },
        "source-ip" => Condition::SourceIp {
            values: c
                .source_ip_config
                .as_ref()
                .and_then(|x| x.values.as_ref())
                .into_iter()
                .flatten()
                .map(|v| v.parse().map_err(|_| validation(format!("Source IP '{v}' must be an IPv4 CIDR block like 10.0.0.0/16"))))
                .collect::<Result<_, _>>()?,
        },
        other => return Err(validation(format!("Condition field '{other}' is not valid"))),
    })
}

fn conditions(wire: &[RuleCondition]) -> Result<Vec<Condition>, ApiError> {
    let out: Vec<Condition> = wire.iter().map(condition).collect::<Result<_, _>>()?;
    elb::check_conditions(&out)?;
    Ok(out)
}

fn wire_condition(c: &Condition) -> RuleCondition {
    let mut w = RuleCondition { field: Some(c.field().to_owned()), ..Default::default() };
    match c {
        Condition::PathPattern { values } => {
            w.values = Some(values.clone());
            w.path_pattern_config = Some(PathPatternConditionConfig { values: Some(values.clone()), regex_values: None });
        }
        Condition::HostHeader { values } => {
            w.values = Some(values.clone());
            w.host_header_config = Some(HostHeaderConditionConfig { values: Some(values.clone()), regex_values: None });
        }
        Condition::HttpHeader { name, values } => {
            w.http_header_config =
                Some(HttpHeaderConditionConfig { http_header_name: Some(name.clone()), values: Some(values.clone()), regex_values: None });
        }
        Condition::HttpRequestMethod { values } => {
            w.http_request_method_config = Some(HttpRequestMethodConditionConfig { values: Some(values.clone()) });
        }
        Condition::QueryString { values } => {
            w.query_string_config = Some(QueryStringConditionConfig {
                values: Some(values.iter().map(|(k, v)| QueryStringKeyValuePair { key: k.clone(), value: Some(v.clone()) }).collect()),
            });
        }
        Condition::SourceIp { values } => {
            w.source_ip_config = Some(SourceIpConditionConfig { values: Some(values.iter().map(ToString::to_string).collect()) });
        }
    }
    w
}

fn wire(r: &Rule) -> WireRule {
    WireRule {
        rule_arn: Some(r.arn.clone()),
        priority: Some(r.priority.map_or_else(|| "default".to_owned(), |p| p.to_string())),
        conditions: Some(r.conditions.iter().map(wire_condition).collect()),
        actions: Some(r.actions.iter().map(wire_action).collect()),
        is_default: Some(r.priority.is_none()),
        transforms: None,
    }
}

pub(super) async fn create(api: &Api, r: CreateRuleInput) -> Result<CreateRuleOutput, ApiError> {
    if r.transforms.is_some() {
        return Err(validation("Rule transforms are not supported by Berth"));
    }
    let listener = listeners::get(api, &r.listener_arn).await?.value;
    if listener.protocol == elb::Protocol::Tcp {
        return Err(validation("Rules can only be added to HTTP and HTTPS listeners"));
    }
    let priority = elb::rule_priority(r.priority)?;
    let conditions = conditions(&r.conditions)?;
    let actions = listeners::actions(api, &r.actions, listener.protocol, &listener.load_balancer_arn).await?;
    let existing = api.store.list_rules(Some(&listener.arn)).await?;
    if existing.iter().any(|x| x.value.priority == Some(priority)) {
        return Err(priority_in_use(priority));
    }
    if existing.iter().filter(|x| x.value.priority.is_some()).count() >= MAX_RULES {
        return Err(err("TooManyRules", format!("A listener can have at most {MAX_RULES} rules")));
    }
    let rule = Rule {
        arn: elb::rule_arn(&listener.arn, &new_id()),
        listener_arn: listener.arn.clone(),
        priority: Some(priority),
        conditions,
        actions,
        tags: tags_from(r.tags)?,
    };
    match api.store.put_rule(&rule, None).await {
        Ok(_) => Ok(CreateRuleOutput { rules: Some(vec![wire(&rule)]) }),
        Err(StoreError::Conflict) => Err(priority_in_use(priority)),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn describe(api: &Api, r: DescribeRulesInput) -> Result<DescribeRulesOutput, ApiError> {
    let all: Vec<Rule> = match (&r.listener_arn, &r.rule_arns) {
        (Some(_), Some(_)) => return Err(validation("A listener ARN and rule ARNs cannot both be given")),
        (Some(l), None) => {
            listeners::get(api, l).await?;
            api.store.list_rules(Some(l)).await?.into_iter().map(|v| v.value).collect()
        }
        (None, Some(arns)) => {
            let mut out = Vec::new();
            for a in arns {
                out.push(get(api, a).await?.value);
            }
            out
        }
        (None, None) => return Err(validation("A listener ARN or rule ARNs must be given")),
    };
    let key = |x: &Rule| format!("{}/{:05}", x.listener_arn, x.priority.unwrap_or(99_999));
    let (items, next_marker) = page(all, key, r.marker.as_deref(), r.page_size)?;
    Ok(DescribeRulesOutput { rules: Some(items.iter().map(wire).collect()), next_marker })
}

pub(super) async fn modify(api: &Api, r: ModifyRuleInput) -> Result<ModifyRuleOutput, ApiError> {
    if r.transforms.is_some() {
        return Err(validation("Rule transforms are not supported by Berth"));
    }
    let current = get(api, &r.rule_arn).await?;
    let listener = listeners::get(api, &current.value.listener_arn).await?;
    let mut next = current.value.clone();
    if let Some(c) = &r.conditions {
        if next.priority.is_none() {
            return Err(err("OperationNotPermitted", "The default rule cannot have conditions"));
        }
        next.conditions = conditions(c)?;
    }
    if let Some(a) = &r.actions {
        next.actions = listeners::actions(api, a, listener.value.protocol, &listener.value.load_balancer_arn).await?;
    }
    api.store.put_rule(&next, Some(current.version)).await?;
    // The default rule's actions are the listener's default actions.
    if next.priority.is_none() && next.actions != listener.value.default_actions {
        let mut l = listener.value.clone();
        l.default_actions = next.actions.clone();
        api.store.put_listener(&l, Some(listener.version)).await?;
    }
    Ok(ModifyRuleOutput { rules: Some(vec![wire(&next)]) })
}

pub(super) async fn delete(api: &Api, r: DeleteRuleInput) -> Result<DeleteRuleOutput, ApiError> {
    let rule = get(api, &r.rule_arn).await?;
    if rule.value.priority.is_none() {
        return Err(err("OperationNotPermitted", "The default rule cannot be deleted"));
    }
    api.store.delete_rule(&rule.value.arn).await?;
    Ok(DeleteRuleOutput {})
}

pub(super) async fn set_priorities(api: &Api, r: SetRulePrioritiesInput) -> Result<SetRulePrioritiesOutput, ApiError> {
    let mut changed: Vec<Versioned<Rule>> = Vec::new();
    for pair in &r.rule_priorities {
        let arn = pair.rule_arn.as_deref().ok_or_else(|| validation("A rule priority pair must have a rule ARN"))?;
        let p = elb::rule_priority(pair.priority.ok_or_else(|| validation("A rule priority pair must have a priority"))?)?;
        let mut rule = get(api, arn).await?;
        if rule.value.priority.is_none() {
            return Err(err("OperationNotPermitted", "The default rule's priority cannot be changed"));
        }
        if changed.iter().any(|c| c.value.arn == rule.value.arn) {
            return Err(validation(format!("Rule '{arn}' is given more than once")));
        }
        rule.value.priority = Some(p);
        changed.push(rule);
    }
    // The priorities after the change, per listener, must be distinct.
    let mut listeners: Vec<&str> = changed.iter().map(|c| c.value.listener_arn.as_str()).collect();
    listeners.sort_unstable();
    listeners.dedup();
    for l in listeners {
        let mut taken = std::collections::BTreeSet::new();
        for rule in api.store.list_rules(Some(l)).await? {
            let p = changed.iter().find(|c| c.value.arn == rule.value.arn).map_or(rule.value.priority, |c| c.value.priority);
            if let Some(p) = p
                && !taken.insert(p)
            {
                return Err(priority_in_use(p));
            }
        }
    }
    let written = api.store.update_rules(&changed).await.map_err(|e| match e {
        StoreError::Conflict => err("PriorityInUse", "The rules changed meanwhile; try again"),
        e => e.into(),
    })?;
    Ok(SetRulePrioritiesOutput { rules: Some(written.iter().map(|v| wire(&v.value)).collect()) })
}
