//! A proxy-wasm module whose every callback returns at once, assembled byte by byte: what Envoy
//! spends per request on *any* Wasm HTTP filter (stream context creation and deletion, and one
//! V8 call per callback) before the filter does anything. The `wasm-floor` setup runs it, so
//! each filter's figure can be read as floor + its own work.

use crate::leb128::{tagged as section, unsigned as uleb};

const I32: u8 = 0x7f;

/// Function types: (params, results).
const TYPES: [(&[u8], &[u8]); 6] = [
    (&[], &[]),                 // 0: () -> ()
    (&[I32], &[I32]),           // 1: (i32) -> i32
    (&[I32, I32], &[]),         // 2: (i32, i32) -> ()
    (&[I32, I32], &[I32]),      // 3: (i32, i32) -> i32
    (&[I32, I32, I32], &[I32]), // 4: (i32, i32, i32) -> i32
    (&[I32], &[]),              // 5: (i32) -> ()
];

/// The exports of ABI 0.2.1 that Envoy calls, each with its type and its constant result
/// (None: no result).
const FUNCTIONS: [(&str, u8, Option<u16>); 14] = [
    ("proxy_abi_version_0_2_1", 0, None),
    // A fixed scratch address: the module never asks the host for data, so Envoy never
    // writes more than a few bytes there.
    ("proxy_on_memory_allocate", 1, Some(1024)),
    ("proxy_on_context_create", 2, None),
    ("proxy_on_vm_start", 3, Some(1)),
    ("proxy_on_configure", 3, Some(1)),
    ("proxy_on_request_headers", 4, Some(0)),
    ("proxy_on_request_body", 4, Some(0)),
    ("proxy_on_request_trailers", 3, Some(0)),
    ("proxy_on_response_headers", 4, Some(0)),
    ("proxy_on_response_body", 4, Some(0)),
    ("proxy_on_response_trailers", 3, Some(0)),
    ("proxy_on_log", 5, None),
    ("proxy_on_done", 1, Some(1)),
    ("proxy_on_delete", 5, None),
];

/// `i32.const n` with n < 8192 (signed LEB128).
fn i32_const(n: u16, out: &mut Vec<u8>) {
    out.push(0x41);
    let mut v = i32::from(n);
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0);
        if done {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Host calls the calibration modules make in `proxy_on_request_headers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostCall {
    /// `proxy_get_property("request.path")`
    Property,
    /// `proxy_get_header_map_value(request headers, ":path")`
    Header,
}

/// The do-nothing module.
pub fn module() -> Vec<u8> {
    module_with_calls(None, 0)
}

/// Where the constant data sits in linear memory.
const PROPERTY_PATH: &[u8] = b"request\0path";
const PROPERTY_AT: usize = 16;
const HEADER_NAME: &[u8] = b":path";
const HEADER_AT: usize = 48;
/// Return pointer / size slots the host writes.
const RET_PTR_AT: u16 = 96;
const RET_SIZE_AT: u16 = 100;

/// The do-nothing module, or one whose `proxy_on_request_headers` makes `count` host calls of
/// one kind (results dropped), to price a single host call against the floor.
pub fn module_with_calls(call: Option<HostCall>, count: usize) -> Vec<u8> {
    let mut m = vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

    // Types 0..5 as above; 6: (i32 x4) -> i32 (get_property); 7: (i32 x5) -> i32 (get_header).
    let mut types = Vec::new();
    let extra: [(&[u8], &[u8]); 2] = [(&[I32, I32, I32, I32], &[I32]), (&[I32, I32, I32, I32, I32], &[I32])];
    uleb(TYPES.len() + extra.len(), &mut types);
    for (params, results) in TYPES.iter().chain(extra.iter()) {
        types.push(0x60);
        uleb(params.len(), &mut types);
        types.extend_from_slice(params);
        uleb(results.len(), &mut types);
        types.extend_from_slice(results);
    }
    section(1, &types, &mut m);

    // One import when calling the host: it becomes function 0 and shifts ours by one.
    let imported = match call {
        Some(HostCall::Property) => Some(("proxy_get_property", 6u8)),
        Some(HostCall::Header) => Some(("proxy_get_header_map_value", 7u8)),
        None => None,
    };
    if let Some((name, ty)) = imported {
        let mut imports = Vec::new();
        uleb(1, &mut imports);
        uleb(3, &mut imports);
        imports.extend_from_slice(b"env");
        uleb(name.len(), &mut imports);
        imports.extend_from_slice(name.as_bytes());
        imports.push(0x00);
        uleb(usize::from(ty), &mut imports);
        section(2, &imports, &mut m);
    }
    let shift = usize::from(imported.is_some());

    let mut funcs = Vec::new();
    uleb(FUNCTIONS.len(), &mut funcs);
    for (_, ty, _) in FUNCTIONS {
        funcs.push(ty);
    }
    section(3, &funcs, &mut m);

    // One memory of 2 pages (128 KiB).
    section(5, &[0x01, 0x00, 0x02], &mut m);

    let mut exports = Vec::new();
    uleb(FUNCTIONS.len() + 1, &mut exports);
    for (i, (name, _, _)) in FUNCTIONS.iter().enumerate() {
        uleb(name.len(), &mut exports);
        exports.extend_from_slice(name.as_bytes());
        exports.push(0x00);
        uleb(i + shift, &mut exports);
    }
    uleb(6, &mut exports);
    exports.extend_from_slice(b"memory");
    exports.push(0x02);
    exports.push(0x00);
    section(7, &exports, &mut m);

    let mut code = Vec::new();
    uleb(FUNCTIONS.len(), &mut code);
    for (name, _, result) in FUNCTIONS {
        let mut body = vec![0x00]; // no locals
        if name == "proxy_on_request_headers" {
            for _ in 0..count {
                match call {
                    Some(HostCall::Property) => {
                        for v in [PROPERTY_AT as u16, PROPERTY_PATH.len() as u16, RET_PTR_AT, RET_SIZE_AT] {
                            i32_const(v, &mut body);
                        }
                    }
                    Some(HostCall::Header) => {
                        for v in [0, HEADER_AT as u16, HEADER_NAME.len() as u16, RET_PTR_AT, RET_SIZE_AT] {
                            i32_const(v, &mut body);
                        }
                    }
                    None => break,
                }
                body.push(0x10); // call
                body.push(0x00); // the import
                body.push(0x1a); // drop the status
            }
        }
        if let Some(n) = result {
            i32_const(n, &mut body);
        }
        body.push(0x0b);
        uleb(body.len(), &mut code);
        code.extend_from_slice(&body);
    }
    section(10, &code, &mut m);

    // Data: the property path and the header name.
    let mut data = Vec::new();
    uleb(2, &mut data);
    for (at, bytes) in [(PROPERTY_AT, PROPERTY_PATH), (HEADER_AT, HEADER_NAME)] {
        data.push(0x00); // active, memory 0
        i32_const(at as u16, &mut data);
        data.push(0x0b);
        uleb(bytes.len(), &mut data);
        data.extend_from_slice(bytes);
    }
    section(11, &data, &mut m);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_shape() {
        let m = module();
        assert_eq!(m.get(..8), Some(&[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00][..]));
        assert!(m.windows(23).any(|w| w == b"proxy_abi_version_0_2_1"));
        let mut v = Vec::new();
        i32_const(1024, &mut v);
        assert_eq!(v, vec![0x41, 0x80, 0x08]);
        v.clear();
        i32_const(1, &mut v);
        assert_eq!(v, vec![0x41, 0x01]);
    }
}
