//! Character classes written in the `regex` crate's syntax. Every Go class (a bracket
//! expression, `\d`, `\pL`, ...) becomes a union of items here, so that Go's ASCII-only Perl
//! and POSIX classes are spelt out as ranges and nothing the two dialects read differently
//! (`[`, `&&`, `--`, `~~` inside brackets) ever reaches the `regex` crate unescaped.

use std::fmt::Write;

use super::names::{Ranges, UnicodeClass};

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
        if !negated {
            ranges.iter().for_each(|&(lo, hi)| self.range(lo, hi));
            return;
        }
        let mut inner = ClassBody::default();
        ranges.iter().for_each(|&(lo, hi)| inner.range(lo, hi));
        let _ = write!(self.items, "[^{}]", inner.items);
    }

    /// Adds a Unicode class (`\p{Greek}`) or its complement (`\P{Greek}`, `\p{^Greek}`).
    pub fn unicode(&mut self, class: UnicodeClass, negated: bool) {
        match (class, negated) {
            (UnicodeClass::Any, false) | (UnicodeClass::Surrogates, true) => self.range(0, MAX_RUNE),
            (UnicodeClass::Any, true) | (UnicodeClass::Surrogates, false) => {}
            (UnicodeClass::Other, false) => self.items.push_str(r"\p{gc=Cc}\p{gc=Cf}\p{gc=Co}"),
            (UnicodeClass::Other, true) => self.items.push_str(r"[^\p{gc=Cc}\p{gc=Cf}\p{gc=Co}]"),
            (UnicodeClass::Category(name), _) => {
                let _ = write!(self.items, "\\{}{{gc={name}}}", if negated { 'P' } else { 'p' });
            }
            (UnicodeClass::Script(name), _) => {
                let _ = write!(self.items, "\\{}{{sc={name}}}", if negated { 'P' } else { 'p' });
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
