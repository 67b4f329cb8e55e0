//! End-to-end test of the metrics filter as an Envoy network filter (`dist/metrics.wasm` under a
//! `root_id` ending in `-tcp`) with Istio's standard TCP metrics preset
//! (`envoy-config/metrics/istio-tcp-metrics.json`): a client sidecar (listener OUTBOUND: the
//! client reporter) in front of a server sidecar (INBOUND: the server reporter) in front of a TCP
//! backend, each a `tcp_proxy` listener preceded by `envoy.filters.network.wasm`; real bytes over
//! TCP; the four `istio_tcp_*` series on each sidecar's `/stats/prometheus` and in a real
//! Prometheus (Debian's `/usr/bin/prometheus`, or `PROMETHEUS_BIN`).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use wasmixer_integration::dist::read_workspace_file;
use wasmixer_integration::mesh_obs::Prometheus;
use wasmixer_integration::metrics_sidecar::MetricsSidecar;
use wasmixer_integration::{ensure, EnvoyProcess, HarnessError};

const PRESET: &str = "envoy-config/metrics/istio-tcp-metrics.json";
const PRESET_STATS: &str = "integration/testdata/metrics-istio-tcp.stats-config.json";

/// A TCP server on 127.0.0.1 that answers every chunk it reads with that chunk twice, so the
/// bytes sent to a client are twice the bytes received from it, and closes after the client's
/// half-close.
fn start_echo_twice() -> Result<SocketAddr, HarnessError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| HarnessError::io("binding the TCP backend", e))?;
    let addr = listener.local_addr().map_err(|e| HarnessError::io("TCP backend address", e))?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else { break };
                    if conn.write_all(chunk).and_then(|_| conn.write_all(chunk)).is_err() {
                        break;
                    }
                }
                let _ = conn.shutdown(Shutdown::Write);
            });
        }
    });
    Ok(addr)
}

/// A client connection through the sidecars: `payload` written, twice its length read back.
struct Client {
    stream: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Result<Client, HarnessError> {
        let stream = TcpStream::connect(addr).map_err(|e| HarnessError::io(format!("connecting to {addr}"), e))?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| HarnessError::io("read timeout", e))?;
        Ok(Client { stream })
    }

    /// Writes `payload` (one byte repeated) and reads its doubled echo.
    fn exchange(&mut self, payload: &[u8]) -> Result<(), HarnessError> {
        self.stream.write_all(payload).map_err(|e| HarnessError::io("writing to the sidecar", e))?;
        let mut back = vec![0u8; payload.len() * 2];
        self.stream.read_exact(&mut back).map_err(|e| HarnessError::io("reading the echo", e))?;
        // The payloads are one repeated byte, so the doubled echo is that byte throughout.
        ensure!(back.iter().all(|b| Some(b) == payload.first()), "the echo is not the payload's byte");
        Ok(())
    }

    /// Half-closes, waits for the other side's close, and drops the connection.
    fn close(mut self) -> Result<(), HarnessError> {
        self.stream.shutdown(Shutdown::Write).map_err(|e| HarnessError::io("half-closing", e))?;
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest).map_err(|e| HarnessError::io("reading until close", e))?;
        ensure!(rest.is_empty(), "{} unexpected bytes after the echo", rest.len());
        Ok(())
    }
}

