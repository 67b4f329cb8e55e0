//! Every Istio `WasmPlugin` shipped under `envoy-config/` against the CRD's published OpenAPI v3
//! schema (`envoy-config/schema/`, vendored from istio/api), and against the seed: the
//! `pluginConfig` of each filter carries the seed scenario's resources unchanged, in the phase
//! and with the fail strategy the filter needs.
//!
//! The validator covers what the schema uses: types, `nullable`, `properties`, `required`,
//! `additionalProperties`, `x-kubernetes-preserve-unknown-fields`, `enum`, string lengths and
//! `pattern`, integer bounds, array bounds, `x-kubernetes-list-type: map` keys, `anyOf`, and the
//! schema's CEL rules (`x-kubernetes-validations`), each implemented by hand and recognised by its
//! message; an unknown rule fails the test, so a schema update cannot pass unnoticed. It is
//! itself checked against istio/api's own valid and invalid examples.

use std::path::{Path, PathBuf};

use serde_json::Value;
use wasmixer_engine::expr::regex_syntax::go_regex;
use wasmixer_integration::dist::{read_workspace_file, workspace_root};
use wasmixer_integration::{ensure, HarnessError};

const SCHEMA: &str = "envoy-config/schema/wasmplugin-v1alpha1.openapi.json";

/// The non-empty documents of `text`, read by `wasmixer convert`'s YAML reader.
fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let (docs, error) = wasmixer_cli::mixer_yaml::parse_documents(text);
    if let Some(e) = error {
        return Err(format!("line {}, column {}: {}", e.pos.line, e.pos.col, e.message));
    }
    Ok(docs.into_iter().map(|d| d.value).filter(|v| !v.is_null()).collect())
}

fn schema() -> Result<Value, HarnessError> {
    serde_json::from_str(&read_workspace_file(SCHEMA)?).map_err(|e| HarnessError::check(format!("{SCHEMA}: {e}")))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    let actual = type_name(v);
    actual == t || (t == "number" && actual == "integer")
}

/// `isURL(s)` of Kubernetes CEL, near enough: no spaces, `%` escapes well formed, not a bare
/// fragment.
fn is_url(s: &str) -> bool {
    let b = s.as_bytes();
    !s.is_empty()
        && !s.starts_with('#')
        && !s.chars().any(char::is_whitespace)
        && b.iter().enumerate().all(|(i, c)| {
            *c != b'%'
                || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        })
}

fn url_scheme_ok(s: &str) -> bool {
    let allowed = ["", "http", "https", "oci", "file"];
    if let Some((scheme, _)) = s.split_once("://") {
        if is_url(s) {
            return allowed.contains(&scheme);
        }
    }
    let with = format!("http://{s}");
    is_url(&with)
}

fn cel_rule(message: &str, v: &Value, path: &str, errs: &mut Vec<String>) {
    let fail = |errs: &mut Vec<String>| errs.push(format!("{path}: Invalid value: {message}"));
    match message {
        "url must have schema one of [http, https, file, oci]" => {
            if v.as_str().is_some_and(|s| !url_scheme_ok(s)) {
                fail(errs);
            }
        }
        "wildcard not allowed in label value match" => {
            if v.as_str().is_some_and(|s| s.contains('*')) {
                fail(errs);
            }
        }
        "wildcard not allowed in label key match" => {
            if v.as_object().is_some_and(|m| m.keys().any(|k| k.contains('*'))) {
                fail(errs);
            }
        }
        "key must not be empty" => {
            if v.as_object().is_some_and(|m| m.keys().any(String::is_empty)) {
                fail(errs);
            }
        }
        "only one of targetRefs or selector can be set" => {
            let n = ["selector", "targetRef", "targetRefs"].iter().filter(|k| v.get(**k).is_some()).count();
            if n > 1 {
                fail(errs);
            }
        }
        "cross namespace referencing is not currently supported" => {
            if v.as_str().is_some_and(|s| !s.is_empty()) {
                fail(errs);
            }
        }
        "value may only be set when valueFrom is INLINE" => {
            if v.get("valueFrom").and_then(Value::as_str) == Some("HOST") && v.get("value").is_some() {
                fail(errs);
            }
        }
        other => errs.push(format!(
            "{path}: the validator does not implement the CEL rule {other:?}: update tests/mesh_wasmplugin.rs"
        )),
    }
}

