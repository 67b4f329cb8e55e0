//! One request through the metrics filter: nothing until the stream ends, then one report in
//! `on_log`, when the response (code, sizes, duration, flags) is known.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use wasmixer_shared::attr::envoy_bag::{EnvoyBag, SourceTable};
use wasmixer_shared::attr::workload_attributes::WorkloadAttributes;
use wasmixer_shared::host::identity::PeerCache;
use wasmixer_shared::host::proxy_host::ProxyHost;
use wasmixer_shared::telemetry::metric_plan::MetricPlan;

use crate::series::Recorder;

/// What every stream of one configuration shares.
pub struct Shared {
    pub plan: MetricPlan,
    pub table: SourceTable,
    pub recorder: Recorder,
    pub local: Option<Rc<WorkloadAttributes>>,
    pub peers: PeerCache,
}

pub struct MetricsStream {
    context_id: u32,
    shared: Option<Rc<Shared>>,
}

impl MetricsStream {
    pub fn new(context_id: u32, shared: Option<Rc<Shared>>) -> MetricsStream {
        MetricsStream { context_id, shared }
    }
}

impl Context for MetricsStream {}

impl HttpContext for MetricsStream {
    fn on_log(&mut self) {
        // Without a valid configuration there is nothing to record (and nothing to block).
        let Some(shared) = self.shared.as_deref() else {
            return;
        };
        let trust_unverified = shared.plan.options.trust_unverified_peers;
        let peer = || {
            if trust_unverified {
                shared.peers.resolve_allowing_unverified()
            } else {
                shared.peers.resolve()
            }
        };
        let host = ProxyHost::new(shared.local.clone(), &peer);
        let bag = EnvoyBag::new(&host, &shared.table);
        let mut sink = shared.recorder.sink(&shared.plan, self.context_id);
        shared.plan.record(&bag, &mut sink);
    }
}
