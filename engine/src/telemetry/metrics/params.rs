//! The metrics filter's configuration pieces: Mixer's prometheus handler parameters
//! (`adapter.prometheus.config.Params`), the filter's own `metrics` options, and the mapping of
//! Mixer's floating-point metric values onto Envoy's unsigned-integer stats.
//!
//! # Units on Envoy
//!
//! Envoy counters, gauges and histograms hold unsigned 64-bit integers, while Mixer's
//! prometheus adapter recorded `float64`s, durations in **seconds**. Every metric therefore has a
//! *scale*: the Envoy value is `round(mixer_value * scale)` and histogram bucket bounds are
//! `bound * scale`.
//!
//! * A metric whose value expression is of type DURATION is recorded in **milliseconds**
//!   (scale 1000) by default, and its name says so: a trailing `_seconds` becomes
//!   `_milliseconds` (`istio_request_duration_seconds` becomes
//!   `istio_request_duration_milliseconds`, the name Istio's telemetry v2 and its dashboards use),
//!   `_seconds_total` becomes `_milliseconds_total`, and any other name gets `_milliseconds`
//!   appended (before a trailing `_total`). Mixer's default buckets (0.005 s to 10 s) become
//!   5 ms to 10000 ms.
//! * Any other metric is recorded at scale 1 under Mixer's name.
//! * `metrics.scaling.<mixer metric name>` overrides both: `{"scale": 1000000}` records a duration
//!   in microseconds (named `..._microseconds`), `{"scale": 100, "name": "x_percent"}` records a
//!   ratio as percent. A scale other than 1 on a non-duration metric needs an explicit `name`,
//!   so that the unit is always visible in the metric name.
//!
//! Histogram bucket bounds must be whole numbers once scaled (values are integers: a bound of 2.5
//! would count exactly what a bound of 2 counts), and not negative.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;

use super::prometheus::{metric_name, Buckets};
use crate::config::ConfigError;
use crate::expr::ValueType;
use crate::gostd::duration::parse_duration;

/// Default per-metric cap on distinct label tuples (series) before new tuples go to the
/// overflow series.
pub const DEFAULT_MAX_SERIES_PER_METRIC: usize = 10_000;

/// Most labels a metric may have (Istio's richest standard metric has 25).
pub const MAX_LABELS: usize = 64;

/// Mixer's `MetricInfo.Kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Gauge,
    Counter,
    Distribution,
}

impl MetricKind {
    /// Mixer's name: `GAUGE`, `COUNTER`, `DISTRIBUTION`.
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Gauge => "GAUGE",
            MetricKind::Counter => "COUNTER",
            MetricKind::Distribution => "DISTRIBUTION",
        }
    }

    /// The Envoy stat type it becomes: `gauge`, `counter`, `histogram`.
    pub fn envoy_type(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
            MetricKind::Distribution => "histogram",
        }
    }

    /// Parses `kind` as jsonpb did: the enum name or its number. `UNSPECIFIED`, 0, a missing kind
    /// and anything else are Mixer's `unknown metric kind`.
    pub fn parse(v: Option<&Json>) -> Result<MetricKind, String> {
        match v {
            Some(Json::String(s)) if s == "GAUGE" => Ok(MetricKind::Gauge),
            Some(Json::String(s)) if s == "COUNTER" => Ok(MetricKind::Counter),
            Some(Json::String(s)) if s == "DISTRIBUTION" => Ok(MetricKind::Distribution),
            Some(Json::Number(n)) if n.as_u64() == Some(1) => Ok(MetricKind::Gauge),
            Some(Json::Number(n)) if n.as_u64() == Some(2) => Ok(MetricKind::Counter),
            Some(Json::Number(n)) if n.as_u64() == Some(3) => Ok(MetricKind::Distribution),
            None | Some(Json::Null) => Err(String::from(
                "unknown metric kind: kind is missing (UNSPECIFIED); use COUNTER, GAUGE or DISTRIBUTION",
            )),
            Some(other) => Err(format!(
                "unknown metric kind: {}; use COUNTER, GAUGE or DISTRIBUTION",
                crate::config::json_text(other)
            )),
        }
    }
}

/// One entry of a prometheus handler's `metrics`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricInfo {
    /// `namespace` as written (`None` or empty means `istio`).
    pub namespace: Option<String>,
    /// `name` as written, or the instance name when `name` is empty (Mixer's default).
    pub name: String,
    /// `instance_name`: the FQN of the metric instance, `name.instance.namespace`.
    pub instance_name: String,
    /// `description`, defaulting to the unsanitised name.
    pub description: String,
    pub kind: MetricKind,
    /// `label_names` as written.
    pub label_names: Vec<String>,
    /// `buckets` (distributions only; `None` means Prometheus' `DefBuckets`).
    pub buckets: Option<Buckets>,
}

