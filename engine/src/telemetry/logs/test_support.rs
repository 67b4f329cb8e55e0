//! What the logs tests share: the seed scenario (`newlog-stdio.yaml`), its request and line, a
//! sink that collects, and bags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::fmt;

use super::instance::LogInstance;
use super::plan::{LogPlan, LogRule};
use super::render::{FieldRef, LineMeta, LogSink};
use super::stdio::Level;
use crate::config::FilterConfig;
use crate::expr::{Manifest, StringMap, Value};
use crate::gostd::time::Timestamp;
pub(crate) use crate::telemetry::test_support::{bag, s};

/// Collects everything a render produced.
#[derive(Default)]
pub(crate) struct Collect {
    pub(crate) lines: Vec<(usize, Level, String)>,
    pub(crate) match_errors: Vec<(String, String)>,
    pub(crate) instance_errors: Vec<(String, String, String)>,
    pub(crate) filtered: usize,
}

impl LogSink for Collect {
    fn line(&mut self, meta: &LineMeta<'_>, line: &str) {
        assert!(!line.contains('\n'));
        self.lines.push((meta.handler, meta.level, line.to_string()));
    }
    fn match_error(&mut self, _: usize, rule: &LogRule, error: &dyn fmt::Display) {
        self.match_errors.push((rule.label.clone(), error.to_string()));
    }
    fn instance_error(&mut self, _: usize, instance: &LogInstance, field: FieldRef<'_>, error: &dyn fmt::Display) {
        self.instance_errors.push((instance.fqn.clone(), field.to_string(), error.to_string()));
    }
    fn filtered(&mut self, _: usize, _: usize) {
        self.filtered += 1;
    }
}

pub(crate) fn plan(json: &str) -> Result<LogPlan, String> {
    let config = FilterConfig::parse(json.as_bytes()).map_err(|e| e.to_string())?;
    LogPlan::compile(&config, Manifest::istio()).map_err(|e| e.to_string())
}

pub(crate) fn labels(pairs: &[(&str, &str)]) -> Value<'static> {
    Value::StringMap(Cow::Owned(StringMap::from_pairs(pairs.iter().copied())))
}

pub(crate) fn render(p: &LogPlan, attrs: &[(&str, Value<'static>)]) -> Collect {
    let mut c = Collect::default();
    let mut out = String::new();
    p.render(&bag(attrs), 1_576_514_753_000_000_000, &mut out, &mut c);
    c
}

/// The seed scenario `newlog-stdio.yaml`, as JSON resources.
pub(crate) const SEED: &str = r#"{"resources": [
  {"apiVersion": "config.istio.io/v1alpha2", "kind": "instance", "metadata": {"name": "newlog", "namespace": "istio-system"},
   "spec": {"compiledTemplate": "logentry", "params": {
     "severity": "\"warning\"",
     "timestamp": "request.time",
     "variables": {
       "source": "source.labels[\"app\"] | source.workload.name | \"unknown\"",
       "user": "source.user | \"unknown\"",
       "destination": "destination.labels[\"app\"] | destination.workload.name | \"unknown\"",
       "responseCode": "response.code | 0",
       "responseSize": "response.size | 0",
       "latency": "response.duration | \"0ms\""},
     "monitored_resource_type": "\"UNSPECIFIED\""}}},
  {"apiVersion": "config.istio.io/v1alpha2", "kind": "handler", "metadata": {"name": "newloghandler", "namespace": "istio-system"},
   "spec": {"compiledAdapter": "stdio", "params": {"severity_levels": {"warning": 1}, "outputAsJson": true}}},
  {"apiVersion": "config.istio.io/v1alpha2", "kind": "rule", "metadata": {"name": "newlogstdio", "namespace": "istio-system"},
   "spec": {"match": "true", "actions": [{"handler": "newloghandler", "instances": ["newlog"]}]}}
]}"#;

// 2019-12-16T16:45:53.950607123Z
pub(crate) const SEED_TIME_NS: i64 = 1_576_514_753_950_607_123;

pub(crate) fn seed_request() -> Vec<(&'static str, Value<'static>)> {
    vec![
        ("request.time", Value::Timestamp(Timestamp::from_unix_nanos(SEED_TIME_NS))),
        ("source.labels", labels(&[("app", "reviews"), ("version", "v3")])),
        ("destination.labels", labels(&[("app", "ratings")])),
        ("response.code", Value::Int64(200)),
        ("response.size", Value::Int64(48)),
        ("response.duration", Value::Duration(1_494_269)),
    ]
}

pub(crate) const SEED_LINE: &str = r#"{"level":"warn","time":"2019-12-16T16:45:53.950607Z","instance":"newlog.instance.istio-system","destination":"ratings","latency":"1.494269ms","responseCode":200,"responseSize":48,"source":"reviews","user":"unknown"}"#;
