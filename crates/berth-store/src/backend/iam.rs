//! [`IamStore`] on the SQL backends (`migrations/0009_iam.sql`): users,
//! roles and policies as bodies in one table keyed by kind and name in
//! lower case; keys in `access_keys` with their owner, status and
//! session.

use async_trait::async_trait;
use berth_model::iam::{Group, KeyOwner, KeyStatus, ManagedPolicy, Role, Session, User};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{SqlStore, decode_body, encode_body};
use crate::iam::{IamStore, KeyRecord};
use crate::{AccessKey, StoreError, Versioned};

/// A record of `iam_entities`.
trait Entity: Serialize + DeserializeOwned + Clone + Send + Sync {
    const KIND: &'static str;
    fn name(&self) -> &str;
    fn id(&self) -> &str;
}

macro_rules! entity {
    ($t:ty, $kind:literal) => {
        impl Entity for $t {
            const KIND: &'static str = $kind;
            fn name(&self) -> &str {
                &self.name
            }
            fn id(&self) -> &str {
                &self.id
            }
        }
    };
}
entity!(User, "user");
entity!(Role, "role");
entity!(Group, "group");
entity!(ManagedPolicy, "policy");

fn entity_row<T: Entity>(r: &AnyRow) -> Result<Versioned<T>, StoreError> {
    let version: i64 = r.try_get("version")?;
    let body: String = r.try_get("body")?;
    Ok(Versioned { version, value: decode_body(&body)? })
}

const KEY_COLUMNS: &str = "access_key_id, secret_access_key, created_at, user_name, status, session";

fn key_row(r: &AnyRow) -> Result<KeyRecord, StoreError> {
    let user_name: Option<String> = r.try_get("user_name")?;
    let session: Option<String> = r.try_get("session")?;
    let status: String = r.try_get("status")?;
    let owner = match (session, user_name) {
        (Some(s), _) => KeyOwner::Session(decode_body::<Session>(&s)?),
        (None, Some(name)) => KeyOwner::User { name },
        (None, None) => KeyOwner::Root,
    };
    Ok(KeyRecord {
        key: AccessKey {
            access_key_id: r.try_get("access_key_id")?,
            secret_access_key: r.try_get("secret_access_key")?,
            created_at: r.try_get("created_at")?,
        },
        owner,
        status: KeyStatus::parse(&status).ok_or(StoreError::InvalidColumn { column: "status", value: status })?,
    })
}

impl SqlStore {
    async fn put_entity<T: Entity>(&self, e: &T, expected_version: Option<i64>) -> Result<Versioned<T>, StoreError> {
        let body = encode_body(e)?;
        let key = e.name().to_lowercase();
        let done = match expected_version {
            None => {
                sqlx::query("INSERT INTO iam_entities (kind, name_key, id, version, body) VALUES ($1, $2, $3, 1, $4) ON CONFLICT DO NOTHING")
                    .bind(T::KIND)
                    .bind(&key)
                    .bind(e.id())
                    .bind(body)
                    .execute(&self.write)
                    .await?
            }
            Some(v) => {
                sqlx::query("UPDATE iam_entities SET body = $1, version = version + 1 WHERE kind = $2 AND name_key = $3 AND version = $4")
                    .bind(body)
                    .bind(T::KIND)
                    .bind(&key)
                    .bind(v)
                    .execute(&self.write)
                    .await?
            }
        };
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(Versioned { version: expected_version.map_or(1, |v| v + 1), value: e.clone() })
    }

    async fn get_entity<T: Entity>(&self, name: &str) -> Result<Option<Versioned<T>>, StoreError> {
        let row = sqlx::query("SELECT version, body FROM iam_entities WHERE kind = $1 AND name_key = $2")
            .bind(T::KIND)
            .bind(name.to_lowercase())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(entity_row).transpose()
    }

    async fn list_entities<T: Entity>(&self) -> Result<Vec<Versioned<T>>, StoreError> {
        let sql = format!("SELECT version, body FROM iam_entities WHERE kind = $1 ORDER BY name_key{}", self.dialect.bytewise());
        let rows = sqlx::query(&sql).bind(T::KIND).fetch_all(&self.read).await?;
        rows.iter().map(entity_row).collect()
    }

