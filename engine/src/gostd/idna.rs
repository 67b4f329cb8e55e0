//! `golang.org/x/net/idna` as vendored by Istio 1.5 (the 2019/2020 revision with the single
//! `validateLabels` flag), used by Mixer's `dnsName()` and DNS_NAME `==`.
//!
//! * [`to_dns_name`] is `idna.New(StrictDomainName(true), ValidateLabels(true),
//!   VerifyDNSLength(true), BidiRule()).ToUnicode(s)`. That profile's mapping step is only NFC
//!   normalisation, and `ToUnicode` never runs the length checks (those live in `ToASCII`), so
//!   Go rejects: empty input, empty labels (`.`, `a..b`), labels with a leading or trailing `-`,
//!   labels with `--` at positions 3-4 (this revision checks every label, not only `xn--`
//!   ones: `r3---sn.example` fails), a leading combining mark, bad ZWJ/ZWNJ context, bad
//!   punycode and disallowed runes inside `xn--` labels, and Bidi-rule violations. It does
//!   **not** reject `_`, spaces, labels over 63 octets or names over 253 octets.
//! * [`dns_name_equal`] maps both sides with `idna.New(MapForLookup(), BidiRule()).ToUnicode`,
//!   which lowercases and rejects runes outside STD3 (`_` gives `idna: disallowed rune U+005F`).
//!
//! Errors are Go's texts: `idna: invalid label "<label>"` and `idna: disallowed rune U+XXXX`.
//!
//! Unicode-table gaps (ASCII input is exact; checked against x/net/idna on 60k generated
//! names): NFC normalisation is the identity (no composition of `e` + U+0301, no canonical
//! reordering of marks); the UTS #46 mapping covers simple lowercasing, full-width ASCII, the
//! ideographic full stops, `İ`, `ẞ`, `ſ`, ligatures, Roman numerals, circled numbers and a few
//! superscripts, treats default-ignorable code points as ignored and unprintable ones as
//! disallowed, and keeps every other rune as valid (rarer compatibility mappings and
//! unassigned code points are not recognised); Bidi classes, combining marks, joining types and
//! viramas come from small range tables for the Latin, Greek, Cyrillic, Hebrew, Arabic and
//! Devanagari blocks.

use super::strconv::{is_print, quote};
use super::strings::lower_rune;

/// `dnsName(s)`: the `ToUnicode` form of `s` (ASCII input comes back unchanged, case and any
/// trailing dot kept), or Go's idna error text.
pub fn to_dns_name(s: &str) -> Result<String, String> {
    process(s, Profile::DnsName)
}

/// DNS_NAME `==`: both names through the lookup mapping; if exactly one ends with `.`, that dot
/// is dropped; then byte comparison. `Err` holds the first side's idna error text.
pub fn dns_name_equal(a: &str, b: &str) -> Result<bool, String> {
    let a = process(a, Profile::Lookup)?;
    let b = process(b, Profile::Lookup)?;
    if a.is_empty() || b.is_empty() {
        // Mixer indexes n[len(n)-1] without a check: Go panics on an empty mapped name.
        return Err("runtime error: index out of range [-1]".to_string());
    }
    let (a_dot, b_dot) = (a.ends_with('.'), b.ends_with('.'));
    let a = if a_dot && !b_dot { &a[..a.len() - 1] } else { a.as_str() };
    let b = if b_dot && !a_dot { &b[..b.len() - 1] } else { b.as_str() };
    Ok(a == b)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// StrictDomainName + ValidateLabels + VerifyDNSLength + BidiRule (mapping: NFC only).
    DnsName,
    /// MapForLookup + BidiRule.
    Lookup,
}

const ACE_PREFIX: &str = "xn--";

