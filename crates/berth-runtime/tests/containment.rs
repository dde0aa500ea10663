//! Resource containment against the real kernel, each task with limits:
//! a fork bomb is held by the pids limit while the host stays responsive,
//! and a CPU hog is held to its quota while a neighbour task keeps its
//! own share (both measured from the cgroups' usage, not wall time). The
//! memory hog's OOM kill is `sandbox.rs`'s memory_limit_oom_kills_and_says_so,
//! the disk hog's ENOSPC is `storage.rs`. Bounded in time; every task is
//! stopped and checked for leftovers. Needs root.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_runtime_api::TaskRuntime;
use common::{Harness, require_root};

/// The task cgroup's pids controller file `name` (v1, else v2).
fn pids_file(task: &str, name: &str) -> PathBuf {
    let v1 = PathBuf::from(format!("/sys/fs/cgroup/pids/berth/{task}/{name}"));
    if v1.exists() {
        return v1;
    }
    PathBuf::from(format!("/sys/fs/cgroup/berth/{task}/{name}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_bomb_is_held_by_the_pids_limit_and_the_host_stays_responsive() {
    let Some(()) = require_root("a_fork_bomb_is_held_by_the_pids_limit_and_the_host_stays_responsive") else {
        return;
    };
    let h = Harness::new();
    // The classic bomb in busybox sh, with a CPU quota so it cannot take
    // the host's cores either.
    let mut spec = h.task("bomb", h.sh("main", "b() { b | b & }; b; exec sleep 600"));
    spec.pids_limit = Some(64);
    spec.cpu = Some(512);
    let _guard = h.guard(&spec.task_id);
    h.runtime.start(&spec).await.unwrap();
    let current = pids_file(spec.task_id.as_str(), "pids.current");
    let (mut peak, mut slowest) = (0u64, Duration::ZERO);
    // Watch until the bomb has sat at its limit for a second (at most
    // 15 s: a loaded CI host forks slowly).
    let mut until = Instant::now() + Duration::from_secs(15);
    let mut reached = false;
    while Instant::now() < until {
        let n: u64 = std::fs::read_to_string(&current).map(|s| s.trim().parse().unwrap_or(0)).unwrap_or(0);
        peak = peak.max(n);
        if !reached && n >= 60 {
            reached = true;
            until = until.min(Instant::now() + Duration::from_secs(1));
        }
        // The host: a process of ours starts and ends promptly.
        let t = Instant::now();
        assert!(std::process::Command::new("/bin/true").status().unwrap().success());
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = std::fs::read_to_string(pids_file(spec.task_id.as_str(), "pids.events")).unwrap_or_default();
    eprintln!("fork bomb: peak {peak} pids (limit 64), slowest host spawn {slowest:?}, pids.events {events:?}");
    assert!(reached, "the bomb reached the limit (peak {peak}): it ran");
    assert!(peak <= 64, "held at the limit: {peak}");
    // Generous: other tests share the host; a spawn starved by the bomb
    // would wait for the bomb's end (600 s), not seconds.
    assert!(slowest < Duration::from_secs(5), "the host stayed responsive: a spawn took {slowest:?}");
    let t = Instant::now();
    h.runtime.stop_blocking(&spec.task_id, Some(Duration::ZERO)).unwrap();
    eprintln!("stopping the bomb took {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(20), "the bomb stops within bounds");
    h.runtime.remove(&spec.task_id).await.unwrap();
    assert!(common::leftovers(&spec.task_id, &h.state_dir()).is_empty(), "{:?}", common::leftovers(&spec.task_id, &h.state_dir()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cpu_hog_is_held_to_its_quota_while_a_neighbour_keeps_its_share() {
    let Some(()) = require_root("a_cpu_hog_is_held_to_its_quota_while_a_neighbour_keeps_its_share") else {
        return;
    };
    let h = Harness::new();
    // The hog spins on four processes with a quarter core; the neighbour
    // spins on one with half a core. On a 2-core host both fit.
    let mut hog = h.task("hog", h.sh("main", "for i in 1 2 3 4; do (while :; do :; done) & done; wait"));
    hog.cpu = Some(256);
    let mut neighbour = h.task("neighbour", h.sh("main", "while :; do :; done"));
    neighbour.cpu = Some(512);
    let (_g1, _g2) = (h.guard(&hog.task_id), h.guard(&neighbour.task_id));
    h.runtime.start(&hog).await.unwrap();
    h.runtime.start(&neighbour).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let usage = |id| {
        let rt = h.runtime.clone();
        async move { rt.stats(id).await.unwrap().task.cpu_ns }
    };
    let t0 = Instant::now();
    let (h0, n0) = (usage(&hog.task_id).await, usage(&neighbour.task_id).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (h1, n1) = (usage(&hog.task_id).await, usage(&neighbour.task_id).await);
    let secs = t0.elapsed().as_nanos() as f64;
    let (hog_cores, neighbour_cores) = ((h1 - h0) as f64 / secs, (n1 - n0) as f64 / secs);
    eprintln!("hog (256 units, 4 spinners) {hog_cores:.3} cores; neighbour (512 units) {neighbour_cores:.3} cores");
    assert!(hog_cores <= 0.35, "the hog is held to a quarter core: {hog_cores:.3}");
    assert!(hog_cores >= 0.15, "the hog does get its quarter: {hog_cores:.3}");
    // Other helpers share this machine's 2 cores: the neighbour's share
    // is checked against what it was given, with room for that load.
    assert!((0.30..=0.60).contains(&neighbour_cores), "the neighbour keeps its half core: {neighbour_cores:.3}");
    for spec in [&hog, &neighbour] {
        h.runtime.stop_blocking(&spec.task_id, Some(Duration::ZERO)).unwrap();
        h.runtime.remove(&spec.task_id).await.unwrap();
        assert!(common::leftovers(&spec.task_id, &h.state_dir()).is_empty());
    }
}
