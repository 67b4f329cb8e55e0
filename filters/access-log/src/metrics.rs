//! Counters. Streams only bump plain cells (no host call per request); the root context moves
//! the deltas into Envoy metrics on every tick.

use std::cell::Cell;

use wasmixer_engine::diag::LogLimiter;
use wasmixer_engine::self_metrics;
use wasmixer_engine::telemetry::logs::batch::BatchStats;
use wasmixer_engine::telemetry::logs::plan::LogPlan;
use wasmixer_proxy_wasm_host::abi::{self, MetricType};
use wasmixer_proxy_wasm_host::tagged_metrics::TaggedMetric;

/// Most distinct tag values per tagged family (rules and instances are few).
const MAX_SERIES: usize = 1_000;

/// Per-configuration counts not yet reported, and the log limiters of streams.
pub struct Pending {
    pub lines: Cell<u64>,
    pub filtered: Cell<u64>,
    pub publish_failures: Cell<u64>,
    /// Per instance of the plan.
    pub instance_errors: Vec<Cell<u64>>,
    /// Per rule of the plan.
    pub match_errors: Vec<Cell<u64>>,
    pub instance_limiters: Vec<LogLimiter>,
    pub rule_limiters: Vec<LogLimiter>,
    pub publish_limiter: LogLimiter,
}

impl Pending {
    pub fn new(plan: &LogPlan) -> Pending {
        Pending {
            lines: Cell::new(0),
            filtered: Cell::new(0),
            publish_failures: Cell::new(0),
            instance_errors: plan.instances.iter().map(|_| Cell::new(0)).collect(),
            match_errors: plan.rules.iter().map(|_| Cell::new(0)).collect(),
            instance_limiters: plan.instances.iter().map(|_| LogLimiter::new()).collect(),
            rule_limiters: plan.rules.iter().map(|_| LogLimiter::new()).collect(),
            publish_limiter: LogLimiter::new(),
        }
    }
}

pub fn bump(c: &Cell<u64>, by: u64) {
    c.set(c.get().saturating_add(by));
}

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
    lines: Option<u32>,
    filtered: Option<u32>,
    publish_failures: Option<u32>,
    instance_errors: TaggedMetric,
    match_errors: TaggedMetric,
    net_delivered: Option<u32>,
    net_dropped: TaggedMetric,
    net_requests: Option<u32>,
    net_retries: Option<u32>,
    net_failed_attempts: Option<u32>,
    net_buffered: Option<u32>,
}

impl Default for EnvoyMetrics {
    fn default() -> EnvoyMetrics {
        EnvoyMetrics {
            lines: counter("wasmixer_access_log_lines_total"),
            filtered: counter("wasmixer_access_log_filtered_total"),
            publish_failures: counter("wasmixer_access_log_publish_failures_total"),
            instance_errors: TaggedMetric::new(
                self_metrics::ACCESS_LOG_INSTANCE_ERRORS.name,
                MetricType::Counter,
                MAX_SERIES,
            ),
            match_errors: TaggedMetric::new(
                self_metrics::ACCESS_LOG_MATCH_ERRORS.name,
                MetricType::Counter,
                MAX_SERIES,
            ),
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
    /// Reports what streams counted since the last call.
    pub fn flush_pending(&self, plan: &LogPlan, pending: &Pending) {
        add(self.lines, pending.lines.replace(0));
        add(self.filtered, pending.filtered.replace(0));
        add(self.publish_failures, pending.publish_failures.replace(0));
        for (i, c) in pending.instance_errors.iter().enumerate() {
            let n = c.replace(0);
            if let (true, Some(inst)) = (n > 0, plan.instances.get(i)) {
                self.instance_errors.increment(
                    self_metrics::ACCESS_LOG_INSTANCE_ERRORS.tags,
                    &[inst.fqn.as_str()],
                    i64::try_from(n).unwrap_or(i64::MAX),
                );
            }
        }
        for (i, c) in pending.match_errors.iter().enumerate() {
            let n = c.replace(0);
            if let (true, Some(rule)) = (n > 0, plan.rules.get(i)) {
                self.match_errors.increment(
                    self_metrics::ACCESS_LOG_MATCH_ERRORS.tags,
                    &[rule.label.as_str()],
                    i64::try_from(n).unwrap_or(i64::MAX),
                );
            }
        }
    }

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
