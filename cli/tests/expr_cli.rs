//! `wasmixer expr check` and `wasmixer expr eval`, run as the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Stdio};

fn wasmixer(args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmixer"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn check_prints_the_type_or_the_error_with_a_caret() {
    assert_eq!(wasmixer(&["expr", "check", r#"source.labels["app"] | "unknown""#], ""), (0, "STRING\n".to_string()));
    let (code, out) = wasmixer(&["expr", "check", "source.nam == 1"], "");
    assert_eq!(code, 1);
    assert_eq!(out, "error (position 1): unknown attribute source.nam\n  source.nam == 1\n  ^\n");
}

#[test]
fn check_accepts_a_manifest_file() {
    let dir = std::env::temp_dir().join(format!("wasmixer-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("manifest.json");
    std::fs::write(&path, r#"{"x": "DOUBLE"}"#).unwrap();
    assert_eq!(
        wasmixer(&["expr", "check", "x + 1.5", "--manifest", path.to_str().unwrap()], ""),
        (0, "DOUBLE\n".to_string())
    );
}

#[test]
fn eval_answers_one_line_per_request_in_order() {
    let input = [
        r#"{"expr": "destination.labels[\"app\"] == \"ratings\" && source.labels[\"version\"] == \"v3\"", "attrs": {"destination.labels": {"string_map": {"app": "ratings"}}, "source.labels": {"string_map": {"version": "v3"}}}}"#,
        "this is not json",
        r#"{"expr": "a +", "manifest": {"a": "INT64"}}"#,
        r#"{"expr": "x == 1", "manifest": {"x": "INT64"}}"#,
        r#"{"expr": "response.duration | \"0ms\"", "attrs": {"response.duration": {"duration": "1.494269ms"}}}"#,
        r#"{"expr": "ip(\"::ffff:1.2.3.4\")"}"#,
        r#"{"expr": "timestamp(\"2017-01-01T01:00:00+01:00\")"}"#,
        r#"{"expr": "emptyStringMap()"}"#,
        r#"{"expr": "x", "manifest": {"x": "INT64"}, "attrs": {"x": {"int": "one"}}}"#,
    ]
    .join("\n");
    let (code, out) = wasmixer(&["expr", "eval"], &input);
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expected = [
        r#"{"type":"BOOL","value":{"bool":true}}"#,
        r#"{"phase":"input","error":"not JSON: expected ident at line 1 column 2"}"#,
        r#"{"phase":"compile","error":"unable to parse expression 'a +': 1:4: expected operand, found 'EOF'","position":4}"#,
        r#"{"phase":"eval","type":"BOOL","error":"lookup failed: 'x'"}"#,
        r#"{"type":"DURATION","value":{"duration":"1.494269ms"}}"#,
        r#"{"type":"IP_ADDRESS","value":{"ip":"1.2.3.4"}}"#,
        r#"{"type":"TIMESTAMP","value":{"timestamp":"2017-01-01T01:00:00+01:00"}}"#,
        r#"{"type":"STRING_MAP","value":{"string_map":{}}}"#,
        r#"{"phase":"input","error":"attribute x: \"int\" takes a JSON integer, got \"one\""}"#,
    ];
    assert_eq!(lines.len(), expected.len(), "{out}");
    for (got, want) in lines.iter().zip(expected) {
        assert_eq!(got, &serde_json::from_str::<serde_json::Value>(want).unwrap());
    }
}
