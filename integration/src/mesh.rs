//! A service mesh on one machine, from a declarative description: the harness all end-to-end
//! tests and `make run` share.
//!
//! Each workload ([`WorkloadSpec`]: name, namespace, service account, labels, the service it
//! serves) is an in-process application ([`crate::apps`]) behind its own stock Envoy sidecar
//! ([`crate::sidecar`]), on a loopback address of its own (`127.X.Y.n`: listeners, admin and the
//! source address of its upstream connections), with a SPIFFE certificate from a test CA made
//! at start-up. Every sidecar can reach every service (`Host: ratings:9080` through its outbound
//! listener), as in a default Istio install.
//!
//! Like Istio's control plane, the mesh pushes configuration to running sidecars instead of
//! restarting them: each sidecar reads its listeners and clusters from files (Envoy's
//! file-based xDS, `path_config_source` with a watched directory), and [`Mesh::apply_yaml`]
//! takes Istio 1.4 resources -- mTLS (`MeshPolicy`, `Policy`, `DestinationRule`) and Mixer
//! (`handler` / `instance` / `rule`) -- converts them with `wasmixer convert`'s own code
//! ([`crate::mesh_control`]: each filter gets its converted configuration, the sidecars' mTLS
//! follows the converted `mesh-settings.json`, [`crate::mesh_tls`]), recomputes every
//! sidecar's listeners and clusters, rewrites the files that changed and waits until each Envoy
//! reports the update accepted. What the converter rejects is an error with its diagnostics.
//! Each push also renews the clusters (a generation number in their metadata) so that pooled
//! connections made under the previous configuration are not reused.
//!
//! Optional observers: Prometheus scraping every sidecar's admin `/stats/prometheus`
//! ([`Mesh::prometheus`]), and Envoy's Zipkin tracer in every sidecar reporting to a receiver
//! the mesh runs ([`Mesh::zipkin`]).
//!
//! ```ignore
//! let spec = MeshSpec::bookinfo("deny").filters(&["peer-metadata", "deny"]);
//! with_mesh(spec, |mesh| {
//!     let seed = read_workspace_file("integration/testdata/mesh-seed/deny-reviews-v3.yaml")?;
//!     mesh.apply_yaml_named("deny-reviews-v3.yaml", &seed)?;
//!     let r = mesh.call("reviews-v3", "http://ratings:9080/ratings/0")?;
//!     ensure!(r.status == 403, "{}", r.status);
//!     Ok(())
//! })
//! ```

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::apps::{self, App, AppContext};
use crate::bootstrap::wasm_filter;
use crate::envoy::{envoy_binary, readable_log};
use crate::mesh_control::ControlPlane;
use crate::mesh_obs::{tail, Proc, Prometheus, ScrapeTarget, ZipkinReceiver};
use crate::mesh_tls::{mode_name, TlsPolicies};
use crate::pki::{TestCa, WorkloadCert};
use crate::sidecar::{SidecarOptions, SidecarSpec, Tracing, Upstream, Workload};
use crate::{Backend, HarnessError, Request, Response};

/// The wasmixer filters in chain order (inbound; `deny` is inbound only, as Mixer's check
/// ran at the server sidecar).
pub const FILTER_ORDER: [&str; 4] = ["peer-metadata", "deny", "metrics", "access-log"];

/// `mixer.wasm`: the four filters as one, on both sides (its deny component checks inbound
/// requests only). A mesh runs either it or some of [`FILTER_ORDER`].
pub const MIXER: &str = "mixer";

/// The trust domain of the mesh's certificates.
pub const TRUST_DOMAIN: &str = "cluster.local";

/// How long a sidecar may take to start, or to accept a pushed configuration.
/// Generous: V8 compiles every module when a sidecar starts, which takes seconds of CPU per
/// filter, and a whole mesh starts at once on a small machine.
pub const SIDECAR_TIMEOUT: Duration = Duration::from_secs(180);

/// The label names sidecars turn into Prometheus labels unless told otherwise: the seed's
/// `double_request_count`. Envoy reads `stats_tags` from the bootstrap only, so a metric applied
/// later with other label names needs them in [`MeshSpec::stats_tags`] (e.g.
/// [`ISTIO_STANDARD_STATS_TAGS`]), or its labels stay in the metric name. Keep the list short:
/// Envoy matches every tag's regex against every new stat name, and with a few dozen tags a
/// sidecar takes seconds to apply a cluster update.
pub const DEFAULT_STATS_TAGS: &[&str] = &["reporter", "source", "destination", "message"];

/// The labels of Istio's standard metrics (`envoy-config/metrics/istio-standard-metrics.json`).
pub const ISTIO_STANDARD_STATS_TAGS: &[&str] = &[
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_canonical_service",
    "source_canonical_revision",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_cluster",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
    "response_code",
    "grpc_response_status",
];

/// Timeout of the harness's admin requests (a busy sidecar answers slowly).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

static MESH_COUNTER: AtomicU32 = AtomicU32::new(0);

/// One workload of the mesh.
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    pub workload: Workload,
    /// The application; `None` for a proxy without one (the ingress gateway).
    pub app: Option<App>,
    /// The Kubernetes service it belongs to (short name, e.g. `reviews`).
    pub service: String,
    /// The service port (`9080` for bookinfo, `8000` for httpbin, `80` for sleep).
    pub port: u16,
    /// For a gateway: the service (FQDN) that requests with any `Host` are routed to.
    pub ingress_to: Option<String>,
}

