//! Figures from the raw turns, the terminal table, `latest.json`, the SVG chart and the
//! README table.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::{Run, Turn};

/// `.wasm` size limit of the issue ("under 400 KB"), read as KiB.
const WASM_LIMIT_BYTES: u64 = 400 * 1024;
/// Memory the three filters may add to one Envoy ("under 8 MB"), read as MiB.
const MEMORY_LIMIT_BYTES: f64 = 8.0 * 1024.0 * 1024.0;
/// Bare Envoy's CPU per request where the issue's limits were measured (Envoy 1.40, one hop,
/// direct response, idle 2-core machine).
pub(crate) const REFERENCE_BARE_US: f64 = 13.8;
const README_START: &str = "<!-- bench:latest:start -->";
const README_END: &str = "<!-- bench:latest:end -->";

pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let mid = v.get(n / 2).copied()?;
    if n % 2 == 1 {
        Some(mid)
    } else {
        v.get(n / 2 - 1).map(|lo| (lo + mid) / 2.0)
    }
}

/// Interquartile half-range: half the distance between the 25th and 75th percentiles.
fn half_iqr(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < 2 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| -> f64 {
        let pos = p * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        let (a, b) = (v.get(lo).copied().unwrap_or(0.0), v.get(hi).copied().unwrap_or(0.0));
        a + (b - a) * (pos - lo as f64)
    };
    Some((q(0.75) - q(0.25)) / 2.0)
}

fn percentile_us(sorted_ns: &[u64], p: f64) -> Option<f64> {
    if sorted_ns.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted_ns.len() as f64).ceil() as usize;
    sorted_ns.get(rank.saturating_sub(1).min(sorted_ns.len() - 1)).map(|ns| *ns as f64 / 1000.0)
}

/// The computed figures of one setup.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub name: String,
    pub kind: String,
    pub status: String,
    /// The setup extra CPU, `× bare` and RPS ratios are taken against.
    pub baseline: String,
    /// Envoys in the setup (CPU and memory are their sums).
    pub envoys: usize,
    pub rss_anon_mb: Option<f64>,
    /// Anonymous RSS minus what tcmalloc holds free: the memory actually in use.
    pub in_use_mb: Option<f64>,
    /// A memory-only setup's series fill.
    pub series: Option<crate::SeriesMemory>,
    pub measured: bool,
    pub rps: Option<f64>,
    pub rps_vs_bare: Option<f64>,
    pub cpu_us: Option<f64>,
    pub cpu_us_sched: Option<f64>,
    pub cpu_vs_bare: Option<f64>,
    pub extra_us: Option<f64>,
    pub extra_spread_us: Option<f64>,
    pub extra_us_sched: Option<f64>,
    pub extra_rounds: Vec<f64>,
    pub native: Option<String>,
    pub ratio_native: Option<f64>,
    pub rss_mb: Option<f64>,
    pub rss_added_mb: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p50_added_us: Option<f64>,
    pub p99_added_us: Option<f64>,
    pub latency_samples: usize,
    pub requests: u64,
    pub unexpected_statuses: u64,
    pub socket_errors: u64,
}

fn cpu_us(t: &Turn, ticks_per_sec: u64) -> f64 {
    if t.requests == 0 {
        return f64::NAN;
    }
    t.ticks as f64 * 1e6 / ticks_per_sec as f64 / t.requests as f64
}

fn sched_us(t: &Turn) -> f64 {
    if t.requests == 0 || t.sched_ns == 0 {
        return f64::NAN;
    }
    t.sched_ns as f64 / 1000.0 / t.requests as f64
}

