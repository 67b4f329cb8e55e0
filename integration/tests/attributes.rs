//! The attribute vocabulary as both sidecars of one call see it: reviews-v3 (client, outbound)
//! -> ratings (server, inbound) over mTLS, each sidecar running the peer-metadata and
//! access-log filters with a logentry that prints every attribute Envoy can provide. Absent
//! attributes print a typed sentinel, so the assertions also prove what is absent.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use wasmixer_integration::access_log_file::first_json_line;
use wasmixer_integration::bookinfo_pair::{PairFilters, ReviewsToRatings};
use wasmixer_integration::bootstrap::wasm_filter;
use wasmixer_integration::sidecar::RATINGS_HOST;
use wasmixer_integration::{ensure, wasm_path, Backend, BackendResponse, HarnessError, Request};

const BODY: &str = "{\"id\":0,\"ratings\":{\"Reviewer1\":5}}";

/// (attribute, sentinel expression used when it is absent).
const ATTRIBUTES: &[(&str, &str)] = &[
    ("source.uid", "\"ABSENT\""),
    ("source.ip", "ip(\"0.0.0.0\")"),
    ("source.labels", "emptyStringMap()"),
    ("source.name", "\"ABSENT\""),
    ("source.namespace", "\"ABSENT\""),
    ("source.owner", "\"ABSENT\""),
    ("source.principal", "\"ABSENT\""),
    ("source.user", "\"ABSENT\""),
    ("source.serviceAccount", "\"ABSENT\""),
    ("source.workload.uid", "\"ABSENT\""),
    ("source.workload.name", "\"ABSENT\""),
    ("source.workload.namespace", "\"ABSENT\""),
    ("destination.uid", "\"ABSENT\""),
    ("destination.ip", "ip(\"0.0.0.0\")"),
    ("destination.port", "999999"),
    ("destination.labels", "emptyStringMap()"),
    ("destination.name", "\"ABSENT\""),
    ("destination.namespace", "\"ABSENT\""),
    ("destination.owner", "\"ABSENT\""),
    ("destination.principal", "\"ABSENT\""),
    ("destination.serviceAccount", "\"ABSENT\""),
    ("destination.service.host", "\"ABSENT\""),
    ("destination.service.name", "\"ABSENT\""),
    ("destination.service.namespace", "\"ABSENT\""),
    ("destination.service.uid", "\"ABSENT\""),
    ("destination.workload.uid", "\"ABSENT\""),
    ("destination.workload.name", "\"ABSENT\""),
    ("destination.workload.namespace", "\"ABSENT\""),
    ("destination.container.name", "\"ABSENT\""),
    ("request.id", "\"ABSENT\""),
    ("request.path", "\"ABSENT\""),
    ("request.url_path", "\"ABSENT\""),
    ("request.host", "\"ABSENT\""),
    ("request.method", "\"ABSENT\""),
    ("request.scheme", "\"ABSENT\""),
    ("request.useragent", "\"ABSENT\""),
    ("request.size", "999999"),
    ("request.total_size", "999999"),
    ("request.time", "timestamp(\"1970-01-01T00:00:00Z\")"),
    ("request.query_params", "emptyStringMap()"),
    ("response.code", "999999"),
    ("response.duration", "\"999h\""),
    ("response.size", "999999"),
    ("response.total_size", "999999"),
    ("response.time", "timestamp(\"1970-01-01T00:00:00Z\")"),
    ("connection.id", "\"ABSENT\""),
    ("connection.mtls", "false"),
    ("connection.requested_server_name", "\"ABSENT\""),
    ("context.protocol", "\"ABSENT\""),
    ("context.time", "timestamp(\"1970-01-01T00:00:00Z\")"),
    ("context.reporter.kind", "\"ABSENT\""),
    ("context.reporter.uid", "\"ABSENT\""),
    ("context.proxy_error_code", "\"ABSENT\""),
    ("context.proxy_version", "\"ABSENT\""),
];

fn access_log_config() -> String {
    let mut variables = serde_json::Map::new();
    for (name, sentinel) in ATTRIBUTES {
        variables.insert((*name).to_string(), json!(format!("{name} | {sentinel}")));
    }
    variables.insert("request.headers[x-test]".into(), json!("request.headers[\"x-test\"] | \"ABSENT\""));
    variables.insert("response.headers[x-app]".into(), json!("response.headers[\"x-app\"] | \"ABSENT\""));
    json!({"resources": [
        {"kind": "instance", "metadata": {"name": "attrs", "namespace": "istio-system"},
         "spec": {"compiledTemplate": "logentry", "params": {"severity": "\"info\"", "timestamp": "request.time", "variables": variables}}},
        {"kind": "handler", "metadata": {"name": "stdio", "namespace": "istio-system"}, "spec": {"compiledAdapter": "stdio", "params": {"outputAsJson": true}}},
        {"kind": "rule", "metadata": {"name": "all", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "stdio", "instances": ["attrs"]}]}}
    ]})
    .to_string()
}

fn get<'a>(line: &'a BTreeMap<String, Value>, key: &str) -> &'a Value {
    line.get(key).unwrap_or(&Value::Null)
}

