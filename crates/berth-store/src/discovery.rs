//! Service discovery's records (Cloud Map): namespaces, services,
//! instances and operations. Writes that change a record store the
//! operation that reports them in the same transaction, and announce the
//! record to watchers of [`RecordKind::Namespace`],
//! [`RecordKind::DiscoveryService`] or [`RecordKind::DiscoveryInstance`]
//! (key: the id, or `SERVICE_ID/INSTANCE_ID`), so the DNS server can
//! follow them level-triggered.
//!
//! [`RecordKind::Namespace`]: crate::RecordKind::Namespace
//! [`RecordKind::DiscoveryService`]: crate::RecordKind::DiscoveryService
//! [`RecordKind::DiscoveryInstance`]: crate::RecordKind::DiscoveryInstance

use async_trait::async_trait;
use berth_model::discovery::{DiscoveryService, Instance, Namespace, Operation};

use crate::{StoreError, Versioned};

#[async_trait]
pub trait DiscoveryStore: Send + Sync {
    /// Creates a namespace and stores the operation that reports it;
    /// `Conflict` if its id, or its name without case, is taken.
    async fn insert_namespace(&self, namespace: &Namespace, op: &Operation) -> Result<Versioned<Namespace>, StoreError>;
    /// Updates a namespace (its tags) at the version read; `Conflict` if
    /// it changed meanwhile.
    async fn update_namespace(&self, namespace: &Namespace, expected_version: i64) -> Result<Versioned<Namespace>, StoreError>;
    async fn get_namespace(&self, id: &str) -> Result<Option<Versioned<Namespace>>, StoreError>;
    /// Every namespace, by id.
    async fn list_namespaces(&self) -> Result<Vec<Versioned<Namespace>>, StoreError>;
    /// Deletes a namespace and stores `op`; `false` if there was none,
    /// `Rejected` while it has services.
    async fn delete_namespace(&self, id: &str, op: &Operation) -> Result<bool, StoreError>;

    /// Creates a service; `NotFound` if its namespace is gone, `Conflict`
    /// if the namespace has a service of that name (without case).
    async fn insert_discovery_service(&self, service: &DiscoveryService) -> Result<Versioned<DiscoveryService>, StoreError>;
    /// Updates a service at the version read, storing `op` if given.
    async fn update_discovery_service(
        &self,
        service: &DiscoveryService,
        expected_version: i64,
        op: Option<&Operation>,
    ) -> Result<Versioned<DiscoveryService>, StoreError>;
    async fn get_discovery_service(&self, id: &str) -> Result<Option<Versioned<DiscoveryService>>, StoreError>;
    /// The services of a namespace (or all), by id.
    async fn list_discovery_services(&self, namespace_id: Option<&str>) -> Result<Vec<Versioned<DiscoveryService>>, StoreError>;
    /// Deletes a service; `false` if there was none, `Rejected` while
    /// instances are registered in it.
    async fn delete_discovery_service(&self, id: &str) -> Result<bool, StoreError>;
    /// How many times the service's instances changed (0 for a service
    /// that does not exist).
    async fn discovery_revision(&self, service_id: &str) -> Result<i64, StoreError>;

    /// Registers (or replaces) an instance, storing `op` if given, and
    /// counts the change in the service's revision; `NotFound` if the
    /// service is gone.
    async fn put_instance(&self, instance: &Instance, op: Option<&Operation>) -> Result<Versioned<Instance>, StoreError>;
    async fn get_instance(&self, service_id: &str, instance_id: &str) -> Result<Option<Versioned<Instance>>, StoreError>;
    /// A service's instances, by id.
    async fn list_instances(&self, service_id: &str) -> Result<Vec<Versioned<Instance>>, StoreError>;
    /// Deregisters an instance and stores `op`; `false` if there was none.
    async fn delete_instance(&self, service_id: &str, instance_id: &str, op: &Operation) -> Result<bool, StoreError>;

    async fn get_operation(&self, id: &str) -> Result<Option<Operation>, StoreError>;
    /// Every operation, by id.
    async fn list_operations(&self) -> Result<Vec<Operation>, StoreError>;
}
