//! The mesh's mutual-TLS settings: `wasmixer convert`'s `mesh-settings.json` (made from Istio
//! 1.4's `MeshPolicy` / `Policy` and `DestinationRule`s), resolved as Istio 1.4 did and as
//! cli/README.md ("mesh-settings.json") documents.
//!
//! Server side: for the workload labelled `app: A` in namespace N, the `service` entry of N
//! selecting A, else N's `namespace` entry, else the `mesh` entry (later entries win within a
//! scope); its port's mode, else its mode (`null`: the next scope decides). No entry: PERMISSIVE,
//! Istio 1.4's default install. Client side: a client in namespace C calling host H uses C's own
//! rules, else those of H's namespace exported to C, else those of the root namespace; in the
//! first of these with a match, the most specific host (exact, else the longest `*` suffix)
//! decides, and the client originates Istio mTLS when that rule's port mode, else its mode, is
//! `ISTIO_MUTUAL`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::sidecar::InboundTls;
use crate::HarnessError;

/// `mesh-settings.json` (schema `wasmixer/mesh-settings/v1`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TlsPolicies {
    #[serde(default)]
    root_namespace: String,
    #[serde(default)]
    servers: Vec<ServerSetting>,
    #[serde(default)]
    clients: Vec<ClientSetting>,
}

#[derive(Clone, Debug, Deserialize)]
struct ServerSetting {
    scope: String,
    namespace: Option<String>,
    workload_selector: Option<BTreeMap<String, String>>,
    mode: Option<String>,
    #[serde(default)]
    port_modes: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
struct ClientSetting {
    namespace: String,
    host: String,
    #[serde(default)]
    export_to: Vec<String>,
    mode: Option<String>,
    #[serde(default)]
    port_modes: BTreeMap<String, String>,
}

impl ServerSetting {
    fn mode_on(&self, port: u16) -> Option<&str> {
        self.port_modes.get(&port.to_string()).or(self.mode.as_ref()).map(String::as_str)
    }
}

impl ClientSetting {
    fn visible_to(&self, client_namespace: &str) -> bool {
        self.namespace == client_namespace || self.export_to.iter().any(|e| e == "*" || e == client_namespace)
    }
}

fn qualify(host: &str, namespace: &str) -> String {
    if host.contains('.') || host.starts_with('*') {
        host.to_string()
    } else {
        format!("{host}.{namespace}.svc.cluster.local")
    }
}

/// How well `pattern` matches `host`: exact beats any wildcard, longer wildcards beat shorter.
fn match_rank(pattern: &str, host: &str) -> Option<usize> {
    if pattern == host {
        return Some(usize::MAX);
    }
    if pattern == "*" {
        return Some(0);
    }
    let suffix = pattern.strip_prefix('*')?;
    host.ends_with(suffix).then_some(suffix.len())
}

fn inbound_tls(mode: &str) -> InboundTls {
    match mode {
        "STRICT" => InboundTls::Strict,
        "DISABLE" => InboundTls::Disabled,
        _ => InboundTls::Permissive,
    }
}

impl TlsPolicies {
    /// No settings: every server PERMISSIVE, no client originates.
    pub fn new() -> TlsPolicies {
        TlsPolicies::default()
    }

    /// Reads a `mesh-settings.json`.
    pub fn from_mesh_settings(json: &str) -> Result<TlsPolicies, HarnessError> {
        serde_json::from_str(json).map_err(|e| HarnessError::check(format!("mesh-settings.json: {e}")))
    }

    /// What the sidecar of the workload labelled `app: <app>` in `namespace` accepts on `port`.
    pub fn server_mode(&self, namespace: &str, app: &str, port: u16) -> InboundTls {
        let in_scope = |scope: &str| {
            self.servers.iter().rev().find(move |s| {
                s.scope == scope
                    && match scope {
                        "service" => {
                            s.namespace.as_deref() == Some(namespace)
                                && s.workload_selector.as_ref().and_then(|w| w.get("app")).map(String::as_str)
                                    == Some(app)
                        }
                        "namespace" => s.namespace.as_deref() == Some(namespace),
                        _ => true,
                    }
            })
        };
        ["service", "namespace", "mesh"]
            .into_iter()
            .find_map(|scope| in_scope(scope).and_then(|s| s.mode_on(port)))
            .map_or(InboundTls::Permissive, inbound_tls)
    }

