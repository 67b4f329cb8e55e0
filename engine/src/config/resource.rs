//! Mixer's configuration resources (`handler`, `instance`, `rule` and the legacy per-adapter and
//! per-template kinds) as they arrive in a filter's JSON configuration: the Kubernetes shape
//! `{kind, metadata: {name, namespace}, spec}` that Mixer users wrote in YAML.

use serde::Deserialize;
use serde_json::Value as Json;

use super::registry;

/// Mixer's default configuration namespace: rules there apply to all traffic.
pub const DEFAULT_CONFIG_NAMESPACE: &str = "istio-system";

/// One resource as written by the user.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Resource {
    #[serde(default, rename = "apiVersion")]
    pub api_version: Option<String>,
    pub kind: String,
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: Json,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    // labels, annotations... are accepted and ignored.
}

/// Kinds that carry no policy or telemetry configuration; they are accepted and ignored.
pub const IGNORED_KINDS: &[&str] =
    &["attributemanifest", "adapter", "template", "HTTPAPISpec", "HTTPAPISpecBinding", "QuotaSpec", "QuotaSpecBinding"];

/// What a resource is, once its kind is understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceClass {
    Handler,
    Instance,
    Rule,
    Ignored,
}

/// Classifies a `kind`, or `None` for an unknown kind.
pub fn classify(kind: &str) -> Option<ResourceClass> {
    match kind {
        "handler" => Some(ResourceClass::Handler),
        "instance" => Some(ResourceClass::Instance),
        "rule" => Some(ResourceClass::Rule),
        k if IGNORED_KINDS.contains(&k) => Some(ResourceClass::Ignored),
        // The legacy per-template and per-adapter kinds (`kind: metric`, `kind: denier`).
        k if registry::template(k).is_some_and(|t| t.legacy_kind) => Some(ResourceClass::Instance),
        k if registry::adapter(k).is_some() => Some(ResourceClass::Handler),
        _ => None,
    }
}
