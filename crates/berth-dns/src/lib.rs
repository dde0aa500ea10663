//! Berth's DNS server (on hickory-server): one boundary. It answers from
//! a [`Records`] snapshot it is given — A and SRV records of Cloud Map
//! services, load balancers' DNS names, tasks' private DNS names — and
//! for every other name follows the [`Forward`] policy of the address
//! the query came to: subnets with egress forward to the host's
//! resolvers (`/etc/resolv.conf`), others answer REFUSED. It knows
//! nothing of the store: the caller (`berth-api`'s runner) builds the
//! snapshot and calls [`DnsServer::set_records`] when it changes.
//!
//! It listens on UDP and TCP at each address it is told to
//! ([`DnsServer::listen`], a subnet's gateway and port 53 in `berth up`),
//! and can add and drop addresses while it runs.

mod records;
mod resolv;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{DNSClass, Record};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// hickory's DNS types, for callers that read answers ([`ask`]).
pub use hickory_server::proto;
pub use records::{ASet, DEFAULT_NEGATIVE_TTL, Lookup, MAX_ANSWERS, Records, SrvSet, SrvTarget, key};
pub use resolv::{host_resolvers, nameservers};

/// How long a client's TCP connection may stay idle.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one upstream resolver gets to answer a forwarded query.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// What the server does with a name that is not in its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// Answer REFUSED (a subnet without egress).
    Refuse,
    /// Ask these resolvers in turn and relay their answer.
    To(Vec<SocketAddr>),
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot listen for DNS on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running DNS server: its records and the addresses it listens on.
#[derive(Default)]
pub struct DnsServer {
    records: Arc<RwLock<Arc<Records>>>,
    listeners: Mutex<BTreeMap<SocketAddr, Listening>>,
}

struct Listening {
    forward: Arc<RwLock<Forward>>,
    server: Server<Handler>,
}

impl DnsServer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A server listening on each address (UDP and TCP), forwarding as
    /// each says.
    pub async fn bind(addrs: Vec<(SocketAddr, Forward)>) -> Result<Self, DnsError> {
        let server = Self::new();
        for (addr, forward) in addrs {
            server.listen(addr, forward).await?;
        }
        Ok(server)
    }

    /// Replaces the records every listener answers from.
    pub fn set_records(&self, records: Records) {
        if let Ok(mut r) = self.records.write() {
            *r = Arc::new(records);
        }
    }

    /// Listens on `addr` (UDP and TCP on the same port; port 0 picks a
    /// free one); the address bound. Listening again on an address only
    /// changes its forwarding.
    pub async fn listen(&self, addr: SocketAddr, forward: Forward) -> Result<SocketAddr, DnsError> {
        if let Some(l) = self.listeners.lock().ok().and_then(|l| l.get(&addr).map(|l| l.forward.clone())) {
            if let Ok(mut f) = l.write() {
                *f = forward;
            }
            return Ok(addr);
        }
        let (udp, tcp) = bind_pair(addr).await?;
        let bound = udp.local_addr().map_err(|source| DnsError::Bind { addr, source })?;
        let forward = Arc::new(RwLock::new(forward));
        let handler = Handler { records: self.records.clone(), forward: forward.clone(), turn: AtomicUsize::new(0) };
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, 64);
        tracing::info!(addr = %bound, "DNS server listening");
        if let Ok(mut l) = self.listeners.lock() {
            l.insert(bound, Listening { forward, server });
        }
        Ok(bound)
    }

    /// The addresses listened on.
    pub fn listening(&self) -> Vec<SocketAddr> {
        self.listeners.lock().map(|l| l.keys().copied().collect()).unwrap_or_default()
    }

    /// Stops listening on `addr`.
    pub fn stop(&self, addr: SocketAddr) {
        let gone = self.listeners.lock().ok().and_then(|mut l| l.remove(&addr));
        if let Some(l) = gone {
            l.server.shutdown_token().cancel();
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Ok(l) = self.listeners.get_mut() {
            for l in l.values() {
                l.server.shutdown_token().cancel();
            }
        }
    }
}

/// A UDP socket and a TCP listener on one address and port (for port 0,
/// a port free for both).
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsError> {
    let err = |source| DnsError::Bind { addr, source };
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind(addr).await.map_err(err)?;
        let at = udp.local_addr().map_err(err)?;
        match TcpListener::bind(at).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(err(e)),
        }
    }
    Err(err(last.unwrap_or_else(|| std::io::Error::other("no free port"))))
}

struct Handler {
    records: Arc<RwLock<Arc<Records>>>,
    forward: Arc<RwLock<Forward>>,
    turn: AtomicUsize,
}

impl Handler {
    fn snapshot(&self) -> Arc<Records> {
        self.records.read().map(|r| r.clone()).unwrap_or_default()
    }

