//! The HTTP edge: tells a request's protocol and service by their marks
//! ([`route`]), reads it once, authenticates it (SigV4, the service's
//! signing name), parses the operation and body into the service's typed
//! action, and writes the answer or the error in the protocol the request
//! came in ([`Protocol`]).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use berth_model::Account;
use berth_store::{LogStore, Store, Stores};
use berth_wire::codec::{QueryInput, RestError, RestRequest, RestResponse, RestRoute, rest};
use berth_wire::{acm, berth, ce, cloudwatch, ec2, ecs, elbv2, iam, logs, scheduler, secretsmanager, servicediscovery, ssm, sts};
use tracing::Instrument as _;

use crate::ApiError;
use crate::authz::{self, GlobalKeys};
use crate::caller::{Caller, IamRequest};
use crate::metrics::Metrics;
use crate::protocol::{JSON_1_0, Protocol, RPC_V2_CBOR, SMITHY_PROTOCOL};
use crate::sigv4;

/// The largest request body Berth reads (RegisterTaskDefinition's own
/// limit of 64 KiB is checked on top of this).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The largest CloudWatch Logs request body. A full PutLogEvents batch is
/// 1 MiB of messages as CloudWatch counts them; as JSON, with every
/// control character escaped (`\u0001` is 6 bytes), it can be six times that.
pub const DEFAULT_MAX_LOGS_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How long a request's whole body may take to arrive (image uploads:
/// the longest pause between two chunks).
pub const DEFAULT_BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub account: Account,
    pub max_body_bytes: usize,
    /// The same for CloudWatch Logs requests (PutLogEvents is bigger).
    pub max_logs_body_bytes: usize,
    /// The largest image tarball `berth image import|load` may upload.
    pub max_upload_bytes: u64,
    /// How long a request body may take to arrive; for image uploads, the
    /// longest pause between chunks. Past it: RequestTimeout(Exception).
    pub body_read_timeout: std::time::Duration,
    /// The shortest STS session AssumeRole and GetSessionToken give (STS:
    /// 900 s). Only tests lower it, to see a session expire.
    pub min_session_seconds: i64,
    /// What Fargate usage costs (`berth cost`, Cost Explorer).
    pub prices: berth_model::metering::PriceTable,
}

