//! Go `net/url` as of Go 1.13 (what Mixer 1.5 shipped with): `url.Parse`, `URL.String()`,
//! `Hostname()`, `Port()`, and Mixer's URI equality (`externURIEqual` in istio 1.5
//! `mixer/pkg/lang/externs.go`).
//!
//! Go 1.13 prints parse errors without quoting the URL (`parse :/: missing protocol scheme`);
//! Go 1.14 added the quotes. The URL in the message is the input minus its `#fragment`, except
//! for an error in the fragment itself. Go 1.13 has no `RawFragment`: `String()` re-escapes the
//! fragment.
//!
//! Go strings are byte strings; Rust's are UTF-8. A `%XX` escape that decodes to bytes which
//! are not UTF-8 is kept exactly for the path (through `raw_path`), but is held lossily
//! (U+FFFD) in the host, user info and fragment.

use super::idna::dns_name_equal;
use super::strconv::{quote, quote_bytes};

/// Go's `url.URL` (Go 1.13 fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Url {
    /// Lower-cased scheme, without `:`.
    pub scheme: String,
    /// Encoded opaque data (`urn:foo` has opaque `foo`).
    pub opaque: String,
    /// Username and optional password, unescaped.
    pub user: Option<Userinfo>,
    /// `host` or `host:port`, unescaped.
    pub host: String,
    /// Unescaped path.
    pub path: String,
    /// The encoded path when it differs from the default encoding of `path`.
    pub raw_path: String,
    /// A `?` with nothing after it was present.
    pub force_query: bool,
    /// Encoded query, without `?`.
    pub raw_query: String,
    /// Unescaped fragment, without `#`.
    pub fragment: String,
}

/// Go's `url.Userinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Userinfo {
    /// Unescaped user name (possibly empty).
    pub username: String,
    /// Unescaped password, when one was given (even empty).
    pub password: Option<String>,
}

/// Which part of a URL is being escaped or unescaped (Go's `encoding`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

/// Go 1.13 `url.Parse`. Errors read `parse <url>: <reason>`, e.g.
/// `parse http://[::1: missing ']' in host`.
pub fn parse(s: &str) -> Result<Url, String> {
    let (u, frag) = s.split_once('#').unwrap_or((s, ""));
    let mut url = parse_no_fragment(u).map_err(|e| format!("parse {u}: {e}"))?;
    if !frag.is_empty() {
        let bytes = unescape(frag, Mode::Fragment).map_err(|e| format!("parse {s}: {e}"))?;
        url.fragment = String::from_utf8_lossy(&bytes).into_owned();
    }
    Ok(url)
}

/// URI `==` as Mixer did it: schemes compared case-insensitively; for `http`/`https` the
/// hostnames by DNS_NAME equality and the port strings exactly, then the host is copied across;
/// finally the `String()` forms are compared. Parse errors read
/// `error converting string to uri '<s>': '<parse error>'`; DNS errors are returned as is.
pub fn uri_equal(a: &str, b: &str) -> Result<bool, String> {
    let mut u1 = parse(a).map_err(|e| format!("error converting string to uri '{a}': '{e}'"))?;
    let mut u2 = parse(b).map_err(|e| format!("error converting string to uri '{b}': '{e}'"))?;
    let scheme = u1.scheme.to_ascii_lowercase();
    if scheme != u2.scheme.to_ascii_lowercase() {
        return Ok(false);
    }
    u1.scheme.clone_from(&scheme);
    u2.scheme.clone_from(&scheme);
    if scheme == "http" || scheme == "https" {
        if !dns_name_equal(u1.hostname(), u2.hostname())? || u1.port() != u2.port() {
            return Ok(false);
        }
        u1.host.clone_from(&u2.host);
    }
    Ok(u1.to_go_string() == u2.to_go_string())
}

impl Url {
    /// Go's `URL.String()`.
    pub fn to_go_string(&self) -> String {
        let mut out = String::new();
        if !self.scheme.is_empty() {
            out.push_str(&self.scheme);
            out.push(':');
        }
        if self.opaque.is_empty() {
            self.write_hierarchical(&mut out);
        } else {
            out.push_str(&self.opaque);
        }
        if self.force_query || !self.raw_query.is_empty() {
            out.push('?');
            out.push_str(&self.raw_query);
        }
        if !self.fragment.is_empty() {
            out.push('#');
            out.push_str(&escape(self.fragment.as_bytes(), Mode::Fragment));
        }
        out
    }

    /// Go's `URL.Hostname()`: the host without a valid `:port` and without IPv6 brackets.
    pub fn hostname(&self) -> &str {
        split_host_port(&self.host).0
    }

