//! One request: in `on_log` (final code, sizes and duration known) render the lines of every
//! matching rule and hand them to their destinations. Nothing here can block: filter state is a
//! host call, the network sink is an in-memory queue the root context drains.

use std::cell::RefCell;
use std::rc::Rc;

use wasmixer_engine::attr::envoy_bag::{EnvoyBag, SourceTable};
use wasmixer_engine::attr::identity::RootIdentity;
use wasmixer_engine::attr::request_carry::{PeerTrustLevel, RequestCarry};
use wasmixer_engine::diag::DEFAULT_INTERVAL_NS;
use wasmixer_engine::telemetry::logs::batch::BatchQueue;
use wasmixer_engine::telemetry::logs::instance::LogInstance;
use wasmixer_engine::telemetry::logs::options::LogRouting;
use wasmixer_engine::telemetry::logs::plan::{LogPlan, LogRule};
use wasmixer_engine::telemetry::logs::render::{FieldRef, LineMeta, LogSink};
use wasmixer_proxy_wasm_host::abi;
use wasmixer_proxy_wasm_host::component::ComponentStream;
use wasmixer_proxy_wasm_host::property_batch::PropertyBatch;
use wasmixer_proxy_wasm_host::proxy_host::ProxyHost;

use crate::metrics::Pending;

/// Reused buffers: the line being rendered and one buffer per filter-state destination.
#[derive(Default)]
pub struct Scratch {
    pub line: String,
    pub per_logger: Vec<String>,
}

/// What every stream of one configuration shares (one per worker: the VM is single-threaded).
pub struct Shared {
    pub plan: LogPlan,
    pub routing: LogRouting,
    pub table: SourceTable,
    /// The log-phase properties read with one host call.
    pub batch: Option<Rc<PropertyBatch>>,
    pub identity: RootIdentity,
    pub allow_unverified_peer: bool,
    /// `display_name` of each handler (OTLP attribute).
    pub handler_names: Vec<String>,
    pub scratch: RefCell<Scratch>,
    /// The network sink's queue, drained by the root context.
    pub network: Option<Rc<RefCell<BatchQueue>>>,
    /// Whether rendering needs the wall clock (metric instances, network sink).
    pub needs_clock: bool,
    pub pending: Pending,
}

pub struct AccessLogStream {
    context_id: u32,
    shared: Option<Rc<Shared>>,
    carry: Rc<RequestCarry>,
}

impl AccessLogStream {
    /// A stream sharing `carry` with the request's other components.
    pub fn new(context_id: u32, shared: Option<Rc<Shared>>, carry: Rc<RequestCarry>) -> AccessLogStream {
        AccessLogStream { context_id, shared, carry }
    }
}

/// Routes rendered lines: appended to the destination's filter-state buffer and/or queued for
/// the collector; errors counted and logged at most once per interval per rule / instance.
struct Sink<'a> {
    shared: &'a Shared,
    per_logger: &'a mut [String],
    queue: Option<&'a mut BatchQueue>,
    now_ns: i64,
    context_id: u32,
}

impl Sink<'_> {
    fn now(&mut self) -> i64 {
        if self.now_ns == 0 {
            self.now_ns = abi::now_nanos();
        }
        self.now_ns
    }
}

impl LogSink for Sink<'_> {
    fn line(&mut self, meta: &LineMeta<'_>, line: &str) {
        self.shared.pending.lines.add(0, 1);
        let routing = &self.shared.routing;
        if let Some(buf) =
            routing.handler_logger.get(meta.handler).copied().flatten().and_then(|i| self.per_logger.get_mut(i))
        {
            if !buf.is_empty() {
                buf.push('\n');
            }
            buf.push_str(line);
        }
        if routing.handler_network.get(meta.handler).copied().unwrap_or(false) {
            let now = self.now();
            let handler = self.shared.handler_names.get(meta.handler).map_or("", String::as_str);
            if let Some(q) = self.queue.as_deref_mut() {
                // A full buffer drops the line; the queue counts it.
                q.push(line, meta, handler, now);
            }
        }
    }

    fn match_error(&mut self, rule_index: usize, rule: &LogRule, error: &dyn std::fmt::Display) {
        let p = &self.shared.pending;
        p.match_errors.add(rule_index, 1);
        let now = self.now();
        if let Some(suppressed) = p.rule_limiters.get(rule_index).and_then(|l| l.admit(now, DEFAULT_INTERVAL_NS)) {
            log::warn!("#{} wasmixer-access-log: rule {}: match evaluation failed, nothing logged: {error} ({suppressed} similar suppressed)", self.context_id, rule.label);
        }
    }

    fn instance_error(
        &mut self,
        instance_index: usize,
        instance: &LogInstance,
        field: FieldRef<'_>,
        error: &dyn std::fmt::Display,
    ) {
        let p = &self.shared.pending;
        p.instance_errors.add(instance_index, 1);
        let now = self.now();
        if let Some(suppressed) =
            p.instance_limiters.get(instance_index).and_then(|l| l.admit(now, DEFAULT_INTERVAL_NS))
        {
            log::warn!(
                "#{} wasmixer-access-log: instance {} dropped: {field}: {error} ({suppressed} similar suppressed)",
                self.context_id,
                instance.fqn
            );
        }
    }

    fn filtered(&mut self, _handler: usize, _instance_index: usize) {
        self.shared.pending.filtered.add(0, 1);
    }
}

impl ComponentStream for AccessLogStream {
    /// Renders the request's lines and hands them to their sinks (Envoy's loggers through
    /// filter state, the collector's queue).
    fn on_log(&mut self) {
        let Some(shared) = self.shared.as_deref() else {
            return;
        };
        if shared.plan.is_empty() {
            return;
        }
        let trust = PeerTrustLevel::allowing_unverified(shared.allow_unverified_peer);
        let host = ProxyHost::for_request(&shared.identity, trust, &self.carry).after_response(shared.batch.as_deref());
        let bag = EnvoyBag::new(&host, &shared.table);
        let Ok(mut scratch) = shared.scratch.try_borrow_mut() else {
            return;
        };
        let Scratch { line, per_logger } = &mut *scratch;
        per_logger.iter_mut().for_each(String::clear);
        let mut queue = shared.network.as_ref().and_then(|q| q.try_borrow_mut().ok());
        let now_ns = if shared.needs_clock { abi::now_nanos() } else { 0 };
        let mut sink = Sink {
            shared,
            per_logger: per_logger.as_mut_slice(),
            queue: queue.as_deref_mut(),
            now_ns,
            context_id: self.context_id,
        };
        shared.plan.render(&bag, now_ns, line, &mut sink);
        let now_ns = sink.now_ns;
        drop(queue);
        for (i, buf) in per_logger.iter().enumerate() {
            if buf.is_empty() {
                continue;
            }
            let Some(logger) = shared.routing.loggers.get(i) else {
                continue;
            };
            if !abi::set_property(&[logger.key.as_str()], buf.as_bytes()) {
                shared.pending.publish_failures.add(0, 1);
                let now = if now_ns == 0 { abi::now_nanos() } else { now_ns };
                if let Some(suppressed) = shared.pending.publish_limiter.admit(now, DEFAULT_INTERVAL_NS) {
                    log::warn!(
                        "#{} wasmixer-access-log: could not set filter state wasm.{} ({suppressed} similar suppressed)",
                        self.context_id,
                        logger.key
                    );
                }
            }
        }
    }
}
