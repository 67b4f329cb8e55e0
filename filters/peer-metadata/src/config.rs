//! The peer-metadata filter's configuration (JSON; every field optional).

use serde::Deserialize;
use wasmixer_engine::attr::peer_metadata::{
    METADATA_HEADER, METADATA_ID_HEADER, WASMIXER_METADATA_HEADER, WASMIXER_METADATA_ID_HEADER,
};
use wasmixer_engine::config::FilterConfig;
use wasmixer_engine::policy::header_ops::is_valid_header_name;

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
    /// The header our announcement travels in (base64 protobuf Struct, Istio's wire format).
    /// Not Istio's name by default: Istio 1.22+ sidecars strip that one before our filter runs.
    #[serde(default = "default_metadata_header")]
    pub metadata_header: String,
    /// The header our node id travels in.
    #[serde(default = "default_metadata_id_header")]
    pub metadata_id_header: String,
    /// What we do with Istio's own exchange headers (`x-envoy-peer-metadata(-id)`).
    #[serde(default)]
    pub istio_headers: IstioHeaders,
    /// Read the peer Istio's native peer-metadata filter keeps in filter state (Istio
    /// 1.22-1.29) when no announcement arrived in a header.
    #[serde(default = "yes")]
    pub istio_peer_state: bool,
    /// Answer a caller's announcement (our metadata on the response) even on a plain-text
    /// connection, as Istio does. Off: only callers on an mTLS connection learn who we are.
    #[serde(default)]
    pub answer_plaintext_callers: bool,
}

/// Istio's exchange headers, beside our own.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IstioHeaders {
    /// Read (and verify) a peer's announcement under Istio's names when ours is absent, answer
    /// it under the same names, and strip them from what we receive; announce under ours only.
    #[default]
    Accept,
    /// `accept`, and announce under Istio's names too: for a stock-Envoy mesh talking to
    /// proxies that speak only Istio's exchange (Istio 1.4-era sidecars).
    Exchange,
    /// Leave Istio's names alone: neither read, strip nor send them.
    Ignore,
}

fn yes() -> bool {
    true
}

fn default_metadata_header() -> String {
    WASMIXER_METADATA_HEADER.to_string()
}

fn default_metadata_id_header() -> String {
    WASMIXER_METADATA_ID_HEADER.to_string()
}

impl Default for PeerConfig {
    fn default() -> PeerConfig {
        PeerConfig {
            external_clusters: Vec::new(),
            external_cluster_prefixes: Vec::new(),
            publish_unverified: true,
            publish_filter_state: true,
            metadata_header: default_metadata_header(),
            metadata_id_header: default_metadata_id_header(),
            istio_headers: IstioHeaders::default(),
            istio_peer_state: true,
            answer_plaintext_callers: false,
        }
    }
}

