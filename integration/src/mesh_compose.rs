//! The mesh as containers: `envoy-config/docker-compose.yml` and the per-workload bootstraps it
//! mounts, generated from the same description and code as the in-process mesh
//! ([`crate::mesh`]): each workload is a pod of two containers sharing one network namespace,
//! its sidecar (stock Envoy, the wasmixer filters from `dist/` mounted read-only) and its
//! application (`mesh-app`, the in-crate samples), on one bridge network with fixed addresses.
//!
//! Unlike the in-process mesh the configuration is static: mTLS everywhere (the seed's
//! mesh-wide `MeshPolicy` and `DestinationRule` plus bookinfo's rules) and the seed's Mixer
//! resources (deny, double-request-count, newlog) from the start.
//!
//! `mesh-compose generate` writes `envoy-config/docker-compose.yml` (checked in; a test keeps
//! it equal to [`compose_yaml`]) and `envoy-config/compose/generated/` (certificates and
//! bootstraps, not checked in); `mesh-compose verify` runs the seed's deny and metrics scenarios
//! against the running containers. `make test-compose` does both around `docker-compose up`.

use std::path::Path;

use serde_json::{json, Value};

use crate::bootstrap::wasm_filter;
use crate::mesh::{WorkloadSpec, BOOKINFO_DESTINATION_RULES, DEFAULT_STATS_TAGS, FILTER_ORDER};
use crate::mesh_control::ControlPlane;
use crate::pki::{TestCa, WorkloadCert};
use crate::sidecar::{SidecarOptions, SidecarSpec, Upstream};
use crate::HarnessError;

/// The bridge network's subnet (`WASMIXER_SUBNET` is not read: addresses are in the bootstraps).
pub const SUBNET: &str = "172.30.99.0/24";
/// Istio's ports: admin, outbound, inbound.
pub const ADMIN_PORT: u16 = 15000;
pub const OUTBOUND_PORT: u16 = 15001;
pub const INBOUND_PORT: u16 = 15006;
/// Where a sidecar container finds its bootstrap and certificates, and the filters.
pub const PROXY_DIR: &str = "/etc/istio-proxy";
pub const WASM_DIR: &str = "/etc/wasmixer/dist";

/// The compose mesh's workloads: bookinfo and sleep/httpbin, as in [`crate::mesh::MeshSpec::seed`].
pub fn workloads() -> Vec<WorkloadSpec> {
    let mut w = crate::mesh::bookinfo_workloads();
    w.extend(crate::mesh::sleep_httpbin_workloads());
    w
}

/// The pod address of workload `i`.
pub fn pod_ip(i: usize) -> String {
    format!("172.30.99.{}", 10 + i)
}

/// The compose service name of a workload (`ratings-v1`, `sleep-foo`, `istio-ingressgateway`).
pub fn service_name(w: &WorkloadSpec) -> String {
    match w.workload.namespace.as_str() {
        "default" | "istio-system" => w.workload.name.clone(),
        ns => format!("{}-{ns}", w.workload.name),
    }
}

/// The app name `mesh-app` takes.
fn app_arg(w: &WorkloadSpec) -> Option<String> {
    use crate::apps::App;
    Some(match w.app.as_ref()? {
        App::ProductPage => "productpage".into(),
        App::Details => "details".into(),
        App::Reviews(v) => format!("reviews-{v}"),
        App::Ratings => "ratings".into(),
        App::Httpbin => "httpbin".into(),
        App::Sleep => "sleep".into(),
    })
}

const SEED_FILES: [(&str, &str); 6] = [
    ("mtls-meshpolicy-strict.yaml", include_str!("../testdata/mesh-seed/mtls-meshpolicy-strict.yaml")),
    ("mtls-mesh-wide.yaml", include_str!("../testdata/mesh-seed/mtls-mesh-wide.yaml")),
    ("bookinfo-destination-rules.yaml", BOOKINFO_DESTINATION_RULES),
    ("deny-reviews-v3.yaml", include_str!("../testdata/mesh-seed/deny-reviews-v3.yaml")),
    ("double-request-count.yaml", include_str!("../testdata/mesh-seed/double-request-count.yaml")),
    ("newlog-stdio.yaml", include_str!("../testdata/mesh-seed/newlog-stdio.yaml")),
];

/// The seed files, converted by `wasmixer convert`'s code.
fn control_plane() -> Result<ControlPlane, HarnessError> {
    let mut control = ControlPlane::new();
    for (file, text) in SEED_FILES {
        control.apply(file, text)?;
    }
    Ok(control)
}

