//! `make run`: the seed scenarios on a local mesh, shown as a user of Istio 1.4's Mixer saw them.
//!
//! Starts bookinfo (behind an ingress gateway) and sleep/httpbin in namespaces foo and bar, each
//! workload behind a stock Envoy sidecar loading the wasmixer filters (`dist/*.wasm`, built by
//! `make wasm`), with Prometheus and a Zipkin receiver; then applies the seed's YAML files one
//! after another (`integration/testdata/mesh-seed/`, copies of `shared/seed-scenarios/`),
//! each converted by `wasmixer convert`'s code on its way to the sidecars, and prints what
//! happened. Exit status 0 when every outcome is the seed's, 1 otherwise.
//!
//! Usage: `demo [--keep] [--mixer] [--istio]`. `--mixer` runs `mixer.wasm` alone on every sidecar
//! instead of the four filters. `--istio` runs every sidecar under the Istio sidecar profile
//! (Istio 1.22+'s metadata exchange ahead of our filters, stripping Istio's exchange headers:
//! `wasmixer_integration::istio_profile`). `--keep` leaves the mesh running at the end and prints its URLs
//! until Enter is pressed (or the process is interrupted).

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use wasmixer_integration::apps::RATINGS_UNAVAILABLE;
use wasmixer_integration::dist::read_workspace_file;
use wasmixer_integration::mesh::{Mesh, MeshSpec, FILTER_ORDER, MIXER};
use wasmixer_integration::mesh_obs::{render_trace, settled};
use wasmixer_integration::{HarnessError, Request};

/// One part of the story.
type Step = fn(&mut Demo, &mut Mesh) -> Result<(), HarnessError>;

const SEED_DENY_BODY: &str = "PERMISSION_DENIED:denyreviewsv3handler.default:Not allowed";

struct Demo {
    started: Instant,
    failures: Vec<String>,
}

fn progress(line: &str) {
    println!("    {line}");
    let _ = std::io::stdout().flush();
}

impl Demo {
    fn section(&self, title: &str) {
        println!("\n==> {title}  [t+{}s]", self.started.elapsed().as_secs());
        let _ = std::io::stdout().flush();
    }

    fn expect(&mut self, ok: bool, what: &str) {
        if ok {
            println!("    ok: {what}");
        } else {
            println!("    UNEXPECTED: {what}");
            self.failures.push(what.to_string());
        }
        let _ = std::io::stdout().flush();
    }
}

fn seed(file: &str) -> Result<String, HarnessError> {
    read_workspace_file(&format!("integration/testdata/mesh-seed/{file}"))
}

fn apply(mesh: &mut Mesh, file: &str) -> Result<(), HarnessError> {
    println!("    $ kubectl apply -f {file}");
    for line in mesh.apply_yaml_named(file, &seed(file)?)? {
        println!("    {line}");
    }
    Ok(())
}

/// The Istio docs' loop: `sleep.<from> to httpbin.<to>: <code>`; returns the four codes.
fn matrix(mesh: &Mesh) -> Vec<((String, String), u16)> {
    let mut out = Vec::new();
    for from in ["foo", "bar"] {
        for to in ["foo", "bar"] {
            let code =
                mesh.call(&format!("sleep.{from}"), &format!("http://httpbin.{to}:8000/ip")).map_or(0, |r| r.status);
            println!("    sleep.{from} to httpbin.{to}: {code}");
            out.push(((from.to_string(), to.to_string()), code));
        }
    }
    out
}

fn show_matrix(demo: &mut Demo, mesh: &Mesh, what: &str, expect: impl Fn(&str, &str) -> u16) {
    let got = matrix(mesh);
    let ok = got.iter().all(|((f, t), c)| *c == expect(f, t));
    demo.expect(ok, what);
}

fn legacy(demo: &mut Demo, mesh: &Mesh, to: &str, expect_ok: bool) {
    let r = mesh.direct(to, "/ip");
    let shown = match &r {
        Ok(resp) => format!("HTTP {}", resp.status),
        Err(_) => "connection reset (no mTLS)".to_string(),
    };
    println!("    plain-text client outside the mesh -> {to}: {shown}");
    let ok = r.is_ok_and(|x| x.status == 200) == expect_ok;
    demo.expect(ok, &format!("{to} {} plain text", if expect_ok { "accepts" } else { "refuses" }));
}

