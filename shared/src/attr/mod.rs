//! Attributes: Mixer's vocabulary (names, types) and how each one is read from Envoy:
//! properties, headers, node metadata and exchanged peer metadata.

pub mod envoy_bag;
pub mod host;
pub mod sources;
pub mod vocabulary;
pub mod workload_attributes;
pub mod base64;
pub mod protobuf_struct;
pub mod peer_metadata;
pub mod spiffe;
pub mod workload;