/// Go's `Profile.process(s, toASCII=false)`: the first error wins, processing goes on.
fn process(input: &str, profile: Profile) -> Result<String, String> {
    let (s, mut is_bidi, mut err) = match profile {
        Profile::DnsName => (input.to_string(), has_rtl(input), None),
        Profile::Lookup => validate_and_map(input),
    };
    let verify_length = profile == Profile::DnsName;
    if err.is_none() && verify_length && s.is_empty() {
        err = Some(label_error(&s));
    }
    let mut labels = LabelIter::new(&s);
    while !labels.done() {
        let label = labels.label();
        if label.is_empty() {
            if err.is_none() && verify_length {
                err = Some(label_error(&s));
            }
        } else if let Some(encoded) = label.strip_prefix(ACE_PREFIX) {
            match decode_punycode(encoded) {
                Err(e) => {
                    err.get_or_insert(e);
                }
                Ok(u) => {
                    is_bidi = is_bidi || has_rtl(&u);
                    if err.is_none() {
                        err = validate_from_punycode(&u).or_else(|| validate_label(&u, verify_length));
                    }
                    labels.set(u);
                }
            }
        } else if err.is_none() {
            err = validate_label(&label, verify_length);
        }
        labels.next();
    }
    if is_bidi && err.is_none() {
        labels.reset();
        while !labels.done() {
            if !bidi_rule_ok(&labels.label()) {
                err = Some(label_error(&s));
                break;
            }
            labels.next();
        }
    }
    match err {
        Some(e) => Err(e),
        None => Ok(labels.result()),
    }
}

fn label_error(label: &str) -> String {
    format!("idna: invalid label {}", quote(label))
}

fn rune_error(c: char) -> String {
    format!("idna: disallowed rune U+{:04X}", u32::from(c))
}

/// Go's `labelIter`: walks `.`-separated labels of the original string until a label is
/// replaced, then over the split slice. It skips a last empty label (the trailing dot); in the
/// string mode that also swallows an empty label before it (`a..` yields only `a`).
struct LabelIter {
    orig: String,
    slice: Option<Vec<String>>,
    cur_start: usize,
    cur_end: usize,
    i: usize,
}

impl LabelIter {
    fn new(orig: &str) -> LabelIter {
        LabelIter { orig: orig.to_string(), slice: None, cur_start: 0, cur_end: 0, i: 0 }
    }

    fn reset(&mut self) {
        self.cur_start = 0;
        self.cur_end = 0;
        self.i = 0;
    }

    fn done(&self) -> bool {
        self.cur_start >= self.orig.len()
    }

    fn label(&mut self) -> String {
        if let Some(slice) = &self.slice {
            return slice.get(self.i).cloned().unwrap_or_default();
        }
        let rest = self.orig.get(self.cur_start..).unwrap_or("");
        self.cur_end = self.cur_start + rest.find('.').unwrap_or(rest.len());
        self.orig.get(self.cur_start..self.cur_end).unwrap_or("").to_string()
    }

    fn next(&mut self) {
        self.i += 1;
        if let Some(slice) = &self.slice {
            let last_empty = self.i + 1 == slice.len() && slice.get(self.i).is_some_and(String::is_empty);
            if self.i >= slice.len() || last_empty {
                self.cur_start = self.orig.len();
            }
        } else {
            self.cur_start = self.cur_end + 1;
            if self.cur_start + 1 == self.orig.len() && self.orig.as_bytes().get(self.cur_start) == Some(&b'.') {
                self.cur_start = self.orig.len();
            }
        }
    }

    fn set(&mut self, label: String) {
        let slice = self.slice.get_or_insert_with(|| self.orig.split('.').map(str::to_string).collect());
        if let Some(slot) = slice.get_mut(self.i) {
            *slot = label;
        }
    }

    fn result(&self) -> String {
        match &self.slice {
            Some(slice) => slice.join("."),
            None => self.orig.clone(),
        }
    }
}

