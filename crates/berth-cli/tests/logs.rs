//! The awslogs driver and `berth logs`, for real: busybox tasks run by the
//! real binary (image pushed into a real registry on loopback), their
//! output read back through the CloudWatch Logs API (GetLogEvents, signed
//! for `logs`) and through `berth logs` run as a child process. Needs
//! root, as every task test does; CI runs as root.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use berth_testinfra::server::call;
use serde_json::{Value, json};

mod common;
use common::{World, bin, can_run, task_id};

/// ECS's reason for a missing log group (the agent's, word for word).
const GROUP_MISSING: &str = "ResourceInitializationError: failed to validate logger args: create stream has been \
     retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does \
     not exist. : exit status 1";
/// CloudWatch's largest event message: 256 KiB less 26 bytes of overhead.
const MAX_MESSAGE: usize = 262_118;

impl World {
    fn logs(&self, op: &str, body: &Value) -> (u16, Value) {
        let creds = self.berth.creds().unwrap();
        let target = format!("Logs_20140328.{op}");
        call(&self.berth.endpoint, &target, body.to_string().as_bytes(), Some((&creds, "us-east-1", "logs"))).unwrap()
    }

    /// A busybox container running `script` that logs to `group` (made
    /// by the driver when `create` is set) with stream prefix `app`.
    fn container(&self, name: &str, script: &str, group: &str, create: bool) -> Value {
        let mut options =
            json!({"awslogs-group": group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app"});
        if create {
            options["awslogs-create-group"] = json!("true");
        }
        json!({"name": name, "image": self.registry.reference("busybox:latest"), "command": ["sh", "-c", script],
               "stopTimeout": 2, "logConfiguration": {"logDriver": "awslogs", "options": options}})
    }

    /// Registers `family` with `containers` and runs one task of it.
    fn run(&self, family: &str, containers: Vec<Value>) -> (String, String) {
        self.ecs(
            "RegisterTaskDefinition",
            json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                   "cpu": "256", "memory": "512", "containerDefinitions": containers}),
        );
        let v = self.ecs(
            "RunTask",
            json!({"taskDefinition": family,
                   "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-default"]}}}),
        );
        assert_eq!(v["failures"], json!([]), "{v}");
        let arn = v["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
        let id = task_id(&arn);
        (arn, id)
    }

    /// Every event of a stream, oldest first, paging GetLogEvents forward
    /// from the head until the token comes back unchanged.
    fn events(&self, group: &str, stream: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = json!({"logGroupName": group, "logStreamName": stream, "startFromHead": true});
            if let Some(t) = &token {
                req["nextToken"] = json!(t);
            }
            let (status, v) = self.logs("GetLogEvents", &req);
            assert_eq!(status, 200, "GetLogEvents {req} → {v}");
            let events = v["events"].as_array().cloned().unwrap_or_default();
            let next = v["nextForwardToken"].as_str().map(str::to_owned);
            if events.is_empty() || next == token {
                return out;
            }
            out.extend(events);
            token = next;
        }
    }

    fn messages(&self, group: &str, stream: &str) -> Vec<String> {
        self.events(group, stream).iter().map(|e| e["message"].as_str().unwrap().to_owned()).collect()
    }

    /// Polls until the stream holds at least `n` events.
    fn wait_for_events(&self, group: &str, stream: &str, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let (status, _) = self.logs("DescribeLogStreams", &json!({"logGroupName": group}));
            let got = if status == 200 { self.messages(group, stream) } else { Vec::new() };
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{n} events not in {group} {stream} within {within:?}: {got:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `berth logs ARGS` against this Berth, as a user runs it.
fn berth_logs(w: &World, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("logs").args(args).arg("--data-dir").arg(&w.berth.data_dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("BERTH_") {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix} {i}")).collect()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn every_line_is_in_get_log_events_in_order_including_the_last_before_exit() {
    if !can_run("every_line_is_in_get_log_events_in_order_including_the_last_before_exit") {
        return;
    }
    let w = World::start();
    // Lines on stdout and stderr, the last one written as the container
    // exits: with its newline in one task, without it in the other.
    let script = |tail: &str| {
        format!(
            "i=1; while [ $i -le 300 ]; do echo \"line $i\"; i=$((i+1)); done; echo 'to stderr' >&2; {tail}; exit 4"
        )
    };
    let (a, a_id) = w.run("numbered", vec![w.container("main", &script("echo 'last line'"), "/berth/logs", true)]);
    let (b, b_id) =
        w.run("unterminated", vec![w.container("main", &script("printf 'no newline'"), "/berth/logs", true)]);
    for arn in [&a, &b] {
        let t = w.wait_for(arn, "STOPPED", Duration::from_secs(90));
        assert_eq!(t["containers"][0]["exitCode"], 4, "{t:#}");
    }
    for (id, last) in [(&a_id, "last line"), (&b_id, "no newline")] {
        let got = w.messages("/berth/logs", &format!("app/main/{id}"));
        // stdout and stderr share the stream, each in its own order (lines
        // read in one step share a timestamp: stdout's come first).
        let mut want = numbered("line", 300);
        want.push(last.into());
        let stdout: Vec<&String> = got.iter().filter(|m| *m != "to stderr").collect();
        assert_eq!(stdout, want.iter().collect::<Vec<_>>(), "task {id}");
        assert_eq!(got.iter().filter(|m| *m == "to stderr").count(), 1, "task {id}: {got:?}");
        assert_eq!(got.len(), 302, "task {id}");
    }
    // The group was made by the driver; the streams are ECS's names.
    let (_, v) = w.logs("DescribeLogStreams", &json!({"logGroupName": "/berth/logs"}));
    let mut names: Vec<&str> =
        v["logStreams"].as_array().unwrap().iter().map(|s| s["logStreamName"].as_str().unwrap()).collect();
    names.sort_unstable();
    let mut want = vec![format!("app/main/{a_id}"), format!("app/main/{b_id}")];
    want.sort();
    assert_eq!(names, want);
    // Timestamps are milliseconds of when the lines were read: recent, in order.
    let events = w.events("/berth/logs", &format!("app/main/{a_id}"));
    let stamps: Vec<i64> = events.iter().map(|e| e["timestamp"].as_i64().unwrap()).collect();
    assert!(stamps.windows(2).all(|p| p[0] <= p[1]), "{stamps:?}");
    assert!(now_ms() - stamps[0] < 120_000, "{stamps:?}");

    // `berth logs` prints the same lines, for a stopped task too.
    let out = berth_logs(&w, &[&a_id]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(printed, w.messages("/berth/logs", &format!("app/main/{a_id}")));
    // --since: only what is newer (these lines were read over a second ago).
    let out = berth_logs(&w, &[&a_id, "--since", "1h", "--output", "json"]).output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 302);
    std::thread::sleep(Duration::from_millis(1500));
    let out = berth_logs(&w, &[&a_id, "--since", "1s"]).output().unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
}

#[test]
fn a_long_line_is_split_at_the_event_limit() {
    if !can_run("a_long_line_is_split_at_the_event_limit") {
        return;
    }
    let w = World::start();
    let total = MAX_MESSAGE + 1000;
    let script = format!("s=x; while [ ${{#s}} -lt {total} ]; do s=$s$s; done; echo \"${{s:0:{total}}}\"; echo after");
    let (arn, id) = w.run("long", vec![w.container("main", &script, "/berth/long", true)]);
    w.wait_for(&arn, "STOPPED", Duration::from_secs(90));
    let got = w.messages("/berth/long", &format!("app/main/{id}"));
    let sizes: Vec<usize> = got.iter().map(String::len).collect();
    assert_eq!(sizes, [MAX_MESSAGE, 1000, 5], "a {total}-byte line, then a short one");
    assert!(got[0].bytes().chain(got[1].bytes()).all(|b| b == b'x'));
    assert_eq!(got[2], "after");
}

#[test]
fn a_missing_log_group_fails_the_task_with_ecs_reason() {
    if !can_run("a_missing_log_group_fails_the_task_with_ecs_reason") {
        return;
    }
    let w = World::start();
    let (arn, _) = w.run("nogroup", vec![w.container("main", "echo never", "/berth/absent", false)]);
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(60));
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    assert_eq!(t["stoppedReason"], GROUP_MISSING, "{t:#}");
    assert_eq!(t["containers"][0]["reason"], GROUP_MISSING, "{t:#}");
    assert!(t["startedAt"].is_null(), "it never started: {t:#}");
    let (status, v) = w.logs("DescribeLogGroups", &json!({"logGroupNamePrefix": "/berth/absent"}));
    assert_eq!((status, v["logGroups"].clone()), (200, json!([])), "no group was made");

    // Once the group exists, the same definition runs.
    let (status, v) = w.logs("CreateLogGroup", &json!({"logGroupName": "/berth/absent"}));
    assert_eq!(status, 200, "{v}");
    let v = w.ecs(
        "RunTask",
        json!({"taskDefinition": "nogroup", "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-default"]}}}),
    );
    let arn = v["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(60));
    assert_eq!(t["stopCode"], "EssentialContainerExited", "{t:#}");
    let id = arn.rsplit('/').next().unwrap();
    assert_eq!(w.messages("/berth/absent", &format!("app/main/{id}")), ["never"]);
}

