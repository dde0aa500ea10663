//! HTTPS listeners (TLS termination, SNI, ALPN h2) and TCP listeners.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use berth_lb::{Certificate, Config, HealthCheck, HealthState, ListenerConfig, ListenerProtocol, TargetGroupConfig, TargetProtocol};
use common::*;
use http::Request;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A test CA and certificates it signs.
struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "berth-lb test CA");
        Ca { issuer: rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap() }
    }

    fn leaf(&self, names: &[&str]) -> (Certificate, CertificateDer<'static>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (Certificate { chain_pem: format!("{}{}", cert.pem(), self.issuer.pem()), key_pem: key.serialize_pem() }, cert.der().clone())
    }

    fn client(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

#[tokio::test]
async fn https_with_sni_over_two_certificates_and_h2_by_alpn() {
    let t = target("t").await;
    let ca = Ca::new();
    let (default_cert, default_der) = ca.leaf(&["default.test"]);
    let (shop_cert, shop_der) = ca.leaf(&["*.shop.test", "shop.test"]);
    let listener = ListenerConfig {
        protocol: ListenerProtocol::Https { certificates: vec![default_cert, shop_cert] },
        ..http_listener("https", forward("tg"))
    };
    let (lb, addr) = start(Config { listeners: vec![listener], target_groups: vec![group("tg", &[&t])] });
    let connector = ca.client(&[b"h2", b"http/1.1"]);
    for (sni, want) in [("www.shop.test", &shop_der), ("shop.test", &shop_der), ("default.test", &default_der)] {
        let tcp = tokio::net::TcpStream::connect(addr("https")).await.unwrap();
        // The client verifies the chain against the test CA and the name.
        let tls = connector.connect(ServerName::try_from(sni.to_owned()).unwrap(), tcp).await.unwrap();
        let (_, session) = tls.get_ref();
        assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]), "ALPN chose h2");
        assert_eq!(&session.peer_certificates().unwrap()[0], want, "SNI {sni} got its certificate");
        let (mut send, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        let resp = send.send_request(Request::get(format!("https://{sni}/echo-headers")).body(empty()).unwrap()).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let r = read(resp).await;
        assert_eq!(r.status, 200);
        assert!(r.body.contains("x-forwarded-proto: https"), "{}", r.body);
        assert!(r.body.contains(&format!("host: {sni}")), "{}", r.body);
    }
    // A name no certificate covers gets the default one (and fails the
    // client's name check): the handshake is refused by the client.
    let tcp = tokio::net::TcpStream::connect(addr("https")).await.unwrap();
    assert!(connector.connect(ServerName::try_from("other.test").unwrap(), tcp).await.is_err());
    // HTTP/1.1 by ALPN works as well.
    let tcp = tokio::net::TcpStream::connect(addr("https")).await.unwrap();
    let tls = ca.client(&[b"http/1.1"]).connect(ServerName::try_from("shop.test").unwrap(), tcp).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let r = read(send.send_request(Request::get("/").header("host", "shop.test").body(empty()).unwrap()).await.unwrap()).await;
    assert_eq!(r.body, "t");
    assert_eq!(lb.listener_counters()["https"].tls_negotiation_errors, 1, "the refused handshake was counted");
}

#[tokio::test]
async fn a_broken_certificate_is_refused_and_the_old_ones_stay() {
    let t = target("t").await;
    let ca = Ca::new();
    let (good, _) = ca.leaf(&["good.test"]);
    let https = |certs: Vec<Certificate>| ListenerConfig { protocol: ListenerProtocol::Https { certificates: certs }, ..http_listener("https", forward("tg")) };
    let (lb, addr) = start(Config { listeners: vec![https(vec![good])], target_groups: vec![group("tg", &[&t])] });
    let broken = Certificate { chain_pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(), key_pem: String::new() };
    let errors = lb.apply(Config { listeners: vec![https(vec![broken])], target_groups: vec![group("tg", &[&t])] });
    assert_eq!(errors.len(), 1, "{errors:?}");
    let tcp = tokio::net::TcpStream::connect(addr("https")).await.unwrap();
    ca.client(&[b"http/1.1"]).connect(ServerName::try_from("good.test").unwrap(), tcp).await.unwrap();
}

