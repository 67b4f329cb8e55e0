//! The attribute bag of a TCP report: Mixer's `connection.*` report attributes from the TCP
//! reporter's own counts, `context.protocol` = `tcp`, the HTTP message attributes absent (no host
//! call), and everything else (identities, addresses, service) from the bag underneath.
//!
//! A connection's identity does not change while it lives, so the TCP reporter reads those
//! attributes once, in the connection's own context, into an [`AttributeSnapshot`]; its periodic
//! reports run from the root context's tick and evaluate against the snapshot.

use std::borrow::Cow;

use super::envoy_bag::SourceTable;
use super::sources::{ConnectionField, Source};
use crate::expr::{AttrId, AttributeBag, Value};
use crate::gostd::time::Timestamp;

/// Mixer's `connection.event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionEvent {
    Open,
    Continue,
    Close,
}

impl ConnectionEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionEvent::Open => "open",
            ConnectionEvent::Continue => "continue",
            ConnectionEvent::Close => "close",
        }
    }
}

/// The values one TCP report carries of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpReport {
    pub event: ConnectionEvent,
    /// Bytes from the downstream since the previous report.
    pub received_bytes: u64,
    /// Bytes to the downstream since the previous report.
    pub sent_bytes: u64,
    pub received_total: u64,
    pub sent_total: u64,
    pub duration_nanos: i64,
    /// The report's time (`context.time`).
    pub now_nanos: i64,
}

impl TcpReport {
    fn value(&self, field: ConnectionField) -> Value<'static> {
        let int = |n: u64| Value::Int64(i64::try_from(n).unwrap_or(i64::MAX));
        match field {
            ConnectionField::Event => Value::String(Cow::Borrowed(self.event.as_str())),
            ConnectionField::ReceivedBytes => int(self.received_bytes),
            ConnectionField::SentBytes => int(self.sent_bytes),
            ConnectionField::ReceivedBytesTotal => int(self.received_total),
            ConnectionField::SentBytesTotal => int(self.sent_total),
            ConnectionField::Duration => Value::Duration(self.duration_nanos),
        }
    }
}

/// Where a TCP report takes an attribute from.
enum TcpSource {
    /// The report itself (or the report's constant).
    Report(Value<'static>),
    /// Absent on a TCP connection: there is no HTTP message.
    Absent,
    /// The bag underneath.
    Inner,
}

fn is_message_path(path: &[&str]) -> bool {
    matches!(path.first(), Some(&"request") | Some(&"response"))
}

/// Attributes of an HTTP request or response. `context.proxy_error_code` (response flags) is
/// not one of them: Envoy sets flags on TCP connections too.
fn is_http_message(source: Source) -> bool {
    match source {
        Source::RequestHeaders
        | Source::ResponseHeaders
        | Source::Header { .. }
        | Source::GrpcStatus
        | Source::GrpcMessage
        | Source::Jwt(_)
        | Source::QueryParams
        | Source::ResponseTime => true,
        Source::Property(path, _) => is_message_path(path),
        Source::ByRole { inbound, outbound } => is_message_path(inbound.0) || is_message_path(outbound.0),
        _ => false,
    }
}

fn tcp_source(source: Source, report: Option<&TcpReport>) -> TcpSource {
    match source {
        Source::Connection(field) => report.map_or(TcpSource::Absent, |r| TcpSource::Report(r.value(field))),
        Source::Protocol => TcpSource::Report(Value::String(Cow::Borrowed("tcp"))),
        Source::Now => report
            .map_or(TcpSource::Inner, |r| TcpSource::Report(Value::Timestamp(Timestamp::from_unix_nanos(r.now_nanos)))),
        s if is_http_message(s) => TcpSource::Absent,
        _ => TcpSource::Inner,
    }
}

/// One TCP report's attributes over `inner`.
pub struct TcpBag<'a> {
    inner: &'a dyn AttributeBag,
    table: &'a SourceTable,
    report: TcpReport,
}

