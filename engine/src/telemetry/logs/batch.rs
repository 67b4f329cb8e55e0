//! The network sink's queue: lines batched for a collector, with a bounded buffer, one request
//! in flight, retries with exponential backoff and counters for everything that is lost.
//!
//! Pure logic, driven by the filter: streams [`BatchQueue::push`] lines from `on_log` (never
//! blocking: a full buffer drops the line and counts it); the root context asks
//! [`BatchQueue::next_payload`] on every tick and after every answer, dispatches the payload
//! with `dispatch_http_call`, and reports [`BatchQueue::sent`] / [`BatchQueue::dispatch_failed`]
//! / [`BatchQueue::on_response`]. Time is passed in (nanoseconds), so everything here is tested
//! without a proxy.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Write as _;

use super::options::{NetworkFormat, NetworkOptions};
use super::render::LineMeta;
use super::stdio::Level;
use crate::json_escape::write_json_string;

const MS: i64 = 1_000_000;
/// A request the host never answered is written off this long after its own timeout.
const WATCHDOG_SLACK_NS: i64 = 5_000 * MS;

/// The queue's settings, in nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchConfig {
    pub format: NetworkFormat,
    pub batch_lines: usize,
    pub batch_bytes: usize,
    pub flush_interval_ns: i64,
    pub max_lines: usize,
    pub max_bytes: usize,
    pub timeout_ns: i64,
    pub initial_backoff_ns: i64,
    pub max_backoff_ns: i64,
    /// 0: unlimited.
    pub max_attempts: u32,
    /// OTLP: `{"resourceLogs":[...,"logRecords":[` (empty for NDJSON).
    pub otlp_prefix: String,
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX / MS).saturating_mul(MS)
}

impl BatchConfig {
    pub fn from_options(o: &NetworkOptions) -> BatchConfig {
        let otlp_prefix = match o.format {
            NetworkFormat::Ndjson => String::new(),
            NetworkFormat::OtlpJson => otlp_prefix(o),
        };
        BatchConfig {
            format: o.format,
            batch_lines: o.batch_lines.max(1),
            batch_bytes: o.batch_bytes.max(1),
            flush_interval_ns: ms(o.flush_interval_ms.max(1)),
            max_lines: o.max_buffered_lines.max(1),
            max_bytes: o.max_buffered_bytes.max(1),
            timeout_ns: ms(u64::from(o.timeout_ms.max(1))),
            initial_backoff_ns: ms(o.initial_backoff_ms.max(1)),
            max_backoff_ns: ms(o.max_backoff_ms.max(o.initial_backoff_ms).max(1)),
            max_attempts: o.max_attempts,
            otlp_prefix,
        }
    }

    /// The `content-type` of request bodies.
    pub fn content_type(&self) -> &'static str {
        match self.format {
            NetworkFormat::Ndjson => "application/x-ndjson",
            NetworkFormat::OtlpJson => "application/json",
        }
    }
}

const OTLP_SUFFIX: &str = "]}]}]}";

fn otlp_prefix(o: &NetworkOptions) -> String {
    let mut attrs: Vec<(&str, &str)> = o.resource_attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if !o.resource_attributes.contains_key("service.name") {
        attrs.insert(0, ("service.name", "wasmixer-access-log"));
    }
    let mut out = String::from("{\"resourceLogs\":[{\"resource\":{\"attributes\":[");
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        otlp_string_attribute(k, v, &mut out);
    }
    out.push_str("]},\"scopeLogs\":[{\"scope\":{\"name\":\"wasmixer-access-log\",\"version\":\"");
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push_str("\"},\"logRecords\":[");
    out
}

fn otlp_string_attribute(key: &str, value: &str, out: &mut String) {
    out.push_str("{\"key\":");
    write_json_string(key.as_bytes(), out);
    out.push_str(",\"value\":{\"stringValue\":");
    write_json_string(value.as_bytes(), out);
    out.push_str("}}");
}

/// OTLP `SeverityNumber` and text of a stdio level.
fn otlp_severity(level: Level) -> (u8, &'static str) {
    match level {
        Level::Info => (9, "INFO"),
        Level::Warn => (13, "WARN"),
        Level::Error => (17, "ERROR"),
    }
}

