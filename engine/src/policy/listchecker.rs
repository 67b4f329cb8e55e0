//! Mixer's `listchecker` adapter (`mixer/adapter/list`): white/black lists of strings,
//! case-insensitive strings, IP networks or regular expressions, static (`overrides`) and/or
//! fetched from `provider_url`, kept per `refresh_interval` / `ttl`.

use std::fmt;

use hashbrown::HashSet;
use serde_json::Value as Json;

use super::status::Status;
use crate::expr::regex_syntax::{go_regex, Regex};
use crate::expr::Value;
use crate::gostd::duration::parse_duration;
use crate::gostd::net_ip::{cidr_contains, parse_cidr, IpBytes};
use crate::gostd::strings::to_upper;

const PERMISSION_DENIED: i32 = 7;
const INVALID_ARGUMENT: i32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryType {
    Strings,
    CaseInsensitiveStrings,
    IpAddresses,
    Regex,
}

/// The handler's parameters, with Mixer's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ListParams {
    pub provider_url: Option<String>,
    /// Envoy cluster to fetch `provider_url` through (wasmixer extension; default: the URL's host).
    pub provider_cluster: Option<String>,
    pub refresh_interval_ns: i64,
    pub ttl_ns: i64,
    pub overrides: Vec<String>,
    pub entry_type: EntryType,
    pub blacklist: bool,
    /// The largest list body accepted from `provider_url` (wasmixer extension): a bigger one is
    /// a fetch error, so a runaway provider cannot exhaust the filter's memory.
    pub max_list_bytes: usize,
}

const SECOND: i64 = 1_000_000_000;
/// Default of `max_list_bytes`: about 300,000 names or 200,000 IPv4 networks. Each worker
/// compiles a changed list, serving nothing meanwhile, in time that grows with the list
/// (docs/deny.md gives a measured figure).
pub const DEFAULT_MAX_LIST_BYTES: usize = 4 << 20;
/// The most `max_list_bytes` may be: the filter's linear memory is 4 GiB at most, and a
/// compiled list takes several times its text.
pub const MAX_LIST_BYTES_LIMIT: usize = 256 << 20;

fn duration_param(params: &Json, names: &[&str], default: i64) -> Result<i64, String> {
    match names.iter().find_map(|n| params.get(*n)) {
        None | Some(Json::Null) => Ok(default),
        Some(Json::String(s)) => parse_duration(s).map_err(|e| format!("{}: {e}", names.first().unwrap_or(&""))),
        Some(other) => Err(format!(
            "{}: expected a duration string such as \"60s\", got {}",
            names.first().unwrap_or(&""),
            crate::config::json_text(other)
        )),
    }
}

