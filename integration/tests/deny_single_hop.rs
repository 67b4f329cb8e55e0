//! The deny filter's behaviours that need no mesh: gRPC denials, header operations, fetched
//! lists, and a bad configuration pushed at run time (rejected with a readable message while the
//! previous configuration keeps serving).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmixer_engine::attr::base64;
use wasmixer_integration::bootstrap::{http_filters, json_string, render, wasm_filter};
use wasmixer_integration::dist::read_workspace_file;
use wasmixer_integration::{
    ensure, wasm_path, Backend, BackendResponse, EnvoyProcess, HarnessError, Request, Response,
};

struct SingleHop {
    envoy: EnvoyProcess,
    backend: Backend,
    lds_path: PathBuf,
    _lists: Backend,
    port: u16,
}

fn listener(port: u16, deny_config: &str) -> Result<String, HarnessError> {
    listener_with(port, &[], deny_config)
}

/// The listener with `before` (one-line JSON HTTP filters) ahead of the deny filter.
fn listener_with(port: u16, before: &[String], deny_config: &str) -> Result<String, HarnessError> {
    Ok(format!(r#"{{"resources":[{}]}}"#, listener_resource("ingress", port, before, deny_config)?))
}

/// One listener resource named `name` (one-line JSON).
fn listener_resource(name: &str, port: u16, before: &[String], deny_config: &str) -> Result<String, HarnessError> {
    listener_resource_of("deny", name, port, before, deny_config)
}

/// [`listener_resource`] with the deny filter's build `build` (`deny`, `deny-request-only`).
fn listener_resource_of(
    build: &str,
    name: &str,
    port: u16,
    before: &[String],
    deny_config: &str,
) -> Result<String, HarnessError> {
    let mut entries = before.to_vec();
    entries.push(wasm_filter("deny", &wasm_path(build)?, deny_config));
    let filters = http_filters(&entries);
    Ok(format!(
        r#"{{"@type":"type.googleapis.com/envoy.config.listener.v3.Listener","name":"{name}","address":{{"socket_address":{{"address":"127.0.0.1","port_value":{port}}}}},"filter_chains":[{{"filters":[{{"name":"envoy.filters.network.http_connection_manager","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager","stat_prefix":"{name}","route_config":{{"name":"local","virtual_hosts":[{{"name":"all","domains":["*"],"routes":[{{"match":{{"prefix":"/"}},"route":{{"cluster":"backend"}}}}]}}]}},"http_filters":{filters}}}}}]}}]}}"#
    ))
}

/// Writes the listener file atomically (Envoy watches it for moves).
fn write_lds(path: &Path, content: &str) -> Result<(), HarnessError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).map_err(|e| HarnessError::io("writing the listener file", e))?;
    std::fs::rename(&tmp, path).map_err(|e| HarnessError::io("moving the listener file in place", e))
}

fn start(name: &str, deny_config: &str, list_body: &'static str) -> Result<SingleHop, HarnessError> {
    start_with(name, &[], deny_config, list_body)
}

