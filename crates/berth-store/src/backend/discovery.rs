//! [`DiscoveryStore`] on the SQL backends (`migrations/0007_discovery.sql`).
//!
//! Creating a service holds its namespace's row (shared) and deleting a
//! namespace locks it first and then counts its services, so a service is
//! never left in a deleted namespace; instances and services likewise.

use async_trait::async_trait;
use berth_model::discovery::{DiscoveryService, Instance, Namespace, Operation};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};

use super::{SqlStore, decode_body, encode_body};
use crate::discovery::DiscoveryStore;
use crate::{RecordKind, StoreError, Versioned};

fn row<T: serde::de::DeserializeOwned>(r: &AnyRow) -> Result<Versioned<T>, StoreError> {
    let version: i64 = r.try_get("version")?;
    let body: String = r.try_get("body")?;
    Ok(Versioned { version, value: decode_body(&body)? })
}

fn rows<T: serde::de::DeserializeOwned>(rs: &[AnyRow]) -> Result<Vec<Versioned<T>>, StoreError> {
    rs.iter().map(row).collect()
}

fn instance_key(service_id: &str, instance_id: &str) -> String {
    format!("{service_id}/{instance_id}")
}

/// Milliseconds, as the operations' `updated_at` column holds them.
fn millis(seconds: f64) -> i64 {
    (seconds * 1000.0) as i64
}

async fn save_operation(tx: &mut AnyConnection, op: &Operation) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO discovery_operations (id, updated_at, body) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, body = excluded.body",
    )
    .bind(&op.id)
    .bind(millis(op.updated_at))
    .bind(encode_body(op)?)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A table whose rows other rows point at by `column`.
#[derive(Clone, Copy)]
struct Parent {
    table: &'static str,
    children: &'static str,
    column: &'static str,
}