pub fn rows(run: &Run) -> Vec<Row> {
    let tps = run.ticks_per_sec.max(1);
    // Each setup's extra CPU is taken against its baseline (bare Envoy, or mesh-bare for the
    // two-sidecar setups) in the same round.
    let turns_of = |name: &str| -> Vec<Turn> {
        run.setups
            .iter()
            .zip(&run.measured)
            .find(|(s, _)| s.name == name)
            .map(|(_, m)| m.turns.clone())
            .unwrap_or_default()
    };
    let mut rows: Vec<Row> = run
        .setups
        .iter()
        .zip(&run.measured)
        .map(|(s, m)| {
            let mut r = Row {
                name: s.name.to_string(),
                kind: s.kind.name().to_string(),
                native: s.native.map(str::to_string),
                ..Row::default()
            };
            if let Some(why) = &m.skipped {
                r.status = why.clone();
                return r;
            }
            if let Some(sm) = &m.series {
                r.series = Some(sm.clone());
                r.status = "memory only".into();
                r.envoys = m.envoys;
                r.rss_mb = (m.rss > 0).then(|| m.rss as f64 / 1048576.0);
                r.rss_anon_mb = (m.rss_anon > 0).then(|| m.rss_anon as f64 / 1048576.0);
                return r;
            }
            if m.turns.is_empty() {
                r.status = "not measured".into();
                return r;
            }
            r.measured = true;
            r.status = "ok".into();
            r.baseline = s.baseline.to_string();
            r.envoys = m.envoys;
            let base_turns = turns_of(s.baseline);
            let bare_turn = |round: usize| base_turns.iter().find(|t| t.round == round);
            let cpu: Vec<f64> = m.turns.iter().map(|t| cpu_us(t, tps)).collect();
            let sched: Vec<f64> = m.turns.iter().map(sched_us).collect();
            r.cpu_us = median(&cpu);
            r.cpu_us_sched = median(&sched);
            r.rps = median(&m.turns.iter().map(|t| t.rps).collect::<Vec<_>>());
            let mut extra = Vec::new();
            let mut extra_sched = Vec::new();
            let mut vs_bare = Vec::new();
            let mut rps_vs_bare = Vec::new();
            for t in &m.turns {
                if let Some(b) = bare_turn(t.round) {
                    extra.push(cpu_us(t, tps) - cpu_us(b, tps));
                    extra_sched.push(sched_us(t) - sched_us(b));
                    vs_bare.push(cpu_us(t, tps) / cpu_us(b, tps));
                    if b.rps > 0.0 {
                        rps_vs_bare.push(t.rps / b.rps);
                    }
                }
            }
            r.extra_us = median(&extra);
            r.extra_spread_us = half_iqr(&extra);
            r.extra_us_sched = median(&extra_sched);
            r.extra_rounds = extra;
            r.cpu_vs_bare = median(&vs_bare);
            r.rps_vs_bare = median(&rps_vs_bare);
            r.requests = m.turns.iter().map(|t| t.requests).sum();
            r.socket_errors = m.turns.iter().map(|t| t.socket_errors).sum();
            r.unexpected_statuses = if s.expect_status < 400 { m.turns.iter().map(|t| t.non_2xx_3xx).sum() } else { 0 };
            if m.rss > 0 {
                r.rss_mb = Some(m.rss as f64 / 1024.0 / 1024.0);
            }
            if m.rss_anon > 0 {
                r.rss_anon_mb = Some(m.rss_anon as f64 / 1024.0 / 1024.0);
                if m.allocator_free > 0 {
                    r.in_use_mb = Some(m.rss_anon.saturating_sub(m.allocator_free) as f64 / 1024.0 / 1024.0);
                }
            }
            let mut lat = m.latency_ns.clone();
            lat.sort_unstable();
            r.latency_samples = lat.len();
            r.p50_us = percentile_us(&lat, 50.0);
            r.p99_us = percentile_us(&lat, 99.0);
            r
        })
        .collect();
    let snapshot = rows.clone();
    for r in rows.iter_mut().filter(|r| r.measured) {
        let bare = snapshot.iter().find(|x| x.name == r.baseline).cloned().unwrap_or_default();
        r.rss_added_mb = r.rss_mb.zip(bare.rss_mb).map(|(a, b)| a - b);
        r.p50_added_us = r.p50_us.zip(bare.p50_us).map(|(a, b)| a - b);
        r.p99_added_us = r.p99_us.zip(bare.p99_us).map(|(a, b)| a - b);
        if let Some(native) = r.native.as_deref().and_then(|n| snapshot.iter().find(|x| x.name == n && x.measured)) {
            r.ratio_native = r.extra_us.zip(native.extra_us).and_then(|(a, b)| (b > 0.0).then_some(a / b));
        }
    }
    rows
}

#[derive(Clone, Debug)]
pub struct Target {
    pub text: String,
    pub measured: String,
    /// Some(true) PASS, Some(false) MISS, None not measured.
    pub pass: Option<bool>,
}

fn row<'a>(rows: &'a [Row], name: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.name == name && r.measured)
}

fn why_not(rows: &[Row], names: &[&str]) -> String {
    let reasons: Vec<String> = names
        .iter()
        .filter_map(|n| rows.iter().find(|r| r.name == *n))
        .filter(|r| !r.measured)
        .map(|r| format!("{}: {}", r.name, r.status.chars().take(90).collect::<String>()))
        .collect();
    if reasons.is_empty() {
        "not measured".into()
    } else {
        reasons.join("; ")
    }
}

pub struct Sizes {
    pub files: Vec<(String, u64)>,
}

pub fn wasm_sizes(run: &Run) -> Sizes {
    let dist =
        if run.options.dist.is_absolute() { run.options.dist.clone() } else { run.workspace.join(&run.options.dist) };
    let mut files = Vec::new();
    for f in ["deny", "metrics", "access-log", "peer-metadata"] {
        let p = dist.join(format!("{f}.wasm"));
        if let Ok(meta) = std::fs::metadata(&p) {
            files.push((format!("{f}.wasm"), meta.len()));
        }
    }
    Sizes { files }
}

