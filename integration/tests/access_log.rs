//! The access-log filter in real Envoys: the seed scenario `newlog-stdio.yaml` (as JSON) prints
//! Mixer's stdio line on the process's stdout, through a FILE that survives rotation, and to a
//! collector over HTTP that goes away for a while.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use wasmixer_integration::bootstrap::{http_filters, render, wasm_filter};
use wasmixer_integration::dist::read_workspace_file;
use wasmixer_integration::envoy::readable_log;
use wasmixer_integration::{
    ensure, free_port, wasm_path, Backend, BackendResponse, EnvoyProcess, HarnessError, Request,
};

const TEMPLATE: &str = "integration/testdata/access-log-sidecar.yaml";
const SEED: &str = "integration/testdata/access-log-newlog-stdio.json";
const STDOUT_KEY: &str = "wasmixer_log_stdout";
/// What the ratings backend answers: 48 bytes, as in the seed's line.
const RATINGS_BODY: &str = "{\"id\":0,\"ratings\":{\"Reviewer1\":5,\"Reviewer2\":4}}";

fn check(cond: bool, msg: impl Into<String>) -> Result<(), HarnessError> {
    if cond {
        Ok(())
    } else {
        Err(HarnessError::check(msg))
    }
}

/// The seed configuration with an `access_log` section, as filter configuration text.
fn seed_config(access_log: Json) -> Result<String, HarnessError> {
    let mut config: Json =
        serde_json::from_str(&read_workspace_file(SEED)?).map_err(|e| HarnessError::check(format!("{SEED}: {e}")))?;
    if let Some(obj) = config.as_object_mut() {
        obj.insert("access_log".to_string(), access_log);
    }
    Ok(config.to_string())
}

fn node_metadata(workload: &str, app: &str) -> String {
    json!({
        "NAME": format!("{workload}-6d8f5c7b9-x2x4z"),
        "NAMESPACE": "default",
        "WORKLOAD_NAME": workload,
        "LABELS": {"app": app, "version": "v1"},
        "SERVICE_ACCOUNT": format!("bookinfo-{app}"),
        "CLUSTER_ID": "Kubernetes",
        "MESH_ID": "cluster.local",
        "ISTIO_VERSION": "1.4.10",
    })
    .to_string()
}

/// An HCM access logger printing filter state `wasm.<key>` and nothing for requests without it
/// (the snippet of `envoy-config/access-log/README.md`, as one-line JSON).
fn filter_state_logger(kind: &str, key: &str, path: Option<&Path>) -> Json {
    let format = json!({"text_format_source": {"inline_string": format!("%FILTER_STATE(wasm.{key}:PLAIN)%\n")}});
    let typed = match (kind, path) {
        ("file", Some(p)) => {
            json!({"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": p.display().to_string(), "log_format": format})
        }
        ("stderr", _) => {
            json!({"@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog", "log_format": format})
        }
        _ => {
            json!({"@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog", "log_format": format})
        }
    };
    json!({
        "name": format!("envoy.access_loggers.{}", if kind == "file" { "file" } else { kind }),
        "filter": {"extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter", "expression": format!("'wasm.{key}' in filter_state")}
        }},
        "typed_config": typed,
    })
}

/// One sidecar-like Envoy. Envoy's own log goes to `app_log` (`--log-path`), so the harness's
/// process log holds only what the access loggers print on stdout / stderr. Access logs are
/// flushed every 200 ms (`--file-flush-interval-msec`; Envoy's default is 10 s).
struct Sidecar {
    envoy: EnvoyProcess,
    app_log: PathBuf,
}

struct SidecarSpec<'a> {
    name: &'a str,
    direction: &'a str,
    route_cluster: &'a str,
    upstream_port: u16,
    workload: &'a str,
    app: &'a str,
    /// `(filter, configuration)` pairs.
    filters: Vec<(&'a str, String)>,
    access_log: Json,
    collector_port: u16,
}

