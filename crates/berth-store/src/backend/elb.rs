//! Load balancing (ELBv2) and ACM records in the SQL backends: the
//! versioned records go through [`Keyed`] like the others; registered
//! targets and their health are plain rows; a certificate's private key
//! is a column beside its body. Deletes remove what hangs off a record
//! (a load balancer's listeners and rules and its addresses, a target
//! group's registrations and health) in one transaction.

use std::net::Ipv4Addr;

use berth_model::elb::{
    CertificateRecord, HealthReason, HealthState, Listener, LoadBalancer, RegisteredTarget, Rule, TargetGroup,
    TargetHealthRecord,
};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{Col, Keyed, SqlStore, all_versioned, decode_body, encode_body, text, versioned_as};
use crate::{PrivateKeyPem, RecordKind, StoreError, Versioned};

/// Load balancers and target groups: keyed by ARN, names unique.
macro_rules! keyed_by_arn_and_name {
    ($record:ty, $table:literal) => {
        impl Keyed for $record {
            const TABLE: &'static str = $table;
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
    };
}

keyed_by_arn_and_name!(LoadBalancer, "load_balancers");
keyed_by_arn_and_name!(TargetGroup, "target_groups");

impl Keyed for Listener {
    const TABLE: &'static str = "listeners";
    const KEY: &'static str = "arn";
    const KEY_MEMBER: &'static str = "arn";
    const COLUMNS: &'static [&'static str] = &["load_balancer_arn", "port"];
    fn key(&self) -> Option<String> {
        Some(self.arn.clone())
    }
    fn columns(&self) -> Vec<Col> {
        vec![text(Some(&self.load_balancer_arn)), Col::Int(i64::from(self.port))]
    }
}

impl Keyed for Rule {
    const TABLE: &'static str = "listener_rules";
    const KEY: &'static str = "arn";
    const KEY_MEMBER: &'static str = "arn";
    const COLUMNS: &'static [&'static str] = &["listener_arn", "priority"];
    fn key(&self) -> Option<String> {
        Some(self.arn.clone())
    }
    fn columns(&self) -> Vec<Col> {
        vec![text(Some(&self.listener_arn)), Col::Int(i64::from(self.priority.unwrap_or(0)))]
    }
}

/// A second writer's unique name, port or priority is a conflict, as a
/// second writer's version is.
fn unique_is_conflict(e: StoreError) -> StoreError {
    match &e {
        StoreError::Database(sqlx::Error::Database(d)) if d.is_unique_violation() => StoreError::Conflict,
        _ => e,
    }
}

fn ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn address(column: &'static str, value: String) -> Result<Ipv4Addr, StoreError> {
    value.parse().map_err(|_| StoreError::InvalidColumn { column, value })
}

fn port(value: i64) -> Result<u16, StoreError> {
    u16::try_from(value).map_err(|_| StoreError::InvalidColumn { column: "port", value: value.to_string() })
}

fn target(row: &AnyRow) -> Result<RegisteredTarget, StoreError> {
    let draining: Option<i64> = row.try_get("draining_until_ms")?;
    Ok(RegisteredTarget {
        target_group_arn: row.try_get("target_group_arn")?,
        id: address("target_id", row.try_get("target_id")?)?,
        port: port(row.try_get("port")?)?,
        zone: row.try_get("zone")?,
        registered_at: seconds(row.try_get("registered_ms")?),
        draining_until: draining.map(seconds),
    })
}

fn health(row: &AnyRow) -> Result<TargetHealthRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let reason: Option<String> = row.try_get("reason")?;
    Ok(TargetHealthRecord {
        target_group_arn: row.try_get("target_group_arn")?,
        id: address("target_id", row.try_get("target_id")?)?,
        port: port(row.try_get("port")?)?,
        state: HealthState::parse(&state).ok_or(StoreError::InvalidColumn { column: "state", value: state.clone() })?,
        reason: match reason {
            None => None,
            Some(r) => Some(HealthReason::parse(&r).ok_or(StoreError::InvalidColumn { column: "reason", value: r.clone() })?),
        },
        description: row.try_get("description")?,
        updated_at: seconds(row.try_get("updated_ms")?),
    })
}