fn start_with(
    name: &str,
    before: &[String],
    deny_config: &str,
    list_body: &'static str,
) -> Result<SingleHop, HarnessError> {
    let backend = Backend::start(|_r| BackendResponse::ok("hello").header("x-from-app", "1"))?;
    let lists = Backend::start(move |_r| BackendResponse::ok(list_body))?;
    let port = wasmixer_integration::free_port()?;
    let dir = std::env::temp_dir().join(format!("wasmixer-it-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io("creating the test directory", e))?;
    let lds_path = dir.join("lds.json");
    write_lds(&lds_path, &listener_with(port, before, deny_config)?)?;
    let yaml = render(
        &read_workspace_file("integration/testdata/deny-lds-bootstrap.yaml")?,
        &[
            ("lds_path", json_string(&lds_path.to_string_lossy())),
            ("backend_port", backend.port().to_string()),
            ("lists_port", lists.port().to_string()),
        ],
    )?;
    let envoy = EnvoyProcess::start(&yaml, name)?;
    wait_until(Duration::from_secs(10), || Request::get("/").send(([127, 0, 0, 1], port).into()).is_ok())?;
    Ok(SingleHop { envoy, backend, lds_path, _lists: lists, port })
}

fn wait_until(timeout: Duration, mut ok: impl FnMut() -> bool) -> Result<(), HarnessError> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(HarnessError::check("condition not reached in time"))
}

impl SingleHop {
    fn get(&self, user: &str) -> Result<Response, HarnessError> {
        Request::get("/x").header("x-user", user).send(([127, 0, 0, 1], self.port).into())
    }
}

const USER_RULE: &str = r#"{"resources": [
  {"kind": "handler", "metadata": {"name": "h", "namespace": "istio-system"}, "spec": {"compiledAdapter": "denier", "params": {"status": {"code": 7, "message": "go away"}}}},
  {"kind": "instance", "metadata": {"name": "i", "namespace": "istio-system"}, "spec": {"compiledTemplate": "checknothing"}},
  {"kind": "rule", "metadata": {"name": "block-evil", "namespace": "istio-system"}, "spec": {
    "match": "(request.headers[\"x-user\"] | \"\") == \"evil\"",
    "actions": [{"handler": "h", "instances": ["i"]}]}},
  {"kind": "rule", "metadata": {"name": "tag", "namespace": "istio-system"}, "spec": {
    "match": "true",
    "requestHeaderOperations": [{"name": "x-checked-user", "values": ["request.headers[\"x-user\"] | \"anonymous\""]}],
    "responseHeaderOperations": [{"name": "x-policy", "values": ["\"wasmixer\""]}, {"name": "x-from-app", "operation": "REMOVE"}]}}
]}"#;

#[test]
fn denials_grpc_status_and_header_operations() -> Result<(), HarnessError> {
    let hop = start("deny-single", USER_RULE, "")?;
    let denied = hop.get("evil")?;
    ensure!(
        denied.status == 403 && denied.body_text() == "PERMISSION_DENIED:h.istio-system:go away",
        "{} {:?}",
        denied.status,
        denied.body_text()
    );
    ensure!(denied.header("content-type") == Some("text/plain"), "content-type {:?}", denied.headers);

    let ok = hop.get("alice")?;
    ensure!(ok.status == 200, "status {}", ok.status);
    ensure!(ok.header("x-policy") == Some("wasmixer"), "response header operation not applied: {:?}", ok.headers);
    ensure!(ok.header("x-from-app").is_none(), "REMOVE not applied: {:?}", ok.headers);
    let seen = hop.backend.requests();
    let ours = seen
        .iter()
        .find(|r| r.path == "/x")
        .ok_or_else(|| HarnessError::check("the allowed request did not arrive"))?;
    ensure!(ours.header("x-checked-user") == Some("alice"), "request header operation not applied: {:?}", ours);

    let grpc = Request::post("/pkg.Service/Method", Vec::new())
        .header("content-type", "application/grpc")
        .header("x-user", "evil")
        .send(([127, 0, 0, 1], hop.port).into())?;
    ensure!(grpc.status == 200, "a gRPC denial answers HTTP 200 with a gRPC status, got {}", grpc.status);
    ensure!(grpc.header("grpc-status") == Some("7"), "grpc-status {:?}", grpc.headers);
    // Mixer's reply text, as Envoy made it the grpc-message of Istio's Mixer filter's local reply.
    ensure!(
        grpc.header("grpc-message") == Some("PERMISSION_DENIED:h.istio-system:go away"),
        "grpc-message {:?}",
        grpc.headers
    );
    ensure!(grpc.header("content-type") == Some("application/grpc"), "content-type {:?}", grpc.headers);
    Ok(())
}

