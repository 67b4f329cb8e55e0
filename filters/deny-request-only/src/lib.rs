//! `deny-request-only.wasm`: the deny filter without the response phase. Envoy calls every
//! callback a module exports on every request, and `deny.wasm` exports
//! `proxy_on_response_headers` only for rules' `responseHeaderOperations`; this build leaves it
//! out (one VM call less per request, each call into the VM a fixed cost before any filter
//! code runs: see bench/README.md) and rejects configurations that
//! have such operations, naming the rule. Everything else is `deny.wasm`'s.

#[cfg(target_arch = "wasm32")]
wasmixer_deny::entry_points!(request_only);
