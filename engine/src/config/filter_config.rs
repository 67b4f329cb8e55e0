//! The JSON configuration every wasmixer filter receives (Envoy `configuration`, or a
//! WasmPlugin's `pluginConfig`): Mixer resources plus per-filter options. One document can
//! serve all filters; each reads the resources and the section it understands.

use serde::Deserialize;
use serde_json::Value as Json;

use super::error::ConfigError;
use super::resource::{Resource, DEFAULT_CONFIG_NAMESPACE};

fn default_config_namespace() -> String {
    DEFAULT_CONFIG_NAMESPACE.to_string()
}

fn default_namespace() -> String {
    "default".to_string()
}

/// The top-level configuration document.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Mixer resources: `{kind, metadata: {name, namespace}, spec}` each.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// Mixer's config namespace: rules there apply to all traffic (default `istio-system`).
    #[serde(default = "default_config_namespace")]
    pub config_namespace: String,
    /// Namespace of resources that name none (default `default`, as `kubectl apply`).
    #[serde(default = "default_namespace")]
    pub default_namespace: String,
    /// Options of the deny filter.
    #[serde(default)]
    pub deny: DenyOptions,
    /// Options of the metrics filter (read by its own module).
    #[serde(default)]
    pub metrics: Json,
    /// Options of the access-log filter (read by its own module).
    #[serde(default)]
    pub access_log: Json,
    /// Options of the peer-metadata component when the `mixer` filter runs it (the standalone
    /// peer-metadata filter takes them as its whole configuration).
    #[serde(default)]
    pub peer_metadata: Json,
}

/// Options of the deny filter.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DenyOptions {
    /// Deny (HTTP 500, `INTERNAL`) when a rule's match cannot be evaluated, instead of
    /// Mixer's "the rule does not match". A rule can also opt in with `spec.fail_closed`.
    #[serde(default)]
    pub fail_closed: bool,
    /// Deny (HTTP 403, `PERMISSION_DENIED`) a request on an inbound mTLS listener when a rule's
    /// match fails because the peer identity it reads (`source.labels`, ...) is absent, instead
    /// of Mixer's "the rule does not match". Either way such a failure is counted apart
    /// (`result="no_identity"`) and logged.
    #[serde(default)]
    pub require_peer_identity: bool,
}

impl FilterConfig {
    /// Parses the configuration bytes; an empty configuration is an empty document.
    #[inline(never)] // configure-time code: see WASM_OPT_FLAGS in the Makefile
    pub fn parse(bytes: &[u8]) -> Result<FilterConfig, ConfigError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| ConfigError::new("configuration", "(document)", format!("not UTF-8: {e}")))?;
        if text.trim().is_empty() {
            return serde_json::from_str("{}")
                .map_err(|e| ConfigError::new("configuration", "(document)", e.to_string()));
        }
        serde_json::from_str(text).map_err(|e| ConfigError::new("configuration", "(document)", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_and_unknown_fields() {
        let c = FilterConfig::parse(b"").unwrap();
        assert_eq!(c.config_namespace, "istio-system");
        assert_eq!(c.default_namespace, "default");
        let e = FilterConfig::parse(br#"{"resourcez": []}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `resourcez`"), "{e}");
        assert!(e.to_string().contains("line 1 column"), "{e}");
    }
}
