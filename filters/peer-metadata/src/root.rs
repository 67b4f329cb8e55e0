//! The peer-metadata filter's root: the local workload's announcement, built once.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use wasmixer_engine::attr::identity::PeerCache;
use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_engine::config::FilterConfig;
use wasmixer_engine::self_metrics;
use wasmixer_proxy_wasm_host::abi;
use wasmixer_proxy_wasm_host::component::Component;
use wasmixer_proxy_wasm_host::identity::local_workload_metadata;
use wasmixer_proxy_wasm_host::plugin_configuration;
use wasmixer_proxy_wasm_host::stats::BatchedCounter;

use crate::config::PeerConfig;
use crate::stream::PeerStream;

/// What all streams share.
pub struct PeerShared {
    pub config: PeerConfig,
    /// Our `x-envoy-peer-metadata` value (base64 protobuf Struct), if node metadata exists.
    pub local_metadata: Option<String>,
    /// Our `x-envoy-peer-metadata-id` value (the node id).
    pub local_id: String,
    pub peers: PeerCache,
    /// `wasmixer_peer_metadata_total{direction, result}`, handed to Envoy on the tick.
    pub exchanges: BatchedCounter,
}

/// The exchange counter's `direction` values.
const DIRECTIONS: [&str; 2] = ["inbound", "outbound"];
/// The exchange counter's `result` values: `verified`, `malformed`, and every
/// [`UnverifiedReason`](wasmixer_engine::attr::spiffe::UnverifiedReason) (`as_str`; the test below keeps the list complete).
const RESULTS: [&str; 7] = [
    "verified",
    "malformed",
    "no_mtls",
    "no_certificate",
    "not_spiffe",
    "namespace_mismatch",
    "service_account_mismatch",
];

impl PeerShared {
    /// Counts one exchange (in memory).
    pub fn count_exchange(&self, direction: &str, result: &str) {
        let d = DIRECTIONS.iter().position(|d| *d == direction);
        let r = RESULTS.iter().position(|r| *r == result);
        if let (Some(d), Some(r)) = (d, r) {
            self.exchanges.add(d * RESULTS.len() + r, 1);
        }
    }
}

/// How often counted exchanges reach Envoy.
pub const TICK_MS: u32 = 1_000;

#[derive(Default)]
pub struct PeerRoot {
    shared: Option<Rc<PeerShared>>,
}

fn local_metadata() -> Option<String> {
    local_workload_metadata().map(|meta| meta.encode_header())
}

impl PeerRoot {
    /// A stream of the current configuration, telling `carry` what it learns about the peer.
    pub fn stream(&self, carry: Rc<RequestCarry>) -> PeerStream {
        PeerStream::new(self.shared.clone(), carry)
    }

    /// Takes `config` (already parsed) as the configuration.
    pub fn apply(&mut self, config: PeerConfig) {
        self.flush_counts();
        let local_metadata = local_metadata();
        if local_metadata.is_none() {
            log::warn!("wasmixer-peer-metadata: the node has no workload metadata (NAME, NAMESPACE, ...); nothing will be announced");
        }
        let local_id = abi::get_property(&["xds", "node", "id"])
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        log::info!("wasmixer-peer-metadata {} configured for node {local_id:?}", env!("CARGO_PKG_VERSION"));
        self.shared = Some(Rc::new(PeerShared {
            config,
            local_metadata,
            local_id,
            peers: PeerCache::default(),
            exchanges: BatchedCounter::new(
                self_metrics::PEER_METADATA.name,
                self_metrics::PEER_METADATA.tags,
                [DIRECTIONS.to_vec(), RESULTS.to_vec()],
                64,
            ),
        }));
    }

    /// Hands the counted exchanges to Envoy (the root's tick, and before a reconfiguration).
    pub fn flush_counts(&self) {
        if let Some(shared) = &self.shared {
            shared.exchanges.flush();
        }
    }
}

/// Peer metadata as a component of a larger filter (the `mixer`), configured from the combined
/// document's `peer_metadata` section ([`PeerConfig::from_document`]).
impl Component for PeerRoot {
    type Stream = PeerStream;

    fn configure(&mut self, config: &FilterConfig) -> bool {
        match PeerConfig::from_document(config) {
            Ok(peer) => {
                self.apply(peer);
                true
            }
            // The combined document is the mixer's: its rejection is named so.
            Err(e) => plugin_configuration::reject("wasmixer-mixer", &e),
        }
    }

    fn stream(&self, _context_id: u32, carry: Rc<RequestCarry>) -> PeerStream {
        PeerRoot::stream(self, carry)
    }

    fn on_tick(&mut self) {
        self.flush_counts();
    }
}

impl Context for PeerRoot {}

impl RootContext for PeerRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        match PeerConfig::parse(&plugin_configuration::bytes()) {
            Ok(config) => {
                self.apply(config);
                abi::set_tick_period_ms(TICK_MS);
                true
            }
            Err(e) => plugin_configuration::reject("wasmixer-peer-metadata", &e.to_string()),
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(self.stream(RequestCarry::new())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn on_tick(&mut self) {
        self.flush_counts();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmixer_engine::attr::spiffe::UnverifiedReason;

    #[test]
    fn every_unverified_reason_is_an_exchange_result() {
        for reason in [
            UnverifiedReason::NoMtls,
            UnverifiedReason::NoCertificate,
            UnverifiedReason::NotSpiffe,
            UnverifiedReason::NamespaceMismatch,
            UnverifiedReason::ServiceAccountMismatch,
        ] {
            // A new variant fails to compile here.
            match reason {
                UnverifiedReason::NoMtls
                | UnverifiedReason::NoCertificate
                | UnverifiedReason::NotSpiffe
                | UnverifiedReason::NamespaceMismatch
                | UnverifiedReason::ServiceAccountMismatch => {}
            }
            assert!(RESULTS.contains(&reason.as_str()), "{reason:?}");
        }
    }
}
