//! A signed AWS JSON 1.1 client over one keep-alive HTTP/1.1 connection,
//! as SDKs use. Requests are signed (testinfra's `aws-sigv4` signer)
//! before the clock starts: the timings are Berth's, not the signer's.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use berth_testinfra::sign::{Creds, sign};

const ECS: &str = "AmazonEC2ContainerServiceV20141113";
/// Reconnect rather than reuse a connection idle this long (the server
/// may be closing it).
const IDLE_REUSE: Duration = Duration::from_secs(5);

/// One connection's client; clone it for another thread (clones connect
/// on first use).
pub struct Client {
    host: String,
    creds: Creds,
    conn: Option<(BufReader<TcpStream>, Instant)>,
}

impl Clone for Client {
    fn clone(&self) -> Self {
        Self { host: self.host.clone(), creds: self.creds.clone(), conn: None }
    }
}

/// An answer: HTTP status, JSON body, and the time from the first byte
/// sent to the last byte received.
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
    pub took: Duration,
}

impl Client {
    pub fn new(endpoint: &str, creds: Creds) -> anyhow::Result<Self> {
        let host = endpoint.strip_prefix("http://").context("endpoint must be http://")?.trim_end_matches('/').to_owned();
        Ok(Self { host, creds, conn: None })
    }

    /// A signed ECS call.
    pub fn ecs(&mut self, op: &str, body: &serde_json::Value) -> anyhow::Result<Answer> {
        self.call(&format!("{ECS}.{op}"), body.to_string().into_bytes())
    }

    /// A signed ECS call that must answer 200; its JSON body.
    pub fn ecs_ok(&mut self, op: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let answer = self.ecs(op, body)?;
        if answer.status != 200 {
            bail!("{op} answered HTTP {}: {}", answer.status, answer.body);
        }
        Ok(answer.body)
    }

    fn call(&mut self, target: &str, body: Vec<u8>) -> anyhow::Result<Answer> {
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}/", self.host))
            .header("host", &self.host)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .body(body)?;
        sign(&mut req, &self.creds, "us-east-1", "ecs", SystemTime::now())?;
        let mut head = String::from("POST / HTTP/1.1\r\n");
        for (k, v) in req.headers() {
            head.push_str(&format!("{k}: {}\r\n", v.to_str()?));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", req.body().len()));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(req.body());

        let reused = self.conn.as_ref().is_some_and(|(_, at)| at.elapsed() < IDLE_REUSE);
        if !reused {
            self.conn = None;
        }
        match self.exchange(&bytes) {
            Ok(answer) => Ok(answer),
            // A reused connection the server had closed: nothing of the
            // answer arrived, so the request was not taken. Once more, fresh.
            Err(Exchange::Closed) if reused => {
                self.conn = None;
                self.exchange(&bytes).map_err(Exchange::into_error)
            }
            Err(e) => {
                self.conn = None;
                Err(e.into_error())
            }
        }
    }

    fn exchange(&mut self, request: &[u8]) -> Result<Answer, Exchange> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(&self.host).map_err(|e| Exchange::Failed(e.into()))?;
            stream.set_nodelay(true).map_err(|e| Exchange::Failed(e.into()))?;
            stream.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| Exchange::Failed(e.into()))?;
            self.conn = Some((BufReader::new(stream), Instant::now()));
        }
        let Some((reader, last_used)) = self.conn.as_mut() else { unreachable!("connected above") };
        let start = Instant::now();
        reader.get_mut().write_all(request).map_err(|_| Exchange::Closed)?;
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return Err(Exchange::Closed),
            Ok(_) => {}
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Exchange::Failed(anyhow::anyhow!("bad status line {line:?}")))?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        loop {
            line.clear();
            reader.read_line(&mut line).map_err(|e| Exchange::Failed(e.into()))?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
                match k.as_str() {
                    "content-length" => length = v.parse::<usize>().ok(),
                    "transfer-encoding" => chunked = v.contains("chunked"),
                    "connection" => close = v == "close",
                    _ => {}
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                reader.read_line(&mut line).map_err(|e| Exchange::Failed(e.into()))?;
                let size = usize::from_str_radix(line.trim(), 16).map_err(|e| Exchange::Failed(e.into()))?;
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).map_err(|e| Exchange::Failed(e.into()))?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            reader.read_exact(&mut body).map_err(|e| Exchange::Failed(e.into()))?;
        } else {
            reader.read_to_end(&mut body).map_err(|e| Exchange::Failed(e.into()))?;
            close = true;
        }
        let took = start.elapsed();
        *last_used = Instant::now();
        if close {
            self.conn = None;
        }
        let body = if body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|e| Exchange::Failed(e.into()))?
        };
        Ok(Answer { status, body, took })
    }
}

enum Exchange {
    /// The connection was closed before any of the answer came.
    Closed,
    Failed(anyhow::Error),
}

impl Exchange {
    fn into_error(self) -> anyhow::Error {
        match self {
            Exchange::Closed => anyhow::anyhow!("the server closed the connection without answering"),
            Exchange::Failed(e) => e,
        }
    }
}
