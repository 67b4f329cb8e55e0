//! Mixer's report path for metrics, evaluated locally: rules whose actions send `metric`
//! instances to `prometheus` handlers, compiled at configure time into a [`MetricPlan`] that
//! the metrics filter runs once per request (`on_log`).
//!
//! Semantics follow istio/istio 1.5 `mixer/adapter/prometheus` (see
//! `mixer-adapters.md` section 4): naming through `safe()`, label text through
//! `adapter.Stringify`, values through `promValue`. What Mixer only found at runtime (and then
//! lost every sample of the metric) is a configuration error here: an unknown kind, label names
//! that differ from the instance's dimension keys, a constant negative counter increment, a value
//! type that is never a number, an instance with no metric in the handler.
//!
//! On Envoy the values become unsigned integers; see [`super::params`] for the units
//! (durations are recorded in milliseconds by default and the metric name says so).
//!
//! Each metric is a *family* ([`MetricFamily`]): a name, a kind, labels in encoding order and, for
//! distributions, Envoy bucket bounds. The labels travel in the stat name
//! (`tag=.=value;.;...;.;name`, [`super::stat_name`]) and the bootstrap `stats_tags` entries
//! from [`MetricPlan::stats_tags`] turn them back into Prometheus labels;
//! [`MetricPlan::histogram_bucket_settings`] gives the distributions their buckets.
//!
//! Here: the plan and its compilation; one metric's definition in `define`, the
//! per-request recording in [`super::record`], the bootstrap fragment in [`super::stats_config`].

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::define::Builder;
use super::params::{
    parse_prometheus_params, ExpirationPolicy, MetricInfo, MetricKind, MetricOptions, PrometheusParams,
};
use super::record::Scratch;
use crate::config::expressions::compile_match;
use crate::config::registry;
use crate::config::scope::NamespaceScope;
use crate::config::{ConfigError, ConfigErrors, FilterConfig, Handler, Snapshot};
use crate::expr::{AttrId, Manifest, Program};

/// One metric as Envoy and Prometheus see it.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFamily {
    /// The name in `/stats/prometheus` (and, after `wasmcustom.`, in Envoy).
    pub name: String,
    /// Mixer's full name (`<safe(namespace)>_<safe(name)>`); differs from `name` when the unit changed.
    pub mixer_name: String,
    pub kind: MetricKind,
    /// Label names in the order they are encoded (`label_names` order, except that a label that
    /// is a suffix of another is moved before it so the `stats_tags` regexes stay exact).
    pub labels: Vec<String>,
    /// Envoy value = round(Mixer value * scale).
    pub scale: f64,
    /// `milliseconds` for durations (by default), `None` when the unit is the value's own.
    pub unit: Option<String>,
    /// Bucket bounds on Envoy (already scaled), for distributions.
    pub envoy_buckets: Option<Vec<f64>>,
    pub description: String,
    /// Where it is defined, for messages: `handler h.handler.ns params.metrics[i]`.
    pub origin: String,
}

/// One metric instance feeding one family through one handler.
#[derive(Debug)]
pub struct MetricDef {
    /// Index into [`MetricPlan::families`].
    pub family: usize,
    /// The instance's FQN (`doublerequestcount.instance.istio-system`).
    pub instance: String,
    /// The handler's display name.
    pub handler: String,
    pub(super) value: Program,
    /// Indexes into the plan's shared dimension programs, in the family's label order.
    pub(super) dimensions: Vec<usize>,
    /// Its label tuple's class: metrics with the same dimensions, in the same order, have the
    /// same label values in every request (see [`super::record::MetricSink::sample`]).
    pub(super) tuple: usize,
}

impl MetricDef {
    /// Its label tuple's class, `0..`[`MetricPlan::tuple_classes`].
    pub fn tuple(&self) -> usize {
        self.tuple
    }
}

