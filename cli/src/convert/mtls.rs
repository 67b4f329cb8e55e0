//! The mTLS resources of Istio 1.4 (`authentication.istio.io/v1alpha1` `Policy` / `MeshPolicy`
//! with `peers: [{mtls: {}}]`, `networking.istio.io/v1alpha3` `DestinationRule` with
//! `ISTIO_MUTUAL`) become `security.istio.io/v1beta1` `PeerAuthentication`s (plus the
//! DestinationRules that still matter) and the harness's mesh settings (see cli/README.md,
//! "mesh-settings.json").

use serde_json::{json, Map, Value as Json};

use super::context::{Ctx, Object};
use super::report::Severity;

/// What the mTLS resources become.
#[derive(Debug, Default)]
pub struct MtlsOutput {
    /// PeerAuthentications and kept DestinationRules, for `istio/security.yaml`.
    pub resources: Vec<Json>,
    /// Server-side entries of mesh-settings.json.
    pub servers: Vec<Json>,
    /// Client-side entries of mesh-settings.json.
    pub clients: Vec<Json>,
}

fn label(ctx: &Ctx, obj: &Object) -> String {
    format!("{}.{}.{}", obj.name, obj.kind, ctx.namespace_of(obj))
}

pub fn convert(ctx: &mut Ctx, objects: &[&Object]) -> MtlsOutput {
    let mut out = MtlsOutput::default();
    for obj in objects {
        if obj.kind == "DestinationRule" {
            destination_rule(ctx, obj, &mut out);
        } else {
            policy(ctx, obj, &mut out);
        }
    }
    out
}

fn source(ctx: &Ctx, obj: &Object) -> String {
    ctx.describe(obj)
}

/// The peer-authentication mode a v1alpha1 policy asks for.
fn peer_mode(ctx: &mut Ctx, obj: &Object, l: &str) -> &'static str {
    let spec = obj.spec();
    let peers = spec.get("peers").and_then(Json::as_array).cloned().unwrap_or_default();
    let mut mode = None;
    for (i, p) in peers.iter().enumerate() {
        if let Some(m) = p.get("mtls") {
            let m = match m.get("mode").and_then(Json::as_str) {
                None | Some("STRICT") => "STRICT",
                Some("PERMISSIVE") => "PERMISSIVE",
                Some(other) => {
                    ctx.at(
                        Severity::Error,
                        obj,
                        Some(l),
                        Some(&format!("spec.peers[{i}].mtls.mode")),
                        format!("unknown mTLS mode {other} (STRICT or PERMISSIVE)"),
                    );
                    "STRICT"
                }
            };
            if m.eq("STRICT") && p.pointer("/mtls/allowTls").and_then(Json::as_bool) == Some(true) {
                ctx.at(Severity::Warning, obj, Some(l), Some(&format!("spec.peers[{i}].mtls.allowTls")), "allowTls (plain TLS without a client certificate) has no equivalent; the converted policy requires mutual TLS");
            }
            mode = Some(m);
        } else if p.get("jwt").is_some() {
            ctx.at(
                Severity::Unsupported,
                obj,
                Some(l),
                Some(&format!("spec.peers[{i}].jwt")),
                "peer JWT authentication is not converted (it was removed from Istio)",
            );
        }
    }
    let mode = match mode {
        Some(m) => m,
        None => {
            ctx.at(
                Severity::Note,
                obj,
                Some(l),
                Some("spec.peers"),
                "no mtls peer method: Istio 1.4 accepted plain text here, so the converted mode is DISABLE",
            );
            "DISABLE"
        }
    };
    if mode == "STRICT" && spec.get("peerIsOptional").and_then(Json::as_bool) == Some(true) {
        ctx.at(Severity::Note, obj, Some(l), Some("spec.peerIsOptional"), "peerIsOptional: converted as PERMISSIVE");
        return "PERMISSIVE";
    }
    mode
}

