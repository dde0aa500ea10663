//! CloudWatch metrics as Berth keeps them: a metric is a namespace, a
//! name and a set of dimensions ([`MetricKey`]); a datapoint is one
//! timestamped [`Sample`] of it (one value, a statistic set, or values
//! with counts). [`aggregate`] turns datapoints into per-period
//! statistics ([`PeriodStats`], read with a [`Statistic`]), and
//! [`roll_up`] with [`Resolution`] implement CloudWatch's retention:
//!
//! | stored as              | kept   | then                    |
//! |------------------------|--------|-------------------------|
//! | < 60 s (high-res)      | 3 h    | rolled up to 1 minute   |
//! | 1 minute               | 15 days| rolled up to 5 minutes  |
//! | 5 minutes              | 63 days| rolled up to 1 hour     |
//! | 1 hour                 | 455 days| deleted                |
//!
//! A roll-up keeps count, sum, minimum and maximum exactly and the values
//! with their counts (for percentiles) while they number at most
//! [`MAX_ROLLED_VALUES`] distinct values; past that the values are dropped
//! and percentiles of that span are unavailable (as for statistic sets).
//! Pure data and rules: no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A metric's dimensions: name/value pairs, sorted by name, each name
/// once. CloudWatch treats each distinct set as a separate metric.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Dimensions(Vec<(String, String)>);

/// A dimension name given twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the dimension {0} is given more than once")]
pub struct DuplicateDimension(pub String);

impl Dimensions {
    /// Sorts the pairs; a name given twice is an error.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, DuplicateDimension> {
        let mut v: Vec<(String, String)> = pairs.into_iter().collect();
        v.sort();
        if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(DuplicateDimension(w[0].0.clone()));
        }
        Ok(Self(v))
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One metric: what a datapoint is of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetricKey {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Dimensions,
}

impl MetricKey {
    pub fn new(namespace: impl Into<String>, metric_name: impl Into<String>, dimensions: Dimensions) -> Self {
        Self { namespace: namespace.into(), metric_name: metric_name.into(), dimensions }
    }

    /// The key's one canonical text (JSON of namespace, name and sorted
    /// pairs): equal keys, equal text.
    pub fn canonical(&self) -> String {
        serde_json::to_string(&(&self.namespace, &self.metric_name, &self.dimensions.0)).unwrap_or_default()
    }

    /// The key [`Self::canonical`] wrote; `None` if the text is not one.
    pub fn from_canonical(text: &str) -> Option<Self> {
        let (namespace, metric_name, pairs): (String, String, Vec<(String, String)>) = serde_json::from_str(text).ok()?;
        Some(Self { namespace, metric_name, dimensions: Dimensions::new(pairs).ok()? })
    }

    /// Does every filter match? A filter with a value needs that pair; one
    /// without needs the name.
    pub fn matches(&self, filters: &[(String, Option<String>)]) -> bool {
        filters.iter().all(|(name, value)| match (self.dimensions.get(name), value) {
            (Some(v), Some(want)) => v == want,
            (Some(_), None) => true,
            (None, _) => false,
        })
    }
}

/// What one datapoint carries, reduced to what statistics need: count,
/// sum, minimum, maximum and (unless it came as a statistic set, or a
/// roll-up had too many) each value with its count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// (value, count), sorted by value, each value once; empty when unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<(f64, f64)>,
}

impl Sample {
    /// A single value.
    pub fn value(v: f64) -> Self {
        Self { count: 1.0, sum: v, min: v, max: v, values: vec![(v, 1.0)] }
    }

    /// A statistic set: no values, so no percentiles.
    pub fn set(count: f64, sum: f64, min: f64, max: f64) -> Self {
        Self { count, sum, min, max, values: Vec::new() }
    }

