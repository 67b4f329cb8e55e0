//! The standalone filter's proxy-wasm entry points, without the SDK's dispatcher: an HTTP
//! request is reported in `on_log`, Envoy's last callback for a stream, and a TCP connection
//! counts its bytes in the data callbacks and reports its close in `on_log`; so the filter
//! needs neither the header callbacks nor `proxy_on_delete` (one VM call less per request than
//! with the SDK, and every call into the VM has a fixed cost before any filter code runs: see
//! bench/README.md). What a stream needs is kept from its creation to its
//! `on_log` (`wasmixer_engine::context_registry`). `make wasm` keeps exactly these
//! exports (`wasm-exports.txt`).

use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_proxy_wasm_host::component::ComponentStream;
use wasmixer_proxy_wasm_host::entry_points::FilterContexts;

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
    static CONTEXTS: FilterContexts<MetricsRoot, Kept> =
        FilterContexts::new("wasmixer-metrics", "wasmixer_metric_reports_lost_total", MAX_IN_FLIGHT);
}

wasmixer_proxy_wasm_host::common_entry_points!("wasmixer-metrics");

fn retire(root: MetricsRoot) {
    root.flush();
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
    CONTEXTS.with(|c| {
        if parent_id == 0 {
            c.create_root(context_id, MetricsRoot::default, retire);
            return;
        }
        let dropped = c.with(|r| {
            let kept = match r.root(parent_id) {
                Some(root) if root.is_tcp() => Kept::Tcp(Box::new(root.tcp_stream(context_id))),
                _ => Kept::Http(parent_id),
            };
            r.keep(context_id, kept)
        });
        if dropped.flatten().is_some() {
            c.lost(&format!("an older stream's report was lost: more than {MAX_IN_FLIGHT} streams in flight"));
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, _plugin_configuration_size: usize) -> bool {
    CONTEXTS.with(|c| c.configure(root_id, MetricsRoot::default, retire, MetricsRoot::on_configure))
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    CONTEXTS.with(|c| c.with_root(root_id, MetricsRoot::on_tick));
}

/// Runs `f` on TCP connection `context_id`'s state, if kept.
fn with_connection(context_id: u32, f: impl FnOnce(&mut TcpMetricsStream)) {
    CONTEXTS.with(|c| {
        let misplaced = c
            .with(|r| match r.kept(context_id) {
                Some(Kept::Tcp(stream)) => {
                    f(stream);
                    false
                }
                Some(Kept::Http(_)) => true,
                None => false,
            })
            .unwrap_or(false);
        if misplaced {
            c.lost("a network filter runs an HTTP root (its root_id does not end in -tcp): connection bytes are not counted");
        }
    });
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
    CONTEXTS.with(|c| {
        let finished = c
            .with(|r| match r.take(context_id)? {
                Kept::Http(root_id) => {
                    r.root(root_id).map(|root| Finished::Http(root.stream(context_id, RequestCarry::new())))
                }
                Kept::Tcp(stream) => Some(Finished::Tcp(stream)),
            })
            .flatten();
        match finished {
            Some(Finished::Http(mut stream)) => stream.on_log(),
            Some(Finished::Tcp(mut stream)) => stream.on_log(),
            None => c.lost("a finished stream's state is not kept: its report was lost"),
        }
    });
}
