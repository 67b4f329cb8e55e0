//! Envoy stats, the one layer every filter records through: sample → series → stat.
//!
//! Metrics with tags, on an ABI whose metrics have none: the tags are encoded in the stat name
//! (`tag=.=value;.;...;.;name`, see [`wasmixer_engine::telemetry::metrics::stat_name`]) and Envoy's `stats_tags`
//! regexes turn them back into labels. Metric ids are cached per tag tuple: a cache hit neither
//! builds a name nor calls the host.
//!
//! * [`TaggedMetric`]: one family whose series are defined on first use (rare events);
//! * [`BatchedCounter`]: a filter's own counters, counted in memory by slot, handed over on
//!   the tick;
//! * [`MetricRecorder`]: the engine's [`MetricSink`] for a metrics configuration: a sample's
//!   series looked up in the engine's [`SeriesTable`], defined here, counted here.

use std::cell::{Cell, RefCell};
use std::fmt;

use wasmixer_engine::diag::{LogLimiter, DEFAULT_INTERVAL_NS};
use wasmixer_engine::telemetry::metrics::params::{MetricKind, MAX_LABELS};
use wasmixer_engine::telemetry::metrics::plan::MetricPlan;
use wasmixer_engine::telemetry::metrics::record::{
    DropCause, MetricSink, DROPPED_METRIC, OVERFLOW_METRIC, RULE_ERRORS_METRIC, SERIES_METRIC,
};
use wasmixer_engine::telemetry::metrics::series_table::{Series, SeriesTable};
use wasmixer_engine::telemetry::metrics::stat_name::write_tagged_name;

use crate::abi::{self, MetricType};

/// One metric family: a name, a type, and the ids of the series defined so far.
#[derive(Debug)]
pub struct TaggedMetric {
    name: String,
    kind: MetricType,
    series: RefCell<SeriesTable>,
}

/// Value used for every tag of the overflow series, once a family has `max_series` series.
pub const OVERFLOW_TAG_VALUE: &str = "overflow";

/// No tuple class: a lone family looks each tuple up (no per-record memo).
const NO_CLASS: usize = usize::MAX;

impl TaggedMetric {
    pub fn new(name: impl Into<String>, kind: MetricType, max_series: usize) -> TaggedMetric {
        TaggedMetric { name: name.into(), kind, series: RefCell::new(SeriesTable::new(1, 0, max_series)) }
    }

    /// The metric id of the series with these tag values (`tags` names them in order).
    pub fn id(&self, tags: &[&str], values: &[&str]) -> Option<u32> {
        let mut series = self.series.try_borrow_mut().ok()?;
        match series.series(0, NO_CLASS, values, |values| define_series(&self.name, self.kind, tags, values)) {
            Series::Existing(id) | Series::New(id, _) | Series::Overflow(id) => Some(id),
            Series::Undefined => None,
        }
    }

    /// Number of distinct series defined (overflow excluded).
    pub fn series_count(&self) -> usize {
        self.series.try_borrow().map_or(0, |s| s.count(0))
    }

    pub fn increment(&self, tags: &[&str], values: &[&str], delta: i64) {
        if let Some(id) = self.id(tags, values) {
            abi::increment_metric(id, delta);
        }
    }

    pub fn record(&self, tags: &[&str], values: &[&str], value: u64) {
        if let Some(id) = self.id(tags, values) {
            abi::record_metric(id, value);
        }
    }
}

/// Defines the series `values` of metric `name` (`tags` names the values in order), or its
/// overflow series (every tag [`OVERFLOW_TAG_VALUE`]) for `None`: the stat
/// `tag=.=value;.;...;.;name`.
pub fn define_series(name: &str, kind: MetricType, tags: &[&str], values: Option<&[&str]>) -> Option<u32> {
    let pairs: Vec<(&str, &str)> = match values {
        Some(values) => tags.iter().copied().zip(values.iter().copied()).collect(),
        None => tags.iter().map(|&t| (t, OVERFLOW_TAG_VALUE)).collect(),
    };
    let mut stat = String::with_capacity(name.len() + 16 * pairs.len());
    write_tagged_name(&pairs, name, &mut stat);
    abi::define_metric(kind, &stat)
}

/// Most tags a [`BatchedCounter`] has.
pub const MAX_BATCHED_TAGS: usize = 4;

