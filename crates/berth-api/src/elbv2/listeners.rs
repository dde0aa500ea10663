//! Listeners: CreateListener, DescribeListeners, ModifyListener,
//! DeleteListener, their attributes, and the actions of listeners and
//! rules (forward, with weighted target groups and group stickiness;
//! fixed-response; redirect). A listener's default actions are also its
//! default rule (DescribeRules shows it, `IsDefault` true), a record of
//! its own kept equal to them.

use berth_model::elb::{self, Action, Listener, LoadBalancer, Protocol, Rule, WeightedGroup};
use berth_wire::elbv2::{
    ActionShape, ActionTypeEnum, Certificate, CreateListenerInput, CreateListenerOutput, DeleteListenerInput,
    DeleteListenerOutput, DescribeListenerAttributesInput, DescribeListenerAttributesOutput, DescribeListenersInput,
    DescribeListenersOutput, FixedResponseActionConfig, ForwardActionConfig, Listener as WireListener, ListenerAttribute,
    ModifyListenerAttributesInput, ModifyListenerAttributesOutput, ModifyListenerInput, ModifyListenerOutput,
    RedirectActionConfig, TargetGroupStickinessConfig, TargetGroupTuple,
};
use berth_store::{StoreError, Versioned};

use super::{MAX_CERTIFICATES, MAX_LISTENERS, err, new_id, page, pairs, protocol, retry, tags_from, validation, wire_protocol};
use crate::{Api, ApiError};

pub(crate) fn not_found() -> ApiError {
    err("ListenerNotFound", "One or more listeners not found")
}

pub(crate) async fn get(api: &Api, arn: &str) -> Result<Versioned<Listener>, ApiError> {
    api.store.get_listener(arn).await?.ok_or_else(not_found)
}

/// The model's actions from the wire's, checked, with every target group
/// they forward to existing, of a protocol the listener can forward to,
/// and not forwarded to by another load balancer.
pub(crate) async fn actions(api: &Api, wire: &[ActionShape], listener: Protocol, lb_arn: &str) -> Result<Vec<Action>, ApiError> {
    let mut out = Vec::new();
    for a in wire {
        out.push(action(a)?);
    }
    elb::check_actions(&out)?;
    let users = super::target_groups::users(api).await?;
    for a in &out {
        for tg_arn in a.target_groups() {
            let tg = super::target_groups::get(api, tg_arn).await?.value;
            elb::check_forward_protocol(listener, tg.protocol, tg_arn)?;
            if users.get(tg_arn).is_some_and(|lbs| lbs.iter().any(|l| l != lb_arn)) {
                return Err(err(
                    "TargetGroupAssociationLimit",
                    format!("The following target groups cannot be associated with more than one load balancer: {tg_arn}"),
                ));
            }
        }
        if listener == Protocol::Tcp && !matches!(a, Action::Forward { .. }) {
            return Err(err("InvalidLoadBalancerAction", "Network load balancer listeners can only forward"));
        }
    }
    Ok(out)
}

