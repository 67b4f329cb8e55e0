//! The combined root: configures every component from the one document and forwards root
//! events (ticks, HTTP call answers) to the components that use them.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use wasmixer_access_log::root::AccessLogRoot;
use wasmixer_deny::root::DenyRoot;
use wasmixer_engine::attr::envoy_bag::SourceTable;
use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_metrics::root::MetricsRoot;
use wasmixer_peer_metadata::root::PeerRoot;
use wasmixer_proxy_wasm_host::abi;
use wasmixer_proxy_wasm_host::component::Component;
use wasmixer_proxy_wasm_host::plugin_configuration;
use wasmixer_proxy_wasm_host::property_batch::PropertyBatch;

use crate::sdk_http_call;
use crate::stream::{InboundOnly, MixerStream};

pub struct MixerRoot {
    peer: PeerRoot,
    deny: DenyRoot,
    metrics: MetricsRoot,
    access_log: AccessLogRoot,
}

impl Default for MixerRoot {
    fn default() -> MixerRoot {
        MixerRoot {
            peer: PeerRoot::default(),
            // This filter runs on the SDK's dispatcher, which must learn every call's token.
            deny: DenyRoot::with_http_caller(sdk_http_call::dispatch),
            metrics: MetricsRoot::default(),
            access_log: AccessLogRoot::with_http_caller(sdk_http_call::dispatch),
        }
    }
}

impl MixerRoot {
    /// The components in composition order (`peer-metadata, deny, metrics, access-log`): root
    /// events go to them in this order.
    fn components(&mut self) -> [&mut dyn Component; 4] {
        [&mut self.peer, &mut self.deny, &mut self.metrics, &mut self.access_log]
    }

    /// The metrics and access-log components read their log-phase properties for the same
    /// request: one batch of both tables' properties answers them with one host call.
    fn share_one_batch(&mut self) {
        let tables: Vec<&SourceTable> = self.metrics.table().into_iter().chain(self.access_log.table()).collect();
        let batch = PropertyBatch::register(&tables).map(Rc::new);
        self.metrics.share_batch(batch.clone());
        self.access_log.share_batch(batch);
    }
}

impl Context for MixerRoot {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        // The first component that owns the call takes the answer (the access log takes any).
        for component in self.components() {
            if component.on_http_call_response(token, body_size) {
                return;
            }
        }
    }
}

impl RootContext for MixerRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        log::info!("wasmixer-mixer {} started", env!("CARGO_PKG_VERSION"));
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        // One document, parsed once; each component checks its part and logs its own verdict.
        let config = match plugin_configuration::filter_config() {
            Ok(c) => c,
            Err(e) => return plugin_configuration::reject("wasmixer-mixer", &e),
        };
        if !self.components().into_iter().all(|component| component.configure(&config)) {
            return false;
        }
        // What only the composition knows: one property batch for both telemetry components,
        self.share_one_batch();
        // and one tick period for all: the shortest any component needs.
        abi::set_tick_period_ms(self.access_log.tick_period_ms().clamp(1, wasmixer_deny::root::TICK_MS));
        true
    }

    fn on_tick(&mut self) {
        for component in self.components() {
            component.on_tick();
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let carry = RequestCarry::shared();
        Some(Box::new(MixerStream {
            peer: Component::stream(&self.peer, context_id, carry.clone()),
            deny: InboundOnly::new(Component::stream(&self.deny, context_id, carry.clone()), carry.clone()),
            metrics: Component::stream(&self.metrics, context_id, carry.clone()),
            access_log: Component::stream(&self.access_log, context_id, carry),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