/// Appends Kubernetes-style messages for every violation of `schema` by `v` at `path`.
fn validate(schema: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    let field = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    if v.is_null() {
        if schema["nullable"].as_bool() == Some(true) {
            return;
        }
        if let Some(t) = schema["type"].as_str() {
            errs.push(format!("{path} in body must be of type {t}: \"null\""));
        }
        return;
    }
    if let Some(alternatives) = schema["anyOf"].as_array() {
        let ok = alternatives.iter().any(|alt| {
            let mut e = Vec::new();
            validate(alt, v, path, &mut e);
            e.is_empty()
        });
        if !ok {
            errs.push(format!("{path}: matches none of anyOf"));
        }
    }
    if let Some(t) = schema["type"].as_str() {
        if !has_type(v, t) {
            errs.push(format!("{path} in body must be of type {t}: \"{}\"", type_name(v)));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            errs.push(format!("{path}: Unsupported value: {v}: supported values: {allowed:?}"));
        }
    }
    for rule in schema["x-kubernetes-validations"].as_array().map(Vec::as_slice).unwrap_or_default() {
        cel_rule(rule["message"].as_str().unwrap_or(""), v, path, errs);
    }
    match v {
        Value::String(s) => {
            let n = s.chars().count() as u64;
            if let Some(min) = schema["minLength"].as_u64() {
                if n < min {
                    errs.push(format!("{path} in body should be at least {min} chars long"));
                }
            }
            if let Some(max) = schema["maxLength"].as_u64() {
                if n > max {
                    errs.push(format!("{path} in body should be at most {max} chars long"));
                }
            }
            if let Some(p) = schema["pattern"].as_str() {
                match go_regex(p) {
                    Ok(re) if re.is_match(s) => {}
                    Ok(_) => errs.push(format!("{path} in body should match '{p}'")),
                    Err(e) => errs.push(format!("{path}: schema pattern {p:?}: {e}")),
                }
            }
        }
        Value::Number(n) => {
            if let (Some(min), Some(x)) = (schema["minimum"].as_f64(), n.as_f64()) {
                if x < min {
                    errs.push(format!("{path} in body should be greater than or equal to {min}"));
                }
            }
            if let (Some(max), Some(x)) = (schema["maximum"].as_f64(), n.as_f64()) {
                if x > max {
                    errs.push(format!("{path} in body should be less than or equal to {max}"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema["maxItems"].as_u64() {
                if items.len() as u64 > max {
                    errs.push(format!("{path}: Too many: {}: must have at most {max} items", items.len()));
                }
            }
            for (i, item) in items.iter().enumerate() {
                validate(&schema["items"], item, &format!("{path}[{i}]"), errs);
            }
            if schema["x-kubernetes-list-type"].as_str() == Some("map") {
                let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
                    .as_array()
                    .map(|k| k.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for (i, item) in items.iter().enumerate() {
                    let key: Vec<&Value> = keys.iter().map(|k| &item[*k]).collect();
                    if items[..i].iter().any(|prev| keys.iter().map(|k| &prev[*k]).collect::<Vec<_>>() == key) {
                        errs.push(format!("{path}[{i}]: Duplicate value: {item}"));
                    }
                }
            }
        }
        Value::Object(map) => {
            let props = schema["properties"].as_object();
            for k in
                schema["required"].as_array().map(Vec::as_slice).unwrap_or_default().iter().filter_map(Value::as_str)
            {
                if !map.contains_key(k) {
                    errs.push(format!("{}: Required value", field(k)));
                }
            }
            if let Some(max) = schema["maxProperties"].as_u64() {
                if map.len() as u64 > max {
                    errs.push(format!("{path}: Too many: {} properties", map.len()));
                }
            }
            let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
            for (k, x) in map {
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    validate(s, x, &field(k), errs);
                } else if schema["additionalProperties"].is_object() {
                    validate(&schema["additionalProperties"], x, &field(k), errs);
                } else if !preserve {
                    errs.push(format!("{}: unknown field {k:?}", field(k)));
                }
            }
        }
        _ => {}
    }
}

/// Errors of one WasmPlugin document (the envelope, then the schema on the rest).
fn check_wasmplugin(schema: &Value, doc: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    if doc["apiVersion"].as_str() != Some("extensions.istio.io/v1alpha1") {
        errs.push(format!("apiVersion {} (want extensions.istio.io/v1alpha1)", doc["apiVersion"]));
    }
    if doc["kind"].as_str() != Some("WasmPlugin") {
        errs.push(format!("kind {}", doc["kind"]));
    }
    if doc["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        errs.push("metadata.name: Required value".to_string());
    }
    let mut body = doc.as_object().cloned().unwrap_or_default();
    for k in ["apiVersion", "kind", "metadata", "_err"] {
        body.remove(k);
    }
    validate(schema, &Value::Object(body), "", &mut errs);
    errs
}

#[test]
fn the_validator_agrees_with_istio_api_examples() -> Result<(), HarnessError> {
    let schema = schema()?;
    let valid = parse_documents(&read_workspace_file("integration/testdata/mesh-wasmplugin-valid.yaml")?)
        .map_err(HarnessError::check)?;
    ensure!(valid.len() >= 4, "{} valid examples", valid.len());
    for doc in &valid {
        let errs = check_wasmplugin(&schema, doc);
        ensure!(errs.is_empty(), "valid example {} rejected: {errs:?}", doc["metadata"]["name"]);
    }
    let invalid = parse_documents(&read_workspace_file("integration/testdata/mesh-wasmplugin-invalid.yaml")?)
        .map_err(HarnessError::check)?;
    ensure!(invalid.len() >= 10, "{} invalid examples", invalid.len());
    for doc in &invalid {
        let want = doc["_err"].as_str().unwrap_or("");
        let errs = check_wasmplugin(&schema, doc);
        ensure!(
            errs.iter().any(|e| e.contains(want)),
            "invalid example {}: want an error containing {want:?}, got {errs:?}",
            doc["metadata"]["name"]
        );
    }
    Ok(())
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

/// Every `kind: WasmPlugin` document under `envoy-config/` (the vendored schema excluded).
fn shipped_wasmplugins() -> Result<Vec<(String, Value)>, HarnessError> {
    let root = workspace_root();
    let mut files = Vec::new();
    yaml_files(&root.join("envoy-config"), &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&root).unwrap_or(&f).display().to_string();
        if rel.starts_with("envoy-config/schema/") {
            continue;
        }
        let text = std::fs::read_to_string(&f).map_err(|e| HarnessError::io(format!("reading {rel}"), e))?;
        if !text.lines().any(|l| l.trim() == "kind: WasmPlugin") {
            continue;
        }
        for doc in parse_documents(&text).map_err(|e| HarnessError::check(format!("{rel}: {e}")))? {
            if doc["kind"].as_str() == Some("WasmPlugin") {
                out.push((rel.clone(), doc));
            }
        }
    }
    Ok(out)
}

#[test]
fn shipped_wasmplugins_match_the_crd_schema() -> Result<(), HarnessError> {
    let schema = schema()?;
    let plugins = shipped_wasmplugins()?;
    let mut problems = Vec::new();
    for (file, doc) in &plugins {
        for e in check_wasmplugin(&schema, doc) {
            problems.push(format!("{file} ({}): {e}", doc["metadata"]["name"].as_str().unwrap_or("?")));
        }
    }
    // The CRD defaults failStrategy to FAIL_CLOSE (istio/api extensions/v1alpha1/wasm.proto:497-500):
    // a telemetry plugin that leaves it out would refuse traffic when its module cannot load.
    for (file, doc) in &plugins {
        if doc["spec"]["failStrategy"].as_str().is_none() {
            problems.push(format!("{file} ({}): no failStrategy", doc["metadata"]["name"].as_str().unwrap_or("?")));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    let names: Vec<&str> = plugins.iter().filter_map(|(_, d)| d["metadata"]["name"].as_str()).collect();
    for want in ["wasmixer-peer-metadata", "wasmixer-deny", "wasmixer-metrics", "wasmixer-access-log", "wasmixer-mixer"]
    {
        ensure!(names.contains(&want), "no WasmPlugin {want} under envoy-config/ (found {names:?})");
    }
    Ok(())
}

/// The seed's resources as the filters read them.
fn seed_resources(file: &str) -> Result<Vec<Value>, HarnessError> {
    parse_documents(&read_workspace_file(&format!("integration/testdata/mesh-seed/{file}"))?)
        .map_err(HarnessError::check)
}

#[test]
fn shipped_wasmplugins_carry_the_seed_in_the_right_phase() -> Result<(), HarnessError> {
    let plugins = shipped_wasmplugins()?;
    let find = |name: &str| {
        plugins.iter().find(|(_, d)| d["metadata"]["name"].as_str() == Some(name)).map(|(_, d)| d["spec"].clone())
    };
    let expect = [
        // Policy and what it depends on must not fail open; telemetry may do either.
        ("wasmixer-peer-metadata", "AUTHN", Some("FAIL_CLOSE"), "CLIENT_AND_SERVER", None),
        ("wasmixer-deny", "AUTHZ", Some("FAIL_CLOSE"), "SERVER", Some("deny-reviews-v3.yaml")),
        ("wasmixer-metrics", "STATS", Some("FAIL_OPEN"), "CLIENT_AND_SERVER", Some("double-request-count.yaml")),
        ("wasmixer-access-log", "STATS", Some("FAIL_OPEN"), "CLIENT_AND_SERVER", Some("newlog-stdio.yaml")),
    ];
    for (name, phase, fail, mode, seed) in expect {
        let Some(spec) = find(name) else {
            return Err(HarnessError::check(format!("no WasmPlugin {name}")));
        };
        ensure!(spec["phase"] == phase, "{name}: phase {} (want {phase})", spec["phase"]);
        let strategy = spec["failStrategy"].as_str().unwrap_or("(unstated)");
        ensure!(fail.is_none_or(|f| f == strategy), "{name}: failStrategy {strategy} (want {fail:?})");
        ensure!(spec["match"][0]["mode"] == mode, "{name}: match {} (want mode {mode})", spec["match"]);
        ensure!(spec["url"].as_str().is_some_and(|u| u.starts_with("oci://")), "{name}: url {}", spec["url"]);
        if let Some(seed) = seed {
            let want = seed_resources(seed)?;
            let got = spec["pluginConfig"]["resources"].as_array().cloned().unwrap_or_default();
            ensure!(
                got == want,
                "{name}: pluginConfig.resources differ from {seed}:\n got {}\nwant {}",
                Value::Array(got.clone()),
                Value::Array(want)
            );
        }
    }
    Ok(())
}