impl WorkloadSpec {
    /// A workload named `name` of service `service` with labels `app=<service>`,
    /// `version=<version>`.
    pub fn new(
        name: &str,
        service: &str,
        version: &str,
        namespace: &str,
        sa: &str,
        port: u16,
        app: Option<App>,
    ) -> WorkloadSpec {
        WorkloadSpec {
            workload: Workload {
                name: name.to_string(),
                namespace: namespace.to_string(),
                service_account: sa.to_string(),
                labels: vec![("app".into(), service.into()), ("version".into(), version.into())],
            },
            app,
            service: service.to_string(),
            port,
            ingress_to: None,
        }
    }

    /// `<name>.<namespace>`, how [`Mesh::node`] finds it.
    pub fn key(&self) -> String {
        format!("{}.{}", self.workload.name, self.workload.namespace)
    }

    /// The service's FQDN, e.g. `ratings.default.svc.cluster.local`.
    pub fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.service, self.workload.namespace)
    }
}

/// Istio's bookinfo in namespace `default`, behind an ingress gateway (`istio-ingressgateway`
/// in `istio-system`, routing everything to `productpage`).
pub fn bookinfo_workloads() -> Vec<WorkloadSpec> {
    let mut gateway = WorkloadSpec::new(
        "istio-ingressgateway",
        "istio-ingressgateway",
        "unknown",
        "istio-system",
        "istio-ingressgateway-service-account",
        80,
        None,
    );
    gateway.workload.labels.push(("istio".into(), "ingressgateway".into()));
    gateway.ingress_to = Some("productpage.default.svc.cluster.local".into());
    vec![
        gateway,
        WorkloadSpec::new(
            "productpage-v1",
            "productpage",
            "v1",
            "default",
            "bookinfo-productpage",
            9080,
            Some(App::ProductPage),
        ),
        WorkloadSpec::new("details-v1", "details", "v1", "default", "bookinfo-details", 9080, Some(App::Details)),
        WorkloadSpec::new(
            "reviews-v1",
            "reviews",
            "v1",
            "default",
            "bookinfo-reviews",
            9080,
            Some(App::Reviews("v1".into())),
        ),
        WorkloadSpec::new(
            "reviews-v2",
            "reviews",
            "v2",
            "default",
            "bookinfo-reviews",
            9080,
            Some(App::Reviews("v2".into())),
        ),
        WorkloadSpec::new(
            "reviews-v3",
            "reviews",
            "v3",
            "default",
            "bookinfo-reviews",
            9080,
            Some(App::Reviews("v3".into())),
        ),
        WorkloadSpec::new("ratings-v1", "ratings", "v1", "default", "bookinfo-ratings", 9080, Some(App::Ratings)),
    ]
}

/// `sleep` and `httpbin` in namespaces `foo` and `bar` (Istio's mTLS tasks).
pub fn sleep_httpbin_workloads() -> Vec<WorkloadSpec> {
    let mut out = Vec::new();
    for ns in ["foo", "bar"] {
        out.push(WorkloadSpec::new("sleep", "sleep", "v1", ns, "sleep", 80, Some(App::Sleep)));
        out.push(WorkloadSpec::new("httpbin", "httpbin", "v1", ns, "httpbin", 8000, Some(App::Httpbin)));
    }
    out
}

/// The bookinfo `DestinationRule`s (`destination-rule-all-mtls.yaml`): bookinfo's clients
/// originate mTLS, so policies see verified peers.
pub const BOOKINFO_DESTINATION_RULES: &str = include_str!("../testdata/mesh-seed/bookinfo-destination-rules.yaml");

/// What to bring up.
#[derive(Clone, Debug)]
pub struct MeshSpec {
    /// Labels the work directory and messages.
    pub name: String,
    pub workloads: Vec<WorkloadSpec>,
    /// wasmixer filters to load (names from [`FILTER_ORDER`]; built by `make wasm`).
    pub filters: Vec<String>,
    /// Envoy's Zipkin tracer at this sampling percentage (`None`: no tracing).
    pub tracing: Option<f64>,
    /// Start Prometheus.
    pub prometheus: bool,
    /// Istio resources (YAML) applied before the sidecars start.
    pub initial_yaml: Vec<String>,
    /// Label names of the sidecars' bootstrap `stats_tags` (default [`DEFAULT_STATS_TAGS`]);
    /// those of `initial_yaml`'s metrics and the filters' own are added.
    pub stats_tags: Vec<String>,
    /// Called with a line of progress while the mesh starts (the demo prints them).
    pub progress: Option<fn(&str)>,
    /// Every sidecar as an Istio 1.22+ sidecar would run our filters: Istio's metadata
    /// exchange (emulated, [`crate::istio_profile`]) first in each chain.
    pub istio_profile: bool,
}

impl MeshSpec {
    /// No workloads, no filters.
    pub fn empty(name: &str) -> MeshSpec {
        MeshSpec {
            name: name.to_string(),
            workloads: Vec::new(),
            filters: Vec::new(),
            tracing: None,
            prometheus: false,
            initial_yaml: Vec::new(),
            stats_tags: DEFAULT_STATS_TAGS.iter().map(|t| t.to_string()).collect(),
            progress: None,
            istio_profile: false,
        }
    }

