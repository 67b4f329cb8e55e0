//! HTTP calls from this filter, which runs on the proxy-wasm SDK's dispatcher: the SDK must learn
//! each call's token, or it traps when the answer arrives, so the components' calls (the deny
//! component's list fetches, the access-log component's collector) go through the SDK.

/// Starts an HTTP call to an Envoy cluster from the current context; `None` when it could not
/// start (e.g. unknown cluster). The answer comes to that context's `on_http_call_response`.
pub fn dispatch(cluster: &str, headers: &[(&str, &str)], body: &[u8], timeout_ms: u32) -> Option<u32> {
    #[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
    {
        let body = (!body.is_empty()).then_some(body);
        proxy_wasm::hostcalls::dispatch_http_call(
            cluster,
            headers.to_vec(),
            body,
            Vec::new(),
            std::time::Duration::from_millis(u64::from(timeout_ms)),
        )
        .ok()
    }
    #[cfg(not(all(target_arch = "wasm32", target_os = "wasi")))]
    {
        let _ = (cluster, headers, body, timeout_ms);
        None
    }
}
