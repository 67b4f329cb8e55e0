//! Property tests of configuration handling: the shipped and seed configurations, mutated at
//! random (JSON values replaced, keys dropped, expressions and kinds garbled, text cut), go
//! through everything a filter does at configure time and then per request. Nothing panics:
//! in Envoy a panic is a trap that kills the VM, so a bad document must come back as an error
//! and a good one must evaluate over any attributes. Runs natively and on wasm32.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json, Value as Json};
use wasmixer_engine::config::FilterConfig;
use wasmixer_engine::expr::{Manifest, MapBag};
use wasmixer_engine::policy::listchecker::{List, ListParams};
use wasmixer_engine::policy::DenyPlan;
use wasmixer_engine::telemetry::logs::options::{AccessLogOptions, LogRouting};
use wasmixer_engine::telemetry::logs::plan::LogPlan;
use wasmixer_engine::telemetry::metrics::plan::MetricPlan;

mod support;
use support::{gen_expr, mutate, random_bag, Quiet, Rng};

const LISTS_AND_HEADERS: &str = r#"{"resources": [
  {"kind": "handler", "metadata": {"name": "allowed", "namespace": "istio-system"}, "spec": {"compiledAdapter": "listchecker",
    "params": {"provider_url": "http://lists/users.txt", "refresh_interval": "1s", "ttl": "30s", "overrides": ["root"], "entryType": "REGEX"}}},
  {"kind": "handler", "metadata": {"name": "ips", "namespace": "istio-system"}, "spec": {"compiledAdapter": "listchecker",
    "params": {"overrides": ["10.0.0.0/8", "1.2.3.4"], "entryType": "IP_ADDRESSES", "blacklist": true}}},
  {"kind": "instance", "metadata": {"name": "user", "namespace": "istio-system"}, "spec": {"compiledTemplate": "listentry", "params": {"value": "request.headers[\"x-user\"] | \"nobody\""}}},
  {"kind": "instance", "metadata": {"name": "sourceip", "namespace": "istio-system"}, "spec": {"compiledTemplate": "listentry", "params": {"value": "source.ip | ip(\"0.0.0.0\")"}}},
  {"kind": "rule", "metadata": {"name": "only-listed", "namespace": "istio-system"}, "spec": {"match": "request.path.startsWith(\"/a\")", "dry_run": true,
    "actions": [{"handler": "allowed", "instances": ["user"]}, {"handler": "ips.istio-system", "instances": ["sourceip"]}],
    "requestHeaderOperations": [{"name": "x-checked", "values": ["\"yes\"", "request.path"], "operation": "APPEND"}],
    "responseHeaderOperations": [{"name": "server", "operation": "REMOVE"}]}}
]}"#;

/// Every configuration the project ships or tests with, as a filter receives it.
const SEEDS: &[&str] = &[
    include_str!("../../integration/testdata/deny-seed.json"),
    include_str!("../../integration/testdata/access-log-newlog-stdio.json"),
    include_str!("../../integration/testdata/metrics-double-request-count.json"),
    include_str!("../../integration/testdata/metrics-distribution.json"),
    include_str!("../../envoy-config/metrics/istio-standard-metrics.json"),
    include_str!("../../envoy-config/metrics/istio-tcp-metrics.json"),
    include_str!("../../bench/run/configs/deny-headers.json"),
    LISTS_AND_HEADERS,
];

/// Names a mutation may put where a kind, template or adapter name was.
const NAMES: &[&str] = &[
    "rule",
    "instance",
    "handler",
    "attributemanifest",
    "denier",
    "listchecker",
    "prometheus",
    "stdio",
    "metric",
    "logentry",
    "checknothing",
    "listentry",
    "",
    "nope",
];

fn random_value(rng: &mut Rng) -> Json {
    match rng.below(12) {
        0 => Json::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(-1),
        3 => json!(1e308),
        4 => json!(u64::MAX),
        5 => json!(0.5),
        6 => json!([]),
        7 => json!({}),
        8 => json!(rng.pick(NAMES)),
        9 => json!(gen_expr(rng, 2)),
        10 => json!(["x", 1, null]),
        _ => json!({"code": 7, "message": "m", "name": "n", "value": "1"}),
    }
}

/// One structural change somewhere in `v`.
fn mutate_json(rng: &mut Rng, v: &mut Json) {
    match v {
        Json::Object(map) if !map.is_empty() && rng.below(4) != 0 => {
            let key = map.keys().nth(rng.below(map.len())).cloned().unwrap();
            match rng.below(6) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(key, random_value(rng));
                }
                _ => mutate_json(rng, map.get_mut(&key).unwrap()),
            }
        }
        Json::Array(items) if !items.is_empty() && rng.below(4) != 0 => {
            let at = rng.below(items.len());
            match rng.below(6) {
                0 => {
                    items.remove(at);
                }
                1 => {
                    let copy = items[at].clone();
                    items.push(copy);
                }
                _ => mutate_json(rng, &mut items[at]),
            }
        }
        Json::String(s) => {
            *s = match rng.below(4) {
                0 => rng.pick(NAMES).to_string(),
                1 => gen_expr(rng, 2),
                _ => mutate(rng, s),
            }
        }
        other => *other = random_value(rng),
    }
}