/// A header value Envoy cannot send (a control character other than tab) would make Envoy fail
/// the allowed request with a 503 `invalid header value`; it is left out, counted and logged,
/// and the rule's other values still apply.
#[test]
fn header_values_no_header_can_carry_are_left_out_and_counted() -> Result<(), HarnessError> {
    let config = r#"{"resources": [
      {"kind": "rule", "metadata": {"name": "tag", "namespace": "istio-system"}, "spec": {
        "requestHeaderOperations": [
          {"name": "x-injected", "values": ["\"a\\r\\nx-smuggled: 1\""]},
          {"name": "x-checked-user", "values": ["request.headers[\"x-user\"] | \"anonymous\""]}],
        "responseHeaderOperations": [{"name": "x-policy", "values": ["\"bad\\x00value\"", "\"wasmixer\""], "operation": "APPEND"}]}}
    ]}"#;
    let hop = start("deny-bad-header-value", config, "")?;
    let ok = hop.get("alice")?;
    ensure!(ok.status == 200, "the request must go through, got {} {:?}", ok.status, ok.body_text());
    ensure!(ok.header("x-policy") == Some("wasmixer"), "the valid response value applies: {:?}", ok.headers);
    let seen = hop.backend.requests();
    let ours = seen.iter().find(|r| r.path == "/x").ok_or_else(|| HarnessError::check("the request did not arrive"))?;
    ensure!(ours.header("x-checked-user") == Some("alice"), "the valid operation applies: {:?}", ours);
    ensure!(
        ours.header("x-injected").is_none() && ours.header("x-smuggled").is_none(),
        "the invalid value must not be sent: {:?}",
        ours
    );
    // Two values left out per request, the readiness probes' requests included.
    let want = format!(
        "wasmixer_policy_header_values_skipped_total{{rule=\"tag.rule.istio-system\"}} {}",
        2 * hop.backend.requests().len()
    );
    wait_until(Duration::from_secs(5), || hop.envoy.stats_prometheus().is_ok_and(|s| s.lines().any(|l| l == want)))
        .map_err(|_| HarnessError::check(format!("no `{want}` in /stats/prometheus")))?;
    let log = hop.envoy.log();
    ensure!(
        log.contains("rule tag.rule.istio-system: header x-injected: value left out: the value has a control character no HTTP header can carry"),
        "the skipped value is logged"
    );
    Ok(())
}

/// A gRPC call over HTTP/2 (curl with prior knowledge, as gRPC clients speak h2c): the denial
/// is a trailers-only gRPC response, `grpc-status: 7`.
#[test]
fn grpc_clients_over_http2_get_permission_denied() -> Result<(), HarnessError> {
    let hop = start("deny-grpc-h2", USER_RULE, "")?;
    let out = std::process::Command::new("curl")
        .args(["-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-D", "-", "-X", "POST"])
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers", "-H", "x-user: evil"])
        .args(["--data-binary", "", &format!("http://127.0.0.1:{}/pkg.Service/Method", hop.port)])
        .output()
        .map_err(|e| HarnessError::io("running curl (bash .ci/install installs it)", e))?;
    let headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
    ensure!(headers.starts_with("http/2 200"), "not an HTTP/2 200: {headers}");
    ensure!(headers.contains("grpc-status: 7"), "no grpc-status 7 in: {headers}");
    ensure!(headers.contains("grpc-message: permission_denied:h.istio-system:go away"), "grpc-message in: {headers}");
    Ok(())
}