fn policy(ctx: &mut Ctx, obj: &Object, out: &mut MtlsOutput) {
    let mesh = obj.kind == "MeshPolicy";
    let namespace = if mesh { ctx.opts.config_namespace.clone() } else { ctx.namespace_of(obj) };
    let l = if mesh { format!("{}.MeshPolicy", obj.name) } else { label(ctx, obj) };
    let spec = obj.spec().clone();
    let mode = peer_mode(ctx, obj, &l);
    if spec.get("origins").and_then(Json::as_array).is_some_and(|o| !o.is_empty()) {
        ctx.at(
            Severity::Unsupported,
            obj,
            Some(&l),
            Some("spec.origins"),
            "end-user JWT authentication (origins) is not converted: write a security.istio.io/v1beta1 RequestAuthentication and an AuthorizationPolicy",
        );
    }
    let src = source(ctx, obj);
    let targets = spec.get("targets").and_then(Json::as_array).cloned().unwrap_or_default();
    if targets.is_empty() || mesh {
        if mesh && !targets.is_empty() {
            ctx.at(
                Severity::Warning,
                obj,
                Some(&l),
                Some("spec.targets"),
                "a MeshPolicy applies to the whole mesh; its targets are ignored",
            );
        }
        if !mesh && obj.name != "default" {
            ctx.at(
                Severity::Warning,
                obj,
                Some(&l),
                Some("metadata.name"),
                "a namespace-wide policy had to be named default in Istio 1.4; converted as namespace-wide",
            );
        }
        let name = if mesh { "default".to_string() } else { obj.name.clone() };
        out.resources.push(peer_authentication(&name, &namespace, None, Some(mode), &Map::new()));
        out.servers.push(json!({
            "scope": if mesh { "mesh" } else { "namespace" },
            "namespace": if mesh { Json::Null } else { Json::String(namespace.clone()) },
            "service": null,
            "workload_selector": null,
            "mode": mode,
            "port_modes": {},
            "source": src,
        }));
        return;
    }
    for (ti, t) in targets.iter().enumerate() {
        let Some(service) = t.get("name").and_then(Json::as_str) else {
            ctx.at(
                Severity::Error,
                obj,
                Some(&l),
                Some(&format!("spec.targets[{ti}].name")),
                "missing field name (the target service)",
            );
            continue;
        };
        ctx.at(
            Severity::Warning,
            obj,
            Some(&l),
            Some(&format!("spec.targets[{ti}].name")),
            format!("PeerAuthentication selects workloads, not services: assumed that service {service} selects the pods labelled app={service}; check the Service's selector"),
        );
        if t.get("labels").is_some() {
            ctx.at(
                Severity::Warning,
                obj,
                Some(&l),
                Some(&format!("spec.targets[{ti}].labels")),
                "target labels (subsets) are not converted; the policy applies to the whole service",
            );
        }
        let mut port_modes = Map::new();
        for (pi, p) in t.get("ports").and_then(Json::as_array).cloned().unwrap_or_default().iter().enumerate() {
            match p.get("number").and_then(Json::as_u64) {
                Some(n) => {
                    port_modes.insert(n.to_string(), Json::String(mode.to_string()));
                }
                None => ctx.at(Severity::Warning, obj, Some(&l), Some(&format!("spec.targets[{ti}].ports[{pi}]")), "a port given by name cannot be converted (PeerAuthentication takes port numbers); the policy applies to every port"),
            }
        }
        if !port_modes.is_empty() {
            ctx.at(
                Severity::Warning,
                obj,
                Some(&l),
                Some(&format!("spec.targets[{ti}].ports")),
                "Istio 1.4 target ports were service ports; PeerAuthentication's portLevelMtls takes the workload's (container) ports: check they are the same",
            );
        }
        let name = if targets.len() == 1 { obj.name.clone() } else { format!("{}-{service}", obj.name) };
        let selector = json!({"app": service});
        let top = if port_modes.is_empty() { Some(mode) } else { None };
        let port_level: Map<String, Json> = port_modes.iter().map(|(k, v)| (k.clone(), json!({"mode": v}))).collect();
        out.resources.push(peer_authentication(&name, &namespace, Some(&selector), top, &port_level));
        out.servers.push(json!({
            "scope": "service",
            "namespace": namespace,
            "service": service,
            "workload_selector": selector,
            "mode": top,
            "port_modes": port_modes,
            "source": src,
        }));
    }
}

