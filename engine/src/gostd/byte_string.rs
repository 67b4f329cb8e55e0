//! Go strings are byte strings; ours are UTF-8. Header values and properties may hold bytes
//! that are not UTF-8, and Mixer saw (and logged) those bytes. To carry them through a Rust
//! `String` without loss, each byte that is not part of valid UTF-8 becomes one *raw-byte
//! character* `U+10FF00 + byte` (bytes 0x80..=0xFF, so U+10FF80..=U+10FFFF, at the end of
//! Supplementary Private Use Area-B). A valid character of that range in the input is itself
//! carried as four raw-byte characters, so [`to_bytes`] always gives the exact input back.
//!
//! Decoding happens at the host boundary ([`from_bytes`]); text that leaves the filter maps
//! raw-byte characters back: the zap encoder writes the original bytes' escapes, header writes
//! send the original bytes, stat names write U+FFFD. See `envoy-config/ATTRIBUTES.md`.

use std::borrow::Cow;

const RAW_BYTE_BASE: u32 = 0x10_FF00;
/// Every raw-byte character's UTF-8 encoding starts with this byte (as does any character of
/// U+100000..=U+10FFFF), so its absence proves a string holds none.
const PLANE_16_LEAD: u8 = 0xF4;

/// The text of `bytes`, each byte outside valid UTF-8 carried as a raw-byte character.
pub fn from_bytes(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) if !s.as_bytes().contains(&PLANE_16_LEAD) => s,
        Ok(s) => from_bytes_slow(s.as_bytes()),
        Err(e) => from_bytes_slow(e.as_bytes()),
    }
}

/// [`from_bytes`] for borrowed bytes.
pub fn from_slice(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !bytes.contains(&PLANE_16_LEAD) => s.to_string(),
        _ => from_bytes_slow(bytes),
    }
}

/// Appends the text of `bytes` ([`from_bytes`]) to `out`.
pub fn push_bytes(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) if !bytes.contains(&PLANE_16_LEAD) => out.push_str(s),
        _ => push_slow(out, bytes),
    }
}

fn from_bytes_slow(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_slow(&mut out, bytes);
    out
}

fn push_slow(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if raw_byte(c).is_some() {
                let mut utf8 = [0u8; 4];
                c.encode_utf8(&mut utf8).bytes().for_each(|b| out.push(raw_byte_char(b)));
            } else {
                out.push(c);
            }
        }
        chunk.invalid().iter().for_each(|&b| out.push(raw_byte_char(b)));
    }
}

/// The raw-byte character of byte `b` (only bytes ≥ 0x80 are ever carried this way).
fn raw_byte_char(b: u8) -> char {
    char::from_u32(RAW_BYTE_BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The byte `c` carries, if it is a raw-byte character.
pub fn raw_byte(c: char) -> Option<u8> {
    u32::from(c).checked_sub(RAW_BYTE_BASE).and_then(|b| u8::try_from(b).ok()).filter(|b| *b >= 0x80)
}

/// Whether `s` may hold raw-byte characters (false proves it holds none).
pub fn may_hold_raw_bytes(s: &str) -> bool {
    s.as_bytes().contains(&PLANE_16_LEAD)
}

/// The bytes `s` stands for: raw-byte characters as their byte, the rest as UTF-8.
pub fn to_bytes(s: &str) -> Cow<'_, [u8]> {
    if !may_hold_raw_bytes(s) {
        return Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut utf8 = [0u8; 4];
    for c in s.chars() {
        match raw_byte(c) {
            Some(b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
        }
    }
    Cow::Owned(out)
}

/// Go's `len(s)`: the number of bytes `s` stands for.
pub fn byte_len(s: &str) -> usize {
    if !may_hold_raw_bytes(s) {
        return s.len();
    }
    // A raw-byte character takes four bytes here and stands for one.
    s.len() - 3 * s.chars().filter(|c| raw_byte(*c).is_some()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(bytes: &[u8]) -> String {
        let s = from_slice(bytes);
        assert_eq!(from_bytes(bytes.to_vec()), s);
        let mut appended = String::from("<");
        push_bytes(&mut appended, bytes);
        assert_eq!(appended, format!("<{s}"));
        assert_eq!(to_bytes(&s).as_ref(), bytes, "{bytes:x?}");
        assert_eq!(byte_len(&s), bytes.len(), "{bytes:x?}");
        s
    }

    #[test]
    fn valid_text_is_kept_without_copying_into_raw_bytes() {
        assert_eq!(round_trip(b"curl/8"), "curl/8");
        assert_eq!(
            round_trip("héllo 日本 \u{1f600} \u{fffd} \u{10ff7f}".as_bytes()),
            "héllo 日本 \u{1f600} \u{fffd} \u{10ff7f}"
        );
        assert!(matches!(to_bytes("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn each_invalid_byte_becomes_one_raw_byte_character() {
        assert_eq!(round_trip(b"a\xffb"), "a\u{10ffff}b");
        assert_eq!(round_trip(b"\xe2\x82z"), "\u{10ffe2}\u{10ff82}z");
        assert_eq!(round_trip(b"\xed\xa0\x80"), "\u{10ffed}\u{10ffa0}\u{10ff80}");
        assert_eq!(round_trip(b"\xf0\x9f\x98\x80\xf0\x9f"), "\u{1f600}\u{10fff0}\u{10ff9f}");
    }

    #[test]
    fn a_valid_raw_byte_character_in_the_input_is_carried_as_its_bytes() {
        let s = round_trip("x\u{10ff80}".as_bytes());
        assert_eq!(s.chars().count(), 5);
        assert_eq!(raw_byte('\u{10ff7f}'), None);
        assert_eq!(raw_byte('\u{10ff80}'), Some(0x80));
        assert_eq!(raw_byte('a'), None);
    }
}
