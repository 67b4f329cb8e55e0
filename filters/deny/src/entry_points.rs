//! The standalone filter's proxy-wasm callbacks, without the SDK's dispatcher: Envoy calls
//! each exported callback on every request (~2,300 instructions a call before any filter code),
//! and this filter needs only the context's creation, its request headers and (for rules with
//! `responseHeaderOperations`) its response headers. See `wasmixer_shared::host::context_registry`
//! for how it does without `proxy_on_delete`.
//!
//! [`entry_points!`](macro@crate::entry_points) exports them: `deny.wasm` with the response phase,
//! `deny-request-only.wasm` (`filters/deny-request-only`) without. `make wasm` keeps exactly
//! the exports each lists in its `wasm-exports.txt`.

use std::cell::RefCell;

use wasmixer_shared::host::context_registry::{self, ContextRegistry};
use wasmixer_shared::host::entry_points::Lost;
use wasmixer_shared::host::request_carry::RequestCarry;
use wasmixer_shared::policy::header_ops::HeaderEdit;

use crate::root::DenyRoot;
use crate::stream::{self, Flow};

/// The ABI's header-callback answers.
const CONTINUE: u32 = 0;
const PAUSE: u32 = 1;

thread_local! {
    static CONTEXTS: RefCell<ContextRegistry<DenyRoot, Vec<HeaderEdit>>> = RefCell::default();
    /// Requests the registry could not serve as configured.
    static LOST: Lost = const { Lost::new("wasmixer-deny", "wasmixer_policy_lost_total") };
}

fn lost(what: &str) {
    LOST.with(|lost| lost.count(what));
}

fn new_root(response_phase: bool) -> DenyRoot {
    let root = DenyRoot::default();
    if response_phase {
        root
    } else {
        root.without_response_phase()
    }
}

pub fn on_context_create(context_id: u32, parent_id: u32, response_phase: bool) {
    let retired =
        CONTEXTS.with(|c| c.try_borrow_mut().ok()?.create(context_id, parent_id, || new_root(response_phase)));
    if let Some((id, root)) = retired {
        root.flush();
        log::warn!(
            "wasmixer-deny: root context {id} retired to make room for {context_id} (more than {} configurations in one VM)",
            context_registry::MAX_ROOTS
        );
    }
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
        $crate::__shared::common_entry_points!("wasmixer-deny");

        #[no_mangle]
        pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
            $crate::entry_points::on_context_create(context_id, parent_id, $response_phase)
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