    /// Values, each with its count (1 each when `counts` is empty). `None`
    /// if there are none or the lengths differ.
    pub fn values(values: &[f64], counts: &[f64]) -> Option<Self> {
        if values.is_empty() || (!counts.is_empty() && counts.len() != values.len()) {
            return None;
        }
        let mut merged = BTreeMap::<OrdF64, f64>::new();
        for (i, v) in values.iter().enumerate() {
            *merged.entry(OrdF64(*v)).or_default() += counts.get(i).copied().unwrap_or(1.0);
        }
        let values: Vec<(f64, f64)> = merged.into_iter().map(|(v, c)| (v.0, c)).collect();
        Some(Self {
            count: values.iter().map(|p| p.1).sum(),
            sum: values.iter().map(|(v, c)| v * c).sum(),
            min: values.first().map_or(0.0, |p| p.0),
            max: values.last().map_or(0.0, |p| p.0),
            values,
        })
    }

    /// Both samples' data as one. Values survive only if both had them.
    pub fn merge(&mut self, other: &Sample) {
        let had_values = !self.values.is_empty() && !other.values.is_empty();
        let (self_empty, other_empty) = (self.count == 0.0, other.count == 0.0);
        self.min = match (self_empty, other_empty) {
            (true, _) => other.min,
            (_, true) => self.min,
            _ => self.min.min(other.min),
        };
        self.max = match (self_empty, other_empty) {
            (true, _) => other.max,
            (_, true) => self.max,
            _ => self.max.max(other.max),
        };
        self.count += other.count;
        self.sum += other.sum;
        self.values = if had_values { merge_values(&self.values, &other.values) } else { Vec::new() };
    }
}

fn merge_values(a: &[(f64, f64)], b: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut merged = BTreeMap::<OrdF64, f64>::new();
    for (v, c) in a.iter().chain(b) {
        *merged.entry(OrdF64(*v)).or_default() += c;
    }
    merged.into_iter().map(|(v, c)| (v.0, c)).collect()
}

/// A finite f64 with a total order (for sorting values).
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrdF64(f64);
impl Eq for OrdF64 {}
impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// One stored datapoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Datapoint {
    pub key: MetricKey,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// CloudWatch's unit name ("Percent", "Bytes", …; "None" when not given).
    pub unit: String,
    /// Seconds this datapoint stands for: 1 (high resolution) or 60 as
    /// put; 60, 300 or 3600 after a roll-up.
    pub resolution_s: u32,
    pub sample: Sample,
}

/// The retention levels, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution {
    /// Datapoints finer than this many seconds …
    pub below_s: u32,
    /// … are kept this long, then rolled up into `into_s` buckets (0: deleted).
    pub kept_ms: i64,
    pub into_s: u32,
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// CloudWatch's retention, as the table in the module's documentation.
pub const RETENTION: [Resolution; 4] = [
    Resolution { below_s: 60, kept_ms: 3 * HOUR_MS, into_s: 60 },
    Resolution { below_s: 300, kept_ms: 15 * DAY_MS, into_s: 300 },
    Resolution { below_s: 3600, kept_ms: 63 * DAY_MS, into_s: 3600 },
    Resolution { below_s: u32::MAX, kept_ms: 455 * DAY_MS, into_s: 0 },
];

/// A roll-up keeps at most this many distinct values per bucket.
pub const MAX_ROLLED_VALUES: usize = 1000;

/// How long CloudWatch answers for a metric put at most this long ago
/// (ListMetrics' `RecentlyActive=PT3H`).
pub const RECENTLY_ACTIVE_MS: i64 = 3 * HOUR_MS;

/// Datapoints of one level merged into `into_s`-second buckets (per
/// metric and unit), as a roll-up writes them back.
pub fn roll_up(points: &[Datapoint], into_s: u32) -> Vec<Datapoint> {
    let width = i64::from(into_s.max(1)) * 1000;
    let mut buckets = BTreeMap::<(String, String, i64), Datapoint>::new();
    for p in points {
        let start = p.timestamp_ms.div_euclid(width) * width;
        let k = (p.key.canonical(), p.unit.clone(), start);
        match buckets.get_mut(&k) {
            Some(b) => b.sample.merge(&p.sample),
            None => {
                buckets.insert(k, Datapoint { timestamp_ms: start, resolution_s: into_s, ..p.clone() });
            }
        }
    }
    buckets
        .into_values()
        .map(|mut d| {
            if d.sample.values.len() > MAX_ROLLED_VALUES {
                d.sample.values.clear();
            }
            d
        })
        .collect()
}

