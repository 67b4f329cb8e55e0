//! wasmixer-shared: everything the wasmixer filters and the `wasmixer` command have in common.
//!
//! Nothing in this crate talks to a proxy: host access goes through the [`expr::AttributeBag`]
//! trait, so every piece of logic here runs (and is tested) natively and on wasm32.

pub mod attr;
pub mod bytes;
pub mod config;
pub mod diag;
pub mod expr;
pub mod gostd;
pub mod host;
pub mod keyed_hash;
pub mod policy;
pub mod self_metrics;
pub mod sorting;
pub mod telemetry;
