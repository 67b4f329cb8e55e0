//! Mixer resources (handler / instance / rule, current and legacy kinds) grouped per filter and
//! validated with the filters' own compilers: rules with `denier` / `listchecker` actions (and
//! header operations) go to the deny filter, `prometheus` to the metrics filter, `stdio` to the
//! access-log filter. Adapters and templates wasmixer does not implement are reported by name
//! and their actions are left out; everything else still converts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Map, Value as Json};
use wasmixer_engine::config::error::expression_suffix;
use wasmixer_engine::config::expressions::compile_field;
use wasmixer_engine::config::registry::{self, Component, Module, Support, KUBERNETESENV_SUPERSEDED};
use wasmixer_engine::config::resource::{classify, ResourceClass};
use wasmixer_engine::config::snapshot::{candidates, key};
use wasmixer_engine::config::{ConfigError, ConfigErrors, FilterConfig, Resource, Snapshot};
use wasmixer_engine::expr::{Manifest, ValueType};
use wasmixer_engine::policy::deny::CheckHandler;
use wasmixer_engine::policy::DenyPlan;
use wasmixer_engine::telemetry::logs::plan::LogPlan;
use wasmixer_engine::telemetry::metrics::plan::MetricPlan;

use super::context::{Ctx, Object};
use super::report::Severity;

/// The filters a Mixer configuration becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Filter {
    Deny,
    Metrics,
    AccessLog,
}

impl Filter {
    pub const ALL: [Filter; 3] = [Filter::Deny, Filter::Metrics, Filter::AccessLog];

    pub fn name(self) -> &'static str {
        match self {
            Filter::Deny => "deny",
            Filter::Metrics => "metrics",
            Filter::AccessLog => "access-log",
        }
    }
}

/// One filter's configuration, ready to be written.
#[derive(Clone, Debug)]
pub struct FilterOutput {
    pub filter: Filter,
    /// The filter's JSON configuration (a WasmPlugin's `pluginConfig`).
    pub config: Json,
    /// For metrics: `(name, labels)` of every metric family.
    pub families: Vec<(String, Vec<String>)>,
    /// For metrics: Mixer's full names of the families current Istio's own telemetry also
    /// exports (its standard metrics), left to Istio in WasmPlugins.
    pub istio_standard: Vec<String>,
    /// For metrics: Envoy's `histogram_bucket_settings`.
    pub histogram_buckets: Vec<Json>,
}

/// Where a handler's or instance's work goes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    Filter(Filter),
    /// Done another way in wasmixer (the reason says how); not an omission.
    Superseded(&'static str),
    /// Not implemented: reported, left out, the output is incomplete.
    Unsupported(String),
}

impl Filter {
    /// The filter of a registry component; `None` for peer-metadata, which no Mixer resource
    /// configures.
    fn of(component: Component) -> Option<Filter> {
        match component {
            Component::Deny => Some(Filter::Deny),
            Component::Metrics => Some(Filter::Metrics),
            Component::AccessLog => Some(Filter::AccessLog),
            Component::PeerMetadata => None,
        }
    }
}

/// `a, b and c`.
fn and_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The route of a registry row; `what` is `adapter` or `template`, for the message.
fn route<S: Copy>(what: &str, name: &str, support: Option<Support<S>>, component: impl Fn(S) -> Component) -> Route {
    let hint = match support {
        // (No adapter or template is served by peer-metadata, which no Mixer resource configures.)
        Some(Support::Served(s)) => match Filter::of(component(s)) {
            Some(f) => return Route::Filter(f),
            None => "",
        },
        Some(Support::Superseded { why, .. }) => return Route::Superseded(why),
        Some(Support::Unsupported { hint }) => hint,
        None => "",
    };
    let sep = if hint.is_empty() { "" } else { "; " };
    Route::Unsupported(format!("{what} {name} is not implemented by wasmixer{sep}{hint}"))
}

fn adapter_route(adapter: &str, out_of_process: bool) -> Route {
    if out_of_process {
        let compiled = and_list(registry::served_adapters().map(|a| a.name));
        return Route::Unsupported(format!(
            "out-of-process adapter {adapter}: wasmixer runs only the compiled-in {compiled} adapters"
        ));
    }
    route("adapter", adapter, registry::adapter(adapter).map(|a| a.support), Module::component)
}

fn template_route(template: &str) -> Route {
    route("template", template, registry::template(template).map(|t| t.support), |c| c)
}

/// A Mixer resource taken into the conversion.
struct Entry<'o> {
    obj: &'o Object,
    label: String,
    class: ResourceClass,
}