/// What was delivered and what was lost, cumulative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Lines accepted into the buffer.
    pub accepted: u64,
    /// Lines the collector acknowledged (2xx).
    pub delivered: u64,
    /// Lines refused because the buffer was full.
    pub dropped_full: u64,
    /// Lines of batches the collector rejected for good (4xx other than 408 / 429).
    pub dropped_rejected: u64,
    /// Lines of batches given up after `max_attempts`.
    pub dropped_attempts: u64,
    /// Requests sent, first attempts and retries.
    pub requests: u64,
    /// Requests that were retries.
    pub retries: u64,
    /// Attempts that failed (no answer, 5xx, 408, 429, or the call could not start).
    pub failed_attempts: u64,
}

impl BatchStats {
    /// Every line lost, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_full + self.dropped_rejected + self.dropped_attempts
    }
}

#[derive(Debug)]
struct Batch {
    /// NDJSON: lines, each ending in `\n`. OTLP: log records separated by `,`.
    text: String,
    lines: usize,
    opened_ns: i64,
    sealed: bool,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    token: u32,
    since_ns: i64,
}

/// A batch ready to go: the request body and how many lines it carries.
#[derive(Debug)]
pub struct Payload<'a> {
    pub body: Cow<'a, str>,
    pub lines: usize,
    /// True when this is a retry of a batch that failed before.
    pub retry: bool,
}

/// What an answer meant, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        lines: usize,
    },
    /// Will be retried.
    Failed,
    /// The batch was dropped: rejected by the collector or out of attempts.
    Dropped {
        lines: usize,
    },
    /// Not the request in flight (a late answer after the watchdog gave up on it).
    Stale,
}

/// The buffered lines of one worker.
#[derive(Debug)]
pub struct BatchQueue {
    cfg: BatchConfig,
    /// Front: the oldest batch (the one in flight, if any). Back: the batch being filled.
    batches: VecDeque<Batch>,
    lines: usize,
    bytes: usize,
    in_flight: Option<InFlight>,
    /// Consecutive failed attempts of the front batch.
    attempts: u32,
    /// Consecutive failures across batches, for the backoff.
    failures: u32,
    retry_at_ns: Option<i64>,
    stats: BatchStats,
    spare: Vec<String>,
}

impl BatchQueue {
    pub fn new(cfg: BatchConfig) -> BatchQueue {
        BatchQueue {
            cfg,
            batches: VecDeque::new(),
            lines: 0,
            bytes: 0,
            in_flight: None,
            attempts: 0,
            failures: 0,
            retry_at_ns: None,
            stats: BatchStats::default(),
            spare: Vec::new(),
        }
    }

    pub fn config(&self) -> &BatchConfig {
        &self.cfg
    }

    pub fn stats(&self) -> BatchStats {
        self.stats
    }

    /// Lines waiting, including those of the batch in flight.
    pub fn buffered_lines(&self) -> usize {
        self.lines
    }

    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Adds one line (no trailing newline). Never blocks: when the buffer is full the line is
    /// dropped and counted, and `false` returned. `handler` names the handler (OTLP attribute).
    pub fn push(&mut self, line: &str, meta: &LineMeta<'_>, handler: &str, now_ns: i64) -> bool {
        if self.lines >= self.cfg.max_lines || self.bytes.saturating_add(line.len()) >= self.cfg.max_bytes {
            self.stats.dropped_full += 1;
            return false;
        }
        let needs_new = match self.batches.back() {
            None => true,
            Some(b) => b.sealed || b.lines >= self.cfg.batch_lines || b.text.len() >= self.cfg.batch_bytes,
        };
        if needs_new {
            let mut text = self.spare.pop().unwrap_or_default();
            text.clear();
            self.batches.push_back(Batch { text, lines: 0, opened_ns: now_ns, sealed: false });
        }
        let Some(batch) = self.batches.back_mut() else {
            return false;
        };
        let start = batch.text.len();
        match self.cfg.format {
            NetworkFormat::Ndjson => {
                batch.text.push_str(line);
                batch.text.push('\n');
            }
            NetworkFormat::OtlpJson => {
                if batch.lines > 0 {
                    batch.text.push(',');
                }
                write_otlp_record(line, meta, handler, now_ns, &mut batch.text);
            }
        }
        let added = batch.text.len() - start;
        if self.bytes.saturating_add(added) > self.cfg.max_bytes {
            batch.text.truncate(start);
            let empty = batch.lines == 0;
            if empty {
                if let Some(b) = self.batches.pop_back() {
                    self.spare.push(b.text);
                }
            }
            self.stats.dropped_full += 1;
            return false;
        }
        batch.lines += 1;
        self.lines += 1;
        self.bytes += added;
        self.stats.accepted += 1;
        true
    }

