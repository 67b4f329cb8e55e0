//! One-listener Envoys for the metrics filter's tests: a checked-in template
//! (`integration/testdata/metrics-sidecar.yaml` for HTTP, `metrics-tcp-sidecar.yaml` for a
//! `tcp_proxy` listener) filled with the listener's direction, the filters, and the bootstrap
//! `stats_config` that `wasmixer stats-config` generated (`integration/testdata/*.stats-config.json`).

use std::time::Duration;

use serde_json::Value as Json;

use crate::bootstrap::{http_filters, network_wasm_filter, render, wasm_filter};
use crate::dist::read_workspace_file;
use crate::{free_port, wasm_path, EnvoyProcess, HarnessError};

const HTTP_TEMPLATE: &str = "integration/testdata/metrics-sidecar.yaml";
const TCP_TEMPLATE: &str = "integration/testdata/metrics-tcp-sidecar.yaml";
const HAIRPIN_TEMPLATE: &str = "integration/testdata/metrics-hairpin-sidecar.yaml";
/// The plugin root id that makes `metrics.wasm` serve a network filter.
const TCP_ROOT_ID: &str = "wasmixer-metrics-tcp";

/// The `stats_config` object of a generated fragment, as one line of JSON.
pub fn stats_config(path: &str) -> Result<String, HarnessError> {
    let doc: Json =
        serde_json::from_str(&read_workspace_file(path)?).map_err(|e| HarnessError::check(format!("{path}: {e}")))?;
    let sc = doc.get("stats_config").ok_or_else(|| HarnessError::check(format!("{path}: no stats_config")))?;
    Ok(sc.to_string())
}

/// One sidecar: a listener of `direction` (`INBOUND` reports as the server, `OUTBOUND` as the
/// client) forwarding to `127.0.0.1:upstream_port` through `cluster`.
pub struct MetricsSidecar<'a> {
    pub name: &'a str,
    pub workload: &'a str,
    pub listener: &'a str,
    pub direction: &'a str,
    pub cluster: &'a str,
    pub upstream_port: u16,
}

impl MetricsSidecar<'_> {
    /// The HTTP bootstrap with `filters` (filter, configuration) in order before the router.
    pub fn http_bootstrap(&self, filters: &[(&str, String)], stats_path: &str) -> Result<String, HarnessError> {
        self.bootstrap(HTTP_TEMPLATE, ("http_filters", wasm_http_filters(filters)?), stats_path)
    }

    /// Starts the HTTP sidecar and waits until the metrics filter is configured.
    pub fn start_http(&self, filters: &[(&str, String)], stats_path: &str) -> Result<EnvoyProcess, HarnessError> {
        self.start_http_with_args(filters, stats_path, &[])
    }

    /// [`MetricsSidecar::start_http`] with extra Envoy arguments (e.g. `--concurrency 2`).
    pub fn start_http_with_args(
        &self,
        filters: &[(&str, String)],
        stats_path: &str,
        extra_args: &[&str],
    ) -> Result<EnvoyProcess, HarnessError> {
        let envoy = EnvoyProcess::start_with_args(&self.http_bootstrap(filters, stats_path)?, self.name, extra_args)?;
        wait_configured(&envoy)?;
        Ok(envoy)
    }

    /// Starts the TCP sidecar, the metrics filter a network filter with `configuration`, and
    /// waits until it is configured as one.
    pub fn start_tcp(&self, configuration: &str, stats_path: &str) -> Result<EnvoyProcess, HarnessError> {
        let filter = network_wasm_filter(TCP_ROOT_ID, "wasmixer-metrics", &wasm_path("metrics")?, configuration);
        let envoy =
            EnvoyProcess::start(&self.bootstrap(TCP_TEMPLATE, ("wasm_filter", filter), stats_path)?, self.name)?;
        wait_configured(&envoy)?;
        envoy.wait_for_log("TCP network filter", Duration::from_secs(1))?;
        Ok(envoy)
    }

    fn bootstrap(&self, template: &str, filters: (&str, String), stats_path: &str) -> Result<String, HarnessError> {
        render(
            &read_workspace_file(template)?,
            &[
                ("workload", self.workload.to_string()),
                ("listener", self.listener.to_string()),
                ("direction", self.direction.to_string()),
                ("cluster", self.cluster.to_string()),
                ("upstream_port", self.upstream_port.to_string()),
                filters,
                ("stats_config", stats_config(stats_path)?),
            ],
        )
    }
}

/// One Envoy whose `outbound` listener routes to its own `inbound` listener, which routes to
/// `127.0.0.1:upstream_port`; both listeners carry `filters` (filter, configuration).
pub fn start_hairpin(
    name: &str,
    filters: &[(&str, String)],
    stats_path: &str,
    upstream_port: u16,
) -> Result<EnvoyProcess, HarnessError> {
    let bootstrap = render(
        &read_workspace_file(HAIRPIN_TEMPLATE)?,
        &[
            ("inbound_port", free_port()?.to_string()),
            ("upstream_port", upstream_port.to_string()),
            ("http_filters", wasm_http_filters(filters)?),
            ("stats_config", stats_config(stats_path)?),
        ],
    )?;
    let envoy = EnvoyProcess::start(&bootstrap, name)?;
    wait_configured(&envoy)?;
    Ok(envoy)
}

/// The `http_filters` array: the dist `.wasm` of each (filter, configuration), then the router.
fn wasm_http_filters(filters: &[(&str, String)]) -> Result<String, HarnessError> {
    let entries = filters
        .iter()
        .map(|(f, config)| Ok(wasm_filter(f, &wasm_path(f)?, config)))
        .collect::<Result<Vec<_>, HarnessError>>()?;
    Ok(http_filters(&entries))
}

fn wait_configured(envoy: &EnvoyProcess) -> Result<(), HarnessError> {
    envoy
        .wait_for_log(&format!("wasmixer-metrics {} configured", env!("CARGO_PKG_VERSION")), Duration::from_secs(10))
        .map(|_| ())
}
