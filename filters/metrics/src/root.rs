//! The metrics filter's root context: compiles the configuration and owns what streams share.
//! Its plugin `root_id` decides whether it serves an HTTP filter (the default) or a network
//! filter (an id such as `wasmixer-metrics-tcp`, see [`is_tcp_root_id`]).

use std::rc::Rc;

use wasmixer_engine::attr::envoy_bag::SourceTable;
use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_engine::config::FilterConfig;
use wasmixer_engine::expr::Manifest;
use wasmixer_engine::telemetry::metrics::plan::MetricPlan;
use wasmixer_engine::telemetry::metrics::tcp_traffic::is_tcp_root_id;
use wasmixer_proxy_wasm_host::abi;
use wasmixer_proxy_wasm_host::component::Component;
use wasmixer_proxy_wasm_host::identity;
use wasmixer_proxy_wasm_host::plugin_configuration;
use wasmixer_proxy_wasm_host::property_batch::{self, PropertyBatch};
use wasmixer_proxy_wasm_host::stats::MetricRecorder;

use crate::stream::{MetricsStream, Shared};
use crate::tcp::{ConnectionRegistry, TcpMetricsStream};

/// How often the root hands batched counter increments to Envoy and (TCP) looks for
/// connections due a periodic report.
pub const TICK_MS: u32 = 1000;

#[derive(Default)]
pub struct MetricsRoot {
    shared: Option<Rc<Shared>>,
    /// Serving a network filter (TCP reports) rather than an HTTP filter.
    tcp: bool,
    connections: Rc<ConnectionRegistry>,
}

impl MetricsRoot {
    /// An HTTP stream of the current configuration, sharing `carry` with the request's other
    /// components.
    pub fn stream(&self, context_id: u32, carry: Rc<RequestCarry>) -> MetricsStream {
        MetricsStream::new(context_id, self.shared.clone(), carry)
    }

    fn compile(&self, config: &FilterConfig) -> Result<Shared, String> {
        let manifest = Manifest::istio();
        let mut plan = MetricPlan::compile(config, manifest).map_err(|e| e.to_string())?;
        let identity = identity::root_from_node();
        plan.settle_scope_for_proxy(identity.own_namespace());
        let table = SourceTable::new(manifest, plan.attributes());
        let recorder = MetricRecorder::new(&plan);
        // A TCP report reads no HTTP response properties.
        let batch = if self.tcp { None } else { PropertyBatch::register(&[&table]).map(Rc::new) };
        Ok(Shared { table, recorder, plan, identity, batch })
    }

    /// The current configuration's attribute table.
    pub fn table(&self) -> Option<&SourceTable> {
        self.shared.as_deref().map(|s| &s.table)
    }

    /// Gives the configuration just applied `batch` instead of its own ([`property_batch::share_with`]).
    pub fn share_batch(&mut self, batch: Option<Rc<PropertyBatch>>) {
        property_batch::share_with(&mut self.shared, |s| &mut s.batch, batch);
    }

    /// Takes `config` (the standalone filter's own document, or the mixer's), or rejects it.
    pub fn apply(&mut self, config: &FilterConfig) -> bool {
        if !abi::set_tick_period_ms(TICK_MS) {
            log::warn!("wasmixer-metrics: no tick: counters cannot be reported (and long TCP connections report only when they close)");
        }
        // What the previous configuration counted reaches Envoy before it is replaced.
        self.flush();
        match self.compile(config) {
            Ok(shared) => {
                let plan = &shared.plan;
                log::info!(
                    "wasmixer-metrics {} configured: {} metric(s) from {} rule(s), series cap {} per metric in this worker{}{}",
                    env!("CARGO_PKG_VERSION"),
                    plan.families.len(),
                    plan.rules.len(),
                    plan.options.max_series_per_metric,
                    if plan.options.trust_unverified_peers { ", unverified peers trusted" } else { "" },
                    if self.tcp { ", TCP network filter" } else { "" }
                );
                for f in &plan.families {
                    let unit = f.unit.as_deref().map(|u| format!(" in {u}")).unwrap_or_default();
                    log::info!("wasmixer-metrics: {} {}{unit} [{}]", f.kind.envoy_type(), f.name, f.labels.join(", "));
                }
                for w in &plan.warnings {
                    log::warn!("wasmixer-metrics: {w}");
                }
                if shared.identity.local.is_none() {
                    log::warn!("wasmixer-metrics: the node has no workload metadata (xds.node.metadata); the local workload's attributes are absent");
                }
                self.shared = Some(Rc::new(shared));
                true
            }
            Err(e) => plugin_configuration::reject("wasmixer-metrics", &e),
        }
    }

    /// Reads the plugin's configuration and takes it, or rejects it.
    pub fn on_configure(&mut self) -> bool {
        let root_id = abi::get_property(&["plugin_root_id"]).map(|b| String::from_utf8_lossy(&b).into_owned());
        self.tcp = root_id.as_deref().is_some_and(is_tcp_root_id);
        plugin_configuration::configure("wasmixer-metrics", |config| self.apply(config))
    }

    /// Whether this root serves a network filter (TCP reports).
    pub fn is_tcp(&self) -> bool {
        self.tcp
    }

    /// A TCP connection of the current configuration.
    pub fn tcp_stream(&self, context_id: u32) -> TcpMetricsStream {
        TcpMetricsStream::new(context_id, self.shared.clone(), self.connections.clone())
    }

    /// Hands the batched counts so far to Envoy.
    pub fn flush(&self) {
        if let Some(shared) = &self.shared {
            shared.recorder.flush();
        }
    }

    /// Hands batched counts to Envoy and (TCP) reports connections that are due.
    pub fn on_tick(&mut self) {
        self.flush();
        if self.tcp {
            self.connections.report_due(abi::now_nanos());
        }
    }
}

/// The metrics filter (HTTP) as a component of a larger filter (the `mixer`).
impl Component for MetricsRoot {
    type Stream = MetricsStream;

    fn configure(&mut self, config: &FilterConfig) -> bool {
        self.apply(config)
    }

    fn stream(&self, context_id: u32, carry: Rc<RequestCarry>) -> MetricsStream {
        MetricsRoot::stream(self, context_id, carry)
    }

    fn on_tick(&mut self) {
        MetricsRoot::on_tick(self);
    }
}
