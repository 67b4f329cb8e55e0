//! The names Go's `regexp/syntax` knows: Perl classes, POSIX classes and Unicode classes.
//!
//! Perl and POSIX classes are ASCII sets, copied from Go's `src/regexp/syntax/perl_groups.go`.
//! Unicode class names are those of Go 1.13 (Istio 1.4's Mixer): `Any`, the keys of
//! `unicode.Categories` and of `unicode.Scripts` in Go's `src/unicode/tables.go` for Unicode
//! 11.0.0, matched case-sensitively and exactly (Go 1.13's `unicodeTable`; loose matching and
//! aliases such as `Letter` came in later Go releases). The sets themselves are the `regex`
//! crate's, from a newer Unicode: characters assigned since Unicode 11 are in their classes.

/// An ASCII set as inclusive ranges.
pub type Ranges = &'static [(u32, u32)];

/// `\d \s \w` and their negations `\D \S \W` (`perl_groups.go`: `\s` has no `\v`).
pub fn perl_group(c: char) -> Option<(Ranges, bool)> {
    const DIGIT: Ranges = &[(0x30, 0x39)];
    const SPACE: Ranges = &[(0x09, 0x0a), (0x0c, 0x0d), (0x20, 0x20)];
    const WORD: Ranges = &[(0x30, 0x39), (0x41, 0x5a), (0x5f, 0x5f), (0x61, 0x7a)];
    Some(match c {
        'd' => (DIGIT, false),
        'D' => (DIGIT, true),
        's' => (SPACE, false),
        'S' => (SPACE, true),
        'w' => (WORD, false),
        'W' => (WORD, true),
        _ => return None,
    })
}

/// `[:alpha:]` etc. (the brackets and colons included) and `[:^alpha:]`.
pub fn posix_group(name: &str) -> Option<(Ranges, bool)> {
    let (negated, bare) = match name.strip_prefix("[:^") {
        Some(rest) => (true, rest),
        None => (false, name.strip_prefix("[:")?),
    };
    let ranges: Ranges = match bare.strip_suffix(":]")? {
        "alnum" => &[(0x30, 0x39), (0x41, 0x5a), (0x61, 0x7a)],
        "alpha" => &[(0x41, 0x5a), (0x61, 0x7a)],
        "ascii" => &[(0x00, 0x7f)],
        "blank" => &[(0x09, 0x09), (0x20, 0x20)],
        "cntrl" => &[(0x00, 0x1f), (0x7f, 0x7f)],
        "digit" => &[(0x30, 0x39)],
        "graph" => &[(0x21, 0x7e)],
        "lower" => &[(0x61, 0x7a)],
        "print" => &[(0x20, 0x7e)],
        "punct" => &[(0x21, 0x2f), (0x3a, 0x40), (0x5b, 0x60), (0x7b, 0x7e)],
        "space" => &[(0x09, 0x0d), (0x20, 0x20)],
        "upper" => &[(0x41, 0x5a)],
        "word" => &[(0x30, 0x39), (0x41, 0x5a), (0x5f, 0x5f), (0x61, 0x7a)],
        "xdigit" => &[(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
        _ => return None,
    };
    Some((ranges, negated))
}

/// What a `\p{name}` stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnicodeClass {
    /// `Any`: every code point.
    Any,
    /// `Cs` (surrogates): Go decodes no surrogate from a string, so it never matches.
    Surrogates,
    /// `C`: Go's table is Cc, Cf, Co and Cs, without the unassigned code points (Cn)
    /// that the `regex` crate's `\p{C}` includes.
    Other,
    /// Another general category, by its Go (and Unicode short) name.
    Category(&'static str),
    /// A script, by its Go (and Unicode long) name.
    Script(&'static str),
}

use super::go_names::{CATEGORIES, SCRIPTS};

/// Looks a `\p` name up as Go 1.13's `unicodeTable` did: `Any`, then categories, then scripts.
pub fn unicode_class(name: &str) -> Option<UnicodeClass> {
    match name {
        "Any" => return Some(UnicodeClass::Any),
        "Cs" => return Some(UnicodeClass::Surrogates),
        "C" => return Some(UnicodeClass::Other),
        _ => {}
    }
    if let Some(c) = CATEGORIES.iter().find(|c| **c == name) {
        return Some(UnicodeClass::Category(c));
    }
    SCRIPTS.iter().find(|s| **s == name).map(|s| UnicodeClass::Script(s))
}

#[cfg(test)]
pub(super) fn all_unicode_names() -> impl Iterator<Item = &'static str> {
    ["Any", "C", "Cs"].into_iter().chain(CATEGORIES.iter().copied()).chain(SCRIPTS.iter().copied())
}