/// A counter family counted in memory and handed to Envoy by [`BatchedCounter::flush`] (on the
/// root's tick): no host call per event. Every counter a filter keeps about itself is one.
///
/// Its series are fixed when it is made (at configure time): each tag takes its values from a
/// vocabulary (a rule's label, an outcome's name), and every combination is a slot, numbered
/// row-major (the last tag varies fastest: with tags `[rule, result]` and 5 results, rule `r`'s
/// result `k` is slot `5 * r + k`). Counting is [`add`](BatchedCounter::add)`(slot, n)`: an
/// index and a `Cell` add, nothing allocated, nothing looked up. A series is defined in Envoy
/// the first time its count is handed over (a counter without tags at once, so that it reads 0
/// from the start), up to `max_series` series, beyond which counts go to the overflow series.
#[derive(Debug)]
pub struct BatchedCounter {
    metric: TaggedMetric,
    tags: &'static [&'static str],
    /// Each tag's values, in slot order.
    values: Vec<Box<[Box<str>]>>,
    counts: Box<[Cell<i64>]>,
}

impl BatchedCounter {
    /// A counter `name` whose `tags` take their values from `values` (one vocabulary per tag).
    /// Tags beyond [`MAX_BATCHED_TAGS`] are left out.
    pub fn new<V, S>(name: &str, tags: &'static [&'static str], values: V, max_series: usize) -> BatchedCounter
    where
        V: IntoIterator,
        V::Item: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        let tags = tags.get(..tags.len().min(MAX_BATCHED_TAGS)).unwrap_or(&[]);
        let values: Vec<Box<[Box<str>]>> =
            values.into_iter().take(tags.len()).map(|v| v.into_iter().map(Into::into).collect()).collect();
        let slots = if values.len() == tags.len() { values.iter().map(|v| v.len()).product() } else { 0 };
        let metric = TaggedMetric::new(name, MetricType::Counter, max_series);
        if tags.is_empty() {
            metric.id(&[], &[]);
        }
        BatchedCounter { metric, tags, values, counts: (0..slots).map(|_| Cell::new(0)).collect() }
    }

    /// An untagged counter.
    pub fn single(name: &str) -> BatchedCounter {
        BatchedCounter::new(name, &[], std::iter::empty::<[&str; 0]>(), 1)
    }

    /// Adds `n` to slot `slot` (in memory); a slot out of range is ignored.
    #[inline]
    pub fn add(&self, slot: usize, n: i64) {
        if let Some(c) = self.counts.get(slot) {
            c.set(c.get().saturating_add(n));
        }
    }

    /// How many values tag `tag` takes (the stride of the tag before it).
    pub fn values_of(&self, tag: usize) -> usize {
        self.values.get(tag).map_or(0, |v| v.len())
    }

    /// The slot of these tag values, if they are in the vocabularies (a linear search: for small
    /// vocabularies only).
    pub fn slot_of(&self, values: &[&str]) -> Option<usize> {
        if values.len() != self.values.len() {
            return None;
        }
        let mut slot = 0;
        for (vocabulary, value) in self.values.iter().zip(values) {
            slot = slot * vocabulary.len() + vocabulary.iter().position(|v| &**v == *value)?;
        }
        Some(slot)
    }

    /// The tag values of `slot`, into `out`.
    fn values_at<'a>(&'a self, mut slot: usize, out: &mut [&'a str; MAX_BATCHED_TAGS]) {
        for (i, vocabulary) in self.values.iter().enumerate().rev() {
            let n = vocabulary.len().max(1);
            if let (Some(o), Some(v)) = (out.get_mut(i), vocabulary.get(slot % n)) {
                *o = v;
            }
            slot /= n;
        }
    }

    /// What is counted but not handed to Envoy yet, by series.
    pub fn pending(&self) -> Vec<(Vec<&str>, i64)> {
        let mut out = Vec::new();
        for (slot, c) in self.counts.iter().enumerate() {
            if c.get() != 0 {
                let mut values = [""; MAX_BATCHED_TAGS];
                self.values_at(slot, &mut values);
                out.push((values.get(..self.tags.len()).unwrap_or(&[]).to_vec(), c.get()));
            }
        }
        out
    }

    /// Hands the sums to Envoy.
    pub fn flush(&self) {
        for (slot, c) in self.counts.iter().enumerate() {
            let n = c.replace(0);
            if n != 0 {
                let mut values = [""; MAX_BATCHED_TAGS];
                self.values_at(slot, &mut values);
                self.metric.increment(self.tags, values.get(..self.tags.len()).unwrap_or(&[]), n);
            }
        }
    }
}

