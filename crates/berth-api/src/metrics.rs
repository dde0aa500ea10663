//! Counters of API calls and failures per action, in Prometheus text form.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Metrics {
    /// (action, outcome) → count; outcome is "ok" or the AWS error type.
    calls: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Metrics {
    pub fn record(&self, action: &str, outcome: &'static str) {
        let mut calls = self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *calls.entry((action.to_owned(), outcome)).or_default() += 1;
    }

    /// The counters in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let calls = self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::from(
            "# HELP berth_api_requests_total API requests by action and outcome (ok or AWS error type).\n\
             # TYPE berth_api_requests_total counter\n",
        );
        for ((action, outcome), n) in calls.iter() {
            let _ = writeln!(out, "berth_api_requests_total{{action=\"{action}\",outcome=\"{outcome}\"}} {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_per_action_and_outcome() {
        let m = Metrics::default();
        m.record("ListClusters", "ok");
        m.record("ListClusters", "ok");
        m.record("CreateCluster", "InvalidParameterException");
        let text = m.render();
        assert!(text.contains("berth_api_requests_total{action=\"ListClusters\",outcome=\"ok\"} 2"), "{text}");
        assert!(text.contains("{action=\"CreateCluster\",outcome=\"InvalidParameterException\"} 1"), "{text}");
    }
}
