//! The peer Istio's native peer-metadata filter keeps in filter state (Istio 1.22-1.29), read as
//! Envoy 1.40 hands it to a Wasm module.
//!
//! Inside an Istio 1.22+ sidecar that filter runs first, consumes `x-envoy-peer-metadata(-id)`
//! and stores the peer instead, in a form that changed with the versions (istio/proxy, cited
//! per format below; the answers Envoy 1.40 gives for each were checked on its binary with a
//! probe module, see the session notes):
//!
//! | Istio | key | object | what `proxy_get_property(["filter_state", key])` returns |
//! |---|---|---|---|
//! | 1.22-1.23 | `wasm.downstream_peer` | CelState, FlatBuffers `FlatNode` (`extensions/common/node_info.fbs`; written at `source/extensions/filters/http/peer_metadata/filter.cc:299-323` @1.22.8, `:302-326` @1.23.6) | a map of the 12 schema fields; `labels` a map of label → `{key, value}` |
//! | 1.24 | `downstream_peer` | `WorkloadMetadataObject` (`extensions/common/metadata_object.h:88-121` @1.24.6) | an empty map: fields only one by one (`getField`, `metadata_object.cc:235-263`) |
//! | 1.25-1.29 | `downstream_peer` | CelState of a `google.protobuf.Struct` (`filter.h:111-116`, `filter.cc:292-307` @1.25.5; `filter.cc:421-446` @1.29.6) | a map of the Struct: `workload, name, cluster, namespace, service, revision, app, version, identity, labels` (present when non-empty) |
//!
//! Upstream peers (outbound, from the response) use `upstream_peer` / `wasm.upstream_peer`.
//! None of it is verified by Istio: the labels are what the peer announced, and `identity` (a
//! SPIFFE URI) is there only when workload discovery found the peer (`PEER_METADATA_DISCOVERY`,
//! ambient). The caller verifies what is read here against the peer certificate.

use super::pairs::pairs_raw;
use crate::attr::workload::WorkloadMetadata;
use crate::expr::StringMapBuilder;

/// The Istio release line a peer was read in the format of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IstioFormat {
    /// 1.22-1.23: FlatBuffers `FlatNode` under `wasm.*_peer`.
    FlatNode,
    /// 1.24: `WorkloadMetadataObject`, read field by field.
    WorkloadObject,
    /// 1.25-1.29: a CelState holding a `google.protobuf.Struct`.
    Struct,
}

/// A peer found in Istio's filter state.
#[derive(Clone, Debug, PartialEq)]
pub struct IstioPeer {
    /// What Istio stored, as the workload description our own exchange carries. The service
    /// account is filled from `identity` when Istio had one.
    pub metadata: WorkloadMetadata,
    /// `identity` (`spiffe://<td>/ns/<ns>/sa/<sa>`), when workload discovery supplied the peer.
    pub identity: Option<String>,
    pub format: IstioFormat,
}

/// The fields of Istio 1.24's `WorkloadMetadataObject` read one by one (`getField` names,
/// istio/proxy `extensions/common/metadata_object.cc:235-263` @1.24.6). It has no `identity`
/// and no labels beyond app and version.
const OBJECT_FIELDS: [&str; 6] = ["namespace", "workload", "name", "cluster", "app", "version"];

/// The peer Istio's filter stored for this stream: the caller (`upstream` false) or, on an
/// outbound listener after the response, the upstream. `get` is the host's property read.
pub fn read(upstream: bool, get: impl Fn(&[&str]) -> Option<Vec<u8>>) -> Option<IstioPeer> {
    let (key, flat_key) =
        if upstream { ("upstream_peer", "wasm.upstream_peer") } else { ("downstream_peer", "wasm.downstream_peer") };
    match get(&["filter_state", key]) {
        // An object with field access that lists no keys: 1.24's WorkloadMetadataObject.
        Some(map) if map.len() <= 4 && map.iter().all(|b| *b == 0) => {
            let fields: Vec<(&str, Vec<u8>)> =
                OBJECT_FIELDS.iter().filter_map(|f| Some((*f, get(&["filter_state", key, f])?))).collect();
            let fields = fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice()));
            from_fields(fields, IstioFormat::WorkloadObject)
        }
        Some(map) => from_fields(pairs_raw(&map).into_iter(), IstioFormat::Struct),
        None => {
            let map = get(&["filter_state", flat_key])?;
            let fields = pairs_raw(&map);
            from_fields(fields.iter().copied(), wasm_key_format(&fields))
        }
    }
}

