//! Attributes: Mixer's vocabulary (names, types) and how each one is read from Envoy:
//! properties, headers, node metadata and exchanged peer metadata.

pub mod base64;
pub mod batch;
pub mod envoy_bag;
pub mod identity;
pub mod istio_peer_state;
pub mod jwt;
pub mod pairs;
pub mod peer_metadata;
pub mod protobuf_struct;
pub mod request_carry;
pub mod source;
pub mod sources;
pub mod spiffe;
pub mod tcp_bag;
pub mod vocabulary;
pub mod workload;
pub mod workload_attributes;
