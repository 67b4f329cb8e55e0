//! Go `strconv` (Go 1.13): `FormatFloat(v, 'f', -1, 64)`, `ParseFloat(s, 64)`,
//! `ParseInt(s, 10, 64)`, and the `Quote` / `QuoteRune` forms that Go error texts embed.
//!
//! `unicode.IsPrint` (used by `Quote`) is approximated for non-ASCII: C1 controls, the Unicode
//! space and line/paragraph separators other than U+0020, the common format characters,
//! surrogates, private-use and noncharacters are treated as unprintable; every other non-ASCII
//! scalar is printable (Go also escapes unassigned code points, which needs the Unicode tables).

use std::fmt::Write as _;

/// Appends Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that round-trips,
/// never with an exponent (`1e21` → `1000000000000000000000`), `NaN`, `+Inf`, `-Inf`.
pub fn format_float_f(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        if v.is_sign_negative() {
            out.push('-');
        }
        let (digits, exp10) = shortest_digits(v.abs());
        write_fixed(&digits, exp10, out);
    }
}

/// Go's shortest round-trip digits of a finite `v >= 0` and the decimal exponent of the first
/// digit (`d.ddd × 10^exp10`).
fn shortest_digits(v: f64) -> (Vec<u8>, i32) {
    // Rust's `{:e}` gives the shortest round-trip digits too, but breaks an exact decimal tie
    // upwards where Go rounds half to even.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let exp10 = exp.parse::<i32>().unwrap_or(0);
    let digits = go_tie_break(v, &digits, exp10).unwrap_or(digits);
    (digits, exp10)
}

/// When the exact value lies exactly halfway between the shortest candidates `t` and `t + 1`
/// (Rust chose `t + 1`, odd), Go picks the even `t` if it also round-trips.
fn go_tie_break(v: f64, digits: &[u8], exp10: i32) -> Option<Vec<u8>> {
    let (&last, head) = digits.split_last()?;
    // ASCII digits have the parity of their value.
    if last & 1 == 0 {
        return None;
    }
    // v = m·2^e2 with m odd and e2 < 0 ends its decimal expansion with a 5 at 10^e2; that 5 is
    // the digit right after the shortest form exactly when the expansion has n + 1 digits.
    let bits = v.to_bits();
    let (raw_exp, raw_mant) = (((bits >> 52) & 0x7ff) as i32, bits & ((1 << 52) - 1));
    let (m, e2) = if raw_exp == 0 { (raw_mant, -1074) } else { (raw_mant | (1 << 52), raw_exp - 1075) };
    let e2 = e2 + m.trailing_zeros() as i32;
    let n = i32::try_from(digits.len()).ok()?;
    if e2 >= 0 || -e2 != n - exp10 {
        return None;
    }
    let mut lower = head.to_vec();
    lower.push(last - 1);
    let text = format!("0.{}e{}", String::from_utf8_lossy(&lower), exp10 + 1);
    (text.parse::<f64>().ok()? == v).then_some(lower)
}

