//! One metric's definition, in steps: its value, dimensions and labels, unit and buckets, a
//! constant value's check, then its family (shared by name) and its label tuple class; and the
//! check of all tag names together ([`Builder::check_global_tags`]).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::params::{
    envoy_bounds, envoy_unit, envoy_value, field, is_numeric_type, is_valid_metric_name, EnvoyUnit, MetricInfo,
    MetricKind, MetricOptions, MAX_LABELS,
};
use super::plan::{MetricDef, MetricFamily};
use super::prometheus::{prom_value, safe, DEFAULT_BOUNDS};
use super::stat_name::{check_tag_names, is_valid_label_name};
use crate::config::expressions::compile_field;
use crate::config::{ConfigError, Handler, Instance};
use crate::expr::{Manifest, MapBag, Program, ValueType};
use crate::self_metrics;

/// Builds the plan's families and metric definitions, one (handler, metric entry) at a time.
pub(super) struct Builder<'m> {
    pub(super) manifest: &'m Manifest,
    pub(super) options: &'m MetricOptions,
    pub(super) families: Vec<MetricFamily>,
    pub(super) metrics: Vec<MetricDef>,
    pub(super) dimensions: Vec<Program>,
    pub(super) errors: Vec<ConfigError>,
}

impl Builder<'_> {
    /// Defines the metric of entry `mi` of `handler`'s params fed by `inst`: its value,
    /// dimensions and labels, unit and buckets, then its family and tuple class. `None` when it
    /// failed (the errors are collected).
    #[inline(never)] // configure-time code: see WASM_OPT_FLAGS in the Makefile
    pub(super) fn def(&mut self, handler: &Handler, mi: usize, info: &MetricInfo, inst: &Instance) -> Option<usize> {
        let before = self.errors.len();
        let at = format!("params.metrics[{mi}]");
        let (value, value_src) = self.value(inst)?;
        let value_type = value.result_type();
        let dimensions = self.dimension_sources(inst);
        let histogram = info.kind == MetricKind::Distribution;
        let mut labels = self.labels(handler, info, inst, &at, histogram);
        if self.errors.len() == before {
            self.check_labels_are_dimensions(handler, info, inst, &at, &labels, &dimensions);
        }
        self.order_labels(handler, &at, &mut labels, histogram);
        let dim_programs = self.dimension_programs(inst, &labels, &dimensions);
        let mixer_name = info.mixer_name();
        let unit = self.unit(handler, &at, &mixer_name, value_type)?;
        let envoy_buckets = if histogram { self.buckets(handler, info, &at, &unit) } else { None };
        if value.attributes().is_empty() && is_numeric_type(value_type) {
            self.check_constant_value(inst, info, &value, value_src, &unit, &mixer_name);
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
        let family = self.family(handler, at, family)?;
        let tuple = self.tuple_class(&dim_programs);
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

    /// The value: an expression of a numeric type.
    fn value<'i>(&mut self, inst: &'i Instance) -> Option<(Program, &'i str)> {
        let il = inst.label();
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
        let value = match compile_field(&il, "params.value", value_src, None, self.manifest) {
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
        Some((value, value_src))
    }

    /// The instance's dimensions: label name to expression text.
    fn dimension_sources<'i>(&mut self, inst: &'i Instance) -> BTreeMap<&'i str, &'i str> {
        let il = inst.label();
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
        dimensions
    }

    /// The handler's label names that Prometheus and Envoy can carry, in `label_names` order.
    fn labels<'i>(
        &mut self,
        handler: &Handler,
        info: &'i MetricInfo,
        inst: &Instance,
        at: &str,
        histogram: bool,
    ) -> Vec<&'i str> {
        let hl = handler.label();
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
        labels
    }

    /// Mixer's prometheus adapter failed every sample of a metric whose label names were not
    /// exactly the instance's dimension keys.
    fn check_labels_are_dimensions(
        &mut self,
        handler: &Handler,
        info: &MetricInfo,
        inst: &Instance,
        at: &str,
        labels: &[&str],
        dimensions: &BTreeMap<&str, &str>,
    ) {
        let missing: Vec<&str> = labels.iter().copied().filter(|l| !dimensions.contains_key(l)).collect();
        let extra: Vec<&str> = dimensions.keys().copied().filter(|k| !labels.contains(k)).collect();
        if missing.is_empty() && extra.is_empty() {
            return;
        }
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!("label(s) {} have no dimension", missing.join(", ")));
        }
        if !extra.is_empty() {
            why.push(format!("dimension(s) {} have no label", extra.join(", ")));
        }
        self.errors.push(ConfigError::new(
            handler.label(),
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

    /// At most [`MAX_LABELS`] labels, in an order whose `stats_tags` regexes stay exact: a label
    /// that is a suffix of another comes first.
    fn order_labels(&mut self, handler: &Handler, at: &str, labels: &mut Vec<&str>, histogram: bool) {
        let hl = handler.label();
        if labels.len() > MAX_LABELS {
            self.errors.push(ConfigError::new(
                &hl,
                format!("{at}.label_names"),
                format!("{} labels; at most {MAX_LABELS} are supported", labels.len()),
            ));
        }
        if check_tag_names(labels, histogram).is_err() {
            // A label that is a suffix of another must come first; shorter names first does it.
            crate::sorting::sort_by_key(labels, |l| l.len());
        }
        if let Err(e) = check_tag_names(labels, histogram) {
            self.errors.push(ConfigError::new(&hl, format!("{at}.label_names"), e));
        }
    }

    /// The dimension programs in label order, each expression text compiled once for the plan.
    fn dimension_programs(
        &mut self,
        inst: &Instance,
        labels: &[&str],
        dimensions: &BTreeMap<&str, &str>,
    ) -> Vec<usize> {
        let il = inst.label();
        let manifest = self.manifest;
        let mut dim_programs = Vec::with_capacity(labels.len());
        for l in labels {
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
        dim_programs
    }

    /// The name and unit on Envoy: durations in milliseconds unless `metrics.scaling` says
    /// otherwise.
    fn unit(&mut self, handler: &Handler, at: &str, mixer_name: &str, value_type: ValueType) -> Option<EnvoyUnit> {
        let hl = handler.label();
        if mixer_name.is_empty() {
            self.errors.push(ConfigError::new(
                &hl,
                format!("{at}.name"),
                "the metric name is empty after Mixer's sanitising",
            ));
            return None;
        }
        let unit = match envoy_unit(mixer_name, value_type, self.options.scaling.get(mixer_name)) {
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
        Some(unit)
    }

    /// A distribution's bucket bounds on Envoy (scaled like its values).
    fn buckets(&mut self, handler: &Handler, info: &MetricInfo, at: &str, unit: &EnvoyUnit) -> Option<Vec<f64>> {
        let bounds = match info.buckets.as_ref().map(|b| b.bounds()) {
            None => Ok(DEFAULT_BOUNDS.to_vec()),
            Some(r) => r,
        };
        match bounds.and_then(|b| envoy_bounds(&b, unit.scale)) {
            Ok(b) => Some(b),
            Err(e) => {
                self.errors.push(ConfigError::new(
                    handler.label(),
                    format!("{at}.buckets"),
                    format!("metric {}: {e}", unit.name),
                ));
                None
            }
        }
    }

    /// A constant value is checked now rather than failing (or rounding) on every request.
    fn check_constant_value(
        &mut self,
        inst: &Instance,
        info: &MetricInfo,
        value: &Program,
        value_src: &str,
        unit: &EnvoyUnit,
        mixer_name: &str,
    ) {
        let il = inst.label();
        let what = unit.unit.as_deref().unwrap_or("units");
        match value.evaluate(&MapBag::new(self.manifest)).map_err(|e| e.to_string()).and_then(|v| prom_value(&v)) {
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

    /// The family's index: a new one, or the same name defined before, which must agree.
    fn family(&mut self, handler: &Handler, at: String, family: MetricFamily) -> Option<usize> {
        match self.families.iter().position(|f| f.name == family.name) {
            Some(existing) => {
                let f = self.families.get(existing)?;
                if f.kind != family.kind
                    || f.labels != family.labels
                    || f.envoy_buckets != family.envoy_buckets
                    || f.scale != family.scale
                {
                    self.errors.push(ConfigError::new(
                        handler.label(),
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
                Some(existing)
            }
            None => {
                self.families.push(family);
                Some(self.families.len() - 1)
            }
        }
    }

    /// The label tuple class: that of a metric with the same dimension programs, or a new one.
    fn tuple_class(&self, dim_programs: &[usize]) -> usize {
        match self.metrics.iter().find(|m| m.dimensions == dim_programs) {
            Some(same) => same.tuple,
            None => self.metrics.iter().map(|m| m.tuple + 1).max().unwrap_or(0),
        }
    }

    /// Envoy applies every `stats_tags` regex to every stat name. A tag name that ends another
    /// (`app`, `source_app`) is only safe in a metric that also has the shorter tag, placed
    /// first; in any other metric the shorter tag's regex would match inside the longer one.
    pub(super) fn check_global_tags(&mut self) {
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

    use serde_json::json;

    use crate::expr::Value;
    use crate::telemetry::metrics::test_support::*;

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
}
