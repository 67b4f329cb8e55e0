//! What the robustness tests share: a deterministic generator, random CEXL expressions, text
//! mutations, random attribute bags, and a sink for what plans report.
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use std::borrow::Cow;
use std::fmt;

use wasmixer_engine::expr::{Manifest, MapBag, StringMap, Value};
use wasmixer_engine::policy::deny::{CheckObserver, CheckRule, RuleOutcome};
use wasmixer_engine::telemetry::logs::render::{LineMeta, LogSink};
use wasmixer_engine::telemetry::metrics::record::{DropCause, MetricSink};

/// A tiny deterministic generator (xorshift64*), so failures reproduce from the seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

pub const ATTRS: &[&str] = &[
    "source.labels",
    "destination.labels",
    "request.headers",
    "request.path",
    "request.size",
    "response.code",
    "response.duration",
    "connection.mtls",
    "source.ip",
    "request.time",
    "source.workload.name",
    "context.reporter.kind",
];
pub const LITERALS: &[&str] = &[
    "\"v3\"",
    "\"\"",
    "\"10ms\"",
    "\"0\"",
    "200",
    "0",
    "1.5",
    "true",
    "false",
    "'a'",
    "`raw`",
    "\"kube-probe*\"",
    "\"^a.*b$\"",
    "\"1.2.3.4\"",
    "\"2017-01-01T00:00:00Z\"",
    "9223372036854775807",
];
pub const BINOPS: &[&str] = &["==", "!=", "<", "<=", ">", ">=", "&&", "||", "|", "+", "-", "*", "/", "%", "<<", "&^"];
pub const FUNCS: &[&str] = &[
    "match",
    "size",
    "conditional",
    "ip",
    "timestamp",
    "dnsName",
    "email",
    "uri",
    "toLower",
    "emptyStringMap",
    "conditionalString",
    "nope",
];
pub const METHODS: &[&str] = &["startsWith", "endsWith", "matches", "toLower"];

pub fn gen_expr(rng: &mut Rng, depth: u32) -> String {
    if depth == 0 {
        return match rng.below(3) {
            0 => rng.pick(ATTRS).to_string(),
            1 => rng.pick(LITERALS).to_string(),
            _ => format!(
                "{}[{}]",
                rng.pick(&["source.labels", "request.headers", "destination.labels"]),
                rng.pick(&["\"app\"", "\"version\"", "request.path"])
            ),
        };
    }
    match rng.below(7) {
        0 | 1 => format!("{} {} {}", gen_expr(rng, depth - 1), rng.pick(BINOPS), gen_expr(rng, depth - 1)),
        2 => format!("({})", gen_expr(rng, depth - 1)),
        3 => {
            let n = rng.below(4);
            let args: Vec<String> = (0..n).map(|_| gen_expr(rng, depth - 1)).collect();
            format!("{}({})", rng.pick(FUNCS), args.join(", "))
        }
        4 => format!("({}).{}({})", gen_expr(rng, depth - 1), rng.pick(METHODS), gen_expr(rng, depth - 1)),
        5 => format!("{}{}", rng.pick(&["!", "-", "+", "*", ""]), gen_expr(rng, depth - 1)),
        _ => format!("{} | {}", gen_expr(rng, depth - 1), gen_expr(rng, depth - 1)),
    }
}

/// Byte-level mutations: deletions, duplications, insertions of syntax characters.
pub fn mutate(rng: &mut Rng, src: &str) -> String {
    let mut chars: Vec<char> = src.chars().collect();
    for _ in 0..=rng.below(3) {
        if chars.is_empty() {
            break;
        }
        let at = rng.below(chars.len());
        match rng.below(4) {
            0 => {
                chars.remove(at);
            }
            1 => chars.insert(
                at,
                *rng.pick(&["(", ")", "\"", "[", "]", ".", "|", "=", "\\", "`", "'", "\n", "é", "\u{0}"])
                    .chars()
                    .collect::<Vec<_>>()
                    .first()
                    .unwrap_or(&'x'),
            ),
            2 => {
                let c = chars[at];
                chars.insert(at, c);
            }
            _ => chars.truncate(at),
        }
    }
    chars.into_iter().collect()
}

pub fn random_bag(rng: &mut Rng, m: &Manifest) -> MapBag {
    let mut bag = MapBag::new(m);
    let map = |pairs: &[(&str, &str)]| Value::StringMap(Cow::Owned(StringMap::from_pairs(pairs.iter().copied())));
    let s = |v: &str| Value::String(Cow::Owned(v.to_string()));
    let candidates: Vec<(&str, Value<'static>)> = vec![
        ("source.labels", map(&[("app", "reviews"), ("version", "v3")])),
        ("destination.labels", map(&[("app", "ratings")])),
        ("request.headers", map(&[("user-agent", "curl"), (":path", "/x")])),
        ("request.path", s("/ratings/0")),
        ("request.size", Value::Int64(rng.below(1000) as i64)),
        ("response.code", Value::Int64(200)),
        ("response.duration", Value::Duration(1_494_269)),
        ("connection.mtls", Value::Bool(rng.below(2) == 0)),
        ("source.workload.name", s("reviews-v3")),
        ("context.reporter.kind", s("inbound")),
    ];
    for (name, v) in candidates {
        if rng.below(3) != 0 {
            bag.set(m, name, v).unwrap();
        }
    }
    bag
}

/// Takes every observation a plan reports, rendering each so the rendering runs too.
pub struct Quiet;

impl CheckObserver for Quiet {
    fn rule(&mut self, _: usize, _: &CheckRule, _: RuleOutcome, detail: &dyn fmt::Display) {
        let _ = detail.to_string();
    }
}

impl MetricSink for Quiet {
    fn sample(&mut self, _: usize, labels: &[&str], _: f64, _: u64) {
        let _ = labels.concat();
    }
    fn dropped(&mut self, _: usize, _: DropCause, detail: &dyn fmt::Display) {
        let _ = detail.to_string();
    }
}

impl LogSink for Quiet {
    fn line(&mut self, _: &LineMeta<'_>, line: &str) {
        let _ = line.len();
    }
}