/// A rule with actions to prometheus handlers.
#[derive(Debug)]
pub struct MetricRule {
    /// `name.rule.namespace`.
    pub label: String,
    /// `Some(ns)` when the rule is outside the config namespace and so scoped to `ns`.
    pub scope: Option<String>,
    pub(super) matcher: Option<Program>,
    /// The [`MetricDef`]s each matching request records, in action order.
    pub metrics: Vec<usize>,
}

/// Everything the metrics filter evaluates, compiled at configure time.
#[derive(Debug)]
pub struct MetricPlan {
    pub families: Vec<MetricFamily>,
    pub metrics: Vec<MetricDef>,
    pub rules: Vec<MetricRule>,
    pub options: MetricOptions,
    /// Handlers with a `metrics_expiration_policy` (display name, policy). Stock Envoy 1.40
    /// cannot expire Wasm stats; the filter says so when it loads (see [`MetricPlan::warnings`]).
    pub expiration: Vec<(String, ExpirationPolicy)>,
    /// Things worth a log line at configure time that do not reject the configuration.
    pub warnings: Vec<String>,
    /// Dimension programs, one per distinct expression text.
    pub(super) dimensions: Vec<Program>,
    pub(super) scope: Option<NamespaceScope>,
    pub(super) attributes: Vec<AttrId>,
    pub(super) scratch: RefCell<Scratch>,
}

/// Whether the metrics plan runs the handler (see [`registry::Module`]).
fn is_prometheus(h: &Handler) -> bool {
    registry::module_of(&h.adapter) == Some(registry::Module::Prometheus)
}

