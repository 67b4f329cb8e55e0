//! `make bench-instructions` (`wasmixer-bench --instructions`): the instructions Envoy executes
//! per request in each one-hop setup, counted by valgrind's callgrind.
//!
//! CPU time on a shared 2-core machine moves by several microseconds from run to run, more than
//! most of the differences the targets are about. An instruction count does not: the same
//! Envoy, configuration and requests give the same count to within 0.1 %, whatever else the
//! machine is doing. So each setup's Envoy runs under `valgrind --tool=callgrind` (one worker,
//! every thread counted, V8's generated code included), is warmed up, and then gets one
//! keep-alive connection of `wrk` for a few seconds between `callgrind_control --zero` and
//! `--dump`; instructions divided by the requests wrk completed is the figure. Rounds repeat
//! that and the smallest is kept (background work such as V8's finishing compilation only ever
//! adds). Instructions are not time (cache misses, syscalls in the kernel are not in them), but
//! for comparing one filter with another, or with Envoy's native ones, they are the stable
//! measure. `≈ µs` scales them by bare Envoy's CPU time at the reference speed; that time
//! includes the kernel's share of bare Envoy's work, which a filter does not add, so read it as
//! a rough upper figure. Absolute limits in µs are judged by the CPU run only.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::envoy::{self, Envoy};
use crate::setups::{self, Setup};
use crate::{load, report, wasm_functions, Options, Unit};

/// Seconds of load per counted round, and the rounds per setup.
const ROUND_SECS: u32 = 3;
const ROUNDS: usize = 2;
/// Envoy under valgrind: V8 compiling a 600 KB module takes about a minute.
const START_TIMEOUT: Duration = Duration::from_secs(600);

const README_START: &str = "<!-- bench:instructions:start -->";
const README_END: &str = "<!-- bench:instructions:end -->";

/// One setup's count.
#[derive(Clone, Debug, Default)]
pub struct Counted {
    pub name: String,
    pub baseline: String,
    pub native: Option<String>,
    pub skipped: Option<String>,
    /// Instructions per request, one per round.
    pub rounds: Vec<f64>,
    pub requests: u64,
    pub start_secs: f64,
    /// `--functions`: where the modules' own code spent its instructions.
    pub functions: Option<String>,
}

impl Counted {
    fn per_request(&self) -> Option<f64> {
        self.rounds.iter().copied().filter(|x| x.is_finite()).reduce(f64::min)
    }
}

/// The one-hop setups (two-sidecar and memory-only setups are left to the CPU run).
fn countable(s: &Setup) -> bool {
    s.client.is_none() && s.series_fill == 0 && s.unavailable.is_none()
}

pub fn run(o: &Options, root: &Path, envoy_bin: &str) -> Result<Vec<Counted>, String> {
    let tool = Command::new("valgrind").arg("--version").output().map(|x| x.stdout).unwrap_or_default();
    if !String::from_utf8_lossy(&tool).contains("valgrind") {
        return Err("valgrind is not on PATH: run `make setup` (bash .ci/install installs Debian's valgrind)".into());
    }
    let dir = std::env::temp_dir().join(format!("wasmixer-instructions-{}", std::process::id()));
    let every = crate::all_setups(o, root, &dir)?;
    let order: Vec<&'static str> = every.iter().map(|s| s.name).collect();
    let mut setups = crate::chosen_setups(o, every.clone())?;
    // A named setup also brings the native one it is compared with.
    let natives: Vec<&str> = setups.iter().filter_map(|s| s.native).collect();
    let missing: Vec<Setup> =
        every.into_iter().filter(|s| natives.contains(&s.name) && !setups.iter().any(|x| x.name == s.name)).collect();
    setups.extend(missing);
    setups.retain(countable);
    println!(
        "wasmixer-bench --instructions: {} one-hop setups under callgrind, two at a time (cores {} and {}); {ROUNDS} rounds of {ROUND_SECS}s on one connection each",
        setups.len(),
        o.envoy_core,
        o.load_core
    );
    let queue = Mutex::new(setups.into_iter().collect::<VecDeque<Setup>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for core in [o.envoy_core, o.load_core] {
            let (queue, results, dir) = (&queue, &results, &dir);
            scope.spawn(move || {
                // The guard lives in the closure only: the queue is not locked while counting.
                while let Some(setup) = queue.lock().ok().and_then(|mut q| q.pop_front()) {
                    let t0 = Instant::now();
                    let counted = count(&setup, envoy_bin, core, dir, o.functions);
                    print_progress(&counted, t0.elapsed());
                    if let Some(f) = &counted.functions {
                        print!("{}", indent(f));
                    }
                    if let Ok(mut r) = results.lock() {
                        r.push(counted);
                    }
                }
            });
        }
    });
    if !o.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("kept {}", dir.display());
    }
    let mut counted = results.into_inner().map_err(|e| e.to_string())?;
    counted.sort_by_key(|c| order.iter().position(|n| *n == c.name).unwrap_or(usize::MAX));
    Ok(counted)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