/// Instance fields that hold expressions, per template, relative to the params (see
/// [`registry::TemplateRow::expressions`]): (single fields with their type, map fields).
fn expression_fields(template: &str) -> (&'static [(&'static str, Option<ValueType>)], &'static [&'static str]) {
    registry::template(template).map_or((&[], &[]), |t| (t.expressions, t.expression_maps))
}

/// A scalar written where an expression belongs (`value: 2`, `response_code: 200`) is the
/// expression with that text.
fn as_expression(ctx: &Ctx, obj: &Object, path: &str, v: &mut Json) {
    if matches!(v, Json::Number(_) | Json::Bool(_)) {
        let text = ctx.scalar_text(obj, path).unwrap_or_else(|| v.to_string());
        *v = Json::String(text);
    }
}

fn instance_template(obj: &Object) -> Option<String> {
    if obj.kind == "instance" {
        let spec = obj.spec();
        ["compiledTemplate", "compiled_template", "template"]
            .iter()
            .find_map(|k| spec.get(*k).and_then(Json::as_str))
            .map(str::to_string)
    } else {
        Some(obj.kind.clone())
    }
}

/// The params of a handler or instance, and their path: `spec.params` for `kind: handler` /
/// `kind: instance`, the whole `spec` for legacy kinds.
fn params_path(obj: &Object) -> &'static str {
    if obj.kind == "handler" || obj.kind == "instance" {
        "spec.params"
    } else {
        "spec"
    }
}

/// The resource as the filters get it: apiVersion, kind, metadata {name, namespace}, spec, with
/// scalar expressions turned into text.
fn normalized(ctx: &Ctx, obj: &Object, class: ResourceClass) -> Json {
    let mut spec = match obj.value.get("spec") {
        Some(s @ Json::Object(_)) => s.clone(),
        _ => Json::Object(Map::new()),
    };
    match class {
        ResourceClass::Rule => {
            if let Some(m) = spec.get_mut("match") {
                as_expression(ctx, obj, "spec.match", m);
            }
            for ops in ["requestHeaderOperations", "responseHeaderOperations"] {
                if let Some(Json::Array(list)) = spec.get_mut(ops) {
                    for (i, op) in list.iter_mut().enumerate() {
                        if let Some(Json::Array(values)) = op.get_mut("values") {
                            for (j, v) in values.iter_mut().enumerate() {
                                as_expression(ctx, obj, &format!("spec.{ops}[{i}].values[{j}]"), v);
                            }
                        }
                    }
                }
            }
        }
        ResourceClass::Instance => {
            let template = instance_template(obj).unwrap_or_default();
            let (singles, maps) = expression_fields(&template);
            let base = params_path(obj);
            let params = if base == "spec" { Some(&mut spec) } else { spec.get_mut("params") };
            if let Some(params) = params {
                for (f, _) in singles {
                    if let Some(v) = params.get_mut(*f) {
                        as_expression(ctx, obj, &format!("{base}.{f}"), v);
                    }
                }
                for f in maps {
                    if let Some(Json::Object(m)) = params.get_mut(*f) {
                        for (k, v) in m.iter_mut() {
                            as_expression(ctx, obj, &format!("{base}.{f}.{k}"), v);
                        }
                    }
                }
            }
        }
        _ => {}
    }
    let mut out = Map::new();
    if let Some(v) = &obj.api_version {
        out.insert("apiVersion".into(), Json::String(v.clone()));
    }
    out.insert("kind".into(), Json::String(obj.kind.clone()));
    out.insert("metadata".into(), json!({"name": obj.name, "namespace": ctx.namespace_of(obj)}));
    out.insert("spec".into(), spec);
    Json::Object(out)
}

/// What [`convert`] produces.
#[derive(Debug, Default)]
pub struct MixerOutput {
    pub filters: Vec<FilterOutput>,
}

/// Error positions of one filter's configuration back in the user's documents.
#[derive(Default)]
struct Origins {
    /// Resource key -> entry index.
    by_label: HashMap<String, usize>,
    /// (filter, rule key) -> original action index of each kept action.
    actions: HashMap<(Option<Filter>, String), Vec<usize>>,
}

