//! The real `berth` binary as a child process, and signed ECS calls to it.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};

use crate::sign::{Creds, sign};

/// A running `berth up`, killed (SIGKILL) when dropped.
pub struct BerthProcess {
    child: Child,
    pub endpoint: String,
    pub data_dir: PathBuf,
    /// Everything the process printed on stdout before it was up.
    pub banner: String,
    /// The network testinfra gave it (its nft tables go when it does).
    pub net: Option<TestNet>,
}

impl BerthProcess {
    /// Starts `BIN up --data-dir DIR --listen 127.0.0.1:0` plus `args`, and
    /// waits (up to 60 s) until it prints its endpoint.
    pub fn start(bin: &Path, data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_with(bin, data_dir, args, envs, |_| {})
    }

    /// [`Self::start`], with `customize` applied to the command last, just
    /// before it is spawned (e.g. to send stderr to a file, or to give the
    /// process its own process group so a terminal's Ctrl-C does not reach
    /// it).
    pub fn start_with(
        bin: &Path,
        data_dir: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        customize: impl FnOnce(&mut Command),
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.arg("up").arg("--data-dir").arg(data_dir).arg("--listen").arg("127.0.0.1:0").args(args);
        // Berths of parallel tests must not share a bridge or nft table.
        let mut net = None;
        if !args.iter().any(|a| a.starts_with("--default-subnet") || a.starts_with("--nft-table")) {
            let n = TestNet::for_data_dir(data_dir)?;
            cmd.arg("--default-subnet").arg(&n.cidr).arg("--nft-table").arg(&n.table);
            net = Some(n);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.env_remove("BERTH_DATA_DIR").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        customize(&mut cmd);
        let mut child = cmd.spawn().with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = String::new();
        let mut endpoint = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    banner.push_str(&line);
                    banner.push('\n');
                    if let Some(ep) = line.trim().strip_prefix("endpoint:") {
                        endpoint = Some(ep.trim().to_owned());
                    }
                    // The banner ends with the "try:" line.
                    if let (Some(ep), true) = (&endpoint, line.trim().starts_with("try:")) {
                        // Keep draining stdout so the child never blocks on a full pipe.
                        std::thread::spawn(move || while rx.recv().is_ok() {});
                        return Ok(Self { child, endpoint: ep.clone(), data_dir: data_dir.to_owned(), banner, net });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait()?;
                    bail!("berth did not come up ({status}); it printed:\n{banner}");
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        let nft = self.nft_children();
        self.child.kill()?;
        self.child.wait()?;
        settle(&nft);
        Ok(())
    }

    /// The `nft` processes Berth is running (firewall applies), which a
    /// SIGKILL of Berth leaves running: one that ends after the teardown
    /// would make the tables again.
    fn nft_children(&self) -> Vec<u32> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id()));
        tasks
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| c.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
            .filter(|pid| is_nft(*pid))
            .collect()
    }

    /// SIGTERM, then waits for the process to exit (up to 30 s).
    pub fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                bail!("berth did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The root access key from the data dir's `credentials` file.
    pub fn creds(&self) -> anyhow::Result<Creds> {
        read_credentials(&self.data_dir.join("credentials"))
    }

    /// A signed ECS call: returns the HTTP status and the JSON body.
    pub fn ecs(&self, op: &str, body: &serde_json::Value) -> anyhow::Result<(u16, serde_json::Value)> {
        let creds = self.creds()?;
        let target = format!("AmazonEC2ContainerServiceV20141113.{op}");
        call(&self.endpoint, &target, body.to_string().as_bytes(), Some((&creds, "us-east-1", "ecs")))
    }

    /// A signed AWS Query / EC2 call of `service` (`ec2`, `sts`,
    /// `monitoring`): `params` form-encoded; returns the HTTP status and
    /// the XML body.
    pub fn query(&self, service: &str, params: &[(&str, &str)]) -> anyhow::Result<(u16, String)> {
        let creds = self.creds()?;
        let host = self.endpoint.strip_prefix("http://").context("endpoint must be http://")?.trim_end_matches('/');
        let body: String = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("{}/", self.endpoint))
            .header("host", host)
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(body.into_bytes())?;
        sign(&mut req, &creds, "us-east-1", service, SystemTime::now())?;
        send_raw(host, &req)
    }

    /// A signed call of Berth's own operator API (`Berth_20261201.<op>`).
    pub fn operator(&self, op: &str, body: &serde_json::Value) -> anyhow::Result<(u16, serde_json::Value)> {
        let creds = self.creds()?;
        let target = format!("Berth_20261201.{op}");
        call(&self.endpoint, &target, body.to_string().as_bytes(), Some((&creds, "us-east-1", "berth")))
    }
}