fn mtls(demo: &mut Demo, mesh: &mut Mesh) -> Result<(), HarnessError> {
    demo.section("mTLS, mesh-wide (mtls-mesh-wide.yaml)");
    println!("    no authentication policy yet: servers PERMISSIVE, clients send plain text");
    show_matrix(demo, mesh, "all four calls answer 200", |_, _| 200);
    println!("    servers demand mTLS (MeshPolicy), clients not configured to offer it:");
    apply(mesh, "mtls-meshpolicy-strict.yaml")?;
    show_matrix(demo, mesh, "all four calls answer 503", |_, _| 503);
    println!("    clients originate Istio mTLS to *.local (the seed's DestinationRule):");
    apply(mesh, "mtls-mesh-wide.yaml")?;
    show_matrix(demo, mesh, "all four calls answer 200 over mTLS", |_, _| 200);
    legacy(demo, mesh, "httpbin.foo", false);

    demo.section("mTLS for namespace foo only (mtls-namespace-foo.yaml)");
    mesh.reset_tls()?;
    apply(mesh, "mtls-namespace-foo.yaml")?;
    show_matrix(demo, mesh, "clients configured by the DestinationRule reach httpbin.foo (200)", |_, _| 200);
    legacy(demo, mesh, "httpbin.foo", false);
    legacy(demo, mesh, "httpbin.bar", true);

    demo.section("mTLS for service httpbin.bar only (mtls-service-httpbin-bar.yaml)");
    mesh.reset_tls()?;
    apply(mesh, "mtls-service-httpbin-bar.yaml")?;
    show_matrix(demo, mesh, "every call answers 200", |_, _| 200);
    legacy(demo, mesh, "httpbin.bar", false);
    legacy(demo, mesh, "httpbin.foo", true);
    mesh.reset_tls()?;
    Ok(())
}