    /// Bookinfo (with its mTLS `DestinationRule`s) behind an ingress gateway.
    pub fn bookinfo(name: &str) -> MeshSpec {
        let mut s = MeshSpec::empty(name);
        s.workloads = bookinfo_workloads();
        s.initial_yaml.push(BOOKINFO_DESTINATION_RULES.to_string());
        s
    }

    /// `sleep` and `httpbin` in `foo` and `bar`, no mTLS resources (servers PERMISSIVE).
    pub fn sleep_httpbin(name: &str) -> MeshSpec {
        let mut s = MeshSpec::empty(name);
        s.workloads = sleep_httpbin_workloads();
        s
    }

    /// Everything the seed scenarios use: bookinfo and sleep/httpbin.
    pub fn seed(name: &str) -> MeshSpec {
        let mut s = MeshSpec::bookinfo(name);
        s.workloads.extend(sleep_httpbin_workloads());
        s
    }

    /// Loads these wasmixer filters.
    pub fn filters(mut self, filters: &[&str]) -> MeshSpec {
        self.filters = filters.iter().map(|f| f.to_string()).collect();
        self
    }

    /// Traces `percent` % of new requests (Istio's default is 1).
    pub fn tracing(mut self, percent: f64) -> MeshSpec {
        self.tracing = Some(percent);
        self
    }

    /// Starts Prometheus too.
    pub fn prometheus(mut self) -> MeshSpec {
        self.prometheus = true;
        self
    }

    /// Runs every sidecar under the Istio sidecar profile ([`crate::istio_profile`]).
    pub fn istio_profile(mut self) -> MeshSpec {
        self.istio_profile = true;
        self
    }
}

/// One workload with its sidecar.
pub struct Node {
    pub spec: WorkloadSpec,
    /// The workload's loopback address.
    pub ip: String,
    pub inbound_port: u16,
    pub outbound_port: u16,
    admin_port: u16,
    pub cert: WorkloadCert,
    app: Option<Backend>,
    envoy: Option<Proc>,
    admin: Option<SocketAddr>,
    dir: PathBuf,
    written_lds: String,
    written_cds: String,
}

impl Node {
    /// The sidecar's inbound listener (what other sidecars connect to).
    pub fn inbound_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip.parse().unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])), self.inbound_port)
    }

    /// The sidecar's outbound listener (what the application calls through).
    pub fn outbound_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip.parse().unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])), self.outbound_port)
    }

    /// The sidecar's admin address.
    pub fn admin_addr(&self) -> Result<SocketAddr, HarnessError> {
        self.admin.ok_or_else(|| {
            HarnessError::check(format!("sidecar {} has no admin address (not started)", self.spec.key()))
        })
    }

    /// The application, if any (its received requests can be inspected).
    pub fn app(&self) -> Option<&Backend> {
        self.app.as_ref()
    }

    /// The sidecar's log so far.
    pub fn sidecar_log(&self) -> String {
        self.envoy.as_ref().map(Proc::log).unwrap_or_default()
    }

    /// Where the sidecar's access logger writes the access-log filter's lines.
    pub fn access_log_path(&self) -> PathBuf {
        self.dir.join("access.log")
    }

    /// The access-log filter's lines written by this sidecar so far.
    pub fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.access_log_path())
            .map(|t| t.lines().filter(|l| !l.is_empty()).map(String::from).collect())
            .unwrap_or_default()
    }

    /// The sidecar's work directory (bootstrap, xDS files, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `GET path` on the sidecar's admin interface.
    pub fn admin_get(&self, path: &str) -> Result<Response, HarnessError> {
        Request::get(path).timeout(ADMIN_TIMEOUT).send(self.admin_addr()?)
    }

    /// The sidecar's `/stats/prometheus`.
    pub fn stats_prometheus(&self) -> Result<String, HarnessError> {
        Ok(self.admin_get("/stats/prometheus")?.body_text())
    }

    /// Admin `/stats` counters and gauges whose names match `regex`, by name.
    pub fn stats(&self, regex: &str) -> Result<BTreeMap<String, u64>, HarnessError> {
        let body = self.admin_get(&format!("/stats?filter={}", crate::mesh_obs::url_encode(regex)))?.body_text();
        Ok(body
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(": ")?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect())
    }
}

/// A running mesh. Dropping it stops every process; the work directory is removed unless
/// [`Mesh::keep_dir`] was called (tests keep it on failure).
pub struct Mesh {
    name: String,
    dir: PathBuf,
    _ca: TestCa,
    ca_cert: PathBuf,
    nodes: Vec<Node>,
    filters: Vec<String>,
    /// The applied resources, converted by `wasmixer convert`'s code.
    control: ControlPlane,
    tracing: Option<Tracing>,
    zipkin: Option<ZipkinReceiver>,
    prometheus: Option<Prometheus>,
    generation: u64,
    keep: bool,
    /// The configuration the mesh started with ([`Mesh::reset_tls`] returns to its mTLS
    /// resources).
    initial_control: ControlPlane,
    progress: Option<fn(&str)>,
    /// The bootstrap's stats tags (fixed for the sidecars' lifetime).
    stats_tags: Vec<String>,
    istio_profile: bool,
}

/// A port on `ip` that was free a moment ago (the listener is returned to hold it).
fn hold_port(ip: &str) -> Result<TcpListener, HarnessError> {
    TcpListener::bind((ip, 0))
        .map_err(|e| HarnessError::io(format!("binding {ip}:0 (is 127.0.0.0/8 routed to lo?)"), e))
}