impl SqlStore {
    /// `put` for records whose other columns are unique too.
    async fn put_unique<R: Keyed>(&self, kind: RecordKind, record: &R, expected: Option<i64>) -> Result<Versioned<R>, StoreError> {
        let written = self.put(record, expected).await.map_err(unique_is_conflict)?;
        self.announce(kind, &written);
        Ok(written)
    }

    async fn list_ordered<R: Keyed>(&self, filter: Option<(&str, &str)>, order: &str) -> Result<Vec<Versioned<R>>, StoreError> {
        let rows = match filter {
            Some((column, value)) => {
                let sql = format!("SELECT version, body FROM {} WHERE {column} = $1 ORDER BY {order}", R::TABLE);
                sqlx::query(&sql).bind(value).fetch_all(&self.read).await?
            }
            None => sqlx::query(&format!("SELECT version, body FROM {} ORDER BY {order}", R::TABLE)).fetch_all(&self.read).await?,
        };
        all_versioned(&rows)
    }

    pub(super) async fn elb_put_load_balancer(&self, lb: &LoadBalancer, expected: Option<i64>) -> Result<Versioned<LoadBalancer>, StoreError> {
        self.put_unique(RecordKind::LoadBalancer, lb, expected).await
    }

    pub(super) async fn elb_get_load_balancer(&self, arn: &str) -> Result<Option<Versioned<LoadBalancer>>, StoreError> {
        self.get(arn).await
    }

    pub(super) async fn elb_list_load_balancers(&self) -> Result<Vec<Versioned<LoadBalancer>>, StoreError> {
        self.list_ordered(None, &format!("name{}", self.dialect.bytewise())).await
    }

