//! The attribute bag over Envoy: each attribute is fetched from its [`Source`] on first use and
//! cached for the rest of the request, so a host call happens at most once per attribute per
//! request, and only for attributes that some configured expression references.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::rc::Rc;

use super::host::Host;
use super::sources::{response_flags_text, source_of, Decode, Side, Source, WorkloadField};
use super::workload_attributes::WorkloadAttributes;
use crate::expr::{AttrId, AttributeBag, Manifest, StringMap, Value};
use crate::gostd::net_ip::IpBytes;
use crate::gostd::time::Timestamp;

/// The sidecar role of the listener a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Per-configuration table: the source of every attribute and a cache slot for each one that
/// the configuration's expressions need. Built once at configure time.
#[derive(Debug, Clone)]
pub struct SourceTable {
    sources: Vec<Source>,
    slot_of: Vec<Option<u16>>,
    slots: usize,
}

impl SourceTable {
    /// A table for `manifest` giving cache slots to `needed` attributes only.
    pub fn new(manifest: &Manifest, needed: &[AttrId]) -> SourceTable {
        let sources: Vec<Source> = manifest
            .iter()
            .map(|(_, name, _)| source_of(name))
            .collect();
        let mut slot_of = vec![None; manifest.len()];
        let mut slots = 0usize;
        for id in needed {
            if let Some(s) = slot_of.get_mut(usize::from(*id)) {
                if s.is_none() {
                    *s = u16::try_from(slots).ok();
                    slots += 1;
                }
            }
        }
        SourceTable {
            sources,
            slot_of,
            slots,
        }
    }

    /// The source of attribute `id`.
    pub fn source(&self, id: AttrId) -> Source {
        self.sources
            .get(usize::from(id))
            .copied()
            .unwrap_or(Source::Absent("unknown attribute id"))
    }
}

/// One request's attributes.
pub struct EnvoyBag<'h, H: Host + ?Sized> {
    host: &'h H,
    table: &'h SourceTable,
    slots: Vec<OnceCell<Option<Value<'static>>>>,
    direction: OnceCell<Option<Direction>>,
    local: OnceCell<Option<Rc<WorkloadAttributes>>>,
    peer: OnceCell<Option<Rc<WorkloadAttributes>>>,
}