/// `(served by, page)` for up to `n` product pages, stopping once each version was seen.
fn product_pages(mesh: &Mesh, n: usize) -> Vec<(String, String)> {
    let mut pages: Vec<(String, String)> = Vec::new();
    for _ in 0..n {
        let Ok(r) = mesh.ingress("/productpage") else {
            continue;
        };
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
    pages
}

fn deny(demo: &mut Demo, mesh: &mut Mesh) -> Result<(), HarnessError> {
    demo.section("Denial: reviews v3 may not call ratings (deny-reviews-v3.yaml)");
    apply(mesh, "deny-reviews-v3.yaml")?;
    let r = mesh.call("reviews-v3", "http://ratings:9080/ratings/0")?;
    println!("    reviews-v3 -> ratings: HTTP {}, body {:?}", r.status, r.body_text());
    demo.expect(r.status == 403 && r.body_text() == SEED_DENY_BODY, &format!("HTTP 403 with body {SEED_DENY_BODY:?}"));
    for v in ["reviews-v1", "reviews-v2"] {
        let r = mesh.call(v, "http://ratings:9080/ratings/0")?;
        println!("    {v} -> ratings: HTTP {}, body {}", r.status, r.body_text());
        demo.expect(r.status == 200, &format!("{v} -> ratings still 200"));
    }
    println!("    $ curl http://<ingress>/productpage   (reviews v1/v2/v3 by round robin)");
    let pages = product_pages(mesh, 9);
    let mut v3_unavailable = false;
    for (served, page) in &pages {
        let ratings = if page.contains(RATINGS_UNAVAILABLE) {
            RATINGS_UNAVAILABLE.to_string()
        } else if page.contains('\u{2605}') {
            let color = if page.contains("color=\"red\"") { "red" } else { "black" };
            format!("{color} stars")
        } else {
            "no ratings (v1 does not call ratings)".to_string()
        };
        println!("    productpage, reviews served by {served}: {ratings}");
        if served.starts_with("reviews-v3") {
            v3_unavailable = page.contains(RATINGS_UNAVAILABLE);
        }
    }
    demo.expect(v3_unavailable, &format!("the product page shows {RATINGS_UNAVAILABLE:?} for reviews v3"));
    Ok(())
}

fn metrics(demo: &mut Demo, mesh: &mut Mesh) -> Result<(), HarnessError> {
    demo.section("A custom metric: istio_double_request_count (double-request-count.yaml)");
    apply(mesh, "double-request-count.yaml")?;
    for _ in 0..3 {
        let _ = mesh.ingress("/productpage");
    }
    let prom = mesh.prometheus()?;
    let series = |q: &str| prom.query(q).unwrap_or_default();
    let wait_nonempty = prom.wait_for("istio_double_request_count", Duration::from_secs(20), |s| s.len() >= 4);
    if wait_nonempty.is_err() {
        demo.expect(false, "Prometheus has istio_double_request_count (metrics filter)");
        return Ok(());
    }
    std::thread::sleep(Duration::from_secs(2));
    println!("    Prometheus {} query: istio_double_request_count", prom.url());
    let mut all = series("istio_double_request_count");
    all.sort_by(|a, b| {
        (a.label("reporter"), a.label("source"), a.label("destination")).cmp(&(
            b.label("reporter"),
            b.label("source"),
            b.label("destination"),
        ))
    });
    for s in &all {
        println!(
            "    istio_double_request_count{{reporter=\"{}\",source=\"{}\",destination=\"{}\",message=\"{}\",workload=\"{}\"}} {}",
            s.label("reporter"),
            s.label("source"),
            s.label("destination"),
            s.label("message"),
            s.label("workload"),
            s.value
        );
    }
    // Between bookinfo's workloads (mTLS, so the peers' identities are verified).
    let q = r#"istio_double_request_count{source="reviews-v2",destination="ratings-v1"}"#;
    let by_reporter = |samples: &[wasmixer_integration::mesh_obs::Sample], rep: &str| {
        samples.iter().filter(|s| s.label("reporter") == rep).map(|s| s.value).sum::<f64>()
    };
    // Counters reach Envoy on the filter's 1 s tick and Prometheus on its 1 s scrape: the
    // baseline is taken once two reads a little over both apart agree.
    let sums = |samples: &[wasmixer_integration::mesh_obs::Sample]| {
        (by_reporter(samples, "client"), by_reporter(samples, "server"))
    };
    let (c0, s0) = settled(Duration::from_millis(2_200), || Ok::<_, HarnessError>(sums(&series(q))))?;
    let r = mesh.call("reviews-v2", "http://ratings:9080/ratings/0")?;
    println!("    one more request, reviews-v2 -> ratings: HTTP {}", r.status);
    let after = prom.wait_for(q, Duration::from_secs(15), |s| {
        by_reporter(s, "client") >= c0 + 2.0 && by_reporter(s, "server") >= s0 + 2.0
    });
    match after {
        Ok(after) => {
            let (c1, s1) = (by_reporter(&after, "client"), by_reporter(&after, "server"));
            println!("    {q}: reporter=\"client\" (reviews-v2's sidecar) {c0} -> {c1}, reporter=\"server\" (ratings' sidecar) {s0} -> {s1}");
            demo.expect(c1 - c0 == 2.0 && s1 - s0 == 2.0, "the counter rises by 2 per request on each reporting side");
        }
        Err(e) => demo.expect(false, &format!("the counter rises by 2 per request on each side ({e})")),
    }
    Ok(())
}

fn access_log(demo: &mut Demo, mesh: &mut Mesh) -> Result<(), HarnessError> {
    demo.section("An access log line per request (newlog-stdio.yaml)");
    apply(mesh, "newlog-stdio.yaml")?;
    let before: Vec<usize> =
        ["ratings-v1", "reviews-v2"].iter().map(|w| mesh.node(w).map_or(0, |n| n.access_log().len())).collect();
    let r = mesh.call("reviews-v2", "http://ratings:9080/ratings/0")?;
    println!("    reviews-v2 -> ratings: HTTP {}", r.status);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut shown = 0;
    for (w, b) in ["ratings-v1", "reviews-v2"].iter().zip(before) {
        let node = mesh.node(w)?;
        let lines = loop {
            let lines = node.access_log();
            if lines.len() > b || Instant::now() > deadline {
                break lines;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        for l in lines.iter().skip(b) {
            let reporter = if *w == "ratings-v1" { "server" } else { "client" };
            println!("    {w} sidecar ({reporter} reporter): {l}");
            shown += 1;
            let shaped = l.starts_with(r#"{"level":"warn","time":""#)
                && l.contains(r#""instance":"newlog.instance.istio-system","destination":"ratings","latency":""#);
            demo.expect(shaped, "the line is shaped like the seed's (key order, instance, destination)");
        }
    }
    demo.expect(shown == 2, "one line per request and reporting sidecar");
    Ok(())
}

fn tracing(demo: &mut Demo, mesh: &mut Mesh) -> Result<(), HarnessError> {
    demo.section("Distributed tracing (Envoy's Zipkin tracer, Istio's default 1% sampling)");
    let zipkin = mesh.zipkin()?;
    let before = zipkin.trace_ids().len();
    for _ in 0..100 {
        let _ = mesh.ingress("/productpage");
    }
    std::thread::sleep(Duration::from_secs(2));
    let sampled = zipkin.trace_ids().len() - before;
    println!("    100 requests to the product page gave {sampled} trace(s)");
    println!("    one more request, with `x-b3-sampled: 1` to force sampling:");
    let seen = zipkin.trace_ids();
    let r = mesh.ingress_with(Request::get("/productpage").header("x-b3-sampled", "1"))?;
    println!("    HTTP {}", r.status);
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = loop {
        if let Some(id) = zipkin.trace_ids().into_iter().find(|i| !seen.contains(i)) {
            break Some(id);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let Some(id) = id else {
        demo.expect(false, "a forced trace reaches the receiver");
        return Ok(());
    };
    let spans = zipkin.wait_for_trace(&id, 6, Duration::from_secs(10)).unwrap_or_else(|_| zipkin.trace(&id));
    println!("    trace {id}: {} spans", spans.len());
    for line in render_trace(&spans).lines() {
        println!("      {line}");
    }
    demo.expect(spans.len() >= 6 && spans.iter().all(|s| s.trace_id == id), "spans from every hop share one trace id");
    Ok(())
}

fn keep_running(mesh: &Mesh) {
    println!("\n==> the mesh stays up (--keep)");
    if let Ok(addr) = mesh.ingress_addr() {
        println!("    bookinfo:    http://{addr}/productpage");
    }
    if let Ok(p) = mesh.prometheus() {
        println!("    Prometheus:  {}/graph?g0.expr=istio_double_request_count", p.url());
    }
    println!(
        "    from a workload, e.g. sleep.foo: curl -H 'Host: httpbin.bar:8000' http://{}/headers",
        mesh.node("sleep.foo").map(|n| n.outbound_addr().to_string()).unwrap_or_default()
    );
    println!("    sidecar admin interfaces (/stats/prometheus, /config_dump, /clusters):");
    for n in mesh.nodes() {
        println!("      {:<36} http://{}", n.spec.key(), n.admin_addr().map(|a| a.to_string()).unwrap_or_default());
    }
    println!("    work directory (bootstraps, xDS files, logs, access logs): {}", mesh.dir().display());
    println!("    press Enter to stop");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => loop {
            // No terminal: run until interrupted (the sidecars die with this process).
            std::thread::sleep(Duration::from_secs(3600));
        },
        Ok(_) => {}
    }
}

/// The demo's switches.
#[derive(Clone, Copy, Default)]
struct Options {
    keep: bool,
    mixer: bool,
    istio: bool,
}

const USAGE: &str = "usage: demo [--keep] [--mixer] [--istio]";

fn run(Options { keep, mixer, istio }: Options) -> Result<Vec<String>, HarnessError> {
    let mut demo = Demo { started: Instant::now(), failures: Vec::new() };
    println!("wasmixer demo: Istio 1.4 Mixer's seed scenarios on stock Envoy sidecars with wasmixer filters");
    demo.section("starting the mesh: bookinfo (namespace default, behind an ingress gateway), sleep and httpbin (namespaces foo, bar)");
    let filters: &[&str] = if mixer { &[MIXER] } else { &FILTER_ORDER };
    let mut spec = MeshSpec::seed("demo").filters(filters).tracing(1.0).prometheus();
    if istio {
        println!("Istio sidecar profile: every sidecar strips x-envoy-peer-metadata(-id) ahead of the wasmixer filters, as Istio 1.22+'s own metadata exchange does");
        spec = spec.istio_profile();
    }
    spec.progress = Some(progress);
    let mut mesh = Mesh::start(spec)?;
    print!("{}", mesh.describe());
    let steps: [Step; 5] = [mtls, deny, metrics, access_log, tracing];
    for step in steps {
        if let Err(e) = step(&mut demo, &mut mesh) {
            mesh.keep_dir();
            println!("\n{e}\n{}", mesh.logs_report(30));
            demo.failures.push(e.to_string());
            break;
        }
    }
    if !demo.failures.is_empty() {
        mesh.keep_dir();
        println!("\nlogs and configuration kept in {}", mesh.dir().display());
    }
    if keep {
        keep_running(&mesh);
    }
    println!("\n==> stopping the mesh  [t+{}s]", demo.started.elapsed().as_secs());
    drop(mesh);
    Ok(demo.failures)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = Options::default();
    for arg in &args {
        match arg.as_str() {
            "--keep" => options.keep = true,
            "--mixer" => options.mixer = true,
            "--istio" => options.istio = true,
            bad => {
                eprintln!("demo: unknown argument {bad:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match run(options) {
        Ok(failures) if failures.is_empty() => {
            println!("every seed outcome reproduced");
            ExitCode::SUCCESS
        }
        Ok(failures) => {
            println!("{} outcome(s) differ from the seed:", failures.len());
            for f in failures {
                println!("  - {f}");
            }
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(1)
        }
    }
}
