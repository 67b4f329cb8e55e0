//! Workload identities inside the proxy: the local one (decoded from `xds.node` metadata), and
//! the peer's, published in filter state by the peer-metadata filter and decoded here at most
//! once per peer. Reading them from the proxy is the host's part (`wasmixer-proxy-wasm-host`'s
//! `identity`); this module only names, decodes and caches them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use hashbrown::{Equivalent, HashMap};

use super::pairs::{deserialize_pairs, deserialize_pairs_bytes};
use super::protobuf_struct;
use super::workload::WorkloadMetadata;
use super::workload_attributes::WorkloadAttributes;
use crate::bytes::words_equal;
use crate::keyed_hash::{keyed_state, KeyedState};

/// Filter-state key (Envoy prefixes it with `wasm.`) under which the peer-metadata filter
/// publishes the *verified* caller of a stream on an inbound listener, in the
/// `x-envoy-peer-metadata` header encoding. Its presence alone tells a reader the listener's
/// direction, so readers look here before they read the direction.
pub const DOWNSTREAM_PEER_STATE: &str = "wasmixer_downstream_peer";
/// Filter-state key of the *verified* upstream workload of an outbound stream (from the
/// response); its presence too tells the direction.
pub const UPSTREAM_PEER_STATE: &str = "wasmixer_upstream_peer";
/// Filter-state key of a verified caller on a listener without `traffic_direction` (treated
/// as inbound for sides, but the reporter kind stays unknown).
pub const UNDIRECTED_PEER_STATE: &str = "wasmixer_peer";
/// Filter-state key of a peer whose claim could not be verified (telemetry may opt in).
pub const UNVERIFIED_PEER_STATE: &str = "wasmixer_peer_unverified";

/// The filter-state value of a verified peer: its encoded claim and, on a line of its own, the
/// certificate SAN it was verified against (base64 never holds a newline), so readers learn
/// the peer's principal and that the connection is mTLS without asking Envoy again.
pub fn published_peer(encoded: &[u8], certificate_san: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() + 1 + certificate_san.len());
    out.extend_from_slice(encoded);
    out.push(b'\n');
    out.extend_from_slice(certificate_san.as_bytes());
    out
}

/// Keys whose values are maps (Envoy serializes them as nested pairs).
const MAP_KEYS: [&str; 2] = ["LABELS", "PLATFORM_METADATA"];

/// Envoy 1.40 returns a Struct-valued property as the ABI's pairs encoding (nested maps as
/// nested pairs); older hosts returned the serialized `google.protobuf.Struct`.
pub fn node_metadata_json(bytes: &[u8]) -> Option<serde_json::Value> {
    if let Ok(fields) = protobuf_struct::decode_struct(bytes) {
        if !fields.is_empty() {
            return Some(serde_json::Value::Object(fields));
        }
    }
    let pairs = deserialize_pairs_bytes(bytes);
    if pairs.is_empty() {
        return serde_json::from_slice(bytes).ok();
    }
    let mut map = serde_json::Map::new();
    for (key, value) in pairs {
        let v = if MAP_KEYS.contains(&key.as_str()) {
            // Inserted one by one: collecting into a map would compile a sort for its entries.
            let mut inner = serde_json::Map::new();
            for (k, v) in deserialize_pairs(&value) {
                inner.insert(k, serde_json::Value::String(v));
            }
            serde_json::Value::Object(inner)
        } else {
            serde_json::Value::String(String::from_utf8_lossy(&value).into_owned())
        };
        map.insert(key, v);
    }
    Some(serde_json::Value::Object(map))
}

/// What a root context knows about the parties of its streams: its own workload and the peers
/// it has decoded.
///
/// Not the listener direction: Envoy 1.40 lets listeners of both directions share one root
/// context when their plugin configuration is the same (seen: an Istio-style sidecar's
/// inbound and outbound peer-metadata filters had a single root on each worker), so the
/// direction is read per stream.
#[derive(Debug)]
pub struct RootIdentity {
    pub local: Option<Rc<WorkloadAttributes>>,
    pub peers: PeerCache,
}

impl RootIdentity {
    /// The local workload (the host reads it from the node metadata); peers are learnt from
    /// streams.
    pub fn new(local: Option<Rc<WorkloadAttributes>>) -> RootIdentity {
        RootIdentity { local, peers: PeerCache::default() }
    }

    /// The local workload's namespace: a proxy's identity namespace for Mixer's rule scoping.
    pub fn own_namespace(&self) -> Option<&str> {
        self.local.as_ref()?.namespace.as_deref()
    }
}

/// The filter-state keys above as a reader names them (`filter_state.<key>`).
pub const DOWNSTREAM_KEY: &str = "wasm.wasmixer_downstream_peer";
pub const UPSTREAM_KEY: &str = "wasm.wasmixer_upstream_peer";
pub const UNDIRECTED_KEY: &str = "wasm.wasmixer_peer";
pub const UNVERIFIED_KEY: &str = "wasm.wasmixer_peer_unverified";

