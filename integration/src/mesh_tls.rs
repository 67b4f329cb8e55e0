//! Istio 1.4's mutual-TLS resources, interpreted as Pilot did, for the mesh harness:
//! `authentication.istio.io/v1alpha1` `MeshPolicy` / `Policy` decide what each server sidecar
//! accepts (STRICT, PERMISSIVE, or plain text), and `networking.istio.io/v1alpha3`
//! `DestinationRule`s with `trafficPolicy.tls.mode: ISTIO_MUTUAL` decide which destinations a
//! client sidecar originates mTLS to.
//!
//! Server side (Istio 1.4 `authn` precedence): a `Policy` in the service's namespace whose
//! `targets` name the service, else the namespace's target-less `Policy`, else the
//! `MeshPolicy`, else PERMISSIVE (Istio 1.4's default install). `peers: [{mtls: {}}]` is STRICT,
//! `mtls: {mode: PERMISSIVE}` PERMISSIVE, and a policy without `peers` accepts plain text only.
//!
//! Client side (Pilot 1.4 `PushContext.DestinationRule`): the most specific host match among
//! the rules of the client's namespace, else among those of the service's namespace, else
//! among those of the root namespace (`istio-system`). Short hosts in a rule are qualified with
//! the rule's namespace (`httpbin` in `bar` is `httpbin.bar.svc.cluster.local`).

use serde_json::Value;

use crate::sidecar::InboundTls;

/// Istio's root (config) namespace.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The applied mTLS resources.
#[derive(Clone, Debug, Default)]
pub struct TlsPolicies {
    docs: Vec<Value>,
}

/// `(kind, namespace, name)` of a resource (namespace `default` when it names none, as `kubectl
/// apply` does; `""` for the cluster-scoped `MeshPolicy`).
pub fn resource_key(doc: &Value) -> (String, String, String) {
    let kind = doc["kind"].as_str().unwrap_or("").to_string();
    let ns = if kind == "MeshPolicy" {
        String::new()
    } else {
        doc["metadata"]["namespace"].as_str().unwrap_or("default").to_string()
    };
    (kind, ns, doc["metadata"]["name"].as_str().unwrap_or("").to_string())
}

/// Whether this module interprets `doc`.
pub fn is_tls_resource(doc: &Value) -> bool {
    let api = doc["apiVersion"].as_str().unwrap_or("");
    let kind = doc["kind"].as_str().unwrap_or("");
    (api.starts_with("authentication.istio.io/") && (kind == "Policy" || kind == "MeshPolicy"))
        || (api.starts_with("networking.istio.io/") && kind == "DestinationRule")
}

