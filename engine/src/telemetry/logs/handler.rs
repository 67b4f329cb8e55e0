//! The `stdio` handler: `adapter.stdio.config.Params` with Mixer's defaults and messages.

use serde_json::Value as Json;

use super::stdio::{Level, SeverityLevels};
use crate::config::ConfigError;

/// `adapter.stdio.config.Params.Stream`: where the stdio adapter wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout,
    Stderr,
    File,
    RotatedFile,
}

impl LogStream {
    /// The proto enum name.
    pub fn name(self) -> &'static str {
        match self {
            LogStream::Stdout => "STDOUT",
            LogStream::Stderr => "STDERR",
            LogStream::File => "FILE",
            LogStream::RotatedFile => "ROTATED_FILE",
        }
    }

    /// FILE or ROTATED_FILE.
    pub fn is_file(self) -> bool {
        matches!(self, LogStream::File | LogStream::RotatedFile)
    }

    /// Parses the config value: the enum name or its number (`0`..`3`).
    pub fn from_config(v: &Json) -> Result<LogStream, String> {
        let found = match v {
            Json::Number(n) => match n.as_i64() {
                Some(0) => Some(LogStream::Stdout),
                Some(1) => Some(LogStream::Stderr),
                Some(2) => Some(LogStream::File),
                Some(3) => Some(LogStream::RotatedFile),
                _ => None,
            },
            Json::String(s) => match s.as_str() {
                "STDOUT" => Some(LogStream::Stdout),
                "STDERR" => Some(LogStream::Stderr),
                "FILE" => Some(LogStream::File),
                "ROTATED_FILE" => Some(LogStream::RotatedFile),
                _ => None,
            },
            _ => None,
        };
        found.ok_or_else(|| {
            format!(
                "invalid log_stream {}: want STDOUT, STDERR, FILE, ROTATED_FILE or 0..3",
                crate::config::json_text(v)
            )
        })
    }
}

/// A compiled `stdio` handler (`adapter.stdio.config.Params` with Mixer's defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct StdioHandler {
    /// `metadata.name`.
    pub name: String,
    pub namespace: String,
    /// Mixer's handler name: `name.namespace` (`kind: handler`) or `name.stdio.namespace`.
    pub display_name: String,
    /// The resource key `name.kind.namespace`.
    pub label: String,
    pub stream: LogStream,
    /// Required for FILE and ROTATED_FILE, absent otherwise.
    pub output_path: Option<String>,
    /// `output_as_json` (default true); false is zap's console format.
    pub json: bool,
    /// Entries below this level are dropped (default INFO).
    pub output_level: Level,
    /// Level of metric lines (default INFO).
    pub metric_level: Level,
    pub severity_levels: SeverityLevels,
}

impl StdioHandler {
    /// True when `reference` names this handler: bare name, `name.namespace`, or the key.
    pub fn is_named(&self, reference: &str) -> bool {
        reference == self.name || reference == self.display_name || reference == self.label
    }
}

/// Reads a params field under its proto (snake_case) or JSON (camelCase) name.
pub(super) fn param<'j>(params: &'j Json, snake: &str, camel: &str) -> Option<&'j Json> {
    params.get(snake).or_else(|| params.get(camel)).filter(|v| !v.is_null())
}

const HANDLER_FIELDS: &[&str] = &[
    "log_stream",
    "logStream",
    "severity_levels",
    "severityLevels",
    "metric_level",
    "metricLevel",
    "output_as_json",
    "outputAsJson",
    "output_level",
    "outputLevel",
    "output_path",
    "outputPath",
    "max_megabytes_before_rotation",
    "maxMegabytesBeforeRotation",
    "max_days_before_rotation",
    "maxDaysBeforeRotation",
    "max_rotated_files",
    "maxRotatedFiles",
];

