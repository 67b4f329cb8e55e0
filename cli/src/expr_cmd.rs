//! `wasmixer expr check` and `wasmixer expr eval`: what does an expression mean, and what does
//! it give for this request?

use std::io::{BufRead, Write};

use serde_json::{json, Value as Json};
use wasmixer_engine::expr::{Manifest, MapBag, Program};

use crate::typed_json::{manifest_from_json, value_from_json, value_to_json};

/// `expr check '<expr>' [--manifest FILE]`: prints the type, or the error with a caret.
pub fn check(expr: &str, manifest: &Manifest, out: &mut impl Write) -> std::io::Result<bool> {
    match Program::compile(expr, manifest) {
        Ok(p) => {
            writeln!(out, "{}", p.result_type())?;
            Ok(true)
        }
        Err(e) => {
            let col = e.column(expr).map(|c| format!(" (position {c})")).unwrap_or_default();
            writeln!(out, "error{col}: {}", e.message)?;
            writeln!(out, "{}", e.caret(expr))?;
            Ok(false)
        }
    }
}

/// `expr eval`: one JSON request per input line, one JSON answer per output line, in order.
pub fn eval_lines(input: impl BufRead, out: &mut impl Write) -> std::io::Result<()> {
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = eval_one(&line);
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}

fn input_error(msg: impl std::fmt::Display) -> Json {
    json!({ "phase": "input", "error": msg.to_string() })
}

/// Answers one request line.
pub fn eval_one(line: &str) -> Json {
    let request: Json = match serde_json::from_str(line) {
        Ok(j) => j,
        Err(e) => return input_error(format!("not JSON: {e}")),
    };
    let Some(expr) = request.get("expr").and_then(Json::as_str) else {
        return input_error("missing \"expr\" (a string)");
    };
    let custom;
    let manifest = match request.get("manifest") {
        None | Some(Json::Null) => Manifest::istio(),
        Some(m) => match manifest_from_json(m) {
            Ok(m) => {
                custom = m;
                &custom
            }
            Err(e) => return input_error(e),
        },
    };
    let mut bag = MapBag::new(manifest);
    if let Some(attrs) = request.get("attrs") {
        let Some(attrs) = attrs.as_object() else { return input_error("\"attrs\" must be an object") };
        for (name, v) in attrs {
            let value = match value_from_json(v) {
                Ok(v) => v,
                Err(e) => return input_error(format!("attribute {name}: {e}")),
            };
            if let Err(e) = bag.set(manifest, name, value) {
                return input_error(e);
            }
        }
    }
    let program = match Program::compile(expr, manifest) {
        Ok(p) => p,
        Err(e) => return json!({ "phase": "compile", "error": e.message, "position": e.column(expr) }),
    };
    let ty = program.result_type().name();
    match program.evaluate(&bag) {
        Ok(v) => json!({ "type": ty, "value": value_to_json(&v) }),
        Err(e) => json!({ "phase": "eval", "type": ty, "error": e.to_string() }),
    }
}

/// Reads a manifest file (JSON object of name: TYPE).
pub fn load_manifest(path: &str) -> Result<Manifest, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read manifest {path}: {e}"))?;
    let j: Json = serde_json::from_str(&text).map_err(|e| format!("manifest {path} is not JSON: {e}"))?;
    manifest_from_json(&j).map_err(|e| format!("manifest {path}: {e}"))
}
