//! The balancer: takes whole configurations (`apply`, level-triggered),
//! runs the listeners and the health checks, and reports target health and
//! counters.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use tokio::sync::watch;

use crate::config::{Config, HealthCheckPort, HealthCheckProtocol, ListenerConfig, ListenerProtocol, TargetProtocol};
use crate::counters::{GroupCounters, ListenerCells, ListenerCounters};
use crate::group::{Group, TargetHealthReport, TargetState, lock, read, write};
use crate::health::Probe;
use crate::io::Upstream;
use crate::sockets::Sockets;
use crate::tls::{self, CertificateError, Certificates};

/// What `apply` could not do (it did everything else).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("listener {listener}: cannot listen on {addr}")]
    Listen {
        listener: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("listener {listener}: certificate")]
    Certificate {
        listener: String,
        #[source]
        source: CertificateError,
    },
    #[error("listener {listener}: TLS configuration")]
    Tls {
        listener: String,
        #[source]
        source: rustls::Error,
    },
}

pub(crate) struct Inner {
    pub sockets: Arc<dyn Sockets>,
    provider: Arc<CryptoProvider>,
    target_tls: Option<tokio_rustls::TlsConnector>,
    groups: RwLock<HashMap<String, Arc<Group>>>,
    listeners: Mutex<HashMap<String, Running>>,
    listener_counters: Mutex<HashMap<String, Arc<ListenerCells>>>,
    health: watch::Sender<u64>,
}

/// A running listener.
struct Running {
    bind: SocketAddr,
    /// Shared with the accept loop; handed to the next listener on the
    /// same address when this one is replaced (no gap, no bind conflict).
    socket: Arc<tokio::net::TcpListener>,
    local: SocketAddr,
    kind: Kind,
    ctx: Arc<ListenerCtx>,
    certs: Option<Arc<Certificates>>,
    stop: watch::Sender<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Https,
    Tcp,
}

fn kind(p: &ListenerProtocol) -> Kind {
    match p {
        ListenerProtocol::Http => Kind::Http,
        ListenerProtocol::Https { .. } => Kind::Https,
        ListenerProtocol::Tcp => Kind::Tcp,
    }
}

/// What a listener's connections share.
pub(crate) struct ListenerCtx {
    pub inner: Weak<Inner>,
    pub config: RwLock<Arc<ListenerConfig>>,
    pub counters: Arc<ListenerCells>,
}

impl Running {
    fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// The data plane of a load balancer (or several sharing one `Sockets`).
/// `Send + Sync`: share it behind an `Arc`.
pub struct Balancer {
    inner: Arc<Inner>,
}

const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Balancer>();
};

impl Balancer {
    /// A balancer making its sockets with `sockets`; nothing runs until `apply`.
    pub fn new(sockets: impl Sockets) -> Self {
        let provider = tls::provider();
        let target_tls = tls::target_client_config(provider.clone()).ok().map(|c| tokio_rustls::TlsConnector::from(Arc::new(c)));
        Balancer {
            inner: Arc::new(Inner {
                sockets: Arc::new(sockets),
                provider,
                target_tls,
                groups: RwLock::new(HashMap::new()),
                listeners: Mutex::new(HashMap::new()),
                listener_counters: Mutex::new(HashMap::new()),
                health: watch::channel(0).0,
            }),
        }
    }

