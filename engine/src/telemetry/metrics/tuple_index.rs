//! Label-value tuples numbered once. A metric's series is found by its tuple of label values on
//! every request: hashing the tuple and comparing it with the stored one. Numbering each
//! distinct tuple (a *slot*) lets metric families that take their labels from the same
//! dimensions (Istio's four standard metrics share all of theirs) find their series by the
//! slot, so a request hashes and compares its tuple once, not once per family.

use std::hash::{Hash, Hasher};

use hashbrown::{Equivalent, HashMap};

use crate::bytes::words_equal;
use crate::keyed_hash::{keyed_state, KeyedState};

/// Distinct tuples and their slots (0, 1, 2, … in order of insertion), at most `capacity`.
#[derive(Debug)]
pub struct TupleIndex {
    /// Keyed by label values a request chooses: randomly seeded (see `keyed_hash`).
    slots: HashMap<TupleKey, u32, KeyedState>,
    capacity: usize,
}

/// A tuple as the index keeps it: the values end to end, and where each one ends (two
/// allocations, where a `Vec<String>` takes one per value).
#[derive(Debug)]
struct TupleKey {
    text: Box<[u8]>,
    ends: Box<[u32]>,
}

impl TupleKey {
    fn new(values: &[&str]) -> TupleKey {
        let mut text = Vec::with_capacity(values.iter().map(|v| v.len()).sum());
        let mut ends = Vec::with_capacity(values.len());
        for v in values {
            text.extend_from_slice(v.as_bytes());
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        TupleKey { text: text.into(), ends: ends.into() }
    }

    fn values(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0usize;
        self.ends.iter().map(move |&end| {
            let end = end as usize;
            let value = self.text.get(start..end).unwrap_or_default();
            start = end;
            value
        })
    }
}

/// The lookup form of a [`TupleKey`]: the values as a request has them, not copied.
struct BorrowedTuple<'a>(&'a [&'a str]);

impl Hash for TupleKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_values(self.values(), state);
    }
}

impl Hash for BorrowedTuple<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_values(self.0.iter().map(|v| v.as_bytes()), state);
    }
}

impl PartialEq for TupleKey {
    fn eq(&self, other: &TupleKey) -> bool {
        self.ends == other.ends && words_equal(&self.text, &other.text)
    }
}

impl Eq for TupleKey {}

impl Equivalent<TupleKey> for BorrowedTuple<'_> {
    fn equivalent(&self, key: &TupleKey) -> bool {
        key.ends.len() == self.0.len() && key.values().zip(self.0).all(|(a, b)| words_equal(a, b.as_bytes()))
    }
}

/// Hashes a tuple as its values' bytes, one hasher call each, then their lengths, sixteen to a
/// call (the lengths keep it unambiguous). Hashing each `str` the standard way takes two calls
/// (the bytes, then a terminator): on wasm32 every hasher call has a cost of its own, and
/// Istio's standard metrics hash a tuple of about 25 values on every request.
fn hash_values<'a, H: Hasher>(values: impl Iterator<Item = &'a [u8]>, state: &mut H) {
    let mut lengths = [0u8; 64];
    let mut filled = 0;
    for value in values {
        state.write(value);
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

impl TupleIndex {
    pub fn new(capacity: usize) -> TupleIndex {
        TupleIndex { slots: HashMap::with_hasher(keyed_state()), capacity }
    }

    /// The slot of `values`, if the index has them.
    pub fn find(&self, values: &[&str]) -> Option<u32> {
        self.slots.get(&BorrowedTuple(values)).copied()
    }

    /// The slot of `values`, numbered now if they are new; `None` when they are new and the
    /// index is full.
    pub fn insert(&mut self, values: &[&str]) -> Option<u32> {
        if let Some(slot) = self.find(values) {
            return Some(slot);
        }
        if self.slots.len() >= self.capacity {
            return None;
        }
        let slot = u32::try_from(self.slots.len()).ok()?;
        self.slots.insert(TupleKey::new(values), slot);
        Some(slot)
    }

    /// Number of tuples numbered.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
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
                build.hash_one(TupleKey::new(&borrowed)),
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
    fn tuples_get_slots_in_order_up_to_the_capacity() {
        let mut index = TupleIndex::new(3);
        assert_eq!(index.find(&["a", "b"]), None);
        assert_eq!(index.insert(&["a", "b"]), Some(0));
        assert_eq!(index.insert(&["ab", ""]), Some(1));
        assert_eq!(index.insert(&["a", "b"]), Some(0));
        assert_eq!(index.insert(&[]), Some(2));
        assert_eq!(index.insert(&["c"]), None, "full");
        assert_eq!((index.find(&["a", "b"]), index.find(&["ab", ""]), index.find(&[])), (Some(0), Some(1), Some(2)));
        assert_eq!(index.find(&["a", "b", ""]), None);
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn values_that_differ_in_one_byte_are_different_tuples() {
        let long = "outbound|9080||reviews.default.svc.cluster.local";
        let mut index = TupleIndex::new(100);
        assert_eq!(index.insert(&[long, "200"]), Some(0));
        let mut other = long.to_string();
        other.replace_range(40..41, "X");
        assert_eq!(index.find(&[&other, "200"]), None);
        assert_eq!(index.find(&[long, "201"]), None);
        assert_eq!(index.find(&[long, "200"]), Some(0));
    }

    /// Each index is keyed by its own random seed: label values that collide in one VM do not
    /// collide in another (or in the next map of the same VM).
    #[test]
    fn two_indexes_hash_a_tuple_differently() {
        let (a, b) = (TupleIndex::new(1), TupleIndex::new(1));
        let tuple = BorrowedTuple(&["reviews", "200"]);
        assert_ne!(a.slots.hasher().hash_one(&tuple), b.slots.hasher().hash_one(&tuple));
    }
}
