//! wasmixer access-log filter: Mixer's `logentry` template and `stdio` adapter inside the
//! sidecar. Lines are rendered in `on_log` exactly as the stdio adapter wrote them
//! (`wasmixer_shared::telemetry::log_plan`) and delivered
//!
//! * to Envoy's own access loggers (stdout, stderr, file) through filter state
//!   `wasm.<key>`, which a logger prints with `%FILTER_STATE(wasm.<key>:PLAIN)%` (see
//!   `envoy-config/access-log/README.md`), and/or
//! * to a collector over HTTP, batched from the root context (`telemetry::log_batch`).

//!
//! Built with the `standalone` feature (the default) it is a filter of its own; without it, a
//! component of the `mixer` filter.

mod metrics;
pub mod root;
pub mod sdk_http_call;
pub mod stream;

#[cfg(feature = "standalone")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    wasmixer_shared::host::panic_hook::install("wasmixer-access-log");
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> { Box::new(root::AccessLogRoot::default()) });
}}
