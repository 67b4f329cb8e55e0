//! The shipped per-role bootstraps (`envoy-config/bootstrap/sidecar-{inbound,outbound}.yaml`)
//! run as they are (only addresses, certificate paths and the like swapped for the test's own)
//! and produce the seed's outcomes: reviews-v3 -> ratings denied with Mixer's body, the double
//! counter on both reporters, the access-log line, one trace across both sidecars.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmixer_integration::dist::{dist_dir, read_workspace_file};
use wasmixer_integration::mesh_obs::ZipkinReceiver;
use wasmixer_integration::pki::{TestCa, WorkloadCert};
use wasmixer_integration::sidecar::stats_tags;
use wasmixer_integration::{ensure, Backend, BackendResponse, EnvoyProcess, HarnessError, Request};

const INBOUND: &str = "envoy-config/bootstrap/sidecar-inbound.yaml";
const OUTBOUND: &str = "envoy-config/bootstrap/sidecar-outbound.yaml";
const SEED_DENY_BODY: &str = "PERMISSION_DENIED:denyreviewsv3handler.default:Not allowed";

/// Replaces every `from` (which must occur) with `to`.
fn swap(text: &mut String, from: &str, to: &str, file: &str) -> Result<(), HarnessError> {
    ensure!(text.contains(from), "{file} no longer contains {from:?}: update this test or the file");
    *text = text.replace(from, to);
    Ok(())
}

/// Istio 1.4's certificate files for one workload, in `dir`.
fn cert_dir(dir: &Path, cert: &WorkloadCert, ca: &Path) -> Result<(), HarnessError> {
    std::fs::create_dir_all(dir).map_err(|e| HarnessError::io("creating a certificate directory", e))?;
    for (from, to) in [(&cert.cert, "cert-chain.pem"), (&cert.key, "key.pem")] {
        std::fs::copy(from, dir.join(to)).map_err(|e| HarnessError::io(format!("copying {to}"), e))?;
    }
    std::fs::copy(ca, dir.join("root-cert.pem")).map_err(|e| HarnessError::io("copying root-cert.pem", e))?;
    Ok(())
}

/// The `(tag_name, regex)` pairs of a bootstrap's `stats_tags` (one flow mapping per line).
fn file_stats_tags(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("- { tag_name: ")?;
            let (name, rest) = rest.split_once(", regex: \"")?;
            let regex = rest.strip_suffix("\" }")?.replace("\\\\", "\\");
            Some((name.to_string(), regex))
        })
        .collect()
}