    pub(super) async fn elb_delete_load_balancer(&self, arn: &str) -> Result<bool, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        let listeners: Vec<String> = sqlx::query_scalar("SELECT arn FROM listeners WHERE load_balancer_arn = $1")
            .bind(arn)
            .fetch_all(&mut *tx)
            .await?;
        let mut rules = Vec::new();
        for l in &listeners {
            let of: Vec<String> =
                sqlx::query_scalar("SELECT arn FROM listener_rules WHERE listener_arn = $1").bind(l).fetch_all(&mut *tx).await?;
            rules.extend(of);
            sqlx::query("DELETE FROM listener_rules WHERE listener_arn = $1").bind(l).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM listeners WHERE load_balancer_arn = $1").bind(arn).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM ip_allocations WHERE task_arn = $1").bind(arn).execute(&mut *tx).await?;
        let done = sqlx::query("DELETE FROM load_balancers WHERE arn = $1").bind(arn).execute(&mut *tx).await?;
        tx.commit().await?;
        for r in rules {
            self.notices.send(RecordKind::ListenerRule, r, None);
        }
        for l in listeners {
            self.notices.send(RecordKind::Listener, l, None);
        }
        let deleted = done.rows_affected() > 0;
        if deleted {
            self.notices.send(RecordKind::LoadBalancer, arn, None);
        }
        Ok(deleted)
    }

    pub(super) async fn elb_put_target_group(&self, tg: &TargetGroup, expected: Option<i64>) -> Result<Versioned<TargetGroup>, StoreError> {
        self.put_unique(RecordKind::TargetGroup, tg, expected).await
    }

    pub(super) async fn elb_get_target_group(&self, arn: &str) -> Result<Option<Versioned<TargetGroup>>, StoreError> {
        self.get(arn).await
    }

    pub(super) async fn elb_list_target_groups(&self) -> Result<Vec<Versioned<TargetGroup>>, StoreError> {
        self.list_ordered(None, &format!("name{}", self.dialect.bytewise())).await
    }

    pub(super) async fn elb_delete_target_group(&self, arn: &str) -> Result<bool, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        sqlx::query("DELETE FROM target_registrations WHERE target_group_arn = $1").bind(arn).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM target_health WHERE target_group_arn = $1").bind(arn).execute(&mut *tx).await?;
        let done = sqlx::query("DELETE FROM target_groups WHERE arn = $1").bind(arn).execute(&mut *tx).await?;
        tx.commit().await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            self.notices.send(RecordKind::Targets, arn, None);
            self.notices.send(RecordKind::TargetGroup, arn, None);
        }
        Ok(deleted)
    }

    pub(super) async fn elb_put_listener(&self, l: &Listener, expected: Option<i64>) -> Result<Versioned<Listener>, StoreError> {
        self.put_unique(RecordKind::Listener, l, expected).await
    }

    pub(super) async fn elb_get_listener(&self, arn: &str) -> Result<Option<Versioned<Listener>>, StoreError> {
        self.get(arn).await
    }

    pub(super) async fn elb_list_listeners(&self, lb: Option<&str>) -> Result<Vec<Versioned<Listener>>, StoreError> {
        let c = self.dialect.bytewise();
        self.list_ordered(lb.map(|a| ("load_balancer_arn", a)), &format!("load_balancer_arn{c}, port")).await
    }

    pub(super) async fn elb_delete_listener(&self, arn: &str) -> Result<bool, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        let rules: Vec<String> =
            sqlx::query_scalar("SELECT arn FROM listener_rules WHERE listener_arn = $1").bind(arn).fetch_all(&mut *tx).await?;
        sqlx::query("DELETE FROM listener_rules WHERE listener_arn = $1").bind(arn).execute(&mut *tx).await?;
        let done = sqlx::query("DELETE FROM listeners WHERE arn = $1").bind(arn).execute(&mut *tx).await?;
        tx.commit().await?;
        for r in rules {
            self.notices.send(RecordKind::ListenerRule, r, None);
        }
        let deleted = done.rows_affected() > 0;
        if deleted {
            self.notices.send(RecordKind::Listener, arn, None);
        }
        Ok(deleted)
    }

    pub(super) async fn elb_put_rule(&self, r: &Rule, expected: Option<i64>) -> Result<Versioned<Rule>, StoreError> {
        self.put_unique(RecordKind::ListenerRule, r, expected).await
    }

    /// Moves every rule out of the way (a negative priority) first, so
    /// swapped priorities never collide midway.
    pub(super) async fn elb_update_rules(&self, rules: &[Versioned<Rule>]) -> Result<Vec<Versioned<Rule>>, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        for (i, r) in rules.iter().enumerate() {
            let done = sqlx::query("UPDATE listener_rules SET priority = $3 WHERE arn = $1 AND version = $2")
                .bind(&r.value.arn)
                .bind(r.version)
                .bind(-(i as i64) - 1)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict);
            }
        }
        for r in rules {
            sqlx::query("UPDATE listener_rules SET priority = $2, body = $3, version = version + 1 WHERE arn = $1")
                .bind(&r.value.arn)
                .bind(i64::from(r.value.priority.unwrap_or(0)))
                .bind(encode_body(&r.value)?)
                .execute(&mut *tx)
                .await
                .map_err(|e| unique_is_conflict(e.into()))?;
        }
        tx.commit().await?;
        let written: Vec<Versioned<Rule>> =
            rules.iter().map(|r| Versioned { version: r.version + 1, value: r.value.clone() }).collect();
        for w in &written {
            self.announce(RecordKind::ListenerRule, w);
        }
        Ok(written)
    }

    pub(super) async fn elb_get_rule(&self, arn: &str) -> Result<Option<Versioned<Rule>>, StoreError> {
        self.get(arn).await
    }

    pub(super) async fn elb_list_rules(&self, listener: Option<&str>) -> Result<Vec<Versioned<Rule>>, StoreError> {
        let c = self.dialect.bytewise();
        // The default rule (priority 0) last, as DescribeRules lists it.
        let order = format!("listener_arn{c}, CASE WHEN priority = 0 THEN 1 ELSE 0 END, priority");
        self.list_ordered(listener.map(|a| ("listener_arn", a)), &order).await
    }

    pub(super) async fn elb_delete_rule(&self, arn: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM listener_rules WHERE arn = $1").bind(arn).execute(&self.write).await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            self.notices.send(RecordKind::ListenerRule, arn, None);
        }
        Ok(deleted)
    }

    pub(super) async fn elb_register_targets(&self, targets: &[RegisteredTarget]) -> Result<(), StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        for t in targets {
            sqlx::query(
                "INSERT INTO target_registrations (target_group_arn, target_id, port, zone, registered_ms, draining_until_ms) \
                 VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (target_group_arn, target_id, port) \
                 DO UPDATE SET zone = $4, registered_ms = $5, draining_until_ms = NULL",
            )
            .bind(&t.target_group_arn)
            .bind(t.id.to_string())
            .bind(i64::from(t.port))
            .bind(&t.zone)
            .bind(ms(t.registered_at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let mut groups: Vec<&str> = targets.iter().map(|t| t.target_group_arn.as_str()).collect();
        groups.dedup();
        for g in groups {
            self.notices.send(RecordKind::Targets, g, Some(0));
        }
        Ok(())
    }

    pub(super) async fn elb_deregister_targets(&self, tg: &str, targets: &[(Ipv4Addr, u16)], until: f64) -> Result<u64, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        let mut n = 0;
        for (id, p) in targets {
            let done = sqlx::query(
                "UPDATE target_registrations SET draining_until_ms = $4 \
                 WHERE target_group_arn = $1 AND target_id = $2 AND port = $3 AND draining_until_ms IS NULL",
            )
            .bind(tg)
            .bind(id.to_string())
            .bind(i64::from(*p))
            .bind(ms(until))
            .execute(&mut *tx)
            .await?;
            n += done.rows_affected();
        }
        tx.commit().await?;
        if n > 0 {
            self.notices.send(RecordKind::Targets, tg, Some(0));
        }
        Ok(n)
    }

    pub(super) async fn elb_list_targets(&self, tg: &str) -> Result<Vec<RegisteredTarget>, StoreError> {
        let rows = sqlx::query(
            "SELECT target_group_arn, target_id, port, zone, registered_ms, draining_until_ms FROM target_registrations \
             WHERE target_group_arn = $1",
        )
        .bind(tg)
        .fetch_all(&self.read)
        .await?;
        let mut out: Vec<RegisteredTarget> = rows.iter().map(target).collect::<Result<_, _>>()?;
        out.sort_by_key(|t| (t.id, t.port));
        Ok(out)
    }

    pub(super) async fn elb_remove_drained_targets(&self, now: f64) -> Result<u64, StoreError> {
        let mut tx = self.write.begin_with(self.dialect.begin_write()).await?;
        let rows = sqlx::query(
            "SELECT target_group_arn, target_id, port FROM target_registrations WHERE draining_until_ms <= $1",
        )
        .bind(ms(now))
        .fetch_all(&mut *tx)
        .await?;
        let mut groups = Vec::new();
        for row in &rows {
            let (g, id, p): (String, String, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            for table in ["target_registrations", "target_health"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE target_group_arn = $1 AND target_id = $2 AND port = $3"))
                    .bind(&g)
                    .bind(&id)
                    .bind(p)
                    .execute(&mut *tx)
                    .await?;
            }
            groups.push(g);
        }
        tx.commit().await?;
        groups.sort();
        groups.dedup();
        for g in groups {
            self.notices.send(RecordKind::Targets, g, Some(0));
        }
        Ok(rows.len() as u64)
    }

    pub(super) async fn elb_put_target_health(&self, h: &TargetHealthRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO target_health (target_group_arn, target_id, port, state, reason, description, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (target_group_arn, target_id, port) \
             DO UPDATE SET state = $4, reason = $5, description = $6, updated_ms = $7",
        )
        .bind(&h.target_group_arn)
        .bind(h.id.to_string())
        .bind(i64::from(h.port))
        .bind(h.state.as_str())
        .bind(h.reason.map(|r| r.as_str()))
        .bind(h.description.as_deref())
        .bind(ms(h.updated_at))
        .execute(&self.write)
        .await?;
        self.notices.send(RecordKind::TargetHealth, &h.target_group_arn, Some(0));
        Ok(())
    }

    pub(super) async fn elb_list_target_health(&self, tg: &str) -> Result<Vec<TargetHealthRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT target_group_arn, target_id, port, state, reason, description, updated_ms FROM target_health \
             WHERE target_group_arn = $1",
        )
        .bind(tg)
        .fetch_all(&self.read)
        .await?;
        let mut out: Vec<TargetHealthRecord> = rows.iter().map(health).collect::<Result<_, _>>()?;
        out.sort_by_key(|h| (h.id, h.port));
        Ok(out)
    }

    pub(super) async fn elb_put_certificate(
        &self,
        cert: &CertificateRecord,
        key: &PrivateKeyPem,
        expected: Option<i64>,
    ) -> Result<Versioned<CertificateRecord>, StoreError> {
        let body = encode_body(cert)?;
        let done = match expected {
            None => {
                sqlx::query(
                    "INSERT INTO certificates (arn, version, body, private_key) VALUES ($1, 1, $2, $3) ON CONFLICT (arn) DO NOTHING",
                )
                .bind(&cert.arn)
                .bind(body)
                .bind(&key.0)
                .execute(&self.write)
                .await?
            }
            Some(v) => {
                sqlx::query(
                    "UPDATE certificates SET body = $3, private_key = $4, version = version + 1 WHERE arn = $1 AND version = $2",
                )
                .bind(&cert.arn)
                .bind(v)
                .bind(body)
                .bind(&key.0)
                .execute(&self.write)
                .await?
            }
        };
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        let version = expected.map_or(1, |v| v + 1);
        self.notices.send(RecordKind::Certificate, &cert.arn, Some(version));
        Ok(Versioned { version, value: cert.clone() })
    }

    pub(super) async fn elb_update_certificate(&self, cert: &CertificateRecord, expected: i64) -> Result<Versioned<CertificateRecord>, StoreError> {
        let done = sqlx::query("UPDATE certificates SET body = $3, version = version + 1 WHERE arn = $1 AND version = $2")
            .bind(&cert.arn)
            .bind(expected)
            .bind(encode_body(cert)?)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        self.notices.send(RecordKind::Certificate, &cert.arn, Some(expected + 1));
        Ok(Versioned { version: expected + 1, value: cert.clone() })
    }

    pub(super) async fn elb_get_certificate(&self, arn: &str) -> Result<Option<Versioned<CertificateRecord>>, StoreError> {
        let row = sqlx::query("SELECT version, body FROM certificates WHERE arn = $1").bind(arn).fetch_optional(&self.read).await?;
        row.as_ref().map(|r| versioned_as(r, decode_body)).transpose()
    }

    pub(super) async fn elb_certificate_key(&self, arn: &str) -> Result<Option<PrivateKeyPem>, StoreError> {
        let key: Option<String> =
            sqlx::query_scalar("SELECT private_key FROM certificates WHERE arn = $1").bind(arn).fetch_optional(&self.read).await?;
        Ok(key.map(PrivateKeyPem))
    }

    pub(super) async fn elb_list_certificates(&self) -> Result<Vec<Versioned<CertificateRecord>>, StoreError> {
        let c = self.dialect.bytewise();
        let rows = sqlx::query(&format!("SELECT version, body FROM certificates ORDER BY arn{c}")).fetch_all(&self.read).await?;
        rows.iter().map(|r| versioned_as(r, decode_body)).collect()
    }

    pub(super) async fn elb_delete_certificate(&self, arn: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM certificates WHERE arn = $1").bind(arn).execute(&self.write).await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            self.notices.send(RecordKind::Certificate, arn, None);
        }
        Ok(deleted)
    }
}
