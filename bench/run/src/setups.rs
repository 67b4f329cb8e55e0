//! The setups under test and their Envoy bootstraps.
//!
//! Every setup is the same inbound sidecar hop of a `ratings-v1` workload (Istio-style node
//! metadata, `traffic_direction: INBOUND`, one HTTP connection manager) that answers with a
//! direct response (or, with `--upstream`, forwards to a trivial backend Envoy); only the HTTP
//! filters and access loggers differ.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::{cel, peer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Baseline,
    Wasm,
    Native,
    Lua,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Baseline => "baseline",
            Kind::Wasm => "wasm",
            Kind::Native => "native",
            Kind::Lua => "lua",
        }
    }
}

/// How to tell that a setup really did its work during the warm-up.
#[derive(Clone, Debug)]
pub enum Verify {
    Nothing,
    /// Some stat whose name matches this regex (Envoy's `filter`) has a value > 0.
    Stat(&'static str),
    /// The access log file has a line other than `-`.
    LogLine,
}

/// A file access logger on the connection manager (written to `<dir>/<setup>.access.log`).
#[derive(Clone, Debug)]
pub enum LogFormat {
    Json(Value),
    Text(String),
    /// The text format, logged only for requests where this CEL expression holds (Envoy's
    /// `envoy.access_loggers.extension_filters.cel`).
    TextIf(String, String),
}

#[derive(Clone, Debug)]
pub struct Setup {
    pub name: &'static str,
    pub kind: Kind,
    /// What this setup measures, in one sentence (printed and stored in the results).
    pub measures: String,
    /// HTTP filters before the router (one JSON object each).
    pub filters: Vec<Value>,
    pub access_log: Option<LogFormat>,
    /// Headers the load generator sends.
    pub headers: Vec<(String, String)>,
    pub expect_status: u16,
    /// The native setup this one is compared with (ratio of extra CPU).
    pub native: Option<&'static str>,
    /// Why the setup cannot run (e.g. a filter or its configuration is not built yet).
    pub unavailable: Option<String>,
    /// Configuration files used.
    pub sources: Vec<String>,
    pub verify: Verify,
    /// A calibration setup: run in full runs (quick runs only when named with `--only`).
    pub diagnostic: bool,
    /// Tag names encoded in the filters' stat names, turned back into labels by Envoy's
    /// `stats_tags` (what `wasmixer stats-config` generates).
    pub stats_tags: Vec<String>,
    /// Two sidecars: the client sidecar's side (the load hits it; it originates mTLS to the
    /// server sidecar, which has `filters` and `access_log`).
    pub client: Option<ClientSide>,
    /// The setup whose figures this one's extra CPU and RPS ratio are taken against.
    pub baseline: &'static str,
    /// A memory-only setup: instead of load turns, this many requests with distinct
    /// `x-bench-series` values, each a new metric series; memory is read before and after.
    pub series_fill: usize,
}

/// The client sidecar of a two-sidecar setup.
#[derive(Clone, Debug)]
pub struct ClientSide {
    pub filters: Vec<Value>,
    pub access_log: Option<LogFormat>,
}

/// Where the inputs are.
pub struct Inputs {
    pub root: PathBuf,
    pub dist: PathBuf,
    /// Where the caller wrote the generated calibration modules ([`crate::wasm_floor`]):
    /// `floor.wasm`, `floor-property.wasm`, `floor-header.wasm`.
    pub generated: PathBuf,
}

/// Host calls per request in the calibration setups.
pub const CALIBRATION_CALLS: usize = 10;

impl Inputs {
    fn wasm(&self, filter: &str) -> Result<PathBuf, String> {
        let p = self.dist.join(format!("{filter}.wasm"));
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!("not built: {} is missing (make wasm)", p.display()))
        }
    }

    /// The first candidate (relative to the workspace root) that exists; `bench/run/configs/…`
    /// fallbacks come last.
    fn config(&self, candidates: &[&str]) -> Result<(String, String), String> {
        for c in candidates {
            let p = self.root.join(c);
            if let Ok(text) = std::fs::read_to_string(&p) {
                return Ok((text, (*c).to_string()));
            }
        }
        Err(format!("not built: none of {} exists", candidates.join(", ")))
    }
}

