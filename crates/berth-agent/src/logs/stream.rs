//! One container's log stream: its stdout and stderr files tailed from
//! the offsets shipped so far, their lines appended to the stream, and
//! the new offsets written down after every append.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use berth_runtime_api::LogPaths;
use berth_store::{LogGroupRecord, NewLogEvent, StoreError};

use crate::plane::NodeControlPlane;

use super::budget::{Budget, cost};
use super::config::{Destination, GROUP_MISSING};
use super::lines::{self, split};

/// The most bytes read from one file in one step (a step ships them all
/// before reading on).
const READ_CHUNK: u64 = 1 << 20;

/// The file, next to the container's output, that holds how far each of
/// its files has been shipped.
pub const OFFSETS_FILE: &str = "awslogs.json";

/// How far each file has been shipped: every byte before the offset is
/// in the stream (or was an empty line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Offsets {
    pub stdout: u64,
    pub stderr: u64,
}

struct Source {
    path: PathBuf,
    /// Opened once the container created it.
    file: Option<File>,
    offset: u64,
}

impl Source {
    fn new(path: PathBuf, offset: u64) -> Self {
        Self { path, file: None, offset }
    }

    /// Up to [`READ_CHUNK`] bytes from the offset on (none if the file
    /// is not there yet), and whether that is all there is for now.
    fn read(&mut self) -> (Vec<u8>, bool) {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), true),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot open container output");
                    return (Vec::new(), true);
                }
            }
        }
        let Some(file) = &self.file else { return (Vec::new(), true) };
        // Regular files: these calls return at once (an idle poll is one fstat).
        let len = match file.metadata() {
            Ok(m) => m.len(),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot stat container output");
                return (Vec::new(), true);
            }
        };
        if len < self.offset {
            // Shorter than what was shipped: the runtime capped the file
            // (copied it to `NAME.1`, then truncated it). What was not
            // shipped yet is in the copy, not in the stream.
            tracing::warn!(path = %self.path.display(), shipped = self.offset, now = len,
                "container output was rotated; shipping the new file from its start");
            self.offset = 0;
        }
        let want = len.saturating_sub(self.offset).min(READ_CHUNK);
        if want == 0 {
            return (Vec::new(), true);
        }
        let mut buf = vec![0; want as usize];
        let mut got = 0;
        while got < buf.len() {
            match file.read_at(&mut buf[got..], self.offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot read container output");
                    break;
                }
            }
        }
        buf.truncate(got);
        let all = self.offset + got as u64 >= len;
        (buf, all)
    }
}

/// One container's stream and its two sources.
pub struct ContainerLog {
    pub dest: Destination,
    /// stdout, stderr.
    sources: [Source; 2],
    offsets_file: PathBuf,
    /// Timestamps never go back within a stream, whatever the clock does.
    last_timestamp: i64,
    /// A source ends in a line still being written (kept until its
    /// newline comes or the container is done).
    pub partial: bool,
    /// The last step failed (warned once until one succeeds).
    failing: bool,
    /// The group was found missing (warned once).
    no_group: bool,
}

/// What became of an append.
enum Put {
    Stored,
    /// The group is gone and not to be created: the events have nowhere to go.
    NoGroup,
}

impl ContainerLog {
    /// The stream of a container whose output is at `paths`, resuming
    /// from the offsets written down next to it.
    pub fn open(dest: Destination, paths: &LogPaths) -> Self {
        let dir = paths.stdout.parent().unwrap_or(Path::new("/")).to_path_buf();
        let offsets_file = dir.join(OFFSETS_FILE);
        let offsets = read_offsets(&offsets_file);
        Self {
            dest,
            sources: [
                Source::new(paths.stdout.clone(), offsets.stdout),
                Source::new(paths.stderr.clone(), offsets.stderr),
            ],
            offsets_file,
            last_timestamp: 0,
            partial: false,
            failing: false,
            no_group: false,
        }
    }

    pub fn offsets(&self) -> Offsets {
        Offsets { stdout: self.sources[0].offset, stderr: self.sources[1].offset }
    }

    /// Ships everything the files hold now. `done`: the container has
    /// exited, so a last line without its newline is shipped too.
    /// Returns early (keeping what was not shipped for the next call) if
    /// the store fails.
    /// Lines past the task's `budget` are dropped (the offsets move past
    /// them) and told of in a notice line in the stream.
    pub async fn ship(&mut self, store: &dyn NodeControlPlane, budget: &mut Budget, done: bool) -> Result<(), StoreError> {
        let result = self.ship_all(store, budget, done).await;
        match (&result, self.failing) {
            (Err(e), false) => {
                tracing::warn!(group = %self.dest.group, stream = %self.dest.stream, error = %e,
                    cause = ?std::error::Error::source(e), "shipping container output failed; retrying");
            }
            (Ok(()), true) => tracing::info!(stream = %self.dest.stream, "shipping container output again"),
            _ => {}
        }
        self.failing = result.is_err();
        result
    }

