//! SSM parameters and Secrets Manager secrets (`migrations/0010_secrets.sql`).
//! The store keeps what it is given: values arrive already sealed by
//! `berth-secrets` (SecureString, every secret value), so nothing here
//! sees a secret in the clear.

use async_trait::async_trait;
use berth_model::secrets::{Parameter, Secret};

use crate::{StoreError, Versioned};

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Creates (`None`: `Conflict` if the name is taken) or replaces a
    /// parameter at the version read (`Conflict` if it changed).
    async fn put_parameter(&self, parameter: &Parameter, expected_version: Option<i64>) -> Result<Versioned<Parameter>, StoreError>;
    async fn get_parameter(&self, name: &str) -> Result<Option<Versioned<Parameter>>, StoreError>;
    /// Every parameter, by name (bytewise).
    async fn list_parameters(&self) -> Result<Vec<Versioned<Parameter>>, StoreError>;
    /// `false` if there was none.
    async fn delete_parameter(&self, name: &str) -> Result<bool, StoreError>;

    /// Creates (`None`: `Conflict` if the ARN or the name is taken) or
    /// replaces a secret at the version read.
    async fn put_secret(&self, secret: &Secret, expected_version: Option<i64>) -> Result<Versioned<Secret>, StoreError>;
    async fn get_secret(&self, arn: &str) -> Result<Option<Versioned<Secret>>, StoreError>;
    async fn get_secret_by_name(&self, name: &str) -> Result<Option<Versioned<Secret>>, StoreError>;
    /// Every secret, by name (bytewise).
    async fn list_secrets(&self) -> Result<Vec<Versioned<Secret>>, StoreError>;
    /// `false` if there was none.
    async fn delete_secret(&self, arn: &str) -> Result<bool, StoreError>;
}
