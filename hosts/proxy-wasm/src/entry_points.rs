//! What every filter with its own proxy-wasm entry points (no SDK dispatcher) shares:
//! [`common_entry_points!`](crate::common_entry_points) exports the module's `_initialize`
//! (constructors, then logging into Envoy's log and the panic hook), the ABI version, the
//! allocator Envoy copies values in with, and `proxy_on_vm_start`; [`FilterContexts`] holds the
//! filter's roots and streams between callbacks.

use std::cell::{Cell, RefCell};

use wasmixer_engine::context_registry::{ContextRegistry, MAX_ROOTS};
use wasmixer_engine::diag::{LogLimiter, DEFAULT_INTERVAL_NS};
use wasmixer_engine::panic_hook;

use crate::abi::{self, MetricType};
use crate::logger;

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

/// A filter's roots and what its streams keep between callbacks ([`ContextRegistry`]), and
/// what it could not serve: one per VM thread, in a `thread_local!`.
pub struct FilterContexts<R, P> {
    filter: &'static str,
    registry: RefCell<ContextRegistry<R, P>>,
    lost: Lost,
}

impl<R, P> FilterContexts<R, P> {
    /// Contexts of `filter` (e.g. `"wasmixer-deny"`) where at most `pending_cap` streams keep a
    /// value at once; losses are counted in counter `lost_metric`.
    pub fn new(filter: &'static str, lost_metric: &'static str, pending_cap: usize) -> Self {
        FilterContexts {
            filter,
            registry: RefCell::new(ContextRegistry::with_pending_cap(pending_cap)),
            lost: Lost::new(filter, lost_metric),
        }
    }

    /// Runs `f` on the registry; `None` if it is busy (a callback re-entered).
    pub fn with<T>(&self, f: impl FnOnce(&mut ContextRegistry<R, P>) -> T) -> Option<T> {
        self.registry.try_borrow_mut().ok().map(|mut r| f(&mut r))
    }

    /// Runs `f` on root `id`'s state; `None` if the root is not kept (or the registry is busy).
    pub fn with_root<T>(&self, id: u32, f: impl FnOnce(&mut R) -> T) -> Option<T> {
        self.with(|r| r.root(id).map(f)).flatten()
    }

    /// `proxy_on_context_create` of root `id`: its state made by `new_root`. A root retired to
    /// make room is handed to `retire` (to report what it counted) and logged.
    pub fn create_root(&self, id: u32, new_root: impl FnOnce() -> R, retire: impl FnOnce(R)) {
        if let Some((old, root)) = self.with(|r| r.create_root(id, new_root)).flatten() {
            retire(root);
            log::warn!(
                "{}: root context {old} retired to make room for {id} (more than {MAX_ROOTS} configurations in one VM)",
                self.filter
            );
        }
    }

    /// `proxy_on_configure` of root `id` (made by `new_root` if Envoy never announced it).
    pub fn configure(
        &self,
        id: u32,
        new_root: impl FnOnce() -> R,
        retire: impl FnOnce(R),
        configure: impl FnOnce(&mut R) -> bool,
    ) -> bool {
        self.create_root(id, new_root, retire);
        self.with_root(id, configure).unwrap_or(false)
    }

    /// Counts one request or report the contexts could not serve and logs `what`.
    pub fn lost(&self, what: &str) {
        self.lost.count(what);
    }
}

/// What a filter's registry could not serve as configured (a stream without a kept root, a
/// kept value dropped to make room): counted in one counter and logged, rate-limited.
struct Lost {
    filter: &'static str,
    metric_name: &'static str,
    metric: Cell<Option<u32>>,
    limiter: LogLimiter,
}

impl Lost {
    const fn new(filter: &'static str, metric_name: &'static str) -> Lost {
        Lost { filter, metric_name, metric: Cell::new(None), limiter: LogLimiter::new() }
    }

    /// Counts one loss and logs `what` (at most every 10 s, with the number suppressed).
    fn count(&self, what: &str) {
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
            $crate::entry_points::initialize($filter);
        }

        #[no_mangle]
        pub extern "C" fn proxy_abi_version_0_2_1() {}

        #[no_mangle]
        pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
            $crate::abi::allocate_for_host(size)
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> bool {
            $crate::entry_points::vm_started($filter, env!("CARGO_PKG_VERSION"))
        }
    };
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn roots_configure_once_created_and_retire_through_the_callback() {
        let contexts: FilterContexts<u32, ()> = FilterContexts::new("wasmixer-test", "wasmixer_test_lost_total", 4);
        // Envoy configures a root it never announced: it is made, then configured.
        assert!(contexts.configure(1, || 10, |_| {}, |root| *root == 10));
        assert!(!contexts.configure(2, || 20, |_| {}, |_| false));
        assert_eq!(contexts.with_root(1, |root| *root), Some(10));
        assert_eq!(contexts.with_root(99, |root| *root), None);
        // Beyond MAX_ROOTS, the least used root is handed to `retire`.
        let retired = Cell::new(None);
        for id in 3..=MAX_ROOTS as u32 + 1 {
            contexts.create_root(id, || id * 10, |root| retired.set(Some(root)));
        }
        assert_eq!(retired.get(), Some(20));
        assert_eq!(contexts.with_root(2, |root| *root), None);
        // A busy registry is reported as such, not waited for.
        assert_eq!(contexts.with(|_| contexts.with(|_| ())), Some(None));
        contexts.lost("nothing to see natively");
    }
}