fn peer_mode(spec: &Value) -> InboundTls {
    let peers = spec["peers"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut mode = InboundTls::Disabled;
    for p in peers {
        if let Some(obj) = p.as_object() {
            if obj.contains_key("mtls") {
                let m = &p["mtls"];
                mode =
                    if m["mode"].as_str() == Some("PERMISSIVE") { InboundTls::Permissive } else { InboundTls::Strict };
            }
        }
    }
    mode
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

impl TlsPolicies {
    /// No resources: every server PERMISSIVE, no client originates.
    pub fn new() -> TlsPolicies {
        TlsPolicies::default()
    }

    /// Adds or replaces (same kind, namespace and name) an mTLS resource. Errors for others.
    pub fn apply(&mut self, doc: Value) -> Result<(), String> {
        if !is_tls_resource(&doc) {
            return Err(format!(
                "not an mTLS resource: {}/{}",
                doc["apiVersion"].as_str().unwrap_or("?"),
                doc["kind"].as_str().unwrap_or("?")
            ));
        }
        let key = resource_key(&doc);
        self.docs.retain(|d| resource_key(d) != key);
        self.docs.push(doc);
        Ok(())
    }

    /// Removes the resource with `doc`'s kind, namespace and name; whether there was one.
    pub fn delete(&mut self, doc: &Value) -> bool {
        let key = resource_key(doc);
        let before = self.docs.len();
        self.docs.retain(|d| resource_key(d) != key);
        before != self.docs.len()
    }

    /// Removes every resource.
    pub fn clear(&mut self) {
        self.docs.clear();
    }

    /// The applied resources.
    pub fn resources(&self) -> &[Value] {
        &self.docs
    }

    /// What the sidecar of `service` in `namespace` accepts.
    pub fn server_mode(&self, namespace: &str, service: &str) -> InboundTls {
        let of_kind = |kind: &'static str| self.docs.iter().filter(move |d| d["kind"].as_str() == Some(kind));
        let targeted = of_kind("Policy").find(|d| {
            resource_key(d).1 == namespace
                && d["spec"]["targets"]
                    .as_array()
                    .is_some_and(|ts| ts.iter().any(|t| t["name"].as_str() == Some(service)))
        });
        let namespace_wide = || {
            of_kind("Policy")
                .find(|d| resource_key(d).1 == namespace && d["spec"]["targets"].as_array().is_none_or(Vec::is_empty))
        };
        let mesh = || of_kind("MeshPolicy").find(|d| resource_key(d).2 == "default");
        match targeted.or_else(namespace_wide).or_else(mesh) {
            Some(d) => peer_mode(&d["spec"]),
            None => InboundTls::Permissive,
        }
    }

    /// The `DestinationRule` a client in `client_namespace` uses for `host` (a FQDN).
    pub fn destination_rule(&self, client_namespace: &str, host: &str) -> Option<&Value> {
        let service_namespace = host.split('.').nth(1).unwrap_or("");
        let best_in = |ns: &str| -> Option<&Value> {
            self.docs
                .iter()
                .filter(|d| d["kind"].as_str() == Some("DestinationRule") && resource_key(d).1 == ns)
                .filter_map(|d| {
                    let pattern = qualify(d["spec"]["host"].as_str().unwrap_or(""), ns);
                    match_rank(&pattern, host).map(|r| (r, d))
                })
                .max_by_key(|(r, _)| *r)
                .map(|(_, d)| d)
        };
        let mut order = Vec::new();
        if client_namespace != ROOT_NAMESPACE {
            order.push(client_namespace);
        }
        order.push(service_namespace);
        order.push(ROOT_NAMESPACE);
        order.into_iter().find_map(best_in)
    }

    /// Whether a client in `client_namespace` originates Istio mTLS to `host`.
    pub fn originates(&self, client_namespace: &str, host: &str) -> bool {
        self.destination_rule(client_namespace, host)
            .is_some_and(|d| d["spec"]["trafficPolicy"]["tls"]["mode"].as_str() == Some("ISTIO_MUTUAL"))
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
    use crate::mesh_yaml::parse_documents;

    fn apply(p: &mut TlsPolicies, yaml: &str) {
        for d in parse_documents(yaml).unwrap() {
            p.apply(d).unwrap();
        }
    }

    const MESH_STRICT: &str = "apiVersion: authentication.istio.io/v1alpha1\nkind: MeshPolicy\nmetadata:\n  name: default\nspec:\n  peers:\n  - mtls: {}\n";

    #[test]
    fn seed_mesh_wide() {
        let mut p = TlsPolicies::new();
        assert_eq!(p.server_mode("foo", "httpbin"), InboundTls::Permissive);
        apply(&mut p, MESH_STRICT);
        assert_eq!(p.server_mode("bar", "httpbin"), InboundTls::Strict);
        assert!(!p.originates("foo", "httpbin.bar.svc.cluster.local"));
        apply(&mut p, include_str!("../testdata/mesh-seed/mtls-mesh-wide.yaml"));
        for c in ["foo", "bar"] {
            for s in ["foo", "bar"] {
                assert!(p.originates(c, &format!("httpbin.{s}.svc.cluster.local")));
            }
        }
    }

    #[test]
    fn seed_namespace_and_service() {
        let mut p = TlsPolicies::new();
        apply(&mut p, include_str!("../testdata/mesh-seed/mtls-namespace-foo.yaml"));
        assert_eq!(p.server_mode("foo", "httpbin"), InboundTls::Strict);
        assert_eq!(p.server_mode("bar", "httpbin"), InboundTls::Permissive);
        assert!(p.originates("bar", "httpbin.foo.svc.cluster.local"));
        assert!(p.originates("foo", "httpbin.foo.svc.cluster.local"));
        assert!(!p.originates("foo", "httpbin.bar.svc.cluster.local"));

        let mut p = TlsPolicies::new();
        apply(&mut p, include_str!("../testdata/mesh-seed/mtls-service-httpbin-bar.yaml"));
        assert_eq!(p.server_mode("bar", "httpbin"), InboundTls::Strict);
        assert_eq!(p.server_mode("bar", "sleep"), InboundTls::Permissive);
        assert_eq!(p.server_mode("foo", "httpbin"), InboundTls::Permissive);
        assert!(p.originates("foo", "httpbin.bar.svc.cluster.local"));
        assert!(!p.originates("foo", "sleep.bar.svc.cluster.local"));
    }

    #[test]
    fn client_namespace_rule_wins_then_specificity() {
        let mut p = TlsPolicies::new();
        apply(
            &mut p,
            "apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: a, namespace: foo}\nspec:\n  host: httpbin.bar.svc.cluster.local\n  trafficPolicy: {tls: {mode: DISABLE}}\n---\napiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: b, namespace: istio-system}\nspec:\n  host: '*.local'\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n",
        );
        assert!(!p.originates("foo", "httpbin.bar.svc.cluster.local"));
        assert!(p.originates("bar", "httpbin.bar.svc.cluster.local"));
        assert!(p.originates("foo", "httpbin.foo.svc.cluster.local"));
        let no_peers = "apiVersion: authentication.istio.io/v1alpha1\nkind: Policy\nmetadata: {name: default, namespace: foo}\nspec: {}\n";
        apply(&mut p, no_peers);
        assert_eq!(p.server_mode("foo", "x"), InboundTls::Disabled);
    }
}
