//! Service discovery's records on both backends (cases run by
//! `both_backends!` in `store.rs`).

use std::collections::BTreeMap;

use berth_model::discovery::{
    DiscoveryService, DnsConfig, DnsRecord, Health, Instance, Namespace, NamespaceType, Operation, OperationType,
    RecordType, RoutingPolicy, ServiceType,
};
use berth_store::{Notice, RecordKind, StoreError};

use super::Backend;

fn namespace(id: &str, name: &str) -> Namespace {
    Namespace {
        id: id.into(),
        arn: format!("arn:aws:servicediscovery:us-east-1:123456789012:namespace/{id}"),
        name: name.into(),
        kind: NamespaceType::DnsPrivate,
        description: None,
        vpc: Some("vpc-default".into()),
        hosted_zone_id: Some("Z1".into()),
        soa_ttl: None,
        creator_request_id: None,
        operation_id: format!("op-{id}"),
        created_at: 1.0,
        tags: BTreeMap::new(),
    }
}

fn service(id: &str, ns: &str, name: &str) -> DiscoveryService {
    DiscoveryService {
        id: id.into(),
        arn: format!("arn:aws:servicediscovery:us-east-1:123456789012:service/{id}"),
        name: name.into(),
        namespace_id: ns.into(),
        description: None,
        dns: Some(DnsConfig { routing_policy: RoutingPolicy::Multivalue, records: vec![DnsRecord { kind: RecordType::A, ttl: 10 }] }),
        custom_health: Some(1),
        kind: ServiceType::DnsHttp,
        creator_request_id: None,
        created_at: 2.0,
        tags: BTreeMap::new(),
    }
}

fn instance(service: &str, id: &str, ip: &str) -> Instance {
    Instance {
        service_id: service.into(),
        id: id.into(),
        attributes: BTreeMap::from([("AWS_INSTANCE_IPV4".to_owned(), ip.to_owned())]),
        health: Health::Healthy,
        creator_request_id: None,
        registered_at: 3.0,
    }
}

fn op(id: &str, kind: OperationType) -> Operation {
    Operation::succeeded(id.into(), kind, 4.0, BTreeMap::from([("NAMESPACE".to_owned(), "ns-a".to_owned())]))
}

pub(crate) async fn discovery_namespaces_unique_and_in_use(db: Backend) {
    let s = db.store.as_ref();
    let mut notices = s.watch(RecordKind::Namespace);
    let ns = s.insert_namespace(&namespace("ns-a", "corp.local"), &op("op-1", OperationType::CreateNamespace)).await.unwrap();
    assert_eq!(ns.version, 1);
    assert_eq!(notices.recv().await.unwrap(), Notice { kind: RecordKind::Namespace, key: "ns-a".into(), version: Some(1) });
    // The same name in other case, or the same id: taken.
    let again = s.insert_namespace(&namespace("ns-b", "CORP.local"), &op("op-2", OperationType::CreateNamespace)).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    assert!(matches!(s.insert_namespace(&namespace("ns-a", "other"), &op("op-3", OperationType::CreateNamespace)).await, Err(StoreError::Conflict)));
    // A failed create stored no operation.
    assert!(s.get_operation("op-2").await.unwrap().is_none());
    let stored = s.get_operation("op-1").await.unwrap().unwrap();
    assert_eq!(stored.kind, OperationType::CreateNamespace);
    // Tags change through an update at the version read.
    let mut tagged = ns.value.clone();
    tagged.tags.insert("team".into(), "a".into());
    assert_eq!(s.update_namespace(&tagged, 1).await.unwrap().version, 2);
    assert!(matches!(s.update_namespace(&tagged, 1).await, Err(StoreError::Conflict)));
    assert_eq!(s.get_namespace("ns-a").await.unwrap().unwrap().value.tags["team"], "a");

    s.insert_discovery_service(&service("srv-1", "ns-a", "api")).await.unwrap();
    let dup = s.insert_discovery_service(&service("srv-2", "ns-a", "API")).await;
    assert!(matches!(dup, Err(StoreError::Conflict)), "{dup:?}");
    let orphan = s.insert_discovery_service(&service("srv-3", "ns-gone", "api")).await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");
    let deleting = s.delete_namespace("ns-a", &op("op-4", OperationType::DeleteNamespace)).await;
    assert!(matches!(deleting, Err(StoreError::Rejected)), "{deleting:?}");
    assert!(s.delete_discovery_service("srv-1").await.unwrap());
    assert!(!s.delete_discovery_service("srv-1").await.unwrap());
    assert!(s.delete_namespace("ns-a", &op("op-4", OperationType::DeleteNamespace)).await.unwrap());
    assert!(!s.delete_namespace("ns-a", &op("op-5", OperationType::DeleteNamespace)).await.unwrap());
    assert!(s.get_namespace("ns-a").await.unwrap().is_none());
    let ids: Vec<String> = s.list_operations().await.unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(ids, ["op-1", "op-4"]);
}

