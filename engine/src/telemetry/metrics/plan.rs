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

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Value as Json};

use super::params::{
    envoy_bounds, envoy_unit, envoy_value, field, is_numeric_type, is_valid_metric_name, parse_prometheus_params,
    ExpirationPolicy, MetricInfo, MetricKind, MetricOptions, PrometheusParams, MAX_LABELS,
};
use super::prometheus::{prom_value, safe, DEFAULT_BOUNDS};
use super::stat_name::{check_tag_names, is_valid_label_name, stats_tags_json};
use super::stringify::stringify;
use crate::config::expressions::{compile_field, compile_match};
use crate::config::registry;
use crate::config::scope::NamespaceScope;
use crate::config::{ConfigError, ConfigErrors, FilterConfig, Handler, Instance, Snapshot};
use crate::expr::{AttrId, AttributeBag, Manifest, MapBag, Program};
use crate::self_metrics;

/// The Envoy namespace of every Wasm-defined stat (`stats_handler.h`, `CustomStatNamespace`);
/// `/stats/prometheus` strips it.
pub const WASM_STAT_NAMESPACE: &str = "wasmcustom";

/// Self-metric: samples the filter could not record (see [`crate::self_metrics`]).
pub const DROPPED_METRIC: &str = self_metrics::METRIC_SAMPLES_DROPPED.name;
/// Self-metric: samples sent to the overflow series because the metric hit its series cap.
pub const OVERFLOW_METRIC: &str = self_metrics::METRIC_SERIES_OVERFLOW.name;
/// Self-metric (gauge): distinct series defined so far.
pub const SERIES_METRIC: &str = self_metrics::METRIC_SERIES.name;
/// Self-metric: rules whose match could not be evaluated (so they did not match).
pub const RULE_ERRORS_METRIC: &str = self_metrics::METRIC_RULE_ERRORS.name;

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
    value: Program,
    /// Indexes into the plan's shared dimension programs, in the family's label order.
    dimensions: Vec<usize>,
    /// Its label tuple's class: metrics with the same dimensions, in the same order, have the
    /// same label values in every request (see [`MetricSink::sample`]).
    tuple: usize,
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
    matcher: Option<Program>,
    /// The [`MetricDef`]s each matching request records, in action order.
    pub metrics: Vec<usize>,
}

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
    /// [`MetricPlan::record`], samples of metrics of one [`MetricDef::tuple`] class have the
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
struct Scratch {
    text: String,
    dims: Vec<Dim>,
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
    dimensions: Vec<Program>,
    scope: Option<NamespaceScope>,
    attributes: Vec<AttrId>,
    scratch: RefCell<Scratch>,
}

/// Whether the metrics plan runs the handler (see [`registry::Module`]).
fn is_prometheus(h: &Handler) -> bool {
    registry::module_of(&h.adapter) == Some(registry::Module::Prometheus)
}

struct Builder<'m> {
    manifest: &'m Manifest,
    options: &'m MetricOptions,
    families: Vec<MetricFamily>,
    metrics: Vec<MetricDef>,
    dimensions: Vec<Program>,
    errors: Vec<ConfigError>,
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

    /// Every tag name Envoy must extract: the families' labels, then the self-metrics' tags,
    /// each once.
    pub fn tag_names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let labels = self.families.iter().flat_map(|f| f.labels.iter().map(String::as_str));
        // Every filter's own tags: the bootstrap this feeds serves all of them.
        let own = self_metrics::tag_names().into_iter();
        for t in labels.chain(own) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// Envoy's bootstrap `stats_config.stats_tags` entries, one per tag name.
    pub fn stats_tags(&self) -> Json {
        stats_tags_json(&self.tag_names())
    }

    /// Envoy's bootstrap `stats_config.histogram_bucket_settings`, one per distribution. The
    /// matcher is a regex on the stat name that holds with and without the encoded tags
    /// (`^wasmcustom\.(?:.*;\.;)?<name>$`).
    pub fn histogram_bucket_settings(&self) -> Json {
        Json::Array(
            self.families
                .iter()
                .filter_map(|f| {
                    let buckets = f.envoy_buckets.as_ref()?;
                    Some(json!({
                        "match": {"safe_regex": {"regex": histogram_regex(&f.name)}},
                        "buckets": buckets.iter().map(|b| bound_json(*b)).collect::<Vec<_>>(),
                    }))
                })
                .collect(),
        )
    }

    /// The bootstrap `stats_config` fragment: `stats_tags` and, when there are distributions,
    /// `histogram_bucket_settings`.
    pub fn stats_config(&self) -> Json {
        let mut out = serde_json::Map::new();
        out.insert(String::from("stats_tags"), self.stats_tags());
        let buckets = self.histogram_bucket_settings();
        if buckets.as_array().is_some_and(|b| !b.is_empty()) {
            out.insert(String::from("histogram_bucket_settings"), buckets);
        }
        Json::Object(out)
    }

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

