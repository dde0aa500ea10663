//! The DNS server on loopback, asked over UDP and TCP with hickory's own
//! message codec: A and SRV answers, NXDOMAIN, REFUSED where there is no
//! egress, and forwarding to a second server this test starts (never a
//! resolver outside the machine).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::net::{Ipv4Addr, SocketAddr};

use berth_dns::{DnsServer, Forward, MAX_ANSWERS, Records, SrvTarget};
use hickory_server::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

fn query(name: &str, kind: RecordType) -> Vec<u8> {
    let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    m.to_vec().unwrap()
}

async fn ask_udp(server: SocketAddr, name: &str, kind: RecordType) -> Message {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(&query(name, kind), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(std::time::Duration::from_secs(5), udp.recv_from(&mut buf)).await.expect("an answer").unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, 4242);
    m
}

async fn ask_tcp(server: SocketAddr, name: &str, kind: RecordType) -> Message {
    let mut tcp = TcpStream::connect(server).await.unwrap();
    let q = query(name, kind);
    tcp.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
    tcp.write_all(&q).await.unwrap();
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(&mut body).await.unwrap();
    Message::from_vec(&body).unwrap()
}

fn addresses(m: &Message) -> Vec<Ipv4Addr> {
    m.answers.iter().filter_map(|r| if let RData::A(a) = &r.data { Some(a.0) } else { None }).collect()
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 89, 0, last)
}

fn cloud_map() -> Records {
    let mut r = Records::new();
    r.add_zone("corp.local", 15)
        .add_a("api.corp.local", (2..=11).map(ip), 10, MAX_ANSWERS)
        .add_a("t2.api.corp.local", [ip(2)], 10, MAX_ANSWERS)
        .add_srv("api.corp.local", [SrvTarget { priority: 1, weight: 1, port: 8080, target: "t2.api.corp.local".into() }], 20, MAX_ANSWERS);
    r
}

#[tokio::test]
async fn answers_its_records_and_refuses_or_forwards_the_rest() {
    // The "host resolver": a second server that knows example.test.
    let upstream = DnsServer::new();
    let mut outside = Records::new();
    outside.add_a("www.example.test", [Ipv4Addr::new(192, 0, 2, 7)], 300, MAX_ANSWERS);
    upstream.set_records(outside);
    let upstream_addr = upstream.listen("127.0.0.1:0".parse().unwrap(), Forward::Refuse).await.unwrap();

    // Two listeners of one server: a subnet without egress, one with.
    let server = DnsServer::new();
    server.set_records(cloud_map());
    let closed = server.listen("127.0.0.1:0".parse().unwrap(), Forward::Refuse).await.unwrap();
    let open = server.listen("127.0.0.2:0".parse().unwrap(), Forward::To(vec![upstream_addr])).await.unwrap();
    assert_eq!(server.listening().len(), 2);

    // A: up to eight of the ten, the TTL as configured, in any case.
    let a = ask_udp(closed, "API.corp.local.", RecordType::A).await;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(a.metadata.authoritative);
    assert_eq!(addresses(&a).len(), 8);
    assert!(a.answers.iter().all(|r| r.ttl == 10));
    // Answers rotate: over a few queries every address comes first.
    let mut firsts = std::collections::BTreeSet::new();
    for _ in 0..10 {
        firsts.insert(addresses(&ask_udp(closed, "api.corp.local.", RecordType::A).await)[0]);
    }
    assert_eq!(firsts.len(), 10);

    // SRV: priority weight port target, the target's A in the additional section.
    let srv = ask_tcp(closed, "api.corp.local.", RecordType::SRV).await;
    let RData::SRV(s) = &srv.answers[0].data else { panic!("{srv:?}") };
    assert_eq!((s.priority, s.weight, s.port, s.target.to_ascii()), (1, 1, 8080, "t2.api.corp.local.".to_owned()));
    let extra: Vec<_> = srv.additionals.iter().filter(|r| r.record_type() == RecordType::A).collect();
    assert_eq!(extra.len(), 1);
    assert_eq!(extra[0].name.to_ascii(), "t2.api.corp.local.");

    // NXDOMAIN in a zone of ours, with its SOA; NODATA for another type.
    let nx = ask_udp(closed, "nope.corp.local.", RecordType::A).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
    let nodata = ask_udp(closed, "api.corp.local.", RecordType::AAAA).await;
    assert_eq!((nodata.metadata.response_code, nodata.answers.len()), (ResponseCode::NoError, 0));

    // Other names: refused without egress, forwarded with it.
    let refused = ask_udp(closed, "www.example.test.", RecordType::A).await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    let forwarded = ask_udp(open, "www.example.test.", RecordType::A).await;
    assert_eq!(forwarded.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&forwarded), [Ipv4Addr::new(192, 0, 2, 7)]);
    let forwarded = ask_tcp(open, "www.example.test.", RecordType::A).await;
    assert_eq!(addresses(&forwarded), [Ipv4Addr::new(192, 0, 2, 7)]);
    // The upstream's own answer is relayed, NXDOMAIN... here REFUSED.
    let relayed = ask_udp(open, "missing.example.test.", RecordType::A).await;
    assert_eq!(relayed.metadata.response_code, ResponseCode::Refused);

    // New records are answered at once; a dropped listener stops answering.
    let mut moved = Records::new();
    moved.add_zone("corp.local", 15).add_a("api.corp.local", [ip(50)], 5, MAX_ANSWERS);
    server.set_records(moved);
    assert_eq!(addresses(&ask_udp(open, "api.corp.local.", RecordType::A).await), [ip(50)]);
    server.stop(closed);
    assert_eq!(server.listening(), [open]);
    assert!(TcpStream::connect(closed).await.is_err());
}

#[tokio::test]
async fn a_dead_upstream_is_a_server_failure() {
    // A port nobody answers on: bound, then closed.
    let dead = UdpSocket::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let server = DnsServer::bind(vec![("127.0.0.1:0".parse().unwrap(), Forward::To(vec![dead]))]).await.unwrap();
    let addr = server.listening()[0];
    let m = ask_udp(addr, "anything.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}
