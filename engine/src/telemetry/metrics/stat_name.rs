//! Istio-style tag encoding of metric dimensions into an Envoy stat name, because
//! `proxy_define_metric` takes no tags (istio/proxy release-1.8 `extensions/stats/plugin.h`,
//! `StatGen::resolve`; proxy-wasm-cpp-sdk `MetricBase::prefixWithFields`; istio/istio
//! `tools/packaging/common/envoy_bootstrap.json` for the `stats_tags` regexes).
//!
//! A name is `tag1=.=v1;.;tag2=.=v2;.;metric`. Envoy stores it as `wasmcustom.<name>`, and one
//! bootstrap `stats_tags` entry per tag, regex `(tag=\.=(.*?);\.;)`, turns it back into tags:
//! every regex is searched in the *original* name, group 2 becomes the tag value, and all the
//! group-1 spans are cut out at the end (Envoy `TagProducerImpl::produceTags`), leaving
//! `wasmcustom.metric`.
//!
//! # Value sanitising
//!
//! Istio wrote values unchanged: they came from peer metadata (Kubernetes labels and names),
//! never from the request. Ours are CEXL results and may carry header text, so a value could
//! otherwise forge or cut short a tag. Each value is rewritten character by character, every
//! replacement but the last being `_`:
//!
//! 1. a `.` right after `;` or `=` (counting the `=` that ends `=.=` before the value, and
//!    counting replaced characters as `_`): so `;.;` and `=.=` can never occur inside a value,
//!    nor form across its edges with the separators (a value ending in `;.` would otherwise end
//!    the tag early);
//! 2. ASCII control characters (`\0`-`\x1f`, `\x7f`): the regex `.` stops at `\n` (and, in
//!    Envoy's ECMAScript `std::regex`, at `\r`), which would leave the tag in the name, and a
//!    newline would break the Prometheus text exposition;
//! 3. `"` and `\`: Envoy's `/stats/prometheus` prints label values without escaping them
//!    (envoyproxy/envoy#18589), and one bad line fails the whole scrape.
//!
//! 4. a raw-byte character (a byte that was not UTF-8, [`byte_string`]) becomes U+FFFD, so the
//!    reserved code points never reach Envoy's stat names.
//!
//! Everything else is kept, in particular dots (`reviews.default.svc.cluster.local`), `/`, `:`,
//! `=`, `;` and non-ASCII text; Envoy's symbol table splits names on `.` but keeps every token,
//! so such values round-trip. After this rule the only `=.=` and `;.;` in a name are the real
//! separators, so each regex can only match a real tag chunk, given tag names that pass
//! [`check_tag_names`] (valid label names, no duplicates, and no name that ends another one
//! placed after it: `app=\.=` would otherwise match inside `source_app=.=`).
//!
//! Tag names and the metric name are configuration, checked once; they are written unchanged.
//!
//! The tests replay Envoy's extraction with the `regex` crate; the same hostile 19-tag name was
//! also checked by hand against Envoy 1.40's `/stats/prometheus`, and every tag came back exactly.

use crate::gostd::byte_string;

/// Separates a tag name from its value (Istio's `default_value_separator`).
pub const VALUE_SEPARATOR: &str = "=.=";
/// Ends each `tag=.=value` chunk (Istio's `default_field_separator`).
pub const FIELD_SEPARATOR: &str = ";.;";

/// Appends `tag1=.=v1;.;tag2=.=v2;.;metric`, each value sanitised as the module doc says. Tag
/// names and `metric` are written as given: check them once with [`check_tag_names`].
pub fn write_tagged_name(tags: &[(&str, &str)], metric: &str, out: &mut String) {
    for (name, value) in tags {
        out.push_str(name);
        out.push_str(VALUE_SEPARATOR);
        write_sanitized_value(value, out);
        out.push_str(FIELD_SEPARATOR);
    }
    out.push_str(metric);
}

/// Appends `value` with the module's sanitising rule applied.
pub fn write_sanitized_value(value: &str, out: &mut String) {
    // The value follows `=.=`, so it starts as if after a `=`.
    let mut prev = '=';
    for c in value.chars() {
        let c = match c {
            '.' if prev == ';' || prev == '=' => '_',
            '"' | '\\' => '_',
            c if c.is_ascii_control() => '_',
            c if byte_string::raw_byte(c).is_some() => char::REPLACEMENT_CHARACTER,
            c => c,
        };
        out.push(c);
        prev = c;
    }
}

