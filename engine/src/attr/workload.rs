//! Workload identity as Istio proxies carry it, and the Mixer attributes derived from it.
//!
//! Two inputs share one shape:
//!
//! * the local proxy's Envoy node metadata (`xds.node.metadata` on Envoy 1.40; Istio writes it
//!   into the bootstrap, istio/istio `pkg/model/proxy.go`), read by
//!   [`WorkloadMetadata::from_node_metadata`];
//! * a peer's `x-envoy-peer-metadata` header: base64 of the deterministic serialization of a
//!   `google.protobuf.Struct` holding a subset of the same upper-case keys (istio/proxy
//!   `extensions/metadata_exchange/plugin.cc` and `extensions/common/proto_util.cc`, release-1.8;
//!   the same keys in `extensions/common/metadata_object.h`, release-1.28), handled by
//!   [`WorkloadMetadata::encode_header`] / [`WorkloadMetadata::decode_header`].
//!
//! Everything decoded from a header is an **unauthenticated claim**. Only the peer certificate
//! is evidence of identity; see [`crate::attr::spiffe::verify_peer_claim`].

use std::borrow::Cow;

use serde_json::{Map, Value as Json};

use crate::attr::spiffe::SpiffeId;
use crate::attr::{base64, protobuf_struct};
use crate::expr::{StringMap, Value};

/// The keys of the node metadata / exchange Struct, exactly as Istio spells them.
///
/// Istio 1.6–1.8 sidecars exchanged the keys listed in the node metadata's `EXCHANGE_KEYS`
/// (`NAME,NAMESPACE,INSTANCE_IPS,LABELS,OWNER,PLATFORM_METADATA,WORKLOAD_NAME,MESH_ID,
/// SERVICE_ACCOUNT,CLUSTER_ID`); the receiving side (`extractNodeFlatBufferFromStruct`) also
/// reads `ISTIO_VERSION` and `APP_CONTAINERS`.
pub mod keys {
    /// Pod (instance) name.
    pub const NAME: &str = "NAME";
    /// Pod namespace.
    pub const NAMESPACE: &str = "NAMESPACE";
    /// Controlling workload name (e.g. the Deployment `productpage-v1`).
    pub const WORKLOAD_NAME: &str = "WORKLOAD_NAME";
    /// Pod labels, a Struct of strings.
    pub const LABELS: &str = "LABELS";
    /// Kubernetes service account name.
    pub const SERVICE_ACCOUNT: &str = "SERVICE_ACCOUNT";
    /// Controller reference, e.g. `kubernetes://apis/apps/v1/namespaces/default/deployments/x`.
    pub const OWNER: &str = "OWNER";
    /// Cluster id (`Kubernetes` by default).
    pub const CLUSTER_ID: &str = "CLUSTER_ID";
    /// Mesh id (defaults to the trust domain).
    pub const MESH_ID: &str = "MESH_ID";
    /// Proxy version.
    pub const ISTIO_VERSION: &str = "ISTIO_VERSION";
    /// Pod IPs, one comma-separated string (`10.52.0.34,fe80::a075:11ff:fe5e:f1cd`).
    pub const INSTANCE_IPS: &str = "INSTANCE_IPS";
    /// Platform facts with prefixed keys (`gcp_project`, …), a Struct of strings.
    pub const PLATFORM_METADATA: &str = "PLATFORM_METADATA";
    /// Application container names, one comma-separated string.
    pub const APP_CONTAINERS: &str = "APP_CONTAINERS";
}

/// Canonical service label (istio/istio `pkg/config/labels`, istio/proxy `metadata_object.h`).
pub const CANONICAL_NAME_LABEL: &str = "service.istio.io/canonical-name";
/// Canonical revision label.
pub const CANONICAL_REVISION_LABEL: &str = "service.istio.io/canonical-revision";
/// Standard Kubernetes app-name label, the first canonical-name fallback.
pub const APP_NAME_QUALIFIED_LABEL: &str = "app.kubernetes.io/name";
/// Standard Kubernetes app-version label, the first canonical-revision fallback.
pub const APP_VERSION_QUALIFIED_LABEL: &str = "app.kubernetes.io/version";
/// Istio's conventional `app` label.
pub const APP_LABEL: &str = "app";
/// Istio's conventional `version` label.
pub const VERSION_LABEL: &str = "version";

/// Default cap on the `x-envoy-peer-metadata` header length (encoded bytes).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default cap on the number of labels (and of platform metadata entries) in a header.
pub const MAX_LABELS: usize = 128;
/// Default cap on the number of items in a comma-separated list (instance IPs, containers).
pub const MAX_LIST_ITEMS: usize = 32;

