//! Benchmark 8, a log flood: DescribeTasks latency while one task writes
//! without pause (`yes`) into awslogs, against the same calls while only
//! an idle task runs, in one run; and how fast the store grows meanwhile
//! (the agent's per-task shipping budget, 1 MiB/s by default, bounds it).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Ctx;
use crate::client::Client;
use crate::launch::BIG_NODE;
use crate::stats::ms;
use crate::world::{check, sleep};

const BENCH: &str = "flood";
/// The agent's default shipping budget per task (`--log-ship-rate`).
const SHIP_RATE_MIB: f64 = 1.0;

pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let calls = ctx.opts.flood_calls;
    let seconds = ctx.opts.flood_seconds;
    let busybox = ctx.images()?.reference("busybox:latest");
    let berth = ctx.berth(BENCH, BIG_NODE, "info,sqlx=warn")?;
    berth.register_sleeper("bench-idle", &busybox)?;
    berth.ecs("RegisterTaskDefinition", &flood_definition("bench-flood", &busybox))?;
    let mut client = berth.client();
    let within = Duration::from_secs(120);
    let (idle, _) = berth.run_task(&mut client, "bench-idle")?;
    berth.wait_all(&mut client, std::slice::from_ref(&idle), "RUNNING", within, Duration::from_millis(100))?;

    eprintln!("[flood] {calls} DescribeTasks calls, no flood");
    let quiet = describe_times(&mut client, &idle, calls)?;
    let before = store_bytes(&berth.data);
    let (flood, _) = berth.run_task(&mut client, "bench-flood")?;
    berth.wait_all(&mut client, std::slice::from_ref(&flood), "RUNNING", within, Duration::from_millis(100))?;
    let began = Instant::now();
    sleep(Duration::from_secs(2))?; // the shipper is at its budget
    eprintln!("[flood] {calls} DescribeTasks calls while `yes` floods awslogs");
    let flooding = describe_times(&mut client, &idle, calls)?;
    while began.elapsed() < Duration::from_secs(seconds) {
        sleep(Duration::from_millis(200))?;
    }
    let flooded = began.elapsed();
    let grown = store_bytes(&berth.data).saturating_sub(before);
    let status = berth.describe(&mut client, std::slice::from_ref(&flood))?;
    let still_running = status.first().is_some_and(|t| t["lastStatus"] == "RUNNING");
    check()?;
    let left = berth.finish();
    ctx.leftovers(left);
    anyhow::ensure!(still_running, "the flooding task did not keep running: {status:?}");

    let r = &mut ctx.report;
    r.samples(
        "flood.describe_tasks.quiet",
        "ms",
        "Baseline: DescribeTasks of one task, one client on a keep-alive connection, while that idle task is all that runs",
        &quiet,
    );
    r.samples(
        "flood.describe_tasks.flooding",
        "ms",
        "The same calls while a second task runs `yes` into awslogs (from 2 s after it is RUNNING)",
        &flooding,
    );
    r.ratio("flood.describe_tasks.flooding", "flood.describe_tasks.quiet");
    r.target("flood.describe_tasks.flooding", "p99 < 10 ms while one task floods", |f| match &f.value {
        crate::report::Value::Samples(s) => s.p99 < 10.0,
        crate::report::Value::Single(v) => *v < 10.0,
    });
    let rate = grown as f64 / (1024.0 * 1024.0) / flooded.as_secs_f64();
    r.single(
        "flood.store_growth",
        "MiB/s",
        &format!(
            "Growth of the SQLite store (berth.db and its WAL) over {:.0} s of the flood; the agent ships at most {SHIP_RATE_MIB} MiB/s per task, as PutLogEvents counts bytes (message + 26 per event), the store adds its indexes",
            flooded.as_secs_f64()
        ),
        rate,
    );
    r.target("flood.store_growth", "bounded by the shipping budget: < 3× 1 MiB/s", |f| f.value.headline() < 3.0 * SHIP_RATE_MIB);
    Ok(())
}

/// One busybox container writing `y` lines without pause, shipped by awslogs.
fn flood_definition(family: &str, image: &str) -> Value {
    json!({"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
           "cpu": "256", "memory": "512",
           "containerDefinitions": [{"name": "main", "image": image, "command": ["yes"], "stopTimeout": 2,
               "logConfiguration": {"logDriver": "awslogs", "options": {
                   "awslogs-group": "/bench/flood", "awslogs-region": "us-east-1",
                   "awslogs-stream-prefix": "bench", "awslogs-create-group": "true"}}}]})
}

/// Each of `calls` DescribeTasks of `arn`, in ms.
fn describe_times(client: &mut Client, arn: &str, calls: usize) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(calls);
    for _ in 0..calls {
        check()?;
        let answer = client.ecs("DescribeTasks", &json!({"tasks": [arn]}))?;
        anyhow::ensure!(answer.status == 200, "DescribeTasks answered HTTP {}: {}", answer.status, answer.body);
        out.push(ms(answer.took));
    }
    Ok(out)
}

/// Bytes of the data dir's SQLite store, its WAL and shared memory.
fn store_bytes(data: &Path) -> u64 {
    ["berth.db", "berth.db-wal", "berth.db-shm"].iter().filter_map(|f| std::fs::metadata(data.join(f)).ok()).map(|m| m.len()).sum()
}
