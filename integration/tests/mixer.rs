//! The `mixer` filter (every component in one filter, one configuration document) on both
//! sidecars of an mTLS call, reviews-v3 (client) -> ratings (server): the seed's deny rule
//! refuses the call on the server with Mixer's body, and the access-log component of each side
//! prints the same identities the separate filters print, including the peer the client only
//! learns from the response.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wasmixer_integration::access_log_file::first_json_line;
use wasmixer_integration::bookinfo_pair::{PairFilters, ReviewsToRatings};
use wasmixer_integration::bootstrap::wasm_filter;
use wasmixer_integration::dist::read_workspace_file;
use wasmixer_integration::sidecar::RATINGS_HOST;
use wasmixer_integration::{ensure, wasm_path, Backend, BackendResponse, EnvoyProcess, HarnessError, Request};

const DENY_SEED: &str = "integration/testdata/deny-seed.json";
const METRICS_SEED: &str = "integration/testdata/metrics-double-request-count.json";
const METRIC_LABELS: [&str; 4] = ["reporter", "source", "destination", "message"];

/// What each side logs: `name -> expression` (absent values print a sentinel).
const LOGGED: &[(&str, &str)] = &[
    ("reporter", "context.reporter.kind | \"ABSENT\""),
    ("source", "source.workload.name | \"ABSENT\""),
    ("source_labels", "source.labels | emptyStringMap()"),
    ("source_principal", "source.principal | \"ABSENT\""),
    ("destination", "destination.workload.name | \"ABSENT\""),
    ("destination_labels", "destination.labels | emptyStringMap()"),
    ("code", "response.code | 0"),
    ("size", "response.size | 999999"),
    ("service", "destination.service.host | \"ABSENT\""),
];

fn seed_resources(path: &str) -> Result<Vec<Value>, HarnessError> {
    let seed: Value =
        serde_json::from_str(&read_workspace_file(path)?).map_err(|e| HarnessError::check(format!("{path}: {e}")))?;
    Ok(seed["resources"].as_array().cloned().unwrap_or_default())
}

/// One document: the seed's metric, the seed's deny rule (server side only) and a logentry
/// printing [`LOGGED`].
fn mixer_config(with_deny: bool) -> Result<String, HarnessError> {
    let variables: serde_json::Map<String, Value> = LOGGED.iter().map(|(k, e)| ((*k).to_string(), json!(e))).collect();
    let mut resources = vec![
        json!({"kind": "instance", "metadata": {"name": "call", "namespace": "istio-system"},
               "spec": {"compiledTemplate": "logentry", "params": {"severity": "\"info\"", "timestamp": "request.time", "variables": variables}}}),
        json!({"kind": "handler", "metadata": {"name": "stdio", "namespace": "istio-system"},
               "spec": {"compiledAdapter": "stdio", "params": {"outputAsJson": true}}}),
        json!({"kind": "rule", "metadata": {"name": "all", "namespace": "istio-system"},
               "spec": {"actions": [{"handler": "stdio", "instances": ["call"]}]}}),
    ];
    resources.extend(seed_resources(METRICS_SEED)?);
    if with_deny {
        resources.extend(seed_resources(DENY_SEED)?);
    }
    Ok(json!({"resources": resources}).to_string())
}

#[test]
fn one_filter_denies_and_logs_on_both_sidecars() -> Result<(), HarnessError> {
    let dir = std::env::temp_dir().join(format!("wasmixer-it-mixer-{}", std::process::id()));
    let app = Backend::start(|_r| BackendResponse::ok("{}"))?;
    let mixer = |deny: bool| -> Result<String, HarnessError> {
        Ok(wasm_filter("mixer", &wasm_path("mixer")?, &mixer_config(deny)?))
    };
    let filters = PairFilters {
        ratings_inbound: vec![mixer(true)?],
        ratings_outbound: vec![mixer(false)?],
        reviews_inbound: vec![mixer(false)?],
        reviews_outbound: vec![mixer(false)?],
        stats_tags: METRIC_LABELS.iter().map(|l| (*l).to_string()).collect(),
    };
    let pair = ReviewsToRatings::start("mixer", &dir, app.port(), filters)?;
    let (ratings_sidecar, reviews_sidecar) = (&pair.ratings, &pair.reviews);

    let resp =
        Request::get("/ratings/0").header("host", "ratings:9080").send(reviews_sidecar.listener_addr("outbound")?)?;
    let body = "PERMISSION_DENIED:denyreviewsv3handler.default:Not allowed";
    ensure!(resp.status == 403, "status {} {:?} (the seed rule denies reviews-v3)", resp.status, resp.body_text());
    ensure!(resp.body_text().contains(body), "body {:?}, want {body:?}", resp.body_text());

    let server = first_json_line(&pair.ratings_log, Duration::from_secs(10))?;
    let client = first_json_line(&pair.reviews_log, Duration::from_secs(10))?;
    let reviews_labels = json!({"app": "reviews", "version": "v3"});
    let ratings_labels = json!({"app": "ratings", "version": "v1"});
    for (side, line, kind) in [("server", &server, "inbound"), ("client", &client, "outbound")] {
        let expect = [
            ("reporter", json!(kind)),
            ("source", json!("reviews-v3")),
            ("source_labels", reviews_labels.clone()),
            ("source_principal", json!("cluster.local/ns/default/sa/bookinfo-reviews")),
            ("destination", json!("ratings-v1")),
            ("destination_labels", ratings_labels.clone()),
            ("code", json!(403)),
            ("size", json!(body.len())),
            ("service", json!(RATINGS_HOST)),
        ];
        for (key, want) in expect {
            let got = line.get(key).unwrap_or(&Value::Null);
            ensure!(got == &want, "{side} sidecar: {key} = {got} (want {want})\nline: {line:?}");
        }
    }
    // The metrics component reported on both sides with the verified peer; the deny component
    // counted its decision on the server (counters reach Envoy on the next tick: poll).
    let series = "source=\"reviews-v3\",destination=\"ratings-v1\",message=\"twice the fun!\"} 2";
    wait_for_stat(ratings_sidecar, &format!("istio_double_request_count{{reporter=\"server\",{series}"))?;
    wait_for_stat(reviews_sidecar, &format!("istio_double_request_count{{reporter=\"client\",{series}"))?;
    wait_for_stat(
        ratings_sidecar,
        "wasmixer_policy_checks_total{rule=\"denyreviewsv3.rule.default\",result=\"deny\"} 1",
    )?;
    Ok(())
}

fn wait_for_stat(sidecar: &EnvoyProcess, line: &str) -> Result<(), HarnessError> {
    let start = Instant::now();
    loop {
        let stats = sidecar.stats_prometheus()?;
        if stats.lines().any(|l| l == line) {
            return Ok(());
        }
        ensure!(start.elapsed() < Duration::from_secs(5), "no line {line:?} in:\n{stats}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
