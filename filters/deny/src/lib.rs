//! wasmixer deny filter: Mixer's policy check (rules, denier / listchecker handlers) evaluated
//! inside the sidecar, answering denials in Mixer's format. The logic lives in
//! `wasmixer_engine::policy`; this crate is the proxy glue. Built with the `standalone` feature
//! (the default) it is a filter of its own with its own entry points (no SDK dispatcher, so no
//! VM call Envoy would make only for the dispatcher's bookkeeping); without it, a component of
//! the `mixer` filter.

pub mod entry_points;

#[doc(hidden)]
pub use wasmixer_proxy_wasm_host as __host;
mod metrics;
pub mod root;
pub mod stream;

#[cfg(all(feature = "standalone", target_arch = "wasm32"))]
entry_points!(with_response_phase);
