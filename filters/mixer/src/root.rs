//! The combined root: configures every component from the one document and forwards root
//! events (ticks, HTTP call answers) to the components that use them.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use wasmixer_access_log::root::AccessLogRoot;
use wasmixer_deny::root::DenyRoot;
use wasmixer_metrics::root::MetricsRoot;
use wasmixer_peer_metadata::config::PeerConfig;
use wasmixer_peer_metadata::root::PeerRoot;
use wasmixer_shared::host::abi::{self, BufferType};
use wasmixer_shared::host::request_carry::RequestCarry;

use crate::stream::MixerStream;

/// Largest configuration accepted (bytes).
const MAX_CONFIG_BYTES: usize = 4 << 20;

#[derive(Default)]
pub struct MixerRoot {
    peer: PeerRoot,
    deny: DenyRoot,
    metrics: MetricsRoot,
    access_log: AccessLogRoot,
}

/// The `peer_metadata` section of the document (absent: defaults).
fn peer_config() -> Result<PeerConfig, String> {
    let bytes = abi::get_buffer(BufferType::PluginConfiguration, MAX_CONFIG_BYTES).unwrap_or_default();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(PeerConfig::default());
    }
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("configuration: {e}"))?;
    let mut section = match doc.get("peer_metadata") {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(serde_json::Map::new()),
        Some(section) => section.clone(),
    };
    // The components share the peer in memory; filter state only if asked for.
    if let Some(obj) = section.as_object_mut() {
        obj.entry("publish_filter_state").or_insert(serde_json::Value::Bool(false));
    }
    PeerConfig::parse(section.to_string().as_bytes()).map_err(|e| format!("peer_metadata: {e}"))
}

impl Context for MixerRoot {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, trailers: usize) {
        if self.deny.owns_call(token) {
            self.deny.on_http_call_response(token, headers, body_size, trailers);
        } else {
            self.access_log.on_http_call_response(token, headers, body_size, trailers);
        }
    }
}

impl RootContext for MixerRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        log::info!("wasmixer-mixer {} started", env!("CARGO_PKG_VERSION"));
        true
    }

    fn on_configure(&mut self, size: usize) -> bool {
        let peer = match peer_config() {
            Ok(c) => c,
            Err(e) => {
                log::error!("wasmixer-mixer: configuration rejected: {e}");
                return false;
            }
        };
        // Each component reads the document and logs its own verdict.
        if !(self.deny.on_configure(size) && self.metrics.on_configure(size) && self.access_log.on_configure(size)) {
            return false;
        }
        self.peer.configure(peer);
        // One tick period for all: the shortest any component needs.
        abi::set_tick_period_ms(self.access_log.tick_period_ms().clamp(1, wasmixer_deny::root::TICK_MS));
        true
    }

    fn on_tick(&mut self) {
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