pub fn targets(rows: &[Row], sizes: &Sizes) -> Vec<Target> {
    let mut t = Vec::new();
    let ratio_target = |text: &str, setup: &str, native: &str, limit: f64| -> Target {
        match (row(rows, setup), row(rows, native)) {
            (Some(a), Some(b)) => {
                let (ea, eb) = (a.extra_us.unwrap_or(f64::NAN), b.extra_us.unwrap_or(f64::NAN));
                let ratio = a.ratio_native.unwrap_or(f64::NAN);
                // A native extra smaller than twice its spread makes the ratio unreliable.
                let spread = b.extra_spread_us.unwrap_or(0.0);
                let caveat = if eb < 2.0 * spread {
                    format!("; {native}'s extra is within its spread (+-{spread:.2}): ratio uncertain")
                } else {
                    String::new()
                };
                Target {
                    text: text.into(),
                    measured: format!(
                        "{setup} {ea:.2} us vs {native} {eb:.2} us: x{ratio:.2} (limit x{limit}){caveat}"
                    ),
                    pass: Some(ratio.is_finite() && ratio <= limit),
                }
            }
            _ => Target { text: text.into(), measured: why_not(rows, &[setup, native]), pass: None },
        }
    };
    let bare_cpu = row(rows, "bare").and_then(|r| r.cpu_us);
    let abs_target = |text: &str, setup: &str, limit: f64| -> Target {
        match row(rows, setup) {
            Some(a) => {
                let e = a.extra_us.unwrap_or(f64::NAN);
                // The limits were set on a machine where bare Envoy took REFERENCE_BARE_US; on a
                // slower (or busier) one, also show the figure at that speed.
                let scaled = match bare_cpu {
                    Some(b) if b > 1.25 * REFERENCE_BARE_US => format!(
                        "; {:.2} us at the reference speed (bare {REFERENCE_BARE_US} us, here {b:.1})",
                        e * REFERENCE_BARE_US / b
                    ),
                    _ => String::new(),
                };
                Target {
                    text: text.into(),
                    measured: format!("{setup} {e:.2} us extra (limit {limit} us){scaled}"),
                    pass: Some(e.is_finite() && e <= limit),
                }
            }
            None => Target { text: text.into(), measured: why_not(rows, &[setup]), pass: None },
        }
    };
    t.push(ratio_target("deny filter (seed rule) extra CPU <= native RBAC with CEL", "deny-seed", "rbac-seed", 1.0));
    t.push(ratio_target(
        "deny filter (seed rule, verified reviews-v3 peer, denying) extra CPU <= native RBAC denying",
        "deny-peer",
        "rbac-match",
        1.0,
    ));
    t.push(ratio_target(
        "deny filter (rule on headers, denying) extra CPU <= native RBAC denying",
        "deny-match",
        "rbac-match",
        1.0,
    ));
    t.push(abs_target("metrics filter (seed metric) <= 1.5 us extra", "metrics-seed", 1.5));
    t.push(abs_target("metrics filter (standard metrics) <= 3 us extra", "metrics-standard", 3.0));
    t.push(ratio_target(
        "access-log filter (seed logentry) <= 2x native JSON access log",
        "access-log-seed",
        "native-json-log",
        2.0,
    ));
    // Every "all filters" target twice: as four filters (all-wasm, mesh-wasm) and as mixer.wasm.
    for (all, mesh, how) in [("all-wasm", "mesh-wasm", "four filters"), ("mixer", "mesh-mixer", "mixer.wasm")] {
        t.push(abs_target(
            if all == "mixer" {
                "all filters + peer metadata <= 5 us extra (mixer.wasm)"
            } else {
                "all filters + peer metadata <= 5 us extra"
            },
            all,
            5.0,
        ));
        let stretch = format!("(stretch) all filters below the Lua filter ({how})");
        t.push(match (row(rows, all), row(rows, "lua")) {
            (Some(a), Some(l)) => {
                let (ea, el) = (a.extra_us.unwrap_or(f64::NAN), l.extra_us.unwrap_or(f64::NAN));
                Target { text: stretch, measured: format!("{all} {ea:.2} us vs lua {el:.2} us"), pass: Some(ea < el) }
            }
            _ => Target { text: stretch, measured: why_not(rows, &[all, "lua"]), pass: None },
        });
        let text = format!("two-sidecar path (mTLS, all filters, {how}) throughput >= 0.9 of bare");
        t.push(match (row(rows, mesh), row(rows, "mesh-bare")) {
            (Some(a), Some(b)) => {
                let ratio = a.rps_vs_bare.unwrap_or(f64::NAN);
                Target {
                    text,
                    measured: format!("{mesh} {:.0} vs mesh-bare {:.0} RPS: x{ratio:.2} (median of per-round ratios; both Envoys on one core)", a.rps.unwrap_or(0.0), b.rps.unwrap_or(0.0)),
                    pass: Some(ratio.is_finite() && ratio >= 0.9),
                }
            }
            _ => Target { text, measured: why_not(rows, &[mesh, "mesh-bare"]), pass: None },
        });
    }
    let series_text =
        format!("metrics filter: memory per Envoy for {} live series (reported)", crate::setups::SERIES_FILL);
    t.push(match rows.iter().find(|r| r.name == "metrics-series").and_then(|r| r.series.clone()) {
        Some(sm) => {
            let mib = |b: i64| b as f64 / 1048576.0;
            Target {
                text: series_text,
                measured: format!(
                    "metrics-series: {} series after {} requests with new label values: anonymous RSS {:+.1} MiB, in use {:+.1} MiB (~{} bytes per series)",
                    sm.series,
                    sm.requested,
                    mib(sm.rss_anon_added),
                    mib(sm.in_use_added),
                    sm.in_use_added / (sm.series.max(1) as i64)
                ),
                pass: None,
            }
        }
        None => Target { text: series_text, measured: why_not(rows, &["metrics-series"]), pass: None },
    });
    for (name, bytes) in &sizes.files {
        t.push(Target {
            text: format!("{name} under 400 KiB"),
            measured: format!("{:.0} KiB ({bytes} bytes)", *bytes as f64 / 1024.0),
            pass: Some(*bytes < WASM_LIMIT_BYTES),
        });
    }
    for all in ["all-wasm", "mixer"] {
        t.push(match (row(rows, all), row(rows, "bare")) {
        (Some(a), Some(b)) => {
            let added = a.rss_mb.unwrap_or(0.0) - b.rss_mb.unwrap_or(0.0);
            Target {
                text: format!("memory added by the filters ({all} RSS - bare RSS) < 8 MiB"),
                measured: format!(
                    "{added:.1} MiB ({:.1} vs {:.1} MiB, one worker); anonymous memory alone (without the Envoy binary's shared pages): +{:.1} MiB, of which in use (not held free by tcmalloc): +{:.1} MiB",
                    a.rss_mb.unwrap_or(0.0),
                    b.rss_mb.unwrap_or(0.0),
                    a.rss_anon_mb.unwrap_or(0.0) - b.rss_anon_mb.unwrap_or(0.0),
                    a.in_use_mb.unwrap_or(0.0) - b.in_use_mb.unwrap_or(0.0)
                ),
                pass: Some(added * 1024.0 * 1024.0 < MEMORY_LIMIT_BYTES),
            }
        }
        _ => Target {
            text: format!("memory added by the filters ({all}) < 8 MiB"),
            measured: why_not(rows, &[all]),
            pass: None,
        },
    });
    }
    t
}

