//! The bootstrap `stats_config` fragment a plan needs: `stats_tags` that turn the labels
//! encoded in stat names back into Prometheus labels, and the distributions'
//! `histogram_bucket_settings`.

use serde_json::{json, Value as Json};

use super::plan::MetricPlan;
use super::stat_name::stats_tags_json;
use crate::self_metrics;

/// The Envoy namespace of every Wasm-defined stat (`stats_handler.h`, `CustomStatNamespace`);
/// `/stats/prometheus` strips it.
pub const WASM_STAT_NAMESPACE: &str = "wasmcustom";

impl MetricPlan {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::telemetry::metrics::test_support::*;

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
    fn histogram_regex_matches_tagged_and_extracted_names() {
        let re = regex::Regex::new(&histogram_regex("istio_x_milliseconds")).unwrap();
        assert!(re.is_match("wasmcustom.istio_x_milliseconds"));
        assert!(re.is_match("wasmcustom.reporter=.=server;.;code=.=200;.;istio_x_milliseconds"));
        assert!(!re.is_match("wasmcustom.reporter=.=server;.;code=.=200;.;istio_y_istio_x_milliseconds"));
        assert!(!re.is_match("wasmcustom.istio_x_milliseconds_count"));
    }
}