fn print_progress(c: &Counted, took: Duration) {
    match (&c.skipped, c.per_request()) {
        (Some(why), _) => println!("  {:<17} SKIPPED {why}", c.name),
        (None, Some(ir)) => println!(
            "  {:<17} {ir:>9.0} instructions/request  (rounds: {}; started in {:.0}s, {:.0}s in all)",
            c.name,
            c.rounds.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", "),
            c.start_secs,
            took.as_secs_f64()
        ),
        (None, None) => println!("  {:<17} no count", c.name),
    }
}

/// Starts `setup`'s Envoy under callgrind on `core`, warms it up, checks that it does its work,
/// and counts `ROUNDS` rounds.
fn count(setup: &Setup, envoy_bin: &str, core: usize, dir: &Path, functions: usize) -> Counted {
    let mut c = Counted {
        name: setup.name.to_string(),
        baseline: setup.baseline.to_string(),
        native: setup.native.map(str::to_string),
        ..Counted::default()
    };
    if let Err(why) = count_into(&mut c, setup, envoy_bin, core, dir) {
        c.skipped = Some(why);
    }
    if functions > 0 && c.skipped.is_none() {
        c.functions =
            functions_report(&c, setup, dir, functions).unwrap_or_else(|e| Some(format!("no function report: {e}\n")));
    }
    c
}

/// `--functions`: the report of the round kept (the smallest), from its dump; `None` for a
/// setup without a Wasm module.
fn functions_report(c: &Counted, setup: &Setup, dir: &Path, top: usize) -> Result<Option<String>, String> {
    let modules = wasm_functions::setup_modules(&setup.filters);
    if modules.is_empty() {
        return Ok(None);
    }
    let mut named = Vec::new();
    for m in &modules {
        match wasm_functions::module_names(m)? {
            Some(n) => named.push(n),
            None => return Err(format!("{} has no name section (make profile-instructions builds one)", m.display())),
        }
    }
    let (round, per_request) = c
        .rounds
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_finite())
        .min_by(|a, b| a.1.total_cmp(b.1))
        .ok_or("no round")?;
    let path = dir.join(format!("{}.callgrind.{}", setup.name, round + 1));
    let dump = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let requests = summary_line(&dump).ok_or("dump without a summary")? as f64 / per_request;
    Ok(Some(wasm_functions::report(&dump, requests, &named, top)))
}

