//! JSON string escaping as Go wrote it: zap's `safeAddString` (Mixer's stdio adapter, and the
//! messages that quote configuration values) and Go `encoding/json` with `SetEscapeHTML(false)`.
//! Low in the crate so that `config` and `telemetry` share it.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a quoted JSON string, escaped exactly as zap's `safeAddString` does:
/// `"` and `\` backslash-escaped; `\n`, `\r`, `\t` as such; every other byte below 0x20 as
/// `\u00xx` (lowercase hex); valid non-ASCII kept as raw UTF-8; each byte of an invalid UTF-8
/// sequence becomes `\ufffd` (Go decodes one byte at a time on error).
pub fn write_json_string(s: &[u8], out: &mut String) {
    out.push('"');
    write_escaped(s, false, out);
    out.push('"');
}

/// The shared escaping loop. `line_separators` adds Go `encoding/json`'s one difference from
/// zap: U+2028 and U+2029 are written as `\u2028` / `\u2029`.
pub(crate) fn write_escaped(s: &[u8], line_separators: bool, out: &mut String) {
    for chunk in s.utf8_chunks() {
        write_escaped_str(chunk.valid(), line_separators, out);
        for _ in chunk.invalid() {
            out.push_str("\\ufffd");
        }
    }
}

fn write_escaped_str(s: &str, line_separators: bool, out: &mut String) {
    // Byte by byte: everything escaped is ASCII, or U+2028 / U+2029 (E2 80 A8 / E2 80 A9), so
    // there is no character to decode; text between escapes is copied in one piece.
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let (short, len) = match b {
            b'"' => ("\\\"", 1),
            b'\\' => ("\\\\", 1),
            b'\n' => ("\\n", 1),
            b'\r' => ("\\r", 1),
            b'\t' => ("\\t", 1),
            // Other control characters take the `\u00xx` form below.
            0..0x20 => ("", 1),
            0xE2 if line_separators => match bytes.get(i + 1..i + 3) {
                Some([0x80, 0xA8]) => ("\\u2028", 3),
                Some([0x80, 0xA9]) => ("\\u2029", 3),
                _ => {
                    i += 1;
                    continue;
                }
            },
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(s.get(start..i).unwrap_or_default());
        if short.is_empty() {
            let b = usize::from(b);
            out.push_str("\\u00");
            out.push(char::from(HEX[(b >> 4) & 0xF]));
            out.push(char::from(HEX[b & 0xF]));
        } else {
            out.push_str(short);
        }
        i += len;
        start = i;
    }
    out.push_str(s.get(start..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(s: &[u8]) -> String {
        let mut out = String::new();
        write_json_string(s, &mut out);
        out
    }

    #[test]
    fn plain_strings() {
        assert_eq!(js(b""), r#""""#);
        assert_eq!(js(b"a string"), r#""a string""#);
        assert_eq!(js(b"<&>'/"), r#""<&>'/""#);
    }

    #[test]
    fn escapes_like_zap() {
        assert_eq!(js(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(js(b"\n\r\t"), r#""\n\r\t""#);
        assert_eq!(js(b"\x00\x01\x08\x0c\x1f"), r#""\u0000\u0001\u0008\u000c\u001f""#);
        assert_eq!(js(b"\x1b[0m"), r#""\u001b[0m""#);
        // DEL is not escaped by zap.
        assert_eq!(js(b"\x7f"), "\"\x7f\"");
    }

    #[test]
    fn non_ascii_kept_and_invalid_replaced_per_byte() {
        assert_eq!(js("héllo µs 日本 \u{2028}".as_bytes()), "\"héllo µs 日本 \u{2028}\"");
        assert_eq!(js(b"a\xffb"), r#""a\ufffdb""#);
        // A truncated 3-byte sequence: Go replaces each byte on its own.
        assert_eq!(js(b"\xe2\x82z"), r#""\ufffd\ufffdz""#);
        // Encoded surrogate and overlong forms are invalid in Go too.
        assert_eq!(js(b"\xed\xa0\x80"), r#""\ufffd\ufffd\ufffd""#);
        assert_eq!(js(b"\xc0\xaf"), r#""\ufffd\ufffd""#);
        // A literal U+FFFD is valid and stays raw.
        assert_eq!(js("\u{fffd}".as_bytes()), "\"\u{fffd}\"");
        assert_eq!(js(b"\xf0\x9f\x98\x80\xf0\x9f"), "\"\u{1f600}\\ufffd\\ufffd\"");
    }
}
