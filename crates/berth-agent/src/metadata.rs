//! The task metadata endpoint, version 4, as on Fargate: each container
//! gets `ECS_CONTAINER_METADATA_URI_V4` (and `ECS_CONTAINER_METADATA_URI`)
//! and reads its own container and task metadata, and their stats, from it:
//!
//! ```text
//! GET ${ECS_CONTAINER_METADATA_URI_V4}             this container
//! GET ${ECS_CONTAINER_METADATA_URI_V4}/task        the task and its containers
//! GET ${ECS_CONTAINER_METADATA_URI_V4}/stats       this container's usage (Docker stats shape)
//! GET ${ECS_CONTAINER_METADATA_URI_V4}/task/stats  every container's usage, by DockerId
//! ```
//!
//! The server listens on each subnet's gateway address (the host's side of
//! the bridge) at [`METADATA_PORT`]; the firewall lets tasks reach exactly
//! that. A request is answered only for the task whose address it comes
//! from, so a task cannot read another's metadata.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_model::network as model;
use berth_model::records::TaskRecord;
use berth_runtime_api::{TaskId, TaskRuntime, Usage};
use berth_store::{Page, Store, TaskFilter};
use serde_json::{Value, json};

/// The port of the metadata endpoint on each gateway address.
pub const METADATA_PORT: u16 = 51679;

/// The metadata endpoint of one node.
#[derive(Clone)]
pub struct MetadataServer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    runtime: Arc<dyn TaskRuntime>,
    node_id: String,
    /// Gateway addresses listened on.
    listening: Mutex<HashSet<Ipv4Addr>>,
}

impl MetadataServer {
    pub fn new(store: Arc<dyn Store>, runtime: Arc<dyn TaskRuntime>, node_id: String) -> Self {
        Self { inner: Arc::new(Inner { store, runtime, node_id, listening: Mutex::default() }) }
    }

    /// The URI a container of `task_id` named `container` reads its metadata at.
    pub fn uri(gateway: Ipv4Addr, task_id: &str, container: &str) -> String {
        format!("http://{gateway}:{METADATA_PORT}/v4/{task_id}-{container}")
    }

    /// Listens on `gateway` (once; later calls return at once). The socket
    /// is bound with `IP_FREEBIND`, so it stays valid while the bridge
    /// holding the address comes and goes.
    pub fn listen(&self, gateway: Ipv4Addr) -> std::io::Result<()> {
        {
            let mut listening = self.inner.listening.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !listening.insert(gateway) {
                return Ok(());
            }
        }
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        socket.set_freebind_v4(true)?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        let addr = SocketAddr::from((gateway, METADATA_PORT));
        if let Err(e) = socket.bind(&addr.into()).and_then(|()| socket.listen(128)) {
            self.inner.listening.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&gateway);
            return Err(e);
        }
        let listener = tokio::net::TcpListener::from_std(std::net::TcpListener::from(socket))?;
        let app = Router::new()
            .route("/v4/{id}", get(container))
            .route("/v4/{id}/task", get(task))
            .route("/v4/{id}/stats", get(container_stats))
            .route("/v4/{id}/task/stats", get(task_stats))
            .with_state(self.clone());
        tracing::info!(%addr, "task metadata endpoint");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
                tracing::error!(%addr, error = %e, "task metadata endpoint stopped");
            }
        });
        Ok(())
    }

    /// The live task of this node whose address `peer` is, and which of its
    /// containers `id` (`TASKID-CONTAINER`) names.
    async fn caller(&self, peer: SocketAddr, id: &str) -> Result<(TaskRecord, String), Response> {
        let (task_id, container) = id.split_once('-').ok_or_else(|| not_found(id))?;
        let filter = TaskFilter { node_id: Some(self.inner.node_id.clone()), live_only: true, ..Default::default() };
        let mut after = None;
        loop {
            let page = self
                .inner
                .store
                .list_tasks(&filter, Page { after: after.clone(), limit: 500 })
                .await
                .map_err(|e| internal(&e))?;
            let Some(last) = page.last() else { return Err(not_found(id)) };
            after = last.value.task.task_arn.clone();
            for t in page {
                let arn = t.value.task.task_arn.as_deref().unwrap_or_default();
                if !arn.ends_with(&format!("/{task_id}")) {
                    continue;
                }
                let ip = model::eni_detail(&t.value.task, "privateIPv4Address");
                if ip != Some(peer.ip().to_string().as_str()) {
                    return Err((StatusCode::FORBIDDEN, "metadata of another task").into_response());
                }
                let known = t.value.task.containers.iter().flatten().any(|c| c.name.as_deref() == Some(container));
                return if known { Ok((t.value, container.to_owned())) } else { Err(not_found(id)) };
            }
        }
    }
}