pub fn convert(ctx: &mut Ctx, objects: &[&Object]) -> MixerOutput {
    let (entries, superseded_keys) = sort_entries(ctx, objects);
    let mut resources = parse_resources(ctx, &entries, &superseded_keys);
    let mut origins = Origins::default();
    for (i, e) in entries.iter().enumerate() {
        origins.by_label.insert(e.label.clone(), i);
    }
    let Some(snap) = resolve(ctx, &entries, &origins, &mut resources) else {
        return MixerOutput::default();
    };
    let index = Index::new(&entries, &resources, &snap);
    let mut routed = route_rules(ctx, &entries, &snap, &index, &mut origins);
    report_unused(ctx, &entries, &origins, &snap, &index, &routed);
    let mut out = MixerOutput::default();
    for filter in Filter::ALL {
        let rules = routed.kept.remove(&filter).unwrap_or_default();
        let used = &routed.used_handlers;
        if let Some(f) = filter_output(ctx, filter, rules, &entries, &origins, &resources, &snap, &index, used) {
            out.filters.push(f);
        }
    }
    out
}

/// Each entry's resource, as JSON and parsed; `None` when it is not a valid resource or was left
/// out after errors.
type Resources = Vec<Option<(Json, Resource)>>;

/// Step 1: the objects Mixer would have loaded, each once; the others are reported (ignored,
/// unsupported, duplicate), and the keys of superseded legacy `kubernetes` instances returned.
fn sort_entries<'o>(ctx: &mut Ctx, objects: &[&'o Object]) -> (Vec<Entry<'o>>, Vec<String>) {
    let mut entries: Vec<Entry> = Vec::new();
    let mut first_at: HashMap<String, usize> = HashMap::new();
    let mut superseded_keys: Vec<String> = Vec::new();
    for obj in objects {
        let ns = ctx.namespace_of(obj);
        let label = key(&obj.name, &obj.kind, &ns);
        let Some(class) = classify(&obj.kind) else {
            let legacy: Vec<&str> = registry::served_adapters()
                .map(|a| a.name)
                .chain(registry::served_templates().filter(|t| t.legacy_kind).map(|t| t.name))
                .collect();
            ctx.at(Severity::Error, obj, Some(&label), Some("kind"), format!(
                "unknown kind {} for {}: Mixer's kinds are handler, instance, rule, attributemanifest and the legacy adapter and template kinds ({}, ...)",
                obj.kind,
                obj.api_version.as_deref().unwrap_or("config.istio.io/v1alpha2"),
                legacy.join(", ")
            ));
            continue;
        };
        match obj.kind.as_str() {
            "attributemanifest" => {
                ctx.at(
                    Severity::Note,
                    obj,
                    Some(&label),
                    None,
                    "ignored: the attribute vocabulary is built into wasmixer (envoy-config/ATTRIBUTES.md)",
                );
                continue;
            }
            "adapter" | "template" => {
                ctx.at(
                    Severity::Note,
                    obj,
                    Some(&label),
                    None,
                    "ignored: metadata of an out-of-process adapter or template",
                );
                continue;
            }
            "HTTPAPISpec" | "HTTPAPISpecBinding" => {
                ctx.at(Severity::Unsupported, obj, Some(&label), None, format!("{}: API operation attributes (api.operation, api.version, ...) are not implemented by wasmixer", obj.kind));
                continue;
            }
            "QuotaSpec" | "QuotaSpecBinding" => {
                ctx.at(
                    Severity::Unsupported,
                    obj,
                    Some(&label),
                    None,
                    format!("{}: quotas are not implemented by wasmixer; use Envoy's rate limit filters", obj.kind),
                );
                continue;
            }
            "kubernetes" => {
                // The legacy attribute-generation instance kind (shared code files it as a handler).
                ctx.at(Severity::Note, obj, Some(&label), None, format!("not converted: {KUBERNETESENV_SUPERSEDED}"));
                superseded_keys.push(label);
                continue;
            }
            _ => {}
        }
        if let Some(&first) = first_at.get(&label) {
            let other = entries.get(first).map(|e| ctx.describe(e.obj)).unwrap_or_default();
            ctx.at(
                Severity::Error,
                obj,
                Some(&label),
                Some("metadata.name"),
                format!("duplicate resource: {label} is also declared at {other}"),
            );
            continue;
        }
        first_at.insert(label.clone(), entries.len());
        entries.push(Entry { obj, label, class });
    }
    (entries, superseded_keys)
}

