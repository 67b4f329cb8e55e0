//! The filters' own metrics: every name and its tags, declared once. The filters define them
//! from here, and `wasmixer convert` / `wasmixer stats-config` derive the bootstrap's
//! `stats_tags` from here, so a tag a filter encodes is never missing from the configuration a
//! user is told to apply (a missing tag leaves the label inside the metric's name).

/// One of the filters' own metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelfMetric {
    pub name: &'static str,
    /// Tag names, in the order they are encoded.
    pub tags: &'static [&'static str],
}

const fn metric(name: &'static str, tags: &'static [&'static str]) -> SelfMetric {
    SelfMetric { name, tags }
}

/// Every filter: a configuration refused (the previous one keeps serving).
pub const CONFIG_REJECTED: SelfMetric = metric("wasmixer_config_rejected_total", &[]);

/// deny: one count per rule and outcome (`allow`, `deny`, `error`, `dry_run_deny`, `no_identity`).
pub const POLICY_CHECKS: SelfMetric = metric("wasmixer_policy_checks_total", &["rule", "result"]);
/// deny: header-operation values left out.
pub const POLICY_HEADER_VALUES_SKIPPED: SelfMetric = metric("wasmixer_policy_header_values_skipped_total", &["rule"]);
/// deny: listchecker list fetches by outcome.
pub const POLICY_LIST_FETCHES: SelfMetric = metric("wasmixer_policy_list_fetches_total", &["handler", "result"]);
/// deny: requests without a root, and response edits dropped.
pub const POLICY_LOST: SelfMetric = metric("wasmixer_policy_lost_total", &[]);

/// peer-metadata: exchanges by direction and verification result.
pub const PEER_METADATA: SelfMetric = metric("wasmixer_peer_metadata_total", &["direction", "result"]);

/// metrics: samples the filter could not record, `{metric, reason}` (reason `value`,
/// `dimension` or `range`).
pub const METRIC_SAMPLES_DROPPED: SelfMetric = metric("wasmixer_metric_samples_dropped_total", &["metric", "reason"]);
/// metrics: samples sent to the overflow series because the metric hit its series cap.
pub const METRIC_SERIES_OVERFLOW: SelfMetric = metric("wasmixer_metric_series_overflow_total", &["metric"]);
/// metrics (gauge): distinct series defined so far.
pub const METRIC_SERIES: SelfMetric = metric("wasmixer_metric_series", &["metric"]);
/// metrics: rules whose match could not be evaluated (so they did not match).
pub const METRIC_RULE_ERRORS: SelfMetric = metric("wasmixer_metric_rule_errors_total", &["rule"]);

/// access-log: instances that failed to evaluate.
pub const ACCESS_LOG_INSTANCE_ERRORS: SelfMetric = metric("wasmixer_access_log_instance_errors_total", &["instance"]);
/// access-log: rules whose match failed.
pub const ACCESS_LOG_MATCH_ERRORS: SelfMetric = metric("wasmixer_access_log_match_errors_total", &["rule"]);
/// access-log: lines a collector never received, by reason.
pub const ACCESS_LOG_NETWORK_DROPPED: SelfMetric =
    metric("wasmixer_access_log_network_dropped_lines_total", &["reason"]);

/// The tagged metrics of the telemetry (metrics) filter.
pub const METRICS_FILTER: [SelfMetric; 4] =
    [METRIC_SAMPLES_DROPPED, METRIC_SERIES_OVERFLOW, METRIC_SERIES, METRIC_RULE_ERRORS];

/// Every tagged metric of every filter.
pub const TAGGED: [SelfMetric; 11] = [
    POLICY_CHECKS,
    POLICY_HEADER_VALUES_SKIPPED,
    POLICY_LIST_FETCHES,
    PEER_METADATA,
    METRIC_SAMPLES_DROPPED,
    METRIC_SERIES_OVERFLOW,
    METRIC_SERIES,
    METRIC_RULE_ERRORS,
    ACCESS_LOG_INSTANCE_ERRORS,
    ACCESS_LOG_MATCH_ERRORS,
    ACCESS_LOG_NETWORK_DROPPED,
];

/// Every tag name of `metrics`, each once, in first-seen order.
pub fn tag_names_of(metrics: &[SelfMetric]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for t in metrics.iter().flat_map(|m| m.tags.iter().copied()) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Every tag name the filters encode in their own metrics: what a bootstrap's `stats_tags`
/// needs beyond the user's metric labels.
pub fn tag_names() -> Vec<&'static str> {
    tag_names_of(&TAGGED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_of_every_filter_once() {
        assert_eq!(tag_names(), ["rule", "result", "handler", "direction", "metric", "reason", "instance"]);
        assert_eq!(tag_names_of(&METRICS_FILTER), ["metric", "reason", "rule"]);
        let mut names: Vec<&str> = TAGGED.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TAGGED.len(), "a metric listed twice");
    }
}
