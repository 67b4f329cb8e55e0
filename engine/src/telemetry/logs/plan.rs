//! Mixer's report path for the stdio adapter, evaluated in the proxy: rules whose actions send
//! `logentry` (or `metric`) instances to `stdio` handlers, compiled once, rendered per request
//! into exactly the lines the stdio adapter wrote (istio/istio 1.5 `mixer/adapter/stdio`,
//! reference `mixer-adapters.md` §5).
//!
//! Rendering streams straight into one caller-owned buffer: variables are sorted and their JSON
//! keys escaped at configure time, each value is encoded as it is evaluated, and an instance
//! whose field fails is cut back out of the buffer (Mixer dropped such instances). Nothing is
//! allocated per request beyond what the attribute bag itself fetches.

use std::fmt;

use serde_json::Value as Json;

use super::stdio::{Level, SeverityLevels};
use super::text::{write_json_value_fast, write_utc_micros};
use super::zap_json::write_json_string;
use crate::attr::base64;
use crate::config::expressions::{compile_field, compile_match};
use crate::config::registry;
use crate::config::scope::NamespaceScope;
use crate::config::{ConfigError, ConfigErrors, FilterConfig, Snapshot};
use crate::expr::{AttrId, AttributeBag, Manifest, Program, Value, ValueType};
use crate::gostd::time::{Timestamp, GO_ZERO};

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

/// Which field of an instance failed, printed as Mixer's error path (`Variables[latency]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldRef<'a> {
    Severity,
    Timestamp,
    MonitoredResourceType,
    MonitoredResourceDimension(&'a str),
    Variable(&'a str),
    Value,
    Dimension(&'a str),
}

impl fmt::Display for FieldRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldRef::Severity => f.write_str("Severity"),
            FieldRef::Timestamp => f.write_str("Timestamp"),
            FieldRef::MonitoredResourceType => f.write_str("MonitoredResourceType"),
            FieldRef::MonitoredResourceDimension(k) => {
                write!(f, "MonitoredResourceDimensions[{k}]")
            }
            FieldRef::Variable(k) => write!(f, "Variables[{k}]"),
            FieldRef::Value => f.write_str("Value"),
            FieldRef::Dimension(k) => write!(f, "Dimensions[{k}]"),
        }
    }
}

/// One map entry of an instance (a logentry variable or a metric dimension), with its JSON
/// keys rendered at configure time.
#[derive(Debug)]
struct Entry {
    name: String,
    /// `,"name":` (JSON mode).
    json_key: String,
    /// `"name": ` (console mode; the separator is written by the renderer).
    console_key: String,
    program: Program,
}

impl Entry {
    fn new(name: &str, program: Program) -> Entry {
        let mut quoted = String::with_capacity(name.len() + 2);
        write_json_string(name.as_bytes(), &mut quoted);
        Entry { name: name.to_string(), json_key: format!(",{quoted}:"), console_key: format!("{quoted}: "), program }
    }
}

#[derive(Debug)]
enum Template {
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
    json_instance: String,
    template: Template,
    /// Variables (logentry) or dimensions (metric), in ascending byte order of their names.
    entries: Vec<Entry>,
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

#[derive(Debug)]
struct LogAction {
    handler: usize,
    instances: Vec<usize>,
}

/// A compiled rule of the report path (only its actions to stdio handlers).
#[derive(Debug)]
pub struct LogRule {
    /// `name.rule.namespace`.
    pub label: String,
    /// `Some(ns)` when the rule is outside the config namespace and so scoped to `ns`.
    pub scope: Option<String>,
    matcher: Option<Program>,
    actions: Vec<LogAction>,
}

/// What a rendered line is, for sinks that need more than its text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LineMeta<'a> {
    /// Index into [`LogPlan::handlers`].
    pub handler: usize,
    /// Index into [`LogPlan::instances`].
    pub instance: usize,
    pub fqn: &'a str,
    pub level: Level,
    /// The line's `time` field.
    pub time: Timestamp,
}

