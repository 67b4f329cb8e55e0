//! The files `wasmixer convert` writes (layout in cli/README.md):
//!
//! * `filters/<filter>.json`: each filter's configuration (the JSON the filter reads);
//! * `istio/wasmplugins.yaml`, `istio/security.yaml`, `istio/mesh-config.yaml` (`--format
//!   wasmplugin|both`);
//! * `envoy/inbound-http-filters.json`, `envoy/outbound-http-filters.json`,
//!   `envoy/stats-config.json` (`--format envoy|both`);
//! * `mesh-settings.json` (mTLS, for the mesh harness) and `report.json`.

use std::collections::HashMap;

use serde_json::{json, Map, Value as Json};
use wasmixer_engine::telemetry::metrics::stat_name::stats_tags_json;

use super::context::{Ctx, Format, DEFAULT_WASM_URL, WASM_URL_ADVICE};
use super::emit::{to_yaml, to_yaml_stream};
use super::mixer::{FilterOutput, MixerOutput};
use super::mtls::MtlsOutput;
use super::report::Severity;

/// Every file a conversion may write (stale ones from an earlier run are removed).
pub const ALL_OUTPUTS: &[&str] = &[
    "filters/peer-metadata.json",
    "filters/deny.json",
    "filters/metrics.json",
    "filters/access-log.json",
    "filters/mixer.json",
    "istio/wasmplugins.yaml",
    "istio/wasmplugin-mixer.yaml",
    "istio/security.yaml",
    "istio/mesh-config.yaml",
    "envoy/inbound-http-filters.json",
    "envoy/outbound-http-filters.json",
    "envoy/mixer-http-filter.json",
    "envoy/stats-config.json",
    "mesh-settings.json",
    "report.json",
];

fn pretty(v: &Json) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

fn wasm_url(template: &str, filter: &str, config: &Json) -> String {
    template.replace("{filter}", module_of(filter, config))
}

/// The module a filter loads: for the deny filter, the build without the response phase
/// (`deny-request-only`, one VM call less per request) unless a rule edits responses.
fn module_of<'a>(filter: &'a str, config: &Json) -> &'a str {
    if filter == "deny" && !edits_responses(config) {
        "deny-request-only"
    } else {
        filter
    }
}

/// Whether a filter document has a rule with `responseHeaderOperations`.
fn edits_responses(config: &Json) -> bool {
    let resources = config.get("resources").and_then(Json::as_array).into_iter().flatten();
    resources.filter(|r| r.get("kind").and_then(Json::as_str) == Some("rule")).any(|r| {
        r.pointer("/spec/responseHeaderOperations").and_then(Json::as_array).is_some_and(|ops| !ops.is_empty())
    })
}

/// Phase, failure strategy and traffic side of each filter's WasmPlugin.
fn plugin_settings(filter: &str) -> (&'static str, &'static str, Option<&'static str>) {
    match filter {
        "peer-metadata" => ("AUTHN", "FAIL_CLOSE", None),
        "deny" => ("AUTHZ", "FAIL_CLOSE", Some("SERVER")),
        // Every filter in one: early enough for peer metadata, closed like the deny filter (its
        // deny component checks inbound requests only).
        "mixer" => ("AUTHN", "FAIL_CLOSE", None),
        _ => ("STATS", "FAIL_OPEN", None),
    }
}

fn wasm_plugin(ctx: &Ctx, url: &str, filter: &str, config: &Json) -> Json {
    let (phase, fail, mode) = plugin_settings(filter);
    let mut spec = Map::new();
    spec.insert("url".into(), Json::String(wasm_url(url, filter, config)));
    spec.insert("pluginName".into(), Json::String(format!("wasmixer-{filter}")));
    spec.insert("phase".into(), Json::String(phase.into()));
    spec.insert("failStrategy".into(), Json::String(fail.into()));
    if let Some(m) = mode {
        spec.insert("match".into(), json!([{"mode": m}]));
    }
    spec.insert("pluginConfig".into(), config.clone());
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": format!("wasmixer-{filter}"), "namespace": ctx.opts.config_namespace},
        "spec": spec,
    })
}

