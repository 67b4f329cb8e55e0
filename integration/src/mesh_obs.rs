//! The mesh's processes and observers: a child-process wrapper with a log file, Prometheus
//! (Debian's `/usr/bin/prometheus`, scraping every sidecar's `/stats/prometheus`) with a query
//! helper, and a Zipkin-compatible span receiver (`POST /api/v2/spans`, JSON v2).

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::{Backend, BackendResponse, HarnessError, Request};

/// A child process whose stdout and stderr go to a log file; killed when dropped.
pub struct Proc {
    name: String,
    child: Child,
    log_path: PathBuf,
}

impl Proc {
    /// Spawns `program args...` with output to `log_path`. When `setpriv` is available the child
    /// gets `--pdeathsig KILL`, so it dies with the thread that started it even if this process
    /// is killed without running destructors.
    pub fn spawn(name: &str, program: &Path, args: &[String], log_path: &Path) -> Result<Proc, HarnessError> {
        let log =
            File::create(log_path).map_err(|e| HarnessError::io(format!("creating {}", log_path.display()), e))?;
        let log_too = log.try_clone().map_err(|e| HarnessError::io("duplicating a log file handle", e))?;
        let setpriv = Path::new("/usr/bin/setpriv");
        let mut cmd = if setpriv.is_file() {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        let child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_too))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| HarnessError::io(format!("starting {} ({})", name, program.display()), e))?;
        Ok(Proc { name: name.to_string(), child, log_path: log_path.to_path_buf() })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// `Some(status text)` if the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// Kills the process and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let mut out = String::new();
    if start > 0 {
        out.push_str(&format!("[... {start} earlier lines ...]\n"));
    }
    for l in &lines[start..] {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Percent-encodes `s` for a query string.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Waits until `GET path` on `addr` answers 200, while `proc` runs.
pub fn wait_http_ok(proc: &mut Proc, addr: SocketAddr, path: &str, timeout: Duration) -> Result<(), HarnessError> {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        if let Some(status) = proc.exited() {
            return Err(HarnessError::check(format!(
                "{} exited during startup ({status}); its log:\n{}",
                proc.name(),
                tail(&proc.log(), 40)
            )));
        }
        match Request::get(path).timeout(Duration::from_secs(2)).send(addr) {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => last = format!("{path} answered {}", r.status),
            Err(e) => last = e.to_string(),
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout(format!(
                "{} not ready within {timeout:?} ({last}); its log:\n{}",
                proc.name(),
                tail(&proc.log(), 40)
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads `read` until two reads `interval` apart agree (at most 10 times) and returns the last
/// value: a counter baseline taken only once what was already counted has landed (the metrics
/// filter hands counters to Envoy on a 1 s tick; Prometheus scrapes every second).
pub fn settled<T: PartialEq, E>(interval: Duration, mut read: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let mut last = read()?;
    for _ in 0..10 {
        std::thread::sleep(interval);
        let now = read()?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(last)
}

/// A scrape target: an address serving `/stats/prometheus`, with target labels.
#[derive(Clone, Debug)]
pub struct ScrapeTarget {
    pub addr: SocketAddr,
    pub labels: BTreeMap<String, String>,
}

/// One sample of an instant query.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// The value of label `name` (`""` when absent).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// A Prometheus server started by the harness.
pub struct Prometheus {
    proc: Proc,
    addr: SocketAddr,
}

/// How often Prometheus scrapes the sidecars.
pub const SCRAPE_INTERVAL: &str = "1s";

/// Debian's binary, or `PROMETHEUS_BIN`.
pub fn prometheus_binary() -> Result<PathBuf, HarnessError> {
    if let Some(bin) = std::env::var_os("PROMETHEUS_BIN").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("prometheus")).find(|c| c.is_file()).ok_or_else(|| {
        HarnessError::check(
            "prometheus not found: set PROMETHEUS_BIN or run `bash .ci/install` (Debian package prometheus)",
        )
    })
}

/// The scrape configuration (JSON, which Prometheus reads as YAML).
pub fn prometheus_config(targets: &[ScrapeTarget]) -> String {
    let static_configs: Vec<Value> =
        targets.iter().map(|t| serde_json::json!({"targets": [t.addr.to_string()], "labels": t.labels})).collect();
    serde_json::json!({
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [{"job_name": "envoy-stats", "metrics_path": "/stats/prometheus", "static_configs": static_configs}]
    })
    .to_string()
}

impl Prometheus {
    /// Starts Prometheus in `dir` (config, temporary TSDB, log) on a free loopback port.
    pub fn start(dir: &Path, targets: &[ScrapeTarget]) -> Result<Prometheus, HarnessError> {
        let bin = prometheus_binary()?;
        std::fs::create_dir_all(dir.join("data"))
            .map_err(|e| HarnessError::io("creating the Prometheus data directory", e))?;
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, prometheus_config(targets))
            .map_err(|e| HarnessError::io("writing prometheus.yml", e))?;
        let port = crate::free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address={addr}"),
            "--web.enable-lifecycle".to_string(),
            "--storage.tsdb.retention.time=1d".to_string(),
            "--log.level=warn".to_string(),
        ];
        let mut proc = Proc::spawn("prometheus", &bin, &args, &dir.join("prometheus.log"))?;
        wait_http_ok(&mut proc, addr, "/-/ready", Duration::from_secs(30))?;
        Ok(Prometheus { proc, addr })
    }

    /// Starts Prometheus in a fresh temporary directory, scraping `addrs` (no target labels).
    pub fn scraping(addrs: &[SocketAddr]) -> Result<Prometheus, HarnessError> {
        static INSTANCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = INSTANCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("wasmixer-it-prometheus-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let targets: Vec<ScrapeTarget> =
            addrs.iter().map(|a| ScrapeTarget { addr: *a, labels: BTreeMap::new() }).collect();
        Prometheus::start(&dir, &targets)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The web UI.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// An instant query (`/api/v1/query`); the samples of a vector result.
    pub fn query(&self, promql: &str) -> Result<Vec<Sample>, HarnessError> {
        let r = Request::get(&format!("/api/v1/query?query={}", url_encode(promql))).send(self.addr)?;
        let v: Value = serde_json::from_slice(&r.body).map_err(|e| {
            HarnessError::Http(format!("Prometheus answered {} with non-JSON ({e}): {}", r.status, r.body_text()))
        })?;
        if v["status"].as_str() != Some("success") {
            return Err(HarnessError::Http(format!("Prometheus query {promql:?} failed: {}", r.body_text())));
        }
        let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
        Ok(result
            .iter()
            .map(|s| Sample {
                labels: s["metric"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
                    .unwrap_or_default(),
                value: s["value"][1].as_str().and_then(|x| x.parse().ok()).unwrap_or(f64::NAN),
            })
            .collect())
    }

    /// Polls `promql` until `done` accepts the samples; returns them.
    pub fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
        done: impl Fn(&[Sample]) -> bool,
    ) -> Result<Vec<Sample>, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let samples = self.query(promql)?;
            if done(&samples) {
                return Ok(samples);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout(format!(
                    "Prometheus query {promql:?} after {timeout:?}: {samples:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Polls `promql` until it gives exactly one sample, equal to `want`; returns that sample.
    pub fn wait_for_value(&self, promql: &str, want: f64, timeout: Duration) -> Result<Sample, HarnessError> {
        let samples = self.wait_for(promql, timeout, |s| matches!(s, [one] if one.value == want))?;
        samples.into_iter().next().ok_or_else(|| HarnessError::check(format!("{promql:?} gave no sample")))
    }

    /// Whether every scrape target is up (`up == 1`).
    pub fn targets_up(&self) -> Result<(usize, usize), HarnessError> {
        let up = self.query("up")?;
        Ok((up.iter().filter(|s| s.value == 1.0).count(), up.len()))
    }
}

/// A span as Envoy's Zipkin tracer sends it (JSON v2).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Span {
    pub trace_id: String,
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub kind: Option<String>,
    pub timestamp: u64,
    pub duration: u64,
    pub local_endpoint: Endpoint,
    pub tags: BTreeMap<String, String>,
    pub shared: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Endpoint {
    pub service_name: String,
    pub ipv4: String,
    pub port: u16,
}

/// A Zipkin-compatible receiver: accepts `POST /api/v2/spans` (JSON v2) and keeps the spans.
pub struct ZipkinReceiver {
    backend: Backend,
}

impl ZipkinReceiver {
    pub fn start() -> Result<ZipkinReceiver, HarnessError> {
        let backend = Backend::start(|r| {
            if r.method == "POST" && r.path.starts_with("/api/v2/spans") {
                BackendResponse::new(202)
            } else {
                BackendResponse::new(404)
            }
        })?;
        Ok(ZipkinReceiver { backend })
    }

    pub fn addr(&self) -> SocketAddr {
        self.backend.addr()
    }

    /// Every span received so far (undecodable batches are skipped).
    pub fn spans(&self) -> Vec<Span> {
        self.backend
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .filter_map(|r| serde_json::from_slice::<Vec<Span>>(&r.body).ok())
            .flatten()
            .collect()
    }

    /// The spans of trace `trace_id`, ordered by start time.
    pub fn trace(&self, trace_id: &str) -> Vec<Span> {
        let mut spans: Vec<Span> = self.spans().into_iter().filter(|s| s.trace_id == trace_id).collect();
        spans.sort_by_key(|s| s.timestamp);
        spans
    }

    /// Waits until the trace `trace_id` has at least `n` spans; returns them.
    pub fn wait_for_trace(&self, trace_id: &str, n: usize, timeout: Duration) -> Result<Vec<Span>, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.trace(trace_id);
            if spans.len() >= n {
                // A late batch may still be in flight: give it a moment.
                std::thread::sleep(Duration::from_millis(300));
                return Ok(self.trace(trace_id));
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout(format!(
                    "trace {trace_id}: {} of {n} spans within {timeout:?}: {spans:#?}",
                    spans.len()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Distinct trace ids seen, in order of first arrival.
    pub fn trace_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for s in self.spans() {
            if !ids.contains(&s.trace_id) {
                ids.push(s.trace_id);
            }
        }
        ids
    }
}

/// A one-line rendering of a trace as a tree (`service name` per span, indented by depth).
pub fn render_trace(spans: &[Span]) -> String {
    fn walk(spans: &[Span], parent: Option<&str>, depth: usize, out: &mut String) {
        for s in spans.iter().filter(|s| s.parent_id.as_deref() == parent) {
            out.push_str(&format!(
                "{}{} [{}] {} ({} us){}\n",
                "  ".repeat(depth),
                s.local_endpoint.service_name,
                s.kind.as_deref().unwrap_or("?"),
                s.name,
                s.duration,
                s.tags.get("http.status_code").map(|c| format!(" -> {c}")).unwrap_or_default()
            ));
            walk(spans, Some(&s.id), depth + 1, out);
        }
    }
    let mut out = String::new();
    let ids: Vec<&str> = spans.iter().map(|s| s.id.as_str()).collect();
    // Roots: no parent, or a parent not in this set.
    for root in spans.iter().filter(|s| s.parent_id.as_deref().is_none_or(|p| !ids.contains(&p))) {
        out.push_str(&format!(
            "{} [{}] {} ({} us){}\n",
            root.local_endpoint.service_name,
            root.kind.as_deref().unwrap_or("?"),
            root.name,
            root.duration,
            root.tags.get("http.status_code").map(|c| format!(" -> {c}")).unwrap_or_default()
        ));
        walk(spans, Some(&root.id), 1, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_queries() {
        assert_eq!(url_encode("sum(x{a=\"b c\"})"), "sum%28x%7Ba%3D%22b%20c%22%7D%29");
    }

    #[test]
    fn config_is_json() -> Result<(), String> {
        let t = ScrapeTarget {
            addr: SocketAddr::from(([127, 0, 0, 2], 15000)),
            labels: BTreeMap::from([("pod".to_string(), "a".to_string())]),
        };
        let v: Value = serde_json::from_str(&prometheus_config(&[t])).map_err(|e| e.to_string())?;
        assert_eq!(v["scrape_configs"][0]["static_configs"][0]["targets"][0], "127.0.0.2:15000");
        Ok(())
    }
}