impl MetricInfo {
    /// Mixer's full metric name `<safe(namespace)>_<safe(name)>`.
    pub fn mixer_name(&self) -> String {
        metric_name(self.namespace.as_deref(), &self.name)
    }
}

/// `metrics_expiration_policy`, validated as Mixer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpirationPolicy {
    pub expiry_ns: i64,
    pub check_interval_ns: i64,
}

/// A prometheus handler's parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrometheusParams {
    pub metrics: Vec<MetricInfo>,
    pub expiration: Option<ExpirationPolicy>,
}

/// The first of `names` present in `obj` (Mixer's YAML accepted snake_case and lowerCamelCase).
pub fn field<'j>(obj: &'j Json, names: &[&str]) -> Option<&'j Json> {
    names.iter().find_map(|n| obj.get(*n)).filter(|v| !v.is_null())
}

fn string_field(obj: &Json, names: &[&str], at: &str, errors: &mut Vec<(String, String)>) -> Option<String> {
    match field(obj, names) {
        None => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => {
            errors.push((
                format!("{at}.{}", names.first().copied().unwrap_or("")),
                format!("must be a string, got {}", crate::config::json_text(other)),
            ));
            None
        }
    }
}

fn number(v: Option<&Json>, what: &str) -> Result<f64, String> {
    match v {
        None => Ok(0.0),
        Some(v @ Json::Number(n)) => {
            n.as_f64().ok_or_else(|| format!("{what}: not a number: {}", crate::config::json_text(v)))
        }
        Some(Json::String(s)) => s.trim().parse::<f64>().map_err(|_| format!("{what}: not a number: {s:?}")),
        Some(other) => Err(format!("{what}: not a number: {}", crate::config::json_text(other))),
    }
}

fn int32(v: Option<&Json>, what: &str) -> Result<i32, String> {
    let n = number(v, what)?;
    if n.fract() != 0.0 || n < f64::from(i32::MIN) || n > f64::from(i32::MAX) {
        return Err(format!("{what}: not a 32-bit integer: {n}"));
    }
    // In range and integral: the cast is exact.
    Ok(n as i32)
}

/// Parses a `buckets` definition (`BucketsDefinition`, a oneof).
pub fn parse_buckets(v: &Json) -> Result<Option<Buckets>, String> {
    let Json::Object(map) = v else {
        return Err(format!("buckets must be an object, got {}", crate::config::json_text(v)));
    };
    let explicit = field(v, &["explicit_buckets", "explicitBuckets"]);
    let linear = field(v, &["linear_buckets", "linearBuckets"]);
    let exponential = field(v, &["exponential_buckets", "exponentialBuckets"]);
    let known = [
        "explicit_buckets",
        "explicitBuckets",
        "linear_buckets",
        "linearBuckets",
        "exponential_buckets",
        "exponentialBuckets",
    ];
    if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "unknown buckets definition {unknown:?} (use explicit_buckets, linear_buckets or exponential_buckets)"
        ));
    }
    match (explicit, linear, exponential) {
        (None, None, None) => Ok(None),
        (Some(e), None, None) => {
            let bounds = match field(e, &["bounds"]) {
                None => Vec::new(),
                Some(Json::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, b)| number(Some(b), &format!("explicit_buckets.bounds[{i}]")))
                    .collect::<Result<_, _>>()?,
                Some(other) => {
                    return Err(format!(
                        "explicit_buckets.bounds must be a list of numbers, got {}",
                        crate::config::json_text(other)
                    ))
                }
            };
            Ok(Some(Buckets::Explicit { bounds }))
        }
        (None, Some(l), None) => Ok(Some(Buckets::Linear {
            num_finite_buckets: int32(
                field(l, &["num_finite_buckets", "numFiniteBuckets"]),
                "linear_buckets.num_finite_buckets",
            )?,
            width: number(field(l, &["width"]), "linear_buckets.width")?,
            offset: number(field(l, &["offset"]), "linear_buckets.offset")?,
        })),
        (None, None, Some(x)) => Ok(Some(Buckets::Exponential {
            num_finite_buckets: int32(
                field(x, &["num_finite_buckets", "numFiniteBuckets"]),
                "exponential_buckets.num_finite_buckets",
            )?,
            growth_factor: number(field(x, &["growth_factor", "growthFactor"]), "exponential_buckets.growth_factor")?,
            scale: number(field(x, &["scale"]), "exponential_buckets.scale")?,
        })),
        _ => Err(String::from("buckets may hold only one of explicit_buckets, linear_buckets and exponential_buckets")),
    }
}

