//! Character classes written in the `regex` crate's syntax. Every Go class (a bracket
//! expression, `\d`, `\pL`, ...) becomes a union of items here, so that Go's ASCII-only Perl
//! and POSIX classes are spelt out as ranges and nothing the two dialects read differently
//! (`[`, `&&`, `--`, `~~` inside brackets) ever reaches the `regex` crate unescaped.

use std::fmt::Write;

use super::go_names::{CATEGORIES, SCRIPTS};
use super::names::{Ranges, UnicodeClass};

/// The sets of Go's Unicode classes, in the order of `CATEGORIES` and `SCRIPTS`, as engine/build.rs
/// wrote them from `regex-syntax`'s tables: per set, each range as the LEB128 gap from the end of
/// the previous one and its length less one.
mod sets {
    include!(concat!(env!("OUT_DIR"), "/unicode_sets.rs"));
}
use sets::{CATEGORY_SETS, SCRIPT_SETS};

/// The ranges of class `name`, one of `names` (a name that is not there has none).
fn unicode_set(names: &[&str], sets: &[&'static [u8]], name: &str) -> impl Iterator<Item = (u32, u32)> {
    let bytes = names.iter().position(|n| *n == name).and_then(|i| sets.get(i).copied()).unwrap_or_default();
    let mut bytes = bytes.iter();
    let mut next: u32 = 0;
    std::iter::from_fn(move || {
        let lo = next.checked_add(leb128(&mut bytes)?)?;
        let hi = lo.checked_add(leb128(&mut bytes)?)?;
        next = hi.checked_add(1)?;
        Some((lo, hi))
    })
}

/// One LEB128 number (`None` at the end of the bytes, or for one that overflows).
fn leb128(bytes: &mut std::slice::Iter<'_, u8>) -> Option<u32> {
    let mut n: u32 = 0;
    for shift in (0..32).step_by(7) {
        let b = *bytes.next()?;
        n |= u32::from(b & 0x7f).checked_shl(shift)?;
        if b < 0x80 {
            return Some(n);
        }
    }
    None
}

const MAX_RUNE: u32 = 0x10_FFFF;
const SURROGATES: std::ops::RangeInclusive<u32> = 0xD800..=0xDFFF;

/// Writes code point `c` as a literal: ASCII letters and digits as they are (they mean the same
/// in both dialects), everything else as `\x{..}`, which both dialects read as that code point
/// inside and outside brackets.
pub fn push_literal(out: &mut String, c: u32) {
    match char::from_u32(c) {
        Some(ch) if ch.is_ascii_alphanumeric() => out.push(ch),
        _ => {
            let _ = write!(out, "\\x{{{c:X}}}");
        }
    }
}

/// A class that matches nothing, and one that matches any code point.
pub const NOTHING: &str = r"[^\x{0}-\x{10FFFF}]";
pub const ANYTHING: &str = r"[\x{0}-\x{10FFFF}]";

/// The items of one bracket expression, unioned.
#[derive(Default)]
pub struct ClassBody {
    items: String,
}

impl ClassBody {
    /// Adds `lo-hi`. Surrogates are dropped from the ends: Go accepts `\x{D800}` but no Go
    /// string decodes to a surrogate, and the `regex` crate has no surrogate code points.
    pub fn range(&mut self, lo: u32, hi: u32) {
        let lo = if SURROGATES.contains(&lo) { 0xE000 } else { lo };
        let hi = if SURROGATES.contains(&hi) { 0xD7FF } else { hi.min(MAX_RUNE) };
        if lo > hi {
            return;
        }
        push_literal(&mut self.items, lo);
        if hi != lo {
            self.items.push('-');
            push_literal(&mut self.items, hi);
        }
    }

    /// Adds an ASCII set from `names` (`\d`, `[:alpha:]`), or its complement as a nested class.
    pub fn ascii_group(&mut self, ranges: Ranges, negated: bool) {
        self.set(ranges.iter().copied(), negated);
    }

    /// Adds a Unicode class (`\p{Greek}`) or its complement (`\P{Greek}`, `\p{^Greek}`), spelt
    /// out as ranges (what the `regex` crate's `\p{sc=Greek}` holds: see `unicode_set`).
    pub fn unicode(&mut self, class: UnicodeClass, negated: bool) {
        match (class, negated) {
            (UnicodeClass::Any, false) | (UnicodeClass::Surrogates, true) => self.range(0, MAX_RUNE),
            (UnicodeClass::Any, true) | (UnicodeClass::Surrogates, false) => {}
            // Go's `C` is Cc, Cf and Co (and Cs); their ranges in order make one set.
            (UnicodeClass::Other, _) => {
                let mut parts: Vec<(u32, u32)> =
                    ["Cc", "Cf", "Co"].into_iter().flat_map(|c| unicode_set(CATEGORIES, &CATEGORY_SETS, c)).collect();
                parts.sort_unstable();
                self.set(parts.into_iter(), negated);
            }
            (UnicodeClass::Category(name), _) => self.set(unicode_set(CATEGORIES, &CATEGORY_SETS, name), negated),
            (UnicodeClass::Script(name), _) => self.set(unicode_set(SCRIPTS, &SCRIPT_SETS, name), negated),
        }
    }

    /// Adds `ranges`, or their complement as a nested class. Under `(?i)` the crate folds the
    /// nested class before it complements it, as it does `\P{..}`: the same set either way.
    fn set(&mut self, ranges: impl Iterator<Item = (u32, u32)>, negated: bool) {
        if !negated {
            ranges.for_each(|(lo, hi)| self.range(lo, hi));
            return;
        }
        let mut inner = ClassBody::default();
        ranges.for_each(|(lo, hi)| inner.range(lo, hi));
        match inner.items.is_empty() {
            true => self.range(0, MAX_RUNE),
            false => {
                let _ = write!(self.items, "[^{}]", inner.items);
            }
        }
    }

    /// Writes the whole class. The `regex` crate has no empty brackets, so a class without
    /// items is written as one that matches nothing (or, negated, anything).
    pub fn finish(self, out: &mut String, negated: bool) {
        match (self.items.is_empty(), negated) {
            (true, false) => out.push_str(NOTHING),
            (true, true) => out.push_str(ANYTHING),
            (false, _) => {
                out.push('[');
                if negated {
                    out.push('^');
                }
                out.push_str(&self.items);
                out.push(']');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every class build.rs wrote decodes to ranges as `regex-syntax` keeps them: not empty,
    /// in order, neither overlapping nor touching, within Unicode and without surrogates.
    #[test]
    fn every_unicode_set_decodes_canonically() {
        for (names, sets) in [(CATEGORIES, &CATEGORY_SETS[..]), (SCRIPTS, &SCRIPT_SETS[..])] {
            assert_eq!(names.len(), sets.len());
            for name in names {
                let ranges: Vec<_> = unicode_set(names, sets, name).collect();
                assert!(!ranges.is_empty(), "{name}");
                let mut next = 0;
                for &(lo, hi) in &ranges {
                    assert!(lo >= next && lo <= hi && hi <= MAX_RUNE, "{name}: {ranges:X?}");
                    assert!(hi < *SURROGATES.start() || lo > *SURROGATES.end(), "{name}: {lo:X}-{hi:X}");
                    next = hi + 2;
                }
            }
        }
        assert_eq!(unicode_set(SCRIPTS, &SCRIPT_SETS, "Klingon").count(), 0);
        let greek: Vec<_> = unicode_set(SCRIPTS, &SCRIPT_SETS, "Greek").collect();
        assert!(greek.iter().any(|&(lo, hi)| (lo..=hi).contains(&u32::from('α'))));
        let zl: Vec<_> = unicode_set(CATEGORIES, &CATEGORY_SETS, "Zl").collect();
        assert_eq!(zl, [(0x2028, 0x2028)]);
    }
}