/// `config` with `metrics.skip_metrics` naming `standard` (nothing to skip: unchanged).
fn leave_to_istio(config: &Json, standard: &[String]) -> Json {
    let mut config = config.clone();
    if let (false, Some(doc)) = (standard.is_empty(), config.as_object_mut()) {
        let section = doc.entry("metrics").or_insert_with(|| json!({}));
        if let Some(section) = section.as_object_mut() {
            section.insert("skip_metrics".into(), json!(standard));
        }
    }
    config
}

/// An `envoy.filters.http.wasm` entry, as the integration harness builds them.
fn envoy_filter(filter: &str, path: &str, config: &Json) -> Json {
    let name = format!("wasmixer-{filter}");
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": name,
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": config.to_string()},
                "vm_config": {"vm_id": name, "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": path}}},
            },
        },
    })
}

/// The filters' configurations as one document for `mixer.wasm`: their resources (each once)
/// and their option sections.
fn mixer_document(configs: &[(&str, &Json)]) -> Json {
    let mut doc = Map::new();
    let mut resources: Vec<Json> = Vec::new();
    // The resources seen, by kind, namespace and name: a resource is compared only with those
    // of its own identity (comparing each with every earlier one made 10,000 rules take
    // minutes).
    let mut seen: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    for (_, config) in configs {
        let Some(obj) = config.as_object() else { continue };
        for (k, v) in obj {
            if k == "resources" {
                for r in v.as_array().into_iter().flatten() {
                    let same = seen.entry(resource_identity(r)).or_default();
                    if !same.iter().any(|&i| resources.get(i) == Some(r)) {
                        same.push(resources.len());
                        resources.push(r.clone());
                    }
                }
            } else {
                doc.insert(k.clone(), v.clone());
            }
        }
    }
    doc.insert("resources".into(), Json::Array(resources));
    Json::Object(doc)
}

/// A resource's kind, namespace and name (empty when absent).
fn resource_identity(r: &Json) -> (&str, &str, &str) {
    fn text(v: Option<&Json>) -> &str {
        v.and_then(Json::as_str).unwrap_or("")
    }
    let meta = r.get("metadata");
    (text(r.get("kind")), text(meta.and_then(|m| m.get("namespace"))), text(meta.and_then(|m| m.get("name"))))
}

/// Every tag name Envoy must extract, with the families that carry them (for the suffix check).
fn tag_families(filters: &[&FilterOutput]) -> Vec<(String, Vec<String>)> {
    let mut families: Vec<(String, Vec<String>)> = Vec::new();
    for f in filters {
        families.extend(f.families.iter().cloned());
    }
    // Every filter's own metrics: one bootstrap serves the whole chain (or mixer.wasm).
    if !filters.is_empty() {
        for m in wasmixer_engine::self_metrics::TAGGED {
            families.push((m.name.to_string(), m.tags.iter().map(|t| t.to_string()).collect()));
        }
    }
    families.sort();
    families.dedup();
    families
}

/// Envoy applies every `stats_tags` regex to every stat name: a tag name that ends another
/// metric's label would cut a bogus label out of it (the metrics filter checks its own metrics;
/// this checks them against the other filters' metrics too).
fn check_tags(ctx: &mut Ctx, families: &[(String, Vec<String>)], names: &[String]) {
    for (metric, tags) in families {
        for (pos, long) in tags.iter().enumerate() {
            for short in names {
                if short == long || !long.ends_with(short.as_str()) {
                    continue;
                }
                if tags.iter().position(|t| t == short).is_none_or(|p| p >= pos) {
                    ctx.global(
                        Severity::Error,
                        format!("label {long:?} of metric {metric} ends with {short:?}, a tag of another metric: Envoy's stats_tags regex for {short:?} would also match inside {long:?}; rename the label"),
                    );
                }
            }
        }
    }
}

