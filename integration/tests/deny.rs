//! The seed's deny scenario end to end: reviews -> ratings through two real Envoy sidecars with
//! mTLS, the deny filter on the ratings (server) side, workload identity from node metadata and
//! the peer-metadata exchange, verified against the SPIFFE certificates.

use std::time::Duration;

use wasmixer_engine::attr::workload::WorkloadMetadata;
use wasmixer_integration::bootstrap::wasm_filter;
use wasmixer_integration::dist::read_workspace_file;
use wasmixer_integration::pki::TestCa;
use wasmixer_integration::sidecar::{InboundTls, SidecarSpec, Workload};
use wasmixer_integration::{ensure, wasm_path, Backend, BackendResponse, EnvoyProcess, HarnessError, Request};

const SEED_BODY: &str = "PERMISSION_DENIED:denyreviewsv3handler.default:Not allowed";

struct Mesh {
    ratings_app: Backend,
    ratings: EnvoyProcess,
    reviews_v2: EnvoyProcess,
    reviews_v3: EnvoyProcess,
    ratings_inbound_port: u16,
    _ca_dir: std::path::PathBuf,
}

fn peer_filter() -> Result<String, HarnessError> {
    Ok(wasm_filter("peer-metadata", &wasm_path("peer-metadata")?, "{}"))
}

fn start_mesh(name: &str, deny_config: &str) -> Result<Mesh, HarnessError> {
    start_mesh_with(name, deny_config, |bootstrap| bootstrap)
}

/// The mesh with the ratings sidecar's bootstrap passed through `edit` first.
fn start_mesh_with(name: &str, deny_config: &str, edit: impl Fn(String) -> String) -> Result<Mesh, HarnessError> {
    let ca_dir = std::env::temp_dir().join(format!("wasmixer-it-pki-{name}-{}", std::process::id()));
    let ca = TestCa::create(&ca_dir, "cluster.local")?;
    let ca_cert = ca.ca_cert();
    let ratings_app = Backend::start(|_req| BackendResponse::ok("{\"id\":0,\"ratings\":{\"Reviewer1\":5}}"))?;
    // Listeners bind port 0 and Envoy says which port it took: pre-picked ports can race with
    // the admin ports of Envoys starting at the same time.
    let ratings_w = Workload::new("ratings", "v1", "default", "bookinfo-ratings");
    let ratings_cert = ca.issue("default", "bookinfo-ratings")?;
    let ratings_spec = SidecarSpec {
        inbound_filters: vec![peer_filter()?, wasm_filter("deny", &wasm_path("deny")?, deny_config)],
        outbound_filters: vec![peer_filter()?],
        ..SidecarSpec::bookinfo_ratings(
            &ratings_w,
            &ratings_cert,
            &ca_cert,
            InboundTls::Permissive,
            [0, 0],
            ratings_app.port(),
        )
    };
    let ratings = EnvoyProcess::start(&edit(ratings_spec.bootstrap()), &format!("{name}-ratings"))?;
    let ratings_inbound_port = ratings.listener_addr("inbound")?.port();
    let client = |version: &str| -> Result<EnvoyProcess, HarnessError> {
        let w = Workload::new("reviews", version, "default", "bookinfo-reviews");
        let cert = ca.issue("default", "bookinfo-reviews")?;
        let spec = SidecarSpec {
            inbound_filters: vec![peer_filter()?],
            outbound_filters: vec![peer_filter()?],
            ..SidecarSpec::bookinfo_reviews(&w, &cert, &ca_cert, InboundTls::Permissive, [0, 0], ratings_inbound_port)
        };
        EnvoyProcess::start(&spec.bootstrap(), &format!("{name}-reviews-{version}"))
    };
    let reviews_v2 = client("v2")?;
    let reviews_v3 = client("v3")?;
    Ok(Mesh { ratings_app, ratings, reviews_v2, reviews_v3, ratings_inbound_port, _ca_dir: ca_dir })
}

fn call_ratings(sidecar: &EnvoyProcess) -> Result<wasmixer_integration::Response, HarnessError> {
    Request::get("/ratings/0").header("host", "ratings:9080").send(sidecar.listener_addr("outbound")?)
}

#[test]
fn seed_deny_reviews_v3_to_ratings() -> Result<(), HarnessError> {
    let mesh = start_mesh("deny-seed", &read_workspace_file("integration/testdata/deny-seed.json")?)?;

    let denied = call_ratings(&mesh.reviews_v3)?;
    ensure!(denied.status == 403, "reviews-v3 -> ratings: status {} body {:?}", denied.status, denied.body_text());
    ensure!(denied.body_text() == SEED_BODY, "body {:?}", denied.body_text());

    let allowed = call_ratings(&mesh.reviews_v2)?;
    ensure!(allowed.status == 200, "reviews-v2 -> ratings: status {} body {:?}", allowed.status, allowed.body_text());
    ensure!(allowed.body_text().contains("Reviewer1"), "body {:?}", allowed.body_text());

    // The application never sees the exchange headers.
    let seen = mesh.ratings_app.wait_for_requests(1, Duration::from_secs(5))?;
    ensure!(seen.len() == 1, "ratings app saw {} requests (the denied one must not arrive)", seen.len());
    ensure!(seen[0].header("x-envoy-peer-metadata").is_none(), "peer metadata leaked to the application");

    // Counters reach Envoy on the filter's next tick (every second).
    let counted = |stats: &str| {
        stats.lines().any(|l| {
            l.starts_with("wasmixer_policy_checks_total{") && l.contains("result=\"deny\"") && l.ends_with(" 1")
        })
    };
    let mut stats = mesh.ratings.stats_prometheus()?;
    for _ in 0..30 {
        if counted(&stats) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        stats = mesh.ratings.stats_prometheus()?;
    }
    ensure!(
        counted(&stats),
        "no deny counter in:\n{}",
        stats.lines().filter(|l| l.contains("wasmixer")).collect::<Vec<_>>().join("\n")
    );
    Ok(())
}