fn local_port(l: &TcpListener) -> Result<u16, HarnessError> {
    l.local_addr().map(|a| a.port()).map_err(|e| HarnessError::io("reading a probe socket's address", e))
}

fn write_atomic(path: &Path, contents: &str) -> Result<(), HarnessError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(|e| HarnessError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| HarnessError::io(format!("renaming {} into place", path.display()), e))
}

impl Mesh {
    /// Brings the mesh up: CA and certificates, applications, sidecars (started together,
    /// then each awaited until ready), the trace receiver and Prometheus when asked for.
    pub fn start(spec: MeshSpec) -> Result<Mesh, HarnessError> {
        let n = MESH_COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("wasmixer-mesh-{}-{pid}-{n}", spec.name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io(format!("creating {}", dir.display()), e))?;
        let ca = TestCa::create(&dir.join("pki"), TRUST_DOMAIN)?;
        let ca_cert = ca.ca_cert();
        for f in &spec.filters {
            if !FILTER_ORDER.contains(&f.as_str()) && f != MIXER {
                return Err(HarnessError::check(format!("unknown filter {f:?} (known: {FILTER_ORDER:?}, {MIXER:?})")));
            }
            crate::wasm_path(f)?;
        }
        if spec.filters.len() > 1 && spec.filters.iter().any(|f| f == MIXER) {
            return Err(HarnessError::check(format!("{MIXER:?} already holds every filter: run it alone")));
        }
        // 127.X.Y.n: X and Y vary per mesh and process (ports are picked per address anyway).
        let (x, y) = (16 + (n % 200), 1 + (pid % 250));
        let mut held = Vec::new();
        let mut nodes = Vec::new();
        for (i, w) in spec.workloads.iter().enumerate() {
            let ip = format!("127.{x}.{y}.{}", i + 2);
            // Held together, so the three differ; the admin port is fixed too, or Envoy's admin
            // (bound at start) could take a listener's port before LDS binds the listener.
            let (a, b, c) = (hold_port(&ip)?, hold_port(&ip)?, hold_port(&ip)?);
            let (inbound_port, outbound_port, admin_port) = (local_port(&a)?, local_port(&b)?, local_port(&c)?);
            held.extend([a, b, c]);
            let node_dir = dir.join(w.key());
            for sub in ["lds", "cds"] {
                std::fs::create_dir_all(node_dir.join(sub))
                    .map_err(|e| HarnessError::io(format!("creating {}", node_dir.display()), e))?;
            }
            nodes.push(Node {
                spec: w.clone(),
                cert: ca.issue(&w.workload.namespace, &w.workload.service_account)?,
                ip,
                inbound_port,
                outbound_port,
                admin_port,
                app: None,
                envoy: None,
                admin: None,
                dir: node_dir,
                written_lds: String::new(),
                written_cds: String::new(),
            });
        }
        let mut mesh = Mesh {
            name: spec.name.clone(),
            dir,
            _ca: ca,
            ca_cert,
            nodes,
            filters: FILTER_ORDER
                .iter()
                .chain(&[MIXER])
                .filter(|f| spec.filters.iter().any(|s| s == *f))
                .map(|f| f.to_string())
                .collect(),
            control: ControlPlane::new(),
            tracing: None,
            zipkin: None,
            prometheus: None,
            generation: 1,
            keep: false,
            initial_control: ControlPlane::new(),
            progress: spec.progress,
            stats_tags: Vec::new(),
            istio_profile: spec.istio_profile,
        };
        for (i, y) in spec.initial_yaml.iter().enumerate() {
            mesh.control.apply(&format!("MeshSpec.initial_yaml[{i}]"), y)?;
        }
        let mut tags = spec.stats_tags.clone();
        for t in mesh.control.label_names() {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        mesh.stats_tags = tags;
        mesh.initial_control = mesh.control.clone();
        if let Some(percent) = spec.tracing {
            let z = ZipkinReceiver::start()?;
            let mut t = if percent >= 100.0 { Tracing::always(z.addr()) } else { Tracing::istio_default(z.addr()) };
            t.sampling_percent = percent;
            mesh.tracing = Some(t);
            mesh.zipkin = Some(z);
        }
        for node in &mut mesh.nodes {
            if let Some(app) = &node.spec.app {
                let ctx = AppContext { pod_name: node.spec.workload.pod_name(), outbound: node.outbound_addr() };
                node.app = Some(apps::start(app, ctx)?);
            }
        }
        drop(held);
        mesh.say(&format!(
            "starting {} sidecars (Envoy, --concurrency 1) with filters [{}]: V8 compiles each filter in each sidecar, expect a few seconds per sidecar and filter",
            mesh.nodes.len(),
            mesh.filters.join(", ")
        ));
        if let Err(e) = mesh.start_sidecars() {
            mesh.keep = true;
            return Err(HarnessError::Envoy { message: e.to_string(), log: mesh.logs_report(30) });
        }
        if spec.prometheus {
            mesh.say("starting Prometheus (scraping every sidecar's /stats/prometheus each second)");
            let targets = mesh
                .nodes
                .iter()
                .filter_map(|n| {
                    let addr = n.admin?;
                    let labels = BTreeMap::from([
                        ("pod_name".to_string(), n.spec.workload.pod_name()),
                        ("namespace".to_string(), n.spec.workload.namespace.clone()),
                        ("workload".to_string(), n.spec.workload.name.clone()),
                    ]);
                    Some(ScrapeTarget { addr, labels })
                })
                .collect::<Vec<_>>();
            match Prometheus::start(&mesh.dir.join("prometheus"), &targets) {
                Ok(p) => mesh.prometheus = Some(p),
                Err(e) => {
                    mesh.keep = true;
                    return Err(e);
                }
            }
        }
        Ok(mesh)
    }

    fn start_sidecars(&mut self) -> Result<(), HarnessError> {
        let bin = envoy_binary()?;
        let version = self.generation;
        for i in 0..self.nodes.len() {
            let (lds, cds) = self.xds(i, version)?;
            let bootstrap = self.bootstrap(i)?;
            let node = &mut self.nodes[i];
            write_atomic(&node.dir.join("cds").join("cds.json"), &cds)?;
            write_atomic(&node.dir.join("lds").join("lds.json"), &lds)?;
            node.written_cds = cds;
            node.written_lds = lds;
            let config = node.dir.join("bootstrap.json");
            std::fs::write(&config, bootstrap)
                .map_err(|e| HarnessError::io(format!("writing {}", config.display()), e))?;
            let _ = std::fs::remove_file(node.dir.join("admin-address"));
            let args: Vec<String> = vec![
                "-c".into(),
                config.display().to_string(),
                "--disable-hot-restart".into(),
                "--concurrency".into(),
                "1".into(),
                "-l".into(),
                "info".into(),
                // Listener and cluster updates replace the old ones within a second.
                "--drain-time-s".into(),
                "1".into(),
                "--drain-strategy".into(),
                "immediate".into(),
                "--file-flush-interval-msec".into(),
                "200".into(),
                "--admin-address-path".into(),
                node.dir.join("admin-address").display().to_string(),
            ];
            node.envoy =
                Some(Proc::spawn(&format!("envoy {}", node.spec.key()), &bin, &args, &node.dir.join("envoy.log"))?);
        }
        let started = Instant::now();
        let total = self.nodes.len();
        for i in 0..total {
            let admin = wait_sidecar_ready(&mut self.nodes[i])?;
            self.nodes[i].admin = Some(admin);
            self.say(&format!(
                "  [{}/{total}] sidecar {} ready ({:.0?})",
                i + 1,
                self.nodes[i].spec.key(),
                started.elapsed()
            ));
        }
        Ok(())
    }

    /// The sidecar's bootstrap: node, admin, stats tags, tracer, and the xDS files.
    fn bootstrap(&self, i: usize) -> Result<String, HarnessError> {
        let node = &self.nodes[i];
        let spec = self.sidecar_spec(i)?;
        let mut b: Value = serde_json::from_str(&spec.bootstrap_with(&self.sidecar_options(node)))
            .map_err(|e| HarnessError::check(format!("sidecar bootstrap is not JSON: {e}")))?;
        let zipkin: Vec<Value> = b["static_resources"]["clusters"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|c| c["name"] == "zipkin")
            .cloned()
            .collect();
        b["static_resources"] = json!({"clusters": zipkin});
        let source = |kind: &str| {
            json!({"resource_api_version": "V3", "path_config_source": {
            "path": node.dir.join(kind).join(format!("{kind}.json")).display().to_string(),
            "watched_directory": {"path": node.dir.join(kind).display().to_string()}}})
        };
        b["dynamic_resources"] = json!({"lds_config": source("lds"), "cds_config": source("cds")});
        Ok(b.to_string())
    }

    fn sidecar_options(&self, node: &Node) -> SidecarOptions {
        SidecarOptions {
            ip: Some(node.ip.clone()),
            app_ip: None,
            tracing: self.tracing.clone(),
            access_log_path: self
                .filters
                .iter()
                .any(|f| f == "access-log" || f == MIXER)
                .then(|| node.access_log_path()),
            admin_port: Some(node.admin_port),
        }
    }

    fn sidecar_spec(&self, i: usize) -> Result<SidecarSpec<'_>, HarnessError> {
        let node = &self.nodes[i];
        let w = &node.spec;
        let upstreams = self
            .nodes
            .iter()
            .filter(|n| n.spec.app.is_some())
            .map(|n| Upstream {
                host: n.spec.host(),
                service_port: n.spec.port,
                address: n.ip.clone(),
                port: n.inbound_port,
                mtls: self.control.tls().originates(&w.workload.namespace, &n.spec.host(), n.spec.port),
            })
            .collect();
        let mut inbound_filters = Vec::new();
        let mut outbound_filters = Vec::new();
        if self.istio_profile {
            inbound_filters.push(crate::istio_profile::metadata_exchange_filter());
            outbound_filters.push(crate::istio_profile::metadata_exchange_filter());
        }
        for f in &self.filters {
            let entry = wasm_filter(f, &crate::wasm_path(f)?, &self.control.filter_config(f));
            inbound_filters.push(entry.clone());
            if f != "deny" {
                outbound_filters.push(entry);
            }
        }
        Ok(SidecarSpec {
            workload: &w.workload,
            service_host: w.host(),
            service_port: w.port,
            inbound_port: node.inbound_port,
            outbound_port: node.outbound_port,
            app_port: node.app.as_ref().map_or(1, Backend::port),
            inbound_tls: self.control.tls().server_mode(&w.workload.namespace, &w.service, w.port),
            cert: Some(&node.cert),
            ca_cert: Some(&self.ca_cert),
            upstreams,
            inbound_filters,
            outbound_filters,
            stats_tags: self.stats_tags(),
        })
    }