async fn container(
    State(s): State<MetadataServer>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    match s.caller(peer, &id).await {
        Ok((record, name)) => Json(container_json(&record, &name)).into_response(),
        Err(r) => r,
    }
}

async fn task(
    State(s): State<MetadataServer>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    match s.caller(peer, &id).await {
        Ok((record, _)) => Json(task_json(&record)).into_response(),
        Err(r) => r,
    }
}

async fn container_stats(
    State(s): State<MetadataServer>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    let (record, name) = match s.caller(peer, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let stats = usage(&s, &record).await;
    let usage = stats.iter().find(|(n, _)| *n == name).map(|(_, u)| *u).unwrap_or_default();
    Json(stats_json(&record, &name, &usage)).into_response()
}

async fn task_stats(
    State(s): State<MetadataServer>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    let (record, _) = match s.caller(peer, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let stats = usage(&s, &record).await;
    let mut out = serde_json::Map::new();
    for c in record.task.containers.iter().flatten() {
        let name = c.name.clone().unwrap_or_default();
        let u = stats.iter().find(|(n, _)| *n == name).map(|(_, u)| *u).unwrap_or_default();
        out.insert(docker_id(&record, &name), stats_json(&record, &name, &u));
    }
    Json(Value::Object(out)).into_response()
}

async fn usage(s: &MetadataServer, record: &TaskRecord) -> Vec<(String, Usage)> {
    let arn = record.task.task_arn.as_deref().unwrap_or_default();
    let Ok(id) = TaskId::new(arn.rsplit('/').next().unwrap_or_default()) else { return Vec::new() };
    s.inner.runtime.stats(&id).await.map(|st| st.containers).unwrap_or_default()
}

fn docker_id(record: &TaskRecord, container: &str) -> String {
    let arn = record.task.task_arn.as_deref().unwrap_or_default();
    format!("{}-{container}", arn.rsplit('/').next().unwrap_or_default())
}

/// The Docker-stats shape the v4 `/stats` paths return (the members that
/// tools read: memory usage and limit, CPU usage, times).
fn stats_json(record: &TaskRecord, container: &str, u: &Usage) -> Value {
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let limit = u64::from(record.memory) * 1024 * 1024;
    json!({
        "read": now,
        "name": container,
        "id": docker_id(record, container),
        "num_procs": 0,
        "cpu_stats": {"cpu_usage": {"total_usage": u.cpu_ns}, "online_cpus": record.cpu.div_ceil(1024).max(1)},
        "memory_stats": {"usage": u.memory_bytes, "max_usage": u.memory_peak_bytes.unwrap_or(u.memory_bytes), "limit": limit},
    })
}

fn container_json(record: &TaskRecord, name: &str) -> Value {
    let c = record.task.containers.iter().flatten().find(|c| c.name.as_deref() == Some(name));
    let ip = model::eni_detail(&record.task, "privateIPv4Address").unwrap_or_default();
    let network = json!({
        "NetworkMode": "awsvpc",
        "IPv4Addresses": [ip],
        "AttachmentIndex": 0,
        "MACAddress": model::eni_detail(&record.task, "macAddress").unwrap_or_default(),
        "PrivateDNSName": model::eni_detail(&record.task, "privateDnsName").unwrap_or_default(),
    });
    let status = c.and_then(|c| c.last_status.clone()).unwrap_or_default();
    json!({
        "DockerId": docker_id(record, name),
        "Name": name,
        "DockerName": name,
        "Image": c.and_then(|c| c.image.clone()).unwrap_or_default(),
        "ImageID": c.and_then(|c| c.image_digest.clone()).unwrap_or_default(),
        "Labels": {
            "com.amazonaws.ecs.cluster": record.task.cluster_arn.clone().unwrap_or_default(),
            "com.amazonaws.ecs.container-name": name,
            "com.amazonaws.ecs.task-arn": record.task.task_arn.clone().unwrap_or_default(),
            "com.amazonaws.ecs.task-definition-family": family(record).0,
            "com.amazonaws.ecs.task-definition-version": family(record).1,
        },
        "DesiredStatus": record.task.desired_status.clone().unwrap_or_default(),
        "KnownStatus": status,
        "Limits": {"CPU": c.and_then(|c| c.cpu.as_deref()).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)},
        "StartedAt": epoch_rfc3339(record.task.started_at),
        "Type": "NORMAL",
        "ContainerARN": c.and_then(|c| c.container_arn.clone()).unwrap_or_default(),
        "Networks": [network],
    })
}

fn task_json(record: &TaskRecord) -> Value {
    let t = &record.task;
    let (family, revision) = family(record);
    let containers: Vec<Value> =
        t.containers.iter().flatten().filter_map(|c| c.name.as_deref()).map(|n| container_json(record, n)).collect();
    json!({
        "Cluster": t.cluster_arn.clone().unwrap_or_default(),
        "TaskARN": t.task_arn.clone().unwrap_or_default(),
        "Family": family,
        "Revision": revision,
        "DesiredStatus": t.desired_status.clone().unwrap_or_default(),
        "KnownStatus": t.last_status.clone().unwrap_or_default(),
        "Limits": {"CPU": f64::from(record.cpu) / 1024.0, "Memory": record.memory},
        "PullStartedAt": epoch_rfc3339(t.pull_started_at),
        "PullStoppedAt": epoch_rfc3339(t.pull_stopped_at),
        "AvailabilityZone": t.availability_zone.clone().unwrap_or_default(),
        "LaunchType": "FARGATE",
        "Containers": containers,
        "ClockDrift": {"ClockErrorBound": 0.5, "ReferenceTimestamp": epoch_rfc3339(Some(now())), "ClockSynchronizationStatus": "SYNCHRONIZED"},
    })
}

/// The task definition family and revision from the task's definition ARN.
fn family(record: &TaskRecord) -> (String, String) {
    let arn = record.task.task_definition_arn.as_deref().unwrap_or_default();
    let tail = arn.rsplit_once("task-definition/").map_or(arn, |(_, t)| t);
    let (f, r) = tail.rsplit_once(':').unwrap_or((tail, ""));
    (f.to_owned(), r.to_owned())
}

fn epoch_rfc3339(secs: Option<f64>) -> Value {
    let Some(secs) = secs else { return Value::Null };
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128) else { return Value::Null };
    t.format(&time::format_description::well_known::Rfc3339).map_or(Value::Null, Value::String)
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn not_found(id: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("no container {id} here")).into_response()
}

fn internal(e: &berth_store::StoreError) -> Response {
    tracing::warn!(error = %e, "task metadata");
    (StatusCode::INTERNAL_SERVER_ERROR, "store unavailable").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_and_revision_from_the_arn() {
        let mut r = TaskRecord::default();
        r.task.task_definition_arn = Some("arn:aws:ecs:us-east-1:000000000000:task-definition/web:7".into());
        assert_eq!(family(&r), ("web".into(), "7".into()));
        assert_eq!(MetadataServer::uri(Ipv4Addr::new(10, 89, 0, 1), "abc", "main"), "http://10.89.0.1:51679/v4/abc-main");
    }
}
