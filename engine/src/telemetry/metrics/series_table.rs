//! Which stat records a sample: each metric family's series by label tuple, at most
//! `max_series` per family, then one overflow series per family (a hostile client cannot grow
//! the proxy's memory without bound). Label tuples are numbered once for all families
//! ([`TupleIndex`]), and within one record a tuple class ([`MetricDef::tuple`]) is looked up
//! once: Istio's four standard metrics hash and compare their ~25 label values once a request,
//! not four times.
//!
//! [`MetricDef::tuple`]: super::plan::MetricDef::tuple

use super::tuple_index::TupleIndex;

/// A tuple slot for which a family has no series.
const NO_SERIES: u32 = u32::MAX;

/// The stat a sample goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Series {
    /// A series that already existed.
    Existing(u32),
    /// A series defined now; its family has this many.
    New(u32, usize),
    /// The family is at its cap and the tuple is new: its overflow series.
    Overflow(u32),
    /// The host refused to define the stat.
    Undefined,
}

#[derive(Debug, Default)]
struct FamilyIds {
    /// Stat ids by tuple slot ([`NO_SERIES`] where the family has none).
    by_slot: Vec<u32>,
    count: usize,
    overflow: Option<u32>,
}

#[derive(Debug)]
pub struct SeriesTable {
    tuples: TupleIndex,
    families: Vec<FamilyIds>,
    /// Per tuple class: the record it was looked up in, and the slot found.
    memo: Vec<(u64, Option<u32>)>,
    record: u64,
    max_series: usize,
}

impl SeriesTable {
    /// A table for `families` families fed by `classes` tuple classes.
    pub fn new(families: usize, classes: usize, max_series: usize) -> SeriesTable {
        SeriesTable {
            // Every tuple numbered has a series in at least one family.
            tuples: TupleIndex::new(max_series.saturating_mul(families)),
            families: (0..families).map(|_| FamilyIds::default()).collect(),
            memo: vec![(0, None); classes],
            record: 0,
            max_series,
        }
    }

    /// Starts the samples of one record (one request, one TCP report).
    pub fn begin_record(&mut self) {
        self.record = self.record.wrapping_add(1);
        if self.record == 0 {
            self.memo.iter_mut().for_each(|m| *m = (0, None));
            self.record = 1;
        }
    }

    /// The stat of family `family` for label `values` of tuple class `class` (a class number
    /// the table was not made for looks the tuple up every time). `define` makes a stat:
    /// `Some(values)` for a new series, `None` for the family's overflow series.
    pub fn series(
        &mut self,
        family: usize,
        class: usize,
        values: &[&str],
        define: impl FnOnce(Option<&[&str]>) -> Option<u32>,
    ) -> Series {
        let full = self.families.get(family).is_none_or(|f| f.count >= self.max_series);
        let slot = self.slot(class, values, !full);
        let Some(ids) = self.families.get_mut(family) else {
            return Series::Undefined;
        };
        let index = slot.map(|s| s as usize);
        if let Some(&id) = index.and_then(|i| ids.by_slot.get(i)).filter(|&&id| id != NO_SERIES) {
            return Series::Existing(id);
        }
        let Some(index) = index.filter(|_| !full) else {
            if ids.overflow.is_none() {
                ids.overflow = define(None);
            }
            return ids.overflow.map_or(Series::Undefined, Series::Overflow);
        };
        let Some(id) = define(Some(values)) else {
            return Series::Undefined;
        };
        if ids.by_slot.len() <= index {
            ids.by_slot.resize(index + 1, NO_SERIES);
        }
        if let Some(entry) = ids.by_slot.get_mut(index) {
            *entry = id;
        }
        ids.count += 1;
        Series::New(id, ids.count)
    }

    /// Number of series family `family` has (its overflow series not counted).
    pub fn count(&self, family: usize) -> usize {
        self.families.get(family).map_or(0, |f| f.count)
    }

