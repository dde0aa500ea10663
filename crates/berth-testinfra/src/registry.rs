//! A real image registry for tests: Debian's `docker-registry` on a free
//! loopback port with its own storage, killed when dropped; test images
//! built from Debian's busybox-static as OCI layouts (written here, byte
//! for byte) and pushed into it with `skopeo`; `docker save` tarballs
//! written by hand. Auth: none, htpasswd (basic), or bearer tokens from a
//! small token server of ours.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest as _, Sha256};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const SKOPEO_BIN: &str = "/usr/bin/skopeo";
pub const BUSYBOX: &str = "/bin/busybox";
/// The busybox applets a test image links to `/bin/busybox`.
pub const APPLETS: &[&str] = &[
    "sh", "echo", "sleep", "cat", "ls", "true", "false", "env", "id", "kill", "ps", "mkdir", "rm", "test", "head",
    "yes", "dd", "wc", "grep", "stat", "touch", "hostname", "httpd", "wget", "nc", "ip",
];

/// True when everything registry tests need is here. When something is
/// missing it says so loudly on stderr and returns false, so the test can
/// return early; under CI (`CI=true`) a missing piece is a failure instead.
pub fn registry_tools_available(needs_root: bool) -> bool {
    let mut missing: Vec<String> = [REGISTRY_BIN, SKOPEO_BIN, BUSYBOX]
        .iter()
        .filter(|p| !Path::new(p).exists())
        .map(|p| p.to_string())
        .collect();
    if needs_root && !nix::unistd::geteuid().is_root() {
        missing.push("root (mknod, chown, trusted.* xattrs)".to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    let message = format!("needs {} (install: docker-registry skopeo busybox-static)", missing.join(", "));
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}: missing in CI, where every test must run");
    eprintln!("SKIPPED: {message}");
    false
}

/// A running `docker-registry`, killed (by PID) and its storage removed
/// when dropped.
pub struct Registry {
    child: Child,
    /// Declared before `dir`: stopped before its key files go.
    _token_server: Option<TokenServer>,
    dir: tempfile::TempDir,
    port: u16,
    credentials: Option<(String, String)>,
}

/// How a test registry wants clients to authenticate.
enum Auth {
    None,
    /// HTTP basic auth against an htpasswd file (bcrypt).
    Basic,
    /// Bearer tokens from a token server of ours, which wants basic auth.
    Token,
}

impl Registry {
    /// An open registry (no auth).
    pub fn start() -> anyhow::Result<Self> {
        Self::start_retrying(Auth::None, None)
    }

    /// A registry that wants HTTP basic auth (htpasswd, bcrypt) as `user`.
    pub fn start_with_basic_auth(user: &str, password: &str) -> anyhow::Result<Self> {
        Self::start_retrying(Auth::Basic, Some((user.to_owned(), password.to_owned())))
    }

    /// A registry that wants bearer tokens (the `WWW-Authenticate: Bearer`
    /// challenge), issued by a token server on loopback to `user`.
    pub fn start_with_token_auth(user: &str, password: &str) -> anyhow::Result<Self> {
        Self::start_retrying(Auth::Token, Some((user.to_owned(), password.to_owned())))
    }

    /// Starts, trying another port if another process took the free one
    /// between our probe and the registry's bind.
    fn start_retrying(auth: Auth, credentials: Option<(String, String)>) -> anyhow::Result<Self> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_inner(&auth, credentials.clone()) {
                Err(e) if attempt < 3 && format!("{e:#}").contains("address already in use") => continue,
                result => return result,
            }
        }
    }

    fn start_inner(auth: &Auth, credentials: Option<(String, String)>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("berth-registry-").tempdir()?;
        let port = free_port()?;
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage = dir.path().join("storage").display(),
        );
        let mut token_server = None;
        match (auth, &credentials) {
            (Auth::Basic, Some((user, password))) => {
                let hash = bcrypt::hash(password, 4).context("bcrypt")?;
                let htpasswd = dir.path().join("htpasswd");
                fs::write(&htpasswd, format!("{user}:{hash}\n"))?;
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            (Auth::Token, Some((user, password))) => {
                let server = TokenServer::start(dir.path(), user, password)?;
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {TOKEN_SERVICE}\n    \
                     issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    server.port,
                    server.cert_pem.display()
                ));
                token_server = Some(server);
            }
            _ => {}
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config)?;
        let log = fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {REGISTRY_BIN}"))?;
        let mut registry = Self { child, _token_server: token_server, dir, port, credentials };
        registry.wait_ready()?;
        Ok(registry)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("docker-registry exited ({status}):\n{}", self.log());
            }
            if matches!(self.get_status("/v2/"), Ok(200 | 401)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("docker-registry did not answer within 30 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The HTTP status of a plain GET, without credentials.
    pub fn get_status(&self, path: &str) -> anyhow::Result<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.host())?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        let text = String::from_utf8_lossy(&head);
        text.get(9..12).and_then(|s| s.parse().ok()).with_context(|| format!("bad status line {text:?}"))
    }

    /// `127.0.0.1:PORT`, the registry part of references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/NAME` (NAME as `repo:tag` or `repo@digest`).
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Pushes `tag` of the OCI layout to `NAME` (`repo:tag`) with skopeo.
    pub fn push(&self, layout: &OciLayout, tag: &str, name: &str) -> anyhow::Result<()> {
        self.push_with(layout, tag, name, &[])
    }

    /// Like [`Self::push`], with extra skopeo flags (`--all`,
    /// `--dest-compress-format zstd`, ...).
    pub fn push_with(&self, layout: &OciLayout, tag: &str, name: &str, flags: &[&str]) -> anyhow::Result<()> {
        let mut cmd = Command::new(SKOPEO_BIN);
        cmd.args(["--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"]).args(flags);
        if let Some((user, password)) = &self.credentials {
            cmd.arg("--dest-creds").arg(format!("{user}:{password}"));
        }
        let out = cmd
            .arg(format!("oci:{}:{tag}", layout.path().display()))
            .arg(format!("docker://{}", self.reference(name)))
            .env("HOME", self.dir.path()) // keep skopeo's caches out of the real home
            .output()
            .context("cannot run skopeo")?;
        ensure!(out.status.success(), "skopeo copy to {name} failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    /// Uploads a blob as is, over the distribution API (skopeo would
    /// compress an uncompressed layer). Open registries only.
    pub fn upload_blob(&self, repository: &str, bytes: &[u8]) -> anyhow::Result<String> {
        let digest = sha256_digest(bytes);
        let (status, location) = self.http("POST", &format!("/v2/{repository}/blobs/uploads/"), None, &[])?;
        ensure!(status == 202, "starting an upload: HTTP {status}");
        let location = location.context("no upload Location")?;
        let path = location.strip_prefix(&format!("http://{}", self.host())).unwrap_or(&location);
        let separator = if path.contains('?') { '&' } else { '?' };
        let (status, _) = self.http("PUT", &format!("{path}{separator}digest={digest}"), None, bytes)?;
        ensure!(status == 201, "finishing an upload: HTTP {status}");
        Ok(digest)
    }

    /// Puts a manifest (or index) under `reference` (a tag or digest).
    pub fn put_manifest(&self, repository: &str, reference: &str, media_type: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let (status, _) = self.http("PUT", &format!("/v2/{repository}/manifests/{reference}"), Some(media_type), bytes)?;
        ensure!(status == 201, "putting manifest {repository}:{reference}: HTTP {status}");
        Ok(())
    }

    /// One HTTP/1.1 request; the status and the `Location` header.
    fn http(&self, method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> anyhow::Result<(u16, Option<String>)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n", self.host(), body.len());
        if let Some(content_type) = content_type {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response);
        let status = text.get(9..12).and_then(|s| s.parse().ok()).with_context(|| format!("bad response {text:?}"))?;
        let location = text
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| v.trim().to_owned()));
        Ok((status, location))
    }

    /// Everything the registry logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Access-log lines as (method, path, status).
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.log()
            .lines()
            .filter_map(|line| {
                let request = line.split('"').nth(1)?;
                let mut parts = request.split(' ');
                let (method, path) = (parts.next()?, parts.next()?);
                let status = line.split('"').nth(2)?.split_whitespace().next()?.parse().ok()?;
                Some((method.to_owned(), path.to_owned(), status))
            })
            .collect()
    }

    /// How many successful GETs of blob `digest` the registry served.
    pub fn blob_downloads(&self, digest: &str) -> usize {
        self.requests()
            .iter()
            .filter(|(m, p, s)| m == "GET" && *s == 200 && p.contains("/blobs/") && p.ends_with(digest))
            .count()
    }

    /// Successful blob GETs of any blob.
    pub fn all_blob_downloads(&self) -> usize {
        self.requests().iter().filter(|(m, p, s)| m == "GET" && *s == 200 && p.contains("/blobs/")).count()
    }

    /// Where the registry keeps a blob's bytes (to tamper with them).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.path().join("storage/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }

    /// The TCP addresses the registry process listens on.
    pub fn listening_addrs(&self) -> anyhow::Result<Vec<String>> {
        listening_addrs(self.child.id())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TOKEN_SERVICE: &str = "berth-test-registry";
const TOKEN_ISSUER: &str = "berth-test-token-server";

/// A Docker-style token server: `GET /token?service=..&scope=..` with
/// basic auth answers `{"token": JWT}`, the JWT RS256-signed (by the
/// `openssl` command) with a self-signed certificate the registry trusts.
struct TokenServer {
    port: u16,
    cert_pem: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    fn start(dir: &Path, user: &str, password: &str) -> anyhow::Result<Self> {
        let (key, cert_pem, cert_der) = (dir.join("token.key"), dir.join("token.crt"), dir.join("token.der"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=berth-test-token"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert_pem)
            .output()
            .context("cannot run openssl")?;
        ensure!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
        let out = Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(&cert_pem).arg("-out").arg(&cert_der).output()?;
        ensure!(out.status.success(), "openssl x509: {}", String::from_utf8_lossy(&out.stderr));
        let issuer = TokenIssuer {
            key,
            cert: STANDARD.encode(fs::read(&cert_der)?),
            basic: format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))),
            user: user.to_owned(),
        };
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                if let Ok(mut stream) = stream {
                    let _ = issuer.serve(&mut stream);
                }
            }
        });
        Ok(Self { port, cert_pem, stop, thread: Some(thread) })
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct TokenIssuer {
    key: PathBuf,
    /// Base64 DER of the certificate, for the JWT's `x5c`.
    cert: String,
    /// The `Authorization` header value that gets a token.
    basic: String,
    user: String,
}

