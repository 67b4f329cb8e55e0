//! End-to-end tests of the metrics filter (`dist/metrics.wasm`): real Envoy sidecars, a client
//! one (listener OUTBOUND: the client reporter) in front of a server one (INBOUND: the server
//! reporter) in front of a backend, each exposing its stats on `/stats/prometheus`, and a real
//! Prometheus server (Debian's `/usr/bin/prometheus`, or `PROMETHEUS_BIN`) scraping both.
//!
//! The bootstrap `stats_config` comes from the checked-in output of `wasmixer stats-config`
//! (`integration/testdata/metrics-*.stats-config.json`; the CLI's tests keep it up to date).

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use wasmixer_integration::dist::read_workspace_file;
use wasmixer_integration::mesh_obs::Prometheus;
use wasmixer_integration::metrics_sidecar::{start_hairpin, MetricsSidecar};
use wasmixer_integration::{ensure, wasm_path, Backend, BackendResponse, EnvoyProcess, HarnessError, Request};

const SEED: &str = "integration/testdata/metrics-double-request-count.json";
const SEED_STATS: &str = "integration/testdata/metrics-double-request-count.stats-config.json";
const DISTRIBUTION: &str = "integration/testdata/metrics-distribution.json";
const DISTRIBUTION_STATS: &str = "integration/testdata/metrics-distribution.stats-config.json";

