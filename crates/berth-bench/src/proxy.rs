//! Benchmark 6, the load balancer's data plane: the latency a berth-lb
//! HTTP listener adds to a request against a direct connection to the same
//! loopback hyper target, and requests per second through it with the
//! proxy on one core (one current-thread runtime), the direct connection's
//! figures measured in the same run as the baseline.
//!
//! No `berth up`: the target, the balancer and the client each run on a
//! thread of their own in this process, on loopback.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use berth_lb::{Action, Balancer, Config, Forward, HealthCheck, HostSockets, ListenerConfig, ListenerProtocol, TargetGroupConfig};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper_util::rt::TokioIo;

use crate::Ctx;
use crate::stats::{Summary, ms, percentile};

const BENCH: &str = "proxy";

/// A thread running a current-thread runtime until dropped; `tid` is its
/// Linux thread id (its CPU time is in /proc/<tid>/stat).
struct Runner {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    addr: SocketAddr,
    tid: i32,
}

impl Runner {
    /// Runs `serve` (which reports its address) on a new thread.
    fn start<F, Fut, K>(name: &str, serve: F) -> anyhow::Result<Self>
    where
        F: FnOnce(std::sync::mpsc::Sender<(SocketAddr, i32)>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = K>,
        K: Send + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let keep = serve(tx).await;
                let _ = stopped.await;
                drop(keep);
            });
        })?;
        let (addr, tid) = rx.recv_timeout(Duration::from_secs(10)).context("the thread did not start")?;
        Ok(Runner { stop: Some(stop), thread: Some(thread), addr, tid })
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A hyper HTTP/1.1 server answering `ok` to everything.
async fn target(tx: std::sync::mpsc::Sender<(SocketAddr, i32)>) -> tokio::task::JoinHandle<()> {
    let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else { return tokio::spawn(async {}) };
    let addr = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let _ = tx.send((addr, nix::unistd::gettid().as_raw()));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok")))) });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    })
}

/// A balancer with one HTTP listener forwarding to `target`.
async fn balancer(target: SocketAddr, tx: std::sync::mpsc::Sender<(SocketAddr, i32)>) -> Option<Balancer> {
    let lb = Balancer::new(HostSockets);
    let tg = TargetGroupConfig {
        // One check a minute: the figures are of the requests.
        health_check: HealthCheck { interval: Duration::from_secs(60), ..HealthCheck::http("/") },
        ..TargetGroupConfig::http("bench-tg", &[target])
    };
    let listener = ListenerConfig {
        id: "bench-listener".into(),
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        protocol: ListenerProtocol::Http,
        idle_timeout: Duration::from_secs(60),
        rules: Vec::new(),
        default_action: Action::Forward(Forward::to("bench-tg")),
    };
    let errors = lb.apply(Config { listeners: vec![listener], target_groups: vec![tg] });
    if !errors.is_empty() {
        eprintln!("[proxy] the balancer did not start: {errors:?}");
        return None;
    }
    let addr = *lb.local_addrs().get("bench-listener")?;
    let _ = tx.send((addr, nix::unistd::gettid().as_raw()));
    Some(lb)
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(send)
}

/// One GET on a keep-alive connection, read through; its time.
async fn once(send: &mut Sender) -> anyhow::Result<Duration> {
    let began = Instant::now();
    send.ready().await?;
    let resp = send.send_request(hyper::Request::get("/").header("host", "bench.test").body(Empty::new())?).await?;
    anyhow::ensure!(resp.status() == 200, "HTTP {}", resp.status());
    resp.into_body().collect().await?;
    Ok(began.elapsed())
}

/// `n` sequential requests on one connection each to `direct` and `via`,
/// in alternating rounds (so drift on a shared machine hits both alike).
async fn latencies(direct: SocketAddr, via: SocketAddr, n: usize) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let (mut d, mut v) = (connect(direct).await?, connect(via).await?);
    for _ in 0..200.min(n) {
        once(&mut d).await?;
        once(&mut v).await?;
    }
    let (mut ds, mut vs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let rounds = 10;
    for _ in 0..rounds {
        for _ in 0..n / rounds {
            ds.push(ms(once(&mut d).await?));
        }
        for _ in 0..n / rounds {
            vs.push(ms(once(&mut v).await?));
        }
    }
    Ok((ds, vs))
}