impl TokenIssuer {
    fn serve(&self, stream: &mut TcpStream) -> anyhow::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf)?;
            ensure!(n > 0, "connection closed");
            request.extend_from_slice(&buf[..n]);
        }
        let request = String::from_utf8_lossy(&request);
        let target = request.split(' ').nth(1).unwrap_or_default();
        let authorized = request.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| k.eq_ignore_ascii_case("authorization") && v.trim() == self.basic)
        });
        let (status, body) = if authorized {
            ("200 OK", json!({"token": self.token(target)?, "expires_in": 600}).to_string())
        } else {
            ("401 Unauthorized", json!({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}).to_string())
        };
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        Ok(())
    }

    /// A JWT granting every scope asked for in the query of `target`.
    fn token(&self, target: &str) -> anyhow::Result<String> {
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let access: Vec<_> = query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("scope="))
            .map(percent_decode)
            .filter_map(|scope| {
                let mut parts = scope.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [self.cert]});
        let claims = json!({
            "iss": TOKEN_ISSUER, "sub": self.user, "aud": TOKEN_SERVICE,
            "exp": now + 600, "nbf": now - 10, "iat": now - 10, "jti": format!("{now}-{}", access.len()),
            "access": access,
        });
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut openssl = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        openssl.stdin.take().context("stdin")?.write_all(signing_input.as_bytes())?;
        let out = openssl.wait_with_output()?;
        ensure!(out.status.success(), "openssl dgst failed");
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(out.stdout)))
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%').then(|| text.get(i + 1..i + 3)).flatten();
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Listening TCP sockets owned by `pid`, from /proc, as `addr:port`.
fn listening_addrs(pid: u32) -> anyhow::Result<Vec<String>> {
    let mut inodes = Vec::new();
    for fd in fs::read_dir(format!("/proc/{pid}/fd"))? {
        let link = fs::read_link(fd?.path()).unwrap_or_default();
        if let Some(inode) = link.to_str().and_then(|l| l.strip_prefix("socket:[")).and_then(|l| l.strip_suffix(']')) {
            inodes.push(inode.to_owned());
        }
    }
    let mut addrs = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = fs::read_to_string(format!("/proc/{pid}/net/{table}"))?;
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address st ... inode: fields 1, 3, 9; 0A is LISTEN.
            if fields.len() > 9 && fields[3] == "0A" && inodes.iter().any(|i| i == fields[9]) {
                addrs.push(decode_proc_addr(fields[1])?.to_string());
            }
        }
    }
    Ok(addrs)
}

