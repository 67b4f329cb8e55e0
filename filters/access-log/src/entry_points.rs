//! The standalone filter's proxy-wasm entry points, without the SDK's dispatcher: the filter
//! works in `on_log`, Envoy's last callback for a stream, so it needs neither the request and
//! response callbacks nor `proxy_on_delete` (one VM call, ~2,300 instructions, less per request
//! than with the SDK). A stream's root is kept from its creation to its `on_log`
//! (`wasmixer_shared::host::context_registry`). `make wasm` keeps exactly these exports
//! (`wasm-exports.txt`).

use std::cell::RefCell;

use wasmixer_shared::host::context_registry::{ContextRegistry, MAX_ROOTS};
use wasmixer_shared::host::entry_points::Lost;
use wasmixer_shared::host::request_carry::RequestCarry;

use crate::root::AccessLogRoot;

/// Requests in flight (created, not logged yet) per worker whose root is remembered; beyond,
/// the oldest's line is lost (counted).
const MAX_IN_FLIGHT: usize = 1 << 16;

thread_local! {
    /// Roots, and each stream's root id until its `on_log`.
    static CONTEXTS: RefCell<ContextRegistry<AccessLogRoot, u32>> =
        RefCell::new(ContextRegistry::with_pending_cap(MAX_IN_FLIGHT));
    /// Requests the registry could not serve as configured.
    static LOST: Lost = const { Lost::new("wasmixer-access-log", "wasmixer_access_log_lost_total") };
}

wasmixer_shared::common_entry_points!("wasmixer-access-log");

fn lost(what: &str) {
    LOST.with(|lost| lost.count(what));
}

/// Runs `f` on root `id`'s state; `None` if the root is not kept (or the registry is busy).
fn with_root<T>(id: u32, f: impl FnOnce(&mut AccessLogRoot) -> T) -> Option<T> {
    CONTEXTS.with(|c| c.try_borrow_mut().ok()?.root(id).map(f))
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
    CONTEXTS.with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else { return };
        if parent_id == 0 {
            if let Some((id, mut root)) = c.create(context_id, 0, AccessLogRoot::default) {
                root.flush_metrics();
                log::warn!("wasmixer-access-log: root context {id} retired to make room for {context_id} (more than {MAX_ROOTS} configurations in one VM)");
            }
        } else if c.keep(context_id, parent_id).is_some() {
            lost(&format!("an older request's line was lost: more than {MAX_IN_FLIGHT} requests in flight"));
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, _plugin_configuration_size: usize) -> bool {
    // A root Envoy configures without having announced it still gets one.
    CONTEXTS.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.create(root_id, 0, AccessLogRoot::default);
        }
    });
    with_root(root_id, AccessLogRoot::on_configure).unwrap_or(false)
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    with_root(root_id, AccessLogRoot::on_tick);
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    root_id: u32,
    token: u32,
    _num_headers: usize,
    _body_size: usize,
    _num_trailers: usize,
) {
    with_root(root_id, |root| root.on_http_call_response(token));
}

#[no_mangle]
pub extern "C" fn proxy_on_log(context_id: u32) {
    let stream = CONTEXTS.with(|c| {
        let mut c = c.try_borrow_mut().ok()?;
        let root_id = c.take(context_id)?;
        c.root(root_id).map(|root| root.stream(context_id, RequestCarry::new()))
    });
    match stream {
        Some(mut stream) => stream.on_log(),
        None => lost("a finished request's root context is not kept: its line was lost"),
    }
}
