//! The seed scenarios through the mesh harness: real Envoy sidecars in front of in-process
//! applications, configuration pushed as Istio's control plane would (see `src/mesh.rs`).
//!
//! - the mTLS story (`mtls-*.yaml`): the sleep/httpbin matrix in namespaces foo and bar;
//! - the deny rule (`deny-reviews-v3.yaml`) through bookinfo;
//! - one trace through every bookinfo hop.

use std::time::Duration;

use wasmixer_integration::apps::RATINGS_UNAVAILABLE;
use wasmixer_integration::dist::read_workspace_file;
use wasmixer_integration::mesh::{with_mesh, Mesh, MeshSpec};
use wasmixer_integration::mesh_obs::render_trace;
use wasmixer_integration::{ensure, HarnessError};

const CLIENTS: [&str; 2] = ["sleep.foo", "sleep.bar"];
const SERVERS: [&str; 2] = ["httpbin.foo", "httpbin.bar"];
const SEED_DENY_BODY: &str = "PERMISSION_DENIED:denyreviewsv3handler.default:Not allowed";

fn seed(file: &str) -> Result<String, HarnessError> {
    read_workspace_file(&format!("integration/testdata/mesh-seed/{file}"))
}

/// `(client, server) -> status` for the four calls (0 when the call itself failed).
fn matrix(mesh: &Mesh) -> Vec<(String, String, u16)> {
    let mut out = Vec::new();
    for c in CLIENTS {
        for s in SERVERS {
            let status = mesh.call(c, &format!("http://{s}:8000/ip")).map_or(0, |r| r.status);
            out.push((c.to_string(), s.to_string(), status));
        }
    }
    out
}

/// Checks the matrix against `expect(client, server) -> status`.
fn ensure_matrix(mesh: &Mesh, stage: &str, expect: impl Fn(&str, &str) -> u16) -> Result<(), HarnessError> {
    let got = matrix(mesh);
    let wrong: Vec<String> = got
        .iter()
        .filter(|(c, s, st)| expect(c, s) != *st)
        .map(|(c, s, st)| format!("{c} -> {s}: {st}, expected {}", expect(c, s)))
        .collect();
    ensure!(wrong.is_empty(), "{stage}: {}\nfull matrix: {got:?}", wrong.join("; "));
    Ok(())
}

/// A plain-text client outside the mesh (no sidecar) reaching `server` directly.
fn legacy_reaches(mesh: &Mesh, server: &str) -> bool {
    mesh.direct(server, "/ip").is_ok_and(|r| r.status == 200)
}

#[test]
fn seed_mtls_mesh_wide() -> Result<(), HarnessError> {
    with_mesh(MeshSpec::sleep_httpbin("mtls-mesh-wide"), |mesh| {
        ensure_matrix(mesh, "no policy (PERMISSIVE, plain text)", |_, _| 200)?;
        ensure!(legacy_reaches(mesh, "httpbin.foo"), "a PERMISSIVE server refused plain text");

        mesh.apply_yaml(&seed("mtls-meshpolicy-strict.yaml")?)?;
        ensure_matrix(mesh, "servers STRICT, clients not originating", |_, _| 503)?;
        ensure!(!legacy_reaches(mesh, "httpbin.bar"), "a STRICT server answered a plain-text client");

        mesh.apply_yaml(&seed("mtls-mesh-wide.yaml")?)?;
        ensure_matrix(mesh, "mesh-wide mTLS (MeshPolicy + DestinationRule *.local)", |_, _| 200)?;
        ensure!(!legacy_reaches(mesh, "httpbin.foo"), "a STRICT server answered a plain-text client");

        // The peer identity the server saw: httpbin's /headers shows what the application got,
        // and the sidecar's TLS stats show a handshake with a client certificate.
        let stats = mesh.node("httpbin.foo")?.stats(r"ssl\.handshake$")?;
        ensure!(stats.values().any(|v| *v > 0), "no TLS handshake on httpbin.foo's sidecar: {stats:?}");
        Ok(())
    })
}