impl ApiConfig {
    pub fn new(account: Account) -> Self {
        Self {
            account,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_logs_body_bytes: DEFAULT_MAX_LOGS_BODY_BYTES,
            max_upload_bytes: crate::berth::uploads::DEFAULT_MAX_UPLOAD_BYTES,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            min_session_seconds: berth_model::iam::MIN_SESSION_SECONDS,
            prices: berth_model::metering::PriceTable::default(),
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
    /// Seals and opens SecureString parameters and secret values.
    pub(crate) cipher: Arc<berth_secrets::Cipher>,
    /// Tasks' latest usage, rendered at `GET /metrics` beside the counters.
    pub(crate) usage: Option<Arc<berth_model::usage::UsageBoard>>,
}

impl Api {
    pub fn new(stores: Stores, config: ApiConfig) -> Self {
        Self {
            store: stores.records,
            logs: stores.logs,
            config: Arc::new(config),
            metrics: Arc::default(),
            images: None,
            cipher: Arc::new(berth_secrets::Cipher::ephemeral()),
            usage: None,
        }
    }

    /// Renders the node agent's usage gauges (per task, container and
    /// service) at `GET /metrics`.
    pub fn with_usage(mut self, board: Arc<berth_model::usage::UsageBoard>) -> Self {
        self.usage = Some(board);
        self
    }

    /// Seals secrets under `cipher` (the data dir's key); without it, a
    /// key that lives as long as this value.
    pub fn with_cipher(mut self, cipher: Arc<berth_secrets::Cipher>) -> Self {
        self.cipher = cipher;
        self
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

/// The API's routes: every AWS protocol Berth speaks at `POST /` (AWS
/// JSON 1.0/1.1 by `X-Amz-Target`, AWS Query and EC2 by a form body) and
/// `GET /?Action=…` (Query), Smithy RPC v2 CBOR at
/// `POST /service/NAME/operation/OP`, REST-JSON at its services' own
/// routes (every other signed request); Berth's image uploads;
/// `GET /healthz`, `GET /metrics`. Another method on any of these paths
/// goes to the AWS edge too (which answers it with an AWS error), not to
/// axum's empty 405.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/", post(aws).get(aws).fallback(aws))
        .route("/service/{service}/operation/{operation}", post(aws).fallback(aws))
        .route(berth::IMPORT_PATH, put(crate::berth::uploads::import).fallback(aws))
        .route(berth::LOAD_PATH, put(crate::berth::uploads::load).fallback(aws))
        .route("/healthz", get(|| async { "ok\n" }).fallback(aws))
        .route("/metrics", get(metrics).fallback(aws))
        .fallback(aws)
        .with_state(api)
}

async fn metrics(State(api): State<Api>) -> Response {
    let mut text = api.metrics.render();
    if let Some(board) = &api.usage {
        text.push_str(&board.render());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The services Berth serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Ecs,
    Logs,
    Berth,
    Ec2,
    Sts,
    CloudWatch,
    Scheduler,
    Elbv2,
    Acm,
    CloudMap,
    Iam,
    Ssm,
    SecretsManager,
    CostExplorer,
}

impl Service {
    const ALL: [Self; 14] = [
        Self::Ecs,
        Self::Logs,
        Self::Berth,
        Self::Ec2,
        Self::Sts,
        Self::CloudWatch,
        Self::Scheduler,
        Self::Elbv2,
        Self::Acm,
        Self::CloudMap,
        Self::Iam,
        Self::Ssm,
        Self::SecretsManager,
        Self::CostExplorer,
    ];

    /// The SigV4 signing name of the service (from its model).
    fn signing_name(self) -> &'static str {
        match self {
            Self::Ecs => "ecs",
            Self::Logs => "logs",
            Self::Berth => berth::SIGNING_NAME,
            Self::Ec2 => ec2::SIGNING_NAME,
            Self::Sts => sts::SIGNING_NAME,
            Self::CloudWatch => cloudwatch::SIGNING_NAME,
            Self::Scheduler => scheduler::SIGNING_NAME,
            Self::Elbv2 => elbv2::SIGNING_NAME,
            // The model's signing name (its generated module, JSON only, has no constant).
            Self::Acm => "acm",
            Self::CloudMap => crate::servicediscovery::SIGNING_NAME,
            Self::Iam => iam::SIGNING_NAME,
            Self::Ssm => "ssm",
            Self::SecretsManager => "secretsmanager",
            Self::CostExplorer => "ce",
        }
    }

    /// Its `X-Amz-Target` prefix, if it speaks AWS JSON (also the NAME of
    /// its Smithy RPC v2 CBOR path).
    fn target_prefix(self) -> Option<&'static str> {
        match self {
            Self::Ecs => Some(ecs::TARGET_PREFIX),
            Self::Logs => Some(logs::TARGET_PREFIX),
            Self::Berth => Some(berth::TARGET_PREFIX),
            Self::CloudWatch => Some(cloudwatch::TARGET_PREFIX),
            Self::Acm => Some(acm::TARGET_PREFIX),
            Self::CloudMap => Some(servicediscovery::TARGET_PREFIX),
            Self::Ssm => Some(ssm::TARGET_PREFIX),
            Self::SecretsManager => Some(secretsmanager::TARGET_PREFIX),
            Self::CostExplorer => Some(ce::TARGET_PREFIX),
            Self::Ec2 | Self::Sts | Self::Scheduler | Self::Elbv2 | Self::Iam => None,
        }
    }

    /// Its form-encoded protocol, if it has one.
    fn form_protocol(self) -> Option<Protocol> {
        match self {
            Self::Ec2 => Some(Protocol::Ec2),
            Self::Sts | Self::CloudWatch | Self::Elbv2 | Self::Iam => Some(Protocol::Query),
            _ => None,
        }
    }

    /// Its REST-JSON routes and error shapes, if it speaks REST-JSON.
    fn rest(self) -> Option<(&'static [RestRoute], Protocol)> {
        match self {
            Self::Scheduler => Some((scheduler::ROUTES, Protocol::RestJson { errors: scheduler::ERRORS })),
            _ => None,
        }
    }

    fn speaks_cbor(self) -> bool {
        self == Self::CloudWatch
    }

    /// Whether the model is `awsQueryCompatible`: its JSON and CBOR errors
    /// also carry the Query error code.
    fn query_compatible(self) -> bool {
        self == Self::CloudWatch
    }

    fn served() -> String {
        Self::ALL.iter().map(|s| s.signing_name()).collect::<Vec<_>>().join(", ")
    }
}

/// Where a request goes, read from its protocol's marks before its body.
struct Route {
    protocol: Protocol,
    service: Service,
    /// The operation, when the marks name it (JSON, CBOR, REST); a Query
    /// request names it in its body.
    operation: Option<String>,
    /// A REST route's labels, decoded.
    labels: std::collections::BTreeMap<String, String>,
}

/// What a request outside the AWS protocols' marks gets.
const NO_SUCH_ENDPOINT: &str = "No such endpoint: Berth serves the AWS protocols at POST / (JSON, Query, EC2), \
     POST /service/NAME/operation/OP (Smithy RPC v2 CBOR) and the REST routes of the REST-JSON services it serves \
     (signed for that service).";

/// Reads the protocol's marks: the CBOR path, `X-Amz-Target`, or else
/// the SigV4 credential scope's service: a REST-JSON service's route
/// table (its operation, or a 404 naming the method and path), or a form
/// at `/` (AWS Query, EC2). A service Berth does not serve is an error in
/// the protocol it came in.
fn route(parts: &axum::http::request::Parts) -> Result<Route, (Protocol, ApiError)> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let path = parts.uri.path();
    if let Some(rest) = path.strip_prefix("/service/") {
        let protocol = Protocol::Cbor { query_compatible: false };
        let Some((name, op)) = rest.split_once("/operation/").filter(|(n, o)| !n.is_empty() && !o.contains('/')) else {
            return Err((protocol, ApiError::UnknownOperation(format!("Not a Smithy RPC v2 CBOR operation path: {path}"))));
        };
        if header(SMITHY_PROTOCOL) != Some(RPC_V2_CBOR) {
            return Err((
                protocol,
                ApiError::Serialization(format!("A request to {path} must carry the header smithy-protocol: rpc-v2-cbor.")),
            ));
        }
        let Some(service) = Service::ALL.into_iter().find(|s| s.speaks_cbor() && s.target_prefix() == Some(name)) else {
            return Err((
                protocol,
                ApiError::UnknownService(format!(
                    "Berth does not serve the Smithy service '{name}' over RPC v2 CBOR (it serves: {}).",
                    Service::served()
                )),
            ));
        };
        return Ok(Route {
            protocol: Protocol::Cbor { query_compatible: service.query_compatible() },
            service,
            operation: Some(op.to_owned()),
            labels: Default::default(),
        });
    }
    let content_type = header(header::CONTENT_TYPE.as_str()).unwrap_or("");
    let target = header("x-amz-target");
    if target.is_some() || content_type.starts_with("application/x-amz-json") {
        let minor = if content_type.starts_with(JSON_1_0) { 0 } else { 1 };
        let target = target.unwrap_or("");
        let found = target.split_once('.').and_then(|(prefix, op)| {
            Service::ALL.into_iter().find(|s| s.target_prefix() == Some(prefix)).map(|s| (s, op))
        });
        let Some((service, op)) = found else {
            let protocol = Protocol::Json { minor, query_compatible: false };
            let prefix = target.split('.').next().unwrap_or("");
            return Err((
                protocol,
                ApiError::UnknownService(format!(
                    "Unknown operation target: {target}. Berth does not serve the service '{prefix}' \
                     (it serves: {}).",
                    Service::served()
                )),
            ));
        };
        return Ok(Route {
            protocol: Protocol::Json { minor, query_compatible: service.query_compatible() },
            service,
            operation: Some(op.to_owned()),
            labels: Default::default(),
        });
    }
    // A form (AWS Query or EC2) or a REST route, for the service the
    // signature is scoped to.
    let root = path == "/";
    let no_endpoint = || (Protocol::Json { minor: 1, query_compatible: false }, ApiError::UnknownOperation(NO_SUCH_ENDPOINT.into()));
    let signed = match sigv4::parse(parts) {
        Ok(s) => s,
        Err(_) if !root => return Err(no_endpoint()),
        Err(e) => return Err((Protocol::Query, e.into())),
    };
    let name = signed.credential_scope.service.as_str();
    let found = Service::ALL.into_iter().find(|s| s.signing_name() == name);
    if let Some((service, (routes, protocol))) = found.and_then(|s| s.rest().map(|r| (s, r))) {
        let method = parts.method.as_str();
        let Some((matched, labels)) = rest::match_route(routes, method, path, parts.uri.query().unwrap_or("")) else {
            return Err((
                protocol,
                ApiError::UnknownOperation(format!("No operation of the {name} API matches {method} {path}.")),
            ));
        };
        return Ok(Route { protocol, service, operation: Some(matched.operation.to_owned()), labels });
    }
    if !root {
        if found.is_none() {
            return Err((
                Protocol::RestJson { errors: &[] },
                ApiError::UnknownService(format!(
                    "Berth does not serve the AWS service '{name}' (the SigV4 credential scope's); it serves: {}.",
                    Service::served()
                )),
            ));
        }
        return Err(no_endpoint());
    }
    let Some((service, protocol)) =
        Service::ALL.into_iter().find(|s| s.signing_name() == name).and_then(|s| s.form_protocol().map(|p| (s, p)))
    else {
        return Err((
            Protocol::Query,
            ApiError::UnknownService(format!(
                "Berth does not serve the AWS service '{name}' (the SigV4 credential scope's) over AWS Query; \
                 it serves: {}.",
                Service::served()
            )),
        ));
    };
    Ok(Route { protocol, service, operation: None, labels: Default::default() })
}

async fn aws(State(api): State<Api>, req: Request) -> Response {
    let request_id = uuid_v4();
    let span = tracing::info_span!(
        "api",
        service = tracing::field::Empty,
        action = tracing::field::Empty,
        request_id = %request_id,
        access_key_id = tracing::field::Empty
    );
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let mut op_name = String::new();
    let (protocol, result) = match route(&parts) {
        Err((protocol, e)) => (protocol, Err(e)),
        Ok(route) => {
            let protocol = route.protocol;
            (protocol, handle(&api, route, &request_id, parts, body, &mut op_name).instrument(span.clone()).await)
        }
    };
    let _enter = span.enter();
    let mut resp = match result {
        Ok(answer) => {
            api.metrics.record(&op_name, "ok");
            tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "ok");
            match answer {
                Answer::Body(body) => protocol.ok(body),
                Answer::Rest(rest) => Protocol::rest_ok(rest),
            }
        }
        Err(e) => {
            let code = protocol.code(&e);
            api.metrics.record(&op_name, code);
            tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, error = code, protocol = protocol.name(), "failed");
            protocol.error(&e, &request_id)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

fn record_action(name: &mut String, service: Service, op: &str) {
    tracing::Span::current().record("service", service.signing_name());
    tracing::Span::current().record("action", op);
    op.clone_into(name);
}

/// A successful answer: a body in the request's protocol, or a REST
/// answer with its own status and headers.
enum Answer {
    Body(Vec<u8>),
    Rest(RestResponse),
}

async fn handle(
    api: &Api,
    route: Route,
    request_id: &str,
    parts: axum::http::request::Parts,
    body: Body,
    op_name: &mut String,
) -> Result<Answer, ApiError> {
    let Route { protocol, service, operation, labels } = route;
    if let Some(op) = &operation {
        record_action(op_name, service, op);
    }
    let limit = match service {
        Service::Logs => api.config.max_logs_body_bytes,
        _ => api.config.max_body_bytes,
    };
    let body = read_body(body, limit, api.config.body_read_timeout).await?;
    let signed = sigv4::parse(&parts)?;
    let caller = authenticate(api, &signed, &parts, &body, service).await?;
    // Signed as sent; read as meant (botocore gzips big PutMetricData bodies).
    let body = decoded_body(&parts, body, limit)?;
    tracing::Span::current().record("access_key_id", signed.access_key_id.as_str());
    let allowed = Allowed { api, caller: &caller, global: global_keys(&parts) };
    let op = operation.unwrap_or_default();
    let json: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &body };
    let out = match (service, protocol) {
        (Service::Scheduler, _) => {
            let headers = parts.headers.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())));
            let r = RestRequest::new(labels, parts.uri.query().unwrap_or(""), headers, &body).map_err(rest_error)?;
            let action = scheduler::Action::from_rest(&op, &r)
                .map_err(rest_error)?
                .ok_or_else(|| not_served("scheduler", &op, scheduler::Action::NAMES))?;
            allowed.check(authz::others::scheduler(api.account(), &action)).await?;
            let key = api.store.get_access_key(&signed.access_key_id).await?;
            let call = crate::scheduler::Call { api, key_created_at: key.map_or(0, |k| k.created_at) };
            return Ok(Answer::Rest(crate::scheduler::dispatch(&call, action).await?.to_rest()));
        }
        (Service::Ecs, _) => {
            let action = ecs::Action::parse(&op, json)
                .map_err(parse_error)?
                .ok_or_else(|| ApiError::UnknownOperation(format!("Unknown operation {op}")))?;
            allowed.check(authz::ecs::requests(api, &caller, &action).await?).await?;
            let call = crate::ecs::Call { api, body_len: body.len() };
            let value = crate::ecs::dispatch(&call, action).await?;
            serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec())
        }
        (Service::Logs, _) => {
            let action = logs::Action::parse(&op, json)
                .map_err(parse_error)?
                .ok_or_else(|| ApiError::UnknownOperation(format!("Unknown operation {op}")))?;
            allowed.check(authz::logs::table(api.account(), &action)).await?;
            let value = crate::logs::dispatch(&crate::logs::Call { api }, action).await?;
            serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec())
        }
        (Service::Berth, _) => {
            let action = berth::Action::parse(&op, json)
                .map_err(parse_error)?
                .ok_or_else(|| ApiError::UnknownOperation(format!("Unknown operation {op}")))?;
            allowed.check(authz::others::berth(&action)).await?;
            let value = crate::berth::dispatch(api, action).await?;
            serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec())
        }
        (Service::Ec2, _) => {
            let q = query_input(&parts, &body)?;
            record_action(op_name, service, q.action());
            let action = ec2::Action::from_query(&q)?.ok_or_else(|| not_served("ec2", q.action(), ec2::Action::NAMES))?;
            allowed.check(authz::ec2::table(api.account(), &action)).await?;
            if q.scalar::<bool>("DryRun")? == Some(true) {
                return Err(ApiError::service("DryRunOperation", "Request would have succeeded, but DryRun flag is set."));
            }
            let call = crate::ec2::Call { api, access_key_id: &signed.access_key_id };
            crate::ec2::dispatch(&call, action).await?.to_xml(request_id).into_bytes()
        }
        (Service::Sts, _) => {
            let q = query_input(&parts, &body)?;
            record_action(op_name, service, q.action());
            let action = sts::Action::from_query(&q)?.ok_or_else(|| not_served("sts", q.action(), sts::Action::NAMES))?;
            allowed.check(authz::others::sts(&action)).await?;
            crate::sts::dispatch(api, &caller, action).await?.to_xml(request_id).into_bytes()
        }
        (Service::Iam, _) => {
            let q = query_input(&parts, &body)?;
            record_action(op_name, service, q.action());
            let action = iam::Action::from_query(&q)?.ok_or_else(|| not_served("iam", q.action(), iam::Action::NAMES))?;
            allowed.check(authz::iam::requests(api, &caller, &action).await?).await?;
            let call = crate::iam::Call { api, caller: &caller };
            crate::iam::dispatch(&call, action).await?.to_xml(request_id).into_bytes()
        }
        (Service::Elbv2, _) => {
            let q = query_input(&parts, &body)?;
            record_action(op_name, service, q.action());
            let action = elbv2::Action::from_query(&q)?
                .ok_or_else(|| not_served("elasticloadbalancing", q.action(), elbv2::Action::NAMES))?;
            allowed.check(authz::elbv2::table(api.account(), &action)).await?;
            crate::elbv2::dispatch(api, action).await?.to_xml(request_id).into_bytes()
        }
        (Service::Acm, _) => {
            let action = acm::Action::parse(&op, json)
                .map_err(parse_error)?
                .ok_or_else(|| not_served("acm", &op, acm::Action::NAMES))?;
            allowed.check(authz::acm::table(&action)).await?;
            let out = crate::acm::dispatch(api, action).await?;
            serde_json::to_vec(&out).unwrap_or_else(|_| b"{}".to_vec())
        }
        (Service::CloudMap, _) => {
            let action = servicediscovery::Action::parse(&op, json)
                .map_err(|e| crate::servicediscovery::parse_error(parse_error(e)))?
                .ok_or_else(|| not_served("servicediscovery", &op, servicediscovery::Action::NAMES))?;
            allowed.check(authz::servicediscovery::table(api.account(), &action)).await?;
            let value = crate::servicediscovery::dispatch(api, action).await?;
            serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec())
        }
        (Service::Ssm, _) => {
            let action = ssm::Action::parse(&op, json)
                .map_err(|e| crate::ssm::parse_error(parse_error(e)))?
                .ok_or_else(|| not_served("ssm", &op, ssm::Action::NAMES))?;
            allowed.check(authz::secrets::ssm(api.account(), &action)).await?;
            let out = crate::ssm::dispatch(api, action).await?;
            serde_json::to_vec(&out).unwrap_or_else(|_| b"{}".to_vec())
        }
        (Service::SecretsManager, _) => {
            let action = secretsmanager::Action::parse(&op, json)
                .map_err(parse_error)?
                .ok_or_else(|| not_served("secretsmanager", &op, secretsmanager::Action::NAMES))?;
            allowed.check(authz::secrets::secretsmanager(api, &action).await?).await?;
            let out = crate::secretsmanager::dispatch(api, action).await?;
            serde_json::to_vec(&out).unwrap_or_else(|_| b"{}".to_vec())
        }
        (Service::CostExplorer, _) => {
            let action = ce::Action::parse(&op, json)
                .map_err(parse_error)?
                .ok_or_else(|| not_served("ce", &op, ce::Action::NAMES))?;
            allowed.check(authz::ce::table(&action)).await?;
            let out = crate::ce::dispatch(api, action).await?;
            serde_json::to_vec(&out).unwrap_or_else(|_| b"{}".to_vec())
        }
        (Service::CloudWatch, Protocol::Query | Protocol::Ec2 | Protocol::RestJson { .. }) => {
            let q = query_input(&parts, &body)?;
            record_action(op_name, service, q.action());
            let action = cloudwatch::Action::from_query(&q)?
                .ok_or_else(|| not_served("monitoring", q.action(), cloudwatch::Action::NAMES))?;
            allowed.check(authz::others::cloudwatch(&action)).await?;
            crate::cloudwatch::dispatch(api, action).await?.to_xml(request_id).into_bytes()
        }
        (Service::CloudWatch, Protocol::Json { .. }) => {
            let action = cloudwatch::Action::parse(&op, json)
                .map_err(|e| cloudwatch_input_error(&e.to_string(), "The request body could not be read"))?
                .ok_or_else(|| not_served("monitoring", &op, cloudwatch::Action::NAMES))?;
            allowed.check(authz::others::cloudwatch(&action)).await?;
            let out = crate::cloudwatch::dispatch(api, action).await?;
            serde_json::to_vec(&out).unwrap_or_else(|_| b"{}".to_vec())
        }
        (Service::CloudWatch, Protocol::Cbor { .. }) => {
            // An operation without input may send no body: an empty map.
            let cbor: &[u8] = if body.is_empty() { &[0xa0] } else { &body };
            let value = crate::protocol::cbor_to_json(cbor)?;
            let action = cloudwatch::Action::from_deserializer(&op, value)
                .map_err(|e| cloudwatch_input_error(&e.to_string(), "The request body is not the operation's CBOR input"))?
                .ok_or_else(|| not_served("monitoring", &op, cloudwatch::Action::NAMES))?;
            allowed.check(authz::others::cloudwatch(&action)).await?;
            let out = crate::cloudwatch::dispatch(api, action).await?;
            let mut buf = Vec::new();
            ciborium::into_writer(&out, &mut buf)
                .map_err(|e| ApiError::Internal(berth_store::StoreError::Format(format!("CBOR: {e}"))))?;
            buf
        }
    };
    Ok(Answer::Body(out))
}

