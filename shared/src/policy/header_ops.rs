//! Rule header operations (`requestHeaderOperations` / `responseHeaderOperations`), applied for
//! allowed requests as Mixer's dispatcher did: one operation per value, empty or failing values
//! skipped, REMOVE ignoring values.

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

impl HeaderOperation {
    /// Evaluates the operation into edits (one per non-empty value).
    pub fn edits(&self, bag: &dyn AttributeBag, out: &mut Vec<HeaderEdit>) {
        if self.operation == Operation::Remove {
            out.push(HeaderEdit::Remove(self.name.clone()));
            return;
        }
        for p in &self.values {
            let Ok(v) = p.evaluate(bag) else { continue };
            let Some(text) = v.as_str().filter(|t| !t.is_empty()) else { continue };
            out.push(match self.operation {
                Operation::Append => HeaderEdit::Append(self.name.clone(), text.to_string()),
                _ => HeaderEdit::Replace(self.name.clone(), text.to_string()),
            });
        }
    }
}
