//! What every filter with its own proxy-wasm entry points (no SDK dispatcher) exports besides
//! its callbacks: [`common_entry_points!`](crate::common_entry_points) gives the module's
//! `_initialize` (constructors, then logging into Envoy's log and the panic hook), the ABI
//! version, the allocator Envoy copies values in with, and `proxy_on_vm_start`.

use std::cell::Cell;

use super::abi::{self, MetricType};
use super::{logger, panic_hook};
use crate::diag::{LogLimiter, DEFAULT_INTERVAL_NS};

/// What `_initialize` does after the module's constructors.
pub fn initialize(filter: &'static str) {
    logger::install(log::LevelFilter::Info);
    panic_hook::install(filter);
}

/// `proxy_on_vm_start`: announces the filter and its version.
pub fn vm_started(filter: &str, version: &str) -> bool {
    log::info!("{filter} {version} started");
    true
}

/// What a filter's registry could not serve as configured (a stream without a kept root, a
/// kept value dropped to make room): counted in one counter and logged, rate-limited.
pub struct Lost {
    filter: &'static str,
    metric_name: &'static str,
    metric: Cell<Option<u32>>,
    limiter: LogLimiter,
}

impl Lost {
    pub const fn new(filter: &'static str, metric_name: &'static str) -> Lost {
        Lost { filter, metric_name, metric: Cell::new(None), limiter: LogLimiter::new() }
    }

    /// Counts one loss and logs `what` (at most every 10 s, with the number suppressed).
    pub fn count(&self, what: &str) {
        let id = self.metric.get().or_else(|| {
            let id = abi::define_metric(MetricType::Counter, self.metric_name);
            self.metric.set(id);
            id
        });
        if let Some(id) = id {
            abi::increment_metric(id, 1);
        }
        if let Some(suppressed) = self.limiter.admit(abi::now_nanos(), DEFAULT_INTERVAL_NS) {
            log::error!("{}: {what} ({suppressed} similar suppressed)", self.filter);
        }
    }
}

/// Exports `_initialize`, `proxy_abi_version_0_2_1`, `proxy_on_memory_allocate` and
/// `proxy_on_vm_start` for the filter named `$filter` (e.g. `"wasmixer-deny"`).
#[macro_export]
macro_rules! common_entry_points {
    ($filter:expr) => {
        #[cfg(target_os = "wasi")]
        extern "C" {
            fn __wasm_call_ctors();
        }

        #[no_mangle]
        pub extern "C" fn _initialize() {
            #[cfg(target_os = "wasi")]
            // SAFETY: the reactor's one-time constructors, run once by the host before any callback.
            unsafe {
                __wasm_call_ctors();
            }
            $crate::host::entry_points::initialize($filter);
        }

        #[no_mangle]
        pub extern "C" fn proxy_abi_version_0_2_1() {}

        #[no_mangle]
        pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
            $crate::host::abi::allocate_for_host(size)
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> bool {
            $crate::host::entry_points::vm_started($filter, env!("CARGO_PKG_VERSION"))
        }
    };
}