/// Lines explaining the wasm figures with the calibration setups: the Wasm host's per-filter
/// floor, the price of one host call, and each filter's extra CPU split into floor and own work.
pub fn diagnostics(rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    let floor = row(rows, "wasm-floor").and_then(|r| r.extra_us);
    let bare = row(rows, "bare").and_then(|r| r.cpu_us);
    if let (Some(fl), Some(b)) = (floor, bare) {
        out.push(format!(
            "Envoy's Wasm host costs {fl:.2} us per request per filter before any filter logic (wasm-floor; {:.0}% of bare Envoy's {b:.2} us); a chain of N Wasm filters pays it N times",
            100.0 * fl / b
        ));
        let n = crate::setups::CALIBRATION_CALLS as f64;
        for (name, what) in
            [("host-property-x10", "proxy_get_property"), ("host-header-x10", "proxy_get_header_map_value")]
        {
            if let Some(e) = row(rows, name).and_then(|r| r.extra_us) {
                out.push(format!(
                    "one {what} call costs about {:.2} us ({name}: {e:.2} us extra for {n} calls + floor)",
                    (e - fl) / n
                ));
            }
        }
        if let (Some(f), Some(bare_row)) = (row(rows, "wasm-floor"), row(rows, "bare")) {
            let anon = |r: &Row| r.rss_anon_mb.unwrap_or(0.0) - bare_row.rss_anon_mb.unwrap_or(0.0);
            let in_use = |r: &Row| r.in_use_mb.unwrap_or(0.0) - bare_row.in_use_mb.unwrap_or(0.0);
            let mut mem = vec![format!("wasm-floor {:+.1} ({:+.1})", anon(f), in_use(f))];
            for name in ["deny-seed", "metrics-seed", "access-log-seed", "all-wasm", "mixer"] {
                if let Some(r) = row(rows, name) {
                    mem.push(format!("{name} {:+.1} ({:+.1})", anon(r), in_use(r)));
                }
            }
            out.push(format!(
                "memory: V8 compiles a module once per Envoy (workers share it; each thread has its own small VM instance); anonymous MiB over bare (in parentheses: in use, i.e. without what tcmalloc holds free after V8's load-time compilation): {}; RSS also counts ~{:.0} MiB of the Envoy binary's V8 pages, shared between processes",
                mem.join(", "),
                (f.rss_mb.unwrap_or(0.0) - bare_row.rss_mb.unwrap_or(0.0)) - anon(f)
            ));
        }
        for (name, filters) in [
            ("deny-seed", 1.0),
            ("deny-match", 1.0),
            ("metrics-seed", 1.0),
            ("metrics-standard", 1.0),
            ("access-log-seed", 1.0),
            ("all-wasm", 4.0),
            ("mixer", 1.0),
            ("mesh-peer", 2.0),
            ("mesh-wasm", 7.0),
            ("mesh-mixer", 2.0),
        ] {
            if let Some(e) = row(rows, name).and_then(|r| r.extra_us) {
                out.push(format!("{name}: {e:.2} us extra = {:.2} us Wasm host floor ({filters:.0} filter(s)) + {:.2} us of the filters' own work and host calls", fl * filters, e - fl * filters));
            }
        }
    }
    out
}

/// `wasmcustom.rule=.=r;.;result=.=error;.;name` (tags encoded in a Wasm stat name) as
/// `name{rule="r",result="error"}`; other names unchanged.
pub fn pretty_stat(name: &str) -> String {
    if let Some((role, rest)) = name.split_once(": ") {
        return format!("{role}: {}", pretty_stat(rest));
    }
    let Some(rest) = name.strip_prefix("wasmcustom.") else {
        return name.to_string();
    };
    let parts: Vec<&str> = rest.split(";.;").collect();
    let Some((last, tags)) = parts.split_last() else {
        return name.to_string();
    };
    let labels: Vec<String> =
        tags.iter().filter_map(|t| t.split_once("=.=")).map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    if labels.is_empty() {
        return (*last).to_string();
    }
    format!("{last}{{{}}}", labels.join(","))
}

