//! The few proxy-wasm ABI calls the filters make on hot paths, called directly so that every
//! status the host can return is handled: the SDK's wrappers `panic!` on statuses they do not
//! expect (a trap that kills the VM), and a filter must never trap.
//!
//! Outside wasm32-wasip1 (the proxy target) the calls are inert (they report "absent"), so the
//! crate builds and unit-tests natively and on wasm32-unknown-unknown.

use std::borrow::Cow;

use wasmixer_engine::attr::pairs::{serialize_pairs, string_map_of_pairs};
use wasmixer_engine::expr::StringMap;
use wasmixer_engine::gostd::byte_string;

/// proxy-wasm map types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MapType {
    RequestHeaders = 0,
    RequestTrailers = 1,
    ResponseHeaders = 2,
    ResponseTrailers = 3,
    HttpCallResponseHeaders = 6,
}

/// proxy-wasm buffer types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum BufferType {
    HttpCallResponseBody = 4,
    VmConfiguration = 6,
    PluginConfiguration = 7,
}

/// proxy-wasm metric types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

const OK: u32 = 0;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod imports {
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_get_property(
            path_data: *const u8,
            path_size: usize,
            return_data: *mut *mut u8,
            return_size: *mut usize,
        ) -> u32;
        pub fn proxy_set_property(
            path_data: *const u8,
            path_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub fn proxy_get_header_map_pairs(map_type: u32, return_data: *mut *mut u8, return_size: *mut usize) -> u32;
        pub fn proxy_get_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            return_data: *mut *mut u8,
            return_size: *mut usize,
        ) -> u32;
        pub fn proxy_replace_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub fn proxy_add_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
        pub fn proxy_send_local_response(
            status_code: u32,
            status_code_details_data: *const u8,
            status_code_details_size: usize,
            body_data: *const u8,
            body_size: usize,
            headers_data: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;
        pub fn proxy_define_metric(
            metric_type: u32,
            name_data: *const u8,
            name_size: usize,
            return_id: *mut u32,
        ) -> u32;
        pub fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
        pub fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
        pub fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
        pub fn proxy_get_buffer_bytes(
            buffer_type: u32,
            start: usize,
            max_size: usize,
            return_data: *mut *mut u8,
            return_size: *mut usize,
        ) -> u32;
        pub fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
        pub fn proxy_call_foreign_function(
            name_data: *const u8,
            name_size: usize,
            argument_data: *const u8,
            argument_size: usize,
            return_data: *mut *mut u8,
            return_size: *mut usize,
        ) -> u32;
        pub fn proxy_http_call(
            upstream_data: *const u8,
            upstream_size: usize,
            headers_data: *const u8,
            headers_size: usize,
            body_data: *const u8,
            body_size: usize,
            trailers_data: *const u8,
            trailers_size: usize,
            timeout_ms: u32,
            return_token: *mut u32,
        ) -> u32;
        pub fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    }
}

/// Outside the proxy every import answers "not found": the wrappers below stay single-bodied.
#[cfg(not(all(target_arch = "wasm32", target_os = "wasi")))]
#[allow(clippy::too_many_arguments)]
mod imports {
    const NOT_FOUND: u32 = 1;