pub(crate) async fn discovery_instances_and_revisions(db: Backend) {
    let s = db.store.as_ref();
    s.insert_namespace(&namespace("ns-a", "corp.local"), &op("op-1", OperationType::CreateNamespace)).await.unwrap();
    s.insert_namespace(&namespace("ns-b", "other.local"), &op("op-2", OperationType::CreateNamespace)).await.unwrap();
    s.insert_discovery_service(&service("srv-1", "ns-a", "api")).await.unwrap();
    s.insert_discovery_service(&service("srv-2", "ns-b", "api")).await.unwrap();
    let in_a: Vec<String> = s.list_discovery_services(Some("ns-a")).await.unwrap().into_iter().map(|v| v.value.id).collect();
    assert_eq!(in_a, ["srv-1"]);
    assert_eq!(s.list_discovery_services(None).await.unwrap().len(), 2);

    let mut notices = s.watch(RecordKind::DiscoveryInstance);
    assert_eq!(s.discovery_revision("srv-1").await.unwrap(), 0);
    let first = s.put_instance(&instance("srv-1", "t2", "10.0.0.2"), Some(&op("op-3", OperationType::RegisterInstance))).await.unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(notices.recv().await.unwrap(), Notice { kind: RecordKind::DiscoveryInstance, key: "srv-1/t2".into(), version: Some(1) });
    s.put_instance(&instance("srv-1", "t1", "10.0.0.1"), None).await.unwrap();
    // Registering the same id again replaces it.
    let mut unhealthy = instance("srv-1", "t2", "10.0.0.9");
    unhealthy.health = Health::Unhealthy;
    assert_eq!(s.put_instance(&unhealthy, None).await.unwrap().version, 2);
    let listed: Vec<(String, Health)> =
        s.list_instances("srv-1").await.unwrap().into_iter().map(|v| (v.value.id, v.value.health)).collect();
    assert_eq!(listed, [("t1".to_owned(), Health::Healthy), ("t2".to_owned(), Health::Unhealthy)]);
    assert_eq!(s.get_instance("srv-1", "t2").await.unwrap().unwrap().value.attributes["AWS_INSTANCE_IPV4"], "10.0.0.9");
    assert!(s.list_instances("srv-2").await.unwrap().is_empty());
    assert_eq!(s.discovery_revision("srv-1").await.unwrap(), 3);

    let gone = s.put_instance(&instance("srv-none", "t1", "10.0.0.1"), None).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    assert!(matches!(s.delete_discovery_service("srv-1").await, Err(StoreError::Rejected)));

    assert!(s.delete_instance("srv-1", "t2", &op("op-4", OperationType::DeregisterInstance)).await.unwrap());
    assert!(!s.delete_instance("srv-1", "t2", &op("op-5", OperationType::DeregisterInstance)).await.unwrap());
    assert!(s.get_operation("op-5").await.unwrap().is_none());
    assert_eq!(s.discovery_revision("srv-1").await.unwrap(), 4);
    assert!(s.delete_instance("srv-1", "t1", &op("op-6", OperationType::DeregisterInstance)).await.unwrap());
    assert!(s.delete_discovery_service("srv-1").await.unwrap());
}
