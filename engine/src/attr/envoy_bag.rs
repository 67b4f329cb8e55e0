//! The attribute bag over Envoy: each attribute is fetched from its [`Source`] on first use and
//! cached for the rest of the request, so a host call happens at most once per attribute per
//! request, and only for attributes that some configured expression references.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::rc::Rc;

use super::jwt;
use super::source::AttributeSource;
use super::sources::{response_flags_text, source_of, Decode, Side, Source, WorkloadField};
use super::workload_attributes::WorkloadAttributes;
use crate::expr::{AttrId, AttributeBag, Manifest, StringMap, Value};
use crate::gostd::byte_string;
use crate::gostd::net_ip::IpBytes;
use crate::gostd::time::Timestamp;

/// The sidecar role of the listener a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    /// The property holding the listener's `traffic_direction` (int64: 1 inbound, 2 outbound).
    pub const PROPERTY: [&'static str; 2] = ["xds", "listener_direction"];

    /// From the bytes of [`Direction::PROPERTY`].
    pub fn from_property(bytes: &[u8]) -> Option<Direction> {
        match int64(bytes)? {
            1 => Some(Direction::Inbound),
            2 => Some(Direction::Outbound),
            _ => None,
        }
    }
}

/// Per-configuration table: the source of every attribute and a cache slot for each one that
/// the configuration's expressions need. Built once at configure time.
#[derive(Debug, Clone)]
pub struct SourceTable {
    sources: Vec<Source>,
    slot_of: Vec<Option<u16>>,
    slots: usize,
    bases: BaseAttributes,
    /// Some expression reads a workload (local or peer): worth looking for an announced peer first.
    reads_workloads: bool,
}

/// Attributes that others are derived from; derived ones read them through the bag, so the
/// underlying property is fetched once even when both are referenced.
#[derive(Debug, Clone, Copy, Default)]
struct BaseAttributes {
    path: Option<AttrId>,
    time: Option<AttrId>,
    duration: Option<AttrId>,
    service_host: Option<AttrId>,
}

impl BaseAttributes {
    fn of(manifest: &Manifest) -> BaseAttributes {
        let id = |n: &str| manifest.lookup(n).map(|(id, _)| id);
        BaseAttributes {
            path: id("request.path"),
            time: id("request.time"),
            duration: id("response.duration"),
            service_host: id("destination.service.host"),
        }
    }

    /// The attributes `source` is derived from.
    fn of_source(&self, source: Source) -> [Option<AttrId>; 2] {
        match source {
            Source::QueryParams => [self.path, None],
            Source::ResponseTime => [self.time, self.duration],
            Source::ServiceName | Source::ServiceNamespace | Source::ServiceUid => [self.service_host, None],
            _ => [None, None],
        }
    }
}

impl SourceTable {
    /// A table for `manifest` giving cache slots to `needed` attributes (and to the attributes
    /// they are derived from) only.
    pub fn new(manifest: &Manifest, needed: &[AttrId]) -> SourceTable {
        let sources: Vec<Source> = manifest.iter().map(|(_, name, _)| source_of(name)).collect();
        let bases = BaseAttributes::of(manifest);
        let mut with_bases: Vec<AttrId> = needed.to_vec();
        for id in needed {
            let source = sources.get(usize::from(*id)).copied().unwrap_or(Source::Absent(""));
            with_bases.extend(bases.of_source(source).into_iter().flatten());
        }
        let mut slot_of = vec![None; manifest.len()];
        let mut slots = 0usize;
        for id in &with_bases {
            if let Some(s) = slot_of.get_mut(usize::from(*id)) {
                if s.is_none() {
                    *s = u16::try_from(slots).ok();
                    slots += 1;
                }
            }
        }
        let reads_workloads = needed.iter().any(|id| {
            matches!(
                sources.get(usize::from(*id)),
                Some(Source::Workload(..) | Source::ReporterUid | Source::ProxyVersion)
            )
        });
        SourceTable { sources, slot_of, slots, bases, reads_workloads }
    }