    /// Go's `URL.Port()`: the digits after the last `:`, or empty.
    pub fn port(&self) -> &str {
        split_host_port(&self.host).1
    }

    /// Go's `URL.EscapedPath()`.
    pub fn escaped_path(&self) -> String {
        if !self.raw_path.is_empty() && valid_encoded_path(&self.raw_path) {
            if let Ok(p) = unescape(&self.raw_path, Mode::Path) {
                if String::from_utf8_lossy(&p) == self.path {
                    return self.raw_path.clone();
                }
            }
        }
        if self.path == "*" {
            return "*".to_string();
        }
        escape(self.path.as_bytes(), Mode::Path)
    }

    /// `//userinfo@host` and the path, as `String()` writes them for a non-opaque URL.
    fn write_hierarchical(&self, out: &mut String) {
        if !self.scheme.is_empty() || !self.host.is_empty() || self.user.is_some() {
            if !self.host.is_empty() || !self.path.is_empty() || self.user.is_some() {
                out.push_str("//");
            }
            if let Some(user) = &self.user {
                out.push_str(&user.to_go_string());
                out.push('@');
            }
            out.push_str(&escape(self.host.as_bytes(), Mode::Host));
        }
        let path = self.escaped_path();
        if !path.is_empty() && !path.starts_with('/') && !self.host.is_empty() {
            out.push('/');
        }
        if out.is_empty() {
            // A first segment with a colon would read as a scheme: RFC 3986 section 4.2.
            if let Some(colon) = path.find(':') {
                if !path[..colon].contains('/') {
                    out.push_str("./");
                }
            }
        }
        out.push_str(&path);
    }

    /// Go's `URL.setPath`: `path` unescaped, `raw_path` only when the default encoding differs.
    fn set_path(&mut self, p: &str) -> Result<(), String> {
        let bytes = unescape(p, Mode::Path)?;
        let default_encoding = escape(&bytes, Mode::Path);
        match String::from_utf8(bytes) {
            Ok(path) => {
                self.raw_path = if default_encoding == p { String::new() } else { p.to_string() };
                self.path = path;
            }
            Err(e) => {
                // Keep the exact escaped form that Go's `EscapedPath` would produce.
                self.raw_path = if valid_encoded_path(p) { p.to_string() } else { default_encoding };
                self.path = String::from_utf8_lossy(e.as_bytes()).into_owned();
            }
        }
        Ok(())
    }
}

impl Userinfo {
    /// Go's `Userinfo.String()`: `user[:password]`, escaped.
    pub fn to_go_string(&self) -> String {
        let mut s = escape(self.username.as_bytes(), Mode::UserPassword);
        if let Some(password) = &self.password {
            s.push(':');
            s.push_str(&escape(password.as_bytes(), Mode::UserPassword));
        }
        s
    }
}

/// Go 1.13's internal `parse(rawurl, viaRequest=false)`.
fn parse_no_fragment(raw: &str) -> Result<Url, String> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".to_string());
    }
    let mut url = Url::default();
    if raw == "*" {
        url.path = "*".to_string();
        return Ok(url);
    }
    let (scheme, mut rest) = get_scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        url.force_query = true;
        rest = &rest[..rest.len() - 1];
    } else if let Some((r, q)) = rest.split_once('?') {
        url.raw_query = q.to_string();
        rest = r;
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            url.opaque = rest.to_string();
            return Ok(url);
        }
        let first_segment = rest.split('/').next().unwrap_or("");
        if first_segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".to_string());
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let after = &rest[2..];
        let (authority, path) = after.find('/').map_or((after, ""), |i| after.split_at(i));
        (url.user, url.host) = parse_authority(authority)?;
        rest = path;
    }
    url.set_path(rest)?;
    Ok(url)
}

/// Go's `getscheme`: `[a-zA-Z][a-zA-Z0-9+.-]*:` or no scheme at all.
fn get_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".to_string()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn parse_authority(authority: &str) -> Result<(Option<Userinfo>, String), String> {
    let at = authority.rfind('@');
    let host = parse_host(at.map_or(authority, |i| &authority[i + 1..]))?;
    let Some(at) = at else {
        return Ok((None, host));
    };
    let userinfo = &authority[..at];
    if !valid_userinfo(userinfo) {
        return Err("net/url: invalid userinfo".to_string());
    }
    let text = |s: &str, mode| unescape(s, mode).map(|b| String::from_utf8_lossy(&b).into_owned());
    let user = match userinfo.split_once(':') {
        None => Userinfo { username: text(userinfo, Mode::UserPassword)?, password: None },
        Some((name, password)) => {
            Userinfo { username: text(name, Mode::UserPassword)?, password: Some(text(password, Mode::UserPassword)?) }
        }
    };
    Ok((Some(user), host))
}

