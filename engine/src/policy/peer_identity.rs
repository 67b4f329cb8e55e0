//! A rule that needs the peer's identity and cannot see it.
//!
//! By Mixer's rule a match that fails to evaluate does not match. For a deny rule on
//! `source.labels` that means: when the verified peer is missing (no peer-metadata filter ahead
//! of the check, or a proxy in the path that strips the exchange), the rule silently lets
//! everything through. This module tells that case apart from other evaluation errors, so the
//! filters count it on its own (`result="no_identity"`), warn with the likely cause, and, when
//! the operator opts in (`deny.require_peer_identity`), deny such requests on inbound mTLS
//! listeners.
//!
//! Telling it apart costs nothing per request: the failed lookup's attribute name says it. Only
//! the opt-in reads the connection's mTLS flag and the listener's direction, since a plain-text
//! caller has no identity to verify and is not denied for it: a property read on every request
//! without identity would cost more than the whole check.

use crate::expr::{AttrId, AttributeBag, EvalError, Manifest, Value};

/// The attributes that only a verified peer (or the local node, for the other side) gives a
/// request: the workload's names, labels, owner and identity. Addresses, ports and service
/// names are not among them: Envoy knows those without any exchange.
const PEER_IDENTITY_ATTRIBUTES: [&str; 13] = [
    "uid",
    "labels",
    "metadata",
    "name",
    "namespace",
    "owner",
    "principal",
    "user",
    "serviceAccount",
    "workload.uid",
    "workload.name",
    "workload.namespace",
    "services",
];

/// Whether attribute `name` is one a peer's identity carries (`source.labels`,
/// `destination.principal`, ...).
pub fn is_peer_identity_attribute(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("source.").or_else(|| name.strip_prefix("destination.")) else {
        return false;
    };
    PEER_IDENTITY_ATTRIBUTES.contains(&rest)
}

/// What a plan needs to recognise a missing identity: the connection's mTLS flag and the
/// reporter kind, and the operator's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityGuard {
    mtls: AttrId,
    reporter_kind: AttrId,
    /// `deny.require_peer_identity`: deny such requests on inbound (and direction-less) listeners.
    pub require: bool,
}

/// A rule's match failed because the peer identity it needs is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingIdentity<'a> {
    /// The absent attribute, e.g. `source.labels`.
    pub attribute: &'a str,
    /// Whether the request is to be denied (`require_peer_identity`, on an inbound mTLS listener).
    pub deny: bool,
}

impl IdentityGuard {
    /// The guard for `manifest`; `None` when the manifest lacks the attributes it reads.
    pub fn new(manifest: &Manifest, require: bool) -> Option<IdentityGuard> {
        let id = |n: &str| manifest.lookup(n).map(|(id, _)| id);
        Some(IdentityGuard { mtls: id("connection.mtls")?, reporter_kind: id("context.reporter.kind")?, require })
    }

    /// The attributes the guard reads, for the filters to be able to fetch them.
    pub fn attributes(&self) -> [AttrId; 2] {
        [self.mtls, self.reporter_kind]
    }

    /// Whether `error` is a missing peer identity, and whether the request is to be denied for
    /// it. Only on the error path: a request whose match evaluates pays nothing for this.
    pub fn classify<'e>(&self, error: &EvalError<'e>, bag: &dyn AttributeBag) -> Option<MissingIdentity<'e>> {
        let EvalError::LookupFailed(attribute) = *error else { return None };
        if !is_peer_identity_attribute(attribute) {
            return None;
        }
        Some(MissingIdentity { attribute, deny: self.require && self.identity_required_here(bag) })
    }

    /// Whether this request should have carried an identity: an mTLS connection (a plain-text
    /// caller has none to verify, and Mixer's semantics stand) on a listener that is not outbound
    /// (Mixer checked on the server's sidecar: identity is required where requests arrive).
    fn identity_required_here(&self, bag: &dyn AttributeBag) -> bool {
        matches!(bag.get(self.mtls), Some(Value::Bool(true)))
            && !matches!(bag.get(self.reporter_kind), Some(v) if v.as_str() == Some("outbound"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::expr::MapBag;

    fn istio_manifest() -> &'static Manifest {
        Manifest::istio()
    }

    #[test]
    fn identity_attributes_are_the_workload_ones() {
        for name in ["source.labels", "source.principal", "destination.workload.name", "source.namespace"] {
            assert!(is_peer_identity_attribute(name), "{name}");
        }
        for name in ["source.ip", "destination.port", "request.headers", "labels", "source.labelsx"] {
            assert!(!is_peer_identity_attribute(name), "{name}");
        }
    }

    fn bag(mtls: Option<bool>, kind: Option<&'static str>) -> MapBag {
        let m = istio_manifest();
        let mut b = MapBag::new(m);
        if let Some(v) = mtls {
            b.set(m, "connection.mtls", Value::Bool(v)).unwrap();
        }
        if let Some(k) = kind {
            b.set(m, "context.reporter.kind", Value::String(k.into())).unwrap();
        }
        b
    }

    #[test]
    fn only_an_identity_lookup_on_mtls_is_a_missing_identity() {
        let m = istio_manifest();
        let guard = IdentityGuard::new(m, true).unwrap();
        let missing = EvalError::LookupFailed("source.labels");
        let inbound = bag(Some(true), Some("inbound"));
        assert_eq!(
            guard.classify(&missing, &inbound),
            Some(MissingIdentity { attribute: "source.labels", deny: true })
        );
        // Outbound listeners never deny for it; direction-less ones do.
        assert_eq!(guard.classify(&missing, &bag(Some(true), Some("outbound"))).map(|m| m.deny), Some(false));
        assert_eq!(guard.classify(&missing, &bag(Some(true), None)).map(|m| m.deny), Some(true));
        // Plain text, or an unknown mTLS flag: counted, never denied (Mixer's semantics).
        assert_eq!(guard.classify(&missing, &bag(Some(false), Some("inbound"))).map(|m| m.deny), Some(false));
        assert_eq!(guard.classify(&missing, &bag(None, Some("inbound"))).map(|m| m.deny), Some(false));
        // Other errors are not identity errors.
        assert_eq!(guard.classify(&EvalError::LookupFailed("request.headers"), &inbound), None);
        assert_eq!(guard.classify(&EvalError::Other("lookup failed: 'source.labels'".into()), &inbound), None);
        // Without the opt-in it is counted, never denied.
        let counting = IdentityGuard::new(m, false).unwrap();
        assert_eq!(counting.classify(&missing, &inbound).map(|m| m.deny), Some(false));
    }
}