/// Request headers a `reviews-v3` caller's application would send if the rule were written on
/// headers: the matching variants use these.
fn source_headers() -> Vec<(String, String)> {
    vec![("x-source-app".into(), "reviews".into()), ("x-source-version".into(), "v3".into())]
}

/// The seed's decision as a native CEL condition: the destination's labels from the listener's
/// metadata (`xds.node` is not in the RBAC filter's CEL activation in Envoy 1.40: a condition on
/// it always fails), the source from request headers (stock Envoy has no verified peer
/// labels). Without the headers
/// the lookups fail, and RBAC treats a failing condition as not matching: the request passes,
/// as with the deny filter's seed rule when the peer is absent.
fn rbac_seed_filter() -> Value {
    let condition = cel::and(vec![
        cel::eq(
            cel::index(
                cel::index(cel::index(cel::path("xds.listener_metadata.filter_metadata"), "istio"), "labels"),
                "app",
            ),
            cel::string("ratings"),
        ),
        cel::eq(cel::index(cel::path("request.headers"), "x-source-app"), cel::string("reviews")),
        cel::eq(cel::index(cel::path("request.headers"), "x-source-version"), cel::string("v3")),
    ]);
    json!({
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {
                "action": "DENY",
                "policies": {
                    "denyreviewsv3": {
                        "permissions": [{"any": true}],
                        "principals": [{"any": true}],
                        "condition": condition
                    }
                }
            }
        }
    })
}

/// Envoy's `set_filter_state` filter leaving what wasmixer's peer-metadata filter leaves once
/// it verified a reviews-v3 caller over mTLS: a one-hop stand-in for a server sidecar behind the
/// metadata exchange, without the exchange's own cost.
fn verified_caller_filter() -> Value {
    json!({
        "name": "envoy.filters.http.set_filter_state",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config",
            "on_request_headers": [{
                "object_key": "wasm.wasmixer_downstream_peer",
                "factory_key": "envoy.string",
                "format_string": {"text_format_source": {"inline_string": peer::verified_reviews_caller("v3")}}
            }]
        }
    })
}

/// Native JSON access log with the seed logentry's fields (`newlog`: severity, timestamp and
/// the six variables). Peer labels do not exist natively: `source` is the caller's header and
/// `user` the peer certificate's URI SAN (`-` in plain text).
fn native_json_log() -> LogFormat {
    LogFormat::Json(json!({
        "level": "warn",
        "time": "%START_TIME%",
        "instance": "newlog.instance.istio-system",
        "source": "%REQ(x-source-app)%",
        "user": "%DOWNSTREAM_PEER_URI_SAN%",
        "destination": "%CEL(xds.node.metadata.LABELS.app)%",
        "responseCode": "%RESPONSE_CODE%",
        "responseSize": "%BYTES_SENT%",
        "latency": "%DURATION%ms"
    }))
}

/// Envoy's file logger printing the access-log filter's lines (filter state `wasm.<key>`), and
/// nothing for requests without one, as `envoy-config/access-log/sidecar-stdout.yaml` deploys it.
fn wasm_log_printer() -> LogFormat {
    LogFormat::TextIf(
        "%FILTER_STATE(wasm.wasmixer_log_stdout:PLAIN)%\n".into(),
        "'wasm.wasmixer_log_stdout' in filter_state".into(),
    )
}

const LUA_SOURCE: &str = r#"
function envoy_on_request(handle)
  local h = handle:headers()
  if h:get("x-source-app") == "reviews" and h:get("x-source-version") == "v3" then
    handle:respond({[":status"] = "403"}, "PERMISSION_DENIED")
  end
end
"#;

/// An `envoy.filters.http.wasm` entry running `wasm` in V8 with `configuration` as its
/// StringValue; plugin, root and VM id `wasmixer-<filter>` (as the integration harness does).
fn wasm_filter(filter: &str, wasm: &Path, configuration: &str) -> Value {
    let id = format!("wasmixer-{filter}");
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": id,
                "root_id": id,
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": configuration},
                "vm_config": {
                    "vm_id": id,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm.to_string_lossy()}}
                }
            }
        }
    })
}