/// Go's `parseHost`: `[ipv6%25zone]:port` or `host:port`, with the port checked.
fn parse_host(host: &str) -> Result<String, String> {
    let bytes = if host.starts_with('[') {
        let close = host.rfind(']').ok_or_else(|| "missing ']' in host".to_string())?;
        check_port(&host[close + 1..])?;
        match host[..close].find("%25") {
            Some(zone) => {
                let mut b = unescape(&host[..zone], Mode::Host)?;
                b.extend(unescape(&host[zone..close], Mode::Zone)?);
                b.extend(unescape(&host[close..], Mode::Host)?);
                b
            }
            None => unescape(host, Mode::Host)?,
        }
    } else {
        if let Some(colon) = host.rfind(':') {
            check_port(&host[colon..])?;
        }
        unescape(host, Mode::Host)?
    };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn check_port(colon_port: &str) -> Result<(), String> {
    if valid_optional_port(colon_port) {
        Ok(())
    } else {
        Err(format!("invalid port {} after host", quote(colon_port)))
    }
}

/// Empty, or `:` followed by digits only.
fn valid_optional_port(port: &str) -> bool {
    port.is_empty() || port.strip_prefix(':').is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
}

/// Go's `splitHostPort` (behind `Hostname` and `Port`).
fn split_host_port(hostport: &str) -> (&str, &str) {
    let (mut host, mut port) = (hostport, "");
    if let Some(colon) = hostport.rfind(':') {
        if valid_optional_port(&hostport[colon..]) {
            (host, port) = (&hostport[..colon], &hostport[colon + 1..]);
        }
    }
    if host.len() >= 2 && host.starts_with('[') && host.ends_with(']') {
        host = &host[1..host.len() - 1];
    }
    (host, port)
}

fn valid_userinfo(s: &str) -> bool {
    s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b':'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
                    | b'@'
            )
    })
}

/// Go's `validEncodedPath`.
fn valid_encoded_path(s: &str) -> bool {
    s.bytes().all(|b| {
        matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'['
                | b']'
                | b'%'
        ) || !should_escape(b, Mode::Path)
    })
}

/// Go 1.13 `shouldEscape`.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone)
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => {
            return match mode {
                Mode::Path => c == b'?',
                Mode::UserPassword => matches!(c, b'@' | b'/' | b'?' | b':'),
                Mode::Fragment => false,
                Mode::Host | Mode::Zone => true,
            };
        }
        _ => {}
    }
    !(mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*'))
}

/// Go's `unescape`; errors are `invalid URL escape "%zz"` or
/// `invalid character " " in host name`.
fn unescape(s: &str, mode: Mode) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let (Some(hi), Some(lo)) = (b.get(i + 1).and_then(hex), b.get(i + 2).and_then(hex)) else {
                let end = (i + 3).min(b.len());
                return Err(format!("invalid URL escape {}", quote_bytes(&b[i..end])));
            };
            let triple = &s[i..i + 3];
            let v = (hi << 4) | lo;
            let bad_host = mode == Mode::Host && hi < 8 && triple != "%25";
            let bad_zone = mode == Mode::Zone && triple != "%25" && v != b' ' && should_escape(v, Mode::Host);
            if bad_host || bad_zone {
                return Err(format!("invalid URL escape {}", quote(triple)));
            }
            out.push(v);
            i += 3;
        } else {
            if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                return Err(format!("invalid character {} in host name", quote(&s[i..i + 1])));
            }
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

