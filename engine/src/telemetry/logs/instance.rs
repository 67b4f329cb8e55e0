//! A `logentry` or `metric` instance sent to a stdio handler, compiled: its fields' programs and
//! its variables' JSON keys, rendered at configure time.

use serde_json::Value as Json;

use super::handler::param;
use crate::config::expressions::compile_field;
use crate::config::ConfigError;
use crate::expr::{Manifest, Program, ValueType};
use crate::json_escape::write_json_string;

/// One map entry of an instance (a logentry variable or a metric dimension), with its JSON
/// keys rendered at configure time.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) name: String,
    /// `,"name":` (JSON mode).
    pub(super) json_key: String,
    /// `"name": ` (console mode; the separator is written by the renderer).
    pub(super) console_key: String,
    pub(super) program: Program,
}

impl Entry {
    pub(super) fn new(name: &str, program: Program) -> Entry {
        let mut quoted = String::with_capacity(name.len() + 2);
        write_json_string(name.as_bytes(), &mut quoted);
        Entry { name: name.to_string(), json_key: format!(",{quoted}:"), console_key: format!("{quoted}: "), program }
    }
}

#[derive(Debug)]
pub(super) enum Template {
    LogEntry {
        severity: Option<Program>,
        timestamp: Option<Program>,
        /// Evaluated only for Mixer's "a failing field drops the instance"; stdio ignores them.
        monitored_resource_type: Option<Program>,
        monitored_resource_dimensions: Vec<(String, Program)>,
    },
    Metric {
        value: Program,
        monitored_resource_type: Option<Program>,
        monitored_resource_dimensions: Vec<(String, Program)>,
    },
}

/// A compiled `logentry` or `metric` instance.
#[derive(Debug)]
pub struct LogInstance {
    /// Mixer's instance name (`newlog.instance.istio-system`): the `"instance"` field.
    pub fqn: String,
    /// `,"instance":"<fqn>"` (JSON mode).
    pub(super) json_instance: String,
    pub(super) template: Template,
    /// Variables (logentry) or dimensions (metric), in ascending byte order of their names.
    pub(super) entries: Vec<Entry>,
}

impl LogInstance {
    /// `logentry` or `metric`.
    pub fn template(&self) -> &'static str {
        match self.template {
            Template::LogEntry { .. } => "logentry",
            Template::Metric { .. } => "metric",
        }
    }

    /// Names of the variables (or dimensions), in output order.
    pub fn entry_names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }
}

impl LogInstance {
    pub(super) fn programs(&self) -> impl Iterator<Item = &Program> {
        let fixed: Vec<&Program> = match &self.template {
            Template::LogEntry { severity, timestamp, monitored_resource_type, monitored_resource_dimensions } => {
                severity
                    .iter()
                    .chain(timestamp.iter())
                    .chain(monitored_resource_type.iter())
                    .chain(monitored_resource_dimensions.iter().map(|(_, p)| p))
                    .collect()
            }
            Template::Metric { value, monitored_resource_type, monitored_resource_dimensions } => {
                std::iter::once(value)
                    .chain(monitored_resource_type.iter())
                    .chain(monitored_resource_dimensions.iter().map(|(_, p)| p))
                    .collect()
            }
        };
        fixed.into_iter().chain(self.entries.iter().map(|e| &e.program))
    }
}

const LOGENTRY_FIELDS: &[&str] = &[
    "variables",
    "severity",
    "timestamp",
    "monitored_resource_type",
    "monitoredResourceType",
    "monitored_resource_dimensions",
    "monitoredResourceDimensions",
    // Accepted for old configurations; the stdio output format is fixed.
    "timestamp_format",
    "timestampFormat",
];

const METRIC_FIELDS: &[&str] = &[
    "value",
    "dimensions",
    "monitored_resource_type",
    "monitoredResourceType",
    "monitored_resource_dimensions",
    "monitoredResourceDimensions",
];

/// An optional scalar field: absent, null or empty text leaves it unset, as in Mixer.
fn optional_field(
    label: &str,
    params: &Json,
    snake: &str,
    camel: &str,
    expected: Option<ValueType>,
    manifest: &Manifest,
    errors: &mut Vec<ConfigError>,
) -> Option<Program> {
    match param(params, snake, camel) {
        None => None,
        Some(Json::String(s)) if s.trim().is_empty() => None,
        Some(Json::String(s)) => match compile_field(label, &format!("params.{snake}"), s, expected, manifest) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        Some(other) => {
            errors.push(ConfigError::new(
                label,
                format!("params.{snake}"),
                format!("must be an expression string, got {}", crate::config::json_text(other)),
            ));
            None
        }
    }
}

