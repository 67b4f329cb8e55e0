//! Where each attribute of the vocabulary comes from inside Envoy 1.40, for both sidecar
//! roles. One table, documented in `envoy-config/ATTRIBUTES.md`.

/// How the bytes of an Envoy property are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decode {
    /// UTF-8 text (invalid bytes replaced).
    Text,
    /// Little-endian int64.
    Int64,
    /// Little-endian uint64 rendered as decimal text (ids).
    Uint64Text,
    /// One byte, 0 or 1.
    Bool,
    /// Little-endian int64 nanoseconds since the Unix epoch.
    TimestampNanos,
    /// Little-endian int64 nanoseconds.
    DurationNanos,
    /// `ip:port` or `[ip]:port` text; the IP part.
    AddressIp,
    /// A SPIFFE URI SAN; Mixer's principal form is the URI without `spiffe://`.
    SpiffePrincipal,
}

/// Which workload an identity attribute describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

/// A field of a workload identity (node metadata or exchanged peer metadata).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadField {
    Uid,
    Labels,
    Metadata,
    Name,
    Namespace,
    Owner,
    ServiceAccount,
    WorkloadUid,
    WorkloadName,
    WorkloadNamespace,
}

/// An attribute of the request's verified JWT, from the payload Envoy's `jwt_authn` filter
/// stores in dynamic metadata (`payload_in_metadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtField {
    /// `iss/sub`.
    Principal,
    /// `aud`: the claim, or the first of a list.
    Audiences,
    /// `azp`.
    Presenter,
    /// The claims whose values are strings (Mixer's client left out every other claim).
    Claims,
    /// Every claim as compact JSON: the verified payload re-encoded (keys sorted), since Envoy
    /// hands over a Struct, not the token's own text.
    RawClaims,
}

/// An attribute of a TCP report, supplied by the TCP (network filter) reporter from its own
/// byte counts and clock; no Envoy property holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionField {
    /// `open`, `continue` or `close`.
    Event,
    /// Bytes from the downstream since the previous report.
    ReceivedBytes,
    /// Bytes to the downstream since the previous report.
    SentBytes,
    ReceivedBytesTotal,
    SentBytesTotal,
    /// Time since the connection was accepted.
    Duration,
}

/// The source of one attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The same Envoy property in both roles.
    Property(&'static [&'static str], Decode),
    /// Different properties for the inbound (server) and outbound (client) roles.
    ByRole {
        inbound: (&'static [&'static str], Decode),
        outbound: (&'static [&'static str], Decode),
    },
    /// Identity: the local node's for the own side, the verified peer's for the other side.
    Workload(Side, WorkloadField),
    RequestHeaders,
    ResponseHeaders,
    /// A header value (first of the request, or of the response when `response`).
    Header {
        name: &'static str,
        response: bool,
    },
    Jwt(JwtField),
    /// The gRPC status of the response: from the trailers, or from the headers of a
    /// trailers-only response.
    GrpcStatus,
    /// The gRPC message, from where the status is (`""` when that map has none); absent
    /// without a status, as Mixer's client had it.
    GrpcMessage,
    QueryParams,
    ReporterKind,
    ReporterUid,
    Protocol,
    Now,
    /// request.time + request.duration.
    ResponseTime,
    /// Host of the Istio-style cluster name (`outbound|9080||reviews.default.svc.cluster.local`).
    ServiceHost,
    ServiceName,
    ServiceNamespace,
    ServiceUid,
    /// Envoy's response flags in their short form (`UH`, `-`).
    ResponseFlags,
    ProxyVersion,
    /// A TCP report's value; absent outside the TCP reporter.
    Connection(ConnectionField),
    /// Not knowable inside Envoy; the reason is documented.
    Absent(&'static str),
}

const STR: Decode = Decode::Text;

