//! wasmixer deny filter: Mixer's policy check (rules, denier / listchecker handlers) evaluated
//! inside the sidecar, answering denials in Mixer's format. The logic lives in
//! `wasmixer_shared::policy`; this crate is the proxy-wasm glue. Built with the `standalone`
//! feature (the default) it is a filter of its own; without it, a component of the `mixer` filter.

mod metrics;
pub mod root;
pub mod stream;

#[cfg(feature = "standalone")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    wasmixer_shared::host::panic_hook::install("wasmixer-deny");
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> { Box::new(root::DenyRoot::default()) });
}}