    /// The sources of the attributes the configuration needs (and of those they derive from).
    pub fn needed_sources(&self) -> impl Iterator<Item = Source> + '_ {
        self.sources.iter().zip(&self.slot_of).filter(|(_, slot)| slot.is_some()).map(|(s, _)| *s)
    }

    /// Whether some expression reads a workload (local or peer).
    pub fn reads_workloads(&self) -> bool {
        self.reads_workloads
    }

    /// The source of attribute `id`.
    pub fn source(&self, id: AttrId) -> Source {
        self.sources.get(usize::from(id)).copied().unwrap_or(Source::Absent("unknown attribute id"))
    }
}

const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";

/// One request's attributes.
pub struct EnvoyBag<'h, S: AttributeSource + ?Sized> {
    source: &'h S,
    table: &'h SourceTable,
    slots: Vec<OnceCell<Option<Value<'static>>>>,
    direction: OnceCell<Option<Direction>>,
    own_side: OnceCell<Side>,
    local: OnceCell<Option<Rc<WorkloadAttributes>>>,
    peer: OnceCell<Option<Rc<WorkloadAttributes>>>,
    /// The verified JWT's claims, for every `request.auth.*` attribute.
    jwt_payload: OnceCell<Option<serde_json::Value>>,
    grpc_status: OnceCell<Option<(bool, String)>>,
}