fn hex(c: &u8) -> Option<u8> {
    char::from(*c).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Go's `escape`: bytes that `should_escape` flags become `%XX` (upper-case hex).
fn escape(s: &[u8], mode: Mode) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &c in s {
        if should_escape(c, mode) {
            out.push('%');
            out.push(char::from(HEX[usize::from(c >> 4)]));
            out.push(char::from(HEX[usize::from(c & 15)]));
        } else {
            out.push(char::from(c));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn round(s: &str) -> String {
        parse(s).unwrap().to_go_string()
    }

    fn err(s: &str) -> String {
        parse(s).unwrap_err()
    }

    #[test]
    fn parses_fields() {
        let u = parse("HTTP://user:p%40ss@Example.COM:8080/a%20b/c?x=1&y=2#frag%21").unwrap();
        assert_eq!(u.scheme, "http");
        assert_eq!(u.user, Some(Userinfo { username: "user".into(), password: Some("p@ss".into()) }));
        assert_eq!(u.host, "Example.COM:8080");
        assert_eq!((u.hostname(), u.port()), ("Example.COM", "8080"));
        assert_eq!(u.path, "/a b/c");
        assert_eq!(u.raw_path, "");
        assert_eq!(u.raw_query, "x=1&y=2");
        assert_eq!(u.fragment, "frag!");
        assert_eq!(u.to_go_string(), "http://user:p%40ss@Example.COM:8080/a%20b/c?x=1&y=2#frag!");
    }

    #[test]
    fn opaque_and_relative() {
        let u = parse("urn:foo:BAR").unwrap();
        assert_eq!((u.scheme.as_str(), u.opaque.as_str()), ("urn", "foo:BAR"));
        assert_eq!(round("urn:foo:BAR"), "urn:foo:BAR");
        assert_eq!(round("mailto:a@b.c?subject=hi"), "mailto:a@b.c?subject=hi");
        assert_eq!(round("foo"), "foo");
        assert_eq!(round("foo/bar:baz"), "foo/bar:baz");
        assert_eq!(round("/a/b"), "/a/b");
        assert_eq!(round("//host/p"), "//host/p");
        assert_eq!(round("///a"), "///a");
        assert_eq!(round("www.istio.io"), "www.istio.io");
        assert_eq!(round(""), "");
        assert_eq!(round("*"), "*");
        assert_eq!(round("?q"), "?q");
        assert_eq!(round("#f"), "#f");
    }

    #[test]
    fn string_quirks() {
        assert_eq!(round("http:/x"), "http:///x", "empty host still gets //");
        assert_eq!(round("http://host"), "http://host");
        assert_eq!(round("http://host/"), "http://host/");
        assert_eq!(round("http://host?"), "http://host?", "ForceQuery");
        assert_eq!(round("http://host/?a?"), "http://host/?a?");
        assert_eq!(round("http://host#"), "http://host");
        assert_eq!(round("http://h/%7e%41"), "http://h/%7e%41", "RawPath keeps the original escape");
        assert_eq!(round("http://h/a%2Fb"), "http://h/a%2Fb");
        assert_eq!(round("http://h/ü"), "http://h/%C3%BC");
        assert_eq!(round("http://ü.com/"), "http://%C3%BC.com/");
        assert_eq!(round("http://h/#%7e%20x"), "http://h/#~%20x", "fragments are re-escaped");
        assert_eq!(round("http://h/a b"), "http://h/a%20b");
        assert_eq!(round("http://h/%FF"), "http://h/%FF");
        assert_eq!(round("http://h/%ff x"), "http://h/%FF%20x");
        assert_eq!(round("http://[::1]:80/"), "http://[::1]:80/");
        assert_eq!(round("http://[fe80::1%25en0]/"), "http://[fe80::1%25en0]/");
        assert_eq!(round("http://a@b@c/"), "http://a%40b@c/");
        assert_eq!(round("http://:@h/"), "http://:@h/");
        let mut u = Url { path: "a:b".into(), ..Url::default() };
        assert_eq!(u.to_go_string(), "./a:b");
        u.path = "b/a:b".into();
        assert_eq!(u.to_go_string(), "b/a:b");
    }

    #[test]
    fn hostname_and_port() {
        let hp = |s: &str| {
            let u = parse(s).unwrap();
            (u.hostname().to_string(), u.port().to_string())
        };
        assert_eq!(hp("http://HOST.COM:"), ("HOST.COM".into(), "".into()));
        assert_eq!(hp("http://[::1]:8080/"), ("::1".into(), "8080".into()));
        assert_eq!(hp("http://[::1]/"), ("::1".into(), "".into()));
        assert_eq!(hp("http://x/"), ("x".into(), "".into()));
        assert_eq!(hp("http:///"), ("".into(), "".into()));
    }

    #[test]
    fn go_1_13_error_texts() {
        assert_eq!(err(":/"), "parse :/: missing protocol scheme");
        assert_eq!(err(":/#frag"), "parse :/: missing protocol scheme");
        assert_eq!(err("http://[::1"), "parse http://[::1: missing ']' in host");
        assert_eq!(err("http://host:abc/"), r#"parse http://host:abc/: invalid port ":abc" after host"#);
        assert_eq!(err("http://[::1]x/"), r#"parse http://[::1]x/: invalid port "x" after host"#);
        assert_eq!(err("http://h/%zz"), r#"parse http://h/%zz: invalid URL escape "%zz""#);
        assert_eq!(err("http://h/%4"), r#"parse http://h/%4: invalid URL escape "%4""#);
        assert_eq!(err("http://h/%"), r#"parse http://h/%: invalid URL escape "%""#);
        assert_eq!(err("http://h/%日本"), r#"parse http://h/%日本: invalid URL escape "%\xe6\x97""#);
        assert_eq!(err("http://h/#%zz"), r#"parse http://h/#%zz: invalid URL escape "%zz""#);
        assert_eq!(err("http://%41/"), r#"parse http://%41/: invalid URL escape "%41""#);
        assert_eq!(err("http://a b/"), r#"parse http://a b/: invalid character " " in host name"#);
        assert_eq!(err("http://a\u{1}b/"), "parse http://a\u{1}b/: net/url: invalid control character in URL");
        assert_eq!(err("http://a\u{7f}/"), "parse http://a\u{7f}/: net/url: invalid control character in URL");
        assert_eq!(err("http://us er@h/"), "parse http://us er@h/: net/url: invalid userinfo");
        assert_eq!(err("http://[fe80::1%25%0a]/"), r#"parse http://[fe80::1%25%0a]/: invalid URL escape "%0a""#);
    }

    #[test]
    fn colon_in_first_segment() {
        // "a:b/c" has a valid scheme "a"; only a scheme-less path trips the colon rule.
        assert_eq!(parse("a:b/c").unwrap().opaque, "b/c");
        assert_eq!(err("1a:b"), "parse 1a:b: first path segment in URL cannot contain colon");
        assert_eq!(err("_x:y"), "parse _x:y: first path segment in URL cannot contain colon");
    }

    #[test]
    fn control_chars_in_fragment_pass_go_1_13() {
        assert_eq!(parse("http://h/#a\u{1}").unwrap().fragment, "a\u{1}");
    }

    #[test]
    fn uri_equality_spec_examples() {
        assert!(uri_equal("http://foo.bar.com", "http://fOO.bar.com").unwrap());
        assert!(uri_equal("http://foo.bar.baz", "http://foo.Bar.baz.").unwrap());
        assert!(uri_equal("http://HOST.COM:", "http://host.COM").unwrap());
        assert!(uri_equal("http://istio.io:80", "http://istio.io:80").unwrap());
        assert!(!uri_equal("http://istio.io:80", "http://istio.io:81").unwrap());
        assert!(!uri_equal("http://host", "http://host/").unwrap());
        assert!(!uri_equal("urn:BAR", "urn:bar").unwrap());
        assert!(uri_equal("URN:bar", "urn:bar").unwrap());
        assert!(!uri_equal("foo.bar.com", "https://foo.Bar.baz.").unwrap());
        assert!(uri_equal("HTTPS://a.com/x?y#z", "https://A.com/x?y#z").unwrap());
        assert!(!uri_equal("http://a.com/X", "http://a.com/x").unwrap(), "paths stay case-sensitive");
        assert!(!uri_equal("ftp://A.com/", "ftp://a.com/").unwrap(), "hosts fold only for http(s)");
        assert!(uri_equal("http://a.com/%7e", "http://a.com/%7e").unwrap());
        assert!(!uri_equal("http://a.com/%7e", "http://a.com/~").unwrap());
        assert!(!uri_equal("http://u@a.com/", "http://a.com/").unwrap());
    }

    #[test]
    fn uri_equality_errors() {
        assert_eq!(
            uri_equal(":/", "http://a").unwrap_err(),
            "error converting string to uri ':/': 'parse :/: missing protocol scheme'"
        );
        assert_eq!(
            uri_equal("http://a", "%").unwrap_err(),
            r#"error converting string to uri '%': 'parse %: invalid URL escape "%"'"#
        );
        assert_eq!(uri_equal("http://a_b/", "http://a/").unwrap_err(), "idna: disallowed rune U+005F");
        assert_eq!(uri_equal("http://[::1]/", "http://[::1]/").unwrap_err(), "idna: disallowed rune U+003A");
        assert!(uri_equal("http:///x", "http:///x").is_err(), "Go panics on an empty hostname");
    }

    #[test]
    fn never_panics() {
        for s in [
            "[",
            "http://[",
            "http://]",
            "http://[]",
            "http://@",
            "http://:",
            "%",
            "%%",
            "?",
            "#",
            "a:",
            ":",
            "//",
            "http://[::1]:x",
            "http://h/%e6%97",
            "http://h/#%e6",
        ] {
            if let Ok(u) = parse(s) {
                let _ = (u.to_go_string(), u.hostname(), u.port());
            }
            let _ = uri_equal(s, s);
        }
    }
}