/// UTS #46 status of a rune after `simplify` for a non-transitional STD3 profile.
enum Status {
    Valid,
    Mapped(char),
    MappedStr(&'static str),
    Ignored,
    Disallowed,
}

/// Approximate UTS #46 table (exact for ASCII; see the module doc).
fn status(c: char) -> Status {
    match c {
        'a'..='z' | '0'..='9' | '-' | '.' => Status::Valid,
        'A'..='Z' => Status::Mapped(c.to_ascii_lowercase()),
        _ if c.is_ascii() => Status::Disallowed,
        '\u{3002}' | '\u{ff0e}' | '\u{ff61}' => Status::Mapped('.'),
        '\u{ff01}'..='\u{ff5e}' => {
            let ascii = char::from_u32(u32::from(c) - 0xfee0).unwrap_or(c);
            match status(ascii) {
                Status::Valid => Status::Mapped(ascii),
                other => other,
            }
        }
        '\u{ad}'
        | '\u{34f}'
        | '\u{180b}'..='\u{180d}'
        | '\u{200b}'
        | '\u{2060}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{feff}'
        | '\u{1bca0}'..='\u{1bca3}'
        | '\u{e0100}'..='\u{e01ef}' => Status::Ignored,
        // ZWNJ/ZWJ are deviations: valid in a non-transitional profile (checked by CONTEXTJ).
        '\u{200c}' | '\u{200d}' => Status::Valid,
        _ if !is_print(c) => Status::Disallowed,
        _ if compat_mapping(c).is_some() => compat_mapping(c).map_or(Status::Valid, Status::MappedStr),
        _ => match lower_rune(c) {
            l if l != c => Status::Mapped(l),
            _ => Status::Valid,
        },
    }
}

/// The common UTS #46 compatibility mappings that are not plain lowercasing.
fn compat_mapping(c: char) -> Option<&'static str> {
    const ROMAN: [&str; 16] =
        ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "l", "c", "d", "m"];
    const CIRCLED: [&str; 20] =
        ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20"];
    const LIGATURES: [&str; 7] = ["ff", "fi", "fl", "ffi", "ffl", "st", "st"];
    let n = u32::from(c);
    let index = |base: u32| usize::try_from(n - base).unwrap_or(0);
    Some(match n {
        0xaa => "a",
        0xb2 => "2",
        0xb3 => "3",
        0xb5 => "\u{3bc}",
        0xb9 => "1",
        0xba => "o",
        0x130 => "i\u{307}",
        0x17f => "s",
        0x1e9e => "ss",
        0x2116 => "no",
        0x2122 => "tm",
        0x2160..=0x216f => ROMAN[index(0x2160)],
        0x2170..=0x217f => ROMAN[index(0x2170)],
        0x2460..=0x2473 => CIRCLED[index(0x2460)],
        0xfb00..=0xfb06 => LIGATURES[index(0xfb00)],
        _ => return None,
    })
}

/// Go's `validateAndMap` (MapForLookup): maps runes, records the first disallowed rune,
/// and reports whether any rune is right-to-left.
fn validate_and_map(s: &str) -> (String, bool, Option<String>) {
    let mut out = String::with_capacity(s.len());
    let mut err = None;
    let mut is_bidi = false;
    for c in s.chars() {
        is_bidi = is_bidi || matches!(bidi_class(c), Bidi::R | Bidi::AL | Bidi::AN);
        match status(c) {
            Status::Valid => out.push(c),
            Status::Mapped(m) => out.push(m),
            Status::MappedStr(m) => out.push_str(m),
            Status::Ignored => {}
            Status::Disallowed => {
                err.get_or_insert_with(|| rune_error(c));
                out.push(c);
            }
        }
    }
    (out, is_bidi, err)
}

/// Go's `validateFromPunycode`: every decoded rune must be valid as is (not mapped).
fn validate_from_punycode(u: &str) -> Option<String> {
    u.chars().any(|c| !matches!(status(c), Status::Valid)).then(|| label_error(u))
}