/// A protobuf `Duration` as Mixer's YAML carried it: Go text (`10m`, `600s`) or
/// `{seconds, nanos}`. Returns nanoseconds.
pub fn parse_proto_duration(v: &Json) -> Result<i64, String> {
    match v {
        Json::String(s) => parse_duration(s.trim()),
        Json::Object(_) => {
            let secs = number(v.get("seconds"), "seconds")?;
            let nanos = number(v.get("nanos"), "nanos")?;
            let total = secs * 1e9 + nanos;
            if !total.is_finite() || total.abs() > 9.2e18 {
                return Err(format!("duration out of range: {v}"));
            }
            Ok(total as i64)
        }
        other => Err(format!(
            "a duration is text such as \"10m\" or {{seconds, nanos}}, got {}",
            crate::config::json_text(other)
        )),
    }
}

/// Parses a prometheus handler's `params`. Errors are (field, message) pairs.
#[inline(never)] // configure-time code: see WASM_OPT_FLAGS in the Makefile
pub fn parse_prometheus_params(params: &Json) -> Result<PrometheusParams, Vec<(String, String)>> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut out = PrometheusParams::default();
    if !(params.is_object() || params.is_null()) {
        return Err(vec![(
            String::from("params"),
            format!("must be an object, got {}", crate::config::json_text(params)),
        )]);
    }
    let raw_metrics = match field(params, &["metrics"]) {
        None => &[][..],
        Some(Json::Array(items)) => items.as_slice(),
        Some(other) => {
            errors.push((
                String::from("params.metrics"),
                format!("must be a list, got {}", crate::config::json_text(other)),
            ));
            &[][..]
        }
    };
    for (i, m) in raw_metrics.iter().enumerate() {
        let at = format!("params.metrics[{i}]");
        if !m.is_object() {
            errors.push((at, format!("must be an object, got {}", crate::config::json_text(m))));
            continue;
        }
        let before = errors.len();
        let instance_name = string_field(m, &["instance_name", "instanceName"], &at, &mut errors).unwrap_or_default();
        let name = string_field(m, &["name"], &at, &mut errors)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| instance_name.clone());
        let namespace = string_field(m, &["namespace"], &at, &mut errors);
        let description = string_field(m, &["description"], &at, &mut errors)
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| name.clone());
        let kind = MetricKind::parse(field(m, &["kind"])).map_err(|e| errors.push((format!("{at}.kind"), e))).ok();
        let label_names = match field(m, &["label_names", "labelNames"]) {
            None => Vec::new(),
            Some(Json::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(j, l)| match l.as_str() {
                    Some(s) => Some(s.to_string()),
                    None => {
                        errors.push((
                            format!("{at}.label_names[{j}]"),
                            format!("must be a string, got {}", crate::config::json_text(l)),
                        ));
                        None
                    }
                })
                .collect(),
            Some(other) => {
                errors.push((
                    format!("{at}.label_names"),
                    format!("must be a list of strings, got {}", crate::config::json_text(other)),
                ));
                Vec::new()
            }
        };
        let buckets = match field(m, &["buckets"]) {
            None => None,
            Some(b) => parse_buckets(b).map_err(|e| errors.push((format!("{at}.buckets"), e))).ok().flatten(),
        };
        if instance_name.is_empty() && errors.len() == before {
            errors.push((
                format!("{at}.instance_name"),
                String::from("missing: the FQN of the metric instance (name.instance.namespace) this metric records"),
            ));
        }
        if let (Some(kind), true) = (kind, errors.len() == before) {
            if kind == MetricKind::Distribution {
                if let Some(b) = &buckets {
                    if let Err(e) = b.bounds() {
                        errors.push((format!("{at}.buckets"), e));
                    }
                }
            }
            if out.metrics.iter().any(|x: &MetricInfo| x.instance_name == instance_name) {
                errors.push((
                    format!("{at}.instance_name"),
                    format!("instance {instance_name} is listed twice in this handler"),
                ));
                continue;
            }
            out.metrics.push(MetricInfo { namespace, name, instance_name, description, kind, label_names, buckets });
        }
    }
    if let Some(policy) = field(params, &["metrics_expiration_policy", "metricsExpirationPolicy"]) {
        let at = "params.metrics_expiration_policy";
        let expiry = field(policy, &["metrics_expiry_duration", "metricsExpiryDuration"]).map(parse_proto_duration);
        let interval =
            field(policy, &["expiry_check_interval_duration", "expiryCheckIntervalDuration"]).map(parse_proto_duration);
        match (expiry, interval) {
            (None, _) => errors.push((
                format!("{at}.metrics_expiry_duration"),
                String::from("required when metrics_expiration_policy is set"),
            )),
            (Some(Err(e)), _) => errors.push((format!("{at}.metrics_expiry_duration"), e)),
            (Some(Ok(e)), _) if e <= 0 => {
                errors.push((format!("{at}.metrics_expiry_duration"), String::from("must be > 0")))
            }
            (Some(Ok(_)), Some(Err(e))) => errors.push((format!("{at}.expiry_check_interval_duration"), e)),
            (Some(Ok(_)), Some(Ok(i))) if i < 0 => {
                errors.push((format!("{at}.expiry_check_interval_duration"), String::from("must be >= 0")))
            }
            (Some(Ok(expiry_ns)), interval) => {
                let check_interval_ns = match interval {
                    Some(Ok(i)) if i > 0 => i,
                    _ => expiry_ns / 2,
                };
                out.expiration = Some(ExpirationPolicy { expiry_ns, check_interval_ns });
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// How one metric's values are scaled for Envoy (`metrics.scaling.<mixer name>`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scaling {
    /// Envoy value = round(Mixer value * scale); bucket bounds are multiplied too.
    pub scale: f64,
    /// The metric's name on Envoy; required when a non-duration metric is scaled.
    #[serde(default)]
    pub name: Option<String>,
}

fn default_max_series() -> usize {
    DEFAULT_MAX_SERIES_PER_METRIC
}

/// The `metrics` section of the filter configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricOptions {
    /// Distinct label tuples per metric before new tuples go to the overflow series
    /// (every label `overflow`). Default 10,000.
    #[serde(default = "default_max_series")]
    pub max_series_per_metric: usize,
    /// Use a peer's metadata even when the peer-metadata filter could not verify it against the
    /// mTLS certificate (labels such as `source_workload` then come from a client's claim).
    #[serde(default)]
    pub trust_unverified_peers: bool,
    /// Per-metric unit overrides, keyed by Mixer's full metric name (`istio_request_duration_seconds`).
    #[serde(default)]
    pub scaling: BTreeMap<String, Scaling>,
    /// Metrics (Mixer's full names, e.g. `istio_requests_total`) this filter does not produce:
    /// the handler's entries stay valid, their samples are never recorded. `wasmixer convert`
    /// sets it in WasmPlugins for Istio's standard metrics, which Istio's own telemetry exports.
    #[serde(default)]
    pub skip_metrics: Vec<String>,
    /// `tcp_report_interval` as written (Go duration text); read through
    /// [`MetricOptions::tcp_report_interval_nanos`].
    #[serde(default, rename = "tcp_report_interval")]
    tcp_report_interval_text: Option<Json>,
    /// How often a long TCP connection reports the bytes it carried since its previous report.
    #[serde(skip, default = "default_tcp_report_interval")]
    pub tcp_report_interval_nanos: i64,
}

/// Mixer's proxy reported TCP every 10 s (Istio's Wasm stats every 15 s).
pub const DEFAULT_TCP_REPORT_INTERVAL_NANOS: i64 = 10_000_000_000;
/// The metrics filter's TCP tick is 1 s, so a shorter interval could not be honoured.
pub const MIN_TCP_REPORT_INTERVAL_NANOS: i64 = 1_000_000_000;

fn default_tcp_report_interval() -> i64 {
    DEFAULT_TCP_REPORT_INTERVAL_NANOS
}

/// `tcp_report_interval`: Go duration text of at least 1s.
fn tcp_report_interval(v: &Json) -> Result<i64, String> {
    let Json::String(text) = v else {
        return Err(format!("must be Go duration text such as \"10s\", got {}", crate::config::json_text(v)));
    };
    let nanos = parse_duration(text.trim())?;
    if nanos < MIN_TCP_REPORT_INTERVAL_NANOS {
        return Err(format!("must be at least 1s, got {text:?}"));
    }
    Ok(nanos)
}

impl Default for MetricOptions {
    fn default() -> MetricOptions {
        MetricOptions {
            max_series_per_metric: DEFAULT_MAX_SERIES_PER_METRIC,
            trust_unverified_peers: false,
            scaling: BTreeMap::new(),
            skip_metrics: Vec::new(),
            tcp_report_interval_text: None,
            tcp_report_interval_nanos: DEFAULT_TCP_REPORT_INTERVAL_NANOS,
        }
    }
}

impl MetricOptions {
    /// Reads the `metrics` section (`null` or absent: the defaults).
    #[inline(never)] // configure-time code: see WASM_OPT_FLAGS in the Makefile
    pub fn from_json(v: &Json) -> Result<MetricOptions, ConfigError> {
        if v.is_null() {
            return Ok(MetricOptions::default());
        }
        let mut options: MetricOptions = serde_json::from_value(v.clone())
            .map_err(|e| ConfigError::new("configuration", "metrics", e.to_string()))?;
        if let Some(text) = &options.tcp_report_interval_text {
            options.tcp_report_interval_nanos = tcp_report_interval(text)
                .map_err(|e| ConfigError::new("configuration", "metrics.tcp_report_interval", e))?;
        }
        if options.max_series_per_metric == 0 {
            return Err(ConfigError::new("configuration", "metrics.max_series_per_metric", "must be at least 1"));
        }
        for (name, s) in &options.scaling {
            if !(s.scale.is_finite() && s.scale > 0.0) {
                return Err(ConfigError::new(
                    "configuration",
                    format!("metrics.scaling.{name}.scale"),
                    format!("must be a finite number > 0, got {}", s.scale),
                ));
            }
            if let Some(n) = &s.name {
                if !is_valid_metric_name(n) {
                    return Err(ConfigError::new(
                        "configuration",
                        format!("metrics.scaling.{name}.name"),
                        format!("{n:?} is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"),
                    ));
                }
            }
        }
        Ok(options)
    }
}

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'_' || first == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// The unit word of a duration scale: 1 seconds, 1e3 milliseconds, 1e6 microseconds, 1e9
/// nanoseconds.
pub fn duration_unit(scale: f64) -> Option<&'static str> {
    [(1.0, "seconds"), (1e3, "milliseconds"), (1e6, "microseconds"), (1e9, "nanoseconds")]
        .into_iter()
        .find_map(|(s, unit)| (s == scale).then_some(unit))
}

