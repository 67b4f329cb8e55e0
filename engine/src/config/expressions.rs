//! Compiling the expressions of a configuration, with Mixer's rules for each place:
//! rule matches (empty or `true` always match, otherwise BOOL), typed instance fields.

use super::error::ConfigError;
use crate::expr::{bounded, Manifest, Program, ValueType};

/// A rule's match: `None` means "always", as for an empty, blank or `true` match.
pub fn compile_match(resource: &str, source: &str, manifest: &Manifest) -> Result<Option<Program>, ConfigError> {
    let trimmed = source.trim();
    if trimmed.is_empty() || trimmed == "true" {
        return Ok(None);
    }
    let program =
        Program::compile(source, manifest).map_err(|e| ConfigError::expression(resource, "match", source, &e))?;
    if program.result_type() != ValueType::Bool {
        return Err(ConfigError::new(
            resource,
            "match",
            format!("expression '{}' evaluated to type {}, expected type BOOL", bounded(source), program.result_type()),
        ));
    }
    if program.is_constant_true() {
        return Ok(None);
    }
    Ok(Some(program))
}

/// An instance or header-operation field; `expected` enforces a type (Mixer's
/// `instance field type mismatch` check), `None` accepts any type.
pub fn compile_field(
    resource: &str,
    field: &str,
    source: &str,
    expected: Option<ValueType>,
    manifest: &Manifest,
) -> Result<Program, ConfigError> {
    let program =
        Program::compile(source, manifest).map_err(|e| ConfigError::expression(resource, field, source, &e))?;
    if let Some(want) = expected {
        if program.result_type() != want {
            return Err(ConfigError::new(
                resource,
                field,
                format!(
                    "instance field type mismatch: expected='{want}', actual='{}', expression='{source}'",
                    program.result_type()
                ),
            ));
        }
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn match_rules() {
        let m = Manifest::istio();
        assert!(compile_match("r", "", m).unwrap().is_none());
        assert!(compile_match("r", "  true ", m).unwrap().is_none());
        assert!(compile_match("r", r#"request.method == "GET""#, m).unwrap().is_some());
        let e = compile_match("r", "request.size | 0", m).unwrap_err();
        assert_eq!(
            e.to_string(),
            "r: field match: expression 'request.size | 0' evaluated to type INT64, expected type BOOL"
        );
        let e = compile_match("denyreviewsv3.rule.default", r#"source.nam == "x""#, m).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"denyreviewsv3.rule.default: field match: position 1: unknown attribute source.nam (expression: source.nam == "x")"#
        );
    }

    /// A constant pattern that Go's regexp rejects rejects the rule, at the pattern; a valid one
    /// (Unicode classes included) compiles.
    #[test]
    fn constant_patterns_are_compiled_with_the_rule() {
        let m = Manifest::istio();
        let src = r#"request.method == "GET" && "[".matches(request.path)"#;
        let e = compile_match("deny.rule.default", src, m).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("deny.rule.default: field match: position 28: error parsing regexp: missing closing ]: `[` (expression: {src})")
        );
        let e = compile_field("i", "params.value", r#""(?<n>x)".matches(request.path)"#, None, m).unwrap_err();
        assert!(
            e.message.starts_with("error parsing regexp: invalid or unsupported Perl syntax: `(?<` (expression: "),
            "{e}"
        );
        assert!(compile_match("r", r#""^/\\p{Greek}+$".matches(request.path)"#, m).unwrap().is_some());
        // A pattern that is not a constant is left to the request, as Mixer did.
        assert!(compile_match("r", r#"(request.headers["re"] | "[").matches(request.path)"#, m).unwrap().is_some());
    }

    #[test]
    fn typed_fields() {
        let m = Manifest::istio();
        let e = compile_field("i", "params.severity", "response.code", Some(ValueType::String), m).unwrap_err();
        assert_eq!(
            e.message,
            "instance field type mismatch: expected='STRING', actual='INT64', expression='response.code'"
        );
    }

    /// Issue 25: an error quotes a window of the expression, not the whole of it (a
    /// 50,000-parenthesis rule made a 200 KB Envoy log line).
    #[test]
    fn messages_do_not_grow_with_the_expression() {
        let m = Manifest::istio();
        let parens = format!("{}true{}", "(".repeat(50_000), ")".repeat(50_000));
        let terms = format!("true{}", " || true".repeat(1_000_000));
        let not_bool = format!("1{}", " + 1".repeat(20_000));
        let garbage = format!("{} ]", "a.b".repeat(30_000));
        for source in [&parens, &terms, &not_bool, &garbage] {
            let text = compile_match("big.rule.default", source, m).unwrap_err().to_string();
            assert!(text.chars().count() < 500, "{} chars: {text}", text.chars().count());
            assert!(text.contains('…'), "{text}");
        }
        // Too many tokens: found at the start, so the window is the expression's first 120
        // characters.
        let e = compile_match("r", &parens, m).unwrap_err();
        assert!(e.message.ends_with(&format!("(expression: {}…)", "(".repeat(120))), "{}", e.message);
    }
}
