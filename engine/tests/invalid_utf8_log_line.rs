//! Issue 7's known gap: header and property bytes that are not UTF-8 reach the access-log line
//! as Mixer's zap encoder wrote them, one `\ufffd` per invalid byte. From the host's raw bytes
//! (the ABI's header-map encoding, a property's bytes) through the attribute bag and the log
//! plan to the rendered line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::rc::Rc;

use wasmixer_engine::attr::envoy_bag::{EnvoyBag, SourceTable};
use wasmixer_engine::attr::pairs;
use wasmixer_engine::attr::source::AttributeSource;
use wasmixer_engine::attr::workload_attributes::WorkloadAttributes;
use wasmixer_engine::config::FilterConfig;
use wasmixer_engine::expr::{Manifest, Program, StringMap};
use wasmixer_engine::telemetry::logs::plan::LogPlan;
use wasmixer_engine::telemetry::logs::render::{LineMeta, LogSink};
use wasmixer_engine::telemetry::metrics::stat_name::write_sanitized_value;

/// The host as the ABI hands values over: header maps in the pairs encoding, properties as
/// bytes.
struct RawHost {
    request_header_pairs: Vec<u8>,
    referer: Vec<u8>,
}

impl AttributeSource for RawHost {
    fn property(&self, path: &'static [&'static str]) -> Option<Vec<u8>> {
        (path == ["request", "referer"]).then(|| self.referer.clone())
    }
    fn headers(&self, response: bool) -> StringMap {
        if response {
            StringMap::new()
        } else {
            pairs::string_map_of_pairs(&self.request_header_pairs)
        }
    }
    fn header(&self, _: bool, _: &str) -> Option<String> {
        None
    }
    fn response_trailer(&self, _: &str) -> Option<String> {
        None
    }
    fn now_nanos(&self) -> i64 {
        0
    }
    fn local_workload(&self) -> Option<Rc<WorkloadAttributes>> {
        None
    }
    fn peer_workload(&self) -> Option<Rc<WorkloadAttributes>> {
        None
    }
}

/// The ABI's pairs encoding over raw bytes (`pairs::serialize_pairs` only takes text).
fn raw_pairs(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

const CONFIG: &str = r#"{"resources": [
  {"kind": "instance", "metadata": {"name": "ualog", "namespace": "istio-system"},
   "spec": {"compiledTemplate": "logentry", "params": {"severity": "\"info\"", "variables": {
     "ua": "request.headers[\"user-agent\"] | \"-\"",
     "uaSize": "size(request.headers[\"user-agent\"] | \"\")",
     "uaLower": "toLower(request.headers[\"user-agent\"] | \"\")",
     "referer": "request.referer | \"-\"",
     "headers": "request.headers"}}}},
  {"kind": "handler", "metadata": {"name": "h", "namespace": "istio-system"},
   "spec": {"compiledAdapter": "stdio", "params": {}}},
  {"kind": "rule", "metadata": {"name": "r", "namespace": "istio-system"},
   "spec": {"match": "true", "actions": [{"handler": "h", "instances": ["ualog"]}]}}
]}"#;

#[derive(Default)]
struct Lines(Vec<String>);

impl LogSink for Lines {
    fn line(&mut self, _: &LineMeta<'_>, line: &str) {
        self.0.push(line.to_string());
    }
}

fn rendered_line(user_agent: &[u8], referer: &[u8]) -> String {
    let config = FilterConfig::parse(CONFIG.as_bytes()).unwrap();
    let plan = LogPlan::compile(&config, Manifest::istio()).unwrap();
    let table = SourceTable::new(Manifest::istio(), plan.attributes());
    let host = RawHost { request_header_pairs: raw_pairs(&[(b"user-agent", user_agent)]), referer: referer.to_vec() };
    let bag = EnvoyBag::new(&host, &table);
    let mut lines = Lines::default();
    plan.render(&bag, 0, &mut String::new(), &mut lines);
    assert_eq!(lines.0.len(), 1);
    lines.0.remove(0)
}