impl Sidecar {
    fn start(spec: SidecarSpec<'_>) -> Result<Sidecar, HarnessError> {
        let entries = spec
            .filters
            .iter()
            .map(|(f, c)| Ok(wasm_filter(f, &wasm_path(f)?, c)))
            .collect::<Result<Vec<_>, HarnessError>>()?;
        let yaml = render(
            &read_workspace_file(TEMPLATE)?,
            &[
                ("node_metadata", node_metadata(spec.workload, spec.app)),
                ("direction", spec.direction.to_string()),
                ("route_cluster", spec.route_cluster.to_string()),
                ("upstream_port", spec.upstream_port.to_string()),
                ("http_filters", http_filters(&entries)),
                ("access_log", spec.access_log.to_string()),
                ("collector_port", spec.collector_port.to_string()),
            ],
        )?;
        let app_log = std::env::temp_dir().join(format!("wasmixer-it-{}-{}-app.log", spec.name, std::process::id()));
        let _ = std::fs::remove_file(&app_log);
        let path = app_log.display().to_string();
        let envoy = match EnvoyProcess::start_with_args(
            &yaml,
            spec.name,
            &["--log-path", &path, "--file-flush-interval-msec", "200"],
        ) {
            Ok(e) => e,
            Err(e) => return Err(HarnessError::check(format!("{e}\n----- envoy app log -----\n{}", read(&app_log)))),
        };
        let sidecar = Sidecar { envoy, app_log };
        sidecar.wait_app_log("wasmixer-access-log", Duration::from_secs(10))?;
        Ok(sidecar)
    }

    fn addr(&self) -> Result<SocketAddr, HarnessError> {
        self.envoy.listener_addr("sidecar")
    }

    fn app_log(&self) -> String {
        read(&self.app_log)
    }

    /// The process's stdout and stderr (access-logger output only).
    fn output(&self) -> String {
        self.envoy.log()
    }