/// Step 2: each entry as a resource for the shared resolver (`None` when it is not one),
/// references to superseded legacy instances removed.
fn parse_resources(ctx: &mut Ctx, entries: &[Entry], superseded_keys: &[String]) -> Resources {
    let mut resources: Vec<Option<(Json, Resource)>> = Vec::new();
    for e in entries {
        let mut j = normalized(ctx, e.obj, e.class);
        if e.class == ResourceClass::Rule && !superseded_keys.is_empty() {
            let ns = ctx.namespace_of(e.obj);
            if let Some(Json::Array(actions)) = j.pointer_mut("/spec/actions") {
                for a in actions.iter_mut() {
                    if let Some(Json::Array(insts)) = a.get_mut("instances") {
                        insts.retain(|i| {
                            !i.as_str().is_some_and(|r| {
                                candidates(r, "instance", &ns).iter().any(|c| superseded_keys.contains(c))
                            })
                        });
                    }
                }
            }
        }
        match serde_json::from_value::<Resource>(j.clone()) {
            Ok(r) => resources.push(Some((j, r))),
            Err(err) => {
                ctx.at(Severity::Error, e.obj, Some(&e.label), None, format!("not a valid resource: {err}"));
                resources.push(None);
            }
        }
    }
    resources
}

/// Step 3: resolves; a resource with errors is reported and left out, and the rest resolved
/// again so that every problem is found in one run.
fn resolve(ctx: &mut Ctx, entries: &[Entry], origins: &Origins, resources: &mut Resources) -> Option<Snapshot> {
    let mut snap = None;
    for _ in 0..8 {
        let list: Vec<Resource> = resources.iter().flatten().map(|(_, r)| r.clone()).collect();
        match Snapshot::resolve(&list, &ctx.opts.namespace, &ctx.opts.config_namespace) {
            Ok(s) => {
                snap = Some(s);
                break;
            }
            Err(ConfigErrors(errs)) => {
                for err in &errs {
                    report_config_error(ctx, entries, origins, None, err, Severity::Error);
                }
                let bad: BTreeSet<String> = errs.iter().map(|e| strip_index(&e.resource).to_string()).collect();
                for (i, slot) in resources.iter_mut().enumerate() {
                    if entries.get(i).is_some_and(|e| bad.contains(&e.label)) {
                        *slot = None;
                    }
                }
            }
        }
    }
    snap
}

/// Snapshot index -> entry index, per class (the resolver keeps the input order), and where
/// each handler goes.
struct Index {
    handler_entry: Vec<usize>,
    instance_entry: Vec<usize>,
    rule_entry: Vec<usize>,
    handler_routes: Vec<Route>,
}

impl Index {
    fn new(entries: &[Entry], resources: &Resources, snap: &Snapshot) -> Index {
        let live: Vec<usize> = resources.iter().enumerate().filter(|(_, r)| r.is_some()).map(|(i, _)| i).collect();
        let of_class = |class: ResourceClass| -> Vec<usize> {
            live.iter().copied().filter(|&i| entries.get(i).is_some_and(|e| e.class == class)).collect()
        };
        let handler_entry = of_class(ResourceClass::Handler);
        let instance_entry = of_class(ResourceClass::Instance);
        let rule_entry = of_class(ResourceClass::Rule);

        let handler_routes: Vec<Route> = snap
            .handlers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let oop = handler_entry.get(i).and_then(|&e| entries.get(e)).is_some_and(|e| {
                    e.obj.kind == "handler"
                        && e.obj.spec().get("compiledAdapter").is_none()
                        && e.obj.spec().get("compiled_adapter").is_none()
                });
                adapter_route(&h.adapter, oop)
            })
            .collect();
        Index { handler_entry, instance_entry, rule_entry, handler_routes }
    }
}

/// What the rules' actions go to: per filter, (rule, its actions); and which handlers and
/// instances some action uses.
struct Routed {
    kept: BTreeMap<Filter, Vec<(usize, Vec<usize>)>>,
    used_handlers: BTreeSet<usize>,
    used_instances: BTreeSet<usize>,
}