    /// The slot of `values`, numbered if new and `number`; a class already looked up in this
    /// record answers from the memo.
    fn slot(&mut self, class: usize, values: &[&str], number: bool) -> Option<u32> {
        let record = self.record;
        let memo = self.memo.get_mut(class);
        match memo.as_deref() {
            Some(&(r, Some(slot))) if r == record => return Some(slot),
            Some(&(r, None)) if r == record && !number => return None,
            _ => {}
        }
        let slot = if number { self.tuples.insert(values) } else { self.tuples.find(values) };
        if let Some(memo) = memo {
            *memo = (record, slot);
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host that hands out stat ids in order and remembers what each one was defined for.
    #[derive(Default)]
    struct Stats(Vec<(usize, Option<Vec<String>>)>);

    impl Stats {
        fn define(&mut self, family: usize) -> impl FnOnce(Option<&[&str]>) -> Option<u32> + '_ {
            move |values| {
                self.0.push((family, values.map(|v| v.iter().map(|s| s.to_string()).collect())));
                Some(self.0.len() as u32 - 1)
            }
        }
    }

    #[test]
    fn families_of_one_class_share_the_tuple_and_keep_their_own_ids() {
        let mut stats = Stats::default();
        let mut table = SeriesTable::new(3, 2, 10);
        table.begin_record();
        assert_eq!(table.series(0, 0, &["a", "200"], stats.define(0)), Series::New(0, 1));
        assert_eq!(table.series(1, 0, &["a", "200"], stats.define(1)), Series::New(1, 1));
        assert_eq!(table.series(2, 1, &["x"], stats.define(2)), Series::New(2, 1));
        table.begin_record();
        assert_eq!(table.series(0, 0, &["a", "200"], stats.define(0)), Series::Existing(0));
        assert_eq!(table.series(1, 0, &["a", "200"], stats.define(1)), Series::Existing(1));
        table.begin_record();
        assert_eq!(table.series(0, 0, &["a", "503"], stats.define(0)), Series::New(3, 2));
        assert_eq!(table.series(1, 0, &["a", "503"], stats.define(1)), Series::New(4, 2));
        // A family fed by another class finds the tuple another family numbered.
        assert_eq!(table.series(2, 1, &["a", "200"], stats.define(2)), Series::New(5, 2));
        assert_eq!(stats.0[5], (2, Some(vec!["a".to_string(), "200".to_string()])));
        assert_eq!((table.count(0), table.count(1), table.count(2)), (2, 2, 2));
    }

    #[test]
    fn a_full_family_overflows_while_the_others_still_grow() {
        let mut stats = Stats::default();
        let mut table = SeriesTable::new(2, 2, 2);
        for (i, path) in ["/a", "/b", "/c", "/d"].iter().enumerate() {
            table.begin_record();
            let first = table.series(0, 0, &[path], stats.define(0));
            if i < 2 {
                assert!(matches!(first, Series::New(_, n) if n == i + 1), "{path}: {first:?}");
            } else {
                assert!(matches!(first, Series::Overflow(_)), "{path}: {first:?}");
            }
        }
        // One overflow series, defined once, for every tuple past the cap.
        let overflow: Vec<_> = stats.0.iter().filter(|(f, v)| *f == 0 && v.is_none()).collect();
        assert_eq!(overflow.len(), 1);
        // Family 1 (another class) has its own cap: /c gets a series there.
        table.begin_record();
        assert!(matches!(table.series(1, 1, &["/c"], stats.define(1)), Series::New(_, 1)));
        table.begin_record();
        assert!(matches!(table.series(0, 0, &["/c"], stats.define(0)), Series::Overflow(_)));
        table.begin_record();
        assert!(matches!(table.series(0, 0, &["/a"], stats.define(0)), Series::Existing(_)));
        assert_eq!(table.count(0), 2);
    }

    #[test]
    fn a_memoised_miss_is_numbered_when_a_family_with_room_asks() {
        let mut stats = Stats::default();
        let mut table = SeriesTable::new(2, 1, 1);
        table.begin_record();
        assert!(matches!(table.series(0, 0, &["a"], stats.define(0)), Series::New(_, 1)));
        table.begin_record();
        // Family 0 is full: the miss is memoised without numbering; family 1 has room.
        assert!(matches!(table.series(0, 0, &["b"], stats.define(0)), Series::Overflow(_)));
        assert!(matches!(table.series(1, 0, &["b"], stats.define(1)), Series::New(_, 1)));
        table.begin_record();
        assert!(matches!(table.series(1, 0, &["b"], stats.define(1)), Series::Existing(_)));
    }

    #[test]
    fn a_refused_definition_is_undefined_and_retried_later() {
        let mut table = SeriesTable::new(1, 1, 4);
        table.begin_record();
        assert_eq!(table.series(0, 0, &["a"], |_| None), Series::Undefined);
        assert_eq!(table.count(0), 0);
        table.begin_record();
        assert_eq!(table.series(0, 0, &["a"], |_| Some(7)), Series::New(7, 1));
        // Out-of-range family or class numbers answer without panicking.
        assert_eq!(table.series(5, 0, &["a"], |_| Some(8)), Series::Undefined);
        assert!(matches!(table.series(0, 9, &["a"], |_| Some(9)), Series::Existing(7)));
    }
}
