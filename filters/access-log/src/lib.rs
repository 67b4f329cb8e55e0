//! wasmixer access-log filter: Mixer's `logentry` template and `stdio` adapter inside the
//! sidecar. Lines are rendered in `on_log` exactly as the stdio adapter wrote them
//! (`wasmixer_engine::telemetry::logs::plan`) and delivered
//!
//! * to Envoy's own access loggers (stdout, stderr, file) through filter state
//!   `wasm.<key>`, which a logger prints with `%FILTER_STATE(wasm.<key>:PLAIN)%` (see
//!   `envoy-config/access-log/README.md`), and/or
//! * to a collector over HTTP, batched from the root context (`telemetry::logs::batch`).

//!
//! Built with the `standalone` feature (the default) it is a filter of its own; without it, a
//! component of the `mixer` filter.

#[cfg(all(feature = "standalone", target_arch = "wasm32"))]
mod entry_points;
mod metrics;
pub mod root;
pub mod stream;