#[test]
fn a_bad_configuration_is_rejected_and_the_previous_one_keeps_serving() -> Result<(), HarnessError> {
    let hop = start("deny-reconfig", USER_RULE, "")?;
    ensure!(hop.get("evil")?.status == 403, "initial configuration not in force");
    let bad = USER_RULE
        .replace(r#"(request.headers[\"x-user\"] | \"\") == \"evil\""#, r#"request.headerz[\"x-user\"] == \"evil\""#);
    expect_rejection(
        &hop,
        &listener(hop.port, &bad)?,
        "block-evil.rule.istio-system: field match: position 1: unknown attribute request.headerz",
    )
}

/// Pushes `lds` and expects its deny configuration rejected with a log line containing
/// `message`, the previous configuration (USER_RULE's check) still serving.
fn expect_rejection(hop: &SingleHop, lds: &str, message: &str) -> Result<(), HarnessError> {
    write_lds(&hop.lds_path, lds)?;
    let log = hop.envoy.wait_for_log("configuration rejected", Duration::from_secs(15))?;
    ensure!(
        log.contains(message),
        "the rejection does not say {message:?}:\n{}",
        log.lines().filter(|l| l.contains("rejected")).collect::<Vec<_>>().join("\n")
    );
    std::thread::sleep(Duration::from_millis(500));
    ensure!(hop.get("evil")?.status == 403, "the previous configuration stopped serving");
    ensure!(hop.get("alice")?.status == 200, "the previous configuration stopped serving");
    Ok(())
}

/// Two listeners whose deny filters share one VM (same `vm_id` and code) with different
/// configurations: each request is judged by its own listener's configuration.
#[test]
fn listeners_sharing_a_vm_keep_their_own_configurations() -> Result<(), HarnessError> {
    let hop = start("deny-two-roots", USER_RULE, "")?;
    let everyone =
        USER_RULE.replace(r#"(request.headers[\"x-user\"] | \"\") == \"evil\""#, "true").replace("go away", "closed");
    let second = wasmixer_integration::free_port()?;
    let both = format!(
        r#"{{"resources":[{},{}]}}"#,
        listener_resource("ingress", hop.port, &[], USER_RULE)?,
        listener_resource("closed", second, &[], &everyone)?
    );
    write_lds(&hop.lds_path, &both)?;
    let closed = |user: &str| Request::get("/x").header("x-user", user).send(([127, 0, 0, 1], second).into());
    wait_until(Duration::from_secs(10), || closed("alice").is_ok())?;
    // Alternate, so that each listener's streams follow one another's.
    for _ in 0..3 {
        let denied = closed("alice")?;
        ensure!(
            denied.status == 403 && denied.body_text() == "PERMISSION_DENIED:h.istio-system:closed",
            "second listener: {} {:?}",
            denied.status,
            denied.body_text()
        );
        ensure!(hop.get("alice")?.status == 200, "first listener judged alice by the second's configuration");
        let evil = hop.get("evil")?;
        ensure!(
            evil.body_text() == "PERMISSION_DENIED:h.istio-system:go away",
            "first listener: {:?}",
            evil.body_text()
        );
    }
    Ok(())
}

/// `config` with every rule's `responseHeaderOperations` removed.
fn without_response_header_operations(config: &str) -> Result<String, HarnessError> {
    let mut doc: serde_json::Value =
        serde_json::from_str(config).map_err(|e| HarnessError::check(format!("test configuration: {e}")))?;
    for resource in doc["resources"].as_array_mut().into_iter().flatten() {
        if let Some(spec) = resource["spec"].as_object_mut() {
            spec.remove("responseHeaderOperations");
        }
    }
    Ok(doc.to_string())
}

/// `deny-request-only.wasm` checks like `deny.wasm` and applies request header operations, but
/// has no response phase: a configuration with `responseHeaderOperations` is rejected, naming
/// the rule, and the last good one keeps serving.
#[test]
fn the_request_only_build_checks_and_rejects_response_header_operations() -> Result<(), HarnessError> {
    let hop = start("deny-request-only", USER_RULE, "")?;
    let request_only = without_response_header_operations(USER_RULE)?;
    let only = |config: &str| -> Result<String, HarnessError> {
        Ok(format!(
            r#"{{"resources":[{}]}}"#,
            listener_resource_of("deny-request-only", "ingress", hop.port, &[], config)?
        ))
    };
    write_lds(&hop.lds_path, &only(&request_only)?)?;
    // The new listener serves once responses lose the old configuration's `x-policy`.
    wait_until(Duration::from_secs(15), || hop.get("alice").is_ok_and(|r| r.header("x-policy").is_none()))?;
    let denied = hop.get("evil")?;
    ensure!(denied.body_text() == "PERMISSION_DENIED:h.istio-system:go away", "{:?}", denied.body_text());
    let allowed = hop.get("alice")?;
    ensure!(allowed.status == 200, "alice: {}", allowed.status);
    ensure!(allowed.header("x-from-app") == Some("1"), "a response header changed without a response phase");
    let seen = hop.backend.requests();
    let last = seen.iter().rev().find(|r| r.path == "/x").ok_or_else(|| HarnessError::check("no request arrived"))?;
    ensure!(last.header("x-checked-user") == Some("alice"), "request header operation not applied: {last:?}");

    expect_rejection(
        &hop,
        &only(USER_RULE)?,
        "tag.rule.istio-system: field responseHeaderOperations: this build has no response phase (deny-request-only.wasm); use deny.wasm",
    )
}

/// Users must be on the `allowed-users` list (a listchecker with `params`, a JSON object's
/// fields) to pass; the user is the `x-user` header.
fn list_rule(params: &str) -> String {
    format!(
        r#"{{"resources": [
      {{"kind": "handler", "metadata": {{"name": "allowed-users", "namespace": "istio-system"}}, "spec": {{"compiledAdapter": "listchecker", "params": {{{params}}}}}}},
      {{"kind": "instance", "metadata": {{"name": "user", "namespace": "istio-system"}}, "spec": {{"compiledTemplate": "listentry", "params": {{"value": "request.headers[\"x-user\"] | \"nobody\""}}}}}},
      {{"kind": "rule", "metadata": {{"name": "only-listed", "namespace": "istio-system"}}, "spec": {{"actions": [{{"handler": "allowed-users", "instances": ["user"]}}]}}}}
    ]}}"#
    )
}