fn action(a: &ActionShape) -> Result<Action, ApiError> {
    Ok(match a.r#type {
        ActionTypeEnum::Forward => {
            let (groups, single, stickiness_seconds) = match (&a.target_group_arn, &a.forward_config) {
                (Some(arn), None) => (vec![WeightedGroup { target_group_arn: arn.clone(), weight: 1 }], true, None),
                (arn, Some(f)) => {
                    let groups: Vec<WeightedGroup> = f
                        .target_groups
                        .iter()
                        .flatten()
                        .map(|t| {
                            let arn = t.target_group_arn.clone().ok_or_else(|| validation("A target group of a forward action must have an ARN"))?;
                            let weight = u32::try_from(t.weight.unwrap_or(1)).map_err(|_| validation("Target group weights must be from 0 to 999"))?;
                            Ok(WeightedGroup { target_group_arn: arn, weight })
                        })
                        .collect::<Result<_, ApiError>>()?;
                    if let Some(arn) = arn
                        && !(groups.len() == 1 && &groups[0].target_group_arn == arn)
                    {
                        return Err(validation("TargetGroupArn and ForwardConfig must name the same single target group when both are given"));
                    }
                    let stick = f.target_group_stickiness_config.as_ref().filter(|s| s.enabled == Some(true));
                    let seconds = match stick {
                        None => None,
                        Some(s) => Some(
                            u32::try_from(s.duration_seconds.ok_or_else(|| validation("Target group stickiness needs a duration"))?)
                                .map_err(|_| validation("Target group stickiness duration must be from 1 to 604800 seconds"))?,
                        ),
                    };
                    (groups, arn.is_some(), seconds)
                }
                (None, None) => return Err(validation("A forward action must have a TargetGroupArn or a ForwardConfig")),
            };
            Action::Forward { groups, single, stickiness_seconds, order: a.order }
        }
        ActionTypeEnum::FixedResponse => {
            let c = a.fixed_response_config.as_ref().ok_or_else(|| validation("A fixed-response action must have a FixedResponseConfig"))?;
            Action::FixedResponse {
                status_code: c.status_code.clone(),
                content_type: c.content_type.clone(),
                message_body: c.message_body.clone(),
                order: a.order,
            }
        }
        ActionTypeEnum::Redirect => {
            let c = a.redirect_config.as_ref().ok_or_else(|| validation("A redirect action must have a RedirectConfig"))?;
            Action::Redirect {
                protocol: c.protocol.clone(),
                port: c.port.clone(),
                host: c.host.clone(),
                path: c.path.clone(),
                query: c.query.clone(),
                status_code: c.status_code.as_str().to_owned(),
                order: a.order,
            }
        }
        other => {
            return Err(err("InvalidLoadBalancerAction", format!("Action type '{}' is not supported by Berth", other.as_str())));
        }
    })
}

pub(crate) fn wire_action(a: &Action) -> ActionShape {
    match a {
        Action::Forward { groups, stickiness_seconds, order, .. } => ActionShape {
            r#type: ActionTypeEnum::Forward,
            target_group_arn: (groups.len() == 1).then(|| groups[0].target_group_arn.clone()),
            order: *order,
            forward_config: Some(ForwardActionConfig {
                target_groups: Some(
                    groups
                        .iter()
                        .map(|g| TargetGroupTuple { target_group_arn: Some(g.target_group_arn.clone()), weight: Some(g.weight as i32) })
                        .collect(),
                ),
                target_group_stickiness_config: Some(TargetGroupStickinessConfig {
                    enabled: Some(stickiness_seconds.is_some()),
                    duration_seconds: stickiness_seconds.map(|s| s as i32),
                }),
            }),
            ..Default::default()
        },
        Action::FixedResponse { status_code, content_type, message_body, order } => ActionShape {
            r#type: ActionTypeEnum::FixedResponse,
            order: *order,
            fixed_response_config: Some(FixedResponseActionConfig {
                status_code: status_code.clone(),
                content_type: content_type.clone(),
                message_body: message_body.clone(),
            }),
            ..Default::default()
        },
        Action::Redirect { protocol, port, host, path, query, status_code, order } => ActionShape {
            r#type: ActionTypeEnum::Redirect,
            order: *order,
            redirect_config: Some(RedirectActionConfig {
                // ELBv2 shows a redirect's parts filled in with their defaults.
                protocol: Some(protocol.clone().unwrap_or_else(|| "#{protocol}".into())),
                port: Some(port.clone().unwrap_or_else(|| "#{port}".into())),
                host: Some(host.clone().unwrap_or_else(|| "#{host}".into())),
                path: Some(path.clone().unwrap_or_else(|| "/#{path}".into())),
                query: Some(query.clone().unwrap_or_else(|| "#{query}".into())),
                status_code: status_code.parse().unwrap_or_default(),
            }),
            ..Default::default()
        },
    }
}

/// Checks a listener's certificates (HTTPS only, the first the default,
/// each one imported into ACM) and security policy.
async fn certificates(
    api: &Api,
    p: Protocol,
    certs: Option<&Vec<Certificate>>,
    policy: Option<&String>,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let arns: Vec<String> = certs.into_iter().flatten().filter_map(|c| c.certificate_arn.clone()).collect();
    if p != Protocol::Https {
        if !arns.is_empty() {
            return Err(validation(format!("Certificates can only be given for HTTPS listeners, not {}", p.as_str())));
        }
        if policy.is_some() {
            return Err(validation(format!("An SSL policy can only be given for HTTPS listeners, not {}", p.as_str())));
        }
        return Ok((vec![], None));
    }
    if arns.is_empty() {
        return Err(validation("A certificate must be specified for HTTPS listeners"));
    }
    if arns.len() > MAX_CERTIFICATES {
        return Err(err("TooManyCertificates", format!("A listener can have at most {MAX_CERTIFICATES} certificates")));
    }
    for arn in &arns {
        if api.store.get_certificate(arn).await?.is_none() {
            return Err(err("CertificateNotFound", format!("Certificate '{arn}' not found")));
        }
    }
    let policy = policy.cloned().unwrap_or_else(|| elb::DEFAULT_SSL_POLICY.to_owned());
    if !elb::SSL_POLICIES.contains(&policy.as_str()) {
        return Err(err("SSLPolicyNotFound", format!("SSL policy '{policy}' not found")));
    }
    Ok((arns, Some(policy)))
}

