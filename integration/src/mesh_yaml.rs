//! Just enough YAML to read the seed scenarios (Kubernetes-style resources) as JSON values, so
//! the mesh can apply them as they are written: documents split by `---`, block mappings and
//! sequences (including `- key: v` items and sequences at their key's indentation), flow
//! sequences and mappings (`[ a, b ]`, `{}`), single- and double-quoted scalars, plain scalars
//! (integers, floats, `true`/`false`, `null`/`~`, else strings) and `#` comments. Block scalars
//! (`|`, `>`), anchors and tags are rejected with a message rather than misread.
//!
//! When `wasmixer convert` (issue 9) exists, Mixer resources should go through it instead; this
//! reader stays for the mTLS resources, which are the mesh's business.

use serde_json::{Map, Number, Value};

/// Parses every document of `text`; empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    let mut current: Vec<Line> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            if !current.is_empty() {
                docs.push(parse_block_document(std::mem::take(&mut current))?);
            }
            continue;
        }
        if let Some(line) = Line::new(n + 1, raw)? {
            current.push(line);
        }
    }
    if !current.is_empty() {
        docs.push(parse_block_document(current)?);
    }
    Ok(docs)
}

#[derive(Clone, Debug)]
struct Line {
    number: usize,
    indent: usize,
    text: String,
}

impl Line {
    /// The line without its comment; `None` for blank and comment-only lines.
    fn new(number: usize, raw: &str) -> Result<Option<Line>, String> {
        if raw.contains('\t') && raw.trim_start().len() != raw.trim_start_matches('\t').len() {
            return Err(format!("line {number}: tab indentation"));
        }
        let text = strip_comment(raw);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let indent = text.len() - text.trim_start().len();
        Ok(Some(Line { number, indent, text: trimmed.to_string() }))
    }
}

fn strip_comment(raw: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in raw.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return &raw[..i],
            _ => {}
        }
        prev = c;
    }
    raw
}

fn parse_block_document(mut lines: Vec<Line>) -> Result<Value, String> {
    let mut i = 0;
    let indent = lines.first().map_or(0, |l| l.indent);
    let v = parse_block(&mut lines, &mut i, indent)?;
    if let Some(l) = lines.get(i) {
        return Err(format!("line {}: unexpected {:?}", l.number, l.text));
    }
    Ok(v)
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

fn parse_block(lines: &mut [Line], i: &mut usize, indent: usize) -> Result<Value, String> {
    match lines.get(*i) {
        Some(l) if is_item(&l.text) => parse_sequence(lines, i, indent),
        Some(_) => parse_mapping(lines, i, indent),
        None => Ok(Value::Null),
    }
}

fn parse_sequence(lines: &mut [Line], i: &mut usize, indent: usize) -> Result<Value, String> {
    let mut items = Vec::new();
    while let Some(l) = lines.get(*i) {
        if l.indent != indent || !is_item(&l.text) {
            break;
        }
        let number = l.number;
        let rest = l.text.get(1..).unwrap_or("").to_string();
        let content = rest.trim_start().to_string();
        if content.is_empty() {
            *i += 1;
            match lines.get(*i) {
                Some(next) if next.indent > indent => {
                    let child = next.indent;
                    items.push(parse_block(lines, i, child)?);
                }
                _ => items.push(Value::Null),
            }
            continue;
        }
        let is_mapping = !content.starts_with('[') && !content.starts_with('{') && split_key(&content).is_some();
        if is_mapping || is_item(&content) {
            // `- key: value` starts a mapping whose keys line up with `key`.
            let column = indent + 1 + (rest.len() - content.len());
            if let Some(slot) = lines.get_mut(*i) {
                slot.indent = column;
                slot.text = content;
            }
            items.push(parse_block(lines, i, column)?);
        } else {
            items.push(parse_inline(&content).map_err(|e| format!("line {number}: {e}"))?);
            *i += 1;
        }
    }
    Ok(Value::Array(items))
}

/// `key: value` or `key:` (outside quotes); the key unquoted.
fn split_key(text: &str) -> Option<(String, &str)> {
    let (mut single, mut double) = (false, false);
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            ':' if !single && !double => {
                let next = bytes.get(i + 1).copied();
                if next.is_none() || next == Some(b' ') {
                    let key = text[..i].trim();
                    let key = match parse_inline(key) {
                        Ok(Value::String(s)) => s,
                        _ => key.to_string(),
                    };
                    return Some((key, text[i + 1..].trim()));
                }
            }
            '[' | '{' if !single && !double && i == 0 => return None,
            _ => {}
        }
    }
    None
}

