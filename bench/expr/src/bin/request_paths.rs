//! What one request costs inside a filter, apart from Envoy: each seed plan (deny check, metric
//! record, access-log render, and Istio's standard metrics) run natively over an attribute bag
//! whose host answers from memory, timed, with its heap allocations and its calls to the host
//! counted. The load benchmark (`make bench`) shows the rest of a filter's cost is Envoy's
//! per-filter Wasm floor and those host calls (about a microsecond each in Envoy, against
//! nanoseconds for the work here). `make bench-request-paths`.

use std::cell::Cell;
use std::fmt;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use wasmixer_bench_expr::alloc_snapshot;
use wasmixer_engine::attr::envoy_bag::{Direction, EnvoyBag, SourceTable};
use wasmixer_engine::attr::source::AttributeSource;
use wasmixer_engine::attr::sources::Side;
use wasmixer_engine::attr::workload_attributes::WorkloadAttributes;
use wasmixer_engine::config::FilterConfig;
use wasmixer_engine::expr::{Manifest, StringMap};
use wasmixer_engine::policy::deny::{CheckObserver, CheckRule, RuleOutcome};
use wasmixer_engine::policy::DenyPlan;
use wasmixer_engine::telemetry::logs::plan::LogPlan;
use wasmixer_engine::telemetry::logs::render::{LineMeta, LogSink};
use wasmixer_engine::telemetry::metrics::plan::MetricPlan;
use wasmixer_engine::telemetry::metrics::record::{DropCause, MetricSink};

/// A ratings-v1 sidecar's inbound request from reviews-v3, answered from memory. The peer is a
/// verified caller the peer-metadata filter published in filter state: one read to find it.
struct MemoryHost {
    local: Option<Rc<WorkloadAttributes>>,
    peer: Option<Rc<WorkloadAttributes>>,
    /// Property and header reads so far: each is one call into Envoy in a real filter.
    calls: Cell<u64>,
    /// This request's announced peer told the direction (the request's carry remembers it).
    direction_known: Cell<bool>,
}

impl MemoryHost {
    fn count(&self) {
        self.calls.set(self.calls.get() + 1);
    }

    /// What a filter knows at the start of a request: nothing yet.
    fn new_request(&self) -> &MemoryHost {
        self.direction_known.set(false);
        self
    }
}

fn le(v: i64) -> Option<Vec<u8>> {
    Some(v.to_le_bytes().to_vec())
}

impl AttributeSource for MemoryHost {
    fn property(&self, path: &'static [&'static str]) -> Option<Vec<u8>> {
        // Once the verified caller is found, ProxyHost answers these from it.
        let from_peer = matches!(path, ["connection", "mtls" | "uri_san_peer_certificate"]);
        if !(from_peer && self.direction_known.get()) {
            self.count();
        }
        match path {
            ["xds", "listener_direction"] => le(1),
            ["response", "code"] => le(200),
            ["response", "size" | "total_size"] | ["request", "size" | "total_size"] => le(48),
            ["request", "duration"] => le(1_494_269),
            ["request", "time"] => le(1_576_514_753_950_607_000),
            ["response", "flags"] => le(0),
            ["xds", "cluster_name"] => Some(b"inbound|9080|http|ratings.default.svc.cluster.local".to_vec()),
            ["connection", "mtls"] => Some(vec![1]),
            ["connection", "uri_san_peer_certificate"] => {
                Some(b"spiffe://cluster.local/ns/default/sa/bookinfo-reviews".to_vec())
            }
            ["request", "protocol"] => Some(b"HTTP/1.1".to_vec()),
            _ => None,
        }
    }
    fn headers(&self, _response: bool) -> StringMap {
        self.count();
        StringMap::from_pairs([(":method", "GET"), (":path", "/ratings/0")])
    }
    fn header(&self, _response: bool, _name: &str) -> Option<String> {
        self.count();
        None
    }
    fn response_trailer(&self, _name: &str) -> Option<String> {
        self.count();
        None
    }
    fn now_nanos(&self) -> i64 {
        1_576_514_753_950_607_000
    }
    fn local_workload(&self) -> Option<Rc<WorkloadAttributes>> {
        self.local.clone()
    }
    fn peer_workload(&self) -> Option<Rc<WorkloadAttributes>> {
        self.count();
        self.peer.clone()
    }
    fn announced_peer(&self) -> Option<(Side, Rc<WorkloadAttributes>)> {
        self.count();
        self.direction_known.set(true);
        Some((Side::Source, self.peer.clone()?))
    }
    fn listener_direction(&self) -> Option<Direction> {
        if self.direction_known.get() {
            return Some(Direction::Inbound);
        }
        Direction::from_property(&self.property(&Direction::PROPERTY)?)
    }
}

