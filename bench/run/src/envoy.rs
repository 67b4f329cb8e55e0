//! Envoy processes under test: started pinned to one core, asked for stats over the admin
//! API, and always stopped (also from the watchdog and the panic hook).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::http;

/// Pids of every process we started, for the watchdog and the panic hook.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub fn register_child(pid: u32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.push(pid);
    }
}

pub fn unregister_child(pid: u32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.retain(|p| *p != pid);
    }
}

/// SIGKILLs every process we started and is still registered (by pid, one by one).
pub fn kill_all_children() {
    let pids: Vec<u32> = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
    for pid in pids {
        let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).stderr(Stdio::null()).status();
    }
}

/// `n` distinct free TCP ports on 127.0.0.1: all bound at once (so the kernel cannot hand the
/// same one out twice), then released for the Envoys to bind. Envoy listeners set
/// SO_REUSEPORT by default, under which two Envoys on one port would silently share its
/// connections: the bootstraps turn it off, so a clash fails loudly instead.
pub fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())).collect()
}

/// Query-string encoding (for admin `filter=` regexes).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub struct Envoy {
    pub name: String,
    child: Child,
    pub pid: u32,
    pub listener: SocketAddr,
    pub admin: SocketAddr,
    pub log_path: PathBuf,
}

impl Envoy {
    /// Starts `envoy -c config` with one worker thread, allowed on `cores` (a taskset list;
    /// start-up may use every core, then [`Envoy::pin`] confines it), run by `wrapper` when
    /// it is not empty (e.g. `valgrind --tool=callgrind …`, which traces Envoy in its own
    /// process, so that `pid` is Envoy's).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        wrapper: &[String],
        name: &str,
        envoy_bin: &str,
        config: &Path,
        cores: &str,
        listener_port: u16,
        admin_port: u16,
        dir: &Path,
    ) -> Result<Envoy, String> {
        let log_path = dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("taskset")
            .arg("-c")
            .arg(cores)
            .args(wrapper)
            .arg(envoy_bin)
            .arg("-c")
            .arg(config)
            .args(["--concurrency", "1", "--disable-hot-restart", "-l", "warning"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("starting {envoy_bin} (through taskset): {e}"))?;
        let pid = child.id();
        register_child(pid);
        Ok(Envoy {
            name: name.to_string(),
            child,
            pid,
            listener: SocketAddr::from(([127, 0, 0, 1], listener_port)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            log_path,
        })
    }

    /// Waits until the admin API answers `/ready` with LIVE and the listener accepts.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("envoy exited ({status}) during start-up; last log lines:\n{}", self.log_tail(15)));
            }
            if let Ok(text) = http::get_text(self.admin, "/ready") {
                if text.trim() == "LIVE"
                    && std::net::TcpStream::connect_timeout(&self.listener, Duration::from_millis(200)).is_ok()
                {
                    return Ok(());
                }
            }
            if start.elapsed() > timeout {
                return Err(format!("envoy not ready after {timeout:?}; last log lines:\n{}", self.log_tail(15)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Confines every thread of the process to `core` (`taskset -a -p`).
    pub fn pin(&self, core: usize) -> Result<(), String> {
        let out = Command::new("taskset")
            .args(["-a", "-p", "-c"])
            .arg(core.to_string())
            .arg(self.pid.to_string())
            .output()
            .map_err(|e| format!("taskset: {e}"))?;
        if !out.status.success() {
            return Err(format!("taskset -a -p -c {core} {}: {}", self.pid, String::from_utf8_lossy(&out.stderr)));
        }
        Ok(())
    }

    /// Sets the nice value of every thread of the process (`renice`; nice is per thread on
    /// Linux). Negative values need root; failures are ignored (the turn runs at normal priority).
    pub fn renice(&self, nice: i32) {
        let tids: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", self.pid))
            .map(|d| d.flatten().map(|t| t.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        if tids.is_empty() {
            return;
        }
        let _ = Command::new("renice")
            .arg("-n")
            .arg(nice.to_string())
            .arg("-p")
            .args(&tids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Counters and gauges from `/stats?format=json` whose name contains `filter` (a regex
    /// Envoy applies; plain names work).
    pub fn stats(&self, filter: &str) -> Result<BTreeMap<String, f64>, String> {
        let text = http::get_text(self.admin, &format!("/stats?format=json&filter={}", percent_encode(filter)))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("stats JSON: {e}"))?;
        let mut out = BTreeMap::new();
        for s in v.get("stats").and_then(|s| s.as_array()).into_iter().flatten() {
            if let (Some(name), Some(value)) =
                (s.get("name").and_then(|n| n.as_str()), s.get("value").and_then(|v| v.as_f64()))
            {
                out.insert(name.to_string(), value);
            }
        }
        Ok(out)
    }

    /// Bytes tcmalloc holds free (`pageheap_free` + `total_thread_cache` of `/memory`): resident
    /// and reusable but not in use. Most of it is what V8 needed to compile the Wasm modules when
    /// they loaded, which tcmalloc keeps rather than returning to the system.
    pub fn allocator_free_bytes(&self) -> Result<u64, String> {
        let text = http::get_text(self.admin, "/memory")?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("/memory JSON: {e}"))?;
        // Envoy writes these numbers as JSON strings.
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        Ok(field("pageheap_free") + field("total_thread_cache"))
    }

    /// Requests the HTTP connection manager completed so far.
    pub fn requests_completed(&self) -> Result<u64, String> {
        let s = self.stats("^http\\.ingress\\.downstream_rq_completed$")?;
        s.get("http.ingress.downstream_rq_completed")
            .map(|v| *v as u64)
            .ok_or_else(|| format!("{}: no http.ingress.downstream_rq_completed", self.name))
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all.get(all.len().saturating_sub(lines)..).unwrap_or_default().join("\n")
    }

    /// Lines of the log at warning level or above, without repeats (at most `max`).
    pub fn log_warnings(&self, max: usize) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let mut seen = Vec::new();
        for l in text.lines().filter(|l| l.contains("[warning]") || l.contains("[error]") || l.contains("[critical]")) {
            // Drop the timestamp prefix so repeats collapse.
            let key = l.split_once("] ").map_or(l, |(_, r)| r).to_string();
            if !seen.contains(&key) {
                seen.push(key);
            }
            if seen.len() >= max {
                break;
            }
        }
        seen
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        unregister_child(self.pid);
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.stop();
    }
}
