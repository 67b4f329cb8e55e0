//! Patterns, inputs and Go's answers. Sources (golang/go):
//! - `src/regexp/find_test.go` (`findTests`: a match is any non-nil `matches`);
//! - `src/regexp/syntax/parse_test.go` (`invalidRegexps`, `onlyPerl`, `onlyPOSIX`: `onlyPOSIX`
//!   patterns fail with the Perl flags `regexp.Compile` uses);
//! - `src/regexp/syntax/doc.go` (the syntax) and `parse.go` (error codes and texts; which
//!   part of the pattern an error quotes);
//! - issue 30's table (what Mixer's Go answered).
#![allow(clippy::unwrap_used, clippy::panic)]

use super::go_regex;
use super::names::all_unicode_names;

/// (pattern, input, Go's `regexp.MatchString` answer).
const MATCHES: &[(&str, &str, bool)] = &[
    // Issue 30.
    (r"^\pL+$", "über", true),
    (r"^\p{Greek}+$", "αβγ", true),
    (r"^\Qa.b\E$", "a.b", true),
    (r"^\Qa.b\E$", "axb", false),
    ("(?i)^über$", "ÜBER", true),
    ("(?i)^k$", "\u{212a}", true),
    (r"\w+", "ab", true),
    (r"^\w+$", "über", false),
    // find_test.go findTests.
    ("", "", true),
    ("^abcdefg", "abcdefg", true),
    ("a+", "baaab", true),
    ("x", "y", false),
    ("^abcd$", "abcde", false),
    ("^bcd'", "abcdef", false),
    ("[^a-z]+", "ab1234cd", true),
    (r"[a\-\]z]+", "az]-bcz", true),
    (r"[^\n]+", "abcd\n", true),
    ("[日本語]+", "日本語日本語", true),
    ("日本語+", "日本語語語語", true),
    ("()", "", true),
    (r"\a\f\n\r\t\v", "\x07\x0c\n\r\t\x0b", true),
    (r"[\a\f\n\r\t\v]+", "\x07\x0c\n\r\t\x0b", true),
    ("/$", "/abc/", true),
    ("/$", "/abc", false),
    ("(?:.|(?:.a))", "", false),
    ("(a){0}", "", true),
    ("(?-s)(?:(?:^).)", "\n", false),
    ("(?s)(?:(?:^).)", "\n", true),
    (r"\b", "x", true),
    (r"\B", "x", false),
    (r"\B", "xx", true),
    (r"\B", "x y", false),
    (r"[^\S\s]", "abcd", false),
    (r"[^\S[:space:]]", "abcd", false),
    (r"[^\D\d]", "abcd", false),
    (r"[^\D[:digit:]]", "abcd", false),
    (r"(?i)\W", "x", false),
    (r"(?i)\W", "k", false),
    (r"(?i)\W", "s", false),
    (r#"\!\"\#\$\%\&\'\(\)\*\+\,\-\.\/\:\;\<\=\>\?\@\[\\\]\^\_\{\|\}\~"#, r##"!"#$%&'()*+,-./:;<=>?@[\]^_{|}~"##, true),
    (
        r#"[\!\"\#\$\%\&\'\(\)\*\+\,\-\.\/\:\;\<\=\>\?\@\[\\\]\^\_\{\|\}\~]+"#,
        r##"!"#$%&'()*+,-./:;<=>?@[\]^_{|}~"##,
        true,
    ),
    ("\\`", "`", true),
    ("[a-c]*", "\u{65e5}", true),
    // parse_test.go onlyPerl: Perl-only syntax that regexp.Compile accepts.
    ("^[a-b-c]+$", "a-c", true),
    (r"^\Q*+?{[\E$", "*+?{[", true),
    (r"^\Q\\E$", "\\", true),
    ("^(?:a)$", "a", true),
    ("^(?P<name>a)$", "a", true),
    // doc.go: ASCII Perl classes and word boundaries, POSIX classes, Unicode classes.
    (r"^\d+$", "١٢٣", false),
    (r"^\s$", "\u{a0}", false),
    (r"^\s$", "\x0b", false),
    (r"^[[:space:]]$", "\x0b", true),
    (r"\bfoo\b", "a foo b", true),
    (r"\bber\b", "über", true),
    (r"^\PL+$", "123", true),
    (r"^\p{^Greek}+$", "abc", true),
    (r"^\P{^Greek}+$", "αβ", true),
    (r"^\pN+$", "123", true),
    (r"^[\p{Greek}\d]+$", "α1", true),
    (r"^[^\pL]+$", "12", true),
    (r"^\p{Any}$", "\u{10ffff}", true),
    (r"^\p{Cs}", "a", false),
    (r"^\P{Cs}$", "a", true),
    (r"^\p{Lu}$", "A", true),
    (r"^(?i)\p{Lu}$", "a", true),
    (r"^\p{C}$", "\u{378}", false),
    (r"^\p{C}$", "\u{1}", true),
    ("(?i)^[[:upper:]]+$", "abc", true),
    ("^[[:^alpha:]]+$", "123", true),
    ("^[[:word:]]+$", "a_1", true),
    ("(?i)^ſ$", "S", true),
    // doc.go: escapes.
    (r"^\x{10FFFF}$", "\u{10ffff}", true),
    (r"^\x41$", "A", true),
    (r"^\101$", "A", true),
    (r"^\0$", "\0", true),
    (r"^\0101$", "\x081", true),
    (r"\x{D800}", "a", false),
    // doc.go / parse.go: a `{` that starts no repetition is a literal.
    ("^a{,2}$", "a{,2}", true),
    ("^a{2}$", "aa", true),
    ("^x{$", "x{", true),
    ("^x{01}$", "x{01}", true),
    // doc.go: flags.
    ("(?U)a+", "aa", true),
    ("(?m)^b$", "a\nb\nc", true),
    ("^b$", "a\nb\nc", false),
    ("(?s).", "\n", true),
    (".", "\n", false),
    ("(?i-i)A", "a", false),
    ("(?i)a(?-i:B)", "Ab", false),
    ("(?)a", "a", true),
    // parse.go: names Go accepts and the regex crate would not; a flag group changes no
    // stack, so a repetition after it repeats what came before; `\Q\E` is no item.
    ("^(?P<1a>x)$", "x", true),
    ("^a(?i)*$", "aaa", true),
    (r"^a*\Q\E*$", "aa", true),
    (r"^\Qab\E*$", "abbb", true),
    (r"^\b*x$", "x", true),
];

/// (pattern, Go's error).
const ERRORS: &[(&str, &str)] = &[
    ("[", "missing closing ]: `[`"),
    ("[a-z", "missing closing ]: `[a-z`"),
    ("([a-z)", "missing closing ]: `[a-z)`"),
    ("(", "missing closing ): `(`"),
    ("(a|b", "missing closing ): `(a|b`"),
    (")", "unexpected ): `)`"),
    ("(a|b))", "unexpected ): `(a|b))`"),
    ("x{1001}", "invalid repeat count: `{1001}`"),
    ("x{2,1}", "invalid repeat count: `{2,1}`"),
    ("x{9876543210}", "invalid repeat count: `{9876543210}`"),
    ("x{1,9876543210}", "invalid repeat count: `{1,9876543210}`"),
    ("a{100000,}", "invalid repeat count: `{100000,}`"),
    ("((((((((((x{2}){2}){2}){2}){2}){2}){2}){2}){2}){2})", "invalid repeat count: `{2}`"),
    ("a**", "invalid nested repetition operator: `**`"),
    ("a+*", "invalid nested repetition operator: `+*`"),
    ("a?*", "invalid nested repetition operator: `?*`"),
    ("a{1}*", "invalid nested repetition operator: `{1}*`"),
    (".{1}{2}.{3}", "invalid nested repetition operator: `{1}{2}`"),
    ("a*?+", "invalid nested repetition operator: `*?+`"),
    (r"\Q\E*", "missing argument to repetition operator: `*`"),
    ("*", "missing argument to repetition operator: `*`"),
    ("(*)", "missing argument to repetition operator: `*`"),
    ("a|+", "missing argument to repetition operator: `+`"),
    ("(?i)*", "missing argument to repetition operator: `*`"),
    ("(?P<name>a", "missing closing ): `(?P<name>a`"),
    ("(?P<name", "invalid named capture: `(?P<name`"),
    ("(?P<x y>a)", "invalid named capture: `(?P<x y>`"),
    ("(?P<>a)", "invalid named capture: `(?P<>`"),
    ("[a-Z]", "invalid character class range: `a-Z`"),
    ("(?i)[a-Z]", "invalid character class range: `a-Z`"),
    ("[z-a]", "invalid character class range: `z-a`"),
    (r"\pX", "invalid character class range: `\\pX`"),
    (r"\p{greek}", "invalid character class range: `\\p{greek}`"),
    (r"\p{Letter}", "invalid character class range: `\\p{Letter}`"),
    (r"\p{Greek", "invalid character class range: `\\p{Greek`"),
    (r"[\p{Foo}]", "invalid character class range: `\\p{Foo}`"),
    ("[[:foo:]]", "invalid character class range: `[:foo:]`"),
    (r"\8", "invalid escape sequence: `\\8`"),
    (r"\1", "invalid escape sequence: `\\1`"),
    (r"\C", "invalid escape sequence: `\\C`"),
    (r"\Z", "invalid escape sequence: `\\Z`"),
    (r"\é", "invalid escape sequence: `\\é`"),
    (r"[\b]", "invalid escape sequence: `\\b`"),
    (r"\x{110000}", "invalid escape sequence: `\\x{110000`"),
    (r"\x{}", "invalid escape sequence: `\\x{}`"),
    (r"\x{12", "invalid escape sequence: `\\x{12`"),
    (r"\xZ1", "invalid escape sequence: `\\xZ1`"),
    (r"\x1", "invalid escape sequence: `\\x1`"),
    ("a\\", "trailing backslash at end of expression: ``"),
    ("(?x)a", "invalid or unsupported Perl syntax: `(?x`"),
    ("(?i-)a", "invalid or unsupported Perl syntax: `(?i-)`"),
    ("(?-)a", "invalid or unsupported Perl syntax: `(?-)`"),
    ("(?i--m)a", "invalid or unsupported Perl syntax: `(?i--`"),
    // Go 1.13 (Mixer's) knew only the `(?P<name>` form.
    ("(?<name>a)", "invalid or unsupported Perl syntax: `(?<`"),
];

#[test]
fn go_answers() {
    for (pattern, input, want) in MATCHES {
        match go_regex(pattern) {
            Ok(re) => assert_eq!(re.is_match(input), *want, "{pattern:?}.matches({input:?})"),
            Err(e) => panic!("{pattern:?} should compile: {e}"),
        }
    }
}

#[test]
fn go_errors() {
    for (pattern, want) in ERRORS {
        match go_regex(pattern) {
            Ok(_) => panic!("{pattern:?} should fail with {want}"),
            Err(e) => assert_eq!(e, format!("error parsing regexp: {want}"), "{pattern:?}"),
        }
    }
}

/// Every Unicode class name Go 1.13 knows is one the `regex` crate knows too, in and out of
/// brackets and negated. (Not under `(?i)` for all: folding the complements takes seconds in a
/// debug build; `(?i)` on Unicode classes is in `go_answers`.)
#[test]
fn every_go_unicode_name_compiles() {
    for name in all_unicode_names() {
        for pattern in [format!(r"\p{{{name}}}"), format!(r"[^a\P{{{name}}}]"), format!(r"\p{{^{name}}}")] {
            assert!(go_regex(&pattern).is_ok(), "{pattern}: {:?}", go_regex(&pattern).err());
        }
    }
}

/// Patterns Go accepts that this engine cannot run are refused with a message that says so.
#[test]
fn engine_limits_are_named() {
    let deep = format!("{}a{}", "(".repeat(300), ")".repeat(300));
    let e = go_regex(&deep).err().unwrap();
    assert!(e.starts_with("error parsing regexp: expression nests too deeply"), "{e}");
    let big = r"\pL{1000}\pL{1000}\pL{1000}";
    let e = go_regex(big).err().unwrap();
    assert!(e.starts_with("error parsing regexp: expression too large"), "{e}");
    assert!(e.ends_with(&format!("`{big}`")), "{e}");
}
