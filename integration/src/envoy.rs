//! A real Envoy process, started from a bootstrap and killed on drop.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::http::{Request, Response};
use crate::HarnessError;

/// How long [`EnvoyProcess::start`] waits for `/ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

static INSTANCE: AtomicU32 = AtomicU32::new(0);

/// The Envoy binary: `ENVOY_BIN` if set, else `envoy` on `PATH`.
pub fn envoy_binary() -> Result<PathBuf, HarnessError> {
    if let Some(bin) = std::env::var_os("ENVOY_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(HarnessError::EnvoyNotFound(format!("ENVOY_BIN={} is not a file", bin.display())))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join("envoy")).find(|candidate| candidate.is_file()).ok_or_else(|| {
        HarnessError::EnvoyNotFound("set ENVOY_BIN or put `envoy` on PATH (`bash .ci/install` installs it)".to_string())
    })
}

/// A running Envoy. Dropping it kills the process and prints Envoy's log to stderr, which
/// `cargo test` shows only for a failed test; a panicking test also keeps the work directory.
pub struct EnvoyProcess {
    name: String,
    child: Child,
    dir: PathBuf,
    log_path: PathBuf,
    admin: SocketAddr,
}

impl EnvoyProcess {
    /// Writes `bootstrap_yaml` to a fresh work directory and runs Envoy on it (one worker, hot
    /// restart off, a base id of its own, log at `info` to a file), then waits up to
    /// [`READY_TIMEOUT`] for the admin `/ready` endpoint to answer 200. The admin address is
    /// read from the file Envoy writes, so a bootstrap may give the admin port 0. `name` labels
    /// the work directory and messages.
    pub fn start(bootstrap_yaml: &str, name: &str) -> Result<EnvoyProcess, HarnessError> {
        EnvoyProcess::start_with_args(bootstrap_yaml, name, &[])
    }

