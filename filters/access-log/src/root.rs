//! The access-log filter's root context: compiles the configuration, owns what streams share,
//! reports counters, and drains the network sink's queue (ticks and HTTP call answers are root
//! events, so a slow or dead collector never touches a request).

use std::cell::RefCell;
use std::rc::Rc;

use wasmixer_engine::attr::envoy_bag::SourceTable;
use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_engine::config::FilterConfig;
use wasmixer_engine::diag::{LogLimiter, DEFAULT_INTERVAL_NS};
use wasmixer_engine::expr::Manifest;
use wasmixer_engine::telemetry::logs::batch::{BatchConfig, BatchQueue, BatchStats, Outcome};
use wasmixer_engine::telemetry::logs::options::LogRouting;
use wasmixer_engine::telemetry::logs::options::{AccessLogOptions, NetworkOptions};
use wasmixer_engine::telemetry::logs::plan::LogPlan;
use wasmixer_proxy_wasm_host::abi::{self, HttpCaller, MapType};
use wasmixer_proxy_wasm_host::component::Component;
use wasmixer_proxy_wasm_host::identity;
use wasmixer_proxy_wasm_host::plugin_configuration;
use wasmixer_proxy_wasm_host::property_batch::{self, PropertyBatch};

use crate::metrics::{EnvoyMetrics, Pending};
use crate::stream::{AccessLogStream, Scratch, Shared};

/// Tick period without a network sink: counters are reported this often.
const IDLE_TICK_MS: u64 = 1_000;
/// Longest tick period with a network sink: a full batch waits at most this long.
const MAX_NETWORK_TICK_MS: u64 = 100;

/// The network sink: its queue (shared with streams), the request it sends, and what was
/// reported of its counters so far.
struct Network {
    options: NetworkOptions,
    queue: Rc<RefCell<BatchQueue>>,
    /// `:method`, `:path`, `:authority`, `content-type` and the configured headers.
    headers: Vec<(String, String)>,
    reported: BatchStats,
    /// This VM's contribution to the buffered-lines gauge.
    reported_buffered: usize,
}

impl Network {
    fn new(options: &NetworkOptions) -> Network {
        let cfg = BatchConfig::from_options(options);
        let mut headers = vec![
            (":method".to_string(), "POST".to_string()),
            (":path".to_string(), options.path.clone()),
            (":authority".to_string(), options.authority.clone().unwrap_or_else(|| options.cluster.clone())),
            ("content-type".to_string(), cfg.content_type().to_string()),
        ];
        for (k, v) in &options.headers {
            match headers.iter_mut().find(|(name, _)| name == k) {
                Some(h) => h.1 = v.clone(),
                None => headers.push((k.clone(), v.clone())),
            }
        }
        Network {
            options: options.clone(),
            queue: Rc::new(RefCell::new(BatchQueue::new(cfg))),
            headers,
            reported: BatchStats::default(),
            reported_buffered: 0,
        }
    }
}

pub struct AccessLogRoot {
    shared: Option<Rc<Shared>>,
    http_call: HttpCaller,
    network: Option<Network>,
    metrics: Option<EnvoyMetrics>,
    network_limiter: LogLimiter,
    tick_ms: u32,
}

impl Default for AccessLogRoot {
    fn default() -> AccessLogRoot {
        AccessLogRoot::with_http_caller(abi::dispatch_http_call)
    }
}

impl AccessLogRoot {
    /// A root whose collector requests start with `http_call`.
    pub fn with_http_caller(http_call: HttpCaller) -> AccessLogRoot {
        AccessLogRoot {
            shared: None,
            http_call,
            network: None,
            metrics: None,
            network_limiter: LogLimiter::new(),
            tick_ms: 0,
        }
    }

    /// A stream of the current configuration, sharing `carry` with the request's other components.
    pub fn stream(&self, context_id: u32, carry: Rc<RequestCarry>) -> AccessLogStream {
        AccessLogStream::new(context_id, self.shared.clone(), carry)
    }

