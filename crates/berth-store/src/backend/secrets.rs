//! [`SecretStore`] on the SQL backends: one [`Keyed`] table each.

use async_trait::async_trait;
use berth_model::secrets::{Parameter, Secret};

use super::{Col, Keyed, SqlStore, all_versioned, text, versioned};
use crate::secrets::SecretStore;
use crate::{StoreError, Versioned};

impl Keyed for Parameter {
    const TABLE: &'static str = "ssm_parameters";
    const KEY: &'static str = "name";
    const KEY_MEMBER: &'static str = "name";
    const COLUMNS: &'static [&'static str] = &["path"];
    fn key(&self) -> Option<String> {
        Some(self.name.clone())
    }
    fn columns(&self) -> Vec<Col> {
        vec![text(Some(self.path()))]
    }
}

impl Keyed for Secret {
    const TABLE: &'static str = "secrets";
    const KEY: &'static str = "arn";
    const KEY_MEMBER: &'static str = "arn";
    const COLUMNS: &'static [&'static str] = &["name"];
    fn key(&self) -> Option<String> {
        Some(self.arn.clone())
    }
    fn columns(&self) -> Vec<Col> {
        vec![text(Some(&self.name))]
    }
}

impl SqlStore {
    async fn list_keyed<R: Keyed>(&self, order: &str) -> Result<Vec<Versioned<R>>, StoreError> {
        let sql = format!("SELECT version, body FROM {} ORDER BY {order}{}", R::TABLE, self.dialect.bytewise());
        all_versioned(&sqlx::query(&sql).fetch_all(&self.read).await?)
    }

    async fn delete_keyed<R: Keyed>(&self, key: &str) -> Result<bool, StoreError> {
        let sql = format!("DELETE FROM {} WHERE {} = $1", R::TABLE, R::KEY);
        Ok(sqlx::query(&sql).bind(key).execute(&self.write).await?.rows_affected() > 0)
    }
}

#[async_trait]
impl SecretStore for SqlStore {
    async fn put_parameter(&self, parameter: &Parameter, expected_version: Option<i64>) -> Result<Versioned<Parameter>, StoreError> {
        self.put(parameter, expected_version).await
    }

    async fn get_parameter(&self, name: &str) -> Result<Option<Versioned<Parameter>>, StoreError> {
        self.get(name).await
    }

    async fn list_parameters(&self) -> Result<Vec<Versioned<Parameter>>, StoreError> {
        self.list_keyed::<Parameter>("name").await
    }

    async fn delete_parameter(&self, name: &str) -> Result<bool, StoreError> {
        self.delete_keyed::<Parameter>(name).await
    }

    async fn put_secret(&self, secret: &Secret, expected_version: Option<i64>) -> Result<Versioned<Secret>, StoreError> {
        match self.put(secret, expected_version).await {
            // The name's own UNIQUE constraint: taken by another ARN.
            Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => Err(StoreError::Conflict),
            other => other,
        }
    }

    async fn get_secret(&self, arn: &str) -> Result<Option<Versioned<Secret>>, StoreError> {
        self.get(arn).await
    }

    async fn get_secret_by_name(&self, name: &str) -> Result<Option<Versioned<Secret>>, StoreError> {
        let row = sqlx::query("SELECT version, body FROM secrets WHERE name = $1").bind(name).fetch_optional(&self.read).await?;
        row.as_ref().map(versioned::<Secret>).transpose()
    }

    async fn list_secrets(&self) -> Result<Vec<Versioned<Secret>>, StoreError> {
        self.list_keyed::<Secret>("name").await
    }

    async fn delete_secret(&self, arn: &str) -> Result<bool, StoreError> {
        self.delete_keyed::<Secret>(arn).await
    }
}