/// Decoded peers, keyed by their encoded form (never by a client-chosen id, which a peer could
/// use to poison the cache), bounded (oldest evicted first).
#[derive(Debug)]
pub struct PeerCache {
    /// Keyed by the whole encoded claim (up to 16 KiB), held once for the map and the order.
    entries: RefCell<HashMap<ClaimKey, Rc<WorkloadAttributes>, KeyedState>>,
    order: RefCell<VecDeque<ClaimKey>>,
    capacity: usize,
    /// The peer found last: a sidecar's requests come in runs from one caller (every request of
    /// a keep-alive connection), and comparing a claim costs less than hashing it.
    last: RefCell<Option<(ClaimKey, Rc<WorkloadAttributes>)>>,
}

/// An encoded peer as the cache holds it. Every hit compares a whole claim (the seed's
/// published caller is 466 bytes) on every request from a cached peer, and on wasm32 a slice
/// comparison is wasi-libc's byte-at-a-time `memcmp`; comparing eight bytes at a time
/// ([`words_equal`]) takes a fraction of its instructions.
#[derive(Debug, Clone)]
struct ClaimKey(Rc<[u8]>);

/// The lookup form of a [`ClaimKey`]: the bytes as read from the host, not copied.
struct ClaimRef<'a>(&'a [u8]);

impl Hash for ClaimKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        ClaimRef(&self.0).hash(state);
    }
}

impl Hash for ClaimRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for ClaimKey {
    fn eq(&self, other: &ClaimKey) -> bool {
        words_equal(&self.0, &other.0)
    }
}

impl Eq for ClaimKey {}

impl Equivalent<ClaimKey> for ClaimRef<'_> {
    fn equivalent(&self, key: &ClaimKey) -> bool {
        words_equal(self.0, &key.0)
    }
}

/// Default number of peers kept decoded.
pub const DEFAULT_PEER_CACHE: usize = 1024;

impl Default for PeerCache {
    fn default() -> PeerCache {
        PeerCache::with_capacity(DEFAULT_PEER_CACHE)
    }
}

impl PeerCache {
    pub fn with_capacity(capacity: usize) -> PeerCache {
        PeerCache {
            entries: RefCell::new(HashMap::with_hasher(keyed_state())),
            order: RefCell::new(VecDeque::new()),
            capacity: capacity.max(1),
            last: RefCell::new(None),
        }
    }

    /// Looks an encoded peer (the `x-envoy-peer-metadata` value, as received) up, decoding it on
    /// a miss: a hit needs no UTF-8 check, a miss is checked before it is decoded.
    pub fn get_or_decode(&self, encoded: &[u8]) -> Option<Rc<WorkloadAttributes>> {
        self.get_or_insert(encoded, || {
            let encoded = std::str::from_utf8(encoded).ok()?;
            WorkloadMetadata::decode_header(encoded).ok().map(|m| (&m).into())
        })
    }

    /// Looks a peer up in the form the peer-metadata filter publishes ([`published_peer`]), as
    /// read from filter state: a hit needs no UTF-8 check, a miss is checked before it is decoded.
    pub fn get_or_decode_published(&self, published: &[u8]) -> Option<Rc<WorkloadAttributes>> {
        self.get_or_insert(published, || {
            let published = std::str::from_utf8(published).ok()?;
            let (encoded, san) = match published.rsplit_once('\n') {
                Some((encoded, san)) => (encoded, Some(san)),
                None => (published, None),
            };
            let meta = WorkloadMetadata::decode_header(encoded).ok()?;
            let certificate_san = san.filter(|s| !s.is_empty()).map(str::to_string);
            Some(WorkloadAttributes { certificate_san, ..(&meta).into() })
        })
    }

    fn get_or_insert(
        &self,
        id: &[u8],
        decode: impl FnOnce() -> Option<WorkloadAttributes>,
    ) -> Option<Rc<WorkloadAttributes>> {
        let mut last = self.last.try_borrow_mut().ok()?;
        if let Some((key, attrs)) = last.as_ref() {
            if ClaimRef(id).equivalent(key) {
                return Some(attrs.clone());
            }
        }
        if let Some((key, hit)) = self.entries.try_borrow().ok()?.get_key_value(&ClaimRef(id)) {
            *last = Some((key.clone(), hit.clone()));
            return Some(hit.clone());
        }
        let attrs = Rc::new(decode()?);
        let mut entries = self.entries.try_borrow_mut().ok()?;
        let mut order = self.order.try_borrow_mut().ok()?;
        while entries.len() >= self.capacity {
            let Some(old) = order.pop_front() else { break };
            entries.remove(&old);
        }
        let key = ClaimKey(Rc::from(id));
        entries.insert(key.clone(), attrs.clone());
        order.push_back(key.clone());
        *last = Some((key, attrs.clone()));
        Some(attrs)
    }