/// The `histogram_bucket_settings` regex for metric `name`.
pub fn histogram_regex(name: &str) -> String {
    format!("^{}\\.(?:.*;\\.;)?{}$", WASM_STAT_NAMESPACE, regex_syntax::escape(name))
}

/// A bound as JSON: whole numbers without a fraction (`5`, not `5.0`).
fn bound_json(b: f64) -> Json {
    if b.fract() == 0.0 && (0.0..9.0e15).contains(&b) {
        // Whole and well inside the exact integer range of f64.
        json!(b as u64)
    } else {
        json!(b)
    }
}

impl Builder<'_> {
    #[inline(never)] // configure-time code: see WASM_OPT_FLAGS in the Makefile
    fn def(&mut self, handler: &Handler, mi: usize, info: &MetricInfo, inst: &Instance) -> Option<usize> {
        let before = self.errors.len();
        let hl = handler.label();
        let il = inst.label();
        let at = format!("params.metrics[{mi}]");
        let manifest = self.manifest;

        // The value.
        let value_src = match field(&inst.params, &["value"]) {
            Some(Json::String(s)) if !s.trim().is_empty() => s.as_str(),
            Some(Json::String(_)) | None => {
                self.errors.push(ConfigError::new(&il, "params.value", "a metric instance needs a value expression"));
                return None;
            }
            Some(other) => {
                self.errors.push(ConfigError::new(
                    &il,
                    "params.value",
                    format!("must be an expression string, got {}", crate::config::json_text(other)),
                ));
                return None;
            }
        };
        let value = match compile_field(&il, "params.value", value_src, None, manifest) {
            Ok(p) => p,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let value_type = value.result_type();
        if !is_numeric_type(value_type) {
            self.errors.push(ConfigError::new(
                &il,
                "params.value",
                format!(
                    "value expression '{value_src}' is of type {value_type}; prometheus records numbers (INT64, DOUBLE, DURATION or a numeric STRING), and Mixer failed every such sample with 'could not extract numeric value'"
                ),
            ));
        }

        // The dimensions and the labels.
        let mut dimensions: BTreeMap<&str, &str> = BTreeMap::new();
        match field(&inst.params, &["dimensions"]) {
            None => {}
            Some(Json::Object(map)) => {
                for (k, v) in map {
                    match v.as_str() {
                        Some(src) => {
                            dimensions.insert(k.as_str(), src);
                        }
                        None => self.errors.push(ConfigError::new(
                            &il,
                            format!("params.dimensions.{k}"),
                            format!("must be an expression string, got {}", crate::config::json_text(v)),
                        )),
                    }
                }
            }
            Some(other) => self.errors.push(ConfigError::new(
                &il,
                "params.dimensions",
                format!("must be a map of expressions, got {}", crate::config::json_text(other)),
            )),
        }
        let histogram = info.kind == MetricKind::Distribution;
        let mut labels: Vec<&str> = Vec::new();
        for (j, l) in info.label_names.iter().enumerate() {
            let f = format!("{at}.label_names[{j}]");
            let sanitised = safe(l);
            if sanitised != *l {
                self.errors.push(ConfigError::new(
                    &hl,
                    f,
                    format!(
                        "label name {l:?} becomes {sanitised:?} in Prometheus (Mixer's safe()), so dimension {l:?} of {} can never fill it and Mixer lost every sample at runtime; use {sanitised:?} as both the label name and the dimension key",
                        inst.fqn
                    ),
                ));
            } else if !is_valid_label_name(l) {
                self.errors.push(ConfigError::new(
                    &hl,
                    f,
                    format!(
                        "{l:?} is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
                    ),
                ));
            } else if labels.contains(&l.as_str()) {
                self.errors.push(ConfigError::new(&hl, f, format!("label {l:?} is listed twice")));
            } else if histogram && l == "le" {
                self.errors.push(ConfigError::new(
                    &hl,
                    f,
                    "a DISTRIBUTION cannot have a label named \"le\" (Prometheus buckets use it)",
                ));
            } else {
                labels.push(l.as_str());
            }
        }
        if self.errors.len() == before {
            let missing: Vec<&str> = labels.iter().copied().filter(|l| !dimensions.contains_key(l)).collect();
            let extra: Vec<&str> = dimensions.keys().copied().filter(|k| !labels.contains(k)).collect();
            if !missing.is_empty() || !extra.is_empty() {
                let mut why = Vec::new();
                if !missing.is_empty() {
                    why.push(format!("label(s) {} have no dimension", missing.join(", ")));
                }
                if !extra.is_empty() {
                    why.push(format!("dimension(s) {} have no label", extra.join(", ")));
                }
                self.errors.push(ConfigError::new(
                    &hl,
                    format!("{at}.label_names"),
                    format!(
                        "label_names [{}] must equal the dimension keys [{}] of instance {}: {}; Mixer's prometheus adapter failed every sample of such a metric at runtime",
                        info.label_names.join(", "),
                        dimensions.keys().copied().collect::<Vec<_>>().join(", "),
                        inst.fqn,
                        why.join("; ")
                    ),
                ));
            }
        }
        if labels.len() > MAX_LABELS {
            self.errors.push(ConfigError::new(
                &hl,
                format!("{at}.label_names"),
                format!("{} labels; at most {MAX_LABELS} are supported", labels.len()),
            ));
        }
        if check_tag_names(&labels, histogram).is_err() {
            // A label that is a suffix of another must come first; shorter names first does it.
            crate::sorting::sort_by_key(&mut labels, |l| l.len());
        }
        if let Err(e) = check_tag_names(&labels, histogram) {
            self.errors.push(ConfigError::new(&hl, format!("{at}.label_names"), e));
        }
        let mut dim_programs = Vec::with_capacity(labels.len());
        for l in &labels {
            let Some(src) = dimensions.get(l) else {
                continue;
            };
            if let Some(existing) = self.dimensions.iter().position(|d| d.source() == *src) {
                dim_programs.push(existing);
                continue;
            }
            match compile_field(&il, &format!("params.dimensions.{l}"), src, None, manifest) {
                Ok(p) => {
                    if p.attributes().is_empty() {
                        if let Err(e) = p.evaluate(&MapBag::new(manifest)) {
                            self.errors.push(ConfigError::new(
                                &il,
                                format!("params.dimensions.{l}"),
                                format!("the expression '{}' always fails: {e}", crate::expr::bounded(src)),
                            ));
                            continue;
                        }
                    }
                    self.dimensions.push(p);
                    dim_programs.push(self.dimensions.len() - 1);
                }
                Err(e) => self.errors.push(e),
            }
        }

        // Name, unit and buckets.
        let mixer_name = info.mixer_name();
        if mixer_name.is_empty() {
            self.errors.push(ConfigError::new(
                &hl,
                format!("{at}.name"),
                "the metric name is empty after Mixer's sanitising",
            ));
            return None;
        }
        let unit = match envoy_unit(&mixer_name, value_type, self.options.scaling.get(&mixer_name)) {
            Ok(u) => u,
            Err(e) => {
                self.errors.push(ConfigError::new("configuration", format!("metrics.scaling.{mixer_name}"), e));
                return None;
            }
        };
        if !is_valid_metric_name(&unit.name) {
            self.errors.push(ConfigError::new(
                &hl,
                format!("{at}.name"),
                format!("{:?} is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)", unit.name),
            ));
        }
        let envoy_buckets = if histogram {
            let bounds = match info.buckets.as_ref().map(|b| b.bounds()) {
                None => Ok(DEFAULT_BOUNDS.to_vec()),
                Some(r) => r,
            };
            match bounds.and_then(|b| envoy_bounds(&b, unit.scale)) {
                Ok(b) => Some(b),
                Err(e) => {
                    self.errors.push(ConfigError::new(
                        &hl,
                        format!("{at}.buckets"),
                        format!("metric {}: {e}", unit.name),
                    ));
                    None
                }
            }
        } else {
            None
        };

        // A constant value is checked now rather than failing (or rounding) on every request.
        if value.attributes().is_empty() && is_numeric_type(value_type) {
            let what = unit.unit.as_deref().unwrap_or("units");
            match value.evaluate(&MapBag::new(manifest)).map_err(|e| e.to_string()).and_then(|v| prom_value(&v)) {
                Err(e) => self.errors.push(ConfigError::new(&il, "params.value", format!("the value expression '{value_src}' always fails: {e}"))),
                Ok(n) if n < 0.0 && info.kind == MetricKind::Counter => self.errors.push(ConfigError::new(
                    &il,
                    "params.value",
                    format!("constant value {n} is negative, but {} is a COUNTER, which only goes up (the Prometheus client panicked on Add({n}) and Mixer lost every sample)", unit.name),
                )),
                Ok(n) => match envoy_value(n, unit.scale) {
                    Err(e) => self.errors.push(ConfigError::new(&il, "params.value", format!("constant value cannot be recorded by Envoy: {e}"))),
                    Ok(u) if ((n * unit.scale) - u as f64).abs() > 1e-9 * (u as f64).max(1.0) => self.errors.push(ConfigError::new(
                        &il,
                        "params.value",
                        format!(
                            "constant value {n} is not a whole number of {what} at scale {}; Envoy stats hold integers, so every sample would record {u}: set metrics.scaling.{mixer_name}",
                            unit.scale
                        ),
                    )),
                    Ok(_) => {}
                },
            }
        }

        if self.errors.len() != before {
            return None;
        }
        let family = MetricFamily {
            name: unit.name,
            mixer_name,
            kind: info.kind,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            scale: unit.scale,
            unit: unit.unit,
            envoy_buckets,
            description: info.description.clone(),
            origin: format!("handler {} {at}", handler.display_name),
        };
        let family = match self.families.iter().position(|f| f.name == family.name) {
            Some(existing) => {
                let f = self.families.get(existing)?;
                if f.kind != family.kind
                    || f.labels != family.labels
                    || f.envoy_buckets != family.envoy_buckets
                    || f.scale != family.scale
                {
                    self.errors.push(ConfigError::new(
                        &hl,
                        at,
                        format!(
                            "metric {} is already defined by {} as {} [{}] (scale {}); a second definition must have the same kind, labels in the same order, scale and buckets",
                            family.name,
                            f.origin,
                            f.kind.name(),
                            f.labels.join(", "),
                            f.scale
                        ),
                    ));
                    return None;
                }
                existing
            }
            None => {
                self.families.push(family);
                self.families.len() - 1
            }
        };
        let tuple = match self.metrics.iter().find(|m| m.dimensions == dim_programs) {
            Some(same) => same.tuple,
            None => self.metrics.iter().map(|m| m.tuple + 1).max().unwrap_or(0),
        };
        self.metrics.push(MetricDef {
            family,
            instance: inst.fqn.clone(),
            handler: handler.display_name.clone(),
            value,
            dimensions: dim_programs,
            tuple,
        });
        Some(self.metrics.len() - 1)
    }

    /// Envoy applies every `stats_tags` regex to every stat name. A tag name that ends another
    /// (`app`, `source_app`) is only safe in a metric that also has the shorter tag, placed
    /// first; in any other metric the shorter tag's regex would match inside the longer one.
    fn check_global_tags(&mut self) {
        let mut all: Vec<(String, Vec<String>, String)> =
            self.families.iter().map(|f| (f.name.clone(), f.labels.clone(), f.origin.clone())).collect();
        for m in self_metrics::TAGGED {
            all.push((
                m.name.to_string(),
                m.tags.iter().map(|t| t.to_string()).collect(),
                String::from("the filters' own metrics"),
            ));
        }
        let names: Vec<&str> = {
            let mut v: Vec<&str> = all.iter().flat_map(|(_, tags, _)| tags.iter().map(String::as_str)).collect();
            crate::sorting::sort_dedup(&mut v);
            v
        };
        for (metric, tags, origin) in &all {
            for (pos, long) in tags.iter().enumerate() {
                for short in &names {
                    if *short == long.as_str() || !long.ends_with(short) {
                        continue;
                    }
                    let safe_here = tags.iter().position(|t| t == short).is_some_and(|p| p < pos);
                    if !safe_here {
                        self.errors.push(ConfigError::new(
                            "configuration",
                            "label names",
                            format!(
                                "label {long:?} of metric {metric} ({origin}) ends with {short:?}, another metric's label: Envoy's stats_tags regex for {short:?} would also match inside {long:?} and add a bogus label; rename one of them"
                            ),
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::borrow::Cow;

    use super::*;
    use crate::expr::{StringMap, Value};

    /// The seed `double-request-count.yaml`, by hand in the JSON `resources` form.
    const SEED: &str = r#"{"resources": [
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
    struct Collect {
        samples: Vec<(usize, Vec<String>, f64, u64)>,
        dropped: Vec<(usize, DropCause, String)>,
        rule_errors: Vec<(usize, String)>,
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

    fn plan(json: &str) -> Result<MetricPlan, String> {
        let config = FilterConfig::parse(json.as_bytes()).map_err(|e| e.to_string())?;
        MetricPlan::compile(&config, Manifest::istio()).map_err(|e| e.to_string())
    }

    fn s(v: &str) -> Value<'static> {
        Value::String(Cow::Owned(v.to_string()))
    }

    fn bag(attrs: &[(&str, Value<'static>)]) -> MapBag {
        let m = Manifest::istio();
        let mut b = MapBag::new(m);
        for (k, v) in attrs {
            b.set(m, k, v.clone()).unwrap();
        }
        b
    }

    fn run(p: &MetricPlan, attrs: &[(&str, Value<'static>)]) -> Collect {
        let mut c = Collect::default();
        p.record(&bag(attrs), &mut c);
        c
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// A one-metric configuration in namespace `default`, which is also the config namespace
    /// (so the rule applies to all traffic): instance `i` (value, dimensions), handler `h` with
    /// `metric` (instance_name filled in), rule `r` with `match`.
    fn one(value: &str, dims: &str, metric: &str, rule_match: &str) -> String {
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
    fn local(json: &str) -> String {
        json.replacen('{', r#"{"config_namespace": "default", "#, 1)
    }

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
    fn skipped_metrics_are_not_produced_and_their_rules_not_run() {
        let doc = SEED.replacen("{", r#"{"metrics": {"skip_metrics": ["istio_double_request_count"]},"#, 1);
        let p = plan(&doc).unwrap();
        assert!(p.families.is_empty(), "{:?}", p.families);
        assert!(p.rules.is_empty(), "a rule feeding only skipped metrics still runs");
        let kept = SEED.replacen("{", r#"{"metrics": {"skip_metrics": ["istio_requests_total"]},"#, 1);
        assert_eq!(plan(&kept).unwrap().families.len(), 1);
    }

    #[test]
    fn seed_stats_config() {
        let p = plan(SEED).unwrap();
        assert_eq!(
            p.tag_names(),
            [
                "reporter",
                "source",
                "destination",
                "message",
                "rule",
                "result",
                "handler",
                "direction",
                "metric",
                "reason",
                "instance"
            ]
        );
        assert_eq!(
            p.stats_config(),
            json!({"stats_tags": [
                {"tag_name": "reporter", "regex": "(reporter=\\.=(.*?);\\.;)"},
                {"tag_name": "source", "regex": "(source=\\.=(.*?);\\.;)"},
                {"tag_name": "destination", "regex": "(destination=\\.=(.*?);\\.;)"},
                {"tag_name": "message", "regex": "(message=\\.=(.*?);\\.;)"},
                {"tag_name": "rule", "regex": "(rule=\\.=(.*?);\\.;)"},
                {"tag_name": "result", "regex": "(result=\\.=(.*?);\\.;)"},
                {"tag_name": "handler", "regex": "(handler=\\.=(.*?);\\.;)"},
                {"tag_name": "direction", "regex": "(direction=\\.=(.*?);\\.;)"},
                {"tag_name": "metric", "regex": "(metric=\\.=(.*?);\\.;)"},
                {"tag_name": "reason", "regex": "(reason=\\.=(.*?);\\.;)"},
                {"tag_name": "instance", "regex": "(instance=\\.=(.*?);\\.;)"}
            ]})
        );
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
    fn label_names_must_equal_dimension_keys() {
        let e = plan(&one(
            r#""1""#,
            r#"{"a": "\"x\"", "c": "\"z\""}"#,
            r#"{"kind": "COUNTER", "label_names": ["a", "b"]}"#,
            "null",
        ))
        .unwrap_err();
        assert_eq!(
            e,
            "h.handler.default: field params.metrics[0].label_names: label_names [a, b] must equal the dimension keys [a, c] of instance i.instance.default: label(s) b have no dimension; dimension(s) c have no label; Mixer's prometheus adapter failed every sample of such a metric at runtime"
        );
        let e = plan(&one(
            r#""1""#,
            r#"{"source-app": "\"x\""}"#,
            r#"{"kind": "COUNTER", "label_names": ["source-app"]}"#,
            "null",
        ))
        .unwrap_err();
        assert!(e.starts_with("h.handler.default: field params.metrics[0].label_names[0]: label name \"source-app\" becomes \"sourceapp\""), "{e}");
        let e = plan(&one(r#""1""#, r#"{"a": "\"x\""}"#, r#"{"kind": "COUNTER", "label_names": ["a", "a"]}"#, "null"))
            .unwrap_err();
        assert!(e.contains("label \"a\" is listed twice"), "{e}");
        let e = plan(&one(
            r#""1""#,
            r#"{"le": "\"x\""}"#,
            r#"{"kind": "DISTRIBUTION", "label_names": ["le"], "buckets": {"explicit_buckets": {"bounds": [1]}}}"#,
            "null",
        ))
        .unwrap_err();
        assert!(e.contains("cannot have a label named \"le\""), "{e}");
        let e = plan(&one(r#""1""#, r#"{"1x": "\"x\""}"#, r#"{"kind": "COUNTER", "label_names": ["1x"]}"#, "null"))
            .unwrap_err();
        assert!(e.contains("not a valid Prometheus label name"), "{e}");
    }

    #[test]
    fn unknown_kind_is_a_configuration_error() {
        let e = plan(&one(r#""1""#, "{}", r#"{"kind": "HISTOGRAM"}"#, "null")).unwrap_err();
        assert_eq!(e, "h.handler.default: field params.metrics[0].kind: unknown metric kind: \"HISTOGRAM\"; use COUNTER, GAUGE or DISTRIBUTION");
        let e = plan(&one(r#""1""#, "{}", "{}", "null")).unwrap_err();
        assert!(e.contains("kind is missing (UNSPECIFIED)"), "{e}");
    }

    #[test]
    fn constant_values_are_checked() {
        // CEXL has no unary minus: a negative constant is a numeric string.
        let e = plan(&one(r#""\"-1\"""#, "{}", r#"{"kind": "COUNTER"}"#, "null")).unwrap_err();
        assert!(e.starts_with("i.instance.default: field params.value: constant value -1 is negative, but istio_i_instance_default is a COUNTER"), "{e}");
        let e = plan(&one(r#""0.5""#, "{}", r#"{"kind": "COUNTER"}"#, "null")).unwrap_err();
        assert!(e.contains("constant value 0.5 is not a whole number of units at scale 1"), "{e}");
        let e = plan(&one(r#""\"abc\"""#, "{}", r#"{"kind": "COUNTER"}"#, "null")).unwrap_err();
        assert!(e.contains("always fails: strconv.ParseFloat: parsing \"abc\": invalid syntax"), "{e}");
        let e = plan(&one(r#""\"-1\"""#, "{}", r#"{"kind": "GAUGE"}"#, "null")).unwrap_err();
        assert!(e.contains("constant value cannot be recorded by Envoy: value -1 is negative"), "{e}");
        // A scale makes a fractional constant whole.
        let cfg = one(r#""0.5""#, "{}", r#"{"kind": "COUNTER", "name": "half"}"#, "null").replacen(
            '{',
            r#"{"metrics": {"scaling": {"istio_half": {"scale": 10, "name": "istio_half_tenths"}}}, "#,
            1,
        );
        let p = plan(&cfg).unwrap();
        assert_eq!(p.families[0].name, "istio_half_tenths");
        assert_eq!(run(&p, &[]).samples[0].3, 5);
        assert!(plan(&one(r#""\"2\"""#, "{}", r#"{"kind": "COUNTER"}"#, "null")).is_ok());
    }

    #[test]
    fn non_numeric_value_types_are_rejected() {
        let e = plan(&one(r#""connection.mtls""#, "{}", r#"{"kind": "GAUGE"}"#, "null")).unwrap_err();
        assert!(
            e.starts_with("i.instance.default: field params.value: value expression 'connection.mtls' is of type BOOL"),
            "{e}"
        );
        let e = plan(&one(r#""request.time""#, "{}", r#"{"kind": "GAUGE"}"#, "null")).unwrap_err();
        assert!(e.contains("of type TIMESTAMP"), "{e}");
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
    fn durations_become_milliseconds() {
        let cfg = one(
            r#""response.duration""#,
            r#"{"response_code": "response.code | 200"}"#,
            r#"{"kind": "DISTRIBUTION", "name": "request_duration_seconds", "label_names": ["response_code"],
                "buckets": {"explicit_buckets": {"bounds": [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]}}}"#,
            "null",
        );
        let p = plan(&cfg).unwrap();
        let f = &p.families[0];
        assert_eq!(f.name, "istio_request_duration_milliseconds");
        assert_eq!(f.mixer_name, "istio_request_duration_seconds");
        assert_eq!(f.unit.as_deref(), Some("milliseconds"));
        assert_eq!(
            f.envoy_buckets.as_deref(),
            Some(&[5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0][..])
        );
        assert_eq!(
            p.histogram_bucket_settings(),
            json!([{"match": {"safe_regex": {"regex": "^wasmcustom\\.(?:.*;\\.;)?istio_request_duration_milliseconds$"}},
                    "buckets": [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]}])
        );
        let c = run(&p, &[("response.duration", Value::Duration(386_400_000)), ("response.code", Value::Int64(404))]);
        assert_eq!(c.samples, [(0, strings(&["404"]), 0.3864, 386)]);
    }

    #[test]
    fn histogram_regex_matches_tagged_and_extracted_names() {
        let re = regex::Regex::new(&histogram_regex("istio_x_milliseconds")).unwrap();
        assert!(re.is_match("wasmcustom.istio_x_milliseconds"));
        assert!(re.is_match("wasmcustom.reporter=.=server;.;code=.=200;.;istio_x_milliseconds"));
        assert!(!re.is_match("wasmcustom.reporter=.=server;.;code=.=200;.;istio_y_istio_x_milliseconds"));
        assert!(!re.is_match("wasmcustom.istio_x_milliseconds_count"));
    }

    #[test]
    fn fractional_buckets_need_a_scale() {
        let metric = r#"{"kind": "DISTRIBUTION", "name": "ratio"}"#;
        let e = plan(&one(r#""0.5""#, "{}", metric, "null")).unwrap_err();
        assert!(e.starts_with("h.handler.default: field params.metrics[0].buckets: metric istio_ratio: bucket bound 0 (0.005) becomes 0.005 at scale 1"), "{e}");
        let cfg = one(r#""request.size | 0""#, "{}", metric, "null").replacen(
            '{',
            r#"{"metrics": {"scaling": {"istio_ratio": {"scale": 1000, "name": "istio_ratio_permille"}}}, "#,
            1,
        );
        let p = plan(&cfg).unwrap();
        assert_eq!(p.families[0].envoy_buckets.as_ref().map(|b| b[0]), Some(5.0));
        let bytes = r#"{"kind": "DISTRIBUTION", "name": "request_bytes", "buckets": {"exponential_buckets": {"num_finite_buckets": 8, "scale": 1, "growth_factor": 10}}}"#;
        let p = plan(&one(r#""request.total_size | 0""#, "{}", bytes, "null")).unwrap();
        assert_eq!(p.families[0].name, "istio_request_bytes");
        assert_eq!(
            p.histogram_bucket_settings()[0]["buckets"],
            json!([1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000])
        );
    }

    #[test]
    fn scaling_for_unknown_metric_is_harmless_but_bad_scaling_is_not() {
        let cfg = one(r#""response.duration""#, "{}", r#"{"kind": "DISTRIBUTION", "name": "d_seconds"}"#, "null")
            .replacen('{', r#"{"metrics": {"scaling": {"istio_d_seconds": {"scale": 60}}}, "#, 1);
        let e = plan(&cfg).unwrap_err();
        assert!(
            e.starts_with("configuration: field metrics.scaling.istio_d_seconds: scale 60 is not a duration unit"),
            "{e}"
        );
        let cfg = one(r#""response.duration""#, "{}", r#"{"kind": "DISTRIBUTION", "name": "d_seconds"}"#, "null")
            .replacen('{', r#"{"metrics": {"scaling": {"istio_d_seconds": {"scale": 1000000}}}, "#, 1);
        assert_eq!(plan(&cfg).unwrap().families[0].name, "istio_d_microseconds");
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
    fn metrics_with_the_same_dimensions_share_a_tuple_class_and_its_labels() {
        let p = plan(&local(
            r#"{"resources": [
          {"kind": "instance", "metadata": {"name": "a"}, "spec": {"compiledTemplate": "metric", "params": {"value": "1", "dimensions": {"ua": "request.useragent | \"-\""}}}},
          {"kind": "instance", "metadata": {"name": "b"}, "spec": {"compiledTemplate": "metric", "params": {"value": "2", "dimensions": {"ua": "request.useragent | \"-\"", "m": "request.method | \"-\""}}}},
          {"kind": "instance", "metadata": {"name": "c"}, "spec": {"compiledTemplate": "metric", "params": {"value": "3", "dimensions": {"agent": "request.useragent | \"-\""}}}},
          {"kind": "handler", "metadata": {"name": "h"}, "spec": {"compiledAdapter": "prometheus", "params": {"metrics": [
             {"name": "a", "instance_name": "a.instance.default", "kind": "COUNTER", "label_names": ["ua"]},
             {"name": "b", "instance_name": "b.instance.default", "kind": "COUNTER", "label_names": ["ua", "m"]},
             {"name": "c", "instance_name": "c.instance.default", "kind": "GAUGE", "label_names": ["agent"]}]}}},
          {"kind": "rule", "metadata": {"name": "r"}, "spec": {"actions": [{"handler": "h", "instances": ["a", "b", "c"]}]}}]}"#,
        ))
        .unwrap();
        let class = |m: usize| p.metrics[m].tuple();
        // `c` names its label differently but takes it from the same dimension as `a`.
        assert_eq!(class(0), class(2));
        assert_ne!(class(0), class(1));
        assert_eq!(p.tuple_classes(), 2);
        for bag in [bag(&[("request.useragent", s("curl"))]), bag_with_method(), bag(&[])] {
            let mut c = Collect::default();
            p.record(&bag, &mut c);
            assert_eq!(c.samples.len(), 3);
            for (m, labels, _, _) in &c.samples {
                for (other, other_labels, _, _) in &c.samples {
                    if class(*m) == class(*other) {
                        assert_eq!(labels, other_labels, "metrics {m} and {other} in one record");
                    }
                }
            }
        }
    }

    fn bag_with_method() -> MapBag {
        bag(&[("request.method", s("GET"))])
    }

    #[test]
    fn a_suffix_label_is_encoded_first() {
        let p = plan(&one(
            r#""1""#,
            r#"{"source_app": "\"a\"", "app": "\"b\""}"#,
            r#"{"kind": "COUNTER", "label_names": ["source_app", "app"]}"#,
            "null",
        ))
        .unwrap();
        assert_eq!(p.families[0].labels, ["app", "source_app"]);
        assert_eq!(run(&p, &[]).samples[0].1, ["b", "a"]);
    }

    #[test]
    fn suffix_labels_across_metrics_are_rejected() {
        let e = plan(&local(r#"{"resources": [
          {"kind": "instance", "metadata": {"name": "a"}, "spec": {"compiledTemplate": "metric", "params": {"value": "1", "dimensions": {"app": "\"x\""}}}},
          {"kind": "instance", "metadata": {"name": "b"}, "spec": {"compiledTemplate": "metric", "params": {"value": "1", "dimensions": {"source_app": "\"y\""}}}},
          {"kind": "handler", "metadata": {"name": "h"}, "spec": {"compiledAdapter": "prometheus", "params": {"metrics": [
             {"name": "a", "instance_name": "a.instance.default", "kind": "COUNTER", "label_names": ["app"]},
             {"name": "b", "instance_name": "b.instance.default", "kind": "COUNTER", "label_names": ["source_app"]}]}}},
          {"kind": "rule", "metadata": {"name": "r"}, "spec": {"actions": [{"handler": "h", "instances": ["a", "b"]}]}}]}"#))
        .unwrap_err();
        assert_eq!(
            e,
            "configuration: field label names: label \"source_app\" of metric istio_b (handler h.default params.metrics[1]) ends with \"app\", another metric's label: Envoy's stats_tags regex for \"app\" would also match inside \"source_app\" and add a bogus label; rename one of them"
        );
        // The self-metrics' tags count too.
        let e = plan(&one(
            r#""1""#,
            r#"{"subrule": "\"x\""}"#,
            r#"{"kind": "COUNTER", "label_names": ["subrule"]}"#,
            "null",
        ))
        .unwrap_err();
        assert!(e.contains("label \"subrule\" of metric istio_i_instance_default"), "{e}");
    }

    #[test]
    fn shared_families_must_agree() {
        let two = |kind2: &str| {
            format!(
                r#"{{"config_namespace": "default", "resources": [
              {{"kind": "instance", "metadata": {{"name": "a"}}, "spec": {{"compiledTemplate": "metric", "params": {{"value": "1", "dimensions": {{"x": "\"1\""}}}}}}}},
              {{"kind": "instance", "metadata": {{"name": "b"}}, "spec": {{"compiledTemplate": "metric", "params": {{"value": "2", "dimensions": {{"x": "\"2\""}}}}}}}},
              {{"kind": "handler", "metadata": {{"name": "h1"}}, "spec": {{"compiledAdapter": "prometheus", "params": {{"metrics": [
                 {{"name": "same", "instance_name": "a.instance.default", "kind": "COUNTER", "label_names": ["x"]}}]}}}}}},
              {{"kind": "handler", "metadata": {{"name": "h2"}}, "spec": {{"compiledAdapter": "prometheus", "params": {{"metrics": [
                 {{"name": "same", "instance_name": "b.instance.default", "kind": "{kind2}", "label_names": ["x"]}}]}}}}}},
              {{"kind": "rule", "metadata": {{"name": "r"}}, "spec": {{"actions": [{{"handler": "h1", "instances": ["a"]}}, {{"handler": "h2", "instances": ["b"]}}]}}}}]}}"#
            )
        };
        let p = plan(&two("COUNTER")).unwrap();
        assert_eq!(p.families.len(), 1);
        assert_eq!(p.metrics.len(), 2);
        let c = run(&p, &[]);
        assert_eq!(c.samples, [(0, strings(&["1"]), 1.0, 1), (1, strings(&["2"]), 2.0, 2)]);
        assert_eq!(p.family_of(1).map(|f| f.name.as_str()), Some("istio_same"));
        let e = plan(&two("GAUGE")).unwrap_err();
        assert!(e.starts_with("h2.handler.default: field params.metrics[0]: metric istio_same is already defined by handler h1.default params.metrics[0] as COUNTER [x]"), "{e}");
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