/// Receives what [`LogPlan::render`] produces. Lines come without a trailing newline and never
/// contain one.
pub trait LogSink {
    /// One line for handler `meta.handler`.
    fn line(&mut self, meta: &LineMeta<'_>, line: &str);
    /// A rule's match could not be evaluated: Mixer treats it as false, so nothing is logged.
    fn match_error(&mut self, _rule_index: usize, _rule: &LogRule, _error: &dyn fmt::Display) {}
    /// An instance was dropped because one of its fields could not be evaluated.
    fn instance_error(
        &mut self,
        _instance_index: usize,
        _instance: &LogInstance,
        _field: FieldRef<'_>,
        _error: &dyn fmt::Display,
    ) {
    }
    /// A line was not written because its level is below the handler's `output_level`.
    fn filtered(&mut self, _handler: usize, _instance_index: usize) {}
}

/// Everything the access-log filter evaluates, compiled at configure time.
#[derive(Debug)]
pub struct LogPlan {
    pub rules: Vec<LogRule>,
    pub handlers: Vec<StdioHandler>,
    pub instances: Vec<LogInstance>,
    scope: Option<NamespaceScope>,
    attributes: Vec<AttrId>,
}

impl LogPlan {
    /// Compiles the rules of `config` that send instances to stdio handlers. Rules and handlers
    /// of other adapters are left to the other filters; any error rejects the configuration.
    #[inline(never)] // configure-time code: see WASM_OPT_FLAGS in the Makefile
    pub fn compile(config: &FilterConfig, manifest: &Manifest) -> Result<LogPlan, ConfigErrors> {
        let snap = Snapshot::resolve(&config.resources, &config.default_namespace, &config.config_namespace)?;
        let mut errors = Vec::new();
        let (handlers, handler_index) = snap.compile_handlers(
            |h| registry::module_of(&h.adapter) == Some(registry::Module::Stdio),
            compile_handler,
            &mut errors,
        );
        let mut instances: Vec<LogInstance> = Vec::new();
        let mut instance_index: Vec<Option<usize>> = vec![None; snap.instances.len()];
        let mut rules = Vec::new();
        for r in &snap.rules {
            let mut actions = Vec::new();
            let mut rule_errors = Vec::new();
            for a in &r.actions {
                let Some(handler) = handler_index.get(a.handler).copied().flatten() else {
                    continue;
                };
                let mut list = Vec::new();
                for &si in &a.instances {
                    let Some(inst) = snap.instances.get(si) else {
                        continue;
                    };
                    if let Some(Some(done)) = instance_index.get(si) {
                        list.push(*done);
                        continue;
                    }
                    let accepted = snap.handlers.get(a.handler).map_or(&[][..], |h| registry::templates_of(&h.adapter));
                    if !accepted.contains(&inst.template.as_str()) {
                        rule_errors.push(ConfigError::new(
                            &r.label,
                            "actions",
                            format!(
                                "instance {} of template {} cannot be sent to a stdio handler (use {})",
                                inst.fqn,
                                inst.template,
                                accepted.join(" or ")
                            ),
                        ));
                        continue;
                    }
                    match compile_instance(inst, manifest) {
                        Ok(li) => {
                            if let Some(slot) = instance_index.get_mut(si) {
                                *slot = Some(instances.len());
                            }
                            list.push(instances.len());
                            instances.push(li);
                        }
                        Err(mut e) => {
                            // Compile each failing instance's errors once.
                            if let Some(slot) = instance_index.get_mut(si) {
                                *slot = Some(usize::MAX);
                            }
                            rule_errors.append(&mut e);
                        }
                    }
                }
                actions.push(LogAction { handler, instances: list });
            }
            if actions.is_empty() {
                continue;
            }
            let matcher = match compile_match(&r.label, &r.match_source, manifest) {
                Ok(m) => m,
                Err(e) => {
                    rule_errors.push(e);
                    None
                }
            };
            if !rule_errors.is_empty() {
                errors.append(&mut rule_errors);
                continue;
            }
            rules.push(LogRule {
                label: r.label.clone(),
                scope: NamespaceScope::of_rule(&r.namespace, &snap.config_namespace),
                matcher,
                actions,
            });
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let scope = if rules.iter().any(|r| r.scope.is_some()) { NamespaceScope::new(manifest) } else { None };
        let mut attributes: Vec<AttrId> = Vec::new();
        for r in &rules {
            attributes.extend(r.matcher.iter().flat_map(|p| p.attributes()));
        }
        for i in &instances {
            for p in i.programs() {
                attributes.extend(p.attributes());
            }
        }
        if let Some(s) = &scope {
            attributes.extend(s.attributes());
        }
        crate::sorting::sort_dedup(&mut attributes);
        Ok(LogPlan { rules, handlers, instances, scope, attributes })
    }

    /// Settles Mixer's namespace scoping for a proxy whose own workload is in `own_namespace`.
    pub fn settle_scope_for_proxy(&mut self, own_namespace: Option<&str>) {
        NamespaceScope::settle_for_proxy(&mut self.scope, own_namespace);
    }

    /// Every attribute rendering may read: what a filter needs to be able to fetch.
    pub fn attributes(&self) -> &[AttrId] {
        &self.attributes
    }

    /// True when no rule sends anything to a stdio handler.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Renders every line of one request: for each rule that applies and matches, for each of
    /// its actions, one line per instance, in configuration order. `out` is scratch space
    /// (cleared per line, its capacity kept); each finished line is handed to `sink`. `now_ns`
    /// is the wall clock, the `time` of metric lines.
    pub fn render<S>(&self, bag: &dyn AttributeBag, now_ns: i64, out: &mut String, sink: &mut S)
    where
        S: LogSink + ?Sized,
    {
        for (rule_index, rule) in self.rules.iter().enumerate() {
            if !self.applies(rule, bag) {
                continue;
            }
            match rule.matcher.as_ref().map(|m| m.evaluate_bool(bag)) {
                None | Some(Ok(true)) => {}
                Some(Ok(false)) => continue,
                Some(Err(e)) => {
                    sink.match_error(rule_index, rule, &e);
                    continue;
                }
            }
            for action in &rule.actions {
                let Some(handler) = self.handlers.get(action.handler) else {
                    continue;
                };
                for &ii in &action.instances {
                    let Some(instance) = self.instances.get(ii) else {
                        continue;
                    };
                    out.clear();
                    match render_instance(instance, handler, bag, now_ns, out) {
                        Ok(Some((level, time))) => {
                            let meta =
                                LineMeta { handler: action.handler, instance: ii, fqn: &instance.fqn, level, time };
                            sink.line(&meta, out);
                        }
                        Ok(None) => sink.filtered(action.handler, ii),
                        Err((field, e)) => {
                            out.clear();
                            sink.instance_error(ii, instance, field, &e);
                        }
                    }
                }
            }
        }
        out.clear();
    }

    /// Mixer's namespace scoping: a rule outside the config namespace applies only when the
    /// request's identity namespace (destination's for inbound, source's for outbound) is its own.
    fn applies(&self, rule: &LogRule, bag: &dyn AttributeBag) -> bool {
        NamespaceScope::applies(self.scope.as_ref(), rule.scope.as_deref(), bag)
    }
}

impl LogInstance {
    fn programs(&self) -> impl Iterator<Item = &Program> {
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

type FieldError<'a> = (FieldRef<'a>, crate::expr::EvalError<'a>);

/// Evaluates the fields that stdio ignores but Mixer still built (a failure drops the instance).
fn check_monitored<'a>(
    kind: &'a Option<Program>,
    dims: &'a [(String, Program)],
    bag: &'a dyn AttributeBag,
) -> Result<(), FieldError<'a>> {
    if let Some(p) = kind {
        p.evaluate(bag).map_err(|e| (FieldRef::MonitoredResourceType, e))?;
    }
    for (k, p) in dims {
        p.evaluate(bag).map_err(|e| (FieldRef::MonitoredResourceDimension(k), e))?;
    }
    Ok(())
}

/// Renders one instance for one handler into `out`. `Ok(None)`: below `output_level`.
fn render_instance<'a>(
    instance: &'a LogInstance,
    handler: &StdioHandler,
    bag: &'a dyn AttributeBag,
    now_ns: i64,
    out: &mut String,
) -> Result<Option<(Level, Timestamp)>, FieldError<'a>> {
    let (level, time, first) = match &instance.template {
        Template::LogEntry { severity, timestamp, monitored_resource_type, monitored_resource_dimensions } => {
            let level = match severity {
                None => handler.severity_levels.level_for(""),
                Some(p) => {
                    let v = p.evaluate(bag).map_err(|e| (FieldRef::Severity, e))?;
                    handler.severity_levels.level_for(v.as_str().unwrap_or(""))
                }
            };
            let time = match timestamp {
                None => GO_ZERO,
                Some(p) => match p.evaluate(bag).map_err(|e| (FieldRef::Timestamp, e))? {
                    Value::Timestamp(t) => t,
                    _ => GO_ZERO,
                },
            };
            if level < handler.output_level {
                return Ok(None);
            }
            check_monitored(monitored_resource_type, monitored_resource_dimensions, bag)?;
            (level, time, None)
        }
        Template::Metric { value, monitored_resource_type, monitored_resource_dimensions } => {
            let level = handler.metric_level;
            if level < handler.output_level {
                return Ok(None);
            }
            let v = value.evaluate(bag).map_err(|e| (FieldRef::Value, e))?;
            check_monitored(monitored_resource_type, monitored_resource_dimensions, bag)?;
            (level, Timestamp::from_unix_nanos(now_ns), Some(v))
        }
    };
    let metric = first.is_some();
    if handler.json {
        out.push_str("{\"level\":\"");
        out.push_str(level.name());
        out.push_str("\",\"time\":\"");
        write_utc_micros(&time, out);
        out.push('"');
        out.push_str(&instance.json_instance);
        if let Some(v) = &first {
            out.push_str(",\"value\":");
            write_value(v, metric, out);
        }
        for entry in &instance.entries {
            let v = entry.program.evaluate(bag).map_err(|e| (field_of(metric, &entry.name), e))?;
            out.push_str(&entry.json_key);
            write_value(&v, metric, out);
        }
        out.push('}');
    } else {
        write_utc_micros(&time, out);
        out.push('\t');
        out.push_str(level.name());
        out.push('\t');
        out.push_str(&instance.fqn);
        if first.is_none() && instance.entries.is_empty() {
            return Ok(Some((level, time)));
        }
        out.push_str("\t{");
        let mut separator = false;
        if let Some(v) = &first {
            out.push_str("\"value\": ");
            write_value(v, metric, out);
            separator = true;
        }
        for entry in &instance.entries {
            let v = entry.program.evaluate(bag).map_err(|e| (field_of(metric, &entry.name), e))?;
            if separator {
                out.push_str(", ");
            }
            separator = true;
            out.push_str(&entry.console_key);
            write_value(&v, metric, out);
        }
        out.push('}');
    }
    Ok(Some((level, time)))
}

