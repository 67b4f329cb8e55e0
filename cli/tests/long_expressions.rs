//! Issue 25: `wasmixer validate` and `wasmixer expr check` quote a window of a long expression
//! around the error, not the whole of it (a million-term rule made 62 MB of output).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;

use wasmixer_cli::{expr_cmd, validate};
use wasmixer_engine::expr::Manifest;

fn rule(name: &str, expression: &str) -> String {
    format!(
        "kind: rule\nmetadata: {{name: {name}, namespace: istio-system}}\nspec:\n  match: '{expression}'\n  actions: [{{handler: h, instances: [i]}}]\n"
    )
}

const DENIER: &str = "kind: handler\nmetadata: {name: h, namespace: istio-system}\nspec: {compiledAdapter: denier}\n---\nkind: instance\nmetadata: {name: i, namespace: istio-system}\nspec: {compiledTemplate: checknothing}\n";

#[test]
fn validate_output_stays_small_for_huge_expressions() {
    let parens = format!("{}true{}", "(".repeat(50_000), ")".repeat(50_000));
    let terms = format!("true{}", " || true".repeat(1_000_000));
    // An error in the middle of a long expression: the window is around it.
    let middle = format!(
        "\"{}\" == \"x\" && source.labelz[\"app\"] == \"x\" && \"{}\" == \"y\"",
        "a".repeat(5_000),
        "b".repeat(5_000)
    );
    let text =
        [DENIER.to_string(), rule("parens", &parens), rule("terms", &terms), rule("middle", &middle)].join("---\n");
    let path = std::env::temp_dir().join(format!("wasmixer-long-expressions-{}.yaml", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    let mut out = Vec::new();
    let code = validate::run(&[path.to_str().unwrap()], &mut out).unwrap();
    std::fs::remove_file(&path).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, ExitCode::from(1), "{out}");
    assert_eq!(out.matches(": error: ").count(), 3, "{out}");
    // Three errors, each a message and a window with its caret: a few KB, not megabytes.
    assert!(out.len() < 3_000, "{} bytes:\n{out}", out.len());
    for line in out.lines() {
        assert!(line.chars().count() < 400, "{line}");
    }
    let middle_error = out.lines().skip_while(|l| !l.contains("middle.rule")).take(3).collect::<Vec<_>>();
    assert!(middle_error[0].contains("unknown attribute source.labelz"), "{middle_error:?}");
    // The caret stands under the attribute in the window.
    let column = middle_error[2].chars().count() - 1;
    let under: String = middle_error[1].chars().skip(column).take(13).collect();
    assert_eq!(under, "source.labelz", "{middle_error:?}");
}

#[test]
fn expr_check_quotes_a_window() {
    let terms = format!("true{} ||", " || true".repeat(1_000_000));
    let mut out = Vec::new();
    assert!(!expr_cmd::check(&terms, Manifest::istio(), &mut out).unwrap());
    let out = String::from_utf8(out).unwrap();
    assert!(out.len() < 1_000, "{} bytes: {out}", out.len());
}
