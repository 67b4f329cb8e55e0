//! The mesh's control plane: Istio 1.4 resources applied over time and turned into sidecar
//! configuration by `wasmixer convert`'s own code ([`wasmixer_cli::ResourceSet`]), so the seed
//! YAML reaches the filters exactly as a user's `wasmixer convert` output would: each filter
//! gets its `filters/<filter>.json`, and the sidecars' mTLS comes from `mesh-settings.json`
//! ([`crate::mesh_tls`]).
//!
//! A change the converter rejects (a broken reference, a type error, ...) is refused with the
//! converter's diagnostics (file, document, resource, field, expression position) and leaves the
//! configuration as it was.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use wasmixer_cli::{Category, Input, Outcome, ResourceKey, ResourceSet, Severity};

use crate::mesh_tls::TlsPolicies;
use crate::HarnessError;

/// The filters whose configuration the converter writes (peer-metadata's is always `{}`).
const CONVERTED_FILTERS: [&str; 4] = ["deny", "metrics", "access-log", "mixer"];

/// The applied resources and what they convert to.
#[derive(Clone, Debug, Default)]
pub struct ControlPlane {
    resources: ResourceSet,
    /// Converted configuration of each filter with work (by filter name).
    filters: BTreeMap<String, Value>,
    tls: TlsPolicies,
    /// Filter options set with [`ControlPlane::merge_filter_config`] (`metrics`, `access_log`,
    /// ...), given to every filter on top of the converted configuration.
    sections: Map<String, Value>,
}

/// The converter's errors as one message, one diagnostic per line.
fn rejection(outcome: &Outcome) -> HarnessError {
    let errors: Vec<String> =
        outcome.report.sorted().iter().filter(|d| d.severity == Severity::Error).map(|d| d.to_string()).collect();
    HarnessError::check(format!("wasmixer convert rejected the configuration:\n{}", errors.join("\n")))
}

impl ControlPlane {
    /// No resources: filters without rules, servers PERMISSIVE, clients in plain text.
    pub fn new() -> ControlPlane {
        ControlPlane::default()
    }

    /// `kubectl apply -f <name>` of `yaml` (several documents): Mixer and mTLS resources.
    /// Returns kubectl-like lines (`rule.config.istio.io/denyreviewsv3 -n default configured`).
    pub fn apply(&mut self, name: &str, yaml: &str) -> Result<Vec<String>, HarnessError> {
        let mut next = self.resources.clone();
        let change = next.apply(Input { name: name.to_string(), text: yaml.to_string() }).map_err(|o| rejection(&o))?;
        let unknown: Vec<String> = change
            .resources
            .iter()
            .filter(|(k, _)| k.category == Category::Other)
            .map(|(k, _)| k.to_string())
            .collect();
        if !unknown.is_empty() {
            return Err(HarnessError::check(format!(
                "{name}: the mesh knows Mixer and mTLS resources only, not {}",
                unknown.join(", ")
            )));
        }
        self.adopt(next, &change.outcome)?;
        Ok(change.resources.iter().map(|(k, _)| format!("{k} configured")).collect())
    }

    /// `kubectl delete -f`: removes the resources `yaml` names. Returns kubectl-like lines.
    pub fn delete(&mut self, yaml: &str) -> Result<Vec<String>, HarnessError> {
        let mut next = self.resources.clone();
        let change =
            next.delete(&Input { name: "<stdin>".to_string(), text: yaml.to_string() }).map_err(|o| rejection(&o))?;
        self.adopt(next, &change.outcome)?;
        Ok(change
            .resources
            .iter()
            .map(|(k, found)| format!("{}/{} {}", k.kind, k.name, if *found { "deleted" } else { "not found" }))
            .collect())
    }

    /// Returns to the mTLS resources of `initial` (an earlier state of this control plane),
    /// keeping the Mixer resources.
    pub fn restore_tls(&mut self, initial: &ControlPlane) -> Result<(), HarnessError> {
        let mut next = self.resources.clone();
        let is_tls = |k: &ResourceKey| k.category == Category::Mtls;
        let outcome = next.restore(&initial.resources, is_tls).map_err(|o| rejection(&o))?;
        self.adopt(next, &outcome)
    }

    /// Merges a filter configuration document (JSON: `resources`, applied through the converter
    /// like YAML, and filter sections such as `metrics`, which replace earlier ones).
    pub fn merge_filter_config(&mut self, name: &str, json_text: &str) -> Result<(), HarnessError> {
        let doc: Value = serde_json::from_str(json_text).map_err(|e| HarnessError::check(format!("{name}: {e}")))?;
        let Some(obj) = doc.as_object() else {
            return Err(HarnessError::check(format!("{name}: a filter configuration must be a JSON object")));
        };
        let mut sections = self.sections.clone();
        for (k, v) in obj {
            if k != "resources" {
                sections.insert(k.clone(), v.clone());
            }
        }
        let resources = obj.get("resources").cloned().unwrap_or_else(|| Value::Array(Vec::new()));
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": resources});
        self.apply(name, &list.to_string())?;
        self.sections = sections;
        Ok(())
    }

    /// Takes `resources` and its conversion as the current configuration.
    fn adopt(&mut self, resources: ResourceSet, outcome: &Outcome) -> Result<(), HarnessError> {
        let mut filters = BTreeMap::new();
        for f in CONVERTED_FILTERS {
            if let Some(text) = outcome.file(&format!("filters/{f}.json")) {
                let config: Value = serde_json::from_str(text)
                    .map_err(|e| HarnessError::check(format!("converted filters/{f}.json: {e}")))?;
                filters.insert(f.to_string(), config);
            }
        }
        let tls = match outcome.file("mesh-settings.json") {
            Some(text) => TlsPolicies::from_mesh_settings(text)?,
            None => TlsPolicies::new(),
        };
        for d in outcome.report.sorted().iter().filter(|d| d.severity == Severity::Unsupported) {
            eprintln!("mesh: not converted: {d}");
        }
        self.resources = resources;
        self.filters = filters;
        self.tls = tls;
        Ok(())
    }

    /// The configuration (JSON text) of filter `filter`.
    pub fn filter_config(&self, filter: &str) -> String {
        if filter == "peer-metadata" {
            // Its configuration is the document's `peer_metadata` section, as in `mixer.wasm`.
            return self.sections.get("peer_metadata").map_or_else(|| "{}".to_string(), Value::to_string);
        }
        let mut config = self.filters.get(filter).and_then(Value::as_object).cloned().unwrap_or_default();
        for (k, v) in &self.sections {
            config.insert(k.clone(), v.clone());
        }
        Value::Object(config).to_string()
    }

    /// The mTLS settings.
    pub fn tls(&self) -> &TlsPolicies {
        &self.tls
    }

    /// The live resources, in the order they were applied.
    pub fn resources(&self) -> Vec<ResourceKey> {
        self.resources.keys().cloned().collect()
    }

    /// Every `label_names` entry of the converted configurations (the Prometheus handlers'
    /// labels): the sidecars' `stats_tags`.
    pub fn label_names(&self) -> Vec<String> {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        if k == "label_names" {
                            for n in x.as_array().map(Vec::as_slice).unwrap_or_default() {
                                if let Some(s) = n.as_str() {
                                    if !out.iter().any(|o| o == s) {
                                        out.push(s.to_string());
                                    }
                                }
                            }
                        } else {
                            walk(x, out);
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for config in self.filters.values() {
            walk(&config["resources"], &mut out);
        }
        out
    }
}
