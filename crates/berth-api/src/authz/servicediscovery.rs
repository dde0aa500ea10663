//! What each Cloud Map action asks of IAM: the namespace or service ARN
//! (`arn:aws:servicediscovery:R:A:namespace/ns-…`, `service/srv-…`);
//! instance actions name their service; DiscoverInstances has no resource
//! but the `servicediscovery:NamespaceName`/`ServiceName` keys.

use berth_model::Account;
use berth_wire::servicediscovery::{Action, Tag};

use super::{arn, ask, ask_any, with_tag_keys, with_tags};
use crate::caller::IamRequest;

pub(crate) fn table(account: &Account, action: &Action) -> Vec<IamRequest> {
    let op = action.name();
    let on = |kind: &str, id: &str| ask("servicediscovery", op, [arn(account, "servicediscovery", &format!("{kind}/{id}"))]);
    let any = || ask_any("servicediscovery", op);
    let r = match action {
        Action::CreateHttpNamespace(r) => tagged(any(), &r.tags),
        Action::CreatePrivateDnsNamespace(r) => tagged(any(), &r.tags),
        Action::CreatePublicDnsNamespace(r) => tagged(any(), &r.tags),
        Action::CreateService(r) => tagged(r.namespace_id.as_deref().map_or_else(any, |ns| on("namespace", ns)), &r.tags),
        Action::DeleteNamespace(r) => on("namespace", &r.id),
        Action::GetNamespace(r) => on("namespace", &r.id),
        Action::DeleteService(r) => on("service", &r.id),
        Action::GetService(r) => on("service", &r.id),
        Action::UpdateService(r) => on("service", &r.id),
        Action::RegisterInstance(r) => on("service", &r.service_id),
        Action::DeregisterInstance(r) => on("service", &r.service_id),
        Action::GetInstance(r) => on("service", &r.service_id),
        Action::ListInstances(r) => on("service", &r.service_id),
        Action::GetInstancesHealthStatus(r) => on("service", &r.service_id),
        Action::UpdateInstanceCustomHealthStatus(r) => on("service", &r.service_id),
        Action::DiscoverInstances(r) => discover(any(), &r.namespace_name, &r.service_name),
        Action::DiscoverInstancesRevision(r) => discover(any(), &r.namespace_name, &r.service_name),
        Action::TagResource(r) => tagged(ask("servicediscovery", op, [r.resource_arn.clone()]), &Some(r.tags.clone())),
        Action::UntagResource(r) => with_tag_keys(ask("servicediscovery", op, [r.resource_arn.clone()]), &r.tag_keys),
        Action::ListTagsForResource(r) => ask("servicediscovery", op, [r.resource_arn.clone()]),
        _ => any(),
    };
    vec![r]
}

fn discover(r: IamRequest, namespace: &str, service: &str) -> IamRequest {
    r.key("servicediscovery:NamespaceName", [namespace.to_owned()]).key("servicediscovery:ServiceName", [service.to_owned()])
}

fn tagged(r: IamRequest, tags: &Option<Vec<Tag>>) -> IamRequest {
    with_tags(r, tags.iter().flatten().map(|t| (t.key.as_str(), t.value.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::tests::account;

    #[test]
    fn namespaces_and_services() {
        let a = Action::parse("RegisterInstance", br#"{"ServiceId":"srv-1","InstanceId":"i","Attributes":{}}"#).ok().flatten().expect("action");
        let r = table(&account(), &a).remove(0);
        assert_eq!(r.action, "servicediscovery:RegisterInstance");
        assert_eq!(r.resources, ["arn:aws:servicediscovery:us-east-1:123456789012:service/srv-1"]);
        let a = Action::parse("DiscoverInstances", br#"{"NamespaceName":"local","ServiceName":"web"}"#).ok().flatten().expect("action");
        let r = table(&account(), &a).remove(0);
        assert_eq!(r.resources, ["*"]);
        assert_eq!(r.keys.get("servicediscovery:servicename"), Some(&vec!["web".to_owned()]));
    }
}
