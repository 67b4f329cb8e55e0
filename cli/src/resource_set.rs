//! Resources applied over time, kept as `kubectl apply` and `kubectl delete` keep them, and
//! converted as a whole by `wasmixer convert`'s own code.
//!
//! A resource applied again (same API group, kind, namespace and name) replaces the earlier one,
//! a deleted one is gone; every conversion reads the texts as they were applied and converts the
//! live resources only, so each diagnostic still names the file, document and field the user
//! wrote. A change whose conversion has errors is refused and leaves the set as it was (as
//! Istio's validating webhook refused invalid Mixer configuration).
//!
//! The mesh harness (`integration/src/mesh_control.rs`) is the user: its `apply_yaml` is an
//! [`ResourceSet::apply`] followed by a push of the converted filter configurations and mesh
//! settings.

use std::fmt;

use crate::convert::context::{Category, Input, Object, Options};
use crate::convert::{convert_selected, scan, Outcome};

/// What `kubectl` identifies a resource by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceKey {
    /// The API group (`config.istio.io`), empty for the core group or when no `apiVersion` is given.
    pub group: String,
    pub kind: String,
    /// As written, else the conversion's default namespace; empty for the cluster-scoped
    /// `MeshPolicy`.
    pub namespace: String,
    pub name: String,
    /// Where the converter sends it.
    pub category: Category,
}

impl ResourceKey {
    fn of(obj: &Object, opts: &Options) -> ResourceKey {
        let namespace = if obj.kind == "MeshPolicy" {
            String::new()
        } else {
            obj.namespace.clone().unwrap_or_else(|| opts.namespace.clone())
        };
        ResourceKey {
            group: obj.group.clone(),
            kind: obj.kind.clone(),
            namespace,
            name: obj.name.clone(),
            category: obj.category(),
        }
    }
}

impl fmt::Display for ResourceKey {
    /// As `kubectl` names it: `rule.config.istio.io/denyreviewsv3 -n default`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}/{}", self.kind, self.group, self.name)?;
        if !self.namespace.is_empty() {
            write!(f, " -n {}", self.namespace)?;
        }
        Ok(())
    }
}

/// A live resource: its key and the document (or `kind: List` item) that declared it.
#[derive(Clone, Debug)]
struct Live {
    key: ResourceKey,
    input: usize,
    /// The document's number in its input.
    document: usize,
    /// `items[k]` for a `kind: List` item, else empty.
    base: String,
}

impl Live {
    fn declared(&self, obj: &Object) -> bool {
        self.input == obj.src.input && self.document == obj.src.number && self.base == obj.src.base
    }
}

/// What an accepted change did.
#[derive(Debug)]
pub struct Change {
    /// The resources the change named: for [`ResourceSet::apply`] with whether one with that key
    /// was replaced, for [`ResourceSet::delete`] with whether it was there.
    pub resources: Vec<(ResourceKey, bool)>,
    /// The conversion of the resources now live.
    pub outcome: Outcome,
}

/// The resources applied so far.
#[derive(Clone, Debug, Default)]
pub struct ResourceSet {
    options: Options,
    /// Every text applied, in order (superseded documents stay, unconverted).
    inputs: Vec<Input>,
    live: Vec<Live>,
}

impl ResourceSet {
    /// No resources; conversions use `options` (namespaces, output format).
    pub fn new(options: Options) -> ResourceSet {
        ResourceSet { options, inputs: Vec::new(), live: Vec::new() }
    }

    /// The live resources, in the order they were applied.
    pub fn keys(&self) -> impl Iterator<Item = &ResourceKey> {
        self.live.iter().map(|l| &l.key)
    }

    /// The conversion of the live resources (what `wasmixer convert` makes of them).
    pub fn convert(&self) -> Outcome {
        convert_selected(&self.inputs, &self.options, |obj| self.live.iter().any(|l| l.declared(obj)))
    }

    /// `kubectl apply -f`: adds the resources of `input`, each replacing an earlier one with its
    /// key, and converts everything live. On any error the set is unchanged and the conversion's
    /// report says why (two Mixer resources with one key in `input` itself are an error, as in
    /// `wasmixer convert`).
    pub fn apply(&mut self, input: Input) -> Result<Change, Outcome> {
        let mut next = self.clone();
        let index = next.inputs.len();
        // Problems reading `input` are reported again by the conversion below.
        let (objects, _) = scan(std::slice::from_ref(&input), &self.options);
        next.inputs.push(input);
        let mut applied = Vec::new();
        for obj in objects {
            let key = ResourceKey::of(&obj, &self.options);
            let before = next.live.len();
            next.live.retain(|l| l.key != key || l.input == index);
            let replaced = next.live.len() != before;
            next.live.push(Live { key: key.clone(), input: index, document: obj.src.number, base: obj.src.base });
            applied.push((key, replaced));
        }
        let outcome = next.commit_into(self)?;
        Ok(Change { resources: applied, outcome })
    }

    /// `kubectl delete -f`: removes the resources `input` names (its documents' `kind`,
    /// `metadata.name` and `metadata.namespace`; the rest is not read) and converts what is
    /// left. On any error the set is unchanged.
    pub fn delete(&mut self, input: &Input) -> Result<Change, Outcome> {
        let (objects, report) = scan(std::slice::from_ref(input), &self.options);
        if report.has_errors() {
            return Err(Outcome { report, files: Vec::new() });
        }
        let mut next = self.clone();
        let mut found = Vec::new();
        for obj in objects {
            let key = ResourceKey::of(&obj, &self.options);
            let before = next.live.len();
            next.live.retain(|l| l.key != key);
            let was_live = next.live.len() != before;
            found.push((key, was_live));
        }
        let outcome = next.commit_into(self)?;
        Ok(Change { resources: found, outcome })
    }