    /// Whether a client in `client_namespace` originates Istio mTLS to `host` (a FQDN) on `port`.
    pub fn originates(&self, client_namespace: &str, host: &str, port: u16) -> bool {
        let service_namespace = host.split('.').nth(1).unwrap_or("");
        let root = if self.root_namespace.is_empty() { "istio-system" } else { self.root_namespace.as_str() };
        let best_in = |ns: &str| {
            self.clients
                .iter()
                .filter(|c| c.namespace == ns && c.visible_to(client_namespace))
                .filter_map(|c| match_rank(&qualify(&c.host, ns), host).map(|rank| (rank, c)))
                .max_by_key(|(rank, _)| *rank)
                .map(|(_, c)| c)
        };
        let rule = [client_namespace, service_namespace, root].into_iter().find_map(best_in);
        rule.and_then(|c| c.port_modes.get(&port.to_string()).or(c.mode.as_ref())).is_some_and(|m| m == "ISTIO_MUTUAL")
    }
}

/// `STRICT` / `PERMISSIVE` / `DISABLE`, as Istio names the modes.
pub fn mode_name(mode: InboundTls) -> &'static str {
    match mode {
        InboundTls::Strict => "STRICT",
        InboundTls::Permissive => "PERMISSIVE",
        InboundTls::Disabled => "DISABLE",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use wasmixer_cli::{convert, Input, Options};

    /// The mesh settings `wasmixer convert` makes of `yaml`.
    fn settings(yaml: &str) -> TlsPolicies {
        let outcome = convert(&[Input { name: "t.yaml".into(), text: yaml.into() }], &Options::default());
        assert!(!outcome.report.has_errors(), "{:?}", outcome.report);
        outcome.file("mesh-settings.json").map(|s| TlsPolicies::from_mesh_settings(s).unwrap()).unwrap_or_default()
    }

    const MESH_STRICT: &str = include_str!("../testdata/mesh-seed/mtls-meshpolicy-strict.yaml");
    const HTTPBIN: u16 = 8000;

    #[test]
    fn seed_mesh_wide() {
        assert_eq!(settings("").server_mode("foo", "httpbin", HTTPBIN), InboundTls::Permissive);
        let p = settings(MESH_STRICT);
        assert_eq!(p.server_mode("bar", "httpbin", HTTPBIN), InboundTls::Strict);
        assert!(!p.originates("foo", "httpbin.bar.svc.cluster.local", HTTPBIN));
        let p = settings(&format!("{MESH_STRICT}---\n{}", include_str!("../testdata/mesh-seed/mtls-mesh-wide.yaml")));
        for c in ["foo", "bar"] {
            for s in ["foo", "bar"] {
                assert!(p.originates(c, &format!("httpbin.{s}.svc.cluster.local"), HTTPBIN));
            }
        }
    }

    #[test]
    fn seed_namespace_and_service() {
        let p = settings(include_str!("../testdata/mesh-seed/mtls-namespace-foo.yaml"));
        assert_eq!(p.server_mode("foo", "httpbin", HTTPBIN), InboundTls::Strict);
        assert_eq!(p.server_mode("bar", "httpbin", HTTPBIN), InboundTls::Permissive);
        assert!(p.originates("bar", "httpbin.foo.svc.cluster.local", HTTPBIN));
        assert!(p.originates("foo", "httpbin.foo.svc.cluster.local", HTTPBIN));
        assert!(!p.originates("foo", "httpbin.bar.svc.cluster.local", HTTPBIN));

        let p = settings(include_str!("../testdata/mesh-seed/mtls-service-httpbin-bar.yaml"));
        assert_eq!(p.server_mode("bar", "httpbin", HTTPBIN), InboundTls::Strict);
        assert_eq!(p.server_mode("bar", "sleep", 80), InboundTls::Permissive);
        assert_eq!(p.server_mode("foo", "httpbin", HTTPBIN), InboundTls::Permissive);
        assert!(p.originates("foo", "httpbin.bar.svc.cluster.local", HTTPBIN));
        assert!(!p.originates("foo", "sleep.bar.svc.cluster.local", 80));
    }

    #[test]
    fn client_namespace_rule_wins_then_specificity() {
        let rules = "apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: a, namespace: foo}\nspec:\n  host: httpbin.bar.svc.cluster.local\n  trafficPolicy: {tls: {mode: DISABLE}}\n---\napiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: b, namespace: istio-system}\nspec:\n  host: '*.local'\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n";
        let p = settings(rules);
        assert!(!p.originates("foo", "httpbin.bar.svc.cluster.local", HTTPBIN));
        assert!(p.originates("bar", "httpbin.bar.svc.cluster.local", HTTPBIN));
        assert!(p.originates("foo", "httpbin.foo.svc.cluster.local", HTTPBIN));
        // A rule without TLS settings still shadows the root namespace's.
        let p = settings(&rules.replace(
            "  trafficPolicy: {tls: {mode: DISABLE}}\n",
            "  trafficPolicy: {connectionPool: {tcp: {maxConnections: 10}}}\n",
        ));
        assert!(!p.originates("foo", "httpbin.bar.svc.cluster.local", HTTPBIN));
        let no_peers = "apiVersion: authentication.istio.io/v1alpha1\nkind: Policy\nmetadata: {name: default, namespace: foo}\nspec: {}\n";
        assert_eq!(settings(no_peers).server_mode("foo", "x", 80), InboundTls::Disabled);
    }
}
