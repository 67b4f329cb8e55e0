//! wasmixer peer-metadata filter: Istio's HTTP metadata exchange (`x-envoy-peer-metadata`,
//! `x-envoy-peer-metadata-id`) on stock Envoy. It announces the local workload to upstreams,
//! reads and strips the peer's announcement, verifies the claim against the mTLS identity, and
//! publishes the peer in filter state for the other wasmixer filters.

//! Built with the `standalone` feature (the default) it is a filter of its own; without it, a
//! component of the `mixer` filter.

pub mod config;
pub mod root;
pub mod stream;

#[cfg(feature = "standalone")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    wasmixer_engine::panic_hook::install("wasmixer-peer-metadata");
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> { Box::new(root::PeerRoot::default()) });
}}