fn verdict(p: Option<bool>) -> &'static str {
    match p {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "n/a",
    }
}

fn f(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "-".into(),
    }
}

fn signed(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:+.decimals$}"),
        _ => "-".into(),
    }
}

/// The expression micro-benchmark's ratios (bench/results/expr.json), if present.
fn expr_summary(run: &Run) -> Option<(Value, String)> {
    let text = std::fs::read_to_string(run.workspace.join("bench/results/expr.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let mut ratios = Vec::new();
    let mut per = Vec::new();
    for r in v.get("rows")?.as_array()? {
        let ratio = r.get("ratio_cel_over_cexl").and_then(Value::as_f64)?;
        let name = r.get("expression").and_then(Value::as_str).unwrap_or("?");
        ratios.push(ratio);
        per.push(json!({"expression": name, "ratio_cel_over_cexl": ratio}));
    }
    let med = median(&ratios)?;
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let engine = v.get("cel_engine").and_then(Value::as_str).unwrap_or("cel-interpreter");
    let mode = v.get("mode").and_then(Value::as_str).unwrap_or("?");
    let line = format!("expression micro-benchmark (bench/results/expr.json, {mode} run): CEXL is x{med:.2} faster than {engine} (median of {} expressions; slowest x{min:.2})", ratios.len());
    Some((
        json!({"source": "bench/results/expr.json", "median_ratio_cel_over_cexl": med, "min_ratio_cel_over_cexl": min, "rows": per}),
        line,
    ))
}

pub fn print_table(run: &Run) {
    let rows = rows(run);
    let sizes = wasm_sizes(run);
    let bare = rows.first();
    println!();
    println!("{}", header_line(run));
    println!(
        "{:<17} {:>8} {:>7} {:>9} {:>7} {:>5} {:>6} {:>16} {:>7} {:>7} {:>7} {:>7}",
        "setup", "RPS", "CPU us", "extra us", "+-", "xbare", "sched", "vs native", "RSS MB", "+MB", "p50 us", "p99 us"
    );
    for r in &rows {
        if !r.measured {
            println!("{:<17} {}", r.name, r.status);
            continue;
        }
        let native = match (&r.native, r.ratio_native) {
            (Some(n), Some(x)) => format!("x{x:.2} {n}"),
            (Some(n), None) => format!("- {n}"),
            _ => String::new(),
        };
        let is_bare = bare.is_some_and(|b| b.name == r.name);
        println!(
            "{:<17} {:>8} {:>7} {:>9} {:>7} {:>5} {:>6} {:>16} {:>7} {:>7} {:>7} {:>7}",
            r.name,
            f(r.rps, 0),
            f(r.cpu_us, 2),
            if is_bare { "-".into() } else { signed(r.extra_us, 2) },
            if is_bare { "".into() } else { f(r.extra_spread_us, 2) },
            f(r.cpu_vs_bare, 2),
            if is_bare { f(r.cpu_us_sched, 2) } else { signed(r.extra_us_sched, 2) },
            native,
            f(r.rss_mb, 1),
            if is_bare { "".into() } else { signed(r.rss_added_mb, 1) },
            f(r.p50_us, 0),
            f(r.p99_us, 0),
        );
    }
    println!("  CPU us: Envoy utime+stime per request (median over rounds); extra us: minus bare in the same round (median; +- half the interquartile range);");
    println!("  sched: the same from the scheduler's ns counters (bare: absolute); vs native: extra CPU / the native setup's extra CPU; latency at {} req/s.", run.options.rate);
    println!();
    println!("what each setup measures:");
    for (s, r) in run.setups.iter().zip(&rows) {
        println!("  {:<17} {}", s.name, s.measures);
        if s.baseline != "bare" {
            println!("  {:<17} (extra CPU, x bare and RPS ratio against {}, in the same round)", "", s.baseline);
        }
        if r.unexpected_statuses > 0 || r.socket_errors > 0 {
            println!("  {:<17} ! {} unexpected statuses, {} socket errors", "", r.unexpected_statuses, r.socket_errors);
        }
    }
    for (s, m) in run.setups.iter().zip(&run.measured) {
        let counters: Vec<String> = m
            .stats
            .iter()
            .filter(|(k, v)| **v > 0.0 && (k.contains("wasmixer_policy") || k.contains("rbac.")))
            .map(|(k, v)| format!("{} {v}", pretty_stat(k)))
            .collect();
        if !counters.is_empty() {
            println!("  {:<17} path taken: {}", s.name, counters.join(", "));
        }
    }
    let diag = diagnostics(&rows);
    if !diag.is_empty() {
        println!();
        println!("where the Wasm time goes (calibration setups):");
        for d in diag {
            println!("  {d}");
        }
    }
    println!();
    println!("targets (issue 10):");
    for t in targets(&rows, &sizes) {
        println!("  {:<4} {:<72} {}", verdict(t.pass), t.text, t.measured);
    }
    if let Some((_, line)) = expr_summary(run) {
        println!();
        println!("{line}");
    }
    println!();
}

fn header_line(run: &Run) -> String {
    format!(
        "wasmixer bench ({}, {}{}) {} | Envoy {} | {} | load average {:.2} -> {:.2} | {:.0}s",
        if run.options.quick { "quick" } else { "full" },
        if run.options.upstream { "trivial upstream" } else { "direct response" },
        if run.options.together { ", turns together" } else { "" },
        run.started,
        run.envoy_version.split('/').nth(1).unwrap_or(&run.envoy_version),
        run.machine,
        run.load_before,
        run.load_after,
        run.elapsed_secs
    )
}

fn opt(v: Option<f64>) -> Value {
    match v {
        Some(x) if x.is_finite() => json!((x * 1000.0).round() / 1000.0),
        _ => Value::Null,
    }
}

fn to_json(run: &Run) -> Value {
    let rows = rows(run);
    let sizes = wasm_sizes(run);
    let tps = run.ticks_per_sec;
    let setups: Vec<Value> = run
        .setups
        .iter()
        .zip(&run.measured)
        .zip(&rows)
        .map(|((s, m), r)| {
            json!({
                "name": s.name,
                "kind": s.kind.name(),
                "measures": s.measures,
                "status": r.status,
                "configuration": s.sources,
                "load_headers": s.headers.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
                "expected_status": s.expect_status,
                "warm_up_statuses": m.warm_statuses.iter().map(|(st, n)| json!({"status": st, "count": n})).collect::<Vec<_>>(),
                "verified": m.verified,
                "native_equivalent": s.native,
                "baseline": s.baseline,
                "envoys": m.envoys,
                "rss_anon_mb": opt(r.rss_anon_mb),
                "in_use_mb": opt(r.in_use_mb),
                "series_memory": r.series.as_ref().map_or(Value::Null, |sm| json!({
                    "requests": sm.requested,
                    "series": sm.series,
                    "rss_anon_added_mb": opt(Some(sm.rss_anon_added as f64 / 1048576.0)),
                    "in_use_added_mb": opt(Some(sm.in_use_added as f64 / 1048576.0)),
                })),
                "rps_vs_baseline": opt(r.rps_vs_bare),
                "rps": opt(r.rps),
                "rps_vs_bare": opt(r.rps_vs_bare),
                "cpu_us_per_request": opt(r.cpu_us),
                "cpu_us_per_request_schedstat": opt(r.cpu_us_sched),
                "cpu_vs_bare": opt(r.cpu_vs_bare),
                "extra_cpu_us_per_request": opt(r.extra_us),
                "extra_cpu_us_half_iqr": opt(r.extra_spread_us),
                "extra_cpu_us_per_request_schedstat": opt(r.extra_us_sched),
                "extra_cpu_us_by_round": r.extra_rounds.iter().map(|x| opt(Some(*x))).collect::<Vec<_>>(),
                "extra_cpu_ratio_to_native": opt(r.ratio_native),
                "rss_mb": opt(r.rss_mb),
                "rss_idle_mb": if m.rss_idle > 0 { opt(Some(m.rss_idle as f64 / 1048576.0)) } else { Value::Null },
                "rss_added_mb": opt(r.rss_added_mb),
                "latency_p50_us": opt(r.p50_us),
                "latency_p99_us": opt(r.p99_us),
                "latency_p50_added_us": opt(r.p50_added_us),
                "latency_p99_added_us": opt(r.p99_added_us),
                "latency_samples": r.latency_samples,
                "requests_measured": r.requests,
                "unexpected_statuses": r.unexpected_statuses,
                "socket_errors": r.socket_errors,
                "turns": m.turns.iter().map(|t| json!({
                    "round": t.round, "requests": t.requests, "cpu_ticks": t.ticks, "sched_ns": t.sched_ns,
                    "cpu_us_per_request": opt(Some(cpu_us(t, tps))), "rps": opt(Some(t.rps)),
                    "non_2xx_3xx": t.non_2xx_3xx, "socket_errors": t.socket_errors,
                })).collect::<Vec<_>>(),
                "stats": m.stats,
                "envoy_warnings": m.warnings,
            })
        })
        .collect();
    let targets: Vec<Value> = targets(&rows, &sizes)
        .iter()
        .map(|t| json!({"target": t.text, "measured": t.measured, "result": verdict(t.pass)}))
        .collect();
    let o = &run.options;
    json!({
        "benchmark": "wasmixer-bench",
        "issue": 10,
        "mode": if o.quick { "quick" } else { "full" },
        "started": run.started,
        "elapsed_secs": opt(Some(run.elapsed_secs)),
        "machine": run.machine,
        "load_average_before": run.load_before,
        "load_average_after": run.load_after,
        "envoy": run.envoy_version,
        "wrk": run.wrk_version,
        "method": {
            "hop": if o.upstream { "inbound sidecar listener -> trivial backend Envoy (direct response) on the load core" } else { "inbound sidecar listener answering with a direct response (HTTP/1.1, keep-alive)" },
            "envoy": format!("every setup's Envoy running at once, --concurrency 1, pinned to core {} (taskset)", o.envoy_core),
            "load": format!(
                "wrk -t{} -c{} for {} s per setup per round, pinned to core {}; {}",
                o.wrk_threads,
                o.connections,
                o.turn_secs,
                o.load_core,
                if o.together {
                    format!("every setup loaded at the same time (--together), its Envoy sharing core {} with the others", o.envoy_core)
                } else {
                    "setups taken in rotating order".to_string()
                }
            ),
            "cpu": "utime+stime of the Envoy process (/proc/<pid>/stat, all threads) over the turn / requests it completed (http.ingress.downstream_rq_completed); schedstat figures are the threads' /proc/<pid>/task/*/schedstat run time",
            "extra": "per round, setup minus bare Envoy; median over rounds",
            "latency": format!("{} req/s over 4 keep-alive connections for {} s x {} round(s) per setup; time from writing the request to the end of the response", o.rate, o.latency_secs, o.latency_rounds),
            "rss": "VmRSS after the measurement rounds",
            "clock_ticks_per_sec": run.ticks_per_sec,
        },
        "options": {"rounds": o.rounds, "turn_secs": o.turn_secs, "connections": o.connections, "wrk_threads": o.wrk_threads, "rate": o.rate, "latency_secs": o.latency_secs, "latency_rounds": o.latency_rounds, "warmup_ms": o.warmup.as_millis() as u64, "upstream": o.upstream, "together": o.together},
        "setups": setups,
        "wasm_sizes_bytes": sizes.files.iter().map(|(n, b)| (n.clone(), json!(b))).collect::<serde_json::Map<String, Value>>(),
        "expression_benchmark": expr_summary(run).map(|(v, _)| v),
        "diagnostics": diagnostics(&rows),
        "targets": targets,
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Horizontal bars of CPU per request: bare Envoy's share in grey, the extra in the setup's
/// colour (wasm blue, native orange, Lua green).
fn svg(run: &Run) -> String {
    let all = rows(run);
    // One bar per single-Envoy setup; the two-sidecar ones (two Envoys' CPU) go in a note.
    let rows: Vec<Row> = all.iter().filter(|r| r.measured && r.envoys <= 1).cloned().collect();
    let mesh: Vec<String> = all
        .iter()
        .filter(|r| r.measured && r.envoys > 1)
        .map(|r| {
            format!(
                "{} {:.1} µs ({})",
                r.name,
                r.cpu_us.unwrap_or(0.0),
                if r.baseline == "bare" {
                    "2 Envoys".to_string()
                } else {
                    format!("{} over {}", signed(r.extra_us, 1), r.baseline)
                }
            )
        })
        .collect();
    let bare = rows.first().and_then(|r| r.cpu_us).unwrap_or(0.0);
    let max = rows.iter().filter_map(|r| r.cpu_us).fold(1.0_f64, f64::max);
    let (label_w, bar_w, row_h, top) = (150.0, 560.0, 26.0, 58.0);
    let width = label_w + bar_w + 170.0;
    let note_h = if mesh.is_empty() { 0.0 } else { 20.0 };
    let height = top + rows.len() as f64 * row_h + 46.0 + note_h;
    let scale = bar_w / (max * 1.05);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="15" font-weight="bold">Envoy CPU per request (µs, median over {} rounds; lower is better)</text>"#,
        run.options.rounds
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="38" fill="#555">{}</text>"##,
        esc(&format!(
            "Envoy {} pinned to one core, wrk -c{} on the other; {}; {}",
            run.envoy_version.split('/').nth(1).unwrap_or(""),
            run.options.connections,
            run.started,
            run.machine
        ))
    );
    // At most about ten grid lines.
    let step = [1.0, 2.0, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0, 200.0]
        .into_iter()
        .find(|st| max * 1.05 / st <= 10.0)
        .unwrap_or(500.0);
    let mut g = 0.0;
    while g <= max * 1.05 {
        let x = label_w + g * scale;
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#e3e3e3"/>"##,
            top - 6.0,
            top + rows.len() as f64 * row_h
        );
        let _ = writeln!(
            s,
            r##"<text x="{x:.1}" y="{:.1}" fill="#777" text-anchor="middle">{g:.0}</text>"##,
            top + rows.len() as f64 * row_h + 14.0
        );
        g += step;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let cpu = r.cpu_us.unwrap_or(0.0);
        let color = match r.kind.as_str() {
            "wasm" => "#2f6fb3",
            "native" => "#e08a1e",
            "lua" => "#3a9a4a",
            _ => "#8a8a8a",
        };
        let base = cpu.min(bare);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            label_w - 8.0,
            y + 15.0,
            esc(&r.name)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{label_w}" y="{:.1}" width="{:.1}" height="18" fill="#bdbdbd"/>"##,
            y + 2.0,
            base * scale
        );
        if cpu > bare && r.kind != "baseline" {
            let _ = writeln!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="18" fill="{color}"/>"#,
                label_w + base * scale,
                y + 2.0,
                (cpu - bare) * scale
            );
        }
        let label =
            if r.kind == "baseline" { format!("{cpu:.2}") } else { format!("{cpu:.2} ({})", signed(r.extra_us, 2)) };
        let _ =
            writeln!(s, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, label_w + cpu * scale + 6.0, y + 15.0, esc(&label));
    }
    if !mesh.is_empty() {
        let _ = writeln!(
            s,
            r##"<text x="10" y="{:.1}" fill="#555">{}</text>"##,
            height - 36.0,
            esc(&format!("Two sidecars over mTLS (CPU of both Envoys): {}", mesh.join("; ")))
        );
    }
    let ly = height - 14.0;
    for (k, (name, color)) in [
        ("bare Envoy", "#bdbdbd"),
        ("wasmixer extra", "#2f6fb3"),
        ("native extra", "#e08a1e"),
        ("Lua extra", "#3a9a4a"),
    ]
    .iter()
    .enumerate()
    {
        let x = 10.0 + k as f64 * 150.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{:.1}" width="12" height="12" fill="{color}"/><text x="{:.1}" y="{:.1}">{name}</text>"#,
            ly - 10.0,
            x + 16.0,
            ly
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The Markdown table the README shows.
fn markdown(run: &Run) -> String {
    let rows = rows(run);
    let sizes = wasm_sizes(run);
    let mut m = String::new();
    let _ = writeln!(m, "{}\n", header_line(run));
    let _ = writeln!(m, "| setup | RPS | CPU µs/req | extra µs | × bare | vs native | RSS MB | p50 µs | p99 µs |");
    let _ = writeln!(m, "|---|---:|---:|---:|---:|---|---:|---:|---:|");
    for (i, r) in rows.iter().enumerate() {
        if !r.measured {
            let _ = writeln!(
                m,
                "| {} | {} | | | | | | | |",
                r.name,
                r.status.chars().take(80).collect::<String>().replace('|', "/")
            );
            continue;
        }
        let native = match (&r.native, r.ratio_native) {
            (Some(n), Some(x)) => format!("×{x:.2} of {n}"),
            _ => String::new(),
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            f(r.rps, 0),
            f(r.cpu_us, 2),
            if i == 0 { "".into() } else { format!("{} ± {}", signed(r.extra_us, 2), f(r.extra_spread_us, 2)) },
            f(r.cpu_vs_bare, 2),
            native,
            f(r.rss_mb, 1),
            f(r.p50_us, 0),
            f(r.p99_us, 0)
        );
    }
    for r in rows.iter().filter(|r| r.measured && r.baseline != "bare" && !r.baseline.is_empty()) {
        let _ = writeln!(
            m,
            "\n{}: extra µs and × are against {} (same round); RSS and CPU are the sum of its {} Envoys.",
            r.name, r.baseline, r.envoys
        );
    }
    let _ = writeln!(m, "\n| target | result | measured |");
    let _ = writeln!(m, "|---|---|---|");
    for t in targets(&rows, &sizes) {
        let _ =
            writeln!(m, "| {} | {} | {} |", t.text.replace('|', "/"), verdict(t.pass), t.measured.replace('|', "/"));
    }
    let diag = diagnostics(&rows);
    if !diag.is_empty() {
        let _ = writeln!(m, "\nWhere the Wasm time goes (calibration setups):\n");
        for d in diag {
            let _ = writeln!(m, "- {d}");
        }
    }
    if let Some((_, line)) = expr_summary(run) {
        let _ = writeln!(m, "\n{line}");
    }
    m
}

pub fn write_all(run: &Run) -> Result<Vec<PathBuf>, String> {
    let out =
        if run.options.out.is_absolute() { run.options.out.clone() } else { run.workspace.join(&run.options.out) };
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut written = Vec::new();
    // Quick and --together runs keep their own files, so the full run's stay the reference.
    let suffix = match (run.options.quick, run.options.together) {
        (true, true) => "-quick-together",
        (true, false) => "-quick",
        (false, true) => "-together",
        (false, false) => "",
    };
    let json_path = out.join(format!("latest{suffix}.json"));
    let text = serde_json::to_string_pretty(&to_json(run)).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    written.push(json_path);
    let svg_path = out.join(format!("cpu-per-request{suffix}.svg"));
    std::fs::write(&svg_path, svg(run)).map_err(|e| format!("{}: {e}", svg_path.display()))?;
    written.push(svg_path);
    let md_path = out.join(format!("latest{suffix}.md"));
    let md = markdown(run);
    std::fs::write(&md_path, &md).map_err(|e| format!("{}: {e}", md_path.display()))?;
    written.push(md_path);
    if run.options.readme && suffix.is_empty() {
        let readme = run.workspace.join("bench/README.md");
        if let Ok(text) = std::fs::read_to_string(&readme) {
            if let (Some(a), Some(b)) = (text.find(README_START), text.find(README_END)) {
                if a < b {
                    let new =
                        format!("{}{README_START}\n{md}{}", text.get(..a).unwrap_or(""), text.get(b..).unwrap_or(""));
                    std::fs::write(&readme, new).map_err(|e| format!("{}: {e}", readme.display()))?;
                    written.push(readme);
                }
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setups::Kind;

    #[test]
    fn medians_and_spread() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN]), None);
        assert_eq!(half_iqr(&[1.0, 2.0, 3.0, 4.0, 5.0]), Some(1.0));
        assert_eq!(percentile_us(&[1000, 2000, 3000, 4000], 50.0), Some(2.0));
        assert_eq!(percentile_us(&[1000, 2000, 3000, 4000], 99.0), Some(4.0));
        assert_eq!(
            pretty_stat("wasmcustom.rule=.=r.rule.default;.;result=.=error;.;wasmixer_policy_checks_total"),
            "wasmixer_policy_checks_total{rule=\"r.rule.default\",result=\"error\"}"
        );
        assert_eq!(pretty_stat("http.ingress.rbac.allowed"), "http.ingress.rbac.allowed");
    }

    #[test]
    fn kinds_have_names() {
        assert_eq!(Kind::Wasm.name(), "wasm");
    }
}