impl MetricPlan {
    /// Compiles the metric rules of a configuration. Rules whose actions go only to other
    /// adapters are left out; any error rejects the whole configuration.
    #[inline(never)] // configure-time code: see WASM_OPT_FLAGS in the Makefile
    pub fn compile(config: &FilterConfig, manifest: &Manifest) -> Result<MetricPlan, ConfigErrors> {
        let snap = Snapshot::resolve(&config.resources, &config.default_namespace, &config.config_namespace)?;
        let mut errors = Vec::new();
        let options = MetricOptions::from_json(&config.metrics).unwrap_or_else(|e| {
            errors.push(e);
            MetricOptions::default()
        });
        let mut params: Vec<Option<PrometheusParams>> = vec![None; snap.handlers.len()];
        let mut expiration = Vec::new();
        let mut warnings = Vec::new();
        for (i, h) in snap.handlers.iter().enumerate() {
            if !is_prometheus(h) {
                continue;
            }
            match parse_prometheus_params(&h.params) {
                Ok(p) => {
                    if let Some(e) = p.expiration {
                        expiration.push((h.display_name.clone(), e));
                        warnings.push(format!(
                            "handler {}: metrics_expiration_policy (expire after {}s) cannot be honoured: Envoy 1.40 never removes stats defined by a Wasm filter, so series stay until Envoy restarts (see envoy-config/metrics/README.md, \"Expiry\")",
                            h.display_name,
                            e.expiry_ns / 1_000_000_000
                        ));
                    }
                    if let Some(slot) = params.get_mut(i) {
                        *slot = Some(p);
                    }
                }
                Err(errs) => errors.extend(errs.into_iter().map(|(f, m)| ConfigError::new(h.label(), f, m))),
            }
        }
        let mut b = Builder {
            manifest,
            options: &options,
            families: Vec::new(),
            metrics: Vec::new(),
            dimensions: Vec::new(),
            errors,
        };
        // (handler, metric entry) -> compiled def, or None when it failed (reported once).
        let mut defs: BTreeMap<(usize, usize), Option<usize>> = BTreeMap::new();
        let mut rules = Vec::new();
        for r in &snap.rules {
            let is_prom = |a: &&crate::config::Action| snap.handlers.get(a.handler).is_some_and(is_prometheus);
            if !r.actions.iter().any(|a| is_prom(&a)) {
                continue;
            }
            let matcher = match compile_match(&r.label, &r.match_source, manifest) {
                Ok(m) => m,
                Err(e) => {
                    b.errors.push(e);
                    continue;
                }
            };
            let mut metrics = Vec::new();
            for (ai, a) in r.actions.iter().enumerate() {
                let Some(handler) = snap.handlers.get(a.handler).filter(|h| is_prometheus(h)) else {
                    continue;
                };
                // A handler whose params failed to parse has been reported already.
                let Some(Some(hp)) = params.get(a.handler) else {
                    continue;
                };
                for (ii, &inst_index) in a.instances.iter().enumerate() {
                    let Some(inst) = snap.instances.get(inst_index) else {
                        continue;
                    };
                    let at = format!("actions[{ai}].instances[{ii}]");
                    let accepted = registry::templates_of(&handler.adapter);
                    if !accepted.contains(&inst.template.as_str()) {
                        b.errors.push(ConfigError::new(
                            &r.label,
                            at,
                            format!(
                                "instance {} of template {} cannot be sent to {} handler {} (it takes {} instances)",
                                inst.fqn,
                                inst.template,
                                handler.adapter,
                                handler.display_name,
                                accepted.join(" or ")
                            ),
                        ));
                        continue;
                    }
                    let Some(mi) = hp.metrics.iter().position(|m| m.instance_name == inst.fqn) else {
                        b.errors.push(ConfigError::new(
                            &r.label,
                            at,
                            format!(
                                "could not find metric info from adapter config for {}: handler {} lists no metric with instance_name {} (Mixer dropped every sample at runtime)",
                                inst.fqn, handler.display_name, inst.fqn
                            ),
                        ));
                        continue;
                    };
                    let def = match defs.get(&(a.handler, mi)) {
                        Some(d) => *d,
                        None => {
                            let skipped = |info: &MetricInfo| b.options.skip_metrics.contains(&info.mixer_name());
                            let d = hp
                                .metrics
                                .get(mi)
                                .filter(|info| !skipped(info))
                                .and_then(|info| b.def(handler, mi, info, inst));
                            defs.insert((a.handler, mi), d);
                            d
                        }
                    };
                    if let Some(d) = def {
                        metrics.push(d);
                    }
                }
            }
            if metrics.is_empty() && !b.options.skip_metrics.is_empty() {
                // Every metric it feeds is skipped: evaluating its match would record nothing.
                continue;
            }
            rules.push(MetricRule {
                label: r.label.clone(),
                scope: NamespaceScope::of_rule(&r.namespace, &snap.config_namespace),
                matcher,
                metrics,
            });
        }
        b.check_global_tags();
        let Builder { families, metrics, dimensions, errors, .. } = b;
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        for (i, h) in snap.handlers.iter().enumerate() {
            let Some(Some(hp)) = params.get(i) else {
                continue;
            };
            for (mi, info) in hp.metrics.iter().enumerate() {
                if !defs.contains_key(&(i, mi)) {
                    warnings.push(format!(
                        "handler {}: metric for {} is not used by any rule (no series will appear)",
                        h.display_name, info.instance_name
                    ));
                }
            }
        }
        let scope = if rules.iter().any(|r| r.scope.is_some()) { NamespaceScope::new(manifest) } else { None };
        let mut attributes: Vec<AttrId> = Vec::new();
        for r in &rules {
            attributes.extend(r.matcher.iter().flat_map(|p| p.attributes()));
        }
        for m in &metrics {
            attributes.extend(m.value.attributes());
        }
        for d in &dimensions {
            attributes.extend(d.attributes());
        }
        if let Some(s) = &scope {
            attributes.extend(s.attributes());
        }
        crate::sorting::sort_dedup(&mut attributes);
        Ok(MetricPlan {
            families,
            metrics,
            rules,
            options,
            expiration,
            warnings,
            dimensions,
            scope,
            attributes,
            scratch: RefCell::new(Scratch::default()),
        })
    }