fn check_load_balancer(lb: &LoadBalancer, p: Protocol) -> Result<(), ApiError> {
    elb::check_listener_protocol(lb.lb_type, p)?;
    Ok(())
}

pub(super) async fn create(api: &Api, r: CreateListenerInput) -> Result<CreateListenerOutput, ApiError> {
    let lb = super::load_balancers::get(api, &r.load_balancer_arn).await?.value;
    let default = match lb.lb_type {
        elb::LbType::Application => Protocol::Http,
        elb::LbType::Network => Protocol::Tcp,
    };
    let p = r.protocol.map(protocol).transpose()?.unwrap_or(default);
    check_load_balancer(&lb, p)?;
    let port = elb::port(r.port.ok_or_else(|| validation("A port must be specified"))?, "Port")?;
    let (certificates, ssl_policy) = certificates(api, p, r.certificates.as_ref(), r.ssl_policy.as_ref()).await?;
    let default_actions = actions(api, &r.default_actions, p, &lb.arn).await?;
    let existing = api.store.list_listeners(Some(&lb.arn)).await?;
    if existing.iter().any(|l| l.value.port == port) {
        return Err(err("DuplicateListener", "A listener already exists on this port for this load balancer"));
    }
    if existing.len() >= MAX_LISTENERS {
        return Err(err("TooManyListeners", format!("A load balancer can have at most {MAX_LISTENERS} listeners")));
    }
    let arn = elb::listener_arn(&lb.arn, &new_id());
    let listener = Listener {
        arn: arn.clone(),
        load_balancer_arn: lb.arn.clone(),
        protocol: p,
        port,
        certificates,
        ssl_policy,
        default_actions: default_actions.clone(),
        attributes: elb::listener_defaults(p),
        tags: tags_from(r.tags)?,
    };
    match api.store.put_listener(&listener, None).await {
        Ok(_) => {}
        Err(StoreError::Conflict) => return Err(err("DuplicateListener", "A listener already exists on this port for this load balancer")),
        Err(e) => return Err(e.into()),
    }
    let default_rule = Rule {
        arn: elb::rule_arn(&arn, &new_id()),
        listener_arn: arn,
        priority: None,
        conditions: vec![],
        actions: default_actions,
        tags: Default::default(),
    };
    api.store.put_rule(&default_rule, None).await?;
    Ok(CreateListenerOutput { listeners: Some(vec![wire(&listener)]) })
}

pub(crate) fn wire(l: &Listener) -> WireListener {
    WireListener {
        listener_arn: Some(l.arn.clone()),
        load_balancer_arn: Some(l.load_balancer_arn.clone()),
        port: Some(i32::from(l.port)),
        protocol: Some(wire_protocol(l.protocol)),
        certificates: (!l.certificates.is_empty())
            .then(|| l.certificates.iter().take(1).map(|c| Certificate { certificate_arn: Some(c.clone()), is_default: None }).collect()),
        ssl_policy: l.ssl_policy.clone(),
        default_actions: Some(l.default_actions.iter().map(wire_action).collect()),
        ..Default::default()
    }
}

pub(super) async fn describe(api: &Api, r: DescribeListenersInput) -> Result<DescribeListenersOutput, ApiError> {
    let all: Vec<Listener> = match (&r.load_balancer_arn, &r.listener_arns) {
        (Some(_), Some(_)) => return Err(validation("A load balancer ARN and listener ARNs cannot both be given")),
        (Some(lb), None) => {
            super::load_balancers::get(api, lb).await?;
            api.store.list_listeners(Some(lb)).await?.into_iter().map(|v| v.value).collect()
        }
        (None, Some(arns)) => {
            let mut out = Vec::new();
            for a in arns {
                out.push(get(api, a).await?.value);
            }
            out
        }
        (None, None) => return Err(validation("A load balancer ARN or listener ARNs must be given")),
    };
    let (items, next_marker) =
        page(all, |l| format!("{}/{:05}", l.load_balancer_arn, l.port), r.marker.as_deref(), r.page_size)?;
    Ok(DescribeListenersOutput { listeners: Some(items.iter().map(wire).collect()), next_marker })
}

