//! Go RE2 regular expressions on Rust's `regex` crate. The syntaxes agree except that Go's
//! Perl classes (`\d \w \s \b` and negations) are ASCII-only, so they are rewritten to ASCII.

use regex::Regex;

/// Compiles a Go regular expression; errors read `error parsing regexp: ...` like Go's.
pub fn go_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(&asciify_perl_classes(pattern)).map_err(|e| {
        let detail = e.to_string();
        let last = detail.lines().filter(|l| !l.trim().is_empty()).last().unwrap_or("invalid").trim().to_string();
        format!("error parsing regexp: {}: `{pattern}`", last.trim_start_matches("error: "))
    })
}

fn asciify_perl_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let Some(e) = chars.next() else {
                out.push(c);
                break;
            };
            let ascii = match e {
                'd' => Some(("0-9", false)),
                'D' => Some(("0-9", true)),
                'w' => Some(("0-9A-Za-z_", false)),
                'W' => Some(("0-9A-Za-z_", true)),
                's' => Some(("\\t\\n\\f\\r ", false)),
                'S' => Some(("\\t\\n\\f\\r ", true)),
                _ => None,
            };
            match (ascii, in_class) {
                (Some((set, false)), true) => out.push_str(set),
                (Some((set, negated)), false) => {
                    out.push('[');
                    if negated {
                        out.push('^');
                    }
                    out.push_str(set);
                    out.push(']');
                }
                (Some(_), true) => {
                    // A negated Perl class inside a bracket: keep Rust's (Unicode) meaning.
                    out.push('\\');
                    out.push(e);
                }
                (None, false) if e == 'b' || e == 'B' => {
                    out.push_str("(?-u:\\");
                    out.push(e);
                    out.push(')');
                }
                (None, _) => {
                    out.push('\\');
                    out.push(e);
                }
            }
            continue;
        }
        if c == '[' && !in_class {
            in_class = true;
            out.push(c);
            // A leading `]` (or `^]`) is literal inside a class.
            if chars.peek() == Some(&'^') {
                out.push('^');
                chars.next();
            }
            if chars.peek() == Some(&']') {
                out.push_str("\\]");
                chars.next();
            }
            continue;
        }
        if c == ']' && in_class {
            in_class = false;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_classes_are_ascii_like_go() {
        let re = go_regex(r"^\d+$").map_err(|e| e);
        assert!(matches!(re, Ok(ref r) if r.is_match("123") && !r.is_match("١٢٣")));
        let re = go_regex(r"[\d.]+");
        assert!(matches!(re, Ok(ref r) if r.is_match("1.5")));
        let re = go_regex(r"\bfoo\b");
        assert!(matches!(re, Ok(ref r) if r.is_match("a foo b")));
    }

    #[test]
    fn errors_name_the_pattern() {
        let e = go_regex("[").err().unwrap_or_default();
        assert!(e.starts_with("error parsing regexp: "), "{e}");
        assert!(e.ends_with("`[`"), "{e}");
    }
}