/// Polls `/stats/prometheus` until it has `line`; returns the last text.
fn wait_for_stats_line(envoy: &EnvoyProcess, line: &str, timeout: Duration) -> Result<String, HarnessError> {
    let deadline = Instant::now() + timeout;
    loop {
        let stats = envoy.stats_prometheus()?;
        if stats.lines().any(|l| l == line) {
            return Ok(stats);
        }
        if Instant::now() >= deadline {
            let ours: Vec<&str> = stats
                .lines()
                .filter(|l| l.starts_with("istio_") || l.starts_with("wasmixer_") || l.contains(" istio_"))
                .collect();
            return Err(HarnessError::Timeout(format!(
                "no line {line:?} in /stats/prometheus within {timeout:?}; our lines:\n{}",
                ours.join("\n")
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One Envoy, both reporters: its outbound listener routes to its own inbound listener, the same
/// metrics configuration on both. Envoy may give the two listeners one root context, so the
/// reporter (the listener direction) must come from each stream, never be remembered per root.
#[test]
fn one_sidecar_reports_each_listener_with_its_own_direction() -> Result<(), HarnessError> {
    const THROUGH_BOTH: usize = 5;
    const INBOUND_ONLY: usize = 3;
    let backend = Backend::ok()?;
    let envoy =
        start_hairpin("metrics-hairpin", &[("metrics", read_workspace_file(SEED)?)], SEED_STATS, backend.port())?;
    let (outbound, inbound) = (envoy.listener_addr("outbound")?, envoy.listener_addr("inbound")?);
    // Alternate, so that whichever listener a worker sees first, the other one follows it.
    for i in 0..THROUGH_BOTH.max(INBOUND_ONLY) {
        if i < INBOUND_ONLY {
            let resp = Request::get(&format!("/inbound/{i}")).send(inbound)?;
            ensure!(resp.status == 200, "inbound request {i}: status {}", resp.status);
        }
        if i < THROUGH_BOTH {
            let resp = Request::get(&format!("/outbound/{i}")).send(outbound)?;
            ensure!(resp.status == 200, "outbound request {i}: status {}", resp.status);
        }
    }
    backend.wait_for_requests(THROUGH_BOTH + INBOUND_ONLY, Duration::from_secs(5))?;
    let server = format!(
        "istio_double_request_count{{reporter=\"server\",source=\"unknown\",destination=\"hairpin\",message=\"twice the fun!\"}} {}",
        2 * (THROUGH_BOTH + INBOUND_ONLY)
    );
    let client = format!(
        "istio_double_request_count{{reporter=\"client\",source=\"hairpin\",destination=\"unknown\",message=\"twice the fun!\"}} {}",
        2 * THROUGH_BOTH
    );
    wait_for_stats_line(&envoy, &server, Duration::from_secs(10))?;
    let stats = wait_for_stats_line(&envoy, &client, Duration::from_secs(10))?;
    let series = stats.lines().filter(|l| l.starts_with("istio_double_request_count{")).count();
    ensure!(series == 2, "expected exactly the two series above:\n{stats}");
    Ok(())
}

/// The seed scenario: `istio_double_request_count` rises by 2 per request on each reporting
/// sidecar, as Envoy exposes it and as Prometheus stores it.
#[test]
fn seed_double_request_count_on_both_reporters_and_in_prometheus() -> Result<(), HarnessError> {
    const N: usize = 7;
    let backend = Backend::ok()?;
    let server = MetricsSidecar {
        name: "metrics-seed-server",
        workload: "server",
        listener: "inbound",
        direction: "INBOUND",
        cluster: "inbound|8080|http|server.default.svc.cluster.local",
        upstream_port: backend.port(),
    }
    .start_http(&[("metrics", read_workspace_file(SEED)?)], SEED_STATS)?;
    let client = MetricsSidecar {
        name: "metrics-seed-client",
        workload: "client",
        listener: "outbound",
        direction: "OUTBOUND",
        cluster: "outbound|80||server.default.svc.cluster.local",
        upstream_port: server.listener_addr("inbound")?.port(),
    }
    .start_http(&[("metrics", read_workspace_file(SEED)?)], SEED_STATS)?;
    let entry = client.listener_addr("outbound")?;
    for i in 0..N {
        let resp = Request::get(&format!("/seed/{i}")).send(entry)?;
        ensure!(resp.status == 200, "request {i}: status {} body {:?}", resp.status, resp.body_text());
    }
    backend.wait_for_requests(N, Duration::from_secs(5))?;

    // Without (verified) peer metadata the peer's workload is unknown to each side.
    let server_line = format!("istio_double_request_count{{reporter=\"server\",source=\"unknown\",destination=\"server\",message=\"twice the fun!\"}} {}", 2 * N);
    let client_line = format!("istio_double_request_count{{reporter=\"client\",source=\"client\",destination=\"unknown\",message=\"twice the fun!\"}} {}", 2 * N);
    let server_stats = wait_for_stats_line(&server, &server_line, Duration::from_secs(10))?;
    let client_stats = wait_for_stats_line(&client, &client_line, Duration::from_secs(10))?;
    ensure!(server_stats.contains("# TYPE istio_double_request_count counter"), "no TYPE line:\n{server_stats}");
    // Each sidecar reports only its own side, and every tag was extracted from the name.
    ensure!(!server_stats.contains("reporter=\"client\""), "the server sidecar reported as client:\n{server_stats}");
    ensure!(!client_stats.contains("reporter=\"server\""), "the client sidecar reported as server:\n{client_stats}");
    for stats in [&server_stats, &client_stats] {
        ensure!(
            !stats.contains("=.=") && !stats.contains("wasmcustom"),
            "an encoded name leaked into /stats/prometheus:\n{stats}"
        );
        ensure!(!stats.contains("wasmixer_metric_samples_dropped_total"), "samples were dropped:\n{stats}");
    }
    // Plain /stats shows the encoded name Envoy stores.
    let plain = server.admin_get("/stats?filter=istio_double_request_count")?.body_text();
    let encoded = format!("wasmcustom.reporter=.=server;.;source=.=unknown;.;destination=.=server;.;message=.=twice the fun!;.;istio_double_request_count: {}", 2 * N);
    ensure!(plain.lines().any(|l| l == encoded), "plain /stats lacks {encoded:?}:\n{plain}");

    let prometheus = Prometheus::scraping(&[server.admin_addr(), client.admin_addr()])?;
    let labels = prometheus.wait_for_value(
        "istio_double_request_count{reporter=\"server\",source=\"unknown\",destination=\"server\",message=\"twice the fun!\"}",
        (2 * N) as f64,
        Duration::from_secs(30),
    )?;
    ensure!(labels.label("instance") == server.admin_addr().to_string(), "scraped from {}", labels.label("instance"));
    prometheus.wait_for_value(
        "istio_double_request_count{reporter=\"client\",source=\"client\",message=\"twice the fun!\"}",
        (2 * N) as f64,
        Duration::from_secs(30),
    )?;
    prometheus.wait_for_value("sum(istio_double_request_count)", (4 * N) as f64, Duration::from_secs(30))?;
    Ok(())
}

/// Distributions get the configured buckets on Envoy, durations in milliseconds; a hostile label
/// value stays inside its label; the series cap sends new tuples to the overflow series.
#[test]
fn distributions_buckets_sanitising_and_series_cap() -> Result<(), HarnessError> {
    let backend = Backend::start(|req| {
        if req.path.starts_with("/missing") {
            BackendResponse::new(404)
        } else {
            BackendResponse::ok("0123456789".repeat(20).as_str())
        }
    })?;
    let server = MetricsSidecar {
        name: "metrics-distribution",
        workload: "server",
        listener: "inbound",
        direction: "INBOUND",
        cluster: "inbound|8080|http|server.default.svc.cluster.local",
        upstream_port: backend.port(),
    }
    .start_http(&[("metrics", read_workspace_file(DISTRIBUTION)?)], DISTRIBUTION_STATS)?;
    let addr = server.listener_addr("inbound")?;
    // The series cap is 3: /a, the hostile path and /missing get series, the rest overflow.
    let paths = ["/a", "/x;.;path=.=forged", "/missing", "/b", "/c", "/a"];
    for p in paths {
        let resp = Request::get(p).send(addr)?;
        ensure!(resp.status == if p == "/missing" { 404 } else { 200 }, "{p}: status {}", resp.status);
    }
    backend.wait_for_requests(paths.len(), Duration::from_secs(5))?;

    let stats =
        wait_for_stats_line(&server, "istio_path_requests_total{path=\"overflow\"} 2", Duration::from_secs(10))?;
    for line in [
        "istio_path_requests_total{path=\"/a\"} 2",
        "istio_path_requests_total{path=\"/x;_;path=_=forged\"} 1",
        "istio_path_requests_total{path=\"/missing\"} 1",
        "wasmixer_metric_series_overflow_total{metric=\"istio_path_requests_total\"} 2",
        "wasmixer_metric_series{metric=\"istio_path_requests_total\"} 3",
        "# TYPE istio_request_duration_milliseconds histogram",
    ] {
        ensure!(stats.lines().any(|l| l == line), "no line {line:?} in:\n{stats}");
    }
    // Histograms appear once Envoy has merged them (stats_flush_interval 1s).
    let stats = wait_for_stats_line(
        &server,
        "istio_request_duration_milliseconds_count{reporter=\"destination\",response_code=\"200\"} 5",
        Duration::from_secs(10),
    )?;
    for line in [
        "istio_request_duration_milliseconds_bucket{reporter=\"destination\",response_code=\"200\",le=\"+Inf\"} 5",
        "istio_request_duration_milliseconds_bucket{reporter=\"destination\",response_code=\"200\",le=\"10000\"} 5",
        "istio_request_duration_milliseconds_count{reporter=\"destination\",response_code=\"404\"} 1",
        "istio_response_bytes_bucket{reporter=\"destination\",response_code=\"200\",le=\"100\"} 0",
        "istio_response_bytes_bucket{reporter=\"destination\",response_code=\"200\",le=\"1000\"} 5",
        "istio_response_bytes_bucket{reporter=\"destination\",response_code=\"200\",le=\"100000000\"} 5",
    ] {
        ensure!(stats.lines().any(|l| l == line), "no line {line:?} in:\n{stats}");
    }
    // The configured buckets replaced Envoy's defaults (which start at 0.5).
    ensure!(
        stats.lines().any(|l| l.starts_with(
            "istio_request_duration_milliseconds_bucket{reporter=\"destination\",response_code=\"200\",le=\"5\"}"
        )),
        "no 5 ms bucket:\n{stats}"
    );
    ensure!(
        !stats.contains(
            "istio_request_duration_milliseconds_bucket{reporter=\"destination\",response_code=\"200\",le=\"0.5\"}"
        ),
        "Envoy's default buckets are used:\n{stats}"
    );
    ensure!(
        !stats.contains("forged\"") || stats.contains("path=\"/x;_;path=_=forged\""),
        "the hostile path forged a label:\n{stats}"
    );
    let log = server.log();
    ensure!(log.contains("has reached its cap of 3 series"), "no overflow warning in the log");
    ensure!(!log.contains("[critical]") && !log.contains("panic"), "the filter failed:\n{log}");
    Ok(())
}

/// A configuration Mixer only failed at runtime is rejected when Envoy loads it, with the
/// resource, field and reason in the log.
/// Each worker has its own VM and so its own series: `wasmixer_metric_series` is their sum
/// (every VM adds the series it defines), not the count of whichever worker wrote last. Two
/// workers, one label value on many connections: the gauge equals the number of workers that
/// served a request (Envoy's per-worker listener counters tell which).
#[test]
fn the_series_gauge_sums_the_workers() -> Result<(), HarnessError> {
    let backend = Backend::start(|_| BackendResponse::ok("ok"))?;
    let server = MetricsSidecar {
        name: "metrics-two-workers",
        workload: "server",
        listener: "inbound",
        direction: "INBOUND",
        cluster: "inbound|8080|http|server.default.svc.cluster.local",
        upstream_port: backend.port(),
    }
    .start_http_with_args(
        &[("metrics", read_workspace_file(DISTRIBUTION)?)],
        DISTRIBUTION_STATS,
        &["--concurrency", "2"],
    )?;
    let addr = server.listener_addr("inbound")?;
    // A connection each: the kernel spreads them over both workers' sockets.
    for _ in 0..24 {
        let resp = Request::get("/a").send(addr)?;
        ensure!(resp.status == 200, "status {}", resp.status);
    }
    let stats = server.admin_get("/stats?filter=worker_[0-9]+\\.downstream_cx_total")?.body_text();
    let workers = stats
        .lines()
        .filter(|l| l.starts_with("listener.") && l.contains(".worker_"))
        .filter(|l| l.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 0))
        .count();
    ensure!(workers >= 1, "no worker served a connection:\n{stats}");
    eprintln!("{workers} worker(s) served the connections");
    wait_for_stats_line(
        &server,
        &format!("wasmixer_metric_series{{metric=\"istio_path_requests_total\"}} {workers}"),
        Duration::from_secs(10),
    )?;
    Ok(())
}

#[test]
fn label_mismatch_is_rejected_at_configure_time() -> Result<(), HarnessError> {
    let backend = Backend::ok()?;
    let broken = read_workspace_file(SEED)?.replace(
        r#""label_names": ["reporter", "source", "destination", "message"]"#,
        r#""label_names": ["reporter", "source", "destination"]"#,
    );
    ensure!(broken != read_workspace_file(SEED)?, "the seed changed shape");
    let yaml = MetricsSidecar {
        name: "metrics-broken",
        workload: "server",
        listener: "inbound",
        direction: "INBOUND",
        cluster: "local",
        upstream_port: backend.port(),
    }
    .http_bootstrap(&[("metrics", broken)], SEED_STATS)?;
    // A static bootstrap whose Wasm plugin rejects its configuration: Envoy exits (README,
    // "Errors"), the reason in its log.
    let expected = "doublehandler.handler.istio-system: field params.metrics[0].label_names: label_names [reporter, source, destination] must equal the dimension keys [destination, message, reporter, source] of instance doublerequestcount.instance.istio-system: dimension(s) message have no label";
    match EnvoyProcess::start(&yaml, "metrics-rejected") {
        Ok(_) => return Err(HarnessError::check("Envoy started with a rejected configuration")),
        Err(HarnessError::Envoy { message, log }) => {
            ensure!(message.contains("exited during startup: exit status: 1"), "{message}");
            ensure!(log.contains(expected), "the rejection is not in the log:\n{log}")
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

const PRESET: &str = "envoy-config/metrics/istio-standard-metrics.json";
const PRESET_STATS: &str = "integration/testdata/metrics-istio-standard.stats-config.json";

/// The `istio_requests_total` lines of a scrape with every label in `want`, and their values.
fn requests_total(stats: &str, want: &[(&str, &str)]) -> Vec<f64> {
    stats
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .filter(|l| want.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
        .collect()
}

/// Istio's standard metrics from the preset: `istio_requests_total` with the standard labels and
/// a correct `response_code` for a 200 and a 403, on both reporters, the duration histogram in
/// milliseconds, and a dashboard-style PromQL query.
#[test]
fn standard_preset_labels_and_response_codes() -> Result<(), HarnessError> {
    let backend = Backend::start(|req| {
        if req.path.starts_with("/forbidden") {
            BackendResponse::new(403)
        } else {
            BackendResponse::ok("ok")
        }
    })?;
    let server = MetricsSidecar {
        name: "metrics-preset-server",
        workload: "reviews-v1",
        listener: "inbound",
        direction: "INBOUND",
        cluster: "inbound|9080|http|reviews.default.svc.cluster.local",
        upstream_port: backend.port(),
    }
    .start_http(&[("metrics", read_workspace_file(PRESET)?)], PRESET_STATS)?;
    let client = MetricsSidecar {
        name: "metrics-preset-client",
        workload: "productpage-v1",
        listener: "outbound",
        direction: "OUTBOUND",
        cluster: "outbound|9080||reviews.default.svc.cluster.local",
        upstream_port: server.listener_addr("inbound")?.port(),
    }
    .start_http(&[("metrics", read_workspace_file(PRESET)?)], PRESET_STATS)?;
    let entry = client.listener_addr("outbound")?;
    for i in 0..3 {
        let resp = Request::get(&format!("/ok/{i}")).send(entry)?;
        ensure!(resp.status == 200, "status {}", resp.status);
    }
    let resp = Request::get("/forbidden").send(entry)?;
    ensure!(resp.status == 403, "status {}", resp.status);
    backend.wait_for_requests(4, Duration::from_secs(5))?;

    let common = [
        ("destination_service", "reviews.default.svc.cluster.local"),
        ("destination_service_name", "reviews"),
        ("destination_service_namespace", "default"),
        ("request_protocol", "http"),
        ("response_flags", "-"),
        ("grpc_response_status", ""),
    ];
    let server_side = [
        ("reporter", "destination"),
        ("destination_workload", "reviews-v1"),
        ("destination_workload_namespace", "default"),
        ("destination_app", "reviews-v1"),
        ("destination_version", "v1"),
        ("destination_canonical_service", "reviews-v1"),
        ("destination_canonical_revision", "v1"),
        ("source_workload", "unknown"),
        ("connection_security_policy", "none"),
    ];
    let client_side = [
        ("reporter", "source"),
        ("source_workload", "productpage-v1"),
        ("source_app", "productpage-v1"),
        ("destination_workload", "unknown"),
        ("connection_security_policy", "unknown"),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = server.stats_prometheus()?;
        let c = client.stats_prometheus()?;
        let ok = |stats: &str, side: &[(&str, &str)], code: &str| {
            let mut want: Vec<(&str, &str)> = common.to_vec();
            want.extend_from_slice(side);
            want.push(("response_code", code));
            requests_total(stats, &want)
        };
        let found = (
            ok(&s, &server_side, "200"),
            ok(&s, &server_side, "403"),
            ok(&c, &client_side, "200"),
            ok(&c, &client_side, "403"),
        );
        // Histograms show their samples once Envoy has merged them (every second).
        let histograms = s.lines().any(|l| {
            l.starts_with("istio_request_bytes_count{") && l.contains("response_code=\"200\"") && l.ends_with(" 3")
        }) && s.lines().any(|l| {
            l.starts_with("istio_request_duration_milliseconds_bucket{")
                && l.contains("response_code=\"403\"")
                && l.contains("le=\"10000\"")
                && l.ends_with(" 1")
        });
        if found == (vec![3.0], vec![1.0], vec![3.0], vec![1.0]) && histograms {
            ensure!(
                s.lines()
                    .any(|l| l.starts_with("istio_request_duration_milliseconds_bucket{") && l.contains("le=\"5\"")),
                "no 5 ms bucket:\n{s}"
            );
            ensure!(!s.contains("wasmixer_metric_samples_dropped_total"), "samples were dropped:\n{s}");
            break;
        }
        if Instant::now() >= deadline {
            let ours =
                |t: &str| t.lines().filter(|l| l.starts_with("istio_requests_total")).collect::<Vec<_>>().join("\n");
            return Err(HarnessError::check(format!(
                "istio_requests_total is not as expected ({found:?}); server:\n{}\nclient:\n{}",
                ours(&s),
                ours(&c)
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // What a dashboard asks.
    let prometheus = Prometheus::scraping(&[server.admin_addr(), client.admin_addr()])?;
    prometheus.wait_for_value(
        "sum by (response_code) (istio_requests_total{reporter=\"destination\",response_code=\"403\"})",
        1.0,
        Duration::from_secs(30),
    )?;
    prometheus.wait_for_value(
        "sum(istio_requests_total{destination_service=\"reviews.default.svc.cluster.local\"})",
        8.0,
        Duration::from_secs(30),
    )?;
    prometheus.wait_for_value(
        "count(histogram_quantile(0.5, sum by (le) (istio_request_duration_milliseconds_bucket{reporter=\"destination\"})) >= 0)",
        1.0,
        Duration::from_secs(30),
    )?;
    Ok(())
}

/// The preset's `grpc_response_status`: the `grpc-status` a gRPC response ends with (a trailer,
/// or the header of a trailers-only response), and empty for a request that is not gRPC even if
/// its response carries the header (telemetry v2's rule).
#[test]
fn standard_preset_grpc_response_status_from_trailers() -> Result<(), HarnessError> {
    let backend = Backend::start(|req| {
        let grpc = BackendResponse::new(200).header("content-type", "application/grpc");
        match req.path.as_str() {
            "/pkg.Svc/Unavailable" => grpc.body(vec![0, 0, 0, 0, 0]).trailer("grpc-status", "14"),
            "/pkg.Svc/Denied" => grpc.header("grpc-status", "7"),
            _ => BackendResponse::ok("ok").header("grpc-status", "3"),
        }
    })?;
    let server = MetricsSidecar {
        name: "metrics-preset-grpc",
        workload: "reviews-v1",
        listener: "inbound",
        direction: "INBOUND",
        cluster: "inbound|9080|grpc|reviews.default.svc.cluster.local",
        upstream_port: backend.port(),
    }
    .start_http(&[("metrics", read_workspace_file(PRESET)?)], PRESET_STATS)?;
    let entry = server.listener_addr("inbound")?;
    for path in ["/pkg.Svc/Unavailable", "/pkg.Svc/Denied"] {
        let resp = Request::post(path, vec![0, 0, 0, 0, 0]).header("content-type", "application/grpc").send(entry)?;
        ensure!(resp.status == 200, "{path}: status {}", resp.status);
    }
    let resp = Request::get("/plain").send(entry)?;
    ensure!(resp.status == 200, "/plain: status {}", resp.status);
    backend.wait_for_requests(3, Duration::from_secs(5))?;

    let wanted: [&[(&str, &str)]; 3] = [
        &[("request_protocol", "grpc"), ("grpc_response_status", "14")],
        &[("request_protocol", "grpc"), ("grpc_response_status", "7")],
        &[("request_protocol", "http"), ("grpc_response_status", "")],
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = server.stats_prometheus()?;
        let found: Vec<Vec<f64>> = wanted.iter().map(|want| requests_total(&stats, want)).collect();
        if found.iter().all(|values| values == &[1.0]) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let ours: Vec<&str> = stats.lines().filter(|l| l.starts_with("istio_requests_total")).collect();
            return Err(HarnessError::check(format!(
                "istio_requests_total by grpc_response_status is not as expected ({found:?}):\n{}",
                ours.join("\n")
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Replaces `from` with `to` in `text`, requiring exactly one occurrence.
fn replace_once(text: &str, from: &str, to: &str) -> Result<String, HarnessError> {
    let n = text.matches(from).count();
    ensure!(n == 1, "expected one {from:?} in the example bootstrap, found {n}");
    Ok(text.replacen(from, to, 1))
}

/// The user-facing example `envoy-config/metrics/sidecar-example.yaml` works as documented.
#[test]
fn example_sidecar_bootstrap_serves() -> Result<(), HarnessError> {
    let backend = Backend::ok()?;
    let mut yaml = read_workspace_file("envoy-config/metrics/sidecar-example.yaml")?;
    yaml = replace_once(&yaml, "port_value: 9901", "port_value: 0")?;
    yaml = replace_once(&yaml, "port_value: 10000", "port_value: 0")?;
    yaml = replace_once(&yaml, "port_value: 8080", &format!("port_value: {}", backend.port()))?;
    let dist = wasm_path("metrics")?.parent().map(|d| d.display().to_string()).unwrap_or_default();
    yaml = replace_once(&yaml, "filename: dist/", &format!("filename: {dist}/"))?;
    let envoy = EnvoyProcess::start(&yaml, "metrics-example")?;
    envoy.wait_for_log("wasmixer-metrics", Duration::from_secs(10))?;
    let resp = Request::get("/").send(envoy.listener_addr("inbound")?)?;
    ensure!(resp.status == 200, "status {} body {:?}", resp.status, resp.body_text());
    wait_for_stats_line(
        &envoy,
        "istio_double_request_count{reporter=\"server\",source=\"unknown\",destination=\"productpage-v1\",message=\"twice the fun!\"} 2",
        Duration::from_secs(10),
    )?;
    Ok(())
}

/// A request the deny filter answers itself (403) is still reported by the metrics filter after
/// it in the chain, with the final response code; one configuration document serves both.
#[test]
fn denied_requests_are_counted_with_their_403() -> Result<(), HarnessError> {
    let backend = Backend::ok()?;
    let mut doc: Json =
        serde_json::from_str(&read_workspace_file(PRESET)?).map_err(|e| HarnessError::check(e.to_string()))?;
    let deny: Json = serde_json::from_str(
        r#"[
          {"kind": "handler", "metadata": {"name": "denyhandler", "namespace": "istio-system"},
           "spec": {"compiledAdapter": "denier", "params": {"status": {"code": 7, "message": "Not allowed"}}}},
          {"kind": "instance", "metadata": {"name": "denyrequest", "namespace": "istio-system"}, "spec": {"compiledTemplate": "checknothing"}},
          {"kind": "rule", "metadata": {"name": "denypath", "namespace": "istio-system"},
           "spec": {"match": "request.path == \"/denied\"", "actions": [{"handler": "denyhandler", "instances": ["denyrequest"]}]}}
        ]"#,
    )
    .map_err(|e| HarnessError::check(e.to_string()))?;
    if let (Some(list), Some(extra)) = (doc["resources"].as_array_mut(), deny.as_array()) {
        list.extend(extra.iter().cloned());
    }
    let config = doc.to_string();
    let server = MetricsSidecar {
        name: "metrics-deny-chain",
        workload: "ratings-v1",
        listener: "inbound",
        direction: "INBOUND",
        cluster: "inbound|9080|http|ratings.default.svc.cluster.local",
        upstream_port: backend.port(),
    }
    .start_http(&[("deny", config.clone()), ("metrics", config)], PRESET_STATS)?;
    let addr = server.listener_addr("inbound")?;
    let resp = Request::get("/denied").send(addr)?;
    ensure!(resp.status == 403, "status {} body {:?}", resp.status, resp.body_text());
    let resp = Request::get("/allowed").send(addr)?;
    ensure!(resp.status == 200, "status {}", resp.status);
    ensure!(backend.wait_for_requests(1, Duration::from_secs(5))?.len() == 1, "the denied request reached the backend");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = server.stats_prometheus()?;
        let side = [("reporter", "destination"), ("destination_workload", "ratings-v1"), ("response_flags", "-")];
        let count = |code: &str| {
            let mut want = side.to_vec();
            want.push(("response_code", code));
            requests_total(&s, &want)
        };
        if count("403") == [1.0] && count("200") == [1.0] {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let ours: Vec<&str> = s.lines().filter(|l| l.starts_with("istio_requests_total")).collect();
            return Err(HarnessError::check(format!(
                "403: {:?}, 200: {:?}; lines:\n{}",
                count("403"),
                count("200"),
                ours.join("\n")
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The log-phase properties, the listener's direction among them, come from one CEL evaluation.
/// On a listener without a traffic direction Envoy answers 0 for it (as to a single read): the
/// batch still serves, and the counts and response codes are those of every request.
#[test]
fn standard_preset_counts_right_on_a_listener_without_a_direction() -> Result<(), HarnessError> {
    const REQUESTS: usize = 20;
    let backend = Backend::ok()?;
    let server = MetricsSidecar {
        name: "metrics-preset-undirected",
        workload: "reviews-v1",
        listener: "inbound",
        direction: "UNSPECIFIED",
        cluster: "inbound|9080|http|reviews.default.svc.cluster.local",
        upstream_port: backend.port(),
    }
    .start_http(&[("metrics", read_workspace_file(PRESET)?)], PRESET_STATS)?;
    let entry = server.listener_addr("inbound")?;
    for i in 0..REQUESTS {
        let resp = Request::get(&format!("/ok/{i}")).send(entry)?;
        ensure!(resp.status == 200, "status {}", resp.status);
    }
    backend.wait_for_requests(REQUESTS, Duration::from_secs(5))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = server.stats_prometheus()?;
        let counted: f64 = requests_total(&stats, &[("response_code", "200"), ("response_flags", "-")]).iter().sum();
        if counted == REQUESTS as f64 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "istio_requests_total with response_code 200: {counted}, want {REQUESTS}:\n{stats}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