/// Everything a wasm setup needs: (filters, sources) or why it cannot run.
struct WasmParts {
    filters: Vec<Value>,
    sources: Vec<String>,
    stats_tags: Vec<String>,
}

impl WasmParts {
    /// No filter yet; wasmixer's own metric tags.
    fn new() -> WasmParts {
        WasmParts {
            filters: Vec::new(),
            sources: Vec::new(),
            stats_tags: SELF_TAGS.iter().map(|t| (*t).to_string()).collect(),
        }
    }

    /// Appends `filter` running `wasm` with `config` (read from `source`), and its label names.
    fn add(&mut self, filter: &str, wasm: &Path, config: &str, source: &str) {
        for l in label_names(config) {
            if !self.stats_tags.contains(&l) {
                self.stats_tags.push(l);
            }
        }
        self.filters.push(wasm_filter(filter, wasm, config));
        self.sources.push(format!("{}: {source}", wasm.display()));
    }
}

/// wasmixer's own metric tags, always present.
const SELF_TAGS: [&str; 5] = ["metric", "reason", "rule", "result", "direction"];

/// The label names of every prometheus handler metric in a configuration document.
fn label_names(config: &str) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<Value>(config) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for r in doc.get("resources").and_then(Value::as_array).into_iter().flatten() {
        let metrics = r.pointer("/spec/params/metrics").and_then(Value::as_array);
        for m in metrics.into_iter().flatten() {
            for l in m.get("label_names").and_then(Value::as_array).into_iter().flatten() {
                if let Some(l) = l.as_str() {
                    out.push(l.to_string());
                }
            }
        }
    }
    out
}

/// One document holding every given configuration: their `resources` concatenated, their
/// option sections (`deny`, `metrics`, `access_log`, ...) merged. What the `mixer` filter reads.
fn merged_config(inputs: &Inputs, configs: &[&[&str]]) -> Result<(String, String), String> {
    let mut doc = serde_json::Map::new();
    let mut resources = Vec::new();
    let mut sources = Vec::new();
    for candidates in configs {
        let (text, source) = inputs.config(candidates)?;
        let Value::Object(part) = serde_json::from_str::<Value>(&text).map_err(|e| format!("{source}: {e}"))? else {
            return Err(format!("{source}: not a JSON object"));
        };
        for (k, v) in part {
            match (k.as_str(), v) {
                ("resources", Value::Array(items)) => resources.extend(items),
                (_, v) => {
                    doc.insert(k, v);
                }
            }
        }
        sources.push(source);
    }
    doc.insert("resources".into(), Value::Array(resources));
    Ok((Value::Object(doc).to_string(), format!("merged: {}", sources.join(" + "))))
}

/// The `mixer` filter alone, configured with `configs` merged into one document.
fn mixer_parts(inputs: &Inputs, configs: &[&[&str]]) -> Result<WasmParts, String> {
    let wasm = inputs.wasm("mixer")?;
    let (config, source) = merged_config(inputs, configs)?;
    let mut out = WasmParts::new();
    out.add("mixer", &wasm, &config, &source);
    Ok(out)
}

fn wasm_parts(inputs: &Inputs, parts: &[(&str, &[&str])]) -> Result<WasmParts, String> {
    let mut out = WasmParts::new();
    for (filter, candidates) in parts {
        let wasm = inputs.wasm(filter)?;
        let (config, source) = if candidates.is_empty() {
            ("{}".to_string(), "(empty configuration)".to_string())
        } else {
            inputs.config(candidates)?
        };
        out.add(filter, &wasm, &config, &source);
    }
    Ok(out)
}

/// Puts `parts` on the measured Envoy of `s`, or records why the setup cannot run.
fn set_parts(s: &mut Setup, parts: Result<WasmParts, String>) {
    match parts {
        Ok(p) => {
            s.filters = p.filters;
            s.sources = p.sources;
            s.stats_tags = p.stats_tags;
        }
        Err(e) => s.unavailable = Some(e),
    }
}

