//! Test-only: the Istio state emulator, an HTTP filter that stands in for Istio's native
//! peer-metadata filter (Istio 1.22+) as far as stock Envoy 1.40 allows. Placed on an inbound
//! chain, it writes a configured peer into the stream's filter state in one of Istio's formats,
//! for wasmixer's peer-metadata filter to find there (`engine/src/attr/istio_peer_state.rs`).
//! Never shipped: `make test-wasm-modules` builds it into `target/test-wasm/`, not `dist/`.
//!
//! Configuration (JSON): `{"format": "struct"|"flatnode", "peers": {"<name>": {"namespace",
//! "workload", "app", "version", "identity"?}}}`. A request's `x-istio-state-emulator-peer`
//! header names the peer written for it; without one (or with an unknown name) nothing is
//! written. One chain can so try several peers, and two emulators (one per format) can share it.
//!
//! What is written, with Envoy's `declare_property` (in the root context) and `set_property`:
//! - `flatnode`, Istio 1.22/1.23 **exactly**: a CelState of FlatBuffers type with the `FlatNode`
//!   schema (`flat_node.fbs`, wasmixer's own text of the documented fields) under
//!   `wasm.downstream_peer`, the key, type and bytes Istio uses.
//! - `struct`, Istio 1.25+ **approximately**: the same CelState Istio uses (Protobuf type, schema
//!   `google.protobuf.Struct`, the same fields) but under `wasm.downstream_peer`, where Istio
//!   writes the bare `downstream_peer`. A Wasm module cannot write that key: `set_property`
//!   always prefixes `wasm.`, and no stock Envoy object factory makes a CelState or Struct under
//!   an arbitrary key (`set_envoy_filter_state` takes only registered factories, whose objects
//!   read as plain bytes). The reader's bare-key path for this format is covered by its unit tests.
//! - Istio 1.24's `WorkloadMetadataObject` (and 1.29's `*_obj`) cannot be made at all: it is an
//!   object with field access and no stock factory creates one.
//!
//! Nothing here checks the peer: like Istio, the emulator writes whatever it is told to.

use std::collections::BTreeMap;

use serde::Deserialize;

pub mod flat_node;
pub mod proto_struct;

/// The request header naming the configured peer to write for the request.
pub const PEER_HEADER: &str = "x-istio-state-emulator-peer";

/// The property the emulator declares and sets; Envoy keeps it as `wasm.downstream_peer`.
pub const PROPERTY: &str = "downstream_peer";

/// The schema of a Struct CelState, as Istio 1.25+ declares it.
pub const STRUCT_SCHEMA: &str = "type.googleapis.com/google.protobuf.Struct";

/// The binary FlatBuffers schema of `flat_node.fbs`, empty when `flatc` was missing at build
/// time (build.rs).
pub const FLAT_NODE_BFBS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/flat_node.bfbs"));

/// Istio's state formats the emulator can write.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// 1.25+: a `google.protobuf.Struct` CelState (under the `wasm.` key, see the crate doc).
    Struct,
    /// 1.22/1.23: a FlatBuffers `FlatNode` CelState.
    Flatnode,
}

/// A peer as Istio's filter would have learnt it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub namespace: String,
    pub workload: String,
    pub app: String,
    pub version: String,
    /// `spiffe://<td>/ns/<ns>/sa/<sa>`: Istio has it only when workload discovery found the peer.
    #[serde(default)]
    pub identity: Option<String>,
}

/// The plugin configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub format: Format,
    pub peers: BTreeMap<String, Peer>,
}

impl Config {
    pub fn parse(bytes: &[u8]) -> Result<Config, String> {
        let config: Config = serde_json::from_slice(bytes).map_err(|e| format!("configuration: {e}"))?;
        if config.format == Format::Flatnode && FLAT_NODE_BFBS.is_empty() {
            return Err("format flatnode: built without flatc, so without the FlatNode schema".to_string());
        }
        Ok(config)
    }