/// Go's `validateLabel` (old revision): hyphen rules, leading combining mark, CONTEXTJ.
fn validate_label(s: &str, verify_length: bool) -> Option<String> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return verify_length.then(|| label_error(s));
    }
    if bytes.len() > 4 && bytes[2] == b'-' && bytes[3] == b'-' {
        return Some(label_error(s));
    }
    if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
        return Some(label_error(s));
    }
    if s.chars().next().is_some_and(is_combining_mark) {
        return Some(label_error(s));
    }
    if (s.contains('\u{200c}') || s.contains('\u{200d}')) && !joiners_ok(s) {
        return Some(label_error(s));
    }
    None
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Join {
    None,
    L,
    D,
    T,
    R,
    Zwj,
    Zwnj,
    Virama,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JoinState {
    Start,
    Virama,
    Before,
    BeforeVirama,
    After,
    Fail,
}

/// One step of x/net's `joinStates` table (missing entries are `Start`).
fn join_step(st: JoinState, jt: Join) -> JoinState {
    use Join as J;
    use JoinState as S;
    match (st, jt) {
        (S::Fail, _) => S::Fail,
        (S::Start, J::L | J::D) => S::Before,
        (S::Start, J::Zwnj | J::Zwj) => S::Fail,
        (S::Start, J::Virama) => S::Virama,
        (S::Virama, J::L | J::D) => S::Before,
        (S::Before, J::L | J::D | J::T) => S::Before,
        (S::Before, J::Zwnj) => S::After,
        (S::Before, J::Zwj) => S::Fail,
        (S::Before, J::Virama) => S::BeforeVirama,
        (S::BeforeVirama, J::L | J::D | J::T) => S::Before,
        (S::After, J::L | J::Zwnj | J::Zwj) => S::Fail,
        (S::After, J::D) => S::Before,
        (S::After, J::T | J::Virama) => S::After,
        _ => S::Start,
    }
}

/// CONTEXTJ (RFC 5892 appendix A.1/A.2) as x/net's state machine runs it.
fn joiners_ok(s: &str) -> bool {
    let mut st = JoinState::Start;
    for c in s.chars() {
        let jt = match c {
            '\u{200d}' => Join::Zwj,
            '\u{200c}' => Join::Zwnj,
            _ => joining_type(c),
        };
        st = join_step(st, jt);
        if is_virama(c) {
            st = join_step(st, Join::Virama);
        }
    }
    st != JoinState::Fail && st != JoinState::After
}

fn joining_type(c: char) -> Join {
    let n = u32::from(c);
    if is_combining_mark(c) {
        return Join::T;
    }
    match n {
        0xa872 | 0x10acd | 0x10ad7 => Join::L,
        0x622..=0x625
        | 0x627
        | 0x629
        | 0x62f..=0x632
        | 0x648
        | 0x671..=0x673
        | 0x675..=0x677
        | 0x688..=0x699
        | 0x6c0
        | 0x6c3..=0x6cb
        | 0x6cd
        | 0x6cf
        | 0x6d2
        | 0x6d3
        | 0x6d5
        | 0x6ee
        | 0x6ef => Join::R,
        0x620..=0x64a | 0x66e..=0x6d3 | 0x6fa..=0x6ff | 0x712..=0x72f | 0x74d..=0x77f | 0x7ca..=0x7ea => Join::D,
        _ => Join::None,
    }
}

fn is_virama(c: char) -> bool {
    matches!(
        u32::from(c),
        0x94d
            | 0x9cd
            | 0xa4d
            | 0xacd
            | 0xb4d
            | 0xbcd
            | 0xc4d
            | 0xccd
            | 0xd3b
            | 0xd3c
            | 0xd4d
            | 0xdca
            | 0xe3a
            | 0xeba
            | 0xf84
            | 0x1039
            | 0x103a
            | 0x1714
            | 0x1734
            | 0x17d2
            | 0x1a60
            | 0x1b44
            | 0x1baa
            | 0x1bab
            | 0x1bf2
            | 0x1bf3
            | 0x2d7f
            | 0xa806
            | 0xa8c4
            | 0xa953
            | 0xa9c0
            | 0xaaf6
            | 0xabed
    )
}

/// General category M (Mn, Mc, Me), approximated by the main combining blocks.
fn is_combining_mark(c: char) -> bool {
    matches!(
        u32::from(c),
        0x300..=0x36f
            | 0x483..=0x489
            | 0x591..=0x5bd
            | 0x5bf
            | 0x5c1..=0x5c2
            | 0x5c4..=0x5c5
            | 0x5c7
            | 0x610..=0x61a
            | 0x64b..=0x65f
            | 0x670
            | 0x6d6..=0x6dc
            | 0x6df..=0x6e4
            | 0x6e7..=0x6e8
            | 0x6ea..=0x6ed
            | 0x711
            | 0x730..=0x74a
            | 0x7a6..=0x7b0
            | 0x7eb..=0x7f3
            | 0x816..=0x82d
            | 0x859..=0x85b
            | 0x8d3..=0x8e1
            | 0x8e3..=0x903
            | 0x93a..=0x93c
            | 0x93e..=0x94f
            | 0x951..=0x957
            | 0x962..=0x963
            | 0x1ab0..=0x1aff
            | 0x1dc0..=0x1dff
            | 0x20d0..=0x20ff
            | 0xfe20..=0xfe2f
    )
}

/// The Bidi classes RFC 5893 distinguishes.
#[derive(Clone, Copy, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
enum Bidi {
    L,
    R,
    AL,
    AN,
    EN,
    ES,
    CS,
    ET,
    ON,
    BN,
    NSM,
    Other,
}

/// Approximate `bidi.Lookup` class (exact for ASCII).
fn bidi_class(c: char) -> Bidi {
    let n = u32::from(c);
    if c.is_ascii() {
        return ascii_bidi(c);
    }
    if is_combining_mark(c) {
        return Bidi::NSM;
    }
    match n {
        0x600..=0x605 | 0x660..=0x669 | 0x66b..=0x66c | 0x6dd | 0x8e2 | 0x10e60..=0x10e7e => Bidi::AN,
        0x6f0..=0x6f9 | 0xb2 | 0xb3 | 0xb9 | 0x2070..=0x2079 | 0x2080..=0x2089 => Bidi::EN,
        0x590..=0x5ff | 0x7c0..=0x85f | 0xfb1d..=0xfb4f | 0x10800..=0x10fff | 0x1e800..=0x1edff => Bidi::R,
        0x608
        | 0x60b
        | 0x60d
        | 0x61b..=0x64a
        | 0x66d..=0x6d5
        | 0x6e5..=0x6e6
        | 0x6ee..=0x6ff
        | 0x700..=0x7bf
        | 0x860..=0x8ff
        | 0xfb50..=0xfdff
        | 0xfe70..=0xfefe
        | 0x1ee00..=0x1eeff => Bidi::AL,
        0xa0 | 0x60c | 0x202f | 0x2044 | 0xfe50 | 0xfe52 | 0xfe55 | 0xff0c | 0xff0e | 0xff1a => Bidi::CS,
        0xa2..=0xa5 | 0xb0 | 0xb1 | 0x609 | 0x60a | 0x66a | 0x2030..=0x2034 | 0x20a0..=0x20cf => Bidi::ET,
        0xad | 0x200b..=0x200d | 0x2060..=0x2064 | 0xfeff | 0x80..=0x9f => Bidi::BN,
        _ if !is_print(c) => Bidi::Other,
        _ if c.is_alphanumeric() => Bidi::L,
        _ => Bidi::ON,
    }
}

fn ascii_bidi(c: char) -> Bidi {
    match c {
        'a'..='z' | 'A'..='Z' => Bidi::L,
        '0'..='9' => Bidi::EN,
        '+' | '-' => Bidi::ES,
        ',' | '.' | '/' | ':' => Bidi::CS,
        '#' | '$' | '%' => Bidi::ET,
        '\u{0}'..='\u{8}' | '\u{e}'..='\u{1b}' | '\u{7f}' => Bidi::BN,
        '\t' | '\n' | '\u{b}'..='\u{d}' | '\u{1c}'..='\u{20}' => Bidi::Other,
        _ => Bidi::ON,
    }
}

/// `bidirule.DirectionString(s) == RightToLeft` (equivalently `!= LeftToRight`): any R, AL or
/// AN rune.
fn has_rtl(s: &str) -> bool {
    s.chars().any(|c| matches!(bidi_class(c), Bidi::R | Bidi::AL | Bidi::AN))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    Initial,
    Ltr,
    LtrFinal,
    Rtl,
    RtlFinal,
    Invalid,
}

/// `bidirule.ValidString` (RFC 5893 section 2) as x/text's state machine runs it.
fn bidi_rule_ok(label: &str) -> bool {
    let mut st = Rule::Initial;
    let (mut seen_en, mut seen_an, mut seen_rtl) = (false, false, false);
    for c in label.chars() {
        let class = bidi_class(c);
        seen_en |= class == Bidi::EN;
        seen_an |= class == Bidi::AN;
        seen_rtl |= matches!(class, Bidi::R | Bidi::AL | Bidi::AN);
        if seen_en && seen_an {
            return false;
        }
        st = bidi_step(st, class);
        if st == Rule::Invalid && seen_rtl {
            return false;
        }
    }
    matches!(st, Rule::Initial | Rule::LtrFinal | Rule::RtlFinal)
}

fn bidi_step(st: Rule, class: Bidi) -> Rule {
    use Bidi::*;
    let neutral = matches!(class, ES | CS | ET | ON | BN);
    match st {
        Rule::Initial => match class {
            L => Rule::LtrFinal,
            R | AL => Rule::RtlFinal,
            _ => Rule::Invalid,
        },
        Rule::Rtl | Rule::RtlFinal => match class {
            R | AL | EN | AN => Rule::RtlFinal,
            NSM if st == Rule::RtlFinal => Rule::RtlFinal,
            NSM => Rule::Rtl,
            _ if neutral => Rule::Rtl,
            _ => Rule::Invalid,
        },
        Rule::Ltr | Rule::LtrFinal => match class {
            L | EN => Rule::LtrFinal,
            NSM if st == Rule::LtrFinal => Rule::LtrFinal,
            NSM => Rule::Ltr,
            _ if neutral => Rule::Ltr,
            _ => Rule::Invalid,
        },
        Rule::Invalid => Rule::Invalid,
    }
}

const BASE: i32 = 36;
const DAMP: i32 = 700;
const INITIAL_BIAS: i32 = 72;
const INITIAL_N: i32 = 128;
const SKEW: i32 = 38;
const TMAX: i32 = 26;
const TMIN: i32 = 1;

/// x/net's punycode `decode` (RFC 3492); errors are `idna: invalid label "<encoded>"`.
fn decode_punycode(encoded: &str) -> Result<String, String> {
    let err = || label_error(encoded);
    if encoded.is_empty() {
        return Ok(String::new());
    }
    let bytes = encoded.as_bytes();
    let pos = encoded.rfind('-').map_or(0, |i| i + 1);
    if pos == 1 {
        return Err(err());
    }
    if pos == bytes.len() {
        return Ok(encoded[..bytes.len() - 1].to_string());
    }
    let mut output: Vec<i32> = match pos {
        0 => Vec::new(),
        _ => encoded[..pos - 1].chars().map(|c| c as i32).collect(),
    };
    let (mut i, mut n, mut bias) = (0i32, INITIAL_N, INITIAL_BIAS);
    let mut pos = pos;
    while pos < bytes.len() {
        let (old_i, mut w) = (i, 1i32);
        let mut k = BASE;
        loop {
            let digit = bytes.get(pos).and_then(|&b| decode_digit(b)).ok_or_else(err)?;
            pos += 1;
            i = i.checked_add(digit * w).ok_or_else(err)?;
            let t = (k - bias).clamp(TMIN, TMAX);
            if digit < t {
                break;
            }
            w = w.checked_mul(BASE - t).ok_or_else(err)?;
            if w >= i32::MAX / BASE {
                return Err(err());
            }
            k += BASE;
        }
        let x = i32::try_from(output.len() + 1).map_err(|_| err())?;
        bias = adapt(i - old_i, x, old_i == 0);
        n = n.wrapping_add(i / x);
        i %= x;
        if n > 0x10ffff || output.len() >= 1024 {
            return Err(err());
        }
        output.insert(usize::try_from(i).map_err(|_| err())?, n);
        i += 1;
    }
    Ok(output.into_iter().map(|r| u32::try_from(r).ok().and_then(char::from_u32).unwrap_or('\u{fffd}')).collect())
}

fn decode_digit(b: u8) -> Option<i32> {
    match b {
        b'0'..=b'9' => Some(i32::from(b - b'0') + 26),
        b'A'..=b'Z' => Some(i32::from(b - b'A')),
        b'a'..=b'z' => Some(i32::from(b - b'a')),
        _ => None,
    }
}

fn adapt(delta: i32, num_points: i32, first_time: bool) -> i32 {
    let mut delta = if first_time { delta / DAMP } else { delta / 2 };
    delta += delta / num_points;
    let mut k = 0;
    while delta > ((BASE - TMIN) * TMAX) / 2 {
        delta /= BASE - TMIN;
        k += BASE;
    }
    k + (BASE - TMIN + 1) * delta / (delta + SKEW)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dns_err(s: &str) -> String {
        to_dns_name(s).unwrap_err()
    }

    #[test]
    fn ascii_names_come_back_unchanged() {
        for s in ["foo.bar.baz", "foo.Bar.baz.", "istio.io", "www.istio.io", "a", "A-B.c-d", "1.2.3.4", "a b"] {
            assert_eq!(to_dns_name(s).unwrap(), s, "{s}");
        }
        assert_eq!(to_dns_name("a..").unwrap(), "a..", "Go's label iterator skips a trailing empty pair");
    }

    #[test]
    fn go_does_not_check_lengths_or_underscores_in_to_unicode() {
        let long_label = "a".repeat(64);
        assert_eq!(to_dns_name(&long_label).unwrap(), long_label);
        let long_name = vec!["a".repeat(60); 5].join(".");
        assert_eq!(to_dns_name(&long_name).unwrap(), long_name);
        assert_eq!(to_dns_name("_srv.a_b.com").unwrap(), "_srv.a_b.com");
    }

    #[test]
    fn empty_labels() {
        assert_eq!(dns_err(""), r#"idna: invalid label """#);
        assert_eq!(dns_err("."), r#"idna: invalid label ".""#);
        assert_eq!(dns_err(".."), r#"idna: invalid label "..""#);
        assert_eq!(dns_err("a..b"), r#"idna: invalid label "a..b""#);
        assert_eq!(dns_err(".a"), r#"idna: invalid label ".a""#);
        assert_eq!(dns_err("xn--.a"), r#"idna: invalid label """#);
    }

    #[test]
    fn hyphen_rules() {
        assert_eq!(dns_err("-foo.-bar"), r#"idna: invalid label "-foo""#);
        assert_eq!(dns_err("foo-.bar"), r#"idna: invalid label "foo-""#);
        assert_eq!(dns_err("ok.bar-"), r#"idna: invalid label "bar-""#);
        assert_eq!(dns_err("r3---sn-abc.example"), r#"idna: invalid label "r3---sn-abc""#);
        assert_eq!(dns_err("ab--"), r#"idna: invalid label "ab--""#);
        assert!(to_dns_name("a--b").is_ok(), "the -- rule needs a label longer than 4");
        assert!(to_dns_name("abc--d").is_ok());
    }

    #[test]
    fn punycode_labels_decode() {
        assert_eq!(to_dns_name("xn--bcher-kva.example").unwrap(), "bücher.example");
        assert_eq!(to_dns_name("xn--nxasmm1c.com").unwrap(), "βόλος.com");
        assert_eq!(to_dns_name("xn--wgv71a119e.jp").unwrap(), "日本語.jp");
        assert_eq!(to_dns_name("xn--abc-.com").unwrap(), "abc.com");
        assert_eq!(to_dns_name("xn--bcher-KVA.example").unwrap(), "bücher.example", "digits are case-insensitive");
        // The prefix is case-sensitive, so this is an ordinary label failing the `--` rule.
        assert_eq!(dns_err("XN--bcher-kva.example"), r#"idna: invalid label "XN--bcher-kva""#);
    }

    #[test]
    fn bad_punycode() {
        assert_eq!(dns_err("xn---abc.com"), r#"idna: invalid label "-abc""#);
        assert_eq!(dns_err("xn--a!b.com"), r#"idna: invalid label "a!b""#);
        assert_eq!(dns_err("xn--99999999999.com"), r#"idna: invalid label "99999999999""#);
        // Decoded runes must be valid as they stand: an upper-case basic part is "mapped".
        assert_eq!(dns_err("xn--Bcher-kva.example"), r#"idna: invalid label "Bücher""#);
        assert_eq!(dns_err("xn--a_b-.example"), r#"idna: invalid label "a_b""#);
    }

    #[test]
    fn leading_combining_mark() {
        assert_eq!(dns_err("\u{301}a.com"), "idna: invalid label \"\u{301}a\"");
    }

    #[test]
    fn joiners() {
        assert!(to_dns_name("a\u{200d}b").is_err());
        assert!(to_dns_name("\u{200c}").is_err());
        assert!(to_dns_name("\u{915}\u{94d}\u{200d}").is_ok(), "ZWJ after a virama");
        assert!(to_dns_name("\u{628}\u{200c}\u{628}").is_ok(), "ZWNJ between dual-joining letters");
    }

    #[test]
    fn bidi_rule() {
        assert!(to_dns_name("\u{5d0}\u{5d1}.com").is_ok());
        assert!(to_dns_name("\u{627}\u{644}1.com").is_ok());
        assert_eq!(dns_err("1\u{5d0}.com"), "idna: invalid label \"1\u{5d0}.com\"");
        assert_eq!(dns_err("\u{5d0}a.com"), "idna: invalid label \"\u{5d0}a.com\"");
        assert_eq!(dns_err("\u{5d0}.123"), "idna: invalid label \"\u{5d0}.123\"");
        assert_eq!(dns_err("\u{627}1\u{661}.com"), "idna: invalid label \"\u{627}1\u{661}.com\"");
        assert!(to_dns_name("123.com").is_ok(), "no RTL rune, no Bidi rule");
    }

    #[test]
    fn equality_maps_case_and_trailing_dot() {
        assert!(dns_name_equal("foo.bar.baz", "foo.Bar.baz.").unwrap());
        assert!(dns_name_equal("foo.bar.com", "fOO.bar.com").unwrap());
        assert!(!dns_name_equal("foo.bar.com", "bar.foo.com").unwrap());
        assert!(dns_name_equal("a.", "a.").unwrap());
        assert!(dns_name_equal("xn--bcher-kva.com", "BÜCHER.com").unwrap());
        assert!(dns_name_equal("ＡＢＣ。com", "abc.com").unwrap());
        assert!(dns_name_equal("a\u{ad}b.com", "ab.com").unwrap());
        assert!(!dns_name_equal("foo.com..", "foo.com").unwrap());
        assert!(!dns_name_equal("İ.com", "i.com").unwrap(), "U+0130 maps to i + U+0307");
        // Expected values below come from x/net/idna itself (MapForLookup + BidiRule).
        let mapped = |s: &str| process(s, Profile::Lookup).unwrap();
        assert_eq!(mapped("ẞ.de"), "ss.de");
        assert_eq!(mapped("straße.de"), "straße.de");
        assert_eq!(mapped("ǅ"), "ǆ");
        assert_eq!(mapped("ﬁ.com"), "fi.com");
        assert_eq!(mapped("Ⅻ.com"), "xii.com");
        assert_eq!(mapped("①.com"), "1.com");
        assert_eq!(mapped("Σ.gr"), "σ.gr");
        assert_eq!(mapped("ς.gr"), "ς.gr");
        assert_eq!(mapped("x\u{200b}x"), "xx");
        assert_eq!(mapped("\u{feff}a"), "a");
        assert_eq!(mapped("..."), "...");
        assert_eq!(mapped("xn--ls8h.la"), "💩.la");
        assert_eq!(mapped("xn--i-7iq.ws"), "i❤.ws");
        assert_eq!(
            mapped("xn--4gbrim.xn----ymcbaaajlc6dj7bxne2c.xn--wgbh1c"),
            "\u{645}\u{648}\u{642}\u{639}.\u{648}\u{632}\u{627}\u{631}\u{629}-\u{627}\u{644}\u{627}\u{62a}\u{635}\u{627}\u{644}\u{627}\u{62a}.\u{645}\u{635}\u{631}"
        );
        assert_eq!(dns_name_equal("a\u{2028}b", "a").unwrap_err(), "idna: disallowed rune U+2028");
        assert_eq!(dns_name_equal("\u{a0}", "a").unwrap_err(), "idna: disallowed rune U+00A0");
        assert_eq!(dns_name_equal("a\u{e000}", "a").unwrap_err(), "idna: disallowed rune U+E000");
        assert_eq!(dns_name_equal("xn--9", "a").unwrap_err(), r#"idna: invalid label "9""#);
        assert_eq!(dns_name_equal("xn--İx", "a").unwrap_err(), "idna: invalid label \"i\u{307}x\"");
    }

    #[test]
    fn equality_errors() {
        assert_eq!(dns_name_equal("a_b.com", "a.com").unwrap_err(), "idna: disallowed rune U+005F");
        assert_eq!(dns_name_equal("a.com", "a b").unwrap_err(), "idna: disallowed rune U+0020");
        assert_eq!(dns_name_equal("-a.com", "a.com").unwrap_err(), r#"idna: invalid label "-a""#);
        assert_eq!(dns_name_equal("a\u{0}", "a").unwrap_err(), "idna: disallowed rune U+0000");
        assert_eq!(dns_name_equal("a＿b", "a").unwrap_err(), "idna: disallowed rune U+FF3F");
        assert_eq!(dns_name_equal("", "a").unwrap_err(), "runtime error: index out of range [-1]");
        assert!(dns_name_equal("a..b", "a..b").unwrap(), "lookup profile allows empty labels");
    }

    #[test]
    fn punycode_round_trip_vectors() {
        // RFC 3492 section 7.1 samples (the ASCII-compatible parts, lowercased by decode input).
        assert_eq!(decode_punycode("egbpdaj6bu4bxfgehfvwxn").unwrap().chars().count(), 17);
        assert_eq!(decode_punycode("ihqwcrb4cv8a8dqg056pqjye").unwrap(), "他们为什么不说中文");
        assert_eq!(decode_punycode("3B-ww4c5e180e575a65lsy2b").unwrap(), "3年B組金八先生");
        assert_eq!(decode_punycode("-> $1.00 <--").unwrap(), "-> $1.00 <-");
    }

    #[test]
    fn never_panics() {
        for s in ["xn--", "xn--.", "xn--a", "xn--zzzzzzzzzzzzzzzzzzzzzz", "xn--9", "é..", "\u{200d}", "..."] {
            let _ = to_dns_name(s);
            let _ = dns_name_equal(s, s);
        }
    }
}
