//! The peer-metadata filter's configuration (JSON; every field optional).

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Upstream clusters that must never receive our metadata (exact names). Clusters whose
    /// name does not follow Istio's `outbound|<port>|<subset>|<host>` form never receive it either.
    #[serde(default)]
    pub external_clusters: Vec<String>,
    /// Upstream cluster-name prefixes treated as external (e.g. `outbound|443||api.`).
    #[serde(default)]
    pub external_cluster_prefixes: Vec<String>,
    /// Publish claims that cannot be verified (no mTLS, or certificate mismatch) under the
    /// separate `wasmixer_peer_unverified` filter-state key, for telemetry that opts in.
    #[serde(default = "yes")]
    pub publish_unverified: bool,
    /// Publish the peer in filter state at all (`wasm.wasmixer_downstream_peer`, ...). The `mixer` filter's
    /// components share it in memory, so there it defaults to off (saving a host call per request).
    #[serde(default = "yes")]
    pub publish_filter_state: bool,
}

fn yes() -> bool {
    true
}

impl Default for PeerConfig {
    fn default() -> PeerConfig {
        PeerConfig {
            external_clusters: Vec::new(),
            external_cluster_prefixes: Vec::new(),
            publish_unverified: true,
            publish_filter_state: true,
        }
    }
}

impl PeerConfig {
    pub fn parse(bytes: &[u8]) -> Result<PeerConfig, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(PeerConfig::default());
        }
        serde_json::from_slice(bytes).map_err(|e| format!("configuration: {e}"))
    }

    /// The configuration as a section of a larger, already parsed document (the `mixer` filter's
    /// `peer_metadata`); `null` gives the defaults.
    pub fn from_section(section: serde_json::Value) -> Result<PeerConfig, String> {
        if section.is_null() {
            return Ok(PeerConfig::default());
        }
        serde_json::from_value(section).map_err(|e| e.to_string())
    }

    /// Whether metadata may be sent to `cluster`.
    pub fn may_announce_to(&self, cluster: &str) -> bool {
        cluster.starts_with("outbound|")
            && !self.external_clusters.iter().any(|c| c == cluster)
            && !self.external_cluster_prefixes.iter().any(|p| cluster.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn external_clusters_never_receive_metadata() {
        let c = PeerConfig::parse(br#"{"external_clusters": ["outbound|443||api.example.com"], "external_cluster_prefixes": ["outbound|80||ext-"]}"#).unwrap();
        assert!(c.may_announce_to("outbound|9080||ratings.default.svc.cluster.local"));
        assert!(!c.may_announce_to("outbound|443||api.example.com"));
        assert!(!c.may_announce_to("outbound|80||ext-thing"));
        assert!(!c.may_announce_to("some_static_cluster"));
        assert!(PeerConfig::parse(b"").unwrap().publish_unverified);
        assert!(PeerConfig::parse(b"").unwrap().publish_filter_state);
        assert!(!PeerConfig::parse(br#"{"publish_filter_state": false}"#).unwrap().publish_filter_state);
        assert!(PeerConfig::parse(br#"{"nope": 1}"#).is_err());
    }
}
