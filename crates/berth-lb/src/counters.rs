//! Per-target-group and per-listener counters, named after ALB's
//! CloudWatch metrics; read as snapshots by the metrics side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A target group's counters since the balancer started (the group's
/// ARN keys them; they survive `apply`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCounters {
    /// Requests routed to the group.
    pub request_count: u64,
    /// TargetResponseTime: the sum (µs) and count of the times from
    /// sending a request to a target to its response's headers.
    pub target_response_time_us_sum: u64,
    pub target_response_time_count: u64,
    /// HTTPCode_Target_2XX..5XX_Count.
    pub target_2xx: u64,
    pub target_3xx: u64,
    pub target_4xx: u64,
    pub target_5xx: u64,
    /// HTTPCode_ELB_5XX_Count and its parts HTTPCode_ELB_502/503/504_Count.
    pub elb_5xx: u64,
    pub elb_502: u64,
    pub elb_503: u64,
    pub elb_504: u64,
    /// Requests whose client went away before the answer (ALB's 460).
    pub elb_460: u64,
    /// TCP listeners: connections passed to a target.
    pub new_flow_count: u64,
    /// HealthyHostCount and UnHealthyHostCount at the time of the snapshot.
    pub healthy_host_count: u64,
    pub unhealthy_host_count: u64,
}

impl GroupCounters {
    pub fn target_response_time_mean(&self) -> Option<Duration> {
        (self.target_response_time_count > 0)
            .then(|| Duration::from_micros(self.target_response_time_us_sum / self.target_response_time_count))
    }
}

/// A listener's own answers (those not from a target group).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerCounters {
    pub request_count: u64,
    /// HTTPCode_ELB_4XX_Count (463 included).
    pub elb_4xx: u64,
    pub elb_463: u64,
    /// HTTP_Fixed_Response_Count and HTTP_Redirect_Count.
    pub fixed_response_count: u64,
    pub redirect_count: u64,
    /// ClientTLSNegotiationErrorCount.
    pub tls_negotiation_errors: u64,
    /// NewConnectionCount and ActiveConnectionCount (client connections).
    pub new_connection_count: u64,
    pub active_connection_count: u64,
}

#[derive(Debug, Default)]
pub(crate) struct GroupCells {
    request_count: AtomicU64,
    trt_sum: AtomicU64,
    trt_count: AtomicU64,
    target: [AtomicU64; 4],
    elb_502: AtomicU64,
    elb_503: AtomicU64,
    elb_504: AtomicU64,
    elb_460: AtomicU64,
    flows: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl GroupCells {
    pub(crate) fn request(&self) {
        bump(&self.request_count);
    }

    pub(crate) fn flow(&self) {
        bump(&self.flows);
    }

    pub(crate) fn target_answer(&self, status: u16, took: Duration) {
        self.trt_sum.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        bump(&self.trt_count);
        if let Some(c) = self.target.get(usize::from(status / 100).wrapping_sub(2)) {
            bump(c);
        }
    }

    pub(crate) fn elb(&self, status: u16) {
        match status {
            502 => bump(&self.elb_502),
            503 => bump(&self.elb_503),
            504 => bump(&self.elb_504),
            460 => bump(&self.elb_460),
            _ => {}
        }
    }

    pub(crate) fn snapshot(&self, healthy: u64, unhealthy: u64) -> GroupCounters {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (e502, e503, e504) = (g(&self.elb_502), g(&self.elb_503), g(&self.elb_504));
        GroupCounters {
            request_count: g(&self.request_count),
            target_response_time_us_sum: g(&self.trt_sum),
            target_response_time_count: g(&self.trt_count),
            target_2xx: g(&self.target[0]),
            target_3xx: g(&self.target[1]),
            target_4xx: g(&self.target[2]),
            target_5xx: g(&self.target[3]),
            elb_5xx: e502 + e503 + e504,
            elb_502: e502,
            elb_503: e503,
            elb_504: e504,
            elb_460: g(&self.elb_460),
            new_flow_count: g(&self.flows),
            healthy_host_count: healthy,
            unhealthy_host_count: unhealthy,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct ListenerCells {
    request_count: AtomicU64,
    elb_4xx: AtomicU64,
    elb_463: AtomicU64,
    fixed: AtomicU64,
    redirect: AtomicU64,
    tls: AtomicU64,
    connections: AtomicU64,
    active: AtomicU64,
}

/// A client connection, counted active while it lives.
pub(crate) struct Connection(std::sync::Arc<ListenerCells>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ListenerCells {
    pub(crate) fn request(&self) {
        bump(&self.request_count);
    }
    pub(crate) fn too_many_forwarded(&self) {
        bump(&self.elb_4xx);
        bump(&self.elb_463);
    }
    pub(crate) fn fixed(&self) {
        bump(&self.fixed);
    }
    pub(crate) fn redirect(&self) {
        bump(&self.redirect);
    }
    pub(crate) fn connection(self: &std::sync::Arc<Self>) -> Connection {
        bump(&self.connections);
        bump(&self.active);
        Connection(self.clone())
    }
    pub(crate) fn tls_error(&self) {
        bump(&self.tls);
    }
    pub(crate) fn snapshot(&self) -> ListenerCounters {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ListenerCounters {
            request_count: g(&self.request_count),
            elb_4xx: g(&self.elb_4xx),
            elb_463: g(&self.elb_463),
            fixed_response_count: g(&self.fixed),
            redirect_count: g(&self.redirect),
            tls_negotiation_errors: g(&self.tls),
            new_connection_count: g(&self.connections),
            active_connection_count: g(&self.active),
        }
    }
}