/// What a CelState under the `wasm.` key holds. Istio 1.22-1.23 put a FlatNode there, which
/// Envoy lists with every schema field (`workload_name` among them). A Struct there did not come
/// from Istio, which writes it under the bare key, but it is what a Wasm module standing in for
/// Istio 1.25+ can write (`set_property` always prefixes `wasm.`; the integration tests' state
/// emulator does): its fields are read as the Struct's, so that its labels are label to value.
fn wasm_key_format(fields: &[(&[u8], &[u8])]) -> IstioFormat {
    if fields.iter().any(|(k, _)| *k == b"workload_name") {
        IstioFormat::FlatNode
    } else {
        IstioFormat::Struct
    }
}

/// A peer from its fields as Envoy lists them (any order). `None` without a namespace: such a
/// peer cannot be verified against a certificate.
fn from_fields<'a>(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>, format: IstioFormat) -> Option<IstioPeer> {
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let mut meta = WorkloadMetadata::default();
    let mut identity = None;
    let mut labels = StringMapBuilder::with_capacity(4, 64);
    let (mut app, mut version) = (None, None);
    for (key, value) in fields {
        match key {
            b"namespace" => meta.namespace = text(value),
            b"name" => meta.name = text(value),
            // FlatNode's name for it, and the Struct's.
            b"workload_name" | b"workload" => meta.workload_name = text(value),
            b"owner" => meta.owner = text(value),
            b"cluster_id" | b"cluster" => meta.cluster_id = text(value),
            b"identity" if !value.is_empty() => identity = Some(text(value)),
            b"app" if !value.is_empty() => app = Some(text(value)),
            b"version" if !value.is_empty() => version = Some(text(value)),
            b"labels" => add_labels(value, format, &mut labels),
            _ => {}
        }
    }
    // 1.24+ keep app and version as fields of their own (from the `app` / `version` labels).
    for (name, value) in [("app", app), ("version", version)] {
        if let Some(v) = value {
            labels.push(name, &v);
        }
    }
    meta.labels = labels.finish();
    if meta.namespace.is_empty() {
        return None;
    }
    if let Some(sa) = identity.as_deref().and_then(service_account_of) {
        meta.service_account = sa;
    }
    Some(IstioPeer { metadata: meta, identity, format })
}

/// The service account of a SPIFFE identity `spiffe://<td>/ns/<ns>/sa/<sa>`.
fn service_account_of(identity: &str) -> Option<String> {
    crate::attr::spiffe::SpiffeId::parse(identity).ok().map(|id| id.service_account().to_string())
}

