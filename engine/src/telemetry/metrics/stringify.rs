//! Mixer's `adapter.Stringify` (istio/istio 1.5 `mixer/pkg/adapter/instanceUtil.go`): the text a
//! value becomes as a Prometheus label value or any other plain-text dimension.

use std::fmt::Write as _;

use crate::expr::Value;
use crate::gostd::duration::format_duration;
use crate::gostd::strconv::format_float_f;

/// Appends the `adapter.Stringify` text of `v`:
///
/// * STRING, DNS_NAME, EMAIL_ADDRESS, URI: as is;
/// * INT64: decimal; DOUBLE: `FormatFloat(v, 'f', -1, 64)` (`1.5`, `NaN`, `+Inf`);
/// * BOOL: `true` / `false`;
/// * IP_ADDRESS: Go `net.IP.String()`;
/// * TIMESTAMP: UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ` (6 digits, truncated);
/// * DURATION: Go `Duration.String()`;
/// * STRING_MAP: `k1=v1&k2=v2`, no escaping. Keys are sorted (Go ranged over the map, so its
///   order was random; sorting is the only deterministic reading).
pub fn stringify(v: &Value<'_>, out: &mut String) {
    match v {
        Value::String(s) | Value::EmailAddress(s) | Value::Uri(s) | Value::DnsName(s) => out.push_str(s),
        Value::Int64(i) => {
            // Writing into a String cannot fail.
            let _ = write!(out, "{i}");
        }
        Value::Double(d) => format_float_f(*d, out),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Timestamp(t) => t.write_utc_micros(out),
        Value::IpAddress(ip) => ip.write_to(out),
        Value::Duration(nanos) => format_duration(*nanos, out),
        Value::StringMap(m) => {
            for (i, (k, val)) in m.iter().enumerate() {
                if i > 0 {
                    out.push('&');
                }
                out.push_str(k);
                out.push('=');
                out.push_str(val);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::expr::StringMap;
    use crate::gostd::time::Timestamp;

    fn text(v: Value<'_>) -> String {
        let mut out = String::new();
        stringify(&v, &mut out);
        out
    }

    #[test]
    fn strings_are_kept_as_is() {
        assert_eq!(text(Value::String(Cow::Borrowed("a b&c=d\n"))), "a b&c=d\n");
        assert_eq!(text(Value::DnsName(Cow::Borrowed("foo.bar.com"))), "foo.bar.com");
        assert_eq!(text(Value::EmailAddress(Cow::Borrowed("foo@bar.com"))), "foo@bar.com");
        assert_eq!(text(Value::Uri(Cow::Borrowed("http://foo.com"))), "http://foo.com");
        assert_eq!(text(Value::String(Cow::Borrowed(""))), "");
    }

    #[test]
    fn integers_and_bools() {
        assert_eq!(text(Value::Int64(200)), "200");
        assert_eq!(text(Value::Int64(-7)), "-7");
        assert_eq!(text(Value::Int64(i64::MIN)), "-9223372036854775808");
        assert_eq!(text(Value::Bool(true)), "true");
        assert_eq!(text(Value::Bool(false)), "false");
    }

    #[test]
    fn string_map_is_sorted_and_unescaped() {
        let m = StringMap::from_pairs([("c", "d"), ("a", "b=&x")]);
        assert_eq!(text(Value::StringMap(Cow::Owned(m))), "a=b=&x&c=d");
        assert_eq!(text(Value::StringMap(Cow::Owned(StringMap::new()))), "");
    }

    // Depend on gostd (net.IP.String()).
    #[test]
    fn ips_use_go_text() {
        use crate::gostd::net_ip::IpBytes;
        assert_eq!(text(Value::IpAddress(IpBytes::from_v4([10, 0, 0, 1]))), "10.0.0.1");
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[1, 0, 0, 127]);
        assert_eq!(text(Value::IpAddress(IpBytes::from_v6(mapped))), "1.0.0.127");
        let mut v6 = [0u8; 16];
        v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[15] = 1;
        assert_eq!(text(Value::IpAddress(IpBytes::from_v6(v6))), "2001:db8::1");
    }

    // Depend on gostd (FormatFloat, Duration.String, time text).
    #[test]
    fn doubles_use_shortest_f_form() {
        assert_eq!(text(Value::Double(1.5)), "1.5");
        assert_eq!(text(Value::Double(1e21)), "1000000000000000000000");
        assert_eq!(text(Value::Double(0.000001)), "0.000001");
        assert_eq!(text(Value::Double(f64::NAN)), "NaN");
        assert_eq!(text(Value::Double(f64::INFINITY)), "+Inf");
        assert_eq!(text(Value::Double(f64::NEG_INFINITY)), "-Inf");
    }

    #[test]
    fn durations_use_go_text() {
        assert_eq!(text(Value::Duration(1_494_269)), "1.494269ms");
        assert_eq!(text(Value::Duration(0)), "0s");
        assert_eq!(text(Value::Duration(90_000_000_000)), "1m30s");
        assert_eq!(text(Value::Duration(7_200_000_000_000)), "2h0m0s");
    }

    #[test]
    fn timestamps_are_utc_micros() {
        // 2018-09-15T20:46:36.009801999Z written with a +02:00 offset.
        let t = Timestamp { secs: 1_537_044_396, nanos: 9_801_999, offset_secs: 7200 };
        assert_eq!(text(Value::Timestamp(t)), "2018-09-15T20:46:36.009801Z");
        assert_eq!(text(Value::Timestamp(crate::gostd::time::GO_ZERO)), "0001-01-01T00:00:00.000000Z");
    }
}
