//! The wasmixer engine: everything the wasmixer filters and the `wasmixer` command have in
//! common: Mixer's configuration model, the CEXL expression engine, policy, telemetry, and the
//! attribute layer.
//!
//! Nothing in this crate talks to a proxy (no ABI import, no proxy SDK): a proxy host crate
//! (`hosts/proxy-wasm`, package `wasmixer-proxy-wasm-host`) implements the traits through which
//! the engine reaches the proxy, and filters hand the engine what the host read:
//!
//! * [`attr::source::AttributeSource`]: Envoy as the attribute layer sees it (properties,
//!   headers, the clock, workloads); [`attr::envoy_bag::EnvoyBag`] turns it into the
//!   [`expr::AttributeBag`] expressions read.
//! * [`telemetry::metrics::record::MetricSink`] (stats), [`telemetry::logs::render::LogSink`] (access
//!   log lines), [`policy::deny::CheckObserver`] (what a check did): where the engine's results
//!   go; a filter implements them over its host's metrics and calls.
//! * The clock is [`attr::source::AttributeSource::now_nanos`]; plans that need the time take
//!   it as an argument.
//! * Logging goes through the `log` crate; the host installs the logger.
//!
//! So every piece of logic here runs (and is tested) natively and on wasm32.

pub mod attr;
pub mod bytes;
pub mod config;
pub mod context_registry;
pub mod diag;
pub mod expr;
pub mod gostd;
pub mod json_escape;
pub mod keyed_hash;
pub mod panic_hook;
pub mod policy;
pub mod self_metrics;
pub mod sorting;
pub mod telemetry;
