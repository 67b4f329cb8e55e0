//! Property tests of the attribute layer over a host that answers garbage: every property,
//! header and trailer comes back as random bytes (wrong lengths, invalid UTF-8, fake pairs
//! encodings, bogus JWT metadata), absent at random. Every attribute of the vocabulary and the
//! seed plans evaluate over it without a panic: whatever Envoy hands a filter, it never traps.
//! Runs natively and on wasm32.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::cell::RefCell;
use std::rc::Rc;

use wasmixer_engine::attr::envoy_bag::{EnvoyBag, SourceTable};
use wasmixer_engine::attr::source::AttributeSource;
use wasmixer_engine::attr::sources::Side;
use wasmixer_engine::attr::workload_attributes::WorkloadAttributes;
use wasmixer_engine::config::FilterConfig;
use wasmixer_engine::expr::{AttrId, Manifest, Program, StringMap, ValueType};
use wasmixer_engine::policy::DenyPlan;
use wasmixer_engine::telemetry::logs::plan::LogPlan;
use wasmixer_engine::telemetry::metrics::plan::MetricPlan;

mod support;
use support::{Quiet, Rng};

/// Byte strings a confused or hostile host might return.
fn garbage(rng: &mut Rng) -> Vec<u8> {
    match rng.below(9) {
        0 => Vec::new(),
        1 => vec![rng.below(256) as u8],
        2 => (rng.next() as i64).to_le_bytes().to_vec(),
        3 => (0..rng.below(7)).map(|_| rng.below(256) as u8).collect(),
        4 => vec![0xff, 0xfe, 0xc3],
        5 => b"outbound|9080||reviews.default.svc.cluster.local".to_vec(),
        6 => b"spiffe://cluster.local/ns/default/sa/x".to_vec(),
        // A pairs header claiming more pairs than the bytes hold.
        7 => vec![200, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, b'k'],
        _ => (0..rng.below(64)).map(|_| rng.below(256) as u8).collect(),
    }
}

struct GarbageHost {
    rng: RefCell<Rng>,
    local: Option<Rc<WorkloadAttributes>>,
    peer: Option<Rc<WorkloadAttributes>>,
}

impl GarbageHost {
    fn maybe<T>(&self, f: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        let mut rng = self.rng.borrow_mut();
        (rng.below(5) != 0).then(|| f(&mut rng))
    }
}

fn text(rng: &mut Rng) -> String {
    String::from_utf8_lossy(&garbage(rng)).into_owned()
}

impl AttributeSource for GarbageHost {
    fn property(&self, _path: &'static [&'static str]) -> Option<Vec<u8>> {
        self.maybe(garbage)
    }
    fn headers(&self, _response: bool) -> StringMap {
        self.maybe(|rng| StringMap::from_pairs((0..rng.below(5)).map(|_| (text(rng), text(rng))))).unwrap_or_default()
    }
    fn header(&self, _response: bool, _name: &str) -> Option<String> {
        self.maybe(text)
    }
    fn response_trailer(&self, _name: &str) -> Option<String> {
        self.maybe(text)
    }
    fn now_nanos(&self) -> i64 {
        self.rng.borrow_mut().next() as i64
    }
    fn local_workload(&self) -> Option<Rc<WorkloadAttributes>> {
        self.local.clone()
    }
    fn peer_workload(&self) -> Option<Rc<WorkloadAttributes>> {
        self.peer.clone()
    }
    fn announced_peer(&self) -> Option<(Side, Rc<WorkloadAttributes>)> {
        let side = self.maybe(|rng| if rng.below(2) == 0 { Side::Source } else { Side::Destination })?;
        Some((side, self.peer.clone()?))
    }
}

fn workload(rng: &mut Rng) -> Option<Rc<WorkloadAttributes>> {
    (rng.below(3) != 0).then(|| {
        Rc::new(WorkloadAttributes {
            labels: StringMap::from_pairs([("app", text(rng)), ("version", text(rng))]),
            name: Some(text(rng)),
            namespace: Some(text(rng)),
            workload_name: Some(text(rng)),
            uid: Some(text(rng)),
            ..WorkloadAttributes::default()
        })
    })
}

