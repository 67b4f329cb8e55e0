//! The standalone filter's proxy-wasm entry points, without the SDK's dispatcher: Envoy calls
//! each exported callback on every request (~2,300 instructions a call before any filter code),
//! and this filter needs only the context's creation, its request headers and its response
//! headers. See `context_registry` for how it does without `proxy_on_delete`.
//!
//! `make wasm` keeps exactly these exports (`wasm-exports.txt`).

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
    logger::install(log::LevelFilter::Info);
    panic_hook::install("wasmixer-deny");
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    abi::allocate_for_host(size)
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
    let retired = CONTEXTS.with(|c| c.try_borrow_mut().ok()?.create(context_id, parent_id, DenyRoot::default));
    if let Some((id, root)) = retired {
        root.flush();
        log::warn!(
            "wasmixer-deny: root context {id} retired to make room for {context_id} (more than {} configurations in one VM)",
            crate::context_registry::MAX_ROOTS
        );
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> bool {
    log::info!("wasmixer-deny {} started", env!("CARGO_PKG_VERSION"));
    true
}

/// Runs `f` on root `id`'s state; `None` if the root is not kept (or the registry is busy).
fn with_root<T>(id: u32, f: impl FnOnce(&mut DenyRoot) -> T) -> Option<T> {
    CONTEXTS.with(|c| c.try_borrow_mut().ok()?.root(id).map(f))
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, _plugin_configuration_size: usize) -> bool {
    // A root Envoy configures without having announced it still gets one.
    CONTEXTS.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.create(root_id, 0, DenyRoot::default);
        }
    });
    with_root(root_id, DenyRoot::on_configure).unwrap_or(false)
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    with_root(root_id, DenyRoot::on_tick);
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    root_id: u32,
    token: u32,
    _num_headers: usize,
    body_size: usize,
    _num_trailers: usize,
) {
    with_root(root_id, |root| root.on_http_call_response(token, body_size));
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context_id: u32, _num_headers: usize, _end_of_stream: bool) -> u32 {
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

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(context_id: u32, _num_headers: usize, _end_of_stream: bool) -> u32 {
    let edits = CONTEXTS.with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.take(context_id)));
    if let Some(edits) = edits {
        stream::apply_response_edits(&edits);
    }
    CONTINUE
}
