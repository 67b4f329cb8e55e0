//! Property tests of the CEXL engine: random and mutated expressions and attribute bags. The
//! parser, checker and evaluator never panic and always finish, and printing a parsed
//! expression gives source that parses to the same AST. Runs natively and on wasm32.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use wasmixer_engine::expr::ast::parse;
use wasmixer_engine::expr::{Manifest, Program};

mod support;
use support::{gen_expr, mutate, random_bag, Rng};

#[test]
fn random_and_mutated_expressions_never_panic() {
    let m = Manifest::istio();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut compiled = 0;
    for i in 0..3000 {
        let mut src = gen_expr(&mut rng, 1 + (i % 4) as u32);
        if i % 2 == 1 {
            src = mutate(&mut rng, &src);
        }
        if let Ok(p) = Program::compile(&src, m) {
            compiled += 1;
            let bag = random_bag(&mut rng, m);
            let _ = p.evaluate(&bag).map(|v| v.into_owned());
        }
    }
    assert!(compiled > 150, "the generator should produce many well-typed expressions, got {compiled}");
}

#[test]
fn printing_then_parsing_gives_the_same_ast() {
    let mut rng = Rng(42);
    let mut checked = 0;
    for i in 0..3000 {
        let src = gen_expr(&mut rng, 1 + (i % 4) as u32);
        let Ok(ast) = parse(&src) else { continue };
        let printed = ast.to_source();
        let again = parse(&printed).unwrap_or_else(|e| panic!("{src} printed as {printed} does not parse: {e}"));
        assert_eq!(ast, again, "{src} -> {printed}");
        checked += 1;
    }
    assert!(checked > 1000, "only {checked} round trips");
}

#[test]
fn pathological_inputs_finish() {
    let m = Manifest::istio();
    for src in [
        "(".repeat(100_000),
        "a.".repeat(50_000),
        format!("\"{}\"", "\\".repeat(10_001)),
        "1 + ".repeat(20_000) + "1",
        "x | ".repeat(20_000) + "\"y\"",
        "\u{feff}\u{202e}abc".to_string(),
        String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x41]).into_owned(),
    ] {
        let _ = Program::compile(&src, m);
    }
}
