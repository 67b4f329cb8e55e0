//! Hostile and odd traffic through every filter at once (peer-metadata, deny, Istio's standard
//! metrics, the seed access log) in one real Envoy: forged and garbage peer metadata, oversized
//! and deeply odd headers, bytes that are not UTF-8, long paths and query strings, gRPC content
//! types, unusual methods. No request may kill a filter's VM (in Envoy a panic is a trap, and a
//! dead VM fails every request after it): every request gets an answer from the filters, and
//! afterwards each filter still does its work.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use wasmixer_engine::attr::base64;
use wasmixer_engine::attr::workload::WorkloadMetadata;
use wasmixer_engine::expr::StringMap;
use wasmixer_integration::bootstrap::single_hop;
use wasmixer_integration::dist::read_workspace_file;
use wasmixer_integration::{ensure, Backend, BackendResponse, EnvoyProcess, HarnessError, Request};

const DENY: &str = r#"{"resources": [
  {"kind": "handler", "metadata": {"name": "h", "namespace": "istio-system"}, "spec": {"compiledAdapter": "denier", "params": {"status": {"code": 7, "message": "go away"}}}},
  {"kind": "instance", "metadata": {"name": "i", "namespace": "istio-system"}, "spec": {"compiledTemplate": "checknothing"}},
  {"kind": "rule", "metadata": {"name": "block-evil", "namespace": "istio-system"}, "spec": {
    "match": "(request.headers[\"x-evil\"] | \"\") == \"1\" || source.labels[\"app\"] == \"attacker\"",
    "actions": [{"handler": "h", "instances": ["i"]}],
    "requestHeaderOperations": [{"name": "x-seen-user", "values": ["request.headers[\"x-user\"] | \"\"", "request.path"]}]}},
  {"kind": "handler", "metadata": {"name": "ips", "namespace": "istio-system"}, "spec": {"compiledAdapter": "listchecker",
    "params": {"overrides": ["10.0.0.0/8"], "entryType": "IP_ADDRESSES", "blacklist": true}}},
  {"kind": "instance", "metadata": {"name": "fwd", "namespace": "istio-system"}, "spec": {"compiledTemplate": "listentry",
    "params": {"value": "request.headers[\"x-forwarded-for\"] | \"127.0.0.1\""}}},
  {"kind": "rule", "metadata": {"name": "no-tens", "namespace": "istio-system"}, "spec": {
    "match": "(request.headers[\"x-forwarded-for\"] | \"\").startsWith(\"10.\")",
    "actions": [{"handler": "ips", "instances": ["fwd"]}]}}
]}"#;

/// Random bytes from a fixed seed (xorshift), so a failure reproduces.
struct Noise(u64);

impl Noise {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 >> 24) as u8
            })
            .collect()
    }
}

/// A well-formed claim no certificate backs: `app=attacker` in namespace `default`.
fn attacker() -> WorkloadMetadata {
    WorkloadMetadata {
        name: "attacker-0".into(),
        namespace: "default".into(),
        service_account: "bookinfo-reviews".into(),
        labels: StringMap::from_pairs([("app", "attacker")]),
        ..WorkloadMetadata::default()
    }
}

/// `x-envoy-peer-metadata` values a hostile client might send.
fn forged_peer_headers() -> Vec<String> {
    let mut noise = Noise(0x1234_5678_9abc_def1);
    let mut out = vec![String::new(), "!!!not base64!!!".into(), "=".repeat(64), "A".repeat(15_000)];
    for n in [1, 7, 64, 700, 4_000] {
        out.push(base64::encode(&noise.bytes(n)));
    }
    out.push(attacker().encode_header());
    let crowded = WorkloadMetadata {
        labels: StringMap::from_pairs((0..1_000).map(|i| (format!("l{i}"), "v".repeat(8)))),
        ..attacker()
    };
    out.push(crowded.encode_header());
    out
}