/// Renames a seconds-based name to `unit`: `x_seconds` -> `x_<unit>`, `x_seconds_total` ->
/// `x_<unit>_total`, otherwise `_<unit>` is appended (before a trailing `_total`).
pub fn with_duration_unit(name: &str, unit: &str) -> String {
    if unit == "seconds" {
        return name.to_string();
    }
    if let Some(stem) = name.strip_suffix("_seconds") {
        return format!("{stem}_{unit}");
    }
    if let Some(stem) = name.strip_suffix("_seconds_total") {
        return format!("{stem}_{unit}_total");
    }
    if let Some(stem) = name.strip_suffix("_total") {
        return format!("{stem}_{unit}_total");
    }
    format!("{name}_{unit}")
}

/// How a metric is represented on Envoy.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvoyUnit {
    /// Envoy value = round(Mixer value * scale).
    pub scale: f64,
    /// The metric's name on Envoy and in `/stats/prometheus`.
    pub name: String,
    /// The unit, when known (`milliseconds` for durations).
    pub unit: Option<String>,
}

/// Chooses the scale and Envoy name of a metric (see the module documentation).
pub fn envoy_unit(mixer_name: &str, value_type: ValueType, scaling: Option<&Scaling>) -> Result<EnvoyUnit, String> {
    let duration = value_type == ValueType::Duration;
    match scaling {
        None if duration => Ok(EnvoyUnit {
            scale: 1e3,
            name: with_duration_unit(mixer_name, "milliseconds"),
            unit: Some(String::from("milliseconds")),
        }),
        None => Ok(EnvoyUnit { scale: 1.0, name: mixer_name.to_string(), unit: None }),
        Some(s) => {
            let unit = if duration { duration_unit(s.scale) } else { None };
            let name = match (&s.name, unit) {
                (Some(n), _) => n.clone(),
                (None, Some(u)) => with_duration_unit(mixer_name, u),
                (None, None) if !duration && s.scale == 1.0 => mixer_name.to_string(),
                (None, None) if duration => {
                    return Err(format!("scale {} is not a duration unit (1, 1000, 1000000, 1000000000): give a name that states the unit", s.scale));
                }
                (None, None) => {
                    return Err(format!(
                        "scale {} changes the unit of {mixer_name}: give a name that states the new unit",
                        s.scale
                    ))
                }
            };
            Ok(EnvoyUnit { scale: s.scale, name, unit: unit.map(String::from) })
        }
    }
}