impl<'a> TcpBag<'a> {
    pub fn new(inner: &'a dyn AttributeBag, table: &'a SourceTable, report: TcpReport) -> TcpBag<'a> {
        TcpBag { inner, table, report }
    }
}

impl AttributeBag for TcpBag<'_> {
    fn get(&self, id: AttrId) -> Option<Value<'_>> {
        match tcp_source(self.table.source(id), Some(&self.report)) {
            TcpSource::Report(v) => Some(v),
            TcpSource::Absent => None,
            TcpSource::Inner => self.inner.get(id),
        }
    }
}

/// The values, read once, of the attributes a TCP report takes from Envoy.
#[derive(Debug, Default)]
pub struct AttributeSnapshot {
    /// Sorted by id.
    values: Vec<(AttrId, Option<Value<'static>>)>,
}

impl AttributeSnapshot {
    /// Reads from `bag` every attribute of `ids` that a [`TcpBag`] would ask its inner bag for.
    pub fn capture(table: &SourceTable, bag: &dyn AttributeBag, ids: &[AttrId]) -> AttributeSnapshot {
        let mut values: Vec<(AttrId, Option<Value<'static>>)> = ids
            .iter()
            .filter(|id| {
                let source = table.source(**id);
                source != Source::Now && matches!(tcp_source(source, None), TcpSource::Inner)
            })
            .map(|id| (*id, bag.get(*id).map(Value::into_owned)))
            .collect();
        crate::sorting::sort_by_key(&mut values, |(id, _)| *id);
        values.dedup_by_key(|(id, _)| *id);
        AttributeSnapshot { values }
    }
}

impl AttributeBag for AttributeSnapshot {
    fn get(&self, id: AttrId) -> Option<Value<'_>> {
        let at = self.values.binary_search_by_key(&id, |(i, _)| *i).ok()?;
        self.values.get(at)?.1.as_ref().map(Value::reborrow)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::cell::RefCell;

    use super::*;
    use crate::expr::{Manifest, MapBag, Program};

    fn report(event: ConnectionEvent) -> TcpReport {
        TcpReport {
            event,
            received_bytes: 10,
            sent_bytes: 20,
            received_total: 110,
            sent_total: 220,
            duration_nanos: 1_500_000,
            now_nanos: 1_000_000_000,
        }
    }

    /// Answers every attribute with its name, and logs what was asked.
    #[derive(Default)]
    struct Names {
        asked: RefCell<Vec<AttrId>>,
    }

    impl AttributeBag for Names {
        fn get(&self, id: AttrId) -> Option<Value<'_>> {
            self.asked.borrow_mut().push(id);
            let (_, name, _) = Manifest::istio().iter().find(|(i, _, _)| *i == id)?;
            Some(Value::String(Cow::Owned(name.to_string())))
        }
    }

    fn eval(bag: &dyn AttributeBag, expr: &str) -> String {
        let p = Program::compile(expr, Manifest::istio()).unwrap();
        format!("{:?}", p.evaluate(bag).map(Value::into_owned))
    }

    fn table_for(exprs: &[&str]) -> (SourceTable, Vec<AttrId>) {
        let m = Manifest::istio();
        let mut ids: Vec<AttrId> =
            exprs.iter().flat_map(|e| Program::compile(e, m).unwrap().attributes().to_vec()).collect();
        ids.sort_unstable();
        ids.dedup();
        (SourceTable::new(m, &ids), ids)
    }

