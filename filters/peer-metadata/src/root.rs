//! The peer-metadata filter's root: the local workload's announcement, built once.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use wasmixer_engine::attr::identity::PeerCache;
use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_engine::self_metrics;
use wasmixer_proxy_wasm_host::abi;
use wasmixer_proxy_wasm_host::identity::local_workload_metadata;
use wasmixer_proxy_wasm_host::plugin_configuration;
use wasmixer_proxy_wasm_host::tagged_metrics::BatchedCounter;

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
    pub exchanges: BatchedCounter<2>,
}

/// The exchange counter's tags, as declared in [`self_metrics::PEER_METADATA`].
const PEER_METADATA_TAGS: [&str; 2] = ["direction", "result"];

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
    pub fn configure(&mut self, config: PeerConfig) {
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
            exchanges: BatchedCounter::new(self_metrics::PEER_METADATA.name, PEER_METADATA_TAGS, 64),
        }));
    }

    /// Hands the counted exchanges to Envoy (the root's tick, and before a reconfiguration).
    pub fn flush_counts(&self) {
        if let Some(shared) = &self.shared {
            shared.exchanges.flush();
        }
    }
}

impl Context for PeerRoot {}

impl RootContext for PeerRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        match PeerConfig::parse(&plugin_configuration::bytes()) {
            Ok(config) => {
                self.configure(config);
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
