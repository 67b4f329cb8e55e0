//! The deny filter's root context: compiles the configuration, owns what streams share,
//! and keeps fetched lists (listchecker `provider_url`) fresh.

use std::rc::Rc;

use wasmixer_engine::attr::envoy_bag::SourceTable;
use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_engine::config::FilterConfig;
use wasmixer_engine::expr::Manifest;
use wasmixer_engine::policy::deny::{CheckHandler, ListSource};
use wasmixer_engine::policy::listchecker::FetchOutcome;
use wasmixer_engine::policy::DenyPlan;
use wasmixer_proxy_wasm_host::abi::{self, BufferType, HttpCaller};
use wasmixer_proxy_wasm_host::component::Component;
use wasmixer_proxy_wasm_host::identity;
use wasmixer_proxy_wasm_host::plugin_configuration;

use crate::metrics::DenyMetrics;
use crate::stream::{DenyStream, Shared};

const LIST_FETCH_TIMEOUT_MS: u32 = 5_000;
/// The build without the response phase, as rejections name it.
pub const REQUEST_ONLY_BUILD: &str = "deny-request-only.wasm";
/// Counters are flushed (and fetched lists checked) this often.
pub const TICK_MS: u32 = 1_000;

pub struct DenyRoot {
    shared: Option<Rc<Shared>>,
    http_call: HttpCaller,
    /// Whether the filter runs in the response phase (applies `responseHeaderOperations`).
    response_phase: bool,
    /// Outstanding list fetches: (token, handler index).
    fetches: Vec<(u32, usize)>,
    last_fetch_ns: Vec<i64>,
}

impl Default for DenyRoot {
    fn default() -> DenyRoot {
        DenyRoot::with_http_caller(abi::dispatch_http_call)
    }
}

impl DenyRoot {
    /// A root whose list fetches start with `http_call`.
    pub fn with_http_caller(http_call: HttpCaller) -> DenyRoot {
        DenyRoot { shared: None, http_call, response_phase: true, fetches: Vec::new(), last_fetch_ns: Vec::new() }
    }

    /// A root of a build without the response phase: configurations whose rules edit responses
    /// are rejected rather than half applied.
    pub fn without_response_phase(mut self) -> DenyRoot {
        self.response_phase = false;
        self
    }

    /// What streams of the current configuration share; `None` while no valid one is loaded.
    pub fn shared(&self) -> Option<Rc<Shared>> {
        self.shared.clone()
    }

    /// A stream of the current configuration, sharing `carry` with the request's other components.
    pub fn stream(&self, context_id: u32, carry: Rc<RequestCarry>) -> DenyStream {
        DenyStream::new(context_id, self.shared.clone(), carry)
    }

    /// Whether `token` answers one of this root's list fetches.
    pub fn owns_call(&self, token: u32) -> bool {
        self.fetches.iter().any(|(t, _)| *t == token)
    }

    fn compile(&self, config: &FilterConfig) -> Result<Shared, String> {
        let manifest = Manifest::istio();
        let mut plan = DenyPlan::compile(config, manifest).map_err(|e| e.to_string())?;
        if !self.response_phase {
            if let Some(rule) = plan.rules.iter().find(|r| r.edits_responses()) {
                return Err(format!(
                    "{}: field responseHeaderOperations: this build has no response phase ({REQUEST_ONLY_BUILD}); use deny.wasm",
                    rule.label
                ));
            }
        }
        let identity = identity::root_from_node();
        plan.settle_scope_for_proxy(identity.own_namespace());
        let table = SourceTable::new(manifest, plan.attributes());
        let metrics = DenyMetrics::new(&plan.rules, plan.handlers.len());
        Ok(Shared { table, metrics, plan, identity })
    }

    fn fetch_lists(&mut self) {
        let Some(shared) = self.shared.clone() else { return };
        let now = abi::now_nanos();
        self.last_fetch_ns.resize(shared.plan.handlers.len(), i64::MIN);
        for (i, h) in shared.plan.handlers.iter().enumerate() {
            let CheckHandler::List { params, display_name, list } = h else { continue };
            let Some(url) = params.provider_url.as_deref() else { continue };
            let due =
                self.last_fetch_ns.get(i).is_none_or(|last| now.saturating_sub(*last) >= params.refresh_interval_ns);
            if !due || self.fetches.iter().any(|(_, hi)| *hi == i) {
                continue;
            }
            let cluster = params.fetch_cluster().unwrap_or_default();
            let (authority, path) = split_url(url);
            let headers = [(":method", "GET"), (":path", path), (":authority", authority), (":scheme", "http")];
            match (self.http_call)(&cluster, &headers, &[], LIST_FETCH_TIMEOUT_MS) {
                Some(token) => self.fetches.push((token, i)),
                None => {
                    let outcome = FetchOutcome::NotSent;
                    if let Ok(ListSource::Fetched(fetched)) = list.try_borrow_mut().as_deref_mut() {
                        fetched.on_fetch_error(&outcome);
                    }
                    shared.metrics.list_fetch(i, display_name, &format!("{url} (cluster {cluster:?})"), &outcome);
                }
            }
            if let Some(last) = self.last_fetch_ns.get_mut(i) {
                *last = now;
            }
        }
    }
}