#[test]
fn berth_logs_follow_streams_a_running_task_and_exits_when_it_stops() {
    if !can_run("berth_logs_follow_streams_a_running_task_and_exits_when_it_stops") {
        return;
    }
    let w = World::start();
    // A line every 200 ms for 4 s, beside a container without awslogs.
    let ticker = w.container(
        "main",
        "i=1; while [ $i -le 20 ]; do echo \"tick $i\"; i=$((i+1)); sleep 0.2; done",
        "/berth/follow",
        true,
    );
    let quiet = json!({"name": "quiet", "image": w.registry.reference("busybox:latest"), "essential": false,
                       "command": ["sh", "-c", "sleep 1000"], "stopTimeout": 1});
    let (arn, id) = w.run("ticker", vec![ticker, quiet]);
    let started = Instant::now();
    let mut child = berth_logs(&w, &[&id, "-f"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(90));
    let stopped = Instant::now();
    assert_eq!(t["stopCode"], "EssentialContainerExited", "{t:#}");
    // It exits by itself once the task is STOPPED and all is printed.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "berth logs -f still running 15 s after the task stopped");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    let lines: Vec<(Instant, String)> = rx.try_iter().collect();
    let printed: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(printed, numbered("tick", 20), "stderr: {stderr}");
    // Streamed: the first lines came while the task was still running.
    let first = lines[0].0;
    eprintln!("first line {:?} after RunTask; task STOPPED {:?} after", first - started, stopped - started);
    assert!(first + Duration::from_secs(2) < stopped, "the first line came only as the task stopped");
    assert!(lines[4].0 + Duration::from_secs(1) < stopped, "the fifth line came only as the task stopped");
    assert!(stderr.contains("container quiet has no awslogs log configuration"), "{stderr}");
}

#[test]
fn lines_written_while_berth_is_down_are_shipped_exactly_once() {
    if !can_run("lines_written_while_berth_is_down_are_shipped_exactly_once") {
        return;
    }
    let mut w = World::start();
    // Lines, a quiet spell (Berth is killed in it: nothing is in flight),
    // lines while Berth is down, another spell (it comes back), lines, a
    // last line without its newline.
    let script = "for i in 1 2 3 4 5 6 7 8 9 10; do echo \"before $i\"; done; sleep 4; \
                  for i in 1 2 3 4 5 6 7 8 9 10; do echo \"during $i\"; echo \"err $i\" >&2; sleep 0.1; done; sleep 6; \
                  for i in 1 2 3 4 5; do echo \"after $i\"; done; printf bye";
    let (arn, id) = w.run("survivor", vec![w.container("main", script, "/berth/restart", true)]);
    let stream = format!("app/main/{id}");
    w.wait_for_events("/berth/restart", &stream, 10, Duration::from_secs(60));
    // (Past the offsets write that follows the append we just saw.)
    std::thread::sleep(Duration::from_millis(300));
    w.berth.kill9().unwrap();
    let killed_ms = now_ms();
    // The "during" lines are written (4 s after "before", 1 s long) while no Berth runs.
    std::thread::sleep(Duration::from_secs(6));
    w.restart_after_kill9();
    let t = w.wait_for(&arn, "STOPPED", Duration::from_secs(60));
    assert_eq!(t["stopCode"], "EssentialContainerExited", "{t:#}");

    let events = w.events("/berth/restart", &stream);
    let got: Vec<&str> = events.iter().map(|e| e["message"].as_str().unwrap()).collect();
    let mut want = numbered("before", 10);
    for i in 1..=10 {
        want.push(format!("during {i}"));
    }
    want.extend(numbered("after", 5));
    want.push("bye".into());
    // stdout keeps its order, and so does stderr; they share the stream.
    let stdout: Vec<&str> = got.iter().copied().filter(|m| !m.starts_with("err ")).collect();
    assert_eq!(stdout, want, "every stdout line exactly once, in order");
    let stderr: Vec<&str> = got.iter().copied().filter(|m| m.starts_with("err ")).collect();
    assert_eq!(stderr, numbered("err", 10), "every stderr line exactly once, in order");
    // The "during" lines were read after the restart, not before the kill.
    for e in events.iter().filter(|e| e["message"].as_str().unwrap().starts_with("during")) {
        assert!(e["timestamp"].as_i64().unwrap() > killed_ms, "{e}");
    }
}