fn field_of(metric: bool, name: &str) -> FieldRef<'_> {
    if metric {
        FieldRef::Dimension(name)
    } else {
        FieldRef::Variable(name)
    }
}

/// zap's encoding, except that metric lines got no IP conversion: the address bytes come out
/// base64, as Go's `[]byte` did (reference §5.3, code-derived).
fn write_value(v: &Value<'_>, metric: bool, out: &mut String) {
    match v {
        Value::IpAddress(ip) if metric => {
            out.push('"');
            out.push_str(&base64::encode(ip.as_bytes()));
            out.push('"');
        }
        _ => write_json_value_fast(v, out),
    }
}

/// Reads a params field under its proto (snake_case) or JSON (camelCase) name.
fn param<'j>(params: &'j Json, snake: &str, camel: &str) -> Option<&'j Json> {
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

fn compile_handler(h: &crate::config::Handler) -> Result<StdioHandler, Vec<ConfigError>> {
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

fn compile_instance(inst: &crate::config::Instance, manifest: &Manifest) -> Result<LogInstance, Vec<ConfigError>> {
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
    use std::borrow::Cow;

    use super::*;
    use crate::expr::{MapBag, StringMap};
    use crate::gostd::net_ip::IpBytes;
    use crate::telemetry::logs::stdio::{render_console_line, render_json_line};

    /// Collects everything a render produced.
    #[derive(Default)]
    struct Collect {
        lines: Vec<(usize, Level, String)>,
        match_errors: Vec<(String, String)>,
        instance_errors: Vec<(String, String, String)>,
        filtered: usize,
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

    /// The templates a stdio handler takes come from the registry.
    #[test]
    fn a_wrong_template_names_what_stdio_takes() {
        let e = plan(&SEED.replace("\"compiledTemplate\": \"logentry\"", "\"compiledTemplate\": \"listentry\""))
            .unwrap_err();
        assert!(e.contains("instance newlog.instance.istio-system of template listentry cannot be sent to a stdio handler (use logentry or metric)"), "{e}");
    }

    fn plan(json: &str) -> Result<LogPlan, String> {
        let config = FilterConfig::parse(json.as_bytes()).map_err(|e| e.to_string())?;
        LogPlan::compile(&config, Manifest::istio()).map_err(|e| e.to_string())
    }

    fn s(v: &str) -> Value<'static> {
        Value::String(Cow::Owned(v.to_string()))
    }

    fn labels(pairs: &[(&str, &str)]) -> Value<'static> {
        Value::StringMap(Cow::Owned(StringMap::from_pairs(pairs.iter().copied())))
    }

    fn bag(attrs: &[(&str, Value<'static>)]) -> MapBag {
        let m = Manifest::istio();
        let mut b = MapBag::new(m);
        for (n, v) in attrs {
            b.set(m, n, v.clone()).unwrap();
        }
        b
    }

    fn render(p: &LogPlan, attrs: &[(&str, Value<'static>)]) -> Collect {
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
    const SEED_TIME_NS: i64 = 1_576_514_753_950_607_123;

    fn seed_request() -> Vec<(&'static str, Value<'static>)> {
        vec![
            ("request.time", Value::Timestamp(Timestamp::from_unix_nanos(SEED_TIME_NS))),
            ("source.labels", labels(&[("app", "reviews"), ("version", "v3")])),
            ("destination.labels", labels(&[("app", "ratings")])),
            ("response.code", Value::Int64(200)),
            ("response.size", Value::Int64(48)),
            ("response.duration", Value::Duration(1_494_269)),
        ]
    }

    const SEED_LINE: &str = r#"{"level":"warn","time":"2019-12-16T16:45:53.950607Z","instance":"newlog.instance.istio-system","destination":"ratings","latency":"1.494269ms","responseCode":200,"responseSize":48,"source":"reviews","user":"unknown"}"#;

    #[test]
    fn seed_scenario_line_byte_for_byte() {
        let p = plan(SEED).unwrap();
        assert_eq!(p.handlers.len(), 1);
        assert_eq!(p.handlers[0].display_name, "newloghandler.istio-system");
        assert_eq!(p.handlers[0].stream, LogStream::Stdout);
        assert!(p.handlers[0].json);
        assert_eq!(p.instances[0].fqn, "newlog.instance.istio-system");
        let c = render(&p, &seed_request());
        assert_eq!(c.lines, [(0, Level::Warn, SEED_LINE.to_string())]);
        assert!(c.instance_errors.is_empty() && c.match_errors.is_empty());
    }

    #[test]
    fn seed_fallbacks_without_identity() {
        let p = plan(SEED).unwrap();
        // No peer, no local identity, no response yet: every `|` default applies.
        let c = render(&p, &[("request.time", Value::Timestamp(Timestamp::from_unix_nanos(SEED_TIME_NS)))]);
        assert_eq!(
            c.lines[0].2,
            r#"{"level":"warn","time":"2019-12-16T16:45:53.950607Z","instance":"newlog.instance.istio-system","destination":"unknown","latency":"0s","responseCode":0,"responseSize":0,"source":"unknown","user":"unknown"}"#
        );
        // Workload names are the second choice.
        let c = render(
            &p,
            &[
                ("request.time", Value::Timestamp(Timestamp::from_unix_nanos(SEED_TIME_NS))),
                ("source.workload.name", s("reviews-v3")),
                ("destination.workload.name", s("ratings-v1")),
                ("source.user", s("cluster.local/ns/default/sa/bookinfo-reviews")),
            ],
        );
        assert!(c.lines[0].2.contains(r#""destination":"ratings-v1""#), "{}", c.lines[0].2);
        assert!(
            c.lines[0].2.contains(r#""source":"reviews-v3","user":"cluster.local/ns/default/sa/bookinfo-reviews"}"#),
            "{}",
            c.lines[0].2
        );
    }

    #[test]
    fn timestamp_error_drops_the_instance() {
        let p = plan(SEED).unwrap();
        let c = render(&p, &[]);
        assert!(c.lines.is_empty());
        assert_eq!(
            c.instance_errors,
            [(
                "newlog.instance.istio-system".to_string(),
                "Timestamp".to_string(),
                "lookup failed: 'request.time'".to_string()
            )]
        );
    }

    #[test]
    fn agrees_with_the_reference_encoders_in_both_modes() {
        let config = |json: bool| {
            SEED.replace("\"outputAsJson\": true", &format!("\"outputAsJson\": {json}"))
                .replace("\"latency\": \"response.duration | \\\"0ms\\\"\"", "\"latency\": \"response.duration | \\\"0ms\\\"\", \"ip\": \"source.ip\", \"hdrs\": \"request.headers\", \"ok\": \"connection.mtls\", \"t\": \"request.time\"")
        };
        let mut attrs = seed_request();
        attrs.push(("source.ip", Value::IpAddress(IpBytes::from_v4([10, 1, 2, 3]))));
        attrs.push(("request.headers", labels(&[("x-b", "2\n"), ("x-a", "\"1\"")])));
        attrs.push(("connection.mtls", Value::Bool(false)));
        let t = Timestamp::from_unix_nanos(SEED_TIME_NS);
        let vars: Vec<(&str, Value<'_>)> = vec![
            ("destination", s("ratings")),
            ("hdrs", labels(&[("x-b", "2\n"), ("x-a", "\"1\"")])),
            ("ip", Value::IpAddress(IpBytes::from_v4([10, 1, 2, 3]))),
            ("latency", Value::Duration(1_494_269)),
            ("ok", Value::Bool(false)),
            ("responseCode", Value::Int64(200)),
            ("responseSize", Value::Int64(48)),
            ("source", s("reviews")),
            ("t", Value::Timestamp(t)),
            ("user", s("unknown")),
        ];
        for json in [true, false] {
            let p = plan(&config(json)).unwrap();
            let c = render(&p, &attrs);
            let mut want = String::new();
            if json {
                render_json_line(Level::Warn, &t, "newlog.instance.istio-system", &vars, &mut want);
            } else {
                render_console_line(Level::Warn, &t, "newlog.instance.istio-system", &vars, &mut want);
            }
            assert_eq!(c.lines[0].2, want, "json={json}");
        }
        let p = plan(&config(false)).unwrap();
        let c = render(&p, &attrs);
        assert!(c.lines[0].2.starts_with("2019-12-16T16:45:53.950607Z\twarn\tnewlog.instance.istio-system\t{\"destination\": \"ratings\", \"hdrs\": {\"x-a\":\"\\\"1\\\"\",\"x-b\":\"2\\n\"}, \"ip\": \"10.1.2.3\", "), "{}", c.lines[0].2);
    }

    /// The line of Mixer's `stdio_test.go`, rendered from expressions (reference §5.2).
    #[test]
    fn stdio_test_go_line_from_expressions() {
        let p = plan(r#"{"resources": [
          {"kind": "instance", "metadata": {"name": "Foo", "namespace": "istio-system"}, "spec": {"compiledTemplate": "logentry", "params": {
            "severity": "\"warning\"",
            "variables": {
              "Bool": "true", "Bytes": "\"Yg==\"", "DNSName": "dnsName(\"foo.bar.com\")", "Double": "1.23",
              "Duration": "\"1s\"", "EmailAddr": "email(\"foo@bar.com\")", "IPAddress": "ip(\"1.0.0.127\")",
              "Int64": "123", "String": "\"a string\"", "StringMap": "request.headers",
              "Time": "timestamp(\"2017-08-21T10:04:00Z\")", "URL": "uri(\"http://foo.com\")"}}}},
          {"kind": "handler", "metadata": {"name": "h", "namespace": "istio-system"}, "spec": {"compiledAdapter": "stdio"}},
          {"kind": "rule", "metadata": {"name": "r", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "h", "instances": ["Foo"]}]}}
        ]}"#)
        .unwrap();
        let c = render(&p, &[("request.headers", labels(&[("C", "D"), ("A", "B")]))]);
        // `"Duration": "\"1s\""` is a STRING in CEXL (Mixer's test built a real duration), so
        // it prints as the same text either way.
        assert_eq!(
            c.lines[0].2,
            r#"{"level":"warn","time":"0001-01-01T00:00:00.000000Z","instance":"Foo.instance.istio-system","Bool":true,"Bytes":"Yg==","DNSName":"foo.bar.com","Double":1.23,"Duration":"1s","EmailAddr":"foo@bar.com","IPAddress":"1.0.0.127","Int64":123,"String":"a string","StringMap":{"A":"B","C":"D"},"Time":"2017-08-21T10:04:00.000000Z","URL":"http://foo.com"}"#
        );
    }

    /// The istio.io collecting-logs task line (reference §5.2).
    #[test]
    fn istio_io_task_line() {
        let p = plan(SEED).unwrap();
        let c = render(
            &p,
            &[
                ("request.time", Value::Timestamp(Timestamp::from_unix_nanos(1_537_044_396_009_801_999))),
                ("source.labels", labels(&[("app", "productpage")])),
                ("destination.labels", labels(&[("app", "details")])),
                ("response.code", Value::Int64(200)),
                ("response.size", Value::Int64(178)),
                ("response.duration", Value::Duration(13_601_485)),
            ],
        );
        assert_eq!(
            c.lines[0].2,
            r#"{"level":"warn","time":"2018-09-15T20:46:36.009801Z","instance":"newlog.instance.istio-system","destination":"details","latency":"13.601485ms","responseCode":200,"responseSize":178,"source":"productpage","user":"unknown"}"#
        );
    }

    #[test]
    fn go_duration_text_at_every_unit_boundary() {
        let p = plan(SEED).unwrap();
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_000, "1\u{b5}s"),
            (1_500, "1.5\u{b5}s"),
            (999_999, "999.999\u{b5}s"),
            (1_000_000, "1ms"),
            (1_494_269, "1.494269ms"),
            (999_999_999, "999.999999ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (59_999_999_999, "59.999999999s"),
            (60_000_000_000, "1m0s"),
            (90_000_000_000, "1m30s"),
            (3_599_999_999_999, "59m59.999999999s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_600_500_000_000, "1h0m0.5s"),
            (7_200_000_000_000, "2h0m0s"),
            (-1_500_000, "-1.5ms"),
            (i64::MAX, "2562047h47m16.854775807s"),
        ];
        for (nanos, text) in cases {
            let mut attrs = seed_request();
            attrs.retain(|(n, _)| *n != "response.duration");
            attrs.push(("response.duration", Value::Duration(*nanos)));
            let c = render(&p, &attrs);
            assert!(c.lines[0].2.contains(&format!("\"latency\":\"{text}\"")), "{nanos}: {}", c.lines[0].2);
        }
    }

    #[test]
    fn timestamps_are_truncated_to_microseconds_in_utc() {
        let p = plan(SEED).unwrap();
        for (nanos, text) in [
            (1_576_514_753_950_607_999, "2019-12-16T16:45:53.950607Z"),
            (1_576_514_753_000_000_999, "2019-12-16T16:45:53.000000Z"),
            (0, "1970-01-01T00:00:00.000000Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
        ] {
            let mut attrs = seed_request();
            attrs[0] = ("request.time", Value::Timestamp(Timestamp::from_unix_nanos(nanos)));
            let c = render(&p, &attrs);
            assert!(
                c.lines[0].2.starts_with(&format!("{{\"level\":\"warn\",\"time\":\"{text}\",")),
                "{}",
                c.lines[0].2
            );
        }
        // A zone offset is converted to UTC.
        let p = plan(&SEED.replace(
            "\"timestamp\": \"request.time\"",
            "\"timestamp\": \"timestamp(\\\"2019-12-16T17:45:53.5+01:00\\\")\"",
        ))
        .unwrap();
        let c = render(&p, &seed_request());
        assert!(c.lines[0].2.contains("\"time\":\"2019-12-16T16:45:53.500000Z\""), "{}", c.lines[0].2);
    }

    #[test]
    fn strings_and_escapes() {
        let p = plan(&SEED.replace(
            "\"user\": \"source.user | \\\"unknown\\\"\"",
            "\"user\": \"request.headers[\\\"x-user\\\"] | \\\"unknown\\\"\"",
        ))
        .unwrap();
        let mut attrs = seed_request();
        attrs.push(("request.headers", labels(&[("x-user", "a\"b\\c\n\t\u{1}\u{7f}é\u{2028}\u{fffd}")])));
        let c = render(&p, &attrs);
        assert!(
            c.lines[0].2.ends_with("\"user\":\"a\\\"b\\\\c\\n\\t\\u0001\u{7f}é\u{2028}\u{fffd}\"}"),
            "{}",
            c.lines[0].2
        );
    }

    #[test]
    fn doubles_nan_and_infinities() {
        let p = plan(&SEED.replace(
            "\"responseSize\": \"response.size | 0\"",
            "\"responseSize\": \"response.size | 0\", \"d\": \"1.25\", \"big\": \"1e21\"",
        ))
        .unwrap();
        let c = render(&p, &seed_request());
        assert!(c.lines[0].2.contains(",\"big\":1000000000000000000000,\"d\":1.25,"), "{}", c.lines[0].2);
    }

    #[test]
    fn variable_error_drops_only_that_instance() {
        let p = plan(r#"{"resources": [
          {"kind": "instance", "metadata": {"name": "a", "namespace": "istio-system"}, "spec": {"compiledTemplate": "logentry", "params": {"variables": {"t": "response.time", "x": "\"x\""}}}},
          {"kind": "instance", "metadata": {"name": "b", "namespace": "istio-system"}, "spec": {"compiledTemplate": "logentry", "params": {"severity": "\"ERROR\"", "variables": {"x": "\"y\""}}}},
          {"kind": "handler", "metadata": {"name": "h", "namespace": "istio-system"}, "spec": {"compiledAdapter": "stdio"}},
          {"kind": "rule", "metadata": {"name": "r", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "h", "instances": ["a", "b"]}]}}
        ]}"#)
        .unwrap();
        let c = render(&p, &[]);
        assert_eq!(
            c.instance_errors,
            [(
                "a.instance.istio-system".to_string(),
                "Variables[t]".to_string(),
                "lookup failed: 'response.time'".to_string()
            )]
        );
        assert_eq!(c.lines, [(0, Level::Error, r#"{"level":"error","time":"0001-01-01T00:00:00.000000Z","instance":"b.instance.istio-system","x":"y"}"#.to_string())]);
    }

    #[test]
    fn match_errors_log_nothing_and_are_reported() {
        let p =
            plan(&SEED.replace("\"match\": \"true\"", "\"match\": \"request.headers[\\\"x-log\\\"] == \\\"yes\\\"\""))
                .unwrap();
        let c = render(&p, &seed_request());
        assert!(c.lines.is_empty());
        assert_eq!(
            c.match_errors,
            [("newlogstdio.rule.istio-system".to_string(), "lookup failed: 'request.headers'".to_string())]
        );
        let mut attrs = seed_request();
        attrs.push(("request.headers", labels(&[("x-log", "no")])));
        let c = render(&p, &attrs);
        assert!(c.lines.is_empty() && c.match_errors.is_empty());
        attrs.pop();
        attrs.push(("request.headers", labels(&[("x-log", "yes")])));
        assert_eq!(render(&p, &attrs).lines.len(), 1);
    }

    #[test]
    fn severity_map_and_output_level() {
        // The seed's map has only `warning`: ERROR is unknown there, so info.
        let p = plan(&SEED.replace("\"\\\"warning\\\"\"", "\"\\\"ERROR\\\"\"")).unwrap();
        assert_eq!(render(&p, &seed_request()).lines[0].1, Level::Info);
        // Default map, case-sensitive, unknown (and unset) severity is info.
        let base = SEED.replace("\"severity_levels\": {\"warning\": 1}, ", "");
        for (sev, level) in [
            ("\"\\\"ERROR\\\"\"", Level::Error),
            ("\"\\\"err\\\"\"", Level::Error),
            ("\"\\\"WARN\\\"\"", Level::Warn),
            ("\"\\\"Info\\\"\"", Level::Info),
            ("\"\\\"Warning\\\"\"", Level::Info),
            ("\"\"", Level::Info),
        ] {
            let p = plan(&base.replace("\"\\\"warning\\\"\"", sev)).unwrap();
            assert_eq!(render(&p, &seed_request()).lines[0].1, level, "{sev}");
        }
        // output_level WARNING drops info, keeps warn and error; names or numbers.
        for ol in ["\"WARNING\"", "1"] {
            let p = plan(
                &base
                    .replace("\"outputAsJson\": true", &format!("\"output_level\": {ol}"))
                    .replace("\"\\\"warning\\\"\"", "\"\\\"info\\\"\""),
            )
            .unwrap();
            let c = render(&p, &seed_request());
            assert!(c.lines.is_empty());
            assert_eq!(c.filtered, 1);
        }
        let p = plan(&base.replace("\"outputAsJson\": true", "\"output_level\": \"WARNING\"")).unwrap();
        assert_eq!(render(&p, &seed_request()).lines.len(), 1);
        let p = plan(&base.replace("\"outputAsJson\": true", "\"output_level\": \"ERROR\"")).unwrap();
        assert!(render(&p, &seed_request()).lines.is_empty());
    }

    #[test]
    fn console_mode() {
        let p = plan(&SEED.replace("\"outputAsJson\": true", "\"output_as_json\": false")).unwrap();
        let c = render(&p, &seed_request());
        assert_eq!(
            c.lines[0].2,
            "2019-12-16T16:45:53.950607Z\twarn\tnewlog.instance.istio-system\t{\"destination\": \"ratings\", \"latency\": \"1.494269ms\", \"responseCode\": 200, \"responseSize\": 48, \"source\": \"reviews\", \"user\": \"unknown\"}"
        );
        // No variables: no object column.
        let p = plan(r#"{"resources": [
          {"kind": "instance", "metadata": {"name": "i", "namespace": "istio-system"}, "spec": {"compiledTemplate": "logentry", "params": {"severity": "\"err\""}}},
          {"kind": "handler", "metadata": {"name": "h", "namespace": "istio-system"}, "spec": {"compiledAdapter": "stdio", "params": {"output_as_json": false}}},
          {"kind": "rule", "metadata": {"name": "r", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "h", "instances": ["i"]}]}}
        ]}"#)
        .unwrap();
        assert_eq!(render(&p, &[]).lines[0].2, "0001-01-01T00:00:00.000000Z\terror\ti.instance.istio-system");
        // Unknown instance fields are configuration errors.
        let e = plan(&SEED.replace("\"variables\": {", "\"variables\": {}, \"unused\": {")).unwrap_err();
        assert!(e.contains("params.unused: unknown field of the logentry template"), "{e}");
    }

    #[test]
    fn namespace_scoping_like_mixer() {
        let scoped = SEED
            .replace(
                "\"name\": \"newlogstdio\", \"namespace\": \"istio-system\"",
                "\"name\": \"newlogstdio\", \"namespace\": \"default\"",
            )
            .replace("\"handler\": \"newloghandler\"", "\"handler\": \"newloghandler.istio-system\"")
            .replace("\"instances\": [\"newlog\"]", "\"instances\": [\"newlog.instance.istio-system\"]");
        let p = plan(&scoped).unwrap();
        assert_eq!(p.rules[0].scope.as_deref(), Some("default"));
        let mut attrs = seed_request();
        attrs.push(("context.reporter.kind", s("inbound")));
        attrs.push(("destination.namespace", s("default")));
        assert_eq!(render(&p, &attrs).lines.len(), 1);
        attrs.pop();
        attrs.push(("destination.namespace", s("other")));
        assert!(render(&p, &attrs).lines.is_empty());
        // Outbound: the source's namespace decides.
        attrs.push(("source.namespace", s("default")));
        attrs[6] = ("context.reporter.kind", s("outbound"));
        assert_eq!(render(&p, &attrs).lines.len(), 1);
    }

    #[test]
    fn metric_instances_to_stdio() {
        let p = plan(r#"{"resources": [
          {"kind": "instance", "metadata": {"name": "m", "namespace": "istio-system"}, "spec": {"compiledTemplate": "metric", "params": {"value": "2", "dimensions": {"zz": "\"z\"", "ip": "source.ip", "a": "response.code | 0"}}}},
          {"kind": "handler", "metadata": {"name": "h", "namespace": "istio-system"}, "spec": {"compiledAdapter": "stdio", "params": {"metric_level": "WARNING"}}},
          {"kind": "rule", "metadata": {"name": "r", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "h", "instances": ["m"]}]}}
        ]}"#)
        .unwrap();
        let c = render(&p, &[("source.ip", Value::IpAddress(IpBytes::from_v4([1, 0, 0, 127])))]);
        // `value` first, then the dimensions sorted; the time is the wall clock; IPs are bytes.
        assert_eq!(
            c.lines[0].2,
            r#"{"level":"warn","time":"2019-12-16T16:45:53.000000Z","instance":"m.instance.istio-system","value":2,"a":0,"ip":"AQAAfw==","zz":"z"}"#
        );
        let c = render(&p, &[]);
        assert_eq!(c.instance_errors[0].1, "Dimensions[ip]");
    }

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

    #[test]
    fn other_adapters_are_left_alone() {
        let p = plan(r#"{"resources": [
          {"kind": "handler", "metadata": {"name": "d", "namespace": "istio-system"}, "spec": {"compiledAdapter": "denier"}},
          {"kind": "instance", "metadata": {"name": "c", "namespace": "istio-system"}, "spec": {"compiledTemplate": "checknothing"}},
          {"kind": "rule", "metadata": {"name": "r", "namespace": "istio-system"}, "spec": {"match": "source.nam == \"x\"", "actions": [{"handler": "d", "instances": ["c"]}]}}
        ]}"#)
        .unwrap();
        assert!(p.is_empty());
        assert!(p.attributes().is_empty());
    }

    #[test]
    fn legacy_kinds() {
        let p = plan(r#"{"resources": [
          {"kind": "logentry", "metadata": {"name": "accesslog", "namespace": "istio-system"}, "spec": {"severity": "\"Info\"", "variables": {"a": "\"b\""}}},
          {"kind": "stdio", "metadata": {"name": "handler", "namespace": "istio-system"}, "spec": {"outputAsJson": true}},
          {"kind": "rule", "metadata": {"name": "stdio", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "handler.stdio", "instances": ["accesslog.logentry"]}]}}
        ]}"#)
        .unwrap();
        assert_eq!(p.handlers[0].display_name, "handler.stdio.istio-system");
        let c = render(&p, &[]);
        assert_eq!(
            c.lines[0].2,
            r#"{"level":"info","time":"0001-01-01T00:00:00.000000Z","instance":"accesslog.logentry.istio-system","a":"b"}"#
        );
    }

    #[test]
    fn attributes_are_only_those_referenced() {
        let p = plan(SEED).unwrap();
        let m = Manifest::istio();
        let mut names: Vec<&str> = p.attributes().iter().map(|id| m.name(*id)).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "destination.labels",
                "destination.workload.name",
                "request.time",
                "response.code",
                "response.duration",
                "response.size",
                "source.labels",
                "source.user",
                "source.workload.name"
            ]
        );
    }

    #[test]
    fn the_buffer_is_reused() {
        let p = plan(SEED).unwrap();
        let b = bag(&seed_request());
        let mut out = String::with_capacity(1024);
        let ptr = out.as_ptr();
        for _ in 0..3 {
            let mut c = Collect::default();
            p.render(&b, 0, &mut out, &mut c);
            assert_eq!(c.lines[0].2, SEED_LINE);
        }
        assert_eq!(out.as_ptr(), ptr);
        assert!(out.is_empty());
    }
}