    /// The tick period this configuration needs (the network sink's flush interval, or 1 s).
    pub fn tick_period_ms(&self) -> u32 {
        self.tick_ms
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
        if self.metrics.is_none() {
            self.metrics = Some(EnvoyMetrics::default());
        }
        // Report what the previous configuration counted before it is replaced.
        self.flush_metrics();
        match self.compile(config) {
            Ok(shared) => {
                let network = shared.network.is_some();
                log::info!(
                    "wasmixer-access-log {} configured: {} rule(s), {} stdio handler(s), {} instance(s); filter state {}; network {}",
                    env!("CARGO_PKG_VERSION"),
                    shared.plan.rules.len(),
                    shared.plan.handlers.len(),
                    shared.plan.instances.len(),
                    if shared.routing.loggers.is_empty() { "off".to_string() } else { shared.routing.loggers.iter().map(|l| format!("wasm.{}", l.key)).collect::<Vec<_>>().join(", ") },
                    self.network.as_ref().filter(|_| network).map_or("off".to_string(), |n| format!("cluster {}", n.options.cluster)),
                );
                let tick = match self.network.as_ref().filter(|_| network) {
                    Some(n) => n.options.flush_interval_ms.clamp(1, MAX_NETWORK_TICK_MS),
                    None => IDLE_TICK_MS,
                };
                self.tick_ms = u32::try_from(tick).unwrap_or(1_000);
                abi::set_tick_period_ms(self.tick_ms);
                self.shared = Some(Rc::new(shared));
                true
            }
            Err(e) => plugin_configuration::reject("wasmixer-access-log", &e),
        }
    }

    fn compile(&mut self, config: &FilterConfig) -> Result<Shared, String> {
        let manifest = Manifest::istio();
        let mut plan = LogPlan::compile(config, manifest).map_err(|e| e.to_string())?;
        let identity = identity::root_from_node();
        plan.settle_scope_for_proxy(identity.own_namespace());
        let options = AccessLogOptions::from_config(config).map_err(|e| e.to_string())?;
        let routing = LogRouting::new(&plan, &options).map_err(|e| e.to_string())?;
        // Keep the queue (and what it holds) across reconfigurations that leave it unchanged.
        let keep = matches!((&options.network, &self.network), (Some(o), Some(n)) if n.options == *o);
        if !keep {
            if let (Some(old), Some(metrics)) = (&mut self.network, &self.metrics) {
                // What the replaced queue still held is lost: take it off the gauge.
                metrics.move_buffered(0, &mut old.reported_buffered);
            }
            self.network = options.network.as_ref().map(Network::new);
        }
        let network =
            self.network.as_ref().filter(|_| routing.handler_network.iter().any(|b| *b)).map(|n| n.queue.clone());
        let needs_clock = network.is_some() || plan.instances.iter().any(|i| i.template() == "metric");
        let table = SourceTable::new(manifest, plan.attributes());
        let batch = PropertyBatch::register(&[&table]).map(Rc::new);
        let scratch = Scratch {
            line: String::with_capacity(1024),
            per_logger: routing.loggers.iter().map(|_| String::with_capacity(1024)).collect(),
        };
        Ok(Shared {
            pending: Pending::new(&plan),
            handler_names: plan.handlers.iter().map(|h| h.display_name.clone()).collect(),
            table,
            batch,
            identity,
            allow_unverified_peer: options.allow_unverified_peer,
            scratch: RefCell::new(scratch),
            network,
            needs_clock,
            routing,
            plan,
        })
    }

    /// Hands the counts so far to Envoy.
    pub fn flush_metrics(&mut self) {
        let Some(metrics) = &self.metrics else { return };
        if let Some(shared) = &self.shared {
            shared.pending.flush();
        }
        if let Some(n) = &mut self.network {
            if let Ok(q) = n.queue.try_borrow() {
                metrics.flush_network(q.stats(), &mut n.reported, q.buffered_lines(), &mut n.reported_buffered);
            }
        }
    }

