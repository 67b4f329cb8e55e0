//! `wasmixer convert` / `wasmixer validate`, end to end through the binary: the seed scenarios
//! convert (golden outputs) and behave as the seed README says when their filter
//! configurations are run by the filters' own code; broken configurations give precise
//! messages; Istio 1.4's own samples and chart configuration convert.
//!
//! Golden files: `UPDATE_GOLDEN=1 cargo test -p wasmixer-cli --test convert` rewrites them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value as Json;
use wasmixer_engine::config::FilterConfig;
use wasmixer_engine::expr::{Manifest, MapBag, StringMap, Value};
use wasmixer_engine::policy::DenyPlan;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn wasmixer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmixer")).args(args).current_dir(root()).output().expect("run wasmixer")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wasmixer-convert-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

/// Compares `actual` (relative path -> content) with `testdata/golden/<case>/`.
fn check_golden(case: &str, actual: &BTreeMap<String, String>) {
    let dir = root().join("testdata/golden").join(case);
    if updating() {
        let _ = std::fs::remove_dir_all(&dir);
        for (rel, content) in actual {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        return;
    }
    let expected = read_tree(&dir);
    let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(actual), names(&expected), "{case}: the set of output files differs from testdata/golden/{case}");
    for (rel, content) in actual {
        assert_eq!(content, &expected[rel], "{case}: {rel} differs from the golden file (UPDATE_GOLDEN=1 to accept)");
    }
}

/// `wasmixer convert <inputs> --out <tmp> <extra>`: exit code and the written files.
fn convert(case: &str, inputs: &[&str], extra: &[&str]) -> (i32, BTreeMap<String, String>, String) {
    let out = temp_dir(case);
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec!["convert"];
    args.extend_from_slice(inputs);
    args.extend_from_slice(&["--out", &out_s]);
    args.extend_from_slice(extra);
    // WasmPlugins have no default module URL: name one as a user delivering `make oci` images would.
    if !extra.contains(&"--wasm-url") && !extra.contains(&"envoy") {
        args.extend_from_slice(&["--wasm-url", TEST_WASM_URL]);
    }
    let o = wasmixer(&args);
    let files = read_tree(&out);
    let _ = std::fs::remove_dir_all(&out);
    (o.status.code().unwrap_or(-1), files, text(&o.stderr))
}

/// The module URL the tests give WasmPlugins.
const TEST_WASM_URL: &str = "oci://registry.example.com/wasmixer/{filter}:0.1.0";

const SEEDS: [&str; 6] = [
    "deny-reviews-v3",
    "double-request-count",
    "mtls-mesh-wide",
    "mtls-namespace-foo",
    "mtls-service-httpbin-bar",
    "newlog-stdio",
];

#[test]
fn every_seed_file_converts_to_its_golden_output() {
    for seed in SEEDS {
        let input = format!("testdata/seed/{seed}.yaml");
        let (code, files, stderr) = convert(seed, &[&input], &[]);
        assert_eq!(code, 0, "{seed}: {stderr}");
        assert!(stderr.contains("0 error(s), 0 unsupported"), "{seed}: {stderr}");
        check_golden(&format!("seed-{seed}"), &files);
    }
}

#[test]
fn all_seed_files_convert_together() {
    let (code, files, stderr) = convert("all-seeds", &["testdata/seed"], &["--format", "wasmplugin"]);
    assert_eq!(code, 0, "{stderr}");
    for f in [
        "filters/deny.json",
        "filters/metrics.json",
        "filters/access-log.json",
        "filters/peer-metadata.json",
        "istio/wasmplugins.yaml",
        "istio/security.yaml",
        "istio/mesh-config.yaml",
        "mesh-settings.json",
        "report.json",
    ] {
        assert!(files.contains_key(f), "{f} missing: {:?}", files.keys());
    }
    assert!(!files.keys().any(|f| f.starts_with("envoy/")), "--format wasmplugin writes no Envoy fragments");
    let plugins = &files["istio/wasmplugins.yaml"];
    assert_eq!(plugins.matches("kind: WasmPlugin").count(), 4);
}