impl PeerConfig {
    pub fn parse(bytes: &[u8]) -> Result<PeerConfig, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(PeerConfig::default());
        }
        let config: PeerConfig = serde_json::from_slice(bytes).map_err(|e| format!("configuration: {e}"))?;
        config.validated()
    }

    /// The configuration as a section of a larger, already parsed document (the `mixer` filter's
    /// `peer_metadata`); `null` gives the defaults.
    pub fn from_section(section: serde_json::Value) -> Result<PeerConfig, String> {
        if section.is_null() {
            return Ok(PeerConfig::default());
        }
        let config: PeerConfig = serde_json::from_value(section).map_err(|e| e.to_string())?;
        config.validated()
    }

    /// The `peer_metadata` section of a combined document (the `mixer` filter's; absent:
    /// defaults). The components there share the peer in memory, so filter state is published
    /// only if the section asks for it.
    pub fn from_document(config: &FilterConfig) -> Result<PeerConfig, String> {
        let shares_in_memory = match &config.peer_metadata {
            serde_json::Value::Object(section) => !section.contains_key("publish_filter_state"),
            _ => true,
        };
        let mut peer =
            PeerConfig::from_section(config.peer_metadata.clone()).map_err(|e| format!("peer_metadata: {e}"))?;
        if shares_in_memory {
            peer.publish_filter_state = false;
        }
        Ok(peer)
    }

    /// Header names must be lower-case HTTP tokens (Envoy keeps header names lower case, and a
    /// name it cannot send would fail every request), and the two must differ.
    fn validated(mut self) -> Result<PeerConfig, String> {
        for (field, name) in
            [("metadata_header", &mut self.metadata_header), ("metadata_id_header", &mut self.metadata_id_header)]
        {
            if name.starts_with(':') || !is_valid_header_name(name) {
                return Err(format!(
                    "field {field}: {name:?} is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"
                ));
            }
            name.make_ascii_lowercase();
        }
        if self.metadata_header == self.metadata_id_header {
            return Err(format!(
                "field metadata_id_header: the same header as metadata_header ({:?})",
                self.metadata_header
            ));
        }
        Ok(self)
    }

    /// Istio's header names when they are to be read (and stripped), unless they are ours.
    pub fn istio_names(&self) -> Option<(&'static str, &'static str)> {
        let ours = self.metadata_header == METADATA_HEADER;
        (self.istio_headers != IstioHeaders::Ignore && !ours).then_some((METADATA_HEADER, METADATA_ID_HEADER))
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

    fn peer_of(document: &str) -> Result<PeerConfig, String> {
        PeerConfig::from_document(&FilterConfig::parse(document.as_bytes()).unwrap())
    }

    #[test]
    fn the_peer_is_shared_in_memory_unless_the_section_asks_for_filter_state() {
        assert!(!peer_of("{}").unwrap().publish_filter_state);
        let section =
            peer_of(r#"{"peer_metadata": {"external_clusters": ["outbound|443||api.example.com"]}}"#).unwrap();
        assert!(!section.publish_filter_state);
        assert_eq!(section.external_clusters, ["outbound|443||api.example.com"]);
        assert!(peer_of(r#"{"peer_metadata": {"publish_filter_state": true}}"#).unwrap().publish_filter_state);
    }

    #[test]
    fn a_bad_peer_section_is_named_in_the_error() {
        let err = peer_of(r#"{"peer_metadata": {"publish_unverified": "yes"}}"#).unwrap_err();
        assert!(err.starts_with("peer_metadata: invalid type: string \"yes\", expected a boolean"), "{err}");
        let err = peer_of(r#"{"peer_metadata": {"external": []}}"#).unwrap_err();
        assert!(err.starts_with("peer_metadata: unknown field `external`"), "{err}");
    }

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

    #[test]
    fn our_own_header_names_by_default_and_istio_names_accepted() {
        let c = PeerConfig::parse(b"").unwrap();
        assert_eq!(
            (c.metadata_header.as_str(), c.metadata_id_header.as_str()),
            ("x-wasmixer-peer-metadata", "x-wasmixer-peer-metadata-id")
        );
        assert_eq!(c.istio_headers, IstioHeaders::Accept);
        assert_eq!(c.istio_names(), Some(("x-envoy-peer-metadata", "x-envoy-peer-metadata-id")));
        assert!(c.istio_peer_state && !c.answer_plaintext_callers);
        let ignore = PeerConfig::parse(br#"{"istio_headers": "ignore"}"#).unwrap();
        assert_eq!(ignore.istio_names(), None);
        let exchange = PeerConfig::parse(br#"{"istio_headers": "exchange", "metadata_header": "X-My-Peer"}"#).unwrap();
        assert_eq!(exchange.metadata_header, "x-my-peer");
        // Istio's names as our own: one family, read once.
        let istio = PeerConfig::parse(
            br#"{"metadata_header": "x-envoy-peer-metadata", "metadata_id_header": "x-envoy-peer-metadata-id"}"#,
        )
        .unwrap();
        assert_eq!(istio.istio_names(), None);
    }

    #[test]
    fn header_names_that_envoy_cannot_send_are_rejected() {
        let e = PeerConfig::parse(br#"{"metadata_header": "x peer"}"#).unwrap_err();
        assert!(e.contains("field metadata_header") && e.contains("x peer"), "{e}");
        assert!(PeerConfig::parse(br#"{"metadata_id_header": ":path"}"#).is_err());
        assert!(PeerConfig::parse(br#"{"metadata_id_header": "x-wasmixer-peer-metadata"}"#).is_err());
        assert!(PeerConfig::parse(br#"{"istio_headers": "sometimes"}"#).is_err());
    }
}