const DENY_SEED: &[&str] = &["integration/testdata/deny-seed.json"];
const DENY_HEADERS: &[&str] = &["bench/run/configs/deny-headers.json"];
const METRICS_SEED: &[&str] = &[
    "envoy-config/metrics/double-request-count.json",
    "integration/testdata/metrics-seed.json",
    "integration/testdata/metrics-double-request-count.json",
    "envoy-config/metrics/seed.json",
    "bench/run/configs/metrics-seed.json",
];
const METRICS_STANDARD: &[&str] = &[
    "envoy-config/metrics/istio-standard-metrics.json",
    "integration/testdata/metrics-standard.json",
    "integration/testdata/metrics-istio-standard.json",
    "envoy-config/metrics/standard.json",
    "bench/run/configs/metrics-standard.json",
];
const METRICS_SERIES: &[&str] = &["bench/run/configs/metrics-series.json"];
/// Series the `metrics-series` setup creates: the metrics filter's default cap per metric.
pub const SERIES_FILL: usize = 10_000;
const ACCESS_LOG_SEED: &[&str] = &[
    "integration/testdata/access-log-newlog-stdio.json",
    "integration/testdata/access-log-seed.json",
    "integration/testdata/access-log-newlog.json",
    "envoy-config/access-log/seed.json",
    "bench/run/configs/access-log-seed.json",
];
const PEER: &[&str] = &[];