/// A statistic CloudWatch computes over a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    SampleCount,
    Average,
    Sum,
    Minimum,
    Maximum,
    /// `pNN` / `pNN.NN`: the percentile (0 to 100).
    Percentile(f64),
}

/// Not a statistic CloudWatch knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a statistic (SampleCount, Average, Sum, Minimum, Maximum, or pNN.NN)")]
pub struct UnknownStatistic(pub String);

impl FromStr for Statistic {
    type Err = UnknownStatistic;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "SampleCount" => Self::SampleCount,
            "Average" => Self::Average,
            "Sum" => Self::Sum,
            "Minimum" => Self::Minimum,
            "Maximum" => Self::Maximum,
            _ => {
                let p = s
                    .strip_prefix('p')
                    .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.'))
                    .and_then(|n| {
                        // At most two decimals, as CloudWatch's pNN.NN.
                        let decimals = n.split_once('.').map_or(0, |(_, d)| d.len());
                        if decimals > 2 { None } else { n.parse::<f64>().ok() }
                    })
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| UnknownStatistic(s.to_owned()))?;
                Self::Percentile(p)
            }
        })
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SampleCount => f.write_str("SampleCount"),
            Self::Average => f.write_str("Average"),
            Self::Sum => f.write_str("Sum"),
            Self::Minimum => f.write_str("Minimum"),
            Self::Maximum => f.write_str("Maximum"),
            Self::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

/// One period's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodStats {
    /// The period's start, milliseconds since the epoch.
    pub start_ms: i64,
    /// The unit of its datapoints (the first one's).
    pub unit: String,
    pub sample: Sample,
}

impl PeriodStats {
    /// The statistic's value; `None` for a percentile of data that has no
    /// values (statistic sets) or no data.
    pub fn get(&self, stat: Statistic) -> Option<f64> {
        let s = &self.sample;
        if s.count <= 0.0 {
            return None;
        }
        Some(match stat {
            Statistic::SampleCount => s.count,
            Statistic::Average => s.sum / s.count,
            Statistic::Sum => s.sum,
            Statistic::Minimum => s.min,
            Statistic::Maximum => s.max,
            Statistic::Percentile(p) => percentile(&s.values, p)?,
        })
    }
}

/// The nearest-rank percentile of weighted values sorted by value: the
/// smallest value whose cumulative count reaches `p` % of the total.
pub fn percentile(values: &[(f64, f64)], p: f64) -> Option<f64> {
    let total: f64 = values.iter().map(|v| v.1).sum();
    if values.is_empty() || total <= 0.0 {
        return None;
    }
    let rank = (p / 100.0 * total).max(f64::MIN_POSITIVE);
    let mut seen = 0.0;
    for (v, c) in values {
        seen += c;
        if seen >= rank - 1e-9 {
            return Some(*v);
        }
    }
    values.last().map(|v| v.0)
}

/// Where the periods of a query from `start_ms` begin: CloudWatch rounds
/// the start time down to the whole minute for periods of a minute or
/// more, and to a multiple of the period for shorter ones.
pub fn period_origin(start_ms: i64, period_s: u32) -> i64 {
    let grain = i64::from(period_s.clamp(1, 60)) * 1000;
    start_ms.div_euclid(grain) * grain
}