fn expected(ua: &str, ua_lower: &str, ua_size: usize, referer: &str) -> String {
    format!(
        r#"{{"level":"info","time":"0001-01-01T00:00:00.000000Z","instance":"ualog.instance.istio-system","headers":{{"user-agent":"{ua}"}},"referer":"{referer}","ua":"{ua}","uaLower":"{ua_lower}","uaSize":{ua_size}}}"#
    )
}

#[test]
fn one_escape_per_invalid_byte_as_zap_wrote_it() {
    // `toLower` went through Go's `strings.Map`, which made each invalid byte a real U+FFFD,
    // written raw.
    assert_eq!(rendered_line(b"a\xffb", b"r\xff"), expected(r"a\ufffdb", "a\u{fffd}b", 3, r"r\ufffd"));
    assert_eq!(
        rendered_line(b"\xe2\x82z", b"\xe2\x82z"),
        expected(r"\ufffd\ufffdz", "\u{fffd}\u{fffd}z", 3, r"\ufffd\ufffdz")
    );
}

#[test]
fn valid_text_is_unchanged_including_a_literal_replacement_character() {
    assert_eq!(rendered_line("Héllo \u{fffd}".as_bytes(), b"-"), expected("Héllo \u{fffd}", "héllo \u{fffd}", 10, "-"));
    // A valid character of the range that carries raw bytes still prints raw, as in Mixer.
    assert_eq!(rendered_line("\u{10ff80}".as_bytes(), b"-"), expected("\u{10ff80}", "\u{10ff80}", 4, "-"));
}

#[test]
fn cexl_compares_the_bytes_mixer_compared() {
    let table_for = |programs: &[Program]| {
        let mut needed: Vec<_> = programs.iter().flat_map(|p| p.attributes().iter().copied()).collect();
        needed.sort_unstable();
        needed.dedup();
        SourceTable::new(Manifest::istio(), &needed)
    };
    let exprs = [
        r#"request.referer.startsWith("a")"#,
        r#"request.referer.endsWith("b")"#,
        r#"request.headers["user-agent"] == "ab""#,
        r#""^a.b$".matches(request.referer)"#,
        r#"match(request.headers["user-agent"], "a*")"#,
        r#"request.headers["user-agent"] == request.referer"#,
        r#"ip(request.referer) == ip("1.2.3.4")"#,
        r#"timestamp(request.referer) == timestamp("2019-01-01T00:00:00Z")"#,
        r#"dnsName(request.referer) == dnsName("a.b")"#,
    ];
    let programs: Vec<Program> = exprs.iter().map(|e| Program::compile(e, Manifest::istio()).unwrap()).collect();
    let table = table_for(&programs);
    let host = RawHost { request_header_pairs: raw_pairs(&[(b"user-agent", b"a\xffb")]), referer: b"a\xffb".to_vec() };
    let bag = EnvoyBag::new(&host, &table);
    let got: Vec<String> = programs.iter().map(|p| format!("{:?}", p.evaluate(&bag))).collect();
    assert_eq!(
        got[..6],
        ["Ok(Bool(true))", "Ok(Bool(true))", "Ok(Bool(false))", "Ok(Bool(true))", "Ok(Bool(true))", "Ok(Bool(true))"]
    );
    // The conversions that parse fail on such bytes, as they did in Mixer.
    for (expr, result) in exprs[6..].iter().zip(&got[6..]) {
        assert!(result.starts_with("Err("), "{expr}: {result}");
    }
}

#[test]
fn stat_label_values_show_a_replacement_character_per_invalid_byte() {
    let value = pairs::deserialize_pairs(&raw_pairs(&[(b"user-agent", b"a\xe2\x82z")])).remove(0).1;
    let mut label = String::new();
    write_sanitized_value(&value, &mut label);
    assert_eq!(label, "a\u{fffd}\u{fffd}z");
}