/// Step 4: distributes the rules' actions over the filters, reporting those no filter takes.
fn route_rules(ctx: &mut Ctx, entries: &[Entry], snap: &Snapshot, index: &Index, origins: &mut Origins) -> Routed {
    let Index { rule_entry, handler_routes, .. } = index;
    let mut kept: BTreeMap<Filter, Vec<(usize, Vec<usize>)>> = BTreeMap::new();
    let mut used_handlers: BTreeSet<usize> = BTreeSet::new();
    let mut used_instances: BTreeSet<usize> = BTreeSet::new();
    for (ri, rule) in snap.rules.iter().enumerate() {
        let Some(entry) = rule_entry.get(ri).and_then(|&e| entries.get(e)) else {
            continue;
        };
        let mut per_filter: BTreeMap<Filter, Vec<usize>> = BTreeMap::new();
        for (ai, action) in rule.actions.iter().enumerate() {
            used_handlers.insert(action.handler);
            used_instances.extend(action.instances.iter().copied());
            let Some(h) = snap.handlers.get(action.handler) else {
                continue;
            };
            match handler_routes.get(action.handler) {
                Some(Route::Filter(f)) => {
                    per_filter.entry(*f).or_default().push(ai);
                }
                Some(Route::Superseded(why)) => {
                    ctx.at(
                        Severity::Note,
                        entry.obj,
                        Some(&entry.label),
                        Some(&format!("spec.actions[{ai}]")),
                        format!("not converted: handler {} ({}): {why}", h.label(), h.adapter),
                    );
                }
                Some(Route::Unsupported(why)) => {
                    ctx.at(
                        Severity::Unsupported,
                        entry.obj,
                        Some(&entry.label),
                        Some(&format!("spec.actions[{ai}].handler")),
                        format!("this action is not converted: handler {}: {why}", h.label()),
                    );
                }
                None => {}
            }
        }
        let compact: String = rule.match_source.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.contains("context.protocol==\"tcp\"") && !per_filter.is_empty() {
            ctx.at(
                Severity::Warning,
                entry.obj,
                Some(&entry.label),
                Some("spec.match"),
                "a TCP rule: wasmixer's filters are HTTP filters and never see TCP connections, so it is converted but never matches",
            );
        }
        let has_headers = ["requestHeaderOperations", "responseHeaderOperations"]
            .iter()
            .any(|k| rule.spec.get(*k).is_some_and(|v| !v.is_null()));
        if has_headers {
            per_filter.entry(Filter::Deny).or_default();
        } else if rule.actions.is_empty() {
            ctx.at(
                Severity::Warning,
                entry.obj,
                Some(&entry.label),
                Some("spec.actions"),
                "the rule has no actions and no header operations: it does nothing and is not converted",
            );
        }
        for (f, actions) in per_filter {
            origins.actions.insert((Some(f), entry.label.clone()), actions.clone());
            kept.entry(f).or_default().push((ri, actions));
        }
    }
    Routed { kept, used_handlers, used_instances }
}

/// Step 5: resources nobody uses: Mixer loaded them but they did nothing. (After errors, a
/// resource may only look unused because the rule that uses it was rejected: no warning then.)
fn report_unused(ctx: &mut Ctx, entries: &[Entry], origins: &Origins, snap: &Snapshot, index: &Index, routed: &Routed) {
    let Index { handler_entry, instance_entry, handler_routes, .. } = index;
    let Routed { used_handlers, used_instances, .. } = routed;
    let quiet = ctx.report.has_errors();
    for hi in 0..snap.handlers.len() {
        if used_handlers.contains(&hi) {
            continue;
        }
        let Some(e) = handler_entry.get(hi).and_then(|&e| entries.get(e)) else {
            continue;
        };
        match handler_routes.get(hi) {
            Some(Route::Filter(_)) if !quiet => ctx.at(
                Severity::Warning,
                e.obj,
                Some(&e.label),
                None,
                "not used by any rule: it did nothing in Mixer and is not converted",
            ),
            Some(Route::Superseded(why)) => {
                ctx.at(Severity::Note, e.obj, Some(&e.label), None, format!("not converted: {why}"))
            }
            Some(Route::Unsupported(why)) => ctx.at(
                Severity::Note,
                e.obj,
                Some(&e.label),
                None,
                format!("not converted ({why}); no rule uses it, so nothing is lost"),
            ),
            _ => {}
        }
    }
    for (ii, inst) in snap.instances.iter().enumerate() {
        let Some(e) = instance_entry.get(ii).and_then(|&e| entries.get(e)) else {
            continue;
        };
        match template_route(&inst.template) {
            Route::Superseded(why) => {
                ctx.at(Severity::Note, e.obj, Some(&e.label), None, format!("not converted: {why}"));
                continue;
            }
            Route::Unsupported(why) if !used_instances.contains(&ii) => {
                ctx.at(
                    Severity::Note,
                    e.obj,
                    Some(&e.label),
                    None,
                    format!("not converted ({why}); no rule uses it, so nothing is lost"),
                );
                continue;
            }
            _ => {}
        }
        if !used_instances.contains(&ii) {
            if !quiet {
                ctx.at(
                    Severity::Warning,
                    e.obj,
                    Some(&e.label),
                    None,
                    "not used by any rule: it did nothing in Mixer and is not converted",
                );
            }
            for err in check_instance_fields(inst, Manifest::istio()) {
                report_config_error(ctx, entries, origins, None, &err, Severity::Error);
            }
        }
    }
}