impl<'h, S: AttributeSource + ?Sized> EnvoyBag<'h, S> {
    pub fn new(source: &'h S, table: &'h SourceTable) -> EnvoyBag<'h, S> {
        EnvoyBag {
            source,
            table,
            slots: (0..table.slots).map(|_| OnceCell::new()).collect(),
            direction: OnceCell::new(),
            own_side: OnceCell::new(),
            local: OnceCell::new(),
            peer: OnceCell::new(),
            jwt_payload: OnceCell::new(),
            grpc_status: OnceCell::new(),
        }
    }

    /// The listener's direction (`xds.listener_direction`), fetched once. When the expressions
    /// read workloads, a peer the exchange announced answers it too ([`AttributeSource::announced_peer`]).
    pub fn direction(&self) -> Option<Direction> {
        if self.direction.get().is_none() && self.table.reads_workloads {
            self.own_side();
        }
        self.fetched_direction()
    }

    fn fetched_direction(&self) -> Option<Direction> {
        *self.direction.get_or_init(|| self.source.listener_direction())
    }

    /// The response's gRPC status and whether it came in the trailers (else in the headers of
    /// a trailers-only response), Mixer's client's `GetGrpcStatus`.
    fn grpc_status_in(&self) -> Option<&(bool, String)> {
        self.grpc_status
            .get_or_init(|| match self.source.response_trailer(GRPC_STATUS) {
                Some(status) => Some((true, status)),
                None => self.source.header(true, GRPC_STATUS).map(|status| (false, status)),
            })
            .as_ref()
    }

    /// Which side this proxy's own workload is. A verified peer, when the host has one, says
    /// it without the listener's direction ([`AttributeSource::announced_peer`]).
    fn own_side(&self) -> Side {
        *self.own_side.get_or_init(|| {
            if self.direction.get().is_none() {
                if let Some((peer_side, peer)) = self.source.announced_peer() {
                    let _ = self.peer.set(Some(peer));
                    return if peer_side == Side::Source { Side::Destination } else { Side::Source };
                }
            }
            match self.fetched_direction() {
                Some(Direction::Outbound) => Side::Source,
                _ => Side::Destination,
            }
        })
    }

    fn workload(&self, side: Side) -> Option<&WorkloadAttributes> {
        let own_side = self.own_side();
        let cell = if side == own_side { &self.local } else { &self.peer };
        let w =
            cell.get_or_init(
                || if side == own_side { self.source.local_workload() } else { self.source.peer_workload() },
            );
        w.as_deref()
    }

    fn fetch(&self, id: AttrId) -> Option<Value<'static>> {
        match self.table.source(id) {
            Source::Property(path, decode) => decode_property(self.source.property(path)?, decode),
            Source::ByRole { inbound, outbound } => {
                let (path, decode) = if self.direction() == Some(Direction::Outbound) { outbound } else { inbound };
                decode_property(self.source.property(path)?, decode)
            }
            Source::RequestHeaders => Some(Value::StringMap(Cow::Owned(self.source.headers(false)))),
            Source::ResponseHeaders => Some(Value::StringMap(Cow::Owned(self.source.headers(true)))),
            Source::Header { name, response } => {
                self.source.header(response, name).map(|v| Value::String(Cow::Owned(v)))
            }
            Source::Jwt(field) => {
                let payload = self
                    .jwt_payload
                    .get_or_init(|| jwt::payload(&self.source.property(jwt::METADATA_PROPERTY)?))
                    .as_ref()?;
                jwt::attribute(payload, field)
            }
            Source::GrpcStatus => self.grpc_status_in().map(|(_, status)| Value::String(Cow::Owned(status.clone()))),
            Source::GrpcMessage => {
                let &(in_trailers, _) = self.grpc_status_in()?;
                let message = if in_trailers {
                    self.source.response_trailer(GRPC_MESSAGE)
                } else {
                    self.source.header(true, GRPC_MESSAGE)
                };
                Some(Value::String(Cow::Owned(message.unwrap_or_default())))
            }
            Source::QueryParams => {
                let path = self.get(self.table.bases.path?)?;
                let (_, query) = path.as_str()?.split_once('?')?;
                let pairs: Vec<(String, String)> = query
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        p.split_once('=')
                            .map_or((p.to_string(), String::new()), |(k, v)| (k.to_string(), v.to_string()))
                    })
                    .collect();
                (!pairs.is_empty()).then(|| Value::StringMap(Cow::Owned(StringMap::from_pairs(pairs))))
            }
            Source::ReporterKind => self
                .direction()
                .map(|d| Value::String(Cow::Borrowed(if d == Direction::Inbound { "inbound" } else { "outbound" }))),
            Source::ReporterUid => self.workload(self.own_side())?.uid.clone().map(|u| Value::String(Cow::Owned(u))),
            Source::Protocol => {
                let grpc = self.source.header(false, "content-type").is_some_and(|c| c.starts_with("application/grpc"));
                Some(Value::String(Cow::Borrowed(if grpc { "grpc" } else { "http" })))
            }
            Source::Now => Some(Value::Timestamp(Timestamp::from_unix_nanos(self.source.now_nanos()))),
            Source::ResponseTime => {
                let Value::Timestamp(start) = self.get(self.table.bases.time?)? else { return None };
                let Value::Duration(duration) = self.get(self.table.bases.duration?)? else { return None };
                Some(Value::Timestamp(Timestamp::from_unix_nanos(start.unix_nanos().saturating_add(duration))))
            }
            Source::ServiceHost => self.service_host().map(|h| Value::String(Cow::Owned(h))),
            Source::ServiceName => self.service_host_part(0).map(|n| Value::String(Cow::Owned(n))),
            Source::ServiceNamespace => self.service_host_part(1).map(|n| Value::String(Cow::Owned(n))),
            Source::ServiceUid => {
                let (name, ns) = (self.service_host_part(0)?, self.service_host_part(1)?);
                Some(Value::String(Cow::Owned(format!("istio://{ns}/services/{name}"))))
            }
            Source::ResponseFlags => {
                let bits = self.source.property(&["response", "flags"]).and_then(|b| int64(&b))?;
                let mut s = String::new();
                response_flags_text(u64::try_from(bits).unwrap_or(0), &mut s);
                Some(Value::String(Cow::Owned(s)))
            }
            Source::ProxyVersion => {
                self.workload(self.own_side())?.istio_version.clone().map(|v| Value::String(Cow::Owned(v)))
            }
            // Connection values come from the TCP reporter (`attr::tcp_bag`), never from Envoy.
            Source::Workload(..) | Source::Connection(_) | Source::Absent(_) => None,
        }
    }

    /// Host of an Istio-style cluster name: `outbound|9080||reviews.default.svc.cluster.local`.
    fn service_host(&self) -> Option<String> {
        let cluster = String::from_utf8_lossy(&self.source.property(&["xds", "cluster_name"])?).into_owned();
        let host = cluster.split('|').nth(3)?;
        (!host.is_empty()).then(|| host.to_string())
    }

    /// Label `index` of `destination.service.host`, read through the bag (fetched once).
    fn service_host_part(&self, index: usize) -> Option<String> {
        let host = self.get(self.table.bases.service_host?)?;
        host.as_str()?.split('.').nth(index).map(str::to_string)
    }

    fn workload_value(&self, side: Side, field: WorkloadField) -> Option<Value<'_>> {
        let w = self.workload(side)?;
        match field {
            WorkloadField::Labels => Some(Value::StringMap(Cow::Borrowed(&w.labels))),
            WorkloadField::Metadata => Some(Value::StringMap(Cow::Borrowed(&w.metadata))),
            WorkloadField::Uid => borrowed(&w.uid),
            WorkloadField::Name => borrowed(&w.name),
            WorkloadField::Namespace => borrowed(&w.namespace),
            WorkloadField::Owner => borrowed(&w.owner),
            WorkloadField::ServiceAccount => borrowed(&w.service_account),
            WorkloadField::WorkloadUid => borrowed(&w.workload_uid),
            WorkloadField::WorkloadName => borrowed(&w.workload_name),
            WorkloadField::WorkloadNamespace => borrowed(&w.workload_namespace),
        }
    }
}

