//! A throwaway PostgreSQL server started from Debian's binaries
//! (`/usr/lib/postgresql/<version>/bin`, package `postgresql`).
//!
//! The server lives in a temporary directory (data dir, unix socket, log),
//! listens on 127.0.0.1 on a free port with trust authentication, and runs
//! as the `postgres` system user when the tests run as root (PostgreSQL
//! refuses to run as root). It is tuned for tests, not durability
//! (`fsync=off`).
//!
//! Cleanup does not depend on destructors: a small watchdog process holds
//! the read end of a pipe whose write end only this process has. When the
//! pipe closes (the [`TempPostgres`] is dropped, or the test process exits
//! or is killed), the watchdog shuts the server down (immediate mode) and
//! removes the directory. That is what makes [`TempPostgres::shared`]
//! (a server per test process, never dropped) leave nothing behind.
//!
//! The database cluster is initialised with an ICU natural-language
//! collation (`en-US`) where the server supports it, as most production
//! servers use one: code that silently relies on byte order fails here.

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Where Debian installs PostgreSQL's server binaries, one dir per version.
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";
/// Overrides the binaries' directory (a dir holding `initdb` and `postgres`).
const BINDIR_ENV: &str = "BERTH_TEST_PG_BINDIR";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const PORT_ATTEMPTS: usize = 5;

/// A running throwaway PostgreSQL server; stopped and deleted on drop.
pub struct TempPostgres {
    root: PathBuf,
    port: u16,
    bindir: PathBuf,
    postmaster: Child,
    /// Closing this (drop or process exit) makes the watchdog clean up.
    watchdog_pipe: Option<ChildStdin>,
    watchdog: Child,
}

impl std::fmt::Debug for TempPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempPostgres")
            .field("root", &self.root)
            .field("port", &self.port)
            .field("pid", &self.postmaster.id())
            .finish()
    }
}

impl TempPostgres {
    /// Initialises and starts a new server; waits until it accepts
    /// connections.
    pub fn start() -> anyhow::Result<Self> {
        let bindir = find_bindir()?;
        let owner = server_owner()?;
        let root = tempfile::Builder::new()
            .prefix("berth-pg-")
            .tempdir()
            .context("cannot create a temp dir for PostgreSQL")?
            .keep();
        // From here on the directory is ours to remove on every error path.
        match Self::start_in(&root, bindir, owner) {
            Ok(pg) => Ok(pg),
            Err(e) => {
                let _ = fs::remove_dir_all(&root);
                Err(e)
            }
        }
    }

    /// One server per test process, started on first use and cleaned up
    /// when the process exits. Give each test its own database
    /// ([`TempPostgres::create_database`]).
    pub fn shared() -> anyhow::Result<&'static Self> {
        static SHARED: OnceLock<Result<TempPostgres, String>> = OnceLock::new();
        SHARED.get_or_init(|| Self::start().map_err(|e| format!("{e:#}"))).as_ref().map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of database `name` on this server (which may not exist).
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database `name` (letters, digits, `_`; at most 63
    /// characters; must not exist yet) and returns its URL.
    pub fn create_database(&self, name: &str) -> anyhow::Result<String> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if !valid {
            bail!("invalid database name {name:?}: use letters, digits and _ (at most 63)");
        }
        self.psql(&format!("CREATE DATABASE \"{name}\"")).with_context(|| format!("cannot create database {name}"))?;
        Ok(self.database_url(name))
    }

