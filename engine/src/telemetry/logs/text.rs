//! Allocation-free fast paths for the hot text of a stdio line: the 6-digit UTC time, Go's
//! `Duration.String()` and decimal integers. Each writes exactly what the reference encoders
//! (`gostd::time`, `gostd::duration`, `zap_json`) write; the tests hold them to it.

use crate::expr::Value;
use crate::gostd::time::Timestamp;

use super::zap_json::write_json_value;

/// Appends `t` in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds truncated), as
/// [`Timestamp::write_utc_micros`] does.
pub fn write_utc_micros(t: &Timestamp, out: &mut String) {
    let days = t.secs.div_euclid(86_400);
    let sod = t.secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        // Years outside four digits: the reference handles the sign and padding.
        t.write_utc_micros(out);
        return;
    }
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut b, 0, year as u64, 4);
    put_digits(&mut b, 5, u64::from(month), 2);
    put_digits(&mut b, 8, u64::from(day), 2);
    put_digits(&mut b, 11, (sod / 3_600) as u64, 2);
    put_digits(&mut b, 14, (sod / 60 % 60) as u64, 2);
    put_digits(&mut b, 17, (sod % 60) as u64, 2);
    put_digits(&mut b, 20, u64::from(t.nanos / 1_000), 6);
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// Writes `v` as `width` zero-padded digits at `at`.
fn put_digits(b: &mut [u8], at: usize, mut v: u64, width: usize) {
    for i in (0..width).rev() {
        if let Some(slot) = b.get_mut(at + i) {
            *slot = b'0' + (v % 10) as u8;
        }
        v /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Right-to-left byte buffer, as Go's `Duration.format` fills its `[32]byte`.
struct Back {
    buf: [u8; 32],
    w: usize,
}

impl Back {
    fn put(&mut self, b: u8) {
        if self.w > 0 {
            self.w -= 1;
            if let Some(slot) = self.buf.get_mut(self.w) {
                *slot = b;
            }
        }
    }

    fn put_str(&mut self, s: &str) {
        for b in s.bytes().rev() {
            self.put(b);
        }
    }

    /// Go's `fmtFrac`: `prec` digits of `v`, trailing zeros (and then the dot) omitted.
    fn frac(&mut self, mut v: u64, prec: u32) -> u64 {
        let mut print = false;
        for _ in 0..prec {
            let digit = (v % 10) as u8;
            print = print || digit != 0;
            if print {
                self.put(b'0' + digit);
            }
            v /= 10;
        }
        if print {
            self.put(b'.');
        }
        v
    }

    /// Go's `fmtInt`.
    fn int(&mut self, mut v: u64) {
        if v == 0 {
            self.put(b'0');
        }
        while v > 0 {
            self.put(b'0' + (v % 10) as u8);
            v /= 10;
        }
    }

    fn as_str(&self) -> &str {
        self.buf.get(self.w..).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default()
    }
}

const SECOND: u64 = 1_000_000_000;

/// Appends Go's `time.Duration(nanos).String()`.
pub fn write_go_duration(nanos: i64, out: &mut String) {
    let mut b = Back { buf: [0; 32], w: 32 };
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    if u < SECOND {
        b.put(b's');
        let prec = match u {
            0 => {
                out.push_str("0s");
                return;
            }
            1..=999 => {
                b.put(b'n');
                0
            }
            1_000..=999_999 => {
                b.put_str("\u{b5}");
                3
            }
            _ => {
                b.put(b'm');
                6
            }
        };
        u = b.frac(u, prec);
        b.int(u);
    } else {
        b.put(b's');
        u = b.frac(u, 9);
        b.int(u % 60);
        u /= 60;
        if u > 0 {
            b.put(b'm');
            b.int(u % 60);
            u /= 60;
            if u > 0 {
                b.put(b'h');
                b.int(u);
            }
        }
    }
    if neg {
        b.put(b'-');
    }
    out.push_str(b.as_str());
}

/// Appends `v` in decimal.
pub fn write_i64(v: i64, out: &mut String) {
    let mut b = Back { buf: [0; 32], w: 32 };
    b.int(v.unsigned_abs());
    if v < 0 {
        b.put(b'-');
    }
    out.push_str(b.as_str());
}

/// [`write_json_value`] with the fast paths for INT64, DURATION and TIMESTAMP.
pub fn write_json_value_fast(v: &Value<'_>, out: &mut String) {
    match v {
        Value::Int64(i) => write_i64(*i, out),
        Value::Duration(n) => {
            out.push('"');
            write_go_duration(*n, out);
            out.push('"');
        }
        Value::Timestamp(t) => {
            out.push('"');
            write_utc_micros(t, out);
            out.push('"');
        }
        _ => write_json_value(v, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gostd::duration::format_duration;

    /// A small deterministic generator (no dependencies).
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        *seed >> 11
    }

    #[test]
    fn durations_match_go_everywhere() {
        let mut cases: Vec<i64> = vec![
            0,
            1,
            -1,
            999,
            1_000,
            1_001,
            1_500,
            999_999,
            1_000_000,
            1_494_269,
            999_999_999,
            1_000_000_000,
            59_999_999_999,
            60_000_000_000,
            3_599_999_999_999,
            3_600_000_000_000,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        let mut seed = 7;
        for shift in 0..63 {
            let base = 1i64 << shift;
            cases.extend([base - 1, base, base + 1, -base]);
            for _ in 0..50 {
                cases.push((lcg(&mut seed) as i64) >> (62 - shift.min(61)));
            }
        }
        for n in cases {
            let (mut a, mut b) = (String::new(), String::new());
            write_go_duration(n, &mut a);
            format_duration(n, &mut b);
            assert_eq!(a, b, "{n}");
        }
        let mut s = String::new();
        write_go_duration(i64::MIN, &mut s);
        assert_eq!(s, "-2562047h47m16.854775808s");
    }

    #[test]
    fn times_match_the_reference() {
        let mut seed = 11;
        let mut cases = vec![
            crate::gostd::time::GO_ZERO,
            Timestamp::from_unix_nanos(0),
            Timestamp::from_unix_nanos(-1),
            Timestamp::from_unix_nanos(1_576_514_753_950_607_123),
            Timestamp::from_unix_nanos(i64::MAX),
            Timestamp::from_unix_nanos(i64::MIN),
        ];
        // 9999-12-31T23:59:59 and the first second of year 10000, -1 and 0.
        cases.extend([253_402_300_799, 253_402_300_800, -62_167_219_200, -62_167_219_201].map(|secs| Timestamp {
            secs,
            nanos: 999_999_999,
            offset_secs: 0,
        }));
        for _ in 0..20_000 {
            let secs = (lcg(&mut seed) % 400_000_000_000) as i64 - 100_000_000_000;
            cases.push(Timestamp { secs, nanos: (lcg(&mut seed) % 1_000_000_000) as u32, offset_secs: 3_600 });
        }
        for t in cases {
            let (mut a, mut b) = (String::new(), String::new());
            write_utc_micros(&t, &mut a);
            t.write_utc_micros(&mut b);
            assert_eq!(a, b, "{t:?}");
        }
    }

    #[test]
    fn integers() {
        for v in [0, 1, -1, 9, 10, 200, 48, -1234567890, i64::MAX, i64::MIN] {
            let mut s = String::new();
            write_i64(v, &mut s);
            assert_eq!(s, v.to_string());
        }
    }

    #[test]
    fn values_match_zap() {
        let values = [
            Value::Int64(-5),
            Value::Duration(13_601_485),
            Value::Timestamp(Timestamp::from_unix_nanos(1_503_309_840_000_000_000)),
            Value::Bool(true),
            Value::Double(1.5),
        ];
        for v in values {
            let (mut a, mut b) = (String::new(), String::new());
            write_json_value_fast(&v, &mut a);
            write_json_value(&v, &mut b);
            assert_eq!(a, b);
        }
    }
}
