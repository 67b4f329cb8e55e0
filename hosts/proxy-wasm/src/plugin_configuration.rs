//! The plugin's configuration as every wasmixer root reads it, and how a root turns one down.

use wasmixer_engine::config::FilterConfig;

use crate::abi::{self, BufferType};

/// Largest configuration accepted (bytes).
pub const MAX_BYTES: usize = 4 << 20;

/// The raw configuration (Envoy's `configuration`, a WasmPlugin's `pluginConfig`); empty when
/// there is none.
pub fn bytes() -> Vec<u8> {
    abi::get_buffer(BufferType::PluginConfiguration, MAX_BYTES).unwrap_or_default()
}

/// The configuration document.
pub fn filter_config() -> Result<FilterConfig, String> {
    FilterConfig::parse(&bytes()).map_err(|e| e.to_string())
}

/// What a filter's `on_configure` does: reads and parses the configuration and hands it to
/// `apply`; a document that does not parse is turned down with [`reject`].
pub fn configure(filter: &str, apply: impl FnOnce(&FilterConfig) -> bool) -> bool {
    match filter_config() {
        Ok(config) => apply(&config),
        Err(e) => reject(filter, &e),
    }
}

/// Turns a configuration down for `on_configure` (which then returns `false`, so Envoy keeps
/// serving with the previous configuration, if there was one): logs why and counts it in
/// `wasmixer_config_rejected_total`.
pub fn reject(filter: &str, error: &str) -> bool {
    log::error!("{filter}: configuration rejected: {error}");
    if let Some(id) = abi::define_metric(abi::MetricType::Counter, wasmixer_engine::self_metrics::CONFIG_REJECTED.name)
    {
        abi::increment_metric(id, 1);
    }
    false
}
