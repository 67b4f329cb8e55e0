//! Recording into Envoy: each family's series from the [`SeriesTable`] (ids by label tuple, a
//! cap on distinct tuples with one overflow series), the filter's own metrics, and rate-limited
//! log lines for what could not be recorded.

use std::cell::RefCell;
use std::fmt;

use hashbrown::HashMap;
use wasmixer_engine::diag::{LogLimiter, DEFAULT_INTERVAL_NS};
use wasmixer_engine::telemetry::metrics::params::{MetricKind, MAX_LABELS};
use wasmixer_engine::telemetry::metrics::plan::MetricPlan;
use wasmixer_engine::telemetry::metrics::record::{
    DropCause, MetricSink, DROPPED_METRIC, OVERFLOW_METRIC, RULE_ERRORS_METRIC, SERIES_METRIC,
};
use wasmixer_engine::telemetry::metrics::series_table::{Series, SeriesTable};
use wasmixer_proxy_wasm_host::abi::{self, MetricType};
use wasmixer_proxy_wasm_host::tagged_metrics::{define_series, TaggedMetric, OVERFLOW_TAG_VALUE};

const METRIC_TAG: [&str; 1] = ["metric"];
const DROPPED_TAGS: [&str; 2] = ["metric", "reason"];
const RULE_TAG: [&str; 1] = ["rule"];

/// One family as Envoy sees it.
struct Family {
    name: String,
    labels: Vec<String>,
    kind: MetricType,
    /// Counter increments are summed here and handed to Envoy on the root's tick: one host call
    /// per series per tick instead of one per request.
    batched: bool,
}

impl Family {
    /// Defines the series `values` (the overflow series for `None`).
    fn define(&self, values: Option<&[&str]>) -> Option<u32> {
        let mut tags: [&str; MAX_LABELS] = [""; MAX_LABELS];
        for (slot, l) in tags.iter_mut().zip(&self.labels) {
            *slot = l;
        }
        let tags = tags.get(..self.labels.len().min(MAX_LABELS)).unwrap_or(&[]);
        define_series(&self.name, self.kind, tags, values)
    }
}

/// Everything that records into Envoy, for one configuration.
pub struct Recorder {
    families: Vec<Family>,
    series_table: RefCell<SeriesTable>,
    dropped: TaggedMetric,
    overflow: TaggedMetric,
    series: TaggedMetric,
    rule_errors: TaggedMetric,
    /// One per metric def.
    drop_logs: Vec<LogLimiter>,
    /// One per family.
    overflow_logs: Vec<LogLimiter>,
    /// One per rule.
    rule_logs: Vec<LogLimiter>,
    /// Counter increments not yet handed to Envoy, by stat id.
    pending: RefCell<HashMap<u32, u64>>,
}

fn metric_type(kind: MetricKind) -> MetricType {
    match kind {
        MetricKind::Counter => MetricType::Counter,
        MetricKind::Gauge => MetricType::Gauge,
        MetricKind::Distribution => MetricType::Histogram,
    }
}

impl Drop for Recorder {
    /// A configuration going away takes its series out of `wasmixer_metric_series` (its id
    /// cache goes with it; the next configuration counts the series it defines again).
    fn drop(&mut self) {
        // Streams of a replaced configuration may have added counts since `apply` flushed.
        self.flush();
        let Ok(table) = self.series_table.try_borrow() else { return };
        for (fi, family) in self.families.iter().enumerate() {
            let count = i64::try_from(table.count(fi)).unwrap_or(i64::MAX);
            if count > 0 {
                self.series.increment(&METRIC_TAG, &[family.name.as_str()], -count);
            }
        }
    }
}

impl Recorder {
    pub fn new(plan: &MetricPlan) -> Recorder {
        let max = plan.options.max_series_per_metric;
        let n = plan.families.len();
        Recorder {
            families: plan
                .families
                .iter()
                .map(|f| Family {
                    name: f.name.clone(),
                    labels: f.labels.clone(),
                    kind: metric_type(f.kind),
                    batched: f.kind == MetricKind::Counter,
                })
                .collect(),
            series_table: RefCell::new(SeriesTable::new(n, plan.tuple_classes(), max)),
            dropped: TaggedMetric::new(DROPPED_METRIC, MetricType::Counter, 3 * n + 8),
            overflow: TaggedMetric::new(OVERFLOW_METRIC, MetricType::Counter, n + 8),
            series: TaggedMetric::new(SERIES_METRIC, MetricType::Gauge, n + 8),
            rule_errors: TaggedMetric::new(RULE_ERRORS_METRIC, MetricType::Counter, plan.rules.len() + 8),
            drop_logs: plan.metrics.iter().map(|_| LogLimiter::new()).collect(),
            overflow_logs: plan.families.iter().map(|_| LogLimiter::new()).collect(),
            rule_logs: plan.rules.iter().map(|_| LogLimiter::new()).collect(),
            pending: RefCell::new(HashMap::new()),
        }
    }