    #[test]
    fn connection_attributes_come_from_the_report() {
        let (table, _) = table_for(&[]);
        let inner = Names::default();
        let bag = TcpBag::new(&inner, &table, report(ConnectionEvent::Continue));
        assert_eq!(eval(&bag, "connection.event"), r#"Ok(String("continue"))"#);
        assert_eq!(eval(&bag, "connection.received.bytes"), "Ok(Int64(10))");
        assert_eq!(eval(&bag, "connection.sent.bytes"), "Ok(Int64(20))");
        assert_eq!(eval(&bag, "connection.received.bytes_total"), "Ok(Int64(110))");
        assert_eq!(eval(&bag, "connection.sent.bytes_total"), "Ok(Int64(220))");
        assert_eq!(eval(&bag, "connection.duration"), "Ok(Duration(1500000))");
        assert_eq!(eval(&bag, "context.protocol"), r#"Ok(String("tcp"))"#);
        assert!(eval(&bag, "context.time").contains("secs: 1, nanos: 0"));
        assert!(inner.asked.borrow().is_empty(), "the inner bag was asked: {:?}", inner.asked.borrow());
    }

    #[test]
    fn mixer_tcp_rules_match_their_events() {
        let (table, _) = table_for(&[]);
        let inner = MapBag::default();
        let open = r#"context.protocol == "tcp" && ((connection.event | "na") == "open")"#;
        let close = r#"context.protocol == "tcp" && ((connection.event | "na") == "close")"#;
        for (event, want_open, want_close) in [
            (ConnectionEvent::Open, "true", "false"),
            (ConnectionEvent::Continue, "false", "false"),
            (ConnectionEvent::Close, "false", "true"),
        ] {
            let bag = TcpBag::new(&inner, &table, report(event));
            assert_eq!(eval(&bag, open), format!("Ok(Bool({want_open}))"), "{event:?}");
            assert_eq!(eval(&bag, close), format!("Ok(Bool({want_close}))"), "{event:?}");
        }
    }

    #[test]
    fn http_message_attributes_are_absent_without_asking_envoy() {
        let (table, _) = table_for(&[]);
        let inner = Names::default();
        let bag = TcpBag::new(&inner, &table, report(ConnectionEvent::Close));
        for attr in ["request.host", "request.headers", "response.code", "response.duration", "response.grpc_status"] {
            assert!(eval(&bag, attr).starts_with("Err("), "{attr}: {}", eval(&bag, attr));
        }
        assert_eq!(
            eval(&bag, r#"destination.service.host | request.host | "unknown""#),
            r#"Ok(String("destination.service.host"))"#
        );
        assert_eq!(eval(&bag, r#"response.code | 200"#), "Ok(Int64(200))");
        assert_eq!(eval(&bag, "context.proxy_error_code"), r#"Ok(String("context.proxy_error_code"))"#);
        assert_eq!(inner.asked.borrow().len(), 2, "only the service host and the flags reach Envoy");
    }

    #[test]
    fn snapshot_keeps_what_envoy_said_and_nothing_the_report_supplies() {
        let exprs = [
            r#"source.workload.name | "unknown""#,
            "destination.service.host",
            "connection.sent.bytes",
            "context.protocol",
            "request.host",
            "context.time",
        ];
        let (table, ids) = table_for(&exprs);
        let envoy = Names::default();
        let snapshot = AttributeSnapshot::capture(&table, &envoy, &ids);
        assert_eq!(envoy.asked.borrow().len(), 2, "{:?}", envoy.asked.borrow());
        let bag = TcpBag::new(&snapshot, &table, report(ConnectionEvent::Continue));
        assert_eq!(eval(&bag, exprs[0]), r#"Ok(String("source.workload.name"))"#);
        assert_eq!(eval(&bag, exprs[1]), r#"Ok(String("destination.service.host"))"#);
        assert_eq!(eval(&bag, exprs[2]), "Ok(Int64(20))");
        assert_eq!(eval(&bag, exprs[3]), r#"Ok(String("tcp"))"#);
        // Not in the snapshot: absent, never an error of the snapshot itself.
        assert!(eval(&bag, "source.principal").starts_with("Err(LookupFailed"));
        assert_eq!(envoy.asked.borrow().len(), 2, "evaluating against the snapshot asks Envoy nothing");
    }
}
