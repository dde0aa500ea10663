//! Fargate's billing rules: what a task is billed for, split into hourly
//! usage records, and the price table that turns usage into cost. Pure
//! rules, no I/O; the meter controller (`berth_api::meter`) stores the
//! records and Cost Explorer and `berth cost` read them.
//!
//! Fargate bills a task from the start of its image pull (`pullStartedAt`)
//! until the task stops, rounded up to the second, with a one-minute
//! minimum for Linux tasks; for the vCPU and memory the task reserved (its
//! definition's or its overrides' size) and for ephemeral storage above the
//! 20 GiB every task gets. Spot tasks are billed at the Spot price.
//!
//! **Every second a task held its reservation is in exactly one usage
//! record**: a task's billed seconds are laid out from its start, hour by
//! hour, and each hour's share is one record keyed by (task, hour). The
//! records are a function of the task's times (and, for a task still
//! running, of now), so writing them again writes the same numbers: a
//! restart neither loses nor doubles a second.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::capacity;
use crate::lifecycle::TaskStatus;
use crate::task::Task;

/// A record covers at most this many seconds: one clock hour.
pub const HOUR: i64 = 3600;
/// Linux tasks are billed at least one minute.
pub const MINIMUM_SECONDS: i64 = 60;
/// Ephemeral storage every Fargate task gets without charge.
pub const INCLUDED_STORAGE_GIB: u32 = 20;
/// Fargate's default ephemeral storage.
pub const DEFAULT_STORAGE_GIB: u32 = 20;
/// The service name Cost Explorer reports Fargate's usage under.
pub const SERVICE_NAME: &str = "Amazon Elastic Container Service";

/// Seconds billed for a task that ran from `start` to `end` (seconds
/// since the epoch): rounded up to the second, at least a minute.
pub fn billed_seconds(start: f64, end: f64) -> i64 {
    let ran = ((end - start).max(0.0) - 1e-6).ceil().max(0.0) as i64;
    ran.max(MINIMUM_SECONDS)
}

/// When a task's billing starts and ends, as far as it has: `None` for a
/// task that never began pulling its image (it never held capacity);
/// `closed` once it stopped (the seconds are final).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Billing {
    pub start: f64,
    /// Billed seconds so far (final when `closed`).
    pub seconds: i64,
    pub closed: bool,
}

/// The task's billing at `now`. A running task is billed the seconds it
/// has held its reservation so far, rounded up; the minimum applies once
/// it stopped.
pub fn billing(task: &Task, now: f64) -> Option<Billing> {
    let t = &task.times;
    let start = t.pull_started_at.or(t.started_at)?;
    if task.status() == TaskStatus::Stopped {
        let end = t.stopped_at.or(t.execution_stopped_at).unwrap_or(now).max(start);
        return Some(Billing { start, seconds: billed_seconds(start, end), closed: true });
    }
    let ran = ((now - start).max(0.0) - 1e-6).ceil().max(0.0) as i64;
    Some(Billing { start, seconds: ran, closed: false })
}

/// Lays `seconds` out from `start`, one entry per clock hour touched:
/// (hour's start, seconds in it). The entries add up to `seconds`.
pub fn hours(start: f64, seconds: i64) -> Vec<(i64, i64)> {
    let mut at = start.floor() as i64;
    let mut left = seconds;
    let mut out = Vec::new();
    while left > 0 {
        let hour = at.div_euclid(HOUR) * HOUR;
        let take = left.min(hour + HOUR - at);
        out.push((hour, take));
        at += take;
        left -= take;
    }
    out
}

/// One hour of one task's usage: what it reserved and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    pub task_arn: String,
    /// The clock hour's start, seconds since the epoch.
    pub hour: i64,
    /// Seconds of the hour the task is billed for.
    pub seconds: i64,
    pub region: String,
    pub cluster: String,
    /// The service's name for a service's task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub family: String,
    /// FARGATE or FARGATE_SPOT.
    pub capacity_provider: String,
    /// CPU units (1024 per vCPU) and MiB reserved.
    pub cpu: u32,
    pub memory: u32,
    /// Ephemeral storage in GiB (20 unless the task asked for more).
    pub storage_gib: u32,
    /// The task's tags: its cost allocation tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The task stopped: the record no longer changes.
    pub closed: bool,
}

