//! Go's regular-expression grammar read the way Go's parser reads it and written out in the
//! `regex` crate's syntax.
//!
//! The walk follows `parse` in Go's `src/regexp/syntax/parse.go` with the `Perl` flags that
//! `regexp.Compile` (and so Mixer's `matches`) uses, token by token, so that a pattern is
//! accepted or rejected as Go decides, with Go's error code and offending text. What the two
//! dialects spell or read differently is rewritten:
//!
//! - literals other than ASCII letters and digits become `\x{..}`, so Go's escapes (`\Q..\E`,
//!   octal `\123`, `\x7F`, `\<`, any escaped punctuation) never meet a `regex` crate meaning;
//! - `\d \s \w`, `[:alpha:]` and the other Perl and POSIX classes become the ASCII ranges Go
//!   gives them (the `regex` crate's are Unicode), `\b \B` the crate's ASCII `(?-u:\b)`;
//! - `\pL`, `\p{Greek}`, `\P..`, `\p{^..}` are checked against Go's names and written as
//!   `\p{gc=L}` / `\p{sc=Greek}`;
//! - `(?P<name>` becomes a plain group (Go accepts names the crate does not, e.g. `1a`), flag
//!   groups are written with each flag once (`(?i-i)` is Go's "i off");
//! - a `{` that does not start a repetition is a literal, as in Go.
//!
//! Matching is then the `regex` crate's, which agrees with Go's RE2 on what matches (both are
//! leftmost-first, with simple case folding under `(?i)`; `is_match` is all CEXL asks).

use super::class::{push_literal, ClassBody, NOTHING};
use super::names::{perl_group, posix_group, unicode_class};

/// A pattern Go's parser rejects: its `ErrorCode` text and the offending part of the pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoError {
    pub code: &'static str,
    pub expr: String,
}

impl std::fmt::Display for GoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error parsing regexp: {}: `{}`", self.code, self.expr)
    }
}

fn err(code: &'static str, expr: &str) -> GoError {
    GoError { code, expr: expr.to_string() }
}

// Go's `ErrorCode`s (parse.go).
const INVALID_CHAR_RANGE: &str = "invalid character class range";
const INVALID_ESCAPE: &str = "invalid escape sequence";
const INVALID_NAMED_CAPTURE: &str = "invalid named capture";
const INVALID_PERL_OP: &str = "invalid or unsupported Perl syntax";
const INVALID_REPEAT_OP: &str = "invalid nested repetition operator";
const INVALID_REPEAT_SIZE: &str = "invalid repeat count";
const MISSING_BRACKET: &str = "missing closing ]";
const MISSING_PAREN: &str = "missing closing )";
const MISSING_REPEAT_ARGUMENT: &str = "missing argument to repetition operator";
const TRAILING_BACKSLASH: &str = "trailing backslash at end of expression";
const UNEXPECTED_PAREN: &str = "unexpected )";

/// Go's limit on a count, and on the product of nested counts (`repeatIsValid`).
const MAX_REPEAT: i64 = 1000;

/// Translates a Go pattern into the `regex` crate's syntax, or says why Go rejects it.
pub fn translate(src: &str) -> Result<String, GoError> {
    let mut t = Translator {
        src,
        out: String::with_capacity(src.len() * 2),
        groups: Vec::new(),
        level_copies: vec![1],
        top: None,
        pending_flags: String::new(),
    };
    t.run()?;
    Ok(t.out)
}

/// The last thing written that a repetition operator would apply to (Go's stack top).
struct Top {
    /// Where it starts in the output.
    start: usize,
    /// The most copies of anything in it that nested counted repetitions make (`a{2}` 2,
    /// `(a{2}){3}` 6), for Go's limit of 1,000.
    copies: i64,
    /// Whether it needs `(?:..)` before a repetition applies to it: assertions (`^*`) and
    /// what is already repeated (`a*(?i)*`, which Go reads as `(a*)*`).
    wrap: bool,
}

struct Translator<'a> {
    src: &'a str,
    out: String,
    /// Output offsets of the open groups.
    groups: Vec<usize>,
    /// Per open group (and the whole pattern), the most copies among its finished items.
    level_copies: Vec<i64>,
    top: Option<Top>,
    /// A flag group such as `(?i)` changes no stack in Go, so `a(?i)*` repeats `a`; it is
    /// written just before the next item instead, after any repetition operator.
    pending_flags: String,
}