impl SqlStore {
    /// Deletes row `id` of `parent.table` (storing `op` with it) unless
    /// a row of `parent.children` points at it (`Rejected`); `false` if
    /// there was none. The row is locked before its children are counted.
    async fn delete_childless(&self, parent: Parent, id: &str, op: Option<&Operation>) -> Result<bool, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        if !self.hold(&mut tx, parent.table, id, true).await? {
            return Ok(false);
        }
        let sql = format!("SELECT COUNT(*) FROM {} WHERE {} = $1", parent.children, parent.column);
        let children: i64 = sqlx::query_scalar(&sql).bind(id).fetch_one(&mut *tx).await?;
        if children > 0 {
            return Err(StoreError::Rejected);
        }
        sqlx::query(&format!("DELETE FROM {} WHERE id = $1", parent.table)).bind(id).execute(&mut *tx).await?;
        if let Some(op) = op {
            save_operation(&mut tx, op).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Holds the row `id` of `table` in the transaction (shared or
    /// exclusive); whether it exists.
    async fn hold(&self, tx: &mut AnyConnection, table: &str, id: &str, exclusive: bool) -> Result<bool, StoreError> {
        let lock = if exclusive { self.dialect.for_update() } else { self.dialect.for_share() };
        let sql = format!("SELECT id FROM {table} WHERE id = $1{lock}");
        Ok(sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await?.is_some())
    }
}

#[async_trait]
impl DiscoveryStore for SqlStore {
    async fn insert_namespace(&self, namespace: &Namespace, op: &Operation) -> Result<Versioned<Namespace>, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        let done = sqlx::query(
            "INSERT INTO discovery_namespaces (id, name_key, version, body) VALUES ($1, $2, 1, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&namespace.id)
        .bind(namespace.name.to_ascii_lowercase())
        .bind(encode_body(namespace)?)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        save_operation(&mut tx, op).await?;
        tx.commit().await?;
        self.notices.send(RecordKind::Namespace, namespace.id.as_str(), Some(1));
        Ok(Versioned { version: 1, value: namespace.clone() })
    }

    async fn update_namespace(&self, namespace: &Namespace, expected_version: i64) -> Result<Versioned<Namespace>, StoreError> {
        let done = sqlx::query("UPDATE discovery_namespaces SET body = $1, version = version + 1 WHERE id = $2 AND version = $3")
            .bind(encode_body(namespace)?)
            .bind(&namespace.id)
            .bind(expected_version)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        self.notices.send(RecordKind::Namespace, namespace.id.as_str(), Some(expected_version + 1));
        Ok(Versioned { version: expected_version + 1, value: namespace.clone() })
    }

    async fn get_namespace(&self, id: &str) -> Result<Option<Versioned<Namespace>>, StoreError> {
        let r = sqlx::query("SELECT version, body FROM discovery_namespaces WHERE id = $1").bind(id).fetch_optional(&self.read).await?;
        r.as_ref().map(row).transpose()
    }

    async fn list_namespaces(&self) -> Result<Vec<Versioned<Namespace>>, StoreError> {
        let sql = format!("SELECT version, body FROM discovery_namespaces ORDER BY id{}", self.dialect.bytewise());
        rows(&sqlx::query(&sql).fetch_all(&self.read).await?)
    }

    async fn delete_namespace(&self, id: &str, op: &Operation) -> Result<bool, StoreError> {
        let parent = Parent { table: "discovery_namespaces", children: "discovery_services", column: "namespace_id" };
        let deleted = self.delete_childless(parent, id, Some(op)).await?;
        if deleted {
            self.notices.send(RecordKind::Namespace, id, None);
        }
        Ok(deleted)
    }

    async fn insert_discovery_service(&self, service: &DiscoveryService) -> Result<Versioned<DiscoveryService>, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        if !self.hold(&mut tx, "discovery_namespaces", &service.namespace_id, false).await? {
            return Err(StoreError::NotFound(format!("namespace {}", service.namespace_id)));
        }
        let done = sqlx::query(
            "INSERT INTO discovery_services (id, namespace_id, name_key, revision, version, body) \
             VALUES ($1, $2, $3, 0, 1, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&service.id)
        .bind(&service.namespace_id)
        .bind(service.name.to_ascii_lowercase())
        .bind(encode_body(service)?)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        tx.commit().await?;
        self.notices.send(RecordKind::DiscoveryService, service.id.as_str(), Some(1));
        Ok(Versioned { version: 1, value: service.clone() })
    }

    async fn update_discovery_service(
        &self,
        service: &DiscoveryService,
        expected_version: i64,
        op: Option<&Operation>,
    ) -> Result<Versioned<DiscoveryService>, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        let done = sqlx::query("UPDATE discovery_services SET body = $1, version = version + 1 WHERE id = $2 AND version = $3")
            .bind(encode_body(service)?)
            .bind(&service.id)
            .bind(expected_version)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        if let Some(op) = op {
            save_operation(&mut tx, op).await?;
        }
        tx.commit().await?;
        self.notices.send(RecordKind::DiscoveryService, service.id.as_str(), Some(expected_version + 1));
        Ok(Versioned { version: expected_version + 1, value: service.clone() })
    }

    async fn get_discovery_service(&self, id: &str) -> Result<Option<Versioned<DiscoveryService>>, StoreError> {
        let r = sqlx::query("SELECT version, body FROM discovery_services WHERE id = $1").bind(id).fetch_optional(&self.read).await?;
        r.as_ref().map(row).transpose()
    }

    async fn list_discovery_services(&self, namespace_id: Option<&str>) -> Result<Vec<Versioned<DiscoveryService>>, StoreError> {
        let c = self.dialect.bytewise();
        let found = match namespace_id {
            Some(ns) => {
                sqlx::query(&format!("SELECT version, body FROM discovery_services WHERE namespace_id = $1 ORDER BY id{c}"))
                    .bind(ns)
                    .fetch_all(&self.read)
                    .await?
            }
            None => sqlx::query(&format!("SELECT version, body FROM discovery_services ORDER BY id{c}")).fetch_all(&self.read).await?,
        };
        rows(&found)
    }

    async fn delete_discovery_service(&self, id: &str) -> Result<bool, StoreError> {
        let parent = Parent { table: "discovery_services", children: "discovery_instances", column: "service_id" };
        let deleted = self.delete_childless(parent, id, None).await?;
        if deleted {
            self.notices.send(RecordKind::DiscoveryService, id, None);
        }
        Ok(deleted)
    }

    async fn discovery_revision(&self, service_id: &str) -> Result<i64, StoreError> {
        let r: Option<i64> = sqlx::query_scalar("SELECT revision FROM discovery_services WHERE id = $1")
            .bind(service_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(r.unwrap_or(0))
    }

    async fn put_instance(&self, instance: &Instance, op: Option<&Operation>) -> Result<Versioned<Instance>, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        // Counting the change holds the service's row to commit, so a
        // delete of the service waits and then sees the instance.
        let bumped = sqlx::query("UPDATE discovery_services SET revision = revision + 1 WHERE id = $1")
            .bind(&instance.service_id)
            .execute(&mut *tx)
            .await?;
        if bumped.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("service {}", instance.service_id)));
        }
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO discovery_instances (service_id, instance_id, version, body) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (service_id, instance_id) DO UPDATE SET body = excluded.body, \
             version = discovery_instances.version + 1 RETURNING version",
        )
        .bind(&instance.service_id)
        .bind(&instance.id)
        .bind(encode_body(instance)?)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(op) = op {
            save_operation(&mut tx, op).await?;
        }
        tx.commit().await?;
        self.notices.send(RecordKind::DiscoveryInstance, instance_key(&instance.service_id, &instance.id), Some(version));
        Ok(Versioned { version, value: instance.clone() })
    }

    async fn get_instance(&self, service_id: &str, instance_id: &str) -> Result<Option<Versioned<Instance>>, StoreError> {
        let r = sqlx::query("SELECT version, body FROM discovery_instances WHERE service_id = $1 AND instance_id = $2")
            .bind(service_id)
            .bind(instance_id)
            .fetch_optional(&self.read)
            .await?;
        r.as_ref().map(row).transpose()
    }

    async fn list_instances(&self, service_id: &str) -> Result<Vec<Versioned<Instance>>, StoreError> {
        let sql = format!(
            "SELECT version, body FROM discovery_instances WHERE service_id = $1 ORDER BY instance_id{}",
            self.dialect.bytewise()
        );
        rows(&sqlx::query(&sql).bind(service_id).fetch_all(&self.read).await?)
    }

    async fn delete_instance(&self, service_id: &str, instance_id: &str, op: &Operation) -> Result<bool, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        let done = sqlx::query("DELETE FROM discovery_instances WHERE service_id = $1 AND instance_id = $2")
            .bind(service_id)
            .bind(instance_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE discovery_services SET revision = revision + 1 WHERE id = $1").bind(service_id).execute(&mut *tx).await?;
        save_operation(&mut tx, op).await?;
        tx.commit().await?;
        self.notices.send(RecordKind::DiscoveryInstance, instance_key(service_id, instance_id), None);
        Ok(true)
    }

    async fn get_operation(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM discovery_operations WHERE id = $1").bind(id).fetch_optional(&self.read).await?;
        body.as_deref().map(decode_body).transpose()
    }

    async fn list_operations(&self) -> Result<Vec<Operation>, StoreError> {
        let sql = format!("SELECT body FROM discovery_operations ORDER BY id{}", self.dialect.bytewise());
        let bodies: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&self.read).await?;
        bodies.iter().map(|b| decode_body(b)).collect()
    }
}
