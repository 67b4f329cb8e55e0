//! Go `time.ParseDuration` and `time.Duration.String()` as of Go 1.13/1.14.
//!
//! Error texts are the pre-Go 1.15 forms, which do not quote the input:
//! `time: invalid duration 1x`, `time: missing unit in duration 1`,
//! `time: unknown unit x in duration 1x` (Go 1.15 added `strconv.Quote`, golang/go#38295).

const NANOSECOND: i64 = 1;
const MICROSECOND: i64 = 1_000;
const MILLISECOND: i64 = 1_000_000;
const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// Parses Go duration text (`"10ms"`, `"1h2m"`, `"-3s"`, `"1.5µs"`, `"0"`) into nanoseconds.
/// Errors carry Go 1.13's text, e.g. `time: invalid duration abc`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {s}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or("")),
        Some(b'+') => (false, s.get(1..).unwrap_or("")),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let (part, next) = parse_part(rest, s)?;
        total = total.checked_add(part).ok_or_else(invalid)?;
        rest = next;
    }
    Ok(if neg { -total } else { total })
}

/// One `[0-9]*(\.[0-9]*)?unit` element; returns its nanoseconds and the remaining text.
fn parse_part<'a>(s: &'a str, orig: &str) -> Result<(i64, &'a str), String> {
    let invalid = || format!("time: invalid duration {orig}");
    if !s.as_bytes().first().is_some_and(|&c| c == b'.' || c.is_ascii_digit()) {
        return Err(invalid());
    }
    let int_len = digit_run(s);
    let whole = leading_int(s.get(..int_len).unwrap_or("")).ok_or_else(invalid)?;
    let mut rest = s.get(int_len..).unwrap_or("");
    let (mut frac, mut scale, mut post) = (0i64, 1f64, false);
    if let Some(after_dot) = rest.strip_prefix('.') {
        let frac_len = digit_run(after_dot);
        (frac, scale) = leading_fraction(after_dot.get(..frac_len).unwrap_or(""));
        post = frac_len > 0;
        rest = after_dot.get(frac_len..).unwrap_or("");
    }
    if int_len == 0 && !post {
        return Err(invalid());
    }
    let unit_len = rest.bytes().take_while(|&c| c != b'.' && !c.is_ascii_digit()).count();
    if unit_len == 0 {
        return Err(format!("time: missing unit in duration {orig}"));
    }
    let unit_text = rest.get(..unit_len).unwrap_or("");
    let unit = unit_nanos(unit_text).ok_or_else(|| format!("time: unknown unit {unit_text} in duration {orig}"))?;
    let mut v = whole.checked_mul(unit).ok_or_else(invalid)?;
    if frac > 0 {
        // Go scales the fraction in float64; the product is at most one hour in nanoseconds.
        let extra = (frac as f64 * (unit as f64 / scale)) as i64;
        v = v.checked_add(extra).ok_or_else(invalid)?;
    }
    Ok((v, rest.get(unit_len..).unwrap_or("")))
}

