//! The standalone filter's proxy-wasm callbacks, without the SDK's dispatcher: Envoy calls
//! each exported callback on every request (~2,300 instructions a call before any filter code),
//! and this filter needs only the context's creation, its request headers and (for rules with
//! `responseHeaderOperations`) its response headers. See `context_registry` for how it does
//! without `proxy_on_delete`.
//!
//! [`entry_points!`](macro@crate::entry_points) exports them: `deny.wasm` with the response phase,
//! `deny-request-only.wasm` (`filters/deny-request-only`) without. `make wasm` keeps exactly
//! the exports each lists in its `wasm-exports.txt`.

use std::cell::{Cell, RefCell};

use wasmixer_shared::diag::{LogLimiter, DEFAULT_INTERVAL_NS};
use wasmixer_shared::host::abi::{self, MetricType};
use wasmixer_shared::host::request_carry::RequestCarry;
use wasmixer_shared::host::{logger, panic_hook};
use wasmixer_shared::policy::header_ops::HeaderEdit;

use crate::context_registry::ContextRegistry;
use crate::root::DenyRoot;
use crate::stream::{self, Flow};

/// The ABI's header-callback answers.
const CONTINUE: u32 = 0;
const PAUSE: u32 = 1;

thread_local! {
    static CONTEXTS: RefCell<ContextRegistry<DenyRoot, Vec<HeaderEdit>>> = RefCell::default();
    static LOST: Lost = Lost::default();
}

/// Requests the registry could not serve as configured: counted in
/// `wasmixer_policy_lost_total` and logged, rate-limited.
#[derive(Default)]
struct Lost {
    limiter: LogLimiter,
    metric: Cell<Option<u32>>,
}

fn lost(what: &str) {
    LOST.with(|lost| {
        let id = lost.metric.get().or_else(|| {
            let id = abi::define_metric(MetricType::Counter, "wasmixer_policy_lost_total");
            lost.metric.set(id);
            id
        });
        if let Some(id) = id {
            abi::increment_metric(id, 1);
        }
        if let Some(suppressed) = lost.limiter.admit(abi::now_nanos(), DEFAULT_INTERVAL_NS) {
            log::error!("wasmixer-deny: {what} ({suppressed} similar suppressed)");
        }
    });
}

fn new_root(response_phase: bool) -> DenyRoot {
    let root = DenyRoot::default();
    if response_phase {
        root
    } else {
        root.without_response_phase()
    }
}

/// What `_initialize` does after the module's constructors.
pub fn initialize() {
    logger::install(log::LevelFilter::Info);
    panic_hook::install("wasmixer-deny");
}

pub fn on_memory_allocate(size: usize) -> *mut u8 {
    abi::allocate_for_host(size)
}

pub fn on_context_create(context_id: u32, parent_id: u32, response_phase: bool) {
    let retired =
        CONTEXTS.with(|c| c.try_borrow_mut().ok()?.create(context_id, parent_id, || new_root(response_phase)));
    if let Some((id, root)) = retired {
        root.flush();
        log::warn!(
            "wasmixer-deny: root context {id} retired to make room for {context_id} (more than {} configurations in one VM)",
            crate::context_registry::MAX_ROOTS
        );
    }
}

pub fn on_vm_start() -> bool {
    log::info!("wasmixer-deny {} started", env!("CARGO_PKG_VERSION"));
    true
}

/// Runs `f` on root `id`'s state; `None` if the root is not kept (or the registry is busy).
fn with_root<T>(id: u32, f: impl FnOnce(&mut DenyRoot) -> T) -> Option<T> {
    CONTEXTS.with(|c| c.try_borrow_mut().ok()?.root(id).map(f))
}

pub fn on_configure(root_id: u32, response_phase: bool) -> bool {
    // A root Envoy configures without having announced it still gets one.
    CONTEXTS.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.create(root_id, 0, || new_root(response_phase));
        }
    });
    with_root(root_id, DenyRoot::on_configure).unwrap_or(false)
}

pub fn on_tick(root_id: u32) {
    with_root(root_id, DenyRoot::on_tick);
}

pub fn on_http_call_response(root_id: u32, token: u32, body_size: usize) {
    with_root(root_id, |root| root.on_http_call_response(token, body_size));
}

pub fn on_request_headers(context_id: u32) -> u32 {
    let routed =
        CONTEXTS.with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.stream_root(context_id).map(|r| r.shared())));
    let shared = match routed {
        Some(shared) => shared,
        None => {
            // Refused like a request without configuration: never let an unchecked one through.
            lost("a request whose root context is not kept was refused");
            None
        }
    };
    let carry = RequestCarry::default();
    let (flow, response_edits) = stream::check_request(shared.as_deref(), &carry, context_id);
    if !response_edits.is_empty() {
        let dropped = CONTEXTS.with(|c| c.try_borrow_mut().ok().map(|mut c| c.keep(context_id, response_edits)));
        match dropped {
            Some(None) => {}
            Some(Some(_)) => lost("response header operations of an older request were dropped (too many waiting)"),
            None => lost("response header operations were dropped (registry busy)"),
        }
    }
    match flow {
        Flow::Continue => CONTINUE,
        Flow::Stop => PAUSE,
    }
}

pub fn on_response_headers(context_id: u32) -> u32 {
    let edits = CONTEXTS.with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.take(context_id)));
    if let Some(edits) = edits {
        stream::apply_response_edits(&edits);
    }
    CONTINUE
}

/// Exports the proxy-wasm entry points of a deny build: `entry_points!(with_response_phase)`
/// or `entry_points!(request_only)` (no `proxy_on_response_headers`; configurations with
/// `responseHeaderOperations` are rejected). One crate per build invokes it.
#[macro_export]
macro_rules! entry_points {
    (with_response_phase) => {
        $crate::entry_points!(@common true);

        #[no_mangle]
        pub extern "C" fn proxy_on_response_headers(context_id: u32, _num_headers: usize, _end_of_stream: bool) -> u32 {
            $crate::entry_points::on_response_headers(context_id)
        }
    };
    (request_only) => {
        $crate::entry_points!(@common false);
    };
    (@common $response_phase:expr) => {
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
            $crate::entry_points::initialize();
        }

        #[no_mangle]
        pub extern "C" fn proxy_abi_version_0_2_1() {}

        #[no_mangle]
        pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
            $crate::entry_points::on_memory_allocate(size)
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
            $crate::entry_points::on_context_create(context_id, parent_id, $response_phase)
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> bool {
            $crate::entry_points::on_vm_start()
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_configure(root_id: u32, _plugin_configuration_size: usize) -> bool {
            $crate::entry_points::on_configure(root_id, $response_phase)
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_tick(root_id: u32) {
            $crate::entry_points::on_tick(root_id)
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_http_call_response(
            root_id: u32,
            token: u32,
            _num_headers: usize,
            body_size: usize,
            _num_trailers: usize,
        ) {
            $crate::entry_points::on_http_call_response(root_id, token, body_size)
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_request_headers(context_id: u32, _num_headers: usize, _end_of_stream: bool) -> u32 {
            $crate::entry_points::on_request_headers(context_id)
        }
    };
}
