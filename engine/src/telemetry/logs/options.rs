//! The access-log filter's own options (the `access_log` section of the filter configuration)
//! and where each stdio handler's lines go:
//!
//! * **filter state** `wasm.<key>`, read by Envoy's own access loggers (stdout, stderr, file),
//!   one key per destination: `log_stream` STDOUT and STDERR each have a key, FILE and
//!   ROTATED_FILE have one key per `output_path`;
//! * a **network** collector, reached over HTTP from the filter's root context (see
//!   [`super::batch`]).
//!
//! ```json
//! "access_log": {
//!   "filter_state": true,
//!   "keys": {"stdout": "wasmixer_log_stdout", "stderr": "wasmixer_log_stderr",
//!            "file": "wasmixer_log_file", "files": {"/var/log/a.log": "log_a"}},
//!   "network": {"cluster": "log-collector", "path": "/ingest", "format": "ndjson"},
//!   "allow_unverified_peer": false
//! }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;

use super::handler::LogStream;
use super::plan::LogPlan;
use crate::config::{ConfigError, ConfigErrors, FilterConfig};

/// Default filter-state key (without Envoy's `wasm.` prefix) of STDOUT handlers.
pub const DEFAULT_STDOUT_KEY: &str = "wasmixer_log_stdout";
/// Default filter-state key of STDERR handlers.
pub const DEFAULT_STDERR_KEY: &str = "wasmixer_log_stderr";
/// Default filter-state key of FILE / ROTATED_FILE handlers (one output path).
pub const DEFAULT_FILE_KEY: &str = "wasmixer_log_file";

fn yes() -> bool {
    true
}

/// The `access_log` section.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessLogOptions {
    /// Publish each request's lines in filter state for Envoy's access loggers (default true).
    #[serde(default = "yes")]
    pub filter_state: bool,
    /// Filter-state keys per destination.
    #[serde(default)]
    pub keys: FilterStateKeys,
    /// Batched delivery to a collector over HTTP.
    #[serde(default)]
    pub network: Option<NetworkOptions>,
    /// Fill `source.*` (inbound) / `destination.*` (outbound) from a peer's metadata claim even
    /// when mTLS did not verify it (telemetry only; default false: verified peers only).
    #[serde(default)]
    pub allow_unverified_peer: bool,
}

impl Default for AccessLogOptions {
    fn default() -> AccessLogOptions {
        AccessLogOptions {
            filter_state: true,
            keys: FilterStateKeys::default(),
            network: None,
            allow_unverified_peer: false,
        }
    }
}

fn stdout_key() -> String {
    DEFAULT_STDOUT_KEY.to_string()
}
fn stderr_key() -> String {
    DEFAULT_STDERR_KEY.to_string()
}
fn file_key() -> String {
    DEFAULT_FILE_KEY.to_string()
}

/// Filter-state keys, without Envoy's `wasm.` prefix.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterStateKeys {
    #[serde(default = "stdout_key")]
    pub stdout: String,
    #[serde(default = "stderr_key")]
    pub stderr: String,
    /// Key of every file handler whose path has no entry in `files`.
    #[serde(default = "file_key")]
    pub file: String,
    /// Key per `output_path`, needed when handlers write to several files.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

impl Default for FilterStateKeys {
    fn default() -> FilterStateKeys {
        FilterStateKeys { stdout: stdout_key(), stderr: stderr_key(), file: file_key(), files: BTreeMap::new() }
    }
}

/// Body format of the network sink.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum NetworkFormat {
    /// Newline-delimited lines, exactly as stdio wrote them (`application/x-ndjson`).
    #[default]
    #[serde(rename = "ndjson")]
    Ndjson,
    /// OTLP/HTTP JSON logs (`ExportLogsServiceRequest`, `application/json`): one log record
    /// per line, the line as its string body.
    #[serde(rename = "otlp_json")]
    OtlpJson,
}

fn default_path() -> String {
    "/".to_string()
}
fn d_batch_lines() -> usize {
    100
}
fn d_batch_bytes() -> usize {
    1 << 20
}
fn d_flush_interval_ms() -> u64 {
    1_000
}
fn d_max_buffered_lines() -> usize {
    10_000
}
fn d_max_buffered_bytes() -> usize {
    8 << 20
}
fn d_timeout_ms() -> u32 {
    5_000
}
fn d_initial_backoff_ms() -> u64 {
    250
}
fn d_max_backoff_ms() -> u64 {
    30_000
}