/// Decoding caps for [`WorkloadMetadata::from_node_metadata_proto`]: Istio's node metadata also
/// carries `PROXY_CONFIG`, annotations and more, so it is allowed to be much larger than a header.
pub const NODE_METADATA_LIMITS: protobuf_struct::Limits = protobuf_struct::Limits {
    max_depth: protobuf_struct::DEFAULT_MAX_DEPTH,
    max_bytes: 1024 * 1024,
    max_elements: 64 * 1024,
};

/// The Mixer attribute suffixes (after `source.` / `destination.`) that
/// [`WorkloadMetadata::mixer_attribute`] answers. `principal` is deliberately absent: it comes
/// from the TLS peer certificate, never from metadata.
pub const MIXER_ATTRIBUTE_SUFFIXES: &[&str] = &[
    "uid",
    "name",
    "namespace",
    "labels",
    "owner",
    "serviceAccount",
    "workload.uid",
    "workload.name",
    "workload.namespace",
];

/// Caps applied when decoding a peer's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderLimits {
    /// Maximum header length in bytes (checked before decoding).
    pub max_header_bytes: usize,
    /// Maximum entries in `LABELS`, and separately in `PLATFORM_METADATA`.
    pub max_labels: usize,
    /// Maximum items in `INSTANCE_IPS`, and separately in `APP_CONTAINERS`.
    pub max_list_items: usize,
}

impl Default for HeaderLimits {
    fn default() -> HeaderLimits {
        HeaderLimits { max_header_bytes: MAX_HEADER_BYTES, max_labels: MAX_LABELS, max_list_items: MAX_LIST_ITEMS }
    }
}

impl HeaderLimits {
    const UNLIMITED: HeaderLimits =
        HeaderLimits { max_header_bytes: usize::MAX, max_labels: usize::MAX, max_list_items: usize::MAX };
}

/// One workload instance (a pod) as Istio describes it. An empty string (or empty collection)
/// means "absent", as in Istio, which reads every key with `string_value()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadMetadata {
    /// `NAME`: the pod name.
    pub name: String,
    /// `NAMESPACE`.
    pub namespace: String,
    /// `WORKLOAD_NAME`: the controlling workload, e.g. `productpage-v1`.
    pub workload_name: String,
    /// `SERVICE_ACCOUNT`: the service account *name* (not a principal).
    pub service_account: String,
    /// `LABELS`.
    pub labels: StringMap,
    /// `OWNER`, e.g. `kubernetes://apis/apps/v1/namespaces/default/deployments/productpage-v1`.
    pub owner: String,
    /// `CLUSTER_ID`.
    pub cluster_id: String,
    /// `MESH_ID`.
    pub mesh_id: String,
    /// `INSTANCE_IPS`, split on commas.
    pub instance_ips: Vec<String>,
    /// `PLATFORM_METADATA`.
    pub platform_metadata: StringMap,
    /// `APP_CONTAINERS`, split on commas.
    pub app_containers: Vec<String>,
    /// `ISTIO_VERSION`.
    pub istio_version: String,
}

impl WorkloadMetadata {
    /// Reads the local proxy's node metadata (the JSON object Envoy returns for
    /// `xds.node.metadata`, or the `node.metadata` of a bootstrap). Unknown keys are ignored;
    /// keys of the wrong type read as absent; `INSTANCE_IPS`/`APP_CONTAINERS` may be
    /// comma-separated strings or arrays of strings. Anything but an object gives the default.
    pub fn from_node_metadata(json: &Json) -> WorkloadMetadata {
        match json {
            Json::Object(map) => extract(map, &HeaderLimits::UNLIMITED).unwrap_or_default(),
            _ => WorkloadMetadata::default(),
        }
    }

    /// Reads the local node metadata from the bytes Envoy returns for the property path
    /// `xds.node.metadata` (a serialized `google.protobuf.Struct`; message-typed properties come
    /// back as protobuf bytes). Node metadata is local configuration, so the caps are generous
    /// ([`NODE_METADATA_LIMITS`]) but still enforced.
    pub fn from_node_metadata_proto(bytes: &[u8]) -> Result<WorkloadMetadata, String> {
        let map = protobuf_struct::decode_struct_with(bytes, &NODE_METADATA_LIMITS)
            .map_err(|e| format!("node metadata: {e}"))?;
        Ok(WorkloadMetadata::from_node_metadata(&Json::Object(map)))
    }