/// Splits a name made by [`write_tagged_name`] back into its tags and metric name. `None` when
/// the name is not of that form: a chunk without `=.=`, an invalid tag name, a value that holds
/// a separator, or an empty metric name. A leading `wasmcustom.` is not stripped.
pub fn parse_tagged_name(name: &str) -> Option<(Vec<(String, String)>, String)> {
    let mut chunks: Vec<&str> = name.split(FIELD_SEPARATOR).collect();
    let metric = chunks.pop()?;
    if metric.is_empty() || metric.contains(VALUE_SEPARATOR) {
        return None;
    }
    let tags = chunks
        .into_iter()
        .map(|chunk| {
            let (tag, value) = chunk.split_once(VALUE_SEPARATOR)?;
            if !is_valid_label_name(tag) || value.contains(VALUE_SEPARATOR) {
                return None;
            }
            Some((String::from(tag), String::from(value)))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((tags, String::from(metric)))
}

/// The raw `stats_tags` regex for `tag`: `(tag=\.=(.*?);\.;)` (regex metacharacters in `tag`
/// escaped; a valid label name has none).
pub fn stats_tag_regex(tag: &str) -> String {
    format!("({}=\\.=(.*?);\\.;)", regex_syntax::escape(tag))
}

/// Envoy's bootstrap `stats_config.stats_tags` entries for `tags`, in order:
/// `[{"tag_name": "<tag>", "regex": "(<tag>=\\.=(.*?);\\.;)"}, ...]`.
pub fn stats_tags_json(tags: &[&str]) -> serde_json::Value {
    serde_json::Value::Array(
        tags.iter().map(|tag| serde_json::json!({ "tag_name": tag, "regex": stats_tag_regex(tag) })).collect(),
    )
}

/// True for a Prometheus label name a client library accepts: `[a-zA-Z_][a-zA-Z0-9_]*`, not
/// starting with the reserved `__`.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.starts_with("__")
}

/// Checks a metric's tag names, in the order they will be written, so that the `stats_tags`
/// regexes recover them exactly: each must be a valid label name, none repeated, a name that
/// is a suffix of another (`app`, `source_app`) must come first, and a histogram cannot have
/// an `le` tag (Envoy adds its own `le` label to buckets).
pub fn check_tag_names(tags: &[&str], histogram: bool) -> Result<(), String> {
    for (i, tag) in tags.iter().enumerate() {
        if !is_valid_label_name(tag) {
            return Err(format!(
                "tag name {tag:?} is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
            ));
        }
        if histogram && *tag == "le" {
            return Err(String::from("a histogram cannot have a tag named \"le\""));
        }
        for earlier in tags.iter().take(i) {
            if earlier == tag {
                return Err(format!("tag name {tag:?} is repeated"));
            }
            if earlier.ends_with(tag) {
                return Err(format!(
                    "tag {tag:?} must come before {earlier:?}: its stats_tags regex would match inside {earlier:?}"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    /// The 19 labels of Istio 1.5's HTTP metrics with realistic values.
    const HTTP_TAGS: [(&str, &str); 19] = [
        ("reporter", "destination"),
        ("source_app", "productpage"),
        ("source_principal", "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"),
        ("source_workload", "productpage-v1"),
        ("source_workload_namespace", "default"),
        ("source_version", "v1"),
        ("destination_app", "reviews"),
        ("destination_principal", "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"),
        ("destination_workload", "reviews-v2"),
        ("destination_workload_namespace", "default"),
        ("destination_version", "v2"),
        ("destination_service", "reviews.default.svc.cluster.local"),
        ("destination_service_name", "reviews"),
        ("destination_service_namespace", "default"),
        ("request_protocol", "http"),
        ("response_code", "200"),
        ("grpc_response_status", ""),
        ("response_flags", "-"),
        ("connection_security_policy", "mutual_tls"),
    ];

    const HOSTILE: [&str; 22] = [
        "a;.;reporter=.=x",
        "=.=",
        ";.;",
        "reporter=.=evil;.;",
        "x;.;source_app=.=forged",
        "line1\nline2",
        "cr\rlf\n",
        "",
        ";.",
        ".;",
        "=.",
        ".=",
        "a;",
        "a=",
        ";;..==",
        ".;.;.=.=.",
        "\"quoted\\\"",
        "nul\0tab\tdel\x7f",
        "text/html; charset=utf-8",
        "a=b&c=d",
        "ümlaut ☃ \u{2028}",
        "...",
    ];

    fn sanitized(v: &str) -> String {
        let mut out = String::new();
        write_sanitized_value(v, &mut out);
        out
    }

    fn tagged(tags: &[(&str, &str)], metric: &str) -> String {
        let mut out = String::new();
        write_tagged_name(tags, metric, &mut out);
        out
    }

    /// Envoy's tag extraction: every regex searched in the original name, group 2 the value,
    /// group-1 spans cut out at the end.
    struct Envoy {
        extractors: Vec<(String, Regex)>,
    }

    impl Envoy {
        fn new(tags: &[&str]) -> Result<Envoy, String> {
            let json = stats_tags_json(tags);
            let mut extractors = Vec::new();
            for spec in json.as_array().ok_or("stats_tags is not an array")? {
                let name = spec["tag_name"].as_str().ok_or("no tag_name")?;
                let re = spec["regex"].as_str().ok_or("no regex")?;
                extractors.push((String::from(name), Regex::new(re).map_err(|e| e.to_string())?));
            }
            Ok(Envoy { extractors })
        }

        fn extract(&self, name: &str) -> (Vec<(String, String)>, String) {
            let mut tags = Vec::new();
            let mut cut: Vec<(usize, usize)> = Vec::new();
            for (tag, re) in &self.extractors {
                let Some(caps) = re.captures(name) else {
                    continue;
                };
                let (Some(remove), Some(value)) = (caps.get(1), caps.get(2)) else {
                    continue;
                };
                tags.push((tag.clone(), String::from(value.as_str())));
                cut.push((remove.start(), remove.end()));
            }
            let rest: String = name
                .char_indices()
                .filter(|(i, _)| !cut.iter().any(|(s, e)| s <= i && i < e))
                .map(|(_, c)| c)
                .collect();
            (tags, rest)
        }
    }

    fn owned(tags: &[(&str, &str)]) -> Vec<(String, String)> {
        tags.iter().map(|(k, v)| (String::from(*k), sanitized(v))).collect()
    }

    #[test]
    fn layout_matches_istio() {
        let name = tagged(&[("reporter", "destination"), ("grpc_response_status", "")], "istio_requests_total");
        assert_eq!(name, "reporter=.=destination;.;grpc_response_status=.=;.;istio_requests_total");
        assert_eq!(tagged(&[], "m"), "m");
    }

    #[test]
    fn regex_and_json() {
        assert_eq!(stats_tag_regex("reporter"), r"(reporter=\.=(.*?);\.;)");
        assert_eq!(
            stats_tags_json(&["reporter", "response_code"]),
            serde_json::json!([
                {"tag_name": "reporter", "regex": "(reporter=\\.=(.*?);\\.;)"},
                {"tag_name": "response_code", "regex": "(response_code=\\.=(.*?);\\.;)"},
            ])
        );
        assert_eq!(stats_tags_json(&[]), serde_json::json!([]));
    }

    #[test]
    fn ordinary_values_are_unchanged() {
        for (_, v) in HTTP_TAGS {
            assert_eq!(sanitized(v), v);
        }
        for v in ["a=b&c=d", "text/html; charset=utf-8", "10.0.0.1:8080", "a..b.", "ümlaut ☃"] {
            assert_eq!(sanitized(v), v);
        }
    }

    #[test]
    fn bytes_that_were_not_utf8_show_as_replacement_characters() {
        let value = byte_string::from_slice(b"a\xffb\xe2\x82z");
        assert_eq!(sanitized(&value), "a\u{fffd}b\u{fffd}\u{fffd}z");
    }

    #[test]
    fn hostile_values_are_defused() {
        assert_eq!(sanitized("a;.;reporter=.=x"), "a;_;reporter=_=x");
        assert_eq!(sanitized("=.="), "=_=");
        assert_eq!(sanitized(".x"), "_x");
        assert_eq!(sanitized(";."), ";_");
        assert_eq!(sanitized("a\nb\r\0\x7f"), "a_b___");
        assert_eq!(sanitized("\"q\\"), "_q_");
        assert_eq!(sanitized(""), "");
        for v in HOSTILE {
            let s = sanitized(v);
            assert_eq!(sanitized(&s), s, "idempotent for {v:?}");
            assert!(!s.contains(VALUE_SEPARATOR) && !s.contains(FIELD_SEPARATOR), "{v:?} -> {s:?}");
            assert!(!s.ends_with(";.") && !s.starts_with('.'), "{v:?} -> {s:?}");
            assert!(!s.bytes().any(|b| b.is_ascii_control() || b == b'"' || b == b'\\'));
        }
    }

    #[test]
    fn envoy_recovers_a_realistic_19_label_name() -> Result<(), String> {
        let names: Vec<&str> = HTTP_TAGS.iter().map(|(k, _)| *k).collect();
        check_tag_names(&names, true)?;
        let envoy = Envoy::new(&names)?;
        let name = format!("wasmcustom.{}", tagged(&HTTP_TAGS, "istio_requests_total"));
        let (tags, rest) = envoy.extract(&name);
        assert_eq!(tags, owned(&HTTP_TAGS));
        assert_eq!(rest, "wasmcustom.istio_requests_total");
        Ok(())
    }

    #[test]
    fn hostile_values_cannot_inject_or_cut_tags() -> Result<(), String> {
        let names: Vec<&str> = HTTP_TAGS.iter().map(|(k, _)| *k).collect();
        let envoy = Envoy::new(&names)?;
        for hostile in HOSTILE {
            // The hostile value in every position, the others realistic.
            for pos in 0..HTTP_TAGS.len() {
                let mut tags = HTTP_TAGS;
                if let Some(slot) = tags.get_mut(pos) {
                    slot.1 = hostile;
                }
                let name = format!("wasmcustom.{}", tagged(&tags, "istio_requests_total"));
                let (got, rest) = envoy.extract(&name);
                assert_eq!(got, owned(&tags), "{hostile:?} at {pos}");
                assert_eq!(rest, "wasmcustom.istio_requests_total", "{hostile:?} at {pos}");
                assert_eq!(parse_tagged_name(&tagged(&tags, "m")), Some((owned(&tags), String::from("m"))));
            }
        }
        Ok(())
    }

    /// Every value over a small alphabet of separator pieces, between two other tags.
    #[test]
    fn exhaustive_short_values() -> Result<(), String> {
        let envoy = Envoy::new(&["a", "b", "c"])?;
        let alphabet = [';', '.', '=', 'a', '\n'];
        let mut values = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for v in &frontier {
                for c in alphabet {
                    let mut w = v.clone();
                    w.push(c);
                    next.push(w);
                }
            }
            values.extend(next.iter().cloned());
            frontier = next;
        }
        for v in &values {
            let tags = [("a", "x"), ("b", v.as_str()), ("c", v.as_str())];
            let name = tagged(&tags, "m");
            let (got, rest) = envoy.extract(&name);
            assert_eq!(got, owned(&tags), "{v:?}");
            assert_eq!(rest, "m", "{v:?}");
        }
        Ok(())
    }

    #[test]
    fn parse_round_trip_and_rejects() {
        let name = tagged(&HTTP_TAGS, "istio_requests_total");
        assert_eq!(parse_tagged_name(&name), Some((owned(&HTTP_TAGS), String::from("istio_requests_total"))));
        assert_eq!(parse_tagged_name("m"), Some((vec![], String::from("m"))));
        assert_eq!(parse_tagged_name(""), None);
        assert_eq!(parse_tagged_name("a=.=b;.;"), None);
        assert_eq!(parse_tagged_name("ab;.;m"), None);
        assert_eq!(parse_tagged_name("1a=.=b;.;m"), None);
        assert_eq!(parse_tagged_name("a=.=b=.=c;.;m"), None);
        assert_eq!(parse_tagged_name("a=.=b;.;m=.=x"), None);
    }

    #[test]
    fn label_names() {
        for ok in ["a", "_", "_a", "reporter", "A_1", "destination_service_name"] {
            assert!(is_valid_label_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b", "a b", "__name__", "__", "é", "a=", "a;"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn tag_name_checks() {
        assert_eq!(check_tag_names(&[], true), Ok(()));
        assert_eq!(check_tag_names(&["app", "source_app"], false), Ok(()));
        assert!(check_tag_names(&["source_app", "app"], false).is_err());
        assert!(check_tag_names(&["a", "a"], false).is_err());
        assert!(check_tag_names(&["a-b"], false).is_err());
        assert!(check_tag_names(&["le"], true).is_err());
        assert_eq!(check_tag_names(&["le"], false), Ok(()));
    }

    /// Why the suffix rule exists: with `source_app` first, `app`'s regex matches inside it.
    #[test]
    fn suffix_order_matters() -> Result<(), String> {
        let good = [("app", "a1"), ("source_app", "s1")];
        let envoy = Envoy::new(&["app", "source_app"])?;
        let (tags, rest) = envoy.extract(&tagged(&good, "m"));
        assert_eq!(tags, owned(&good));
        assert_eq!(rest, "m");
        let bad = [("source_app", "s1"), ("app", "a1")];
        let envoy = Envoy::new(&["source_app", "app"])?;
        let (tags, _) = envoy.extract(&tagged(&bad, "m"));
        assert_ne!(tags, owned(&bad));
        Ok(())
    }
}