impl<'h, H: Host + ?Sized> EnvoyBag<'h, H> {
    pub fn new(host: &'h H, table: &'h SourceTable) -> EnvoyBag<'h, H> {
        EnvoyBag {
            host,
            table,
            slots: (0..table.slots).map(|_| OnceCell::new()).collect(),
            direction: OnceCell::new(),
            local: OnceCell::new(),
            peer: OnceCell::new(),
        }
    }

    /// The listener's direction (`xds.listener_direction`), fetched once.
    pub fn direction(&self) -> Option<Direction> {
        *self.direction.get_or_init(|| {
            match self
                .host
                .property(&["xds", "listener_direction"])
                .and_then(|b| int64(&b))
            {
                Some(1) => Some(Direction::Inbound),
                Some(2) => Some(Direction::Outbound),
                _ => None,
            }
        })
    }

    fn workload(&self, side: Side) -> Option<&WorkloadAttributes> {
        let own_side = match self.direction() {
            Some(Direction::Outbound) => Side::Source,
            _ => Side::Destination,
        };
        let cell = if side == own_side {
            &self.local
        } else {
            &self.peer
        };
        let w = cell.get_or_init(|| {
            if side == own_side {
                self.host.local_workload()
            } else {
                self.host.peer_workload()
            }
        });
        w.as_deref()
    }

    fn fetch(&self, id: AttrId) -> Option<Value<'static>> {
        match self.table.source(id) {
            Source::Property(path, decode) => decode_property(self.host.property(path)?, decode),
            Source::ByRole { inbound, outbound } => {
                let (path, decode) = if self.direction() == Some(Direction::Outbound) {
                    outbound
                } else {
                    inbound
                };
                decode_property(self.host.property(path)?, decode)
            }
            Source::RequestHeaders => Some(Value::StringMap(Cow::Owned(StringMap::from_pairs(
                self.host.headers(false),
            )))),
            Source::ResponseHeaders => Some(Value::StringMap(Cow::Owned(StringMap::from_pairs(
                self.host.headers(true),
            )))),
            Source::Header { name, response } => self
                .host
                .header(response, name)
                .map(|v| Value::String(Cow::Owned(v))),
            Source::QueryParams => {
                let path = String::from_utf8_lossy(&self.host.property(&["request", "path"])?)
                    .into_owned();
                let (_, query) = path.split_once('?')?;
                let pairs: Vec<(String, String)> = query
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        p.split_once('=')
                            .map_or((p.to_string(), String::new()), |(k, v)| {
                                (k.to_string(), v.to_string())
                            })
                    })
                    .collect();
                (!pairs.is_empty())
                    .then(|| Value::StringMap(Cow::Owned(StringMap::from_pairs(pairs))))
            }
            Source::ReporterKind => self.direction().map(|d| {
                Value::String(Cow::Borrowed(if d == Direction::Inbound {
                    "inbound"
                } else {
                    "outbound"
                }))
            }),
            Source::ReporterUid => {
                let own = match self.direction() {
                    Some(Direction::Outbound) => Side::Source,
                    _ => Side::Destination,
                };
                self.workload(own)?
                    .uid
                    .clone()
                    .map(|u| Value::String(Cow::Owned(u)))
            }
            Source::Protocol => {
                let grpc = self
                    .host
                    .header(false, "content-type")
                    .is_some_and(|c| c.starts_with("application/grpc"));
                Some(Value::String(Cow::Borrowed(if grpc {
                    "grpc"
                } else {
                    "http"
                })))
            }
            Source::Now => Some(Value::Timestamp(Timestamp::from_unix_nanos(
                self.host.now_nanos(),
            ))),
            Source::ResponseTime => {
                let start = int64(&self.host.property(&["request", "time"])?)?;
                let duration = int64(&self.host.property(&["request", "duration"])?)?;
                Some(Value::Timestamp(Timestamp::from_unix_nanos(
                    start.saturating_add(duration),
                )))
            }
            Source::ServiceHost => self.service_host().map(|h| Value::String(Cow::Owned(h))),
            Source::ServiceName => self.service_host().and_then(|h| {
                h.split('.')
                    .next()
                    .map(|n| Value::String(Cow::Owned(n.to_string())))
            }),
            Source::ServiceNamespace => self.service_host().and_then(|h| {
                h.split('.')
                    .nth(1)
                    .map(|n| Value::String(Cow::Owned(n.to_string())))
            }),
            Source::ServiceUid => {
                let host = self.service_host()?;
                let mut parts = host.split('.');
                let (name, ns) = (parts.next()?, parts.next()?);
                Some(Value::String(Cow::Owned(format!(
                    "istio://{ns}/services/{name}"
                ))))
            }
            Source::ResponseFlags => {
                let bits = self
                    .host
                    .property(&["response", "flags"])
                    .and_then(|b| int64(&b))?;
                let mut s = String::new();
                response_flags_text(u64::try_from(bits).unwrap_or(0), &mut s);
                Some(Value::String(Cow::Owned(s)))
            }
            Source::ProxyVersion => {
                let own = match self.direction() {
                    Some(Direction::Outbound) => Side::Source,
                    _ => Side::Destination,
                };
                self.workload(own)?
                    .istio_version
                    .clone()
                    .map(|v| Value::String(Cow::Owned(v)))
            }
            Source::Workload(..) | Source::Absent(_) => None,
        }
    }

    /// Host of an Istio-style cluster name: `outbound|9080||reviews.default.svc.cluster.local`.
    fn service_host(&self) -> Option<String> {
        let cluster =
            String::from_utf8_lossy(&self.host.property(&["xds", "cluster_name"])?).into_owned();
        let host = cluster.split('|').nth(3)?;
        (!host.is_empty()).then(|| host.to_string())
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

impl<H: Host + ?Sized> AttributeBag for EnvoyBag<'_, H> {
    fn get(&self, id: AttrId) -> Option<Value<'_>> {
        if let Source::Workload(side, field) = self.table.source(id) {
            return self.workload_value(side, field);
        }
        match self.table.slot_of.get(usize::from(id)).copied().flatten() {
            Some(slot) => self
                .slots
                .get(usize::from(slot))?
                .get_or_init(|| self.fetch(id))
                .as_ref()
                .map(Value::reborrow),
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

/// Decodes Envoy's encoding of a property value.
pub fn decode_property(bytes: Vec<u8>, decode: Decode) -> Option<Value<'static>> {
    let text = |b: Vec<u8>| match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Some(match decode {
        Decode::Text => Value::String(Cow::Owned(text(bytes))),
        Decode::Int64 => Value::Int64(int64(&bytes)?),
        Decode::Uint64Text => Value::String(Cow::Owned(
            u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?).to_string(),
        )),
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
