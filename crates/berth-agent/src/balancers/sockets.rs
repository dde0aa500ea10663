//! Sockets in a load balancer node's network namespace: a socket keeps
//! the namespace it was made in, so one thread per node joins it once
//! (`setns`) and makes every listening and connecting socket there; tokio
//! drives them from then on.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;

use async_trait::async_trait;
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;

enum Make {
    /// Answered on a std channel: `listen` is synchronous (a short wait).
    Listen(SocketAddr, mpsc::SyncSender<io::Result<std::net::TcpListener>>),
    Connecting(oneshot::Sender<io::Result<Socket>>),
}

/// [`berth_lb::Sockets`] inside the namespace at a path.
pub struct NetnsSockets {
    path: PathBuf,
    requests: Mutex<mpsc::Sender<Make>>,
}

impl NetnsSockets {
    /// Starts the namespace's socket thread (it ends when this is dropped).
    pub fn new(path: &Path) -> io::Result<Self> {
        let ns = File::open(path)?;
        let (tx, rx) = mpsc::channel::<Make>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new().name("lb-netns".into()).spawn(move || {
            let joined = nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from);
            let ok = joined.is_ok();
            let _ = ready_tx.send(joined);
            if !ok {
                return;
            }
            for request in rx {
                match request {
                    Make::Listen(addr, reply) => {
                        let _ = reply.send(listener(addr));
                    }
                    Make::Connecting(reply) => {
                        let _ = reply.send(connecting());
                    }
                }
            }
        })?;
        ready_rx.recv().map_err(|_| io::Error::other("the namespace thread ended"))??;
        Ok(Self { path: path.to_path_buf(), requests: Mutex::new(tx) })
    }

    fn send(&self, m: Make) -> io::Result<()> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(m)
            .map_err(|_| io::Error::other(format!("the socket thread of {} ended", self.path.display())))
    }
}

fn listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn connecting() -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    Ok(socket)
}

#[async_trait]
impl berth_lb::Sockets for NetnsSockets {
    fn listen(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Make::Listen(addr, tx))?;
        let std = rx.recv().map_err(|_| io::Error::other("the socket thread ended"))??;
        TcpListener::from_std(std)
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let (tx, rx) = oneshot::channel();
        self.send(Make::Connecting(tx))?;
        let socket = rx.await.map_err(|_| io::Error::other("the socket thread ended"))??;
        let stream: std::net::TcpStream = socket.into();
        TcpSocket::from_std_stream(stream).connect(addr).await
    }
}