/// A value that cannot be recorded in an Envoy stat.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeError {
    NotFinite(f64),
    Negative(f64),
    TooLarge(f64),
}

impl std::fmt::Display for RangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RangeError::NotFinite(v) => write!(f, "value {v} is not a finite number"),
            RangeError::Negative(v) => write!(f, "value {v} is negative: Envoy stats hold unsigned integers"),
            RangeError::TooLarge(v) => write!(f, "value {v} is too large for an Envoy stat"),
        }
    }
}

/// 2^64, the first value past `u64::MAX`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// The Envoy value of a Mixer value: `round(v * scale)` (half away from zero); `-0.4` is 0.
pub fn envoy_value(v: f64, scale: f64) -> Result<u64, RangeError> {
    let scaled = v * scale;
    if !scaled.is_finite() {
        return Err(RangeError::NotFinite(v));
    }
    let r = scaled.round();
    if r < 0.0 {
        return Err(RangeError::Negative(v));
    }
    if r >= TWO_POW_64 {
        return Err(RangeError::TooLarge(v));
    }
    // Finite, in [0, 2^64) and integral: the cast is exact.
    Ok(r as u64)
}

/// `x` when it is within rounding noise of a whole number, as that whole number.
fn snap_to_integer(x: f64) -> Option<f64> {
    let r = x.round();
    ((x - r).abs() <= 1e-9 * r.abs().max(1.0)).then_some(r)
}

