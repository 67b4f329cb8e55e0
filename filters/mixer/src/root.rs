//! The combined root: configures every component from the one document and forwards root
//! events (ticks, HTTP call answers) to the components that use them.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use wasmixer_access_log::root::AccessLogRoot;
use wasmixer_deny::root::DenyRoot;
use wasmixer_engine::attr::envoy_bag::SourceTable;
use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_engine::config::FilterConfig;
use wasmixer_metrics::root::MetricsRoot;
use wasmixer_peer_metadata::config::PeerConfig;
use wasmixer_peer_metadata::root::PeerRoot;
use wasmixer_proxy_wasm_host::abi;
use wasmixer_proxy_wasm_host::plugin_configuration;
use wasmixer_proxy_wasm_host::property_batch::PropertyBatch;

use crate::sdk_http_call;
use crate::stream::MixerStream;

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

/// The `peer_metadata` section of the document (absent: defaults).
fn peer_config(config: &FilterConfig) -> Result<PeerConfig, String> {
    let shares_in_memory = match &config.peer_metadata {
        serde_json::Value::Object(section) => !section.contains_key("publish_filter_state"),
        _ => true,
    };
    let mut peer = PeerConfig::from_section(config.peer_metadata.clone()).map_err(|e| format!("peer_metadata: {e}"))?;
    // The components share the peer in memory; filter state only if asked for.
    if shares_in_memory {
        peer.publish_filter_state = false;
    }
    Ok(peer)
}

impl MixerRoot {
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
        if self.deny.owns_call(token) {
            self.deny.on_http_call_response(token, body_size);
        } else {
            self.access_log.on_http_call_response(token);
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
        let peer = match peer_config(&config) {
            Ok(c) => c,
            Err(e) => return plugin_configuration::reject("wasmixer-mixer", &e),
        };
        if !(self.deny.apply(&config) && self.metrics.apply(&config) && self.access_log.apply(&config)) {
            return false;
        }
        self.share_one_batch();
        self.peer.configure(peer);
        // One tick period for all: the shortest any component needs.
        abi::set_tick_period_ms(self.access_log.tick_period_ms().clamp(1, wasmixer_deny::root::TICK_MS));
        true
    }

    fn on_tick(&mut self) {
        self.peer.flush_counts();
        self.deny.on_tick();
        self.metrics.on_tick();
        self.access_log.on_tick();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let carry = RequestCarry::shared();
        Some(Box::new(MixerStream {
            carry: carry.clone(),
            peer: self.peer.stream(carry.clone()),
            deny: self.deny.stream(context_id, carry.clone()),
            metrics: self.metrics.stream(context_id, carry.clone()),
            access_log: self.access_log.stream(context_id, carry),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn peer_of(document: &str) -> Result<PeerConfig, String> {
        peer_config(&FilterConfig::parse(document.as_bytes()).unwrap())
    }

    #[test]
    fn the_peer_is_shared_in_memory_unless_the_section_asks_for_filter_state() {
        assert!(!peer_of("{}").unwrap().publish_filter_state);
        let section =
            peer_of(r#"{"peer_metadata": {"external_clusters": ["outbound|443||api.example.com"]}}"#).unwrap();
        assert!(!section.publish_filter_state);
        assert_eq!(section.external_clusters, ["outbound|443||api.example.com"]);
        assert!(peer_of(r#"{"peer_metadata": {"publish_filter_state": true}}"#).unwrap().publish_filter_state);
    }

    #[test]
    fn a_bad_peer_section_is_named_in_the_error() {
        let err = peer_of(r#"{"peer_metadata": {"publish_unverified": "yes"}}"#).unwrap_err();
        assert!(err.starts_with("peer_metadata: invalid type: string \"yes\", expected a boolean"), "{err}");
        let err = peer_of(r#"{"peer_metadata": {"external": []}}"#).unwrap_err();
        assert!(err.starts_with("peer_metadata: unknown field `external`"), "{err}");
    }
}
