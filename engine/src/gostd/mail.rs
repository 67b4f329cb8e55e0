//! Go `net/mail` (Go 1.13): `ParseAddress` with its exact error texts, plus Mixer's
//! EMAIL_ADDRESS equality (`externEmailEqual` in istio 1.5 `mixer/pkg/lang/externs.go`).
//!
//! Covered: `a@b`, `Name <a@b>`, quoted local parts and display names, `a@b (Name)` comments,
//! RFC 5322 groups (`g: a@b;`), RFC 2047 encoded words in display names (utf-8, iso-8859-1 and
//! us-ascii; other charsets give Go's `charset not supported` error). Go 1.13 predates the
//! domain-literal (`a@[1.2.3.4]`) support and the permissive specials in display names, so
//! both are rejected here as they were then.

use super::idna::dns_name_equal;
use super::strconv::{quote, quote_rune};
use super::strings::to_lower;

/// A parsed address. `local` and `domain` are split at the first `@` of Go's
/// `Address.Address` (`<unquoted local>@<domain>`), exactly as Mixer's `getEmailParts` does, so
/// a quoted local part that itself contains `@` moves its tail into `domain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// Display name (`Name` in `Name <a@b>`); empty when absent.
    pub name: String,
    /// Local part with quotes and escapes removed.
    pub local: String,
    /// Domain as written.
    pub domain: String,
}

impl Address {
    /// Go's `Address.Address`: `local@domain`.
    pub fn address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

/// Go's `mail.ParseAddress`. Errors are Go's texts: `mail: no address`,
/// `mail: missing @ in addr-spec`, `mail: no angle-addr`, `mail: expected single address, got "x"`...
pub fn parse_address(s: &str) -> Result<Address, String> {
    let (name, spec) = Parser { s: s.as_bytes() }.parse_single_address()?;
    let (local, domain) = spec.split_once('@').unwrap_or((spec.as_str(), ""));
    Ok(Address { name, local: local.to_string(), domain: domain.to_string() })
}

/// EMAIL_ADDRESS `==`: both sides through `ParseAddress` (its error is returned as is), domains
/// by DNS_NAME equality (its error wrapped as `error comparing e-mails 'a' and 'b': <err>`),
/// then local parts compared case-sensitively after quote removal.
pub fn email_equal(a: &str, b: &str) -> Result<bool, String> {
    let a1 = parse_address(a)?;
    let a2 = parse_address(b)?;
    let same_domain =
        dns_name_equal(&a1.domain, &a2.domain).map_err(|e| format!("error comparing e-mails '{a}' and '{b}': {e}"))?;
    Ok(same_domain && a1.local == a2.local)
}

/// A parsed mailbox: (display name, `local@domain`).
type Mailbox = (String, String);

/// Go's `addrParser`; `s` is what is left of the input.
struct Parser<'a> {
    s: &'a [u8],
}

impl<'a> Parser<'a> {
    fn parse_single_address(&mut self) -> Result<Mailbox, String> {
        let mut addrs = self.parse_address(true)?;
        if !self.skip_cfws() {
            return Err("mail: misformatted parenthetical comment".to_string());
        }
        if !self.s.is_empty() {
            let rest = String::from_utf8_lossy(self.s);
            return Err(format!("mail: expected single address, got {}", quote(&rest)));
        }
        match addrs.len() {
            0 => Err("mail: empty group".to_string()),
            1 => Ok(addrs.remove(0)),
            _ => Err("mail: group with multiple addresses".to_string()),
        }
    }