    pub unsafe fn proxy_get_property(_: *const u8, _: usize, _: *mut *mut u8, _: *mut usize) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_set_property(_: *const u8, _: usize, _: *const u8, _: usize) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_get_header_map_pairs(_: u32, _: *mut *mut u8, _: *mut usize) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_get_header_map_value(_: u32, _: *const u8, _: usize, _: *mut *mut u8, _: *mut usize) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_replace_header_map_value(_: u32, _: *const u8, _: usize, _: *const u8, _: usize) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_add_header_map_value(_: u32, _: *const u8, _: usize, _: *const u8, _: usize) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_remove_header_map_value(_: u32, _: *const u8, _: usize) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_send_local_response(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: i32,
    ) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_define_metric(_: u32, _: *const u8, _: usize, _: *mut u32) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_increment_metric(_: u32, _: i64) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_record_metric(_: u32, _: u64) -> u32 {
        NOT_FOUND
    }
    /// The host's clock, natively.
    pub unsafe fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        // SAFETY: the caller passes a pointer to a live local.
        unsafe { *return_time = u64::try_from(now).unwrap_or(u64::MAX) };
        super::OK
    }
    pub unsafe fn proxy_get_buffer_bytes(_: u32, _: usize, _: usize, _: *mut *mut u8, _: *mut usize) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_set_tick_period_milliseconds(_: u32) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_call_foreign_function(
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *mut *mut u8,
        _: *mut usize,
    ) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_http_call(
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: u32,
        _: *mut u32,
    ) -> u32 {
        NOT_FOUND
    }
    pub unsafe fn proxy_log(_: u32, _: *const u8, _: usize) -> u32 {
        NOT_FOUND
    }
}

/// What `proxy_on_memory_allocate` answers: `size` bytes from the module's allocator, in the
/// shape the getters here hand back to it. A filter with its own entry points exports it; with the SDK's
/// dispatcher, the SDK does the same.
pub fn allocate_for_host(size: usize) -> *mut u8 {
    let mut buffer: Vec<u8> = Vec::with_capacity(size);
    let data = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    data
}

/// Takes ownership of a buffer the host allocated through `proxy_on_memory_allocate`.
fn take(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    // SAFETY: the host allocated `size` bytes with the module's allocator and hands them over.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

/// Calls a getter import that hands back a host-allocated buffer: whether it succeeded, and the
/// buffer if the host gave one (it gives none for an empty value).
fn call_getter(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> (bool, Option<Vec<u8>>) {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    let status = call(&mut data, &mut size);
    // Taken even on failure, so a buffer the host did allocate is freed.
    (status == OK, take(data, size))
}

/// A getter's buffer; `None` unless it succeeded with one.
fn fetch(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Option<Vec<u8>> {
    match call_getter(call) {
        (true, bytes) => bytes,
        (false, _) => None,
    }
}

/// `get_property`: the value's bytes, or `None` when absent, unavailable now, or on any error.
pub fn get_property(path: &[&str]) -> Option<Vec<u8>> {
    with_serialized_path(path, |serialized| {
        // SAFETY: pointers to `serialized` and to live locals, per the ABI contract.
        fetch(|data, size| unsafe { imports::proxy_get_property(serialized.as_ptr(), serialized.len(), data, size) })
    })
}

/// `set_property`: stores filter state `wasm.<name>` for this stream. Returns success.
pub fn set_property(path: &[&str], value: &[u8]) -> bool {
    with_serialized_path(path, |serialized| {
        // SAFETY: pointers to live buffers, per the ABI contract.
        unsafe { imports::proxy_set_property(serialized.as_ptr(), serialized.len(), value.as_ptr(), value.len()) == OK }
    })
}

/// All headers of a map; empty when unavailable in this phase. Names that are not UTF-8 are
/// read lossily, values keep their bytes as raw-byte characters ([`byte_string`]); of a
/// repeated name the last value is kept (as Mixer did).
pub fn get_header_map(map: MapType) -> StringMap {
    // SAFETY: pointers to live locals, per the ABI contract.
    fetch(|data, size| unsafe { imports::proxy_get_header_map_pairs(map as u32, data, size) })
        .map(|bytes| string_map_of_pairs(&bytes))
        .unwrap_or_default()
}

/// One header; `None` when absent or unavailable, `""` when present with an empty value (Envoy
/// answers that with no buffer at all). Bytes that are not UTF-8 are kept as raw-byte
/// characters ([`byte_string`]).
pub fn get_header(map: MapType, name: &str) -> Option<String> {
    get_header_bytes(map, name).map(byte_string::from_bytes)
}

/// A header value's bytes as Envoy has them (no text conversion: for values such as base64
/// that are only ever handled as bytes).
pub fn get_header_bytes(map: MapType, name: &str) -> Option<Vec<u8>> {
    // SAFETY: pointers to `name` and to live locals, per the ABI contract.
    let (ok, bytes) = call_getter(|data, size| unsafe {
        imports::proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), data, size)
    });
    ok.then(|| bytes.unwrap_or_default())
}

/// Header edits; each returns success. Raw-byte characters in `value` are sent as their bytes.
pub fn replace_header(map: MapType, name: &str, value: &str) -> bool {
    replace_header_bytes(map, name, &byte_string::to_bytes(value))
}

/// [`replace_header`] with the value's bytes as they are.
pub fn replace_header_bytes(map: MapType, name: &str, value: &[u8]) -> bool {
    // SAFETY: pointers to live strings, per the ABI contract.
    unsafe {
        imports::proxy_replace_header_map_value(map as u32, name.as_ptr(), name.len(), value.as_ptr(), value.len())
            == OK
    }
}

pub fn add_header(map: MapType, name: &str, value: &str) -> bool {
    let value = byte_string::to_bytes(value);
    // SAFETY: pointers to live strings, per the ABI contract.
    unsafe {
        imports::proxy_add_header_map_value(map as u32, name.as_ptr(), name.len(), value.as_ptr(), value.len()) == OK
    }
}

pub fn remove_header(map: MapType, name: &str) -> bool {
    // SAFETY: pointer to a live string, per the ABI contract.
    unsafe { imports::proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) == OK }
}

