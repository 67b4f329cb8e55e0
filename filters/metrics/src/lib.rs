//! wasmixer metrics filter (proxy-wasm). The features arrive with their issues; for now the filter
//! loads, accepts its configuration and lets every request through.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(MetricsRoot) });
}}

struct MetricsRoot;

impl Context for MetricsRoot {}

impl RootContext for MetricsRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        log::info!("wasmixer-metrics {} configured", env!("CARGO_PKG_VERSION"));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(MetricsStream))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct MetricsStream;

impl Context for MetricsStream {}

impl HttpContext for MetricsStream {}