impl UsageRecord {
    pub fn spot(&self) -> bool {
        self.capacity_provider == capacity::FARGATE_SPOT
    }

    pub fn vcpu_hours(&self) -> f64 {
        f64::from(self.cpu) / 1024.0 * self.seconds as f64 / HOUR as f64
    }

    pub fn gb_hours(&self) -> f64 {
        f64::from(self.memory) / 1024.0 * self.seconds as f64 / HOUR as f64
    }

    pub fn storage_gb_hours(&self) -> f64 {
        f64::from(self.storage_gib.saturating_sub(INCLUDED_STORAGE_GIB)) * self.seconds as f64 / HOUR as f64
    }
}

/// The usage records of `task` at `now`: one per clock hour it was billed
/// in. Empty for a task that never held capacity.
pub fn records(task: &Task, region: &str, now: f64) -> Vec<UsageRecord> {
    let Some(b) = billing(task, now) else { return Vec::new() };
    let service = task.group.strip_prefix("service:").map(str::to_owned);
    let storage = task
        .overrides
        .ephemeral_storage_gib
        .and_then(|g| u32::try_from(g).ok())
        .unwrap_or(DEFAULT_STORAGE_GIB);
    hours(b.start, b.seconds)
        .into_iter()
        .map(|(hour, seconds)| UsageRecord {
            task_arn: task.arn.to_string(),
            hour,
            seconds,
            region: region.to_owned(),
            cluster: task.arn.cluster.clone(),
            service: service.clone(),
            family: task.family().to_owned(),
            capacity_provider: task.capacity_provider.clone().unwrap_or_else(|| capacity::FARGATE.to_owned()),
            cpu: task.size.cpu,
            memory: task.size.memory,
            storage_gib: storage,
            tags: task.tags.iter().map(|t| (t.key.clone(), t.value.clone())).collect(),
            closed: b.closed,
        })
        .collect()
}

/// What Fargate charges in one region, in USD.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct RegionPrices {
    pub vcpu_hour: f64,
    pub gb_hour: f64,
    pub storage_gb_hour: f64,
    /// The Spot price's discount off on-demand (0.7: Spot costs 30 %).
    pub spot_discount: f64,
}

/// Fargate's published Linux/x86 on-demand prices (and Fargate Spot's
/// typical 70 % discount) in the regions Berth knows; other regions are
/// priced as us-east-1.
pub const DEFAULT_PRICES: &[(&str, RegionPrices)] = &[
    ("us-east-1", RegionPrices { vcpu_hour: 0.04048, gb_hour: 0.004445, storage_gb_hour: 0.000111, spot_discount: 0.7 }),
    ("us-east-2", RegionPrices { vcpu_hour: 0.04048, gb_hour: 0.004445, storage_gb_hour: 0.000111, spot_discount: 0.7 }),
    ("us-west-2", RegionPrices { vcpu_hour: 0.04048, gb_hour: 0.004445, storage_gb_hour: 0.000111, spot_discount: 0.7 }),
    ("eu-west-1", RegionPrices { vcpu_hour: 0.04048, gb_hour: 0.004445, storage_gb_hour: 0.000111, spot_discount: 0.7 }),
];

/// The price table: per region, with us-east-1's for regions not listed.
/// Read from `DATA_DIR/prices.json` when it exists (see README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    #[serde(default)]
    pub regions: BTreeMap<String, RegionPrices>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self { regions: DEFAULT_PRICES.iter().map(|(r, p)| ((*r).to_owned(), *p)).collect() }
    }
}

impl PriceTable {
    /// The defaults with `overrides` laid over them, region by region.
    pub fn with_overrides(overrides: PriceTable) -> Self {
        let mut table = Self::default();
        table.regions.extend(overrides.regions);
        table
    }

    pub fn region(&self, region: &str) -> RegionPrices {
        self.regions.get(region).or_else(|| self.regions.get("us-east-1")).copied().unwrap_or(DEFAULT_PRICES[0].1)
    }
}

/// What a line item is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UsageKind {
    Vcpu,
    Memory,
    Storage,
}