    fn parse_address(&mut self, handle_group: bool) -> Result<Vec<Mailbox>, String> {
        self.skip_space();
        if self.s.is_empty() {
            return Err("mail: no address".to_string());
        }
        // addr-spec is tried first; on failure the parser is back where it started.
        if let Ok(spec) = self.consume_addr_spec() {
            self.skip_space();
            let mut name = String::new();
            if self.peek() == Some(b'(') {
                name = self.consume_display_name_comment()?;
            }
            return Ok(vec![(name, spec)]);
        }
        let mut name = String::new();
        if self.peek() != Some(b'<') {
            name = self.consume_phrase()?;
        }
        self.skip_space();
        if handle_group && self.consume(b':') {
            return self.consume_group_list();
        }
        if !self.consume(b'<') {
            return Err("mail: no angle-addr".to_string());
        }
        let spec = self.consume_addr_spec()?;
        if !self.consume(b'>') {
            return Err("mail: unclosed angle-addr".to_string());
        }
        Ok(vec![(name, spec)])
    }

    fn consume_group_list(&mut self) -> Result<Vec<Mailbox>, String> {
        let mut group = Vec::new();
        self.skip_space();
        if self.consume(b';') {
            self.skip_cfws();
            return Ok(group);
        }
        loop {
            self.skip_space();
            group.extend(self.parse_address(false)?);
            if !self.skip_cfws() {
                return Err("mail: misformatted parenthetical comment".to_string());
            }
            if self.consume(b';') {
                self.skip_cfws();
                return Ok(group);
            }
            if !self.consume(b',') {
                return Err("mail: expected comma".to_string());
            }
        }
    }

    /// `local-part "@" domain`, returned as `<unquoted local>@<domain>`.
    fn consume_addr_spec(&mut self) -> Result<String, String> {
        let orig = self.s;
        let result = self.addr_spec_inner();
        if result.is_err() {
            self.s = orig;
        }
        result
    }

    fn addr_spec_inner(&mut self) -> Result<String, String> {
        self.skip_space();
        if self.s.is_empty() {
            return Err("mail: no addr-spec".to_string());
        }
        let local = if self.peek() == Some(b'"') {
            // Go replaces any quoted-string error here by this one (it tests the empty result).
            match self.consume_quoted_string() {
                Ok(q) if !q.is_empty() => q,
                _ => return Err("mail: empty quoted string in addr-spec".to_string()),
            }
        } else {
            self.consume_atom(true, false)?
        };
        if !self.consume(b'@') {
            return Err("mail: missing @ in addr-spec".to_string());
        }
        self.skip_space();
        if self.s.is_empty() {
            return Err("mail: no domain in addr-spec".to_string());
        }
        let domain = self.consume_atom(true, false)?;
        Ok(format!("{local}@{domain}"))
    }

    /// `1*word`; errors after the first word are ignored, as in Go.
    fn consume_phrase(&mut self) -> Result<String, String> {
        let mut words: Vec<String> = Vec::new();
        let mut prev_encoded = false;
        let mut err = None;
        loop {
            self.skip_space();
            if self.s.is_empty() {
                break;
            }
            let word = if self.peek() == Some(b'"') {
                self.consume_quoted_string().map(|w| (w, false))
            } else {
                self.consume_atom(true, true).and_then(|w| decode_rfc2047_word(&w))
            };
            match word {
                Err(e) => {
                    err = Some(e);
                    break;
                }
                Ok((w, encoded)) => {
                    match words.last_mut() {
                        Some(last) if prev_encoded && encoded => last.push_str(&w),
                        _ => words.push(w),
                    }
                    prev_encoded = encoded;
                }
            }
        }
        match err {
            Some(e) if words.is_empty() => Err(format!("mail: missing word in phrase: {e}")),
            _ => Ok(words.join(" ")),
        }
    }