    /// Makes the running balancer what `config` says: listeners not in it
    /// stop, new ones start, the others take their new rules, actions and
    /// certificates without dropping connections (a changed address or
    /// protocol restarts the listener). Targets not in a group any more get
    /// no new requests (in-flight ones finish), new ones start initial.
    /// Must be called within a tokio runtime. Returns what could not be
    /// applied; everything else was.
    pub fn apply(&self, config: Config) -> Vec<ApplyError> {
        let before = self.health();
        let inner = &self.inner;
        let used: HashSet<&str> = config
            .listeners
            .iter()
            .flat_map(|l| l.rules.iter().map(|r| &r.action).chain([&l.default_action]))
            .flat_map(|a| a.groups())
            .collect();
        {
            let mut groups = inner.groups.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let wanted: HashSet<&str> = config.target_groups.iter().map(|g| g.id.as_str()).collect();
            groups.retain(|id, g| {
                let keep = wanted.contains(id.as_str());
                if !keep {
                    g.stop();
                }
                keep
            });
            for tg in &config.target_groups {
                let group = groups.entry(tg.id.clone()).or_insert_with(|| Arc::new(Group::new(tg))).clone();
                group.update(tg, used.contains(tg.id.as_str()));
                for target in group.unchecked() {
                    let handle = tokio::spawn(check(Arc::downgrade(inner), Arc::downgrade(&group), Arc::downgrade(&target)));
                    target.set_checker(handle.abort_handle());
                }
            }
        }
        let mut errors = Vec::new();
        let mut listeners = lock(&inner.listeners);
        let wanted: HashSet<&str> = config.listeners.iter().map(|l| l.id.as_str()).collect();
        let mut released: HashMap<SocketAddr, Arc<tokio::net::TcpListener>> = HashMap::new();
        listeners.retain(|id, l| {
            let keep = wanted.contains(id.as_str());
            if !keep {
                l.stop();
                released.insert(l.bind, l.socket.clone());
            }
            keep
        });
        for l in config.listeners {
            let same = listeners.get(&l.id).is_some_and(|r| r.bind == l.bind && r.kind == kind(&l.protocol));
            if same && let Some(r) = listeners.get(&l.id) {
                if let (ListenerProtocol::Https { certificates }, Some(certs)) = (&l.protocol, &r.certs)
                    && let Err(source) = certs.set(certificates, &inner.provider)
                {
                    errors.push(ApplyError::Certificate { listener: l.id.clone(), source });
                }
                write(&r.ctx.config, Arc::new(l));
                continue;
            }
            if let Some(old) = listeners.remove(&l.id) {
                old.stop();
                released.insert(old.bind, old.socket.clone());
            }
            match self.start(l.clone(), released.remove(&l.bind)) {
                Ok(r) => {
                    listeners.insert(l.id.clone(), r);
                }
                Err(e) => errors.push(e),
            }
        }
        drop(listeners);
        if self.health() != before {
            inner.health.send_modify(|v| *v += 1);
        }
        errors
    }

    /// Starts a listener, on `socket` when one is handed over.
    fn start(&self, l: ListenerConfig, socket: Option<Arc<tokio::net::TcpListener>>) -> Result<Running, ApplyError> {
        let inner = &self.inner;
        let (kind, id, bind) = (kind(&l.protocol), l.id.clone(), l.bind);
        let certs = match &l.protocol {
            ListenerProtocol::Https { certificates } => {
                let certs = Arc::new(Certificates::default());
                certs
                    .set(certificates, &inner.provider)
                    .map_err(|source| ApplyError::Certificate { listener: id.clone(), source })?;
                Some(certs)
            }
            _ => None,
        };
        let acceptor = match &certs {
            Some(c) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(
                tls::server_config(c.clone(), inner.provider.clone()).map_err(|source| ApplyError::Tls { listener: id.clone(), source })?,
            ))),
            None => None,
        };
        let socket = match socket {
            Some(s) => s,
            None => Arc::new(inner.sockets.listen(bind).map_err(|source| ApplyError::Listen { listener: id.clone(), addr: bind, source })?),
        };
        let local = socket.local_addr().unwrap_or(bind);
        let counters = lock(&inner.listener_counters).entry(id.clone()).or_default().clone();
        let ctx = Arc::new(ListenerCtx { inner: Arc::downgrade(inner), config: RwLock::new(Arc::new(l)), counters });
        let (stop, stopped) = watch::channel(false);
        match kind {
            Kind::Tcp => tokio::spawn(crate::tcp::serve(ctx.clone(), socket.clone(), stopped)),
            Kind::Http | Kind::Https => tokio::spawn(crate::proxy::serve(ctx.clone(), socket.clone(), acceptor, stopped)),
        };
        tracing::debug!(listener = %id, %bind, ?kind, "listener started");
        Ok(Running { bind, socket, local, kind, ctx, certs, stop })
    }

    /// Every registered target's health, by target group.
    pub fn health(&self) -> Vec<TargetHealthReport> {
        let groups = read_groups(&self.inner);
        let mut out: Vec<TargetHealthReport> = groups.iter().flat_map(|g| g.report()).collect();
        out.sort_by(|a, b| (&a.target_group, a.addr).cmp(&(&b.target_group, b.addr)));
        out
    }

    /// Changes whenever some target's reported health may have changed
    /// (compare `health()` with what was written).
    pub fn health_changes(&self) -> watch::Receiver<u64> {
        self.inner.health.subscribe()
    }

    /// Counters of each target group in the configuration, by id.
    pub fn counters(&self) -> HashMap<String, GroupCounters> {
        read_groups(&self.inner).iter().map(|g| (g.id.clone(), g.snapshot())).collect()
    }

    /// Counters of every listener that ran, by id.
    pub fn listener_counters(&self) -> HashMap<String, ListenerCounters> {
        lock(&self.inner.listener_counters).iter().map(|(id, c)| (id.clone(), c.snapshot())).collect()
    }

    /// Where each running listener listens (its actual address: a bind to
    /// port 0 gets one).
    pub fn local_addrs(&self) -> HashMap<String, SocketAddr> {
        lock(&self.inner.listeners).iter().map(|(id, r)| (id.clone(), r.local)).collect()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        for l in lock(&self.inner.listeners).values() {
            l.stop();
        }
        for g in read_groups(&self.inner) {
            g.stop();
        }
    }
}

