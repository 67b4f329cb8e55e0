//! `wasmixer`: the host-side companion of the filters. See `wasmixer help`.

use std::io::{self, Write};
use std::process::ExitCode;

use wasmixer_cli::{convert, expr_cmd, stats_cmd, validate};
use wasmixer_engine::expr::Manifest;

const USAGE: &str = "\
wasmixer - Mixer's policy and telemetry as proxy-wasm filters

USAGE:
  wasmixer expr check '<expr>' [--manifest FILE]
      Type-check a CEXL expression against the Istio vocabulary (or FILE, a JSON object
      {\"name\": \"TYPE\"}). Prints the result type, or the error with its position marked.
      Exit status 0 when the expression compiles, 1 otherwise.
  wasmixer expr eval
      Read JSON lines on stdin, write one JSON answer per line (see cli/README.md, \"expr eval\").
  wasmixer convert [FILES|DIRS|-] --out DIR [--format wasmplugin|envoy|both] [--namespace NS]
                   [--config-namespace NS] [--wasm-url URL]
      Convert Istio 1.4 Mixer YAML (handler/instance/rule, legacy kinds, mTLS Policy and
      DestinationRule) into filter configs, WasmPlugins, Envoy fragments and mesh settings
      (see cli/README.md). Exit status 0 complete, 1 invalid (nothing written), 3 incomplete.
  wasmixer validate [FILES|DIRS|-] [--namespace NS] [--config-namespace NS]
      The checks of convert, nothing written; same exit statuses.
  wasmixer stats-config <config.json> [--format yaml|json|istio]
      Print the Envoy bootstrap stats_config (stats_tags, histogram_bucket_settings), or the Istio
      settings, that a metrics filter configuration needs (see envoy-config/metrics/README.md).
  wasmixer help
      This text.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("wasmixer: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let io_err = |e: io::Error| format!("cannot write output: {e}");
    match words.as_slice() {
        ["expr", "check", rest @ ..] => {
            let (expr, manifest_path) = parse_check_args(rest)?;
            let custom;
            let manifest = match manifest_path {
                Some(path) => {
                    custom = expr_cmd::load_manifest(path)?;
                    &custom
                }
                None => Manifest::istio(),
            };
            let ok = expr_cmd::check(expr, manifest, &mut out).map_err(io_err)?;
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        ["expr", "eval"] => {
            expr_cmd::eval_lines(io::stdin().lock(), &mut out).map_err(io_err)?;
            Ok(ExitCode::SUCCESS)
        }
        ["stats-config", rest @ ..] => stats_cmd::run(rest, &mut out),
        ["convert", rest @ ..] => convert::run(rest, &mut out, &mut io::stderr().lock()),
        ["validate", rest @ ..] => validate::run(rest, &mut io::stderr().lock()),
        [] | ["help"] | ["--help"] | ["-h"] => {
            out.write_all(USAGE.as_bytes()).map_err(io_err)?;
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(format!("unknown command: {}\n\n{USAGE}", words.join(" "))),
    }
}

fn parse_check_args<'a>(rest: &[&'a str]) -> Result<(&'a str, Option<&'a str>), String> {
    let mut expr = None;
    let mut manifest = None;
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match *arg {
            "--manifest" => manifest = Some(*it.next().ok_or("--manifest needs a file")?),
            _ if expr.is_none() => expr = Some(*arg),
            other => return Err(format!("unexpected argument: {other}")),
        }
    }
    Ok((expr.ok_or("expr check needs an expression")?, manifest))
}
