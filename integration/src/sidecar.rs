//! Sidecar bootstraps: a stock Envoy in front of one workload, shaped like an Istio sidecar.
//! An inbound listener (`traffic_direction: INBOUND`) serves the workload's port and forwards to
//! the application through the cluster `inbound|<port>|http|<host>`; an outbound listener
//! (`OUTBOUND`) takes the application's calls and routes them by `Host` to clusters
//! `outbound|<port>||<host>` pointing at the destination sidecars. Node metadata is what
//! Istio's proxies carry, so the filters see the same identity as in a real mesh.

use std::path::Path;

use crate::bootstrap::{http_filters, json_string};
use crate::pki::WorkloadCert;

/// A workload's identity.
#[derive(Clone, Debug)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub service_account: String,
    /// `(key, value)` pod labels, e.g. `app`, `version`.
    pub labels: Vec<(String, String)>,
}

impl Workload {
    /// `app` / `version` workload `name-version` in `namespace`, with service account `sa`.
    pub fn new(app: &str, version: &str, namespace: &str, sa: &str) -> Workload {
        Workload {
            name: format!("{app}-{version}"),
            namespace: namespace.to_string(),
            service_account: sa.to_string(),
            labels: vec![("app".into(), app.into()), ("version".into(), version.into())],
        }
    }

    /// The pod name Istio would show (`<workload>-<hash>`).
    pub fn pod_name(&self) -> String {
        format!("{}-0", self.name)
    }

    /// Node metadata as Istio's proxies carry it (one-line JSON).
    pub fn node_metadata_json(&self) -> String {
        let labels: Vec<String> =
            self.labels.iter().map(|(k, v)| format!("{}:{}", json_string(k), json_string(v))).collect();
        format!(
            "{{\"NAME\":{},\"NAMESPACE\":{},\"WORKLOAD_NAME\":{},\"SERVICE_ACCOUNT\":{},\"LABELS\":{{{}}},\"OWNER\":{},\"CLUSTER_ID\":\"Kubernetes\",\"MESH_ID\":\"cluster.local\",\"ISTIO_VERSION\":\"1.4.10-wasmixer\"}}",
            json_string(&self.pod_name()),
            json_string(&self.namespace),
            json_string(&self.name),
            json_string(&self.service_account),
            labels.join(","),
            json_string(&format!("kubernetes://apis/apps/v1/namespaces/{}/deployments/{}", self.namespace, self.name)),
        )
    }
}

/// How the inbound listener treats TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundTls {
    /// Plain text only (no certificate).
    Disabled,
    /// mTLS and plain text both accepted (Istio's PERMISSIVE).
    Permissive,
    /// Only mTLS (Istio's STRICT).
    Strict,
}

/// An outbound route: requests with `Host: <host>` (any port) go to `address:port`.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// Service host, e.g. `ratings.default.svc.cluster.local`; short names also route.
    pub host: String,
    pub service_port: u16,
    pub address: String,
    pub port: u16,
    /// Originate Istio mTLS to this upstream.
    pub mtls: bool,
}

/// Everything that makes one sidecar's bootstrap.
pub struct SidecarSpec<'a> {
    pub workload: &'a Workload,
    /// The service host this workload serves (`ratings.default.svc.cluster.local`).
    pub service_host: String,
    pub service_port: u16,
    pub inbound_port: u16,
    pub outbound_port: u16,
    pub app_port: u16,
    pub inbound_tls: InboundTls,
    pub cert: Option<&'a WorkloadCert>,
    pub ca_cert: Option<&'a Path>,
    pub upstreams: Vec<Upstream>,
    /// HTTP filters (one-line JSON entries, e.g. from `bootstrap::wasm_filter`) on each side.
    pub inbound_filters: Vec<String>,
    pub outbound_filters: Vec<String>,
    /// Tag names encoded in Wasm stat names (e.g. the metrics filter's label names); the
    /// wasmixer self-metric tags (`rule`, `result`, `direction`) are always added.
    pub stats_tags: Vec<String>,
}

