//! The two-sidecar path: a `reviews-v2` client sidecar (outbound listener) originating Istio
//! mTLS to a `ratings-v1` server sidecar (inbound listener, direct response), with certificates
//! carrying SPIFFE URI SANs, made here with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

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

fn openssl(args: &[&str], dir: &Path) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("running openssl: {e} (make setup installs it)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

/// A CA and the two workloads' certificates in `dir`.
pub fn make_pki(dir: &Path) -> Result<Pki, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"], dir)?;
    openssl(
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-days",
            "2",
            "-subj",
            "/O=wasmixer bench CA",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir,
    )?;
    let issue = |sa: &str| -> Result<Identity, String> {
        let (key, csr, cert, ext) =
            (format!("{sa}.key"), format!("{sa}.csr"), format!("{sa}.pem"), format!("{sa}.ext"));
        let extensions = format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=critical,URI:spiffe://cluster.local/ns/default/sa/{sa}\n"
        );
        std::fs::write(dir.join(&ext), extensions).map_err(|e| e.to_string())?;
        openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &key], dir)?;
        openssl(&["req", "-new", "-key", &key, "-subj", "/O=wasmixer bench workload", "-out", &csr], dir)?;
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
            dir,
        )?;
        Ok(Identity { cert: dir.join(cert), key: dir.join(key), ca: dir.join("ca.pem") })
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