    /// The sidecars' `stats_tags` (bootstrap only: fixed when the mesh starts).
    pub fn stats_tags(&self) -> Vec<String> {
        self.stats_tags.clone()
    }

    /// Label names of the applied metrics that the sidecars cannot turn into labels.
    pub fn untagged_labels(&self) -> Vec<String> {
        self.control.label_names().into_iter().filter(|l| !self.stats_tags.contains(l)).collect()
    }

    /// The LDS and CDS files of sidecar `i` at `version`.
    fn xds(&self, i: usize, version: u64) -> Result<(String, String), HarnessError> {
        let node = &self.nodes[i];
        let spec = self.sidecar_spec(i)?;
        let b: Value = serde_json::from_str(&spec.bootstrap_with(&self.sidecar_options(node)))
            .map_err(|e| HarnessError::check(format!("sidecar bootstrap is not JSON: {e}")))?;
        let mut listeners = b["static_resources"]["listeners"].as_array().cloned().unwrap_or_default();
        for l in &mut listeners {
            if let Some(obj) = l.as_object_mut() {
                obj.insert("@type".into(), json!("type.googleapis.com/envoy.config.listener.v3.Listener"));
            }
            if let (Some(target), Some("outbound")) = (&node.spec.ingress_to, l["name"].as_str()) {
                let port = self.nodes.iter().find(|n| n.spec.host() == *target).map_or(9080, |n| n.spec.port);
                let vhosts = &mut l["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"];
                if let Some(list) = vhosts.as_array_mut() {
                    list.push(json!({"name": "ingress", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": format!("outbound|{port}||{target}")}}]}));
                }
            }
        }
        let mut clusters: Vec<Value> = b["static_resources"]["clusters"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["name"] != "zipkin")
            .collect();
        for c in &mut clusters {
            if let Some(obj) = c.as_object_mut() {
                obj.insert("@type".into(), json!("type.googleapis.com/envoy.config.cluster.v3.Cluster"));
                obj.insert(
                    "metadata".into(),
                    json!({"filter_metadata": {"wasmixer.mesh": {"generation": self.generation}}}),
                );
            }
        }
        let lds = json!({"version_info": version.to_string(), "resources": listeners});
        let cds = json!({"version_info": version.to_string(), "resources": clusters});
        Ok((
            serde_json::to_string_pretty(&lds).unwrap_or_default(),
            serde_json::to_string_pretty(&cds).unwrap_or_default(),
        ))
    }

    /// Recomputes every sidecar's listeners and clusters and pushes those that changed; waits
    /// until every Envoy has accepted them. Clusters are renewed, so no connection pooled
    /// under the previous configuration is reused.
    pub fn push(&mut self) -> Result<(), HarnessError> {
        self.generation += 1;
        let version = self.generation;
        let mut pending = Vec::new();
        for i in 0..self.nodes.len() {
            let (lds, cds) = self.xds(i, version)?;
            let node = &self.nodes[i];
            let before = node.stats(XDS_STATS)?;
            let (lds_changed, cds_changed) = (lds != node.written_lds, cds != node.written_cds);
            if cds_changed {
                write_atomic(&node.dir.join("cds").join("cds.json"), &cds)?;
            }
            if lds_changed {
                write_atomic(&node.dir.join("lds").join("lds.json"), &lds)?;
            }
            let node = &mut self.nodes[i];
            node.written_cds = cds;
            node.written_lds = lds;
            pending.push((i, before, lds_changed, cds_changed));
        }
        for (i, before, lds_changed, cds_changed) in pending {
            if let Err(e) = wait_xds(&self.nodes[i], &before, lds_changed, cds_changed) {
                return Err(HarnessError::Envoy {
                    message: e.to_string(),
                    log: tail(&readable_log(&self.nodes[i].sidecar_log()), 40),
                });
            }
        }
        Ok(())
    }

    /// `kubectl apply -f -` for the mesh: Mixer and mTLS resources (YAML, several documents),
    /// converted by `wasmixer convert`'s code together with everything applied before, then a
    /// push. Returns kubectl-like lines. A configuration the converter rejects is an error with
    /// its diagnostics, and changes nothing.
    pub fn apply_yaml(&mut self, yaml: &str) -> Result<Vec<String>, HarnessError> {
        self.apply_yaml_named("<stdin>", yaml)
    }

    /// [`Mesh::apply_yaml`] of the file `name` (how the converter's messages name it), e.g.
    /// `deny-reviews-v3.yaml`.
    pub fn apply_yaml_named(&mut self, name: &str, yaml: &str) -> Result<Vec<String>, HarnessError> {
        let applied = self.control.apply(name, yaml)?;
        self.warn_untagged();
        self.push()?;
        Ok(applied)
    }

    fn warn_untagged(&self) {
        let missing = self.untagged_labels();
        if !missing.is_empty() {
            eprintln!(
                "mesh {}: warning: labels {missing:?} are not in the sidecars' stats_tags (Envoy reads them from the bootstrap only); add them to MeshSpec::stats_tags",
                self.name
            );
        }
    }

    /// `kubectl delete -f`: removes the resources named in `yaml`, then pushes. Refused (an
    /// error, nothing changed) when what is left does not convert, e.g. a rule whose handler
    /// is deleted.
    pub fn delete_yaml(&mut self, yaml: &str) -> Result<Vec<String>, HarnessError> {
        let out = self.control.delete(yaml)?;
        self.push()?;
        Ok(out)
    }

    /// Merges a wasmixer filter configuration document (JSON: `resources` and filter sections,
    /// e.g. `integration/testdata/deny-seed.json`) into the mesh's configuration, then pushes:
    /// the resources go through the converter like YAML, the sections (`metrics`, `access_log`,
    /// ...) are given to every filter.
    pub fn apply_filter_config(&mut self, json_text: &str) -> Result<(), HarnessError> {
        self.control.merge_filter_config("filter configuration", json_text)?;
        self.warn_untagged();
        self.push()
    }

    /// Returns to the mTLS resources the mesh started with (for [`MeshSpec::bookinfo`], its
    /// `DestinationRule`s; otherwise none: servers PERMISSIVE, clients plain text), keeping the
    /// Mixer resources, then pushes.
    pub fn reset_tls(&mut self) -> Result<(), HarnessError> {
        self.control.restore_tls(&self.initial_control)?;
        self.push()
    }

    fn say(&self, line: &str) {
        if let Some(p) = self.progress {
            p(line);
        }
    }

    /// The mTLS settings (the converter's `mesh-settings.json`).
    pub fn tls(&self) -> &TlsPolicies {
        self.control.tls()
    }

    /// The applied configuration and what it converted to.
    pub fn control(&self) -> &ControlPlane {
        &self.control
    }

    /// The workload `key`: `name.namespace` (`sleep.foo`), or a name that is unique
    /// (`reviews-v3`).
    pub fn node(&self, key: &str) -> Result<&Node, HarnessError> {
        if let Some(n) = self.nodes.iter().find(|n| n.spec.key() == key) {
            return Ok(n);
        }
        let by_name: Vec<&Node> = self.nodes.iter().filter(|n| n.spec.workload.name == key).collect();
        match by_name.as_slice() {
            [one] => Ok(one),
            [] => Err(HarnessError::check(format!(
                "no workload {key:?} in mesh {} (have: {})",
                self.name,
                self.keys().join(", ")
            ))),
            _ => Err(HarnessError::check(format!("workload {key:?} is ambiguous: say name.namespace"))),
        }
    }

    /// Every workload's `name.namespace`.
    pub fn keys(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.spec.key()).collect()
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// A request from workload `from`'s application to `url` (`http://httpbin.foo:8000/ip`),
    /// through `from`'s sidecar as the application would send it (`kubectl exec <from> --
    /// curl <url>`).
    pub fn call(&self, from: &str, url: &str) -> Result<Response, HarnessError> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        self.call_with(from, host, Request::get(path))
    }

    /// A prepared request (method, path, headers, body) from `from`'s application to the
    /// service `host` (`ratings:9080`), through `from`'s sidecar.
    pub fn call_with(&self, from: &str, host: &str, request: Request) -> Result<Response, HarnessError> {
        request.header("host", host).send(self.node(from)?.outbound_addr())
    }

    /// A request through the ingress gateway (routed to `productpage`), e.g. `/productpage`.
    pub fn ingress(&self, path: &str) -> Result<Response, HarnessError> {
        self.ingress_with(Request::get(path))
    }

    /// [`Mesh::ingress`] with a prepared request.
    pub fn ingress_with(&self, request: Request) -> Result<Response, HarnessError> {
        let gw = self.ingress_addr()?;
        request.header("host", "bookinfo.example.com").send(gw)
    }

    /// The ingress gateway's address (its outbound listener).
    pub fn ingress_addr(&self) -> Result<SocketAddr, HarnessError> {
        self.nodes
            .iter()
            .find(|n| n.spec.ingress_to.is_some())
            .map(Node::outbound_addr)
            .ok_or_else(|| HarnessError::check("this mesh has no ingress gateway"))
    }

    /// A plain-text request straight to `to`'s inbound listener, from outside the mesh (no
    /// sidecar, no certificate), like Istio's `legacy` namespace.
    pub fn direct(&self, to: &str, path: &str) -> Result<Response, HarnessError> {
        let n = self.node(to)?;
        Request::get(path).header("host", &format!("{}:{}", n.spec.host(), n.spec.port)).send(n.inbound_addr())
    }

    pub fn prometheus(&self) -> Result<&Prometheus, HarnessError> {
        self.prometheus
            .as_ref()
            .ok_or_else(|| HarnessError::check("this mesh runs no Prometheus (MeshSpec::prometheus)"))
    }

    pub fn zipkin(&self) -> Result<&ZipkinReceiver, HarnessError> {
        self.zipkin.as_ref().ok_or_else(|| HarnessError::check("this mesh has no tracing (MeshSpec::tracing)"))
    }

    /// The mesh's work directory (certificates, per-sidecar bootstrap, xDS files and logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps the work directory when the mesh is dropped.
    pub fn keep_dir(&mut self) {
        self.keep = true;
    }

    /// Lines of every sidecar log that contain `needle`, as `(workload, line)`.
    pub fn log_lines(&self, needle: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for n in &self.nodes {
            for l in n.sidecar_log().lines().filter(|l| l.contains(needle)) {
                out.push((n.spec.key(), l.to_string()));
            }
        }
        out
    }

    /// The state of the mesh in a few lines: workloads, addresses, mTLS modes.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let w = &n.spec.workload;
            out.push_str(&format!(
                "  {:<34} {:<15} inbound {:<21} outbound {:<21} admin {:<21} mTLS {}\n",
                format!("{}.{} ({})", w.name, w.namespace, n.spec.service),
                n.ip,
                n.inbound_addr().to_string(),
                n.outbound_addr().to_string(),
                n.admin.map(|a| a.to_string()).unwrap_or_default(),
                mode_name(self.control.tls().server_mode(&w.namespace, &n.spec.service, n.spec.port))
            ));
        }
        out
    }