/// The default rule of a listener.
pub(crate) async fn default_rule(api: &Api, listener_arn: &str) -> Result<Versioned<Rule>, ApiError> {
    api.store
        .list_rules(Some(listener_arn))
        .await?
        .into_iter()
        .find(|r| r.value.priority.is_none())
        .ok_or_else(|| ApiError::Internal(StoreError::NotFound(format!("default rule of {listener_arn}"))))
}

pub(super) async fn modify(api: &Api, r: ModifyListenerInput) -> Result<ModifyListenerOutput, ApiError> {
    let current = get(api, &r.listener_arn).await?;
    let lb = super::load_balancers::get(api, &current.value.load_balancer_arn).await?.value;
    let mut next = current.value.clone();
    if let Some(p) = r.protocol {
        next.protocol = protocol(p)?;
        check_load_balancer(&lb, next.protocol)?;
    }
    if let Some(p) = r.port {
        next.port = elb::port(p, "Port")?;
    }
    if next.protocol != current.value.protocol || r.certificates.is_some() || r.ssl_policy.is_some() {
        let certs = r.certificates.clone().or_else(|| {
            Some(current.value.certificates.iter().map(|c| Certificate { certificate_arn: Some(c.clone()), is_default: None }).collect())
        });
        let policy = r.ssl_policy.clone().or_else(|| current.value.ssl_policy.clone().filter(|_| next.protocol == Protocol::Https));
        let (certs, policy) = certificates(api, next.protocol, certs.as_ref(), policy.as_ref()).await?;
        next.certificates = certs;
        next.ssl_policy = policy;
    }
    if next.protocol != current.value.protocol {
        next.attributes = elb::listener_defaults(next.protocol);
    }
    if let Some(a) = &r.default_actions {
        next.default_actions = actions(api, a, next.protocol, &lb.arn).await?;
    }
    match api.store.put_listener(&next, Some(current.version)).await {
        Ok(_) => {}
        Err(StoreError::Conflict) if next.port != current.value.port => {
            return Err(err("DuplicateListener", "A listener already exists on this port for this load balancer"));
        }
        Err(e) => return Err(e.into()),
    }
    if next.default_actions != current.value.default_actions {
        let mut rule = default_rule(api, &next.arn).await?;
        rule.value.actions = next.default_actions.clone();
        api.store.put_rule(&rule.value, Some(rule.version)).await?;
    }
    Ok(ModifyListenerOutput { listeners: Some(vec![wire(&next)]) })
}

pub(super) async fn delete(api: &Api, r: DeleteListenerInput) -> Result<DeleteListenerOutput, ApiError> {
    if !api.store.delete_listener(&r.listener_arn).await? {
        return Err(not_found());
    }
    Ok(DeleteListenerOutput {})
}

fn attributes(l: &Listener) -> Vec<ListenerAttribute> {
    l.attributes.iter().map(|(k, v)| ListenerAttribute { key: Some(k.clone()), value: Some(v.clone()) }).collect()
}

pub(super) async fn describe_attributes(
    api: &Api,
    r: DescribeListenerAttributesInput,
) -> Result<DescribeListenerAttributesOutput, ApiError> {
    let l = get(api, &r.listener_arn).await?;
    Ok(DescribeListenerAttributesOutput { attributes: Some(attributes(&l.value)) })
}

pub(super) async fn modify_attributes(api: &Api, r: ModifyListenerAttributesInput) -> Result<ModifyListenerAttributesOutput, ApiError> {
    let changes = pairs(r.attributes.iter().map(|a| (&a.key, &a.value)))?;
    let (r, changes) = (&r, &changes);
    let next = retry(move || async move {
        let l = get(api, &r.listener_arn).await?;
        let mut next = l.value.clone();
        next.attributes = elb::apply_listener_attributes(&l.value, changes)?;
        Ok(api.store.put_listener(&next, Some(l.version)).await.map(|_| next))
    })
    .await?;
    Ok(ModifyListenerAttributesOutput { attributes: Some(attributes(&next)) })
}
