//! What /proc says about a process: CPU time (utime+stime, and the schedulers' nanosecond
//! run time summed over threads), resident memory, CPU affinity.

use std::fs;
use std::process::Command;

/// CPU time consumed so far by a process, all its threads included.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    /// utime + stime from `/proc/<pid>/stat`, in clock ticks.
    pub ticks: u64,
    /// Sum over `/proc/<pid>/task/*/schedstat` of the on-CPU time, in nanoseconds (0 when the
    /// kernel has no schedstat).
    pub sched_ns: u64,
}

/// Clock ticks per second (`getconf CLK_TCK`; Linux has used 100 for decades).
pub fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// utime + stime of `pid` in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| format!("/proc/{pid}/stat: unexpected format"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    let num = |i: usize| -> Result<u64, String> {
        fields.get(i).and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| format!("/proc/{pid}/stat: no field {}", i + 3))
    };
    Ok(num(11)? + num(12)?)
}

/// Sum of the threads' on-CPU nanoseconds (first field of `/proc/<pid>/task/<tid>/schedstat`).
pub fn sched_ns(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .sum()
}

pub fn cpu_sample(pid: u32) -> Result<CpuSample, String> {
    Ok(CpuSample { ticks: cpu_ticks(pid)?, sched_ns: sched_ns(pid) })
}

/// Resident set size of `pid` in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Result<u64, String> {
    status_kb(pid, "VmRSS:").map(|kb| kb * 1024)
}

/// Anonymous resident memory of `pid` in bytes (`RssAnon`).
pub fn rss_anon_bytes(pid: u32) -> Result<u64, String> {
    status_kb(pid, "RssAnon:").map(|kb| kb * 1024)
}

fn status_kb(pid: u32, key: &str) -> Result<u64, String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status: no {key}"))
}

/// The CPUs this process may run on (`Cpus_allowed_list`, e.g. `0-1` or `1`).
pub fn self_cpus_allowed() -> String {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// Number of online CPUs of the machine (not of this process's affinity mask).
pub fn cpu_count() -> usize {
    let from_cpuinfo = fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0);
    if from_cpuinfo > 0 {
        from_cpuinfo
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// A one-line description of the machine: CPU model, cores, kernel.
pub fn machine() -> String {
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default();
    let mem_gb = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
        })
        .map_or(0.0, |kb| kb as f64 / 1024.0 / 1024.0);
    let virt = fs::read_to_string("/proc/cpuinfo").map(|s| s.contains(" hypervisor")).unwrap_or(false);
    format!(
        "{model}, {} cores{}, {mem_gb:.0} GB RAM, Linux {kernel}",
        cpu_count(),
        if virt { " (virtual machine)" } else { "" }
    )
}

/// 1-minute load average.
pub fn load_average() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}