/// Sends `raw` as one HTTP/1.1 request; the status code of the answer (0: none).
fn send_raw(addr: SocketAddr, raw: &[u8]) -> u16 {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else { return 0 };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(raw).is_err() {
        return 0;
    }
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).unwrap_or(0);
    String::from_utf8_lossy(&head[..n]).split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn raw_get(path: &[u8], headers: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = b"GET ".to_vec();
    out.extend_from_slice(path);
    out.extend_from_slice(b" HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n");
    for (k, v) in headers {
        out.extend_from_slice(k);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn wait_for(envoy: &EnvoyProcess, what: &str, mut ok: impl FnMut(&str) -> bool) -> Result<(), HarnessError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if envoy.stats_prometheus().is_ok_and(|s| ok(&s)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(HarnessError::check(format!("{what} never showed in /stats/prometheus")))
}

#[test]
fn hostile_traffic_never_kills_a_filter() -> Result<(), HarnessError> {
    // `/slow` answers late, so a client can give up first (a stream reset before any response).
    let backend = Backend::start(|r| {
        if r.path.starts_with("/slow") {
            std::thread::sleep(Duration::from_millis(400));
        }
        BackendResponse::ok("ok")
    })?;
    let metrics = read_workspace_file("envoy-config/metrics/istio-standard-metrics.json")?;
    let access_log = read_workspace_file("integration/testdata/access-log-newlog-stdio.json")?;
    let envoy = single_hop(
        "hostile-traffic",
        &[("peer-metadata", "{}"), ("deny", DENY), ("metrics", &metrics), ("access-log", &access_log)],
        &backend,
    )?;
    let addr = envoy.listener_addr("ingress")?;
    let mut sent = 0usize;
    let mut answered = |status: u16, what: &str| -> Result<(), HarnessError> {
        sent += 1;
        // 400/413/431: Envoy's codec refusing the request itself is fine; 5xx from a dead VM is not.
        ensure!(matches!(status, 200 | 400 | 403 | 404 | 413 | 431), "{what}: status {status}\n{}", envoy.log());
        Ok(())
    };

    for forged in forged_peer_headers() {
        let status = Request::get("/ratings/0")
            .header("x-envoy-peer-metadata", &forged)
            .header("x-envoy-peer-metadata-id", "sidecar~10.0.0.1~attacker-0.default~default.svc.cluster.local")
            .send(addr)?
            .status;
        answered(status, &format!("forged peer metadata of {} bytes", forged.len()))?;
    }
    // The header twice: a plausible claim and garbage; both must go.
    let twice = Request::get("/twice")
        .header("x-envoy-peer-metadata", &attacker().encode_header())
        .header("x-envoy-peer-metadata", "garbage")
        .send(addr)?;
    answered(twice.status, "the peer metadata header twice")?;
    let long_query: String = (0..1_000).map(|i| format!("k{i}=v{i}&")).collect();
    for path in ["/%00", "/?a=%ff&b", "/a/../../etc/passwd", "/x?".to_string().as_str(), &format!("/q?{long_query}")] {
        answered(Request::get(path).send(addr)?.status, path)?;
    }
    answered(Request::get(&format!("/{}", "a".repeat(8_000))).send(addr)?.status, "an 8 KB path")?;
    let mut many = Request::get("/many");
    for i in 0..90 {
        many = many.header(&format!("x-h{i}"), &"é".repeat(i));
    }
    answered(many.send(addr)?.status, "90 headers")?;
    for (method, body) in [("HEAD", ""), ("OPTIONS", ""), ("DELETE", "x"), ("PATCH", "{\"a\":1}")] {
        answered(Request::new(method, "/m").body(body).send(addr)?.status, method)?;
    }
    for ct in ["application/grpc", "application/grpc+proto", "application/grpcweird"] {
        let r = Request::post("/pkg.Svc/M", vec![0u8, 0, 0, 0, 5, 1, 2]).header("content-type", ct).send(addr)?;
        answered(r.status, ct)?;
    }
    for xff in ["10.1.2.3", "10.", "not an ip", "10.0.0.1, 1.2.3.4", "::ffff:10.0.0.1"] {
        answered(Request::get("/xff").header("x-forwarded-for", xff).send(addr)?.status, xff)?;
    }
    // Bytes that are not UTF-8, in a header value the deny rule and a header operation read,
    // and in the path.
    let raw = [
        raw_get(b"/bytes", &[(b"x-user", b"\xff\xfe\xc3(ok"), (b"x-evil", b"\x80")]),
        raw_get(b"/\xc3\x28?\xff=\xfe", &[]),
        raw_get(b"/obs", &[(b"user-agent", b"\xe2\x82\xac\xf0\x9f\x98\x80"), (b"x-envoy-peer-metadata", b"\xff\xff")]),
    ];
    for (i, bytes) in raw.iter().enumerate() {
        answered(send_raw(addr, bytes), &format!("raw request {i}"))?;
    }

    // Many HTTP/2 streams on one connection at once, each carrying a garbage claim and an
    // empty id.
    let url = format!("http://127.0.0.1:{}/h2", addr.port());
    let mut curl = std::process::Command::new("curl");
    curl.args(["-sS", "--http2-prior-knowledge", "--parallel", "--parallel-immediate", "--parallel-max", "50"]);
    curl.args(["-w", "%{http_code}\\n", "-H", "x-envoy-peer-metadata: !!", "-H", "x-envoy-peer-metadata-id;"]);
    for _ in 0..50 {
        curl.args(["-o", "/dev/null", &url]);
    }
    let out = curl.output().map_err(|e| HarnessError::io("running curl (bash .ci/install installs it)", e))?;
    let codes = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(codes.lines().count() == 50, "50 HTTP/2 answers expected: {codes:?}");
    for code in codes.lines() {
        answered(code.trim().parse().unwrap_or(0), &format!("an HTTP/2 stream (all: {codes:?})"))?;
    }

    // Clients that give up before the response: the stream ends with no response code, and the
    // telemetry filters report it all the same.
    for _ in 0..5 {
        if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            let _ = stream.write_all(&raw_get(b"/slow", &[(b"x-user", b"quitter")]));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::thread::sleep(Duration::from_millis(500));

    // Every filter is still alive and doing its work.
    let denied = Request::get("/after").header("x-evil", "1").send(addr)?;
    ensure!(
        denied.status == 403 && denied.body_text() == "PERMISSION_DENIED:h.istio-system:go away",
        "deny after the barrage: {} {:?}",
        denied.status,
        denied.body_text()
    );
    let forged = Request::get("/after").header("x-envoy-peer-metadata", &attacker().encode_header()).send(addr)?;
    ensure!(forged.status == 200, "an unverified claim must not decide policy: {}", forged.status);
    let leaked: Vec<String> = backend
        .requests()
        .iter()
        .filter(|r| r.header("x-envoy-peer-metadata").is_some())
        .map(|r| format!("{} {}: {:?}", r.method, r.path, r.header("x-envoy-peer-metadata")))
        .collect();
    ensure!(leaked.is_empty(), "peer metadata reached the application: {leaked:?}");
    // This bootstrap has no stats_tags: the labels stay in the stat names, which is all the
    // better for finding them by substring.
    wait_for(&envoy, "istio_requests_total", |s| s.contains("istio_requests_total"))?;
    wait_for(&envoy, "the access log's line count", |s| {
        s.lines().any(|l| l.contains("wasmixer_access_log_lines_total") && !l.ends_with(" 0"))
    })?;
    wait_for(&envoy, "malformed peer claims", |s| {
        s.lines().any(|l| l.contains("wasmixer_peer_metadata_total") && l.contains("malformed"))
    })?;
    let log = envoy.log();
    for sign in ["panic", "Uncaught", "Wasm VM failed", "vm failed"] {
        ensure!(!log.contains(sign), "{sign:?} in Envoy's log after {sent} hostile requests:\n{log}");
    }
    Ok(())
}