    /// A report for a failure: every process's log tail (`lines` each) and where the full logs are.
    pub fn logs_report(&self, lines: usize) -> String {
        let mut out = format!("===== mesh {} logs (full logs under {}) =====\n", self.name, self.dir.display());
        for n in &self.nodes {
            if let Some(p) = &n.envoy {
                out.push_str(&format!(
                    "----- {} ({}) -----\n{}",
                    p.name(),
                    p.log_path().display(),
                    tail(&readable_log(&p.log()), lines)
                ));
            }
        }
        if let Some(p) = &self.prometheus {
            out.push_str(&format!("----- prometheus -----\n{}", tail(&p.proc().log(), lines)));
        }
        out.push_str("===== end of mesh logs =====\n");
        out
    }

    /// Stops every process (also done on drop).
    pub fn stop(&mut self) {
        self.prometheus = None;
        for n in &mut self.nodes {
            n.envoy = None;
            n.app = None;
        }
        self.zipkin = None;
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.stop();
        if !self.keep && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("mesh {}: work directory kept at {}", self.name, self.dir.display());
        }
    }
}

/// The admin stats that tell whether a pushed configuration was accepted.
const XDS_STATS: &str = r"^(listener_manager\.lds|cluster_manager\.cds)\.update_(success|rejected)$|^listener_manager\.total_listeners_warming$";