pub(super) fn compile_handler(h: &crate::config::Handler) -> Result<StdioHandler, Vec<ConfigError>> {
    let label = h.label();
    let mut errors = Vec::new();
    let empty = serde_json::Map::new();
    let params = match &h.params {
        Json::Null => &empty,
        Json::Object(m) => m,
        other => {
            return Err(vec![ConfigError::new(
                &label,
                "params",
                format!("must be an object, got {}", crate::config::json_text(other)),
            )])
        }
    };
    for k in params.keys() {
        if !HANDLER_FIELDS.contains(&k.as_str()) {
            errors.push(ConfigError::new(&label, format!("params.{k}"), "unknown field of the stdio adapter's params"));
        }
    }
    let p = &h.params;
    let level = |snake: &str, camel: &str, errors: &mut Vec<ConfigError>| match param(p, snake, camel) {
        None => Level::Info,
        Some(v) => Level::from_config(v).unwrap_or_else(|e| {
            errors.push(ConfigError::new(&label, format!("params.{snake}"), e));
            Level::Info
        }),
    };
    let output_level = level("output_level", "outputLevel", &mut errors);
    let metric_level = level("metric_level", "metricLevel", &mut errors);
    let stream = match param(p, "log_stream", "logStream") {
        None => LogStream::Stdout,
        Some(v) => LogStream::from_config(v).unwrap_or_else(|e| {
            errors.push(ConfigError::new(&label, "params.log_stream", e));
            LogStream::Stdout
        }),
    };
    let json = match param(p, "output_as_json", "outputAsJson") {
        None => true,
        Some(Json::Bool(b)) => *b,
        Some(other) => {
            errors.push(ConfigError::new(
                &label,
                "params.output_as_json",
                format!("must be true or false, got {}", crate::config::json_text(other)),
            ));
            true
        }
    };
    let output_path = match param(p, "output_path", "outputPath") {
        None => None,
        Some(Json::String(s)) if s.is_empty() => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => {
            errors.push(ConfigError::new(
                &label,
                "params.output_path",
                format!("must be a string, got {}", crate::config::json_text(other)),
            ));
            None
        }
    };
    // Mixer's Validate(): a path exactly for the file streams.
    match (stream.is_file(), &output_path) {
        (true, None) => errors.push(ConfigError::new(
            &label,
            "params.output_path",
            format!("output_path must be specified for log_stream {}", stream.name()),
        )),
        (false, Some(_)) => errors.push(ConfigError::new(
            &label,
            "params.output_path",
            format!("output_path is only valid with log_stream FILE or ROTATED_FILE, not {}", stream.name()),
        )),
        _ => {}
    }
    let severity_levels = match param(p, "severity_levels", "severityLevels") {
        None => SeverityLevels::default(),
        Some(Json::Object(m)) => {
            let mut entries = Vec::with_capacity(m.len());
            for (k, v) in m {
                match Level::from_config(v) {
                    Ok(l) => entries.push((k.clone(), l)),
                    Err(e) => errors.push(ConfigError::new(&label, format!("params.severity_levels.{k}"), e)),
                }
            }
            SeverityLevels::from_entries(entries)
        }
        Some(other) => {
            errors.push(ConfigError::new(
                &label,
                "params.severity_levels",
                format!("must be a map of severity to level, got {}", crate::config::json_text(other)),
            ));
            SeverityLevels::default()
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(StdioHandler {
        name: h.name.clone(),
        namespace: h.namespace.clone(),
        display_name: h.display_name.clone(),
        label,
        stream,
        output_path,
        json,
        output_level,
        metric_level,
        severity_levels,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::LogStream;
    use crate::telemetry::logs::test_support::*;

    #[test]
    fn handler_params_and_errors() {
        let with = |params: &str| {
            plan(&SEED.replace("{\"severity_levels\": {\"warning\": 1}, \"outputAsJson\": true}", params))
        };
        let p = with(r#"{"logStream": "FILE", "outputPath": "/var/log/mixer.log"}"#).unwrap();
        assert_eq!(
            (p.handlers[0].stream, p.handlers[0].output_path.as_deref()),
            (LogStream::File, Some("/var/log/mixer.log"))
        );
        assert_eq!(
            with(r#"{"log_stream": 3, "output_path": "/x"}"#).unwrap().handlers[0].stream,
            LogStream::RotatedFile
        );
        assert_eq!(with(r#"{"log_stream": "STDERR"}"#).unwrap().handlers[0].stream, LogStream::Stderr);
        assert_eq!(
            with(r#"{"log_stream": "FILE"}"#).unwrap_err(),
            "newloghandler.handler.istio-system: field params.output_path: output_path must be specified for log_stream FILE"
        );
        assert!(with(r#"{"output_path": "/x"}"#)
            .unwrap_err()
            .contains("only valid with log_stream FILE or ROTATED_FILE"));
        assert!(with(r#"{"log_stream": "SYSLOG"}"#).unwrap_err().contains("invalid log_stream \"SYSLOG\""));
        assert!(with(r#"{"severity_levels": {"warning": 7}}"#)
            .unwrap_err()
            .contains("field params.severity_levels.warning: invalid stdio level 7"));
        assert!(with(r#"{"outputAsJson": "yes"}"#)
            .unwrap_err()
            .contains("params.output_as_json: must be true or false"));
        assert!(with(r#"{"colour": true}"#).unwrap_err().contains("params.colour: unknown field"));
        // Rotation settings are accepted (Envoy's file logger reopens; logrotate rotates).
        assert!(with(r#"{"log_stream": "ROTATED_FILE", "output_path": "/x", "max_megabytes_before_rotation": 10, "maxRotatedFiles": 3}"#).is_ok());
    }
}