    /// The next batch to send, if one is due and nothing is in flight: a full batch, one whose
    /// first line is `flush_interval` old, or a failed one whose backoff has passed. The batch
    /// stays queued (and sealed) until [`BatchQueue::on_response`] settles it.
    pub fn next_payload(&mut self, now_ns: i64) -> Option<Payload<'_>> {
        if let Some(f) = self.in_flight {
            if now_ns.saturating_sub(f.since_ns) < self.cfg.timeout_ns.saturating_add(WATCHDOG_SLACK_NS) {
                return None;
            }
            // The host never answered: write the attempt off.
            self.fail(now_ns);
        }
        if let Some(at) = self.retry_at_ns {
            if now_ns < at {
                return None;
            }
        }
        let retry = self.attempts > 0;
        let cfg = &self.cfg;
        let front = self.batches.front_mut()?;
        let due = retry
            || front.sealed
            || front.lines >= cfg.batch_lines
            || front.text.len() >= cfg.batch_bytes
            || now_ns.saturating_sub(front.opened_ns) >= cfg.flush_interval_ns
            || self.lines >= cfg.max_lines;
        if !due || front.lines == 0 {
            return None;
        }
        front.sealed = true;
        let body = match cfg.format {
            NetworkFormat::Ndjson => Cow::Borrowed(front.text.as_str()),
            NetworkFormat::OtlpJson => {
                let mut b = String::with_capacity(cfg.otlp_prefix.len() + front.text.len() + OTLP_SUFFIX.len());
                b.push_str(&cfg.otlp_prefix);
                b.push_str(&front.text);
                b.push_str(OTLP_SUFFIX);
                Cow::Owned(b)
            }
        };
        Some(Payload { body, lines: front.lines, retry })
    }

    /// The payload just returned by [`BatchQueue::next_payload`] was dispatched as `token`.
    pub fn sent(&mut self, token: u32, retry: bool, now_ns: i64) {
        self.in_flight = Some(InFlight { token, since_ns: now_ns });
        self.retry_at_ns = None;
        self.stats.requests += 1;
        if retry {
            self.stats.retries += 1;
        }
    }

    /// The payload could not even be dispatched (unknown cluster, ...): back off and retry.
    pub fn dispatch_failed(&mut self, now_ns: i64) -> Outcome {
        self.fail(now_ns)
    }

    /// The answer to request `token`: its HTTP status, `None` when there was no response
    /// (connection failure, timeout, reset).
    pub fn on_response(&mut self, token: u32, status: Option<u32>, now_ns: i64) -> Outcome {
        match self.in_flight {
            Some(f) if f.token == token => {}
            _ => return Outcome::Stale,
        }
        match status {
            Some(s) if (200..300).contains(&s) => {
                let lines = self.pop_front();
                self.in_flight = None;
                self.attempts = 0;
                self.failures = 0;
                self.retry_at_ns = None;
                self.stats.delivered += lines as u64;
                Outcome::Delivered { lines }
            }
            Some(s) if (400..500).contains(&s) && s != 408 && s != 429 => {
                let lines = self.pop_front();
                self.in_flight = None;
                self.attempts = 0;
                self.stats.dropped_rejected += lines as u64;
                Outcome::Dropped { lines }
            }
            _ => self.fail(now_ns),
        }
    }

    fn fail(&mut self, now_ns: i64) -> Outcome {
        self.in_flight = None;
        self.stats.failed_attempts += 1;
        self.attempts = self.attempts.saturating_add(1);
        self.failures = self.failures.saturating_add(1);
        let shift = self.failures.saturating_sub(1).min(32);
        let backoff = self.cfg.initial_backoff_ns.saturating_mul(1i64 << shift).min(self.cfg.max_backoff_ns);
        self.retry_at_ns = Some(now_ns.saturating_add(backoff));
        if self.cfg.max_attempts > 0 && self.attempts >= self.cfg.max_attempts {
            let lines = self.pop_front();
            self.attempts = 0;
            self.stats.dropped_attempts += lines as u64;
            return Outcome::Dropped { lines };
        }
        Outcome::Failed
    }

    fn pop_front(&mut self) -> usize {
        let Some(b) = self.batches.pop_front() else {
            return 0;
        };
        self.lines = self.lines.saturating_sub(b.lines);
        self.bytes = self.bytes.saturating_sub(b.text.len());
        if self.spare.len() < 4 {
            self.spare.push(b.text);
        }
        b.lines
    }

    /// When the next attempt may go out, if the queue is backing off.
    pub fn retry_at_ns(&self) -> Option<i64> {
        self.retry_at_ns
    }
}

