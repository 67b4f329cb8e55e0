//! Load: `wrk` at a fixed concurrency for throughput and CPU turns; a small closed-loop client
//! for warm-up; a fixed-rate client for latency.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::envoy::{register_child, unregister_child};
use crate::http::{request_bytes, Conn};

#[derive(Clone, Debug, Default)]
pub struct WrkResult {
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    pub non_2xx_3xx: u64,
    pub socket_errors: u64,
}

/// A `wrk` started by [`spawn_wrk`]; [`RunningWrk::finish`] waits for it and reads its report.
pub struct RunningWrk {
    child: std::process::Child,
}

/// Starts `nice -n <nice> taskset -c <core> wrk -t<threads> -c<connections> -d<secs>s` against
/// `addr` without waiting for it, so that several setups can take load at once.
pub fn spawn_wrk(
    addr: SocketAddr,
    headers: &[(String, String)],
    threads: u32,
    connections: u32,
    secs: u32,
    core: usize,
    nice: i32,
) -> Result<RunningWrk, String> {
    // `nice -n N taskset -c CORE wrk …`: the load generator gets the same priority as the
    // Envoy under test.
    let mut cmd = Command::new("nice");
    cmd.arg("-n").arg(nice.to_string()).arg("taskset").arg("-c").arg(core.to_string()).arg("wrk");
    cmd.arg(format!("-t{threads}")).arg(format!("-c{connections}")).arg(format!("-d{secs}s")).args(["--timeout", "2s"]);
    for (k, v) in headers {
        cmd.arg("-H").arg(format!("{k}: {v}"));
    }
    cmd.arg(format!("http://{addr}/"));
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|e| format!("starting wrk: {e}"))?;
    register_child(child.id());
    Ok(RunningWrk { child })
}

impl RunningWrk {
    pub fn finish(self) -> Result<WrkResult, String> {
        let pid = self.child.id();
        let out = self.child.wait_with_output().map_err(|e| format!("wrk: {e}"));
        unregister_child(pid);
        let out = out?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!("wrk failed ({}): {}{}", out.status, text, String::from_utf8_lossy(&out.stderr)));
        }
        parse_wrk(&text)
    }
}

fn parse_wrk(text: &str) -> Result<WrkResult, String> {
    let mut r = WrkResult::default();
    for line in text.lines().map(str::trim) {
        if let Some((n, rest)) = line.split_once(" requests in ") {
            r.requests = n.trim().parse().unwrap_or(0);
            let d = rest.split(',').next().unwrap_or("").trim();
            r.seconds = parse_duration(d).unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx_3xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            r.socket_errors =
                v.split(',').filter_map(|p| p.split_whitespace().last()).filter_map(|n| n.parse::<u64>().ok()).sum();
        }
    }
    if r.requests == 0 && r.rps == 0.0 {
        return Err(format!("could not read wrk's output:\n{text}"));
    }
    Ok(r)
}

/// wrk's durations: `3.02s`, `512.00ms`, `1.00m`.
fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Some(v) = s.strip_suffix("ms") {
        return v.parse::<f64>().ok().map(|x| x / 1000.0);
    }
    if let Some(v) = s.strip_suffix("us") {
        return v.parse::<f64>().ok().map(|x| x / 1e6);
    }
    if let Some(v) = s.strip_suffix('s') {
        return v.parse().ok();
    }
    if let Some(v) = s.strip_suffix('m') {
        return v.parse::<f64>().ok().map(|x| x * 60.0);
    }
    None
}

/// Closed-loop requests on `connections` keep-alive connections for `duration`; returns the
/// number of responses per status.
pub fn warm_up(
    addr: SocketAddr,
    headers: &[(String, String)],
    connections: usize,
    duration: Duration,
) -> Result<Vec<(u16, u64)>, String> {
    let request = Arc::new(request_bytes("/", "ratings", headers, false));
    let deadline = Instant::now() + duration;
    let mut handles = Vec::new();
    for _ in 0..connections {
        let request = Arc::clone(&request);
        handles.push(thread::spawn(move || -> Result<Vec<(u16, u64)>, String> {
            let mut conn = Conn::connect(addr, Duration::from_secs(5))?;
            let mut counts: Vec<(u16, u64)> = Vec::new();
            while Instant::now() < deadline {
                let r = conn.round_trip(&request)?;
                match counts.iter_mut().find(|(s, _)| *s == r.status) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((r.status, 1)),
                }
            }
            Ok(counts)
        }));
    }
    let mut total: Vec<(u16, u64)> = Vec::new();
    for h in handles {
        let counts = h.join().map_err(|_| "warm-up thread failed".to_string())??;
        for (s, n) in counts {
            match total.iter_mut().find(|(t, _)| *t == s) {
                Some((_, m)) => *m += n,
                None => total.push((s, n)),
            }
        }
    }
    total.sort();
    Ok(total)
}

/// Requests at a fixed total `rate` (per second) spread over `connections` keep-alive
/// connections for `duration`. Each latency is from the moment the request is written to the
/// end of its response (service time: the client's own timer slack is not counted); a
/// connection that falls behind its schedule skips ahead rather than bursting.
pub fn fixed_rate(
    addr: SocketAddr,
    headers: &[(String, String)],
    rate: f64,
    connections: usize,
    duration: Duration,
) -> Result<Vec<u64>, String> {
    let request = Arc::new(request_bytes("/", "ratings", headers, false));
    let interval = Duration::from_secs_f64(connections as f64 / rate.max(1.0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut handles = Vec::new();
    for i in 0..connections {
        let request = Arc::clone(&request);
        handles.push(thread::spawn(move || -> Result<Vec<u64>, String> {
            let mut conn = Conn::connect(addr, Duration::from_secs(5))?;
            let mut samples = Vec::with_capacity((duration.as_secs_f64() / interval.as_secs_f64()) as usize + 1);
            // Stagger the connections across one interval.
            let mut next = start + interval.mul_f64(i as f64 / connections as f64);
            while next < deadline {
                let now = Instant::now();
                if next > now {
                    thread::sleep(next - now);
                }
                let t0 = Instant::now();
                conn.round_trip(&request)?;
                samples.push(t0.elapsed().as_nanos() as u64);
                next += interval;
                let now = Instant::now();
                if now > next + interval {
                    next = now;
                }
            }
            Ok(samples)
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().map_err(|_| "latency thread failed".to_string())??);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() -> Result<(), String> {
        let text = "Running 3s test @ http://127.0.0.1:19000/\n  1 threads and 16 connections\n  13829 requests in 3.02s, 1.56MB read\n  Non-2xx or 3xx responses: 13829\n  Socket errors: connect 0, read 2, write 0, timeout 1\nRequests/sec:   4579.21\nTransfer/sec:    527.68KB\n";
        let r = parse_wrk(text)?;
        assert_eq!(r.requests, 13829);
        assert!((r.seconds - 3.02).abs() < 1e-9);
        assert!((r.rps - 4579.21).abs() < 1e-9);
        assert_eq!(r.non_2xx_3xx, 13829);
        assert_eq!(r.socket_errors, 3);
        assert_eq!(parse_duration("512.00ms"), Some(0.512));
        Ok(())
    }
}