#[test]
fn seed_mtls_namespace_foo_and_service_httpbin_bar() -> Result<(), HarnessError> {
    with_mesh(MeshSpec::sleep_httpbin("mtls-scoped"), |mesh| {
        // Namespace foo: its Policy makes httpbin.foo STRICT; its DestinationRule
        // (*.foo.svc.cluster.local, exported to every namespace) makes both sleeps originate.
        mesh.apply_yaml(&seed("mtls-namespace-foo.yaml")?)?;
        ensure_matrix(mesh, "mtls-namespace-foo", |_, _| 200)?;
        ensure!(!legacy_reaches(mesh, "httpbin.foo"), "httpbin.foo (STRICT) answered a plain-text client");
        ensure!(legacy_reaches(mesh, "httpbin.bar"), "httpbin.bar is not PERMISSIVE");

        // The Policy alone (no DestinationRule): clients do not originate and httpbin.foo fails.
        let rule = "apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata:\n  name: default\n  namespace: foo\n";
        mesh.delete_yaml(rule)?;
        ensure_matrix(
            mesh,
            "Policy foo without its DestinationRule",
            |_, s| {
                if s == "httpbin.foo" {
                    503
                } else {
                    200
                }
            },
        )?;

        // Service httpbin.bar only.
        mesh.reset_tls()?;
        mesh.apply_yaml(&seed("mtls-service-httpbin-bar.yaml")?)?;
        ensure_matrix(mesh, "mtls-service-httpbin-bar", |_, _| 200)?;
        ensure!(!legacy_reaches(mesh, "httpbin.bar"), "httpbin.bar (STRICT) answered a plain-text client");
        ensure!(legacy_reaches(mesh, "httpbin.foo"), "httpbin.foo is not PERMISSIVE");
        ensure!(legacy_reaches(mesh, "sleep.bar"), "sleep.bar is not PERMISSIVE (the Policy targets httpbin only)");
        let rule = "apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata:\n  name: httpbin\n  namespace: bar\n";
        mesh.delete_yaml(rule)?;
        ensure_matrix(mesh, "Policy httpbin.bar without its DestinationRule", |_, s| {
            if s == "httpbin.bar" {
                503
            } else {
                200
            }
        })?;
        Ok(())
    })
}

/// Productpage pages through the gateway until every reviews version served one; returns
/// `(served by, page)` pairs.
fn product_pages(mesh: &Mesh, max: usize) -> Result<Vec<(String, String)>, HarnessError> {
    let mut pages = Vec::new();
    for _ in 0..max {
        let r = mesh.ingress("/productpage")?;
        ensure!(r.status == 200, "productpage: {} {}", r.status, r.body_text());
        let body = r.body_text();
        let served = body
            .split("Reviews served by:</dt><dd>")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap_or("?")
            .to_string();
        pages.push((served, body));
        if ["reviews-v1", "reviews-v2", "reviews-v3"].iter().all(|v| pages.iter().any(|(s, _)| s.starts_with(v))) {
            break;
        }
    }
    Ok(pages)
}

#[test]
fn seed_deny_reviews_v3_through_bookinfo() -> Result<(), HarnessError> {
    with_mesh(MeshSpec::bookinfo("deny-bookinfo").filters(&["peer-metadata", "deny"]), |mesh| {
        // Before the rule: every version that calls ratings shows stars.
        let before = product_pages(mesh, 6)?;
        ensure!(
            before.iter().all(|(_, p)| !p.contains(RATINGS_UNAVAILABLE)),
            "ratings unavailable before the rule: {before:?}"
        );

        mesh.apply_yaml(&seed("deny-reviews-v3.yaml")?)?;
        let denied = mesh.call("reviews-v3", "http://ratings:9080/ratings/0")?;
        ensure!(denied.status == 403, "reviews-v3 -> ratings: {} {:?}", denied.status, denied.body_text());
        ensure!(denied.body_text() == SEED_DENY_BODY, "body {:?}", denied.body_text());
        for v in ["reviews-v1", "reviews-v2"] {
            let ok = mesh.call(v, "http://ratings:9080/ratings/0")?;
            ensure!(ok.status == 200, "{v} -> ratings: {} {:?}", ok.status, ok.body_text());
        }

        let pages = product_pages(mesh, 9)?;
        for (served, page) in &pages {
            let unavailable = page.contains(RATINGS_UNAVAILABLE);
            match served.get(..10) {
                Some("reviews-v3") => {
                    ensure!(unavailable, "v3 page without the message:\n{page}")
                }
                Some("reviews-v2") => {
                    ensure!(!unavailable && page.contains('\u{2605}'), "v2 page without stars:\n{page}")
                }
                Some("reviews-v1") => {
                    ensure!(!unavailable && !page.contains('\u{2605}'), "v1 page with ratings:\n{page}")
                }
                _ => ensure!(false, "page served by {served:?}:\n{page}"),
            }
        }
        ensure!(
            pages.iter().any(|(s, _)| s.starts_with("reviews-v3")),
            "no page served by reviews-v3 in {} tries",
            pages.len()
        );
        Ok(())
    })
}