/// Every setup, in table order.
pub fn all(inputs: &Inputs) -> Vec<Setup> {
    let mut setups = Vec::new();
    let base = |name: &'static str, kind: Kind, measures: &str| Setup {
        name,
        kind,
        measures: measures.to_string(),
        filters: Vec::new(),
        access_log: None,
        headers: Vec::new(),
        expect_status: 200,
        native: None,
        unavailable: None,
        sources: Vec::new(),
        verify: Verify::Nothing,
        diagnostic: false,
        stats_tags: Vec::new(),
        client: None,
        baseline: "bare",
        series_fill: 0,
    };
    let wasm_setup = |name: &'static str,
                      measures: &str,
                      parts: &[(&str, &[&str])],
                      native: Option<&'static str>,
                      verify: Verify| {
        let mut s = base(name, Kind::Wasm, measures);
        s.native = native;
        s.verify = verify;
        set_parts(&mut s, wasm_parts(inputs, parts));
        s
    };

    setups.push(base(
        "bare",
        Kind::Baseline,
        "Envoy alone: HTTP connection manager, router, direct response (no filter)",
    ));

    let mut s = base(
        "wasm-floor",
        Kind::Wasm,
        "a generated proxy-wasm module whose callbacks all return at once: what Envoy's Wasm host costs per request before any filter logic (context create/delete, one V8 call per callback)",
    );
    let floor = inputs.generated.join("floor.wasm");
    s.filters = vec![wasm_filter("floor", &floor, "")];
    s.sources = vec![format!("{} (generated)", floor.display())];
    setups.push(s);
    for (name, file, what) in [
        ("host-property-x10", "floor-property.wasm", "proxy_get_property(request.path)"),
        ("host-header-x10", "floor-header.wasm", "proxy_get_header_map_value(request, :path)"),
    ] {
        let mut s = base(name, Kind::Wasm, &format!("calibration: wasm-floor plus {CALIBRATION_CALLS} calls of {what} in on_request_headers; (extra - wasm-floor's) / {CALIBRATION_CALLS} prices one such host call"));
        let path = inputs.generated.join(file);
        s.filters = vec![wasm_filter(file.trim_end_matches(".wasm"), &path, "")];
        s.sources = vec![format!("{} (generated)", path.display())];
        s.diagnostic = true;
        setups.push(s);
    }

    setups.push(wasm_setup(
        "deny-seed",
        "deny-request-only.wasm (the seed rule has no response header operations) with the seed rule (reviews-v3 -> ratings); no peer (plain text, no metadata exchange), so source.labels is absent: the rule's match errors, does not match (counted as result=error), the request passes",
        &[("deny-request-only", DENY_SEED)],
        Some("rbac-seed"),
        Verify::Stat("wasmixer_policy_checks"),
    ));
    let mut s = base(
        "peer-state",
        Kind::Native,
        "Envoy's set_filter_state leaving a verified reviews-v3 caller where peer-metadata would (wasm.wasmixer_downstream_peer, claim and certificate SAN): the baseline of deny-peer",
    );
    s.filters = vec![verified_caller_filter()];
    setups.push(s);
    let mut s = wasm_setup(
        "deny-peer",
        "peer-state, then deny-request-only.wasm with the seed rule: the seed scenario on the ratings sidecar, the caller's identity verified (reviews-v3: the rule matches, every request is denied 403); extra CPU over peer-state",
        &[("deny-request-only", DENY_SEED)],
        Some("rbac-match"),
        Verify::Stat("result=.=deny;.;wasmixer_policy_checks"),
    );
    s.filters.insert(0, verified_caller_filter());
    s.baseline = "peer-state";
    s.expect_status = 403;
    setups.push(s);
    let mut s = wasm_setup(
        "deny-match",
        "deny.wasm (the build with the response phase) with the seed rule written on request headers (destination.labels[app] from node metadata, source app/version from x-source-* headers); the load sends them: the rule matches and every request is denied 403",
        &[("deny", DENY_HEADERS)],
        Some("rbac-match"),
        Verify::Stat("wasmixer_policy_checks"),
    );
    s.headers = source_headers();
    s.expect_status = 403;
    setups.push(s);

    setups.push(wasm_setup(
        "metrics-seed",
        "metrics.wasm with the seed metric (doublerequestcount -> prometheus double_request_count, 4 labels): one counter update per request",
        &[("metrics", METRICS_SEED)],
        None,
        Verify::Stat("double_request_count"),
    ));
    setups.push(wasm_setup(
        "metrics-standard",
        "metrics.wasm with Istio 1.4's standard metrics (requestcount, requestduration, requestsize, responsesize; 20 labels each)",
        &[("metrics", METRICS_STANDARD)],
        None,
        Verify::Stat("requests_total"),
    ));
    let mut s = wasm_setup(
        "metrics-series",
        "memory only: metrics.wasm with a counter labelled by a request header, filled with SERIES_FILL distinct values (the default cap per metric); RSS and memory in use are read before and after",
        &[("metrics", METRICS_SERIES)],
        None,
        Verify::Stat("bench_series"),
    );
    s.measures = s.measures.replace("SERIES_FILL", &SERIES_FILL.to_string());
    s.series_fill = SERIES_FILL;
    s.diagnostic = true;
    setups.push(s);
    let mut s = wasm_setup(
        "access-log-seed",
        "access-log.wasm with the seed logentry (newlog -> stdio JSON) rendered per request into filter state, printed by Envoy's file access logger",
        &[("access-log", ACCESS_LOG_SEED)],
        Some("native-json-log"),
        Verify::LogLine,
    );
    s.access_log = Some(wasm_log_printer());
    setups.push(s);

    let mut s = wasm_setup(
        "all-wasm",
        "peer-metadata + deny (seed) + metrics (seed) + access-log (seed) in one chain; the load sends a reviews-v3 x-envoy-peer-metadata header, which peer-metadata strips and does not trust (no mTLS)",
        &[("peer-metadata", PEER), ("deny", DENY_SEED), ("metrics", METRICS_SEED), ("access-log", ACCESS_LOG_SEED)],
        Some("native-rbac-log"),
        Verify::LogLine,
    );
    s.access_log = Some(wasm_log_printer());
    let all_wasm_headers: Vec<(String, String)> = vec![
        ("x-envoy-peer-metadata".into(), peer::reviews_v3_header()),
        (
            "x-envoy-peer-metadata-id".into(),
            "sidecar~10.0.0.2~reviews-v3-bench.default~default.svc.cluster.local".into(),
        ),
    ];
    s.headers = all_wasm_headers.clone();
    setups.push(s);

    let mut s = base(
        "mixer",
        Kind::Wasm,
        "mixer.wasm alone with all-wasm's configurations merged into one document: the same work as all-wasm in one filter, the components sharing the request's attributes",
    );
    s.native = Some("native-rbac-log");
    s.verify = Verify::LogLine;
    set_parts(&mut s, mixer_parts(inputs, &[DENY_SEED, METRICS_SEED, ACCESS_LOG_SEED]));
    s.access_log = Some(wasm_log_printer());
    s.headers = all_wasm_headers.clone();
    setups.push(s);

    let mut s = base(
        "rbac-seed",
        Kind::Native,
        "Envoy RBAC (action DENY) with a CEL condition making the seed's decision on listener metadata labels and x-source-* headers; no headers sent, so the condition fails and the request passes",
    );
    s.filters = vec![rbac_seed_filter()];
    s.verify = Verify::Stat("rbac");
    setups.push(s);

    let mut s = base("rbac-match", Kind::Native, "the same RBAC filter; the load sends the x-source-* headers: the condition matches and every request is denied 403");
    s.filters = vec![rbac_seed_filter()];
    s.headers = source_headers();
    s.expect_status = 403;
    s.verify = Verify::Stat("rbac");
    setups.push(s);

    let mut s = base(
        "native-json-log",
        Kind::Native,
        "Envoy's file access logger with a json_format of the seed logentry's fields",
    );
    s.access_log = Some(native_json_log());
    s.verify = Verify::LogLine;
    setups.push(s);

    let mut s = base(
        "native-rbac-log",
        Kind::Native,
        "rbac-seed and native-json-log together (the native counterpart of all-wasm's policy and logging)",
    );
    s.filters = vec![rbac_seed_filter()];
    s.access_log = Some(native_json_log());
    s.verify = Verify::LogLine;
    setups.push(s);

    let mut s = base(
        "lua",
        Kind::Lua,
        "a small Lua filter (envoy_on_request reading two headers, denying reviews-v3); headers not sent, so it passes",
    );
    s.filters = vec![json!({
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": LUA_SOURCE}
        }
    })];
    setups.push(s);

    // Two sidecars over mTLS.
    let mut s = base(
        "mesh-bare",
        Kind::Baseline,
        "two sidecars, no filters: a reviews-v2 client sidecar (outbound) originating Istio mTLS (SPIFFE certificates) to the ratings-v1 server sidecar (inbound, direct response); CPU is both Envoys'",
    );
    s.client = Some(ClientSide { filters: Vec::new(), access_log: None });
    setups.push(s);
    let mut s = base(
        "mesh-peer",
        Kind::Wasm,
        "calibration: mesh-bare with only peer-metadata on both sidecars (the client announces itself, the server verifies the claim against the certificate): the metadata exchange's share of mesh-wasm",
    );
    s.baseline = "mesh-bare";
    s.diagnostic = true;
    s.verify = Verify::Stat("result=.=verified;.;wasmixer_peer_metadata_total");
    with_sides(
        &mut s,
        wasm_parts(inputs, &[("peer-metadata", PEER)]),
        wasm_parts(inputs, &[("peer-metadata", PEER)]),
        Logs::None,
    );
    setups.push(s);
    let mut s = base(
        "mesh-wasm",
        Kind::Wasm,
        "mesh-bare with the filters on both sidecars: client peer-metadata + metrics + access-log, server peer-metadata + deny + metrics + access-log (seed configurations); the peer is verified over mTLS, so the seed rule evaluates in full (reviews-v2: no match, allowed, not counted)",
    );
    s.baseline = "mesh-bare";
    // The peer's claim verified against its certificate: the seed rule then has source.labels.
    s.verify = Verify::Stat("result=.=verified;.;wasmixer_peer_metadata_total");
    with_sides(
        &mut s,
        wasm_parts(inputs, &[("peer-metadata", PEER), ("metrics", METRICS_SEED), ("access-log", ACCESS_LOG_SEED)]),
        wasm_parts(
            inputs,
            &[("peer-metadata", PEER), ("deny", DENY_SEED), ("metrics", METRICS_SEED), ("access-log", ACCESS_LOG_SEED)],
        ),
        Logs::Printed,
    );
    setups.push(s);
    let mut s = base(
        "mesh-mixer",
        Kind::Wasm,
        "mesh-wasm's work with mixer.wasm alone on each sidecar (client: metrics + access-log configurations merged; server: deny + metrics + access-log merged)",
    );
    s.baseline = "mesh-bare";
    s.verify = Verify::Stat("result=.=verified;.;wasmixer_peer_metadata_total");
    with_sides(
        &mut s,
        mixer_parts(inputs, &[METRICS_SEED, ACCESS_LOG_SEED]),
        mixer_parts(inputs, &[DENY_SEED, METRICS_SEED, ACCESS_LOG_SEED]),
        Logs::Printed,
    );
    setups.push(s);

    setups
}