fn split_url(url: &str) -> (&str, &str) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(rest), rest.get(i..).unwrap_or("/")),
        None => (rest, "/"),
    }
}

impl DenyRoot {
    /// The answer to a list fetch.
    pub fn on_http_call_response(&mut self, token: u32, body_size: usize) {
        let Some(pos) = self.fetches.iter().position(|(t, _)| *t == token) else { return };
        let (_, index) = self.fetches.swap_remove(pos);
        let Some(shared) = self.shared.clone() else { return };
        let Some(CheckHandler::List { params, list, display_name }) = shared.plan.handlers.get(index) else { return };
        let status = abi::get_header(abi::MapType::HttpCallResponseHeaders, ":status");
        let Ok(mut source) = list.try_borrow_mut() else { return };
        let ListSource::Fetched(fetched) = &mut *source else { return };
        let read_body = || abi::get_buffer(BufferType::HttpCallResponseBody, body_size).unwrap_or_default();
        let outcome = fetched.on_response(params, status.as_deref(), body_size, read_body, abi::now_nanos());
        shared.metrics.list_fetch(index, display_name, params.provider_url.as_deref().unwrap_or(""), &outcome);
    }

    /// Takes `config` (the standalone filter's own document, or the mixer's), or rejects it.
    pub fn apply(&mut self, config: &FilterConfig) -> bool {
        match self.compile(config) {
            Ok(shared) => {
                log::info!(
                    "wasmixer-deny {} configured: {} check rule(s), {} handler(s)",
                    env!("CARGO_PKG_VERSION"),
                    shared.plan.rules.len(),
                    shared.plan.handlers.len()
                );
                let fetches = shared
                    .plan
                    .handlers
                    .iter()
                    .any(|h| matches!(h, CheckHandler::List { params, .. } if params.provider_url.is_some()));
                // What the previous configuration counted reaches Envoy before it is replaced.
                self.flush();
                self.shared = Some(Rc::new(shared));
                self.fetches.clear();
                self.last_fetch_ns.clear();
                // Ticks flush the counters (and refresh fetched lists).
                abi::set_tick_period_ms(TICK_MS);
                if fetches {
                    self.fetch_lists();
                }
                true
            }
            Err(e) => plugin_configuration::reject("wasmixer-deny", &e),
        }
    }

    /// Reads the plugin's configuration and takes it, or rejects it.
    pub fn on_configure(&mut self) -> bool {
        plugin_configuration::configure("wasmixer-deny", |config| self.apply(config))
    }

    /// Flushes the counters and refreshes fetched lists that are due.
    pub fn on_tick(&mut self) {
        self.flush();
        self.fetch_lists();
    }

    /// Hands the counts so far to Envoy.
    pub fn flush(&self) {
        if let Some(shared) = &self.shared {
            shared.metrics.flush();
        }
    }
}

/// The deny filter as a component of a larger filter (the `mixer`).
impl Component for DenyRoot {
    type Stream = DenyStream;

    fn configure(&mut self, config: &FilterConfig) -> bool {
        self.apply(config)
    }

    fn stream(&self, context_id: u32, carry: Rc<RequestCarry>) -> DenyStream {
        DenyRoot::stream(self, context_id, carry)
    }

    fn on_tick(&mut self) {
        DenyRoot::on_tick(self);
    }

    /// Takes the answers to its list fetches.
    fn on_http_call_response(&mut self, token: u32, body_size: usize) -> bool {
        if !self.owns_call(token) {
            return false;
        }
        DenyRoot::on_http_call_response(self, token, body_size);
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const EDITS_RESPONSES: &str = r#"{"resources": [
      {"kind": "rule", "metadata": {"name": "tag", "namespace": "istio-system"}, "spec": {
        "match": "true",
        "requestHeaderOperations": [{"name": "x-checked", "values": ["\"yes\""]}]RESPONSE_OPS}}
    ]}"#;
    const RESPONSE_OPS: &str = r#", "responseHeaderOperations": [{"name": "x-policy", "values": ["\"wasmixer\""]}]"#;

    fn config(response_ops: &str) -> FilterConfig {
        FilterConfig::parse(EDITS_RESPONSES.replace("RESPONSE_OPS", response_ops).as_bytes()).unwrap()
    }

    #[test]
    fn a_build_without_the_response_phase_rejects_rules_that_edit_responses() {
        let edits_responses = config(RESPONSE_OPS);
        match DenyRoot::default().without_response_phase().compile(&edits_responses) {
            Err(e) => assert_eq!(
                e,
                "tag.rule.istio-system: field responseHeaderOperations: this build has no response phase (deny-request-only.wasm); use deny.wasm"
            ),
            Ok(_) => panic!("accepted a rule it cannot apply"),
        }
        assert!(DenyRoot::default().compile(&edits_responses).is_ok());
        assert!(DenyRoot::default().without_response_phase().compile(&config("")).is_ok());
    }
}
