//! Benchmark 4, the control plane: DescribeTasks (100 tasks a call) and ListTasks with
//! 10,000 task records in the store, and RegisterTaskDefinition and
//! RunTask request throughput, on SQLite and on PostgreSQL.
//!
//! Berth runs without its agent (`--no-agent`): placed tasks are records
//! only. The nodes are records the bench writes through the store crate,
//! and so are the seeded tasks: copies of one real RunTask's record.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use berth_model::lifecycle::{TaskEvent, TaskStatus};
use berth_model::node::{Node, NodeStatus};
use berth_model::task::Task;
use berth_store::Store;
use berth_testinfra::postgres::TempPostgres;
use rand::seq::IndexedRandom as _;
use serde_json::json;

use crate::Ctx;
use crate::client::Client;
use crate::stats::ms;
use crate::world::{Berth, check, sleeper_definition};

const BENCH: &str = "control";
/// Fake nodes the seeded tasks and the RunTask calls are placed on.
const NODES: usize = 10;

pub fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    // Each backend on its own: one that cannot be measured is recorded as
    // such and the other still runs.
    for backend in ["sqlite", "postgres"] {
        if let Err(e) = run_backend(ctx, backend) {
            ctx.report.not_measured(&format!("control.{backend}"), &format!("{e:#}"), false);
        }
    }
    for backend in ["sqlite", "postgres"] {
        ctx.report.target(&format!("control.{backend}.describe_tasks"), "p99 < 10 ms at 10,000 tasks", |f| match &f.value {
            crate::report::Value::Samples(s) => s.p99 < 10.0,
            crate::report::Value::Single(v) => *v < 10.0,
        });
    }
    ctx.report.ratio("control.postgres.describe_tasks", "control.sqlite.describe_tasks");
    Ok(())
}