/// One OTLP `LogRecord` as JSON: the line as the string body, the level as the severity, the
/// line's time (when after the epoch) and the instance and handler as attributes.
fn write_otlp_record(line: &str, meta: &LineMeta<'_>, handler: &str, now_ns: i64, out: &mut String) {
    let t = meta.time.unix_nanos();
    out.push('{');
    if t > 0 {
        let _ = write!(out, "\"timeUnixNano\":\"{t}\",");
    }
    let (number, text) = otlp_severity(meta.level);
    let _ = write!(out, "\"observedTimeUnixNano\":\"{}\",\"severityNumber\":{number},\"severityText\":\"{text}\",\"body\":{{\"stringValue\":", now_ns.max(0));
    write_json_string(line.as_bytes(), out);
    out.push_str("},\"attributes\":[");
    otlp_string_attribute("mixer.instance", meta.fqn, out);
    out.push(',');
    otlp_string_attribute("mixer.handler", handler, out);
    out.push_str("]}");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::gostd::time::Timestamp;

    fn options(extra: &str) -> NetworkOptions {
        serde_json::from_str(&format!(r#"{{"cluster": "c"{extra}}}"#)).unwrap()
    }

    fn queue(extra: &str) -> BatchQueue {
        BatchQueue::new(BatchConfig::from_options(&options(extra)))
    }

    fn meta() -> LineMeta<'static> {
        LineMeta {
            handler: 0,
            instance: 0,
            fqn: "newlog.instance.istio-system",
            level: Level::Warn,
            time: Timestamp::from_unix_nanos(1_576_514_753_950_607_000),
        }
    }

    fn push(q: &mut BatchQueue, line: &str, now: i64) -> bool {
        q.push(line, &meta(), "newloghandler.istio-system", now)
    }

    /// Takes the due payload and marks it sent as `token`; returns (body, lines).
    fn send(q: &mut BatchQueue, token: u32, now: i64) -> Option<(String, usize)> {
        let p = q.next_payload(now)?;
        let out = (p.body.into_owned(), p.lines);
        let retry = q.attempts > 0;
        q.sent(token, retry, now);
        Some(out)
    }

    #[test]
    fn flushes_by_count_and_by_age() {
        let mut q = queue(r#", "batch_lines": 3, "flush_interval_ms": 100"#);
        assert!(q.next_payload(0).is_none());
        push(&mut q, "a", 0);
        push(&mut q, "b", 10 * MS);
        assert!(q.next_payload(50 * MS).is_none(), "neither full nor old");
        push(&mut q, "c", 60 * MS);
        push(&mut q, "d", 60 * MS);
        assert_eq!(send(&mut q, 1, 60 * MS), Some(("a\nb\nc\n".to_string(), 3)));
        assert!(q.next_payload(61 * MS).is_none(), "one request in flight at a time");
        assert_eq!(q.on_response(1, Some(200), 62 * MS), Outcome::Delivered { lines: 3 });
        assert!(q.next_payload(63 * MS).is_none(), "d is young");
        assert_eq!(send(&mut q, 2, 160 * MS), Some(("d\n".to_string(), 1)));
        assert_eq!(q.on_response(2, Some(204), 161 * MS), Outcome::Delivered { lines: 1 });
        assert_eq!((q.stats().accepted, q.stats().delivered, q.buffered_lines(), q.buffered_bytes()), (4, 4, 0, 0));
    }

    #[test]
    fn the_batch_in_flight_is_sealed() {
        let mut q = queue(r#", "batch_lines": 10, "flush_interval_ms": 1"#);
        push(&mut q, "a", 0);
        assert_eq!(send(&mut q, 7, 5 * MS).unwrap().0, "a\n");
        push(&mut q, "b", 6 * MS);
        q.on_response(7, Some(200), 7 * MS);
        assert_eq!(send(&mut q, 8, 8 * MS).unwrap().0, "b\n");
    }

    #[test]
    fn retries_with_exponential_backoff_then_delivers() {
        let mut q = queue(r#", "batch_lines": 1, "initial_backoff_ms": 100, "max_backoff_ms": 350"#);
        push(&mut q, "a", 0);
        let mut now = 0;
        let mut token = 0;
        let mut waits = Vec::new();
        for status in [None, Some(503), Some(429), Some(408), None] {
            token += 1;
            assert!(send(&mut q, token, now).is_some());
            assert_eq!(q.on_response(token, status, now), Outcome::Failed);
            let at = q.retry_at_ns().unwrap();
            waits.push((at - now) / MS);
            assert!(q.next_payload(at - 1).is_none());
            now = at;
        }
        assert_eq!(waits, [100, 200, 350, 350, 350]);
        token += 1;
        let (body, _) = send(&mut q, token, now).unwrap();
        assert_eq!(body, "a\n");
        assert_eq!(q.on_response(token, Some(200), now), Outcome::Delivered { lines: 1 });
        let s = q.stats();
        assert_eq!((s.requests, s.retries, s.failed_attempts, s.delivered, s.dropped()), (6, 5, 5, 1, 0));
        // After a success the backoff starts over.
        push(&mut q, "b", now);
        token += 1;
        send(&mut q, token, now).unwrap();
        q.on_response(token, None, now);
        assert_eq!(q.retry_at_ns(), Some(now + 100 * MS));
    }

    #[test]
    fn bounded_buffer_drops_new_lines_and_counts_them() {
        let mut q = queue(r#", "batch_lines": 2, "max_buffered_lines": 3"#);
        for l in ["a", "b", "c", "d", "e"] {
            push(&mut q, l, 0);
        }
        assert_eq!((q.buffered_lines(), q.stats().dropped_full, q.stats().accepted), (3, 2, 3));
        // Collector down: nothing else gets in until a batch is delivered.
        send(&mut q, 1, 0).unwrap();
        q.on_response(1, None, 0);
        assert!(!push(&mut q, "f", 1));
        let at = q.retry_at_ns().unwrap();
        let (body, n) = send(&mut q, 2, at).unwrap();
        assert_eq!((body.as_str(), n), ("a\nb\n", 2));
        q.on_response(2, Some(200), at);
        assert!(push(&mut q, "g", at));
        assert_eq!(q.buffered_lines(), 2);
        let mut q = queue(r#", "max_buffered_bytes": 10"#);
        assert!(push(&mut q, "12345678", 0));
        assert!(!push(&mut q, "x", 0));
        assert_eq!(q.stats().dropped_full, 1);
    }

    #[test]
    fn rejected_and_exhausted_batches_are_dropped() {
        let mut q = queue(r#", "batch_lines": 1, "max_attempts": 2"#);
        push(&mut q, "a", 0);
        push(&mut q, "b", 0);
        push(&mut q, "c", 0);
        send(&mut q, 1, 0).unwrap();
        assert_eq!(q.on_response(1, Some(400), 0), Outcome::Dropped { lines: 1 });
        send(&mut q, 2, 0).unwrap();
        assert_eq!(q.on_response(2, Some(500), 0), Outcome::Failed);
        let at = q.retry_at_ns().unwrap();
        let (body, _) = send(&mut q, 3, at).unwrap();
        assert_eq!(body, "b\n");
        assert_eq!(q.on_response(3, Some(502), at), Outcome::Dropped { lines: 1 });
        let s = q.stats();
        assert_eq!((s.dropped_rejected, s.dropped_attempts, q.buffered_lines()), (1, 1, 1));
        // A late answer for an old token changes nothing.
        assert_eq!(q.on_response(2, Some(200), at), Outcome::Stale);
        assert_eq!(q.buffered_lines(), 1);
    }

    #[test]
    fn dispatch_failure_and_watchdog() {
        let mut q = queue(r#", "batch_lines": 1, "timeout_ms": 1000, "initial_backoff_ms": 10"#);
        push(&mut q, "a", 0);
        assert!(q.next_payload(0).is_some());
        assert_eq!(q.dispatch_failed(0), Outcome::Failed);
        assert!(q.next_payload(5 * MS).is_none());
        send(&mut q, 9, 10 * MS).unwrap();
        assert!(q.next_payload(1_000 * MS).is_none(), "still within timeout + slack");
        // Never answered: written off, and the batch goes again.
        let later = 10 * MS + 1_000 * MS + WATCHDOG_SLACK_NS;
        assert!(q.next_payload(later).is_none(), "backing off after the write-off");
        let at = q.retry_at_ns().unwrap();
        let p = q.next_payload(at).unwrap();
        assert!(p.retry);
        assert_eq!(q.on_response(9, Some(200), at), Outcome::Stale);
    }

    #[test]
    fn batch_bytes_seal_batches() {
        let mut q = queue(r#", "batch_lines": 100, "batch_bytes": 4"#);
        push(&mut q, "abc", 0);
        push(&mut q, "de", 0);
        assert_eq!(send(&mut q, 1, 0).unwrap().0, "abc\n");
    }

    #[test]
    fn otlp_json_body() {
        let mut q = queue(
            r#", "format": "otlp_json", "batch_lines": 2, "resource_attributes": {"k8s.pod.name": "ratings-v1-abc"}"#,
        );
        push(&mut q, r#"{"level":"warn","x":"a\"b"}"#, 5);
        let m = LineMeta { level: Level::Info, time: crate::gostd::time::GO_ZERO, ..meta() };
        q.push("two", &m, "h", 6);
        let (body, n) = send(&mut q, 1, 7).unwrap();
        assert_eq!(n, 2);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let rl = &v["resourceLogs"][0];
        assert_eq!(rl["resource"]["attributes"][0]["key"], "service.name");
        assert_eq!(rl["resource"]["attributes"][1]["value"]["stringValue"], "ratings-v1-abc");
        let sl = &rl["scopeLogs"][0];
        assert_eq!(sl["scope"]["name"], "wasmixer-access-log");
        let r0 = &sl["logRecords"][0];
        assert_eq!(r0["timeUnixNano"], "1576514753950607000");
        assert_eq!(r0["observedTimeUnixNano"], "5");
        assert_eq!((r0["severityNumber"].as_u64(), r0["severityText"].as_str()), (Some(13), Some("WARN")));
        assert_eq!(r0["body"]["stringValue"], r#"{"level":"warn","x":"a\"b"}"#);
        assert_eq!(r0["attributes"][0]["value"]["stringValue"], "newlog.instance.istio-system");
        assert_eq!(r0["attributes"][1]["value"]["stringValue"], "newloghandler.istio-system");
        let r1 = &sl["logRecords"][1];
        assert!(r1.get("timeUnixNano").is_none(), "Go's zero time has no Unix nanos");
        assert_eq!(r1["severityNumber"].as_u64(), Some(9));
        assert_eq!(q.config().content_type(), "application/json");
    }
}