#[test]
fn one_trace_spans_every_bookinfo_hop() -> Result<(), HarnessError> {
    // Every filter in the chain: trace context must pass through them untouched.
    let spec = MeshSpec::bookinfo("trace").filters(&["peer-metadata", "deny", "metrics", "access-log"]).tracing(100.0);
    with_mesh(spec, |mesh| {
        let zipkin = mesh.zipkin()?;
        for attempt in 0..4 {
            let seen = zipkin.trace_ids();
            let r = mesh.ingress("/productpage")?;
            ensure!(r.status == 200, "productpage: {}", r.status);
            if !r.body_text().contains("\u{2605}") {
                continue; // reviews-v1: no ratings hop; try the next version.
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            let trace_id = loop {
                if let Some(id) = zipkin.trace_ids().into_iter().find(|id| !seen.contains(id)) {
                    break id;
                }
                ensure!(std::time::Instant::now() < deadline, "attempt {attempt}: no new trace");
                std::thread::sleep(Duration::from_millis(100));
            };
            // gateway -> productpage -> {details, reviews -> ratings}: 4 hops, a client and a
            // server span each.
            let spans = zipkin.wait_for_trace(&trace_id, 8, Duration::from_secs(15))?;
            let tree = render_trace(&spans);
            ensure!(spans.len() == 8, "{} spans in trace {trace_id}:\n{tree}", spans.len());
            ensure!(zipkin.trace_ids().len() == seen.len() + 1, "one request made more than one trace:\n{tree}");
            for (service, kind) in [
                ("istio-ingressgateway.istio-system", "CLIENT"),
                ("productpage-v1.default", "SERVER"),
                ("productpage-v1.default", "CLIENT"),
                ("details-v1.default", "SERVER"),
                ("ratings-v1.default", "SERVER"),
            ] {
                ensure!(
                    spans.iter().any(|s| s.local_endpoint.service_name == service && s.kind.as_deref() == Some(kind)),
                    "no {kind} span from {service}:\n{tree}"
                );
            }
            // One tree: a single root, every other span's parent in the trace.
            let roots = spans.iter().filter(|s| s.parent_id.is_none()).count();
            ensure!(roots == 1, "{roots} roots:\n{tree}");
            ensure!(
                spans.iter().all(|s| s.parent_id.as_ref().is_none_or(|p| spans.iter().any(|x| &x.id == p))),
                "broken parent links:\n{tree}"
            );
            eprintln!("trace {trace_id}:\n{tree}");
            return Ok(());
        }
        Err(HarnessError::check("no productpage request reached reviews v2/v3 in 4 attempts"))
    })
}

#[test]
fn seed_telemetry_double_request_count_and_newlog() -> Result<(), HarnessError> {
    let spec = MeshSpec::sleep_httpbin("telemetry").filters(&["peer-metadata", "metrics", "access-log"]).prometheus();
    with_mesh(spec, |mesh| {
        // Verified peers (mTLS), as in the seed's mesh.
        mesh.apply_yaml(&seed("mtls-meshpolicy-strict.yaml")?)?;
        mesh.apply_yaml(&seed("mtls-mesh-wide.yaml")?)?;
        mesh.apply_yaml(&seed("double-request-count.yaml")?)?;
        mesh.apply_yaml(&seed("newlog-stdio.yaml")?)?;
        const N: usize = 3;
        for _ in 0..N {
            let r = mesh.call("sleep.foo", "http://httpbin.bar:8000/status/418")?;
            ensure!(r.status == 418, "sleep.foo -> httpbin.bar: {}", r.status);
        }
        let want = (2 * N) as f64;
        let prom = mesh.prometheus()?;
        let q = r#"istio_double_request_count{source="sleep",destination="httpbin",message="twice the fun!"}"#;
        let samples = prom
            .wait_for(q, Duration::from_secs(30), |s| {
                ["client", "server"].iter().all(|rep| s.iter().any(|x| x.label("reporter") == *rep && x.value == want))
            })
            .map_err(|e| {
                let stats = mesh.node("httpbin.bar").and_then(|n| n.stats_prometheus()).unwrap_or_default();
                let ours: Vec<&str> =
                    stats.lines().filter(|l| l.contains("double") || l.contains("wasmixer")).collect();
                HarnessError::check(format!(
                    "{e}\nup: {:?}\nhttpbin.bar /stats/prometheus:\n{}",
                    prom.query("up"),
                    ours.join("\n")
                ))
            })?;
        ensure!(samples.len() == 2, "{samples:?}");

        // One line per request and reporter; the server's lines as the seed shows them.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let lines = loop {
            let lines = mesh.node("httpbin.bar")?.access_log();
            if lines.len() >= N || std::time::Instant::now() > deadline {
                break lines;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        ensure!(lines.len() == N, "httpbin.bar access log: {lines:#?}");
        for l in &lines {
            ensure!(l.starts_with(r#"{"level":"warn","time":""#), "{l}");
            ensure!(
                l.contains(r#"","instance":"newlog.instance.istio-system","destination":"httpbin","latency":""#),
                "{l}"
            );
            ensure!(l.contains(r#"","responseCode":418,"responseSize":0,"source":"sleep","user":""#), "{l}");
        }
        let client_lines = mesh.node("sleep.foo")?.access_log();
        ensure!(client_lines.len() == N, "sleep.foo access log: {client_lines:#?}");
        Ok(())
    })
}