    pub fn len(&self) -> usize {
        self.entries.try_borrow().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claim(name: &str) -> String {
        let w = WorkloadMetadata {
            name: format!("{name}-0"),
            namespace: "default".into(),
            workload_name: name.into(),
            service_account: format!("bookinfo-{name}"),
            ..WorkloadMetadata::default()
        };
        w.encode_header()
    }

    #[test]
    fn claims_decode_from_bytes_and_publish_as_claim_newline_san() {
        let cache = PeerCache::default();
        let encoded = claim("reviews");
        let peer = cache.get_or_decode(encoded.as_bytes()).unwrap();
        assert!(Rc::ptr_eq(&peer, &cache.get_or_decode(encoded.as_bytes()).unwrap()), "one cache entry");
        assert_eq!(peer.workload_name.as_deref(), Some("reviews"));
        assert!(cache.get_or_decode(b"\xff\xfe not base64").is_none());
        let san = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
        assert_eq!(published_peer(encoded.as_bytes(), san), format!("{encoded}\n{san}").into_bytes());
    }

    #[test]
    fn a_published_peer_carries_the_san_it_was_verified_against() {
        let cache = PeerCache::default();
        let san = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
        let published = published_peer(claim("reviews").as_bytes(), san);
        let peer = cache.get_or_decode_published(&published).unwrap();
        assert_eq!(peer.workload_name.as_deref(), Some("reviews"));
        assert_eq!(peer.certificate_san.as_deref(), Some(san));
        // An earlier filter's bare claim still decodes, without a SAN.
        let bare = cache.get_or_decode_published(claim("reviews").as_bytes()).unwrap();
        assert_eq!((bare.workload_name.as_deref(), bare.certificate_san.as_deref()), (Some("reviews"), None));
        // The same value is decoded once.
        assert!(Rc::ptr_eq(&peer, &cache.get_or_decode_published(&published).unwrap()));
        assert_eq!(cache.len(), 2);
        assert!(cache.get_or_decode_published(b"not base64!\nspiffe://x").is_none());
        // An empty SAN tells nothing (the filters then ask Envoy).
        let empty = cache.get_or_decode_published(&published_peer(claim("ratings").as_bytes(), "")).unwrap();
        assert_eq!(empty.certificate_san, None);
    }

    #[test]
    fn claims_that_differ_near_the_end_are_two_peers() {
        // Two claims of one length that differ only near the end are two peers.
        let cache = PeerCache::default();
        let (a, b) = (claim("reviews-a"), claim("reviews-b"));
        assert_eq!(a.len(), b.len());
        let (pa, pb) = (cache.get_or_decode(a.as_bytes()).unwrap(), cache.get_or_decode(b.as_bytes()).unwrap());
        assert_eq!(pb.workload_name.as_deref(), Some("reviews-b"));
        assert!(!Rc::ptr_eq(&pa, &pb));
        assert!(Rc::ptr_eq(&pa, &cache.get_or_decode(a.as_bytes()).unwrap()));
    }

    #[test]
    fn the_oldest_peer_is_evicted_first() {
        let cache = PeerCache::with_capacity(2);
        let (a, b, c) = (claim("a"), claim("b"), claim("c"));
        let first = cache.get_or_decode(a.as_bytes()).unwrap();
        cache.get_or_decode(b.as_bytes()).unwrap();
        cache.get_or_decode(c.as_bytes()).unwrap();
        assert_eq!(cache.len(), 2);
        assert!(!Rc::ptr_eq(&first, &cache.get_or_decode(a.as_bytes()).unwrap()), "a was evicted and decoded again");
    }

    #[test]
    fn runs_and_alternations_of_callers_each_find_their_own_peer() {
        let cache = PeerCache::with_capacity(2);
        let (a, b, c) = (claim("a"), claim("b"), claim("c"));
        let pa = cache.get_or_decode(a.as_bytes()).unwrap();
        let pb = cache.get_or_decode(b.as_bytes()).unwrap();
        for _ in 0..3 {
            assert!(Rc::ptr_eq(&pa, &cache.get_or_decode(a.as_bytes()).unwrap()));
            assert!(Rc::ptr_eq(&pa, &cache.get_or_decode(a.as_bytes()).unwrap()));
            assert!(Rc::ptr_eq(&pb, &cache.get_or_decode(b.as_bytes()).unwrap()));
        }
        // The peer found last outlives its eviction from the map, and still answers only itself.
        let pc = cache.get_or_decode(c.as_bytes()).unwrap();
        assert_eq!(pc.workload_name.as_deref(), Some("c"));
        assert_eq!(cache.get_or_decode(b.as_bytes()).unwrap().workload_name.as_deref(), Some("b"));
        assert_eq!(cache.get_or_decode(a.as_bytes()).unwrap().workload_name.as_deref(), Some("a"));
        assert!(cache.get_or_decode(b"\xff not base64").is_none());
    }
}