/// The bootstrap (JSON) of workload `i`'s sidecar container; `istio`: under the Istio sidecar
/// profile ([`crate::istio_profile`]).
pub fn bootstrap(i: usize, istio: bool) -> Result<String, HarnessError> {
    let all = workloads();
    let w = all.get(i).ok_or_else(|| HarnessError::check(format!("no workload {i}")))?;
    let control = control_plane()?;
    let tls = control.tls();
    let cert = WorkloadCert {
        cert: Path::new(PROXY_DIR).join("cert-chain.pem"),
        key: Path::new(PROXY_DIR).join("key.pem"),
        spiffe_id: format!("spiffe://cluster.local/ns/{}/sa/{}", w.workload.namespace, w.workload.service_account),
    };
    let ca = Path::new(PROXY_DIR).join("root-cert.pem");
    let (mut inbound_filters, mut outbound_filters) = (Vec::new(), Vec::new());
    if istio {
        inbound_filters.push(crate::istio_profile::metadata_exchange_filter());
        outbound_filters.push(crate::istio_profile::metadata_exchange_filter());
    }
    for f in FILTER_ORDER {
        let entry = wasm_filter(f, &Path::new(WASM_DIR).join(format!("{f}.wasm")), &control.filter_config(f));
        inbound_filters.push(entry.clone());
        if f != "deny" {
            outbound_filters.push(entry);
        }
    }
    let upstreams = all
        .iter()
        .enumerate()
        .filter(|(_, n)| n.app.is_some())
        .map(|(j, n)| Upstream {
            host: n.host(),
            service_port: n.port,
            address: pod_ip(j),
            port: INBOUND_PORT,
            mtls: tls.originates(&w.workload.namespace, &n.host(), n.port),
        })
        .collect();
    // The filters' own tags are added by the sidecar bootstrap.
    let tags: Vec<String> = DEFAULT_STATS_TAGS.iter().map(|t| t.to_string()).collect();
    let spec = SidecarSpec {
        workload: &w.workload,
        service_host: w.host(),
        service_port: w.port,
        inbound_port: INBOUND_PORT,
        outbound_port: OUTBOUND_PORT,
        app_port: w.port,
        inbound_tls: tls.server_mode(&w.workload.namespace, &w.service, w.port),
        cert: Some(&cert),
        ca_cert: Some(&ca),
        upstreams,
        inbound_filters,
        outbound_filters,
        stats_tags: tags,
    };
    let options = SidecarOptions {
        ip: Some(pod_ip(i)),
        app_ip: None,
        tracing: None,
        access_log_path: Some("/dev/stdout".into()),
        admin_port: Some(ADMIN_PORT),
    };
    let mut b: Value = serde_json::from_str(&spec.bootstrap_with(&options))
        .map_err(|e| HarnessError::check(format!("bootstrap: {e}")))?;
    if let Some(target) = &w.ingress_to {
        let port = all.iter().find(|n| n.host() == *target).map_or(9080, |n| n.port);
        if let Some(listeners) = b["static_resources"]["listeners"].as_array_mut() {
            for l in listeners.iter_mut().filter(|l| l["name"] == "outbound") {
                if let Some(list) =
                    l["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"].as_array_mut()
                {
                    list.push(json!({"name": "ingress", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": format!("outbound|{port}||{target}")}}]}));
                }
            }
        }
    }
    serde_json::to_string_pretty(&b).map_err(|e| HarnessError::check(e.to_string()))
}

/// `envoy-config/docker-compose.yml`.
pub fn compose_yaml() -> String {
    let mut out = String::from(
        r#"# The wasmixer mesh as containers: bookinfo (namespace default, behind an ingress gateway) and
# sleep/httpbin (namespaces foo, bar), one pod per workload = a sidecar container (stock Envoy
# with the wasmixer filters) + an application container sharing its network namespace, on one
# bridge network with fixed addresses. mTLS everywhere; the seed's deny rule, double counter and
# access log configured from the start.
#
# GENERATED by `cargo run -p wasmixer-integration --bin mesh-compose -- generate` from
# integration/src/mesh_compose.rs (a test keeps this file equal to the generator): edit that.
#
#   make test-compose                       # build images, generate, up, verify, down
#   bash envoy-config/compose/build-images.sh   # images only: FROM scratch, no registry needed
#   cargo run -p wasmixer-integration --bin mesh-compose -- generate   # certificates + bootstraps
#   docker-compose -f envoy-config/docker-compose.yml -p wasmixer up -d
#   curl http://172.30.99.10:15001/productpage       # through the ingress gateway
#   curl -s http://172.30.99.16:15000/stats/prometheus | grep istio_double_request_count
#
# Images: `wasmixer-envoy:local` is FROM scratch with the Envoy binary the tests use and the
# glibc libraries `ldd` lists (envoy-config/compose/build-images.sh). To use the official
# image instead: WASMIXER_ENVOY_IMAGE=envoyproxy/envoy:v1.40.0 (its Envoy is at the same path).
# The filters are mounted from dist/ (`make wasm`), the bootstraps and certificates from
# envoy-config/compose/generated/.
version: "2.4"

networks:
  mesh:
    driver: bridge
    ipam:
      config:
      - subnet: 172.30.99.0/24

services:
"#,
    );
    for (i, w) in workloads().iter().enumerate() {
        let svc = service_name(w);
        out.push_str(&format!(
            r#"
  # {name}.{ns} (service {service}:{port}, service account {sa})
  {svc}-proxy:
    image: ${{WASMIXER_ENVOY_IMAGE:-wasmixer-envoy:local}}
    entrypoint: ["/usr/local/bin/envoy"]
    command: ["-c", "/etc/istio-proxy/bootstrap.json", "--concurrency", "1", "--disable-hot-restart", "-l", "info", "--file-flush-interval-msec", "1000"]
    volumes:
    - ./compose/generated/{svc}:/etc/istio-proxy:ro
    - ../dist:/etc/wasmixer/dist:ro
    networks:
      mesh:
        ipv4_address: {ip}
"#,
            name = w.workload.name,
            ns = w.workload.namespace,
            service = w.service,
            port = w.port,
            sa = w.workload.service_account,
            ip = pod_ip(i),
        ));
        if let Some(app) = app_arg(w) {
            out.push_str(&format!(
                r#"  {svc}:
    image: ${{WASMIXER_APP_IMAGE:-wasmixer-mesh-app:local}}
    entrypoint: ["/usr/local/bin/mesh-app"]
    command: ["{app}", "127.0.0.1:{port}", "{ip}:{OUTBOUND_PORT}", "{pod}"]
    network_mode: "service:{svc}-proxy"
    depends_on: [{svc}-proxy]
"#,
                port = w.port,
                ip = pod_ip(i),
                pod = w.workload.pod_name(),
            ));
        }
    }
    out
}

/// Writes `dir/<service>/{bootstrap.json, cert-chain.pem, key.pem, root-cert.pem}` for every
/// workload (a fresh CA in `dir/pki`); `istio`: the sidecars under the Istio sidecar profile.
pub fn generate(dir: &Path, istio: bool) -> Result<(), HarnessError> {
    let _ = std::fs::remove_dir_all(dir);
    let ca = TestCa::create(&dir.join("pki"), crate::mesh::TRUST_DOMAIN)?;
    for (i, w) in workloads().iter().enumerate() {
        let d = dir.join(service_name(w));
        std::fs::create_dir_all(&d).map_err(|e| HarnessError::io(format!("creating {}", d.display()), e))?;
        let cert = ca.issue(&w.workload.namespace, &w.workload.service_account)?;
        let copy = |from: &Path, to: &str| {
            std::fs::copy(from, d.join(to)).map(|_| ()).map_err(|e| HarnessError::io(format!("writing {to}"), e))
        };
        copy(&cert.cert, "cert-chain.pem")?;
        copy(&cert.key, "key.pem")?;
        copy(&ca.ca_cert(), "root-cert.pem")?;
        std::fs::write(d.join("bootstrap.json"), bootstrap(i, istio)?)
            .map_err(|e| HarnessError::io("writing bootstrap.json", e))?;
    }
    // Containers run as root, but keep the keys readable whatever the user.
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(entry.path()).into_iter().flatten().flatten() {
            let _ = std::fs::set_permissions(f.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_compose_file_is_generated() -> Result<(), HarnessError> {
        let shipped = crate::dist::read_workspace_file("envoy-config/docker-compose.yml")?;
        assert!(shipped == compose_yaml(), "envoy-config/docker-compose.yml is stale: run `cargo run -p wasmixer-integration --bin mesh-compose -- generate`");
        Ok(())
    }

    #[test]
    fn bootstraps_are_json_with_fixed_ports() -> Result<(), HarnessError> {
        for i in 0..workloads().len() {
            let b: Value =
                serde_json::from_str(&bootstrap(i, false)?).map_err(|e| HarnessError::check(e.to_string()))?;
            assert_eq!(b["admin"]["address"]["socket_address"]["port_value"], ADMIN_PORT);
            assert_eq!(b["admin"]["address"]["socket_address"]["address"], pod_ip(i));
        }
        Ok(())
    }
}
