//! Resolution of a set of Mixer resources into handlers, instances and rules with Mixer's
//! naming (`mixer/pkg/runtime/config/ephemeral.go`) and reference rules (`config/util.go`).

use hashbrown::{HashMap, HashSet};
use serde_json::Value as Json;

use super::error::{ConfigError, ConfigErrors};
use super::resource::{classify, Resource, ResourceClass};

/// A handler: an adapter with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Handler {
    pub name: String,
    pub kind: String,
    pub namespace: String,
    /// The name Mixer used in messages: `name.namespace` for `kind: handler` with
    /// `compiledAdapter`, `name.kind.namespace` for legacy kinds and out-of-process adapters.
    pub display_name: String,
    pub adapter: String,
    pub params: Json,
}

/// An instance of a template; `fqn` is Mixer's instance name (`name.instance.namespace`).
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub name: String,
    pub kind: String,
    pub namespace: String,
    pub fqn: String,
    pub template: String,
    pub params: Json,
}

/// One action of a rule, with references resolved to indexes into the snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub handler: usize,
    pub instances: Vec<usize>,
    pub name: Option<String>,
}

/// A rule, with its match text and resolved actions. `spec` keeps the raw spec for fields
/// that only some filters read (header operations, `dry_run`, `fail_closed`).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: String,
    pub namespace: String,
    /// `name.rule.namespace`, the rule's key in messages.
    pub label: String,
    pub match_source: String,
    pub actions: Vec<Action>,
    pub spec: Json,
}

/// Everything a configuration declares, resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub config_namespace: String,
    pub handlers: Vec<Handler>,
    pub instances: Vec<Instance>,
    pub rules: Vec<Rule>,
}

/// Mixer's resource key `name.kind.namespace`.
pub fn key(name: &str, kind: &str, namespace: &str) -> String {
    format!("{name}.{kind}.{namespace}")
}

impl Handler {
    /// `handler doublehandler.istio-system`-style label for messages.
    pub fn label(&self) -> String {
        key(&self.name, &self.kind, &self.namespace)
    }
}

impl Instance {
    pub fn label(&self) -> String {
        self.fqn.clone()
    }
}

fn str_field<'j>(spec: &'j Json, names: &[&str]) -> Option<&'j str> {
    names.iter().find_map(|n| spec.get(*n).and_then(Json::as_str))
}

