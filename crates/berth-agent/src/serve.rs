//! The accept loop of Berth's HTTP servers (the API's edge in `berth up`,
//! and each subnet's task metadata endpoint, which tasks can reach): a
//! request's head must arrive within the
//! header read timeout (which also closes idle keep-alive connections), at
//! most `max_connections` connections are open at once (the rest wait in
//! the kernel's listen backlog, costing Berth no descriptor), and the
//! connection limit stays well below the process's descriptor limit so
//! the agent (runc, nft, log files, sockets) always has descriptors left.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// How the edge treats connections.
#[derive(Debug, Clone, Copy)]
pub struct EdgeLimits {
    /// The longest a request's line and headers may take to arrive, and
    /// the longest an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit and returns
/// the soft limit in force afterwards.
pub fn raise_nofile_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => hard,
        Err(e) => {
            tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit");
            soft
        }
    }
}

/// The connection limit for `wanted` connections under a descriptor limit
/// of `nofile`: at most half the descriptors, so the rest stay the agent's.
pub fn connection_limit(wanted: usize, nofile: u64) -> usize {
    let half = usize::try_from(nofile / 2).unwrap_or(usize::MAX);
    wanted.min(half).max(1)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// open connections finish their requests (idle ones close at once) and
/// returns. Each request carries its peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: EdgeLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // `stop` tells connections to shut down gracefully; every connection
    // holds a `done` receiver, so `done_tx.closed()` is "all have ended".
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        // A permit first: past the limit, connections stay in the backlog.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and the like: wait for descriptors to free up.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.oneshot(req.map(axum::body::Body::new)).await.unwrap_or_else(|e| match e {})) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(permit);
            drop(done);
        });
    }
    drop(listener);
    drop(done_rx);
    drop(stop_rx);
    let _ = stop_tx.send(());
    done_tx.closed().await;
}

#[cfg(test)]
mod tests {
    use super::connection_limit;

    #[test]
    fn connections_leave_half_the_descriptors() {
        assert_eq!(connection_limit(4096, 1_048_576), 4096);
        assert_eq!(connection_limit(4096, 1024), 512);
        assert_eq!(connection_limit(10, 0), 1);
    }
}