/// A map of expressions; each entry must compile (an empty expression is an error, as Mixer's).
fn map_field(
    label: &str,
    params: &Json,
    snake: &str,
    camel: &str,
    manifest: &Manifest,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, Program)> {
    let mut out = Vec::new();
    match param(params, snake, camel) {
        None => {}
        Some(Json::Object(m)) => {
            for (k, v) in m {
                let field = format!("params.{snake}.{k}");
                let Some(src) = v.as_str() else {
                    errors.push(ConfigError::new(
                        label,
                        field,
                        format!("must be an expression string, got {}", crate::config::json_text(v)),
                    ));
                    continue;
                };
                match compile_field(label, &field, src, None, manifest) {
                    Ok(p) => out.push((k.clone(), p)),
                    Err(e) => errors.push(e),
                }
            }
        }
        Some(other) => errors.push(ConfigError::new(
            label,
            format!("params.{snake}"),
            format!("must be a map of name to expression, got {}", crate::config::json_text(other)),
        )),
    }
    // Ascending byte order, as the stdio adapter sorted its fields.
    crate::sorting::sort_by(&mut out, |a, b| a.0.cmp(&b.0));
    out
}

pub(super) fn compile_instance(
    inst: &crate::config::Instance,
    manifest: &Manifest,
) -> Result<LogInstance, Vec<ConfigError>> {
    let label = inst.label();
    let mut errors = Vec::new();
    let params = &inst.params;
    let known: &[&str] = if inst.template == "metric" { METRIC_FIELDS } else { LOGENTRY_FIELDS };
    match params {
        Json::Null => {}
        Json::Object(m) => {
            for k in m.keys() {
                if !known.contains(&k.as_str()) {
                    errors.push(ConfigError::new(
                        &label,
                        format!("params.{k}"),
                        format!("unknown field of the {} template", inst.template),
                    ));
                }
            }
        }
        other => errors.push(ConfigError::new(
            &label,
            "params",
            format!("must be an object, got {}", crate::config::json_text(other)),
        )),
    }
    let monitored_resource_type = optional_field(
        &label,
        params,
        "monitored_resource_type",
        "monitoredResourceType",
        Some(ValueType::String),
        manifest,
        &mut errors,
    );
    let monitored_resource_dimensions = map_field(
        &label,
        params,
        "monitored_resource_dimensions",
        "monitoredResourceDimensions",
        manifest,
        &mut errors,
    );
    let (template, entries) = if inst.template == "metric" {
        let value = optional_field(&label, params, "value", "value", None, manifest, &mut errors);
        let dims = map_field(&label, params, "dimensions", "dimensions", manifest, &mut errors);
        match value {
            Some(value) => {
                (Some(Template::Metric { value, monitored_resource_type, monitored_resource_dimensions }), dims)
            }
            None => {
                if !errors.iter().any(|e| e.field == "params.value") {
                    errors.push(ConfigError::new(&label, "params.value", "a metric instance needs a value expression"));
                }
                (None, dims)
            }
        }
    } else {
        let severity =
            optional_field(&label, params, "severity", "severity", Some(ValueType::String), manifest, &mut errors);
        let timestamp =
            optional_field(&label, params, "timestamp", "timestamp", Some(ValueType::Timestamp), manifest, &mut errors);
        let vars = map_field(&label, params, "variables", "variables", manifest, &mut errors);
        (Some(Template::LogEntry { severity, timestamp, monitored_resource_type, monitored_resource_dimensions }), vars)
    };
    match template {
        Some(template) if errors.is_empty() => {
            let mut json_instance = String::from(",\"instance\":");
            write_json_string(inst.fqn.as_bytes(), &mut json_instance);
            Ok(LogInstance {
                fqn: inst.fqn.clone(),
                json_instance,
                template,
                entries: entries.into_iter().map(|(k, p)| Entry::new(&k, p)).collect(),
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use crate::telemetry::logs::test_support::*;

    #[test]
    fn instance_errors_at_configure_time() {
        let e = plan(&SEED.replace("\"timestamp\": \"request.time\"", "\"timestamp\": \"request.size\"")).unwrap_err();
        assert_eq!(e, "newlog.instance.istio-system: field params.timestamp: instance field type mismatch: expected='TIMESTAMP', actual='INT64', expression='request.size'");
        let e = plan(&SEED.replace("\"\\\"warning\\\"\"", "\"response.code\"")).unwrap_err();
        assert!(e.contains("field params.severity: instance field type mismatch: expected='STRING'"), "{e}");
        let e =
            plan(&SEED.replace("\"user\": \"source.user | \\\"unknown\\\"\"", "\"user\": \"source.usr\"")).unwrap_err();
        assert!(
            e.starts_with(
                "newlog.instance.istio-system: field params.variables.user: position 1: unknown attribute source.usr"
            ),
            "{e}"
        );
        let e = plan(&SEED.replace("\"match\": \"true\"", "\"match\": \"response.code\"")).unwrap_err();
        assert!(e.contains("newlogstdio.rule.istio-system: field match: expression 'response.code' evaluated to type INT64, expected type BOOL"), "{e}");
        // A checknothing instance cannot go to stdio.
        let e = plan(&SEED.replace("\"compiledTemplate\": \"logentry\"", "\"compiledTemplate\": \"checknothing\""))
            .unwrap_err();
        assert!(e.contains("template checknothing cannot be sent to a stdio handler"), "{e}");
        // timestamp_format of old configurations is accepted.
        assert!(plan(
            &SEED.replace("\"severity\": ", "\"timestamp_format\": \"2006-01-02T15:04:05Z07:00\", \"severity\": ")
        )
        .is_ok());
    }
}
