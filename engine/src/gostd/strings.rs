//! Go `strings.ToLower` / `strings.ToUpper`: every rune through `unicode.ToLower` /
//! `unicode.ToUpper`, the simple (one-rune to one-rune) case mappings of UnicodeData.txt (see
//! [`unicode_case`]), with no context rules such as the final-sigma form and no expansions:
//! `İ` lowers to plain `i`, `ß` and `ﬀ` stay as they are when upper-cased.
//!
//! The mappings are Unicode 14's; Go 1.13 (Mixer) had Unicode 11, so case pairs added in
//! Unicode 12–14 change here but were left alone by Go.

use std::borrow::Cow;

use super::{byte_string, unicode_case};

/// Go's `strings.ToLower`; borrows `s` when no rune changes.
pub fn to_lower(s: &str) -> Cow<'_, str> {
    map_runes(s, lower_rune)
}

/// Go's `strings.ToUpper`; borrows `s` when no rune changes.
pub fn to_upper(s: &str) -> Cow<'_, str> {
    map_runes(s, upper_rune)
}

/// Go's `strings.Map(f, s)` for a case mapping `f`; borrows `s` when no rune changes.
fn map_runes(s: &str, f: fn(char) -> char) -> Cow<'_, str> {
    if byte_string::may_hold_raw_bytes(s) {
        return Cow::Owned(map_bytes(&byte_string::to_bytes(s), f));
    }
    match s.char_indices().find(|&(_, c)| f(c) != c) {
        None => Cow::Borrowed(s),
        Some((first, _)) => {
            let mut out = String::with_capacity(s.len());
            out.push_str(s.get(..first).unwrap_or(""));
            out.extend(s.get(first..).unwrap_or("").chars().map(f));
            Cow::Owned(out)
        }
    }
}

/// `map_runes` of the bytes a string with raw-byte characters stands for: `strings.Map` writes
/// U+FFFD for each byte that is not UTF-8.
fn map_bytes(bytes: &[u8], f: fn(char) -> char) -> String {
    let mut mapped = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        mapped.extend(chunk.valid().chars().map(f));
        chunk.invalid().iter().for_each(|_| mapped.push(char::REPLACEMENT_CHARACTER));
    }
    // A valid character of the raw-byte range stays carried as its bytes.
    byte_string::from_slice(mapped.as_bytes())
}

/// Go's `unicode.ToLower` for one rune.
pub(crate) fn lower_rune(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    unicode_case::to_lower(c)
}

/// Go's `unicode.ToUpper` for one rune.
pub(crate) fn upper_rune(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    unicode_case::to_upper(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_lowercases() {
        assert_eq!(to_lower("HeLLo-World_09"), "hello-world_09");
    }

    #[test]
    fn unchanged_input_is_borrowed() {
        assert!(matches!(to_lower("already lower ü"), Cow::Borrowed(_)));
        assert!(matches!(to_lower(""), Cow::Borrowed(_)));
        assert!(matches!(to_lower("ABC"), Cow::Owned(_)));
    }

    #[test]
    fn unicode_simple_mapping() {
        assert_eq!(to_lower("ÄÖÜ ΣΑΣ"), "äöü σασ", "no final sigma");
        assert_eq!(to_lower("İ"), "i", "simple mapping of U+0130");
        assert_eq!(to_lower("ǅ"), "ǆ");
        assert_eq!(to_lower("ẞ"), "ß");
        assert_eq!(to_lower("ＡＢＣ"), "ａｂｃ");
    }

    #[test]
    fn prefix_is_kept_when_change_is_late() {
        assert_eq!(to_lower("abc€X"), "abc€x");
    }

    #[test]
    fn bytes_that_were_not_utf8_become_replacement_characters() {
        let s = byte_string::from_slice(b"A\xffB\xe2\x82");
        assert_eq!(to_lower(&s), "a\u{fffd}b\u{fffd}\u{fffd}");
        // Pieces joined with `+` are lowered as the bytes they make together, as Go did.
        let euro = byte_string::from_slice(b"\xe2") + &byte_string::from_slice(b"\x82\xac");
        assert_eq!(to_lower(&euro), "€");
    }

    #[test]
    fn upper_is_simple_mapping() {
        assert_eq!(to_upper("hello-World_09"), "HELLO-WORLD_09");
        assert_eq!(to_upper("äöü σας"), "ÄÖÜ ΣΑΣ");
        assert_eq!(to_upper("straße ﬀ"), "STRAßE ﬀ", "no expansion to SS / FF");
        assert_eq!(to_upper("ǆ ǅ ᾳ"), "Ǆ Ǆ ᾼ");
        assert!(matches!(to_upper("ABC ß €"), Cow::Borrowed(_)));
        let s = byte_string::from_slice(b"a\xffb");
        assert_eq!(to_upper(&s), "A\u{fffd}B");
    }

    #[test]
    fn go_rune_mappings() {
        // unicode.ToUpper / unicode.ToLower results of Go.
        let upper = [('ß', 'ß'), ('ſ', 'S'), ('ǅ', 'Ǆ'), ('ǆ', 'Ǆ'), ('ᾳ', 'ᾼ'), ('ﬀ', 'ﬀ'), ('ı', 'I'), ('µ', 'Μ')];
        for (c, u) in upper {
            assert_eq!(upper_rune(c), u, "ToUpper({c:?})");
        }
        let lower = [
            ('İ', 'i'),
            ('\u{212A}', 'k'),
            ('\u{212B}', 'å'),
            ('ǅ', 'ǆ'),
            ('Ǆ', 'ǆ'),
            ('ᾼ', 'ᾳ'),
            ('ẞ', 'ß'),
            ('Ω', 'ω'),
        ];
        for (c, l) in lower {
            assert_eq!(lower_rune(c), l, "ToLower({c:?})");
        }
        // Plane 1: Deseret, Adlam; plane 16 (raw-byte characters) has no case.
        assert_eq!(upper_rune('\u{10428}'), '\u{10400}');
        assert_eq!(lower_rune('\u{1E900}'), '\u{1E922}');
        assert_eq!(upper_rune('\u{10FFAB}'), '\u{10FFAB}');
    }
}