impl ListParams {
    /// Reads `params` (snake_case or camelCase keys, as Mixer's jsonpb accepted).
    pub fn from_json(params: &Json) -> Result<ListParams, String> {
        let get = |names: &[&str]| names.iter().find_map(|n| params.get(*n)).filter(|v| !v.is_null());
        let entry_type = match get(&["entry_type", "entryType"]) {
            None => EntryType::Strings,
            Some(v) => match (v.as_str(), v.as_i64()) {
                (Some("STRINGS"), _) | (_, Some(0)) => EntryType::Strings,
                (Some("CASE_INSENSITIVE_STRINGS"), _) | (_, Some(1)) => EntryType::CaseInsensitiveStrings,
                (Some("IP_ADDRESSES"), _) | (_, Some(2)) => EntryType::IpAddresses,
                (Some("REGEX"), _) | (_, Some(3)) => EntryType::Regex,
                _ => {
                    return Err(format!(
                        "entryType: unknown value {} (STRINGS, CASE_INSENSITIVE_STRINGS, IP_ADDRESSES, REGEX)",
                        crate::config::json_text(v)
                    ))
                }
            },
        };
        let overrides = match get(&["overrides"]) {
            None => Vec::new(),
            Some(Json::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        format!("overrides: entries must be strings, got {}", crate::config::json_text(v))
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(format!("overrides: expected a list of strings, got {}", crate::config::json_text(other)))
            }
        };
        let provider_url =
            get(&["provider_url", "providerUrl"]).and_then(Json::as_str).map(str::to_string).filter(|s| !s.is_empty());
        let provider_cluster = get(&["provider_cluster", "providerCluster"]).and_then(Json::as_str).map(str::to_string);
        let refresh_interval_ns = duration_param(params, &["refresh_interval", "refreshInterval"], 60 * SECOND)?;
        let ttl_ns = duration_param(params, &["ttl"], 300 * SECOND)?;
        let blacklist = get(&["blacklist"]).and_then(Json::as_bool).unwrap_or(false);
        let max_list_bytes = match get(&["max_list_bytes", "maxListBytes"]) {
            None => DEFAULT_MAX_LIST_BYTES,
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=MAX_LIST_BYTES_LIMIT).contains(n))
                .ok_or_else(|| {
                    format!(
                        "max_list_bytes: expected a byte count from 1 to {MAX_LIST_BYTES_LIMIT}, got {}",
                        crate::config::json_text(v)
                    )
                })?,
        };
        let p = ListParams {
            provider_url,
            provider_cluster,
            refresh_interval_ns,
            ttl_ns,
            overrides,
            entry_type,
            blacklist,
            max_list_bytes,
        };
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<(), String> {
        if self.provider_url.is_some() {
            if self.refresh_interval_ns < SECOND {
                return Err("refresh_interval: must be at least 1s when provider_url is set".into());
            }
            if self.ttl_ns < self.refresh_interval_ns {
                return Err("ttl: must be > refresh_interval".into());
            }
        }
        // Overrides are checked now, as Mixer did for IP overrides.
        List::build(self.entry_type, self.overrides.iter().map(String::as_str)).map(|_| ())
    }

    /// The Envoy cluster that serves `provider_url`.
    pub fn fetch_cluster(&self) -> Option<String> {
        if let Some(c) = &self.provider_cluster {
            return Some(c.clone());
        }
        let url = self.provider_url.as_deref()?;
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        Some(rest.split(['/', '?']).next().unwrap_or(rest).to_string())
    }
}

/// A compiled list.
#[derive(Clone, Debug, Default)]
pub struct List {
    strings: HashSet<String>,
    networks: Vec<(IpBytes, u8)>,
    regexes: Vec<Regex>,
    entry_type: Option<EntryType>,
}

impl List {
    /// How many entries the list holds.
    pub fn len(&self) -> usize {
        self.strings.len() + self.networks.len() + self.regexes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Compiles entries of the given type.
    pub fn build<'e>(entry_type: EntryType, entries: impl Iterator<Item = &'e str>) -> Result<List, String> {
        let mut list = List { entry_type: Some(entry_type), ..List::default() };
        for e in entries {
            match entry_type {
                EntryType::Strings => {
                    list.strings.insert(e.to_string());
                }
                EntryType::CaseInsensitiveStrings => {
                    list.strings.insert(to_upper(e).into_owned());
                }
                EntryType::IpAddresses => {
                    // An entry without a mask gets /32, even for IPv6 (Mixer's quirk).
                    let cidr = if e.contains('/') { e.to_string() } else { format!("{e}/32") };
                    let net = parse_cidr(&cidr).ok_or_else(|| format!("could not parse ip address override {e}"))?;
                    list.networks.push(net);
                }
                EntryType::Regex => {
                    list.regexes.push(go_regex(e).map_err(|err| format!("could not compile regex {e}: {err}"))?)
                }
            }
        }
        Ok(list)
    }

    /// Compiles a fetched list body plus the overrides.
    pub fn from_body(params: &ListParams, body: &str) -> Result<List, String> {
        let fetched: Vec<&str> = match params.entry_type {
            EntryType::IpAddresses => parse_whitelist_yaml(body),
            _ => body.split('\n').map(|l| l.trim_end_matches('\r')).filter(|l| !l.is_empty()).collect(),
        };
        List::build(params.entry_type, fetched.into_iter().chain(params.overrides.iter().map(String::as_str)))
    }

    fn contains(&self, value: &str) -> Result<bool, Status> {
        match self.entry_type.unwrap_or(EntryType::Strings) {
            EntryType::Strings => Ok(self.strings.contains(value)),
            EntryType::CaseInsensitiveStrings => Ok(self.strings.contains(&*to_upper(value))),
            EntryType::IpAddresses => {
                let ip = IpBytes::parse(value).ok_or_else(|| Status {
                    code: INVALID_ARGUMENT,
                    message: format!("{value} is not a valid IP address"),
                })?;
                Ok(self.networks.iter().any(|(net, prefix)| cidr_contains(net, *prefix, &ip)))
            }
            EntryType::Regex => Ok(self.regexes.iter().any(|r| r.is_match(value))),
        }
    }
}

