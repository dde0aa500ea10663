//! [`UsageStore`] on the SQL backends.

use async_trait::async_trait;
use berth_model::metering::UsageRecord;
use sqlx::Row as _;

use super::SqlStore;
use crate::StoreError;
use crate::usage::UsageStore;

#[async_trait]
impl UsageStore for SqlStore {
    async fn put_task_usage(&self, task_arn: &str, records: &[UsageRecord]) -> Result<(), StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        sqlx::query("DELETE FROM usage_records WHERE task_arn = $1").bind(task_arn).execute(&mut *tx).await?;
        for r in records {
            let body = serde_json::to_string(r).map_err(StoreError::Corrupt)?;
            sqlx::query("INSERT INTO usage_records (task_arn, hour, closed, body) VALUES ($1, $2, $3, $4)")
                .bind(task_arn)
                .bind(r.hour)
                .bind(i64::from(r.closed))
                .bind(body)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_usage(&self, from: i64, to: i64) -> Result<Vec<UsageRecord>, StoreError> {
        let c = self.dialect.bytewise();
        let sql = format!("SELECT body FROM usage_records WHERE hour >= $1 AND hour < $2 ORDER BY hour, task_arn{c}");
        let rows = sqlx::query(&sql).bind(from).bind(to).fetch_all(&self.read).await?;
        rows.iter()
            .map(|row| {
                let body: String = row.try_get(0)?;
                serde_json::from_str(&body).map_err(|e| StoreError::Format(e.to_string()))
            })
            .collect()
    }

    async fn open_usage_tasks(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT task_arn FROM usage_records WHERE closed = 0").fetch_all(&self.read).await?;
        rows.iter().map(|row| Ok(row.try_get::<String, _>(0)?)).collect()
    }
}
