//! Mixer's namespace scoping of rules (`dispatcher/util.go`, `getIdentityNamespace`): a rule in
//! the config namespace applies to all traffic; a rule elsewhere only when the request's
//! identity namespace is the rule's: the destination's for inbound (or unknown) reporters, the
//! source's for outbound ones.

use crate::expr::{AttrId, AttributeBag, Manifest};

/// The attributes that decide a request's identity namespace.
#[derive(Debug, Clone, Copy)]
pub struct NamespaceScope {
    reporter_kind: AttrId,
    source_namespace: AttrId,
    destination_namespace: AttrId,
}

impl NamespaceScope {
    /// The scope for `manifest`, or `None` if it lacks the attributes (then scoped rules never apply).
    pub fn new(manifest: &Manifest) -> Option<NamespaceScope> {
        let id = |n: &str| manifest.lookup(n).map(|(id, _)| id);
        Some(NamespaceScope {
            reporter_kind: id("context.reporter.kind")?,
            source_namespace: id("source.namespace")?,
            destination_namespace: id("destination.namespace")?,
        })
    }

    /// The rule's scope: `Some(namespace)` for a rule outside the config namespace.
    pub fn of_rule(rule_namespace: &str, config_namespace: &str) -> Option<String> {
        (rule_namespace != config_namespace).then(|| rule_namespace.to_string())
    }

    /// The attributes a scoped rule reads (to announce to the attribute layer).
    pub fn attributes(&self) -> [AttrId; 3] {
        [self.reporter_kind, self.source_namespace, self.destination_namespace]
    }

    /// Whether a rule with scope `rule_scope` applies to the request in `bag`.
    pub fn applies(scope: Option<&NamespaceScope>, rule_scope: Option<&str>, bag: &dyn AttributeBag) -> bool {
        let Some(ns) = rule_scope else { return true };
        let Some(s) = scope else { return false };
        let outbound = matches!(bag.get(s.reporter_kind), Some(v) if v.as_str() == Some("outbound"));
        let id = if outbound { s.source_namespace } else { s.destination_namespace };
        matches!(bag.get(id), Some(v) if v.as_str() == Some(ns))
    }
}