/// Requests per second from `conns` keep-alive connections for `secs`.
async fn load(addr: SocketAddr, conns: usize, secs: Duration) -> anyhow::Result<(f64, u64)> {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + secs;
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conns {
        let done = done.clone();
        let mut send = connect(addr).await?;
        tasks.spawn(async move {
            while Instant::now() < until {
                once(&mut send).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let n = done.load(Ordering::Relaxed);
    Ok((n as f64 / began.elapsed().as_secs_f64(), n))
}

pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (n, conns, secs) = (ctx.opts.proxy_requests, ctx.opts.proxy_connections, Duration::from_secs(ctx.opts.proxy_seconds));
    let target = Runner::start("bench-target", target)?;
    let target_addr = target.addr;
    let proxy = Runner::start("bench-lb", move |tx| balancer(target_addr, tx))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    eprintln!("[proxy] {n} sequential requests direct and through berth-lb (target {}, listener {})", target.addr, proxy.addr);
    let (direct, via) = rt.block_on(latencies(target.addr, proxy.addr, n))?;
    eprintln!("[proxy] {conns} keep-alive connections for {} s, direct then through berth-lb", secs.as_secs());
    // The load comes from two client threads, so the one-thread proxy
    // (or target) is what limits it.
    let load_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (direct_rate, _) = load_rt.block_on(load(target.addr, conns, secs))?;
    let cpu_before = crate::procfs::thread_cpu_seconds(proxy.tid).context("the proxy thread's CPU time")?;
    let (via_rate, via_n) = load_rt.block_on(load(proxy.addr, conns, secs))?;
    let cpu = crate::procfs::thread_cpu_seconds(proxy.tid).context("the proxy thread's CPU time")? - cpu_before;
    drop(proxy);
    drop(target);

    let r = &mut ctx.report;
    let what = "GET / of a 2-byte answer on one keep-alive connection, sequential, client to answer read through";
    r.samples("proxy.direct.latency", "ms", &format!("{what}: straight to the loopback hyper target"), &direct);
    r.samples("proxy.lb.latency", "ms", &format!("{what}: through a berth-lb HTTP listener (forward to a one-target group, X-Forwarded-*, trace id, pooled upstream connection)"), &via);
    r.ratio("proxy.lb.latency", "proxy.direct.latency");
    let (mut sd, mut sv) = (direct.clone(), via.clone());
    sd.sort_by(f64::total_cmp);
    sv.sort_by(f64::total_cmp);
    let added = |p: f64| (percentile(&sv, p) - percentile(&sd, p)) * 1000.0;
    r.single("proxy.added_latency.p50", "µs", "proxy.lb.latency p50 minus proxy.direct.latency p50", added(50.0));
    r.single("proxy.added_latency.p99", "µs", "proxy.lb.latency p99 minus proxy.direct.latency p99", added(99.0));
    r.single("proxy.direct.rps", "req/s", &format!("{conns} keep-alive connections from two client threads for {} s straight to the target (one current-thread runtime)", secs.as_secs()), direct_rate);
    r.single(
        "proxy.lb.rps",
        "req/s",
        "the same through berth-lb, whose listener runs on one current-thread runtime (at most one core); client, proxy and target share the machine",
        via_rate,
    );
    r.ratio("proxy.lb.rps", "proxy.direct.rps");
    if cpu > 0.0 {
        r.single("proxy.lb.rps_per_core", "req/s", "requests through berth-lb per CPU-second of its runtime thread (/proc/self/task/<tid>/stat) during that run", via_n as f64 / cpu);
    }
    if let (Some(d), Some(v)) = (Summary::of(&direct), Summary::of(&via)) {
        r.note(BENCH, format!("medians: direct {:.3} ms, through berth-lb {:.3} ms; proxy thread busy {:.0} % of the throughput run", d.median, v.median, 100.0 * cpu / secs.as_secs_f64()));
    }
    Ok(())
}
