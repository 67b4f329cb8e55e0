//! Counters. Streams only add to [`BatchedCounter`] slots (no host call per request); the root
//! context hands the sums to Envoy on every tick.

use wasmixer_engine::diag::LogLimiter;
use wasmixer_engine::self_metrics;
use wasmixer_engine::telemetry::logs::batch::BatchStats;
use wasmixer_engine::telemetry::logs::plan::LogPlan;
use wasmixer_proxy_wasm_host::abi::{self, MetricType};
use wasmixer_proxy_wasm_host::stats::{BatchedCounter, TaggedMetric};

/// Most distinct tag values per tagged family (rules and instances are few).
const MAX_SERIES: usize = 1_000;

/// Per-configuration counts not yet reported (each [`BatchedCounter`] has one slot, or one per
/// instance or rule of the plan, by index), and the log limiters of streams.
pub struct Pending {
    pub lines: BatchedCounter,
    pub filtered: BatchedCounter,
    pub publish_failures: BatchedCounter,
    /// Slot: the instance's index in the plan.
    pub instance_errors: BatchedCounter,
    /// Slot: the rule's index in the plan.
    pub match_errors: BatchedCounter,
    pub instance_limiters: Vec<LogLimiter>,
    pub rule_limiters: Vec<LogLimiter>,
    pub publish_limiter: LogLimiter,
}

impl Pending {
    pub fn new(plan: &LogPlan) -> Pending {
        Pending {
            lines: BatchedCounter::single(LINES),
            filtered: BatchedCounter::single(FILTERED),
            publish_failures: BatchedCounter::single(PUBLISH_FAILURES),
            instance_errors: BatchedCounter::new(
                self_metrics::ACCESS_LOG_INSTANCE_ERRORS.name,
                self_metrics::ACCESS_LOG_INSTANCE_ERRORS.tags,
                [plan.instances.iter().map(|i| i.fqn.as_str())],
                MAX_SERIES,
            ),
            match_errors: BatchedCounter::new(
                self_metrics::ACCESS_LOG_MATCH_ERRORS.name,
                self_metrics::ACCESS_LOG_MATCH_ERRORS.tags,
                [plan.rules.iter().map(|r| r.label.as_str())],
                MAX_SERIES,
            ),
            instance_limiters: plan.instances.iter().map(|_| LogLimiter::new()).collect(),
            rule_limiters: plan.rules.iter().map(|_| LogLimiter::new()).collect(),
            publish_limiter: LogLimiter::new(),
        }
    }

    /// Hands what streams counted since the last call to Envoy.
    pub fn flush(&self) {
        self.lines.flush();
        self.filtered.flush();
        self.publish_failures.flush();
        self.instance_errors.flush();
        self.match_errors.flush();
    }
}

const LINES: &str = "wasmixer_access_log_lines_total";
const FILTERED: &str = "wasmixer_access_log_filtered_total";
const PUBLISH_FAILURES: &str = "wasmixer_access_log_publish_failures_total";

fn counter(name: &str) -> Option<u32> {
    abi::define_metric(MetricType::Counter, name)
}

fn add(id: Option<u32>, delta: u64) {
    if let (Some(id), true) = (id, delta > 0) {
        abi::increment_metric(id, i64::try_from(delta).unwrap_or(i64::MAX));
    }
}

/// The filter's Envoy metrics (names as listed in `envoy-config/access-log/README.md`).
pub struct EnvoyMetrics {
    net_delivered: Option<u32>,
    net_dropped: TaggedMetric,
    net_requests: Option<u32>,
    net_retries: Option<u32>,
    net_failed_attempts: Option<u32>,
    net_buffered: Option<u32>,
}

impl Default for EnvoyMetrics {
    fn default() -> EnvoyMetrics {
        // Defined before any configuration, so that they read 0 from the start (a configuration's
        // [`Pending`] counts into them).
        for name in [LINES, FILTERED, PUBLISH_FAILURES] {
            counter(name);
        }
        EnvoyMetrics {
            net_delivered: counter("wasmixer_access_log_network_delivered_lines_total"),
            net_dropped: TaggedMetric::new(self_metrics::ACCESS_LOG_NETWORK_DROPPED.name, MetricType::Counter, 8),
            net_requests: counter("wasmixer_access_log_network_requests_total"),
            net_retries: counter("wasmixer_access_log_network_retries_total"),
            net_failed_attempts: counter("wasmixer_access_log_network_failed_attempts_total"),
            net_buffered: abi::define_metric(MetricType::Gauge, "wasmixer_access_log_network_buffered_lines"),
        }
    }
}

impl EnvoyMetrics {
    /// Reports the network sink's progress since `last` (then updates `last`). The buffered
    /// gauge moves by differences, so that every VM (each worker's, and the main thread's that
    /// never sees a request) adds its own share instead of overwriting the others'.
    pub fn flush_network(&self, now: BatchStats, last: &mut BatchStats, buffered: usize, last_buffered: &mut usize) {
        add(self.net_delivered, now.delivered.saturating_sub(last.delivered));
        add(self.net_requests, now.requests.saturating_sub(last.requests));
        add(self.net_retries, now.retries.saturating_sub(last.retries));
        add(self.net_failed_attempts, now.failed_attempts.saturating_sub(last.failed_attempts));
        for (reason, n) in [
            ("buffer_full", now.dropped_full.saturating_sub(last.dropped_full)),
            ("rejected", now.dropped_rejected.saturating_sub(last.dropped_rejected)),
            ("max_attempts", now.dropped_attempts.saturating_sub(last.dropped_attempts)),
        ] {
            if n > 0 {
                self.net_dropped.increment(
                    self_metrics::ACCESS_LOG_NETWORK_DROPPED.tags,
                    &[reason],
                    i64::try_from(n).unwrap_or(i64::MAX),
                );
            }
        }
        self.move_buffered(buffered, last_buffered);
        *last = now;
    }

    /// Moves the buffered-lines gauge from `*last` to `buffered`.
    pub fn move_buffered(&self, buffered: usize, last: &mut usize) {
        let delta =
            i64::try_from(buffered).unwrap_or(i64::MAX).saturating_sub(i64::try_from(*last).unwrap_or(i64::MAX));
        if let (Some(id), true) = (self.net_buffered, delta != 0) {
            abi::increment_metric(id, delta);
        }
        *last = buffered;
    }
}
