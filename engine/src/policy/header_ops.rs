//! Rule header operations (`requestHeaderOperations` / `responseHeaderOperations`), applied for
//! allowed requests as Mixer's dispatcher did: one operation per value, empty or failing values
//! skipped, REMOVE ignoring values. Beyond Mixer: a header name Envoy would refuse is a
//! configuration error, and a value Envoy would refuse (a control character other than tab) is
//! skipped and reported like a failing one; applied, it would turn the allowed request into
//! Envoy's 503 `invalid header value`.

use std::fmt;

use serde_json::Value as Json;

use crate::config::expressions::compile_field;
use crate::config::ConfigError;
use crate::expr::{AttributeBag, Manifest, Program, ValueType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Replace,
    Remove,
    Append,
}

/// One compiled header operation.
#[derive(Debug)]
pub struct HeaderOperation {
    pub name: String,
    pub operation: Operation,
    pub values: Vec<Program>,
}

/// Compiles a rule's `requestHeaderOperations` or `responseHeaderOperations` list.
pub fn compile_header_operations(
    resource: &str,
    field: &str,
    spec: Option<&Json>,
    manifest: &Manifest,
) -> Result<Vec<HeaderOperation>, ConfigError> {
    let Some(spec) = spec.filter(|s| !s.is_null()) else { return Ok(Vec::new()) };
    let list = spec.as_array().ok_or_else(|| ConfigError::new(resource, field, "must be a list"))?;
    let mut ops = Vec::with_capacity(list.len());
    for (i, op) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let name = op
            .get("name")
            .and_then(Json::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ConfigError::new(resource, format!("{at}.name"), "a header name is required"))?;
        if !is_valid_header_name(name) {
            return Err(ConfigError::new(
                resource,
                format!("{at}.name"),
                format!(
                    "{} is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~, after an optional ':')",
                    crate::config::json_text(&Json::from(name))
                ),
            ));
        }
        let operation = match op.get("operation") {
            None | Some(Json::Null) => Operation::Replace,
            Some(v) => match (v.as_str(), v.as_i64()) {
                (Some("REPLACE"), _) | (_, Some(0)) => Operation::Replace,
                (Some("REMOVE"), _) | (_, Some(1)) => Operation::Remove,
                (Some("APPEND"), _) | (_, Some(2)) => Operation::Append,
                _ => {
                    return Err(ConfigError::new(
                        resource,
                        format!("{at}.operation"),
                        format!("unknown operation {} (REPLACE, REMOVE, APPEND)", crate::config::json_text(v)),
                    ))
                }
            },
        };
        let mut values = Vec::new();
        if operation != Operation::Remove {
            let raw = op.get("values").and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[]);
            for (vi, v) in raw.iter().enumerate() {
                let vfield = format!("{at}.values[{vi}]");
                let src = v
                    .as_str()
                    .ok_or_else(|| ConfigError::new(resource, &vfield, "must be a string holding an expression"))?;
                let p = compile_field(resource, &vfield, src, None, manifest)?;
                if p.result_type() != ValueType::String {
                    return Err(ConfigError::new(
                        resource,
                        vfield,
                        "header operation value expression is not of string type",
                    ));
                }
                values.push(p);
            }
        }
        ops.push(HeaderOperation { name: name.to_ascii_lowercase(), operation, values });
    }
    Ok(ops)
}

/// What to do to a header, with an evaluated value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderEdit {
    Replace(String, String),
    Append(String, String),
    Remove(String),
}

/// Whether Envoy accepts `name` as a header name: an RFC 9110 token, or `:` and a token
/// (pseudo-headers such as `:path`).
pub fn is_valid_header_name(name: &str) -> bool {
    let token = name.strip_prefix(':').unwrap_or(name);
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether Envoy sends `value` in a header: tab, visible ASCII, space and bytes of UTF-8
/// sequences (obs-text); any other control character makes it fail the request.
pub fn is_valid_header_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

/// Why a value of a header operation was left out.
#[derive(Debug)]
pub enum SkippedValue {
    /// The expression failed to evaluate (Mixer skipped it too).
    Evaluation(String),
    /// The value has a character no header can carry.
    InvalidCharacter,
}

impl fmt::Display for SkippedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkippedValue::Evaluation(e) => write!(f, "evaluation failed: {e}"),
            SkippedValue::InvalidCharacter => f.write_str("the value has a control character no HTTP header can carry"),
        }
    }
}

impl HeaderOperation {
    /// Evaluates the operation into edits (one per non-empty value); each value left out for
    /// another reason than being empty is reported to `skipped`.
    pub fn edits(
        &self,
        bag: &dyn AttributeBag,
        out: &mut Vec<HeaderEdit>,
        skipped: &mut dyn FnMut(&str, SkippedValue),
    ) {
        if self.operation == Operation::Remove {
            out.push(HeaderEdit::Remove(self.name.clone()));
            return;
        }
        for p in &self.values {
            let v = match p.evaluate(bag) {
                Ok(v) => v,
                Err(e) => {
                    skipped(&self.name, SkippedValue::Evaluation(e.to_string()));
                    continue;
                }
            };
            let Some(text) = v.as_str().filter(|t| !t.is_empty()) else { continue };
            if !is_valid_header_value(text) {
                skipped(&self.name, SkippedValue::InvalidCharacter);
                continue;
            }
            out.push(match self.operation {
                Operation::Append => HeaderEdit::Append(self.name.clone(), text.to_string()),
                _ => HeaderEdit::Replace(self.name.clone(), text.to_string()),
            });
        }
    }
}
