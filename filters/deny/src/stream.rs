//! One request through the deny filter: evaluate the check, then answer a denial in Mixer's
//! format or let the request through with the rules' header operations applied.

use std::rc::Rc;

use wasmixer_engine::attr::envoy_bag::{EnvoyBag, SourceTable};
use wasmixer_engine::attr::identity::RootIdentity;
use wasmixer_engine::attr::request_carry::{PeerTrustLevel, RequestCarry};
use wasmixer_engine::diag::DEFAULT_INTERVAL_NS;
use wasmixer_engine::policy::deny::{CheckObserver, CheckRule, RuleOutcome};
use wasmixer_engine::policy::header_ops::{HeaderEdit, SkippedValue};
use wasmixer_engine::policy::status::http_status;
use wasmixer_engine::policy::DenyPlan;
use wasmixer_proxy_wasm_host::abi::{self, MapType};
use wasmixer_proxy_wasm_host::component::{ComponentStream, Flow};
use wasmixer_proxy_wasm_host::proxy_host::ProxyHost;

use crate::metrics::DenyMetrics;

/// Envoy's response-code details for our local replies.
const DENIED_DETAILS: &str = "wasmixer_access_denied";
const UNCONFIGURED_DETAILS: &str = "wasmixer_deny_unconfigured";

/// What every stream of one configuration shares.
pub struct Shared {
    pub plan: DenyPlan,
    pub table: SourceTable,
    pub metrics: DenyMetrics,
    pub identity: RootIdentity,
}

struct Observer<'s> {
    metrics: &'s DenyMetrics,
    context_id: u32,
}

impl CheckObserver for Observer<'_> {
    fn header_value_skipped(&mut self, index: usize, rule: &CheckRule, header: &str, why: &SkippedValue) {
        if let Some(suppressed) = self.metrics.skipped_value(index, DEFAULT_INTERVAL_NS) {
            log::warn!(
                "#{} wasmixer-deny: rule {}: header {header}: value left out: {why} ({suppressed} similar suppressed)",
                self.context_id,
                rule.label
            );
        }
    }

    fn rule(&mut self, index: usize, rule: &CheckRule, outcome: RuleOutcome, detail: &dyn std::fmt::Display) {
        self.metrics.count(index, outcome);
        if outcome == RuleOutcome::Allow {
            return;
        }
        if let Some(suppressed) = self.metrics.admit_log(index, DEFAULT_INTERVAL_NS) {
            let id = self.context_id;
            let label = &rule.label;
            match outcome {
                RuleOutcome::Error => log::warn!("#{id} wasmixer-deny: rule {label}: evaluation failed: {detail} ({suppressed} similar suppressed)"),
                RuleOutcome::NoIdentity => log::warn!("#{id} wasmixer-deny: rule {label}: no verified peer identity ({detail}): over mTLS, is wasmixer-peer-metadata installed ahead of this filter? The rule does not match unless deny.require_peer_identity is on ({suppressed} similar suppressed)"),
                RuleOutcome::DryRunDeny => log::info!("#{id} wasmixer-deny: rule {label} (dry run) would deny: {detail} ({suppressed} similar suppressed)"),
                _ => log::info!("#{id} wasmixer-deny: rule {label} denied: {detail} ({suppressed} similar suppressed)"),
            }
        }
    }
}

/// Checks one request against `shared`'s configuration (`None`: none valid ever loaded) from its
/// request headers: answers a denial, or applies the request header operations and hands back
/// the response's for [`apply_response_edits`].
pub fn check_request(shared: Option<&Shared>, carry: &RequestCarry, context_id: u32) -> (Flow, Vec<HeaderEdit>) {
    let Some(shared) = shared else {
        // No valid configuration ever loaded: refuse rather than let unchecked traffic through.
        abi::send_local_response(
            500,
            UNCONFIGURED_DETAILS,
            b"wasmixer deny filter has no valid configuration",
            &[],
            None,
        );
        return (Flow::Stop, Vec::new());
    };
    let host = ProxyHost::for_request(&shared.identity, PeerTrustLevel::VerifiedOnly, carry);
    let bag = EnvoyBag::new(&host, &shared.table);
    let mut observer = Observer { metrics: &shared.metrics, context_id };
    let now = if shared.plan.needs_clock() { abi::now_nanos() } else { 0 };
    let result = shared.plan.check(&bag, now, &mut observer);
    if result.is_ok() {
        apply(MapType::RequestHeaders, &result.request_edits);
        return (Flow::Continue, result.response_edits);
    }
    // Envoy itself turns a local reply to a gRPC request into a trailers-only gRPC response
    // (grpc-status our code, grpc-message the body), as it did for Istio's Mixer filter; for
    // HTTP it sends the body as text/plain.
    abi::send_local_response(
        http_status(result.code()),
        DENIED_DETAILS,
        result.body().as_bytes(),
        &[],
        Some(result.code()),
    );
    (Flow::Stop, Vec::new())
}

/// The rules' response header operations for an allowed request, on its response headers.
pub fn apply_response_edits(edits: &[HeaderEdit]) {
    apply(MapType::ResponseHeaders, edits);
}

fn apply(map: MapType, edits: &[HeaderEdit]) {
    for edit in edits {
        match edit {
            HeaderEdit::Replace(name, value) => abi::replace_header(map, name, value),
            HeaderEdit::Append(name, value) => abi::add_header(map, name, value),
            HeaderEdit::Remove(name) => abi::remove_header(map, name),
        };
    }
}

/// One request's check as a component of a larger filter (the `mixer`), which keeps the
/// response's edits with the stream.
pub struct DenyStream {
    context_id: u32,
    shared: Option<Rc<Shared>>,
    carry: Rc<RequestCarry>,
    response_edits: Vec<HeaderEdit>,
}

impl DenyStream {
    /// A stream sharing `carry` with the request's other components.
    pub fn new(context_id: u32, shared: Option<Rc<Shared>>, carry: Rc<RequestCarry>) -> DenyStream {
        DenyStream { context_id, shared, carry, response_edits: Vec::new() }
    }
}

impl ComponentStream for DenyStream {
    fn on_request_headers(&mut self) -> Flow {
        let (flow, response_edits) = check_request(self.shared.as_deref(), &self.carry, self.context_id);
        self.response_edits = response_edits;
        flow
    }

    fn on_response_headers(&mut self) {
        apply_response_edits(&self.response_edits);
    }
}
