//! The HTTP edge against clients that hold connections: half-sent heads
//! are cut off after `--header-read-timeout`, bodies sent a byte a second
//! get RequestTimeoutException after `--body-read-timeout`, and idle
//! connections past `--max-connections` wait in the backlog instead of
//! costing Berth descriptors. Loopback only; every wait is bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_testinfra::server::BerthProcess;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

fn start(data: &Path, extra: &[&str]) -> BerthProcess {
    let mut args = vec!["--no-agent", "--header-read-timeout", "1", "--body-read-timeout", "2"];
    args.extend_from_slice(extra);
    BerthProcess::start(bin(), data, &args, &[]).unwrap()
}

fn host(b: &BerthProcess) -> String {
    b.endpoint.strip_prefix("http://").unwrap().trim_end_matches('/').to_owned()
}

/// Reads until the server closes (or 10 s pass) and returns what came.
fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the connection open: {e} after {:?}", started.elapsed()),
        }
    }
    (got, started.elapsed())
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

#[test]
fn half_sent_heads_and_trickled_bodies_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = start(&dir.path().join("data"), &[]);
    let host = host(&b);

    // Half a head, then nothing: closed after the 1 s header timeout.
    let mut s = TcpStream::connect(&host).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: berth\r\nX-Amz-Tar").unwrap();
    let (_, waited) = read_until_closed(&mut s);
    assert!(waited >= Duration::from_millis(800) && waited < Duration::from_secs(5), "closed after {waited:?}");

    // A connection that never sends a byte, and an idle keep-alive one
    // after a full answer: both closed after the same timeout.
    let mut s = TcpStream::connect(&host).unwrap();
    let (got, waited) = read_until_closed(&mut s);
    assert!(got.is_empty() && waited < Duration::from_secs(5), "closed after {waited:?}");
    let mut s = TcpStream::connect(&host).unwrap();
    s.write_all(b"GET /nothing-here HTTP/1.1\r\nHost: berth\r\n\r\n").unwrap();
    let (got, waited) = read_until_closed(&mut s);
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 "), "{}", String::from_utf8_lossy(&got));
    assert!(waited < Duration::from_secs(5), "idle keep-alive closed after {waited:?}");

    // Headers, then a byte a second of a 100-byte body: RequestTimeout
    // after the 2 s body timeout, in the request's protocol (ECS JSON).
    let mut s = TcpStream::connect(&host).unwrap();
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-amz-json-1.1\r\n\
          X-Amz-Target: AmazonEC2ContainerServiceV20141113.ListClusters\r\nContent-Length: 100\r\n\r\n{",
    )
    .unwrap();
    let mut w = s.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..15 {
            std::thread::sleep(Duration::from_secs(1));
            if w.write_all(b" ").is_err() {
                return;
            }
        }
    });
    let (got, waited) = read_until_closed(&mut s);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("RequestTimeoutException"), "{text}");
    assert!(waited < Duration::from_secs(6), "answered after {waited:?}");
    trickle.join().unwrap();

    // A stalled client does not hold up shutdown past the header timeout.
    let mut s = TcpStream::connect(&host).unwrap();
    s.write_all(b"POST / HTT").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert!(b.terminate().unwrap().success());
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
}

#[test]
fn idle_connections_past_the_limit_cost_no_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(&dir.path().join("data"), &["--max-connections", "20"]);
    let host = host(&b);
    let (status, _) = b.ecs("ListClusters", &serde_json::json!({})).unwrap();
    assert_eq!(status, 200);
    let baseline = open_fds(b.pid());

    // 200 connections that send nothing: the kernel completes them all,
    // Berth accepts 20 at a time and closes each after the 1 s timeout.
    let idle: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(&host).unwrap()).collect();
    let client = {
        let endpoint = b.endpoint.clone();
        let creds = b.creds().unwrap();
        std::thread::spawn(move || {
            let started = Instant::now();
            let target = "AmazonEC2ContainerServiceV20141113.ListClusters";
            let r = berth_testinfra::server::call(&endpoint, target, b"{}", Some((&creds, "us-east-1", "ecs")));
            (r.map(|(status, _)| status).ok(), started.elapsed())
        })
    };
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    while !client.is_finished() && Instant::now() < deadline {
        most = most.max(open_fds(b.pid()));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, waited) = client.join().unwrap();
    assert_eq!(status, Some(200), "a signed ListClusters behind 200 idle connections answers (after {waited:?})");
    assert!(waited < Duration::from_secs(30), "answered after {waited:?}");
    assert!(most <= baseline + 20 + 5, "at most {most} descriptors open (baseline {baseline}, limit 20)");
    drop(idle);
}
