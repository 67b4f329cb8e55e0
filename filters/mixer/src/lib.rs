//! wasmixer `mixer` filter: the peer-metadata, deny, metrics and access-log filters as one
//! filter, configured by one document (Mixer's single configuration store). Each component is
//! the corresponding filter crate built as a library, implementing the host's
//! [`Component`](wasmixer_proxy_wasm_host::component::Component) interface; this crate only
//! sequences them, as loops over one fixed order. One filter instead of four saves Envoy's
//! per-filter Wasm overhead three times per request, and the components share what a request reveals (direction, peer, response properties) through one
//! [`RequestCarry`](wasmixer_engine::attr::request_carry::RequestCarry) instead of asking Envoy
//! again each.

mod root;
mod sdk_http_call;
mod stream;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    wasmixer_engine::panic_hook::install("wasmixer-mixer");
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> { Box::new(root::MixerRoot::default()) });
}}