#[test]
fn both_sidecars_see_the_vocabulary() -> Result<(), HarnessError> {
    let dir = std::env::temp_dir().join(format!("wasmixer-it-attributes-{}", std::process::id()));
    let app = Backend::start(|_r| BackendResponse::ok(BODY).header("x-app", "ratings"))?;
    let peer =
        || -> Result<String, HarnessError> { Ok(wasm_filter("peer-metadata", &wasm_path("peer-metadata")?, "{}")) };
    let log = || -> Result<String, HarnessError> {
        Ok(wasm_filter("access-log", &wasm_path("access-log")?, &access_log_config()))
    };
    let filters = PairFilters {
        ratings_inbound: vec![peer()?, log()?],
        ratings_outbound: vec![peer()?],
        reviews_inbound: vec![peer()?],
        reviews_outbound: vec![peer()?, log()?],
        ..PairFilters::default()
    };
    let pair = ReviewsToRatings::start("attributes", &dir, app.port(), filters)?;
    let (server_log, client_log, reviews_sidecar) = (&pair.ratings_log, &pair.reviews_log, &pair.reviews);
    let ratings_inbound_port = pair.ratings.listener_addr("inbound")?.port();

    let resp = Request::get("/ratings/0?user=jason")
        .header("host", "ratings:9080")
        .header("x-test", "hello")
        .header("user-agent", "wasmixer-test")
        .send(reviews_sidecar.listener_addr("outbound")?)?;
    ensure!(resp.status == 200, "status {} {:?}", resp.status, resp.body_text());

    let server = first_json_line(server_log, Duration::from_secs(10))?;
    let client = first_json_line(client_log, Duration::from_secs(10))?;
    let reviews_principal = "cluster.local/ns/default/sa/bookinfo-reviews";
    let ratings_principal = "cluster.local/ns/default/sa/bookinfo-ratings";
    let reviews_labels = json!({"app": "reviews", "version": "v3"});
    let ratings_labels = json!({"app": "ratings", "version": "v1"});

    // Identity: the same call, seen from both ends, names the same two workloads.
    for (side, line, kind) in [("server", &server, "inbound"), ("client", &client, "outbound")] {
        let expect = [
            ("context.reporter.kind", json!(kind)),
            ("source.workload.name", json!("reviews-v3")),
            ("source.workload.namespace", json!("default")),
            ("source.workload.uid", json!("istio://default/workloads/reviews-v3")),
            ("source.labels", reviews_labels.clone()),
            ("source.name", json!("reviews-v3-0")),
            ("source.namespace", json!("default")),
            ("source.uid", json!("kubernetes://reviews-v3-0.default")),
            ("source.owner", json!("kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v3")),
            ("source.serviceAccount", json!("bookinfo-reviews")),
            ("source.principal", json!(reviews_principal)),
            ("source.user", json!(reviews_principal)),
            ("destination.workload.name", json!("ratings-v1")),
            ("destination.labels", ratings_labels.clone()),
            ("destination.namespace", json!("default")),
            ("destination.serviceAccount", json!("bookinfo-ratings")),
            ("destination.principal", json!(ratings_principal)),
            ("destination.service.host", json!(RATINGS_HOST)),
            ("destination.service.name", json!("ratings")),
            ("destination.service.namespace", json!("default")),
            ("destination.service.uid", json!("istio://default/services/ratings")),
            ("request.path", json!("/ratings/0?user=jason")),
            ("request.url_path", json!("/ratings/0")),
            ("request.query_params", json!({"user": "jason"})),
            ("request.method", json!("GET")),
            ("request.useragent", json!("wasmixer-test")),
            ("request.headers[x-test]", json!("hello")),
            ("response.code", json!(200)),
            ("response.size", json!(BODY.len())),
            ("response.headers[x-app]", json!("ratings")),
            ("context.protocol", json!("http")),
            ("context.proxy_error_code", json!("-")),
            ("context.proxy_version", json!("1.4.10-wasmixer")),
            // Documented as absent: no container names in node metadata.
            ("destination.container.name", json!("ABSENT")),
        ];
        for (key, want) in expect {
            ensure!(
                get(line, key) == &want,
                "{side} sidecar: {key} = {} (want {want})\nline: {line:?}",
                get(line, key)
            );
        }
        for key in [
            "request.id",
            "request.host",
            "request.scheme",
            "connection.id",
            "context.reporter.uid",
            "source.ip",
            "destination.ip",
        ] {
            ensure!(
                get(line, key) != &json!("ABSENT") && get(line, key) != &json!("0.0.0.0"),
                "{side} sidecar: {key} is absent\nline: {line:?}"
            );
        }
        let duration = get(line, "response.duration").as_str().unwrap_or("");
        ensure!(duration.ends_with('s') && duration != "999h0m0s", "{side}: response.duration {duration:?}");
        for key in ["request.time", "response.time", "context.time"] {
            let t = get(line, key).as_str().unwrap_or("");
            ensure!(t.len() == 27 && t.ends_with('Z') && !t.starts_with("1970"), "{side}: {key} {t:?}");
        }
    }
    // mTLS is a property of the connection the sidecar received: the server's was mTLS, the
    // client's (from its application) was not.
    ensure!(
        get(&server, "connection.mtls") == &json!(true),
        "server connection.mtls {:?}",
        get(&server, "connection.mtls")
    );
    ensure!(
        get(&client, "connection.mtls") == &json!(false),
        "client connection.mtls {:?}",
        get(&client, "connection.mtls")
    );
    ensure!(
        get(&server, "destination.port") == &json!(ratings_inbound_port),
        "server destination.port {:?}",
        get(&server, "destination.port")
    );
    ensure!(
        get(&client, "destination.port") == &json!(ratings_inbound_port),
        "client destination.port (the upstream) {:?}",
        get(&client, "destination.port")
    );
    ensure!(get(&server, "context.reporter.uid") == &json!("kubernetes://ratings-v1-0.default"), "server reporter uid");
    ensure!(get(&client, "context.reporter.uid") == &json!("kubernetes://reviews-v3-0.default"), "client reporter uid");
    Ok(())
}
