//! Test support: real hyper servers as targets on loopback, an HTTP/1.1
//! keep-alive client, and configuration shorthands.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of it; a failed unwrap is a failed test

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth_lb::{Action, Balancer, Config, Forward, HealthCheck, HostSockets, ListenerConfig, ListenerProtocol, TargetGroupConfig};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

pub type TestBody = UnsyncBoxBody<Bytes, Infallible>;

pub fn full(b: impl Into<Bytes>) -> TestBody {
    Full::new(b.into()).boxed_unsync()
}

pub fn empty() -> TestBody {
    Empty::new().boxed_unsync()
}

/// A target: a hyper server on 127.0.0.1 answering with its name.
pub struct TestTarget {
    pub addr: SocketAddr,
    pub name: String,
    /// The status `/health` answers.
    pub health: Arc<AtomicU16>,
    /// Requests other than health checks.
    pub hits: Arc<AtomicUsize>,
    /// Connections that carried a request other than a health check.
    pub conns: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn target(name: &str) -> TestTarget {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (health, hits, conns) = (Arc::new(AtomicU16::new(200)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let name_owned = name.to_owned();
    let (h, n, c) = (health.clone(), hits.clone(), conns.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (name, h, n, c) = (name_owned.clone(), h.clone(), n.clone(), c.clone());
            let counted = Arc::new(std::sync::atomic::AtomicBool::new(false));
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    if req.uri().path() != "/health" && !counted.swap(true, Ordering::SeqCst) {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                    serve(name.clone(), h.clone(), n.clone(), req)
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).with_upgrades().await;
            });
        }
    });
    TestTarget { addr, name: name.to_owned(), health, hits, conns, task }
}

fn query(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri().query()?.split('&').find_map(|p| p.strip_prefix(&format!("{key}=")).and_then(|v| v.parse().ok()))
}

async fn serve(name: String, health: Arc<AtomicU16>, hits: Arc<AtomicUsize>, mut req: Request<Incoming>) -> Result<Response<TestBody>, Infallible> {
    let text = |status: u16, body: String| {
        let mut r = Response::new(full(body));
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r
    };
    let path = req.uri().path().to_owned();
    if path == "/health" {
        return Ok(text(health.load(Ordering::SeqCst), "health".into()));
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let mut resp = match path.as_str() {
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(query(&req, "ms").unwrap_or(500))).await;
            text(200, name.clone())
        }
        "/echo-headers" => {
            let mut lines: Vec<String> = req.headers().iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?"))).collect();
            lines.push(format!("uri: {}", req.uri()));
            text(200, lines.join("\n"))
        }
        "/stream" => {
            let total = query(&req, "bytes").unwrap_or(1 << 20);
            let chunk = 64 * 1024u64;
            let chunks = total.div_ceil(chunk);
            let body = StreamBody::new(futures_util::stream::iter((0..chunks).map(move |i| {
                let len = chunk.min(total - i * chunk) as usize;
                Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; len])))
            })));
            Response::new(body.boxed_unsync())
        }
        "/upload" => {
            let mut body = req.into_body();
            let mut n = 0usize;
            while let Some(frame) = body.frame().await {
                if let Ok(d) = frame.unwrap().into_data() {
                    n += d.len();
                }
            }
            text(200, n.to_string())
        }
        "/ws" => {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(up) = upgrade.await else { return };
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 1024];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let mut echo = format!("{name}:").into_bytes();
                            echo.extend_from_slice(&buf[..n]);
                            if io.write_all(&echo).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            let mut r = text(101, String::new());
            r.headers_mut().insert("upgrade", "websocket".parse().unwrap());
            r.headers_mut().insert("connection", "Upgrade".parse().unwrap());
            return Ok(r);
        }
        _ => text(200, name.clone()),
    };
    resp.headers_mut().insert("x-target", name.parse().unwrap());
    Ok(resp)
}

/// A response read to its end.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// One HTTP/1.1 keep-alive connection.
pub struct Client {
    pub send: hyper::client::conn::http1::SendRequest<TestBody>,
    conn: tokio::task::JoinHandle<()>,
    pub addr: SocketAddr,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        let conn = tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Client { send, conn, addr }
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.request(Request::get(path).header("host", "lb.test").body(empty()).unwrap()).await
    }

    pub async fn request(&mut self, req: Request<TestBody>) -> Resp {
        self.send.ready().await.unwrap();
        let resp = self.send.send_request(req).await.unwrap();
        read(resp).await
    }

    pub fn is_open(&self) -> bool {
        !self.send.is_closed() && !self.conn.is_finished()
    }
}

pub async fn read(resp: Response<Incoming>) -> Resp {
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Resp { status: parts.status.as_u16(), headers: parts.headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

/// A GET on a new connection.
pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    Client::connect(addr).await.get(path).await
}

/// Health checks every 100 ms on /health, 2 to turn either way.
pub fn fast_health() -> HealthCheck {
    HealthCheck {
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        ..HealthCheck::http("/health")
    }
}

pub fn group(id: &str, targets: &[&TestTarget]) -> TargetGroupConfig {
    let addrs: Vec<SocketAddr> = targets.iter().map(|t| t.addr).collect();
    TargetGroupConfig { health_check: fast_health(), ..TargetGroupConfig::http(id, &addrs) }
}

pub fn http_listener(id: &str, default_action: Action) -> ListenerConfig {
    ListenerConfig {
        id: id.to_owned(),
        bind: "127.0.0.1:0".parse().unwrap(),
        protocol: ListenerProtocol::Http,
        idle_timeout: Duration::from_secs(60),
        rules: Vec::new(),
        default_action,
    }
}

pub fn forward(group: &str) -> Action {
    Action::Forward(Forward::to(group))
}

/// A balancer running `config`; the address of listener `id`.
pub fn start(config: Config) -> (Balancer, impl Fn(&str) -> SocketAddr) {
    let lb = Balancer::new(HostSockets);
    let errors = lb.apply(config);
    assert!(errors.is_empty(), "{errors:?}");
    let addrs = lb.local_addrs();
    (lb, move |id: &str| addrs[id])
}

/// Polls `cond` every 20 ms for up to `within`.
pub async fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let began = Instant::now();
    while !cond() {
        assert!(began.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback address nothing listens on (bound, noted, closed).
pub fn refused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}