    /// Runs one SQL command as the `postgres` role in database `postgres`.
    pub fn psql(&self, sql: &str) -> anyhow::Result<String> {
        let out = Command::new(self.bindir.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres"])
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .context("cannot run psql")?;
        if !out.status.success() {
            bail!("psql failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn start_in(root: &Path, bindir: PathBuf, owner: Option<Owner>) -> anyhow::Result<Self> {
        if let Some(o) = owner {
            std::os::unix::fs::chown(root, Some(o.uid), Some(o.gid))
                .with_context(|| format!("cannot hand {} to the postgres user", root.display()))?;
        }
        let data = root.join("data");
        initdb(&bindir, &data, owner)?;

        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let log_path = root.join(format!("postgres-{port}.log"));
            let log = fs::File::create(&log_path).context("cannot create the server log")?;
            let mut cmd = Command::new(bindir.join("postgres"));
            cmd.arg("-D")
                .arg(&data)
                .arg("-k")
                .arg(root)
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
                .args(["-c", "max_connections=200", "-c", "shared_buffers=32MB"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            as_owner(&mut cmd, owner);
            let mut postmaster = cmd.spawn().context("cannot start postgres")?;
            // The watchdog starts right away so that a test process that
            // dies during startup leaves nothing behind either.
            let (mut watchdog, mut pipe) = match spawn_watchdog(postmaster.id(), root) {
                Ok(w) => w,
                Err(e) => {
                    let _ = postmaster.kill();
                    let _ = postmaster.wait();
                    return Err(e);
                }
            };
            match wait_ready(&mut postmaster, &data) {
                Ok(()) => {
                    return Ok(Self {
                        root: root.to_owned(),
                        port,
                        bindir,
                        postmaster,
                        watchdog_pipe: Some(pipe),
                        watchdog,
                    });
                }
                Err(e) => {
                    // Stop this attempt's server but keep the directory:
                    // the data dir serves the next attempt.
                    let _ = pipe.write_all(b"keep\n");
                    drop(pipe);
                    let _ = watchdog.wait();
                    let _ = postmaster.kill();
                    let _ = postmaster.wait();
                    last_log = fs::read_to_string(&log_path).unwrap_or_default();
                    let port_taken = last_log.contains("could not bind") || last_log.contains("Address already in use");
                    if !port_taken {
                        return Err(e.context(format!("postgres log:\n{last_log}")));
                    }
                }
            }
        }
        bail!("postgres found no free port in {PORT_ATTEMPTS} attempts; last log:\n{last_log}")
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        // Closing the pipe wakes the watchdog, which stops the server and
        // removes the directory. The postmaster stays our unreaped child
        // until then, so its PID cannot be reused meanwhile.
        drop(self.watchdog_pipe.take());
        let _ = self.watchdog.wait();
        let _ = self.postmaster.kill();
        let _ = self.postmaster.wait();
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Waits until `postmaster.pid` says `ready`, or the server exits.
fn wait_ready(postmaster: &mut Child, data: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = postmaster.try_wait()? {
            bail!("postgres exited during startup ({status})");
        }
        // Line 8 of postmaster.pid is the server status (PostgreSQL >= 10).
        let pidfile = fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
        if pidfile.lines().nth(7).map(str::trim) == Some("ready") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("postgres did not become ready within {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The newest PostgreSQL under /usr/lib/postgresql (or `$BERTH_TEST_PG_BINDIR`).
fn find_bindir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(BINDIR_ENV) {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
            return Ok(dir);
        }
        bail!("{BINDIR_ENV}={} holds no initdb and postgres", dir.display());
    }
    let newest = fs::read_dir(DEBIAN_PG_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((version, bin))
        })
        .max_by_key(|(v, _)| *v);
    match newest {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "PostgreSQL server binaries not found under {DEBIAN_PG_ROOT}/*/bin: \
             `apt-get install postgresql` is needed (scripts/test.sh installs it), \
             or set {BINDIR_ENV}"
        ),
    }
}

/// The server's major version, from the bin dir's parent (`.../15/bin`).
fn major_version(bindir: &Path) -> Option<u32> {
    bindir.parent()?.file_name()?.to_str()?.parse().ok()
}

#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

/// Who runs the server: `postgres` when we are root, else ourselves.
fn server_owner() -> anyhow::Result<Option<Owner>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("postgres")
        .context("cannot look up the postgres user")?
        .context("tests run as root and PostgreSQL refuses root, but there is no `postgres` user: `apt-get install postgresql` creates it")?;
    Ok(Some(Owner { uid: user.uid.as_raw(), gid: user.gid.as_raw() }))
}

fn as_owner(cmd: &mut Command, owner: Option<Owner>) {
    if let Some(o) = owner {
        // std drops supplementary groups when root changes uid.
        cmd.uid(o.uid).gid(o.gid);
    }
}

fn initdb(bindir: &Path, data: &Path, owner: Option<Owner>) -> anyhow::Result<()> {
    let mut cmd = Command::new(bindir.join("initdb"));
    cmd.arg("-D").arg(data).args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
    if major_version(bindir).is_some_and(|v| v >= 15) {
        cmd.args(["--locale-provider=icu", "--icu-locale=en-US"]);
    }
    as_owner(&mut cmd, owner);
    let out = cmd
        .env_remove("PGDATA")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", bindir.join("initdb").display()))?;
    if !out.status.success() {
        bail!(
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A port that was free a moment ago (the server retries if it is taken).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Starts the watchdog: when its stdin reaches end of file it shuts the
/// server down (SIGQUIT: immediate shutdown), waits for it to go, and
/// removes `root` — unless it read a line `keep` first. It runs in its own
/// process group so that a signal to the test's group does not stop it
/// before it has cleaned up.
fn spawn_watchdog(postmaster_pid: u32, root: &Path) -> anyhow::Result<(Child, ChildStdin)> {
    const SCRIPT: &str = r#"
        read -r keep
        kill -QUIT "$1" 2>/dev/null
        i=0
        while [ -e "$2/data/postmaster.pid" ] && kill -0 "$1" 2>/dev/null && [ "$i" -lt 300 ]; do
            sleep 0.05; i=$((i + 1))
        done
        [ "$keep" = keep ] || rm -rf -- "$2"
    "#;
    let mut child = Command::new("sh")
        .args(["-c", SCRIPT, "berth-pg-watchdog"])
        .arg(postmaster_pid.to_string())
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start the cleanup watchdog (sh)")?;
    let pipe = child.stdin.take().context("watchdog has no stdin")?;
    Ok((child, pipe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_serves_and_cleans_up() {
        let pg = TempPostgres::start().expect("start postgres");
        let root = pg.root.clone();
        let pid = pg.postmaster.id();
        assert!(root.join("data/PG_VERSION").is_file());
        let url = pg.create_database("db_one").expect("create database");
        assert_eq!(url, format!("postgres://postgres@127.0.0.1:{}/db_one", pg.port()));
        assert!(pg.create_database("db_one").is_err(), "a database name is created once");
        assert!(pg.create_database("no-dashes").is_err());
        let listed = pg.psql("SELECT datname FROM pg_database WHERE datname = 'db_one'").expect("psql");
        assert_eq!(listed.trim(), "db_one");
        // The natural-language collation is in effect: "a" sorts before
        // "B" (byte order: after).
        let cmp = pg.psql("SELECT 'a' < 'B'").expect("psql");
        assert_eq!(cmp.trim(), "t");
        drop(pg);
        assert!(!root.exists(), "{} is removed", root.display());
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "postmaster {pid} is gone");
    }

    #[test]
    fn shared_server_is_one_per_process() {
        let a = TempPostgres::shared().expect("shared postgres");
        let b = TempPostgres::shared().expect("shared postgres");
        assert_eq!(a.port(), b.port());
        assert!(a.root.exists());
    }
}