/// The network sink. Buffers are per Envoy worker thread (each has its own VM).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkOptions {
    /// The Envoy cluster of the collector (must exist in the bootstrap).
    pub cluster: String,
    /// `:authority` of the requests (default: the cluster name).
    #[serde(default)]
    pub authority: Option<String>,
    /// Request path, e.g. `/v1/logs` for an OTLP/HTTP receiver (default `/`).
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default)]
    pub format: NetworkFormat,
    /// Handlers whose lines are sent (bare name, `name.namespace` or `name.kind.namespace`);
    /// default: every stdio handler.
    #[serde(default)]
    pub handlers: Option<Vec<String>>,
    /// Extra request headers (e.g. an authorization token).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// OTLP resource attributes (default `service.name` = `wasmixer-access-log`).
    #[serde(default)]
    pub resource_attributes: BTreeMap<String, String>,
    /// A batch is sent once it holds this many lines...
    #[serde(default = "d_batch_lines")]
    pub batch_lines: usize,
    /// ...or this many bytes...
    #[serde(default = "d_batch_bytes")]
    pub batch_bytes: usize,
    /// ...or its first line is this old.
    #[serde(default = "d_flush_interval_ms")]
    pub flush_interval_ms: u64,
    /// Lines waiting (including the batch in flight); beyond, new lines are dropped and counted.
    #[serde(default = "d_max_buffered_lines")]
    pub max_buffered_lines: usize,
    /// Bytes waiting; beyond, new lines are dropped and counted.
    #[serde(default = "d_max_buffered_bytes")]
    pub max_buffered_bytes: usize,
    /// Per request to the collector.
    #[serde(default = "d_timeout_ms")]
    pub timeout_ms: u32,
    /// Backoff after a failed attempt, doubling per consecutive failure up to `max_backoff_ms`.
    #[serde(default = "d_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    #[serde(default = "d_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Attempts per batch before it is dropped (and counted); 0 = retry until delivered (the
    /// buffer bound then decides what is lost).
    #[serde(default)]
    pub max_attempts: u32,
}

impl NetworkOptions {
    fn validate(&self, errors: &mut Vec<ConfigError>) {
        let mut bad =
            |field: &str, msg: String| errors.push(ConfigError::new("access_log", format!("network.{field}"), msg));
        if self.cluster.trim().is_empty() {
            bad("cluster", "the collector's Envoy cluster must be named".to_string());
        }
        if !self.path.starts_with('/') {
            bad("path", format!("must start with '/', got {:?}", self.path));
        }
        if self.batch_lines == 0 {
            bad("batch_lines", "must be at least 1".to_string());
        }
        if self.batch_bytes == 0 {
            bad("batch_bytes", "must be at least 1".to_string());
        }
        if self.flush_interval_ms == 0 {
            bad("flush_interval_ms", "must be at least 1".to_string());
        }
        if self.max_buffered_lines == 0 || self.max_buffered_bytes == 0 {
            bad("max_buffered_lines", "the buffer bounds must be at least 1".to_string());
        }
        if self.timeout_ms == 0 {
            bad("timeout_ms", "must be at least 1".to_string());
        }
        if self.initial_backoff_ms == 0 || self.initial_backoff_ms > self.max_backoff_ms {
            bad("initial_backoff_ms", format!("must be between 1 and max_backoff_ms ({})", self.max_backoff_ms));
        }
        for name in self.headers.keys() {
            if name.starts_with(':') || name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase() || b <= b' ') {
                bad("headers", format!("{name:?} is not a lowercase regular header name"));
            }
        }
    }
}

impl AccessLogOptions {
    /// Reads the `access_log` section of `config` (absent or null: the defaults).
    pub fn from_config(config: &FilterConfig) -> Result<AccessLogOptions, ConfigErrors> {
        let options: AccessLogOptions = match &config.access_log {
            Json::Null => AccessLogOptions::default(),
            v => serde_json::from_value(v.clone())
                .map_err(|e| ConfigErrors(vec![ConfigError::new("access_log", "(section)", e.to_string())]))?,
        };
        let mut errors = Vec::new();
        for (field, key) in [
            ("keys.stdout", &options.keys.stdout),
            ("keys.stderr", &options.keys.stderr),
            ("keys.file", &options.keys.file),
        ]
        .into_iter()
        .chain(options.keys.files.values().map(|k| ("keys.files", k)))
        {
            if let Err(e) = check_key(key) {
                errors.push(ConfigError::new("access_log", field, e));
            }
        }
        if let Some(n) = &options.network {
            n.validate(&mut errors);
        }
        if errors.is_empty() {
            Ok(options)
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// A filter-state key: Envoy stores it as `wasm.<key>`; keep it to a safe alphabet so the
/// `%FILTER_STATE(wasm.<key>:PLAIN)%` operator and the CEL filter quote it trivially.
fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty()
        || key.len() > 128
        || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(format!("filter-state key {key:?} must be 1 to 128 characters of [A-Za-z0-9_.-]"));
    }
    Ok(())
}

/// One Envoy access logger the bootstrap needs: it prints filter state `wasm.<key>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvoyLogger {
    /// Without the `wasm.` prefix.
    pub key: String,
    pub stream: LogStream,
    /// For FILE and ROTATED_FILE.
    pub path: Option<String>,
}