    /// Sends the next batch if one is due and none is in flight.
    fn pump(&mut self) {
        let Some(n) = &self.network else { return };
        let Ok(mut q) = n.queue.try_borrow_mut() else {
            return;
        };
        let now = abi::now_nanos();
        let (token, retry, lines) = match q.next_payload(now) {
            None => return,
            Some(p) => {
                let headers: Vec<(&str, &str)> = n.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                // From this root context: the answer comes back to `on_http_call_response`
                // below, never to a stream.
                let token = (self.http_call)(&n.options.cluster, &headers, p.body.as_bytes(), n.options.timeout_ms);
                (token, p.retry, p.lines)
            }
        };
        match token {
            Some(token) => q.sent(token, retry, now),
            None => {
                q.dispatch_failed(now);
                if let Some(suppressed) = self.network_limiter.admit(now, DEFAULT_INTERVAL_NS) {
                    log::warn!(
                        "wasmixer-access-log: cannot send {lines} line(s) to cluster {:?} (is the cluster defined?); retrying with backoff ({suppressed} similar suppressed)",
                        n.options.cluster
                    );
                }
            }
        }
    }

    /// The collector's answer to request `token`.
    pub fn on_http_call_response(&mut self, token: u32) {
        let now = abi::now_nanos();
        let status =
            abi::get_header(MapType::HttpCallResponseHeaders, ":status").and_then(|s| s.trim().parse::<u32>().ok());
        let outcome = match &self.network {
            Some(n) => match n.queue.try_borrow_mut() {
                Ok(mut q) => q.on_response(token, status, now),
                Err(_) => return,
            },
            None => return,
        };
        match outcome {
            Outcome::Delivered { .. } | Outcome::Stale => {}
            Outcome::Failed | Outcome::Dropped { .. } => {
                if let Some(suppressed) = self.network_limiter.admit(now, DEFAULT_INTERVAL_NS) {
                    let what = match outcome {
                        Outcome::Dropped { lines } => format!("{lines} line(s) dropped"),
                        _ => "will retry with backoff".to_string(),
                    };
                    let status = status
                        .map_or("no response (connection failure or timeout)".to_string(), |s| format!("HTTP {s}"));
                    log::warn!(
                        "wasmixer-access-log: collector answered {status}; {what} ({suppressed} similar suppressed)"
                    );
                }
            }
        }
        // The next batch may be due already (a backlog after an outage drains at round-trip pace).
        self.pump();
    }

    /// Reads the plugin's configuration and takes it, or rejects it.
    pub fn on_configure(&mut self) -> bool {
        plugin_configuration::configure("wasmixer-access-log", |config| self.apply(config))
    }

    /// Sends a due batch to the collector and hands the counts so far to Envoy.
    pub fn on_tick(&mut self) {
        self.pump();
        self.flush_metrics();
    }
}

/// The access-log filter as a component of a larger filter (the `mixer`).
impl Component for AccessLogRoot {
    type Stream = AccessLogStream;

    fn configure(&mut self, config: &FilterConfig) -> bool {
        self.apply(config)
    }

    fn stream(&self, context_id: u32, carry: Rc<RequestCarry>) -> AccessLogStream {
        AccessLogRoot::stream(self, context_id, carry)
    }

    fn on_tick(&mut self) {
        AccessLogRoot::on_tick(self);
    }

    /// Takes every answer it is offered: the collector's queue tells its own calls from stale
    /// ones.
    fn on_http_call_response(&mut self, token: u32, _body_size: usize) -> bool {
        AccessLogRoot::on_http_call_response(self, token);
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn network(json: &str) -> NetworkOptions {
        let config = FilterConfig::parse(format!(r#"{{"access_log": {{"network": {json}}}}}"#).as_bytes()).unwrap();
        AccessLogOptions::from_config(&config).unwrap().network.unwrap()
    }

    #[test]
    fn collector_request_headers() {
        let o = network(
            r#"{"cluster": "c", "path": "/v1/logs", "format": "otlp_json", "headers": {"authorization": "Bearer x", "content-type": "application/json; charset=utf-8"}}"#,
        );
        let n = Network::new(&o);
        let h: Vec<(&str, &str)> = n.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            h,
            [
                (":method", "POST"),
                (":path", "/v1/logs"),
                (":authority", "c"),
                ("content-type", "application/json; charset=utf-8"),
                ("authorization", "Bearer x")
            ]
        );
        let o = network(r#"{"cluster": "c", "authority": "logs.example"}"#);
        let n = Network::new(&o);
        assert_eq!(n.headers[2], (":authority".to_string(), "logs.example".to_string()));
        assert_eq!(n.headers[3].1, "application/x-ndjson");
    }
}