fn count_into(c: &mut Counted, setup: &Setup, envoy_bin: &str, core: usize, dir: &Path) -> Result<(), String> {
    let ports = envoy::free_ports(2)?;
    let (listener, admin) = (ports.first().copied().unwrap_or(0), ports.get(1).copied().unwrap_or(0));
    let bootstrap = setups::bootstraps(setup, &[setups::Ports { listener, admin, upstream: None }], dir, None)?;
    let bootstrap = bootstrap.first().ok_or("no bootstrap")?;
    let cfg = dir.join(format!("{}.json", setup.name));
    std::fs::write(&cfg, bootstrap.to_string()).map_err(|e| format!("{}: {e}", cfg.display()))?;
    let dumps = dir.join(format!("{}.callgrind", setup.name));
    let wrapper = [
        "valgrind".to_string(),
        "--tool=callgrind".to_string(),
        // V8 writes code at run time; without this valgrind would run stale translations.
        "--smc-check=all-non-file".to_string(),
        format!("--callgrind-out-file={}", dumps.display()),
    ];
    let t0 = Instant::now();
    let envoy = Envoy::start(&wrapper, setup.name, envoy_bin, &cfg, &core.to_string(), listener, admin, dir)?;
    let mut unit = Unit { envoys: vec![envoy] };
    let front = unit.envoys.first_mut().ok_or("no Envoy")?;
    front.wait_ready(START_TIMEOUT)?;
    c.start_secs = t0.elapsed().as_secs_f64();
    let addr = front.listener;
    let pid = front.pid;
    let counts = load::warm_up(addr, &setup.headers, 1, Duration::from_secs(2))?;
    let wrong: u64 = counts.iter().filter(|(st, _)| *st != setup.expect_status).map(|(_, n)| n).sum();
    if wrong > 0 {
        return Err(format!("expected status {}, got {}", setup.expect_status, crate::status_text(&counts)));
    }
    crate::verify(setup, &unit, dir).map_err(|e| format!("not built: {e}"))?;
    for round in 1..=ROUNDS {
        control(pid, "--zero")?;
        let w = load::spawn_wrk(addr, &setup.headers, 1, 1, ROUND_SECS, core, 0)?.finish()?;
        control(pid, "--dump")?;
        let ir = dumped_instructions(&dumps, round)?;
        c.requests += w.requests;
        c.rounds.push(if w.requests == 0 { f64::NAN } else { ir as f64 / w.requests as f64 });
    }
    Ok(())
}

/// `callgrind_control <what> <pid>`, retried: the command waits for valgrind to poll for it,
/// which a busy process may not do within the tool's own timeout.
fn control(pid: u32, what: &str) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..5 {
        let out = Command::new("callgrind_control")
            .arg(what)
            .arg(pid.to_string())
            .output()
            .map_err(|e| format!("callgrind_control: {e}"))?;
        last = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() && last.contains("OK") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(format!("callgrind_control {what} {pid}: {}", last.trim()))
}