fn run_backend(ctx: &mut Ctx, backend: &str) -> anyhow::Result<()> {
    let seed_n = ctx.opts.seed_tasks;
    let calls = ctx.opts.control_calls;
    let writers = ctx.opts.control_writers;
    let image = ctx.images()?.reference("busybox:latest");
    let name = format!("control-{backend}");
    let postgres;
    let (url, args): (String, Vec<String>) = match backend {
        "sqlite" => {
            let db = ctx.work().join(&name).join("data/berth.db");
            (format!("sqlite://{}", db.display()), vec!["--no-agent".into()])
        }
        _ => {
            postgres = TempPostgres::start().context("cannot start a throwaway PostgreSQL (Debian package postgresql)")?;
            let url = postgres.create_database("berth_bench")?;
            (url.clone(), vec!["--no-agent".into(), "--store".into(), url])
        }
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let berth = ctx.berth(&name, &args, "info,sqlx=warn")?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let store: Arc<dyn Store> =
        rt.block_on(berth_store::open(&url)).with_context(|| format!("opening the {backend} store"))?.records;
    rt.block_on(heartbeat(store.as_ref()))?;

    // One real task, then copies of its record under fresh ARNs.
    berth.ecs("RegisterTaskDefinition", &sleeper_definition("bench-cp", &image))?;
    let mut client = berth.client();
    let (template_arn, _) = berth.run_task(&mut client, "bench-cp")?;
    let template = rt
        .block_on(store.get_task(&template_arn))?
        .context("the RunTask task is not in the store")?
        .value;
    eprintln!("[control/{backend}] seeding {} task records through the store (16 writes in flight)", seed_n - 1);
    let began = Instant::now();
    let arns: Vec<String> = rt.block_on(async {
        let next = Arc::new(AtomicUsize::new(1));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (store, template, next) = (store.clone(), template.clone(), next.clone());
            workers.spawn(async move {
                let mut arns = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= seed_n {
                        return Ok::<_, anyhow::Error>(arns);
                    }
                    let record = seeded(&template, i)?;
                    store.put_task(&record, None).await?;
                    arns.push(record.arn.to_string());
                }
            });
        }
        let mut all = vec![template_arn.clone()];
        while let Some(done) = workers.join_next().await {
            all.extend(done??);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    let seeding = began.elapsed();
    ctx.report.note(
        BENCH,
        format!(
            "{backend}: seeded {} task records (copies of a RunTask's record, RUNNING on {NODES} node records) with Store::put_task, 16 in flight, in {:.1} s ({:.0} records/s){}",
            arns.len() - 1,
            seeding.as_secs_f64(),
            (arns.len() - 1) as f64 / seeding.as_secs_f64(),
            if backend == "sqlite" { "; one transaction per record, as the trait offers, on the data dir's SQLite (synchronous=FULL)" } else { "; the throwaway server runs with fsync=off" }
        ),
    );
    check()?;

    // DescribeTasks of 100 random tasks a call.
    let mut rng = rand::rng();
    let mut describe = Vec::new();
    for _ in 0..calls {
        let pick: Vec<&String> = arns.choose_multiple(&mut rng, 100).collect();
        let a = client.ecs("DescribeTasks", &json!({"tasks": pick}))?;
        anyhow::ensure!(a.status == 200, "DescribeTasks: HTTP {} {}", a.status, a.body);
        let found = a.body["tasks"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(found == 100, "DescribeTasks found {found} of 100: {}", a.body["failures"]);
        describe.push(ms(a.took));
    }
    // ListTasks: every page of 100, twice.
    let mut list = Vec::new();
    let mut walk = Vec::new();
    for _ in 0..2 {
        let walk_began = Instant::now();
        let (mut token, mut seen) = (None::<String>, 0);
        loop {
            check()?;
            let mut body = json!({"maxResults": 100});
            if let Some(t) = &token {
                body["nextToken"] = json!(t);
            }
            let a = client.ecs("ListTasks", &body)?;
            anyhow::ensure!(a.status == 200, "ListTasks: HTTP {} {}", a.status, a.body);
            list.push(ms(a.took));
            seen += a.body["taskArns"].as_array().map_or(0, Vec::len);
            token = a.body["nextToken"].as_str().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        anyhow::ensure!(seen >= arns.len(), "ListTasks listed {seen} of {} tasks", arns.len());
        walk.push(walk_began.elapsed().as_secs_f64());
    }
    // Write throughput, `writers` clients at once.
    let (register_rate, register) = parallel(&berth, writers, calls, |c, i| {
        let def = sleeper_definition(&format!("bench-reg-{}", i % 10), &image);
        let a = c.ecs("RegisterTaskDefinition", &def)?;
        anyhow::ensure!(a.status == 200, "RegisterTaskDefinition: HTTP {} {}", a.status, a.body);
        Ok(a.took)
    })?;
    rt.block_on(heartbeat(store.as_ref()))?;
    let (run_rate, run) = parallel(&berth, writers, calls, |c, _| {
        let a = c.ecs(
            "RunTask",
            &json!({"taskDefinition": "bench-cp", "networkConfiguration": {"awsvpcConfiguration": {"subnets": [berth.subnet]}}}),
        )?;
        anyhow::ensure!(a.status == 200 && a.body["failures"] == json!([]), "RunTask: HTTP {} {}", a.status, a.body);
        Ok(a.took)
    })?;
    drop(store);
    drop(rt);
    // No agent: nothing ran, so nothing is left to stop on the host.
    let left = berth.finish();
    ctx.leftovers(left);

    let n = arns.len();
    let r = &mut ctx.report;
    r.samples(
        &format!("control.{backend}.describe_tasks"),
        "ms",
        &format!("DescribeTasks of 100 random tasks out of {n} in the {backend} store; {calls} sequential calls on one keep-alive connection, SigV4 signed before the clock starts"),
        &describe,
    );
    r.samples(
        &format!("control.{backend}.list_tasks"),
        "ms",
        &format!("ListTasks, one page of 100, every page of the {n} tasks twice (walking all of them took {:.2} s)", walk.iter().sum::<f64>() / walk.len() as f64),
        &list,
    );
    r.single(
        &format!("control.{backend}.register_task_definition"),
        "req/s",
        &format!("RegisterTaskDefinition calls per second, {calls} calls from {writers} clients at once (10 families)"),
        register_rate,
    );
    r.samples(&format!("control.{backend}.register_task_definition.latency"), "ms", "Each of those calls' time", &register);
    r.single(
        &format!("control.{backend}.run_task"),
        "req/s",
        &format!("RunTask calls per second (count 1: validate, schedule over {NODES} nodes, placement applier transaction), {calls} calls from {writers} clients at once, {n} live tasks in the store"),
        run_rate,
    );
    r.samples(&format!("control.{backend}.run_task.latency"), "ms", "Each of those calls' time", &run);
    Ok(())
}

/// Registers (or refreshes) the fake nodes, with room for any count of tasks.
async fn heartbeat(store: &dyn Store) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    for i in 0..NODES {
        store
            .upsert_node(&Node {
                id: format!("bench-node-{i}"),
                zone: "us-east-1a".into(),
                cpu: 1_000_000_000,
                memory: 1_000_000_000,
                status: NodeStatus::Active,
                spot_cpu: 0,
                spot_memory: 0,
                heartbeat_at: now,
            })
            .await?;
    }
    Ok(())
}

/// The template under a new ARN (its id: 32 hex digits from `i`), RUNNING
/// on one of the fake nodes.
fn seeded(template: &Task, i: usize) -> anyhow::Result<Task> {
    let mut record = template.clone();
    let id = format!("{:032x}", 0xbe47_0000_0000_0000_u64 as u128 * 1_000_003 + i as u128);
    let old = std::mem::replace(&mut record.arn.id, id);
    for c in &mut record.containers {
        c.arn = c.arn.replace(&format!("/{old}/"), &format!("/{}/", record.arn.id));
    }
    // The lifecycle's way from where RunTask left it to RUNNING.
    const TO_RUNNING: [TaskEvent; 3] = [TaskEvent::Provisioned, TaskEvent::ContainersStarted, TaskEvent::Activated];
    let rest = match record.status() {
        TaskStatus::Provisioning => &TO_RUNNING[..],
        TaskStatus::Pending => &TO_RUNNING[1..],
        TaskStatus::Activating => &TO_RUNNING[2..],
        TaskStatus::Running => &[],
        other => anyhow::bail!("the RunTask task is {other} already"),
    };
    record.apply_all(rest)?;
    record.node_id = Some(format!("bench-node-{}", i % NODES));
    Ok(record)
}

/// `total` calls of `call` from `clients` threads; calls per second and
/// each call's time (ms).
fn parallel(
    berth: &Berth,
    clients: usize,
    total: usize,
    call: impl Fn(&mut Client, usize) -> anyhow::Result<Duration> + Sync,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let next = AtomicUsize::new(0);
    let times = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    let began = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| {
                let mut c = berth.client();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total || crate::world::interrupted() {
                        break;
                    }
                    match call(&mut c, i) {
                        Ok(t) => times.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(ms(t)),
                        Err(e) => errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(format!("{e:#}")),
                    }
                }
            });
        }
    });
    let wall = began.elapsed().as_secs_f64();
    check()?;
    let errors = errors.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    anyhow::ensure!(errors.is_empty(), "{} calls failed, e.g. {}", errors.len(), errors[0]);
    let times = times.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok((times.len() as f64 / wall, times))
}