/// Envoy bucket bounds for Mixer bounds at `scale`: each must be a whole number >= 0 once scaled.
pub fn envoy_bounds(bounds: &[f64], scale: f64) -> Result<Vec<f64>, String> {
    let mut out = Vec::with_capacity(bounds.len());
    for (i, b) in bounds.iter().enumerate() {
        let scaled = b * scale;
        if scaled < 0.0 {
            return Err(format!("bucket bound {i} ({b}) is negative: Envoy histograms record unsigned integers"));
        }
        match snap_to_integer(scaled) {
            Some(v) => out.push(v),
            None => {
                return Err(format!(
                    "bucket bound {i} ({b}) becomes {scaled} at scale {scale}; Envoy histograms record whole numbers, so set metrics.scaling.<metric>.scale to make every bound whole (e.g. 1000)"
                ))
            }
        }
    }
    Ok(out)
}

/// True for a value type the prometheus adapter could turn into a number (`promValue`).
pub fn is_numeric_type(t: ValueType) -> bool {
    matches!(t, ValueType::Int64 | ValueType::Double | ValueType::Duration) || t.is_stringy()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(MetricKind::parse(Some(&json!("COUNTER"))), Ok(MetricKind::Counter));
        assert_eq!(MetricKind::parse(Some(&json!(1))), Ok(MetricKind::Gauge));
        assert_eq!(MetricKind::parse(Some(&json!(3))), Ok(MetricKind::Distribution));
        assert!(MetricKind::parse(None).unwrap_err().starts_with("unknown metric kind"));
        assert!(MetricKind::parse(Some(&json!("UNSPECIFIED"))).unwrap_err().starts_with("unknown metric kind"));
        assert!(MetricKind::parse(Some(&json!("counter"))).is_err());
        assert!(MetricKind::parse(Some(&json!(0))).is_err());
    }

    #[test]
    fn params_defaults_and_camel_case() {
        let p = parse_prometheus_params(&json!({"metrics": [
            {"instance_name": "requestcount.instance.istio-system", "kind": "COUNTER", "label_names": ["a"]},
            {"name": "request_duration_seconds", "instanceName": "requestduration.instance.istio-system", "kind": "DISTRIBUTION",
             "labelNames": ["b"], "buckets": {"explicitBuckets": {"bounds": [0.005, 0.01]}}},
            {"namespace": "my-ns", "name": "x", "description": "d", "instance_name": "x.instance.default", "kind": 1}
        ]}))
        .unwrap();
        assert_eq!(p.metrics[0].mixer_name(), "istio_requestcount_instance_istiosystem");
        assert_eq!(p.metrics[0].description, "requestcount.instance.istio-system");
        assert_eq!(p.metrics[1].mixer_name(), "istio_request_duration_seconds");
        assert_eq!(p.metrics[1].buckets, Some(Buckets::Explicit { bounds: vec![0.005, 0.01] }));
        assert_eq!(p.metrics[1].label_names, ["b"]);
        assert_eq!(p.metrics[2].mixer_name(), "myns_x");
        assert_eq!(p.metrics[2].kind, MetricKind::Gauge);
        assert_eq!(p.expiration, None);
    }

    #[test]
    fn params_errors_name_fields() {
        let e = parse_prometheus_params(&json!({"metrics": [
            {"instance_name": "a.instance.default"},
            {"instance_name": "b.instance.default", "kind": "DISTRIBUTION", "buckets": {"linear_buckets": {"num_finite_buckets": 0, "width": 1}}},
            {"kind": "COUNTER"},
            {"instance_name": "c.instance.default", "kind": "COUNTER", "label_names": [1]},
            {"instance_name": "d.instance.default", "kind": "COUNTER", "buckets": {"explicit_buckets": {}, "linear_buckets": {}}}
        ]}))
        .unwrap_err();
        let fields: Vec<&str> = e.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "params.metrics[0].kind",
                "params.metrics[1].buckets",
                "params.metrics[2].instance_name",
                "params.metrics[3].label_names[0]",
                "params.metrics[4].buckets",
            ]
        );
        assert!(e[1].1.contains("num_finite_buckets > 0"), "{e:?}");
    }

    #[test]
    fn duplicate_instance_in_one_handler() {
        let e = parse_prometheus_params(&json!({"metrics": [
            {"instance_name": "a.instance.default", "kind": "COUNTER"},
            {"instance_name": "a.instance.default", "kind": "GAUGE"}
        ]}))
        .unwrap_err();
        assert_eq!(e[0].1, "instance a.instance.default is listed twice in this handler");
    }

    #[test]
    fn expiration_policy() {
        let p =
            parse_prometheus_params(&json!({"metrics_expiration_policy": {"metrics_expiry_duration": "10m"}})).unwrap();
        assert_eq!(
            p.expiration,
            Some(ExpirationPolicy { expiry_ns: 600_000_000_000, check_interval_ns: 300_000_000_000 })
        );
        let p = parse_prometheus_params(&json!({"metricsExpirationPolicy": {"metricsExpiryDuration": {"seconds": 60}, "expiryCheckIntervalDuration": "5s"}})).unwrap();
        assert_eq!(
            p.expiration,
            Some(ExpirationPolicy { expiry_ns: 60_000_000_000, check_interval_ns: 5_000_000_000 })
        );
        let e = parse_prometheus_params(&json!({"metrics_expiration_policy": {}})).unwrap_err();
        assert_eq!(e[0].0, "params.metrics_expiration_policy.metrics_expiry_duration");
        let e = parse_prometheus_params(&json!({"metrics_expiration_policy": {"metrics_expiry_duration": "0s"}}))
            .unwrap_err();
        assert_eq!(e[0].1, "must be > 0");
        let e = parse_prometheus_params(&json!({"metrics_expiration_policy": {"metrics_expiry_duration": "ten"}}))
            .unwrap_err();
        assert_eq!(e[0].1, "time: invalid duration ten");
    }

    #[test]
    fn options() {
        assert_eq!(MetricOptions::from_json(&Json::Null).unwrap(), MetricOptions::default());
        let o = MetricOptions::from_json(
            &json!({"max_series_per_metric": 5, "trust_unverified_peers": true, "scaling": {"m": {"scale": 1e6}}}),
        )
        .unwrap();
        assert_eq!(o.max_series_per_metric, 5);
        assert!(o.trust_unverified_peers);
        assert_eq!(o.scaling["m"].scale, 1e6);
        assert!(MetricOptions::from_json(&json!({"max_series": 5}))
            .unwrap_err()
            .message
            .contains("unknown field `max_series`"));
        assert_eq!(
            MetricOptions::from_json(&json!({"max_series_per_metric": 0})).unwrap_err().field,
            "metrics.max_series_per_metric"
        );
        assert!(MetricOptions::from_json(&json!({"scaling": {"m": {"scale": -1}}})).is_err());
        assert!(MetricOptions::from_json(&json!({"scaling": {"m": {"scale": 2, "name": "bad name"}}})).is_err());
    }

    #[test]
    fn tcp_report_interval_is_go_duration_text_of_at_least_one_second() {
        let interval = |v: Json| MetricOptions::from_json(&json!({ "tcp_report_interval": v }));
        assert_eq!(MetricOptions::default().tcp_report_interval_nanos, 10_000_000_000);
        assert_eq!(MetricOptions::from_json(&json!({})).unwrap().tcp_report_interval_nanos, 10_000_000_000);
        assert_eq!(interval(json!("10s")).unwrap().tcp_report_interval_nanos, 10_000_000_000);
        assert_eq!(interval(json!("1s")).unwrap().tcp_report_interval_nanos, 1_000_000_000);
        assert_eq!(interval(json!("1m30s")).unwrap().tcp_report_interval_nanos, 90_000_000_000);
        let error = |v: Json| {
            let e = interval(v).unwrap_err();
            assert_eq!(e.field, "metrics.tcp_report_interval");
            e.message
        };
        assert_eq!(error(json!("999ms")), r#"must be at least 1s, got "999ms""#);
        assert_eq!(error(json!("-5s")), r#"must be at least 1s, got "-5s""#);
        assert_eq!(error(json!("10")), "time: missing unit in duration 10");
        assert_eq!(error(json!("ten seconds")), "time: invalid duration ten seconds");
        assert_eq!(error(json!(10)), r#"must be Go duration text such as "10s", got 10"#);
    }

    #[test]
    fn duration_names() {
        assert_eq!(
            with_duration_unit("istio_request_duration_seconds", "milliseconds"),
            "istio_request_duration_milliseconds"
        );
        assert_eq!(with_duration_unit("istio_busy_seconds_total", "milliseconds"), "istio_busy_milliseconds_total");
        assert_eq!(with_duration_unit("istio_busy_total", "milliseconds"), "istio_busy_milliseconds_total");
        assert_eq!(with_duration_unit("istio_latency", "microseconds"), "istio_latency_microseconds");
        assert_eq!(with_duration_unit("istio_latency", "seconds"), "istio_latency");
    }

    #[test]
    fn units() {
        let u = envoy_unit("istio_request_duration_seconds", ValueType::Duration, None).unwrap();
        assert_eq!(
            (u.scale, u.name.as_str(), u.unit.as_deref()),
            (1e3, "istio_request_duration_milliseconds", Some("milliseconds"))
        );
        let u = envoy_unit("istio_request_bytes", ValueType::Int64, None).unwrap();
        assert_eq!((u.scale, u.name.as_str(), u.unit), (1.0, "istio_request_bytes", None));
        let us = Scaling { scale: 1e6, name: None };
        assert_eq!(envoy_unit("istio_d_seconds", ValueType::Duration, Some(&us)).unwrap().name, "istio_d_microseconds");
        let secs = Scaling { scale: 1.0, name: None };
        assert_eq!(envoy_unit("istio_d_seconds", ValueType::Duration, Some(&secs)).unwrap().name, "istio_d_seconds");
        let odd = Scaling { scale: 60.0, name: None };
        assert!(envoy_unit("istio_d_seconds", ValueType::Duration, Some(&odd)).is_err());
        let pct = Scaling { scale: 100.0, name: None };
        assert!(envoy_unit("istio_ratio", ValueType::Double, Some(&pct)).unwrap_err().contains("give a name"));
        let pct = Scaling { scale: 100.0, name: Some(String::from("istio_ratio_percent")) };
        assert_eq!(envoy_unit("istio_ratio", ValueType::Double, Some(&pct)).unwrap().name, "istio_ratio_percent");
    }

    #[test]
    fn value_conversion() {
        assert_eq!(envoy_value(2.0, 1.0), Ok(2));
        assert_eq!(envoy_value(0.386, 1e3), Ok(386));
        assert_eq!(envoy_value(0.0004, 1e3), Ok(0));
        assert_eq!(envoy_value(0.0005, 1e3), Ok(1));
        assert_eq!(envoy_value(2.5, 1.0), Ok(3));
        assert_eq!(envoy_value(-0.4, 1.0), Ok(0));
        assert_eq!(envoy_value(-1.0, 1.0), Err(RangeError::Negative(-1.0)));
        assert_eq!(
            envoy_value(f64::NAN, 1.0).map_err(|e| e.to_string()),
            Err(String::from("value NaN is not a finite number"))
        );
        assert_eq!(envoy_value(f64::INFINITY, 1.0), Err(RangeError::NotFinite(f64::INFINITY)));
        assert_eq!(envoy_value(1e20, 1.0), Err(RangeError::TooLarge(1e20)));
        assert_eq!(envoy_value(1.8e19, 1.0), Ok(18_000_000_000_000_000_000));
    }

    #[test]
    fn bounds_on_envoy() {
        let ms = envoy_bounds(&super::super::prometheus::DEFAULT_BOUNDS, 1e3).unwrap();
        assert_eq!(ms, [5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0]);
        let linear = Buckets::Linear { num_finite_buckets: 3, width: 0.1, offset: 0.1 }.bounds().unwrap();
        assert_eq!(envoy_bounds(&linear, 1e3).unwrap(), [100.0, 200.0, 300.0, 400.0]);
        let e = envoy_bounds(&super::super::prometheus::DEFAULT_BOUNDS, 1.0).unwrap_err();
        assert!(e.starts_with("bucket bound 0 (0.005) becomes 0.005 at scale 1"), "{e}");
        assert!(envoy_bounds(&[-1.0, 1.0], 1.0).unwrap_err().contains("negative"));
        let bytes = Buckets::Exponential { num_finite_buckets: 8, growth_factor: 10.0, scale: 1.0 }.bounds().unwrap();
        assert_eq!(envoy_bounds(&bytes, 1.0).unwrap().last(), Some(&1e8));
    }

    #[test]
    fn metric_names() {
        assert!(is_valid_metric_name("istio_requests_total"));
        assert!(is_valid_metric_name("a:b"));
        assert!(!is_valid_metric_name("1x"));
        assert!(!is_valid_metric_name("héllo"));
        assert!(!is_valid_metric_name(""));
    }

    #[test]
    fn numeric_types() {
        assert!(is_numeric_type(ValueType::Int64));
        assert!(is_numeric_type(ValueType::String));
        assert!(is_numeric_type(ValueType::Duration));
        assert!(!is_numeric_type(ValueType::Bool));
        assert!(!is_numeric_type(ValueType::Timestamp));
        assert!(!is_numeric_type(ValueType::StringMap));
    }
}