/// One metric family of a [`MetricPlan`] as Envoy sees it.
#[derive(Debug)]
struct Family {
    name: String,
    labels: Vec<String>,
    kind: MetricType,
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

/// A series a [`MetricRecorder`] defined: its stat, and (counters) what is not handed over yet.
#[derive(Debug)]
struct SeriesSlot {
    stat: u32,
    batched: bool,
    pending: Cell<u64>,
}

/// The stats of one metrics configuration, and the engine's [`MetricSink`] over them: a sample
/// goes from [`MetricPlan::record`] to its series (the engine's [`SeriesTable`]: ids by label
/// tuple, a cap on distinct tuples with one overflow series), defined in Envoy the first time
/// (a tag-in-name stat), and is added to it. The table numbers series by their slot here, so
/// that a counter sample is a `Cell` add, handed to Envoy by [`flush`](MetricRecorder::flush)
/// on the root's tick (one host call per series per tick, not per request); gauges and
/// histograms are recorded at once. Also the metrics filter's own counters and rate-limited
/// log lines for what could not be recorded.
pub struct MetricRecorder {
    families: Vec<Family>,
    series_table: RefCell<SeriesTable>,
    /// Every series defined, by the number the table knows it by.
    slots: RefCell<Vec<SeriesSlot>>,
    /// `{metric, reason}`: metric def `m`'s cause `c` is slot `DROP_CAUSES.len() * m + c`.
    dropped: BatchedCounter,
    /// `{metric}`: slot = family index.
    overflow: BatchedCounter,
    series: TaggedMetric,
    /// `{rule}`: slot = rule index.
    rule_errors: BatchedCounter,
    /// One per metric def.
    drop_logs: Vec<LogLimiter>,
    /// One per family.
    overflow_logs: Vec<LogLimiter>,
    /// One per rule.
    rule_logs: Vec<LogLimiter>,
}

const METRIC_TAG: [&str; 1] = ["metric"];
const DROPPED_TAGS: [&str; 2] = ["metric", "reason"];
const RULE_TAG: [&str; 1] = ["rule"];
const DROP_CAUSES: [DropCause; 3] = [DropCause::Value, DropCause::Dimension, DropCause::Range];

fn drop_slot(cause: DropCause) -> usize {
    match cause {
        DropCause::Value => 0,
        DropCause::Dimension => 1,
        DropCause::Range => 2,
    }
}

fn metric_type(kind: MetricKind) -> MetricType {
    match kind {
        MetricKind::Counter => MetricType::Counter,
        MetricKind::Gauge => MetricType::Gauge,
        MetricKind::Distribution => MetricType::Histogram,
    }
}

impl Drop for MetricRecorder {
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

impl MetricRecorder {
    pub fn new(plan: &MetricPlan) -> MetricRecorder {
        let max = plan.options.max_series_per_metric;
        let n = plan.families.len();
        MetricRecorder {
            families: plan
                .families
                .iter()
                .map(|f| Family { name: f.name.clone(), labels: f.labels.clone(), kind: metric_type(f.kind) })
                .collect(),
            series_table: RefCell::new(SeriesTable::new(n, plan.tuple_classes(), max)),
            slots: RefCell::default(),
            dropped: BatchedCounter::new(
                DROPPED_METRIC,
                &DROPPED_TAGS,
                [
                    plan.metrics
                        .iter()
                        .map(|m| plan.families.get(m.family).map_or("unknown", |f| f.name.as_str()))
                        .collect::<Vec<_>>(),
                    DROP_CAUSES.iter().map(|c| c.name()).collect(),
                ],
                3 * n + 8,
            ),
            overflow: BatchedCounter::new(
                OVERFLOW_METRIC,
                &METRIC_TAG,
                [plan.families.iter().map(|f| f.name.as_str())],
                n + 8,
            ),
            series: TaggedMetric::new(SERIES_METRIC, MetricType::Gauge, n + 8),
            rule_errors: BatchedCounter::new(
                RULE_ERRORS_METRIC,
                &RULE_TAG,
                [plan.rules.iter().map(|r| r.label.as_str())],
                plan.rules.len() + 8,
            ),
            drop_logs: plan.metrics.iter().map(|_| LogLimiter::new()).collect(),
            overflow_logs: plan.families.iter().map(|_| LogLimiter::new()).collect(),
            rule_logs: plan.rules.iter().map(|_| LogLimiter::new()).collect(),
        }
    }