/// A two-sidecar setup's filters: `client` on the client sidecar, `server` on the measured one,
/// each side's access log printed; or why the setup cannot run.
/// Whether both sidecars of a two-sidecar setup print the access-log filter's lines.
enum Logs {
    None,
    Printed,
}

fn with_sides(s: &mut Setup, client: Result<WasmParts, String>, server: Result<WasmParts, String>, logs: Logs) {
    match (client, server) {
        (Ok(client), Ok(server)) => {
            let printer = || match logs {
                Logs::None => None,
                Logs::Printed => Some(wasm_log_printer()),
            };
            s.client = Some(ClientSide { filters: client.filters, access_log: printer() });
            s.access_log = printer();
            set_parts(s, Ok(server));
        }
        (Err(e), _) | (_, Err(e)) => s.unavailable = Some(e),
    }
}

/// The node: a `ratings-v1` pod in `default`, as Istio's injector describes it.
fn node() -> Value {
    json!({
        "id": "sidecar~127.0.0.1~ratings-v1-bench.default~default.svc.cluster.local",
        "cluster": "ratings.default",
        "metadata": {
            "NAME": "ratings-v1-bench",
            "NAMESPACE": "default",
            "WORKLOAD_NAME": "ratings-v1",
            "SERVICE_ACCOUNT": "bookinfo-ratings",
            "LABELS": {"app": "ratings", "version": "v1"},
            "OWNER": "kubernetes://apis/apps/v1/namespaces/default/deployments/ratings-v1",
            "CLUSTER_ID": "Kubernetes",
            "MESH_ID": "cluster.local",
            "ISTIO_VERSION": "1.4.10-wasmixer"
        }
    })
}

