//! Mixer's stdio adapter line rendering (istio/istio 1.5 `mixer/adapter/stdio/stdio.go` and
//! `zapcore.go`, `metadata/inventory.go` defaults; zap's `jsonEncoder.EncodeEntry` and
//! `consoleEncoder.EncodeEntry`): severity mapping and one log line per logentry instance.

use crate::expr::Value;
use crate::gostd::time::Timestamp;

use super::zap_json::write_json_value;
use crate::json_escape::write_json_string;

/// The stdio adapter's three levels (`adapter.stdio.config.Params.Level`), ordered so that
/// `output_level` filtering is a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    /// The name zap's `LowercaseLevelEncoder` writes: `info`, `warn` or `error`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// The level for the config enum number: `0` INFO, `1` WARNING, `2` ERROR.
    pub fn from_number(n: i64) -> Option<Level> {
        match n {
            0 => Some(Level::Info),
            1 => Some(Level::Warn),
            2 => Some(Level::Error),
            _ => None,
        }
    }

    /// The level for the config enum name: `INFO`, `WARNING` or `ERROR` (exact, as protobuf
    /// enum names are).
    pub fn from_enum_name(s: &str) -> Option<Level> {
        match s {
            "INFO" => Some(Level::Info),
            "WARNING" => Some(Level::Warn),
            "ERROR" => Some(Level::Error),
            _ => None,
        }
    }

    /// Parses a level as it appears in Mixer config turned JSON: a number (`0`, `1`, `2`) or an
    /// enum name (`"INFO"`, `"WARNING"`, `"ERROR"`).
    pub fn from_config(v: &serde_json::Value) -> Result<Level, String> {
        let found = match v {
            serde_json::Value::Number(n) => n.as_i64().and_then(Level::from_number),
            serde_json::Value::String(s) => Level::from_enum_name(s),
            _ => None,
        };
        found.ok_or_else(|| {
            format!(
                "invalid stdio level {}: want 0, 1, 2, \"INFO\", \"WARNING\" or \"ERROR\"",
                crate::config::json_text(v)
            )
        })
    }
}

/// The `severity_levels` map: a logentry's `severity` string to a [`Level`]. Lookup is exact
/// and case-sensitive; an unknown severity (including `""`) maps to info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeverityLevels {
    /// Sorted by severity string, one entry per string.
    entries: Vec<(String, Level)>,
}

impl SeverityLevels {
    /// A user-supplied map. It replaces the default map entirely, as Mixer's params did; a
    /// repeated severity keeps its last level.
    pub fn from_entries<I>(entries: I) -> SeverityLevels
    where
        I: IntoIterator<Item = (String, Level)>,
    {
        let mut all: Vec<(String, Level)> = entries.into_iter().collect();
        // Stable sort keeps input order among equal keys, so the last one wins below.
        crate::sorting::sort_by(&mut all, |a, b| a.0.cmp(&b.0));
        let mut deduped: Vec<(String, Level)> = Vec::with_capacity(all.len());
        for (k, level) in all {
            match deduped.last_mut() {
                Some(last) if last.0 == k => last.1 = level,
                _ => deduped.push((k, level)),
            }
        }
        SeverityLevels { entries: deduped }
    }

    /// The level for `severity`; info when it is not in the map.
    pub fn level_for(&self, severity: &str) -> Level {
        self.entries
            .binary_search_by(|(k, _)| k.as_str().cmp(severity))
            .ok()
            .and_then(|i| self.entries.get(i))
            .map_or(Level::Info, |(_, level)| *level)
    }
}

impl Default for SeverityLevels {
    /// Mixer's default map (`metadata/inventory.go`).
    fn default() -> SeverityLevels {
        const DEFAULTS: [(&str, Level); 14] = [
            ("INFORMATIONAL", Level::Info),
            ("informational", Level::Info),
            ("INFO", Level::Info),
            ("info", Level::Info),
            ("WARNING", Level::Warn),
            ("warning", Level::Warn),
            ("WARN", Level::Warn),
            ("warn", Level::Warn),
            ("ERROR", Level::Error),
            ("error", Level::Error),
            ("ERR", Level::Error),
            ("err", Level::Error),
            ("FATAL", Level::Error),
            ("fatal", Level::Error),
        ];
        SeverityLevels::from_entries(DEFAULTS.iter().map(|(k, l)| (String::from(*k), *l)))
    }
}

impl FromIterator<(String, Level)> for SeverityLevels {
    fn from_iter<I: IntoIterator<Item = (String, Level)>>(iter: I) -> SeverityLevels {
        SeverityLevels::from_entries(iter)
    }
}