#[test]
fn listchecker_fetches_its_list_from_a_provider() -> Result<(), HarnessError> {
    let config = &list_rule(
        r#""provider_url": "http://lists/users.txt", "refresh_interval": "1s", "ttl": "30s", "overrides": ["root"]"#,
    );
    let hop = start("deny-list", config, "alice\nbob\n")?;
    wait_until(Duration::from_secs(10), || hop.get("alice").is_ok_and(|r| r.status == 200))?;
    ensure!(hop.get("bob")?.status == 200, "bob is on the fetched list");
    ensure!(hop.get("root")?.status == 200, "root is an override");
    wait_for_list_fetches(&hop, "ok")?;
    let mallory = hop.get("mallory")?;
    ensure!(
        mallory.status == 403
            && mallory.body_text() == "PERMISSION_DENIED:allowed-users.istio-system:mallory is not whitelisted",
        "{} {:?}",
        mallory.status,
        mallory.body_text()
    );
    Ok(())
}

/// Waits for `wasmixer_policy_list_fetches_total{handler="allowed-users.istio-system", result}`
/// (Envoy orders the labels its own way).
fn wait_for_list_fetches(hop: &SingleHop, result: &str) -> Result<(), HarnessError> {
    let labels = ["handler=\"allowed-users.istio-system\"".to_string(), format!("result=\"{result}\"")];
    let seen = |text: &str| {
        text.lines().any(|l| {
            l.starts_with("wasmixer_policy_list_fetches_total{") && labels.iter().all(|x| l.contains(x.as_str()))
        })
    };
    wait_until(Duration::from_secs(10), || hop.envoy.stats_prometheus().is_ok_and(|s| seen(&s)))
        .map_err(|_| HarnessError::check(format!("no list fetch counted with result {result}")))
}

/// Without a good list the check fails closed, as Mixer's did for a list it could not fetch:
/// `500` with the fetch's `reason`.
fn ensure_fails_closed(hop: &SingleHop, reason: &str) -> Result<(), HarnessError> {
    let want =
        format!("INTERNAL:performing check operation failed: allowed-users.istio-system: list fetch failed: {reason}");
    // Every VM (the main thread's and the worker's) fetches on its own: the counter the caller
    // waited for may be the main thread's, with the worker's first fetch still under way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let alice = hop.get("alice")?;
        let body = alice.body_text();
        if body.ends_with("list not fetched yet") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        ensure!(alice.status == 500 && body == want, "{} {:?}", alice.status, body);
        return Ok(());
    }
}

/// A provider answering more than `max_list_bytes` does not get its list loaded into the
/// filter's memory: the fetch counts as `too_large`, and without a good list the check fails
/// closed as Mixer's did for a list it could not fetch.
#[test]
fn a_list_over_max_list_bytes_is_refused_and_counted() -> Result<(), HarnessError> {
    let config = &list_rule(
        r#""provider_url": "http://lists/users.txt", "refresh_interval": "1s", "ttl": "30s", "max_list_bytes": 8"#,
    );
    let hop = start("deny-list-too-large", config, "alice\nbob\n")?;
    wait_for_list_fetches(&hop, "too_large")?;
    ensure_fails_closed(&hop, "a list of 10 bytes, over max_list_bytes 8")?;
    ensure!(
        hop.envoy.log().contains("allowed-users.istio-system: fetching http://lists/users.txt failed: a list of 10 bytes, over max_list_bytes 8"),
        "the refused fetch is logged"
    );
    Ok(())
}