fn workload(app: &str, version: &str) -> Rc<WorkloadAttributes> {
    Rc::new(WorkloadAttributes {
        labels: StringMap::from_pairs([("app", app), ("version", version)]),
        namespace: Some("default".into()),
        workload_name: Some(format!("{app}-{version}")),
        name: Some(format!("{app}-{version}-0")),
        service_account: Some(format!("bookinfo-{app}")),
        uid: Some(format!("kubernetes://{app}-{version}-0.default")),
        ..WorkloadAttributes::default()
    })
}

struct Samples(u64);
impl MetricSink for Samples {
    fn sample(&mut self, _metric: usize, labels: &[&str], _value: f64, envoy_value: u64) {
        self.0 += envoy_value + labels.len() as u64;
    }
    fn dropped(&mut self, _metric: usize, _cause: DropCause, _detail: &dyn fmt::Display) {}
}

struct Lines(usize);
impl LogSink for Lines {
    fn line(&mut self, _meta: &LineMeta<'_>, line: &str) {
        self.0 += line.len();
    }
}

struct Outcomes;
impl CheckObserver for Outcomes {
    fn rule(&mut self, _index: usize, _rule: &CheckRule, _outcome: RuleOutcome, _detail: &dyn fmt::Display) {}
}

/// Per request: nanoseconds, heap allocations, host reads.
struct Cost(f64, f64, f64);

/// Runs `f` `n` times after a warm-up, counting what it asks of `host`.
fn measure(n: u32, host: &MemoryHost, mut f: impl FnMut()) -> Cost {
    for _ in 0..1_000 {
        f();
    }
    let (before, _) = alloc_snapshot();
    let calls_before = host.calls.get();
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
    let (after, _) = alloc_snapshot();
    let calls = (host.calls.get() - calls_before) as f64;
    Cost(ns, (after - before) as f64 / f64::from(n), calls / f64::from(n))
}

fn config(path: &str) -> Result<FilterConfig, String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let bytes = std::fs::read(format!("{root}/{path}")).map_err(|e| format!("{path}: {e}"))?;
    FilterConfig::parse(&bytes).map_err(|e| format!("{path}: {e}"))
}

fn run() -> Result<(), String> {
    let manifest = Manifest::istio();
    let host = MemoryHost {
        local: Some(workload("ratings", "v1")),
        peer: Some(workload("reviews", "v3")),
        calls: Cell::new(0),
        direction_known: Cell::new(false),
    };
    let report = |name: &str, Cost(ns, allocations, calls): Cost| {
        println!(
            "  {name:34} {ns:8.0} ns/request  {allocations:5.1} allocations/request  {calls:4.1} host reads/request"
        );
    };
    println!(
        "per-request work inside the filters, native, host answered from memory (the ratings sidecar, inbound, a reviews-v3 caller verified by peer-metadata):"
    );

    // Plans as a proxy in namespace default holds them (rule scoping settled at configure time).
    let own_namespace = host.local.as_ref().and_then(|w| w.namespace.as_deref());
    let mut deny =
        DenyPlan::compile(&config("integration/testdata/deny-seed.json")?, manifest).map_err(|e| e.to_string())?;
    deny.settle_scope_for_proxy(own_namespace);
    let table = SourceTable::new(manifest, deny.attributes());
    report(
        "deny: seed rule (matches, denies)",
        measure(200_000, &host, || {
            let bag = EnvoyBag::new(host.new_request(), &table);
            std::hint::black_box(deny.check(&bag, 0, &mut Outcomes));
        }),
    );

    let mut samples = Samples(0);
    for (name, path) in [
        ("metrics: seed metric", "integration/testdata/metrics-double-request-count.json"),
        ("metrics: Istio standard metrics", "envoy-config/metrics/istio-standard-metrics.json"),
    ] {
        let mut plan = MetricPlan::compile(&config(path)?, manifest).map_err(|e| e.to_string())?;
        plan.settle_scope_for_proxy(own_namespace);
        let table = SourceTable::new(manifest, plan.attributes());
        report(
            name,
            measure(100_000, &host, || {
                let bag = EnvoyBag::new(host.new_request(), &table);
                plan.record(&bag, &mut samples);
            }),
        );
    }

    let mut log = LogPlan::compile(&config("integration/testdata/access-log-newlog-stdio.json")?, manifest)
        .map_err(|e| e.to_string())?;
    log.settle_scope_for_proxy(own_namespace);
    let table = SourceTable::new(manifest, log.attributes());
    let mut line = String::with_capacity(1024);
    let mut lines = Lines(0);
    report(
        "access-log: seed logentry line",
        measure(200_000, &host, || {
            let bag = EnvoyBag::new(host.new_request(), &table);
            log.render(&bag, 0, &mut line, &mut lines);
        }),
    );
    std::hint::black_box((samples.0, lines.0));
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("request_paths: {e}");
            ExitCode::FAILURE
        }
    }
}