/// Sends a local reply. `grpc_status` of `None` sends a plain HTTP reply; `Some(code)` a gRPC
/// status (HTTP 200 with `grpc-status`/`grpc-message`, `body` used as the message).
pub fn send_local_response(
    status: u32,
    details: &str,
    body: &[u8],
    headers: &[(&str, &str)],
    grpc_status: Option<i32>,
) -> bool {
    // Most local replies add no header: the encoding of no pairs, without building it.
    const NO_PAIRS: [u8; 4] = [0; 4];
    let serialized =
        if headers.is_empty() { Cow::Borrowed(&NO_PAIRS[..]) } else { Cow::Owned(serialize_pairs(headers)) };
    // SAFETY: pointers to live buffers, per the ABI contract.
    unsafe {
        imports::proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            serialized.as_ptr(),
            serialized.len(),
            grpc_status.unwrap_or(-1),
        ) == OK
    }
}

/// Defines (or finds) a metric; `None` on failure.
pub fn define_metric(kind: MetricType, name: &str) -> Option<u32> {
    let mut id: u32 = 0;
    // SAFETY: pointers to a live string and local, per the ABI contract.
    let status = unsafe { imports::proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) };
    (status == OK).then_some(id)
}

pub fn increment_metric(id: u32, delta: i64) -> bool {
    // SAFETY: plain values, per the ABI contract.
    unsafe { imports::proxy_increment_metric(id, delta) == OK }
}

pub fn record_metric(id: u32, value: u64) -> bool {
    // SAFETY: plain values, per the ABI contract.
    unsafe { imports::proxy_record_metric(id, value) == OK }
}

/// A whole buffer (plugin configuration, an HTTP call's response body); `None` if absent.
pub fn get_buffer(kind: BufferType, max_size: usize) -> Option<Vec<u8>> {
    // SAFETY: pointers to live locals, per the ABI contract.
    fetch(|data, size| unsafe { imports::proxy_get_buffer_bytes(kind as u32, 0, max_size, data, size) })
}

/// Sets the root context's tick period (0 disables ticks).
pub fn set_tick_period_ms(period: u32) -> bool {
    // SAFETY: plain value, per the ABI contract.
    unsafe { imports::proxy_set_tick_period_milliseconds(period) == OK }
}

/// How a root starts an HTTP call: [`dispatch_http_call`] for a filter with its own entry
/// points; a filter on the SDK's dispatcher must go through the SDK, which learns the token.
pub type HttpCaller = fn(&str, &[(&str, &str)], &[u8], u32) -> Option<u32>;