    /// Deletes an entity at `expected_version`; with `keys_block`, only
    /// if no long-term key names it as its user (checked in the same
    /// transaction, the entity's row held).
    async fn delete_entity<T: Entity>(&self, name: &str, expected_version: i64, keys_block: bool) -> Result<bool, StoreError> {
        let key = name.to_lowercase();
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        let sql = format!("SELECT version, body FROM iam_entities WHERE kind = $1 AND name_key = $2{}", self.dialect.for_update());
        let Some(row) = sqlx::query(&sql).bind(T::KIND).bind(&key).fetch_optional(&mut *tx).await? else {
            return Ok(false);
        };
        let current: Versioned<T> = entity_row(&row)?;
        if current.version != expected_version {
            return Err(StoreError::Conflict);
        }
        let stored = current.value.name().to_owned();
        if keys_block {
            let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_keys WHERE user_name = $1 AND session IS NULL")
                .bind(&stored)
                .fetch_one(&mut *tx)
                .await?;
            if keys > 0 {
                return Err(StoreError::Rejected);
            }
        }
        sqlx::query("DELETE FROM iam_entities WHERE kind = $1 AND name_key = $2").bind(T::KIND).bind(&key).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl IamStore for SqlStore {
    async fn put_user(&self, user: &User, expected_version: Option<i64>) -> Result<Versioned<User>, StoreError> {
        self.put_entity(user, expected_version).await
    }
    async fn get_user(&self, name: &str) -> Result<Option<Versioned<User>>, StoreError> {
        self.get_entity(name).await
    }
    async fn list_users(&self) -> Result<Vec<Versioned<User>>, StoreError> {
        self.list_entities().await
    }
    async fn delete_user(&self, name: &str, expected_version: i64) -> Result<bool, StoreError> {
        self.delete_entity::<User>(name, expected_version, true).await
    }

    async fn put_role(&self, role: &Role, expected_version: Option<i64>) -> Result<Versioned<Role>, StoreError> {
        self.put_entity(role, expected_version).await
    }
    async fn get_role(&self, name: &str) -> Result<Option<Versioned<Role>>, StoreError> {
        self.get_entity(name).await
    }
    async fn list_roles(&self) -> Result<Vec<Versioned<Role>>, StoreError> {
        self.list_entities().await
    }
    async fn delete_role(&self, name: &str, expected_version: i64) -> Result<bool, StoreError> {
        // A deleted role's sessions end with it: their keys resolve to no role.
        self.delete_entity::<Role>(name, expected_version, false).await
    }

    async fn put_group(&self, group: &Group, expected_version: Option<i64>) -> Result<Versioned<Group>, StoreError> {
        self.put_entity(group, expected_version).await
    }
    async fn get_group(&self, name: &str) -> Result<Option<Versioned<Group>>, StoreError> {
        self.get_entity(name).await
    }
    async fn list_groups(&self) -> Result<Vec<Versioned<Group>>, StoreError> {
        self.list_entities().await
    }
    async fn delete_group(&self, name: &str, expected_version: i64) -> Result<bool, StoreError> {
        self.delete_entity::<Group>(name, expected_version, false).await
    }

    async fn put_policy(&self, policy: &ManagedPolicy, expected_version: Option<i64>) -> Result<Versioned<ManagedPolicy>, StoreError> {
        self.put_entity(policy, expected_version).await
    }
    async fn get_policy(&self, name: &str) -> Result<Option<Versioned<ManagedPolicy>>, StoreError> {
        self.get_entity(name).await
    }
    async fn list_policies(&self) -> Result<Vec<Versioned<ManagedPolicy>>, StoreError> {
        self.list_entities().await
    }
    async fn delete_policy(&self, name: &str, expected_version: i64) -> Result<bool, StoreError> {
        self.delete_entity::<ManagedPolicy>(name, expected_version, false).await
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let (user_name, session, expires_at) = match &key.owner {
            KeyOwner::Root => (None, None, None),
            KeyOwner::User { name } => (Some(name.clone()), None, None),
            KeyOwner::Session(s) => (None, Some(encode_body(s)?), Some(s.expires_at)),
        };
        let done = sqlx::query(
            "INSERT INTO access_keys (access_key_id, secret_access_key, created_at, user_name, status, session, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (access_key_id) DO NOTHING",
        )
        .bind(&key.key.access_key_id)
        .bind(&key.key.secret_access_key)
        .bind(key.key.created_at)
        .bind(user_name)
        .bind(key.status.as_str())
        .bind(session)
        .bind(expires_at)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn get_key(&self, access_key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM access_keys WHERE access_key_id = $1");
        let row = sqlx::query(&sql).bind(access_key_id).fetch_optional(&self.read).await?;
        row.as_ref().map(key_row).transpose()
    }

    async fn list_user_keys(&self, user_name: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM access_keys WHERE user_name = $1 AND session IS NULL ORDER BY created_at, access_key_id"
        );
        let rows = sqlx::query(&sql).bind(user_name).fetch_all(&self.read).await?;
        rows.iter().map(key_row).collect()
    }

    async fn set_key_status(&self, access_key_id: &str, status: KeyStatus) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE access_keys SET status = $1 WHERE access_key_id = $2")
            .bind(status.as_str())
            .bind(access_key_id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_key(&self, access_key_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM access_keys WHERE access_key_id = $1").bind(access_key_id).execute(&self.write).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_expired_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM access_keys WHERE session IS NOT NULL AND expires_at < $1")
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }
}
