//! A task's shipping budget: a token bucket of bytes per second shared by
//! the task's streams, and the count of what it turned away. Pure: the
//! caller passes the time.
//!
//! A container that writes without pause (`yes`) must not grow the store
//! without bound nor take the agent's (and the store's) time from every
//! other task; past the budget its lines are dropped — the tailer moves
//! past them — never waited for, so the files are never held back and
//! shipping never stalls. Bytes count as CloudWatch counts them in
//! PutLogEvents: the message's UTF-8 plus 26 per event.

use std::time::{Duration, Instant};

use berth_store::LOG_EVENT_OVERHEAD_BYTES;

use super::lines::MAX_MESSAGE_BYTES;

/// The default budget of one task: 1 MiB/s, PutLogEvents' batch size per
/// second.
pub const DEFAULT_BYTES_PER_SECOND: u64 = 1 << 20;
/// How often, at most, a stream gets a notice of what was dropped.
pub const NOTICE_EVERY: Duration = Duration::from_secs(10);

/// What one event costs.
pub fn cost(message: &str) -> u64 {
    message.len() as u64 + LOG_EVENT_OVERHEAD_BYTES
}

#[derive(Debug)]
pub struct Budget {
    rate: u64,
    /// The bucket holds at most a second's budget (and never less than
    /// one event of the largest size, so every event can pass).
    capacity: f64,
    tokens: f64,
    at: Instant,
    /// Dropped since the last notice: events, bytes.
    pub dropped_events: u64,
    pub dropped_bytes: u64,
    /// Dropped since the task began (for the notice's totals and tests).
    pub total_dropped_events: u64,
    last_notice: Option<Instant>,
}

impl Budget {
    pub fn new(bytes_per_second: u64, now: Instant) -> Self {
        let rate = bytes_per_second.max(1);
        let capacity = rate.max(MAX_MESSAGE_BYTES as u64 + LOG_EVENT_OVERHEAD_BYTES) as f64;
        Self {
            rate,
            capacity,
            tokens: capacity,
            at: now,
            dropped_events: 0,
            dropped_bytes: 0,
            total_dropped_events: 0,
            last_notice: None,
        }
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Whether an event of `bytes` may be shipped now; if not, it is
    /// counted as dropped.
    pub fn take(&mut self, bytes: u64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.capacity);
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            return true;
        }
        self.dropped_events += 1;
        self.dropped_bytes += bytes;
        self.total_dropped_events += 1;
        false
    }

    /// The notice to append to the stream, if lines were dropped and the
    /// last notice is [`NOTICE_EVERY`] old (or `flush`: the task is
    /// done); counting starts again from it.
    pub fn notice(&mut self, now: Instant, flush: bool) -> Option<String> {
        if self.dropped_events == 0 {
            return None;
        }
        if !flush && self.last_notice.is_some_and(|at| now.saturating_duration_since(at) < NOTICE_EVERY) {
            return None;
        }
        self.last_notice = Some(now);
        let text = format!(
            "[berth] dropped {} lines ({} bytes) over the shipping limit of {} bytes/s",
            self.dropped_events, self.dropped_bytes, self.rate
        );
        self.dropped_events = 0;
        self.dropped_bytes = 0;
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refills_at_its_rate_and_counts_what_it_refuses() {
        let t0 = Instant::now();
        let mut b = Budget::new(300_000, t0);
        // Full at the start: 300,000 bytes pass, the next is refused.
        assert!(b.take(299_000, t0));
        assert!(!b.take(2_000, t0));
        assert_eq!((b.dropped_events, b.dropped_bytes), (1, 2_000));
        // Half a second later, 150,000 more.
        let t1 = t0 + Duration::from_millis(500);
        assert!(b.take(150_000, t1));
        assert!(!b.take(2_000, t1));
        // Never more than a second's worth however long it waits.
        let t2 = t1 + Duration::from_secs(3600);
        assert!(b.take(300_000, t2));
        assert!(!b.take(1, t2));
        assert_eq!(b.total_dropped_events, 3);
    }

    #[test]
    fn the_largest_event_always_fits_a_small_budget() {
        let t0 = Instant::now();
        let mut b = Budget::new(10, t0);
        assert!(b.take(MAX_MESSAGE_BYTES as u64 + LOG_EVENT_OVERHEAD_BYTES, t0));
    }

    #[test]
    fn notices_are_spaced_and_reset_the_count() {
        let t0 = Instant::now();
        let mut b = Budget::new(100, t0);
        assert_eq!(b.notice(t0, false), None);
        assert!(b.take(MAX_MESSAGE_BYTES as u64 + LOG_EVENT_OVERHEAD_BYTES, t0));
        for _ in 0..3 {
            assert!(!b.take(50, t0));
        }
        let n = b.notice(t0, false).unwrap_or_default();
        assert_eq!(n, "[berth] dropped 3 lines (150 bytes) over the shipping limit of 100 bytes/s");
        assert!(!b.take(1_000_000, t0));
        assert_eq!(b.notice(t0 + Duration::from_secs(1), false), None, "too soon");
        assert!(b.notice(t0 + NOTICE_EVERY, false).unwrap_or_default().contains("dropped 1 lines (1000000 bytes)"));
        assert!(!b.take(1_000_000, t0 + NOTICE_EVERY));
        assert!(b.notice(t0 + NOTICE_EVERY, true).is_some(), "the final flush tells at once");
    }
}