fn digit_run(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// Go's `leadingInt`: the digits as an int64, `None` on overflow.
fn leading_int(digits: &str) -> Option<i64> {
    digits.bytes().try_fold(0i64, |x, c| x.checked_mul(10)?.checked_add(i64::from(c - b'0')))
}

/// Go's `leadingFraction`: keeps accumulating digits until int64 would overflow, then ignores
/// the rest; returns the value and its power-of-ten scale.
fn leading_fraction(digits: &str) -> (i64, f64) {
    let mut x = 0i64;
    let mut scale = 1f64;
    for c in digits.bytes() {
        match x.checked_mul(10).and_then(|y| y.checked_add(i64::from(c - b'0'))) {
            Some(y) => {
                x = y;
                scale *= 10.0;
            }
            None => break,
        }
    }
    (x, scale)
}

fn unit_nanos(unit: &str) -> Option<i64> {
    Some(match unit {
        "ns" => NANOSECOND,
        "us" | "\u{b5}s" | "\u{3bc}s" => MICROSECOND,
        "ms" => MILLISECOND,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        _ => return None,
    })
}

/// Appends Go's `Duration.String()` form of `nanos` (`1.494269ms`, `0s`, `1m30s`, `2h0m0s`).
pub fn format_duration(nanos: i64, out: &mut String) {
    if nanos == 0 {
        out.push_str("0s");
        return;
    }
    if nanos < 0 {
        out.push('-');
    }
    let u = nanos.unsigned_abs();
    if u < SECOND as u64 {
        format_sub_second(u, out);
    } else {
        format_clock(u, out);
    }
}

/// Below one second: a single unit (ns, µs or ms) with a trimmed fraction.
fn format_sub_second(u: u64, out: &mut String) {
    let (prec, unit) = if u < MICROSECOND as u64 {
        (0, "ns")
    } else if u < MILLISECOND as u64 {
        (3, "\u{b5}s")
    } else {
        (6, "ms")
    };
    push_with_fraction(u, prec, out);
    out.push_str(unit);
}

/// From one second up: `[<h>h][<m>m]<s>[.<frac>]s`.
fn format_clock(u: u64, out: &mut String) {
    let secs = u / SECOND as u64;
    let (hours, minutes, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if hours > 0 {
        out.push_str(&hours.to_string());
        out.push('h');
    }
    if secs >= 60 {
        out.push_str(&minutes.to_string());
        out.push('m');
    }
    push_with_fraction(s * SECOND as u64 + u % SECOND as u64, 9, out);
    out.push('s');
}

/// Writes `v / 10^prec` with the fraction's trailing zeros (and a bare dot) removed.
fn push_with_fraction(v: u64, prec: u32, out: &mut String) {
    let div = 10u64.pow(prec);
    out.push_str(&(v / div).to_string());
    let frac = v % div;
    if frac == 0 {
        return;
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    out.push('.');
    out.push_str(digits.trim_end_matches('0'));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fmt(n: i64) -> String {
        let mut s = String::new();
        format_duration(n, &mut s);
        s
    }

    #[test]
    fn parses_units_and_parts() {
        assert_eq!(parse_duration("10ms").unwrap(), 10 * MILLISECOND);
        assert_eq!(parse_duration("1.5h").unwrap(), 90 * MINUTE);
        assert_eq!(parse_duration("2h45m").unwrap(), 165 * MINUTE);
        assert_eq!(parse_duration("-3s").unwrap(), -3 * SECOND);
        assert_eq!(parse_duration("+5m").unwrap(), 5 * MINUTE);
        assert_eq!(parse_duration("1ns").unwrap(), 1);
        assert_eq!(parse_duration("1us").unwrap(), 1000);
        assert_eq!(parse_duration("1µs").unwrap(), 1000);
        assert_eq!(parse_duration("1μs").unwrap(), 1000);
        assert_eq!(parse_duration(".5s").unwrap(), 500 * MILLISECOND);
        assert_eq!(parse_duration("1.s").unwrap(), SECOND);
        assert_eq!(parse_duration("1h2m3s4ms5us6ns").unwrap(), HOUR + 2 * MINUTE + 3 * SECOND + 4_005_006);
        assert_eq!(parse_duration("0.3333333333333333333h").unwrap(), 1_200_000_000_000);
        assert_eq!(parse_duration("9223372036854775807ns").unwrap(), i64::MAX);
    }

    #[test]
    fn bare_zero_forms_are_durations() {
        for z in ["0", "+0", "-0", "0s", "0.0s"] {
            assert_eq!(parse_duration(z).unwrap(), 0, "{z}");
        }
    }

    #[test]
    fn errors_use_go_1_13_texts() {
        assert_eq!(parse_duration("1").unwrap_err(), "time: missing unit in duration 1");
        assert_eq!(parse_duration("0.0").unwrap_err(), "time: missing unit in duration 0.0");
        assert_eq!(parse_duration("1x").unwrap_err(), "time: unknown unit x in duration 1x");
        assert_eq!(parse_duration("1h1d").unwrap_err(), "time: unknown unit d in duration 1h1d");
        assert_eq!(parse_duration("").unwrap_err(), "time: invalid duration ");
        assert_eq!(parse_duration("-").unwrap_err(), "time: invalid duration -");
        assert_eq!(parse_duration("s").unwrap_err(), "time: invalid duration s");
        assert_eq!(parse_duration(".s").unwrap_err(), "time: invalid duration .s");
        assert_eq!(parse_duration("abc").unwrap_err(), "time: invalid duration abc");
        assert_eq!(parse_duration("1s ").unwrap_err(), "time: unknown unit s  in duration 1s ");
    }

    #[test]
    fn overflow_is_invalid() {
        assert_eq!(
            parse_duration("9223372036854775808ns").unwrap_err(),
            "time: invalid duration 9223372036854775808ns"
        );
        assert_eq!(parse_duration("3000000h").unwrap_err(), "time: invalid duration 3000000h");
        assert_eq!(
            parse_duration("9223372036854775807ns1ns").unwrap_err(),
            "time: invalid duration 9223372036854775807ns1ns"
        );
        // Go 1.13 cannot parse i64::MIN: the magnitude overflows before the sign is applied.
        assert!(parse_duration("-9223372036854775808ns").is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(fmt(0), "0s");
        assert_eq!(fmt(1), "1ns");
        assert_eq!(fmt(999), "999ns");
        assert_eq!(fmt(1000), "1µs");
        assert_eq!(fmt(1500), "1.5µs");
        assert_eq!(fmt(1_494_269), "1.494269ms");
        assert_eq!(fmt(13_601_485), "13.601485ms");
        assert_eq!(fmt(919_482_857), "919.482857ms");
        assert_eq!(fmt(999_999_999), "999.999999ms");
        assert_eq!(fmt(SECOND), "1s");
        assert_eq!(fmt(1_500_000_000), "1.5s");
        assert_eq!(fmt(MINUTE), "1m0s");
        assert_eq!(fmt(90 * SECOND), "1m30s");
        assert_eq!(fmt(2 * HOUR), "2h0m0s");
        assert_eq!(fmt(HOUR + 500 * MILLISECOND), "1h0m0.5s");
        assert_eq!(fmt(HOUR + 1), "1h0m0.000000001s");
        assert_eq!(fmt(-1500), "-1.5µs");
        assert_eq!(fmt(-90 * SECOND), "-1m30s");
        assert_eq!(fmt(i64::MAX), "2562047h47m16.854775807s");
        assert_eq!(fmt(i64::MIN), "-2562047h47m16.854775808s");
    }

    #[test]
    fn micro_sign_is_u00b5() {
        assert_eq!(fmt(1000).as_bytes(), b"1\xc2\xb5s");
    }

    #[test]
    fn round_trips() {
        for n in [1, 999, 1000, 1_494_269, SECOND, 90 * SECOND, 2 * HOUR, HOUR + 1, -42] {
            assert_eq!(parse_duration(&fmt(n)).unwrap(), n, "{n}");
        }
    }
}