#[test]
fn shipped_bootstraps_carry_the_generated_stats_tags() -> Result<(), HarnessError> {
    let labels: Vec<String> = ["reporter", "source", "destination", "message", "metric", "reason", "instance"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let want: Vec<(String, String)> = stats_tags(&labels)
        .iter()
        .filter_map(|j| serde_json::from_str::<Value>(j).ok())
        .map(|v| (v["tag_name"].as_str().unwrap_or("").to_string(), v["regex"].as_str().unwrap_or("").to_string()))
        .collect();
    for file in [INBOUND, OUTBOUND] {
        let got = file_stats_tags(&read_workspace_file(file)?);
        ensure!(got == want, "{file}: stats_tags\n got {got:?}\nwant {want:?}");
    }
    Ok(())
}

#[test]
fn shipped_bootstraps_enforce_the_seed() -> Result<(), HarnessError> {
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("wasmixer-it-bootstraps-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    let ca = TestCa::create(&dir.join("ca"), "cluster.local")?;
    cert_dir(&dir.join("ratings"), &ca.issue("default", "bookinfo-ratings")?, &ca.ca_cert())?;
    cert_dir(&dir.join("reviews"), &ca.issue("default", "bookinfo-reviews")?, &ca.ca_cert())?;
    let app = Backend::start(|_| BackendResponse::ok("{\"id\":0,\"ratings\":{\"Reviewer1\":5,\"Reviewer2\":4}}"))?;
    let zipkin = ZipkinReceiver::start()?;
    // The two roles' addresses, unlikely to be used by anything else on this machine.
    let (server_ip, client_ip) = (format!("127.250.{}.2", 1 + pid % 250), format!("127.250.{}.3", 1 + pid % 250));
    let dist = dist_dir();
    let render = |file: &str, role: &str| -> Result<String, HarnessError> {
        let mut t = read_workspace_file(file)?;
        swap(&mut t, "127.0.0.2", &server_ip, file)?;
        if file == OUTBOUND {
            swap(&mut t, "127.0.0.3", &client_ip, file)?;
        } else {
            swap(
                &mut t,
                "{ address: 127.0.0.1, port_value: 9080 }",
                &format!("{{ address: 127.0.0.1, port_value: {} }}", app.port()),
                file,
            )?;
        }
        swap(
            &mut t,
            "{ address: 127.0.0.1, port_value: 9411 }",
            &format!("{{ address: 127.0.0.1, port_value: {} }}", zipkin.addr().port()),
            file,
        )?;
        swap(&mut t, "/etc/certs/", &format!("{}/", dir.join(role).display()), file)?;
        swap(&mut t, "filename: dist/", &format!("filename: {}/", dist.display()), file)?;
        swap(
            &mut t,
            "path: /dev/stdout",
            &format!("path: {}", dir.join(format!("{role}-access.log")).display()),
            file,
        )?;
        swap(&mut t, "random_sampling: { value: 1.0 }", "random_sampling: { value: 100.0 }", file)?;
        swap(&mut t, "tracing.zipkin.flush_interval_ms: 1000", "tracing.zipkin.flush_interval_ms: 200", file)?;
        Ok(t)
    };
    let args = ["--file-flush-interval-msec", "200"];
    let server = EnvoyProcess::start_with_args(&render(INBOUND, "ratings")?, "bootstrap-inbound", &args)?;
    let client = EnvoyProcess::start_with_args(&render(OUTBOUND, "reviews")?, "bootstrap-outbound", &args)?;
    for (e, name) in [(&server, "inbound"), (&client, "outbound")] {
        let log = e.log();
        ensure!(
            !log.contains("deprecated"),
            "the {name} bootstrap uses deprecated fields:\n{}",
            log.lines().filter(|l| l.contains("deprecated")).collect::<Vec<_>>().join("\n")
        );
    }

    let outbound = client.listener_addr("outbound")?;
    let r = Request::get("/ratings/0").header("host", "ratings:9080").send(outbound)?;
    ensure!(
        r.status == 403 && r.body_text() == SEED_DENY_BODY,
        "reviews-v3 -> ratings: {} {:?}",
        r.status,
        r.body_text()
    );
    ensure!(app.request_count() == 0, "the denied request reached the application");

    // The double counter on both sides.
    for (e, reporter) in [(&server, "server"), (&client, "client")] {
        let want = format!("istio_double_request_count{{reporter=\"{reporter}\",source=\"reviews-v3\",destination=\"ratings-v1\",message=\"twice the fun!\"}} 2");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stats = e.stats_prometheus()?;
            if stats.lines().any(|l| l == want) {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "no {want:?} in:\n{}",
                stats.lines().filter(|l| l.contains("double")).collect::<Vec<_>>().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // One access-log line per side, the seed's shape.
    for role in ["ratings", "reviews"] {
        let path = dir.join(format!("{role}-access.log"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let text = loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.is_empty() || Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let lines: Vec<&str> = text.lines().collect();
        ensure!(lines.len() == 1, "{role} access log: {lines:?}");
        let l = lines[0];
        ensure!(
            l.starts_with(r#"{"level":"warn","time":""#)
                && l.contains(r#""instance":"newlog.instance.istio-system","destination":"ratings","latency":""#),
            "{l}"
        );
        ensure!(
            l.contains(r#""responseCode":403,"#)
                && l.contains(r#""source":"reviews","user":"cluster.local/ns/default/sa/bookinfo-reviews"}"#),
            "{l}"
        );
    }

    // One trace: the client span and the server span.
    let deadline = Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans = zipkin.spans();
        if spans.len() >= 2 || Instant::now() > deadline {
            break spans;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    ensure!(spans.len() == 2 && spans[0].trace_id == spans[1].trace_id, "spans: {spans:#?}");
    let kinds: Vec<&str> = spans.iter().filter_map(|s| s.kind.as_deref()).collect();
    ensure!(kinds.contains(&"CLIENT") && kinds.contains(&"SERVER"), "span kinds {kinds:?}");

    drop(client);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
