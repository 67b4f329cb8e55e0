//! Test harness that runs real Envoy processes with the built wasmixer filters.
//!
//! The pattern every end-to-end test follows (see `tests/smoke.rs`):
//! 1. start a [`Backend`] (an HTTP/1.1 server on 127.0.0.1:0 that records what it receives);
//! 2. render a bootstrap template with [`bootstrap::render`], wiring in the backend's port,
//!    the filters from [`dist::wasm_path`] (built by `make wasm`) via [`bootstrap::wasm_filter`]
//!    and [`bootstrap::http_filters`], and port 0 for listeners;
//! 3. [`EnvoyProcess::start`] it, find the listener with [`EnvoyProcess::listener_addr`];
//! 4. send requests with [`http::Request`], then assert on the response, on
//!    [`Backend::requests`], on [`EnvoyProcess::log`] and on [`EnvoyProcess::stats_prometheus`].
//!
//! Tests return `Result<(), HarnessError>` and use `?` and [`ensure!`]; a failed test prints
//! Envoy's log.

pub mod access_log_file;
pub mod backend;
pub mod bootstrap;
pub mod dist;
pub mod envoy;
mod error;
pub mod http;
pub mod istio_profile;
pub mod pki;
pub mod ports;
pub mod sidecar;

pub use backend::{Backend, BackendResponse, ReceivedRequest};
pub use dist::wasm_path;
pub use envoy::EnvoyProcess;
pub use error::HarnessError;
pub use http::{Request, Response};
pub use ports::free_port;
pub mod apps;
pub mod bookinfo_pair;
pub mod mesh;
pub mod mesh_compose;
pub mod mesh_control;
pub mod mesh_obs;
pub mod mesh_tls;
pub mod metrics_sidecar;
