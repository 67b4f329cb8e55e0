//! Metrics with tags, on an ABI whose metrics have none: the tags are encoded in the stat name
//! (`tag=.=value;.;...;.;name`, see [`wasmixer_engine::telemetry::stat_name`]) and Envoy's `stats_tags`
//! regexes turn them back into labels. Metric ids are cached per tag tuple: a cache hit neither
//! builds a name nor calls the host.

use std::cell::{Cell, RefCell};

use wasmixer_engine::telemetry::series_table::{Series, SeriesTable};
use wasmixer_engine::telemetry::stat_name::write_tagged_name;

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