/// A hand-written bootstrap may leave `traffic_direction` out. The sidecar is then taken as
/// inbound for the sides (peer-metadata publishes the verified caller under its undirected key,
/// `wasm.wasmixer_peer`), so the seed rule still sees reviews-v3 as the source.
#[test]
fn an_inbound_listener_without_traffic_direction_still_knows_its_caller() -> Result<(), HarnessError> {
    let config = read_workspace_file("integration/testdata/deny-seed.json")?;
    let mesh = start_mesh_with("deny-undirected", &config, |bootstrap| {
        bootstrap.replacen(r#""traffic_direction":"INBOUND","#, "", 1)
    })?;
    let config_dump = mesh.ratings.admin_get("/config_dump?resource=static_listeners")?.body_text();
    ensure!(!config_dump.contains("\"INBOUND\""), "the inbound listener still has a direction:\n{config_dump}");
    let denied = call_ratings(&mesh.reviews_v3)?;
    ensure!(denied.status == 403, "reviews-v3 -> ratings: status {} body {:?}", denied.status, denied.body_text());
    ensure!(denied.body_text() == SEED_BODY, "body {:?}", denied.body_text());
    let allowed = call_ratings(&mesh.reviews_v2)?;
    ensure!(allowed.status == 200, "reviews-v2 -> ratings: status {} body {:?}", allowed.status, allowed.body_text());
    Ok(())
}

#[test]
fn forged_peer_metadata_over_plain_text_is_not_trusted() -> Result<(), HarnessError> {
    let mesh = start_mesh("deny-forgery", &read_workspace_file("integration/testdata/deny-seed.json")?)?;
    let mut forged = WorkloadMetadata {
        name: "reviews-v3-0".into(),
        namespace: "default".into(),
        workload_name: "reviews-v3".into(),
        service_account: "bookinfo-reviews".into(),
        ..WorkloadMetadata::default()
    };
    forged.labels = wasmixer_engine::expr::StringMap::from_pairs([("app", "reviews"), ("version", "v3")]);
    let resp = Request::get("/ratings/0")
        .header("host", "ratings:9080")
        .header("x-envoy-peer-metadata", &forged.encode_header())
        .header("x-envoy-peer-metadata-id", "sidecar~127.0.0.1~reviews-v3-0.default~default.svc.cluster.local")
        .send(([127, 0, 0, 1], mesh.ratings_inbound_port).into())?;
    ensure!(
        resp.status == 200,
        "a plain-text client claiming reviews-v3 was treated as reviews-v3: {} {:?}",
        resp.status,
        resp.body_text()
    );
    let seen = mesh.ratings_app.wait_for_requests(1, Duration::from_secs(5))?;
    ensure!(
        seen.iter().all(|r| r.header("x-envoy-peer-metadata").is_none()),
        "the forged header reached the application"
    );
    // A plain-text caller learns nothing about the workload, even when it announced itself
    // (Istio would answer it: `answer_plaintext_callers` restores that, below).
    ensure!(
        resp.header("x-envoy-peer-metadata").is_none() && resp.header("x-wasmixer-peer-metadata").is_none(),
        "a plain-text caller was told who ratings is"
    );
    let silent = Request::get("/ratings/0")
        .header("host", "ratings:9080")
        .send(([127, 0, 0, 1], mesh.ratings_inbound_port).into())?;
    ensure!(silent.status == 200, "status {}", silent.status);
    ensure!(silent.header("x-envoy-peer-metadata").is_none(), "metadata sent to a caller that did not ask");
    // Exchanges are counted in memory and reach Envoy on the filter's 1 s tick.
    let counted = |stats: &str| {
        stats.lines().any(|l| l.starts_with("wasmixer_peer_metadata_total{") && l.contains("result=\"no_mtls\""))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut stats = mesh.ratings.stats_prometheus()?;
    while !counted(&stats) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        stats = mesh.ratings.stats_prometheus()?;
    }
    ensure!(
        counted(&stats),
        "the unverified claim was not counted:\n{}",
        stats.lines().filter(|l| l.contains("wasmixer")).collect::<Vec<_>>().join("\n")
    );
    Ok(())
}

/// `answer_plaintext_callers` restores Istio's behaviour: a caller that announced itself gets
/// the workload's metadata back, under the names it used, whatever the connection.
#[test]
fn answering_plain_text_callers_is_an_opt_in() -> Result<(), HarnessError> {
    let config = read_workspace_file("integration/testdata/deny-seed.json")?;
    let mesh = start_mesh_with("deny-answer-plaintext", &config, |bootstrap| {
        // The peer-metadata filters' configuration is the empty document.
        bootstrap.replace(r#""value":"{}""#, r#""value":"{\"answer_plaintext_callers\":true}""#)
    })?;
    let caller =
        WorkloadMetadata { name: "sleep-0".into(), namespace: "default".into(), ..WorkloadMetadata::default() };
    let resp = Request::get("/ratings/0")
        .header("host", "ratings:9080")
        .header("x-envoy-peer-metadata", &caller.encode_header())
        .send(([127, 0, 0, 1], mesh.ratings_inbound_port).into())?;
    ensure!(resp.status == 200, "status {}", resp.status);
    ensure!(resp.header("x-envoy-peer-metadata").is_some(), "no answer under Istio's names to a caller that used them");
    ensure!(resp.header("x-wasmixer-peer-metadata").is_none(), "answered under names the caller did not use");
    Ok(())
}
