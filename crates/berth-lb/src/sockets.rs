//! Where the data plane's sockets come from. The caller decides: inside a
//! load balancer's network namespace in Berth, the host's own in tests.

use std::io;
use std::net::SocketAddr;

use async_trait::async_trait;
use tokio::net::{TcpListener, TcpStream};

/// Makes the listening sockets and the connections to targets (and health
/// checks). A socket keeps the network namespace it was made in, so an
/// implementation for a load balancer's namespace makes the socket on a
/// thread that entered it (`setns`), with `socket2` or `std::net`, set
/// non-blocking, and hands it to tokio (`TcpListener::from_std`,
/// `TcpSocket::from_std_stream(..).connect(addr)`) from the runtime.
/// One `Balancer` per load balancer, then: its listeners and its health
/// checks use that balancer's `Sockets`.
#[async_trait]
pub trait Sockets: Send + Sync + 'static {
    /// A listening socket bound to `addr` (called from within a tokio
    /// runtime; the socket must be non-blocking-capable).
    fn listen(&self, addr: SocketAddr) -> io::Result<TcpListener>;

    /// A connection to a target.
    async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream>;
}

/// The host's network: plain binds and connects.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostSockets;

#[async_trait]
impl Sockets for HostSockets {
    fn listen(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(1024)
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}