/// A REST request that does not make the operation's input: a value of
/// the wrong type or a missing member is a ValidationException naming
/// it, a body that is not JSON a SerializationException.
fn rest_error(e: RestError) -> ApiError {
    match e {
        RestError::Malformed(m) => ApiError::Serialization(m),
        other => ApiError::service("ValidationException", other.to_string()),
    }
}

/// A Query or EC2 request's parameters: the form body, or the URL's
/// query string when the body is empty (`GET /?Action=…`).
fn query_input(parts: &axum::http::request::Parts, body: &[u8]) -> Result<QueryInput, ApiError> {
    let q = if body.is_empty() { QueryInput::parse(parts.uri.query().unwrap_or("").as_bytes()) } else { QueryInput::parse(body) };
    let q = q.map_err(|e| ApiError::Serialization(e.to_string()))?;
    if q.action().is_empty() {
        return Err(ApiError::service("MissingAction", "The request must contain the parameter Action."));
    }
    Ok(q)
}

/// An operation no variant has: one the model has but Berth does not
/// serve, or one the model does not have.
fn not_served(service: &str, op: &str, names: &[&str]) -> ApiError {
    if names.binary_search(&op).is_ok() {
        ApiError::Unsupported(format!("Berth does not support the {service} operation {op} yet."))
    } else {
        ApiError::UnknownOperation(format!("The action {op} is not valid for this web service ({service})."))
    }
}

