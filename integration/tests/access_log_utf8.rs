//! Issue 7's invalid-UTF-8 gap through real Envoy: header bytes that are not UTF-8 (obs-text,
//! which Envoy's HTTP/1 codec accepts) reach the access-log line as Mixer's zap encoder wrote
//! them, one `\ufffd` escape per invalid byte, whether read from the header map or as a property.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;
use wasmixer_integration::bootstrap::{http_filters, render, wasm_filter};
use wasmixer_integration::dist::read_workspace_file;
use wasmixer_integration::{ensure, free_port, wasm_path, EnvoyProcess, HarnessError};

const TEMPLATE: &str = "integration/testdata/access-log-sidecar.yaml";
const STDOUT_KEY: &str = "wasmixer_log_stdout";

/// One instance printing the user agent (from the header map and from the `request.useragent`
/// property) and another header; no timestamp, so the line is fully deterministic.
fn config() -> String {
    json!({"resources": [
        {"kind": "instance", "metadata": {"name": "rawlog", "namespace": "istio-system"},
         "spec": {"compiledTemplate": "logentry", "params": {"severity": "\"info\"", "variables": {
             "agent": "request.headers[\"user-agent\"] | \"-\"",
             "useragent": "request.useragent | \"-\"",
             "raw": "request.headers[\"x-raw\"] | \"-\"",
             "rawSize": "size(request.headers[\"x-raw\"] | \"\")"}}}},
        {"kind": "handler", "metadata": {"name": "rawhandler", "namespace": "istio-system"},
         "spec": {"compiledAdapter": "stdio", "params": {}}},
        {"kind": "rule", "metadata": {"name": "rawlog", "namespace": "istio-system"},
         "spec": {"match": "true", "actions": [{"handler": "rawhandler", "instances": ["rawlog"]}]}}
    ]})
    .to_string()
}

/// The stdout logger of `envoy-config/access-log/README.md`.
fn stdout_logger() -> serde_json::Value {
    json!([{
        "name": "envoy.access_loggers.stdout",
        "filter": {"extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                             "expression": format!("'wasm.{STDOUT_KEY}' in filter_state")}
        }},
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                         "log_format": {"text_format_source": {"inline_string": format!("%FILTER_STATE(wasm.{STDOUT_KEY}:PLAIN)%\n")}}}
    }])
}

struct Sidecar {
    envoy: EnvoyProcess,
    app_log: PathBuf,
}

impl Sidecar {
    fn start(upstream_port: u16) -> Result<Sidecar, HarnessError> {
        let filter = wasm_filter("access-log", &wasm_path("access-log")?, &config());
        let node = json!({"NAME": "ratings-v1-x", "NAMESPACE": "default", "WORKLOAD_NAME": "ratings-v1",
                          "LABELS": {"app": "ratings", "version": "v1"}});
        let yaml = render(
            &read_workspace_file(TEMPLATE)?,
            &[
                ("node_metadata", node.to_string()),
                ("direction", "INBOUND".to_string()),
                ("route_cluster", "inbound|9080|http|ratings.default.svc.cluster.local".to_string()),
                ("upstream_port", upstream_port.to_string()),
                ("http_filters", http_filters(&[filter])),
                ("access_log", stdout_logger().to_string()),
                ("collector_port", free_port()?.to_string()),
            ],
        )?;
        let app_log = std::env::temp_dir().join(format!("wasmixer-it-al-utf8-{}-app.log", std::process::id()));
        let _ = std::fs::remove_file(&app_log);
        let path = app_log.display().to_string();
        // Envoy's own log goes to `app_log`: the process output holds only the access log.
        let envoy = EnvoyProcess::start_with_args(
            &yaml,
            "al-utf8",
            &["--log-path", &path, "--file-flush-interval-msec", "200"],
        )?;
        let sidecar = Sidecar { envoy, app_log };
        sidecar
            .wait_for("configured line", || Some(sidecar.app_log()).filter(|l| l.contains("wasmixer-access-log")))?;
        Ok(sidecar)
    }

    fn app_log(&self) -> String {
        std::fs::read(&self.app_log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T, HarnessError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = f() {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::check(format!("no {what} within 10s; app log:\n{}", self.app_log())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.app_log);
        }
    }
}

/// An upstream that answers one request with `200 ok` and hands over the request head's exact
/// bytes (the harness's `Backend` reads headers as UTF-8 text).
struct RawUpstream {
    port: u16,
    server: JoinHandle<()>,
    heads: mpsc::Receiver<Vec<u8>>,
}

fn raw_upstream() -> Result<RawUpstream, HarnessError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| HarnessError::io("binding the upstream", e))?;
    let port = listener.local_addr().map_err(|e| HarnessError::io("upstream address", e))?.port();
    let (sender, heads) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else { return };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
        let head = read_head(&mut conn);
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        let _ = sender.send(head);
    });
    Ok(RawUpstream { port, server, heads })
}

/// Reads until the end of an HTTP head (`\r\n\r\n`), EOF or an error.
fn read_head(conn: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    head
}

/// Sends `head` (request line and headers, exact bytes) and returns the response's status line.
fn raw_request(addr: SocketAddr, head: &[u8]) -> Result<String, HarnessError> {
    let mut stream = TcpStream::connect(addr).map_err(|e| HarnessError::io("connecting to Envoy", e))?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| HarnessError::io("read timeout", e))?;
    stream.write_all(head).map_err(|e| HarnessError::io("writing the request", e))?;
    // Only the status line is needed: read until it is complete, not until the connection ends.
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    while !response.contains(&b'\n') {
        let n = stream.read(&mut chunk).map_err(|e| HarnessError::io("reading the response", e))?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    Ok(text.lines().next().unwrap_or_default().to_string())
}

#[test]
fn invalid_header_bytes_are_logged_as_zap_wrote_them() -> Result<(), HarnessError> {
    let upstream = raw_upstream()?;
    let sidecar = Sidecar::start(upstream.port)?;
    let addr = sidecar.envoy.listener_addr("sidecar")?;
    let status = raw_request(
        addr,
        b"GET /ratings/0 HTTP/1.1\r\nHost: ratings\r\nUser-Agent: a\xffb\r\nX-Raw: \xe2\x82z\r\nConnection: close\r\n\r\n",
    )
    .map_err(|e| HarnessError::check(format!("{e}; app log:\n{}", sidecar.app_log())))?;
    ensure!(status.starts_with("HTTP/1.1 200"), "status line: {status:?}");
    let line = sidecar.wait_for("access-log line", || {
        sidecar.envoy.log().lines().find(|l| l.contains("rawlog.instance")).map(str::to_string)
    })?;
    let want = r#"{"level":"info","time":"0001-01-01T00:00:00.000000Z","instance":"rawlog.instance.istio-system","agent":"a\ufffdb","raw":"\ufffd\ufffdz","rawSize":3,"useragent":"a\ufffdb"}"#;
    ensure!(line == want, "line differs:\n got {line}\nwant {want}");
    // The request went on with its bytes unchanged.
    let head = upstream
        .heads
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| HarnessError::check("upstream saw no request"))?;
    let _ = upstream.server.join();
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    ensure!(
        has(b"user-agent: a\xffb\r\n") && has(b"x-raw: \xe2\x82z\r\n"),
        "upstream head: {}",
        String::from_utf8_lossy(&head)
    );
    let app = sidecar.app_log();
    ensure!(!app.contains("panic") && !app.contains("Wasm VM failed"), "filter failure in the log:\n{app}");
    Ok(())
}
