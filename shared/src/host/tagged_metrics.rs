//! Metrics with tags, on an ABI whose metrics have none: the tags are encoded in the stat name
//! (`tag=.=value;.;...;.;name`, see [`crate::telemetry::stat_name`]) and Envoy's `stats_tags`
//! regexes turn them back into labels. Metric ids are cached per tag tuple: a cache hit neither
//! builds a name nor calls the host.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};

use hashbrown::HashMap;

use super::abi::{self, MetricType};
use crate::telemetry::stat_name::write_tagged_name;

/// One metric family: a name, a type, and the ids of the series defined so far.
#[derive(Debug)]
pub struct TaggedMetric {
    name: String,
    kind: MetricType,
    series: RefCell<HashMap<SeriesKey, u32>>,
    max_series: usize,
    overflow: RefCell<Option<u32>>,
}

/// A series' tag values, as the map keeps them.
#[derive(Debug, PartialEq, Eq)]
struct SeriesKey(Vec<String>);

/// A tag tuple as `&[&str]`, looked up in the map without allocating: it hashes exactly like
/// the [`SeriesKey`] with the same values.
struct BorrowedTuple<'a>(&'a [&'a str]);

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_values(self.0.iter().map(String::as_str), state);
    }
}

impl Hash for BorrowedTuple<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_values(self.0.iter().copied(), state);
    }
}

impl hashbrown::Equivalent<SeriesKey> for BorrowedTuple<'_> {
    fn equivalent(&self, key: &SeriesKey) -> bool {
        key.0.len() == self.0.len() && key.0.iter().zip(self.0).all(|(a, b)| a == b)
    }
}

/// Hashes a tuple as its values' bytes, one hasher call each, then their lengths, sixteen to a
/// call (the lengths keep it unambiguous). Hashing each `str` the standard way takes two calls
/// (the bytes, then a terminator); Istio's standard metrics hash four tuples of about 25 values
/// on every request, and on wasm32 the second call cost ~2,900 instructions a request.
fn hash_values<'a, H: Hasher>(values: impl Iterator<Item = &'a str>, state: &mut H) {
    let mut lengths = [0u8; 64];
    let mut filled = 0;
    for value in values {
        state.write(value.as_bytes());
        let length = u32::try_from(value.len()).unwrap_or(u32::MAX).to_le_bytes();
        if let Some(slot) = lengths.get_mut(filled..filled + 4) {
            slot.copy_from_slice(&length);
        }
        filled += 4;
        if filled == lengths.len() {
            state.write(&lengths);
            filled = 0;
        }
    }
    state.write(lengths.get(..filled).unwrap_or_default());
}

/// Value used for every tag of the overflow series, once a family has `max_series` series.
pub const OVERFLOW_TAG_VALUE: &str = "overflow";

impl TaggedMetric {
    pub fn new(name: impl Into<String>, kind: MetricType, max_series: usize) -> TaggedMetric {
        TaggedMetric {
            name: name.into(),
            kind,
            series: RefCell::new(HashMap::new()),
            max_series,
            overflow: RefCell::new(None),
        }
    }

    /// The metric id of the series with these tag values (`tags` names them in order).
    pub fn id(&self, tags: &[&str], values: &[&str]) -> Option<u32> {
        let mut series = self.series.try_borrow_mut().ok()?;
        if let Some(id) = series.get(&BorrowedTuple(values)) {
            return Some(*id);
        }
        if series.len() >= self.max_series {
            return self.overflow_id(tags);
        }
        let id = self.define(tags, values)?;
        series.insert(SeriesKey(values.iter().map(|v| v.to_string()).collect()), id);
        Some(id)
    }

    fn overflow_id(&self, tags: &[&str]) -> Option<u32> {
        let mut overflow = self.overflow.try_borrow_mut().ok()?;
        if overflow.is_none() {
            let values: Vec<&str> = tags.iter().map(|_| OVERFLOW_TAG_VALUE).collect();
            *overflow = self.define(tags, &values);
        }
        *overflow
    }

    fn define(&self, tags: &[&str], values: &[&str]) -> Option<u32> {
        let pairs: Vec<(&str, &str)> = tags.iter().copied().zip(values.iter().copied()).collect();
        let mut name = String::with_capacity(self.name.len() + 16 * pairs.len());
        write_tagged_name(&pairs, &self.name, &mut name);
        abi::define_metric(self.kind, &name)
    }

    /// Number of distinct series defined (overflow excluded).
    pub fn series_count(&self) -> usize {
        self.series.try_borrow().map_or(0, |s| s.len())
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
    use std::hash::BuildHasher;

    #[test]
    fn a_borrowed_tuple_hashes_like_its_key_and_splits_are_told_apart() {
        let build = hashbrown::DefaultHashBuilder::default();
        for n in [0usize, 1, 15, 16, 17, 40] {
            let owned: Vec<String> = (0..n).map(|i| format!("value-{i}")).collect();
            let borrowed: Vec<&str> = owned.iter().map(String::as_str).collect();
            assert_eq!(
                build.hash_one(SeriesKey(owned.clone())),
                build.hash_one(BorrowedTuple(&borrowed)),
                "{n} values"
            );
        }
        // The same bytes split differently are different tuples, and hash differently.
        let hash = |values: &[&str]| build.hash_one(BorrowedTuple(values));
        assert_ne!(hash(&["ab", "c"]), hash(&["a", "bc"]));
        assert_ne!(hash(&["", "a"]), hash(&["a", ""]));
        assert_ne!(hash(&["a"]), hash(&["a", ""]));
    }

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