fn parse_mapping(lines: &mut [Line], i: &mut usize, indent: usize) -> Result<Value, String> {
    let mut map = Map::new();
    while let Some(l) = lines.get(*i) {
        if l.indent < indent {
            break;
        }
        if l.indent > indent {
            return Err(format!("line {}: unexpected indentation", l.number));
        }
        if is_item(&l.text) {
            break;
        }
        let number = l.number;
        let Some((key, value)) = split_key(&l.text) else {
            return Err(format!("line {number}: expected `key: value`, found {:?}", l.text));
        };
        let value = value.to_string();
        *i += 1;
        let v = if value.is_empty() {
            match lines.get(*i) {
                Some(next) if next.indent > indent => {
                    let child = next.indent;
                    parse_block(lines, i, child)?
                }
                Some(next) if next.indent == indent && is_item(&next.text) => parse_sequence(lines, i, indent)?,
                _ => Value::Null,
            }
        } else {
            parse_inline(&value).map_err(|e| format!("line {number}: {e}"))?
        };
        map.insert(key, v);
    }
    Ok(Value::Object(map))
}

/// A scalar or a flow collection on one line.
fn parse_inline(text: &str) -> Result<Value, String> {
    let mut p = Flow { chars: text.chars().collect(), pos: 0 };
    let v = p.value(false)?;
    p.skip_ws();
    if p.pos != p.chars.len() {
        return Err(format!("trailing text in {text:?}"));
    }
    Ok(v)
}

struct Flow {
    chars: Vec<char>,
    pos: usize,
}

impl Flow {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn value(&mut self, in_flow: bool) -> Result<Value, String> {
        self.skip_ws();
        match self.peek() {
            Some('[') => self.sequence(),
            Some('{') => self.mapping(),
            Some('"') => self.double_quoted().map(Value::String),
            Some('\'') => self.single_quoted().map(Value::String),
            Some('|') | Some('>') => Err("block scalars (| and >) are not supported".to_string()),
            Some('&') | Some('*') | Some('!') => Err("anchors, aliases and tags are not supported".to_string()),
            _ => Ok(plain(&self.plain_text(in_flow))),
        }
    }

    fn plain_text(&mut self, in_flow: bool) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if in_flow && (c == ',' || c == ']' || c == '}') {
                break;
            }
            if in_flow && c == ':' && self.chars.get(self.pos + 1).is_none_or(|n| n.is_whitespace()) {
                break;
            }
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect::<String>().trim().to_string()
    }

    fn double_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err("unterminated double-quoted string".to_string());
            };
            self.pos += 1;
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Err("unterminated escape".to_string());
                    };
                    self.pos += 1;
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err("unterminated single-quoted string".to_string());
            };
            self.pos += 1;
            if c == '\'' {
                if self.peek() == Some('\'') {
                    self.pos += 1;
                    out.push('\'');
                    continue;
                }
                return Ok(out);
            }
            out.push(c);
        }
    }

    fn sequence(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err("unterminated [".to_string()),
                _ => {}
            }
            items.push(self.value(true)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(']') => {}
                other => return Err(format!("expected , or ] in a flow sequence, found {other:?}")),
            }
        }
    }

    fn mapping(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let mut map = Map::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some('}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                None => return Err("unterminated {".to_string()),
                _ => {}
            }
            let key = match self.value(true)? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            self.skip_ws();
            if self.peek() != Some(':') {
                return Err(format!("expected : after key {key:?} in a flow mapping"));
            }
            self.pos += 1;
            let v = self.value(true)?;
            map.insert(key, v);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {}
                other => return Err(format!("expected , or }} in a flow mapping, found {other:?}")),
            }
        }
    }
}

fn plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Number(i.into());
    }
    if text.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '.') {
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(text.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn seed_like_documents() {
        let text = r#"
# a comment
apiVersion: "config.istio.io/v1alpha2"
kind: rule
metadata:
  name: denyreviewsv3
spec:
  match: destination.labels["app"] == "ratings" && source.labels["app"]=="reviews"
  actions:
  - handler: denyreviewsv3handler
    instances: [ denyreviewsv3request ]
---
kind: instance
spec:
  params:
    value: "2" # count each request twice
    message: '"twice the fun!"'
    code: 7
    ratio: 0.5
  peers:
  - mtls: {}
  list:
    - a
    - b: c
      d: [1, "x y", {k: v}]
---
"#;
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0],
            json!({"apiVersion": "config.istio.io/v1alpha2", "kind": "rule", "metadata": {"name": "denyreviewsv3"},
                   "spec": {"match": "destination.labels[\"app\"] == \"ratings\" && source.labels[\"app\"]==\"reviews\"",
                            "actions": [{"handler": "denyreviewsv3handler", "instances": ["denyreviewsv3request"]}]}})
        );
        assert_eq!(
            docs[1],
            json!({"kind": "instance", "spec": {"params": {"value": "2", "message": "\"twice the fun!\"", "code": 7, "ratio": 0.5},
                   "peers": [{"mtls": {}}], "list": ["a", {"b": "c", "d": [1, "x y", {"k": "v"}]}]}})
        );
    }

    #[test]
    fn rejects_what_it_does_not_read() {
        assert!(parse_documents("a: |\n  text\n").is_err());
        assert!(parse_documents("a: &x 1\n").is_err());
        assert!(parse_documents("a: 1\n   b: 2\n").is_err());
    }
}
