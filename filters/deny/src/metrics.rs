//! The deny filter's own counters: `wasmixer_policy_checks_total{rule, result}` and
//! `wasmixer_policy_header_values_skipped_total{rule}`, counted in memory per request and handed
//! to Envoy once per tick (a host call per request saved), and
//! `wasmixer_policy_list_fetches_total{handler, result}`, counted as list fetches end.
//! Also the coarse clock the rate-limited logs read, refreshed on the same tick.

use std::cell::Cell;

use wasmixer_engine::diag::{LogLimiter, DEFAULT_INTERVAL_NS};
use wasmixer_engine::policy::deny::{CheckRule, RuleOutcome};
use wasmixer_engine::policy::listchecker::FetchOutcome;
use wasmixer_engine::self_metrics;
use wasmixer_proxy_wasm_host::abi::{self, MetricType};
use wasmixer_proxy_wasm_host::stats::{BatchedCounter, TaggedMetric};

const FETCH_TAGS: &[&str] = self_metrics::POLICY_LIST_FETCHES.tags;
const MAX_RULE_SERIES: usize = 10_000;
const OUTCOMES: [RuleOutcome; 5] =
    [RuleOutcome::Allow, RuleOutcome::Deny, RuleOutcome::Error, RuleOutcome::DryRunDeny, RuleOutcome::NoIdentity];

fn slot(outcome: RuleOutcome) -> usize {
    match outcome {
        RuleOutcome::Allow => 0,
        RuleOutcome::Deny => 1,
        RuleOutcome::Error => 2,
        RuleOutcome::DryRunDeny => 3,
        RuleOutcome::NoIdentity => 4,
    }
}

pub struct DenyMetrics {
    /// `{rule, result}`: rule `r`'s outcome `k` is slot `OUTCOMES.len() * r + k`.
    checks: BatchedCounter,
    limiters: Vec<LogLimiter>,
    /// `{rule}`: slot `r`.
    skipped_values: BatchedCounter,
    skipped_limiters: Vec<LogLimiter>,
    list_fetches: TaggedMetric,
    fetch_limiters: Vec<LogLimiter>,
    clock_ns: Cell<i64>,
}

impl DenyMetrics {
    pub fn new(rules: &[CheckRule], handlers: usize) -> DenyMetrics {
        let labels = || rules.iter().map(|r| r.label.as_str());
        DenyMetrics {
            checks: BatchedCounter::new(
                self_metrics::POLICY_CHECKS.name,
                self_metrics::POLICY_CHECKS.tags,
                [labels().collect::<Vec<_>>(), OUTCOMES.iter().map(|o| o.name()).collect()],
                MAX_RULE_SERIES,
            ),
            limiters: rules.iter().map(|_| LogLimiter::new()).collect(),
            skipped_values: BatchedCounter::new(
                self_metrics::POLICY_HEADER_VALUES_SKIPPED.name,
                self_metrics::POLICY_HEADER_VALUES_SKIPPED.tags,
                [labels()],
                MAX_RULE_SERIES,
            ),
            skipped_limiters: rules.iter().map(|_| LogLimiter::new()).collect(),
            list_fetches: TaggedMetric::new(
                self_metrics::POLICY_LIST_FETCHES.name,
                MetricType::Counter,
                MAX_RULE_SERIES,
            ),
            fetch_limiters: (0..handlers).map(|_| LogLimiter::new()).collect(),
            clock_ns: Cell::new(abi::now_nanos()),
        }
    }

    /// Counts one outcome of rule `index` (in memory).
    pub fn count(&self, index: usize, outcome: RuleOutcome) {
        self.checks.add(index * OUTCOMES.len() + slot(outcome), 1);
    }

    /// Whether a log line about rule `index` may be written now; `Some(suppressed repeats)`.
    pub fn admit_log(&self, index: usize, interval_ns: i64) -> Option<u64> {
        self.limiters.get(index)?.admit(self.clock_ns.get(), interval_ns)
    }

    /// Counts a header value of rule `index` left out; `Some(suppressed repeats)` when a log
    /// line about it may be written now.
    pub fn skipped_value(&self, index: usize, interval_ns: i64) -> Option<u64> {
        self.skipped_values.add(index, 1);
        self.skipped_limiters.get(index)?.admit(self.clock_ns.get(), interval_ns)
    }

    /// Counts how a fetch of handler `index`'s list ended, and logs a failure (rate-limited; the
    /// last good list stays in force until its `ttl`).
    pub fn list_fetch(&self, index: usize, handler: &str, url: &str, outcome: &FetchOutcome) {
        self.list_fetches.increment(FETCH_TAGS, &[handler, outcome.result()], 1);
        if let FetchOutcome::Ok { entries } = outcome {
            log::debug!("wasmixer-deny: {handler}: fetched {url}: {entries} entries");
            return;
        }
        let admitted = self.fetch_limiters.get(index).and_then(|l| l.admit(self.clock_ns.get(), DEFAULT_INTERVAL_NS));
        if let Some(suppressed) = admitted {
            log::warn!(
                "wasmixer-deny: {handler}: fetching {url} failed: {outcome}; the last good list stays in force until its ttl ({suppressed} similar suppressed)"
            );
        }
    }

    /// Hands the counts to Envoy and refreshes the clock; called on every tick.
    pub fn flush(&self) {
        self.clock_ns.set(abi::now_nanos());
        self.skipped_values.flush();
        self.checks.flush();
    }
}