/// Go's `%f` layout of `0.digits × 10^(exp10+1)` with exactly the digits needed.
fn write_fixed(digits: &[u8], exp10: i32, out: &mut String) {
    let digit = |i: i64| usize::try_from(i).ok().and_then(|i| digits.get(i)).map_or('0', |&d| char::from(d));
    let dp = i64::from(exp10) + 1;
    let n = i64::try_from(digits.len()).unwrap_or(0);
    if dp > 0 {
        (0..dp).for_each(|i| out.push(digit(i)));
    } else {
        out.push('0');
    }
    let prec = (n - dp).max(0);
    if prec > 0 {
        out.push('.');
        (0..prec).for_each(|i| out.push(digit(dp + i)));
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`, with Go's error texts:
/// `strconv.ParseInt: parsing "0x1F": invalid syntax`, `... value out of range`.
pub fn parse_int(s: &str) -> Result<i64, String> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'+') => (false, s.get(1..).unwrap_or("")),
        Some(b'-') => (true, s.get(1..).unwrap_or("")),
        _ => (false, s),
    };
    let un = parse_uint10(digits).map_err(|kind| num_error("ParseInt", s, kind))?;
    const CUTOFF: u64 = 1 << 63;
    if neg {
        if un > CUTOFF {
            return Err(num_error("ParseInt", s, NumErr::Range));
        }
        // 0 - un fits: un <= 2^63, and 2^63 wraps to i64::MIN exactly.
        Ok(0i64.wrapping_sub_unsigned(un))
    } else {
        i64::try_from(un).map_err(|_| num_error("ParseInt", s, NumErr::Range))
    }
}

/// Go's `strconv.ParseFloat(s, 64)`: decimal and hexadecimal (`0x1p-2`) syntax, `_` digit
/// separators as in Go literals, `inf`/`infinity`/`nan` in any case. Errors as Go prints them:
/// `strconv.ParseFloat: parsing "x": invalid syntax` / `... value out of range`.
pub fn parse_float(s: &str) -> Result<f64, String> {
    if let Some(v) = special(s) {
        return Ok(v);
    }
    let scan = scan_float(s.as_bytes()).ok_or_else(|| num_error("ParseFloat", s, NumErr::Syntax))?;
    let v = if scan.hex {
        atof_hex(scan.mantissa, scan.exp, scan.neg, scan.trunc)
    } else {
        let cleaned: String = s.chars().filter(|&c| c != '_').collect();
        cleaned.parse::<f64>().ok()
    };
    match v {
        Some(f) if f.is_finite() => Ok(f),
        _ => Err(num_error("ParseFloat", s, NumErr::Range)),
    }
}

/// Go's `strconv.Quote`: a double-quoted Go string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        append_quoted_char(c, '"', &mut out);
    }
    out.push('"');
    out
}

/// Go's `strconv.Quote` of a byte string: bytes that are not valid UTF-8 become `\xNN`.
pub fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            append_quoted_char(c, '"', &mut out);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune` (what `%q` prints for a rune): a single-quoted Go rune literal.
pub fn quote_rune(c: char) -> String {
    let mut out = String::with_capacity(8);
    out.push('\'');
    append_quoted_char(c, '\'', &mut out);
    out.push('\'');
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NumErr {
    Syntax,
    Range,
}

fn num_error(func: &str, input: &str, kind: NumErr) -> String {
    let what = match kind {
        NumErr::Syntax => "invalid syntax",
        NumErr::Range => "value out of range",
    };
    format!("strconv.{func}: parsing {}: {what}", quote(input))
}

/// Go's `ParseUint(s, 10, 64)` loop: the first bad byte is a syntax error, but an overflow
/// seen before it wins (Go returns as soon as it overflows).
fn parse_uint10(s: &str) -> Result<u64, NumErr> {
    if s.is_empty() {
        return Err(NumErr::Syntax);
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return Err(NumErr::Syntax);
        }
        n = n.checked_mul(10).and_then(|m| m.checked_add(u64::from(b - b'0'))).ok_or(NumErr::Range)?;
    }
    Ok(n)
}

fn special(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "+inf" | "+infinity" | "inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    }
}

/// What Go's `readFloat` extracts; only the hexadecimal path uses the mantissa fields.
struct FloatScan {
    neg: bool,
    hex: bool,
    mantissa: u64,
    exp: i64,
    trunc: bool,
}

/// Mantissa accumulation state of Go's `readFloat`.
#[derive(Default)]
struct Digits {
    saw_dot: bool,
    saw_digits: bool,
    underscores: bool,
    nd: i64,
    nd_mant: i64,
    dp: i64,
    mantissa: u64,
    trunc: bool,
}

impl Digits {
    fn push(&mut self, value: u64, base: u64, max_mant_digits: i64) {
        self.saw_digits = true;
        if value == 0 && self.nd == 0 {
            // Leading zeros move the decimal point instead of counting as digits.
            self.dp = self.dp.wrapping_sub(1);
            return;
        }
        self.nd = self.nd.wrapping_add(1);
        if self.nd_mant < max_mant_digits {
            self.mantissa = self.mantissa.wrapping_mul(base).wrapping_add(value);
            self.nd_mant += 1;
        } else if value != 0 {
            self.trunc = true;
        }
    }
}

/// Go 1.13 `readFloat`: validates the whole of `s` and gathers the hex mantissa.
fn scan_float(s: &[u8]) -> Option<FloatScan> {
    let mut i = 0;
    let mut neg = false;
    match s.first() {
        Some(b'+') => i = 1,
        Some(b'-') => {
            neg = true;
            i = 1;
        }
        Some(_) => {}
        None => return None,
    }
    let hex = i + 2 < s.len() && s.get(i) == Some(&b'0') && s.get(i + 1).map(u8::to_ascii_lowercase) == Some(b'x');
    let (base, max_mant) = if hex {
        i += 2;
        (16u64, 16i64)
    } else {
        (10u64, 19i64)
    };
    let mut d = Digits::default();
    while let Some(&c) = s.get(i) {
        match c {
            b'_' => d.underscores = true,
            b'.' if d.saw_dot => break,
            b'.' => {
                d.saw_dot = true;
                d.dp = d.nd;
            }
            b'0'..=b'9' => d.push(u64::from(c - b'0'), base, max_mant),
            b'a'..=b'f' | b'A'..=b'F' if hex => d.push(u64::from(c.to_ascii_lowercase() - b'a' + 10), base, max_mant),
            _ => break,
        }
        i += 1;
    }
    if !d.saw_digits {
        return None;
    }
    if !d.saw_dot {
        d.dp = d.nd;
    }
    if hex {
        d.dp = d.dp.wrapping_mul(4);
        d.nd_mant *= 4;
    }
    let exp_char = if hex { b'p' } else { b'e' };
    if s.get(i).map(u8::to_ascii_lowercase) == Some(exp_char) {
        let (e, next, us) = scan_exponent(s, i + 1)?;
        d.dp = d.dp.wrapping_add(e);
        d.underscores |= us;
        i = next;
    } else if hex {
        return None;
    }
    if i != s.len() || (d.underscores && !underscore_ok(s)) {
        return None;
    }
    let exp = if d.mantissa != 0 { d.dp.wrapping_sub(d.nd_mant) } else { 0 };
    Some(FloatScan { neg, hex, mantissa: d.mantissa, exp, trunc: d.trunc })
}

/// The part after `e`/`p`: returns (signed exponent capped like Go, index after it, saw `_`).
fn scan_exponent(s: &[u8], mut i: usize) -> Option<(i64, usize, bool)> {
    let mut sign = 1i64;
    match s.get(i) {
        Some(b'+') => i += 1,
        Some(b'-') => {
            sign = -1;
            i += 1;
        }
        _ => {}
    }
    if !s.get(i).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let mut e = 0i64;
    let mut underscores = false;
    while let Some(&c) = s.get(i) {
        match c {
            b'_' => underscores = true,
            b'0'..=b'9' if e < 10000 => e = e * 10 + i64::from(c - b'0'),
            b'0'..=b'9' => {}
            _ => break,
        }
        i += 1;
    }
    Some((e * sign, i, underscores))
}

/// Go's `underscoreOK`: `_` only between digits, or between a base prefix and a digit.
fn underscore_ok(s: &[u8]) -> bool {
    let mut s = s;
    if let Some((&(b'+' | b'-'), rest)) = s.split_first() {
        s = rest;
    }
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = s[1].eq_ignore_ascii_case(&b'x');
    }
    while let Some(&c) = s.get(i) {
        i += 1;
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// Go's `atofHex` for float64: `mantissa * 2^exp`, rounded half-to-even with a sticky bit.
/// `None` means the value overflowed (Go's range error).
fn atof_hex(mut mantissa: u64, exp: i64, neg: bool, trunc: bool) -> Option<f64> {
    const MANT_BITS: u32 = 52;
    const BIAS: i64 = -1023;
    const MAX_EXP: i64 = 1023;
    const MIN_EXP: i64 = -1022;
    let mut exp = exp.saturating_add(i64::from(MANT_BITS));
    while mantissa != 0 && mantissa >> (MANT_BITS + 2) == 0 {
        mantissa <<= 1;
        exp = exp.saturating_sub(1);
    }
    if trunc {
        mantissa |= 1;
    }
    while mantissa >> (1 + MANT_BITS + 2) != 0 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp = exp.saturating_add(1);
    }
    while mantissa > 1 && exp < MIN_EXP - 2 {
        mantissa = (mantissa >> 1) | (mantissa & 1);
        exp = exp.saturating_add(1);
    }
    let mut round = mantissa & 3;
    mantissa >>= 2;
    round |= mantissa & 1;
    exp = exp.saturating_add(2);
    if round == 3 {
        mantissa += 1;
        if mantissa == 1 << (1 + MANT_BITS) {
            mantissa >>= 1;
            exp = exp.saturating_add(1);
        }
    }
    if mantissa >> MANT_BITS == 0 {
        exp = BIAS;
    }
    if exp > MAX_EXP {
        return None;
    }
    let biased = u64::try_from(exp - BIAS).unwrap_or(0) & 0x7ff;
    let mut bits = (mantissa & ((1 << MANT_BITS) - 1)) | (biased << MANT_BITS);
    if neg {
        bits |= 1 << 63;
    }
    Some(f64::from_bits(bits))
}

fn append_quoted_char(c: char, quote_char: char, out: &mut String) {
    if c == quote_char || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) {
        out.push(c);
        return;
    }
    let escaped = match c {
        '\u{07}' => "\\a",
        '\u{08}' => "\\b",
        '\u{0C}' => "\\f",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\u{0B}' => "\\v",
        _ => "",
    };
    if !escaped.is_empty() {
        out.push_str(escaped);
        return;
    }
    let n = u32::from(c);
    let _ = if n < 0x20 || n == 0x7f {
        write!(out, "\\x{n:02x}")
    } else if n < 0x10000 {
        write!(out, "\\u{n:04x}")
    } else {
        write!(out, "\\U{n:08x}")
    };
}

/// Approximation of Go's `unicode.IsPrint` (see the module doc).
pub(crate) fn is_print(c: char) -> bool {
    let n = u32::from(c);
    if n < 0x80 {
        return (0x20..0x7f).contains(&n);
    }
    let unprintable = (0x80..=0xa0).contains(&n)
        || n == 0xad
        || (0x600..=0x605).contains(&n)
        || n == 0x61c
        || n == 0x6dd
        || n == 0x70f
        || n == 0x1680
        || n == 0x180e
        || (0x2000..=0x200f).contains(&n)
        || (0x2028..=0x202f).contains(&n)
        || (0x205f..=0x2064).contains(&n)
        || (0x2066..=0x206f).contains(&n)
        || n == 0x3000
        || (0xe000..=0xf8ff).contains(&n)
        || n == 0xfeff
        || (0xfff9..=0xfffb).contains(&n)
        || (n & 0xfffe) == 0xfffe
        || (0xfdd0..=0xfdef).contains(&n)
        // Unicode 11 (Go 1.13) assigns nothing printable past U+2FA1D except variation
        // selectors U+E0100..U+E01EF.
        || (n >= 0x2fa1e && !(0xe0100..=0xe01ef).contains(&n));
    !unprintable
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ff(v: f64) -> String {
        let mut s = String::new();
        format_float_f(v, &mut s);
        s
    }

    #[test]
    fn format_float_shortest_without_exponent() {
        assert_eq!(ff(1e21), "1000000000000000000000");
        assert_eq!(ff(1.23), "1.23");
        assert_eq!(ff(0.000001), "0.000001");
        assert_eq!(ff(1.5), "1.5");
        assert_eq!(ff(100.0), "100");
        assert_eq!(ff(0.0), "0");
        assert_eq!(ff(-0.0), "-0");
        assert_eq!(ff(-2.5), "-2.5");
        assert_eq!(ff(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(ff(8.243543), "8.243543");
        assert_eq!(ff(1e-7), "0.0000001");
        assert_eq!(ff(123456789012345680.0), "123456789012345680");
        assert_eq!(ff(5e-324).len(), 2 + 323 + 1);
        assert!(ff(f64::MAX).starts_with("17976931348623157"));
    }

    #[test]
    fn format_float_ties_round_half_even_like_go() {
        // Exactly halfway between two shortest candidates: Go keeps the even digit.
        assert_eq!(ff(f64::from_bits(0x4264_429d_03b0_6d00)), "696135458179.4062");
        assert_eq!(ff(718_502_202_087_544.0 + 0.25), "718502202087544.2");
        assert_eq!(ff(1_189_701_470_618.0 + 0.031_25), "1189701470618.0312");
        assert_eq!(ff(-(106_198_433_378_880.0 + 0.625)), "-106198433378880.62");
        // Ties whose lower candidate is odd round up, as in Rust.
        assert_eq!(ff(718_502_202_087_543.0 + 0.75), "718502202087543.8");
        assert_eq!(ff(0.5), "0.5");
        assert_eq!(ff(2.5), "2.5");
    }

    #[test]
    fn format_float_specials() {
        assert_eq!(ff(f64::NAN), "NaN");
        assert_eq!(ff(f64::INFINITY), "+Inf");
        assert_eq!(ff(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn parse_int_accepts_decimal_only() {
        assert_eq!(parse_int("200").unwrap(), 200);
        assert_eq!(parse_int("010").unwrap(), 10);
        assert_eq!(parse_int("+7").unwrap(), 7);
        assert_eq!(parse_int("-7").unwrap(), -7);
        assert_eq!(parse_int("9223372036854775807").unwrap(), i64::MAX);
        assert_eq!(parse_int("-9223372036854775808").unwrap(), i64::MIN);
    }

    #[test]
    fn parse_int_errors_are_go_texts() {
        assert_eq!(parse_int("0x1F").unwrap_err(), r#"strconv.ParseInt: parsing "0x1F": invalid syntax"#);
        assert_eq!(parse_int("").unwrap_err(), r#"strconv.ParseInt: parsing "": invalid syntax"#);
        assert_eq!(parse_int("-").unwrap_err(), r#"strconv.ParseInt: parsing "-": invalid syntax"#);
        assert_eq!(parse_int("1_000").unwrap_err(), r#"strconv.ParseInt: parsing "1_000": invalid syntax"#);
        assert_eq!(
            parse_int("9223372036854775808").unwrap_err(),
            r#"strconv.ParseInt: parsing "9223372036854775808": value out of range"#
        );
        assert_eq!(
            parse_int("-9223372036854775809").unwrap_err(),
            r#"strconv.ParseInt: parsing "-9223372036854775809": value out of range"#
        );
        // Go stops at the overflow, before it sees the bad byte.
        assert_eq!(
            parse_int("99999999999999999999x").unwrap_err(),
            r#"strconv.ParseInt: parsing "99999999999999999999x": value out of range"#
        );
    }

    #[test]
    fn parse_float_decimal() {
        assert_eq!(parse_float("8.243543").unwrap(), 8.243543);
        assert_eq!(parse_float("1e3").unwrap(), 1000.0);
        assert_eq!(parse_float(".5").unwrap(), 0.5);
        assert_eq!(parse_float("1.").unwrap(), 1.0);
        assert_eq!(parse_float("-0").unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(parse_float("+1.5E-2").unwrap(), 0.015);
        assert_eq!(parse_float("1_000.5").unwrap(), 1000.5);
        assert_eq!(parse_float("1e-400").unwrap(), 0.0);
        assert_eq!(parse_float("0.1").unwrap(), 0.1);
    }

    #[test]
    fn parse_float_specials() {
        assert!(parse_float("NaN").unwrap().is_nan());
        assert!(parse_float("nan").unwrap().is_nan());
        assert_eq!(parse_float("inf").unwrap(), f64::INFINITY);
        assert_eq!(parse_float("+Inf").unwrap(), f64::INFINITY);
        assert_eq!(parse_float("-Infinity").unwrap(), f64::NEG_INFINITY);
        assert!(parse_float("+nan").is_err());
    }

    #[test]
    fn parse_float_hex() {
        assert_eq!(parse_float("0x1p-2").unwrap(), 0.25);
        assert_eq!(parse_float("0x1.8p1").unwrap(), 3.0);
        assert_eq!(parse_float("-0X_1p4").unwrap(), -16.0);
        assert_eq!(parse_float("0x1p-1074").unwrap(), 5e-324);
        assert_eq!(parse_float("0x1p-1076").unwrap(), 0.0);
        assert_eq!(
            parse_float("0x1.fffffffffffff8p1023").unwrap_err(),
            r#"strconv.ParseFloat: parsing "0x1.fffffffffffff8p1023": value out of range"#
        );
        assert_eq!(parse_float("0x1.fffffffffffffp1023").unwrap(), f64::MAX);
        assert!(parse_float("0x1").is_err(), "hex mantissa needs a p exponent");
        assert!(parse_float("0x").is_err());
    }

    #[test]
    fn parse_float_errors() {
        let syntax = |s: &str| format!("strconv.ParseFloat: parsing {}: invalid syntax", quote(s));
        for bad in ["", "x", "1e", "1e+", ".", "e5", "1.2.3", "1 ", "_1", "1__0", "1_", "0x1p"] {
            assert_eq!(parse_float(bad).unwrap_err(), syntax(bad), "{bad:?}");
        }
        assert_eq!(parse_float("1e400").unwrap_err(), r#"strconv.ParseFloat: parsing "1e400": value out of range"#);
        assert_eq!(parse_float("-1e400").unwrap_err(), r#"strconv.ParseFloat: parsing "-1e400": value out of range"#);
    }

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote("abc"), r#""abc""#);
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("\n\t\u{0}\u{7f}"), r#""\n\t\x00\x7f""#);
        assert_eq!(quote("é☺"), "\"é☺\"");
        assert_eq!(quote("\u{a0}\u{feff}"), r#""\u00a0\ufeff""#);
        assert_eq!(quote("\u{10ffff}"), r#""\U0010ffff""#);
        assert_eq!(quote_bytes(b"%\xe6\x97"), r#""%\xe6\x97""#);
        assert_eq!(quote_bytes("é".as_bytes()), "\"é\"");
        assert_eq!(quote_rune('a'), "'a'");
        assert_eq!(quote_rune('\''), r"'\''");
        assert_eq!(quote_rune('"'), "'\"'");
        assert_eq!(quote_rune('\u{0}'), r"'\x00'");
    }
}