pub struct Ports {
    pub listener: u16,
    pub admin: u16,
    /// The backend's port (`--upstream`), or direct responses.
    pub upstream: Option<u16>,
}

/// Which Envoy of a setup a file or bootstrap belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The one Envoy of a single-hop setup, or the server sidecar of a two-sidecar one.
    Server,
    /// The client sidecar of a two-sidecar setup (the Envoy the load hits).
    Client,
}

/// The access log file of one of a setup's Envoys.
pub fn access_log_path(dir: &Path, setup: &Setup, role: Role) -> PathBuf {
    match role {
        Role::Server => dir.join(format!("{}.access.log", setup.name)),
        Role::Client => dir.join(format!("{}.client.access.log", setup.name)),
    }
}

fn router() -> Value {
    json!({"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
}

/// An HTTP connection manager (stat prefix `ingress` on every Envoy, so the request counter
/// has one name) with `filters`, one route and an optional file access logger.
fn hcm(filters: &[Value], route: Value, access_log: Option<(&LogFormat, PathBuf)>) -> Value {
    let mut filters = filters.to_vec();
    filters.push(router());
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "codec_type": "AUTO",
        "route_config": {"name": "local", "virtual_hosts": [{"name": "local", "domains": ["*"], "routes": [route]}]},
        "http_filters": filters
    });
    if let Some((format, path)) = access_log {
        let (log_format, condition) = match format {
            LogFormat::Json(j) => (json!({"json_format": j}), None),
            LogFormat::Text(t) => (json!({"text_format_source": {"inline_string": t}}), None),
            LogFormat::TextIf(t, c) => (json!({"text_format_source": {"inline_string": t}}), Some(c)),
        };
        let mut logger = json!({
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": path.to_string_lossy(),
                "log_format": log_format
            }
        });
        if let Some(expression) = condition {
            logger["filter"] = json!({"extension_filter": {
                "name": "envoy.access_loggers.extension_filters.cel",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter", "expression": expression}
            }});
        }
        hcm["access_log"] = json!([logger]);
    }
    hcm
}

fn stats_config(tags: &[String]) -> Value {
    let stats_tags: Vec<Value> =
        tags.iter().map(|t| json!({"tag_name": t, "regex": format!(r"({t}=\.=(.*?);\.;)")})).collect();
    json!({"stats_tags": stats_tags})
}