    /// The exchange payload as a JSON object with Istio's upper-case keys. Absent fields are
    /// left out; `INSTANCE_IPS` and `APP_CONTAINERS` are comma-joined strings, `LABELS` and
    /// `PLATFORM_METADATA` are objects of strings.
    ///
    /// This carries everything the struct holds, pod IPs and proxy version included; clear
    /// those fields first if they must not leave the pod (istio/istio#35283).
    pub fn to_struct_json(&self) -> Map<String, Json> {
        let mut m = Map::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                m.insert(k.to_owned(), Json::String(v.to_owned()));
            }
        };
        put(keys::NAME, &self.name);
        put(keys::NAMESPACE, &self.namespace);
        put(keys::WORKLOAD_NAME, &self.workload_name);
        put(keys::SERVICE_ACCOUNT, &self.service_account);
        put(keys::OWNER, &self.owner);
        put(keys::CLUSTER_ID, &self.cluster_id);
        put(keys::MESH_ID, &self.mesh_id);
        put(keys::ISTIO_VERSION, &self.istio_version);
        put(keys::INSTANCE_IPS, &self.instance_ips.join(","));
        put(keys::APP_CONTAINERS, &self.app_containers.join(","));
        for (key, map) in [(keys::LABELS, &self.labels), (keys::PLATFORM_METADATA, &self.platform_metadata)] {
            if !map.is_empty() {
                // Inserted one by one: collecting into a map would compile a sort for its entries.
                let mut obj = Map::new();
                for (k, v) in map.iter() {
                    obj.insert(k.to_owned(), Json::String(v.to_owned()));
                }
                m.insert(key.to_owned(), Json::Object(obj));
            }
        }
        m
    }

    /// Reads an exchange payload (a decoded Struct) with the default [`HeaderLimits`].
    pub fn from_struct_json(map: &Map<String, Json>) -> Result<WorkloadMetadata, String> {
        extract(map, &HeaderLimits::default())
    }

    /// Reads an exchange payload, failing when a collection exceeds `limits`.
    pub fn from_struct_json_with(map: &Map<String, Json>, limits: &HeaderLimits) -> Result<WorkloadMetadata, String> {
        extract(map, limits)
    }

    /// The `x-envoy-peer-metadata` value: padded base64 of the deterministic protobuf
    /// serialization of [`WorkloadMetadata::to_struct_json`], as Istio sends it.
    pub fn encode_header(&self) -> String {
        // The payload nests two levels, far below the encoder's depth cap, so this cannot fail;
        // an empty header (no metadata) is the harmless fallback.
        let bytes = protobuf_struct::encode_struct(&self.to_struct_json()).unwrap_or_default();
        base64::encode(&bytes)
    }

    /// Decodes a peer's `x-envoy-peer-metadata` value with the default [`HeaderLimits`]
    /// (16 KiB, 128 labels). Accepts padded and unpadded base64, like Envoy's
    /// `Base64::decodeWithoutPadding`. The result is a claim, not an identity.
    pub fn decode_header(header: &str) -> Result<WorkloadMetadata, String> {
        WorkloadMetadata::decode_header_with(header, &HeaderLimits::default())
    }

    /// Decodes a peer's `x-envoy-peer-metadata` value within `limits`.
    pub fn decode_header_with(header: &str, limits: &HeaderLimits) -> Result<WorkloadMetadata, String> {
        if header.len() > limits.max_header_bytes {
            return Err(format!(
                "peer metadata header is {} bytes, more than {}",
                header.len(),
                limits.max_header_bytes
            ));
        }
        let bytes =
            base64::decode(header, limits.max_header_bytes).map_err(|e| format!("peer metadata header: {e}"))?;
        let proto_limits =
            protobuf_struct::Limits { max_bytes: limits.max_header_bytes, ..protobuf_struct::Limits::default() };
        let map = protobuf_struct::decode_struct_with(&bytes, &proto_limits)
            .map_err(|e| format!("peer metadata header: {e}"))?;
        extract(&map, limits)
    }

    /// Mixer's `source.uid` / `destination.uid`: `kubernetes://<pod>.<namespace>`.
    ///
    /// Source: istio/proxy 1.x `src/envoy/utils` (`uid = "kubernetes://" + longname` with
    /// `longname = NAME.NAMESPACE`), pilot's Mixer plugin `attrUID` (`"kubernetes://" +
    /// node.ID`), and the kubernetesenv adapter, which parses this form back (`keyFromUID`).
    /// `None` when the name or namespace is unknown.
    pub fn uid(&self) -> Option<String> {
        if self.name.is_empty() || self.namespace.is_empty() {
            return None;
        }
        Some(format!("kubernetes://{}.{}", self.name, self.namespace))
    }

    /// Mixer's `source.workload.uid` / `destination.workload.uid`:
    /// `istio://<namespace>/workloads/<workload name>`.
    ///
    /// Source: istio/istio release-1.4 `mixer/adapter/kubernetesenv/cache.go`, `Workload()`
    /// (`"istio://" + namespace + "/workloads/" + name`). `None` when either part is unknown.
    pub fn workload_uid(&self) -> Option<String> {
        if self.workload_name.is_empty() || self.namespace.is_empty() {
            return None;
        }
        Some(format!("istio://{}/workloads/{}", self.namespace, self.workload_name))
    }

    /// The principal this workload would have under `trust_domain`, in Mixer's form
    /// (`cluster.local/ns/default/sa/bookinfo-productpage`; see [`SpiffeId::principal`]).
    ///
    /// This is derived from *claimed* metadata. Mixer's `source.principal` came from the mTLS
    /// peer certificate (istio/proxy `GetPrincipal`, the URI SAN without `spiffe://`); use
    /// [`crate::attr::spiffe::principal_from_uri_san`] for that. `None` when the namespace or
    /// service account is missing or not a valid SPIFFE path segment.
    pub fn principal_from_service_account(&self, trust_domain: &str) -> Option<String> {
        SpiffeId::new(trust_domain, &self.namespace, &self.service_account).ok().map(|id| id.principal())
    }

    /// The canonical service name: label `service.istio.io/canonical-name`, else
    /// `app.kubernetes.io/name`, else `app`, else the workload name (istio/istio
    /// `pkg/config/labels` `CanonicalService`).
    pub fn canonical_service(&self) -> &str {
        self.labels
            .get(CANONICAL_NAME_LABEL)
            .or_else(|| self.labels.get(APP_NAME_QUALIFIED_LABEL))
            .or_else(|| self.labels.get(APP_LABEL))
            .unwrap_or(&self.workload_name)
    }

    /// The canonical revision: label `service.istio.io/canonical-revision`, else
    /// `app.kubernetes.io/version`, else `version`, else `latest` (same source).
    pub fn canonical_revision(&self) -> &str {
        self.labels
            .get(CANONICAL_REVISION_LABEL)
            .or_else(|| self.labels.get(APP_VERSION_QUALIFIED_LABEL))
            .or_else(|| self.labels.get(VERSION_LABEL))
            .unwrap_or("latest")
    }

    /// The `app` label, if present.
    pub fn app(&self) -> Option<&str> {
        self.labels.get(APP_LABEL)
    }

    /// The `version` label, if present.
    pub fn version(&self) -> Option<&str> {
        self.labels.get(VERSION_LABEL)
    }

    /// The value of Mixer attribute `source.<suffix>` / `destination.<suffix>` derived from
    /// this workload, or `None` when unknown (Mixer's kubernetesenv adapter likewise set each
    /// only when non-empty). `suffix` is one of [`MIXER_ATTRIBUTE_SUFFIXES`]:
    ///
    /// | suffix | value | Mixer producer |
    /// |---|---|---|
    /// | `uid` | [`WorkloadMetadata::uid`] | proxy / kubernetesenv |
    /// | `name` | pod name (`NAME`) | kubernetesenv `pod.Name` |
    /// | `namespace` | `NAMESPACE` | kubernetesenv `pod.Namespace` |
    /// | `labels` | `LABELS` (STRING_MAP) | kubernetesenv `pod.Labels` |
    /// | `owner` | `OWNER` | kubernetesenv root controller self link |
    /// | `serviceAccount` | `SERVICE_ACCOUNT` | kubernetesenv `pod.Spec.ServiceAccountName` |
    /// | `workload.uid` | [`WorkloadMetadata::workload_uid`] | kubernetesenv |
    /// | `workload.name` | `WORKLOAD_NAME` | kubernetesenv root controller name |
    /// | `workload.namespace` | `NAMESPACE` | kubernetesenv pod namespace |
    ///
    /// `principal` is not answered here: it must come from the TLS peer certificate.
    pub fn mixer_attribute(&self, suffix: &str) -> Option<Value<'_>> {
        match suffix {
            "uid" => self.uid().map(|s| Value::String(Cow::Owned(s))),
            "name" => borrowed(&self.name),
            "namespace" | "workload.namespace" => borrowed(&self.namespace),
            "labels" => (!self.labels.is_empty()).then_some(Value::StringMap(Cow::Borrowed(&self.labels))),
            "owner" => borrowed(&self.owner),
            "serviceAccount" => borrowed(&self.service_account),
            "workload.uid" => self.workload_uid().map(|s| Value::String(Cow::Owned(s))),
            "workload.name" => borrowed(&self.workload_name),
            _ => None,
        }
    }
}

