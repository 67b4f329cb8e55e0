//! An Istio `x-envoy-peer-metadata` value (base64 of a serialized `google.protobuf.Struct`),
//! written out by hand so the benchmark does not depend on the filters' crates.

use crate::leb128::tagged;

/// A Struct value: a string or a nested map of strings.
pub enum Field<'a> {
    Str(&'a str),
    Map(&'a [(&'a str, &'a str)]),
}

/// `Value { string_value (3) | struct_value (5) }`
fn value(f: &Field) -> Vec<u8> {
    let mut v = Vec::new();
    match f {
        Field::Str(s) => tagged(0x1a, s.as_bytes(), &mut v),
        Field::Map(m) => {
            let fields: Vec<(&str, Field)> = m.iter().map(|(k, s)| (*k, Field::Str(s))).collect();
            tagged(0x2a, &structure(&fields), &mut v);
        }
    }
    v
}

/// `Struct { map<string, Value> fields = 1 }`, keys sorted (deterministic serialization).
fn structure(fields: &[(&str, Field)]) -> Vec<u8> {
    let mut sorted: Vec<&(&str, Field)> = fields.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    for (k, f) in sorted {
        let mut entry = Vec::new();
        tagged(0x0a, k.as_bytes(), &mut entry);
        tagged(0x12, &value(f), &mut entry);
        tagged(0x0a, &entry, &mut out);
    }
    out
}

fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The header a `reviews-v3` sidecar sends.
pub fn reviews_v3_header() -> String {
    reviews_header("v3")
}

/// The header a `reviews` sidecar of `version` sends.
pub fn reviews_header(version: &str) -> String {
    let labels: &[(&str, &str)] = &[("app", "reviews"), ("version", version)];
    let (name, workload, owner) = (
        format!("reviews-{version}-bench"),
        format!("reviews-{version}"),
        format!("kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-{version}"),
    );
    let fields = [
        ("NAME", Field::Str(&name)),
        ("NAMESPACE", Field::Str("default")),
        ("WORKLOAD_NAME", Field::Str(&workload)),
        ("SERVICE_ACCOUNT", Field::Str("bookinfo-reviews")),
        ("LABELS", Field::Map(labels)),
        ("OWNER", Field::Str(&owner)),
        ("CLUSTER_ID", Field::Str("Kubernetes")),
        ("MESH_ID", Field::Str("cluster.local")),
    ];
    base64(&structure(&fields))
}

/// What wasmixer's peer-metadata filter leaves in filter state (`wasm.wasmixer_downstream_peer`)
/// once it verified a `reviews` caller of `version` over mTLS: the claim, then the certificate
/// SAN it was checked against (`shared::attr::identity::published_peer`).
pub fn verified_reviews_caller(version: &str) -> String {
    format!("{}\nspiffe://cluster.local/ns/default/sa/bookinfo-reviews", reviews_header(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn struct_encoding() {
        // {"a": "b"}: field 1 { key "a", value { string_value "b" } }
        let s = structure(&[("a", Field::Str("b"))]);
        assert_eq!(s, vec![0x0a, 0x08, 0x0a, 0x01, b'a', 0x12, 0x03, 0x1a, 0x01, b'b']);
    }
}