/// The sum of the `metric` lines of a scrape that carry every label in `want`, and how many.
fn series_sum(stats: &str, metric: &str, want: &[(&str, &str)]) -> (f64, usize) {
    let prefix = format!("{metric}{{");
    let values: Vec<f64> = stats
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter(|l| want.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
        .collect();
    (values.iter().sum(), values.len())
}

/// What one reporter's four series should say: (received, sent, opened, closed).
type Totals = (f64, f64, f64, f64);

fn totals(stats: &str, labels: &[(&str, &str)]) -> Totals {
    (
        series_sum(stats, "istio_tcp_received_bytes_total", labels).0,
        series_sum(stats, "istio_tcp_sent_bytes_total", labels).0,
        series_sum(stats, "istio_tcp_connections_opened_total", labels).0,
        series_sum(stats, "istio_tcp_connections_closed_total", labels).0,
    )
}

fn our_lines(stats: &str) -> String {
    stats.lines().filter(|l| l.starts_with("istio_tcp") || l.starts_with("wasmixer_")).collect::<Vec<_>>().join("\n")
}

/// Polls both sidecars until each reporter's series equal `want`. Counters reach
/// `/stats/prometheus` asynchronously (and `continue` reports on a timer): never assert once.
fn wait_for_totals(
    sidecars: &[(&EnvoyProcess, &[(&str, &str)])],
    want: Totals,
    timeout: Duration,
) -> Result<(), HarnessError> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut last = Vec::new();
        for (envoy, labels) in sidecars {
            let stats = envoy.stats_prometheus()?;
            last.push((totals(&stats, labels), stats));
        }
        if last.iter().all(|(t, _)| *t == want) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let report: Vec<String> = last.iter().map(|(t, s)| format!("{t:?}:\n{}", our_lines(s))).collect();
            return Err(HarnessError::Timeout(format!(
                "TCP series not {want:?} within {timeout:?}:\n{}",
                report.join("\n---\n")
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn tcp_metrics_on_both_reporters_with_periodic_reports_and_in_prometheus() -> Result<(), HarnessError> {
    const PAYLOAD: usize = 1000;
    const SHORT: usize = 3;
    let backend = start_echo_twice()?;
    let server = MetricsSidecar {
        name: "metrics-tcp-server",
        workload: "mysqldb-v1",
        listener: "inbound",
        direction: "INBOUND",
        cluster: "inbound|3306|tcp|mysqldb.default.svc.cluster.local",
        upstream_port: backend.port(),
    }
    .start_tcp(&read_workspace_file(PRESET)?, PRESET_STATS)?;
    let client = MetricsSidecar {
        name: "metrics-tcp-client",
        workload: "ratings-v2",
        listener: "outbound",
        direction: "OUTBOUND",
        cluster: "outbound|3306||mysqldb.default.svc.cluster.local",
        upstream_port: server.listener_addr("inbound")?.port(),
    }
    .start_tcp(&read_workspace_file(PRESET)?, PRESET_STATS)?;
    let entry = client.listener_addr("outbound")?;

    // Short connections: two writes each, then close.
    for i in 0..SHORT {
        let mut c = Client::connect(entry)?;
        let byte = b'a' + u8::try_from(i).unwrap_or(0);
        c.exchange(&vec![byte; PAYLOAD / 2])?;
        c.exchange(&vec![byte; PAYLOAD / 2])?;
        c.close()?;
    }
    let common = [
        ("request_protocol", "tcp"),
        ("destination_service", "mysqldb.default.svc.cluster.local"),
        ("destination_service_name", "mysqldb"),
        ("destination_service_namespace", "default"),
        ("response_flags", "-"),
        ("source_principal", "unknown"),
    ];
    let mut server_labels = common.to_vec();
    server_labels.extend([
        ("reporter", "destination"),
        ("destination_workload", "mysqldb-v1"),
        ("destination_workload_namespace", "default"),
        ("destination_app", "mysqldb-v1"),
        ("destination_version", "v1"),
        ("source_workload", "unknown"),
        ("source_app", "unknown"),
        ("connection_security_policy", "none"),
    ]);
    let mut client_labels = common.to_vec();
    client_labels.extend([
        ("reporter", "source"),
        ("source_workload", "ratings-v2"),
        ("source_workload_namespace", "default"),
        ("source_app", "ratings-v2"),
        ("destination_workload", "unknown"),
        ("connection_security_policy", "unknown"),
    ]);
    let both = [(&server, server_labels.as_slice()), (&client, client_labels.as_slice())];
    let n = SHORT as f64;
    let bytes = PAYLOAD as f64;
    wait_for_totals(&both, (n * bytes, 2.0 * n * bytes, n, n), Duration::from_secs(10))?;
    for envoy in [&server, &client] {
        let stats = envoy.stats_prometheus()?;
        ensure!(
            !stats.contains("wasmixer_metric_samples_dropped_total"),
            "samples were dropped:\n{}",
            our_lines(&stats)
        );
        ensure!(!stats.contains("istio_requests_total"), "an HTTP metric on a TCP listener:\n{}", our_lines(&stats));
        // One series per metric: every report of every connection had the same labels.
        let (_, series) = series_sum(&stats, "istio_tcp_received_bytes_total", &[]);
        ensure!(series == 1, "{series} received-bytes series:\n{}", our_lines(&stats));
    }

    // A long connection: its open report (at its first bytes) carries the bytes received so
    // far; the echo that follows is reported while the connection stays open, by a `continue`
    // report at most 10 s (plus a 1 s tick) after the open one.
    let mut long = Client::connect(entry)?;
    long.exchange(&[b'z'; PAYLOAD])?;
    let shorts = n * bytes;
    wait_for_totals(&both, (shorts + bytes, 2.0 * shorts, n + 1.0, n), Duration::from_secs(5))?;
    wait_for_totals(&both, (shorts + bytes, 2.0 * (shorts + bytes), n + 1.0, n), Duration::from_secs(20))?;
    long.exchange(&[b'y'; PAYLOAD])?;
    long.close()?;
    let total = shorts + 2.0 * bytes;
    wait_for_totals(&both, (total, 2.0 * total, n + 1.0, n + 1.0), Duration::from_secs(10))?;

    // What a dashboard asks.
    let prometheus = Prometheus::scraping(&[server.admin_addr(), client.admin_addr()])?;
    prometheus.wait_for_value(
        "sum(istio_tcp_sent_bytes_total{reporter=\"destination\",destination_service=\"mysqldb.default.svc.cluster.local\"})",
        2.0 * total,
        Duration::from_secs(30),
    )?;
    prometheus.wait_for_value(
        "sum(istio_tcp_received_bytes_total{reporter=\"source\",request_protocol=\"tcp\"})",
        total,
        Duration::from_secs(30),
    )?;
    prometheus.wait_for_value(
        "sum by (reporter) (istio_tcp_connections_opened_total{reporter=\"source\"}) - sum by (reporter) (istio_tcp_connections_closed_total{reporter=\"source\"})",
        0.0,
        Duration::from_secs(30),
    )?;
    Ok(())
}

/// The checked-in `stats_config` of the TCP preset is what the filter's compiler generates, and
/// the TCP preset merges with the HTTP one into one document (one filter configuration for both
/// the HTTP and the network filter).
#[test]
fn tcp_preset_stats_config_is_current_and_merges_with_the_http_preset() -> Result<(), HarnessError> {
    use wasmixer_engine::config::FilterConfig;
    use wasmixer_engine::expr::Manifest;
    use wasmixer_engine::telemetry::metrics::plan::MetricPlan;

    let compile = |text: &str| -> Result<MetricPlan, HarnessError> {
        let config = FilterConfig::parse(text.as_bytes()).map_err(|e| HarnessError::check(e.to_string()))?;
        MetricPlan::compile(&config, Manifest::istio()).map_err(|e| HarnessError::check(e.to_string()))
    };
    let tcp = read_workspace_file(PRESET)?;
    let checked_in: Json = serde_json::from_str(&read_workspace_file(PRESET_STATS)?)
        .map_err(|e| HarnessError::check(format!("{PRESET_STATS}: {e}")))?;
    ensure!(
        checked_in["stats_config"] == compile(&tcp)?.stats_config(),
        "{PRESET_STATS} is stale: run `cargo run -p wasmixer-cli -- stats-config {PRESET} --format json > {PRESET_STATS}`"
    );

    let resources = |text: &str| -> Result<Vec<Json>, HarnessError> {
        let doc: Json = serde_json::from_str(text).map_err(|e| HarnessError::check(e.to_string()))?;
        Ok(doc["resources"].as_array().cloned().unwrap_or_default())
    };
    let mut all = resources(&read_workspace_file("envoy-config/metrics/istio-standard-metrics.json")?)?;
    all.extend(resources(&tcp)?);
    let merged = compile(&serde_json::json!({ "resources": all }).to_string())?;
    let names: Vec<&str> = merged.families.iter().map(|f| f.name.as_str()).collect();
    ensure!(names.len() == 8 && names.contains(&"istio_tcp_connections_closed_total"), "{names:?}");
    Ok(())
}