fn peer_authentication(
    name: &str,
    namespace: &str,
    selector: Option<&Json>,
    mode: Option<&str>,
    port_level: &Map<String, Json>,
) -> Json {
    let mut spec = Map::new();
    if let Some(s) = selector {
        spec.insert("selector".into(), json!({"matchLabels": s}));
    }
    if let Some(m) = mode {
        spec.insert("mtls".into(), json!({"mode": m}));
    }
    if !port_level.is_empty() {
        spec.insert("portLevelMtls".into(), Json::Object(port_level.clone()));
    }
    json!({
        "apiVersion": "security.istio.io/v1beta1",
        "kind": "PeerAuthentication",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

fn tls_mode(v: Option<&Json>) -> Option<String> {
    v?.pointer("/tls/mode").and_then(Json::as_str).map(str::to_string)
}

fn destination_rule(ctx: &mut Ctx, obj: &Object, out: &mut MtlsOutput) {
    let l = label(ctx, obj);
    let namespace = ctx.namespace_of(obj);
    let spec = obj.spec().clone();
    let Some(host) = spec.get("host").and_then(Json::as_str).map(str::to_string) else {
        ctx.at(Severity::Error, obj, Some(&l), Some("spec.host"), "missing field host");
        return;
    };
    if host.starts_with("istio-policy.") || host.starts_with("istio-telemetry.") {
        ctx.at(
            Severity::Note,
            obj,
            Some(&l),
            None,
            "not converted: this DestinationRule configures the connection to Mixer, which wasmixer replaces",
        );
        return;
    }
    let tp = spec.get("trafficPolicy");
    let mode = tls_mode(tp);
    let mut port_modes = Map::new();
    for p in tp.and_then(|t| t.get("portLevelSettings")).and_then(Json::as_array).cloned().unwrap_or_default() {
        if let (Some(n), Some(m)) = (p.pointer("/port/number").and_then(Json::as_u64), tls_mode(Some(&p))) {
            port_modes.insert(n.to_string(), Json::String(m));
        }
    }
    let mut subset_modes = Map::new();
    for s in spec.get("subsets").and_then(Json::as_array).cloned().unwrap_or_default() {
        if let (Some(n), Some(m)) = (s.get("name").and_then(Json::as_str), tls_mode(s.get("trafficPolicy"))) {
            subset_modes.insert(n.to_string(), Json::String(m));
        }
    }
    let any_tls = mode.is_some() || !port_modes.is_empty() || !subset_modes.is_empty();
    // A rule without TLS settings is kept too: in Istio 1.4 it still shadowed less specific
    // rules (its clients sent plain text).
    let export_to = spec.get("exportTo").cloned().unwrap_or_else(|| json!(["*"]));
    out.clients.push(json!({
        "namespace": namespace,
        "host": host,
        "export_to": export_to,
        "mode": mode,
        "port_modes": port_modes,
        "subset_modes": subset_modes,
        "source": source(ctx, obj),
    }));
    if only_istio_mutual(&spec) {
        ctx.at(
            Severity::Note,
            obj,
            Some(&l),
            None,
            "not needed in current Istio: automatic mutual TLS (on by default since Istio 1.5) makes clients originate Istio mTLS to every workload with a sidecar; kept in mesh-settings.json",
        );
        return;
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), Json::String(obj.name.clone()));
    metadata.insert("namespace".into(), Json::String(namespace));
    for k in ["labels", "annotations"] {
        if let Some(v) = obj.value.get("metadata").and_then(|m| m.get(k)).filter(|v| v.is_object()) {
            metadata.insert(k.into(), v.clone());
        }
    }
    let api = obj.api_version.clone().unwrap_or_else(|| "networking.istio.io/v1alpha3".to_string());
    out.resources.push(json!({"apiVersion": api, "kind": "DestinationRule", "metadata": metadata, "spec": spec}));
    if any_tls {
        ctx.at(Severity::Note, obj, Some(&l), None, "kept unchanged: it sets more than Istio mutual TLS");
    }
}

/// True when a DestinationRule does nothing but turn on Istio mTLS.
fn only_istio_mutual(spec: &Json) -> bool {
    let keys_within =
        |v: &Json, allowed: &[&str]| v.as_object().is_some_and(|m| m.keys().all(|k| allowed.contains(&k.as_str())));
    let mutual = |v: &Json| keys_within(v, &["mode"]) && v.get("mode").and_then(Json::as_str) == Some("ISTIO_MUTUAL");
    if !keys_within(spec, &["host", "exportTo", "trafficPolicy"]) {
        return false;
    }
    let Some(tp) = spec.get("trafficPolicy") else {
        return false;
    };
    if !keys_within(tp, &["tls", "portLevelSettings"]) {
        return false;
    }
    let top_ok = tp.get("tls").is_none_or(mutual);
    let ports_ok = tp.get("portLevelSettings").is_none_or(|p| {
        p.as_array().is_some_and(|list| {
            list.iter().all(|s| keys_within(s, &["port", "tls"]) && s.get("tls").is_some_and(mutual))
        })
    });
    top_ok && ports_ok && (tp.get("tls").is_some() || tp.get("portLevelSettings").is_some())
}
