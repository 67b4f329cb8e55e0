//! zap's JSON value encoding as Mixer's stdio adapter produced it (uber-go/zap ≥ 1.10
//! `zapcore/json_encoder.go`: `safeAddString`, `tryAddRuneSelf`, `tryAddRuneError`,
//! `appendFloat`; STRING_MAP values went through zap's reflected path, i.e. Go
//! `encoding/json` with `SetEscapeHTML(false)`). The string escaping itself is
//! [`crate::json_escape`].

use std::fmt::Write as _;

use crate::expr::{StringMap, Value};
use crate::gostd::byte_string;
use crate::gostd::duration::format_duration;
use crate::gostd::strconv::format_float_f;
use crate::json_escape::{write_escaped, write_json_string};

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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn jv(v: Value<'_>) -> String {
        let mut out = String::new();
        write_json_value(&v, &mut out);
        out
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
