//! `wasmixer convert`: an Istio 1.4 (Mixer) configuration becomes wasmixer filter
//! configurations, Istio `WasmPlugin`s, Envoy bootstrap fragments, the mesh-config settings for
//! the metric tags, modern mTLS resources and the harness's mesh settings.
//!
//! The pipeline: read the YAML documents ([`crate::mixer_yaml`]), sort them into Mixer resources
//! (`mixer`), mTLS resources (`mtls`) and the rest, then write (`output`). Every problem
//! becomes a [`Diagnostic`] located in the user's file.
//!
//! The parts depend one way: [`report`] and `emit` on nothing here, [`context`] on `report`,
//! `mixer` and `mtls` on `context`, `output` on those, and this module on all.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value as Json;

use self::context::{Category, Ctx, Format, Input, Object, Options, SourceRef};
use self::report::{Diagnostic, Location, Report, Severity};
use crate::mixer_yaml::parse_documents;

pub mod context;
mod emit;
mod mixer;
mod mtls;
mod output;
pub mod report;

/// Exit status: everything converted (or valid).
pub const EXIT_COMPLETE: u8 = 0;
/// Exit status: the configuration has errors; nothing was written.
pub const EXIT_INVALID: u8 = 1;
/// Exit status: written, but some parts (reported as `unsupported`) were not converted.
pub const EXIT_INCOMPLETE: u8 = 3;

/// Parsed command line of `convert` / `validate`.
#[derive(Debug)]
pub struct Args {
    pub paths: Vec<String>,
    pub out: Option<String>,
    pub options: Options,
}

/// Parses `[FILES|DIRS|-] [--out DIR] [--format F] [--namespace NS] [--config-namespace NS] [--wasm-url T]`.
pub fn parse_args(words: &[&str]) -> Result<Args, String> {
    let mut args = Args { paths: Vec::new(), out: None, options: Options::default() };
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let mut value = |name: &str| it.next().map(|s| s.to_string()).ok_or_else(|| format!("{name} needs a value"));
        match *w {
            "--out" | "-o" => args.out = Some(value("--out")?),
            "--format" => {
                args.options.format = match value("--format")?.as_str() {
                    "wasmplugin" => Format::WasmPlugin,
                    "envoy" => Format::Envoy,
                    "both" => Format::Both,
                    other => return Err(format!("--format must be wasmplugin, envoy or both, not {other}")),
                }
            }
            "--namespace" | "-n" => args.options.namespace = value("--namespace")?,
            "--config-namespace" => args.options.config_namespace = value("--config-namespace")?,
            "--wasm-url" => args.options.wasm_url = Some(value("--wasm-url")?),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            path => args.paths.push(path.to_string()),
        }
    }
    if args.paths.is_empty() {
        return Err("no input: give files, directories or - for standard input".to_string());
    }
    for ns in [&args.options.namespace, &args.options.config_namespace] {
        if ns.is_empty() || !ns.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(format!("{ns:?} is not a Kubernetes namespace name"));
        }
    }
    Ok(args)
}

/// Reads the inputs: files, directories (their `*.yaml`, `*.yml` and `*.json` files, recursively,
/// in name order) and `-` (standard input).
pub fn read_inputs(paths: &[String]) -> Result<Vec<Input>, String> {
    let mut inputs = Vec::new();
    for p in paths {
        if p == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read standard input: {e}"))?;
            inputs.push(Input { name: "<stdin>".to_string(), text });
            continue;
        }
        let path = Path::new(p);
        if path.is_dir() {
            let mut files = Vec::new();
            collect_dir(path, &mut files)?;
            if files.is_empty() {
                return Err(format!("{p}: no .yaml, .yml or .json file in this directory"));
            }
            for f in files {
                let text = std::fs::read_to_string(&f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
                inputs.push(Input { name: f.display().to_string(), text });
            }
        } else {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {p}: {e}"))?;
            inputs.push(Input { name: p.clone(), text });
        }
    }
    Ok(inputs)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read directory {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            collect_dir(&e, out)?;
        } else if e.extension().and_then(|x| x.to_str()).is_some_and(|x| matches!(x, "yaml" | "yml" | "json")) {
            out.push(e);
        }
    }
    Ok(())
}

/// The result of a conversion: what was found and the files to write (relative path, content).
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub files: Vec<(String, String)>,
}

impl Outcome {
    pub fn exit_code(&self) -> u8 {
        if self.report.has_errors() {
            EXIT_INVALID
        } else if !self.report.complete() {
            EXIT_INCOMPLETE
        } else {
            EXIT_COMPLETE
        }
    }

