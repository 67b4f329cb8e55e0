//! First end-to-end tests: a real Envoy loads the built filters (`make wasm`) in V8 and passes
//! requests to a backend.

use std::time::Duration;

use wasmixer_integration::bootstrap::single_hop;
use wasmixer_integration::dist::{read_workspace_file, workspace_root, FILTERS};
use wasmixer_integration::{ensure, wasm_path, Backend, EnvoyProcess, HarnessError, Request};

#[test]
fn deny_filter_loads_and_passes_requests() -> Result<(), HarnessError> {
    let backend = Backend::ok()?;
    let envoy = single_hop("smoke-deny", &[("deny", "{}")], &backend)?;
    // The filters share the workspace version with this crate.
    let configured = format!("wasmixer-deny {} configured", env!("CARGO_PKG_VERSION"));
    let log = envoy.wait_for_log(&configured, Duration::from_secs(10))?;
    ensure!(
        log.lines().any(|l| l.contains("[wasm]") && l.contains(&configured)),
        "the configure line is not a wasm log line"
    );

    let ingress = envoy.listener_addr("ingress")?;
    let resp = Request::get("/smoke?x=1").header("x-wasmixer-test", "deny").send(ingress)?;
    ensure!(resp.status == 200, "status {} body {:?}", resp.status, resp.body_text());
    ensure!(resp.body_text() == "ok", "body {:?}", resp.body_text());

    let seen = backend.wait_for_requests(1, Duration::from_secs(5))?;
    ensure!(seen.len() == 1, "backend saw {} requests", seen.len());
    ensure!(seen[0].path == "/smoke?x=1", "backend saw path {}", seen[0].path);
    ensure!(seen[0].header("x-wasmixer-test") == Some("deny"), "backend headers {:?}", seen[0].headers);
    ensure!(
        seen[0].header("x-request-id").is_some(),
        "request did not go through Envoy's connection manager: {:?}",
        seen[0].headers
    );

    let stats = envoy.stats_prometheus()?;
    ensure!(
        stats.contains(
            "envoy_http_downstream_rq_xx{envoy_response_code_class=\"2\",envoy_http_conn_manager_prefix=\"ingress\"} 1"
        ),
        "no 2xx in the ingress stats:\n{stats}"
    );
    Ok(())
}

#[test]
fn all_filters_in_one_chain_pass_requests() -> Result<(), HarnessError> {
    let backend = Backend::ok()?;
    let chain: Vec<(&str, &str)> = FILTERS.iter().map(|f| (*f, "{}")).collect();
    let envoy = single_hop("smoke-chain", &chain, &backend)?;
    for filter in FILTERS {
        let configured = format!("wasmixer-{filter} {} configured", env!("CARGO_PKG_VERSION"));
        envoy.wait_for_log(&configured, Duration::from_secs(10))?;
    }
    let ingress = envoy.listener_addr("ingress")?;

    for i in 0..3 {
        let resp = Request::post(&format!("/chain/{i}"), format!("body {i}")).send(ingress)?;
        ensure!(resp.status == 200, "request {i}: status {} body {:?}", resp.status, resp.body_text());
    }
    let seen = backend.wait_for_requests(3, Duration::from_secs(5))?;
    ensure!(seen.len() == 3, "backend saw {} requests", seen.len());
    ensure!(seen[2].body == b"body 2", "backend saw body {:?}", String::from_utf8_lossy(&seen[2].body));
    let log = envoy.log();
    ensure!(!log.contains("[critical]") && !log.contains("Wasm VM failed"), "Envoy logged a filter failure");
    Ok(())
}

/// Replaces `from` with `to` in `text`, requiring exactly one occurrence.
fn replace_once(text: &str, from: &str, to: &str) -> Result<String, HarnessError> {
    let n = text.matches(from).count();
    ensure!(n == 1, "expected one {from:?} in the example bootstrap, found {n}");
    Ok(text.replacen(from, to, 1))
}

/// The user-facing example bootstrap works as documented (ports swapped for free ones).
#[test]
fn example_bootstrap_serves() -> Result<(), HarnessError> {
    let backend = Backend::ok()?;
    let mut yaml = read_workspace_file("envoy-config/bootstrap/single-hop.yaml")?;
    yaml = replace_once(&yaml, "port_value: 9901", "port_value: 0")?;
    yaml = replace_once(&yaml, "port_value: 10000", "port_value: 0")?;
    yaml = replace_once(&yaml, "port_value: 8080", &format!("port_value: {}", backend.port()))?;
    // Relative wasm paths in the example are relative to the workspace root.
    let root = workspace_root();
    let dist = wasm_path("deny")?.parent().map(|d| d.display().to_string()).unwrap_or_default();
    yaml = yaml.replace("filename: dist/", &format!("filename: {dist}/"));
    ensure!(!yaml.contains("filename: dist/"), "a relative wasm path is left in {}", root.display());

    let envoy = EnvoyProcess::start(&yaml, "example-single-hop")?;
    envoy.wait_for_log("wasmixer-deny", Duration::from_secs(10))?;
    let resp = Request::get("/").send(envoy.listener_addr("ingress")?)?;
    ensure!(resp.status == 200, "status {} body {:?}", resp.status, resp.body_text());
    backend.wait_for_requests(1, Duration::from_secs(5))?;
    Ok(())
}
