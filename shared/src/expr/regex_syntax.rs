//! Go RE2 regular expressions on `regex-lite`. The syntaxes agree on what CEXL users write;
//! like Go's, `regex-lite`'s Perl classes (`\d \w \s \b`) are ASCII-only. Unicode classes
//! (`\pL`) are not supported and fail to compile (documented in the README).

use regex_lite::Regex;

/// Compiles a Go regular expression; errors read `error parsing regexp: ...` like Go's.
pub fn go_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| {
        let detail = e.to_string();
        let last = detail.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("invalid").trim().to_string();
        format!("error parsing regexp: {}: `{pattern}`", last.trim_start_matches("error: "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_classes_are_ascii_like_go() {
        let re = go_regex(r"^\d+$");
        assert!(matches!(re, Ok(ref r) if r.is_match("123") && !r.is_match("١٢٣")));
        let re = go_regex(r"[\d.]+");
        assert!(matches!(re, Ok(ref r) if r.is_match("1.5")));
        let re = go_regex(r"\bfoo\b");
        assert!(matches!(re, Ok(ref r) if r.is_match("a foo b")));
        let re = go_regex(r"(?i)ABC");
        assert!(matches!(re, Ok(ref r) if r.is_match("xabcx")));
    }

    #[test]
    fn errors_name_the_pattern() {
        let e = go_regex("[").err().unwrap_or_default();
        assert!(e.starts_with("error parsing regexp: "), "{e}");
        assert!(e.ends_with("`[`"), "{e}");
    }
}