/// Where every handler's lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRouting {
    /// One entry per distinct filter-state destination.
    pub loggers: Vec<EnvoyLogger>,
    /// Per handler of the plan: index into `loggers` (`None`: not published in filter state).
    pub handler_logger: Vec<Option<usize>>,
    /// Per handler of the plan: whether its lines go to the network sink.
    pub handler_network: Vec<bool>,
}

impl LogRouting {
    /// Routes the plan's handlers; errors for network handler names that name no stdio handler
    /// and for several output paths that would share one filter-state key.
    pub fn new(plan: &LogPlan, options: &AccessLogOptions) -> Result<LogRouting, ConfigErrors> {
        let mut errors = Vec::new();
        let mut loggers: Vec<EnvoyLogger> = Vec::new();
        let mut handler_logger = Vec::with_capacity(plan.handlers.len());
        for h in &plan.handlers {
            if !options.filter_state {
                handler_logger.push(None);
                continue;
            }
            let key = match h.stream {
                LogStream::Stdout => options.keys.stdout.clone(),
                LogStream::Stderr => options.keys.stderr.clone(),
                LogStream::File | LogStream::RotatedFile => {
                    let path = h.output_path.as_deref().unwrap_or("");
                    options.keys.files.get(path).cloned().unwrap_or_else(|| options.keys.file.clone())
                }
            };
            let path = if h.stream.is_file() { h.output_path.clone() } else { None };
            let found = loggers.iter().position(|l| l.key == key);
            match found {
                Some(i) => {
                    let existing = loggers.get(i).cloned();
                    let same = existing.as_ref().is_some_and(|l| same_destination(l.stream, &l.path, h.stream, &path));
                    if !same {
                        let other = existing.map(|l| describe(l.stream, l.path.as_deref())).unwrap_or_default();
                        errors.push(ConfigError::new(
                            h.label.clone(),
                            "params.output_path",
                            format!(
                                "{} and {other} would share filter-state key {key:?}: give each output path its own key in access_log.keys.files",
                                describe(h.stream, path.as_deref())
                            ),
                        ));
                    }
                    handler_logger.push(Some(i));
                }
                None => {
                    handler_logger.push(Some(loggers.len()));
                    loggers.push(EnvoyLogger { key, stream: h.stream, path });
                }
            }
        }
        let mut handler_network = vec![false; plan.handlers.len()];
        if let Some(n) = &options.network {
            match &n.handlers {
                None => handler_network.iter_mut().for_each(|b| *b = true),
                Some(names) => {
                    for name in names {
                        let mut any = false;
                        for (i, h) in plan.handlers.iter().enumerate() {
                            if h.is_named(name) {
                                any = true;
                                if let Some(b) = handler_network.get_mut(i) {
                                    *b = true;
                                }
                            }
                        }
                        if !any {
                            errors.push(ConfigError::new(
                                "access_log",
                                "network.handlers",
                                format!("{name} names no stdio handler of the configuration"),
                            ));
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(LogRouting { loggers, handler_logger, handler_network })
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

fn same_destination(a: LogStream, ap: &Option<String>, b: LogStream, bp: &Option<String>) -> bool {
    match (a.is_file(), b.is_file()) {
        (true, true) => ap == bp,
        (false, false) => a == b,
        _ => false,
    }
}

fn describe(stream: LogStream, path: Option<&str>) -> String {
    match path {
        Some(p) => format!("{} {p}", stream.name()),
        None => stream.name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::expr::Manifest;

    fn config(handlers: &str, access_log: &str) -> FilterConfig {
        let mut resources = String::from(
            r#"{"kind": "instance", "metadata": {"name": "i", "namespace": "istio-system"}, "spec": {"compiledTemplate": "logentry", "params": {}}}"#,
        );
        let mut actions = Vec::new();
        for (n, params) in handlers.split('|').enumerate() {
            resources.push_str(&format!(r#", {{"kind": "handler", "metadata": {{"name": "h{n}", "namespace": "istio-system"}}, "spec": {{"compiledAdapter": "stdio", "params": {params}}}}}"#));
            actions.push(format!(r#"{{"handler": "h{n}", "instances": ["i"]}}"#));
        }
        resources.push_str(&format!(r#", {{"kind": "rule", "metadata": {{"name": "r", "namespace": "istio-system"}}, "spec": {{"actions": [{}]}}}}"#, actions.join(",")));
        FilterConfig::parse(format!(r#"{{"resources": [{resources}], "access_log": {access_log}}}"#).as_bytes())
            .unwrap()
    }

    fn route(handlers: &str, access_log: &str) -> Result<LogRouting, String> {
        let c = config(handlers, access_log);
        let plan = LogPlan::compile(&c, Manifest::istio()).map_err(|e| e.to_string())?;
        let options = AccessLogOptions::from_config(&c).map_err(|e| e.to_string())?;
        LogRouting::new(&plan, &options).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = FilterConfig::parse(b"{}").unwrap();
        let o = AccessLogOptions::from_config(&c).unwrap();
        assert_eq!(o, AccessLogOptions::default());
        assert!(o.filter_state && o.network.is_none() && !o.allow_unverified_peer);
        let r = route("{}", "null").unwrap();
        assert_eq!(
            r.loggers,
            [EnvoyLogger { key: "wasmixer_log_stdout".into(), stream: LogStream::Stdout, path: None }]
        );
        assert_eq!(r.handler_logger, [Some(0)]);
        assert_eq!(r.handler_network, [false]);
    }

    #[test]
    fn streams_share_keys_files_need_their_own() {
        let r = route(r#"{}|{"log_stream": "STDERR"}|{"log_stream": 0}|{"log_stream": "FILE", "output_path": "/a"}|{"log_stream": "ROTATED_FILE", "output_path": "/a"}"#, "{}").unwrap();
        assert_eq!(r.handler_logger, [Some(0), Some(1), Some(0), Some(2), Some(2)]);
        assert_eq!(
            r.loggers[2],
            EnvoyLogger { key: "wasmixer_log_file".into(), stream: LogStream::File, path: Some("/a".into()) }
        );
        let e =
            route(r#"{"log_stream": "FILE", "output_path": "/a"}|{"log_stream": "FILE", "output_path": "/b"}"#, "{}")
                .unwrap_err();
        assert_eq!(e, "h1.handler.istio-system: field params.output_path: FILE /b and FILE /a would share filter-state key \"wasmixer_log_file\": give each output path its own key in access_log.keys.files");
        let r = route(
            r#"{"log_stream": "FILE", "output_path": "/a"}|{"log_stream": "FILE", "output_path": "/b"}"#,
            r#"{"keys": {"files": {"/b": "log_b"}}}"#,
        )
        .unwrap();
        assert_eq!(r.loggers.iter().map(|l| l.key.as_str()).collect::<Vec<_>>(), ["wasmixer_log_file", "log_b"]);
        // A custom stdout key colliding with the file key is caught too.
        assert!(route(
            r#"{}|{"log_stream": "FILE", "output_path": "/a"}"#,
            r#"{"keys": {"stdout": "x", "file": "x"}}"#
        )
        .is_err());
    }

    #[test]
    fn network_handlers_and_filter_state_switch() {
        let net = r#"{"cluster": "collector"}"#;
        let r = route("{}|{}", &format!(r#"{{"network": {net}, "filter_state": false}}"#)).unwrap();
        assert_eq!((r.handler_logger, r.handler_network), (vec![None, None], vec![true, true]));
        let r = route("{}|{}", r#"{"network": {"cluster": "c", "handlers": ["h1.istio-system"]}}"#).unwrap();
        assert_eq!(r.handler_network, [false, true]);
        let e = route("{}", r#"{"network": {"cluster": "c", "handlers": ["nope"]}}"#).unwrap_err();
        assert_eq!(e, "access_log: field network.handlers: nope names no stdio handler of the configuration");
    }

    #[test]
    fn option_errors() {
        let e = route("{}", r#"{"netwrk": {}}"#).unwrap_err();
        assert!(e.starts_with("access_log: field (section): unknown field `netwrk`"), "{e}");
        let e = route("{}", r#"{"keys": {"stdout": "has space"}}"#).unwrap_err();
        assert!(e.contains("field keys.stdout: filter-state key \"has space\""), "{e}");
        let e = route("{}", r#"{"network": {"cluster": "", "path": "x", "batch_lines": 0, "initial_backoff_ms": 10, "max_backoff_ms": 5, "headers": {":path": "/"}}}"#).unwrap_err();
        for f in
            ["network.cluster", "network.path", "network.batch_lines", "network.initial_backoff_ms", "network.headers"]
        {
            assert!(e.contains(&format!("field {f}:")), "{f}: {e}");
        }
        let e = route("{}", r#"{"network": {"cluster": "c", "format": "xml"}}"#).unwrap_err();
        assert!(e.contains("unknown variant `xml`"), "{e}");
        let o: NetworkOptions = serde_json::from_str(r#"{"cluster": "c", "format": "otlp_json"}"#).unwrap();
        assert_eq!(
            (o.format, o.batch_lines, o.flush_interval_ms, o.max_attempts, o.path.as_str()),
            (NetworkFormat::OtlpJson, 100, 1000, 0, "/")
        );
    }
}
