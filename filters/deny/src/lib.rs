//! wasmixer deny filter: Mixer's policy check (rules, denier / listchecker handlers) evaluated
//! inside the sidecar, answering denials in Mixer's format. The logic lives in
//! `wasmixer_shared::policy`; this crate is the proxy-wasm glue.

mod metrics;
mod root;
mod stream;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    wasmixer_shared::host::panic_hook::install("wasmixer-deny");
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::DenyRoot::default()) });
}}