impl Drop for BerthProcess {
    /// Kills the process and, unless another Berth has taken over its data
    /// dir meanwhile (a restart), removes its nft tables, blackhole route
    /// and bridge.
    fn drop(&mut self) {
        let _ = self.kill9();
        let Some(net) = &self.net else { return };
        let lock = std::fs::OpenOptions::new().write(true).open(self.data_dir.join("berth.lock"));
        let free =
            lock.ok().is_some_and(|f| nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok());
        if free {
            let _ = Command::new("ip")
                .args(["route", "del", "blackhole", &net.cidr, "metric", "4242"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            for family in ["inet", "bridge"] {
                let _ = Command::new("nft")
                    .args(["delete", "table", family, &net.table])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            // Its bridge (Berth keeps an idle one a while): the link holding
            // the gateway address of the leased subnet.
            for link in links_in(&net.cidr).iter().filter(|l| l.starts_with("berth")) {
                let _ =
                    Command::new("ip").args(["link", "del", link]).stdout(Stdio::null()).stderr(Stdio::null()).status();
            }
        }
    }
}

fn is_nft(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "nft")
}

/// Waits (up to 5 s) until the processes `pids` (`nft` runs) have ended.
fn settle(pids: &[u32]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pids.iter().any(|p| is_nft(*p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Links with an IPv4 address inside `cidr` (a subnet's bridge holds its
/// gateway address).
pub fn links_in(cidr: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-o", "-4", "addr", "show", "to", cidr]).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let mut links: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|l| l.split('@').next().unwrap_or(l).to_owned())
        .collect();
    links.dedup();
    links
}

/// Reads `aws_access_key_id`/`aws_secret_access_key` of profile `default`.
pub fn read_credentials(path: &Path) -> anyhow::Result<Creds> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let get = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
            .with_context(|| format!("{key} missing in {}", path.display()))
    };
    Ok(Creds { access_key_id: get("aws_access_key_id")?, secret_access_key: get("aws_secret_access_key")? })
}

/// POSTs an AWS JSON 1.1 request to `endpoint` (http://HOST:PORT), signed
/// with `signer` (credentials, region, service) unless it is `None`.
pub fn call(
    endpoint: &str,
    target: &str,
    body: &[u8],
    signer: Option<(&Creds, &str, &str)>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let host = endpoint.strip_prefix("http://").context("endpoint must be http://")?.trim_end_matches('/');
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("{endpoint}/"))
        .header("host", host)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", target)
        .body(body.to_vec())?;
    if let Some((creds, region, service)) = signer {
        sign(&mut req, creds, region, service, SystemTime::now())?;
    }
    send(host, &req)
}

/// Percent-encodes a form key or value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends a request over a fresh connection and reads the whole response
/// as JSON.
pub fn send(host: &str, req: &http::Request<Vec<u8>>) -> anyhow::Result<(u16, serde_json::Value)> {
    let (status, body) = send_raw(host, req)?;
    let json = if body.trim().is_empty() { serde_json::Value::Null } else { serde_json::from_str(&body)? };
    Ok((status, json))
}

/// Sends a request over a fresh connection and reads the whole response.
pub fn send_raw(host: &str, req: &http::Request<Vec<u8>>) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(host).with_context(|| format!("cannot connect to {host}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method(), path);
    for (k, v) in req.headers() {
        head.push_str(&format!("{}: {}\r\n", k, v.to_str()?));
    }
    head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", req.body().len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(req.body())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("malformed HTTP response")?;
    let status: u16 = head.split_whitespace().nth(1).context("no status")?.parse()?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A subnet and nftables table name of one test Berth (one data dir),
/// unique among the Berths of every test on this machine: slot N of
/// 2048 gives 10.(200 + N/256).(N%256).0/24 and table `btN`. The slot is
/// leased with a file in `/run/berth-testinfra/` naming the data dir, and
/// remembered in the data dir, so a restarted Berth keeps its network; a
/// lease whose data dir is gone is free again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestNet {
    pub cidr: String,
    pub table: String,
}

impl TestNet {
    const LEASES: &'static str = "/run/berth-testinfra";
    const SLOTS: u32 = 2048;

    pub fn for_data_dir(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let remembered = data_dir.join(".berth-test-net");
        if let Some(slot) = std::fs::read_to_string(&remembered).ok().and_then(|s| s.trim().parse().ok()) {
            return Ok(Self::slot(slot));
        }
        std::fs::create_dir_all(Self::LEASES).with_context(|| format!("cannot create {}", Self::LEASES))?;
        let owner = std::fs::canonicalize(data_dir)?.display().to_string();
        let start = std::process::id() % Self::SLOTS;
        for i in 0..Self::SLOTS {
            let slot = (start + i) % Self::SLOTS;
            let lease = Path::new(Self::LEASES).join(format!("net-{slot}"));
            let taken = match std::fs::OpenOptions::new().write(true).create_new(true).open(&lease) {
                Ok(mut f) => {
                    std::io::Write::write_all(&mut f, owner.as_bytes())?;
                    true
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lease whose data dir is gone is free; take it over.
                    let holder = std::fs::read_to_string(&lease).unwrap_or_default();
                    if !holder.is_empty() && !Path::new(&holder).exists() {
                        let tmp = lease.with_extension(format!("{}", std::process::id()));
                        std::fs::write(&tmp, owner.as_bytes())?;
                        std::fs::rename(&tmp, &lease)?;
                        std::fs::read_to_string(&lease).unwrap_or_default() == owner
                    } else {
                        false
                    }
                }
                Err(e) => return Err(e.into()),
            };
            if taken {
                std::fs::write(&remembered, slot.to_string())?;
                return Ok(Self::slot(slot));
            }
        }
        anyhow::bail!("no free test network slot in {}", Self::LEASES)
    }

    fn slot(slot: u32) -> Self {
        Self { cidr: format!("10.{}.{}.0/24", 200 + slot / 256, slot % 256), table: format!("bt{slot}") }
    }
}