/// Step 6: one filter's configuration, compiled by the filter's own code: its rules (with only
/// their actions to it) and the handlers and instances they use.
#[allow(clippy::too_many_arguments)]
fn filter_output(
    ctx: &mut Ctx,
    filter: Filter,
    rules: Vec<(usize, Vec<usize>)>,
    entries: &[Entry],
    origins: &Origins,
    resources: &Resources,
    snap: &Snapshot,
    index: &Index,
    used_handlers: &BTreeSet<usize>,
) -> Option<FilterOutput> {
    let Index { handler_entry, instance_entry, rule_entry, handler_routes } = index;
    let unused_handlers: Vec<usize> = (0..snap.handlers.len())
        .filter(|h| !used_handlers.contains(h) && handler_routes.get(*h) == Some(&Route::Filter(filter)))
        .collect();
    if rules.is_empty() && unused_handlers.is_empty() {
        return None;
    }
    let mut handlers: BTreeSet<usize> = BTreeSet::new();
    let mut instances: BTreeSet<usize> = BTreeSet::new();
    let mut rule_actions: HashMap<usize, Vec<usize>> = HashMap::new();
    for (ri, actions) in &rules {
        let Some(rule) = snap.rules.get(*ri) else {
            continue;
        };
        for &ai in actions {
            if let Some(a) = rule.actions.get(ai) {
                handlers.insert(a.handler);
                instances.extend(a.instances.iter().copied());
            }
        }
        rule_actions.insert(*ri, actions.clone());
    }
    let pick = |with_unused: bool| -> Vec<Json> {
        let mut list = Vec::new();
        for (ei, slot) in resources.iter().enumerate() {
            let Some((j, _)) = slot else { continue };
            let Some(e) = entries.get(ei) else { continue };
            let include = match e.class {
                ResourceClass::Handler => handler_entry
                    .iter()
                    .position(|&x| x == ei)
                    .is_some_and(|hi| handlers.contains(&hi) || (with_unused && unused_handlers.contains(&hi))),
                ResourceClass::Instance => {
                    instance_entry.iter().position(|&x| x == ei).is_some_and(|ii| instances.contains(&ii))
                }
                ResourceClass::Rule => {
                    let Some(ri) = rule_entry.iter().position(|&x| x == ei) else {
                        continue;
                    };
                    let Some(actions) = rule_actions.get(&ri) else {
                        continue;
                    };
                    let mut r = j.clone();
                    if let Some(spec) = r.get_mut("spec").and_then(Json::as_object_mut) {
                        let original: Vec<Json> =
                            spec.get("actions").and_then(Json::as_array).cloned().unwrap_or_default();
                        let picked: Vec<Json> = actions.iter().filter_map(|&ai| original.get(ai).cloned()).collect();
                        if picked.is_empty() {
                            spec.remove("actions");
                        } else {
                            spec.insert("actions".into(), Json::Array(picked));
                        }
                        if filter != Filter::Deny {
                            spec.remove("requestHeaderOperations");
                            spec.remove("responseHeaderOperations");
                        }
                    }
                    list.push(r);
                    continue;
                }
                ResourceClass::Ignored => false,
            };
            if include {
                list.push(j.clone());
            }
        }
        list
    };
    let config_for = |resources: Vec<Json>| -> Json {
        json!({
            "config_namespace": ctx.opts.config_namespace,
            "default_namespace": ctx.opts.namespace,
            "resources": resources,
        })
    };
    let output_config = config_for(pick(false));
    if !unused_handlers.is_empty() {
        // Validate the unused handlers of this filter's adapters too.
        let validation = config_for(pick(true));
        if let Err(errs) = compile(filter, &validation) {
            for err in &errs.0 {
                report_config_error(ctx, entries, origins, Some(filter), err, Severity::Error);
            }
            return None;
        }
    }
    if rules.is_empty() {
        return None;
    }
    match compile(filter, &output_config) {
        Err(errs) => {
            for err in &errs.0 {
                report_config_error(ctx, entries, origins, Some(filter), err, Severity::Error);
            }
            None
        }
        Ok(compiled) => {
            for w in &compiled.warnings {
                ctx.global(Severity::Warning, format!("{} filter: {w}", filter.name()));
            }
            for (cluster, handler) in &compiled.clusters {
                ctx.global(
                    Severity::Warning,
                    format!("handler {handler} fetches its list through the Envoy cluster {cluster:?}: define that cluster (plain Envoy) or a ServiceEntry for it (Istio), or the list stays empty"),
                );
            }
            Some(FilterOutput {
                filter,
                config: output_config,
                families: compiled.families,
                istio_standard: compiled.istio_standard,
                histogram_buckets: compiled.histogram_buckets,
            })
        }
    }
}