/// The instruction total of dump number `n` (`<base>.<n>`), waiting for valgrind to write it.
fn dumped_instructions(base: &Path, n: usize) -> Result<u64, String> {
    let path = PathBuf::from(format!("{}.{n}", base.display()));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(total) = std::fs::read_to_string(&path).ok().as_deref().and_then(summary_line) {
            return Ok(total);
        }
        if Instant::now() > deadline {
            return Err(format!("no callgrind dump at {}", path.display()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `summary: <Ir>` line of a callgrind dump (the last line valgrind writes, so its presence
/// also says the file is complete).
fn summary_line(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("summary:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// A setup's computed figures.
#[derive(Clone, Debug, Default)]
pub struct Line {
    pub name: String,
    pub per_request: Option<f64>,
    pub extra: Option<f64>,
    pub times_baseline: Option<f64>,
    pub native: Option<String>,
    pub ratio_native: Option<f64>,
    /// `extra` in µs at the reference speed: extra × (bare Envoy's µs there / bare's count here).
    pub reference_us: Option<f64>,
    pub skipped: Option<String>,
}

pub fn lines(counted: &[Counted]) -> Vec<Line> {
    let per = |name: &str| counted.iter().find(|c| c.name == name).and_then(Counted::per_request);
    let bare = per("bare");
    let extra_of = |c: &Counted| Some(c.per_request()? - per(&c.baseline)?);
    counted
        .iter()
        .map(|c| {
            let extra = extra_of(c).filter(|_| c.name != c.baseline && c.name != "bare");
            let native_extra =
                c.native.as_deref().and_then(|n| counted.iter().find(|x| x.name == n)).and_then(extra_of);
            Line {
                name: c.name.clone(),
                per_request: c.per_request(),
                extra,
                times_baseline: c.per_request().zip(per(&c.baseline)).map(|(a, b)| a / b),
                native: c.native.clone(),
                ratio_native: extra.zip(native_extra).and_then(|(a, b)| (b > 0.0).then_some(a / b)),
                reference_us: extra.zip(bare).map(|(e, b)| e * report::REFERENCE_BARE_US / b),
                skipped: c.skipped.clone(),
            }
        })
        .collect()
}

/// The benchmark issue's targets as counts see them. The targets are CPU time and the CPU run
/// judges them; a count is a second opinion that does not move between runs (instructions
/// per µs differ between V8's code, Envoy's C++ and the kernel, so a ratio near 1 can fall on
/// either side in the two measures). Ratios get a verdict by count; absolute limits in µs
/// none (see `absolute`).
pub fn targets(lines: &[Line]) -> Vec<report::Target> {
    let get = |n: &str| lines.iter().find(|l| l.name == n && l.extra.is_some());
    let ratio = |text: &str, setup: &str, native: &str, limit: f64| match (get(setup), get(native)) {
        (Some(a), Some(b)) => {
            let r = a.extra.unwrap_or(f64::NAN) / b.extra.unwrap_or(f64::NAN);
            report::Target {
                text: text.into(),
                measured: format!(
                    "by count: {setup} +{:.0} vs {native} +{:.0} instructions: x{r:.2} (limit x{limit}; the CPU run's ratio is the target's)",
                    a.extra.unwrap_or(0.0),
                    b.extra.unwrap_or(0.0)
                ),
                pass: Some(r.is_finite() && r <= limit),
            }
        }
        _ => report::Target { text: text.into(), measured: "not counted".into(), pass: None },
    };
    // Instructions are not time (bare Envoy's figure includes the kernel's work, a filter's
    // does not), so an absolute limit in µs is left to the CPU run; the count is put against
    // the Wasm floor, which no Wasm filter can go below.
    let floor = get("wasm-floor").and_then(|f| f.extra);
    let absolute = |text: &str, setup: &str, limit: f64| match get(setup) {
        Some(a) => {
            let e = a.extra.unwrap_or(f64::NAN);
            let against_floor =
                floor.map(|f| format!(" = {:.2} x the Wasm floor (+{f:.0})", e / f)).unwrap_or_default();
            report::Target {
                text: text.into(),
                measured: format!(
                    "{setup} +{e:.0} instructions{against_floor}; ~{:.1} us scaled by bare Envoy (limit {limit} us): judged by the CPU run",
                    a.reference_us.unwrap_or(f64::NAN)
                ),
                pass: None,
            }
        }
        None => report::Target { text: text.into(), measured: "not counted".into(), pass: None },
    };
    let mut t = vec![
        ratio("deny filter (seed rule) <= native RBAC with CEL", "deny-seed", "rbac-seed", 1.0),
        ratio("deny filter (seed rule, verified peer, denying) <= native RBAC denying", "deny-peer", "rbac-match", 1.0),
        ratio("deny filter (rule on headers, denying) <= native RBAC denying", "deny-match", "rbac-match", 1.0),
        absolute("metrics filter (seed metric) <= 1.5 us extra", "metrics-seed", 1.5),
        absolute("metrics filter (standard metrics) <= 3 us extra", "metrics-standard", 3.0),
        ratio(
            "access-log filter (seed logentry) <= 2x native JSON access log",
            "access-log-seed",
            "native-json-log",
            2.0,
        ),
        absolute("all filters + peer metadata <= 5 us extra", "all-wasm", 5.0),
        absolute("all filters + peer metadata <= 5 us extra (mixer.wasm)", "mixer", 5.0),
    ];
    for all in ["all-wasm", "mixer"] {
        let text = format!("(stretch) {all} below the Lua filter");
        t.push(match (get(all), get("lua")) {
            (Some(a), Some(l)) => {
                let (ea, el) = (a.extra.unwrap_or(f64::NAN), l.extra.unwrap_or(f64::NAN));
                report::Target {
                    text,
                    measured: format!("{all} +{ea:.0} vs lua +{el:.0} instructions"),
                    pass: Some(ea < el),
                }
            }
            _ => report::Target { text, measured: "not counted".into(), pass: None },
        });
    }
    t
}

/// What the calibration setups price: the Wasm host's floor per filter and one host call.
pub fn calibration(lines: &[Line]) -> Vec<String> {
    let extra = |n: &str| lines.iter().find(|l| l.name == n).and_then(|l| l.extra);
    let mut out = Vec::new();
    if let Some(floor) = extra("wasm-floor") {
        out.push(format!(
            "Envoy's Wasm host: {floor:.0} instructions per request per filter before any filter logic (wasm-floor)"
        ));
        for (setup, what) in
            [("host-property-x10", "proxy_get_property"), ("host-header-x10", "proxy_get_header_map_value")]
        {
            if let Some(e) = extra(setup) {
                out.push(format!(
                    "one {what} call that returns a value: {:.0} instructions ({setup} minus the floor, over {})",
                    (e - floor) / setups::CALIBRATION_CALLS as f64,
                    setups::CALIBRATION_CALLS
                ));
            }
        }
    }
    out
}

fn cell(v: Option<f64>, fmt: impl Fn(f64) -> String) -> String {
    v.filter(|x| x.is_finite()).map(fmt).unwrap_or_default()
}

pub fn markdown(lines: &[Line], header: &str) -> String {
    let mut md = format!("{header}\n\n| setup | instructions/request | extra | × baseline | vs native | ≈ µs scaled by bare Envoy |\n|---|---:|---:|---:|---|---:|\n");
    for l in lines {
        if let Some(why) = &l.skipped {
            md.push_str(&format!("| {} | skipped: {} | | | | |\n", l.name, why.lines().next().unwrap_or("")));
            continue;
        }
        let vs = match (&l.native, l.ratio_native) {
            (Some(n), Some(r)) => format!("×{r:.2} of {n}"),
            _ => String::new(),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {vs} | {} |\n",
            l.name,
            cell(l.per_request, |x| format!("{x:.0}")),
            cell(l.extra, |x| format!("{x:+.0}")),
            cell(l.times_baseline, |x| format!("{x:.2}")),
            cell(l.reference_us, |x| format!("{x:.2}")),
        ));
    }
    md.push_str("\n| target | result | counted |\n|---|---|---|\n");
    for t in targets(lines) {
        let verdict = match t.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a",
        };
        md.push_str(&format!("| {} | {verdict} | {} |\n", t.text, t.measured));
    }
    let cal = calibration(lines);
    if !cal.is_empty() {
        md.push('\n');
        for c in cal {
            md.push_str(&format!("- {c}\n"));
        }
    }
    md
}

fn to_json(lines: &[Line], counted: &[Counted], header: &str) -> Value {
    json!({
        "run": header,
        "method": "instructions per request from valgrind's callgrind (all Envoy threads, one worker), minimum over rounds; reference_us scales extra instructions by bare Envoy's CPU time at the reference speed",
        "reference_bare_us": report::REFERENCE_BARE_US,
        "setups": lines.iter().zip(counted).map(|(l, c)| json!({
            "name": l.name,
            "skipped": l.skipped,
            "instructions_per_request": l.per_request,
            "rounds": c.rounds,
            "requests": c.requests,
            "extra_instructions": l.extra,
            "times_baseline": l.times_baseline,
            "baseline": c.baseline,
            "native": l.native,
            "ratio_native": l.ratio_native,
            "reference_us": l.reference_us,
        })).collect::<Vec<_>>(),
        "targets": targets(lines).into_iter().map(|t| json!({"target": t.text, "pass": t.pass, "counted": t.measured})).collect::<Vec<_>>(),
    })
}

/// Prints the table and writes `instructions.json` / `instructions.md` (and the README block
/// of a full run).
pub fn report(o: &Options, root: &Path, counted: &[Counted], header: &str) -> Result<Vec<PathBuf>, String> {
    let lines = lines(counted);
    let md = markdown(&lines, header);
    println!("\n{md}");
    let out = if o.out.is_absolute() { o.out.clone() } else { root.join(&o.out) };
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let suffix = if o.only.is_empty() { "" } else { "-only" };
    let mut written = Vec::new();
    let json_path = out.join(format!("instructions{suffix}.json"));
    let text = serde_json::to_string_pretty(&to_json(&lines, counted, header)).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    written.push(json_path);
    let md_path = out.join(format!("instructions{suffix}.md"));
    std::fs::write(&md_path, &md).map_err(|e| format!("{}: {e}", md_path.display()))?;
    written.push(md_path);
    let functions: String =
        counted.iter().filter_map(|c| Some(format!("{}\n{}\n", c.name, indent(c.functions.as_deref()?)))).collect();
    if !functions.is_empty() {
        let path = out.join(format!("instructions{suffix}-functions.txt"));
        std::fs::write(&path, format!("{header}\n\n{functions}")).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    if o.readme && o.only.is_empty() {
        let readme = root.join("bench/README.md");
        let text = std::fs::read_to_string(&readme).map_err(|e| format!("{}: {e}", readme.display()))?;
        if let (Some(a), Some(b)) = (text.find(README_START), text.find(README_END)) {
            if a < b {
                let new = format!("{}{README_START}\n{md}{}", text.get(..a).unwrap_or(""), text.get(b..).unwrap_or(""));
                std::fs::write(&readme, new).map_err(|e| format!("{}: {e}", readme.display()))?;
                written.push(readme);
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(name: &str, rounds: &[f64], native: Option<&str>) -> Counted {
        Counted {
            name: name.into(),
            baseline: "bare".into(),
            native: native.map(str::to_string),
            rounds: rounds.to_vec(),
            ..Counted::default()
        }
    }

    #[test]
    fn summary_line_is_the_dump_total() {
        assert_eq!(summary_line("events: Ir\nfn=x\n0 5\nsummary: 980018055\ntotals: 980242628\n"), Some(980018055));
        assert_eq!(summary_line("events: Ir\n"), None);
    }

    #[test]
    fn extra_is_over_the_baseline_and_ratios_over_the_native_extra() {
        let c = vec![
            counted("bare", &[70_100.0, 70_090.0], None),
            counted("rbac-seed", &[101_600.0], None),
            counted("deny-seed", &[100_300.0, 100_000.0], Some("rbac-seed")),
        ];
        let l = lines(&c);
        let deny = l.iter().find(|l| l.name == "deny-seed").cloned().unwrap_or_default();
        assert_eq!(deny.per_request, Some(100_000.0), "the smallest round");
        assert_eq!(deny.extra, Some(29_910.0));
        let r = deny.ratio_native.unwrap_or(0.0);
        assert!((r - 29_910.0 / 31_510.0).abs() < 1e-9, "{r}");
        let us = deny.reference_us.unwrap_or(0.0);
        assert!((us - 29_910.0 * report::REFERENCE_BARE_US / 70_090.0).abs() < 1e-9, "{us}");
        let t = targets(&l);
        assert_eq!(t.first().and_then(|t| t.pass), Some(true));
        assert!(l.iter().find(|l| l.name == "bare").is_some_and(|b| b.extra.is_none()));
    }
}
