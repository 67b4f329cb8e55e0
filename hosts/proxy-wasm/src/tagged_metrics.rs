//! Metrics with tags, on an ABI whose metrics have none: the tags are encoded in the stat name
//! (`tag=.=value;.;...;.;name`, see [`wasmixer_engine::telemetry::metrics::stat_name`]) and Envoy's `stats_tags`
//! regexes turn them back into labels. Metric ids are cached per tag tuple: a cache hit neither
//! builds a name nor calls the host.

use std::cell::RefCell;

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

/// A counter family whose increments are summed in memory and handed to Envoy by
/// [`BatchedCounter::flush`] (on the root's tick): no host call per event. Its tag values come
/// from a fixed vocabulary (`'static`), so the pending sums stay few.
#[derive(Debug)]
pub struct BatchedCounter<const N: usize> {
    metric: TaggedMetric,
    tags: [&'static str; N],
    pending: RefCell<Vec<([&'static str; N], i64)>>,
}

impl<const N: usize> BatchedCounter<N> {
    pub fn new(name: &str, tags: [&'static str; N], max_series: usize) -> BatchedCounter<N> {
        BatchedCounter {
            metric: TaggedMetric::new(name, MetricType::Counter, max_series),
            tags,
            pending: RefCell::default(),
        }
    }

    /// Adds `delta` to the series `values` (in memory).
    pub fn add(&self, values: [&'static str; N], delta: i64) {
        let Ok(mut pending) = self.pending.try_borrow_mut() else { return };
        match pending.iter_mut().find(|(v, _)| *v == values) {
            Some((_, sum)) => *sum = sum.saturating_add(delta),
            None => pending.push((values, delta)),
        }
    }

    /// What is counted but not handed to Envoy yet, by series.
    pub fn pending(&self) -> Vec<([&'static str; N], i64)> {
        self.pending.try_borrow().map(|p| p.iter().filter(|(_, n)| *n != 0).cloned().collect()).unwrap_or_default()
    }

    /// Hands the sums to Envoy.
    pub fn flush(&self) {
        let Ok(mut pending) = self.pending.try_borrow_mut() else { return };
        for (values, sum) in pending.iter_mut() {
            if *sum != 0 {
                self.metric.increment(&self.tags, values, *sum);
                *sum = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_counts_are_summed_per_series_until_flushed() {
        let c = BatchedCounter::new("wasmixer_test_total", ["direction", "result"], 8);
        c.add(["inbound", "verified"], 1);
        c.add(["inbound", "verified"], 2);
        c.add(["outbound", "no_mtls"], 1);
        assert_eq!(c.pending(), [(["inbound", "verified"], 3), (["outbound", "no_mtls"], 1)]);
        c.flush();
        assert!(c.pending().is_empty());
        c.add(["outbound", "no_mtls"], 1);
        assert_eq!(c.pending(), [(["outbound", "no_mtls"], 1)]);
    }
}
