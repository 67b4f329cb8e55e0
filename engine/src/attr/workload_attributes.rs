//! A workload's identity as Mixer attribute values (`*.labels`, `*.workload.name`, ...),
//! computed once per workload (the local node at configure time, a peer when first seen), so
//! reading them per request only borrows.

use super::workload::WorkloadMetadata;
use crate::expr::StringMap;

/// Mixer's view of one workload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadAttributes {
    /// `kubernetes://<pod>.<namespace>`
    pub uid: Option<String>,
    pub labels: StringMap,
    /// The string-valued entries of the workload's metadata.
    pub metadata: StringMap,
    /// Pod name.
    pub name: Option<String>,
    pub namespace: Option<String>,
    /// `kubernetes://apis/apps/v1/namespaces/<ns>/deployments/<name>`
    pub owner: Option<String>,
    pub service_account: Option<String>,
    /// `istio://<namespace>/workloads/<workload name>`
    pub workload_uid: Option<String>,
    pub workload_name: Option<String>,
    pub workload_namespace: Option<String>,
    /// Istio version of the proxy, when carried.
    pub istio_version: Option<String>,
    /// The URI SAN of the certificate a peer presented, when the metadata exchange verified
    /// the peer's claim against it (what `*.uri_san_peer_certificate` would answer).
    pub certificate_san: Option<String>,
}

impl From<&WorkloadMetadata> for WorkloadAttributes {
    fn from(w: &WorkloadMetadata) -> WorkloadAttributes {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let metadata = StringMap::from_pairs(
            [
                ("NAME", &w.name),
                ("NAMESPACE", &w.namespace),
                ("WORKLOAD_NAME", &w.workload_name),
                ("SERVICE_ACCOUNT", &w.service_account),
                ("OWNER", &w.owner),
                ("CLUSTER_ID", &w.cluster_id),
                ("MESH_ID", &w.mesh_id),
                ("ISTIO_VERSION", &w.istio_version),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v.clone())),
        );
        WorkloadAttributes {
            uid: w.uid(),
            labels: w.labels.clone(),
            metadata,
            name: some(&w.name),
            namespace: some(&w.namespace),
            owner: some(&w.owner),
            service_account: some(&w.service_account),
            workload_uid: w.workload_uid(),
            workload_name: some(&w.workload_name),
            // A workload lives in its pod's namespace.
            workload_namespace: some(&w.namespace),
            istio_version: some(&w.istio_version),
            certificate_san: None,
        }
    }
}