/// Appends one JSON-mode stdio line, without the trailing newline:
/// `{"level":"warn","time":"<6-digit UTC>","instance":"<FQN>","<var>":<value>,...}`.
///
/// Variables are written in ascending byte order of their names, as Mixer sorted them. Pass
/// them already sorted (sort once at config time) and nothing is allocated; unsorted input is
/// still accepted and is ordered through one index array per call. Equal names keep their
/// input order. An empty `instance` leaves the key out, as zap does for an empty logger name.
pub fn render_json_line(
    level: Level,
    time: &Timestamp,
    instance: &str,
    variables: &[(&str, Value<'_>)],
    out: &mut String,
) {
    out.push_str("{\"level\":\"");
    out.push_str(level.name());
    out.push_str("\",\"time\":\"");
    time.write_utc_micros(out);
    out.push('"');
    if !instance.is_empty() {
        out.push_str(",\"instance\":");
        write_json_string(instance.as_bytes(), out);
    }
    for_each_sorted(variables, |name, value| {
        out.push(',');
        write_json_string(name.as_bytes(), out);
        out.push(':');
        write_json_value(value, out);
    });
    out.push('}');
}

/// Appends one console-mode stdio line (`output_as_json: false`), without the trailing newline:
/// `<time>\t<level>\t<instance>\t{"k": v, "k2": v2}`.
///
/// Same arguments and ordering as [`render_json_line`]. As in zap's console encoder, the time,
/// level and instance are written raw; the variables object uses `": "` and `", "` separators,
/// but a STRING_MAP value inside it stays compact. Empty `instance` or no variables leave their
/// tab-separated column out.
pub fn render_console_line(
    level: Level,
    time: &Timestamp,
    instance: &str,
    variables: &[(&str, Value<'_>)],
    out: &mut String,
) {
    time.write_utc_micros(out);
    out.push('\t');
    out.push_str(level.name());
    if !instance.is_empty() {
        out.push('\t');
        out.push_str(instance);
    }
    if variables.is_empty() {
        return;
    }
    out.push_str("\t{");
    let mut first = true;
    for_each_sorted(variables, |name, value| {
        if !first {
            out.push_str(", ");
        }
        first = false;
        write_json_string(name.as_bytes(), out);
        out.push_str(": ");
        write_json_value(value, out);
    });
    out.push('}');
}

/// Calls `f` for each variable in ascending (stable) name order.
fn for_each_sorted<'v>(variables: &'v [(&str, Value<'_>)], mut f: impl FnMut(&str, &'v Value<'_>)) {
    if variables.windows(2).all(|w| w[0].0 <= w[1].0) {
        for (name, value) in variables {
            f(name, value);
        }
        return;
    }
    let mut order: Vec<usize> = (0..variables.len()).collect();
    crate::sorting::sort_by(&mut order, |&a, &b| {
        let name = |i: usize| variables.get(i).map_or("", |(n, _)| *n);
        name(a).cmp(name(b))
    });
    for i in order {
        if let Some((name, value)) = variables.get(i) {
            f(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::expr::StringMap;
    use crate::gostd::net_ip::IpBytes;
    use crate::gostd::time::GO_ZERO;

    fn json(level: Level, time: &Timestamp, instance: &str, vars: &[(&str, Value<'_>)]) -> String {
        let mut out = String::new();
        render_json_line(level, time, instance, vars, &mut out);
        out
    }

    fn console(level: Level, time: &Timestamp, instance: &str, vars: &[(&str, Value<'_>)]) -> String {
        let mut out = String::new();
        render_console_line(level, time, instance, vars, &mut out);
        out
    }

    fn s(v: &str) -> Value<'_> {
        Value::String(Cow::Borrowed(v))
    }

    #[test]
    fn level_names_and_order() {
        assert_eq!(Level::Info.name(), "info");
        assert_eq!(Level::Warn.name(), "warn");
        assert_eq!(Level::Error.name(), "error");
        assert!(Level::Info < Level::Warn && Level::Warn < Level::Error);
    }

    #[test]
    fn level_from_config() {
        use serde_json::json;
        assert_eq!(Level::from_config(&json!(0)), Ok(Level::Info));
        assert_eq!(Level::from_config(&json!(1)), Ok(Level::Warn));
        assert_eq!(Level::from_config(&json!(2)), Ok(Level::Error));
        assert_eq!(Level::from_config(&json!("INFO")), Ok(Level::Info));
        assert_eq!(Level::from_config(&json!("WARNING")), Ok(Level::Warn));
        assert_eq!(Level::from_config(&json!("ERROR")), Ok(Level::Error));
        for bad in [json!(3), json!(-1), json!(1.5), json!("WARN"), json!("info"), json!(null)] {
            assert!(Level::from_config(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_severity_levels() {
        let m = SeverityLevels::default();
        for (sev, want) in [
            ("INFORMATIONAL", Level::Info),
            ("info", Level::Info),
            ("WARNING", Level::Warn),
            ("warning", Level::Warn),
            ("WARN", Level::Warn),
            ("warn", Level::Warn),
            ("ERROR", Level::Error),
            ("err", Level::Error),
            ("FATAL", Level::Error),
            ("fatal", Level::Error),
            // Case-sensitive, unknown means info.
            ("Info", Level::Info),
            ("Warning", Level::Info),
            ("Default", Level::Info),
            ("", Level::Info),
        ] {
            assert_eq!(m.level_for(sev), want, "{sev:?}");
        }
    }

    #[test]
    fn user_severity_levels_replace_the_default() {
        let m = SeverityLevels::from_entries([(String::from("warning"), Level::Warn)]);
        assert_eq!(m.level_for("warning"), Level::Warn);
        assert_eq!(m.level_for("ERROR"), Level::Info);
        let m: SeverityLevels =
            [(String::from("x"), Level::Warn), (String::from("a"), Level::Info), (String::from("x"), Level::Error)]
                .into_iter()
                .collect();
        assert_eq!(m.level_for("x"), Level::Error);
        assert_eq!(m.level_for("a"), Level::Info);
        assert_eq!(SeverityLevels::from_entries([]).level_for("error"), Level::Info);
    }

    #[test]
    fn empty_variables() {
        let line = json(Level::Info, &GO_ZERO, "a.b.c", &[]);
        assert_eq!(line, r#"{"level":"info","time":"0001-01-01T00:00:00.000000Z","instance":"a.b.c"}"#);
        assert_eq!(console(Level::Info, &GO_ZERO, "a.b.c", &[]), "0001-01-01T00:00:00.000000Z\tinfo\ta.b.c");
        assert_eq!(json(Level::Error, &GO_ZERO, "", &[]), r#"{"level":"error","time":"0001-01-01T00:00:00.000000Z"}"#);
        assert_eq!(console(Level::Error, &GO_ZERO, "", &[]), "0001-01-01T00:00:00.000000Z\terror");
    }

    #[test]
    fn escaping_in_names_values_and_instance() {
        let vars = [("a\"b", s("line1\nline2\t\"q\"\\")), ("ctl", s("\x01\x7f")), ("u", s("\u{e9}\u{2028}"))];
        let line = json(Level::Warn, &GO_ZERO, "in\"st", &vars);
        assert_eq!(
            line,
            "{\"level\":\"warn\",\"time\":\"0001-01-01T00:00:00.000000Z\",\"instance\":\"in\\\"st\",\
             \"a\\\"b\":\"line1\\nline2\\t\\\"q\\\"\\\\\",\"ctl\":\"\\u0001\x7f\",\"u\":\"\u{e9}\u{2028}\"}"
        );
        assert!(!line.contains('\n'));
        let line = console(Level::Warn, &GO_ZERO, "inst", &vars[..1]);
        assert_eq!(line, "0001-01-01T00:00:00.000000Z\twarn\tinst\t{\"a\\\"b\": \"line1\\nline2\\t\\\"q\\\"\\\\\"}");
    }

    #[test]
    fn unsorted_variables_are_sorted_by_bytes() {
        let vars = [("b", Value::Int64(2)), ("B", Value::Int64(1)), ("a", Value::Bool(true)), ("_", Value::Int64(0))];
        assert_eq!(
            json(Level::Info, &GO_ZERO, "i", &vars),
            r#"{"level":"info","time":"0001-01-01T00:00:00.000000Z","instance":"i","B":1,"_":0,"a":true,"b":2}"#
        );
        assert_eq!(
            console(Level::Info, &GO_ZERO, "i", &vars),
            "0001-01-01T00:00:00.000000Z\tinfo\ti\t{\"B\": 1, \"_\": 0, \"a\": true, \"b\": 2}"
        );
    }

    #[test]
    fn nan_inf_and_maps() {
        let m = StringMap::from_pairs([("C", "D"), ("A", "B")]);
        let vars = [
            ("inf", Value::Double(f64::INFINITY)),
            ("m", Value::StringMap(Cow::Owned(m))),
            ("nan", Value::Double(f64::NAN)),
            ("ninf", Value::Double(f64::NEG_INFINITY)),
        ];
        assert_eq!(
            json(Level::Info, &GO_ZERO, "i", &vars),
            r#"{"level":"info","time":"0001-01-01T00:00:00.000000Z","instance":"i","inf":"+Inf","m":{"A":"B","C":"D"},"nan":"NaN","ninf":"-Inf"}"#
        );
        assert_eq!(
            console(Level::Info, &GO_ZERO, "i", &vars),
            "0001-01-01T00:00:00.000000Z\tinfo\ti\t{\"inf\": \"+Inf\", \"m\": {\"A\":\"B\",\"C\":\"D\"}, \"nan\": \"NaN\", \"ninf\": \"-Inf\"}"
        );
    }

    /// The line from Mixer's `stdio_test.go` (reference §5.2), byte for byte. Our values have no
    /// raw-bytes type, so the `Bytes` field (base64 in Go) is given as the string it printed.
    #[test]
    fn stdio_test_go_line() {
        let m = StringMap::from_pairs([("A", "B"), ("C", "D")]);
        let vars = [
            ("Bool", Value::Bool(true)),
            ("Bytes", s("Yg==")),
            ("DNSName", Value::DnsName(Cow::Borrowed("foo.bar.com"))),
            ("Double", Value::Double(1.23)),
            ("Duration", Value::Duration(1_000_000_000)),
            ("EmailAddr", Value::EmailAddress(Cow::Borrowed("foo@bar.com"))),
            ("IPAddress", Value::IpAddress(IpBytes::from_v4([1, 0, 0, 127]))),
            ("Int64", Value::Int64(123)),
            ("String", s("a string")),
            ("StringMap", Value::StringMap(Cow::Owned(m))),
            ("Time", Value::Timestamp(Timestamp { secs: 1_503_309_840, nanos: 0, offset_secs: 0 })),
            ("URL", Value::Uri(Cow::Borrowed("http://foo.com"))),
        ];
        assert_eq!(
            json(Level::Warn, &GO_ZERO, "Foo", &vars),
            r#"{"level":"warn","time":"0001-01-01T00:00:00.000000Z","instance":"Foo","Bool":true,"Bytes":"Yg==","DNSName":"foo.bar.com","Double":1.23,"Duration":"1s","EmailAddr":"foo@bar.com","IPAddress":"1.0.0.127","Int64":123,"String":"a string","StringMap":{"A":"B","C":"D"},"Time":"2017-08-21T10:04:00.000000Z","URL":"http://foo.com"}"#
        );
        assert_eq!(
            console(Level::Warn, &GO_ZERO, "Foo", &vars),
            "0001-01-01T00:00:00.000000Z\twarn\tFoo\t{\"Bool\": true, \"Bytes\": \"Yg==\", \"DNSName\": \"foo.bar.com\", \"Double\": 1.23, \"Duration\": \"1s\", \"EmailAddr\": \"foo@bar.com\", \"IPAddress\": \"1.0.0.127\", \"Int64\": 123, \"String\": \"a string\", \"StringMap\": {\"A\":\"B\",\"C\":\"D\"}, \"Time\": \"2017-08-21T10:04:00.000000Z\", \"URL\": \"http://foo.com\"}"
        );
    }

    /// The istio.io collecting-logs task line (reference §5.2), byte for byte.
    #[test]
    fn istio_io_task_line() {
        // 2018-09-15T20:46:36.009801Z
        let t = Timestamp { secs: 1_537_044_396, nanos: 9_801_000, offset_secs: 0 };
        let vars = [
            ("destination", s("details")),
            ("latency", Value::Duration(13_601_485)),
            ("responseCode", Value::Int64(200)),
            ("responseSize", Value::Int64(178)),
            ("source", s("productpage")),
            ("user", s("unknown")),
        ];
        assert_eq!(
            json(Level::Warn, &t, "newlog.xxxxx.istio-system", &vars),
            r#"{"level":"warn","time":"2018-09-15T20:46:36.009801Z","instance":"newlog.xxxxx.istio-system","destination":"details","latency":"13.601485ms","responseCode":200,"responseSize":178,"source":"productpage","user":"unknown"}"#
        );
    }

    /// The brief's example line, with a shuffled variable order.
    #[test]
    fn newlog_line() {
        // 2019-12-16T16:45:53.950607Z
        let t = Timestamp { secs: 1_576_514_753, nanos: 950_607_123, offset_secs: 0 };
        let vars = [
            ("responseCode", Value::Int64(200)),
            ("latency", Value::Duration(1_494_269)),
            ("destination", s("ratings")),
        ];
        assert_eq!(
            json(Level::Warn, &t, "newlog.instance.istio-system", &vars),
            r#"{"level":"warn","time":"2019-12-16T16:45:53.950607Z","instance":"newlog.instance.istio-system","destination":"ratings","latency":"1.494269ms","responseCode":200}"#
        );
    }
}
