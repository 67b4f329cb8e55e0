//! wasmixer's peer-metadata filter inside an Istio 1.22+ sidecar, where Istio's own
//! peer-metadata filter runs first, strips `x-envoy-peer-metadata(-id)` and keeps the peer in
//! filter state instead: real Envoys, reviews-v3 → ratings over mTLS, the seed's deny rule on
//! the ratings sidecar.
//!
//! The client (reviews-v3) announces itself with Istio's header names only, as an Istio sidecar
//! does; the ratings sidecar's chain is Istio's profile (`istio_profile`: strips those headers),
//! then two test-only "Istio state emulators" (`integration/istio-state-emulator/`) writing the
//! peer the request names (header `x-istio-state-emulator-peer`) the way Istio's filter would,
//! then wasmixer's peer-metadata and deny filters. So the only way the deny rule can see
//! `source.labels` is through Istio's state, verified against the client certificate
//! (default/bookinfo-reviews).
//!
//! What is and is not Istio's exact state (see the emulator's crate doc):
//! - Istio 1.22/1.23 (FlatBuffers `FlatNode` CelState under `wasm.downstream_peer`): exact key,
//!   type and bytes, from wasmixer's own schema text of the documented fields.
//! - Istio 1.25+ (Struct CelState): the same object, but under `wasm.downstream_peer` instead of
//!   Istio's bare `downstream_peer`, which no Wasm module or stock Envoy filter can write
//!   (`set_property` always prefixes `wasm.`; no stock object factory makes a CelState). The
//!   reader's bare-key path is covered by the unit tests in `engine/src/attr/istio_peer_state.rs`.
//! - Istio 1.24 (`WorkloadMetadataObject`, fields only one by one): not reproducible with stock
//!   Envoy; unit tests only.

use serde_json::json;
use wasmixer_integration::bookinfo_pair::{PairFilters, ReviewsToRatings};
use wasmixer_integration::bootstrap::wasm_filter;
use wasmixer_integration::dist::{read_workspace_file, test_wasm_path};
use wasmixer_integration::istio_profile::metadata_exchange_filter;
use wasmixer_integration::{ensure, wasm_path, Backend, BackendResponse, HarnessError, Request};

const DENY_SEED: &str = "integration/testdata/deny-seed.json";
const DENIED: &str = "PERMISSION_DENIED:denyreviewsv3handler.default:Not allowed";
const PEER_HEADER: &str = "x-istio-state-emulator-peer";

/// A peer as the emulator takes it; `identity` only when Istio's workload discovery found it.
fn peer(namespace: &str, version: &str, identity: Option<&str>) -> serde_json::Value {
    let mut p =
        json!({"namespace": namespace, "workload": format!("reviews-{version}"), "app": "reviews", "version": version});
    if let Some(id) = identity {
        p["identity"] = json!(id);
    }
    p
}

/// The peers each emulator offers, by name; the struct emulator's names start with `struct-`,
/// the FlatNode one's with `flat-`.
fn emulator(format: &str) -> Result<String, HarnessError> {
    let (prefix, peers) = match format {
        "struct" => (
            "struct",
            vec![
                ("v3", peer("default", "v3", None)),
                ("v1", peer("default", "v1", None)),
                ("v3-identity", peer("default", "v3", Some("spiffe://cluster.local/ns/default/sa/bookinfo-reviews"))),
                ("other-ns", peer("other", "v3", None)),
                ("other-sa", peer("default", "v3", Some("spiffe://cluster.local/ns/default/sa/someone-else"))),
            ],
        ),
        _ => (
            "flat",
            vec![
                ("v3", peer("default", "v3", None)),
                ("v1", peer("default", "v1", None)),
                ("other-ns", peer("other", "v3", None)),
            ],
        ),
    };
    let peers: serde_json::Map<String, serde_json::Value> =
        peers.into_iter().map(|(name, p)| (format!("{prefix}-{name}"), p)).collect();
    let config = json!({"format": format, "peers": peers}).to_string();
    Ok(wasm_filter(&format!("istio-state-emulator-{format}"), &test_wasm_path("istio-state-emulator")?, &config))
}

#[test]
fn istio_filter_state_peer_is_verified_and_seen_by_the_deny_rule() -> Result<(), HarnessError> {
    let dir = std::env::temp_dir().join(format!("wasmixer-it-istio-state-{}", std::process::id()));
    let app = Backend::start(|_r| BackendResponse::ok("{}"))?;
    let istio_names =
        r#"{"metadata_header": "x-envoy-peer-metadata", "metadata_id_header": "x-envoy-peer-metadata-id"}"#;
    let filters = PairFilters {
        ratings_inbound: vec![
            metadata_exchange_filter(),
            emulator("struct")?,
            emulator("flatnode")?,
            wasm_filter("peer-metadata", &wasm_path("peer-metadata")?, "{}"),
            wasm_filter("deny", &wasm_path("deny")?, &read_workspace_file(DENY_SEED)?),
        ],
        reviews_outbound: vec![wasm_filter("peer-metadata", &wasm_path("peer-metadata")?, istio_names)],
        ..PairFilters::default()
    };
    let pair = ReviewsToRatings::start("istio-state", &dir, app.port(), filters)?;
    let client = pair.reviews.listener_addr("outbound")?;
    let call = |peer: Option<&str>| {
        let mut r = Request::get("/ratings/0").header("host", "ratings:9080");
        if let Some(p) = peer {
            r = r.header(PEER_HEADER, p);
        }
        r.send(client)
    };

    // No state: the client's announcement (Istio's header names, saying reviews-v3) was removed
    // by Istio's profile, so nobody tells the rule who calls: allowed.
    let resp = call(None)?;
    ensure!(
        resp.status == 200,
        "no state: status {} {:?} (the client's header must not reach us)",
        resp.status,
        resp.body_text()
    );

    // a. Istio's state names reviews-v3 in the certificate's namespace: the peer is verified
    //    (service account from the certificate, or from a matching identity) and denied.
    for state in ["struct-v3", "struct-v3-identity", "flat-v3"] {
        let resp = call(Some(state))?;
        ensure!(
            resp.status == 403 && resp.body_text().contains(DENIED),
            "{state}: status {} {:?}, want 403 {DENIED:?} (the peer from Istio's state)",
            resp.status,
            resp.body_text()
        );
    }
    for state in ["struct-v1", "flat-v1"] {
        let resp = call(Some(state))?;
        ensure!(resp.status == 200, "{state}: status {} {:?} (reviews-v1 is allowed)", resp.status, resp.body_text());
    }

    // b. State the certificate contradicts is not believed: the rule cannot see source.labels,
    //    so the call is allowed (Mixer's semantics), and the mismatch is counted.
    for state in ["struct-other-ns", "flat-other-ns", "struct-other-sa"] {
        let resp = call(Some(state))?;
        ensure!(resp.status == 200, "{state}: status {} {:?} (unverified: allowed)", resp.status, resp.body_text());
    }
    // Envoy prints the tags in the order it extracts them: result, then direction.
    let counter =
        |result: &str, n: u32| format!("wasmixer_peer_metadata_total{{result=\"{result}\",direction=\"inbound\"}} {n}");
    pair.ratings.wait_for_stat_line(&counter("verified", 5))?;
    pair.ratings.wait_for_stat_line(&counter("namespace_mismatch", 2))?;
    pair.ratings.wait_for_stat_line(&counter("service_account_mismatch", 1))?;
    Ok(())
}