pub fn files(ctx: &mut Ctx, mixer: &MixerOutput, mtls: &MtlsOutput) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    let filters: Vec<&FilterOutput> = mixer.filters.iter().collect();
    let fmt = ctx.opts.format;
    // Envoy fragments load modules from local files: a given file:// URL (or path), else the
    // default path; an oci:// or https:// URL is for the WasmPlugins only.
    let local = |url: &str| {
        url.strip_prefix("file://").map(str::to_string).or_else(|| url.starts_with('/').then(|| url.to_string()))
    };
    let envoy_path = match &ctx.opts.wasm_url {
        Some(url) if fmt == Format::Envoy && local(url).is_none() && !filters.is_empty() => {
            ctx.global(Severity::Error, format!("--wasm-url {url} is not a file:// URL or an absolute path: Envoy bootstraps load modules from local files (use --format wasmplugin for oci:// or https:// URLs)"));
            return files;
        }
        Some(url) => local(url).or_else(|| local(DEFAULT_WASM_URL)),
        None => local(DEFAULT_WASM_URL),
    };
    if let (Some(url), true) =
        (&ctx.opts.wasm_url, fmt == Format::Both && !filters.is_empty() && !ctx.opts.validate_only)
    {
        if local(url).is_none() {
            ctx.global(Severity::Note, format!("--wasm-url {url} is for the WasmPlugins; the Envoy fragments (envoy/) load the modules from local files, {DEFAULT_WASM_URL}"));
        }
    }
    let plugin_url = match (&ctx.opts.wasm_url, fmt) {
        (Some(url), _) => Some(url.clone()),
        (None, _) if ctx.opts.validate_only => Some(DEFAULT_WASM_URL.to_string()),
        (None, Format::WasmPlugin) if !filters.is_empty() => {
            ctx.global(Severity::Error, format!("WasmPlugins need --wasm-url: {WASM_URL_ADVICE}"));
            return files;
        }
        (None, _) => None,
    };
    if let (Some(url), true) = (&plugin_url, fmt.istio() && !filters.is_empty() && !ctx.opts.validate_only) {
        if url.starts_with("file://") {
            ctx.global(Severity::Note, format!("--wasm-url {url}: a file:// URL must exist inside every istio-proxy container (a FAIL_CLOSE plugin whose module cannot be read refuses that sidecar's traffic); mount the modules with the pod annotations sidecar.istio.io/userVolume and sidecar.istio.io/userVolumeMount"));
        }
    }

    // Filters, peer-metadata first (the others read the peer it verifies).
    let peer_config = json!({});
    let mut all: Vec<(&str, &Json)> = Vec::new();
    if !filters.is_empty() {
        all.push(("peer-metadata", &peer_config));
    }
    for f in &filters {
        all.push((f.filter.name(), &f.config));
    }
    for (name, config) in &all {
        files.push((format!("filters/{name}.json"), pretty(config)));
        if module_of(name, config) != *name {
            ctx.global(
                Severity::Note,
                format!("{name}: no rule edits responses, so the filter loads {}.wasm (no response phase: one VM call less per request); a rule with responseHeaderOperations needs {name}.wasm", module_of(name, config)),
            );
        }
    }
    let mixer = (!filters.is_empty()).then(|| mixer_document(&all));
    if let Some(doc) = &mixer {
        files.push(("filters/mixer.json".to_string(), pretty(doc)));
    }

    // Stats: tags, buckets, and the global tag check.
    let families = tag_families(&filters);
    let mut tag_names: Vec<String> = Vec::new();
    for f in &filters {
        for (_, labels) in &f.families {
            for l in labels {
                if !tag_names.contains(l) {
                    tag_names.push(l.clone());
                }
            }
        }
    }
    for (_, tags) in &families {
        for t in tags {
            if !tag_names.contains(t) {
                tag_names.push(t.clone());
            }
        }
    }
    check_tags(ctx, &families, &tag_names);
    let buckets: Vec<Json> = filters.iter().flat_map(|f| f.histogram_buckets.iter().cloned()).collect();
    let user_metrics: Vec<&str> = filters.iter().flat_map(|f| f.families.iter().map(|(n, _)| n.as_str())).collect();

    if fmt.istio() && !all.is_empty() && plugin_url.is_none() {
        ctx.global(
            Severity::Warning,
            format!("no WasmPlugins written (istio/): they have no default module URL; {WASM_URL_ADVICE}"),
        );
    }
    if let (true, Some(url)) = (fmt.istio() && !all.is_empty(), plugin_url.as_deref()) {
        // Istio's standard metrics are Istio's: its own telemetry exports them natively.
        let standard: Vec<String> = filters.iter().flat_map(|f| f.istio_standard.iter().cloned()).collect();
        let istio_configs: Vec<(&str, Json)> = all
            .iter()
            .map(|(name, config)| {
                (*name, if *name == "metrics" { leave_to_istio(config, &standard) } else { (*config).clone() })
            })
            .collect();
        let istio_all: Vec<(&str, &Json)> = istio_configs.iter().map(|(n, c)| (*n, c)).collect();
        let plugins: Vec<Json> = istio_all.iter().map(|(name, config)| wasm_plugin(ctx, url, name, config)).collect();
        files.push(("istio/wasmplugins.yaml".to_string(), to_yaml_stream(&plugins)));
        if mixer.is_some() {
            let doc = mixer_document(&istio_all);
            let header = "# Alternative to wasmplugins.yaml (apply one or the other, never both): every filter in one\n\
                          # WasmPlugin running mixer.wasm, which costs less per request (README: One filter or four).\n";
            files.push((
                "istio/wasmplugin-mixer.yaml".to_string(),
                format!("{header}{}", to_yaml(&wasm_plugin(ctx, url, "mixer", &doc))),
            ));
        }
        if !standard.is_empty() {
            let kept =
                if fmt.envoy() { "; the Envoy fragments (stock Envoy, no Istio telemetry) keep them" } else { "" };
            ctx.global(
                Severity::Note,
                format!("metrics {} are left to Istio in the WasmPlugins (metrics.skip_metrics): current Istio's own telemetry exports them natively, and a second producer would give Prometheus two series families of one name with different labels{kept}", standard.join(", ")),
            );
        }
        if !user_metrics.is_empty() {
            files.push(("istio/mesh-config.yaml".to_string(), mesh_config(ctx, &tag_names, &buckets)));
        }
    }
    if fmt.istio() && !mtls.resources.is_empty() {
        files.push(("istio/security.yaml".to_string(), to_yaml_stream(&mtls.resources)));
    }
    if let (true, Some(dir)) = (fmt.envoy() && !all.is_empty(), envoy_path) {
        let entry =
            |name: &str, config: &Json| envoy_filter(name, &dir.replace("{filter}", module_of(name, config)), config);
        let inbound: Vec<Json> = all.iter().map(|(n, c)| entry(n, c)).collect();
        let outbound: Vec<Json> =
            all.iter().filter(|(n, _)| plugin_settings(n).2 != Some("SERVER")).map(|(n, c)| entry(n, c)).collect();
        files.push(("envoy/inbound-http-filters.json".to_string(), pretty(&Json::Array(inbound))));
        files.push(("envoy/outbound-http-filters.json".to_string(), pretty(&Json::Array(outbound))));
        if let Some(doc) = &mixer {
            files.push(("envoy/mixer-http-filter.json".to_string(), pretty(&entry("mixer", doc))));
        }
        let tags: Vec<&str> = tag_names.iter().map(String::as_str).collect();
        let mut stats = Map::new();
        stats.insert("stats_tags".into(), stats_tags_json(&tags));
        if !buckets.is_empty() {
            stats.insert("histogram_bucket_settings".into(), Json::Array(buckets.clone()));
        }
        files.push(("envoy/stats-config.json".to_string(), pretty(&json!({"stats_config": stats}))));
    }
    if !mtls.servers.is_empty() || !mtls.clients.is_empty() {
        let settings = json!({
            "schema": "wasmixer/mesh-settings/v1",
            "root_namespace": ctx.opts.config_namespace,
            "servers": mtls.servers,
            "clients": mtls.clients,
        });
        files.push(("mesh-settings.json".to_string(), pretty(&settings)));
    }
    files
}

