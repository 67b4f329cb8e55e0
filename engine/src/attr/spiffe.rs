//! Istio SPIFFE identities (`spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`),
//! Mixer's principal form of them, and the project's rule for trusting a peer's metadata claim.
//!
//! * Parsing is strict: exactly the Istio shape, trust domain and path segments restricted to
//!   the SPIFFE ID character sets (SPIFFE `standards/SPIFFE-ID.md`: trust domain
//!   `[a-z0-9._-]`, path segments `[A-Za-z0-9._-]`, no `.`/`..` segments, at most 2048 bytes),
//!   so no percent-encoding, query, fragment, port, user info or upper-case scheme.
//! * Mixer's `source.principal` / `destination.principal` is the certificate's first URI SAN
//!   with `spiffe://` removed: `cluster.local/ns/default/sa/bookinfo-productpage` (istio/proxy
//!   1.5 `src/envoy/utils/utils.cc` `GetPrincipal`).
//! * Peer metadata (`x-envoy-peer-metadata`) is a claim anyone can forge. It is trusted only
//!   when the connection is mTLS and the peer certificate's SPIFFE namespace and service
//!   account equal the claimed ones ([`verify_peer_claim`]).

use std::fmt;

use crate::attr::workload::WorkloadMetadata;

/// The URI scheme and authority separator of a SPIFFE ID.
pub const SPIFFE_PREFIX: &str = "spiffe://";
/// Maximum length of a SPIFFE ID, in bytes (SPIFFE ID spec §2.3).
pub const MAX_SPIFFE_ID_LEN: usize = 2048;
/// Maximum length of a trust domain, in bytes (SPIFFE ID spec §2.1).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// Why a string is not an Istio SPIFFE identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpiffeError {
    /// Does not start with `spiffe://` (or, for a principal, is empty).
    NotSpiffe,
    /// Longer than [`MAX_SPIFFE_ID_LEN`].
    TooLong,
    /// Empty trust domain, too long, or a character outside `[a-z0-9._-]`.
    InvalidTrustDomain,
    /// The path is not exactly `/ns/<namespace>/sa/<service-account>`.
    NotIstioShape,
    /// A namespace or service account that is empty, `.`/`..`, or has a character outside
    /// `[A-Za-z0-9._-]`.
    InvalidSegment,
}

impl fmt::Display for SpiffeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpiffeError::NotSpiffe => "not a SPIFFE ID",
            SpiffeError::TooLong => "SPIFFE ID too long",
            SpiffeError::InvalidTrustDomain => "invalid SPIFFE trust domain",
            SpiffeError::NotIstioShape => "SPIFFE path is not /ns/<namespace>/sa/<service-account>",
            SpiffeError::InvalidSegment => "invalid SPIFFE path segment",
        })
    }
}

impl std::error::Error for SpiffeError {}

/// An Istio workload identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    trust_domain: String,
    namespace: String,
    service_account: String,
}

impl SpiffeId {
    /// Builds an identity, validating each part as [`SpiffeId::parse`] would.
    pub fn new(trust_domain: &str, namespace: &str, service_account: &str) -> Result<SpiffeId, SpiffeError> {
        validate_trust_domain(trust_domain)?;
        validate_segment(namespace)?;
        validate_segment(service_account)?;
        let id = SpiffeId {
            trust_domain: trust_domain.to_owned(),
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
        };
        if SPIFFE_PREFIX.len() + id.principal_len() > MAX_SPIFFE_ID_LEN {
            return Err(SpiffeError::TooLong);
        }
        Ok(id)
    }

    /// Parses `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`, strictly.
    pub fn parse(uri: &str) -> Result<SpiffeId, SpiffeError> {
        if uri.len() > MAX_SPIFFE_ID_LEN {
            return Err(SpiffeError::TooLong);
        }
        let rest = uri.strip_prefix(SPIFFE_PREFIX).ok_or(SpiffeError::NotSpiffe)?;
        SpiffeId::parse_principal_body(rest)
    }

