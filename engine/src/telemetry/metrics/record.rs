//! One request's report: every matching rule's metrics, each value and dimension evaluated
//! (a dimension shared by several metrics once), stringified into one scratch buffer and handed
//! to the [`MetricSink`].

use std::fmt;

use super::params::{envoy_value, MAX_LABELS};
use super::plan::{MetricPlan, MetricRule};
use super::prometheus::prom_value;
use super::stringify::stringify;
use crate::config::scope::NamespaceScope;
use crate::expr::AttributeBag;
use crate::self_metrics;

/// Self-metric: samples the filter could not record (see [`crate::self_metrics`]).
pub const DROPPED_METRIC: &str = self_metrics::METRIC_SAMPLES_DROPPED.name;
/// Self-metric: samples sent to the overflow series because the metric hit its series cap.
pub const OVERFLOW_METRIC: &str = self_metrics::METRIC_SERIES_OVERFLOW.name;
/// Self-metric (gauge): distinct series defined so far.
pub const SERIES_METRIC: &str = self_metrics::METRIC_SERIES.name;
/// Self-metric: rules whose match could not be evaluated (so they did not match).
pub const RULE_ERRORS_METRIC: &str = self_metrics::METRIC_RULE_ERRORS.name;

/// Why one sample was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropCause {
    /// The value expression failed, or gave no number (`promValue`).
    Value,
    /// A dimension expression failed.
    Dimension,
    /// The number cannot be held by an Envoy stat (negative, not finite, too large).
    Range,
}

impl DropCause {
    /// The `reason` label of [`DROPPED_METRIC`].
    pub fn name(self) -> &'static str {
        match self {
            DropCause::Value => "value",
            DropCause::Dimension => "dimension",
            DropCause::Range => "range",
        }
    }
}

/// Receives what [`MetricPlan::record`] produces; the filter records into Envoy, tests collect.
pub trait MetricSink {
    /// A sample of metric `metric` (index into [`MetricPlan::metrics`]): label values in the
    /// family's label order, Mixer's number, and the integer to give Envoy. Within one
    /// [`MetricPlan::record`], samples of metrics of one [`MetricDef::tuple`](super::plan::MetricDef::tuple) class have the
    /// same label values.
    fn sample(&mut self, metric: usize, labels: &[&str], value: f64, envoy_value: u64);
    /// A sample that was dropped; the other samples of the request still record.
    fn dropped(&mut self, metric: usize, cause: DropCause, detail: &dyn fmt::Display);
    /// A rule whose match could not be evaluated (it does not match, as in Mixer).
    fn rule_error(&mut self, _rule: usize, _detail: &dyn fmt::Display) {}
}

/// One dimension's state during one record: its text is evaluated at most once per request,
/// however many metrics use the same expression (Istio's standard metrics share 25).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dim {
    Pending,
    /// `Scratch::text[start..end]`.
    Text(usize, usize),
    Failed,
}

/// Reused per-record buffers: every evaluated dimension's text, end to end, and each
/// dimension's state.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    text: String,
    dims: Vec<Dim>,
}

impl MetricPlan {
    /// Runs the report for one request: every matching rule's metrics, in order.
    pub fn record(&self, bag: &dyn AttributeBag, sink: &mut dyn MetricSink) {
        match self.scratch.try_borrow_mut() {
            Ok(mut scratch) => self.record_with(bag, &mut scratch, sink),
            // Only reachable through re-entrancy, which a filter never does.
            Err(_) => self.record_with(bag, &mut Scratch::default(), sink),
        }
    }