    /// Replaces the live resources that `which` selects by those that `earlier` had (e.g. the
    /// mTLS resources a mesh started with); the others stay. On any error the set is unchanged.
    pub fn restore(&mut self, earlier: &ResourceSet, which: impl Fn(&ResourceKey) -> bool) -> Result<Outcome, Outcome> {
        let mut next = self.clone();
        next.live.retain(|l| !which(&l.key));
        for l in earlier.live.iter().filter(|l| which(&l.key)) {
            let Some(input) = earlier.inputs.get(l.input) else {
                continue;
            };
            let index = match next.inputs.iter().position(|i| i == input) {
                Some(i) => i,
                None => {
                    next.inputs.push(input.clone());
                    next.inputs.len() - 1
                }
            };
            next.live.push(Live { input: index, ..l.clone() });
        }
        next.commit_into(self)
    }

    /// Converts `self` and, when that succeeds, makes it `target`.
    fn commit_into(self, target: &mut ResourceSet) -> Result<Outcome, Outcome> {
        let outcome = self.convert();
        if outcome.report.has_errors() {
            return Err(outcome);
        }
        *target = self;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn input(name: &str, text: &str) -> Input {
        Input { name: name.to_string(), text: text.to_string() }
    }

    const HANDLER: &str = "apiVersion: config.istio.io/v1alpha2\nkind: handler\nmetadata:\n  name: h\nspec:\n  compiledAdapter: denier\n  params:\n    status:\n      code: 7\n";
    const INSTANCE: &str =
        "apiVersion: config.istio.io/v1alpha2\nkind: instance\nmetadata:\n  name: i\nspec:\n  compiledTemplate: checknothing\n";
    const RULE: &str = "apiVersion: config.istio.io/v1alpha2\nkind: rule\nmetadata:\n  name: r\nspec:\n  match: source.labels[\"app\"] == \"x\"\n  actions:\n  - handler: h\n    instances: [ i ]\n";
    const MESH_STRICT: &str = "apiVersion: authentication.istio.io/v1alpha1\nkind: MeshPolicy\nmetadata:\n  name: default\nspec:\n  peers:\n  - mtls: {}\n";

    fn deny_resources(outcome: &Outcome) -> usize {
        let config: serde_json::Value = serde_json::from_str(outcome.file("filters/deny.json").unwrap()).unwrap();
        config["resources"].as_array().unwrap().len()
    }

    #[test]
    fn later_applies_see_earlier_resources_and_replace_same_keys() {
        let mut set = ResourceSet::new(Options::default());
        let change = set.apply(input("h.yaml", HANDLER)).unwrap();
        assert_eq!(change.resources[0].0.to_string(), "handler.config.istio.io/h -n default");
        assert!(!change.resources[0].1);
        assert!(change.outcome.file("filters/deny.json").is_none(), "a handler alone is no work");
        set.apply(input("ir.yaml", &format!("{INSTANCE}---\n{RULE}"))).unwrap();
        let change = set.apply(input("h2.yaml", &HANDLER.replace("code: 7", "code: 9"))).unwrap();
        assert!(change.resources[0].1, "replaced");
        assert_eq!(deny_resources(&change.outcome), 3);
        assert!(change.outcome.file("filters/deny.json").unwrap().contains("\"code\": 9"));
        assert_eq!(set.keys().count(), 3);
    }

    #[test]
    fn a_failing_change_is_refused_with_the_converters_message() {
        let mut set = ResourceSet::new(Options::default());
        set.apply(input("h.yaml", HANDLER)).unwrap();
        let broken = RULE.replace("handler: h", "handler: hx");
        let err = set.apply(input("broken.yaml", &format!("{INSTANCE}---\n{broken}"))).unwrap_err();
        let messages: Vec<String> = err.report.sorted().iter().map(|d| d.to_string()).collect();
        assert_eq!(
            messages[0],
            "broken.yaml:15:14: error: document 2: r.rule.default: field spec.actions[0].handler: handler hx not found (looked for hx.handler.default)"
        );
        assert_eq!(set.keys().count(), 1, "the set is unchanged");
        // Deleting what a rule needs is refused too.
        set.apply(input("ir.yaml", &format!("{INSTANCE}---\n{RULE}"))).unwrap();
        assert!(set.delete(&input("<stdin>", HANDLER)).is_err());
        assert_eq!(set.keys().count(), 3);
    }

    #[test]
    fn delete_and_restore() {
        let mut set = ResourceSet::new(Options::default());
        set.apply(input("mesh.yaml", MESH_STRICT)).unwrap();
        let start = set.clone();
        set.apply(input("all.yaml", &format!("{HANDLER}---\n{INSTANCE}---\n{RULE}"))).unwrap();
        let delete = "apiVersion: authentication.istio.io/v1alpha1\nkind: MeshPolicy\nmetadata:\n  name: default\n";
        let change = set.delete(&input("<stdin>", delete)).unwrap();
        assert_eq!(change.resources.len(), 1);
        assert!(change.resources[0].1);
        assert!(change.outcome.file("mesh-settings.json").is_none());
        let outcome = set.restore(&start, |k| k.category == Category::Mtls).unwrap();
        assert!(outcome.file("mesh-settings.json").unwrap().contains("\"scope\": \"mesh\""));
        assert_eq!(deny_resources(&outcome), 3);
    }
}
