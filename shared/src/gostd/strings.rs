//! Go `strings.ToLower`: every rune through `unicode.ToLower` (the simple, one-rune case
//! mapping), with no context rules such as the final-sigma form.
//!
//! Rust's `char::to_lowercase` yields the full mapping; it differs from the simple one only for
//! U+0130 (İ), whose simple lowercase is plain `i`. Case pairs added to Unicode after Go 1.13's
//! Unicode 11 tables are lowercased here but were left alone by Go.

use std::borrow::Cow;

use super::byte_string;

/// Go's `strings.ToLower`; borrows `s` when no rune changes.
pub fn to_lower(s: &str) -> Cow<'_, str> {
    if byte_string::may_hold_raw_bytes(s) {
        return Cow::Owned(to_lower_bytes(&byte_string::to_bytes(s)));
    }
    match s.char_indices().find(|&(_, c)| lower_rune(c) != c) {
        None => Cow::Borrowed(s),
        Some((first, _)) => {
            let mut out = String::with_capacity(s.len());
            out.push_str(s.get(..first).unwrap_or(""));
            out.extend(s.get(first..).unwrap_or("").chars().map(lower_rune));
            Cow::Owned(out)
        }
    }
}

/// `to_lower` of the bytes a string with raw-byte characters stands for: `strings.Map` writes
/// U+FFFD for each byte that is not UTF-8.
fn to_lower_bytes(bytes: &[u8]) -> String {
    let mut lowered = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        lowered.extend(chunk.valid().chars().map(lower_rune));
        chunk.invalid().iter().for_each(|_| lowered.push(char::REPLACEMENT_CHARACTER));
    }
    // A valid character of the raw-byte range stays carried as its bytes.
    byte_string::from_slice(lowered.as_bytes())
}

/// Go's `unicode.ToLower` for one rune.
pub(crate) fn lower_rune(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if c == '\u{130}' {
        return 'i';
    }
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
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
}
