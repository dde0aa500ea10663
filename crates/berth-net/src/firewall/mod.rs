//! Security groups, host isolation and egress, enforced with nftables.
//!
//! The caller keeps a [`FirewallState`] (subnets, groups, which task is in
//! which, host services tasks may use) and calls [`Firewall::apply`] after
//! any change: the whole ruleset is rendered from the state and replaces
//! Berth's tables in one `nft` transaction, so there is no moment with
//! half a ruleset. Tasks appear in the rules only as set elements, so when
//! only tasks changed [`Firewall::apply_changes`] adds and deletes those
//! elements instead (one transaction too), without replacing the tables.
//!
//! # What is enforced
//! - A task accepts inbound traffic only if one of its groups allows it; a
//!   rule with a source group matches traffic from any member of that
//!   group. Replies to allowed traffic are allowed (conntrack), and so is
//!   everything a task sends to another task (the receiver decides).
//! - The host reaches every task (host-to-task traffic is not filtered);
//!   tasks reach the host only at the [`HostService`]s listed, plus
//!   replies to connections the host opened.
//! - Task traffic never leaves the machine unless its subnet has `egress`
//!   (then it is masqueraded behind the host's address; the host must
//!   forward IPv4: `net.ipv4.ip_forward=1`, which Berth does not set).
//! - A task's port only passes frames from the task's own MAC and IPv4
//!   address (and ARP for them): no spoofing another task's address to
//!   get into its groups, and no IPv6 around the IPv4 rules. A task
//!   attached but not yet named in an applied state gets nothing from
//!   other tasks, and its port is not checked until it is named: call
//!   `apply` after every attach and detach.
//!
//! `apply` replaces the tables whole, so concurrent callers must render
//! from the latest state (or be serialised): the last one wins.
//!
//! # Why these tables
//! Traffic between two tasks on one bridge is bridged, not routed. With
//! `br_netfilter` the kernel passes bridged IPv4 through the IPv4 netfilter
//! hooks, where conntrack works, so the security groups live in a `table
//! inet` on the forward hook (in that hook both interfaces are the bridge).
//! Berth's bridges set `nf_call_iptables` themselves, so this does not
//! depend on the global `net.bridge.bridge-nf-call-iptables`. The inet
//! hooks cannot see which bridge port a frame came from, so the
//! anti-spoofing checks live in a `table bridge` of the same name
//! (stateless: this kernel has no bridge conntrack). `render.rs` draws the
//! rules themselves.
//!
//! The table name is the caller's ([`Firewall::new`]), so tests and a
//! running `berth up` never touch each other's rules.

mod model;
mod nft;
mod render;

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

pub use model::{
    FirewallState, HostService, LinkLocalService, Protocol, PublishedPort, Rule, SecurityGroup, Source, SubnetPolicy,
    TaskPolicy, Transport,
};

use crate::NetError;

/// Where the per-host switch for bridged IPv4 through netfilter lives; it
/// exists when `br_netfilter` is loaded (or built in).
const BRIDGE_NF: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

/// Berth's two nftables tables (`inet` and `bridge`, one name).
#[derive(Clone, Debug)]
pub struct Firewall {
    table: String,
    nft: PathBuf,
}

impl Firewall {
    /// The table name `berth up` uses.
    pub const DEFAULT_TABLE: &'static str = "berth";

    /// The tables named `table`: a letter, then up to 31 letters, digits,
    /// `_` or `-`.
    pub fn new(table: &str) -> Result<Self, NetError> {
        let valid = table.len() <= 32
            && table
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(NetError::InvalidName {
                what: "nft table",
                name: table.to_string(),
                reason: "must be a letter and up to 31 letters, digits, _ or -",
            });
        }
        Ok(Self {
            table: table.to_string(),
            nft: PathBuf::from("nft"),
        })
    }

    /// Runs this `nft` binary instead of the one on `PATH`.
    pub fn with_nft(mut self, nft: impl Into<PathBuf>) -> Self {
        self.nft = nft.into();
        self
    }

    /// The tables' name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Checks that bridged IPv4 can reach netfilter here (`br_netfilter`).
    pub fn check_host() -> Result<(), NetError> {
        if std::path::Path::new(BRIDGE_NF).exists() {
            Ok(())
        } else {
            Err(NetError::NoBridgeNetfilter(format!(
                "{BRIDGE_NF} is missing: load br_netfilter (modprobe br_netfilter)"
            )))
        }
    }

    /// The nft JSON commands that replace the tables with `state`'s rules.
    pub fn render(&self, state: &FirewallState) -> Result<serde_json::Value, NetError> {
        state.validate()?;
        Ok(serde_json::to_value(render::render(&self.table, state)).unwrap_or_default())
    }

    /// Replaces the tables with the rules for `state`, atomically.
    pub async fn apply(&self, state: &FirewallState) -> Result<(), NetError> {
        let commands = self.render(state)?;
        self.run(&commands).await?;
        tracing::debug!(table = %self.table, tasks = state.tasks.len(), groups = state.groups.len(), "firewall applied");
        Ok(())
    }

    /// Moves the kernel's rules from `from` (what was applied last) to
    /// `to`. When only tasks changed (attached, detached, moved between
    /// groups) this adds and deletes set elements in one transaction, which
    /// the kernel commits at once and whose cost does not grow with the
    /// number of tasks; otherwise, or if that fails (the rules were changed
    /// behind Berth's back), it replaces the tables as [`Self::apply`].
    pub async fn apply_changes(&self, from: Option<&FirewallState>, to: &FirewallState) -> Result<(), NetError> {
        to.validate()?;
        if let Some(commands) = from.and_then(|from| render::render_changes(&self.table, from, to)) {
            let commands = serde_json::to_value(commands).unwrap_or_default();
            match self.run(&commands).await {
                Ok(()) => {
                    tracing::debug!(table = %self.table, tasks = to.tasks.len(), "firewall updated");
                    return Ok(());
                }
                Err(e) => tracing::warn!(table = %self.table, error = %e, "firewall update failed; replacing the tables"),
            }
        }
        self.apply(to).await
    }

    /// Checks the rules for `state` with the kernel without changing
    /// anything (`nft --check`).
    pub async fn check(&self, state: &FirewallState) -> Result<(), NetError> {
        let commands = self.render(state)?;
        self.run_with(&["--check"], &commands).await
    }

    /// Deletes the tables (fine if they are not there).
    pub async fn remove(&self) -> Result<(), NetError> {
        let commands = serde_json::to_value(render::render_delete(&self.table)).unwrap_or_default();
        self.run(&commands).await
    }

    async fn run(&self, commands: &serde_json::Value) -> Result<(), NetError> {
        self.run_with(&[], commands).await
    }

    /// `nft -j -f -` with the commands on stdin: one transaction.
    async fn run_with(&self, args: &[&str], commands: &serde_json::Value) -> Result<(), NetError> {
        let spawn_err = |source| NetError::NftSpawn {
            program: self.nft.clone(),
            source,
        };
        let mut child = tokio::process::Command::new(&self.nft)
            .args(args)
            .args(["-j", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(commands.to_string().as_bytes())
                .await
                .map_err(spawn_err)?;
        }
        let out = child.wait_with_output().await.map_err(spawn_err)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(NetError::NftFailed {
                program: self.nft.clone(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}
