//! HTTP and HTTPS listeners: hyper's server (HTTP/1.1 keep-alive, HTTP/2
//! over TLS by ALPN or h2c), ALB's rules and actions, and forwarding over
//! pooled HTTP/1.1 connections to targets, with upgrades passed through.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rand::Rng as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::balancer::{Inner, ListenerCtx};
use crate::config::{Action, FixedResponse, Forward, ListenerConfig, Redirect, TargetProtocol};
use crate::group::{Group, Outstanding, TargetState, lock, read};
use crate::headers;
use crate::io::{Activity, Watched};
use crate::rules::{self, RedirectSource, RequestView};
use crate::select;

pub(crate) type Body = UnsyncBoxBody<Bytes, hyper::Error>;

/// How long a connection to a target may take (ALB's is 10 s), at most
/// the idle timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS handshake from a client.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept per target.
const IDLE_PER_TARGET: usize = 128;

pub(crate) async fn serve(ctx: Arc<ListenerCtx>, listener: Arc<TcpListener>, tls: Option<tokio_rustls::TlsAcceptor>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let local_port = stream.local_addr().map_or(0, |a| a.port());
                let (ctx, tls, stop) = (ctx.clone(), tls.clone(), stop.clone());
                let counted = ctx.counters.connection();
                tokio::spawn(async move {
                    let _counted = counted;
                    match tls {
                        None => connection(ctx, stream, peer, local_port, stop).await,
                        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => connection(ctx, s, peer, local_port, stop).await,
                            _ => ctx.counters.tls_error(),
                        },
                    }
                });
            }
            _ = stop.changed() => return,
        }
    }
}

/// What a request knows of its connection.
#[derive(Debug, Clone, Copy)]
struct Client {
    peer: SocketAddr,
    port: u16,
}

async fn connection<I>(ctx: Arc<ListenerCtx>, io: I, peer: SocketAddr, port: u16, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let client = Client { peer, port };
    let svc = {
        let (ctx, in_flight) = (ctx.clone(), in_flight.clone());
        hyper::service::service_fn(move |req| {
            let ctx = ctx.clone();
            let guard = InFlight::new(in_flight.clone());
            async move {
                let resp = handle(&ctx, client, req).await;
                drop(guard);
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(Watched::new(io, activity.clone())), svc);
    tokio::pin!(conn);
    loop {
        let idle = read(&ctx.config).idle_timeout;
        let now = Instant::now();
        let wake = if in_flight.load(Ordering::Relaxed) > 0 { now + idle.min(Duration::from_secs(1)) } else { activity.last() + idle };
        tokio::select! {
            _ = &mut conn => return,
            _ = tokio::time::sleep_until(wake.into()) => {
                if in_flight.load(Ordering::Relaxed) == 0 && activity.last() + idle <= Instant::now() {
                    return; // idle timeout: the connection is dropped
                }
            }
            _ = stop.changed() => return,
        }
    }
}

struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(c: Arc<AtomicUsize>) -> Self {
        c.fetch_add(1, Ordering::Relaxed);
        InFlight(c)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).map_err(|never| match never {}).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp.headers_mut().insert(header::SERVER, HeaderValue::from_static("awselb/2.0"));
    resp
}

/// One of ALB's own error responses.
fn elb_error(status: u16) -> Response<Body> {
    full(status, "text/html", headers::error_page(status))
}

async fn handle(ctx: &ListenerCtx, client: Client, req: Request<Incoming>) -> Response<Body> {
    ctx.counters.request();
    let config = read(&ctx.config);
    let existing: Vec<&str> = req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    let Some(xff) = headers::forwarded_for(&existing, client.peer.ip()) else {
        ctx.counters.too_many_forwarded();
        return elb_error(463);
    };
    let host = host_of(&req).map(str::to_owned);
    let action = {
        let hs: Vec<(&str, &str)> = req.headers().iter().filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))).collect();
        let view = RequestView {
            method: req.method().as_str(),
            path: req.uri().path(),
            query: req.uri().query(),
            host: host.as_deref(),
            headers: &hs,
            source: client.peer.ip(),
        };
        rules::route(&config.rules, &config.default_action, &view).clone()
    };
    match action {
        Action::FixedResponse(f) => {
            ctx.counters.fixed();
            fixed(&f)
        }
        Action::Redirect(r) => {
            ctx.counters.redirect();
            redirect(&r, &config, client, host.as_deref(), req.uri())
        }
        Action::Forward(f) => {
            let Some(inner) = ctx.inner.upgrade() else { return elb_error(503) };
            forward(&inner, &config, client, xff, req, &f).await
        }
    }
}