/// Optional settings of [`SidecarSpec::bootstrap_with`]; the defaults give [`SidecarSpec::bootstrap`].
#[derive(Clone, Debug, Default)]
pub struct SidecarOptions {
    /// The workload's loopback address (e.g. `127.10.0.3`): listeners and admin bind it, the
    /// node id carries it, and upstream connections leave from it (so `source.ip` differs per
    /// workload). Default `127.0.0.1`.
    pub ip: Option<String>,
    /// The application's address for the `inbound|...` cluster. Default `127.0.0.1`.
    pub app_ip: Option<String>,
    /// Envoy's native Zipkin tracer in both connection managers.
    pub tracing: Option<Tracing>,
    /// A file that receives the lines the access-log filter leaves in filter state
    /// `wasm.wasmixer_log_stdout` (Envoy's file access logger, skipping requests without a line).
    pub access_log_path: Option<std::path::PathBuf>,
    /// The admin port. Default 0 (any free port), which can be one a listener is about to
    /// bind when listeners come later (LDS); the mesh picks it with the listeners' ports.
    pub admin_port: Option<u16>,
}

/// An HCM `access_log` entry printing the access-log filter's lines (filter state
/// `wasm.<key>`) to `path`, and nothing for requests without a line.
pub fn filter_state_access_log(key: &str, path: &Path) -> String {
    format!(
        r#"{{"name":"envoy.access_loggers.file","filter":{{"extension_filter":{{"name":"envoy.access_loggers.extension_filters.cel","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter","expression":{}}}}}}},"typed_config":{{"@type":"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog","path":{},"log_format":{{"text_format_source":{{"inline_string":{}}}}}}}}}"#,
        json_string(&format!("'wasm.{key}' in filter_state")),
        json_string(&path.to_string_lossy()),
        json_string(&format!("%FILTER_STATE(wasm.{key}:PLAIN)%\n")),
    )
}

/// Envoy's Zipkin tracer (`envoy.tracers.zipkin`, JSON v2 to `collector`), as Istio configures it.
#[derive(Clone, Debug)]
pub struct Tracing {
    /// The collector (`POST /api/v2/spans`), reached through the static cluster `zipkin`.
    pub collector: std::net::SocketAddr,
    /// Percentage of requests without a sampling decision that start a trace (Istio: 1.0).
    pub sampling_percent: f64,
    /// Flush spans after this many milliseconds (Envoy's default is 5000) or this many spans.
    pub flush_interval_ms: u32,
    pub min_flush_spans: u32,
}

impl Tracing {
    /// Istio's default: 1% sampling.
    pub fn istio_default(collector: std::net::SocketAddr) -> Tracing {
        Tracing { collector, sampling_percent: 1.0, flush_interval_ms: 1000, min_flush_spans: 5 }
    }

    /// Every request traced, spans flushed quickly (tests).
    pub fn always(collector: std::net::SocketAddr) -> Tracing {
        Tracing { collector, sampling_percent: 100.0, flush_interval_ms: 200, min_flush_spans: 1 }
    }

    /// The `tracing` object of an `HttpConnectionManager`.
    pub fn hcm_json(&self) -> String {
        format!(
            r#"{{"random_sampling":{{"value":{}}},"provider":{{"name":"envoy.tracers.zipkin","typed_config":{{"@type":"type.googleapis.com/envoy.config.trace.v3.ZipkinConfig","collector_cluster":"zipkin","collector_endpoint":"/api/v2/spans","collector_endpoint_version":"HTTP_JSON","trace_id_128bit":true,"shared_span_context":false}}}}}}"#,
            self.sampling_percent
        )
    }
}

