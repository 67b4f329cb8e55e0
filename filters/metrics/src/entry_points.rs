//! The standalone filter's proxy-wasm entry points, without the SDK's dispatcher: an HTTP
//! request is reported in `on_log`, Envoy's last callback for a stream, and a TCP connection
//! counts its bytes in the data callbacks and reports its close in `on_log`; so the filter
//! needs neither the header callbacks nor `proxy_on_delete` (one VM call, ~2,300 instructions,
//! less per request than with the SDK). What a stream needs is kept from its creation to its
//! `on_log` (`wasmixer_shared::host::context_registry`). `make wasm` keeps exactly these
//! exports (`wasm-exports.txt`).

use std::cell::RefCell;

use wasmixer_shared::host::context_registry::{ContextRegistry, MAX_ROOTS};
use wasmixer_shared::host::entry_points::Lost;
use wasmixer_shared::host::request_carry::RequestCarry;

use crate::root::MetricsRoot;
use crate::stream::MetricsStream;
use crate::tcp::TcpMetricsStream;

/// Streams in flight (created, not logged yet: HTTP requests and TCP connections) per worker
/// whose state is kept; beyond, the oldest's report is lost (counted).
const MAX_IN_FLIGHT: usize = 1 << 16;

/// The ABI's answer to a data callback.
const CONTINUE: u32 = 0;

/// What a stream keeps until its `on_log`.
enum Kept {
    /// An HTTP request: its root context.
    Http(u32),
    Tcp(Box<TcpMetricsStream>),
}

/// A stream at its `on_log`, taken out of the registry.
enum Finished {
    Http(MetricsStream),
    Tcp(Box<TcpMetricsStream>),
}

thread_local! {
    static CONTEXTS: RefCell<ContextRegistry<MetricsRoot, Kept>> =
        RefCell::new(ContextRegistry::with_pending_cap(MAX_IN_FLIGHT));
    /// Reports the registry could not serve as configured.
    static LOST: Lost = const { Lost::new("wasmixer-metrics", "wasmixer_metric_reports_lost_total") };
}

wasmixer_shared::common_entry_points!("wasmixer-metrics");

fn lost(what: &str) {
    LOST.with(|lost| lost.count(what));
}

/// Runs `f` on root `id`'s state; `None` if the root is not kept (or the registry is busy).
fn with_root<T>(id: u32, f: impl FnOnce(&mut MetricsRoot) -> T) -> Option<T> {
    CONTEXTS.with(|c| c.try_borrow_mut().ok()?.root(id).map(f))
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
    CONTEXTS.with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else { return };
        if parent_id == 0 {
            if let Some((id, root)) = c.create(context_id, 0, MetricsRoot::default) {
                root.flush();
                log::warn!("wasmixer-metrics: root context {id} retired to make room for {context_id} (more than {MAX_ROOTS} configurations in one VM)");
            }
            return;
        }
        let kept = match c.root(parent_id) {
            Some(root) if root.is_tcp() => Kept::Tcp(Box::new(root.tcp_stream(context_id))),
            _ => Kept::Http(parent_id),
        };
        if c.keep(context_id, kept).is_some() {
            lost(&format!("an older stream's report was lost: more than {MAX_IN_FLIGHT} streams in flight"));
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, _plugin_configuration_size: usize) -> bool {
    // A root Envoy configures without having announced it still gets one.
    CONTEXTS.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.create(root_id, 0, MetricsRoot::default);
        }
    });
    with_root(root_id, MetricsRoot::on_configure).unwrap_or(false)
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    with_root(root_id, MetricsRoot::on_tick);
}

/// Runs `f` on TCP connection `context_id`'s state, if kept.
fn with_connection(context_id: u32, f: impl FnOnce(&mut TcpMetricsStream)) {
    let misplaced = CONTEXTS.with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else { return false };
        match c.kept(context_id) {
            Some(Kept::Tcp(stream)) => {
                f(stream);
                false
            }
            Some(Kept::Http(_)) => true,
            None => false,
        }
    });
    if misplaced {
        lost("a network filter runs an HTTP root (its root_id does not end in -tcp): connection bytes are not counted");
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_downstream_data(context_id: u32, data_size: usize, _end_of_stream: bool) -> u32 {
    with_connection(context_id, |stream| stream.on_downstream_data(data_size));
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_upstream_data(context_id: u32, data_size: usize, _end_of_stream: bool) -> u32 {
    with_connection(context_id, |stream| stream.on_upstream_data(data_size));
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_log(context_id: u32) {
    let kept = CONTEXTS.with(|c| {
        let mut c = c.try_borrow_mut().ok()?;
        match c.take(context_id)? {
            Kept::Http(root_id) => {
                c.root(root_id).map(|root| Finished::Http(root.stream(context_id, RequestCarry::new())))
            }
            Kept::Tcp(stream) => Some(Finished::Tcp(stream)),
        }
    });
    match kept {
        Some(Finished::Http(mut stream)) => stream.on_log(),
        Some(Finished::Tcp(mut stream)) => stream.on_log(),
        None => lost("a finished stream's state is not kept: its report was lost"),
    }
}