/// A TCP echo server prefixing its name.
async fn echo(name: &'static str) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let mut out = format!("{name}:").into_bytes();
                    out.extend_from_slice(&buf[..n]);
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn tcp_listeners_pass_bytes_through_to_healthy_targets() {
    let (a, _ta) = echo("a").await;
    let dead = refused_addr();
    let tg = TargetGroupConfig {
        protocol: TargetProtocol::Tcp,
        health_check: HealthCheck { interval: Duration::from_millis(100), healthy_threshold: 2, unhealthy_threshold: 2, ..HealthCheck::tcp() },
        ..TargetGroupConfig::http("nlb-tg", &[a, dead])
    };
    let listener = ListenerConfig { protocol: ListenerProtocol::Tcp, ..http_listener("tcp", forward("nlb-tg")) };
    let (lb, addr) = start(Config { listeners: vec![listener], target_groups: vec![tg] });
    eventually(Duration::from_secs(10), "a healthy, the dead one unhealthy", || {
        let h = lb.health();
        h.iter().any(|r| r.addr == a && r.state == HealthState::Healthy) && h.iter().any(|r| r.addr == dead && r.state == HealthState::Unhealthy)
    })
    .await;
    for i in 0..4 {
        let mut s = tokio::net::TcpStream::connect(addr("tcp")).await.unwrap();
        let msg = format!("ping {i}");
        s.write_all(msg.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], format!("a:{msg}").as_bytes(), "only the healthy target gets flows");
    }
    assert_eq!(lb.counters()["nlb-tg"].new_flow_count, 4);
}

#[tokio::test]
async fn https_target_groups_speak_tls_to_targets_without_verifying_them() {
    // A hyper target behind TLS with a self-signed certificate no one trusts.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["target.internal".to_string()]).unwrap().self_signed(&key).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else { return };
                let svc = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let status = if req.uri().path() == "/health" { 202 } else { 200 };
                    let mut r = http::Response::new(full("over tls"));
                    *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    Ok::<_, std::convert::Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tls), svc).await;
            });
        }
    });
    let tg = TargetGroupConfig {
        protocol: TargetProtocol::Https,
        health_check: HealthCheck {
            protocol: berth_lb::HealthCheckProtocol::Https,
            matcher: berth_lb::Matcher::parse("200-204").unwrap(),
            ..fast_health()
        },
        ..TargetGroupConfig::http("tls-tg", &[addr])
    };
    let (lb, laddr) = start(Config { listeners: vec![http_listener("l", forward("tls-tg"))], target_groups: vec![tg] });
    eventually(Duration::from_secs(10), "the TLS target healthy", || lb.health().iter().all(|r| r.state == HealthState::Healthy)).await;
    assert_eq!(get(laddr("l"), "/").await.body, "over tls");
    task.abort();
}

#[tokio::test]
async fn a_listener_changing_protocol_or_id_keeps_its_socket() {
    let t = target("t").await;
    let ca = Ca::new();
    let (cert, _) = ca.leaf(&["lb.test"]);
    let tgs = || vec![group("tg", &[&t])];
    let plain = http_listener("l", forward("tg"));
    let (lb, addr) = start(Config { listeners: vec![plain.clone()], target_groups: tgs() });
    let port = addr("l");
    assert_eq!(get(port, "/").await.body, "t");
    // HTTP to HTTPS on the same address: the socket is handed over.
    let https = ListenerConfig { protocol: ListenerProtocol::Https { certificates: vec![cert] }, ..plain.clone() };
    assert!(lb.apply(Config { listeners: vec![https], target_groups: tgs() }).is_empty());
    assert_eq!(lb.local_addrs()["l"], port);
    let tcp = tokio::net::TcpStream::connect(port).await.unwrap();
    let tls = ca.client(&[b"http/1.1"]).connect(ServerName::try_from("lb.test").unwrap(), tcp).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    assert_eq!(read(send.send_request(Request::get("/").header("host", "lb.test").body(empty()).unwrap()).await.unwrap()).await.body, "t");
    // Another listener (id) on the same address in the same apply.
    let other = ListenerConfig { id: "l2".into(), ..plain };
    assert!(lb.apply(Config { listeners: vec![other], target_groups: tgs() }).is_empty());
    assert_eq!(lb.local_addrs()["l2"], port);
    assert_eq!(get(port, "/").await.body, "t");
    let counters = lb.listener_counters();
    assert_eq!((counters["l"].new_connection_count, counters["l2"].new_connection_count), (2, 1));
    eventually(Duration::from_secs(5), "connections closed", || lb.listener_counters()["l2"].active_connection_count == 0).await;
}
