//! The Istio sidecar profile: what an Istio 1.22-1.29 sidecar puts ahead of every WasmPlugin,
//! reproduced with stock Envoy so the mesh can run the seed scenarios as they would run there.
//!
//! istiod adds Istio's native metadata-exchange filter (`istio.metadata_exchange`) to every
//! sidecar's HTTP chains (`PILOT_ENABLE_METADATA_EXCHANGE`, on by default: istio/istio 1.29
//! `pilot/pkg/features/telemetry.go:51`), ahead of the `AUTHN`-phase WasmPlugins
//! (`pilot/pkg/networking/core/listener_builder.go:404-412`). Whatever it found, that filter
//! removes `x-envoy-peer-metadata` and `x-envoy-peer-metadata-id` from requests and responses
//! (istio/proxy 1.29 `source/extensions/filters/http/peer_metadata/filter.cc:146-148`,
//! `:393-404`). Stock Envoy's `header_mutation` filter, first in the chain, does the same: it
//! removes them from requests before our filters run and, since response filters run in
//! reverse order, from responses after ours ran, as Istio's filter does.
//!
//! What this profile cannot reproduce: Istio's filter also *keeps* the peer it learned in
//! filter state for later filters. Stock Envoy has no filter that writes an object of Istio's
//! types (`WorkloadMetadataObject`, a CelState with Istio's FlatBuffers or Struct prototype);
//! the readers of those formats are tested on the bytes Envoy hands a Wasm module for each
//! (`engine/src/attr/istio_peer_state.rs`). Under this profile wasmixer's filters therefore find
//! the peer through their own exchange headers, which Istio's filter leaves alone. The
//! end-to-end test `integration/tests/istio_peer_state.rs` adds a test-only Wasm module after
//! this filter that writes Istio's state as far as a Wasm module can (1.22/1.23 exactly, 1.25+
//! under the `wasm.` key: `integration/istio-state-emulator/`).

use crate::bootstrap::json_string;

/// The headers Istio's peer-metadata filter removes from requests and responses.
pub const ISTIO_EXCHANGE_HEADERS: [&str; 2] = ["x-envoy-peer-metadata", "x-envoy-peer-metadata-id"];

/// The HTTP filter entry (one-line JSON) that stands in for Istio's metadata exchange: first in
/// each chain, it strips Istio's exchange headers both ways.
pub fn metadata_exchange_filter() -> String {
    let removals: Vec<String> =
        ISTIO_EXCHANGE_HEADERS.iter().map(|h| format!(r#"{{"remove":{}}}"#, json_string(h))).collect();
    let removals = removals.join(",");
    format!(
        r#"{{"name":"istio.metadata_exchange","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation","mutations":{{"request_mutations":[{removals}],"response_mutations":[{removals}]}}}}}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_removes_both_headers_both_ways() {
        let v: serde_json::Value = serde_json::from_str(&metadata_exchange_filter()).unwrap_or_default();
        let m = &v["typed_config"]["mutations"];
        for side in ["request_mutations", "response_mutations"] {
            let removed: Vec<&str> =
                m[side].as_array().into_iter().flatten().filter_map(|r| r["remove"].as_str()).collect();
            assert_eq!(removed, ISTIO_EXCHANGE_HEADERS, "{side}");
        }
    }
}