fn decode_proc_addr(field: &str) -> anyhow::Result<SocketAddr> {
    let (ip, port) = field.split_once(':').context("bad /proc/net address")?;
    let port = u16::from_str_radix(port, 16)?;
    let bytes: Vec<u8> = (0..ip.len()).step_by(2).map(|i| u8::from_str_radix(&ip[i..i + 2], 16)).collect::<Result<_, _>>()?;
    // /proc prints each 32-bit word in host (little-endian) order.
    let fixed: Vec<u8> = bytes.chunks(4).flat_map(|w| w.iter().rev().copied()).collect();
    let ip = match fixed.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(fixed.as_slice())?),
        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(fixed.as_slice())?),
        _ => bail!("bad /proc/net address {field}"),
    };
    Ok(SocketAddr::new(ip, port))
}

/// `sha256:<hex>` of bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex_encode(&Sha256::digest(bytes)))
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The entries of one layer, as an uncompressed tar.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        Self { tar: tar::Builder::new(Vec::new()) }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header
    }

    pub fn dir(self, path: &str, mode: u32) -> Self {
        self.entry(tar::EntryType::Directory, path, None, mode, &[])
    }

    pub fn file(self, path: &str, contents: &[u8], mode: u32) -> Self {
        self.entry(tar::EntryType::Regular, path, None, mode, contents)
    }

    /// A file with a given owner.
    pub fn owned_file(mut self, path: &str, contents: &[u8], mode: u32, uid: u64, gid: u64) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, mode, contents.len() as u64);
        header.set_uid(uid);
        header.set_gid(gid);
        self.append(header, path, None, contents);
        self
    }

    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.entry(tar::EntryType::Symlink, path, Some(target), 0o777, &[])
    }

    pub fn hardlink(self, path: &str, target: &str) -> Self {
        self.entry(tar::EntryType::Link, path, Some(target), 0o644, &[])
    }

    /// `.wh.NAME` next to `path`: deletes `path` of lower layers.
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        let marker = if dir.is_empty() { format!(".wh.{name}") } else { format!("{dir}/.wh.{name}") };
        self.file(&marker, &[], 0o644)
    }

    /// `DIR/.wh..wh..opq`: hides everything lower layers have in `dir`.
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), &[], 0o644)
    }

    /// `bin/busybox` from the host and `bin/<applet>` symlinks to it.
    pub fn busybox(self) -> anyhow::Result<Self> {
        let binary = fs::read(BUSYBOX).with_context(|| format!("cannot read {BUSYBOX}"))?;
        let mut layer = self.dir("bin", 0o755).file("bin/busybox", &binary, 0o755);
        for applet in APPLETS {
            layer = layer.symlink(&format!("bin/{applet}"), "busybox");
        }
        Ok(layer
            .dir("etc", 0o755)
            .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n", 0o644)
            .file("etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644)
            .dir("tmp", 0o1777))
    }

    /// Any entry, with the path written as is (`..` and all), for tests of
    /// hostile layers.
    pub fn entry(mut self, kind: tar::EntryType, path: &str, link: Option<&str>, mode: u32, data: &[u8]) -> Self {
        let header = Self::header(kind, mode, data.len() as u64);
        self.append(header, path, link, data);
        self
    }

    fn append(&mut self, mut header: tar::Header, path: &str, link: Option<&str>, data: &[u8]) {
        // Raw name fields: `set_path` would refuse the hostile paths tests need.
        let gnu = header.as_gnu_mut().expect("gnu header");
        assert!(path.len() < gnu.name.len(), "test paths are short");
        gnu.name = [0; 100];
        gnu.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(link) = link {
            assert!(link.len() < gnu.linkname.len(), "test link targets are short");
            gnu.linkname = [0; 100];
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        self.tar.append(&header, data).expect("append to an in-memory tar");
    }

    /// The uncompressed tar.
    pub fn build(self) -> Vec<u8> {
        self.tar.into_inner().expect("finish an in-memory tar")
    }
}

/// A tar of a directory tree (for `import`).
pub fn tar_of_dir(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir)?;
    Ok(tar.into_inner()?)
}

