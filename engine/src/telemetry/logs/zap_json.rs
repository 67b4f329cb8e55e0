//! zap's JSON value encoding as Mixer's stdio adapter produced it (uber-go/zap ≥ 1.10
//! `zapcore/json_encoder.go`: `safeAddString`, `tryAddRuneSelf`, `tryAddRuneError`,
//! `appendFloat`; STRING_MAP values went through zap's reflected path, i.e. Go
//! `encoding/json` with `SetEscapeHTML(false)`).

use std::fmt::Write as _;

use crate::expr::{StringMap, Value};
use crate::gostd::byte_string;
use crate::gostd::duration::format_duration;
use crate::gostd::strconv::format_float_f;

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

/// Appends `v` as a zap JSON value:
///
/// * STRING, DNS_NAME, EMAIL_ADDRESS, URI: JSON string ([`write_json_string`]) of the bytes the
///   text stands for, so a raw-byte character ([`byte_string`]) is written as zap wrote the
///   original byte (`\ufffd` unless it completes valid UTF-8 with its neighbours);
/// * INT64: number; BOOL: `true` / `false`;
/// * DOUBLE: shortest `'f'` number (never an exponent); NaN and the infinities as the strings
///   `"NaN"`, `"+Inf"`, `"-Inf"`;
/// * DURATION: Go `Duration.String()` as a string; TIMESTAMP: 6-digit UTC text as a string;
/// * IP_ADDRESS: Go `net.IP.String()` as a string;
/// * STRING_MAP: compact object with sorted keys, escaped as Go `encoding/json` does (which also
///   writes `\ufffd` per invalid byte).
pub fn write_json_value(v: &Value<'_>, out: &mut String) {
    match v {
        Value::String(s) | Value::EmailAddress(s) | Value::Uri(s) | Value::DnsName(s) => {
            write_json_string(&byte_string::to_bytes(s), out)
        }
        Value::Int64(i) => {
            // Writing into a String cannot fail.
            let _ = write!(out, "{i}");
        }
        Value::Double(d) => write_json_float(*d, out),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // Duration, time and IP text never needs escaping (`µ` is valid UTF-8, kept raw).
        Value::Duration(nanos) => {
            out.push('"');
            format_duration(*nanos, out);
            out.push('"');
        }
        Value::Timestamp(t) => {
            out.push('"');
            t.write_utc_micros(out);
            out.push('"');
        }
        Value::IpAddress(ip) => {
            out.push('"');
            ip.write_to(out);
            out.push('"');
        }
        Value::StringMap(m) => write_go_json_map(m, out),
    }
}

/// zap's `appendFloat`: non-finite values as strings, finite ones via `FormatFloat('f', -1)`.
fn write_json_float(d: f64, out: &mut String) {
    if d.is_nan() {
        out.push_str("\"NaN\"");
    } else if d == f64::INFINITY {
        out.push_str("\"+Inf\"");
    } else if d == f64::NEG_INFINITY {
        out.push_str("\"-Inf\"");
    } else {
        format_float_f(d, out);
    }
}

/// Go `encoding/json` output for a `map[string]string`: keys sorted, compact.
fn write_go_json_map(m: &StringMap, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        write_escaped(&byte_string::to_bytes(k), true, out);
        out.push_str("\":\"");
        write_escaped(&byte_string::to_bytes(v), true, out);
        out.push('"');
    }
    out.push('}');
}

