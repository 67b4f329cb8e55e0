//! Istio's HTTP metadata exchange: header names and the peer's node id. Decoded peers are
//! cached by [`PeerCache`](crate::attr::identity::PeerCache).
//!
//! Protocol (istio/proxy release-1.8 `extensions/metadata_exchange/plugin.cc`):
//!
//! * `x-envoy-peer-metadata` carries the sender's [`WorkloadMetadata`] as base64 of a
//!   serialized `google.protobuf.Struct` ([`WorkloadMetadata::encode_header`]).
//! * `x-envoy-peer-metadata-id` carries the sender's Envoy node id,
//!   `sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local` ([`NodeId`]).
//! * A proxy strips both headers from what it receives, and adds its own on requests only when
//!   it is not inbound and on responses only when it is not outbound and the request carried
//!   them. Headers must not go to external clusters (they leak pod IPs and the Istio version).
//!
//! Both headers are unauthenticated: see [`crate::attr::spiffe::verify_peer_claim`].

#[allow(unused_imports)] // named in the docs
use crate::attr::workload::WorkloadMetadata;

/// Istio's header carrying the peer's metadata Struct.
pub const METADATA_HEADER: &str = "x-envoy-peer-metadata";
/// Istio's header carrying the peer's Envoy node id.
pub const METADATA_ID_HEADER: &str = "x-envoy-peer-metadata-id";

/// wasmixer's own names for the same two headers, its default. Istio 1.22 and later run a
/// native peer-metadata filter ahead of every WasmPlugin that removes Istio's names from
/// requests and responses whether or not it understood them (istio/proxy 1.29
/// `source/extensions/filters/http/peer_metadata/filter.cc`, `:146-148` and `:393-404`), so an
/// exchange under Istio's names never reaches a wasmixer filter inside an Istio sidecar.
pub const WASMIXER_METADATA_HEADER: &str = "x-wasmixer-peer-metadata";
/// wasmixer's own name of the node-id header.
pub const WASMIXER_METADATA_ID_HEADER: &str = "x-wasmixer-peer-metadata-id";

/// An Istio Envoy node id, `<type>~<ip>~<id>~<dns domain>`, where `<id>` is
/// `<pod>.<namespace>` on Kubernetes (istio/istio `pkg/model/context.go`,
/// `ParseServiceNodeWithMetadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeId<'a> {
    /// `sidecar`, `router` (gateways), `waypoint`, …
    pub proxy_type: &'a str,
    /// The proxy's IP address, as text.
    pub ip: &'a str,
    /// `<pod>.<namespace>`.
    pub id: &'a str,
    /// `<namespace>.svc.cluster.local`.
    pub dns_domain: &'a str,
}

impl<'a> NodeId<'a> {
    /// Maximum accepted node id length.
    pub const MAX_LEN: usize = 1024;

    /// Splits a node id into its four `~`-separated parts. `None` unless there are exactly
    /// four, the type is a non-empty lower-case word, and the whole is at most
    /// [`NodeId::MAX_LEN`] bytes of printable ASCII.
    pub fn parse(s: &'a str) -> Option<NodeId<'a>> {
        if s.len() > NodeId::MAX_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let mut parts = s.split('~');
        let (Some(proxy_type), Some(ip), Some(id), Some(dns_domain), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if proxy_type.is_empty() || !proxy_type.bytes().all(|b| b.is_ascii_lowercase()) {
            return None;
        }
        Some(NodeId { proxy_type, ip, id, dns_domain })
    }

    /// The pod name: `id` up to its last `.` (namespaces cannot contain dots; pod names can).
    pub fn pod_name(&self) -> Option<&'a str> {
        self.id.rsplit_once('.').map(|(pod, _)| pod).filter(|p| !p.is_empty())
    }

    /// The namespace: `id` after its last `.`.
    pub fn namespace(&self) -> Option<&'a str> {
        self.id.rsplit_once('.').map(|(_, ns)| ns).filter(|n| !n.is_empty())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_istio_node_ids() {
        let n = NodeId::parse("sidecar~10.16.0.104~productpage-v1-65576bb7bf-djw4c.default~default.svc.cluster.local")
            .unwrap();
        assert_eq!(n.proxy_type, "sidecar");
        assert_eq!(n.ip, "10.16.0.104");
        assert_eq!(n.id, "productpage-v1-65576bb7bf-djw4c.default");
        assert_eq!(n.dns_domain, "default.svc.cluster.local");
        assert_eq!(n.pod_name(), Some("productpage-v1-65576bb7bf-djw4c"));
        assert_eq!(n.namespace(), Some("default"));

        let g = NodeId::parse(
            "router~10.83.0.14~istio-ingressgateway-569669bb67-dsd5h.istio-system~istio-system.svc.cluster.local",
        )
        .unwrap();
        assert_eq!(g.proxy_type, "router");
        assert_eq!(g.namespace(), Some("istio-system"));

        let dotted = NodeId::parse("sidecar~fe80::1~my.pod.ns~ns.svc.cluster.local").unwrap();
        assert_eq!(dotted.ip, "fe80::1");
        assert_eq!(dotted.pod_name(), Some("my.pod"));
        assert_eq!(dotted.namespace(), Some("ns"));

        let bare = NodeId::parse("sidecar~1.2.3.4~nodots~d").unwrap();
        assert_eq!((bare.pod_name(), bare.namespace()), (None, None));
    }

    #[test]
    fn rejects_malformed_node_ids() {
        for bad in [
            "",
            "sidecar",
            "sidecar~1.2.3.4~p.ns",
            "sidecar~1.2.3.4~p.ns~d~extra",
            "~1.2.3.4~p.ns~d",
            "Sidecar~1.2.3.4~p.ns~d",
            "side car~1.2.3.4~p.ns~d",
            "sidecar~1.2.3.4~p.ns~d\n",
            "sidecar~1.2.3.4~p\u{e9}.ns~d",
        ] {
            assert_eq!(NodeId::parse(bad), None, "{bad:?}");
        }
        let long = format!("sidecar~1.2.3.4~{}.ns~d", "p".repeat(NodeId::MAX_LEN));
        assert_eq!(NodeId::parse(&long), None);
    }
}
