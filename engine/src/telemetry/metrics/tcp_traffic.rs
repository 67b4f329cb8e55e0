//! One TCP connection's traffic as Mixer's TCP reports saw it: an `open` report, `continue`
//! reports while bytes keep flowing, one `close` report; each report carries the bytes since the
//! previous one (`connection.*.bytes`), so the reports' bytes add up to the connection's totals.
//!
//! Counting a chunk costs no host call; the filter decides when to report (first byte, its
//! periodic tick, close) and this type computes what each report says.

use std::cell::Cell;

use crate::attr::tcp_bag::{ConnectionEvent, TcpReport};

/// A plugin `root_id` that makes the metrics filter a network (TCP) filter: `tcp`, or any id
/// ending in `-tcp`, `_tcp` or `.tcp` (e.g. `wasmixer-metrics-tcp`). Envoy calls a root either
/// with HTTP or with TCP callbacks, and the proxy-wasm SDK needs to know which before the first
/// stream, so the plugin's own name says it.
pub fn is_tcp_root_id(root_id: &str) -> bool {
    root_id == "tcp" || [".tcp", "-tcp", "_tcp"].iter().any(|suffix| root_id.ends_with(suffix))
}

/// The counts and report state of one connection.
#[derive(Debug)]
pub struct TcpTraffic {
    start_nanos: i64,
    received: Cell<u64>,
    sent: Cell<u64>,
    reported_received: Cell<u64>,
    reported_sent: Cell<u64>,
    last_report_nanos: Cell<i64>,
    opened: Cell<bool>,
    closed: Cell<bool>,
}

/// The reports due when a connection closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseReports {
    /// For a connection that carried no byte, its open report was never made.
    pub open: Option<TcpReport>,
    pub close: Option<TcpReport>,
}

impl TcpTraffic {
    pub fn new(start_nanos: i64) -> TcpTraffic {
        TcpTraffic {
            start_nanos,
            received: Cell::new(0),
            sent: Cell::new(0),
            reported_received: Cell::new(0),
            reported_sent: Cell::new(0),
            last_report_nanos: Cell::new(start_nanos),
            opened: Cell::new(false),
            closed: Cell::new(false),
        }
    }

    /// Bytes read from the downstream.
    pub fn add_received(&self, bytes: usize) {
        self.received.set(self.received.get().saturating_add(bytes as u64));
    }

    /// Bytes written to the downstream.
    pub fn add_sent(&self, bytes: usize) {
        self.sent.set(self.sent.get().saturating_add(bytes as u64));
    }

    pub fn is_opened(&self) -> bool {
        self.opened.get()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    fn report(&self, event: ConnectionEvent, now_nanos: i64) -> TcpReport {
        let (received, sent) = (self.received.get(), self.sent.get());
        let report = TcpReport {
            event,
            received_bytes: received.saturating_sub(self.reported_received.get()),
            sent_bytes: sent.saturating_sub(self.reported_sent.get()),
            received_total: received,
            sent_total: sent,
            duration_nanos: now_nanos.saturating_sub(self.start_nanos).max(0),
            now_nanos,
        };
        self.reported_received.set(received);
        self.reported_sent.set(sent);
        self.last_report_nanos.set(now_nanos);
        report
    }

    /// The open report, once (with the bytes counted so far).
    pub fn open(&self, now_nanos: i64) -> Option<TcpReport> {
        if self.opened.get() || self.closed.get() {
            return None;
        }
        self.opened.set(true);
        Some(self.report(ConnectionEvent::Open, now_nanos))
    }

    /// A continue report, when the connection is open, has bytes not yet reported and its last
    /// report is at least `interval_nanos` old.
    pub fn continue_due(&self, now_nanos: i64, interval_nanos: i64) -> Option<TcpReport> {
        let pending = self.received.get() > self.reported_received.get() || self.sent.get() > self.reported_sent.get();
        let due = now_nanos.saturating_sub(self.last_report_nanos.get()) >= interval_nanos;
        (self.opened.get() && !self.closed.get() && pending && due)
            .then(|| self.report(ConnectionEvent::Continue, now_nanos))
    }

    /// The reports of the connection's end: open first if it was never reported, then close
    /// (once) with the bytes not reported yet.
    pub fn close(&self, now_nanos: i64) -> CloseReports {
        if self.closed.get() {
            return CloseReports { open: None, close: None };
        }
        let open = self.open(now_nanos);
        self.closed.set(true);
        CloseReports { open, close: Some(self.report(ConnectionEvent::Close, now_nanos)) }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn root_ids() {
        for id in ["tcp", "wasmixer-metrics-tcp", "stats_tcp", "metrics.tcp"] {
            assert!(is_tcp_root_id(id), "{id}");
        }
        for id in ["", "wasmixer-metrics", "stats_inbound", "nottcp", "tcp-metrics", "TCP"] {
            assert!(!is_tcp_root_id(id), "{id}");
        }
    }

    #[test]
    fn reports_carry_deltas_that_add_up_to_the_totals() {
        let t = TcpTraffic::new(100 * S);
        t.add_received(5);
        let open = t.open(100 * S).unwrap();
        assert_eq!((open.event, open.received_bytes, open.sent_bytes), (ConnectionEvent::Open, 5, 0));
        assert_eq!(t.open(101 * S), None, "open is reported once");
        t.add_sent(7);
        t.add_received(3);
        assert_eq!(t.continue_due(105 * S, 10 * S), None, "not yet due");
        let cont = t.continue_due(110 * S, 10 * S).unwrap();
        assert_eq!((cont.received_bytes, cont.sent_bytes, cont.received_total, cont.sent_total), (3, 7, 8, 7));
        assert_eq!(cont.duration_nanos, 10 * S);
        assert_eq!(t.continue_due(125 * S, 10 * S), None, "nothing new to report");
        t.add_sent(1);
        let end = t.close(126 * S);
        assert_eq!(end.open, None);
        let close = end.close.unwrap();
        assert_eq!((close.event, close.received_bytes, close.sent_bytes), (ConnectionEvent::Close, 0, 1));
        assert_eq!((close.received_total, close.sent_total, close.duration_nanos), (8, 8, 26 * S));
        assert_eq!(t.close(127 * S), CloseReports { open: None, close: None }, "close is reported once");
        t.add_received(1);
        assert_eq!(t.continue_due(200 * S, 10 * S), None, "a closed connection does not report");
    }

    #[test]
    fn a_connection_without_bytes_opens_and_closes_at_its_end() {
        let t = TcpTraffic::new(S);
        assert_eq!(t.continue_due(100 * S, 10 * S), None, "not open yet");
        let end = t.close(3 * S);
        let (open, close) = (end.open.unwrap(), end.close.unwrap());
        assert_eq!((open.event, open.received_bytes, open.sent_bytes), (ConnectionEvent::Open, 0, 0));
        assert_eq!((close.event, close.received_bytes, close.sent_bytes), (ConnectionEvent::Close, 0, 0));
        assert_eq!(t.open(4 * S), None, "no open after close");
    }
}