    /// Hands the summed counter increments to Envoy (from the root's tick, and before a
    /// configuration is replaced).
    pub fn flush(&self) {
        // The filter's own counters first: a series seen in Envoy has its overflow count there.
        self.dropped.flush();
        self.overflow.flush();
        self.rule_errors.flush();
        let Ok(slots) = self.slots.try_borrow() else { return };
        for slot in slots.iter() {
            let n = slot.pending.replace(0);
            if n > 0 {
                abi::record_metric(slot.stat, n);
            }
        }
    }

    /// The sink for one request's report.
    pub fn sink<'a>(&'a self, plan: &'a MetricPlan, context_id: u32) -> MetricRecording<'a> {
        if let Ok(mut table) = self.series_table.try_borrow_mut() {
            table.begin_record();
        }
        MetricRecording { recorder: self, plan, context_id }
    }

    /// Records `value` in family `fi`'s series for `labels` (of tuple class `class`).
    fn record(&self, fi: usize, class: usize, labels: &[&str], value: u64) -> Series {
        let (Some(family), Ok(mut table), Ok(mut slots)) =
            (self.families.get(fi), self.series_table.try_borrow_mut(), self.slots.try_borrow_mut())
        else {
            return Series::Undefined;
        };
        let series = table.series(fi, class, labels, |values| {
            let stat = family.define(values)?;
            let slot = u32::try_from(slots.len()).ok()?;
            slots.push(SeriesSlot { stat, batched: family.kind == MetricType::Counter, pending: Cell::new(0) });
            Some(slot)
        });
        let slot = match series {
            Series::Existing(slot) | Series::New(slot, _) | Series::Overflow(slot) => slot,
            Series::Undefined => return series,
        };
        match slots.get(slot as usize) {
            Some(s) if s.batched => s.pending.set(s.pending.get().saturating_add(value)),
            Some(s) => {
                abi::record_metric(s.stat, value);
            }
            None => {}
        }
        series
    }
}

/// Hands a request's samples to Envoy.
pub struct MetricRecording<'a> {
    recorder: &'a MetricRecorder,
    plan: &'a MetricPlan,
    context_id: u32,
}

impl MetricRecording<'_> {
    fn family(&self, metric: usize) -> Option<(usize, &Family)> {
        let def = self.plan.metrics.get(metric)?;
        Some((def.family, self.recorder.families.get(def.family)?))
    }
}

fn admitted(limiter: Option<&LogLimiter>) -> Option<u64> {
    limiter?.admit(abi::now_nanos(), DEFAULT_INTERVAL_NS)
}

impl MetricSink for MetricRecording<'_> {
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
                r.overflow.add(fi, 1);
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
        r.dropped.add(metric * DROP_CAUSES.len() + drop_slot(cause), 1);
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
        r.rule_errors.add(rule, 1);
        if let Some(suppressed) = admitted(r.rule_logs.get(rule)) {
            log::warn!(
                "#{} wasmixer-metrics: {detail}; the rule does not match ({suppressed} similar suppressed)",
                self.context_id
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_counts_are_summed_per_slot_until_flushed() {
        let c = BatchedCounter::new(
            "wasmixer_test_total",
            &["direction", "result"],
            [vec!["inbound", "outbound"], vec!["verified", "no_mtls", "malformed"]],
            8,
        );
        let verified_in = c.slot_of(&["inbound", "verified"]).unwrap_or(usize::MAX);
        let no_mtls_out = c.slot_of(&["outbound", "no_mtls"]).unwrap_or(usize::MAX);
        assert_eq!((verified_in, no_mtls_out, c.values_of(1)), (0, 4, 3));
        assert_eq!(c.slot_of(&["sideways", "verified"]), None);
        c.add(verified_in, 1);
        c.add(verified_in, 2);
        c.add(no_mtls_out, 1);
        c.add(99, 1);
        assert_eq!(c.pending(), [(vec!["inbound", "verified"], 3), (vec!["outbound", "no_mtls"], 1)]);
        c.flush();
        assert!(c.pending().is_empty());
        c.add(no_mtls_out, 1);
        assert_eq!(c.pending(), [(vec!["outbound", "no_mtls"], 1)]);
    }

    #[test]
    fn an_untagged_counter_has_one_slot() {
        let c = BatchedCounter::single("wasmixer_test_lines_total");
        c.add(0, 2);
        c.add(1, 5);
        assert_eq!(c.pending(), [(vec![], 2)]);
    }
}