/// Everything a filter does with `text`: parse, compile each plan (rendering every error), then
/// serve a few requests with random attributes. Returns whether any plan compiled.
fn exercise(rng: &mut Rng, text: &[u8]) -> bool {
    let m = Manifest::istio();
    let config = match FilterConfig::parse(text) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return false;
        }
    };
    let deny = DenyPlan::compile(&config, m).map_err(|e| e.to_string());
    let metrics = MetricPlan::compile(&config, m).map_err(|e| e.to_string());
    let log = LogPlan::compile(&config, m).map_err(|e| e.to_string());
    let options = AccessLogOptions::from_config(&config).map_err(|e| e.to_string());
    if let (Ok(plan), Ok(options)) = (&log, &options) {
        let _ = LogRouting::new(plan, options).map_err(|e| e.to_string());
    }
    if let Ok(plan) = &metrics {
        let _ = plan.stats_tags();
    }
    let now = 1_576_514_753_950_607_000;
    for _ in 0..2 {
        let bag: MapBag = random_bag(rng, m);
        if let Ok(plan) = &deny {
            let result = plan.check(&bag, now, &mut Quiet);
            let _ = result.body();
        }
        if let Ok(plan) = &metrics {
            plan.record(&bag, &mut Quiet);
        }
        if let Ok(plan) = &log {
            let mut line = String::new();
            plan.render(&bag, now, &mut line, &mut Quiet);
        }
    }
    deny.is_ok() || metrics.is_ok() || log.is_ok()
}

/// Runs `case`; natively, a panic is reported with the document that caused it.
fn guarded(what: &str, text: &[u8], case: impl FnOnce() -> bool) -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(case)) {
            Ok(ok) => ok,
            Err(_) => panic!("{what} panicked on:\n{}", String::from_utf8_lossy(text)),
        }
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (what, text);
        case()
    }
}

/// Fewer cases under wasm32's unoptimised test build on node.
const ROUNDS: usize = if cfg!(target_arch = "wasm32") { 250 } else { 1000 };

#[test]
fn the_seed_configurations_compile_and_serve() {
    let mut rng = Rng(7);
    for (i, seed) in SEEDS.iter().enumerate() {
        assert!(exercise(&mut rng, seed.as_bytes()), "seed {i} should compile");
    }
}

#[test]
fn mutated_configurations_never_panic() {
    let mut rng = Rng(0xC0FF_EE00_D15E_A5E5);
    let mut compiled = 0;
    let mut total = 0;
    for seed in SEEDS {
        let doc: Json = serde_json::from_str(seed).unwrap();
        for _ in 0..ROUNDS {
            let mut v = doc.clone();
            for _ in 0..=rng.below(3) {
                mutate_json(&mut rng, &mut v);
            }
            let text = serde_json::to_vec(&v).unwrap();
            total += 1;
            if guarded("a configuration", &text, || exercise(&mut rng, &text)) {
                compiled += 1;
            }
        }
    }
    // Enough mutants survive to exercise the per-request paths, enough fail to exercise errors.
    assert!(compiled * 10 > total && compiled < total, "{compiled} of {total} mutants compiled");
}

#[test]
fn garbled_configuration_text_never_panics() {
    let mut rng = Rng(99);
    for seed in SEEDS {
        for _ in 0..ROUNDS / 5 {
            let text = mutate(&mut rng, seed);
            guarded("configuration text", text.as_bytes(), || exercise(&mut rng, text.as_bytes()));
        }
    }
}

#[test]
fn list_provider_bodies_never_panic() {
    let mut rng = Rng(5);
    let bodies = ["alice\nbob\n", "10.0.0.0/8\n1.2.3.4\n::1\n", "^a.*$\n(b|c)\n", "", "\n\n", "é\u{0}\r\n"];
    for entry_type in ["STRINGS", "CASE_INSENSITIVE_STRINGS", "IP_ADDRESSES", "REGEX"] {
        let params = ListParams::from_json(&json!({"entryType": entry_type})).unwrap();
        for _ in 0..ROUNDS {
            let original = rng.pick(&bodies);
            let body = mutate(&mut rng, original);
            let body = if rng.below(3) == 0 { format!("{body}{}", gen_expr(&mut rng, 1)) } else { body };
            guarded("a list body", body.as_bytes(), || List::from_body(&params, &body).is_ok());
        }
    }
}