    fn consume_quoted_string(&mut self) -> Result<String, String> {
        let mut i = 1;
        let mut out = String::new();
        let mut escaped = false;
        loop {
            let Some((r, size)) = decode_rune(self.s.get(i..).unwrap_or(&[])) else {
                return Err("mail: unclosed quoted-string".to_string());
            };
            if escaped {
                if !is_vchar(r) && !is_wsp(r) {
                    return Err(format!("mail: bad character in quoted-string: {}", quote_rune(r)));
                }
                out.push(r);
                escaped = false;
            } else if is_qtext(r) || is_wsp(r) {
                out.push(r);
            } else if r == '"' {
                break;
            } else if r == '\\' {
                escaped = true;
            } else {
                return Err(format!("mail: bad character in quoted-string: {}", quote_rune(r)));
            }
            i += size;
        }
        self.s = self.s.get(i + 1..).unwrap_or(&[]);
        Ok(out)
    }

    /// An atom, or a dot-atom when `dot`; `permissive` allows leading, trailing and double dots.
    fn consume_atom(&mut self, dot: bool, permissive: bool) -> Result<String, String> {
        let mut i = 0;
        while let Some((r, size)) = decode_rune(self.s.get(i..).unwrap_or(&[])) {
            if !is_atext(r, dot) {
                break;
            }
            i += size;
        }
        if i == 0 {
            return Err("mail: invalid string".to_string());
        }
        let (atom, rest) = self.s.split_at(i);
        self.s = rest;
        let atom = String::from_utf8_lossy(atom).into_owned();
        if !permissive {
            if atom.starts_with('.') {
                return Err("mail: leading dot in atom".to_string());
            }
            if atom.contains("..") {
                return Err("mail: double dot in atom".to_string());
            }
            if atom.ends_with('.') {
                return Err("mail: trailing dot in atom".to_string());
            }
        }
        Ok(atom)
    }

    /// `addr-spec (Display Name)`: the comment's words, RFC 2047-decoded, joined by spaces.
    fn consume_display_name_comment(&mut self) -> Result<String, String> {
        if !self.consume(b'(') {
            return Err("mail: comment does not start with (".to_string());
        }
        let comment = self.consume_comment().ok_or_else(|| "mail: misformatted parenthetical comment".to_string())?;
        let mut words = Vec::new();
        for word in comment.split([' ', '\t']).filter(|w| !w.is_empty()) {
            words.push(decode_rfc2047_word(word)?.0);
        }
        Ok(words.join(" "))
    }

    /// After `(`: the comment text up to the matching `)`; `None` if it never closes.
    fn consume_comment(&mut self) -> Option<String> {
        let mut depth = 1;
        let mut comment = Vec::new();
        while let Some(&c) = self.s.first() {
            if depth == 0 {
                break;
            }
            if c == b'\\' && self.s.len() > 1 {
                self.s = &self.s[1..];
            } else if c == b'(' {
                depth += 1;
            } else if c == b')' {
                depth -= 1;
            }
            if depth > 0 {
                comment.extend_from_slice(&self.s[..1]);
            }
            self.s = &self.s[1..];
        }
        (depth == 0).then(|| String::from_utf8_lossy(&comment).into_owned())
    }

    fn skip_cfws(&mut self) -> bool {
        self.skip_space();
        while self.consume(b'(') {
            if self.consume_comment().is_none() {
                return false;
            }
            self.skip_space();
        }
        true
    }