fn host_of(req: &Request<Incoming>) -> Option<&str> {
    req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().authority().map(|a| a.as_str()))
}

fn fixed(f: &FixedResponse) -> Response<Body> {
    full(f.status, f.content_type.as_deref().unwrap_or("text/plain; charset=utf-8"), f.body.clone())
}

fn redirect(r: &Redirect, config: &ListenerConfig, client: Client, host: Option<&str>, uri: &Uri) -> Response<Body> {
    let src = RedirectSource {
        protocol: config.protocol.scheme(),
        host: host.map_or("", rules::host_without_port),
        port: client.port,
        path: uri.path(),
        query: uri.query(),
    };
    let location = rules::redirect_location(r, &src);
    let mut resp = full(if r.permanent { 301 } else { 302 }, "text/html", "");
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
            resp
        }
        Err(_) => elb_error(500),
    }
}

/// Counts ALB's 460 when the client goes away before its answer (the
/// request's future is dropped with this armed).
struct ClientGone {
    group: Arc<Group>,
    armed: bool,
}

impl Drop for ClientGone {
    fn drop(&mut self) {
        if self.armed {
            self.group.counters.elb(460);
        }
    }
}

/// Which of the forward action's groups, and the AWSALBTG cookie to set.
fn pick_group(f: &Forward, req: &Request<Incoming>) -> Option<(String, Option<String>)> {
    if let [only] = &f.target_groups[..] {
        return Some((only.id.clone(), None));
    }
    let live: Vec<&crate::config::WeightedGroup> = f.target_groups.iter().filter(|g| g.weight > 0).collect();
    if f.group_stickiness.is_some()
        && let Some(id) = headers::cookie(req.headers(), "AWSALBTG").and_then(headers::sticky_group)
        && live.iter().any(|g| g.id == id)
    {
        return Some((id, None));
    }
    let weights: Vec<u32> = f.target_groups.iter().map(|g| g.weight).collect();
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return None;
    }
    let roll = rand::rng().random_range(0..total);
    let id = f.target_groups[select::pick_weighted(&weights, roll)?].id.clone();
    let cookie = f.group_stickiness.map(|d| headers::set_cookie("AWSALBTG", &headers::sticky_group_value(&id), SystemTime::now() + d, false));
    Some((id, cookie))
}

async fn forward(inner: &Arc<Inner>, config: &ListenerConfig, client: Client, xff: String, mut req: Request<Incoming>, f: &Forward) -> Response<Body> {
    let Some((group_id, group_cookie)) = pick_group(f, &req) else { return elb_error(503) };
    let Some(group) = inner.group(&group_id) else { return elb_error(503) };
    group.counters.request();
    let group_config = read(&group.config);
    let sticky = group_config.stickiness.and_then(|_| headers::cookie(req.headers(), "AWSALB")).and_then(headers::sticky_target);
    let Some(target) = group.pick(sticky) else {
        group.counters.elb(503);
        return elb_error(503);
    };
    let hold = Outstanding::new(target.clone());
    let mut gone = ClientGone { group: group.clone(), armed: true };
    let upgrade = headers::wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    let authority = parts.uri.authority().map(|a| a.to_string());
    headers::strip_hop_by_hop(&mut parts.headers, upgrade);
    if !parts.headers.contains_key(header::HOST)
        && let Some(v) = authority.and_then(|a| HeaderValue::from_str(&a).ok())
    {
        parts.headers.insert(header::HOST, v);
    }
    let h = &mut parts.headers;
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static(config.protocol.scheme()));
    h.insert("x-forwarded-port", HeaderValue::from(client.port));
    let trace = headers::trace_header(
        h.get("x-amzn-trace-id").and_then(|v| v.to_str().ok()),
        &headers::new_trace_id(SystemTime::now(), rand::rng().random()),
    );
    if let Ok(v) = HeaderValue::from_str(&trace) {
        h.insert("x-amzn-trace-id", v);
    }
    parts.uri = parts.uri.path_and_query().map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
    parts.version = http::Version::HTTP_11;
    // ALB's 504: nothing from the target for the idle timeout since the
    // request's last byte went (an upload that keeps moving is not idle).
    let activity = Activity::new();
    let req = Request::from_parts(parts, Upload { inner: body, activity: activity.clone() });

    let tls = group_config.protocol == TargetProtocol::Https;
    let began = Instant::now();
    let exchange = send(inner, &target, tls, req, upgrade, config.idle_timeout);
    tokio::pin!(exchange);
    let answer = loop {
        let wake = activity.last() + config.idle_timeout;
        tokio::select! {
            r = &mut exchange => break Some(r),
            _ = tokio::time::sleep_until(wake.into()) => {
                if activity.last() + config.idle_timeout <= Instant::now() {
                    break None;
                }
            }
        }
    };
    let mut resp = match answer {
        None | Some(Err(Failure::Timeout)) => {
            gone.armed = false;
            group.counters.elb(504);
            return elb_error(504);
        }
        Some(Err(Failure::Broken(e))) => {
            tracing::debug!(target = %target.addr, error = %e, "target failed");
            gone.armed = false;
            group.counters.elb(502);
            return elb_error(502);
        }
        Some(Ok(resp)) => resp,
    };
    gone.armed = false;
    let status = resp.status().as_u16();
    group.counters.target_answer(status, began.elapsed());
    let switching = status == 101;
    if switching && let Some(client_upgrade) = client_upgrade {
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let _hold = hold;
            let (Ok(c), Ok(u)) = (client_upgrade.await, upstream_upgrade.await) else { return };
            let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(c), &mut TokioIo::new(u)).await;
        });
        let (mut parts, _) = resp.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, true);
        return Response::from_parts(parts, http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync());
    }
    let (mut parts, body) = resp.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, false);
    if let Some(d) = group_config.stickiness {
        let expires = SystemTime::now() + d;
        let value = headers::sticky_value(target.addr);
        for (name, cors) in [("AWSALB", false), ("AWSALBCORS", true)] {
            if let Ok(v) = HeaderValue::from_str(&headers::set_cookie(name, &value, expires, cors)) {
                parts.headers.append(header::SET_COOKIE, v);
            }
        }
    }
    if let Some(v) = group_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        parts.headers.append(header::SET_COOKIE, v);
    }
    Response::from_parts(parts, Tracked { inner: body, hold: Some(hold) }.boxed_unsync())
}