/// A busybox root filesystem in `dir`: `bin/busybox` and applet symlinks.
pub fn busybox_rootfs(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir.join("bin"))?;
    fs::copy(BUSYBOX, dir.join("bin/busybox"))?;
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755))?;
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet))?;
    }
    Ok(())
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// A content descriptor: what manifests and indexes point with.
#[derive(Clone, Debug)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    fn json(&self) -> serde_json::Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// The config of an image written by [`OciLayout::add_image`].
#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub architecture: String,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// gzip the layers (else plain tar).
    pub gzip: bool,
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self {
            architecture: "amd64".to_owned(),
            cmd: vec!["/bin/sh".to_owned()],
            env: vec!["PATH=/bin".to_owned()],
            gzip: true,
        }
    }
}

impl ImageSpec {
    /// The image config JSON for these layers (uncompressed tars).
    pub fn config_json(&self, layers: &[Vec<u8>]) -> Vec<u8> {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256_digest(l)).collect();
        json!({
            "architecture": self.architecture,
            "os": "linux",
            "config": {"Cmd": self.cmd, "Env": self.env, "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        })
        .to_string()
        .into_bytes()
    }
}

/// An OCI image layout directory, written by hand.
pub struct OciLayout {
    dir: PathBuf,
    index: Vec<serde_json::Value>,
}

impl OciLayout {
    /// Creates an empty layout in `dir` (created if missing).
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir.join("blobs/sha256"))?;
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let layout = Self { dir: dir.to_owned(), index: Vec::new() };
        layout.write_index()?;
        Ok(layout)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Stores a blob and returns its descriptor.
    pub fn add_blob(&self, media_type: &str, bytes: &[u8]) -> anyhow::Result<Descriptor> {
        let digest = sha256_digest(bytes);
        fs::write(self.dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:")), bytes)?;
        Ok(Descriptor { media_type: media_type.to_owned(), digest, size: bytes.len() as u64 })
    }

    /// Writes an image of `layers` (uncompressed tars, lowest first) and,
    /// with a `tag`, names it in `index.json`. Returns its manifest.
    pub fn add_image(&mut self, tag: Option<&str>, layers: &[Vec<u8>], spec: &ImageSpec) -> anyhow::Result<Descriptor> {
        let config = self.add_blob("application/vnd.oci.image.config.v1+json", &spec.config_json(layers))?;
        let mut layer_descriptors = Vec::new();
        for layer in layers {
            let descriptor = if spec.gzip {
                self.add_blob("application/vnd.oci.image.layer.v1.tar+gzip", &gzip(layer))?
            } else {
                self.add_blob("application/vnd.oci.image.layer.v1.tar", layer)?
            };
            layer_descriptors.push(descriptor.json());
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config.json(),
            "layers": layer_descriptors,
        });
        let manifest =
            self.add_blob("application/vnd.oci.image.manifest.v1+json", manifest.to_string().as_bytes())?;
        if let Some(tag) = tag {
            self.tag(tag, &manifest, None)?;
        }
        Ok(manifest)
    }

    /// Writes an image index of `(manifest, architecture)` pairs (all
    /// linux) and names it `tag` in `index.json`.
    pub fn add_index(&mut self, tag: &str, manifests: &[(Descriptor, &str)]) -> anyhow::Result<Descriptor> {
        let entries: Vec<_> = manifests
            .iter()
            .map(|(m, arch)| {
                let mut entry = m.json();
                entry["platform"] = json!({"os": "linux", "architecture": arch});
                entry
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        });
        let index = self.add_blob("application/vnd.oci.image.index.v1+json", index.to_string().as_bytes())?;
        self.tag(tag, &index, None)?;
        Ok(index)
    }

    /// Names `descriptor` in `index.json`: `org.opencontainers.image.ref.name`
    /// = `tag`, plus `io.containerd.image.name` if given.
    pub fn tag(&mut self, tag: &str, descriptor: &Descriptor, full_name: Option<&str>) -> anyhow::Result<()> {
        let mut entry = descriptor.json();
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        if let Some(name) = full_name {
            entry["annotations"]["io.containerd.image.name"] = json!(name);
        }
        self.index.push(entry);
        self.write_index()
    }

    fn write_index(&self) -> anyhow::Result<()> {
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": self.index});
        fs::write(self.dir.join("index.json"), index.to_string())?;
        Ok(())
    }

    /// The layout as one tar file (what `oci-archive:` and `load` take).
    pub fn write_tar(&self, out: &Path) -> anyhow::Result<()> {
        let mut tar = tar::Builder::new(fs::File::create(out)?);
        tar.append_dir_all(".", &self.dir)?;
        tar.into_inner()?.sync_all()?;
        Ok(())
    }
}

/// Writes a `docker save`-style tarball (legacy layout: `manifest.json`,
/// `<hex>.json` config, `<n>/layer.tar`) of one image.
pub fn write_docker_save(out: &Path, repo_tags: &[&str], layers: &[Vec<u8>], spec: &ImageSpec) -> anyhow::Result<()> {
    let mut tar = tar::Builder::new(fs::File::create(out)?);
    let mut add = |path: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        tar.append_data(&mut header, path, bytes)?;
        Ok(())
    };
    let config = spec.config_json(layers);
    let config_name = format!("{}.json", sha256_digest(&config).trim_start_matches("sha256:"));
    add(&config_name, &config)?;
    let mut layer_names = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let name = format!("{i}/layer.tar");
        add(&name, layer)?;
        layer_names.push(name);
    }
    let manifest = json!([{"Config": config_name, "RepoTags": repo_tags, "Layers": layer_names}]);
    add("manifest.json", manifest.to_string().as_bytes())?;
    tar.into_inner()?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_addresses_decode() {
        assert_eq!(decode_proc_addr("0100007F:1F90").expect("v4").to_string(), "127.0.0.1:8080");
        assert_eq!(
            decode_proc_addr("00000000000000000000000001000000:0050").expect("v6").to_string(),
            "[::1]:80"
        );
    }

    #[test]
    fn registry_listens_on_loopback_only_and_dies_on_drop() -> anyhow::Result<()> {
        if !registry_tools_available(false) {
            return Ok(());
        }
        let registry = Registry::start()?;
        assert_eq!(registry.listening_addrs()?, vec![registry.host()]);
        let pid = registry.pid();
        drop(registry);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "registry {pid} still running");
        Ok(())
    }
}
