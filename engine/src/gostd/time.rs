//! Go `time.Time` as Mixer used it (Go 1.13): `time.Parse(time.RFC3339, s)`, the 6-digit UTC
//! text of the stdio adapter and Prometheus labels, `Format(time.RFC3339Nano)`, and the
//! `Equal` / `Before` / `After` comparisons.
//!
//! Known gap: Go's derived struct equality also compares the `*Location` pointer. A parsed
//! `+hh:mm` offset gets a fresh `FixedZone` (so two such values are never `==` in Go, and a
//! `+00:00` offset may even become `time.Local`); `Timestamp` only keeps the offset, so its
//! derived `PartialEq` treats equal instants with equal offsets as equal.

use std::fmt::Write as _;

/// An instant plus the zone offset it was written with (Go keeps both; `<=` depends on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (UTC).
    pub secs: i64,
    /// Nanoseconds within the second, 0..1e9.
    pub nanos: u32,
    /// Zone offset east of UTC in seconds (0 for `Z`).
    pub offset_secs: i32,
}

/// Go's zero `time.Time`: `0001-01-01T00:00:00Z`.
pub const GO_ZERO: Timestamp = Timestamp { secs: -62_135_596_800, nanos: 0, offset_secs: 0 };

/// Go's `time.RFC3339` layout, as quoted in parse errors.
const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

const NANOS_PER_SEC: i64 = 1_000_000_000;

impl Timestamp {
    /// Go's zero `time.Time` (`0001-01-01T00:00:00.000000Z` in the 6-digit UTC form).
    pub const GO_ZERO: Timestamp = GO_ZERO;

    /// Go's `time.Parse(time.RFC3339, s)`. `Z` or `±hh:mm` is required; a fraction of any
    /// length may follow the seconds. The error is Go's `ParseError` text, e.g.
    /// `parsing time "x" as "2006-01-02T15:04:05Z07:00": cannot parse "x" as "2006"`.
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, String> {
        let fields = parse_fields(s)?;
        if fields.day < 1 || fields.day > days_in_month(fields.month, fields.year) {
            return Err(message_error(s, ": day out of range"));
        }
        let days = days_from_civil(fields.year, fields.month, fields.day);
        let local = days * 86_400 + fields.hour * 3_600 + fields.minute * 60 + fields.second;
        Ok(Timestamp { secs: local - i64::from(fields.offset), nanos: fields.nanos, offset_secs: fields.offset })
    }

    /// The UTC instant `n` nanoseconds after the Unix epoch (Go's `time.Unix(0, n).UTC()`).
    pub fn from_unix_nanos(n: i64) -> Timestamp {
        Timestamp {
            secs: n.div_euclid(NANOS_PER_SEC),
            nanos: u32::try_from(n.rem_euclid(NANOS_PER_SEC)).unwrap_or(0),
            offset_secs: 0,
        }
    }

    /// Nanoseconds since the Unix epoch, saturated to the `i64` range.
    pub fn unix_nanos(&self) -> i64 {
        let total = self.total_nanos();
        i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX })
    }

    /// Appends the instant in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`: exactly six fractional
    /// digits, truncated; the year has at least four digits.
    pub fn write_utc_micros(&self, out: &mut String) {
        write_date_time(self.secs, out);
        let _ = write!(out, ".{:06}Z", self.nanos / 1_000);
    }

    /// Appends Go's `Format(time.RFC3339Nano)` in the stored offset: trailing fraction zeros
    /// dropped, `Z` for a zero offset (`2017-01-01T00:00:00Z`, `2017-01-01T01:00:00.5+01:00`).
    pub fn write_rfc3339_nano(&self, out: &mut String) {
        write_date_time(self.secs.saturating_add(i64::from(self.offset_secs)), out);
        if self.nanos != 0 {
            let digits = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        write_offset(self.offset_secs, out);
    }

    /// Go's `Time.Equal`: same instant, whatever the offsets.
    pub fn instant_eq(&self, o: &Timestamp) -> bool {
        self.total_nanos() == o.total_nanos()
    }

    /// Go's `Time.Before`.
    pub fn before(&self, o: &Timestamp) -> bool {
        self.total_nanos() < o.total_nanos()
    }

    /// Go's `Time.After`.
    pub fn after(&self, o: &Timestamp) -> bool {
        self.total_nanos() > o.total_nanos()
    }

    fn total_nanos(&self) -> i128 {
        i128::from(self.secs) * i128::from(NANOS_PER_SEC) + i128::from(self.nanos)
    }
}

