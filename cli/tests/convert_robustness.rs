//! Property tests of `wasmixer convert`: the seed scenarios, Istio 1.4's own samples and the
//! error cases, garbled at random (lines dropped, repeated or re-indented, YAML syntax and
//! characters inserted, text cut), always come back as a report, never as a panic, and whatever
//! the converter writes for a filter is a configuration that filter accepts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;

use wasmixer_cli::{convert, Input, Options};
use wasmixer_engine::config::FilterConfig;
use wasmixer_engine::expr::Manifest;
use wasmixer_engine::policy::DenyPlan;
use wasmixer_engine::telemetry::logs::plan::LogPlan;
use wasmixer_engine::telemetry::metrics::plan::MetricPlan;

#[path = "../../engine/tests/support/mod.rs"]
mod support;
use support::{mutate, Rng};

fn inputs() -> Vec<Input> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut out = Vec::new();
    for dir in ["seed", "istio-1.4.10", "errors"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
            out.push(Input { name: p.display().to_string(), text: std::fs::read_to_string(&p).unwrap() });
        }
    }
    out
}

const YAML_BITS: &[&str] = &[
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    "&a ",
    "*a",
    "!!binary ",
    "---\n",
    "\t",
    "'",
    "\"",
    "|\n",
    ">-\n",
    "? ",
    "#",
    "null",
    "~",
    "1e999",
    "-1",
    "\u{feff}",
    "\\u0000",
];

/// Line-level changes YAML is sensitive to, then character-level ones.
fn garble(rng: &mut Rng, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..=rng.below(3) {
        if lines.is_empty() {
            break;
        }
        let at = rng.below(lines.len());
        match rng.below(5) {
            0 => {
                lines.remove(at);
            }
            1 => {
                let copy = lines[at].clone();
                lines.insert(at, copy);
            }
            2 => lines[at] = format!("  {}", lines[at]),
            3 => lines[at] = lines[at].trim_start().to_string(),
            _ => {
                let bit = rng.pick(YAML_BITS);
                let cut = lines[at].char_indices().map(|(i, _)| i).nth(rng.below(lines[at].chars().count() + 1));
                let cut = cut.unwrap_or(lines[at].len());
                lines[at].insert_str(cut, bit);
            }
        }
    }
    let joined = lines.join("\n");
    if rng.below(2) == 0 {
        mutate(rng, &joined)
    } else {
        joined
    }
}

/// What the filter behind `path` says of `config`.
fn compile(path: &str, config: &FilterConfig) -> Result<(), String> {
    let m = Manifest::istio();
    match path {
        "filters/deny.json" => DenyPlan::compile(config, m).map(|_| ()).map_err(|e| e.to_string()),
        "filters/metrics.json" => MetricPlan::compile(config, m).map(|_| ()).map_err(|e| e.to_string()),
        _ => LogPlan::compile(config, m).map(|_| ()).map_err(|e| e.to_string()),
    }
}

/// The filter configurations `convert` wrote must be accepted by the filters' own compilers.
fn written_configurations_compile(outcome: &wasmixer_cli::Outcome, input: &str) {
    for path in ["filters/deny.json", "filters/metrics.json", "filters/access-log.json"] {
        let Some(text) = outcome.file(path) else { continue };
        let config = FilterConfig::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("{path} does not parse: {e}\ninput:\n{input}"));
        if let Err(e) = compile(path, &config) {
            panic!("convert wrote {path}, which its filter rejects: {e}\ninput:\n{input}\n{path}:\n{text}");
        }
    }
}

#[test]
fn garbled_mixer_yaml_gives_a_report_never_a_panic() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let originals = inputs();
    assert!(originals.len() > 20, "the seeds, Istio's samples and the error cases: {}", originals.len());
    let mut written = 0;
    for round in 0..60 {
        for original in &originals {
            let text = garble(&mut rng, &original.text);
            let input = Input { name: format!("{} (garbled, round {round})", original.name), text };
            let outcome = std::panic::catch_unwind(|| convert(std::slice::from_ref(&input), &Options::default()))
                .unwrap_or_else(|_| panic!("convert panicked on {}:\n{}", input.name, input.text));
            let _ = outcome.report.has_errors();
            if outcome.file("filters/deny.json").is_some() || outcome.file("filters/metrics.json").is_some() {
                written += 1;
            }
            written_configurations_compile(&outcome, &input.text);
        }
    }
    assert!(written > 60, "enough garbled inputs still convert to exercise the writers: {written}");
}