impl Snapshot {
    /// Compiles, in order, the handlers `wanted` picks out (one filter's adapters); `index[i]`
    /// tells where the snapshot's handler `i` went (`None`: not wanted, or its errors were added
    /// to `errors`).
    pub fn compile_handlers<H>(
        &self,
        wanted: impl Fn(&Handler) -> bool,
        mut compile: impl FnMut(&Handler) -> Result<H, Vec<ConfigError>>,
        errors: &mut Vec<ConfigError>,
    ) -> (Vec<H>, Vec<Option<usize>>) {
        let mut compiled = Vec::new();
        let mut index = vec![None; self.handlers.len()];
        for (slot, h) in index.iter_mut().zip(&self.handlers) {
            if !wanted(h) {
                continue;
            }
            match compile(h) {
                Ok(c) => {
                    *slot = Some(compiled.len());
                    compiled.push(c);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        (compiled, index)
    }

    /// Resolves `resources`. A resource without a namespace is in `default_namespace` (as
    /// `kubectl apply` would put it); rules in `config_namespace` apply to all traffic.
    #[inline(never)] // configure-time code: see WASM_OPT_FLAGS in the Makefile
    pub fn resolve(
        resources: &[Resource],
        default_namespace: &str,
        config_namespace: &str,
    ) -> Result<Snapshot, ConfigErrors> {
        let mut snap = Snapshot { config_namespace: config_namespace.to_string(), ..Snapshot::default() };
        let mut errors = Vec::new();
        // Hashed, not searched: a linear search per resource made resolving quadratic in the
        // number of resources (10,000 rules took a minute in `wasmixer validate`).
        let mut keys: HashSet<String> = HashSet::new();
        let mut rule_resources = Vec::new();
        for (i, r) in resources.iter().enumerate() {
            let ns = r.metadata.namespace.clone().unwrap_or_else(|| default_namespace.to_string());
            let label = key(&r.metadata.name, &r.kind, &ns);
            let Some(class) = classify(&r.kind) else {
                errors.push(ConfigError::new(
                    format!("resources[{i}] {label}"),
                    "kind",
                    format!("unknown kind {}", r.kind),
                ));
                continue;
            };
            if class != ResourceClass::Ignored {
                if keys.contains(&label) {
                    errors.push(ConfigError::new(
                        label.clone(),
                        "metadata.name",
                        "duplicate resource: this name, kind and namespace are declared twice",
                    ));
                    continue;
                }
                keys.insert(label.clone());
            }
            match class {
                ResourceClass::Handler => match handler(r, &ns) {
                    Ok(h) => snap.handlers.push(h),
                    Err(e) => errors.push(e),
                },
                ResourceClass::Instance => match instance(r, &ns) {
                    Ok(inst) => snap.instances.push(inst),
                    Err(e) => errors.push(e),
                },
                ResourceClass::Rule => rule_resources.push((r, ns)),
                ResourceClass::Ignored => {}
            }
        }
        let handlers = RefIndex::new(snap.handlers.iter().map(|h| (&h.name, &h.kind, &h.namespace)));
        let instances = RefIndex::new(snap.instances.iter().map(|x| (&x.name, &x.kind, &x.namespace)));
        for (r, ns) in rule_resources {
            match rule(r, &ns, &handlers, &instances) {
                Ok(rule) => snap.rules.push(rule),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(snap)
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// A rule resource resolved: its references looked up in `handlers` and `instances`.
fn rule(r: &Resource, ns: &str, handlers: &RefIndex, instance_index: &RefIndex) -> Result<Rule, Vec<ConfigError>> {
    let label = key(&r.metadata.name, "rule", ns);
    let mut errors = Vec::new();
    let match_source = match r.spec.get("match") {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(s)) => s.clone(),
        Some(other) => {
            errors.push(ConfigError::new(
                &label,
                "match",
                format!("must be a string, got {}", crate::config::json_text(other)),
            ));
            String::new()
        }
    };
    let mut actions = Vec::new();
    let raw_actions = r.spec.get("actions").and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[]);
    for (ai, a) in raw_actions.iter().enumerate() {
        let field = format!("actions[{ai}]");
        let Some(h) = a.get("handler").and_then(Json::as_str) else {
            errors.push(ConfigError::new(&label, format!("{field}.handler"), "missing handler reference"));
            continue;
        };
        let handler = match handlers.find(h, "handler", ns) {
            Some(i) => i,
            None => {
                errors.push(ConfigError::new(
                    &label,
                    format!("{field}.handler"),
                    format!("handler {h} not found (looked for {})", candidates(h, "handler", ns).join(", ")),
                ));
                continue;
            }
        };
        let mut instances = Vec::new();
        let raw = a.get("instances").and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[]);
        for (ii, inst) in raw.iter().enumerate() {
            let Some(name) = inst.as_str() else {
                errors.push(ConfigError::new(&label, format!("{field}.instances[{ii}]"), "must be a string"));
                continue;
            };
            match instance_index.find(name, "instance", ns) {
                Some(i) => instances.push(i),
                None => errors.push(ConfigError::new(
                    &label,
                    format!("{field}.instances[{ii}]"),
                    format!("instance {name} not found (looked for {})", candidates(name, "instance", ns).join(", ")),
                )),
            }
        }
        let name = a.get("name").and_then(Json::as_str).map(str::to_string);
        actions.push(Action { handler, instances, name });
    }
    if errors.is_empty() {
        Ok(Rule {
            name: r.metadata.name.clone(),
            namespace: ns.to_string(),
            label,
            match_source,
            actions,
            spec: r.spec.clone(),
        })
    } else {
        Err(errors)
    }
}

/// The handlers (or instances) of a snapshot, indexed for a rule's references.
struct RefIndex {
    /// Position of each resource by its key `name.kind.namespace` (keys are unique).
    by_key: HashMap<String, usize>,
    /// Position of the first resource of each name and namespace, any kind.
    by_name: HashMap<(String, String), usize>,
}

impl RefIndex {
    fn new<'a>(resources: impl Iterator<Item = (&'a String, &'a String, &'a String)>) -> RefIndex {
        let mut index = RefIndex { by_key: HashMap::new(), by_name: HashMap::new() };
        for (i, (name, kind, ns)) in resources.enumerate() {
            index.by_key.entry(key(name, kind, ns)).or_insert(i);
            index.by_name.entry((name.clone(), ns.clone())).or_insert(i);
        }
        index
    }

    /// Finds a handler or instance by a rule's reference. Mixer's forms: `x` means
    /// `x.<kind>.<rule ns>`, `x.y` is tried as `x.y.<rule ns>` and `x.<kind>.y`, `x.k.ns` is exact;
    /// when several candidates exist, the one declared first. A one-part name also finds a
    /// legacy-kind resource of that name in the rule's namespace (the first declared).
    fn find(&self, reference: &str, desired_kind: &str, ns: &str) -> Option<usize> {
        let exact = candidates(reference, desired_kind, ns).iter().filter_map(|k| self.by_key.get(k).copied()).min();
        exact.or_else(|| {
            (!reference.contains('.'))
                .then(|| self.by_name.get(&(reference.to_string(), ns.to_string())).copied())
                .flatten()
        })
    }
}

/// Mixer's candidate keys for a reference to a `desired_kind` resource from namespace `ns`
/// (`x`, `x.y`, `x.kind.ns`).
pub fn candidates(reference: &str, desired_kind: &str, ns: &str) -> Vec<String> {
    let parts: Vec<&str> = reference.split('.').collect();
    match parts.as_slice() {
        [one] => vec![key(one, desired_kind, ns)],
        [a, b] => vec![key(a, b, ns), key(a, desired_kind, b)],
        _ => vec![reference.to_string()],
    }
}

fn handler(r: &Resource, ns: &str) -> Result<Handler, ConfigError> {
    let name = r.metadata.name.clone();
    let label = key(&name, &r.kind, ns);
    let (adapter, params, display_name) = if r.kind == "handler" {
        if let Some(a) = str_field(&r.spec, &["compiledAdapter", "compiled_adapter"]) {
            (a.to_string(), r.spec.get("params").cloned().unwrap_or(Json::Null), format!("{name}.{ns}"))
        } else if let Some(a) = str_field(&r.spec, &["adapter"]) {
            (a.to_string(), r.spec.get("params").cloned().unwrap_or(Json::Null), label.clone())
        } else {
            return Err(ConfigError::new(
                label,
                "spec.compiledAdapter",
                "a handler needs compiledAdapter (or adapter)",
            ));
        }
    } else {
        (r.kind.clone(), r.spec.clone(), label.clone())
    };
    Ok(Handler { name, kind: r.kind.clone(), namespace: ns.to_string(), display_name, adapter, params })
}

fn instance(r: &Resource, ns: &str) -> Result<Instance, ConfigError> {
    let name = r.metadata.name.clone();
    let fqn = key(&name, &r.kind, ns);
    let (template, params) = if r.kind == "instance" {
        let Some(t) = str_field(&r.spec, &["compiledTemplate", "compiled_template", "template"]) else {
            return Err(ConfigError::new(
                fqn,
                "spec.compiledTemplate",
                "an instance needs compiledTemplate (or template)",
            ));
        };
        (t.to_string(), r.spec.get("params").cloned().unwrap_or(Json::Null))
    } else {
        (r.kind.clone(), r.spec.clone())
    };
    Ok(Instance { name, kind: r.kind.clone(), namespace: ns.to_string(), fqn, template, params })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn resources(json: &str) -> Vec<Resource> {
        serde_json::from_str(json).unwrap()
    }

    const SEED_DENY: &str = r#"[
      {"apiVersion": "config.istio.io/v1alpha2", "kind": "handler", "metadata": {"name": "denyreviewsv3handler"},
       "spec": {"compiledAdapter": "denier", "params": {"status": {"code": 7, "message": "Not allowed"}}}},
      {"kind": "instance", "metadata": {"name": "denyreviewsv3request"}, "spec": {"compiledTemplate": "checknothing"}},
      {"kind": "rule", "metadata": {"name": "denyreviewsv3"},
       "spec": {"match": "destination.labels[\"app\"] == \"ratings\"", "actions": [{"handler": "denyreviewsv3handler", "instances": ["denyreviewsv3request"]}]}}
    ]"#;

    #[test]
    fn seed_deny_resolves_with_mixer_names() {
        let s = Snapshot::resolve(&resources(SEED_DENY), "default", "istio-system").unwrap();
        assert_eq!(s.handlers[0].display_name, "denyreviewsv3handler.default");
        assert_eq!(s.instances[0].fqn, "denyreviewsv3request.instance.default");
        assert_eq!(s.rules[0].label, "denyreviewsv3.rule.default");
        assert_eq!(s.rules[0].actions, vec![Action { handler: 0, instances: vec![0], name: None }]);
    }

    #[test]
    fn legacy_kinds_keep_three_part_names() {
        let r = resources(
            r#"[
          {"kind": "denier", "metadata": {"name": "h", "namespace": "istio-system"}, "spec": {"status": {"code": 7}}},
          {"kind": "checknothing", "metadata": {"name": "i", "namespace": "istio-system"}, "spec": {}},
          {"kind": "rule", "metadata": {"name": "r", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "h.denier", "instances": ["i.checknothing"]}]}}
        ]"#,
        );
        let s = Snapshot::resolve(&r, "default", "istio-system").unwrap();
        assert_eq!(s.handlers[0].display_name, "h.denier.istio-system");
        assert_eq!(s.handlers[0].adapter, "denier");
        assert_eq!(s.instances[0].fqn, "i.checknothing.istio-system");
        assert_eq!(s.rules[0].actions[0].handler, 0);
    }

    #[test]
    fn qualified_references_cross_namespaces() {
        let r = resources(
            r#"[
          {"kind": "handler", "metadata": {"name": "h", "namespace": "istio-system"}, "spec": {"compiledAdapter": "denier"}},
          {"kind": "instance", "metadata": {"name": "i", "namespace": "default"}, "spec": {"compiledTemplate": "checknothing"}},
          {"kind": "rule", "metadata": {"name": "r", "namespace": "default"}, "spec": {"actions": [{"handler": "h.istio-system", "instances": ["i.instance.default"]}]}}
        ]"#,
        );
        let s = Snapshot::resolve(&r, "default", "istio-system").unwrap();
        assert_eq!(s.rules[0].actions[0], Action { handler: 0, instances: vec![0], name: None });
    }

    #[test]
    fn broken_references_and_duplicates_are_all_reported() {
        let r = resources(
            r#"[
          {"kind": "handler", "metadata": {"name": "h"}, "spec": {"compiledAdapter": "denier"}},
          {"kind": "handler", "metadata": {"name": "h"}, "spec": {"compiledAdapter": "denier"}},
          {"kind": "frobnicator", "metadata": {"name": "f"}},
          {"kind": "rule", "metadata": {"name": "r"}, "spec": {"actions": [{"handler": "nope", "instances": ["missing"]}]}}
        ]"#,
        );
        let errs = Snapshot::resolve(&r, "default", "istio-system").unwrap_err().0;
        let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(texts, [
            "h.handler.default: field metadata.name: duplicate resource: this name, kind and namespace are declared twice",
            "resources[2] f.frobnicator.default: field kind: unknown kind frobnicator",
            "r.rule.default: field actions[0].handler: handler nope not found (looked for nope.handler.default)",
        ]);
    }

    #[test]
    fn the_first_declared_candidate_wins_and_legacy_kinds_are_found_by_name() {
        // `h.other` from namespace default is tried as `h.other.default` (a resource of kind
        // `other`: none) and `h.handler.other` (declared first).
        let r = resources(
            r#"[
          {"kind": "handler", "metadata": {"name": "h", "namespace": "other"}, "spec": {"compiledAdapter": "denier"}},
          {"kind": "denier", "metadata": {"name": "h", "namespace": "default"}, "spec": {}},
          {"kind": "checknothing", "metadata": {"name": "i", "namespace": "default"}, "spec": {}},
          {"kind": "checknothing", "metadata": {"name": "i", "namespace": "istio-system"}, "spec": {}},
          {"kind": "rule", "metadata": {"name": "r"}, "spec": {"actions": [{"handler": "h.other", "instances": ["i"]}]}},
          {"kind": "rule", "metadata": {"name": "s"}, "spec": {"actions": [{"handler": "h", "instances": ["i.checknothing.istio-system"]}]}}
        ]"#,
        );
        let s = Snapshot::resolve(&r, "default", "istio-system").unwrap();
        assert_eq!(s.rules[0].actions[0], Action { handler: 0, instances: vec![0], name: None });
        // `h` from namespace default: no `h.handler.default`, so the legacy `h.denier.default`.
        assert_eq!(s.rules[1].actions[0], Action { handler: 1, instances: vec![1], name: None });
    }

    /// A guard against resolving in time quadratic in the number of resources: 60,000 of them
    /// (20,000 rules, each with its own handler and instance) resolve in well under a second
    /// natively, but took minutes when each reference searched the whole list.
    #[test]
    fn many_resources_resolve_in_linear_time() {
        let n = 20_000;
        let mut list = Vec::with_capacity(3 * n);
        for i in 0..n {
            let ns = format!("ns{}", i % 50);
            list.push(serde_json::json!({"kind": "handler", "metadata": {"name": format!("h{i}"), "namespace": ns}, "spec": {"compiledAdapter": "denier"}}));
            list.push(serde_json::json!({"kind": "instance", "metadata": {"name": format!("i{i}"), "namespace": ns}, "spec": {"compiledTemplate": "checknothing"}}));
            list.push(serde_json::json!({"kind": "rule", "metadata": {"name": format!("r{i}"), "namespace": ns},
                "spec": {"actions": [{"handler": format!("h{i}"), "instances": [format!("i{i}.instance.{ns}")]}]}}));
        }
        let r: Vec<Resource> = serde_json::from_value(serde_json::Value::Array(list)).unwrap();
        let s = Snapshot::resolve(&r, "default", "istio-system").unwrap();
        assert_eq!(s.rules.len(), n);
        assert_eq!(s.rules[n - 1].actions[0], Action { handler: n - 1, instances: vec![n - 1], name: None });
    }
}