/// The fields `time.Parse` gathers before building the `Time`.
struct Fields {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    nanos: u32,
    offset: i32,
}

/// A failed `time.Parse` step: Go's `ParseError` without or with a `Message`.
enum StepError {
    /// `cannot parse "<value>" as "<layout element>"`.
    Elem(&'static str),
    /// `: <what> out of range`.
    Range(&'static str),
}

/// The value still to parse, mirroring Go's `value` variable (bytes, as Go slices them).
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = tail;
        head
    }

    fn digit_at(&self, i: usize) -> bool {
        self.rest.get(i).is_some_and(u8::is_ascii_digit)
    }

    /// Go's `skip` for a one-byte literal of the layout.
    fn skip(&mut self, lit: u8) -> bool {
        if self.rest.first() == Some(&lit) {
            self.rest = self.rest.get(1..).unwrap_or(&[]);
            true
        } else {
            false
        }
    }

    /// Go's `getnum`: one or two digits (`fixed` demands two).
    fn getnum(&mut self, fixed: bool) -> Option<i64> {
        if !self.digit_at(0) {
            return None;
        }
        let first = i64::from(self.rest[0] - b'0');
        if !self.digit_at(1) {
            if fixed {
                return None;
            }
            self.take(1);
            return Some(first);
        }
        let second = i64::from(self.rest[1] - b'0');
        self.take(2);
        Some(first * 10 + second)
    }
}

/// One layout element of RFC 3339 after its literal prefix.
type Step = fn(&mut Cursor<'_>, &mut Fields) -> Result<(), StepError>;

fn parse_fields(s: &str) -> Result<Fields, String> {
    let mut cur = Cursor { rest: s.as_bytes() };
    let mut f = Fields { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0, nanos: 0, offset: 0 };
    let steps: [(Option<u8>, Step); 7] = [
        (None, parse_year),
        (Some(b'-'), parse_month),
        (Some(b'-'), parse_day),
        (Some(b'T'), parse_hour),
        (Some(b':'), parse_minute),
        (Some(b':'), parse_second),
        (None, parse_zone),
    ];
    for (prefix, step) in steps {
        if let Some(lit) = prefix {
            if !cur.skip(lit) {
                return Err(elem_error(s, cur.rest, lit_str(lit)));
            }
        }
        step(&mut cur, &mut f).map_err(|e| match e {
            StepError::Elem(layout) => elem_error(s, cur.rest, layout),
            StepError::Range(what) => message_error(s, &format!(": {what} out of range")),
        })?;
    }
    if !cur.rest.is_empty() {
        let extra = String::from_utf8_lossy(cur.rest);
        return Err(message_error(s, &format!(": extra text: {extra}")));
    }
    Ok(f)
}

fn lit_str(lit: u8) -> &'static str {
    match lit {
        b'-' => "-",
        b'T' => "T",
        _ => ":",
    }
}

fn parse_year(cur: &mut Cursor<'_>, f: &mut Fields) -> Result<(), StepError> {
    if cur.rest.len() < 4 || !cur.digit_at(0) {
        return Err(StepError::Elem("2006"));
    }
    f.year = atoi(cur.take(4)).ok_or(StepError::Elem("2006"))?;
    Ok(())
}

fn parse_month(cur: &mut Cursor<'_>, f: &mut Fields) -> Result<(), StepError> {
    // Go 1.13 checks the range even when getnum failed (month is then 0).
    let month = cur.getnum(true);
    f.month = month.unwrap_or(0);
    if !(1..=12).contains(&f.month) {
        return Err(StepError::Range("month"));
    }
    Ok(())
}

fn parse_day(cur: &mut Cursor<'_>, f: &mut Fields) -> Result<(), StepError> {
    f.day = cur.getnum(true).ok_or(StepError::Elem("02"))?;
    Ok(())
}

fn parse_hour(cur: &mut Cursor<'_>, f: &mut Fields) -> Result<(), StepError> {
    f.hour = cur.getnum(false).ok_or(StepError::Elem("15"))?;
    if f.hour >= 24 {
        return Err(StepError::Range("hour"));
    }
    Ok(())
}

