//! Compact JSON text of a configuration value, for error messages ("must be a list, got 5").
//!
//! `serde_json::Value`'s own `Display` would do, but it brings serde_json's serializer, its
//! pretty printer and its float formatter (with ~17 KB of tables) into every filter only for
//! these messages; this writer reuses the encoders the filters have anyway.

use std::fmt;

use serde_json::{Number, Value as Json};

use crate::gostd::strconv::format_float_f;
use crate::json_escape::write_json_string;

/// Displays `v` as compact JSON.
pub fn json_text(v: &Json) -> JsonText<'_> {
    JsonText(v)
}

/// See [`json_text`].
pub struct JsonText<'a>(&'a Json);

impl fmt::Display for JsonText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_json(self.0, &mut out);
        f.write_str(&out)
    }
}

fn write_json(v: &Json, out: &mut String) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => write_number(n, out),
        Json::String(s) => write_json_string(s.as_bytes(), out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Json::Object(fields) => {
            out.push('{');
            for (i, (k, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k.as_bytes(), out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_number(n: &Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(d) = n.as_f64() {
        format_float_f(d, out);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn compact_json_like_serde_json() {
        for text in [
            r#"null"#,
            r#"true"#,
            r#"-12"#,
            r#"18446744073709551615"#,
            r#"1.5"#,
            r#""a \"b\"\n""#,
            r#"[1,"x",{"k":[]}]"#,
            r#"{"a":{"b":null},"z":false}"#,
        ] {
            let v: Json = serde_json::from_str(text).unwrap();
            assert_eq!(json_text(&v).to_string(), text);
        }
    }
}