impl<'a> Translator<'a> {
    fn rest(&self, i: usize) -> &'a str {
        self.src.get(i..).unwrap_or("")
    }

    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.src.get(from..to).unwrap_or("")
    }

    fn run(&mut self) -> Result<(), GoError> {
        let mut i = 0;
        // Where the repetition operator just before starts, for Go's `a**` error.
        let mut last_repeat = None;
        while let Some(c) = self.rest(i).chars().next() {
            let mut repeat = None;
            i = match c {
                '(' if self.rest(i).starts_with("(?") => self.perl_group(i)?,
                '(' => {
                    self.open_group("(");
                    i + 1
                }
                '|' => {
                    self.end_item();
                    self.out.push('|');
                    i + 1
                }
                ')' => {
                    self.close_group()?;
                    i + 1
                }
                '^' | '$' => {
                    self.item(if c == '^' { "^" } else { "$" }, true);
                    i + 1
                }
                '.' => {
                    self.item(".", false);
                    i + 1
                }
                '[' => self.class(i)?,
                '*' | '+' | '?' => {
                    repeat = Some(i);
                    self.repeat(i, i + 1, None, last_repeat)?
                }
                '{' => match parse_repeat(self.rest(i)) {
                    Some((min, max, len)) => {
                        repeat = Some(i);
                        self.repeat(i, i + len, Some((min, max)), last_repeat)?
                    }
                    // Not `{n}`, `{n,}` or `{n,m}`: Go reads the `{` as a literal.
                    None => {
                        self.literal(u32::from('{'));
                        i + 1
                    }
                },
                '\\' => self.escape(i)?,
                _ => {
                    self.literal(u32::from(c));
                    i + c.len_utf8()
                }
            };
            last_repeat = repeat;
        }
        if !self.groups.is_empty() {
            return Err(err(MISSING_PAREN, self.src));
        }
        self.end_item();
        Ok(())
    }

    /// Ends the current item: its copies count for its group, pending flags are written.
    fn end_item(&mut self) {
        if let Some(top) = self.top.take() {
            if let Some(level) = self.level_copies.last_mut() {
                *level = (*level).max(top.copies);
            }
        }
        self.out.push_str(&self.pending_flags);
        self.pending_flags.clear();
    }

    /// Writes a new item that a repetition may apply to.
    fn item(&mut self, text: &str, wrap: bool) {
        self.end_item();
        let start = self.out.len();
        self.out.push_str(text);
        self.top = Some(Top { start, copies: 1, wrap });
    }

    fn literal(&mut self, c: u32) {
        self.end_item();
        let start = self.out.len();
        if char::from_u32(c).is_some() {
            push_literal(&mut self.out, c);
        } else {
            // A surrogate (`\x{D800}`): Go accepts it, and no decoded string contains one.
            self.out.push_str(NOTHING);
        }
        self.top = Some(Top { start, copies: 1, wrap: false });
    }

    fn class_item(&mut self, body: ClassBody, negated: bool) {
        self.end_item();
        let start = self.out.len();
        body.finish(&mut self.out, negated);
        self.top = Some(Top { start, copies: 1, wrap: false });
    }

    fn open_group(&mut self, opening: &str) {
        self.end_item();
        self.groups.push(self.out.len());
        self.out.push_str(opening);
        self.level_copies.push(1);
    }

    fn close_group(&mut self) -> Result<(), GoError> {
        let Some(start) = self.groups.pop() else {
            return Err(err(UNEXPECTED_PAREN, self.src));
        };
        self.end_item();
        let copies = self.level_copies.pop().unwrap_or(1);
        self.out.push(')');
        self.top = Some(Top { start, copies, wrap: false });
        Ok(())
    }

    /// `*`, `+`, `?` or a counted repetition between `op` and `op_end`; Go's `repeat`, with its
    /// checks in its order. Returns where parsing goes on.
    fn repeat(
        &mut self,
        op: usize,
        op_end: usize,
        counted: Option<(i64, i64)>,
        last_repeat: Option<usize>,
    ) -> Result<usize, GoError> {
        if let Some((min, max)) = counted {
            if !(0..=MAX_REPEAT).contains(&min) || max > MAX_REPEAT || (max >= 0 && min > max) {
                return Err(err(INVALID_REPEAT_SIZE, self.slice(op, op_end)));
            }
        }
        let lazy = self.rest(op_end).starts_with('?');
        let after = op_end + usize::from(lazy);
        if let Some(previous) = last_repeat {
            return Err(err(INVALID_REPEAT_OP, self.slice(previous, after)));
        }
        let Some(top) = self.top.take() else {
            return Err(err(MISSING_REPEAT_ARGUMENT, self.slice(op, after)));
        };
        let copies = match counted {
            None => top.copies,
            Some((min, max)) => {
                let m = if max < 0 { min } else { max };
                if (min >= 2 || max >= 2) && m != 0 && m.saturating_mul(top.copies) > MAX_REPEAT {
                    return Err(err(INVALID_REPEAT_SIZE, self.slice(op, after)));
                }
                // Go's check stops at a zero count: what it repeats no times is not counted.
                if m == 0 {
                    1
                } else {
                    m.saturating_mul(top.copies)
                }
            }
        };
        if top.wrap {
            self.out.insert_str(top.start, "(?:");
            self.out.push(')');
        }
        self.out.push_str(self.slice(op, after));
        self.top = Some(Top { start: top.start, copies, wrap: true });
        Ok(after)
    }

    /// `(?` at `i`: a named group, a non-capturing group or flags (Go's `parsePerlFlags`).
    fn perl_group(&mut self, i: usize) -> Result<usize, GoError> {
        let t = self.rest(i);
        if t.len() > 4 && t.starts_with("(?P<") {
            let Some(end) = t.find('>') else {
                return Err(err(INVALID_NAMED_CAPTURE, t));
            };
            let name = t.get(4..end).unwrap_or("");
            if name.is_empty() || !name.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric()) {
                return Err(err(INVALID_NAMED_CAPTURE, t.get(..=end).unwrap_or(t)));
            }
            // Names do not change what matches; the crate's rules for them are stricter.
            self.open_group("(");
            return Ok(i + end + 1);
        }
        // Flags i, m, s, U; after `-` they are turned off; the last word on a flag wins.
        let mut flags: [(char, Option<bool>); 4] = [('i', None), ('m', None), ('s', None), ('U', None)];
        let mut negated = false;
        let mut saw_flag = false;
        let mut j = i + 2;
        while let Some(c) = self.rest(j).chars().next() {
            j += c.len_utf8();
            match c {
                'i' | 'm' | 's' | 'U' => {
                    if let Some(slot) = flags.iter_mut().find(|(f, _)| *f == c) {
                        slot.1 = Some(!negated);
                    }
                    saw_flag = true;
                }
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                }
                // `(?-)`, `(?i-)`: a `-` must turn some flag off.
                ':' | ')' if !negated || saw_flag => {
                    let on: String = flags.iter().filter(|(_, v)| *v == Some(true)).map(|(f, _)| *f).collect();
                    let off: String = flags.iter().filter(|(_, v)| *v == Some(false)).map(|(f, _)| *f).collect();
                    let mut text = on;
                    if !off.is_empty() {
                        text.push('-');
                        text.push_str(&off);
                    }
                    if c == ':' {
                        self.open_group(&format!("(?{text}:"));
                    } else if !text.is_empty() {
                        self.pending_flags.push_str(&format!("(?{text})"));
                    }
                    return Ok(j);
                }
                _ => break,
            }
        }
        Err(err(INVALID_PERL_OP, self.slice(i, j)))
    }

    /// A backslash at `i` outside brackets.
    fn escape(&mut self, i: usize) -> Result<usize, GoError> {
        let Some(c) = self.rest(i + 1).chars().next() else {
            return Err(err(TRAILING_BACKSLASH, ""));
        };
        match c {
            'A' => self.item(r"\A", true),
            'z' => self.item(r"\z", true),
            // Go's word boundaries are ASCII; the crate's `\b` is Unicode.
            'b' => self.item(r"(?-u:\b)", false),
            'B' => self.item(r"(?-u:\B)", false),
            'C' => return Err(err(INVALID_ESCAPE, r"\C")),
            'Q' => {
                // Literal text up to `\E` or the end; each character its own item, as in Go
                // (`\Qab\E*` repeats the `b`).
                let from = i + 2;
                let (text, next) = match self.rest(from).find(r"\E") {
                    Some(k) => (self.slice(from, from + k), from + k + 2),
                    None => (self.rest(from), self.src.len()),
                };
                text.chars().for_each(|ch| self.literal(u32::from(ch)));
                return Ok(next);
            }
            'p' | 'P' => {
                let mut body = ClassBody::default();
                let next = self.unicode_class(i, &mut body)?;
                self.class_item(body, false);
                return Ok(next);
            }
            _ => match perl_group(c) {
                Some((ranges, negated)) => {
                    let mut body = ClassBody::default();
                    body.ascii_group(ranges, false);
                    self.class_item(body, negated);
                }
                None => {
                    let (code_point, len) = parse_escape(self.rest(i))?;
                    self.literal(code_point);
                    return Ok(i + len);
                }
            },
        }
        Ok(i + 2)
    }

    /// `\p..` or `\P..` at `i` (Go 1.13's `parseUnicodeClass`): one-letter name or `{name}`,
    /// `^` before the name negates.
    fn unicode_class(&self, i: usize, body: &mut ClassBody) -> Result<usize, GoError> {
        let mut negated = self.rest(i).starts_with("\\P");
        let name_at = i + 2;
        let (end, name) = match self.rest(name_at).chars().next() {
            Some('{') => match self.rest(i).find('}') {
                Some(k) => (i + k + 1, self.slice(name_at + 1, i + k)),
                None => return Err(err(INVALID_CHAR_RANGE, self.rest(i))),
            },
            Some(c) => (name_at + c.len_utf8(), self.slice(name_at, name_at + c.len_utf8())),
            None => (name_at, ""),
        };
        let name = match name.strip_prefix('^') {
            Some(n) => {
                negated = !negated;
                n
            }
            None => name,
        };
        let class = unicode_class(name).ok_or_else(|| err(INVALID_CHAR_RANGE, self.slice(i, end)))?;
        body.unicode(class, negated);
        Ok(end)
    }

    /// A bracket expression at `i` (Go's `parseClass`).
    fn class(&mut self, i: usize) -> Result<usize, GoError> {
        let whole = self.rest(i);
        let mut t = i + 1;
        let negated = self.rest(t).starts_with('^');
        t += usize::from(negated);
        let mut body = ClassBody::default();
        // `]` (and `-`) right after the opening bracket are literals.
        let mut first = true;
        loop {
            let rest = self.rest(t);
            if rest.starts_with(']') && !first {
                break;
            }
            first = false;
            if rest.len() > 2 && rest.starts_with("[:") {
                if let Some(k) = rest.get(2..).and_then(|r| r.find(":]")) {
                    let name = rest.get(..k + 4).unwrap_or(rest);
                    let (ranges, neg) = posix_group(name).ok_or_else(|| err(INVALID_CHAR_RANGE, name))?;
                    body.ascii_group(ranges, neg);
                    t += name.len();
                    continue;
                }
            }
            if rest.starts_with("\\p") || rest.starts_with("\\P") {
                t = self.unicode_class(t, &mut body)?;
                continue;
            }
            if let Some((ranges, neg)) = rest.strip_prefix('\\').and_then(|r| r.chars().next()).and_then(perl_group) {
                body.ascii_group(ranges, neg);
                t += 2;
                continue;
            }
            let range_at = t;
            let (lo, len) = class_char(rest, whole)?;
            t += len;
            let mut hi = lo;
            let after = self.rest(t);
            // `[a-]` is `a` and `-`.
            if after.len() >= 2 && after.starts_with('-') && !after.get(1..).unwrap_or("").starts_with(']') {
                t += 1;
                let (h, len) = class_char(self.rest(t), whole)?;
                t += len;
                hi = h;
                if hi < lo {
                    return Err(err(INVALID_CHAR_RANGE, self.slice(range_at, t)));
                }
            }
            body.range(lo, hi);
        }
        self.class_item(body, negated);
        Ok(t + 1)
    }
}