/// One charge of one usage record: a Fargate usage type, its quantity
/// (vCPU-hours, GB-hours, storage GB-hours) and cost in USD.
#[derive(Debug, Clone, PartialEq)]
pub struct LineItem<'a> {
    pub record: &'a UsageRecord,
    pub kind: UsageKind,
    pub usage_type: String,
    pub quantity: f64,
    pub cost: f64,
}

/// Cost Explorer's region code of a usage type (`USE1-…`).
pub fn region_code(region: &str) -> String {
    let known = [
        ("us-east-1", "USE1"),
        ("us-east-2", "USE2"),
        ("us-west-1", "USW1"),
        ("us-west-2", "USW2"),
        ("eu-west-1", "EU"),
        ("eu-west-2", "EUW2"),
        ("eu-west-3", "EUW3"),
        ("eu-central-1", "EUC1"),
        ("eu-north-1", "EUN1"),
        ("ap-northeast-1", "APN1"),
        ("ap-northeast-2", "APN2"),
        ("ap-southeast-1", "APS1"),
        ("ap-southeast-2", "APS2"),
        ("ap-south-1", "APS3"),
        ("ca-central-1", "CAN1"),
        ("sa-east-1", "SAE1"),
    ];
    known.iter().find(|(r, _)| *r == region).map_or_else(|| region.to_uppercase(), |(_, c)| (*c).to_owned())
}

/// Fargate's usage type for `kind`, on Spot or not, in `region`.
pub fn usage_type(region: &str, kind: UsageKind, spot: bool) -> String {
    let what = match kind {
        UsageKind::Vcpu => "Fargate-vCPU-Hours:perCPU",
        UsageKind::Memory => "Fargate-GB-Hours",
        UsageKind::Storage => "Fargate-EphemeralStorage-GB-Hours",
    };
    let spot = if spot { "SpotUsage-" } else { "" };
    format!("{}-{spot}{what}", region_code(region))
}