    fn wait_app_log(&self, needle: &str, timeout: Duration) -> Result<String, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.app_log();
            if log.contains(needle) {
                return Ok(log);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::check(format!("no {needle:?} in Envoy's log within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sum of the admin `/stats` counters whose name contains every one of `parts`.
    fn stat_sum(&self, parts: &[&str]) -> Result<u64, HarnessError> {
        let body = self.envoy.admin_get("/stats")?.body_text();
        Ok(body
            .lines()
            .filter_map(|l| l.split_once(": "))
            .filter(|(k, _)| parts.iter().all(|p| k.contains(p)))
            .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
            .sum())
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        eprintln!("===== {} (app log) =====\n{}", self.app_log.display(), readable_log(&self.app_log()).trim_end());
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.app_log);
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// Waits until `f` yields `Some`.
fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>, HarnessError>,
) -> Result<T, HarnessError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout(what.to_string()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn nonempty_lines(text: &str) -> Vec<String> {
    text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn is_mixer_time(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 27
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            26 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Parses Go's `Duration.String()` text (below one hour: `999ns`, `1.5µs`, `1.494269ms`,
/// `2.5s`, `1m0.5s`) into nanoseconds; `None` if it is not in that form.
fn go_duration_nanos(text: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = text.strip_suffix("ns") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("\u{b5}s") {
        (n, 1e3)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = text.strip_suffix('s') {
        match n.split_once('m') {
            Some((m, s)) => return Some(m.parse::<u64>().ok()? as f64 * 6e10 + go_fraction(s)? * 1e9),
            None => (n, 1e9),
        }
    } else {
        return None;
    };
    Some(go_fraction(num)? * scale)
}

/// `12` or `1.494269`: digits, an optional fraction without trailing zeros.
fn go_fraction(s: &str) -> Option<f64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && (frac.is_empty() || (frac.bytes().all(|b| b.is_ascii_digit()) && !frac.ends_with('0')));
    if !ok || (s.contains('.') && frac.is_empty()) {
        return None;
    }
    s.parse().ok()
}

/// Checks one line against the seed's shape, field by field and in Mixer's key order; returns
/// the latency in nanoseconds.
fn check_seed_line(line: &str, source: &str, destination: &str) -> Result<f64, HarnessError> {
    let v: Json = serde_json::from_str(line).map_err(|e| HarnessError::check(format!("not JSON ({e}): {line}")))?;
    let obj = v.as_object().ok_or_else(|| HarnessError::check(format!("not an object: {line}")))?;
    // Key order as written (serde_json's map is sorted, so read the order from the text).
    let keys =
        ["level", "time", "instance", "destination", "latency", "responseCode", "responseSize", "source", "user"];
    let mut at = 0;
    for k in keys {
        let needle = format!("\"{k}\":");
        let pos = line
            .get(at..)
            .and_then(|rest| rest.find(&needle))
            .ok_or_else(|| HarnessError::check(format!("key {k} missing or out of order: {line}")))?;
        at += pos + needle.len();
    }
    check(obj.len() == keys.len(), format!("extra fields: {line}"))?;
    check(obj["level"] == "warn", format!("level: {line}"))?;
    let time = obj["time"].as_str().unwrap_or_default();
    check(is_mixer_time(time), format!("time {time:?} is not YYYY-MM-DDTHH:MM:SS.ffffffZ"))?;
    check(obj["instance"] == "newlog.instance.istio-system", format!("instance: {line}"))?;
    check(obj["destination"] == destination, format!("destination (want {destination}): {line}"))?;
    check(obj["source"] == source, format!("source (want {source}): {line}"))?;
    check(obj["user"] == "unknown", format!("user: {line}"))?;
    check(
        obj["responseCode"].as_i64() == Some(200) && line.contains("\"responseCode\":200,"),
        format!("responseCode: {line}"),
    )?;
    check(
        obj["responseSize"].as_i64() == Some(48) && line.contains("\"responseSize\":48,"),
        format!("responseSize: {line}"),
    )?;
    let latency = obj["latency"].as_str().unwrap_or_default();
    let nanos = go_duration_nanos(latency)
        .ok_or_else(|| HarnessError::check(format!("latency {latency:?} is not Go duration text")))?;
    check(nanos > 0.0 && nanos < 10e9, format!("latency {latency} out of range"))?;
    // The whole line, with the two time-dependent values put back.
    let want = format!(
        r#"{{"level":"warn","time":"{time}","instance":"newlog.instance.istio-system","destination":"{destination}","latency":"{latency}","responseCode":200,"responseSize":48,"source":"{source}","user":"unknown"}}"#
    );
    check(line == want, format!("line differs:\n got {line}\nwant {want}"))?;
    Ok(nanos)
}

fn ratings_backend() -> Result<Backend, HarnessError> {
    Backend::start(|_| BackendResponse::new(200).header("content-type", "application/json").body(RATINGS_BODY))
}

fn ratings_sidecar(
    name: &str,
    backend: &Backend,
    config: String,
    access_log: Json,
    collector_port: u16,
) -> Result<Sidecar, HarnessError> {
    ratings_sidecar_with("access-log", name, backend, config, access_log, collector_port)
}

/// [`ratings_sidecar`] running `filter` (`access-log`, or `mixer` with the same document).
fn ratings_sidecar_with(
    filter: &str,
    name: &str,
    backend: &Backend,
    config: String,
    access_log: Json,
    collector_port: u16,
) -> Result<Sidecar, HarnessError> {
    Sidecar::start(SidecarSpec {
        name,
        direction: "INBOUND",
        route_cluster: "inbound|9080|http|ratings.default.svc.cluster.local",
        upstream_port: backend.port(),
        workload: "ratings-v1",
        app: "ratings",
        filters: vec![(filter, config)],
        access_log,
        collector_port,
    })
}

#[test]
fn seed_line_on_stdout_and_nothing_else() -> Result<(), HarnessError> {
    check(RATINGS_BODY.len() == 48, "the backend body must be 48 bytes")?;
    let backend = ratings_backend()?;
    let sidecar = ratings_sidecar(
        "al-stdout",
        &backend,
        seed_config(json!({}))?,
        json!([filter_state_logger("stdout", STDOUT_KEY, None)]),
        free_port()?,
    )?;
    let addr = sidecar.addr()?;
    let before = Instant::now();
    for i in 0..3 {
        let resp = Request::get(&format!("/ratings/{i}")).send(addr)?;
        ensure!(resp.status == 200 && resp.body.len() == 48, "request {i}: {} {:?}", resp.status, resp.body_text());
    }
    ensure!(before.elapsed() < Duration::from_secs(5), "requests were slow: {:?}", before.elapsed());
    let lines = wait_for("three lines on stdout", Duration::from_secs(10), || {
        let lines = nonempty_lines(&sidecar.output());
        Ok((lines.len() >= 3).then_some(lines))
    })?;
    ensure!(lines.len() == 3, "stdout has {} lines:\n{}", lines.len(), lines.join("\n"));
    for line in &lines {
        // Inbound, no peer identity: source falls back to "unknown"; destination is this node.
        check_seed_line(line, "unknown", "ratings")?;
        let t = serde_json::from_str::<Json>(line)
            .ok()
            .and_then(|v| v["time"].as_str().map(str::to_string))
            .unwrap_or_default();
        ensure!(t.starts_with(&chrono_like_today()), "time {t} is not today ({})", chrono_like_today());
    }
    let app = sidecar.app_log();
    ensure!(app.contains("filter state wasm.wasmixer_log_stdout"), "configure line:\n{app}");
    ensure!(!app.contains("panic") && !app.contains("Wasm VM failed"), "filter failure in the log:\n{app}");
    Ok(())
}

/// Today's UTC date as `YYYY-MM-DD`, from the system clock (civil-from-days).
fn chrono_like_today() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// reviews -> ratings through two sidecars running peer-metadata and access-log: both report
/// the seed's line with source "reviews" and destination "ratings" (from node metadata on
/// the own side, from the exchanged metadata on the other; no mTLS here, so the filters opt in
/// to unverified peers, and ratings to answering a plain-text caller).
#[test]
fn seed_line_for_reviews_to_ratings_through_two_sidecars() -> Result<(), HarnessError> {
    let backend = ratings_backend()?;
    let config = seed_config(json!({"allow_unverified_peer": true}))?;
    let collector = free_port()?;
    let ratings = Sidecar::start(SidecarSpec {
        name: "al-ratings",
        direction: "INBOUND",
        route_cluster: "inbound|9080|http|ratings.default.svc.cluster.local",
        upstream_port: backend.port(),
        workload: "ratings-v1",
        app: "ratings",
        filters: vec![
            ("peer-metadata", r#"{"answer_plaintext_callers": true}"#.to_string()),
            ("access-log", config.clone()),
        ],
        access_log: json!([filter_state_logger("stdout", STDOUT_KEY, None)]),
        collector_port: collector,
    })?;
    let reviews = Sidecar::start(SidecarSpec {
        name: "al-reviews",
        direction: "OUTBOUND",
        route_cluster: "outbound|9080||ratings.default.svc.cluster.local",
        upstream_port: ratings.addr()?.port(),
        workload: "reviews-v3",
        app: "reviews",
        filters: vec![("peer-metadata", "{}".to_string()), ("access-log", config)],
        access_log: json!([filter_state_logger("stdout", STDOUT_KEY, None)]),
        collector_port: collector,
    })?;
    let resp = Request::get("/ratings/0").send(reviews.addr()?)?;
    ensure!(resp.status == 200 && resp.body.len() == 48, "{} {:?}", resp.status, resp.body_text());
    ensure!(resp.header("x-envoy-peer-metadata").is_none(), "peer metadata leaked to the app");
    for (side, sidecar) in [("server (ratings)", &ratings), ("client (reviews)", &reviews)] {
        let lines = wait_for(&format!("{side} line"), Duration::from_secs(10), || {
            let lines = nonempty_lines(&sidecar.output());
            Ok((!lines.is_empty()).then_some(lines))
        })?;
        ensure!(lines.len() == 1, "{side}: {} lines:\n{}", lines.len(), lines.join("\n"));
        check_seed_line(&lines[0], "reviews", "ratings").map_err(|e| HarnessError::check(format!("{side}: {e}")))?;
    }
    Ok(())
}

/// FILE: Envoy's file logger writes the lines; `logrotate`-style rename plus admin
/// `/reopen_logs` starts a new file. Requests that no rule matches leave no line (the CEL filter).
/// A second handler writes console-format lines to STDERR for one path.
#[test]
fn file_stream_with_rotation_and_quiet_requests() -> Result<(), HarnessError> {
    let backend = ratings_backend()?;
    let dir = std::env::temp_dir().join(format!("wasmixer-it-al-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io("creating the log directory", e))?;
    let path = dir.join("mixer-access.log");
    let mut config: Json =
        serde_json::from_str(&seed_config(json!({}))?).map_err(|e| HarnessError::check(e.to_string()))?;
    config["resources"][1]["spec"]["params"]["log_stream"] = json!("FILE");
    config["resources"][1]["spec"]["params"]["output_path"] = json!(path.display().to_string());
    config["resources"][2]["spec"]["match"] = json!("request.url_path != \"/quiet\"");
    // A second handler on STDERR in console mode, for /b only.
    if let Some(resources) = config["resources"].as_array_mut() {
        resources.push(json!({"kind": "handler", "metadata": {"name": "console", "namespace": "istio-system"},
            "spec": {"compiledAdapter": "stdio", "params": {"log_stream": "STDERR", "output_as_json": false}}}));
        resources.push(json!({"kind": "rule", "metadata": {"name": "consolerule", "namespace": "istio-system"},
            "spec": {"match": "request.url_path == \"/b\"", "actions": [{"handler": "console", "instances": ["newlog"]}]}}));
    }
    let loggers = json!([
        filter_state_logger("file", "wasmixer_log_file", Some(&path)),
        filter_state_logger("stderr", "wasmixer_log_stderr", None)
    ]);
    let sidecar = ratings_sidecar("al-file", &backend, config.to_string(), loggers, free_port()?)?;
    let addr = sidecar.addr()?;
    for p in ["/a", "/quiet", "/b"] {
        ensure!(Request::get(p).send(addr)?.status == 200, "request {p}");
    }
    let first = wait_for("two lines in the file", Duration::from_secs(10), || {
        let lines = nonempty_lines(&read(&path));
        Ok((lines.len() >= 2).then_some(lines))
    })?;
    std::thread::sleep(Duration::from_millis(1_500));
    let first_again = nonempty_lines(&read(&path));
    ensure!(first_again.len() == 2, "the quiet request was logged:\n{}", first_again.join("\n"));
    for line in &first {
        check_seed_line(line, "unknown", "ratings")?;
    }
    // Rotate: rename, ask Envoy to reopen, log more.
    let rotated = dir.join("mixer-access.log.1");
    std::fs::rename(&path, &rotated).map_err(|e| HarnessError::io("rotating the log", e))?;
    let r = sidecar.envoy.admin_post("/reopen_logs")?;
    ensure!(r.status == 200, "/reopen_logs answered {}", r.status);
    ensure!(Request::get("/c").send(addr)?.status == 200, "request /c");
    let after = wait_for("a line in the new file", Duration::from_secs(10), || {
        let lines = nonempty_lines(&read(&path));
        Ok((!lines.is_empty()).then_some(lines))
    })?;
    ensure!(after.len() == 1, "new file: {}", after.join("\n"));
    check_seed_line(&after[0], "unknown", "ratings")?;
    ensure!(nonempty_lines(&read(&rotated)).len() == 2, "the rotated file changed");
    // stderr got exactly the console line of /b (the default severity map has `warning`).
    let err = nonempty_lines(&sidecar.output());
    ensure!(err.len() == 1, "stdout/stderr:\n{}", err.join("\n"));
    let cols: Vec<&str> = err[0].split('\t').collect();
    ensure!(
        cols.len() == 4 && is_mixer_time(cols[0]) && cols[1] == "warn" && cols[2] == "newlog.instance.istio-system",
        "console line: {:?}",
        err[0]
    );
    ensure!(
        cols[3].starts_with("{\"destination\": \"ratings\", \"latency\": \"")
            && cols[3].ends_with(
                "\", \"responseCode\": 200, \"responseSize\": 48, \"source\": \"unknown\", \"user\": \"unknown\"}"
            ),
        "console fields: {}",
        cols[3]
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A log collector: an HTTP/1.1 server on a fixed port that records request bodies and
/// answers 200. Stopped and started again on the same port to play an outage.
struct Collector {
    state: Arc<CollectorState>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct CollectorState {
    /// (path, content-type, body) per request.
    requests: Mutex<Vec<(String, String, String)>>,
    connections: Mutex<Vec<TcpStream>>,
    stopping: AtomicBool,
    status: AtomicU16,
}

impl Collector {
    /// A collector with fresh state on a free port: (collector, port, state).
    fn on_free_port() -> Result<(Collector, u16, Arc<CollectorState>), HarnessError> {
        let port = free_port()?;
        let state = Arc::new(CollectorState::default());
        Ok((Collector::start(port, Arc::clone(&state))?, port, state))
    }

    fn start(port: u16, state: Arc<CollectorState>) -> Result<Collector, HarnessError> {
        state.stopping.store(false, Ordering::SeqCst);
        let listener = TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| HarnessError::io(format!("binding the collector to {port}"), e))?;
        let addr = listener.local_addr().map_err(|e| HarnessError::io("collector address", e))?;
        let s = Arc::clone(&state);
        let acceptor = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                if let Ok(c) = conn.try_clone() {
                    s.connections.lock().unwrap_or_else(|p| p.into_inner()).push(c);
                }
                let s = Arc::clone(&s);
                std::thread::spawn(move || serve_collector(conn, s));
            }
        });
        Ok(Collector { state, addr, acceptor: Some(acceptor) })
    }

    fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for c in self.state.connections.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl CollectorState {
    fn requests(&self) -> Vec<(String, String, String)> {
        self.requests.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every NDJSON line received, in order.
    fn lines(&self) -> Vec<String> {
        self.requests().iter().flat_map(|(_, _, body)| nonempty_lines(body)).collect()
    }

    /// Waits until at least `n` lines have arrived.
    fn wait_for_lines(&self, n: usize, timeout: Duration) -> Result<(), HarnessError> {
        wait_for(&format!("{n} lines at the collector"), timeout, || Ok((self.lines().len() >= n).then_some(())))
    }
}

fn serve_collector(conn: TcpStream, state: Arc<CollectorState>) {
    let mut reader = BufReader::new(&conn);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let Some(request_line) = head.first() else {
            return;
        };
        let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
        let header = |name: &str| {
            head.iter().skip(1).find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let mut body = Vec::new();
        if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
            body.resize(len, 0);
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        } else if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).is_err() {
                    return;
                }
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                if reader.read_exact(&mut chunk).is_err() {
                    return;
                }
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        let status = match state.status.load(Ordering::SeqCst) {
            0 => 200,
            s => s,
        };
        if status == 200 {
            state.requests.lock().unwrap_or_else(|p| p.into_inner()).push((
                path,
                header("content-type").unwrap_or_default(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
        if (&conn).write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// Sends `n` requests, each of which must succeed quickly whatever the collector does.
fn send_requests(addr: SocketAddr, n: usize) -> Result<(), HarnessError> {
    for i in 0..n {
        let started = Instant::now();
        let resp = Request::get(&format!("/r/{i}")).send(addr)?;
        ensure!(resp.status == 200 && resp.body.len() == 48, "request {i}: {}", resp.status);
        ensure!(started.elapsed() < Duration::from_secs(2), "request {i} took {:?}", started.elapsed());
    }
    Ok(())
}

/// NDJSON to a collector: delivered in batches; while the collector is down lines wait in the
/// bounded buffer (then arrive, in order), lines beyond the bound are dropped and counted, and
/// requests never wait for any of it.
#[test]
fn network_sink_survives_a_collector_outage() -> Result<(), HarnessError> {
    let backend = ratings_backend()?;
    let (collector, port, state) = Collector::on_free_port()?;
    let network = json!({
        "cluster": "log-collector", "path": "/ingest", "batch_lines": 5, "flush_interval_ms": 200,
        "max_buffered_lines": 30, "initial_backoff_ms": 100, "max_backoff_ms": 400, "timeout_ms": 1000,
        "headers": {"x-token": "secret"}
    });
    let sidecar = ratings_sidecar(
        "al-network",
        &backend,
        seed_config(json!({"filter_state": false, "network": network}))?,
        json!([]),
        port,
    )?;
    let addr = sidecar.addr()?;

    // Up: three lines arrive within the flush interval (a partial batch).
    send_requests(addr, 3)?;
    state.wait_for_lines(3, Duration::from_secs(10))?;
    let reqs = state.requests();
    ensure!(reqs.iter().all(|(p, ct, _)| p == "/ingest" && ct == "application/x-ndjson"), "requests: {reqs:?}");
    for line in state.lines() {
        check_seed_line(&line, "unknown", "ratings")?;
    }

    // Down for a while: requests are unaffected, lines wait.
    collector.stop();
    send_requests(addr, 10)?;
    wait_for("failed attempts", Duration::from_secs(10), || {
        Ok((sidecar.stat_sum(&["wasmixer_access_log_network_failed_attempts_total"])? >= 2).then_some(()))
    })?;
    ensure!(state.lines().len() == 3, "lines arrived while the collector was down");
    // Back: the 10 buffered lines are delivered, in order.
    let collector = Collector::start(port, Arc::clone(&state))?;
    state.wait_for_lines(13, Duration::from_secs(15))?;
    let lines = state.lines();
    ensure!(lines.len() == 13, "{} lines", lines.len());
    let mut last = String::new();
    for line in &lines {
        check_seed_line(line, "unknown", "ratings")?;
        let t = serde_json::from_str::<Json>(line)
            .ok()
            .and_then(|v| v["time"].as_str().map(str::to_string))
            .unwrap_or_default();
        ensure!(t >= last, "lines out of order: {t} after {last}");
        last = t;
    }

    // Down again, past the bound: 40 lines, 30 fit, 10 are dropped and counted.
    collector.stop();
    send_requests(addr, 40)?;
    let dropped = wait_for("dropped lines counted", Duration::from_secs(10), || {
        let n = sidecar.stat_sum(&["wasmixer_access_log_network_dropped_lines_total", "buffer_full"])?;
        Ok((n >= 10).then_some(n))
    })?;
    ensure!(dropped == 10, "dropped {dropped}");
    wait_for("the buffered gauge at the bound", Duration::from_secs(5), || {
        Ok((sidecar.stat_sum(&["wasmixer_access_log_network_buffered_lines"])? == 30).then_some(()))
    })?;
    let _collector = Collector::start(port, Arc::clone(&state))?;
    state.wait_for_lines(43, Duration::from_secs(15))?;
    std::thread::sleep(Duration::from_millis(500));
    ensure!(state.lines().len() == 43, "{} lines", state.lines().len());
    let delivered = wait_for("delivered counter", Duration::from_secs(5), || {
        let n = sidecar.stat_sum(&["wasmixer_access_log_network_delivered_lines_total"])?;
        Ok((n >= 43).then_some(n))
    })?;
    ensure!(delivered == 43, "delivered counter {delivered}");
    wait_for("the buffered gauge back to 0", Duration::from_secs(5), || {
        Ok((sidecar.stat_sum(&["wasmixer_access_log_network_buffered_lines"])? == 0).then_some(()))
    })?;
    ensure!(state.requests().iter().all(|(_, _, b)| b.ends_with('\n')), "NDJSON bodies end with a newline");
    ensure!(nonempty_lines(&sidecar.output()).is_empty(), "filter_state is off, yet stdout has lines");
    Ok(())
}

/// `mixer.wasm` runs on the proxy-wasm SDK's dispatcher, which must learn every HTTP call's
/// token (it traps on an answer it did not expect): its access-log component's batches reach
/// the collector, and the answers neither stop the VM nor later requests.
#[test]
fn the_mixer_filter_delivers_lines_to_a_collector() -> Result<(), HarnessError> {
    let backend = ratings_backend()?;
    let (_collector, port, state) = Collector::on_free_port()?;
    let network = json!({"cluster": "log-collector", "path": "/ingest", "batch_lines": 2, "flush_interval_ms": 200});
    let sidecar = ratings_sidecar_with(
        "mixer",
        "al-mixer-network",
        &backend,
        seed_config(json!({"filter_state": false, "network": network}))?,
        json!([]),
        port,
    )?;
    let addr = sidecar.addr()?;
    send_requests(addr, 3)?;
    state.wait_for_lines(3, Duration::from_secs(10))?;
    // Answers to those batches came back through the SDK; the VM still serves and sends.
    send_requests(addr, 3)?;
    state.wait_for_lines(6, Duration::from_secs(10))?;
    for line in state.lines() {
        check_seed_line(&line, "unknown", "ratings")?;
    }
    Ok(())
}

/// OTLP/HTTP JSON logs: one record per line, the line as its body, level as severity.
#[test]
fn network_sink_otlp_json() -> Result<(), HarnessError> {
    let backend = ratings_backend()?;
    let (_collector, port, state) = Collector::on_free_port()?;
    let network = json!({"cluster": "log-collector", "path": "/v1/logs", "format": "otlp_json", "batch_lines": 2, "flush_interval_ms": 100,
                         "resource_attributes": {"k8s.namespace.name": "default"}});
    let sidecar = ratings_sidecar(
        "al-otlp",
        &backend,
        seed_config(json!({"network": network}))?,
        json!([filter_state_logger("stdout", STDOUT_KEY, None)]),
        port,
    )?;
    send_requests(sidecar.addr()?, 2)?;
    let reqs = wait_for("an OTLP request", Duration::from_secs(10), || {
        let r = state.requests();
        Ok((!r.is_empty()).then_some(r))
    })?;
    let (path, content_type, body) = &reqs[0];
    ensure!(path == "/v1/logs" && content_type == "application/json", "{path} {content_type}");
    let v: Json =
        serde_json::from_str(body).map_err(|e| HarnessError::check(format!("OTLP body is not JSON ({e}): {body}")))?;
    let rl = &v["resourceLogs"][0];
    ensure!(rl["resource"]["attributes"][0]["value"]["stringValue"] == "wasmixer-access-log", "{body}");
    ensure!(rl["resource"]["attributes"][1]["key"] == "k8s.namespace.name", "{body}");
    let records = rl["scopeLogs"][0]["logRecords"].as_array().cloned().unwrap_or_default();
    ensure!(records.len() == 2, "{body}");
    for r in &records {
        check_seed_line(r["body"]["stringValue"].as_str().unwrap_or_default(), "unknown", "ratings")?;
        ensure!(r["severityNumber"] == 13 && r["severityText"] == "WARN", "{r}");
        ensure!(r["timeUnixNano"].as_str().is_some_and(|t| t.len() == 19), "{r}");
        ensure!(r["attributes"][0]["value"]["stringValue"] == "newlog.instance.istio-system", "{r}");
        ensure!(r["attributes"][1]["value"]["stringValue"] == "newloghandler.istio-system", "{r}");
    }
    // The same lines also went to stdout (filter state stays on by default).
    let out = wait_for("stdout lines", Duration::from_secs(10), || {
        let l = nonempty_lines(&sidecar.output());
        Ok((l.len() >= 2).then_some(l))
    })?;
    ensure!(out.len() == 2, "{}", out.join("\n"));
    Ok(())
}

/// A collector cluster that does not exist and a collector that never answers: requests are
/// unaffected, the filter keeps working, nothing traps.
#[test]
fn network_sink_misconfigured_or_unresponsive() -> Result<(), HarnessError> {
    let backend = ratings_backend()?;
    // A listener that accepts but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").map_err(|e| HarnessError::io("binding", e))?;
    let silent_port = silent.local_addr().map_err(|e| HarnessError::io("addr", e))?.port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = Arc::clone(&held);
    std::thread::spawn(move || {
        for c in silent.incoming().flatten() {
            h.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        }
    });
    for (name, cluster) in [("al-nocluster", "no-such-cluster"), ("al-silent", "log-collector")] {
        let network = json!({"cluster": cluster, "batch_lines": 1, "flush_interval_ms": 50, "timeout_ms": 300, "initial_backoff_ms": 50, "max_backoff_ms": 100});
        let sidecar = ratings_sidecar(
            name,
            &backend,
            seed_config(json!({"network": network}))?,
            json!([filter_state_logger("stdout", STDOUT_KEY, None)]),
            silent_port,
        )?;
        send_requests(sidecar.addr()?, 5)?;
        wait_for("failed attempts", Duration::from_secs(10), || {
            Ok((sidecar.stat_sum(&["wasmixer_access_log_network_failed_attempts_total"])? >= 3).then_some(()))
        })?;
        send_requests(sidecar.addr()?, 2)?;
        let out = wait_for("stdout lines", Duration::from_secs(10), || {
            let l = nonempty_lines(&sidecar.output());
            Ok((l.len() >= 7).then_some(l))
        })?;
        ensure!(out.len() == 7, "{name}: {} stdout lines", out.len());
        let app = sidecar.app_log();
        ensure!(
            !app.contains("panic") && !app.contains("Wasm VM failed") && !app.contains("[critical]"),
            "{name}: filter failure:\n{app}"
        );
        if cluster == "no-such-cluster" {
            ensure!(app.contains("cannot send"), "{name}: the unknown cluster is not reported:\n{app}");
        }
    }
    Ok(())
}

/// The documented example bootstrap works as its comment says (ports swapped for free ones).
#[test]
fn example_bootstrap_prints_the_seed_line() -> Result<(), HarnessError> {
    let backend = ratings_backend()?;
    let mut yaml = read_workspace_file("envoy-config/access-log/sidecar-stdout.yaml")?;
    for (from, to) in [
        ("port_value: 9901", "port_value: 0".to_string()),
        ("port_value: 10000", "port_value: 0".to_string()),
        ("port_value: 8080", format!("port_value: {}", backend.port())),
    ] {
        ensure!(yaml.matches(from).count() == 1, "expected one {from:?} in the example");
        yaml = yaml.replacen(from, &to, 1);
    }
    let dist = wasm_path("access-log")?.parent().map(|d| d.display().to_string()).unwrap_or_default();
    yaml = yaml.replace("filename: dist/", &format!("filename: {dist}/"));
    let app_log = std::env::temp_dir().join(format!("wasmixer-it-al-example-{}-app.log", std::process::id()));
    let path = app_log.display().to_string();
    let envoy = EnvoyProcess::start_with_args(
        &yaml,
        "al-example",
        &["--log-path", &path, "--file-flush-interval-msec", "200"],
    )?;
    let sidecar = Sidecar { envoy, app_log };
    sidecar.wait_app_log("wasmixer-access-log", Duration::from_secs(10))?;
    let resp = Request::get("/ratings/0").send(sidecar.addr()?)?;
    ensure!(resp.status == 200, "status {}", resp.status);
    let lines = wait_for("the line on stdout", Duration::from_secs(10), || {
        let l = nonempty_lines(&sidecar.output());
        Ok((!l.is_empty()).then_some(l))
    })?;
    ensure!(lines.len() == 1, "{}", lines.join("\n"));
    check_seed_line(&lines[0], "unknown", "ratings")?;
    Ok(())
}