/// `istio/mesh-config.yaml`: an IstioOperator overlay that exposes the metric tags.
fn mesh_config(ctx: &mut Ctx, tags: &[String], buckets: &[Json]) -> String {
    let mut header = String::from(
        "# Istio mesh settings for wasmixer's metrics: merge into your IstioOperator (istioctl install -f),\n\
         # or set the same fields in the mesh ConfigMap's defaultConfig. extraStatTags makes the proxies'\n\
         # bootstraps turn the tags encoded in wasmixer's stat names back into Prometheus labels;\n\
         # proxyStatsMatcher keeps wasmixer's stats (prefix wasmcustom.) in the proxies' output.\n",
    );
    let lists: Vec<&Json> = buckets.iter().filter_map(|b| b.get("buckets")).collect();
    if let Some(first) = lists.first() {
        if lists.iter().all(|l| l == first) {
            header.push_str(&format!(
                "# Histogram buckets: annotate the workloads' pods with\n#   sidecar.istio.io/statsHistogramBuckets: '{{\"wasmcustom\":{first}}}'\n"
            ));
        } else {
            ctx.global(
                Severity::Warning,
                "the distributions have different buckets and Istio's statsHistogramBuckets annotation matches stat-name prefixes only: give the proxies envoy/stats-config.json through a custom bootstrap (sidecar.istio.io/bootstrapOverride) to keep every metric's buckets",
            );
        }
    }
    let doc = json!({
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "metadata": {"name": "wasmixer-metrics", "namespace": ctx.opts.config_namespace},
        "spec": {"meshConfig": {"defaultConfig": {
            "extraStatTags": tags,
            "proxyStatsMatcher": {"inclusionPrefixes": ["wasmcustom."]},
        }}},
    });
    header + &to_yaml(&doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deny_filter_loads_the_request_only_build_unless_a_rule_edits_responses() {
        let checks = json!({"resources": [
            {"kind": "rule", "metadata": {"name": "r"}, "spec": {"match": "true", "requestHeaderOperations": [{"name": "x", "values": ["\"1\""]}]}},
            {"kind": "rule", "metadata": {"name": "empty"}, "spec": {"responseHeaderOperations": []}}
        ]});
        assert_eq!(module_of("deny", &checks), "deny-request-only");
        let edits = json!({"resources": [
            {"kind": "rule", "metadata": {"name": "tag"}, "spec": {"responseHeaderOperations": [{"name": "x-policy", "values": ["\"w\""]}]}}
        ]});
        assert_eq!(module_of("deny", &edits), "deny");
        assert_eq!(module_of("metrics", &checks), "metrics");
    }

    /// Resources shared by the filters appear once in the mixer document, in their order; and
    /// 2 x 20,000 resources merge in linear time (comparing each with every earlier one took
    /// minutes, a guard without a timed assertion).
    #[test]
    fn the_mixer_document_takes_each_resource_once() {
        let n = 20_000;
        let rule = |i: usize| json!({"kind": "rule", "metadata": {"name": format!("r{i}"), "namespace": "ns"}, "spec": {"match": "true"}});
        let deny = json!({"config_namespace": "istio-system", "resources": (0..n).map(rule).collect::<Vec<_>>()});
        let mut shared: Vec<Json> = (n / 2..n + n / 2).map(rule).collect();
        // Same identity, other content: kept, after the first.
        shared.push(json!({"kind": "rule", "metadata": {"name": "r0", "namespace": "ns"}, "spec": {"match": "false"}}));
        let metrics = json!({"metrics": {"x": 1}, "resources": shared});
        let doc = mixer_document(&[("deny", &deny), ("metrics", &metrics)]);
        let resources = doc["resources"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert_eq!(resources.len(), n + n / 2 + 1);
        assert_eq!(resources[n], rule(n));
        assert_eq!(resources[n + n / 2]["spec"]["match"], "false");
        assert_eq!(doc["metrics"], json!({"x": 1}));
    }
}
