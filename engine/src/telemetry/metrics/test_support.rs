//! What the metrics tests share: the seed configuration, a one-metric configuration, a sink
//! that collects, and bags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;

use super::plan::MetricPlan;
use super::record::{DropCause, MetricSink};
use crate::config::FilterConfig;
use crate::expr::{Manifest, MapBag, Value};
pub(crate) use crate::telemetry::test_support::{bag, s};

/// The seed `double-request-count.yaml`, by hand in the JSON `resources` form.
pub(crate) const SEED: &str = r#"{"resources": [
  {"apiVersion": "config.istio.io/v1alpha2", "kind": "instance", "metadata": {"name": "doublerequestcount", "namespace": "istio-system"},
   "spec": {"compiledTemplate": "metric", "params": {"value": "2", "dimensions": {
      "reporter": "conditional((context.reporter.kind | \"inbound\") == \"outbound\", \"client\", \"server\")",
      "source": "source.workload.name | \"unknown\"",
      "destination": "destination.workload.name | \"unknown\"",
      "message": "\"twice the fun!\""},
      "monitored_resource_type": "\"UNSPECIFIED\""}}},
  {"apiVersion": "config.istio.io/v1alpha2", "kind": "handler", "metadata": {"name": "doublehandler", "namespace": "istio-system"},
   "spec": {"compiledAdapter": "prometheus", "params": {"metrics": [
      {"name": "double_request_count", "instance_name": "doublerequestcount.instance.istio-system", "kind": "COUNTER",
       "label_names": ["reporter", "source", "destination", "message"]}]}}},
  {"apiVersion": "config.istio.io/v1alpha2", "kind": "rule", "metadata": {"name": "doubleprom", "namespace": "istio-system"},
   "spec": {"actions": [{"handler": "doublehandler", "instances": ["doublerequestcount"]}]}}
]}"#;

#[derive(Default)]
pub(crate) struct Collect {
    pub(crate) samples: Vec<(usize, Vec<String>, f64, u64)>,
    pub(crate) dropped: Vec<(usize, DropCause, String)>,
    pub(crate) rule_errors: Vec<(usize, String)>,
}

impl MetricSink for Collect {
    fn sample(&mut self, metric: usize, labels: &[&str], value: f64, envoy_value: u64) {
        self.samples.push((metric, labels.iter().map(|l| l.to_string()).collect(), value, envoy_value));
    }
    fn dropped(&mut self, metric: usize, cause: DropCause, detail: &dyn fmt::Display) {
        self.dropped.push((metric, cause, detail.to_string()));
    }
    fn rule_error(&mut self, rule: usize, detail: &dyn fmt::Display) {
        self.rule_errors.push((rule, detail.to_string()));
    }
}

pub(crate) fn plan(json: &str) -> Result<MetricPlan, String> {
    let config = FilterConfig::parse(json.as_bytes()).map_err(|e| e.to_string())?;
    MetricPlan::compile(&config, Manifest::istio()).map_err(|e| e.to_string())
}

pub(crate) fn run(p: &MetricPlan, attrs: &[(&str, Value<'static>)]) -> Collect {
    let mut c = Collect::default();
    p.record(&bag(attrs), &mut c);
    c
}

pub(crate) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// A one-metric configuration in namespace `default`, which is also the config namespace
/// (so the rule applies to all traffic): instance `i` (value, dimensions), handler `h` with
/// `metric` (instance_name filled in), rule `r` with `match`.
pub(crate) fn one(value: &str, dims: &str, metric: &str, rule_match: &str) -> String {
    let inner = metric.trim().strip_prefix('{').unwrap_or(metric).trim_start();
    let entry = if inner.starts_with('}') {
        String::from(r#"{"instance_name": "i.instance.default"}"#)
    } else {
        format!(r#"{{"instance_name": "i.instance.default", {inner}"#)
    };
    format!(
        r#"{{"config_namespace": "default", "resources": [
          {{"kind": "instance", "metadata": {{"name": "i"}}, "spec": {{"compiledTemplate": "metric", "params": {{"value": {value}, "dimensions": {dims}}}}}}},
          {{"kind": "handler", "metadata": {{"name": "h"}}, "spec": {{"compiledAdapter": "prometheus", "params": {{"metrics": [{entry}]}}}}}},
          {{"kind": "rule", "metadata": {{"name": "r"}}, "spec": {{"match": {rule_match}, "actions": [{{"handler": "h", "instances": ["i"]}}]}}}}
        ]}}"#
    )
}

/// `json` with its config namespace set to `default`.
pub(crate) fn local(json: &str) -> String {
    json.replacen('{', r#"{"config_namespace": "default", "#, 1)
}

pub(crate) fn bag_with_method() -> MapBag {
    bag(&[("request.method", s("GET"))])
}