/// Starts an HTTP call to an Envoy cluster; the token identifies the answer in
/// `on_http_call_response`. `None` when the call could not start (e.g. unknown cluster).
///
/// A filter on the proxy-wasm SDK's dispatcher must not call this: the SDK has to learn the
/// token itself (it traps on an answer it did not expect), so those filters call through the SDK.
pub fn dispatch_http_call(cluster: &str, headers: &[(&str, &str)], body: &[u8], timeout_ms: u32) -> Option<u32> {
    let headers = serialize_pairs(headers);
    let trailers = serialize_pairs(&[]);
    let mut token: u32 = 0;
    // SAFETY: pointers to live buffers and a local, per the ABI contract.
    let status = unsafe {
        imports::proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            timeout_ms,
            &mut token,
        )
    };
    (status == OK).then_some(token)
}

/// Envoy's log levels as the ABI numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

/// Writes `message` to Envoy's log (prefixed there with the plugin's name and root id).
pub fn log(level: LogLevel, message: &str) -> bool {
    // SAFETY: pointer to a live string, per the ABI contract.
    unsafe { imports::proxy_log(level as u32, message.as_ptr(), message.len()) == OK }
}

/// Wall clock, nanoseconds since the Unix epoch (0 if unavailable).
pub fn now_nanos() -> i64 {
    let mut t: u64 = 0;
    // SAFETY: pointer to a live local, per the ABI contract.
    let status = unsafe { imports::proxy_get_current_time_nanoseconds(&mut t) };
    if status == OK {
        i64::try_from(t).unwrap_or(i64::MAX)
    } else {
        0
    }
}

/// Calls the host's foreign function `name` with `argument`: its answer (empty when it answered
/// nothing), or `None` when the host has no such function or it failed.
pub fn call_foreign_function(name: &str, argument: &[u8]) -> Option<Vec<u8>> {
    match call_getter(|data, size| {
        // SAFETY: pointers to live buffers and locals, per the ABI contract.
        unsafe {
            imports::proxy_call_foreign_function(
                name.as_ptr(),
                name.len(),
                argument.as_ptr(),
                argument.len(),
                data,
                size,
            )
        }
    }) {
        (true, bytes) => Some(bytes.unwrap_or_default()),
        (false, _) => None,
    }
}

/// Runs `f` on `path` serialized ([`serialize_path`]), on the stack when it is short (every
/// path the filters read per request is): a property read then allocates only its value.
fn with_serialized_path<T>(path: &[&str], f: impl FnOnce(&[u8]) -> T) -> T {
    const STACK: usize = 128;
    let len = serialized_path_len(path);
    if len > STACK {
        return f(&serialize_path(path));
    }
    let mut buffer = [0u8; STACK];
    write_path(path, &mut buffer);
    f(buffer.get(..len).unwrap_or_default())
}

/// Property paths travel as their segments joined by NUL.
pub fn serialize_path(path: &[&str]) -> Vec<u8> {
    let mut out = vec![0; serialized_path_len(path)];
    write_path(path, &mut out);
    out
}

fn serialized_path_len(path: &[&str]) -> usize {
    path.iter().map(|p| p.len() + 1).sum::<usize>().saturating_sub(1)
}

/// Writes `path`'s segments into `out` (zeroed, [`serialized_path_len`] bytes at least), one
/// byte apart: the NULs between them are already there.
fn write_path(path: &[&str], out: &mut [u8]) {
    let mut at = 0;
    for p in path {
        if let Some(slot) = out.get_mut(at..at + p.len()) {
            slot.copy_from_slice(p.as_bytes());
        }
        at += p.len() + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_serialize_on_the_stack_or_the_heap_alike() {
        assert_eq!(serialize_path(&["xds", "node"]), b"xds\0node");
        let long = "x".repeat(200);
        for path in [&["xds", "node"][..], &["filter_state", "wasm.k"], &["a"], &[], &["", ""], &[&long, "y"]] {
            assert_eq!(with_serialized_path(path, <[u8]>::to_vec), serialize_path(path), "{path:?}");
        }
    }
}