    fn forward(&self) -> Forward {
        self.forward.read().map(|f| f.clone()).unwrap_or(Forward::Refuse)
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response: R) -> ResponseInfo {
        let edns = request.edns.as_ref().map(|e| {
            let mut ours = Edns::new();
            ours.set_max_payload(e.max_payload().max(512));
            ours
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(e) = &edns {
            builder.edns(e);
        }
        let error = |code| {
            let mut m = Metadata::response_from_request(&request.metadata);
            m.response_code = code;
            m
        };
        let info = match request.request_info() {
            Err(_) => error(ResponseCode::FormErr),
            Ok(_) if request.metadata.message_type != MessageType::Query => error(ResponseCode::FormErr),
            Ok(info) if info.metadata.op_code != OpCode::Query => error(ResponseCode::NotImp),
            Ok(info) => {
                let q = info.query;
                let turn = self.turn.fetch_add(1, Ordering::Relaxed);
                let lookup = if q.query_class() == DNSClass::IN {
                    self.snapshot().lookup(q.original().name(), q.query_type(), turn)
                } else {
                    Lookup::NotOurs
                };
                let mut m = Metadata::response_from_request(&request.metadata);
                m.authoritative = true;
                match lookup {
                    Lookup::Found { answers, additionals } => {
                        let msg = builder.build(m, answers.iter(), [].iter(), [].iter(), additionals.iter());
                        return send(&mut response, msg, request).await;
                    }
                    Lookup::NxDomain { soa } => {
                        m.response_code = ResponseCode::NXDomain;
                        let authority = [*soa];
                        let msg = builder.build(m, [].iter(), authority.iter(), [].iter(), [].iter());
                        return send(&mut response, msg, request).await;
                    }
                    Lookup::NotOurs => match self.forward() {
                        Forward::Refuse => error(ResponseCode::Refused),
                        Forward::To(upstreams) => match relay(request.as_slice(), &upstreams).await {
                            Some(up) => {
                                let mut m = up.metadata;
                                m.id = request.metadata.id;
                                m.message_type = MessageType::Response;
                                let msg = builder.build(m, up.answers.iter(), up.authorities.iter(), [].iter(), up.additionals.iter().filter(|r| !is_opt(r)));
                                return send(&mut response, msg, request).await;
                            }
                            None => error(ResponseCode::ServFail),
                        },
                    },
                }
            }
        };
        let msg = builder.build_no_records(info);
        send(&mut response, msg, request).await
    }
}

fn is_opt(r: &Record) -> bool {
    r.record_type() == hickory_server::proto::rr::RecordType::OPT
}

async fn send<'a, R: ResponseHandler>(
    response: &mut R,
    msg: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match response.send_response(msg).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, src = %request.src(), "DNS answer not sent");
            let mut m = Metadata::response_from_request(&request.metadata);
            m.response_code = ResponseCode::ServFail;
            hickory_server::proto::op::Header { metadata: m, counts: Default::default() }.into()
        }
    }
}

/// Asks each upstream in turn (UDP, then TCP when the answer was
/// truncated); the first answer.
async fn relay(query: &[u8], upstreams: &[SocketAddr]) -> Option<Message> {
    for up in upstreams {
        match tokio::time::timeout(UPSTREAM_TIMEOUT, ask_raw(query, *up)).await {
            Ok(Ok(m)) => return Some(m),
            Ok(Err(e)) => tracing::debug!(upstream = %up, error = %e, "upstream resolver failed"),
            Err(_) => tracing::debug!(upstream = %up, "upstream resolver timed out"),
        }
    }
    None
}

async fn ask_raw(query: &[u8], upstream: SocketAddr) -> std::io::Result<Message> {
    let bind: SocketAddr = if upstream.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let udp = UdpSocket::bind(bind).await?;
    udp.connect(upstream).await?;
    udp.send(query).await?;
    let mut buf = vec![0u8; 65535];
    let n = udp.recv(&mut buf).await?;
    let parse = |b: &[u8]| Message::from_vec(b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()));
    let m = parse(&buf[..n])?;
    if !m.metadata.truncation {
        return Ok(m);
    }
    let mut tcp = TcpStream::connect(upstream).await?;
    let len = u16::try_from(query.len()).map_err(|_| std::io::Error::other("query too long"))?;
    tcp.write_all(&len.to_be_bytes()).await?;
    tcp.write_all(query).await?;
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).await?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(&mut body).await?;
    parse(&body)
}

/// Asks `server` for `name` of type `kind` over UDP once (a small client
/// for diagnostics and tests); its answer.
pub async fn ask(server: SocketAddr, name: &str, kind: proto::rr::RecordType) -> std::io::Result<Message> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(proto::op::Query::query(proto::rr::Name::from_ascii(name).map_err(|e| invalid(e.to_string()))?, kind));
    let query = m.to_vec().map_err(|e| invalid(e.to_string()))?;
    tokio::time::timeout(UPSTREAM_TIMEOUT, ask_raw(&query, server))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no DNS answer"))?
}

/// A query id that differs from call to call.
fn rand_id() -> u16 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    (nanos >> 8) as u16
}