/// The charges of a record: vCPU and memory always, storage when the task
/// has more than the included 20 GiB.
pub fn line_items<'a>(record: &'a UsageRecord, prices: &PriceTable) -> Vec<LineItem<'a>> {
    let p = prices.region(&record.region);
    let factor = if record.spot() { 1.0 - p.spot_discount } else { 1.0 };
    let mut out = vec![
        (UsageKind::Vcpu, record.vcpu_hours(), p.vcpu_hour),
        (UsageKind::Memory, record.gb_hours(), p.gb_hour),
    ];
    if record.storage_gib > INCLUDED_STORAGE_GIB {
        out.push((UsageKind::Storage, record.storage_gb_hours(), p.storage_gb_hour));
    }
    out.into_iter()
        .map(|(kind, quantity, price)| LineItem {
            record,
            kind,
            usage_type: usage_type(&record.region, kind, record.spot()),
            quantity,
            cost: quantity * price * factor,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::TaskEvent;
    use crate::task::{NewTask, TaskOverrides, build};
    use crate::testing;

    #[test]
    fn rounded_up_to_the_second_with_a_minute_minimum() {
        assert_eq!(billed_seconds(100.0, 190.0), 90);
        assert_eq!(billed_seconds(100.0, 190.2), 91);
        assert_eq!(billed_seconds(100.4, 110.4), 60, "ten seconds are billed as a minute");
        assert_eq!(billed_seconds(100.0, 160.001), 61);
        assert_eq!(billed_seconds(5.0, 1.0), 60, "a clock going backwards is a minimum, not negative");
    }

    #[test]
    fn seconds_are_laid_out_hour_by_hour_and_add_up() {
        assert_eq!(hours(3600.0 * 10.0 + 3500.5, 200), vec![(36000, 100), (39600, 100)]);
        assert_eq!(hours(0.0, 7300), vec![(0, 3600), (3600, 3600), (7200, 100)]);
        assert!(hours(5.0, 0).is_empty());
        for (start, secs) in [(12.7, 1), (3599.0, 3601), (1e9 + 0.5, 86_401)] {
            assert_eq!(hours(start, secs).iter().map(|(_, s)| s).sum::<i64>(), secs);
        }
    }

    fn task(cpu: &str, memory: &str, spot: bool) -> Task {
        let acct = testing::account();
        let def = testing::definition(&acct, "batch", &["c"]);
        let mut new = NewTask::plain(&acct, "prod", "0123456789abcdef0123456789abcdef", &def, 1000.0);
        new.overrides = TaskOverrides { cpu: Some(cpu.into()), memory: Some(memory.into()), ..Default::default() };
        new.capacity_provider = spot.then_some(capacity::FARGATE_SPOT);
        new.group = Some("service:web");
        build(new).unwrap()
    }

    #[test]
    fn a_task_is_billed_from_its_pull_to_its_stop() {
        let mut t = task("256", "512", false);
        assert!(records(&t, "us-east-1", 2000.0).is_empty(), "no pull yet: nothing held, nothing billed");
        t.times.pull_started_at = Some(1000.25);
        t.apply_all(&[TaskEvent::Provisioned, TaskEvent::ContainersStarted, TaskEvent::Activated]).unwrap();
        let live = records(&t, "us-east-1", 1010.0);
        assert_eq!((live[0].seconds, live[0].closed), (10, false), "a running task: its seconds so far");
        t.request_stop(crate::task::StopCode::UserInitiated, "x", 1090.0);
        t.apply_all(&[TaskEvent::StopRequested, TaskEvent::Deactivated, TaskEvent::ContainersStopped, TaskEvent::Deprovisioned])
            .unwrap();
        t.times.stopped_at = Some(1090.25);
        let done = records(&t, "us-east-1", 5000.0);
        assert_eq!(done.len(), 1);
        let r = &done[0];
        assert_eq!((r.seconds, r.closed, r.service.as_deref(), r.cpu, r.memory), (90, true, Some("web"), 256, 512));
        let items = line_items(r, &PriceTable::default());
        assert_eq!(items.len(), 2, "20 GiB of storage is included");
        assert_eq!(items[0].usage_type, "USE1-Fargate-vCPU-Hours:perCPU");
        assert_eq!(items[1].usage_type, "USE1-Fargate-GB-Hours");
        let want_cpu = 0.25 * 90.0 / 3600.0 * 0.04048;
        let want_mem = 0.5 * 90.0 / 3600.0 * 0.004445;
        assert!((items[0].cost - want_cpu).abs() < 1e-12 && (items[1].cost - want_mem).abs() < 1e-12);
    }

    #[test]
    fn spot_and_storage_prices() {
        let mut t = task("1024", "2048", true);
        t.overrides.ephemeral_storage_gib = Some(50);
        t.times.pull_started_at = Some(0.0);
        let r = &records(&t, "eu-central-1", 3600.0)[0];
        assert!(r.spot());
        let table = PriceTable::default();
        let items = line_items(r, &table);
        let types: Vec<&str> = items.iter().map(|i| i.usage_type.as_str()).collect();
        assert_eq!(
            types,
            ["EUC1-SpotUsage-Fargate-vCPU-Hours:perCPU", "EUC1-SpotUsage-Fargate-GB-Hours", "EUC1-SpotUsage-Fargate-EphemeralStorage-GB-Hours"]
        );
        // An unlisted region is priced as us-east-1; Spot at 30 %.
        assert!((items[0].cost - 0.04048 * 0.3).abs() < 1e-12);
        assert!((items[2].quantity - 30.0).abs() < 1e-12, "30 GiB above the included 20 for an hour");
        let cheap: PriceTable = serde_json::from_str(
            r#"{"regions": {"eu-central-1": {"vcpu_hour": 1.0, "gb_hour": 0.1, "storage_gb_hour": 0.01, "spot_discount": 0.5}}}"#,
        )
        .unwrap();
        let table = PriceTable::with_overrides(cheap);
        assert!((line_items(r, &table)[0].cost - 0.5).abs() < 1e-12);
        assert_eq!(table.region("us-east-1").vcpu_hour, 0.04048, "the defaults stay for other regions");
        assert!(serde_json::from_str::<PriceTable>(r#"{"regions": {"x": {"vcpu": 1.0}}}"#).is_err(), "unknown fields are refused");
    }
}
