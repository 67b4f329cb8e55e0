//! wasmixer peer-metadata filter: Istio's HTTP metadata exchange (`x-envoy-peer-metadata`,
//! `x-envoy-peer-metadata-id`) on stock Envoy. It announces the local workload to upstreams,
//! reads and strips the peer's announcement, verifies the claim against the mTLS identity, and
//! publishes the peer in filter state for the other wasmixer filters.

mod config;
mod root;
mod stream;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    wasmixer_shared::host::panic_hook::install("wasmixer-peer-metadata");
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::PeerRoot::default()) });
}}