    fn skip_space(&mut self) {
        while let Some((b' ' | b'\t', rest)) = self.s.split_first() {
            self.s = rest;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.first().copied()
    }

    fn consume(&mut self, c: u8) -> bool {
        match self.s.split_first() {
            Some((&first, rest)) if first == c => {
                self.s = rest;
                true
            }
            _ => false,
        }
    }
}

/// The rune at the start of `b` and its length; `None` at the end (input is valid UTF-8).
fn decode_rune(b: &[u8]) -> Option<(char, usize)> {
    let len = match *b.first()? {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    };
    let c = std::str::from_utf8(b.get(..len)?).ok()?.chars().next()?;
    Some((c, len))
}

fn is_atext(r: char, dot: bool) -> bool {
    match r {
        '.' => dot,
        '(' | ')' | '<' | '>' | '[' | ']' | ':' | ';' | '@' | '\\' | ',' | '"' => false,
        _ => is_vchar(r),
    }
}

fn is_qtext(r: char) -> bool {
    r != '\\' && r != '"' && is_vchar(r)
}

fn is_vchar(r: char) -> bool {
    ('!'..='~').contains(&r) || !r.is_ascii()
}

fn is_wsp(r: char) -> bool {
    r == ' ' || r == '\t'
}

/// Go's `decodeRFC2047Word`: (word, was it an encoded word). An unsupported charset is an
/// error; any other malformed encoded word is kept as plain text.
fn decode_rfc2047_word(s: &str) -> Result<(String, bool), String> {
    match decode_encoded_word(s) {
        Ok(w) => Ok((w, true)),
        Err(Some(charset)) => Err(format!("charset not supported: {}", quote(&charset))),
        Err(None) => Ok((s.to_string(), false)),
    }
}

/// Go's `mime.WordDecoder.Decode`; `Err(Some(charset))` for an unsupported charset.
fn decode_encoded_word(word: &str) -> Result<String, Option<String>> {
    if word.len() < 8 || !word.starts_with("=?") || !word.ends_with("?=") || word.matches('?').count() != 4 {
        return Err(None);
    }
    let inner = word.get(2..word.len() - 2).ok_or(None)?;
    let (charset, rest) = inner.split_once('?').ok_or(None)?;
    let rest = rest.as_bytes();
    if charset.is_empty() || rest.len() < 2 || rest[1] != b'?' {
        return Err(None);
    }
    let text = &rest[2..];
    let content = match rest[0] {
        b'B' | b'b' => base64_decode(text),
        b'Q' | b'q' => q_decode(text),
        _ => None,
    }
    .ok_or(None)?;
    if charset.eq_ignore_ascii_case("utf-8") {
        Ok(String::from_utf8_lossy(&content).into_owned())
    } else if charset.eq_ignore_ascii_case("iso-8859-1") {
        Ok(content.iter().map(|&b| char::from(b)).collect())
    } else if charset.eq_ignore_ascii_case("us-ascii") {
        Ok(content.iter().map(|&b| if b.is_ascii() { char::from(b) } else { '\u{fffd}' }).collect())
    } else {
        Err(Some(to_lower(charset).into_owned()))
    }
}

/// Go's `base64.StdEncoding.DecodeString` (padding required).
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let quads = text.chunks_exact(4);
    if !quads.remainder().is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let last = text.len() / 4;
    for (n, quad) in quads.enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && n + 1 != last) {
            return None;
        }
        let mut acc: u32 = 0;
        for &c in &quad[..4 - pad] {
            acc = (acc << 6) | u32::from(base64_value(c)?);
        }
        acc <<= 6 * pad as u32;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

fn base64_value(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    })
}