fn admin(port: u16) -> Value {
    json!({"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}})
}

fn address(port: u16) -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": port}})
}

fn direct_response() -> Value {
    json!({"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}})
}

/// The Envoy bootstraps (JSON) of `setup`, the one the load hits first: for a single hop, the
/// server sidecar; for two sidecars, `[client, server]` (`ports` has one entry per Envoy, in
/// that order; `pki` is needed for two sidecars).
pub fn bootstraps(
    setup: &Setup,
    ports: &[Ports],
    dir: &Path,
    pki: Option<&crate::mesh::Pki>,
) -> Result<Vec<Value>, String> {
    let port = |i: usize| ports.get(i).ok_or_else(|| "missing ports".to_string());
    let log = |role: Role, format: &Option<LogFormat>| -> Option<(LogFormat, PathBuf)> {
        format.clone().map(|f| (f, access_log_path(dir, setup, role)))
    };
    let Some(client) = &setup.client else {
        // One hop: the inbound sidecar answering itself (or forwarding to the backend).
        let p = port(0)?;
        let route = match p.upstream {
            Some(_) => json!({"match": {"prefix": "/"}, "route": {"cluster": "inbound|9080||"}}),
            None => direct_response(),
        };
        let server_log = log(Role::Server, &setup.access_log);
        let clusters = match p.upstream {
            Some(up) => json!([{
                "name": "inbound|9080||",
                "connect_timeout": "2s",
                "type": "STATIC",
                "load_assignment": {"cluster_name": "inbound|9080||", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address(up)}}]}]}
            }]),
            None => json!([]),
        };
        return Ok(vec![json!({
            "node": node(),
            "stats_config": stats_config(&setup.stats_tags),
            "admin": admin(p.admin),
            "static_resources": {
                "listeners": [{
                    "name": "virtualInbound",
                    "traffic_direction": "INBOUND",
                    "enable_reuse_port": false,
                    // The workload's labels where the RBAC filter's CEL can read them.
                    "metadata": {"filter_metadata": {"istio": {"labels": {"app": "ratings", "version": "v1"}}}},
                    "address": address(p.listener),
                    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm(&setup.filters, route, server_log.as_ref().map(|(f, p)| (f, p.clone())))}]}]
                }],
                "clusters": clusters
            }
        })]);
    };
    let pki = pki.ok_or_else(|| "two sidecars need certificates".to_string())?;
    let (cp, sp) = (port(0)?, port(1)?);
    let client_log = log(Role::Client, &client.access_log);
    let server_log = log(Role::Server, &setup.access_log);
    let client_route = json!({"match": {"prefix": "/"}, "route": {"cluster": crate::mesh::SERVER_CLUSTER}});
    let client_bootstrap = json!({
        "node": crate::mesh::client_node(),
        "stats_config": stats_config(&setup.stats_tags),
        "admin": admin(cp.admin),
        "static_resources": {
            "listeners": [{
                "name": "virtualOutbound",
                "traffic_direction": "OUTBOUND",
                "enable_reuse_port": false,
                "address": address(cp.listener),
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm(&client.filters, client_route, client_log.as_ref().map(|(f, p)| (f, p.clone())))}]}]
            }],
            "clusters": [crate::mesh::server_cluster(sp.listener, &pki.client)]
        }
    });
    let server_bootstrap = json!({
        "node": node(),
        "stats_config": stats_config(&setup.stats_tags),
        "admin": admin(sp.admin),
        "static_resources": {
            "listeners": [{
                "name": "virtualInbound",
                "traffic_direction": "INBOUND",
                "enable_reuse_port": false,
                "address": address(sp.listener),
                "filter_chains": [{
                    "transport_socket": crate::mesh::server_transport(&pki.server),
                    "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm(&setup.filters, direct_response(), server_log.as_ref().map(|(f, p)| (f, p.clone())))}]
                }]
            }],
            "clusters": []
        }
    });
    Ok(vec![client_bootstrap, server_bootstrap])
}

/// The trivial backend for `--upstream`: an Envoy answering every request with 200 itself.
pub fn backend_bootstrap(listener: u16, admin_port: u16) -> Value {
    json!({
        "admin": admin(admin_port),
        "static_resources": {
            "listeners": [{
                "name": "backend",
                "enable_reuse_port": false,
                "address": address(listener),
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm(&[], direct_response(), None)}]}]
            }],
            "clusters": []
        }
    })
}