    /// The schema `declare_property` takes for this format.
    pub fn schema(&self) -> &'static [u8] {
        match self.format {
            Format::Struct => STRUCT_SCHEMA.as_bytes(),
            Format::Flatnode => FLAT_NODE_BFBS,
        }
    }

    /// Envoy's `WasmType` number for this format.
    pub fn wasm_type(&self) -> u64 {
        match self.format {
            Format::Struct => 3,
            Format::Flatnode => 2,
        }
    }
}

impl Peer {
    /// The pod name Istio would know (made up: `<workload>-0`).
    fn pod(&self) -> String {
        format!("{}-0", self.workload)
    }

    /// The value Istio's filter stores for this peer, in `format`.
    pub fn encode(&self, format: Format) -> Vec<u8> {
        match format {
            Format::Struct => self.to_struct(),
            Format::Flatnode => self.to_flat_node(),
        }
    }

    /// Istio 1.25+'s Struct (`WorkloadMetadataObject::serializeAsProto`): string fields, each
    /// present only when non-empty; app and version are fields of their own.
    fn to_struct(&self) -> Vec<u8> {
        let pod = self.pod();
        let mut fields: Vec<(&str, &str)> = vec![
            ("type", "deployment"),
            ("workload", &self.workload),
            ("name", &pod),
            ("cluster", "Kubernetes"),
            ("namespace", &self.namespace),
            ("app", &self.app),
            ("version", &self.version),
        ];
        if let Some(identity) = &self.identity {
            fields.push(("identity", identity));
        }
        fields.retain(|(_, v)| !v.is_empty());
        proto_struct::string_struct(&fields)
    }

    /// Istio 1.22/1.23's FlatNode as filled from workload discovery or the header exchange:
    /// app and version are labels.
    fn to_flat_node(&self) -> Vec<u8> {
        let owner = format!("kubernetes://apis/apps/v1/namespaces/{}/deployments/{}", self.namespace, self.workload);
        let node = flat_node::FlatNode {
            name: &self.pod(),
            namespace: &self.namespace,
            labels: &[("app", &self.app), ("version", &self.version)],
            owner: &owner,
            workload_name: &self.workload,
            cluster_id: "Kubernetes",
            identity: self.identity.as_deref(),
        };
        node.encode()
    }
}

/// The arguments of Envoy's `declare_property` foreign function (`DeclarePropertyArguments`:
/// name=1, readonly=2, type=3, schema=4; the life span is left at FilterChain, 0).
pub fn declare_property_args(config: &Config) -> Vec<u8> {
    let mut out = Vec::new();
    proto_struct::bytes_field(1, PROPERTY.as_bytes(), &mut out);
    proto_struct::varint_field(2, 1, &mut out);
    proto_struct::varint_field(3, config.wasm_type(), &mut out);
    proto_struct::bytes_field(4, config.schema(), &mut out);
    out
}

mod plugin;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn configuration_names_peers_and_a_format() {
        let c = Config::parse(
            br#"{"format": "struct", "peers": {"v3": {"namespace": "default", "workload": "reviews-v3",
                "app": "reviews", "version": "v3", "identity": "spiffe://cluster.local/ns/default/sa/x"}}}"#,
        )
        .unwrap();
        assert_eq!((c.format, c.wasm_type()), (Format::Struct, 3));
        assert_eq!(c.peers["v3"].identity.as_deref(), Some("spiffe://cluster.local/ns/default/sa/x"));
        assert!(Config::parse(br#"{"format": "yaml", "peers": {}}"#).is_err());
        assert!(Config::parse(br#"{"format": "struct", "peers": {}, "extra": 1}"#).is_err());
    }

    #[test]
    fn declare_property_arguments() {
        let c = Config { format: Format::Struct, peers: BTreeMap::new() };
        let mut want = vec![0x0a, 15];
        want.extend_from_slice(b"downstream_peer");
        want.extend_from_slice(&[0x10, 1, 0x18, 3, 0x22, STRUCT_SCHEMA.len() as u8]);
        want.extend_from_slice(STRUCT_SCHEMA.as_bytes());
        assert_eq!(declare_property_args(&c), want);
    }
}
