//! One request's lines: for each rule that applies and matches, each instance rendered straight
//! into the caller's buffer and handed to the [`LogSink`].

use std::fmt;

use super::handler::StdioHandler;
use super::instance::{LogInstance, Template};
use super::plan::{LogPlan, LogRule};
use super::stdio::Level;
use super::text::{write_json_value_fast, write_utc_micros};
use crate::attr::base64;
use crate::config::scope::NamespaceScope;
use crate::expr::{AttributeBag, Program, Value};
use crate::gostd::time::{Timestamp, GO_ZERO};

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

impl LogPlan {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::gostd::net_ip::IpBytes;
    use crate::telemetry::logs::handler::LogStream;
    use crate::telemetry::logs::stdio::{render_console_line, render_json_line};
    use crate::telemetry::logs::test_support::*;

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