    /// Parses Mixer's principal form, `<trust-domain>/ns/<namespace>/sa/<service-account>`.
    pub fn parse_principal(principal: &str) -> Result<SpiffeId, SpiffeError> {
        if principal.is_empty() {
            return Err(SpiffeError::NotSpiffe);
        }
        if SPIFFE_PREFIX.len() + principal.len() > MAX_SPIFFE_ID_LEN {
            return Err(SpiffeError::TooLong);
        }
        SpiffeId::parse_principal_body(principal)
    }

    fn parse_principal_body(rest: &str) -> Result<SpiffeId, SpiffeError> {
        let (trust_domain, path) = rest.split_once('/').unwrap_or((rest, ""));
        validate_trust_domain(trust_domain)?;
        let mut parts = path.split('/');
        let (Some("ns"), Some(ns), Some("sa"), Some(sa), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SpiffeError::NotIstioShape);
        };
        validate_segment(ns)?;
        validate_segment(sa)?;
        Ok(SpiffeId { trust_domain: trust_domain.to_owned(), namespace: ns.to_owned(), service_account: sa.to_owned() })
    }

    /// The trust domain, e.g. `cluster.local`.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The Kubernetes namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The service account name.
    pub fn service_account(&self) -> &str {
        &self.service_account
    }

    /// The URI, `spiffe://cluster.local/ns/default/sa/bookinfo-productpage`.
    pub fn uri(&self) -> String {
        format!("{SPIFFE_PREFIX}{}", self.principal())
    }

    /// Mixer's principal form, `cluster.local/ns/default/sa/bookinfo-productpage`.
    pub fn principal(&self) -> String {
        format!("{}/ns/{}/sa/{}", self.trust_domain, self.namespace, self.service_account)
    }

    fn principal_len(&self) -> usize {
        self.trust_domain.len() + "/ns/".len() + self.namespace.len() + "/sa/".len() + self.service_account.len()
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SPIFFE_PREFIX}{}/ns/{}/sa/{}", self.trust_domain, self.namespace, self.service_account)
    }
}

fn validate_trust_domain(td: &str) -> Result<(), SpiffeError> {
    let ok = !td.is_empty()
        && td.len() <= MAX_TRUST_DOMAIN_LEN
        && td.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(SpiffeError::InvalidTrustDomain)
    }
}

fn validate_segment(s: &str) -> Result<(), SpiffeError> {
    let ok = !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(SpiffeError::InvalidSegment)
    }
}

/// Mixer's principal attribute from a certificate URI SAN, exactly as istio/proxy 1.5 computed
/// it: the SAN with a leading `spiffe://` removed, any other SAN unchanged. Not a validation:
/// use [`SpiffeId::parse`] to check the shape.
pub fn principal_from_uri_san(uri_san: &str) -> &str {
    uri_san.strip_prefix(SPIFFE_PREFIX).unwrap_or(uri_san)
}

/// Why a peer's metadata claim is not backed by its certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnverifiedReason {
    /// The connection is not mutual TLS (plain text, or TLS without a client certificate).
    NoMtls,
    /// mTLS, but no URI SAN in the peer certificate.
    NoCertificate,
    /// The peer certificate's URI SAN is not an Istio SPIFFE identity.
    NotSpiffe,
    /// The certificate's namespace differs from the claimed `NAMESPACE`.
    NamespaceMismatch,
    /// The certificate's service account differs from the claimed `SERVICE_ACCOUNT` (an empty
    /// claim never matches).
    ServiceAccountMismatch,
}

impl UnverifiedReason {
    /// A stable snake_case name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            UnverifiedReason::NoMtls => "no_mtls",
            UnverifiedReason::NoCertificate => "no_certificate",
            UnverifiedReason::NotSpiffe => "not_spiffe",
            UnverifiedReason::NamespaceMismatch => "namespace_mismatch",
            UnverifiedReason::ServiceAccountMismatch => "service_account_mismatch",
        }
    }
}

