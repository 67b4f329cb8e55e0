//! A small, deterministic YAML writer for the converter's outputs (block style, the layout
//! `kubectl get -o yaml` uses; strings quoted only when a plain scalar would read differently).

use serde_json::Value as Json;
use yaml_rust2::scanner::TScalarStyle;

use crate::mixer_yaml::resolve;

/// One YAML document for `v` (no leading `---`), ending with a newline.
pub fn to_yaml(v: &Json) -> String {
    let mut out = String::new();
    match v {
        Json::Object(m) if !m.is_empty() => write_map(m, 0, &mut out),
        Json::Array(a) if !a.is_empty() => write_seq(a, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

/// Several documents separated by `---`.
pub fn to_yaml_stream(docs: &[Json]) -> String {
    docs.iter().map(to_yaml).collect::<Vec<_>>().join("---\n")
}

fn indent(n: usize, out: &mut String) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn write_map(m: &serde_json::Map<String, Json>, level: usize, out: &mut String) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            indent(level, out);
        }
        out.push_str(&string(k));
        out.push(':');
        match v {
            Json::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                indent(level + 2, out);
                write_map(inner, level + 2, out);
            }
            Json::Array(items) if !items.is_empty() => {
                out.push('\n');
                indent(level, out);
                write_seq(items, level, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

/// Writes `- item` lines; the first dash goes where the caller left the cursor.
fn write_seq(items: &[Json], level: usize, out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            indent(level, out);
        }
        out.push_str("- ");
        match item {
            Json::Object(m) if !m.is_empty() => write_map(m, level + 2, out),
            Json::Array(a) if !a.is_empty() => write_seq(a, level + 2, out),
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Json) -> String {
    match v {
        Json::Null => "null".to_string(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => string(s),
        Json::Object(_) => "{}".to_string(),
        Json::Array(_) => "[]".to_string(),
    }
}

/// A string, plain when YAML (1.1 and 1.2) reads it back as the same string, else quoted.
pub fn string(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || first.is_whitespace() || s.ends_with(char::is_whitespace) {
        return false;
    }
    if s.chars().any(|c| c.is_control() || c == '\u{feff}') || s.contains(": ") || s.contains(" #") || s.ends_with(':')
    {
        return false;
    }
    // Anything YAML 1.1 or 1.2 could resolve to another type (numbers, booleans, null, .inf).
    if resolve(s, TScalarStyle::Plain, None) != Json::String(s.to_string()) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    !(lower.starts_with('.')
        || lower.starts_with("+.")
        || lower.starts_with("-.")
        || s.chars().all(|c| c.is_ascii_digit() || ":._+-eE".contains(c)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mixer_yaml::parse_documents;
    use serde_json::json;

    #[test]
    fn round_trips() {
        let v = json!({
            "apiVersion": "extensions.istio.io/v1alpha1",
            "metadata": {"name": "x", "labels": {}},
            "spec": {"list": [{"a": 1, "b": [true, null, "on", "1", "a: b", "#c", ""]}, [1, 2], "s"], "match": "a == \"b\" | 'c'", "n": 1.5},
            "empty": [],
        });
        let text = to_yaml(&v);
        let (docs, err) = parse_documents(&text);
        assert!(err.is_none(), "{text}");
        assert_eq!(docs[0].value, v, "{text}");
        assert!(text.contains("apiVersion: extensions.istio.io/v1alpha1\n"), "{text}");
    }
}