/// Labels as the formats list them: a Struct's `labels` is a map of label to value; FlatNode's
/// a map of label to a `{key, value}` table.
fn add_labels(map: &[u8], format: IstioFormat, labels: &mut StringMapBuilder) {
    for (name, value) in pairs_raw(map) {
        let Ok(name) = std::str::from_utf8(name) else { continue };
        let value = match format {
            IstioFormat::FlatNode => pairs_raw(value).into_iter().find(|(k, _)| *k == b"value").map(|(_, v)| v),
            _ => Some(value),
        };
        if let Some(v) = value.and_then(|v| std::str::from_utf8(v).ok()) {
            labels.push(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Envoy's map encoding, as `proxy_get_property` returns a map: u32 count, (u32 key length,
    /// u32 value length) per entry, then each `key\0value\0` (little-endian).
    fn pairs(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = (entries.len() as u32).to_le_bytes().to_vec();
        for (k, v) in entries {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        }
        for (k, v) in entries {
            out.extend_from_slice(k.as_bytes());
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        out
    }

    fn host(answers: Vec<(Vec<&'static str>, Vec<u8>)>) -> impl Fn(&[&str]) -> Option<Vec<u8>> {
        move |path: &[&str]| answers.iter().find(|(p, _)| p.as_slice() == path).map(|(_, v)| v.clone())
    }

    const IDENTITY: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";

    #[test]
    fn istio_1_25_struct_with_and_without_identity() {
        let labels = pairs(&[("team", b"a")]);
        let state = pairs(&[
            ("workload", b"reviews-v3"),
            ("namespace", b"default"),
            ("app", b"reviews"),
            ("version", b"v3"),
            ("identity", IDENTITY.as_bytes()),
            ("labels", &labels),
        ]);
        let get = host(vec![(vec!["filter_state", "downstream_peer"], state)]);
        let peer = read(false, get).unwrap();
        assert_eq!(peer.format, IstioFormat::Struct);
        let m = &peer.metadata;
        assert_eq!((m.namespace.as_str(), m.workload_name.as_str()), ("default", "reviews-v3"));
        assert_eq!(m.service_account, "bookinfo-reviews");
        assert_eq!(peer.identity.as_deref(), Some(IDENTITY));
        for (k, v) in [("app", "reviews"), ("version", "v3"), ("team", "a")] {
            assert_eq!(m.labels.get(k), Some(v), "{k}");
        }
        // From the header exchange Istio has no identity: no service account is made up.
        let get = host(vec![(
            vec!["filter_state", "downstream_peer"],
            pairs(&[("namespace", b"default"), ("app", b"reviews")]),
        )]);
        let peer = read(false, get).unwrap();
        assert_eq!((peer.metadata.service_account.as_str(), peer.identity), ("", None));
    }

    #[test]
    fn istio_1_24_object_is_read_field_by_field() {
        let get = host(vec![
            (vec!["filter_state", "downstream_peer"], vec![0, 0, 0, 0]),
            (vec!["filter_state", "downstream_peer", "namespace"], b"default".to_vec()),
            (vec!["filter_state", "downstream_peer", "workload"], b"reviews-v3".to_vec()),
            (vec!["filter_state", "downstream_peer", "app"], b"reviews".to_vec()),
            (vec!["filter_state", "downstream_peer", "version"], b"v3".to_vec()),
        ]);
        let peer = read(false, get).unwrap();
        assert_eq!(peer.format, IstioFormat::WorkloadObject);
        assert_eq!(peer.metadata.labels.get("version"), Some("v3"));
        assert_eq!(peer.metadata.workload_name, "reviews-v3");
        assert_eq!(peer.identity, None);
    }

    #[test]
    fn istio_1_22_flat_node_under_the_wasm_key() {
        let label = |k: &str, v: &str| pairs(&[("key", k.as_bytes()), ("value", v.as_bytes())]);
        let (app, version) = (label("app", "reviews"), label("version", "v3"));
        let labels = pairs(&[("app", &app), ("version", &version)]);
        // Every schema field is listed, unset ones empty (alphabetical, as Envoy lists them).
        let state = pairs(&[
            ("app_containers", &[0, 0, 0, 0]),
            ("cluster_id", b"Kubernetes"),
            ("identity", b""),
            ("labels", &labels),
            ("name", b"reviews-v3-0"),
            ("namespace", b"default"),
            ("owner", b"kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v3"),
            ("workload_name", b"reviews-v3"),
        ]);
        let get = host(vec![(vec!["filter_state", "wasm.upstream_peer"], state)]);
        let peer = read(true, get).unwrap();
        assert_eq!(peer.format, IstioFormat::FlatNode);
        let m = &peer.metadata;
        assert_eq!((m.name.as_str(), m.cluster_id.as_str()), ("reviews-v3-0", "Kubernetes"));
        assert_eq!((m.labels.get("app"), m.labels.get("version")), (Some("reviews"), Some("v3")));
        assert_eq!(peer.identity, None, "an empty identity is none");
    }

    #[test]
    fn a_struct_under_the_wasm_key_is_read_as_a_struct() {
        // What a Wasm module can write for 1.25+: the Struct, under `wasm.downstream_peer`.
        let labels = pairs(&[("team", b"a")]);
        let state = pairs(&[
            ("app", b"reviews"),
            ("namespace", b"default"),
            ("labels", &labels),
            ("workload", b"reviews-v3"),
            ("version", b"v3"),
        ]);
        let get = host(vec![(vec!["filter_state", "wasm.downstream_peer"], state)]);
        let peer = read(false, get).unwrap();
        assert_eq!(peer.format, IstioFormat::Struct);
        let m = &peer.metadata;
        assert_eq!((m.namespace.as_str(), m.workload_name.as_str()), ("default", "reviews-v3"));
        for (k, v) in [("app", "reviews"), ("version", "v3"), ("team", "a")] {
            assert_eq!(m.labels.get(k), Some(v), "{k}");
        }
        assert_eq!(peer.identity, None);
    }

    #[test]
    fn nothing_usable_is_no_peer() {
        assert_eq!(read(false, host(vec![])), None);
        // Without a namespace nothing can be verified.
        let get = host(vec![(vec!["filter_state", "downstream_peer"], pairs(&[("app", b"reviews")]))]);
        assert_eq!(read(false, get), None);
        // Garbage bytes decode to nothing rather than panicking.
        let get = host(vec![(vec!["filter_state", "downstream_peer"], vec![9, 9, 9, 9, 9, 1, 2])]);
        assert_eq!(read(false, get), None);
        // The downstream reader never looks at upstream keys.
        let get = host(vec![(vec!["filter_state", "upstream_peer"], pairs(&[("namespace", b"default")]))]);
        assert_eq!(read(false, get), None);
    }
}