/// The metrics current Istio's own telemetry exports (Istio 1.4's default Mixer telemetry
/// configuration defined the same names): a second producer would give Prometheus two series
/// families of one name with different labels.
pub const ISTIO_STANDARD_METRICS: &[&str] = &[
    "istio_requests_total",
    "istio_request_duration_milliseconds",
    "istio_request_duration_seconds",
    "istio_request_bytes",
    "istio_response_bytes",
    "istio_request_messages_total",
    "istio_response_messages_total",
    "istio_tcp_sent_bytes_total",
    "istio_tcp_received_bytes_total",
    "istio_tcp_connections_opened_total",
    "istio_tcp_connections_closed_total",
];

/// What a filter's compiler tells beyond success.
struct Compiled {
    warnings: Vec<String>,
    families: Vec<(String, Vec<String>)>,
    istio_standard: Vec<String>,
    histogram_buckets: Vec<Json>,
    /// (cluster, handler) pairs for fetched lists.
    clusters: Vec<(String, String)>,
}

fn compile(filter: Filter, config: &Json) -> Result<Compiled, ConfigErrors> {
    let text = config.to_string();
    let parsed = FilterConfig::parse(text.as_bytes()).map_err(|e| ConfigErrors(vec![e]))?;
    let manifest = Manifest::istio();
    let mut c = Compiled {
        warnings: Vec::new(),
        families: Vec::new(),
        istio_standard: Vec::new(),
        histogram_buckets: Vec::new(),
        clusters: Vec::new(),
    };
    match filter {
        Filter::Deny => {
            let plan = DenyPlan::compile(&parsed, manifest)?;
            for h in &plan.handlers {
                if let CheckHandler::List { params, display_name, .. } = h {
                    if let (Some(_), Some(cluster)) = (&params.provider_url, params.fetch_cluster()) {
                        c.clusters.push((cluster, display_name.clone()));
                    }
                }
            }
        }
        Filter::Metrics => {
            let plan = MetricPlan::compile(&parsed, manifest)?;
            c.warnings = plan.warnings.clone();
            c.families = plan.families.iter().map(|f| (f.name.clone(), f.labels.clone())).collect();
            c.istio_standard = plan
                .families
                .iter()
                .filter(|f| {
                    ISTIO_STANDARD_METRICS.contains(&f.mixer_name.as_str())
                        || ISTIO_STANDARD_METRICS.contains(&f.name.as_str())
                })
                .map(|f| f.mixer_name.clone())
                .collect();
            c.histogram_buckets = plan.histogram_bucket_settings().as_array().cloned().unwrap_or_default();
        }
        Filter::AccessLog => {
            LogPlan::compile(&parsed, manifest)?;
        }
    }
    Ok(c)
}

/// Type-checks the expressions of an instance that no rule uses (Mixer checked every instance).
fn check_instance_fields(inst: &wasmixer_engine::config::Instance, manifest: &Manifest) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let label = inst.label();
    let (singles, maps) = expression_fields(&inst.template);
    for (f, typed) in singles {
        if let Some(src) = inst.params.get(*f).and_then(Json::as_str).filter(|s| !s.trim().is_empty()) {
            if let Err(e) = compile_field(&label, &format!("params.{f}"), src, *typed, manifest) {
                errors.push(e);
            }
        }
    }
    for f in maps {
        if let Some(m) = inst.params.get(*f).and_then(Json::as_object) {
            for (k, v) in m {
                if let Some(src) = v.as_str() {
                    if let Err(e) = compile_field(&label, &format!("params.{f}.{k}"), src, None, manifest) {
                        errors.push(e);
                    }
                }
            }
        }
    }
    errors
}

/// `resources[3] x.kind.ns` -> `x.kind.ns`.
fn strip_index(resource: &str) -> &str {
    match resource.strip_prefix("resources[") {
        Some(rest) => rest.split_once("] ").map_or(resource, |(_, label)| label),
        None => resource,
    }
}

