//! CloudWatch datapoints ([`berth_store::MetricStore`]).

use berth_model::metrics::{Datapoint, Dimensions, MetricKey, Sample, Statistic, aggregate};
use berth_store::{MetricQuery, PruneReport};

use super::Backend;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn key(name: &str, dims: &[(&str, &str)]) -> MetricKey {
    MetricKey::new("App", name, Dimensions::new(dims.iter().map(|(n, v)| ((*n).into(), (*v).into()))).unwrap())
}

fn point(key: &MetricKey, ts: i64, resolution_s: u32, sample: Sample) -> Datapoint {
    Datapoint { key: key.clone(), timestamp_ms: ts, unit: "Count".into(), resolution_s, sample }
}

pub async fn metric_datapoints_by_exact_dimensions_and_range(b: Backend) {
    let s = &b.store;
    let ab = key("Requests", &[("A", "1"), ("B", "2")]);
    let a = key("Requests", &[("A", "1")]);
    let now = 1_000 * DAY;
    let mut points: Vec<Datapoint> = (0..10).map(|i| point(&ab, now + i * 1000, 1, Sample::value(i as f64))).collect();
    points.push(point(&a, now, 60, Sample::set(3.0, 30.0, 5.0, 15.0)));
    points.push(point(&ab, now + 5000, 60, Sample::values(&[100.0, 200.0], &[1.0, 3.0]).unwrap()));
    s.put_datapoints(&points, now).await.unwrap();

    // Dimensions given in any order name the same metric; a subset does not.
    let ba = key("Requests", &[("B", "2"), ("A", "1")]);
    let got = s.metric_datapoints(&ba, now + 2000, now + 6000).await.unwrap();
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(got.windows(2).all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
    assert_eq!(got.iter().find(|p| p.resolution_s == 60).unwrap().sample.values, vec![(100.0, 1.0), (200.0, 3.0)]);
    let only_a = s.metric_datapoints(&a, 0, i64::MAX).await.unwrap();
    assert_eq!(only_a, vec![points[10].clone()]);
    assert!(s.metric_datapoints(&key("Requests", &[]), 0, i64::MAX).await.unwrap().is_empty());

    // Statistics over what came back.
    let all = s.metric_datapoints(&ab, 0, i64::MAX).await.unwrap();
    let per_min = aggregate(&all, now, now + 60_000, 60, None);
    assert_eq!(per_min.len(), 1);
    assert_eq!(per_min[0].get(Statistic::SampleCount), Some(14.0));
    assert_eq!(per_min[0].get(Statistic::Sum), Some(45.0 + 700.0));
    assert_eq!(per_min[0].get(Statistic::Maximum), Some(200.0));
    assert_eq!(per_min[0].get(Statistic::Percentile(50.0)), Some(6.0));

    // Survives a reopen.
    let mut b = b;
    b.reopen().await;
    assert_eq!(b.store.metric_datapoints(&ab, 0, i64::MAX).await.unwrap().len(), 11);
}

pub async fn list_metrics_filters_and_recent_activity(b: Backend) {
    let s = &b.store;
    let now = 1_000 * DAY;
    let m1 = key("CPU", &[("Service", "web"), ("Cluster", "c")]);
    let m2 = key("CPU", &[("Cluster", "c")]);
    let m3 = key("Memory", &[("Service", "api")]);
    let other = MetricKey::new("Other", "CPU", Dimensions::default());
    s.put_datapoints(&[point(&m1, now, 60, Sample::value(1.0)), point(&other, now, 60, Sample::value(1.0))], now - 4 * HOUR).await.unwrap();
    s.put_datapoints(&[point(&m2, now, 60, Sample::value(1.0)), point(&m3, now, 60, Sample::value(1.0))], now).await.unwrap();
    // Putting again updates the series, it does not add one.
    s.put_datapoints(&[point(&m2, now + 1, 60, Sample::value(2.0))], now).await.unwrap();

    let list = |q: MetricQuery| async move { s.list_metrics(&q).await.unwrap().into_iter().map(|m| m.key).collect::<Vec<_>>() };
    let app = || MetricQuery { namespace: Some("App".into()), ..MetricQuery::default() };
    assert_eq!(list(app()).await, vec![m2.clone(), m1.clone(), m3.clone()]);
    assert_eq!(list(MetricQuery::default()).await.len(), 4);
    assert_eq!(list(MetricQuery { metric_name: Some("CPU".into()), ..app() }).await, vec![m2.clone(), m1.clone()]);
    assert_eq!(list(MetricQuery { dimensions: vec![("Service".into(), None)], ..app() }).await, vec![m1.clone(), m3.clone()]);
    assert_eq!(list(MetricQuery { dimensions: vec![("Service".into(), Some("api".into()))], ..app() }).await, vec![m3.clone()]);
    assert_eq!(
        list(MetricQuery { active_since_ms: Some(now - 3 * HOUR), ..MetricQuery::default() }).await,
        vec![m2.clone(), m3.clone()],
        "m1 and Other were last put 4 h ago"
    );
    let series = s.list_metrics(&MetricQuery { metric_name: Some("Memory".into()), ..MetricQuery::default() }).await.unwrap();
    assert_eq!(series[0].last_put_ms, now);
}

pub async fn prune_rolls_up_by_age_and_deletes_the_oldest(b: Backend) {
    let s = &b.store;
    let m = key("Latency", &[]);
    let now = 1_000 * DAY;
    let mut points = Vec::new();
    // 120 one-second points 4 h ago (past 3 h: to 1-minute), 10 recent ones.
    for i in 0..120 {
        points.push(point(&m, now - 4 * HOUR + i * 1000, 1, Sample::value(i as f64)));
    }
    for i in 0..10 {
        points.push(point(&m, now - 60_000 + i * 1000, 1, Sample::value(1.0)));
    }
    // 1-minute points 16 days ago (to 5-minute), hourly 456 days ago (deleted).
    for i in 0..10 {
        points.push(point(&m, now - 16 * DAY + i * 60_000, 60, Sample::value(2.0)));
    }
    points.push(point(&m, now - 456 * DAY, 3600, Sample::value(3.0)));
    s.put_datapoints(&points, now).await.unwrap();

    // Small batches: keep going while it does something.
    let mut total = PruneReport::default();
    for _ in 0..100 {
        let r = s.prune_metrics(now, 50).await.unwrap();
        if r == PruneReport::default() {
            break;
        }
        total.rolled_up += r.rolled_up;
        total.written += r.written;
        total.deleted += r.deleted;
    }
    assert_eq!(total.rolled_up, 130);
    assert_eq!(total.deleted, 1);

    let all = s.metric_datapoints(&m, 0, i64::MAX).await.unwrap();
    let at = |res: u32| all.iter().filter(|p| p.resolution_s == res).collect::<Vec<_>>();
    assert_eq!(at(1).len(), 10, "recent high-resolution points stay");
    let minutes = at(60);
    let rolled_sum: f64 = minutes.iter().map(|p| p.sample.sum).sum();
    let rolled_count: f64 = minutes.iter().map(|p| p.sample.count).sum();
    assert_eq!((rolled_count, rolled_sum), (120.0, (0..120).sum::<i64>() as f64));
    assert!(minutes.iter().all(|p| p.timestamp_ms % 60_000 == 0));
    let fives = at(300);
    assert_eq!(fives.iter().map(|p| p.sample.count).sum::<f64>(), 10.0);
    assert!(fives.iter().all(|p| p.timestamp_ms % 300_000 == 0));
    assert!(at(3600).is_empty());
    // Percentiles survive a roll-up of few values.
    let period = aggregate(&all, now - 4 * HOUR, now - 4 * HOUR + 120_000, 120, None);
    assert_eq!(period.len(), 1);
    assert_eq!(period[0].get(Statistic::Percentile(50.0)), Some(59.0));

    // Nothing left to do.
    assert_eq!(s.prune_metrics(now, 50).await.unwrap(), PruneReport::default());
}