fn parse_minute(cur: &mut Cursor<'_>, f: &mut Fields) -> Result<(), StepError> {
    f.minute = cur.getnum(true).ok_or(StepError::Elem("04"))?;
    if f.minute >= 60 {
        return Err(StepError::Range("minute"));
    }
    Ok(())
}

/// Seconds plus the fraction Go accepts although the layout has none.
fn parse_second(cur: &mut Cursor<'_>, f: &mut Fields) -> Result<(), StepError> {
    f.second = cur.getnum(true).ok_or(StepError::Elem("05"))?;
    if f.second >= 60 {
        return Err(StepError::Range("second"));
    }
    if cur.rest.len() >= 2 && cur.rest[0] == b'.' && cur.digit_at(1) {
        let n = 1 + cur.rest.iter().skip(1).take_while(|c| c.is_ascii_digit()).count();
        let frac = cur.take(n);
        f.nanos = parse_nanoseconds(frac.get(1..).unwrap_or(&[]))?;
    }
    Ok(())
}

/// Go's `parseNanoseconds`: the digits after the dot, scaled to nanoseconds. Beyond nine
/// digits Go stops scaling (so `.0000000001` is 1ns) and rejects values of 1e9 and more.
fn parse_nanoseconds(digits: &[u8]) -> Result<u32, StepError> {
    let ns = atoi(digits).ok_or(StepError::Elem("05"))?;
    if !(0..NANOS_PER_SEC).contains(&ns) {
        return Err(StepError::Range("fractional second"));
    }
    let scale = 9usize.saturating_sub(digits.len());
    let scaled = (0..scale).fold(ns, |v, _| v * 10);
    u32::try_from(scaled).map_err(|_| StepError::Range("fractional second"))
}

fn parse_zone(cur: &mut Cursor<'_>, f: &mut Fields) -> Result<(), StepError> {
    const ELEM: &str = "Z07:00";
    if cur.skip(b'Z') {
        f.offset = 0;
        return Ok(());
    }
    if cur.rest.len() < 6 || cur.rest[3] != b':' {
        return Err(StepError::Elem(ELEM));
    }
    let zone = cur.take(6);
    let hours = atoi(&zone[1..3]).ok_or(StepError::Elem(ELEM))?;
    let minutes = atoi(&zone[4..6]).ok_or(StepError::Elem(ELEM))?;
    let offset = i32::try_from((hours * 60 + minutes) * 60).map_err(|_| StepError::Elem(ELEM))?;
    f.offset = match zone[0] {
        b'+' => offset,
        b'-' => -offset,
        _ => return Err(StepError::Elem(ELEM)),
    };
    Ok(())
}

/// Go's `time.atoi`: an optional sign, then only digits (an empty digit run reads as 0).
fn atoi(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let v = digits.iter().try_fold(0i64, |x, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        x.checked_mul(10)?.checked_add(i64::from(c - b'0'))
    })?;
    Some(if neg { -v } else { v })
}

fn elem_error(value: &str, value_elem: &[u8], layout_elem: &str) -> String {
    format!(
        "parsing time \"{value}\" as \"{RFC3339}\": cannot parse \"{}\" as \"{layout_elem}\"",
        String::from_utf8_lossy(value_elem)
    )
}

