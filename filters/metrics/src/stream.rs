//! One request through the metrics filter: nothing until the stream ends, then one report in
//! `on_log`, when the response (code, sizes, duration, flags) is known.

use std::rc::Rc;

use wasmixer_engine::attr::envoy_bag::{EnvoyBag, SourceTable};
use wasmixer_engine::attr::identity::RootIdentity;
use wasmixer_engine::attr::request_carry::{PeerTrustLevel, RequestCarry};
use wasmixer_engine::expr::AttributeBag;
use wasmixer_engine::telemetry::metrics::plan::MetricPlan;
use wasmixer_proxy_wasm_host::component::ComponentStream;
use wasmixer_proxy_wasm_host::property_batch::PropertyBatch;
use wasmixer_proxy_wasm_host::proxy_host::ProxyHost;
use wasmixer_proxy_wasm_host::stats::MetricRecorder;

/// What every stream of one configuration shares.
pub struct Shared {
    pub plan: MetricPlan,
    pub table: SourceTable,
    pub recorder: MetricRecorder,
    pub identity: RootIdentity,
    /// The log-phase properties read with one host call.
    pub batch: Option<Rc<PropertyBatch>>,
}

impl Shared {
    /// The host for one report, remembering in `carry` what the request already revealed.
    fn host<'a>(&'a self, carry: &'a RequestCarry) -> ProxyHost<'a> {
        let trust = PeerTrustLevel::allowing_unverified(self.plan.options.trust_unverified_peers);
        ProxyHost::for_request(&self.identity, trust, carry)
    }

    /// Runs `f` over the current stream's attributes as Envoy provides them (each fetched on
    /// first use, once).
    pub fn with_envoy_bag<R>(&self, f: impl FnOnce(&EnvoyBag<'_, ProxyHost<'_>>) -> R) -> R {
        let carry = RequestCarry::default();
        let host = self.host(&carry);
        f(&EnvoyBag::new(&host, &self.table))
    }

    /// The report of a finished HTTP request, sharing `carry` with the request's other components.
    pub fn record_request(&self, carry: &RequestCarry, context_id: u32) {
        let host = self.host(carry).after_response(self.batch.as_deref());
        self.record(&EnvoyBag::new(&host, &self.table), context_id);
    }

    /// One report: every matching rule's metrics, recorded into Envoy.
    pub fn record(&self, bag: &dyn AttributeBag, context_id: u32) {
        let mut sink = self.recorder.sink(&self.plan, context_id);
        self.plan.record(bag, &mut sink);
    }
}

pub struct MetricsStream {
    context_id: u32,
    shared: Option<Rc<Shared>>,
    carry: Rc<RequestCarry>,
}

impl MetricsStream {
    /// A stream sharing `carry` with the request's other components.
    pub fn new(context_id: u32, shared: Option<Rc<Shared>>, carry: Rc<RequestCarry>) -> MetricsStream {
        MetricsStream { context_id, shared, carry }
    }
}

impl ComponentStream for MetricsStream {
    /// Records the finished request's metrics.
    fn on_log(&mut self) {
        // Without a valid configuration there is nothing to record (and nothing to block).
        let Some(shared) = self.shared.as_deref() else {
            return;
        };
        shared.record_request(&self.carry, self.context_id);
    }
}