fn wait_xds(node: &Node, before: &BTreeMap<String, u64>, lds: bool, cds: bool) -> Result<(), HarnessError> {
    let deadline = Instant::now() + SIDECAR_TIMEOUT;
    let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    loop {
        let now = node.stats(XDS_STATS)?;
        for (what, changed) in [("listener_manager.lds", lds), ("cluster_manager.cds", cds)] {
            let key = format!("{what}.update_rejected");
            if changed && get(&now, &key) > get(before, &key) {
                return Err(HarnessError::check(format!(
                    "sidecar {} rejected the pushed {what} configuration",
                    node.spec.key()
                )));
            }
        }
        let done = |what: &str, changed: bool| {
            !changed || get(&now, &format!("{what}.update_success")) > get(before, &format!("{what}.update_success"))
        };
        if done("listener_manager.lds", lds)
            && done("cluster_manager.cds", cds)
            && get(&now, "listener_manager.total_listeners_warming") == 0
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout(format!(
                "sidecar {} did not apply the pushed configuration within {SIDECAR_TIMEOUT:?}: {now:?}",
                node.spec.key()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_sidecar_ready(node: &mut Node) -> Result<SocketAddr, HarnessError> {
    let deadline = Instant::now() + SIDECAR_TIMEOUT;
    let key = node.spec.key();
    let admin_path = node.dir.join("admin-address");
    let inbound = node.inbound_addr();
    let outbound = node.outbound_addr();
    let Some(envoy) = node.envoy.as_mut() else {
        return Err(HarnessError::check(format!("sidecar {key} not started")));
    };
    let mut last = String::from("no admin address yet");
    loop {
        if let Some(status) = envoy.exited() {
            return Err(HarnessError::check(format!("sidecar {key} exited during startup ({status})")));
        }
        if let Some(addr) = std::fs::read_to_string(&admin_path).ok().and_then(|s| s.trim().parse::<SocketAddr>().ok())
        {
            match Request::get("/ready").timeout(Duration::from_secs(2)).send(addr) {
                Ok(r) if r.status == 200 => {
                    // Ready means initialised; make sure both listeners are bound too.
                    let listeners = Request::get("/listeners").send(addr)?.body_text();
                    if listeners.contains(&inbound.to_string()) && listeners.contains(&outbound.to_string()) {
                        return Ok(addr);
                    }
                    last = format!("listeners so far: {}", listeners.trim());
                }
                Ok(r) => last = format!("/ready answered {} {}", r.status, r.body_text().trim()),
                Err(e) => last = e.to_string(),
            }
            if let Ok(stats) =
                Request::get(&format!("/stats?filter={}", crate::mesh_obs::url_encode(r"update_rejected$"))).send(addr)
            {
                let body = stats.body_text();
                if let Some(line) = body.lines().find(|l| l.contains("update_rejected") && !l.ends_with(": 0")) {
                    return Err(HarnessError::check(format!(
                        "sidecar {key} rejected its configuration ({})",
                        line.trim()
                    )));
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout(format!("sidecar {key} not ready within {SIDECAR_TIMEOUT:?} ({last})")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `test` against a fresh mesh. On failure the error carries every process's log tail and
/// the work directory is kept; on success everything is removed.
pub fn with_mesh<F>(spec: MeshSpec, test: F) -> Result<(), HarnessError>
where
    F: FnOnce(&mut Mesh) -> Result<(), HarnessError>,
{
    let mut mesh = Mesh::start(spec)?;
    match test(&mut mesh) {
        Ok(()) => Ok(()),
        Err(e) => {
            mesh.keep_dir();
            Err(HarnessError::Envoy { message: e.to_string(), log: mesh.logs_report(40) })
        }
    }
}