fn message_error(value: &str, message: &str) -> String {
    format!("parsing time \"{value}\"{message}")
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(month: i64, year: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DDTHH:MM:SS` of `secs` taken as wall-clock seconds since the epoch.
fn write_date_time(secs: i64, out: &mut String) {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    write_year(year, out);
    let _ = write!(out, "-{month:02}-{day:02}T{:02}:{:02}:{:02}", sod / 3_600, sod / 60 % 60, sod % 60);
}

/// Go's `stdLongYear`: at least four digits, a leading `-` before the padding.
fn write_year(year: i64, out: &mut String) {
    if year < 0 {
        out.push('-');
    }
    let _ = write!(out, "{:04}", year.unsigned_abs());
}

/// Go's `Z07:00` output: `Z` for zero, otherwise `±hh:mm` from the offset in whole minutes.
fn write_offset(offset: i32, out: &mut String) {
    if offset == 0 {
        out.push('Z');
        return;
    }
    let zone = offset / 60;
    out.push(if zone < 0 { '-' } else { '+' });
    let zone = zone.unsigned_abs();
    let _ = write!(out, "{:02}:{:02}", zone / 60, zone % 60);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn micros(t: &Timestamp) -> String {
        let mut s = String::new();
        t.write_utc_micros(&mut s);
        s
    }

    fn nano(t: &Timestamp) -> String {
        let mut s = String::new();
        t.write_rfc3339_nano(&mut s);
        s
    }

    fn parse(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn err(s: &str) -> String {
        Timestamp::parse_rfc3339(s).unwrap_err()
    }

    #[test]
    fn parses_utc_and_offsets() {
        assert_eq!(parse("2017-01-01T00:00:00Z"), Timestamp { secs: 1_483_228_800, nanos: 0, offset_secs: 0 });
        assert_eq!(parse("1970-01-01T00:00:00Z").secs, 0);
        let t = parse("2017-01-01T01:00:00.5+01:00");
        assert_eq!((t.secs, t.nanos, t.offset_secs), (1_483_228_800, 500_000_000, 3600));
        let t = parse("2015-01-02T15:04:35-07:30");
        assert_eq!(t.offset_secs, -27_000);
        assert_eq!(micros(&t), "2015-01-02T22:34:35.000000Z");
        assert_eq!(parse("2000-02-29T12:00:00Z").secs, 951_825_600);
    }

    #[test]
    fn fraction_of_any_length() {
        assert_eq!(parse("2018-09-15T20:46:36.009801Z").nanos, 9_801_000);
        assert_eq!(parse("2018-09-15T20:46:36.1Z").nanos, 100_000_000);
        assert_eq!(parse("2018-09-15T20:46:36.123456789Z").nanos, 123_456_789);
        assert_eq!(parse("2018-09-15T20:46:36.000000000001Z").nanos, 1, "Go 1.13 quirk");
    }

    #[test]
    fn lenient_single_digit_hour_like_go() {
        assert_eq!(parse("2015-01-02T5:04:35Z").secs, parse("2015-01-02T05:04:35Z").secs);
    }

    #[test]
    fn errors_are_go_parse_errors() {
        assert_eq!(err("242233"), r#"parsing time "242233" as "2006-01-02T15:04:05Z07:00": cannot parse "33" as "-""#);
        assert_eq!(err(""), r#"parsing time "" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "2006""#);
        assert_eq!(
            err("2017-01-01"),
            r#"parsing time "2017-01-01" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "T""#
        );
        assert_eq!(
            err("2017-01-01T00:00:00"),
            r#"parsing time "2017-01-01T00:00:00" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "Z07:00""#
        );
        assert_eq!(
            err("2017-01-01T00:00:00+0100"),
            r#"parsing time "2017-01-01T00:00:00+0100" as "2006-01-02T15:04:05Z07:00": cannot parse "+0100" as "Z07:00""#
        );
        assert_eq!(
            err("2017-01-01 00:00:00Z"),
            r#"parsing time "2017-01-01 00:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse " 00:00:00Z" as "T""#
        );
        assert_eq!(err("2017-1-01T00:00:00Z"), r#"parsing time "2017-1-01T00:00:00Z": month out of range"#);
    }

    #[test]
    fn range_errors() {
        assert_eq!(err("2017-13-01T00:00:00Z"), r#"parsing time "2017-13-01T00:00:00Z": month out of range"#);
        assert_eq!(err("2017-02-29T00:00:00Z"), r#"parsing time "2017-02-29T00:00:00Z": day out of range"#);
        assert_eq!(err("2017-01-00T00:00:00Z"), r#"parsing time "2017-01-00T00:00:00Z": day out of range"#);
        assert_eq!(err("2017-01-01T24:00:00Z"), r#"parsing time "2017-01-01T24:00:00Z": hour out of range"#);
        assert_eq!(err("2017-01-01T00:60:00Z"), r#"parsing time "2017-01-01T00:60:00Z": minute out of range"#);
        assert_eq!(err("2017-01-01T00:00:60Z"), r#"parsing time "2017-01-01T00:00:60Z": second out of range"#);
        assert_eq!(
            err("2017-01-01T00:00:00.1234567890Z"),
            r#"parsing time "2017-01-01T00:00:00.1234567890Z": fractional second out of range"#
        );
    }

    #[test]
    fn extra_text_is_unquoted() {
        assert_eq!(err("2017-01-01T00:00:00Zjunk"), r#"parsing time "2017-01-01T00:00:00Zjunk": extra text: junk"#);
    }

    #[test]
    fn odd_offsets_go_accepts() {
        assert_eq!(parse("2017-01-01T00:00:00+99:99").offset_secs, (99 * 60 + 99) * 60);
        assert_eq!(parse("2017-01-01T00:00:00-+1:00").offset_secs, -3600, "atoi takes a sign");
        assert!(Timestamp::parse_rfc3339("2017-01-01T00:00:00x01:00").is_err());
    }

    #[test]
    fn never_panics_on_multibyte_input() {
        for s in ["é", "2017-01-01T00:00:00+é:00", "2017-01-01T00:00:00.5é", "２０１７"] {
            assert!(Timestamp::parse_rfc3339(s).is_err());
        }
    }

    #[test]
    fn utc_micros_text() {
        assert_eq!(micros(&GO_ZERO), "0001-01-01T00:00:00.000000Z");
        assert_eq!(micros(&Timestamp::GO_ZERO), "0001-01-01T00:00:00.000000Z");
        assert_eq!(micros(&parse("2018-09-15T20:46:36.009801999Z")), "2018-09-15T20:46:36.009801Z");
        assert_eq!(micros(&parse("2017-08-21T10:04:00Z")), "2017-08-21T10:04:00.000000Z");
        assert_eq!(
            micros(&Timestamp { secs: -62_167_219_200 - 86_400, nanos: 0, offset_secs: 0 }),
            "-0001-12-31T00:00:00.000000Z"
        );
        assert_eq!(
            micros(&Timestamp { secs: 253_402_300_800, nanos: 0, offset_secs: 0 }),
            "10000-01-01T00:00:00.000000Z"
        );
        micros(&Timestamp { secs: i64::MAX, nanos: 999_999_999, offset_secs: i32::MAX });
        micros(&Timestamp { secs: i64::MIN, nanos: 0, offset_secs: i32::MIN });
    }

    #[test]
    fn rfc3339_nano_text() {
        assert_eq!(nano(&parse("2017-01-01T00:00:00Z")), "2017-01-01T00:00:00Z");
        assert_eq!(nano(&parse("2017-01-01T01:00:00.5+01:00")), "2017-01-01T01:00:00.5+01:00");
        assert_eq!(nano(&parse("2017-01-01T01:00:00.000000100-05:30")), "2017-01-01T01:00:00.0000001-05:30");
        assert_eq!(nano(&Timestamp { secs: 0, nanos: 0, offset_secs: -30 }), "1969-12-31T23:59:30+00:00");
        assert_eq!(nano(&Timestamp { secs: 0, nanos: 0, offset_secs: 362_340 }), "1970-01-05T04:39:00+100:39");
        nano(&Timestamp { secs: i64::MAX, nanos: 1, offset_secs: i32::MAX });
    }

    #[test]
    fn unix_nanos_round_trip_and_saturate() {
        for n in [0, 1, -1, 1_483_228_800_500_000_000, i64::MAX, i64::MIN] {
            assert_eq!(Timestamp::from_unix_nanos(n).unix_nanos(), n);
        }
        let t = Timestamp::from_unix_nanos(-1);
        assert_eq!((t.secs, t.nanos), (-1, 999_999_999));
        assert_eq!(Timestamp { secs: i64::MAX, nanos: 0, offset_secs: 0 }.unix_nanos(), i64::MAX);
        assert_eq!(Timestamp { secs: i64::MIN, nanos: 0, offset_secs: 0 }.unix_nanos(), i64::MIN);
    }

    #[test]
    fn comparisons() {
        let a = parse("2017-01-01T00:00:00Z");
        let b = parse("2017-01-01T01:00:00+01:00");
        let c = parse("2017-01-01T00:00:00.000000001Z");
        assert!(a.instant_eq(&b));
        assert_ne!(a, b, "struct equality sees the offset");
        assert!(a.before(&c) && c.after(&a));
        assert!(!a.before(&b) && !a.after(&b));
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -719_468, -1, 0, 1, 10_957, 2_932_896, 100_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