    async fn ship_all(&mut self, store: &dyn NodeControlPlane, budget: &mut Budget, done: bool) -> Result<(), StoreError> {
        loop {
            let mut events = Vec::new();
            // For each event: which source, and the offset just past it.
            let mut ends = Vec::new();
            let mut consumed = [0; 2];
            let mut all = true;
            self.partial = false;
            let now = now_ms().max(self.last_timestamp);
            for (i, source) in self.sources.iter_mut().enumerate() {
                let (buf, source_all) = source.read();
                all &= source_all;
                let (lines, used) = split(&buf, done && source_all);
                self.partial |= source_all && used < buf.len();
                consumed[i] = source.offset + used as u64;
                for line in lines {
                    if !budget.take(cost(&line.message), std::time::Instant::now()) {
                        continue;
                    }
                    ends.push((i, source.offset + line.end as u64));
                    events.push(NewLogEvent { timestamp: now, message: line.message });
                }
            }
            if let Some(notice) = budget.notice(std::time::Instant::now(), done && all) {
                tracing::warn!(group = %self.dest.group, stream = %self.dest.stream, "{notice}");
                // Last, so the offset it carries is past every line read.
                ends.push((0, consumed[0]));
                events.push(NewLogEvent { timestamp: now, message: notice });
            }
            if !events.is_empty() {
                self.last_timestamp = now;
            }
            let mut start = 0;
            for batch in lines::batches(&events, |e| e.message.as_str()) {
                match self.put(store, batch).await? {
                    Put::Stored => {}
                    Put::NoGroup if done => {
                        tracing::warn!(group = %self.dest.group, stream = %self.dest.stream, events = batch.len(),
                            "container output dropped: its log group was deleted");
                    }
                    Put::NoGroup => {
                        if !self.no_group {
                            tracing::warn!(group = %self.dest.group, stream = %self.dest.stream,
                                "container output waits: its log group was deleted (the output is kept until the task stops)");
                        }
                        self.no_group = true;
                        return Ok(());
                    }
                }
                self.no_group = false;
                for &(source, end) in &ends[start..start + batch.len()] {
                    self.sources[source].offset = end;
                }
                start += batch.len();
                self.save();
            }
            // Past the empty lines after the last event, too.
            let before = self.offsets();
            for (source, end) in self.sources.iter_mut().zip(consumed) {
                source.offset = end;
            }
            if self.offsets() != before {
                self.save();
            }
            if all {
                return Ok(());
            }
        }
    }

    /// Appends `events`, (re)creating the stream — and the group, when
    /// asked to — if it is missing.
    async fn put(&self, store: &dyn NodeControlPlane, events: &[NewLogEvent]) -> Result<Put, StoreError> {
        let (group, stream) = (&self.dest.group, &self.dest.stream);
        match store.put_log_events(group, stream, events, now_ms()).await {
            Ok(_) => return Ok(Put::Stored),
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        if ensure_stream(store, &self.dest).await?.is_some() {
            return Ok(Put::NoGroup);
        }
        store.put_log_events(group, stream, events, now_ms()).await?;
        Ok(Put::Stored)
    }

    /// Writes the offsets down (a new file renamed over the old, so a
    /// crash leaves one or the other). Without the container's directory
    /// there is nothing to resume, so nothing to write.
    fn save(&self) {
        let tmp = self.offsets_file.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            std::fs::write(&tmp, serde_json::to_vec(&self.offsets())?)?;
            std::fs::rename(&tmp, &self.offsets_file)
        };
        if let Err(e) = write()
            && self.offsets_file.parent().is_some_and(Path::exists)
        {
            tracing::warn!(path = %self.offsets_file.display(), error = %e, "cannot write log offsets");
        }
    }
}

/// Makes sure `dest`'s stream exists, creating its group first if the
/// options ask for that. Returns ECS's reason if the group is missing.
pub async fn ensure_stream(store: &dyn NodeControlPlane, dest: &Destination) -> Result<Option<&'static str>, StoreError> {
    if dest.create_group {
        let group = LogGroupRecord {
            name: dest.group.clone(),
            created_at: now_ms(),
            retention_days: None,
            class: "STANDARD".into(),
            stored_bytes: 0,
        };
        match store.create_log_group(&group).await {
            Ok(_) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
    } else if !store.log_group_exists(&dest.group).await? {
        return Ok(Some(GROUP_MISSING));
    }
    match store.create_log_stream(&dest.group, &dest.stream, now_ms()).await {
        Ok(_) | Err(StoreError::Conflict) => Ok(None),
        Err(StoreError::NotFound(_)) => Ok(Some(GROUP_MISSING)),
        Err(e) => Err(e),
    }
}

fn read_offsets(path: &Path) -> Offsets {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            // Shipping from the start again duplicates, but loses nothing.
            tracing::warn!(path = %path.display(), error = %e, "unreadable log offsets; shipping from the start");
            Offsets::default()
        }),
        Err(_) => Offsets::default(),
    }
}

/// Milliseconds since the epoch, as CloudWatch Logs counts time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
