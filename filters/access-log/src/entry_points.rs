//! The standalone filter's proxy-wasm entry points, without the SDK's dispatcher: the filter
//! works in `on_log`, Envoy's last callback for a stream, so it needs neither the request and
//! response callbacks nor `proxy_on_delete` (one VM call less per request than with the SDK,
//! and every call into the VM has a fixed cost before any filter code runs: see
//! bench/README.md). A stream's root is kept from its creation to its `on_log`
//! (`wasmixer_engine::context_registry`). `make wasm` keeps exactly these exports
//! (`wasm-exports.txt`).

use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_proxy_wasm_host::component::ComponentStream;
use wasmixer_proxy_wasm_host::entry_points::FilterContexts;

use crate::root::AccessLogRoot;

/// Requests in flight (created, not logged yet) per worker whose root is remembered; beyond,
/// the oldest's line is lost (counted).
const MAX_IN_FLIGHT: usize = 1 << 16;

thread_local! {
    /// Roots, and each stream's root id until its `on_log`.
    static CONTEXTS: FilterContexts<AccessLogRoot, u32> =
        FilterContexts::new("wasmixer-access-log", "wasmixer_access_log_lost_total", MAX_IN_FLIGHT);
}

wasmixer_proxy_wasm_host::common_entry_points!("wasmixer-access-log");

fn retire(mut root: AccessLogRoot) {
    root.flush_metrics();
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
    CONTEXTS.with(|c| {
        if parent_id == 0 {
            c.create_root(context_id, AccessLogRoot::default, retire);
        } else if c.with(|r| r.keep(context_id, parent_id)).flatten().is_some() {
            c.lost(&format!("an older request's line was lost: more than {MAX_IN_FLIGHT} requests in flight"));
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, _plugin_configuration_size: usize) -> bool {
    CONTEXTS.with(|c| c.configure(root_id, AccessLogRoot::default, retire, AccessLogRoot::on_configure))
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    CONTEXTS.with(|c| c.with_root(root_id, AccessLogRoot::on_tick));
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    root_id: u32,
    token: u32,
    _num_headers: usize,
    _body_size: usize,
    _num_trailers: usize,
) {
    CONTEXTS.with(|c| c.with_root(root_id, |root| root.on_http_call_response(token)));
}

#[no_mangle]
pub extern "C" fn proxy_on_log(context_id: u32) {
    CONTEXTS.with(|c| {
        let stream = c
            .with(|r| {
                let root_id = r.take(context_id)?;
                r.root(root_id).map(|root| root.stream(context_id, RequestCarry::new()))
            })
            .flatten();
        match stream {
            Some(mut stream) => stream.on_log(),
            None => c.lost("a finished request's root context is not kept: its line was lost"),
        }
    });
}
