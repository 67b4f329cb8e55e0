//! The two-sidecar path: a `reviews-v2` client sidecar (outbound listener) originating Istio
//! mTLS to a `ratings-v1` server sidecar (inbound listener, direct response), with certificates
//! carrying SPIFFE URI SANs from the integration harness's test CA.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use wasmixer_integration::pki::TestCa;

/// A certificate and key for one workload, and the CA that signed it.
#[derive(Clone, Debug)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

pub struct Pki {
    pub client: Identity,
    pub server: Identity,
}

/// A CA and the two workload certificates, from the integration harness's test CA.
pub fn make_pki(dir: &Path) -> Result<Pki, String> {
    let ca = TestCa::create(dir, "cluster.local").map_err(|e| e.to_string())?;
    let issue = |sa: &str| -> Result<Identity, String> {
        let c = ca.issue("default", sa).map_err(|e| e.to_string())?;
        Ok(Identity { cert: c.cert, key: c.key, ca: ca.ca_cert() })
    };
    Ok(Pki { client: issue("bookinfo-reviews")?, server: issue("bookinfo-ratings")? })
}

/// Istio's TLS settings for a sidecar (as the integration harness writes them).
pub fn common_tls(id: &Identity) -> Value {
    json!({
        "tls_certificates": [{"certificate_chain": {"filename": id.cert.to_string_lossy()}, "private_key": {"filename": id.key.to_string_lossy()}}],
        "validation_context": {"trusted_ca": {"filename": id.ca.to_string_lossy()}},
        "alpn_protocols": ["istio-peer-exchange", "h2", "http/1.1"]
    })
}

/// The client workload's node: `reviews-v2` (the seed rule looks at reviews-v3: it evaluates
/// in full with the peer present, and does not match).
pub fn client_node() -> Value {
    json!({
        "id": "sidecar~127.0.0.1~reviews-v2-bench.default~default.svc.cluster.local",
        "cluster": "reviews.default",
        "metadata": {
            "NAME": "reviews-v2-bench",
            "NAMESPACE": "default",
            "WORKLOAD_NAME": "reviews-v2",
            "SERVICE_ACCOUNT": "bookinfo-reviews",
            "LABELS": {"app": "reviews", "version": "v2"},
            "OWNER": "kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v2",
            "CLUSTER_ID": "Kubernetes",
            "MESH_ID": "cluster.local",
            "ISTIO_VERSION": "1.4.10-wasmixer"
        }
    })
}

/// The outbound cluster to the server sidecar (Istio's name, so the peer-metadata filter
/// announces the client to it).
pub const SERVER_CLUSTER: &str = "outbound|9080||ratings.default.svc.cluster.local";

pub fn server_cluster(port: u16, client: &Identity) -> Value {
    json!({
        "name": SERVER_CLUSTER,
        "connect_timeout": "2s",
        "type": "STATIC",
        "load_assignment": {"cluster_name": SERVER_CLUSTER, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
        "transport_socket": {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", "common_tls_context": common_tls(client)}
        }
    })
}

/// The server's inbound transport socket: mTLS required.
pub fn server_transport(server: &Identity) -> Value {
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": true,
            "common_tls_context": common_tls(server)
        }
    })
}