/// The IP list format: YAML `whitelist: [a, b]` or a `whitelist:` block of `- a` items.
fn parse_whitelist_yaml(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in body.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("whitelist:") {
            let rest = rest.trim();
            if let Some(inner) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                out.extend(inner.split(',').map(|s| s.trim().trim_matches(['"', '\''])).filter(|s| !s.is_empty()));
                in_block = false;
            } else {
                in_block = true;
            }
        } else if in_block {
            match t.strip_prefix('-') {
                Some(item) => out.push(item.trim().trim_matches(['"', '\''])),
                None if t.is_empty() => {}
                None => in_block = false,
            }
        }
    }
    out
}

/// Checks an instance value against the list: OK, or the denial Mixer gave.
pub fn check(params: &ListParams, list: &List, value: &Value<'_>) -> Status {
    let mut ip_text = String::new();
    let text = match value {
        Value::IpAddress(ip) => {
            ip.write_to(&mut ip_text);
            ip_text.as_str()
        }
        v => match v.as_str() {
            Some(s) => s,
            None => {
                return Status {
                    code: INVALID_ARGUMENT,
                    message: format!("{} is not a valid string or IP address", debug_value(v)),
                }
            }
        },
    };
    let found = match list.contains(text) {
        Ok(f) => f,
        Err(status) => return status,
    };
    match (found, params.blacklist) {
        (true, true) => Status { code: PERMISSION_DENIED, message: format!("{text} is blacklisted") },
        (false, false) => Status { code: PERMISSION_DENIED, message: format!("{text} is not whitelisted") },
        _ => Status::default(),
    }
}

fn debug_value(v: &Value<'_>) -> String {
    match v {
        Value::Int64(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// A fetched list over time: the last good list is kept on fetch errors until `ttl` passes.
#[derive(Debug, Default)]
pub struct FetchedList {
    list: Option<List>,
    /// Hash of the body `list` was built from: an unchanged list is not compiled again (a big
    /// list takes a worker a noticeable time to compile, during which it serves nothing).
    body_hash: u64,
    fetched_at_ns: i64,
    last_error: Option<String>,
}

fn body_hash(body: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

/// What became of one fetch of a provider's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A new list is in force.
    Ok { entries: usize },
    /// The call could not be sent (no such cluster).
    NotSent,
    /// No answer (timeout, connection failure).
    NoAnswer,
    /// An answer other than 200.
    HttpError(String),
    /// A body over `max_list_bytes`, not read.
    TooLarge { bytes: usize, max: usize },
    /// The body is not a valid list of the handler's entry type.
    Rejected(String),
}

impl FetchOutcome {
    /// The `result` label of `wasmixer_policy_list_fetches_total`.
    pub fn result(&self) -> &'static str {
        match self {
            FetchOutcome::Ok { .. } => "ok",
            FetchOutcome::NotSent => "not_sent",
            FetchOutcome::NoAnswer => "no_answer",
            FetchOutcome::HttpError(_) => "http_error",
            FetchOutcome::TooLarge { .. } => "too_large",
            FetchOutcome::Rejected(_) => "rejected",
        }
    }
}

impl fmt::Display for FetchOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchOutcome::Ok { entries } => write!(f, "{entries} entries"),
            FetchOutcome::NotSent => f.write_str("the call could not be sent (is the cluster defined?)"),
            FetchOutcome::NoAnswer => f.write_str("no answer (timeout or connection failure)"),
            FetchOutcome::HttpError(status) => write!(f, "HTTP status {status}"),
            FetchOutcome::TooLarge { bytes, max } => write!(f, "a list of {bytes} bytes, over max_list_bytes {max}"),
            FetchOutcome::Rejected(e) => write!(f, "invalid list: {e}"),
        }
    }
}