/// The datapoints in `[start_ms, end_ms)` as statistics per period of
/// `period_s` seconds, the periods counted from [`period_origin`], oldest
/// first; periods without data are left out. `unit`: only datapoints of
/// that unit count.
pub fn aggregate(points: &[Datapoint], start_ms: i64, end_ms: i64, period_s: u32, unit: Option<&str>) -> Vec<PeriodStats> {
    let width = i64::from(period_s.max(1)) * 1000;
    let origin = period_origin(start_ms, period_s);
    let mut periods = BTreeMap::<i64, PeriodStats>::new();
    for p in points {
        if p.timestamp_ms < origin || p.timestamp_ms >= end_ms || unit.is_some_and(|u| u != p.unit) {
            continue;
        }
        let start = origin + (p.timestamp_ms - origin).div_euclid(width) * width;
        match periods.get_mut(&start) {
            Some(s) => s.sample.merge(&p.sample),
            None => {
                periods.insert(start, PeriodStats { start_ms: start, unit: p.unit.clone(), sample: p.sample.clone() });
            }
        }
    }
    periods.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MetricKey {
        MetricKey::new("App", "Latency", Dimensions::new([("Host".into(), "a".into())]).unwrap())
    }

    fn point(ts: i64, sample: Sample) -> Datapoint {
        Datapoint { key: key(), timestamp_ms: ts, unit: "Milliseconds".into(), resolution_s: 60, sample }
    }

    #[test]
    fn dimensions_sort_and_refuse_a_name_twice() {
        let d = Dimensions::new([("b".into(), "2".into()), ("a".into(), "1".into())]).unwrap();
        assert_eq!(d.pairs(), &[("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())]);
        assert_eq!(Dimensions::new([("a".into(), "1".into()), ("a".into(), "2".into())]), Err(DuplicateDimension("a".into())));
        let k1 = MetricKey::new("N", "M", d.clone());
        let k2 = MetricKey::new("N", "M", Dimensions::new([("a".into(), "1".into()), ("b".into(), "2".into())]).unwrap());
        assert_eq!(k1.canonical(), k2.canonical());
        assert_eq!(MetricKey::from_canonical(&k1.canonical()), Some(k1.clone()));
        assert!(k1.matches(&[("a".into(), Some("1".into())), ("b".into(), None)]));
        assert!(!k1.matches(&[("a".into(), Some("2".into()))]));
        assert!(!k1.matches(&[("c".into(), None)]));
    }

    #[test]
    fn statistics_parse_as_cloudwatch_names_them() {
        assert_eq!("Average".parse::<Statistic>(), Ok(Statistic::Average));
        assert_eq!("p99".parse::<Statistic>(), Ok(Statistic::Percentile(99.0)));
        assert_eq!("p99.99".parse::<Statistic>(), Ok(Statistic::Percentile(99.99)));
        for bad in ["p", "p101", "p99.999", "avg", "P50", "p-1", "tm99"] {
            assert!(bad.parse::<Statistic>().is_err(), "{bad}");
        }
        assert_eq!(Statistic::Percentile(99.5).to_string(), "p99.5");
        assert_eq!(Statistic::Percentile(50.0).to_string(), "p50");
    }

    #[test]
    fn values_with_counts_merge_equal_values() {
        let s = Sample::values(&[3.0, 1.0, 3.0], &[2.0, 1.0, 1.0]).unwrap();
        assert_eq!(s.values, vec![(1.0, 1.0), (3.0, 3.0)]);
        assert_eq!((s.count, s.sum, s.min, s.max), (4.0, 10.0, 1.0, 3.0));
        assert!(Sample::values(&[1.0, 2.0], &[1.0]).is_none());
        assert!(Sample::values(&[], &[]).is_none());
    }

    #[test]
    fn aggregation_per_period_with_every_statistic() {
        // Minute 0: 1..=100 one each; minute 1: a statistic set; minute 2 outside.
        let mut pts: Vec<Datapoint> = (1..=100).map(|v| point(1_000 + v, Sample::value(v as f64))).collect();
        pts.push(point(60_000, Sample::set(4.0, 20.0, 2.0, 8.0)));
        pts.push(point(120_000, Sample::value(1e9)));
        let periods = aggregate(&pts, 0, 120_000, 60, None);
        assert_eq!(periods.len(), 2);
        let m0 = &periods[0];
        assert_eq!(m0.start_ms, 0);
        assert_eq!(m0.get(Statistic::SampleCount), Some(100.0));
        assert_eq!(m0.get(Statistic::Sum), Some(5050.0));
        assert_eq!(m0.get(Statistic::Average), Some(50.5));
        assert_eq!(m0.get(Statistic::Minimum), Some(1.0));
        assert_eq!(m0.get(Statistic::Maximum), Some(100.0));
        assert_eq!(m0.get(Statistic::Percentile(50.0)), Some(50.0));
        assert_eq!(m0.get(Statistic::Percentile(90.0)), Some(90.0));
        assert_eq!(m0.get(Statistic::Percentile(99.0)), Some(99.0));
        assert_eq!(m0.get(Statistic::Percentile(100.0)), Some(100.0));
        assert_eq!(m0.get(Statistic::Percentile(0.0)), Some(1.0));
        let m1 = &periods[1];
        assert_eq!(m1.start_ms, 60_000);
        assert_eq!(m1.get(Statistic::Average), Some(5.0));
        assert_eq!(m1.get(Statistic::Percentile(50.0)), None, "a statistic set has no values");
        // A five-minute period takes both; the set drops the values.
        let five = aggregate(&pts, 0, 300_000, 300, None);
        assert_eq!(five.len(), 1);
        assert_eq!(five[0].get(Statistic::SampleCount), Some(105.0));
        assert_eq!(five[0].get(Statistic::Maximum), Some(1e9));
        assert_eq!(five[0].get(Statistic::Percentile(50.0)), None);
        // The unit filter.
        assert!(aggregate(&pts, 0, 120_000, 60, Some("Bytes")).is_empty());
        assert_eq!(aggregate(&pts, 0, 120_000, 60, Some("Milliseconds")).len(), 2);
        // Periods count from the start, rounded down to the minute.
        let two = aggregate(&pts, 60_500, 300_000, 120, None);
        assert_eq!(two.iter().map(|p| p.start_ms).collect::<Vec<_>>(), vec![60_000]);
        assert_eq!(two[0].get(Statistic::SampleCount), Some(5.0));
        assert_eq!(period_origin(12_345, 5), 10_000);
    }

    #[test]
    fn weighted_percentiles() {
        let s = Sample::values(&[10.0, 20.0], &[9.0, 1.0]).unwrap();
        assert_eq!(percentile(&s.values, 90.0), Some(10.0));
        assert_eq!(percentile(&s.values, 91.0), Some(20.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn roll_up_keeps_exact_statistics_per_bucket() {
        let pts: Vec<Datapoint> = (0..120).map(|s| point(s * 1000, Sample::value(s as f64))).collect();
        let rolled = roll_up(&pts, 60);
        assert_eq!(rolled.len(), 2);
        assert_eq!(rolled[0].timestamp_ms, 0);
        assert_eq!(rolled[1].timestamp_ms, 60_000);
        assert_eq!(rolled[0].resolution_s, 60);
        assert_eq!((rolled[0].sample.count, rolled[0].sample.sum, rolled[0].sample.min, rolled[0].sample.max), (60.0, 1770.0, 0.0, 59.0));
        assert_eq!(rolled[1].sample.values.len(), 60);
        // Too many distinct values: dropped.
        let many: Vec<Datapoint> = (0..1500).map(|v| point(0, Sample::value(v as f64))).collect();
        let rolled = roll_up(&many, 300);
        assert_eq!(rolled.len(), 1);
        assert!(rolled[0].sample.values.is_empty());
        assert_eq!(rolled[0].sample.count, 1500.0);
    }

    #[test]
    fn merging_into_an_empty_sample_takes_the_other_bounds() {
        let mut s = Sample::set(0.0, 0.0, 0.0, 0.0);
        s.merge(&Sample::value(-5.0));
        assert_eq!((s.min, s.max, s.count), (-5.0, -5.0, 1.0));
    }
}
