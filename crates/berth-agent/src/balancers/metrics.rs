//! `AWS/ApplicationELB` from the load balancer nodes' counters: each
//! publishing window, the counters' growth since the last one (summed
//! over a load balancer's nodes) as RequestCount, HTTPCode_Target_2XX/5XX_Count,
//! TargetResponseTime and RequestCountPerTarget, and the health gauges
//! HealthyHostCount and UnHealthyHostCount; dimensions `LoadBalancer`
//! (`app/NAME/ID`) and `TargetGroup` (`targetgroup/NAME/ID`), as ALB
//! names them. [`datapoints`] is the pure part.

use std::collections::BTreeMap;

use berth_lb::GroupCounters;
use berth_model::metrics::{Datapoint, Dimensions, MetricKey, Sample};

const NS: &str = "AWS/ApplicationELB";

/// One target group's counters behind one load balancer, and the names
/// its dimensions take.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReading {
    /// `app/NAME/ID`.
    pub load_balancer: String,
    /// `targetgroup/NAME/ID`.
    pub target_group: String,
    pub counters: GroupCounters,
}

fn dims(pairs: &[(&str, &str)]) -> Dimensions {
    Dimensions::new(pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))).unwrap_or_default()
}

/// The window's datapoints at `timestamp_ms`: `now` against `before`
/// (the last window's readings, by (load balancer, target group); counters
/// that went down, as after a restart, count from zero).
pub fn datapoints(before: &BTreeMap<(String, String), GroupCounters>, now: &[GroupReading], timestamp_ms: i64) -> Vec<Datapoint> {
    let mut out = Vec::new();
    let mut per_lb = BTreeMap::<&str, (f64, f64, f64, f64, f64)>::new();
    let point = |name: &str, d: Dimensions, unit: &str, sample: Sample| Datapoint {
        key: MetricKey::new(NS, name, d),
        timestamp_ms,
        unit: unit.to_owned(),
        resolution_s: 60,
        sample,
    };
    for r in now {
        let prev = before.get(&(r.load_balancer.clone(), r.target_group.clone())).copied().unwrap_or_default();
        let grew = |now: u64, then: u64| if now >= then { (now - then) as f64 } else { now as f64 };
        let c = &r.counters;
        let requests = grew(c.request_count, prev.request_count);
        let ok = grew(c.target_2xx, prev.target_2xx);
        let errors = grew(c.target_5xx, prev.target_5xx);
        let trt_count = grew(c.target_response_time_count, prev.target_response_time_count);
        let trt_sum = grew(c.target_response_time_us_sum, prev.target_response_time_us_sum) / 1e6;
        let both = dims(&[("LoadBalancer", &r.load_balancer), ("TargetGroup", &r.target_group)]);
        let count = |v: f64| Sample::set(1.0, v, v, v);
        out.push(point("RequestCount", both.clone(), "Count", count(requests)));
        out.push(point("HTTPCode_Target_2XX_Count", both.clone(), "Count", count(ok)));
        out.push(point("HTTPCode_Target_5XX_Count", both.clone(), "Count", count(errors)));
        if trt_count > 0.0 {
            let mean = trt_sum / trt_count;
            out.push(point("TargetResponseTime", both.clone(), "Seconds", Sample::set(trt_count, trt_sum, mean, mean)));
        }
        let healthy = c.healthy_host_count as f64;
        out.push(point("HealthyHostCount", both.clone(), "Count", Sample::value(healthy)));
        out.push(point("UnHealthyHostCount", both.clone(), "Count", Sample::value(c.unhealthy_host_count as f64)));
        let per_target = if healthy > 0.0 { requests / healthy } else { requests };
        out.push(point("RequestCountPerTarget", both, "Count", count(per_target)));
        out.push(point("RequestCountPerTarget", dims(&[("TargetGroup", &r.target_group)]), "Count", count(per_target)));
        let lb = per_lb.entry(&r.load_balancer).or_default();
        lb.0 += requests;
        lb.1 += ok;
        lb.2 += errors;
        lb.3 += trt_count;
        lb.4 += trt_sum;
    }
    for (lb, (requests, ok, errors, trt_count, trt_sum)) in per_lb {
        let d = dims(&[("LoadBalancer", lb)]);
        let count = |v: f64| Sample::set(1.0, v, v, v);
        out.push(point("RequestCount", d.clone(), "Count", count(requests)));
        out.push(point("HTTPCode_Target_2XX_Count", d.clone(), "Count", count(ok)));
        out.push(point("HTTPCode_Target_5XX_Count", d.clone(), "Count", count(errors)));
        if trt_count > 0.0 {
            let mean = trt_sum / trt_count;
            out.push(point("TargetResponseTime", d, "Seconds", Sample::set(trt_count, trt_sum, mean, mean)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(points: &'a [Datapoint], name: &str, d: &[(&str, &str)]) -> &'a Datapoint {
        points.iter().find(|p| p.key.metric_name == name && p.key.dimensions == dims(d)).unwrap_or_else(|| panic!("{name} {d:?}"))
    }

    #[test]
    fn counters_growth_per_group_and_load_balancer() {
        let lb = "app/web/0123456789abcdef";
        let tg = "targetgroup/web/fedcba9876543210";
        let then = GroupCounters { request_count: 10, target_2xx: 9, target_5xx: 1, ..GroupCounters::default() };
        let before = BTreeMap::from([((lb.to_owned(), tg.to_owned()), then)]);
        let now = GroupCounters {
            request_count: 30,
            target_2xx: 27,
            target_5xx: 3,
            target_response_time_us_sum: 40_000,
            target_response_time_count: 20,
            healthy_host_count: 2,
            unhealthy_host_count: 1,
            ..GroupCounters::default()
        };
        let points = datapoints(&before, &[GroupReading { load_balancer: lb.into(), target_group: tg.into(), counters: now }], 60_000);
        let both = [("LoadBalancer", lb), ("TargetGroup", tg)];
        assert_eq!(find(&points, "RequestCount", &both).sample.sum, 20.0);
        assert_eq!(find(&points, "RequestCount", &[("LoadBalancer", lb)]).sample.sum, 20.0);
        assert_eq!(find(&points, "HTTPCode_Target_5XX_Count", &both).sample.sum, 2.0);
        assert_eq!(find(&points, "HTTPCode_Target_2XX_Count", &[("LoadBalancer", lb)]).sample.sum, 18.0);
        assert_eq!(find(&points, "RequestCountPerTarget", &[("TargetGroup", tg)]).sample.sum, 10.0);
        assert_eq!(find(&points, "HealthyHostCount", &both).sample.max, 2.0);
        assert_eq!(find(&points, "UnHealthyHostCount", &both).sample.max, 1.0);
        let trt = find(&points, "TargetResponseTime", &both);
        assert_eq!((trt.unit.as_str(), trt.sample.count, trt.sample.sum / trt.sample.count), ("Seconds", 20.0, 0.002));
        // Counters that went down (a restarted node) count from zero.
        let after = BTreeMap::from([((lb.to_owned(), tg.to_owned()), now)]);
        let reset = GroupCounters { request_count: 5, ..GroupCounters::default() };
        let points = datapoints(&after, &[GroupReading { load_balancer: lb.into(), target_group: tg.into(), counters: reset }], 120_000);
        assert_eq!(find(&points, "RequestCount", &both).sample.sum, 5.0);
    }
}