/// A non-empty string as a borrowed STRING value.
fn borrowed(s: &str) -> Option<Value<'_>> {
    (!s.is_empty()).then_some(Value::String(Cow::Borrowed(s)))
}

/// Builds a [`WorkloadMetadata`] from a Struct-shaped JSON object.
fn extract(map: &Map<String, Json>, limits: &HeaderLimits) -> Result<WorkloadMetadata, String> {
    let text = |key: &str| -> String {
        match map.get(key) {
            Some(Json::String(s)) => s.clone(),
            _ => String::new(),
        }
    };
    Ok(WorkloadMetadata {
        name: text(keys::NAME),
        namespace: text(keys::NAMESPACE),
        workload_name: text(keys::WORKLOAD_NAME),
        service_account: text(keys::SERVICE_ACCOUNT),
        labels: string_map(map.get(keys::LABELS), keys::LABELS, limits.max_labels)?,
        owner: text(keys::OWNER),
        cluster_id: text(keys::CLUSTER_ID),
        mesh_id: text(keys::MESH_ID),
        instance_ips: list(map.get(keys::INSTANCE_IPS), keys::INSTANCE_IPS, limits.max_list_items)?,
        platform_metadata: string_map(map.get(keys::PLATFORM_METADATA), keys::PLATFORM_METADATA, limits.max_labels)?,
        app_containers: list(map.get(keys::APP_CONTAINERS), keys::APP_CONTAINERS, limits.max_list_items)?,
        istio_version: text(keys::ISTIO_VERSION),
    })
}