    /// [`EnvoyProcess::start`] with extra command-line arguments, e.g.
    /// `&["--component-log-level", "wasm:debug"]`.
    pub fn start_with_args(
        bootstrap_yaml: &str,
        name: &str,
        extra_args: &[&str],
    ) -> Result<EnvoyProcess, HarnessError> {
        let bin = envoy_binary()?;
        let instance = INSTANCE.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("wasmixer-it-{name}-{pid}-{instance}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io(format!("creating {}", dir.display()), e))?;
        let config = dir.join("bootstrap.yaml");
        write(&config, bootstrap_yaml)?;
        let log_path = dir.join("envoy.log");
        let admin_path = dir.join("admin-address");
        let log =
            File::create(&log_path).map_err(|e| HarnessError::io(format!("creating {}", log_path.display()), e))?;
        let log_too = log.try_clone().map_err(|e| HarnessError::io("duplicating the log file handle", e))?;
        // Unique per process and instance, so parallel tests and test binaries never share one.
        let base_id = (pid % 100_000) * 20 + instance % 20 + 1;
        // One worker unless the caller asks for more (Envoy refuses an option given twice).
        let concurrency: &[&str] = if extra_args.contains(&"--concurrency") { &[] } else { &["--concurrency", "1"] };
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config)
            .args(["--disable-hot-restart", "-l", "info"])
            .args(concurrency)
            .args(["--base-id", &base_id.to_string()])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_too))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| HarnessError::io(format!("starting {}", bin.display()), e))?;
        let mut envoy = EnvoyProcess {
            name: name.to_string(),
            child,
            dir,
            log_path,
            // Replaced once Envoy has written its admin address.
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        envoy.admin = envoy.wait_ready(&admin_path)?;
        Ok(envoy)
    }

    fn wait_ready(&mut self, admin_path: &Path) -> Result<SocketAddr, HarnessError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("no admin address yet");
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failure(format!("envoy {} exited during startup: {status}", self.name)));
            }
            if let Some(addr) = read_admin_address(admin_path) {
                match Request::get("/ready").timeout(Duration::from_secs(2)).send(addr) {
                    Ok(r) if r.status == 200 => return Ok(addr),
                    Ok(r) => last = format!("/ready answered {} {}", r.status, r.body_text().trim()),
                    Err(e) => last = e.to_string(),
                }
            }
            if Instant::now() >= deadline {
                return Err(self.failure(format!("envoy {} not ready within {READY_TIMEOUT:?} ({last})", self.name)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn failure(&self, message: String) -> HarnessError {
        HarnessError::Envoy {
            message: format!("{message}; work directory {}", self.dir.display()),
            log: readable_log(&self.log()),
        }
    }

    /// The admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin.port()
    }

    /// The admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The work directory (bootstrap, log); kept after a failed test.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Envoy's log so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path.display()))
    }

    /// Waits until the log contains `needle`; returns the log.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<String, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return Ok(log);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Envoy {
                    message: format!("envoy {}: no {needle:?} in the log within {timeout:?}", self.name),
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET path` on the admin interface.
    pub fn admin_get(&self, path: &str) -> Result<Response, HarnessError> {
        Request::get(path).send(self.admin)
    }

    /// `POST path` on the admin interface (e.g. `/reset_counters`).
    pub fn admin_post(&self, path: &str) -> Result<Response, HarnessError> {
        Request::post(path, Vec::new()).send(self.admin)
    }

    /// `/stats/prometheus` as text.
    pub fn stats_prometheus(&self) -> Result<String, HarnessError> {
        let r = self.admin_get("/stats/prometheus")?;
        if r.status != 200 {
            return Err(HarnessError::Http(format!("/stats/prometheus answered {}", r.status)));
        }
        Ok(r.body_text())
    }

    /// Waits (up to 5 s) until `/stats/prometheus` has the line `line` exactly: the filters hand
    /// their counts to Envoy on a one-second tick.
    pub fn wait_for_stat_line(&self, line: &str) -> Result<(), HarnessError> {
        let start = std::time::Instant::now();
        loop {
            let stats = self.stats_prometheus()?;
            if stats.lines().any(|l| l == line) {
                return Ok(());
            }
            if start.elapsed() > std::time::Duration::from_secs(5) {
                return Err(HarnessError::check(format!("no line {line:?} in:\n{stats}")));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The value of one stat from admin `/stats` (e.g. `http.ingress.downstream_rq_2xx`);
    /// `None` if Envoy has no such stat (or it is a histogram).
    pub fn stat(&self, name: &str) -> Result<Option<u64>, HarnessError> {
        let r = self.admin_get(&format!("/stats?filter=^{}$", regex_escape(name)))?;
        Ok(r.body_text().lines().find_map(|line| {
            let (k, v) = line.split_once(": ")?;
            if k == name {
                v.trim().parse().ok()
            } else {
                None
            }
        }))
    }

    /// The address listener `listener_name` is bound to (works with port 0 in the bootstrap).
    pub fn listener_addr(&self, listener_name: &str) -> Result<SocketAddr, HarnessError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let body = self.admin_get("/listeners")?.body_text();
            // Lines look like `ingress::127.0.0.1:10000`.
            let found = body.lines().find_map(|line| {
                let (n, addr) = line.split_once("::")?;
                if n == listener_name {
                    addr.trim().parse::<SocketAddr>().ok()
                } else {
                    None
                }
            });
            match found {
                Some(addr) if addr.port() != 0 => return Ok(addr),
                _ if Instant::now() >= deadline => {
                    return Err(self.failure(format!(
                        "envoy {}: no bound listener {listener_name:?}; /listeners says:\n{body}",
                        self.name
                    )))
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for EnvoyProcess {
    /// Kills Envoy, then prints its log to stderr. libtest captures a test's stderr and shows
    /// it only when the test fails, whether by panicking or by returning `Err`, which is why
    /// the log is printed every time rather than only while panicking. When the thread is
    /// panicking the work directory is also kept for a post-mortem.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let panicking = std::thread::panicking();
        eprintln!(
            "===== envoy {} log ({}) =====\n{}\n===== end of envoy {} log =====",
            self.name,
            if panicking { self.log_path.display().to_string() } else { "work directory removed".to_string() },
            readable_log(&self.log()).trim_end(),
            self.name
        );
        if !panicking {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The log without the startup listings (linked extensions, header map layout): their lines
/// are the ones indented after the source location, e.g. `[server.cc:467]   envoy.filters...`.
pub fn readable_log(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut omitted = 0usize;
    for line in log.lines() {
        if line.contains("]   ") {
            omitted += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if omitted > 0 {
        out.push_str(&format!("({omitted} startup listing lines omitted)\n"));
    }
    out
}

fn write(path: &Path, contents: &str) -> Result<(), HarnessError> {
    std::fs::write(path, contents).map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))
}

/// Parses the admin address file (`127.0.0.1:PORT`), if Envoy wrote it yet.
fn read_admin_address(path: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
