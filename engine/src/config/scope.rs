//! Mixer's namespace scoping of rules (`dispatcher/util.go`, `getIdentityNamespace`): a rule in
//! the config namespace applies to all traffic; a rule elsewhere only when the request's
//! identity namespace is the rule's: the destination's for inbound (or unknown) reporters, the
//! source's for outbound ones.

use crate::expr::{AttrId, AttributeBag, Manifest};

/// How a plan decides a request's identity namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceScope {
    /// From the request's attributes (a bag that is not a proxy's own: the CLI, tests).
    Attributes { reporter_kind: AttrId, source_namespace: AttrId, destination_namespace: AttrId },
    /// Inside a proxy the identity namespace is always its own workload's: the destination of
    /// an inbound (or unknown) reporter and the source of an outbound one are both the local
    /// workload. So it is settled once, from the node metadata, and costs requests nothing.
    Proxy(Option<String>),
}

impl NamespaceScope {
    /// The scope for `manifest`, or `None` if it lacks the attributes (then scoped rules never apply).
    pub fn new(manifest: &Manifest) -> Option<NamespaceScope> {
        let id = |n: &str| manifest.lookup(n).map(|(id, _)| id);
        Some(NamespaceScope::Attributes {
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
    pub fn attributes(&self) -> Vec<AttrId> {
        match self {
            NamespaceScope::Attributes { reporter_kind, source_namespace, destination_namespace } => {
                vec![*reporter_kind, *source_namespace, *destination_namespace]
            }
            NamespaceScope::Proxy(_) => Vec::new(),
        }
    }

    /// Settles a plan's scope for a proxy whose own workload is in `own_namespace`.
    pub fn settle_for_proxy(scope: &mut Option<NamespaceScope>, own_namespace: Option<&str>) {
        if let Some(s) = scope {
            *s = NamespaceScope::Proxy(own_namespace.map(str::to_string));
        }
    }

    /// Whether a rule with scope `rule_scope` applies to the request in `bag`.
    pub fn applies(scope: Option<&NamespaceScope>, rule_scope: Option<&str>, bag: &dyn AttributeBag) -> bool {
        let Some(ns) = rule_scope else { return true };
        match scope {
            None => false,
            Some(NamespaceScope::Proxy(own)) => own.as_deref() == Some(ns),
            Some(&NamespaceScope::Attributes { reporter_kind, source_namespace, destination_namespace }) => {
                let outbound = matches!(bag.get(reporter_kind), Some(v) if v.as_str() == Some("outbound"));
                let id = if outbound { source_namespace } else { destination_namespace };
                matches!(bag.get(id), Some(v) if v.as_str() == Some(ns))
            }
        }
    }
}