/// The shared escaping loop. `line_separators` adds Go `encoding/json`'s one difference from
/// zap: U+2028 and U+2029 are written as `\u2028` / `\u2029`.
fn write_escaped(s: &[u8], line_separators: bool, out: &mut String) {
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
    use std::borrow::Cow;

    use super::*;

    fn js(s: &[u8]) -> String {
        let mut out = String::new();
        write_json_string(s, &mut out);
        out
    }

    fn jv(v: Value<'_>) -> String {
        let mut out = String::new();
        write_json_value(&v, &mut out);
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

    #[test]
    fn raw_byte_characters_are_written_as_zap_wrote_their_bytes() {
        use crate::gostd::byte_string::from_slice;
        assert_eq!(jv(Value::String(Cow::Owned(from_slice(b"a\xffb")))), r#""a\ufffdb""#);
        assert_eq!(jv(Value::Uri(Cow::Owned(from_slice(b"\xe2\x82z")))), r#""\ufffd\ufffdz""#);
        let m = StringMap::from_pairs([(from_slice(b"k\xff"), from_slice(b"\xe2\x82z"))]);
        assert_eq!(jv(Value::StringMap(Cow::Owned(m))), r#"{"k\ufffd":"\ufffd\ufffdz"}"#);
    }

    #[test]
    fn scalars() {
        assert_eq!(jv(Value::Int64(200)), "200");
        assert_eq!(jv(Value::Int64(-1)), "-1");
        assert_eq!(jv(Value::Bool(true)), "true");
        assert_eq!(jv(Value::Bool(false)), "false");
        assert_eq!(jv(Value::String(Cow::Borrowed("x\"y"))), r#""x\"y""#);
        assert_eq!(jv(Value::DnsName(Cow::Borrowed("foo.bar.com"))), r#""foo.bar.com""#);
    }

    #[test]
    fn non_finite_doubles_are_strings() {
        assert_eq!(jv(Value::Double(f64::NAN)), r#""NaN""#);
        assert_eq!(jv(Value::Double(f64::INFINITY)), r#""+Inf""#);
        assert_eq!(jv(Value::Double(f64::NEG_INFINITY)), r#""-Inf""#);
    }

    #[test]
    fn maps_are_sorted_compact_go_json() {
        let m = StringMap::from_pairs([("C", "D"), ("A", "B")]);
        assert_eq!(jv(Value::StringMap(Cow::Owned(m))), r#"{"A":"B","C":"D"}"#);
        assert_eq!(jv(Value::StringMap(Cow::Owned(StringMap::new()))), "{}");
        let m = StringMap::from_pairs([("k\"\n", "<a&b>\u{2028}\u{2029}\x01\u{e9}")]);
        assert_eq!(jv(Value::StringMap(Cow::Owned(m))), "{\"k\\\"\\n\":\"<a&b>\\u2028\\u2029\\u0001\u{e9}\"}");
        // Other characters that start with E2 (U+2027, €, U+202A) are text, like any other.
        let m = StringMap::from_pairs([("k", "\u{2027}€\u{202a}\u{2028}x\u{e2}")]);
        assert_eq!(jv(Value::StringMap(Cow::Owned(m))), "{\"k\":\"\u{2027}€\u{202a}\\u2028x\u{e2}\"}");
    }

    // Depends on gostd (net.IP.String()).
    #[test]
    fn ips_are_text_strings() {
        use crate::gostd::net_ip::IpBytes;
        let ip = IpBytes::from_v4([1, 0, 0, 127]);
        assert_eq!(jv(Value::IpAddress(ip)), r#""1.0.0.127""#);
        let mut v6 = [0u8; 16];
        v6[0] = 0xfe;
        v6[1] = 0x80;
        v6[15] = 2;
        assert_eq!(jv(Value::IpAddress(IpBytes::from_v6(v6))), r#""fe80::2""#);
    }

    // Depend on gostd (FormatFloat, Duration.String, time text).
    #[test]
    fn doubles_durations_and_times() {
        assert_eq!(jv(Value::Double(1.23)), "1.23");
        assert_eq!(jv(Value::Double(1e21)), "1000000000000000000000");
        assert_eq!(jv(Value::Double(-0.5)), "-0.5");
        assert_eq!(jv(Value::Duration(1_000_000_000)), r#""1s""#);
        assert_eq!(jv(Value::Duration(13_601_485)), r#""13.601485ms""#);
        assert_eq!(jv(Value::Duration(1_500)), "\"1.5\u{b5}s\"");
        let t = crate::gostd::time::Timestamp { secs: 1_503_309_840, nanos: 0, offset_secs: 0 };
        assert_eq!(jv(Value::Timestamp(t)), r#""2017-08-21T10:04:00.000000Z""#);
    }
}