enum Failure {
    /// No connection or no answer in time.
    Timeout,
    /// Refused, reset, or not HTTP.
    Broken(Box<dyn std::error::Error + Send + Sync>),
}

/// Sends a request to a target on an idle pooled connection, or a new one.
async fn send(inner: &Inner, target: &Arc<TargetState>, tls: bool, mut req: Request<Upload>, upgrade: bool, idle: Duration) -> Result<Response<Incoming>, Failure> {
    loop {
        let pooled = {
            let mut idle = lock(&target.idle);
            loop {
                match idle.pop() {
                    Some(s) if s.is_ready() && !s.is_closed() => break Some(s),
                    Some(_) => continue,
                    None => break None,
                }
            }
        };
        let Some(mut sender) = pooled else { break };
        match sender.try_send_request(req).await {
            Ok(resp) => {
                keep(sender, target, upgrade);
                return Ok(resp);
            }
            Err(mut e) => match e.take_message() {
                // Not sent: the connection had closed; try another.
                Some(r) => req = r,
                None => return Err(Failure::Broken(Box::new(e.into_error()))),
            },
        }
    }
    let io = match tokio::time::timeout(CONNECT_TIMEOUT.min(idle), inner.dial(target.addr, tls)).await {
        Err(_) => return Err(Failure::Timeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => return Err(Failure::Timeout),
        Ok(Err(e)) => return Err(Failure::Broken(Box::new(e))),
        Ok(Ok(io)) => io,
    };
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| Failure::Broken(Box::new(e)))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let resp = sender.send_request(req).await.map_err(|e| Failure::Broken(Box::new(e)))?;
    keep(sender, target, upgrade);
    Ok(resp)
}

/// Puts the connection back in the target's pool once its response is
/// read (an upgraded connection is not for reuse).
fn keep(mut sender: SendRequest<Upload>, target: &Arc<TargetState>, upgrade: bool) {
    if upgrade {
        return;
    }
    let target = Arc::downgrade(target);
    tokio::spawn(async move {
        if sender.ready().await.is_err() {
            return;
        }
        if let Some(t) = target.upgrade()
            && !t.removed()
        {
            let mut idle = lock(&t.idle);
            if idle.len() < IDLE_PER_TARGET {
                idle.push(sender);
            }
        }
    });
}

/// A request body on its way to a target, noting when data last moved.
pub(crate) struct Upload {
    inner: Incoming,
    activity: Arc<Activity>,
}

impl http_body::Body for Upload {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(r, Poll::Ready(Some(Ok(_)))) {
            self.activity.touch();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A target's response body, holding the target's outstanding count
/// until it is read through (or dropped).
struct Tracked {
    inner: Incoming,
    hold: Option<Outstanding>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.hold = None;
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
