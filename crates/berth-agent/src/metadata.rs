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
//!
//! It also answers `GET /v2/credentials/{id}`, the task-role credentials
//! endpoint, which tasks reach at `169.254.170.2:80` (see
//! [`crate::credentials`]).

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
use berth_model::task::Task;
use berth_runtime_api::{TaskId, TaskRuntime, Usage};

use crate::plane::NodeControlPlane;
use serde_json::{Value, json};

/// The port of the metadata endpoint on each gateway address.
pub const METADATA_PORT: u16 = 51679;

/// Each subnet's metadata endpoint serves at most 256 connections at once
/// (more wait in its backlog of 128), each head within 10 s.
const METADATA_LIMITS: crate::serve::EdgeLimits =
    crate::serve::EdgeLimits { header_read_timeout: std::time::Duration::from_secs(10), max_connections: 256 };

/// The metadata endpoint of one node.
#[derive(Clone)]
pub struct MetadataServer {
    inner: Arc<Inner>,
}

struct Inner {
    plane: Arc<dyn NodeControlPlane>,
    runtime: Arc<dyn TaskRuntime>,
    node_id: String,
    /// The node's key for task credentials ids.
    credentials_key: crate::credentials::EndpointKey,
    /// Task-role credentials issued, by task.
    credentials: crate::credentials::Cache,
    /// Gateway addresses listened on.
    listening: Mutex<HashSet<Ipv4Addr>>,
    /// Berth's API, served behind the metadata routes (see `with_api`).
    api: std::sync::OnceLock<Router>,
}

