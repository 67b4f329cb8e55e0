//! Istio's HTTP metadata exchange: header names, the peer's node id, and a bounded cache of
//! decoded peer headers.
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

use std::rc::Rc;

use hashbrown::HashMap;

use crate::attr::workload::{HeaderLimits, WorkloadMetadata};

/// The header carrying the peer's metadata Struct.
pub const METADATA_HEADER: &str = "x-envoy-peer-metadata";
/// The header carrying the peer's Envoy node id.
pub const METADATA_ID_HEADER: &str = "x-envoy-peer-metadata-id";
/// Both exchange headers, e.g. for stripping.
pub const EXCHANGE_HEADERS: [&str; 2] = [METADATA_HEADER, METADATA_ID_HEADER];

/// Default number of decoded peers a [`PeerCache`] keeps (Istio's `max_peer_cache_size`
/// default is 500; fewer here because entries are keyed by whole headers of up to 16 KiB).
pub const DEFAULT_PEER_CACHE_SIZE: usize = 128;

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
        let (Some(proxy_type), Some(ip), Some(id), Some(dns_domain), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        if proxy_type.is_empty() || !proxy_type.bytes().all(|b| b.is_ascii_lowercase()) {
            return None;
        }
        Some(NodeId {
            proxy_type,
            ip,
            id,
            dns_domain,
        })
    }

    /// The pod name: `id` up to its last `.` (namespaces cannot contain dots; pod names can).
    pub fn pod_name(&self) -> Option<&'a str> {
        self.id
            .rsplit_once('.')
            .map(|(pod, _)| pod)
            .filter(|p| !p.is_empty())
    }

    /// The namespace: `id` after its last `.`.
    pub fn namespace(&self) -> Option<&'a str> {
        self.id
            .rsplit_once('.')
            .map(|(_, ns)| ns)
            .filter(|n| !n.is_empty())
    }
}

/// Decoded peer headers, keyed by the **whole** `x-envoy-peer-metadata` value.
///
/// Istio keyed its cache by `x-envoy-peer-metadata-id`, which lets any client that sends a
/// known id with forged metadata poison the entry for later, honest requests. Keying by the
/// full header makes a hit return exactly what decoding that header would. Failed decodes are
/// not cached. When full, an arbitrary quarter of the entries is dropped (as Istio did).
#[derive(Debug)]
pub struct PeerCache {
    max_entries: usize,
    limits: HeaderLimits,
    entries: HashMap<String, Rc<WorkloadMetadata>>,
}

impl Default for PeerCache {
    fn default() -> PeerCache {
        PeerCache::new(DEFAULT_PEER_CACHE_SIZE)
    }
}

impl PeerCache {
    /// A cache of at most `max_entries` peers (0 disables caching) with default header limits.
    pub fn new(max_entries: usize) -> PeerCache {
        PeerCache::with_limits(max_entries, HeaderLimits::default())
    }

    /// A cache that decodes with `limits`.
    pub fn with_limits(max_entries: usize, limits: HeaderLimits) -> PeerCache {
        PeerCache {
            max_entries,
            limits,
            entries: HashMap::new(),
        }
    }

    /// The decoded metadata for `header`, from the cache or freshly decoded (and then cached).
    pub fn decode(&mut self, header: &str) -> Result<Rc<WorkloadMetadata>, String> {
        if let Some(hit) = self.entries.get(header) {
            return Ok(Rc::clone(hit));
        }
        let decoded = Rc::new(WorkloadMetadata::decode_header_with(header, &self.limits)?);
        if self.max_entries > 0 {
            if self.entries.len() >= self.max_entries {
                self.evict();
            }
            self.entries.insert(header.to_owned(), Rc::clone(&decoded));
        }
        Ok(decoded)
    }

    fn evict(&mut self) {
        let mut drop_count = (self.max_entries / 4).max(1);
        self.entries.retain(|_, _| {
            if drop_count > 0 {
                drop_count -= 1;
                false
            } else {
                true
            }
        });
    }

    /// Number of cached peers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every cached peer.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::expr::StringMap;

    #[test]
    fn parses_istio_node_ids() {
        let n = NodeId::parse(
            "sidecar~10.16.0.104~productpage-v1-65576bb7bf-djw4c.default~default.svc.cluster.local",
        )
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

    fn peer(name: &str) -> WorkloadMetadata {
        WorkloadMetadata {
            name: name.into(),
            namespace: "default".into(),
            labels: StringMap::from_pairs([("app", "reviews")]),
            ..WorkloadMetadata::default()
        }
    }

    #[test]
    fn cache_hits_and_misses() {
        let mut cache = PeerCache::new(8);
        let h = peer("a").encode_header();
        let first = cache.decode(&h).unwrap();
        let second = cache.decode(&h).unwrap();
        assert!(Rc::ptr_eq(&first, &second));
        assert_eq!(*first, peer("a"));
        assert_eq!(cache.len(), 1);
        assert!(cache.decode("!!!!").is_err());
        assert_eq!(cache.len(), 1, "failures are not cached");
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn cache_is_keyed_by_content_not_id() {
        // Same id header would be sent with both; the forged content must not be served for
        // the honest header, nor vice versa.
        let mut cache = PeerCache::new(8);
        let honest = peer("reviews-v1-abc").encode_header();
        let mut forged_meta = peer("reviews-v1-abc");
        forged_meta.labels = StringMap::from_pairs([("app", "reviews"), ("version", "v3")]);
        let forged = forged_meta.encode_header();
        assert_eq!(
            cache.decode(&forged).unwrap().labels.get("version"),
            Some("v3")
        );
        assert_eq!(cache.decode(&honest).unwrap().labels.get("version"), None);
    }

    #[test]
    fn cache_stays_bounded() {
        let mut cache = PeerCache::new(8);
        for i in 0..100 {
            let h = peer(&format!("p{i}")).encode_header();
            assert_eq!(cache.decode(&h).unwrap().name, format!("p{i}"));
            assert!(cache.len() <= 8);
        }
        let mut off = PeerCache::new(0);
        let h = peer("x").encode_header();
        assert_eq!(off.decode(&h).unwrap().name, "x");
        assert!(off.is_empty());
    }

    #[test]
    fn cache_applies_header_limits() {
        let tight = HeaderLimits {
            max_header_bytes: 8,
            ..HeaderLimits::default()
        };
        let mut cache = PeerCache::with_limits(8, tight);
        assert!(cache.decode(&peer("a").encode_header()).is_err());
        assert!(cache.is_empty());
    }
}
