//! Test harness that runs real Envoy processes with the built wasmixer filters.