fn read_groups(inner: &Inner) -> Vec<Arc<Group>> {
    inner.groups.read().unwrap_or_else(std::sync::PoisonError::into_inner).values().cloned().collect()
}

impl Inner {
    pub fn group(&self, id: &str) -> Option<Arc<Group>> {
        self.groups.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).cloned()
    }

    /// A connection to a target, TLS when the group's protocol is HTTPS.
    pub async fn dial(&self, addr: SocketAddr, tls: bool) -> std::io::Result<Upstream> {
        let tcp = self.sockets.connect(addr).await?;
        if !tls {
            return Ok(Upstream::Plain(tcp));
        }
        let connector = self.target_tls.as_ref().ok_or_else(|| std::io::Error::other("no TLS client configuration"))?;
        let s = connector.connect(ServerName::IpAddress(addr.ip().into()), tcp).await?;
        Ok(Upstream::Tls(Box::new(s)))
    }
}

/// Health checks of one target until it is removed (or the balancer is).
async fn check(inner: Weak<Inner>, group: Weak<Group>, target: Weak<TargetState>) {
    loop {
        let (Some(i), Some(g), Some(t)) = (inner.upgrade(), group.upgrade(), target.upgrade()) else { return };
        if t.removed() || t.draining() || !g.used() {
            return;
        }
        let config = read(&g.config);
        let hc = &config.health_check;
        let addr = match hc.port {
            HealthCheckPort::TrafficPort => t.addr,
            HealthCheckPort::Port(p) => SocketAddr::new(t.addr.ip(), p),
        };
        let interval = hc.interval;
        let probe = probe(&i, addr, hc, config.protocol).await;
        if g.record(&t, probe) {
            tracing::debug!(group = %g.id, target = %t.addr, ?probe, "target health changed");
            i.health.send_modify(|v| *v += 1);
        }
        drop((i, g, t));
        tokio::time::sleep(interval).await;
    }
}

/// One health check.
async fn probe(inner: &Inner, addr: SocketAddr, hc: &crate::config::HealthCheck, protocol: TargetProtocol) -> Probe {
    let attempt = async {
        let tls = match hc.protocol {
            HealthCheckProtocol::Tcp => {
                inner.sockets.connect(addr).await.map_err(|_| Probe::Failed)?;
                return Ok(Probe::Passed);
            }
            HealthCheckProtocol::Https => true,
            HealthCheckProtocol::Http => false,
        };
        let _ = protocol;
        let io = inner.dial(addr, tls).await.map_err(|_| Probe::Failed)?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|_| Probe::Failed)?;
        tokio::spawn(conn);
        let req = http::Request::get(hc.path.as_str())
            .header(http::header::HOST, addr.to_string())
            .header(http::header::USER_AGENT, "ELB-HealthChecker/2.0")
            .body(Empty::<Bytes>::new())
            .map_err(|_| Probe::Failed)?;
        let resp = send.send_request(req).await.map_err(|_| Probe::Failed)?;
        let code = resp.status().as_u16();
        Ok(if hc.matcher.accepts(code) { Probe::Passed } else { Probe::CodeMismatch(code) })
    };
    match tokio::time::timeout(hc.timeout.max(Duration::from_millis(1)), attempt).await {
        Ok(Ok(p) | Err(p)) => p,
        Err(_) => Probe::TimedOut,
    }
}