fn deny_config(files: &BTreeMap<String, String>) -> DenyPlan {
    let config = FilterConfig::parse(files["filters/deny.json"].as_bytes()).unwrap();
    DenyPlan::compile(&config, Manifest::istio()).unwrap()
}

fn s(v: &str) -> Value<'static> {
    Value::String(Cow::Owned(v.to_string()))
}

fn labels(pairs: &[(&str, &str)]) -> Value<'static> {
    Value::StringMap(Cow::Owned(StringMap::from_pairs(pairs.iter().copied())))
}

fn bag(attrs: &[(&str, Value<'static>)]) -> MapBag {
    let m = Manifest::istio();
    let mut b = MapBag::new(m);
    for (n, v) in attrs {
        b.set(m, n, v.clone()).unwrap();
    }
    b
}

struct NoObserver;
impl wasmixer_engine::policy::CheckObserver for NoObserver {
    fn rule(
        &mut self,
        _: usize,
        _: &wasmixer_engine::policy::deny::CheckRule,
        _: wasmixer_engine::policy::RuleOutcome,
        _: &dyn std::fmt::Display,
    ) {
    }
}

/// The seed README: reviews v3 -> ratings gets 403 with Mixer's body; v1/v2 still pass.
#[test]
fn converted_deny_seed_denies_reviews_v3_only() {
    let (code, files, stderr) =
        convert("deny-semantics", &["testdata/seed/deny-reviews-v3.yaml"], &["--format", "envoy"]);
    assert_eq!(code, 0, "{stderr}");
    let plan = deny_config(&files);
    let request = |version: &str| {
        bag(&[
            ("context.reporter.kind", s("inbound")),
            ("destination.namespace", s("default")),
            ("destination.labels", labels(&[("app", "ratings")])),
            ("source.labels", labels(&[("app", "reviews"), ("version", version)])),
        ])
    };
    let r = plan.check(&request("v3"), 0, &mut NoObserver);
    assert_eq!(wasmixer_engine::policy::status::http_status(r.code()), 403);
    assert_eq!(r.body(), "PERMISSION_DENIED:denyreviewsv3handler.default:Not allowed");
    for v in ["v1", "v2"] {
        assert!(plan.check(&request(v), 0, &mut NoObserver).is_ok(), "{v}");
    }
    // The Envoy fragments carry the same configuration, deny on the inbound side only.
    let inbound: Json = serde_json::from_str(&files["envoy/inbound-http-filters.json"]).unwrap();
    let outbound: Json = serde_json::from_str(&files["envoy/outbound-http-filters.json"]).unwrap();
    let names = |v: &Json| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|f| f["typed_config"]["config"]["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&inbound), ["wasmixer-peer-metadata", "wasmixer-deny"]);
    assert_eq!(names(&outbound), ["wasmixer-peer-metadata"]);
    let embedded = inbound[1]["typed_config"]["config"]["configuration"]["value"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Json>(embedded).unwrap(),
        serde_json::from_str::<Json>(&files["filters/deny.json"]).unwrap()
    );
}

/// The converted deny seed equals the hand-written configuration the integration tests use.
#[test]
fn converted_deny_seed_matches_the_integration_testdata() {
    let (_, files, _) =
        convert("deny-vs-integration", &["testdata/seed/deny-reviews-v3.yaml"], &["--format", "wasmplugin"]);
    let ours: Json = serde_json::from_str(&files["filters/deny.json"]).unwrap();
    let theirs: Json =
        serde_json::from_str(&std::fs::read_to_string(root().join("../integration/testdata/deny-seed.json")).unwrap())
            .unwrap();
    let strip = |v: &Json| -> Vec<Json> {
        v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["metadata"].as_object_mut().unwrap().remove("namespace");
                r
            })
            .collect()
    };
    assert_eq!(strip(&ours), strip(&theirs));
}

/// The seed README: `istio_double_request_count{reporter, source, destination, message}` +2 per request.
#[test]
fn converted_metrics_seed_counts_two_per_request() {
    use wasmixer_engine::telemetry::metrics::plan::MetricPlan;
    use wasmixer_engine::telemetry::metrics::record::{DropCause, MetricSink};
    struct Sink(Vec<(String, Vec<String>, u64)>, usize);
    impl MetricSink for Sink {
        fn sample(&mut self, _metric: usize, labels: &[&str], _value: f64, envoy_value: u64) {
            self.0.push((String::new(), labels.iter().map(|l| l.to_string()).collect(), envoy_value));
        }
        fn dropped(&mut self, _: usize, _: DropCause, _: &dyn std::fmt::Display) {
            self.1 += 1;
        }
    }
    let (code, files, stderr) = convert("metrics-semantics", &["testdata/seed/double-request-count.yaml"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let config = FilterConfig::parse(files["filters/metrics.json"].as_bytes()).unwrap();
    let plan = MetricPlan::compile(&config, Manifest::istio()).unwrap();
    assert_eq!(plan.families.len(), 1);
    assert_eq!(plan.families[0].name, "istio_double_request_count");
    let mut sink = Sink(Vec::new(), 0);
    let b = bag(&[
        ("context.reporter.kind", s("outbound")),
        ("source.workload.name", s("reviews-v3")),
        ("destination.workload.name", s("ratings-v1")),
    ]);
    plan.record(&b, &mut sink);
    assert_eq!(sink.1, 0);
    let labels: Vec<String> = plan.families[0].labels.clone();
    let (_, values, value) = &sink.0[0];
    let got: BTreeMap<&str, &str> = labels.iter().map(String::as_str).zip(values.iter().map(String::as_str)).collect();
    assert_eq!(
        got,
        BTreeMap::from([
            ("reporter", "client"),
            ("source", "reviews-v3"),
            ("destination", "ratings-v1"),
            ("message", "twice the fun!")
        ])
    );
    assert_eq!(*value, 2);
    // Envoy must turn the encoded tags back into labels: every label has a stats_tags entry,
    // in the Envoy fragment and in the mesh config.
    let stats: Json = serde_json::from_str(&files["envoy/stats-config.json"]).unwrap();
    let tags: Vec<&str> = stats["stats_config"]["stats_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag_name"].as_str().unwrap())
        .collect();
    let mesh = &files["istio/mesh-config.yaml"];
    for l in ["reporter", "source", "destination", "message"] {
        assert!(tags.contains(&l), "{l} not in {tags:?}");
        assert!(mesh.contains(&format!("      - {l}\n")), "{l} not in the mesh config:\n{mesh}");
    }
}

/// The seed README: one JSON line per request, in Mixer's key order.
#[test]
fn converted_log_seed_writes_mixers_line() {
    use wasmixer_engine::gostd::time::Timestamp;
    use wasmixer_engine::telemetry::logs::plan::LogPlan;
    use wasmixer_engine::telemetry::logs::render::{LineMeta, LogSink};
    struct Lines(Vec<String>);
    impl LogSink for Lines {
        fn line(&mut self, _meta: &LineMeta<'_>, line: &str) {
            self.0.push(line.to_string());
        }
    }
    let (code, files, stderr) = convert("log-semantics", &["testdata/seed/newlog-stdio.yaml"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let config = FilterConfig::parse(files["filters/access-log.json"].as_bytes()).unwrap();
    let plan = LogPlan::compile(&config, Manifest::istio()).unwrap();
    let t = Timestamp::parse_rfc3339("2019-12-16T16:45:53.950607Z").unwrap();
    let b = bag(&[
        ("request.time", Value::Timestamp(t)),
        ("source.labels", labels(&[("app", "reviews")])),
        ("destination.labels", labels(&[("app", "ratings")])),
        ("response.code", Value::Int64(200)),
        ("response.size", Value::Int64(48)),
        ("response.duration", Value::Duration(1_494_269)),
    ]);
    let mut lines = Lines(Vec::new());
    plan.render(&b, 0, &mut String::new(), &mut lines);
    assert_eq!(
        lines.0,
        [
            r#"{"level":"warn","time":"2019-12-16T16:45:53.950607Z","instance":"newlog.instance.istio-system","destination":"ratings","latency":"1.494269ms","responseCode":200,"responseSize":48,"source":"reviews","user":"unknown"}"#
        ]
    );
}

// ---- mTLS: mesh-settings.json replayed with the documented resolution (cli/README.md) ----

/// Server side: the most specific entry (service, then namespace, then mesh) for a workload.
fn server_mode(settings: &Json, namespace: &str, app: &str, port: u16) -> Option<String> {
    let servers = settings["servers"].as_array().unwrap();
    let pick = |scope: &str| {
        servers.iter().rev().find(|s| {
            s["scope"] == scope
                && match scope {
                    "service" => s["namespace"] == namespace && s["workload_selector"]["app"] == app,
                    "namespace" => s["namespace"] == namespace,
                    _ => true,
                }
        })
    };
    for scope in ["service", "namespace", "mesh"] {
        if let Some(s) = pick(scope) {
            if let Some(m) = s["port_modes"][port.to_string()].as_str() {
                return Some(m.to_string());
            }
            if let Some(m) = s["mode"].as_str() {
                return Some(m.to_string());
            }
        }
    }
    None
}

fn host_matches(pattern: &str, host: &str) -> Option<usize> {
    if pattern == host {
        return Some(usize::MAX);
    }
    pattern.strip_prefix('*').filter(|suffix| host.ends_with(suffix)).map(str::len)
}

/// Client side: Istio 1.4's DestinationRule lookup (client namespace, then the service's
/// namespace, then the root namespace; most specific host first).
fn client_mtls(settings: &Json, client_ns: &str, host: &str, port: u16) -> bool {
    let clients = settings["clients"].as_array().unwrap();
    let root = settings["root_namespace"].as_str().unwrap();
    let service_ns = host.split('.').nth(1).unwrap_or("");
    let exported = |c: &Json| {
        c["namespace"] == client_ns || c["export_to"].as_array().unwrap().iter().any(|e| e == "*" || e == client_ns)
    };
    for ns in [client_ns, service_ns, root] {
        let best = clients
            .iter()
            .filter(|c| c["namespace"] == ns && exported(c))
            .filter_map(|c| host_matches(c["host"].as_str().unwrap(), host).map(|score| (score, c)))
            .max_by_key(|(score, _)| *score);
        if let Some((_, c)) = best {
            let mode = c["port_modes"][port.to_string()].as_str().or(c["mode"].as_str()).unwrap_or("DISABLE");
            return mode == "ISTIO_MUTUAL";
        }
    }
    false
}

/// sleep.{foo,bar} -> httpbin.{foo,bar}:8000: 200 unless the server demands mTLS the client does not offer.
fn outcomes(settings: &Json, default_server: &str) -> BTreeMap<String, u16> {
    let mut out = BTreeMap::new();
    for client in ["foo", "bar"] {
        for server in ["foo", "bar"] {
            let host = format!("httpbin.{server}.svc.cluster.local");
            let strict = server_mode(settings, server, "httpbin", 8000).unwrap_or_else(|| default_server.to_string())
                == "STRICT";
            let mtls = client_mtls(settings, client, &host, 8000);
            out.insert(format!("sleep.{client}->httpbin.{server}"), if strict && !mtls { 503 } else { 200 });
        }
    }
    out
}

fn mesh_settings(seed: &str) -> Json {
    let (code, files, stderr) = convert(&format!("mtls-{seed}"), &[&format!("testdata/seed/{seed}.yaml")], &[]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&files["mesh-settings.json"]).unwrap()
}

#[test]
fn mtls_seeds_replay_their_outcomes() {
    // Mesh-wide: the servers already demanded mTLS (503 before); with the DestinationRule, 200 everywhere.
    let s = mesh_settings("mtls-mesh-wide");
    assert!(outcomes(&s, "STRICT").values().all(|c| *c == 200), "{:?}", outcomes(&s, "STRICT"));
    let none = serde_json::json!({"root_namespace": "istio-system", "servers": [], "clients": []});
    assert!(outcomes(&none, "STRICT").values().all(|c| *c == 503));
    // Namespace foo: httpbin.foo requires mTLS, and clients configured by the rule reach it.
    let s = mesh_settings("mtls-namespace-foo");
    assert_eq!(server_mode(&s, "foo", "httpbin", 8000).as_deref(), Some("STRICT"));
    assert_eq!(server_mode(&s, "bar", "httpbin", 8000), None);
    assert!(outcomes(&s, "PERMISSIVE").values().all(|c| *c == 200));
    assert!(client_mtls(&s, "bar", "httpbin.foo.svc.cluster.local", 8000));
    assert!(!client_mtls(&s, "foo", "httpbin.bar.svc.cluster.local", 8000));
    // One service: only httpbin.bar requires mTLS.
    let s = mesh_settings("mtls-service-httpbin-bar");
    assert_eq!(server_mode(&s, "bar", "httpbin", 8000).as_deref(), Some("STRICT"));
    assert_eq!(server_mode(&s, "bar", "sleep", 8000), None);
    assert_eq!(server_mode(&s, "foo", "httpbin", 8000), None);
    assert!(outcomes(&s, "PERMISSIVE").values().all(|c| *c == 200));
    assert!(client_mtls(&s, "foo", "httpbin.bar.svc.cluster.local", 8000));
}

// ---- Istio 1.4's own configurations ----

#[test]
fn istio_samples_validate() {
    let complete = [
        "mixer-rule-deny-label.yaml",
        "mixer-rule-deny-whitelist.yaml",
        "mixer-rule-deny-ip.yaml",
        "mixer-rule-deny-label-crd.yaml",
        "mixer-rule-deny-whitelist-crd.yaml",
        "mixer-rule-deny-ip-crd.yaml",
        "metrics.yaml",
        "metrics-crd.yaml",
        "tcp-metrics.yaml",
        "log-entry.yaml",
        "log-entry-crd.yaml",
        "mixer-config.yaml",
    ];
    for f in complete {
        let o = wasmixer(&["validate", &format!("testdata/istio-1.4.10/{f}")]);
        assert_eq!(o.status.code(), Some(0), "{f}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("0 error(s), 0 unsupported"), "{f}: {}", text(&o.stderr));
    }
    // Adapters wasmixer does not implement: reported by name, exit status 3.
    for (f, adapter) in [("mixer-rule-productpage-ratelimit.yaml", "memquota"), ("fluentd-istio.yaml", "fluentd")] {
        let o = wasmixer(&["validate", &format!("testdata/istio-1.4.10/{f}")]);
        assert_eq!(o.status.code(), Some(3), "{f}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains(&format!("adapter {adapter} is not implemented")), "{f}: {}", text(&o.stderr));
    }
}

#[test]
fn istio_default_telemetry_config_converts() {
    let (code, files, stderr) =
        convert("istio-mixer-config", &["testdata/istio-1.4.10/mixer-config.yaml"], &["--format", "wasmplugin"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("kubeattrgenrulerule.rule.istio-system: field spec.actions[0]: not converted"), "{stderr}");
    // Istio's standard metrics are left to Istio's own telemetry in the WasmPlugins.
    assert!(
        stderr.contains("note: metrics istio_requests_total, istio_request_duration_seconds, istio_request_bytes, istio_response_bytes, istio_tcp_sent_bytes_total, istio_tcp_received_bytes_total, istio_tcp_connections_opened_total, istio_tcp_connections_closed_total are left to Istio in the WasmPlugins (metrics.skip_metrics)"),
        "{stderr}"
    );
    assert!(files["istio/wasmplugins.yaml"].contains("skip_metrics:"));
    assert!(files["istio/wasmplugin-mixer.yaml"].contains("skip_metrics:"));
    assert!(!files["filters/metrics.json"].contains("skip_metrics"), "the filter's own document keeps them");
    check_golden("istio-mixer-config", &files);
}

#[test]
fn istio_bookinfo_samples_convert_together() {
    let (code, files, stderr) = convert(
        "istio-bookinfo",
        &[
            "testdata/istio-1.4.10/mixer-rule-deny-label.yaml",
            "testdata/istio-1.4.10/mixer-rule-deny-whitelist.yaml",
            "testdata/istio-1.4.10/mixer-rule-deny-ip-crd.yaml",
            "testdata/istio-1.4.10/metrics-crd.yaml",
            "testdata/istio-1.4.10/log-entry-crd.yaml",
        ],
        &["--format", "both"],
    );
    assert_eq!(code, 0, "{stderr}");
    check_golden("istio-bookinfo", &files);
}

// ---- Problems ----

/// Each file of testdata/errors gives the report in its `.stderr` file and exit status.
#[test]
fn error_reports() {
    let cases = [
        ("broken-reference", 1),
        ("duplicates", 1),
        ("missing-fields", 1),
        ("regex", 1),
        ("type-errors", 1),
        ("unknown-kinds", 1),
        ("unsupported", 3),
        ("yaml-syntax", 1),
    ];
    for (name, want) in cases {
        let input = format!("testdata/errors/{name}.yaml");
        let o = wasmixer(&["validate", &input]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(want), "{name}: {stderr}");
        let golden = root().join(format!("testdata/errors/{name}.stderr"));
        if updating() {
            std::fs::write(&golden, &stderr).unwrap();
        } else {
            assert_eq!(
                stderr,
                std::fs::read_to_string(&golden).unwrap(),
                "{name}: report differs from {}",
                golden.display()
            );
        }
    }
}

#[test]
fn messages_name_file_document_resource_field_and_position() {
    let o = wasmixer(&["validate", "testdata/errors/type-errors.yaml"]);
    let e = text(&o.stderr);
    assert!(e.contains("testdata/errors/type-errors.yaml:34:52: error: document 4: typo.rule.istio-system: field spec.match: position 43: unknown attribute source.labelz\n"), "{e}");
    assert!(e.contains("notbool.rule.istio-system: field spec.match: expression 'request.size | 0' evaluated to type INT64, expected type BOOL"), "{e}");
    assert!(e.contains("newlog.instance.istio-system: field spec.params.severity: instance field type mismatch: expected='STRING', actual='INT64'"), "{e}");
    let o = wasmixer(&["validate", "testdata/errors/regex.yaml"]);
    let e = text(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("testdata/errors/regex.yaml:25:51: error: document 3: badpattern.rule.istio-system: field spec.match: position 42: error parsing regexp: missing closing ]: `[`\n"), "{e}");
    assert!(!e.contains("unicode.rule"), "{e}");
    let o = wasmixer(&["validate", "testdata/errors/broken-reference.yaml"]);
    let e = text(&o.stderr);
    assert!(e.contains("broken-reference.yaml:19:14: error: document 2: denyratings.rule.default: field spec.actions[0].handler: handler denyal not found (looked for denyal.handler.default)"), "{e}");
    let o = wasmixer(&["validate", "testdata/errors/duplicates.yaml"]);
    assert!(text(&o.stderr).contains("duplicate resource: denyreviewsv3handler.handler.default is also declared at testdata/errors/duplicates.yaml:1:1 (document 1)"), "{}", text(&o.stderr));
}

#[test]
fn unsupported_parts_are_named_and_the_rest_converts() {
    let (code, files, stderr) = convert("unsupported", &["testdata/errors/unsupported.yaml"], &[]);
    assert_eq!(code, 3, "{stderr}");
    for a in ["stackdriver", "redisquota", "opa"] {
        assert!(stderr.contains(&format!("adapter {a} is not implemented by wasmixer")), "{a}: {stderr}");
    }
    assert!(stderr.contains("INCOMPLETE"), "{stderr}");
    // The prometheus action still converts, alone in its rule.
    let metrics: Json = serde_json::from_str(&files["filters/metrics.json"]).unwrap();
    let rule = metrics["resources"].as_array().unwrap().iter().find(|r| r["kind"] == "rule").unwrap();
    assert_eq!(rule["spec"]["actions"], serde_json::json!([{"handler": "prom", "instances": ["requestcount"]}]));
    // `value: 1` (a YAML number) became the expression "1".
    assert!(files["filters/metrics.json"].contains(r#""value": "1""#));
    let report: Json = serde_json::from_str(&files["report.json"]).unwrap();
    assert_eq!(report["complete"], false);
    assert_eq!(report["unsupported"], 3);
}

#[test]
fn errors_write_nothing() {
    let (code, files, _) = convert("errors-nothing", &["testdata/errors/broken-reference.yaml"], &[]);
    assert_eq!(code, 1);
    assert!(files.is_empty(), "{:?}", files.keys());
}

#[test]
fn stdin_namespace_and_stale_outputs() {
    let out = temp_dir("stdin");
    let out_s = out.to_string_lossy().into_owned();
    // First a full conversion, then one with only a deny rule: the old telemetry files go.
    let o = wasmixer(&["convert", "testdata/seed", "--out", &out_s, "--wasm-url", TEST_WASM_URL]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(out.join("filters/metrics.json").exists());
    let yaml = std::fs::read_to_string(root().join("testdata/seed/deny-reviews-v3.yaml")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmixer"))
        .args([
            "convert",
            "-",
            "--out",
            &out_s,
            "--namespace",
            "bookinfo",
            "--format",
            "wasmplugin",
            "--wasm-url",
            TEST_WASM_URL,
        ])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let files = read_tree(&out);
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(
        files.keys().cloned().collect::<Vec<_>>(),
        [
            "filters/deny.json",
            "filters/mixer.json",
            "filters/peer-metadata.json",
            "istio/wasmplugin-mixer.yaml",
            "istio/wasmplugins.yaml",
            "report.json"
        ]
    );
    let deny: Json = serde_json::from_str(&files["filters/deny.json"]).unwrap();
    assert_eq!(deny["default_namespace"], "bookinfo");
    assert!(deny["resources"].as_array().unwrap().iter().all(|r| r["metadata"]["namespace"] == "bookinfo"));
}

/// WasmPlugins have no default module URL: a `file://` default would not exist inside Istio's
/// proxy containers, and a FAIL_CLOSE plugin that cannot load refuses the sidecar's traffic.
#[test]
fn wasmplugins_need_a_module_url() {
    let o = wasmixer(&["convert", "testdata/seed/deny-reviews-v3.yaml", "--out", "/tmp/x", "--format", "wasmplugin"]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("WasmPlugins need --wasm-url")
            && stderr.contains("make oci")
            && stderr.contains("sidecar.istio.io/userVolume"),
        "{stderr}"
    );
    // Both formats without a URL: the Envoy fragments, and a warning instead of the WasmPlugins.
    let out = temp_dir("no-wasm-url");
    let out_s = out.to_string_lossy().into_owned();
    let o = wasmixer(&["convert", "testdata/seed/deny-reviews-v3.yaml", "--out", &out_s]);
    let (files, stderr) = (read_tree(&out), text(&o.stderr));
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning: no WasmPlugins written (istio/)"), "{stderr}");
    assert!(files.contains_key("envoy/inbound-http-filters.json"), "{:?}", files.keys());
    assert!(!files.keys().any(|f| f.starts_with("istio/")), "{:?}", files.keys());
    assert!(files["envoy/inbound-http-filters.json"].contains("/etc/wasmixer/"));
    // A file:// URL is taken, with a note on mounting the modules into the proxies.
    let (code, files, stderr) = convert(
        "file-wasm-url",
        &["testdata/seed/deny-reviews-v3.yaml"],
        &["--format", "wasmplugin", "--wasm-url", "file:///var/local/wasmixer/{filter}.wasm"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(files["istio/wasmplugins.yaml"].contains("url: file:///var/local/wasmixer/deny-request-only.wasm"));
    assert!(stderr.contains("must exist inside every istio-proxy container"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let o = wasmixer(&["convert", "testdata/seed"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--out"), "{}", text(&o.stderr));
    let o = wasmixer(&["convert", "testdata/seed", "--out", "/tmp/x", "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    let o = wasmixer(&["validate", "testdata/nope.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let o = wasmixer(&[
        "convert",
        "testdata/seed/deny-reviews-v3.yaml",
        "--out",
        "/tmp/x",
        "--format",
        "envoy",
        "--wasm-url",
        "oci://r/x:1",
    ]);
    assert_eq!(o.status.code(), Some(1), "an oci URL cannot go in an Envoy bootstrap");
}