/// One expression per attribute of the vocabulary (maps indexed), and a few that combine them.
fn every_attribute(m: &Manifest) -> Vec<Program> {
    let mut out = Vec::new();
    for (_, name, ty) in m.iter() {
        let src = match ty {
            ValueType::StringMap => format!("{name}[\"app\"] | \"-\""),
            _ => name.to_string(),
        };
        out.push(Program::compile(&src, m).unwrap_or_else(|e| panic!("{src}: {e}")));
    }
    for src in [
        "response.time == request.time",
        "conditional(destination.service.name == destination.service.namespace, response.time, request.time)",
        "request.query_params[\"x\"] | request.auth.claims[\"sub\"] | \"\"",
        "source.ip == ip(\"10.0.0.1\") || destination.ip == ip(\"::1\")",
        "match(request.useragent | \"\", \"curl*\") && request.path.matches(\"^/a\")",
    ] {
        out.push(Program::compile(src, m).unwrap_or_else(|e| panic!("{src}: {e}")));
    }
    out
}

fn config(text: &str) -> FilterConfig {
    FilterConfig::parse(text.as_bytes()).unwrap()
}

const ROUNDS: u64 = if cfg!(target_arch = "wasm32") { 300 } else { 3000 };

#[test]
fn every_attribute_evaluates_over_a_host_answering_garbage() {
    let m = Manifest::istio();
    let programs = every_attribute(m);
    let needed: Vec<AttrId> = m.iter().map(|(id, _, _)| id).collect();
    let table = SourceTable::new(m, &needed);
    for seed in 1..=ROUNDS {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (local, peer) = (workload(&mut rng), workload(&mut rng));
        let host = GarbageHost { rng: RefCell::new(rng), local, peer };
        let bag = EnvoyBag::new(&host, &table);
        for p in &programs {
            let _ = p.evaluate(&bag).map(|v| v.into_owned());
        }
    }
}

#[test]
fn the_seed_plans_serve_over_a_host_answering_garbage() {
    let m = Manifest::istio();
    let deny = DenyPlan::compile(&config(include_str!("../../integration/testdata/deny-seed.json")), m).unwrap();
    let metrics =
        MetricPlan::compile(&config(include_str!("../../envoy-config/metrics/istio-standard-metrics.json")), m)
            .unwrap();
    let log =
        LogPlan::compile(&config(include_str!("../../integration/testdata/access-log-newlog-stdio.json")), m).unwrap();
    let tables = [deny.attributes(), metrics.attributes(), log.attributes()].map(|ids| SourceTable::new(m, ids));
    let mut line = String::new();
    for seed in 1..=ROUNDS {
        let mut rng = Rng(seed ^ 0xDEAD_BEEF);
        let (local, peer) = (workload(&mut rng), workload(&mut rng));
        let host = GarbageHost { rng: RefCell::new(rng), local, peer };
        let _ = deny.check(&EnvoyBag::new(&host, &tables[0]), 0, &mut Quiet);
        metrics.record(&EnvoyBag::new(&host, &tables[1]), &mut Quiet);
        log.render(&EnvoyBag::new(&host, &tables[2]), 0, &mut line, &mut Quiet);
    }
}

#[test]
fn a_batched_answer_of_garbage_decodes_or_is_refused_without_a_panic() {
    use wasmixer_engine::attr::batch::decode;
    let mut rng = Rng(0x5EED_BA7C);
    for _ in 0..ROUNDS * 20 {
        let mut bytes = garbage(&mut rng);
        // Half the time a plausible header: a small count and sizes, then whatever follows.
        if rng.below(2) == 0 {
            let count = rng.below(8) as u32;
            let mut head = count.to_le_bytes().to_vec();
            for _ in 0..count {
                head.extend_from_slice(&(rng.below(10) as u32).to_le_bytes());
                head.extend_from_slice(&(rng.below(3) as u32).to_le_bytes());
            }
            head.extend_from_slice(&bytes);
            bytes = head;
        }
        let expected = rng.below(8);
        if let Some(values) = decode(bytes, expected) {
            assert_eq!(values.len(), expected);
            assert!((0..expected).all(|i| values.get(i).is_some()) && values.get(expected).is_none());
        }
    }
}