impl MetadataServer {
    pub fn new(
        plane: Arc<dyn NodeControlPlane>,
        runtime: Arc<dyn TaskRuntime>,
        node_id: String,
        credentials_key: crate::credentials::EndpointKey,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                plane,
                runtime,
                node_id,
                credentials_key,
                credentials: crate::credentials::Cache::default(),
                listening: Mutex::default(),
                api: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Also serves `api` (Berth's AWS API router) on each gateway, behind
    /// the metadata and credentials routes: an SDK in a task reaches
    /// Berth there ([`MetadataServer::api_endpoint`], given to containers
    /// as `AWS_ENDPOINT_URL`) and signs with its task role's credentials.
    /// Called before the first [`MetadataServer::listen`].
    pub fn with_api(self, api: Router) -> Self {
        // Set once, at construction.
        let _ = self.inner.api.set(api);
        self
    }

    /// `AWS_ENDPOINT_URL` for tasks behind `gateway`, if Berth's API is
    /// served there.
    pub fn api_endpoint(&self, gateway: Ipv4Addr) -> Option<String> {
        self.inner.api.get().map(|_| format!("http://{gateway}:{METADATA_PORT}"))
    }

    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` for the task: its
    /// credentials path, under an id only this node's key makes.
    pub fn credentials_uri(&self, task_arn: &str) -> String {
        crate::credentials::relative_uri(&self.inner.credentials_key.id(task_arn))
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
            .route("/v2/credentials/{id}", get(task_credentials))
            .with_state(self.clone());
        let app = match self.inner.api.get() {
            Some(api) => app.fallback_service(api.clone()),
            None => app,
        };
        tracing::info!(%addr, "task metadata endpoint");
        tokio::spawn(async move {
            // Tasks are not trusted to close their connections.
            crate::serve::serve(listener, app, METADATA_LIMITS, std::future::pending()).await;
        });
        Ok(())
    }

    /// The live task of this node whose address `peer` is, and which of its
    /// containers `id` (`TASKID-CONTAINER`) names.
    async fn caller(&self, peer: SocketAddr, id: &str) -> Result<(Task, String), Response> {
        let (task_id, container) = id.split_once('-').ok_or_else(|| not_found(id))?;
        let tasks = self.inner.plane.live_tasks(&self.inner.node_id).await.map_err(|e| internal(&e))?;
        let t = tasks.into_iter().map(|t| t.value).find(|t| t.id() == task_id).ok_or_else(|| not_found(id))?;
        if t.ip().map(std::net::IpAddr::V4) != Some(peer.ip()) {
            return Err((StatusCode::FORBIDDEN, "metadata of another task").into_response());
        }
        let known = t.containers.iter().any(|c| c.name == container);
        if known { Ok((t, container.to_owned())) } else { Err(not_found(id)) }
    }
}

/// The task-role credentials of the task at the caller's address, if `id`
/// is that task's; 404 for anything else (another task's id, a task
/// without a role), so nothing tells ids apart.
async fn task_credentials(
    State(s): State<MetadataServer>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    let none = || (StatusCode::NOT_FOUND, "no credentials here for this task").into_response();
    let tasks = match s.inner.plane.live_tasks(&s.inner.node_id).await {
        Ok(t) => t,
        Err(e) => return internal(&e),
    };
    let live: HashSet<String> = tasks.iter().map(|t| t.value.arn.to_string()).collect();
    s.inner.credentials.retain(&|arn| live.contains(arn));
    let Some(task) = tasks.into_iter().map(|t| t.value).find(|t| t.ip().map(std::net::IpAddr::V4) == Some(peer.ip())) else {
        return none();
    };
    let arn = task.arn.to_string();
    if !s.inner.credentials_key.matches(&arn, &id) {
        return none();
    }
    let definition = match s.inner.plane.task_definition(&task.definition_arn).await {
        Ok(d) => d,
        Err(e) => return internal(&e),
    };
    let Some(role) = crate::spec::task_role(definition.as_ref(), &task.overrides) else { return none() };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Some(c) = s.inner.credentials.get(&arn, &role, now) {
        return Json(crate::credentials::response_json(&c)).into_response();
    }
    match s.inner.plane.role_credentials(&role, task.id(), crate::credentials::SESSION_SECONDS).await {
        Ok(c) => {
            s.inner.credentials.put(&arn, c.clone());
            Json(crate::credentials::response_json(&c)).into_response()
        }
        Err(e) => {
            tracing::warn!(task = %arn, role = %role, error = %e, "task role credentials");
            let body = json!({"code": "AssumeRoleError", "message": e.to_string()});
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
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
    for c in &record.containers {
        let u = stats.iter().find(|(n, _)| *n == c.name).map(|(_, u)| *u).unwrap_or_default();
        out.insert(docker_id(&record, &c.name), stats_json(&record, &c.name, &u));
    }
    Json(Value::Object(out)).into_response()
}

async fn usage(s: &MetadataServer, task: &Task) -> Vec<(String, Usage)> {
    let Ok(id) = TaskId::new(task.id()) else { return Vec::new() };
    s.inner.runtime.stats(&id).await.map(|st| st.containers).unwrap_or_default()
}

fn docker_id(task: &Task, container: &str) -> String {
    format!("{}-{container}", task.id())
}

/// The Docker-stats shape the v4 `/stats` paths return (the members that
/// tools read: memory usage and limit, CPU usage, times).
fn stats_json(task: &Task, container: &str, u: &Usage) -> Value {
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let limit = u64::from(task.size.memory) * 1024 * 1024;
    json!({
        "read": now,
        "name": container,
        "id": docker_id(task, container),
        "num_procs": 0,
        "cpu_stats": {"cpu_usage": {"total_usage": u.cpu_ns}, "online_cpus": task.size.cpu.div_ceil(1024).max(1)},
        "memory_stats": {"usage": u.memory_bytes, "max_usage": u.memory_peak_bytes.unwrap_or(u.memory_bytes), "limit": limit},
    })
}

fn container_json(task: &Task, name: &str) -> Value {
    let c = task.containers.iter().find(|c| c.name == name);
    let eni = task.network.as_ref().map(|n| &n.eni);
    let ip = task.ip().map(|ip| ip.to_string()).unwrap_or_default();
    let network = json!({
        "NetworkMode": "awsvpc",
        "IPv4Addresses": [ip],
        "AttachmentIndex": 0,
        "MACAddress": eni.and_then(|e| e.mac.clone()).unwrap_or_default(),
        "PrivateDNSName": task.ip().map(|ip| model::private_dns_name(ip, &task.arn.account.region)).unwrap_or_default(),
    });
    json!({
        "DockerId": docker_id(task, name),
        "Name": name,
        "DockerName": name,
        "Image": c.map(|c| c.image.clone()).unwrap_or_default(),
        "ImageID": "",
        "Labels": {
            "com.amazonaws.ecs.cluster": task.cluster_arn().to_string(),
            "com.amazonaws.ecs.container-name": name,
            "com.amazonaws.ecs.task-arn": task.arn.to_string(),
            "com.amazonaws.ecs.task-definition-family": task.definition_arn.family,
            "com.amazonaws.ecs.task-definition-version": task.definition_arn.revision.to_string(),
        },
        "DesiredStatus": task.desired().as_str(),
        "KnownStatus": c.map_or("", |c| c.status().as_str()),
        "Limits": {"CPU": c.map_or(0, |c| c.cpu)},
        "StartedAt": epoch_rfc3339(task.times.started_at),
        "Type": "NORMAL",
        "ContainerARN": c.map(|c| c.arn.clone()).unwrap_or_default(),
        "Networks": [network],
    })
}

fn task_json(task: &Task) -> Value {
    let containers: Vec<Value> = task.containers.iter().map(|c| container_json(task, &c.name)).collect();
    json!({
        "Cluster": task.cluster_arn().to_string(),
        "TaskARN": task.arn.to_string(),
        "Family": task.definition_arn.family,
        "Revision": task.definition_arn.revision.to_string(),
        "DesiredStatus": task.desired().as_str(),
        "KnownStatus": task.status().as_str(),
        "Limits": {"CPU": f64::from(task.size.cpu) / 1024.0, "Memory": task.size.memory},
        "PullStartedAt": epoch_rfc3339(task.times.pull_started_at),
        "PullStoppedAt": epoch_rfc3339(task.times.pull_stopped_at),
        "AvailabilityZone": task.availability_zone.clone().unwrap_or_default(),
        "LaunchType": "FARGATE",
        "Containers": containers,
        "ClockDrift": {"ClockErrorBound": 0.5, "ReferenceTimestamp": epoch_rfc3339(Some(now())), "ClockSynchronizationStatus": "SYNCHRONIZED"},
    })
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
    fn the_uri_names_the_task_and_container() {
        assert_eq!(MetadataServer::uri(Ipv4Addr::new(10, 89, 0, 1), "abc", "main"), "http://10.89.0.1:51679/v4/abc-main");
    }
}