/// The source of a vocabulary attribute; `Absent` for names Envoy cannot provide.
pub fn source_of(name: &str) -> Source {
    use Source::*;
    const SRC: Side = Side::Source;
    const DST: Side = Side::Destination;
    use WorkloadField as W;
    match name {
        "source.uid" => Workload(SRC, W::Uid),
        "source.labels" => Workload(SRC, W::Labels),
        "source.metadata" => Workload(SRC, W::Metadata),
        "source.name" => Workload(SRC, W::Name),
        "source.namespace" => Workload(SRC, W::Namespace),
        "source.owner" => Workload(SRC, W::Owner),
        "source.serviceAccount" => Workload(SRC, W::ServiceAccount),
        "source.workload.uid" => Workload(SRC, W::WorkloadUid),
        "source.workload.name" => Workload(SRC, W::WorkloadName),
        "source.workload.namespace" => Workload(SRC, W::WorkloadNamespace),
        "destination.uid" => Workload(DST, W::Uid),
        "destination.labels" => Workload(DST, W::Labels),
        "destination.metadata" => Workload(DST, W::Metadata),
        "destination.name" => Workload(DST, W::Name),
        "destination.namespace" => Workload(DST, W::Namespace),
        "destination.owner" => Workload(DST, W::Owner),
        "destination.serviceAccount" => Workload(DST, W::ServiceAccount),
        "destination.workload.uid" => Workload(DST, W::WorkloadUid),
        "destination.workload.name" => Workload(DST, W::WorkloadName),
        "destination.workload.namespace" => Workload(DST, W::WorkloadNamespace),
        "source.ip" => Property(&["source", "address"], Decode::AddressIp),
        "origin.ip" => Property(&["source", "address"], Decode::AddressIp),
        "destination.ip" => ByRole {
            inbound: (&["destination", "address"], Decode::AddressIp),
            outbound: (&["upstream", "address"], Decode::AddressIp),
        },
        "destination.port" => ByRole {
            inbound: (&["destination", "port"], Decode::Int64),
            outbound: (&["upstream", "port"], Decode::Int64),
        },
        // Principals come only from certificates, never from claims.
        "source.principal" | "source.user" => ByRole {
            inbound: (&["connection", "uri_san_peer_certificate"], Decode::SpiffePrincipal),
            outbound: (&["upstream", "uri_san_local_certificate"], Decode::SpiffePrincipal),
        },
        "destination.principal" => ByRole {
            inbound: (&["connection", "uri_san_local_certificate"], Decode::SpiffePrincipal),
            outbound: (&["upstream", "uri_san_peer_certificate"], Decode::SpiffePrincipal),
        },
        "destination.service.host" => ServiceHost,
        "destination.service.name" => ServiceName,
        "destination.service.namespace" => ServiceNamespace,
        "destination.service.uid" => ServiceUid,
        "request.headers" => RequestHeaders,
        "request.id" => Property(&["request", "id"], STR),
        "request.path" => Property(&["request", "path"], STR),
        "request.url_path" => Property(&["request", "url_path"], STR),
        "request.query_params" => QueryParams,
        "request.host" => Property(&["request", "host"], STR),
        "request.method" => Property(&["request", "method"], STR),
        "request.scheme" => Property(&["request", "scheme"], STR),
        "request.referer" => Property(&["request", "referer"], STR),
        "request.useragent" => Property(&["request", "useragent"], STR),
        "request.size" => Property(&["request", "size"], Decode::Int64),
        "request.total_size" => Property(&["request", "total_size"], Decode::Int64),
        "request.time" => Property(&["request", "time"], Decode::TimestampNanos),
        "request.api_key" => Header { name: "x-api-key", response: false },
        "response.code" => Property(&["response", "code"], Decode::Int64),
        "response.duration" => Property(&["request", "duration"], Decode::DurationNanos),
        "response.headers" => ResponseHeaders,
        "response.size" => Property(&["response", "size"], Decode::Int64),
        "response.total_size" => Property(&["response", "total_size"], Decode::Int64),
        "response.time" => ResponseTime,
        "response.grpc_status" => GrpcStatus,
        "response.grpc_message" => GrpcMessage,
        "connection.id" => Property(&["connection", "id"], Decode::Uint64Text),
        "connection.mtls" => Property(&["connection", "mtls"], Decode::Bool),
        "connection.requested_server_name" => Property(&["connection", "requested_server_name"], STR),
        "context.protocol" => Protocol,
        "context.time" | "context.timestamp" => Now,
        "context.reporter.kind" => ReporterKind,
        "context.reporter.uid" => ReporterUid,
        "context.proxy_error_code" => ResponseFlags,
        "context.proxy_version" => ProxyVersion,
        "destination.container.name" => Absent("container names are not part of the proxy's node metadata"),
        "source.services" => Absent("the services of the client workload are not known to the proxy"),
        "origin.uid" | "origin.user" => Absent("legacy attributes that no proxy sets"),
        "request.reason" => Absent("audit reason: not set by Envoy"),
        "request.auth.principal" => Jwt(JwtField::Principal),
        "request.auth.audiences" => Jwt(JwtField::Audiences),
        "request.auth.presenter" => Jwt(JwtField::Presenter),
        "request.auth.claims" => Jwt(JwtField::Claims),
        "request.auth.raw_claims" => Jwt(JwtField::RawClaims),
        "connection.event" => Connection(ConnectionField::Event),
        "connection.received.bytes" => Connection(ConnectionField::ReceivedBytes),
        "connection.sent.bytes" => Connection(ConnectionField::SentBytes),
        "connection.received.bytes_total" => Connection(ConnectionField::ReceivedBytesTotal),
        "connection.sent.bytes_total" => Connection(ConnectionField::SentBytesTotal),
        "connection.duration" => Connection(ConnectionField::Duration),
        "context.reporter.local" => Absent("deprecated in Mixer; not set"),
        "api.service" | "api.version" | "api.operation" | "api.protocol" => {
            Absent("API-management attributes came from HTTPAPISpec, which stock Envoy does not have")
        }
        "check.error_code" | "check.error_message" | "check.cache_hit" | "quota.cache_hit" => {
            Absent("check-cache attributes of Mixer's proxy client; the deny filter has no cache")
        }
        "rbac.permissive.response_code" | "rbac.permissive.effective_policy_id" => {
            Absent("shadow RBAC results of Istio's RBAC filter")
        }
        _ => Absent("not an attribute of the Istio vocabulary"),
    }
}