async fn read_body(body: Body, limit: usize, timeout: std::time::Duration) -> Result<Bytes, ApiError> {
    tokio::time::timeout(timeout, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| body_timeout())?
        .map_err(|_| ApiError::TooLarge(format!("Request body is larger than the limit of {limit} bytes.")))
}

/// The body without its `Content-Encoding: gzip` (which AWS SDKs use for
/// operations with request compression, as CloudWatch's PutMetricData),
/// at most `limit` bytes once decompressed; other bodies as they came.
fn decoded_body(parts: &axum::http::request::Parts, body: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    use std::io::Read as _;
    let gzip = parts
        .headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().eq_ignore_ascii_case("gzip")));
    if !gzip {
        return Ok(body);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::Serialization(format!("The request body is not valid gzip: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::TooLarge(format!("Request body is larger than the limit of {limit} bytes once decompressed.")));
    }
    Ok(Bytes::from(out))
}

/// The answer to a body that stops arriving (S3's words for it).
pub(crate) fn body_timeout() -> ApiError {
    ApiError::Timeout(
        "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed."
            .into(),
    )
}

/// The caller and the request's global keys, to check each parsed action
/// against before it is dispatched.
struct Allowed<'a> {
    api: &'a Api,
    caller: &'a Caller,
    global: GlobalKeys,
}