/// A provider behind a cluster Envoy does not have: nothing can be fetched, the attempt is
/// counted as `not_sent`, and the check fails closed with the reason.
#[test]
fn a_list_provider_without_a_cluster_is_counted_and_fails_closed() -> Result<(), HarnessError> {
    let config = &list_rule(
        r#""provider_url": "http://lists/users.txt", "provider_cluster": "no-such-cluster", "refresh_interval": "1s", "ttl": "30s""#,
    );
    let hop = start("deny-list-no-cluster", config, "alice\n")?;
    wait_for_list_fetches(&hop, "not_sent")?;
    ensure_fails_closed(&hop, "the call could not be sent (is the cluster defined?)")
}

/// A deny configuration the plugin rejects (an unknown field, an unknown template).
fn bad_user_rule() -> String {
    USER_RULE.replace("\"denier\"", "\"denier\", \"oops\": 1").replace("checknothing", "no-such-template")
}

/// Through LDS, a listener whose plugin rejects its first configuration is never created: Envoy
/// runs, logs the rejection, and the port refuses connections (nothing is served unchecked).
/// A later bad configuration for a listener that exists is rejected and the previous one keeps
/// serving (`a_bad_configuration_is_rejected_and_the_previous_one_keeps_serving`).
#[test]
fn through_lds_a_listener_whose_plugin_never_configured_is_not_created() -> Result<(), HarnessError> {
    let backend = Backend::ok()?;
    let port = wasmixer_integration::free_port()?;
    let dir = std::env::temp_dir().join(format!("wasmixer-it-deny-unconfigured-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io("creating the test directory", e))?;
    let lds_path = dir.join("lds.json");
    write_lds(&lds_path, &listener(port, &bad_user_rule())?)?;
    let yaml = render(
        &read_workspace_file("integration/testdata/deny-lds-bootstrap.yaml")?,
        &[
            ("lds_path", json_string(&lds_path.to_string_lossy())),
            ("backend_port", backend.port().to_string()),
            ("lists_port", backend.port().to_string()),
        ],
    )?;
    let envoy = EnvoyProcess::start(&yaml, "deny-unconfigured")?;
    envoy.wait_for_log("configuration rejected", Duration::from_secs(15))?;
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let answer = Request::get("/x").send(([127, 0, 0, 1], port).into());
        ensure!(answer.is_err(), "the listener exists and answered {:?}", answer.map(|r| r.status));
        std::thread::sleep(Duration::from_millis(100));
    }
    let listeners = Request::get("/listeners").send(envoy.admin_addr())?.body_text();
    ensure!(!listeners.contains("ingress"), "Envoy lists the listener: {listeners}");
    ensure!(backend.request_count() == 0, "the application received traffic without a policy check");
    Ok(())
}

/// `bad_user_rule`'s listener as a static bootstrap (no LDS), its plugin configured with
/// `policy` (JSON fields of the Wasm `PluginConfig`).
fn static_bootstrap(port: u16, backend_port: u16, policy: &str) -> Result<String, HarnessError> {
    let lds = read_workspace_file("integration/testdata/deny-lds-bootstrap.yaml")?;
    let (head, rest) =
        lds.split_once("dynamic_resources:").ok_or_else(|| HarnessError::check("no dynamic_resources"))?;
    let (_, tail) = rest.split_once("static_resources:\n").ok_or_else(|| HarnessError::check("no static_resources"))?;
    let listener = listener_resource("ingress", port, &[], &bad_user_rule())?
        .replacen(r#""@type":"type.googleapis.com/envoy.config.listener.v3.Listener","#, "", 1)
        .replacen(r#""config":{"name":"#, &format!(r#""config":{{{policy},"name":"#), 1);
    let yaml = format!("{head}static_resources:\n  listeners: [{listener}]\n{tail}");
    // The template's header comment names the LDS placeholder too.
    let ports = [("lds_path", "unused".to_string()), ("backend_port", backend_port.to_string())];
    render(&yaml, &[ports[0].clone(), ports[1].clone(), ("lists_port", backend_port.to_string())])
}

/// With a static bootstrap, Envoy does not start when the plugin rejects its configuration,
/// whatever the failure policy (`failure_policy: FAIL_OPEN`, `fail_open: true`): those cover a
/// VM that fails at run time, not a configuration the plugin refused. Envoy logs `Unable to
/// create Wasm plugin …` after the plugin's reason and exits with status 1.
#[test]
fn with_a_static_bootstrap_envoy_does_not_start_on_a_rejected_configuration() -> Result<(), HarnessError> {
    let backend = Backend::ok()?;
    for policy in [r#""failure_policy":"FAIL_CLOSED""#, r#""failure_policy":"FAIL_OPEN""#, r#""fail_open":true"#] {
        let port = wasmixer_integration::free_port()?;
        let yaml = static_bootstrap(port, backend.port(), policy)?;
        match EnvoyProcess::start(&yaml, "deny-static") {
            Ok(_) => return Err(HarnessError::check(format!("{policy}: Envoy started with a rejected configuration"))),
            Err(HarnessError::Envoy { message, log }) => {
                ensure!(message.contains("exited during startup"), "{policy}: {message}");
                ensure!(message.contains("exit status: 1"), "{policy}: {message}");
                ensure!(
                    log.contains("configuration rejected")
                        && log.contains("no-such-template")
                        && log.contains("Unable to create Wasm plugin wasmixer-deny"),
                    "{policy}: the rejection is not in the log:\n{log}"
                );
            }
            Err(e) => return Err(e),
        }
    }
    ensure!(backend.request_count() == 0, "the application received traffic");
    Ok(())
}

/// base64url without padding (JWT segments): the project's standard base64 with the URL-safe
/// alphabet.
fn base64url(bytes: &[u8]) -> String {
    base64::encode(bytes).trim_end_matches('=').replace('+', "-").replace('/', "_")
}

/// An HS256 JWT of `claims` signed with `key` (the HMAC by `openssl dgst`).
fn hs256_token(key: &str, claims: &str) -> Result<String, HarnessError> {
    let signing_input = format!("{}.{}", base64url(br#"{"alg":"HS256","typ":"JWT"}"#), base64url(claims.as_bytes()));
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-binary", "-hmac", key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| HarnessError::io("running openssl dgst", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(signing_input.as_bytes()).map_err(|e| HarnessError::io("writing to openssl", e))?;
    }
    let out = child.wait_with_output().map_err(|e| HarnessError::io("reading openssl's HMAC", e))?;
    ensure!(out.status.success() && out.stdout.len() == 32, "openssl dgst failed: {:?}", out);
    Ok(format!("{signing_input}.{}", base64url(&out.stdout)))
}

const JWT_KEY: &str = "wasmixer-test-hmac-key-0123456789abcdef";
const JWT_ISSUER: &str = "https://issuer.example";

/// Envoy's jwt_authn in front of the deny filter, as Istio configures it (payload in dynamic
/// metadata under the issuer); a request without a token passes through unauthenticated.
fn jwt_authn_filter() -> String {
    let jwks = format!(r#"{{"keys":[{{"kty":"oct","alg":"HS256","k":"{}"}}]}}"#, base64url(JWT_KEY.as_bytes()));
    format!(
        r#"{{"name":"envoy.filters.http.jwt_authn","typed_config":{{"@type":"type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication","providers":{{"p1":{{"issuer":"{JWT_ISSUER}","local_jwks":{{"inline_string":{}}},"payload_in_metadata":"{JWT_ISSUER}","forward":true}}}},"rules":[{{"match":{{"prefix":"/"}},"requires":{{"requires_any":{{"requirements":[{{"provider_name":"p1"}},{{"allow_missing":{{}}}}]}}}}}}]}}}}"#,
        json_string(&jwks)
    )
}

const JWT_RULE: &str = r#"{"resources": [
  {"kind": "handler", "metadata": {"name": "h", "namespace": "istio-system"}, "spec": {"compiledAdapter": "denier", "params": {"status": {"code": 7, "message": "admins only"}}}},
  {"kind": "instance", "metadata": {"name": "i", "namespace": "istio-system"}, "spec": {"compiledTemplate": "checknothing"}},
  {"kind": "rule", "metadata": {"name": "admins-only", "namespace": "istio-system"}, "spec": {
    "match": "(request.auth.claims[\"role\"] | \"\") != \"admin\"",
    "actions": [{"handler": "h", "instances": ["i"]}]}},
  {"kind": "rule", "metadata": {"name": "who", "namespace": "istio-system"}, "spec": {
    "match": "true",
    "requestHeaderOperations": [
      {"name": "x-principal", "values": ["request.auth.principal | \"none\""]},
      {"name": "x-audience", "values": ["request.auth.audiences | \"none\""]},
      {"name": "x-presenter", "values": ["request.auth.presenter | \"none\""]},
      {"name": "x-groups", "values": ["request.auth.claims[\"groups\"] | \"left out\""]},
      {"name": "x-raw-claims", "values": ["request.auth.raw_claims | \"none\""]}]}}
]}"#;

/// `request.auth.*` from the payload Envoy's jwt_authn verified, as Istio's proxy gave them to
/// Mixer: a rule on a string claim, the principal `iss/sub`, the first audience, and a list
/// claim left out of `request.auth.claims`.
#[test]
fn jwt_claims_from_envoy_s_jwt_authn() -> Result<(), HarnessError> {
    let hop = start_with("deny-jwt", &[jwt_authn_filter()], JWT_RULE, "")?;
    let addr = ([127, 0, 0, 1], hop.port).into();
    let send = |token: Option<&str>| {
        let mut req = Request::get("/x");
        if let Some(t) = token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        req.send(addr)
    };
    let claims = |role: &str| {
        format!(
            r#"{{"iss":"{JWT_ISSUER}","sub":"alice","aud":["svc-a","svc-b"],"azp":"client-1","role":"{role}","groups":["admins"],"exp":4102444800}}"#
        )
    };
    let admin = hs256_token(JWT_KEY, &claims("admin"))?;
    let resp = send(Some(&admin))?;
    ensure!(resp.status == 200, "an admin's request: status {} body {:?}", resp.status, resp.body_text());
    let seen = hop.backend.wait_for_requests(1, Duration::from_secs(5))?;
    let last = seen.last().ok_or_else(|| HarnessError::check("no request at the backend"))?;
    ensure!(last.header("x-principal") == Some("https://issuer.example/alice"), "principal: {:?}", last.headers);
    ensure!(last.header("x-audience") == Some("svc-a"), "audience: {:?}", last.headers);
    ensure!(last.header("x-presenter") == Some("client-1"), "presenter: {:?}", last.headers);
    ensure!(last.header("x-groups") == Some("left out"), "groups: {:?}", last.headers);
    let raw = r#"{"aud":["svc-a","svc-b"],"azp":"client-1","exp":4102444800,"groups":["admins"],"iss":"https://issuer.example","role":"admin","sub":"alice"}"#;
    ensure!(last.header("x-raw-claims") == Some(raw), "raw claims: {:?}", last.headers);

    let developer = hs256_token(JWT_KEY, &claims("dev"))?;
    let resp = send(Some(&developer))?;
    ensure!(resp.status == 403, "a developer's request: status {}", resp.status);
    ensure!(resp.body_text().contains("PERMISSION_DENIED:h.istio-system:admins only"), "body {:?}", resp.body_text());
    let resp = send(None)?;
    ensure!(resp.status == 403, "a request without a token: status {}", resp.status);
    // A token that jwt_authn does not verify never reaches the rules.
    let forged = hs256_token("another-key-0123456789abcdef0123456789", &claims("admin"))?;
    ensure!(send(Some(&forged))?.status == 401, "a forged token was not refused by jwt_authn");
    Ok(())
}