    /// Hands the summed counter increments to Envoy (from the root's tick, and before a
    /// configuration is replaced).
    pub fn flush(&self) {
        let Ok(mut pending) = self.pending.try_borrow_mut() else { return };
        for (id, delta) in pending.drain() {
            abi::record_metric(id, delta);
        }
    }

    /// The sink for one request's report.
    pub fn sink<'a>(&'a self, plan: &'a MetricPlan, context_id: u32) -> Sink<'a> {
        if let Ok(mut table) = self.series_table.try_borrow_mut() {
            table.begin_record();
        }
        Sink { recorder: self, plan, context_id }
    }

    /// Records `value` in family `fi`'s series for `labels` (of tuple class `class`).
    fn record(&self, fi: usize, class: usize, labels: &[&str], value: u64) -> Series {
        let (Some(family), Ok(mut table)) = (self.families.get(fi), self.series_table.try_borrow_mut()) else {
            return Series::Undefined;
        };
        let series = table.series(fi, class, labels, |values| family.define(values));
        let id = match series {
            Series::Existing(id) | Series::New(id, _) | Series::Overflow(id) => id,
            Series::Undefined => return series,
        };
        match self.pending.try_borrow_mut() {
            Ok(mut p) if family.batched => *p.entry(id).or_insert(0) += value,
            _ => {
                abi::record_metric(id, value);
            }
        }
        series
    }
}

/// Hands a request's samples to Envoy.
pub struct Sink<'a> {
    recorder: &'a Recorder,
    plan: &'a MetricPlan,
    context_id: u32,
}

impl Sink<'_> {
    fn family(&self, metric: usize) -> Option<(usize, &Family)> {
        let def = self.plan.metrics.get(metric)?;
        Some((def.family, self.recorder.families.get(def.family)?))
    }
}

fn admitted(limiter: Option<&LogLimiter>) -> Option<u64> {
    limiter?.admit(abi::now_nanos(), DEFAULT_INTERVAL_NS)
}

impl MetricSink for Sink<'_> {
    fn sample(&mut self, metric: usize, labels: &[&str], _value: f64, envoy_value: u64) {
        let Some((fi, family)) = self.family(metric) else {
            return;
        };
        let r = self.recorder;
        let class = self.plan.metrics.get(metric).map_or(usize::MAX, |d| d.tuple());
        match r.record(fi, class, labels, envoy_value) {
            Series::Existing(_) => {}
            // Each worker's VM has its own table and cap, and Envoy keeps one gauge for all of
            // them: setting it to this VM's count would overwrite the other workers' counts, so
            // each VM adds its new series (and a retired configuration takes its own back, see
            // `Drop`): the gauge is the sum over workers.
            Series::New(..) => r.series.increment(&METRIC_TAG, &[family.name.as_str()], 1),
            Series::Overflow(_) => {
                r.overflow.increment(&METRIC_TAG, &[family.name.as_str()], 1);
                if let Some(suppressed) = admitted(r.overflow_logs.get(fi)) {
                    log::warn!(
                        "#{} wasmixer-metrics: metric {} has reached its cap of {} series (metrics.max_series_per_metric); new label combinations are recorded in the series whose labels are all {OVERFLOW_TAG_VALUE:?} ({suppressed} similar suppressed)",
                        self.context_id,
                        family.name,
                        self.plan.options.max_series_per_metric
                    );
                }
            }
            Series::Undefined => {
                if let Some(suppressed) = admitted(r.overflow_logs.get(fi)) {
                    log::warn!("#{} wasmixer-metrics: Envoy refused to define a stat of metric {} ({suppressed} similar suppressed)", self.context_id, family.name);
                }
            }
        }
    }

    fn dropped(&mut self, metric: usize, cause: DropCause, detail: &dyn fmt::Display) {
        let r = self.recorder;
        let name = self.family(metric).map_or("unknown", |(_, f)| f.name.as_str());
        r.dropped.increment(&DROPPED_TAGS, &[name, cause.name()], 1);
        if let Some(suppressed) = admitted(r.drop_logs.get(metric)) {
            log::warn!(
                "#{} wasmixer-metrics: sample dropped ({}): {detail} ({suppressed} similar suppressed)",
                self.context_id,
                cause.name()
            );
        }
    }

    fn rule_error(&mut self, rule: usize, detail: &dyn fmt::Display) {
        let r = self.recorder;
        let label = self.plan.rules.get(rule).map_or("unknown", |x| x.label.as_str());
        r.rule_errors.increment(&RULE_TAG, &[label], 1);
        if let Some(suppressed) = admitted(r.rule_logs.get(rule)) {
            log::warn!(
                "#{} wasmixer-metrics: {detail}; the rule does not match ({suppressed} similar suppressed)",
                self.context_id
            );
        }
    }
}