/// One character of a bracket expression (Go's `parseClassChar`): code point and length.
fn class_char(rest: &str, whole_class: &str) -> Result<(u32, usize), GoError> {
    match rest.chars().next() {
        None => Err(err(MISSING_BRACKET, whole_class)),
        Some('\\') => parse_escape(rest),
        Some(c) => Ok((u32::from(c), c.len_utf8())),
    }
}

/// A single-character escape at the start of `s` (Go's `parseEscape`): code point and length.
fn parse_escape(s: &str) -> Result<(u32, usize), GoError> {
    let mut chars = s.chars().skip(1);
    let Some(c) = chars.next() else {
        return Err(err(TRAILING_BACKSLASH, ""));
    };
    let mut used = 1 + c.len_utf8();
    let bad = |used: usize| err(INVALID_ESCAPE, s.get(..used).unwrap_or(s));
    let octal_at = |k: usize| s.as_bytes().get(k).filter(|b| (b'0'..=b'7').contains(*b)).map(|b| u32::from(b - b'0'));
    let code_point = match c {
        // Octal: `\0` and up to two more digits, or a digit 1-7 followed by an octal digit
        // (a lone `\1` would be a backreference, which Go does not support).
        '0'..='7' => {
            if c != '0' && octal_at(used).is_none() {
                return Err(bad(used));
            }
            let mut r = u32::from(c) - u32::from('0');
            for _ in 1..3 {
                let Some(d) = octal_at(used) else { break };
                r = r * 8 + d;
                used += 1;
            }
            r
        }
        'x' => {
            let Some(c2) = chars.next() else { return Err(bad(used)) };
            used += c2.len_utf8();
            if c2 == '{' {
                // `\x{10FFFF}`: at least one hex digit, at most U+10FFFF.
                let mut r = 0u32;
                let mut digits = 0;
                loop {
                    let Some(h) = chars.next() else { return Err(bad(used)) };
                    used += h.len_utf8();
                    if h == '}' {
                        break;
                    }
                    let Some(v) = h.to_digit(16) else { return Err(bad(used)) };
                    r = r * 16 + v;
                    if r > 0x10_FFFF {
                        return Err(bad(used));
                    }
                    digits += 1;
                }
                if digits == 0 {
                    return Err(bad(used));
                }
                r
            } else {
                // `\x7F`: exactly two hex digits.
                let c3 = chars.next();
                used += c3.map_or(0, char::len_utf8);
                match (c2.to_digit(16), c3.and_then(|c| c.to_digit(16))) {
                    (Some(x), Some(y)) => x * 16 + y,
                    _ => return Err(bad(used)),
                }
            }
        }
        'a' => 0x07,
        'f' => 0x0c,
        'n' => 0x0a,
        'r' => 0x0d,
        't' => 0x09,
        'v' => 0x0b,
        // Escaped punctuation is itself (`\_` included, `\<` too: no word-start assertion).
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => u32::from(c),
        _ => return Err(bad(used)),
    };
    Ok((code_point, used))
}

/// `{n}`, `{n,}` or `{n,m}` at the start of `s` (Go's `parseRepeat`): min, max (-1: none) and
/// length; a count too big for Go's `parseInt` comes back as min -1.
fn parse_repeat(s: &str) -> Option<(i64, i64, usize)> {
    let body = s.strip_prefix('{')?;
    let (mut min, rest) = parse_int(body)?;
    let (max, rest) = match rest.strip_prefix(',') {
        None => (min, rest),
        Some(r) if r.starts_with('}') => (-1, r),
        Some(r) => {
            let (max, r) = parse_int(r)?;
            if max < 0 {
                min = -1;
            }
            (max, r)
        }
    };
    let rest = rest.strip_prefix('}')?;
    Some((min, max, s.len() - rest.len()))
}

/// A decimal without leading zeros (Go's `parseInt`); -1 when it is 10^8 or more.
fn parse_int(s: &str) -> Option<(i64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits >= 2 && s.starts_with('0')) {
        return None;
    }
    let (number, rest) = s.split_at_checked(digits)?;
    let mut n: i64 = 0;
    for b in number.bytes() {
        if n >= 100_000_000 {
            n = -1;
            break;
        }
        n = n * 10 + i64::from(b - b'0');
    }
    Some((n, rest))
}
