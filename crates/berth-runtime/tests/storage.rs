//! A task's ephemeral storage against the real kernel: its writable
//! layers and volumes share one limit, a write past it is ENOSPC inside
//! the container (the task goes on), and the space, the mount and the
//! loop device are gone after a stop and after a failed start. Needs root
//! and loop devices.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime::scratch::Scratch;
use berth_runtime_api::{ContainerState, TaskRuntime, VolumeMount};
use common::{Harness, require_root};

const GIB: u64 = 1 << 30;

fn require_loops(test: &str) -> Option<()> {
    require_root(test)?;
    if Scratch::probe() == Scratch::Unlimited {
        eprintln!("SKIPPED: {test}: needs mkfs.ext4 (e2fsprogs) and loop devices (/dev/loop-control)");
        return None;
    }
    Some(())
}

fn mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_writing_past_its_ephemeral_storage_gets_enospc_and_the_space_is_released_at_stop() {
    let Some(()) = require_loops("a_task_writing_past_its_ephemeral_storage_gets_enospc_and_the_space_is_released_at_stop") else {
        return;
    };
    let h = Harness::new();
    // 700 MiB into the writable layer, then 700 MiB into a volume: one
    // limit of 1 GiB for both, so the second write fails. The container
    // goes on running after it (the task is not stopped for it).
    let script = "dd if=/dev/zero of=/layer.bin bs=1M count=700 2>/dev/null; echo layer=$?; \
                  dd if=/dev/zero of=/data/volume.bin bs=1M count=700 2>/tmp/dd.err; echo volume=$?; \
                  grep -o 'No space left on device' /tmp/dd.err | head -n 1; echo done; sleep 60";
    let mut c = h.sh("hog", script);
    c.volume_mounts = vec![VolumeMount { volume: "data".into(), container_path: "/data".into(), read_only: false }];
    let mut spec = h.task("disk", c);
    spec.ephemeral_storage_gib = Some(1);
    let _guard = h.guard(&spec.task_id);
    let started = Instant::now();
    h.runtime.start(&spec).await.unwrap();
    eprintln!("start with a 1 GiB ephemeral storage: {:?}", started.elapsed());
    let task_dir = h.state_dir().join("tasks").join(spec.task_id.as_str());
    let (image, scratch) = (task_dir.join("scratch.img"), task_dir.join("scratch"));
    assert!(mounted(&scratch), "the task's storage is a mount of its own");
    assert_eq!(std::fs::metadata(&image).unwrap().len(), GIB, "an image of the task's size");

    let deadline = Instant::now() + Duration::from_secs(60);
    while !h.stdout(&spec.task_id, "hog").contains("done") {
        assert!(Instant::now() < deadline, "the writes did not finish: {:?}", h.stdout(&spec.task_id, "hog"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = h.stdout(&spec.task_id, "hog");
    assert!(out.contains("layer=0\n"), "the first 700 MiB fit: {out:?}");
    assert!(out.contains("volume=1\n") && out.contains("No space left on device\n"), "ENOSPC past the limit: {out:?}");
    let host_bytes = std::fs::metadata(&image).unwrap().blocks() * 512;
    eprintln!("host blocks held by the full image: {} MiB", host_bytes >> 20);
    assert!(host_bytes <= GIB + (16 << 20), "the host holds at most the task's size: {host_bytes}");
    // The task goes on: its container is still running.
    let status = h.runtime.status(&spec.task_id).await.unwrap();
    assert!(matches!(status.container("hog"), Some(ContainerState::Running { .. })), "{status:?}");

    h.runtime.stop(&spec.task_id).await.unwrap();
    assert!(!mounted(&scratch), "unmounted at stop");
    assert!(!image.exists(), "the image (and its blocks) deleted at stop");
    h.runtime.remove(&spec.task_id).await.unwrap();
    assert!(common::leftovers(&spec.task_id, &h.state_dir()).is_empty(), "{:?}", common::leftovers(&spec.task_id, &h.state_dir()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_that_fails_to_start_leaves_no_storage_mounted() {
    let Some(()) = require_loops("a_task_that_fails_to_start_leaves_no_storage_mounted") else {
        return;
    };
    let h = Harness::new();
    let mut c = h.sh("main", "true");
    c.user = Some("nosuchuser".into());
    let mut spec = h.task("diskfail", c);
    spec.ephemeral_storage_gib = Some(20);
    let err = h.runtime.start(&spec).await.unwrap_err();
    assert!(err.to_string().contains("nosuchuser"), "{err}");
    let task_dir = h.state_dir().join("tasks").join(spec.task_id.as_str());
    assert!(!task_dir.exists(), "nothing of the task is left");
    assert!(common::leftovers(&spec.task_id, &h.state_dir()).is_empty(), "{:?}", common::leftovers(&spec.task_id, &h.state_dir()));
}