    /// Settles Mixer's namespace scoping for a proxy whose own workload is in `own_namespace`.
    pub fn settle_scope_for_proxy(&mut self, own_namespace: Option<&str>) {
        NamespaceScope::settle_for_proxy(&mut self.scope, own_namespace);
    }

    /// Every attribute a report may read: what a filter needs to be able to fetch.
    pub fn attributes(&self) -> &[AttrId] {
        &self.attributes
    }

    /// Number of label tuple classes ([`MetricDef::tuple`]).
    pub fn tuple_classes(&self) -> usize {
        self.metrics.iter().map(|m| m.tuple + 1).max().unwrap_or(0)
    }

    /// The family a metric def records into.
    pub fn family_of(&self, metric: usize) -> Option<&MetricFamily> {
        self.metrics.get(metric).and_then(|m| self.families.get(m.family))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::telemetry::metrics::test_support::*;

    #[test]
    fn seed_compiles_and_names_like_mixer() {
        let p = plan(SEED).unwrap();
        assert_eq!(p.families.len(), 1);
        let f = &p.families[0];
        assert_eq!(f.name, "istio_double_request_count");
        assert_eq!(f.mixer_name, "istio_double_request_count");
        assert_eq!(f.kind, MetricKind::Counter);
        assert_eq!(f.labels, ["reporter", "source", "destination", "message"]);
        assert_eq!(f.scale, 1.0);
        assert_eq!(f.envoy_buckets, None);
        assert_eq!(p.metrics[0].instance, "doublerequestcount.instance.istio-system");
        assert_eq!(p.metrics[0].handler, "doublehandler.istio-system");
        assert_eq!(p.rules[0].label, "doubleprom.rule.istio-system");
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn skipped_metrics_are_not_produced_and_their_rules_not_run() {
        let doc = SEED.replacen("{", r#"{"metrics": {"skip_metrics": ["istio_double_request_count"]},"#, 1);
        let p = plan(&doc).unwrap();
        assert!(p.families.is_empty(), "{:?}", p.families);
        assert!(p.rules.is_empty(), "a rule feeding only skipped metrics still runs");
        let kept = SEED.replacen("{", r#"{"metrics": {"skip_metrics": ["istio_requests_total"]},"#, 1);
        assert_eq!(plan(&kept).unwrap().families.len(), 1);
    }

    #[test]
    fn seed_attributes_are_announced() {
        let p = plan(SEED).unwrap();
        let m = Manifest::istio();
        let mut names: Vec<&str> = p.attributes().iter().map(|id| m.name(*id)).collect();
        names.sort_unstable();
        assert_eq!(names, ["context.reporter.kind", "destination.workload.name", "source.workload.name"]);
    }

    #[test]
    fn name_defaults_to_the_instance_and_namespace_applies() {
        let p = plan(&one(r#""1""#, "{}", r#"{"kind": "COUNTER"}"#, "null")).unwrap();
        assert_eq!(p.families[0].name, "istio_i_instance_default");
        assert_eq!(p.families[0].description, "i.instance.default");
        let p = plan(&one(r#""1""#, "{}", r#"{"kind": "GAUGE", "namespace": "my-app", "name": "in.flight"}"#, "null"))
            .unwrap();
        assert_eq!(p.families[0].name, "myapp_in_flight");
        assert_eq!(p.families[0].kind, MetricKind::Gauge);
    }

    #[test]
    fn missing_metric_info_and_wrong_template() {
        let e = plan(
            &one(r#""1""#, "{}", r#"{"kind": "COUNTER"}"#, "null")
                .replace(r#""instance_name": "i.instance.default""#, r#""instance_name": "other.instance.default""#),
        )
        .unwrap_err();
        assert!(e.starts_with("r.rule.default: field actions[0].instances[0]: could not find metric info from adapter config for i.instance.default"), "{e}");
        let e = plan(r#"{"resources": [
          {"kind": "instance", "metadata": {"name": "i"}, "spec": {"compiledTemplate": "logentry", "params": {}}},
          {"kind": "handler", "metadata": {"name": "h"}, "spec": {"compiledAdapter": "prometheus", "params": {"metrics": []}}},
          {"kind": "rule", "metadata": {"name": "r"}, "spec": {"actions": [{"handler": "h", "instances": ["i"]}]}}]}"#)
        .unwrap_err();
        assert_eq!(e, "r.rule.default: field actions[0].instances[0]: instance i.instance.default of template logentry cannot be sent to prometheus handler h.default (it takes metric instances)");
    }

    #[test]
    fn other_adapters_are_ignored_and_unused_metrics_warned() {
        let p = plan(r#"{"resources": [
          {"kind": "handler", "metadata": {"name": "d"}, "spec": {"compiledAdapter": "denier"}},
          {"kind": "instance", "metadata": {"name": "c"}, "spec": {"compiledTemplate": "checknothing"}},
          {"kind": "rule", "metadata": {"name": "r"}, "spec": {"actions": [{"handler": "d", "instances": ["c"]}]}},
          {"kind": "handler", "metadata": {"name": "h"}, "spec": {"compiledAdapter": "prometheus", "params": {"metrics": [
             {"instance_name": "x.instance.default", "kind": "COUNTER"}]}}}]}"#)
        .unwrap();
        assert!(p.rules.is_empty());
        assert_eq!(
            p.warnings,
            ["handler h.default: metric for x.instance.default is not used by any rule (no series will appear)"]
        );
    }

    #[test]
    fn expiration_policy_is_accepted_with_a_warning() {
        let cfg = SEED.replace(
            r#""params": {"metrics": ["#,
            r#""params": {"metrics_expiration_policy": {"metrics_expiry_duration": "10m"}, "metrics": ["#,
        );
        let p = plan(&cfg).unwrap();
        assert_eq!(
            p.expiration,
            [(
                String::from("doublehandler.istio-system"),
                ExpirationPolicy { expiry_ns: 600_000_000_000, check_interval_ns: 300_000_000_000 }
            )]
        );
        assert!(p.warnings[0].contains("cannot be honoured"), "{:?}", p.warnings);
    }

    #[test]
    fn errors_are_collected_across_handlers_and_rules() {
        let e = plan(r#"{"metrics": {"max_series_per_metric": 0}, "resources": [
          {"kind": "handler", "metadata": {"name": "h"}, "spec": {"compiledAdapter": "prometheus", "params": {"metrics": [{"instance_name": "x.instance.default"}]}}},
          {"kind": "rule", "metadata": {"name": "r"}, "spec": {"match": "request.size", "actions": [{"handler": "h", "instances": []}]}}]}"#)
        .unwrap_err();
        assert!(e.contains("configuration: field metrics.max_series_per_metric"), "{e}");
        assert!(e.contains("h.handler.default: field params.metrics[0].kind"), "{e}");
        assert!(e.contains("r.rule.default: field match"), "{e}");
    }

    #[test]
    fn legacy_kinds_work() {
        let p = plan(r#"{"resources": [
          {"kind": "metric", "metadata": {"name": "requestcount", "namespace": "istio-system"}, "spec": {"value": "1", "dimensions": {"code": "response.code | 200"}}},
          {"kind": "prometheus", "metadata": {"name": "handler", "namespace": "istio-system"}, "spec": {"metrics": [
             {"name": "requests_total", "instance_name": "requestcount.metric.istio-system", "kind": "COUNTER", "label_names": ["code"]}]}},
          {"kind": "rule", "metadata": {"name": "promhttp", "namespace": "istio-system"}, "spec": {"match": "context.protocol == \"http\"",
             "actions": [{"handler": "handler.prometheus", "instances": ["requestcount.metric"]}]}}]}"#)
        .unwrap();
        assert_eq!(p.families[0].name, "istio_requests_total");
        let c = run(&p, &[("context.protocol", s("http"))]);
        assert_eq!(c.samples, [(0, strings(&["200"]), 1.0, 1)]);
    }
}