/// Envoy `stats_tags` entries (one-line JSON each) turning `tag=.=value;.;` chunks into labels.
pub fn stats_tags(extra: &[String]) -> Vec<String> {
    // wasmixer's own metrics' tags (`wasmixer_policy_checks_total{rule,result}`, ...).
    let mut names: Vec<&str> = wasmixer_engine::self_metrics::tag_names();
    for t in extra {
        if !names.contains(&t.as_str()) {
            names.push(t);
        }
    }
    names
        .iter()
        .map(|t| {
            format!(r#"{{"tag_name":{},"regex":{}}}"#, json_string(t), json_string(&format!(r"({t}=\.=(.*?);\.;)")))
        })
        .collect()
}

fn tls_context(cert: &WorkloadCert, ca: &Path) -> String {
    format!(
        r#"{{"tls_certificates":[{{"certificate_chain":{{"filename":{}}},"private_key":{{"filename":{}}}}}],"validation_context":{{"trusted_ca":{{"filename":{}}}}},"alpn_protocols":["istio-peer-exchange","h2","http/1.1"]}}"#,
        json_string(&cert.cert.to_string_lossy()),
        json_string(&cert.key.to_string_lossy()),
        json_string(&ca.to_string_lossy()),
    )
}

fn hcm(
    stat_prefix: &str,
    routes: &str,
    filters: &[String],
    tracing: Option<&Tracing>,
    access_log: Option<&Path>,
) -> String {
    let mut tracing = tracing.map(|t| format!(r#","tracing":{}"#, t.hcm_json())).unwrap_or_default();
    if let Some(path) = access_log {
        tracing.push_str(&format!(r#","access_log":[{}]"#, filter_state_access_log("wasmixer_log_stdout", path)));
    }
    format!(
        r#"{{"name":"envoy.filters.network.http_connection_manager","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager","stat_prefix":{},"codec_type":"AUTO"{tracing},"route_config":{{"name":{},"virtual_hosts":{routes}}},"http_filters":{}}}}}"#,
        json_string(stat_prefix),
        json_string(stat_prefix),
        http_filters(filters),
    )
}

fn cluster(name: &str, address: &str, port: u16, tls: Option<String>) -> String {
    cluster_endpoints(name, &[(address, port)], tls)
}

/// A STATIC cluster with `endpoints` (round robin, Envoy's default policy).
fn cluster_endpoints(name: &str, endpoints: &[(&str, u16)], tls: Option<String>) -> String {
    let lb_endpoints: Vec<String> = endpoints
        .iter()
        .map(|(address, port)| {
            format!(
                r#"{{"endpoint":{{"address":{{"socket_address":{{"address":{},"port_value":{port}}}}}}}}}"#,
                json_string(address)
            )
        })
        .collect();
    let transport = tls
        .map(|ctx| format!(r#","transport_socket":{{"name":"envoy.transport_sockets.tls","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext","common_tls_context":{ctx}}}}}"#))
        .unwrap_or_default();
    format!(
        r#"{{"name":{n},"connect_timeout":"2s","type":"STATIC","load_assignment":{{"cluster_name":{n},"endpoints":[{{"lb_endpoints":[{eps}]}}]}}{transport}}}"#,
        n = json_string(name),
        eps = lb_endpoints.join(","),
    )
}

/// Service host of bookinfo's `ratings` (the server side of most two-sidecar tests).
pub const RATINGS_HOST: &str = "ratings.default.svc.cluster.local";
/// Service host of bookinfo's `reviews` (their client side).
pub const REVIEWS_HOST: &str = "reviews.default.svc.cluster.local";

/// The two sidecars of bookinfo's reviews -> ratings call, before the test picks their filters
/// (set `inbound_filters` / `outbound_filters` / `stats_tags` with struct update syntax).
impl<'a> SidecarSpec<'a> {
    /// The `ratings` sidecar: inbound on `ports[0]` in front of the app on `app_port`, outbound
    /// on `ports[1]`.
    pub fn bookinfo_ratings(
        workload: &'a Workload,
        cert: &'a WorkloadCert,
        ca_cert: &'a Path,
        inbound_tls: InboundTls,
        ports: [u16; 2],
        app_port: u16,
    ) -> SidecarSpec<'a> {
        SidecarSpec::bookinfo(workload, cert, ca_cert, inbound_tls, ports, RATINGS_HOST, app_port, vec![])
    }

    /// A `reviews` sidecar (inbound on `ports[0]`, outbound on `ports[1]`) whose outbound
    /// listener sends `ratings` requests, with Istio mTLS, to the ratings sidecar's inbound
    /// port `ratings_inbound_port`.
    pub fn bookinfo_reviews(
        workload: &'a Workload,
        cert: &'a WorkloadCert,
        ca_cert: &'a Path,
        inbound_tls: InboundTls,
        ports: [u16; 2],
        ratings_inbound_port: u16,
    ) -> SidecarSpec<'a> {
        let ratings = Upstream {
            host: RATINGS_HOST.into(),
            service_port: 9080,
            address: "127.0.0.1".into(),
            port: ratings_inbound_port,
            mtls: true,
        };
        SidecarSpec::bookinfo(workload, cert, ca_cert, inbound_tls, ports, REVIEWS_HOST, 1, vec![ratings])
    }

    #[allow(clippy::too_many_arguments)]
    fn bookinfo(
        workload: &'a Workload,
        cert: &'a WorkloadCert,
        ca_cert: &'a Path,
        inbound_tls: InboundTls,
        ports: [u16; 2],
        service_host: &str,
        app_port: u16,
        upstreams: Vec<Upstream>,
    ) -> SidecarSpec<'a> {
        SidecarSpec {
            workload,
            service_host: service_host.into(),
            service_port: 9080,
            inbound_port: ports[0],
            outbound_port: ports[1],
            app_port,
            inbound_tls,
            cert: Some(cert),
            ca_cert: Some(ca_cert),
            upstreams,
            inbound_filters: vec![],
            outbound_filters: vec![],
            stats_tags: vec![],
        }
    }
}

impl SidecarSpec<'_> {
    pub fn inbound_cluster(&self) -> String {
        format!("inbound|{}|http|{}", self.service_port, self.service_host)
    }

    /// The bootstrap (JSON, which Envoy reads as YAML).
    pub fn bootstrap(&self) -> String {
        self.bootstrap_with(&SidecarOptions::default())
    }

    /// The upstreams grouped by service (`host`, `service_port`), in first-seen order: several
    /// [`Upstream`]s naming one service become one cluster with one endpoint each (round robin),
    /// e.g. `reviews` v1/v2/v3. mTLS origination is the group's first entry's.
    pub fn upstream_groups(&self) -> Vec<Vec<&Upstream>> {
        let mut groups: Vec<Vec<&Upstream>> = Vec::new();
        for u in &self.upstreams {
            match groups
                .iter_mut()
                .find(|g| g.first().is_some_and(|f| f.host == u.host && f.service_port == u.service_port))
            {
                Some(g) => g.push(u),
                None => groups.push(vec![u]),
            }
        }
        groups
    }

    /// The bootstrap with `options` (JSON, which Envoy reads as YAML).
    pub fn bootstrap_with(&self, options: &SidecarOptions) -> String {
        let w = self.workload;
        let ip = options.ip.as_deref().unwrap_or("127.0.0.1");
        let app_ip = options.app_ip.as_deref().unwrap_or("127.0.0.1");
        let tracing = options.tracing.as_ref();
        let node_id = format!("sidecar~{ip}~{}.{}~{}.svc.cluster.local", w.pod_name(), w.namespace, w.namespace);
        let inbound_routes = format!(
            r#"[{{"name":"inbound","domains":["*"],"routes":[{{"match":{{"prefix":"/"}},"route":{{"cluster":{}}}}}]}}]"#,
            json_string(&self.inbound_cluster())
        );
        let access_log = options.access_log_path.as_deref();
        let inbound_hcm = hcm("inbound", &inbound_routes, &self.inbound_filters, tracing, access_log);
        let tls = match (self.cert, self.ca_cert) {
            (Some(c), Some(ca)) => Some(tls_context(c, ca)),
            _ => None,
        };
        let tls_chain = tls.as_ref().map(|ctx| {
            format!(
                r#"{{"filter_chain_match":{{"transport_protocol":"tls"}},"transport_socket":{{"name":"envoy.transport_sockets.tls","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext","require_client_certificate":true,"common_tls_context":{ctx}}}}},"filters":[{inbound_hcm}]}}"#
            )
        });
        let plain_chain =
            format!(r#"{{"filter_chain_match":{{"transport_protocol":"raw_buffer"}},"filters":[{inbound_hcm}]}}"#);
        let chains = match (self.inbound_tls, tls_chain) {
            (InboundTls::Strict, Some(t)) => t,
            (InboundTls::Permissive, Some(t)) => format!("{t},{plain_chain}"),
            _ => plain_chain,
        };
        let groups = self.upstream_groups();
        let outbound_vhosts: Vec<String> = groups
            .iter()
            .filter_map(|g| g.first().copied())
            .map(|u| {
                let short = u.host.split('.').next().unwrap_or(&u.host).to_string();
                let namespace = u.host.split('.').nth(1).unwrap_or("");
                let with_ns = u.host.split('.').take(2).collect::<Vec<_>>().join(".");
                // As in Kubernetes DNS, the short name means the service of the client's own
                // namespace (and `httpbin` in foo and in bar must not both claim it).
                let mut names = vec![u.host.clone()];
                if namespace.is_empty() || namespace == w.namespace {
                    names.push(short);
                }
                names.push(with_ns);
                names.dedup();
                let domains: Vec<String> = names
                    .iter()
                    .flat_map(|n| [json_string(n), json_string(&format!("{n}:{}", u.service_port))])
                    .collect();
                format!(
                    r#"{{"name":{},"domains":[{}],"routes":[{{"match":{{"prefix":"/"}},"route":{{"cluster":{}}}}}]}}"#,
                    json_string(&u.host),
                    domains.join(","),
                    json_string(&format!("outbound|{}||{}", u.service_port, u.host)),
                )
            })
            .collect();
        let outbound_routes = format!("[{}]", outbound_vhosts.join(","));
        let outbound_hcm = hcm("outbound", &outbound_routes, &self.outbound_filters, tracing, access_log);
        let mut clusters = vec![cluster(&self.inbound_cluster(), app_ip, self.app_port, None)];
        for g in &groups {
            let Some(u) = g.first() else { continue };
            let ctx = if u.mtls { tls.clone() } else { None };
            let endpoints: Vec<(&str, u16)> = g.iter().map(|e| (e.address.as_str(), e.port)).collect();
            clusters.push(cluster_endpoints(&format!("outbound|{}||{}", u.service_port, u.host), &endpoints, ctx));
        }
        let mut extra = String::new();
        if let Some(t) = tracing {
            clusters.push(cluster("zipkin", &t.collector.ip().to_string(), t.collector.port(), None));
            extra.push_str(&format!(
                r#","layered_runtime":{{"layers":[{{"name":"static","static_layer":{{"tracing.zipkin.min_flush_spans":{},"tracing.zipkin.flush_interval_ms":{}}}}}]}}"#,
                t.min_flush_spans, t.flush_interval_ms
            ));
        }
        if options.ip.is_some() {
            // Upstream connections leave from the workload's own address.
            extra.push_str(&format!(
                r#","cluster_manager":{{"upstream_bind_config":{{"source_address":{{"address":{},"port_value":0}}}}}}"#,
                json_string(ip)
            ));
        }
        let stats = format!(r#","stats_config":{{"stats_tags":[{}]}}{extra}"#, stats_tags(&self.stats_tags).join(","));
        format!(
            r#"{{"node":{{"id":{node_id},"cluster":{cl},"metadata":{meta}}},"admin":{{"address":{{"socket_address":{{"address":{ip},"port_value":{admin_port}}}}}}}{stats},"static_resources":{{"listeners":[{{"name":"inbound","traffic_direction":"INBOUND","address":{{"socket_address":{{"address":{ip},"port_value":{ip_port}}}}},"listener_filters":[{{"name":"envoy.filters.listener.tls_inspector","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}}}],"filter_chains":[{chains}]}},{{"name":"outbound","traffic_direction":"OUTBOUND","address":{{"socket_address":{{"address":{ip},"port_value":{op}}}}},"filter_chains":[{{"filters":[{outbound_hcm}]}}]}}],"clusters":[{clusters}]}}}}"#,
            node_id = json_string(&node_id),
            cl = json_string(&format!("{}.{}", w.name, w.namespace)),
            meta = w.node_metadata_json(),
            ip = json_string(ip),
            ip_port = self.inbound_port,
            op = self.outbound_port,
            admin_port = options.admin_port.unwrap_or(0),
            clusters = clusters.join(","),
        )
    }
}
