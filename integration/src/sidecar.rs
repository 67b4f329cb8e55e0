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
        let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{}:{}", json_string(k), json_string(v))).collect();
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

/// Tags of wasmixer's own metrics (`wasmixer_policy_checks_total{rule,result}`, ...).
pub const SELF_METRIC_TAGS: [&str; 3] = ["rule", "result", "direction"];

/// Envoy `stats_tags` entries (one-line JSON each) turning `tag=.=value;.;` chunks into labels.
pub fn stats_tags(extra: &[String]) -> Vec<String> {
    let mut names: Vec<&str> = SELF_METRIC_TAGS.to_vec();
    for t in extra {
        if !names.contains(&t.as_str()) {
            names.push(t);
        }
    }
    names
        .iter()
        .map(|t| format!(r#"{{"tag_name":{},"regex":{}}}"#, json_string(t), json_string(&format!(r"({t}=\.=(.*?);\.;)"))))
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

fn hcm(stat_prefix: &str, routes: &str, filters: &[String]) -> String {
    format!(
        r#"{{"name":"envoy.filters.network.http_connection_manager","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager","stat_prefix":{},"codec_type":"AUTO","route_config":{{"name":{},"virtual_hosts":{routes}}},"http_filters":{}}}}}"#,
        json_string(stat_prefix),
        json_string(stat_prefix),
        http_filters(filters),
    )
}

fn cluster(name: &str, address: &str, port: u16, tls: Option<String>) -> String {
    let transport = tls
        .map(|ctx| format!(r#","transport_socket":{{"name":"envoy.transport_sockets.tls","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext","common_tls_context":{ctx}}}}}"#))
        .unwrap_or_default();
    format!(
        r#"{{"name":{n},"connect_timeout":"2s","type":"STATIC","load_assignment":{{"cluster_name":{n},"endpoints":[{{"lb_endpoints":[{{"endpoint":{{"address":{{"socket_address":{{"address":{a},"port_value":{port}}}}}}}}}]}}]}}{transport}}}"#,
        n = json_string(name),
        a = json_string(address),
    )
}

impl SidecarSpec<'_> {
    pub fn inbound_cluster(&self) -> String {
        format!("inbound|{}|http|{}", self.service_port, self.service_host)
    }

    /// The bootstrap (JSON, which Envoy reads as YAML).
    pub fn bootstrap(&self) -> String {
        let w = self.workload;
        let ip = "127.0.0.1";
        let node_id = format!("sidecar~{ip}~{}.{}~{}.svc.cluster.local", w.pod_name(), w.namespace, w.namespace);
        let inbound_routes = format!(
            r#"[{{"name":"inbound","domains":["*"],"routes":[{{"match":{{"prefix":"/"}},"route":{{"cluster":{}}}}}]}}]"#,
            json_string(&self.inbound_cluster())
        );
        let inbound_hcm = hcm("inbound", &inbound_routes, &self.inbound_filters);
        let tls = match (self.cert, self.ca_cert) {
            (Some(c), Some(ca)) => Some(tls_context(c, ca)),
            _ => None,
        };
        let tls_chain = tls.as_ref().map(|ctx| {
            format!(
                r#"{{"filter_chain_match":{{"transport_protocol":"tls"}},"transport_socket":{{"name":"envoy.transport_sockets.tls","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext","require_client_certificate":true,"common_tls_context":{ctx}}}}},"filters":[{inbound_hcm}]}}"#
            )
        });
        let plain_chain = format!(r#"{{"filter_chain_match":{{"transport_protocol":"raw_buffer"}},"filters":[{inbound_hcm}]}}"#);
        let chains = match (self.inbound_tls, tls_chain) {
            (InboundTls::Strict, Some(t)) => t,
            (InboundTls::Permissive, Some(t)) => format!("{t},{plain_chain}"),
            _ => plain_chain,
        };
        let outbound_vhosts: Vec<String> = self
            .upstreams
            .iter()
            .map(|u| {
                let short = u.host.split('.').next().unwrap_or(&u.host).to_string();
                let with_ns = u.host.split('.').take(2).collect::<Vec<_>>().join(".");
                let mut names = vec![u.host.clone(), short, with_ns];
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
        let outbound_hcm = hcm("outbound", &outbound_routes, &self.outbound_filters);
        let mut clusters = vec![cluster(&self.inbound_cluster(), ip, self.app_port, None)];
        for u in &self.upstreams {
            let ctx = if u.mtls { tls.clone() } else { None };
            clusters.push(cluster(&format!("outbound|{}||{}", u.service_port, u.host), &u.address, u.port, ctx));
        }
        let stats = format!(r#","stats_config":{{"stats_tags":[{}]}}"#, stats_tags(&self.stats_tags).join(","));
        format!(
            r#"{{"node":{{"id":{node_id},"cluster":{cl},"metadata":{meta}}},"admin":{{"address":{{"socket_address":{{"address":"127.0.0.1","port_value":0}}}}}}{stats},"static_resources":{{"listeners":[{{"name":"inbound","traffic_direction":"INBOUND","address":{{"socket_address":{{"address":{ip},"port_value":{ip_port}}}}},"listener_filters":[{{"name":"envoy.filters.listener.tls_inspector","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}}}],"filter_chains":[{chains}]}},{{"name":"outbound","traffic_direction":"OUTBOUND","address":{{"socket_address":{{"address":{ip},"port_value":{op}}}}},"filter_chains":[{{"filters":[{outbound_hcm}]}}]}}],"clusters":[{clusters}]}}}}"#,
            node_id = json_string(&node_id),
            cl = json_string(&format!("{}.{}", w.name, w.namespace)),
            meta = w.node_metadata_json(),
            ip = json_string(ip),
            ip_port = self.inbound_port,
            op = self.outbound_port,
            clusters = clusters.join(","),
        )
    }
}