    fn record_with(&self, bag: &dyn AttributeBag, scratch: &mut Scratch, sink: &mut dyn MetricSink) {
        scratch.text.clear();
        scratch.dims.clear();
        scratch.dims.resize(self.dimensions.len(), Dim::Pending);
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.metrics.is_empty() || !self.applies(rule, bag) {
                continue;
            }
            match rule.matcher.as_ref().map(|m| m.evaluate_bool(bag)) {
                None | Some(Ok(true)) => {}
                Some(Ok(false)) => continue,
                Some(Err(e)) => {
                    sink.rule_error(index, &format_args!("rule {}: match: {e}", rule.label));
                    continue;
                }
            }
            for &m in &rule.metrics {
                self.record_one(m, bag, scratch, sink);
            }
        }
    }

    fn record_one(&self, m: usize, bag: &dyn AttributeBag, scratch: &mut Scratch, sink: &mut dyn MetricSink) {
        let Some(def) = self.metrics.get(m) else {
            return;
        };
        let Some(family) = self.families.get(def.family) else {
            return;
        };
        let number = match def.value.evaluate(bag) {
            Ok(v) => match prom_value(&v) {
                Ok(n) => n,
                Err(e) => {
                    sink.dropped(
                        m,
                        DropCause::Value,
                        &format_args!("could not get value for metric {}: {e}", def.instance),
                    );
                    return;
                }
            },
            Err(e) => {
                sink.dropped(
                    m,
                    DropCause::Value,
                    &format_args!("could not get value for metric {}: {e}", def.instance),
                );
                return;
            }
        };
        let envoy = match envoy_value(number, family.scale) {
            Ok(v) => v,
            Err(e) => {
                sink.dropped(m, DropCause::Range, &format_args!("metric {} ({}): {e}", family.name, def.instance));
                return;
            }
        };
        for (i, &d) in def.dimensions.iter().enumerate() {
            let state = match scratch.dims.get(d).copied() {
                Some(Dim::Pending) => {
                    let state = self.evaluate_dimension(d, bag, &mut scratch.text);
                    if let Some(slot) = scratch.dims.get_mut(d) {
                        *slot = state;
                    }
                    state
                }
                Some(state) => state,
                None => Dim::Failed,
            };
            if state == Dim::Failed {
                // The error path evaluates again, for the message.
                let label = family.labels.get(i).map_or("?", String::as_str);
                match self.dimensions.get(d).and_then(|p| p.evaluate(bag).err()) {
                    Some(e) => sink.dropped(
                        m,
                        DropCause::Dimension,
                        &format_args!("could not get dimension {label} of metric {}: {e}", def.instance),
                    ),
                    None => sink.dropped(
                        m,
                        DropCause::Dimension,
                        &format_args!("could not get dimension {label} of metric {}", def.instance),
                    ),
                }
                return;
            }
        }
        let mut values: [&str; MAX_LABELS] = [""; MAX_LABELS];
        for (slot, &d) in values.iter_mut().zip(&def.dimensions) {
            if let Some(Dim::Text(start, end)) = scratch.dims.get(d) {
                *slot = scratch.text.get(*start..*end).unwrap_or("");
            }
        }
        let n = def.dimensions.len().min(MAX_LABELS);
        sink.sample(m, values.get(..n).unwrap_or(&[]), number, envoy);
    }

    /// Evaluates shared dimension `d` and appends its text to `text`.
    fn evaluate_dimension(&self, d: usize, bag: &dyn AttributeBag, text: &mut String) -> Dim {
        let Some(p) = self.dimensions.get(d) else {
            return Dim::Failed;
        };
        match p.evaluate(bag) {
            Ok(v) => {
                let start = text.len();
                stringify(&v, text);
                Dim::Text(start, text.len())
            }
            Err(_) => Dim::Failed,
        }
    }

    /// Mixer's namespace scoping ([`NamespaceScope`]).
    fn applies(&self, rule: &MetricRule, bag: &dyn AttributeBag) -> bool {
        NamespaceScope::applies(self.scope.as_ref(), rule.scope.as_deref(), bag)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::borrow::Cow;

    use super::*;
    use crate::expr::{AttrId, MapBag, StringMap, Value};
    use crate::telemetry::metrics::test_support::*;

    #[test]
    fn seed_records_both_reporters() {
        let p = plan(SEED).unwrap();
        let c = run(&p, &[("context.reporter.kind", s("inbound")), ("destination.workload.name", s("productpage-v1"))]);
        assert_eq!(c.samples, [(0, strings(&["server", "unknown", "productpage-v1", "twice the fun!"]), 2.0, 2)]);
        let c = run(&p, &[("context.reporter.kind", s("outbound")), ("source.workload.name", s("client-v1"))]);
        assert_eq!(c.samples, [(0, strings(&["client", "client-v1", "unknown", "twice the fun!"]), 2.0, 2)]);
        // No direction at all: Mixer's `| "inbound"` default makes it the server.
        let c = run(&p, &[]);
        assert_eq!(c.samples[0].1[0], "server");
        assert!(c.dropped.is_empty());
    }

    #[test]
    fn failing_value_or_dimension_drops_one_sample() {
        let p = plan(&local(r#"{"resources": [
          {"kind": "instance", "metadata": {"name": "size"}, "spec": {"compiledTemplate": "metric", "params": {"value": "request.size", "dimensions": {"path": "request.path | \"-\""}}}},
          {"kind": "instance", "metadata": {"name": "count"}, "spec": {"compiledTemplate": "metric", "params": {"value": "1", "dimensions": {"ua": "request.useragent"}}}},
          {"kind": "instance", "metadata": {"name": "always"}, "spec": {"compiledTemplate": "metric", "params": {"value": "1", "dimensions": {}}}},
          {"kind": "handler", "metadata": {"name": "h"}, "spec": {"compiledAdapter": "prometheus", "params": {"metrics": [
             {"name": "size", "instance_name": "size.instance.default", "kind": "GAUGE", "label_names": ["path"]},
             {"name": "count", "instance_name": "count.instance.default", "kind": "COUNTER", "label_names": ["ua"]},
             {"name": "always", "instance_name": "always.instance.default", "kind": "COUNTER"}]}}},
          {"kind": "rule", "metadata": {"name": "r"}, "spec": {"actions": [{"handler": "h", "instances": ["size", "count", "always"]}]}}]}"#))
        .unwrap();
        let c = run(&p, &[]);
        assert_eq!(c.samples, [(2, vec![], 1.0, 1)]);
        assert_eq!(c.dropped, [
            (0, DropCause::Value, String::from("could not get value for metric size.instance.default: lookup failed: 'request.size'")),
            (1, DropCause::Dimension, String::from("could not get dimension ua of metric count.instance.default: lookup failed: 'request.useragent'")),
        ]);
        let c = run(&p, &[("request.size", Value::Int64(-5)), ("request.useragent", s("curl"))]);
        assert_eq!(c.samples, [(1, strings(&["curl"]), 1.0, 1), (2, vec![], 1.0, 1)]);
        assert_eq!(c.dropped, [(0, DropCause::Range, String::from("metric istio_size (size.instance.default): value -5 is negative: Envoy stats hold unsigned integers"))]);
        let c =
            run(&p, &[("request.size", Value::Int64(42)), ("request.path", s("/a")), ("request.useragent", s("curl"))]);
        assert_eq!(c.samples[0], (0, strings(&["/a"]), 42.0, 42));
    }

    #[test]
    fn dimensions_are_stringified_like_mixer() {
        let p = plan(&one(
            r#""1""#,
            r#"{"code": "response.code", "latency": "response.duration", "ip": "source.ip", "hdr": "request.headers", "ok": "connection.mtls", "ratio": "1.5"}"#,
            r#"{"kind": "COUNTER", "label_names": ["code", "latency", "ip", "hdr", "ok", "ratio"]}"#,
            "null",
        ))
        .unwrap();
        let headers = Value::StringMap(Cow::Owned(StringMap::from_pairs([("b", "2"), ("a", "1")])));
        let ip = Value::IpAddress(crate::gostd::net_ip::IpBytes::parse("10.0.0.1").unwrap());
        let c = run(
            &p,
            &[
                ("response.code", Value::Int64(200)),
                ("response.duration", Value::Duration(1_494_269)),
                ("source.ip", ip),
                ("request.headers", headers),
                ("connection.mtls", Value::Bool(true)),
            ],
        );
        assert_eq!(c.samples[0].1, ["200", "1.494269ms", "10.0.0.1", "a=1&b=2", "true", "1.5"]);
        // The buffer is reused: a second record gives the same answer.
        let c2 = run(
            &p,
            &[
                ("response.code", Value::Int64(503)),
                ("response.duration", Value::Duration(0)),
                ("source.ip", Value::IpAddress(crate::gostd::net_ip::IpBytes::parse("::1").unwrap())),
                ("request.headers", Value::StringMap(Cow::Owned(StringMap::new()))),
                ("connection.mtls", Value::Bool(false)),
            ],
        );
        assert_eq!(c2.samples[0].1, ["503", "0s", "::1", "", "false", "1.5"]);
    }

    /// A bag that counts lookups, to show shared dimensions are evaluated once per request.
    struct Counting(MapBag, std::cell::Cell<usize>);

    impl AttributeBag for Counting {
        fn get(&self, id: AttrId) -> Option<Value<'_>> {
            self.1.set(self.1.get() + 1);
            self.0.get(id)
        }
    }

    #[test]
    fn identical_dimensions_are_evaluated_once_per_request() {
        let p = plan(&local(
            r#"{"resources": [
          {"kind": "instance", "metadata": {"name": "a"}, "spec": {"compiledTemplate": "metric", "params": {"value": "1", "dimensions": {"ua": "request.useragent | \"-\""}}}},
          {"kind": "instance", "metadata": {"name": "b"}, "spec": {"compiledTemplate": "metric", "params": {"value": "2", "dimensions": {"ua": "request.useragent | \"-\"", "m": "request.method"}}}},
          {"kind": "handler", "metadata": {"name": "h"}, "spec": {"compiledAdapter": "prometheus", "params": {"metrics": [
             {"name": "a", "instance_name": "a.instance.default", "kind": "COUNTER", "label_names": ["ua"]},
             {"name": "b", "instance_name": "b.instance.default", "kind": "COUNTER", "label_names": ["ua", "m"]}]}}},
          {"kind": "rule", "metadata": {"name": "r"}, "spec": {"actions": [{"handler": "h", "instances": ["a", "b", "a"]}]}}]}"#,
        ))
        .unwrap();
        assert_eq!(p.dimensions.len(), 2);
        let bag = Counting(bag(&[("request.useragent", s("curl"))]), std::cell::Cell::new(0));
        let mut c = Collect::default();
        p.record(&bag, &mut c);
        assert_eq!(c.samples, [(0, strings(&["curl"]), 1.0, 1), (0, strings(&["curl"]), 1.0, 1)]);
        assert_eq!(
            c.dropped,
            [(
                1,
                DropCause::Dimension,
                String::from("could not get dimension m of metric b.instance.default: lookup failed: 'request.method'")
            )]
        );
        // useragent once; request.method once, plus once more for the error message.
        assert_eq!(bag.1.get(), 3);
        // The next request starts afresh.
        let mut c = Collect::default();
        p.record(&bag_with_method(), &mut c);
        assert_eq!(c.samples[1], (1, strings(&["-", "GET"]), 2.0, 2));
    }

    #[test]
    fn matches_and_scoping() {
        let p = plan(&one(r#""1""#, "{}", r#"{"kind": "COUNTER"}"#, r#""request.method == \"GET\"""#)).unwrap();
        assert_eq!(run(&p, &[("request.method", s("GET"))]).samples.len(), 1);
        assert_eq!(run(&p, &[("request.method", s("POST"))]).samples.len(), 0);
        let c = run(&p, &[]);
        assert!(c.samples.is_empty());
        assert_eq!(c.rule_errors, [(0, String::from("rule r.rule.default: match: lookup failed: 'request.method'"))]);
        // Rules outside istio-system apply to their namespace's traffic only.
        let p = plan(
            &one(r#""1""#, "{}", r#"{"kind": "COUNTER"}"#, "null")
                .replace(r#""config_namespace": "default""#, r#""config_namespace": "istio-system""#),
        )
        .unwrap();
        assert_eq!(p.rules[0].scope.as_deref(), Some("default"));
        assert_eq!(run(&p, &[("destination.namespace", s("default"))]).samples.len(), 1);
        assert_eq!(run(&p, &[("destination.namespace", s("other"))]).samples.len(), 0);
        assert_eq!(
            run(&p, &[("context.reporter.kind", s("outbound")), ("source.namespace", s("default"))]).samples.len(),
            1
        );
    }
}