    /// The content of output file `path` (`filters/deny.json`, `mesh-settings.json`, ...), when
    /// this conversion produced it.
    pub fn file(&self, path: &str) -> Option<&str> {
        self.files.iter().find(|(p, _)| p == path).map(|(_, content)| content.as_str())
    }
}

/// Converts `inputs`. Files are produced only when there is no error.
pub fn convert(inputs: &[Input], opts: &Options) -> Outcome {
    convert_selected(inputs, opts, |_| true)
}

/// Reads `inputs` as [`convert`] does, without converting: their objects, and the problems
/// found reading them (YAML syntax, documents that are not Kubernetes resources).
pub fn scan(inputs: &[Input], opts: &Options) -> (Vec<Object>, Report) {
    let mut ctx = Ctx { inputs, docs: Vec::new(), report: Report::default(), opts };
    let objects = read_objects(&mut ctx);
    (objects, ctx.report)
}

/// [`convert`], limited to the objects `keep` accepts: the others are read (their syntax
/// problems reported) but not converted.
pub fn convert_selected(inputs: &[Input], opts: &Options, keep: impl Fn(&Object) -> bool) -> Outcome {
    let mut ctx = Ctx { inputs, docs: Vec::new(), report: Report::default(), opts };
    let objects: Vec<Object> = read_objects(&mut ctx).into_iter().filter(|o| keep(o)).collect();
    let mut mixer: Vec<&Object> = Vec::new();
    let mut mtls: Vec<&Object> = Vec::new();
    for o in &objects {
        match o.category() {
            Category::Mixer => mixer.push(o),
            Category::Mtls => mtls.push(o),
            Category::Other => report_other(&mut ctx, o),
        }
    }
    let mixer_out = mixer::convert(&mut ctx, &mixer);
    let mtls_out = mtls::convert(&mut ctx, &mtls);
    let mut files = if ctx.report.has_errors() { Vec::new() } else { output::files(&mut ctx, &mixer_out, &mtls_out) };
    if ctx.report.has_errors() {
        files.clear();
    } else {
        files.push(("report.json".to_string(), report_json(&ctx.report)));
    }
    Outcome { report: ctx.report, files }
}

/// Every document of every input, as objects (the items of a `kind: List` one by one).
fn read_objects(ctx: &mut Ctx) -> Vec<Object> {
    let mut objects: Vec<Object> = Vec::new();
    let inputs = ctx.inputs;
    for (ii, input) in inputs.iter().enumerate() {
        let (docs, error) = parse_documents(&input.text);
        if let Some(e) = error {
            let location = Location { file: Some(input.name.clone()), pos: Some(e.pos), ..Location::default() };
            ctx.report.push(Diagnostic::new(Severity::Error, location, format!("YAML syntax error: {}", e.message)));
        }
        for doc in docs {
            for (pos, w) in &doc.warnings {
                let location = Location {
                    file: Some(input.name.clone()),
                    pos: Some(*pos),
                    document: Some(doc.number),
                    ..Location::default()
                };
                ctx.report.push(Diagnostic::new(Severity::Warning, location, w.clone()));
            }
            let di = ctx.docs.len();
            let number = doc.number;
            let value = doc.value.clone();
            ctx.docs.push((ii, doc));
            if value.is_null() {
                continue;
            }
            let src = SourceRef { input: ii, doc: di, number, base: String::new() };
            if value.get("kind").and_then(Json::as_str) == Some("List") {
                let items = value.get("items").and_then(Json::as_array).cloned().unwrap_or_default();
                for (k, item) in items.into_iter().enumerate() {
                    let src = SourceRef { base: format!("items[{k}]"), ..src.clone() };
                    if let Some(o) = object(ctx, src, item) {
                        objects.push(o);
                    }
                }
            } else if let Some(o) = object(ctx, src, value) {
                objects.push(o);
            }
        }
    }
    objects
}

/// Reports an object that is neither Mixer nor mTLS configuration.
fn report_other(ctx: &mut Ctx, o: &Object) {
    let label = format!("{}.{}.{}", o.name, o.kind, ctx.namespace_of(o));
    match o.group.as_str() {
        "authentication.istio.io" => ctx.at(
            Severity::Unsupported,
            o,
            Some(&label),
            Some("kind"),
            format!("{} of authentication.istio.io is not converted (only Policy and MeshPolicy are)", o.kind),
        ),
        "rbac.istio.io" => ctx.at(
            Severity::Unsupported,
            o,
            Some(&label),
            None,
            format!(
                "Istio RBAC ({}) is not converted: rewrite it as a security.istio.io/v1beta1 AuthorizationPolicy",
                o.kind
            ),
        ),
        group => {
            let what =
                if group.ends_with("istio.io") { "not Mixer or mTLS configuration" } else { "not Istio configuration" };
            ctx.at(
                Severity::Note,
                o,
                Some(&label),
                None,
                format!("ignored ({what}): apply it unchanged if it is still needed"),
            );
        }
    }
}