/// Go's `mime` `qDecode`: `_` is a space, `=XX` a byte, other printable ASCII as is.
fn q_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        match c {
            b'_' => out.push(b' '),
            b'=' => {
                let hi = char::from(*text.get(i + 1)?).to_digit(16)?;
                let lo = char::from(*text.get(i + 2)?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
                i += 2;
            }
            b' '..=b'~' | b'\n' | b'\r' | b'\t' => out.push(c),
            _ => return None,
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addr(name: &str, local: &str, domain: &str) -> Address {
        Address { name: name.to_string(), local: local.to_string(), domain: domain.to_string() }
    }

    fn err(s: &str) -> String {
        parse_address(s).unwrap_err()
    }

    #[test]
    fn plain_addr_spec() {
        assert_eq!(parse_address("user@istio.io").unwrap(), addr("", "user", "istio.io"));
        assert_eq!(parse_address("  first.last@sub.example.com  ").unwrap(), addr("", "first.last", "sub.example.com"));
        assert_eq!(parse_address("a+tag!#$%&'*/=?^_`{|}~-@b").unwrap(), addr("", "a+tag!#$%&'*/=?^_`{|}~-", "b"));
        assert_eq!(parse_address("jörg@bücher.de").unwrap(), addr("", "jörg", "bücher.de"));
        assert_eq!(parse_address("a@ b").unwrap(), addr("", "a", "b"), "space allowed after @");
    }

    #[test]
    fn quoted_local_part() {
        assert_eq!(parse_address(r#""istio"@istio.io"#).unwrap(), addr("", "istio", "istio.io"));
        assert_eq!(parse_address(r#""john doe"@x.org"#).unwrap(), addr("", "john doe", "x.org"));
        assert_eq!(parse_address(r#""a\"b\\c"@x.org"#).unwrap(), addr("", "a\"b\\c", "x.org"));
        // Mixer splits Go's `Address` at the first '@'.
        assert_eq!(parse_address(r#""a@b"@c.org"#).unwrap(), addr("", "a", "b@c.org"));
        assert_eq!(parse_address(r#""a@b"@c.org"#).unwrap().address(), "a@b@c.org");
    }

    #[test]
    fn display_name_forms() {
        assert_eq!(parse_address("Barry Gibbs <bg@example.com>").unwrap(), addr("Barry Gibbs", "bg", "example.com"));
        assert_eq!(
            parse_address(r#""Joe Q. Public" <john.q.public@example.com>"#).unwrap(),
            addr("Joe Q. Public", "john.q.public", "example.com")
        );
        assert_eq!(parse_address("<a@b.c>").unwrap(), addr("", "a", "b.c"));
        assert_eq!(parse_address(r#""" <a@b.c>"#).unwrap(), addr("", "a", "b.c"), "empty quoted name");
        assert_eq!(parse_address("a@b.c (Joe Smith)").unwrap(), addr("Joe Smith", "a", "b.c"));
        assert_eq!(parse_address("John.Q. Doe <a@b.c>").unwrap(), addr("John.Q. Doe", "a", "b.c"));
        assert_eq!(parse_address("a@b.c (nested (comment) here)").unwrap(), addr("nested (comment) here", "a", "b.c"));
    }

    #[test]
    fn rfc2047_names() {
        assert_eq!(parse_address("=?utf-8?q?J=C3=B6rg_Doe?= <joerg@example.com>").unwrap().name, "Jörg Doe");
        assert_eq!(parse_address("=?ISO-8859-1?Q?J=F6rg?= <j@e.com>").unwrap().name, "Jörg");
        assert_eq!(parse_address("=?UTF-8?B?SsO2cmc=?= <j@e.com>").unwrap().name, "Jörg");
        assert_eq!(
            parse_address("=?utf-8?q?a?= =?utf-8?q?b?= <j@e.com>").unwrap().name,
            "ab",
            "adjacent encoded words join"
        );
        assert_eq!(parse_address("=?utf-8?x?abc?= <j@e.com>").unwrap().name, "=?utf-8?x?abc?=");
        assert_eq!(
            err("=?windows-1252?q?abc?= <j@e.com>"),
            r#"mail: missing word in phrase: charset not supported: "windows-1252""#
        );
        assert_eq!(err("j@e.com (=?KOI8-R?q?abc?=)"), r#"charset not supported: "koi8-r""#);
    }

    #[test]
    fn groups() {
        assert_eq!(parse_address("grp: a@b.c;").unwrap(), addr("", "a", "b.c"));
        assert_eq!(err("grp:;"), "mail: empty group");
        assert_eq!(err("grp: a@b.c, d@e.f;"), "mail: group with multiple addresses");
        assert_eq!(err("grp: a@b.c d@e.f;"), "mail: expected comma");
    }

    #[test]
    fn go_error_texts() {
        assert_eq!(err(""), "mail: no address");
        assert_eq!(err("   "), "mail: no address");
        assert_eq!(err("barfoo"), "mail: no angle-addr");
        assert_eq!(err("John Doe"), "mail: no angle-addr");
        assert_eq!(err("<a@b.c"), "mail: unclosed angle-addr");
        assert_eq!(err("<>"), "mail: invalid string");
        assert_eq!(err("<a>"), "mail: missing @ in addr-spec");
        assert_eq!(err("<a@>"), "mail: invalid string");
        assert_eq!(err("<a@"), "mail: no domain in addr-spec");
        assert_eq!(err("<.a@b>"), "mail: leading dot in atom");
        assert_eq!(err("<a..b@c>"), "mail: double dot in atom");
        assert_eq!(err("<a@c.>"), "mail: trailing dot in atom");
        assert_eq!(err(r#"<""@c>"#), "mail: empty quoted string in addr-spec");
        assert_eq!(err(r#"<"a@c>"#), "mail: empty quoted string in addr-spec");
        assert_eq!(err("a@b.c d@e.f"), r#"mail: expected single address, got "d@e.f""#);
        assert_eq!(err("a@b.c, d@e.f"), r#"mail: expected single address, got ", d@e.f""#);
        assert_eq!(err("a@b.c (unclosed"), "mail: misformatted parenthetical comment");
        assert_eq!(err("<a@b.c> (x"), "mail: misformatted parenthetical comment");
        assert_eq!(err("@b.c"), "mail: missing word in phrase: mail: invalid string");
        assert_eq!(err("\"abc"), "mail: missing word in phrase: mail: unclosed quoted-string");
        assert_eq!(
            err("\"a\u{1}\" <a@b>"),
            r#"mail: missing word in phrase: mail: bad character in quoted-string: '\x01'"#
        );
        assert_eq!(err("a@[1.2.3.4]"), "mail: no angle-addr", "no domain literals in Go 1.13");
        assert_eq!(err("John, Doe <a@b>"), "mail: no angle-addr");
    }

    #[test]
    fn email_equality() {
        assert!(email_equal(r#""istio"@istio.io"#, "istio@istio.io").unwrap());
        assert!(email_equal("istio@istio.io", "istio@ISTIO.io").unwrap());
        assert_eq!(email_equal("istio@istio.io", "istio@istio.io.").unwrap_err(), "mail: no angle-addr");
        assert!(!email_equal("Foo@bar.com", "foo@bar.com").unwrap());
        assert!(!email_equal("istio@istio.io", "pilot@istio.io").unwrap());
        assert!(!email_equal("a@b.com", "a@c.com").unwrap());
        assert!(email_equal("Name <a@b.com>", "a@b.com").unwrap(), "names are ignored");
        assert_eq!(email_equal("", "a@b.com").unwrap_err(), "mail: no address");
        assert_eq!(
            email_equal("a@b_c.com", "a@b.com").unwrap_err(),
            "error comparing e-mails 'a@b_c.com' and 'a@b.com': idna: disallowed rune U+005F"
        );
    }

    #[test]
    fn decoders() {
        assert_eq!(base64_decode(b"SsO2cmc=").unwrap(), "Jörg".as_bytes());
        assert_eq!(base64_decode(b"YQ==").unwrap(), b"a");
        assert_eq!(base64_decode(b"").unwrap(), b"");
        assert!(base64_decode(b"YQ").is_none());
        assert!(base64_decode(b"YQ==YQ==").is_none());
        assert!(base64_decode(b"Y===").is_none());
        assert_eq!(q_decode(b"a_b=3D").unwrap(), b"a b=");
        assert!(q_decode(b"=4").is_none());
    }

    #[test]
    fn never_panics() {
        for s in ["\"", "\"\\", "(", "<", "a@", "\"é\\é\"@x", "é(\\é)", "a@b (\\", "=?", "=?a?b?c?=", "::::", "g:"]
        {
            let _ = parse_address(s);
        }
    }
}