impl<S: AttributeSource + ?Sized> AttributeBag for EnvoyBag<'_, S> {
    fn get(&self, id: AttrId) -> Option<Value<'_>> {
        if let Source::Workload(side, field) = self.table.source(id) {
            return self.workload_value(side, field);
        }
        match self.table.slot_of.get(usize::from(id)).copied().flatten() {
            Some(slot) => {
                self.slots.get(usize::from(slot))?.get_or_init(|| self.fetch(id)).as_ref().map(Value::reborrow)
            }
            // Not announced at configure time: still correct, just not cached.
            None => self.fetch(id),
        }
    }
}

fn borrowed(o: &Option<String>) -> Option<Value<'_>> {
    o.as_deref().map(|t| Value::String(Cow::Borrowed(t)))
}

fn int64(bytes: &[u8]) -> Option<i64> {
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(i64::from_le_bytes(arr))
}

/// Decodes Envoy's encoding of a property value (text that is not UTF-8 keeps its bytes as
/// raw-byte characters, [`byte_string`]).
pub fn decode_property(bytes: Vec<u8>, decode: Decode) -> Option<Value<'static>> {
    let text = byte_string::from_bytes;
    Some(match decode {
        Decode::Text => Value::String(Cow::Owned(text(bytes))),
        Decode::Int64 => Value::Int64(int64(&bytes)?),
        Decode::Uint64Text => {
            Value::String(Cow::Owned(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?).to_string()))
        }
        Decode::Bool => Value::Bool(*bytes.first()? != 0),
        Decode::TimestampNanos => Value::Timestamp(Timestamp::from_unix_nanos(int64(&bytes)?)),
        Decode::DurationNanos => Value::Duration(int64(&bytes)?),
        Decode::AddressIp => {
            let addr = text(bytes);
            let host = match addr.strip_prefix('[') {
                Some(rest) => rest.split(']').next().unwrap_or(rest),
                None => addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h),
            };
            let ip = IpBytes::parse(host)?;
            Value::IpAddress(ip)
        }
        Decode::SpiffePrincipal => {
            let uri = text(bytes);
            let principal = uri.strip_prefix("spiffe://").map(str::to_string)?;
            Value::String(Cow::Owned(principal))
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::expr::Program;
    use std::cell::{Cell, RefCell};

    /// A test double of the host-call boundary: canned answers, and a log of every call.
    #[derive(Default)]
    struct FakeHost {
        properties: Vec<(Vec<&'static str>, Vec<u8>)>,
        request_headers: Vec<(String, String)>,
        response_headers: Vec<(&'static str, &'static str)>,
        response_trailers: Vec<(&'static str, &'static str)>,
        local: Option<Rc<WorkloadAttributes>>,
        peer: Option<Rc<WorkloadAttributes>>,
        /// A verified peer published by the metadata exchange, and its side.
        announced: Option<(Side, Rc<WorkloadAttributes>)>,
        /// The direction an announced peer implied (as Envoy's host remembers it).
        implied: Cell<Option<Direction>>,
        calls: RefCell<Vec<String>>,
    }

    impl AttributeSource for FakeHost {
        fn property(&self, path: &'static [&'static str]) -> Option<Vec<u8>> {
            self.calls.borrow_mut().push(path.join("."));
            self.properties.iter().find(|(p, _)| p.as_slice() == path).map(|(_, v)| v.clone())
        }
        fn headers(&self, response: bool) -> StringMap {
            self.calls.borrow_mut().push(format!("headers(response={response})"));
            if response {
                StringMap::new()
            } else {
                StringMap::from_pairs(self.request_headers.iter().map(|(k, v)| (k, v)))
            }
        }
        fn header(&self, response: bool, name: &str) -> Option<String> {
            self.calls.borrow_mut().push(format!("header({response},{name})"));
            let headers = if response { self.response_headers.as_slice() } else { &[] };
            headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        }
        fn response_trailer(&self, name: &str) -> Option<String> {
            self.calls.borrow_mut().push(format!("trailer({name})"));
            self.response_trailers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        }
        fn now_nanos(&self) -> i64 {
            self.calls.borrow_mut().push("now".into());
            1_000_000_000
        }
        fn local_workload(&self) -> Option<Rc<WorkloadAttributes>> {
            self.calls.borrow_mut().push("local".into());
            self.local.clone()
        }
        fn peer_workload(&self) -> Option<Rc<WorkloadAttributes>> {
            self.calls.borrow_mut().push("peer".into());
            self.peer.clone()
        }
        fn announced_peer(&self) -> Option<(Side, Rc<WorkloadAttributes>)> {
            self.calls.borrow_mut().push("announced".into());
            let (side, peer) = self.announced.clone()?;
            self.implied.set(Some(if side == Side::Source { Direction::Inbound } else { Direction::Outbound }));
            Some((side, peer))
        }
        fn listener_direction(&self) -> Option<Direction> {
            match self.implied.get() {
                Some(d) => Some(d),
                None => Direction::from_property(&self.property(&Direction::PROPERTY)?),
            }
        }
    }

    fn le(v: i64) -> Vec<u8> {
        v.to_le_bytes().to_vec()
    }

    fn workload(app: &str, version: &str, ns: &str) -> Rc<WorkloadAttributes> {
        Rc::new(WorkloadAttributes {
            labels: StringMap::from_pairs([("app", app), ("version", version)]),
            namespace: Some(ns.into()),
            workload_name: Some(format!("{app}-{version}")),
            ..WorkloadAttributes::default()
        })
    }

    fn host() -> FakeHost {
        FakeHost {
            properties: vec![
                (vec!["xds", "listener_direction"], le(1)),
                (vec!["request", "path"], b"/ratings/0?x=1&y".to_vec()),
                (vec!["request", "method"], b"GET".to_vec()),
                (vec!["response", "code"], le(200)),
                (vec!["request", "duration"], le(1_494_269)),
                (vec!["request", "time"], le(1_576_514_753_950_607_000)),
                (vec!["connection", "mtls"], vec![1]),
                (vec!["source", "address"], b"10.1.2.3:51234".to_vec()),
                (
                    vec!["connection", "uri_san_peer_certificate"],
                    b"spiffe://cluster.local/ns/default/sa/bookinfo-reviews".to_vec(),
                ),
                (vec!["xds", "cluster_name"], b"inbound|9080|http|ratings.default.svc.cluster.local".to_vec()),
                (vec!["response", "flags"], le(0)),
            ],
            request_headers: vec![("user-agent".into(), "curl/8".into()), (":authority".into(), "ratings:9080".into())],
            local: Some(workload("ratings", "v1", "default")),
            peer: Some(workload("reviews", "v3", "default")),
            ..FakeHost::default()
        }
    }

    fn eval(host: &FakeHost, exprs: &[&str]) -> Vec<String> {
        let m = Manifest::istio();
        let programs: Vec<Program> = exprs.iter().map(|e| Program::compile(e, m).unwrap()).collect();
        let mut needed: Vec<AttrId> = programs.iter().flat_map(|p| p.attributes().iter().copied()).collect();
        needed.sort_unstable();
        needed.dedup();
        let table = SourceTable::new(m, &needed);
        let bag = EnvoyBag::new(host, &table);
        // Evaluate everything twice: the second round must be served from the cache.
        let mut out = Vec::new();
        for _ in 0..2 {
            out = programs.iter().map(|p| format!("{:?}", p.evaluate(&bag).map(Value::into_owned))).collect();
        }
        out
    }

    #[test]
    fn each_property_is_fetched_once_and_only_when_referenced() {
        let h = host();
        let got = eval(
            &h,
            &[
                "request.path",
                r#"request.method == "GET" && request.path.startsWith("/ratings")"#,
                r#"request.headers["user-agent"] | "-""#,
                "response.code | 0",
                r#"request.query_params["x"]"#,
            ],
        );
        assert_eq!(got[0], r#"Ok(String("/ratings/0?x=1&y"))"#);
        assert_eq!(got[1], "Ok(Bool(true))");
        assert_eq!(got[2], r#"Ok(String("curl/8"))"#);
        assert_eq!(got[3], "Ok(Int64(200))");
        assert_eq!(got[4], r#"Ok(String("1"))"#);
        // Five distinct attributes, four host calls: the query parameters are derived from the
        // cached path, never fetched again.
        let calls = h.calls.borrow();
        assert_eq!(calls.as_slice(), ["request.path", "request.method", "headers(response=false)", "response.code"]);
    }

    #[test]
    fn seed_rule_reads_identity_once() {
        let h = host();
        let got = eval(
            &h,
            &[
                r#"destination.labels["app"] == "ratings" && source.labels["app"]=="reviews" && source.labels["version"] == "v3""#,
            ],
        );
        assert_eq!(got[0], "Ok(Bool(true))");
        // No caller announced: the direction (one property) decides which side is local; each
        // side is resolved once.
        assert_eq!(h.calls.borrow().as_slice(), ["announced", "xds.listener_direction", "local", "peer"]);
    }

    #[test]
    fn an_announced_peer_settles_both_sides_without_the_direction() {
        let seed = r#"destination.labels["app"] == "ratings" && source.labels["app"]=="reviews" && source.labels["version"] == "v3""#;
        // Inbound: the caller is the source.
        let mut h = host();
        h.announced = h.peer.take().map(|p| (Side::Source, p));
        assert_eq!(eval(&h, &[seed]), ["Ok(Bool(true))"]);
        assert_eq!(h.calls.borrow().as_slice(), ["announced", "local"]);
        // Outbound, after the response: the callee is the destination, the local workload the source.
        let h = FakeHost {
            local: Some(workload("reviews", "v3", "default")),
            announced: Some((Side::Destination, workload("ratings", "v1", "default"))),
            peer: None,
            ..host()
        };
        assert_eq!(eval(&h, &[seed]), ["Ok(Bool(true))"]);
        assert_eq!(h.calls.borrow().as_slice(), ["announced", "local"]);
        // The reporter kind first: the announced peer answers it too (only an inbound listener
        // publishes a caller, only an outbound one a callee).
        for (side, kind, own) in [(Side::Source, "inbound", "local"), (Side::Destination, "outbound", "local")] {
            let h = FakeHost { announced: Some((side, workload("x", "v1", "default"))), ..host() };
            let got = eval(&h, &["context.reporter.kind", r#"source.labels["app"]"#, r#"destination.labels["app"]"#]);
            assert_eq!(got[0], format!(r#"Ok(String("{kind}"))"#));
            assert_eq!(h.calls.borrow().as_slice(), ["announced", own]);
        }
        // A plan that reads no workload asks the listener, not the peer.
        let h = FakeHost { announced: Some((Side::Source, workload("x", "v1", "default"))), ..host() };
        assert_eq!(eval(&h, &["context.reporter.kind"]), [r#"Ok(String("inbound"))"#]);
        assert_eq!(h.calls.borrow().as_slice(), ["xds.listener_direction"]);
    }

    #[test]
    fn decodes_envoy_encodings() {
        let h = host();
        let got = eval(
            &h,
            &[
                "response.duration",
                "request.time",
                "connection.mtls",
                "source.ip",
                "source.principal",
                "destination.service.host",
                "destination.service.name",
                "destination.service.uid",
                "context.reporter.kind",
                "context.proxy_error_code",
                "response.time",
                "context.protocol",
            ],
        );
        assert_eq!(got[0], "Ok(Duration(1494269))");
        assert!(got[1].contains("secs: 1576514753, nanos: 950607000"), "{}", got[1]);
        assert_eq!(got[2], "Ok(Bool(true))");
        assert!(got[3].starts_with("Ok(IpAddress("), "{}", got[3]);
        assert_eq!(got[4], r#"Ok(String("cluster.local/ns/default/sa/bookinfo-reviews"))"#);
        assert_eq!(got[5], r#"Ok(String("ratings.default.svc.cluster.local"))"#);
        assert_eq!(got[6], r#"Ok(String("ratings"))"#);
        assert_eq!(got[7], r#"Ok(String("istio://default/services/ratings"))"#);
        assert_eq!(got[8], r#"Ok(String("inbound"))"#);
        assert_eq!(got[9], r#"Ok(String("-"))"#);
        assert!(got[10].contains("secs: 1576514753, nanos: 952101269"), "{}", got[10]);
        assert_eq!(got[11], r#"Ok(String("http"))"#);
        // Derived attributes read their base through the cache: each property once.
        let calls = h.calls.borrow();
        for property in ["xds.cluster_name", "request.time", "request.duration"] {
            assert_eq!(calls.iter().filter(|c| *c == property).count(), 1, "{property}: {calls:?}");
        }
    }

    #[test]
    fn outbound_swaps_sides() {
        let mut h = host();
        h.properties[0] = (vec!["xds", "listener_direction"], le(2));
        let got = eval(&h, &[r#"source.labels["app"]"#, r#"destination.labels["app"]"#, "context.reporter.kind"]);
        assert_eq!(got, [r#"Ok(String("ratings"))"#, r#"Ok(String("reviews"))"#, r#"Ok(String("outbound"))"#]);
    }

    #[test]
    fn grpc_status_comes_from_the_trailers_else_a_trailers_only_response_s_headers() {
        let mut h = host();
        h.response_trailers = vec![("grpc-status", "14"), ("grpc-message", "unavailable")];
        h.response_headers = vec![("grpc-status", "0"), ("grpc-message", "from the headers")];
        let got = eval(&h, &["response.grpc_status", "response.grpc_message"]);
        assert_eq!(got, [r#"Ok(String("14"))"#, r#"Ok(String("unavailable"))"#]);
        // Trailers-only: status and message from the headers; a missing message is "".
        let mut h = host();
        h.response_headers = vec![("grpc-status", "7")];
        let got = eval(&h, &["response.grpc_status", r#"response.grpc_message | "-""#]);
        assert_eq!(got, [r#"Ok(String("7"))"#, r#"Ok(String(""))"#]);
        assert_eq!(
            h.calls.borrow().as_slice(),
            ["trailer(grpc-status)", "header(true,grpc-status)", "header(true,grpc-message)"]
        );
        // No status, no message.
        let got = eval(&host(), &[r#"response.grpc_message | "-""#, r#"response.grpc_status | "-""#]);
        assert_eq!(got, [r#"Ok(String("-"))"#, r#"Ok(String("-"))"#]);
    }

    /// `envoy.config.core.v3.Metadata` with one `filter_metadata` entry.
    fn metadata(filter: &str, entry: serde_json::Value) -> Vec<u8> {
        crate::attr::protobuf_struct::encode_filter_metadata(&[(filter, entry.as_object().unwrap())]).unwrap()
    }

    #[test]
    fn jwt_attributes_read_the_metadata_once() {
        let mut h = host();
        let payload = serde_json::json!({"iss": "https://i.example", "sub": "bob", "role": "ops", "groups": ["ops"]});
        let bytes = metadata("envoy.filters.http.jwt_authn", serde_json::json!({"https://i.example": payload}));
        h.properties.push((vec!["metadata"], bytes));
        let exprs = ["request.auth.principal", r#"request.auth.claims["role"]"#, r#"request.auth.presenter | "-""#];
        let got = eval(&h, &exprs);
        assert_eq!(got, [r#"Ok(String("https://i.example/bob"))"#, r#"Ok(String("ops"))"#, r#"Ok(String("-"))"#]);
        assert_eq!(h.calls.borrow().iter().filter(|c| *c == "metadata").count(), 1);
        // A list claim is left out of the map (Mixer's client kept string claims only).
        assert_eq!(eval(&h, &[r#"request.auth.claims["groups"]"#]), [r#"Ok(String(""))"#]);
        // No jwt_authn entry: absent.
        let mut h = host();
        h.properties.push((vec!["metadata"], metadata("istio_authn", serde_json::json!({"a": "b"}))));
        assert_eq!(eval(&h, &["request.auth.principal | \"none\""]), [r#"Ok(String("none"))"#]);
    }

    #[test]
    fn absent_peer_leaves_identity_absent() {
        let mut h = host();
        h.peer = None;
        let got = eval(&h, &[r#"source.labels["app"] | "unknown""#, "source.workload.name"]);
        assert_eq!(got, [r#"Ok(String("unknown"))"#, r#"Err(LookupFailed("source.workload.name"))"#]);
    }
}