/// `report.json`: whether the output is complete, and every diagnostic.
pub fn report_json(report: &Report) -> String {
    let v = serde_json::json!({
        "complete": report.complete(),
        "errors": report.count(Severity::Error),
        "unsupported": report.count(Severity::Unsupported),
        "warnings": report.count(Severity::Warning),
        "notes": report.count(Severity::Note),
        "diagnostics": report.sorted().iter().map(|d| d.to_json()).collect::<Vec<_>>(),
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// Checks the Kubernetes shape of one document (kind, metadata.name) and makes an [`Object`].
fn object(ctx: &mut Ctx, src: SourceRef, value: Json) -> Option<Object> {
    let doc = ctx.docs.get(src.doc).map(|(_, d)| d);
    let location = |field: &str| {
        let path = Ctx::full_path(&src, field);
        Location {
            file: ctx.inputs.get(src.input).map(|i| i.name.clone()),
            pos: doc.map(|d| d.locate(&path)),
            document: doc.map(|d| d.number),
            field: (!field.is_empty()).then(|| field.to_string()),
            ..Location::default()
        }
    };
    if !value.is_object() {
        let l = location("");
        ctx.report.push(Diagnostic::new(
            Severity::Error,
            l,
            "a document must be a mapping (a Kubernetes resource with apiVersion, kind, metadata and spec)",
        ));
        return None;
    }
    let api_version = value.get("apiVersion").and_then(Json::as_str).map(str::to_string);
    let Some(kind) = value.get("kind").and_then(Json::as_str).map(str::to_string) else {
        let l = location("kind");
        ctx.report.push(Diagnostic::new(Severity::Error, l, "missing field kind"));
        return None;
    };
    let Some(name) =
        value.pointer("/metadata/name").and_then(Json::as_str).filter(|n| !n.is_empty()).map(str::to_string)
    else {
        let mut l = location("metadata.name");
        l.resource = Some(format!("{kind} (unnamed)"));
        ctx.report.push(Diagnostic::new(Severity::Error, l, "missing field metadata.name"));
        return None;
    };
    let namespace =
        value.pointer("/metadata/namespace").and_then(Json::as_str).filter(|n| !n.is_empty()).map(str::to_string);
    let group = api_version.as_deref().and_then(|v| v.rsplit_once('/')).map(|(g, _)| g.to_string()).unwrap_or_default();
    Some(Object { src, api_version, group, kind, name, namespace, value })
}

/// Prints the diagnostics and the summary; `wrote` says whether files were written.
pub fn print_report(report: &Report, wrote: bool, err: &mut impl Write) -> std::io::Result<()> {
    for d in report.sorted() {
        writeln!(err, "{d}")?;
    }
    writeln!(err, "{}", report.summary(wrote))
}

/// Writes `files` under `out`, removing outputs of an earlier run that this one did not produce.
pub fn write_files(out: &Path, files: &[(String, String)]) -> Result<(), String> {
    for stale in output::ALL_OUTPUTS {
        if !files.iter().any(|(p, _)| p == stale) {
            let p = out.join(stale);
            if p.is_file() {
                std::fs::remove_file(&p).map_err(|e| format!("cannot remove stale {}: {e}", p.display()))?;
            }
        }
    }
    for (rel, content) in files {
        let p = out.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&p, content).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    Ok(())
}

/// `wasmixer convert ...`.
pub fn run(words: &[&str], out: &mut impl Write, err: &mut impl Write) -> Result<ExitCode, String> {
    let args = parse_args(words)?;
    let Some(dir) = args.out.clone() else {
        return Err("convert needs --out DIR (or use wasmixer validate)".to_string());
    };
    let inputs = read_inputs(&args.paths)?;
    let outcome = convert(&inputs, &args.options);
    let io = |e: std::io::Error| format!("cannot write output: {e}");
    let wrote = !outcome.report.has_errors();
    if wrote {
        write_files(Path::new(&dir), &outcome.files)?;
        for (rel, _) in &outcome.files {
            writeln!(out, "wrote {}", Path::new(&dir).join(rel).display()).map_err(io)?;
        }
    }
    print_report(&outcome.report, wrote, err).map_err(io)?;
    Ok(ExitCode::from(outcome.exit_code()))
}
