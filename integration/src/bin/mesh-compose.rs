//! The compose mesh's companion (see `integration/src/mesh_compose.rs`):
//!
//! - `mesh-compose generate [--istio]`: writes `envoy-config/docker-compose.yml` and
//!   `envoy-config/compose/generated/` (a CA, each workload's certificate and bootstrap);
//!   `--istio`: every sidecar under the Istio sidecar profile (Istio 1.22+'s metadata exchange
//!   ahead of our filters, stripping Istio's exchange headers: `istio_profile.rs`);
//! - `mesh-compose verify`: against the running containers, the seed's deny scenario
//!   (reviews-v3 -> ratings: 403 with Mixer's body, reviews-v2 -> ratings: 200, the product page
//!   with "Ratings service is currently unavailable" for v3) and its metrics scenario
//!   (`istio_double_request_count` +2 per request on both sidecars).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use wasmixer_integration::apps::RATINGS_UNAVAILABLE;
use wasmixer_integration::dist::workspace_file;
use wasmixer_integration::mesh_compose::{
    compose_yaml, generate, pod_ip, service_name, workloads, ADMIN_PORT, OUTBOUND_PORT,
};
use wasmixer_integration::mesh_obs::settled;
use wasmixer_integration::{HarnessError, Request, Response};

const SEED_DENY_BODY: &str = "PERMISSION_DENIED:denyreviewsv3handler.default:Not allowed";

fn addr(service: &str, port: u16) -> Result<std::net::SocketAddr, HarnessError> {
    let i = workloads()
        .iter()
        .position(|w| service_name(w) == service)
        .ok_or_else(|| HarnessError::check(format!("no service {service}")))?;
    pod_ip(i).parse::<std::net::IpAddr>().map(|ip| (ip, port).into()).map_err(|e| HarnessError::check(e.to_string()))
}

fn call(from: &str, host: &str, path: &str) -> Result<Response, HarnessError> {
    Request::get(path).header("host", host).timeout(Duration::from_secs(20)).send(addr(from, OUTBOUND_PORT)?)
}

fn double_count(service: &str, reporter: &str, source: &str, destination: &str) -> Result<f64, HarnessError> {
    let text = Request::get("/stats/prometheus").send(addr(service, ADMIN_PORT)?)?.body_text();
    let want = format!("istio_double_request_count{{reporter=\"{reporter}\",source=\"{source}\",destination=\"{destination}\",message=\"twice the fun!\"}} ");
    Ok(text.lines().find_map(|l| l.strip_prefix(&want)).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0))
}

fn verify() -> Result<(), HarnessError> {
    let services: Vec<String> = workloads().iter().map(service_name).collect();
    println!("waiting for {} sidecars", services.len());
    let deadline = Instant::now() + Duration::from_secs(600);
    for s in &services {
        loop {
            let ready = Request::get("/ready")
                .timeout(Duration::from_secs(5))
                .send(addr(s, ADMIN_PORT)?)
                .is_ok_and(|r| r.status == 200);
            if ready {
                println!("  {s}-proxy ready");
                break;
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout(format!("{s}-proxy not ready")));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let mut failures = Vec::new();
    let mut check = |ok: bool, what: String| {
        println!("  {}: {what}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failures.push(what);
        }
    };
    println!("deny-reviews-v3.yaml:");
    let r = call("reviews-v3", "ratings:9080", "/ratings/0")?;
    check(
        r.status == 403 && r.body_text() == SEED_DENY_BODY,
        format!("reviews-v3 -> ratings: {} {:?}", r.status, r.body_text()),
    );
    // The product page goes through reviews v1/v2/v3 in turn; browse it before the metric
    // baseline, so only the one reviews-v2 -> ratings call below is counted.
    let mut saw_v3 = false;
    for _ in 0..6 {
        let page = call("istio-ingressgateway", "bookinfo.example.com", "/productpage")?.body_text();
        if page.contains("reviews-v3-0") {
            saw_v3 = true;
            check(
                page.contains(RATINGS_UNAVAILABLE),
                format!("productpage via reviews-v3 shows {RATINGS_UNAVAILABLE:?}"),
            );
            break;
        }
    }
    check(saw_v3, "the product page was served by reviews-v3".to_string());
    // The metrics filter hands counters to Envoy on a 1 s tick: the baseline is taken once the
    // browsing's counts have landed (two reads a tick apart agree).
    let counts = || -> Result<(f64, f64), HarnessError> {
        Ok((
            double_count("reviews-v2", "client", "reviews-v2", "ratings-v1")?,
            double_count("ratings-v1", "server", "reviews-v2", "ratings-v1")?,
        ))
    };
    let before = settled(Duration::from_millis(1_200), counts)?;
    let r = call("reviews-v2", "ratings:9080", "/ratings/0")?;
    check(r.status == 200, format!("reviews-v2 -> ratings: {}", r.status));
    println!("double-request-count.yaml:");
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let now = counts()?;
        if (now.0 >= before.0 + 2.0 && now.1 >= before.1 + 2.0) || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    check(after.0 - before.0 == 2.0, format!("client reporter (reviews-v2's sidecar): {} -> {}", before.0, after.0));
    check(after.1 - before.1 == 2.0, format!("server reporter (ratings' sidecar): {} -> {}", before.1, after.1));
    if failures.is_empty() {
        println!("compose mesh: every checked seed outcome reproduced");
        Ok(())
    } else {
        Err(HarnessError::check(format!("{} check(s) failed: {failures:?}", failures.len())))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("generate") if args.len() <= 2 && args.get(1).is_none_or(|a| a == "--istio") => {
            let dir = workspace_file("envoy-config/compose/generated");
            generate(&dir, args.get(1).is_some()).and_then(|()| {
                let file = workspace_file("envoy-config/docker-compose.yml");
                std::fs::write(&file, compose_yaml())
                    .map_err(|e| HarnessError::io(format!("writing {}", file.display()), e))?;
                println!("wrote {} and {}", file.display(), dir.display());
                Ok(())
            })
        }
        Some("verify") => verify(),
        _ => {
            eprintln!("usage: mesh-compose generate [--istio] | verify");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh-compose: {e}");
            ExitCode::from(1)
        }
    }
}
