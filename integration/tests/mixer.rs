//! The seed's policy and telemetry on both sidecars of an mTLS call, reviews-v3 (client) ->
//! ratings (server), configured two ways: the `mixer` filter (every component in one filter,
//! one configuration document) and the separate filters (peer-metadata, deny, metrics,
//! access-log). Both must answer alike: the seed's deny rule refuses the call on the server
//! with Mixer's body, and each side's access log prints the same identities and principals,
//! including the peer the client only learns from the response.

use std::time::Duration;

use serde_json::{json, Value};
use wasmixer_integration::access_log_file::first_json_line;
use wasmixer_integration::bookinfo_pair::{PairFilters, ReviewsToRatings};
use wasmixer_integration::bootstrap::wasm_filter;
use wasmixer_integration::dist::read_workspace_file;
use wasmixer_integration::sidecar::RATINGS_HOST;
use wasmixer_integration::{ensure, wasm_path, Backend, BackendResponse, HarnessError, Request};

const DENY_SEED: &str = "integration/testdata/deny-seed.json";
const METRICS_SEED: &str = "integration/testdata/metrics-double-request-count.json";
const METRIC_LABELS: [&str; 4] = ["reporter", "source", "destination", "message"];

/// What each side logs: `name -> expression` (absent values print a sentinel).
const LOGGED: &[(&str, &str)] = &[
    ("reporter", "context.reporter.kind | \"ABSENT\""),
    ("source", "source.workload.name | \"ABSENT\""),
    ("source_labels", "source.labels | emptyStringMap()"),
    ("source_principal", "source.principal | \"ABSENT\""),
    ("destination_principal", "destination.principal | \"ABSENT\""),
    ("mtls", "connection.mtls | false"),
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

/// The logentry printing [`LOGGED`] with its stdio handler and rule.
fn log_resources() -> Vec<Value> {
    let variables: serde_json::Map<String, Value> = LOGGED.iter().map(|(k, e)| ((*k).to_string(), json!(e))).collect();
    vec![
        json!({"kind": "instance", "metadata": {"name": "call", "namespace": "istio-system"},
               "spec": {"compiledTemplate": "logentry", "params": {"severity": "\"info\"", "timestamp": "request.time", "variables": variables}}}),
        json!({"kind": "handler", "metadata": {"name": "stdio", "namespace": "istio-system"},
               "spec": {"compiledAdapter": "stdio", "params": {"outputAsJson": true}}}),
        json!({"kind": "rule", "metadata": {"name": "all", "namespace": "istio-system"},
               "spec": {"actions": [{"handler": "stdio", "instances": ["call"]}]}}),
    ]
}

fn document(resources: Vec<Value>) -> String {
    json!({"resources": resources}).to_string()
}

/// `mixer.wasm` alone: one document with the logentry, the seed's metric and, on the server's
/// inbound listener, the seed's deny rule.
fn mixer_filters(with_deny: bool) -> Result<Vec<String>, HarnessError> {
    let mut resources = log_resources();
    resources.extend(seed_resources(METRICS_SEED)?);
    if with_deny {
        resources.extend(seed_resources(DENY_SEED)?);
    }
    Ok(vec![wasm_filter("mixer", &wasm_path("mixer")?, &document(resources))])
}

/// The same work as separate filters, each with its own document.
fn separate_filters(with_deny: bool) -> Result<Vec<String>, HarnessError> {
    let mut filters = vec![wasm_filter("peer-metadata", &wasm_path("peer-metadata")?, "{}")];
    if with_deny {
        filters.push(wasm_filter("deny", &wasm_path("deny")?, &read_workspace_file(DENY_SEED)?));
    }
    filters.push(wasm_filter("metrics", &wasm_path("metrics")?, &read_workspace_file(METRICS_SEED)?));
    filters.push(wasm_filter("access-log", &wasm_path("access-log")?, &document(log_resources())));
    Ok(filters)
}

#[test]
fn one_filter_denies_and_logs_on_both_sidecars() -> Result<(), HarnessError> {
    denies_and_logs_on_both_sidecars("mixer", mixer_filters)
}

#[test]
fn separate_filters_deny_and_log_alike() -> Result<(), HarnessError> {
    denies_and_logs_on_both_sidecars("separate", separate_filters)
}

fn denies_and_logs_on_both_sidecars(
    name: &str,
    filters_with_deny: fn(bool) -> Result<Vec<String>, HarnessError>,
) -> Result<(), HarnessError> {
    let dir = std::env::temp_dir().join(format!("wasmixer-it-{name}-{}", std::process::id()));
    let app = Backend::start(|_r| BackendResponse::ok("{}"))?;
    let filters = PairFilters {
        ratings_inbound: filters_with_deny(true)?,
        ratings_outbound: filters_with_deny(false)?,
        reviews_inbound: filters_with_deny(false)?,
        reviews_outbound: filters_with_deny(false)?,
        stats_tags: METRIC_LABELS.iter().map(|l| (*l).to_string()).collect(),
    };
    let pair = ReviewsToRatings::start(name, &dir, app.port(), filters)?;
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
    // The client's own connection (from its application) is plain text; the server's is mTLS.
    for (side, line, kind, mtls) in [("server", &server, "inbound", true), ("client", &client, "outbound", false)] {
        let expect = [
            ("reporter", json!(kind)),
            ("source", json!("reviews-v3")),
            ("source_labels", reviews_labels.clone()),
            ("source_principal", json!("cluster.local/ns/default/sa/bookinfo-reviews")),
            ("destination_principal", json!("cluster.local/ns/default/sa/bookinfo-ratings")),
            ("mtls", json!(mtls)),
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
    ratings_sidecar.wait_for_stat_line(&format!("istio_double_request_count{{reporter=\"server\",{series}"))?;
    reviews_sidecar.wait_for_stat_line(&format!("istio_double_request_count{{reporter=\"client\",{series}"))?;
    ratings_sidecar
        .wait_for_stat_line("wasmixer_policy_checks_total{rule=\"denyreviewsv3.rule.default\",result=\"deny\"} 1")?;
    Ok(())
}
