//! The standalone filter's proxy-wasm callbacks, without the SDK's dispatcher: Envoy calls
//! each exported callback on every request (each call a fixed cost before any filter code runs:
//! see bench/README.md),
//! and this filter needs only the context's creation, its request headers and (for rules with
//! `responseHeaderOperations`) its response headers. See `wasmixer_engine::context_registry`
//! for how it does without `proxy_on_delete`.
//!
//! [`entry_points!`](macro@crate::entry_points) exports them: `deny.wasm` with the response phase,
//! `deny-request-only.wasm` (`filters/deny-request-only`) without. `make wasm` keeps exactly
//! the exports each lists in its `wasm-exports.txt`.

use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_engine::context_registry::MAX_PENDING;
use wasmixer_engine::policy::header_ops::HeaderEdit;
use wasmixer_proxy_wasm_host::component::Flow;
use wasmixer_proxy_wasm_host::entry_points::FilterContexts;

use crate::root::DenyRoot;
use crate::stream;

/// The ABI's header-callback answers.
const CONTINUE: u32 = 0;
const PAUSE: u32 = 1;

thread_local! {
    /// Roots, and an allowed request's response edits until its response headers.
    static CONTEXTS: FilterContexts<DenyRoot, Vec<HeaderEdit>> =
        FilterContexts::new("wasmixer-deny", wasmixer_engine::self_metrics::POLICY_LOST.name, MAX_PENDING);
}

fn new_root(response_phase: bool) -> DenyRoot {
    let root = DenyRoot::default();
    if response_phase {
        root
    } else {
        root.without_response_phase()
    }
}

fn retire(root: DenyRoot) {
    root.flush();
}

pub fn on_context_create(context_id: u32, parent_id: u32, response_phase: bool) {
    CONTEXTS.with(|c| {
        if parent_id == 0 {
            c.create_root(context_id, || new_root(response_phase), retire);
        } else {
            c.with(|r| r.stream_created(context_id, parent_id));
        }
    });
}

pub fn on_configure(root_id: u32, response_phase: bool) -> bool {
    CONTEXTS.with(|c| c.configure(root_id, || new_root(response_phase), retire, DenyRoot::on_configure))
}

pub fn on_tick(root_id: u32) {
    CONTEXTS.with(|c| c.with_root(root_id, DenyRoot::on_tick));
}

pub fn on_http_call_response(root_id: u32, token: u32, body_size: usize) {
    CONTEXTS.with(|c| c.with_root(root_id, |root| root.on_http_call_response(token, body_size)));
}

pub fn on_request_headers(context_id: u32) -> u32 {
    CONTEXTS.with(|c| {
        let routed = c.with(|r| r.stream_root(context_id).map(|root| root.shared())).flatten();
        let shared = match routed {
            Some(shared) => shared,
            None => {
                // Refused like a request without configuration: never let an unchecked one through.
                c.lost("a request whose root context is not kept was refused");
                None
            }
        };
        let carry = RequestCarry::default();
        let (flow, response_edits) = stream::check_request(shared.as_deref(), &carry, context_id);
        if !response_edits.is_empty() {
            match c.with(|r| r.keep(context_id, response_edits)) {
                Some(None) => {}
                Some(Some(_)) => {
                    c.lost("response header operations of an older request were dropped (too many waiting)")
                }
                None => c.lost("response header operations were dropped (registry busy)"),
            }
        }
        match flow {
            Flow::Continue => CONTINUE,
            Flow::Stop => PAUSE,
        }
    })
}

pub fn on_response_headers(context_id: u32) -> u32 {
    if let Some(edits) = CONTEXTS.with(|c| c.with(|r| r.take(context_id)).flatten()) {
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
        $crate::__host::common_entry_points!("wasmixer-deny");

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