/// Envoy's response flags (bit order of `StreamInfo::CoreResponseFlag`) and their short names.
pub const RESPONSE_FLAGS: &[&str] = &[
    "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC", "URX", "SI", "IH",
    "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO", "DR", "UDO",
];

/// Renders a response-flags bitmask as Envoy's `%RESPONSE_FLAGS%` (`-` when none).
pub fn response_flags_text(bits: u64, out: &mut String) {
    let mut any = false;
    for (i, name) in RESPONSE_FLAGS.iter().enumerate() {
        if bits & (1u64 << i) != 0 {
            if any {
                out.push(',');
            }
            out.push_str(name);
            any = true;
        }
    }
    if !any {
        out.push('-');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::vocabulary::ISTIO_VOCABULARY;

    #[test]
    fn every_vocabulary_attribute_has_a_documented_source() {
        for (name, _) in ISTIO_VOCABULARY {
            if let Source::Absent(reason) = source_of(name) {
                assert_ne!(reason, "not an attribute of the Istio vocabulary", "{name}");
            }
        }
    }

    #[test]
    fn flags() {
        let mut s = String::new();
        response_flags_text(0, &mut s);
        assert_eq!(s, "-");
        s.clear();
        response_flags_text(0b10, &mut s);
        assert_eq!(s, "UH");
    }
}
