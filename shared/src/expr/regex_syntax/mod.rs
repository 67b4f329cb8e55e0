//! Regular expressions as Mixer ran them: Go's `regexp` (RE2 syntax and semantics), on the
//! `regex` crate. `translate` reads a pattern as Go's parser does and writes it in the crate's
//! syntax (see there for what differs); the crate then matches as RE2 does, Unicode classes
//! and simple case folding included. Go's `\d \w \s \b` are ASCII and stay ASCII.
//!
//! Errors read as Go's: ``error parsing regexp: <what>: `<offending text>` ``. A pattern Go
//! accepts that the crate cannot run (its compiled form too large, nested too deeply) is
//! rejected with a message that says so.

mod class;
mod names;
mod translate;

#[cfg(test)]
mod go_tests;

pub use regex::Regex;

/// Compiles a Go regular expression.
pub fn go_regex(pattern: &str) -> Result<Regex, String> {
    let translated = translate::translate(pattern).map_err(|e| e.to_string())?;
    regex::RegexBuilder::new(&translated).build().map_err(|e| engine_error(pattern, &e))
}

/// The crate's refusal of a translated pattern, in Go's words where Go has them.
fn engine_error(pattern: &str, e: &regex::Error) -> String {
    let what = match e {
        regex::Error::CompiledTooBig(limit) => {
            format!("expression too large (compiled, it would exceed this engine's limit of {limit} bytes)")
        }
        regex::Error::Syntax(msg) if msg.contains("nested parentheses") => {
            "expression nests too deeply (this engine allows 250 levels of parentheses and brackets)".to_string()
        }
        regex::Error::Syntax(msg) => {
            let last = msg.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("invalid").trim();
            format!("regexp/syntax: internal error ({})", last.trim_start_matches("error: "))
        }
        _ => "regexp/syntax: internal error".to_string(),
    };
    format!("error parsing regexp: {what}: `{pattern}`")
}