impl FetchedList {
    /// Takes the answer to a fetch: its `:status` (`None` without an answer), its body size, and
    /// how to read the body (only done when the answer is a 200 within `max_list_bytes`).
    pub fn on_response(
        &mut self,
        params: &ListParams,
        status: Option<&str>,
        body_size: usize,
        read_body: impl FnOnce() -> Vec<u8>,
        now_ns: i64,
    ) -> FetchOutcome {
        let outcome = match status.filter(|s| !s.is_empty()) {
            None => FetchOutcome::NoAnswer,
            Some("200") if body_size > params.max_list_bytes => {
                FetchOutcome::TooLarge { bytes: body_size, max: params.max_list_bytes }
            }
            Some("200") => self.install(params, &read_body(), now_ns),
            Some(other) => FetchOutcome::HttpError(other.to_string()),
        };
        if !matches!(outcome, FetchOutcome::Ok { .. }) {
            self.on_fetch_error(&outcome);
        }
        outcome
    }

    /// Puts the list in `body` in force (compiling it only if the body changed).
    fn install(&mut self, params: &ListParams, body: &[u8], now_ns: i64) -> FetchOutcome {
        let hash = body_hash(body);
        if self.list.is_none() || hash != self.body_hash {
            match List::from_body(params, &String::from_utf8_lossy(body)) {
                Ok(list) => {
                    self.list = Some(list);
                    self.body_hash = hash;
                }
                Err(e) => return FetchOutcome::Rejected(e),
            }
        }
        self.fetched_at_ns = now_ns;
        self.last_error = None;
        FetchOutcome::Ok { entries: self.list.as_ref().map_or(0, List::len) }
    }

    /// Records a failed fetch: the last good list stays in force until `ttl` passes.
    pub fn on_fetch_error(&mut self, outcome: &FetchOutcome) {
        self.last_error = Some(format!("list fetch failed: {outcome}"));
    }

    /// The list in force at `now_ns`; after `ttl` without a good fetch, none (and the error).
    pub fn current(&mut self, params: &ListParams, now_ns: i64) -> Result<&List, String> {
        if self.list.is_some() && now_ns.saturating_sub(self.fetched_at_ns) > params.ttl_ns {
            self.list = None;
        }
        let error = self.last_error.clone().unwrap_or_else(|| "list not fetched yet".to_string());
        self.list.as_ref().ok_or(error)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use std::borrow::Cow;

    fn s(v: &str) -> Value<'static> {
        Value::String(Cow::Owned(v.to_string()))
    }

    #[test]
    fn whitelist_of_versions() {
        let p = ListParams::from_json(&json!({"overrides": ["v1", "v2"], "blacklist": false})).unwrap();
        let l = List::build(p.entry_type, p.overrides.iter().map(String::as_str)).unwrap();
        assert!(check(&p, &l, &s("v1")).is_ok());
        assert_eq!(check(&p, &l, &s("v3")), Status { code: 7, message: "v3 is not whitelisted".into() });
    }

    #[test]
    fn blacklist_case_insensitive_and_regex() {
        let p = ListParams::from_json(
            &json!({"overrides": ["Bad"], "blacklist": true, "entryType": "CASE_INSENSITIVE_STRINGS"}),
        )
        .unwrap();
        let l = List::build(p.entry_type, p.overrides.iter().map(String::as_str)).unwrap();
        assert_eq!(check(&p, &l, &s("bAD")).message, "bAD is blacklisted");
        let p = ListParams::from_json(&json!({"overrides": ["^v[0-9]$"], "entry_type": "REGEX"})).unwrap();
        let l = List::build(p.entry_type, p.overrides.iter().map(String::as_str)).unwrap();
        assert!(check(&p, &l, &s("v3")).is_ok());
        assert!(!check(&p, &l, &s("v33")).is_ok());
    }

    #[test]
    fn ip_networks() {
        let p = ListParams::from_json(&json!({"overrides": ["10.57.0.0/16", "1.2.3.4"], "entryType": "IP_ADDRESSES"}))
            .unwrap();
        let l = List::build(p.entry_type, p.overrides.iter().map(String::as_str)).unwrap();
        assert!(check(&p, &l, &Value::IpAddress(IpBytes::parse("10.57.3.4").unwrap())).is_ok());
        assert!(check(&p, &l, &s("1.2.3.4")).is_ok());
        assert_eq!(check(&p, &l, &s("nope")), Status { code: 3, message: "nope is not a valid IP address".into() });
        assert!(ListParams::from_json(&json!({"overrides": ["10.0.0.0/99"], "entryType": "IP_ADDRESSES"})).is_err());
        assert_eq!(check(&p, &l, &Value::Int64(3)).message, "3 is not a valid string or IP address");
    }

