//! The HTTP edge: reads a request once, authenticates it, parses the
//! operation and body into a typed action, and writes the response.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use berth_model::Account;
use berth_store::{LogStore, Store, Stores};
use berth_wire::{berth, ecs, logs};
use tracing::Instrument as _;

use crate::ApiError;
use crate::metrics::Metrics;
use crate::sigv4;

/// The largest request body Berth reads (RegisterTaskDefinition's own
/// limit of 64 KiB is checked on top of this).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The largest CloudWatch Logs request body. A full PutLogEvents batch is
/// 1 MiB of messages as CloudWatch counts them; as JSON, with every
/// control character escaped (`\u0001` is 6 bytes), it can be six times that.
pub const DEFAULT_MAX_LOGS_BODY_BYTES: usize = 8 * 1024 * 1024;

const JSON_1_1: &str = "application/x-amz-json-1.1";

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub account: Account,
    pub max_body_bytes: usize,
    /// The same for CloudWatch Logs requests (PutLogEvents is bigger).
    pub max_logs_body_bytes: usize,
    /// The largest image tarball `berth image import|load` may upload.
    pub max_upload_bytes: u64,
}

impl ApiConfig {
    pub fn new(account: Account) -> Self {
        Self {
            account,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_logs_body_bytes: DEFAULT_MAX_LOGS_BODY_BYTES,
            max_upload_bytes: crate::berth::uploads::DEFAULT_MAX_UPLOAD_BYTES,
        }
    }
}

/// Shared state of the API: the store (records for ECS and Berth's own
/// operations, logs for CloudWatch Logs), the account it answers as, and
/// the image cache of the node it runs with (if any).
#[derive(Clone)]
pub struct Api {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) logs: Arc<dyn LogStore>,
    pub(crate) config: Arc<ApiConfig>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) images: Option<Arc<berth_image::ImageStore>>,
}

impl Api {
    pub fn new(stores: Stores, config: ApiConfig) -> Self {
        Self {
            store: stores.records,
            logs: stores.logs,
            config: Arc::new(config),
            metrics: Arc::default(),
            images: None,
        }
    }

    /// Serves Berth's image operations from `images` (the local node's cache).
    pub fn with_images(mut self, images: Arc<berth_image::ImageStore>) -> Self {
        self.images = Some(images);
        self
    }

    pub(crate) fn account(&self) -> &Account {
        &self.config.account
    }
}

/// The API's routes: `POST /` (AWS JSON 1.1), `GET /healthz`, `GET /metrics`.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/", post(aws_json))
        .route(berth::IMPORT_PATH, put(crate::berth::uploads::import))
        .route(berth::LOAD_PATH, put(crate::berth::uploads::load))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::UnknownOperation("No such endpoint: Berth serves AWS JSON 1.1 at POST /.".into()) })
        .with_state(api)
}

async fn metrics(State(api): State<Api>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], api.metrics.render()).into_response()
}

/// Which service a `X-Amz-Target` addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Ecs,
    Logs,
    Berth,
}

impl Service {
    /// The SigV4 signing name of the service.
    fn signing_name(self) -> &'static str {
        match self {
            Self::Ecs => "ecs",
            Self::Logs => "logs",
            Self::Berth => berth::SIGNING_NAME,
        }
    }
}

fn split_target(target: &str) -> Result<(Service, &str), ApiError> {
    match target.split_once('.') {
        Some((ecs::TARGET_PREFIX, op)) => Ok((Service::Ecs, op)),
        Some((logs::TARGET_PREFIX, op)) => Ok((Service::Logs, op)),
        Some((berth::TARGET_PREFIX, op)) => Ok((Service::Berth, op)),
        _ => Err(ApiError::UnknownOperation(format!("Unknown operation target: {target}"))),
    }
}

async fn aws_json(State(api): State<Api>, req: Request) -> Response {
    let request_id = uuid_v4();
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let op_name = target.rsplit('.').next().unwrap_or("").to_owned();
    let span = tracing::info_span!(
        "api",
        action = %op_name,
        request_id = %request_id,
        access_key_id = tracing::field::Empty
    );
    let started = Instant::now();
    let result = handle(&api, &target, req).instrument(span.clone()).await;
    let _enter = span.enter();
    let mut resp = match result {
        Ok(body) => {
            api.metrics.record(&op_name, "ok");
            tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "ok");
            let mut r = (StatusCode::OK, body).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_1_1));
            r
        }
        Err(e) => {
            api.metrics.record(&op_name, e.aws_type());
            tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, error = e.aws_type(), "failed");
            e.into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

async fn handle(api: &Api, target: &str, req: Request) -> Result<Vec<u8>, ApiError> {
    let (parts, body) = req.into_parts();
    let limit = match split_target(target) {
        Ok((Service::Logs, _)) => api.config.max_logs_body_bytes,
        _ => api.config.max_body_bytes,
    };
    let body = read_body(body, limit).await?;
    let signed = sigv4::parse(&parts)?;
    let (service, op) = split_target(target)?;
    authenticate(api, &signed, &parts, &body, service).await?;
    tracing::Span::current().record("access_key_id", signed.access_key_id.as_str());
    let json: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &body };
    match service {
        Service::Ecs => {
            let action = ecs::Action::parse(op, json)
                .map_err(parse_error)?
                .ok_or_else(|| ApiError::UnknownOperation(format!("Unknown operation {op}")))?;
            let call = crate::ecs::Call { api, body_len: body.len() };
            let value = crate::ecs::dispatch(&call, action).await?;
            Ok(serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec()))
        }
        Service::Logs => {
            let action = logs::Action::parse(op, json)
                .map_err(parse_error)?
                .ok_or_else(|| ApiError::UnknownOperation(format!("Unknown operation {op}")))?;
            let value = crate::logs::dispatch(&crate::logs::Call { api }, action).await?;
            Ok(serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec()))
        }
        Service::Berth => {
            let action = berth::Action::parse(op, json)
                .map_err(parse_error)?
                .ok_or_else(|| ApiError::UnknownOperation(format!("Unknown operation {op}")))?;
            let value = crate::berth::dispatch(api, action).await?;
            Ok(serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec()))
        }
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(format!("Request body is larger than the limit of {limit} bytes.")))
}

async fn authenticate(
    api: &Api,
    signed: &sigv4::SignedRequest,
    parts: &axum::http::request::Parts,
    body: &[u8],
    service: Service,
) -> Result<(), ApiError> {
    let key = api
        .store
        .get_access_key(&signed.access_key_id)
        .await?
        .ok_or(sigv4::AuthError::UnrecognizedClient)?;
    let scope = sigv4::Scope { region: &api.config.account.region, service: service.signing_name() };
    sigv4::verify(signed, parts, body, &key.secret_access_key, &scope, time::OffsetDateTime::now_utc())?;
    Ok(())
}

/// Maps a body that does not fit the operation's input shape to AWS's
/// errors: malformed JSON and wrong member types are a
/// SerializationException; a missing required member or a value outside an
/// enumeration is an InvalidParameterException naming it.
fn parse_error(e: serde_json::Error) -> ApiError {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    if e.is_data() && (msg.starts_with("missing field") || msg.starts_with("unknown variant")) {
        ApiError::invalid_parameter(msg.replace('`', "'"))
    } else {
        ApiError::Serialization(format!("The request body could not be read: {}", msg.replace('`', "'")))
    }
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}