impl fmt::Display for UnverifiedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a peer's metadata claim can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerTrust {
    /// mTLS, and the certificate's namespace and service account equal the claim's.
    ///
    /// Even then only those two fields are proven. Labels, workload and pod name remain what a
    /// holder of that service account chose to say: any workload running as
    /// `ns/default/sa/bookinfo-reviews` can claim `version=v3`.
    Verified,
    /// The claim is unsupported: use it for telemetry hints only, never for policy.
    Unverified(UnverifiedReason),
}

impl PeerTrust {
    /// Whether the claim is [`PeerTrust::Verified`].
    pub fn is_verified(self) -> bool {
        self == PeerTrust::Verified
    }

    /// The reason, when unverified.
    pub fn reason(self) -> Option<UnverifiedReason> {
        match self {
            PeerTrust::Verified => None,
            PeerTrust::Unverified(r) => Some(r),
        }
    }
}

/// Checks a peer's metadata `claim` against its transport identity.
///
/// `peer_uri_san` is the peer certificate's first URI SAN (Envoy property
/// `connection.uri_san_peer_certificate` inbound, `upstream.uri_san_peer_certificate`
/// outbound); `mtls` is `connection.mtls` (inbound) or the upstream equivalent. The checks run
/// in order: mTLS, certificate present, SPIFFE shape, namespace, service account. The trust
/// domain is not compared; callers that pin one should check [`SpiffeId::trust_domain`].
pub fn verify_peer_claim(claim: &WorkloadMetadata, peer_uri_san: Option<&str>, mtls: bool) -> PeerTrust {
    if !mtls {
        return PeerTrust::Unverified(UnverifiedReason::NoMtls);
    }
    let san = match peer_uri_san {
        Some(s) if !s.is_empty() => s,
        _ => return PeerTrust::Unverified(UnverifiedReason::NoCertificate),
    };
    let Ok(id) = SpiffeId::parse(san) else {
        return PeerTrust::Unverified(UnverifiedReason::NotSpiffe);
    };
    if id.namespace != claim.namespace {
        return PeerTrust::Unverified(UnverifiedReason::NamespaceMismatch);
    }
    if id.service_account != claim.service_account {
        return PeerTrust::Unverified(UnverifiedReason::ServiceAccountMismatch);
    }
    PeerTrust::Verified
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::expr::StringMap;

    const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";

    #[test]
    fn parses_and_renders_istio_ids() {
        let id = SpiffeId::parse(PRODUCTPAGE).unwrap();
        assert_eq!(id.trust_domain(), "cluster.local");
        assert_eq!(id.namespace(), "default");
        assert_eq!(id.service_account(), "bookinfo-productpage");
        assert_eq!(id.uri(), PRODUCTPAGE);
        assert_eq!(id.to_string(), PRODUCTPAGE);
        assert_eq!(id.principal(), "cluster.local/ns/default/sa/bookinfo-productpage");
        assert_eq!(SpiffeId::parse_principal(&id.principal()).unwrap(), id);
        assert_eq!(SpiffeId::new("cluster.local", "default", "bookinfo-productpage").unwrap(), id);
        let odd = SpiffeId::parse("spiffe://td_1.example-x/ns/Ns.1/sa/s_a-2").unwrap();
        assert_eq!(odd.namespace(), "Ns.1");
    }

    #[test]
    fn rejects_everything_else() {
        use SpiffeError::*;
        let cases: &[(&str, SpiffeError)] = &[
            ("", NotSpiffe),
            ("cluster.local/ns/default/sa/x", NotSpiffe),
            ("SPIFFE://cluster.local/ns/default/sa/x", NotSpiffe),
            ("https://cluster.local/ns/default/sa/x", NotSpiffe),
            ("spiffe://", InvalidTrustDomain),
            ("spiffe:///ns/default/sa/x", InvalidTrustDomain),
            ("spiffe://Cluster.local/ns/default/sa/x", InvalidTrustDomain),
            ("spiffe://cluster.local:443/ns/default/sa/x", InvalidTrustDomain),
            ("spiffe://user@cluster.local/ns/default/sa/x", InvalidTrustDomain),
            ("spiffe://cluster.local", NotIstioShape),
            ("spiffe://cluster.local/", NotIstioShape),
            ("spiffe://cluster.local/ns/default", NotIstioShape),
            ("spiffe://cluster.local/ns/default/sa", NotIstioShape),
            ("spiffe://cluster.local/ns/default/sa/x/", NotIstioShape),
            ("spiffe://cluster.local/ns/default/sa/x/extra", NotIstioShape),
            ("spiffe://cluster.local/namespace/default/sa/x", NotIstioShape),
            ("spiffe://cluster.local/ns/default/serviceaccount/x", NotIstioShape),
            ("spiffe://cluster.local//ns/default/sa/x", NotIstioShape),
            ("spiffe://cluster.local/ns//sa/x", InvalidSegment),
            ("spiffe://cluster.local/ns/default/sa/", InvalidSegment),
            ("spiffe://cluster.local/ns/../sa/x", InvalidSegment),
            ("spiffe://cluster.local/ns/./sa/x", InvalidSegment),
            ("spiffe://cluster.local/ns/def%61ult/sa/x", InvalidSegment),
            ("spiffe://cluster.local/ns/default/sa/x?y=1", InvalidSegment),
            ("spiffe://cluster.local/ns/default/sa/x#frag", InvalidSegment),
            ("spiffe://cluster.local/ns/default/sa/x y", InvalidSegment),
            ("spiffe://cluster.local/ns/default/sa/x\u{e9}", InvalidSegment),
            ("spiffe://cluster.local/ns/default/sa/x\n", InvalidSegment),
        ];
        for (input, want) in cases {
            assert_eq!(SpiffeId::parse(input), Err(*want), "{input:?}");
        }
        let long = format!("spiffe://cluster.local/ns/default/sa/{}", "a".repeat(MAX_SPIFFE_ID_LEN));
        assert_eq!(SpiffeId::parse(&long), Err(SpiffeError::TooLong));
        let long_td = format!("spiffe://{}/ns/a/sa/b", "a".repeat(MAX_TRUST_DOMAIN_LEN + 1));
        assert_eq!(SpiffeId::parse(&long_td), Err(SpiffeError::InvalidTrustDomain));
        assert_eq!(SpiffeId::new("cluster.local", "", "sa"), Err(SpiffeError::InvalidSegment));
        assert_eq!(SpiffeId::new("cluster.local", "ns", "a/b"), Err(SpiffeError::InvalidSegment));
        assert_eq!(SpiffeId::new("", "ns", "sa"), Err(SpiffeError::InvalidTrustDomain));
        assert_eq!(SpiffeId::new("cluster.local", "ns", &"a".repeat(MAX_SPIFFE_ID_LEN)), Err(SpiffeError::TooLong));
        assert_eq!(SpiffeId::parse_principal(""), Err(SpiffeError::NotSpiffe));
        assert_eq!(SpiffeId::parse_principal(PRODUCTPAGE), Err(SpiffeError::InvalidTrustDomain));
    }

    #[test]
    fn mixer_principal_from_san() {
        assert_eq!(principal_from_uri_san(PRODUCTPAGE), "cluster.local/ns/default/sa/bookinfo-productpage");
        assert_eq!(principal_from_uri_san("https://example.com/x"), "https://example.com/x");
        assert_eq!(principal_from_uri_san(""), "");
    }

    fn claim(ns: &str, sa: &str, labels: &[(&str, &str)]) -> WorkloadMetadata {
        WorkloadMetadata {
            name: "reviews-v3-7d7f4f4c8-x2x9z".into(),
            namespace: ns.into(),
            workload_name: "reviews-v3".into(),
            service_account: sa.into(),
            labels: StringMap::from_pairs(labels.iter().copied()),
            ..WorkloadMetadata::default()
        }
    }

    const REVIEWS_SAN: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";

    #[test]
    fn verified_when_certificate_matches() {
        let c = claim("default", "bookinfo-reviews", &[("app", "reviews"), ("version", "v3")]);
        let t = verify_peer_claim(&c, Some(REVIEWS_SAN), true);
        assert_eq!(t, PeerTrust::Verified);
        assert!(t.is_verified());
        assert_eq!(t.reason(), None);
    }

    #[test]
    fn forged_reviews_v3_over_plain_text_is_unverified() {
        // A client with no certificate sends x-envoy-peer-metadata claiming to be reviews v3.
        let forged = claim("default", "bookinfo-reviews", &[("app", "reviews"), ("version", "v3")]);
        let t = verify_peer_claim(&forged, None, false);
        assert_eq!(t, PeerTrust::Unverified(UnverifiedReason::NoMtls));
        assert!(!t.is_verified());
        // Even a SAN value reported without mTLS does not help.
        assert_eq!(
            verify_peer_claim(&forged, Some(REVIEWS_SAN), false),
            PeerTrust::Unverified(UnverifiedReason::NoMtls)
        );
        // Round-tripped through the header, as it would arrive.
        let decoded = WorkloadMetadata::decode_header(&forged.encode_header()).unwrap();
        assert_eq!(decoded.labels.get("version"), Some("v3"));
        assert_eq!(verify_peer_claim(&decoded, None, false).reason(), Some(UnverifiedReason::NoMtls));
    }

    #[test]
    fn mtls_without_uri_san() {
        let c = claim("default", "bookinfo-reviews", &[]);
        assert_eq!(verify_peer_claim(&c, None, true), PeerTrust::Unverified(UnverifiedReason::NoCertificate));
        assert_eq!(verify_peer_claim(&c, Some(""), true), PeerTrust::Unverified(UnverifiedReason::NoCertificate));
    }

    #[test]
    fn non_spiffe_certificate() {
        let c = claim("default", "bookinfo-reviews", &[]);
        for san in ["https://reviews.example.com", "spiffe://cluster.local/workload/reviews", "SPIFFE://x/ns/a/sa/b"] {
            assert_eq!(
                verify_peer_claim(&c, Some(san), true),
                PeerTrust::Unverified(UnverifiedReason::NotSpiffe),
                "{san}"
            );
        }
    }

    #[test]
    fn namespace_mismatch() {
        // A workload in namespace "attacker" claims to be default/reviews v3.
        let forged = claim("default", "bookinfo-reviews", &[("app", "reviews"), ("version", "v3")]);
        let san = "spiffe://cluster.local/ns/attacker/sa/bookinfo-reviews";
        assert_eq!(
            verify_peer_claim(&forged, Some(san), true),
            PeerTrust::Unverified(UnverifiedReason::NamespaceMismatch)
        );
    }

    #[test]
    fn service_account_mismatch() {
        // productpage (same namespace, its own SA) claims to be reviews v3.
        let forged = claim("default", "bookinfo-reviews", &[("app", "reviews"), ("version", "v3")]);
        assert_eq!(
            verify_peer_claim(&forged, Some(PRODUCTPAGE), true),
            PeerTrust::Unverified(UnverifiedReason::ServiceAccountMismatch)
        );
        // A claim without SERVICE_ACCOUNT never verifies.
        let silent = claim("default", "", &[]);
        assert_eq!(
            verify_peer_claim(&silent, Some(PRODUCTPAGE), true),
            PeerTrust::Unverified(UnverifiedReason::ServiceAccountMismatch)
        );
    }

    #[test]
    fn reason_names() {
        assert_eq!(UnverifiedReason::NoMtls.to_string(), "no_mtls");
        assert_eq!(UnverifiedReason::ServiceAccountMismatch.as_str(), "service_account_mismatch");
        assert_eq!(SpiffeError::NotIstioShape.to_string(), "SPIFFE path is not /ns/<namespace>/sa/<service-account>");
    }
}
