//! wasmixer-proxy-wasm-host: the engine (`wasmixer-engine`) on Envoy's proxy-wasm ABI. Every
//! call into the proxy that wasmixer's Wasm filters make is here, and nothing else is: raw ABI
//! calls that cannot trap, the modules' own entry points, and what the engine's traits need
//! answered by Envoy.
//!
//! [`component`] is the interface every filter's parts implement (a root's configuration and
//! events, a stream's phases), which the `mixer` filter composes.
//!
//! What it implements, against which engine trait or type:
//!
//! * [`proxy_host::ProxyHost`] implements [`wasmixer_engine::attr::source::AttributeSource`]
//!   (properties, headers, trailers, the clock, workloads) with `proxy_get_property`,
//!   `proxy_get_header_map_*`, `proxy_get_current_time_nanoseconds`, and the log-phase
//!   [`property_batch::PropertyBatch`] over Envoy's `expr_evaluate` foreign function; the
//!   engine's [`RequestCarry`](wasmixer_engine::attr::request_carry::RequestCarry) memoizes its
//!   answers within a request.
//! * [`identity`] reads the node metadata and the peers published in filter state, and hands
//!   them to the engine's [`PeerCache`](wasmixer_engine::attr::identity::PeerCache) to decode.
//! * [`stats`] is the one stats layer: it implements the engine's [`MetricSink`]
//!   ([`stats::MetricRecorder`]: a sample's series, looked up in the engine's `SeriesTable`,
//!   defined with `proxy_define_metric` under a tag-in-name stat, counted) and keeps every
//!   filter's own counters ([`stats::BatchedCounter`]).
//! * [`logger`] routes the `log` crate's records (the engine's logging) to `proxy_log`;
//!   [`entry_points`] exports `_initialize`, the ABI version, the allocator and
//!   `proxy_on_vm_start`, and keeps a filter's contexts in the engine's
//!   [`ContextRegistry`](wasmixer_engine::context_registry::ContextRegistry);
//!   [`plugin_configuration`] reads the configuration the engine parses.
//!
//! Another host (e.g. Envoy's native dynamic modules) is a crate beside this one implementing
//! the same traits ([`AttributeSource`](wasmixer_engine::attr::source::AttributeSource), the
//! sinks: `MetricSink`, `LogSink`, `CheckObserver`) over its own ABI; the engine does not
//! change.
//!
//! Off the proxy target (wasm32-wasip1) the ABI calls are inert ([`abi`]), so this crate builds
//! and unit-tests natively. Filters on the proxy-wasm SDK's dispatcher (`mixer`,
//! `peer-metadata`) take the SDK themselves; this crate does not depend on it.
//!
//! [`MetricSink`]: wasmixer_engine::telemetry::metrics::record::MetricSink

pub mod abi;
pub mod component;
pub mod entry_points;
pub mod identity;
pub mod logger;
pub mod plugin_configuration;
pub mod property_batch;
pub mod proxy_host;
pub mod stats;
