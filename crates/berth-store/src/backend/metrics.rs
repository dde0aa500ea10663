//! [`MetricStore`] on the SQL backends: `metric_series` (one row per
//! metric) and `metric_points` (datapoints, the sample as JSON).

use async_trait::async_trait;
use berth_model::metrics::{Datapoint, Dimensions, MetricKey, RETENTION, Sample, roll_up};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{SqlStore, decode_body, encode_body};
use crate::StoreError;
use crate::metrics::{MetricQuery, MetricSeries, MetricStore, PruneReport};

/// Rows per multi-row INSERT (6 parameters each, well under both
/// backends' limits).
const INSERT_CHUNK: usize = 200;

impl SqlStore {
    /// Inserts datapoints through `tx`.
    async fn insert_points(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, points: &[Datapoint]) -> Result<(), StoreError> {
        for chunk in points.chunks(INSERT_CHUNK) {
            let mut sql = String::from("INSERT INTO metric_points (id, series, ts_ms, resolution_s, unit, body) VALUES ");
            for i in 0..chunk.len() {
                let b = i * 6;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("(${}, ${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6));
            }
            let mut q = sqlx::query(&sql);
            for p in chunk {
                q = q
                    .bind(rand::random::<i64>())
                    .bind(p.key.canonical())
                    .bind(p.timestamp_ms)
                    .bind(i64::from(p.resolution_s))
                    .bind(p.unit.clone())
                    .bind(encode_body(&p.sample)?);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

fn point_row(key: MetricKey, row: &AnyRow) -> Result<Datapoint, StoreError> {
    let resolution: i64 = row.try_get("resolution_s")?;
    let body: String = row.try_get("body")?;
    Ok(Datapoint {
        key,
        timestamp_ms: row.try_get("ts_ms")?,
        unit: row.try_get("unit")?,
        resolution_s: u32::try_from(resolution).map_err(|_| StoreError::Format(format!("resolution {resolution}")))?,
        sample: decode_body::<Sample>(&body)?,
    })
}

#[async_trait]
impl MetricStore for SqlStore {
    async fn put_datapoints(&self, points: &[Datapoint], now_ms: i64) -> Result<(), StoreError> {
        if points.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<&MetricKey> = points.iter().map(|p| &p.key).collect();
        keys.sort();
        keys.dedup();
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        for key in keys {
            sqlx::query(
                "INSERT INTO metric_series (series, namespace, metric_name, dimensions, last_put_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (series) DO UPDATE SET last_put_ms = excluded.last_put_ms",
            )
            .bind(key.canonical())
            .bind(key.namespace.clone())
            .bind(key.metric_name.clone())
            .bind(encode_body(&key.dimensions)?)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        self.insert_points(&mut tx, points).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn metric_datapoints(&self, key: &MetricKey, start_ms: i64, end_ms: i64) -> Result<Vec<Datapoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT ts_ms, resolution_s, unit, body FROM metric_points \
             WHERE series = $1 AND ts_ms >= $2 AND ts_ms < $3 ORDER BY ts_ms",
        )
        .bind(key.canonical())
        .bind(start_ms)
        .bind(end_ms)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| point_row(key.clone(), r)).collect()
    }

    async fn list_metrics(&self, query: &MetricQuery) -> Result<Vec<MetricSeries>, StoreError> {
        let mut sql = String::from("SELECT namespace, metric_name, dimensions, last_put_ms FROM metric_series WHERE last_put_ms >= $1");
        let mut n = 1;
        for (column, value) in [("namespace", &query.namespace), ("metric_name", &query.metric_name)] {
            if value.is_some() {
                n += 1;
                sql.push_str(&format!(" AND {column} = ${n}"));
            }
        }
        let mut q = sqlx::query(&sql).bind(query.active_since_ms.unwrap_or(i64::MIN));
        for value in [&query.namespace, &query.metric_name].into_iter().flatten() {
            q = q.bind(value.clone());
        }
        let rows = q.fetch_all(&self.read).await?;
        let mut out = Vec::new();
        for row in &rows {
            let dims: String = row.try_get("dimensions")?;
            let key = MetricKey {
                namespace: row.try_get("namespace")?,
                metric_name: row.try_get("metric_name")?,
                dimensions: decode_body::<Dimensions>(&dims)?,
            };
            if key.matches(&query.dimensions) {
                out.push(MetricSeries { key, last_put_ms: row.try_get("last_put_ms")? });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn prune_metrics(&self, now_ms: i64, batch: u32) -> Result<PruneReport, StoreError> {
        let mut report = PruneReport::default();
        let mut finer_than = 0_i64;
        for level in RETENTION {
            let below = i64::from(level.below_s);
            let cutoff = now_ms.saturating_sub(level.kept_ms);
            if level.into_s == 0 {
                let done = sqlx::query("DELETE FROM metric_points WHERE resolution_s >= $1 AND ts_ms < $2")
                    .bind(finer_than)
                    .bind(cutoff)
                    .execute(&self.write)
                    .await?;
                report.deleted += done.rows_affected();
                continue;
            }
            let rows = sqlx::query(
                "SELECT id, series, ts_ms, resolution_s, unit, body FROM metric_points \
                 WHERE resolution_s >= $1 AND resolution_s < $2 AND ts_ms < $3 ORDER BY ts_ms LIMIT $4",
            )
            .bind(finer_than)
            .bind(below)
            .bind(cutoff)
            .bind(i64::from(batch))
            .fetch_all(&self.read)
            .await?;
            finer_than = below;
            if rows.is_empty() {
                continue;
            }
            let mut ids = Vec::with_capacity(rows.len());
            let mut points = Vec::with_capacity(rows.len());
            for row in &rows {
                let series: String = row.try_get("series")?;
                let key = MetricKey::from_canonical(&series).ok_or_else(|| StoreError::Format(format!("metric series {series}")))?;
                ids.push(row.try_get::<i64, _>("id")?);
                points.push(point_row(key, row)?);
            }
            let rolled = roll_up(&points, level.into_s);
            let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
            let mut removed = 0;
            for chunk in ids.chunks(INSERT_CHUNK) {
                let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                let sql = format!("DELETE FROM metric_points WHERE id IN ({})", marks.join(", "));
                let mut q = sqlx::query(&sql);
                for id in chunk {
                    q = q.bind(*id);
                }
                removed += q.execute(&mut *tx).await?.rows_affected();
            }
            if removed != ids.len() as u64 {
                // Another pass took some of them first: leave it to that one.
                tx.rollback().await?;
                continue;
            }
            self.insert_points(&mut tx, &rolled).await?;
            tx.commit().await?;
            report.rolled_up += removed;
            report.written += rolled.len() as u64;
        }
        Ok(report)
    }
}
