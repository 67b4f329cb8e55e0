//! Workload identities as the proxy-wasm host reads them: the local one from `xds.node`
//! metadata, the listener's direction, and the peers the peer-metadata filter published in
//! filter state. Decoding and caching them is the engine's ([`wasmixer_engine::attr::identity`]).

use std::rc::Rc;

use wasmixer_engine::attr::envoy_bag::Direction;
use wasmixer_engine::attr::identity::{
    node_metadata_json, PeerCache, RootIdentity, DOWNSTREAM_KEY, UNDIRECTED_KEY, UNVERIFIED_KEY, UPSTREAM_KEY,
};
use wasmixer_engine::attr::workload::WorkloadMetadata;
use wasmixer_engine::attr::workload_attributes::WorkloadAttributes;

use crate::abi;

/// The direction of the listener the current stream arrived on (`xds.listener_direction`).
pub fn listener_direction() -> Option<Direction> {
    Direction::from_property(&abi::get_property(&Direction::PROPERTY)?)
}

/// The local workload, from the node metadata Istio's proxies carry (`xds.node.metadata`).
pub fn local_workload() -> Option<Rc<WorkloadAttributes>> {
    let w = local_workload_metadata()?;
    Some(Rc::new(WorkloadAttributes::from(&w)))
}

/// The node metadata as Istio's workload description (`None` when the node has none).
pub fn local_workload_metadata() -> Option<WorkloadMetadata> {
    let bytes = abi::get_property(&["xds", "node", "metadata"])?;
    let json = node_metadata_json(&bytes)?;
    let w = WorkloadMetadata::from_node_metadata(&json);
    (!w.name.is_empty() || !w.namespace.is_empty()).then_some(w)
}

/// A root's identity: the local workload from the node metadata; peers are learnt from streams.
pub fn root_from_node() -> RootIdentity {
    RootIdentity::new(local_workload())
}

/// This stream's verified caller on an inbound listener, if the peer-metadata filter published
/// one.
pub fn resolve_downstream(peers: &PeerCache) -> Option<Rc<WorkloadAttributes>> {
    resolve_key(peers, DOWNSTREAM_KEY)
}

/// This outbound stream's verified upstream workload, once its response announced it.
pub fn resolve_upstream(peers: &PeerCache) -> Option<Rc<WorkloadAttributes>> {
    resolve_key(peers, UPSTREAM_KEY)
}

/// The verified caller on a listener without `traffic_direction`.
pub fn resolve_undirected(peers: &PeerCache) -> Option<Rc<WorkloadAttributes>> {
    resolve_key(peers, UNDIRECTED_KEY)
}

/// Only the unverified claim (when no verified peer was published).
pub fn resolve_unverified(peers: &PeerCache) -> Option<Rc<WorkloadAttributes>> {
    resolve_key(peers, UNVERIFIED_KEY)
}

fn resolve_key(peers: &PeerCache, key: &str) -> Option<Rc<WorkloadAttributes>> {
    peers.get_or_decode_published(&abi::get_property(&["filter_state", key])?)
}
