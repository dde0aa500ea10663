//! The OCI runtime binary (runc or crun), driven through its command line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::SandboxError;

/// An OCI runtime binary and its state root.
#[derive(Clone, Debug)]
pub struct OciCli {
    /// The binary.
    pub binary: PathBuf,
    /// Its `--root`.
    pub root: PathBuf,
}

impl OciCli {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root).stdin(Stdio::null());
        cmd
    }

    /// `run --detach`: creates and starts the container. Its stdio are the
    /// given files (inherited by the container's process); its errors go
    /// to `log` as JSON lines. Returns when the process has started.
    pub fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        log: &Path,
        stdout: std::fs::File,
        stderr: std::fs::File,
    ) -> Result<(), SandboxError> {
        let status = self
            .command()
            .arg("--log")
            .arg(log)
            .args(["--log-format", "json", "run", "--detach", "--pid-file"])
            .arg(pid_file)
            .arg("--bundle")
            .arg(bundle)
            .arg(id)
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .map_err(SandboxError::io("running", &self.binary))?;
        if status.success() {
            Ok(())
        } else {
            let command = format!("{} run", self.name());
            let message = last_error(log);
            // runc logs "runc run failed: ..." itself.
            let message = message
                .strip_prefix(&format!("{command} failed: "))
                .unwrap_or(&message)
                .to_string();
            Err(SandboxError::OciRuntime { command, message })
        }
    }

    /// Spawns `exec --pid-file FILE ID ARGS...`: runs a process in the
    /// running container (with its environment, user and working
    /// directory), output discarded. The caller reaps the child.
    pub fn spawn_exec(
        &self,
        id: &str,
        args: &[String],
        pid_file: &Path,
    ) -> Result<std::process::Child, SandboxError> {
        self.command()
            .arg("exec")
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(SandboxError::io("running", &self.binary))
    }

    /// `run` in the foreground, output captured: for the start-up probe.
    pub fn run_foreground(&self, id: &str, bundle: &Path) -> Result<(), SandboxError> {
        self.checked(
            &["run", "--bundle", &bundle.display().to_string(), id],
            "run",
        )
    }

    /// `kill ID SIGNAL`. A container that is not running is not an error.
    pub fn kill(&self, id: &str, signal: &str) -> Result<(), SandboxError> {
        match self.checked(&["kill", id, signal], "kill") {
            Err(SandboxError::OciRuntime { message, .. }) if is_gone(&message) => Ok(()),
            other => other,
        }
    }

    /// `delete --force ID`. A container that does not exist is not an error.
    pub fn delete(&self, id: &str) -> Result<(), SandboxError> {
        // runc and crun keep a container's state in `ROOT/ID/`: without it
        // there is nothing to delete, and no need to start the binary (the
        // agent releases a stopping task up to three times; each `runc
        // delete` costs tens of milliseconds).
        if !self.root.join(id).exists() {
            return Ok(());
        }
        match self.checked(&["delete", "--force", id], "delete") {
            Err(SandboxError::OciRuntime { message, .. }) if is_gone(&message) => Ok(()),
            other => other,
        }
    }

    fn checked(&self, args: &[&str], what: &str) -> Result<(), SandboxError> {
        let out = self
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(SandboxError::io("running", &self.binary))?;
        if out.status.success() {
            return Ok(());
        }
        let mut message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if message.is_empty() {
            message = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        Err(SandboxError::OciRuntime {
            command: format!("{} {what}", self.name()),
            message,
        })
    }

    fn name(&self) -> String {
        self.binary
            .file_name()
            .map_or_else(|| "runtime".into(), |n| n.to_string_lossy().into_owned())
    }
}

fn is_gone(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("not exist")
        || m.contains("not running")
        || m.contains("no such")
        || m.contains("process already finished")
}

/// The last error the runtime logged (JSON lines with `level` and `msg`).
fn last_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
        .and_then(|v| v["msg"].as_str().map(String::from))
        .unwrap_or_else(|| {
            text.lines()
                .last()
                .unwrap_or("no error message")
                .to_string()
        })
}