    fn answer(f: &mut FetchedList, p: &ListParams, status: Option<&str>, body: &str, now: i64) -> FetchOutcome {
        f.on_response(p, status, body.len(), || body.as_bytes().to_vec(), now)
    }

    #[test]
    fn fetched_body_formats_and_ttl() {
        let p = ListParams::from_json(&json!({"provider_url": "http://lists/ips", "refresh_interval": "1s", "ttl": "10s", "entryType": "IP_ADDRESSES"})).unwrap();
        assert_eq!(p.fetch_cluster().as_deref(), Some("lists"));
        let mut f = FetchedList::default();
        assert!(f.current(&p, 0).is_err());
        let body = "whitelist:\n- 10.0.0.0/8\n- \"192.168.0.0/16\"\n";
        assert_eq!(answer(&mut f, &p, Some("200"), body, 0), FetchOutcome::Ok { entries: 2 });
        assert!(f.current(&p, 5 * SECOND).is_ok());
        assert_eq!(answer(&mut f, &p, None, "", 6 * SECOND), FetchOutcome::NoAnswer);
        assert!(f.current(&p, 9 * SECOND).is_ok(), "last good list kept");
        assert_eq!(
            f.current(&p, 11 * SECOND).err().as_deref(),
            Some("list fetch failed: no answer (timeout or connection failure)")
        );
        assert_eq!(parse_whitelist_yaml("whitelist: [1.1.1.1, \"2.2.2.2\"]"), ["1.1.1.1", "2.2.2.2"]);
    }

    #[test]
    fn failed_fetches_keep_the_last_good_list_and_say_why() {
        let p = ListParams::from_json(
            &json!({"provider_url": "http://lists/re", "max_list_bytes": 64, "entryType": "REGEX"}),
        )
        .unwrap();
        let mut f = FetchedList::default();
        assert_eq!(answer(&mut f, &p, Some("200"), "^a\n^b\n", 0), FetchOutcome::Ok { entries: 2 });
        assert_eq!(answer(&mut f, &p, Some("503"), "busy", 1), FetchOutcome::HttpError("503".into()));
        assert_eq!(answer(&mut f, &p, Some("200"), "(\n", 2).result(), "rejected");
        let mut read = false;
        let huge = f.on_response(
            &p,
            Some("200"),
            1 << 30,
            || {
                read = true;
                Vec::new()
            },
            3,
        );
        assert!(!read, "a body over max_list_bytes is never read");
        assert_eq!(huge, FetchOutcome::TooLarge { bytes: 1 << 30, max: 64 });
        assert_eq!(huge.to_string(), "a list of 1073741824 bytes, over max_list_bytes 64");
        assert!(f.current(&p, 4).is_ok(), "the first list is still in force");
        // The same body again: the list in force is kept (not compiled again) and its ttl restarts.
        let ttl = p.ttl_ns;
        assert_eq!(answer(&mut f, &p, Some("200"), "^a\n^b\n", ttl), FetchOutcome::Ok { entries: 2 });
        assert!(f.current(&p, 2 * ttl).is_ok());
        assert_eq!(answer(&mut f, &p, Some("200"), "^c\n", 2 * ttl), FetchOutcome::Ok { entries: 1 });
        assert_eq!(ListParams::from_json(&json!({})).unwrap().max_list_bytes, DEFAULT_MAX_LIST_BYTES);
        for bad in [json!(0), json!(-1), json!("1MB"), json!(MAX_LIST_BYTES_LIMIT + 1)] {
            let e = ListParams::from_json(&json!({"max_list_bytes": bad})).unwrap_err();
            assert!(e.starts_with("max_list_bytes: expected a byte count from 1 to 268435456, got"), "{e}");
        }
    }

    #[test]
    fn bad_params_are_rejected() {
        assert!(ListParams::from_json(&json!({"provider_url": "http://x", "refresh_interval": "100ms"})).is_err());
        assert!(ListParams::from_json(&json!({"entryType": "NOPE"})).is_err());
        assert!(ListParams::from_json(&json!({"overrides": ["("], "entryType": "REGEX"})).is_err());
    }
}