/// An object of strings; non-string values are skipped, a non-object reads as empty.
fn string_map(v: Option<&Json>, key: &str, max: usize) -> Result<StringMap, String> {
    let Some(Json::Object(obj)) = v else {
        return Ok(StringMap::new());
    };
    if obj.len() > max {
        return Err(format!("peer metadata {key} has {} entries, more than {max}", obj.len()));
    }
    Ok(StringMap::from_pairs(obj.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.as_str(), s)))))
}

/// A comma-separated string or an array of strings; items are trimmed, empty ones dropped.
fn list(v: Option<&Json>, key: &str, max: usize) -> Result<Vec<String>, String> {
    let items: Vec<String> = match v {
        Some(Json::String(s)) => split_list(s, key, max)?,
        Some(Json::Array(a)) => {
            if a.len() > max {
                return Err(format!("peer metadata {key} has more than {max} items"));
            }
            a.iter().filter_map(Json::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    };
    Ok(items)
}

fn split_list(s: &str, key: &str, max: usize) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if out.len() >= max {
            return Err(format!("peer metadata {key} has more than {max} items"));
        }
        out.push(item.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Node metadata as an Istio 1.7 productpage sidecar carries it (trimmed bootstrap dump).
    fn productpage_node() -> Json {
        json!({
            "APP_CONTAINERS": "productpage",
            "CLUSTER_ID": "Kubernetes",
            "EXCHANGE_KEYS": "NAME,NAMESPACE,INSTANCE_IPS,LABELS,OWNER,PLATFORM_METADATA,WORKLOAD_NAME,MESH_ID,SERVICE_ACCOUNT,CLUSTER_ID",
            "INSTANCE_IPS": "10.16.0.104,fe80::40fb:daff:feed:e56c",
            "INTERCEPTION_MODE": "REDIRECT",
            "ISTIO_VERSION": "1.7.1",
            "LABELS": {
                "app": "productpage",
                "pod-template-hash": "65576bb7bf",
                "security.istio.io/tlsMode": "istio",
                "service.istio.io/canonical-name": "productpage",
                "service.istio.io/canonical-revision": "v1",
                "version": "v1"
            },
            "MESH_ID": "cluster.local",
            "NAME": "productpage-v1-65576bb7bf-djw4c",
            "NAMESPACE": "default",
            "OWNER": "kubernetes://apis/apps/v1/namespaces/default/deployments/productpage-v1",
            "PLATFORM_METADATA": {"gcp_project": "p1", "gcp_location": "us-east1-b"},
            "SERVICE_ACCOUNT": "bookinfo-productpage",
            "WORKLOAD_NAME": "productpage-v1"
        })
    }

    #[test]
    fn reads_istio_node_metadata() {
        let w = WorkloadMetadata::from_node_metadata(&productpage_node());
        assert_eq!(w.name, "productpage-v1-65576bb7bf-djw4c");
        assert_eq!(w.namespace, "default");
        assert_eq!(w.workload_name, "productpage-v1");
        assert_eq!(w.service_account, "bookinfo-productpage");
        assert_eq!(w.owner, "kubernetes://apis/apps/v1/namespaces/default/deployments/productpage-v1");
        assert_eq!(w.cluster_id, "Kubernetes");
        assert_eq!(w.mesh_id, "cluster.local");
        assert_eq!(w.istio_version, "1.7.1");
        assert_eq!(w.instance_ips, ["10.16.0.104", "fe80::40fb:daff:feed:e56c"]);
        assert_eq!(w.app_containers, ["productpage"]);
        assert_eq!(w.labels.len(), 6);
        assert_eq!(w.app(), Some("productpage"));
        assert_eq!(w.version(), Some("v1"));
        assert_eq!(w.platform_metadata.get("gcp_project"), Some("p1"));
    }

    #[test]
    fn reads_node_metadata_property_bytes() {
        let node = productpage_node();
        let Json::Object(map) = &node else {
            panic!("object");
        };
        let bytes = protobuf_struct::encode_struct(map).unwrap();
        let w = WorkloadMetadata::from_node_metadata_proto(&bytes).unwrap();
        assert_eq!(w, WorkloadMetadata::from_node_metadata(&node));
        assert!(WorkloadMetadata::from_node_metadata_proto(&[0x0a, 0x05]).is_err());
        assert_eq!(WorkloadMetadata::from_node_metadata_proto(&[]).unwrap(), WorkloadMetadata::default());
    }

    #[test]
    fn tolerates_odd_node_metadata() {
        assert_eq!(WorkloadMetadata::from_node_metadata(&json!(null)), WorkloadMetadata::default());
        assert_eq!(WorkloadMetadata::from_node_metadata(&json!([1, 2])), WorkloadMetadata::default());
        let w = WorkloadMetadata::from_node_metadata(&json!({
            "NAME": 7,
            "NAMESPACE": "ns",
            "LABELS": {"a": "b", "n": 1, "o": {"x": "y"}},
            "INSTANCE_IPS": ["10.0.0.1", 5, " 10.0.0.2 ", ""],
            "APP_CONTAINERS": " a, ,b ,",
            "PLATFORM_METADATA": "not an object"
        }));
        assert_eq!(w.name, "");
        assert_eq!(w.namespace, "ns");
        assert_eq!(w.labels, StringMap::from_pairs([("a", "b")]));
        assert_eq!(w.instance_ips, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(w.app_containers, ["a", "b"]);
        assert!(w.platform_metadata.is_empty());
    }

    #[test]
    fn struct_json_uses_istio_keys() {
        let w = WorkloadMetadata::from_node_metadata(&productpage_node());
        let m = w.to_struct_json();
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        let mut expected = vec![
            "APP_CONTAINERS",
            "CLUSTER_ID",
            "INSTANCE_IPS",
            "ISTIO_VERSION",
            "LABELS",
            "MESH_ID",
            "NAME",
            "NAMESPACE",
            "OWNER",
            "PLATFORM_METADATA",
            "SERVICE_ACCOUNT",
            "WORKLOAD_NAME",
        ];
        let mut got = keys.clone();
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected);
        assert_eq!(m["INSTANCE_IPS"], json!("10.16.0.104,fe80::40fb:daff:feed:e56c"));
        assert_eq!(m["LABELS"]["version"], json!("v1"));
        assert_eq!(WorkloadMetadata::from_struct_json(&m).unwrap(), w);
        // Absent fields are omitted.
        assert!(WorkloadMetadata::default().to_struct_json().is_empty());
    }

    /// The header the reference protobuf implementation produces for `productpage_node()`'s
    /// exchange keys (Python `protobuf` 7.36, pure-Python backend,
    /// `SerializeToString(deterministic=True)`): a cross-implementation golden for the whole
    /// encode path. Note `NAME` before `NAMESPACE`, as C++ (`std::less<std::string>`) and Go
    /// order map keys; Python's upb backend emits prefix keys in the reverse order.
    const PRODUCTPAGE_HEADER: &str = concat!(
        "Ch8KDkFQUF9DT05UQUlORVJTEg0aC3Byb2R1Y3RwYWdlChoKCkNMVVNURVJfSUQSDBoKS3ViZXJuZXRl",
        "cwo3CgxJTlNUQU5DRV9JUFMSJxolMTAuMTYuMC4xMDQsZmU4MDo6NDBmYjpkYWZmOmZlZWQ6ZTU2YwoY",
        "Cg1JU1RJT19WRVJTSU9OEgcaBTEuNy4xCt0BCgZMQUJFTFMS0gEqzwEKFAoDYXBwEg0aC3Byb2R1Y3Rw",
        "YWdlCiEKEXBvZC10ZW1wbGF0ZS1oYXNoEgwaCjY1NTc2YmI3YmYKJAoZc2VjdXJpdHkuaXN0aW8uaW8v",
        "dGxzTW9kZRIHGgVpc3RpbwowCh9zZXJ2aWNlLmlzdGlvLmlvL2Nhbm9uaWNhbC1uYW1lEg0aC3Byb2R1",
        "Y3RwYWdlCisKI3NlcnZpY2UuaXN0aW8uaW8vY2Fub25pY2FsLXJldmlzaW9uEgQaAnYxCg8KB3ZlcnNp",
        "b24SBBoCdjEKGgoHTUVTSF9JRBIPGg1jbHVzdGVyLmxvY2FsCikKBE5BTUUSIRofcHJvZHVjdHBhZ2Ut",
        "djEtNjU1NzZiYjdiZi1kanc0YwoWCglOQU1FU1BBQ0USCRoHZGVmYXVsdApSCgVPV05FUhJJGkdrdWJl",
        "cm5ldGVzOi8vYXBpcy9hcHBzL3YxL25hbWVzcGFjZXMvZGVmYXVsdC9kZXBsb3ltZW50cy9wcm9kdWN0",
        "cGFnZS12MQpKChFQTEFURk9STV9NRVRBREFUQRI1KjMKHAoMZ2NwX2xvY2F0aW9uEgwaCnVzLWVhc3Qx",
        "LWIKEwoLZ2NwX3Byb2plY3QSBBoCcDEKKQoPU0VSVklDRV9BQ0NPVU5UEhYaFGJvb2tpbmZvLXByb2R1",
        "Y3RwYWdlCiEKDVdPUktMT0FEX05BTUUSEBoOcHJvZHVjdHBhZ2UtdjE=",
    );

    #[test]
    fn header_matches_reference_protobuf() {
        let w = WorkloadMetadata::from_node_metadata(&productpage_node());
        assert_eq!(w.encode_header(), PRODUCTPAGE_HEADER);
        assert_eq!(WorkloadMetadata::decode_header(PRODUCTPAGE_HEADER).unwrap(), w);
    }

    #[test]
    fn header_round_trip() {
        let w = WorkloadMetadata::from_node_metadata(&productpage_node());
        let h = w.encode_header();
        assert_eq!(h.len() % 4, 0);
        assert_eq!(WorkloadMetadata::decode_header(&h).unwrap(), w);
        // Unpadded, as some senders emit.
        assert_eq!(WorkloadMetadata::decode_header(h.trim_end_matches('=')).unwrap(), w);
    }

    #[test]
    fn header_golden() {
        // {"LABELS": {"app": "x"}, "NAME": "pod-1"} serialized by hand (see protobuf_struct),
        // then base64-encoded.
        let w = WorkloadMetadata {
            name: "pod-1".into(),
            labels: StringMap::from_pairs([("app", "x")]),
            ..WorkloadMetadata::default()
        };
        assert_eq!(w.encode_header(), "ChgKBkxBQkVMUxIOKgwKCgoDYXBwEgMaAXgKDwoETkFNRRIHGgVwb2QtMQ==");
        let back =
            WorkloadMetadata::decode_header("ChgKBkxBQkVMUxIOKgwKCgoDYXBwEgMaAXgKDwoETkFNRRIHGgVwb2QtMQ").unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn decode_header_limits_and_garbage() {
        assert!(WorkloadMetadata::decode_header("").unwrap() == WorkloadMetadata::default());
        assert!(WorkloadMetadata::decode_header("not base64!").is_err());
        assert!(WorkloadMetadata::decode_header("/////w==").is_err()); // 0xff.. is not a Struct
        let huge = "A".repeat(MAX_HEADER_BYTES + 4);
        assert!(WorkloadMetadata::decode_header(&huge).unwrap_err().contains("more than"));

        let many: Vec<(String, String)> = (0..=MAX_LABELS).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        let w = WorkloadMetadata { labels: StringMap::from_pairs(many), ..WorkloadMetadata::default() };
        let h = w.encode_header();
        assert!(h.len() < MAX_HEADER_BYTES);
        let err = WorkloadMetadata::decode_header(&h).unwrap_err();
        assert!(err.contains("LABELS"), "{err}");
        let roomy = HeaderLimits { max_labels: MAX_LABELS + 1, ..HeaderLimits::default() };
        assert_eq!(WorkloadMetadata::decode_header_with(&h, &roomy).unwrap(), w);

        let ips = vec!["10.0.0.1".to_owned(); MAX_LIST_ITEMS + 1];
        let w = WorkloadMetadata { instance_ips: ips, ..WorkloadMetadata::default() };
        assert!(WorkloadMetadata::decode_header(&w.encode_header()).unwrap_err().contains("INSTANCE_IPS"));
    }

    #[test]
    fn decode_header_ignores_unknown_keys_and_types() {
        let m = serde_json::from_value::<Map<String, Json>>(json!({
            "NAME": "p", "NAMESPACE": 3.0, "LABELS": ["x"], "FUTURE_KEY": {"deep": [true]}
        }))
        .unwrap();
        let h = base64::encode(&protobuf_struct::encode_struct(&m).unwrap());
        let w = WorkloadMetadata::decode_header(&h).unwrap();
        assert_eq!(w.name, "p");
        assert_eq!(w.namespace, "");
        assert!(w.labels.is_empty());
    }

    #[test]
    fn derived_mixer_values() {
        let w = WorkloadMetadata::from_node_metadata(&productpage_node());
        assert_eq!(w.uid().as_deref(), Some("kubernetes://productpage-v1-65576bb7bf-djw4c.default"));
        assert_eq!(w.workload_uid().as_deref(), Some("istio://default/workloads/productpage-v1"));
        assert_eq!(
            w.principal_from_service_account("cluster.local").as_deref(),
            Some("cluster.local/ns/default/sa/bookinfo-productpage")
        );
        assert_eq!(w.canonical_service(), "productpage");
        assert_eq!(w.canonical_revision(), "v1");

        let empty = WorkloadMetadata::default();
        assert_eq!(empty.uid(), None);
        assert_eq!(empty.workload_uid(), None);
        assert_eq!(empty.principal_from_service_account("cluster.local"), None);
        assert_eq!(empty.canonical_service(), "");
        assert_eq!(empty.canonical_revision(), "latest");
    }

    #[test]
    fn canonical_fallbacks() {
        let mut w = WorkloadMetadata { workload_name: "wl".into(), ..WorkloadMetadata::default() };
        assert_eq!(w.canonical_service(), "wl");
        w.labels = StringMap::from_pairs([("app", "a"), ("version", "v9")]);
        assert_eq!((w.canonical_service(), w.canonical_revision()), ("a", "v9"));
        w.labels = StringMap::from_pairs([
            ("app", "a"),
            ("version", "v9"),
            ("app.kubernetes.io/name", "k"),
            ("app.kubernetes.io/version", "k9"),
        ]);
        assert_eq!((w.canonical_service(), w.canonical_revision()), ("k", "k9"));
        w.labels = StringMap::from_pairs([
            ("app.kubernetes.io/name", "k"),
            ("service.istio.io/canonical-name", "c"),
            ("service.istio.io/canonical-revision", "c9"),
        ]);
        assert_eq!((w.canonical_service(), w.canonical_revision()), ("c", "c9"));
    }

    #[test]
    fn mixer_attribute_lookup() {
        let w = WorkloadMetadata::from_node_metadata(&productpage_node());
        let s = |suffix: &str| w.mixer_attribute(suffix).and_then(|v| v.as_str().map(str::to_owned));
        assert_eq!(s("uid").as_deref(), Some("kubernetes://productpage-v1-65576bb7bf-djw4c.default"));
        assert_eq!(s("name").as_deref(), Some("productpage-v1-65576bb7bf-djw4c"));
        assert_eq!(s("namespace").as_deref(), Some("default"));
        assert_eq!(s("workload.namespace").as_deref(), Some("default"));
        assert_eq!(s("owner").as_deref(), Some(w.owner.as_str()));
        assert_eq!(s("serviceAccount").as_deref(), Some("bookinfo-productpage"));
        assert_eq!(s("workload.uid").as_deref(), Some("istio://default/workloads/productpage-v1"));
        assert_eq!(s("workload.name").as_deref(), Some("productpage-v1"));
        match w.mixer_attribute("labels") {
            Some(Value::StringMap(m)) => assert_eq!(m.get("app"), Some("productpage")),
            other => panic!("labels: {other:?}"),
        }
        assert_eq!(w.mixer_attribute("principal"), None);
        assert_eq!(w.mixer_attribute("bogus"), None);
        for suffix in MIXER_ATTRIBUTE_SUFFIXES {
            assert!(w.mixer_attribute(suffix).is_some(), "{suffix}");
            assert_eq!(WorkloadMetadata::default().mixer_attribute(suffix), None, "{suffix}");
        }
    }

    #[test]
    fn never_panics_on_mutated_headers() {
        let h = WorkloadMetadata::from_node_metadata(&productpage_node()).encode_header();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
        let mut state = 0xD1B5_4A32_D192_ED03u64;
        for _ in 0..3_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut b = h.clone().into_bytes();
            let at = (state as usize) % b.len();
            b[at] = alphabet[((state >> 32) as usize) % alphabet.len()];
            let cut = ((state >> 16) as usize) % (b.len() + 1);
            let s = String::from_utf8_lossy(&b[..cut]).into_owned();
            let _ = WorkloadMetadata::decode_header(&s);
        }
    }
}