impl Allowed<'_> {
    async fn check(&self, requests: Vec<IamRequest>) -> Result<(), ApiError> {
        authz::authorize(self.api, self.caller, &requests, &self.global).await
    }
}

/// aws:SourceIp is the TCP peer (when the server was started with
/// connect info); Berth serves plain HTTP (aws:SecureTransport false).
pub(crate) fn global_keys(parts: &axum::http::request::Parts) -> GlobalKeys {
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
    GlobalKeys { source_ip: peer.map(|c| c.0.ip()), secure_transport: false, now: time::OffsetDateTime::now_utc() }
}

/// Verifies a request's signature with its key (which must be usable:
/// Active, and a session's with its token, unexpired) and says who made
/// it. IAM is global: its requests may be scoped to any region.
async fn authenticate(
    api: &Api,
    signed: &sigv4::SignedRequest,
    parts: &axum::http::request::Parts,
    body: &[u8],
    service: Service,
) -> Result<Caller, ApiError> {
    let now = time::OffsetDateTime::now_utc();
    let token = signed.session_token.as_deref();
    let record = crate::iam::identity::usable_key(api, &signed.access_key_id, token, now.unix_timestamp()).await?;
    let region = match service {
        Service::Iam => signed.credential_scope.region.as_str(),
        _ => api.config.account.region.as_str(),
    };
    let scope = sigv4::Scope { region, service: service.signing_name() };
    sigv4::verify(signed, parts, body, &record.key.secret_access_key, &scope, now)?;
    crate::iam::identity::resolve(api, &record).await
}

/// Maps a body that does not fit the operation's input shape to AWS's
/// errors: malformed JSON and wrong member types are a
/// SerializationException; a missing required member or a value outside an
/// enumeration is an InvalidParameterException naming it.
/// A CloudWatch body that does not decode: a required member missing is
/// CloudWatch's MissingParameter (as over Query), anything else a
/// SerializationException.
fn cloudwatch_input_error(message: &str, what: &str) -> ApiError {
    let message = message.split(" at line ").next().unwrap_or(message).replace('`', "'");
    match message.strip_prefix("missing field ") {
        Some(field) => ApiError::service("MissingParameter", format!("The request must contain the parameter {}.", field.trim_matches('\''))),
        None => ApiError::Serialization(format!("{what}: {message}")),
    }
}

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