/// Reports a compiler's error at the user's document, field and expression position.
fn report_config_error(
    ctx: &mut Ctx,
    entries: &[Entry],
    origins: &Origins,
    filter: Option<Filter>,
    err: &ConfigError,
    severity: Severity,
) {
    let label = strip_index(&err.resource);
    let Some(entry) = origins.by_label.get(label).and_then(|&i| entries.get(i)) else {
        ctx.global(severity, err.to_string());
        return;
    };
    let field = document_field(entry, origins, filter, &err.field);
    let mut message = err.message.clone();
    let expression = ctx.scalar_text(entry.obj, &field);
    if let Some(expr) = &expression {
        // The expression is shown under the message, with a caret: not in it a second time.
        let suffix = expression_suffix(expr, err.position);
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
    }
    match (err.position, expression) {
        (Some(p), Some(expr)) => ctx.expr_at(severity, entry.obj, &entry.label, &field, p, &expr, message),
        _ => ctx.at(severity, entry.obj, Some(&entry.label), Some(&field), message),
    }
}

/// A compiler's field name (`match`, `params.status.code`, `actions[1].instances[0]`) as a path
/// in the user's document (`spec.match`, `spec.params.status.code`, `spec.actions[3].instances[0]`).
fn document_field(entry: &Entry, origins: &Origins, filter: Option<Filter>, field: &str) -> String {
    if field.starts_with("spec") || field.starts_with("metadata") || field == "kind" {
        return field.to_string();
    }
    match entry.class {
        ResourceClass::Rule => {
            if let Some(rest) = field.strip_prefix("actions[") {
                if let Some((n, tail)) = rest.split_once(']') {
                    let original = n.parse::<usize>().ok().and_then(|k| {
                        origins.actions.get(&(filter, entry.label.clone())).and_then(|m| m.get(k).copied()).or(Some(k))
                    });
                    if let Some(o) = original {
                        return format!("spec.actions[{o}]{tail}");
                    }
                }
            }
            format!("spec.{field}")
        }
        _ => {
            let base = params_path(entry.obj);
            match field.strip_prefix("params") {
                Some(rest) => format!("{base}{rest}"),
                None => format!("spec.{field}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsupported(route: Route) -> String {
        match route {
            Route::Unsupported(why) => why,
            other => format!("{other:?}"),
        }
    }

    /// Routes and messages as they were when convert had its own adapter and template lists.
    #[test]
    fn routes_come_from_the_registry() {
        assert_eq!(adapter_route("denier", false), Route::Filter(Filter::Deny));
        assert_eq!(adapter_route("listchecker", false), Route::Filter(Filter::Deny));
        assert_eq!(adapter_route("prometheus", false), Route::Filter(Filter::Metrics));
        assert_eq!(adapter_route("stdio", false), Route::Filter(Filter::AccessLog));
        assert_eq!(adapter_route("kubernetesenv", false), Route::Superseded(KUBERNETESENV_SUPERSEDED));
        assert_eq!(adapter_route("kubernetes", false), Route::Superseded(KUBERNETESENV_SUPERSEDED));
        assert_eq!(
            unsupported(adapter_route("memquota", false)),
            "adapter memquota is not implemented by wasmixer; rate limiting: use Envoy's local or global rate limit filter"
        );
        assert_eq!(
            unsupported(adapter_route("fluentd", false)),
            "adapter fluentd is not implemented by wasmixer; send the stdio access log to a log collector instead"
        );
        assert_eq!(unsupported(adapter_route("statsd", false)), "adapter statsd is not implemented by wasmixer");
        assert_eq!(unsupported(adapter_route("mine", false)), "adapter mine is not implemented by wasmixer");
        assert_eq!(
            unsupported(adapter_route("denier", true)),
            "out-of-process adapter denier: wasmixer runs only the compiled-in denier, listchecker, prometheus and stdio adapters"
        );
        assert_eq!(template_route("checknothing"), Route::Filter(Filter::Deny));
        assert_eq!(template_route("listentry"), Route::Filter(Filter::Deny));
        assert_eq!(template_route("metric"), Route::Filter(Filter::Metrics));
        assert_eq!(template_route("logentry"), Route::Filter(Filter::AccessLog));
        assert_eq!(template_route("kubernetes"), Route::Superseded(KUBERNETESENV_SUPERSEDED));
        assert_eq!(unsupported(template_route("quota")), "template quota is not implemented by wasmixer");
        assert_eq!(unsupported(template_route("mine")), "template mine is not implemented by wasmixer");
    }

    #[test]
    fn lists_read_with_and() {
        assert_eq!(and_list(["a"].into_iter()), "a");
        assert_eq!(and_list(["a", "b", "c"].into_iter()), "a, b and c");
        assert_eq!(and_list(std::iter::empty()), "");
    }
}
